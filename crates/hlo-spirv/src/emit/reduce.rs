//! Reduction kernels: a reduce hero with a fused elementwise prologue.
//!
//! Two strategies, chosen by shape:
//! - **row**: one invocation per output element looping over its reduced
//!   elements (the elemental emitter's reduce). Best when there are enough
//!   outputs to fill the device; on lavapipe this is what made the n-body
//!   force step fast (0.4x XLA's time).
//! - **tree**: one workgroup per output element; each invocation strides over
//!   the reduced elements, then a shared-memory tree combines the partials.
//!   Used for few outputs with many reduced elements each.
//!
//! Any reducer computation works (it is inlined), including variadic ones
//! (argmax-style tuples). XLA asks reducers to be associative but JAX's own
//! argmax is not commutative: of two NaNs it keeps its first operand, which
//! makes a left fold return the *first* NaN's index, as numpy does. So unless
//! the reducer is one commutative binary op, the tree keeps index order: each
//! invocation folds a contiguous chunk, and the tree only combines neighbours
//! (lower indices as the first operand). That costs coalescing, so commutative
//! reducers keep the strided layout.

use crate::emit::elemental::{delinearize, Em, Index, Leaf};
use crate::emit::ops::{self, Val};
use crate::emit::{
    because, element_index, finish, grid, guarded, loop_fusion, workgroup_index, ElementIndex, KernelCtx, KernelKind,
    KernelStep,
};
use crate::error::Result;
use hlo_ir::{CompId, InstrId, Module, Op};
use naga::{BinaryOperator as Bo, BuiltIn};

/// Tree reductions need at least this many reduced elements per output...
const TREE_MIN_REDUCED: u64 = 1024;
/// ...and at most this many outputs.
const TREE_MAX_OUTPUTS: u64 = 512;
/// With fewer outputs than this, one invocation per output leaves nearly every
/// lane idle (a scalar sum runs on one lane), so a tree pays off from
/// [`FEW_OUTPUTS_MIN_REDUCED`] reduced elements on: `(x**2).sum()` over 512
/// elements went from 2.4-7.1 ms to well under 1 ms in nbody_sim_update.
const FEW_OUTPUTS: u64 = 64;
const FEW_OUTPUTS_MIN_REDUCED: u64 = 64;

pub(crate) fn emit(ctx: &KernelCtx) -> Result<Vec<KernelStep>> {
    let comp = ctx.m.comp(ctx.comp);
    let root = comp.instr(ctx.root);
    let Op::Reduce { dimensions, .. } = &root.op else {
        return loop_fusion::emit(ctx, KernelKind::Loop);
    };
    let input = comp.instr(root.operands[0]).shape.as_array().cloned();
    let Some(input) = input else {
        return loop_fusion::emit(ctx, KernelKind::ReduceRow);
    };
    let reduced: u64 = dimensions.iter().map(|&d| input.dims[d as usize].max(0) as u64).product();
    let n_out = ctx.outputs.first().map(|o| o.n_elems()).unwrap_or(0);
    let many_reduced = reduced >= TREE_MIN_REDUCED && n_out <= TREE_MAX_OUTPUTS;
    let few_outputs = reduced >= FEW_OUTPUTS_MIN_REDUCED && n_out < FEW_OUTPUTS;
    if (many_reduced || few_outputs) && n_out > 0 {
        because(tree(ctx, ctx.root, None, dimensions, reduced, n_out), || {
            format!("reduce tree: {n_out} outputs of {reduced} elements, a workgroup each")
        })
    } else if let Some(minor) = shared_minor(ctx) {
        because(rows_sharing_minor(ctx, minor, ctx.root), || {
            format!("row reduce: {minor} outputs of {reduced} elements per invocation, sharing their prologue")
        })
    } else {
        because(loop_fusion::emit(ctx, KernelKind::ReduceRow), || {
            format!("row reduce: an invocation per output folding {reduced} elements")
        })
    }
}

/// Most reduced elements one invocation of a narrow tree folds before the tree widens.
const NARROW_TREE_MAX_CHUNK: u64 = 4096;

