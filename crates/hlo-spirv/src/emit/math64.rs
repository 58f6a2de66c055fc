//! f64 transcendental functions built from plain arithmetic: SPIR-V's GLSL.std.450 `Exp`,
//! `Log`, `Sin`, ... are 32-bit only, and the f32 functions of [`super::math`] do not trust a
//! driver's built-ins anyway.
//!
//! The methods are the classical ones (fdlibm's, written anew): an argument reduction that is
//! exact or carries its rounding error along, a polynomial on the reduced interval, and the
//! special values IEEE and XLA define selected explicitly. The polynomials are truncated
//! Taylor series (exact rational coefficients, each rounded once) of a degree that puts the
//! truncation error below 2^-60 of the result on the reduced interval, so no fitting tool is
//! needed. Error-free transformations (`two_sum`, `two_prod` with a bit-mask split rounded to
//! 26 bits) never rely on `fma` rounding once (lavapipe's rounds twice), and every float op
//! is emitted `NoContraction`.
//!
//! | function | method |
//! |---|---|
//! | `exp` | `k = round(x / ln 2)`, `r = x - k ln 2` (32-bit `ln 2` head), degree-14 series, scaling in two steps |
//! | `expm1` | as `exp`, with `2^k (e^r - 1) + (2^k - 1)` while `k <= 53` |
//! | `log` | `x = 2^e m`, `m` in `[1/sqrt 2, sqrt 2)`, `log1p(f) = f - f^2/2 + s (f^2/2 + R(s^2))`, `s = f / (2 + f)` |
//! | `log1p` | `log(1 + x)` plus the rounding error of `1 + x` divided by `1 + x` |
//! | `sin`, `cos`, `tan` | Cody-Waite with a four-part `pi/2` (three 33-bit heads) below 2^20, Payne-Hanek above (exact product of the 53-bit mantissa with a 192-bit window of `2/pi`); the reduced argument is a double-double |
//! | `tanh` | `t / (t + 2)` below `ln(3)/2` and `1 - 2 / (t + 2)` above, `t = expm1(2|x|)` |
//! | `logistic` | `1 / (1 + e^-x)` |
//! | `atan2`, `atan` | quotient `t` of the smaller by the larger magnitude, `atan(t) = atan(c) + atan((t - c) / (1 + t c))` with `c = round(8t) / 8` (table of `atan(c)` in two parts), quadrant fix-up |
//! | `pow` | `2^(y log2 x)` with `log2 x` and the product in double-double arithmetic |
//! | `cbrt` | exponent divided by 3 exactly, quadratic start, three Halley steps |
//! | `erf` | Taylor series at 0 below 1 and at 1.5 up to 2, `1 - erfc` by a continued fraction of depth 40 above |
//!
//! Subnormal operands are read as zero by the caller (XLA:CPU flushes f64 arithmetic too), and
//! subnormal results are flushed when stored.

// Constants keep the digits they were derived with (exact splits of high-precision values).
#![allow(clippy::excessive_precision)]

use super::math::{abs, add, and, div, lt, mul, neg, not, or, sub};
use crate::builder::{Kb, STy, H};
use naga::{BinaryOperator as Bo, MathFunction as Mf, Statement};

// ---- small helpers ------------------------------------------------------------

fn c(kb: &mut Kb, v: f64) -> H {
    kb.lit_f64(v)
}

fn addc(kb: &mut Kb, a: H, v: f64) -> H {
    let k = c(kb, v);
    add(kb, a, k)
}

fn mulc(kb: &mut Kb, a: H, v: f64) -> H {
    let k = c(kb, v);
    mul(kb, a, k)
}

fn ltc(kb: &mut Kb, a: H, v: f64) -> H {
    let k = c(kb, v);
    lt(kb, a, k)
}

fn gtc(kb: &mut Kb, a: H, v: f64) -> H {
    let k = c(kb, v);
    kb.binary(Bo::Greater, a, k)
}

fn bits(kb: &mut Kb, x: H) -> H {
    kb.bitcast(x, STy::U64)
}

fn from_bits(kb: &mut Kb, u: H) -> H {
    kb.bitcast(u, STy::F64)
}

/// `a op v` for a u64 `a`.
fn ubin(kb: &mut Kb, op: Bo, a: H, v: u64) -> H {
    let k = kb.lit_u64(v);
    kb.binary(op, a, k)
}

/// `a op v` for a u32 `a`.
fn ubin32(kb: &mut Kb, op: Bo, a: H, v: u32) -> H {
    let k = kb.lit_u32(v);
    kb.binary(op, a, k)
}

/// `a << n` or `a >> n` (any integer `a`; shift amounts are u32).
fn shift(kb: &mut Kb, op: Bo, a: H, n: u32) -> H {
    let k = kb.lit_u32(n);
    kb.binary(op, a, k)
}

/// The upper 32 bits of u64 `b`, as a u32.
fn hi_word(kb: &mut Kb, b: H) -> H {
    let h = shift(kb, Bo::ShiftRight, b, 32);
    kb.convert(h, STy::U32)
}

/// `isnan(x)` on the bit pattern.
pub(crate) fn is_nan(kb: &mut Kb, x: H) -> H {
    kb.float_class(x, STy::F64, false)
}

pub(crate) fn is_inf(kb: &mut Kb, x: H) -> H {
    kb.float_class(x, STy::F64, true)
}

/// True for +-0 (by bits).
fn is_zero(kb: &mut Kb, x: H) -> H {
    let b = bits(kb, x);
    let a = ubin(kb, Bo::And, b, 0x7fff_ffff_ffff_ffff);
    let zero = kb.lit_u64(0);
    kb.binary(Bo::Equal, a, zero)
}

/// True when the sign bit of `x` is set.
fn sign_bit(kb: &mut Kb, x: H) -> H {
    let b = bits(kb, x);
    let s = ubin(kb, Bo::And, b, 1 << 63);
    let zero = kb.lit_u64(0);
    kb.binary(Bo::NotEqual, s, zero)
}

/// `|mag|` with the sign of `sign`.
pub(crate) fn copysign(kb: &mut Kb, mag: H, sign: H) -> H {
    let m = bits(kb, mag);
    let m = ubin(kb, Bo::And, m, 0x7fff_ffff_ffff_ffff);
    let s = bits(kb, sign);
    let s = ubin(kb, Bo::And, s, 1 << 63);
    let r = kb.binary(Bo::InclusiveOr, m, s);
    from_bits(kb, r)
}

