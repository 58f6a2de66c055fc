//! Comparing Vulkan's outputs with the interpreter's.
//!
//! A static pass over the program ([`analyze`]) says, per output leaf, whether the value is
//! computed *exactly* (only correctly rounded, order-independent operations: data movement,
//! integer arithmetic, float add/subtract/multiply/max/min, conversions) and otherwise how much
//! relative error to expect: transcendental functions and divisions add a few ulps, and sums,
//! dots and convolutions multiply the error by the square root of the number of terms (the
//! device reassociates them: trees, strided partial sums).
//!
//! [`compare`] then checks integers and `pred` exactly, exact floats bit for bit (any NaN
//! equals any NaN), and inexact floats with `|got - want| <= tol * max(|want|, scale)` where
//! `scale` is the largest finite magnitude in that output: an absolute floor that absorbs
//! cancellation. NaN positions must match; infinities must match, except that an inexact
//! output may overflow in one order of summation and not the other.
//!
//! Functions whose condition number is unbounded (tan near its poles, sin/cos/exp of large
//! arguments, log near 1, atanh/acos/asin near ±1, pow, ...) turn an input that is only
//! approximately known into an output that is not known at all: tan(sum of 16k terms) differs
//! by 0.1% between two correct summation orders. Such leaves are [`Expect::checked`] `false`:
//! they still run (crashes, validation messages and timeouts count) but their values are not
//! compared. The same functions of *exact* inputs are compared as usual. Likewise a sum or
//! difference with an inexact operand may cancel ([`Expect::cancelled`]): its error is then
//! bounded only relative to the output's scale, which a nonlinear function (sqrt, rsqrt,
//! divide by it, ...) no longer respects, so such results are not compared either.

use hlo_ir::{ArrayShape, BinaryOp, CompId, Computation, DType, Module, Op, Shape, UnaryOp};
use hlo_run::npy::HostArray;

/// What to expect of one output leaf.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Expect {
    pub exact: bool,
    /// Estimated relative error (relative to the output's scale) of an inexact value.
    pub err: f64,
    /// The largest number of terms any value on the way was summed over.
    pub terms: f64,
    /// False once an ill-conditioned function was applied to an inexact value: then no
    /// tolerance bounds the result, and its value is not compared.
    pub checked: bool,
    /// The value may be a difference of nearly equal inexact values: small relative to its
    /// scale, with an error that is large relative to itself.
    pub cancelled: bool,
    /// The value is known to be >= 0 (or NaN): sums of such values do not cancel.
    pub nonneg: bool,
    /// Only elements finite in both are compared. A sum of complex products: the device sums
    /// each part's real products apart (`sum(ac) - sum(bd)`), XLA and the interpreter whole
    /// products (`sum(ac - bd)`), so an infinity may cancel into NaN in one and stay apart in
    /// the other. A complex power: an infinite result takes its signs from the cosine and sine
    /// of `c * arg(x) + d * ln|x|`, which one ulp of `arg` (an atan2 within its bound) moves by
    /// `c` ulps, a quarter turn when `c` is 2^24.
    pub only_finite: bool,
}

impl Expect {
    const EXACT: Expect = Expect {
        exact: true,
        err: 0.0,
        terms: 1.0,
        checked: true,
        cancelled: false,
        nonneg: false,
        only_finite: false,
    };

    fn merge(self, other: Expect) -> Expect {
        Expect {
            exact: self.exact && other.exact,
            err: self.err.max(other.err),
            terms: self.terms.max(other.terms),
            checked: self.checked && other.checked,
            cancelled: self.cancelled || other.cancelled,
            nonneg: self.nonneg && other.nonneg,
            only_finite: self.only_finite || other.only_finite,
        }
    }

    /// An op computed with `ulps` of error in its compute type (f32 for the narrow floats,
    /// which are then rounded once more to their own type).
    fn inexact(self, dtype: DType, ulps: f64) -> Expect {
        if !dtype.is_float() {
            return self;
        }
        let compute = if dtype == DType::F64 { eps(DType::F64) } else { eps(DType::F32) };
        let rounding = if dtype.is_narrow_float() { 0.5 * eps(dtype) } else { 0.0 };
        Expect { exact: false, err: self.err * 2.0 + ulps * compute + rounding, ..self }
    }

