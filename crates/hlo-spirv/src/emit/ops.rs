//! Scalar semantics of HLO's elementwise ops, as naga expressions.
//!
//! A value of HLO type `T` lives in the shader as [`value_sty`]`(T)`:
//! pred as `bool`, s8/s16/s32 as sign-extended `i32`, u8/u16/u32 as
//! zero-extended `u32`, f16/bf16/f32 as `f32` (narrow floats hold a value
//! exactly representable in the narrow type), and 64-bit types natively.
//! Every op that produces a narrow type re-normalises its result
//! ([`normalize`]): integers wrap to their width, narrow floats are rounded
//! to nearest even with integer bit operations, as XLA computes them in f32
//! and rounds after every op.
//!
//! Where XLA defines a result that naga or SPIR-V leave undefined (integer
//! division by zero and `INT_MIN / -1`, shifts by the bit width or more,
//! float-to-int conversion of NaN and out-of-range values, NaN in max/min),
//! the XLA result is emitted explicitly.

use super::math::{self, Trig};
use super::math64;
use crate::builder::{Kb, STy, H};
use hlo_ir::{BinaryOp, CompareDirection, CompareType, DType, UnaryOp};
use naga::{BinaryOperator as Bo, MathFunction as Mf, UnaryOperator as Uo};

/// A scalar value in its shader representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Val {
    pub h: H,
    pub dt: DType,
}

/// The shader type that holds values of `dt`.
pub(crate) fn value_sty(dt: DType) -> Option<STy> {
    Some(match dt {
        DType::Pred => STy::Bool,
        DType::S8 | DType::S16 | DType::S32 => STy::I32,
        DType::U8 | DType::U16 | DType::U32 => STy::U32,
        DType::F16 | DType::BF16 | DType::F32 => STy::F32,
        DType::S2 | DType::S4 => STy::I32,
        DType::U2 | DType::U4 => STy::U32,
        // 8- and 4-bit floats computed in f32, each result rounded to the format (`normalize`).
        d if crate::minifloat::MiniFloat::of(d).is_some() => STy::F32,
        DType::S64 => STy::I64,
        DType::U64 => STy::U64,
        DType::F64 => STy::F64,
        _ => return None,
    })
}

/// The shader type of one element of a device buffer holding `dt`.
pub(crate) fn storage_sty(dt: DType) -> Option<STy> {
    Some(match dt {
        DType::Pred => STy::U32,
        other => value_sty(other)?,
    })
}

fn vty(dt: DType) -> STy {
    value_sty(dt).expect("type checked by the caller")
}

/// Bits of an integer type.
fn int_bits(dt: DType) -> u32 {
    dt.bit_width()
}

/// Converts a loaded storage word to the value representation.
pub(crate) fn from_storage(kb: &mut Kb, h: H, dt: DType) -> H {
    if dt == DType::Pred {
        let zero = kb.lit_u32(0);
        kb.binary(Bo::NotEqual, h, zero)
    } else {
        h
    }
}

/// Converts a value to the word stored in a device buffer.
pub(crate) fn to_storage(kb: &mut Kb, h: H, dt: DType) -> H {
    if dt == DType::Pred {
        let one = kb.lit_u32(1);
        let zero = kb.lit_u32(0);
        kb.select(h, one, zero)
    } else {
        h
    }
}

/// Wraps narrow integers to their width and rounds narrow floats; identity otherwise.
pub(crate) fn normalize(kb: &mut Kb, h: H, dt: DType) -> H {
    match dt {
        DType::S2 | DType::S4 | DType::S8 | DType::S16 => {
            let s = kb.lit_u32(32 - int_bits(dt));
            let l = kb.binary(Bo::ShiftLeft, h, s);
            kb.binary(Bo::ShiftRight, l, s)
        }
        DType::U2 | DType::U4 | DType::U8 | DType::U16 => {
            let m = kb.lit_u32((1u32 << int_bits(dt)) - 1);
            kb.binary(Bo::And, h, m)
        }
        DType::BF16 => round_bf16(kb, h),
        DType::F16 => round_f16(kb, h),
        _ => match crate::minifloat::MiniFloat::of(dt) {
            Some(format) => round_minifloat(kb, h, format),
            None => h,
        },
    }
}

/// Rounds an f32 to the nearest value of an 8- or 4-bit float format (ties to even): normal
/// values drop mantissa bits with the integer trick of [`round_bf16`]; below the format's
/// smallest normal, `(|x| + c) - c` with `c` whose f32 ulp is the format's subnormal spacing
/// rounds in the adder itself. Overflow and NaN become what XLA's conversion gives
/// ([`crate::minifloat::Specials`]): infinity, NaN, or the largest magnitude.
pub(crate) fn round_minifloat(kb: &mut Kb, x: H, f: crate::minifloat::MiniFloat) -> H {
    use crate::minifloat::Specials;
    if f.specials == Specials::ExponentOnly {
        return round_e8m0(kb, x);
    }
    let b = kb.bitcast(x, STy::U32);
    let absmask = kb.lit_u32(0x7fff_ffff);
    let a = kb.binary(Bo::And, b, absmask);
    let drop = 23 - f.man_bits;
    let sh = kb.lit_u32(drop);
    let one = kb.lit_u32(1);
    let lsb = kb.binary(Bo::ShiftRight, b, sh);
    let lsb = kb.binary(Bo::And, lsb, one);
    let bias = kb.lit_u32((1 << (drop - 1)) - 1);
    let t = kb.binary(Bo::Add, b, bias);
    let t = kb.binary(Bo::Add, t, lsb);
    let keep = kb.lit_u32(!((1u32 << drop) - 1));
    let normal = kb.binary(Bo::And, t, keep);
    let normal = kb.bitcast(normal, STy::F32);
    // Below the smallest normal: the adder rounds to multiples of 2^(min_exp - man_bits).
    let absx = kb.bitcast(a, STy::F32);
    let c = kb.lit_f32(2f32.powi(f.min_exp() - f.man_bits as i32 + 23));
    let up = kb.binary(Bo::Add, absx, c);
    let sub = kb.binary(Bo::Subtract, up, c);
    let sub = crate::emit::math::copysign(kb, sub, x);
    let min_normal = kb.lit_u32(2f32.powi(f.min_exp()).to_bits());
    let is_sub = kb.binary(Bo::Less, a, min_normal);
    let r = kb.select(is_sub, sub, normal);
    // Overflow, infinities included (the normal path keeps them infinite).
    let rb = kb.bitcast(r, STy::U32);
    let ra = kb.binary(Bo::And, rb, absmask);
    let max = kb.lit_u32(f.max_finite().to_bits());
    let over = kb.binary(Bo::Greater, ra, max);
    let overflow = match f.specials {
        Specials::Ieee => kb.lit_f32(f32::INFINITY),
        Specials::FiniteNoNan => kb.lit_f32(f.max_finite()),
        _ => kb.lit_f32(f32::NAN),
    };
    let overflow = crate::emit::math::copysign(kb, overflow, x);
    let r = kb.select(over, overflow, r);
    let r = if f.specials == Specials::FiniteNegZeroNan {
        // No negative zero: -0 is +0 (0x80 is the NaN).
        let zero = kb.lit_f32(0.0);
        let is_zero = kb.binary(Bo::Equal, r, zero);
        kb.select(is_zero, zero, r)
    } else {
        r
    };
    let is_nan = kb.float_class(x, STy::F32, false);
    if f.specials == Specials::FiniteNoNan {
        // No NaN at all: XLA gives the sign bit alone.
        let minus_zero = kb.lit_f32(-0.0);
        return kb.select(is_nan, minus_zero, r);
    }
    // A NaN stays itself: its sign and payload are what the host conversion keeps.
    kb.select(is_nan, x, r)
}

