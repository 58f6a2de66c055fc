//! `rng-expander`: every `rng` (RngUniform, RngNormal) becomes a `call` of the computation that
//! defines it (`hlo_interp::rng_distribution`: a Philox `rng-bit-generator` and the conversion
//! of its bits to the distribution) on `(a, b, rng-get-and-update-state)`, as XLA's
//! `RngExpander` does. The interpreter evaluates `rng` with the same computation, so both
//! backends give the same bits; `inline-calls` then inlines the call, and
//! `rng-state-threading` turns the state op into a value the program threads through.
//!
//! Pre-condition: none. Post-condition: no `rng` remains; one whose element type the
//! distributions do not define is refused by name.

use crate::util::{compact, order_callees_first, NameUniquer};
use crate::PassError;
use hlo_ir::{ArrayShape, CompId, Instr, InstrId, Module, Op, Shape};
use std::collections::HashMap;

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("rng-expander").entered();
    let mut names = NameUniquer::new(module);
    // One computation per distinct (distribution, result shape).
    let mut made: HashMap<String, CompId> = HashMap::new();
    let mut changed = false;
    for c in 0..module.comps.len() {
        let ids: Vec<InstrId> =
            module.comps[c].ids().filter(|&id| matches!(module.comps[c].instr(id).op, Op::Rng { .. })).collect();
        for id in ids {
            let instr = module.comps[c].instr(id).clone();
            let Op::Rng { distribution } = instr.op else { continue };
            let refuse = |reason: String| PassError::Unsupported {
                pass: "rng-expander",
                op: format!("rng (%{})", instr.name),
                reason,
            };
            let Some(out) = instr.shape.as_array() else {
                return Err(refuse("the result is not an array".into()));
            };
            let expansion = hlo_interp::rng_distribution::rng_expansion(distribution, out)
                .map_err(|what| refuse(format!("{what} is not defined (XLA defines floats and integers)")))?;
            let callee = match made.get(&expansion.comp.name) {
                Some(&callee) => callee,
                None => {
                    let key = expansion.comp.name.clone();
                    let mut comp = expansion.comp;
                    comp.name = names.fresh(&key);
                    for instr in &mut comp.instrs {
                        instr.name = names.fresh(&instr.name);
                    }
                    module.comps.push(comp);
                    let callee = CompId(module.comps.len() as u32 - 1);
                    made.insert(key, callee);
                    callee
                }
            };
            let comp = &mut module.comps[c];
            let span = comp.span(id);
            let mut state = Instr::new(
                names.fresh(&format!("{}.state", instr.name)),
                Shape::Array(ArrayShape::new(hlo_ir::DType::U64, vec![2])),
                Op::RngGetAndUpdateState { delta: expansion.delta },
                vec![],
            );
            state.meta.metadata = instr.meta.metadata.clone();
            let state = comp.push_with_span(state, span);
            let target = comp.instr_mut(id);
            target.op = Op::Call { to_apply: callee, is_composite: false };
            target.operands.push(state);
            changed = true;
        }
        if changed {
            compact(&mut module.comps[c])?;
        }
    }
    if changed {
        order_callees_first(module);
    }
    Ok(changed)
}
