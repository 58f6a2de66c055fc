//! Automatic reduction of a failing program (delta debugging over the entry computation).
//!
//! Candidates, tried in this order until none is accepted or the budget runs out:
//! - keep one output of a tuple root, or drop one; make an earlier value the root;
//! - replace an instruction by a new parameter carrying the value the interpreter computes
//!   for it (so the data flowing into the rest of the program is unchanged), or by a constant;
//! - bypass an instruction by one of its operands of the same shape;
//! - shrink a parameter's dimensions (halve, to one, minus one), re-inferring the shapes
//!   downstream and keeping the leading block of its data;
//! - simplify a parameter's data (all zeros, all ones, its first value everywhere).
//!
//! A candidate is accepted when it verifies and `still_fails` says the same kind of failure
//! persists. Unused parameters are dropped after each step. Every accepted step makes the
//! program smaller (instructions, elements, or distinct input values), so shrinking ends.

use crate::edit::{compact, replace_uses};
use crate::exec::{host_array, literals};
use hlo_ir::shape_inference::infer_op;
use hlo_ir::{ArrayShape, CompId, Computation, Instr, InstrId, Literal, Module, Op, Shape};
use hlo_run::npy::HostArray;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// A program and its inputs.
#[derive(Clone, Debug)]
pub struct Program {
    pub module: Module,
    pub inputs: Vec<HostArray>,
}

/// How long shrinking may go on: a number of candidate runs (which makes the result
/// reproducible on any machine) and a wall-clock limit as a safety net.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub max_tries: usize,
    pub max_time: Duration,
}

/// Reduces `start` while `still_fails` holds, within `budget`; `on_try` is called
/// before every candidate (a heartbeat for supervising processes).
pub fn shrink(
    start: Program,
    still_fails: &mut dyn FnMut(&Program) -> bool,
    budget: Budget,
    on_try: &mut dyn FnMut(),
) -> Program {
    let deadline = Instant::now() + budget.max_time;
    let mut tries = 0;
    let mut cur = start;
    let mut tried: HashSet<String> = HashSet::new();
    'outer: loop {
        for cand in candidates(&cur) {
            if Instant::now() > deadline || tries >= budget.max_tries {
                break 'outer;
            }
            let Some(cand) = finish(cand) else { continue };
            if !smaller(&cand, &cur) {
                continue;
            }
            // The same text and inputs are not worth a second run.
            let key = format!("{}{:?}", hlo_ir::print_module(&cand.module), input_digest(&cand.inputs));
            if !tried.insert(key) {
                continue;
            }
            on_try();
            tries += 1;
            if still_fails(&cand) {
                cur = cand;
                continue 'outer;
            }
        }
        break;
    }
    cur
}