/// `x` rounded to an integer, ties to even or (`ties_away`) away from zero, computed on the bit
/// pattern. lavapipe's f64 `roundEven` gives -1 for -1.5, and its `round` and `trunc` drop the
/// sign of a zero result (XLA: -0.0 for -0.3); integer arithmetic leaves the driver nothing to
/// get wrong. NaN payloads and infinities pass through.
pub(crate) fn round_to_integral(kb: &mut Kb, x: H, ties_away: bool) -> H {
    let b = bits(kb, x);
    let sign = ubin(kb, Bo::And, b, 1 << 63);
    let a = ubin(kb, Bo::And, b, !(1u64 << 63));
    let hi = hi_word(kb, a);
    let biased = shift(kb, Bo::ShiftRight, hi, 20);
    // 1 <= |x| < 2^52: the lowest `n` = 1075 - biased bits are the fraction (n clamped to
    // 1..=52 so that the shifts stay defined in the other ranges, whose results are not used).
    let c1075 = kb.lit_u32(1075);
    let c1023 = kb.lit_u32(1023);
    let c1074 = kb.lit_u32(1074);
    let clamped = kb.math(Mf::Clamp, &[biased, c1023, c1074]);
    let n = kb.binary(Bo::Subtract, c1075, clamped);
    let one = kb.lit_u64(1);
    let unit = kb.binary(Bo::ShiftLeft, one, n);
    let frac_mask = ubin(kb, Bo::Subtract, unit, 1);
    let half = shift(kb, Bo::ShiftRight, unit, 1);
    let frac = kb.binary(Bo::And, a, frac_mask);
    let t = kb.binary(Bo::Subtract, a, frac);
    let up = if ties_away {
        kb.binary(Bo::GreaterEqual, frac, half)
    } else {
        let above = kb.binary(Bo::Greater, frac, half);
        let tie = kb.binary(Bo::Equal, frac, half);
        let odd = kb.binary(Bo::And, t, unit);
        let zero = kb.lit_u64(0);
        let odd = kb.binary(Bo::NotEqual, odd, zero);
        let tie_odd = kb.binary(Bo::LogicalAnd, tie, odd);
        kb.binary(Bo::LogicalOr, above, tie_odd)
    };
    // A carry out of the mantissa raises the exponent, which is the right result.
    let t_up = kb.binary(Bo::Add, t, unit);
    let mid = kb.select(up, t_up, t);
    // |x| < 1: 0 or 1.
    let half_bits = kb.lit_u64(0x3fe0_0000_0000_0000);
    let small_up =
        if ties_away { kb.binary(Bo::GreaterEqual, a, half_bits) } else { kb.binary(Bo::Greater, a, half_bits) };
    let one_bits = kb.lit_u64(0x3ff0_0000_0000_0000);
    let zero = kb.lit_u64(0);
    let small = kb.select(small_up, one_bits, zero);
    let is_small = kb.binary(Bo::Less, biased, c1023);
    let r = kb.select(is_small, small, mid);
    // |x| >= 2^52, infinities and NaNs are already integral.
    let integral = kb.binary(Bo::GreaterEqual, biased, c1075);
    let r = kb.select(integral, a, r);
    let r = kb.binary(Bo::InclusiveOr, r, sign);
    from_bits(kb, r)
}

/// Horner evaluation of `coef[0] + coef[1] z + ...`.
fn poly(kb: &mut Kb, z: H, coef: &[f64]) -> H {
    let mut p = c(kb, coef[coef.len() - 1]);
    for &k in coef[..coef.len() - 1].iter().rev() {
        let kc = c(kb, k);
        p = kb.math(Mf::Fma, &[p, z, kc]);
    }
    p
}

/// `2^k` for an i32 `k` in [-1022, 1023].
fn pow2i(kb: &mut Kb, k: H) -> H {
    let b = kb.lit_i32(1023);
    let b = kb.binary(Bo::Add, k, b);
    let b = kb.bitcast(b, STy::U32);
    let b = kb.convert(b, STy::U64);
    let b = shift(kb, Bo::ShiftLeft, b, 52);
    from_bits(kb, b)
}

/// `p * 2^k` for an i32 `k` in [-2044, 2046], in two exact steps (overflow gives inf).
fn scale(kb: &mut Kb, p: H, k: H) -> H {
    let k1 = shift(kb, Bo::ShiftRight, k, 1);
    let k2 = kb.binary(Bo::Subtract, k, k1);
    let s1 = pow2i(kb, k1);
    let s2 = pow2i(kb, k2);
    let r = mul(kb, p, s1);
    mul(kb, r, s2)
}

/// `a = hi + lo` with `hi` rounded to 26 significant bits by integer arithmetic on the bits, so
/// that `lo` has at most 26 (the products of two such parts are exact). `|a|` below 2^1000.
fn split(kb: &mut Kb, a: H) -> (H, H) {
    let b = bits(kb, a);
    let b = ubin(kb, Bo::Add, b, 1 << 26);
    let b = ubin(kb, Bo::And, b, !((1u64 << 27) - 1));
    let hi = from_bits(kb, b);
    (hi, sub(kb, a, hi))
}

/// `a * b` as `p + e` exactly (Dekker's product).
fn two_prod(kb: &mut Kb, a: H, b: H) -> (H, H) {
    let p = mul(kb, a, b);
    let (ah, al) = split(kb, a);
    let (bh, bl) = split(kb, b);
    let hh = mul(kb, ah, bh);
    let e = sub(kb, hh, p);
    let hl = mul(kb, ah, bl);
    let e = add(kb, e, hl);
    let lh = mul(kb, al, bh);
    let e = add(kb, e, lh);
    let ll = mul(kb, al, bl);
    (p, add(kb, e, ll))
}

/// `a + b` as `s + e` exactly, given `|a| >= |b|` or `a == 0`.
fn fast_two_sum(kb: &mut Kb, a: H, b: H) -> (H, H) {
    let s = add(kb, a, b);
    let t = sub(kb, s, a);
    (s, sub(kb, b, t))
}

/// `a + b` as `s + e` exactly (Knuth's two-sum).
fn two_sum(kb: &mut Kb, a: H, b: H) -> (H, H) {
    let s = add(kb, a, b);
    let bv = sub(kb, s, a);
    let av = sub(kb, s, bv);
    let eb = sub(kb, b, bv);
    let ea = sub(kb, a, av);
    (s, add(kb, ea, eb))
}

/// Double-double product (relative error about 2^-104).
fn dd_mul(kb: &mut Kb, a: (H, H), b: (H, H)) -> (H, H) {
    let (p, e) = two_prod(kb, a.0, b.0);
    let t1 = mul(kb, a.0, b.1);
    let t2 = mul(kb, a.1, b.0);
    let t = add(kb, t1, t2);
    let e = add(kb, e, t);
    fast_two_sum(kb, p, e)
}

/// Double-double sum.
fn dd_add(kb: &mut Kb, a: (H, H), b: (H, H)) -> (H, H) {
    let (s, e) = two_sum(kb, a.0, b.0);
    let t = add(kb, a.1, b.1);
    let e = add(kb, e, t);
    fast_two_sum(kb, s, e)
}

// ---- constants ------------------------------------------------------------------

