//! split-reductions: reductions and dots over very many elements become two levels.
//!
//! (`tree-reduction` reproduces XLA:CPU's own blocking by 32 for the interpreter; the device
//! pipeline uses this pass instead, which splits only where one level would be too long.)
//!
//! A `reduce` whose reduced elements number more than [`MAX_REDUCED`] becomes a reduce of a
//! reduce: several reduced dimensions are reduced in two groups (innermost first), and one long
//! dimension is padded with the init value and reshaped into `[k, c]` (about `sqrt(n)` each),
//! then reduced over `c` and over `k`, as XLA's GPU `TreeReductionRewriter` does. A `dot` whose
//! contracted elements number more than [`MAX_CONTRACTED`] likewise contracts part of them as a
//! batch dimension (split-K), then sums the partial products with a `reduce`.
//!
//! Why: a kernel evaluates each output with a loop over its reduced elements, and some drivers
//! stop a shader loop after 65,535 iterations (lavapipe), so one level over 20M elements gave a
//! silently truncated sum. Two levels also spread the work over many more invocations (a
//! scalar sum used a single workgroup) and add in a tree-like order, which keeps f32 sums of
//! many elements accurate: a sum of 2e7 ones is 2e7, not 16777216, as with XLA:CPU's vectorised
//! loops. Reducers are associative by HLO's contract, so the split only reorders the additions.

use crate::PassError;
use hlo_ir::{ArrayShape, CompId, Computation, DType, DotDims, Instr, InstrId, Module, Op, PadDim, Shape, SliceDim};

/// Most elements one output of a `reduce` may reduce in one level.
pub const MAX_REDUCED: u64 = 1 << 15;
/// Most elements one output of a `dot` may contract in one level.
pub const MAX_CONTRACTED: u64 = 1 << 14;
/// Most input features times kernel taps one output of a grouped convolution may contract: a
/// quarter of [`MAX_CONTRACTED`], since the per-element kernel that runs grouped convolutions
/// computes four outputs per invocation (one `vec4` store), each with its own nest of loops
/// whose outer levels add iterations too. On lavapipe a convolution of 4 x 30 x 30 x 3 = 10,800
/// per output (XLA's DepthwiseBatchOuterDot with 4 features; 58,096 loop iterations per
/// invocation by the emitter's count, under the 65,535 budget) came out wrong, as if cut short;
/// 1 to 3 features (up to 43,572) ran right.
pub const MAX_CONV_CONTRACTED: u64 = MAX_CONTRACTED / 4;

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("split-reductions").entered();
    let mut changed = false;
    for c in 0..module.comps.len() {
        let comp_id = CompId(c as u32);
        // New instructions are appended, and each split may need another: loop to a fixpoint.
        let mut at = 0;
        while at < module.comp(comp_id).instrs.len() {
            let id = InstrId::from_index(at);
            at += 1;
            let replacement = match &module.comp(comp_id).instr(id).op {
                Op::Reduce { .. } => split_reduce(module, comp_id, id)?,
                Op::Dot { .. } => split_dot(module, comp_id, id)?,
                Op::Convolution { .. } => split_conv(module, comp_id, id)?,
                _ => None,
            };
            if let Some(new) = replacement {
                let comp = module.comp_mut(comp_id);
                crate::util::apply_replacements(comp, &[(id, new)].into_iter().collect());
                changed = true;
            }
        }
        if changed {
            crate::util::compact(module.comp_mut(comp_id))?;
        }
    }
    if changed {
        crate::util::order_callees_first(module);
    }
    Ok(changed)
}

fn array(shape: &Shape) -> Option<&ArrayShape> {
    shape.as_array()
}

/// Appends an instruction named after `base` and returns its id.
fn push(comp: &mut Computation, base: &str, shape: Shape, op: Op, operands: Vec<InstrId>) -> InstrId {
    let name = format!("{base}.{}", comp.instrs.len());
    comp.push(Instr::new(name, shape, op, operands))
}

/// `x` reshaped to `shape`; a reshape of a reshape reads the inner operand, as
/// algebraic-simplification would rewrite it (this pass runs after the simplifications, and the
/// pipeline must come out as they leave it).
fn reshape(comp: &mut Computation, base: &str, shape: Shape, x: InstrId) -> InstrId {
    let inner = comp.instr(x);
    let x = if matches!(inner.op, Op::Reshape) { inner.operands[0] } else { x };
    if comp.instr(x).shape == shape {
        return x;
    }
    push(comp, base, shape, Op::Reshape, vec![x])
}

