//! Sort and top-k kernels: which algorithm for which row, and the pieces they share.
//!
//! HLO's `sort` sorts every operand along one dimension by a comparator computation (the other
//! dimensions are a batch of independent rows); `topk` and XLA:CPU's `TopK` custom call keep the
//! first k elements of each row of a sort by value, with their positions. Three strategies:
//!
//! ```text
//!   row length ≤ RANK_MAX_ROW             rank.rs   one invocation per element counts what precedes it
//!   key order, row ≥ RADIX_MIN_ROW        radix.rs  LSD radix sort on the key, 8 bits a pass
//!   otherwise                             merge.rs  log2(row) passes merging sorted runs pairwise
//! ```
//!
//! A comparator of the form `compare(g(lhs_i), g(rhs_i)), direction=LT|GT` (what `jnp.sort`,
//! `jnp.argsort` and `lax.sort(..., num_keys=1)` emit, before and after XLA's optimisation) is a
//! *key order*: sorting by it is sorting by the key `g(x)` of one operand, which a radix sort can do
//! (see [`key`]). Every other comparator is evaluated as written, inlined through the elemental
//! emitter. All strategies are stable (equal elements keep their order, what JAX's sorts promise);
//! an unstable order is one of the orders `is_stable=false` allows.
//!
//! The multi-pass sorts ping-pong between the output buffers and one scratch copy of the operands,
//! arranged so that the last pass writes the outputs; their kernels take per-pass parameters in
//! push constants, so every pass of one kind runs the same pipeline.

mod key;
mod merge;
mod radix;
mod rank;

use crate::builder::{STy, H};
use crate::emit::elemental::{Em, Index};
use crate::emit::ops::{self, Val};
use crate::emit::{finish, grid, invocation_index, KernelCtx, KernelKind, KernelStep, OutBuf, Scratch};
use crate::error::{CodegenError, Result};
use hlo_ir::{CompId, DType, InstrId, Op};
use hlo_program::BufferId;
use key::KeyOrder;
use naga::BinaryOperator as Bo;

/// Rows up to this long are sorted by ranking (one dispatch, O(n) comparisons per element).
const RANK_MAX_ROW: u32 = 32;
/// Key orders of rows at least this long are radix sorted (four passes of a few dispatches for
/// a 32-bit key); shorter rows take the `log2(row)` merge passes, which cost less per pass. On
/// lavapipe the two meet between 1024 and 4096 (`hlo-run bench` of f32 sorts, docs/performance.md).
const RADIX_MIN_ROW: u32 = 2048;

/// What is sorted: one row per position of the non-sorted dimensions.
#[derive(Clone)]
struct Spec {
    /// Dimensions of every sorted operand.
    dims: Vec<i64>,
    row_len: u32,
    rows: u32,
    /// Distance between neighbours of a row (the product of the dimensions after the sorted one).
    inner: u32,
    operands: Vec<Operand>,
    order: Order,
    /// Keep the first k of each row (top-k); the outputs have k along the sorted dimension.
    topk: Option<u32>,
    /// Name of the HLO instruction, for errors.
    instr: String,
    /// The comparator argument pair of each operand: its position among the sort's operands, or
    /// `None` for an operand the comparator does not see (a permutation's positions).
    orig: Vec<Option<usize>>,
    /// Compared operands that are not moved but read at the positions the sort moves (the one
    /// [`Source::Iota`] operand): see [`by_packed_permutation`]. Empty for every other sort.
    packed: Vec<Packed>,
}

/// A compared operand kept, unsorted, in a slice of a buffer shared by the compared operands of
/// its type: element `i` of the operand is element `offset + i` of `buf`.
#[derive(Clone, Copy, Debug)]
struct Packed {
    /// Its comparator argument pair.
    orig: usize,
    dt: DType,
    buf: BufferId,
    /// Elements of `buf`.
    elems: u64,
    offset: u32,
}

/// One sorted array.
#[derive(Clone, Copy, Debug)]
struct Operand {
    src: Source,
    dt: DType,
}

#[derive(Clone, Copy, Debug)]
enum Source {
    /// An operand of the root, evaluated through the fused computation.
    Instr(InstrId),
    /// The position along the sorted dimension, as s32 (top-k indices).
    Iota,
}

