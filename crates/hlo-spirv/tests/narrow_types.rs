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

/// The bytes of the `bitcast-convert` test: every nibble twice, then every nibble and crumb in
/// each position.
const BITCAST_BYTES: [u8; 32] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01, 0x23, 0x45,
    0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x1b,
];

/// JAX 0.8.3's `lax.bitcast_convert_type(x, jnp.int4)` of [`BITCAST_BYTES`] (low nibble first);
/// `jnp.uint4` and the `jnp.float4_e2m1fn` codes are these values modulo 16, and `u16` words of
/// the same bytes give the same `int4` sequence.
const JAX_S4: [i8; 64] = [
    0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, -8, -8, -7, -7, -6, -6, -5, -5, -4, -4, -3, -3, -2, -2, -1, -1, 1,
    0, 3, 2, 5, 4, 7, 6, -7, -8, -5, -6, -3, -4, -1, -2, -2, -1, -4, -3, -6, -5, -8, -7, 6, 7, 4, 5, 2, 3, -5, 1,
];

/// JAX's `lax.bitcast_convert_type(x, jnp.uint2)` of [`BITCAST_BYTES`] (lowest crumb first);
/// `jnp.int2` is these values wrapped to -2..1, and so is the `int2` of the `int4` above.
const JAX_U2: [u8; 128] = [
    0, 0, 0, 0, 1, 0, 1, 0, 2, 0, 2, 0, 3, 0, 3, 0, 0, 1, 0, 1, 1, 1, 1, 1, 2, 1, 2, 1, 3, 1, 3, 1, 0, 2, 0, 2, 1, 2,
    1, 2, 2, 2, 2, 2, 3, 2, 3, 2, 0, 3, 0, 3, 1, 3, 1, 3, 2, 3, 2, 3, 3, 3, 3, 3, 1, 0, 0, 0, 3, 0, 2, 0, 1, 1, 0, 1,
    3, 1, 2, 1, 1, 2, 0, 2, 3, 2, 2, 2, 1, 3, 0, 3, 3, 3, 2, 3, 2, 3, 3, 3, 0, 3, 1, 3, 2, 2, 3, 2, 0, 2, 1, 2, 2, 1,
    3, 1, 0, 1, 1, 1, 2, 0, 3, 0, 3, 2, 1, 0,
];

/// JAX's `int16` of the `int4[16,4]` that the `uint16` words of [`BITCAST_BYTES`] become.
const JAX_S16: [i16; 16] =
    [4352, 13090, 21828, 30566, -26232, -17494, -8756, -18, 8961, 26437, -21623, -4147, -8962, -26438, 21622, 6962];

/// `bitcast-convert` between bytes and 2- and 4-bit types, both ways, between 4- and 2-bit
/// types, and of `f4e2m1fn` (as values: its f32 is an output too), for `n` bytes and `n / 2`
/// (at least 1) `u16` words.
fn bitcast_module(n: usize) -> String {
    let m = (n / 2).max(1);
    format!(
        "HloModule bitcasts
ENTRY main {{
  x = u8[{n}] parameter(0)
  w = u16[{m}] parameter(1)
  s4 = s4[{n},2] bitcast-convert(x)
  u4 = u4[{n},2] bitcast-convert(x)
  f4 = f4e2m1fn[{n},2] bitcast-convert(x)
  s2 = s2[{n},4] bitcast-convert(x)
  u2 = u2[{n},4] bitcast-convert(x)
  b4 = u8[{n}] bitcast-convert(s4)
  bf = s8[{n}] bitcast-convert(f4)
  b2 = u8[{n}] bitcast-convert(s2)
  n2 = s2[{n},2,2] bitcast-convert(s4)
  fu = u2[{n},2,2] bitcast-convert(f4)
  f32 = f32[{n},2] convert(f4)
  su = u4[{n},2] bitcast-convert(s4)
  ws = s4[{m},4] bitcast-convert(w)
  sw = s16[{m}] bitcast-convert(ws)
  ROOT t = (s4[{n},2], u4[{n},2], f4e2m1fn[{n},2], s2[{n},4], u2[{n},4], u8[{n}], s8[{n}], u8[{n}], s2[{n},2,2], u2[{n},2,2], f32[{n},2], u4[{n},2], s4[{m},4], s16[{m}]) tuple(s4, u4, f4, s2, u2, b4, bf, b2, n2, fu, f32, su, ws, sw)
}}
"
    )
}

/// `bitcast-convert` with 2- and 4-bit sides (XLA adds a minor dimension on the narrow side,
/// element 0 in the lowest bits): the interpreter against JAX, and the device (where the
/// `bitcast-convert-expander` turns it into shifts, converts and, for `f4e2m1fn`, comparisons)
/// against the interpreter at sizes straddling the thresholds.
#[test]
fn sub_byte_bitcast_convert_matches_jax_on_both_backends() {
    let x = BITCAST_BYTES.to_vec();
    let got = run_interp(&parse(&bitcast_module(32)), &[x.clone(), x.clone()]);
    let low = |b: &[u8], bits: u32| -> Vec<u8> { b.iter().map(|&v| v & ((1u8 << bits) - 1)).collect() };
    let s4: Vec<u8> = JAX_S4.iter().map(|&v| v as u8 & 15).collect();
    assert_eq!(low(&got[0], 4), s4, "s4");
    assert_eq!(got[0].iter().map(|&v| v as i8).collect::<Vec<_>>(), JAX_S4, "s4 values");
    assert_eq!(got[1], s4, "u4");
    assert_eq!(low(&got[2], 4), s4, "f4e2m1fn codes");
    assert_eq!(low(&got[3], 2), JAX_U2, "s2");
    assert!(got[3].iter().all(|&v| (v as i8) >= -2 && (v as i8) <= 1), "s2 values");
    assert_eq!(got[4], JAX_U2, "u2");
    for k in [5, 6, 7] {
        assert_eq!(got[k], x, "output {k} round-trips to the bytes");
    }
    assert_eq!(low(&got[8], 2), JAX_U2, "s4 to s2");
    assert_eq!(got[9], JAX_U2, "f4e2m1fn to u2");
    assert_eq!(got[11], s4, "s4 to u4");
    assert_eq!(low(&got[12], 4), s4, "u16 to s4");
    let s16: Vec<u8> = JAX_S16.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(got[13], s16, "s4 to s16");

    let ctx = vulkan();
    for n in [1usize, 8, 16, 17, 32, 64, 256] {
        let text = bitcast_module(n);
        let mut next = 0x2545_f491_4f6c_dd1du64;
        let mut bytes = |len: usize| -> Vec<u8> {
            (0..len)
                .map(|i| {
                    next ^= next << 13;
                    next ^= next >> 7;
                    next ^= next << 17;
                    if i < 32 && n >= 32 {
                        BITCAST_BYTES[i]
                    } else {
                        next as u8
                    }
                })
                .collect()
        };
        let inputs = vec![bytes(n), bytes(2 * (n / 2).max(1))];
        let want = run_interp(&parse(&text), &inputs);
        let c = compile_checked(&parse_and_fuse(&text));
        let got = run_vulkan(&ctx, &c, &inputs);
        assert_eq!(got, want, "n = {n}: Vulkan and the interpreter");
    }
}
