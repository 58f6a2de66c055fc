//! `rng-state-threading`: the hidden state of `rng-get-and-update-state` (a 128-bit counter
//! that XLA keeps process-global) becomes a `u64[2]` value the program threads through: the
//! entry computation starts it at `hlo_interp::rng_distribution::RNG_INITIAL_STATE`, each state
//! op reads the current value and passes on the value advanced by its `delta` (a 128-bit add),
//! a `while` whose body draws numbers carries the state as one more element of its tuple, and
//! a `conditional` one of whose branches draws numbers passes it to every branch and back.
//!
//! The order is the interpreter's: state ops the root does not need are skipped, the others
//! advance the state in arena order, and a loop body's once per iteration; so the device draws
//! the interpreter's numbers, and the same numbers on every run of a module.
//!
//! Pre-condition: calls are inlined; loop conditions draw nothing (`rng-loop-conditions` moves
//! their draws into the loop body). Post-condition: no `rng-get-and-update-state` remains.
//! A state op anywhere else (the computation of a reduce, sort, map or scatter) is refused by
//! name: how many times and in what order those apply their computation is the implementation's
//! choice, so no threading of the state could draw the interpreter's numbers there.

use crate::util::{compact, NameUniquer};
use crate::PassError;
use hlo_ir::{
    ArrayData, ArrayShape, BinaryOp, CompId, CompareDirection, CompareType, Computation, DType, Instr, InstrId,
    Literal, Module, Op, Shape, SliceDim,
};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("rng-state-threading").entered();
    let n = module.comps.len();
    let mut needs = vec![None; n];
    for c in 0..n {
        needs_state(module, CompId(c as u32), &mut needs, 0)?;
    }
    let needs: Vec<bool> = needs.into_iter().map(|x| x.unwrap_or(false)).collect();
    if !needs.iter().any(|&x| x) {
        return Ok(false);
    }
    let threaded = check_callers(module, &needs)?;
    let mut t = Threader { names: NameUniquer::new(module), needs, threaded, done: vec![false; n] };
    let entry = module.entry;
    let value = hlo_interp::rng_distribution::RNG_INITIAL_STATE;
    let lit =
        Literal::array(ArrayShape::new(DType::U64, vec![2]), ArrayData::U64(vec![value as u64, (value >> 64) as u64]));
    let comp = module.comp_mut(entry);
    let name = t.names.fresh("rng_state");
    let s0 = comp.push(Instr::new(name, state_shape(), Op::Constant(Box::new(lit)), vec![]));
    t.thread(module, entry, s0)?;
    compact(module.comp_mut(entry))?;
    Ok(true)
}

fn state_shape() -> Shape {
    Shape::Array(ArrayShape::new(DType::U64, vec![2]))
}

/// Whether computation `c` (or a computation it calls) has a state op; fills `memo`.
fn needs_state(module: &Module, c: CompId, memo: &mut [Option<bool>], depth: usize) -> Result<bool, PassError> {
    if let Some(known) = memo[c.index()] {
        return Ok(known);
    }
    if depth > 64 {
        return Err(PassError::Internal("rng-state-threading: computations call each other too deeply".into()));
    }
    let mut res = false;
    for instr in &module.comp(c).instrs {
        res |= matches!(instr.op, Op::RngGetAndUpdateState { .. });
        for callee in instr.op.called_computations() {
            res |= needs_state(module, callee, memo, depth + 1)?;
        }
    }
    memo[c.index()] = Some(res);
    Ok(res)
}

/// Refuses a state op reached other than through the entry, `while` bodies and `conditional`
/// branches, and a branch that takes the state but is also called otherwise.
fn check_callers(module: &Module, needs: &[bool]) -> Result<Vec<bool>, PassError> {
    let mut threaded = vec![false; module.comps.len()];
    for instr in module.comps.iter().flat_map(|c| &c.instrs) {
        if let Op::Conditional { branches } = &instr.op {
            if branches.iter().any(|b| needs[b.index()]) {
                branches.iter().for_each(|b| threaded[b.index()] = true);
            }
        }
    }
    for comp in &module.comps {
        for instr in &comp.instrs {
            let refuse = |place: &str| PassError::Unsupported {
                pass: "rng-state-threading",
                op: format!("{} (%{})", instr.op.opcode().name(), instr.name),
                reason: format!(
                    "random numbers drawn in {place} (the hidden rng state is threaded only through the entry \
                     computation and while bodies; try --backend interp)"
                ),
            };
            match &instr.op {
                Op::While { condition, .. } if needs[condition.index()] => {
                    return Err(refuse("a loop condition (run `rng-loop-conditions` first)"))
                }
                Op::While { condition, body } if threaded[condition.index()] || threaded[body.index()] => {
                    return Err(refuse("a computation that is both a loop's and a conditional's"))
                }
                Op::While { .. } => {}
                Op::Conditional { branches } => {
                    let all = branches.iter().all(|b| threaded[b.index()]);
                    if branches.iter().any(|b| threaded[b.index()]) && !all {
                        return Err(refuse("a computation shared by several conditionals"));
                    }
                }
                op => {
                    if op.called_computations().iter().any(|c| needs[c.index()] || threaded[c.index()]) {
                        let place = format!(
                            "a computation called by `{}`, which applies it as often and in the order the \
                             implementation chooses",
                            op.opcode().name()
                        );
                        return Err(refuse(&place));
                    }
                }
            }
        }
    }
    Ok(threaded)
}

