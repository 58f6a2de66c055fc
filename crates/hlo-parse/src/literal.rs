//! Literals: `constant(...)` payloads read against the instruction's shape.
//!
//! Arrays nest one `{...}` per dimension (`{ { 1, 2 }, { 3, 4 } }`), scalars are bare,
//! tuples are `( a, b )`, complex elements are `(re, im)`, and predicates are
//! `true`/`false` or `1`/`0`. The element count of every dimension must match the shape.
//!
//! Decimal text becomes the element type with round-to-nearest-even: `f32`/`f64` through
//! Rust's correctly rounded parser, `f16`/`bf16` through `half`, and the 8- and 4-bit
//! float types through [`encode_minifloat`]. Together with the printer this makes every
//! bit pattern of every float type read back to itself (NaN payloads included).

use crate::error::{PErr, PResult};
use crate::lexer::{parse_hex_payload, Cursor};
use half::{bf16, f16};
use hlo_ir::print::{MiniFloat, MiniFloatKind};
use hlo_ir::{ArrayData, ArrayShape, DType, Literal, LiteralData, Shape};

/// Parses a literal of `shape` at the cursor.
pub(crate) fn literal(c: &mut Cursor<'_>, shape: &Shape) -> PResult<Literal> {
    c.enter()?;
    let lit = match shape {
        Shape::Tuple(elems) => {
            c.expect(b'(')?;
            let mut values = Vec::with_capacity(elems.len());
            for (i, elem) in elems.iter().enumerate() {
                if i > 0 {
                    c.expect(b',')?;
                }
                values.push(literal(c, elem)?);
            }
            c.expect(b')')?;
            Literal { shape: shape.clone(), data: LiteralData::Tuple(values) }
        }
        Shape::Token => {
            if !c.eat_keyword("token") {
                return Err(c.err_expected("'token'"));
            }
            Literal { shape: Shape::Token, data: LiteralData::Token }
        }
        // XLA's printer elides large constants as `{...}`: kept as such (see LiteralData::Elided).
        Shape::Array(array) if array.rank() > 0 && c.peek() == Some(b'{') && c.rest().starts_with("{...}") => {
            c.pos += 5;
            Literal { shape: shape.clone(), data: LiteralData::Elided }
        }
        Shape::Array(array) => {
            let data = dense(c, array)?;
            Literal { shape: shape.clone(), data: LiteralData::Array(data) }
        }
    };
    c.leave();
    Ok(lit)
}

/// A dense array: a bare scalar for rank 0, otherwise one brace level per dimension.
fn dense(c: &mut Cursor<'_>, shape: &ArrayShape) -> PResult<ArrayData> {
    let rank = shape.dims.len();
    let mut out = ArrayData::zeros(shape.dtype, 0);
    if rank == 0 {
        element(c, shape.dtype, &mut out)?;
        return Ok(out);
    }
    nested(c, shape, 0, &mut out)?;
    Ok(out)
}

fn nested(c: &mut Cursor<'_>, shape: &ArrayShape, level: usize, out: &mut ArrayData) -> PResult<()> {
    c.enter()?;
    let open = {
        c.skip_ws();
        c.pos
    };
    c.expect(b'{')?;
    let want = shape.dims.get(level).copied().unwrap_or(0).max(0) as u64;
    let innermost = level + 1 == shape.dims.len();
    let mut count: u64 = 0;
    if !c.eat(b'}') {
        loop {
            if count >= want {
                return Err(c.err_expected(&format!("'}}' after {want} elements in dimension {level}")));
            }
            if innermost {
                element(c, shape.dtype, out)?;
            } else {
                nested(c, shape, level + 1, out)?;
            }
            count += 1;
            if c.eat(b',') {
                continue;
            }
            c.expect(b'}')?;
            break;
        }
    }
    if count != want {
        return Err(c.err_since(open, format!("expected {want} elements in dimension {level}, found {count}")));
    }
    c.leave();
    Ok(())
}

