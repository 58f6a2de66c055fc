//! Literal helpers for tests and the CLI: raw little-endian bytes and random inputs.
//!
//! Bytes are always in row-major order of the logical dimensions (numpy's C order),
//! whatever layout the shape carries: that is what `.npy` files and `--random-inputs`
//! need, and the interpreter's literals are stored the same way.

use crate::convert::{from_le_bytes, to_le_bytes};
use crate::error::InterpError;
use half::{bf16, f16};
use hlo_ir::{ArrayData, ArrayShape, DType, Literal, LiteralData};

/// A literal of `shape` read from little-endian, row-major `bytes`
/// (`dtype.byte_size()` bytes per element; sub-byte types take one byte each).
pub fn literal_from_bytes(shape: &ArrayShape, bytes: &[u8]) -> Result<Literal, InterpError> {
    let n = shape.num_elements() as usize;
    let want = n * shape.dtype.byte_size();
    if bytes.len() != want {
        return Err(InterpError::Literal(format!("{shape} needs {want} bytes, got {}", bytes.len())));
    }
    Ok(Literal::array(shape.clone(), from_le_bytes(shape.dtype, bytes)))
}

/// The little-endian, row-major bytes of an array literal.
pub fn literal_to_bytes(lit: &Literal) -> Result<Vec<u8>, InterpError> {
    match &lit.data {
        LiteralData::Array(data) => Ok(to_le_bytes(data)),
        _ => Err(InterpError::Literal(format!("cannot turn {} into bytes: not an array", lit.shape))),
    }
}

/// SplitMix64: tiny, deterministic, and good enough for test inputs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1) with 24 random bits (exact in f32).
    fn unit(&mut self) -> f32 {
        ((self.next() >> 40) as f32) * (2.0 / (1u64 << 24) as f32) - 1.0
    }

    /// Uniform integer in [lo, hi).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }
}

/// A deterministic pseudo-random literal for `--random-inputs`: floats uniform in
/// [-1, 1), signed integers in [-8, 8), unsigned in [0, 16) (narrower for sub-byte
/// types), preds fair coin flips. The same `(shape, seed)` always gives the same literal.
pub fn random_literal(shape: &ArrayShape, seed: u64) -> Literal {
    let n = shape.num_elements() as usize;
    let mut rng = SplitMix(seed ^ 0x005e_ed0f_1a7e_u64);
    let bits = shape.dtype.bit_width();
    let (slo, shi) = if bits < 8 { (-(1i64 << (bits - 1)), 1i64 << (bits - 1)) } else { (-8, 8) };
    let uhi = if bits < 8 { 1i64 << bits } else { 16 };
    let mut ints = |lo: i64, hi: i64| (0..n).map(|_| rng.range(lo, hi)).collect::<Vec<i64>>();
    let data = match shape.dtype {
        DType::Pred => ArrayData::Pred(ints(0, 2).into_iter().map(|x| x == 1).collect()),
        DType::S2 | DType::S4 | DType::S8 => ArrayData::S8(ints(slo, shi).into_iter().map(|x| x as i8).collect()),
        DType::S16 => ArrayData::S16(ints(slo, shi).into_iter().map(|x| x as i16).collect()),
        DType::S32 => ArrayData::S32(ints(slo, shi).into_iter().map(|x| x as i32).collect()),
        DType::S64 => ArrayData::S64(ints(slo, shi)),
        DType::U2 | DType::U4 | DType::U8 => ArrayData::U8(ints(0, uhi).into_iter().map(|x| x as u8).collect()),
        DType::U16 => ArrayData::U16(ints(0, uhi).into_iter().map(|x| x as u16).collect()),
        DType::U32 => ArrayData::U32(ints(0, uhi).into_iter().map(|x| x as u32).collect()),
        DType::U64 => ArrayData::U64(ints(0, uhi).into_iter().map(|x| x as u64).collect()),
        DType::F16 => ArrayData::F16((0..n).map(|_| f16::from_f32(rng.unit())).collect()),
        DType::BF16 => ArrayData::BF16((0..n).map(|_| bf16::from_f32(rng.unit())).collect()),
        DType::F32 => ArrayData::F32((0..n).map(|_| rng.unit()).collect()),
        DType::F64 => ArrayData::F64((0..n).map(|_| rng.unit() as f64).collect()),
        DType::C64 => ArrayData::C64((0..n).map(|_| [rng.unit(), rng.unit()]).collect()),
        DType::C128 => ArrayData::C128((0..n).map(|_| [rng.unit() as f64, rng.unit() as f64]).collect()),
        ty => {
            // 8- and 4-bit floats: encode f32 uniforms through `convert`.
            let src = ArrayData::F32((0..n).map(|_| rng.unit()).collect());
            crate::convert::convert(&src, DType::F32, ty).unwrap_or_else(|_| ArrayData::zeros(ty, n))
        }
    };
    Literal::array(shape.clone(), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_in_row_major_order() {
        let shape = ArrayShape::new(DType::S16, vec![2, 2]);
        let lit = literal_from_bytes(&shape, &[1, 0, 2, 0, 0xff, 0xff, 4, 1]).unwrap();
        assert_eq!(lit.array_data(), Some(&ArrayData::S16(vec![1, 2, -1, 260])));
        assert_eq!(literal_to_bytes(&lit).unwrap(), vec![1, 0, 2, 0, 0xff, 0xff, 4, 1]);
        assert!(literal_from_bytes(&shape, &[0; 7]).is_err());
    }

    #[test]
    fn random_literals_are_deterministic_and_in_range() {
        let shape = ArrayShape::new(DType::F32, vec![1000]);
        let a = random_literal(&shape, 3);
        assert_eq!(a, random_literal(&shape, 3));
        assert_ne!(a, random_literal(&shape, 4));
        let Some(ArrayData::F32(v)) = a.array_data() else { panic!("f32 data") };
        assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
        let ints = random_literal(&ArrayShape::new(DType::S32, vec![1000]), 3);
        let Some(ArrayData::S32(v)) = ints.array_data() else { panic!("s32 data") };
        assert!(v.iter().all(|x| (-8..8).contains(x)));
        let preds = random_literal(&ArrayShape::new(DType::Pred, vec![1000]), 3);
        let Some(ArrayData::Pred(v)) = preds.array_data() else { panic!("pred data") };
        assert!(v.iter().any(|&b| b) && v.iter().any(|&b| !b));
    }
}
