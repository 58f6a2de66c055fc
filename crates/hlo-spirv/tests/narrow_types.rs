//! The other narrow floats and integers on Vulkan and in the interpreter against JAX: the
//! `fnuz` 8-bit floats (no infinities, no -0, one NaN), `f8e8m0fnu` (powers of two, ties
//! rounded up, f32 subnormals read by their bits), `f4e2m1fn` (saturating, NaN to -0), and the
//! 2- and 4-bit integers. The expected bit patterns were computed with JAX 0.8.3 on CPU
//! (`jax.jit(lambda v: v.astype(t))(X)` and `jax.jit(lambda a: (a * a + a).astype(jnp.float32))`
//! of that result), the same program as [`module`].

mod common;
use common::*;

/// The inputs: zeros, ties of each format, overflow, infinities, NaNs and f32 subnormals.
const X: [f32; 40] = [
    f32::from_bits(0x00000000),
    f32::from_bits(0x80000000),
    f32::from_bits(0x3f800000),
    f32::from_bits(0xbf800000),
    f32::from_bits(0x3e99999a),
    f32::from_bits(0x3089705f),
    f32::from_bits(0xb089705f),
    f32::from_bits(0x40e00000),
    f32::from_bits(0x40d00000),
    f32::from_bits(0x40b00000),
    f32::from_bits(0x43960000),
    f32::from_bits(0x43700000),
    f32::from_bits(0x437a0000),
    f32::from_bits(0x49742400),
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    -f32::NAN,
    f32::from_bits(0x00080000),
    f32::from_bits(0x40400000),
    f32::from_bits(0x3fc00000),
    f32::from_bits(0x3f400000),
    f32::from_bits(0x00400000),
    f32::from_bits(0x40c00000),
    f32::from_bits(0x41400000),
    f32::from_bits(0x3ec00000),
    f32::from_bits(0x00600000),
    f32::from_bits(0x00500000),
    f32::from_bits(0x3e800000),
    f32::from_bits(0x3dcccccd),
    f32::from_bits(0x40200000),
    f32::from_bits(0x40900000),
    f32::from_bits(0x7f7fc99e),
    f32::from_bits(0x7effc99e),
    f32::from_bits(0x000116c2),
    f32::from_bits(0x47600000),
    f32::from_bits(0x47700000),
    f32::from_bits(0x41f00000),
    f32::from_bits(0x41f80000),
    f32::from_bits(0x42000000),
];

