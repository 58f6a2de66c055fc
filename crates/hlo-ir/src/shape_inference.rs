//! Shape inference: the result [`Shape`] of every opcode from its operands' shapes and its [`Op`].
//!
//! The rules follow XLA's `shape_inference.cc` and `docs/operation_semantics.md`.
//! This module is pure: no IO, no mutation, no panics on any input (every index it takes from an
//! attribute is range-checked before use).
//! The parser, the pass builders ([`crate::builder`]) and the verifier ([`crate::verify`]) all share it,
//! so there is exactly one definition of what a well-typed instruction is.
//!
//! Entry points:
//! - [`infer_shape`] infers one instruction of a module (operands and callees looked up by id).
//! - [`infer_op`] does the same from plain operand shapes and a callee-signature lookup; it is what
//!   builders call before an instruction exists.
//! - `infer_<op>` functions (e.g. [`infer_binary`], [`infer_gather`], [`infer_convolution`]) check one
//!   op family from array shapes and attributes, for passes that build instructions directly.
//!
//! Conventions and invariants:
//! - `Ok(None)` means "the declared shape is accepted as is": the result is defined only by the
//!   instruction itself (`parameter`, `custom-call`, `rng-bit-generator`, `infeed`, collectives,
//!   asynchronous and send/recv pairs, `dynamic-reshape`, ...).
//! - Inferred shapes carry no layout and no dynamic-dimension markers; callers compare them with
//!   [`same_shape`], which ignores both.
//! - Where XLA lets the instruction pick the result element type (`dot`, `convolution`: the
//!   "preferred element type"; `convert`, `bitcast-convert`, `rng`, `iota`, `broadcast` and `reshape`
//!   dimensions), the declared shape supplies it; with no declared shape, `dot` and `convolution`
//!   default to the lhs element type and the others report [`ShapeError::NeedsDeclaredShape`].
//! - HLO has no implicit broadcasting: elementwise operands must have equal dimensions and element
//!   types (only `select`'s predicate and `clamp`'s bounds may be scalars, as in XLA).
//! - Reducers (`reduce`, `reduce-window`, `scatter`, `select-and-scatter`) and comparators are
//!   checked against their called computation's signature, as XLA's `VerifyReducerShape` does; the
//!   non-accumulator parameters may differ from the inputs in floating-point precision.

use crate::dtype::DType;
use crate::module::{CompId, Computation, Instr, InstrId, Module, ProgramShape};
use crate::op::*;
use crate::opcode::Opcode;
use crate::shape::{ArrayShape, Shape};
use std::collections::HashSet;
use std::fmt;

/// Why an instruction's operands and attributes do not produce a valid shape.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ShapeError {
    #[error("{op} takes {expected} operands but has {got}")]
    Arity { op: Opcode, expected: Arity, got: usize },
    #[error("operand {index} of {op} refers to instruction {id:?}, which does not exist")]
    NoSuchOperand { op: Opcode, index: usize, id: InstrId },
    #[error("operand {index} of {op} must be {expected} but has shape {got}")]
    OperandKind { op: Opcode, index: usize, expected: &'static str, got: Box<Shape> },
    #[error("operand {index} of {op} has shape {got} but operand {other} has {expected}")]
    OperandMismatch { op: Opcode, index: usize, got: Box<Shape>, other: usize, expected: Box<Shape> },
    #[error("operand {index} of {op} has element type {dtype}; expected {expected}")]
    ElementType { op: Opcode, index: usize, dtype: DType, expected: &'static str },
    #[error("{op} calls computation {callee:?}, which does not exist or has no valid signature")]
    NoSuchComputation { op: Opcode, callee: CompId },
    #[error("{op}: {role} computation {message}")]
    Callee { op: Opcode, role: String, message: String },
    #[error("{op} needs a declared {expected} shape to infer its result, got {got}")]
    NeedsDeclaredShape { op: Opcode, expected: &'static str, got: String },
    #[error("{op}: {message}")]
    Invalid { op: Opcode, message: String },
}

type Result<T> = std::result::Result<T, ShapeError>;

/// How many operands an op takes; the finer rules of variadic ops (`reduce` takes pairs,
/// `scatter` an odd count, `dynamic-slice` one index per dimension) are checked by their inference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    Exactly(usize),
    AtLeast(usize),
    Any,
}

impl Arity {
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
            Arity::Any => true,
        }
    }
}

impl fmt::Display for Arity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arity::Exactly(k) => write!(f, "exactly {k}"),
            Arity::AtLeast(k) => write!(f, "at least {k}"),
            Arity::Any => f.write_str("any number of"),
        }
    }
}

/// The operand count each op accepts.
pub fn arity(op: &Op) -> Arity {
    use Arity::*;
    match op {
        Op::Parameter { .. }
        | Op::Constant(_)
        | Op::Iota { .. }
        | Op::PartitionId
        | Op::ReplicaId
        | Op::RngGetAndUpdateState { .. } => Exactly(0),
        Op::Unary(_)
        | Op::Convert
        | Op::BitcastConvert
        | Op::ReducePrecision { .. }
        | Op::Broadcast { .. }
        | Op::Reshape
        | Op::Transpose { .. }
        | Op::Reverse { .. }
        | Op::Slice { .. }
        | Op::Bitcast
        | Op::Copy
        | Op::GetTupleElement { .. }
        | Op::TopK { .. }
        | Op::While { .. }
        | Op::RngBitGenerator { .. }
        | Op::Fft { .. }
        | Op::Cholesky { .. }
        | Op::GetDimensionSize { .. }
        | Op::OptimizationBarrier
        | Op::Domain
        | Op::Infeed
        | Op::SendDone { .. }
        | Op::Recv { .. }
        | Op::RecvDone { .. }
        | Op::CopyStart
        | Op::CopyDone => Exactly(1),
        Op::Binary(_)
        | Op::Compare { .. }
        | Op::StochasticConvert
        | Op::Pad { .. }
        | Op::Gather { .. }
        | Op::Dot { .. }
        | Op::Convolution { .. }
        | Op::Rng { .. }
        | Op::TriangularSolve { .. }
        | Op::SetDimensionSize { .. }
        | Op::AddDependency
        | Op::Outfeed
        | Op::Send { .. } => Exactly(2),
        Op::Select | Op::Clamp | Op::SelectAndScatter { .. } | Op::BatchNormTraining { .. } | Op::RaggedDot { .. } => {
            Exactly(3)
        }
        Op::BatchNormInference { .. } | Op::BatchNormGrad { .. } => Exactly(5),
        Op::DynamicReshape
        | Op::DynamicSlice { .. }
        | Op::Concatenate { .. }
        | Op::Map { .. }
        | Op::Sort { .. }
        | Op::Conditional { .. } => AtLeast(1),
        Op::Reduce { .. } | Op::ReduceWindow { .. } | Op::DynamicUpdateSlice => AtLeast(2),
        Op::Scatter { .. } => AtLeast(3),
        Op::Tuple
        | Op::Call { .. }
        | Op::Fusion { .. }
        | Op::CustomCall(_)
        | Op::AfterAll
        | Op::ScaledDot { .. }
        | Op::Async { .. }
        | Op::Collective { .. }
        | Op::Other { .. } => Any,
    }
}

