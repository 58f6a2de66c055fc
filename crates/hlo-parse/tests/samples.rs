//! Every `*.hlo` under `hlo-samples/` (and the seed module) parses, prints, and re-parses
//! to an equal module; post-optimisation dumps print back byte for byte.

use std::path::{Path, PathBuf};

fn hlo_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            hlo_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "hlo") {
            out.push(path);
        }
    }
}

fn sample_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    hlo_files(&root.join("../../hlo-samples"), &mut files);
    hlo_files(&root.join("tests/cases/ok"), &mut files);
    hlo_files(&root.join("tests/cases/noncanon"), &mut files);
    files.sort();
    files
}

#[test]
fn every_sample_parses_and_round_trips() {
    let files = sample_files();
    assert!(!files.is_empty());
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let shown = path.display().to_string();
        let module = match hlo_parse::parse_module(&text) {
            Ok(m) => m,
            Err(e) => {
                failures.push(hlo_parse::render_error(&text, &shown, &e));
                continue;
            }
        };
        let printed = hlo_ir::print::print_module(&module);
        match hlo_parse::parse_module(&printed) {
            Ok(again) if again == module => {}
            Ok(_) => failures.push(format!("{shown}: printed text re-parses to a different module")),
            Err(e) => failures.push(format!(
                "{shown}: printed text does not re-parse:\n{}",
                hlo_parse::render_error(&printed, "<printed>", &e)
            )),
        }
    }
    assert!(failures.is_empty(), "{} of {} files failed:\n{}", failures.len(), files.len(), failures.join("\n"));
}

#[test]
fn optimised_dumps_print_back_byte_for_byte() {
    let mut failures = Vec::new();
    // The seed module was dumped by an older XLA that printed operand shapes; it only
    // round-trips structurally.
    let canonical =
        |p: &PathBuf| p.to_string_lossy().ends_with(".opt.hlo") && !p.to_string_lossy().contains("seed_draw_points");
    for path in sample_files().iter().filter(|p| canonical(p)) {
        let text = std::fs::read_to_string(path).unwrap();
        let Ok(module) = hlo_parse::parse_module(&text) else { continue };
        let printed = hlo_ir::print::print_module(&module);
        if printed != text {
            let line = printed.lines().zip(text.lines()).position(|(a, b)| a != b).unwrap_or(0);
            failures.push(format!(
                "{}:{}:\n  dump:    {}\n  printed: {}",
                path.display(),
                line + 1,
                text.lines().nth(line).unwrap_or("<eof>"),
                printed.lines().nth(line).unwrap_or("<eof>")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
