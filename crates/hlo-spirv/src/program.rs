//! Program building: walks the fused entry computation and emits kernels, buffers and steps.
//!
//! Parameters become `Input` buffers (one per flattened leaf), constants
//! `Constant` buffers in device format, every kernel output a `Temp` buffer.
//! `tuple`, `get-tuple-element`, `copy`, `reshape` and layout-preserving
//! `bitcast` are aliases: device buffers always hold arrays in logical
//! row-major order, so none of them moves data. Everything else becomes one
//! or more kernels chosen by [`crate::emit::classify`].

use crate::emit::dus_in_place;
use crate::emit::elemental::Leaf;
use crate::emit::elementwise_loop::{self, Carried, WhileCtx};
use crate::emit::workgroup_loop;
use crate::emit::{self, Bind, KernelCtx, KernelKind, KernelStep, OutBuf};
use crate::error::{CodegenError, Result};
use crate::hostio::{array_data_to_device, device_bytes, DeviceStorage, HostIo};
use crate::target::Target;
use crate::{Compiled, KernelInfo};
use hlo_ir::{ArrayData, ArrayShape, CompId, Computation, DType, Instr, InstrId, Module, Op, Shape};
use hlo_program::{
    Access, Buffer, BufferId, BufferRole, BufferWindow, Conditional, DeviceCondition, Dispatch, Kernel, KernelId, Loop,
    Program, Step, TripCount,
};
use std::collections::{HashMap, HashSet};

/// The buffers holding an HLO value.
#[derive(Clone, Debug)]
enum Value {
    Leaf(BufferId),
    Tuple(Vec<Value>),
    Token,
}

impl Value {
    fn leaves(&self, out: &mut Vec<BufferId>) {
        match self {
            Value::Leaf(b) => out.push(*b),
            Value::Tuple(t) => t.iter().for_each(|v| v.leaves(out)),
            Value::Token => {}
        }
    }
}

/// Facts about a buffer the program itself does not keep.
#[derive(Clone, Debug)]
pub(crate) struct BufferInfo {
    pub dims: Vec<i64>,
    pub dtype: DType,
}

/// Trip counts up to this many iterations are found at compile time by simulating the loop's integer state
/// (the simulation costs time linear in the trips); longer loops run with a device condition.
const MAX_SIMULATED_TRIPS: u64 = 1 << 16;

/// Loops that are not elementwise and whose trip count is known are unrolled up to this many iterations...
const MAX_UNROLLED_TRIPS: u64 = 64;
/// ...and this many body instructions (of the fused module) in all; longer ones become a `TripCount::Static` step.
const MAX_UNROLLED_INSTRS: u64 = 2048;

/// Whether a loop of `trips` iterations over a body of `body_instrs` instructions is unrolled rather than run as
/// a static loop step. A loop step pays, per iteration, one copy per changed state leaf (inside a loop a copy is
/// an internal kernel) and its barriers; unrolling pays compile time and command-buffer size instead.
/// Measured with `hlo-run bench -n 20` on lavapipe (2 shared cores, medians, noisy):
/// - `hlo-samples/scan` (32 trips, 13-instruction body, 4 changed leaves): unrolled 1.67 ms, loop step 4.26 ms;
/// - a reduce-then-elementwise body of 15 instructions (`tests/control_flow.rs`, 2 changed leaves), unrolled vs
///   loop step: 4 trips 0.14/0.13 ms, 16 trips 0.35/0.41 ms, 64 trips 1.65/1.70 ms, 256 trips 10.2/6.4 ms,
///   1024 trips 45/36 ms, 4096 trips 147/124 ms.
///
/// So short loops stay unrolled and from a few hundred iterations on the loop step wins.
fn unroll_static_loop(trips: u64, body_instrs: u64) -> bool {
    trips <= MAX_UNROLLED_TRIPS && trips * body_instrs <= MAX_UNROLLED_INSTRS
}

struct Builder<'m> {
    m: &'m Module,
    target: &'m Target,
    program: Program,
    infos: Vec<BufferInfo>,
    kernels_info: Vec<KernelInfo>,
    modules: Vec<naga::Module>,
    /// Scalar integer constants by buffer, for trip counts.
    int_consts: HashMap<BufferId, i64>,
    constants_by_bytes: HashMap<(String, Vec<u8>), BufferId>,
    kernels_by_key: HashMap<u64, KernelId>,
    /// Step lists being built for the loops and conditionals we are inside, innermost last; steps go to the
    /// innermost one, or to `program.steps` when there is none.
    step_sinks: Vec<Vec<Step>>,
    /// While the body of a loop step is built: the body and its state buffers, which an in-place
    /// dynamic-update-slice may overwrite (see [`Builder::in_place_target`]).
    loop_state: Option<(CompId, Vec<BufferId>)>,
}

