//! `gather` and `scatter` with full dimension numbers, batching dimensions included.
//!
//! Both split their iteration space into a "batch" part (one start index vector per
//! position) and a "window" part (offsets inside the slice). The start offset of each
//! batch position is computed once, the window offsets once, and elements are then
//! addressed by a sum.
//!
//! - `gather` clamps each start index so the whole slice is in bounds, as XLA specifies.
//! - `scatter` skips an update window entirely when any part of it would fall outside
//!   the operand, as XLA's CPU and GPU backends do; windows are applied in row-major
//!   order of the updates, so overlapping updates combine in a defined order.

use crate::array::{array_of, check_dims, make, map_data2, to_i64s};
use crate::error::{invalid, OpResult};
use crate::eval::Interp;
use crate::index::{affine_terms, separable_map, strides};
use crate::scalar::{self, Scalar, ScalarFn};
use crate::scalar_ops::{self as so, Narrow};
use hlo_ir::{ArrayData as AD, ArrayShape, BinaryOp, CompId, GatherDims, Literal, LiteralData, ScatterDims, Shape};

/// How to read start index vectors out of an indices array.
struct IndexReader {
    values: Vec<i64>,
    /// Stride of each batch dimension of the indices array (all dims but the index vector dim).
    batch_strides: Vec<i64>,
    batch_sizes: Vec<i64>,
    /// Stride along the index vector dimension (unused when the vector is implicit).
    vector_stride: i64,
    vector_len: usize,
}

impl IndexReader {
    fn new(shape: &ArrayShape, data: &AD, index_vector_dim: i64) -> OpResult<IndexReader> {
        let Some(values) = to_i64s(data) else {
            return invalid("indices must be integers");
        };
        let rank = shape.rank();
        let ivd = index_vector_dim as usize;
        if index_vector_dim < 0 || ivd > rank {
            return invalid("index_vector_dim out of range");
        }
        let st = strides(&shape.dims);
        let batch: Vec<usize> = (0..rank).filter(|&d| d != ivd).collect();
        Ok(IndexReader {
            values,
            batch_strides: batch.iter().map(|&d| st[d]).collect(),
            batch_sizes: batch.iter().map(|&d| shape.dims[d]).collect(),
            vector_stride: if ivd < rank { st[ivd] } else { 0 },
            vector_len: if ivd < rank { shape.dims[ivd] as usize } else { 1 },
        })
    }

    /// Offsets of each batch position's index vector, in row-major batch order.
    fn vector_offsets(&self) -> Vec<usize> {
        let terms: Vec<Vec<i64>> =
            self.batch_sizes.iter().zip(&self.batch_strides).map(|(&n, &s)| affine_terms(n, 0, 1, s)).collect();
        separable_map(&self.batch_sizes, &terms)
    }

    fn get(&self, offset: usize, k: usize) -> i64 {
        self.values[offset + k * self.vector_stride as usize]
    }
}

/// The position of index-array batch dimension `dim` among its batch dimensions.
fn batch_position(dim: i64, index_vector_dim: i64) -> usize {
    if dim > index_vector_dim {
        dim as usize - 1
    } else {
        dim as usize
    }
}

