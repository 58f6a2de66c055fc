//! The pass pipeline, in order, top to bottom:
//!
//! ```text
//! single-device                 async pairs, copy-start/done, partition/replica ids synchronous
//! rng-expander                  rng as a call of its definition: state op, Philox bits, distribution
//! rng-loop-conditions           a loop whose condition draws numbers carries the condition's result
//! scaled-dot-expander           scaled-dot as a call of its definition: operands times block scales, dot
//! inline-calls                  call/fusion bodies inlined (XLA's fusions undone)
//! linalg-expander               LAPACK custom calls, cholesky, triangular-solve as while loops
//! rng-state-threading           the hidden rng state as a value threaded through entry, loops, branches
//! rng-bit-generator-expander    rng-bit-generator as elementwise ThreeFry/Philox arithmetic
//! bitcast-convert-expander      width-changing bitcast-converts as shifts, ors and concatenations
//! dynamic-padder                bounded dynamic shapes padded to their bound, sizes carried, padding masked
//! mulhi-expander                mulhi from half-width partial products
//! stochastic-convert-decomposer stochastic-convert to integers as floor, compare and select
//! scalar-reduce-window          reduce-window over scalars as one over one-element vectors
//! ragged-dot-expander           ragged-dot (ragged rows) as a dot with every group and a mask
//! normalize                     bitcast/copy/opt-barrier gone, layouts stripped (row-major)
//! lower-complex                 complex arrays as (re, im) real pairs; fft as DFT dots
//! scan-rewrite                  cumulative reduce-windows as blocked scans of 16 (XLA:CPU's)
//! bf16-excess-precision         bf16 ops in f32; a bf16 result converted to f32 keeps its f32 value
//! repeat until nothing changes (at most 4 rounds):
//!   algebraic-simplification    x+0, reshape(reshape), transpose(transpose), ...
//!   xla-rewrites                XLA's value-changing float rewrites: x / c -> x * (1/c), ...
//!   constant-folding            small all-constant instructions evaluated by hlo-interp
//!   cse                         identical instructions merged
//! dce                           unused instructions and computations removed
//! split-reductions              variadic reduces and dots over very many elements in two levels
//! fusion                        kernels formed: fusion instructions + control flow
//! dce                           clean up after fusion
//! (split-wide-reduces runs right before split-reductions: variadic reduces and scatters past the binding limit
//!  split into independent groups, coupled ones by closure)
//! (pred-convolution runs right after ragged-dot-expander: a pred convolution as an s32 one, != 0)
//! ```
//!
//! The simplification passes repeat because each exposes work for the others
//! (a folded constant makes `x * 1` visible; a merged instruction makes `x - x` visible),
//! like XLA's `HloPassFix`.
//!
//! After each pass the module is verified (`hlo_ir::verify::verify`) when
//! [`PipelineOptions::verify`] is set, which it is by default in debug builds
//! and tests, like cranelift's `verify_if`. A callback may observe the module
//! after each pass (`--dump-after-each`); this crate never does IO itself.

use crate::{fuse, FusionReport, PassError, PassFn};
use hlo_ir::Module;
use std::time::{Duration, Instant};

/// One step of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Pass(&'static str),
    /// Run these passes in order, again and again, until a round changes nothing.
    Fixpoint(&'static [&'static str]),
}

/// Most rounds a [`Step::Fixpoint`] runs.
pub const MAX_FIXPOINT_ROUNDS: usize = 4;

/// The pipeline's passes in order, each listed once (the fixpoint group once):
/// what `--list-passes`-style tools show. [`run_pipeline`] follows [`STEPS`].
pub const PIPELINE: &[&str] = &[
    "single-device",
    "rng-expander",
    "rng-loop-conditions",
    "scaled-dot-expander",
    "inline-calls",
    "batch-norm-expander",
    "linalg-expander",
    "rng-state-threading",
    "rng-bit-generator-expander",
    "bitcast-convert-expander",
    "dynamic-padder",
    "mulhi-expander",
    "stochastic-convert-decomposer",
    "scalar-reduce-window",
    "ragged-dot-expander",
    "pred-convolution",
    "normalize",
    "lower-complex",
    "scan-rewrite",
    "bf16-excess-precision",
    "algebraic-simplification",
    "xla-rewrites",
    "constant-folding",
    "cse",
    "dce",
    "split-wide-reduces",
    "split-reductions",
    "fusion",
    "dce",
];

