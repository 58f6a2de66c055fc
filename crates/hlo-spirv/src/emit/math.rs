//! f32 transcendental functions built from plain arithmetic, so that results do not depend on
//! a driver's GLSL.std.450 built-ins (whose precision Vulkan leaves loose, and which lavapipe
//! computes its own way).
//!
//! Each function reduces its argument exactly or nearly so, evaluates a polynomial fitted on
//! the reduced interval (minimax-like fits made with `hlo-samples/math/fit_coefficients.py`),
//! and selects the special values IEEE and XLA define. Bounds below are the largest error
//! measured against a correctly rounded result (f64 reference) on the math suite's sweeps
//! (`hlo-samples/math/`) with denormals flushed; docs/numerics.md has the bounds against
//! JAX's own (XLA:CPU) results, which the tests enforce.
//!
//! | function | method | ulp |
//! |---|---|---|
//! | `exp` | `k = round(x / ln 2)`, two-part `ln 2`, degree-6 polynomial, scaling in two steps | 1 |
//! | `expm1` | as `exp`, with `2^k (e^r - 1) + (2^k - 1)` and `e^r - 1 = r + r^2 Q(r)` | 2 |
//! | `log` | `x = 2^e m`, `m` in `[1/sqrt 2, sqrt 2)`, `log1p(f) = f - f^2/2 + s (f^2/2 + R(s^2))` | 1 |
//! | `log1p` | `log(1 + x)` plus the rounding error of `1 + x` divided by `1 + x` | 2 |
//! | `sin`, `cos` | Cody-Waite with a four-part `pi/2` below 512, Payne-Hanek above (exact 96-bit window of `2/pi`) | 2 |
//! | `tan` | `sin / cos` of the reduced argument | 3 |
//! | `tanh` | odd polynomial below 0.55, `1 - 2 / (exp(2|x|) + 1)` above, +-1 beyond 9.1 | 2 |
//! | `atan2` | quotient of the smaller by the larger magnitude, `pi/4` shift above `tan(pi/8)`, odd polynomial, quadrant fix-up | 2 |
//! | `pow` | `2^(y log2 x)` in double-f32 arithmetic (error-free products by bit-mask splitting) | 2 |
//! | `cbrt` | exponent divided by 3 exactly, quadratic start, two Halley steps | 1 |
//!
//! None of these rely on `fma` rounding once (lavapipe's rounds twice): error-free products
//! split operands by masking bits, which contraction by a driver cannot break.
//!
//! The f64 functions are in [`super::math64`].

// Constants keep the digits they were derived with (exact splits, fitted coefficients).
#![allow(clippy::excessive_precision)]

use crate::builder::{Kb, STy, H};
use naga::{BinaryOperator as Bo, MathFunction as Mf, Statement};

// ---- small helpers ------------------------------------------------------------

fn c(kb: &mut Kb, v: f32) -> H {
    kb.lit_f32(v)
}

pub(super) fn add(kb: &mut Kb, a: H, b: H) -> H {
    kb.binary(Bo::Add, a, b)
}

pub(super) fn sub(kb: &mut Kb, a: H, b: H) -> H {
    kb.binary(Bo::Subtract, a, b)
}

pub(super) fn mul(kb: &mut Kb, a: H, b: H) -> H {
    kb.binary(Bo::Multiply, a, b)
}

pub(super) fn div(kb: &mut Kb, a: H, b: H) -> H {
    kb.binary(Bo::Divide, a, b)
}

fn addc(kb: &mut Kb, a: H, v: f32) -> H {
    let k = c(kb, v);
    add(kb, a, k)
}

fn mulc(kb: &mut Kb, a: H, v: f32) -> H {
    let k = c(kb, v);
    mul(kb, a, k)
}

pub(super) fn lt(kb: &mut Kb, a: H, b: H) -> H {
    kb.binary(Bo::Less, a, b)
}

fn ltc(kb: &mut Kb, a: H, v: f32) -> H {
    let k = c(kb, v);
    lt(kb, a, k)
}

fn gtc(kb: &mut Kb, a: H, v: f32) -> H {
    let k = c(kb, v);
    kb.binary(Bo::Greater, a, k)
}

pub(super) fn or(kb: &mut Kb, a: H, b: H) -> H {
    kb.binary(Bo::LogicalOr, a, b)
}

pub(super) fn and(kb: &mut Kb, a: H, b: H) -> H {
    kb.binary(Bo::LogicalAnd, a, b)
}

pub(super) fn not(kb: &mut Kb, a: H) -> H {
    kb.unary(naga::UnaryOperator::LogicalNot, a)
}

pub(super) fn neg(kb: &mut Kb, a: H) -> H {
    kb.unary(naga::UnaryOperator::Negate, a)
}

fn bits(kb: &mut Kb, x: H) -> H {
    kb.bitcast(x, STy::U32)
}

fn from_bits(kb: &mut Kb, u: H) -> H {
    kb.bitcast(u, STy::F32)
}

fn u(kb: &mut Kb, v: u32) -> H {
    kb.lit_u32(v)
}

fn i(kb: &mut Kb, v: i32) -> H {
    kb.lit_i32(v)
}

fn ubin(kb: &mut Kb, op: Bo, a: H, v: u32) -> H {
    let k = u(kb, v);
    kb.binary(op, a, k)
}