/// `gather` with XLA's start-index clamping.
pub fn gather(dims: &GatherDims, slice_sizes: &[i64], out: &Shape, ops: &[&Literal]) -> OpResult<Literal> {
    let Shape::Array(out_shape) = out else {
        return invalid("gather returns an array");
    };
    let (shape, data) = array_of(ops[0])?;
    let (ishape, idata) = array_of(ops[1])?;
    let rank = shape.rank();
    if slice_sizes.len() != rank {
        return invalid("need one slice size per operand dimension");
    }
    check_dims(&dims.start_index_map, rank, "start_index_map")?;
    check_dims(&dims.collapsed_slice_dims, rank, "collapsed_slice")?;
    check_dims(&dims.operand_batching_dims, rank, "operand_batching")?;
    check_dims(&dims.offset_dims, out_shape.rank(), "offset")?;
    check_dims(&dims.start_indices_batching_dims, ishape.rank(), "start_indices_batching")?;
    if dims.operand_batching_dims.len() != dims.start_indices_batching_dims.len() {
        return invalid("operand and start-indices batching dimensions differ in number");
    }
    if slice_sizes.iter().zip(&shape.dims).any(|(&s, &d)| s < 0 || s > d) {
        return invalid("slice sizes exceed the operand");
    }
    // A slice with no elements has nothing to put in a non-empty result (XLA cannot
    // compile it either: the collapsed dimension would have to be reshaped away).
    if slice_sizes.contains(&0) && out_shape.num_elements() > 0 {
        return invalid("a slice size of 0 leaves nothing to gather into a non-empty result");
    }
    let reader = IndexReader::new(ishape, idata, dims.index_vector_dim)?;
    if reader.vector_len != dims.start_index_map.len() {
        return invalid("index vector length differs from start_index_map");
    }
    let st = strides(&shape.dims);
    let offset_operand_dims: Vec<usize> = (0..rank)
        .filter(|d| {
            !dims.collapsed_slice_dims.contains(&(*d as i64)) && !dims.operand_batching_dims.contains(&(*d as i64))
        })
        .collect();
    if offset_operand_dims.len() != dims.offset_dims.len() {
        return invalid("offset_dims do not match the non-collapsed slice dimensions");
    }
    let out_rank = out_shape.rank();
    let batch_out_dims: Vec<usize> = (0..out_rank).filter(|d| !dims.offset_dims.contains(&(*d as i64))).collect();
    if batch_out_dims.len() != reader.batch_sizes.len() {
        return invalid("result batch dimensions do not match the indices");
    }
    // Start offset of every batch position.
    let vec_offsets = reader.vector_offsets();
    let batch_st = strides(&reader.batch_sizes);
    let mut bases = Vec::with_capacity(vec_offsets.len());
    let mut start = vec![0i64; rank];
    let mut batch_idx = vec![0i64; reader.batch_sizes.len()];
    for (g, &vo) in vec_offsets.iter().enumerate() {
        crate::index::delinearize(g, &reader.batch_sizes, &mut batch_idx);
        start.iter_mut().for_each(|s| *s = 0);
        for (k, &d) in dims.start_index_map.iter().enumerate() {
            start[d as usize] = reader.get(vo, k);
        }
        for (&od, &id) in dims.operand_batching_dims.iter().zip(&dims.start_indices_batching_dims) {
            start[od as usize] = batch_idx[batch_position(id, dims.index_vector_dim)];
        }
        let mut base = 0i64;
        for d in 0..rank {
            base += start[d].clamp(0, (shape.dims[d] - slice_sizes[d]).max(0)) * st[d];
        }
        bases.push(base as usize);
    }
    // Per result element: which batch position, and the offset inside the slice.
    let mut batch_terms = Vec::with_capacity(out_rank);
    let mut window_terms = Vec::with_capacity(out_rank);
    for d in 0..out_rank {
        let n = out_shape.dims[d];
        if let Some(j) = batch_out_dims.iter().position(|&b| b == d) {
            if n != reader.batch_sizes[j] {
                return invalid("result batch dimension size differs from the indices");
            }
            batch_terms.push(affine_terms(n, 0, 1, batch_st[j]));
            window_terms.push(vec![0; n.max(0) as usize]);
        } else {
            let k = dims.offset_dims.iter().position(|&o| o == d as i64).expect("an offset dim");
            let od = offset_operand_dims[k];
            if n > slice_sizes[od] {
                return invalid("offset dimension larger than the slice");
            }
            batch_terms.push(vec![0; n.max(0) as usize]);
            window_terms.push(affine_terms(n, 0, 1, st[od]));
        }
    }
    let batch_map = separable_map(&out_shape.dims, &batch_terms);
    let window_map = separable_map(&out_shape.dims, &window_terms);
    let src: Vec<usize> = batch_map.iter().zip(&window_map).map(|(&b, &w)| bases[b] + w).collect();
    Ok(make(out_shape, crate::array::take(data, &src)))
}

