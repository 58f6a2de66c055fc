//! Reductions: `reduce`, `reduce-window`, `select-and-scatter`, and `map`.
//!
//! Accumulation order follows XLA's evaluator: each result starts from the init value
//! and folds the inputs in row-major order of the reduced (or window) coordinates; folds of
//! 2^16 elements and more go in blocks of 32 (still in that order, see [`fold_with`]).
//! Window positions that fall into padding or between base-dilated elements are
//! skipped, as XLA's evaluator and CPU emitter do (equivalent to padding with the init
//! value when it is the reducer's identity, which is what every frontend emits).
//!
//! Single-input reductions whose reducer is one binary op on its two parameters run as
//! typed folds ([`fold_fast`]); every other reducer goes through a [`ScalarFn`].

use crate::array::{array_of, make};
use crate::error::{invalid, unsupported, OpResult};
use crate::eval::Interp;
use crate::index::{num_elements, separable_map, strides};
use crate::options::{flush_in_place, flushed};
use crate::scalar::{self, Scalar, ScalarFn};
use crate::scalar_ops::{self as so, Narrow};
use half::{bf16, f16};
use hlo_ir::{ArrayData as AD, ArrayShape, BinaryOp, CompId, Literal, LiteralData, Shape, Window};
use std::borrow::Cow;

/// From this many reduced elements on, [`fold_with`] folds in blocks (see there).
const BLOCKED_FOLD_MIN: usize = 1 << 16;
/// Block length of a blocked fold: XLA:CPU's (see hlo-passes' tree-reduction).
const FOLD_BLOCK: usize = 32;

/// Folds `x[base + offsets[k]]` for every k, from `init`. Long folds go in blocks of 32 whose
/// results are folded the same way, in index order: an f32 sum of 2^24 terms done one by one
/// loses 1% (every term below half an ulp of the running sum vanishes), which no real backend
/// shows; XLA's own vectorised loops add in blocks too. The order stays left to right, so
/// associative but non-commutative reducers give the same result as a sequential fold.
fn fold_with<T: Copy>(x: &[T], base: usize, offsets: &[usize], init: T, f: &impl Fn(T, T) -> T) -> T {
    if offsets.len() >= BLOCKED_FOLD_MIN {
        let mut level: Vec<T> = offsets
            .chunks(FOLD_BLOCK)
            .map(|c| c[1..].iter().fold(x[base + c[0]], |acc, &o| f(acc, x[base + o])))
            .collect();
        while level.len() > FOLD_BLOCK {
            level = level.chunks(FOLD_BLOCK).map(|c| c[1..].iter().fold(c[0], |acc, &v| f(acc, v))).collect();
        }
        return level.into_iter().fold(init, f);
    }
    let mut acc = init;
    for &o in offsets {
        acc = f(acc, x[base + o]);
    }
    acc
}

/// A typed fold of one output element for the trivial reducers; the caller supplies
/// the element's base offset and the offsets of the reduced elements relative to it.
pub struct FastFold {
    op: BinaryOp,
    /// Flush denormals (see [`crate::Options`]); applied to inputs and results.
    flush: bool,
}