const fn factorial(n: usize) -> f64 {
    let mut f = 1.0;
    let mut k = 2;
    while k <= n {
        f *= k as f64;
        k += 1;
    }
    f
}

/// `1 / n!` for `n = first, first + 1, ...`.
const fn inv_factorials<const N: usize>(first: usize) -> [f64; N] {
    let mut out = [0.0; N];
    let mut i = 0;
    while i < N {
        out[i] = 1.0 / factorial(first + i);
        i += 1;
    }
    out
}

/// `sign^i / n!` for `n = first, first + 2, ...` (the sine and cosine series in `r^2`).
const fn alternating_inv_factorials<const N: usize>(first: usize, sign: f64) -> [f64; N] {
    let mut out = [0.0; N];
    let mut i = 0;
    let mut s = sign;
    while i < N {
        out[i] = s / factorial(first + 2 * i);
        s = -s;
        i += 1;
    }
    out
}

/// `scale * sign^i / (first + 2i)` (the `atanh` and `atan` series in `s^2`).
const fn inv_odd<const N: usize>(first: usize, scale: f64, sign: f64) -> [f64; N] {
    let mut out = [0.0; N];
    let mut i = 0;
    let mut s = scale;
    while i < N {
        out[i] = s / (first + 2 * i) as f64;
        s *= sign;
        i += 1;
    }
    out
}

const fn erf_taylor() -> [f64; 22] {
    let mut out = [0.0; 22];
    let mut i = 0;
    while i < 22 {
        let s = if i % 2 == 0 { 1.0 } else { -1.0 };
        out[i] = s / (factorial(i) * (2 * i + 1) as f64);
        i += 1;
    }
    out
}

const LOG2E: f64 = std::f64::consts::LOG2_E;
/// `ln 2` in two parts; the first has 32 significant bits, so `k * LN2_HI` is exact for |k| < 2^21.
const LN2_HI: f64 = 0.6931471806019545;
const LN2_LO: f64 = -4.2009150726810846e-11;
const LN2: f64 = std::f64::consts::LN_2;
/// `log2 e` as a double-double.
const LOG2E_DD: (f64, f64) = (std::f64::consts::LOG2_E, 2.0355273740931033e-17);
/// `pi/2` in four parts: three of 33 bits (exact products with |k| < 2^20) and a rounded tail.
const PIO2_PARTS: [f64; 4] = [1.5707963267341256, 6.077100506303966e-11, 2.0222662487111665e-21, 8.4784276603689e-32];
/// Below this magnitude trigonometric arguments are reduced with [`PIO2_PARTS`].
const CODY_WAITE_LIMIT: f64 = 1048576.0;
const PIO2_HI: f64 = std::f64::consts::FRAC_PI_2;
const PIO2_LO: f64 = 6.123233995736766e-17;
const PI_HI: f64 = std::f64::consts::PI;
const PI_LO: f64 = 1.2246467991473532e-16;
/// `atan(k/8)` for k = 0..=8, each as a double-double.
const ATAN_K8: [(f64, f64); 9] = [
    (0.0, 0.0),
    (0.12435499454676144, -3.1253241424539383e-18),
    (0.24497866312686414, 1.0698755618734451e-17),
    (0.35877067027057225, -2.4623815582638635e-17),
    (0.4636476090008061, 2.2698777452961687e-17),
    (0.5585993153435624, -5.4556305485916264e-18),
    (0.6435011087932844, 1.5834785051444286e-17),
    (0.7188299996216245, -2.1478388444456983e-17),
    (std::f64::consts::FRAC_PI_4, 3.061616997868383e-17),
];
/// The bits of `2/pi` after the binary point, 64 to a word, after a zero word for its
/// integer part (and the bits before it that Payne-Hanek's window may start at).
const TWO_OVER_PI: [u64; 21] = [
    0,
    0xa2f9836e4e441529,
    0xfc2757d1f534ddc0,
    0xdb6295993c439041,
    0xfe5163abdebbc561,
    0xb7246e3a424dd2e0,
    0x06492eea09d1921c,
    0xfe1deb1cb129a73e,
    0xe88235f52ebb4484,
    0xe99c7026b45f7e41,
    0x3991d639835339f4,
    0x9c845f8bbdf9283b,
    0x1ff897ffde05980f,
    0xef2f118b5a0a6d1f,
    0x6d367ecf27cb09b7,
    0x4f463f669e5fea2d,
    0x7527bac7ebe5f17b,
    0x3d0739f78a5292ea,
    0x6bfb5fb11f8d5d08,
    0x56033046fc7b6bab,
    0xf0cfbc209af4361d,
];

/// `(e^r - 1 - r) / r^2 = sum r^(n-2) / n!` for n = 2..=14 (|r| <= ln(2)/2: truncation 2^-70).
const EXP_Q: [f64; 13] = inv_factorials(2);
/// `(2 atanh(s) - 2s) / s^3 = sum 2 z^(k-1) / (2k + 1)`, z = s^2 <= 0.0295, k = 1..=12.
const LOG_R: [f64; 12] = inv_odd(3, 2.0, 1.0);
/// `(sin r - r) / r^3` in `z = r^2`: `(-1)^k / (2k + 1)!`, k = 1..=8 (|r| <= pi/4: 2^-66).
const SIN_S: [f64; 8] = alternating_inv_factorials(3, -1.0);
/// `(cos r - 1 + r^2/2) / r^4` in `z = r^2`: `(-1)^k / (2k)!`, k = 2..=9 (|r| <= pi/4: 2^-68).
const COS_C: [f64; 8] = alternating_inv_factorials(4, 1.0);
/// `(atan t - t) / t^3` in `z = t^2`: `(-1)^k / (2k + 1)`, k = 1..=8 (|t| <= 1/16: 2^-68).
const ATAN_A: [f64; 8] = inv_odd(3, -1.0, -1.0);
/// `erf(x) / (x 2/sqrt(pi))` in `z = x^2`: `(-1)^n / (n! (2n + 1))`, n = 0..=21 (|x| <= 1).
const ERF_T: [f64; 22] = erf_taylor();
/// `2/sqrt(pi)`.
const TWO_OVER_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;
/// The Taylor coefficients of `erf` at 1.5 (from `erf(1.5)` and the series of `e^-x^2`, in
/// 60-digit arithmetic), n = 1..=23 (|x - 1.5| <= 1/2: truncation 2^-60); `erf(1.5)` in two parts.
const ERF_MID_0: (f64, f64) = (0.9661051464753108, -3.3867031441680696e-17);
const ERF_MID: [f64; 23] = [
    0.11893028922362937,
    -0.17839543383544407,
    0.13875200409423427,
    -0.04459885845886102,
    -0.014866286152953672,
    0.019326171998839774,
    -0.004743053201180457,
    -0.00236267762073728,
    0.0017098195515864044,
    -9.291428845596045e-05,
    -0.0002544483934079679,
    7.769002084531931e-05,
    1.795528143938332e-05,
    -1.4092398222107763e-05,
    5.954447995455224e-07,
    1.532467225997787e-06,
    -3.361094515965421e-07,
    -1.0423976862910306e-07,
    4.98733007609766e-08,
    2.394351387558011e-09,
    -4.854396457549027e-09,
    4.54660002864217e-10,
    3.43630614679883e-10,
];
/// Depth of the continued fraction of `erfc` used from 2 on.
const ERFC_CF_DEPTH: usize = 40;
/// A quadratic start for `cbrt` on [1, 8] (error 2^-5.5).
const CBRT_START: [f64; 3] = [0.778_519_213_2, 0.256_722_629_1, -0.013_346_672_06];