/// Equality of shapes ignoring layouts and dynamic-dimension markers, through tuples.
pub fn same_shape(a: &Shape, b: &Shape) -> bool {
    match (a, b) {
        (Shape::Array(a), Shape::Array(b)) => a.dtype == b.dtype && a.dims == b.dims,
        (Shape::Tuple(a), Shape::Tuple(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_shape(x, y)),
        (Shape::Token, Shape::Token) => true,
        _ => false,
    }
}

/// The signature of a computation: its parameter shapes in parameter order and its root's shape.
/// `None` when the computation is malformed (root or a parameter id out of range).
pub fn signature(comp: &Computation) -> Option<ProgramShape> {
    let result = comp.instrs.get(comp.root.index())?.shape.clone();
    let params =
        comp.params.iter().map(|p| comp.instrs.get(p.index()).map(|i| i.shape.clone())).collect::<Option<_>>()?;
    Some(ProgramShape { params, result })
}

/// Infers the result shape of `instr`, an instruction of `comp` in `module`.
///
/// `Ok(None)`: the op's result is defined by the instruction itself and its declared shape is accepted.
pub fn infer_shape(module: &Module, comp: &Computation, instr: &Instr) -> Result<Option<Shape>> {
    let opcode = instr.op.opcode();
    let mut operands = Vec::with_capacity(instr.operands.len());
    for (index, &id) in instr.operands.iter().enumerate() {
        match comp.instrs.get(id.index()) {
            Some(it) => operands.push(&it.shape),
            None => return Err(ShapeError::NoSuchOperand { op: opcode, index, id }),
        }
    }
    let callee = |id: CompId| module.comps.get(id.index()).and_then(signature);
    infer_op(&instr.op, &operands, Some(&instr.shape), &callee)
}

/// Infers the result shape of `op` applied to `operands`.
///
/// `declared` is the instruction's declared shape where one exists; it supplies what only the
/// instruction knows (see the module docs). `callee` returns the signature of a called computation.
pub fn infer_op(
    op: &Op,
    operands: &[&Shape],
    declared: Option<&Shape>,
    callee: &dyn Fn(CompId) -> Option<ProgramShape>,
) -> Result<Option<Shape>> {
    let opcode = op.opcode();
    let expected = arity(op);
    if !expected.accepts(operands.len()) {
        return Err(ShapeError::Arity { op: opcode, expected, got: operands.len() });
    }
    let arr = |index: usize| operand_array(opcode, operands, index);
    let arrs = |range: std::ops::Range<usize>| range.map(arr).collect::<Result<Vec<_>>>();
    let sig = |id: CompId| callee(id).ok_or(ShapeError::NoSuchComputation { op: opcode, callee: id });
    let declared_array = || match declared {
        Some(Shape::Array(a)) => Ok(a),
        other => Err(ShapeError::NeedsDeclaredShape {
            op: opcode,
            expected: "array",
            got: other.map_or_else(|| "none".to_string(), |s| s.to_string()),
        }),
    };
    let res = match op {
        Op::Parameter { .. } => return Ok(None),
        Op::Constant(lit) => lit.shape.clone(),
        Op::Iota { dimension } => Shape::Array(infer_iota(declared_array()?, *dimension)?),
        Op::Unary(u) => Shape::Array(infer_unary(*u, arr(0)?)?),
        Op::Binary(b) => Shape::Array(infer_binary(*b, arr(0)?, arr(1)?)?),
        Op::Compare { compare_type, .. } => Shape::Array(infer_compare(arr(0)?, arr(1)?, *compare_type)?),
        Op::Select => Shape::Array(infer_select(arr(0)?, arr(1)?, arr(2)?)?),
        Op::Clamp => Shape::Array(infer_clamp(arr(0)?, arr(1)?, arr(2)?)?),
        Op::Convert => Shape::Array(infer_convert(arr(0)?, declared_array()?.dtype)?),
        Op::BitcastConvert => Shape::Array(infer_bitcast_convert(arr(0)?, declared_array()?.dtype)?),
        Op::StochasticConvert => Shape::Array(infer_stochastic_convert(arr(0)?, arr(1)?, declared_array()?.dtype)?),
        Op::ReducePrecision { exponent_bits, mantissa_bits } => {
            Shape::Array(infer_reduce_precision(arr(0)?, *exponent_bits, *mantissa_bits)?)
        }
        Op::Broadcast { dimensions } => Shape::Array(infer_broadcast(arr(0)?, dimensions, &declared_array()?.dims)?),
        Op::Reshape => Shape::Array(infer_reshape(arr(0)?, &declared_array()?.dims)?),
        Op::DynamicReshape => return Ok(None),
        Op::Transpose { dimensions } => Shape::Array(infer_transpose(arr(0)?, dimensions)?),
        Op::Reverse { dimensions } => Shape::Array(infer_reverse(arr(0)?, dimensions)?),
        Op::Slice { dims } => Shape::Array(infer_slice(arr(0)?, dims)?),
        Op::DynamicSlice { sizes } => Shape::Array(infer_dynamic_slice(arr(0)?, &arrs(1..operands.len())?, sizes)?),
        Op::DynamicUpdateSlice => {
            Shape::Array(infer_dynamic_update_slice(arr(0)?, arr(1)?, &arrs(2..operands.len())?)?)
        }
        Op::Concatenate { dimension } => Shape::Array(infer_concatenate(&arrs(0..operands.len())?, *dimension)?),
        Op::Pad { dims } => Shape::Array(infer_pad(arr(0)?, arr(1)?, dims)?),
        Op::Bitcast => Shape::Array(infer_bitcast(arr(0)?, declared_array()?)?),
        Op::Copy | Op::Domain | Op::OptimizationBarrier => operands[0].clone(),
        Op::Tuple => Shape::Tuple(operands.iter().map(|&s| s.clone()).collect()),
        Op::GetTupleElement { index } => infer_get_tuple_element(operands[0], *index)?,
        Op::Reduce { dimensions, to_apply } => {
            let n = half(opcode, operands.len())?;
            infer_reduce(&arrs(0..n)?, &arrs(n..2 * n)?, dimensions, &sig(*to_apply)?)?
        }
        Op::ReduceWindow { window, to_apply } => {
            let n = half(opcode, operands.len())?;
            infer_reduce_window(&arrs(0..n)?, &arrs(n..2 * n)?, window, &sig(*to_apply)?)?
        }
        Op::SelectAndScatter { window, select, scatter } => {
            Shape::Array(infer_select_and_scatter(arr(0)?, arr(1)?, arr(2)?, window, &sig(*select)?, &sig(*scatter)?)?)
        }
        Op::Map { dimensions, to_apply } => {
            Shape::Array(infer_map(&arrs(0..operands.len())?, dimensions, &sig(*to_apply)?)?)
        }
        Op::Gather { dims, slice_sizes, .. } => Shape::Array(infer_gather(arr(0)?, arr(1)?, dims, slice_sizes)?),
        Op::Scatter { dims, to_apply, .. } => {
            let n = operands.len() / 2;
            if operands.len() != 2 * n + 1 {
                return Err(invalid(
                    opcode,
                    format!("takes N operands, indices and N updates, but has {} operands", operands.len()),
                ));
            }
            infer_scatter(&arrs(0..n)?, arr(n)?, &arrs(n + 1..operands.len())?, dims, &sig(*to_apply)?)?
        }
        Op::Dot { dims, .. } => {
            let (lhs, rhs) = (arr(0)?, arr(1)?);
            let dtype = declared.and_then(Shape::dtype).unwrap_or(lhs.dtype);
            Shape::Array(infer_dot(lhs, rhs, dims, dtype)?)
        }
        Op::RaggedDot { .. } | Op::ScaledDot { .. } => return Ok(None),
        Op::Convolution { window, dims, feature_group_count, batch_group_count, .. } => {
            let (lhs, rhs) = (arr(0)?, arr(1)?);
            let dtype = declared.and_then(Shape::dtype).unwrap_or(lhs.dtype);
            Shape::Array(infer_convolution(lhs, rhs, window, dims, *feature_group_count, *batch_group_count, dtype)?)
        }
        Op::Sort { dimension, to_apply, .. } => infer_sort(&arrs(0..operands.len())?, *dimension, &sig(*to_apply)?)?,
        Op::TopK { k, .. } => infer_topk(arr(0)?, *k)?,
        Op::While { condition, body } => infer_while(operands[0], &sig(*condition)?, &sig(*body)?)?,
        Op::Conditional { branches } => {
            let sigs = branches.iter().map(|&b| sig(b)).collect::<Result<Vec<_>>>()?;
            infer_conditional(operands[0], &operands[1..], &sigs)?
        }
        Op::Call { to_apply: calls, .. } | Op::Fusion { calls, .. } => infer_call(opcode, operands, &sig(*calls)?)?,
        Op::Rng { distribution } => Shape::Array(infer_rng(arr(0)?, arr(1)?, *distribution, &declared_array()?.dims)?),
        Op::Fft { fft_type, fft_length } => Shape::Array(infer_fft(arr(0)?, *fft_type, fft_length)?),
        Op::Cholesky { .. } => Shape::Array(infer_cholesky(arr(0)?)?),
        Op::TriangularSolve { left_side, .. } => Shape::Array(infer_triangular_solve(arr(0)?, arr(1)?, *left_side)?),
        Op::BatchNormTraining { feature_index, .. } => {
            infer_batch_norm(opcode, &arrs(0..operands.len())?, *feature_index)?
        }
        Op::BatchNormInference { feature_index, .. } | Op::BatchNormGrad { feature_index, .. } => {
            infer_batch_norm(opcode, &arrs(0..operands.len())?, *feature_index)?
        }
        Op::GetDimensionSize { dimension } => {
            check_dim(opcode, "dimension", *dimension, arr(0)?.rank())?;
            Shape::scalar(DType::S32)
        }
        Op::SetDimensionSize { dimension } => {
            check_dim(opcode, "dimension", *dimension, arr(0)?.rank())?;
            expect_scalar(opcode, 1, arr(1)?)?;
            return Ok(None);
        }
        // XLA's verifier takes any operands for `after-all` (they only order it after them) and
        // wants a token as `add-dependency`'s second operand.
        Op::AfterAll => Shape::Token,
        Op::AddDependency => {
            if !matches!(operands[1], Shape::Token) {
                return Err(kind_error(opcode, 1, "a token", &operands[1]));
            }
            operands[0].clone()
        }
        Op::PartitionId | Op::ReplicaId => Shape::scalar(DType::U32),
        Op::Outfeed => Shape::Token,
        Op::CustomCall(_)
        | Op::RngBitGenerator { .. }
        | Op::RngGetAndUpdateState { .. }
        | Op::Infeed
        | Op::Send { .. }
        | Op::SendDone { .. }
        | Op::Recv { .. }
        | Op::RecvDone { .. }
        | Op::CopyStart
        | Op::CopyDone
        | Op::Async { .. }
        | Op::Collective { .. }
        | Op::Other { .. } => return Ok(None),
    };
    Ok(Some(res))
}

// ---------------------------------------------------------------------------------------------
// Elementwise ops.

/// Result of an elementwise unary op, with XLA's element-type rules
/// (`is-finite` gives `pred`; `real`, `imag` and `abs` of a complex give its component type).
pub fn infer_unary(op: UnaryOp, x: &ArrayShape) -> Result<ArrayShape> {
    use UnaryOp::*;
    let opcode = op.opcode();
    let ty = x.dtype;
    let check = |ok: bool, expected: &'static str| {
        if ok {
            Ok(())
        } else {
            Err(ShapeError::ElementType { op: opcode, index: 0, dtype: ty, expected })
        }
    };
    match op {
        Floor | Ceil | RoundNearestAfz | RoundNearestEven | Erf => check(ty.is_float(), "a floating-point type")?,
        Cos | Sin | Tan | Exp | Expm1 | Log | Log1p | Logistic | Rsqrt | Sqrt | Cbrt | Tanh | Acos | Acosh | Asin
        | Asinh | Atan | Atanh | Cosh | Sinh => {
            check(ty.is_float() || ty.is_complex(), "a floating-point or complex type")?
        }
        Real | Imag => {
            check(ty.is_float() || ty.is_complex(), "a floating-point or complex type")?;
            return Ok(x.with_dtype(ty.complex_component().unwrap_or(ty)));
        }
        Abs => {
            check(
                ty.is_float() || ty.is_complex() || ty.is_signed_integer(),
                "a signed, floating-point or complex type",
            )?;
            return Ok(x.with_dtype(ty.complex_component().unwrap_or(ty)));
        }
        Clz | PopulationCount => check(ty.is_integer(), "an integer type")?,
        Negate => check(ty.is_integer() || ty.is_float() || ty.is_complex(), "a numeric type")?,
        Sign => check(
            ty.is_signed_integer() || ty.is_float() || ty.is_complex(),
            "a signed, floating-point or complex type",
        )?,
        Not => check(ty == DType::Pred || ty.is_integer(), "pred or an integer type")?,
        IsFinite => {
            check(ty.is_float(), "a floating-point type")?;
            return Ok(x.with_dtype(DType::Pred));
        }
    }
    Ok(x.with_dtype(ty))
}

