//! `tree-reduction`: long reductions in blocks of 32, as XLA:CPU's `TreeReductionRewriter` does.
//!
//! XLA:CPU rewrites every single-result `reduce` with a reduced dimension longer than 32 into
//! a `reduce-window` that reduces blocks of 32 along each reduced dimension (window = stride =
//! `min(dim, 32)`, `SAME` padding with the init value: `pad = ceil(n / w) * w - n`, the low half
//! rounded down), followed by the same `reduce` over the block results, again and again until
//! no reduced dimension is longer than 32. So JAX's `jnp.sum` of 2e7 f32 ones is 2e7, where a
//! sequential sum stops at 16777216, and every f32 sum of more than 32 elements rounds as a
//! tree of blocks. Doing the same rewrite gives the same values, and also keeps every loop a
//! kernel runs short.
//!
//! Pre-condition: a well-formed module. Post-condition: no single-result `reduce` has a
//! reduced dimension longer than [`WINDOW`].

use crate::util::NameUniquer;
use crate::PassError;
use hlo_ir::{ArrayShape, CompId, Instr, InstrId, Module, Op, Shape, Window, WindowDim};

/// XLA:CPU's `reduce_window_size` for the rewriter.
pub const WINDOW: i64 = 32;

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("tree-reduction").entered();
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    for c in 0..module.comps.len() {
        let comp_id = CompId(c as u32);
        // A rewritten reduce reduces the block results, which may need another level:
        // look at it again until it does not.
        let mut at = 0;
        let mut comp_changed = false;
        while at < module.comp(comp_id).instrs.len() {
            let id = InstrId::from_index(at);
            if rewrite(module, comp_id, id, &mut names) {
                comp_changed = true;
            } else {
                at += 1;
            }
        }
        if comp_changed {
            crate::util::compact(module.comp_mut(comp_id))?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Rewrites `reduce(x, init)` into `reduce(reduce-window(x, init), init)` when it qualifies.
fn rewrite(module: &mut Module, comp_id: CompId, id: InstrId, names: &mut NameUniquer) -> bool {
    let comp = module.comp(comp_id);
    let instr = comp.instr(id);
    let Op::Reduce { dimensions, to_apply } = &instr.op else { return false };
    if instr.shape.is_tuple() || instr.operands.len() != 2 {
        return false;
    }
    let (input, init) = (instr.operands[0], instr.operands[1]);
    let Some(in_shape) = comp.instr(input).shape.as_array().cloned() else { return false };
    // Mixed-precision reduces (an f64 input into an f32 accumulator, say) are left alone.
    if instr.shape.dtype() != Some(in_shape.dtype) || comp.instr(init).shape.dtype() != Some(in_shape.dtype) {
        return false;
    }
    let reducer = module.comp(*to_apply);
    let scalar = Shape::scalar(in_shape.dtype);
    if reducer.params.len() != 2 || reducer.params.iter().any(|&p| !reducer.instr(p).shape.compatible(&scalar)) {
        return false;
    }
    let reduced = |d: usize| dimensions.contains(&(d as i64));
    if (0..in_shape.rank()).filter(|&d| reduced(d)).all(|d| in_shape.dims[d] <= WINDOW) {
        return false;
    }
    let mut window = Window { dims: Vec::with_capacity(in_shape.rank()) };
    let mut out_dims = Vec::with_capacity(in_shape.rank());
    for (d, &n) in in_shape.dims.iter().enumerate() {
        let size = if reduced(d) { n.min(WINDOW) } else { 1 };
        if size <= 0 {
            return false; // an empty reduced dimension: nothing to reorder
        }
        let (out, pad) = same_padding(n, size);
        window.dims.push(WindowDim {
            size,
            stride: size,
            padding_low: pad / 2,
            padding_high: pad - pad / 2,
            ..WindowDim::default()
        });
        out_dims.push(out);
    }
    let (dimensions, to_apply) = (dimensions.clone(), *to_apply);
    let name = names.fresh(&format!("{}.tree", instr.name));
    let metadata = instr.meta.metadata.clone();
    let partial_shape = Shape::Array(ArrayShape::new(in_shape.dtype, out_dims));
    let comp = module.comp_mut(comp_id);
    let mut partial = Instr::new(name, partial_shape, Op::ReduceWindow { window, to_apply }, vec![input, init]);
    partial.meta.metadata = metadata;
    let partial = comp.push(partial);
    let instr = comp.instr_mut(id);
    instr.op = Op::Reduce { dimensions, to_apply };
    instr.operands = vec![partial, init];
    true
}

/// Output length and total padding of a `SAME`-padded window of `size` and stride `size`
/// over `n` elements (XLA's `MakePadding(.., Padding::kSame)`).
fn same_padding(n: i64, size: i64) -> (i64, i64) {
    let out = (n + size - 1) / size;
    let pad = ((out - 1) * size + size - n).max(0);
    (out, pad)
}

#[cfg(test)]
mod tests {
    use crate::util::testing::check;

    #[test]
    fn padding_matches_xlas_dump_of_a_sum_of_twenty_million() {
        // XLA:CPU's levels for f32[20000000]: 625000 (no pad), 19532 (12_12), 611 (10_10), 20 (14_15).
        assert_eq!(super::same_padding(20_000_000, 32), (625_000, 0));
        assert_eq!(super::same_padding(625_000, 32), (19_532, 24));
        assert_eq!(super::same_padding(19_532, 32), (611, 20));
        assert_eq!(super::same_padding(611, 32), (20, 29));
    }

    #[test]
    fn a_long_sum_becomes_levels_of_blocks() {
        check(
            super::run,
            r#"
HloModule m
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
ENTRY main {
  x = f32[4,100] parameter(0)
  z = f32[] constant(0)
  ROOT r = f32[4] reduce(x, z), dimensions={1}, to_apply=add
}
"#,
            r#"
%add (a: f32[], b: f32[]) -> f32[] {
%a = f32[] parameter(0)
%b = f32[] parameter(1)
ROOT %s = f32[] add(%a, %b)
}
ENTRY %main (x: f32[4,100]) -> f32[4] {
%x = f32[4,100] parameter(0)
%z = f32[] constant(0)
%r.tree = f32[4,4] reduce-window(%x, %z), window={size=1x32 stride=1x32 pad=0_0x14_14}, to_apply=%add
ROOT %r = f32[4] reduce(%r.tree, %z), dimensions={1}, to_apply=%add
}
"#,
        );
    }

    #[test]
    fn mixed_precision_reduces_are_left_alone() {
        // Found by fuzzing: the block results took the input's type instead of the accumulator's.
        let text = r#"
HloModule m
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
ENTRY main {
  x = f64[4,300] parameter(0)
  z = f32[] constant(0)
  ROOT r = f32[4] reduce(x, z), dimensions={1}, to_apply=add
}
"#;
        let (changed, _) = crate::util::testing::run(super::run, text);
        assert!(!changed);
    }
}
