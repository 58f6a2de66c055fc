//! `normalize`: turns a post-optimisation XLA dump into plain logical HLO.
//!
//! Our IR values are logical arrays; every backend (the interpreter, the
//! device) stores them row-major. Layouts in a dump describe XLA's physical
//! choices, and only `bitcast` depends on them. This pass:
//! - rewrites each `bitcast` into the logical ops it performs on row-major
//!   values, derived from both `minor_to_major` orders: a transpose into the
//!   operand's physical order, a reshape, and a transpose out of the result's
//!   physical order (each dropped when it is the identity, and a transpose that
//!   only moves size-1 dimensions becomes a reshape), plus a `bitcast-convert`
//!   when the element type changes at the same width;
//! - removes `copy` and `opt-barrier`, which are the identity on logical values
//!   (a layout-changing copy only moves bytes, and the barrier only constrains
//!   XLA's scheduler);
//! - splits the legacy single index vector of `dynamic-slice` and
//!   `dynamic-update-slice` into one scalar index per dimension;
//! - strips every layout, so all shapes are row-major, and declares the entry
//!   signature row-major. The entry's logical values do not change: the host
//!   contract of this project is row-major buffers (numpy order), so no
//!   transpose is needed at the boundary even if XLA had chosen another layout.
//!
//! Pre-condition: no `fusion`/`call` that hides a bitcast (run `inline-calls` first;
//! a bitcast inside a fusion body is rewritten all the same).
//! Post-conditions: no `bitcast`, `copy` or `opt-barrier`; no shape carries a
//! layout; `entry_computation_layout`, if present, is row-major.

use crate::util::{
    apply_replacements, compact, inverse_permutation, is_identity_permutation, set_row_major, strip_layout,
    transpose_is_reshape, NameUniquer,
};
use crate::PassError;
use hlo_ir::{ArrayShape, Computation, DType, Instr, InstrId, Module, Op, Shape};
use std::collections::HashMap;

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("normalize").entered();
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    for cid in module.comp_ids().collect::<Vec<_>>() {
        changed |= remove_physical_ops(module.comp_mut(cid), &mut names)?;
    }
    changed |= strip_layouts(module);
    Ok(changed)
}

/// One logical step of a bitcast.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Transpose(Vec<i64>),
    Reshape(Vec<i64>),
    BitcastConvert(DType),
}

/// The logical ops a bitcast from `from` to `to` performs on row-major values,
/// or `None` when the element widths differ.
fn bitcast_steps(from: &ArrayShape, to: &ArrayShape) -> Option<Vec<Step>> {
    if from.dtype.bit_width() != to.dtype.bit_width() || from.num_elements() != to.num_elements() {
        return None;
    }
    // Physical (major-to-minor) order of each side.
    let perm_from: Vec<i64> = from.minor_to_major().into_iter().rev().collect();
    let perm_to: Vec<i64> = to.minor_to_major().into_iter().rev().collect();
    let phys_to: Vec<i64> = perm_to.iter().map(|&d| to.dims[d as usize]).collect();
    let mut steps =
        vec![Step::Transpose(perm_from), Step::Reshape(phys_to), Step::Transpose(inverse_permutation(&perm_to))];
    if from.dtype != to.dtype {
        steps.push(Step::BitcastConvert(to.dtype));
    }
    Some(simplify_steps(&from.dims, steps))
}

/// Drops identity steps, turns transposes of size-1 dimensions into reshapes
/// and merges adjacent reshapes.
fn simplify_steps(dims: &[i64], steps: Vec<Step>) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut cur = dims.to_vec();
    for step in steps {
        let step = match step {
            Step::Transpose(perm) if is_identity_permutation(&perm) => continue,
            Step::Transpose(perm) if transpose_is_reshape(&cur, &perm) => {
                Step::Reshape(perm.iter().map(|&p| cur[p as usize]).collect())
            }
            other => other,
        };
        let before = cur.clone();
        match &step {
            Step::Transpose(perm) => cur = perm.iter().map(|&p| before[p as usize]).collect(),
            Step::Reshape(new_dims) => cur = new_dims.clone(),
            Step::BitcastConvert(_) => {}
        }
        if let Step::Reshape(new_dims) = &step {
            if matches!(out.last(), Some(Step::Reshape(_))) {
                out.pop();
            }
            // A reshape back to the dimensions before it is no step at all.
            let prev_dims = dims_before_last(dims, &out);
            if *new_dims == prev_dims {
                continue;
            }
        }
        out.push(step);
    }
    out
}

/// The dimensions after applying `steps` to `dims`.
fn dims_before_last(dims: &[i64], steps: &[Step]) -> Vec<i64> {
    let mut cur = dims.to_vec();
    for step in steps {
        match step {
            Step::Transpose(perm) => cur = perm.iter().map(|&p| cur[p as usize]).collect(),
            Step::Reshape(new_dims) => cur = new_dims.clone(),
            Step::BitcastConvert(_) => {}
        }
    }
    cur
}