pub(crate) fn build(m: &Module, target: &Target) -> Result<Compiled> {
    let _span = tracing::info_span!("hlo-spirv-build", module = %m.name).entered();
    let mut b = Builder {
        m,
        target,
        program: Program::default(),
        infos: Vec::new(),
        kernels_info: Vec::new(),
        modules: Vec::new(),
        int_consts: HashMap::new(),
        constants_by_bytes: HashMap::new(),
        kernels_by_key: HashMap::new(),
        step_sinks: Vec::new(),
        loop_state: None,
    };
    let entry = m.entry_comp();
    let (inputs, args) = b.parameters(entry)?;
    let root = entry.root_instr();
    let root_value = b.computation(m.entry, args)?;
    let mut out_bufs = Vec::new();
    root_value.leaves(&mut out_bufs);
    let mut outputs = Vec::new();
    for (k, leaf) in root.shape.leaves().into_iter().enumerate() {
        let storage = DeviceStorage::of(leaf.dtype).ok_or_else(|| unsupported_type(root, leaf.dtype, target))?;
        outputs.push(HostIo {
            name: if root.shape.is_tuple() { format!("{}.{k}", root.name) } else { root.name.clone() },
            dtype: leaf.dtype,
            dims: leaf.dims.clone(),
            device: storage,
        });
    }
    if out_bufs.len() != outputs.len() {
        return Err(internal("entry result leaves do not match its shape"));
    }
    b.program.outputs = out_bufs;
    b.program.validate().map_err(|e| internal(&format!("invalid program: {e}")))?;
    Ok(Compiled {
        program: b.program,
        inputs,
        outputs,
        kernels_info: b.kernels_info,
        modules: b.modules,
        buffer_info: b.infos,
        target: target.clone(),
    })
}

fn internal(msg: &str) -> CodegenError {
    CodegenError::Internal { kernel: "<program>".into(), naga_error: msg.to_string() }
}

fn unsupported_type(instr: &Instr, dtype: DType, target: &Target) -> CodegenError {
    let reason = match dtype {
        DType::S64 | DType::U64 if !target.shader_int64 => "the device lacks shaderInt64".to_string(),
        DType::F64 if !target.shader_float64 => "the device lacks shaderFloat64".to_string(),
        _ => format!("element type {dtype} has no device representation in this backend"),
    };
    CodegenError::unsupported(instr.op.opcode().name(), &instr.name, format!("{dtype}: {reason}"))
}

/// Instructions the root depends on.
pub(crate) fn live_set(comp: &Computation) -> HashSet<InstrId> {
    let mut live = HashSet::new();
    let mut stack = vec![comp.root];
    while let Some(id) = stack.pop() {
        if live.insert(id) {
            stack.extend(comp.instr(id).operands.iter().copied());
        }
    }
    live
}

impl<'m> Builder<'m> {
    fn check_dtype(&self, instr: &Instr, dtype: DType) -> Result<DeviceStorage> {
        let ok = match dtype {
            DType::S64 | DType::U64 => self.target.shader_int64,
            DType::F64 | DType::C128 => self.target.shader_float64,
            _ => true,
        };
        match DeviceStorage::of(dtype) {
            Some(s) if ok => Ok(s),
            _ => Err(unsupported_type(instr, dtype, self.target)),
        }
    }

    fn new_buffer(&mut self, instr: &Instr, name: String, shape: &ArrayShape, role: BufferRole) -> Result<BufferId> {
        let storage = self.check_dtype(instr, shape.dtype)?;
        let n = shape.num_elements() as usize;
        let size = device_bytes(storage, n * DeviceStorage::words_per_element(shape.dtype));
        // Kernels bind arrays larger than maxStorageBufferRange as several windows (`Em::bind_array`)
        // or refuse them (`push_steps`); element indices are 32-bit.
        if n as u64 > u64::from(u32::MAX) {
            return Err(CodegenError::unsupported(
                instr.op.opcode().name(),
                &instr.name,
                format!("{shape} has {n} elements; element indices on the device are 32-bit"),
            ));
        }
        let id = BufferId(self.program.buffers.len() as u32);
        self.program.buffers.push(Buffer { size_bytes: size, role, name });
        self.infos.push(BufferInfo { dims: shape.dims.clone(), dtype: shape.dtype });
        Ok(id)
    }

    /// Temp buffers for every leaf of `shape`.
    fn temps(&mut self, instr: &Instr, shape: &Shape, name: &str) -> Result<Value> {
        Ok(match shape {
            Shape::Array(a) => Value::Leaf(self.new_buffer(instr, name.to_string(), a, BufferRole::Temp)?),
            Shape::Tuple(t) => {
                let mut v = Vec::new();
                for (k, s) in t.iter().enumerate() {
                    v.push(self.temps(instr, s, &format!("{name}.{k}"))?);
                }
                Value::Tuple(v)
            }
            Shape::Token => Value::Token,
        })
    }

    fn parameters(&mut self, entry: &Computation) -> Result<(Vec<HostIo>, Vec<Value>)> {
        let mut inputs = Vec::new();
        let mut args = Vec::new();
        for &p in &entry.params {
            let instr = entry.instr(p);
            let mut n = inputs.len() as u32;
            args.push(self.param_value(instr, &instr.shape, &instr.name, &mut n, &mut inputs)?);
        }
        Ok((inputs, args))
    }

    fn param_value(
        &mut self,
        instr: &Instr,
        shape: &Shape,
        name: &str,
        n: &mut u32,
        inputs: &mut Vec<HostIo>,
    ) -> Result<Value> {
        Ok(match shape {
            Shape::Array(a) => {
                let storage = self.check_dtype(instr, a.dtype)?;
                let id = self.new_buffer(instr, name.to_string(), a, BufferRole::Input(*n))?;
                *n += 1;
                inputs.push(HostIo { name: name.to_string(), dtype: a.dtype, dims: a.dims.clone(), device: storage });
                Value::Leaf(id)
            }
            Shape::Tuple(t) => {
                let mut v = Vec::new();
                for (k, s) in t.iter().enumerate() {
                    v.push(self.param_value(instr, s, &format!("{name}.{k}"), n, inputs)?);
                }
                Value::Tuple(v)
            }
            Shape::Token => Value::Token,
        })
    }