/// Result of an elementwise binary op: equal dimensions and element types, with XLA's type rules
/// (logical ops on `pred`/integers, shifts on integers, `complex` of two floats gives a complex).
pub fn infer_binary(op: BinaryOp, lhs: &ArrayShape, rhs: &ArrayShape) -> Result<ArrayShape> {
    use BinaryOp::*;
    let opcode = op.opcode();
    check_same_array(opcode, lhs, 0, rhs, 1)?;
    let ty = lhs.dtype;
    let check = |ok: bool, expected: &'static str| {
        if ok {
            Ok(())
        } else {
            Err(ShapeError::ElementType { op: opcode, index: 0, dtype: ty, expected })
        }
    };
    match op {
        And | Or | Xor => check(ty == DType::Pred || ty.is_integer(), "pred or an integer type")?,
        ShiftLeft | ShiftRightArithmetic | ShiftRightLogical | Mulhi => check(ty.is_integer(), "an integer type")?,
        Atan2 => check(ty.is_float() || ty.is_complex(), "a floating-point or complex type")?,
        Complex => {
            let res = match ty {
                DType::F32 => DType::C64,
                DType::F64 => DType::C128,
                _ => return Err(ShapeError::ElementType { op: opcode, index: 0, dtype: ty, expected: "f32 or f64" }),
            };
            return Ok(lhs.with_dtype(res));
        }
        Add | Subtract | Multiply | Divide | Remainder | Maximum | Minimum | Power => {}
    }
    Ok(lhs.with_dtype(ty))
}

/// Result of `compare`: `pred` with the operands' dimensions. An explicit `type=` must suit the
/// element type (`FLOAT`/`TOTALORDER` for floats and complex, `SIGNED` for signed integers,
/// `UNSIGNED` for unsigned integers and `pred`).
pub fn infer_compare(lhs: &ArrayShape, rhs: &ArrayShape, compare_type: Option<CompareType>) -> Result<ArrayShape> {
    let op = Opcode::Compare;
    check_same_array(op, lhs, 0, rhs, 1)?;
    let ty = lhs.dtype;
    let (ok, expected) = match compare_type {
        None => (true, ""),
        Some(CompareType::Float | CompareType::TotalOrder) => {
            (ty.is_float() || ty.is_complex(), "a floating-point or complex type for a FLOAT or TOTALORDER compare")
        }
        Some(CompareType::Signed) => (ty.is_signed_integer(), "a signed integer type for a SIGNED compare"),
        Some(CompareType::Unsigned) => {
            (ty.is_unsigned_integer() || ty == DType::Pred, "an unsigned integer or pred for an UNSIGNED compare")
        }
    };
    if !ok {
        return Err(ShapeError::ElementType { op, index: 0, dtype: ty, expected });
    }
    Ok(lhs.with_dtype(DType::Pred))
}

/// Result of `select(pred, on_true, on_false)`: `pred` is a `pred` array of `on_true`'s dimensions
/// or a scalar; `on_true` and `on_false` agree.
pub fn infer_select(pred: &ArrayShape, on_true: &ArrayShape, on_false: &ArrayShape) -> Result<ArrayShape> {
    let op = Opcode::Select;
    if pred.dtype != DType::Pred {
        return Err(ShapeError::ElementType { op, index: 0, dtype: pred.dtype, expected: "pred" });
    }
    check_same_array(op, on_true, 1, on_false, 2)?;
    if pred.rank() != 0 && pred.dims != on_true.dims {
        return Err(mismatch(op, 0, pred, 1, on_true));
    }
    Ok(on_true.with_dtype(on_true.dtype))
}

/// Result of `clamp(min, operand, max)`: `min` and `max` are scalars or of `operand`'s dimensions,
/// all of one element type.
pub fn infer_clamp(min: &ArrayShape, x: &ArrayShape, max: &ArrayShape) -> Result<ArrayShape> {
    let op = Opcode::Clamp;
    for (index, bound) in [(0, min), (2, max)] {
        if bound.dtype != x.dtype || (bound.rank() != 0 && bound.dims != x.dims) {
            return Err(mismatch(op, index, bound, 1, x));
        }
    }
    Ok(x.with_dtype(x.dtype))
}

/// Result of `convert` to `dtype`. Converting a complex to a real type is not defined by XLA.
pub fn infer_convert(x: &ArrayShape, dtype: DType) -> Result<ArrayShape> {
    if x.dtype.is_complex() && !dtype.is_complex() {
        return Err(invalid(Opcode::Convert, format!("cannot convert complex {} to real type {dtype}", x.dtype)));
    }
    Ok(x.with_dtype(dtype))
}

/// Result of `bitcast-convert` to `dtype`. Between types of different widths XLA adds (wide to
/// narrow: `f32[n]` to `u8[n,4]`) or removes (narrow to wide: `u8[n,4]` to `f32[n]`) a minor dimension
/// of size `wide_bits / narrow_bits`.
pub fn infer_bitcast_convert(x: &ArrayShape, dtype: DType) -> Result<ArrayShape> {
    let op = Opcode::BitcastConvert;
    if x.dtype.is_complex() != dtype.is_complex() {
        return Err(invalid(op, format!("cannot bitcast between complex and real types ({} to {dtype})", x.dtype)));
    }
    let (from, to) = (x.dtype.bit_width() as i64, dtype.bit_width() as i64);
    let mut dims = x.dims.clone();
    if from > to {
        dims.push(from / to);
    } else if from < to {
        let ratio = to / from;
        if dims.last() != Some(&ratio) {
            return Err(invalid(
                op,
                format!(
                    "converting {} to the wider {dtype} needs a minor dimension of size {ratio}, got shape {x}",
                    x.dtype
                ),
            ));
        }
        dims.pop();
    }
    Ok(ArrayShape::new(dtype, dims))
}

/// Result of `stochastic-convert(operand, random)` to `dtype`: `random` is an unsigned integer
/// array of `operand`'s dimensions and bit width.
pub fn infer_stochastic_convert(x: &ArrayShape, random: &ArrayShape, dtype: DType) -> Result<ArrayShape> {
    let op = Opcode::StochasticConvert;
    if !x.dtype.is_float() {
        return Err(ShapeError::ElementType { op, index: 0, dtype: x.dtype, expected: "a floating-point type" });
    }
    if !random.dtype.is_unsigned_integer() || random.dtype.bit_width() != x.dtype.bit_width() || random.dims != x.dims {
        return Err(invalid(
            op,
            format!("random operand {random} must be unsigned, of the operand's width and dimensions ({x})"),
        ));
    }
    Ok(x.with_dtype(dtype))
}

/// Result of `reduce-precision`: a floating-point operand, `exponent_bits >= 1`, `mantissa_bits >= 0`.
pub fn infer_reduce_precision(x: &ArrayShape, exponent_bits: i64, mantissa_bits: i64) -> Result<ArrayShape> {
    let op = Opcode::ReducePrecision;
    if !x.dtype.is_float() {
        return Err(ShapeError::ElementType { op, index: 0, dtype: x.dtype, expected: "a floating-point type" });
    }
    if exponent_bits < 1 || mantissa_bits < 0 {
        return Err(invalid(
            op,
            format!("needs exponent_bits >= 1 and mantissa_bits >= 0, got {exponent_bits} and {mantissa_bits}"),
        ));
    }
    Ok(x.with_dtype(x.dtype))
}

// ---------------------------------------------------------------------------------------------
// Shape-changing ops.

/// Result of `iota` with the declared `shape`: a non-scalar array and `dimension` in range.
pub fn infer_iota(shape: &ArrayShape, dimension: i64) -> Result<ArrayShape> {
    if shape.rank() == 0 {
        return Err(invalid(Opcode::Iota, "the result must not be a scalar"));
    }
    check_dim(Opcode::Iota, "iota_dimension", dimension, shape.rank())?;
    Ok(shape.with_dtype(shape.dtype))
}

/// Result of the HLO `broadcast` into `out_dims`: `dimensions[i]` is the output dimension that
/// operand dimension `i` maps to, and the sizes must be equal (HLO has no size-1 stretching).
pub fn infer_broadcast(x: &ArrayShape, dimensions: &[i64], out_dims: &[i64]) -> Result<ArrayShape> {
    let op = Opcode::Broadcast;
    if dimensions.len() != x.rank() {
        return Err(invalid(
            op,
            format!("dimensions={} must have one entry per operand dimension of {x}", fmt_dims(dimensions)),
        ));
    }
    check_unique_in_range(op, "dimensions", dimensions, out_dims.len())?;
    for (i, &d) in dimensions.iter().enumerate() {
        if x.dims[i] != out_dims[d as usize] {
            return Err(invalid(
                op,
                format!(
                    "operand dimension {i} (size {}) maps to output dimension {d} of size {}",
                    x.dims[i], out_dims[d as usize]
                ),
            ));
        }
    }
    Ok(ArrayShape::new(x.dtype, out_dims))
}

/// Result of `reshape` into `out_dims`: the element count is unchanged.
pub fn infer_reshape(x: &ArrayShape, out_dims: &[i64]) -> Result<ArrayShape> {
    let out = ArrayShape::new(x.dtype, out_dims);
    if out_dims.iter().any(|&d| d < 0) || out.num_elements() != x.num_elements() {
        return Err(invalid(
            Opcode::Reshape,
            format!("cannot reshape {x} ({} elements) to {out} ({} elements)", x.num_elements(), out.num_elements()),
        ));
    }
    Ok(out)
}

