//! Small-state while loops (Newton, bisection, Collatz, a solver run to tolerance): the whole loop in one
//! workgroup of one kernel.
//!
//! A loop whose state and intermediates are small pays far more for dispatching its body's kernels than for
//! computing them (~40 µs a dispatch on lavapipe, a few µs on a GPU, against nanoseconds of arithmetic). So when
//! every array the body touches is small, the loop runs inside one workgroup: each iteration evaluates the
//! condition (every invocation computes the same value from the same memory, so the exit is uniform), then the
//! body's instructions one phase at a time, the invocations striding over each result's elements, with a
//! workgroup barrier between phases. Intermediates that are read more than once or combine many elements
//! (fusions, reductions, dots) are materialised in scratch buffers, exactly as separate kernels would store
//! them, so results are the same as the multi-kernel path bit for bit. The new state is staged and then copied
//! over the old, because the body reads the old state while it computes the new; a large leaf that the body
//! only updates in a window ([`in_place_windows`]) is written in place instead.
//!
//! Drivers with a loop budget (lavapipe stops a shader's loops after 65,535 back-edges) get at most
//! [`LoopKernel::chunk`] iterations per dispatch; the kernel then writes a flag saying whether the loop must go
//! on, and the program re-dispatches it as the condition of a device loop (`TripCount::Device`) with an empty
//! body, which costs a host round trip only every few batches.

use crate::builder::{STy, H};
use crate::emit::elemental::{linearize, Em, Index, Leaf};
use crate::emit::ops::Val;
use crate::emit::{dus_in_place, finish, KernelKind, KernelStep, Scratch};
use crate::error::{CodegenError, Result};
use crate::target::Target;
use hlo_ir::{CompId, Computation, DType, InstrId, Module, Op, Shape};
use hlo_program::BufferId;
use naga::BinaryOperator as Bo;
use std::collections::HashMap;

/// Loops qualify when no array in the body or condition (fused computations included) has more elements.
pub(crate) const MAX_ARRAY_ELEMENTS: u64 = 4096;
/// ...and the elements of all their instructions together stay below this: the work of one iteration that one
/// workgroup (one core on lavapipe) does alone.
pub(crate) const MAX_ITERATION_ELEMENTS: u64 = 1 << 16;
/// Iterations of one dispatch at most, on any device: keeps a long loop from holding the GPU for seconds.
const MAX_CHUNK: u64 = 1 << 16;

/// One leaf of the loop state: where it lives and what it holds.
#[derive(Clone, Debug)]
pub(crate) struct StateLeaf {
    /// The path of the leaf in the loop state's tuple (empty for an array state).
    pub path: Vec<usize>,
    pub buf: BufferId,
    pub dims: Vec<i64>,
    pub dtype: DType,
}

/// Everything the emitter needs.
pub(crate) struct WorkgroupLoopCtx<'m> {
    pub m: &'m Module,
    pub target: &'m Target,
    pub name: String,
    pub cond: CompId,
    pub body: CompId,
    /// The state buffers, holding the initial state when the kernel first runs and the result at the end.
    pub state: Vec<StateLeaf>,
    /// The shape of the loop state (tuple or array).
    pub state_shape: &'m Shape,
    /// A `u32` the kernel sets to 1 when it stopped at its chunk limit with the loop not finished, else 0.
    pub more: BufferId,
    pub sources: Vec<String>,
}

/// The emitted kernel and how many iterations one dispatch runs at most.
pub(crate) struct LoopKernel {
    pub steps: Vec<KernelStep>,
    pub chunk: u64,
}

