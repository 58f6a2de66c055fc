//! A dynamic-update-slice written in place: only the update's elements, into the operand's own buffer (and the
//! test that also lets a scatter combine into its operand's buffer).
//!
//! Inside a loop body, `canvas' = dynamic-update-slice(canvas, window, i, j)` with `canvas` loop state is XLA's
//! in-place update: a drawing loop or a `lax.scan` stacking its outputs touches a window per iteration. Computed
//! as a fresh array it costs the whole array per iteration, and once more to copy it back into the state. The
//! program decides when the operand's buffer may be overwritten ([`in_place_operand`] for the fused
//! computation, the program builder for the loop state); this emitter writes one invocation per update element.

use crate::emit::elemental::{linearize, Em, Index};
use crate::emit::{element_index, finish, grid, KernelCtx, KernelKind, KernelStep};
use crate::error::Result;
use hlo_ir::{Computation, DType, InstrId, Op};
use hlo_program::BufferId;
use naga::BinaryOperator as Bo;

/// When `comp` (a fused computation) updates one of its parameters in a way that may be done in place, that
/// parameter's number. Either the root is a dynamic-update-slice whose operand parameter is read nowhere else but
/// by dynamic-slices of exactly the updated window (same start-index instructions, the update's sizes), so each
/// invocation reads an element before it writes the same element; or the root is a scatter (one operand) whose
/// operand parameter is read nowhere else, so the scatter combines into it directly (`emit/scatter.rs` then
/// skips copying the operand into its output).
pub(crate) fn in_place_operand(comp: &Computation) -> Option<usize> {
    let root = comp.root_instr();
    let scatter = match root.op {
        Op::DynamicUpdateSlice => false,
        Op::Scatter { .. } if root.operands.len() == 3 => true,
        _ => return None,
    };
    let operand = root.operands[0];
    let Op::Parameter { number } = comp.instr(operand).op else { return None };
    let update_dims = &comp.instr(root.operands[1]).shape.as_array()?.dims;
    let live = crate::program::live_set(comp);
    for id in comp.ids() {
        let instr = comp.instr(id);
        if !live.contains(&id) || !instr.operands.contains(&operand) {
            continue;
        }
        if instr.operands[1..].contains(&operand) {
            return None;
        }
        let same_window = match &instr.op {
            _ if id == comp.root => true,
            Op::DynamicSlice { sizes } if !scatter => sizes == update_dims && instr.operands[1..] == root.operands[2..],
            _ => false,
        };
        if !same_window {
            return None;
        }
    }
    Some(number as usize)
}

/// The loop-state leaf that instruction `reader` of loop body `comp` reads as its operand `number`, when that
/// operand is `get-tuple-element(param, leaf)` and nothing else reads the leaf: no other operand of `reader`,
/// no other live instruction of the body (through any tuple-indexing of the parameter), and nothing that takes
/// the whole state tuple. Then the leaf's old value is dead once `reader` has read it, and `reader` may
/// overwrite its buffer.
pub(crate) fn sole_reader_of_state_leaf(comp: &Computation, reader: InstrId, number: usize) -> Option<usize> {
    let param = *comp.params.first()?;
    let operand = *comp.instr(reader).operands.get(number)?;
    let Op::GetTupleElement { index } = comp.instr(operand).op else { return None };
    if comp.instr(operand).operands[0] != param {
        return None;
    }
    let reads_leaf = |o: InstrId| {
        matches!(comp.instr(o).op, Op::GetTupleElement { index: i } if i == index) && comp.instr(o).operands[0] == param
    };
    if comp.instr(reader).operands.iter().filter(|&&o| reads_leaf(o)).count() != 1 {
        return None;
    }
    let live = crate::program::live_set(comp);
    let read_elsewhere = comp.ids().any(|id| {
        let other = comp.instr(id);
        live.contains(&id)
            && id != reader
            && other
                .operands
                .iter()
                .any(|&o| reads_leaf(o) || (o == param && !matches!(other.op, Op::GetTupleElement { .. })))
    });
    (!read_elsewhere).then_some(index as usize)
}

/// Emits the in-place update of `operand` (the `dims`/`dtype` buffer the root's operand 0 reads) by `ctx.root`.
pub(crate) fn emit(ctx: &KernelCtx, operand: BufferId, dims: &[i64], dtype: DType) -> Result<Vec<KernelStep>> {
    let comp = ctx.m.comp(ctx.comp);
    let dus = comp.instr(ctx.root);
    let update_dims = comp.instr(dus.operands[1]).shape.as_array().map(|a| a.dims.clone()).unwrap_or_default();
    let n: u64 = update_dims.iter().map(|&d| d.max(0) as u64).product();
    if n == 0 {
        return Ok(Vec::new());
    }
    let wg = ctx.target.loop_workgroup();
    let groups = grid(n.div_ceil(wg as u64));
    let mut em = Em::new(ctx.m, ctx.target, &ctx.name);
    // Bound writable before the update's evaluation reads it, so that reads and the write share one binding.
    let g = em.bind_buffer(operand, dtype, true, false)?;
    let f = em.frame(ctx.comp, ctx.leaves.clone());
    let at = element_index(&mut em.kb, wg, groups, n);
    let u = Index::from_linear(&update_dims, at.clamped);
    let value = em.eval(f, dus.operands[1], &[], &u)?;
    let within = u.multi(&mut em.kb);
    let mut position = Vec::with_capacity(dims.len());
    for (d, &w) in within.iter().enumerate() {
        let start = em.clamped_start(f, dus, 2 + d, dims[d] - update_dims[d])?;
        position.push(em.kb.add_u(start, w));
    }
    let linear = linearize(&mut em.kb, dims, &position);
    if at.exact {
        em.store(g, linear, value);
    } else {
        let count = em.kb.lit_u32(n as u32);
        let inside = em.kb.binary(Bo::Less, at.raw, count);
        em.kb.begin_block();
        em.store(g, linear, value);
        let accept = em.kb.end_block();
        em.kb.stmt(naga::Statement::If { condition: inside, accept, reject: naga::Block::new() });
    }
    Ok(vec![finish(em, &ctx.name, KernelKind::DusInPlace, [wg, 1, 1], groups, ctx.sources.clone())?])
}
