//! An [`Executable`]: a [`Program`] turned into pipelines, buffers and one recorded command buffer.
//!
//! Build (once): validate the program, place buffers ([`crate::memory`]), upload constants, create one compute
//! pipeline per kernel through the on-disk pipeline cache, allocate one descriptor set per dispatch, and record
//! every step into a single command buffer with barriers only where [`crate::hazard`] says they are needed.
//! Control flow ([`crate::control`]) splits that recording into a small *plan*: command buffers to submit, some
//! of them repeatedly (batches of loop iterations), and the few points where the host must read a word the
//! device computed (between batches of a device loop). A straight-line program is still one command buffer.
//!
//! Run (every call): write the inputs into mapped memory (or staging buffers), submit the recorded command
//! buffer(s), wait on the executable's timeline semaphore, read the outputs from mapped memory (or readback
//! buffers).
//! Every submission waits on the previous one's semaphore value, so submissions of one executable never
//! overlap on the device, and the host functions that touch buffers wait for the last submission first.

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ash::vk;
use gpu_allocator::MemoryLocation;
use hlo_program::{walk_steps, BufferId, BufferRole, DeviceCondition, Loop, Program, Step, TripCount};

use crate::array::{ArrayInput, ArrayStorage, DeviceArray, SyncPoint, Timeline};
use crate::context::Context;
use crate::control::{
    batch_cap, contains_device_loop, internal_groups, internal_kernels, recorded_commands, step_key, ControlPlan, Gate,
    StepKey, ALWAYS_ON, GATE_LOOP_INIT, GATE_LOOP_STEP, GATE_SELECT, INLINE_STATIC_COMMANDS, MAX_BATCH_REPEATS,
    MAX_UNROLLED_COMMANDS, SLOT_BYTES,
};
use crate::error::{Result, VulkanError};
use crate::hazard::{Region, Tracker};
use crate::memory::{padded_size, place_temps, temp_intervals, DeviceBuffer};
use crate::pipeline_cache;

/// The SPIR-V magic number, the first word of every module.
const SPIRV_MAGIC: u32 = 0x0723_0203;

/// How to build an [`Executable`].
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Directory of the on-disk pipeline cache (the CLI uses `~/.cache/hlo-vulkan`); `None` for no disk cache.
    pub pipeline_cache_dir: Option<PathBuf>,
    /// Move inputs, constants and outputs through staging buffers even when device memory is mappable, as on
    /// a discrete GPU; lets the staging paths be tested on devices (lavapipe) that never need them.
    pub force_staging: bool,
    /// Write a GPU timestamp after every step so [`Executable::last_step_times`] can say where a call's time
    /// goes. Off by default: the timestamps add work to every replay.
    pub profile: bool,
}

/// GPU time of one step of the last call, from [`Executable::last_step_times`].
#[derive(Clone, Debug, PartialEq)]
pub struct StepTime {
    /// Index into the program's steps.
    pub step: usize,
    /// The kernel's name for a dispatch, `fill` or `copy` otherwise.
    pub name: String,
    /// Device time between the end of the previous step and the end of this one.
    pub nanos: f64,
}

/// A submitted run; pass it to [`Executable::wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// What building an executable produced and cost; printed by `hlo-run --stats`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildStats {
    pub n_kernels: usize,
    pub n_dispatches: usize,
    pub n_fills: usize,
    pub n_copies: usize,
    /// Pipeline barriers recorded into the command buffer (the final one for host reads included).
    pub n_barriers: usize,
    /// Loops and conditionals anywhere in the program.
    pub n_loops: usize,
    pub n_conditionals: usize,
    /// Command buffers recorded for a call: 1 for a straight-line program, more with loop batches.
    pub n_command_buffers: usize,
    /// Sum of the sizes of all logical buffers of the program.
    pub logical_bytes: u64,
    /// Sum of the sizes of the temporaries alone.
    pub temp_logical_bytes: u64,
    /// Bytes of arena memory the temporaries were placed in (after sharing by liveness).
    pub temp_assigned_bytes: u64,
    /// Bytes assigned to the program's buffers: inputs, constants, and temporaries after sharing.
    pub assigned_bytes: u64,
    /// Device memory this executable holds, staging and readback buffers included.
    pub device_bytes: u64,
    pub n_arenas: usize,
    pub pipeline_time: Duration,
    /// Pipelines the driver found in the pipeline cache; `None` if the device cannot tell.
    pub pipeline_cache_hits: Option<usize>,
    /// Bytes of pipeline cache loaded from disk (0 when there was no usable file).
    pub pipeline_cache_loaded_bytes: usize,
    pub build_time: Duration,
}

impl fmt::Display for BuildStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "kernels: {}, dispatches: {}, fills: {}, copies: {}, barriers: {}",
            self.n_kernels, self.n_dispatches, self.n_fills, self.n_copies, self.n_barriers
        )?;
        if self.n_loops + self.n_conditionals > 0 {
            writeln!(
                f,
                "control flow: {} loops, {} conditionals, {} command buffers",
                self.n_loops, self.n_conditionals, self.n_command_buffers
            )?;
        }
        writeln!(
            f,
            "memory: {} logical bytes, {} assigned ({} temp bytes in {} after sharing, {} arenas), {} device bytes",
            self.logical_bytes,
            self.assigned_bytes,
            self.temp_logical_bytes,
            self.temp_assigned_bytes,
            self.n_arenas,
            self.device_bytes
        )?;
        let hits = self.pipeline_cache_hits.map_or("unknown".to_owned(), |h| h.to_string());
        write!(
            f,
            "pipelines: {:.3} ms, cache hits: {hits}, cache loaded: {} bytes; build: {:.3} ms",
            self.pipeline_time.as_secs_f64() * 1e3,
            self.pipeline_cache_loaded_bytes,
            self.build_time.as_secs_f64() * 1e3
        )
    }
}

/// What the last call of [`Executable::submit`] (or [`Executable::run`]) did on the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Command buffers submitted.
    pub submits: u64,
    /// Times the host blocked on the device to read a decision (a device loop's word between batches, or the
    /// selector or flag of a host-driven structure). Never inside a batch.
    pub host_waits: u64,
    /// Submissions of device-loop batches (a subset of `submits`).
    pub batch_submits: u64,
}

/// One thing a call does on the host, in order; see [`crate::control`].
enum HostOp {
    Submit(vk::CommandBuffer),
    Repeat {
        times: u64,
        ops: Vec<HostOp>,
    },
    /// `batches[i]` runs `2^i` predicated iterations; the host reads control word `word` (the loop's sticky
    /// active bit) after each group of submissions.
    DeviceLoop {
        word: u32,
        batches: Vec<vk::CommandBuffer>,
    },
    /// The preceding submission copied the selector into control word `word`.
    Switch {
        word: u32,
        branches: Vec<Vec<HostOp>>,
    },
    /// `cond` ends by copying the flag into control word `word`.
    While {
        cond: Vec<HostOp>,
        word: u32,
        body: Vec<HostOp>,
    },
}

/// The predication state of an executable whose program has control flow.
struct Control {
    plan: ControlPlan,
    /// Host-visible words: predicates and host-read decisions (see [`ControlPlan`]).
    control_buf: usize,
    /// Indirect dispatch arguments, one slot per predicated leaf step.
    args_buf: usize,
    /// [`ControlPlan::table`], uploaded once.
    table_buf: usize,
    gate_pipeline: usize,
    fill_pipeline: usize,
    copy_pipeline: usize,
}

/// A command buffer being recorded, with the accesses since its last barrier.
struct Recording {
    cb: vk::CommandBuffer,
    tracker: Tracker,
    bound_pipeline: Option<vk::Pipeline>,
}

/// A compiled, recorded program; see the module docs.
pub struct Executable {
    ctx: Arc<Context>,
    force_staging: bool,
    pipelines: Vec<KernelPipeline>,
    descriptor_pool: vk::DescriptorPool,
    /// Views of the buffers bound as uniform texel buffers, destroyed with the executable.
    buffer_views: Vec<vk::BufferView>,
    /// One descriptor set per dispatch that binds something, per predicated fill or copy and per gate, keyed by
    /// the step.
    descriptor_sets: HashMap<StepKey, vk::DescriptorSet>,
    command_pool: vk::CommandPool,
    /// What a call submits and decides.
    plan: Vec<HostOp>,
    /// The semaphore value the last submission of the plan signals.
    main_last: u64,
    control: Option<Control>,
    run_stats: RunStats,
    /// Small command buffers for [`Executable::copy_output_to_input`], recorded on first use.
    feedback_cbs: HashMap<(usize, usize), (vk::CommandBuffer, u64)>,
    /// Orders every submission of this executable; shared with the arrays it writes (see `array.rs`).
    timeline: Arc<Timeline>,
    /// The value the latest submission signals; the semaphore reaches it when all work is done.
    last_signal: u64,
    /// Pool of the per-call command buffers of device-array work (copies in and out), which are reused
    /// once their submission has finished.
    call_pool: vk::CommandPool,
    free_call_cbs: Vec<vk::CommandBuffer>,
    /// What in-flight submissions touch, oldest first; released once the timeline passes their value.
    retiring: VecDeque<Retiring>,
    /// Every device buffer; `Binding::buf` indexes it.
    buffers: Vec<DeviceBuffer>,
    /// Where each logical buffer lives (`None`: a temporary nothing uses).
    bindings: Vec<Option<Binding>>,
    /// Per parameter number: where the host writes it. `None` when no buffer holds that parameter.
    inputs: Vec<Option<InputSlot>>,
    outputs: Vec<OutputSlot>,
    /// Where the host reads each device-check status after a run, and what its codes mean.
    statuses: Vec<(OutputSlot, hlo_program::StatusBuffer)>,
    /// Staging buffers whose contents are copied into input buffers at the start of every run.
    input_uploads: Vec<(Binding, Binding)>,
    /// Device buffers copied into readback buffers at the end of every run.
    output_readbacks: Vec<(Binding, Binding)>,
    stats: BuildStats,
    /// With [`BuildOptions::profile`]: the timestamp query pool (query 0 before the first step, query k+1 after
    /// the k-th recorded step) and, per recorded step, its program step index and name.
    profile: Option<(vk::QueryPool, Vec<(usize, String)>)>,
}

/// Resources a submission uses, kept alive until the timeline reaches `value`.
struct Retiring {
    value: u64,
    #[allow(dead_code, reason = "held, never read: dropping it frees the arrays the device no longer uses")]
    arrays: Vec<Arc<ArrayStorage>>,
    #[allow(dead_code, reason = "held, never read: freed once the upload copy has finished")]
    staging: Option<DeviceBuffer>,
    /// Per-call command buffers to reuse.
    cbs: Vec<vk::CommandBuffer>,
}

/// A byte range of one of the executable's device buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Binding {
    buf: usize,
    offset: u64,
    /// Padded size: what descriptors bind and fills write.
    range: u64,
}

impl Binding {
    fn region(self) -> Region {
        Region { resource: self.buf, start: self.offset, end: self.offset + self.range }
    }
}

struct InputSlot {
    size: u64,
    /// Host-visible places the input's bytes go (more than one if several buffers hold the same parameter).
    targets: Vec<Binding>,
}

#[derive(Clone, Copy)]
struct OutputSlot {
    size: u64,
    /// Where the result is on the device (what `copy_output_to_input` copies from).
    device: Binding,
    /// Where the host reads it.
    host: Binding,
}

