//! One function per subcommand. Each returns `anyhow::Result`; input problems
//! are [`crate::UserError`]s so that `main` exits with status 2.

use crate::backend::{self, BackendKind, PrepareOptions};
use crate::inputs::{self, ParamLeaf};
use crate::load::{self, Loaded};
use crate::npy::{self, HostArray};
use crate::stats::{ms, Timings};
use crate::user_error;
use clap::Args;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Arguments of the default command: run a module.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The HLO text module.
    #[arg(required = true)]
    pub module: Option<PathBuf>,
    /// One .npy per entry-parameter leaf, in order, or one .npz: arr_0..arr_N, arrays named
    /// after the entry's parameters, or any names in archive order.
    pub inputs: Vec<PathBuf>,
    /// Directory for out_0.npy, out_1.npy, ... (one per result leaf).
    #[arg(short = 'o', long = "out")]
    pub out_dir: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Print a short summary of each output.
    #[arg(long)]
    pub print: bool,
    /// Print kernel, dispatch and memory statistics.
    #[arg(long)]
    pub stats: bool,
    /// Run the module this many times, feeding outputs back into inputs of the same dtype and
    /// shape (state stays on the device; outputs are read once, at the end), and print the
    /// time per iteration.
    #[arg(long, value_name = "N")]
    pub iterations: Option<u64>,
    /// With --iterations, --frames or --present: result leaf OUT feeds input IN (repeatable). Default:
    /// the module's input_output_alias, else the one output and input of each dtype and shape.
    #[arg(long, value_name = "OUT=IN")]
    pub feed: Vec<crate::feed::Feed>,
    /// Run N frames of a frame program: outputs feed back on the device as with --iterations, and the
    /// image output is read back only for --record, --gif and --apng; prints frame times. With
    /// --present: close the window after N frames.
    #[arg(long, value_name = "N", conflicts_with = "iterations")]
    pub frames: Option<u64>,
    /// With --frames: write each frame as DIR/frame_00000.png, DIR/frame_00001.png, ...
    #[arg(long, value_name = "DIR", requires = "frames")]
    pub record: Option<PathBuf>,
    /// With --frames: write the frames as one animated GIF (30 frames/s, looping).
    #[arg(long, value_name = "FILE", requires = "frames")]
    pub gif: Option<PathBuf>,
    /// With --frames: write the frames as one animated PNG (30 frames/s, looping, lossless).
    #[arg(long, value_name = "FILE", requires = "frames")]
    pub apng: Option<PathBuf>,
    /// With --frames or --present: the result leaf shown (default: the first f32 or u8 leaf shaped
    /// HxWxC with C in 1, 3 or 4, else the first HxW one of at least 16x16).
    #[arg(long, value_name = "K")]
    pub image: Option<usize>,
    /// With --frames or --present: the float values that mean black and full intensity [default: 0..1].
    #[arg(long, value_name = "0..1|0..255")]
    pub image_range: Option<hlo_present::ValueRange>,
    /// Show the image output in a window every frame (needs a display), feeding outputs back on the
    /// device; Esc or closing the window ends the run. FPS and frame time are in the title.
    #[arg(long, conflicts_with = "iterations")]
    pub present: bool,
    /// With --present: do not wait for the display's refresh (MAILBOX or IMMEDIATE when available).
    #[arg(long, requires = "present")]
    pub no_vsync: bool,
    /// With --present: set scalar parameter NAME (its name in the module, or a leaf index) every frame
    /// from SOURCE: mouse.x, mouse.y (image pixels), mouse.down (0 or 1), time (seconds) or frame.
    #[arg(long, value_name = "NAME=SOURCE", requires = "present")]
    pub bind: Vec<crate::bind::Bind>,
}

/// Options shared by the commands that execute a module.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Execution engine.
    #[arg(long, value_enum, default_value = "vulkan")]
    pub backend: BackendKind,
    /// Vulkan device: a name substring or an index from `hlo-run devices`.
    #[arg(long)]
    pub device: Option<String>,
    /// Make deterministic random inputs instead of reading files.
    #[arg(long)]
    pub random_inputs: bool,
    /// Seed for --random-inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl CommonArgs {
    fn prepare_options(&self, memory_limit: u64) -> PrepareOptions {
        PrepareOptions { device: self.device.clone(), profile: false, memory_limit: Some(memory_limit), tiles: None }
    }
}