/// Parses one element of `dtype` and appends it to `out`.
fn element(c: &mut Cursor<'_>, dtype: DType, out: &mut ArrayData) -> PResult<()> {
    c.skip_ws();
    let start = c.pos;
    match out {
        ArrayData::Pred(v) => {
            let b = if c.eat_keyword("true") {
                true
            } else if c.eat_keyword("false") {
                false
            } else {
                match c.int_token() {
                    Some("0") => false,
                    Some("1") => true,
                    _ => {
                        c.pos = start;
                        return Err(c.err_expected("'true', 'false', '0' or '1'"));
                    }
                }
            };
            v.push(b);
        }
        ArrayData::S8(v) => v.push(int_in(c, dtype)? as i8),
        ArrayData::S16(v) => v.push(int_in(c, dtype)? as i16),
        ArrayData::S32(v) => v.push(int_in(c, dtype)? as i32),
        ArrayData::S64(v) => v.push(int_in(c, dtype)? as i64),
        ArrayData::U8(v) => v.push(int_in(c, dtype)? as u8),
        ArrayData::U16(v) => v.push(int_in(c, dtype)? as u16),
        ArrayData::U32(v) => v.push(int_in(c, dtype)? as u32),
        ArrayData::U64(v) => v.push(int_in(c, dtype)? as u64),
        ArrayData::F16(v) => v.push(f16::from_bits(float_bits(c, FloatKind::F16)? as u16)),
        ArrayData::BF16(v) => v.push(bf16::from_bits(float_bits(c, FloatKind::BF16)? as u16)),
        ArrayData::F32(v) => v.push(f32::from_bits(float_bits(c, FloatKind::F32)? as u32)),
        ArrayData::F64(v) => v.push(f64::from_bits(float_bits(c, FloatKind::F64)?)),
        ArrayData::C64(v) => {
            c.expect(b'(')?;
            let re = f32::from_bits(float_bits(c, FloatKind::F32)? as u32);
            c.expect(b',')?;
            let im = f32::from_bits(float_bits(c, FloatKind::F32)? as u32);
            c.expect(b')')?;
            v.push([re, im]);
        }
        ArrayData::C128(v) => {
            c.expect(b'(')?;
            let re = f64::from_bits(float_bits(c, FloatKind::F64)?);
            c.expect(b',')?;
            let im = f64::from_bits(float_bits(c, FloatKind::F64)?);
            c.expect(b')')?;
            v.push([re, im]);
        }
        ArrayData::Bits(v) => {
            let Some(format) = MiniFloat::of(dtype) else {
                return Err(c.err_expected("a supported element type"));
            };
            v.push(float_bits(c, FloatKind::Mini(format, dtype))? as u8);
        }
    }
    Ok(())
}

/// An integer token checked against the range of `dtype`.
fn int_in(c: &mut Cursor<'_>, dtype: DType) -> PResult<i128> {
    c.skip_ws();
    let start = c.pos;
    let Some(text) = c.int_token() else {
        return Err(c.err_expected(&format!("a value of type {dtype}")));
    };
    let value: Option<i128> = text.parse().ok();
    let (lo, hi): (i128, i128) = match dtype {
        DType::S2 => (-2, 1),
        DType::S4 => (-8, 7),
        DType::S8 => (i8::MIN as i128, i8::MAX as i128),
        DType::S16 => (i16::MIN as i128, i16::MAX as i128),
        DType::S32 => (i32::MIN as i128, i32::MAX as i128),
        DType::S64 => (i64::MIN as i128, i64::MAX as i128),
        DType::U2 => (0, 3),
        DType::U4 => (0, 15),
        DType::U8 => (0, u8::MAX as i128),
        DType::U16 => (0, u16::MAX as i128),
        DType::U32 => (0, u32::MAX as i128),
        _ => (0, u64::MAX as i128),
    };
    match value {
        Some(v) if (lo..=hi).contains(&v) => Ok(v),
        // XLA reads a u64 through an s64, so a negative one is its two's complement (-1 is
        // u64 max); narrower unsigned types keep the range check.
        Some(v) if dtype == DType::U64 && (i64::MIN as i128..0).contains(&v) => Ok(v + (1i128 << 64)),
        _ => Err(c.err_since(start, format!("value {text} is out of range for {dtype}"))),
    }
}

