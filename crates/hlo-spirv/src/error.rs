//! The one error type of this stage.

/// Why a module could not be compiled to a device program.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodegenError {
    /// The module uses an op, a type or a pattern this backend (or the target device) does not support.
    #[error("unsupported {op} in `{instr}`: {reason}")]
    Unsupported { op: String, instr: String, reason: String },
    /// naga rejected a module this crate generated: always a bug in this crate.
    #[error("internal error: generated kernel `{kernel}` is invalid: {naga_error}")]
    Internal { kernel: String, naga_error: String },
}

impl CodegenError {
    pub(crate) fn unsupported(op: impl Into<String>, instr: impl Into<String>, reason: impl Into<String>) -> Self {
        CodegenError::Unsupported { op: op.into(), instr: instr.into(), reason: reason.into() }
    }
}

pub type Result<T, E = CodegenError> = std::result::Result<T, E>;