/// Result of `transpose`: `dimensions` is a permutation and output dimension `i` is operand
/// dimension `dimensions[i]`.
pub fn infer_transpose(x: &ArrayShape, dimensions: &[i64]) -> Result<ArrayShape> {
    let op = Opcode::Transpose;
    if dimensions.len() != x.rank() {
        return Err(invalid(
            op,
            format!("dimensions={} is not a permutation of the {} dimensions of {x}", fmt_dims(dimensions), x.rank()),
        ));
    }
    check_unique_in_range(op, "dimensions", dimensions, x.rank())?;
    Ok(ArrayShape::new(x.dtype, dimensions.iter().map(|&d| x.dims[d as usize]).collect::<Vec<_>>()))
}

/// Result of `reverse`: the operand's shape, `dimensions` unique and in range.
pub fn infer_reverse(x: &ArrayShape, dimensions: &[i64]) -> Result<ArrayShape> {
    check_unique_in_range(Opcode::Reverse, "dimensions", dimensions, x.rank())?;
    Ok(x.with_dtype(x.dtype))
}

/// Result of `slice`: per dimension `0 <= start <= limit <= size`, `stride >= 1`, and the output
/// size `ceil((limit - start) / stride)` (a stride need not divide the extent).
pub fn infer_slice(x: &ArrayShape, dims: &[SliceDim]) -> Result<ArrayShape> {
    let op = Opcode::Slice;
    if dims.len() != x.rank() {
        return Err(invalid(op, format!("has {} slice dimensions for operand {x} of rank {}", dims.len(), x.rank())));
    }
    let mut out = Vec::with_capacity(dims.len());
    for (i, (d, &size)) in dims.iter().zip(&x.dims).enumerate() {
        if d.stride < 1 {
            return Err(invalid(op, format!("stride {} of dimension {i} must be positive", d.stride)));
        }
        if d.start < 0 || d.start > d.limit || d.limit > size {
            return Err(invalid(
                op,
                format!(
                    "[{}:{}] is not within dimension {i} of size {size} (need 0 <= start <= limit <= size)",
                    d.start, d.limit
                ),
            ));
        }
        out.push((d.limit - d.start + d.stride - 1) / d.stride);
    }
    Ok(ArrayShape::new(x.dtype, out))
}

/// Result of `dynamic-slice(operand, start_indices...)`: one scalar integer index per dimension
/// (or the legacy single index vector), `0 <= sizes[i] <= dims[i]`.
pub fn infer_dynamic_slice(x: &ArrayShape, indices: &[&ArrayShape], sizes: &[i64]) -> Result<ArrayShape> {
    let op = Opcode::DynamicSlice;
    check_start_indices(op, x, indices, 1)?;
    if sizes.len() != x.rank() {
        return Err(invalid(
            op,
            format!("dynamic_slice_sizes={} must have one entry per dimension of {x}", fmt_dims(sizes)),
        ));
    }
    for (i, (&s, &d)) in sizes.iter().zip(&x.dims).enumerate() {
        if s < 0 || s > d {
            return Err(invalid(op, format!("slice size {s} of dimension {i} is not within 0..={d}")));
        }
    }
    Ok(ArrayShape::new(x.dtype, sizes))
}

/// Result of `dynamic-update-slice(operand, update, start_indices...)`: the operand's shape; the
/// update has the operand's rank and element type and fits inside it.
pub fn infer_dynamic_update_slice(x: &ArrayShape, update: &ArrayShape, indices: &[&ArrayShape]) -> Result<ArrayShape> {
    let op = Opcode::DynamicUpdateSlice;
    if update.dtype != x.dtype || update.rank() != x.rank() || update.dims.iter().zip(&x.dims).any(|(u, d)| u > d) {
        return Err(invalid(
            op,
            format!("update {update} must have the element type and rank of operand {x} and fit inside it"),
        ));
    }
    check_start_indices(op, x, indices, 2)?;
    Ok(x.with_dtype(x.dtype))
}

/// Result of `concatenate` along `dimension`: equal rank, element type and other dimensions.
pub fn infer_concatenate(xs: &[&ArrayShape], dimension: i64) -> Result<ArrayShape> {
    let op = Opcode::Concatenate;
    let Some(first) = xs.first() else {
        return Err(ShapeError::Arity { op, expected: Arity::AtLeast(1), got: 0 });
    };
    check_dim(op, "dimension", dimension, first.rank())?;
    let dim = dimension as usize;
    let mut out = first.dims.clone();
    for (index, x) in xs.iter().enumerate().skip(1) {
        let same_others = x.rank() == first.rank()
            && x.dims.iter().zip(&first.dims).enumerate().all(|(i, (a, b))| i == dim || a == b);
        if x.dtype != first.dtype || !same_others {
            return Err(mismatch(op, index, x, 0, first));
        }
        out[dim] += x.dims[dim];
    }
    Ok(ArrayShape::new(first.dtype, out))
}

/// Result of `pad`: per dimension `low + high + n + max(n - 1, 0) * interior`, where `low` and `high`
/// may be negative (they cut) but `interior` may not, and no size may end up negative.
pub fn infer_pad(x: &ArrayShape, pad_value: &ArrayShape, dims: &[PadDim]) -> Result<ArrayShape> {
    let op = Opcode::Pad;
    expect_scalar(op, 1, pad_value)?;
    if pad_value.dtype != x.dtype {
        return Err(mismatch(op, 1, pad_value, 0, x));
    }
    if dims.len() != x.rank() {
        return Err(invalid(
            op,
            format!("padding has {} dimensions but operand {x} has rank {}", dims.len(), x.rank()),
        ));
    }
    let mut out = Vec::with_capacity(dims.len());
    for (i, (p, &n)) in dims.iter().zip(&x.dims).enumerate() {
        if p.interior < 0 {
            return Err(invalid(op, format!("interior padding {} of dimension {i} is negative", p.interior)));
        }
        let size = p.low + p.high + n + (n - 1).max(0) * p.interior;
        if size < 0 {
            return Err(invalid(
                op,
                format!("padding {}_{}_{} makes dimension {i} (size {n}) negative: {size}", p.low, p.high, p.interior),
            ));
        }
        out.push(size);
    }
    Ok(ArrayShape::new(x.dtype, out))
}

/// Result of `bitcast` to `declared`: the same number of bits (layouts may differ: that is the point).
pub fn infer_bitcast(x: &ArrayShape, declared: &ArrayShape) -> Result<ArrayShape> {
    let bits = |a: &ArrayShape| a.num_elements() * u64::from(a.dtype.bit_width());
    if bits(x) != bits(declared) {
        return Err(invalid(
            Opcode::Bitcast,
            format!("result {declared} ({} bits) and operand {x} ({} bits) differ in size", bits(declared), bits(x)),
        ));
    }
    Ok(declared.with_dtype(declared.dtype))
}

/// Result of `get-tuple-element`: element `index` of a tuple operand.
pub fn infer_get_tuple_element(tuple: &Shape, index: u64) -> Result<Shape> {
    let op = Opcode::GetTupleElement;
    let elems = tuple.as_tuple().ok_or_else(|| kind_error(op, 0, "a tuple", tuple))?;
    usize::try_from(index)
        .ok()
        .and_then(|i| elems.get(i))
        .cloned()
        .ok_or_else(|| invalid(op, format!("index {index} is out of range for {tuple}")))
}

// ---------------------------------------------------------------------------------------------
// Reductions and windows.

/// Result of a (variadic) `reduce` of `inputs` with `inits`: the inputs' dimensions without the
/// reduced `dimensions`, with the inits' element types; a tuple when there is more than one input.
pub fn infer_reduce(
    inputs: &[&ArrayShape],
    inits: &[&ArrayShape],
    dimensions: &[i64],
    to_apply: &ProgramShape,
) -> Result<Shape> {
    let op = Opcode::Reduce;
    let first = check_variadic_inputs(op, inputs, inits)?;
    check_unique_in_range(op, "dimensions", dimensions, first.rank())?;
    check_reducer(op, "to_apply", to_apply, &dtypes(inits), &dtypes(inputs))?;
    let dims: Vec<i64> =
        first.dims.iter().enumerate().filter(|(i, _)| !dimensions.contains(&(*i as i64))).map(|(_, &d)| d).collect();
    Ok(reducer_result(to_apply, inits.iter().map(|init| ArrayShape::new(init.dtype, dims.clone()))))
}

/// Output dimensions of a window applied to `base_dims`: per dimension, the base dilated by
/// `base_dilation` and padded, then `(padded - dilated_window) / stride + 1` positions (0 when the
/// window does not fit).
pub fn infer_window(op: Opcode, base_dims: &[i64], window: &Window) -> Result<Vec<i64>> {
    if window.dims.len() != base_dims.len() {
        return Err(invalid(
            op,
            format!("window has {} dimensions but the base has rank {}", window.dims.len(), base_dims.len()),
        ));
    }
    let dilated = |bound: i64, dilation: i64| if bound <= 0 { 0 } else { (bound - 1) * dilation + 1 };
    let mut out = Vec::with_capacity(base_dims.len());
    for (i, (w, &n)) in window.dims.iter().zip(base_dims).enumerate() {
        if w.size <= 0 || w.stride <= 0 || w.base_dilation < 1 || w.window_dilation < 1 {
            return Err(invalid(
                op,
                format!(
                    "window dimension {i} needs size > 0, stride > 0 and dilations >= 1, got size={} stride={} lhs_dilate={} rhs_dilate={}",
                    w.size, w.stride, w.base_dilation, w.window_dilation
                ),
            ));
        }
        let padded = w.padding_low + dilated(n, w.base_dilation) + w.padding_high;
        let window_size = dilated(w.size, w.window_dilation);
        out.push(if window_size > padded { 0 } else { (padded - window_size) / w.stride + 1 });
    }
    Ok(out)
}

/// Result of a (variadic) `reduce-window`: the window's output dimensions with the inits' types.
pub fn infer_reduce_window(
    inputs: &[&ArrayShape],
    inits: &[&ArrayShape],
    window: &Window,
    to_apply: &ProgramShape,
) -> Result<Shape> {
    let op = Opcode::ReduceWindow;
    let first = check_variadic_inputs(op, inputs, inits)?;
    let dims = infer_window(op, &first.dims, window)?;
    check_reducer(op, "to_apply", to_apply, &dtypes(inits), &dtypes(inputs))?;
    Ok(reducer_result(to_apply, inits.iter().map(|init| ArrayShape::new(init.dtype, dims.clone()))))
}

