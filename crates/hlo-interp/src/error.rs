//! Errors of the interpreter.
//!
//! Op implementations return the context-free [`OpError`]; the driver that evaluates an
//! instruction wraps it into an [`InterpError`] naming the computation and instruction, so
//! that a failure deep inside a reducer or a loop body still points at the exact place.

use thiserror::Error;

/// Why evaluation failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum InterpError {
    /// The interpreter does not implement this op (or this op on this element type).
    #[error("{comp}/{instr}: `{op}` is not supported by the interpreter: {reason}")]
    Unsupported { comp: String, instr: String, op: String, reason: String },
    /// The module is malformed in a way evaluation noticed (shape mismatch, bad attribute).
    #[error("{comp}/{instr} ({op}): {message}")]
    Invalid { comp: String, instr: String, op: String, message: String },
    /// A computation was called with the wrong number of arguments.
    #[error("computation `{comp}` takes {expected} argument(s), got {got}")]
    ArgCount { comp: String, expected: usize, got: usize },
    /// An argument does not have its parameter's shape.
    #[error("argument {index} of computation `{comp}`: expected {expected}, got {got}")]
    ArgShape { comp: String, index: usize, expected: String, got: String },
    /// A literal helper was given inconsistent input (wrong byte count, non-array shape).
    #[error("literal: {0}")]
    Literal(String),
}

/// An error inside one op, before the driver attaches the instruction's name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OpError {
    Unsupported(String),
    Invalid(String),
    /// An error that already names its place (from a called computation).
    Nested(Box<InterpError>),
}

impl From<InterpError> for OpError {
    fn from(err: InterpError) -> OpError {
        OpError::Nested(Box::new(err))
    }
}

pub(crate) type OpResult<T> = Result<T, OpError>;

/// Shorthand for an [`OpError::Unsupported`].
pub(crate) fn unsupported<T>(reason: impl Into<String>) -> OpResult<T> {
    Err(OpError::Unsupported(reason.into()))
}

/// Shorthand for an [`OpError::Invalid`].
pub(crate) fn invalid<T>(message: impl Into<String>) -> OpResult<T> {
    Err(OpError::Invalid(message.into()))
}
