//! Elementwise while loops (Mandelbrot): the whole loop in one kernel.
//!
//! A `while` qualifies when every carried value is either
//! - **invariant** (the body passes it through unchanged): read from its initial buffer at any index,
//! - a **scalar** (rank 0, e.g. the trip counter): every invocation carries its own copy, or
//! - an **element array** of one common shape: each invocation carries one element,
//!
//! and the body reads element arrays only at the invocation's own element,
//! while the condition reads only scalars. Each invocation then runs the loop
//! on its own state. When the trip count can be worked out at compile time
//! (scalar state starting from constants and updated by integer arithmetic),
//! the condition is dropped and the body is unrolled four times (lavapipe
//! does not unroll loops; this paid 1.4x on Mandelbrot).

use crate::builder::{STy, H};
use crate::emit::elemental::{Em, Index, IndexKey, Leaf};
use crate::emit::ops::{self, Val};
use crate::emit::{finish, grid, invocation_index, KernelKind, KernelStep};
use crate::error::{CodegenError, Result};
use crate::target::Target;
use hlo_ir::{ArrayData, BinaryOp, CompId, CompareDirection, Computation, DType, InstrId, Module, Op, Shape};
use hlo_program::BufferId;
use naga::BinaryOperator as Bo;
use std::collections::HashMap;

/// Unroll factor for loops with a known trip count.
const UNROLL: u64 = 4;
/// Trip counts are simulated on the host up to this many iterations.
const MAX_SIMULATED_TRIPS: u64 = 1 << 24;

/// How one carried tuple element behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Carried {
    Invariant,
    Scalar,
    Element,
}

/// The result of [`analyze`].
#[derive(Clone, Debug)]
pub(crate) struct LoopPlan {
    pub carried: Vec<Carried>,
    /// The common shape of the element arrays (empty when there are none).
    pub dims: Vec<i64>,
}

/// Classifies the carried values of `while_id` (in `comp`), or says why the loop is not elementwise.
pub(crate) fn analyze(m: &Module, comp: &Computation, while_id: InstrId) -> Result<LoopPlan> {
    let w = comp.instr(while_id);
    let Op::While { body, .. } = w.op else { unreachable!("a while") };
    let body = m.comp(body);
    let unsupported = |reason: &str| CodegenError::unsupported("while", &w.name, reason);
    let Shape::Tuple(elems) = &w.shape else {
        return Err(unsupported("the loop state is not a tuple"));
    };
    let root = body.root_instr();
    if !matches!(root.op, Op::Tuple) || root.operands.len() != elems.len() {
        return Err(unsupported("the loop body does not end in a tuple"));
    }
    let param = body.params[0];
    let mut carried = Vec::with_capacity(elems.len());
    let mut dims: Option<Vec<i64>> = None;
    for (k, e) in elems.iter().enumerate() {
        let Some(a) = e.as_array() else {
            return Err(unsupported("nested tuples in the loop state"));
        };
        let mut src = root.operands[k];
        while matches!(body.instr(src).op, Op::Copy) {
            src = body.instr(src).operands[0];
        }
        let s = body.instr(src);
        if matches!(s.op, Op::GetTupleElement { index } if index as usize == k) && s.operands[0] == param {
            carried.push(Carried::Invariant);
        } else if a.rank() == 0 {
            carried.push(Carried::Scalar);
        } else {
            match &dims {
                None => dims = Some(a.dims.clone()),
                Some(d) if *d == a.dims => {}
                Some(_) => return Err(unsupported("carried arrays of different shapes")),
            }
            carried.push(Carried::Element);
        }
    }
    Ok(LoopPlan { carried, dims: dims.unwrap_or_default() })
}

/// Everything the emitter needs besides the plan.
pub(crate) struct WhileCtx<'m> {
    pub m: &'m Module,
    pub target: &'m Target,
    pub name: String,
    pub cond: CompId,
    pub body: CompId,
    /// The initial value of each carried element.
    pub init: Vec<Leaf>,
    /// Known constant initial values (integers) of scalar elements, for the trip count.
    pub init_consts: Vec<Option<i64>>,
    /// Output buffers of the non-invariant elements.
    pub outputs: Vec<Option<(BufferId, DType)>>,
    pub sources: Vec<String>,
}

