//! A nom parser for the XLA HLO text format, with line/column diagnostics.
//!
//! It reads what XLA prints, before and after optimisation: `%`-prefixed or bare names,
//! computations with or without signatures, fusion computations, layouts with tiling and
//! memory spaces, dynamic dimensions, tuples and tokens, every opcode of
//! [`hlo_ir::Opcode::ALL`] with its attribute syntax, `metadata`, `backend_config`,
//! `frontend_attributes`, `sharding`, `control-predecessors`, and the stack-frame sections
//! of newer dumps. Attributes the IR does not model are kept verbatim in
//! [`hlo_ir::InstrMeta::other_attrs`] (and module ones in [`hlo_ir::ModuleAttrs::other`]),
//! so [`hlo_ir::print::print_module`] writes them back.
//!
//! [`lexer`] holds the cursor and the lexemes: numbers, strings and tags are nom parsers,
//! while names and whitespace (the hottest lexemes) are plain byte loops. [`syntax`] holds
//! the grammar and builds each instruction as soon as it is read;
//! [`build`] holds what needs more than one instruction: typed ops from attributes, the
//! resolution of names used before their definition (computations anywhere in the module,
//! instructions within their computation), and the topological sort that the IR's
//! operands-first order requires when the text uses a name before defining it.
//!
//! Architecture invariant: the parser never panics, on any input. It reads the text through
//! checked accessors (indexing only its own tables, by indices it created), bounds nesting
//! (tuples, literals) by [`lexer::MAX_DEPTH`], rejects shapes whose element count overflows
//! `i64`, and allocates in proportion to the text, never to numbers written in it (a
//! constant's elements are pushed as they are read; parameter numbers are bounded by the
//! text's length). `tests/no_panic.rs` and the cargo-fuzz target in `fuzz/` check this.
//! Checking that shapes agree with their operands is not its job: that is `hlo_ir::verify`.
//!
//! Speed: one pass, no backtracking beyond a token; each instruction becomes an `Instr` as
//! it is read, and name tables are sized from a count of the computation's lines. About
//! 70 MB/s on a 21 MB module (`examples/parse_bench.rs`).

#![forbid(unsafe_code)]

mod attrs;
mod build;
mod error;
mod lexer;
mod literal;
mod shape;
mod syntax;

pub use error::{render_error, ParseError};
pub use literal::encode_minifloat;

use hlo_ir::{Literal, Module, Shape};
use lexer::Cursor;

/// Parses a whole HLO module.
pub fn parse_module(text: &str) -> Result<Module, ParseError> {
    let mut cursor = Cursor::new(text);
    syntax::module(&mut cursor).map_err(|e| e.locate(text))
}

/// Parses a shape such as `f32[2,<=3]{1,0}` or `(s32[], token[])`; the whole text must be one shape.
pub fn parse_shape(text: &str) -> Result<Shape, ParseError> {
    let mut cursor = Cursor::new(text);
    let shape = shape::shape(&mut cursor).map_err(|e| e.locate(text))?;
    expect_end(&mut cursor, text)?;
    Ok(shape)
}

/// Parses a literal value of `shape`, written as in `constant(...)` (`{1, 2}`, `( 1, {2} )`, `nan`).
pub fn parse_literal(text: &str, shape: &Shape) -> Result<Literal, ParseError> {
    let mut cursor = Cursor::new(text);
    let lit = literal::literal(&mut cursor, shape).map_err(|e| e.locate(text))?;
    expect_end(&mut cursor, text)?;
    Ok(lit)
}

fn expect_end(cursor: &mut Cursor<'_>, text: &str) -> Result<(), ParseError> {
    if cursor.at_end() {
        Ok(())
    } else {
        Err(cursor.err_expected("end of input").locate(text))
    }
}
