//! f64 transcendental functions on Vulkan (lavapipe, validation on) against the reference
//! interpreter, which computes them with Rust's `f64` functions (the host libm: correctly
//! rounded or within an ulp).
//!
//! Each function runs over points of every binade with both signs, a dense uniform sweep of
//! its interesting interval, its domain edges and overflow thresholds, and the special values
//! (+-0, +-inf, NaN); binary functions over random pairs and a grid of special operands.
//! Distances are counted as the math suite counts them (`hlo-interp/tests/math_suite`):
//! subnormals flushed, NaN must meet NaN, infinities and the sign of zero must match.
//! The bounds are the largest distances measured, rounded up (docs/numerics.md);
//! `MATH_SUITE_REPORT=1` prints them.
//! Complex `expm1` (c128) and `log1p` (c64 and c128), which `lower-complex` turns into real
//! arithmetic, are compared with JAX's values at chosen points.

mod common;
#[path = "../../hlo-interp/tests/math_suite/mod.rs"]
mod math_suite;

use common::*;
use math_suite::{ulp_distance, Ty};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [lo, hi].
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * u
    }
}

const SPECIALS: [f64; 10] =
    [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1.0, -1.0, f64::MAX, -f64::MAX, f64::MIN_POSITIVE];

/// Points of every binade (both signs, three mantissas each), a uniform sweep of `[lo, hi]`,
/// the `edges` and the special values.
fn unary_points(lo: f64, hi: f64, edges: &[f64]) -> Vec<f64> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut v = Vec::new();
    for e in -1022..=1023 {
        for _ in 0..3 {
            let m = rng.uniform(1.0, 2.0);
            let x = m * 2f64.powi(e);
            v.push(x);
            v.push(-x);
        }
    }
    for _ in 0..20_000 {
        v.push(rng.uniform(lo, hi));
    }
    for &e in edges {
        // The edge and its neighbours.
        v.extend([e, f64::from_bits(e.to_bits() + 1), f64::from_bits(e.to_bits().wrapping_sub(1))]);
    }
    v.extend(SPECIALS);
    v.retain(|x| x.is_nan() || x.is_infinite() || *x == 0.0 || x.abs() >= f64::MIN_POSITIVE);
    v
}

