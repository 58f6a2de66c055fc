//! `ragged-dot-expander`: `ragged-dot` with the rows of `lhs` ragged (XLA's first mode, without
//! batch dimensions: `lhs [m, k]`, `rhs [g, k, n]`, `group_sizes [g]`) as a plain `dot` with
//! every group and a mask, the ops both backends run:
//! - `all = dot(lhs, rhs)` contracting `k`: `[m, g, n]`, every row times every group;
//! - `ends[j] = sum(group_sizes[0..=j])` (a masked sum over a `[g, g]` broadcast);
//! - row `i` belongs to group `#{j : ends[j] <= i}` (past the last group: `g`, no group);
//! - the result sums `all` over `g` where the group index is the row's (zeros elsewhere), so rows
//!   after the last group are zero.
//!
//! Other modes (a ragged contracting or batch dimension, batch dimensions) stay and are refused
//! by name on the device.
//!
//! Pre-condition: none. Post-condition: no canonical `ragged-dot` remains.

use crate::util::{compact, int_scalar, NameUniquer};
use crate::PassError;
use hlo_ir::{
    ArrayData, ArrayShape, CompId, CompareDirection, Computation, DType, DotDims, Instr, InstrId, Literal, LiteralData,
    Module, Op, Shape,
};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("ragged-dot-expander").entered();
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    for c in 0..module.comps.len() {
        let ids: Vec<InstrId> = module.comps[c].ids().filter(|&id| canonical(&module.comps[c], id)).collect();
        if ids.is_empty() {
            continue;
        }
        for id in ids {
            let comp = &module.comps[c];
            let out = comp.instr(id).shape.as_array().map(|a| a.dtype).expect("an array");
            let sizes = comp.instr(comp.instr(id).operands[2]).shape.as_array().map(|a| a.dtype).expect("an array");
            let add_out = crate::util::scalar_add_computation(module, &format!("ragged_dot_add_{out}"), out);
            let add_int = crate::util::scalar_add_computation(module, &format!("ragged_dot_add_{sizes}"), sizes);
            expand(&mut module.comps[c], &mut names, id, add_out, add_int);
        }
        compact(&mut module.comps[c])?;
        changed = true;
    }
    if changed {
        crate::util::order_callees_first(module);
    }
    Ok(changed)
}

/// Whether `id` is a ragged-dot of the one mode expanded here.
fn canonical(comp: &Computation, id: InstrId) -> bool {
    let instr = comp.instr(id);
    let Op::RaggedDot { dims, lhs_ragged, rhs_group, .. } = &instr.op else { return false };
    let rank = |k: usize| instr.operands.get(k).and_then(|&o| comp.instr(o).shape.as_array().map(|a| a.rank()));
    let int_sizes = instr
        .operands
        .get(2)
        .and_then(|&o| comp.instr(o).shape.as_array())
        .is_some_and(|a| a.rank() == 1 && int_scalar(a.dtype, 0).is_some());
    dims.lhs_batch.is_empty()
        && dims.rhs_batch.is_empty()
        && dims.lhs_contracting == [1]
        && dims.rhs_contracting == [1]
        && *lhs_ragged == [0]
        && *rhs_group == [0]
        && rank(0) == Some(2)
        && rank(1) == Some(3)
        && int_sizes
        && instr.shape.as_array().is_some_and(|a| a.dtype.is_float())
}

/// Appends an array instruction of a type and dimensions.
type Push<'a> = dyn FnMut(&mut Computation, DType, &[i64], Op, Vec<InstrId>) -> InstrId + 'a;