pub(crate) fn emit(ctx: &WhileCtx, plan: &LoopPlan) -> Result<Vec<KernelStep>> {
    if ctx.target.predicated_branches && ctx.target.subgroup_broadcast && has_rare_path(ctx.m, ctx.body) {
        // The split loop may run up to twice the iterations; a kernel over the budget keeps one loop.
        if let Ok(steps) = emit_with(ctx, plan, true) {
            return Ok(steps);
        }
    }
    emit_with(ctx, plan, false)
}

/// Whether evaluating `comp` (called computations included) emits a rare slow path that
/// [`Kb::rare_path_flag`](crate::builder::Kb) can defer: a `sin`, `cos` or `tan`.
fn has_rare_path(m: &Module, comp: CompId) -> bool {
    let comp = m.comp(comp);
    comp.instrs.iter().any(|instr| {
        matches!(instr.op, Op::Unary(hlo_ir::UnaryOp::Sin | hlo_ir::UnaryOp::Cos | hlo_ir::UnaryOp::Tan))
            || instr.op.called_computations().into_iter().any(|c| has_rare_path(m, c))
    })
}

/// The loop kernel; with `split_rare_paths`, iterations first run without the math routines'
/// rare slow paths (see [`Kb::rare_path_flag`](crate::builder::Kb)) and are redone with them,
/// by the whole subgroup, when some invocation needed one. On drivers that execute both sides
/// of every branch (lavapipe) this halves the cost of a `sin` in a loop.
fn emit_with(ctx: &WhileCtx, plan: &LoopPlan, split_rare_paths: bool) -> Result<Vec<KernelStep>> {
    let n: u64 = plan.dims.iter().map(|&d| d.max(0) as u64).product();
    if n == 0 {
        return Err(CodegenError::unsupported("while", &ctx.name, "empty loop state"));
    }
    // Element arrays start unknown; every scalar must start from a constant for the count to be exact.
    let init: Vec<Option<i64>> = plan
        .carried
        .iter()
        .enumerate()
        .map(|(k, c)| if *c == Carried::Element { None } else { ctx.init_consts[k] })
        .collect();
    // Scalars that start unknown are fine as long as the condition never depends on them
    // (a counter next to a data-dependent accumulator): the simulation gives up otherwise.
    let trips = trip_count(ctx.m, ctx.cond, ctx.body, &init, MAX_SIMULATED_TRIPS);
    // Below 64 elements, one subgroup per workgroup: a lane costs as much as the whole SIMD group it occupies
    // (lavapipe runs a workgroup of 1 in a masked 8-wide vector), and more workgroups spread over more cores.
    let wg = if n >= 64 { ctx.target.loop_workgroup() } else { ctx.target.subgroup_size.clamp(1, 64).min(n as u32) };
    let groups = grid(n.div_ceil(wg as u64));
    let mut em = Em::new(ctx.m, ctx.target, &ctx.name);
    let mut outs = Vec::new();
    for o in &ctx.outputs {
        outs.push(match o {
            Some((buf, dt)) => Some(em.bind_buffer(*buf, *dt, true, false)?),
            None => None,
        });
    }
    let i = invocation_index(&mut em.kb, wg, groups);
    em.kb.name(i, "i");
    if groups[0] as u64 * groups[1] as u64 * wg as u64 != n {
        let nn = em.kb.lit_u32(n as u32);
        let oob = em.kb.binary(Bo::GreaterEqual, i, nn);
        em.kb.return_if(oob);
    }
    let idx = Index::from_linear(&plan.dims, i);
    if plan.dims.len() > 1 {
        // Derive the multi-index once, outside the loop, so every body copy shares it.
        let _ = idx.multi(&mut em.kb);
    }
    let key = idx.key().clone();

    // Load the initial state into locals.
    let mut locals: Vec<Option<(H, DType)>> = Vec::new();
    for (k, c) in plan.carried.iter().enumerate() {
        let leaf = ctx.init[k].clone();
        let local = match c {
            Carried::Invariant => None,
            Carried::Scalar | Carried::Element => {
                let at = if *c == Carried::Scalar { Index::scalar() } else { Index::from_linear(&plan.dims, i) };
                let dt = leaf_dtype(&leaf);
                let v = em.eval_leaf(&leaf, &[], &at)?;
                let ty = ops::value_sty(dt)
                    .ok_or_else(|| CodegenError::unsupported("while", &ctx.name, format!("carried {dt}")))?;
                Some((em.kb.local_init(&format!("s{k}"), ty, v.h), dt))
            }
        };
        locals.push(local);
    }

    let load_state = |em: &mut Em| -> Vec<Option<Val>> {
        locals.iter().map(|l| l.map(|(p, dt)| Val { h: em.kb.load(p), dt })).collect()
    };
    // Each iteration's results are flushed as they are carried (XLA:CPU flushes arithmetic
    // results), so the final state is stored as it is: a loop that runs no iteration returns
    // its initial values, subnormals included.
    let store_state = |em: &mut Em, state: &[Option<Val>]| {
        for (l, v) in locals.iter().zip(state) {
            if let (Some((p, _)), Some(v)) = (l, v) {
                let h = if matches!(v.dt, DType::F32 | DType::F64 | DType::BF16) {
                    em.flush_results(v.h, v.dt)
                } else {
                    v.h
                };
                em.kb.store(*p, h);
            }
        }
    };

    let copies = |em: &mut Em, state: Vec<Option<Val>>, count: u64| {
        (0..count).try_fold(state, |state, _| body_copy(em, ctx, plan, &state, &key, i))
    };
    match trips {
        Some(t) => {
            let groups_of = t / UNROLL;
            if groups_of > 0 && split_rare_paths {
                let zero = em.kb.lit_u32(0);
                let counter = em.kb.local_init("trip", STy::U32, zero);
                let no = em.kb.lit_bool(false);
                let rare = em.kb.local_init("rare", STy::Bool, no);
                let groups = groups_of as u32;
                // Outer loop: per pass, the fast loop runs groups until one needs a slow path,
                // then that group runs with them. Every pass ends at a back-edge: at most
                // groups + 1 passes of each loop.
                em.kb.begin_loop_body();
                em.enter_loop(Some(2 * groups_of + 2));
                em.kb.begin_loop_body();
                let c = em.kb.load(counter);
                let more = em.kb.lt_c(c, groups);
                break_unless(&mut em, more);
                let state = without_rare_paths(&mut em, rare, |em| {
                    let state = load_state(em);
                    copies(em, state, UNROLL)
                })?;
                store_state(&mut em, &state);
                increment(&mut em, counter);
                let fast = em.kb.end_block();
                em.kb.stmt(naga::Statement::Loop { body: fast, continuing: naga::Block::new(), break_if: None });
                let c = em.kb.load(counter);
                let more = em.kb.lt_c(c, groups);
                break_unless(&mut em, more);
                let state = load_state(&mut em);
                let state = copies(&mut em, state, UNROLL)?;
                store_state(&mut em, &state);
                increment(&mut em, counter);
                em.exit_loop();
                let outer = em.kb.end_block();
                em.kb.stmt(naga::Statement::Loop { body: outer, continuing: naga::Block::new(), break_if: None });
            } else if groups_of > 0 {
                let zero = em.kb.lit_u32(0);
                let counter = em.kb.local_init("trip", STy::U32, zero);
                em.kb.begin_loop_body();
                em.enter_loop(Some(groups_of));
                let state = load_state(&mut em);
                let state = copies(&mut em, state, UNROLL)?;
                em.exit_loop();
                store_state(&mut em, &state);
                let body = em.kb.end_block();
                em.kb.begin_block();
                let c = em.kb.load(counter);
                let next = em.kb.add_c(c, 1);
                em.kb.store(counter, next);
                let more = em.kb.lt_c(next, groups_of as u32);
                let done = em.kb.unary(naga::UnaryOperator::LogicalNot, more);
                let continuing = em.kb.end_block();
                em.kb.stmt(naga::Statement::Loop { body, continuing, break_if: Some(done) });
            }
            let rest = t % UNROLL;
            if rest > 0 {
                let state = load_state(&mut em);
                let state = copies(&mut em, state, rest)?;
                store_state(&mut em, &state);
            }
        }
        None if split_rare_paths => {
            // As above, with the condition deciding the end: an invocation whose condition fails
            // leaves both loops (`done`); the others go on, together, through the slow iteration.
            let no = em.kb.lit_bool(false);
            let rare = em.kb.local_init("rare", STy::Bool, no);
            let done = em.kb.local_init("done", STy::Bool, no);
            em.kb.begin_loop_body();
            em.enter_loop(None);
            em.kb.begin_loop_body();
            let state = load_state(&mut em);
            let go_on = condition(&mut em, ctx, plan, &state, &key)?;
            let stop = em.kb.unary(naga::UnaryOperator::LogicalNot, go_on);
            em.kb.store(done, stop);
            break_unless(&mut em, go_on);
            let next = without_rare_paths(&mut em, rare, |em| body_copy(em, ctx, plan, &state, &key, i))?;
            store_state(&mut em, &next);
            let fast = em.kb.end_block();
            em.kb.stmt(naga::Statement::Loop { body: fast, continuing: naga::Block::new(), break_if: None });
            let finished = em.kb.load(done);
            let go_on = em.kb.unary(naga::UnaryOperator::LogicalNot, finished);
            break_unless(&mut em, go_on);
            let state = load_state(&mut em);
            let next = body_copy(&mut em, ctx, plan, &state, &key, i)?;
            store_state(&mut em, &next);
            em.exit_loop();
            let outer = em.kb.end_block();
            em.kb.stmt(naga::Statement::Loop { body: outer, continuing: naga::Block::new(), break_if: None });
        }
        None => {
            em.kb.begin_loop_body();
            em.enter_loop(None);
            let state = load_state(&mut em);
            let go_on = condition(&mut em, ctx, plan, &state, &key)?;
            break_unless(&mut em, go_on);
            let state = body_copy(&mut em, ctx, plan, &state, &key, i)?;
            store_state(&mut em, &state);
            em.exit_loop();
            let body = em.kb.end_block();
            em.kb.stmt(naga::Statement::Loop { body, continuing: naga::Block::new(), break_if: None });
        }
    }

    // Write the final state.
    let zero = em.kb.lit_u32(0);
    for (k, c) in plan.carried.iter().enumerate() {
        let (Some((p, dt)), Some(g)) = (locals[k], outs[k]) else { continue };
        let v = Val { h: em.kb.load(p), dt };
        match c {
            Carried::Element => em.store_copy(g, i, v),
            _ => {
                let first = em.kb.binary(Bo::Equal, i, zero);
                em.kb.begin_block();
                em.store_copy(g, zero, v);
                let accept = em.kb.end_block();
                em.kb.stmt(naga::Statement::If { condition: first, accept, reject: naga::Block::new() });
            }
        }
    }
    Ok(vec![finish(em, &ctx.name, KernelKind::ElementwiseLoop, [wg, 1, 1], groups, ctx.sources.clone())?])
}