fn to_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_bytes(b: &[u8]) -> Vec<f64> {
    b.chunks(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Runs `opcode` elementwise over `operands` on the device and on the interpreter (or on
/// `host`, where the interpreter's function is not accurate enough); returns the largest
/// distance and the points beyond `bound`, described.
fn measure(opcode: &str, operands: &[Vec<f64>], bound: u64) -> (u64, Vec<String>) {
    measure_with(opcode, operands, bound, None)
}

fn measure_with(opcode: &str, operands: &[Vec<f64>], bound: u64, host: Option<fn(f64) -> f64>) -> (u64, Vec<String>) {
    let n = operands[0].len();
    let params: String = (0..operands.len()).map(|k| format!("  p{k} = f64[{n}]{{0}} parameter({k})\n")).collect();
    let args: Vec<String> = (0..operands.len()).map(|k| format!("p{k}")).collect();
    let text =
        format!("HloModule m\n\nENTRY e {{\n{params}  ROOT r = f64[{n}]{{0}} {opcode}({})\n}}\n", args.join(", "));
    let module = parse_and_fuse(&text);
    let compiled = compile_checked(&module);
    let inputs: Vec<Vec<u8>> = operands.iter().map(|v| to_bytes(v)).collect();
    let ctx = vulkan();
    let got = from_bytes(&run_vulkan(&ctx, &compiled, &inputs)[0]);
    let want = match host {
        Some(f) => operands[0].iter().map(|&x| f(x)).collect(),
        None => from_bytes(&run_interp(&module, &inputs)[0]),
    };
    let mut max = 0;
    let mut bad = Vec::new();
    for i in 0..n {
        let d = ulp_distance(Ty::F64, got[i], want[i]);
        max = max.max(d.unwrap_or(u64::MAX));
        if d.is_none_or(|d| d > bound) {
            let ops: Vec<String> = operands.iter().map(|v| format!("{:e}", v[i])).collect();
            bad.push(format!("{opcode}({}): got {:e} want {:e} ({d:?} ulp)", ops.join(", "), got[i], want[i]));
        }
    }
    if std::env::var_os("MATH_SUITE_REPORT").is_some() {
        println!("{opcode}: max {max} ulp over {n} points");
    }
    (max, bad)
}

/// Checks a unary function within `bound` ulps of the interpreter.
fn check_unary(opcode: &str, lo: f64, hi: f64, edges: &[f64], bound: u64) {
    check_unary_with(opcode, lo, hi, edges, bound, None)
}

fn check_unary_with(opcode: &str, lo: f64, hi: f64, edges: &[f64], bound: u64, host: Option<fn(f64) -> f64>) {
    let (_, bad) = measure_with(opcode, &[unary_points(lo, hi, edges)], bound, host);
    assert!(bad.is_empty(), "{} points beyond {bound} ulp:\n{}", bad.len(), bad[..bad.len().min(12)].join("\n"));
}

#[test]
fn exp() {
    check_unary("exponential", -750.0, 710.0, &[709.782712893384, -708.3964185322641, -745.1332191019411], 2);
    check_unary("exponential", -2.0, 2.0, &[], 2);
}

#[test]
fn expm1() {
    check_unary("exponential-minus-one", -40.0, 710.0, &[709.782712893384, 1e-10, -1e-300], 2);
    check_unary("exponential-minus-one", -2.0, 2.0, &[0.34657359027997264, -0.34657359027997264], 2);
}

#[test]
fn log() {
    check_unary("log", 0.0, 4.0, &[1.0, std::f64::consts::FRAC_1_SQRT_2, std::f64::consts::SQRT_2], 1);
}

#[test]
fn log1p() {
    check_unary("log-plus-one", -1.0, 3.0, &[-1.0, -0.5, 1e-300], 2);
}

/// The double closest to a multiple of pi/2 (Muller's table): 6381956970095103 2^797 is
/// (4 n + 1) pi/2 + 4.68716592425462761e-19.
#[test]
fn sin_cos_worst_case_reduction() {
    let x = 6381956970095103.0 * 2f64.powi(797);
    let module = parse_and_fuse(
        "HloModule m\n\nENTRY e {\n  p = f64[2]{0} parameter(0)\n  s = f64[2]{0} sine(p)\n  c = f64[2]{0} cosine(p)\n  ROOT t = (f64[2]{0}, f64[2]{0}) tuple(s, c)\n}\n",
    );
    let compiled = compile_checked(&module);
    let out = run_vulkan(&vulkan(), &compiled, &[to_bytes(&[x, -x])]);
    // Exact to the last bit; the host libm (and so the interpreter) gives -4.68716592425462e-19,
    // 8 ulps off.
    assert_eq!(from_bytes(&out[0]), [1.0, -1.0]);
    assert_eq!(from_bytes(&out[1]), [-4.687165924254628e-19, -4.687165924254628e-19]);
}

#[test]
fn sin_cos_tan() {
    let edges = [std::f64::consts::FRAC_PI_2, std::f64::consts::PI, 1048576.0, 1e22];
    check_unary("sine", -10.0, 10.0, &edges, 1);
    check_unary("cosine", -10.0, 10.0, &edges, 1);
    check_unary("tan", -10.0, 10.0, &edges, 2);
    // Past the Cody-Waite range (Payne-Hanek).
    check_unary("sine", -1e9, 1e9, &edges, 1);
    check_unary("cosine", 1e15, 1e16, &edges, 1);
}

#[test]
fn tanh() {
    check_unary("tanh", -20.0, 20.0, &[0.5493061443340548, 19.06154746539849], 3);
}

#[test]
fn logistic() {
    check_unary("logistic", -750.0, 40.0, &[-709.0, 36.0], 3);
}

#[test]
fn atan() {
    check_unary("atan", -20.0, 20.0, &[1.0, 0.0625, 0.1875], 2);
}

#[test]
fn cbrt() {
    check_unary("cbrt", -10.0, 10.0, &[8.0, 27.0, 0.001], 1);
}

#[test]
fn compositions() {
    check_unary("asin", -1.0, 1.0, &[1.0, 0.5], 3);
    check_unary("acos", -1.0, 1.0, &[1.0, 0.5], 3);
    check_unary("sinh", -710.0, 710.0, &[710.4758600739439], 4);
    check_unary("cosh", -710.0, 710.0, &[710.4758600739439], 4);
    check_unary("asinh", -10.0, 10.0, &[1.340_780_792_994_259_6e154], 3);
    // Rust's acosh is `ln(x + sqrt(x^2 - 1))`, thousands of ulps off near 1: the reference is
    // `log1p` of the same quantity, within 2 ulps.
    check_unary_with("acosh", 1.0, 10.0, &[1.0, 8.988_465_674_311_58e307], 3, Some(acosh_reference));
    check_unary("atanh", -1.0, 1.0, &[1.0, 0.5], 3);
}

fn acosh_reference(x: f64) -> f64 {
    if x.is_nan() || x < 1.0 {
        f64::NAN
    } else if x >= 1e150 {
        x.ln() + std::f64::consts::LN_2
    } else {
        let a = x - 1.0;
        (a + (a * (x + 1.0)).sqrt()).ln_1p()
    }
}

/// Random pairs plus every pair of special operands.
fn binary_points(x: impl Fn(&mut Rng) -> f64, y: impl Fn(&mut Rng) -> f64, specials: &[f64]) -> Vec<Vec<f64>> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..30_000 {
        xs.push(x(&mut rng));
        ys.push(y(&mut rng));
    }
    for &a in specials {
        for &b in specials {
            xs.push(a);
            ys.push(b);
        }
    }
    vec![xs, ys]
}

/// A value of random sign and binade (normal).
fn any_binade(rng: &mut Rng) -> f64 {
    let e = (rng.next() % 2046) as i32 - 1022;
    let s = if rng.next() & 1 == 0 { 1.0 } else { -1.0 };
    s * rng.uniform(1.0, 2.0) * 2f64.powi(e)
}

#[test]
fn atan2() {
    let specials = [0.0, -0.0, 1.0, -1.0, 3.0, -2.5, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, f64::MAX, 1e-300];
    let pts = binary_points(any_binade, any_binade, &specials);
    let (_, bad) = measure("atan2", &pts, 2);
    assert!(bad.is_empty(), "{}", bad[..bad.len().min(12)].join("\n"));
    let pts = binary_points(|r| r.uniform(-4.0, 4.0), |r| r.uniform(-4.0, 4.0), &[]);
    let (_, bad) = measure("atan2", &pts, 2);
    assert!(bad.is_empty(), "{}", bad[..bad.len().min(12)].join("\n"));
}

#[test]
fn pow() {
    let specials = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -2.0, 3.0, -3.0, 0.25, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
    // Moderate results, then results across the whole range (|y log2 x| up to 1100), then
    // negative bases with integer exponents.
    let pts = binary_points(|r| r.uniform(0.0, 10.0), |r| r.uniform(-30.0, 30.0), &specials);
    let (_, bad) = measure("power", &pts, 2);
    assert!(bad.is_empty(), "{}", bad[..bad.len().min(12)].join("\n"));
    let pts = binary_points(
        |r| 2f64.powf(r.uniform(-1022.0, 1023.0)),
        |r| {
            let t = r.uniform(-1100.0, 1100.0);
            t / r.uniform(1.0, 1000.0)
        },
        &[],
    );
    let (_, bad) = measure("power", &pts, 2);
    assert!(bad.is_empty(), "{}", bad[..bad.len().min(12)].join("\n"));
    let pts = binary_points(|r| r.uniform(0.999, 1.001), |r| r.uniform(-1e6, 1e6), &[]);
    let (_, bad) = measure("power", &pts, 2);
    assert!(bad.is_empty(), "{}", bad[..bad.len().min(12)].join("\n"));
    let pts = binary_points(|r| r.uniform(-10.0, 0.0), |r| (r.uniform(-60.0, 60.0)).round(), &[]);
    let (_, bad) = measure("power", &pts, 2);
    assert!(bad.is_empty(), "{}", bad[..bad.len().min(12)].join("\n"));
}

#[test]
fn erf() {
    check_unary("erf", -6.0, 6.0, &[1.0, 2.0, 5.921587195794507], 2);
}

/// A JAX program with x64 enabled (`tests/cases/jax_x64_math/generate.py`: sin, cos, tan,
/// exp, expm1, log, log1p, tanh, sigmoid, atan2, pow, cbrt, erf combined), through the
/// pipeline and the device, against JAX's outputs on CPU.
#[test]
fn jax_x64_program() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/jax_x64_math");
    let module = parse_and_fuse(&std::fs::read_to_string(dir.join("module.hlo")).unwrap());
    let compiled = compile_checked(&module);
    let inputs = [read_npy(&dir.join("x.npy")), read_npy(&dir.join("y.npy"))];
    let got = from_bytes(&run_vulkan(&vulkan(), &compiled, &inputs)[0]);
    let want = from_bytes(&read_npy(&dir.join("out.npy")));
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        // A sum of a dozen functions' results: cancellation can magnify their few-ulp errors.
        let tol = 1e-13 * w.abs().max(1.0);
        assert!((g - w).abs() <= tol, "point {i}: got {g:e} want {w:e}");
    }
}