macro_rules! fast_arms {
    ($self:ident, $x:ident, $init:ident, $items:ident, $body:ident) => {{
        let op = $self.op;
        Ok(match ($x, $init) {
            (AD::Pred(x), AD::Pred(i)) => AD::Pred($body(x, i[0], $items, so::pred_binop(op)?)),
            (AD::S8(x), AD::S8(i)) => AD::S8($body(x, i[0], $items, so::int_binop(op)?)),
            (AD::S16(x), AD::S16(i)) => AD::S16($body(x, i[0], $items, so::int_binop(op)?)),
            (AD::S32(x), AD::S32(i)) => AD::S32($body(x, i[0], $items, so::int_binop(op)?)),
            (AD::S64(x), AD::S64(i)) => AD::S64($body(x, i[0], $items, so::int_binop(op)?)),
            (AD::U8(x), AD::U8(i)) => AD::U8($body(x, i[0], $items, so::int_binop(op)?)),
            (AD::U16(x), AD::U16(i)) => AD::U16($body(x, i[0], $items, so::int_binop(op)?)),
            (AD::U32(x), AD::U32(i)) => AD::U32($body(x, i[0], $items, so::int_binop(op)?)),
            (AD::U64(x), AD::U64(i)) => AD::U64($body(x, i[0], $items, so::int_binop(op)?)),
            (AD::F32(x), AD::F32(i)) => AD::F32($body(x, i[0], $items, so::float_binop(op)?)),
            (AD::F64(x), AD::F64(i)) => AD::F64($body(x, i[0], $items, so::float_binop(op)?)),
            (AD::F16(x), AD::F16(i)) => {
                let g = so::float_binop::<f32>(op)?;
                AD::F16($body(x, i[0], $items, move |a: f16, b: f16| Narrow::from_f32(g(a.to_f32(), b.to_f32()))))
            }
            (AD::BF16(x), AD::BF16(i)) => {
                let g = so::float_binop::<f32>(op)?;
                AD::BF16($body(x, i[0], $items, move |a: bf16, b: bf16| Narrow::from_f32(g(a.to_f32(), b.to_f32()))))
            }
            (AD::C64(x), AD::C64(i)) => AD::C64($body(x, i[0], $items, so::complex_binop(op)?)),
            (AD::C128(x), AD::C128(i)) => AD::C128($body(x, i[0], $items, so::complex_binop(op)?)),
            _ => return unsupported("reduction of this element type"),
        })
    }};
}

/// One output element per `bases[k]`, each folding the same relative `offsets`.
fn fold_regular<T: Copy>(x: &[T], init: T, items: (&[usize], &[usize]), f: impl Fn(T, T) -> T) -> Vec<T> {
    let (bases, offsets) = items;
    bases.iter().map(|&b| fold_with(x, b, offsets, init, &f)).collect()
}

/// One output element per window, each folding its own absolute offsets.
fn fold_windows<T: Copy>(x: &[T], init: T, windows: &Windows, f: impl Fn(T, T) -> T) -> Vec<T> {
    if let Some(d) = windows.single_long_dim() {
        return fold_lines(x, init, windows, d, &f);
    }
    let mut buf = Vec::new();
    (0..windows.n_out)
        .map(|k| {
            windows.offsets(k, &mut buf);
            fold_with(x, 0, &buf, init, &f)
        })
        .collect()
}

impl FastFold {
    fn regular(&self, x: &AD, init: &AD, bases: &[usize], offsets: &[usize]) -> OpResult<AD> {
        let (x, init) = self.inputs(x, init);
        let (x, init) = (x.as_ref(), init.as_ref());
        let items = (bases, offsets);
        self.output(fast_arms!(self, x, init, items, fold_regular))
    }

    fn windows(&self, x: &AD, init: &AD, windows: &Windows) -> OpResult<AD> {
        let (x, init) = self.inputs(x, init);
        let (x, init) = (x.as_ref(), init.as_ref());
        self.output(fast_arms!(self, x, init, windows, fold_windows))
    }

    /// Inputs as the float environment reads them (flushing only once, up front).
    fn inputs<'d>(&self, x: &'d AD, init: &'d AD) -> (Cow<'d, AD>, Cow<'d, AD>) {
        if self.flush {
            (flushed(x), flushed(init))
        } else {
            (Cow::Borrowed(x), Cow::Borrowed(init))
        }
    }

    fn output(&self, res: OpResult<AD>) -> OpResult<AD> {
        let mut res = res?;
        if self.flush {
            flush_in_place(&mut res);
        }
        Ok(res)
    }
}

/// Inputs of a variadic reduction with their shapes, and the init values.
type Inputs<'a> = (Vec<(&'a ArrayShape, &'a AD)>, Vec<&'a AD>);