/// The body's fusions that update a state leaf in place: `(fusion, leaf)` where the body's result `leaf` is
/// the fusion, a window update of `get-tuple-element(param, leaf)` that [`dus_in_place::in_place_operand`]
/// accepts, and nothing else in the body reads that leaf. Such a leaf may be large: an iteration touches only
/// the window.
pub(crate) fn in_place_windows(m: &Module, body: CompId) -> Vec<(InstrId, usize)> {
    let comp = m.comp(body);
    let root = comp.root_instr();
    let mut found = Vec::new();
    if !matches!(root.op, Op::Tuple) {
        return found;
    }
    let live = crate::program::live_set(comp);
    for (leaf, &f) in root.operands.iter().enumerate() {
        let fusion = comp.instr(f);
        let Op::Fusion { calls, .. } = fusion.op else { continue };
        let callee = m.comp(calls);
        if !matches!(callee.root_instr().op, Op::DynamicUpdateSlice) {
            continue;
        }
        let Some(number) = dus_in_place::in_place_operand(callee) else { continue };
        if dus_in_place::sole_reader_of_state_leaf(comp, f, number) != Some(leaf) {
            continue;
        }
        let used_twice = root.operands.iter().filter(|&&o| o == f).count() != 1
            || comp.ids().any(|id| live.contains(&id) && id != comp.root && comp.instr(id).operands.contains(&f));
        if !used_twice {
            found.push((f, leaf));
        }
    }
    found
}

/// Whether the loop's arrays are small enough for one workgroup; `Err` says why not. Parameters, tuples and
/// tuple indexing compute nothing and are not counted, nor are the whole arrays of [`in_place_windows`] updates
/// (their windows are).
pub(crate) fn qualifies(m: &Module, cond: CompId, body: CompId) -> std::result::Result<(), String> {
    let windows: Vec<CompId> = in_place_windows(m, body)
        .iter()
        .filter_map(|&(f, _)| match m.comp(body).instr(f).op {
            Op::Fusion { calls, .. } => Some(calls),
            _ => None,
        })
        .collect();
    let mut total = 0u64;
    for comp in [cond, body] {
        let mut stack = vec![comp];
        let mut seen = vec![comp];
        while let Some(c) = stack.pop() {
            let computation = m.comp(c);
            let window = windows.contains(&c);
            for (id, instr) in computation.ids().zip(&computation.instrs) {
                let whole_array = window && (id == computation.root || id == computation.root_instr().operands[0]);
                let computes = !matches!(instr.op, Op::Parameter { .. } | Op::GetTupleElement { .. } | Op::Tuple);
                let in_place_fusion =
                    c == body && windows.iter().any(|&w| matches!(instr.op, Op::Fusion { calls, .. } if calls == w));
                if computes && !whole_array && !in_place_fusion {
                    for leaf in instr.shape.leaves() {
                        let n = leaf.num_elements();
                        if n > MAX_ARRAY_ELEMENTS {
                            return Err(format!("`{}` has {n} elements", instr.name));
                        }
                        total += n;
                    }
                    // What an instruction reads counts too: a reduce of a large array has a small result.
                    let window_operand = computation.root_instr().operands.first().copied();
                    for &o in &instr.operands {
                        if window && Some(o) == window_operand {
                            continue; // Read only through the updated window (`in_place_operand`).
                        }
                        for leaf in computation.instr(o).shape.leaves() {
                            if leaf.num_elements() > MAX_ARRAY_ELEMENTS {
                                return Err(format!(
                                    "`{}` reads an array of {} elements",
                                    instr.name,
                                    leaf.num_elements()
                                ));
                            }
                        }
                    }
                }
                match &instr.op {
                    Op::While { .. } | Op::Conditional { .. } => {
                        return Err(format!("`{}` is a nested {}", instr.name, instr.op.opcode().name()))
                    }
                    Op::Fusion { calls, .. } | Op::Call { to_apply: calls, .. } if !seen.contains(calls) => {
                        seen.push(*calls);
                        stack.push(*calls);
                    }
                    _ => {}
                }
            }
        }
    }
    if total > MAX_ITERATION_ELEMENTS {
        return Err(format!("an iteration computes {total} elements"));
    }
    Ok(())
}

/// Whether a body instruction gets its own phase and scratch buffer instead of being recomputed by its users.
fn materialise(instr: &hlo_ir::Instr, users: usize) -> bool {
    match instr.op {
        Op::Parameter { .. } | Op::GetTupleElement { .. } | Op::Tuple | Op::Constant(_) | Op::Iota { .. } => false,
        Op::Bitcast | Op::Reshape | Op::Broadcast { .. } | Op::Transpose { .. } | Op::Slice { .. } => users > 1,
        Op::Unary(_) | Op::Binary(_) | Op::Compare { .. } | Op::Select | Op::Convert | Op::Clamp => users > 1,
        _ => true,
    }
}