/// The pipeline's steps, in order.
pub const STEPS: &[Step] = &[
    // Before inlining, which then inlines the computations that async pairs wrapped.
    Step::Pass("single-device"),
    // Before inlining, which inlines the call of each `rng`'s definition.
    Step::Pass("rng-expander"),
    // Before inlining, which inlines the condition it calls in the loop body and before the loop.
    Step::Pass("rng-loop-conditions"),
    Step::Pass("scaled-dot-expander"),
    Step::Pass("inline-calls"),
    Step::Pass("batch-norm-expander"),
    // LAPACK custom calls, `cholesky` and `triangular-solve` as while loops of plain HLO.
    Step::Pass("linalg-expander"),
    // `rng-get-and-update-state` as a `u64[2]` value threaded through the entry, loops and branches.
    Step::Pass("rng-state-threading"),
    // `rng-bit-generator` as iota, adds, shifts, xors and u64 products, fused like any elementwise code.
    Step::Pass("rng-bit-generator-expander"),
    // JAX's `u32[2]` key words to the `u64` state and back: a bitcast-convert that changes the width.
    Step::Pass("bitcast-convert-expander"),
    // Ops the interpreter evaluates itself (it is the oracle for these expansions).
    Step::Pass("dynamic-padder"),
    Step::Pass("mulhi-expander"),
    Step::Pass("stochastic-convert-decomposer"),
    Step::Pass("scalar-reduce-window"),
    Step::Pass("ragged-dot-expander"),
    Step::Pass("pred-convolution"),
    Step::Pass("normalize"),
    Step::Pass("lower-complex"),
    // Not `tree-reduction`: XLA:CPU's blocks of 32 give the interpreter JAX's sums bit for bit
    // (it is in XLA_CPU_NUMERICS), but the device reduces in its own order anyway (workgroup
    // trees, subgroup-staged loops) and the nested loops cost 2-6x (n-body); `split-reductions`
    // below keeps long sums accurate and loops short.
    Step::Pass("scan-rewrite"),
    // XLA:CPU normalizes bf16 before it simplifies: `x / c` in bf16 multiplies by an f32 reciprocal.
    Step::Pass("bf16-excess-precision"),
    Step::Fixpoint(&["algebraic-simplification", "xla-rewrites", "constant-folding", "cse"]),
    Step::Pass("dce"),
    // A variadic reduce wider than a kernel may bind: one reduce per independent group of results.
    Step::Pass("split-wide-reduces"),
    Step::Pass("split-reductions"),
    Step::Pass("fusion"),
    Step::Pass("dce"),
];

/// The passes that change values the way XLA:CPU does (see docs/architecture.md, Numerics),
/// in pipeline order: what the interpreter runs before evaluating (`hlo-run --backend interp`)
/// so that it computes what JAX on CPU computes. Calls are inlined first, as XLA does, so that
/// the patterns are seen across call boundaries; simplification and folding turn the
/// converted constants of bf16 code back into constants for `xla-rewrites` to see.
pub const XLA_CPU_NUMERICS: &[&str] = &[
    "inline-calls",
    // XLA:CPU runs batch norm expanded; the interpreter has no batch-norm ops of its own.
    "batch-norm-expander",
    "tree-reduction",
    "scan-rewrite",
    "bf16-excess-precision",
    "algebraic-simplification",
    "constant-folding",
    "xla-rewrites",
    // Once more, as XLA's fixpoint does: folding turns `convert(bf16 -0)` into an f32 constant that makes
    // `x + -0` an identity, which keeps a subnormal `x` where the add would flush it (JAX: bf16 `x + -0.0`
    // compiles to a copy).
    "algebraic-simplification",
];

/// A callback that observes the module after each pass: `(pass name, module)`.
pub type DumpFn<'a> = &'a mut dyn FnMut(&str, &Module);

