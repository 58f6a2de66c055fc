//! Loop kernels: one invocation per output element, or per four ([`emit_quads`]).
//!
//! The grid covers the largest output; an output with fewer elements is
//! guarded by its own bounds check. Outputs of the same shape share the
//! index, so producers they have in common are computed once.

use crate::emit::elemental::{Em, Index};
use crate::emit::{element_index, finish, grid, guarded, ElementIndex, KernelCtx, KernelKind, KernelStep};
use crate::error::Result;

pub(crate) fn emit(ctx: &KernelCtx, kind: KernelKind) -> Result<Vec<KernelStep>> {
    let n_max = ctx.outputs.iter().map(|o| o.n_elems()).max().unwrap_or(0);
    if n_max == 0 {
        return Ok(Vec::new());
    }
    if kind == KernelKind::Loop && vectorisable(ctx) {
        return emit_quads(ctx, kind);
    }
    let wg = ctx.target.loop_workgroup();
    let groups = grid(n_max.div_ceil(wg as u64));
    let mut em = Em::new(ctx.m, ctx.target, &ctx.name);
    em.texel_reads = true;
    let f = em.frame(ctx.comp, ctx.leaves.clone());
    let mut outs = Vec::new();
    for o in &ctx.outputs {
        // A complex output is written as interleaved (re, im) words of its part type.
        let (elems, dtype) = match o.dtype.complex_component() {
            Some(part) => (2 * o.n_elems(), part),
            None => (o.n_elems(), o.dtype),
        };
        outs.push(em.bind_array(o.buf, elems, dtype, true, false)?);
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
            for (at, v) in eval_output(&mut em, f, ctx, o, i)? {
                em.store(g, at, v);
            }
            let accept = em.kb.end_block();
            em.kb.stmt(naga::Statement::If { condition: cond, accept, reject: naga::Block::new() });
        } else {
            for (at, v) in eval_output(&mut em, f, ctx, o, i)? {
                stores.push((g, at, v));
            }
        }
    }
    guarded(&mut em, exact, gi, n_max, |em| {
        for (g, at, v) in stores {
            em.store(g, at, v);
        }
    });
    let wg3 = [wg, 1, 1];
    Ok(vec![finish(em, &ctx.name, kind, wg3, groups, ctx.sources.clone())?])
}

/// The words output `o` stores for element `i`: its value at `i`, or for a complex output
/// (a `complex(re, im)` built by `lower-complex`) its parts at `2 i` and `2 i + 1`.
fn eval_output(
    em: &mut Em,
    f: usize,
    ctx: &KernelCtx,
    o: &crate::emit::OutBuf,
    i: crate::builder::H,
) -> Result<Vec<(crate::builder::H, crate::emit::ops::Val)>> {
    let idx = Index::from_linear(&o.dims, i);
    if !o.dtype.is_complex() {
        return Ok(vec![(i, em.eval(f, ctx.root, &o.path, &idx)?)]);
    }
    let mut id = ctx.root;
    for &k in &o.path {
        let instr = ctx.m.comp(ctx.comp).instr(id);
        match instr.op {
            hlo_ir::Op::Tuple => id = instr.operands[k],
            _ => return Err(em.unsupported(instr, "a complex output that is not built by `complex`")),
        }
    }
    let instr = ctx.m.comp(ctx.comp).instr(id);
    if !matches!(instr.op, hlo_ir::Op::Binary(hlo_ir::BinaryOp::Complex)) {
        return Err(em.unsupported(instr, "a complex output that is not built by `complex`"));
    }
    let re = em.eval(f, instr.operands[0], &[], &idx)?;
    let im = em.eval(f, instr.operands[1], &[], &idx)?;
    let at_re = em.kb.mul_c(i, 2);
    let at_im = em.kb.add_c(at_re, 1);
    Ok(vec![(at_re, re), (at_im, im)])
}

/// Fewest elements for a vectorised loop: smaller ones cost a dispatch whatever they do.
const QUAD_MIN_ELEMENTS: u64 = 1024;

/// Whether every output is f32 with the same multiple of 4 elements, each within one binding,
/// and no output buffer is also read: then [`emit_quads`] applies.
fn vectorisable(ctx: &KernelCtx) -> bool {
    let Some(first) = ctx.outputs.first() else { return false };
    let n = first.n_elems();
    let leaf_bufs: Vec<_> = ctx
        .leaves
        .values()
        .filter_map(|l| match l {
            crate::emit::elemental::Leaf::Buffer { buf, .. } => Some(*buf),
            _ => None,
        })
        .collect();
    n >= QUAD_MIN_ELEMENTS
        && n % 4 == 0
        && n.saturating_mul(4) <= ctx.target.max_storage_buffer_range
        && ctx.outputs.iter().all(|o| o.n_elems() == n && o.dtype == hlo_ir::DType::F32 && !leaf_bufs.contains(&o.buf))
}

/// A loop kernel where each invocation computes four consecutive elements of every output: f32
/// buffers read at those elements' own indices are read as one vec4 each (`Em::quads`), and
/// each output is written as one vec4. llvmpipe reads and writes a storage buffer lane by lane
/// at a varying index, so this quarters the memory operations of elementwise kernels; reads
/// at other indices (broadcasts, slices) stay scalar. Each element is computed as the
/// one-element kernel computes it.
fn emit_quads(ctx: &KernelCtx, kind: KernelKind) -> Result<Vec<KernelStep>> {
    let n = ctx.outputs[0].n_elems();
    let quads = n / 4;
    let wg = ctx.target.loop_workgroup();
    let groups = grid(quads.div_ceil(wg as u64));
    let mut em = Em::new(ctx.m, ctx.target, &ctx.name);
    em.texel_reads = true;
    let f = em.frame(ctx.comp, ctx.leaves.clone());
    let mut outs = Vec::new();
    for o in &ctx.outputs {
        let g = em.bind_vec4_as(o.buf, n, true).expect("vectorisable checked the binding");
        outs.push(g);
    }
    let ElementIndex { raw, clamped: q, exact } = element_index(&mut em.kb, wg, groups, quads);
    em.kb.name(q, "q");
    let first = em.kb.mul_c(q, 4);
    let lins: Vec<_> = (0..4u32)
        .map(|c| {
            let l = em.kb.add_c(first, c);
            em.quads.insert(l, (q, c));
            l
        })
        .collect();
    let mut stores = Vec::new();
    for (o, &g) in ctx.outputs.iter().zip(&outs) {
        let mut vals = Vec::with_capacity(4);
        for &l in &lins {
            let idx = Index::from_linear(&o.dims, l);
            vals.push(em.eval(f, ctx.root, &o.path, &idx)?);
        }
        stores.push((g, [vals[0], vals[1], vals[2], vals[3]]));
    }
    guarded(&mut em, exact, raw, quads, |em| {
        for (g, vals) in stores {
            em.store_quad(g, q, vals);
        }
    });
    Ok(vec![finish(em, &ctx.name, kind, [wg, 1, 1], groups, ctx.sources.clone())?])
}