struct Threader {
    names: NameUniquer,
    needs: Vec<bool>,
    /// Branches of conditionals that pass the state (one of their branches draws numbers).
    threaded: Vec<bool>,
    /// Computations whose parameter already carries the state (a body or condition shared by loops).
    done: Vec<bool>,
}

impl Threader {
    fn push(&mut self, comp: &mut Computation, shape: Shape, op: Op, operands: Vec<InstrId>) -> InstrId {
        let name = self.names.fresh("rng_state");
        comp.push(Instr::new(name, shape, op, operands))
    }

    /// Threads the state through computation `c`, starting from the value `s` (an instruction of
    /// `c`); returns the final state. The caller compacts `c` once it has used that value.
    fn thread(&mut self, module: &mut Module, c: CompId, mut s: InstrId) -> Result<InstrId, PassError> {
        let original = module.comp(c).instrs.len();
        let live = live_from_root(module.comp(c));
        for (i, &is_live) in live.iter().enumerate().take(original) {
            let id = InstrId::from_index(i);
            match module.comp(c).instr(id).op.clone() {
                Op::RngGetAndUpdateState { delta } => {
                    let comp = module.comp_mut(c);
                    replace_uses(comp, id, s, original);
                    if is_live {
                        s = self.advance(comp, s, delta);
                    }
                }
                Op::While { condition, body } if self.needs[body.index()] => {
                    for callee in [condition, body] {
                        if !self.done[callee.index()] {
                            self.done[callee.index()] = true;
                            self.extend_param(module, callee, callee == body)?;
                        }
                    }
                    let comp = module.comp_mut(c);
                    let operand = comp.instr(id).operands[0];
                    let packed = self.pack(comp, operand, s);
                    let old_shape = comp.instr(id).shape.clone();
                    let new_shape = comp.instr(packed).shape.clone();
                    comp.instr_mut(id).shape = new_shape;
                    comp.instr_mut(id).operands[0] = packed;
                    let unpacked = self.unpack(comp, id, &old_shape);
                    replace_uses(comp, id, unpacked, original);
                    if is_live {
                        let index = comp.instr(packed).operands.len() as u64 - 1;
                        s = self.push(comp, state_shape(), Op::GetTupleElement { index }, vec![id]);
                    }
                }
                Op::Conditional { branches } if branches.iter().any(|b| self.threaded[b.index()]) => {
                    // Every branch takes the state and returns it, advanced or not.
                    for &branch in &branches {
                        if !self.done[branch.index()] {
                            self.done[branch.index()] = true;
                            self.extend_param(module, branch, true)?;
                        }
                    }
                    let comp = module.comp_mut(c);
                    for k in 1..comp.instr(id).operands.len() {
                        let operand = comp.instr(id).operands[k];
                        let packed = self.pack(comp, operand, s);
                        comp.instr_mut(id).operands[k] = packed;
                    }
                    let old_shape = comp.instr(id).shape.clone();
                    comp.instr_mut(id).shape = extended(&old_shape);
                    let unpacked = self.unpack(comp, id, &old_shape);
                    replace_uses(comp, id, unpacked, original);
                    if is_live {
                        let index = elements(&old_shape) as u64;
                        s = self.push(comp, state_shape(), Op::GetTupleElement { index }, vec![id]);
                    }
                }
                _ => {}
            }
        }
        let comp = module.comp_mut(c);
        for instr in comp.instrs.iter_mut().skip(original) {
            if matches!(instr.op, Op::RngGetAndUpdateState { .. }) {
                return Err(PassError::Internal("rng-state-threading left a state op".into()));
            }
        }
        // Dead state ops (now unused) and unpacking tuples go when the caller compacts.
        comp.instrs.iter_mut().take(original).for_each(|instr| {
            if matches!(instr.op, Op::RngGetAndUpdateState { .. }) {
                instr.op = Op::Tuple;
                instr.shape = Shape::Tuple(vec![]);
            }
        });
        Ok(s)
    }

    /// Gives computation `c`'s parameter the state as one more tuple element; in a loop body,
    /// threads the state from it to one more element of the root.
    fn extend_param(&mut self, module: &mut Module, c: CompId, is_body: bool) -> Result<(), PassError> {
        let comp = module.comp_mut(c);
        let Some(&param) = comp.params.first() else {
            return Err(PassError::Internal(format!("loop computation {} has no parameter", comp.name)));
        };
        let original = comp.instrs.len();
        let old_shape = comp.instr(param).shape.clone();
        comp.instr_mut(param).shape = extended(&old_shape);
        let unpacked = self.unpack(comp, param, &old_shape);
        replace_uses(comp, param, unpacked, original);
        if !is_body {
            compact(comp)?;
            return Ok(());
        }
        let index = elements(&old_shape) as u64;
        let s0 = self.push(comp, state_shape(), Op::GetTupleElement { index }, vec![param]);
        let s = self.thread(module, c, s0)?;
        let comp = module.comp_mut(c);
        let root = comp.root;
        let new_root = self.pack(comp, root, s);
        comp.root = new_root;
        compact(comp)?;
        Ok(())
    }