fn expand(comp: &mut Computation, names: &mut NameUniquer, id: InstrId, add_out: CompId, add_int: CompId) {
    let instr = comp.instr(id).clone();
    let span = comp.span(id);
    let mut push = |comp: &mut Computation, dtype: DType, dims: &[i64], op: Op, operands: Vec<InstrId>| {
        let shape = Shape::Array(ArrayShape::new(dtype, dims.to_vec()));
        let mut new = Instr::new(names.fresh(&instr.name), shape, op, operands);
        new.meta.metadata = instr.meta.metadata.clone();
        comp.push_with_span(new, span)
    };
    let (lhs, rhs, sizes) = (instr.operands[0], instr.operands[1], instr.operands[2]);
    let out = instr.shape.as_array().expect("an array").clone();
    let dims_of = |comp: &Computation, x: InstrId| comp.instr(x).shape.as_array().expect("an array").dims.clone();
    let (m, g, n) = (dims_of(comp, lhs)[0], dims_of(comp, rhs)[0], dims_of(comp, rhs)[2]);
    let int = comp.instr(sizes).shape.as_array().expect("an array").dtype;
    let scalar = |comp: &mut Computation, push: &mut Push<'_>, dtype: DType, data: ArrayData| {
        let lit = Literal { shape: Shape::Array(ArrayShape::scalar(dtype)), data: LiteralData::Array(data) };
        push(comp, dtype, &[], Op::Constant(Box::new(lit)), vec![])
    };
    // Every row times every group.
    let dims = DotDims { lhs_contracting: vec![1], rhs_contracting: vec![1], ..Default::default() };
    let all = push(comp, out.dtype, &[m, g, n], Op::Dot { dims, precision: vec![], algorithm: None }, vec![lhs, rhs]);
    // ends[j] = sum of sizes[j'] for j' <= j.
    let int_zero = scalar(comp, &mut push, int, int_scalar(int, 0).expect("an integer"));
    let square = push(comp, int, &[g, g], Op::Broadcast { dimensions: vec![1] }, vec![sizes]);
    let row = push(comp, int, &[g, g], Op::Iota { dimension: 0 }, vec![]);
    let col = push(comp, int, &[g, g], Op::Iota { dimension: 1 }, vec![]);
    let upto = push(
        comp,
        DType::Pred,
        &[g, g],
        Op::Compare { direction: CompareDirection::Le, compare_type: None },
        vec![col, row],
    );
    let zeros_gg = push(comp, int, &[g, g], Op::Broadcast { dimensions: vec![] }, vec![int_zero]);
    let masked = push(comp, int, &[g, g], Op::Select, vec![upto, square, zeros_gg]);
    let ends = push(comp, int, &[g], Op::Reduce { dimensions: vec![1], to_apply: add_int }, vec![masked, int_zero]);
    // The group of each row: how many groups end at or before it.
    let ends_mg = push(comp, int, &[m, g], Op::Broadcast { dimensions: vec![1] }, vec![ends]);
    let rows = push(comp, int, &[m, g], Op::Iota { dimension: 0 }, vec![]);
    let past = push(
        comp,
        DType::Pred,
        &[m, g],
        Op::Compare { direction: CompareDirection::Ge, compare_type: None },
        vec![rows, ends_mg],
    );
    let past_int = push(comp, int, &[m, g], Op::Convert, vec![past]);
    let group = push(comp, int, &[m], Op::Reduce { dimensions: vec![1], to_apply: add_int }, vec![past_int, int_zero]);
    // Each row's product with its own group, summed over `g` with zeros elsewhere.
    let group_mgn = push(comp, int, &[m, g, n], Op::Broadcast { dimensions: vec![0] }, vec![group]);
    let index = push(comp, int, &[m, g, n], Op::Iota { dimension: 1 }, vec![]);
    let mine = push(
        comp,
        DType::Pred,
        &[m, g, n],
        Op::Compare { direction: CompareDirection::Eq, compare_type: None },
        vec![index, group_mgn],
    );
    let zero = scalar(comp, &mut push, DType::F64, ArrayData::F64(vec![0.0]));
    let zero = push(comp, out.dtype, &[], Op::Convert, vec![zero]);
    let zeros = push(comp, out.dtype, &[m, g, n], Op::Broadcast { dimensions: vec![] }, vec![zero]);
    let picked = push(comp, out.dtype, &[m, g, n], Op::Select, vec![mine, all, zeros]);
    let target = comp.instr_mut(id);
    target.op = Op::Reduce { dimensions: vec![1], to_apply: add_out };
    target.operands = vec![picked, zero];
    target.meta.other_attrs.clear();
}