/// Splits the operands of a variadic reduce into inputs and init values, checking them.
fn split_inputs<'a>(ops: &'a [&'a Literal]) -> OpResult<Inputs<'a>> {
    if ops.is_empty() || !ops.len().is_multiple_of(2) {
        return invalid("expected inputs followed by as many init values");
    }
    let n = ops.len() / 2;
    let inputs: Vec<_> = ops[..n].iter().map(|l| array_of(l)).collect::<OpResult<_>>()?;
    let inits: Vec<&AD> = ops[n..].iter().map(|l| array_of(l).map(|a| a.1)).collect::<OpResult<_>>()?;
    if inputs.iter().any(|(s, _)| s.dims != inputs[0].0.dims) {
        return invalid("inputs have different dimensions");
    }
    if inits.iter().any(|d| d.len() != 1) {
        return invalid("init values must be scalars");
    }
    Ok((inputs, inits))
}

/// The array shapes of a (possibly tuple) result, one per input.
fn out_shapes(out: &Shape, n: usize) -> OpResult<Vec<&ArrayShape>> {
    let shapes: Vec<&ArrayShape> = match out {
        Shape::Array(a) => vec![a],
        Shape::Tuple(elems) => elems.iter().map(|e| e.as_array()).collect::<Option<_>>().unwrap_or_default(),
        Shape::Token => Vec::new(),
    };
    if shapes.len() != n {
        return invalid(format!("expected {n} array results"));
    }
    Ok(shapes)
}

/// Wraps results as an array, or a tuple when the reduction is variadic.
fn finish(out: &Shape, shapes: &[&ArrayShape], data: Vec<AD>) -> OpResult<Literal> {
    for (s, d) in shapes.iter().zip(&data) {
        if !d.matches(s.dtype) || d.len() as u64 != s.num_elements() {
            return invalid(format!("reduction result does not match {s}"));
        }
    }
    Ok(match out {
        Shape::Array(_) => make(shapes[0], data.into_iter().next().expect("one result")),
        _ => Literal {
            shape: out.clone(),
            data: LiteralData::Tuple(shapes.iter().zip(data).map(|(s, d)| make(s, d)).collect()),
        },
    })
}

/// Runs a general reducer: for each output `k`, folds the elements at `offsets_of(k)`.
fn fold_general(
    interp: &Interp,
    to_apply: CompId,
    inputs: &[(&ArrayShape, &AD)],
    inits: &[&AD],
    out_shapes: &[&ArrayShape],
    n_out: usize,
    mut offsets_of: impl FnMut(usize, &mut Vec<usize>),
) -> OpResult<Vec<AD>> {
    let n = inputs.len();
    let mut func = ScalarFn::new(interp, to_apply)?;
    if func.n_params() != 2 * n {
        return invalid(format!("reducer takes {} parameters, expected {}", func.n_params(), 2 * n));
    }
    let mut res: Vec<AD> = out_shapes.iter().map(|s| AD::zeros(s.dtype, n_out)).collect();
    let init: Vec<Scalar> = inits.iter().map(|d| scalar::get(d, 0)).collect();
    let mut args = vec![Scalar::Pred(false); 2 * n];
    let mut outs = Vec::with_capacity(n);
    let mut offsets = Vec::new();
    for k in 0..n_out {
        args[..n].copy_from_slice(&init);
        offsets_of(k, &mut offsets);
        for &o in &offsets {
            for (j, (_, d)) in inputs.iter().enumerate() {
                args[n + j] = scalar::get(d, o);
            }
            func.call(&args, &mut outs)?;
            if outs.len() != n {
                return invalid("reducer returned the wrong number of values");
            }
            args[..n].copy_from_slice(&outs);
        }
        for (j, r) in res.iter_mut().enumerate() {
            if !scalar::set(r, k, args[j]) {
                return invalid("reducer result has the wrong element type");
            }
        }
    }
    Ok(res)
}

/// `reduce` over `dimensions` with the `to_apply` reducer.
pub fn reduce(
    interp: &Interp,
    to_apply: CompId,
    dimensions: &[i64],
    out: &Shape,
    ops: &[&Literal],
) -> OpResult<Literal> {
    let (inputs, inits) = split_inputs(ops)?;
    let shapes = out_shapes(out, inputs.len())?;
    let in_dims = &inputs[0].0.dims;
    let st = strides(in_dims);
    let rank = in_dims.len();
    if dimensions.iter().any(|&d| d < 0 || d as usize >= rank) {
        return invalid("reduce dimension out of range");
    }
    let kept: Vec<usize> = (0..rank).filter(|d| !dimensions.contains(&(*d as i64))).collect();
    let mut reduced: Vec<usize> = dimensions.iter().map(|&d| d as usize).collect();
    reduced.sort_unstable();
    reduced.dedup();
    let dims_terms = |ds: &[usize]| -> (Vec<i64>, Vec<Vec<i64>>) {
        let sizes: Vec<i64> = ds.iter().map(|&d| in_dims[d]).collect();
        let terms = ds.iter().map(|&d| (0..in_dims[d].max(0)).map(|i| i * st[d]).collect()).collect();
        (sizes, terms)
    };
    let (kept_sizes, kept_terms) = dims_terms(&kept);
    let (red_sizes, red_terms) = dims_terms(&reduced);
    let bases = separable_map(&kept_sizes, &kept_terms);
    let offsets = separable_map(&red_sizes, &red_terms);
    if shapes.iter().any(|s| s.dims != kept_sizes) {
        return invalid("reduce result dimensions do not match the kept dimensions");
    }
    let data = match scalar::trivial_binop(interp.module, to_apply) {
        Some(op) if inputs.len() == 1 => vec![FastFold { op, flush: interp.options.flush_denormals }.regular(
            inputs[0].1,
            inits[0],
            &bases,
            &offsets,
        )?],
        _ => fold_general(interp, to_apply, &inputs, &inits, &shapes, bases.len(), |k, buf| {
            buf.clear();
            buf.extend(offsets.iter().map(|&o| bases[k] + o));
        })?,
    };
    finish(out, &shapes, data)
}

/// The window positions along one dimension that land on operand elements, for one
/// output coordinate: `count` operand offsets `first + j * step`, in window order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    first: i64,
    step: i64,
    count: i64,
}