/// A reduce's result shape: the input dims without `reduced`, one array per input (a tuple when variadic).
fn reduce_shape(input_dims: &[i64], reduced: &[i64], dtypes: &[DType]) -> Shape {
    let kept: Vec<i64> =
        input_dims.iter().enumerate().filter(|(d, _)| !reduced.contains(&(*d as i64))).map(|(_, &n)| n).collect();
    let arrays: Vec<Shape> = dtypes.iter().map(|&dt| Shape::Array(ArrayShape::new(dt, kept.clone()))).collect();
    if arrays.len() == 1 {
        arrays.into_iter().next().expect("one")
    } else {
        Shape::Tuple(arrays)
    }
}

/// The leaves of a (possibly variadic) reduce's value as separate instructions.
fn leaves_of(comp: &mut Computation, id: InstrId) -> Vec<InstrId> {
    match comp.instr(id).shape.clone() {
        Shape::Tuple(elems) => elems
            .into_iter()
            .enumerate()
            .map(|(k, s)| push(comp, "split_gte", s, Op::GetTupleElement { index: k as u64 }, vec![id]))
            .collect(),
        _ => vec![id],
    }
}

fn split_reduce(module: &mut Module, comp_id: CompId, id: InstrId) -> Result<Option<InstrId>, PassError> {
    let comp = module.comp(comp_id);
    let instr = comp.instr(id);
    let Op::Reduce { dimensions, to_apply } = &instr.op else { return Ok(None) };
    let (dimensions, to_apply) = (dimensions.clone(), *to_apply);
    let n = instr.operands.len() / 2;
    let inputs: Vec<InstrId> = instr.operands[..n].to_vec();
    let inits: Vec<InstrId> = instr.operands[n..].to_vec();
    let Some(input) = array(&comp.instr(inputs[0]).shape).cloned() else { return Ok(None) };
    let dtypes: Vec<DType> = inputs.iter().filter_map(|&i| array(&comp.instr(i).shape).map(|a| a.dtype)).collect();
    if dtypes.len() != n {
        return Ok(None);
    }
    let mut reduced: Vec<i64> = dimensions.clone();
    reduced.sort_unstable();
    let sizes: Vec<u64> = reduced.iter().map(|&d| input.dims[d as usize].max(0) as u64).collect();
    if sizes.iter().product::<u64>() <= MAX_REDUCED || sizes.contains(&0) {
        return Ok(None);
    }
    let base = instr.name.clone();
    let comp = module.comp_mut(comp_id);
    // The innermost reduced dimensions whose product fits one level.
    let mut inner_count = 0;
    let mut inner_product = 1u64;
    for &s in sizes.iter().rev() {
        if inner_product * s > MAX_REDUCED {
            break;
        }
        inner_product *= s;
        inner_count += 1;
    }
    if inner_count > 0 {
        // Several dimensions: reduce the innermost group, then the rest.
        let inner: Vec<i64> = reduced[reduced.len() - inner_count..].to_vec();
        let outer: Vec<i64> = reduced[..reduced.len() - inner_count]
            .iter()
            .map(|&d| d - inner.iter().filter(|&&i| i < d).count() as i64)
            .collect();
        let mut operands = inputs.clone();
        operands.extend(&inits);
        let first_shape = reduce_shape(&input.dims, &inner, &dtypes);
        let first_dims = first_shape.leaves()[0].dims.clone();
        let first = push(comp, &base, first_shape, Op::Reduce { dimensions: inner, to_apply }, operands);
        let mut operands = leaves_of(comp, first);
        operands.extend(&inits);
        let shape = reduce_shape(&first_dims, &outer, &dtypes);
        return Ok(Some(push(comp, &base, shape, Op::Reduce { dimensions: outer, to_apply }, operands)));
    }
    // The innermost reduced dimension alone is too long: pad it to k * c and reshape to [k, c].
    let d = *reduced.last().expect("non-empty") as usize;
    let len = input.dims[d] as u64;
    let chunk = 1u64 << (64 - (len - 1).leading_zeros()).div_ceil(2);
    let k = len.div_ceil(chunk);
    let mut split_dims = input.dims.clone();
    split_dims[d] = k as i64;
    split_dims.insert(d + 1, chunk as i64);
    let mut padded_dims = input.dims.clone();
    padded_dims[d] = (k * chunk) as i64;
    let mut reshaped = Vec::with_capacity(n);
    for (j, &x) in inputs.iter().enumerate() {
        let mut x = x;
        if k * chunk != len {
            let pads: Vec<PadDim> = (0..input.rank())
                .map(|a| PadDim { low: 0, high: if a == d { (k * chunk - len) as i64 } else { 0 }, interior: 0 })
                .collect();
            let shape = Shape::Array(ArrayShape::new(dtypes[j], padded_dims.clone()));
            x = push(comp, &format!("{base}_pad"), shape, Op::Pad { dims: pads }, vec![x, inits[j]]);
        }
        let shape = Shape::Array(ArrayShape::new(dtypes[j], split_dims.clone()));
        reshaped.push(reshape(comp, &format!("{base}_split"), shape, x));
    }
    // Reduce over `c`, then over `k` and the other reduced dimensions (all before `d`, unshifted).
    let inner = vec![d as i64 + 1];
    let mut operands = reshaped;
    operands.extend(&inits);
    let first_shape = reduce_shape(&split_dims, &inner, &dtypes);
    let first_dims = first_shape.leaves()[0].dims.clone();
    let first = push(comp, &base, first_shape, Op::Reduce { dimensions: inner, to_apply }, operands);
    let outer = reduced.clone();
    let mut operands = leaves_of(comp, first);
    operands.extend(&inits);
    let shape = reduce_shape(&first_dims, &outer, &dtypes);
    Ok(Some(push(comp, &base, shape, Op::Reduce { dimensions: outer, to_apply }, operands)))
}

