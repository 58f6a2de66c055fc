//! Element type changes: `convert`, `bitcast-convert`, `reduce-precision`, raw bytes, and
//! the 8- and 4-bit float codecs.
//!
//! `convert` goes through one exact wide intermediate per source class (f64 for floats,
//! i128 for integers) and then to the target:
//! - float -> integer saturates to the target's range and maps NaN to 0 (Rust's `as`
//!   has exactly these semantics);
//! - integer -> integer wraps (two's complement truncation);
//! - anything -> pred is `x != 0` (NaN is true); pred -> anything is 0 or 1;
//! - -> f16/bf16 rounds to nearest even from an f32 value, as Eigen's narrow types do
//!   (so an f64 or a wide integer is rounded to f32 first);
//! - -> f8 types rounds to nearest even directly, overflowing to inf where the type
//!   has one and to NaN where it does not (ml_dtypes' non-saturating conversion).

use crate::error::{invalid, unsupported, OpResult};
use half::{bf16, f16};
use hlo_ir::{ArrayData as AD, DType};

/// The exact wide form of a source array.
enum Wide {
    F(Vec<f64>),
    I(Vec<i128>),
    C(Vec<[f64; 2]>),
}

fn widen(data: &AD, from: DType) -> OpResult<Wide> {
    fn ints<T: Copy + Into<i128>>(v: &[T]) -> Wide {
        Wide::I(v.iter().map(|&x| x.into()).collect())
    }
    Ok(match data {
        AD::Pred(v) => Wide::I(v.iter().map(|&x| x as i128).collect()),
        AD::S8(v) => ints(v),
        AD::S16(v) => ints(v),
        AD::S32(v) => ints(v),
        AD::S64(v) => ints(v),
        AD::U8(v) => ints(v),
        AD::U16(v) => ints(v),
        AD::U32(v) => ints(v),
        AD::U64(v) => ints(v),
        AD::F16(v) => Wide::F(v.iter().map(|x| x.to_f64()).collect()),
        AD::BF16(v) => Wide::F(v.iter().map(|x| x.to_f64()).collect()),
        AD::F32(v) => Wide::F(v.iter().map(|&x| x as f64).collect()),
        AD::F64(v) => Wide::F(v.clone()),
        AD::C64(v) => Wide::C(v.iter().map(|z| [z[0] as f64, z[1] as f64]).collect()),
        AD::C128(v) => Wide::C(v.clone()),
        AD::Bits(v) => {
            let Some(fmt) = MiniFloat::of(from) else {
                return invalid(format!("{from} is not stored as raw bits"));
            };
            Wide::F(v.iter().map(|&b| fmt.decode(b)).collect())
        }
    })
}

/// `convert` of `data` (elements of type `from`) to type `to`.
pub fn convert(data: &AD, from: DType, to: DType) -> OpResult<AD> {
    if from == to {
        return Ok(data.clone());
    }
    let wide = widen(data, from)?;
    let mut res = match wide {
        Wide::F(v) => from_f64(&v, to)?,
        Wide::I(v) => from_i128(&v, to)?,
        Wide::C(v) => match to {
            DType::C64 => AD::C64(v.iter().map(|z| [z[0] as f32, z[1] as f32]).collect()),
            DType::C128 => AD::C128(v),
            _ => return unsupported(format!("convert from complex {from} to real {to}")),
        },
    };
    crate::array::wrap_subbyte(to, &mut res);
    Ok(res)
}

