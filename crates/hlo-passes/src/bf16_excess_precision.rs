//! `bf16-excess-precision`: a bf16 result converted straight to f32 keeps its f32 value, as
//! XLA:CPU's float normalization does with excess precision allowed (XLA's default).
//!
//! XLA:CPU computes every bf16 operation in f32: it converts the operands up, runs the op in
//! f32 and converts the result down to bf16 (`FloatNormalization`). With
//! `xla_allow_excess_precision` on, the default, a user that converts that bf16 result back
//! to f32 reads the f32 result itself: the round trip through bf16 is skipped. So in JAX
//! `(a * b).astype(jnp.float32)` for bf16 `a`, `b` is the exact f32 product, not the product
//! rounded to bf16 (up to about 2^-9 relative, 1.5e-3 at 1.0). A chain of bf16 ops still
//! rounds after each op (in the JAX version we follow, XLA keeps an operand's f32 -> bf16 ->
//! f32 round trip), and so do reductions: only the last step into an f32 `convert` differs.
//!
//! Rule, as XLA's normalization: every bf16 arithmetic op `x` (elementwise, `dot`,
//! `convolution`) outside reducer computations becomes `convert(x32)` to bf16, where `x32` is
//! the same op in f32 on its operands converted to f32, and every f32 `convert` of `x` reads
//! `x32` instead. Other users keep the rounded value, so a chain of bf16 ops still rounds
//! after each op. Reducer bodies (of `reduce`, `reduce-window`, `scatter`, `sort`, `map`,
//! `select-and-scatter`) are left alone: their values are rounded to bf16 at every step
//! either way, and the evaluators recognise their plain form.
//!
//! Pre-condition: a well-formed module. Post-condition: no bf16 arithmetic op remains outside
//! reducers; running the pass again changes nothing.

