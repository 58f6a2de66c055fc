//! Execution tests per op family: small modules through the pipeline, this compiler and
//! lavapipe (validation layer on), compared with hlo-interp in XLA:CPU's floating-point
//! environment (denormals flushed, multiply-adds contracted) on inputs full of edge cases.
//! `tol == 0.0` means bit-exact (NaNs compare equal); otherwise relative L2 error.

mod common;
use common::*;
use hlo_ir::{DType, Literal, Shape};

/// Edge-case-heavy input bytes for one parameter.
fn inputs_for(shape: &Shape, seed: u64, kind: Inputs) -> Vec<u8> {
    let a = shape.as_array().expect("array parameter");
    let n = a.num_elements() as usize;
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x1234_5678;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const FLOATS: [f32; 22] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        1.5,
        2.5,
        -2.5,
        3.0,
        1e-30,
        -1e-30,
        1e30,
        -1e30,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1e-40,
        -1e-40,
        65504.0,
        70000.0,
        3.0e38,
    ];
    const INTS: [i64; 16] = [0, 1, -1, 2, -2, 7, 31, 32, 33, 100, 127, -128, 255, i32::MIN as i64, i32::MAX as i64, -7];
    let mut out = Vec::new();
    for i in 0..n {
        let r = next();
        let f: f32 = match kind {
            Inputs::Special if i < FLOATS.len() => FLOATS[(i + seed as usize) % FLOATS.len()],
            Inputs::Range(lo, hi) | Inputs::SpecialRange(lo, hi) => {
                lo + (hi - lo) * ((r >> 11) as f64 / (1u64 << 53) as f64) as f32
            }
            _ => ((r >> 11) as f64 / (1u64 << 53) as f64 * 20.0 - 10.0) as f32,
        };
        let int: i64 = match kind {
            Inputs::Special | Inputs::SpecialRange(..) if i < INTS.len() => INTS[(i + seed as usize) % INTS.len()],
            Inputs::Range(lo, hi) | Inputs::SpecialRange(lo, hi) => lo as i64 + (r % ((hi - lo) as u64).max(1)) as i64,
            _ => (r % 200) as i64 - 100,
        };
        match a.dtype {
            DType::F32 => out.extend_from_slice(&f.to_le_bytes()),
            DType::F16 => out.extend_from_slice(&half::f16::from_f32(f).to_le_bytes()),
            DType::BF16 => out.extend_from_slice(&half::bf16::from_f32(f).to_le_bytes()),
            DType::F64 => out.extend_from_slice(&(f as f64 * 1.000_000_1).to_le_bytes()),
            DType::S64 => out.extend_from_slice(&(int * 1_000_003).to_le_bytes()),
            DType::U64 => out.extend_from_slice(&((int as u64).wrapping_mul(1_000_003)).to_le_bytes()),
            DType::S32 => out.extend_from_slice(&(int as i32).to_le_bytes()),
            DType::U32 => out.extend_from_slice(&(int as u32).to_le_bytes()),
            DType::S16 => out.extend_from_slice(&(int as i16).to_le_bytes()),
            DType::U16 => out.extend_from_slice(&(int as u16).to_le_bytes()),
            DType::S8 => out.push(int as i8 as u8),
            DType::U8 => out.push(int as u8),
            DType::Pred => out.push((r & 1) as u8),
            other => panic!("no test inputs for {other}"),
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Inputs {
    /// Special values first (NaN, infinities, signed zeros, denormals, extremes), then random.
    Special,
    /// Uniform in `[lo, hi)` (integers too).
    Range(f32, f32),
    /// Special integers first, then uniform in `[lo, hi)`.
    SpecialRange(f32, f32),
}

/// Runs `hlo` on Vulkan and in hlo-interp and compares every output.
fn check(hlo: &str, kind: Inputs, tol: f64) {
    let m = parse_and_fuse(hlo);
    let c = compile_checked(&m);
    let entry = m.entry_comp();
    let inputs: Vec<Vec<u8>> =
        entry.param_shapes().iter().enumerate().map(|(k, s)| inputs_for(s, k as u64 + 1, kind)).collect();
    let args: Vec<Literal> = entry
        .param_shapes()
        .iter()
        .zip(&inputs)
        .map(|(s, b)| hlo_interp::literal_from_bytes(s.as_array().unwrap(), b).unwrap())
        .collect();
    let want =
        hlo_interp::evaluate_with(&m, &args, &hlo_interp::Options::xla_cpu()).unwrap_or_else(|e| panic!("interp: {e}"));
    let mut want_bytes = Vec::new();
    flatten_literal(&want, &mut want_bytes);
    let ctx = vulkan();
    let got = run_vulkan(&ctx, &c, &inputs);
    for (k, io) in c.outputs.iter().enumerate() {
        if let Err(e) = compare(io.dtype, &got[k], &want_bytes[k], tol) {
            panic!("output {k} ({}{:?}): {e}\n{}", io.dtype, io.dims, c.wgsl());
        }
    }
}

fn flatten_literal(l: &Literal, out: &mut Vec<Vec<u8>>) {
    match l.tuple_elements() {
        Some(t) => t.iter().for_each(|e| flatten_literal(e, out)),
        None => out.push(hlo_interp::literal_to_bytes(l).unwrap()),
    }
}

/// A module applying `body` (which names the parameters `x`, `y`) to `ty[n]` parameters.
fn elementwise(ty: &str, n: usize, params: usize, results: &[(&str, &str)]) -> String {
    let mut s = String::from("HloModule m\n\nENTRY e {\n");
    for (k, name) in ["x", "y", "z"].iter().take(params).enumerate() {
        s += &format!("  {name} = {ty}[{n}] parameter({k})\n");
    }
    let mut names = Vec::new();
    for (k, (rty, expr)) in results.iter().enumerate() {
        s += &format!("  r{k} = {rty}[{n}] {expr}\n");
        names.push(format!("r{k}"));
    }
    let shapes: Vec<String> = results.iter().map(|(rty, _)| format!("{rty}[{n}]")).collect();
    s += &format!("  ROOT t = ({}) tuple({})\n}}\n", shapes.join(", "), names.join(", "));
    s
}

#[test]
fn float_binary_exact() {
    let ops = [
        ("f32", "add(x, y)"),
        ("f32", "subtract(x, y)"),
        ("f32", "multiply(x, y)"),
        ("f32", "divide(x, y)"),
        ("f32", "remainder(x, y)"),
    ];
    check(&elementwise("f32", 300, 2, &ops), Inputs::Special, 0.0);
    let minmax = [("f32", "maximum(x, y)"), ("f32", "minimum(x, y)")];
    check(&elementwise("f32", 300, 2, &minmax), Inputs::Range(-3.0, 3.0), 0.0);
}

/// Float arithmetic with a literal zero operand keeps IEEE semantics: -0.0, infinities and NaN
/// (lavapipe's LLVM builder short-circuits `0 + x`, `x * 0`, `0 / x` and `x / 0` unless the
/// emitter spells them out).
#[test]
fn literal_zero_operands() {
    let zero = "z = f32[] constant(0)\n  zb = f32[300] broadcast(z), dimensions={}\n  \
                nz = f32[] constant(-0)\n  nzb = f32[300] broadcast(nz), dimensions={}\n  ";
    let ops = [
        ("f32", "multiply(x, zb)"),
        ("f32", "multiply(zb, x)"),
        ("f32", "divide(zb, x)"),
        ("f32", "divide(x, zb)"),
        ("f32", "subtract(zb, x)"),
        ("f32", "add(zb, x)"),
        ("f32", "multiply(x, nzb)"),
        ("f32", "divide(nzb, x)"),
        ("f32", "divide(x, nzb)"),
        ("f32", "subtract(nzb, x)"),
        ("f32", "subtract(x, nzb)"),
    ];
    let hlo = elementwise("f32", 300, 1, &ops).replacen("  r0 =", &format!("  {zero}r0 ="), 1);
    check(&hlo, Inputs::Special, 0.0);
}

/// Selects between the constants ±1 and ±0 (`jnp.where(x > 0, -1.0, 0.0)`): Mesa's NIR turns
/// them into `±b2f(c)` whatever the zero's sign, so the emitter computes them as exact arithmetic
/// (`Kb::select_unit_or_zero`); difftest seed 9383 found `select(c, -1, 0)` giving -0.
#[test]
fn selects_between_unit_and_zero_constants_keep_the_zero_sign() {
    for ty in ["f32", "f64"] {
        let mut consts = String::new();
        let mut ops = Vec::new();
        for (k, (a, b)) in
            [("1", "0"), ("-1", "0"), ("1", "-0"), ("-1", "-0"), ("0", "1"), ("0", "-1"), ("-0", "1"), ("-0", "-1")]
                .into_iter()
                .enumerate()
        {
            consts.push_str(&format!(
                "a{k} = {ty}[] constant({a})\n  ab{k} = {ty}[300] broadcast(a{k}), dimensions={{}}\n  \
                 b{k} = {ty}[] constant({b})\n  bb{k} = {ty}[300] broadcast(b{k}), dimensions={{}}\n  "
            ));
            ops.push((ty, format!("select(c, ab{k}, bb{k})")));
        }
        consts.push_str(&format!("z = {ty}[] constant(0)\n  zb = {ty}[300] broadcast(z), dimensions={{}}\n  c = pred[300] compare(x, zb), direction=GT\n  "));
        let ops: Vec<(&str, &str)> = ops.iter().map(|(t, o)| (*t, o.as_str())).collect();
        let hlo = elementwise(ty, 300, 1, &ops).replacen("  r0 =", &format!("  {consts}r0 ="), 1);
        check(&hlo, Inputs::Special, 0.0);
    }
}

/// XLA emits LLVM's `maximum`/`minimum`: NaN wins, and +0 is greater than -0 in either order
/// (JAX's `float_special` sample agrees; checked by hand rather than against the interpreter).
#[test]
fn float_max_min_signed_zero_and_nan() {
    let hlo = elementwise("f32", 6, 2, &[("f32", "maximum(x, y)"), ("f32", "minimum(x, y)")]);
    let m = parse_and_fuse(&hlo);
    let c = compile_checked(&m);
    let x = [-0.0f32, 0.0, f32::NAN, 1.0, 2.0, -0.0];
    let y = [0.0f32, -0.0, 1.0, f32::NAN, 2.0, -0.0];
    let bytes = |v: &[f32]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
    let out = run_vulkan(&vulkan(), &c, &[bytes(&x), bytes(&y)]);
    let get = |b: &[u8]| b.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect::<Vec<f32>>();
    let (max, min) = (get(&out[0]), get(&out[1]));
    let bits = |v: &[f32]| v.iter().map(|f| if f.is_nan() { u32::MAX } else { f.to_bits() }).collect::<Vec<u32>>();
    assert_eq!(bits(&max), bits(&[0.0, 0.0, f32::NAN, f32::NAN, 2.0, -0.0]));
    assert_eq!(bits(&min), bits(&[-0.0, -0.0, f32::NAN, f32::NAN, 2.0, -0.0]));
}

/// f64 rounding to integers, bit for bit against Rust's `round_ties_even` and `round`: lavapipe's
/// own f64 `roundEven` gives -1 for -1.5 and +0 for -0.3, so the emitter rounds on the bits
/// (difftest seeds 95523, 95731). The values straddle every threshold of that code: |x| below
/// and at 0.5 and 1, ties at each parity, 2^27 - 0.5 (where a sign-bit fix once failed), the
/// last fractional doubles below 2^52, carries into the exponent, subnormals, inf and NaN.
#[test]
fn f64_rounding_matches_ieee_at_every_threshold() {
    let mut x: Vec<f64> = vec![
        0.0,
        -0.0,
        0.3,
        -0.3,
        0.5,
        -0.5,
        0.49999999999999994,
        -0.49999999999999994,
        0.7,
        -0.7,
        1.0,
        -1.0,
        1.5,
        -1.5,
        2.5,
        -2.5,
        3.5,
        -3.5,
        0.9999999999999999,
        1.0000000000000002,
        5e-324,
        -5e-324,
        1e-310,
        -1e-310,
        4503599627370495.5,
        -4503599627370495.5,
        4503599627370494.5,
        4503599627370496.0,
        9007199254740993.0,
        1e300,
        -1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        f64::MIN,
    ];
    for e in [27, 31, 35, 51] {
        let p = (1u64 << e) as f64;
        x.extend([p - 0.5, -(p - 0.5), p - 1.5, p + 0.5, p - 0.25, p - 0.75]);
    }
    let n = x.len();
    let hlo = elementwise("f64", n, 1, &[("f64", "round-nearest-even(x)"), ("f64", "round-nearest-afz(x)")]);
    let c = compile_checked(&parse_and_fuse(&hlo));
    let bytes: Vec<u8> = x.iter().flat_map(|f| f.to_le_bytes()).collect();
    let out = run_vulkan(&vulkan(), &c, &[bytes]);
    let bits = |b: &[u8]| b.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect::<Vec<u64>>();
    let want_even: Vec<u64> = x.iter().map(|v| v.round_ties_even().to_bits()).collect();
    let want_away: Vec<u64> = x.iter().map(|v| v.round().to_bits()).collect();
    assert_eq!(bits(&out[0]), want_even, "round-nearest-even of {x:?}");
    assert_eq!(bits(&out[1]), want_away, "round-nearest-afz of {x:?}");
    // NaN keeps its payload and sign.
    let nan = f64::from_bits(0xfff8_0000_0000_1234);
    let c1 = compile_checked(&parse_and_fuse(&elementwise("f64", 1, 1, &[("f64", "round-nearest-even(x)")])));
    let out = run_vulkan(&vulkan(), &c1, &[nan.to_le_bytes().to_vec()]);
    assert_eq!(bits(&out[0]), vec![nan.to_bits()]);
}

/// `remainder`'s NaN results bit for bit, as jax 0.8.3's XLA:CPU gives them: the canonical +NaN
/// for a zero or NaN divisor and for an infinite dividend, and a NaN dividend unchanged (sign,
/// payload, signalling bit) otherwise. libm's `fmod` returns a NaN divisor instead, which once
/// made the interpreter disagree after a TOTALORDER compare (difftest seed 100794, f8e4m3fn).
#[test]
fn remainder_nans_follow_xla_bit_for_bit() {
    let specials32: [u32; 10] = [
        0x4000_0000,
        0xc000_0000,
        0x7fc0_0000,
        0xffc0_0000,
        0x7fc0_0001,
        0x7f80_0000,
        0xff80_0000,
        0,
        0x8000_0000,
        0x7f80_0001,
    ];
    let want = |x: u32, y: u32| -> Option<u32> {
        let (fx, fy) = (f32::from_bits(x), f32::from_bits(y));
        if fy.is_nan() || fy == 0.0 || fx.is_infinite() {
            Some(0x7fc0_0000)
        } else if fx.is_nan() {
            Some(x)
        } else {
            None
        }
    };
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for &x in &specials32 {
        for &y in &specials32 {
            xs.push(x);
            ys.push(y);
        }
    }
    let n = xs.len();
    let c32 = compile_checked(&parse_and_fuse(&elementwise("f32", n, 2, &[("f32", "remainder(x, y)")])));
    let le32 = |v: &[u32]| v.iter().flat_map(|b| b.to_le_bytes()).collect::<Vec<u8>>();
    let out = run_vulkan(&vulkan(), &c32, &[le32(&xs), le32(&ys)]);
    let got: Vec<u32> = out[0].chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
    for k in 0..n {
        if let Some(w) = want(xs[k], ys[k]) {
            assert_eq!(got[k], w, "f32 remainder({:#x}, {:#x})", xs[k], ys[k]);
        }
    }
    // The same cases in f64, and both backends agree on every bit (`check` compares NaNs by bits
    // only through a bitcast, so compare the integer views).
    let wide = |b: u32| -> u64 {
        let f = f32::from_bits(b) as f64;
        if f.is_nan() {
            ((b as u64 & 0x8000_0000) << 32) | 0x7ff0_0000_0000_0000 | ((b as u64 & 0x7f_ffff) << 29)
        } else {
            f.to_bits()
        }
    };
    let (xs64, ys64): (Vec<u64>, Vec<u64>) = xs.iter().zip(&ys).map(|(&x, &y)| (wide(x), wide(y))).unzip();
    let c64 = compile_checked(&parse_and_fuse(&elementwise("f64", n, 2, &[("f64", "remainder(x, y)")])));
    let le64 = |v: &[u64]| v.iter().flat_map(|b| b.to_le_bytes()).collect::<Vec<u8>>();
    let out = run_vulkan(&vulkan(), &c64, &[le64(&xs64), le64(&ys64)]);
    let got: Vec<u64> = out[0].chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
    for k in 0..n {
        if let Some(w) = want(xs[k], ys[k]) {
            assert_eq!(got[k], wide(w), "f64 remainder({:#x}, {:#x})", xs64[k], ys64[k]);
        }
    }
    let bits_hlo = "HloModule m\n\nENTRY e {\n  x = f32[64] parameter(0)\n  y = f32[64] parameter(1)\n  \
                    r = f32[64] remainder(x, y)\n  ROOT b = u32[64] bitcast-convert(r)\n}\n";
    check(bits_hlo, Inputs::Special, 0.0);
}

/// An argmin over subnormals: XLA:CPU reads them as zero (DAZ), so every element ties and the
/// first index wins (`jnp.argmin([1e-40, 0, 5e-41])` is 0 in jax 0.8.3). The row-reduction
/// kernel once passed its elements to the reducer unflushed (difftest seed 93094, f64).
#[test]
fn argmin_reads_subnormals_as_zero() {
    for (ty, tiny) in [("f32", f32::from_bits(1) as f64), ("f64", f64::from_bits(1))] {
        for (rows, cols, dim) in [(255usize, 16usize, 0), (16, 255, 1), (4097, 1, 0), (1, 300, 1)] {
            let keep = if dim == 0 { cols } else { rows };
            let hlo = argmin_module(ty, rows, cols, dim, false);
            let c = compile_checked(&parse_and_fuse(&hlo));
            let n = rows * cols;
            // 0, then subnormals of both signs and +-0 in a pattern whose true minimum is late.
            let vals: Vec<f64> = (0..n).map(|k| [tiny * 3.0, 0.0, tiny, -0.0, tiny * 2.0, -tiny][k % 6]).collect();
            let bytes: Vec<u8> = if ty == "f32" {
                vals.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect()
            } else {
                vals.iter().flat_map(|&v| v.to_le_bytes()).collect()
            };
            let out = run_vulkan(&vulkan(), &c, &[bytes]);
            let got: Vec<i32> = out[0].chunks(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect();
            assert_eq!(got, vec![0; keep], "{ty}[{rows},{cols}] argmin over dimension {dim}");
        }
    }
}

/// An argmin (XLA's: NaN wins, ties go to the lower index) of `ty[rows, cols]` along `dim`, with
/// an iota for the indices; the root is the indices, or `(values, indices)` with `values`.
fn argmin_module(ty: &str, rows: usize, cols: usize, dim: usize, values: bool) -> String {
    let keep = if dim == 0 { cols } else { rows };
    let root = if values {
        format!(
            "v = {ty}[{keep}] get-tuple-element(r), index=0\n  i = s32[{keep}] get-tuple-element(r), index=1\n  \
             ROOT t = ({ty}[{keep}], s32[{keep}]) tuple(v, i)"
        )
    } else {
        format!("ROOT i = s32[{keep}] get-tuple-element(r), index=1")
    };
    format!(
        "HloModule m\n\nargmin {{\n  a = {ty}[] parameter(0)\n  ai = s32[] parameter(1)\n  \
         b = {ty}[] parameter(2)\n  bi = s32[] parameter(3)\n  lt = pred[] compare(a, b), direction=LT\n  \
         nan = pred[] compare(a, a), direction=NE\n  pick_a = pred[] or(lt, nan)\n  \
         eq = pred[] compare(a, b), direction=EQ\n  ilt = pred[] compare(ai, bi), direction=LT\n  \
         tie = pred[] and(eq, ilt)\n  v = {ty}[] select(pick_a, a, b)\n  \
         pick_ai = pred[] or(pick_a, tie)\n  i = s32[] select(pick_ai, ai, bi)\n  \
         ROOT r = ({ty}[], s32[]) tuple(v, i)\n}}\n\nENTRY e {{\n  x = {ty}[{rows},{cols}] parameter(0)\n  \
         iota = s32[{rows},{cols}] iota(), iota_dimension={dim}\n  inf = {ty}[] constant(inf)\n  \
         zero = s32[] constant(0)\n  r = ({ty}[{keep}], s32[{keep}]) reduce(x, iota, inf, zero), \
         dimensions={{{dim}}}, to_apply=argmin\n  {root}\n}}\n"
    )
}

/// What an argmin only selects keeps its bits: XLA:CPU compares subnormals as zero (DAZ) but
/// returns the selected element as it is in memory (a blend), so the minimum of equal
/// subnormals is that subnormal, not 0. The reduction kernels had flushed the elements before
/// the reducer saw them (difftest seed 171983, bf16). Every element is the same here, so the
/// value does not depend on the order in which ties meet.
#[test]
fn argmin_value_keeps_subnormal_bits() {
    for (ty, bits) in [("f32", 0x8000_0003u32), ("f32", 7), ("bf16", 3), ("f64", 5)] {
        for (rows, cols, dim) in [(255usize, 16usize, 0), (16, 255, 1), (4097, 1, 0), (1, 300, 1), (34, 2, 1)] {
            let keep = if dim == 0 { cols } else { rows };
            let hlo = argmin_module(ty, rows, cols, dim, true);
            let c = compile_checked(&parse_and_fuse(&hlo));
            let n = rows * cols;
            let element: Vec<u8> = match ty {
                "f32" => bits.to_le_bytes().to_vec(),
                "bf16" => (bits as u16).to_le_bytes().to_vec(),
                _ => u64::from(bits).to_le_bytes().to_vec(),
            };
            let bytes: Vec<u8> = element.iter().copied().cycle().take(n * element.len()).collect();
            let out = run_vulkan(&vulkan(), &c, &[bytes]);
            let want: Vec<u8> = element.iter().copied().cycle().take(keep * element.len()).collect();
            assert_eq!(out[0], want, "{ty}[{rows},{cols}] argmin value over dimension {dim}");
            let index: Vec<i32> = out[1].chunks(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect();
            assert_eq!(index, vec![0; keep], "{ty}[{rows},{cols}] argmin index over dimension {dim}");
        }
    }
}

/// `bitcast-convert` between pred and 8-bit integers (XLA's `S8ToPred`): a nonzero byte reads as
/// true, true is the byte 1. It was an internal compiler error (a u32 select condition).
#[test]
fn bitcast_convert_between_pred_and_bytes() {
    for ty in ["s8", "u8"] {
        check(&elementwise(ty, 300, 1, &[("pred", "bitcast-convert(x)")]), Inputs::Special, 0.0);
        check(&elementwise("pred", 300, 1, &[(ty, "bitcast-convert(x)")]), Inputs::Special, 0.0);
    }
}

/// Integer `power` (XLA's int4 `Binary/power` tests; JAX itself expands `x ** n` into
/// multiplies): wrapping square-and-multiply, `x^0 = 1`, `1^y = 1`, negative exponents 0.
#[test]
fn integer_power_wraps_like_xla() {
    for ty in ["s32", "u32", "s8", "u8", "s16", "s64", "u64"] {
        check(&elementwise(ty, 300, 2, &[(ty, "power(x, y)")]), Inputs::Special, 0.0);
    }
}

#[test]
fn float_unary_exact() {
    let ops = [
        ("f32", "abs(x)"),
        ("f32", "negate(x)"),
        ("f32", "floor(x)"),
        ("f32", "ceil(x)"),
        ("f32", "round-nearest-even(x)"),
        ("f32", "round-nearest-afz(x)"),
        ("f32", "sign(x)"),
        ("pred", "is-finite(x)"),
        ("f32", "sqrt(x)"),
    ];
    check(&elementwise("f32", 300, 1, &ops), Inputs::Special, 0.0);
}

#[test]
fn float_transcendental() {
    let ops = [
        ("f32", "exponential(x)"),
        ("f32", "exponential-minus-one(x)"),
        ("f32", "sine(x)"),
        ("f32", "cosine(x)"),
        ("f32", "tan(x)"),
        ("f32", "tanh(x)"),
        ("f32", "logistic(x)"),
        ("f32", "erf(x)"),
        ("f32", "cbrt(x)"),
        ("f32", "atan2(x, y)"),
        ("f32", "power(x, y)"),
    ];
    check(&elementwise("f32", 512, 2, &ops), Inputs::Range(-4.0, 4.0), 2e-6);
    let logs = [("f32", "log(x)"), ("f32", "log-plus-one(x)"), ("f32", "rsqrt(x)"), ("f32", "power(x, y)")];
    check(&elementwise("f32", 512, 2, &logs), Inputs::Range(0.001, 8.0), 2e-6);
}

#[test]
fn int_arith() {
    let ops = [
        ("s32", "add(x, y)"),
        ("s32", "subtract(x, y)"),
        ("s32", "multiply(x, y)"),
        ("s32", "divide(x, y)"),
        ("s32", "remainder(x, y)"),
        ("s32", "maximum(x, y)"),
        ("s32", "minimum(x, y)"),
        ("s32", "abs(x)"),
        ("s32", "negate(x)"),
        ("s32", "sign(x)"),
        ("s32", "shift-left(x, y)"),
        ("s32", "shift-right-arithmetic(x, y)"),
        ("s32", "shift-right-logical(x, y)"),
        ("s32", "and(x, y)"),
        ("s32", "or(x, y)"),
        ("s32", "xor(x, y)"),
        ("s32", "not(x)"),
        ("s32", "popcnt(x)"),
        ("s32", "count-leading-zeros(x)"),
    ];
    check(&elementwise("s32", 256, 2, &ops), Inputs::SpecialRange(-40.0, 40.0), 0.0);
    let unsigned = [
        ("u32", "divide(x, y)"),
        ("u32", "remainder(x, y)"),
        ("u32", "shift-right-logical(x, y)"),
        ("u32", "shift-right-arithmetic(x, y)"),
        ("u32", "maximum(x, y)"),
        ("u32", "count-leading-zeros(x)"),
    ];
    check(&elementwise("u32", 256, 2, &unsigned), Inputs::SpecialRange(0.0, 40.0), 0.0);
}

#[test]
fn narrow_int_wraparound() {
    let ops = [
        ("s8", "add(x, y)"),
        ("s8", "multiply(x, y)"),
        ("s8", "divide(x, y)"),
        ("s8", "shift-left(x, y)"),
        ("s8", "shift-right-logical(x, y)"),
        ("s8", "negate(x)"),
        ("s8", "count-leading-zeros(x)"),
    ];
    check(&elementwise("s8", 128, 2, &ops), Inputs::SpecialRange(-128.0, 127.0), 0.0);
    let u8ops = [("u8", "add(x, y)"), ("u8", "subtract(x, y)"), ("u8", "multiply(x, y)"), ("u8", "not(x)")];
    check(&elementwise("u8", 128, 2, &u8ops), Inputs::Range(0.0, 255.0), 0.0);
    let s16 = [("s16", "add(x, y)"), ("s16", "multiply(x, y)"), ("s16", "popcnt(x)")];
    check(&elementwise("s16", 128, 2, &s16), Inputs::SpecialRange(-30000.0, 30000.0), 0.0);
}

#[test]
fn compare_select_clamp() {
    let ops = [
        ("pred", "compare(x, y), direction=EQ"),
        ("pred", "compare(x, y), direction=NE"),
        ("pred", "compare(x, y), direction=LT"),
        ("pred", "compare(x, y), direction=GE"),
        ("pred", "compare(x, y), direction=LT, type=TOTALORDER"),
        ("pred", "compare(x, y), direction=EQ, type=TOTALORDER"),
        ("f32", "clamp(y, x, z)"),
    ];
    check(&elementwise("f32", 200, 3, &ops), Inputs::Special, 0.0);
    let hlo = "HloModule m\n\nENTRY e {\n  p = pred[64] parameter(0)\n  x = s32[64] parameter(1)\n  y = s32[64] parameter(2)\n  ROOT s = s32[64] select(p, x, y)\n}\n";
    check(hlo, Inputs::Special, 0.0);
}

#[test]
fn convert_saturation_and_narrow_floats() {
    let ops = [
        ("s32", "convert(x)"),
        ("u32", "convert(x)"),
        ("s8", "convert(x)"),
        ("u8", "convert(x)"),
        ("s16", "convert(x)"),
        ("pred", "convert(x)"),
        ("bf16", "convert(x)"),
        ("f16", "convert(x)"),
        ("s32", "bitcast-convert(x)"),
    ];
    check(&elementwise("f32", 200, 1, &ops), Inputs::Special, 0.0);
    let from_int = [
        ("f32", "convert(x)"),
        ("u8", "convert(x)"),
        ("s8", "convert(x)"),
        ("pred", "convert(x)"),
        ("f16", "convert(x)"),
    ];
    check(&elementwise("s32", 200, 1, &from_int), Inputs::SpecialRange(-100000.0, 100000.0), 0.0);
}

#[test]
fn bf16_and_f16_rounding() {
    // Every op rounds to the narrow type; values straddle ties and the f16 subnormal range.
    let ops = [
        ("bf16", "add(x, y)"),
        ("bf16", "multiply(x, y)"),
        ("bf16", "divide(x, y)"),
        ("bf16", "exponential(x)"),
        ("f32", "convert(x)"),
    ];
    check(&elementwise("bf16", 256, 2, &ops), Inputs::Range(-3.0, 3.0), 0.0);
    let f16 = [("f16", "add(x, y)"), ("f16", "multiply(x, y)"), ("f16", "subtract(x, y)")];
    check(&elementwise("f16", 256, 2, &f16), Inputs::Special, 0.0);
}

#[test]
fn shape_ops() {
    let hlo = r#"HloModule m

ENTRY e {
  x = f32[4,6] parameter(0)
  y = f32[6] parameter(1)
  b = f32[4,6,3] broadcast(x), dimensions={0,1}
  by = f32[4,6] broadcast(y), dimensions={1}
  t = f32[6,4] transpose(x), dimensions={1,0}
  r = f32[3,8] reshape(x)
  s = f32[2,2] slice(x), slice={[1:4:2], [0:6:3]}
  c = f32[4,12] concatenate(x, by), dimensions={1}
  rv = f32[4,6] reverse(x), dimensions={0,1}
  io = s32[4,6] iota(), iota_dimension=1
  pv = f32[] constant(-7)
  p = f32[7,12] pad(x, pv), padding=1_2x-1_2_1
  ROOT out = (f32[4,6,3], f32[6,4], f32[3,8], f32[2,2], f32[4,12], f32[4,6], s32[4,6], f32[7,12]) tuple(b, t, r, s, c, rv, io, p)
}
"#;
    check(hlo, Inputs::Special, 0.0);
}

#[test]
fn dynamic_slice_clamping() {
    // Start indices beyond either end are clamped so the slice stays inside the operand.
    for (i, j) in [(1, 2), (-5, 3), (9, -1), (100, 100)] {
        let hlo = format!(
            r#"HloModule m

ENTRY e {{
  x = f32[6,5] parameter(0)
  u = f32[2,3] parameter(1)
  i = s32[] constant({i})
  j = s32[] constant({j})
  ds = f32[3,2] dynamic-slice(x, i, j), dynamic_slice_sizes={{3,2}}
  dus = f32[6,5] dynamic-update-slice(x, u, i, j)
  ROOT t = (f32[3,2], f32[6,5]) tuple(ds, dus)
}}
"#
        );
        check(&hlo, Inputs::Range(-5.0, 5.0), 0.0);
    }
}

/// XLA's legacy `dynamic-slice` / `dynamic-update-slice` with one index vector instead of a
/// scalar per dimension (XLA's test_utils_test has one); out-of-range starts clamp.
#[test]
fn dynamic_slice_with_an_index_vector() {
    let hlo = r#"HloModule m
ENTRY e {
  x = f32[20,20] parameter(0)
  i = s32[] parameter(1)
  u = f32[3,2] parameter(2)
  z = s32[1] constant({0})
  ib = s32[1] reshape(i)
  v = s32[2] concatenate(z, ib), dimensions={0}
  w = s32[2] concatenate(ib, ib), dimensions={0}
  ds = f32[20,1] dynamic-slice(x, v), dynamic_slice_sizes={20,1}
  col = f32[20] reshape(ds)
  one = f32[1] dynamic-slice(col, ib), dynamic_slice_sizes={1}
  dus = f32[20,20] dynamic-update-slice(x, u, w)
  ROOT t = (f32[1], f32[20,20]) tuple(one, dus)
}
"#;
    check(hlo, Inputs::Range(-3.0, 25.0), 0.0);
}

#[test]
fn gather_clamps_indices() {
    let hlo = r#"HloModule m

ENTRY e {
  x = f32[10,4] parameter(0)
  idx = s32[5,1] constant({ {0}, {9}, {-3}, {12}, {4} })
  ROOT g = f32[5,2] gather(x, idx), offset_dims={1}, collapsed_slice_dims={0}, start_index_map={0}, index_vector_dim=1, slice_sizes={1,2}
}
"#;
    check(hlo, Inputs::Range(-5.0, 5.0), 0.0);
}

#[test]
fn reductions() {
    let hlo = r#"HloModule m

add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}

max {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT m = f32[] maximum(a, b)
}

argmax {
  av = f32[] parameter(0)
  ai = s32[] parameter(1)
  bv = f32[] parameter(2)
  bi = s32[] parameter(3)
  gt = pred[] compare(av, bv), direction=GT
  eq = pred[] compare(av, bv), direction=EQ
  lt = pred[] compare(ai, bi), direction=LT
  tie = pred[] and(eq, lt)
  keep = pred[] or(gt, tie)
  v = f32[] select(keep, av, bv)
  i = s32[] select(keep, ai, bi)
  ROOT r = (f32[], s32[]) tuple(v, i)
}

ENTRY e {
  x = f32[16,32] parameter(0)
  big = f32[4096,3] parameter(1)
  zero = f32[] constant(0)
  ninf = f32[] constant(-inf)
  s0 = f32[32] reduce(x, zero), dimensions={0}, to_apply=add
  s1 = f32[16] reduce(x, zero), dimensions={1}, to_apply=add
  m1 = f32[16] reduce(x, ninf), dimensions={1}, to_apply=max
  all = f32[] reduce(x, zero), dimensions={0,1}, to_apply=add
  tree = f32[3] reduce(big, zero), dimensions={0}, to_apply=add
  io = s32[16,32] iota(), iota_dimension=1
  izero = s32[] constant(0)
  am = (f32[16], s32[16]) reduce(x, io, ninf, izero), dimensions={1}, to_apply=argmax
  amv = f32[16] get-tuple-element(am), index=0
  ami = s32[16] get-tuple-element(am), index=1
  ROOT t = (f32[32], f32[16], f32[16], f32[], f32[3], f32[16], s32[16]) tuple(s0, s1, m1, all, tree, amv, ami)
}
"#;
    // Summation order differs from the interpreter's (4096-element tree): 1e-5.
    check(hlo, Inputs::Range(-4.0, 4.0), 1e-5);
}

#[test]
fn scatter_add_skips_out_of_bounds_windows() {
    let hlo = r#"HloModule m

add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}

mul {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] multiply(a, b)
}

imax {
  a = s32[] parameter(0)
  b = s32[] parameter(1)
  ROOT s = s32[] maximum(a, b)
}

ENTRY e {
  x = f32[8,3] parameter(0)
  upd = f32[6,2] parameter(1)
  iupd = s32[6] parameter(2)
  idx = s32[6,1] constant({ {0}, {7}, {-1}, {2}, {2}, {8} })
  sa = f32[8,3] scatter(x, idx, upd), update_window_dims={1}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=add
  two = f32[] constant(2)
  twos = f32[8,3] broadcast(two), dimensions={}
  x2 = f32[8,3] multiply(x, twos)
  sm = f32[8,3] scatter(x2, idx, upd), update_window_dims={1}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=mul
  zi = s32[] constant(-1000)
  base = s32[9] broadcast(zi), dimensions={}
  i1 = s32[6] reshape(idx)
  sx = s32[9] scatter(base, idx, iupd), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=imax
  ROOT t = (f32[8,3], f32[8,3], s32[9]) tuple(sa, sm, sx)
}
"#;
    check(hlo, Inputs::Range(-4.0, 4.0), 1e-6);
}

/// 64-bit scatters: s64/u64 add, min and max through native 64-bit atomics (values past 2^32,
/// so a 32-bit atomic would lose the carry), f64 add and multiply and an s64 multiply through
/// the 64-bit compare-exchange loop; duplicate and out-of-bounds indices.
#[test]
fn scatter_on_64_bit_elements() {
    let hlo = r#"HloModule m

sadd {
  a = s64[] parameter(0)
  b = s64[] parameter(1)
  ROOT s = s64[] add(a, b)
}

smul {
  a = s64[] parameter(0)
  b = s64[] parameter(1)
  ROOT s = s64[] multiply(a, b)
}

umax {
  a = u64[] parameter(0)
  b = u64[] parameter(1)
  ROOT s = u64[] maximum(a, b)
}

smin {
  a = s64[] parameter(0)
  b = s64[] parameter(1)
  ROOT s = s64[] minimum(a, b)
}

fadd {
  a = f64[] parameter(0)
  b = f64[] parameter(1)
  ROOT s = f64[] add(a, b)
}

fmul {
  a = f64[] parameter(0)
  b = f64[] parameter(1)
  ROOT s = f64[] multiply(a, b)
}

ENTRY e {
  x = f32[9] parameter(0)
  upd = f32[40] parameter(1)
  idx = s32[40,1] parameter(2)
  big = s64[] constant(1099511627776)
  bigs = s64[40] broadcast(big), dimensions={}
  ui = s64[40] convert(upd)
  u = s64[40] multiply(ui, bigs)
  xi = s64[9] convert(x)
  sa = s64[9] scatter(xi, idx, u), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=sadd
  sm = s64[9] scatter(xi, idx, ui), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=smul
  sn = s64[9] scatter(xi, idx, u), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=smin
  uu = u64[40] convert(u)
  xu = u64[9] convert(xi)
  ux = u64[9] scatter(xu, idx, uu), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=umax
  fu = f64[40] convert(upd)
  fx = f64[9] convert(x)
  fa = f64[9] scatter(fx, idx, fu), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=fadd
  fi = f64[40] convert(ui)
  fm = f64[9] scatter(fx, idx, fi), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=fmul
  ROOT t = (s64[9], s64[9], s64[9], u64[9], f64[9], f64[9]) tuple(sa, sm, sn, ux, fa, fm)
}
"#;
    // Indices in [-2, 11): duplicates, and some out of bounds (skipped). f64 sums of f32
    // values in that range and products of small integers are exact whatever the order of
    // the atomics.
    check(hlo, Inputs::Range(-2.0, 11.0), 0.0);
}

#[test]
fn dot_and_convolution() {
    let hlo = r#"HloModule m

ENTRY e {
  a = f32[3,5,7] parameter(0)
  b = f32[3,7,4] parameter(1)
  img = f32[2,9,9,3] parameter(2)
  w = f32[3,3,3,4] parameter(3)
  d = f32[3,5,4] dot(a, b), lhs_batch_dims={0}, lhs_contracting_dims={2}, rhs_batch_dims={0}, rhs_contracting_dims={1}
  c = f32[2,5,5,4] convolution(img, w), window={size=3x3 stride=2x2 pad=1_1x1_1}, dim_labels=b01f_01io->b01f
  ROOT t = (f32[3,5,4], f32[2,5,5,4]) tuple(d, c)
}
"#;
    check(hlo, Inputs::Range(-2.0, 2.0), 1e-6);
}

#[test]
fn elementwise_while_loops() {
    // Known trip count (unrolled in the shader) and a data-dependent one (condition in the shader).
    for init in ["s32[] constant(0)", "s32[] parameter(1)"] {
        let hlo = format!(
            r#"HloModule m

cond {{
  p = (s32[], f32[64]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  n = s32[] constant(7)
  ROOT lt = pred[] compare(i, n), direction=LT
}}

body {{
  p = (s32[], f32[64]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  x = f32[64] get-tuple-element(p), index=1
  one = s32[] constant(1)
  i2 = s32[] add(i, one)
  c = f32[] constant(0.9)
  cb = f32[64] broadcast(c), dimensions={{}}
  s = f32[64] sine(x)
  fi = f32[] convert(i)
  fb = f32[64] broadcast(fi), dimensions={{}}
  m = f32[64] multiply(cb, x)
  a = f32[64] add(m, s)
  x2 = f32[64] add(a, fb)
  ROOT t = (s32[], f32[64]) tuple(i2, x2)
}}

ENTRY e {{
  x = f32[64] parameter(0)
  i0 = {init}
  t = (s32[], f32[64]) tuple(i0, x)
  w = (s32[], f32[64]) while(t), condition=cond, body=body
  ROOT r = f32[64] get-tuple-element(w), index=1
}}
"#
        );
        check(&hlo, Inputs::Range(-3.0, 3.0), 1e-6);
    }
}

#[test]
fn sort_and_top_k() {
    let hlo = r#"HloModule m

less {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ai = s32[] parameter(2)
  bi = s32[] parameter(3)
  ROOT lt = pred[] compare(a, b), direction=LT, type=TOTALORDER
}

ENTRY e {
  x = f32[4,33] parameter(0)
  io = s32[4,33] iota(), iota_dimension=1
  s = (f32[4,33], s32[4,33]) sort(x, io), dimensions={1}, is_stable=true, to_apply=less
  k = (f32[4,5], s32[4,5]) topk(x), k=5, largest=true
  s0 = f32[4,33] get-tuple-element(s), index=0
  s1 = s32[4,33] get-tuple-element(s), index=1
  k0 = f32[4,5] get-tuple-element(k), index=0
  k1 = s32[4,5] get-tuple-element(k), index=1
  ROOT t = (f32[4,33], s32[4,33], f32[4,5], s32[4,5]) tuple(s0, s1, k0, k1)
}
"#;
    check(hlo, Inputs::Special, 0.0);
}

#[test]
fn sixty_four_bit_types_where_the_device_has_them() {
    let ops = [
        ("s64", "add(x, y)"),
        ("s64", "multiply(x, y)"),
        ("s64", "divide(x, y)"),
        ("s64", "shift-right-arithmetic(x, y)"),
        ("pred", "compare(x, y), direction=LT"),
        ("f32", "convert(x)"),
    ];
    check(&elementwise("s64", 128, 2, &ops), Inputs::SpecialRange(-1000.0, 1000.0), 0.0);
    let f64ops = [
        ("f64", "add(x, y)"),
        ("f64", "multiply(x, y)"),
        ("f64", "divide(x, y)"),
        ("f32", "convert(x)"),
        ("s32", "convert(x)"),
    ];
    check(&elementwise("f64", 128, 2, &f64ops), Inputs::Special, 0.0);
}

#[test]
fn sixty_four_bit_types_are_unsupported_without_the_feature() {
    let m = parse_and_fuse(&elementwise("s64", 8, 2, &[("s64", "add(x, y)")]));
    let err = hlo_spirv::compile(&m, &hlo_spirv::Target::baseline()).expect_err("no shaderInt64");
    match err {
        hlo_spirv::CodegenError::Unsupported { reason, .. } => assert!(reason.contains("shaderInt64"), "{reason}"),
        other => panic!("{other}"),
    }
    let m = parse_and_fuse(&elementwise("f64", 8, 2, &[("f64", "add(x, y)")]));
    let err = hlo_spirv::compile(&m, &hlo_spirv::Target::baseline()).expect_err("no shaderFloat64");
    assert!(err.to_string().contains("shaderFloat64"), "{err}");
}

/// More than 65535 workgroups: the grid is split over x and y.
#[test]
fn two_dimensional_grid() {
    let hlo = elementwise("f32", 70_001, 2, &[("f32", "add(x, y)"), ("s32", "iota(), iota_dimension=0")]);
    let m = parse_and_fuse(&hlo);
    let target = hlo_spirv::Target { max_workgroup_invocations: 1, ..target_from_caps(vulkan().caps()) };
    let c = hlo_spirv::compile(&m, &target).unwrap();
    check_spirv(&c);
    let groups: Vec<[u32; 3]> = c
        .program
        .steps
        .iter()
        .filter_map(|s| match s {
            hlo_program::Step::Dispatch(d) => Some(d.groups),
            _ => None,
        })
        .collect();
    assert!(groups.iter().all(|g| g[1] > 1), "{groups:?}");
    let inputs: Vec<Vec<u8>> = m
        .entry_comp()
        .param_shapes()
        .iter()
        .enumerate()
        .map(|(k, s)| inputs_for(s, k as u64, Inputs::Range(-1.0, 1.0)))
        .collect();
    let got = run_vulkan(&vulkan(), &c, &inputs);
    let want = run_interp(&m, &inputs);
    for k in 0..2 {
        compare(c.outputs[k].dtype, &got[k], &want[k], 0.0).unwrap();
    }
}

/// A divisor the driver knows when it compiles the kernel: the `iota` of one element is the
/// literal 0 there, and llvmpipe folded `x / 0.0` to 0 (difftest seed 232451). Each element must
/// be IEEE's quotient: ±inf by the signs, NaN for 0 / 0 and NaN / 0; and through -0 as well.
#[test]
fn division_by_a_zero_known_when_compiling() {
    for (ty, divisor) in [("f32", "copy(z)"), ("f32", "negate(z)"), ("f64", "copy(z)"), ("f64", "negate(z)")] {
        let hlo = format!(
            "HloModule m
ENTRY e {{
  x = {ty}[1] parameter(0)
  z = {ty}[1] iota(), iota_dimension=0
  d = {ty}[1] {divisor}
  ROOT r = {ty}[1] divide(x, d)
}}
"
        );
        let c = compile_checked(&parse_and_fuse(&hlo));
        for x in [-1.885f64, 2.5, 0.0, -0.0, f64::NAN, f64::INFINITY] {
            let bytes = match ty {
                "f32" => (x as f32).to_le_bytes().to_vec(),
                _ => x.to_le_bytes().to_vec(),
            };
            let got = run_vulkan(&vulkan(), &c, std::slice::from_ref(&bytes));
            let want = run_interp(&parse(&hlo), &[bytes]);
            let value = |b: &[u8]| match ty {
                "f32" => f32::from_le_bytes(b.try_into().unwrap()) as f64,
                _ => f64::from_le_bytes(b.try_into().unwrap()),
            };
            let (g, w) = (value(&got[0]), value(&want[0]));
            assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()), "{ty} {x} / {divisor}: got {g} want {w}");
            assert!(w.is_nan() || w.is_infinite(), "{ty} {x} / {divisor}: the reference gives {w}");
        }
    }
}

/// A narrow-float remainder summed by a reduction tree (64 elements and more): lavapipe's LLVM
/// returned NaN for every element where the remainder selected a NaN `x` back in after its loop
/// (difftest seed 261759, f8; f16 the same). Each sum must be the interpreter's, bit for bit:
/// remainders of equal operands (0), of `x` by `2x` (`x`), and by 0.5 (0 or 0.5 for halves).
#[test]
fn narrow_float_remainders_in_a_reduction_tree() {
    for (ty, n) in [("f16", 64), ("f16", 1000), ("f8e4m3fn", 64), ("f8e4m3fn", 65), ("bf16", 256)] {
        for divisor in ["p0", "y2", "half"] {
            let hlo = format!(
                "HloModule m
add {{
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}}
ENTRY e {{
  p0 = {ty}[{n}] parameter(0)
  two = {ty}[] constant(2)
  twos = {ty}[{n}] broadcast(two), dimensions={{}}
  y2 = {ty}[{n}] multiply(p0, twos)
  h = {ty}[] constant(0.5)
  half = {ty}[{n}] broadcast(h), dimensions={{}}
  r = {ty}[{n}] remainder(p0, {divisor})
  x = f32[{n}] convert(r)
  z = f32[] constant(0)
  ROOT s = f32[] reduce(x, z), dimensions={{0}}, to_apply=add
}}
"
            );
            let c = compile_checked(&parse_and_fuse(&hlo));
            // 1.0, 1.5 and -2.25 in turn, in the type's own bits.
            let values = [1.0f32, 1.5, -2.25];
            let bytes: Vec<u8> = (0..n)
                .flat_map(|k| {
                    let v = values[k % 3];
                    match ty {
                        "f16" => half::f16::from_f32(v).to_le_bytes().to_vec(),
                        "bf16" => half::bf16::from_f32(v).to_le_bytes().to_vec(),
                        // f8e4m3fn: 1.0 = 0x38, 1.5 = 0x3c, -2.25 = 0xc1.
                        _ => vec![[0x38u8, 0x3c, 0xc1][k % 3]],
                    }
                })
                .collect();
            let got = run_vulkan(&vulkan(), &c, std::slice::from_ref(&bytes));
            let want = run_interp(&parse(&hlo), &[bytes]);
            let (g, w) = (
                f32::from_le_bytes(got[0][..4].try_into().unwrap()),
                f32::from_le_bytes(want[0][..4].try_into().unwrap()),
            );
            assert_eq!(g.to_bits(), w.to_bits(), "{ty}[{n}] remainder by {divisor}: got {g} want {w}");
            assert!(w.is_finite(), "{ty}[{n}] remainder by {divisor}: the reference gives {w}");
        }
    }
}
