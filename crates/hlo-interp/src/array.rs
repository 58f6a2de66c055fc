//! Type-generic helpers over [`ArrayData`]: gathers by index maps, scatters, index reads.
//!
//! The macros here match on the storage variant once and run a generic body over the
//! typed `Vec<T>`, so that shape ops move elements with a tight loop per variant instead
//! of dispatching per element.

use crate::error::{invalid, OpResult};
use hlo_ir::{ArrayData, ArrayShape, DType, Literal, Shape};

/// Rebuilds `ArrayData` of the same variant from an expression over the typed vector.
macro_rules! map_data {
    ($data:expr, $v:ident => $e:expr) => {{
        use hlo_ir::ArrayData as AD;
        match $data {
            AD::Pred($v) => AD::Pred($e),
            AD::S8($v) => AD::S8($e),
            AD::S16($v) => AD::S16($e),
            AD::S32($v) => AD::S32($e),
            AD::S64($v) => AD::S64($e),
            AD::U8($v) => AD::U8($e),
            AD::U16($v) => AD::U16($e),
            AD::U32($v) => AD::U32($e),
            AD::U64($v) => AD::U64($e),
            AD::F16($v) => AD::F16($e),
            AD::BF16($v) => AD::BF16($e),
            AD::F32($v) => AD::F32($e),
            AD::F64($v) => AD::F64($e),
            AD::C64($v) => AD::C64($e),
            AD::C128($v) => AD::C128($e),
            AD::Bits($v) => AD::Bits($e),
        }
    }};
}

/// Like [`map_data!`] over two operands of the same variant; `None` when they differ.
macro_rules! map_data2 {
    ($a:expr, $b:expr, $x:ident, $y:ident => $e:expr) => {{
        use hlo_ir::ArrayData as AD;
        match ($a, $b) {
            (AD::Pred($x), AD::Pred($y)) => Some(AD::Pred($e)),
            (AD::S8($x), AD::S8($y)) => Some(AD::S8($e)),
            (AD::S16($x), AD::S16($y)) => Some(AD::S16($e)),
            (AD::S32($x), AD::S32($y)) => Some(AD::S32($e)),
            (AD::S64($x), AD::S64($y)) => Some(AD::S64($e)),
            (AD::U8($x), AD::U8($y)) => Some(AD::U8($e)),
            (AD::U16($x), AD::U16($y)) => Some(AD::U16($e)),
            (AD::U32($x), AD::U32($y)) => Some(AD::U32($e)),
            (AD::U64($x), AD::U64($y)) => Some(AD::U64($e)),
            (AD::F16($x), AD::F16($y)) => Some(AD::F16($e)),
            (AD::BF16($x), AD::BF16($y)) => Some(AD::BF16($e)),
            (AD::F32($x), AD::F32($y)) => Some(AD::F32($e)),
            (AD::F64($x), AD::F64($y)) => Some(AD::F64($e)),
            (AD::C64($x), AD::C64($y)) => Some(AD::C64($e)),
            (AD::C128($x), AD::C128($y)) => Some(AD::C128($e)),
            (AD::Bits($x), AD::Bits($y)) => Some(AD::Bits($e)),
            _ => None,
        }
    }};
}

pub(crate) use {map_data, map_data2};

/// `out[i] = v[idx[i]]`.
pub fn take_vec<T: Copy>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| v[i]).collect()
}

/// `out[i] = v[idx[i]]`, or `fill` where `idx[i] == usize::MAX`.
pub fn take_fill_vec<T: Copy>(v: &[T], idx: &[usize], fill: T) -> Vec<T> {
    idx.iter().map(|&i| if i == usize::MAX { fill } else { v[i] }).collect()
}

/// Gathers elements of `data` through a separable map (see [`crate::index::visit_rows`]).
pub fn take_map(data: &ArrayData, out_dims: &[i64], terms: &[Vec<i64>]) -> ArrayData {
    map_data!(data, v => crate::index::take_separable(v, out_dims, terms))
}