/// Invocations per workgroup of a tree reduction: 256 (or the device's loop workgroup), except
/// on drivers that run a workgroup's subgroups as coroutines on CPU threads (lavapipe, whose
/// branches are predicated: [`crate::Target::predicated_branches`]). There every barrier
/// switches between all of the workgroup's subgroups, so the tree is one subgroup wide, widened
/// only to keep each invocation's loop at [`NARROW_TREE_MAX_CHUNK`] elements: a 16 x 8192 sum
/// took 9.5 ms with 256 invocations and 0.2 ms with 16, the CNN step's bias gradient
/// (16 x 512) 5.5 ms and 0.15 ms.
fn tree_workgroup(target: &crate::Target, reduced: u64) -> u32 {
    let widest = target.loop_workgroup().min(256);
    let widest = if widest.is_power_of_two() { widest } else { widest.next_power_of_two() / 2 };
    if !target.predicated_branches {
        return widest;
    }
    let lanes = target.subgroup_size.clamp(1, widest).next_power_of_two().min(widest);
    let needed = reduced.div_ceil(NARROW_TREE_MAX_CHUNK).next_power_of_two().min(u64::from(widest)) as u32;
    lanes.max(needed)
}

/// Longest minor output dimension whose elements one invocation computes together.
const SHARED_MINOR_MAX: i64 = 4;
/// Fewest output rows (outputs / minor dimension) for that: enough invocations to fill the device.
const SHARED_MINOR_MIN_ROWS: u64 = 64;

/// The length of the outputs' minor dimension when [`rows_sharing_minor`] applies: every output
/// has the same dimensions, the last of 2 to [`SHARED_MINOR_MAX`] elements.
fn shared_minor(ctx: &KernelCtx) -> Option<u32> {
    let first = ctx.outputs.first()?;
    let minor = *first.dims.last()?;
    let rows = first.n_elems() / minor.max(1) as u64;
    let same = ctx.outputs.iter().all(|o| o.dims == first.dims);
    (same && (2..=SHARED_MINOR_MAX).contains(&minor) && rows >= SHARED_MINOR_MIN_ROWS).then_some(minor as u32)
}

/// A row reduction whose outputs have a short minor dimension (the 2 or 3 coordinates of a
/// force summed over particles): one invocation per output row computes the row's outputs in
/// one fold ([`Em::prefetch_reduce`]), so that the prologue's values that do not depend on the
/// coordinate (the pairwise distance and its power) are computed once instead of once per
/// coordinate. Each output still folds its own elements in order: results are the per-element
/// kernel's bit for bit. `reduce` is the root, or the reduce a root epilogue reads at the
/// root's own index.
pub(crate) fn rows_sharing_minor(ctx: &KernelCtx, minor: u32, reduce: InstrId) -> Result<Vec<KernelStep>> {
    let dims = ctx.outputs[0].dims.clone();
    let rows = ctx.outputs[0].n_elems() / u64::from(minor);
    // Workgroups narrow enough that there are several: a row does `minor` outputs' work.
    let wg = ctx.target.loop_workgroup().min((rows / 8).max(1).next_power_of_two() as u32).max(32);
    let groups = grid(rows.div_ceil(u64::from(wg)));
    let mut em = Em::new(ctx.m, ctx.target, &ctx.name);
    em.texel_reads = true;
    let f = em.frame(ctx.comp, ctx.leaves.clone());
    let mut outs = Vec::with_capacity(ctx.outputs.len());
    for o in &ctx.outputs {
        outs.push(em.bind_array(o.buf, o.n_elems(), o.dtype, true, false)?);
    }
    let ElementIndex { raw, clamped: row, exact } = element_index(&mut em.kb, wg, groups, rows);
    let first = em.kb.mul_c(row, minor);
    let linear: Vec<_> = (0..minor).map(|c| em.kb.add_c(first, c)).collect();
    // Multi-indices that share the row's handles, so that values not depending on the minor
    // index are cached once for all of the row's outputs.
    let row_index = delinearize(&mut em.kb, &dims[..dims.len() - 1], row);
    let idxs: Vec<Index> = (0..minor)
        .map(|c| {
            let mut m = row_index.clone();
            m.push(em.kb.lit_u32(c));
            Index::from_multi(&dims, m)
        })
        .collect();
    em.prefetch_reduce(f, reduce, &idxs)?;
    let mut stores = Vec::new();
    for (o, &g) in ctx.outputs.iter().zip(&outs) {
        for (idx, &at) in idxs.iter().zip(&linear) {
            stores.push((g, at, em.eval(f, ctx.root, &o.path, idx)?));
        }
    }
    guarded(&mut em, exact, raw, rows, |em| {
        for (g, at, v) in stores {
            em.store(g, at, v);
        }
    });
    Ok(vec![finish(em, &ctx.name, KernelKind::ReduceRow, [wg, 1, 1], groups, ctx.sources.clone())?])
}