#[derive(Clone, Copy)]
enum FloatKind {
    F16,
    BF16,
    F32,
    F64,
    Mini(MiniFloat, DType),
}

impl FloatKind {
    fn name(self) -> &'static str {
        match self {
            FloatKind::F16 => "f16",
            FloatKind::BF16 => "bf16",
            FloatKind::F32 => "f32",
            FloatKind::F64 => "f64",
            FloatKind::Mini(_, dtype) => dtype.name(),
        }
    }
}

/// Parses a float element and returns its bit pattern in the target type.
fn float_bits(c: &mut Cursor<'_>, kind: FloatKind) -> PResult<u64> {
    c.skip_ws();
    let start = c.pos;
    let Some((text, payload)) = c.float_token() else {
        return Err(c.err_expected(&format!("a value of type {}", kind.name())));
    };
    let negative = text.starts_with('-');
    let out_of_range = |c: &Cursor<'_>| c.err_since(start, format!("value {text} is out of range for {}", kind.name()));
    if text.ends_with("nan") {
        let payload = match payload {
            None => None,
            Some(digits) => match parse_hex_payload(digits) {
                Some(p) if p != 0 => Some(p),
                _ => return Err(c.err_since(start, "NaN payload must be non-zero")),
            },
        };
        return nan_bits(kind, negative, payload).ok_or_else(|| {
            c.err_since(start, format!("NaN payload does not fit in {} (or the type has no such NaN)", kind.name()))
        });
    }
    let bits = match kind {
        FloatKind::F32 => {
            let x: f32 = text.parse().map_err(|_| c.err_since(start, format!("invalid number '{text}'")))?;
            if x.is_infinite() && !text.ends_with("inf") {
                return Err(out_of_range(c));
            }
            x.to_bits() as u64
        }
        FloatKind::F64 => {
            let x: f64 = text.parse().map_err(|_| c.err_since(start, format!("invalid number '{text}'")))?;
            if x.is_infinite() && !text.ends_with("inf") {
                return Err(out_of_range(c));
            }
            x.to_bits()
        }
        _ => {
            let x: f64 = text.parse().map_err(|_| c.err_since(start, format!("invalid number '{text}'")))?;
            let finite_text = !text.ends_with("inf");
            match kind {
                FloatKind::F16 => {
                    let h = f16::from_f64(x);
                    if finite_text && h.is_infinite() {
                        return Err(out_of_range(c));
                    }
                    h.to_bits() as u64
                }
                FloatKind::BF16 => {
                    let h = bf16::from_f64(x);
                    if finite_text && h.is_infinite() {
                        return Err(out_of_range(c));
                    }
                    h.to_bits() as u64
                }
                FloatKind::Mini(format, _) => {
                    let bits = encode_minifloat(format, x);
                    let value = format.to_f64(bits);
                    if finite_text && !value.is_finite() {
                        return Err(out_of_range(c));
                    }
                    bits as u64
                }
                FloatKind::F32 | FloatKind::F64 => unreachable!("handled above"),
            }
        }
    };
    Ok(bits)
}

