//! The objects behind the PJRT handles: one client per Vulkan context, its single device and
//! memory, buffers (device arrays of the runtime), compiled executables and events.
//!
//! Everything here is safe Rust; `api.rs` turns handles into references and back.

use std::ffi::c_char;
use std::sync::{Arc, Mutex, MutexGuard};

use hlo_ir::{DType, Module};
use hlo_spirv::{DeviceStorage, HostIo, Target};
use hlo_vulkan::{ArrayInput, Context, ContextOptions, DeviceArray};

use crate::error::{Error, PjrtError, Result};
use crate::ffi::{self, NamedValue};
use crate::types;

/// The platform name JAX sees (`jax.devices()[0].platform`).
pub const PLATFORM_NAME: &str = "vulkan";
/// The one memory kind: the device's own memory.
pub const MEMORY_KIND: &str = "device";

/// A `PJRT_Client`: the Vulkan context, the codegen target for its device, the device and its memory.
pub struct Client {
    ctx: Arc<Context>,
    target: Target,
    /// An executable of the empty program: `upload` makes device arrays before any program exists.
    uploader: Mutex<hlo_vulkan::Executable>,
    pub device: Box<Device>,
    pub memory: Box<Memory>,
    pub devices: Vec<*mut Device>,
    pub memories: Vec<*mut Memory>,
    pub platform_version: String,
}

/// A `PJRT_Device` (the context's physical device) with its `PJRT_DeviceDescription`.
pub struct Device {
    pub description: DeviceDescription,
    pub memories: Vec<*mut Memory>,
    ctx: Arc<Context>,
}

impl Device {
    /// The device memory the runtime's allocator holds now (`jax.Device.memory_stats()`).
    pub fn memory_report(&self) -> hlo_vulkan::MemoryReport {
        self.ctx.memory_report()
    }
}

/// A `PJRT_DeviceDescription`.
pub struct DeviceDescription {
    pub id: i32,
    pub kind: String,
    pub debug_string: String,
    pub to_string: String,
    /// No attributes yet; an empty list.
    pub attributes: Vec<NamedValue>,
}

/// A `PJRT_Memory`: the device's memory, the only one.
pub struct Memory {
    pub id: i32,
    pub kind: &'static str,
    pub debug_string: String,
    pub to_string: String,
    pub devices: Vec<*mut Device>,
}

/// A `PJRT_Event`. Every event this plugin makes is ready when it is made: work is finished (or has
/// failed) before the call that returns the event returns.
pub struct Event {
    pub error: Option<PjrtError>,
}

impl Event {
    pub fn ready() -> Event {
        Event { error: None }
    }
}

/// A `PJRT_Buffer`: an array on the device, in the runtime's device format ([`HostIo`]).
pub struct Buffer {
    pub client: *const Client,
    pub io: HostIo,
    pub pjrt_type: u32,
    /// `[rank-1, ..., 0]`: every buffer is row-major.
    pub minor_to_major: Vec<i64>,
    /// `None` once deleted; shared so that one array can be passed as several arguments.
    array: Mutex<Option<Arc<DeviceArray>>>,
    pub external_references: Mutex<i64>,
}

/// What a compiled program tells about itself; shared by a `PJRT_LoadedExecutable` and every
/// `PJRT_Executable` taken from it.
pub struct ExecutableInfo {
    pub name: String,
    pub inputs: Vec<HostIo>,
    pub outputs: Vec<HostIo>,
    /// Per input: the output whose memory it may be donated to (the module's `input_output_alias`, or a
    /// `buffer_donor` matched to an output of its type and shape).
    pub donations: Vec<Option<usize>>,
    pub output_types: Vec<u32>,
    /// The output shapes concatenated, and the rank of each.
    pub output_dims: Vec<i64>,
    pub output_ranks: Vec<usize>,
    /// The first byte of each output's memory kind: `const char*` pointers, as references so that
    /// the info can be shared between threads.
    pub output_memory_kinds: Vec<&'static u8>,
    pub output_memory_kind_sizes: Vec<usize>,
    /// The program as received (`"mlir"`: StableHLO bytecode or text), returned by `OptimizedProgram`.
    pub program: Vec<u8>,
    pub program_format: &'static str,
    /// SPIR-V bytes of all kernels.
    pub code_size: i64,
}

