//! Conformance: every `hlo-samples/` case through the pipeline, this compiler and lavapipe,
//! compared with JAX's own outputs (`out_K.npy`): integers exactly, floats by relative L2
//! error within the sample's tolerance (`meta.json`).
//!
//! Samples using ops the Vulkan path does not support are listed with the op, and the list
//! must equal [`EXPECTED_UNSUPPORTED`], so that both regressions and newly supported samples show up.

mod common;
use common::*;
use hlo_spirv::CodegenError;

/// Samples this backend cannot run yet, with the op that stops them.
const EXPECTED_UNSUPPORTED: &[(&str, &str)] = &[
    // Collatz steps: a `while` whose trip count depends on the data and whose body is not
    // elementwise; the program has no host-side loop to run it.
    ("while_loop", "while"),
];

#[test]
fn samples_vulkan() {
    let ctx = vulkan();
    let target = target_from_caps(ctx.caps());
    let dir = samples_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("hlo-samples")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("meta.json").exists())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut unsupported = Vec::new();
    let mut failures = Vec::new();
    let mut passed = Vec::new();
    for name in &names {
        let case = dir.join(name);
        let file = if case.join("module.hlo").exists() { "module.hlo" } else { "module.opt.hlo" };
        let text = std::fs::read_to_string(case.join(file)).unwrap();
        let m = parse_and_fuse(&text);
        let compiled = match hlo_spirv::compile(&m, &target) {
            Ok(c) => c,
            Err(CodegenError::Unsupported { op, instr, reason }) => {
                println!("{name}: unsupported {op} (`{instr}`: {reason})");
                unsupported.push((name.clone(), op));
                continue;
            }
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        check_spirv(&compiled);
        let inputs: Vec<Vec<u8>> =
            (0..compiled.inputs.len()).map(|k| read_npy(&case.join(format!("in_{k}.npy")))).collect();
        let meta = std::fs::read_to_string(case.join("meta.json")).unwrap();
        let tols = output_tolerances(&meta);
        let start = std::time::Instant::now();
        let outs = run_vulkan(&ctx, &compiled, &inputs);
        let mut ok = true;
        for (k, io) in compiled.outputs.iter().enumerate() {
            let want = read_npy(&case.join(format!("out_{k}.npy")));
            if let Err(e) = compare(io.dtype, &outs[k], &want, tols[k]) {
                failures.push(format!("{name}: output {k} ({}{:?}): {e}", io.dtype, io.dims));
                ok = false;
            }
        }
        if ok {
            println!(
                "{name}: ok ({} kernels, {:.1} ms)",
                compiled.program.kernels.len(),
                start.elapsed().as_secs_f64() * 1e3
            );
            passed.push(name.clone());
        }
    }
    println!("passed {} of {}: {}", passed.len(), names.len(), passed.join(" "));
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    let expected: Vec<(String, String)> =
        EXPECTED_UNSUPPORTED.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(unsupported, expected, "the set of unsupported samples changed");
}