/// Rounds an f32 to `f8e8m0fnu` as XLA converts: the power of two of the f32's exponent, one
/// higher where the mantissa is at least half (ties away from zero); an f32 subnormal is 2^-126
/// above 1.5 * 2^-127 and 2^-127 (kept as that f32 subnormal) below. Zero, negative values,
/// infinity, NaN and what rounds past 2^127 are NaN.
fn round_e8m0(kb: &mut Kb, x: H) -> H {
    let b = kb.bitcast(x, STy::U32);
    let c23 = kb.lit_u32(23);
    let exp = kb.binary(Bo::ShiftRight, b, c23);
    let man_mask = kb.lit_u32(0x7f_ffff);
    let man = kb.binary(Bo::And, b, man_mask);
    let half = kb.lit_u32(0x40_0000);
    let zero_u = kb.lit_u32(0);
    let one_u = kb.lit_u32(1);
    let up_normal = kb.binary(Bo::GreaterEqual, man, half);
    let up_sub = kb.binary(Bo::Greater, man, half);
    let is_sub = kb.binary(Bo::Equal, exp, zero_u);
    let up = kb.select(is_sub, up_sub, up_normal);
    let inc = kb.select(up, one_u, zero_u);
    let code = kb.binary(Bo::Add, exp, inc);
    let shifted = kb.binary(Bo::ShiftLeft, code, c23);
    let smallest = kb.lit_u32(0x40_0000);
    let is_code0 = kb.binary(Bo::Equal, code, zero_u);
    let bits = kb.select(is_code0, smallest, shifted);
    let r = kb.bitcast(bits, STy::F32);
    // NaN where the value is not positive and finite, or rounds to code 255 (or past it: a
    // negative value's sign bit lands in `exp`).
    let max_code = kb.lit_u32(255);
    let too_big = kb.binary(Bo::GreaterEqual, code, max_code);
    let zero = kb.lit_f32(0.0);
    let not_positive = kb.binary(Bo::LessEqual, x, zero);
    let is_nan = kb.float_class(x, STy::F32, false);
    let bad = kb.binary(Bo::LogicalOr, too_big, not_positive);
    let bad = kb.binary(Bo::LogicalOr, bad, is_nan);
    let nan = kb.lit_f32(f32::NAN);
    let r = kb.select(bad, nan, r);
    // The result is data, not an arithmetic value to flush: 2^-127 is an f32 subnormal.
    kb.mark_data_bits(r);
    r
}

/// Rounds an f32 to the nearest bf16 (ties to even), keeping NaN a (quiet) NaN.
pub(crate) fn round_bf16(kb: &mut Kb, x: H) -> H {
    let b = kb.bitcast(x, STy::U32);
    let c16 = kb.lit_u32(16);
    let one = kb.lit_u32(1);
    let sh = kb.binary(Bo::ShiftRight, b, c16);
    let lsb = kb.binary(Bo::And, sh, one);
    let bias = kb.lit_u32(0x7fff);
    let t = kb.binary(Bo::Add, b, bias);
    let t = kb.binary(Bo::Add, t, lsb);
    let hi = kb.lit_u32(0xffff_0000);
    let rounded = kb.binary(Bo::And, t, hi);
    let nan_bits = kb.binary(Bo::And, b, hi);
    let quiet = kb.lit_u32(0x0040_0000);
    let nan_bits = kb.binary(Bo::InclusiveOr, nan_bits, quiet);
    let isnan = kb.float_class(x, STy::F32, false);
    let r = kb.select(isnan, nan_bits, rounded);
    let result = kb.bitcast(r, STy::F32);
    // Rounding keeps a value normal or subnormal as it was (bf16 has f32's exponent range), so data stays data:
    // a subnormal bf16 read and passed through `abs` is stored as it is, not flushed like an arithmetic result.
    if !kb.may_be_arithmetic(x) {
        kb.mark_data_bits(result);
    }
    result
}

/// Rounds an f32 to the nearest f16 value (ties to even, subnormals and overflow to infinity included).
pub(crate) fn round_f16(kb: &mut Kb, x: H) -> H {
    let b = kb.bitcast(x, STy::U32);
    let absmask = kb.lit_u32(0x7fff_ffff);
    let a = kb.binary(Bo::And, b, absmask);
    // Normal range: drop 13 mantissa bits with round-to-nearest-even.
    let c13 = kb.lit_u32(13);
    let one = kb.lit_u32(1);
    let sh = kb.binary(Bo::ShiftRight, b, c13);
    let lsb = kb.binary(Bo::And, sh, one);
    let bias = kb.lit_u32(0xfff);
    let t = kb.binary(Bo::Add, b, bias);
    let t = kb.binary(Bo::Add, t, lsb);
    let keep = kb.lit_u32(0xffff_e000);
    let normal = kb.binary(Bo::And, t, keep);
    let normal = kb.bitcast(normal, STy::F32);
    // Subnormal range: a multiple of 2^-24, rounded to even (exact in f32).
    let scale = kb.lit_f32(16777216.0);
    let inv = kb.lit_f32(1.0 / 16777216.0);
    let scaled = kb.binary(Bo::Multiply, x, scale);
    let r = kb.math(Mf::Round, &[scaled]);
    let sub = kb.binary(Bo::Multiply, r, inv);
    // Overflow: at or above 65520 rounds to infinity.
    let signmask = kb.lit_u32(0x8000_0000);
    let sign = kb.binary(Bo::And, b, signmask);
    let infbits = kb.lit_u32(0x7f80_0000);
    let inf = kb.binary(Bo::InclusiveOr, sign, infbits);
    let inf = kb.bitcast(inf, STy::F32);
    let min_normal = kb.lit_u32(0x3880_0000);
    let overflow = kb.lit_u32(0x477f_f000);
    let is_sub = kb.binary(Bo::Less, a, min_normal);
    let is_over = kb.binary(Bo::GreaterEqual, a, overflow);
    let is_special = kb.binary(Bo::GreaterEqual, a, infbits);
    let r = kb.select(is_sub, sub, normal);
    let r = kb.select(is_over, inf, r);
    kb.select(is_special, x, r)
}

/// True for unary ops that do float arithmetic (and so read subnormal inputs as zero on XLA:CPU).
pub(crate) fn unary_is_arithmetic(op: UnaryOp) -> bool {
    !matches!(op, UnaryOp::Abs | UnaryOp::Negate | UnaryOp::IsFinite | UnaryOp::Real | UnaryOp::Imag | UnaryOp::Not)
}

/// A float with subnormals replaced by a zero of the same sign.
pub(crate) fn flush_subnormal(kb: &mut Kb, x: H, dt: DType) -> H {
    let t = vty(dt);
    let min_normal = if t == STy::F64 { kb.lit_f64(f64::MIN_POSITIVE) } else { kb.lit_f32(f32::MIN_POSITIVE) };
    let a = kb.math(Mf::Abs, &[x]);
    let tiny = kb.binary(Bo::Less, a, min_normal);
    // The sign bit alone: a zero of x's sign (x * 0.0 may lose the sign under fast-math folding).
    let (ut, sign) = if t == STy::F64 { (STy::U64, kb.lit_u64(1 << 63)) } else { (STy::U32, kb.lit_u32(1 << 31)) };
    let bits = kb.bitcast(x, ut);
    let sbits = kb.binary(Bo::And, bits, sign);
    let signed_zero = kb.bitcast(sbits, t);
    kb.select(tiny, signed_zero, x)
}

fn lit(kb: &mut Kb, dt: DType, v: f64) -> H {
    let t = vty(dt);
    if t.is_float() {
        kb.lit_float(t, v)
    } else {
        kb.lit_int(t, v as i128)
    }
}

/// The high and low 32-bit halves of a 64-bit integer value of type `dt`.
fn halves_u64(kb: &mut Kb, x: H, dt: DType) -> (H, H) {
    let u = if dt.is_signed_integer() { kb.bitcast(x, STy::U64) } else { x };
    let c32 = kb.lit_u64(32);
    let hi = kb.binary(Bo::ShiftRight, u, c32);
    let hi = kb.convert(hi, STy::U32);
    let lo = kb.convert(u, STy::U32);
    (hi, lo)
}

/// A bit count (u32) as a 64-bit integer value of type `dt`.
fn widen_count(kb: &mut Kb, c: H, dt: DType) -> H {
    let w = kb.convert(c, STy::U64);
    if dt.is_signed_integer() {
        kb.bitcast(w, STy::I64)
    } else {
        w
    }
}