fn input_digest(inputs: &[HostArray]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for a in inputs {
        for &b in &a.bytes {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// Instructions, elements and distinct input values, compared in that order.
fn size(p: &Program) -> (usize, u64, usize) {
    let instrs = p.module.comps.iter().map(|c| c.instrs.iter().filter(|i| !is_param(i)).count()).sum();
    let elems = p.inputs.iter().map(|a| a.num_elements()).sum::<u64>()
        + p.module.entry_comp().instrs.iter().filter_map(|i| i.shape.as_array()).map(|a| a.num_elements()).sum::<u64>();
    let distinct = p
        .inputs
        .iter()
        .map(|a| {
            let w = a.dtype.byte_size().max(1);
            a.bytes.chunks(w).collect::<HashSet<_>>().len()
        })
        .sum();
    (instrs, elems, distinct)
}

fn smaller(a: &Program, b: &Program) -> bool {
    size(a) < size(b)
}

fn is_param(i: &Instr) -> bool {
    matches!(i.op, Op::Parameter { .. })
}

/// Compacts, drops unused parameters and verifies.
fn finish(p: Program) -> Option<Program> {
    let module = compact(&p.module);
    let p = drop_unused_params(Program { module, inputs: p.inputs })?;
    hlo_ir::verify::verify(&p.module).ok()?;
    Some(p)
}

fn drop_unused_params(p: Program) -> Option<Program> {
    let entry = p.module.entry_comp();
    let mut used = vec![false; entry.instrs.len()];
    for i in &entry.instrs {
        for o in &i.operands {
            used[o.index()] = true;
        }
    }
    used[entry.root.index()] = true;
    if entry.params.iter().all(|id| used[id.index()]) {
        return Some(p);
    }
    let mut module = p.module.clone();
    let comp = module.comp_mut(module.entry);
    let mut inputs = Vec::new();
    let mut next = 0u64;
    let old_params = comp.params.clone();
    for (k, &id) in old_params.iter().enumerate() {
        if used[id.index()] {
            comp.instr_mut(id).op = Op::Parameter { number: next };
            inputs.push(p.inputs.get(k)?.clone());
            next += 1;
        } else {
            // An unused parameter becomes a constant so that ids stay put; compact drops it.
            let shape = comp.instr(id).shape.as_array()?.clone();
            comp.instr_mut(id).op = Op::Constant(Box::new(Literal::zeros(shape)));
        }
    }
    Some(Program { module: compact(&module), inputs })
}

/// Every candidate reduction of `p`, most promising first.
fn candidates(p: &Program) -> Vec<Program> {
    let mut out = Vec::new();
    let entry = p.module.entry_comp();
    let root = entry.root_instr();
    // Outputs.
    if matches!(root.op, Op::Tuple) {
        for (k, &o) in root.operands.iter().enumerate() {
            let mut m = p.module.clone();
            m.comp_mut(m.entry).root = o;
            out.push(Program { module: m, inputs: p.inputs.clone() });
            if root.operands.len() > 2 {
                let mut m = p.module.clone();
                let r = m.comp(m.entry).root;
                m.comp_mut(m.entry).instr_mut(r).operands.remove(k);
                let shapes: Vec<Shape> =
                    m.comp(m.entry).instr(r).operands.iter().map(|&o| m.comp(m.entry).instr(o).shape.clone()).collect();
                m.comp_mut(m.entry).instr_mut(r).shape = Shape::Tuple(shapes);
                out.push(Program { module: m, inputs: p.inputs.clone() });
            }
        }
    }
    // Programs cut short: any earlier array value as the root.
    let mut cut: Vec<InstrId> = entry.ids().filter(|&id| id != entry.root).collect();
    cut.reverse();
    for id in cut {
        let instr = entry.instr(id);
        if !is_param(instr) && !matches!(instr.op, Op::Constant(_)) && instr.shape.as_array().is_some() {
            let mut m = p.module.clone();
            m.comp_mut(m.entry).root = id;
            out.push(Program { module: m, inputs: p.inputs.clone() });
        }
    }
    // Instructions, from the root backwards.
    let mut ids: Vec<InstrId> = entry.ids().collect();
    ids.reverse();
    for &id in &ids {
        let instr = entry.instr(id);
        if let Op::GetTupleElement { index } = instr.op {
            // get-tuple-element of a tuple built right here: use the element itself.
            let t = entry.instr(instr.operands[0]);
            if let (Op::Tuple, Some(&elem)) = (&t.op, t.operands.get(index as usize)) {
                let mut m = p.module.clone();
                replace_uses(m.comp_mut(m.entry), id, elem);
                out.push(Program { module: m, inputs: p.inputs.clone() });
            }
            continue;
        }
        if is_param(instr) || matches!(instr.op, Op::Tuple) {
            continue;
        }
        if let Op::Constant(_) = instr.op {
            if let Some(a) = instr.shape.as_array() {
                if a.num_elements() > 1 {
                    let mut m = p.module.clone();
                    m.comp_mut(m.entry).instr_mut(id).op = Op::Constant(Box::new(Literal::zeros(a.clone())));
                    out.push(Program { module: m, inputs: p.inputs.clone() });
                }
            }
            continue;
        }
        for &o in &instr.operands {
            if entry.instr(o).shape == instr.shape {
                let mut m = p.module.clone();
                replace_uses(m.comp_mut(m.entry), id, o);
                out.push(Program { module: m, inputs: p.inputs.clone() });
            }
        }
        if let Some(value) = value_of(p, id) {
            if value.num_elements() <= 8 {
                if let Ok(lit) = hlo_interp::literal_from_bytes(&value.shape(), &value.bytes) {
                    let mut m = p.module.clone();
                    let comp = m.comp_mut(m.entry);
                    comp.instr_mut(id).op = Op::Constant(Box::new(lit));
                    comp.instr_mut(id).operands.clear();
                    out.push(Program { module: m, inputs: p.inputs.clone() });
                }
            }
            out.push(param_for(p, id, value));
        }
    }
    // Parameter dimensions.
    for (k, &pid) in entry.params.iter().enumerate() {
        let Some(a) = entry.instr(pid).shape.as_array() else { continue };
        for d in 0..a.rank() {
            let n = a.dims[d];
            for smaller in [1, n / 2, n - 1] {
                if smaller >= 1 && smaller < n {
                    let mut dims = a.dims.clone();
                    dims[d] = smaller;
                    if let Some(c) = resize_param(p, k, &dims) {
                        out.push(c);
                    }
                }
            }
        }
    }
    // Parameter data.
    for (k, a) in p.inputs.iter().enumerate() {
        let w = a.dtype.byte_size().max(1);
        let first = a.bytes.get(..w).map(|b| b.to_vec()).unwrap_or_default();
        let one = one_bytes(a.dtype);
        for fill in [vec![0u8; w], one, first] {
            if fill.len() != w {
                continue;
            }
            let bytes: Vec<u8> = fill.iter().copied().cycle().take(a.bytes.len()).collect();
            if bytes != a.bytes {
                let mut inputs = p.inputs.clone();
                inputs[k].bytes = bytes;
                out.push(Program { module: p.module.clone(), inputs });
            }
        }
    }
    out
}

fn one_bytes(dtype: hlo_ir::DType) -> Vec<u8> {
    use hlo_ir::DType as D;
    match dtype {
        D::F32 => 1.0f32.to_le_bytes().to_vec(),
        D::F64 => 1.0f64.to_le_bytes().to_vec(),
        D::F16 => half::f16::ONE.to_le_bytes().to_vec(),
        D::BF16 => half::bf16::ONE.to_le_bytes().to_vec(),
        d => {
            let mut v = vec![0u8; d.byte_size().max(1)];
            v[0] = 1;
            v
        }
    }
}

/// The interpreter's value of entry instruction `id` (arrays only).
fn value_of(p: &Program, id: InstrId) -> Option<HostArray> {
    p.module.entry_comp().instr(id).shape.as_array()?;
    let mut m = p.module.clone();
    m.comp_mut(m.entry).root = id;
    let args = literals(&m, &p.inputs).ok()?;
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        hlo_interp::evaluate_with(&m, &args, &hlo_interp::Options::xla_cpu()).ok()
    }));
    host_array(&run.ok()??)
}