    /// A sum of `n` terms like this value: it may cancel unless the terms are nonnegative.
    fn summed(self, dtype: DType, n: f64) -> Expect {
        if !dtype.is_float() || n <= 1.0 {
            return self;
        }
        let cancelled = self.cancelled || !self.nonneg;
        Expect {
            exact: false,
            err: (self.err + 4.0 * eps(dtype)) * n.sqrt() * 2.0,
            terms: self.terms * n,
            cancelled,
            ..self
        }
    }

    /// An ill-conditioned function of this value: unchecked unless the value is exact.
    fn ill_conditioned(self, dtype: DType, ulps: f64) -> Expect {
        let out = self.inexact(dtype, ulps);
        Expect { checked: self.checked && (self.exact || !dtype.is_float()), cancelled: false, ..out }
    }

    /// A well-conditioned nonlinear function of this value: unchecked if the value may have
    /// cancelled (its relative error is unknown).
    fn nonlinear(self, dtype: DType, ulps: f64) -> Expect {
        let out = self.inexact(dtype, ulps);
        Expect { checked: self.checked && !self.cancelled, cancelled: false, ..out }
    }
}

/// Machine epsilon of a float type (1 for others, which never use it).
pub fn eps(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => f64::EPSILON,
        DType::F32 => f32::EPSILON as f64,
        DType::F16 => 9.765_625e-4,
        DType::BF16 => 7.812_5e-3,
        d => match hlo_ir::print::MiniFloat::of(d) {
            Some(format) => 2f64.powi(-(format.mantissa_bits as i32)),
            None => 1.0,
        },
    }
}

/// What to expect of each output leaf of `module`, in flattening order.
pub fn analyze(module: &Module) -> Vec<Expect> {
    let entry = module.entry_comp();
    let params = vec![Expect::EXACT; entry.params.len()];
    let facts = analyze_comp(module, module.entry, &params);
    let mut out = Vec::new();
    leaves(entry, entry.root, &facts, &mut out);
    out
}

fn leaves(comp: &Computation, id: hlo_ir::InstrId, facts: &[Expect], out: &mut Vec<Expect>) {
    let instr = comp.instr(id);
    match (&instr.op, &instr.shape) {
        (Op::Tuple, _) => instr.operands.iter().for_each(|&o| leaves(comp, o, facts, out)),
        (_, Shape::Tuple(elems)) => out.extend(std::iter::repeat_n(facts[id.index()], count_leaves(elems))),
        _ => out.push(facts[id.index()]),
    }
}

fn count_leaves(elems: &[Shape]) -> usize {
    elems.iter().map(|e| if let Shape::Tuple(t) = e { count_leaves(t) } else { 1 }).sum()
}

fn dtype_of(shape: &Shape) -> DType {
    match shape {
        Shape::Array(a) => a.dtype,
        Shape::Tuple(t) => t.first().map(dtype_of).unwrap_or(DType::Pred),
        Shape::Token => DType::Pred,
    }
}

/// Whether `comp` (a reducer) adds or multiplies floats, which reassociation changes.
fn reassociating(module: &Module, comp: CompId) -> bool {
    module.comp(comp).instrs.iter().any(|i| {
        matches!(i.op, Op::Binary(BinaryOp::Add | BinaryOp::Multiply | BinaryOp::Subtract))
            && dtype_of(&i.shape).is_float()
    })
}

