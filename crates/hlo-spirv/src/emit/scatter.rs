//! Scatter kernels: one invocation per update element.
//!
//! The scatter's operand is first written into the output buffer (a `Copy`
//! step when it is a buffer, a `Fill` when it is a broadcast scalar
//! constant, a loop kernel otherwise). Then every update element computes its
//! operand index from the (fused) scatter indices; a window that does not fit
//! the operand entirely is skipped, as XLA specifies. The combiner is applied
//! with a native atomic where one exists (integer add/min/max/and/or/xor, f32
//! add with `shaderBufferFloat32AtomicAdd`), as a plain store for an
//! overwriting combiner, and otherwise with a compare-exchange loop on the
//! element's 32- or 64-bit pattern, which serves any combiner computation. 64-bit elements
//! need `shaderBufferInt64Atomics` for anything but an overwrite.

use crate::builder::{STy, H};
use crate::emit::elemental::{delinearize, linearize, Em, Index, Leaf};
use crate::emit::ops::{self, Val};
use crate::emit::{
    element_index, finish, grid, invocation_index, loop_fusion, ElementIndex, KernelCtx, KernelKind, KernelStep, OutBuf,
};
use crate::error::{CodegenError, Result};
use crate::hostio::array_data_to_device;
use hlo_ir::{BinaryOp, Computation, DType, InstrId, Op};
use naga::{BinaryOperator as Bo, Scalar};

/// How the combiner is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Combine {
    Store,
    Atomic(naga::AtomicFunction),
    Cas,
}

pub(crate) fn emit(ctx: &KernelCtx) -> Result<Vec<KernelStep>> {
    let comp = ctx.m.comp(ctx.comp);
    let root = comp.instr(ctx.root);
    let Op::Scatter { dims, to_apply, unique_indices, .. } = &root.op else { unreachable!("classified as scatter") };
    if root.operands.len() != 3 {
        return variadic(ctx);
    }
    let out =
        ctx.outputs.first().cloned().ok_or_else(|| CodegenError::unsupported("scatter", &root.name, "no output"))?;
    let dtype = out.dtype;
    let mut steps = init_output(ctx, comp, root.operands[0], &out)?;

    let op_shape = comp.instr(root.operands[0]).shape.as_array().expect("array").clone();
    let idx_shape = comp.instr(root.operands[1]).shape.as_array().expect("array").clone();
    let upd_shape = comp.instr(root.operands[2]).shape.as_array().expect("array").clone();
    let n_upd = upd_shape.num_elements();
    if n_upd == 0 {
        return Ok(steps);
    }
    let combine = combiner(ctx, ctx.m.comp(*to_apply), dtype, *unique_indices);
    let name = format!("{}_combine", ctx.name);
    let wg = ctx.target.loop_workgroup();
    let groups = grid(n_upd.div_ceil(wg as u64));
    let mut em = Em::new(ctx.m, ctx.target, &name);
    let f = em.frame(ctx.comp, ctx.leaves.clone());
    let storage = ops::storage_sty(dtype).ok_or_else(|| em.unsupported(root, format!("element type {dtype}")))?;
    em.check_type(root, dtype)?;
    let (elem, atomic) = match combine {
        Combine::Store => (storage.scalar(), false),
        Combine::Atomic(_) => (storage.scalar(), true),
        Combine::Cas if storage.bits() == 32 => (Scalar::U32, true),
        Combine::Cas if ctx.target.int64_atomics => (Scalar::U64, true),
        Combine::Cas => {
            return Err(
                em.unsupported(root, "a combiner on 64-bit elements without 64-bit atomics (shaderBufferInt64Atomics)")
            )
        }
    };
    let g = em.bind_array_as(out.buf, out.n_elems(), elem, true, atomic)?;
    // Indices and updates may go through texel fetches: the output, the one buffer this
    // kernel writes, is bound above, so it never is read that way.
    em.texel_reads = true;
    let u = invocation_index(&mut em.kb, wg, groups);
    em.kb.name(u, "u");
    if groups[0] as u64 * groups[1] as u64 * wg as u64 != n_upd {
        let n = em.kb.lit_u32(n_upd as u32);
        let oob = em.kb.binary(Bo::GreaterEqual, u, n);
        em.kb.return_if(oob);
    }
    let Target { inside, j } = target(&mut em, f, root, dims, &op_shape, &idx_shape, &upd_shape, 1, u)?;
    em.kb.name(inside, "in_bounds");
    em.kb.name(j, "j");
    em.kb.begin_block();
    let upd = em.eval(f, root.operands[2], &[], &Index::from_linear(&upd_shape.dims, u))?;
    let s = ops::to_storage(&mut em.kb, upd.h, dtype);
    em.at_element(g, j, |em, ptr| {
        match combine {
            Combine::Store => em.kb.store(ptr, s),
            Combine::Atomic(fun) => em.kb.stmt(naga::Statement::Atomic { pointer: ptr, fun, value: s, result: None }),
            Combine::Cas => cas_loop(em, ptr, storage, dtype, *to_apply, upd)?,
        }
        Ok(())
    })?;
    let accept = em.kb.end_block();
    em.kb.stmt(naga::Statement::If { condition: inside, accept, reject: naga::Block::new() });
    steps.push(finish(em, &name, KernelKind::Scatter, [wg, 1, 1], groups, ctx.sources.clone())?);
    Ok(steps)
}