#[derive(Default)]
struct KernelPipeline {
    pipeline: vk::Pipeline,
    layout: vk::PipelineLayout,
    set_layout: vk::DescriptorSetLayout,
    /// Per binding: a uniform texel buffer ([`Access::ReadTexels`]); empty when all are storage buffers.
    texels: Vec<Option<vk::Format>>,
}

/// The descriptor type of binding `i` of `pipeline`.
fn descriptor_type(pipeline: &KernelPipeline, i: usize) -> vk::DescriptorType {
    if pipeline.texels.get(i).copied().flatten().is_some() {
        vk::DescriptorType::UNIFORM_TEXEL_BUFFER
    } else {
        vk::DescriptorType::STORAGE_BUFFER
    }
}

impl Executable {
    /// Builds `program` with an optional on-disk pipeline cache directory.
    pub fn new(ctx: &Arc<Context>, program: &Program, pipeline_cache_dir: Option<&Path>) -> Result<Executable> {
        let options =
            BuildOptions { pipeline_cache_dir: pipeline_cache_dir.map(Path::to_path_buf), ..Default::default() };
        Executable::with_options(ctx, program, &options)
    }

    /// Builds `program`; see the module docs for what that involves.
    pub fn with_options(ctx: &Arc<Context>, program: &Program, options: &BuildOptions) -> Result<Executable> {
        let start = Instant::now();
        program.validate()?;
        let timeline = Timeline::new(ctx)?;
        // Every Vulkan object is created through `exe`, whose Drop destroys whatever exists on any error path.
        let mut exe = Executable {
            ctx: ctx.clone(),
            force_staging: options.force_staging,
            pipelines: Vec::new(),
            descriptor_pool: vk::DescriptorPool::null(),
            buffer_views: Vec::new(),
            descriptor_sets: HashMap::new(),
            command_pool: vk::CommandPool::null(),
            plan: Vec::new(),
            main_last: 0,
            control: None,
            run_stats: RunStats::default(),
            feedback_cbs: HashMap::new(),
            timeline,
            last_signal: 0,
            call_pool: vk::CommandPool::null(),
            free_call_cbs: Vec::new(),
            retiring: VecDeque::new(),
            buffers: Vec::new(),
            bindings: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            statuses: Vec::new(),
            input_uploads: Vec::new(),
            output_readbacks: Vec::new(),
            stats: BuildStats::default(),
            profile: None,
        };
        if options.profile && program.steps.iter().any(Step::is_structured) {
            return Err(VulkanError::Unsupported { reason: "profiling a program with loops or conditionals".into() });
        }
        exe.create_sync_objects()?;
        exe.create_buffers(program)?;
        let plan = ControlPlan::new(program)?;
        let internal = if plan.is_empty() { Vec::new() } else { internal_kernels()? };
        if !plan.is_empty() {
            exe.create_control(plan, program.kernels.len())?;
        }
        exe.create_pipelines(program, &internal, options.pipeline_cache_dir.as_deref())?;
        exe.create_descriptor_sets(program)?;
        if options.profile {
            exe.create_query_pool(program)?;
        }
        exe.count_steps(program);
        exe.record(program)?;
        exe.stats.n_kernels = program.kernels.len();
        exe.stats.device_bytes = exe.buffers.iter().map(DeviceBuffer::allocated_bytes).sum();
        exe.stats.build_time = start.elapsed();
        tracing::debug!(stats = %exe.stats, "built executable");
        Ok(exe)
    }

    /// What the build produced and cost.
    pub fn stats(&self) -> &BuildStats {
        &self.stats
    }

    /// What the last call did on the host: submissions and waits.
    pub fn last_run_stats(&self) -> RunStats {
        self.run_stats
    }

    /// The context this executable runs on.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Number of inputs `run` expects: one more than the highest parameter number of an input buffer.
    pub fn num_inputs(&self) -> usize {
        self.inputs.len()
    }

    /// Byte size of input `index`; `None` when the program has no buffer for that parameter (any bytes do).
    pub fn input_size(&self, index: usize) -> Option<u64> {
        self.inputs.get(index)?.as_ref().map(|slot| slot.size)
    }

    /// Byte sizes of the outputs, in order.
    pub fn output_sizes(&self) -> Vec<u64> {
        self.outputs.iter().map(|o| o.size).collect()
    }

    /// Writes the inputs, runs the program and returns the outputs' bytes.
    pub fn run(&mut self, inputs: &[&[u8]]) -> Result<Vec<Vec<u8>>> {
        self.upload_inputs(inputs)?;
        let ticket = self.submit()?;
        self.wait(ticket)?;
        (0..self.outputs.len())
            .map(|index| {
                let mut bytes = vec![0; self.outputs[index].size as usize];
                self.read_output(index, &mut bytes)?;
                Ok(bytes)
            })
            .collect()
    }

    /// Writes every input (after waiting for the last submission, which may still read them).
    pub fn upload_inputs(&mut self, inputs: &[&[u8]]) -> Result<()> {
        if inputs.len() != self.inputs.len() {
            return Err(VulkanError::InputCount { expected: self.inputs.len(), found: inputs.len() });
        }
        for (index, data) in inputs.iter().enumerate() {
            self.check_input(index, data)?;
        }
        self.wait_value(self.last_signal)?;
        for (index, data) in inputs.iter().enumerate() {
            self.write_input(index, data);
        }
        Ok(())
    }

    /// Writes one input, leaving the others as they are (after waiting for the last submission).
    pub fn upload_input(&mut self, index: usize, data: &[u8]) -> Result<()> {
        self.check_input(index, data)?;
        self.wait_value(self.last_signal)?;
        self.write_input(index, data);
        Ok(())
    }

    /// Submits the recorded program; it runs after all earlier submissions of this executable.
    /// A program with device loops returns only after its loops have finished (the host decides when to stop
    /// submitting batches); everything after the last loop may still be running.
    pub fn submit(&mut self) -> Result<Ticket> {
        // Keep calls apart: a call's decisions read words that the previous call's gates also write.
        self.wait_value(self.main_last)?;
        let plan = std::mem::take(&mut self.plan);
        let mut stats = RunStats::default();
        let result = self.run_ops(&plan, &mut stats);
        self.plan = plan;
        self.run_stats = stats;
        self.main_last = self.last_signal;
        result?;
        Ok(Ticket(self.main_last))
    }

    fn run_ops(&mut self, ops: &[HostOp], stats: &mut RunStats) -> Result<()> {
        for op in ops {
            match op {
                HostOp::Submit(cb) => {
                    self.submit_cb(*cb)?;
                    stats.submits += 1;
                }
                HostOp::Repeat { times, ops } => {
                    for _ in 0..*times {
                        self.run_ops(ops, stats)?;
                    }
                }
                HostOp::DeviceLoop { word, batches } => {
                    // Batches grow 1, 2, 4, ... iterations, then the largest is submitted 1, 2, 4, ... times
                    // between reads, so a loop of n iterations costs about log2(n) host round trips.
                    let (mut level, mut repeats) = (0, 1);
                    loop {
                        for _ in 0..repeats {
                            self.submit_cb(batches[level])?;
                            stats.submits += 1;
                            stats.batch_submits += 1;
                        }
                        if self.read_control_word(*word, stats)? == 0 {
                            break;
                        }
                        if level + 1 < batches.len() {
                            level += 1;
                        } else {
                            repeats = (repeats * 2).min(MAX_BATCH_REPEATS);
                        }
                    }
                }
                HostOp::Switch { word, branches } => {
                    let selector = self.read_control_word(*word, stats)?;
                    let branch = (selector as usize).min(branches.len() - 1);
                    self.run_ops(&branches[branch], stats)?;
                }
                HostOp::While { cond, word, body } => loop {
                    self.run_ops(cond, stats)?;
                    if self.read_control_word(*word, stats)? == 0 {
                        break;
                    }
                    self.run_ops(body, stats)?;
                },
            }
        }
        Ok(())
    }