// ---- exp family -----------------------------------------------------------------

/// `e^r - 1` for |r| <= ln(2)/2.
fn expm1_small(kb: &mut Kb, r: H) -> H {
    let q = poly(kb, r, &EXP_Q);
    let r2 = mul(kb, r, r);
    let t = mul(kb, r2, q);
    add(kb, r, t)
}

/// `x = k ln 2 + r` with |r| <= ln(2)/2 (plus rounding); returns `(k as i32, r)`. `x` must be
/// clamped to |x| < 1400.
fn reduce_ln2(kb: &mut Kb, x: H) -> (H, H) {
    let t = mulc(kb, x, LOG2E);
    let k = kb.math(Mf::Round, &[t]);
    let hi = mulc(kb, k, LN2_HI);
    let r = sub(kb, x, hi);
    let lo = mulc(kb, k, LN2_LO);
    let r = sub(kb, r, lo);
    (kb.convert(k, STy::I32), r)
}

/// `e^x`.
pub(crate) fn exp(kb: &mut Kb, x: H) -> H {
    let lo = c(kb, -750.0);
    let hi = c(kb, 710.0);
    let xc = kb.math(Mf::Clamp, &[x, lo, hi]);
    let (k, r) = reduce_ln2(kb, xc);
    let em1 = expm1_small(kb, r);
    let p = addc(kb, em1, 1.0);
    let res = scale(kb, p, k);
    let nan = is_nan(kb, x);
    kb.select(nan, x, res)
}

/// `e^x / 2` (exactly: the halving is in the scale factor), finite up to the overflow
/// threshold of `sinh` and `cosh`.
pub(crate) fn exp_half(kb: &mut Kb, x: H) -> H {
    let lo = c(kb, -750.0);
    let hi = c(kb, 712.0);
    let xc = kb.math(Mf::Clamp, &[x, lo, hi]);
    let (k, r) = reduce_ln2(kb, xc);
    let em1 = expm1_small(kb, r);
    let p = addc(kb, em1, 1.0);
    let one = kb.lit_i32(1);
    let k = kb.binary(Bo::Subtract, k, one);
    let res = scale(kb, p, k);
    let nan = is_nan(kb, x);
    kb.select(nan, x, res)
}

/// `e^x - 1`, exact near zero and finite up to ln(DBL_MAX).
pub(crate) fn expm1(kb: &mut Kb, x: H) -> H {
    let lo = c(kb, -40.0);
    let hi = c(kb, 710.0);
    let xc = kb.math(Mf::Clamp, &[x, lo, hi]);
    let (k, r) = reduce_ln2(kb, xc);
    let em1 = expm1_small(kb, r);
    // k <= 53: 2^k em1 + (2^k - 1), both exact but the final sum.
    let kc = kb.lit_i32(53);
    let k_small = kb.math(Mf::Min, &[k, kc]);
    let two_k = pow2i(kb, k_small);
    let scaled = mul(kb, em1, two_k);
    let tkm1 = addc(kb, two_k, -1.0);
    let small = add(kb, scaled, tkm1);
    // k > 53: the -1 is below half an ulp of 2^k (1 + em1).
    let p = addc(kb, em1, 1.0);
    let big = scale(kb, p, k);
    let is_big = kb.binary(Bo::Greater, k, kc);
    let res = kb.select(is_big, big, small);
    // expm1(+-0) = +-0 and NaN stays NaN.
    let z = is_zero(kb, x);
    let nan = is_nan(kb, x);
    let keep = or(kb, z, nan);
    kb.select(keep, x, res)
}

/// `1 / (1 + e^-x)`.
pub(crate) fn logistic(kb: &mut Kb, x: H) -> H {
    let nx = neg(kb, x);
    let e = exp(kb, nx);
    let d = addc(kb, e, 1.0);
    let one = c(kb, 1.0);
    div(kb, one, d)
}

/// `tanh x`.
pub(crate) fn tanh(kb: &mut Kb, x: H) -> H {
    let ax = abs(kb, x);
    // tanh is 1 in f64 from 19.1 on; the clamp keeps e^2x finite.
    let lim = c(kb, 22.0);
    let axc = kb.math(Mf::Min, &[ax, lim]);
    let two_ax = mulc(kb, axc, 2.0);
    let t = expm1(kb, two_ax);
    let d = addc(kb, t, 2.0);
    let small = div(kb, t, d);
    let two = c(kb, 2.0);
    let q = div(kb, two, d);
    let one = c(kb, 1.0);
    let large = sub(kb, one, q);
    let is_small = ltc(kb, ax, 0.549_306_144_334_054_8);
    let res = kb.select(is_small, small, large);
    let res = copysign(kb, res, x);
    let z = is_zero(kb, x);
    let nan = is_nan(kb, x);
    let keep = or(kb, z, nan);
    kb.select(keep, x, res)
}

// ---- log family -------------------------------------------------------------------

/// `u = 2^e m` with `m` in [sqrt(1/2), sqrt(2)), for a positive normal `u`: `(e as i32, m)`.
fn split_exponent(kb: &mut Kb, ux: H) -> (H, H) {
    let ub = bits(kb, ux);
    let hx = hi_word(kb, ub);
    let t = ubin32(kb, Bo::Subtract, hx, 0x3fe6_a09e);
    let ti = kb.bitcast(t, STy::I32);
    let e = shift(kb, Bo::ShiftRight, ti, 20);
    let eu = kb.bitcast(e, STy::U32);
    let eshift = shift(kb, Bo::ShiftLeft, eu, 20);
    let mhi = kb.binary(Bo::Subtract, hx, eshift);
    let mhi = kb.convert(mhi, STy::U64);
    let mhi = shift(kb, Bo::ShiftLeft, mhi, 32);
    let lo = ubin(kb, Bo::And, ub, 0xffff_ffff);
    let mb = kb.binary(Bo::InclusiveOr, mhi, lo);
    (e, from_bits(kb, mb))
}