/// JAX's `x.astype(T)` bit patterns and `(a * a + a).astype(jnp.float32)` for `a` that value, per type.
const JAX: [(&str, [u8; 40], [u32; 40]); 5] = [
    (
        "f8e4m3fnuz",
        [
            0, 0, 64, 192, 50, 0, 0, 86, 85, 83, 128, 127, 128, 128, 128, 128, 128, 128, 0, 76, 68, 60, 0, 84, 92, 52,
            0, 0, 48, 37, 74, 81, 128, 128, 0, 128, 128, 103, 104, 104,
        ],
        [
            0x00000000, 0x00000000, 0x40000000, 0x00000000, 0x3ed00000, 0x00000000, 0x00000000, 0x42600000, 0x42500000,
            0x42100000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000,
            0x00000000, 0x41400000, 0x40700000, 0x3fa00000, 0x00000000, 0x42200000, 0x43200000, 0x3f000000, 0x00000000,
            0x00000000, 0x3ea00000, 0x3de00000, 0x41000000, 0x41c00000, 0x7fc00000, 0x7fc00000, 0x00000000, 0x7fc00000,
            0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000,
        ],
    ),
    (
        "f8e5m2fnuz",
        [
            0, 0, 64, 192, 57, 0, 0, 75, 74, 74, 97, 96, 96, 128, 128, 128, 128, 128, 0, 70, 66, 62, 0, 74, 78, 58, 0,
            0, 56, 50, 69, 72, 128, 128, 0, 127, 128, 84, 84, 84,
        ],
        [
            0x00000000, 0x00000000, 0x40000000, 0x00000000, 0x3ec00000, 0x00000000, 0x00000000, 0x42600000, 0x42200000,
            0x42200000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000,
            0x00000000, 0x41400000, 0x40600000, 0x3fa00000, 0x00000000, 0x42200000, 0x43000000, 0x3f000000, 0x00000000,
            0x00000000, 0x3ea00000, 0x3dc00000, 0x41000000, 0x41a00000, 0x7fc00000, 0x7fc00000, 0x00000000, 0x7fc00000,
            0x7fc00000, 0x44800000, 0x44800000, 0x44800000,
        ],
    ),
    (
        "f8e4m3b11fnuz",
        [
            0, 0, 88, 216, 74, 0, 0, 110, 109, 107, 128, 128, 128, 128, 128, 128, 128, 128, 0, 100, 92, 84, 0, 108,
            116, 76, 0, 0, 72, 61, 98, 105, 128, 128, 0, 128, 128, 127, 128, 128,
        ],
        [
            0x00000000, 0x00000000, 0x40000000, 0x00000000, 0x3ed00000, 0x00000000, 0x00000000, 0x7fc00000, 0x7fc00000,
            0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000,
            0x00000000, 0x41400000, 0x40700000, 0x3fa00000, 0x00000000, 0x7fc00000, 0x7fc00000, 0x3f000000, 0x00000000,
            0x00000000, 0x3ea00000, 0x3de00000, 0x41000000, 0x41c00000, 0x7fc00000, 0x7fc00000, 0x00000000, 0x7fc00000,
            0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000,
        ],
    ),
    (
        "f4e2m1fn",
        [
            0, 8, 2, 10, 1, 0, 8, 7, 7, 7, 7, 7, 7, 7, 7, 15, 8, 8, 0, 5, 3, 2, 0, 7, 7, 1, 0, 0, 0, 0, 4, 6, 7, 7, 0,
            7, 7, 7, 7, 7,
        ],
        [
            0x00000000, 0x00000000, 0x40000000, 0x00000000, 0x3f000000, 0x00000000, 0x00000000, 0x40c00000, 0x40c00000,
            0x40c00000, 0x40c00000, 0x40c00000, 0x40c00000, 0x40c00000, 0x40c00000, 0x00000000, 0x00000000, 0x00000000,
            0x00000000, 0x40c00000, 0x40800000, 0x40000000, 0x00000000, 0x40c00000, 0x40c00000, 0x3f000000, 0x00000000,
            0x00000000, 0x00000000, 0x00000000, 0x40c00000, 0x40c00000, 0x40c00000, 0x40c00000, 0x00000000, 0x40c00000,
            0x40c00000, 0x40c00000, 0x40c00000, 0x40c00000,
        ],
    ),
    (
        "f8e8m0fnu",
        [
            255, 255, 127, 255, 125, 97, 255, 130, 130, 129, 135, 135, 135, 147, 255, 255, 255, 255, 0, 129, 128, 127,
            0, 130, 131, 126, 1, 1, 125, 124, 128, 129, 255, 254, 0, 143, 143, 132, 132, 132,
        ],
        [
            0x7fc00000, 0x7fc00000, 0x40000000, 0x7fc00000, 0x3ea00000, 0x30800000, 0x7fc00000, 0x42900000, 0x42900000,
            0x41a00000, 0x47808000, 0x47808000, 0x47808000, 0x53800008, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000,
            0x7fc00000, 0x41a00000, 0x40c00000, 0x40000000, 0x7fc00000, 0x42900000, 0x43880000, 0x3f400000, 0x7fc00000,
            0x7fc00000, 0x3ea00000, 0x3e100000, 0x40c00000, 0x41a00000, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x4f800080,
            0x4f800080, 0x44840000, 0x44840000, 0x44840000,
        ],
    ),
];

fn module(ty: &str) -> String {
    let n = X.len();
    format!(
        "HloModule narrow
ENTRY main {{
  p = f32[{n}] parameter(0)
  c = {ty}[{n}] convert(p)
  m = {ty}[{n}] multiply(c, c)
  a = {ty}[{n}] add(m, c)
  w = f32[{n}] convert(a)
  ROOT t = ({ty}[{n}], f32[{n}]) tuple(c, w)
}}
"
    )
}

/// f32 words equal, any NaN equal to any NaN.
fn same_f32(got: &[u8], want: &[u32]) -> bool {
    got.len() == want.len() * 4
        && got.chunks_exact(4).zip(want).all(|(g, &w)| {
            let g = f32::from_le_bytes(g.try_into().unwrap());
            let w = f32::from_bits(w);
            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan())
        })
}

