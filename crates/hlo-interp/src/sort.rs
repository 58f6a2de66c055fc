//! `sort` (variadic, with a comparator computation) and `topk`.
//!
//! Sorting is always stable, whatever `is_stable` says: a stable order is one of the
//! orders an unstable sort may produce, and it makes results reproducible. The merge
//! sort here only asks the comparator "does a go before b?", so a comparator that is
//! not a strict weak order gives some permutation instead of a panic (Rust's own sorts
//! may panic on such comparators).
//!
//! `topk` returns the `k` largest (or smallest) elements of each row with their
//! indices, in order, ties broken by the lower index; floats are ordered by XLA's total
//! order, so NaNs are larger than +inf.

use crate::array::{array_of, make, take};
use crate::error::{invalid, OpResult};
use crate::eval::Interp;
use crate::index::{affine_terms, separable_map, strides};
use crate::scalar::{self, Scalar, ScalarFn};
use crate::scalar_ops::Float;
use hlo_ir::{ArrayData as AD, ArrayShape, CompId, Literal, LiteralData, Shape};

/// Stable merge sort of `items` by `less`, which may fail.
fn merge_sort<T: Copy>(items: &mut Vec<T>, less: &mut impl FnMut(T, T) -> OpResult<bool>) -> OpResult<()> {
    let n = items.len();
    let mut buf = items.clone();
    let mut width = 1;
    while width < n {
        let mut start = 0;
        while start < n {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            let (mut i, mut j, mut k) = (start, mid, start);
            while i < mid && j < end {
                // Take from the right run only when strictly before: keeps equal items in order.
                if less(items[j], items[i])? {
                    buf[k] = items[j];
                    j += 1;
                } else {
                    buf[k] = items[i];
                    i += 1;
                }
                k += 1;
            }
            buf[k..k + (mid - i)].copy_from_slice(&items[i..mid]);
            k += mid - i;
            buf[k..k + (end - j)].copy_from_slice(&items[j..end]);
            start = end;
        }
        std::mem::swap(items, &mut buf);
        width *= 2;
    }
    Ok(())
}

/// For each row along `dimension`, the offsets of its elements; rows in row-major order.
fn rows(shape: &ArrayShape, dimension: usize) -> (Vec<usize>, Vec<usize>) {
    let st = strides(&shape.dims);
    let outer: Vec<usize> = (0..shape.rank()).filter(|&d| d != dimension).collect();
    let sizes: Vec<i64> = outer.iter().map(|&d| shape.dims[d]).collect();
    let terms: Vec<Vec<i64>> = outer.iter().map(|&d| affine_terms(shape.dims[d], 0, 1, st[d])).collect();
    let bases = separable_map(&sizes, &terms);
    let along = separable_map(&[shape.dims[dimension]], &[affine_terms(shape.dims[dimension], 0, 1, st[dimension])]);
    (bases, along)
}

/// `sort` along `dimension`: every operand is permuted the same way.
pub fn sort(interp: &Interp, dimension: i64, to_apply: CompId, out: &Shape, ops: &[&Literal]) -> OpResult<Literal> {
    let inputs: Vec<(&ArrayShape, &AD)> = ops.iter().map(|l| array_of(l)).collect::<OpResult<_>>()?;
    let Some(&(shape, _)) = inputs.first() else {
        return invalid("sort needs an operand");
    };
    if inputs.iter().any(|(s, _)| s.dims != shape.dims) {
        return invalid("sort operands differ in dimensions");
    }
    let d = dimension as usize;
    if dimension < 0 || d >= shape.rank() {
        return invalid("sort dimension out of range");
    }
    let mut func = ScalarFn::new(interp, to_apply)?;
    if func.n_params() != 2 * inputs.len() {
        return invalid("comparator must take two scalars per operand");
    }
    let (bases, along) = rows(shape, d);
    let mut perm = vec![0usize; shape.num_elements() as usize];
    let mut args = vec![Scalar::Pred(false); 2 * inputs.len()];
    let mut outs = Vec::new();
    let mut order: Vec<usize> = Vec::with_capacity(along.len());
    for &b in &bases {
        order.clear();
        order.extend(along.iter().map(|&a| b + a));
        merge_sort(&mut order, &mut |x, y| {
            for (j, (_, data)) in inputs.iter().enumerate() {
                args[2 * j] = scalar::get(data, x);
                args[2 * j + 1] = scalar::get(data, y);
            }
            func.call1(&args, &mut outs)?.as_bool()
        })?;
        for (&a, &src) in along.iter().zip(&order) {
            perm[b + a] = src;
        }
    }
    let sorted: Vec<AD> = inputs.iter().map(|(_, data)| take(data, &perm)).collect();
    Ok(match out {
        Shape::Array(a) => make(a, sorted.into_iter().next().expect("one operand")),
        Shape::Tuple(elems) => {
            let lits = elems
                .iter()
                .zip(sorted)
                .map(|(s, data)| s.as_array().map(|a| make(a, data)))
                .collect::<Option<Vec<_>>>()
                .ok_or(crate::error::OpError::Invalid("sort returns arrays".into()))?;
            Literal { shape: out.clone(), data: LiteralData::Tuple(lits) }
        }
        Shape::Token => return invalid("sort returns arrays"),
    })
}