/// A scalar `add` computation over `dtype`, for summing partial products.
fn add_computation(module: &mut Module, dtype: DType) -> CompId {
    crate::util::scalar_add_computation(module, &format!("split_k_add_{dtype}"), dtype)
}

fn split_dot(module: &mut Module, comp_id: CompId, id: InstrId) -> Result<Option<InstrId>, PassError> {
    let comp = module.comp(comp_id);
    let instr = comp.instr(id);
    let Op::Dot { dims, precision, algorithm } = &instr.op else { return Ok(None) };
    let (dims, precision, algorithm) = (dims.clone(), precision.clone(), algorithm.clone());
    let (Some(out), Some(ls), Some(rs)) = (
        array(&instr.shape).cloned(),
        array(&comp.instr(instr.operands[0]).shape).cloned(),
        array(&comp.instr(instr.operands[1]).shape).cloned(),
    ) else {
        return Ok(None);
    };
    let contracted: Vec<u64> = dims.lhs_contracting.iter().map(|&d| ls.dims[d as usize].max(0) as u64).collect();
    if contracted.iter().product::<u64>() <= MAX_CONTRACTED || contracted.contains(&0) {
        return Ok(None);
    }
    // Partial products are summed in f32 for narrow floats; booleans have no `add` to sum with.
    let acc = match out.dtype {
        DType::Pred => return Ok(None),
        d if d.is_narrow_float() => DType::F32,
        d => d,
    };
    let add = add_computation(module, acc);
    let comp = module.comp_mut(comp_id);
    let base = comp.instr(id).name.clone();
    let (mut lhs, mut rhs) = (comp.instr(id).operands[0], comp.instr(id).operands[1]);
    let (mut ldims, mut rdims) = (ls.dims.clone(), rs.dims.clone());
    let mut new = dims.clone();
    // The largest contracted dimension becomes a batch dimension: all of it when the others fit
    // one level, else its `k` part after a reshape to [k, c].
    let j = (0..contracted.len()).max_by_key(|&j| contracted[j]).expect("non-empty");
    let rest: u64 = contracted.iter().enumerate().filter(|&(i, _)| i != j).map(|(_, &s)| s).product();
    let (lc, rc) = (dims.lhs_contracting[j], dims.rhs_contracting[j]);
    if rest <= MAX_CONTRACTED && contracted[j] <= MAX_CONTRACTED {
        new.lhs_contracting.remove(j);
        new.rhs_contracting.remove(j);
        new.lhs_batch.push(lc);
        new.rhs_batch.push(rc);
    } else {
        let len = contracted[j];
        let chunk = 1u64 << (64 - (len - 1).leading_zeros()).div_ceil(2);
        let k = len.div_ceil(chunk);
        let zero = {
            let lit = hlo_ir::Literal::zeros(ArrayShape::scalar(ls.dtype));
            push(
                comp,
                &format!("{base}_zero"),
                Shape::Array(ArrayShape::scalar(ls.dtype)),
                Op::Constant(Box::new(lit)),
                vec![],
            )
        };
        let split = |comp: &mut Computation, x: InstrId, dims: &mut Vec<i64>, d: usize, dt: DType, zero: InstrId| {
            let mut x = x;
            if k * chunk != len {
                let pads: Vec<PadDim> = (0..dims.len())
                    .map(|a| PadDim { low: 0, high: if a == d { (k * chunk - len) as i64 } else { 0 }, interior: 0 })
                    .collect();
                dims[d] = (k * chunk) as i64;
                x = push(
                    comp,
                    &format!("{base}_pad"),
                    Shape::Array(ArrayShape::new(dt, dims.clone())),
                    Op::Pad { dims: pads },
                    vec![x, zero],
                );
            }
            dims[d] = k as i64;
            dims.insert(d + 1, chunk as i64);
            reshape(comp, &format!("{base}_split"), Shape::Array(ArrayShape::new(dt, dims.clone())), x)
        };
        let rzero = if rs.dtype == ls.dtype {
            zero
        } else {
            let lit = hlo_ir::Literal::zeros(ArrayShape::scalar(rs.dtype));
            push(
                comp,
                &format!("{base}_zero"),
                Shape::Array(ArrayShape::scalar(rs.dtype)),
                Op::Constant(Box::new(lit)),
                vec![],
            )
        };
        lhs = split(comp, lhs, &mut ldims, lc as usize, ls.dtype, zero);
        rhs = split(comp, rhs, &mut rdims, rc as usize, rs.dtype, rzero);
        let shift = |v: &mut Vec<i64>, at: i64| v.iter_mut().for_each(|d| *d += (*d > at) as i64);
        shift(&mut new.lhs_batch, lc);
        shift(&mut new.lhs_contracting, lc);
        shift(&mut new.rhs_batch, rc);
        shift(&mut new.rhs_contracting, rc);
        new.lhs_contracting[j] = lc + 1;
        new.rhs_contracting[j] = rc + 1;
        new.lhs_batch.push(lc);
        new.rhs_batch.push(rc);
    }
    // Output: batch dims (the new one last among them), then lhs free, then rhs free.
    let nb = dims.lhs_batch.len();
    let mut partial_dims = out.dims.clone();
    partial_dims.insert(nb, ldims[new.lhs_batch[nb] as usize]);
    let partial_shape = Shape::Array(ArrayShape::new(acc, partial_dims));
    let partial = push(
        comp,
        &format!("{base}_partial"),
        partial_shape,
        Op::Dot { dims: DotDims { ..new }, precision, algorithm },
        vec![lhs, rhs],
    );
    let zero = push(
        comp,
        &format!("{base}_init"),
        Shape::Array(ArrayShape::scalar(acc)),
        Op::Constant(Box::new(hlo_ir::Literal::zeros(ArrayShape::scalar(acc)))),
        vec![],
    );
    let sum_shape = Shape::Array(ArrayShape::new(acc, out.dims.clone()));
    let sum = push(
        comp,
        &format!("{base}_sum"),
        sum_shape,
        Op::Reduce { dimensions: vec![nb as i64], to_apply: add },
        vec![partial, zero],
    );
    if acc == out.dtype {
        return Ok(Some(sum));
    }
    Ok(Some(push(comp, &format!("{base}_convert"), Shape::Array(out), Op::Convert, vec![sum])))
}

