//! `dot` (general, with batch and contracting dimensions) and `convolution` (general,
//! with dimension labels, strides, padding, dilations, feature and batch groups).
//!
//! Operands are first converted to the result's element type (as XLA's evaluator does
//! for mixed-precision ops), then multiplied and accumulated in a wide type: f32 for
//! f16/bf16/f32, f64 for f64, wrapping 64-bit integers for integer types. The sum for
//! each result element runs over the contracted elements in row-major order from zero,
//! and is rounded to the result type once at the end.

use crate::array::{array_of, check_dims, make};
use crate::error::{invalid, unsupported, OpResult};
use crate::index::{affine_terms, for_each_index, separable_map, strides};
use hlo_ir::{ArrayData as AD, ArrayShape, ConvDims, DType, DotDims, Literal, Shape, Window};

/// The accumulation domains.
enum Wide {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    C128(Vec<[f64; 2]>),
}

trait Acc: Copy {
    const ZERO: Self;
    fn mul_add(self, a: Self, b: Self) -> Self;
}

impl Acc for f32 {
    const ZERO: Self = 0.0;
    fn mul_add(self, a: Self, b: Self) -> Self {
        self + a * b
    }
}

impl Acc for f64 {
    const ZERO: Self = 0.0;
    fn mul_add(self, a: Self, b: Self) -> Self {
        self + a * b
    }
}

impl Acc for i64 {
    const ZERO: Self = 0;
    fn mul_add(self, a: Self, b: Self) -> Self {
        self.wrapping_add(a.wrapping_mul(b))
    }
}

impl Acc for [f64; 2] {
    const ZERO: Self = [0.0, 0.0];
    fn mul_add(self, a: Self, b: Self) -> Self {
        [self[0] + a[0] * b[0] - a[1] * b[1], self[1] + a[0] * b[1] + a[1] * b[0]]
    }
}

/// Converts `data` (of type `from`) to the result type `to`, then widens it.
fn widen(data: &AD, from: DType, to: DType, flush: bool) -> OpResult<Wide> {
    let mut data = crate::convert::convert(data, from, to)?;
    if flush {
        crate::options::flush_in_place(&mut data);
    }
    Ok(match &data {
        AD::F16(v) => Wide::F32(v.iter().map(|x| x.to_f32()).collect()),
        AD::BF16(v) => Wide::F32(v.iter().map(|x| x.to_f32()).collect()),
        AD::F32(v) => Wide::F32(v.clone()),
        AD::F64(v) => Wide::F64(v.clone()),
        AD::C64(v) => Wide::C128(v.iter().map(|z| [z[0] as f64, z[1] as f64]).collect()),
        AD::C128(v) => Wide::C128(v.clone()),
        // 8- and 4-bit floats accumulate in f32 (their values, rounded to the format first).
        AD::Bits(_) => match crate::convert::convert(&data, to, DType::F32)? {
            AD::F32(v) => Wide::F32(v),
            _ => return unsupported(format!("dot/convolution producing {to}")),
        },
        // pred products are ANDs summed as integers; any nonzero sum is true (XLA:CPU's result).
        AD::Pred(v) => Wide::I64(v.iter().map(|&b| b as i64).collect()),
        // Reinterpret rather than saturate: products wrap modulo 2^64 either way.
        AD::U64(v) => Wide::I64(v.iter().map(|&x| x as i64).collect()),
        _ => match crate::array::to_i64s(&data) {
            Some(v) => Wide::I64(v),
            None => return unsupported(format!("dot/convolution producing {to}")),
        },
    })
}

/// Rounds accumulated values to the result type.
fn narrow(wide: Wide, to: DType, flush: bool) -> OpResult<AD> {
    let mut res = match wide {
        Wide::F32(v) => crate::convert::convert(&AD::F32(v), DType::F32, to),
        Wide::F64(v) => crate::convert::convert(&AD::F64(v), DType::F64, to),
        Wide::I64(v) => crate::convert::convert(&AD::S64(v), DType::S64, to),
        Wide::C128(v) => crate::convert::convert(&AD::C128(v), DType::C128, to),
    }?;
    if flush {
        crate::options::flush_in_place(&mut res);
    }
    Ok(res)
}