fn ibin(kb: &mut Kb, op: Bo, a: H, v: i32) -> H {
    let k = i(kb, v);
    kb.binary(op, a, k)
}

pub(super) fn abs(kb: &mut Kb, x: H) -> H {
    kb.math(Mf::Abs, &[x])
}

/// `isnan(x)` on the bit pattern (immune to fast-math folding).
pub(crate) fn is_nan(kb: &mut Kb, x: H) -> H {
    kb.float_class(x, STy::F32, false)
}

pub(crate) fn is_inf(kb: &mut Kb, x: H) -> H {
    kb.float_class(x, STy::F32, true)
}

/// True when the sign bit of `x` is set (-0 and NaNs with the bit included).
fn sign_bit(kb: &mut Kb, x: H) -> H {
    let b = bits(kb, x);
    let s = ubin(kb, Bo::And, b, 0x8000_0000);
    let zero = u(kb, 0);
    kb.binary(Bo::NotEqual, s, zero)
}

/// True for +-0 (by bits).
fn is_zero(kb: &mut Kb, x: H) -> H {
    let b = bits(kb, x);
    let a = ubin(kb, Bo::And, b, 0x7fff_ffff);
    let zero = u(kb, 0);
    kb.binary(Bo::Equal, a, zero)
}

/// `|mag|` with the sign of `sign`.
pub(crate) fn copysign(kb: &mut Kb, mag: H, sign: H) -> H {
    let m = bits(kb, mag);
    let m = ubin(kb, Bo::And, m, 0x7fff_ffff);
    let s = bits(kb, sign);
    let s = ubin(kb, Bo::And, s, 0x8000_0000);
    let r = kb.binary(Bo::InclusiveOr, m, s);
    from_bits(kb, r)
}

/// Horner evaluation of `coef[0] + coef[1] z + ...`.
fn poly(kb: &mut Kb, z: H, coef: &[f32]) -> H {
    let mut p = c(kb, coef[coef.len() - 1]);
    for &k in coef[..coef.len() - 1].iter().rev() {
        let kc = c(kb, k);
        p = kb.math(Mf::Fma, &[p, z, kc]);
    }
    p
}

/// `2^k` for an i32 `k` in [-126, 127].
fn pow2i(kb: &mut Kb, k: H) -> H {
    let b = ibin(kb, Bo::Add, k, 127);
    let b = kb.bitcast(b, STy::U32);
    let b = ubin(kb, Bo::ShiftLeft, b, 23);
    from_bits(kb, b)
}

/// `p * 2^k` for an i32 `k` in [-252, 254], in two exact steps (overflow gives inf, underflow 0).
fn scale(kb: &mut Kb, p: H, k: H) -> H {
    let one = u(kb, 1);
    let k1 = kb.binary(Bo::ShiftRight, k, one);
    let k2 = kb.binary(Bo::Subtract, k, k1);
    let s1 = pow2i(kb, k1);
    let s2 = pow2i(kb, k2);
    let r = mul(kb, p, s1);
    mul(kb, r, s2)
}

/// `a` with the low 12 mantissa bits cleared: the high half of a Dekker split.
fn split_hi(kb: &mut Kb, a: H) -> H {
    let b = bits(kb, a);
    let m = ubin(kb, Bo::And, b, 0xffff_f000);
    from_bits(kb, m)
}