/// For every update element, the operand offset it combines into (`usize::MAX`: skipped).
fn scatter_targets(
    dims: &ScatterDims,
    shape: &ArrayShape,
    ishape: &ArrayShape,
    idata: &AD,
    ushape: &ArrayShape,
) -> OpResult<Vec<usize>> {
    let rank = shape.rank();
    check_dims(&dims.scatter_dims_to_operand_dims, rank, "scatter_dims_to_operand")?;
    check_dims(&dims.inserted_window_dims, rank, "inserted_window")?;
    check_dims(&dims.input_batching_dims, rank, "input_batching")?;
    check_dims(&dims.update_window_dims, ushape.rank(), "update_window")?;
    check_dims(&dims.scatter_indices_batching_dims, ishape.rank(), "scatter_indices_batching")?;
    if dims.input_batching_dims.len() != dims.scatter_indices_batching_dims.len() {
        return invalid("input and scatter-indices batching dimensions differ in number");
    }
    let reader = IndexReader::new(ishape, idata, dims.index_vector_dim)?;
    if reader.vector_len != dims.scatter_dims_to_operand_dims.len() {
        return invalid("index vector length differs from scatter_dims_to_operand_dims");
    }
    let st = strides(&shape.dims);
    let window_operand_dims: Vec<usize> = (0..rank)
        .filter(|d| {
            !dims.inserted_window_dims.contains(&(*d as i64)) && !dims.input_batching_dims.contains(&(*d as i64))
        })
        .collect();
    if window_operand_dims.len() != dims.update_window_dims.len() {
        return invalid("update_window_dims do not match the operand's window dimensions");
    }
    let urank = ushape.rank();
    let scatter_update_dims: Vec<usize> =
        (0..urank).filter(|d| !dims.update_window_dims.contains(&(*d as i64))).collect();
    if scatter_update_dims.len() != reader.batch_sizes.len() {
        return invalid("update scatter dimensions do not match the indices");
    }
    // Window extent along every operand dimension.
    let mut extent = vec![1i64; rank];
    for (k, &od) in window_operand_dims.iter().enumerate() {
        extent[od] = ushape.dims[dims.update_window_dims[k] as usize];
    }
    let vec_offsets = reader.vector_offsets();
    let batch_st = strides(&reader.batch_sizes);
    let mut bases = Vec::with_capacity(vec_offsets.len());
    let mut start = vec![0i64; rank];
    let mut batch_idx = vec![0i64; reader.batch_sizes.len()];
    for (g, &vo) in vec_offsets.iter().enumerate() {
        crate::index::delinearize(g, &reader.batch_sizes, &mut batch_idx);
        start.iter_mut().for_each(|s| *s = 0);
        for (k, &d) in dims.scatter_dims_to_operand_dims.iter().enumerate() {
            start[d as usize] = reader.get(vo, k);
        }
        for (&od, &id) in dims.input_batching_dims.iter().zip(&dims.scatter_indices_batching_dims) {
            start[od as usize] = batch_idx[batch_position(id, dims.index_vector_dim)];
        }
        let in_bounds = (0..rank).all(|d| start[d] >= 0 && start[d] + extent[d] <= shape.dims[d]);
        bases.push(in_bounds.then(|| (0..rank).map(|d| start[d] * st[d]).sum::<i64>() as usize));
    }
    let mut batch_terms = Vec::with_capacity(urank);
    let mut window_terms = Vec::with_capacity(urank);
    for d in 0..urank {
        let n = ushape.dims[d];
        if let Some(j) = scatter_update_dims.iter().position(|&b| b == d) {
            if n != reader.batch_sizes[j] {
                return invalid("update scatter dimension size differs from the indices");
            }
            batch_terms.push(affine_terms(n, 0, 1, batch_st[j]));
            window_terms.push(vec![0; n.max(0) as usize]);
        } else {
            let k = dims.update_window_dims.iter().position(|&o| o == d as i64).expect("a window dim");
            batch_terms.push(vec![0; n.max(0) as usize]);
            window_terms.push(affine_terms(n, 0, 1, st[window_operand_dims[k]]));
        }
    }
    let batch_map = separable_map(&ushape.dims, &batch_terms);
    let window_map = separable_map(&ushape.dims, &window_terms);
    Ok(batch_map.iter().zip(&window_map).map(|(&b, &w)| bases[b].map_or(usize::MAX, |base| base + w)).collect())
}

fn apply_typed<T: Copy>(res: &mut [T], upd: &[T], targets: &[usize], f: impl Fn(T, T) -> T) -> Vec<T> {
    for (&t, &u) in targets.iter().zip(upd) {
        if t != usize::MAX {
            res[t] = f(res[t], u);
        }
    }
    Vec::new()
}

/// The fast path for one operand and a combiner that is a binary op or "replace".
fn scatter_fast(res: &mut AD, upd: &AD, targets: &[usize], op: Option<BinaryOp>) -> OpResult<bool> {
    let Some(op) = op else {
        // Replace: the combiner returns the update.
        return Ok(map_data2!(res, upd, r, u => apply_typed(r, u, targets, |_, b| b)).is_some());
    };
    let done = match (res, upd) {
        (AD::Pred(r), AD::Pred(u)) => apply_typed(r, u, targets, so::pred_binop(op)?).is_empty(),
        (AD::S8(r), AD::S8(u)) => apply_typed(r, u, targets, so::int_binop(op)?).is_empty(),
        (AD::S16(r), AD::S16(u)) => apply_typed(r, u, targets, so::int_binop(op)?).is_empty(),
        (AD::S32(r), AD::S32(u)) => apply_typed(r, u, targets, so::int_binop(op)?).is_empty(),
        (AD::S64(r), AD::S64(u)) => apply_typed(r, u, targets, so::int_binop(op)?).is_empty(),
        (AD::U8(r), AD::U8(u)) => apply_typed(r, u, targets, so::int_binop(op)?).is_empty(),
        (AD::U16(r), AD::U16(u)) => apply_typed(r, u, targets, so::int_binop(op)?).is_empty(),
        (AD::U32(r), AD::U32(u)) => apply_typed(r, u, targets, so::int_binop(op)?).is_empty(),
        (AD::U64(r), AD::U64(u)) => apply_typed(r, u, targets, so::int_binop(op)?).is_empty(),
        (AD::F32(r), AD::F32(u)) => apply_typed(r, u, targets, so::float_binop(op)?).is_empty(),
        (AD::F64(r), AD::F64(u)) => apply_typed(r, u, targets, so::float_binop(op)?).is_empty(),
        (AD::F16(r), AD::F16(u)) => {
            let g = so::float_binop::<f32>(op)?;
            apply_typed(r, u, targets, |a: half::f16, b: half::f16| Narrow::from_f32(g(a.to_f32(), b.to_f32())))
                .is_empty()
        }
        (AD::BF16(r), AD::BF16(u)) => {
            let g = so::float_binop::<f32>(op)?;
            apply_typed(r, u, targets, |a: half::bf16, b: half::bf16| Narrow::from_f32(g(a.to_f32(), b.to_f32())))
                .is_empty()
        }
        _ => false,
    };
    Ok(done)
}