/// Runs `f` on two widened operands of the same domain, giving a result in that domain.
macro_rules! with_wide {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $e:expr) => {
        match ($a, $b) {
            (Wide::F32($x), Wide::F32($y)) => Wide::F32($e),
            (Wide::F64($x), Wide::F64($y)) => Wide::F64($e),
            (Wide::I64($x), Wide::I64($y)) => Wide::I64($e),
            (Wide::C128($x), Wide::C128($y)) => Wide::C128($e),
            _ => return invalid("operands convert to different accumulation types"),
        }
    };
}

/// `out[b, m, n] = sum_k a[b, m, k] * b[b, k, n]` over flattened `[B, M, K]`/`[B, K, N]`.
fn batched_matmul<T: Acc>(a: &[T], b: &[T], sizes: (usize, usize, usize, usize)) -> Vec<T> {
    let (nb, m, k, n) = sizes;
    let mut out = vec![T::ZERO; nb * m * n];
    for bi in 0..nb {
        for i in 0..m {
            let row = &mut out[(bi * m + i) * n..(bi * m + i + 1) * n];
            for p in 0..k {
                let x = a[(bi * m + i) * k + p];
                let brow = &b[(bi * k + p) * n..(bi * k + p + 1) * n];
                for (o, &y) in row.iter_mut().zip(brow) {
                    *o = o.mul_add(x, y);
                }
            }
        }
    }
    out
}

/// Source offsets that lay an operand out as `[groups...]` in the given dimension order.
fn regroup(shape: &ArrayShape, order: &[usize]) -> Vec<usize> {
    let st = strides(&shape.dims);
    let sizes: Vec<i64> = order.iter().map(|&d| shape.dims[d]).collect();
    let terms: Vec<Vec<i64>> = order.iter().map(|&d| affine_terms(shape.dims[d], 0, 1, st[d])).collect();
    separable_map(&sizes, &terms)
}

fn take_wide(w: &Wide, idx: &[usize]) -> Wide {
    match w {
        Wide::F32(v) => Wide::F32(crate::array::take_vec(v, idx)),
        Wide::F64(v) => Wide::F64(crate::array::take_vec(v, idx)),
        Wide::I64(v) => Wide::I64(crate::array::take_vec(v, idx)),
        Wide::C128(v) => Wide::C128(crate::array::take_vec(v, idx)),
    }
}

fn free_dims(rank: usize, batch: &[i64], contracting: &[i64]) -> Vec<usize> {
    (0..rank).filter(|d| !batch.contains(&(*d as i64)) && !contracting.contains(&(*d as i64))).collect()
}

