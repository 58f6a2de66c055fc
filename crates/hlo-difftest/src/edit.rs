//! Small IR editing tools shared by the generator, the fusion rewrite and the shrinker:
//! a checked instruction builder, dead-code removal with renumbering, and use replacement.

use hlo_ir::shape_inference::{infer_op, same_shape, signature};
use hlo_ir::{CompId, Computation, Instr, InstrId, Module, ModuleAttrs, Op, Shape, ShapeError, StackFrameIndex};
use std::collections::HashMap;

/// Appends instructions to one computation, inferring and checking each result shape
/// against the computations built so far (`comps`), and refusing invalid ones up front.
#[derive(Clone, Debug)]
pub(crate) struct Cb {
    pub comp: Computation,
}

impl Cb {
    pub(crate) fn new(name: impl Into<String>) -> Cb {
        Cb { comp: Computation::new(name) }
    }

    pub(crate) fn param(&mut self, shape: Shape) -> InstrId {
        let number = self.comp.params.len() as u64;
        let name = format!("p{number}");
        self.comp.push(Instr::new(name, shape, Op::Parameter { number }, Vec::new()))
    }

    pub(crate) fn shape(&self, id: InstrId) -> &Shape {
        &self.comp.instr(id).shape
    }

    /// Appends `op` if its shape checks out; `declared` supplies what only the instruction
    /// knows (a convert's element type, a broadcast's dimensions).
    pub(crate) fn push(
        &mut self,
        comps: &[Computation],
        op: Op,
        operands: &[InstrId],
        declared: Option<Shape>,
    ) -> Result<InstrId, ShapeError> {
        let shapes: Vec<&Shape> = operands.iter().map(|&o| &self.comp.instr(o).shape).collect();
        let callee = |c: CompId| comps.get(c.index()).and_then(signature);
        let shape = match infer_op(&op, &shapes, declared.as_ref(), &callee)? {
            Some(inferred) => {
                if let Some(d) = &declared {
                    if !same_shape(&inferred, d) {
                        return Err(ShapeError::Invalid {
                            op: op.opcode(),
                            message: format!("declared {d} but inferred {inferred}"),
                        });
                    }
                }
                inferred
            }
            None => declared.ok_or(ShapeError::NeedsDeclaredShape {
                op: op.opcode(),
                expected: "result",
                got: "none".into(),
            })?,
        };
        let name = format!("{}.{}", op.opcode().name(), self.comp.instrs.len());
        Ok(self.comp.push(Instr::new(name, shape, op, operands.to_vec())))
    }

    pub(crate) fn finish(mut self, root: InstrId) -> Computation {
        self.comp.root = root;
        self.comp
    }
}

/// A module from callees (in order) plus an entry computation appended last.
pub(crate) fn assemble(name: &str, mut comps: Vec<Computation>, entry: Computation) -> Module {
    comps.push(entry);
    let entry = CompId(comps.len() as u32 - 1);
    Module {
        name: name.to_string(),
        attrs: ModuleAttrs::default(),
        comps,
        entry,
        stack_frames: StackFrameIndex::default(),
        dynamic_results: None,
    }
}

/// Removes instructions nothing uses (parameters stay: they are the signature) and
/// computations nothing calls, renumbers what is left, and renames every instruction
/// `opcode.K` with one counter for the whole module so that printed programs stay tidy.
pub fn compact(module: &Module) -> Module {
    // Computations are reached from live instructions only after dead code is gone, so
    // clean each computation first and then recompute reachability from the result.
    let cleaned: Vec<Computation> = module.comps.iter().map(remove_dead).collect();
    let mut live = vec![false; cleaned.len()];
    let mut stack = vec![module.entry];
    while let Some(c) = stack.pop() {
        if std::mem::replace(&mut live[c.index()], true) {
            continue;
        }
        for instr in &cleaned[c.index()].instrs {
            stack.extend(instr.op.called_computations());
        }
    }
    let mut remap = HashMap::new();
    let mut comps = Vec::new();
    for (i, comp) in cleaned.into_iter().enumerate() {
        if live[i] {
            remap.insert(CompId(i as u32), CompId(comps.len() as u32));
            comps.push(comp);
        }
    }
    let mut counter = 0usize;
    for comp in &mut comps {
        for instr in &mut comp.instrs {
            instr.op.map_called_computations(|c| remap[&c]);
            if !matches!(instr.op, Op::Parameter { .. }) {
                instr.name = format!("{}.{counter}", instr.op.opcode().name());
                counter += 1;
            }
        }
    }
    // Parameter names only need to be unique within the module.
    for (ci, comp) in comps.iter_mut().enumerate() {
        for instr in &mut comp.instrs {
            if let Op::Parameter { number } = instr.op {
                instr.name = format!("p{ci}.{number}");
            }
        }
    }
    let entry = remap[&module.entry];
    let entry_comp = &mut comps[entry.index()];
    for instr in &mut entry_comp.instrs {
        if let Op::Parameter { number } = instr.op {
            instr.name = format!("p{number}");
        }
    }
    Module {
        name: module.name.clone(),
        attrs: ModuleAttrs::default(),
        comps,
        entry,
        stack_frames: StackFrameIndex::default(),
        dynamic_results: None,
    }
}

/// The computation without instructions its root does not depend on (parameters kept).
fn remove_dead(comp: &Computation) -> Computation {
    let n = comp.instrs.len();
    let mut live = vec![false; n];
    if comp.root.index() < n {
        live[comp.root.index()] = true;
    }
    for i in (0..n).rev() {
        let instr = &comp.instrs[i];
        if matches!(instr.op, Op::Parameter { .. }) {
            live[i] = true;
        }
        if live[i] {
            for o in instr.operands.iter().chain(&instr.meta.control_predecessors) {
                live[o.index()] = true;
            }
        }
    }
    let mut out = Computation::new(comp.name.clone());
    out.execution_thread = comp.execution_thread.clone();
    let mut map: Vec<Option<InstrId>> = vec![None; n];
    for (i, instr) in comp.instrs.iter().enumerate() {
        if !live[i] {
            continue;
        }
        let mut copy = instr.clone();
        copy.operands = instr.operands.iter().map(|o| map[o.index()].expect("operands precede users")).collect();
        copy.meta.control_predecessors =
            instr.meta.control_predecessors.iter().filter_map(|o| map[o.index()]).collect();
        map[i] = Some(out.push(copy));
    }
    out.root = map[comp.root.index()].expect("the root is live");
    out
}

/// Makes every user of `old` (and the root, if it is `old`) use `new` instead.
pub(crate) fn replace_uses(comp: &mut Computation, old: InstrId, new: InstrId) {
    for instr in comp.instrs.iter_mut().skip(old.index() + 1) {
        for o in &mut instr.operands {
            if *o == old {
                *o = new;
            }
        }
    }
    if comp.root == old {
        comp.root = new;
    }
}

/// The opcodes of every instruction that computes something (parameters, constants,
/// tuples and tuple accesses left out), sorted and deduplicated.
pub fn op_names(module: &Module) -> Vec<String> {
    let mut names: Vec<String> = module
        .comps
        .iter()
        .flat_map(|c| &c.instrs)
        .filter(|i| !matches!(i.op, Op::Parameter { .. } | Op::Constant(_) | Op::Tuple | Op::GetTupleElement { .. }))
        .map(|i| i.op.opcode().name().to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}
