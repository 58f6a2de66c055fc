//! The typed IR for XLA HLO modules.
//!
//! A [`Module`] holds [`Computation`]s; a computation holds [`Instr`]s in an
//! arena indexed by [`InstrId`], in topological order (operands before users).
//! Each instruction has a [`Shape`], a typed [`Op`] carrying that opcode's
//! attributes, operand ids, and [`InstrMeta`] for attributes that do not change
//! semantics (metadata, backend_config, sharding, ...).
//!
//! - [`shape_inference`] computes the result shape of every opcode from its
//!   operands and attributes; the parser, passes and verifier share it.
//! - [`verify`] checks a module's invariants and collects every error.
//! - [`print`] writes HLO text that `hlo-parse` reads back to an equal module.
//!
//! Architecture invariant: this crate does no IO and has no dependency on any
//! other pipeline stage.
#![forbid(unsafe_code)]

pub mod builder;
pub mod dtype;
pub mod literal;
pub mod module;
pub mod op;
pub mod opcode;
pub mod print;
pub mod shape;
pub mod shape_inference;
pub mod verify;

pub use dtype::{DType, DTypeClass};
pub use literal::{ArrayData, Literal, LiteralData};
pub use module::{
    CompId, Computation, DynamicCut, DynamicResults, FileLocation, Instr, InstrId, InstrMeta, LeafBytes, Module,
    ModuleAttrs, OpMetadata, ProgramShape, SizeCheck, Span, StackFrame, StackFrameIndex,
};
pub use op::*;
pub use opcode::Opcode;
pub use print::print_module;
pub use shape::{ArrayShape, Layout, Shape, TileDim};
pub use shape_inference::{infer_shape, ShapeError};
