//! `algebraic-simplification`: local rewrites that remove work without changing values.
//!
//! Rules (each applied wherever it matches, until none does):
//! - `x + 0`, `0 + x`, `x - 0`, `x * 1`, `1 * x`, `x / 1`, `x | 0`, `x & true`
//!   (the constant may be an array of equal values or a broadcast of one) -> `x`;
//! - `broadcast(broadcast(x))` -> one broadcast; a broadcast that keeps the
//!   operand's dimensions in order -> `x`;
//! - `reshape(reshape(x))` -> one reshape; a reshape to the same dimensions -> `x`;
//!   a reshape of a scalar broadcast -> a scalar broadcast;
//! - `transpose(transpose(x))` -> one transpose; the identity transpose -> `x`;
//!   a transpose that only moves size-1 dimensions -> `reshape`;
//! - a full `slice`, a zero `pad`, a `reverse` of size-1 dimensions, a
//!   `convert`/`bitcast-convert` to the same type, `copy`, a one-operand
//!   `concatenate` -> their operand;
//! - `select(c, a, b)` with a constant predicate -> `a` or `b`;
//! - `get-tuple-element(tuple(...))` -> the element;
//! - an elementwise op whose operands are all broadcasts of scalars -> a
//!   broadcast of the op on the scalars (so constant folding can finish it);
//! - `get-dimension-size` of a static dimension -> a constant; `domain(x)` -> `x`;
//! - a `scatter` that overwrites one window at constant, in-bounds indices (JAX's
//!   `x.at[:, 0].set(y)`) -> `dynamic-update-slice(x, reshape(y), starts...)`: the same
//!   values, but an elementwise op that fuses into its users, where a scatter is materialised
//!   (the seed's sprite indices were three scatter kernels and three copies).
//!
//! Pre-condition: a well-formed module. Post-condition: none of the patterns
//! above remains; shapes of all surviving values are unchanged.

use crate::util::{compact, dims, is_identity_permutation, transpose_is_reshape, uniform_constant, NameUniquer};
use crate::PassError;
use hlo_ir::{
    ArrayData, ArrayShape, BinaryOp, CompId, Computation, DType, DotDims, Instr, InstrId, Literal, Module, Op, Shape,
};
use std::collections::{HashMap, HashSet};

/// Rounds of rewriting before giving up on reaching a fixpoint.
const MAX_ROUNDS: usize = 16;

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("algebraic-simplification").entered();
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    let overwrites: HashSet<CompId> = module.comp_ids().filter(|&c| returns_second_parameter(module.comp(c))).collect();
    for comp in &mut module.comps {
        for _ in 0..MAX_ROUNDS {
            let round = simplify_comp(comp, &mut names, &overwrites)?;
            changed |= round;
            if !round {
                break;
            }
        }
    }
    Ok(changed)
}

/// What a rule does to the instruction it matched.
enum Rewrite {
    /// Use this existing value instead.
    Replace(InstrId),
    /// Change the instruction in place to this op and these operands (its shape is unchanged).
    InPlace(Box<Op>, Vec<InstrId>),
}

fn simplify_comp(
    comp: &mut Computation,
    names: &mut NameUniquer,
    overwrites: &HashSet<CompId>,
) -> Result<bool, PassError> {
    let mut repl: HashMap<InstrId, InstrId> = HashMap::new();
    let mut changed = false;
    let mut idx = 0;
    while idx < comp.instrs.len() {
        let id = InstrId::from_index(idx);
        idx += 1;
        for op in &mut comp.instr_mut(id).operands {
            while let Some(&to) = repl.get(op) {
                *op = to;
            }
        }
        let rewrite = match rule(comp, id) {
            Some(r) => r,
            None => match sink_broadcast(comp, id, names) {
                Some(r) => r,
                None => match scatter_as_update_slice(comp, id, names, overwrites) {
                    Some(r) => r,
                    None => continue,
                },
            },
        };
        changed = true;
        match rewrite {
            Rewrite::Replace(to) => {
                repl.insert(id, to);
            }
            Rewrite::InPlace(op, operands) => {
                let instr = comp.instr_mut(id);
                instr.op = *op;
                instr.operands = operands;
                // Revisit it: the new form may match another rule.
                idx -= 1;
            }
        }
    }
    while let Some(&to) = repl.get(&comp.root) {
        comp.root = to;
    }
    if changed {
        compact(comp)?;
    }
    Ok(changed)
}