fn users_of(comp: &Computation) -> Vec<usize> {
    let mut users = vec![0usize; comp.instrs.len()];
    for instr in &comp.instrs {
        for o in &instr.operands {
            users[o.index()] += 1;
        }
    }
    users[comp.root.index()] += 1;
    users
}

/// Where the value at `path` of `id` comes from, looking through tuples and tuple indexing.
fn source(comp: &Computation, mut id: InstrId, mut path: Vec<usize>) -> (InstrId, Vec<usize>) {
    loop {
        let instr = comp.instr(id);
        match instr.op {
            Op::Tuple if !path.is_empty() => {
                id = instr.operands[path.remove(0)];
            }
            Op::GetTupleElement { index } => {
                path.insert(0, index as usize);
                id = instr.operands[0];
            }
            Op::Copy => id = instr.operands[0],
            _ => return (id, path),
        }
    }
}

/// The workgroup width: one subgroup. Barriers between phases then cost next to nothing (a GPU's subgroup runs
/// in lockstep; lavapipe switches no coroutines), which matters more than parallelism for arrays this small.
/// Measured on lavapipe (subgroup 8, `hlo-run bench -n 30`, medians): while_loop 0.74/0.23/0.46/0.70 ms,
/// bisection_root 1.25/0.62/1.43/2.42 ms and jacobi_solve 3.17/0.77/0.78/0.82 ms at widths 1/8/32/64.
/// `HLO_WORKGROUP_LOOP_WIDTH` overrides it, for measuring.
fn workgroup_width(target: &Target) -> u32 {
    let width = std::env::var("HLO_WORKGROUP_LOOP_WIDTH").ok().and_then(|v| v.parse::<u32>().ok());
    width.unwrap_or(target.subgroup_size).clamp(1, target.loop_workgroup())
}

/// Unrolled element strides at most: up to this many strides per invocation are straight-line code.
const MAX_UNROLLED_STRIDES: u64 = 8;

/// How a phase stores an element: as an arithmetic result (flushed like XLA:CPU's) or as a copy.
#[derive(Clone, Copy)]
enum Store {
    Result,
    Copy,
}

fn store(em: &mut Em, g: naga::Handle<naga::GlobalVariable>, how: Store, j: H, v: Val) {
    match how {
        Store::Result => em.store(g, j, v),
        Store::Copy => em.store_copy(g, j, v),
    }
}

/// Stores `eval(em, j)` into element `j` of `g` for every `j < n`, the `w` invocations of the workgroup striding
/// over the elements.
fn for_elements(
    em: &mut Em,
    lid: H,
    w: u32,
    n: u64,
    g: naga::Handle<naga::GlobalVariable>,
    how: Store,
    eval: impl FnMut(&mut Em, H) -> Result<Val>,
) -> Result<()> {
    for_each_element(em, lid, w, n, eval, |em, j, v| {
        store(em, g, how, j, v);
        Ok(())
    })
}

/// Runs `put(em, j, eval(em, j))` for every element `j < n`, the `w` invocations of the workgroup striding over
/// the elements.
fn for_each_element(
    em: &mut Em,
    lid: H,
    w: u32,
    n: u64,
    mut eval: impl FnMut(&mut Em, H) -> Result<Val>,
    mut put: impl FnMut(&mut Em, H, Val) -> Result<()>,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let strides = n.div_ceil(w as u64);
    if strides <= MAX_UNROLLED_STRIDES {
        // Straight-line code, so that values every element shares (a reduction broadcast over the result) are
        // computed once, not once per stride. An invocation past the end computes the last element again and
        // does not store it.
        let last = em.kb.lit_u32(n as u32 - 1);
        for s in 0..strides as u32 {
            let j = em.kb.add_c(lid, s * w);
            if (s as u64 + 1) * (w as u64) <= n {
                let v = eval(em, j)?;
                put(em, j, v)?;
            } else {
                let at = em.kb.min_u(j, last);
                let v = eval(em, at)?;
                let inside = em.kb.lt_c(j, n as u32);
                em.kb.begin_block();
                let stored = put(em, at, v);
                let accept = em.kb.end_block();
                stored?;
                em.kb.stmt(naga::Statement::If { condition: inside, accept, reject: naga::Block::new() });
            }
        }
        return Ok(());
    }
    // A do-while (the test in the continuing block): every invocation has a first element since n > w, and the
    // driver's loop budget counts one back-edge per element stride.
    let j = em.kb.local_init("j", STy::U32, lid);
    em.kb.begin_block();
    em.enter_loop(Some(strides));
    let jj = em.kb.load(j);
    let result = eval(em, jj).and_then(|v| put(em, jj, v));
    em.exit_loop();
    if let Err(e) = result {
        em.kb.end_block();
        return Err(e);
    }
    let next = em.kb.add_c(jj, w);
    em.kb.store(j, next);
    let block = em.kb.end_block();
    em.kb.begin_block();
    let jn = em.kb.load(j);
    let inside = em.kb.lt_c(jn, n as u32);
    let past = em.kb.unary(naga::UnaryOperator::LogicalNot, inside);
    let continuing = em.kb.end_block();
    em.kb.stmt(naga::Statement::Loop { body: block, continuing, break_if: Some(past) });
    Ok(())
}

