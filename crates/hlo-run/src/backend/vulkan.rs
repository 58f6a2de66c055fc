//! The Vulkan backend: pass pipeline → SPIR-V codegen → an `hlo_vulkan::Executable`
//! whose recorded command buffer is replayed on every call.

use super::{CompileTimes, FrameCallback, LoopOutcome, PrepareOptions, Prepared};
use crate::feed::Feed;
use crate::npy::HostArray;
use crate::user_error;
use hlo_ir::Module;
use hlo_vulkan::{ArrayInput, Context, ContextOptions, DeviceArray, DeviceSelector, Executable};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An op the Vulkan path cannot run yet; `commands` turns it into a message
/// with the op's line in the module.
#[derive(Debug)]
pub struct Unsupported {
    pub op: String,
    pub instr: String,
    pub reason: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unsupported on Vulkan: {} ({}): {}", self.op, self.instr, self.reason)
    }
}

impl std::error::Error for Unsupported {}

/// Maps codegen errors: unsupported ops become [`Unsupported`], others stay internal errors.
fn codegen_error(err: hlo_spirv::CodegenError) -> anyhow::Error {
    match err {
        hlo_spirv::CodegenError::Unsupported { op, instr, reason } => {
            anyhow::Error::new(Unsupported { op, instr, reason })
        }
        other => anyhow::anyhow!("internal compiler error: {other}"),
    }
}

/// Maps pipeline errors: a pass that cannot lower an op (`op` written `name (%instr)`, or naming
/// the instruction) refuses it as an unsupported op (exit status 2, with its line); anything
/// else is an internal error.
pub(crate) fn pass_error(err: hlo_passes::PassError) -> anyhow::Error {
    match err {
        hlo_passes::PassError::Unsupported { pass, op, reason } => {
            let (name, instr) = match op.split_once(" (%") {
                Some((name, instr)) => (name.to_string(), instr.trim_end_matches(')').to_string()),
                None => (op.clone(), op),
            };
            anyhow::Error::new(Unsupported { op: name, instr, reason: format!("{pass}: {reason}") })
        }
        other => anyhow::anyhow!("internal compiler error in the pass pipeline: {other}"),
    }
}

/// A failure while running: a failed device check (work the device could not finish, such as a
/// loop the driver stopped early) is something this backend cannot run, reported like an
/// unsupported op (exit status 2); anything else is an internal error.
fn run_error(err: hlo_vulkan::VulkanError) -> anyhow::Error {
    match err {
        hlo_vulkan::VulkanError::DeviceCheckFailed { kernel, message } => {
            user_error(format!("cannot run on this Vulkan device: kernel `{kernel}`: {message}"))
        }
        other => anyhow::anyhow!("{other}"),
    }
}

/// Opens the Vulkan context, turning a missing loader or device into a user-facing message.
pub fn open_context(device: Option<&str>) -> anyhow::Result<Arc<Context>> {
    open_context_for(device, None)
}

/// How many worker threads a CPU driver (lavapipe) should run dispatches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverThreads {
    /// Twice the cores. lavapipe's default is one per core, and with exactly one per core two
    /// workgroups often end up on one thread: on 2 cores `fori_loop_10k` (2 workgroups) took 0.39
    /// or 0.77 ms by chance, `while_7000` 0.32 or 0.58 ms, and with twice as many threads the fast
    /// figure every time (sprite_render 0.86 -> 0.52 ms, the seed frame 52 -> 41 ms median).
    Parallel,
    /// None: the driver's queue thread runs every workgroup itself. Waking the workers and waiting
    /// for them costs every dispatch tens of microseconds on a busy 2-core machine (half the
    /// process's CPU time on nbody_sim_update was the kernel switching threads), which a program
    /// of many small dispatches never wins back. `hlo-run bench` measures both where a call is
    /// short (`commands::measure_driver_threads`).
    Serial,
}

