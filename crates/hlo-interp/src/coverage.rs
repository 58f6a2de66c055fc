//! Which opcodes the interpreter evaluates; `docs/ops.md` is generated from
//! this list (and checked against it by `tests/ops_doc.rs`).

use hlo_ir::Opcode;

/// Opcodes the evaluator rejects with `InterpError::Unsupported`: stateful or
/// host-transfer ops with no defined value, dynamic shapes, linear-algebra
/// expanders JAX's CPU path does not emit, and multi-device collectives.
const UNSUPPORTED: &[Opcode] = &[
    Opcode::AllGatherDone,
    Opcode::AllGatherStart,
    Opcode::AllReduceDone,
    Opcode::AllReduceStart,
    Opcode::BatchNormGrad,
    Opcode::BatchNormInference,
    Opcode::BatchNormTraining,
    Opcode::Cholesky,
    Opcode::CollectivePermute,
    Opcode::CollectivePermuteDone,
    Opcode::CollectivePermuteStart,
    Opcode::CollectiveReduce,
    Opcode::DynamicReshape,
    Opcode::Infeed,
    Opcode::Outfeed,
    Opcode::RaggedAllToAll,
    Opcode::RaggedDot,
    Opcode::Recv,
    Opcode::RecvDone,
    Opcode::Rng,
    Opcode::RngGetAndUpdateState,
    Opcode::ScaledDot,
    Opcode::Scan,
    Opcode::Send,
    Opcode::SendDone,
    Opcode::SetDimensionSize,
    Opcode::Shuffle,
    Opcode::StochasticConvert,
    Opcode::TriangularSolve,
];

/// True when [`crate::evaluate`] can run instructions with this opcode.
pub fn supports(opcode: Opcode) -> bool {
    !UNSUPPORTED.contains(&opcode)
}
