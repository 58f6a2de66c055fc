//! XLA's own post-optimisation dumps (`hlo-samples/*/module.opt.hlo`), compiled as they are
//! (XLA's fusions, bitcasts with layouts, copies) without the hlo-passes pipeline, run on
//! lavapipe and compared with JAX's outputs like `samples_vulkan`.

mod common;
use common::*;
use hlo_spirv::CodegenError;

/// Dumps this backend cannot run as XLA fused them, with the op that stops them.
const EXPECTED_UNSUPPORTED: &[(&str, &str)] = &[("while_loop", "while")];

#[test]
fn xla_dumps_vulkan() {
    let ctx = vulkan();
    let target = target_from_caps(ctx.caps());
    let dir = samples_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("hlo-samples")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("module.opt.hlo").exists())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut unsupported = Vec::new();
    let mut failures = Vec::new();
    for name in &names {
        let case = dir.join(name);
        let text = std::fs::read_to_string(case.join("module.opt.hlo")).unwrap();
        let m = parse(&text);
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
            println!("{name}: ok ({} kernels)", compiled.program.kernels.len());
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    let expected: Vec<(String, String)> =
        EXPECTED_UNSUPPORTED.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(unsupported, expected, "the set of unsupported dumps changed");
}