fn analyze_comp(module: &Module, comp_id: CompId, params: &[Expect]) -> Vec<Expect> {
    let comp = module.comp(comp_id);
    let mut facts: Vec<Expect> = Vec::with_capacity(comp.instrs.len());
    for instr in &comp.instrs {
        let ops: Vec<Expect> = instr.operands.iter().map(|o| facts[o.index()]).collect();
        let merged = ops.iter().fold(Expect { nonneg: !ops.is_empty(), ..Expect::EXACT }, |a, &b| a.merge(b));
        let dtype = dtype_of(&instr.shape);
        let dims = |k: usize| -> Vec<i64> {
            comp.instr(instr.operands[k]).shape.as_array().map(|a| a.dims.clone()).unwrap_or_default()
        };
        let complex = |s: &Shape| s.leaves().iter().any(|a| a.dtype.is_complex());
        let on_complex = complex(&instr.shape) || instr.operands.iter().any(|&o| complex(&comp.instr(o).shape));
        let fact = match &instr.op {
            Op::Parameter { number } => params.get(*number as usize).copied().unwrap_or(Expect::EXACT),
            _ if on_complex => complex_fact(instr, merged, dtype),
            Op::Unary(u) => match u {
                UnaryOp::Abs
                | UnaryOp::Negate
                | UnaryOp::Not
                | UnaryOp::Floor
                | UnaryOp::Ceil
                | UnaryOp::RoundNearestAfz
                | UnaryOp::RoundNearestEven
                | UnaryOp::Sign
                | UnaryOp::IsFinite
                | UnaryOp::Clz
                | UnaryOp::PopulationCount => merged,
                UnaryOp::Tan
                | UnaryOp::Sin
                | UnaryOp::Cos
                | UnaryOp::Exp
                | UnaryOp::Expm1
                | UnaryOp::Log
                | UnaryOp::Log1p
                | UnaryOp::Logistic
                | UnaryOp::Acos
                | UnaryOp::Asin
                | UnaryOp::Acosh
                | UnaryOp::Atanh
                | UnaryOp::Sinh
                | UnaryOp::Cosh => merged.ill_conditioned(dtype, 8.0),
                _ => merged.nonlinear(dtype, 8.0),
            },
            Op::Binary(BinaryOp::Add | BinaryOp::Subtract) if dtype.is_float() && !merged.exact => {
                let same_signs = matches!(instr.op, Op::Binary(BinaryOp::Add)) && merged.nonneg;
                Expect { cancelled: merged.cancelled || !same_signs, ..merged }
            }
            // `a * b + c` may be contracted into one fused multiply-add or not, depending on
            // how the program was fused (XLA:CPU contracts within a fusion, after duplicating
            // the multiply into each consumer): both roundings are right.
            Op::Binary(BinaryOp::Add | BinaryOp::Subtract)
                if dtype.is_float()
                    && instr.operands.iter().any(|&o| matches!(comp.instr(o).op, Op::Binary(BinaryOp::Multiply))) =>
            {
                Expect { cancelled: true, ..merged.inexact(dtype, 1.0) }
            }
            Op::Binary(BinaryOp::Divide) => {
                let divisor = ops.get(1).copied().unwrap_or(Expect::EXACT);
                let out = merged.inexact(dtype, 8.0);
                Expect { checked: out.checked && !divisor.cancelled, ..out }
            }
            Op::Binary(BinaryOp::Power | BinaryOp::Atan2) => merged.ill_conditioned(dtype, 8.0),
            Op::Reduce { dimensions, to_apply } => {
                let d = dims(0);
                let n: i64 = dimensions.iter().map(|&k| d.get(k as usize).copied().unwrap_or(1)).product();
                if reassociating(module, *to_apply) {
                    merged.summed(dtype, n as f64)
                } else {
                    merged
                }
            }
            Op::ReduceWindow { window, to_apply } => {
                let n: i64 = window.dims.iter().map(|w| w.size).product();
                if reassociating(module, *to_apply) {
                    merged.summed(dtype, n as f64)
                } else {
                    merged
                }
            }
            Op::Dot { dims: dd, .. } => {
                let d = dims(0);
                let n: i64 = dd.lhs_contracting.iter().map(|&k| d.get(k as usize).copied().unwrap_or(1)).product();
                merged.summed(dtype, n as f64)
            }
            Op::Convolution { window, dims: cd, .. } => {
                let d = dims(0);
                let n: i64 = window.dims.iter().map(|w| w.size).product::<i64>()
                    * d.get(cd.input_feature as usize).copied().unwrap_or(1);
                merged.summed(dtype, n as f64)
            }
            Op::Scatter { to_apply, .. } => {
                if reassociating(module, *to_apply) {
                    merged.summed(dtype, 16.0)
                } else {
                    merged
                }
            }
            Op::While { body, .. } => {
                let mut state = merged;
                for _ in 0..3 {
                    let body_facts = analyze_comp(module, *body, &[state]);
                    let out = body_facts[module.comp(*body).root.index()];
                    state = state.merge(out);
                }
                state
            }
            Op::Conditional { branches } => {
                let mut out = merged;
                for (k, &b) in branches.iter().enumerate() {
                    let arg = ops.get(k + 1).copied().unwrap_or(Expect::EXACT);
                    let f = analyze_comp(module, b, &[arg]);
                    out = out.merge(f[module.comp(b).root.index()]);
                }
                out
            }
            Op::Fusion { calls, .. } | Op::Call { to_apply: calls, .. } => {
                let f = analyze_comp(module, *calls, &ops);
                f[module.comp(*calls).root.index()]
            }
            Op::Map { to_apply, .. } => {
                let f = analyze_comp(module, *to_apply, &ops);
                f[module.comp(*to_apply).root.index()]
            }
            _ => merged,
        };
        let fact = Expect { nonneg: nonneg(instr, &ops, fact.nonneg), ..fact };
        facts.push(fact);
    }
    facts
}

