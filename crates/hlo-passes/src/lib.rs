//! HLO graph passes: inlining, normalisation, DCE, CSE, folding, fusion planning.
//!
//! Every pass is one file with one entry point,
//! `run(&mut Module) -> Result<bool /*changed*/, PassError>`, listed under a
//! stable kebab-case name in [`PASSES`].
//! [`pipeline`] runs them in order and verifies the module after each one in
//! debug builds and tests, like cranelift's `verify_if`.
//!
//! The passes keep the IR's arena invariant (operands before users) by editing
//! freely and then calling the crate's compaction helper, which removes dead
//! instructions and renumbers each computation in a topological order.
//!
//! After the whole pipeline the entry computation (and every `while` body and
//! condition and `conditional` branch) holds only `parameter`, `constant`,
//! `tuple`, `get-tuple-element`, `fusion`, `while`, `conditional` and the few
//! ops the fusion pass leaves standalone (`dot`, `convolution`, `sort`, ...).
//! [`fusion_analysis::kernel_kind`] names the emitter each fusion needs, and
//! [`loop_analysis`] finds `while` loops that can run inside one kernel.
//!
//! Architecture invariant: this crate does no IO. Dumps after each pass go
//! through a callback in [`pipeline::PipelineOptions`].
#![forbid(unsafe_code)]

pub mod algebraic_simplification;
pub mod batch_norm_expander;
pub mod bf16_excess_precision;
pub mod bitcast_convert_expander;
pub mod constant_folding;
pub mod cse;
pub mod dce;
pub mod dynamic_padder;
pub mod fuse;
pub mod fuse_epilogues;
pub mod fusion_analysis;
pub mod inline_calls;
pub mod linalg_expander;
pub mod loop_analysis;
pub mod lower_complex;
pub mod mulhi_expander;
pub mod normalize;
pub mod pipeline;
pub mod pred_convolution;
pub mod ragged_dot_expander;
pub mod rng_bit_generator_expander;
pub mod rng_expander;
pub mod rng_loop_conditions;
pub mod rng_state_threading;
pub mod scalar_reduce_window;
pub mod scaled_dot_expander;
pub mod scan_rewrite;
pub mod single_device;
pub mod split_reductions;
pub mod split_wide_reduces;
pub mod stochastic_convert_decomposer;
pub mod tree_reduction;
mod util;
pub mod xla_rewrites;

pub use fuse::{explain, FusionDecision, FusionReport};
pub use fusion_analysis::{fusion_analysis, kernel_kind, FusionAnalysis, KernelKind};
pub use loop_analysis::{elementwise_loop_analysis, known_trip_count, ElementwiseLoop, LoopCarry};
pub use pipeline::{run_passes, run_pipeline, PipelineOptions, PipelineReport, XLA_CPU_NUMERICS};

use hlo_ir::Module;

/// The signature every pass exposes.
pub type PassFn = fn(&mut Module) -> Result<bool, PassError>;

/// Every registered pass under its stable name, in pipeline order.
/// `hlo-run opt --passes=a,b` and `--list-passes` read this table.
pub const PASSES: &[(&str, PassFn)] = &[
    ("single-device", single_device::run),
    ("rng-expander", rng_expander::run),
    ("rng-loop-conditions", rng_loop_conditions::run),
    ("scaled-dot-expander", scaled_dot_expander::run),
    ("inline-calls", inline_calls::run),
    ("batch-norm-expander", batch_norm_expander::run),
    ("linalg-expander", linalg_expander::run),
    ("rng-state-threading", rng_state_threading::run),
    ("rng-bit-generator-expander", rng_bit_generator_expander::run),
    ("bitcast-convert-expander", bitcast_convert_expander::run),
    ("dynamic-padder", dynamic_padder::run),
    ("mulhi-expander", mulhi_expander::run),
    ("stochastic-convert-decomposer", stochastic_convert_decomposer::run),
    ("scalar-reduce-window", scalar_reduce_window::run),
    ("ragged-dot-expander", ragged_dot_expander::run),
    ("normalize", normalize::run),
    ("lower-complex", lower_complex::run),
    ("tree-reduction", tree_reduction::run),
    ("scan-rewrite", scan_rewrite::run),
    ("bf16-excess-precision", bf16_excess_precision::run),
    ("algebraic-simplification", algebraic_simplification::run),
    ("xla-rewrites", xla_rewrites::run),
    ("constant-folding", constant_folding::run),
    ("cse", cse::run),
    ("dce", dce::run),
    ("split-reductions", split_reductions::run),
    ("fusion", fuse::run),
    ("split-wide-reduces", split_wide_reduces::run),
    ("pred-convolution", pred_convolution::run),
];

/// Looks a pass up by its registered name.
pub fn find_pass(name: &str) -> Option<PassFn> {
    PASSES.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
}

/// Why a pass could not transform a module.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The module uses something this pass cannot handle.
    #[error("{pass}: `{op}` is not supported: {reason}")]
    Unsupported { pass: &'static str, op: String, reason: String },
    /// A pass produced or met an inconsistent module: a bug.
    #[error("internal error: {0}")]
    Internal(String),
    /// The module fails verification after a pass: a bug in that pass.
    #[error("the module fails verification after `{pass}`:\n{report}")]
    Verify { pass: String, report: String },
    /// `--passes` named a pass that is not registered.
    #[error("unknown pass `{0}` (see --list-passes)")]
    UnknownPass(String),
}
