//! Reads through uniform texel buffers (`Target::texel_gathers`, lavapipe): an input read at a
//! per-invocation index is fetched as texels (of four 32-bit words, or of one for arrays whose
//! length is not a multiple of four and for every other type kept as one word per element)
//! instead of loaded lane by lane. The values must be the buffer's bits: subnormals (llvmpipe's
//! float texel formats flush them), NaN payloads, signed zeros and infinities, integers of every
//! width, at sizes around the texel and the subgroup; and a kernel that writes a buffer never
//! fetches it.

mod common;
use common::*;

fn special_f32(n: usize) -> Vec<u8> {
    with_specials(n, &[1e-40f32, -1e-45, f32::from_bits(0x7fc0_0123), f32::from_bits(0xffa0_0001), -0.0, f32::INFINITY])
}

fn with_specials(n: usize, specials: &[f32]) -> Vec<u8> {
    (0..n)
        .map(|k| if k % 3 == 1 { specials[(k / 3) % specials.len()] } else { k as f32 * 0.5 - 3.0 })
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// Runs `hlo` with and without texel reads: both must give the same bits, and match the
/// interpreter (bit for bit where `exact`; NaN payloads of arithmetic are the hardware's).
fn same_bits_either_way(hlo: &str, inputs: &[Vec<u8>], expect_texels: bool, exact: bool) {
    let ctx = vulkan();
    let module = parse_and_fuse(hlo);
    let want = run_interp(&parse(hlo), inputs);
    let mut results = Vec::new();
    for texels in [Some(1u64 << 27), None] {
        let target = hlo_spirv::Target { texel_gathers: texels, ..target_from_caps(ctx.caps()) };
        let c = hlo_spirv::compile(&module, &target).unwrap_or_else(|e| panic!("{e}\n{hlo}"));
        check_spirv(&c);
        let fetches = c.program.kernels.iter().any(|k| k.bindings.iter().any(|a| a.texel_words().is_some()));
        assert_eq!(fetches, texels.is_some() && expect_texels, "texel bindings with {texels:?}\n{hlo}");
        let got = run_vulkan(&ctx, &c, inputs);
        if exact {
            assert_eq!(got, want, "texels {texels:?}\n{hlo}");
        } else {
            compare(hlo_ir::DType::F32, &got[0], &want[0], 0.0).unwrap_or_else(|e| panic!("{e}\n{hlo}"));
        }
        results.push(got);
    }
    assert_eq!(results[0], results[1], "texel and storage reads differ\n{hlo}");
}

#[test]
fn transposes_keep_every_bit() {
    for (rows, cols) in [(1, 4), (2, 2), (4, 4), (3, 5), (8, 16), (16, 17), (64, 64), (7, 260)] {
        let hlo = format!(
            "HloModule m\nENTRY e {{\n  a = f32[{rows},{cols}] parameter(0)\n  \
             ROOT t = f32[{cols},{rows}] transpose(a), dimensions={{1,0}}\n}}\n"
        );
        let n = rows * cols;
        // A transpose with a unit dimension is a reshape: a copy, no kernel.
        same_bits_either_way(&hlo, &[special_f32(n)], rows > 1, true);
    }
}

#[test]
fn gathers_of_broadcast_and_reversed_inputs() {
    let hlo = "HloModule m\nENTRY e {\n  a = f32[48] parameter(0)\n  r = f32[48] reverse(a), dimensions={0}\n  \
               b = f32[16,48] broadcast(r), dimensions={1}\n  c = f32[16,48] parameter(1)\n  \
               ROOT s = f32[16,48] add(b, c)\n}\n";
    // No subnormals here: a sum that stays subnormal is flushed on the device, as XLA:CPU does, and
    // kept by the interpreter.
    let specials = [f32::from_bits(0x7fc0_0123), -0.0, f32::INFINITY, f32::NEG_INFINITY, 1e30];
    same_bits_either_way(hlo, &[with_specials(48, &specials), with_specials(768, &specials)], true, false);
}

/// Bytes of `n` elements of `dtype` with every bit pattern class the type has (sign bits, high
/// bits, zero), as the `.npy`-free test helpers take them.
fn pattern_bytes(dtype: &str, n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            let x = (i as u32).wrapping_mul(0x9e37_79b9) ^ 0x8000_0001;
            match dtype {
                "s32" | "u32" => x.to_le_bytes().to_vec(),
                "s16" | "u16" => (x as u16).to_le_bytes().to_vec(),
                "s8" | "u8" => vec![x as u8],
                "pred" => vec![(x >> 7) as u8 & 1],
                _ => unreachable!("{dtype}"),
            }
        })
        .collect()
}

#[test]
fn word_texels_carry_every_word_type_at_any_length() {
    for dtype in ["s32", "u32", "s16", "u16", "s8", "u8", "pred"] {
        for n in [1, 3, 5, 8, 33, 257] {
            let hlo = format!(
                "HloModule m\nENTRY e {{\n  a = {dtype}[{n}] parameter(0)\n  \
                 ROOT r = {dtype}[{n}] reverse(a), dimensions={{0}}\n}}\n"
            );
            same_bits_either_way(&hlo, &[pattern_bytes(dtype, n)], n > 1, true);
        }
    }
    // f32 arrays whose length is not a multiple of four.
    for n in [3, 5, 7, 255] {
        let hlo = format!(
            "HloModule m\nENTRY e {{\n  a = f32[{n}] parameter(0)\n  ROOT r = f32[{n}] reverse(a), dimensions={{0}}\n}}\n"
        );
        same_bits_either_way(&hlo, &[special_f32(n)], n > 1, true);
    }
}