/// How two elements are ordered.
#[derive(Clone)]
enum Order {
    /// The comparator computation: `(lhs_0, rhs_0, lhs_1, rhs_1, ...) -> pred`, true when lhs goes
    /// first; `flush` as in [`flush_for_comparator`].
    Comparator { comp: CompId, flush: bool },
    /// Ascending order of an unsigned key computed from one operand.
    Key(KeyOrder),
}

impl Spec {
    fn of(ctx: &KernelCtx) -> Result<Spec> {
        let comp = ctx.m.comp(ctx.comp);
        let root = comp.instr(ctx.root);
        let unsupported = |reason: &str| CodegenError::unsupported(root.op.opcode().name(), &root.name, reason);
        let first = comp.instr(*root.operands.first().ok_or_else(|| unsupported("no operand"))?);
        let shape = first.shape.as_array().ok_or_else(|| unsupported("tuple operand"))?.clone();
        let rank = shape.rank();
        let dt_of =
            |id: InstrId| comp.instr(id).shape.as_array().map(|a| a.dtype).ok_or_else(|| unsupported("tuple operand"));
        let instr_operand = |id: InstrId| -> Result<Operand> { Ok(Operand { src: Source::Instr(id), dt: dt_of(id)? }) };
        let iota = Operand { src: Source::Iota, dt: DType::S32 };
        let (dim, operands, order, topk) = match &root.op {
            Op::Sort { dimension, to_apply, .. } => {
                let operands = root.operands.iter().map(|&o| instr_operand(o)).collect::<Result<Vec<_>>>()?;
                let order = match key::recognize(ctx.m, *to_apply, &operands, true) {
                    Some(k) => Order::Key(k),
                    None => Order::Comparator { comp: *to_apply, flush: true },
                };
                (*dimension as usize, operands, order, None)
            }
            Op::TopK { k, largest } => {
                let x = instr_operand(root.operands[0])?;
                let order = Order::Key(
                    key::value_order(x.dt, 0, *largest)
                        .ok_or_else(|| unsupported(&format!("top-k of {} elements on this device", x.dt)))?,
                );
                (rank.saturating_sub(1), vec![x, iota], order, Some(*k as u32))
            }
            Op::CustomCall(cc) => {
                // XLA:CPU's `TopK`: (values, indices) of the first k along the last dimension by the
                // comparator, which takes (value, value) or (value, value, index, index).
                let x = instr_operand(root.operands[0])?;
                let k = root.shape.leaves().first().and_then(|a| a.dims.last().copied()).unwrap_or(1);
                let operands = vec![x, iota];
                let order = match cc.called_computations.first() {
                    Some(&c) => match key::recognize(ctx.m, c, &operands, false) {
                        Some(k) => Order::Key(k),
                        None => Order::Comparator { comp: c, flush: false },
                    },
                    None => Order::Key(
                        key::value_order(x.dt, 0, true)
                            .ok_or_else(|| unsupported(&format!("top-k of {} elements on this device", x.dt)))?,
                    ),
                };
                (rank.saturating_sub(1), operands, order, Some(k as u32))
            }
            _ => unreachable!("classified as sort"),
        };
        if rank == 0 || dim >= rank {
            return Err(unsupported("sort of a scalar"));
        }
        let n = shape.num_elements();
        if n >= u32::MAX as u64 / 2 {
            return Err(unsupported("more than 2^31 elements"));
        }
        let row_len = shape.dims[dim] as u32;
        let inner: u64 = shape.dims[dim + 1..].iter().map(|&d| d.max(0) as u64).product();
        let rows = if row_len == 0 { 0 } else { (n / row_len as u64) as u32 };
        Ok(Spec {
            dims: shape.dims.clone(),
            row_len,
            rows,
            inner: inner as u32,
            orig: (0..operands.len()).map(Some).collect(),
            packed: Vec::new(),
            operands,
            order,
            topk,
            instr: root.name.clone(),
        })
    }

    fn n_elems(&self) -> u64 {
        self.rows as u64 * self.row_len as u64
    }