/// `sin` of large f64 arguments inside an elementwise `while`, whose loop kernel first runs
/// without Payne-Hanek and redoes the iteration with it where an argument needs it.
#[test]
fn payne_hanek_in_a_loop() {
    let text = "HloModule m

cond {
  p = (s32[], f64[8], f64[8]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  n = s32[] constant(3)
  ROOT lt = pred[] compare(i, n), direction=LT
}

body {
  p = (s32[], f64[8], f64[8]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  x = f64[8] get-tuple-element(p), index=1
  acc = f64[8] get-tuple-element(p), index=2
  one = s32[] constant(1)
  i1 = s32[] add(i, one)
  s = f64[8] sine(x)
  acc1 = f64[8] add(acc, s)
  step = f64[] constant(1000000)
  steps = f64[8] broadcast(step), dimensions={}
  x1 = f64[8] add(x, steps)
  ROOT t = (s32[], f64[8], f64[8]) tuple(i1, x1, acc1)
}

ENTRY e {
  x = f64[8] parameter(0)
  z = s32[] constant(0)
  zf = f64[] constant(0)
  acc = f64[8] broadcast(zf), dimensions={}
  t = (s32[], f64[8], f64[8]) tuple(z, x, acc)
  w = (s32[], f64[8], f64[8]) while(t), condition=cond, body=body
  ROOT r = f64[8] get-tuple-element(w), index=2
}
";
    let module = parse_and_fuse(text);
    let compiled = compile_checked(&module);
    let x = [0.5, -3.0, 1e5, 2e6, -1e9, 1e15, 3.1e17, -1e18];
    let inputs = [to_bytes(&x)];
    let got = from_bytes(&run_vulkan(&vulkan(), &compiled, &inputs)[0]);
    let want = from_bytes(&run_interp(&module, &inputs)[0]);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= 1e-15 * 3.0, "x = {:e}: got {g:e} want {w:e}", x[i]);
    }
}