/// A `PJRT_Executable`: the description of a compiled program.
pub struct Executable {
    pub info: Arc<ExecutableInfo>,
}

/// A `PJRT_LoadedExecutable`: a compiled program built for the client's device.
pub struct LoadedExecutable {
    pub client: *const Client,
    pub info: Arc<ExecutableInfo>,
    /// `None` once deleted.
    runtime: Mutex<Option<hlo_vulkan::Executable>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock was caught at the FFI boundary; the data is still usable.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Client {
    /// Opens the Vulkan device chosen by `HLO_VULKAN_DEVICE` (with validation under `HLO_VULKAN_VALIDATION=1`).
    pub fn new() -> Result<Box<Client>> {
        let ctx =
            Context::new(&ContextOptions::from_env()).map_err(|e| Error::Internal(format!("opening Vulkan: {e}")))?;
        let target = target_for(&ctx);
        let uploader = hlo_vulkan::Executable::with_options(
            &ctx,
            &hlo_program::Program::default(),
            &hlo_vulkan::BuildOptions::default(),
        )?;
        let info = ctx.info();
        let mut device = Box::new(Device {
            description: DeviceDescription {
                id: 0,
                kind: info.name.clone(),
                debug_string: format!("VulkanDevice(id=0, {})", info.short()),
                to_string: "VulkanDevice(id=0)".to_string(),
                attributes: Vec::new(),
            },
            memories: Vec::new(),
            ctx: ctx.clone(),
        });
        let mut memory = Box::new(Memory {
            id: 0,
            kind: MEMORY_KIND,
            debug_string: format!("VulkanMemory(id=0, kind={MEMORY_KIND}, device={})", info.short()),
            to_string: format!("VulkanMemory(kind={MEMORY_KIND})"),
            devices: Vec::new(),
        });
        // The boxes never move, so these pointers stay valid as long as the client lives.
        let device_ptr: *mut Device = &mut *device;
        let memory_ptr: *mut Memory = &mut *memory;
        device.memories.push(memory_ptr);
        memory.devices.push(device_ptr);
        let platform_version = format!(
            "hlo-vk {} on {} (driver {} {}, Vulkan {}.{}.{})",
            env!("CARGO_PKG_VERSION"),
            info.name,
            info.driver_name,
            info.driver_info,
            info.api_version.0,
            info.api_version.1,
            info.api_version.2
        );
        Ok(Box::new(Client {
            ctx,
            target,
            uploader: Mutex::new(uploader),
            device,
            memory,
            devices: vec![device_ptr],
            memories: vec![memory_ptr],
            platform_version,
        }))
    }

    pub fn device_ptr(&self) -> *mut Device {
        self.devices[0]
    }

    pub fn memory_ptr(&self) -> *mut Memory {
        self.memories[0]
    }

    /// Fails with every Vulkan validation message reported since the last check.
    fn check_validation(&self) -> Result<()> {
        let messages = self.ctx.take_validation_messages();
        if messages.is_empty() {
            return Ok(());
        }
        let text: Vec<String> = messages.iter().map(|m| m.to_string()).collect();
        Err(Error::Internal(format!("Vulkan validation reported {} message(s):\n{}", messages.len(), text.join("\n"))))
    }

    /// Copies a dense row-major host array (numpy's layout) to a new buffer on the device.
    pub fn buffer_from_host(&self, dtype: DType, dims: &[i64], host: &[u8]) -> Result<Buffer> {
        let io = host_io("argument", dtype, dims)?;
        if host.len() != io.host_bytes() {
            return Err(Error::InvalidArgument(format!(
                "a {} array of shape {dims:?} needs {} bytes, {} given",
                dtype.name(),
                io.host_bytes(),
                host.len()
            )));
        }
        let device_bytes = io.to_device(host);
        let array = lock(&self.uploader).upload(&device_bytes)?;
        Ok(Buffer::new(self, io, array))
    }

    /// Compiles a program (`format` `"mlir"`: a StableHLO portable artifact or StableHLO text).
    pub fn compile(&self, format: &[u8], code: &[u8]) -> Result<LoadedExecutable> {
        if format != b"mlir" {
            return Err(Error::Unimplemented(format!(
                "program format `{}`: the Vulkan plugin compiles only \"mlir\" (StableHLO)",
                String::from_utf8_lossy(format)
            )));
        }
        dump_program(code);
        let module = read_stablehlo(code)?;
        let compiled = compile_module(&module, &self.target)?;
        let runtime =
            hlo_vulkan::Executable::with_options(&self.ctx, &compiled.program, &hlo_vulkan::BuildOptions::default())?;
        self.check_validation()?;
        let outputs = compiled.outputs.clone();
        let mut output_types = Vec::with_capacity(outputs.len());
        for io in &outputs {
            output_types.push(types::to_pjrt(io.dtype).ok_or_else(|| {
                Error::Unsupported(format!("output `{}` has element type {}", io.name, io.dtype.name()))
            })?);
        }
        let donations = donations(&module, &compiled.inputs, &outputs);
        let info = ExecutableInfo {
            name: module.name.clone(),
            donations,
            inputs: compiled.inputs.clone(),
            output_dims: outputs.iter().flat_map(|io| io.dims.iter().copied()).collect(),
            output_ranks: outputs.iter().map(|io| io.dims.len()).collect(),
            output_memory_kinds: outputs.iter().map(|_| &MEMORY_KIND.as_bytes()[0]).collect(),
            output_memory_kind_sizes: outputs.iter().map(|_| MEMORY_KIND.len()).collect(),
            output_types,
            outputs,
            program: code.to_vec(),
            program_format: "mlir",
            code_size: compiled.program.kernels.iter().map(|k| 4 * k.spirv.len() as i64).sum(),
        };
        Ok(LoadedExecutable { client: self, info: Arc::new(info), runtime: Mutex::new(Some(runtime)) })
    }
}

/// Per input leaf, the output leaf it may be donated to: the module's `input_output_alias` (JAX's
/// `tf.aliasing_output`), then each `buffer_donor` paired with the first output of its dtype and shape
/// that nothing else is donated to. Entries of other forms (tuple parameters, nested output paths) and
/// pairs whose arrays differ are ignored: those inputs are read, not donated.
fn donations(module: &Module, inputs: &[HostIo], outputs: &[HostIo]) -> Vec<Option<usize>> {
    let mut donate = vec![None; inputs.len()];
    let entry = module.entry_comp();
    if entry.params.iter().any(|&p| entry.instr(p).shape.is_tuple()) || entry.params.len() != inputs.len() {
        return donate;
    }
    let attr = |name: &str| module.attrs.other.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let fits = |input: usize, output: usize| {
        inputs.get(input).zip(outputs.get(output)).is_some_and(|(i, o)| i.dtype == o.dtype && i.dims == o.dims)
    };
    let mut taken = vec![false; outputs.len()];
    // `{ {1}: (0, {}, may-alias), {}: (2, {}) }`
    for group in attr("input_output_alias").map(alias_groups).unwrap_or_default() {
        let Some((path, rest)) = group.split_once(':') else { continue };
        let output = match path.trim().trim_start_matches('{').trim_end_matches('}').trim() {
            "" => 0,
            k => match k.parse::<usize>() {
                Ok(k) => k,
                Err(_) => continue,
            },
        };
        let mut parts = rest.trim().trim_start_matches('(').trim_end_matches(')').split(',').map(str::trim);
        let (Some(Ok(input)), Some("{}")) = (parts.next().map(str::parse::<usize>), parts.next()) else { continue };
        if fits(input, output) && !taken[output] && donate[input].is_none() {
            donate[input] = Some(output);
            taken[output] = true;
        }
    }
    // `{ (1, {}), (3, {}) }`
    for group in attr("buffer_donor").map(alias_groups).unwrap_or_default() {
        let mut parts = group.trim().trim_start_matches('(').trim_end_matches(')').split(',').map(str::trim);
        let (Some(Ok(input)), Some("{}")) = (parts.next().map(str::parse::<usize>), parts.next()) else { continue };
        if donate.get(input) != Some(&None) {
            continue;
        }
        if let Some(output) = (0..outputs.len()).find(|&o| !taken[o] && fits(input, o)) {
            donate[input] = Some(output);
            taken[output] = true;
        }
    }
    donate
}

/// The entries of an alias list `{ A, B, ... }`, split at the commas outside parentheses and braces.
fn alias_groups(text: &str) -> Vec<&str> {
    let body = text.trim();
    let body = body.strip_prefix('{').and_then(|b| b.strip_suffix('}')).unwrap_or("");
    let mut groups = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (k, c) in body.char_indices() {
        match c {
            '(' | '{' => depth += 1,
            ')' | '}' => depth -= 1,
            ',' if depth == 0 => {
                groups.push(body[start..k].trim());
                start = k + 1;
            }
            _ => {}
        }
    }
    if !body[start..].trim().is_empty() {
        groups.push(body[start..].trim());
    }
    groups
}

/// The leaf description of an array of `dtype` and `dims`, if the device stores that type.
fn host_io(name: &str, dtype: DType, dims: &[i64]) -> Result<HostIo> {
    if let Some(&d) = dims.iter().find(|&&d| d < 0) {
        return Err(Error::InvalidArgument(format!("dimension {d} is negative")));
    }
    let device = DeviceStorage::of(dtype)
        .ok_or_else(|| Error::Unsupported(format!("element type {} is not supported on Vulkan", dtype.name())))?;
    Ok(HostIo { name: name.to_string(), dtype, dims: dims.to_vec(), device })
}

/// With `HLO_PJRT_DUMP_DIR` set, writes each program the plugin is asked to compile there
/// (`program-N.mlirbc` or `.mlir`), to be replayed with `hlo-run` or the tests.
fn dump_program(code: &[u8]) {
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Some(dir) = std::env::var_os("HLO_PJRT_DUMP_DIR") else { return };
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ext = if code.starts_with(b"ML\xEFR") { "mlirbc" } else { "mlir" };
    let path = std::path::Path::new(&dir).join(format!("program-{n}.{ext}"));
    // A dump is a debugging aid: failing to write it must not fail the compilation.
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(path, code));
}

