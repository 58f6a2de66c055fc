//! `dynamic-shape-removal`: dynamic-shape ops whose sizes are in fact static become static ops,
//! as XLA's `DynamicPadder` leaves them when every size is known:
//! - `dynamic-reshape(x, sizes...)` with a static result is a `reshape` (the sizes, which must
//!   be the result's, are not read);
//! - `set-dimension-size(x, n)` with a constant `n` equal to the dimension's bound is `x`: the
//!   whole bounded array is the value, so nothing is masked.
//!
//! Then no array is smaller than its bound, so every `<=N` dimension becomes `N`.
//! A size that only the run knows, or one smaller than the bound, would need the padding masked
//! in every user (XLA's dynamic padder); that is refused naming the op.
//!
//! Pre-condition: the entry's parameters are static. Post-condition: no `dynamic-reshape`, no
//! `set-dimension-size` and no dynamic dimension remains.

use crate::util::{compact, uniform_constant};
use crate::PassError;
use hlo_ir::{Instr, InstrId, Module, Op, Shape};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("dynamic-shape-removal").entered();
    let has_target = |module: &Module| {
        module
            .comps
            .iter()
            .any(|c| c.instrs.iter().any(|i| matches!(i.op, Op::DynamicReshape | Op::SetDimensionSize { .. })))
    };
    if !has_target(module) {
        return Ok(false);
    }
    let entry = module.entry_comp();
    if let Some(&p) = entry.params.iter().find(|&&p| is_dynamic(&entry.instr(p).shape)) {
        return Err(unsupported(entry.instr(p), "a dynamic entry parameter"));
    }
    for comp in &mut module.comps {
        let ids: Vec<InstrId> = comp
            .ids()
            .filter(|&id| matches!(comp.instr(id).op, Op::DynamicReshape | Op::SetDimensionSize { .. }))
            .collect();
        for &id in &ids {
            let instr = comp.instr(id).clone();
            match instr.op {
                Op::DynamicReshape => {
                    if is_dynamic(&instr.shape) {
                        return Err(unsupported(&instr, "a dynamic result"));
                    }
                    let target = comp.instr_mut(id);
                    target.op = Op::Reshape;
                    target.operands.truncate(1);
                }
                Op::SetDimensionSize { dimension } => {
                    let x = instr.operands[0];
                    let bound = comp.instr(x).shape.as_array().and_then(|a| a.dims.get(dimension as usize).copied());
                    let size = uniform_constant(comp, instr.operands[1]);
                    if bound.is_none() || size != bound.map(|b| b as f64) {
                        return Err(unsupported(&instr, "a size that is not the constant bound of its dimension"));
                    }
                    // A convert to its own type: the identity, which simplification removes.
                    let target = comp.instr_mut(id);
                    target.op = Op::Convert;
                    target.operands.truncate(1);
                }
                _ => {}
            }
        }
        if !ids.is_empty() {
            compact(comp)?;
        }
    }
    for comp in &mut module.comps {
        for instr in &mut comp.instrs {
            make_static(&mut instr.shape);
            if let Op::Constant(lit) = &mut instr.op {
                make_static(&mut lit.shape);
            }
        }
    }
    Ok(true)
}

fn unsupported(instr: &Instr, reason: &str) -> PassError {
    PassError::Unsupported {
        pass: "dynamic-shape-removal",
        op: format!("{} (%{})", instr.op.opcode().name(), instr.name),
        reason: format!("{reason} needs masked padding, which is not implemented"),
    }
}

fn is_dynamic(shape: &Shape) -> bool {
    shape.leaves().iter().any(|a| a.dynamic.iter().any(|&d| d))
}

fn make_static(shape: &mut Shape) {
    match shape {
        Shape::Array(a) => a.dynamic.iter_mut().for_each(|d| *d = false),
        Shape::Tuple(t) => t.iter_mut().for_each(make_static),
        Shape::Token => {}
    }
}