/// Emits `copies` with the math routines' rare slow paths left out and recorded in `rare`
/// ([`Kb::rare_path_flag`](crate::builder::Kb)), then leaves the loop when an invocation of the
/// subgroup needed one (the whole subgroup, so that it redoes the work together).
fn without_rare_paths<'m, T>(em: &mut Em<'m>, rare: H, copies: impl FnOnce(&mut Em<'m>) -> Result<T>) -> Result<T> {
    let no = em.kb.lit_bool(false);
    em.kb.store(rare, no);
    em.kb.rare_path_flag = Some(rare);
    let result = copies(em);
    em.kb.rare_path_flag = None;
    let result = result?;
    let mine = em.kb.load(rare);
    let any = em.kb.subgroup_any(mine);
    let any = em.kb.binary(Bo::LogicalOr, any, mine);
    let fine = em.kb.unary(naga::UnaryOperator::LogicalNot, any);
    break_unless(em, fine);
    Ok(result)
}

/// `if !keep_going { break; }`
fn break_unless(em: &mut Em, keep_going: H) {
    let stop = em.kb.unary(naga::UnaryOperator::LogicalNot, keep_going);
    em.kb.begin_block();
    em.kb.stmt(naga::Statement::Break);
    let brk = em.kb.end_block();
    em.kb.stmt(naga::Statement::If { condition: stop, accept: brk, reject: naga::Block::new() });
}