/// Reads the program JAX sends: MLIR bytecode (a portable artifact, starting `ML\xEFR`) or text.
pub fn read_stablehlo(code: &[u8]) -> Result<Module> {
    let read = if code.starts_with(b"ML\xEFR") {
        hlo_stablehlo::read_portable_artifact(code)
    } else {
        let text = std::str::from_utf8(code).map_err(|e| {
            Error::InvalidArgument(format!("the StableHLO program is neither MLIR bytecode nor UTF-8 text: {e}"))
        })?;
        hlo_stablehlo::parse_text(text)
    };
    read.map_err(|e| match e {
        hlo_stablehlo::Error::Unsupported { .. } => Error::Unsupported(format!("reading the StableHLO program: {e}")),
        other => Error::InvalidArgument(format!("reading the StableHLO program: {other}")),
    })
}

/// The pass pipeline and SPIR-V codegen, as `hlo-run` runs them for Vulkan.
pub fn compile_module(module: &Module, target: &Target) -> Result<hlo_spirv::Compiled> {
    let unsupported = module.comps.iter().flat_map(|c| &c.instrs).find_map(|i| {
        let opcode = i.op.opcode();
        let reason = if !hlo_spirv::supports(opcode) {
            "the Vulkan backend has no lowering for this op"
        } else {
            hlo_spirv::refusal_on(opcode, target)?
        };
        Some((i, reason))
    });
    if let Some((instr, reason)) = unsupported {
        return Err(Error::Unsupported(format!(
            "unsupported on Vulkan: {} ({}): {reason}",
            instr.op.opcode().name(),
            instr.name
        )));
    }
    let mut optimized = module.clone();
    let mut opts = hlo_passes::PipelineOptions { max_kernel_buffers: target.max_storage_buffers, ..Default::default() };
    hlo_passes::run_pipeline(&mut optimized, &mut opts).map_err(|e| match e {
        hlo_passes::PassError::Unsupported { .. } => Error::Unsupported(format!("unsupported on Vulkan: {e}")),
        other => Error::Internal(format!("internal compiler error in the pass pipeline: {other}")),
    })?;
    if optimized.dynamic_results.is_some() {
        // The buffers PJRT hands back have the static shapes the executable declares.
        return Err(Error::Unsupported(
            "unsupported on Vulkan: a result with dynamic dimensions (`<=N` sizes only the run knows); hlo-run \
             runs such modules"
                .into(),
        ));
    }
    hlo_spirv::compile(&optimized, target).map_err(|e| match e {
        hlo_spirv::CodegenError::Unsupported { op, instr, reason } => {
            Error::Unsupported(format!("unsupported on Vulkan: {op} ({instr}): {reason}"))
        }
        other => Error::Internal(format!("internal compiler error: {other}")),
    })
}

