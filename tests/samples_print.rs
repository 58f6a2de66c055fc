//! Every sample module parses, verifies, prints, and re-parses to an equal
//! module; the printed form is snapshotted (one `.snap` per module).

use hlo_tests::samples;

#[test]
fn every_sample_round_trips_and_matches_its_printed_snapshot() {
    let mut failures = Vec::new();
    for sample in samples() {
        for path in &sample.modules {
            let file = path.file_name().unwrap().to_string_lossy().replace(".hlo", "");
            let source = std::fs::read_to_string(path).unwrap();
            let module = match hlo_parse::parse_module(&source) {
                Ok(m) => m,
                Err(e) => {
                    failures.push(hlo_parse::render_error(&source, &path.display().to_string(), &e));
                    continue;
                }
            };
            if let Err(errs) = hlo_ir::verify::verify(&module) {
                failures.push(format!("{}: does not verify:\n{errs}", path.display()));
                continue;
            }
            let printed = hlo_ir::print::print_module(&module);
            match hlo_parse::parse_module(&printed) {
                Ok(reparsed) if reparsed == module => {}
                Ok(_) => failures.push(format!("{}: printed text re-parses to a different module", path.display())),
                Err(e) => failures.push(format!(
                    "{}: printed text does not re-parse: {}",
                    path.display(),
                    hlo_parse::render_error(&printed, "<printed>", &e)
                )),
            }
            insta::with_settings!({ snapshot_path => "snapshots/printed", prepend_module_to_snapshot => false }, {
                insta::assert_snapshot!(format!("{}__{}", sample.name, file), printed);
            });
        }
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}