/// `a * b` as `p + e` exactly (Dekker's product with bit-mask splits).
fn two_prod(kb: &mut Kb, a: H, b: H) -> (H, H) {
    let p = mul(kb, a, b);
    let ah = split_hi(kb, a);
    let al = sub(kb, a, ah);
    let bh = split_hi(kb, b);
    let bl = sub(kb, b, bh);
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

// ---- constants ------------------------------------------------------------------

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` in two parts; the first has 12 significant bits, so `k * LN2_HI` is exact for |k| < 4096.
const LN2_HI: f32 = 0.693_115_234_375;
const LN2_LO: f32 = 3.194_618_33e-5;
const LN2: f32 = std::f32::consts::LN_2;
const PIO2_HI: f32 = std::f32::consts::FRAC_PI_2;
const PIO2_LO: f32 = -4.371_138_83e-8;
const PI_HI: f32 = std::f32::consts::PI;
const PI_LO: f32 = -8.742_277_66e-8;
const PIO4_HI: f32 = std::f32::consts::FRAC_PI_4;
const PIO4_LO: f32 = -2.185_569_41e-8;
/// `pi/2` in four parts of 15, 15, 15 and 24 bits (Cody-Waite, exact products for |k| < 512).
const PIO2_PARTS: [f32; 4] =
    [1.570_739_746_093_75, 5.657_970_905_303_955e-5, 9.920_881_893_776_823e-10, 5.390_302_953e-15];
/// Below this magnitude trigonometric arguments are reduced with [`PIO2_PARTS`].
const CODY_WAITE_LIMIT: f32 = 512.0;
/// The first 224 bits of `2/pi`, after a zero word for its integer part.
const TWO_OVER_PI: [u32; 9] =
    [0, 0xa2f9_836e, 0x4e44_1529, 0xfc27_57d1, 0xf534_ddc0, 0xdb62_9599, 0x3c43_9041, 0xfe51_63ab, 0xdebb_c561];

/// `(e^r - 1 - r) / r^2` on |r| <= ln(2)/2.
const EXP_Q: [f32; 5] = [0.5, 0.166_665_762_6, 0.041_666_373_61, 0.008_363_179_862, 0.001_394_111_78];
/// `(2 atanh(s) - 2s) / s^3` as a polynomial in `s^2` on s^2 <= 0.0295.
const LOG_R: [f32; 4] = [0.666_666_686_5, 0.400_001_227_9, 0.285_506_516_7, 0.233_347_207_3];
/// `(sin r - r) / r^3` in `r^2` on |r| <= pi/4.
const SIN_S: [f32; 3] = [-0.166_666_641_8, 0.008_332_748_897, -0.000_195_880_085_8];
/// `(cos r - 1 + r^2/2) / r^4` in `r^2` on |r| <= pi/4.
const COS_C: [f32; 3] = [0.041_666_664_18, -0.001_388_830_366, 2.454_804_053e-5];
/// `(tanh x - x) / x^3` in `x^2` on |x| <= 0.55.
const TANH_T: [f32; 5] = [-0.333_333_313_5, 0.133_331_209_4, -0.053_910_721_09, 0.021_316_185_59, -0.006_621_424_109];
/// `(atan t - t) / t^3` in `t^2` on |t| <= tan(pi/8).
const ATAN_A: [f32; 5] = [-0.333_333_313_5, 0.199_995_592_2, -0.142_645_075_9, 0.107_488_557_7, -0.064_668_290_32];
/// A quadratic start for `cbrt` on [1, 8] (error 2^-5.5).
const CBRT_START: [f32; 3] = [0.778_519_213_2, 0.256_722_629_1, -0.013_346_672_06];
/// `tan(pi/8)`: above it `atan` shifts its argument by `pi/4`.
const TAN_PI_8: f32 = 0.414_213_56;

// ---- exp family -----------------------------------------------------------------

/// `e^r - 1` for |r| <= ln(2)/2 (about half an ulp).
fn expm1_small(kb: &mut Kb, r: H) -> H {
    let q = poly(kb, r, &EXP_Q);
    let r2 = mul(kb, r, r);
    let t = mul(kb, r2, q);
    add(kb, r, t)
}

/// `x = k ln 2 + r` with |r| <= ln(2)/2 (plus rounding); returns `(k as f32, r)`. `x` must be clamped.
fn reduce_ln2(kb: &mut Kb, x: H) -> (H, H) {
    let t = mulc(kb, x, LOG2E);
    let k = kb.math(Mf::Round, &[t]);
    let hi = mulc(kb, k, LN2_HI);
    let r = sub(kb, x, hi);
    let lo = mulc(kb, k, LN2_LO);
    (k, sub(kb, r, lo))
}

/// `e^x`.
pub(crate) fn exp(kb: &mut Kb, x: H) -> H {
    let lo = c(kb, -104.0);
    let hi = c(kb, 89.0);
    let xc = kb.math(Mf::Clamp, &[x, lo, hi]);
    let (k, r) = reduce_ln2(kb, xc);
    let em1 = expm1_small(kb, r);
    let p = addc(kb, em1, 1.0);
    let ki = kb.convert(k, STy::I32);
    let res = scale(kb, p, ki);
    let nan = is_nan(kb, x);
    kb.select(nan, x, res)
}

/// `e^x - 1`, exact near zero and finite up to ln(FLT_MAX).
pub(crate) fn expm1(kb: &mut Kb, x: H) -> H {
    let lo = c(kb, -30.0);
    let hi = c(kb, 89.0);
    let xc = kb.math(Mf::Clamp, &[x, lo, hi]);
    let (k, r) = reduce_ln2(kb, xc);
    let em1 = expm1_small(kb, r);
    let ki = kb.convert(k, STy::I32);
    // k <= 24: 2^k em1 + (2^k - 1), both exact but the final sum.
    let kc = i(kb, 24);
    let k_small = kb.math(Mf::Min, &[ki, kc]);
    let two_k = pow2i(kb, k_small);
    let scaled = mul(kb, em1, two_k);
    let tkm1 = addc(kb, two_k, -1.0);
    let small = add(kb, scaled, tkm1);
    // k > 24: the -1 is below half an ulp of 2^k (1 + em1).
    let p = addc(kb, em1, 1.0);
    let big = scale(kb, p, ki);
    let is_big = ibin(kb, Bo::Greater, ki, 24);
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
    // |x| < 0.55: x + x^3 T(x^2).
    let z = mul(kb, x, x);
    let t = poly(kb, z, &TANH_T);
    let xz = mul(kb, x, z);
    let small = kb.math(Mf::Fma, &[xz, t, x]);
    // Otherwise 1 - 2 / (e^(2|x|) + 1), which is 1 in f32 beyond 9.1 (clamped to keep e finite).
    let ten = c(kb, 10.0);
    let axc = kb.math(Mf::Min, &[ax, ten]);
    let two_ax = mulc(kb, axc, 2.0);
    let e = exp(kb, two_ax);
    let d = addc(kb, e, 1.0);
    let two = c(kb, 2.0);
    let q = div(kb, two, d);
    let one = c(kb, 1.0);
    let large = sub(kb, one, q);
    let large = copysign(kb, large, x);
    let is_small = ltc(kb, ax, 0.55);
    let res = kb.select(is_small, small, large);
    let z = is_zero(kb, x);
    let nan = is_nan(kb, x);
    let keep = or(kb, z, nan);
    kb.select(keep, x, res)
}

// ---- log family -------------------------------------------------------------------

/// `log(u) + corr` for a positive normal `u` (`corr` a small correction, or zero).
fn log_core(kb: &mut Kb, ux: H, corr: H) -> H {
    // u = 2^e m with m in [sqrt(1/2), sqrt(2)).
    let ub = bits(kb, ux);
    let t = ubin(kb, Bo::Subtract, ub, 0x3f35_04f3);
    let ti = kb.bitcast(t, STy::I32);
    let c23 = u(kb, 23);
    let e = kb.binary(Bo::ShiftRight, ti, c23);
    let eu = kb.bitcast(e, STy::U32);
    let eshift = kb.binary(Bo::ShiftLeft, eu, c23);
    let mb = kb.binary(Bo::Subtract, ub, eshift);
    let m = from_bits(kb, mb);
    let f = addc(kb, m, -1.0);
    // log1p(f) = f - f^2/2 + s (f^2/2 + R), s = f / (2 + f), R = s^2 LOG_R(s^2).
    let d = addc(kb, f, 2.0);
    let s = div(kb, f, d);
    let z = mul(kb, s, s);
    let rp = poly(kb, z, &LOG_R);
    let r = mul(kb, z, rp);
    let hf = mulc(kb, f, 0.5);
    let hfsq = mul(kb, hf, f);
    let ef = kb.convert(e, STy::F32);
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

/// Natural logarithm (subnormal inputs are read as zero by the caller).
pub(crate) fn log(kb: &mut Kb, x: H) -> H {
    let zero = c(kb, 0.0);
    let core = log_core(kb, x, zero);
    let ninf = c(kb, f32::NEG_INFINITY);
    let nan = c(kb, f32::NAN);
    let z = is_zero(kb, x);
    let r = kb.select(z, ninf, core);
    let neg = ltc(kb, x, 0.0);
    let r = kb.select(neg, nan, r);
    // +inf and NaN map to themselves.
    let inf = is_inf(kb, x);
    let xn = is_nan(kb, x);
    let keep = or(kb, inf, xn);
    let not_ninf = not_neg_inf(kb, x);
    let keep = and(kb, keep, not_ninf);
    kb.select(keep, x, r)
}

fn not_neg_inf(kb: &mut Kb, x: H) -> H {
    let ninf = c(kb, f32::NEG_INFINITY);
    let eq = kb.binary(Bo::Equal, x, ninf);
    not(kb, eq)
}

/// `log(1 + x)`, exact near zero and finite for every finite x > -1.
pub(crate) fn log1p(kb: &mut Kb, x: H) -> H {
    let ux = addc(kb, x, 1.0);
    // The rounding error of 1 + x, relative to 1 + x (zero once x is huge or u infinite).
    let um1 = addc(kb, ux, -1.0);
    let err = sub(kb, x, um1);
    let corr = div(kb, err, ux);
    let ax = abs(kb, x);
    let huge = gtc(kb, ax, 1e30);
    let zero = c(kb, 0.0);
    let corr = kb.select(huge, zero, corr);
    let core = log_core(kb, ux, corr);
    let ninf = c(kb, f32::NEG_INFINITY);
    let nan = c(kb, f32::NAN);
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

/// `(hi, lo) = a * b` for u32 `a`, `b`, with 16-bit limbs.
fn mul_wide(kb: &mut Kb, a: H, b: H) -> (H, H) {
    let al = ubin(kb, Bo::And, a, 0xffff);
    let ah = ubin(kb, Bo::ShiftRight, a, 16);
    let bl = ubin(kb, Bo::And, b, 0xffff);
    let bh = ubin(kb, Bo::ShiftRight, b, 16);
    let ll = kb.binary(Bo::Multiply, al, bl);
    let lh = kb.binary(Bo::Multiply, al, bh);
    let hl = kb.binary(Bo::Multiply, ah, bl);
    let hh = kb.binary(Bo::Multiply, ah, bh);
    let ll_hi = ubin(kb, Bo::ShiftRight, ll, 16);
    let lh_lo = ubin(kb, Bo::And, lh, 0xffff);
    let hl_lo = ubin(kb, Bo::And, hl, 0xffff);
    let mid = kb.binary(Bo::Add, ll_hi, lh_lo);
    let mid = kb.binary(Bo::Add, mid, hl_lo);
    let mid_lo = ubin(kb, Bo::ShiftLeft, mid, 16);
    let ll_lo = ubin(kb, Bo::And, ll, 0xffff);
    let lo = kb.binary(Bo::InclusiveOr, mid_lo, ll_lo);
    let lh_hi = ubin(kb, Bo::ShiftRight, lh, 16);
    let hl_hi = ubin(kb, Bo::ShiftRight, hl, 16);
    let mid_hi = ubin(kb, Bo::ShiftRight, mid, 16);
    let hi = kb.binary(Bo::Add, hh, lh_hi);
    let hi = kb.binary(Bo::Add, hi, hl_hi);
    let hi = kb.binary(Bo::Add, hi, mid_hi);
    (hi, lo)
}

/// Payne-Hanek reduction of a finite |x| >= 2^-14 * 2^24: `(r, q)` with
/// `|x| = (q + r / (pi/2)) * pi/2 mod 2 pi`, |r| <= pi/4, from an exact product of the 24-bit
/// mantissa with a 96-bit window of `2/pi`.
fn payne_hanek(kb: &mut Kb, ax: H) -> (H, H) {
    let ix = bits(kb, ax);
    let ex = ubin(kb, Bo::ShiftRight, ix, 23);
    let mant = ubin(kb, Bo::And, ix, 0x7f_ffff);
    let mant = ubin(kb, Bo::InclusiveOr, mant, 0x80_0000);
    // |x| = mant 2^E with E = exponent - 150; the window starts at bit E + 30 of 2/pi (bits
    // before it contribute multiples of 4 quadrants).
    let s = ubin(kb, Bo::Subtract, ex, 120);
    let w = ubin(kb, Bo::ShiftRight, s, 5);
    let sh = ubin(kb, Bo::And, s, 31);
    let c31 = u(kb, 31);
    let rsh = kb.binary(Bo::Subtract, c31, sh);
    let word = |kb: &mut Kb, k: usize| -> H {
        // TWO_OVER_PI[w + k] for w in 0..=4.
        let mut v = u(kb, TWO_OVER_PI[k + 4]);
        for j in (0..4).rev() {
            let is = ubin(kb, Bo::Equal, w, j as u32);
            let t = u(kb, TWO_OVER_PI[k + j]);
            v = kb.select(is, t, v);
        }
        v
    };
    let t: Vec<H> = (0..4).map(|k| word(kb, k)).collect();
    let window = |kb: &mut Kb, k: usize| -> H {
        let a = kb.binary(Bo::ShiftLeft, t[k], sh);
        let b = ubin(kb, Bo::ShiftRight, t[k + 1], 1);
        let b = kb.binary(Bo::ShiftRight, b, rsh);
        kb.binary(Bo::InclusiveOr, a, b)
    };
    let a0 = window(kb, 0);
    let a1 = window(kb, 1);
    let a2 = window(kb, 2);
    let (_, l0) = mul_wide(kb, mant, a0);
    let (h1, l1) = mul_wide(kb, mant, a1);
    let (h2, l2) = mul_wide(kb, mant, a2);
    // The product's limbs below 2^96 (bits 94, 95 are the quadrant; the rest the fraction).
    let p0 = l2;
    let p1 = kb.binary(Bo::Add, h2, l1);
    let carry = kb.binary(Bo::Less, p1, l1);
    let one = u(kb, 1);
    let zero = u(kb, 0);
    let carry = kb.select(carry, one, zero);
    let p2 = kb.binary(Bo::Add, h1, l0);
    let p2 = kb.binary(Bo::Add, p2, carry);
    // Fraction bits 93..62 and 61..30 as two words; the first read as signed rounds the
    // quadrant to nearest.
    let f_hi = ubin(kb, Bo::ShiftLeft, p2, 2);
    let p1_top = ubin(kb, Bo::ShiftRight, p1, 30);
    let f = kb.binary(Bo::InclusiveOr, f_hi, p1_top);
    let g_hi = ubin(kb, Bo::ShiftLeft, p1, 2);
    let p0_top = ubin(kb, Bo::ShiftRight, p0, 30);
    let g = kb.binary(Bo::InclusiveOr, g_hi, p0_top);
    let quad = ubin(kb, Bo::ShiftRight, p2, 30);
    let round_up = ubin(kb, Bo::ShiftRight, f, 31);
    let q = kb.binary(Bo::Add, quad, round_up);
    let q = ubin(kb, Bo::And, q, 3);
    let fs = kb.bitcast(f, STy::I32);
    let fh = ibin(kb, Bo::And, fs, !0xff);
    let resid = kb.binary(Bo::Subtract, fs, fh);
    let fhf = kb.convert(fh, STy::F32);
    let frac_hi = mulc(kb, fhf, 2f32.powi(-32));
    let rf = kb.convert(resid, STy::F32);
    let rf = mulc(kb, rf, 2f32.powi(-32));
    let g8 = ubin(kb, Bo::ShiftRight, g, 8);
    let gf = kb.convert(g8, STy::F32);
    let gf = mulc(kb, gf, 2f32.powi(-56));
    let frac_lo = add(kb, rf, gf);
    let r_hi = mulc(kb, frac_hi, PIO2_HI);
    let t1 = mulc(kb, frac_hi, PIO2_LO);
    let t2 = mulc(kb, frac_lo, PIO2_HI);
    let t = add(kb, t1, t2);
    let r = add(kb, r_hi, t);
    let qi = kb.bitcast(q, STy::I32);
    (r, qi)
}

/// `x = q pi/2 + r`, |r| <= pi/4 (about): `(r, q mod 4 as i32)`, for finite `x`.
fn reduce_pio2(kb: &mut Kb, x: H) -> (H, H) {
    // Cody-Waite for |x| < 512.
    let t = mulc(kb, x, std::f32::consts::FRAC_2_PI);
    let k = kb.math(Mf::Round, &[t]);
    let mut r = x;
    for p in PIO2_PARTS {
        let kp = mulc(kb, k, p);
        r = sub(kb, r, kp);
    }
    let ki = kb.convert(k, STy::I32);
    let q = ibin(kb, Bo::And, ki, 3);
    let ax = abs(kb, x);
    let big = gtc(kb, ax, CODY_WAITE_LIMIT);
    let finite = is_inf(kb, x);
    let finite = not(kb, finite);
    let big = and(kb, big, finite);
    if let Some(flag) = kb.rare_path_flag {
        // The caller redoes this work with the slow path where the flag ends up set.
        let seen = kb.load(flag);
        let seen = or(kb, seen, big);
        kb.store(flag, seen);
        return (r, q);
    }
    let r_var = kb.local_init("trig_r", STy::F32, r);
    let q_var = kb.local_init("trig_q", STy::I32, q);
    // Payne-Hanek in a branch, so that ordinary arguments do not pay for it.
    kb.begin_block();
    let (rb, qb) = payne_hanek(kb, ax);
    let negx = ltc(kb, x, 0.0);
    let nrb = neg(kb, rb);
    let rb = kb.select(negx, nrb, rb);
    let zero = i(kb, 0);
    let nqb = kb.binary(Bo::Subtract, zero, qb);
    let nqb = ibin(kb, Bo::And, nqb, 3);
    let qb = kb.select(negx, nqb, qb);
    kb.store(r_var, rb);
    kb.store(q_var, qb);
    let accept = kb.end_block();
    kb.stmt(Statement::If { condition: big, accept, reject: naga::Block::new() });
    (kb.load(r_var), kb.load(q_var))
}

/// `(sin r, cos r)` for |r| <= pi/4.
fn sin_cos_small(kb: &mut Kb, r: H) -> (H, H) {
    let z = mul(kb, r, r);
    let sp = poly(kb, z, &SIN_S);
    let rz = mul(kb, r, z);
    let s = kb.math(Mf::Fma, &[rz, sp, r]);
    let cp = poly(kb, z, &COS_C);
    let z2 = mul(kb, z, z);
    let tail = mul(kb, z2, cp);
    let hz = mulc(kb, z, 0.5);
    let d = sub(kb, hz, tail);
    let one = c(kb, 1.0);
    (s, sub(kb, one, d))
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trig {
    Sin,
    Cos,
    Tan,
}

/// `sin`, `cos` or `tan` with exact argument reduction over the whole f32 range.
pub(crate) fn trig(kb: &mut Kb, x: H, which: Trig) -> H {
    let (r, q) = reduce_pio2(kb, x);
    let (s, co) = sin_cos_small(kb, r);
    let zero = i(kb, 0);
    let odd = ibin(kb, Bo::And, q, 1);
    let odd = kb.binary(Bo::NotEqual, odd, zero);
    let res = match which {
        Trig::Sin | Trig::Cos => {
            let (even_v, odd_v, shift) = if which == Trig::Sin { (s, co, 0) } else { (co, s, 1) };
            let v = kb.select(odd, odd_v, even_v);
            let qs = ibin(kb, Bo::Add, q, shift);
            let negq = ibin(kb, Bo::And, qs, 2);
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
    let nan = c(kb, f32::NAN);
    kb.select(bad, nan, res)
}

/// `atan2(y, x)` with every IEEE special case.
pub(crate) fn atan2(kb: &mut Kb, y: H, x: H) -> H {
    let ax = abs(kb, x);
    let ay = abs(kb, y);
    let mx = kb.math(Mf::Max, &[ax, ay]);
    let mn = kb.math(Mf::Min, &[ax, ay]);
    let t = div(kb, mn, mx);
    let big = gtc(kb, t, TAN_PI_8);
    // (mn - mx) / (mn + mx), scaled down where the sum would overflow (both near f32::MAX);
    // a quarter of a value that large is exact.
    let huge = gtc(kb, mx, 1.0e38);
    let quarter = c(kb, 0.25);
    let one = c(kb, 1.0);
    let s = kb.select(huge, quarter, one);
    let (smn, smx) = (mul(kb, mn, s), mul(kb, mx, s));
    let num = sub(kb, smn, smx);
    let den = add(kb, smn, smx);
    let shifted = div(kb, num, den);
    let t = kb.select(big, shifted, t);
    // 0/0 and inf/inf: atan2 is 0 (then the quadrant fix-up) and pi/4 (likewise).
    let xz = is_zero(kb, x);
    let yz = is_zero(kb, y);
    let both_zero = and(kb, xz, yz);
    let xi = is_inf(kb, x);
    let yi = is_inf(kb, y);
    let both_inf = and(kb, xi, yi);
    let zero = c(kb, 0.0);
    let special = or(kb, both_zero, both_inf);
    let t = kb.select(special, zero, t);
    let z = mul(kb, t, t);
    let p = poly(kb, z, &ATAN_A);
    let tz = mul(kb, t, z);
    let a = kb.math(Mf::Fma, &[tz, p, t]);
    let use_pio4 = or(kb, big, both_inf);
    let b_hi = c(kb, PIO4_HI);
    let b_lo = c(kb, PIO4_LO);
    let base_hi = kb.select(use_pio4, b_hi, zero);
    let base_lo = kb.select(use_pio4, b_lo, zero);
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
    let nanv = c(kb, f32::NAN);
    kb.select(nan, nanv, r)
}

// ---- pow and cbrt -------------------------------------------------------------------------

/// `log2 |x|` as a double-f32 `(hi, lo)` for a positive normal `ax` (relative error ~2^-30).
fn log2_wide(kb: &mut Kb, ax: H) -> (H, H) {
    let ub = bits(kb, ax);
    let t = ubin(kb, Bo::Subtract, ub, 0x3f35_04f3);
    let ti = kb.bitcast(t, STy::I32);
    let c23 = u(kb, 23);
    let e = kb.binary(Bo::ShiftRight, ti, c23);
    let eu = kb.bitcast(e, STy::U32);
    let eshift = kb.binary(Bo::ShiftLeft, eu, c23);
    let mb = kb.binary(Bo::Subtract, ub, eshift);
    let m = from_bits(kb, mb);
    let f = addc(kb, m, -1.0);
    // s = f / (2 + f) to double-f32 precision.
    let d = addc(kb, f, 2.0);
    let dm2 = addc(kb, d, -2.0);
    let dlo = sub(kb, f, dm2);
    let sh = div(kb, f, d);
    let (p, pe) = two_prod(kb, sh, d);
    let num = sub(kb, f, p);
    let num = sub(kb, num, pe);
    let sd = mul(kb, sh, dlo);
    let num = sub(kb, num, sd);
    let sl = div(kb, num, d);
    // ln m = 2s + s^3 LOG_R(s^2).
    let z = mul(kb, sh, sh);
    let rp = poly(kb, z, &LOG_R);
    let sz = mul(kb, sh, z);
    let tail = mul(kb, sz, rp);
    let two_sh = mulc(kb, sh, 2.0);
    let two_sl = mulc(kb, sl, 2.0);
    let low = add(kb, two_sl, tail);
    let (lh, ll) = fast_two_sum(kb, two_sh, low);
    // log2 = e + ln(m) / ln 2.
    let k_hi = c(kb, LOG2E);
    let (ph, pl) = two_prod(kb, lh, k_hi);
    let t1 = mulc(kb, lh, 1.925_963_03e-8);
    let t2 = mul(kb, ll, k_hi);
    let pl = add(kb, pl, t1);
    let pl = add(kb, pl, t2);
    let ef = kb.convert(e, STy::F32);
    let (gh, gl) = fast_two_sum(kb, ef, ph);
    (gh, add(kb, gl, pl))
}

/// `x^y` with C99's special cases, and subnormal operands read as XLA:CPU's `powf` (glibc's,
/// under denormals-are-zero) reads them: a subnormal base counts as 2^-150 whatever its value
/// (its normalisation multiplies by 2^23, which reads as zero), a subnormal exponent as a
/// tiny non-integer (`pow(2, 1e-45)` is 1, `pow(-2, 1e-45)` NaN, `pow(0, -1e-45)` inf).
pub(crate) fn pow(kb: &mut Kb, x: H, y: H) -> H {
    let ax = abs(kb, x);
    let (lh, ll) = log2_wide(kb, ax);
    let axb = bits(kb, ax);
    let below = ubin(kb, Bo::Less, axb, 0x0080_0000);
    let lh = {
        let m150 = c(kb, -150.0);
        kb.select(below, m150, lh)
    };
    let ll = {
        let z = c(kb, 0.0);
        kb.select(below, z, ll)
    };
    let (th, tl) = two_prod(kb, y, lh);
    let yl = mul(kb, y, ll);
    let tl = add(kb, tl, yl);
    // Beyond |t| = 200 the result is 0 or inf; clamping keeps the arithmetic finite.
    let lim = c(kb, 200.0);
    let nlim = c(kb, -200.0);
    let th_big = abs(kb, th);
    let th_big = gtc(kb, th_big, 200.0);
    let th_nan = is_nan(kb, th);
    let th_c = kb.math(Mf::Clamp, &[th, nlim, lim]);
    let zero = c(kb, 0.0);
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
    pow_special_cases(kb, x, y, ax, mag, STy::F32)
}

/// The special cases of `pow` shared by both widths (`t` is `F32` or `F64`), applied to
/// `mag`, `|x|^y` computed for finite nonzero `|x|`: a zero or infinite base, the sign for odd
/// integer exponents, NaN for a finite negative base with a non-integer exponent, infinite
/// exponents, NaN operands, and `pow(x, +-0) = pow(1, y) = 1`, as C99 and XLA:CPU give them.
/// Signs are read from the bits: a device that flushes subnormals in comparisons must not
/// hide -1e-40 < 0.
pub(super) fn pow_special_cases(kb: &mut Kb, x: H, y: H, ax: H, mag: H, t: STy) -> H {
    let (ut, sign, magnitude) =
        if t == STy::F64 { (STy::U64, 1i128 << 63, (1i128 << 63) - 1) } else { (STy::U32, 1 << 31, (1 << 31) - 1) };
    let masked = |kb: &mut Kb, v: H, mask: i128| {
        let b = kb.bitcast(v, ut);
        let m = kb.lit_int(ut, mask);
        let r = kb.binary(Bo::And, b, m);
        let zero = kb.lit_int(ut, 0);
        (r, zero)
    };
    let sign_bit = |kb: &mut Kb, v: H| {
        let (s, zero) = masked(kb, v, sign);
        kb.binary(Bo::NotEqual, s, zero)
    };
    let is_zero = |kb: &mut Kb, v: H| {
        let (a, zero) = masked(kb, v, magnitude);
        kb.binary(Bo::Equal, a, zero)
    };
    let zero = kb.lit_float(t, 0.0);
    let one = kb.lit_float(t, 1.0);
    let inf = kb.lit_float(t, f64::INFINITY);
    let nan = kb.lit_float(t, f64::NAN);
    // |x| = 0 or inf.
    let y_neg = {
        let sb = sign_bit(kb, y);
        let z = is_zero(kb, y);
        let nz = not(kb, z);
        and(kb, sb, nz)
    };
    let inf_or_zero = kb.select(y_neg, inf, zero);
    let zero_or_inf = kb.select(y_neg, zero, inf);
    let ax_zero = is_zero(kb, ax);
    let ax_inf = kb.float_class(ax, t, true);
    let mag = kb.select(ax_zero, inf_or_zero, mag);
    let mag = kb.select(ax_inf, zero_or_inf, mag);
    // Integer and odd-integer exponents.
    let fy = kb.math(Mf::Floor, &[y]);
    let y_int = kb.binary(Bo::Equal, fy, y);
    let half = kb.lit_float(t, 0.5);
    let hy = mul(kb, y, half);
    let fhy = kb.math(Mf::Floor, &[hy]);
    let y_even = kb.binary(Bo::Equal, fhy, hy);
    let y_not_even = not(kb, y_even);
    let y_odd = and(kb, y_int, y_not_even);
    let x_signed = sign_bit(kb, x);
    let flip = and(kb, x_signed, y_odd);
    let nmag = neg(kb, mag);
    let r = kb.select(flip, nmag, mag);
    // A finite negative base with a non-integer exponent.
    let x_neg = {
        let nz = not(kb, ax_zero);
        and(kb, x_signed, nz)
    };
    let x_fin = not(kb, ax_inf);
    let y_inf = kb.float_class(y, t, true);
    let y_fin = not(kb, y_inf);
    let y_not_int = not(kb, y_int);
    let bad = and(kb, x_neg, x_fin);
    let bad = and(kb, bad, y_not_int);
    let bad = and(kb, bad, y_fin);
    let r = kb.select(bad, nan, r);
    // Infinite exponents: 1 for |x| = 1, else 0 or inf by whether |x| < 1 agrees with y < 0.
    let ax_lt1 = lt(kb, ax, one);
    let grow = kb.binary(Bo::Equal, ax_lt1, y_neg);
    let yinf_r = kb.select(grow, inf, zero);
    let ax_one = kb.binary(Bo::Equal, ax, one);
    let yinf_r = kb.select(ax_one, one, yinf_r);
    let r = kb.select(y_inf, yinf_r, r);
    let xn = kb.float_class(x, t, false);
    let yn = kb.float_class(y, t, false);
    let any_nan = or(kb, xn, yn);
    let r = kb.select(any_nan, nan, r);
    // pow(x, +-0) = 1 and pow(1, y) = 1, NaN or not.
    let y_zero = is_zero(kb, y);
    let x_one = kb.binary(Bo::Equal, x, one);
    let is_one = or(kb, y_zero, x_one);
    kb.select(is_one, one, r)
}

/// Cube root (subnormal inputs read as zero).
pub(crate) fn cbrt(kb: &mut Kb, x: H) -> H {
    let ax = abs(kb, x);
    let ib = bits(kb, ax);
    // |x| = v 2^(3q) with v in [1, 8): q = floor((e - 127) / 3), from e - 127 + 3 * 43 >= 0.
    let e = ubin(kb, Bo::ShiftRight, ib, 23);
    let eb = ubin(kb, Bo::Add, e, 2);
    let q3 = ubin(kb, Bo::Divide, eb, 3);
    let rem = ubin(kb, Bo::Multiply, q3, 3);
    let rem = kb.binary(Bo::Subtract, eb, rem);
    let mant = ubin(kb, Bo::And, ib, 0x7f_ffff);
    let vexp = ubin(kb, Bo::Add, rem, 127);
    let vexp = ubin(kb, Bo::ShiftLeft, vexp, 23);
    let vb = kb.binary(Bo::InclusiveOr, mant, vexp);
    let v = from_bits(kb, vb);
    // cbrt(v) in [1, 2): a quadratic start, then Halley's y (y^3 + 2v) / (2y^3 + v), the last
    // step written as a correction.
    let mut y = poly(kb, v, &CBRT_START);
    for _ in 0..2 {
        let y2 = mul(kb, y, y);
        let y3 = mul(kb, y2, y);
        let num = sub(kb, y3, v);
        let two_y3 = mulc(kb, y3, 2.0);
        let den = add(kb, two_y3, v);
        let q = div(kb, num, den);
        let corr = mul(kb, y, q);
        y = sub(kb, y, corr);
    }
    // y 2^(q - 43) by adding to the exponent field.
    let qe = ubin(kb, Bo::ShiftLeft, q3, 23);
    let yb = bits(kb, y);
    let yb = kb.binary(Bo::Add, yb, qe);
    let yb = ubin(kb, Bo::Subtract, yb, 43 << 23);
    let r = from_bits(kb, yb);
    let r = copysign(kb, r, x);
    let z = is_zero(kb, x);
    let inf = is_inf(kb, x);
    let xn = is_nan(kb, x);
    let keep = or(kb, z, inf);
    let keep = or(kb, keep, xn);
    kb.select(keep, x, r)
}