/// Whether a tree suits a reduction of `reduced` elements into `n_out` outputs.
fn wants_tree(reduced: u64, n_out: u64) -> bool {
    let many_reduced = reduced >= TREE_MIN_REDUCED && n_out <= TREE_MAX_OUTPUTS;
    let few_outputs = reduced >= FEW_OUTPUTS_MIN_REDUCED && n_out < FEW_OUTPUTS;
    (many_reduced || few_outputs) && n_out > 0
}

/// The reduce a fusion is built around when its root is an elementwise epilogue of it (a mean is
/// a sum times a constant, a loss a negated mean): the only reduce on the root's side of the
/// fusion, one array reduced to the root's shape, and worth a tree. Without a hero, such a
/// fusion runs one invocation per output, which for a scalar loss is one lane folding every
/// element.
pub(crate) fn hero(ctx: &KernelCtx) -> Option<InstrId> {
    let id = single_reduce(ctx)?;
    let comp = ctx.m.comp(ctx.comp);
    let r = comp.instr(id);
    let Op::Reduce { dimensions, .. } = &r.op else { unreachable!("collected reduces only") };
    let input = comp.instr(r.operands[0]).shape.as_array()?;
    let reduced: u64 = dimensions.iter().map(|&d| input.dims[d as usize].max(0) as u64).product();
    wants_tree(reduced, ctx.outputs[0].n_elems()).then_some(id)
}

/// The one single-output reduce that a non-reduce root with one output reads through its
/// epilogue, with the root's dimensions.
fn single_reduce(ctx: &KernelCtx) -> Option<InstrId> {
    let comp = ctx.m.comp(ctx.comp);
    let root = comp.instr(ctx.root);
    if matches!(root.op, Op::Reduce { .. }) || ctx.outputs.len() != 1 || !ctx.outputs[0].path.is_empty() {
        return None;
    }
    let out_dims = &root.shape.as_array()?.dims;
    // Reduces reachable from the root without passing through a reduce or a leaf.
    let mut found = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![ctx.root];
    while let Some(id) = stack.pop() {
        // Values with a leaf are already computed (in a buffer, or by an enclosing kernel).
        if !seen.insert(id) || ctx.leaves.contains_key(&id) {
            continue;
        }
        let instr = comp.instr(id);
        if matches!(instr.op, Op::Reduce { .. }) {
            found.push(id);
            continue;
        }
        if !instr.op.called_computations().is_empty() && !matches!(instr.op, Op::Map { .. }) {
            return None;
        }
        stack.extend(instr.operands.iter().copied());
    }
    let [id] = found[..] else { return None };
    let r = comp.instr(id);
    if r.operands.len() != 2 || r.shape.as_array().map(|a| &a.dims) != Some(out_dims) {
        return None;
    }
    Some(id)
}

/// For a loop kernel whose root is an epilogue of one reduce with a short minor dimension:
/// that dimension's length and the reduce ([`rows_sharing_minor`]).
pub(crate) fn shared_minor_hero(ctx: &KernelCtx) -> Option<(u32, InstrId)> {
    Some((shared_minor(ctx)?, single_reduce(ctx)?))
}

/// A tree reduction of `hero` (see [`hero`]) whose result the root's epilogue then reads.
pub(crate) fn emit_with_hero(ctx: &KernelCtx, hero: InstrId) -> Result<Vec<KernelStep>> {
    let comp = ctx.m.comp(ctx.comp);
    let r = comp.instr(hero);
    let Op::Reduce { dimensions, .. } = &r.op else { unreachable!("a hero is a reduce") };
    let input = comp.instr(r.operands[0]).shape.as_array().expect("checked by hero").clone();
    let reduced: u64 = dimensions.iter().map(|&d| input.dims[d as usize].max(0) as u64).product();
    tree(ctx, hero, Some(ctx.root), dimensions, reduced, ctx.outputs[0].n_elems())
}