fn from_f64(v: &[f64], to: DType) -> OpResult<AD> {
    macro_rules! sat {
        ($t:ty) => {
            v.iter().map(|&x| x as $t).collect()
        };
    }
    Ok(match to {
        DType::Pred => AD::Pred(v.iter().map(|&x| x != 0.0).collect()),
        DType::S2 | DType::S4 => {
            let (lo, hi) = subbyte_signed_range(to);
            AD::S8(v.iter().map(|&x| (x as i64).clamp(lo, hi) as i8).collect())
        }
        DType::U2 | DType::U4 => {
            let hi = (1i64 << to.bit_width()) - 1;
            AD::U8(v.iter().map(|&x| (x as i64).clamp(0, hi) as u8).collect())
        }
        DType::S8 => AD::S8(sat!(i8)),
        DType::S16 => AD::S16(sat!(i16)),
        DType::S32 => AD::S32(sat!(i32)),
        DType::S64 => AD::S64(sat!(i64)),
        DType::U8 => AD::U8(sat!(u8)),
        DType::U16 => AD::U16(sat!(u16)),
        DType::U32 => AD::U32(sat!(u32)),
        DType::U64 => AD::U64(sat!(u64)),
        DType::F16 => AD::F16(v.iter().map(|&x| f16::from_f32(x as f32)).collect()),
        DType::BF16 => AD::BF16(v.iter().map(|&x| bf16::from_f32(x as f32)).collect()),
        DType::F32 => AD::F32(sat!(f32)),
        DType::F64 => AD::F64(v.to_vec()),
        DType::C64 => AD::C64(v.iter().map(|&x| [x as f32, 0.0]).collect()),
        DType::C128 => AD::C128(v.iter().map(|&x| [x, 0.0]).collect()),
        _ => {
            let Some(fmt) = MiniFloat::of(to) else {
                return unsupported(format!("convert to {to}"));
            };
            let table = fmt.encoding_table();
            AD::Bits(v.iter().map(|&x| fmt.encode(&table, x)).collect())
        }
    })
}