/// `log(u) + corr` for a positive normal `u` (`corr` a small correction, or zero).
fn log_core(kb: &mut Kb, ux: H, corr: H) -> H {
    let (e, m) = split_exponent(kb, ux);
    let f = addc(kb, m, -1.0);
    // log1p(f) = f - f^2/2 + s (f^2/2 + R), s = f / (2 + f), R = s^2 LOG_R(s^2).
    let d = addc(kb, f, 2.0);
    let s = div(kb, f, d);
    let z = mul(kb, s, s);
    let rp = poly(kb, z, &LOG_R);
    let r = mul(kb, z, rp);
    let hf = mulc(kb, f, 0.5);
    let hfsq = mul(kb, hf, f);
    let ef = kb.convert(e, STy::F64);
    let inner = add(kb, hfsq, r);
    let sp = mul(kb, s, inner);
    let elo = mulc(kb, ef, LN2_LO);
    let elo = add(kb, elo, corr);
    let sp = add(kb, sp, elo);
    let a = sub(kb, hfsq, sp);
    let a = sub(kb, a, f);
    let ehi = mulc(kb, ef, LN2_HI);
    sub(kb, ehi, a)
}

fn not_neg_inf(kb: &mut Kb, x: H) -> H {
    let ninf = c(kb, f64::NEG_INFINITY);
    let eq = kb.binary(Bo::Equal, x, ninf);
    not(kb, eq)
}

/// Natural logarithm.
pub(crate) fn log(kb: &mut Kb, x: H) -> H {
    let zero = c(kb, 0.0);
    let core = log_core(kb, x, zero);
    let ninf = c(kb, f64::NEG_INFINITY);
    let nan = c(kb, f64::NAN);
    let z = is_zero(kb, x);
    let r = kb.select(z, ninf, core);
    let negx = ltc(kb, x, 0.0);
    let r = kb.select(negx, nan, r);
    // +inf and NaN map to themselves.
    let inf = is_inf(kb, x);
    let xn = is_nan(kb, x);
    let keep = or(kb, inf, xn);
    let not_ninf = not_neg_inf(kb, x);
    let keep = and(kb, keep, not_ninf);
    kb.select(keep, x, r)
}

/// `log(1 + x)`, exact near zero and finite for every finite x > -1.
pub(crate) fn log1p(kb: &mut Kb, x: H) -> H {
    let ux = addc(kb, x, 1.0);
    // The rounding error of 1 + x, relative to 1 + x (zero once x is huge).
    let um1 = addc(kb, ux, -1.0);
    let err = sub(kb, x, um1);
    let corr = div(kb, err, ux);
    let ax = abs(kb, x);
    let huge = gtc(kb, ax, 1e300);
    let zero = c(kb, 0.0);
    let corr = kb.select(huge, zero, corr);
    let core = log_core(kb, ux, corr);
    let ninf = c(kb, f64::NEG_INFINITY);
    let nan = c(kb, f64::NAN);
    let m1 = c(kb, -1.0);
    let is_m1 = kb.binary(Bo::Equal, x, m1);
    let r = kb.select(is_m1, ninf, core);
    let below = lt(kb, x, m1);
    let r = kb.select(below, nan, r);
    let z = is_zero(kb, x);
    let inf = is_inf(kb, x);
    let xn = is_nan(kb, x);
    let keep = or(kb, z, inf);
    let keep = or(kb, keep, xn);
    let not_ninf = not_neg_inf(kb, x);
    let keep = and(kb, keep, not_ninf);
    kb.select(keep, x, r)
}

// ---- trigonometric functions -------------------------------------------------------------

/// The 64-bit word `TWO_OVER_PI[w + k]` for a u32 `w` that may be up to 16.
fn two_over_pi_word(kb: &mut Kb, w: H, k: usize) -> H {
    let last = TWO_OVER_PI.len() - 1;
    let mut v = kb.lit_u64(TWO_OVER_PI[last.min(16 + k)]);
    for j in (0..16u32).rev() {
        let is = ubin32(kb, Bo::Equal, w, j);
        let t = kb.lit_u64(TWO_OVER_PI[(j as usize + k).min(last)]);
        v = kb.select(is, t, v);
    }
    v
}