    /// Waits for everything submitted and reads control word `word`.
    fn read_control_word(&self, word: u32, stats: &mut RunStats) -> Result<u32> {
        self.wait_value(self.last_signal)?;
        stats.host_waits += 1;
        let control = self.control.as_ref().expect("programs with decisions have control words");
        let bytes = self.buffers[control.control_buf].host_bytes().expect("checked host visible at build");
        let at = 4 * word as usize;
        Ok(u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")))
    }

    /// Blocks until the submission behind `ticket` (and everything submitted before it) has finished.
    /// Fails when a kernel of that run reported a failed device check.
    pub fn wait(&self, ticket: Ticket) -> Result<()> {
        // A ticket of another executable could name a value this semaphore never reaches; clamp it.
        self.wait_value(ticket.0.min(self.last_signal))?;
        if ticket.0 >= self.main_last {
            self.check_status()?;
        }
        Ok(())
    }

    /// Copies output `index` into `dst`, which must be exactly its size (after waiting for the last submission).
    pub fn read_output(&self, index: usize, dst: &mut [u8]) -> Result<()> {
        let slot = self.outputs.get(index).ok_or_else(|| VulkanError::Output {
            index,
            reason: format!("the program has {} outputs", self.outputs.len()),
        })?;
        if dst.len() as u64 != slot.size {
            return Err(VulkanError::Output {
                index,
                reason: format!("destination has {} bytes, output has {}", dst.len(), slot.size),
            });
        }
        self.wait_value(self.last_signal)?;
        self.check_status()?;
        let host = slot.host;
        let bytes = self.buffers[host.buf]
            .host_bytes()
            .ok_or_else(|| VulkanError::Output { index, reason: "output memory is not host visible".into() })?;
        let start = host.offset as usize;
        dst.copy_from_slice(&bytes[start..start + dst.len()]);
        self.ctx.count_to_host(dst.len() as u64);
        Ok(())
    }

    /// Makes output `output` the next run's input `input` without a round trip through the host: records (once)
    /// and submits a small command buffer that copies the bytes on the device. The copy runs after everything
    /// submitted before it and before everything submitted after it.
    pub fn copy_output_to_input(&mut self, output: usize, input: usize) -> Result<Ticket> {
        let out = self.outputs.get(output).ok_or_else(|| VulkanError::Output {
            index: output,
            reason: format!("the program has {} outputs", self.outputs.len()),
        })?;
        let slot = self
            .inputs
            .get(input)
            .and_then(Option::as_ref)
            .ok_or(VulkanError::NoSuchInput { index: input, count: self.inputs.len() })?;
        if slot.size != out.size {
            return Err(VulkanError::InputSize { index: input, expected: slot.size, found: out.size });
        }
        let (src, size, targets) = (out.device, out.size, slot.targets.clone());
        let (cb, last) = match self.feedback_cbs.get(&(output, input)) {
            Some(&entry) => entry,
            None => {
                let cb = self.allocate_cb()?;
                self.feedback_cbs.insert((output, input), (cb, 0));
                self.record_feedback(cb, src, size, &targets)?;
                (cb, 0)
            }
        };
        self.wait_value(last)?;
        let value = self.submit_cb(cb)?;
        self.feedback_cbs.insert((output, input), (cb, value));
        Ok(Ticket(value))
    }

    /// Copies `bytes` into a new [`DeviceArray`]. Asynchronous where the array is not host-mapped: the copy
    /// from a staging buffer is submitted on this executable's timeline, and every execution that uses the
    /// array runs after it.
    pub fn upload(&mut self, bytes: &[u8]) -> Result<DeviceArray> {
        self.release_finished()?;
        let size = bytes.len() as u64;
        self.ctx.count_to_device(size);
        let mut storage = ArrayStorage::new(&self.ctx, "device array", size, !self.force_staging)?;
        if storage.mapped {
            if let Some(dst) = storage.buffer.host_bytes_mut() {
                dst[..bytes.len()].copy_from_slice(bytes);
                return Ok(DeviceArray::new(Arc::new(storage)));
            }
            storage.mapped = false;
        }
        let mut staging =
            DeviceBuffer::new(&self.ctx, "staging for a device array", padded_size(size), MemoryLocation::CpuToGpu)?;
        staging.host_bytes_mut().ok_or_else(|| VulkanError::Unsupported {
            reason: "the device has no host-visible coherent memory for staging".into(),
        })?[..bytes.len()]
            .copy_from_slice(bytes);
        let storage = Arc::new(storage);
        let cb = self.begin_call_cb()?;
        if size > 0 {
            copy_buffer(self.ctx.device(), cb, (staging.buffer, 0), (storage.buffer.buffer, 0), size);
        }
        let value = self.end_and_submit_call_cb(cb, &[])?;
        storage.written_by(&self.point(value));
        self.retiring.push_back(Retiring {
            value,
            arrays: vec![storage.clone()],
            staging: Some(staging),
            cbs: vec![cb],
        });
        Ok(DeviceArray::new(storage))
    }

    /// Runs the program on device arrays and returns its outputs as new arrays; see
    /// [`Executable::execute_with`].
    pub fn execute(&mut self, inputs: &[&DeviceArray]) -> Result<Vec<DeviceArray>> {
        self.execute_with(inputs.iter().map(|&array| ArrayInput::Read(array)).collect())
    }

    /// Runs the program on device arrays without waiting on the host (except for the decisions of device loops
    /// and host-driven conditionals, as in [`Executable::submit`]).
    ///
    /// The inputs are copied on the device into the executable's own input buffers (descriptor sets are written
    /// once at build time and the command buffers replayed, so arrays are not bound directly), the recorded
    /// program runs, and each output is copied on the device into a new array or, for
    /// [`ArrayInput::Donate`], into the donated array's memory. Everything is ordered on the device by timeline
    /// semaphores: after the writers of the inputs, and after every earlier user of a donated array.
    /// A failed device check is not reported here (that needs a host wait): see [`Executable::synchronize`].
    /// On an error the donated arrays are dropped (safely: in-flight work keeps their memory alive).
    pub fn execute_with(&mut self, inputs: Vec<ArrayInput<'_>>) -> Result<Vec<DeviceArray>> {
        if inputs.len() != self.inputs.len() {
            return Err(VulkanError::InputCount { expected: self.inputs.len(), found: inputs.len() });
        }
        let mut donated: Vec<Option<Arc<ArrayStorage>>> = vec![None; self.outputs.len()];
        for (index, input) in inputs.iter().enumerate() {
            let array = input.array();
            if !Arc::ptr_eq(&array.storage().ctx, &self.ctx) {
                return Err(VulkanError::ForeignArray { index });
            }
            if let Some(slot) = &self.inputs[index] {
                if slot.size != array.size_bytes() {
                    return Err(VulkanError::InputSize { index, expected: slot.size, found: array.size_bytes() });
                }
            }
            if let ArrayInput::Donate { output, .. } = *input {
                let bad = |reason: String| VulkanError::Donation { input: index, output, reason };
                let out = self
                    .outputs
                    .get(output)
                    .ok_or_else(|| bad(format!("the program has {} outputs", self.outputs.len())))?;
                if out.size != array.size_bytes() {
                    return Err(bad(format!("the input has {} bytes, the output {}", array.size_bytes(), out.size)));
                }
                if donated[output].is_some() {
                    return Err(bad("another input is already donated to that output".into()));
                }
                donated[output] = Some(array.storage().clone());
            }
        }
        self.release_finished()?;
        let read: Vec<Arc<ArrayStorage>> = inputs.iter().map(|input| input.array().storage().clone()).collect();
        drop(inputs);
        // Read after the inputs' writers; overwrite donated arrays after everything that still uses them.
        let mut waits: Vec<SyncPoint> = read.iter().filter_map(|s| s.written()).collect();
        waits.extend(donated.iter().flatten().flat_map(|s| s.users()));
        let mut stats = RunStats::default();
        let copies_in: Vec<(vk::Buffer, Binding, u64)> = read
            .iter()
            .zip(&self.inputs)
            .filter_map(|(storage, slot)| Some((storage, slot.as_ref()?)))
            .flat_map(|(storage, slot)| slot.targets.iter().map(|&t| (storage.buffer.buffer, t, slot.size)))
            .filter(|&(_, _, size)| size > 0)
            .collect();
        if !copies_in.is_empty() || waits.iter().any(|p| !p.on(&self.timeline)) {
            let cb = self.begin_call_cb()?;
            for &(src, target, size) in &copies_in {
                let dst = (self.buffers[target.buf].buffer, target.offset);
                copy_buffer(self.ctx.device(), cb, (src, 0), dst, size);
            }
            let submitted = self.end_and_submit_call_cb(cb, &waits);
            // Keeps the inputs alive for the copies even if a later step fails.
            let arrays = read.clone();
            self.retiring.push_back(Retiring { value: self.last_signal, arrays, staging: None, cbs: vec![cb] });
            submitted?;
            stats.submits += 1;
        }

        if has_host_decisions(&self.plan) {
            // As in `submit`: keep calls with host decisions apart (such a call waits on the host anyway).
            stats.host_waits += 1;
            self.wait_value(self.main_last)?;
        }
        let plan = std::mem::take(&mut self.plan);
        let ran = self.run_ops(&plan, &mut stats);
        self.plan = plan;
        self.main_last = self.last_signal;
        let outputs = ran.and_then(|()| {
            self.outputs
                .iter()
                .enumerate()
                .map(|(j, out)| match donated[j].take() {
                    Some(storage) => Ok(storage),
                    None => ArrayStorage::new(&self.ctx, &format!("output {j}"), out.size, !self.force_staging)
                        .map(Arc::new),
                })
                .collect::<Result<Vec<_>>>()
        });
        self.run_stats = stats;
        let outputs = outputs?;
        let cb = self.begin_call_cb()?;
        for (out, storage) in self.outputs.iter().zip(&outputs) {
            if out.size > 0 {
                let src = (self.buffers[out.device.buf].buffer, out.device.offset);
                copy_buffer(self.ctx.device(), cb, src, (storage.buffer.buffer, 0), out.size);
            }
        }
        host_barrier(self.ctx.device(), cb);
        let submitted = self.end_and_submit_call_cb(cb, &[]);
        self.run_stats.submits += submitted.is_ok() as u64;
        let point = self.point(self.last_signal);
        for storage in &read {
            storage.used_by(&point);
        }
        for storage in &outputs {
            storage.written_by(&point);
        }
        let mut arrays = read;
        arrays.extend(outputs.iter().cloned());
        self.retiring.push_back(Retiring { value: self.last_signal, arrays, staging: None, cbs: vec![cb] });
        submitted?;
        Ok(outputs.into_iter().map(DeviceArray::new).collect())
    }

    /// Waits for everything submitted, releases what finished submissions kept alive (arrays, staging memory),
    /// and fails if the latest call reported a failed device check.
    pub fn synchronize(&mut self) -> Result<()> {
        self.wait_value(self.last_signal)?;
        self.release_finished()?;
        if self.main_last > 0 {
            self.check_status()?;
        }
        Ok(())
    }

    /// Releases the resources of every finished submission; never blocks.
    fn release_finished(&mut self) -> Result<()> {
        if self.retiring.is_empty() {
            return Ok(());
        }
        let reached = self.timeline.reached()?;
        while self.retiring.front().is_some_and(|r| r.value <= reached) {
            let done = self.retiring.pop_front().expect("checked");
            self.free_call_cbs.extend(done.cbs);
        }
        Ok(())
    }

    fn point(&self, value: u64) -> SyncPoint {
        SyncPoint { timeline: self.timeline.clone(), value }
    }

    /// A per-call command buffer in the recording state: a finished one reused, or a new one.
    fn begin_call_cb(&mut self) -> Result<vk::CommandBuffer> {
        let cb = match self.free_call_cbs.pop() {
            Some(cb) => cb,
            None => {
                let info = vk::CommandBufferAllocateInfo::default()
                    .command_pool(self.call_pool)
                    .level(vk::CommandBufferLevel::PRIMARY)
                    .command_buffer_count(1);
                // SAFETY: the pool is live and only used from `&mut self`, so access is externally synchronized.
                unsafe { self.ctx.device().allocate_command_buffers(&info) }
                    .map_err(VulkanError::vk("vkAllocateCommandBuffers"))?[0]
            }
        };
        let begin = vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
        // SAFETY: `cb` is fresh or its submission has finished (released by `release_finished`); the pool allows
        // resetting single buffers, which beginning does implicitly.
        if let Err(err) = unsafe { self.ctx.device().begin_command_buffer(cb, &begin) } {
            self.free_call_cbs.push(cb);
            return Err(VulkanError::Vk { call: "vkBeginCommandBuffer", result: err });
        }
        Ok(cb)
    }

    fn end_and_submit_call_cb(&mut self, cb: vk::CommandBuffer, waits: &[SyncPoint]) -> Result<u64> {
        // SAFETY: `cb` is in the recording state (from `begin_call_cb`).
        unsafe { self.ctx.device().end_command_buffer(cb) }.map_err(VulkanError::vk("vkEndCommandBuffer"))?;
        self.submit_cb_after(cb, waits)
    }

    fn check_input(&self, index: usize, data: &[u8]) -> Result<()> {
        let slot = self.inputs.get(index).ok_or(VulkanError::NoSuchInput { index, count: self.inputs.len() })?;
        match slot {
            Some(slot) if slot.size != data.len() as u64 => {
                Err(VulkanError::InputSize { index, expected: slot.size, found: data.len() as u64 })
            }
            _ => Ok(()),
        }
    }

    /// Copies checked bytes into the host-visible places of input `index`; the caller waited for the device.
    fn write_input(&mut self, index: usize, data: &[u8]) {
        let Some(slot) = &self.inputs[index] else { return };
        self.ctx.count_to_device(data.len() as u64);
        for target in &slot.targets {
            if let Some(bytes) = self.buffers[target.buf].host_bytes_mut() {
                let start = target.offset as usize;
                bytes[start..start + data.len()].copy_from_slice(data);
            }
        }
    }

    fn direct(&self, buf: usize) -> bool {
        !self.force_staging && self.buffers[buf].host_accessible()
    }

    fn add_buffer(&mut self, name: &str, size: u64, location: MemoryLocation) -> Result<usize> {
        self.buffers.push(DeviceBuffer::new(&self.ctx, name, size, location)?);
        Ok(self.buffers.len() - 1)
    }

    fn create_sync_objects(&mut self) -> Result<()> {
        let device = self.ctx.device();
        let info = vk::CommandPoolCreateInfo::default().queue_family_index(self.ctx.queue_family());
        // SAFETY: valid create info for the context's queue family.
        self.command_pool =
            unsafe { device.create_command_pool(&info, None) }.map_err(VulkanError::vk("vkCreateCommandPool"))?;
        let info = vk::CommandPoolCreateInfo::default()
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER | vk::CommandPoolCreateFlags::TRANSIENT)
            .queue_family_index(self.ctx.queue_family());
        // SAFETY: valid create info for the context's queue family.
        self.call_pool =
            unsafe { device.create_command_pool(&info, None) }.map_err(VulkanError::vk("vkCreateCommandPool"))?;
        Ok(())
    }

