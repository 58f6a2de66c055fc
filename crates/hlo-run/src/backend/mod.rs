//! Backends behind one interface: the Vulkan path (the default) and the
//! reference interpreter (`--backend interp`).
//!
//! A backend is prepared once per module ([`prepare`]) and then called many
//! times, which is what `bench` and the real-time loop need: the Vulkan
//! executable keeps its device buffers and recorded command buffer across calls.

use crate::npy::HostArray;
use crate::user_error;
use hlo_ir::{ArrayShape, Literal, LiteralData, Module, Shape};
use std::time::{Duration, Instant};

/// Which engine executes the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// SPIR-V kernels on a Vulkan device (lavapipe when there is no GPU).
    Vulkan,
    /// The reference CPU interpreter (slow, obviously correct).
    Interp,
}

/// Options that shape preparation.
#[derive(Clone, Debug, Default)]
pub struct PrepareOptions {
    /// Device name substring or index (`--device`); falls back to `HLO_VULKAN_DEVICE`.
    pub device: Option<String>,
    /// Record GPU timestamps after every step (`bench --profile`).
    pub profile: bool,
    /// The most bytes the backend may hold on the host (the interpreter's values); `None`: no limit.
    pub memory_limit: Option<u64>,
    /// Block sizes to use instead of the device's tuning cache (`hlo-run tune` trying them).
    pub tiles: Option<hlo_spirv::TileTable>,
}

/// Where preparation time went, for `bench` and `--stats`.
#[derive(Clone, Debug, Default)]
pub struct CompileTimes {
    pub passes: Duration,
    pub codegen: Duration,
    pub runtime_build: Duration,
}

impl CompileTimes {
    pub fn total(&self) -> Duration {
        self.passes + self.codegen + self.runtime_build
    }
}

/// What a loop of calls ([`Prepared::run_iterations`], [`Prepared::run_frames`]) gives back.
#[derive(Debug)]
pub struct LoopOutcome {
    /// Every result leaf of the last call.
    pub outputs: Vec<HostArray>,
    /// Wall time of all the calls (not the final read-back of the outputs).
    pub wall: Duration,
    /// Frames only: each frame's time (its call, and the image's read-back when there is one).
    pub frame_times: Vec<Duration>,
    /// Bytes copied between host and device after the first call until the last one finished, where the
    /// backend keeps state on a device; `None` for the interpreter, where everything is on the host.
    pub bytes_after_first: Option<u64>,
}

/// One frame's image for [`Prepared::run_frames`]'s callback: `None` when the image is not read back.
pub type FrameCallback<'a> = dyn FnMut(u64, Option<&HostArray>) -> anyhow::Result<()> + 'a;

