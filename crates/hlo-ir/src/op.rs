//! Typed operations: one [`Op`] variant per opcode family, carrying its attributes.
//!
//! Elementwise unary and binary opcodes are grouped into [`UnaryOp`] and
//! [`BinaryOp`] so that interpreters and emitters can handle them with one
//! match. [`Op::opcode`] maps every variant back to its [`Opcode`], so the
//! pair can never disagree.

use crate::literal::Literal;
use crate::module::CompId;
use crate::opcode::Opcode;
use crate::shape::Shape;

/// Elementwise unary opcodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Abs,
    Acos,
    Acosh,
    Asin,
    Asinh,
    Atan,
    Atanh,
    Cbrt,
    Ceil,
    Clz,
    Cos,
    Cosh,
    Erf,
    Exp,
    Expm1,
    Floor,
    Imag,
    IsFinite,
    Log,
    Log1p,
    Logistic,
    Negate,
    Not,
    PopulationCount,
    Real,
    RoundNearestAfz,
    RoundNearestEven,
    Rsqrt,
    Sign,
    Sin,
    Sinh,
    Sqrt,
    Tan,
    Tanh,
}

impl UnaryOp {
    pub const ALL: [UnaryOp; 34] = [
        UnaryOp::Abs,
        UnaryOp::Acos,
        UnaryOp::Acosh,
        UnaryOp::Asin,
        UnaryOp::Asinh,
        UnaryOp::Atan,
        UnaryOp::Atanh,
        UnaryOp::Cbrt,
        UnaryOp::Ceil,
        UnaryOp::Clz,
        UnaryOp::Cos,
        UnaryOp::Cosh,
        UnaryOp::Erf,
        UnaryOp::Exp,
        UnaryOp::Expm1,
        UnaryOp::Floor,
        UnaryOp::Imag,
        UnaryOp::IsFinite,
        UnaryOp::Log,
        UnaryOp::Log1p,
        UnaryOp::Logistic,
        UnaryOp::Negate,
        UnaryOp::Not,
        UnaryOp::PopulationCount,
        UnaryOp::Real,
        UnaryOp::RoundNearestAfz,
        UnaryOp::RoundNearestEven,
        UnaryOp::Rsqrt,
        UnaryOp::Sign,
        UnaryOp::Sin,
        UnaryOp::Sinh,
        UnaryOp::Sqrt,
        UnaryOp::Tan,
        UnaryOp::Tanh,
    ];

    pub fn opcode(self) -> Opcode {
        match self {
            UnaryOp::Abs => Opcode::Abs,
            UnaryOp::Acos => Opcode::Acos,
            UnaryOp::Acosh => Opcode::Acosh,
            UnaryOp::Asin => Opcode::Asin,
            UnaryOp::Asinh => Opcode::Asinh,
            UnaryOp::Atan => Opcode::Atan,
            UnaryOp::Atanh => Opcode::Atanh,
            UnaryOp::Cbrt => Opcode::Cbrt,
            UnaryOp::Ceil => Opcode::Ceil,
            UnaryOp::Clz => Opcode::Clz,
            UnaryOp::Cos => Opcode::Cos,
            UnaryOp::Cosh => Opcode::Cosh,
            UnaryOp::Erf => Opcode::Erf,
            UnaryOp::Exp => Opcode::Exp,
            UnaryOp::Expm1 => Opcode::Expm1,
            UnaryOp::Floor => Opcode::Floor,
            UnaryOp::Imag => Opcode::Imag,
            UnaryOp::IsFinite => Opcode::IsFinite,
            UnaryOp::Log => Opcode::Log,
            UnaryOp::Log1p => Opcode::Log1p,
            UnaryOp::Logistic => Opcode::Logistic,
            UnaryOp::Negate => Opcode::Negate,
            UnaryOp::Not => Opcode::Not,
            UnaryOp::PopulationCount => Opcode::PopulationCount,
            UnaryOp::Real => Opcode::Real,
            UnaryOp::RoundNearestAfz => Opcode::RoundNearestAfz,
            UnaryOp::RoundNearestEven => Opcode::RoundNearestEven,
            UnaryOp::Rsqrt => Opcode::Rsqrt,
            UnaryOp::Sign => Opcode::Sign,
            UnaryOp::Sin => Opcode::Sin,
            UnaryOp::Sinh => Opcode::Sinh,
            UnaryOp::Sqrt => Opcode::Sqrt,
            UnaryOp::Tan => Opcode::Tan,
            UnaryOp::Tanh => Opcode::Tanh,
        }
    }

