//! `sort` by complex keys (or carrying complex values): before the lowering proper, each complex
//! operand becomes two real operands (its `real` and `imag`), and the comparator a new one
//! whose parameters are those parts, rebuilding each complex parameter with `complex(re, im)`
//! for the comparator's own body (which the lowering then turns into real arithmetic, as JAX's
//! lexicographic comparator reads `real` and `imag` of them). The sort's result is rebuilt with
//! `complex` from the sorted parts, so its users see the same values.

use super::Result;
use crate::util::{compact, NameUniquer};
use hlo_ir::{CompId, Computation, Instr, InstrId, Module, Op, Shape, UnaryOp};

/// Splits every sort with complex operands; returns whether any was split.
pub(super) fn split_complex_sorts(module: &mut Module, names: &mut NameUniquer) -> Result<bool> {
    let mut changed = false;
    for c in 0..module.comps.len() {
        let ids: Vec<InstrId> = module.comps[c]
            .ids()
            .filter(|&id| {
                let comp = &module.comps[c];
                let instr = comp.instr(id);
                matches!(instr.op, Op::Sort { .. })
                    && instr.operands.iter().any(|&o| super::is_complex(&comp.instr(o).shape))
            })
            .collect();
        if ids.is_empty() {
            continue;
        }
        for id in ids {
            let Op::Sort { dimension, is_stable, to_apply } = module.comps[c].instr(id).op.clone() else { continue };
            let complex: Vec<bool> = module.comps[c]
                .instr(id)
                .operands
                .iter()
                .map(|&o| super::is_complex(&module.comps[c].instr(o).shape))
                .collect();
            let comparator = split_comparator(module.comp(to_apply), &complex, names)?;
            let new_cmp = CompId(module.comps.len() as u32);
            module.comps.push(comparator);
            split_sort(&mut module.comps[c], names, id, dimension, is_stable, new_cmp);
            changed = true;
        }
        // Once per computation: compaction renumbers the instructions.
        compact(&mut module.comps[c])?;
    }
    if changed {
        crate::util::remove_unreachable_comps(module);
        crate::util::order_callees_first(module);
    }
    Ok(changed)
}

/// The comparator over split operands: parameter `2k` and `2k+1` of a complex operand `k`
/// become four real ones (both sides' real parts, then both imaginary parts).
fn split_comparator(old: &Computation, complex: &[bool], names: &mut NameUniquer) -> Result<Computation> {
    let mut comp = old.clone();
    comp.name = names.fresh(&format!("{}.split", old.name));
    for (k, _) in complex.iter().enumerate().filter(|(_, &is_complex)| is_complex) {
        for p in [old.params[2 * k], old.params[2 * k + 1]] {
            let Some(a) = comp.instr(p).shape.as_array().cloned() else { continue };
            let part = Shape::Array(a.with_dtype(super::part_dtype(a.dtype)));
            let name = comp.instr(p).name.clone();
            let param = |names: &mut NameUniquer, suffix: &str| {
                Instr::new(names.fresh(&format!("{name}.{suffix}")), part.clone(), Op::Parameter { number: 0 }, vec![])
            };
            let re = comp.push(param(names, "re"));
            let im = comp.push(param(names, "im"));
            let target = comp.instr_mut(p);
            target.op = Op::Binary(hlo_ir::BinaryOp::Complex);
            target.operands = vec![re, im];
        }
    }
    // Number the parameters in the split operands' order.
    let mut order: Vec<InstrId> = Vec::new();
    for (k, &is_complex) in complex.iter().enumerate() {
        let (lhs, rhs) = (old.params[2 * k], old.params[2 * k + 1]);
        if is_complex {
            let (lhs_re, lhs_im) = (comp.instr(lhs).operands[0], comp.instr(lhs).operands[1]);
            let (rhs_re, rhs_im) = (comp.instr(rhs).operands[0], comp.instr(rhs).operands[1]);
            order.extend([lhs_re, rhs_re, lhs_im, rhs_im]);
        } else {
            order.extend([lhs, rhs]);
        }
    }
    for (number, &p) in order.iter().enumerate() {
        comp.instr_mut(p).op = Op::Parameter { number: number as u64 };
    }
    comp.params = order;
    // The new parameters were appended after their users: restore the arena order.
    compact(&mut comp)?;
    Ok(comp)
}

/// Rewrites the sort `id` over the split operands, and `id` itself into the rebuilt result.
fn split_sort(
    comp: &mut Computation,
    names: &mut NameUniquer,
    id: InstrId,
    dimension: i64,
    is_stable: bool,
    comparator: CompId,
) {
    let instr = comp.instr(id).clone();
    let span = comp.span(id);
    let mut push = |comp: &mut Computation, shape: Shape, op: Op, operands: Vec<InstrId>| {
        let mut new = Instr::new(names.fresh(&instr.name), shape, op, operands);
        new.meta.metadata = instr.meta.metadata.clone();
        comp.push_with_span(new, span)
    };
    // Each operand as one or two real arrays, with whether it was complex.
    let mut operands = Vec::new();
    let mut shapes = Vec::new();
    let mut split = Vec::new();
    for &o in &instr.operands {
        let shape = comp.instr(o).shape.clone();
        match shape.as_array() {
            Some(a) if a.dtype.is_complex() => {
                let part = Shape::Array(a.with_dtype(super::part_dtype(a.dtype)));
                operands.push(push(comp, part.clone(), Op::Unary(UnaryOp::Real), vec![o]));
                operands.push(push(comp, part.clone(), Op::Unary(UnaryOp::Imag), vec![o]));
                shapes.extend([part.clone(), part]);
                split.push(true);
            }
            _ => {
                operands.push(o);
                shapes.push(shape);
                split.push(false);
            }
        }
    }
    let sort =
        push(comp, Shape::Tuple(shapes.clone()), Op::Sort { dimension, is_stable, to_apply: comparator }, operands);
    let mut parts = Vec::new();
    let mut next = 0usize;
    for (k, &is_split) in split.iter().enumerate() {
        let mut gte = |comp: &mut Computation, i: usize| {
            push(comp, shapes[i].clone(), Op::GetTupleElement { index: i as u64 }, vec![sort])
        };
        if is_split {
            let re = gte(comp, next);
            let im = gte(comp, next + 1);
            parts.push((Some(comp.instr(instr.operands[k]).shape.clone()), vec![re, im]));
            next += 2;
        } else {
            parts.push((None, vec![gte(comp, next)]));
            next += 1;
        }
    }
    if !instr.shape.is_tuple() {
        // One operand, complex: the result is `complex` of the sorted parts.
        let (_, re_im) = parts.pop().expect("one operand");
        let target = comp.instr_mut(id);
        target.op = Op::Binary(hlo_ir::BinaryOp::Complex);
        target.operands = re_im;
        return;
    }
    let elems: Vec<InstrId> = parts
        .into_iter()
        .map(|(shape, ops)| match shape {
            Some(shape) => push(comp, shape, Op::Binary(hlo_ir::BinaryOp::Complex), ops),
            None => ops[0],
        })
        .collect();
    let target = comp.instr_mut(id);
    target.op = Op::Tuple;
    target.operands = elems;
}
