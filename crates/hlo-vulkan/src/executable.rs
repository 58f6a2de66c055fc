//! An [`Executable`]: a [`Program`] turned into pipelines, buffers and one recorded command buffer.
//!
//! Build (once): validate the program, place buffers ([`crate::memory`]), upload constants, create one compute
//! pipeline per kernel through the on-disk pipeline cache, allocate one descriptor set per dispatch, and record
//! every step into a single command buffer with barriers only where [`crate::hazard`] says they are needed.
//!
//! Run (every call): write the inputs into mapped memory (or staging buffers), submit the recorded command
//! buffer, wait on the executable's timeline semaphore, read the outputs from mapped memory (or readback
//! buffers).
//! Every submission waits on the previous one's semaphore value, so submissions of one executable never
//! overlap on the device, and the host functions that touch buffers wait for the last submission first.

use std::collections::HashMap;
use std::ffi::CString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ash::vk;
use gpu_allocator::MemoryLocation;
use hlo_program::{BufferRole, Program, Step};

use crate::context::Context;
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

/// A compiled, recorded program; see the module docs.
pub struct Executable {
    ctx: Arc<Context>,
    force_staging: bool,
    pipelines: Vec<KernelPipeline>,
    descriptor_pool: vk::DescriptorPool,
    /// One descriptor set per step (`None` for steps that are not dispatches or bind nothing).
    descriptor_sets: Vec<Option<vk::DescriptorSet>>,
    command_pool: vk::CommandPool,
    main_cb: vk::CommandBuffer,
    /// The semaphore value the last submission of `main_cb` signals.
    main_last: u64,
    /// Small command buffers for [`Executable::copy_output_to_input`], recorded on first use.
    feedback_cbs: HashMap<(usize, usize), (vk::CommandBuffer, u64)>,
    semaphore: vk::Semaphore,
    /// The value the latest submission signals; the semaphore reaches it when all work is done.
    last_signal: u64,
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
        // Every Vulkan object is created through `exe`, whose Drop destroys whatever exists on any error path.
        let mut exe = Executable {
            ctx: ctx.clone(),
            force_staging: options.force_staging,
            pipelines: Vec::new(),
            descriptor_pool: vk::DescriptorPool::null(),
            descriptor_sets: Vec::new(),
            command_pool: vk::CommandPool::null(),
            main_cb: vk::CommandBuffer::null(),
            main_last: 0,
            feedback_cbs: HashMap::new(),
            semaphore: vk::Semaphore::null(),
            last_signal: 0,
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
        exe.create_sync_objects()?;
        exe.create_buffers(program)?;
        exe.create_pipelines(program, options.pipeline_cache_dir.as_deref())?;
        exe.create_descriptor_sets(program)?;
        if options.profile {
            exe.create_query_pool(program)?;
        }
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
    pub fn submit(&mut self) -> Result<Ticket> {
        // A command buffer may not be submitted again while it is still pending.
        self.wait_value(self.main_last)?;
        let value = self.submit_cb(self.main_cb)?;
        self.main_last = value;
        Ok(Ticket(value))
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
        let mut timeline = vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE);
        let info = vk::SemaphoreCreateInfo::default().push_next(&mut timeline);
        // SAFETY: valid create info; timeline semaphores are enabled on every context's device.
        self.semaphore =
            unsafe { device.create_semaphore(&info, None) }.map_err(VulkanError::vk("vkCreateSemaphore"))?;
        let info = vk::CommandPoolCreateInfo::default().queue_family_index(self.ctx.queue_family());
        // SAFETY: valid create info for the context's queue family.
        self.command_pool =
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
        let layout = place_temps(&items, caps.min_storage_buffer_offset_alignment, cap);
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

    /// A buffer bound to a dispatch must fit `maxStorageBufferRange`.
    fn check_binding_ranges(&self, program: &Program, max: u64) -> Result<()> {
        for step in &program.steps {
            if let Step::Dispatch(d) = step {
                for id in &d.buffers {
                    let buffer = &program.buffers[id.0 as usize];
                    if padded_size(buffer.size_bytes) > max {
                        return Err(VulkanError::BufferTooLarge {
                            name: buffer.name.clone(),
                            size: buffer.size_bytes,
                            max,
                            limit: "maxStorageBufferRange",
                        });
                    }
                }
            }
        }
        Ok(())
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

    fn create_pipelines(&mut self, program: &Program, cache_dir: Option<&Path>) -> Result<()> {
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
        for kernel in &program.kernels {
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
        if kernel.bindings.len() > caps.max_per_stage_storage_buffers as usize {
            return Err(bad(format!(
                "{} storage buffers, the device allows {}",
                kernel.bindings.len(),
                caps.max_per_stage_storage_buffers
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
        let layout_bindings: Vec<_> = (0..kernel.bindings.len() as u32)
            .map(|i| {
                vk::DescriptorSetLayoutBinding::default()
                    .binding(i)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
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

    /// One descriptor set per dispatch, written once: the bindings never change between runs.
    fn create_descriptor_sets(&mut self, program: &Program) -> Result<()> {
        let dispatches: Vec<(usize, &hlo_program::Dispatch)> = program
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, step)| match step {
                Step::Dispatch(d) if !d.buffers.is_empty() => Some((i, d)),
                _ => None,
            })
            .collect();
        self.descriptor_sets = vec![None; program.steps.len()];
        if dispatches.is_empty() {
            return Ok(());
        }
        let device = self.ctx.device();
        let n_descriptors: usize = dispatches.iter().map(|(_, d)| d.buffers.len()).sum();
        let sizes =
            [vk::DescriptorPoolSize { ty: vk::DescriptorType::STORAGE_BUFFER, descriptor_count: n_descriptors as u32 }];
        let info = vk::DescriptorPoolCreateInfo::default().max_sets(dispatches.len() as u32).pool_sizes(&sizes);
        // SAFETY: valid create info; the pool is destroyed in Drop.
        self.descriptor_pool =
            unsafe { device.create_descriptor_pool(&info, None) }.map_err(VulkanError::vk("vkCreateDescriptorPool"))?;
        let layouts: Vec<_> = dispatches.iter().map(|(_, d)| self.pipelines[d.kernel.0 as usize].set_layout).collect();
        let info = vk::DescriptorSetAllocateInfo::default().descriptor_pool(self.descriptor_pool).set_layouts(&layouts);
        // SAFETY: the pool was sized for exactly these sets.
        let sets =
            unsafe { device.allocate_descriptor_sets(&info) }.map_err(VulkanError::vk("vkAllocateDescriptorSets"))?;
        let infos: Vec<Vec<vk::DescriptorBufferInfo>> = dispatches
            .iter()
            .map(|(_, d)| {
                d.buffers
                    .iter()
                    .map(|id| {
                        // Every buffer a step touches has a binding (validated program, placed temps).
                        let b = self.bindings[id.0 as usize].expect("bound buffer was placed");
                        vk::DescriptorBufferInfo {
                            buffer: self.buffers[b.buf].buffer,
                            offset: b.offset,
                            range: b.range,
                        }
                    })
                    .collect()
            })
            .collect();
        let writes: Vec<_> = sets
            .iter()
            .zip(&infos)
            .map(|(&set, infos)| {
                vk::WriteDescriptorSet::default()
                    .dst_set(set)
                    .dst_binding(0)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                    .buffer_info(infos)
            })
            .collect();
        // SAFETY: every set, buffer and range is live and valid (ranges were checked against the limits).
        unsafe { device.update_descriptor_sets(&writes, &[]) };
        for ((step, _), set) in dispatches.iter().zip(sets) {
            self.descriptor_sets[*step] = Some(set);
        }
        Ok(())
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

    fn record(&mut self, program: &Program) -> Result<()> {
        self.main_cb = self.allocate_cb()?;
        let cb = self.main_cb;
        let ctx = self.ctx.clone();
        let device = ctx.device();
        let caps = ctx.caps();
        let begin = vk::CommandBufferBeginInfo::default();
        // SAFETY: `cb` is a fresh primary command buffer of our pool.
        unsafe { device.begin_command_buffer(cb, &begin) }.map_err(VulkanError::vk("vkBeginCommandBuffer"))?;
        let pool = self.profile.as_ref().map(|(pool, _)| *pool);
        let mut n_stamps = 0u32;
        let stamp = |n_stamps: &mut u32| {
            if let Some(pool) = pool {
                // SAFETY: the pool holds one query per step plus one, reset below before the first write.
                unsafe { device.cmd_write_timestamp(cb, vk::PipelineStageFlags::BOTTOM_OF_PIPE, pool, *n_stamps) };
                *n_stamps += 1;
            }
        };
        if let Some((pool, steps)) = &self.profile {
            // SAFETY: the pool is live and not in use by any pending submission (we are recording the first time).
            unsafe { device.cmd_reset_query_pool(cb, *pool, 0, steps.len() as u32 + 1) };
        }
        let mut tracker = Tracker::default();
        let mut n_barriers = 0;
        let mut barrier_if = |needed: bool| {
            if needed {
                n_barriers += 1;
                full_barrier(device, cb);
            }
        };

        for &(staging, input) in &self.input_uploads {
            barrier_if(tracker.step(&[(staging.region(), false), (input.region(), true)]));
            self.copy(cb, staging, input, input.range);
        }
        stamp(&mut n_stamps);
        let mut bound_pipeline = None;
        for (step_idx, step) in program.steps.iter().enumerate() {
            if step_idx > 0 {
                stamp(&mut n_stamps);
            }
            let accesses: Vec<(Region, bool)> = program
                .step_accesses(step)
                .into_iter()
                .filter_map(|(id, access)| Some((self.bindings[id.0 as usize]?.region(), access.writes())))
                .collect();
            match step {
                Step::Dispatch(d) => {
                    self.stats.n_dispatches += 1;
                    if d.groups.iter().zip(caps.max_compute_work_group_count).any(|(&n, max)| n > max) {
                        return Err(VulkanError::InvalidStep {
                            step: step_idx,
                            reason: format!(
                                "{:?} workgroups exceed the device limit {:?}",
                                d.groups, caps.max_compute_work_group_count
                            ),
                        });
                    }
                    barrier_if(tracker.step(&accesses));
                    let kernel = &self.pipelines[d.kernel.0 as usize];
                    // SAFETY: pipeline, layout and set are live and compatible (created together above); push
                    // constant bytes match the layout's range (checked by Program::validate).
                    unsafe {
                        if bound_pipeline != Some(kernel.pipeline) {
                            device.cmd_bind_pipeline(cb, vk::PipelineBindPoint::COMPUTE, kernel.pipeline);
                            bound_pipeline = Some(kernel.pipeline);
                        }
                        if let Some(set) = self.descriptor_sets[step_idx] {
                            device.cmd_bind_descriptor_sets(
                                cb,
                                vk::PipelineBindPoint::COMPUTE,
                                kernel.layout,
                                0,
                                &[set],
                                &[],
                            );
                        }
                        if !d.push_constants.is_empty() {
                            device.cmd_push_constants(
                                cb,
                                kernel.layout,
                                vk::ShaderStageFlags::COMPUTE,
                                0,
                                &d.push_constants,
                            );
                        }
                        device.cmd_dispatch(cb, d.groups[0], d.groups[1], d.groups[2]);
                    }
                }
                Step::Fill { buffer, word } => {
                    self.stats.n_fills += 1;
                    let Some(b) = self.bindings[buffer.0 as usize] else { continue };
                    barrier_if(tracker.step(&accesses));
                    // SAFETY: offset and size are multiples of 4 inside the buffer (padded sizes, aligned offsets).
                    unsafe { device.cmd_fill_buffer(cb, self.buffers[b.buf].buffer, b.offset, b.range, *word) };
                }
                Step::Copy { src, dst, size_bytes } => {
                    self.stats.n_copies += 1;
                    let (src_size, dst_size) =
                        (program.buffers[src.0 as usize].size_bytes, program.buffers[dst.0 as usize].size_bytes);
                    if *size_bytes > src_size || *size_bytes > dst_size {
                        return Err(VulkanError::InvalidStep {
                            step: step_idx,
                            reason: format!("copy of {size_bytes} bytes from {src_size} into {dst_size} bytes"),
                        });
                    }
                    if *size_bytes == 0 || src == dst {
                        continue;
                    }
                    let (Some(s), Some(t)) = (self.bindings[src.0 as usize], self.bindings[dst.0 as usize]) else {
                        continue;
                    };
                    barrier_if(tracker.step(&accesses));
                    self.copy(cb, s, t, *size_bytes);
                }
            }
        }
        if !program.steps.is_empty() {
            stamp(&mut n_stamps);
        }
        for &(device_side, host_side) in &self.output_readbacks {
            barrier_if(tracker.step(&[(device_side.region(), false), (host_side.region(), true)]));
            self.copy(cb, device_side, host_side, device_side.range);
        }
        // The host reads outputs after waiting on the semaphore; make the device's writes visible to it.
        host_barrier(device, cb);
        n_barriers += 1;
        self.stats.n_barriers = n_barriers;
        // SAFETY: `cb` is in the recording state.
        unsafe { device.end_command_buffer(cb) }.map_err(VulkanError::vk("vkEndCommandBuffer"))?;
        Ok(())
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
        let wait_values = [self.last_signal];
        let signal_values = [self.last_signal + 1];
        let semaphores = [self.semaphore];
        let stages = [vk::PipelineStageFlags::ALL_COMMANDS];
        let cbs = [cb];
        let mut timeline = vk::TimelineSemaphoreSubmitInfo::default()
            .wait_semaphore_values(&wait_values)
            .signal_semaphore_values(&signal_values);
        let submit = vk::SubmitInfo::default()
            .wait_semaphores(&semaphores)
            .wait_dst_stage_mask(&stages)
            .command_buffers(&cbs)
            .signal_semaphores(&semaphores)
            .push_next(&mut timeline);
        let queue = self.ctx.queue();
        // SAFETY: the queue is locked; `cb` is fully recorded and not pending (callers wait for its last
        // submission); the wait value was signalled by, or is before, an earlier submission on this queue.
        unsafe { self.ctx.device().queue_submit(*queue, &[submit], vk::Fence::null()) }
            .map_err(VulkanError::vk("vkQueueSubmit"))?;
        self.last_signal += 1;
        Ok(self.last_signal)
    }

    fn wait_value(&self, value: u64) -> Result<()> {
        if value == 0 {
            return Ok(());
        }
        let semaphores = [self.semaphore];
        let values = [value];
        let info = vk::SemaphoreWaitInfo::default().semaphores(&semaphores).values(&values);
        // SAFETY: the semaphore is live, and `value` was (or will be, by submitted work) signalled.
        unsafe { self.ctx.device().wait_semaphores(&info, u64::MAX) }.map_err(VulkanError::vk("vkWaitSemaphores"))
    }
}

/// Orders every earlier compute and transfer access before every later one.
fn full_barrier(device: &ash::Device, cb: vk::CommandBuffer) {
    let stages = vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER;
    let barrier = vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(
            vk::AccessFlags::SHADER_READ
                | vk::AccessFlags::SHADER_WRITE
                | vk::AccessFlags::TRANSFER_READ
                | vk::AccessFlags::TRANSFER_WRITE,
        );
    // SAFETY: `cb` is recording; a global memory barrier between compute/transfer stages is always valid.
    unsafe { device.cmd_pipeline_barrier(cb, stages, stages, vk::DependencyFlags::empty(), &[barrier], &[], &[]) };
}

/// Makes every earlier device write visible to host reads.
fn host_barrier(device: &ash::Device, cb: vk::CommandBuffer) {
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
        // once, and destroying a null handle is a no-op. Buffers are dropped after this, as fields.
        unsafe {
            for p in self.pipelines.drain(..) {
                device.destroy_pipeline(p.pipeline, None);
                device.destroy_pipeline_layout(p.layout, None);
                device.destroy_descriptor_set_layout(p.set_layout, None);
            }
            device.destroy_descriptor_pool(self.descriptor_pool, None);
            device.destroy_command_pool(self.command_pool, None);
            device.destroy_semaphore(self.semaphore, None);
            if let Some((pool, _)) = self.profile.take() {
                device.destroy_query_pool(pool, None);
            }
        }
    }
}