/// A scatter of several operands (one combiner over tuples): one invocation per operand element,
/// which walks every update element in order and folds in those that land on it. Deterministic
/// and in the interpreter's order whatever the indices, but each invocation reads every update:
/// O(operand x updates) work. On a driver with a loop budget (lavapipe: 65,535 iterations) the
/// updates are folded in by several dispatches, each taking a chunk of them.
fn variadic(ctx: &KernelCtx) -> Result<Vec<KernelStep>> {
    let comp = ctx.m.comp(ctx.comp);
    let root = comp.instr(ctx.root);
    let n = (root.operands.len() - 1) / 2;
    if ctx.outputs.len() != n {
        return Err(CodegenError::unsupported("scatter", &root.name, "outputs do not match the operands"));
    }
    let array = |id: InstrId| {
        comp.instr(id)
            .shape
            .as_array()
            .cloned()
            .ok_or_else(|| CodegenError::unsupported("scatter", &root.name, "tuple operand"))
    };
    let op_shape = array(root.operands[0])?;
    let idx_shape = array(root.operands[n])?;
    let upd_shape = array(root.operands[n + 1])?;
    let n_out = op_shape.num_elements();
    let n_upd = upd_shape.num_elements();
    if n_out == 0 {
        return Ok(Vec::new());
    }
    if n_out > u32::MAX as u64 / 2 || n_upd > u32::MAX as u64 / 2 {
        return Err(CodegenError::unsupported("scatter", &root.name, "more than 2^31 elements"));
    }
    // Each dispatch folds in a chunk of the updates (the first from the operands, the others from
    // the outputs the previous one wrote), so that no invocation loops past the driver's budget.
    let chunk = ctx.target.max_loop_iterations.map_or(n_upd, |budget| (budget / 2).max(1)).max(1);
    let spec = Variadic { n, op_shape, idx_shape, upd_shape };
    // A combiner whose results each read only their own pair of arguments computes each output
    // on its own: past the device's bindings (an operand, an update and an output per component,
    // the indices and a status word) the components are split over kernels.
    let Op::Scatter { to_apply, .. } = &root.op else { unreachable!("classified as scatter") };
    let per_kernel = (ctx.target.max_storage_buffers as usize).saturating_sub(2) / 3;
    let all: Vec<usize> = (0..n).collect();
    let parts: Vec<&[usize]> = match 3 * n + 2 > ctx.target.max_storage_buffers as usize
        && per_kernel > 0
        && independent_components(ctx.m, *to_apply, n)
    {
        true => all.chunks(per_kernel).collect(),
        false => vec![&all[..]],
    };
    let mut steps = Vec::new();
    for part in parts {
        let mut start = 0;
        loop {
            let len = chunk.min(n_upd - start);
            steps.push(variadic_chunk(ctx, &spec, part, steps.len(), start, len)?);
            start += len;
            if start >= n_upd {
                break;
            }
        }
    }
    Ok(steps)
}