/// `scatter` (variadic) with any combiner computation.
pub fn scatter(
    interp: &Interp,
    dims: &ScatterDims,
    to_apply: CompId,
    out: &Shape,
    ops: &[&Literal],
) -> OpResult<Literal> {
    if ops.len() < 3 || ops.len().is_multiple_of(2) {
        return invalid("scatter takes N operands, the indices and N updates");
    }
    let n = (ops.len() - 1) / 2;
    let operands: Vec<(&ArrayShape, &AD)> = ops[..n].iter().map(|l| array_of(l)).collect::<OpResult<_>>()?;
    let (ishape, idata) = array_of(ops[n])?;
    let updates: Vec<(&ArrayShape, &AD)> = ops[n + 1..].iter().map(|l| array_of(l)).collect::<OpResult<_>>()?;
    let (shape, _) = operands[0];
    let (ushape, _) = updates[0];
    if operands.iter().any(|(s, _)| s.dims != shape.dims) || updates.iter().any(|(s, _)| s.dims != ushape.dims) {
        return invalid("scatter operands (or updates) differ in dimensions");
    }
    let targets = scatter_targets(dims, shape, ishape, idata, ushape)?;
    let mut res: Vec<AD> = operands.iter().map(|(_, d)| (*d).clone()).collect();
    let module = interp.module;
    let fast_op = scalar::trivial_binop(module, to_apply);
    let replaces = scalar::returns_param(module, to_apply) == Some(1);
    // XLA:CPU flushes what a combiner's arithmetic reads and writes: the combined elements and
    // the updates, not the operand elements it only copies, nor updates that merely replace.
    let flush = interp.options.flush_denormals && fast_op.is_some();
    if flush {
        crate::options::flush_at(&mut res[0], &targets);
    }
    let upd = if flush { crate::options::flushed(updates[0].1) } else { std::borrow::Cow::Borrowed(updates[0].1) };
    let fast_done = n == 1 && (fast_op.is_some() || replaces) && scatter_fast(&mut res[0], &upd, &targets, fast_op)?;
    if flush && fast_done {
        crate::options::flush_at(&mut res[0], &targets);
    }
    if !fast_done {
        let mut func = ScalarFn::new(interp, to_apply)?;
        if func.n_params() != 2 * n {
            return invalid("scatter combiner takes the wrong number of parameters");
        }
        let mut args = vec![Scalar::Pred(false); 2 * n];
        let mut outs = Vec::with_capacity(n);
        for (i, &t) in targets.iter().enumerate() {
            if t == usize::MAX {
                continue;
            }
            for j in 0..n {
                args[j] = scalar::get(&res[j], t);
                args[n + j] = scalar::get(updates[j].1, i);
            }
            func.call(&args, &mut outs)?;
            if outs.len() != n {
                return invalid("scatter combiner returned the wrong number of values");
            }
            for (j, r) in res.iter_mut().enumerate() {
                if !scalar::set(r, t, outs[j]) {
                    return invalid("scatter combiner returned the wrong element type");
                }
            }
        }
    }
    Ok(match out {
        Shape::Array(a) => make(a, res.pop().expect("one operand")),
        Shape::Tuple(elems) => {
            let lits = elems
                .iter()
                .zip(res)
                .map(|(s, d)| s.as_array().map(|a| make(a, d)))
                .collect::<Option<Vec<_>>>()
                .ok_or(crate::error::OpError::Invalid("scatter returns arrays".into()))?;
            Literal { shape: out.clone(), data: LiteralData::Tuple(lits) }
        }
        Shape::Token => return invalid("scatter returns arrays"),
    })
}