/// Rewrites `bitcast`, and removes `copy` and `opt-barrier`, in one computation.
fn remove_physical_ops(comp: &mut Computation, names: &mut NameUniquer) -> Result<bool, PassError> {
    let mut repl: HashMap<InstrId, InstrId> = HashMap::new();
    let mut changed = false;
    for id in comp.ids().collect::<Vec<_>>() {
        let instr = comp.instr(id);
        match &instr.op {
            Op::Copy | Op::OptimizationBarrier if instr.operands.len() == 1 => {
                let operand = instr.operands[0];
                if comp.instr(operand).shape.compatible(&instr.shape) {
                    repl.insert(id, operand);
                }
            }
            Op::DynamicSlice { .. } | Op::DynamicUpdateSlice => {
                changed |= split_index_vector(comp, id, names);
            }
            Op::Bitcast if instr.operands.len() == 1 => {
                let operand = instr.operands[0];
                let unsupported = |reason: &str| PassError::Unsupported {
                    pass: "normalize",
                    op: format!("bitcast {}", instr.name),
                    reason: reason.to_string(),
                };
                let (Some(from), Some(to)) = (comp.instr(operand).shape.as_array(), instr.shape.as_array()) else {
                    return Err(unsupported("bitcast of a tuple or token"));
                };
                let steps =
                    bitcast_steps(from, to).ok_or_else(|| unsupported("element widths or element counts differ"))?;
                changed = true;
                if steps.is_empty() {
                    repl.insert(id, operand);
                    continue;
                }
                let base = instr.name.clone();
                let meta = instr.meta.clone();
                let mut cur = operand;
                let mut cur_shape = ArrayShape { layout: None, ..from.clone() };
                let n_steps = steps.len();
                for (k, step) in steps.into_iter().enumerate() {
                    let (op, shape) = match step {
                        Step::Transpose(perm) => {
                            let dims: Vec<i64> = perm.iter().map(|&p| cur_shape.dims[p as usize]).collect();
                            (Op::Transpose { dimensions: perm }, ArrayShape::new(cur_shape.dtype, dims))
                        }
                        Step::Reshape(dims) => (Op::Reshape, ArrayShape::new(cur_shape.dtype, dims)),
                        Step::BitcastConvert(dtype) => (Op::BitcastConvert, cur_shape.with_dtype(dtype)),
                    };
                    if k + 1 == n_steps {
                        let it = comp.instr_mut(id);
                        it.op = op;
                        it.operands = vec![cur];
                        it.shape = Shape::Array(shape);
                    } else {
                        let name = names.fresh(&format!("{base}.{}", op.opcode().name()));
                        let mut new = Instr::new(name, Shape::Array(shape.clone()), op, vec![cur]);
                        new.meta.metadata = meta.metadata.clone();
                        cur = comp.push(new);
                        cur_shape = shape;
                    }
                }
            }
            _ => {}
        }
    }
    changed |= !repl.is_empty();
    apply_replacements(comp, &repl);
    changed |= compact(comp)?;
    Ok(changed)
}

/// Rewrites XLA's legacy form of `dynamic-slice` / `dynamic-update-slice`, one index vector
/// `s32[rank]` (rank 1 included), into one scalar index per dimension (a slice and a
/// reshape of the vector each), the form every backend reads. Returns whether it did.
fn split_index_vector(comp: &mut Computation, id: InstrId, names: &mut NameUniquer) -> bool {
    let instr = comp.instr(id);
    let first_index = if matches!(instr.op, Op::DynamicSlice { .. }) { 1 } else { 2 };
    let Some(rank) = comp.instr(instr.operands[0]).shape.as_array().map(|a| a.rank()) else { return false };
    if instr.operands.len() != first_index + 1 || rank == 0 {
        return false;
    }
    let vector = instr.operands[first_index];
    let Some(index) = comp.instr(vector).shape.as_array().cloned() else { return false };
    if index.dims != [rank as i64] {
        return false;
    }
    let (base, metadata) = (instr.name.clone(), instr.meta.metadata.clone());
    let mut scalars = Vec::with_capacity(rank);
    for d in 0..rank as i64 {
        let dims = vec![hlo_ir::SliceDim { start: d, limit: d + 1, stride: 1 }];
        let one = ArrayShape::new(index.dtype, vec![1]);
        let mut slice =
            Instr::new(names.fresh(&format!("{base}.index")), Shape::Array(one), Op::Slice { dims }, vec![vector]);
        slice.meta.metadata = metadata.clone();
        let slice = comp.push(slice);
        let scalar = ArrayShape::new(index.dtype, vec![]);
        let mut reshape =
            Instr::new(names.fresh(&format!("{base}.index")), Shape::Array(scalar), Op::Reshape, vec![slice]);
        reshape.meta.metadata = metadata.clone();
        scalars.push(comp.push(reshape));
    }
    let it = comp.instr_mut(id);
    it.operands.truncate(first_index);
    it.operands.extend(scalars);
    true
}

