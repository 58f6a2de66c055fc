//! `cse`: merges instructions that compute the same value.
//!
//! Two instructions are merged when they have the same op with the same
//! attributes (constants compared bit for bit, so `0.0` and `-0.0` stay apart),
//! the same shape and the same operands (in either order for commutative
//! binary ops). The later one's uses move to the earlier one.
//!
//! Never merged: parameters, side-effecting ops, random number generators,
//! custom calls, control flow (`while`, `conditional`, `call`), and
//! instructions that take part in control dependencies.
//!
//! Pre-condition: a well-formed module. Post-condition: no two mergeable
//! instructions remain in a computation; the arena stays topologically ordered.

use crate::util::{compact, is_side_effecting, literal_identical};
use crate::PassError;
use hlo_ir::{Computation, InstrId, Module, Op, Opcode, Shape};
use std::collections::{HashMap, HashSet};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("cse").entered();
    let mut changed = false;
    for comp in &mut module.comps {
        changed |= cse_comp(comp)?;
    }
    Ok(changed)
}

fn cse_comp(comp: &mut Computation) -> Result<bool, PassError> {
    let in_control_deps: HashSet<InstrId> =
        comp.instrs.iter().flat_map(|it| it.meta.control_predecessors.iter().copied()).collect();
    let mut table: HashMap<(Opcode, Vec<InstrId>, Shape), Vec<InstrId>> = HashMap::new();
    let mut repl: Vec<Option<InstrId>> = vec![None; comp.instrs.len()];
    let mut changed = false;
    for id in comp.ids().collect::<Vec<_>>() {
        let instr = comp.instr_mut(id);
        for op in &mut instr.operands {
            if let Some(to) = repl[op.index()] {
                *op = to;
            }
        }
        let instr = comp.instr(id);
        if !is_mergeable(&instr.op) || !instr.meta.control_predecessors.is_empty() || in_control_deps.contains(&id) {
            continue;
        }
        let mut key_operands = instr.operands.clone();
        if matches!(instr.op, Op::Binary(b) if b.is_commutative()) {
            key_operands.sort();
        }
        let key = (instr.op.opcode(), key_operands, instr.shape.clone());
        let bucket = table.entry(key).or_default();
        let twin = bucket.iter().copied().find(|&other| {
            let other = comp.instr(other);
            same_op(&other.op, &instr.op) && (other.operands == instr.operands || is_commutative(&instr.op))
        });
        match twin {
            Some(twin) => {
                repl[id.index()] = Some(twin);
                changed = true;
            }
            None => bucket.push(id),
        }
    }
    if let Some(to) = repl[comp.root.index()] {
        comp.root = to;
    }
    if changed {
        compact(comp)?;
    }
    Ok(changed)
}

fn is_commutative(op: &Op) -> bool {
    matches!(op, Op::Binary(b) if b.is_commutative())
}

/// Side-effecting ops never merge; neither do parameters, random bits, custom
/// calls (their targets may be impure without saying so), control flow, and the
/// ordering/annotation ops whose identity matters.
fn is_mergeable(op: &Op) -> bool {
    !is_side_effecting(op)
        && !matches!(
            op,
            Op::Parameter { .. }
                | Op::RngBitGenerator { .. }
                | Op::CustomCall(_)
                | Op::While { .. }
                | Op::Conditional { .. }
                | Op::Call { .. }
                | Op::Domain
                | Op::OptimizationBarrier
                | Op::AddDependency
                | Op::Other { .. }
        )
}

fn same_op(a: &Op, b: &Op) -> bool {
    match (a, b) {
        (Op::Constant(x), Op::Constant(y)) => literal_identical(x, y),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use crate::util::testing::{check, check_unchanged};

    #[test]
    fn merges_identical_and_commuted_instructions() {
        check(
            super::run,
            r#"
HloModule m
ENTRY main {
  x = f32[4] parameter(0)
  y = f32[4] parameter(1)
  a = f32[4] add(x, y)
  b = f32[4] add(y, x)
  e1 = f32[4] exponential(a)
  e2 = f32[4] exponential(b)
  s = f32[4] subtract(x, y)
  t = f32[4] subtract(y, x)
  u = f32[4] multiply(e1, e2)
  ROOT r = f32[4] add(u, s)
}
"#,
            r#"
ENTRY %main (x: f32[4], y: f32[4]) -> f32[4] {
%x = f32[4] parameter(0)
%y = f32[4] parameter(1)
%a = f32[4] add(%x, %y)
%e1 = f32[4] exponential(%a)
%s = f32[4] subtract(%x, %y)
%u = f32[4] multiply(%e1, %e1)
ROOT %r = f32[4] add(%u, %s)
}
"#,
        );
    }

    #[test]
    fn constants_merge_only_when_bits_match() {
        check(
            super::run,
            r#"
HloModule m
ENTRY main {
  a = f32[] constant(0)
  b = f32[] constant(-0)
  c = f32[] constant(0)
  s = f32[] add(a, b)
  ROOT t = f32[] add(s, c)
}
"#,
            r#"
ENTRY %main () -> f32[] {
%a = f32[] constant(0)
%b = f32[] constant(-0)
%s = f32[] add(%a, %b)
ROOT %t = f32[] add(%s, %a)
}
"#,
        );
    }

    #[test]
    fn random_numbers_are_never_merged() {
        check_unchanged(
            super::run,
            r#"
HloModule m
ENTRY main {
  lo = f32[] constant(0)
  hi = f32[] constant(1)
  r1 = f32[4] rng(lo, hi), distribution=rng_uniform
  r2 = f32[4] rng(lo, hi), distribution=rng_uniform
  ROOT s = f32[4] add(r1, r2)
}
"#,
        );
    }
}