/// A module ready to be called.
pub trait Prepared {
    /// Runs once: inputs in, every result leaf out.
    fn run(&mut self, inputs: &[HostArray]) -> anyhow::Result<Vec<HostArray>>;
    /// Uploads inputs once, for timing device-resident calls.
    fn set_inputs(&mut self, inputs: &[HostArray]) -> anyhow::Result<()>;
    /// One call on the inputs last set, without host transfers where the
    /// backend keeps data on a device; returns the wall time of the call.
    fn time_call(&mut self) -> anyhow::Result<Duration>;
    /// Human-readable statistics (kernels, dispatches, memory).
    fn stats(&self) -> String;
    /// The device that runs the calls, e.g. `#0 llvmpipe (LLVM 15.0.6, 256 bits) [cpu]`.
    fn device(&self) -> String;
    fn compile_times(&self) -> CompileTimes;
    /// How to cut the outputs to their runtime sizes, when the module has dynamic results
    /// (`dynamic-padder`); [`finish_outputs`] applies it.
    fn dynamic_results(&self) -> Option<&hlo_ir::DynamicResults> {
        None
    }
    /// Where the driver's worker threads could be chosen for this program ([`vulkan::DriverThreads`]:
    /// lavapipe, `LP_NUM_THREADS` not set by the user, several dispatches), the dispatches per call.
    fn driver_threads_choice(&self) -> Option<u64> {
        None
    }
    /// Device time per step of the last call, `(step name, nanoseconds)`, when prepared with `profile`.
    fn step_times(&self) -> anyhow::Result<Option<Vec<(String, f64)>>> {
        Ok(None)
    }
    /// Runs `iterations` (at least 1) calls, each one's `feeds` outputs becoming the next one's
    /// inputs; returns the last call's outputs and the wall time of all calls. This default goes
    /// through the host between calls; a device backend keeps the state where it is.
    fn run_iterations(
        &mut self,
        inputs: &[HostArray],
        feeds: &[crate::feed::Feed],
        iterations: u64,
    ) -> anyhow::Result<LoopOutcome> {
        let start = Instant::now();
        let mut current = inputs.to_vec();
        let mut outputs = self.run(&current)?;
        for _ in 1..iterations {
            for f in feeds {
                current[f.input] = outputs[f.output].clone();
            }
            outputs = self.run(&current)?;
        }
        Ok(LoopOutcome { outputs, wall: start.elapsed(), frame_times: Vec::new(), bytes_after_first: None })
    }
    /// Frame mode: like [`Prepared::run_iterations`], but after every call output `image` is handed
    /// to `on_frame` with the frame's index, read back only when `read_image`. Each frame's time
    /// is its call and the image's read-back (`on_frame` not included).
    fn run_frames(
        &mut self,
        inputs: &[HostArray],
        feeds: &[crate::feed::Feed],
        frames: u64,
        image: usize,
        read_image: bool,
        on_frame: &mut FrameCallback<'_>,
    ) -> anyhow::Result<LoopOutcome> {
        let wall = Instant::now();
        let mut current = inputs.to_vec();
        let mut outputs: Vec<HostArray> = Vec::new();
        let mut times = Vec::new();
        for frame in 0..frames {
            let start = Instant::now();
            if frame > 0 {
                for f in feeds {
                    current[f.input] = outputs[f.output].clone();
                }
            }
            outputs = self.run(&current)?;
            times.push(start.elapsed());
            let shown = outputs.get(image).ok_or_else(|| anyhow::anyhow!("the module has no output {image}"))?;
            on_frame(frame, read_image.then_some(shown))?;
        }
        Ok(LoopOutcome { outputs, wall: wall.elapsed(), frame_times: times, bytes_after_first: None })
    }
}

/// The module's result from the outputs of a call: a result with dynamic dimensions (padded to
/// their bounds on both backends) cut to the sizes the run gave them, the size leaves the padded
/// module appended dropped; a size given to `set-dimension-size` outside its bound is a user error.
pub fn finish_outputs(prepared: &dyn Prepared, outputs: Vec<HostArray>) -> anyhow::Result<Vec<HostArray>> {
    let Some(dynamic) = prepared.dynamic_results() else { return Ok(outputs) };
    let dtypes: Vec<hlo_ir::DType> = outputs.iter().map(|o| o.dtype).collect();
    let leaves = outputs.into_iter().map(|o| (o.dims, o.bytes)).collect();
    let cut = dynamic.apply(leaves).map_err(user_error)?;
    Ok(cut.into_iter().zip(dtypes).map(|((dims, bytes), dtype)| HostArray { dtype, dims, bytes }).collect())
}

/// A pass refused an op of the module before the interpreter ran it (`dynamic-padder`);
/// `commands` turns it into a message with the op's line.
#[derive(Debug)]
pub struct Refused {
    pub op: String,
    pub instr: String,
    pub reason: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot run {} ({}): {}", self.op, self.instr, self.reason)
    }
}

impl std::error::Error for Refused {}

