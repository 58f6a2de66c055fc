//! Which opcodes the Vulkan path lowers; `docs/ops.md` is generated from this
//! list (and checked against it by `tests/ops_doc.rs`). Anything not listed
//! makes [`crate::compile`] return `CodegenError::Unsupported` naming the op.

use crate::Target;
use hlo_ir::Opcode;

/// How far the Vulkan path handles an opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    Full,
    /// Handled in the common forms; the note says what is not.
    Partial(&'static str),
    None,
}

/// Opcodes lowered to SPIR-V in every form the samples and op tests exercise.
const FULL: &[Opcode] = &[
    Opcode::Abs,
    Opcode::Acos,
    Opcode::Acosh,
    Opcode::Add,
    Opcode::AddDependency,
    Opcode::AfterAll,
    Opcode::And,
    Opcode::Asin,
    Opcode::Asinh,
    Opcode::Atan,
    Opcode::Atan2,
    Opcode::Atanh,
    // Made synchronous by `single-device`: the wrapped computation is called (and inlined) at
    // the start, the update passes the value on, the done reads the result.
    Opcode::AsyncDone,
    Opcode::AsyncStart,
    Opcode::AsyncUpdate,
    // Expanded into elementwise ops and sums by `batch-norm-expander` before code generation.
    Opcode::BatchNormGrad,
    Opcode::BatchNormInference,
    Opcode::BatchNormTraining,
    Opcode::Bitcast,
    Opcode::BitcastConvert,
    Opcode::Broadcast,
    Opcode::Call,
    Opcode::Cbrt,
    Opcode::Ceil,
    // Expanded into while loops of dynamic slices, dots and selects by `linalg-expander`.
    Opcode::Cholesky,
    Opcode::Clamp,
    Opcode::Clz,
    Opcode::Compare,
    // Complex arrays run as (re, im) pairs of real arrays (`lower-complex`); entry parameters
    // and results keep numpy's interleaved layout.
    Opcode::Complex,
    Opcode::Concatenate,
    Opcode::Constant,
    Opcode::Convert,
    Opcode::Convolution,
    Opcode::Copy,
    // `single-device`: a copy finished when it starts.
    Opcode::CopyDone,
    Opcode::CopyStart,
    Opcode::Cos,
    Opcode::Cosh,
    Opcode::Divide,
    Opcode::Dot,
    Opcode::DynamicSlice,
    Opcode::DynamicUpdateSlice,
    Opcode::Erf,
    Opcode::Exp,
    Opcode::Expm1,
    Opcode::Floor,
    Opcode::Fusion,
    Opcode::Gather,
    Opcode::GetTupleElement,
    Opcode::Imag,
    Opcode::Iota,
    Opcode::IsFinite,
    Opcode::Log,
    Opcode::Log1p,
    Opcode::Logistic,
    Opcode::Map,
    Opcode::Maximum,
    Opcode::Minimum,
    Opcode::Multiply,
    // From half-width partial products by `mulhi-expander` (8- to 64-bit integers).
    Opcode::Mulhi,
    Opcode::Negate,
    Opcode::Not,
    Opcode::OptimizationBarrier,
    // A dynamic size is the `s32[]` that `dynamic-padder` carries, a static one a constant; a domain is
    // its operand (`algebraic-simplification`).
    Opcode::GetDimensionSize,
    Opcode::Domain,
    Opcode::Or,
    Opcode::Pad,
    Opcode::Parameter,
    // The constant 0 on one device (`single-device`).
    Opcode::PartitionId,
    Opcode::ReplicaId,
    Opcode::PopulationCount,
    Opcode::Power,
    Opcode::Real,
    Opcode::Reduce,
    Opcode::ReducePrecision,
    Opcode::ReduceWindow,
    Opcode::Remainder,
    Opcode::Reshape,
    Opcode::Reverse,
    // Expanded into elementwise ThreeFry/Philox arithmetic by `rng-bit-generator-expander`.
    Opcode::RngBitGenerator,
    Opcode::RoundNearestAfz,
    Opcode::RoundNearestEven,
    Opcode::Rsqrt,
    Opcode::Select,
    Opcode::ShiftLeft,
    Opcode::ShiftRightArithmetic,
    Opcode::ShiftRightLogical,
    Opcode::Sign,
    Opcode::Sin,
    Opcode::Sinh,
    Opcode::Slice,
    Opcode::Sort,
    Opcode::Sqrt,
    Opcode::Subtract,
    Opcode::Tan,
    Opcode::Tanh,
    Opcode::TopK,
    Opcode::Transpose,
    // Expanded into a while loop of forward substitution by `linalg-expander`.
    Opcode::TriangularSolve,
    Opcode::Tuple,
    Opcode::Xor,
];