/// JAX's `jnp.expm1` of `c128` points with x64 enabled (JAX 0.8.3 on CPU): near 0, where
/// `e^a cos b - 1` would cancel (XLA computes `expm1(a) cos b + cosm1(b)`), around `|b| = pi/4`,
/// where `cosm1` changes method, and where `e^a` is large or tiny.
const JAX_C128_EXPM1: [((f64, f64), (f64, f64)); 12] = [
    ((1e-10, 1e-10), (1e-10, 1.0000000001000001e-10)),
    ((1e-05, -3e-06), (1.0000045500121668e-05, -3.0000300001455004e-06)),
    ((0.0, 1e-07), (-4.999999999999995e-15, 9.999999999999982e-08)),
    ((-2e-08, 0.0), (-1.99999998e-08, 0.0)),
    ((0.3, 0.7), (0.032428962911661675, 0.8696029191140402)),
    ((0.1, 0.9), (-0.31301474068133567, 0.8657101198663658)),
    ((-1.0, 2.0), (-1.1530918656742264, 0.33451182923926226)),
    ((0.001, 0.001), (0.0009999996664999667, 0.0010010003333333001)),
    ((-0.5, -0.785), (-0.5709473264290403, -0.42871114339733923)),
    ((20.0, 3.0), (-480309904.06738126, 68466516.28659666)),
    ((-30.0, 0.5), (-0.999999999999918, 4.487029959180856e-14)),
    ((0.0, 0.0), (0.0, 0.0)),
];