/// Bytes of host arrays together.
fn host_bytes(arrays: &[HostArray]) -> u64 {
    arrays.iter().map(|a| a.bytes.len() as u64).sum()
}

/// `hlo-run opt`.
#[derive(Args, Debug)]
pub struct OptArgs {
    /// The HLO text module.
    #[arg(required_unless_present = "list_passes")]
    pub module: Option<PathBuf>,
    /// Comma-separated pass names to run in order (default: the whole pipeline).
    #[arg(long, value_delimiter = ',')]
    pub passes: Vec<String>,
    /// List the registered passes and exit.
    #[arg(long)]
    pub list_passes: bool,
    /// Write the module after each pass into this directory.
    #[arg(long)]
    pub dump_after_each: Option<PathBuf>,
    /// Print why each producer was or was not fused.
    #[arg(long)]
    pub explain_fusion: bool,
    /// Vulkan device whose binding limit bounds the fused kernels (default: the best device, or
    /// a lavapipe-like target when there is no Vulkan).
    #[arg(long)]
    pub device: Option<String>,
}

/// What `compile --emit` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// Kernels, buffers and steps of the device program.
    Plan,
    /// Each kernel as WGSL (naga's writer over the same module).
    Wgsl,
    /// Each kernel as a SPIR-V binary, written into --out.
    Spirv,
}

/// `hlo-run compile`.
#[derive(Args, Debug)]
pub struct CompileArgs {
    /// The HLO text module.
    pub module: PathBuf,
    #[arg(long, value_enum, default_value = "plan")]
    pub emit: Emit,
    /// Directory for `--emit spirv` files (kernel_K_NAME.spv).
    #[arg(short = 'o', long = "out")]
    pub out_dir: Option<PathBuf>,
    /// Also print the fusion decisions.
    #[arg(long)]
    pub explain_fusion: bool,
    /// Vulkan device whose capabilities to target (default: the best device, or a
    /// lavapipe-like target when there is no Vulkan).
    #[arg(long)]
    pub device: Option<String>,
}

/// `hlo-run bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The HLO text module.
    pub module: PathBuf,
    /// Inputs as for running; omit with --random-inputs.
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Timed executions.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub runs: usize,
    /// Untimed executions first.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Print one JSON object instead of text (for `cargo xtask bench`).
    #[arg(long)]
    pub json: bool,
    /// Also record GPU timestamps after every step and print where one call's device time goes
    /// (the timestamps add a little work to every call).
    #[arg(long)]
    pub profile: bool,
}

/// `hlo-run tune`.
#[derive(Args, Debug)]
pub struct TuneArgs {
    /// The HLO text module whose blocked dots and convolutions to tune.
    pub module: PathBuf,
    /// Inputs as for running; omit with --random-inputs.
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Timed executions per candidate block (the fastest counts).
    #[arg(short = 'n', long, default_value_t = 10)]
    pub runs: usize,
    /// Untimed executions per candidate first.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
}

/// `hlo-run check`: parse, verify (unless `parse_only`), summarise.
pub fn check(path: &Path, parse_only: bool) -> anyhow::Result<()> {
    let loaded = if parse_only { load::load_module_unverified(path)? } else { load::load_module(path)? };
    let module = &loaded.module;
    let mut ops: BTreeMap<&str, usize> = BTreeMap::new();
    for comp in &module.comps {
        for instr in &comp.instrs {
            *ops.entry(instr.op.opcode().name()).or_default() += 1;
        }
    }
    let ops_text: Vec<String> = ops.iter().map(|(name, n)| format!("{name}:{n}")).collect();
    println!(
        "{}: ok{}: module {}, {} computations, {} instructions; ops {}",
        loaded.path,
        if parse_only { " (parsed, not verified)" } else { "" },
        module.name,
        module.comps.len(),
        module.instr_count(),
        ops_text.join(" ")
    );
    Ok(())
}

/// `hlo-run print`: the canonical text.
pub fn print(path: &Path) -> anyhow::Result<()> {
    let loaded = load::load_module(path)?;
    print!("{}", hlo_ir::print::print_module(&loaded.module));
    Ok(())
}