/// The codegen target for the context's device (as `hlo-run` makes it, without measured tiles).
fn target_for(ctx: &Context) -> Target {
    let caps = ctx.caps();
    // CPU devices (lavapipe) round a native `fma` twice, so XLA's fused multiply-adds go through f64 there.
    let fma = if ctx.info().kind == hlo_vulkan::DeviceKind::Cpu && caps.shader_float64 {
        hlo_spirv::FmaMode::ViaF64
    } else {
        hlo_spirv::FmaMode::Native
    };
    Target {
        shader_int64: caps.shader_int64,
        shader_float64: caps.shader_float64,
        shader_int16: caps.shader_int16,
        float16: caps.shader_float16,
        storage_8bit: caps.storage_buffer_8bit,
        storage_16bit: caps.storage_buffer_16bit,
        atomic_float_add: caps.buffer_float32_atomic_add,
        int64_atomics: caps.buffer_int64_atomics,
        subgroup_size: caps.subgroup_size,
        max_workgroup_size: caps.max_compute_work_group_size,
        max_workgroup_invocations: caps.max_compute_work_group_invocations,
        max_storage_buffer_range: caps.max_storage_buffer_range,
        max_shared_memory_bytes: caps.max_compute_shared_memory_size,
        subgroup_broadcast: caps.subgroup_in_compute && caps.subgroup_ops.ballot,
        fma,
        flush_results: true,
        max_loop_iterations: caps.max_shader_loop_iterations,
        max_storage_buffers: caps.max_per_stage_storage_buffers,
        predicated_branches: caps.predicated_branches,
        texel_gathers: caps.texel_gathers,
        tiles: hlo_spirv::TileTable::default(),
    }
}