/// Complex `expm1` of `c128` on both backends (the device through `lower-complex`) within a few
/// ulps of the larger part of JAX's result, so neither part may cancel near 0.
#[test]
fn complex_expm1_c128_matches_jax() {
    let n = JAX_C128_EXPM1.len();
    let text = format!(
        "HloModule m\nENTRY e {{\n  z = c128[{n}] parameter(0)\n  ROOT r = c128[{n}] exponential-minus-one(z)\n}}\n"
    );
    let z: Vec<u8> =
        JAX_C128_EXPM1.iter().flat_map(|((a, b), _)| [a.to_le_bytes(), b.to_le_bytes()]).flatten().collect();
    let interp = run_interp(&parse(&text), std::slice::from_ref(&z)).remove(0);
    let device = run_vulkan(&vulkan(), &compile_checked(&parse_and_fuse(&text)), &[z]).remove(0);
    for (backend, got) in [("interpreter", interp), ("Vulkan", device)] {
        let got = from_bytes(&got);
        for (i, (point, (re, im))) in JAX_C128_EXPM1.iter().enumerate() {
            let tol = 1e-14 * re.abs().max(im.abs());
            let (g_re, g_im) = (got[2 * i], got[2 * i + 1]);
            assert!(
                (g_re - re).abs() <= tol && (g_im - im).abs() <= tol,
                "{backend}: expm1{point:?} = ({g_re:e}, {g_im:e}), JAX ({re:e}, {im:e})"
            );
        }
    }
}

/// `log1p` of complex64 and complex128 points by JAX 0.8.3 on CPU (`jnp.log1p`): small, on the
/// circle `|1 + z| = 1` (where the real part cancels), near and at -1, negative real, huge,
/// infinite and NaN parts.
const JAX_C64_LOG1P: [((f64, f64), (f64, f64)); 24] = [
    ((0.0, 0.0), (0.0, 0.0)),
    ((9.99999993922529e-09, 9.99999993922529e-09), (9.99999993922529e-09, 9.99999993922529e-09)),
    ((-1.0000000116860974e-07, 0.0003000000142492354), (-5.499999389257937e-08, 0.00030000004335306585)),
    ((0.0010000000474974513, -0.0020000000949949026), (0.0010014964500442147, -0.001997999381273985)),
    ((0.5, 0.5), (0.4581453800201416, 0.32175055146217346)),
    ((-0.5, 0.20000000298023224), (-0.6189371347427368, 0.38050639629364014)),
    ((-2.0, 0.0), (0.0, 3.1415927410125732)),
    ((-2.5, -1.0), (0.5893275141716003, -2.5535900592803955)),
    ((-1.0, 0.0), (-f64::INFINITY, 0.0)),
    ((-1.0, 9.999999974752427e-07), (-13.815510749816895, 1.5707963705062866)),
    ((-0.8999999761581421, 0.05000000074505806), (-2.1910130977630615, 0.4636475145816803)),
    ((-9.999999747378752e-05, 0.014141780324280262), (-2.210394020596418e-11, 0.014142252504825592)),
    ((3.0, 4.0), (1.732867956161499, 0.7853981852531433)),
    ((1.0000000200408773e+20, 9.999999980506448e+18), (46.05667495727539, 0.09966865181922913)),
    ((-9.999999562023526e+24, -2.999999894026671e+30), (70.17616271972656, -1.5707995891571045)),
    ((1.0000000031710769e-30, 0.0), (1.0000000031710769e-30, 0.0)),
    ((-0.75, 0.6614378094673157), (-0.3465735912322998, 1.209429144859314)),
    ((1.9999999949504854e-06, -0.0020000000949949026), (3.999986347480444e-06, -0.0019999935757368803)),
    ((f64::INFINITY, 0.0), (f64::INFINITY, 0.0)),
    ((-f64::INFINITY, 1.0), (f64::INFINITY, 3.1415927410125732)),
    ((0.0, f64::INFINITY), (f64::INFINITY, 1.5707963705062866)),
    ((f64::NAN, 0.0), (f64::NAN, f64::NAN)),
    ((1.0, f64::NAN), (f64::NAN, f64::NAN)),
    ((f64::INFINITY, f64::INFINITY), (f64::INFINITY, 0.7853981852531433)),
];