/// `dot` with general dimension numbers. Result dimensions: batch, lhs free, rhs free.
pub fn dot(dims: &DotDims, out: &Shape, ops: &[&Literal], flush: bool) -> OpResult<Literal> {
    let Shape::Array(out_shape) = out else {
        return invalid("dot returns an array");
    };
    let (ls, ld) = array_of(ops[0])?;
    let (rs, rd) = array_of(ops[1])?;
    if dims.lhs_batch.len() != dims.rhs_batch.len() || dims.lhs_contracting.len() != dims.rhs_contracting.len() {
        return invalid("lhs and rhs have different numbers of batch or contracting dimensions");
    }
    let in_range = |ds: &[i64], rank: usize| ds.iter().all(|&d| d >= 0 && (d as usize) < rank);
    if !in_range(&dims.lhs_batch, ls.rank())
        || !in_range(&dims.lhs_contracting, ls.rank())
        || !in_range(&dims.rhs_batch, rs.rank())
        || !in_range(&dims.rhs_contracting, rs.rank())
    {
        return invalid("dot dimension out of range");
    }
    let size = |s: &ArrayShape, ds: &[i64]| -> Vec<i64> { ds.iter().map(|&d| s.dims[d as usize]).collect() };
    if size(ls, &dims.lhs_batch) != size(rs, &dims.rhs_batch)
        || size(ls, &dims.lhs_contracting) != size(rs, &dims.rhs_contracting)
    {
        return invalid("batch or contracting dimension sizes differ");
    }
    let lfree = free_dims(ls.rank(), &dims.lhs_batch, &dims.lhs_contracting);
    let rfree = free_dims(rs.rank(), &dims.rhs_batch, &dims.rhs_contracting);
    let prod = |s: &ArrayShape, ds: &[usize]| ds.iter().map(|&d| s.dims[d].max(0) as usize).product::<usize>();
    let as_usize = |ds: &[i64]| ds.iter().map(|&d| d as usize).collect::<Vec<_>>();
    let nb = prod(ls, &as_usize(&dims.lhs_batch));
    let k = prod(ls, &as_usize(&dims.lhs_contracting));
    let m = prod(ls, &lfree);
    let n = prod(rs, &rfree);
    let mut expect: Vec<i64> = size(ls, &dims.lhs_batch);
    expect.extend(lfree.iter().map(|&d| ls.dims[d]));
    expect.extend(rfree.iter().map(|&d| rs.dims[d]));
    if expect != out_shape.dims {
        return invalid(format!("dot result should have dimensions {expect:?}"));
    }
    let lorder: Vec<usize> = as_usize(&dims.lhs_batch)
        .into_iter()
        .chain(lfree.iter().copied())
        .chain(as_usize(&dims.lhs_contracting))
        .collect();
    let rorder: Vec<usize> = as_usize(&dims.rhs_batch)
        .into_iter()
        .chain(as_usize(&dims.rhs_contracting))
        .chain(rfree.iter().copied())
        .collect();
    let a = take_wide(&widen(ld, ls.dtype, out_shape.dtype, flush)?, &regroup(ls, &lorder));
    let b = take_wide(&widen(rd, rs.dtype, out_shape.dtype, flush)?, &regroup(rs, &rorder));
    let sizes = (nb, m, k, n);
    let res = with_wide!(&a, &b, |x, y| batched_matmul(x, y, sizes));
    Ok(make(out_shape, narrow(res, out_shape.dtype, flush)?))
}

struct ConvPlan<'a> {
    dims: &'a ConvDims,
    window: &'a Window,
    lhs: &'a ArrayShape,
    rhs: &'a ArrayShape,
    out: &'a ArrayShape,
    feature_group_count: i64,
    batch_group_count: i64,
}

