//! Shape ops: each computes a source offset per output element (see [`crate::index`])
//! and gathers, so they move elements of any type with one typed loop.
//!
//! - `dynamic-slice` and `dynamic-update-slice` clamp their start indices so the slice
//!   fits: `clamp(start, 0, dim - size)`.
//! - `pad` handles negative low/high padding (cropping) and interior padding.
//! - `bitcast` reinterprets the physical buffer: operand and result are each put in
//!   physical order by their layouts' `minor_to_major`, so a bitcast that changes the
//!   layout moves elements exactly as the raw memory would.

use crate::array::{array_of, assign, take_fill, take_map, to_i64s};
use crate::error::{invalid, OpResult};
use crate::index::{affine_terms, inverse_permutation, separable_map, strides, transpose_terms, FILL};
use hlo_ir::{ArrayData, ArrayShape, Literal, PadDim, SliceDim};

/// `iota`: the coordinate along `dimension`, converted to the element type.
pub fn iota(out: &ArrayShape, dimension: i64) -> OpResult<ArrayData> {
    let d = dimension as usize;
    if d >= out.rank() {
        return invalid(format!("iota dimension {dimension} out of range"));
    }
    let terms: Vec<Vec<i64>> = (0..out.rank())
        .map(|k| if k == d { affine_terms(out.dims[k], 0, 1, 1) } else { vec![0; out.dims[k].max(0) as usize] })
        .collect();
    let coords = separable_map(&out.dims, &terms);
    let wide = ArrayData::S64(coords.into_iter().map(|c| c as i64).collect());
    crate::convert::convert(&wide, hlo_ir::DType::S64, out.dtype)
}

/// `broadcast`: operand dimension `k` becomes output dimension `dimensions[k]`.
pub fn broadcast(x: &Literal, dimensions: &[i64], out: &ArrayShape) -> OpResult<ArrayData> {
    let (shape, data) = array_of(x)?;
    if dimensions.len() != shape.rank() {
        return invalid("broadcast dimensions do not match the operand rank");
    }
    if shape.num_elements() == 1 {
        return Ok(crate::array::splat(data, out.num_elements() as usize));
    }
    let src_strides = strides(&shape.dims);
    let mut terms: Vec<Vec<i64>> = out.dims.iter().map(|&n| vec![0; n.max(0) as usize]).collect();
    for (k, &d) in dimensions.iter().enumerate() {
        let d = d as usize;
        if d >= out.rank() || out.dims[d] != shape.dims[k] {
            return invalid("broadcast dimension sizes do not match");
        }
        terms[d] = affine_terms(out.dims[d], 0, 1, src_strides[k]);
    }
    Ok(take_map(data, &out.dims, &terms))
}

/// `reshape`: row-major order is unchanged, so the elements are too.
pub fn reshape(x: &Literal, out: &ArrayShape) -> OpResult<ArrayData> {
    let (shape, data) = array_of(x)?;
    if shape.num_elements() != out.num_elements() {
        return invalid("reshape changes the number of elements");
    }
    Ok(data.clone())
}

/// `transpose`: output dimension `d` is operand dimension `perm[d]`.
pub fn transpose(x: &Literal, perm: &[i64]) -> OpResult<ArrayData> {
    let (shape, data) = array_of(x)?;
    check_permutation(perm, shape.rank())?;
    let (dims, terms) = transpose_terms(&shape.dims, perm);
    Ok(take_map(data, &dims, &terms))
}

fn check_permutation(perm: &[i64], rank: usize) -> OpResult<()> {
    let mut seen = vec![false; rank];
    if perm.len() != rank {
        return invalid("permutation has the wrong length");
    }
    for &p in perm {
        if p < 0 || p as usize >= rank || std::mem::replace(&mut seen[p as usize], true) {
            return invalid("not a permutation");
        }
    }
    Ok(())
}