/// Exact `fmod` (C's, which XLA's remainder is) for f32 or f64 (`t`): SPIR-V's OpFRem may be
/// computed as `x - y * trunc(x / y)` (lavapipe does), which is wrong for large quotients.
/// This subtracts `|y|` scaled by powers of two (each subtraction exact by Sterbenz' lemma),
/// at most one iteration per binade between the operands (254 for f32, 2046 for f64).
fn fmod(kb: &mut Kb, x: H, y: H, t: STy) -> H {
    let (ut, mant_bits) = if t == STy::F64 { (STy::U64, 52) } else { (STy::U32, 23) };
    let ax = abs_bits(kb, x, t);
    let ay = abs_bits(kb, y, t);
    // The loop only runs for finite x and y > 0 (the others are NaN, selected below): with
    // y == 0 or an infinite x it would never end (a driver stopping it would cut every later
    // loop of the kernel short, as lavapipe's shared loop budget does).
    let zero_t = kb.lit_float(t, 0.0);
    let x_inf = isinf(kb, x, t);
    let start = kb.select(x_inf, zero_t, ax);
    let r = kb.local_init("fmod_r", t, start);
    let ay_bits = kb.bitcast(ay, ut);
    let shift = kb.lit_u32(mant_bits);
    let ey = kb.binary(Bo::ShiftRight, ay_bits, shift);
    let y_positive = kb.binary(Bo::Greater, ay, zero_t);
    kb.note_dynamic_loop();
    kb.begin_loop_body();
    let rv = kb.load(r);
    let go = kb.binary(Bo::GreaterEqual, rv, ay);
    let go = kb.binary(Bo::LogicalAnd, go, y_positive);
    let stop = kb.unary(Uo::LogicalNot, go);
    kb.begin_block();
    kb.stmt(naga::Statement::Break);
    let brk = kb.end_block();
    kb.stmt(naga::Statement::If { condition: stop, accept: brk, reject: naga::Block::new() });
    // s = |y| * 2^(exponent(r) - exponent(y)), halved if that overshoots r.
    let r_bits = kb.bitcast(rv, ut);
    let er = kb.binary(Bo::ShiftRight, r_bits, shift);
    let de = kb.binary(Bo::Subtract, er, ey);
    let shifted = kb.binary(Bo::ShiftLeft, de, shift);
    let s_bits = kb.binary(Bo::Add, ay_bits, shifted);
    let s = kb.bitcast(s_bits, t);
    let over = kb.binary(Bo::Greater, s, rv);
    let one_binade = kb.lit_int(ut, 1i128 << mant_bits);
    let s_lo_bits = kb.binary(Bo::Subtract, s_bits, one_binade);
    let s_lo = kb.bitcast(s_lo_bits, t);
    let s = kb.select(over, s_lo, s);
    let next = kb.binary(Bo::Subtract, rv, s);
    kb.store(r, next);
    let body = kb.end_block();
    kb.stmt(naga::Statement::Loop { body, continuing: naga::Block::new(), break_if: None });
    let res = kb.load(r);
    // XLA:CPU's NaNs: the canonical +NaN for y == 0, an infinite x or a NaN y; otherwise a NaN x
    // itself, payload and sign (even a signalling one) unchanged. x itself when |x| < |y| is
    // covered by the loop.
    let zero = kb.lit_float(t, 0.0);
    let y0 = kb.binary(Bo::Equal, ay, zero);
    let xinf = isinf(kb, x, t);
    let yn = isnan_t(kb, y, t);
    let bad = bool_or(kb, y0, xinf);
    let bad = bool_or(kb, bad, yn);
    let nan = kb.lit_float(t, f64::NAN);
    // |r| with x's sign. A NaN x is x itself, payload and sign (even a signalling one): the
    // loop starts at |x|, which fails its first test, and the sign goes back on. Selecting x
    // where it is NaN instead made lavapipe's LLVM return NaN for every element of an f16 or
    // f8 remainder in a reduction tree (difftest seed 261759), on the bits as on the floats.
    let res = copysign(kb, res, x, t);
    kb.select(bad, nan, res)
}

/// |x| by clearing the sign bit, so that a NaN keeps its payload.
fn abs_bits(kb: &mut Kb, x: H, t: STy) -> H {
    let (ut, mask) =
        if t == STy::F64 { (STy::U64, kb.lit_u64(!(1 << 63))) } else { (STy::U32, kb.lit_u32(!(1 << 31))) };
    let bits = kb.bitcast(x, ut);
    let bits = kb.binary(Bo::And, bits, mask);
    kb.bitcast(bits, t)
}

/// |mag| with the sign bit of `sign`.
fn copysign(kb: &mut Kb, mag: H, sign: H, t: STy) -> H {
    let (ut, sbit) = if t == STy::F64 { (STy::U64, kb.lit_u64(1 << 63)) } else { (STy::U32, kb.lit_u32(1 << 31)) };
    let m = kb.bitcast(mag, ut);
    let s = kb.bitcast(sign, ut);
    let not_sign = kb.unary(Uo::BitwiseNot, sbit);
    let m = kb.binary(Bo::And, m, not_sign);
    let s = kb.binary(Bo::And, s, sbit);
    let r = kb.binary(Bo::InclusiveOr, m, s);
    kb.bitcast(r, t)
}

fn isnan(kb: &mut Kb, x: H) -> H {
    kb.float_class(x, STy::F32, false)
}

fn isnan_t(kb: &mut Kb, x: H, t: STy) -> H {
    kb.float_class(x, t, false)
}

fn isinf(kb: &mut Kb, x: H, t: STy) -> H {
    kb.float_class(x, t, true)
}

fn bool_and(kb: &mut Kb, a: H, b: H) -> H {
    kb.binary(Bo::LogicalAnd, a, b)
}

fn bool_or(kb: &mut Kb, a: H, b: H) -> H {
    kb.binary(Bo::LogicalOr, a, b)
}

/// `x / y` for floats. A divisor the driver knows when it compiles the kernel (an `iota` of one
/// element is the literal 0) gets its zero case spelled out: llvmpipe folds `x / 0.0` to 0 where
/// IEEE and XLA give an infinity or NaN (difftest seed 232451); `x * ±inf` at a literal infinity
/// it keeps.
fn float_divide(kb: &mut Kb, x: H, y: H, dt: DType) -> H {
    let quotient = kb.binary(Bo::Divide, x, y);
    if !kb.is_const_expr(y) {
        return quotient;
    }
    let sty = vty(dt);
    let zero = kb.lit_float(sty, 0.0);
    let is_zero = kb.binary(Bo::Equal, y, zero);
    let inf = kb.lit_float(sty, f64::INFINITY);
    let signed_inf = copysign(kb, inf, y, sty);
    let by_zero = kb.binary(Bo::Multiply, x, signed_inf);
    kb.select(is_zero, by_zero, quotient)
}

fn fbin(kb: &mut Kb, op: Bo, a: H, b: H) -> H {
    kb.binary(op, a, b)
}

fn fconst(kb: &mut Kb, v: f32) -> H {
    kb.lit_f32(v)
}

fn is_f64(dt: DType) -> bool {
    dt == DType::F64
}