/// The bits of `[-]nan[(0xpayload)]` in `kind`; `None` when the payload does not fit or the
/// type cannot hold it.
fn nan_bits(kind: FloatKind, negative: bool, payload: Option<u64>) -> Option<u64> {
    let ieee = |sign_shift: u32, exp_mask: u64, mant_bits: u32| -> Option<u64> {
        let mant_mask = (1u64 << mant_bits) - 1;
        let mant = match payload {
            None => 1u64 << (mant_bits - 1),
            Some(p) if p <= mant_mask => p,
            Some(_) => return None,
        };
        Some(((negative as u64) << sign_shift) | exp_mask | mant)
    };
    match kind {
        FloatKind::F32 => ieee(31, 0x7f80_0000, 23),
        FloatKind::F64 => ieee(63, 0x7ff0_0000_0000_0000, 52),
        FloatKind::F16 => ieee(15, 0x7c00, 10),
        FloatKind::BF16 => ieee(15, 0x7f80, 7),
        FloatKind::Mini(format, _) => {
            let m = format.mantissa_bits;
            let sign = if negative { 1u64 << (format.width() - 1) } else { 0 };
            let all_ones_exp = ((1u64 << format.exponent_bits) - 1) << m;
            match format.kind {
                MiniFloatKind::Ieee => {
                    let mant_mask = (1u64 << m) - 1;
                    let mant = match payload {
                        None if m > 1 => 1u64 << (m - 1),
                        None => 1,
                        Some(p) if p <= mant_mask => p,
                        Some(_) => return None,
                    };
                    Some(sign | all_ones_exp | mant)
                }
                MiniFloatKind::FiniteAllOnesNan if payload.is_none() => Some(sign | all_ones_exp | ((1u64 << m) - 1)),
                MiniFloatKind::FiniteNegZeroNan if payload.is_none() => Some(0x80),
                MiniFloatKind::ExponentOnly if payload.is_none() => Some(0xff),
                _ => None,
            }
        }
    }
}

/// Rounds `x` to the nearest value of an 8- or 4-bit float type (ties to even) and returns
/// its bit pattern. Values past the largest finite one become infinity where the type has
/// one, NaN where it has only that, and saturate for `f4e2m1fn`; NaN maps to the type's NaN.
pub fn encode_minifloat(format: MiniFloat, x: f64) -> u8 {
    let m = format.mantissa_bits;
    let width = format.width();
    let mant_all: i64 = (1i64 << m) - 1;
    let e_max_field: i64 = (1i64 << format.exponent_bits) - 1;
    let sign: u8 =
        if format.kind != MiniFloatKind::ExponentOnly && x.is_sign_negative() { 1 << (width - 1) } else { 0 };
    let nan: u8 = match format.kind {
        MiniFloatKind::Ieee => ((e_max_field << m) as u8) | (1u8 << m.saturating_sub(1)) | sign,
        MiniFloatKind::FiniteAllOnesNan => ((e_max_field << m) | mant_all) as u8 | sign,
        MiniFloatKind::FiniteNegZeroNan => 0x80,
        MiniFloatKind::ExponentOnly => 0xff,
        MiniFloatKind::FiniteNoNan => ((e_max_field << m) | mant_all) as u8 | sign,
    };
    let max_finite: i64 = match format.kind {
        MiniFloatKind::Ieee => ((e_max_field - 1) << m) | mant_all,
        MiniFloatKind::FiniteAllOnesNan => (e_max_field << m) | (mant_all - 1),
        MiniFloatKind::ExponentOnly => e_max_field - 1,
        MiniFloatKind::FiniteNegZeroNan | MiniFloatKind::FiniteNoNan => (e_max_field << m) | mant_all,
    };
    let overflow: u8 = match format.kind {
        MiniFloatKind::Ieee => ((e_max_field << m) as u8) | sign,
        MiniFloatKind::FiniteNoNan => max_finite as u8 | sign,
        _ => nan,
    };
    if x.is_nan() {
        return nan;
    }
    if format.kind == MiniFloatKind::ExponentOnly && x < 0.0 {
        return nan;
    }
    let a = x.abs();
    if a.is_infinite() {
        return overflow;
    }
    if a == 0.0 {
        return match format.kind {
            MiniFloatKind::FiniteNegZeroNan | MiniFloatKind::ExponentOnly => 0,
            _ => sign,
        };
    }
    // a = f * 2^e with f in [1, 2).
    let e = exponent_of(a);
    let e_min = 1 - format.bias as i64;
    let magnitude: i64 = if format.kind == MiniFloatKind::ExponentOnly {
        // No mantissa and no subnormals: the exponent field 0 is 2^-bias.
        let f = a / pow2(e);
        let biased = e + format.bias as i64 + if f >= 1.5 { 1 } else { 0 };
        biased.max(0)
    } else if e < e_min {
        let n = (a / pow2(e_min - m as i64)).round_ties_even();
        n as i64
    } else {
        let n = (a / pow2(e - m as i64)).round_ties_even() as i64;
        ((e + format.bias as i64) << m) + (n - (1i64 << m))
    };
    if magnitude > max_finite {
        return overflow;
    }
    if magnitude == 0 && format.kind == MiniFloatKind::FiniteNegZeroNan {
        return 0;
    }
    magnitude as u8 | sign
}