impl ConvPlan<'_> {
    fn run<T: Acc>(&self, x: &[T], w: &[T]) -> OpResult<Vec<T>> {
        let d = self.dims;
        let (ls, rs, os) = (self.lhs, self.rhs, self.out);
        let lst = strides(&ls.dims);
        let rst = strides(&rs.dims);
        let n_spatial = d.input_spatial.len();
        let get = |s: &ArrayShape, k: i64| s.dims[k as usize];
        let input_z = get(ls, d.input_feature);
        let input_batch = get(ls, d.input_batch);
        let output_z = get(rs, d.kernel_output_feature);
        let (fgc, bgc) = (self.feature_group_count, self.batch_group_count);
        if fgc < 1
            || bgc < 1
            || input_z % fgc != 0
            || output_z % fgc != 0
            || input_batch % bgc != 0
            || output_z % bgc != 0
        {
            return invalid("feature/batch group counts do not divide the feature and batch sizes");
        }
        if get(os, d.output_batch) != input_batch / bgc || get(os, d.output_feature) != output_z {
            return invalid("result batch/feature sizes do not match the operands");
        }
        let in_group = input_z / fgc;
        if get(rs, d.kernel_input_feature) != in_group {
            return invalid("kernel input features differ from input features / feature_group_count");
        }
        let out_group = output_z / fgc;
        let batch_group_size = input_batch / bgc;
        let depthwise = output_z / bgc;
        let kernel_sizes: Vec<i64> = d.kernel_spatial.iter().map(|&k| get(rs, k)).collect();
        // lhs_terms[s][o * size + k]: lhs offset of output coordinate o, window position k.
        let mut lhs_terms: Vec<Vec<i64>> = Vec::with_capacity(n_spatial);
        let mut rhs_terms: Vec<Vec<i64>> = Vec::with_capacity(n_spatial);
        for s in 0..n_spatial {
            let wd = &self.window.dims[s];
            let size = kernel_sizes[s];
            let in_size = get(ls, d.input_spatial[s]);
            let mut t = Vec::new();
            for o in 0..get(os, d.output_spatial[s]) {
                for k in 0..size {
                    let pos = o * wd.stride - wd.padding_low + k * wd.window_dilation;
                    let valid = pos >= 0 && pos % wd.base_dilation == 0 && pos / wd.base_dilation < in_size;
                    t.push(if valid { pos / wd.base_dilation * lst[d.input_spatial[s] as usize] } else { -1 });
                }
            }
            lhs_terms.push(t);
            let kst = rst[d.kernel_spatial[s] as usize];
            rhs_terms.push((0..size).map(|k| if wd.window_reversal { size - 1 - k } else { k } * kst).collect());
        }
        let mut res = Vec::with_capacity(os.num_elements() as usize);
        let mut window_idx = vec![0i64; n_spatial];
        for_each_index(&os.dims, |oi| {
            let ob = oi[d.output_batch as usize];
            let oz = oi[d.output_feature as usize];
            let group = oz / out_group;
            let batch_group = oz / depthwise;
            let lhs_base = (ob + batch_group * batch_group_size) * lst[d.input_batch as usize];
            let rhs_base = oz * rst[d.kernel_output_feature as usize];
            let mut acc = T::ZERO;
            window_idx.iter_mut().for_each(|w| *w = 0);
            'window: loop {
                let mut lo = lhs_base;
                let mut ro = rhs_base;
                let mut valid = true;
                for s in 0..n_spatial {
                    let o = oi[d.output_spatial[s] as usize];
                    let t = lhs_terms[s][(o * kernel_sizes[s] + window_idx[s]) as usize];
                    if t < 0 {
                        valid = false;
                        break;
                    }
                    lo += t;
                    ro += rhs_terms[s][window_idx[s] as usize];
                }
                if valid {
                    for iz in 0..in_group {
                        let li = lo + (group * in_group + iz) * lst[d.input_feature as usize];
                        let ri = ro + iz * rst[d.kernel_input_feature as usize];
                        acc = acc.mul_add(x[li as usize], w[ri as usize]);
                    }
                }
                if !crate::index::bump(&mut window_idx, &kernel_sizes) {
                    break 'window;
                }
            }
            res.push(acc);
        });
        Ok(res)
    }
}

/// `convolution` following XLA's evaluator: each result element sums input × kernel over
/// the window positions that land on (non-padding, non-dilation-hole) input elements and
/// over the input features of its feature group.
pub fn convolution(
    window: &Window,
    dims: &ConvDims,
    (feature_group_count, batch_group_count): (i64, i64),
    out: &Shape,
    ops: &[&Literal],
    flush: bool,
) -> OpResult<Literal> {
    let Shape::Array(out_shape) = out else {
        return invalid("convolution returns an array");
    };
    let (ls, ld) = array_of(ops[0])?;
    let (rs, rd) = array_of(ops[1])?;
    let n_spatial = dims.input_spatial.len();
    if dims.kernel_spatial.len() != n_spatial
        || dims.output_spatial.len() != n_spatial
        || window.dims.len() != n_spatial
        || ls.rank() != n_spatial + 2
        || rs.rank() != n_spatial + 2
        || out_shape.rank() != n_spatial + 2
    {
        return invalid("convolution ranks do not match the dimension labels");
    }
    if window.dims.iter().any(|w| w.stride < 1 || w.base_dilation < 1 || w.window_dilation < 1) {
        return invalid("window strides and dilations must be positive");
    }
    let rank = n_spatial + 2;
    let mut lhs_dims = dims.input_spatial.clone();
    lhs_dims.extend([dims.input_batch, dims.input_feature]);
    let mut rhs_dims = dims.kernel_spatial.clone();
    rhs_dims.extend([dims.kernel_input_feature, dims.kernel_output_feature]);
    let mut out_dims = dims.output_spatial.clone();
    out_dims.extend([dims.output_batch, dims.output_feature]);
    for (ds, what) in [(&lhs_dims, "input"), (&rhs_dims, "kernel"), (&out_dims, "output")] {
        check_dims(ds, rank, what)?;
    }
    for (s, w) in dims.kernel_spatial.iter().zip(&window.dims) {
        if rs.dims[*s as usize] != w.size {
            return invalid("window size differs from the kernel's spatial size");
        }
    }
    let plan = ConvPlan { dims, window, lhs: ls, rhs: rs, out: out_shape, feature_group_count, batch_group_count };
    let a = widen(ld, ls.dtype, out_shape.dtype, flush)?;
    let b = widen(rd, rs.dtype, out_shape.dtype, flush)?;
    let res = with_wide!(&a, &b, |x, y| plan.run(x, y)?);
    Ok(make(out_shape, narrow(res, out_shape.dtype, flush)?))
}