    /// Emits the steps computing `comp` on `args` (one value per parameter); returns its root's value.
    fn computation(&mut self, comp_id: CompId, args: Vec<Value>) -> Result<Value> {
        let comp = self.m.comp(comp_id);
        let live = live_set(comp);
        let mut values: HashMap<InstrId, Value> = HashMap::new();
        for (k, &p) in comp.params.iter().enumerate() {
            values.insert(p, args.get(k).cloned().ok_or_else(|| internal("missing argument"))?);
        }
        for id in comp.ids() {
            if live.contains(&id) && !values.contains_key(&id) {
                let v = self.instr(comp_id, id, &values)?;
                values.insert(id, v);
            }
        }
        values.remove(&comp.root).ok_or_else(|| internal("root has no value"))
    }

    fn leaf_of(&self, v: &Value) -> Result<Leaf> {
        Ok(match v {
            Value::Leaf(b) => {
                let info = &self.infos[b.0 as usize];
                Leaf::Buffer { buf: *b, dims: info.dims.clone(), dtype: info.dtype }
            }
            Value::Tuple(t) => Leaf::Tuple(t.iter().map(|e| self.leaf_of(e)).collect::<Result<_>>()?),
            Value::Token => Leaf::Tuple(Vec::new()),
        })
    }

    fn instr(&mut self, comp_id: CompId, id: InstrId, values: &HashMap<InstrId, Value>) -> Result<Value> {
        let entry: &'m Computation = self.m.comp(comp_id);
        let instr = entry.instr(id);
        let value = |id: InstrId| values.get(&id).cloned().ok_or_else(|| internal("operand has no value"));
        let v = match &instr.op {
            Op::Parameter { .. } => return Err(internal("unbound parameter")),
            Op::Constant(lit) => self.constant(instr, lit)?,
            Op::Tuple => Value::Tuple(instr.operands.iter().map(|&o| value(o)).collect::<Result<_>>()?),
            Op::GetTupleElement { index } => match value(instr.operands[0])? {
                Value::Tuple(t) => {
                    t.get(*index as usize).cloned().ok_or_else(|| internal("tuple index out of range"))?
                }
                _ => return Err(internal("get-tuple-element of a non-tuple")),
            },
            Op::Copy | Op::OptimizationBarrier | Op::Reshape => value(instr.operands[0])?,
            Op::Bitcast if is_trivial_bitcast(entry, instr) => value(instr.operands[0])?,
            Op::AfterAll | Op::AddDependency => match instr.op {
                Op::AddDependency => value(instr.operands[0])?,
                _ => Value::Token,
            },
            Op::Fusion { calls, .. } => {
                let callee = self.m.comp(*calls);
                let mut leaves = HashMap::new();
                for (k, &p) in callee.params.iter().enumerate() {
                    let v = value(instr.operands[k])?;
                    leaves.insert(p, self.leaf_of(&v)?);
                }
                match self.in_place_target(comp_id, id, *calls, values) {
                    Some(buf) => self.dus_in_place(instr, *calls, callee.root, leaves, buf)?,
                    None => self.kernel(instr, *calls, callee.root, leaves)?,
                }
            }
            Op::Call { to_apply, .. } => {
                let args = instr.operands.iter().map(|&o| value(o)).collect::<Result<Vec<_>>>()?;
                self.computation(*to_apply, args)?
            }
            Op::While { condition, body } => {
                let init = value(instr.operands[0])?;
                self.while_loop(comp_id, id, *condition, *body, init, &used_elements(entry, id))?
            }
            Op::Conditional { branches } => {
                let selector = value(instr.operands[0])?;
                let args = instr.operands[1..].iter().map(|&o| value(o)).collect::<Result<Vec<_>>>()?;
                self.conditional(instr, branches, selector, args)?
            }
            _ => {
                // A standalone op: evaluate it in its computation with its operands as leaves.
                let mut leaves = HashMap::new();
                for &o in &instr.operands {
                    let v = value(o)?;
                    leaves.insert(o, self.leaf_of(&v)?);
                }
                self.kernel(instr, comp_id, id, leaves)?
            }
        };
        Ok(v)
    }

