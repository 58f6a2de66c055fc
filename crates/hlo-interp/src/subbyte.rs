//! The bit-level ops of 2- and 4-bit integers, which see only the type's own bits.
//!
//! Sub-byte integers are stored a byte per element, sign-extended (`s4`) or zero-extended
//! (`u4`), and every other op computes on that byte and wraps the result to the width
//! afterwards. Population count, leading zeros and shifts cannot: `clz` of `s4` 2 is 2, not 6,
//! and `u4` 8 shifted right arithmetically is 12 (bit 3 is its sign, as XLA treats it). Shift
//! amounts are read as unsigned; shifting by the width or more gives 0, or the sign bits for
//! an arithmetic right shift.

use crate::array::wrap_subbyte;
use hlo_ir::{ArrayData, BinaryOp, DType, Op, UnaryOp};

/// The result of `op` on sub-byte integer operands, or `None` when `op` is not one of these
/// bit-level ops or the type is not a sub-byte integer.
pub(crate) fn bit_op(op: &Op, dtype: DType, ops: &[&ArrayData]) -> Option<ArrayData> {
    let width = dtype.bit_width();
    if !dtype.is_integer() || width >= 8 {
        return None;
    }
    let mask = (1u8 << width) - 1;
    let bits = |d: &ArrayData| -> Option<Vec<u8>> {
        match d {
            ArrayData::S8(v) => Some(v.iter().map(|&x| x as u8 & mask).collect()),
            ArrayData::U8(v) => Some(v.iter().map(|&x| x & mask).collect()),
            _ => None,
        }
    };
    // The w-bit pattern `b` read as a signed value.
    let signed = |b: u8| -> i8 { ((b << (8 - width)) as i8) >> (8 - width) };
    let res: Vec<u8> = match op {
        Op::Unary(UnaryOp::PopulationCount) => bits(ops[0])?.iter().map(|b| b.count_ones() as u8).collect(),
        Op::Unary(UnaryOp::Clz) => bits(ops[0])?.iter().map(|b| (b.leading_zeros() - (8 - width)) as u8).collect(),
        Op::Binary(b @ (BinaryOp::ShiftLeft | BinaryOp::ShiftRightLogical | BinaryOp::ShiftRightArithmetic)) => {
            let (x, s) = (bits(ops[0])?, bits(ops[1])?);
            let n = x.len().max(s.len());
            let at = |v: &[u8], i: usize| if v.len() == 1 { v[0] } else { v[i] };
            (0..n)
                .map(|i| {
                    let (x, s) = (at(&x, i), at(&s, i) as u32);
                    let big = s >= width;
                    match b {
                        BinaryOp::ShiftLeft if big => 0,
                        BinaryOp::ShiftLeft => (x << s) & mask,
                        BinaryOp::ShiftRightLogical if big => 0,
                        BinaryOp::ShiftRightLogical => x >> s,
                        _ => (signed(x) >> s.min(width - 1)) as u8 & mask,
                    }
                })
                .collect()
        }
        _ => return None,
    };
    let mut data = if dtype.is_signed_integer() {
        ArrayData::S8(res.into_iter().map(|b| b as i8).collect())
    } else {
        ArrayData::U8(res)
    };
    wrap_subbyte(dtype, &mut data);
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s4(v: &[i8]) -> ArrayData {
        ArrayData::S8(v.to_vec())
    }

    fn u4(v: &[u8]) -> ArrayData {
        ArrayData::U8(v.to_vec())
    }

    /// XLA:CPU's results (its int4 execution tests, run through JAX 0.8.3).
    #[test]
    fn bit_ops_see_only_the_types_bits() {
        let srl = Op::Binary(BinaryOp::ShiftRightLogical);
        let sra = Op::Binary(BinaryOp::ShiftRightArithmetic);
        let shl = Op::Binary(BinaryOp::ShiftLeft);
        assert_eq!(bit_op(&srl, DType::S4, &[&s4(&[-1, -7]), &s4(&[1, 7])]), Some(s4(&[7, 0])));
        assert_eq!(bit_op(&sra, DType::U4, &[&u4(&[8, 8, 7]), &u4(&[14, 1, 1])]), Some(u4(&[15, 12, 3])));
        assert_eq!(bit_op(&sra, DType::S4, &[&s4(&[-8, 7]), &s4(&[-1, 4])]), Some(s4(&[-1, 0])));
        assert_eq!(bit_op(&shl, DType::S4, &[&s4(&[3, 1]), &s4(&[2, 4])]), Some(s4(&[-4, 0])));
        let clz = Op::Unary(UnaryOp::Clz);
        assert_eq!(bit_op(&clz, DType::U4, &[&u4(&[14, 1, 0])]), Some(u4(&[0, 3, 4])));
        assert_eq!(bit_op(&clz, DType::S4, &[&s4(&[2, -1])]), Some(s4(&[2, 0])));
        let popcnt = Op::Unary(UnaryOp::PopulationCount);
        assert_eq!(bit_op(&popcnt, DType::S4, &[&s4(&[-6, -1])]), Some(s4(&[2, 4])));
        assert_eq!(bit_op(&popcnt, DType::S8, &[&s4(&[-1])]), None);
    }
}