    /// Creates every device buffer, assigns each logical buffer its place, and uploads the constants.
    fn create_buffers(&mut self, program: &Program) -> Result<()> {
        let caps = self.ctx.caps().clone();
        self.check_binding_ranges(program, caps.max_storage_buffer_range)?;
        let n_buffers = program.buffers.len();
        self.bindings = vec![None; n_buffers];
        self.stats.logical_bytes = program.buffers.iter().map(|b| b.size_bytes).sum();

        // Inputs: mapped device-local memory where the device has it, else device memory plus staging.
        let input_location =
            if caps.host_visible_device_local { MemoryLocation::CpuToGpu } else { MemoryLocation::GpuOnly };
        let n_inputs = program
            .buffers
            .iter()
            .filter_map(|b| match b.role {
                BufferRole::Input(n) => Some(n as usize + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        self.inputs = (0..n_inputs).map(|_| None).collect();
        let mut constant_uploads: Vec<(usize, &[u8])> = Vec::new();
        for (id, buffer) in program.buffers.iter().enumerate() {
            let size = padded_size(buffer.size_bytes);
            match &buffer.role {
                BufferRole::Input(n) => {
                    let buf = self.add_buffer(&format!("input {n}: {}", buffer.name), size, input_location)?;
                    let binding = Binding { buf, offset: 0, range: size };
                    self.bindings[id] = Some(binding);
                    let target = if self.direct(buf) {
                        binding
                    } else {
                        let staging =
                            self.add_buffer(&format!("staging for input {n}"), size, MemoryLocation::CpuToGpu)?;
                        let staging = Binding { buf: staging, offset: 0, range: size };
                        self.input_uploads.push((staging, binding));
                        staging
                    };
                    let n = *n as usize;
                    match &mut self.inputs[n] {
                        Some(slot) if slot.size != buffer.size_bytes => {
                            return Err(VulkanError::Unsupported {
                                reason: format!("two buffers hold parameter {n} with different sizes"),
                            })
                        }
                        Some(slot) => slot.targets.push(target),
                        slot @ None => *slot = Some(InputSlot { size: buffer.size_bytes, targets: vec![target] }),
                    }
                }
                BufferRole::Constant(bytes) => {
                    if bytes.len() as u64 != buffer.size_bytes {
                        return Err(VulkanError::Unsupported {
                            reason: format!(
                                "constant `{}` has {} bytes but its buffer is {} bytes",
                                buffer.name,
                                bytes.len(),
                                buffer.size_bytes
                            ),
                        });
                    }
                    let buf = self.add_buffer(&format!("constant: {}", buffer.name), size, MemoryLocation::GpuOnly)?;
                    self.bindings[id] = Some(Binding { buf, offset: 0, range: size });
                    constant_uploads.push((buf, bytes));
                }
                BufferRole::Temp => {}
            }
        }
        self.upload_constants(&constant_uploads)?;

        // Temporaries: shared arenas, placed by liveness.
        let intervals = temp_intervals(program);
        let items: Vec<_> = intervals
            .iter()
            .zip(&program.buffers)
            .map(|(it, buffer)| it.map(|it| (padded_size(buffer.size_bytes), it)))
            .collect();
        let cap = caps.max_memory_allocation_size.min(caps.max_buffer_size);
        // At least 16 bytes: kernels read and write f32 buffers as `array<vec4<f32>>`, whose
        // elements must be 16-byte aligned even where the device allows 4-byte binding offsets.
        let layout = place_temps(
            &items,
            caps.min_storage_buffer_offset_alignment.max(caps.min_texel_buffer_offset_alignment).max(16),
            cap,
        );
        let mut arena_bufs = Vec::new();
        for (i, &size) in layout.arena_sizes.iter().enumerate() {
            arena_bufs.push(self.add_buffer(&format!("arena {i}"), size, MemoryLocation::GpuOnly)?);
        }
        for (id, placement) in layout.placements.iter().enumerate() {
            if let Some(p) = placement {
                let range = padded_size(program.buffers[id].size_bytes);
                self.bindings[id] = Some(Binding { buf: arena_bufs[p.arena], offset: p.offset, range });
            }
        }
        self.stats.n_arenas = layout.arena_sizes.len();
        self.stats.temp_assigned_bytes = layout.arena_sizes.iter().sum();
        self.stats.temp_logical_bytes =
            program.buffers.iter().filter(|b| matches!(b.role, BufferRole::Temp)).map(|b| b.size_bytes).sum();
        self.stats.assigned_bytes = self.stats.temp_assigned_bytes
            + program
                .buffers
                .iter()
                .filter(|b| !matches!(b.role, BufferRole::Temp))
                .map(|b| padded_size(b.size_bytes))
                .sum::<u64>();

        // Outputs: read in place where mapped, else through one readback buffer per distinct logical buffer.
        let mut readback_of: HashMap<u32, Binding> = HashMap::new();
        // Status buffers of device checks are read back like more outputs.
        let statuses = program.checks.iter().map(|c| &c.buffer);
        for (index, id) in program.outputs.iter().chain(statuses).enumerate() {
            let size = program.buffers[id.0 as usize].size_bytes;
            let device = self.bindings[id.0 as usize]
                .ok_or_else(|| VulkanError::Output { index, reason: "output buffer was not placed".into() })?;
            let host = if self.direct(device.buf) {
                device
            } else if let Some(&host) = readback_of.get(&id.0) {
                host
            } else {
                let buf =
                    self.add_buffer(&format!("readback for output {index}"), device.range, MemoryLocation::GpuToCpu)?;
                let host = Binding { buf, offset: 0, range: device.range };
                self.output_readbacks.push((device, host));
                readback_of.insert(id.0, host);
                host
            };
            self.outputs.push(OutputSlot { size, device, host });
        }
        let n_outputs = program.outputs.len();
        self.statuses = self.outputs.split_off(n_outputs).into_iter().zip(program.checks.iter().cloned()).collect();
        Ok(())
    }

    /// Fails with the first device check that the last finished run reported (see
    /// [`hlo_program::StatusBuffer`]); the caller has waited for that run.
    fn check_status(&self) -> Result<()> {
        for (slot, status) in &self.statuses {
            let bytes = self.buffers[slot.host.buf].host_bytes().ok_or_else(|| VulkanError::Output {
                index: self.outputs.len(),
                reason: "status buffer is not host visible".into(),
            })?;
            let at = slot.host.offset as usize;
            let code = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
            if code != 0 {
                let message = status
                    .messages
                    .get(code as usize - 1)
                    .cloned()
                    .unwrap_or_else(|| format!("unknown device status code {code}"));
                return Err(VulkanError::DeviceCheckFailed { kernel: status.kernel.clone(), message });
            }
        }
        Ok(())
    }

    /// A buffer (or window of one) bound to a dispatch must fit `maxStorageBufferRange`.
    fn check_binding_ranges(&self, program: &Program, max: u64) -> Result<()> {
        let mut result = Ok(());
        walk_steps(&program.steps, &mut |step| {
            if let Step::Dispatch(d) = step {
                for (k, id) in d.buffers.iter().enumerate() {
                    let buffer = &program.buffers[id.0 as usize];
                    let bound = match d.windows.get(k).copied().flatten() {
                        Some(w) => w.size_bytes,
                        None => padded_size(buffer.size_bytes),
                    };
                    if bound > max && result.is_ok() {
                        result = Err(VulkanError::BufferTooLarge {
                            name: buffer.name.clone(),
                            size: buffer.size_bytes,
                            max,
                            limit: "maxStorageBufferRange",
                        });
                    }
                }
            }
        });
        result
    }

    /// Writes constants into mapped memory, or through staging buffers and a one-time command buffer.
    fn upload_constants(&mut self, uploads: &[(usize, &[u8])]) -> Result<()> {
        let mut staged = Vec::new();
        for &(buf, bytes) in uploads {
            if self.direct(buf) {
                if let Some(dst) = self.buffers[buf].host_bytes_mut() {
                    dst[..bytes.len()].copy_from_slice(bytes);
                    continue;
                }
            }
            let size = self.buffers[buf].size;
            let staging = DeviceBuffer::new(&self.ctx, "staging for a constant", size, MemoryLocation::CpuToGpu)?;
            staged.push((staging, buf, bytes));
        }
        if staged.is_empty() {
            return Ok(());
        }
        for (staging, _, bytes) in &mut staged {
            let dst = staging.host_bytes_mut().ok_or_else(|| VulkanError::Unsupported {
                reason: "the device has no host-visible coherent memory for staging".into(),
            })?;
            dst[..bytes.len()].copy_from_slice(bytes);
        }
        let cb = self.allocate_cb()?;
        let device = self.ctx.device();
        let begin = vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
        // SAFETY: `cb` is a fresh command buffer of this executable's pool; the staging and constant buffers
        // outlive its execution (we wait below before dropping the staging buffers).
        unsafe {
            device.begin_command_buffer(cb, &begin).map_err(VulkanError::vk("vkBeginCommandBuffer"))?;
            for (staging, buf, _) in &staged {
                let region = vk::BufferCopy { src_offset: 0, dst_offset: 0, size: staging.size };
                device.cmd_copy_buffer(cb, staging.buffer, self.buffers[*buf].buffer, &[region]);
            }
            device.end_command_buffer(cb).map_err(VulkanError::vk("vkEndCommandBuffer"))?;
        }
        let value = self.submit_cb(cb);
        let waited = value.and_then(|value| self.wait_value(value));
        // SAFETY: the command buffer has finished (or was never submitted) and is freed once.
        unsafe { self.ctx.device().free_command_buffers(self.command_pool, &[cb]) };
        waited
    }

    /// Creates the program's pipelines, then those of `internal` (the runtime's own kernels) after them.
    fn create_pipelines(
        &mut self,
        program: &Program,
        internal: &[hlo_program::Kernel],
        cache_dir: Option<&Path>,
    ) -> Result<()> {
        let start = Instant::now();
        let ctx = self.ctx.clone();
        let device = ctx.device();
        let cache_path = cache_dir.map(|dir| pipeline_cache::cache_file(dir, ctx.info()));
        let initial = cache_path.as_deref().map(|p| pipeline_cache::load(p, ctx.info())).unwrap_or_default();
        let info = vk::PipelineCacheCreateInfo::default().initial_data(&initial);
        // SAFETY: the initial data's header was checked against this device; an empty slice means no data.
        let cache = match unsafe { device.create_pipeline_cache(&info, None) } {
            Ok(cache) => {
                self.stats.pipeline_cache_loaded_bytes = initial.len();
                cache
            }
            Err(err) => {
                tracing::warn!(%err, "the driver rejected the pipeline cache file; starting empty");
                let info = vk::PipelineCacheCreateInfo::default();
                // SAFETY: valid create info without initial data.
                unsafe { device.create_pipeline_cache(&info, None) }
                    .map_err(VulkanError::vk("vkCreatePipelineCache"))?
            }
        };
        let mut hits = ctx.caps().pipeline_creation_feedback.then_some(0);
        let mut res = Ok(());
        for kernel in program.kernels.iter().chain(internal) {
            match self.create_pipeline(kernel, cache) {
                Ok(hit) => {
                    if let (Some(hits), Some(true)) = (hits.as_mut(), hit) {
                        *hits += 1;
                    }
                }
                Err(err) => {
                    res = Err(err);
                    break;
                }
            }
        }
        if res.is_ok() {
            if let Some(path) = &cache_path {
                // SAFETY: `cache` is a live pipeline cache of this device.
                match unsafe { device.get_pipeline_cache_data(cache) } {
                    Ok(data) if data != initial => pipeline_cache::store(path, &data),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(%err, "vkGetPipelineCacheData failed"),
                }
            }
        }
        // SAFETY: pipelines created from the cache do not keep a reference to it.
        unsafe { device.destroy_pipeline_cache(cache, None) };
        self.stats.pipeline_cache_hits = hits;
        self.stats.pipeline_time = start.elapsed();
        res
    }

    /// Creates one kernel's pipeline; returns whether the pipeline cache had it (if the device can tell).
    fn create_pipeline(&mut self, kernel: &hlo_program::Kernel, cache: vk::PipelineCache) -> Result<Option<bool>> {
        let caps = self.ctx.caps().clone();
        let bad = |reason: String| VulkanError::InvalidKernel { kernel: kernel.name.clone(), reason };
        if kernel.spirv.len() < 5 || kernel.spirv[0] != SPIRV_MAGIC {
            return Err(bad("the SPIR-V module has no valid header".into()));
        }
        let entry =
            CString::new(kernel.entry_point.as_str()).map_err(|_| bad("entry point name contains NUL".into()))?;
        let wg = kernel.workgroup_size;
        let invocations = wg.iter().map(|&n| n as u64).product::<u64>();
        if wg.contains(&0)
            || wg.iter().zip(caps.max_compute_work_group_size).any(|(&n, max)| n > max)
            || invocations > caps.max_compute_work_group_invocations as u64
        {
            return Err(bad(format!(
                "workgroup size {wg:?} exceeds the device limits (size {:?}, {} invocations)",
                caps.max_compute_work_group_size, caps.max_compute_work_group_invocations
            )));
        }
        let texels = kernel.bindings.iter().filter(|a| a.texel_words().is_some()).count();
        if texels > caps.max_per_stage_sampled_images as usize {
            return Err(bad(format!(
                "{texels} uniform texel buffers, the device allows {}",
                caps.max_per_stage_sampled_images
            )));
        }
        let storage = kernel.bindings.len() - texels;
        if storage > caps.max_per_stage_storage_buffers as usize {
            return Err(bad(format!(
                "{} storage buffers, the device allows {}",
                storage, caps.max_per_stage_storage_buffers
            )));
        }
        if !kernel.push_constant_bytes.is_multiple_of(4) || kernel.push_constant_bytes > caps.max_push_constants_size {
            return Err(bad(format!(
                "{} bytes of push constants (a multiple of 4 up to {} is allowed)",
                kernel.push_constant_bytes, caps.max_push_constants_size
            )));
        }

        let ctx = self.ctx.clone();
        let device = ctx.device();
        self.pipelines.push(KernelPipeline::default());
        let pipeline = self.pipelines.last_mut().expect("just pushed");
        if kernel.bindings.iter().any(|a| a.texel_words().is_some()) {
            pipeline.texels = kernel
                .bindings
                .iter()
                .map(|a| match a.texel_words() {
                    Some(4) => Some(vk::Format::R32G32B32A32_UINT),
                    Some(_) => Some(vk::Format::R32_UINT),
                    None => None,
                })
                .collect();
        }
        let layout_bindings: Vec<_> = (0..kernel.bindings.len() as u32)
            .map(|i| {
                vk::DescriptorSetLayoutBinding::default()
                    .binding(i)
                    .descriptor_type(descriptor_type(pipeline, i as usize))
                    .descriptor_count(1)
                    .stage_flags(vk::ShaderStageFlags::COMPUTE)
            })
            .collect();
        let info = vk::DescriptorSetLayoutCreateInfo::default().bindings(&layout_bindings);
        // SAFETY: valid create info; the layout is destroyed in Drop.
        pipeline.set_layout = unsafe { device.create_descriptor_set_layout(&info, None) }
            .map_err(VulkanError::vk("vkCreateDescriptorSetLayout"))?;
        let set_layouts = [pipeline.set_layout];
        let push_ranges = [vk::PushConstantRange::default()
            .stage_flags(vk::ShaderStageFlags::COMPUTE)
            .offset(0)
            .size(kernel.push_constant_bytes)];
        let set_layouts: &[_] = if kernel.bindings.is_empty() { &[] } else { &set_layouts };
        let push_ranges: &[_] = if kernel.push_constant_bytes == 0 { &[] } else { &push_ranges };
        let info = vk::PipelineLayoutCreateInfo::default().set_layouts(set_layouts).push_constant_ranges(push_ranges);
        // SAFETY: valid create info referring to a live set layout; destroyed in Drop.
        pipeline.layout =
            unsafe { device.create_pipeline_layout(&info, None) }.map_err(VulkanError::vk("vkCreatePipelineLayout"))?;

        let info = vk::ShaderModuleCreateInfo::default().code(&kernel.spirv);
        // SAFETY: the code starts with the SPIR-V magic number; the driver validates the rest (and the validation
        // layer checks it against the pipeline layout when enabled).
        let module =
            unsafe { device.create_shader_module(&info, None) }.map_err(VulkanError::vk("vkCreateShaderModule"))?;
        let mut feedback = vk::PipelineCreationFeedback::default();
        let mut feedback_info =
            vk::PipelineCreationFeedbackCreateInfo::default().pipeline_creation_feedback(&mut feedback);
        let stage = vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(module)
            .name(&entry);
        let mut info = vk::ComputePipelineCreateInfo::default().stage(stage).layout(pipeline.layout);
        if caps.pipeline_creation_feedback {
            info = info.push_next(&mut feedback_info);
        }
        // SAFETY: `info` refers to a live module, layout and cache; the feedback struct outlives the call.
        let created = unsafe { device.create_compute_pipelines(cache, &[info], None) };
        // SAFETY: a pipeline does not need its shader module after creation.
        unsafe { device.destroy_shader_module(module, None) };
        let created = created.map_err(|(_, result)| VulkanError::Vk { call: "vkCreateComputePipelines", result })?;
        pipeline.pipeline = created[0];
        ctx.set_name(pipeline.pipeline, &kernel.name);
        Ok(caps.pipeline_creation_feedback.then(|| {
            feedback.flags.contains(vk::PipelineCreationFeedbackFlags::VALID)
                && feedback.flags.contains(vk::PipelineCreationFeedbackFlags::APPLICATION_PIPELINE_CACHE_HIT)
        }))
    }

    /// One descriptor set per dispatch (and per predicated fill or copy, and per gate), written once: the
    /// bindings never change between runs.
    fn create_descriptor_sets(&mut self, program: &Program) -> Result<()> {
        let mut requests: Vec<(StepKey, usize, Vec<Binding>)> = Vec::new();
        let control = self.control.as_ref();
        let bound = |id: &BufferId| self.bindings[id.0 as usize];
        walk_steps(&program.steps, &mut |step| {
            let key = step_key(step);
            let predicated = control.is_some_and(|c| c.plan.slots.contains_key(&key));
            let gated = control.filter(|c| c.plan.gates.contains_key(&key));
            match step {
                // Every buffer a step touches has a binding (validated program, placed temps).
                Step::Dispatch(d) if !d.buffers.is_empty() => requests.push((
                    key,
                    d.kernel.0 as usize,
                    d.buffers
                        .iter()
                        .enumerate()
                        .map(|(k, id)| {
                            let whole = bound(id).expect("bound buffer was placed");
                            match d.windows.get(k).copied().flatten() {
                                Some(w) => Binding {
                                    buf: whole.buf,
                                    offset: whole.offset + w.offset_bytes,
                                    range: w.size_bytes,
                                },
                                None => whole,
                            }
                        })
                        .collect(),
                )),
                Step::Fill { buffer, .. } if predicated => {
                    if let (Some(c), Some(b)) = (control, bound(buffer)) {
                        requests.push((key, c.fill_pipeline, vec![b]));
                    }
                }
                Step::Copy { src, dst, .. } if predicated => {
                    if let (Some(c), Some(s), Some(t)) = (control, bound(src), bound(dst)) {
                        requests.push((key, c.copy_pipeline, vec![s, t]));
                    }
                }
                Step::Loop(Loop { trip: TripCount::Device(DeviceCondition { flag: value, .. }), .. })
                | Step::Conditional(hlo_program::Conditional { selector: value, .. }) => {
                    if let Some(c) = gated {
                        let whole = |buf: usize| Binding { buf, offset: 0, range: self.buffers[buf].size };
                        let value = bound(value).expect("a read buffer was placed");
                        requests.push((
                            key,
                            c.gate_pipeline,
                            vec![value, whole(c.control_buf), whole(c.table_buf), whole(c.args_buf)],
                        ));
                    }
                }
                _ => {}
            }
        });
        if requests.is_empty() {
            return Ok(());
        }
        let device = self.ctx.device();
        let n_texels: usize = requests
            .iter()
            .map(|(_, pipeline, b)| {
                (0..b.len()).filter(|&i| self.pipelines[*pipeline].texels.get(i).copied().flatten().is_some()).count()
            })
            .sum();
        let n_descriptors: usize = requests.iter().map(|(_, _, b)| b.len()).sum::<usize>() - n_texels;
        let mut sizes = vec![vk::DescriptorPoolSize {
            ty: vk::DescriptorType::STORAGE_BUFFER,
            descriptor_count: n_descriptors as u32,
        }];
        if n_texels > 0 {
            sizes.push(vk::DescriptorPoolSize {
                ty: vk::DescriptorType::UNIFORM_TEXEL_BUFFER,
                descriptor_count: n_texels as u32,
            });
        }
        let info = vk::DescriptorPoolCreateInfo::default().max_sets(requests.len() as u32).pool_sizes(&sizes);
        // SAFETY: valid create info; the pool is destroyed in Drop.
        self.descriptor_pool =
            unsafe { device.create_descriptor_pool(&info, None) }.map_err(VulkanError::vk("vkCreateDescriptorPool"))?;
        let layouts: Vec<_> = requests.iter().map(|(_, pipeline, _)| self.pipelines[*pipeline].set_layout).collect();
        let info = vk::DescriptorSetAllocateInfo::default().descriptor_pool(self.descriptor_pool).set_layouts(&layouts);
        // SAFETY: the pool was sized for exactly these sets.
        let sets =
            unsafe { device.allocate_descriptor_sets(&info) }.map_err(VulkanError::vk("vkAllocateDescriptorSets"))?;
        let infos: Vec<Vec<vk::DescriptorBufferInfo>> = requests
            .iter()
            .map(|(_, _, bindings)| {
                bindings
                    .iter()
                    .map(|b| vk::DescriptorBufferInfo {
                        buffer: self.buffers[b.buf].buffer,
                        offset: b.offset,
                        range: b.range,
                    })
                    .collect()
            })
            .collect();
        // Texel-buffer bindings get a view of their bytes as vec4<f32> texels; the views live as
        // long as the descriptor sets.
        let mut views: Vec<Vec<(usize, vk::BufferView)>> = Vec::with_capacity(requests.len());
        for (_, pipeline, bindings) in &requests {
            let mut these = Vec::new();
            for (i, b) in bindings.iter().enumerate() {
                if descriptor_type(&self.pipelines[*pipeline], i) != vk::DescriptorType::UNIFORM_TEXEL_BUFFER {
                    continue;
                }
                let format = self.pipelines[*pipeline].texels[i].expect("a texel binding has a format");
                let info = vk::BufferViewCreateInfo::default()
                    .buffer(self.buffers[b.buf].buffer)
                    .format(format)
                    .offset(b.offset)
                    .range(b.range);
                // SAFETY: the buffer is live and was created with UNIFORM_TEXEL_BUFFER usage; the code generator
                // only reads buffers of a multiple of 16 bytes within maxTexelBufferElements this way, and temps
                // are placed at multiples of minTexelBufferOffsetAlignment.
                let view =
                    unsafe { device.create_buffer_view(&info, None) }.map_err(VulkanError::vk("vkCreateBufferView"))?;
                self.buffer_views.push(view);
                these.push((i, view));
            }
            views.push(these);
        }
        let mut writes = Vec::new();
        for ((&set, infos), ((_, pipeline, _), views)) in sets.iter().zip(&infos).zip(requests.iter().zip(&views)) {
            let pipeline = &self.pipelines[*pipeline];
            // Runs of consecutive storage-buffer bindings share one write; each texel buffer has its own.
            let mut i = 0;
            while i < infos.len() {
                if descriptor_type(pipeline, i) == vk::DescriptorType::UNIFORM_TEXEL_BUFFER {
                    let view = views.iter().find(|(k, _)| *k == i).map(|(_, v)| v).expect("a view per texel binding");
                    writes.push(
                        vk::WriteDescriptorSet::default()
                            .dst_set(set)
                            .dst_binding(i as u32)
                            .descriptor_type(vk::DescriptorType::UNIFORM_TEXEL_BUFFER)
                            .texel_buffer_view(std::slice::from_ref(view)),
                    );
                    i += 1;
                    continue;
                }
                let end = (i..infos.len())
                    .find(|&k| descriptor_type(pipeline, k) != vk::DescriptorType::STORAGE_BUFFER)
                    .unwrap_or(infos.len());
                writes.push(
                    vk::WriteDescriptorSet::default()
                        .dst_set(set)
                        .dst_binding(i as u32)
                        .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                        .buffer_info(&infos[i..end]),
                );
                i = end;
            }
        }
        // SAFETY: every set, buffer and range is live and valid (ranges were checked against the limits).
        unsafe { device.update_descriptor_sets(&writes, &[]) };
        for ((key, _, _), set) in requests.iter().zip(sets) {
            self.descriptor_sets.insert(*key, set);
        }
        Ok(())
    }

    /// Creates the control words, the indirect argument slots and their table for `plan`.
    fn create_control(&mut self, plan: ControlPlan, n_program_kernels: usize) -> Result<()> {
        let control_size = padded_size(4 * plan.n_words as u64);
        let control_buf = self.add_buffer("control words", control_size, MemoryLocation::GpuToCpu)?;
        let words = self.buffers[control_buf].host_bytes_mut().ok_or_else(|| VulkanError::Unsupported {
            reason: "the device has no host-visible coherent memory for the control words of loops".into(),
        })?;
        words.fill(0);
        words[4 * ALWAYS_ON as usize..4 * ALWAYS_ON as usize + 4].copy_from_slice(&1u32.to_le_bytes());
        let args_size = (SLOT_BYTES * plan.n_slots() as u64).max(SLOT_BYTES);
        self.buffers.push(DeviceBuffer::with_usage(
            &self.ctx,
            "indirect dispatch arguments",
            args_size,
            MemoryLocation::GpuOnly,
            vk::BufferUsageFlags::INDIRECT_BUFFER,
        )?);
        let args_buf = self.buffers.len() - 1;
        let table: Vec<u8> = plan.table.iter().flat_map(|w| w.to_le_bytes()).collect();
        let table_buf =
            self.add_buffer("predication table", padded_size(table.len() as u64), MemoryLocation::GpuOnly)?;
        self.upload_constants(&[(table_buf, &table)])?;
        let n = self.ctx.caps().max_compute_work_group_count;
        for (slot, entry) in plan.table.chunks_exact(4).enumerate() {
            if entry[..3].iter().zip(n).any(|(&g, max)| g > max) {
                return Err(VulkanError::InvalidStep {
                    step: slot,
                    reason: format!(
                        "predicated step {slot}: {:?} workgroups exceed the device limit {n:?}",
                        &entry[..3]
                    ),
                });
            }
        }
        self.control = Some(Control {
            plan,
            control_buf,
            args_buf,
            table_buf,
            // `create_pipelines` creates the internal kernels right after the program's, in this order.
            gate_pipeline: n_program_kernels,
            fill_pipeline: n_program_kernels + 1,
            copy_pipeline: n_program_kernels + 2,
        });
        Ok(())
    }

    /// Counts the program's steps into the build stats (each step once, however often it is recorded).
    fn count_steps(&mut self, program: &Program) {
        let stats = &mut self.stats;
        walk_steps(&program.steps, &mut |step| match step {
            Step::Dispatch(_) => stats.n_dispatches += 1,
            Step::Fill { .. } => stats.n_fills += 1,
            Step::Copy { .. } => stats.n_copies += 1,
            Step::Loop(_) => stats.n_loops += 1,
            Step::Conditional(_) => stats.n_conditionals += 1,
        });
    }

    fn allocate_cb(&mut self) -> Result<vk::CommandBuffer> {
        let info = vk::CommandBufferAllocateInfo::default()
            .command_pool(self.command_pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(1);
        // SAFETY: the pool is live and only used from `&mut self`, so access is externally synchronized.
        let cbs = unsafe { self.ctx.device().allocate_command_buffers(&info) }
            .map_err(VulkanError::vk("vkAllocateCommandBuffers"))?;
        Ok(cbs[0])
    }

    /// Records the whole program into the main command buffer.
    /// Creates the timestamp pool for [`BuildOptions::profile`] (one query per step, plus one before the first).
    fn create_query_pool(&mut self, program: &Program) -> Result<()> {
        if !self.ctx.caps().timestamps {
            return Err(VulkanError::Unsupported {
                reason: "profiling: this device cannot write timestamps from compute".into(),
            });
        }
        let steps: Vec<(usize, String)> = program
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| match step {
                Step::Dispatch(d) => (i, program.kernels[d.kernel.0 as usize].name.clone()),
                Step::Fill { .. } => (i, "fill".to_string()),
                Step::Copy { .. } => (i, "copy".to_string()),
                Step::Loop(_) | Step::Conditional(_) => (i, "control flow".to_string()),
            })
            .collect();
        let info =
            vk::QueryPoolCreateInfo::default().query_type(vk::QueryType::TIMESTAMP).query_count(steps.len() as u32 + 1);
        // SAFETY: plain object creation on a live device; destroyed in Drop.
        let pool = unsafe { self.ctx.device().create_query_pool(&info, None) }
            .map_err(VulkanError::vk("vkCreateQueryPool"))?;
        self.profile = Some((pool, steps));
        Ok(())
    }

    /// Device time of each step of the last finished call, when built with [`BuildOptions::profile`].
    /// Waits for the last submission first.
    pub fn last_step_times(&self) -> Result<Option<Vec<StepTime>>> {
        let Some((pool, steps)) = &self.profile else { return Ok(None) };
        if self.main_last == 0 {
            return Ok(Some(Vec::new()));
        }
        self.wait_value(self.main_last)?;
        let mut ticks = vec![0u64; steps.len() + 1];
        // SAFETY: every query was written by the finished submission (waited above); the slice matches the count.
        unsafe { self.ctx.device().get_query_pool_results(*pool, 0, &mut ticks, vk::QueryResultFlags::TYPE_64) }
            .map_err(VulkanError::vk("vkGetQueryPoolResults"))?;
        let period = self.ctx.caps().timestamp_period_fs as f64 * 1e-6;
        Ok(Some(
            steps
                .iter()
                .enumerate()
                .map(|(k, (step, name))| StepTime {
                    step: *step,
                    name: name.clone(),
                    nanos: ticks[k + 1].saturating_sub(ticks[k]) as f64 * period,
                })
                .collect(),
        ))
    }

    /// Records the program into command buffers and builds the plan a call runs.
    fn record(&mut self, program: &Program) -> Result<()> {
        let mut rec = self.begin_recording()?;
        let device = self.ctx.device().clone();
        let pool = self.profile.as_ref().map(|(pool, _)| *pool);
        let stamp = |rec: &Recording, query: u32| {
            if let Some(pool) = pool {
                // SAFETY: the pool holds one query per step plus one, reset below before the first write.
                unsafe { device.cmd_write_timestamp(rec.cb, vk::PipelineStageFlags::BOTTOM_OF_PIPE, pool, query) };
            }
        };
        if let Some((pool, steps)) = &self.profile {
            // SAFETY: the pool is live and not in use by any pending submission (we are recording the first time).
            unsafe { device.cmd_reset_query_pool(rec.cb, *pool, 0, steps.len() as u32 + 1) };
        }
        for (staging, input) in self.input_uploads.clone() {
            self.barrier_if(&mut rec, &[(staging.region(), false), (input.region(), true)]);
            self.copy(rec.cb, staging, input, input.range);
        }
        stamp(&rec, 0);
        let mut plan = Vec::new();
        let mut open = Some(rec);
        for (step_idx, step) in program.steps.iter().enumerate() {
            self.record_host_steps(program, step_idx, std::slice::from_ref(step), &mut plan, &mut open)?;
            if let Some(rec) = &open {
                stamp(rec, step_idx as u32 + 1);
            }
        }
        let mut rec = match open.take() {
            Some(rec) => rec,
            None => self.begin_recording()?,
        };
        for (device_side, host_side) in self.output_readbacks.clone() {
            self.barrier_if(&mut rec, &[(device_side.region(), false), (host_side.region(), true)]);
            self.copy(rec.cb, device_side, host_side, device_side.range);
        }
        plan.push(HostOp::Submit(self.finish_recording(rec)?));
        self.plan = plan;
        Ok(())
    }

    fn begin_recording(&mut self) -> Result<Recording> {
        let cb = self.allocate_cb()?;
        // Loop batches are submitted again before their previous submission finished.
        let begin = vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::SIMULTANEOUS_USE);
        // SAFETY: `cb` is a fresh primary command buffer of our pool.
        unsafe { self.ctx.device().begin_command_buffer(cb, &begin) }
            .map_err(VulkanError::vk("vkBeginCommandBuffer"))?;
        self.stats.n_command_buffers += 1;
        Ok(Recording { cb, tracker: Tracker::default(), bound_pipeline: None })
    }

    /// Ends a recording with a barrier that makes its writes visible to the host (outputs, control words).
    fn finish_recording(&mut self, rec: Recording) -> Result<vk::CommandBuffer> {
        let device = self.ctx.device();
        host_barrier(device, rec.cb);
        self.stats.n_barriers += 1;
        // SAFETY: `cb` is in the recording state.
        unsafe { device.end_command_buffer(rec.cb) }.map_err(VulkanError::vk("vkEndCommandBuffer"))?;
        Ok(rec.cb)
    }

    /// The open recording, started if there is none.
    fn open<'r>(&mut self, open: &'r mut Option<Recording>) -> Result<&'r mut Recording> {
        if open.is_none() {
            *open = Some(self.begin_recording()?);
        }
        Ok(open.as_mut().expect("just opened"))
    }