/// `*counter += 1` for a `u32` local.
fn increment(em: &mut Em, counter: H) {
    let c = em.kb.load(counter);
    let next = em.kb.add_c(c, 1);
    em.kb.store(counter, next);
}

/// The loop condition over `state`.
fn condition(em: &mut Em, ctx: &WhileCtx, plan: &LoopPlan, state: &[Option<Val>], key: &IndexKey) -> Result<H> {
    let cf = em.frame(ctx.cond, HashMap::new());
    let param = ctx.m.comp(ctx.cond).params[0];
    let leaf = state_leaf(ctx, plan, state, key);
    em.set_leaf(cf, param, leaf);
    let root = ctx.m.comp(ctx.cond).root;
    Ok(em.eval(cf, root, &[], &Index::scalar())?.h)
}

fn leaf_dtype(leaf: &Leaf) -> DType {
    match leaf {
        Leaf::Buffer { dtype, .. } => *dtype,
        Leaf::Value(v) | Leaf::Loaded(v) | Leaf::State { val: v, .. } => v.dt,
        _ => DType::F32,
    }
}

/// The loop parameter as a tuple leaf over the current state.
fn state_leaf(ctx: &WhileCtx, plan: &LoopPlan, state: &[Option<Val>], key: &IndexKey) -> Leaf {
    let elems = plan
        .carried
        .iter()
        .enumerate()
        .map(|(k, c)| match (c, state[k]) {
            (Carried::Invariant, _) | (_, None) => ctx.init[k].clone(),
            (Carried::Scalar, Some(v)) => Leaf::Value(v),
            (Carried::Element, Some(v)) => Leaf::State { val: v, at: key.clone(), name: ctx.name.clone() },
        })
        .collect();
    Leaf::Tuple(elems)
}