/// How a reduction kernel hands values to its reducer and stores what it returns, following
/// XLA:CPU's DAZ/FTZ environment.
///
/// Per result, `moves_data` says whether it only selects among the reducer's arguments
/// (parameters under `select`s, as an argmin's value and index are). A reducer with such a
/// result takes elements and partial results as they are in memory (its compares read them
/// with DAZ, and what it selects keeps its bits: a subnormal minimum stays subnormal, as
/// XLA:CPU's blend keeps it), and those results are stored as data. An arithmetic reducer (a
/// sum) takes its elements flushed once, which is cheaper than flushing both sides per step.
pub(crate) struct ReducerReads {
    moves_data: Vec<bool>,
    selects: bool,
}

impl ReducerReads {
    pub(crate) fn of(m: &Module, reducer: CompId) -> Self {
        fn moves(c: &hlo_ir::Computation, id: InstrId, depth: u32) -> bool {
            let instr = c.instr(id);
            match &instr.op {
                Op::Parameter { .. } => true,
                Op::Select if depth < 64 => instr.operands[1..].iter().all(|&o| moves(c, o, depth + 1)),
                _ => false,
            }
        }
        let c = m.comp(reducer);
        let root = c.instr(c.root);
        let moves_data: Vec<bool> = match &root.op {
            Op::Tuple => root.operands.iter().map(|&o| moves(c, o, 0)).collect(),
            _ => vec![moves(c, c.root, 0)],
        };
        let selects = moves_data.iter().any(|&m| m);
        ReducerReads { moves_data, selects }
    }

    /// Element or init value `v` of operand `id`, as the reducer takes it.
    pub(crate) fn arg(&self, em: &mut Em, f: usize, id: InstrId, v: Val) -> Val {
        if self.selects {
            v
        } else {
            em.daz(f, id, v)
        }
    }

    /// The reducer applied to `args` (partial results, then elements).
    pub(crate) fn apply(&self, em: &mut Em, reducer: CompId, args: Vec<Val>) -> Result<Vec<Val>> {
        if self.selects {
            em.apply_loaded(reducer, args)
        } else {
            em.apply(reducer, args)
        }
    }

    /// Marks the reduction's result `k` (of the reducer's results) as data where it only selects.
    pub(crate) fn mark_result(&self, em: &mut Em, k: usize, v: Val) {
        if self.moves_data.get(k).copied().unwrap_or(false) {
            em.kb.mark_data_bits(v.h);
        }
    }
}

/// Whether `reducer` is `f(a, b) = a op b` for a commutative `op`: then the order
/// in which partial results meet does not change the result (beyond rounding).
fn commutative_reducer(m: &Module, reducer: CompId) -> bool {
    let c = m.comp(reducer);
    let root = c.instr(c.root);
    let Op::Binary(op) = root.op else { return false };
    let commutative = op.is_commutative();
    let params: Vec<_> = root.operands.iter().map(|&o| &c.instr(o).op).collect();
    commutative && params.iter().all(|op| matches!(op, Op::Parameter { .. })) && c.params.len() == 2
}