/// Bounded dynamic shapes as the Vulkan pipeline runs them: padded to their bounds, sizes carried
/// (`dynamic-padder`, after inlining so that sizes do not cross calls). A module without them is
/// left as it is.
fn pad_dynamic_shapes(module: &mut Module) -> anyhow::Result<()> {
    if !hlo_passes::dynamic_padder::needed(module) {
        return Ok(());
    }
    let mut pipeline = hlo_passes::PipelineOptions::default();
    hlo_passes::run_passes(module, &["inline-calls", "dynamic-padder"], &mut pipeline).map_err(|e| match e {
        hlo_passes::PassError::Unsupported { pass, op, reason } => {
            let (name, instr) = match op.split_once(" (%") {
                Some((name, instr)) => (name.to_string(), instr.trim_end_matches(')').to_string()),
                None => (op.clone(), op),
            };
            anyhow::Error::new(Refused { op: name, instr, reason: format!("{pass}: {reason}") })
        }
        other => anyhow::anyhow!("internal compiler error padding dynamic shapes: {other}"),
    })?;
    Ok(())
}

/// Whether the interpreter backend runs `opcode`: what `hlo-interp` evaluates, and batch norm,
/// which it runs expanded (`batch-norm-expander`).
pub fn interp_runs(opcode: hlo_ir::Opcode) -> bool {
    use hlo_ir::Opcode as O;
    hlo_interp::supports(opcode) || matches!(opcode, O::BatchNormTraining | O::BatchNormInference | O::BatchNormGrad)
}

/// Prepares `module` for repeated execution on `kind`.
pub fn prepare(module: &Module, kind: BackendKind, opts: &PrepareOptions) -> anyhow::Result<Box<dyn Prepared>> {
    match kind {
        BackendKind::Interp => {
            let mut module = module.clone();
            pad_dynamic_shapes(&mut module)?;
            if !InterpPrepared::pure() {
                // XLA:CPU's value-changing rewrites (x / c as x * (1/c), sums in blocks of 32,
                // scans in blocks of 16, bf16 excess precision): what JAX on CPU computes.
                let mut pipeline = hlo_passes::PipelineOptions {
                    verify: cfg!(debug_assertions),
                    dump_after_each: None,
                    ..Default::default()
                };
                hlo_passes::run_passes(&mut module, hlo_passes::XLA_CPU_NUMERICS, &mut pipeline)
                    .map_err(|e| anyhow::anyhow!("internal compiler error in XLA:CPU's rewrites: {e}"))?;
            } else {
                // Batch norm has no semantics of its own beyond XLA's expansion.
                let mut pipeline = hlo_passes::PipelineOptions::default();
                hlo_passes::run_passes(&mut module, &["batch-norm-expander"], &mut pipeline)
                    .map_err(|e| anyhow::anyhow!("internal compiler error expanding batch norm: {e}"))?;
            }
            Ok(Box::new(InterpPrepared { module, inputs: Vec::new(), memory_limit: opts.memory_limit }))
        }
        BackendKind::Vulkan => Ok(Box::new(crate::backend::vulkan::VulkanPrepared::new(module, opts)?)),
    }
}

/// The interpreter backend: evaluates the module as given, after XLA:CPU's value-changing
/// rewrites ([`hlo_passes::XLA_CPU_NUMERICS`]) unless `HLO_INTERP_PURE=1`.
struct InterpPrepared {
    module: Module,
    inputs: Vec<Literal>,
    memory_limit: Option<u64>,
}

impl InterpPrepared {
    fn literals(&self, inputs: &[HostArray]) -> anyhow::Result<Vec<Literal>> {
        let entry = self.module.entry_comp();
        let mut leaves = inputs.iter();
        entry.param_shapes().into_iter().map(|shape| build_literal(shape, &mut leaves)).collect()
    }

    /// `HLO_INTERP_PURE=1`: plain HLO semantics, as XLA's reference evaluator computes them.
    fn pure() -> bool {
        matches!(std::env::var("HLO_INTERP_PURE").as_deref(), Ok("1") | Ok("true"))
    }