fn subbyte_signed_range(ty: DType) -> (i64, i64) {
    let bits = ty.bit_width();
    (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
}

fn from_i128(v: &[i128], to: DType) -> OpResult<AD> {
    macro_rules! wrap {
        ($t:ty) => {
            v.iter().map(|&x| x as $t).collect()
        };
    }
    Ok(match to {
        DType::Pred => AD::Pred(v.iter().map(|&x| x != 0).collect()),
        DType::S2 | DType::S4 | DType::S8 => AD::S8(wrap!(i8)),
        DType::S16 => AD::S16(wrap!(i16)),
        DType::S32 => AD::S32(wrap!(i32)),
        DType::S64 => AD::S64(wrap!(i64)),
        DType::U2 | DType::U4 | DType::U8 => AD::U8(wrap!(u8)),
        DType::U16 => AD::U16(wrap!(u16)),
        DType::U32 => AD::U32(wrap!(u32)),
        DType::U64 => AD::U64(wrap!(u64)),
        DType::F16 => AD::F16(v.iter().map(|&x| f16::from_f32(x as f32)).collect()),
        DType::BF16 => AD::BF16(v.iter().map(|&x| bf16::from_f32(x as f32)).collect()),
        DType::F32 => AD::F32(wrap!(f32)),
        DType::F64 => AD::F64(wrap!(f64)),
        DType::C64 => AD::C64(v.iter().map(|&x| [x as f32, 0.0]).collect()),
        DType::C128 => AD::C128(v.iter().map(|&x| [x as f64, 0.0]).collect()),
        _ => {
            let wide: Vec<f64> = v.iter().map(|&x| x as f32 as f64).collect();
            return from_f64(&wide, to);
        }
    })
}

/// The little-endian bytes of every element, in order (sub-byte types take a byte each).
pub fn to_le_bytes(data: &AD) -> Vec<u8> {
    macro_rules! le {
        ($v:expr) => {
            $v.iter().flat_map(|x| x.to_le_bytes()).collect()
        };
    }
    match data {
        AD::Pred(v) => v.iter().map(|&b| b as u8).collect(),
        AD::S8(v) => le!(v),
        AD::S16(v) => le!(v),
        AD::S32(v) => le!(v),
        AD::S64(v) => le!(v),
        AD::U8(v) => v.clone(),
        AD::U16(v) => le!(v),
        AD::U32(v) => le!(v),
        AD::U64(v) => le!(v),
        AD::F16(v) => le!(v),
        AD::BF16(v) => le!(v),
        AD::F32(v) => le!(v),
        AD::F64(v) => le!(v),
        AD::C64(v) => v.iter().flat_map(|z| z.iter().flat_map(|x| x.to_le_bytes())).collect(),
        AD::C128(v) => v.iter().flat_map(|z| z.iter().flat_map(|x| x.to_le_bytes())).collect(),
        AD::Bits(v) => v.clone(),
    }
}

/// Elements of type `ty` read from little-endian `bytes` (the length must be a multiple
/// of the element size).
pub fn from_le_bytes(ty: DType, bytes: &[u8]) -> AD {
    macro_rules! le {
        ($t:ty, $n:expr) => {
            bytes.chunks_exact($n).map(|c| <$t>::from_le_bytes(c.try_into().unwrap())).collect()
        };
    }
    match ty {
        DType::Pred => AD::Pred(bytes.iter().map(|&b| b != 0).collect()),
        DType::S2 | DType::S4 | DType::S8 => {
            let mut res = AD::S8(bytes.iter().map(|&b| b as i8).collect());
            crate::array::wrap_subbyte(ty, &mut res);
            res
        }
        DType::U2 | DType::U4 | DType::U8 => {
            let mut res = AD::U8(bytes.to_vec());
            crate::array::wrap_subbyte(ty, &mut res);
            res
        }
        DType::S16 => AD::S16(le!(i16, 2)),
        DType::S32 => AD::S32(le!(i32, 4)),
        DType::S64 => AD::S64(le!(i64, 8)),
        DType::U16 => AD::U16(le!(u16, 2)),
        DType::U32 => AD::U32(le!(u32, 4)),
        DType::U64 => AD::U64(le!(u64, 8)),
        DType::F16 => AD::F16(le!(f16, 2)),
        DType::BF16 => AD::BF16(le!(bf16, 2)),
        DType::F32 => AD::F32(le!(f32, 4)),
        DType::F64 => AD::F64(le!(f64, 8)),
        DType::C64 => {
            let parts: Vec<f32> = le!(f32, 4);
            AD::C64(parts.chunks_exact(2).map(|p| [p[0], p[1]]).collect())
        }
        DType::C128 => {
            let parts: Vec<f64> = le!(f64, 8);
            AD::C128(parts.chunks_exact(2).map(|p| [p[0], p[1]]).collect())
        }
        _ => AD::Bits(bytes.to_vec()),
    }
}

/// `bitcast-convert`: reinterpret the bits. Between widths, the wider element maps to
/// a minor dimension of narrower ones in little-endian order, which is exactly how the
/// row-major byte stream splits.
pub fn bitcast_convert(data: &AD, from: DType, to: DType) -> OpResult<AD> {
    if from.bit_width() < 8 || to.bit_width() < 8 {
        return Ok(bitcast_sub_byte(data, from, to));
    }
    Ok(from_le_bytes(to, &to_le_bytes(data)))
}

/// A `bitcast-convert` with a 2- or 4-bit side, through one little-endian bit stream: XLA (and
/// ml_dtypes) put element 0 of the narrow minor dimension in the lowest bits, so a `u8` holding
/// `0x1b` is the `s4` pair `[-5, 1]` and the `u2` quadruple `[3, 2, 1, 0]`.
fn bitcast_sub_byte(data: &AD, from: DType, to: DType) -> AD {
    let (fw, tw) = (from.bit_width() as usize, to.bit_width() as usize);
    // Sub-byte elements take a byte each here, the type's bits in its low end.
    let (fbytes, tbytes) = (fw.div_ceil(8), tw.div_ceil(8));
    let src = to_le_bytes(data);
    let mut bits = Vec::with_capacity(src.len() / fbytes * fw);
    for element in src.chunks_exact(fbytes) {
        bits.extend((0..fw).map(|i| (element[i / 8] >> (i % 8)) & 1));
    }
    let mut out = Vec::with_capacity(bits.len() / tw * tbytes);
    for element in bits.chunks_exact(tw) {
        let mut bytes = vec![0u8; tbytes];
        for (i, &b) in element.iter().enumerate() {
            bytes[i / 8] |= b << (i % 8);
        }
        out.extend(bytes);
    }
    from_le_bytes(to, &out)
}

/// XLA's `reduce-precision` on a float given by its bits (`src_exp`/`src_man` wide).
fn reduce_bits(bits: u64, total: u32, src_exp: u32, src_man: u32, exp_bits: u32, man_bits: u32) -> u64 {
    let mut x = bits;
    if man_bits < src_man {
        // Round to nearest even at the new last mantissa bit, then truncate.
        let last_bit_mask = 1u64 << (src_man - man_bits);
        let base_bias = (last_bit_mask >> 1) - 1;
        let last_bit = (x & last_bit_mask) >> (src_man - man_bits);
        x = x.wrapping_add(last_bit + base_bias);
        x &= !(last_bit_mask - 1);
        if total < 64 {
            x &= (1u64 << total) - 1;
        }
    }
    if exp_bits < src_exp {
        let sign_mask = 1u64 << (total - 1);
        let exp_mask = ((1u64 << src_exp) - 1) << src_man;
        let bias = (1u64 << (src_exp - 1)) - 1;
        let reduced_bias = (1u64 << (exp_bits - 1)) - 1;
        let max_exp = bias + reduced_bias;
        let min_exp = bias - reduced_bias;
        let exp = x & exp_mask;
        let signed_zero = x & sign_mask;
        if exp > (max_exp << src_man) {
            x = signed_zero | exp_mask;
        } else if exp <= (min_exp << src_man) {
            x = signed_zero;
        }
    }
    x
}

fn reduce_f32(x: f32, e: u32, m: u32) -> f32 {
    if x.is_nan() {
        return if m > 0 { x } else { f32::INFINITY };
    }
    f32::from_bits(reduce_bits(x.to_bits() as u64, 32, 8, 23, e, m) as u32)
}

fn reduce_f64(x: f64, e: u32, m: u32) -> f64 {
    if x.is_nan() {
        return if m > 0 { x } else { f64::INFINITY };
    }
    f64::from_bits(reduce_bits(x.to_bits(), 64, 11, 52, e, m))
}

/// `reduce-precision` to `exponent_bits`/`mantissa_bits`; narrow floats go through f32.
pub fn reduce_precision(data: &AD, exponent_bits: i64, mantissa_bits: i64) -> OpResult<AD> {
    if exponent_bits < 1 || mantissa_bits < 0 {
        return invalid("reduce-precision needs exponent_bits >= 1 and mantissa_bits >= 0");
    }
    let (e, m) = (exponent_bits.min(64) as u32, mantissa_bits.min(64) as u32);
    Ok(match data {
        AD::F32(v) => AD::F32(v.iter().map(|&x| reduce_f32(x, e, m)).collect()),
        AD::F64(v) => AD::F64(v.iter().map(|&x| reduce_f64(x, e, m)).collect()),
        AD::F16(v) => AD::F16(v.iter().map(|x| f16::from_f32(reduce_f32(x.to_f32(), e, m))).collect()),
        AD::BF16(v) => AD::BF16(v.iter().map(|x| bf16::from_f32(reduce_f32(x.to_f32(), e, m))).collect()),
        _ => return unsupported("reduce-precision of a non-float type"),
    })
}

/// Which special values a small float format has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Specials {
    /// IEEE-like: all-ones exponent is inf (zero mantissa) or NaN.
    Ieee,
    /// No infinities; NaN is the all-ones pattern (`e4m3fn`), or none at all (`e2m1fn`).
    Fn { has_nan: bool },
    /// No infinities and no negative zero; NaN is the sign bit alone.
    Fnuz,
    /// `e8m0fnu`: an unsigned power of two, NaN is all ones.
    E8M0,
}