/// Whether `LP_NUM_THREADS` now holds a value this process chose (rather than the user).
static DRIVER_THREADS_CHOSEN_HERE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the user chose lavapipe's `LP_NUM_THREADS` (then this process keeps it).
pub fn driver_threads_set_by_user() -> bool {
    std::env::var_os("LP_NUM_THREADS").is_some()
        && !DRIVER_THREADS_CHOSEN_HERE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets lavapipe's `LP_NUM_THREADS` for contexts opened from now on, unless the user set it.
/// The driver reads it when an instance enumerates its devices; other drivers ignore it. Call it
/// while no other thread reads the environment: at start-up, or with no context open.
pub fn choose_driver_threads(threads: DriverThreads) {
    use std::sync::atomic::Ordering;
    const VARIABLE: &str = "LP_NUM_THREADS";
    if std::env::var_os(VARIABLE).is_some() && !DRIVER_THREADS_CHOSEN_HERE.load(Ordering::Relaxed) {
        return;
    }
    let count = match threads {
        DriverThreads::Parallel => (2 * std::thread::available_parallelism().map_or(1, |n| n.get())).min(32),
        DriverThreads::Serial => 0,
    };
    std::env::set_var(VARIABLE, count.to_string());
    DRIVER_THREADS_CHOSEN_HERE.store(true, Ordering::Relaxed);
}

/// Like [`open_context`]; with `display`, also able to present to its windows (`--present`).
pub fn open_context_for(
    device: Option<&str>,
    display: Option<hlo_present::window::RawDisplayHandle>,
) -> anyhow::Result<Arc<Context>> {
    let mut options = ContextOptions::from_env();
    if let Some(device) = device {
        options.device = DeviceSelector::parse(device);
    }
    let opened = match display {
        Some(display) => Context::with_presentation(&options, display),
        None => Context::new(&options),
    };
    opened.map_err(|e| match e {
        hlo_vulkan::VulkanError::NoVulkanLoader { .. } | hlo_vulkan::VulkanError::NoDevice { .. } => {
            user_error(format!("{e}\n  hint: `--backend interp` runs modules without Vulkan"))
        }
        hlo_vulkan::VulkanError::DeviceNotFound { .. } => user_error(e.to_string()),
        other => anyhow::anyhow!(other),
    })
}

/// The codegen target for a device's capabilities.
pub fn target_for(ctx: &Context) -> hlo_spirv::Target {
    let caps = ctx.caps();
    hlo_spirv::Target {
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
        max_storage_buffer_range: binding_range(caps.max_storage_buffer_range),
        max_shared_memory_bytes: caps.max_compute_shared_memory_size,
        subgroup_broadcast: caps.subgroup_in_compute && caps.subgroup_ops.ballot,
        fma: fma_mode(ctx),
        // `HLO_DENORMALS=fast`: like `HLO_FMA=native`, speed over matching XLA:CPU in the last bit.
        flush_results: std::env::var("HLO_DENORMALS").as_deref() != Ok("fast"),
        max_loop_iterations: caps.max_shader_loop_iterations,
        max_storage_buffers: storage_buffers(caps.max_per_stage_storage_buffers),
        predicated_branches: caps.predicated_branches,
        // `HLO_TEXEL_GATHERS=off`: storage-buffer loads only, to measure what texel fetches gain.
        texel_gathers: caps.texel_gathers.filter(|_| std::env::var("HLO_TEXEL_GATHERS").as_deref() != Ok("off")),
        tiles: load_tiles(ctx.info()),
    }
}

/// The most bytes one binding may cover: the device's `maxStorageBufferRange`, or less with
/// `HLO_MAX_BINDING_BYTES` (a power of two of at least 256), which makes kernels bind smaller
/// arrays as several windows, so that tests and the differential tester reach that path.
fn binding_range(device: u64) -> u64 {
    match std::env::var("HLO_MAX_BINDING_BYTES").ok().and_then(|v| v.parse::<u64>().ok()) {
        Some(bytes) if bytes >= 256 && bytes.is_power_of_two() => bytes.min(device),
        _ => device,
    }
}

/// The most storage buffers one kernel may bind: the device's `maxPerStageDescriptorStorageBuffers`,
/// or fewer with `HLO_MAX_STORAGE_BUFFERS` (at least 8), so that tests reach the paths that
/// split kernels at the limit on a device whose limit is higher.
fn storage_buffers(device: u32) -> u32 {
    match std::env::var("HLO_MAX_STORAGE_BUFFERS").ok().and_then(|v| v.parse::<u32>().ok()) {
        Some(n) if n >= 8 => n.min(device),
        _ => device,
    }
}

/// How contracted multiply-adds are computed. XLA contracts `a*b+c` into one
/// fused multiply-add; a GPU's `fma` does the same, but lavapipe lowers `fma`
/// to a multiply and an add, so on CPU devices the exact result is computed in
/// f64 (bit-exact with XLA, about 2x slower on Mandelbrot). `HLO_FMA=native`
/// trades exactness for speed there; `unfused` never contracts.
fn fma_mode(ctx: &Context) -> hlo_spirv::FmaMode {
    match std::env::var("HLO_FMA").as_deref() {
        Ok("native") => hlo_spirv::FmaMode::Native,
        Ok("via-f64") => hlo_spirv::FmaMode::ViaF64,
        Ok("unfused") => hlo_spirv::FmaMode::Unfused,
        _ if ctx.info().kind == hlo_vulkan::DeviceKind::Cpu && ctx.caps().shader_float64 => hlo_spirv::FmaMode::ViaF64,
        _ => hlo_spirv::FmaMode::Native,
    }
}

/// Checks the environment variables that choose code generation: a misspelt value is a user
/// error (exit 2), not a silent default.
pub fn check_env() -> anyhow::Result<()> {
    let allowed: [(&str, &[&str]); 3] = [
        ("HLO_FMA", &["native", "via-f64", "unfused"]),
        ("HLO_DENORMALS", &["fast", "exact"]),
        ("HLO_AUTOTUNE", &["on", "off"]),
    ];
    for (var, values) in allowed {
        if let Ok(v) = std::env::var(var) {
            if !values.contains(&v.as_str()) {
                return Err(user_error(format!("{var}={v}: expected one of {}", values.join(", "))));
            }
        }
    }
    if let Ok(v) = std::env::var("HLO_MAX_STORAGE_BUFFERS") {
        if !v.parse::<u32>().is_ok_and(|n| n >= 8) {
            return Err(user_error(format!("HLO_MAX_STORAGE_BUFFERS={v}: expected an integer of at least 8")));
        }
    }
    Ok(())
}

/// The first instruction whose opcode the Vulkan path never lowers, or cannot lower for this
/// device: named before anything else can fail (a c64 parameter of an `fft` module is not what
/// stops it).
fn first_unsupported_op(module: &Module, target: &hlo_spirv::Target) -> Option<Unsupported> {
    module.comps.iter().flat_map(|c| &c.instrs).find_map(|i| {
        let opcode = i.op.opcode();
        let reason = match &i.op {
            // LAPACK targets that linalg-expander leaves alone, by name (`lapack_sgees_ffi`, ...).
            hlo_ir::Op::CustomCall(cc) => hlo_passes::linalg_expander::refused_target(&cc.target)
                .map(|why| format!("target \"{}\" is not supported: {why}", cc.target)),
            _ if !hlo_spirv::supports(opcode) => {
                Some("the Vulkan backend has no lowering for this op (docs/ops.md)".into())
            }
            _ => hlo_spirv::refusal_on(opcode, target).map(String::from),
        }?;
        Some(Unsupported { op: opcode.name().to_string(), instr: i.name.clone(), reason })
    })
}

/// What [`compile_module`] returns: the compiled program, the time passes and codegen took, and
/// how to cut dynamic results.
type CompiledModule = (hlo_spirv::Compiled, Duration, Duration, Option<hlo_ir::DynamicResults>);

/// Runs the pass pipeline and codegen; returns the compiled program, the time each took, and how
/// to cut the outputs to their runtime sizes when the module has dynamic results (`dynamic-padder`).
pub fn compile_module(
    module: &Module,
    target: &hlo_spirv::Target,
    explain_fusion: bool,
) -> anyhow::Result<CompiledModule> {
    if let Some(unsupported) = first_unsupported_op(module, target) {
        return Err(anyhow::Error::new(unsupported));
    }
    let start = Instant::now();
    let mut optimized = module.clone();
    let mut opts = hlo_passes::PipelineOptions { max_kernel_buffers: target.max_storage_buffers, ..Default::default() };
    let report = hlo_passes::run_pipeline(&mut optimized, &mut opts).map_err(pass_error)?;
    if let (true, Some(fusion)) = (explain_fusion, &report.fusion) {
        eprintln!("{fusion}");
    }
    let passes = start.elapsed();
    let start = Instant::now();
    let compiled = hlo_spirv::compile(&optimized, target).map_err(codegen_error)?;
    if explain_fusion {
        // The emitter each kernel got: its hero and strategy, or why a faster one was declined.
        eprintln!("emitters:");
        for info in &compiled.kernels_info {
            eprintln!("  {} {}: {}", info.name, info.kind, info.why);
        }
    }
    Ok((compiled, passes, start.elapsed(), optimized.dynamic_results))
}

/// `hlo-run compile`: targets the chosen device, or a lavapipe-like default without Vulkan.
pub fn compile_for_device(
    module: &Module,
    device: Option<&str>,
    explain_fusion: bool,
) -> anyhow::Result<hlo_spirv::Compiled> {
    Ok(compile_module(module, &target_for_device(device)?, explain_fusion)?.0)
}

/// The chosen device's target, or a lavapipe-like default when there is no Vulkan and no
/// device was named (`compile`, and `opt`, whose fusion bounds kernels by its bindings).
pub fn target_for_device(device: Option<&str>) -> anyhow::Result<hlo_spirv::Target> {
    match open_context(device) {
        Ok(ctx) => Ok(target_for(&ctx)),
        Err(err) if device.is_none() => {
            tracing::warn!("no Vulkan device ({err}); compiling for the default target");
            Ok(hlo_spirv::Target::lavapipe())
        }
        Err(err) => Err(err),
    }
}

/// Where pipelines are cached between runs: `$HLO_VULKAN_CACHE_DIR`,
/// `$XDG_CACHE_HOME/hlo-vulkan` or `~/.cache/hlo-vulkan`.
fn pipeline_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HLO_VULKAN_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("hlo-vulkan"))
}