/// Result of `select-and-scatter(operand, source, init)`: the operand's shape. `source` has the
/// shape of the window's output over the operand, `select` is `(T, T) -> pred` and `scatter`
/// is `(T, T) -> T`.
pub fn infer_select_and_scatter(
    x: &ArrayShape,
    source: &ArrayShape,
    init: &ArrayShape,
    window: &Window,
    select: &ProgramShape,
    scatter: &ProgramShape,
) -> Result<ArrayShape> {
    let op = Opcode::SelectAndScatter;
    expect_scalar(op, 2, init)?;
    if init.dtype != source.dtype {
        return Err(mismatch(op, 2, init, 1, source));
    }
    let scalar = Shape::scalar(x.dtype);
    let pred = Shape::scalar(DType::Pred);
    check_callee_params(op, "select", select, &[&scalar, &scalar])?;
    if !same_shape(&select.result, &pred) {
        return Err(callee(op, "select", format!("must return pred[] but returns {}", select.result)));
    }
    let src_scalar = Shape::scalar(source.dtype);
    check_reducer(op, "scatter", scatter, &[source.dtype], &[source.dtype])?;
    if !same_shape(&scatter.result, &src_scalar) {
        return Err(callee(op, "scatter", format!("must return {src_scalar} but returns {}", scatter.result)));
    }
    let dims = infer_window(op, &x.dims, window)?;
    if source.dims != dims {
        let want = ArrayShape::new(source.dtype, dims);
        return Err(invalid(op, format!("source {source} must have the window's output shape {want}")));
    }
    Ok(x.with_dtype(x.dtype))
}