    /// Finishes the open recording, if any, into a submission of the plan.
    fn close(&mut self, open: &mut Option<Recording>, ops: &mut Vec<HostOp>) -> Result<()> {
        if let Some(rec) = open.take() {
            ops.push(HostOp::Submit(self.finish_recording(rec)?));
        }
        Ok(())
    }

    fn barrier_if(&mut self, rec: &mut Recording, accesses: &[(Region, bool)]) {
        if rec.tracker.step(accesses) {
            self.stats.n_barriers += 1;
            full_barrier(self.ctx.device(), rec.cb);
        }
    }

    /// Records `steps` outside predicated code: straight-line work goes into the open recording; loops and
    /// host-driven conditionals close it and add their own operations to `ops`. `step_idx` names the top-level
    /// step in errors.
    fn record_host_steps(
        &mut self,
        program: &Program,
        step_idx: usize,
        steps: &[Step],
        ops: &mut Vec<HostOp>,
        open: &mut Option<Recording>,
    ) -> Result<()> {
        for step in steps {
            let key = step_key(step);
            let host_word = self.control.as_ref().and_then(|c| c.plan.host_words.get(&key).copied());
            let gate = self.control.as_ref().and_then(|c| c.plan.gates.get(&key).copied());
            match step {
                Step::Loop(Loop { body, trip: TripCount::Static(trips) }) if contains_device_loop(body) => {
                    self.close(open, ops)?;
                    let body_ops = self.record_host_block(program, step_idx, body, None)?;
                    if *trips > 0 {
                        ops.push(HostOp::Repeat { times: *trips, ops: body_ops });
                    }
                }
                Step::Loop(Loop { body, trip: TripCount::Static(trips) })
                    if recorded_commands(body).saturating_mul(*trips) > INLINE_STATIC_COMMANDS =>
                {
                    // Too long to unroll: batches of up to `cap` iterations, the largest submitted repeatedly.
                    self.close(open, ops)?;
                    let cap = batch_cap(recorded_commands(body));
                    let (full, rest) = (trips / cap, trips % cap);
                    if full > 0 {
                        let cb = self.record_static_batch(program, step_idx, body, cap)?;
                        ops.push(HostOp::Repeat { times: full, ops: vec![HostOp::Submit(cb)] });
                    }
                    for bit in (0..u64::BITS).rev().filter(|bit| rest & (1 << bit) != 0) {
                        ops.push(HostOp::Submit(self.record_static_batch(program, step_idx, body, 1 << bit)?));
                    }
                }
                Step::Loop(Loop { body, trip: TripCount::Device(cond) }) => {
                    if let Some(gate) = gate {
                        let rec = self.open(open)?;
                        self.record_gate(rec, step, gate, GATE_LOOP_INIT, cond.flag);
                        self.close(open, ops)?;
                        let cap = batch_cap(recorded_commands(&cond.steps) + recorded_commands(body) + 1);
                        let mut batches = Vec::new();
                        let mut size = 1;
                        while size <= cap {
                            batches.push(self.record_device_batch(program, step_idx, step, gate, size)?);
                            size *= 2;
                        }
                        ops.push(HostOp::DeviceLoop { word: gate.word, batches });
                    } else {
                        let word = host_word.expect("a device loop is gated or host driven");
                        self.close(open, ops)?;
                        let cond_ops =
                            self.record_host_block(program, step_idx, &cond.steps, Some((cond.flag, word)))?;
                        let body_ops = self.record_host_block(program, step_idx, body, None)?;
                        ops.push(HostOp::While { cond: cond_ops, word, body: body_ops });
                    }
                }
                Step::Conditional(c) if host_word.is_some() => {
                    let word = host_word.expect("checked");
                    let rec = self.open(open)?;
                    self.record_readback(rec, c.selector, word);
                    self.close(open, ops)?;
                    let branches = c
                        .branches
                        .iter()
                        .map(|branch| self.record_host_block(program, step_idx, branch, None))
                        .collect::<Result<_>>()?;
                    ops.push(HostOp::Switch { word, branches });
                }
                _ => {
                    let rec = self.open(open)?;
                    self.record_inline(program, step_idx, rec, step, false)?;
                }
            }
        }
        Ok(())
    }