    pub fn from_opcode(opcode: Opcode) -> Option<UnaryOp> {
        UnaryOp::ALL.iter().copied().find(|op| op.opcode() == opcode)
    }
}

/// Elementwise binary opcodes (compare has its own variant: it carries attributes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
    Maximum,
    Minimum,
    Power,
    Atan2,
    And,
    Or,
    Xor,
    ShiftLeft,
    ShiftRightArithmetic,
    ShiftRightLogical,
    Complex,
    Mulhi,
}

impl BinaryOp {
    pub const ALL: [BinaryOp; 17] = [
        BinaryOp::Add,
        BinaryOp::Subtract,
        BinaryOp::Multiply,
        BinaryOp::Divide,
        BinaryOp::Remainder,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Power,
        BinaryOp::Atan2,
        BinaryOp::And,
        BinaryOp::Or,
        BinaryOp::Xor,
        BinaryOp::ShiftLeft,
        BinaryOp::ShiftRightArithmetic,
        BinaryOp::ShiftRightLogical,
        BinaryOp::Complex,
        BinaryOp::Mulhi,
    ];

    pub fn opcode(self) -> Opcode {
        match self {
            BinaryOp::Add => Opcode::Add,
            BinaryOp::Subtract => Opcode::Subtract,
            BinaryOp::Multiply => Opcode::Multiply,
            BinaryOp::Divide => Opcode::Divide,
            BinaryOp::Remainder => Opcode::Remainder,
            BinaryOp::Maximum => Opcode::Maximum,
            BinaryOp::Minimum => Opcode::Minimum,
            BinaryOp::Power => Opcode::Power,
            BinaryOp::Atan2 => Opcode::Atan2,
            BinaryOp::And => Opcode::And,
            BinaryOp::Or => Opcode::Or,
            BinaryOp::Xor => Opcode::Xor,
            BinaryOp::ShiftLeft => Opcode::ShiftLeft,
            BinaryOp::ShiftRightArithmetic => Opcode::ShiftRightArithmetic,
            BinaryOp::ShiftRightLogical => Opcode::ShiftRightLogical,
            BinaryOp::Complex => Opcode::Complex,
            BinaryOp::Mulhi => Opcode::Mulhi,
        }
    }

    pub fn from_opcode(opcode: Opcode) -> Option<BinaryOp> {
        BinaryOp::ALL.iter().copied().find(|op| op.opcode() == opcode)
    }

    /// True when `a op b == b op a`.
    pub fn is_commutative(self) -> bool {
        matches!(
            self,
            BinaryOp::Add
                | BinaryOp::Multiply
                | BinaryOp::Maximum
                | BinaryOp::Minimum
                | BinaryOp::And
                | BinaryOp::Or
                | BinaryOp::Xor
                | BinaryOp::Mulhi
        )
    }
}

/// `direction=` of a compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareDirection {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// `type=` of a compare. `TotalOrder` orders floats as XLA's total order
/// (-NaN < -inf < ... < -0 < +0 < ... < inf < NaN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareType {
    Float,
    TotalOrder,
    Signed,
    Unsigned,
}

/// One dimension of a `slice={[start:limit:stride], ...}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SliceDim {
    pub start: i64,
    pub limit: i64,
    pub stride: i64,
}

/// One dimension of a pad's `padding=lo_hi_interior`. Low and high may be negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PadDim {
    pub low: i64,
    pub high: i64,
    pub interior: i64,
}