/// One evaluation of the body: the next state from `state`.
fn body_copy(
    em: &mut Em,
    ctx: &WhileCtx,
    plan: &LoopPlan,
    state: &[Option<Val>],
    key: &IndexKey,
    i: H,
) -> Result<Vec<Option<Val>>> {
    let body = ctx.m.comp(ctx.body);
    let f = em.frame(ctx.body, HashMap::new());
    em.set_leaf(f, body.params[0], state_leaf(ctx, plan, state, key));
    let root = body.root_instr();
    let mut next = Vec::with_capacity(state.len());
    for (k, c) in plan.carried.iter().enumerate() {
        next.push(match c {
            Carried::Invariant => None,
            Carried::Scalar => Some(em.eval(f, root.operands[k], &[], &Index::scalar())?),
            Carried::Element => Some(em.eval(f, root.operands[k], &[], &Index::from_linear(&plan.dims, i))?),
        });
    }
    Ok(next)
}

/// Simulates the scalar state on the host to find the trip count; `None` when it depends on data.
pub(crate) fn trip_count(m: &Module, cond: CompId, body: CompId, init: &[Option<i64>], max: u64) -> Option<u64> {
    let body = m.comp(body);
    let cond = m.comp(cond);
    let mut state: Vec<Option<Iv>> = init.iter().map(|v| v.map(Iv::Int)).collect();
    let mut trips = 0u64;
    loop {
        let param = Iv::Tuple(state.clone());
        let c = eval_int(m, cond, cond.root, std::slice::from_ref(&Some(param.clone())))?.int()?;
        if c == 0 {
            return Some(trips);
        }
        trips += 1;
        if trips > max {
            return None;
        }
        let root = body.root_instr();
        if !matches!(root.op, Op::Tuple) {
            return None;
        }
        let next: Vec<Option<Iv>> =
            root.operands.iter().map(|&o| eval_int(m, body, o, std::slice::from_ref(&Some(param.clone())))).collect();
        state = next;
    }
}