    /// The operations of a host-level block of its own; with `read_back`, it ends by copying that buffer's
    /// first word into that control word.
    fn record_host_block(
        &mut self,
        program: &Program,
        step_idx: usize,
        steps: &[Step],
        read_back: Option<(BufferId, u32)>,
    ) -> Result<Vec<HostOp>> {
        let mut ops = Vec::new();
        let mut open = None;
        self.record_host_steps(program, step_idx, steps, &mut ops, &mut open)?;
        if let Some((buffer, word)) = read_back {
            let rec = self.open(&mut open)?;
            self.record_readback(rec, buffer, word);
        }
        self.close(&mut open, &mut ops)?;
        Ok(ops)
    }

    /// A command buffer running `iterations` iterations of a static loop's `body`.
    fn record_static_batch(
        &mut self,
        program: &Program,
        step_idx: usize,
        body: &[Step],
        iterations: u64,
    ) -> Result<vk::CommandBuffer> {
        let mut rec = self.begin_recording()?;
        for _ in 0..iterations {
            for step in body {
                self.record_inline(program, step_idx, &mut rec, step, false)?;
            }
        }
        self.finish_recording(rec)
    }

    /// A command buffer running `iterations` predicated iterations of device loop `step`: condition, gate, body.
    fn record_device_batch(
        &mut self,
        program: &Program,
        step_idx: usize,
        step: &Step,
        gate: Gate,
        iterations: u64,
    ) -> Result<vk::CommandBuffer> {
        let Step::Loop(Loop { body, trip: TripCount::Device(cond) }) = step else {
            unreachable!("called on device loops only")
        };
        let mut rec = self.begin_recording()?;
        for _ in 0..iterations {
            for nested in &cond.steps {
                self.record_inline(program, step_idx, &mut rec, nested, true)?;
            }
            self.record_gate(&mut rec, step, gate, GATE_LOOP_STEP, cond.flag);
            for nested in body {
                self.record_inline(program, step_idx, &mut rec, nested, true)?;
            }
        }
        self.finish_recording(rec)
    }

