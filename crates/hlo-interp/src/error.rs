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
    /// Evaluating the instruction would hold more bytes than [`crate::Options::memory_limit`].
    #[error(
        "{comp}/{instr}: evaluating this {op} needs about {needed} more bytes while {held} are held; \
         the interpreter's memory limit is {limit} bytes"
    )]
    OutOfMemory { comp: String, instr: String, op: String, needed: u64, held: u64, limit: u64 },
    /// A `while` ran more iterations than [`crate::Options::max_while_iterations`].
    #[error("{comp}/{instr}: the while loop ran {limit} iterations without finishing")]
    TooManyIterations { comp: String, instr: String, limit: u64 },
}

impl InterpError {
    /// The computation and instruction names the error points at, when it has them.
    pub fn location(&self) -> Option<(&str, &str)> {
        match self {
            InterpError::Unsupported { comp, instr, .. }
            | InterpError::Invalid { comp, instr, .. }
            | InterpError::OutOfMemory { comp, instr, .. }
            | InterpError::TooManyIterations { comp, instr, .. } => Some((comp, instr)),
            _ => None,
        }
    }
}

/// An error inside one op, before the driver attaches the instruction's name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OpError {
    Unsupported(String),
    Invalid(String),
    /// The op would need `needed` more bytes while `held` are held, past `limit`.
    OutOfMemory {
        needed: u64,
        held: u64,
        limit: u64,
    },
    /// A `while` ran `limit` iterations.
    TooManyIterations(u64),
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