/// Options of [`run_pipeline`] and [`run_passes`].
pub struct PipelineOptions<'a> {
    /// Verify the module after every pass (default: on in debug builds).
    pub verify: bool,
    /// Called after every pass with the pass name and the module.
    pub dump_after_each: Option<DumpFn<'a>>,
    /// The most storage buffers one kernel may bind on the target device
    /// (`maxPerStageDescriptorStorageBuffers`): fusion keeps every kernel's arrays below it.
    pub max_kernel_buffers: u32,
}

// Not derived: `verify` defaults to on in debug builds only (clippy sees `false` in release).
#[allow(clippy::derivable_impls)]
impl Default for PipelineOptions<'_> {
    fn default() -> Self {
        PipelineOptions {
            verify: cfg!(debug_assertions),
            dump_after_each: None,
            max_kernel_buffers: fuse::DEFAULT_MAX_KERNEL_BUFFERS,
        }
    }
}

/// What one pass did.
#[derive(Clone, Debug, PartialEq)]
pub struct PassRecord {
    pub name: &'static str,
    pub changed: bool,
    /// Instructions in the module after the pass.
    pub instrs_after: usize,
    pub elapsed: Duration,
}

/// What the pipeline did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PipelineReport {
    pub passes: Vec<PassRecord>,
    /// The fusion pass's decisions, when it ran.
    pub fusion: Option<FusionReport>,
}

/// Runs the whole pipeline ([`STEPS`]) on `module`.
pub fn run_pipeline(module: &mut Module, opts: &mut PipelineOptions<'_>) -> Result<PipelineReport, PassError> {
    let _span = tracing::info_span!("pipeline").entered();
    let mut report = PipelineReport::default();
    for step in STEPS {
        match *step {
            Step::Pass(name) => {
                run_into(module, name, opts, &mut report)?;
            }
            Step::Fixpoint(names) => {
                for _ in 0..MAX_FIXPOINT_ROUNDS {
                    let mut changed = false;
                    for &name in names {
                        changed |= run_into(module, name, opts, &mut report)?;
                    }
                    if !changed {
                        break;
                    }
                }
            }
        }
    }
    Ok(report)
}

/// Runs the named passes in the given order (`hlo-run opt --passes=a,b`).
pub fn run_passes(
    module: &mut Module,
    names: &[&str],
    opts: &mut PipelineOptions<'_>,
) -> Result<PipelineReport, PassError> {
    let mut report = PipelineReport::default();
    for &name in names {
        run_into(module, name, opts, &mut report)?;
    }
    Ok(report)
}

/// Runs one pass, records it, verifies and dumps. Returns whether it changed the module.
fn run_into(
    module: &mut Module,
    name: &str,
    opts: &mut PipelineOptions<'_>,
    report: &mut PipelineReport,
) -> Result<bool, PassError> {
    let (name, pass): (&'static str, PassFn) = crate::PASSES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(n, f)| (n, f))
        .ok_or_else(|| PassError::UnknownPass(name.to_string()))?;
    let start = Instant::now();
    let changed = if name == "fusion" {
        let (changed, fusion) = fuse::run_with_report(module, opts.max_kernel_buffers)?;
        report.fusion = Some(fusion);
        changed
    } else if name == "split-wide-reduces" {
        crate::split_wide_reduces::run_with_limit(module, opts.max_kernel_buffers)?
    } else {
        pass(module)?
    };
    report.passes.push(PassRecord { name, changed, instrs_after: module.instr_count(), elapsed: start.elapsed() });
    if opts.verify {
        verify_after(name, module)?;
    }
    if let Some(dump) = opts.dump_after_each.as_mut() {
        dump(name, module);
    }
    Ok(changed)
}

/// Verifies `module`, blaming `pass` for any error.
pub fn verify_after(pass: &str, module: &Module) -> Result<(), PassError> {
    hlo_ir::verify::verify(module).map_err(|errors| PassError::Verify {
        pass: pass.to_string(),
        report: hlo_ir::verify::render_with_module(module, &errors),
    })
}