/// One dimension of a `window={size=.. stride=.. pad=.. lhs_dilate=.. rhs_dilate=.. rhs_reversal=..}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowDim {
    pub size: i64,
    pub stride: i64,
    pub padding_low: i64,
    pub padding_high: i64,
    /// `rhs_dilate`: dilation of the window itself.
    pub window_dilation: i64,
    /// `lhs_dilate`: dilation of the base (input) array.
    pub base_dilation: i64,
    /// `rhs_reversal`.
    pub window_reversal: bool,
}

impl Default for WindowDim {
    fn default() -> WindowDim {
        WindowDim {
            size: 1,
            stride: 1,
            padding_low: 0,
            padding_high: 0,
            window_dilation: 1,
            base_dilation: 1,
            window_reversal: false,
        }
    }
}

/// A window for convolution, reduce-window and select-and-scatter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Window {
    pub dims: Vec<WindowDim>,
}

/// Dot dimension numbers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct DotDims {
    pub lhs_batch: Vec<i64>,
    pub lhs_contracting: Vec<i64>,
    pub rhs_batch: Vec<i64>,
    pub rhs_contracting: Vec<i64>,
}

/// `operand_precision={...}` entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    Default,
    High,
    Highest,
}

/// Convolution dimension numbers, written `dim_labels=b01f_01io->b01f`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct ConvDims {
    pub input_batch: i64,
    pub input_feature: i64,
    pub input_spatial: Vec<i64>,
    pub kernel_input_feature: i64,
    pub kernel_output_feature: i64,
    pub kernel_spatial: Vec<i64>,
    pub output_batch: i64,
    pub output_feature: i64,
    pub output_spatial: Vec<i64>,
}

/// Gather dimension numbers plus `slice_sizes` and `indices_are_sorted`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct GatherDims {
    pub offset_dims: Vec<i64>,
    pub collapsed_slice_dims: Vec<i64>,
    pub start_index_map: Vec<i64>,
    pub index_vector_dim: i64,
    pub operand_batching_dims: Vec<i64>,
    pub start_indices_batching_dims: Vec<i64>,
}

/// Scatter dimension numbers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct ScatterDims {
    pub update_window_dims: Vec<i64>,
    pub inserted_window_dims: Vec<i64>,
    pub scatter_dims_to_operand_dims: Vec<i64>,
    pub index_vector_dim: i64,
    pub input_batching_dims: Vec<i64>,
    pub scatter_indices_batching_dims: Vec<i64>,
}

/// `kind=` of a fusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FusionKind {
    Loop,
    Input,
    Output,
    Custom,
}

/// `distribution=` of `rng`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RngDistribution {
    Uniform,
    Normal,
}

/// `algorithm=` of `rng-bit-generator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RngAlgorithm {
    Default,
    ThreeFry,
    Philox,
}

/// `fft_type=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FftType {
    Fft,
    Ifft,
    Rfft,
    Irfft,
}

/// `transpose_a=` of triangular-solve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransposeKind {
    NoTranspose,
    Transpose,
    Adjoint,
}

/// `api_version=` of a custom call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CustomCallApiVersion {
    Original,
    StatusReturning,
    StatusReturningUnified,
    TypedFfi,
}

/// The attributes of a `custom-call`.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomCall {
    pub target: String,
    pub api_version: Option<CustomCallApiVersion>,
    /// `called_computations={...}` or `to_apply=`.
    pub called_computations: Vec<CompId>,
    pub has_side_effect: bool,
    /// `operand_layout_constraints={f32[2]{0}, ...}`.
    pub operand_layout_constraints: Option<Vec<Shape>>,
    /// `output_to_operand_aliasing={{out_index}: (operand, {operand_index})}`.
    pub output_to_operand_aliasing: Vec<(Vec<i64>, i64, Vec<i64>)>,
    /// `literal=` payload, if any.
    pub literal: Option<Literal>,
}