/// Opcodes handled in their common forms.
const PARTIAL: &[(Opcode, &str)] = &[
    (
        Opcode::Conditional,
        "pred or s32/u32 index selectors, decided on the device: only the taken branch's dispatches run",
    ),
    (
        Opcode::CustomCall,
        "XLA's `TopK` target, the LAPACK targets JAX emits on CPU \
         (`lapack_{s,d}{potrf,getrf,geqrf,orgqr,trsm,syevd,gesdd,geev}_ffi` and the complex \
         `lapack_{c,z}{potrf,getrf,geqrf,ungqr,trsm,heevd,gesdd,geev}_ffi`) and XLA's `Qr` and \
         `ProductOfElementaryHouseholderReflectors` (JAX's lowering of QR off CPU and GPU), expanded into \
         while loops by `linalg-expander`; other LAPACK targets are refused by name",
    ),
    (
        Opcode::Fft,
        "all four types over 1-3 dimensions, as dots with DFT matrices (lengths split Cooley-Tukey style); a prime \
         factor of a length above 2048 is refused",
    ),
    (
        Opcode::DynamicReshape,
        "bounded sizes, constant or given at run time (`dynamic-padder`): each result element gathered from the \
         operand's valid region in row-major order (a static reshape of a static operand is a `reshape`); unbounded \
         (`?`) sizes are refused",
    ),
    (
        Opcode::SetDimensionSize,
        "any size within the bound, constant or given at run time (`dynamic-padder`): the array stays padded to \
         its bound with its size carried beside it; reductions, reduce-windows and dots over the dimension mask \
         the padding, results are cut to their size; ops that would read the padding otherwise (a sort, gather, \
         reverse, pad or concatenation along it, ...) and dynamic entry parameters are refused by name, and so is a \
         size outside the bound (when compiling, or when the run gives it)",
    ),
    (
        Opcode::StochasticConvert,
        "float to signed integer types (8 to 64 bits), as XLA's `StochasticConvertDecomposer` writes it; XLA has \
         no float-to-float form either",
    ),
    (
        Opcode::RaggedDot,
        "rows of `lhs` ragged (`lhs [m, k]`, `rhs [g, k, n]`, no batch dimensions), as a dot with every group and \
         a mask (`ragged-dot-expander`); ragged contracting or batch dimensions are refused",
    ),
    (
        Opcode::Scatter,
        "64-bit elements with `shaderBufferInt64Atomics` (native add, min, max and bitwise atomics; other \
         combiners as a 64-bit compare-exchange loop) or an overwriting combiner; a variadic scatter (several \
         operands) runs one invocation per operand element folding in every update in order: deterministic but \
         slow (operand x updates work); past the device's storage-buffer bindings it runs as narrower scatters \
         (`split-wide-reduces`: by the closure of what each result reads where the combiner couples them), \
         refused only when one result's closure alone needs more",
    ),
    (Opcode::SelectAndScatter, "windows without dilation"),
    (
        Opcode::Rng,
        "uniform floats and integers, normal floats, as the interpreter defines them (`rng-expander`: Philox bits \
         from a hidden state `rng-state-threading` threads through the entry, loop bodies, loop conditions \
         (`rng-loop-conditions`) and conditional branches); drawn in a reducer, comparator or combiner it is \
         refused (those are applied as often and in the order the implementation chooses)",
    ),
    (
        Opcode::ScaledDot,
        "lhs, rhs and their block scales, as the interpreter defines it (`scaled-dot-expander`: each operand times \
         its scale repeated over blocks, then a dot); the six-operand form with NVFP4 global scales is refused",
    ),
    (
        Opcode::RngGetAndUpdateState,
        "in the entry computation, loop bodies, loop conditions and conditional branches (`rng-state-threading`, \
         `rng-loop-conditions`); elsewhere it is refused",
    ),
    (
        Opcode::While,
        "elementwise bodies run as one in-shader loop; others as device loops (a known trip count replayed, or one the \
         condition decides on the device, checked by the host between batches); a device loop inside another device \
         loop or a conditional is decided by the host at each step",
    ),
];

/// How far the Vulkan path handles `opcode`.
pub fn coverage(opcode: Opcode) -> Coverage {
    if FULL.contains(&opcode) {
        Coverage::Full
    } else if let Some(&(_, note)) = PARTIAL.iter().find(|(op, _)| *op == opcode) {
        Coverage::Partial(note)
    } else {
        Coverage::None
    }
}

/// True when the Vulkan path handles at least the common forms of `opcode`.
pub fn supports(opcode: Opcode) -> bool {
    coverage(opcode) != Coverage::None
}

/// Why `target` cannot run `opcode` although the Vulkan path lowers it, if it cannot: checked
/// before the passes expand the op, so that the refusal names it rather than its expansion.
pub fn refusal_on(opcode: Opcode, target: &Target) -> Option<&'static str> {
    match opcode {
        Opcode::RngBitGenerator | Opcode::Rng | Opcode::RngGetAndUpdateState if !target.shader_int64 => {
            Some("its state is u64 and its expansion multiplies in u64, but the device lacks shaderInt64")
        }
        _ => None,
    }
}