/// What a complex op does to its error: data movement and `complex`/`real`/`imag` keep it;
/// add and subtract round once; products, quotients, sums and transforms mix parts with
/// differences (`ac - bd`), so they may cancel; transcendental functions are unchecked
/// unless their operand is exact.
fn complex_fact(instr: &hlo_ir::Instr, merged: Expect, dtype: DType) -> Expect {
    let part = dtype.complex_component().unwrap_or(if dtype == DType::F64 { DType::F64 } else { DType::F32 });
    match &instr.op {
        Op::Binary(BinaryOp::Complex)
        | Op::Unary(UnaryOp::Real | UnaryOp::Imag | UnaryOp::Negate)
        | Op::Compare { .. }
        | Op::Select
        | Op::Broadcast { .. }
        | Op::Reshape
        | Op::Transpose { .. }
        | Op::Slice { .. }
        | Op::Reverse { .. }
        | Op::Concatenate { .. }
        | Op::Copy
        | Op::Tuple
        | Op::GetTupleElement { .. }
        | Op::Constant(_) => merged,
        Op::Binary(BinaryOp::Add | BinaryOp::Subtract) => Expect { cancelled: true, ..merged.inexact(part, 1.0) },
        Op::Binary(BinaryOp::Multiply) => Expect { cancelled: true, ..merged.inexact(part, 4.0) },
        Op::Reduce { .. } | Op::Dot { .. } | Op::Fft { .. } | Op::Convolution { .. } => {
            let n = 4096.0;
            Expect { cancelled: true, only_finite: true, ..merged.summed(part, n) }
        }
        Op::Unary(UnaryOp::Abs) => merged.nonlinear(part, 8.0),
        Op::Binary(BinaryOp::Power) => Expect { only_finite: true, ..merged.ill_conditioned(part, 16.0) },
        _ => merged.ill_conditioned(part, 16.0),
    }
}

/// Whether `instr`'s float value is known to be >= 0 (or NaN), given its operands' facts;
/// `otherwise` for ops without a rule of their own (data movement: all operands nonnegative).
fn nonneg(instr: &hlo_ir::Instr, ops: &[Expect], otherwise: bool) -> bool {
    let all = |ks: &[usize]| ks.iter().all(|&k| ops.get(k).is_some_and(|e| e.nonneg));
    match &instr.op {
        Op::Constant(lit) => match lit.array_data() {
            Some(hlo_ir::ArrayData::F32(v)) => v.iter().all(|x| *x >= 0.0),
            Some(hlo_ir::ArrayData::F64(v)) => v.iter().all(|x| *x >= 0.0),
            _ => false,
        },
        Op::Unary(u) => match u {
            UnaryOp::Abs
            | UnaryOp::Exp
            | UnaryOp::Sqrt
            | UnaryOp::Rsqrt
            | UnaryOp::Cosh
            | UnaryOp::Logistic
            | UnaryOp::Acos
            | UnaryOp::Acosh => true,
            UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::RoundNearestAfz | UnaryOp::RoundNearestEven | UnaryOp::Sign => {
                all(&[0])
            }
            _ => false,
        },
        Op::Binary(b) => match b {
            BinaryOp::Multiply => instr.operands.first() == instr.operands.get(1) || all(&[0, 1]),
            BinaryOp::Add | BinaryOp::Divide | BinaryOp::Minimum => all(&[0, 1]),
            BinaryOp::Maximum => all(&[0]) || all(&[1]),
            BinaryOp::Power => all(&[0]),
            _ => false,
        },
        Op::Select => all(&[1, 2]),
        Op::Clamp => all(&[0]) || all(&[1]),
        _ => otherwise,
    }
}