/// An 8- or 4-bit float format.
#[derive(Clone, Copy)]
struct MiniFloat {
    exp_bits: u32,
    man_bits: u32,
    bias: i32,
    specials: Specials,
}

impl MiniFloat {
    fn of(ty: DType) -> Option<MiniFloat> {
        let (exp_bits, man_bits, bias, specials) = match ty {
            DType::F8E5M2 => (5, 2, 15, Specials::Ieee),
            DType::F8E4M3 => (4, 3, 7, Specials::Ieee),
            DType::F8E3M4 => (3, 4, 3, Specials::Ieee),
            DType::F8E4M3FN => (4, 3, 7, Specials::Fn { has_nan: true }),
            DType::F4E2M1FN => (2, 1, 1, Specials::Fn { has_nan: false }),
            DType::F8E4M3FNUZ => (4, 3, 8, Specials::Fnuz),
            DType::F8E5M2FNUZ => (5, 2, 16, Specials::Fnuz),
            DType::F8E4M3B11FNUZ => (4, 3, 11, Specials::Fnuz),
            DType::F8E8M0FNU => (8, 0, 127, Specials::E8M0),
            _ => return None,
        };
        Some(MiniFloat { exp_bits, man_bits, bias, specials })
    }

    fn sign_shift(&self) -> u32 {
        self.exp_bits + self.man_bits
    }