/// True when `id`'s value can stand for an instruction of shape `shape`.
/// `id` can stand in for an instruction of `shape`: same type and dimensions, and the same
/// layout, since a `bitcast` user reads the physical order (a layout-changing `copy` before a
/// bitcast is a transpose; only the interpreter sees layouts, `normalize` strips them on the device).
fn fits(comp: &Computation, id: InstrId, shape: &Shape) -> bool {
    let other = &comp.instr(id).shape;
    let same_layout = match (other, shape) {
        (Shape::Array(a), Shape::Array(b)) => a.minor_to_major() == b.minor_to_major(),
        _ => true,
    };
    other.compatible(shape) && same_layout
}

fn is_const(comp: &Computation, id: InstrId, value: f64) -> bool {
    uniform_constant(comp, id) == Some(value)
}

fn rule(comp: &Computation, id: InstrId) -> Option<Rewrite> {
    let instr = comp.instr(id);
    let ops = &instr.operands;
    let shape = &instr.shape;
    let replace_if_fits = |x: InstrId| fits(comp, x, shape).then_some(Rewrite::Replace(x));
    match &instr.op {
        Op::Binary(b) => {
            let (x, y) = (*ops.first()?, *ops.get(1)?);
            let dtype = shape.dtype()?;
            let (left_id, right_id) = match b {
                BinaryOp::Add | BinaryOp::Or | BinaryOp::Xor => (Some(0.0), Some(0.0)),
                BinaryOp::Subtract => (None, Some(0.0)),
                BinaryOp::Multiply => (Some(1.0), Some(1.0)),
                BinaryOp::Divide if dtype.is_float() => (None, Some(1.0)),
                BinaryOp::And if dtype == DType::Pred => (Some(1.0), Some(1.0)),
                _ => (None, None),
            };
            if matches!(b, BinaryOp::Or | BinaryOp::Xor) && dtype.is_float() {
                return None;
            }
            if right_id.is_some_and(|v| is_const(comp, y, v)) {
                if let Some(r) = replace_if_fits(x) {
                    return Some(r);
                }
            }
            if left_id.is_some_and(|v| is_const(comp, x, v)) {
                return replace_if_fits(y);
            }
            None
        }
        Op::Broadcast { dimensions } => {
            let x = *ops.first()?;
            let operand = comp.instr(x);
            if let Op::Broadcast { dimensions: inner } = &operand.op {
                let composed: Vec<i64> = inner.iter().map(|&d| dimensions[d as usize]).collect();
                return Some(Rewrite::InPlace(
                    Box::new(Op::Broadcast { dimensions: composed }),
                    operand.operands.clone(),
                ));
            }
            let identity = dims(&operand.shape) == dims(shape) && is_identity_permutation(dimensions);
            if identity {
                return replace_if_fits(x);
            }
            None
        }
        Op::Reshape => {
            let x = *ops.first()?;
            let operand = comp.instr(x);
            if dims(&operand.shape) == dims(shape) {
                return replace_if_fits(x);
            }
            match &operand.op {
                Op::Reshape => Some(Rewrite::InPlace(Box::new(Op::Reshape), operand.operands.clone())),
                Op::Broadcast { .. } if is_scalar(comp, operand.operands[0]) => {
                    Some(Rewrite::InPlace(Box::new(Op::Broadcast { dimensions: vec![] }), operand.operands.clone()))
                }
                _ => None,
            }
        }
        Op::Transpose { dimensions } => {
            let x = *ops.first()?;
            let operand = comp.instr(x);
            if is_identity_permutation(dimensions) {
                return replace_if_fits(x);
            }
            if let Op::Transpose { dimensions: inner } = &operand.op {
                // t2(t1(x)): result dim i is x's dim inner[outer[i]].
                let composed: Vec<i64> = dimensions.iter().map(|&d| inner[d as usize]).collect();
                return Some(Rewrite::InPlace(
                    Box::new(Op::Transpose { dimensions: composed }),
                    operand.operands.clone(),
                ));
            }
            if transpose_is_reshape(dims(&operand.shape), dimensions) {
                return Some(Rewrite::InPlace(Box::new(Op::Reshape), vec![x]));
            }
            if let Op::Dot { dims: dot_dims, precision, algorithm } = &operand.op {
                if swaps_dot_sides(comp, x, dot_dims, dimensions) {
                    // (A B)^T = B^T A^T: the product of the swapped operands, element for
                    // element the same sums (the same order of terms, each product commuted), so
                    // its users read it in order (a weight gradient feeding an SGD update).
                    let swapped = DotDims {
                        lhs_batch: dot_dims.rhs_batch.clone(),
                        lhs_contracting: dot_dims.rhs_contracting.clone(),
                        rhs_batch: dot_dims.lhs_batch.clone(),
                        rhs_contracting: dot_dims.lhs_contracting.clone(),
                    };
                    let op = Op::Dot {
                        dims: swapped,
                        precision: precision.iter().rev().copied().collect(),
                        algorithm: algorithm.clone(),
                    };
                    return Some(Rewrite::InPlace(Box::new(op), vec![operand.operands[1], operand.operands[0]]));
                }
            }
            None
        }
        Op::Slice { dims: slice } => {
            let x = *ops.first()?;
            let full = slice
                .iter()
                .zip(dims(&comp.instr(x).shape))
                .all(|(s, &d)| s.start == 0 && s.limit == d && s.stride == 1);
            if full {
                return replace_if_fits(x);
            }
            None
        }
        Op::Pad { dims: pad } => {
            if pad.iter().all(|p| p.low == 0 && p.high == 0 && p.interior == 0) {
                return replace_if_fits(*ops.first()?);
            }
            None
        }
        Op::Reverse { dimensions } => {
            let x = *ops.first()?;
            let d = dims(&comp.instr(x).shape);
            if dimensions.iter().all(|&r| d.get(r as usize) == Some(&1)) {
                return replace_if_fits(x);
            }
            None
        }
        Op::Convert | Op::BitcastConvert | Op::Copy => replace_if_fits(*ops.first()?),
        Op::Concatenate { .. } if ops.len() == 1 => replace_if_fits(ops[0]),
        Op::Select => {
            let (c, a, b) = (*ops.first()?, *ops.get(1)?, *ops.get(2)?);
            match uniform_constant(comp, c) {
                Some(v) if v != 0.0 => replace_if_fits(a),
                Some(_) => replace_if_fits(b),
                None if a == b => replace_if_fits(a),
                None => None,
            }
        }
        // A static dimension's size is a constant (the shapes this compiler runs are static).
        Op::GetDimensionSize { dimension } => {
            let operand = comp.instr(*ops.first()?).shape.as_array()?;
            let d = usize::try_from(*dimension).ok()?;
            if operand.dynamic.get(d).copied().unwrap_or(false) || shape.dtype()? != DType::S32 {
                return None;
            }
            let size = i32::try_from(*operand.dims.get(d)?).ok()?;
            Some(Rewrite::InPlace(Box::new(Op::Constant(Box::new(Literal::scalar_s32(size)))), vec![]))
        }
        // A domain marks a sharding boundary; on one device it is its operand.
        Op::Domain => replace_if_fits(*ops.first()?),
        Op::GetTupleElement { index } => {
            let t = comp.instr(*ops.first()?);
            match t.op {
                Op::Tuple => replace_if_fits(*t.operands.get(*index as usize)?),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether `permutation` of the dot `dot`'s result puts the rhs's free dimensions before the
/// lhs's (batch dimensions staying first), and the transpose is the dot's only user: then the
/// transpose is the dot of the swapped operands.
fn swaps_dot_sides(comp: &Computation, dot: InstrId, dims: &DotDims, permutation: &[i64]) -> bool {
    let instr = comp.instr(dot);
    let rank = |k: usize| comp.instr(instr.operands[k]).shape.as_array().map(|a| a.rank());
    let (Some(lhs_rank), Some(rhs_rank)) = (rank(0), rank(1)) else { return false };
    let batch = dims.lhs_batch.len() as i64;
    let lhs_free = lhs_rank as i64 - batch - dims.lhs_contracting.len() as i64;
    let rhs_free = rhs_rank as i64 - batch - dims.rhs_contracting.len() as i64;
    if lhs_free < 1 || rhs_free < 1 {
        return false;
    }
    let want: Vec<i64> =
        (0..batch).chain(batch + lhs_free..batch + lhs_free + rhs_free).chain(batch..batch + lhs_free).collect();
    let users = comp.ids().filter(|&u| comp.instr(u).operands.contains(&dot)).count();
    permutation == want.as_slice() && users == 1 && comp.root != dot
}

fn is_scalar(comp: &Computation, id: InstrId) -> bool {
    comp.instr(id).shape.as_array().is_some_and(|a| a.rank() == 0)
}

/// `op(broadcast(a), broadcast(b), ...)` with scalar `a`, `b` -> `broadcast(op(a, b, ...))`.
/// Not for a complex result: after `lower-complex` a complex array must stay built by `complex`
/// (`complex(broadcast(re), broadcast(im))`, `jnp.ones(3, complex64)`), which the device writes.
fn sink_broadcast(comp: &mut Computation, id: InstrId, names: &mut NameUniquer) -> Option<Rewrite> {
    let instr = comp.instr(id);
    if !instr.op.is_elementwise() || instr.operands.is_empty() || dims(&instr.shape).is_empty() {
        return None;
    }
    if instr.shape.dtype().is_some_and(|t| t.is_complex()) {
        return None;
    }
    let mut scalars = Vec::with_capacity(instr.operands.len());
    for &o in &instr.operands {
        let operand = comp.instr(o);
        match &operand.op {
            Op::Broadcast { .. } if is_scalar(comp, operand.operands[0]) => scalars.push(operand.operands[0]),
            _ => return None,
        }
    }
    let dtype = instr.shape.dtype()?;
    let scalar = Instr::new(names.fresh(&instr.name), Shape::scalar(dtype), instr.op.clone(), scalars);
    let mut scalar = scalar;
    scalar.meta.metadata = instr.meta.metadata.clone();
    let scalar_id = comp.push(scalar);
    Some(Rewrite::InPlace(Box::new(Op::Broadcast { dimensions: vec![] }), vec![scalar_id]))
}

/// A combiner `(a, b) -> b`: the scatter overwrites.
fn returns_second_parameter(comp: &Computation) -> bool {
    comp.params.len() == 2 && matches!(comp.root_instr().op, Op::Parameter { number: 1 })
}

/// The integer values of a constant.
fn constant_ints(comp: &Computation, id: InstrId) -> Option<Vec<i64>> {
    let Op::Constant(lit) = &comp.instr(id).op else { return None };
    Some(match lit.array_data()? {
        ArrayData::S8(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::S16(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::S32(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::S64(v) => v.clone(),
        ArrayData::U8(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::U16(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::U32(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::U64(v) => v.iter().map(|&x| i64::try_from(x).ok()).collect::<Option<_>>()?,
        _ => return None,
    })
}

/// `scatter(x, constant index, y)` writing one window of `x` with `y` (an overwriting combiner,
/// every update dimension a window dimension, the window inside `x`) ->
/// `dynamic-update-slice(x, reshape(y), s32 constant starts)`. A window partly outside `x` is
/// skipped by scatter but clamped by dynamic-update-slice, so it stays a scatter.
fn scatter_as_update_slice(
    comp: &mut Computation,
    id: InstrId,
    names: &mut NameUniquer,
    overwrites: &HashSet<CompId>,
) -> Option<Rewrite> {
    let instr = comp.instr(id);
    let Op::Scatter { dims, to_apply, .. } = &instr.op else { return None };
    if instr.operands.len() != 3 || !overwrites.contains(to_apply) || !dims.input_batching_dims.is_empty() {
        return None;
    }
    let (x, indices, y) = (instr.operands[0], instr.operands[1], instr.operands[2]);
    let xs = comp.instr(x).shape.as_array()?.clone();
    let ys = comp.instr(y).shape.as_array()?.clone();
    let index = constant_ints(comp, indices)?;
    // One index vector: its length is the number of scattered dimensions.
    if index.len() != dims.scatter_dims_to_operand_dims.len() {
        return None;
    }
    let all_window: Vec<i64> = (0..ys.rank() as i64).collect();
    if dims.update_window_dims != all_window || xs.rank() != ys.rank() + dims.inserted_window_dims.len() {
        return None;
    }
    let mut window = Vec::with_capacity(xs.rank());
    let mut update_dims = ys.dims.iter();
    for d in 0..xs.rank() as i64 {
        window.push(if dims.inserted_window_dims.contains(&d) { 1 } else { *update_dims.next()? });
    }
    let mut starts = vec![0i64; xs.rank()];
    for (k, &d) in dims.scatter_dims_to_operand_dims.iter().enumerate() {
        *starts.get_mut(d as usize)? = index[k];
    }
    let inside = (0..xs.rank()).all(|d| starts[d] >= 0 && starts[d] + window[d] <= xs.dims[d]);
    if !inside || starts.iter().any(|&s| s > i64::from(i32::MAX)) {
        return None;
    }
    let name = instr.name.clone();
    let meta = instr.meta.metadata.clone();
    let window_shape = Shape::Array(ArrayShape::new(ys.dtype, window));
    let mut reshape = Instr::new(names.fresh(&name), window_shape, Op::Reshape, vec![y]);
    reshape.meta.metadata = meta.clone();
    let mut operands = vec![x, comp.push(reshape)];
    for &start in &starts {
        let lit = Literal::scalar_s32(start as i32);
        let mut c = Instr::new(names.fresh(&name), Shape::scalar(DType::S32), Op::Constant(Box::new(lit)), vec![]);
        c.meta.metadata = meta.clone();
        operands.push(comp.push(c));
    }
    Some(Rewrite::InPlace(Box::new(Op::DynamicUpdateSlice), operands))
}

#[cfg(test)]
mod tests {
    use crate::util::testing::{check, check_unchanged};

    /// A copy that changes the layout feeds a bitcast, which reads the physical order: it is a
    /// transpose there (XLA:CPU's dumps of `jnp.linalg.solve` have this), so it stays.
    #[test]
    fn a_layout_changing_copy_before_a_bitcast_stays() {
        check_unchanged(
            super::run,
            r#"
HloModule m
ENTRY main {
  x = f32[4,8,3]{2,1,0} parameter(0)
  t = f32[4,3,8]{1,2,0} transpose(x), dimensions={0,2,1}
  c = f32[4,3,8]{2,1,0} copy(t)
  ROOT b = f32[4,3,8,1]{3,2,1,0} bitcast(c)
}
"#,
        );
    }

    #[test]
    fn identities_vanish() {
        check(
            super::run,
            r#"
HloModule m
ENTRY main {
  x = f32[2,3] parameter(0)
  zero = f32[] constant(0)
  one = f32[] constant(1)
  z = f32[2,3] broadcast(zero), dimensions={}
  o = f32[2,3] broadcast(one), dimensions={}
  a = f32[2,3] add(x, z)
  m = f32[2,3] multiply(o, a)
  d = f32[2,3] divide(m, o)
  s = f32[2,3] slice(d), slice={[0:2], [0:3]}
  c = f32[2,3] convert(s)
  t = f32[2,3] transpose(c), dimensions={0,1}
  r = f32[2,3] reshape(t)
  ROOT n = f32[2,3] negate(r)
}
"#,
            r#"
ENTRY %main (x: f32[2,3]) -> f32[2,3] {
%x = f32[2,3] parameter(0)
ROOT %n = f32[2,3] negate(%x)
}
"#,
        );
    }

    #[test]
    fn chains_of_shape_ops_collapse() {
        check(
            super::run,
            r#"
HloModule m
ENTRY main {
  x = f32[2,3,4] parameter(0)
  t1 = f32[3,4,2] transpose(x), dimensions={1,2,0}
  t2 = f32[4,2,3] transpose(t1), dimensions={1,2,0}
  r1 = f32[8,3] reshape(t2)
  r2 = f32[24] reshape(r1)
  b1 = f32[5,24] broadcast(r2), dimensions={1}
  b2 = f32[6,5,24] broadcast(b1), dimensions={1,2}
  y = f32[6,1,4] parameter(1)
  u = f32[4,1,6] transpose(y), dimensions={2,1,0}
  ROOT t = (f32[6,5,24], f32[4,1,6]) tuple(b2, u)
}
"#,
            r#"
ENTRY %main (x: f32[2,3,4], y: f32[6,1,4]) -> (f32[6,5,24], f32[4,1,6]) {
%x = f32[2,3,4] parameter(0)
%t2 = f32[4,2,3] transpose(%x), dimensions={2,0,1}
%r2 = f32[24] reshape(%t2)
%b2 = f32[6,5,24] broadcast(%r2), dimensions={2}
%y = f32[6,1,4] parameter(1)
%u = f32[4,1,6] transpose(%y), dimensions={2,1,0}
ROOT %t = (f32[6,5,24], f32[4,1,6]) tuple(%b2, %u)
}
"#,
        );
    }

    #[test]
    fn select_with_a_constant_predicate_and_tuple_forwarding() {
        check(
            super::run,
            r#"
HloModule m
ENTRY main {
  x = f32[4] parameter(0)
  y = f32[4] parameter(1)
  p = pred[] constant(true)
  pb = pred[4] broadcast(p), dimensions={}
  s = f32[4] select(pb, x, y)
  t = (f32[4], f32[4]) tuple(s, y)
  ROOT g = f32[4] get-tuple-element(t), index=0
}
"#,
            r#"
ENTRY %main (x: f32[4], y: f32[4]) -> f32[4] {
ROOT %x = f32[4] parameter(0)
%y = f32[4] parameter(1)
}
"#,
        );
    }

    #[test]
    fn elementwise_ops_of_scalar_broadcasts_become_scalar_ops() {
        check(
            super::run,
            r#"
HloModule m
ENTRY main {
  a = f32[] constant(2)
  b = f32[] constant(3)
  x = f32[8] broadcast(a), dimensions={}
  y = f32[8] broadcast(b), dimensions={}
  ROOT p = f32[8] power(x, y)
}
"#,
            r#"
ENTRY %main () -> f32[8] {
%a = f32[] constant(2)
%b = f32[] constant(3)
%p.1 = f32[] power(%a, %b)
ROOT %p = f32[8] broadcast(%p.1), dimensions={}
}
"#,
        );
    }

    /// `jnp.ones(3, complex64)` after `lower-complex`: the device writes a complex array only from `complex`.
    #[test]
    fn complex_of_broadcasts_stays() {
        check_unchanged(
            super::run,
            r#"
HloModule m
ENTRY main {
  re = f32[] constant(1)
  im = f32[] constant(0)
  x = f32[3] broadcast(re), dimensions={}
  y = f32[3] broadcast(im), dimensions={}
  ROOT z = c64[3] complex(x, y)
}
"#,
        );
    }

    const SET: &str = "set {\n  a = s16[] parameter(0)\n  ROOT b = s16[] parameter(1)\n}\n";
    const ADD: &str = "add {\n  a = s16[] parameter(0)\n  b = s16[] parameter(1)\n  ROOT s = s16[] add(a, b)\n}\n";

    /// `x.at[:, :, 1].set(y)` as JAX emits it.
    fn column_set(combiner: &str, index: i64) -> String {
        let name = if combiner == SET { "set" } else { "add" };
        format!(
            "HloModule m\n{combiner}ENTRY main {{\n  x = s16[4,5,3] parameter(0)\n  y = s16[4,5] parameter(1)\n  \
             i = s32[1] constant({{{index}}})\n  \
             ROOT s = s16[4,5,3] scatter(x, i, y), update_window_dims={{0,1}}, inserted_window_dims={{2}}, \
             scatter_dims_to_operand_dims={{2}}, index_vector_dim=0, indices_are_sorted=true, unique_indices=true, \
             to_apply={name}\n}}\n"
        )
    }

    #[test]
    fn a_one_window_overwriting_scatter_becomes_an_update_slice() {
        check(
            super::run,
            &column_set(SET, 1),
            r#"
%set (a: s16[], b: s16[]) -> s16[] {
%a = s16[] parameter(0)
ROOT %b = s16[] parameter(1)
}

ENTRY %main (x: s16[4,5,3], y: s16[4,5]) -> s16[4,5,3] {
%x = s16[4,5,3] parameter(0)
%y = s16[4,5] parameter(1)
%s.1 = s16[4,5,1] reshape(%y)
%s.2 = s32[] constant(0)
%s.3 = s32[] constant(0)
%s.4 = s32[] constant(1)
ROOT %s = s16[4,5,3] dynamic-update-slice(%x, %s.1, %s.2, %s.3, %s.4)
}
"#,
        );
    }

    #[test]
    fn scatters_that_add_or_reach_outside_stay() {
        for hlo in [column_set(ADD, 1), column_set(SET, 3), column_set(SET, -1)] {
            let mut module = hlo_parse::parse_module(&hlo).expect("parses");
            let before = hlo_ir::print::print_module(&module);
            super::run(&mut module).expect("runs");
            assert_eq!(hlo_ir::print::print_module(&module), before);
        }
    }

    #[test]
    fn static_dimension_sizes_are_constants_and_domains_vanish() {
        check(
            super::run,
            r#"
HloModule m
ENTRY main {
  x = f32[3,7] parameter(0)
  d = f32[3,7] domain(x), domain={kind="sharding", entry={maximal device=0}, exit={replicated}}
  n = s32[] get-dimension-size(d), dimensions={1}
  ROOT t = (f32[3,7], s32[]) tuple(d, n)
}
"#,
            r#"
ENTRY %main (x: f32[3,7]) -> (f32[3,7], s32[]) {
%x = f32[3,7] parameter(0)
%n = s32[] constant(7)
ROOT %t = (f32[3,7], s32[]) tuple(%x, %n)
}
"#,
        );
    }
}
