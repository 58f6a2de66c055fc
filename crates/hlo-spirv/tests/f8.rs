//! 8-bit floats on Vulkan and in the interpreter against JAX: conversions from f32 at the
//! rounding ties, the overflow thresholds, subnormals, signed zeros, infinities and NaN, and
//! f8 arithmetic (in f32, rounded once). The expected bit patterns were computed with JAX
//! 0.8.3 on CPU (`x.astype(jnp.float8_e4m3fn)`, ...), the same program as the module below.

mod common;
use common::*;

const MODULE: &str = "HloModule f8
ENTRY main {
  x = f32[16] parameter(0)
  b = f8e4m3fn[4] parameter(1)
  a = f8e4m3fn[16] convert(x)
  e = f8e5m2[16] convert(x)
  s = f8e4m3fn[4] add(b, b)
  w = f32[4] convert(b)
  ROOT r = (f8e4m3fn[16], f8e5m2[16], f8e4m3fn[4], f32[4]) tuple(a, e, s, w)
}
";

fn inputs() -> Vec<Vec<u8>> {
    let x: [f32; 16] = [
        500.0,
        464.0, // halfway between 448 and the NaN pattern: to 448 (even)
        465.0,
        463.0,
        448.0,
        1e-3,
        2f32.powi(-9), // e4m3fn's smallest subnormal
        2f32.powi(-10),
        3.0 * 2f32.powi(-11),
        2f32.powi(-11) * 1.0001,
        -0.0,
        f32::INFINITY,
        f32::NAN,
        -500.0,
        f32::NEG_INFINITY,
        -f32::NAN,
    ];
    let x: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    // 1.5, -448, 3, 0.25 in e4m3fn.
    let b = vec![0x3c, 0xfe, 0x44, 0x28];
    vec![x, b]
}

/// JAX's results, as bytes (the f8 arrays' bit patterns, then f32[4]).
fn jax_outputs() -> Vec<Vec<u8>> {
    vec![
        vec![127, 126, 127, 126, 126, 1, 1, 0, 1, 0, 128, 127, 127, 255, 255, 255],
        vec![96, 95, 95, 95, 95, 20, 24, 20, 22, 16, 128, 124, 126, 224, 252, 254],
        vec![68, 255, 76, 48],
        [1.5f32, -448.0, 3.0, 0.25].iter().flat_map(|v| v.to_le_bytes()).collect(),
    ]
}

#[test]
fn f8_conversions_and_arithmetic_match_jax_on_both_backends() {
    let m = parse(MODULE);
    assert_eq!(run_interp(&m, &inputs()), jax_outputs(), "interpreter");
    let fused = parse_and_fuse(MODULE);
    let c = compile_checked(&fused);
    let ctx = vulkan();
    assert_eq!(run_vulkan(&ctx, &c, &inputs()), jax_outputs(), "Vulkan");
}

/// Every e4m3fn and e5m2 pattern survives a trip through the device (f32 there) unchanged,
/// NaN patterns as NaN.
#[test]
fn every_f8_pattern_round_trips_through_the_device() {
    for ty in ["f8e4m3fn", "f8e5m2", "f8e4m3", "f8e3m4"] {
        let text =
            format!("HloModule m\nENTRY main {{\n  x = {ty}[256] parameter(0)\n  ROOT n = {ty}[256] negate(x)\n}}\n");
        let m = parse_and_fuse(&text);
        let c = compile_checked(&m);
        let ctx = vulkan();
        let bits: Vec<u8> = (0..=255u8).collect();
        let out = run_vulkan(&ctx, &c, &[bits.clone()]);
        let want = run_interp(&parse(&text), &[bits]);
        assert_eq!(out, want, "{ty}: negate on the device and in the interpreter");
    }
}