impl Run {
    const EMPTY: Run = Run { first: 0, step: 0, count: 0 };

    fn offset(&self, j: i64) -> i64 {
        self.first + j * self.step
    }
}

/// Greatest common divisor of two positive numbers.
fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The inverse of `a` modulo `m` (`a` and `m` coprime, `m >= 1`).
fn mod_inverse(a: i128, m: i128) -> i128 {
    let (mut r0, mut r1, mut s0, mut s1) = (a.rem_euclid(m), m, 1i128, 0i128);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (s0, s1) = (s1, s0 - q * s1);
    }
    s0.rem_euclid(m)
}

/// The window positions `k` in `0..size` of output coordinate `o` along one dimension
/// that land on an element: position `o * stride - pad_low + k * wdil` of the
/// base-dilated operand must be a multiple of `bdil` inside `[0, (n - 1) * bdil]`. The
/// valid `k` form an arithmetic progression, found in closed form (no walk over the
/// window, whose size may be the whole dimension, as in a cumulative sum).
fn window_run(w: &hlo_ir::WindowDim, n: i64, stride_elems: i64, o: i64) -> Run {
    let (size, wdil, bdil) = (w.size as i128, w.window_dilation as i128, w.base_dilation as i128);
    if n <= 0 || size <= 0 {
        return Run::EMPTY;
    }
    let a = o as i128 * w.stride as i128 - w.padding_low as i128;
    // k * wdil = -a (mod bdil): solvable when gcd(wdil, bdil) divides a.
    let g = gcd(wdil, bdil);
    if a.rem_euclid(g) != 0 {
        return Run::EMPTY;
    }
    let period = bdil / g;
    let k0 = ((-a / g).rem_euclid(period) * mod_inverse(wdil / g, period)).rem_euclid(period);
    // 0 <= a + k * wdil <= (n - 1) * bdil.
    let k_lo = 0.max((-a + wdil - 1).div_euclid(wdil));
    let k_hi = (size - 1).min(((n as i128 - 1) * bdil - a).div_euclid(wdil));
    let k1 = k_lo + (k0 - k_lo).rem_euclid(period);
    if k1 > k_hi {
        return Run::EMPTY;
    }
    let count = (k_hi - k1) / period + 1;
    let first = (a + k1 * wdil) / bdil * stride_elems as i128;
    let step = wdil / g * stride_elems as i128;
    Run { first: first as i64, step: step as i64, count: count as i64 }
}