/// The first disagreement between two outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    pub output: usize,
    pub message: String,
    /// Largest error over the output, relative to its scale (infinite for NaN/inf/integer mismatches).
    pub max_err: f64,
}

/// Whether any float input holds a finite magnitude above 1e6: then a sum may cancel (or
/// overflow on) huge terms in one order and not in another, and its value says nothing.
/// Infinities and NaN alone are not wild: they propagate the same in every order.
pub fn wild_inputs(inputs: &[HostArray]) -> bool {
    inputs.iter().any(|a| match decode(&a.bytes, a.dtype) {
        Elems::Float(v) => v.iter().any(|x| x.is_finite() && x.abs() > 1e6),
        Elems::Int(_) => false,
    })
}

/// Output leaves compared, and leaves not compared (unchecked: ill-conditioned or cancelled;
/// wild: sums over huge inputs), since the process started: what the difftester really checks.
static LEAVES_COMPARED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static LEAVES_UNCHECKED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static LEAVES_WILD: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `(compared, unchecked, wild)` output leaves so far in this process (see [`compare`]).
pub fn leaf_counts() -> (u64, u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    (LEAVES_COMPARED.load(Relaxed), LEAVES_UNCHECKED.load(Relaxed), LEAVES_WILD.load(Relaxed))
}

/// Compares every output leaf; `expect` comes from [`analyze`] of the program that made `want`.
/// With `wild` inputs (see [`wild_inputs`]), inexact outputs that went through a sum are not
/// compared (exact ones still are, bit for bit).
pub fn compare(got: &[HostArray], want: &[HostArray], expect: &[Expect], wild: bool) -> Result<(), Mismatch> {
    compare_with_magnitudes(got, want, expect, wild, None)
}

/// [`compare`], where the tolerance of an output that may have cancelled ([`Expect::cancelled`]) is taken
/// relative to `magnitudes` (the same program's outputs on the inputs' absolute values: about the sum of
/// the absolute values of the terms, for sums and dots) when that is larger than the output itself. A dot of
/// 65,537 terms that cancel down to 0.33 is only known to about eps * sqrt(n) * sum |terms|.
pub fn compare_with_magnitudes(
    got: &[HostArray],
    want: &[HostArray],
    expect: &[Expect],
    wild: bool,
    magnitudes: Option<&[HostArray]>,
) -> Result<(), Mismatch> {
    if got.len() != want.len() {
        return Err(Mismatch {
            output: 0,
            message: format!("{} outputs, the interpreter gives {}", got.len(), want.len()),
            max_err: f64::INFINITY,
        });
    }
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let e = expect.get(k).copied().unwrap_or(Expect::EXACT);
        use std::sync::atomic::Ordering::Relaxed;
        if !e.checked {
            LEAVES_UNCHECKED.fetch_add(1, Relaxed);
            continue;
        }
        let floating = g.dtype.is_float() || g.dtype.is_complex();
        if wild && !e.exact && e.terms > 1.0 && floating && g.bytes.len() == w.bytes.len() {
            LEAVES_WILD.fetch_add(1, Relaxed);
            continue;
        }
        LEAVES_COMPARED.fetch_add(1, Relaxed);
        let floor = match magnitudes.and_then(|m| m.get(k)) {
            Some(m) if e.cancelled && !e.exact && m.dtype == w.dtype && m.bytes.len() == w.bytes.len() => {
                match decode(&m.bytes, m.dtype) {
                    Elems::Float(v) => v.iter().filter(|x| x.is_finite()).fold(0.0f64, |a, x| a.max(x.abs())),
                    Elems::Int(_) => 0.0,
                }
            }
            _ => 0.0,
        };
        compare_one(g, w, e, floor).map_err(|(message, max_err)| Mismatch { output: k, message, max_err })?;
    }
    Ok(())
}