    /// The linear index of the first element of `row` in an array whose sorted dimension has `len`
    /// elements (the operands' `row_len`, or k for top-k outputs).
    fn row_base(&self, em: &mut Em, row: H, len: u32) -> H {
        let kb = &mut em.kb;
        if self.inner == 1 {
            return kb.mul_c(row, len);
        }
        let hi = kb.div_c(row, self.inner);
        let lo = kb.rem_c(row, self.inner);
        let hi = kb.mul_c(hi, len * self.inner);
        kb.add_u(hi, lo)
    }

    /// The linear index of element `pos` of the row starting at `base`.
    fn at(&self, em: &mut Em, base: H, pos: H) -> H {
        let off = em.kb.mul_c(pos, self.inner);
        em.kb.add_u(base, off)
    }

    /// Whether `less` reads operand `k` (the others travel along as payload).
    fn is_compared(&self, m: &hlo_ir::Module, k: usize) -> bool {
        match &self.order {
            Order::Key(key) => key.operand == k,
            Order::Comparator { comp: c, .. } => {
                let Some(k) = self.orig[k] else { return false };
                let comp = m.comp(*c);
                let used = key::used_params(m, *c);
                [2 * k, 2 * k + 1].iter().any(|&p| p < comp.params.len() && used[p])
            }
        }
    }

    /// The type of every value [`Spec::less`] takes, where it reads it: the operands it compares,
    /// then the packed ones.
    fn compared_types(&self, m: &hlo_ir::Module) -> Vec<Option<DType>> {
        let moved = self.operands.iter().enumerate().map(|(k, op)| self.is_compared(m, k).then_some(op.dt));
        moved.chain(self.packed.iter().map(|p| Some(p.dt))).collect()
    }

    /// `lhs goes before rhs`, for elements given as one value per operand and then one per packed
    /// operand (`None` where [`Spec::compared_types`] says it is not read).
    fn less(&self, em: &mut Em, lhs: &[Option<Val>], rhs: &[Option<Val>]) -> Result<H> {
        match &self.order {
            Order::Key(key) => {
                let (Some(a), Some(b)) = (lhs[key.operand], rhs[key.operand]) else {
                    unreachable!("the key operand is compared")
                };
                let ka = key.key(em, a)?;
                let kb_ = key.key(em, b)?;
                Ok(em.kb.binary(Bo::Less, ka, kb_))
            }
            Order::Comparator { comp: c, flush } => {
                // One pair of arguments per comparator operand; those of operands this sort does not
                // move (see `by_permutation`) are never read.
                let params: Vec<DType> =
                    em.m.comp(*c)
                        .params
                        .iter()
                        .step_by(2)
                        .map(|&p| em.m.comp(*c).instr(p).shape.as_array().map_or(DType::U32, |a| a.dtype))
                        .collect();
                let mut pairs: Vec<Option<(Val, Val)>> = vec![None; params.len()];
                let inputs = self.orig.iter().zip(&self.operands).map(|(&o, op)| (o, op.dt));
                let inputs = inputs.chain(self.packed.iter().map(|p| (Some(p.orig), p.dt)));
                for (k, (orig, dt)) in inputs.enumerate() {
                    let Some(slot) = orig.and_then(|o| pairs.get_mut(o)) else { continue };
                    let a = lhs[k].unwrap_or_else(|| zero_of(em, dt));
                    let b = rhs[k].unwrap_or_else(|| zero_of(em, dt));
                    *slot = Some((a, b));
                }
                let mut args = Vec::with_capacity(2 * params.len());
                for (pair, &dt) in pairs.iter().zip(&params) {
                    let (a, b) = pair.unwrap_or_else(|| (zero_of(em, dt), zero_of(em, dt)));
                    args.push(a);
                    args.push(b);
                }
                // XLA:CPU runs comparators with DAZ: its arithmetic compares read subnormal
                // arguments as zero, total-order compares read their bits.
                let r = if *flush { em.apply_loaded(*c, args)? } else { em.apply(*c, args)? };
                Ok(r[0].h)
            }
        }
    }
}

