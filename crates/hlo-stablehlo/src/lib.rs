//! A native reader of StableHLO: the portable artifacts `jax.export` writes (and PJRT
//! plugins receive) and, later, StableHLO text, lowered to an [`hlo_ir::Module`].
//!
//! ```text
//!  bytes ──bytecode::read──▶ generic tree (ir) ──lower──▶ hlo_ir::Module
//!         MLIR container,     ops, values,       VHLO/StableHLO op
//!         vhlo.rs encodings   attrs, regions     by op to HLO
//! ```
//!
//! Invariants:
//! - The reader never panics, whatever the input: every read is bounds-checked, every count is
//!   checked against the bytes left, nesting is limited; errors carry a byte offset and what was
//!   expected.
//! - An op the lowering does not know is an [`Error::Unsupported`] naming it, never skipped.
//! - The result is built through `hlo_ir`'s shape inference; a lowered module passes
//!   `hlo_ir::verify::verify`.
//! - No IO, and no dependency besides `hlo-ir` (and `thiserror`, `half`).
#![forbid(unsafe_code)]

pub mod bytecode;
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

/// The StableHLO versions whose portable artifacts this reader accepts, as
/// `(oldest, newest)` `major.minor.patch`. The producer string names the version an artifact
/// targets; ops are read by their VHLO names (`_v1`, `_v2`), so any artifact whose ops this
/// crate knows reads, and newer op versions are reported as unsupported ops.
pub fn supported_versions() -> ((u32, u32, u32), (u32, u32, u32)) {
    ((0, 9, 0), (1, 13, 1))
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
