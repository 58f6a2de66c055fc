//! `rng-bit-generator` on Vulkan: the JAX samples that draw with it (`rng_bit_generator`,
//! `rng_bit_generator_u64`, `random_rbg`) must give JAX's bits exactly, and hand-written
//! forms JAX does not emit (3- and 4-word states, signed and float element types, scalars,
//! counters about to carry) must give the interpreter's bits exactly.
//! JAX wraps the op in width-changing `bitcast-convert`s (`u32[2,2]` key words to `u64[2]`),
//! which `bitcast-convert-expander` turns into shifts and concatenations; those are checked
//! here too, in both directions and across signed, float and 8-bit pieces.

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

/// A device without 64-bit integers is refused by the op's name before the expansion runs.
#[test]
fn a_device_without_int64_refuses_rng_bit_generator() {
    let mut target = hlo_spirv::Target::lavapipe();
    assert_eq!(hlo_spirv::refusal_on(hlo_ir::Opcode::RngBitGenerator, &target), None);
    target.shader_int64 = false;
    let reason = hlo_spirv::refusal_on(hlo_ir::Opcode::RngBitGenerator, &target).expect("refused");
    assert!(reason.contains("shaderInt64"), "{reason}");
}

/// A form the expander leaves alone (4-bit elements) is refused by name, never run wrong.
#[test]
fn unexpanded_forms_are_refused_by_name() {
    let text = "HloModule m\nENTRY e {\n  s = u64[2] parameter(0)\n  \
                ROOT r = (u64[2], u4[8]) rng-bit-generator(s), algorithm=rng_philox\n}\n";
    match hlo_spirv::compile(&parse_and_fuse(text), &hlo_spirv::Target::lavapipe()) {
        Err(hlo_spirv::CodegenError::Unsupported { op, .. }) => assert_eq!(op, "rng-bit-generator"),
        Err(e) => panic!("expected an Unsupported error naming the op, got {e}"),
        Ok(_) => panic!("a u4 rng-bit-generator compiled"),
    }
}

#[test]
fn width_changing_bitcast_converts_match_the_interpreter() {
    let ctx = vulkan();
    let mut failures = Vec::new();
    for (from, to) in [
        ("u32[2,2]", "u64[2]"),
        ("u64[2]", "u32[2,2]"),
        ("s32[33,2]", "s64[33]"),
        ("s64[33]", "s32[33,2]"),
        ("f32[5,2]", "f64[5]"),
        ("f64[5]", "f32[5,2]"),
        ("u8[7,4]", "s32[7]"),
        ("s32[7]", "s8[7,4]"),
        ("u16[9,4]", "u64[9]"),
        ("u32[2]", "u64[]"),
    ] {
        let text =
            format!("HloModule m\nENTRY e {{\n  x = {from} parameter(0)\n  ROOT r = {to} bitcast-convert(x)\n}}\n");
        let module = parse(&text);
        let shape = module.entry_comp().param_shapes()[0].as_array().cloned().expect("array");
        let input = hlo_interp::random_literal(&shape, 5);
        let inputs = vec![hlo_interp::literal_to_bytes(&input).expect("bytes")];
        let want = run_interp(&module, &inputs);
        let compiled = compile_checked(&parse_and_fuse(&text));
        let got = run_vulkan(&ctx, &compiled, &inputs);
        let io = &compiled.outputs[0];
        if let Err(e) = compare(io.dtype, &got[0], &want[0], 0.0) {
            failures.push(format!("{from} -> {to}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