    fn num_codes(&self) -> u32 {
        match self.specials {
            Specials::E8M0 => 256,
            _ => 1 << (self.sign_shift() + 1),
        }
    }

    fn decode(&self, code: u8) -> f64 {
        let code = code as u32;
        if self.specials == Specials::E8M0 {
            return if code == 0xff { f64::NAN } else { 2f64.powi(code as i32 - 127) };
        }
        let sign = (code >> self.sign_shift()) & 1;
        let exp = (code >> self.man_bits) & ((1 << self.exp_bits) - 1);
        let man = code & ((1 << self.man_bits) - 1);
        let max_exp = (1 << self.exp_bits) - 1;
        let magnitude_bits = code & ((1 << self.sign_shift()) - 1);
        match self.specials {
            Specials::Ieee if exp == max_exp => {
                let v = if man == 0 { f64::INFINITY } else { f64::NAN };
                return if sign == 1 { -v } else { v };
            }
            // Its sign kept, as XLA widens it (0xff is -NaN).
            Specials::Fn { has_nan: true } if magnitude_bits == (1 << self.sign_shift()) - 1 => {
                return if sign == 1 { -f64::NAN } else { f64::NAN };
            }
            Specials::Fnuz if sign == 1 && magnitude_bits == 0 => return f64::NAN,
            _ => {}
        }
        let scale = 2f64.powi(-(self.man_bits as i32));
        let v = if exp == 0 {
            man as f64 * scale * 2f64.powi(1 - self.bias)
        } else {
            (1.0 + man as f64 * scale) * 2f64.powi(exp as i32 - self.bias)
        };
        if sign == 1 {
            -v
        } else {
            v
        }
    }

    /// Non-negative finite values with their codes, ascending, plus one "overflow"
    /// entry one ulp above the largest (code `u16::MAX` marks it).
    fn encoding_table(&self) -> Vec<(f64, u16)> {
        let mut res: Vec<(f64, u16)> = (0..self.num_codes() / 2)
            .map(|c| (self.decode(c as u8), c as u16))
            .filter(|(v, _)| v.is_finite())
            .collect();
        if self.specials == Specials::E8M0 {
            res = (0..255u32).map(|c| (self.decode(c as u8), c as u16)).collect();
        }
        res.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (max, max_code) = *res.last().expect("every format has finite values");
        let ulp = max - res[res.len() - 2].0;
        res.push((max + ulp, u16::MAX - (1 - (max_code + 1) % 2)));
        res
    }

