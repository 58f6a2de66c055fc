//! `inline-calls`: replaces every `call` and `fusion` with the body of the computation it calls.
//!
//! Pre-condition: a well-formed module (no recursion between computations).
//! Post-conditions:
//! - no `call` or `fusion` instruction remains in any computation, so XLA's own
//!   fusion decisions from post-optimisation dumps are undone and our fusion
//!   pass decides from scratch;
//! - inlined instructions get module-unique names derived from their originals;
//! - a `get-tuple-element` of a `tuple` produced by inlining is forwarded to the
//!   tuple's element, so multi-output callees leave no tuple behind;
//! - computations no longer reachable from the entry are removed; those still
//!   called by `reduce`, `scatter`, `sort`, `while`, ... are kept.

use crate::util::{compact, remove_unreachable_comps, NameUniquer};
use crate::PassError;
use hlo_ir::{Computation, InstrId, Module, Op};

/// Deepest call nesting we follow before reporting recursion.
const MAX_DEPTH: usize = 64;

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("inline-calls").entered();
    let mut names = NameUniquer::new(module);
    // A callee used by exactly one call or fusion disappears once inlined, so
    // its instructions may keep their names in the caller.
    let mut uses = vec![0usize; module.comps.len()];
    let mut inlined_uses = vec![0usize; module.comps.len()];
    for comp in &module.comps {
        for instr in &comp.instrs {
            for callee in instr.op.called_computations() {
                uses[callee.index()] += 1;
                if is_inlinable(&instr.op) {
                    inlined_uses[callee.index()] += 1;
                }
            }
        }
    }
    for (c, comp) in module.comps.iter().enumerate() {
        if uses[c] == 1 && inlined_uses[c] == 1 {
            comp.instrs.iter().for_each(|it| names.release(&it.name));
        }
    }
    let mut changed = false;
    for cid in module.comp_ids().collect::<Vec<_>>() {
        if !module.comp(cid).instrs.iter().any(|it| is_inlinable(&it.op)) {
            continue;
        }
        let src = module.comp(cid);
        let mut dst = Computation {
            name: src.name.clone(),
            instrs: Vec::with_capacity(src.instrs.len()),
            spans: Vec::with_capacity(src.instrs.len()),
            params: Vec::new(),
            root: src.root,
            execution_thread: src.execution_thread.clone(),
        };
        let root = emit(module, src, None, &mut dst, &mut names, 0)?;
        dst.root = root;
        compact(&mut dst)?;
        *module.comp_mut(cid) = dst;
        changed = true;
    }
    if changed {
        remove_unreachable_comps(module);
    }
    Ok(changed)
}

fn is_inlinable(op: &Op) -> bool {
    matches!(op, Op::Call { .. } | Op::Fusion { .. })
}

/// Appends the instructions of `src` to `dst`, inlining calls recursively.
/// With `args`, `src` is a callee whose parameters become those values and
/// whose instructions are renamed; returns the value of `src`'s root.
fn emit(
    module: &Module,
    src: &Computation,
    args: Option<&[InstrId]>,
    dst: &mut Computation,
    names: &mut NameUniquer,
    depth: usize,
) -> Result<InstrId, PassError> {
    if depth > MAX_DEPTH {
        return Err(PassError::Unsupported {
            pass: "inline-calls",
            op: "call".into(),
            reason: format!("calls nest deeper than {MAX_DEPTH} levels (recursion through {})", src.name),
        });
    }
    let mut map: Vec<InstrId> = Vec::with_capacity(src.instrs.len());
    for id in src.ids() {
        let instr = src.instr(id);
        let operands: Vec<InstrId> = instr.operands.iter().map(|o| map[o.index()]).collect();
        let new_id = match (&instr.op, args) {
            (Op::Parameter { number }, Some(args)) => *args
                .get(*number as usize)
                .ok_or_else(|| PassError::Internal(format!("{}: parameter({number}) has no argument", src.name)))?,
            (Op::Call { to_apply: callee, .. } | Op::Fusion { calls: callee, .. }, _) => {
                let callee = module.comp(*callee);
                emit(module, callee, Some(&operands), dst, names, depth + 1)?
            }
            (Op::GetTupleElement { index }, _) if forwardable(dst, &operands, *index) => {
                dst.instr(operands[0]).operands[*index as usize]
            }
            _ => {
                let mut new = instr.clone();
                new.operands = operands;
                new.meta.control_predecessors =
                    instr.meta.control_predecessors.iter().map(|p| map[p.index()]).collect();
                if args.is_some() {
                    new.name = names.fresh(&instr.name);
                }
                dst.push_with_span(new, src.span(id))
            }
        };
        map.push(new_id);
    }
    Ok(map[src.root.index()])
}