/// `x` sliced to `[lo, hi)` along dimension `d` (every other dimension whole).
fn slice(comp: &mut Computation, base: &str, x: InstrId, d: usize, lo: i64, hi: i64) -> InstrId {
    let a = comp.instr(x).shape.as_array().expect("array").clone();
    let dims: Vec<SliceDim> = (0..a.rank())
        .map(|k| {
            if k == d {
                SliceDim { start: lo, limit: hi, stride: 1 }
            } else {
                SliceDim { start: 0, limit: a.dims[k], stride: 1 }
            }
        })
        .collect();
    let mut out = a.dims.clone();
    out[d] = hi - lo;
    push(comp, base, Shape::Array(ArrayShape::new(a.dtype, out)), Op::Slice { dims }, vec![x])
}

/// Split-K for grouped convolutions. The per-element kernel that runs them (one invocation per
/// four outputs) loops over the kernel's input features times its taps; past [`MAX_CONV_CONTRACTED`] the
/// convolution becomes the sum of convolutions over chunks of the input features, each within
/// the limit (or one feature each, when the taps alone are past it), summed by one `reduce` over
/// their concatenation. With `batch_group_count`, the lhs input features and the rhs kernel
/// input features are sliced alike; with `feature_group_count = G`, the lhs features are G
/// groups of the kernel's C, so chunk `[lo, hi)` takes `[g*C + lo, g*C + hi)` of every group g
/// (a reshape to `(G, C)`, a slice, a reshape back). Ungrouped convolutions run as the blocked
/// kernel, whose loops are short, and are left alone.
fn split_conv(module: &mut Module, comp_id: CompId, id: InstrId) -> Result<Option<InstrId>, PassError> {
    let comp = module.comp(comp_id);
    let instr = comp.instr(id);
    let Op::Convolution { window, dims, feature_group_count, batch_group_count, precision } = &instr.op else {
        return Ok(None);
    };
    let (fg, bg) = (*feature_group_count, *batch_group_count);
    if (fg <= 1 && bg <= 1) || (fg > 1 && bg > 1) {
        return Ok(None);
    }
    let (Some(out), Some(ls), Some(rs)) = (
        array(&instr.shape).cloned(),
        array(&comp.instr(instr.operands[0]).shape).cloned(),
        array(&comp.instr(instr.operands[1]).shape).cloned(),
    ) else {
        return Ok(None);
    };
    let c = rs.dims[dims.kernel_input_feature as usize].max(0) as u64;
    let taps: u64 = dims.kernel_spatial.iter().map(|&d| rs.dims[d as usize].max(0) as u64).product();
    if c * taps <= MAX_CONV_CONTRACTED || c <= 1 || taps == 0 || out.num_elements() == 0 {
        return Ok(None);
    }
    if fg > 1 && ls.dims[dims.input_feature as usize] as u64 != c * fg as u64 {
        return Ok(None);
    }
    // Partial sums in f32 for narrow floats; booleans have no `add` to sum with.
    let acc = match out.dtype {
        DType::Pred => return Ok(None),
        d if d.is_narrow_float() => DType::F32,
        d => d,
    };
    // The fewest chunks whose features fit the limit, as even as they can be.
    let most = (MAX_CONV_CONTRACTED / taps).max(1);
    let chunk = c.div_ceil(c.div_ceil(most));
    let count = c.div_ceil(chunk);
    let (window, dims, precision) = (window.clone(), dims.clone(), precision.clone());
    let add = add_computation(module, acc);
    let comp = module.comp_mut(comp_id);
    let base = comp.instr(id).name.clone();
    let (lhs, rhs) = (comp.instr(id).operands[0], comp.instr(id).operands[1]);
    let fd = dims.input_feature as usize;
    // The lhs with its feature dimension as (G, C), for feature groups.
    let grouped_lhs = (fg > 1).then(|| {
        let mut d = ls.dims.clone();
        d[fd] = fg;
        d.insert(fd + 1, c as i64);
        reshape(comp, &format!("{base}_groups"), Shape::Array(ArrayShape::new(ls.dtype, d)), lhs)
    });
    let mut stacked_dims = vec![1];
    stacked_dims.extend(&out.dims);
    let stacked = Shape::Array(ArrayShape::new(acc, stacked_dims));
    let mut partials = Vec::with_capacity(count as usize);
    for j in 0..count {
        let (lo, hi) = ((j * chunk) as i64, ((j + 1) * chunk).min(c) as i64);
        let l = match grouped_lhs {
            Some(g) => {
                let s = slice(comp, &format!("{base}_lhs"), g, fd + 1, lo, hi);
                let mut d = ls.dims.clone();
                d[fd] = fg * (hi - lo);
                reshape(comp, &format!("{base}_lhs"), Shape::Array(ArrayShape::new(ls.dtype, d)), s)
            }
            None => slice(comp, &format!("{base}_lhs"), lhs, fd, lo, hi),
        };
        let r = slice(comp, &format!("{base}_rhs"), rhs, dims.kernel_input_feature as usize, lo, hi);
        let op = Op::Convolution {
            window: window.clone(),
            dims: dims.clone(),
            feature_group_count: fg,
            batch_group_count: bg,
            precision: precision.clone(),
        };
        let part = push(
            comp,
            &format!("{base}_partial"),
            Shape::Array(ArrayShape::new(acc, out.dims.clone())),
            op,
            vec![l, r],
        );
        partials.push(reshape(comp, &format!("{base}_partial"), stacked.clone(), part));
    }
    let mut all_dims = vec![count as i64];
    all_dims.extend(&out.dims);
    let all = push(
        comp,
        &format!("{base}_partials"),
        Shape::Array(ArrayShape::new(acc, all_dims)),
        Op::Concatenate { dimension: 0 },
        partials,
    );
    let zero = push(
        comp,
        &format!("{base}_init"),
        Shape::Array(ArrayShape::scalar(acc)),
        Op::Constant(Box::new(hlo_ir::Literal::zeros(ArrayShape::scalar(acc)))),
        vec![],
    );
    let sum = push(
        comp,
        &format!("{base}_sum"),
        Shape::Array(ArrayShape::new(acc, out.dims.clone())),
        Op::Reduce { dimensions: vec![0], to_apply: add },
        vec![all, zero],
    );
    if acc == out.dtype {
        return Ok(Some(sum));
    }
    Ok(Some(push(comp, &format!("{base}_convert"), Shape::Array(out), Op::Convert, vec![sum])))
}