/// Attributes shared by the collective opcodes. Single-device execution
/// never runs these; they are parsed and printed so that any module reads.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct CollectiveAttrs {
    pub channel_id: Option<i64>,
    pub dimensions: Vec<i64>,
    pub to_apply: Option<CompId>,
}

/// A typed HLO operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Parameter {
        number: u64,
    },
    Constant(Box<Literal>),
    Iota {
        dimension: i64,
    },
    Unary(UnaryOp),
    Binary(BinaryOp),
    Compare {
        direction: CompareDirection,
        compare_type: Option<CompareType>,
    },
    Select,
    Clamp,
    Convert,
    BitcastConvert,
    StochasticConvert,
    ReducePrecision {
        exponent_bits: i64,
        mantissa_bits: i64,
    },
    Broadcast {
        dimensions: Vec<i64>,
    },
    Reshape,
    DynamicReshape,
    Transpose {
        dimensions: Vec<i64>,
    },
    Reverse {
        dimensions: Vec<i64>,
    },
    Slice {
        dims: Vec<SliceDim>,
    },
    DynamicSlice {
        sizes: Vec<i64>,
    },
    DynamicUpdateSlice,
    Concatenate {
        dimension: i64,
    },
    Pad {
        dims: Vec<PadDim>,
    },
    Bitcast,
    Copy,
    Tuple,
    GetTupleElement {
        index: u64,
    },
    Reduce {
        dimensions: Vec<i64>,
        to_apply: CompId,
    },
    ReduceWindow {
        window: Window,
        to_apply: CompId,
    },
    SelectAndScatter {
        window: Window,
        select: CompId,
        scatter: CompId,
    },
    Map {
        dimensions: Vec<i64>,
        to_apply: CompId,
    },
    Gather {
        dims: GatherDims,
        slice_sizes: Vec<i64>,
        indices_are_sorted: bool,
    },
    Scatter {
        dims: ScatterDims,
        indices_are_sorted: bool,
        unique_indices: bool,
        to_apply: CompId,
    },
    Dot {
        dims: DotDims,
        precision: Vec<Precision>,
        algorithm: Option<String>,
    },
    RaggedDot {
        dims: DotDims,
        lhs_ragged: Vec<i64>,
        rhs_group: Vec<i64>,
        precision: Vec<Precision>,
    },
    ScaledDot {
        dims: DotDims,
        precision: Vec<Precision>,
    },
    Convolution {
        window: Window,
        dims: ConvDims,
        feature_group_count: i64,
        batch_group_count: i64,
        precision: Vec<Precision>,
    },
    Sort {
        dimension: i64,
        is_stable: bool,
        to_apply: CompId,
    },
    TopK {
        k: i64,
        largest: bool,
    },
    While {
        condition: CompId,
        body: CompId,
    },
    /// `branches[0]` is the true branch and `branches[1]` the false one when
    /// the selector is a `pred`; otherwise they are indexed by the `s32` selector.
    Conditional {
        branches: Vec<CompId>,
    },
    Call {
        to_apply: CompId,
        is_composite: bool,
    },
    Fusion {
        kind: FusionKind,
        calls: CompId,
    },
    CustomCall(Box<CustomCall>),
    Rng {
        distribution: RngDistribution,
    },
    RngBitGenerator {
        algorithm: RngAlgorithm,
    },
    RngGetAndUpdateState {
        delta: i64,
    },
    Fft {
        fft_type: FftType,
        fft_length: Vec<i64>,
    },
    Cholesky {
        lower: bool,
    },
    TriangularSolve {
        left_side: bool,
        lower: bool,
        unit_diagonal: bool,
        transpose_a: TransposeKind,
    },
    BatchNormTraining {
        epsilon: f32,
        feature_index: i64,
    },
    BatchNormInference {
        epsilon: f32,
        feature_index: i64,
    },
    BatchNormGrad {
        epsilon: f32,
        feature_index: i64,
    },
    GetDimensionSize {
        dimension: i64,
    },
    SetDimensionSize {
        dimension: i64,
    },
    AfterAll,
    AddDependency,
    OptimizationBarrier,
    Domain,
    PartitionId,
    ReplicaId,
    Infeed,
    Outfeed,
    Send {
        channel_id: Option<i64>,
        is_host_transfer: bool,
    },
    SendDone {
        channel_id: Option<i64>,
        is_host_transfer: bool,
    },
    Recv {
        channel_id: Option<i64>,
        is_host_transfer: bool,
    },
    RecvDone {
        channel_id: Option<i64>,
        is_host_transfer: bool,
    },
    CopyStart,
    CopyDone,
    /// `async-start`, `async-update`, `async-done`: `calls` names the wrapped computation.
    Async {
        opcode: Opcode,
        calls: Option<CompId>,
    },
    /// All collective opcodes (`all-reduce`, `all-gather-start`, `collective-permute`, ...).
    Collective {
        opcode: Opcode,
        attrs: CollectiveAttrs,
    },
    /// Opcodes new enough that no JAX program emits them yet (`scan`, `shuffle`):
    /// their attributes stay in [`crate::InstrMeta::other_attrs`].
    Other {
        opcode: Opcode,
    },
}