/// Writes the window of in-place update `fusion` (see [`in_place_windows`]) into `state`, its loop-state buffer:
/// one element of the update per invocation stride, each read (through the fusion's same-window slices) before
/// it is written.
fn window_phase(em: &mut Em, at: Phase, fusion: &hlo_ir::Instr, state: &StateLeaf) -> Result<()> {
    let Op::Fusion { calls, .. } = fusion.op else { unreachable!("in_place_windows returns fusions") };
    let callee = em.m.comp(calls);
    let mut leaves = HashMap::new();
    for (k, &p) in callee.params.iter().enumerate() {
        leaves.insert(p, Leaf::Outer { frame: at.frame, instr: fusion.operands[k], path: Vec::new() });
    }
    let ff = em.frame(calls, leaves);
    let dus = callee.root_instr();
    let update_dims = callee.instr(dus.operands[1]).shape.as_array().map(|a| a.dims.clone()).unwrap_or_default();
    let n: u64 = update_dims.iter().map(|&d| d.max(0) as u64).product();
    let g = em.bind_buffer(state.buf, state.dtype, true, false)?;
    let mut starts = Vec::with_capacity(update_dims.len());
    for d in 0..update_dims.len() {
        starts.push(em.clamped_start(ff, dus, 2 + d, state.dims[d] - update_dims[d])?);
    }
    for_each_element(
        em,
        at.lid,
        at.w,
        n,
        |em, j| em.eval(ff, dus.operands[1], &[], &Index::from_linear(&update_dims, j)),
        |em, j, v| {
            let within = Index::from_linear(&update_dims, j).multi(&mut em.kb);
            let position: Vec<H> = starts.iter().zip(&within).map(|(&s, &w)| em.kb.add_u(s, w)).collect();
            let linear = linearize(&mut em.kb, &state.dims, &position);
            em.store(g, linear, v);
            Ok(())
        },
    )
}

/// The loop parameter as buffers.
fn state_leaf(shape: &Shape, state: &[StateLeaf], path: &mut Vec<usize>) -> Leaf {
    match shape {
        Shape::Tuple(elems) => Leaf::Tuple(
            elems
                .iter()
                .enumerate()
                .map(|(k, e)| {
                    path.push(k);
                    let l = state_leaf(e, state, path);
                    path.pop();
                    l
                })
                .collect(),
        ),
        _ => {
            let s = state.iter().find(|s| s.path == *path).expect("a state leaf for every array leaf");
            Leaf::Buffer { buf: s.buf, dims: s.dims.clone(), dtype: s.dtype }
        }
    }
}