/// A host-side value of the trip-count simulation.
#[derive(Clone, Debug)]
enum Iv {
    Int(i64),
    Tuple(Vec<Option<Iv>>),
}

impl Iv {
    fn int(&self) -> Option<i64> {
        match self {
            Iv::Int(v) => Some(*v),
            Iv::Tuple(_) => None,
        }
    }
}

/// Evaluates a scalar integer/pred (or tuple of them) value of `comp` given its parameters;
/// `None` when the value is not known on the host.
fn eval_int(m: &Module, comp: &Computation, id: InstrId, params: &[Option<Iv>]) -> Option<Iv> {
    let instr = comp.instr(id);
    let dt = instr.shape.as_array().map(|a| a.dtype);
    let ev = |k: usize| eval_int(m, comp, instr.operands[k], params);
    let evi = |k: usize| ev(k)?.int();
    let wrap = |r: i64| -> Option<Iv> {
        Some(Iv::Int(match dt? {
            DType::S32 => r as i32 as i64,
            DType::U32 => r as u32 as i64,
            DType::S16 => r as i16 as i64,
            DType::S8 => r as i8 as i64,
            DType::Pred => (r != 0) as i64,
            DType::S64 | DType::U64 => r,
            _ => return None,
        }))
    };
    match &instr.op {
        Op::Parameter { number } => params.get(*number as usize).cloned().flatten(),
        Op::GetTupleElement { index } => match ev(0)? {
            Iv::Tuple(t) => t.get(*index as usize).cloned().flatten(),
            Iv::Int(_) => None,
        },
        Op::Tuple => Some(Iv::Tuple((0..instr.operands.len()).map(ev).collect())),
        Op::Constant(lit) => {
            let v = match lit.array_data()? {
                ArrayData::S32(v) if v.len() == 1 => v[0] as i64,
                ArrayData::S64(v) if v.len() == 1 => v[0],
                ArrayData::U32(v) if v.len() == 1 => v[0] as i64,
                ArrayData::Pred(v) if v.len() == 1 => v[0] as i64,
                ArrayData::S8(v) if v.len() == 1 => v[0] as i64,
                ArrayData::S16(v) if v.len() == 1 => v[0] as i64,
                _ => return None,
            };
            Some(Iv::Int(v))
        }
        Op::Copy | Op::Reshape | Op::Bitcast => ev(0),
        Op::Convert => wrap(evi(0)?),
        Op::Binary(op) => {
            let (a, b) = (evi(0)?, evi(1)?);
            wrap(match op {
                BinaryOp::Add => a.wrapping_add(b),
                BinaryOp::Subtract => a.wrapping_sub(b),
                BinaryOp::Multiply => a.wrapping_mul(b),
                BinaryOp::Maximum => a.max(b),
                BinaryOp::Minimum => a.min(b),
                BinaryOp::And => a & b,
                BinaryOp::Or => a | b,
                BinaryOp::Xor => a ^ b,
                _ => return None,
            })
        }
        Op::Compare { direction, .. } => {
            let (a, b) = (evi(0)?, evi(1)?);
            let r = match direction {
                CompareDirection::Eq => a == b,
                CompareDirection::Ne => a != b,
                CompareDirection::Lt => a < b,
                CompareDirection::Le => a <= b,
                CompareDirection::Gt => a > b,
                CompareDirection::Ge => a >= b,
            };
            Some(Iv::Int(r as i64))
        }
        Op::Unary(hlo_ir::UnaryOp::Not) if dt == Some(DType::Pred) => Some(Iv::Int((evi(0)? == 0) as i64)),
        Op::Select => {
            if evi(0)? != 0 {
                ev(1)
            } else {
                ev(2)
            }
        }
        Op::Fusion { calls, .. } | Op::Call { to_apply: calls, .. } => {
            let callee = m.comp(*calls);
            let args: Vec<Option<Iv>> = (0..instr.operands.len()).map(ev).collect();
            eval_int(m, callee, callee.root, &args)
        }
        _ => None,
    }
}