    /// Records one step that the device runs without the host; `predicated`: inside a conditional branch or a
    /// device loop, where leaves dispatch indirectly from their slot.
    fn record_inline(
        &mut self,
        program: &Program,
        step_idx: usize,
        rec: &mut Recording,
        step: &Step,
        predicated: bool,
    ) -> Result<()> {
        let ctx = self.ctx.clone();
        let device = ctx.device();
        let key = step_key(step);
        let slot = if predicated {
            let control = self.control.as_ref().expect("predicated code has control words");
            let slot = control.plan.slots.get(&key).copied();
            slot.map(|slot| (control.args_buf, slot))
        } else {
            None
        };
        let mut accesses: Vec<(Region, bool)> = match step {
            Step::Dispatch(_) | Step::Fill { .. } | Step::Copy { .. } => program
                .step_accesses(step)
                .into_iter()
                .filter_map(|(id, access)| Some((self.bindings[id.0 as usize]?.region(), access.writes())))
                .collect(),
            _ => Vec::new(),
        };
        if let Some((args_buf, slot)) = slot {
            let start = SLOT_BYTES * slot as u64;
            accesses.push((Region { resource: args_buf, start, end: start + SLOT_BYTES }, false));
        }
        match step {
            Step::Dispatch(d) => {
                let max = ctx.caps().max_compute_work_group_count;
                if d.groups.iter().zip(max).any(|(&n, max)| n > max) {
                    return Err(VulkanError::InvalidStep {
                        step: step_idx,
                        reason: format!("{:?} workgroups exceed the device limit {max:?}", d.groups),
                    });
                }
                self.barrier_if(rec, &accesses);
                let set = self.descriptor_sets.get(&key).copied();
                self.bind_and_push(rec, d.kernel.0 as usize, set, &d.push_constants);
                self.dispatch(rec, d.groups, slot);
            }
            Step::Fill { buffer, word } => {
                let Some(b) = self.bindings[buffer.0 as usize] else { return Ok(()) };
                self.barrier_if(rec, &accesses);
                if let Some(control) = self.control.as_ref().filter(|_| slot.is_some()) {
                    let n_words = b.range / 4;
                    let (_, row_words) = internal_groups(n_words);
                    let push = words_bytes(&[*word, n_words as u32, row_words, 0]);
                    let (pipeline, set) = (control.fill_pipeline, self.descriptor_sets.get(&key).copied());
                    self.bind_and_push(rec, pipeline, set, &push);
                    self.dispatch(rec, [0; 3], slot);
                } else {
                    // SAFETY: offset and size are multiples of 4 inside the buffer (padded sizes, aligned offsets).
                    unsafe { device.cmd_fill_buffer(rec.cb, self.buffers[b.buf].buffer, b.offset, b.range, *word) };
                }
            }
            Step::Copy { src, dst, size_bytes } => {
                let (src_size, dst_size) =
                    (program.buffers[src.0 as usize].size_bytes, program.buffers[dst.0 as usize].size_bytes);
                if *size_bytes > src_size || *size_bytes > dst_size {
                    return Err(VulkanError::InvalidStep {
                        step: step_idx,
                        reason: format!("copy of {size_bytes} bytes from {src_size} into {dst_size} bytes"),
                    });
                }
                if *size_bytes == 0 || src == dst {
                    return Ok(());
                }
                let (Some(s), Some(t)) = (self.bindings[src.0 as usize], self.bindings[dst.0 as usize]) else {
                    return Ok(());
                };
                if let Some(control) = self.control.as_ref().filter(|_| slot.is_some()) {
                    if size_bytes % 4 != 0 {
                        return Err(VulkanError::Unsupported {
                            reason: format!("step {step_idx}: a copy of {size_bytes} bytes (not whole words) inside a loop or conditional"),
                        });
                    }
                    let n_words = size_bytes / 4;
                    let (_, row_words) = internal_groups(n_words);
                    let push = words_bytes(&[n_words as u32, row_words, 0, 0]);
                    let (pipeline, set) = (control.copy_pipeline, self.descriptor_sets.get(&key).copied());
                    self.barrier_if(rec, &accesses);
                    self.bind_and_push(rec, pipeline, set, &push);
                    self.dispatch(rec, [0; 3], slot);
                } else {
                    self.barrier_if(rec, &accesses);
                    self.copy(rec.cb, s, t, *size_bytes);
                }
            }
            Step::Loop(Loop { body, trip: TripCount::Static(trips) }) => {
                if recorded_commands(body).saturating_mul(*trips) > MAX_UNROLLED_COMMANDS {
                    return Err(VulkanError::Unsupported {
                        reason: format!(
                            "step {step_idx}: a static loop of {trips} iterations inside a loop or conditional unrolls to more than {MAX_UNROLLED_COMMANDS} commands"
                        ),
                    });
                }
                for _ in 0..*trips {
                    for nested in body {
                        self.record_inline(program, step_idx, rec, nested, predicated)?;
                    }
                }
            }
            Step::Conditional(c) => {
                let control = self.control.as_ref().expect("conditionals have control words");
                let gate = control.plan.gates[&key];
                self.record_gate(rec, step, gate, GATE_SELECT, c.selector);
                for branch in &c.branches {
                    for nested in branch {
                        self.record_inline(program, step_idx, rec, nested, true)?;
                    }
                }
            }
            Step::Loop(Loop { trip: TripCount::Device(_), .. }) => {
                unreachable!("structures holding device loops are host driven")
            }
        }
        Ok(())
    }