/// Gathers elements of `data` by source offsets.
pub fn take(data: &ArrayData, idx: &[usize]) -> ArrayData {
    map_data!(data, v => take_vec(v, idx))
}

/// Gathers elements of `data` by source offsets, using the scalar `fill` for `usize::MAX`.
pub fn take_fill(data: &ArrayData, idx: &[usize], fill: &ArrayData) -> OpResult<ArrayData> {
    match map_data2!(data, fill, v, f => take_fill_vec(v, idx, f[0])) {
        Some(res) => Ok(res),
        None => invalid("padding value has a different element type than the operand"),
    }
}

/// `dst[dst_idx[i]] = src[i]` for every `i`.
pub fn assign(dst: &mut ArrayData, dst_idx: &[usize], src: &ArrayData) -> OpResult<()> {
    let ok = map_data2!(dst, src, d, s => {
        for (&i, &x) in dst_idx.iter().zip(s.iter()) {
            d[i] = x;
        }
        Vec::new()
    });
    match ok {
        Some(_) => Ok(()),
        None => invalid("update has a different element type than the operand"),
    }
}

/// A vector of `n` copies of the single element of `scalar`.
pub fn splat(scalar: &ArrayData, n: usize) -> ArrayData {
    map_data!(scalar, v => vec![v[0]; n])
}

/// Integer elements widened to `i64` (for index operands); `None` for non-integers.
pub fn to_i64s(data: &ArrayData) -> Option<Vec<i64>> {
    Some(match data {
        ArrayData::S8(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::S16(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::S32(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::S64(v) => v.clone(),
        ArrayData::U8(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::U16(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::U32(v) => v.iter().map(|&x| x as i64).collect(),
        // Indices beyond i64::MAX are out of range anyway; saturate so clamping still works.
        ArrayData::U64(v) => v.iter().map(|&x| x.min(i64::MAX as u64) as i64).collect(),
        _ => return None,
    })
}

/// The array payload of a literal, or an error naming what it was instead.
pub fn array_of(lit: &Literal) -> OpResult<(&ArrayShape, &ArrayData)> {
    match (&lit.shape, lit.array_data()) {
        (Shape::Array(shape), Some(data)) => Ok((shape, data)),
        _ => invalid(format!("expected an array operand, got {}", lit.shape)),
    }
}

/// Reads a scalar integer operand (a dynamic-slice start index, a conditional selector).
pub fn scalar_i64(lit: &Literal) -> OpResult<i64> {
    let (_, data) = array_of(lit)?;
    match (to_i64s(data), data) {
        (Some(v), _) if v.len() == 1 => Ok(v[0]),
        (_, ArrayData::Pred(v)) if v.len() == 1 => Ok(v[0] as i64),
        _ => invalid("expected an integer scalar"),
    }
}

/// An array literal with the instruction's shape and the given data.
pub fn make(shape: &ArrayShape, data: ArrayData) -> Literal {
    Literal { shape: Shape::Array(shape.clone()), data: hlo_ir::LiteralData::Array(data) }
}

/// Re-wraps sub-byte integers (`s2`, `s4`, `u2`, `u4`, widened into bytes) to their width,
/// so that arithmetic on them wraps as it would in the narrow type.
pub fn wrap_subbyte(dtype: DType, data: &mut ArrayData) {
    let bits = dtype.bit_width();
    if bits >= 8 {
        return;
    }
    match data {
        ArrayData::S8(v) => {
            let shift = 8 - bits;
            v.iter_mut().for_each(|x| *x = ((*x as u8) << shift) as i8 >> shift);
        }
        ArrayData::U8(v) => {
            let mask = ((1u16 << bits) - 1) as u8;
            v.iter_mut().for_each(|x| *x &= mask);
        }
        _ => {}
    }
}

/// Checks that every dimension number in `dims` names a dimension of a rank-`rank` array.
pub fn check_dims(dims: &[i64], rank: usize, what: &str) -> OpResult<()> {
    match dims.iter().find(|&&d| d < 0 || d as usize >= rank) {
        Some(d) => invalid(format!("{what} dimension {d} out of range for rank {rank}")),
        None => Ok(()),
    }
}