/// An elementwise unary op; returns the result in the value representation of `out`.
pub(crate) fn unary(kb: &mut Kb, op: UnaryOp, x: Val, out: DType) -> Result<H, String> {
    let dt = x.dt;
    let float = dt.is_float();
    let xh = x.h;
    let r = match op {
        UnaryOp::Abs if float => kb.math(Mf::Abs, &[xh]),
        UnaryOp::Abs if dt.is_signed_integer() => {
            let zero = lit(kb, dt, 0.0);
            let neg = kb.binary(Bo::Subtract, zero, xh);
            let lt = kb.binary(Bo::Less, xh, zero);
            kb.select(lt, neg, xh)
        }
        UnaryOp::Abs if dt.is_unsigned_integer() => xh,
        UnaryOp::Negate if float => kb.unary(Uo::Negate, xh),
        UnaryOp::Negate if dt.is_integer() => {
            let zero = lit(kb, dt, 0.0);
            kb.binary(Bo::Subtract, zero, xh)
        }
        UnaryOp::Sign if float => {
            // sign(±0) = ±0 and sign(NaN) = NaN, as XLA defines it.
            let zero = lit(kb, dt, 0.0);
            let one = lit(kb, dt, 1.0);
            let mone = lit(kb, dt, -1.0);
            let lt = kb.binary(Bo::Less, xh, zero);
            let s = kb.select(lt, mone, one);
            let eq = kb.binary(Bo::Equal, xh, zero);
            let nan = isnan_t(kb, xh, vty(dt));
            let keep = bool_or(kb, eq, nan);
            kb.select(keep, xh, s)
        }
        UnaryOp::Sign if dt.is_integer() => {
            let zero = lit(kb, dt, 0.0);
            let one = lit(kb, dt, 1.0);
            let nonzero = kb.binary(Bo::NotEqual, xh, zero);
            let s = kb.select(nonzero, one, zero);
            if dt.is_signed_integer() {
                // `(x >> (bits - 1)) | (x != 0)`: -1, 0 or 1. Compares and selects on a sign-extended
                // s32 (`sign(convert<s64>(x))`) came out 1 for every x on lavapipe (LLVM 15).
                // Narrow ints live sign-extended in 32 bits; the shift amount is a u32 for every width.
                let shift = kb.lit_u32(if vty(dt) == STy::I64 { 63 } else { 31 });
                let fill = kb.binary(Bo::ShiftRight, xh, shift);
                kb.binary(Bo::InclusiveOr, fill, s)
            } else {
                s
            }
        }
        UnaryOp::Not if dt == DType::Pred => kb.unary(Uo::LogicalNot, xh),
        UnaryOp::Not if dt.is_integer() => kb.unary(Uo::BitwiseNot, xh),
        UnaryOp::IsFinite if float => {
            let inf = isinf(kb, xh, vty(dt));
            let nan = isnan_t(kb, xh, vty(dt));
            let bad = bool_or(kb, inf, nan);
            kb.unary(Uo::LogicalNot, bad)
        }
        UnaryOp::Sqrt if float => {
            // GLSL leaves sqrt of a negative number undefined; IEEE (and XLA) give NaN.
            let r = kb.math(Mf::Sqrt, &[xh]);
            let zero = lit(kb, dt, 0.0);
            let neg = kb.binary(Bo::Less, xh, zero);
            let nan = lit(kb, dt, f64::NAN);
            kb.select(neg, nan, r)
        }
        UnaryOp::Rsqrt if float => {
            // 1 / sqrt(x), both correctly rounded (the driver's inversesqrt may be an estimate).
            let r = kb.math(Mf::Sqrt, &[xh]);
            let one = lit(kb, dt, 1.0);
            let r = kb.binary(Bo::Divide, one, r);
            let zero = lit(kb, dt, 0.0);
            let neg = kb.binary(Bo::Less, xh, zero);
            let nan = lit(kb, dt, f64::NAN);
            kb.select(neg, nan, r)
        }
        UnaryOp::Floor if float => kb.math(Mf::Floor, &[xh]),
        UnaryOp::Ceil if float => kb.math(Mf::Ceil, &[xh]),
        UnaryOp::RoundNearestEven if dt == DType::F64 => math64::round_to_integral(kb, xh, false),
        UnaryOp::RoundNearestAfz if dt == DType::F64 => math64::round_to_integral(kb, xh, true),
        UnaryOp::RoundNearestEven if float => kb.math(Mf::Round, &[xh]),
        UnaryOp::RoundNearestAfz if float => {
            // trunc(x) plus one step away from zero when the dropped fraction is at least a half
            // (x - trunc(x) is exact, so there is no double rounding).
            let t = kb.math(Mf::Trunc, &[xh]);
            let d = kb.binary(Bo::Subtract, xh, t);
            let ad = kb.math(Mf::Abs, &[d]);
            let half = lit(kb, dt, 0.5);
            let up = kb.binary(Bo::GreaterEqual, ad, half);
            let s = kb.math(Mf::Sign, &[xh]);
            let away = kb.binary(Bo::Add, t, s);
            kb.select(up, away, t)
        }
        _ if float && is_transcendental(op) => transcendental(kb, op, xh, vty(dt)),
        UnaryOp::Clz if dt.is_integer() => {
            let bits = int_bits(dt);
            if bits == 64 {
                // naga cannot write 64-bit CountLeadingZeros (and Vulkan's bit instructions are
                // 32-bit): count in the two halves.
                let (hi, lo) = halves_u64(kb, xh, dt);
                let chi = kb.math(Mf::CountLeadingZeros, &[hi]);
                let clo = kb.math(Mf::CountLeadingZeros, &[lo]);
                let c32 = kb.lit_u32(32);
                let low_part = kb.binary(Bo::Add, c32, clo);
                let zero = kb.lit_u32(0);
                let hi_zero = kb.binary(Bo::Equal, hi, zero);
                let c = kb.select(hi_zero, low_part, chi);
                return Ok(widen_count(kb, c, dt));
            }
            let u = to_u32_bits(kb, xh, dt);
            let c = kb.math(Mf::CountLeadingZeros, &[u]);
            let k = kb.lit_u32(32 - bits);
            let c = kb.binary(Bo::Subtract, c, k);
            if dt.is_signed_integer() {
                kb.bitcast(c, STy::I32)
            } else {
                c
            }
        }
        UnaryOp::PopulationCount if dt.is_integer() => {
            if int_bits(dt) == 64 {
                // OpBitCount is 32-bit only in Vulkan: count the halves.
                let (hi, lo) = halves_u64(kb, xh, dt);
                let chi = kb.math(Mf::CountOneBits, &[hi]);
                let clo = kb.math(Mf::CountOneBits, &[lo]);
                let c = kb.binary(Bo::Add, chi, clo);
                return Ok(widen_count(kb, c, dt));
            }
            let u = to_u32_bits(kb, xh, dt);
            let c = kb.math(Mf::CountOneBits, &[u]);
            if dt.is_signed_integer() {
                kb.bitcast(c, STy::I32)
            } else {
                c
            }
        }
        _ => return Err(format!("{:?} on {dt} is not supported", op)),
    };
    Ok(normalize(kb, r, out))
}

/// The low `bits(dt)` bits of an integer value as a zero-extended u32.
fn to_u32_bits(kb: &mut Kb, x: H, dt: DType) -> H {
    let u = if dt.is_signed_integer() { kb.bitcast(x, STy::U32) } else { x };
    let bits = int_bits(dt);
    if bits < 32 {
        let m = kb.lit_u32((1u32 << bits) - 1);
        kb.binary(Bo::And, u, m)
    } else {
        u
    }
}

/// erf as XLA and Eigen compute it in f32: a rational approximation on [-4, 4].
fn erf(kb: &mut Kb, x: H) -> H {
    const ALPHA: [f64; 7] = [
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    ];
    const BETA: [f64; 5] = [
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    ];
    let lo = fconst(kb, -4.0);
    let hi = fconst(kb, 4.0);
    let xc = kb.math(Mf::Clamp, &[x, lo, hi]);
    let x2 = fbin(kb, Bo::Multiply, xc, xc);
    let mut p = fconst(kb, ALPHA[0] as f32);
    for &a in &ALPHA[1..] {
        let c = fconst(kb, a as f32);
        p = kb.math(Mf::Fma, &[p, x2, c]);
    }
    p = fbin(kb, Bo::Multiply, xc, p);
    let mut q = fconst(kb, BETA[0] as f32);
    for &b in &BETA[1..] {
        let c = fconst(kb, b as f32);
        q = kb.math(Mf::Fma, &[q, x2, c]);
    }
    let r = fbin(kb, Bo::Divide, p, q);
    let nan = isnan(kb, x);
    kb.select(nan, x, r)
}

/// Whether `op` is one of the functions built in [`math`] and [`math64`] (or from them).
fn is_transcendental(op: UnaryOp) -> bool {
    use UnaryOp as U;
    matches!(
        op,
        U::Exp
            | U::Expm1
            | U::Log
            | U::Log1p
            | U::Logistic
            | U::Sin
            | U::Cos
            | U::Tan
            | U::Tanh
            | U::Cbrt
            | U::Erf
            | U::Atan
            | U::Asin
            | U::Acos
            | U::Sinh
            | U::Cosh
            | U::Asinh
            | U::Acosh
            | U::Atanh
    )
}