#[cfg(test)]
mod tests {
    use crate::util::testing::{parse, run};
    use hlo_ir::{ArrayData, Literal};

    /// Runs the pass on `text` and checks that the interpreter gives the same results before and
    /// after (up to float reassociation), and that no level reduces more than the limits.
    fn check_equivalent(text: &str) {
        let before = parse(text);
        let (changed, after) = run(super::run, text);
        assert!(changed, "nothing split");
        for comp in &after.comps {
            for instr in &comp.instrs {
                if let hlo_ir::Op::Reduce { dimensions, .. } = &instr.op {
                    let input = comp.instr(instr.operands[0]).shape.as_array().unwrap();
                    let n: i64 = dimensions.iter().map(|&d| input.dims[d as usize]).product();
                    assert!(n as u64 <= super::MAX_REDUCED, "{} still reduces {n}", instr.name);
                }
                if let hlo_ir::Op::Convolution { dims, feature_group_count, batch_group_count, .. } = &instr.op {
                    let rs = comp.instr(instr.operands[1]).shape.as_array().unwrap();
                    let c = rs.dims[dims.kernel_input_feature as usize] as u64;
                    let taps: i64 = dims.kernel_spatial.iter().map(|&d| rs.dims[d as usize]).product();
                    let grouped = *feature_group_count > 1 || *batch_group_count > 1;
                    assert!(
                        !grouped || c == 1 || c * taps as u64 <= super::MAX_CONV_CONTRACTED,
                        "{} still contracts {c} x {taps}",
                        instr.name
                    );
                }
            }
        }
        let args: Vec<Literal> = before
            .entry_comp()
            .param_shapes()
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let a = s.as_array().unwrap().clone();
                let n = a.num_elements() as usize;
                let data = match a.dtype {
                    hlo_ir::DType::F32 => {
                        ArrayData::F32((0..n).map(|i| ((i * 7919 + k * 13) % 1000) as f32 / 500.0 - 1.0).collect())
                    }
                    hlo_ir::DType::S32 => {
                        ArrayData::S32((0..n).map(|i| ((i * 7919 + k) % 2001) as i32 - 1000).collect())
                    }
                    other => panic!("no test data for {other}"),
                };
                Literal::array(a, data)
            })
            .collect();
        let opts = hlo_interp::Options::default();
        let want = hlo_interp::evaluate_with(&before, &args, &opts).unwrap();
        let got = hlo_interp::evaluate_with(&after, &args, &opts).unwrap();
        let flat = |l: &Literal| -> Vec<f64> {
            let mut out = Vec::new();
            let mut stack = vec![l];
            while let Some(l) = stack.pop() {
                match l.tuple_elements() {
                    Some(t) => stack.extend(t.iter().rev()),
                    None => match l.array_data().unwrap() {
                        ArrayData::F32(v) => out.extend(v.iter().map(|&x| x as f64)),
                        ArrayData::S32(v) => out.extend(v.iter().map(|&x| x as f64)),
                        ArrayData::BF16(v) => out.extend(v.iter().map(|&x| x.to_f64())),
                        other => panic!("unexpected {other:?}"),
                    },
                }
            }
            out
        };
        let (w, g) = (flat(&want), flat(&got));
        assert_eq!(w.len(), g.len());
        // bf16 results may round the reordered sum to the neighbouring value.
        let narrow = before.entry_comp().root_instr().shape.leaves().iter().any(|a| a.dtype.is_narrow_float());
        let tol = if narrow { 1e-2 } else { 1e-3 };
        for (a, b) in w.iter().zip(&g) {
            assert!((a - b).abs() <= tol * a.abs().max(1.0), "{a} vs {b}");
        }
    }

    const ADD: &str = "add {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}\n";

    #[test]
    fn one_long_dimension_is_padded_and_split() {
        check_equivalent(&format!(
            "HloModule m\n{ADD}ENTRY e {{\n  x = f32[3,100003] parameter(0)\n  z = f32[] constant(0)\n  ROOT r = f32[3] reduce(x, z), dimensions={{1}}, to_apply=add\n}}\n"
        ));
        check_equivalent(&format!(
            "HloModule m\n{ADD}ENTRY e {{\n  x = f32[5000000] parameter(0)\n  z = f32[] constant(0)\n  ROOT r = f32[] reduce(x, z), dimensions={{0}}, to_apply=add\n}}\n"
        ));
    }

    #[test]
    fn several_dimensions_reduce_innermost_first() {
        check_equivalent(&format!(
            "HloModule m\n{ADD}ENTRY e {{\n  x = f32[300,3,300] parameter(0)\n  z = f32[] constant(0)\n  ROOT r = f32[3] reduce(x, z), dimensions={{0,2}}, to_apply=add\n}}\n"
        ));
    }

    #[test]
    fn variadic_argmax_splits_with_its_init_values() {
        check_equivalent(
            r#"HloModule m
argmax {
  a = f32[] parameter(0)
  i = s32[] parameter(1)
  b = f32[] parameter(2)
  j = s32[] parameter(3)
  gt = pred[] compare(a, b), direction=GT
  eq = pred[] compare(a, b), direction=EQ
  lt = pred[] compare(i, j), direction=LT
  tie = pred[] and(eq, lt)
  keep = pred[] or(gt, tie)
  v = f32[] select(keep, a, b)
  k = s32[] select(keep, i, j)
  ROOT t = (f32[], s32[]) tuple(v, k)
}
ENTRY e {
  x = f32[200001] parameter(0)
  ix = s32[200001] iota(), iota_dimension=0
  ninf = f32[] constant(-inf)
  zero = s32[] constant(0)
  ROOT r = (f32[], s32[]) reduce(x, ix, ninf, zero), dimensions={0}, to_apply=argmax
}
"#,
        );
    }

    #[test]
    fn long_dots_contract_in_two_levels() {
        check_equivalent(
            "HloModule m\nENTRY e {\n  a = f32[2,100001] parameter(0)\n  b = f32[100001,3] parameter(1)\n  ROOT d = f32[2,3] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n}\n",
        );
        check_equivalent(
            "HloModule m\nENTRY e {\n  a = f32[4,200,300] parameter(0)\n  b = f32[4,300,200] parameter(1)\n  ROOT d = f32[4] dot(a, b), lhs_batch_dims={0}, rhs_batch_dims={0}, lhs_contracting_dims={1,2}, rhs_contracting_dims={2,1}\n}\n",
        );
    }

    /// `ROOT c = {out} convolution(x, w), {attrs}` over f32 parameters `x: {input}`, `w: {kernel}`.
    fn conv(input: &str, kernel: &str, out: &str, attrs: &str) -> String {
        format!(
            "HloModule m\nENTRY e {{\n  x = {input} parameter(0)\n  w = {kernel} parameter(1)\n  \
             ROOT c = {out} convolution(x, w), {attrs}\n}}\n"
        )
    }

    #[test]
    fn batch_grouped_convolutions_split_their_features() {
        // A depthwise weight gradient (JAX's `f01b_i01o->01bf`): 48 x 16 x 16 contracted per
        // output, three chunks of 16 features.
        let attrs = "window={size=16x16 pad=1_1x1_1}, dim_labels=f01b_i01o->01bf, batch_group_count=4";
        check_equivalent(&conv("f32[48,16,16,4]", "f32[48,16,16,4]", "f32[3,3,1,4]", attrs));
        // An uneven split (five chunks of 8 features, one of 5) with a depth multiplier of 2 (6
        // output features).
        let attrs = "window={size=22x22 pad=1_1x1_1}, dim_labels=f01b_i01o->01bf, batch_group_count=3";
        check_equivalent(&conv("f32[45,24,24,3]", "f32[45,22,22,6]", "f32[5,5,1,6]", attrs));
        // XLA's DepthwiseBatchOuterDot with fewer positions: 8 x 30 x 30 x 3 per output, the taps
        // alone 2,700, so eight chunks of one feature.
        let attrs = "window={size=30x30x3 pad=0_0x29_29x0_0 lhs_dilate=30x1x3 rhs_dilate=29x1x1}, \
                     dim_labels=f01b2_i01o2->01fb2, batch_group_count=2";
        check_equivalent(&conv("f32[8,30,1,2,5]", "f32[8,30,30,2,3]", "f32[30,30,2,1,11]", attrs));
    }

    #[test]
    fn feature_grouped_convolutions_split_every_group() {
        // Two groups of 20 features, a depth multiplier of 2: 20 x 30 x 30 per output, five
        // chunks of 4 features from each group.
        let attrs = "window={size=30x30}, dim_labels=b01f_01io->b01f, feature_group_count=2";
        check_equivalent(&conv("f32[2,32,32,40]", "f32[30,30,20,4]", "f32[2,3,3,4]", attrs));
        // Three groups of 21 features in chunks of 4 and a last one of 1, features first.
        let attrs = "window={size=30x30 pad=1_0x0_1}, dim_labels=bf01_oi01->bf01, feature_group_count=3";
        check_equivalent(&conv("f32[1,63,31,31]", "f32[3,21,30,30]", "f32[1,3,3,3]", attrs));
    }

    #[test]
    fn narrow_float_convolutions_sum_their_chunks_in_f32() {
        check_equivalent(
            "HloModule m\nENTRY e {\n  x = f32[2,32,32,40] parameter(0)\n  w = f32[30,30,20,4] parameter(1)\n  \
             xb = bf16[2,32,32,40] convert(x)\n  wb = bf16[30,30,20,4] convert(w)\n  \
             ROOT c = bf16[2,3,3,4] convolution(xb, wb), window={size=30x30}, dim_labels=b01f_01io->b01f, \
             feature_group_count=2\n}\n",
        );
        let (_, after) = run(
            super::run,
            &conv(
                "bf16[2,32,32,40]",
                "bf16[30,30,20,4]",
                "bf16[2,3,3,4]",
                "window={size=30x30}, dim_labels=b01f_01io->b01f, feature_group_count=2",
            ),
        );
        let root = after.entry_comp().root_instr();
        assert!(matches!(root.op, hlo_ir::Op::Convert), "{}", root.name);
        assert_eq!(after.entry_comp().instr(root.operands[0]).shape.as_array().unwrap().dtype, hlo_ir::DType::F32);
    }

    #[test]
    fn taps_past_the_limit_take_one_feature_per_chunk() {
        let attrs = "window={size=130x130}, dim_labels=f01b_i01o->01bf, batch_group_count=2";
        check_equivalent(&conv("f32[3,131,131,2]", "f32[3,130,130,2]", "f32[2,2,1,2]", attrs));
    }

    #[test]
    fn short_or_ungrouped_convolutions_are_left_alone() {
        // 4 x 30 x 30 = 3,600 per output.
        let attrs = "window={size=30x30x1}, dim_labels=f01b2_i01o2->01fb2, batch_group_count=4";
        assert!(!run(super::run, &conv("f32[4,30,30,4,1]", "f32[4,30,30,4,1]", "f32[1,1,4,1,1]", attrs)).0);
        // Ungrouped: the blocked kernel's loops are short.
        let attrs = "window={size=30x30}, dim_labels=b01f_01io->b01f";
        assert!(!run(super::run, &conv("f32[1,30,30,40]", "f32[30,30,40,2]", "f32[1,1,1,2]", attrs)).0);
    }

    #[test]
    fn short_reductions_are_left_alone() {
        let text = format!(
            "HloModule m\n{ADD}ENTRY e {{\n  x = f32[3,32768] parameter(0)\n  z = f32[] constant(0)\n  ROOT r = f32[3] reduce(x, z), dimensions={{1}}, to_apply=add\n}}\n"
        );
        assert!(!run(super::run, &text).0);
    }
}
