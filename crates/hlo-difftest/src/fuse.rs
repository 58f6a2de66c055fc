//! Rewrites a program into the form of XLA's post-optimisation dumps: every computing entry
//! instruction inside a `fusion` (`kLoop`, or `kInput` with a reduce root), single-user
//! elementwise and shape-op producers merged into their consumer's fusion, small constants
//! pulled in, and `bitcast`s left in the entry where they alias buffers. The code generator
//! must compile that form directly ([`crate::exec::Mode::Direct`]).

use crate::edit::compact;
use hlo_ir::{CompId, Computation, FusionKind, Instr, InstrId, Module, Op};
use std::collections::HashMap;

/// The fused form of `module`, or `None` when its entry has control flow (whose bodies would
/// need the same rewrite) or nothing to fuse.
pub fn fuse_direct(module: &Module) -> Option<Module> {
    let entry = module.entry_comp();
    if entry.instrs.iter().any(|i| matches!(i.op, Op::While { .. } | Op::Conditional { .. } | Op::Fusion { .. })) {
        return None;
    }
    let n = entry.instrs.len();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, instr) in entry.instrs.iter().enumerate() {
        for o in &instr.operands {
            users[o.index()].push(i);
        }
    }
    let computes = |i: usize| {
        !matches!(
            entry.instrs[i].op,
            Op::Parameter { .. } | Op::Constant(_) | Op::Tuple | Op::GetTupleElement { .. } | Op::Bitcast
        )
    };
    // Group of each instruction: the index of its group's root.
    let mut group: Vec<Option<usize>> = vec![None; n];
    for i in (0..n).rev() {
        if !computes(i) || group[i].is_some() {
            continue;
        }
        group[i] = Some(i);
        let mut stack = vec![i];
        while let Some(j) = stack.pop() {
            for o in &entry.instrs[j].operands {
                let p = o.index();
                let mergeable = group[p].is_none()
                    && users[p].iter().all(|&u| group[u] == Some(i))
                    && users[p].iter().filter(|&&u| u == j).count() >= 1
                    && (fusible_producer(&entry.instrs[p].op) || small_constant(&entry.instrs[p]))
                    && entry.instrs[p].shape.as_array().is_some();
                if mergeable {
                    group[p] = Some(i);
                    stack.push(p);
                }
            }
        }
    }
    if !group.iter().any(|g| g.is_some()) {
        return None;
    }
    let mut comps: Vec<Computation> = module.comps.clone();
    let mut new_entry = Computation::new(entry.name.clone());
    let mut map: HashMap<usize, InstrId> = HashMap::new();
    for i in 0..n {
        let instr = &entry.instrs[i];
        match group[i] {
            Some(g) if g == i => {
                let members: Vec<usize> = (0..=i).filter(|&k| group[k] == Some(i)).collect();
                let (fused, operands) = outline(entry, &members, &format!("fused_computation.{}", comps.len()));
                let root_op = &fused.root_instr().op;
                let kind = if matches!(root_op, Op::Reduce { .. }) { FusionKind::Input } else { FusionKind::Loop };
                comps.push(fused);
                let calls = CompId(comps.len() as u32 - 1);
                let ops: Vec<InstrId> = operands.iter().map(|o| map[o]).collect();
                let name = format!("fusion.{i}");
                let id = new_entry.push(Instr::new(name, instr.shape.clone(), Op::Fusion { kind, calls }, ops));
                map.insert(i, id);
            }
            Some(_) => {}
            None => {
                let mut copy = instr.clone();
                copy.operands = instr.operands.iter().map(|o| map[&o.index()]).collect();
                copy.meta.control_predecessors.clear();
                map.insert(i, new_entry.push(copy));
            }
        }
    }
    new_entry.root = map[&entry.root.index()];
    comps.push(new_entry);
    let mut fused = module.clone();
    fused.comps = comps;
    fused.entry = CompId(fused.comps.len() as u32 - 1);
    let fused = compact(&fused);
    hlo_ir::verify::verify(&fused).ok()?;
    Some(fused)
}

/// Producers XLA fuses into their consumer: elementwise and shape ops.
fn fusible_producer(op: &Op) -> bool {
    op.is_elementwise()
        || matches!(
            op,
            Op::Broadcast { .. }
                | Op::Reshape
                | Op::Transpose { .. }
                | Op::Slice { .. }
                | Op::Pad { .. }
                | Op::Concatenate { .. }
                | Op::Reverse { .. }
                | Op::Iota { .. }
                | Op::DynamicSlice { .. }
        )
}

fn small_constant(instr: &Instr) -> bool {
    matches!(instr.op, Op::Constant(_)) && instr.shape.as_array().is_some_and(|a| a.num_elements() <= 1)
}

/// A computation evaluating `members` (entry indices in order, the last one the root) whose
/// parameters are the values the members read from outside; returns it and those values.
fn outline(entry: &Computation, members: &[usize], name: &str) -> (Computation, Vec<usize>) {
    let mut comp = Computation::new(name);
    let mut inside: HashMap<usize, InstrId> = HashMap::new();
    let mut outside: Vec<usize> = Vec::new();
    for &m in members {
        for o in &entry.instrs[m].operands {
            let o = o.index();
            if !members.contains(&o) && !outside.contains(&o) {
                outside.push(o);
            }
        }
    }
    for (k, &o) in outside.iter().enumerate() {
        let shape = entry.instrs[o].shape.clone();
        let id = comp.push(Instr::new(format!("param_{k}"), shape, Op::Parameter { number: k as u64 }, Vec::new()));
        inside.insert(o, id);
    }
    for &m in members {
        let instr = &entry.instrs[m];
        let mut copy = instr.clone();
        copy.operands = instr.operands.iter().map(|o| inside[&o.index()]).collect();
        copy.meta.control_predecessors.clear();
        let id = comp.push(copy);
        inside.insert(m, id);
    }
    comp.root = inside[members.last().expect("a group has its root")];
    (comp, outside)
}
