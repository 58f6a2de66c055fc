//! `scaled-dot-expander`: every `scaled-dot` becomes a `call` of the computation that defines
//! it (`hlo_interp::scaled_dot`: each operand multiplied by its scale repeated over blocks, in
//! the types XLA's `ScaledDotRewriter` widens to, then a `dot`), which `inline-calls` inlines.
//! The interpreter evaluates `scaled-dot` with the same computation.
//!
//! Pre-condition: none. Post-condition: no `scaled-dot` remains; one whose operands the
//! definition does not cover (the six-operand NVFP4 form, a scale that does not divide its
//! operand) is refused by name.

use crate::util::{compact, order_callees_first, NameUniquer};
use crate::PassError;
use hlo_ir::{ArrayShape, CompId, InstrId, Module, Op};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("scaled-dot-expander").entered();
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    for c in 0..module.comps.len() {
        let ids: Vec<InstrId> =
            module.comps[c].ids().filter(|&id| matches!(module.comps[c].instr(id).op, Op::ScaledDot { .. })).collect();
        for &id in &ids {
            let comp = &module.comps[c];
            let instr = comp.instr(id);
            let Op::ScaledDot { dims, precision } = &instr.op else { continue };
            let refuse = |reason: String| PassError::Unsupported {
                pass: "scaled-dot-expander",
                op: format!("scaled-dot (%{})", instr.name),
                reason,
            };
            let shapes: Vec<&ArrayShape> = instr
                .operands
                .iter()
                .map(|&o| comp.instr(o).shape.as_array().ok_or_else(|| refuse("a tuple operand".into())))
                .collect::<Result<_, _>>()?;
            let out = instr.shape.as_array().ok_or_else(|| refuse("a tuple result".into()))?;
            let mut callee =
                hlo_interp::scaled_dot::scaled_dot_expansion(dims, precision, &shapes, out).map_err(refuse)?;
            callee.name = names.fresh(&callee.name);
            for it in &mut callee.instrs {
                it.name = names.fresh(&it.name);
            }
            module.comps.push(callee);
            let to_apply = CompId(module.comps.len() as u32 - 1);
            let target = module.comps[c].instr_mut(id);
            target.op = Op::Call { to_apply, is_composite: false };
            target.meta.other_attrs.clear();
        }
        if !ids.is_empty() {
            compact(&mut module.comps[c])?;
            changed = true;
        }
    }
    if changed {
        order_callees_first(module);
    }
    Ok(changed)
}