pub(crate) fn emit(ctx: &WorkgroupLoopCtx, scratch: &Scratch) -> Result<LoopKernel> {
    let unsupported = |reason: &str| CodegenError::unsupported("while", &ctx.name, reason);
    let body = ctx.m.comp(ctx.body);
    let cond = ctx.m.comp(ctx.cond);
    let w = workgroup_width(ctx.target);
    let mut em = Em::new(ctx.m, ctx.target, &ctx.name);
    // Every buffer the kernel writes is bound writable before anything reads it, so that no load of it is
    // hoisted out of the loop or shared between phases.
    for s in &ctx.state {
        em.bind_buffer(s.buf, s.dtype, true, false)?;
    }
    let more = em.bind_buffer(ctx.more, DType::U32, true, false)?;
    let lid = em.kb.builtin(naga::BuiltIn::LocalInvocationIndex);
    let zero = em.kb.lit_u32(0);
    let param_leaf = state_leaf(ctx.state_shape, &ctx.state, &mut Vec::new());

    let done = em.kb.local_init("iterations", STy::U32, zero);
    let limit = em.kb.local("chunk", STy::U32);
    let before = em.loop_iterations();
    em.kb.begin_block();
    em.enter_loop(Some(1));
    let result = (|| -> Result<()> {
        // Out of budget: say so and stop; the program dispatches the kernel again.
        let d = em.kb.load(done);
        let lim = em.kb.load(limit);
        let spent = em.kb.binary(Bo::GreaterEqual, d, lim);
        em.kb.begin_block();
        let one = em.kb.lit_u32(1);
        store_first(&mut em, lid, more, one);
        em.kb.stmt(naga::Statement::Break);
        let accept = em.kb.end_block();
        em.kb.stmt(naga::Statement::If { condition: spent, accept, reject: naga::Block::new() });

        let cf = em.frame(ctx.cond, HashMap::new());
        em.set_leaf(cf, cond.params[0], param_leaf.clone());
        let c = em.eval(cf, cond.root, &[], &Index::scalar())?;
        let stop = em.kb.unary(naga::UnaryOperator::LogicalNot, c.h);
        em.kb.begin_block();
        store_first(&mut em, lid, more, zero);
        em.kb.stmt(naga::Statement::Break);
        let accept = em.kb.end_block();
        em.kb.stmt(naga::Statement::If { condition: stop, accept, reject: naga::Block::new() });

        let bf = em.frame(ctx.body, HashMap::new());
        em.set_leaf(bf, body.params[0], param_leaf.clone());
        let users = users_of(body);
        let live = crate::program::live_set(body);
        let windows = in_place_windows(ctx.m, ctx.body);
        for id in body.ids() {
            let instr = body.instr(id);
            if !live.contains(&id) || id == body.root || !materialise(instr, users[id.index()]) {
                continue;
            }
            if let Some(&(_, leaf)) = windows.iter().find(|(f, _)| *f == id) {
                let state = ctx.state.iter().find(|s| s.path == [leaf]).expect("a state leaf per tuple element");
                window_phase(&mut em, Phase { frame: bf, lid, w }, instr, state)?;
                em.kb.storage_barrier();
                let updated = Leaf::Buffer { buf: state.buf, dims: state.dims.clone(), dtype: state.dtype };
                em.set_leaf(bf, id, updated);
                continue;
            }
            let phase = Phase { frame: bf, lid, w };
            let leaf = materialise_phase(&mut em, scratch, phase, id, &instr.shape, &mut Vec::new())?;
            em.kb.storage_barrier();
            em.set_leaf(bf, id, leaf);
        }
        // Stage the new state, then copy it over the old.
        let mut copies = Vec::new();
        for s in &ctx.state {
            let (src, path) = source(body, body.root, s.path.clone());
            let src_instr = body.instr(src);
            if matches!(src_instr.op, Op::Parameter { .. }) && path == s.path {
                continue; // Passed through unchanged.
            }
            if windows.iter().any(|&(f, leaf)| f == src && s.path == [leaf]) {
                continue; // Updated in place.
            }
            let n = s.dims.iter().product::<i64>().max(0) as u64;
            let staged = scratch.buffer(s.dims.clone(), s.dtype);
            let g = em.bind_buffer(staged, s.dtype, true, false)?;
            let root = body.root;
            let spath = s.path.clone();
            let dims = s.dims.clone();
            for_elements(&mut em, lid, w, n, g, Store::Result, |em, j| {
                em.eval(bf, root, &spath, &Index::from_linear(&dims, j))
            })?;
            copies.push((staged, s.clone(), n));
        }
        em.kb.storage_barrier();
        for (staged, s, n) in copies {
            let dims = s.dims.clone();
            let g = em.bind_buffer(s.buf, s.dtype, true, false)?;
            let staged = Leaf::Buffer { buf: staged, dims: dims.clone(), dtype: s.dtype };
            for_elements(&mut em, lid, w, n, g, Store::Copy, |em, j| {
                em.eval_leaf(&staged, &[], &Index::from_linear(&dims, j))
            })?;
        }
        em.kb.storage_barrier();
        let d = em.kb.load(done);
        let d1 = em.kb.add_c(d, 1);
        em.kb.store(done, d1);
        Ok(())
    })();
    em.exit_loop();
    result?;
    let block = em.kb.end_block();
    let per_iteration = em.loop_iterations() - before;
    let chunk = match ctx.target.max_loop_iterations {
        // With a margin: the driver's count of back-edges is not exactly ours (a loop's header runs once more
        // than its body, to leave; measured 149-152 per iteration where we count 141), and the sentinel below
        // turns any overrun into an error instead of a silently shortened loop.
        Some(budget) => budget.saturating_sub(before + 1) / (per_iteration + per_iteration / 4 + 2),
        None => MAX_CHUNK,
    }
    .min(MAX_CHUNK);
    if chunk == 0 {
        return Err(unsupported("one iteration runs more loop iterations than the device's budget"));
    }
    em.set_loop_iterations(before + chunk * per_iteration + 1);
    // A budget overrun must fail the run, never shorten the loop unseen.
    em.kb.note_dynamic_loop();
    let lim = em.kb.lit_u32(chunk as u32);
    em.kb.store(limit, lim);
    em.kb.stmt(naga::Statement::Loop { body: block, continuing: naga::Block::new(), break_if: None });
    // One binding per state leaf, intermediate and constant (and the status word): past the device's limit the
    // loop runs as separate kernels instead.
    if crate::emit::storage_binds(&em.binds) + 1 > ctx.target.max_storage_buffers as usize {
        return Err(unsupported(&format!(
            "the loop kernel would bind {} buffers, the device allows {}",
            crate::emit::storage_binds(&em.binds) + 1,
            ctx.target.max_storage_buffers
        )));
    }
    let step = finish(em, &ctx.name, KernelKind::WorkgroupLoop, [w, 1, 1], [1, 1, 1], ctx.sources.clone())?;
    Ok(LoopKernel { steps: vec![step], chunk })
}

