//! Which opcodes the interpreter evaluates; `docs/ops.md` is generated from
//! this list (and checked against it by `tests/ops_doc.rs`).

use hlo_ir::Opcode;

/// Opcodes the evaluator rejects with `InterpError::Unsupported`: host-transfer ops
/// with no defined value, batch norm (expanded by
/// `hlo-passes` before evaluation), and multi-device collectives.
const UNSUPPORTED: &[Opcode] = &[
    Opcode::AllGatherDone,
    Opcode::AllGatherStart,
    Opcode::AllReduceDone,
    Opcode::AllReduceStart,
    Opcode::BatchNormGrad,
    Opcode::BatchNormInference,
    Opcode::BatchNormTraining,
    Opcode::CollectivePermute,
    Opcode::CollectivePermuteDone,
    Opcode::CollectivePermuteStart,
    Opcode::CollectiveReduce,
    Opcode::Infeed,
    Opcode::Outfeed,
    Opcode::RaggedAllToAll,
    Opcode::Recv,
    Opcode::RecvDone,
    Opcode::Scan,
    Opcode::Send,
    Opcode::SendDone,
    Opcode::Shuffle,
];

/// True when [`crate::evaluate`] can run instructions with this opcode.
pub fn supports(opcode: Opcode) -> bool {
    !UNSUPPORTED.contains(&opcode)
}

/// True when the interpreter evaluates a `custom-call` to `target`: XLA's `TopK`, the annotations
/// that return their operand, the LAPACK routines JAX emits on CPU and XLA's `Qr` and
/// `ProductOfElementaryHouseholderReflectors` ([`crate::lapack`]).
pub fn supports_custom_call(target: &str) -> bool {
    matches!(
        target,
        "TopK"
            | "Sharding"
            | "SPMDFullToShardShape"
            | "SPMDShardToFullShape"
            | "annotate_device_placement"
            | "MoveToHost"
            | "MoveToDevice"
            | "xla_python_cpu_callback_identity"
    ) || crate::lapack::xla_target_routine(target).is_some()
        || crate::lapack::lapack_routine(target)
            .is_some_and(|(kind, routine)| crate::lapack::refusal(kind, routine).is_none())
}
