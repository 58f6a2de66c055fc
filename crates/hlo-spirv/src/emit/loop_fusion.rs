//! Loop kernels: one invocation per output element.
//!
//! The grid covers the largest output; an output with fewer elements is
//! guarded by its own bounds check. Outputs of the same shape share the
//! index, so producers they have in common are computed once.

use crate::emit::elemental::{Em, Index};
use crate::emit::{finish, grid, invocation_index, KernelCtx, KernelKind, KernelStep};
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
    let i = invocation_index(&mut em.kb, wg, groups);
    em.kb.name(i, "i");
    let n = em.kb.lit_u32(n_max as u32);
    let oob = em.kb.binary(Bo::GreaterEqual, i, n);
    if n_max % wg as u64 != 0 || groups[0] as u64 * groups[1] as u64 * wg as u64 != n_max {
        em.kb.return_if(oob);
    }
    for (o, &g) in ctx.outputs.iter().zip(&outs) {
        let guarded = o.n_elems() < n_max;
        if o.n_elems() == 0 {
            continue;
        }
        if guarded {
            let cond = em.kb.lt_c(i, o.n_elems() as u32);
            em.kb.begin_block();
            write_output(&mut em, f, ctx, o, g, i)?;
            let accept = em.kb.end_block();
            em.kb.stmt(naga::Statement::If { condition: cond, accept, reject: naga::Block::new() });
        } else {
            write_output(&mut em, f, ctx, o, g, i)?;
        }
    }
    let wg3 = [wg, 1, 1];
    Ok(vec![finish(em, &ctx.name, kind, wg3, groups, ctx.sources.clone())?])
}

fn write_output(
    em: &mut Em,
    f: usize,
    ctx: &KernelCtx,
    o: &crate::emit::OutBuf,
    g: naga::Handle<naga::GlobalVariable>,
    i: crate::builder::H,
) -> Result<()> {
    let idx = Index::from_linear(&o.dims, i);
    let v = em.eval(f, ctx.root, &o.path, &idx)?;
    em.store(g, i, v);
    Ok(())
}
