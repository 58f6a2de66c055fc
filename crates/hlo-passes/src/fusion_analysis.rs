//! Hero analysis of fusion computations, like XLA's `HloFusionAnalysis`:
//! which emitter a fused computation needs, and which instruction leads it.
//!
//! A fusion's outputs are its root, or the elements of a root `tuple`
//! (multi-output fusion). Each output has a *hero*: the instruction whose
//! emitter shapes the kernel. Walking down from an output through elementwise
//! ops, `reshape` and `bitcast-convert` of the same dimensions (the epilogue),
//! the hero is the first `reduce` or `scatter` met; otherwise the output is its
//! own hero and is computed by the elemental (loop) emitter.
//!
//! Everything that is not a hero or an epilogue is a prologue, evaluated
//! elementally at the index the hero or epilogue asks for: this includes
//! `reduce` and `reduce-window` that the fusion pass placed inside a prologue
//! (an elemental reduce loops over its reduced elements serially).

use hlo_ir::{CompId, Computation, InstrId, Module, Op, Opcode};
use std::collections::HashMap;

/// The emitter a kernel needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelKind {
    /// Every output element computed independently by the elemental emitter.
    Loop,
    /// Reduction hero(es), with an elemental prologue and an elementwise epilogue.
    /// Several outputs share the hero's operand dimensions and reduced dimensions.
    Reduce,
    /// A scatter hero at the root: one invocation per update element.
    Scatter,
    /// Standalone ops the fusion pass does not fuse: one kernel each.
    Dot,
    Convolution,
    Sort,
    /// Any other standalone op (`select-and-scatter`, `custom-call`, `rng-bit-generator`, ...).
    Other(Opcode),
}

impl KernelKind {
    /// The kernel kind of a standalone (unfused) instruction.
    pub fn of_op(op: &Op) -> KernelKind {
        match op {
            Op::Dot { .. } => KernelKind::Dot,
            Op::Convolution { .. } => KernelKind::Convolution,
            Op::Sort { .. } => KernelKind::Sort,
            Op::Reduce { .. } => KernelKind::Reduce,
            Op::Scatter { .. } => KernelKind::Scatter,
            op if op.is_elementwise() => KernelKind::Loop,
            op => KernelKind::Other(op.opcode()),
        }
    }
}

/// The outcome of hero analysis for one fusion computation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FusionAnalysis {
    pub kind: KernelKind,
    /// The outputs in output order: the root, or the elements of a root tuple.
    pub roots: Vec<InstrId>,
    /// The hero of each output (the output itself for loop outputs).
    pub heroes: Vec<InstrId>,
}

/// Analyses the fusion computation `comp`.
pub fn fusion_analysis(module: &Module, comp: CompId) -> FusionAnalysis {
    let comp = module.comp(comp);
    let root = comp.root_instr();
    let roots: Vec<InstrId> = match root.op {
        Op::Tuple => root.operands.clone(),
        _ => vec![comp.root],
    };
    let heroes: Vec<InstrId> = roots.iter().map(|&r| find_hero(comp, r)).collect();
    let kind = if heroes.iter().any(|&h| matches!(comp.instr(h).op, Op::Scatter { .. })) {
        KernelKind::Scatter
    } else if heroes.iter().any(|&h| matches!(comp.instr(h).op, Op::Reduce { .. })) {
        KernelKind::Reduce
    } else if roots.len() == 1 && !is_elemental(&comp.instr(roots[0]).op) {
        KernelKind::of_op(&comp.instr(roots[0]).op)
    } else {
        KernelKind::Loop
    };
    FusionAnalysis { kind, roots, heroes }
}

/// The kernel kind of the fusion computation `comp` (see [`fusion_analysis`]).
pub fn kernel_kind(module: &Module, comp: CompId) -> KernelKind {
    fusion_analysis(module, comp).kind
}

/// The hero of output `out`: the reduce or scatter reached through an
/// elementwise epilogue of the same dimensions, or `out` itself.
pub(crate) fn find_hero(comp: &Computation, out: InstrId) -> InstrId {
    let mut memo = HashMap::new();
    let mut cur = out;
    loop {
        let instr = comp.instr(cur);
        match &instr.op {
            Op::Reduce { .. } | Op::Scatter { .. } => return cur,
            op if is_epilogue_op(op) => {
                let dims = crate::util::dims(&instr.shape);
                let next = instr.operands.iter().copied().find(|&o| {
                    let operand = comp.instr(o);
                    crate::util::num_elements(&operand.shape) == crate::util::num_elements(&instr.shape)
                        && (crate::util::dims(&operand.shape) == dims || matches!(instr.op, Op::Reshape))
                        && contains_hero(comp, o, &mut memo)
                });
                match next {
                    Some(next) => cur = next,
                    None => return out,
                }
            }
            _ => return out,
        }
    }
}

fn is_epilogue_op(op: &Op) -> bool {
    op.is_elementwise() || matches!(op, Op::Reshape | Op::BitcastConvert | Op::Copy)
}

/// True when a reduce or scatter is reachable from `id` through epilogue ops.
fn contains_hero(comp: &Computation, id: InstrId, memo: &mut HashMap<InstrId, bool>) -> bool {
    if let Some(&known) = memo.get(&id) {
        return known;
    }
    let instr = comp.instr(id);
    let res = match &instr.op {
        Op::Reduce { .. } | Op::Scatter { .. } => true,
        op if is_epilogue_op(op) => instr.operands.iter().any(|&o| {
            crate::util::num_elements(&comp.instr(o).shape) == crate::util::num_elements(&instr.shape)
                && contains_hero(comp, o, memo)
        }),
        _ => false,
    };
    memo.insert(id, res);
    res
}

/// Ops the elemental emitter evaluates per output element.
pub(crate) fn is_elemental(op: &Op) -> bool {
    op.is_elementwise()
        || matches!(
            op,
            Op::Parameter { .. }
                | Op::Constant(_)
                | Op::Iota { .. }
                | Op::Broadcast { .. }
                | Op::Reshape
                | Op::Transpose { .. }
                | Op::Slice { .. }
                | Op::Concatenate { .. }
                | Op::Pad { .. }
                | Op::Reverse { .. }
                | Op::BitcastConvert
                | Op::Copy
                | Op::DynamicSlice { .. }
                | Op::DynamicUpdateSlice
                | Op::Gather { .. }
                | Op::Reduce { .. }
                | Op::ReduceWindow { .. }
                | Op::Map { .. }
                | Op::Tuple
                | Op::GetTupleElement { .. }
        )
}