/// `reverse` along `dimensions`.
pub fn reverse(x: &Literal, dimensions: &[i64]) -> OpResult<ArrayData> {
    let (shape, data) = array_of(x)?;
    let st = strides(&shape.dims);
    let terms: Vec<Vec<i64>> = (0..shape.rank())
        .map(|d| {
            let n = shape.dims[d];
            if dimensions.contains(&(d as i64)) {
                affine_terms(n, n - 1, -1, st[d])
            } else {
                affine_terms(n, 0, 1, st[d])
            }
        })
        .collect();
    Ok(take_map(data, &shape.dims, &terms))
}

/// `slice` with start, limit and stride per dimension.
pub fn slice(x: &Literal, dims: &[SliceDim], out: &ArrayShape) -> OpResult<ArrayData> {
    let (shape, data) = array_of(x)?;
    if dims.len() != shape.rank() || out.rank() != shape.rank() {
        return invalid("slice rank mismatch");
    }
    let st = strides(&shape.dims);
    let mut terms = Vec::with_capacity(dims.len());
    for (d, s) in dims.iter().enumerate() {
        let n = out.dims[d];
        if s.stride < 1 || s.start < 0 || (n > 0 && s.start + (n - 1) * s.stride >= shape.dims[d]) {
            return invalid(format!("slice [{}:{}:{}] out of bounds", s.start, s.limit, s.stride));
        }
        terms.push(affine_terms(n, s.start, s.stride, st[d]));
    }
    Ok(take_map(data, &out.dims, &terms))
}

/// Start indices read from scalar operands and clamped so that `sizes` fit.
/// The start indices, one scalar per dimension or (XLA's legacy form) one index vector,
/// clamped so that the window fits.
fn clamped_starts(shape: &ArrayShape, starts: &[&Literal], sizes: &[i64]) -> OpResult<Vec<i64>> {
    let legacy_vector = starts.len() == 1 && shape.rank() != 1;
    if (starts.len() != shape.rank() && !legacy_vector) || sizes.len() != shape.rank() {
        return invalid("need one start index and size per dimension");
    }
    let mut values = Vec::with_capacity(shape.rank());
    for s in starts {
        let (_, idx) = array_of(s)?;
        match to_i64s(idx) {
            Some(v) if v.len() == 1 || legacy_vector => values.extend(v),
            _ => return invalid("start indices must be integer scalars"),
        }
    }
    if values.len() != shape.rank() {
        return invalid("need one start index per dimension");
    }
    let mut res = Vec::with_capacity(values.len());
    for (d, v) in values.into_iter().enumerate() {
        if sizes[d] > shape.dims[d] || sizes[d] < 0 {
            return invalid("slice size larger than the operand");
        }
        res.push(v.clamp(0, shape.dims[d] - sizes[d]));
    }
    Ok(res)
}

/// `dynamic-slice` with clamped starts.
pub fn dynamic_slice(x: &Literal, starts: &[&Literal], sizes: &[i64]) -> OpResult<ArrayData> {
    let (shape, data) = array_of(x)?;
    let starts = clamped_starts(shape, starts, sizes)?;
    let st = strides(&shape.dims);
    let terms: Vec<Vec<i64>> = (0..shape.rank()).map(|d| affine_terms(sizes[d], starts[d], 1, st[d])).collect();
    Ok(take_map(data, sizes, &terms))
}

/// `dynamic-update-slice` with clamped starts.
pub fn dynamic_update_slice(x: &Literal, update: &Literal, starts: &[&Literal]) -> OpResult<ArrayData> {
    let (shape, data) = array_of(x)?;
    let (ushape, udata) = array_of(update)?;
    if ushape.rank() != shape.rank() {
        return invalid("update rank differs from the operand's");
    }
    let starts = clamped_starts(shape, starts, &ushape.dims)?;
    let st = strides(&shape.dims);
    let terms: Vec<Vec<i64>> = (0..shape.rank()).map(|d| affine_terms(ushape.dims[d], starts[d], 1, st[d])).collect();
    let mut res = data.clone();
    assign(&mut res, &separable_map(&ushape.dims, &terms), udata)?;
    Ok(res)
}

