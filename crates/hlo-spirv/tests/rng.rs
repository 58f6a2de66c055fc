//! `rng-bit-generator` on Vulkan: the JAX samples that draw with it (`rng_bit_generator`,
//! `rng_bit_generator_u64`, `random_rbg`) must give JAX's bits exactly, and hand-written
//! forms JAX does not emit (3- and 4-word states, signed and float element types, scalars,
//! counters about to carry) must give the interpreter's bits exactly.

mod common;
use common::*;

#[test]
fn rng_samples_match_jax() {
    let names: Vec<String> =
        ["random_rbg", "rng_bit_generator", "rng_bit_generator_u64"].iter().map(|s| s.to_string()).collect();
    let report = run_named_samples(&names, &["module.hlo"], parse_and_fuse);
    assert_report(&report, &[]);
    assert_eq!(report.passed.len(), names.len());
}

/// State words whose counters carry out of 32 and 64 bits within a few draws.
fn state_bytes(n: usize) -> Vec<u8> {
    let words = [0x0123_4567_89ab_cdefu64, u64::MAX - 2, 0xffff_ffff, 7];
    words[..n].iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[test]
fn rng_forms_match_the_interpreter() {
    let ctx = vulkan();
    let mut failures = Vec::new();
    for alg in ["rng_three_fry", "rng_philox", "rng_default"] {
        for n in [2usize, 3, 4] {
            let outs = [
                "u32[]", "u32[4,6]", "u32[5,7]", "u64[]", "u64[9]", "s32[9]", "f32[6]", "s64[3]", "u8[17]", "s16[3,5]",
                "u32[0]",
            ];
            let results: Vec<String> = outs
                .iter()
                .enumerate()
                .map(|(i, ty)| format!("r{i} = (u64[{n}], {ty}) rng-bit-generator(s), algorithm={alg}"))
                .collect();
            let leaves: Vec<String> = (0..outs.len())
                .flat_map(|i| {
                    let ty = outs[i];
                    [
                        format!("s{i} = u64[{n}] get-tuple-element(r{i}), index=0"),
                        format!("b{i} = {ty} get-tuple-element(r{i}), index=1"),
                    ]
                })
                .collect();
            let root_types: Vec<String> = outs.iter().flat_map(|ty| [format!("u64[{n}]"), ty.to_string()]).collect();
            let root_ops: Vec<String> = (0..outs.len()).flat_map(|i| [format!("s{i}"), format!("b{i}")]).collect();
            let text = format!(
                "HloModule m\nENTRY e {{\n  s = u64[{n}] parameter(0)\n  {}\n  {}\n  ROOT t = ({}) tuple({})\n}}\n",
                results.join("\n  "),
                leaves.join("\n  "),
                root_types.join(", "),
                root_ops.join(", ")
            );
            let inputs = vec![state_bytes(n)];
            let want = run_interp(&parse(&text), &inputs);
            let compiled = compile_checked(&parse_and_fuse(&text));
            let got = run_vulkan(&ctx, &compiled, &inputs);
            for (k, io) in compiled.outputs.iter().enumerate() {
                if let Err(e) = compare(io.dtype, &got[k], &want[k], 0.0) {
                    failures.push(format!("{alg}, state u64[{n}], output {k} ({}{:?}): {e}", io.dtype, io.dims));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