/// Reads or makes the inputs and checks them against the entry signature, within `limit` bytes.
fn gather_inputs(
    loaded: &Loaded,
    paths: &[PathBuf],
    common: &CommonArgs,
    limit: u64,
) -> anyhow::Result<Vec<HostArray>> {
    let leaves: Vec<ParamLeaf> = inputs::param_leaves(&loaded.module);
    let mut named = if common.random_inputs {
        if !paths.is_empty() {
            return Err(user_error("--random-inputs and input files are mutually exclusive"));
        }
        inputs::random_inputs(&leaves, common.seed, limit).map_err(|e| {
            let largest = leaves.iter().max_by_key(|l| l.shape.num_elements());
            match largest {
                Some(leaf) => {
                    user_error(format!("{}: {e}", load::location_of(loaded, loaded.module.entry, leaf.param)))
                }
                None => e,
            }
        })?
    } else {
        let mut named = inputs::read_inputs(paths, limit)?;
        inputs::order_by_parameter_name(&loaded.module, &leaves, &mut named);
        named
    };
    inputs::check_inputs(&leaves, &mut named)?;
    Ok(named.into_iter().map(|(_, a)| a).collect())
}

/// Loads a module that is about to be run or compiled: parsed, verified, static shapes only.
fn load_static(path: &Path) -> anyhow::Result<Loaded> {
    let loaded = load::load_module(path)?;
    load::check_static(&loaded)?;
    Ok(loaded)
}

/// The default command: run a module and write its outputs.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let path = args.module.as_deref().ok_or_else(|| user_error("no module given (see --help)"))?;
    let loaded = load_static(path)?;
    let limit = crate::limits::memory_limit()?;
    if !args.feed.is_empty() && args.iterations.is_none() && args.frames.is_none() && !args.present {
        return Err(user_error("--feed needs --iterations, --frames or --present"));
    }
    if (args.image.is_some() || args.image_range.is_some()) && args.frames.is_none() && !args.present {
        return Err(user_error("--image and --image-range need --frames or --present"));
    }
    if args.frames == Some(0) {
        return Err(user_error("--frames must be at least 1"));
    }
    let output_shapes = inputs::output_leaves(&loaded.module.entry_comp().instr(loaded.module.entry_comp().root).shape);
    if args.frames.is_some() || args.present {
        // Refuse a module without an image before compiling it.
        crate::frames::choose_image_output(&output_shapes, args.image).map_err(user_error)?;
    }
    let frame_options = crate::frames::FrameOptions {
        frames: args.frames.unwrap_or(0),
        record_dir: args.record.clone(),
        gif: args.gif.clone(),
        apng: args.apng.clone(),
        image: args.image,
        range: args.image_range.unwrap_or_default(),
    };
    if args.present {
        return run_present(args, &loaded, frame_options, limit);
    }
    let host_inputs = gather_inputs(&loaded, &args.inputs, &args.common, limit)?;
    let options = args.common.prepare_options(limit.saturating_sub(host_bytes(&host_inputs)));
    let mut prepared =
        backend::prepare(&loaded.module, args.common.backend, &options).map_err(|e| locate(&loaded, e))?;
    let outputs = match (args.iterations, args.frames) {
        (_, Some(_)) => {
            let feeds = crate::feed::choose_feeds(&loaded.module, &args.feed).map_err(user_error)?;
            crate::frames::run_frames(prepared.as_mut(), &output_shapes, &host_inputs, &feeds, &frame_options)
                .map_err(|e| locate(&loaded, e))?
        }
        (None, None) => prepared.run(&host_inputs).map_err(|e| locate(&loaded, e))?,
        (Some(0), _) => return Err(user_error("--iterations must be at least 1")),
        (Some(n), None) => {
            let feeds = crate::feed::choose_feeds(&loaded.module, &args.feed).map_err(user_error)?;
            let outcome = prepared.run_iterations(&host_inputs, &feeds, n).map_err(|e| locate(&loaded, e))?;
            let total_ms = outcome.wall.as_secs_f64() * 1e3;
            eprintln!(
                "{n} iterations in {total_ms:.3} ms: {:.4} ms per iteration on {} (fed: {})",
                total_ms / n as f64,
                prepared.device(),
                crate::frames::describe_feeds(&feeds)
            );
            if let Some(bytes) = outcome.bytes_after_first {
                eprintln!("{}", crate::frames::transfer_line("iteration", bytes, n));
            }
            outcome.outputs
        }
    };
    let outputs =
        backend::finish_outputs(prepared.as_ref(), outputs).map_err(|e| user_error(format!("{}: {e}", loaded.path)))?;
    finish_run(args, &outputs)?;
    if args.stats {
        eprintln!("{}", prepared.stats());
    }
    Ok(())
}