/// The operand offsets covered by each window of a windowed op, in row-major window order.
pub struct Windows {
    pub n_out: usize,
    out_dims: Vec<i64>,
    /// `runs[d][o]`: the valid window positions along dimension `d` for output coordinate `o`.
    runs: Vec<Vec<Run>>,
}

impl Windows {
    /// Windows of `window` over an operand of dimensions `in_dims`, for `out_dims` outputs.
    pub fn new(in_dims: &[i64], window: &Window, out_dims: &[i64]) -> OpResult<Windows> {
        let rank = in_dims.len();
        if window.dims.len() != rank || out_dims.len() != rank {
            return invalid("window rank does not match the operand");
        }
        let st = strides(in_dims);
        let mut runs = Vec::with_capacity(rank);
        for d in 0..rank {
            let w = &window.dims[d];
            if w.stride < 1 || w.base_dilation < 1 || w.window_dilation < 1 || w.size < 0 {
                return invalid("window strides and dilations must be positive");
            }
            runs.push((0..out_dims[d].max(0)).map(|o| window_run(w, in_dims[d], st[d], o)).collect());
        }
        Ok(Windows { n_out: num_elements(out_dims), out_dims: out_dims.to_vec(), runs })
    }

    /// Writes the operand offsets of window `k` (row-major output order) into `buf`.
    pub fn offsets(&self, k: usize, buf: &mut Vec<usize>) {
        buf.clear();
        let rank = self.out_dims.len();
        let mut idx = vec![0i64; rank];
        crate::index::delinearize(k, &self.out_dims, &mut idx);
        let runs: Vec<Run> = (0..rank).map(|d| self.runs[d][idx[d] as usize]).collect();
        if runs.iter().any(|r| r.count == 0) {
            return;
        }
        let sizes: Vec<i64> = runs.iter().map(|r| r.count).collect();
        let terms: Vec<Vec<i64>> = runs.iter().map(|r| (0..r.count).map(|j| r.offset(j)).collect()).collect();
        buf.extend(separable_map(&sizes, &terms));
    }

    /// The one dimension whose windows may hold more than one element, when there is
    /// at most one (every 1-D window, and cumulative reductions along one axis).
    fn single_long_dim(&self) -> Option<usize> {
        let long: Vec<usize> = (0..self.runs.len()).filter(|&d| self.runs[d].iter().any(|r| r.count > 1)).collect();
        match long[..] {
            [] => self.runs.len().checked_sub(1),
            [d] => Some(d),
            _ => None,
        }
    }
}

/// Folds every window by walking lines along the one long dimension `d` (see
/// [`Windows::single_long_dim`]). When a window is the previous window of its line
/// extended at the end (a cumulative reduction), the fold continues from the previous
/// result, which is exactly the value a fold from scratch gives: the order of the
/// operations is the same. So a cumulative sum costs one operation per element.
fn fold_lines<T: Copy>(x: &[T], init: T, windows: &Windows, d: usize, f: &impl Fn(T, T) -> T) -> Vec<T> {
    let dims = &windows.out_dims;
    let mut res = vec![init; windows.n_out];
    if windows.n_out == 0 {
        return res;
    }
    let out_strides = strides(dims);
    let mut outer_dims = dims.clone();
    outer_dims[d] = 1;
    crate::index::for_each_index(&outer_dims, |idx| {
        let mut base = 0i64;
        let mut out_base = 0i64;
        for (k, &i) in idx.iter().enumerate() {
            out_base += i * out_strides[k];
            if k != d {
                let run = windows.runs[k][i as usize];
                if run.count == 0 {
                    return; // every window of the line is empty: init stays
                }
                base += run.first;
            }
        }
        let mut prev = Run::EMPTY;
        let mut acc = init;
        for o in 0..dims[d] {
            let run = windows.runs[d][o as usize];
            let extends = prev.count > 0 && run.first == prev.first && run.step == prev.step && run.count >= prev.count;
            let start = if extends { prev.count } else { 0 };
            if !extends {
                acc = init;
            }
            for j in start..run.count {
                acc = f(acc, x[(base + run.offset(j)) as usize]);
            }
            res[(out_base + o * out_strides[d]) as usize] = acc;
            prev = run;
        }
    });
    res
}