    /// A [`Conditional`] step: the device runs only the chosen branch, each branch copying its result into the
    /// same buffers, allocated before the branches. A constant selector picks its branch at compile time.
    fn conditional(
        &mut self,
        instr: &'m Instr,
        branches: &[CompId],
        selector: Value,
        args: Vec<Value>,
    ) -> Result<Value> {
        let Value::Leaf(sel) = selector else { return Err(internal("conditional selector is not an array")) };
        let sel_dt = self.infos[sel.0 as usize].dtype;
        let n = branches.len();
        let taken = self.int_consts.get(&sel).map(|&v| {
            if sel_dt == DType::Pred {
                if v != 0 {
                    0
                } else {
                    1
                }
            } else if v < 0 || v as usize >= n {
                n - 1
            } else {
                v as usize
            }
        });
        if let Some(k) = taken {
            return self.computation(branches[k], vec![args[k].clone()]);
        }
        // The selector word is read as a u32 index: a pred is stored as 0 or 1 and selects branch 0 when true, so
        // its branches go in reverse order; a negative s32 reads as a huge index, which selects the last branch.
        let order: Vec<usize> = match sel_dt {
            DType::Pred if n == 2 => vec![1, 0],
            DType::S32 | DType::U32 => (0..n).collect(),
            _ => {
                return Err(CodegenError::unsupported(
                    "conditional",
                    &instr.name,
                    format!("a {sel_dt} selector with {n} branches"),
                ))
            }
        };
        let out = self.temps(instr, &instr.shape, &instr.name)?;
        let out_leaves = leaf_buffers(&out);
        let mut branch_steps = Vec::new();
        for k in order {
            let ((), steps) = self.nested_steps(|b| {
                let result = b.computation(branches[k], vec![args[k].clone()])?;
                let result_leaves = leaf_buffers(&result);
                if result_leaves.len() != out_leaves.len() {
                    return Err(internal("conditional branch result leaves do not match its shape"));
                }
                for (&src, &dst) in result_leaves.iter().zip(&out_leaves) {
                    b.copy_buffer(src, dst);
                }
                Ok(())
            })?;
            branch_steps.push(steps);
        }
        self.emit_step(Step::Conditional(Conditional { selector: sel, branches: branch_steps }));
        Ok(out)
    }
    fn constant(&mut self, instr: &Instr, lit: &hlo_ir::Literal) -> Result<Value> {
        fn go(b: &mut Builder, instr: &Instr, lit: &hlo_ir::Literal, name: &str) -> Result<Value> {
            match (&lit.shape, &lit.data) {
                (Shape::Array(a), hlo_ir::LiteralData::Array(data)) => {
                    b.check_dtype(instr, a.dtype)?;
                    let bytes = array_data_to_device(data, a.dtype)
                        .ok_or_else(|| unsupported_type(instr, a.dtype, b.target))?;
                    let id = b.new_buffer(instr, name.to_string(), a, BufferRole::Constant(bytes))?;
                    if data.len() == 1 {
                        let v = match data {
                            ArrayData::S32(v) => Some(v[0] as i64),
                            ArrayData::S64(v) => Some(v[0]),
                            ArrayData::U32(v) => Some(v[0] as i64),
                            ArrayData::Pred(v) => Some(v[0] as i64),
                            _ => None,
                        };
                        if let Some(v) = v {
                            b.int_consts.insert(id, v);
                        }
                    }
                    Ok(Value::Leaf(id))
                }
                (_, hlo_ir::LiteralData::Tuple(elems)) => {
                    let mut v = Vec::new();
                    for (k, e) in elems.iter().enumerate() {
                        v.push(go(b, instr, e, &format!("{name}.{k}"))?);
                    }
                    Ok(Value::Tuple(v))
                }
                _ => Ok(Value::Token),
            }
        }
        go(self, instr, lit, &instr.name)
    }

    /// The loop-state buffer a fused dynamic-update-slice or scatter may update in place, if any: the fusion is one
    /// [`dus_in_place::in_place_operand`] accepts, that operand is `get-tuple-element(param, k)` of the loop body
    /// being built, and nothing else in the body reads state leaf `k` (so the old value is dead once the update
    /// reads its window), nor the whole state tuple.
    fn in_place_target(
        &self,
        comp_id: CompId,
        id: InstrId,
        calls: CompId,
        values: &HashMap<InstrId, Value>,
    ) -> Option<BufferId> {
        let (body, state) = self.loop_state.as_ref()?;
        if *body != comp_id {
            return None;
        }
        let number = dus_in_place::in_place_operand(self.m.comp(calls))?;
        let comp = self.m.comp(comp_id);
        dus_in_place::sole_reader_of_state_leaf(comp, id, number)?;
        let Some(Value::Leaf(buf)) = values.get(&comp.instr(id).operands[number]) else { return None };
        if !state.contains(buf) {
            return None;
        }
        Some(*buf)
    }

    /// A fused dynamic-update-slice writing its window into `buf`, or a fused scatter combining into it (see
    /// [`Builder::in_place_target`]); its value is `buf` itself.
    fn dus_in_place(
        &mut self,
        instr: &'m Instr,
        comp: CompId,
        root: InstrId,
        leaves: HashMap<InstrId, Leaf>,
        buf: BufferId,
    ) -> Result<Value> {
        let info = self.infos[buf.0 as usize].clone();
        let scatter = matches!(self.m.comp(comp).instr(root).op, Op::Scatter { .. });
        let outputs = match scatter {
            true => vec![OutBuf { path: Vec::new(), buf, dims: info.dims.clone(), dtype: info.dtype }],
            false => Vec::new(),
        };
        let ctx = self.kernel_ctx(instr, comp, root, leaves, outputs);
        let steps = match scatter {
            true => emit::emit(&ctx, &emit::Scratch::new(self.program.buffers.len() as u32))?,
            false => dus_in_place::emit(&ctx, buf, &info.dims, info.dtype)?,
        };
        self.push_steps(steps)?;
        Ok(Value::Leaf(buf))
    }

