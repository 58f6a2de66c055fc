//! `single-device`: the ops that exist for concurrency or for several devices become their
//! synchronous forms on one device, so that both backends run them with the ops they have:
//! - `async-start(x...)` wrapping computation `c` becomes `tuple(tuple(x...), call(x...) to c,
//!   zeros...)` (its operands, the result, the context), `async-update(s)` is `s`, and
//!   `async-done(s)` reads element 1, as XLA's `ConvertAsyncCollectivesToSync` and the
//!   evaluator treat a pair that runs at once; the `call` is inlined by `inline-calls`;
//! - `copy-start(x)` becomes `tuple(x, x, zeros)` (destination, source, context) and
//!   `copy-done(s)` element 0: a copy that has finished when it starts;
//! - `partition-id` and `replica-id` become the constant `u32[] 0`: one device is partition 0
//!   of replica 0.
//!
//! Pre-condition: none. Post-condition: none of these opcodes remains; each is replaced in
//! place (a tuple where the op returned one), so its users are untouched.

use crate::util::{compact, NameUniquer};
use crate::PassError;
use hlo_ir::{ArrayData, Computation, Instr, InstrId, Literal, LiteralData, Module, Op, Opcode, Shape};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("single-device").entered();
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    for c in 0..module.comps.len() {
        let comp = &mut module.comps[c];
        let ids: Vec<InstrId> = comp.ids().filter(|&id| is_target(&comp.instr(id).op)).collect();
        if ids.is_empty() {
            continue;
        }
        for id in ids {
            rewrite(comp, &mut names, id)?;
        }
        compact(comp)?;
        changed = true;
    }
    Ok(changed)
}

fn is_target(op: &Op) -> bool {
    matches!(op, Op::Async { .. } | Op::CopyStart | Op::CopyDone | Op::PartitionId | Op::ReplicaId)
}

fn unsupported(instr: &Instr, reason: &str) -> PassError {
    PassError::Unsupported {
        pass: "single-device",
        op: format!("{} (%{})", instr.op.opcode().name(), instr.name),
        reason: reason.into(),
    }
}

/// Rewrites the instruction `id` in place.
fn rewrite(comp: &mut Computation, names: &mut NameUniquer, id: InstrId) -> Result<(), PassError> {
    let instr = comp.instr(id).clone();
    let span = comp.span(id);
    let mut push = |comp: &mut Computation, shape: Shape, op: Op, operands: Vec<InstrId>| {
        let mut new = Instr::new(names.fresh(&instr.name), shape, op, operands);
        new.meta.metadata = instr.meta.metadata.clone();
        comp.push_with_span(new, span)
    };
    let (op, operands) = match &instr.op {
        Op::PartitionId | Op::ReplicaId => {
            let Some(a) = instr.shape.as_array() else { return Err(unsupported(&instr, "the result is not an array")) };
            let zero = Literal { shape: instr.shape.clone(), data: LiteralData::Array(ArrayData::zeros(a.dtype, 1)) };
            (Op::Constant(Box::new(zero)), vec![])
        }
        Op::CopyStart => {
            let Some(elems) = instr.shape.as_tuple().filter(|t| t.len() >= 2) else {
                return Err(unsupported(&instr, "the result is not (destination, source, context...)"));
            };
            let x = instr.operands[0];
            let mut parts = vec![x, x];
            for shape in &elems[2..] {
                parts.push(zeros(comp, &mut push, shape));
            }
            (Op::Tuple, parts)
        }
        Op::CopyDone => (Op::GetTupleElement { index: 0 }, vec![instr.operands[0]]),
        Op::Async { opcode: Opcode::AsyncStart, calls: Some(callee) } => {
            let Some(elems) = instr.shape.as_tuple().filter(|t| t.len() >= 2) else {
                return Err(unsupported(&instr, "the result is not ((operands), result, context...)"));
            };
            let operands_tuple = push(comp, elems[0].clone(), Op::Tuple, instr.operands.clone());
            let call = Op::Call { to_apply: *callee, is_composite: false };
            let result = push(comp, elems[1].clone(), call, instr.operands.clone());
            let mut parts = vec![operands_tuple, result];
            for shape in &elems[2..] {
                parts.push(zeros(comp, &mut push, shape));
            }
            (Op::Tuple, parts)
        }
        // The update only orders the wrapped work: its value is its operand's, rebuilt as the
        // tuple of that operand's elements.
        Op::Async { opcode: Opcode::AsyncUpdate, .. } => {
            let Some(elems) = instr.shape.as_tuple() else {
                return Err(unsupported(&instr, "the result is not a tuple"));
            };
            let s = instr.operands[0];
            let parts = elems
                .iter()
                .enumerate()
                .map(|(k, shape)| push(comp, shape.clone(), Op::GetTupleElement { index: k as u64 }, vec![s]))
                .collect();
            (Op::Tuple, parts)
        }
        Op::Async { opcode: Opcode::AsyncDone, .. } => (Op::GetTupleElement { index: 1 }, vec![instr.operands[0]]),
        _ => return Err(unsupported(&instr, "an async op without a wrapped computation")),
    };
    let target = comp.instr_mut(id);
    target.op = op;
    target.operands = operands;
    target.meta.other_attrs.clear();
    Ok(())
}

/// A zero value of `shape`: a constant for an array, `after-all()` for a token, a tuple of
/// zeros for a tuple.
fn zeros(
    comp: &mut Computation,
    push: &mut impl FnMut(&mut Computation, Shape, Op, Vec<InstrId>) -> InstrId,
    shape: &Shape,
) -> InstrId {
    match shape {
        Shape::Array(a) => {
            let a = a.with_dtype(a.dtype);
            let data = ArrayData::zeros(a.dtype, a.num_elements() as usize);
            let lit = Literal { shape: Shape::Array(a.clone()), data: LiteralData::Array(data) };
            push(comp, Shape::Array(a), Op::Constant(Box::new(lit)), vec![])
        }
        Shape::Token => push(comp, Shape::Token, Op::AfterAll, vec![]),
        Shape::Tuple(t) => {
            let parts = t.iter().map(|s| zeros(comp, push, s)).collect();
            push(comp, shape.clone(), Op::Tuple, parts)
        }
    }
}