impl Buffer {
    fn new(client: &Client, io: HostIo, array: DeviceArray) -> Buffer {
        let rank = io.dims.len() as i64;
        Buffer {
            client,
            pjrt_type: types::to_pjrt(io.dtype).unwrap_or(types::INVALID),
            minor_to_major: (0..rank).rev().collect(),
            io,
            array: Mutex::new(Some(Arc::new(array))),
            external_references: Mutex::new(0),
        }
    }

    /// The device array, or an error once the buffer was deleted.
    pub fn array(&self) -> Result<Arc<DeviceArray>> {
        // The error and message of XLA's own clients, which JAX users see for a donated array.
        lock(&self.array)
            .clone()
            .ok_or_else(|| Error::InvalidArgument("Invalid buffer passed: buffer has been deleted or donated.".into()))
    }

    pub fn delete(&self) {
        lock(&self.array).take();
    }

    pub fn is_deleted(&self) -> bool {
        lock(&self.array).is_none()
    }

    /// Deletes the buffer, handing its array to the caller (donation).
    fn take_array(&self) -> Option<Arc<DeviceArray>> {
        lock(&self.array).take()
    }

    pub fn on_device_size(&self) -> usize {
        lock(&self.array).as_ref().map_or(0, |a| a.size_bytes() as usize)
    }

    /// The array in host format: dense, row-major, little-endian.
    pub fn to_host(&self) -> Result<Vec<u8>> {
        let device = self.array()?.to_host()?;
        Ok(self.io.from_device(&device))
    }

    /// A copy of this buffer on the same device.
    pub fn copy(&self, client: &Client) -> Result<Buffer> {
        let host = self.to_host()?;
        client.buffer_from_host(self.io.dtype, &self.io.dims, &host)
    }
}

impl LoadedExecutable {
    pub fn delete(&self) {
        lock(&self.runtime).take();
    }

    pub fn is_deleted(&self) -> bool {
        lock(&self.runtime).is_none()
    }