/// The file of measured block sizes for `info`'s device and driver (`hlo-run tune`), beside the
/// pipeline cache: `tiles-<device uuid>-<driver version>.json`.
pub fn tiles_file(info: &hlo_vulkan::DeviceInfo) -> Option<PathBuf> {
    let uuid: String = info.device_uuid.iter().map(|b| format!("{b:02x}")).collect();
    Some(pipeline_cache_dir()?.join(format!("tiles-{uuid}-{:08x}.json", info.driver_version)))
}

/// The device's measured block sizes, or none: no file, an unreadable one (ignored, as a stale
/// pipeline cache is), or `HLO_AUTOTUNE=off`.
pub fn load_tiles(info: &hlo_vulkan::DeviceInfo) -> hlo_spirv::TileTable {
    if std::env::var("HLO_AUTOTUNE").as_deref() == Ok("off") {
        return hlo_spirv::TileTable::default();
    }
    let parsed = tiles_file(info)
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|bytes| serde_json::from_slice::<std::collections::BTreeMap<String, [u32; 2]>>(&bytes).ok());
    let tiles = parsed.unwrap_or_default().into_iter().filter(|(_, t)| hlo_spirv::TileTable::valid(*t)).collect();
    hlo_spirv::TileTable { tiles }
}

/// Writes `table` as the device's measured block sizes (atomically: a temporary file renamed).
pub fn save_tiles(info: &hlo_vulkan::DeviceInfo, table: &hlo_spirv::TileTable) -> anyhow::Result<PathBuf> {
    let path = tiles_file(info).ok_or_else(|| anyhow::anyhow!("no cache directory (set HLO_VULKAN_CACHE_DIR)"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&table.tiles)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// On a CPU device the device memory is the host's: the program's buffers (counted without
/// aliasing, an upper bound) must fit in the memory limit, or allocating them would get the
/// process killed instead of failing with a message.
fn check_buffers_fit(program: &hlo_program::Program, ctx: &Context, limit: Option<u64>) -> anyhow::Result<()> {
    let Some(limit) = limit else { return Ok(()) };
    if ctx.info().kind != hlo_vulkan::DeviceKind::Cpu {
        return Ok(());
    }
    let total = program.buffers.iter().fold(0u64, |acc, b| acc.saturating_add(b.size_bytes));
    let Some(largest) = program.buffers.iter().max_by_key(|b| b.size_bytes) else { return Ok(()) };
    if total <= limit {
        return Ok(());
    }
    Err(user_error(format!(
        "the compiled program's buffers need {} in all on this CPU device (the largest holds {}: {}), \
         more than the memory limit of {}\n  hint: HLO_MEMORY_LIMIT raises the limit if the machine has the memory",
        crate::limits::human_bytes(total),
        largest.name,
        crate::limits::human_bytes(largest.size_bytes),
        crate::limits::human_bytes(limit)
    )))
}

/// A module compiled and recorded for one device.
pub struct VulkanPrepared {
    compiled: hlo_spirv::Compiled,
    executable: Executable,
    times: CompileTimes,
    device: String,
    /// The module's input/output aliasing: these inputs are donated in loops.
    aliased: Vec<Feed>,
    /// How to cut the outputs to their runtime sizes (`dynamic-padder`).
    dynamic: Option<hlo_ir::DynamicResults>,
}

/// A loop's state on the device (`--iterations`, `--frames`, `--present`): one array per parameter leaf,
/// replaced by the outputs that feed it after every call.
pub struct DeviceLoop {
    arrays: Vec<Option<DeviceArray>>,
    feeds: Vec<Feed>,
    /// Per input: the output its array is donated to (the pair is fed and aliased by the module).
    donate: Vec<Option<usize>>,
}

impl VulkanPrepared {
    pub fn new(module: &Module, opts: &PrepareOptions) -> anyhow::Result<VulkanPrepared> {
        let ctx = open_context(opts.device.as_deref())?;
        VulkanPrepared::with_context(module, opts, ctx)
    }

    /// Compiles `module` for `ctx` (opened by the caller, e.g. able to present).
    pub fn with_context(module: &Module, opts: &PrepareOptions, ctx: Arc<Context>) -> anyhow::Result<VulkanPrepared> {
        let compiled = VulkanPrepared::compile_for(module, opts, &ctx)?;
        VulkanPrepared::build(module, opts, ctx, compiled)
    }

    /// Passes and codegen for `ctx`'s device.
    fn compile_for(module: &Module, opts: &PrepareOptions, ctx: &Context) -> anyhow::Result<CompiledModule> {
        let mut target = target_for(ctx);
        if let Some(tiles) = &opts.tiles {
            target.tiles = tiles.clone();
        }
        let compiled = compile_module(module, &target, false)?;
        check_buffers_fit(&compiled.0.program, ctx, opts.memory_limit)?;
        Ok(compiled)
    }

    /// Builds the executable of a compiled module on `ctx`.
    fn build(
        module: &Module,
        opts: &PrepareOptions,
        ctx: Arc<Context>,
        (compiled, passes, codegen, dynamic): CompiledModule,
    ) -> anyhow::Result<VulkanPrepared> {
        let start = Instant::now();
        let options = hlo_vulkan::BuildOptions {
            pipeline_cache_dir: pipeline_cache_dir(),
            profile: opts.profile,
            ..Default::default()
        };
        let executable = Executable::with_options(&ctx, &compiled.program, &options)
            .map_err(|e| anyhow::anyhow!("building the Vulkan executable: {e}"))?;
        let times = CompileTimes { passes, codegen, runtime_build: start.elapsed() };
        let device = ctx.info().short();
        Ok(VulkanPrepared { compiled, executable, times, device, aliased: crate::feed::aliased(module), dynamic })
    }

    pub fn context(&self) -> &Arc<Context> {
        self.executable.context()
    }

    /// Host bytes of a leaf as the device stores them.
    fn device_bytes(&self, index: usize, host: &HostArray) -> anyhow::Result<Vec<u8>> {
        let io = self.compiled.inputs.get(index).ok_or_else(|| {
            user_error(format!("input {index}: the compiled module takes {} inputs", self.compiled.inputs.len()))
        })?;
        if host.bytes.len() != io.host_bytes() {
            return Err(user_error(format!(
                "input {index} ({}) needs {} bytes, {} given",
                io.name,
                io.host_bytes(),
                host.bytes.len()
            )));
        }
        Ok(io.to_device(&host.bytes))
    }

    /// Uploads `inputs` once as the state of a loop whose `feeds` outputs replace their inputs after each call.
    pub fn start_loop(&mut self, inputs: &[HostArray], feeds: &[Feed]) -> anyhow::Result<DeviceLoop> {
        if inputs.len() != self.compiled.inputs.len() {
            return Err(user_error(format!(
                "the compiled module takes {} inputs, {} given",
                self.compiled.inputs.len(),
                inputs.len()
            )));
        }
        let mut fed_from: Vec<Option<usize>> = vec![None; self.compiled.outputs.len()];
        for f in feeds {
            match fed_from.get_mut(f.output) {
                Some(Some(earlier)) => {
                    return Err(user_error(format!(
                    "out_{} feeds both input {earlier} and input {}: on the device each output moves into one input",
                    f.output, f.input
                )))
                }
                Some(slot) => *slot = Some(f.input),
                None => return Err(user_error(format!("--feed {}={}: no such output", f.output, f.input))),
            }
        }
        let mut arrays = Vec::with_capacity(inputs.len());
        for (index, host) in inputs.iter().enumerate() {
            let bytes = self.device_bytes(index, host)?;
            arrays.push(Some(self.executable.upload(&bytes).map_err(run_error)?));
        }
        let mut donate = vec![None; inputs.len()];
        for f in feeds.iter().filter(|f| self.aliased.contains(f)) {
            donate[f.input] = Some(f.output);
        }
        Ok(DeviceLoop { arrays, feeds: feeds.to_vec(), donate })
    }

    /// Replaces input `index` of the loop with `host` (a `--bind` scalar): an upload, counted as such.
    pub fn set_input(&mut self, state: &mut DeviceLoop, index: usize, host: &HostArray) -> anyhow::Result<()> {
        let bytes = self.device_bytes(index, host)?;
        state.arrays[index] = Some(self.executable.upload(&bytes).map_err(run_error)?);
        Ok(())
    }

    /// One call on the loop's arrays, submitted without waiting; returns every output on the device.
    pub fn call(&mut self, state: &mut DeviceLoop) -> anyhow::Result<Vec<Option<DeviceArray>>> {
        let mut donated: Vec<Option<DeviceArray>> =
            state.donate.iter().zip(state.arrays.iter_mut()).map(|(to, array)| to.and_then(|_| array.take())).collect();
        let missing = || anyhow::anyhow!("internal error: a loop input has no array");
        let mut args = Vec::with_capacity(state.arrays.len());
        for (index, array) in state.arrays.iter().enumerate() {
            args.push(match state.donate[index] {
                Some(output) => ArrayInput::Donate { array: donated[index].take().ok_or_else(missing)?, output },
                None => ArrayInput::Read(array.as_ref().ok_or_else(missing)?),
            });
        }
        let outputs = self.executable.execute_with(args).map_err(run_error)?;
        Ok(outputs.into_iter().map(Some).collect())
    }

    /// Moves the fed outputs of a call into the loop's inputs.
    pub fn feed(state: &mut DeviceLoop, outputs: &mut [Option<DeviceArray>]) -> anyhow::Result<()> {
        for f in &state.feeds {
            let array = outputs[f.output]
                .take()
                .ok_or_else(|| anyhow::anyhow!("internal error: out_{} was moved already", f.output))?;
            state.arrays[f.input] = Some(array);
        }
        Ok(())
    }

    /// Waits for everything submitted and fails on a failed device check or a validation message.
    pub fn synchronize(&mut self) -> anyhow::Result<()> {
        self.executable.synchronize().map_err(run_error)?;
        self.check_validation()
    }

    /// Output `index` of a call, read back to the host.
    pub fn read_output_array(&self, index: usize, array: &DeviceArray) -> anyhow::Result<HostArray> {
        let io = &self.compiled.outputs[index];
        let device = array.to_host().map_err(run_error)?;
        Ok(HostArray { dtype: io.dtype, dims: io.dims.clone(), bytes: io.from_device(&device) })
    }

    /// Every output of the last call, read back after waiting for it.
    pub fn read_all(&mut self, outputs: &[Option<DeviceArray>]) -> anyhow::Result<Vec<HostArray>> {
        self.synchronize()?;
        outputs
            .iter()
            .enumerate()
            .map(|(k, array)| {
                let array = array.as_ref().ok_or_else(|| anyhow::anyhow!("internal error: out_{k} was moved"))?;
                self.read_output_array(k, array)
            })
            .collect()
    }

    /// Bytes copied between host and device so far.
    pub fn transferred_bytes(&self) -> u64 {
        self.context().host_transfers().total()
    }

    fn upload(&mut self, inputs: &[HostArray]) -> anyhow::Result<()> {
        if inputs.len() != self.compiled.inputs.len() {
            return Err(user_error(format!(
                "the compiled module takes {} inputs, {} given",
                self.compiled.inputs.len(),
                inputs.len()
            )));
        }
        let device_bytes: Vec<Vec<u8>> =
            self.compiled.inputs.iter().zip(inputs).map(|(io, host)| io.to_device(&host.bytes)).collect();
        let slices: Vec<&[u8]> = device_bytes.iter().map(|b| b.as_slice()).collect();
        self.executable.upload_inputs(&slices).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }

    /// Every output, read back after the last submission, then the validation layer's verdict.
    fn read_outputs(&self) -> anyhow::Result<Vec<HostArray>> {
        let sizes = self.executable.output_sizes();
        let mut outputs = Vec::with_capacity(sizes.len());
        for (k, (io, size)) in self.compiled.outputs.iter().zip(sizes).enumerate() {
            let mut device = vec![0u8; size as usize];
            self.executable.read_output(k, &mut device).map_err(run_error)?;
            outputs.push(HostArray { dtype: io.dtype, dims: io.dims.clone(), bytes: io.from_device(&device) });
        }
        self.check_validation()?;
        Ok(outputs)
    }

    /// Fails with every validation message reported since the last check.
    pub fn check_validation(&self) -> anyhow::Result<()> {
        let messages = self.executable.context().take_validation_messages();
        if messages.is_empty() {
            return Ok(());
        }
        let text: Vec<String> = messages.iter().map(|m| m.to_string()).collect();
        Err(anyhow::anyhow!("Vulkan validation reported {} message(s):\n{}", messages.len(), text.join("\n")))
    }
}

impl Prepared for VulkanPrepared {
    fn dynamic_results(&self) -> Option<&hlo_ir::DynamicResults> {
        self.dynamic.as_ref()
    }

    fn driver_threads_choice(&self) -> Option<u64> {
        let ctx = self.executable.context();
        let lavapipe = ctx.caps().worker_threads_variable == Some("LP_NUM_THREADS");
        let dispatches = hlo_program::dispatches_per_run(&self.compiled.program.steps);
        (lavapipe && !driver_threads_set_by_user() && dispatches >= 2).then_some(dispatches)
    }

    fn run(&mut self, inputs: &[HostArray]) -> anyhow::Result<Vec<HostArray>> {
        self.upload(inputs)?;
        let ticket = self.executable.submit().map_err(run_error)?;
        self.executable.wait(ticket).map_err(run_error)?;
        self.read_outputs()
    }

    fn set_inputs(&mut self, inputs: &[HostArray]) -> anyhow::Result<()> {
        self.upload(inputs)
    }

    fn time_call(&mut self) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let ticket = self.executable.submit().map_err(run_error)?;
        self.executable.wait(ticket).map_err(run_error)?;
        Ok(start.elapsed())
    }

    fn stats(&self) -> String {
        let moved = self.context().host_transfers();
        format!(
            "device: {}\n{}\nhost<->device copies in all: {} bytes to the device, {} bytes to the host",
            self.device,
            self.executable.stats(),
            moved.to_device,
            moved.to_host
        )
    }

    fn compile_times(&self) -> CompileTimes {
        self.times.clone()
    }

    fn device(&self) -> String {
        self.device.clone()
    }

    /// The state stays on the device: one upload, then calls on device arrays (the fed outputs becoming the next
    /// call's inputs, with no host wait in between), and one read-back at the end.
    fn run_iterations(&mut self, inputs: &[HostArray], feeds: &[Feed], iterations: u64) -> anyhow::Result<LoopOutcome> {
        let mut state = self.start_loop(inputs, feeds)?;
        let start = Instant::now();
        let mut outputs = self.call(&mut state)?;
        let after_first = self.transferred_bytes();
        for _ in 1..iterations {
            Self::feed(&mut state, &mut outputs)?;
            outputs = self.call(&mut state)?;
        }
        self.synchronize()?;
        let wall = start.elapsed();
        let bytes_after_first = Some(self.transferred_bytes() - after_first);
        Ok(LoopOutcome { outputs: self.read_all(&outputs)?, wall, frame_times: Vec::new(), bytes_after_first })
    }

    /// One upload; per frame a call on device arrays and, only when `read_image`, a read-back of the image
    /// output (otherwise a wait for the frame, so that frame times mean something). The state stays on the
    /// device until the end.
    fn run_frames(
        &mut self,
        inputs: &[HostArray],
        feeds: &[Feed],
        frames: u64,
        image: usize,
        read_image: bool,
        on_frame: &mut FrameCallback<'_>,
    ) -> anyhow::Result<LoopOutcome> {
        if image >= self.compiled.outputs.len() {
            return Err(anyhow::anyhow!("the compiled module has no output {image}"));
        }
        let mut state = self.start_loop(inputs, feeds)?;
        let wall = Instant::now();
        let mut times = Vec::with_capacity(frames as usize);
        let mut outputs = Vec::new();
        let mut after_first = self.transferred_bytes();
        for frame in 0..frames {
            let start = Instant::now();
            if frame > 0 {
                Self::feed(&mut state, &mut outputs)?;
            }
            outputs = self.call(&mut state)?;
            let shown = match (&outputs[image], read_image) {
                (Some(array), true) => Some(self.read_output_array(image, array)?),
                _ => None,
            };
            self.synchronize()?;
            times.push(start.elapsed());
            if frame == 0 {
                after_first = self.transferred_bytes();
            }
            on_frame(frame, shown.as_ref())?;
        }
        let bytes_after_first = Some(self.transferred_bytes() - after_first);
        let wall = wall.elapsed();
        Ok(LoopOutcome { outputs: self.read_all(&outputs)?, wall, frame_times: times, bytes_after_first })
    }

    fn step_times(&self) -> anyhow::Result<Option<Vec<(String, f64)>>> {
        let times = self.executable.last_step_times().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(times.map(|steps| steps.into_iter().map(|t| (format!("step {:>3} {}", t.step, t.name), t.nanos)).collect()))
    }
}

/// `hlo-run devices`.
pub fn print_devices() -> anyhow::Result<()> {
    let devices = hlo_vulkan::list_devices().map_err(|e| user_error(e.to_string()))?;
    if devices.is_empty() {
        return Err(user_error(format!("no Vulkan devices found\n  {}", hlo_vulkan::INSTALL_HINT)));
    }
    for d in devices {
        let c = &d.caps;
        println!(
            "{}  (driver {} {}, Vulkan {}.{}.{})",
            d.short(),
            d.driver_name,
            d.driver_info,
            d.api_version.0,
            d.api_version.1,
            d.api_version.2
        );
        if let Some(why) = &d.unusable {
            println!("    unusable: {why}");
        }
        println!(
            "    int64 {} float64 {} int16 {} float16 {} atomic-float-add {} subgroup {} max-storage-buffer {} MiB",
            c.shader_int64,
            c.shader_float64,
            c.shader_int16,
            c.shader_float16,
            c.buffer_float32_atomic_add,
            c.subgroup_size,
            c.max_storage_buffer_range >> 20
        );
    }
    Ok(())
}