/// `--present`: the frame loop in a window (Vulkan only).
fn run_present(
    args: &RunArgs,
    loaded: &Loaded,
    frame_options: crate::frames::FrameOptions,
    limit: u64,
) -> anyhow::Result<()> {
    if args.common.backend != BackendKind::Vulkan {
        return Err(user_error("--present shows frames through a Vulkan swapchain: it needs --backend vulkan"));
    }
    let binds = crate::bind::resolve(&args.bind, &loaded.module).map_err(user_error)?;
    let feeds = crate::feed::choose_feeds_or_none(&loaded.module, &args.feed).map_err(user_error)?;
    crate::present::check_display_named()?;
    let host_inputs = gather_inputs(loaded, &args.inputs, &args.common, limit)?;
    let options = args.common.prepare_options(limit.saturating_sub(host_bytes(&host_inputs)));
    let name = Path::new(&loaded.path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let request = crate::present::PresentRequest {
        vsync: !args.no_vsync,
        frames: args.frames,
        frame_options,
        binds,
        title: format!("hlo-run {name}"),
        stats: args.stats,
    };
    let outputs = crate::present::run_present(&loaded.module, &options, &host_inputs, &feeds, &request)
        .map_err(|e| locate(loaded, e))?;
    finish_run(args, &outputs)
}

/// Writes `-o` files and prints output summaries, as every run does at its end.
fn finish_run(args: &RunArgs, outputs: &[HostArray]) -> anyhow::Result<()> {
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| user_error(format!("{}: cannot create the output directory: {e}", dir.display())))?;
        for (k, out) in outputs.iter().enumerate() {
            let file = dir.join(format!("out_{k}.npy"));
            npy::write_npy(&file, out).map_err(|e| user_error(format!("{}: cannot write: {e}", file.display())))?;
        }
    }
    if args.print || args.out_dir.is_none() {
        for (k, out) in outputs.iter().enumerate() {
            println!("out_{k}: {}", summarize(out));
        }
    }
    Ok(())
}

/// Turns a backend's "unsupported op" error, or an interpreter error that names an
/// instruction, into a message with the op's location.
fn locate(loaded: &Loaded, err: anyhow::Error) -> anyhow::Error {
    let err = match err.downcast::<hlo_interp::InterpError>() {
        Ok(interp) => return locate_interp(loaded, interp),
        Err(err) => err,
    };
    let err = match err.downcast::<crate::backend::Refused>() {
        Ok(refused) => {
            let at = loaded
                .module
                .comp_ids()
                .find_map(|c| loaded.module.comp(c).find(&refused.instr).map(|i| load::location_of(loaded, c, i)))
                .unwrap_or_else(|| loaded.path.clone());
            return user_error(format!("{at}: cannot run {} `{}`: {}", refused.op, refused.instr, refused.reason));
        }
        Err(err) => err,
    };
    match err.downcast::<crate::backend::vulkan::Unsupported>() {
        Ok(unsupported) => {
            let at = loaded
                .module
                .comp_ids()
                .find_map(|c| loaded.module.comp(c).find(&unsupported.instr).map(|i| load::location_of(loaded, c, i)))
                .unwrap_or_else(|| loaded.path.clone());
            // The interpreter is the way out only when it runs every op of the module.
            let interp_runs_it = loaded.module.comps.iter().flat_map(|c| &c.instrs).all(|i| match &i.op {
                hlo_ir::Op::CustomCall(cc) => hlo_interp::supports_custom_call(&cc.target),
                op => backend::interp_runs(op.opcode()),
            });
            let hint = if interp_runs_it {
                "\n  hint: `--backend interp` runs every op of this module"
            } else {
                "\n  the interpreter (`--backend interp`) cannot run this module either"
            };
            user_error(format!(
                "{at}: the Vulkan backend cannot run {} `{}`: {}{hint}",
                unsupported.op, unsupported.instr, unsupported.reason
            ))
        }
        Err(err) => err,
    }
}

