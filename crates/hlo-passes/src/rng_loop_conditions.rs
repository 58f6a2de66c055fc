//! `rng-loop-conditions`: a `while` whose condition draws random numbers carries its condition's
//! result instead, so that `rng-state-threading` can thread the hidden state through the draws
//! (a condition returns only its `pred`, so the state it advances could not flow back out):
//!
//! ```text
//!   while(x), condition=c, body=b
//!     =>  while((x, c(x))), condition=p -> p.last, body=p -> (y = b(p.x), c(y))
//! ```
//!
//! Evaluation order is kept: the condition runs before the first iteration and after every body,
//! each time drawing once more from the state, as the interpreter draws. The calls this makes are
//! inlined by `inline-calls`, which runs next.
//!
//! Pre-condition: none (it runs after `rng-expander`, so an `rng` is a call of its definition on a
//! state op). Post-condition: no loop condition reaches a state op.

use crate::util::{compact, NameUniquer};
use crate::PassError;
use hlo_ir::{ArrayShape, CompId, Computation, DType, Instr, InstrId, Module, Op, Shape};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("rng-loop-conditions").entered();
    let mut draws = vec![None; module.comps.len()];
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    for c in 0..module.comps.len() {
        let loops: Vec<(InstrId, CompId, CompId)> = module.comps[c]
            .ids()
            .filter_map(|id| match module.comps[c].instr(id).op {
                Op::While { condition, body } => Some((id, condition, body)),
                _ => None,
            })
            .collect();
        for (w, condition, body) in loops {
            if !draws_numbers(module, condition, &mut draws, 0)? {
                continue;
            }
            carry_condition(module, &mut names, CompId(c as u32), w, condition, body)?;
            compact(&mut module.comps[c])?;
            changed = true;
        }
    }
    if changed {
        crate::util::order_callees_first(module);
    }
    Ok(changed)
}

/// Whether computation `c` (or one it calls) has a state op; fills `memo`.
fn draws_numbers(module: &Module, c: CompId, memo: &mut Vec<Option<bool>>, depth: usize) -> Result<bool, PassError> {
    if let Some(Some(known)) = memo.get(c.index()) {
        return Ok(*known);
    }
    if depth > 64 {
        return Err(PassError::Internal("rng-loop-conditions: computations call each other too deeply".into()));
    }
    let mut res = false;
    for instr in &module.comp(c).instrs {
        res |= matches!(instr.op, Op::RngGetAndUpdateState { .. } | Op::Rng { .. });
        for callee in instr.op.called_computations() {
            res |= draws_numbers(module, callee, memo, depth + 1)?;
        }
    }
    if memo.len() <= c.index() {
        memo.resize(c.index() + 1, None);
    }
    memo[c.index()] = Some(res);
    Ok(res)
}

/// Rewrites loop `w` of computation `c` as the module docs show.
fn carry_condition(
    module: &mut Module,
    names: &mut NameUniquer,
    c: CompId,
    w: InstrId,
    condition: CompId,
    body: CompId,
) -> Result<(), PassError> {
    let old = module.comp(c).instr(w).shape.clone();
    let pred = Shape::Array(ArrayShape::scalar(DType::Pred));
    let mut elems: Vec<Shape> = old.as_tuple().map_or_else(|| vec![old.clone()], <[Shape]>::to_vec);
    elems.push(pred.clone());
    let carried = Shape::Tuple(elems);
    let n = elements(&old);
    let name = module.comp(c).instr(w).name.clone();

    // The condition: the carried result.
    let mut cond = Computation::new(names.fresh(&format!("{name}.carried_condition")));
    let p = cond.push(Instr::new(names.fresh("p"), carried.clone(), Op::Parameter { number: 0 }, vec![]));
    cond.root =
        cond.push(Instr::new(names.fresh("go"), pred.clone(), Op::GetTupleElement { index: n as u64 }, vec![p]));

    // The body: the old body, then the old condition on its result.
    let mut step = Computation::new(names.fresh(&format!("{name}.carried_body")));
    let p = step.push(Instr::new(names.fresh("p"), carried.clone(), Op::Parameter { number: 0 }, vec![]));
    let x = unpack(&mut step, names, p, &old);
    let call = Op::Call { to_apply: body, is_composite: false };
    let y = step.push(Instr::new(names.fresh(&format!("{name}.body")), old.clone(), call, vec![x]));
    step.root = pack_with_condition(&mut step, names, y, &old, condition, &name);

    module.comps.push(cond);
    let cond_id = CompId(module.comps.len() as u32 - 1);
    module.comps.push(step);
    let body_id = CompId(module.comps.len() as u32 - 1);

    // The loop: its initial value carries the condition's first result.
    let comp = module.comp_mut(c);
    let original = comp.instrs.len();
    let init = comp.instr(w).operands[0];
    let init = pack_with_condition(comp, names, init, &old, condition, &name);
    let instr = comp.instr_mut(w);
    instr.op = Op::While { condition: cond_id, body: body_id };
    instr.shape = carried;
    instr.operands = vec![init];
    let result = unpack(comp, names, w, &old);
    for instr in comp.instrs.iter_mut().take(original) {
        for o in &mut instr.operands {
            if *o == w {
                *o = result;
            }
        }
    }
    if comp.root == w {
        comp.root = result;
    }
    Ok(())
}

/// `tuple(elements of x..., condition(x))` for `x` of shape `old`.
fn pack_with_condition(
    comp: &mut Computation,
    names: &mut NameUniquer,
    x: InstrId,
    old: &Shape,
    condition: CompId,
    name: &str,
) -> InstrId {
    let pred = Shape::Array(ArrayShape::scalar(DType::Pred));
    let call = Op::Call { to_apply: condition, is_composite: false };
    let go = comp.push(Instr::new(names.fresh(&format!("{name}.condition")), pred, call, vec![x]));
    let mut parts: Vec<InstrId> = match old.as_tuple() {
        Some(elems) => (0..elems.len())
            .map(|i| {
                let op = Op::GetTupleElement { index: i as u64 };
                comp.push(Instr::new(names.fresh(&format!("{name}.carry")), elems[i].clone(), op, vec![x]))
            })
            .collect(),
        None => vec![x],
    };
    parts.push(go);
    let shapes: Vec<Shape> = parts.iter().map(|&i| comp.instr(i).shape.clone()).collect();
    comp.push(Instr::new(names.fresh(&format!("{name}.carried")), Shape::Tuple(shapes), Op::Tuple, parts))
}

/// The value of shape `old` inside `x` (its shape with the condition's result appended).
fn unpack(comp: &mut Computation, names: &mut NameUniquer, x: InstrId, old: &Shape) -> InstrId {
    let gte = |comp: &mut Computation, names: &mut NameUniquer, i: usize, shape: Shape| {
        comp.push(Instr::new(names.fresh("carry"), shape, Op::GetTupleElement { index: i as u64 }, vec![x]))
    };
    match old.as_tuple() {
        Some(elems) => {
            let parts = (0..elems.len()).map(|i| gte(comp, names, i, elems[i].clone())).collect();
            comp.push(Instr::new(names.fresh("carry"), old.clone(), Op::Tuple, parts))
        }
        None => gte(comp, names, 0, old.clone()),
    }
}

/// Elements of the loop value of shape `shape` before the condition's result is appended.
fn elements(shape: &Shape) -> usize {
    shape.as_tuple().map_or(1, <[Shape]>::len)
}