/// The functions of one float width that [`transcendental`] composes the others from.
struct Lib {
    exp: fn(&mut Kb, H) -> H,
    /// `e^x / 2`, finite up to the overflow threshold of `sinh`.
    exp_half: fn(&mut Kb, H) -> H,
    expm1: fn(&mut Kb, H) -> H,
    log: fn(&mut Kb, H) -> H,
    log1p: fn(&mut Kb, H) -> H,
    atan2: fn(&mut Kb, H, H) -> H,
    copysign: fn(&mut Kb, H, H) -> H,
}

const LIB32: Lib = Lib {
    exp: math::exp,
    // JAX's e^(x - ln 2) (the rounding of x - ln 2 costs up to |x| / 2 ulps).
    exp_half: |kb, x| {
        let mln2 = kb.lit_f32(-std::f32::consts::LN_2);
        let a = kb.binary(Bo::Add, x, mln2);
        math::exp(kb, a)
    },
    expm1: math::expm1,
    log: math::log,
    log1p: math::log1p,
    atan2: math::atan2,
    copysign: math::copysign,
};

const LIB64: Lib = Lib {
    exp: math64::exp,
    exp_half: math64::exp_half,
    expm1: math64::expm1,
    log: math64::log,
    log1p: math64::log1p,
    atan2: math64::atan2,
    copysign: math64::copysign,
};

/// A transcendental function of shader type `t` (f32, or f64 from [`math64`]). Those that XLA
/// has no opcode for (and JAX decomposes before they reach HLO) are composed from the others
/// with JAX's own formulas.
fn transcendental(kb: &mut Kb, op: UnaryOp, x: H, t: STy) -> H {
    use UnaryOp as U;
    let wide = t == STy::F64;
    let m = if wide { &LIB64 } else { &LIB32 };
    let one = kb.lit_float(t, 1.0);
    match op {
        U::Exp => (m.exp)(kb, x),
        U::Expm1 => (m.expm1)(kb, x),
        U::Log => (m.log)(kb, x),
        U::Log1p => (m.log1p)(kb, x),
        U::Logistic if wide => math64::logistic(kb, x),
        U::Logistic => math::logistic(kb, x),
        U::Sin | U::Cos | U::Tan => {
            let which = match op {
                U::Sin => Trig::Sin,
                U::Cos => Trig::Cos,
                _ => Trig::Tan,
            };
            if wide {
                math64::trig(kb, x, which)
            } else {
                math::trig(kb, x, which)
            }
        }
        U::Tanh if wide => math64::tanh(kb, x),
        U::Tanh => math::tanh(kb, x),
        U::Cbrt if wide => math64::cbrt(kb, x),
        U::Cbrt => math::cbrt(kb, x),
        U::Erf if wide => math64::erf(kb, x),
        U::Erf => erf(kb, x),
        U::Atan => (m.atan2)(kb, x, one),
        U::Asin | U::Acos => {
            // asin = 2 atan2(x, 1 + sqrt(1 - x^2)), acos = atan2(sqrt(1 - x^2), x).
            let a = fbin(kb, Bo::Subtract, one, x);
            let b = fbin(kb, Bo::Add, one, x);
            let p = fbin(kb, Bo::Multiply, a, b);
            let sq = kb.math(Mf::Sqrt, &[p]);
            let zero = kb.lit_float(t, 0.0);
            let neg = kb.binary(Bo::Less, p, zero);
            let nan = kb.lit_float(t, f64::NAN);
            let sq = kb.select(neg, nan, sq);
            if op == U::Acos {
                (m.atan2)(kb, sq, x)
            } else {
                let d = fbin(kb, Bo::Add, one, sq);
                let t = (m.atan2)(kb, x, d);
                fbin(kb, Bo::Add, t, t)
            }
        }
        U::Sinh | U::Cosh => {
            // e^x / 2 -+ e^-x / 2, and for sinh with |x| < 1, (m + m / (m + 1)) / 2 with
            // m = expm1(x).
            let ea = (m.exp_half)(kb, x);
            let nx = kb.unary(Uo::Negate, x);
            let eb = (m.exp_half)(kb, nx);
            if op == U::Cosh {
                return fbin(kb, Bo::Add, ea, eb);
            }
            let big = fbin(kb, Bo::Subtract, ea, eb);
            let m = (m.expm1)(kb, x);
            let m1 = fbin(kb, Bo::Add, m, one);
            let q = fbin(kb, Bo::Divide, m, m1);
            let s = fbin(kb, Bo::Add, m, q);
            let half = kb.lit_float(t, 0.5);
            let small = fbin(kb, Bo::Multiply, s, half);
            let ax = kb.math(Mf::Abs, &[x]);
            let is_small = kb.binary(Bo::Less, ax, one);
            kb.select(is_small, small, big)
        }
        U::Asinh => {
            // sign(x) * (|x| >= sqrt(max) ? log|x| + ln 2 : log1p(|x| + x^2 / (1 + sqrt(1 + x^2)))).
            let ax = kb.math(Mf::Abs, &[x]);
            let lx = (m.log)(kb, ax);
            let ln2 = kb.lit_float(t, std::f64::consts::LN_2);
            let big = fbin(kb, Bo::Add, lx, ln2);
            let x2 = fbin(kb, Bo::Multiply, ax, ax);
            let s = fbin(kb, Bo::Add, x2, one);
            let s = kb.math(Mf::Sqrt, &[s]);
            let s = fbin(kb, Bo::Add, s, one);
            let q = fbin(kb, Bo::Divide, x2, s);
            let q = fbin(kb, Bo::Add, ax, q);
            let small = (m.log1p)(kb, q);
            let lim = kb.lit_float(t, if wide { 1.340_780_792_994_259_6e154 } else { 1.844_674_3e19 });
            let is_big = kb.binary(Bo::GreaterEqual, ax, lim);
            let r = kb.select(is_big, big, small);
            (m.copysign)(kb, r, x)
        }
        U::Acosh => {
            // x >= max/2 ? log x + ln 2 : log1p(sqrt(x - 1) (sqrt(x + 1) + sqrt(x - 1))).
            let lx = (m.log)(kb, x);
            let ln2 = kb.lit_float(t, std::f64::consts::LN_2);
            let big = fbin(kb, Bo::Add, lx, ln2);
            let a = fbin(kb, Bo::Subtract, x, one);
            let a = kb.math(Mf::Sqrt, &[a]);
            let b = fbin(kb, Bo::Add, x, one);
            let b = kb.math(Mf::Sqrt, &[b]);
            let s = fbin(kb, Bo::Add, b, a);
            let p = fbin(kb, Bo::Multiply, a, s);
            let small = (m.log1p)(kb, p);
            let lim = kb.lit_float(t, if wide { 8.988_465_674_311_58e307 } else { 1.701_411_7e38 });
            let is_big = kb.binary(Bo::GreaterEqual, x, lim);
            let r = kb.select(is_big, big, small);
            let below = kb.binary(Bo::Less, x, one);
            let nan = kb.lit_float(t, f64::NAN);
            kb.select(below, nan, r)
        }
        U::Atanh => {
            // |x| > 1 ? NaN : (log1p(x) - log1p(-x)) / 2.
            let a = (m.log1p)(kb, x);
            let nx = kb.unary(Uo::Negate, x);
            let b = (m.log1p)(kb, nx);
            let d = fbin(kb, Bo::Subtract, a, b);
            let half = kb.lit_float(t, 0.5);
            let r = fbin(kb, Bo::Multiply, d, half);
            let ax = kb.math(Mf::Abs, &[x]);
            let out = kb.binary(Bo::Greater, ax, one);
            let nan = kb.lit_float(t, f64::NAN);
            kb.select(out, nan, r)
        }
        _ => unreachable!("checked by is_transcendental"),
    }
}