/// Whether result `k` of the combiner `(acc_0..acc_n-1, upd_0..upd_n-1) -> tuple` reads only
/// `acc_k` and `upd_k`, for every `k`.
fn independent_components(m: &hlo_ir::Module, to_apply: hlo_ir::CompId, n: usize) -> bool {
    let c = m.comp(to_apply);
    let root = c.root_instr();
    if !matches!(root.op, Op::Tuple) || root.operands.len() != n {
        return false;
    }
    root.operands.iter().enumerate().all(|(k, &out)| {
        let mut stack = vec![out];
        let mut seen = std::collections::HashSet::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            let instr = c.instr(id);
            if let Op::Parameter { number } = instr.op {
                if number as usize != k && number as usize != n + k {
                    return false;
                }
            }
            stack.extend(instr.operands.iter().copied());
        }
        true
    })
}

/// The shapes of a variadic scatter.
struct Variadic {
    n: usize,
    op_shape: hlo_ir::ArrayShape,
    idx_shape: hlo_ir::ArrayShape,
    upd_shape: hlo_ir::ArrayShape,
}

/// One dispatch of a variadic scatter computing the outputs `part`: every operand element folds in
/// the updates `start..start + len` that land on it, starting from the operands (`start == 0`) or
/// from the outputs. The combiner's arguments of the other components are zeros, never read.
fn variadic_chunk(
    ctx: &KernelCtx,
    spec: &Variadic,
    part: &[usize],
    c: usize,
    start: u64,
    len: u64,
) -> Result<KernelStep> {
    let comp = ctx.m.comp(ctx.comp);
    let root = comp.instr(ctx.root);
    let Op::Scatter { dims, to_apply, .. } = &root.op else { unreachable!("classified as scatter") };
    let Variadic { n, op_shape, idx_shape, upd_shape } = spec;
    let n = *n;
    let n_out = op_shape.num_elements();
    let name = format!("{}_variadic{c}", ctx.name);
    let wg = ctx.target.loop_workgroup();
    let groups = grid(n_out.div_ceil(wg as u64));
    let mut em = Em::new(ctx.m, ctx.target, &name);
    let f = em.frame(ctx.comp, ctx.leaves.clone());
    let mut outs = Vec::with_capacity(part.len());
    for &k in part {
        let o = &ctx.outputs[k];
        em.check_type(root, o.dtype)?;
        outs.push(em.bind_array(o.buf, o.n_elems(), o.dtype, true, false)?);
    }
    let ElementIndex { raw, clamped: i, exact } = element_index(&mut em.kb, wg, groups, n_out);
    em.kb.name(i, "i");
    let idx = Index::from_linear(&op_shape.dims, i);
    let mut init = Vec::with_capacity(part.len());
    for (&k, &g) in part.iter().zip(&outs) {
        init.push(match start {
            0 => em.eval(f, root.operands[k], &[], &idx)?,
            _ => em.load(g, i, ctx.outputs[k].dtype),
        });
    }
    let to_apply = *to_apply;
    let upd_ids: Vec<InstrId> = root.operands[n + 1..].to_vec();
    let dtypes: Vec<DType> = ctx.outputs.iter().map(|o| o.dtype).collect();
    let mut body = |em: &mut Em, point: &[H], accs: &[Val]| -> Result<Vec<Val>> {
        let u = em.kb.add_c(point[0], start as u32);
        let Target { inside, j } = target(em, f, root, dims, op_shape, idx_shape, upd_shape, n, u)?;
        let here = em.kb.binary(Bo::Equal, j, i);
        let hit = em.kb.binary(Bo::LogicalAnd, inside, here);
        let mut args: Vec<Val> = dtypes.iter().map(|&dt| zero_of(em, dt)).collect();
        for (&k, acc) in part.iter().zip(accs) {
            args[k] = *acc;
        }
        for (k, &id) in upd_ids.iter().enumerate() {
            args.push(match part.contains(&k) {
                true => em.eval(f, id, &[], &Index::from_linear(&upd_shape.dims, u))?,
                false => zero_of(em, dtypes[k]),
            });
        }
        let new = em.apply(to_apply, args)?;
        Ok(part.iter().zip(accs).map(|(&k, acc)| Val { h: em.kb.select(hit, new[k].h, acc.h), dt: acc.dt }).collect())
    };
    let res = em.fold(&[len as u32], init, &mut body)?;
    em.kb.begin_block();
    for (&g, v) in outs.iter().zip(res) {
        em.store_copy(g, i, v);
    }
    let store = em.kb.end_block();
    if exact {
        em.kb.stmt(naga::Statement::Block(store));
    } else {
        let nn = em.kb.lit_u32(n_out as u32);
        let ok = em.kb.binary(Bo::Less, raw, nn);
        em.kb.stmt(naga::Statement::If { condition: ok, accept: store, reject: naga::Block::new() });
    }
    finish(em, &name, KernelKind::Scatter, [wg, 1, 1], groups, ctx.sources.clone())
}