/// An element handed to a `sort` comparator, with subnormal f32/f64/bf16 values read as zero:
/// XLA:CPU runs comparators with DAZ, so under JAX's comparator (which maps -0 to +0 with a
/// non-total-order `eq`) a subnormal ties with both zeros. The reduce emitter treats reducer
/// inputs the same way. (A comparator that compares raw bits, such as a bare TOTALORDER compare,
/// would see XLA:CPU tell subnormals from zero; JAX never emits one.) `topk` and XLA:CPU's `TopK`
/// compare raw values and do not flush.
fn flush_for_comparator(em: &mut Em, v: Val) -> Val {
    if matches!(v.dt, DType::F32 | DType::F64 | DType::BF16) {
        Val { h: ops::flush_subnormal(&mut em.kb, v.h, v.dt), dt: v.dt }
    } else {
        v
    }
}

/// A zero of `dt`, for comparator arguments that are never read.
fn zero_of(em: &mut Em, dt: DType) -> Val {
    let t = ops::value_sty(dt).unwrap_or(STy::U32);
    Val { h: em.kb.lit_int(t, 0), dt }
}

pub(crate) fn emit(ctx: &KernelCtx, scratch: &Scratch) -> Result<Vec<KernelStep>> {
    let spec = Spec::of(ctx)?;
    if spec.n_elems() == 0 {
        return Ok(Vec::new());
    }
    if spec.topk.is_none() && buffers_needed(spec.operands.len()) > ctx.target.max_storage_buffers as usize {
        return by_permutation(ctx, scratch, spec);
    }
    if spec.row_len <= RANK_MAX_ROW {
        return rank::emit(ctx);
    }
    sort_spec(ctx, scratch, spec)
}

/// The most storage buffers a kernel of any strategy binds for a sort of `n` operands: every
/// operand read and written, the radix sort's histograms and totals, a status word.
fn buffers_needed(n: usize) -> usize {
    2 * n + 3
}