/// A key whose `>` is "ranks higher" for `topk` without a comparator.
fn total_keys(data: &AD) -> OpResult<Vec<i128>> {
    Ok(match data {
        AD::F32(v) => v.iter().map(|x| x.total_order_key() as i128).collect(),
        AD::F64(v) => v.iter().map(|x| x.total_order_key() as i128).collect(),
        AD::F16(v) => v.iter().map(|x| x.to_f32().total_order_key() as i128).collect(),
        AD::BF16(v) => v.iter().map(|x| x.to_f32().total_order_key() as i128).collect(),
        AD::Pred(v) => v.iter().map(|&x| x as i128).collect(),
        AD::U64(v) => v.iter().map(|&x| x as i128).collect(),
        other => match crate::array::to_i64s(other) {
            Some(v) => v.into_iter().map(|x| x as i128).collect(),
            None => return invalid("topk of an unsupported element type"),
        },
    })
}

/// `topk` along the last dimension; `comparator` (from XLA:CPU's `TopK` custom call)
/// decides "goes first" when given, else the total order does.
pub fn topk(
    interp: &Interp,
    k: i64,
    largest: bool,
    comparator: Option<CompId>,
    out: &Shape,
    ops: &[&Literal],
) -> OpResult<Literal> {
    let (shape, data) = array_of(ops[0])?;
    let Some([Shape::Array(vshape), Shape::Array(ishape)]) =
        out.as_tuple().and_then(|t| <&[Shape; 2]>::try_from(t).ok())
    else {
        return invalid("topk returns (values, indices)");
    };
    if shape.rank() == 0 {
        return invalid("topk of a scalar");
    }
    let d = shape.rank() - 1;
    let n = shape.dims[d];
    if k < 0 || k > n {
        return invalid(format!("k = {k} out of range for {n} elements"));
    }
    let (bases, along) = rows(shape, d);
    let mut picks = Vec::with_capacity(bases.len() * k as usize);
    let mut indices = Vec::with_capacity(bases.len() * k as usize);
    let mut order: Vec<usize> = Vec::with_capacity(along.len());
    match comparator {
        Some(comp) => {
            let mut func = ScalarFn::new(interp, comp)?;
            let with_index = func.n_params() == 4;
            let mut outs = Vec::new();
            for &b in &bases {
                order.clear();
                order.extend(0..along.len());
                merge_sort(&mut order, &mut |x, y| {
                    let (vx, vy) = (scalar::get(data, b + along[x]), scalar::get(data, b + along[y]));
                    let args: &[Scalar] =
                        if with_index { &[vx, vy, Scalar::S32(x as i32), Scalar::S32(y as i32)] } else { &[vx, vy] };
                    func.call1(args, &mut outs)?.as_bool()
                })?;
                for &i in &order[..k as usize] {
                    picks.push(b + along[i]);
                    indices.push(i as i32);
                }
            }
        }
        None => {
            let keys = total_keys(data)?;
            for &b in &bases {
                order.clear();
                order.extend(0..along.len());
                // A stable sort on the key alone keeps lower indices first among ties.
                if largest {
                    order.sort_by(|&x, &y| keys[b + along[y]].cmp(&keys[b + along[x]]));
                } else {
                    order.sort_by(|&x, &y| keys[b + along[x]].cmp(&keys[b + along[y]]));
                }
                for &i in &order[..k as usize] {
                    picks.push(b + along[i]);
                    indices.push(i as i32);
                }
            }
        }
    }
    let values = take(data, &picks);
    let idx = crate::convert::convert(&AD::S32(indices), hlo_ir::DType::S32, ishape.dtype)?;
    Ok(Literal::tuple(vec![make(vshape, values), make(ishape, idx)]))
}