/// A tree reduction of `root_id`; with `epilogue`, the value stored is `epilogue` (the fusion's
/// root) evaluated with the reduction's result.
fn tree(
    ctx: &KernelCtx,
    root_id: InstrId,
    epilogue: Option<InstrId>,
    dimensions: &[i64],
    reduced: u64,
    n_out: u64,
) -> Result<Vec<KernelStep>> {
    let comp = ctx.m.comp(ctx.comp);
    let root = comp.instr(root_id);
    let Op::Reduce { to_apply, .. } = root.op else { unreachable!("checked by the caller") };
    let n = root.operands.len() / 2;
    let wg = tree_workgroup(ctx.target, reduced);
    let groups = grid(n_out);
    let mut em = Em::new(ctx.m, ctx.target, &ctx.name);
    em.texel_reads = true;
    let f = em.frame(ctx.comp, ctx.leaves.clone());
    let mut outs = Vec::new();
    for o in &ctx.outputs {
        outs.push(em.bind_array(o.buf, o.n_elems(), o.dtype, true, false)?);
    }
    let o = workgroup_index(&mut em.kb, groups);
    em.kb.name(o, "o");
    if groups[0] as u64 * groups[1] as u64 != n_out {
        let nn = em.kb.lit_u32(n_out as u32);
        let oob = em.kb.binary(Bo::GreaterEqual, o, nn);
        em.kb.return_if(oob);
    }
    let lid = em.kb.builtin(BuiltIn::LocalInvocationId);
    let t = em.kb.access_index(lid, 0);
    em.kb.name(t, "t");

    let input = comp.instr(root.operands[0]).shape.as_array().expect("checked").clone();
    let out_dims = ctx.outputs[0].dims.clone();
    let out_m = Index::from_linear(&out_dims, o).multi(&mut em.kb);
    let mut red: Vec<usize> = dimensions.iter().map(|&d| d as usize).collect();
    red.sort_unstable();
    let red_dims: Vec<i64> = red.iter().map(|&d| input.dims[d]).collect();

    let reads = ReducerReads::of(ctx.m, to_apply);
    let mut inits = Vec::new();
    for k in 0..n {
        let init = em.eval(f, root.operands[n + k], &[], &Index::scalar())?;
        inits.push(reads.arg(&mut em, f, root.operands[n + k], init));
    }
    // Each invocation folds elements t, t + wg, t + 2wg, ... or, keeping index order,
    // the contiguous chunk [t * chunk, (t + 1) * chunk).
    let ordered = !commutative_reducer(ctx.m, to_apply);
    let chunk = reduced.div_ceil(wg as u64).max(1);
    let accs: Vec<(crate::builder::H, hlo_ir::DType)> = inits
        .iter()
        .enumerate()
        .map(|(k, v)| {
            let ty = ops::value_sty(v.dt).expect("checked");
            (em.kb.local_init(&format!("acc{k}"), ty, v.h), v.dt)
        })
        .collect();
    let (start, end) = if ordered {
        let start = em.kb.mul_c(t, chunk as u32);
        let stop = em.kb.add_c(start, chunk as u32);
        let total = em.kb.lit_u32(reduced as u32);
        let end = em.kb.min_u(stop, total);
        (start, end)
    } else {
        (t, em.kb.lit_u32(reduced as u32))
    };
    let r = em.kb.local_init("r", crate::builder::STy::U32, start);
    // Invocations whose first element is past the end contribute only the init value: the
    // loop runs at least once, so it must not be entered.
    let guarded = if ordered { (wg as u64 - 1) * chunk >= reduced } else { reduced < wg as u64 };
    if guarded {
        em.kb.begin_block();
    }
    em.kb.begin_loop_body();
    em.enter_loop(Some(chunk));
    {
        let rv = em.kb.load(r);
        let point = delinearize(&mut em.kb, &red_dims, rv);
        let mut full = Vec::with_capacity(input.rank());
        let (mut oi, mut ri) = (0, 0);
        for d in 0..input.rank() {
            if red.get(ri) == Some(&d) {
                full.push(point[ri]);
                ri += 1;
            } else {
                full.push(out_m[oi]);
                oi += 1;
            }
        }
        let at = Index::from_multi(&input.dims, full);
        let mut args: Vec<Val> = accs.iter().map(|&(p, dt)| Val { h: em.kb.load(p), dt }).collect();
        for k in 0..n {
            let v = em.eval(f, root.operands[k], &[], &at)?;
            args.push(reads.arg(&mut em, f, root.operands[k], v));
        }
        let new = reads.apply(&mut em, to_apply, args)?;
        for (&(p, _), v) in accs.iter().zip(new) {
            em.kb.store(p, v.h);
        }
    }
    em.exit_loop();
    let body = em.kb.end_block();
    em.kb.begin_block();
    let rv = em.kb.load(r);
    let next = em.kb.add_c(rv, if ordered { 1 } else { wg });
    em.kb.store(r, next);
    let done = em.kb.binary(Bo::Less, next, end);
    let done = em.kb.unary(naga::UnaryOperator::LogicalNot, done);
    let continuing = em.kb.end_block();
    em.kb.stmt(naga::Statement::Loop { body, continuing, break_if: Some(done) });
    if guarded {
        let accept = em.kb.end_block();
        let inside = em.kb.binary(Bo::Less, start, end);
        em.kb.stmt(naga::Statement::If { condition: inside, accept, reject: naga::Block::new() });
    }

    // Shared-memory tree.
    let shared: Vec<_> = accs
        .iter()
        .enumerate()
        .map(|(k, &(_, dt))| {
            let ty = ops::value_sty(dt)
                .map(|t| if t == crate::builder::STy::Bool { crate::builder::STy::U32 } else { t })
                .expect("checked");
            em.kb.workgroup_array(&format!("partial{k}"), ty.scalar(), wg)
        })
        .collect();
    for (&(p, dt), &g) in accs.iter().zip(&shared) {
        let v = em.kb.load(p);
        let base = em.kb.global(g);
        let ptr = em.kb.access(base, t);
        let s = ops::to_storage(&mut em.kb, v, dt);
        em.kb.store(ptr, s);
    }
    em.kb.barrier();
    // Strided: invocation t < s combines t and t + s, s = wg/2, wg/4, ... Ordered:
    // invocation t, a multiple of 2s, combines neighbours t and t + s, s = 1, 2, 4, ...
    let strides: Vec<u32> = if ordered {
        std::iter::successors(Some(1u32), |s| Some(s * 2)).take_while(|&s| s < wg).collect()
    } else {
        std::iter::successors(Some(wg / 2), |s| Some(s / 2)).take_while(|&s| s >= 1).collect()
    };
    for s in strides {
        let cond = if ordered {
            let rem = em.kb.rem_c(t, 2 * s);
            let zero = em.kb.lit_u32(0);
            em.kb.binary(Bo::Equal, rem, zero)
        } else {
            em.kb.lt_c(t, s)
        };
        em.kb.begin_block();
        let other = em.kb.add_c(t, s);
        let mut args = Vec::new();
        for (pos, src) in [t, other].into_iter().enumerate() {
            let _ = pos;
            for (&(_, dt), &g) in accs.iter().zip(&shared) {
                let base = em.kb.global(g);
                let ptr = em.kb.access(base, src);
                let raw = em.kb.load(ptr);
                args.push(Val { h: ops::from_storage(&mut em.kb, raw, dt), dt });
            }
        }
        // Reorder: reducer takes (accs..., values...) = (sh[t] k..., sh[t+s] k...).
        let new = reads.apply(&mut em, to_apply, args)?;
        for (&g, v) in shared.iter().zip(new) {
            let base = em.kb.global(g);
            let ptr = em.kb.access(base, t);
            let sv = ops::to_storage(&mut em.kb, v.h, v.dt);
            em.kb.store(ptr, sv);
        }
        let accept = em.kb.end_block();
        em.kb.stmt(naga::Statement::If { condition: cond, accept, reject: naga::Block::new() });
        em.kb.barrier();
    }
    let zero = em.kb.lit_u32(0);
    let is_first = em.kb.binary(Bo::Equal, t, zero);
    em.kb.begin_block();
    for (k, (o_buf, &g)) in ctx.outputs.iter().zip(&outs).enumerate() {
        let dt = accs[k].1;
        let base = em.kb.global(shared[k]);
        let ptr = em.kb.access(base, zero);
        let raw = em.kb.load(ptr);
        let v = Val { h: ops::from_storage(&mut em.kb, raw, dt), dt };
        reads.mark_result(&mut em, k, v);
        let v = match epilogue {
            None => v,
            Some(root) => {
                let idx = Index::from_linear(&o_buf.dims, o);
                let leaf = if o_buf.dims.is_empty() {
                    Leaf::Value(v)
                } else {
                    Leaf::State { val: v, at: idx.key().clone(), name: ctx.name.clone() }
                };
                em.set_leaf(f, root_id, leaf);
                em.eval(f, root, &[], &idx)?
            }
        };
        em.store(g, o, v);
    }
    let accept = em.kb.end_block();
    em.kb.stmt(naga::Statement::If { condition: is_first, accept, reject: naga::Block::new() });
    Ok(vec![finish(em, &ctx.name, KernelKind::ReduceTree, [wg, 1, 1], groups, ctx.sources.clone())?])
}