/// An interpreter error as a message at the instruction's line: a user error (exit 2) when
/// the module asks for what the interpreter cannot give (an op it lacks, more memory than
/// the limit), an internal error otherwise.
fn locate_interp(loaded: &Loaded, err: hlo_interp::InterpError) -> anyhow::Error {
    use hlo_interp::InterpError as E;
    let at = match err.location() {
        Some((comp, instr)) => load::location_of_name(loaded, comp, instr),
        None => loaded.path.clone(),
    };
    match &err {
        E::OutOfMemory { instr, op, needed, held, limit, .. } => user_error(format!(
            "{at}: evaluating {instr} ({op}) needs about {} more while {} are held, past the memory limit of {}\n  \
             hint: HLO_MEMORY_LIMIT raises the limit if the machine has the memory",
            crate::limits::human_bytes(*needed),
            crate::limits::human_bytes(*held),
            crate::limits::human_bytes(*limit)
        )),
        E::Unsupported { .. } | E::TooManyIterations { .. } => user_error(format!("{at}: {err}")),
        _ => anyhow::anyhow!("{at}: internal error in the interpreter: {err}"),
    }
}

/// `shape: min/max/mean, first values` for `--print`.
pub fn summarize(array: &HostArray) -> String {
    let values = host_values_f64(array);
    let head: Vec<String> = values.iter().take(6).map(|v| format!("{v}")).collect();
    let ellipsis = if values.len() > 6 { ", ..." } else { "" };
    if values.is_empty() {
        return format!("{} []", array.describe());
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    format!("{} min {min} max {max} mean {mean:.6} [{}{ellipsis}]", array.describe(), head.join(", "))
}

/// Element values as f64 (complex: the real part), for summaries.
fn host_values_f64(array: &HostArray) -> Vec<f64> {
    use hlo_ir::DType;
    let b = &array.bytes;
    let chunks = |n: usize| b.chunks_exact(n);
    match array.dtype {
        DType::Pred | DType::U8 => b.iter().map(|&x| x as f64).collect(),
        DType::S8 => b.iter().map(|&x| x as i8 as f64).collect(),
        DType::S16 => chunks(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f64).collect(),
        DType::U16 => chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as f64).collect(),
        DType::F16 => chunks(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64()).collect(),
        DType::BF16 => chunks(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64()).collect(),
        DType::S32 => chunks(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
        DType::U32 => chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
        DType::F32 => chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
        DType::C64 => chunks(8).map(|c| f32::from_le_bytes(c[..4].try_into().unwrap()) as f64).collect(),
        DType::S64 => chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
        DType::U64 => chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
        DType::F64 => chunks(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect(),
        DType::C128 => chunks(16).map(|c| f64::from_le_bytes(c[..8].try_into().unwrap())).collect(),
        DType::S2 | DType::S4 => b.iter().map(|&x| x as i8 as f64).collect(),
        DType::U2 | DType::U4 => b.iter().map(|&x| x as f64).collect(),
        d => match hlo_ir::print::MiniFloat::of(d) {
            // 8- and 4-bit floats: a byte holds each pattern.
            Some(format) => b.iter().map(|&x| format.to_f64(x)).collect(),
            None => Vec::new(),
        },
    }
}

/// `hlo-run opt`.
pub fn opt(args: &OptArgs) -> anyhow::Result<()> {
    if args.list_passes {
        for (name, _) in hlo_passes::PASSES {
            println!("{name}");
        }
        return Ok(());
    }
    let path = args.module.as_deref().ok_or_else(|| user_error("no module given"))?;
    let mut loaded = load_static(path)?;
    if let Some(dir) = &args.dump_after_each {
        std::fs::create_dir_all(dir)
            .map_err(|e| user_error(format!("{}: cannot create the dump directory: {e}", dir.display())))?;
    }
    let mut index = 0usize;
    let mut dump_error: Option<anyhow::Error> = None;
    let mut dump = |name: &str, module: &hlo_ir::Module| {
        index += 1;
        if let (Some(dir), None) = (&args.dump_after_each, &dump_error) {
            let file = dir.join(format!("{index:02}-{name}.hlo"));
            if let Err(e) = std::fs::write(&file, hlo_ir::print::print_module(module)) {
                dump_error = Some(anyhow::anyhow!("{}: {e}", file.display()));
            }
        }
    };
    // Fusion stops growing a kernel at the device's storage-buffer bindings, as `compile` does.
    let max_kernel_buffers = crate::backend::vulkan::target_for_device(args.device.as_deref())?.max_storage_buffers;
    let mut opts = hlo_passes::PipelineOptions { verify: true, dump_after_each: Some(&mut dump), max_kernel_buffers };
    let report = if args.passes.is_empty() {
        hlo_passes::run_pipeline(&mut loaded.module, &mut opts)
    } else {
        if let Some(unknown) = args.passes.iter().find(|n| hlo_passes::find_pass(n).is_none()) {
            return Err(user_error(format!("unknown pass '{unknown}' (see --list-passes)")));
        }
        let names: Vec<&str> = args.passes.iter().map(|s| s.as_str()).collect();
        hlo_passes::run_passes(&mut loaded.module, &names, &mut opts)
    }
    .map_err(|e| anyhow::anyhow!("internal compiler error in the pass pipeline: {e}"))?;
    if let Some(err) = dump_error {
        return Err(err);
    }
    if args.explain_fusion {
        match &report.fusion {
            Some(fusion) => eprintln!("{fusion}"),
            None => eprintln!("(the fusion pass did not run)"),
        }
    }
    print!("{}", hlo_ir::print::print_module(&loaded.module));
    Ok(())
}

/// `hlo-run compile`.
pub fn compile(args: &CompileArgs) -> anyhow::Result<()> {
    let loaded = load_static(&args.module)?;
    let compiled =
        crate::backend::vulkan::compile_for_device(&loaded.module, args.device.as_deref(), args.explain_fusion)
            .map_err(|e| locate(&loaded, e))?;
    // With -o DIR every form is written there (one file per kernel for WGSL and SPIR-V), the
    // paths printed; without it the plan and WGSL go to stdout.
    let Some(dir) = args.out_dir.as_deref() else {
        match args.emit {
            Emit::Plan => print!("{}", compiled.plan_text()),
            Emit::Wgsl => print!("{}", compiled.wgsl()),
            Emit::Spirv => return Err(user_error("--emit spirv needs -o DIR")),
        }
        return Ok(());
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| user_error(format!("{}: cannot create the output directory: {e}", dir.display())))?;
    let write = |file: PathBuf, bytes: &[u8]| -> anyhow::Result<()> {
        std::fs::write(&file, bytes).map_err(|e| user_error(format!("{}: cannot write: {e}", file.display())))?;
        println!("{}", file.display());
        Ok(())
    };
    match args.emit {
        Emit::Plan => write(dir.join("plan.txt"), compiled.plan_text().as_bytes())?,
        Emit::Wgsl => {
            for (k, kernel) in compiled.program.kernels.iter().enumerate() {
                let file = dir.join(format!("kernel_{k}_{}.wgsl", sanitize(&kernel.name)));
                write(file, compiled.kernel_wgsl(k).as_bytes())?;
            }
        }
        Emit::Spirv => {
            for (k, kernel) in compiled.program.kernels.iter().enumerate() {
                let file = dir.join(format!("kernel_{k}_{}.spv", sanitize(&kernel.name)));
                let bytes: Vec<u8> = kernel.spirv.iter().flat_map(|w| w.to_le_bytes()).collect();
                write(file, &bytes)?;
            }
        }
    }
    Ok(())
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// `hlo-run bench`: compile once, warm up, time N calls, report min/median/p99.
pub fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    let parse_start = Instant::now();
    let loaded = load_static(&args.module)?;
    let parse_time = parse_start.elapsed();
    let limit = crate::limits::memory_limit()?;
    let host_inputs = gather_inputs(&loaded, &args.inputs, &args.common, limit)?;
    let prep_start = Instant::now();
    let options = PrepareOptions {
        profile: args.profile,
        ..args.common.prepare_options(limit.saturating_sub(host_bytes(&host_inputs)))
    };
    let prepare = || -> anyhow::Result<Box<dyn backend::Prepared>> {
        backend::prepare(&loaded.module, args.common.backend, &options).map_err(|e| locate(&loaded, e))
    };
    let warm_up = |prepared: &mut Box<dyn backend::Prepared>| -> anyhow::Result<()> {
        prepared.set_inputs(&host_inputs).map_err(|e| locate(&loaded, e))?;
        for _ in 0..args.warmup {
            prepared.time_call().map_err(|e| locate(&loaded, e))?;
        }
        Ok(())
    };
    let mut prepared = prepare()?;
    let prep_time = prep_start.elapsed();
    warm_up(&mut prepared)?;
    // Prepared again (for the driver-thread trial), ready to time.
    let prepare = || -> anyhow::Result<Box<dyn backend::Prepared>> {
        let mut prepared = prepare()?;
        warm_up(&mut prepared)?;
        Ok(prepared)
    };
    let mut driver_threads = None;
    if let Some(dispatches) = prepared.driver_threads_choice() {
        let (choice, faster) = measure_driver_threads(prepared, &prepare, dispatches)?;
        driver_threads = Some(choice);
        prepared = faster;
    }
    let samples = (0..args.runs.max(1))
        .map(|_| prepared.time_call().map_err(|e| locate(&loaded, e)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let t = Timings::from_samples(&samples).expect("at least one run");
    let times = prepared.compile_times();
    if args.json {
        let record = serde_json::json!({
            "module": loaded.path,
            "backend": format!("{:?}", args.common.backend).to_lowercase(),
            "device": prepared.device(),
            "parse_ms": parse_time.as_secs_f64() * 1e3,
            "compile_ms": prep_time.as_secs_f64() * 1e3,
            "passes_ms": times.passes.as_secs_f64() * 1e3,
            "codegen_ms": times.codegen.as_secs_f64() * 1e3,
            "runtime_build_ms": times.runtime_build.as_secs_f64() * 1e3,
            "runs": t.runs,
            "warmup": args.warmup,
            "min_ms": t.min.as_secs_f64() * 1e3,
            "median_ms": t.median.as_secs_f64() * 1e3,
            "p99_ms": t.p99.as_secs_f64() * 1e3,
            "mean_ms": t.mean.as_secs_f64() * 1e3,
            "stats": prepared.stats(),
            "driver_threads": driver_threads.map(|t| format!("{t:?}").to_lowercase()),
        });
        println!("{record}");
    } else {
        println!("module:   {}", loaded.path);
        println!("backend:  {:?}", args.common.backend);
        println!(
            "compile:  {} (parse {}, passes {}, codegen {}, runtime {})",
            ms(parse_time + prep_time),
            ms(parse_time),
            ms(times.passes),
            ms(times.codegen),
            ms(times.runtime_build)
        );
        println!("runs:     {} (after {} warm-up)", t.runs, args.warmup);
        if let Some(threads) = driver_threads {
            println!("driver threads: {threads:?} (measured faster for this program; LP_NUM_THREADS overrides)");
        }
        println!("per call: min {}  median {}  p99 {}  mean {}", ms(t.min), ms(t.median), ms(t.p99), ms(t.mean));
        println!("{}", prepared.stats());
        if let Some(steps) = prepared.step_times()? {
            let total: f64 = steps.iter().map(|(_, ns)| ns).sum();
            println!("device time of the last call by step ({:.3} ms in all):", total * 1e-6);
            for (name, ns) in steps {
                let share = if total > 0.0 { 100.0 * ns / total } else { 0.0 };
                println!("  {name:<48} {:>10.3} ms {share:>5.1}%", ns * 1e-6);
            }
        }
    }
    Ok(())
}

/// Calls timed per driver-thread setting when [`measure_driver_threads`] compares them.
const THREAD_TRIAL_CALLS: usize = 20;
/// Calls longer than this per dispatch keep the driver's worker threads untried: waking them
/// costs tens of microseconds per dispatch, which only programs of short dispatches notice.
const THREAD_TRIAL_MAX_PER_DISPATCH: Duration = Duration::from_micros(500);

/// For a program of short dispatches on lavapipe (`Prepared::driver_threads_choice`), times
/// calls with the driver's worker threads and without them ([`vulkan::DriverThreads`]) and
/// returns the faster setting with the program prepared for it. `prepared` must be the only
/// prepared program alive: the driver reads the setting when a context opens.
fn measure_driver_threads(
    mut prepared: Box<dyn backend::Prepared>,
    prepare: &dyn Fn() -> anyhow::Result<Box<dyn backend::Prepared>>,
    dispatches: u64,
) -> anyhow::Result<(crate::backend::vulkan::DriverThreads, Box<dyn backend::Prepared>)> {
    use crate::backend::vulkan::{choose_driver_threads as set_threads, DriverThreads};
    // The fastest call: on a shared machine other work only ever adds time, and a 15-call median
    // picked the slower setting for nbody_step_800 in one run.
    let fastest = |p: &mut Box<dyn backend::Prepared>| -> anyhow::Result<Duration> {
        let times = (0..THREAD_TRIAL_CALLS).map(|_| p.time_call()).collect::<anyhow::Result<Vec<_>>>()?;
        Ok(times.into_iter().min().unwrap_or_default())
    };
    let parallel = fastest(&mut prepared)?;
    if parallel > THREAD_TRIAL_MAX_PER_DISPATCH * dispatches as u32 {
        return Ok((DriverThreads::Parallel, prepared));
    }
    drop(prepared);
    set_threads(DriverThreads::Serial);
    let mut serial_prepared = prepare()?;
    let serial = fastest(&mut serial_prepared)?;
    tracing::debug!(?parallel, ?serial, "fastest call with and without the driver's worker threads");
    if serial < parallel {
        return Ok((DriverThreads::Serial, serial_prepared));
    }
    drop(serial_prepared);
    set_threads(DriverThreads::Parallel);
    Ok((DriverThreads::Parallel, prepare()?))
}

/// `hlo-run tune`: times every blocked dot and convolution kernel of the module with each
/// candidate block ([`hlo_spirv::TileTable::CANDIDATES`]) on the device, keeps the fastest in
/// the device's tile cache (beside the pipeline cache), which later compiles for that device
/// read (`HLO_AUTOTUNE=off` ignores it).
pub fn tune(args: &TuneArgs) -> anyhow::Result<()> {
    use crate::backend::vulkan;
    if args.common.backend != BackendKind::Vulkan {
        return Err(user_error("tune measures Vulkan kernels: use --backend vulkan"));
    }
    let loaded = load_static(&args.module)?;
    let limit = crate::limits::memory_limit()?;
    let host_inputs = gather_inputs(&loaded, &args.inputs, &args.common, limit)?;
    let ctx = vulkan::open_context(args.common.device.as_deref())?;
    let info = ctx.info().clone();
    let target = vulkan::target_for(&ctx);
    drop(ctx);
    let (compiled, _, _, _) = vulkan::compile_module(&loaded.module, &target, false).map_err(|e| locate(&loaded, e))?;
    let mut tunable: Vec<(String, String)> = Vec::new();
    for k in &compiled.kernels_info {
        if let Some(key) = &k.tile_key {
            if !tunable.iter().any(|(_, seen)| seen == key) {
                tunable.push((k.name.clone(), key.clone()));
            }
        }
    }
    println!("device: {}", info.short());
    if tunable.is_empty() {
        println!("nothing to tune: the module has no blocked dot or convolution kernel");
        return Ok(());
    }
    let mut table = target.tiles.clone();
    for (name, key) in &tunable {
        println!("{name} ({key}):");
        let mut best: Option<([u32; 2], f64)> = None;
        for candidate in hlo_spirv::TileTable::CANDIDATES {
            let mut tiles = table.clone();
            tiles.tiles.insert(key.clone(), candidate);
            let options = PrepareOptions {
                profile: true,
                tiles: Some(tiles),
                ..args.common.prepare_options(limit.saturating_sub(host_bytes(&host_inputs)))
            };
            let mut prepared =
                backend::prepare(&loaded.module, BackendKind::Vulkan, &options).map_err(|e| locate(&loaded, e))?;
            prepared.set_inputs(&host_inputs).map_err(|e| locate(&loaded, e))?;
            for _ in 0..args.warmup {
                prepared.time_call()?;
            }
            let mut fastest = f64::INFINITY;
            for _ in 0..args.runs.max(1) {
                prepared.time_call()?;
                let steps = prepared.step_times()?.unwrap_or_default();
                // Steps are named `step N kernel`.
                let ns: f64 = steps
                    .iter()
                    .filter(|(step, _)| step.rsplit(' ').next() == Some(name.as_str()))
                    .map(|(_, ns)| ns)
                    .sum();
                fastest = fastest.min(ns);
            }
            println!("  {:>2} x {}  {:>10.3} ms", candidate[0], candidate[1], fastest * 1e-6);
            if best.is_none_or(|(_, t)| fastest < t) {
                best = Some((candidate, fastest));
            }
        }
        let (tile, ns) = best.expect("at least one candidate");
        println!("  -> {} x {} ({:.3} ms)", tile[0], tile[1], ns * 1e-6);
        table.tiles.insert(key.clone(), tile);
    }
    let path = vulkan::save_tiles(&info, &table)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// `hlo-run devices`.
pub fn devices() -> anyhow::Result<()> {
    crate::backend::vulkan::print_devices()
}