/// Removes every layout; declares the entry signature row-major.
fn strip_layouts(module: &mut Module) -> bool {
    let mut changed = false;
    fn has_layout(shape: &Shape) -> bool {
        match shape {
            Shape::Array(a) => a.layout.is_some(),
            Shape::Tuple(elems) => elems.iter().any(has_layout),
            Shape::Token => false,
        }
    }
    for comp in &mut module.comps {
        for instr in &mut comp.instrs {
            if has_layout(&instr.shape) {
                strip_layout(&mut instr.shape);
                changed = true;
            }
            if let Op::Constant(lit) = &mut instr.op {
                if has_layout(&lit.shape) {
                    strip_layout(&mut lit.shape);
                    changed = true;
                }
            }
        }
    }
    if let Some(program) = &mut module.attrs.entry_computation_layout {
        let before = program.clone();
        program.params.iter_mut().for_each(set_row_major);
        set_row_major(&mut program.result);
        changed |= *program != before;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use hlo_ir::Layout;

    fn shape(dims: &[i64], m2m: &[i64]) -> ArrayShape {
        let mut s = ArrayShape::new(DType::F32, dims.to_vec());
        s.layout = Some(Layout { minor_to_major: m2m.to_vec(), ..Layout::default() });
        s
    }

    #[test]
    fn bitcast_of_row_major_arrays_is_a_reshape() {
        let steps = bitcast_steps(&shape(&[128, 1], &[1, 0]), &shape(&[128], &[0])).unwrap();
        assert_eq!(steps, vec![Step::Reshape(vec![128])]);
    }

    #[test]
    fn bitcast_adding_a_unit_dim_in_the_major_position_is_a_reshape() {
        // f32[256,256,1]{1,0,2} bitcast(f32[256,256]{1,0}) from the n-body dump.
        let steps = bitcast_steps(&shape(&[256, 256], &[1, 0]), &shape(&[256, 256, 1], &[1, 0, 2])).unwrap();
        assert_eq!(steps, vec![Step::Reshape(vec![256, 256, 1])]);
    }

    #[test]
    fn bitcast_between_layouts_is_a_transpose() {
        // Same physical bytes: a {0,1} (column-major) [2,3] read as row-major [3,2].
        let steps = bitcast_steps(&shape(&[2, 3], &[0, 1]), &shape(&[3, 2], &[1, 0])).unwrap();
        assert_eq!(steps, vec![Step::Transpose(vec![1, 0])]);
    }

    #[test]
    fn identity_bitcast_has_no_steps() {
        let steps = bitcast_steps(&shape(&[4, 5], &[1, 0]), &shape(&[4, 5], &[1, 0])).unwrap();
        assert!(steps.is_empty());
    }

    #[test]
    fn bitcast_becomes_a_transpose_and_copies_vanish() {
        // p is column-major: its bytes read row-major as [3,2] are its transpose.
        crate::util::testing::check(
            super::run,
            r#"
HloModule m, entry_computation_layout={(f32[2,3]{0,1})->f32[3,2]{0,1}}
ENTRY main {
  p = f32[2,3]{0,1} parameter(0)
  b = f32[3,2]{1,0} bitcast(p)
  c = f32[3,2]{0,1} copy(b)
  ROOT n = f32[3,2]{0,1} negate(c)
}
"#,
            r#"
ENTRY %main (p: f32[2,3]) -> f32[3,2] {
%p = f32[2,3] parameter(0)
%b = f32[3,2] transpose(%p), dimensions={1,0}
ROOT %n = f32[3,2] negate(%b)
}
"#,
        );
    }

    #[test]
    fn entry_layout_becomes_row_major() {
        let (changed, module) = crate::util::testing::run(
            super::run,
            r#"
HloModule m, entry_computation_layout={(f32[2,3]{0,1})->f32[2,3]{0,1}}
ENTRY main {
  p = f32[2,3]{0,1} parameter(0)
  ROOT n = f32[2,3]{0,1} negate(p)
}
"#,
        );
        assert!(changed);
        let layout = module.attrs.entry_computation_layout.clone().unwrap();
        assert!(layout.params[0].as_array().unwrap().layout.as_ref().unwrap().is_row_major(2));
        assert!(module.entry_comp().instrs.iter().all(|it| it.shape.as_array().unwrap().layout.is_none()));
    }

    #[test]
    fn bitcast_with_a_unit_dim_and_an_opt_barrier() {
        crate::util::testing::check(
            super::run,
            r#"
HloModule m
ENTRY main {
  p = f32[4,4]{1,0} parameter(0)
  b = f32[4,4,1]{1,0,2} bitcast(p)
  t = (f32[4,4,1]{1,0,2}) tuple(b)
  o = (f32[4,4,1]{1,0,2}) opt-barrier(t)
  ROOT g = f32[4,4,1]{1,0,2} get-tuple-element(o), index=0
}
"#,
            r#"
ENTRY %main (p: f32[4,4]) -> f32[4,4,1] {
%p = f32[4,4] parameter(0)
%b = f32[4,4,1] reshape(%p)
%t = (f32[4,4,1]) tuple(%b)
ROOT %g = f32[4,4,1] get-tuple-element(%t), index=0
}
"#,
        );
    }

    #[test]
    fn widths_must_match() {
        let to = ArrayShape::new(DType::F64, vec![2]);
        assert!(bitcast_steps(&shape(&[4], &[0]), &to).is_none());
    }
}