/// Payne-Hanek reduction of a finite |x| >= 2^20: `(r_hi, r_lo, q)` with
/// `|x| = q pi/2 + r (mod 2 pi)`, |r| <= pi/4, from the exact product of the 53-bit mantissa
/// with a 256-bit window of `2/pi` (bits before the window contribute whole turns, bits after
/// it less than 2^-170 of a quadrant).
fn payne_hanek(kb: &mut Kb, ax: H) -> (H, H, H) {
    let ib = bits(kb, ax);
    let hx = hi_word(kb, ib);
    let ex = shift(kb, Bo::ShiftRight, hx, 20);
    let mant = ubin(kb, Bo::And, ib, (1 << 52) - 1);
    let mant = ubin(kb, Bo::InclusiveOr, mant, 1 << 52);
    // |x| = mant 2^E, E = ex - 1075. The window starts at bit E - 31 after the point of 2/pi,
    // which is bit ex - 1043 of the table: then the product's bits 225, 224 are the quadrant.
    let pos = ubin32(kb, Bo::Subtract, ex, 1043);
    let w = shift(kb, Bo::ShiftRight, pos, 6);
    let sh = ubin32(kb, Bo::And, pos, 63);
    let c63 = kb.lit_u32(63);
    let rsh = kb.binary(Bo::Subtract, c63, sh);
    let t: Vec<H> = (0..5).map(|k| two_over_pi_word(kb, w, k)).collect();
    let window = |kb: &mut Kb, k: usize| -> H {
        let a = kb.binary(Bo::ShiftLeft, t[k], sh);
        let b = shift(kb, Bo::ShiftRight, t[k + 1], 1);
        let b = kb.binary(Bo::ShiftRight, b, rsh);
        kb.binary(Bo::InclusiveOr, a, b)
    };
    let win: Vec<H> = (0..4).map(|k| window(kb, k)).collect();
    // 32-bit limbs, least significant first: the window's eight and the mantissa's two.
    let mut wl = Vec::new();
    for k in (0..4).rev() {
        wl.push(ubin(kb, Bo::And, win[k], 0xffff_ffff));
        wl.push(shift(kb, Bo::ShiftRight, win[k], 32));
    }
    let ml = [ubin(kb, Bo::And, mant, 0xffff_ffff), shift(kb, Bo::ShiftRight, mant, 32)];
    // Column sums of 32-bit halves of the limb products (each below 2^35), then carries.
    let mut col: Vec<Option<H>> = vec![None; 10];
    let mut acc = |kb: &mut Kb, k: usize, v: H| {
        col[k] = Some(match col[k] {
            Some(s) => kb.binary(Bo::Add, s, v),
            None => v,
        });
    };
    for (i, &m) in ml.iter().enumerate() {
        for (j, &l) in wl.iter().enumerate() {
            let p = kb.binary(Bo::Multiply, m, l);
            let lo = ubin(kb, Bo::And, p, 0xffff_ffff);
            let hi = shift(kb, Bo::ShiftRight, p, 32);
            acc(kb, i + j, lo);
            acc(kb, i + j + 1, hi);
        }
    }
    let mut limbs = Vec::new();
    let mut carry = kb.lit_u64(0);
    for col_k in col.iter().take(8) {
        let s = kb.binary(Bo::Add, col_k.unwrap(), carry);
        limbs.push(ubin(kb, Bo::And, s, 0xffff_ffff));
        carry = shift(kb, Bo::ShiftRight, s, 32);
    }
    // limbs[7] holds bits 224..255: the quadrant is its low two bits; the fraction's top 128
    // bits are limbs[6..3], read as a signed fraction in [-1/2, 1/2) that rounds the quadrant
    // to nearest.
    let quad = kb.convert(limbs[7], STy::U32);
    let f_hi = shift(kb, Bo::ShiftLeft, limbs[6], 32);
    let f = kb.binary(Bo::InclusiveOr, f_hi, limbs[5]);
    let g_hi = shift(kb, Bo::ShiftLeft, limbs[4], 32);
    let g = kb.binary(Bo::InclusiveOr, g_hi, limbs[3]);
    let top = shift(kb, Bo::ShiftRight, f, 63);
    let negative = ubin(kb, Bo::Equal, top, 1);
    let q = {
        let t = kb.convert(top, STy::U32);
        let q = kb.binary(Bo::Add, quad, t);
        ubin32(kb, Bo::And, q, 3)
    };
    // |fraction| as (f, g) 128-bit magnitude (one's complement for the negative case: off by
    // 2^-128), converted exactly: 53 high bits, the 11 below, then g's top 53.
    let nf = kb.unary(naga::UnaryOperator::BitwiseNot, f);
    let ng = kb.unary(naga::UnaryOperator::BitwiseNot, g);
    let f = kb.select(negative, nf, f);
    let g = kb.select(negative, ng, g);
    let fh = ubin(kb, Bo::And, f, !0x7ff);
    let fl = ubin(kb, Bo::And, f, 0x7ff);
    let g = shift(kb, Bo::ShiftRight, g, 11);
    let fhf = kb.convert(fh, STy::F64);
    let fhf = mulc(kb, fhf, 2f64.powi(-64));
    let flf = kb.convert(fl, STy::F64);
    let flf = mulc(kb, flf, 2f64.powi(-64));
    let gf = kb.convert(g, STy::F64);
    let gf = mulc(kb, gf, 2f64.powi(-117));
    let frac_lo = add(kb, flf, gf);
    let (fr_h, fr_l) = fast_two_sum(kb, fhf, frac_lo);
    let pio2 = (PIO2_HI, PIO2_LO).into_h(kb);
    let (rh, rl) = dd_mul(kb, (fr_h, fr_l), pio2);
    let nrh = neg(kb, rh);
    let nrl = neg(kb, rl);
    let rh = kb.select(negative, nrh, rh);
    let rl = kb.select(negative, nrl, rl);
    let q = kb.bitcast(q, STy::I32);
    (rh, rl, q)
}

/// A pair of f64 constants as handles.
trait IntoH {
    fn into_h(self, kb: &mut Kb) -> (H, H);
}

impl IntoH for (f64, f64) {
    fn into_h(self, kb: &mut Kb) -> (H, H) {
        (c(kb, self.0), c(kb, self.1))
    }
}

/// `x = q pi/2 + r`, |r| <= pi/4 (about): `(r_hi, r_lo, q mod 4 as i32)` for finite `x`,
/// `r` a double-double.
fn reduce_pio2(kb: &mut Kb, x: H) -> (H, H, H) {
    // Cody-Waite for |x| < 2^20: n P1, n P2, n P3 are exact and x - n P1 too (Sterbenz); the
    // other differences keep their rounding errors.
    let t = mulc(kb, x, std::f64::consts::FRAC_2_PI);
    let n = kb.math(Mf::Round, &[t]);
    let p1 = mulc(kb, n, PIO2_PARTS[0]);
    let a = sub(kb, x, p1);
    let p2 = mulc(kb, n, -PIO2_PARTS[1]);
    let (b, eb) = two_sum(kb, a, p2);
    let p3 = mulc(kb, n, -PIO2_PARTS[2]);
    let (cc, ec) = two_sum(kb, b, p3);
    let tail = mulc(kb, n, PIO2_PARTS[3]);
    let lo = add(kb, eb, ec);
    let lo = sub(kb, lo, tail);
    let (r, rl) = fast_two_sum(kb, cc, lo);
    let ax = abs(kb, x);
    // Clamped so that a huge (or infinite) argument converts to an in-range integer.
    let big = c(kb, CODY_WAITE_LIMIT);
    let nb = kb.math(Mf::Min, &[n, big]);
    let nbig = neg(kb, big);
    let nb = kb.math(Mf::Max, &[nb, nbig]);
    let ni = kb.convert(nb, STy::I32);
    let three = kb.lit_i32(3);
    let q = kb.binary(Bo::And, ni, three);
    let is_big = kb.binary(Bo::GreaterEqual, ax, big);
    let finite = is_inf(kb, x);
    let finite = not(kb, finite);
    let is_big = and(kb, is_big, finite);
    if let Some(flag) = kb.rare_path_flag {
        // The caller redoes this work with the slow path where the flag ends up set.
        let seen = kb.load(flag);
        let seen = or(kb, seen, is_big);
        kb.store(flag, seen);
        return (r, rl, q);
    }
    let r_var = kb.local_init("trig64_r", STy::F64, r);
    let rl_var = kb.local_init("trig64_rl", STy::F64, rl);
    let q_var = kb.local_init("trig64_q", STy::I32, q);
    // Payne-Hanek in a branch, so that ordinary arguments do not pay for it.
    kb.begin_block();
    let (rb, rlb, qb) = payne_hanek(kb, ax);
    let negx = ltc(kb, x, 0.0);
    let nrb = neg(kb, rb);
    let rb = kb.select(negx, nrb, rb);
    let nrlb = neg(kb, rlb);
    let rlb = kb.select(negx, nrlb, rlb);
    let zero = kb.lit_i32(0);
    let nqb = kb.binary(Bo::Subtract, zero, qb);
    let nqb = kb.binary(Bo::And, nqb, three);
    let qb = kb.select(negx, nqb, qb);
    kb.store(r_var, rb);
    kb.store(rl_var, rlb);
    kb.store(q_var, qb);
    let accept = kb.end_block();
    kb.stmt(Statement::If { condition: is_big, accept, reject: naga::Block::new() });
    (kb.load(r_var), kb.load(rl_var), kb.load(q_var))
}