/// `reduce-window`.
pub fn reduce_window(
    interp: &Interp,
    to_apply: CompId,
    window: &Window,
    out: &Shape,
    ops: &[&Literal],
) -> OpResult<Literal> {
    let (inputs, inits) = split_inputs(ops)?;
    let shapes = out_shapes(out, inputs.len())?;
    let windows = Windows::new(&inputs[0].0.dims, window, &shapes[0].dims)?;
    let data = match scalar::trivial_binop(interp.module, to_apply) {
        Some(op) if inputs.len() == 1 => {
            vec![FastFold { op, flush: interp.options.flush_denormals }.windows(inputs[0].1, inits[0], &windows)?]
        }
        _ => fold_general(interp, to_apply, &inputs, &inits, &shapes, windows.n_out, |k, buf| windows.offsets(k, buf))?,
    };
    finish(out, &shapes, data)
}

/// `select-and-scatter`: for each source element, select one operand element of its
/// window (the first one that `select` prefers over all later ones), then combine the
/// source value into the result at that position with `scatter`.
pub fn select_and_scatter(
    interp: &Interp,
    select: CompId,
    scatter: CompId,
    window: &Window,
    out: &Shape,
    ops: &[&Literal],
) -> OpResult<Literal> {
    if ops.len() != 3 {
        return invalid("select-and-scatter takes operand, source and init value");
    }
    let (shape, operand) = array_of(ops[0])?;
    let (src_shape, source) = array_of(ops[1])?;
    let (_, init) = array_of(ops[2])?;
    let Shape::Array(out_shape) = out else {
        return invalid("select-and-scatter returns an array");
    };
    let windows = Windows::new(&shape.dims, window, &src_shape.dims)?;
    let mut select_fn = ScalarFn::new(interp, select)?;
    let mut scatter_fn = ScalarFn::new(interp, scatter)?;
    let mut res = scalar::splat(scalar::get(init, 0), operand.len());
    let mut buf = Vec::new();
    let mut outs = Vec::new();
    for k in 0..windows.n_out {
        windows.offsets(k, &mut buf);
        let Some((&first, rest)) = buf.split_first() else { continue };
        let mut selected = first;
        let mut selected_val = scalar::get(operand, first);
        for &o in rest {
            let cur = scalar::get(operand, o);
            if !select_fn.call1(&[selected_val, cur], &mut outs)?.as_bool()? {
                selected = o;
                selected_val = cur;
            }
        }
        let combined = scatter_fn.call1(&[scalar::get(&res, selected), scalar::get(source, k)], &mut outs)?;
        if !scalar::set(&mut res, selected, combined) {
            return invalid("scatter computation returned the wrong element type");
        }
    }
    if !res.matches(out_shape.dtype) {
        return invalid("select-and-scatter result type mismatch");
    }
    Ok(make(out_shape, res))
}

/// `map`: applies `to_apply` elementwise across the operands.
pub fn map(interp: &Interp, to_apply: CompId, out: &Shape, ops: &[&Literal]) -> OpResult<Literal> {
    let Shape::Array(out_shape) = out else {
        return invalid("map returns an array");
    };
    let inputs: Vec<&AD> = ops.iter().map(|l| array_of(l).map(|a| a.1)).collect::<OpResult<_>>()?;
    let n = out_shape.num_elements() as usize;
    if inputs.iter().any(|d| d.len() != n) {
        return invalid("map operands must have the result's dimensions");
    }
    let mut func = ScalarFn::new(interp, to_apply)?;
    let mut res = AD::zeros(out_shape.dtype, n);
    let mut args = vec![Scalar::Pred(false); inputs.len()];
    let mut outs = Vec::new();
    for i in 0..n {
        for (a, d) in args.iter_mut().zip(&inputs) {
            *a = scalar::get(d, i);
        }
        let v = func.call1(&args, &mut outs)?;
        if !scalar::set(&mut res, i, v) {
            return invalid("mapped computation returned the wrong element type");
        }
    }
    Ok(make(out_shape, res))
}