/// Result of `map`: the operands' dimensions with the element type `to_apply` returns. XLA maps
/// every dimension, so `dimensions` is empty or `0..rank` in order.
pub fn infer_map(xs: &[&ArrayShape], dimensions: &[i64], to_apply: &ProgramShape) -> Result<ArrayShape> {
    let op = Opcode::Map;
    let first = check_same_dims(op, xs)?;
    if !dimensions.is_empty() && !dimensions.iter().copied().eq(0..first.rank() as i64) {
        return Err(invalid(op, format!("dimensions={} must be every dimension in order", fmt_dims(dimensions))));
    }
    let params: Vec<Shape> = xs.iter().map(|x| Shape::scalar(x.dtype)).collect();
    check_callee_params(op, "to_apply", to_apply, &params.iter().collect::<Vec<_>>())?;
    match &to_apply.result {
        Shape::Array(r) if r.rank() == 0 => Ok(first.with_dtype(r.dtype)),
        other => Err(callee(op, "to_apply", format!("must return a scalar but returns {other}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Gather and scatter.

/// Result of `gather`, with XLA's full dimension-number rules including batching dimensions.
///
/// Output dimension `i` is, if `i` is in `offset_dims`, the next slice size of an operand dimension
/// that is neither collapsed nor a batching dimension; otherwise the next dimension of
/// `start_indices` other than `index_vector_dim`.
pub fn infer_gather(
    x: &ArrayShape,
    indices: &ArrayShape,
    dims: &GatherDims,
    slice_sizes: &[i64],
) -> Result<ArrayShape> {
    let op = Opcode::Gather;
    let rank = x.rank();
    expect_integer(op, 1, indices)?;
    let (batch_dims, index_vector_size) = index_batch_dims(op, indices, dims.index_vector_dim)?;
    let out_rank = dims.offset_dims.len() + batch_dims.len();
    check_sorted_unique_in_range(op, "offset_dims", &dims.offset_dims, out_rank)?;
    check_sorted_unique_in_range(op, "collapsed_slice_dims", &dims.collapsed_slice_dims, rank)?;
    check_sorted_unique_in_range(op, "operand_batching_dims", &dims.operand_batching_dims, rank)?;
    check_disjoint(
        op,
        "collapsed_slice_dims",
        &dims.collapsed_slice_dims,
        "operand_batching_dims",
        &dims.operand_batching_dims,
    )?;
    check_unique_in_range(op, "start_index_map", &dims.start_index_map, rank)?;
    check_disjoint(op, "start_index_map", &dims.start_index_map, "operand_batching_dims", &dims.operand_batching_dims)?;
    if dims.start_index_map.len() as i64 != index_vector_size {
        return Err(invalid(
            op,
            format!(
                "start_index_map={} has {} entries but the index vector has {index_vector_size}",
                fmt_dims(&dims.start_index_map),
                dims.start_index_map.len()
            ),
        ));
    }
    check_indices_batching(
        op,
        ("operand_batching_dims", &dims.operand_batching_dims, x),
        ("start_indices_batching_dims", &dims.start_indices_batching_dims, indices),
        dims.index_vector_dim,
    )?;
    if slice_sizes.len() != rank {
        return Err(invalid(
            op,
            format!("slice_sizes={} must have one entry per dimension of {x}", fmt_dims(slice_sizes)),
        ));
    }
    for (i, (&s, &d)) in slice_sizes.iter().zip(&x.dims).enumerate() {
        if s < 0 || s > d {
            return Err(invalid(op, format!("slice size {s} of dimension {i} is not within 0..={d}")));
        }
    }
    for (what, list) in
        [("collapsed_slice_dims", &dims.collapsed_slice_dims), ("operand_batching_dims", &dims.operand_batching_dims)]
    {
        if let Some(&d) = list.iter().find(|&&d| slice_sizes[d as usize] > 1) {
            return Err(invalid(
                op,
                format!("dimension {d} is in {what} but its slice size {} is not 0 or 1", slice_sizes[d as usize]),
            ));
        }
    }
    let expected_rank = dims.offset_dims.len() + dims.collapsed_slice_dims.len() + dims.operand_batching_dims.len();
    if expected_rank != rank {
        return Err(invalid(
            op,
            format!("offset_dims, collapsed_slice_dims and operand_batching_dims have {expected_rank} entries in all but the operand has rank {rank}"),
        ));
    }
    let mut offsets = (0..rank as i64)
        .filter(|d| !dims.collapsed_slice_dims.contains(d) && !dims.operand_batching_dims.contains(d))
        .map(|d| slice_sizes[d as usize]);
    let mut batch = batch_dims.iter().copied();
    let out: Vec<i64> = (0..out_rank as i64)
        .map(|i| if dims.offset_dims.contains(&i) { offsets.next() } else { batch.next() }.unwrap_or(0))
        .collect();
    Ok(ArrayShape::new(x.dtype, out))
}

/// Result of a (variadic) `scatter`: the operands' shape(s), with XLA's full dimension-number rules
/// including batching dimensions, and `to_apply` a reducer over the operand element types.
pub fn infer_scatter(
    xs: &[&ArrayShape],
    indices: &ArrayShape,
    updates: &[&ArrayShape],
    dims: &ScatterDims,
    to_apply: &ProgramShape,
) -> Result<Shape> {
    let op = Opcode::Scatter;
    let n = xs.len();
    let x = check_same_dims(op, xs)?;
    let rank = x.rank();
    expect_integer(op, n, indices)?;
    let update = check_same_dims(op, updates).map_err(|_| invalid(op, "all updates must have the same dimensions"))?;
    for (i, (u, o)) in updates.iter().zip(xs).enumerate() {
        if u.dtype != o.dtype {
            return Err(mismatch(op, n + 1 + i, u, i, o));
        }
    }
    let (batch_dims, index_vector_size) = index_batch_dims(op, indices, dims.index_vector_dim)?;
    check_sorted_unique_in_range(op, "update_window_dims", &dims.update_window_dims, update.rank())?;
    check_sorted_unique_in_range(op, "inserted_window_dims", &dims.inserted_window_dims, rank)?;
    check_sorted_unique_in_range(op, "input_batching_dims", &dims.input_batching_dims, rank)?;
    check_disjoint(
        op,
        "inserted_window_dims",
        &dims.inserted_window_dims,
        "input_batching_dims",
        &dims.input_batching_dims,
    )?;
    check_unique_in_range(op, "scatter_dims_to_operand_dims", &dims.scatter_dims_to_operand_dims, rank)?;
    check_disjoint(
        op,
        "scatter_dims_to_operand_dims",
        &dims.scatter_dims_to_operand_dims,
        "input_batching_dims",
        &dims.input_batching_dims,
    )?;
    if dims.scatter_dims_to_operand_dims.len() as i64 != index_vector_size {
        return Err(invalid(
            op,
            format!(
                "scatter_dims_to_operand_dims={} has {} entries but the index vector has {index_vector_size}",
                fmt_dims(&dims.scatter_dims_to_operand_dims),
                dims.scatter_dims_to_operand_dims.len()
            ),
        ));
    }
    check_indices_batching(
        op,
        ("input_batching_dims", &dims.input_batching_dims, x),
        ("scatter_indices_batching_dims", &dims.scatter_indices_batching_dims, indices),
        dims.index_vector_dim,
    )?;
    let window_rank = dims.update_window_dims.len() + dims.inserted_window_dims.len() + dims.input_batching_dims.len();
    if window_rank != rank {
        return Err(invalid(
            op,
            format!("update_window_dims, inserted_window_dims and input_batching_dims have {window_rank} entries in all but the operand has rank {rank}"),
        ));
    }
    if update.rank() != dims.update_window_dims.len() + batch_dims.len() {
        return Err(invalid(
            op,
            format!(
                "updates {update} must have rank {} ({} window dimensions + {} scatter dimensions)",
                dims.update_window_dims.len() + batch_dims.len(),
                dims.update_window_dims.len(),
                batch_dims.len()
            ),
        ));
    }
    let window_operand_dims =
        (0..rank as i64).filter(|d| !dims.inserted_window_dims.contains(d) && !dims.input_batching_dims.contains(d));
    for (&uw, od) in dims.update_window_dims.iter().zip(window_operand_dims) {
        let (u, o) = (update.dims[uw as usize], x.dims[od as usize]);
        if u > o {
            return Err(invalid(
                op,
                format!("update window dimension {uw} (size {u}) is larger than operand dimension {od} (size {o})"),
            ));
        }
    }
    let scatter_dims = (0..update.rank() as i64).filter(|d| !dims.update_window_dims.contains(d));
    for (ud, &b) in scatter_dims.zip(&batch_dims) {
        if update.dims[ud as usize] != b {
            return Err(invalid(
                op,
                format!(
                    "update scatter dimension {ud} has size {} but the matching indices dimension has size {b}",
                    update.dims[ud as usize]
                ),
            ));
        }
    }
    check_reducer(op, "to_apply", to_apply, &dtypes(xs), &dtypes(updates))?;
    Ok(reducer_result(to_apply, xs.iter().map(|x| x.with_dtype(x.dtype))))
}

// ---------------------------------------------------------------------------------------------
// Dot and convolution.

/// Result of a general `dot`: batch dimensions (in `lhs_batch` order), then lhs free dimensions,
/// then rhs free dimensions, with element type `dtype` (XLA's preferred element type).
pub fn infer_dot(lhs: &ArrayShape, rhs: &ArrayShape, dims: &DotDims, dtype: DType) -> Result<ArrayShape> {
    let op = Opcode::Dot;
    for (side, x, batch, contracting) in
        [("lhs", lhs, &dims.lhs_batch, &dims.lhs_contracting), ("rhs", rhs, &dims.rhs_batch, &dims.rhs_contracting)]
    {
        let all: Vec<i64> = batch.iter().chain(contracting).copied().collect();
        check_unique_in_range(op, &format!("{side} batch and contracting dimensions"), &all, x.rank())?;
    }
    if dims.lhs_batch.len() != dims.rhs_batch.len() || dims.lhs_contracting.len() != dims.rhs_contracting.len() {
        return Err(invalid(op, "lhs and rhs must have as many batch and as many contracting dimensions"));
    }
    for (what, l, r) in
        [("batch", &dims.lhs_batch, &dims.rhs_batch), ("contracting", &dims.lhs_contracting, &dims.rhs_contracting)]
    {
        for (&a, &b) in l.iter().zip(r) {
            if lhs.dims[a as usize] != rhs.dims[b as usize] {
                return Err(invalid(
                    op,
                    format!("{what} dimension {a} of lhs {lhs} and {b} of rhs {rhs} differ in size"),
                ));
            }
        }
    }
    let free = |x: &ArrayShape, batch: &[i64], contracting: &[i64]| -> Vec<i64> {
        (0..x.rank() as i64)
            .filter(|d| !batch.contains(d) && !contracting.contains(d))
            .map(|d| x.dims[d as usize])
            .collect()
    };
    let mut out: Vec<i64> = dims.lhs_batch.iter().map(|&d| lhs.dims[d as usize]).collect();
    out.extend(free(lhs, &dims.lhs_batch, &dims.lhs_contracting));
    out.extend(free(rhs, &dims.rhs_batch, &dims.rhs_contracting));
    Ok(ArrayShape::new(dtype, out))
}

/// Result of `convolution` with element type `dtype` (XLA's preferred element type).
///
/// Input features must equal `feature_group_count * kernel_input_features`; kernel output features
/// must divide by both group counts; batch must divide by `batch_group_count` (the output batch is
/// `batch / batch_group_count`); each window size equals the kernel's spatial size; the spatial
/// output sizes are [`infer_window`] of the input's (lhs_dilate dilates the base, rhs_dilate the window).
pub fn infer_convolution(
    lhs: &ArrayShape,
    rhs: &ArrayShape,
    window: &Window,
    dims: &ConvDims,
    feature_group_count: i64,
    batch_group_count: i64,
    dtype: DType,
) -> Result<ArrayShape> {
    let op = Opcode::Convolution;
    let n_spatial = dims.input_spatial.len();
    let rank = n_spatial + 2;
    if lhs.rank() != rank
        || rhs.rank() != rank
        || dims.kernel_spatial.len() != n_spatial
        || dims.output_spatial.len() != n_spatial
    {
        return Err(invalid(
            op,
            format!("dim_labels with {n_spatial} spatial dimensions do not fit lhs {lhs} and rhs {rhs} (both need rank {rank})"),
        ));
    }
    if window.dims.len() != n_spatial {
        return Err(invalid(
            op,
            format!("window has {} dimensions but there are {n_spatial} spatial dimensions", window.dims.len()),
        ));
    }
    let as_perm = |what: &str, first: i64, second: i64, spatial: &[i64]| {
        let all: Vec<i64> = [first, second].into_iter().chain(spatial.iter().copied()).collect();
        check_unique_in_range(op, what, &all, rank)
    };
    as_perm("input dim_labels", dims.input_batch, dims.input_feature, &dims.input_spatial)?;
    as_perm("kernel dim_labels", dims.kernel_input_feature, dims.kernel_output_feature, &dims.kernel_spatial)?;
    as_perm("output dim_labels", dims.output_batch, dims.output_feature, &dims.output_spatial)?;
    if feature_group_count < 1 || batch_group_count < 1 {
        return Err(invalid(
            op,
            format!(
                "feature_group_count={feature_group_count} and batch_group_count={batch_group_count} must be positive"
            ),
        ));
    }
    if feature_group_count > 1 && batch_group_count > 1 {
        return Err(invalid(op, "feature_group_count and batch_group_count cannot both be greater than 1"));
    }
    let batch = lhs.dims[dims.input_batch as usize];
    let in_features = lhs.dims[dims.input_feature as usize];
    let kernel_in = rhs.dims[dims.kernel_input_feature as usize];
    let kernel_out = rhs.dims[dims.kernel_output_feature as usize];
    if in_features % feature_group_count != 0 || in_features / feature_group_count != kernel_in {
        return Err(invalid(
            op,
            format!("input feature dimension ({in_features}) must be feature_group_count ({feature_group_count}) times the kernel input feature dimension ({kernel_in})"),
        ));
    }
    if kernel_out % feature_group_count != 0 {
        return Err(invalid(op, format!("kernel output features ({kernel_out}) must be a multiple of feature_group_count ({feature_group_count})")));
    }
    if batch % batch_group_count != 0 || kernel_out % batch_group_count != 0 {
        return Err(invalid(
            op,
            format!("input batch ({batch}) and kernel output features ({kernel_out}) must be multiples of batch_group_count ({batch_group_count})"),
        ));
    }
    for (i, (w, &k)) in window.dims.iter().zip(&dims.kernel_spatial).enumerate() {
        if w.size != rhs.dims[k as usize] {
            return Err(invalid(
                op,
                format!(
                    "window size {} of spatial dimension {i} differs from the kernel's size {}",
                    w.size, rhs.dims[k as usize]
                ),
            ));
        }
    }
    let spatial_in: Vec<i64> = dims.input_spatial.iter().map(|&d| lhs.dims[d as usize]).collect();
    let spatial_out = infer_window(op, &spatial_in, window)?;
    let mut out = vec![0; rank];
    out[dims.output_batch as usize] = batch / batch_group_count;
    out[dims.output_feature as usize] = kernel_out;
    for (&d, &size) in dims.output_spatial.iter().zip(&spatial_out) {
        out[d as usize] = size;
    }
    Ok(ArrayShape::new(dtype, out))
}

// ---------------------------------------------------------------------------------------------
// Sorting.

/// Result of a (variadic) `sort`: the operands' shapes (a tuple for several). The comparator takes
/// two scalars of each operand's element type, in operand order, and returns `pred[]`.
pub fn infer_sort(xs: &[&ArrayShape], dimension: i64, comparator: &ProgramShape) -> Result<Shape> {
    let op = Opcode::Sort;
    let first = check_same_dims(op, xs)?;
    check_dim(op, "dimension", dimension, first.rank())?;
    let params: Vec<Shape> = xs.iter().flat_map(|x| [Shape::scalar(x.dtype), Shape::scalar(x.dtype)]).collect();
    check_callee_params(op, "comparator", comparator, &params.iter().collect::<Vec<_>>())?;
    if !same_shape(&comparator.result, &Shape::scalar(DType::Pred)) {
        return Err(callee(op, "comparator", format!("must return pred[] but returns {}", comparator.result)));
    }
    Ok(tuple_or_single(xs.iter().map(|x| x.with_dtype(x.dtype))))
}

/// Result of `topk`: `(values, s32 indices)`, both the operand's shape with the last dimension `k`.
pub fn infer_topk(x: &ArrayShape, k: i64) -> Result<Shape> {
    let op = Opcode::TopK;
    let Some(&last) = x.dims.last() else {
        return Err(kind_error(op, 0, "an array of rank >= 1", &Shape::Array(x.clone())));
    };
    if k < 0 || k > last {
        return Err(invalid(op, format!("k={k} is not within 0..={last}, the last dimension of {x}")));
    }
    let mut dims = x.dims.clone();
    *dims.last_mut().expect("rank >= 1 was checked") = k;
    Ok(Shape::Tuple(vec![Shape::array(x.dtype, dims.clone()), Shape::array(DType::S32, dims)]))
}

// ---------------------------------------------------------------------------------------------
// Control flow and calls.

/// Result of `while`: the carried shape. The condition maps it to `pred[]`, the body to itself.
pub fn infer_while(init: &Shape, condition: &ProgramShape, body: &ProgramShape) -> Result<Shape> {
    let op = Opcode::While;
    check_callee_params(op, "condition", condition, &[init])?;
    if !same_shape(&condition.result, &Shape::scalar(DType::Pred)) {
        return Err(callee(op, "condition", format!("must return pred[] but returns {}", condition.result)));
    }
    check_callee_params(op, "body", body, &[init])?;
    if !same_shape(&body.result, init) {
        return Err(callee(op, "body", format!("must return the loop state {init} but returns {}", body.result)));
    }
    Ok(init.clone())
}

/// Result of `conditional(selector, operands...)`: a `pred` selector picks between exactly two
/// branches (true first), an `s32` one indexes them; branch `i` takes operand `i` and all branches
/// return the same shape.
pub fn infer_conditional(selector: &Shape, operands: &[&Shape], branches: &[ProgramShape]) -> Result<Shape> {
    let op = Opcode::Conditional;
    let sel = selector.as_array().filter(|a| a.rank() == 0).ok_or_else(|| kind_error(op, 0, "a scalar", selector))?;
    match sel.dtype {
        DType::Pred if branches.len() != 2 => {
            return Err(invalid(op, format!("a pred selector needs exactly 2 branches, got {}", branches.len())))
        }
        DType::Pred | DType::S32 => {}
        dtype => return Err(ShapeError::ElementType { op, index: 0, dtype, expected: "pred or s32" }),
    }
    let Some(first) = branches.first() else {
        return Err(invalid(op, "needs at least one branch"));
    };
    if operands.len() != branches.len() {
        return Err(invalid(op, format!("has {} branches but {} branch operands", branches.len(), operands.len())));
    }
    for (i, (branch, &arg)) in branches.iter().zip(operands).enumerate() {
        let role = format!("branch {i}");
        check_callee_params(op, &role, branch, &[arg])?;
        if !same_shape(&branch.result, &first.result) {
            return Err(callee(op, &role, format!("returns {} but branch 0 returns {}", branch.result, first.result)));
        }
    }
    Ok(first.result.clone())
}

/// Result of `call` or `fusion`: the callee's root shape; its parameters match the operands.
pub fn infer_call(op: Opcode, operands: &[&Shape], callee_sig: &ProgramShape) -> Result<Shape> {
    let role = if op == Opcode::Fusion { "fused" } else { "called" };
    check_callee_params(op, role, callee_sig, operands)?;
    Ok(callee_sig.result.clone())
}

// ---------------------------------------------------------------------------------------------
// Random numbers, linear algebra, FFT, batch norm.

/// Result of `rng(a, b)` with the declared dimensions: `a` and `b` are scalars of one element type,
/// floating-point for a normal distribution.
pub fn infer_rng(a: &ArrayShape, b: &ArrayShape, distribution: RngDistribution, dims: &[i64]) -> Result<ArrayShape> {
    let op = Opcode::Rng;
    expect_scalar(op, 0, a)?;
    expect_scalar(op, 1, b)?;
    if a.dtype != b.dtype {
        return Err(mismatch(op, 1, b, 0, a));
    }
    if distribution == RngDistribution::Normal && !a.dtype.is_float() {
        return Err(ShapeError::ElementType {
            op,
            index: 0,
            dtype: a.dtype,
            expected: "a floating-point type for a normal distribution",
        });
    }
    Ok(ArrayShape::new(a.dtype, dims))
}

/// Result of `fft`. `fft_length` names the 1 to 3 minor dimensions transformed. `FFT`/`IFFT` keep a
/// complex shape; `RFFT` maps `f32`/`f64` to `c64`/`c128` with the last size `n / 2 + 1`; `IRFFT`
/// inverts that.
pub fn infer_fft(x: &ArrayShape, fft_type: FftType, fft_length: &[i64]) -> Result<ArrayShape> {
    let op = Opcode::Fft;
    let n = fft_length.len();
    if !(1..=3).contains(&n) || x.rank() < n {
        return Err(invalid(op, format!("fft_length={} must name 1 to 3 dimensions of {x}", fmt_dims(fft_length))));
    }
    let minor = &x.dims[x.rank() - n..];
    let last = fft_length[n - 1];
    let half = if last == 0 { 0 } else { last / 2 + 1 };
    let mismatch_err = || {
        invalid(
            op,
            format!("the minor dimensions of {x} do not match fft_length={} for {fft_type:?}", fmt_dims(fft_length)),
        )
    };
    let mut dims = x.dims.clone();
    let dtype = match fft_type {
        FftType::Fft | FftType::Ifft => {
            if !x.dtype.is_complex() {
                return Err(ShapeError::ElementType { op, index: 0, dtype: x.dtype, expected: "a complex type" });
            }
            if minor != fft_length {
                return Err(mismatch_err());
            }
            x.dtype
        }
        FftType::Rfft => {
            let res = match x.dtype {
                DType::F32 => DType::C64,
                DType::F64 => DType::C128,
                dtype => return Err(ShapeError::ElementType { op, index: 0, dtype, expected: "f32 or f64" }),
            };
            if minor != fft_length {
                return Err(mismatch_err());
            }
            *dims.last_mut().expect("rank >= 1") = half;
            res
        }
        FftType::Irfft => {
            let res = x.dtype.complex_component().ok_or(ShapeError::ElementType {
                op,
                index: 0,
                dtype: x.dtype,
                expected: "a complex type",
            })?;
            if minor[..n - 1] != fft_length[..n - 1] || minor[n - 1] != half {
                return Err(mismatch_err());
            }
            *dims.last_mut().expect("rank >= 1") = last;
            res
        }
    };
    Ok(ArrayShape::new(dtype, dims))
}

/// Result of `cholesky`: the operand's shape; rank >= 2, square minor matrices, float or complex.
pub fn infer_cholesky(a: &ArrayShape) -> Result<ArrayShape> {
    let op = Opcode::Cholesky;
    check_square_matrices(op, 0, a)?;
    Ok(a.with_dtype(a.dtype))
}

/// Result of `triangular-solve(a, b)`: `b`'s shape. `a` is a batch of square `m x m` matrices and
/// `b` has the same batch dimensions and `m` rows (`left_side`) or columns.
pub fn infer_triangular_solve(a: &ArrayShape, b: &ArrayShape, left_side: bool) -> Result<ArrayShape> {
    let op = Opcode::TriangularSolve;
    check_square_matrices(op, 0, a)?;
    let r = a.rank();
    if b.dtype != a.dtype || b.rank() != r || b.dims[..r - 2] != a.dims[..r - 2] {
        return Err(mismatch(op, 1, b, 0, a));
    }
    let m = a.dims[r - 1];
    let shared = if left_side { b.dims[r - 2] } else { b.dims[r - 1] };
    if shared != m {
        let side = if left_side { "rows" } else { "columns" };
        return Err(invalid(op, format!("b {b} must have {m} {side} to match a {a}")));
    }
    Ok(b.with_dtype(b.dtype))
}

/// Result of the batch-norm ops. `training(operand, scale, offset)` and
/// `grad(operand, scale, mean, variance, grad_output)` give `(operand, [F], [F])`;
/// `inference(operand, scale, offset, mean, variance)` gives the operand's shape. `F` is the size
/// of `feature_index`, every per-feature operand is a float vector `[F]`.
pub fn infer_batch_norm(op: Opcode, xs: &[&ArrayShape], feature_index: i64) -> Result<Shape> {
    let Some(x) = xs.first() else {
        return Err(ShapeError::Arity { op, expected: Arity::AtLeast(1), got: 0 });
    };
    if !x.dtype.is_float() {
        return Err(ShapeError::ElementType { op, index: 0, dtype: x.dtype, expected: "a floating-point type" });
    }
    check_dim(op, "feature_index", feature_index, x.rank())?;
    let feature = ArrayShape::new(x.dtype, vec![x.dims[feature_index as usize]]);
    for (index, it) in xs.iter().enumerate().skip(1) {
        let want = if op == Opcode::BatchNormGrad && index == 4 { *x } else { &feature };
        if it.dtype != want.dtype || it.dims != want.dims {
            return Err(invalid(op, format!("operand {index} has shape {it} but must be {want}")));
        }
    }
    Ok(match op {
        Opcode::BatchNormInference => Shape::Array(x.with_dtype(x.dtype)),
        _ => Shape::Tuple(vec![
            Shape::Array(x.with_dtype(x.dtype)),
            Shape::Array(feature.clone()),
            Shape::Array(feature),
        ]),
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn invalid(op: Opcode, message: impl Into<String>) -> ShapeError {
    ShapeError::Invalid { op, message: message.into() }
}

fn callee(op: Opcode, role: &str, message: impl Into<String>) -> ShapeError {
    ShapeError::Callee { op, role: role.to_string(), message: message.into() }
}

fn kind_error(op: Opcode, index: usize, expected: &'static str, got: &Shape) -> ShapeError {
    ShapeError::OperandKind { op, index, expected, got: Box::new(got.clone()) }
}

fn mismatch(op: Opcode, index: usize, got: &ArrayShape, other: usize, expected: &ArrayShape) -> ShapeError {
    ShapeError::OperandMismatch {
        op,
        index,
        got: Box::new(Shape::Array(got.clone())),
        other,
        expected: Box::new(Shape::Array(expected.clone())),
    }
}

fn operand_array<'a>(op: Opcode, operands: &[&'a Shape], index: usize) -> Result<&'a ArrayShape> {
    match operands.get(index) {
        Some(Shape::Array(a)) => Ok(a),
        Some(other) => Err(kind_error(op, index, "an array", other)),
        None => Err(ShapeError::Arity { op, expected: Arity::AtLeast(index + 1), got: operands.len() }),
    }
}

fn fmt_dims(dims: &[i64]) -> String {
    let inner: Vec<String> = dims.iter().map(i64::to_string).collect();
    format!("{{{}}}", inner.join(","))
}

fn dtypes(xs: &[&ArrayShape]) -> Vec<DType> {
    xs.iter().map(|x| x.dtype).collect()
}

fn tuple_or_single(shapes: impl Iterator<Item = ArrayShape>) -> Shape {
    let mut shapes: Vec<Shape> = shapes.map(Shape::Array).collect();
    if shapes.len() == 1 {
        shapes.pop().expect("one element")
    } else {
        Shape::Tuple(shapes)
    }
}

/// The result of a reducing op: a tuple when the reducer returns one (always for several inputs;
/// XLA also allows a one-element tuple for a single input), else the single array.
fn reducer_result(reducer: &ProgramShape, shapes: impl Iterator<Item = ArrayShape>) -> Shape {
    if reducer.result.is_tuple() {
        Shape::Tuple(shapes.map(Shape::Array).collect())
    } else {
        tuple_or_single(shapes)
    }
}

fn half(op: Opcode, n: usize) -> Result<usize> {
    if n != 2 * (n / 2) {
        return Err(invalid(op, format!("takes N inputs and N init values, but has {n} operands")));
    }
    Ok(n / 2)
}

fn check_same_array(op: Opcode, a: &ArrayShape, ai: usize, b: &ArrayShape, bi: usize) -> Result<()> {
    if a.dtype != b.dtype || a.dims != b.dims {
        return Err(mismatch(op, bi, b, ai, a));
    }
    Ok(())
}

/// All arrays have the first one's dimensions (element types may differ); returns the first.
fn check_same_dims<'a>(op: Opcode, xs: &[&'a ArrayShape]) -> Result<&'a ArrayShape> {
    let Some(&first) = xs.first() else {
        return Err(ShapeError::Arity { op, expected: Arity::AtLeast(1), got: 0 });
    };
    for (index, x) in xs.iter().enumerate().skip(1) {
        if x.dims != first.dims {
            return Err(mismatch(op, index, x, 0, first));
        }
    }
    Ok(first)
}

fn check_variadic_inputs<'a>(op: Opcode, inputs: &[&'a ArrayShape], inits: &[&ArrayShape]) -> Result<&'a ArrayShape> {
    if inputs.len() != inits.len() {
        return Err(invalid(op, format!("has {} inputs but {} init values", inputs.len(), inits.len())));
    }
    let first = check_same_dims(op, inputs)?;
    for (i, init) in inits.iter().enumerate() {
        expect_scalar(op, inputs.len() + i, init)?;
    }
    Ok(first)
}

