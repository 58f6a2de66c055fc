//! Loop kernels: one invocation per output element.
//!
//! The grid covers the largest output; an output with fewer elements is
//! guarded by its own bounds check. Outputs of the same shape share the
//! index, so producers they have in common are computed once.

use crate::emit::elemental::{Em, Index};
use crate::emit::{element_index, finish, grid, invocation_index, ElementIndex, KernelCtx, KernelKind, KernelStep};
use crate::error::Result;
use naga::BinaryOperator as Bo;

pub(crate) fn emit(ctx: &KernelCtx, kind: KernelKind) -> Result<Vec<KernelStep>> {
    let n_max = ctx.outputs.iter().map(|o| o.n_elems()).max().unwrap_or(0);
    if n_max == 0 {
        return Ok(Vec::new());
    }
    let wg = ctx.target.loop_workgroup();
    let groups = grid(n_max.div_ceil(wg as u64));
    let mut em = Em::new(ctx.m, ctx.target, &ctx.name);
    let f = em.frame(ctx.comp, ctx.leaves.clone());
    let mut outs = Vec::new();
    for o in &ctx.outputs {
        outs.push(em.bind_buffer(o.buf, o.dtype, true, false)?);
    }
    let ElementIndex { raw: gi, clamped: i, exact } = element_index(&mut em.kb, wg, groups, n_max);
    em.kb.name(i, "i");
    let mut stores = Vec::new();
    for (o, &g) in ctx.outputs.iter().zip(&outs) {
        if o.n_elems() == 0 {
            continue;
        }
        if o.n_elems() < n_max {
            let cond = em.kb.lt_c(gi, o.n_elems() as u32);
            em.kb.begin_block();
            let v = eval_output(&mut em, f, ctx, o, i)?;
            em.store(g, i, v);
            let accept = em.kb.end_block();
            em.kb.stmt(naga::Statement::If { condition: cond, accept, reject: naga::Block::new() });
        } else {
            stores.push((g, eval_output(&mut em, f, ctx, o, i)?));
        }
    }
    if exact {
        for (g, v) in stores {
            em.store(g, i, v);
        }
    } else {
        let n = em.kb.lit_u32(n_max as u32);
        let inside = em.kb.binary(Bo::Less, gi, n);
        em.kb.begin_block();
        for (g, v) in stores {
            em.store(g, i, v);
        }
        let accept = em.kb.end_block();
        em.kb.stmt(naga::Statement::If { condition: inside, accept, reject: naga::Block::new() });
    }
    let wg3 = [wg, 1, 1];
    Ok(vec![finish(em, &ctx.name, kind, wg3, groups, ctx.sources.clone())?])
}

fn eval_output(
    em: &mut Em,
    f: usize,
    ctx: &KernelCtx,
    o: &crate::emit::OutBuf,
    i: crate::builder::H,
) -> Result<crate::emit::ops::Val> {
    let idx = Index::from_linear(&o.dims, i);
    em.eval(f, ctx.root, &o.path, &idx)
}

/// `out[i] = branch_sel[i]`: the result of a `conditional` whose branches were all computed.
/// A `pred` selector picks branch 0 when true; an `s32` one picks its index, out-of-range
/// indices picking the last branch (XLA's semantics).
pub(crate) fn select_branch(
    m: &hlo_ir::Module,
    target: &crate::target::Target,
    name: &str,
    selector: (hlo_program::BufferId, hlo_ir::DType),
    branches: &[hlo_program::BufferId],
    out: &crate::emit::OutBuf,
    sources: Vec<String>,
) -> Result<KernelStep> {
    let n = out.n_elems();
    let wg = target.loop_workgroup();
    let groups = grid(n.div_ceil(wg as u64).max(1));
    let mut em = Em::new(m, target, name);
    let g_out = em.bind_buffer(out.buf, out.dtype, true, false)?;
    let g_sel = em.bind_buffer(selector.0, selector.1, false, false)?;
    let g_br: Vec<_> = branches.iter().map(|&b| em.bind_buffer(b, out.dtype, false, false)).collect::<Result<_>>()?;
    let i = invocation_index(&mut em.kb, wg, groups);
    em.kb.name(i, "i");
    let nn = em.kb.lit_u32(n as u32);
    let oob = em.kb.binary(Bo::GreaterEqual, i, nn);
    em.kb.return_if(oob);
    let zero = em.kb.lit_u32(0);
    let sel = em.load(g_sel, zero, selector.1);
    let k = if selector.1 == hlo_ir::DType::Pred {
        let one = em.kb.lit_u32(1);
        em.kb.select(sel.h, zero, one)
    } else {
        let s = crate::emit::ops::convert(&mut em.kb, sel, hlo_ir::DType::S32);
        let lo = em.kb.lit_i32(0);
        let hi = em.kb.lit_i32(branches.len() as i32 - 1);
        let ge = em.kb.binary(Bo::GreaterEqual, s, lo);
        let le = em.kb.binary(Bo::LessEqual, s, hi);
        let ok = em.kb.binary(Bo::LogicalAnd, ge, le);
        let su = em.kb.bitcast(s, crate::builder::STy::U32);
        let last = em.kb.lit_u32(branches.len() as u32 - 1);
        em.kb.select(ok, su, last)
    };
    em.kb.name(k, "branch");
    let mut v = em.load(g_br[branches.len() - 1], i, out.dtype);
    for b in (0..branches.len() - 1).rev() {
        let x = em.load(g_br[b], i, out.dtype);
        let lit = em.kb.lit_u32(b as u32);
        let is = em.kb.binary(Bo::Equal, k, lit);
        v = crate::emit::ops::Val { h: em.kb.select(is, x.h, v.h), dt: out.dtype };
    }
    em.store(g_out, i, v);
    finish(em, name, KernelKind::Loop, [wg, 1, 1], groups, sources)
}