/// `ragged-dot(lhs, rhs, group_sizes)` with the rows of `lhs` ragged (XLA's first mode, without
/// batch dimensions): `lhs` is `[m, k]`, `rhs` `[g, k, n]`, `group_sizes` `[g]`; the rows of
/// group `j` (the next `group_sizes[j]` rows after the earlier groups') are multiplied by
/// `rhs[j]`, and rows after the last group are zero. Sums are taken in f64 and rounded once.
pub fn ragged_dot(
    dims: &DotDims,
    lhs_ragged: &[i64],
    rhs_group: &[i64],
    out: &Shape,
    ops: &[&Literal],
) -> OpResult<Literal> {
    let (Some(&lhs), Some(&rhs), Some(&sizes)) = (ops.first(), ops.get(1), ops.get(2)) else {
        return invalid("ragged-dot takes lhs, rhs and group sizes");
    };
    let (ls, ld) = array_of(lhs)?;
    let (rs, rd) = array_of(rhs)?;
    let (_, sd) = array_of(sizes)?;
    let out = match out {
        Shape::Array(a) => a,
        _ => return invalid("ragged-dot returns an array"),
    };
    let canonical = dims.lhs_batch.is_empty()
        && dims.rhs_batch.is_empty()
        && dims.lhs_contracting == [1]
        && dims.rhs_contracting == [1]
        && lhs_ragged == [0]
        && rhs_group == [0]
        && ls.rank() == 2
        && rs.rank() == 3;
    if !canonical {
        return unsupported(
            "ragged-dot other than lhs [m, k] ragged in m with rhs [g, k, n] grouped in g (no batch dimensions)",
        );
    }
    let (m, k) = (ls.dims[0] as usize, ls.dims[1] as usize);
    let (g, n) = (rs.dims[0] as usize, rs.dims[2] as usize);
    let Some(sizes) = crate::array::to_i64s(sd) else { return invalid("ragged-dot group sizes must be integers") };
    if sizes.len() != g || rs.dims[1] as usize != k || out.dims != [m as i64, n as i64] {
        return invalid(format!("ragged-dot of {ls} and {rs} with {} group sizes into {out}", sizes.len()));
    }
    let as_f64 = |data: &AD, dtype: DType| match crate::convert::convert(data, dtype, DType::F64)? {
        AD::F64(v) => Ok(v),
        _ => invalid("ragged-dot operands must be numbers"),
    };
    let (a, b) = (as_f64(ld, ls.dtype)?, as_f64(rd, rs.dtype)?);
    let mut res = vec![0f64; m * n];
    let mut start = 0usize;
    for (j, &size) in sizes.iter().enumerate() {
        let end = (start + size.max(0) as usize).min(m);
        for i in start..end {
            for c in 0..n {
                res[i * n + c] = (0..k).map(|p| a[i * k + p] * b[(j * k + p) * n + c]).sum();
            }
        }
        start = end;
    }
    Ok(make(out, crate::convert::convert(&AD::F64(res), DType::F64, out.dtype)?))
}