/// True when `get-tuple-element(operands[0]), index=index` reads an element of a `tuple` instruction.
fn forwardable(comp: &Computation, operands: &[InstrId], index: u64) -> bool {
    match operands {
        [tuple] => {
            let it = comp.instr(*tuple);
            matches!(it.op, Op::Tuple) && (index as usize) < it.operands.len()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::util::testing::check;

    #[test]
    fn call_is_inlined_and_its_tuple_forwarded() {
        check(
            super::run,
            r#"
HloModule m
callee {
  a = f32[4] parameter(0)
  b = f32[4] parameter(1)
  s = f32[4] add(a, b)
  m = f32[4] multiply(a, b)
  ROOT t = (f32[4], f32[4]) tuple(s, m)
}
ENTRY main {
  x = f32[4] parameter(0)
  y = f32[4] parameter(1)
  c = (f32[4], f32[4]) call(x, y), to_apply=callee
  g0 = f32[4] get-tuple-element(c), index=0
  g1 = f32[4] get-tuple-element(c), index=1
  ROOT r = f32[4] subtract(g0, g1)
}
"#,
            r#"
ENTRY %main (x: f32[4], y: f32[4]) -> f32[4] {
%x = f32[4] parameter(0)
%y = f32[4] parameter(1)
%s = f32[4] add(%x, %y)
%m = f32[4] multiply(%x, %y)
ROOT %r = f32[4] subtract(%s, %m)
}
"#,
        );
    }

    #[test]
    fn fusions_are_undone_but_reducers_stay() {
        check(
            super::run,
            r#"
HloModule m
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
fused {
  p = f32[8] parameter(0)
  z = f32[] constant(0)
  n = f32[8] negate(p)
  ROOT r = f32[] reduce(n, z), dimensions={0}, to_apply=add
}
ENTRY main {
  x = f32[8] parameter(0)
  ROOT f = f32[] fusion(x), kind=kInput, calls=fused
}
"#,
            r#"
%add (a: f32[], b: f32[]) -> f32[] {
%a = f32[] parameter(0)
%b = f32[] parameter(1)
ROOT %s = f32[] add(%a, %b)
}
ENTRY %main (x: f32[8]) -> f32[] {
%x = f32[8] parameter(0)
%z = f32[] constant(0)
%n = f32[8] negate(%x)
ROOT %r = f32[] reduce(%n, %z), dimensions={0}, to_apply=%add
}
"#,
        );
    }

    #[test]
    fn nested_calls_are_inlined() {
        check(
            super::run,
            r#"
HloModule m
inner {
  a = f32[2] parameter(0)
  ROOT e = f32[2] exponential(a)
}
outer {
  b = f32[2] parameter(0)
  ROOT c = f32[2] call(b), to_apply=inner
}
ENTRY main {
  x = f32[2] parameter(0)
  ROOT y = f32[2] call(x), to_apply=outer
}
"#,
            r#"
ENTRY %main (x: f32[2]) -> f32[2] {
%x = f32[2] parameter(0)
ROOT %e.1 = f32[2] exponential(%x)
}
"#,
        );
    }
}