fn compare_one(got: &HostArray, want: &HostArray, e: Expect, scale_floor: f64) -> Result<(), (String, f64)> {
    if got.dtype != want.dtype || got.dims != want.dims || got.bytes.len() != want.bytes.len() {
        return Err((format!("shape {} vs the interpreter's {}", got.describe(), want.describe()), f64::INFINITY));
    }
    let shape = ArrayShape::new(want.dtype, want.dims.clone());
    let (g, w) = (decode(&got.bytes, want.dtype), decode(&want.bytes, want.dtype));
    let n = w.len();
    // Complex arrays compare as their (re, im) parts: two values per element.
    let per = if want.dtype.is_complex() { 2 } else { 1 };
    let at = |i: usize| index_text(&shape.dims, i / per);
    let want_dtype = want.dtype.complex_component().unwrap_or(want.dtype);
    match (g, w) {
        (Elems::Int(g), Elems::Int(w)) => {
            let bad: Vec<usize> = (0..n).filter(|&i| g[i] != w[i]).collect();
            if let Some(&i) = bad.first() {
                return Err((
                    format!("{} of {n} elements differ; first at {}: got {} want {}", bad.len(), at(i), g[i], w[i]),
                    f64::INFINITY,
                ));
            }
            Ok(())
        }
        (Elems::Float(g), Elems::Float(w)) => {
            let scale = w.iter().filter(|x| x.is_finite()).fold(scale_floor, |m, x| m.max(x.abs()));
            let tol = if e.exact { 0.0 } else { e.err * 4.0 + 2.0 * eps(want_dtype) };
            let huge = max_finite(want_dtype) * 0.5;
            let mut bad = Vec::new();
            let mut max_err = 0.0f64;
            for i in 0..n {
                let (a, b) = (g[i], w[i]);
                // Summing huge values overflows in one order and not in another, and an
                // infinity meeting the opposite infinity turns into NaN only in some orders.
                let order_dependent = !e.exact
                    && e.terms > 1.0
                    && (!a.is_finite() || a.abs() >= huge)
                    && (!b.is_finite() || b.abs() >= huge);
                let ok = if e.only_finite && !(a.is_finite() && b.is_finite()) {
                    true
                } else if a.is_nan() || b.is_nan() {
                    (a.is_nan() && b.is_nan()) || order_dependent
                } else if e.exact {
                    a.to_bits() == b.to_bits()
                } else if !a.is_finite() || !b.is_finite() {
                    a == b || (e.terms > 1.0 && a.signum() == b.signum() && a.abs() >= huge && b.abs() >= huge)
                } else {
                    let err = (a - b).abs() / b.abs().max(scale).max(f64::MIN_POSITIVE);
                    max_err = max_err.max(err);
                    err <= tol
                };
                if !ok {
                    bad.push(i);
                    if !(a.is_finite() && b.is_finite()) {
                        max_err = f64::INFINITY;
                    }
                }
            }
            if let Some(&i) = bad.first() {
                let how = if e.exact { "bit-exact".to_string() } else { format!("tolerance {tol:.1e} x {scale:.3e}") };
                return Err((
                    format!(
                        "{} of {n} elements differ ({how}); first at {}: got {:e} want {:e}",
                        bad.len(),
                        at(i),
                        g[i],
                        w[i]
                    ),
                    if e.exact && max_err == 0.0 { f64::INFINITY } else { max_err },
                ));
            }
            Ok(())
        }
        _ => Err(("element kinds differ".into(), f64::INFINITY)),
    }
}

fn max_finite(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => f64::MAX,
        DType::F16 => 65504.0,
        d => match hlo_ir::print::MiniFloat::of(d) {
            Some(format) => (0..=255u8).map(|b| format.to_f64(b)).filter(|x| x.is_finite()).fold(0.0, f64::max),
            None => f32::MAX as f64,
        },
    }
}

