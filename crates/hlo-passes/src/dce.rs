//! `dce`: removes instructions whose values are never used and computations never called.
//!
//! Pre-condition: a well-formed module.
//! Post-conditions:
//! - every instruction of a computation is its root, a parameter, a
//!   side-effecting instruction, or (transitively) an operand of one of those;
//! - every computation is reachable from the entry, and computation ids are
//!   renumbered densely in their previous order, with every op's callee ids rewritten;
//! - each arena is renumbered in a topological order that keeps the previous
//!   order of the surviving instructions.

use crate::util::{compact, remove_unreachable_comps};
use crate::PassError;
use hlo_ir::Module;

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("dce").entered();
    let mut changed = remove_unreachable_comps(module);
    for comp in &mut module.comps {
        changed |= compact(comp)?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use crate::util::testing::{check, check_unchanged};

    #[test]
    fn removes_dead_instructions_and_computations() {
        check(
            super::run,
            r#"
HloModule m
unused {
  a = f32[] parameter(0)
  ROOT n = f32[] negate(a)
}
max {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT m = f32[] maximum(a, b)
}
ENTRY main {
  x = f32[4] parameter(0)
  y = f32[4] parameter(1)
  dead = f32[4] exponential(y)
  z = f32[] constant(0)
  ROOT r = f32[] reduce(x, z), dimensions={0}, to_apply=max
}
"#,
            r#"
%max (a: f32[], b: f32[]) -> f32[] {
%a = f32[] parameter(0)
%b = f32[] parameter(1)
ROOT %m = f32[] maximum(%a, %b)
}
ENTRY %main (x: f32[4], y: f32[4]) -> f32[] {
%x = f32[4] parameter(0)
%y = f32[4] parameter(1)
%z = f32[] constant(0)
ROOT %r = f32[] reduce(%x, %z), dimensions={0}, to_apply=%max
}
"#,
        );
    }

    #[test]
    fn keeps_side_effects() {
        check_unchanged(
            super::run,
            r#"
HloModule m
ENTRY main {
  x = f32[4] parameter(0)
  lo = f32[] constant(0)
  hi = f32[] constant(1)
  r = f32[4] rng(lo, hi), distribution=rng_uniform
  ROOT n = f32[4] negate(x)
}
"#,
        );
    }
}