    /// What an emitter needs to compute `root` of `comp` for `instr` into `outputs`.
    fn kernel_ctx(
        &self,
        instr: &Instr,
        comp: CompId,
        root: InstrId,
        leaves: HashMap<InstrId, Leaf>,
        outputs: Vec<OutBuf>,
    ) -> KernelCtx<'m> {
        KernelCtx {
            m: self.m,
            target: self.target,
            name: kernel_name(&instr.name),
            comp,
            root,
            leaves,
            outputs,
            sources: sources_of(self.m, instr),
        }
    }

    /// Emits the kernels computing `root` of `comp` for `instr`, with fresh output buffers.
    fn kernel(
        &mut self,
        instr: &'m Instr,
        comp: hlo_ir::CompId,
        root: InstrId,
        leaves: HashMap<InstrId, Leaf>,
    ) -> Result<Value> {
        let value = self.temps(instr, &instr.shape, &instr.name)?;
        let mut outputs = Vec::new();
        collect_outputs(&value, &instr.shape, &mut Vec::new(), &mut outputs);
        let ctx = self.kernel_ctx(instr, comp, root, leaves, outputs);
        let scratch = emit::Scratch::new(self.program.buffers.len() as u32);
        let steps = emit::emit(&ctx, &scratch)?;
        for (k, (dims, dtype)) in scratch.take().into_iter().enumerate() {
            let shape = ArrayShape::new(dtype, dims);
            self.new_buffer(instr, format!("{}.scratch{k}", instr.name), &shape, BufferRole::Temp)?;
        }
        self.push_steps(steps)?;
        Ok(value)
    }

    /// An HLO `while`: an in-shader loop when the loop is elementwise, else the body unrolled when that is
    /// cheaper (see [`unroll_static_loop`]), else a [`Loop`] step (see [`Builder::loop_step`]).
    fn while_loop(
        &mut self,
        comp_id: CompId,
        id: InstrId,
        cond: CompId,
        body: CompId,
        init_value: Value,
        used: &[bool],
    ) -> Result<Value> {
        let entry = self.m.comp(comp_id);
        let instr = entry.instr(id);
        let mut consts: Vec<Option<i64>> = Vec::new();
        if let Value::Tuple(init) = &init_value {
            consts = init
                .iter()
                .map(|v| match v {
                    Value::Leaf(b) => self.int_consts.get(b).copied(),
                    _ => None,
                })
                .collect();
            let elementwise = self.unless_unsupported(|b| {
                let plan = elementwise_loop::analyze(b.m, entry, id)?;
                b.elementwise_loop(instr, cond, body, init, &consts, plan, used)
            })?;
            if let Some(v) = elementwise {
                return Ok(v);
            }
        }
        let trips = match consts.is_empty() {
            true => None,
            false => elementwise_loop::trip_count(self.m, cond, body, &consts, MAX_SIMULATED_TRIPS),
        };
        if workgroup_loop::qualifies(self.m, cond, body).is_ok() {
            let init = init_value.clone();
            if let Some(v) = self.unless_unsupported(|b| b.workgroup_loop(instr, cond, body, init, trips))? {
                return Ok(v);
            }
        }
        let body_instrs = self.m.comp(body).instrs.len() as u64;
        if let Some(trips) = trips.filter(|&t| unroll_static_loop(t, body_instrs)) {
            let mut state = init_value;
            for _ in 0..trips {
                state = self.computation(body, vec![state])?;
            }
            return Ok(state);
        }
        self.loop_step(instr, cond, body, init_value, trips)
    }

    /// Runs one way of lowering an instruction; if it says `Unsupported`, forgets the buffers it made and returns
    /// `None` so that the caller tries the next way. It must not emit steps before it can fail.
    fn unless_unsupported<T>(&mut self, attempt: impl FnOnce(&mut Self) -> Result<T>) -> Result<Option<T>> {
        let made = (self.program.buffers.len(), self.infos.len());
        match attempt(self) {
            Ok(v) => Ok(Some(v)),
            Err(CodegenError::Unsupported { .. }) => {
                self.program.buffers.truncate(made.0);
                self.infos.truncate(made.1);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A `while` over small arrays as one workgroup-loop kernel (see [`workgroup_loop`]). The init values are
    /// copied into the state buffers; then one dispatch runs the whole loop when its known trip count fits in one
    /// chunk, else the kernel is the condition of a device loop with an empty body: each dispatch runs up to a
    /// chunk of iterations and sets the flag while the loop is not finished.
    fn workgroup_loop(
        &mut self,
        instr: &'m Instr,
        cond: CompId,
        body: CompId,
        init: Value,
        static_trips: Option<u64>,
    ) -> Result<Value> {
        let state = self.temps(instr, &instr.shape, &instr.name)?;
        let mut leaves = Vec::new();
        fn walk(v: &Value, path: &mut Vec<usize>, out: &mut Vec<(Vec<usize>, BufferId)>) -> bool {
            match v {
                Value::Leaf(b) => out.push((path.clone(), *b)),
                Value::Tuple(t) => {
                    for (k, e) in t.iter().enumerate() {
                        path.push(k);
                        let ok = walk(e, path, out);
                        path.pop();
                        if !ok {
                            return false;
                        }
                    }
                }
                Value::Token => return false,
            }
            true
        }
        if !walk(&state, &mut Vec::new(), &mut leaves) {
            return Err(CodegenError::unsupported("while", &instr.name, "a token in the loop state"));
        }
        let state_leaves: Vec<workgroup_loop::StateLeaf> = leaves
            .iter()
            .map(|(path, buf)| {
                let info = &self.infos[buf.0 as usize];
                workgroup_loop::StateLeaf { path: path.clone(), buf: *buf, dims: info.dims.clone(), dtype: info.dtype }
            })
            .collect();
        let init_leaves = leaf_buffers(&init);
        if init_leaves.len() != state_leaves.len() {
            return Err(internal("while init leaves do not match its shape"));
        }
        let more_shape = ArrayShape::new(DType::U32, vec![]);
        let more = self.new_buffer(instr, format!("{}.more", instr.name), &more_shape, BufferRole::Temp)?;
        let ctx = workgroup_loop::WorkgroupLoopCtx {
            m: self.m,
            target: self.target,
            name: kernel_name(&instr.name),
            cond,
            body,
            state: state_leaves.clone(),
            state_shape: &instr.shape,
            more,
            sources: sources_of(self.m, instr),
        };
        let scratch = emit::Scratch::new(self.program.buffers.len() as u32);
        let kernel = workgroup_loop::emit(&ctx, &scratch)?;
        for (k, (dims, dtype)) in scratch.take().into_iter().enumerate() {
            let shape = ArrayShape::new(dtype, dims);
            self.new_buffer(instr, format!("{}.scratch{k}", instr.name), &shape, BufferRole::Temp)?;
        }
        for (&src, s) in init_leaves.iter().zip(&state_leaves) {
            self.copy_buffer(src, s.buf);
        }
        if static_trips.is_some_and(|t| t < kernel.chunk) {
            self.push_steps(kernel.steps)?;
        } else {
            let ((), steps) = self.nested_steps(|b| b.push_steps(kernel.steps))?;
            let trip = TripCount::Device(DeviceCondition { steps, flag: more });
            self.emit_step(Step::Loop(Loop { body: Vec::new(), trip }));
        }
        Ok(state)
    }

    /// A `while` as a [`Loop`] step over one state buffer per leaf of the loop state: the init values are copied
    /// in, the condition (unless `static_trips` is known) writes the loop flag, and the body's steps end by copying
    /// each new leaf into its state buffer. The state buffers are the result.
    fn loop_step(
        &mut self,
        instr: &'m Instr,
        cond: CompId,
        body: CompId,
        init: Value,
        static_trips: Option<u64>,
    ) -> Result<Value> {
        let state = self.temps(instr, &instr.shape, &instr.name)?;
        let state_leaves = leaf_buffers(&state);
        let init_leaves = leaf_buffers(&init);
        if init_leaves.len() != state_leaves.len() {
            return Err(internal("while init leaves do not match its shape"));
        }
        // Always a copy: the init buffer may be read after the loop, or be an input or a constant.
        for (&src, &dst) in init_leaves.iter().zip(&state_leaves) {
            self.copy_buffer(src, dst);
        }
        let trip = match static_trips {
            Some(trips) => TripCount::Static(trips),
            None => {
                let (flag, steps) = self.nested_steps(|b| {
                    let first_new_buffer = b.program.buffers.len();
                    let Value::Leaf(pred) = b.computation(cond, vec![state.clone()])? else {
                        return Err(internal("while condition result is not an array"));
                    };
                    // A pred is one u32 word of 0 or 1 on the device, so a pred the condition computes serves as
                    // the flag itself; any other (a state leaf, a constant) is copied into one.
                    let fresh_temp = pred.0 as usize >= first_new_buffer
                        && matches!(b.program.buffers[pred.0 as usize].role, BufferRole::Temp);
                    if fresh_temp {
                        return Ok(pred);
                    }
                    let flag_shape = ArrayShape::new(DType::Pred, vec![]);
                    let flag = b.new_buffer(instr, format!("{}.flag", instr.name), &flag_shape, BufferRole::Temp)?;
                    b.copy_buffer(pred, flag);
                    Ok(flag)
                })?;
                TripCount::Device(DeviceCondition { steps, flag })
            }
        };
        let ((), body_steps) = self.nested_steps(|b| {
            let outer = b.loop_state.replace((body, state_leaves.clone()));
            let next = b.computation(body, vec![state.clone()]);
            b.loop_state = outer;
            b.write_back_state(instr, &leaf_buffers(&next?), &state_leaves)
        })?;
        self.emit_step(Step::Loop(Loop { body: body_steps, trip }));
        Ok(state)
    }

    /// Copies the body's result leaves `next` into the loop's `state` buffers. A leaf that is another leaf's state
    /// buffer (a swap, a shift) is copied to a temporary first, so no copy reads a buffer an earlier one overwrote.
    fn write_back_state(&mut self, instr: &Instr, next: &[BufferId], state: &[BufferId]) -> Result<()> {
        if next.len() != state.len() {
            return Err(internal("while body result leaves do not match its shape"));
        }
        let mut sources = next.to_vec();
        for (k, &src) in next.iter().enumerate() {
            if src != state[k] && state.contains(&src) {
                let info = self.infos[src.0 as usize].clone();
                let shape = ArrayShape::new(info.dtype, info.dims);
                let staged = self.new_buffer(instr, format!("{}.staged{k}", instr.name), &shape, BufferRole::Temp)?;
                self.copy_buffer(src, staged);
                sources[k] = staged;
            }
        }
        for (&src, &dst) in sources.iter().zip(state) {
            if src != dst {
                self.copy_buffer(src, dst);
            }
        }
        Ok(())
    }

    /// Copies the whole of `src` into `dst` (same size); nothing for empty arrays.
    fn copy_buffer(&mut self, src: BufferId, dst: BufferId) {
        let size_bytes = self.program.buffers[dst.0 as usize].size_bytes;
        if size_bytes > 0 {
            self.emit_step(Step::Copy { src, dst, size_bytes });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn elementwise_loop(
        &mut self,
        instr: &'m Instr,
        cond: CompId,
        body: CompId,
        init: &[Value],
        consts: &[Option<i64>],
        plan: elementwise_loop::LoopPlan,
        used: &[bool],
    ) -> Result<Value> {
        let mut leaves = Vec::new();
        let mut outputs = Vec::new();
        let mut result = Vec::new();
        let Shape::Tuple(elems) = &instr.shape else { unreachable!("checked by analyze") };
        for (k, c) in plan.carried.iter().enumerate() {
            leaves.push(self.leaf_of(&init[k])?);
            match c {
                Carried::Invariant => {
                    outputs.push(None);
                    result.push(init[k].clone());
                }
                // Final values nobody reads are not stored.
                _ if !used.get(k).copied().unwrap_or(true) => {
                    outputs.push(None);
                    result.push(Value::Token);
                }
                _ => {
                    let a = elems[k].as_array().expect("checked by analyze");
                    let buf = self.new_buffer(instr, format!("{}.{k}", instr.name), a, BufferRole::Temp)?;
                    outputs.push(Some((buf, a.dtype)));
                    result.push(Value::Leaf(buf));
                }
            }
        }
        let ctx = WhileCtx {
            m: self.m,
            target: self.target,
            name: kernel_name(&instr.name),
            cond,
            body,
            init: leaves,
            init_consts: consts.to_vec(),
            outputs,
            sources: sources_of(self.m, instr),
        };
        let steps = elementwise_loop::emit(&ctx, &plan)?;
        self.push_steps(steps)?;
        Ok(Value::Tuple(result))
    }

    fn push_steps(&mut self, steps: Vec<KernelStep>) -> Result<()> {
        // Refused before any step is emitted, so that a caller trying several lowerings
        // ([`Builder::unless_unsupported`]) can fall back to the next one.
        for s in &steps {
            if let KernelStep::Kernel(k) = s {
                if crate::emit::storage_binds(&k.binds) > self.target.max_storage_buffers as usize {
                    return Err(CodegenError::unsupported(
                        k.kind.to_string(),
                        &k.name,
                        format!(
                            "the kernel binds {} storage buffers, more than the device allows one kernel ({})",
                            crate::emit::storage_binds(&k.binds),
                            self.target.max_storage_buffers
                        ),
                    ));
                }
            }
        }
        for s in steps {
            match s {
                KernelStep::Copy { src, dst, bytes } => self.emit_step(Step::Copy { src, dst, size_bytes: bytes }),
                KernelStep::Fill { buf, word } => self.emit_step(Step::Fill { buffer: buf, word }),
                KernelStep::Kernel(k) => {
                    let mut buffers = Vec::new();
                    let mut windows = Vec::new();
                    for bind in &k.binds {
                        let (buffer, window) = match bind {
                            Bind::Buffer(b) | Bind::Texels(b) | Bind::WordTexels(b) => (*b, None),
                            &Bind::Window { buf, offset_bytes, size_bytes } => {
                                (buf, Some(BufferWindow { offset_bytes, size_bytes }))
                            }
                            Bind::Constant { name, bytes } => (self.constant_buffer(name, bytes), None),
                            Bind::Status(messages) => (self.status_buffer(&k.name, messages), None),
                        };
                        let bytes = window.map_or(self.program.buffers[buffer.0 as usize].size_bytes, |w| w.size_bytes);
                        if bytes > self.target.max_storage_buffer_range {
                            return Err(CodegenError::unsupported(
                                k.kind.to_string(),
                                &k.name,
                                format!(
                                    "`{}` ({bytes} bytes) is larger than one binding may be (the device's \
                                     maxStorageBufferRange is {}), and this kind of kernel cannot split it over several",
                                    self.program.buffers[buffer.0 as usize].name, self.target.max_storage_buffer_range
                                ),
                            ));
                        }
                        buffers.push(buffer);
                        windows.push(window);
                    }
                    // A texel fetch need not see a write of the same dispatch: a buffer read as texels is
                    // never also written by the kernel (the emitters that use them promise it; this keeps it so).
                    for (bind, &buffer) in k.binds.iter().zip(&buffers) {
                        let written = |(j, &b): (usize, &BufferId)| b == buffer && k.built.writable[j];
                        if matches!(bind, Bind::Texels(_) | Bind::WordTexels(_))
                            && buffers.iter().enumerate().any(written)
                        {
                            return Err(CodegenError::Internal {
                                kernel: k.name.clone(),
                                naga_error: format!("buffer b{} is both read as texels and written", buffer.0),
                            });
                        }
                    }
                    let storage = crate::emit::storage_binds(&k.binds);
                    if storage > self.target.max_storage_buffers as usize {
                        let windowed = windows.iter().flatten().count();
                        return Err(CodegenError::unsupported(
                            k.kind.to_string(),
                            &k.name,
                            format!(
                                "the kernel binds {} storage buffers{}, more than the device allows one kernel ({})",
                                storage,
                                if windowed > 0 {
                                    format!(" ({windowed} of them windows of arrays larger than one binding may be)")
                                } else {
                                    String::new()
                                },
                                self.target.max_storage_buffers
                            ),
                        ));
                    }
                    if windows.iter().all(Option::is_none) {
                        windows.clear();
                    }
                    let bindings: Vec<Access> = k
                        .built
                        .writable
                        .iter()
                        .zip(&k.built.texels)
                        .map(|(&w, &texels)| match (w, k.kind) {
                            (false, _) if texels == Some(4) => Access::ReadTexels,
                            (false, _) if texels.is_some() => Access::ReadWordTexels,
                            (false, _) => Access::Read,
                            (true, KernelKind::Scatter | KernelKind::SortPass | KernelKind::WorkgroupLoop) => {
                                Access::ReadWrite
                            }
                            (true, _) => Access::Write,
                        })
                        .collect();
                    let key = cache_key(&k.built.spirv, k.built.workgroup_size);
                    let kernel_id = match self.kernels_by_key.get(&key) {
                        Some(&id)
                            if self.program.kernels[id.0 as usize].spirv == k.built.spirv
                                && self.program.kernels[id.0 as usize].bindings == bindings =>
                        {
                            id
                        }
                        _ => {
                            let id = KernelId(self.program.kernels.len() as u32);
                            self.program.kernels.push(Kernel {
                                name: k.name.clone(),
                                spirv: k.built.spirv.clone(),
                                entry_point: "main".into(),
                                bindings,
                                workgroup_size: k.built.workgroup_size,
                                push_constant_bytes: k.built.push_constant_bytes,
                                cache_key: key,
                            });
                            self.kernels_info.push(KernelInfo {
                                name: k.name.clone(),
                                kind: k.kind,
                                sources: k.sources.clone(),
                                why: k.why.clone(),
                                tile_key: k.tile_key.clone(),
                            });
                            self.modules.push(k.built.module);
                            self.kernels_by_key.insert(key, id);
                            id
                        }
                    };
                    self.emit_step(Step::Dispatch(Dispatch {
                        kernel: kernel_id,
                        buffers,
                        windows,
                        groups: k.groups,
                        push_constants: k.push_constants.clone(),
                    }));
                }
            }
        }
        Ok(())
    }

    /// Appends `step` to the innermost step list being built.
    fn emit_step(&mut self, step: Step) {
        match self.step_sinks.last_mut() {
            Some(sink) => sink.push(step),
            None => self.program.steps.push(step),
        }
    }

    /// Runs `build` with its steps collected into a fresh list (a loop body, a condition, a branch), returned
    /// beside its result.
    fn nested_steps<T>(&mut self, build: impl FnOnce(&mut Self) -> Result<T>) -> Result<(T, Vec<Step>)> {
        self.step_sinks.push(Vec::new());
        let result = build(self);
        let steps = self.step_sinks.pop().expect("pushed above");
        Ok((result?, steps))
    }

    /// A zeroed status word for one dispatch of a kernel with device checks. The zeroing fill goes to the top
    /// level of the program, before the structure being built: a fill inside a loop would erase a failure that an
    /// earlier iteration reported.
    fn status_buffer(&mut self, kernel: &str, messages: &[String]) -> BufferId {
        let id = BufferId(self.program.buffers.len() as u32);
        self.program.buffers.push(Buffer { size_bytes: 4, role: BufferRole::Temp, name: format!("{kernel}.status") });
        self.infos.push(BufferInfo { dims: vec![1], dtype: DType::U32 });
        self.program.steps.push(Step::Fill { buffer: id, word: 0 });
        self.program.checks.push(hlo_program::StatusBuffer {
            buffer: id,
            kernel: kernel.to_string(),
            messages: messages.to_vec(),
        });
        id
    }

    fn constant_buffer(&mut self, name: &str, bytes: &[u8]) -> BufferId {
        let key = (name.to_string(), bytes.to_vec());
        if let Some(&b) = self.constants_by_bytes.get(&key) {
            return b;
        }
        let id = BufferId(self.program.buffers.len() as u32);
        self.program.buffers.push(Buffer {
            size_bytes: bytes.len() as u64,
            role: BufferRole::Constant(bytes.to_vec()),
            name: name.to_string(),
        });
        self.infos.push(BufferInfo { dims: vec![(bytes.len() / 4) as i64], dtype: DType::U32 });
        self.constants_by_bytes.insert(key, id);
        id
    }
}

/// The buffers of a value's leaves, in flattened order.
fn leaf_buffers(value: &Value) -> Vec<BufferId> {
    let mut leaves = Vec::new();
    value.leaves(&mut leaves);
    leaves
}

/// Which elements of tuple-shaped `id`'s value are read (all of them unless only through
/// `get-tuple-element`).
fn used_elements(comp: &Computation, id: InstrId) -> Vec<bool> {
    let n = comp.instr(id).shape.as_tuple().map(|t| t.len()).unwrap_or(0);
    if comp.root == id {
        return vec![true; n];
    }
    let mut used = vec![false; n];
    for it in &comp.instrs {
        if !it.operands.contains(&id) {
            continue;
        }
        match it.op {
            Op::GetTupleElement { index } if (index as usize) < n => used[index as usize] = true,
            _ => return vec![true; n],
        }
    }
    used
}

/// True when a bitcast in the entry is a plain reshape of row-major data.
fn is_trivial_bitcast(comp: &Computation, instr: &Instr) -> bool {
    let src = comp.instr(instr.operands[0]);
    match (instr.shape.as_array(), src.shape.as_array()) {
        (Some(a), Some(b)) => a.dtype == b.dtype && a.is_row_major() && b.is_row_major(),
        _ => false,
    }
}

fn collect_outputs(v: &Value, shape: &Shape, path: &mut Vec<usize>, out: &mut Vec<OutBuf>) {
    match (v, shape) {
        (Value::Leaf(b), Shape::Array(a)) => {
            out.push(OutBuf { path: path.clone(), buf: *b, dims: a.dims.clone(), dtype: a.dtype })
        }
        (Value::Tuple(t), Shape::Tuple(s)) => {
            for (k, (e, es)) in t.iter().zip(s).enumerate() {
                path.push(k);
                collect_outputs(e, es, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn sources_of(m: &Module, instr: &Instr) -> Vec<String> {
    match &instr.op {
        Op::Fusion { calls, .. } => {
            let c = m.comp(*calls);
            c.instrs.iter().filter(|i| !matches!(i.op, Op::Parameter { .. })).map(|i| i.name.clone()).collect()
        }
        _ => vec![instr.name.clone()],
    }
}

fn kernel_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// FNV-1a over the SPIR-V words and the workgroup size: stable across runs and toolchains,
/// so the runtime can key an on-disk pipeline cache with it.
fn cache_key(words: &[u32], wg: [u32; 3]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in words.iter().chain(&wg) {
        for b in w.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