    /// XLA:CPU's float environment (fused multiply-adds, denormals flushed) by
    /// default, so results match what JAX computes on CPU bit for bit.
    fn options(&self) -> hlo_interp::Options {
        let numerics = if Self::pure() { hlo_interp::Options::default() } else { hlo_interp::Options::xla_cpu() };
        hlo_interp::Options { memory_limit: self.memory_limit, ..numerics }
    }

    /// Evaluates; an [`hlo_interp::InterpError`] stays one (inside the `anyhow::Error`), so
    /// that the caller can point at the instruction it names.
    fn evaluate(&self, args: &[Literal]) -> anyhow::Result<Vec<HostArray>> {
        let result = hlo_interp::evaluate_with(&self.module, args, &self.options()).map_err(anyhow::Error::new)?;
        flatten_literal(&result)
    }
}

impl Prepared for InterpPrepared {
    fn dynamic_results(&self) -> Option<&hlo_ir::DynamicResults> {
        self.module.dynamic_results.as_ref()
    }

    fn run(&mut self, inputs: &[HostArray]) -> anyhow::Result<Vec<HostArray>> {
        let args = self.literals(inputs)?;
        self.evaluate(&args)
    }

    fn set_inputs(&mut self, inputs: &[HostArray]) -> anyhow::Result<()> {
        self.inputs = self.literals(inputs)?;
        Ok(())
    }

    fn time_call(&mut self) -> anyhow::Result<Duration> {
        let start = Instant::now();
        self.evaluate(&self.inputs)?;
        Ok(start.elapsed())
    }

    fn stats(&self) -> String {
        format!("interpreter: {} instructions", self.module.instr_count())
    }

    fn compile_times(&self) -> CompileTimes {
        CompileTimes::default()
    }

    fn device(&self) -> String {
        "host CPU (reference interpreter)".to_string()
    }
}

/// Builds the literal for one (possibly tuple) parameter from flattened leaves.
fn build_literal<'a>(shape: &Shape, leaves: &mut impl Iterator<Item = &'a HostArray>) -> anyhow::Result<Literal> {
    match shape {
        Shape::Array(array) => {
            let host = leaves.next().ok_or_else(|| user_error("too few inputs for the entry parameters"))?;
            let shape = ArrayShape::new(array.dtype, array.dims.clone());
            hlo_interp::literal_from_bytes(&shape, &host.bytes).map_err(|e| user_error(e.to_string()))
        }
        Shape::Tuple(elems) => {
            let elems = elems.iter().map(|e| build_literal(e, leaves)).collect::<anyhow::Result<Vec<_>>>()?;
            Ok(Literal::tuple(elems))
        }
        Shape::Token => Ok(Literal { shape: Shape::Token, data: LiteralData::Token }),
    }
}

/// The array leaves of a result literal as host arrays, depth first.
pub fn flatten_literal(lit: &Literal) -> anyhow::Result<Vec<HostArray>> {
    let mut out = Vec::new();
    fn walk(lit: &Literal, out: &mut Vec<HostArray>) -> anyhow::Result<()> {
        match &lit.data {
            LiteralData::Array(_) => {
                let shape = lit.shape.as_array().expect("array data has an array shape");
                let bytes = hlo_interp::literal_to_bytes(lit).map_err(|e| anyhow::anyhow!("{e}"))?;
                out.push(HostArray { dtype: shape.dtype, dims: shape.dims.clone(), bytes });
            }
            LiteralData::Tuple(elems) => elems.iter().try_for_each(|e| walk(e, out))?,
            LiteralData::Token => {}
            LiteralData::Elided => anyhow::bail!("a result holds a constant whose values were elided"),
        }
        Ok(())
    }
    walk(lit, &mut out)?;
    Ok(out)
}

pub mod vulkan;