/// Where update element `u` goes: its operand element's linear index `j`, and whether its
/// window lies inside the operand (XLA skips windows that do not).
struct Target {
    inside: H,
    j: H,
}

#[allow(clippy::too_many_arguments)]
fn target(
    em: &mut Em,
    f: usize,
    root: &hlo_ir::Instr,
    dims: &hlo_ir::ScatterDims,
    op_shape: &hlo_ir::ArrayShape,
    idx_shape: &hlo_ir::ArrayShape,
    upd_shape: &hlo_ir::ArrayShape,
    n_inputs: usize,
    u: H,
) -> Result<Target> {
    let um = delinearize(&mut em.kb, &upd_shape.dims, u);
    let scatter_dims: Vec<usize> =
        (0..upd_shape.rank()).filter(|d| !dims.update_window_dims.contains(&(*d as i64))).collect();
    let ivd = dims.index_vector_dim as usize;
    let zero = em.kb.lit_u32(0);
    // The index into scatter_indices, index_vector_dim left for k.
    let mut g_idx: Vec<Option<H>> = vec![None; idx_shape.rank()];
    let mut it = scatter_dims.iter();
    for (d, slot) in g_idx.iter_mut().enumerate() {
        if d != ivd {
            *slot = it.next().map(|&sd| um[sd]);
        }
    }
    let rank = op_shape.rank();
    let mut start_i: Vec<Option<H>> = vec![None; rank];
    for (k, &od) in dims.scatter_dims_to_operand_dims.iter().enumerate() {
        let mut gi: Vec<H> = g_idx.iter().map(|h| h.unwrap_or(zero)).collect();
        if ivd < idx_shape.rank() {
            gi[ivd] = em.kb.lit_u32(k as u32);
        }
        let v = em.eval(f, root.operands[n_inputs], &[], &Index::from_multi(&idx_shape.dims, gi))?;
        start_i[od as usize] = Some(to_i32(em, v));
    }
    for (i, &obd) in dims.input_batching_dims.iter().enumerate() {
        let sbd = dims.scatter_indices_batching_dims[i] as usize;
        let gv = g_idx[sbd].unwrap_or(zero);
        start_i[obd as usize] = Some(em.kb.bitcast(gv, STy::I32));
    }
    // Window coordinates and sizes per operand dimension.
    let mut win = dims.update_window_dims.iter();
    let mut inside = em.kb.lit_bool(true);
    let mut full = Vec::with_capacity(rank);
    for d in 0..rank {
        let dd = d as i64;
        let inserted = dims.inserted_window_dims.contains(&dd) || dims.input_batching_dims.contains(&dd);
        let (w, wsize) = if inserted {
            (zero, 1i64)
        } else {
            let ud = *win.next().ok_or_else(|| em.unsupported(root, "malformed scatter dimension numbers"))? as usize;
            (um[ud], upd_shape.dims[ud])
        };
        match start_i[d] {
            Some(s) => {
                let lo = em.kb.lit_i32(0);
                let hi = em.kb.lit_i32((op_shape.dims[d] - wsize) as i32);
                let ge = em.kb.binary(Bo::GreaterEqual, s, lo);
                let le = em.kb.binary(Bo::LessEqual, s, hi);
                let ok = em.kb.binary(Bo::LogicalAnd, ge, le);
                inside = em.kb.binary(Bo::LogicalAnd, inside, ok);
                let su = em.kb.bitcast(s, STy::U32);
                full.push(em.kb.add_u(su, w));
            }
            None => {
                if wsize > op_shape.dims[d] {
                    inside = em.kb.lit_bool(false);
                }
                full.push(w);
            }
        }
    }
    let j = linearize(&mut em.kb, &op_shape.dims, &full);
    Ok(Target { inside, j })
}