fn expect_scalar(op: Opcode, index: usize, x: &ArrayShape) -> Result<()> {
    if x.rank() != 0 {
        return Err(kind_error(op, index, "a scalar", &Shape::Array(x.clone())));
    }
    Ok(())
}

fn expect_integer(op: Opcode, index: usize, x: &ArrayShape) -> Result<()> {
    if !x.dtype.is_integer() {
        return Err(ShapeError::ElementType { op, index, dtype: x.dtype, expected: "an integer type" });
    }
    Ok(())
}

fn check_dim(op: Opcode, what: &str, d: i64, rank: usize) -> Result<()> {
    if d < 0 || d >= rank as i64 {
        return Err(invalid(op, format!("{what} {d} is out of range for rank {rank}")));
    }
    Ok(())
}

fn check_unique_in_range(op: Opcode, what: &str, dims: &[i64], rank: usize) -> Result<()> {
    let mut seen = HashSet::new();
    for &d in dims {
        if d < 0 || d >= rank as i64 {
            return Err(invalid(
                op,
                format!("{what}={}: dimension {d} is out of range for rank {rank}", fmt_dims(dims)),
            ));
        }
        if !seen.insert(d) {
            return Err(invalid(op, format!("{what}={}: dimension {d} is repeated", fmt_dims(dims))));
        }
    }
    Ok(())
}