/// `p` with instruction `id` replaced by a new last parameter holding `value`.
fn param_for(p: &Program, id: InstrId, value: HostArray) -> Program {
    let mut module = p.module.clone();
    let entry = module.entry;
    let comp = module.comp(entry);
    let number = comp.params.len() as u64;
    let shape = comp.instr(id).shape.clone();
    let (mut shifted, param) = insert_front(comp, Instr::new("p", shape, Op::Parameter { number }, Vec::new()));
    replace_uses(&mut shifted, InstrId::from_index(id.index() + 1), param);
    *module.comp_mut(entry) = shifted;
    let mut inputs = p.inputs.clone();
    inputs.push(value);
    Program { module, inputs }
}

/// `comp` with `instr` as its first instruction (every other id shifted by one).
fn insert_front(comp: &Computation, instr: Instr) -> (Computation, InstrId) {
    let mut out = Computation::new(comp.name.clone());
    let first = out.push(instr);
    for i in &comp.instrs {
        let mut copy = i.clone();
        copy.operands = i.operands.iter().map(|o| InstrId::from_index(o.index() + 1)).collect();
        copy.meta.control_predecessors =
            i.meta.control_predecessors.iter().map(|o| InstrId::from_index(o.index() + 1)).collect();
        out.push(copy);
    }
    out.root = InstrId::from_index(comp.root.index() + 1);
    (out, first)
}

/// `p` with parameter `k` resized to `dims` (the leading block of its data), shapes re-inferred.
fn resize_param(p: &Program, k: usize, dims: &[i64]) -> Option<Program> {
    let mut module = p.module.clone();
    let entry = module.entry;
    let callees: Vec<Option<hlo_ir::ProgramShape>> =
        module.comps.iter().map(hlo_ir::shape_inference::signature).collect();
    let comp = module.comp_mut(entry);
    let pid = *comp.params.get(k)?;
    let old = comp.instr(pid).shape.as_array()?.clone();
    comp.instr_mut(pid).shape = Shape::Array(ArrayShape::new(old.dtype, dims.to_vec()));
    for i in pid.index() + 1..comp.instrs.len() {
        let id = InstrId::from_index(i);
        let instr = comp.instr(id).clone();
        if is_param(&instr) || matches!(instr.op, Op::Constant(_) | Op::Iota { .. }) {
            continue;
        }
        let shapes: Vec<&Shape> = instr.operands.iter().map(|&o| &comp.instr(o).shape).collect();
        let declared = match (&instr.op, &instr.shape) {
            (Op::Broadcast { dimensions }, Shape::Array(a)) => {
                let operand = shapes[0].as_array()?;
                let mut out = a.dims.clone();
                for (j, &d) in dimensions.iter().enumerate() {
                    out[d as usize] = operand.dims[j];
                }
                Shape::Array(ArrayShape::new(a.dtype, out))
            }
            (Op::Reshape | Op::Bitcast, Shape::Array(a)) => {
                if shapes[0].as_array()?.num_elements() != a.num_elements() {
                    return None;
                }
                instr.shape.clone()
            }
            _ => instr.shape.clone(),
        };
        let callee = |c: CompId| callees.get(c.index()).cloned().flatten();
        let shape = infer_op(&instr.op, &shapes, Some(&declared), &callee).ok()?.unwrap_or(declared);
        comp.instr_mut(id).shape = shape;
    }
    let mut inputs = p.inputs.clone();
    inputs[k] = leading_block(&p.inputs[k], dims)?;
    Some(Program { module, inputs })
}

/// The elements of `a` whose index is below `dims` in every dimension.
fn leading_block(a: &HostArray, dims: &[i64]) -> Option<HostArray> {
    let w = a.dtype.byte_size().max(1);
    let rank = a.dims.len();
    if dims.len() != rank {
        return None;
    }
    let n: i64 = dims.iter().product();
    let mut bytes = Vec::with_capacity(n as usize * w);
    let mut idx = vec![0i64; rank];
    for _ in 0..n {
        let mut lin = 0i64;
        for (&extent, &i) in a.dims.iter().zip(&idx) {
            lin = lin * extent + i;
        }
        let at = lin as usize * w;
        bytes.extend_from_slice(a.bytes.get(at..at + w)?);
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < dims[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Some(HostArray { dtype: a.dtype, dims: dims.to_vec(), bytes })
}