impl Op {
    /// The opcode this operation prints as.
    pub fn opcode(&self) -> Opcode {
        match self {
            Op::Parameter { .. } => Opcode::Parameter,
            Op::Constant(_) => Opcode::Constant,
            Op::Iota { .. } => Opcode::Iota,
            Op::Unary(u) => u.opcode(),
            Op::Binary(b) => b.opcode(),
            Op::Compare { .. } => Opcode::Compare,
            Op::Select => Opcode::Select,
            Op::Clamp => Opcode::Clamp,
            Op::Convert => Opcode::Convert,
            Op::BitcastConvert => Opcode::BitcastConvert,
            Op::StochasticConvert => Opcode::StochasticConvert,
            Op::ReducePrecision { .. } => Opcode::ReducePrecision,
            Op::Broadcast { .. } => Opcode::Broadcast,
            Op::Reshape => Opcode::Reshape,
            Op::DynamicReshape => Opcode::DynamicReshape,
            Op::Transpose { .. } => Opcode::Transpose,
            Op::Reverse { .. } => Opcode::Reverse,
            Op::Slice { .. } => Opcode::Slice,
            Op::DynamicSlice { .. } => Opcode::DynamicSlice,
            Op::DynamicUpdateSlice => Opcode::DynamicUpdateSlice,
            Op::Concatenate { .. } => Opcode::Concatenate,
            Op::Pad { .. } => Opcode::Pad,
            Op::Bitcast => Opcode::Bitcast,
            Op::Copy => Opcode::Copy,
            Op::Tuple => Opcode::Tuple,
            Op::GetTupleElement { .. } => Opcode::GetTupleElement,
            Op::Reduce { .. } => Opcode::Reduce,
            Op::ReduceWindow { .. } => Opcode::ReduceWindow,
            Op::SelectAndScatter { .. } => Opcode::SelectAndScatter,
            Op::Map { .. } => Opcode::Map,
            Op::Gather { .. } => Opcode::Gather,
            Op::Scatter { .. } => Opcode::Scatter,
            Op::Dot { .. } => Opcode::Dot,
            Op::RaggedDot { .. } => Opcode::RaggedDot,
            Op::ScaledDot { .. } => Opcode::ScaledDot,
            Op::Convolution { .. } => Opcode::Convolution,
            Op::Sort { .. } => Opcode::Sort,
            Op::TopK { .. } => Opcode::TopK,
            Op::While { .. } => Opcode::While,
            Op::Conditional { .. } => Opcode::Conditional,
            Op::Call { .. } => Opcode::Call,
            Op::Fusion { .. } => Opcode::Fusion,
            Op::CustomCall(_) => Opcode::CustomCall,
            Op::Rng { .. } => Opcode::Rng,
            Op::RngBitGenerator { .. } => Opcode::RngBitGenerator,
            Op::RngGetAndUpdateState { .. } => Opcode::RngGetAndUpdateState,
            Op::Fft { .. } => Opcode::Fft,
            Op::Cholesky { .. } => Opcode::Cholesky,
            Op::TriangularSolve { .. } => Opcode::TriangularSolve,
            Op::BatchNormTraining { .. } => Opcode::BatchNormTraining,
            Op::BatchNormInference { .. } => Opcode::BatchNormInference,
            Op::BatchNormGrad { .. } => Opcode::BatchNormGrad,
            Op::GetDimensionSize { .. } => Opcode::GetDimensionSize,
            Op::SetDimensionSize { .. } => Opcode::SetDimensionSize,
            Op::AfterAll => Opcode::AfterAll,
            Op::AddDependency => Opcode::AddDependency,
            Op::OptimizationBarrier => Opcode::OptimizationBarrier,
            Op::Domain => Opcode::Domain,
            Op::PartitionId => Opcode::PartitionId,
            Op::ReplicaId => Opcode::ReplicaId,
            Op::Infeed => Opcode::Infeed,
            Op::Outfeed => Opcode::Outfeed,
            Op::Send { .. } => Opcode::Send,
            Op::SendDone { .. } => Opcode::SendDone,
            Op::Recv { .. } => Opcode::Recv,
            Op::RecvDone { .. } => Opcode::RecvDone,
            Op::CopyStart => Opcode::CopyStart,
            Op::CopyDone => Opcode::CopyDone,
            Op::Async { opcode, .. } | Op::Collective { opcode, .. } | Op::Other { opcode } => *opcode,
        }
    }

