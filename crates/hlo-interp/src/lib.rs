//! A plain reference evaluator for HLO: the oracle for tests and for constant folding.
//!
//! [`evaluate`] runs a module's entry computation on [`Literal`] arguments;
//! [`evaluate_computation`] runs any computation, and [`evaluate_instr`] evaluates one
//! instruction on given operand values (what constant folding needs).
//!
//! Semantics follow XLA's `operation_semantics.md` and its reference evaluator
//! (`xla/hlo/evaluator`), including the corner cases a GPU backend must reproduce:
//! integer division by zero, shifts past the bit width, saturating float-to-int
//! conversion, NaN-propagating max/min, the float total order, clamped dynamic-slice
//! and gather indices, skipped out-of-bounds scatter windows, and f16/bf16 arithmetic
//! computed in f32 and rounded after every op. Each module's `//!` doc lists the rules
//! it implements.
//!
//! How it stays fast enough to be a test oracle for real programs: literals store typed
//! vectors in row-major order; shape ops compute source offsets with per-dimension
//! terms ([`index`]) and gather with one typed loop; elementwise ops resolve the
//! per-element function once and map it; reducers, comparators and combiners are
//! compiled to small scalar programs ([`scalar`]) and the common add/max/min reducers
//! run as typed folds.
//!
//! [`Options`] selects the floating-point environment: pure HLO semantics by default,
//! or XLA:CPU's (denormals flushed, multiply-adds contracted) to reproduce JAX's CPU
//! results bit for bit.
//!
//! Anything not implemented returns [`InterpError::Unsupported`] naming the
//! instruction; the evaluator never panics on a well-formed module.
//!
//! Architecture invariant: this crate depends only on `hlo-ir` and does no IO.
#![forbid(unsafe_code)]

mod array;
mod convert;
mod coverage;
mod elementwise;
mod error;
mod eval;
mod fft;
mod gather_scatter;
pub mod index;
pub mod lapack;
mod lapack_eig;
mod lapack_geev;
mod linalg;
mod literal_io;
mod options;
mod reduce;
mod rng;
pub mod rng_distribution;
mod scalar;
mod scalar_ops;
pub mod scaled_dot;
mod shape_ops;
mod sort;
mod subbyte;

pub use coverage::{supports, supports_custom_call};
pub use error::InterpError;
pub use eval::{evaluate, evaluate_computation, evaluate_computation_with, evaluate_instr, evaluate_with};
pub use literal_io::{literal_from_bytes, literal_to_bytes, random_literal};
pub use options::Options;
/// Cephes' `cos x - 1` polynomial, shared with `lower-complex`'s complex `expm1` so both backends agree.
pub use scalar_ops::COSM1_COEFFS;