/// `[i, j, k]` of linear element `i` of an array of `dims`.
fn index_text(dims: &[i64], mut i: usize) -> String {
    let mut idx = vec![0usize; dims.len()];
    for d in (0..dims.len()).rev() {
        let n = dims[d].max(1) as usize;
        idx[d] = i % n;
        i /= n;
    }
    format!("{idx:?}")
}

/// Elements as f64 (floats) or i128 (integers and pred).
pub(crate) enum Elems {
    Float(Vec<f64>),
    Int(Vec<i128>),
}

impl Elems {
    fn len(&self) -> usize {
        match self {
            Elems::Float(v) => v.len(),
            Elems::Int(v) => v.len(),
        }
    }
}

pub(crate) fn decode(bytes: &[u8], dtype: DType) -> Elems {
    use DType as D;
    let w = dtype.byte_size().max(1);
    let ch = bytes.chunks_exact(w);
    let arr = |c: &[u8]| -> [u8; 8] {
        let mut a = [0u8; 8];
        a[..c.len()].copy_from_slice(c);
        a
    };
    match dtype {
        D::F32 => Elems::Float(ch.map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect()),
        D::F64 => Elems::Float(ch.map(|c| f64::from_le_bytes(arr(c))).collect()),
        D::C64 => {
            Elems::Float(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect())
        }
        D::C128 => Elems::Float(bytes.chunks_exact(8).map(|c| f64::from_le_bytes(arr(c))).collect()),
        D::F16 => Elems::Float(ch.map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64()).collect()),
        D::BF16 => Elems::Float(ch.map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64()).collect()),
        D::S2 | D::S4 | D::S8 => Elems::Int(ch.map(|c| c[0] as i8 as i128).collect()),
        D::S16 => Elems::Int(ch.map(|c| i16::from_le_bytes([c[0], c[1]]) as i128).collect()),
        D::S32 => Elems::Int(ch.map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i128).collect()),
        D::S64 => Elems::Int(ch.map(|c| i64::from_le_bytes(arr(c)) as i128).collect()),
        D::U16 => Elems::Int(ch.map(|c| u16::from_le_bytes([c[0], c[1]]) as i128).collect()),
        D::U32 => Elems::Int(ch.map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i128).collect()),
        D::U64 => Elems::Int(ch.map(|c| u64::from_le_bytes(arr(c)) as i128).collect()),
        d if hlo_ir::print::MiniFloat::of(d).is_some() => {
            let format = hlo_ir::print::MiniFloat::of(d).expect("checked");
            Elems::Float(ch.map(|c| format.to_f64(c[0])).collect())
        }
        _ => Elems::Int(ch.map(|c| u64::from_le_bytes(arr(c)) as i128).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(v: &[f32]) -> HostArray {
        HostArray {
            dtype: DType::F32,
            dims: vec![v.len() as i64],
            bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    #[test]
    fn exact_outputs_compare_bits_and_any_nan() {
        let e = Expect::EXACT;
        assert!(compare_one(&f32s(&[1.0, f32::NAN]), &f32s(&[1.0, -f32::NAN]), e, 0.0).is_ok());
        assert!(compare_one(&f32s(&[0.0]), &f32s(&[-0.0]), e, 0.0).is_err());
        assert!(compare_one(&f32s(&[1.0 + f32::EPSILON]), &f32s(&[1.0]), e, 0.0).is_err());
    }

    #[test]
    fn inexact_outputs_allow_reassociation_but_not_wrong_rows() {
        let e = Expect {
            exact: false,
            err: 1e-6,
            terms: 64.0,
            checked: true,
            cancelled: false,
            nonneg: false,
            only_finite: false,
        };
        assert!(compare_one(&f32s(&[100.0, 1.0]), &f32s(&[100.00002, 1.0]), e, 0.0).is_ok());
        assert!(compare_one(&f32s(&[101.0, 1.0]), &f32s(&[100.0, 1.0]), e, 0.0).is_err());
        assert!(compare_one(&f32s(&[f32::INFINITY]), &f32s(&[3.3e38]), e, 0.0).is_ok());
        assert!(compare_one(&f32s(&[f32::INFINITY]), &f32s(&[1.0]), e, 0.0).is_err());
        assert!(compare_one(&f32s(&[f32::NAN]), &f32s(&[1.0]), e, 0.0).is_err());
    }
}