/// `concatenate` along `dimension`.
pub fn concatenate(ops: &[&Literal], dimension: i64, out: &ArrayShape) -> OpResult<ArrayData> {
    let d = dimension as usize;
    if d >= out.rank() {
        return invalid("concatenate dimension out of range");
    }
    let mut res = ArrayData::zeros(out.dtype, out.num_elements() as usize);
    let st = strides(&out.dims);
    let mut offset = 0i64;
    for op in ops {
        let (shape, data) = array_of(op)?;
        if shape.rank() != out.rank() {
            return invalid("concatenate operands differ in rank");
        }
        let terms: Vec<Vec<i64>> =
            (0..shape.rank()).map(|k| affine_terms(shape.dims[k], if k == d { offset } else { 0 }, 1, st[k])).collect();
        if offset + shape.dims[d] > out.dims[d] {
            return invalid("concatenate operands exceed the result");
        }
        assign(&mut res, &separable_map(&shape.dims, &terms), data)?;
        offset += shape.dims[d];
    }
    Ok(res)
}

/// `pad` with low/high (possibly negative) and interior padding.
pub fn pad(x: &Literal, value: &Literal, dims: &[PadDim], out: &ArrayShape) -> OpResult<ArrayData> {
    let (shape, data) = array_of(x)?;
    let (_, fill) = array_of(value)?;
    if dims.len() != shape.rank() || out.rank() != shape.rank() {
        return invalid("padding rank mismatch");
    }
    let st = strides(&shape.dims);
    let mut terms = Vec::with_capacity(dims.len());
    for (d, p) in dims.iter().enumerate() {
        if p.interior < 0 {
            return invalid("negative interior padding");
        }
        let n = shape.dims[d];
        let expect = p.low + p.high + n + (n - 1).max(0) * p.interior;
        if expect != out.dims[d] {
            return invalid(format!("padded size {expect} differs from the result's {}", out.dims[d]));
        }
        let step = p.interior + 1;
        terms.push(
            (0..out.dims[d])
                .map(|o| {
                    // Position in the interior-padded operand, before low padding.
                    let pos = o - p.low;
                    if pos >= 0 && pos % step == 0 && pos / step < n {
                        (pos / step) * st[d]
                    } else {
                        FILL
                    }
                })
                .collect(),
        );
    }
    take_fill(data, &separable_map(&out.dims, &terms), fill)
}

/// Elements of `data` (logical row-major in `shape`) in physical memory order.
fn to_physical(shape: &ArrayShape, data: &ArrayData) -> ArrayData {
    if shape.is_row_major() {
        return data.clone();
    }
    let major_to_minor: Vec<i64> = shape.minor_to_major().into_iter().rev().collect();
    let (dims, terms) = transpose_terms(&shape.dims, &major_to_minor);
    take_map(data, &dims, &terms)
}

/// The inverse of [`to_physical`].
fn from_physical(shape: &ArrayShape, data: &ArrayData) -> ArrayData {
    if shape.is_row_major() {
        return data.clone();
    }
    let major_to_minor: Vec<i64> = shape.minor_to_major().into_iter().rev().collect();
    let physical_dims: Vec<i64> = major_to_minor.iter().map(|&d| shape.dims[d as usize]).collect();
    let (dims, terms) = transpose_terms(&physical_dims, &inverse_permutation(&major_to_minor));
    take_map(data, &dims, &terms)
}

/// `bitcast`: the same physical buffer viewed through another shape and layout.
pub fn bitcast(x: &Literal, out: &ArrayShape) -> OpResult<ArrayData> {
    let (shape, data) = array_of(x)?;
    let in_bits = shape.num_elements() * shape.dtype.bit_width() as u64;
    let out_bits = out.num_elements() * out.dtype.bit_width() as u64;
    if in_bits != out_bits {
        return invalid("bitcast changes the buffer size");
    }
    let physical = to_physical(shape, data);
    let physical = if shape.dtype == out.dtype {
        physical
    } else {
        crate::convert::bitcast_convert(&physical, shape.dtype, out.dtype)?
    };
    Ok(from_physical(out, &physical))
}