use crate::util::NameUniquer;
use crate::PassError;
use hlo_ir::{ArrayShape, CompId, DType, Instr, InstrId, Module, Op, Shape, UnaryOp};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("bf16-excess-precision").entered();
    let mut names = NameUniquer::new(module);
    let reducers = reducer_comps(module);
    let mut changed = false;
    for (c, is_reducer) in reducers.into_iter().enumerate() {
        if is_reducer {
            continue;
        }
        let comp_id = CompId(c as u32);
        let n = module.comp(comp_id).instrs.len();
        let mut repl = std::collections::HashMap::new();
        for at in 0..n {
            normalize(module, comp_id, InstrId::from_index(at), &mut names, &mut repl);
        }
        if n != module.comp(comp_id).instrs.len() {
            let comp = module.comp_mut(comp_id);
            crate::util::apply_replacements(comp, &repl);
            crate::util::compact(comp)?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Computations applied to scalars by a reduce-like op (their bf16 ops stay as they are).
fn reducer_comps(module: &Module) -> Vec<bool> {
    let mut res = vec![false; module.comps.len()];
    for comp in &module.comps {
        for instr in &comp.instrs {
            let scalar_bodies: Vec<CompId> = match &instr.op {
                Op::Reduce { to_apply, .. }
                | Op::ReduceWindow { to_apply, .. }
                | Op::Scatter { to_apply, .. }
                | Op::Sort { to_apply, .. }
                | Op::Map { to_apply, .. } => vec![*to_apply],
                Op::SelectAndScatter { select, scatter, .. } => vec![*select, *scatter],
                _ => Vec::new(),
            };
            for c in scalar_bodies {
                if let Some(r) = res.get_mut(c.index()) {
                    *r = true;
                }
            }
        }
    }
    res
}

/// True for ops XLA:CPU computes in f32 whose f32 result can differ from its bf16 rounding.
fn computed_in_f32(op: &Op) -> bool {
    match op {
        Op::Unary(u) => !matches!(u, UnaryOp::Not | UnaryOp::PopulationCount | UnaryOp::Clz | UnaryOp::IsFinite),
        Op::Binary(_) | Op::Dot { .. } | Op::Convolution { .. } => true,
        _ => false,
    }
}

/// The narrow types XLA:CPU computes in f32 (`FloatNormalization`), so that a result's f32
/// convert skips the round trip: bf16, and `f8e8m0fnu`, whose `(a * b).astype(f32)` is the
/// f32 product. The other 8- and 4-bit floats are computed in f16, and their f32 converts
/// read the rounded value.
fn widened_to_f32(dtype: DType) -> bool {
    matches!(dtype, DType::BF16 | DType::F8E8M0FNU)
}

fn dtype(shape: &Shape) -> Option<DType> {
    shape.as_array().map(|a| a.dtype)
}

/// Turns the bf16 op `id` into `convert(op in f32)`; records in `repl` that its f32 converts
/// are replaced by the f32 op.
fn normalize(
    module: &mut Module,
    comp_id: CompId,
    id: InstrId,
    names: &mut NameUniquer,
    repl: &mut std::collections::HashMap<InstrId, InstrId>,
) {
    let comp = module.comp(comp_id);
    let instr = comp.instr(id);
    let Some(narrow) = dtype(&instr.shape).filter(|&d| widened_to_f32(d)) else { return };
    if !computed_in_f32(&instr.op) {
        return;
    }
    let (op, operands, metadata) = (instr.op.clone(), instr.operands.clone(), instr.meta.metadata.clone());
    let name = instr.name.clone();
    let dims = instr.shape.as_array().expect("array").dims.clone();
    let comp = module.comp_mut(comp_id);
    let mut wide = Vec::with_capacity(operands.len());
    for o in operands {
        let operand = comp.instr(o);
        match operand.shape.as_array() {
            Some(a) if a.dtype == narrow => {
                let shape = Shape::Array(ArrayShape::new(DType::F32, a.dims.clone()));
                let up = Instr::new(names.fresh(&format!("{}.f32", operand.name)), shape, Op::Convert, vec![o]);
                wide.push(comp.push(up));
            }
            _ => wide.push(o),
        }
    }
    let f32_shape = Shape::Array(ArrayShape::new(DType::F32, dims));
    let mut wide_op = Instr::new(names.fresh(&format!("{name}.f32")), f32_shape, op, wide);
    wide_op.meta.metadata = metadata;
    let wide_op = comp.push(wide_op);
    let instr = comp.instr_mut(id);
    instr.op = Op::Convert;
    instr.operands = vec![wide_op];
    // f32 converts of the bf16 value read the f32 value: the excess precision.
    for user in comp.ids() {
        let u = comp.instr(user);
        if matches!(u.op, Op::Convert) && u.operands == [id] && dtype(&u.shape) == Some(DType::F32) {
            repl.insert(user, wide_op);
        }
    }
}
#[cfg(test)]
mod tests {
    use crate::util::testing::check;

    #[test]
    fn a_bf16_product_read_as_f32_is_the_f32_product() {
        check(
            super::run,
            r#"
HloModule m
ENTRY main {
  a = bf16[4] parameter(0)
  b = bf16[4] parameter(1)
  p = bf16[4] multiply(a, b)
  f = f32[4] convert(p)
  n = bf16[4] negate(p)
  ROOT t = (f32[4], bf16[4]) tuple(f, n)
}
"#,
            r#"
ENTRY %main (a: bf16[4], b: bf16[4]) -> (f32[4], bf16[4]) {
%a = bf16[4] parameter(0)
%b = bf16[4] parameter(1)
%a.f32 = f32[4] convert(%a)
%b.f32 = f32[4] convert(%b)
%p.f32 = f32[4] multiply(%a.f32, %b.f32)
%p = bf16[4] convert(%p.f32)
%p.f32.1 = f32[4] convert(%p)
%n.f32 = f32[4] negate(%p.f32.1)
%n = bf16[4] convert(%n.f32)
ROOT %t = (f32[4], bf16[4]) tuple(%p.f32, %n)
}
"#,
        );
    }
}