/// A zero of `dt`, for combiner arguments whose results are not computed.
fn zero_of(em: &mut Em, dt: DType) -> Val {
    let t = ops::value_sty(dt).unwrap_or(STy::U32);
    Val { h: em.kb.lit_int(t, 0), dt }
}

fn to_i32(em: &mut Em, v: Val) -> H {
    match v.dt {
        DType::S32 | DType::S16 | DType::S8 => v.h,
        _ => ops::convert(&mut em.kb, v, DType::S32),
    }
}

/// The steps writing the scatter operand into the output buffer.
fn init_output(ctx: &KernelCtx, comp: &Computation, operand: InstrId, out: &OutBuf) -> Result<Vec<KernelStep>> {
    let bytes = crate::hostio::device_bytes(
        crate::hostio::DeviceStorage::of(out.dtype).expect("checked"),
        out.n_elems() as usize,
    );
    if let Some(Leaf::Buffer { buf, .. }) = ctx.leaves.get(&operand) {
        if *buf == out.buf {
            return Ok(Vec::new()); // Updated in place (`dus_in_place::in_place_operand`).
        }
        return Ok(vec![KernelStep::Copy { src: *buf, dst: out.buf, bytes }]);
    }
    if let Some(word) = broadcast_word(comp, operand) {
        return Ok(vec![KernelStep::Fill { buf: out.buf, word }]);
    }
    let init = KernelCtx {
        m: ctx.m,
        target: ctx.target,
        name: format!("{}_init", ctx.name),
        comp: ctx.comp,
        root: operand,
        leaves: ctx.leaves.clone(),
        outputs: vec![OutBuf { path: Vec::new(), ..out.clone() }],
        sources: ctx.sources.clone(),
    };
    loop_fusion::emit(&init, KernelKind::ScatterInit)
}

/// The device word of a scalar constant broadcast to the whole array, if `id` is one.
fn broadcast_word(comp: &Computation, id: InstrId) -> Option<u32> {
    let instr = comp.instr(id);
    match &instr.op {
        Op::Constant(lit) => {
            let data = lit.array_data()?;
            let dt = lit.array_shape()?.dtype;
            if data.len() != 1 || crate::hostio::DeviceStorage::of(dt)?.byte_size() != 4 {
                return None;
            }
            let bytes = array_data_to_device(data, dt)?;
            Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        }
        Op::Broadcast { .. } | Op::Copy => broadcast_word(comp, instr.operands[0]),
        _ => None,
    }
}

