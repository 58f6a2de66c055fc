//! Loop kernels: one invocation per output element.
//!
//! The grid covers the largest output; an output with fewer elements is
//! guarded by its own bounds check. Outputs of the same shape share the
//! index, so producers they have in common are computed once.

use crate::emit::elemental::{Em, Index};
use crate::emit::{element_index, finish, grid, ElementIndex, KernelCtx, KernelKind, KernelStep};
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
        outs.push(em.bind_array(o.buf, o.n_elems(), o.dtype, true, false)?);
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