/// Float `pow(x, y)` of shader type `t`; exponents known at compile time that have an exact
/// short form skip the general algorithm.
fn pow(kb: &mut Kb, x: H, y: H, exponent: Option<f64>, t: STy) -> H {
    match exponent {
        Some(1.0) => return x,
        Some(2.0) => return fbin(kb, Bo::Multiply, x, x),
        Some(-1.0) => {
            let one = kb.lit_float(t, 1.0);
            return fbin(kb, Bo::Divide, one, x);
        }
        Some(0.5) => {
            // pow(-0, 0.5) = +0 and pow(-inf, 0.5) = +inf, unlike sqrt; negative x gives NaN.
            let s = kb.math(Mf::Sqrt, &[x]);
            let zero = kb.lit_float(t, 0.0);
            let neg = kb.binary(Bo::Less, x, zero);
            let nan = kb.lit_float(t, f64::NAN);
            let s = kb.select(neg, nan, s);
            let ninf = kb.lit_float(t, f64::NEG_INFINITY);
            let is_ninf = kb.binary(Bo::Equal, x, ninf);
            let pinf = kb.lit_float(t, f64::INFINITY);
            let s = kb.select(is_ninf, pinf, s);
            let is_zero = kb.binary(Bo::Equal, x, zero);
            return kb.select(is_zero, zero, s);
        }
        _ => {}
    }
    if t == STy::F64 {
        math64::pow(kb, x, y)
    } else {
        math::pow(kb, x, y)
    }
}

/// An elementwise binary op on two values of type `a.dt`; the result has type `out`.
/// `rhs_const` is the right operand's value when it is a known scalar constant.
pub(crate) fn binary(
    kb: &mut Kb,
    op: BinaryOp,
    a: Val,
    b: Val,
    out: DType,
    rhs_const: Option<f64>,
) -> Result<H, String> {
    let dt = a.dt;
    let (x, y) = (a.h, b.h);
    let float = dt.is_float();
    let pred = dt == DType::Pred;
    let r = match op {
        BinaryOp::Add if pred => bool_or(kb, x, y),
        BinaryOp::Multiply if pred => bool_and(kb, x, y),
        BinaryOp::Add => kb.binary(Bo::Add, x, y),
        BinaryOp::Subtract if !pred => kb.binary(Bo::Subtract, x, y),
        BinaryOp::Multiply => kb.binary(Bo::Multiply, x, y),
        BinaryOp::Divide if float => float_divide(kb, x, y, dt),
        BinaryOp::Divide if dt.is_integer() => int_div(kb, x, y, dt, false),
        BinaryOp::Remainder if float => fmod(kb, x, y, vty(dt)),
        BinaryOp::Remainder if dt.is_integer() => int_div(kb, x, y, dt, true),
        BinaryOp::Maximum | BinaryOp::Minimum if pred => {
            if op == BinaryOp::Maximum {
                bool_or(kb, x, y)
            } else {
                bool_and(kb, x, y)
            }
        }
        BinaryOp::Maximum | BinaryOp::Minimum if float => {
            // LLVM's `maximum`/`minimum` (what XLA emits): NaN propagates and +0 > -0.
            let max = op == BinaryOp::Maximum;
            let t = vty(dt);
            let ut = if t == STy::F64 { STy::U64 } else { STy::U32 };
            let gt = kb.binary(if max { Bo::Greater } else { Bo::Less }, x, y);
            let r = kb.select(gt, x, y);
            // Equal operands: combine the sign bits so that max(-0, +0) = +0 and min = -0.
            let eq = kb.binary(Bo::Equal, x, y);
            let xb = kb.bitcast(x, ut);
            let yb = kb.bitcast(y, ut);
            let tie = kb.binary(if max { Bo::And } else { Bo::InclusiveOr }, xb, yb);
            let tie = kb.bitcast(tie, t);
            let r = kb.select(eq, tie, r);
            let yn = isnan_t(kb, y, vty(dt));
            let r = kb.select(yn, y, r);
            let xn = isnan_t(kb, x, vty(dt));
            kb.select(xn, x, r)
        }
        BinaryOp::Maximum | BinaryOp::Minimum => {
            let f = if op == BinaryOp::Maximum { Mf::Max } else { Mf::Min };
            kb.math(f, &[x, y])
        }
        BinaryOp::Power if float => pow(kb, x, y, rhs_const, vty(dt)),
        BinaryOp::Power if dt.is_integer() => int_pow(kb, x, y, dt),
        BinaryOp::Atan2 if is_f64(dt) => math64::atan2(kb, x, y),
        BinaryOp::Atan2 if float => math::atan2(kb, x, y),
        BinaryOp::And if pred => bool_and(kb, x, y),
        BinaryOp::Or if pred => bool_or(kb, x, y),
        BinaryOp::Xor if pred => kb.binary(Bo::NotEqual, x, y),
        BinaryOp::And if dt.is_integer() => kb.binary(Bo::And, x, y),
        BinaryOp::Or if dt.is_integer() => kb.binary(Bo::InclusiveOr, x, y),
        BinaryOp::Xor if dt.is_integer() => kb.binary(Bo::ExclusiveOr, x, y),
        BinaryOp::ShiftLeft | BinaryOp::ShiftRightArithmetic | BinaryOp::ShiftRightLogical if dt.is_integer() => {
            shift(kb, op, x, y, dt)
        }
        _ => return Err(format!("{op:?} on {dt} is not supported")),
    };
    Ok(normalize(kb, r, out))
}

/// Integer division or remainder with XLA's results for a zero divisor
/// (x / 0 = -1, x % 0 = x) and for signed overflow (MIN / -1 = MIN, MIN % -1 = 0).
/// Integer `power` as XLA computes it: square and multiply with wrapping products, one step
/// per exponent bit (unrolled: no data-dependent loop for the lanes to diverge on); `x^0 = 1`,
/// `1^y = 1`, and a negative exponent gives 0 (for any other base).
fn int_pow(kb: &mut Kb, x: H, y: H, dt: DType) -> H {
    let t = vty(dt);
    let ut = if int_bits(dt) == 64 { STy::U64 } else { STy::U32 };
    let e = if t == ut { y } else { kb.bitcast(y, ut) };
    let one = kb.lit_int(t, 1);
    let uone = kb.lit_int(ut, 1);
    let uzero = kb.lit_int(ut, 0);
    let (mut res, mut base) = (one, x);
    let bits = int_bits(dt);
    for k in 0..bits {
        let sh = kb.lit_u32(k);
        let b = kb.binary(Bo::ShiftRight, e, sh);
        let b = kb.binary(Bo::And, b, uone);
        let set = kb.binary(Bo::NotEqual, b, uzero);
        let prod = kb.binary(Bo::Multiply, res, base);
        res = kb.select(set, prod, res);
        if k + 1 < bits {
            base = kb.binary(Bo::Multiply, base, base);
        }
    }
    if dt.is_signed_integer() {
        let zero = kb.lit_int(t, 0);
        let neg = kb.binary(Bo::Less, y, zero);
        let is_one = kb.binary(Bo::Equal, x, one);
        let tiny = kb.select(is_one, one, zero);
        res = kb.select(neg, tiny, res);
    }
    res
}

fn int_div(kb: &mut Kb, x: H, y: H, dt: DType, rem: bool) -> H {
    let t = vty(dt);
    let zero = kb.lit_int(t, 0);
    let one = kb.lit_int(t, 1);
    let y_zero = kb.binary(Bo::Equal, y, zero);
    let mut bad = y_zero;
    let mut overflow = None;
    if dt.is_signed_integer() && t.bits() == int_bits(dt) {
        let min = kb.lit_int(t, -(1i128 << (t.bits() - 1)));
        let mone = kb.lit_int(t, -1);
        let xm = kb.binary(Bo::Equal, x, min);
        let ym = kb.binary(Bo::Equal, y, mone);
        let o = bool_and(kb, xm, ym);
        bad = bool_or(kb, bad, o);
        overflow = Some((o, min));
    }
    let safe = kb.select(bad, one, y);
    let q = kb.binary(Bo::Divide, x, safe);
    if rem {
        // x - safe * (x / safe): SPIR-V's OpSRem is poison for negative operands on Vulkan.
        let p = kb.binary(Bo::Multiply, q, safe);
        let r = kb.binary(Bo::Subtract, x, p);
        let r = match overflow {
            Some((o, _)) => kb.select(o, zero, r),
            None => r,
        };
        kb.select(y_zero, x, r)
    } else {
        let all_ones = kb.lit_int(t, -1);
        let q = match overflow {
            Some((o, min)) => kb.select(o, min, q),
            None => q,
        };
        kb.select(y_zero, all_ones, q)
    }
}