    fn nan_code(&self) -> u8 {
        match self.specials {
            Specials::Ieee => ((1u32 << (self.sign_shift() + 1)) - 1) as u8,
            Specials::Fn { .. } => ((1u32 << self.sign_shift()) - 1) as u8,
            Specials::Fnuz => (1u32 << self.sign_shift()) as u8,
            Specials::E8M0 => 0xff,
        }
    }

    fn overflow_code(&self, negative: bool) -> u8 {
        let sign = (negative as u32) << self.sign_shift();
        match self.specials {
            Specials::Ieee => {
                let inf = ((1u32 << self.exp_bits) - 1) << self.man_bits;
                (inf | sign) as u8
            }
            // No NaN and no infinity: XLA saturates to the largest magnitude (7.0 and inf are
            // 6.0 in e2m1fn).
            Specials::Fn { has_nan: false } => (((1u32 << self.sign_shift()) - 1) | sign) as u8,
            // XLA keeps the sign: -500 is 0xff in e4m3fn.
            Specials::Fn { has_nan: true } => (self.nan_code() as u32 | sign) as u8,
            _ => self.nan_code(),
        }
    }

    /// The pattern XLA converts NaN `x` to: its sign kept where the format has one per sign,
    /// and in the IEEE-like formats the top bits of its payload (a quiet NaN is `0x7e` in e5m2).
    fn nan_of(&self, x: f64) -> u8 {
        let sign = (x.is_sign_negative() as u32) << self.sign_shift();
        match self.specials {
            Specials::Ieee => {
                let mut man = ((x.to_bits() >> (52 - self.man_bits)) as u32) & ((1 << self.man_bits) - 1);
                if man == 0 {
                    man = 1 << self.man_bits.saturating_sub(1);
                }
                let exp = ((1u32 << self.exp_bits) - 1) << self.man_bits;
                (sign | exp | man) as u8
            }
            Specials::Fn { has_nan: true } => (self.nan_code() as u32 | sign) as u8,
            // A format without NaN: XLA gives the sign bit alone (-0 in e2m1fn), whatever the
            // NaN's sign.
            Specials::Fn { has_nan: false } => (1u32 << self.sign_shift()) as u8,
            _ => self.nan_code(),
        }
    }

    /// `e8m0fnu` as XLA converts an f32 to it: the f32's exponent, plus one where the
    /// mantissa is at least half (ties away from zero, unlike every other format); an f32
    /// subnormal `m * 2^-149` rounds up to 2^-126 only above the half (2^-127 is code 0).
    /// Zero, negative values, NaN and what rounds past 2^127 are NaN.
    fn encode_e8m0(&self, x: f64) -> u8 {
        let v = x as f32;
        if v.is_nan() || v <= 0.0 || v.is_infinite() {
            return self.nan_code();
        }
        let bits = v.to_bits();
        let exp = bits >> 23;
        let man = bits & 0x7f_ffff;
        let code = if exp == 0 { u32::from(man > 0x40_0000) } else { exp + u32::from(man >= 0x40_0000) };
        code.min(0xff) as u8
    }