#[test]
fn fnuz_e8m0_and_f4_conversions_and_arithmetic_match_jax_on_both_backends() {
    let x: Vec<u8> = X.iter().flat_map(|v| v.to_le_bytes()).collect();
    let ctx = vulkan();
    for (ty, bits, arith) in JAX {
        let text = module(ty);
        // XLA:CPU's numerics: an e8m0 product read as f32 skips its rounding (excess precision).
        let mut m = parse(&text);
        let mut opts = hlo_passes::PipelineOptions::default();
        hlo_passes::run_passes(&mut m, hlo_passes::XLA_CPU_NUMERICS, &mut opts).unwrap();
        let interp = run_interp(&m, std::slice::from_ref(&x));
        assert_eq!(interp[0], bits, "{ty}: interpreter convert");
        assert!(same_f32(&interp[1], &arith), "{ty}: interpreter arithmetic {:?}", interp[1]);
        let c = compile_checked(&parse_and_fuse(&text));
        let vk = run_vulkan(&ctx, &c, std::slice::from_ref(&x));
        assert_eq!(vk[0], bits, "{ty}: Vulkan convert");
        assert!(same_f32(&vk[1], &arith), "{ty}: Vulkan arithmetic {:?}", vk[1]);
    }
}

/// Every pattern of every such format survives negation on the device as in the interpreter
/// (0x80 is the fnuz NaN, e8m0 has no negative values, f4 has 16 patterns).
#[test]
fn every_pattern_negates_on_the_device_as_in_the_interpreter() {
    let ctx = vulkan();
    for (ty, n) in
        [("f8e4m3fnuz", 256), ("f8e5m2fnuz", 256), ("f8e4m3b11fnuz", 256), ("f8e8m0fnu", 256), ("f4e2m1fn", 16)]
    {
        let text =
            format!("HloModule m\nENTRY main {{\n  x = {ty}[{n}] parameter(0)\n  ROOT n = {ty}[{n}] negate(x)\n}}\n");
        let c = compile_checked(&parse_and_fuse(&text));
        let bits: Vec<u8> = (0..n).map(|b| b as u8).collect();
        let out = run_vulkan(&ctx, &c, &[bits.clone()]);
        let want = run_interp(&parse(&text), &[bits]);
        assert_eq!(out, want, "{ty}: negate on the device and in the interpreter");
    }
}

/// 2- and 4-bit integers: arithmetic wraps to the width, conversions from f32 saturate, and a
/// byte holding the value in its low bits (ml_dtypes' int4: 0x0f is -1) reads as that value.
#[test]
fn sub_byte_integers_wrap_and_saturate_as_in_the_interpreter() {
    let text = "HloModule ints
ENTRY main {
  a = s4[8] parameter(0)
  b = u4[8] parameter(1)
  f = f32[8] parameter(2)
  sa = s4[8] add(a, a)
  ma = s4[8] multiply(a, a)
  ub = u4[8] subtract(b, b)
  mb = u4[8] multiply(b, b)
  cs = s4[8] convert(f)
  cu = u4[8] convert(f)
  c2 = s2[8] convert(f)
  w = s32[8] convert(ma)
  ROOT t = (s4[8], s4[8], u4[8], u4[8], s4[8], u4[8], s2[8], s32[8]) tuple(sa, ma, ub, mb, cs, cu, c2, w)
}
";
    let a = vec![0x08, 0x0f, 0x00, 0x07, 0x03, 0x0c, 0xff, 0x81];
    let b = vec![0x00, 0x0f, 0x01, 0x08, 0x03, 0x0c, 0xff, 0x80];
    let f: Vec<u8> =
        [-9.5f32, -8.0, -1.5, 0.0, 3.7, 7.5, 100.0, f32::NAN].iter().flat_map(|v| v.to_le_bytes()).collect();
    let inputs = vec![a, b, f];
    let want = run_interp(&parse(text), &inputs);
    // -8 + -8 wraps to 0, -8 * -8 = 64 wraps to 0, 7 * 7 = 49 wraps to 1.
    assert_eq!(want[0][0] as i8, 0);
    assert_eq!(want[1][3] as i8, 1);
    let c = compile_checked(&parse_and_fuse(text));
    let got = run_vulkan(&vulkan(), &c, &inputs);
    assert_eq!(got, want, "Vulkan and the interpreter");
}