    /// The computations this operation calls, in attribute order.
    pub fn called_computations(&self) -> Vec<CompId> {
        match self {
            Op::Reduce { to_apply, .. }
            | Op::ReduceWindow { to_apply, .. }
            | Op::Map { to_apply, .. }
            | Op::Scatter { to_apply, .. }
            | Op::Sort { to_apply, .. }
            | Op::Call { to_apply, .. } => vec![*to_apply],
            Op::SelectAndScatter { select, scatter, .. } => vec![*select, *scatter],
            Op::While { condition, body } => vec![*condition, *body],
            Op::Conditional { branches } => branches.clone(),
            Op::Fusion { calls, .. } => vec![*calls],
            Op::CustomCall(cc) => cc.called_computations.clone(),
            Op::Async { calls, .. } => calls.iter().copied().collect(),
            Op::Collective { attrs, .. } => attrs.to_apply.iter().copied().collect(),
            _ => Vec::new(),
        }
    }

    /// Rewrites every called computation id (used when computations are renumbered).
    pub fn map_called_computations(&mut self, mut f: impl FnMut(CompId) -> CompId) {
        match self {
            Op::Reduce { to_apply, .. }
            | Op::ReduceWindow { to_apply, .. }
            | Op::Map { to_apply, .. }
            | Op::Scatter { to_apply, .. }
            | Op::Sort { to_apply, .. }
            | Op::Call { to_apply, .. } => *to_apply = f(*to_apply),
            Op::SelectAndScatter { select, scatter, .. } => {
                *select = f(*select);
                *scatter = f(*scatter);
            }
            Op::While { condition, body } => {
                *condition = f(*condition);
                *body = f(*body);
            }
            Op::Conditional { branches } => branches.iter_mut().for_each(|b| *b = f(*b)),
            Op::Fusion { calls, .. } => *calls = f(*calls),
            Op::CustomCall(cc) => cc.called_computations.iter_mut().for_each(|c| *c = f(*c)),
            Op::Async { calls: Some(c), .. } => *c = f(*c),
            Op::Collective { attrs, .. } => {
                if let Some(c) = &mut attrs.to_apply {
                    *c = f(*c);
                }
            }
            _ => {}
        }
    }

    /// True for ops computed independently per output element from the
    /// same-index elements of their operands.
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Unary(_)
                | Op::Binary(_)
                | Op::Compare { .. }
                | Op::Select
                | Op::Clamp
                | Op::Convert
                | Op::ReducePrecision { .. }
                | Op::StochasticConvert
        )
    }
}