    /// `tuple(elements of x..., s)`.
    fn pack(&mut self, comp: &mut Computation, x: InstrId, s: InstrId) -> InstrId {
        let shape = comp.instr(x).shape.clone();
        let mut parts: Vec<InstrId> = match shape.as_tuple() {
            Some(elems) => (0..elems.len())
                .map(|i| self.push(comp, elems[i].clone(), Op::GetTupleElement { index: i as u64 }, vec![x]))
                .collect(),
            None => vec![x],
        };
        parts.push(s);
        self.push(comp, extended(&shape), Op::Tuple, parts)
    }

    /// The value of shape `old` inside `x` (its shape extended by the state).
    fn unpack(&mut self, comp: &mut Computation, x: InstrId, old: &Shape) -> InstrId {
        match old.as_tuple() {
            Some(elems) => {
                let parts = (0..elems.len())
                    .map(|i| self.push(comp, elems[i].clone(), Op::GetTupleElement { index: i as u64 }, vec![x]))
                    .collect();
                self.push(comp, old.clone(), Op::Tuple, parts)
            }
            None => self.push(comp, old.clone(), Op::GetTupleElement { index: 0 }, vec![x]),
        }
    }

    /// `s + delta` as a 128-bit number (low word first).
    fn advance(&mut self, comp: &mut Computation, s: InstrId, delta: i64) -> InstrId {
        let scalar = Shape::Array(ArrayShape::scalar(DType::U64));
        let one = Shape::Array(ArrayShape::new(DType::U64, vec![1]));
        let word = |t: &mut Self, comp: &mut Computation, k: i64| {
            let sl = t.push(
                comp,
                one.clone(),
                Op::Slice { dims: vec![SliceDim { start: k, limit: k + 1, stride: 1 }] },
                vec![s],
            );
            t.push(comp, scalar.clone(), Op::Reshape, vec![sl])
        };
        let lo = word(self, comp, 0);
        let hi = word(self, comp, 1);
        let constant = |t: &mut Self, comp: &mut Computation, v: u64| {
            let lit = Literal::array(ArrayShape::scalar(DType::U64), ArrayData::U64(vec![v]));
            t.push(comp, scalar.clone(), Op::Constant(Box::new(lit)), vec![])
        };
        let d_lo = constant(self, comp, delta as u64);
        let d_hi = constant(self, comp, if delta < 0 { u64::MAX } else { 0 });
        let new_lo = self.push(comp, scalar.clone(), Op::Binary(BinaryOp::Add), vec![lo, d_lo]);
        let wrapped = self.push(
            comp,
            Shape::Array(ArrayShape::scalar(DType::Pred)),
            Op::Compare { direction: CompareDirection::Lt, compare_type: Some(CompareType::Unsigned) },
            vec![new_lo, lo],
        );
        let carry = self.push(comp, scalar.clone(), Op::Convert, vec![wrapped]);
        let hi = self.push(comp, scalar.clone(), Op::Binary(BinaryOp::Add), vec![hi, d_hi]);
        let new_hi = self.push(comp, scalar.clone(), Op::Binary(BinaryOp::Add), vec![hi, carry]);
        let lo1 = self.push(comp, one.clone(), Op::Reshape, vec![new_lo]);
        let hi1 = self.push(comp, one, Op::Reshape, vec![new_hi]);
        self.push(comp, state_shape(), Op::Concatenate { dimension: 0 }, vec![lo1, hi1])
    }
}

/// `old` with the state appended: one more tuple element, or `(old, state)` for an array.
fn extended(old: &Shape) -> Shape {
    let mut elems: Vec<Shape> = match old.as_tuple() {
        Some(e) => e.to_vec(),
        None => vec![old.clone()],
    };
    elems.push(state_shape());
    Shape::Tuple(elems)
}

/// Elements of `shape` before the state is appended.
fn elements(shape: &Shape) -> usize {
    shape.as_tuple().map_or(1, <[Shape]>::len)
}

/// Uses of `old` among the first `original` instructions (and the root) now read `new`.
fn replace_uses(comp: &mut Computation, old: InstrId, new: InstrId, original: usize) {
    for instr in comp.instrs.iter_mut().take(original) {
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

/// The instructions the root needs (what the interpreter evaluates).
fn live_from_root(comp: &Computation) -> Vec<bool> {
    let mut live = vec![false; comp.instrs.len()];
    let mut stack = vec![comp.root];
    while let Some(id) = stack.pop() {
        if id.index() < live.len() && !std::mem::replace(&mut live[id.index()], true) {
            stack.extend(comp.instr(id).operands.iter().copied());
        }
    }
    live
}