    /// Runs the program on `args` and waits for it; the outputs are new buffers.
    ///
    /// An input the program aliases to an output is donated, unless listed in `non_donatable` or passed
    /// as another argument too: its buffer is deleted and its device memory becomes that output.
    pub fn execute(&self, client: &Client, args: &[&Buffer], non_donatable: &[i64]) -> Result<Vec<Buffer>> {
        let info = &self.info;
        if args.len() != info.inputs.len() {
            return Err(Error::InvalidArgument(format!(
                "`{}` takes {} arguments, {} given",
                info.name,
                info.inputs.len(),
                args.len()
            )));
        }
        let mut arrays = Vec::with_capacity(args.len());
        for (k, (buffer, io)) in args.iter().zip(&info.inputs).enumerate() {
            if buffer.io.dtype != io.dtype || buffer.io.dims != io.dims {
                return Err(Error::InvalidArgument(format!(
                    "argument {k} of `{}`: expected {}{:?}, got {}{:?}",
                    info.name,
                    io.dtype.name(),
                    io.dims,
                    buffer.io.dtype.name(),
                    buffer.io.dims
                )));
            }
            arrays.push(buffer.array()?);
        }
        let mut runtime = lock(&self.runtime);
        let runtime = runtime.as_mut().ok_or_else(|| Error::FailedPrecondition("the executable was deleted".into()))?;
        // Donations, decided after every check that can fail before the run: a donated buffer is deleted,
        // and its array is handed to the runtime unless another execution still holds it (then it is read).
        let mut arrays: Vec<Option<Arc<DeviceArray>>> = arrays.into_iter().map(Some).collect();
        let mut donated: Vec<Option<(DeviceArray, usize)>> = (0..args.len()).map(|_| None).collect();
        for (k, buffer) in args.iter().enumerate() {
            let passed_twice = args.iter().filter(|&&b| std::ptr::eq(b, *buffer)).count() > 1;
            let Some(output) = info.donations[k] else { continue };
            if passed_twice || non_donatable.contains(&(k as i64)) {
                continue;
            }
            drop(buffer.take_array());
            match arrays[k].take().map(Arc::try_unwrap) {
                Some(Ok(array)) => donated[k] = Some((array, output)),
                Some(Err(shared)) => arrays[k] = Some(shared),
                None => {}
            }
        }
        let mut inputs = Vec::with_capacity(args.len());
        for (array, donation) in arrays.iter().zip(donated) {
            inputs.push(match (donation, array) {
                (Some((array, output)), _) => ArrayInput::Donate { array, output },
                (None, Some(array)) => ArrayInput::Read(array),
                (None, None) => return Err(Error::Internal("an argument lost its array".into())),
            });
        }
        let outputs = runtime.execute_with(inputs)?;
        runtime.synchronize()?;
        client.check_validation()?;
        Ok(outputs.into_iter().zip(&info.outputs).map(|(array, io)| Buffer::new(client, io.clone(), array)).collect())
    }
}

/// `Plugin_Attributes`: the StableHLO versions the reader accepts and the XLA version this
/// plugin follows.
pub struct PluginAttributes {
    pub values: Vec<NamedValue>,
    _current: Box<[i64; 3]>,
    _minimum: Box<[i64; 3]>,
}

impl PluginAttributes {
    pub fn new() -> PluginAttributes {
        let (min, cur) = hlo_stablehlo::supported_versions();
        let current = Box::new([cur.0 as i64, cur.1 as i64, cur.2 as i64]);
        let minimum = Box::new([min.0 as i64, min.1 as i64, min.2 as i64]);
        let list = |name: &'static str, values: &[i64; 3]| NamedValue {
            struct_size: std::mem::size_of::<NamedValue>(),
            extension_start: std::ptr::null_mut(),
            name: name.as_ptr() as *const c_char,
            name_size: name.len(),
            value_type: ffi::named_type::INT64_LIST,
            value: ffi::NamedValueUnion { int64_array_value: values.as_ptr() },
            value_size: values.len(),
        };
        let xla_version = NamedValue {
            struct_size: std::mem::size_of::<NamedValue>(),
            extension_start: std::ptr::null_mut(),
            name: "xla_version".as_ptr() as *const c_char,
            name_size: "xla_version".len(),
            value_type: ffi::named_type::INT64,
            value: ffi::NamedValueUnion { int64_value: 2 },
            value_size: 1,
        };
        let values =
            vec![xla_version, list("stablehlo_current_version", &current), list("stablehlo_minimum_version", &minimum)];
        PluginAttributes { values, _current: current, _minimum: minimum }
    }
}

impl Default for PluginAttributes {
    fn default() -> Self {
        PluginAttributes::new()
    }
}