/// Invocation 0 stores `value` into word 0 of `g`.
fn store_first(em: &mut Em, lid: H, g: naga::Handle<naga::GlobalVariable>, value: H) {
    let zero = em.kb.lit_u32(0);
    let first = em.kb.binary(Bo::Equal, lid, zero);
    em.kb.begin_block();
    let base = em.kb.global(g);
    let ptr = em.kb.access(base, zero);
    em.kb.store(ptr, value);
    let accept = em.kb.end_block();
    em.kb.stmt(naga::Statement::If { condition: first, accept, reject: naga::Block::new() });
}

/// Where a phase runs: the body's frame and this invocation within a workgroup of `w`.
#[derive(Clone, Copy)]
struct Phase {
    frame: usize,
    lid: H,
    w: u32,
}

/// Computes every array leaf of body instruction `id` into new scratch buffers; returns the leaf that reads them.
fn materialise_phase(
    em: &mut Em,
    scratch: &Scratch,
    at: Phase,
    id: InstrId,
    shape: &Shape,
    path: &mut Vec<usize>,
) -> Result<Leaf> {
    Ok(match shape {
        Shape::Tuple(elems) => {
            let mut leaves = Vec::new();
            for (k, e) in elems.iter().enumerate() {
                path.push(k);
                let l = materialise_phase(em, scratch, at, id, e, path);
                path.pop();
                leaves.push(l?);
            }
            Leaf::Tuple(leaves)
        }
        Shape::Array(a) => {
            let buf = scratch.buffer(a.dims.clone(), a.dtype);
            let g = em.bind_buffer(buf, a.dtype, true, false)?;
            let p = path.clone();
            for_elements(em, at.lid, at.w, a.num_elements(), g, Store::Result, |em, j| {
                em.eval(at.frame, id, &p, &Index::from_linear(&a.dims, j))
            })?;
            Leaf::Buffer { buf, dims: a.dims.clone(), dtype: a.dtype }
        }
        Shape::Token => return Err(CodegenError::unsupported("while", em.kernel_name(), "a token in the loop body")),
    })
}