/// `floor(log2(a))` for a positive finite `a`, exact (from the bits, subnormals included).
fn exponent_of(a: f64) -> i64 {
    let bits = a.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i64;
    if biased == 0 {
        // Subnormal: value = mantissa * 2^-1074.
        let mant = bits & 0xf_ffff_ffff_ffff;
        63 - mant.leading_zeros() as i64 - 1074
    } else {
        biased - 1023
    }
}

fn pow2(e: i64) -> f64 {
    2f64.powi(e.clamp(-1100, 1100) as i32)
}

/// Checks a parse position for error messages in the attribute parsers.
/// `shape value`, or a tuple of them in parentheses (`( s32[2] {1, 2}, pred[] true )`), as
/// XLA writes a custom-call literal.
pub(crate) fn shaped_literal(c: &mut Cursor<'_>) -> PResult<Literal> {
    c.skip_ws();
    if c.eat(b'(') {
        let mut elems = Vec::new();
        if !c.eat(b')') {
            loop {
                c.enter()?;
                let elem = shaped_literal(c);
                c.leave();
                elems.push(elem?);
                if c.eat(b',') {
                    continue;
                }
                c.expect(b')')?;
                break;
            }
        }
        return Ok(Literal::tuple(elems));
    }
    let shape = crate::shape::shape(c)?;
    if shape.is_tuple() {
        return Err(PErr::new(c.pos, c.pos + 1, "a tuple custom-call literal is written as ( shape value, ... )"));
    }
    literal(c, &shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_minifloat_pattern_round_trips_through_its_value() {
        for dtype in DType::ALL {
            let Some(format) = MiniFloat::of(dtype) else { continue };
            let n = 1u32 << format.width();
            for bits in 0..n {
                let bits = bits as u8;
                let value = format.to_f64(bits);
                let back = encode_minifloat(format, value);
                if value.is_nan() {
                    assert!(format.to_f64(back).is_nan(), "{dtype} {bits:#x}");
                } else {
                    assert_eq!(back, bits, "{dtype} {bits:#x} = {value}");
                }
            }
        }
    }

    #[test]
    fn minifloat_rounding() {
        let e4m3fn = MiniFloat::of(DType::F8E4M3FN).unwrap();
        assert_eq!(e4m3fn.to_f64(encode_minifloat(e4m3fn, 448.0)), 448.0);
        assert!(e4m3fn.to_f64(encode_minifloat(e4m3fn, 500.0)).is_nan());
        // 1.0625 is halfway between 1 and 1.125: ties to even (1.0).
        assert_eq!(e4m3fn.to_f64(encode_minifloat(e4m3fn, 1.0625)), 1.0);
        assert_eq!(e4m3fn.to_f64(encode_minifloat(e4m3fn, 1.1875)), 1.25);
        let e5m2 = MiniFloat::of(DType::F8E5M2).unwrap();
        assert_eq!(e5m2.to_f64(encode_minifloat(e5m2, 1e6)), f64::INFINITY);
        let e2m1 = MiniFloat::of(DType::F4E2M1FN).unwrap();
        assert_eq!(e2m1.to_f64(encode_minifloat(e2m1, 100.0)), 6.0);
        assert_eq!(e2m1.to_f64(encode_minifloat(e2m1, 0.25)), 0.0);
        assert_eq!(e2m1.to_f64(encode_minifloat(e2m1, 0.26)), 0.5);
    }
}