    /// Binds pipeline `pipeline` (unless bound), descriptor set `set` and push constants `push`.
    fn bind_and_push(&self, rec: &mut Recording, pipeline: usize, set: Option<vk::DescriptorSet>, push: &[u8]) {
        let device = self.ctx.device();
        let kernel = &self.pipelines[pipeline];
        // SAFETY: pipeline, layout and set are live and compatible (created together); push constant bytes match
        // the layout's range (checked by Program::validate, or our own kernels' sizes).
        unsafe {
            if rec.bound_pipeline != Some(kernel.pipeline) {
                device.cmd_bind_pipeline(rec.cb, vk::PipelineBindPoint::COMPUTE, kernel.pipeline);
                rec.bound_pipeline = Some(kernel.pipeline);
            }
            if let Some(set) = set {
                device.cmd_bind_descriptor_sets(rec.cb, vk::PipelineBindPoint::COMPUTE, kernel.layout, 0, &[set], &[]);
            }
            if !push.is_empty() {
                device.cmd_push_constants(rec.cb, kernel.layout, vk::ShaderStageFlags::COMPUTE, 0, push);
            }
        }
    }

    /// Dispatches `groups` directly, or indirectly from `slot` (args buffer, slot index) when predicated.
    fn dispatch(&self, rec: &Recording, groups: [u32; 3], slot: Option<(usize, u32)>) {
        let device = self.ctx.device();
        // SAFETY: a pipeline is bound; the slot lies inside the args buffer (sized for every slot), which has
        // INDIRECT_BUFFER usage, and its counts are within the device limits (checked against the table).
        unsafe {
            match slot {
                Some((args_buf, slot)) => {
                    device.cmd_dispatch_indirect(rec.cb, self.buffers[args_buf].buffer, SLOT_BYTES * slot as u64)
                }
                None => device.cmd_dispatch(rec.cb, groups[0], groups[1], groups[2]),
            }
        }
    }

    /// Records gate `gate` of structured step `step` in `mode`, reading its flag or selector from `value`.
    fn record_gate(&mut self, rec: &mut Recording, step: &Step, gate: Gate, mode: u32, value: BufferId) {
        let control = self.control.as_ref().expect("gates have control words");
        let whole = |buf: usize| Region { resource: buf, start: 0, end: self.buffers[buf].size };
        let value = self.bindings[value.0 as usize].expect("a read buffer was placed");
        // The gate binds whole buffers, so (for the synchronization validation too) it touches all of them.
        let accesses = [
            (value.region(), false),
            (whole(control.control_buf), true),
            (whole(control.table_buf), false),
            (whole(control.args_buf), true),
        ];
        let n_slots = if mode == GATE_LOOP_INIT { gate.n_init_slots } else { gate.n_slots };
        let push = words_bytes(&[mode, gate.word, gate.parent, gate.first_slot, n_slots, gate.n_branches, 0, 0]);
        let (pipeline, set) = (control.gate_pipeline, self.descriptor_sets.get(&step_key(step)).copied());
        self.barrier_if(rec, &accesses);
        self.bind_and_push(rec, pipeline, set, &push);
        self.dispatch(rec, [1, 1, 1], None);
    }

    /// Copies the first word of `buffer` into control word `word`, for the host to read after the submission.
    fn record_readback(&mut self, rec: &mut Recording, buffer: BufferId, word: u32) {
        let control = self.control.as_ref().expect("host decisions have control words");
        let src = self.bindings[buffer.0 as usize].expect("a read buffer was placed");
        let dst = Binding { buf: control.control_buf, offset: 4 * word as u64, range: 4 };
        self.barrier_if(rec, &[(src.region(), false), (dst.region(), true)]);
        self.copy(rec.cb, src, dst, 4);
    }

    fn copy(&self, cb: vk::CommandBuffer, src: Binding, dst: Binding, size: u64) {
        let region = vk::BufferCopy { src_offset: src.offset, dst_offset: dst.offset, size };
        // SAFETY: both ranges lie inside their buffers, and never overlap (distinct buffers or regions that are
        // live at the same step, which the placement keeps apart).
        unsafe {
            self.ctx.device().cmd_copy_buffer(cb, self.buffers[src.buf].buffer, self.buffers[dst.buf].buffer, &[region])
        };
    }

    fn record_feedback(&self, cb: vk::CommandBuffer, src: Binding, size: u64, targets: &[Binding]) -> Result<()> {
        let device = self.ctx.device();
        let begin = vk::CommandBufferBeginInfo::default();
        // SAFETY: `cb` is a fresh primary command buffer of our pool.
        unsafe { device.begin_command_buffer(cb, &begin) }.map_err(VulkanError::vk("vkBeginCommandBuffer"))?;
        for &dst in targets {
            if dst.buf == src.buf && dst.offset == src.offset {
                continue;
            }
            if size > 0 {
                self.copy(cb, src, dst, size);
            }
        }
        host_barrier(device, cb);
        // SAFETY: `cb` is in the recording state.
        unsafe { device.end_command_buffer(cb) }.map_err(VulkanError::vk("vkEndCommandBuffer"))
    }

    /// Submits `cb` after all earlier work of this executable; returns the semaphore value it signals.
    fn submit_cb(&mut self, cb: vk::CommandBuffer) -> Result<u64> {
        self.submit_cb_after(cb, &[])
    }

    /// Like [`Executable::submit_cb`], also after `waits` (work on other executables' timelines).
    fn submit_cb_after(&mut self, cb: vk::CommandBuffer, waits: &[SyncPoint]) -> Result<u64> {
        let mut semaphores = vec![self.timeline.semaphore];
        let mut wait_values = vec![self.last_signal];
        for point in waits.iter().filter(|p| !p.on(&self.timeline)) {
            semaphores.push(point.timeline.semaphore);
            wait_values.push(point.value);
        }
        let signal_values = [self.last_signal + 1];
        let signal = [self.timeline.semaphore];
        let stages = vec![vk::PipelineStageFlags::ALL_COMMANDS; semaphores.len()];
        let cbs = [cb];
        let mut timeline = vk::TimelineSemaphoreSubmitInfo::default()
            .wait_semaphore_values(&wait_values)
            .signal_semaphore_values(&signal_values);
        let submit = vk::SubmitInfo::default()
            .wait_semaphores(&semaphores)
            .wait_dst_stage_mask(&stages)
            .command_buffers(&cbs)
            .signal_semaphores(&signal)
            .push_next(&mut timeline);
        let queue = self.ctx.queue();
        // SAFETY: the queue is locked; `cb` is fully recorded and not pending (callers wait for its last
        // submission, or it is a simultaneous-use or fresh per-call buffer); every waited value was signalled by,
        // or is before, an earlier submission on this queue; the other timelines outlive the wait (`Arc`s).
        unsafe { self.ctx.device().queue_submit(*queue, &[submit], vk::Fence::null()) }
            .map_err(VulkanError::vk("vkQueueSubmit"))?;
        self.last_signal += 1;
        Ok(self.last_signal)
    }

    fn wait_value(&self, value: u64) -> Result<()> {
        self.timeline.wait(value)
    }
}

/// Whether running `ops` makes the host read a word the device computed (a device loop or a host-driven
/// structure).
fn has_host_decisions(ops: &[HostOp]) -> bool {
    ops.iter().any(|op| match op {
        HostOp::Submit(_) => false,
        HostOp::Repeat { ops, .. } => has_host_decisions(ops),
        HostOp::DeviceLoop { .. } | HostOp::Switch { .. } | HostOp::While { .. } => true,
    })
}

/// Records a copy of `size` bytes between (buffer, offset) pairs.
fn copy_buffer(device: &ash::Device, cb: vk::CommandBuffer, src: (vk::Buffer, u64), dst: (vk::Buffer, u64), size: u64) {
    let region = vk::BufferCopy { src_offset: src.1, dst_offset: dst.1, size };
    // SAFETY: `cb` is recording; callers pass ranges inside live, distinct buffers.
    unsafe { device.cmd_copy_buffer(cb, src.0, dst.0, &[region]) };
}

/// Little-endian bytes of push-constant words.
fn words_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Orders every earlier compute and transfer access before every later one, the reads of indirect dispatch
/// arguments included.
fn full_barrier(device: &ash::Device, cb: vk::CommandBuffer) {
    let stages = vk::PipelineStageFlags::COMPUTE_SHADER
        | vk::PipelineStageFlags::TRANSFER
        | vk::PipelineStageFlags::DRAW_INDIRECT;
    let barrier = vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(
            vk::AccessFlags::SHADER_READ
                | vk::AccessFlags::SHADER_WRITE
                | vk::AccessFlags::TRANSFER_READ
                | vk::AccessFlags::TRANSFER_WRITE
                | vk::AccessFlags::INDIRECT_COMMAND_READ,
        );
    // SAFETY: `cb` is recording; a global memory barrier between compute/transfer stages is always valid.
    unsafe { device.cmd_pipeline_barrier(cb, stages, stages, vk::DependencyFlags::empty(), &[barrier], &[], &[]) };
}

/// Makes every earlier device write visible to host reads.
pub(crate) fn host_barrier(device: &ash::Device, cb: vk::CommandBuffer) {
    let barrier = vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(vk::AccessFlags::HOST_READ);
    // SAFETY: `cb` is recording; the barrier is valid outside a render pass.
    unsafe {
        device.cmd_pipeline_barrier(
            cb,
            vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::HOST,
            vk::DependencyFlags::empty(),
            &[barrier],
            &[],
            &[],
        )
    };
}

impl fmt::Debug for Executable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executable").field("stats", &self.stats).finish_non_exhaustive()
    }
}

impl Drop for Executable {
    fn drop(&mut self) {
        let device = self.ctx.device();
        if self.wait_value(self.last_signal).is_err() {
            let _queue = self.ctx.queue();
            // SAFETY: the queue is locked (vkDeviceWaitIdle needs every queue externally synchronized).
            let _ = unsafe { device.device_wait_idle() };
        }
        // SAFETY: the device has finished all work of this executable (waited above), each object is destroyed
        // once, and destroying a null handle is a no-op. Buffers, retired arrays and the timeline are dropped
        // after this, as fields.
        unsafe {
            for p in self.pipelines.drain(..) {
                device.destroy_pipeline(p.pipeline, None);
                device.destroy_pipeline_layout(p.layout, None);
                device.destroy_descriptor_set_layout(p.set_layout, None);
            }
            device.destroy_descriptor_pool(self.descriptor_pool, None);
            for v in self.buffer_views.drain(..) {
                device.destroy_buffer_view(v, None);
            }
            device.destroy_command_pool(self.command_pool, None);
            device.destroy_command_pool(self.call_pool, None);
            if let Some((pool, _)) = self.profile.take() {
                device.destroy_query_pool(pool, None);
            }
        }
    }
}