/// `(sin(r + y), cos(r + y))` for |r| <= pi/4 and |y| tiny against r's ulp.
fn sin_cos_small(kb: &mut Kb, r: H, y: H) -> (H, H) {
    let z = mul(kb, r, r);
    // sin: r + (r^3 S(z) + y (1 - z/2)).
    let sp = poly(kb, z, &SIN_S);
    let v = mul(kb, r, z);
    let vs = mul(kb, v, sp);
    let hz = mulc(kb, z, 0.5);
    let hzy = mul(kb, hz, y);
    let yc = sub(kb, y, hzy);
    let st = add(kb, vs, yc);
    let s = add(kb, r, st);
    // cos: w + (((1 - w) - z/2) + (z^2 C(z) - r y)) with w = 1 - z/2 (the first term recovers
    // w's rounding error).
    let cp = poly(kb, z, &COS_C);
    let z2 = mul(kb, z, z);
    let tail = mul(kb, z2, cp);
    let ry = mul(kb, r, y);
    let tail = sub(kb, tail, ry);
    let one = c(kb, 1.0);
    let w = sub(kb, one, hz);
    let ew = sub(kb, one, w);
    let ew = sub(kb, ew, hz);
    let t = add(kb, ew, tail);
    (s, add(kb, w, t))
}

/// `sin`, `cos` or `tan` with exact argument reduction over the whole f64 range.
pub(crate) fn trig(kb: &mut Kb, x: H, which: super::math::Trig) -> H {
    use super::math::Trig;
    let (r, rl, q) = reduce_pio2(kb, x);
    let (s, co) = sin_cos_small(kb, r, rl);
    let zero = kb.lit_i32(0);
    let one = kb.lit_i32(1);
    let odd = kb.binary(Bo::And, q, one);
    let odd = kb.binary(Bo::NotEqual, odd, zero);
    let res = match which {
        Trig::Sin | Trig::Cos => {
            let (even_v, odd_v, sh) = if which == Trig::Sin { (s, co, 0) } else { (co, s, 1) };
            let v = kb.select(odd, odd_v, even_v);
            let shc = kb.lit_i32(sh);
            let qs = kb.binary(Bo::Add, q, shc);
            let two = kb.lit_i32(2);
            let negq = kb.binary(Bo::And, qs, two);
            let negq = kb.binary(Bo::NotEqual, negq, zero);
            let nv = neg(kb, v);
            kb.select(negq, nv, v)
        }
        Trig::Tan => {
            let t_even = div(kb, s, co);
            let nc = neg(kb, co);
            let t_odd = div(kb, nc, s);
            kb.select(odd, t_odd, t_even)
        }
    };
    // +-0 keeps its sign (sin, tan); cos(+-0) = 1 falls out of the formula.
    let res = if which == Trig::Cos {
        res
    } else {
        let z = is_zero(kb, x);
        kb.select(z, x, res)
    };
    let bad = is_inf(kb, x);
    let xn = is_nan(kb, x);
    let bad = or(kb, bad, xn);
    let nan = c(kb, f64::NAN);
    kb.select(bad, nan, res)
}

/// `atan2(y, x)` with every IEEE special case.
pub(crate) fn atan2(kb: &mut Kb, y: H, x: H) -> H {
    let ax = abs(kb, x);
    let ay = abs(kb, y);
    let mx = kb.math(Mf::Max, &[ax, ay]);
    let mn = kb.math(Mf::Min, &[ax, ay]);
    let t = div(kb, mn, mx);
    // 0/0 and inf/inf: atan2 is 0 and pi/4 before the quadrant fix-up.
    let xz = is_zero(kb, x);
    let yz = is_zero(kb, y);
    let both_zero = and(kb, xz, yz);
    let xi = is_inf(kb, x);
    let yi = is_inf(kb, y);
    let both_inf = and(kb, xi, yi);
    let zero = c(kb, 0.0);
    let one = c(kb, 1.0);
    let t = kb.select(both_zero, zero, t);
    let t = kb.select(both_inf, one, t);
    // atan t = atan c + atan((t - c) / (1 + t c)), c = k/8 nearest t (t - c is exact).
    let t8 = mulc(kb, t, 8.0);
    let kf = kb.math(Mf::Round, &[t8]);
    let cc = mulc(kb, kf, 0.125);
    let num = sub(kb, t, cc);
    let tc = mul(kb, t, cc);
    let den = add(kb, one, tc);
    let tp = div(kb, num, den);
    let z = mul(kb, tp, tp);
    let p = poly(kb, z, &ATAN_A);
    let tz = mul(kb, tp, z);
    let tzp = mul(kb, tz, p);
    let a = add(kb, tp, tzp);
    let k = kb.convert(kf, STy::I32);
    let mut base_hi = c(kb, ATAN_K8[8].0);
    let mut base_lo = c(kb, ATAN_K8[8].1);
    for j in (0..8).rev() {
        let jc = kb.lit_i32(j as i32);
        let is = kb.binary(Bo::Equal, k, jc);
        let h = c(kb, ATAN_K8[j].0);
        let l = c(kb, ATAN_K8[j].1);
        base_hi = kb.select(is, h, base_hi);
        base_lo = kb.select(is, l, base_lo);
    }
    let r = add(kb, a, base_lo);
    let r = add(kb, r, base_hi);
    // |y| > |x|: pi/2 - r; x negative (or -0): pi - r.
    let steep = kb.binary(Bo::Greater, ay, ax);
    let h = c(kb, PIO2_HI);
    let l = c(kb, PIO2_LO);
    let rs = sub(kb, h, r);
    let rs = add(kb, rs, l);
    let r = kb.select(steep, rs, r);
    let xneg = sign_bit(kb, x);
    let h = c(kb, PI_HI);
    let l = c(kb, PI_LO);
    let rn = sub(kb, h, r);
    let rn = add(kb, rn, l);
    let r = kb.select(xneg, rn, r);
    let r = copysign(kb, r, y);
    let xn = is_nan(kb, x);
    let yn = is_nan(kb, y);
    let nan = or(kb, xn, yn);
    let nanv = c(kb, f64::NAN);
    kb.select(nan, nanv, r)
}

// ---- pow and cbrt -------------------------------------------------------------------------

/// `log2 |x|` as a double-double for a positive normal `ax` (relative error about 2^-70).
fn log2_wide(kb: &mut Kb, ax: H) -> (H, H) {
    let (e, m) = split_exponent(kb, ax);
    let f = addc(kb, m, -1.0);
    // s = f / (2 + f) as a double-double.
    let two = c(kb, 2.0);
    let (d, dlo) = fast_two_sum(kb, two, f);
    let sh = div(kb, f, d);
    let (p, pe) = two_prod(kb, sh, d);
    let num = sub(kb, f, p);
    let num = sub(kb, num, pe);
    let sd = mul(kb, sh, dlo);
    let num = sub(kb, num, sd);
    let sl = div(kb, num, d);
    // ln m = 2s + s^3 (2/3 + z R(z)), z = s^2, the first two terms in double-double.
    let s = (sh, sl);
    let zz = dd_mul(kb, s, s);
    let s3 = dd_mul(kb, zz, s);
    let rp = poly(kb, zz.0, &LOG_R[1..]);
    let zr = mul(kb, zz.0, rp);
    let zero = c(kb, 0.0);
    let two_thirds = (2.0 / 3.0, 3.700_743_415_417_188e-17).into_h(kb);
    let q = dd_add(kb, two_thirds, (zr, zero));
    let tail = dd_mul(kb, s3, q);
    let two_sh = mulc(kb, sh, 2.0);
    let two_sl = mulc(kb, sl, 2.0);
    let lnm = dd_add(kb, (two_sh, two_sl), tail);
    let l2e = LOG2E_DD.into_h(kb);
    let l = dd_mul(kb, lnm, l2e);
    let ef = kb.convert(e, STy::F64);
    dd_add(kb, (ef, zero), l)
}

