//! A native reader of StableHLO, lowered to an [`hlo_ir::Module`]: the portable artifacts
//! `jax.export` serialises (VHLO as MLIR bytecode, what a PJRT plugin is handed to compile) and
//! the textual StableHLO of `jax.jit(f).lower(*args).as_text()`.
//!
//! ```text
//!  bytes ──bytecode::read──▶ ┐
//!         MLIR container,    │ generic tree (ir): ops, value ids, ──lower──▶ hlo_ir::Module
//!         vhlo.rs encodings  │ typed results, attrs, regions      op by op,
//!  text ──text::parse──────▶ ┘ (VHLO attribute names)             regions -> computations
//! ```
//!
//! - [`bytecode`]: the container (sections, string/dialect/op-name tables, lazily decoded
//!   attribute and type tables, the IR section with per-region value numbering, properties).
//! - `vhlo.rs`: VHLO's and the builtin dialect's attribute and type encodings;
//!   `vhlo_ops.rs`: each VHLO op's attribute names in properties order.
//! - [`text`]: JAX's pretty forms and MLIR's generic form, normalised to the names VHLO uses.
//! - `lower.rs`: ops to HLO instructions, checked against `hlo_ir`'s shape inference.
//!
//! Invariants:
//! - The readers never panic, whatever the input: every read is bounds-checked, every count is
//!   checked against the bytes left, nesting is limited, integers that reach shape arithmetic
//!   are bounded; errors carry a byte offset (bytecode) or `line:col` (text) and what was
//!   expected.
//! - An op the lowering does not know is an [`Error::Unsupported`] naming it, never skipped;
//!   so is a VHLO op version newer than the op table.
//! - Every instruction's declared shape equals the one `hlo_ir` infers, so a lowered module
//!   passes `hlo_ir::verify::verify`.
//! - No IO, and no dependency besides `hlo-ir`, `thiserror` and `half` (the type of f16/bf16
//!   literal elements).
#![forbid(unsafe_code)]

pub mod bytecode;
mod chlo_gamma;
pub mod ir;
mod lower;
pub mod text;
mod vhlo;
mod vhlo_ops;

pub use bytecode::{Artifact, MAX_BYTECODE_VERSION, MIN_BYTECODE_VERSION};
use ir::Pos;

/// Why an artifact could not be read or lowered.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("byte {offset}: expected {expected}")]
    Bytecode { offset: usize, expected: String },
    #[error("{line}:{col}: expected {expected}")]
    Text { line: u32, col: u32, expected: String },
    #[error("{pos}: unsupported: {what}")]
    Unsupported { pos: Pos, what: String },
    #[error("{pos}: {op}: {message}")]
    Invalid { pos: Pos, op: String, message: String },
}

/// The StableHLO versions whose portable artifacts this reader accepts, `(oldest, newest)` as
/// `(major, minor, patch)`: what a PJRT plugin advertises so that JAX serialises for a version
/// it can read.
///
/// The oldest is VHLO's own minimum (0.9.0, written as MLIR bytecode version 0); the newest is
/// that of jaxlib 0.8.3, whose artifacts the tests read (targets 0.9.0, 1.0.0 and 1.13.1). The op
/// table (`vhlo_ops.rs`) comes from StableHLO 1.20.0, so newer artifacts mostly read too; an op
/// version this reader does not know is refused by name.
pub fn supported_versions() -> ((u32, u32, u32), (u32, u32, u32)) {
    ((0, 9, 0), (1, 13, 5))
}

/// Reads textual StableHLO (`jax.jit(f).lower(*args).as_text()`, pretty or generic form).
pub fn parse_text(src: &str) -> Result<hlo_ir::Module, Error> {
    let ops = text::parse(src)?;
    lower::lower(&ops)
}

/// Reads a StableHLO portable artifact (VHLO serialised as MLIR bytecode) into a module.
pub fn read_portable_artifact(bytes: &[u8]) -> Result<hlo_ir::Module, Error> {
    let artifact = bytecode::read(bytes)?;
    lower::lower(&artifact.ops)
}