    /// Rounds `x` to nearest (ties to the even code).
    fn encode(&self, table: &[(f64, u16)], x: f64) -> u8 {
        if x.is_nan() {
            return self.nan_of(x);
        }
        let negative = x.is_sign_negative();
        if self.specials == Specials::E8M0 {
            return self.encode_e8m0(x);
        }
        let mag = x.abs();
        let pos = table.partition_point(|(v, _)| *v < mag);
        let code = if pos == 0 {
            table[0].1
        } else if pos == table.len() {
            u16::MAX
        } else {
            let (lo, lo_code) = table[pos - 1];
            let (hi, hi_code) = table[pos];
            if mag == hi {
                hi_code
            } else if mag - lo < hi - mag {
                lo_code
            } else if mag - lo > hi - mag {
                hi_code
            } else if lo_code % 2 == 0 {
                lo_code
            } else {
                hi_code
            }
        };
        if code >= u16::MAX - 1 {
            return self.overflow_code(negative);
        }
        let code = code as u32;
        let unsigned_zero = self.specials == Specials::Fnuz && code == 0;
        let sign_allowed = self.specials != Specials::E8M0 && !unsigned_zero;
        (code | (((negative && sign_allowed) as u32) << self.sign_shift())) as u8
    }
}

/// Whether XLA:CPU's denormal flushing applies to converting `from` to `to`: it converts
/// between bf16 and f32 with integer bit operations, which keep subnormals
/// (`jnp.float32(1e-39).astype(jnp.bfloat16)` stays subnormal); every other conversion goes
/// through an f32 <-> f64 step or arithmetic that flushes (`bf16 -> f64`, `f64 -> bf16` and
/// `f32 -> f64` of 1e-39 give 0 under JAX with x64).
pub(crate) fn flushes_subnormals(from: DType, to: DType) -> bool {
    // `f32 <-> e8m0fnu` works on the f32's bits too: 1.25 * 2^-127 is 2^-126, not NaN, and
    // code 0 widens to the subnormal 2^-127.
    let bit_level = from == to
        || matches!(
            (from, to),
            (DType::BF16, DType::F32)
                | (DType::F32, DType::BF16)
                | (DType::F32, DType::F8E8M0FNU)
                | (DType::F8E8M0FNU, DType::F32)
        );
    !bit_level
}

/// `stochastic-convert(x, random)` from float type `from` to a signed integer type `to`, as
/// XLA's operation semantics and `StochasticConvertDecomposer` define it: the magnitude's
/// integer part is rounded up where the unsigned `random` (of `from`'s width) is below the
/// fraction scaled to `random`'s range (`fraction * 2^width`, truncated), the sign is put back,
/// NaN gives 0, and values at or past the integer limits (each rounded to `from` first) saturate.
pub fn stochastic_convert(data: &AD, from: DType, random: &AD, random_type: DType, to: DType) -> OpResult<AD> {
    if !to.is_signed_integer() || to.bit_width() < 8 {
        return unsupported(format!("stochastic-convert to {to} (XLA defines it to signed integers only)"));
    }
    let (Wide::F(x), Wide::I(r)) = (widen(data, from)?, widen(random, random_type)?) else {
        return invalid("stochastic-convert takes a float operand and unsigned random bits");
    };
    if x.len() != r.len() {
        return invalid("stochastic-convert's operands differ in size");
    }
    let bits = to.bit_width();
    let (min, max) = (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1);
    // The limits as the float type holds them (`-2^31` is `-inf` in f16).
    let limit = |v: i128| -> OpResult<f64> {
        match widen(&from_f64(&[v as f64], from)?, from)? {
            Wide::F(w) => Ok(w[0]),
            _ => invalid("a float limit"),
        }
    };
    let (min_f, max_f) = (limit(min)?, limit(max)?);
    let scale = 2f64.powi(random_type.bit_width() as i32);
    let res: Vec<i128> = x
        .iter()
        .zip(&r)
        .map(|(&x, &r)| {
            if x.is_nan() {
                0
            } else if x <= min_f {
                min
            } else if x >= max_f {
                max
            } else {
                let magnitude = x.abs();
                let truncated = magnitude.floor();
                let fixed = ((magnitude - truncated) * scale).trunc() as i128;
                let int = truncated as i128 + i128::from(r < fixed);
                if x < 0.0 {
                    -int
                } else {
                    int
                }
            }
        })
        .collect();
    from_i128(&res, to)
}