/// A sort of more operands than one kernel may bind (XLA's `Sort17Inputs`: 34 arrays): the
/// operands the order reads are sorted together with their positions in the row, and every
/// output is then gathered from its operand through those positions, by kernels that each bind
/// as many operands as the device allows. When the compared operands do not fit one kernel
/// either, they are packed ([`pack`]) and only the positions move. Equal elements keep their
/// order either way.
fn by_permutation(ctx: &KernelCtx, scratch: &Scratch, full: Spec) -> Result<Vec<KernelStep>> {
    let n_ops = full.operands.len();
    let compared: Vec<usize> = (0..n_ops).filter(|&k| full.is_compared(ctx.m, k)).collect();
    let max = ctx.target.max_storage_buffers as usize;
    let packed = buffers_needed(compared.len() + 1) > max;
    let mut operands: Vec<Operand> = compared.iter().map(|&k| full.operands[k]).collect();
    operands.push(Operand { src: Source::Iota, dt: DType::S32 });
    let mut orig: Vec<Option<usize>> = compared.iter().map(|&k| Some(k)).collect();
    orig.push(None);
    let order = match full.order {
        Order::Key(mut key) => {
            key.operand = compared.iter().position(|&k| k == key.operand).expect("the key operand is compared");
            Order::Key(key)
        }
        other => other,
    };
    let dims = full.dims.clone();
    let mut spec = Spec { operands, order, orig, ..full };
    let mut steps = Vec::new();
    if packed {
        spec = pack(ctx, scratch, spec, &mut steps)?;
    }
    // The positions land in a scratch buffer, and so do the sorted keys (the gathers write every output).
    let outputs: Vec<OutBuf> = spec
        .operands
        .iter()
        .map(|op| OutBuf {
            path: Vec::new(),
            buf: scratch.buffer(dims.clone(), op.dt),
            dims: dims.clone(),
            dtype: op.dt,
        })
        .collect();
    let perm = outputs.last().expect("the positions").buf;
    let sub = KernelCtx {
        m: ctx.m,
        target: ctx.target,
        name: ctx.name.clone(),
        comp: ctx.comp,
        root: ctx.root,
        leaves: ctx.leaves.clone(),
        outputs,
        sources: ctx.sources.clone(),
    };
    steps.extend(sort_spec(&sub, scratch, spec.clone())?);
    // Gathers: as many operands per kernel as fit, one per kernel when a fused operand binds more.
    let per_kernel = ((max - 2) / 2).max(1);
    let all: Vec<usize> = (0..n_ops).collect();
    for (c, chunk) in all.chunks(per_kernel).enumerate() {
        match gather(ctx, &spec, perm, chunk, &format!("{}_gather{c}", ctx.name)) {
            Ok(step) => steps.push(step),
            Err(CodegenError::Unsupported { .. }) if chunk.len() > 1 => {
                for &k in chunk {
                    steps.push(gather(ctx, &spec, perm, &[k], &format!("{}_gather{c}_{k}", ctx.name))?);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(steps)
}

/// The compared operands of `spec` (a [`by_permutation`] sort) packed into one buffer per
/// type, for an order that reads more operands than a kernel may bind while moving them: the
/// merge passes then move only the positions and read the compared values through them (three
/// storage buffers and one per type). Kernels that each bind as many operands as the device
/// allows copy them in; a comparator sort is merge sorted, which is stable.
fn pack(ctx: &KernelCtx, scratch: &Scratch, spec: Spec, steps: &mut Vec<KernelStep>) -> Result<Spec> {
    let max = ctx.target.max_storage_buffers as usize;
    let n = spec.n_elems();
    let iota = spec.operands.len() - 1;
    let mut types: Vec<(DType, Vec<usize>)> = Vec::new();
    for k in 0..iota {
        let dt = spec.operands[k].dt;
        match types.iter_mut().find(|(t, _)| *t == dt) {
            Some((_, ks)) => ks.push(k),
            None => types.push((dt, vec![k])),
        }
    }
    let refuse = |reason: String| CodegenError::unsupported("sort", &spec.instr, reason);
    if types.len() + 3 > max {
        return Err(refuse(format!(
            "its order reads {iota} operands of {} types: sorting their positions binds {} storage buffers, the \
             device allows one kernel {max}",
            types.len(),
            types.len() + 3
        )));
    }
    let mut packed = Vec::new();
    for (dt, ks) in &types {
        let elems = n * ks.len() as u64;
        if elems > u32::MAX as u64 {
            return Err(refuse(format!("its {} compared {dt} operands hold more than 2^32 elements", ks.len())));
        }
        let buf = scratch.buffer(vec![elems as i64], *dt);
        for (j, &k) in ks.iter().enumerate() {
            let Some(orig) = spec.orig[k] else { unreachable!("compared operands have arguments") };
            packed.push((k, Packed { orig, dt: *dt, buf, elems, offset: (j as u64 * n) as u32 }));
        }
    }
    // Copies: as many operands per kernel as fit, one per kernel when a fused operand binds more.
    let per_kernel = ((max - 2) / 2).max(1);
    for (c, chunk) in packed.chunks(per_kernel).enumerate() {
        match pack_kernel(ctx, &spec, chunk, &format!("{}_pack{c}", ctx.name)) {
            Ok(step) => steps.push(step),
            Err(CodegenError::Unsupported { .. }) if chunk.len() > 1 => {
                for (j, one) in chunk.chunks(1).enumerate() {
                    steps.push(pack_kernel(ctx, &spec, one, &format!("{}_pack{c}_{j}", ctx.name))?);
                }
            }
            Err(e) => return Err(e),
        }
    }
    let operands = vec![spec.operands[iota]];
    let orig = vec![spec.orig[iota]];
    Ok(Spec { operands, orig, packed: packed.into_iter().map(|(_, p)| p).collect(), ..spec })
}

/// `packed[offset + i] = operand_k[i]` for the operands `ks` of a [`pack`]: one invocation per element,
/// each operand evaluated (and stored) as the sort's `sources` kernel would.
fn pack_kernel(ctx: &KernelCtx, spec: &Spec, ks: &[(usize, Packed)], name: &str) -> Result<KernelStep> {
    let n = spec.n_elems();
    let wg = ctx.target.loop_workgroup();
    let groups = grid(n.div_ceil(wg as u64));
    let mut em = Em::new(ctx.m, ctx.target, name);
    let f = em.frame(ctx.comp, ctx.leaves.clone());
    let i = invocation_index(&mut em.kb, wg, groups);
    em.kb.name(i, "i");
    let nn = em.kb.lit_u32(n as u32);
    let oob = em.kb.binary(Bo::GreaterEqual, i, nn);
    em.kb.return_if(oob);
    let idx = Index::from_linear(&spec.dims, i);
    for (k, p) in ks {
        let Source::Instr(id) = spec.operands[*k].src else { unreachable!("positions are not compared") };
        let g = em.bind_array(p.buf, p.elems, p.dt, true, false)?;
        let v = em.eval(f, id, &[], &idx)?;
        let at = em.kb.add_c(i, p.offset);
        em.store(g, at, v);
    }
    check_storage_limit(&em, ctx, spec, "packing its compared operands")?;
    finish(em, name, KernelKind::Loop, [wg, 1, 1], groups, ctx.sources.clone())
}

/// `out_k[i] = operand_k[i with its position along the sorted dimension replaced by perm[i]]` for
/// the sort's operands `ks`: one invocation per element.
fn gather(ctx: &KernelCtx, spec: &Spec, perm: BufferId, ks: &[usize], name: &str) -> Result<KernelStep> {
    let comp = ctx.m.comp(ctx.comp);
    let root = comp.instr(ctx.root);
    let n = spec.n_elems();
    let wg = ctx.target.loop_workgroup();
    let groups = grid(n.div_ceil(wg as u64));
    let mut em = Em::new(ctx.m, ctx.target, name);
    let f = em.frame(ctx.comp, ctx.leaves.clone());
    let p = em.bind_buffer(perm, DType::S32, false, false)?;
    let i = invocation_index(&mut em.kb, wg, groups);
    em.kb.name(i, "i");
    let nn = em.kb.lit_u32(n as u32);
    let oob = em.kb.binary(Bo::GreaterEqual, i, nn);
    em.kb.return_if(oob);
    // from = i - j * inner + perm[i] * inner, with j = i's own position along the sorted dimension.
    let pos = em.load(p, i, DType::S32);
    let pos = em.kb.bitcast(pos.h, STy::U32);
    let q = em.kb.div_c(i, spec.inner);
    let j = em.kb.rem_c(q, spec.row_len);
    let jn = em.kb.mul_c(j, spec.inner);
    let base = em.kb.binary(Bo::Subtract, i, jn);
    let from = spec.at(&mut em, base, pos);
    em.kb.name(from, "from");
    let idx = Index::from_linear(&spec.dims, from);
    for &k in ks {
        let out = &ctx.outputs[k];
        let id = root.operands[k];
        let g = em.bind_buffer(out.buf, out.dtype, true, false)?;
        match ctx.leaves.get(&id) {
            // A buffer is moved as it is; a computed operand is stored as the sort's `sources` kernel stores it.
            Some(crate::emit::elemental::Leaf::Buffer { buf, dims, dtype })
                if *dims == spec.dims && *dtype == out.dtype =>
            {
                let src = em.bind_buffer(*buf, *dtype, false, false)?;
                let v = em.load(src, from, *dtype);
                move_value(&mut em, g, i, v);
            }
            _ => {
                let v = em.eval(f, id, &[], &idx)?;
                em.store(g, i, v);
            }
        }
    }
    check_storage_limit(&em, ctx, spec, "gathering its outputs")?;
    finish(em, name, KernelKind::Loop, [wg, 1, 1], groups, ctx.sources.clone())
}

/// Sorts by `spec` into `ctx.outputs` with a multi-pass strategy (merge or radix).
fn sort_spec(ctx: &KernelCtx, scratch: &Scratch, spec: Spec) -> Result<Vec<KernelStep>> {
    let radix = match &spec.order {
        Order::Key(key) if spec.row_len >= RADIX_MIN_ROW => Some(radix::Plan::new(&spec, key)?),
        _ => None,
    };
    let passes = match &radix {
        Some(plan) => plan.passes,
        None => merge::passes(&spec),
    };

    // The buffer sets: A_0 (the operands), A_1 .. A_P alternating so that A_P is `fin`.
    let mut fin = Vec::new();
    let mut other = Vec::new();
    for (k, op) in spec.operands.iter().enumerate() {
        other.push(scratch.buffer(spec.dims.clone(), op.dt));
        match spec.topk {
            None => fin.push(ctx.outputs[k].buf),
            Some(_) => fin.push(scratch.buffer(spec.dims.clone(), op.dt)),
        }
    }
    let set = |p: u32| if (passes - p) % 2 == 0 { &fin } else { &other };
    let mut steps = Vec::new();
    let src = sources(ctx, &spec, set(0), &mut steps)?;
    let sets: Vec<Vec<BufferId>> = (0..=passes).map(|p| if p == 0 { src.clone() } else { set(p).clone() }).collect();
    match &radix {
        Some(plan) => plan.emit(ctx, &spec, scratch, &sets, &mut steps)?,
        None => merge::emit(ctx, &spec, &sets, &mut steps)?,
    }
    if let Some(k) = spec.topk {
        steps.push(take(ctx, &spec, &fin, k)?);
    }
    Ok(steps)
}

/// The buffers holding the operands: their own buffers where the fused computation passes them
/// through, else `into`, written by one kernel that evaluates them.
fn sources(ctx: &KernelCtx, spec: &Spec, into: &[BufferId], steps: &mut Vec<KernelStep>) -> Result<Vec<BufferId>> {
    let mut src = Vec::new();
    let mut computed = Vec::new();
    for (k, op) in spec.operands.iter().enumerate() {
        let direct = match op.src {
            Source::Instr(id) => match ctx.leaves.get(&id) {
                Some(crate::emit::elemental::Leaf::Buffer { buf, dims, dtype })
                    if *dims == spec.dims && *dtype == op.dt =>
                {
                    Some(*buf)
                }
                _ => None,
            },
            Source::Iota => None,
        };
        match direct {
            Some(b) => src.push(b),
            None => {
                src.push(into[k]);
                computed.push(k);
            }
        }
    }
    if computed.is_empty() {
        return Ok(src);
    }
    let n = spec.n_elems();
    let wg = ctx.target.loop_workgroup();
    let groups = grid(n.div_ceil(wg as u64));
    let name = format!("{}_operands", ctx.name);
    let mut em = Em::new(ctx.m, ctx.target, &name);
    let f = em.frame(ctx.comp, ctx.leaves.clone());
    let outs: Vec<_> =
        computed.iter().map(|&k| em.bind_buffer(into[k], spec.operands[k].dt, true, false)).collect::<Result<_>>()?;
    let i = invocation_index(&mut em.kb, wg, groups);
    em.kb.name(i, "i");
    let nn = em.kb.lit_u32(n as u32);
    let oob = em.kb.binary(Bo::GreaterEqual, i, nn);
    em.kb.return_if(oob);
    let idx = Index::from_linear(&spec.dims, i);
    for (&k, &g) in computed.iter().zip(&outs) {
        let v = match spec.operands[k].src {
            Source::Instr(id) => em.eval(f, id, &[], &idx)?,
            Source::Iota => {
                let q = em.kb.div_c(i, spec.inner);
                let pos = em.kb.rem_c(q, spec.row_len);
                Val { h: em.kb.bitcast(pos, STy::I32), dt: DType::S32 }
            }
        };
        em.store(g, i, v);
    }
    steps.push(finish(em, &name, KernelKind::Loop, [wg, 1, 1], groups, ctx.sources.clone())?);
    Ok(src)
}

/// Copies the first `k` of every sorted row into the top-k outputs.
fn take(ctx: &KernelCtx, spec: &Spec, sorted: &[BufferId], k: u32) -> Result<KernelStep> {
    let n = spec.rows as u64 * k as u64;
    let wg = ctx.target.loop_workgroup();
    let groups = grid(n.div_ceil(wg as u64).max(1));
    let name = format!("{}_take", ctx.name);
    let mut em = Em::new(ctx.m, ctx.target, &name);
    let mut pairs = Vec::new();
    for (o, &s) in ctx.outputs.iter().zip(sorted) {
        let src = em.bind_buffer(s, o.dtype, false, false)?;
        let dst = em.bind_buffer(o.buf, o.dtype, true, false)?;
        pairs.push((src, dst, o.dtype));
    }
    let i = invocation_index(&mut em.kb, wg, groups);
    let nn = em.kb.lit_u32(n as u32);
    let oob = em.kb.binary(Bo::GreaterEqual, i, nn);
    em.kb.return_if(oob);
    // i = (hi * k + j) * inner + lo, with row = hi * inner + lo.
    let q = em.kb.div_c(i, spec.inner);
    let j = em.kb.rem_c(q, k);
    let hi = em.kb.div_c(q, k);
    let lo = em.kb.rem_c(i, spec.inner);
    let row = em.kb.mul_c(hi, spec.inner);
    let row = em.kb.add_u(row, lo);
    let base = spec.row_base(&mut em, row, spec.row_len);
    let from = spec.at(&mut em, base, j);
    for (src, dst, dt) in pairs {
        let v = em.load(src, from, dt);
        move_value(&mut em, dst, i, v);
    }
    finish(em, &name, KernelKind::Loop, [wg, 1, 1], groups, ctx.sources.clone())
}

// ---- small control-flow helpers shared by the sort kernels ----------------------------------

/// `do { body(i) } while (++i < n)` with `i` from 0: for trip counts of at least one that every
/// invocation shares (loop-invariant values are computed before the loop). `max` bounds `n`, for
/// the kernel's loop budget ([`Em::enter_loop`]).
fn do_loop(em: &mut Em, name: &str, n: H, max: u64, body: &mut dyn FnMut(&mut Em, H) -> Result<()>) -> Result<()> {
    em.enter_loop(Some(max));
    let zero = em.kb.lit_u32(0);
    let counter = em.kb.local_init(name, STy::U32, zero);
    em.kb.begin_loop_body();
    let i = em.kb.load(counter);
    em.kb.name(i, name);
    body(em, i)?;
    let body_block = em.kb.end_block();
    em.kb.begin_block();
    let c = em.kb.load(counter);
    let next = em.kb.add_c(c, 1);
    em.kb.store(counter, next);
    let done = em.kb.binary(Bo::GreaterEqual, next, n);
    let continuing = em.kb.end_block();
    em.kb.stmt(naga::Statement::Loop { body: body_block, continuing, break_if: Some(done) });
    em.exit_loop();
    Ok(())
}

/// Stores element `v` at `linear` of buffer `g` exactly as it was read: sorting moves values, so
/// whatever a store does to computed values (flushing subnormal results) must not happen here.
fn move_value(em: &mut Em, g: naga::Handle<naga::GlobalVariable>, linear: H, v: Val) {
    let base = em.kb.global(g);
    let p = em.kb.access(base, linear);
    let s = ops::to_storage(&mut em.kb, v.h, v.dt);
    em.kb.store(p, s);
}

/// `if (cond) { body }`.
fn if_then(em: &mut Em, cond: H, body: &mut dyn FnMut(&mut Em) -> Result<()>) -> Result<()> {
    em.kb.begin_block();
    body(em)?;
    let accept = em.kb.end_block();
    em.kb.stmt(naga::Statement::If { condition: cond, accept, reject: naga::Block::new() });
    Ok(())
}

/// The push-constant bytes of `words`.
fn words(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Sets a kernel step's push constants.
fn with_push_constants(mut step: KernelStep, bytes: Vec<u8>) -> KernelStep {
    if let KernelStep::Kernel(k) = &mut step {
        k.push_constants = bytes;
    }
    step
}

/// Refuses a sort kernel that binds more storage buffers (with the one `finish` adds) than the
/// device allows one kernel; `what` says which kernel.
fn check_storage_limit(em: &Em, ctx: &KernelCtx, spec: &Spec, what: &str) -> Result<()> {
    let binds = crate::emit::storage_binds(&em.binds) + 1;
    if binds > ctx.target.max_storage_buffers as usize {
        return Err(CodegenError::unsupported(
            "sort",
            &spec.instr,
            format!(
                "{what} binds {binds} storage buffers, the device allows one kernel {}",
                ctx.target.max_storage_buffers
            ),
        ));
    }
    Ok(())
}