/// Shifts with XLA's results for amounts at or beyond the bit width
/// (left and logical right give 0, arithmetic right gives the sign fill).
fn shift(kb: &mut Kb, op: BinaryOp, x: H, y: H, dt: DType) -> H {
    let t = vty(dt);
    let bits = int_bits(dt);
    let wide = t.bits();
    // The amount as an unsigned number of the value type.
    let amount = if dt.is_signed_integer() {
        let ut = if wide == 64 { STy::U64 } else { STy::U32 };
        kb.bitcast(y, ut)
    } else {
        y
    };
    let ut = if wide == 64 { STy::U64 } else { STy::U32 };
    let width = kb.lit_int(ut, bits as i128);
    let too_big = kb.binary(Bo::GreaterEqual, amount, width);
    let maxs = kb.lit_int(ut, (wide - 1) as i128);
    let clamped = kb.math(Mf::Min, &[amount, maxs]);
    let s = if wide == 64 { kb.convert(clamped, STy::U32) } else { clamped };
    let zero = kb.lit_int(t, 0);
    match op {
        BinaryOp::ShiftLeft => {
            let r = kb.binary(Bo::ShiftLeft, x, s);
            kb.select(too_big, zero, r)
        }
        BinaryOp::ShiftRightArithmetic => {
            // Work on the sign-extended signed value; shifting by (wide - 1) gives the sign fill.
            let st = if wide == 64 { STy::I64 } else { STy::I32 };
            let sx = if dt.is_signed_integer() {
                x
            } else if bits < wide {
                // Sign-extend the narrow unsigned pattern.
                let k = kb.lit_u32(wide - bits);
                let sxi = kb.bitcast(x, st);
                let l = kb.binary(Bo::ShiftLeft, sxi, k);
                kb.binary(Bo::ShiftRight, l, k)
            } else {
                kb.bitcast(x, st)
            };
            let r = kb.binary(Bo::ShiftRight, sx, s);
            if dt.is_signed_integer() {
                r
            } else {
                kb.bitcast(r, t)
            }
        }
        _ => {
            // Logical: shift the zero-extended bit pattern.
            let u = if dt.is_signed_integer() {
                let ub = kb.bitcast(x, ut);
                if bits < wide {
                    let m = kb.lit_int(ut, (1i128 << bits) - 1);
                    kb.binary(Bo::And, ub, m)
                } else {
                    ub
                }
            } else {
                x
            };
            let r = kb.binary(Bo::ShiftRight, u, s);
            let r = if dt.is_signed_integer() { kb.bitcast(r, t) } else { r };
            kb.select(too_big, zero, r)
        }
    }
}

/// A comparison; the result is a `bool`.
pub(crate) fn compare(kb: &mut Kb, dir: CompareDirection, ty: Option<CompareType>, a: Val, b: Val) -> H {
    let dt = a.dt;
    let (mut x, mut y) = (a.h, b.h);
    if dt == DType::Pred && !matches!(dir, CompareDirection::Eq | CompareDirection::Ne) {
        let one = kb.lit_u32(1);
        let zero = kb.lit_u32(0);
        x = kb.select(x, one, zero);
        y = kb.select(y, one, zero);
    }
    if dt.is_float() && ty == Some(CompareType::TotalOrder) {
        x = total_order_key(kb, x, dt);
        y = total_order_key(kb, y, dt);
    }
    let op = match dir {
        CompareDirection::Eq => Bo::Equal,
        CompareDirection::Ne => Bo::NotEqual,
        CompareDirection::Lt => Bo::Less,
        CompareDirection::Le => Bo::LessEqual,
        CompareDirection::Gt => Bo::Greater,
        CompareDirection::Ge => Bo::GreaterEqual,
    };
    if dir == CompareDirection::Ne && dt.is_float() && ty != Some(CompareType::TotalOrder) {
        // Unordered not-equal: NaN != anything.
        let eq = kb.binary(Bo::Equal, x, y);
        return kb.unary(Uo::LogicalNot, eq);
    }
    kb.binary(op, x, y)
}

/// Maps a float to a signed integer whose order is XLA's total order
/// (-NaN < -inf < ... < -0 < +0 < ... < inf < NaN).
fn total_order_key(kb: &mut Kb, x: H, dt: DType) -> H {
    let (st, mag) = if is_f64(dt) { (STy::I64, 0x7fff_ffff_ffff_ffffi128) } else { (STy::I32, 0x7fff_ffff) };
    let i = kb.bitcast(x, st);
    let zero = kb.lit_int(st, 0);
    let m = kb.lit_int(st, mag);
    let flipped = kb.binary(Bo::ExclusiveOr, i, m);
    let neg = kb.binary(Bo::Less, i, zero);
    kb.select(neg, flipped, i)
}

/// `convert`: value conversion with XLA semantics (float to int saturates, NaN gives 0).
pub(crate) fn convert(kb: &mut Kb, x: Val, to: DType) -> H {
    let from = x.dt;
    let tt = vty(to);
    let ft = vty(from);
    if from == to {
        return x.h;
    }
    if from == DType::Pred {
        let one = lit(kb, to, 1.0);
        let zero = lit(kb, to, 0.0);
        return kb.select(x.h, one, zero);
    }
    if to == DType::Pred {
        let zero = kb.lit_int(ft, 0);
        let zero = if ft.is_float() { kb.lit_float(ft, 0.0) } else { zero };
        return compare(kb, CompareDirection::Ne, None, x, Val { h: zero, dt: from });
    }
    if from.is_float() && to.is_integer() {
        return float_to_int(kb, x.h, ft, to);
    }
    let r = if ft == tt {
        x.h
    } else if ft.bits() == tt.bits() && !ft.is_float() && !tt.is_float() {
        kb.bitcast(x.h, tt)
    } else if !ft.is_float() && !tt.is_float() && ft.bits() < tt.bits() && ft.kind() != tt.kind() {
        // Widen in the source's signedness, then reinterpret: naga picks the extension by the
        // target's kind, and an OpSConvert of an unsigned value sign-extends it (u32 3e9 became
        // negative as s64; lavapipe also miscompiles it, sign(s64(iota)) was 1 at 0).
        let wide = if ft == STy::U32 { STy::U64 } else { STy::I64 };
        let w = kb.convert(x.h, wide);
        kb.bitcast(w, tt)
    } else {
        let r = kb.convert(x.h, tt);
        if ft == STy::I32 && tt == STy::I64 {
            kb.note_sign_extension(r, x.h);
        }
        r
    };
    // f64 -> f32 can produce subnormals, which XLA:CPU flushes (FTZ).
    let r = if ft == STy::F64 && tt == STy::F32 { flush_subnormal(kb, r, DType::F32) } else { r };
    normalize(kb, r, to)
}

