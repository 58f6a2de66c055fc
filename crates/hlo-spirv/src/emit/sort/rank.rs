//! Sort and top-k of short rows by ranking: one invocation per element.
//!
//! Each invocation counts the elements of its row that come before its own
//! (the comparator computation, inlined, decides; ties go to the lower index,
//! which makes every sort stable) and writes its values straight to that rank.
//! That is O(n) comparisons per element and one dispatch with no
//! synchronisation, which beats the multi-pass sorts for rows of a few dozen
//! elements; longer rows go to [`super::merge`] or [`super::radix`].

use crate::builder::{STy, H};
use crate::emit::elemental::{linearize, Em, Index};
use crate::emit::ops::{self, Val};
use crate::emit::{element_index, finish, grid, ElementIndex, KernelCtx, KernelKind, KernelStep};
use crate::error::{CodegenError, Result};
use hlo_ir::{DType, Op};
use naga::BinaryOperator as Bo;

pub(super) fn emit(ctx: &KernelCtx) -> Result<Vec<KernelStep>> {
    let comp = ctx.m.comp(ctx.comp);
    let root = comp.instr(ctx.root);
    let (dim, topk) = match &root.op {
        Op::Sort { dimension, .. } => (*dimension as usize, None),
        Op::TopK { k, largest } => {
            let rank = comp.instr(root.operands[0]).shape.as_array().map(|a| a.rank()).unwrap_or(1);
            (rank.saturating_sub(1), Some((*k as u32, *largest)))
        }
        // XLA:CPU's `TopK` custom call: (values, indices) of the k largest along the last dimension,
        // with the `called_computations` comparator being a greater-than.
        Op::CustomCall(_) => {
            let leaves = root.shape.leaves();
            let rank = leaves.first().map(|a| a.rank()).unwrap_or(1);
            let k = leaves.first().and_then(|a| a.dims.last().copied()).unwrap_or(1);
            (rank.saturating_sub(1), Some((k as u32, true)))
        }
        _ => unreachable!("classified as sort"),
    };
    let in_shape = comp
        .instr(root.operands[0])
        .shape
        .as_array()
        .cloned()
        .ok_or_else(|| CodegenError::unsupported("sort", &root.name, "tuple operand"))?;
    let n_elems = in_shape.num_elements();
    if n_elems == 0 {
        return Ok(Vec::new());
    }
    let row_len = in_shape.dims[dim] as u32;
    let wg = ctx.target.loop_workgroup();
    let groups = grid(n_elems.div_ceil(wg as u64));
    let mut em = Em::new(ctx.m, ctx.target, &ctx.name);
    let f = em.frame(ctx.comp, ctx.leaves.clone());
    let mut outs = Vec::new();
    for o in &ctx.outputs {
        outs.push(em.bind_buffer(o.buf, o.dtype, true, false)?);
    }
    let ElementIndex { raw: gi, clamped: i, exact } = element_index(&mut em.kb, wg, groups, n_elems);
    em.kb.name(i, "i");
    let idx = Index::from_linear(&in_shape.dims, i);
    let m = idx.multi(&mut em.kb);
    let j = m[dim];
    em.kb.name(j, "j");
    let n_ops = if topk.is_some() { 1 } else { root.operands.len() };
    let mut mine = Vec::with_capacity(n_ops);
    // A fused prologue's arithmetic results are flushed as XLA:CPU's FTZ stores them, before anything compares or
    // moves them (a total-order comparator would otherwise order a subnormal product apart from its zero).
    for k in 0..n_ops {
        let v = em.eval(f, root.operands[k], &[], &idx)?;
        mine.push(em.flushed_result(v));
    }
    let zero = em.kb.lit_u32(0);
    let init = vec![Val { h: zero, dt: DType::U32 }];
    let operands = root.operands.clone();
    let dims = in_shape.dims.clone();
    let to_apply = match root.op {
        Op::Sort { to_apply, .. } => Some(to_apply),
        _ => None,
    };
    let mine_c = mine.clone();
    let mut body = |em: &mut Em, point: &[H], accs: &[Val]| -> Result<Vec<Val>> {
        let k = point[0];
        let mut mk = m.clone();
        mk[dim] = k;
        let at = Index::from_multi(&dims, mk);
        let mut theirs = Vec::with_capacity(n_ops);
        for op in operands.iter().take(n_ops) {
            let v = em.eval(f, *op, &[], &at)?;
            theirs.push(em.flushed_result(v));
        }
        // `k` comes before `j`: strictly first by the order, or tied with a lower index.
        let (k_first, j_first) = match (to_apply, topk) {
            (Some(cmp), _) => {
                // XLA:CPU runs comparators with DAZ: arithmetic compares read subnormal arguments
                // as zero, total-order compares read their bits (`Leaf::Loaded`).
                let args = |a: &[Val], b: &[Val]| a.iter().zip(b).flat_map(|(x, y)| [*x, *y]).collect::<Vec<_>>();
                let kj = em.apply_loaded(cmp, args(&theirs, &mine_c))?[0].h;
                let jk = em.apply_loaded(cmp, args(&mine_c, &theirs))?[0].h;
                (kj, jk)
            }
            (None, Some((_, largest))) => {
                use hlo_ir::{CompareDirection as D, CompareType};
                let ty = if mine_c[0].dt.is_float() { Some(CompareType::TotalOrder) } else { None };
                let dir = if largest { D::Gt } else { D::Lt };
                let kj = ops::compare(&mut em.kb, dir, ty, theirs[0], mine_c[0]);
                let jk = ops::compare(&mut em.kb, dir, ty, mine_c[0], theirs[0]);
                (kj, jk)
            }
            _ => unreachable!("sort or top-k"),
        };
        let kb = &mut em.kb;
        let lower = kb.binary(Bo::Less, k, j);
        let not_jk = kb.unary(naga::UnaryOperator::LogicalNot, j_first);
        let tie_first = kb.binary(Bo::LogicalAnd, lower, not_jk);
        let before = kb.binary(Bo::LogicalOr, k_first, tie_first);
        let one = kb.lit_u32(1);
        let zero = kb.lit_u32(0);
        let inc = kb.select(before, one, zero);
        Ok(vec![Val { h: kb.binary(Bo::Add, accs[0].h, inc), dt: DType::U32 }])
    };
    let rank = em.fold(&[row_len], init, &mut body)?[0].h;
    em.kb.name(rank, "rank");

    // Store the element's values at its rank.
    let mut cond = None;
    if !exact {
        let n = em.kb.lit_u32(n_elems as u32);
        cond = Some(em.kb.binary(Bo::Less, gi, n));
    }
    if let Some((k, _)) = topk {
        let lt = em.kb.lt_c(rank, k);
        cond = Some(match cond {
            Some(c) => em.kb.binary(Bo::LogicalAnd, c, lt),
            None => lt,
        });
    }
    if let Some(c) = cond {
        em.kb.begin_block();
        store_ranked(&mut em, ctx, &outs, &m, dim, rank, &mine, j, topk.is_some())?;
        let accept = em.kb.end_block();
        em.kb.stmt(naga::Statement::If { condition: c, accept, reject: naga::Block::new() });
    } else {
        store_ranked(&mut em, ctx, &outs, &m, dim, rank, &mine, j, topk.is_some())?;
    }
    Ok(vec![finish(em, &ctx.name, KernelKind::Sort, [wg, 1, 1], groups, ctx.sources.clone())?])
}

#[allow(clippy::too_many_arguments)]
fn store_ranked(
    em: &mut Em,
    ctx: &KernelCtx,
    outs: &[naga::Handle<naga::GlobalVariable>],
    m: &[H],
    dim: usize,
    rank: H,
    mine: &[Val],
    j: H,
    topk: bool,
) -> Result<()> {
    for (k, (o, &g)) in ctx.outputs.iter().zip(outs).enumerate() {
        let mut mo = m.to_vec();
        mo[dim] = rank;
        let lin = linearize(&mut em.kb, &o.dims, &mo);
        let v = if topk && k == 1 {
            // Top-k indices: the element's position in its row.
            Val { h: em.kb.bitcast(j, STy::I32), dt: DType::S32 }
        } else {
            mine[if topk { 0 } else { k }]
        };
        em.store_copy(g, lin, v);
    }
    Ok(())
}
