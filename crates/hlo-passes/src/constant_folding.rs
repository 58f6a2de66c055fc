//! `constant-folding`: evaluates instructions whose operands are all constants, through `hlo-interp`.
//!
//! An instruction is folded into a `constant` when every operand is a
//! constant, the op is pure and not a generator, and the result is small:
//! at most [`MAX_FOLD_ELEMENTS`] elements and no more elements than its
//! operands hold together (so folding never materialises an expansion).
//! `iota` and `broadcast` are never folded: they are free to compute inside a
//! kernel and would only become large buffers. Instructions the interpreter
//! cannot evaluate are left as they are.
//!
//! Pre-condition: a well-formed module.
//! Post-condition: no foldable instruction remains; folded instructions keep
//! their names, shapes and metadata.

use crate::util::{is_side_effecting, num_elements};
use crate::PassError;
use hlo_ir::{Instr, InstrId, Literal, Module, Op};

/// The largest result, in elements, that folding may create.
pub const MAX_FOLD_ELEMENTS: u64 = 1 << 16;
/// Results up to this many elements may exceed their operands' size (a pad of a scalar, say).
const SMALL_EXPANSION: u64 = 16;

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("constant-folding").entered();
    let mut changed = false;
    for cid in module.comp_ids().collect::<Vec<_>>() {
        for id in module.comp(cid).ids().collect::<Vec<_>>() {
            let comp = module.comp(cid);
            let instr = comp.instr(id);
            let Some(operands) = constant_operands(comp, instr) else { continue };
            if !is_foldable(instr, &operands) {
                continue;
            }
            let operands: Vec<Literal> = operands.into_iter().cloned().collect();
            let Ok(mut lit) = hlo_interp::evaluate_instr(module, cid, id, &operands) else {
                tracing::debug!(instr = %instr.name, "not folded: the interpreter cannot evaluate it");
                continue;
            };
            let instr = module.comp_mut(cid).instr_mut(id);
            if !lit.shape.compatible(&instr.shape) {
                continue;
            }
            lit.shape = instr.shape.clone();
            instr.op = Op::Constant(Box::new(lit));
            instr.operands.clear();
            changed = true;
        }
    }
    if changed {
        crate::dce::run(module)?;
    }
    Ok(changed)
}

/// The literal of every operand, if all operands are constants.
fn constant_operands<'a>(comp: &'a hlo_ir::Computation, instr: &Instr) -> Option<Vec<&'a Literal>> {
    instr
        .operands
        .iter()
        .map(|&o: &InstrId| match &comp.instr(o).op {
            Op::Constant(lit) => Some(lit.as_ref()),
            _ => None,
        })
        .collect()
}

fn is_foldable(instr: &Instr, operands: &[&Literal]) -> bool {
    if operands.is_empty() || is_side_effecting(&instr.op) || instr.shape.as_array().is_none() {
        return false;
    }
    let excluded = matches!(
        instr.op,
        Op::Parameter { .. }
            | Op::Constant(_)
            | Op::Iota { .. }
            | Op::Broadcast { .. }
            | Op::Rng { .. }
            | Op::RngBitGenerator { .. }
            | Op::RngGetAndUpdateState { .. }
            | Op::While { .. }
            | Op::Conditional { .. }
            | Op::Call { .. }
            | Op::Fusion { .. }
            | Op::CustomCall(_)
            | Op::Tuple
            | Op::AfterAll
            | Op::AddDependency
            | Op::OptimizationBarrier
            | Op::Domain
            | Op::Other { .. }
            | Op::Async { .. }
            | Op::Collective { .. }
    );
    if excluded {
        return false;
    }
    let out = num_elements(&instr.shape);
    let inputs: u64 = operands.iter().map(|l| num_elements(&l.shape)).sum();
    out <= MAX_FOLD_ELEMENTS && (out <= inputs || out <= SMALL_EXPANSION)
}

#[cfg(test)]
mod tests {
    use crate::util::testing::{check, check_unchanged};

    #[test]
    fn folds_arithmetic_on_constants() {
        check(
            super::run,
            r#"
HloModule m
ENTRY main {
  x = f32[3] parameter(0)
  a = f32[3] constant({1, 2, 3})
  b = f32[3] constant({10, 20, 30})
  s = f32[3] add(a, b)
  n = f32[3] negate(s)
  ROOT r = f32[3] multiply(x, n)
}
"#,
            r#"
ENTRY %main (x: f32[3]) -> f32[3] {
%x = f32[3] parameter(0)
%n = f32[3] constant({-11, -22, -33})
ROOT %r = f32[3] multiply(%x, %n)
}
"#,
        );
    }

    #[test]
    fn never_materialises_broadcasts_or_iotas() {
        check_unchanged(
            super::run,
            r#"
HloModule m
ENTRY main {
  c = f32[] constant(2)
  b = f32[1024,1024] broadcast(c), dimensions={}
  i = s32[1024] iota(), iota_dimension=0
  ROOT t = (f32[1024,1024], s32[1024]) tuple(b, i)
}
"#,
        );
    }

    #[test]
    fn does_not_expand_constants() {
        check_unchanged(
            super::run,
            r#"
HloModule m
ENTRY main {
  c = f32[1] constant({2})
  z = f32[] constant(0)
  ROOT p = f32[64] pad(c, z), padding=0_63
}
"#,
        );
    }
}