/// Chooses how to apply the combiner `to_apply(current, update)`.
fn combiner(ctx: &KernelCtx, c: &Computation, dtype: DType, unique: bool) -> Combine {
    if unique {
        // Every element is written by at most one invocation: load, combine, store.
        return if is_overwrite(c) { Combine::Store } else { Combine::Cas };
    }
    if is_overwrite(c) {
        return Combine::Store;
    }
    let root = c.root_instr();
    let (Some(&p0), Some(&p1)) = (c.params.first(), c.params.get(1)) else { return Combine::Cas };
    let Op::Binary(op) = root.op else { return Combine::Cas };
    let ops_ok = (root.operands[0] == p0 && root.operands[1] == p1)
        || (op.is_commutative() && root.operands[0] == p1 && root.operands[1] == p0);
    if !ops_ok {
        return Combine::Cas;
    }
    use naga::AtomicFunction as Af;
    // 64-bit integers take the same atomics where the device has them (the element is then a
    // native i64/u64 word).
    let int_width_ok = |d: DType| d.bit_width() <= 32 || (d.bit_width() == 64 && ctx.target.int64_atomics);
    let fun = match (op, dtype) {
        (BinaryOp::Add, DType::F32) if ctx.target.atomic_float_add => Af::Add,
        (BinaryOp::Add, DType::S32 | DType::U32) => Af::Add,
        (BinaryOp::Add, DType::S64 | DType::U64) if ctx.target.int64_atomics => Af::Add,
        (BinaryOp::Add | BinaryOp::Or | BinaryOp::Maximum, DType::Pred) => Af::InclusiveOr,
        (BinaryOp::Multiply | BinaryOp::And | BinaryOp::Minimum, DType::Pred) => Af::And,
        (BinaryOp::Xor, DType::Pred) => Af::ExclusiveOr,
        (BinaryOp::Maximum, d) if d.is_integer() && int_width_ok(d) => Af::Max,
        (BinaryOp::Minimum, d) if d.is_integer() && int_width_ok(d) => Af::Min,
        (BinaryOp::And, d) if d.is_integer() && int_width_ok(d) => Af::And,
        (BinaryOp::Or, d) if d.is_integer() && int_width_ok(d) => Af::InclusiveOr,
        (BinaryOp::Xor, d) if d.is_integer() && int_width_ok(d) => Af::ExclusiveOr,
        _ => return Combine::Cas,
    };
    Combine::Atomic(fun)
}

/// True when the combiner returns its second parameter (the update).
fn is_overwrite(c: &Computation) -> bool {
    c.params.len() == 2 && c.root == c.params[1]
}

/// `loop { old = atomicLoad(p); new = f(old, upd); if cmpxchg(p, old, new).exchanged { break } }`
/// The exchange is on the element's bits as a u32, or a u64 for 64-bit elements.
fn cas_loop(em: &mut Em, ptr: H, storage: STy, dtype: DType, to_apply: hlo_ir::CompId, upd: Val) -> Result<()> {
    let (bits_scalar, bits_ty) = if storage.bits() == 64 { (Scalar::U64, STy::U64) } else { (Scalar::U32, STy::U32) };
    let result_ty =
        em.kb.module.generate_predeclared_type(naga::PredeclaredType::AtomicCompareExchangeWeakResult(bits_scalar));
    em.kb.begin_loop_body();
    // Retries under contention: a trip count only the run decides.
    em.enter_loop(None);
    let old_bits = em.kb.load(ptr);
    let old_raw = if storage == bits_ty { old_bits } else { em.kb.bitcast(old_bits, storage) };
    let old = Val { h: ops::from_storage(&mut em.kb, old_raw, dtype), dt: dtype };
    // The combiner reads both as XLA:CPU does, subnormals flushed where it computes with them.
    let new = em.apply_loaded(to_apply, vec![old, upd]);
    em.exit_loop();
    let new = new?[0];
    // A subnormal combination is stored as zero, as XLA:CPU flushes arithmetic results.
    let new_h =
        if matches!(dtype, DType::F32 | DType::F64 | DType::BF16) { em.flush_results(new.h, dtype) } else { new.h };
    let new_raw = ops::to_storage(&mut em.kb, new_h, dtype);
    let new_bits = if storage == bits_ty { new_raw } else { em.kb.bitcast(new_raw, bits_ty) };
    let res = em.kb.expr(naga::Expression::AtomicResult { ty: result_ty, comparison: true });
    em.kb.stmt(naga::Statement::Atomic {
        pointer: ptr,
        fun: naga::AtomicFunction::Exchange { compare: Some(old_bits) },
        value: new_bits,
        result: Some(res),
    });
    let exchanged = em.kb.access_index(res, 1);
    em.kb.begin_block();
    em.kb.stmt(naga::Statement::Break);
    let brk = em.kb.end_block();
    em.kb.stmt(naga::Statement::If { condition: exchanged, accept: brk, reject: naga::Block::new() });
    let body = em.kb.end_block();
    em.kb.stmt(naga::Statement::Loop { body, continuing: naga::Block::new(), break_if: None });
    Ok(())
}