/// `x^y` with C99's special cases (subnormal operands are read as zero by the caller).
pub(crate) fn pow(kb: &mut Kb, x: H, y: H) -> H {
    let ax = abs(kb, x);
    let lg = log2_wide(kb, ax);
    let zero = c(kb, 0.0);
    let (th, tl) = dd_mul(kb, (y, zero), lg);
    // Beyond |t| = 2000 the result is 0 or inf; clamping keeps the arithmetic finite. The
    // plain product decides, and replaces the double-double one where that is NaN (the
    // product overflows, or y is beyond the splitting range while log2 |x| = 0).
    let lim = c(kb, 2000.0);
    let nlim = c(kb, -2000.0);
    let tp = mul(kb, y, lg.0);
    let tp_abs = abs(kb, tp);
    let th_big = gtc(kb, tp_abs, 2000.0);
    let th_bad = is_nan(kb, th);
    let th_big = or(kb, th_big, th_bad);
    let th = kb.select(th_big, tp, th);
    let th_nan = is_nan(kb, th);
    let th_c = kb.math(Mf::Clamp, &[th, nlim, lim]);
    let drop_tl = or(kb, th_big, th_nan);
    let tl = kb.select(drop_tl, zero, tl);
    let k = kb.math(Mf::Round, &[th_c]);
    let fr = sub(kb, th_c, k);
    let fr = add(kb, fr, tl);
    let ur = mulc(kb, fr, LN2);
    let em1 = expm1_small(kb, ur);
    let p = addc(kb, em1, 1.0);
    let ki = kb.convert(k, STy::I32);
    let mag = scale(kb, p, ki);
    super::math::pow_special_cases(kb, x, y, ax, mag, STy::F64)
}

/// Cube root (subnormal inputs read as zero).
pub(crate) fn cbrt(kb: &mut Kb, x: H) -> H {
    let ax = abs(kb, x);
    let ib = bits(kb, ax);
    let hx = hi_word(kb, ib);
    // |x| = v 2^(3q - 1023) with v in [1, 8): q = floor(e / 3) for the biased exponent e.
    let e = shift(kb, Bo::ShiftRight, hx, 20);
    let q3 = ubin32(kb, Bo::Divide, e, 3);
    let rem = ubin32(kb, Bo::Multiply, q3, 3);
    let rem = kb.binary(Bo::Subtract, e, rem);
    let vexp = ubin32(kb, Bo::Add, rem, 1023);
    let vexp = kb.convert(vexp, STy::U64);
    let vexp = shift(kb, Bo::ShiftLeft, vexp, 52);
    let mant = ubin(kb, Bo::And, ib, (1 << 52) - 1);
    let vb = kb.binary(Bo::InclusiveOr, mant, vexp);
    let v = from_bits(kb, vb);
    // cbrt(v) in [1, 2): a quadratic start, then Halley's y - y (y^3 - v) / (2y^3 + v).
    let mut yv = poly(kb, v, &CBRT_START);
    for _ in 0..3 {
        let y2 = mul(kb, yv, yv);
        let y3 = mul(kb, y2, yv);
        let num = sub(kb, y3, v);
        let two_y3 = mulc(kb, y3, 2.0);
        let den = add(kb, two_y3, v);
        let q = div(kb, num, den);
        let corr = mul(kb, yv, q);
        yv = sub(kb, yv, corr);
    }
    // y 2^(q - 341) by adding to the exponent field.
    let qe = kb.convert(q3, STy::U64);
    let qe = shift(kb, Bo::ShiftLeft, qe, 52);
    let yb = bits(kb, yv);
    let yb = kb.binary(Bo::Add, yb, qe);
    let yb = ubin(kb, Bo::Subtract, yb, 341 << 52);
    let r = from_bits(kb, yb);
    let r = copysign(kb, r, x);
    let z = is_zero(kb, x);
    let inf = is_inf(kb, x);
    let xn = is_nan(kb, x);
    let keep = or(kb, z, inf);
    let keep = or(kb, keep, xn);
    kb.select(keep, x, r)
}

/// The error function: its Taylor series at 0 below 1, at 1.5 up to 2, and `1 - erfc` from the
/// continued fraction `erfc x = e^-x^2 / sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / ...)))`
/// above (evaluated to a fixed depth, bottom up).
pub(crate) fn erf(kb: &mut Kb, x: H) -> H {
    let ax = abs(kb, x);
    // |x| < 1.
    let z = mul(kb, ax, ax);
    let p = poly(kb, z, &ERF_T);
    let small = mulc(kb, ax, TWO_OVER_SQRT_PI);
    let small = mul(kb, small, p);
    // 1 <= |x| < 2.
    let h = addc(kb, ax, -1.5);
    let p = poly(kb, h, &ERF_MID);
    let ph = mul(kb, p, h);
    let mid = addc(kb, ph, ERF_MID_0.1);
    let mid = addc(kb, mid, ERF_MID_0.0);
    // |x| >= 2 (clamped to keep the fraction finite; erf is 1 in f64 from 5.93 on).
    let lim = c(kb, 30.0);
    let axc = kb.math(Mf::Min, &[ax, lim]);
    let mut t = axc;
    for k in (1..=ERFC_CF_DEPTH).rev() {
        let q = c(kb, k as f64 / 2.0);
        let q = div(kb, q, t);
        t = add(kb, axc, q);
    }
    let z = mul(kb, axc, axc);
    let nz = neg(kb, z);
    let e = exp(kb, nz);
    let e = mulc(kb, e, 1.0 / std::f64::consts::PI.sqrt());
    let erfc = div(kb, e, t);
    let one = c(kb, 1.0);
    let large = sub(kb, one, erfc);
    let lt1 = ltc(kb, ax, 1.0);
    let lt2 = ltc(kb, ax, 2.0);
    let r = kb.select(lt2, mid, large);
    let r = kb.select(lt1, small, r);
    let r = copysign(kb, r, x);
    let z = is_zero(kb, x);
    let xn = is_nan(kb, x);
    let keep = or(kb, z, xn);
    kb.select(keep, x, r)
}