const JAX_C128_LOG1P: [((f64, f64), (f64, f64)); 24] = [
    ((0.0, 0.0), (0.0, 0.0)),
    ((1e-08, 1e-08), (1e-08, 9.999999900000002e-09)),
    ((-1e-07, 0.0003), (-5.4999998024999677e-08, 0.00030000002100000076)),
    ((0.001, -0.002), (0.0010014963350915137, -0.0019979993393257262)),
    ((0.5, 0.5), (0.45814536593707755, 0.3217505543966422)),
    ((-0.5, 0.2), (-0.6189371780008086, 0.3805063771123649)),
    ((-2.0, 0.0), (0.0, 3.141592653589793)),
    ((-2.5, -1.0), (0.5893274981708231, -2.5535900500422257)),
    ((-1.0, 0.0), (-f64::INFINITY, 0.0)),
    ((-1.0, 1e-06), (-13.815510557964274, 1.5707963267948966)),
    ((-0.9, 0.05), (-2.191013317336941, 0.4636476090008062)),
    ((-0.0001, 0.01414178), (-2.9215800010898275e-11, 0.01414225141179864)),
    ((3.0, 4.0), (1.7328679513998633, 0.7853981633974483)),
    ((1e+20, 1e+19), (46.0566770253075, 0.09966865249116202)),
    ((-1e+25, -3e+30), (70.17616507849503, -1.57079966012823)),
    ((1e-30, 0.0), (1e-30, 0.0)),
    ((-0.75, 0.6614378), (-0.34657362701113403, 1.2094291890051145)),
    ((2e-06, -0.002), (3.999986000069333e-06, -0.001999993333363733)),
    ((f64::INFINITY, 0.0), (f64::INFINITY, 0.0)),
    ((-f64::INFINITY, 1.0), (f64::INFINITY, 3.141592653589793)),
    ((0.0, f64::INFINITY), (f64::INFINITY, 1.5707963267948966)),
    ((f64::NAN, 0.0), (f64::NAN, f64::NAN)),
    ((1.0, f64::NAN), (f64::NAN, f64::NAN)),
    ((f64::INFINITY, f64::INFINITY), (f64::INFINITY, 0.7853981633974483)),
];

/// Complex `log-plus-one` (which JAX expands before HLO, but other producers emit) on both
/// backends, the device through `lower-complex`: each part within `rtol` of JAX's relative to
/// itself (so a real part that cancels must not), non-finite parts exactly.
#[test]
fn complex_log1p_matches_jax() {
    for (ty, points, rtol) in [("c64", &JAX_C64_LOG1P, 2e-6), ("c128", &JAX_C128_LOG1P, 1e-13)] {
        let n = points.len();
        let text = format!(
            "HloModule m\nENTRY e {{\n  z = {ty}[{n}] parameter(0)\n  ROOT r = {ty}[{n}] log-plus-one(z)\n}}\n"
        );
        let z: Vec<u8> = if ty == "c64" {
            points
                .iter()
                .flat_map(|((a, b), _)| [(*a as f32).to_le_bytes(), (*b as f32).to_le_bytes()])
                .flatten()
                .collect()
        } else {
            points.iter().flat_map(|((a, b), _)| [a.to_le_bytes(), b.to_le_bytes()]).flatten().collect()
        };
        let interp = run_interp(&parse(&text), std::slice::from_ref(&z)).remove(0);
        let device = run_vulkan(&vulkan(), &compile_checked(&parse_and_fuse(&text)), &[z]).remove(0);
        for (backend, got) in [("interpreter", interp), ("Vulkan", device)] {
            let got: Vec<f64> = if ty == "c64" {
                got.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect()
            } else {
                from_bytes(&got)
            };
            for (i, (point, want)) in points.iter().enumerate() {
                for (g, w) in [(got[2 * i], want.0), (got[2 * i + 1], want.1)] {
                    let ok = if w.is_finite() {
                        (g - w).abs() <= rtol * w.abs()
                    } else {
                        g == w || g.is_nan() && w.is_nan()
                    };
                    assert!(
                        ok,
                        "{backend} {ty}: log1p{point:?} = ({:e}, {:e}), JAX {want:?}",
                        got[2 * i],
                        got[2 * i + 1]
                    );
                }
            }
        }
    }
}