/// Saturating float to integer conversion; NaN converts to 0.
fn float_to_int(kb: &mut Kb, x: H, ft: STy, to: DType) -> H {
    let tt = vty(to);
    let bits = int_bits(to);
    let (lo, hi): (f64, f64) = if to.is_signed_integer() {
        (-(2f64.powi(bits as i32 - 1)), 2f64.powi(bits as i32 - 1))
    } else {
        (0.0, 2f64.powi(bits as i32))
    };
    let (min, max): (i128, i128) = if to.is_signed_integer() {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    let hi_c = kb.lit_float(ft, hi);
    let lo_c = kb.lit_float(ft, lo);
    let conv = kb.convert(x, tt);
    let maxv = kb.lit_int(tt, max);
    let minv = kb.lit_int(tt, min);
    let zero = kb.lit_int(tt, 0);
    let over = kb.binary(Bo::GreaterEqual, x, hi_c);
    let under = kb.binary(Bo::LessEqual, x, lo_c);
    let nan = isnan_t(kb, x, ft);
    let r = kb.select(over, maxv, conv);
    let r = kb.select(under, minv, r);
    kb.select(nan, zero, r)
}

/// `bitcast-convert` between types of equal width.
pub(crate) fn bitcast_convert(kb: &mut Kb, x: Val, to: DType) -> Result<H, String> {
    let from = x.dt;
    if from.bit_width() != to.bit_width() {
        return Err(format!("bitcast-convert from {from} to {to} changes the element width"));
    }
    if from == to {
        return Ok(x.h);
    }
    if crate::minifloat::MiniFloat::of(from).is_some() || crate::minifloat::MiniFloat::of(to).is_some() {
        return Err(format!("bitcast-convert from {from} to {to}: 8-bit floats are kept as f32 values"));
    }
    let ft = vty(from);
    let tt = vty(to);
    Ok(match from.bit_width() {
        32 | 64 => {
            if from == DType::Pred || to == DType::Pred {
                return Err("bitcast-convert of pred".into());
            }
            kb.bitcast(x.h, tt)
        }
        16 => {
            // 16-bit patterns: bf16 is the high half of an f32, f16 goes through pack2x16float.
            let bits = match from {
                DType::BF16 => {
                    let b = kb.bitcast(x.h, STy::U32);
                    let s = kb.lit_u32(16);
                    kb.binary(Bo::ShiftRight, b, s)
                }
                DType::F16 => {
                    let zero = kb.lit_f32(0.0);
                    let v2ty = kb.ty(naga::TypeInner::Vector { size: naga::VectorSize::Bi, scalar: naga::Scalar::F32 });
                    let v = kb.expr(naga::Expression::Compose { ty: v2ty, components: vec![x.h, zero] });
                    let packed = kb.math(Mf::Pack2x16float, &[v]);
                    // Drivers pack every NaN as one canonical pattern; rebuild sign and payload
                    // from the f32 (which holds the f16's payload in its top mantissa bits).
                    let b = kb.bitcast(x.h, STy::U32);
                    let s16 = kb.lit_u32(16);
                    let hi = kb.binary(Bo::ShiftRight, b, s16);
                    let sign_mask = kb.lit_u32(0x8000);
                    let sign = kb.binary(Bo::And, hi, sign_mask);
                    let s13 = kb.lit_u32(13);
                    let m = kb.binary(Bo::ShiftRight, b, s13);
                    let mant_mask = kb.lit_u32(0x3ff);
                    let m = kb.binary(Bo::And, m, mant_mask);
                    let quiet = kb.lit_u32(0x200);
                    let zero_u = kb.lit_u32(0);
                    let empty = kb.binary(Bo::Equal, m, zero_u);
                    let m = kb.select(empty, quiet, m);
                    let exp = kb.lit_u32(0x7c00);
                    let nan_bits = kb.binary(Bo::InclusiveOr, sign, exp);
                    let nan_bits = kb.binary(Bo::InclusiveOr, nan_bits, m);
                    let is_nan = kb.float_class(x.h, STy::F32, false);
                    kb.select(is_nan, nan_bits, packed)
                }
                _ => to_u32_bits(kb, x.h, from),
            };
            match to {
                DType::BF16 => {
                    let s = kb.lit_u32(16);
                    let b = kb.binary(Bo::ShiftLeft, bits, s);
                    kb.bitcast(b, STy::F32)
                }
                DType::F16 => {
                    let v = kb.math(Mf::Unpack2x16float, &[bits]);
                    kb.access_index(v, 0)
                }
                _ => {
                    let r = if tt == STy::I32 { kb.bitcast(bits, STy::I32) } else { bits };
                    normalize(kb, r, to)
                }
            }
        }
        8 => {
            // pred is a byte holding 0 or 1 (a bool in registers); a nonzero byte reads as true,
            // as in the interpreter.
            let bits = if from == DType::Pred {
                let (one, zero) = (kb.lit_u32(1), kb.lit_u32(0));
                kb.select(x.h, one, zero)
            } else {
                to_u32_bits(kb, x.h, from)
            };
            if to == DType::Pred {
                let zero = kb.lit_u32(0);
                return Ok(kb.binary(Bo::NotEqual, bits, zero));
            }
            let r = if tt == STy::I32 { kb.bitcast(bits, STy::I32) } else { bits };
            let _ = ft;
            normalize(kb, r, to)
        }
        _ => return Err(format!("bitcast-convert from {from} to {to}")),
    })
}

/// `reduce-precision`: rounds an f32 to `exponent_bits`/`mantissa_bits` as XLA does.
pub(crate) fn reduce_precision(kb: &mut Kb, x: Val, exponent_bits: i64, mantissa_bits: i64) -> Result<H, String> {
    if x.dt != DType::F32 && !x.dt.is_narrow_float() {
        return Err(format!("reduce-precision on {}", x.dt));
    }
    let (eb, mb) = (exponent_bits as i32, mantissa_bits as i32);
    if !(1..=8).contains(&eb) || !(0..=23).contains(&mb) {
        return Err("reduce-precision with bit counts beyond f32".into());
    }
    let b = kb.bitcast(x.h, STy::U32);
    let mut r = b;
    if mb < 23 {
        let shift = (23 - mb) as u32;
        let one = kb.lit_u32(1);
        let sh = kb.lit_u32(shift);
        let s = kb.binary(Bo::ShiftRight, b, sh);
        let lsb = kb.binary(Bo::And, s, one);
        let bias = kb.lit_u32((1u32 << (shift - 1)) - 1);
        let t = kb.binary(Bo::Add, b, bias);
        let t = kb.binary(Bo::Add, t, lsb);
        let mask = kb.lit_u32(!((1u32 << shift) - 1));
        r = kb.binary(Bo::And, t, mask);
    }
    if eb < 8 {
        let bias = (1i64 << (eb - 1)) - 1;
        let max_exp = (127 + bias) as u32;
        let min_exp = (127 - bias) as u32;
        let absm = kb.lit_u32(0x7fff_ffff);
        let signm = kb.lit_u32(0x8000_0000);
        let a = kb.binary(Bo::And, r, absm);
        let sign = kb.binary(Bo::And, r, signm);
        let over_c = kb.lit_u32(max_exp << 23);
        let under_c = kb.lit_u32(min_exp << 23);
        let over = kb.binary(Bo::Greater, a, over_c);
        let under = kb.binary(Bo::Less, a, under_c);
        let infb = kb.lit_u32(0x7f80_0000);
        let inf = kb.binary(Bo::InclusiveOr, sign, infb);
        // a >= (max_exp+1) << 23 means overflow
        let over_c2 = kb.lit_u32((max_exp + 1) << 23);
        let over2 = kb.binary(Bo::GreaterEqual, a, over_c2);
        let _ = over;
        r = kb.select(over2, inf, r);
        r = kb.select(under, sign, r);
    }
    let f = kb.bitcast(r, STy::F32);
    let nan = isnan(kb, x.h);
    Ok(kb.select(nan, x.h, f))
}

/// `atan2` result `r` (computed from operands read as zero when subnormal) corrected to what
/// XLA:CPU's library call gives for the raw f32 operands `y` and `x`: it classifies zeros by
/// their bits, so `atan2(subnormal, ±0)` is `±pi/2`, and otherwise divides operands read as zero,
/// so two subnormals give NaN (`jnp.arctan2(1e-39, 1e-39)` is NaN under JAX on CPU).
pub(crate) fn atan2_subnormal_operands(kb: &mut Kb, r: H, y: H, x: H) -> H {
    let abs_mask = kb.lit_u32(0x7fff_ffff);
    let min_normal = kb.lit_u32(0x0080_0000);
    let zero = kb.lit_u32(0);
    let class = |kb: &mut Kb, v: H| {
        let bits = kb.bitcast(v, STy::U32);
        let mag = kb.binary(Bo::And, bits, abs_mask);
        let is_zero = kb.binary(Bo::Equal, mag, zero);
        let below = kb.binary(Bo::Less, mag, min_normal);
        let not_zero = kb.unary(naga::UnaryOperator::LogicalNot, is_zero);
        let subnormal = kb.binary(Bo::LogicalAnd, below, not_zero);
        (is_zero, subnormal, bits)
    };
    let (_, y_sub, y_bits) = class(kb, y);
    let (x_zero, x_sub, _) = class(kb, x);
    let both = kb.binary(Bo::LogicalAnd, y_sub, x_sub);
    let nan = kb.lit_f32(f32::NAN);
    let r = kb.select(both, nan, r);
    let sign_mask = kb.lit_u32(0x8000_0000);
    let sign = kb.binary(Bo::And, y_bits, sign_mask);
    let half_pi = kb.lit_u32(std::f32::consts::FRAC_PI_2.to_bits());
    let signed = kb.binary(Bo::InclusiveOr, sign, half_pi);
    let signed = kb.bitcast(signed, STy::F32);
    let vertical = kb.binary(Bo::LogicalAnd, y_sub, x_zero);
    kb.select(vertical, signed, r)
}