fn check_sorted_unique_in_range(op: Opcode, what: &str, dims: &[i64], rank: usize) -> Result<()> {
    check_unique_in_range(op, what, dims, rank)?;
    if dims.windows(2).any(|w| w[0] > w[1]) {
        return Err(invalid(op, format!("{what}={} must be sorted", fmt_dims(dims))));
    }
    Ok(())
}

fn check_disjoint(op: Opcode, a_name: &str, a: &[i64], b_name: &str, b: &[i64]) -> Result<()> {
    if let Some(d) = a.iter().find(|d| b.contains(d)) {
        return Err(invalid(op, format!("dimension {d} is in both {a_name} and {b_name}")));
    }
    Ok(())
}

/// The batch dimensions of gather/scatter indices (every dimension but `index_vector_dim`) and the
/// index vector's length (1 when `index_vector_dim == rank`: an implicit trailing dimension).
fn index_batch_dims(op: Opcode, indices: &ArrayShape, index_vector_dim: i64) -> Result<(Vec<i64>, i64)> {
    let rank = indices.rank() as i64;
    if index_vector_dim < 0 || index_vector_dim > rank {
        return Err(invalid(op, format!("index_vector_dim {index_vector_dim} is out of range for indices {indices}")));
    }
    let batch =
        indices.dims.iter().enumerate().filter(|(i, _)| *i as i64 != index_vector_dim).map(|(_, &d)| d).collect();
    let size = if index_vector_dim == rank { 1 } else { indices.dims[index_vector_dim as usize] };
    Ok((batch, size))
}

/// The operand's and the indices' batching dimensions pair up, with equal sizes.
fn check_indices_batching(
    op: Opcode,
    (operand_what, operand_dims, operand): (&str, &[i64], &ArrayShape),
    (indices_what, indices_dims, indices): (&str, &[i64], &ArrayShape),
    index_vector_dim: i64,
) -> Result<()> {
    check_unique_in_range(op, indices_what, indices_dims, indices.rank())?;
    if indices_dims.contains(&index_vector_dim) {
        return Err(invalid(
            op,
            format!("{indices_what}={} must not contain index_vector_dim {index_vector_dim}", fmt_dims(indices_dims)),
        ));
    }
    if operand_dims.len() != indices_dims.len() {
        return Err(invalid(
            op,
            format!(
                "{operand_what}={} and {indices_what}={} must have the same length",
                fmt_dims(operand_dims),
                fmt_dims(indices_dims)
            ),
        ));
    }
    for (&o, &i) in operand_dims.iter().zip(indices_dims) {
        let (a, b) = (operand.dims[o as usize], indices.dims[i as usize]);
        if a != b {
            return Err(invalid(
                op,
                format!("batching dimension {o} of the operand (size {a}) and {i} of the indices (size {b}) differ"),
            ));
        }
    }
    Ok(())
}

/// Start indices of dynamic-slice / dynamic-update-slice, starting at operand `first_index`: one
/// integer scalar per dimension, all of one type, or the legacy single rank-1 index vector.
fn check_start_indices(op: Opcode, x: &ArrayShape, indices: &[&ArrayShape], first_index: usize) -> Result<()> {
    if let [vector] = indices {
        if vector.rank() == 1 && vector.dims[0] == x.rank() as i64 {
            return expect_integer(op, first_index, vector);
        }
    }
    if indices.len() != x.rank() {
        return Err(invalid(op, format!("needs {} start indices for operand {x}, got {}", x.rank(), indices.len())));
    }
    for (i, idx) in indices.iter().enumerate() {
        expect_scalar(op, first_index + i, idx)?;
        expect_integer(op, first_index + i, idx)?;
        if idx.dtype != indices[0].dtype {
            return Err(mismatch(op, first_index + i, idx, first_index, indices[0]));
        }
    }
    Ok(())
}

fn check_square_matrices(op: Opcode, index: usize, a: &ArrayShape) -> Result<()> {
    let r = a.rank();
    if r < 2 || a.dims[r - 1] != a.dims[r - 2] {
        return Err(kind_error(op, index, "a batch of square matrices", &Shape::Array(a.clone())));
    }
    if !a.dtype.is_float() && !a.dtype.is_complex() {
        return Err(ShapeError::ElementType {
            op,
            index,
            dtype: a.dtype,
            expected: "a floating-point or complex type",
        });
    }
    Ok(())
}

/// The callee takes exactly `params` (compared ignoring layouts).
fn check_callee_params(op: Opcode, role: &str, sig: &ProgramShape, params: &[&Shape]) -> Result<()> {
    if sig.params.len() != params.len() {
        return Err(callee(
            op,
            role,
            format!("takes {} parameters but {op} passes {}", sig.params.len(), params.len()),
        ));
    }
    for (i, (got, want)) in sig.params.iter().zip(params).enumerate() {
        if !same_shape(got, want) {
            return Err(callee(op, role, format!("parameter {i} has shape {got} but {op} passes {want}")));
        }
    }
    Ok(())
}

fn same_type_ignoring_fp_precision(a: DType, b: DType) -> bool {
    a == b || (a.is_float() && b.is_float())
}

/// XLA's reducer rules: `2N` scalar parameters (N accumulators typed like the inits, then N values
/// typed like the inputs up to floating-point precision) and a result of N scalars (a tuple when
/// N > 1) typed like the accumulators.
fn check_reducer(op: Opcode, role: &str, sig: &ProgramShape, acc_types: &[DType], input_types: &[DType]) -> Result<()> {
    let n = acc_types.len();
    if sig.params.len() != 2 * n {
        return Err(callee(
            op,
            role,
            format!("takes {} parameters but a reducer of {n} input(s) takes {}", sig.params.len(), 2 * n),
        ));
    }
    let results: Vec<&Shape> = match &sig.result {
        Shape::Tuple(elems) => elems.iter().collect(),
        other => vec![other],
    };
    if results.len() != n {
        return Err(callee(op, role, format!("returns {} but must return {n} scalar(s)", sig.result)));
    }
    for i in 0..n {
        let scalar_of = |s: &Shape| s.as_array().filter(|a| a.rank() == 0).map(|a| a.dtype);
        let acc = scalar_of(results[i]).filter(|&t| t == acc_types[i]).ok_or_else(|| {
            callee(op, role, format!("result {i} is {} but must be {}[] like the init value", results[i], acc_types[i]))
        })?;
        if scalar_of(&sig.params[i]) != Some(acc) {
            return Err(callee(
                op,
                role,
                format!("parameter {i} has shape {} but the accumulator is {acc}[]", sig.params[i]),
            ));
        }
        match scalar_of(&sig.params[n + i]) {
            Some(t)
                if same_type_ignoring_fp_precision(t, input_types[i]) && same_type_ignoring_fp_precision(t, acc) => {}
            _ => {
                return Err(callee(
                    op,
                    role,
                    format!(
                        "parameter {} has shape {} but the input elements are {}[]",
                        n + i,
                        sig.params[n + i],
                        input_types[i]
                    ),
                ))
            }
        }
    }
    Ok(())
}
