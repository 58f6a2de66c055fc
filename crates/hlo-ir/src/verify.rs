//! The verifier: checks a [`Module`]'s invariants and collects every violation, not just the first.
//!
//! Passes and backends may assume everything listed here once [`verify`] returns `Ok`.
//! Checks run in the order below; a check that would need a broken earlier invariant to hold
//! (a valid operand id, a callee with a valid signature) is skipped for that item instead of
//! reporting follow-on noise.
//!
//! Module:
//! - the entry computation id is in range;
//! - computation names are unique;
//! - the call graph has no cycles (no computation calls itself, directly or not);
//! - `entry_computation_layout`, when present, has the entry's parameter and result shapes
//!   (layouts ignored).
//!
//! Computation:
//! - it has at least one instruction and its root id is in range;
//! - parameter numbers are unique and dense (`0..n`), and `params[k]` is the `parameter(k)` instruction;
//! - instruction names are unique within it.
//!
//! Instruction references:
//! - operand ids are in range and smaller than the instruction's own id (arena order is a
//!   topological order);
//! - control predecessors likewise;
//! - called computation ids are in range and never name the entry computation.
//!
//! Instruction shapes:
//! - the declared shape is well formed: dimensions are non-negative (or `-1` for an unbounded
//!   dynamic one), the dynamic markers match the rank, and a non-empty `minor_to_major` is a
//!   permutation of the dimensions;
//! - the operand count suits the op ([`crate::shape_inference::arity`]);
//! - operand shapes and attributes are valid for the op and called computations have the right
//!   signatures (reducers take `2N` scalars and return `N`, sort comparators and while conditions
//!   return `pred[]`, while bodies map the loop state to itself, conditional branches and call and
//!   fusion callees take the operands' shapes): all of it by re-running [`crate::shape_inference`];
//! - the declared shape equals the inferred one, ignoring layouts and dynamic markers (for `dot` and
//!   `convolution` the element type is the instruction's choice); ops whose result only the
//!   instruction defines (`parameter`, `custom-call`, collectives, ...) are accepted as declared;
//! - a constant's literal is internally consistent: its data has one element per element of its
//!   shape, in the storage class of its element type, through tuples.

use crate::literal::{Literal, LiteralData};
use crate::module::{CompId, Computation, InstrId, Module};
use crate::op::Op;
use crate::shape::Shape;
use crate::shape_inference::{infer_op, same_shape, signature};
use std::collections::HashMap;
use std::fmt;

/// One violated invariant, located as precisely as the check allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    /// The computation's name; empty for module-level errors.
    pub comp: String,
    /// The instruction's name, for instruction-level errors.
    pub instr: Option<String>,
    pub at: Option<(CompId, InstrId)>,
    pub message: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.comp, &self.instr) {
            (comp, _) if comp.is_empty() => write!(f, "in module: {}", self.message),
            (comp, None) => write!(f, "in %{comp}: {}", self.message),
            (comp, Some(instr)) => write!(f, "in %{comp}, instruction %{instr}: {}", self.message),
        }
    }
}

/// Every error the verifier found, in module order. Never empty.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct VerifyErrors(pub Vec<VerifyError>);

impl fmt::Display for VerifyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

/// Checks every invariant listed in the module docs.
pub fn verify(module: &Module) -> Result<(), VerifyErrors> {
    let mut v = Verifier { module, errors: Vec::new() };
    v.check_module();
    if v.errors.is_empty() {
        Ok(())
    } else {
        Err(VerifyErrors(v.errors))
    }
}

/// Prints each computation as one line per instruction (`%name = shape opcode(%operands)`) with
/// every error on the lines after the instruction (or computation) it concerns, like cranelift's
/// `print_errors`. Deliberately independent of the full HLO printer: it must work on broken IR.
pub fn render_with_module(module: &Module, errors: &VerifyErrors) -> String {
    let mut out = String::new();
    for err in errors.0.iter().filter(|e| e.comp.is_empty()) {
        out.push_str(&format!("; error: {}\n", err.message));
    }
    for (ci, comp) in module.comps.iter().enumerate() {
        let cid = CompId(ci as u32);
        let entry = if cid == module.entry { "ENTRY " } else { "" };
        out.push_str(&format!("{entry}%{} {{\n", comp.name));
        for err in errors.0.iter().filter(|e| e.at.is_none() && !e.comp.is_empty() && e.comp == comp.name) {
            out.push_str(&format!("  ; error: {}\n", err.message));
        }
        for (ii, instr) in comp.instrs.iter().enumerate() {
            let id = InstrId::from_index(ii);
            let operands: Vec<String> = instr
                .operands
                .iter()
                .map(|o| comp.instrs.get(o.index()).map_or_else(|| format!("{o:?}"), |it| format!("%{}", it.name)))
                .collect();
            let root = if id == comp.root { "ROOT " } else { "" };
            let args = match instr.op {
                Op::Parameter { number } => number.to_string(),
                _ => operands.join(", "),
            };
            out.push_str(&format!("  {root}%{} = {} {}({args})\n", instr.name, instr.shape, instr.op.opcode()));
            for err in errors.0.iter().filter(|e| e.at == Some((cid, id))) {
                out.push_str(&format!("  ; error: {}\n", err.message));
            }
        }
        out.push_str("}\n\n");
    }
    out
}

struct Verifier<'m> {
    module: &'m Module,
    errors: Vec<VerifyError>,
}

impl<'m> Verifier<'m> {
    fn module_error(&mut self, message: String) {
        self.errors.push(VerifyError { comp: String::new(), instr: None, at: None, message });
    }

    fn comp_error(&mut self, comp: &Computation, message: String) {
        self.errors.push(VerifyError { comp: comp.name.clone(), instr: None, at: None, message });
    }

    fn instr_error(&mut self, cid: CompId, id: InstrId, message: String) {
        let comp = self.module.comp(cid);
        self.errors.push(VerifyError {
            comp: comp.name.clone(),
            instr: Some(comp.instr(id).name.clone()),
            at: Some((cid, id)),
            message,
        });
    }

    fn check_module(&mut self) {
        let module = self.module;
        let n_comps = module.comps.len();
        let entry_ok = module.entry.index() < n_comps;
        if !entry_ok {
            self.module_error(format!("entry computation {:?} does not exist ({n_comps} computations)", module.entry));
        }
        let mut comp_names: HashMap<&str, usize> = HashMap::new();
        for (ci, comp) in module.comps.iter().enumerate() {
            if let Some(&first) = comp_names.get(comp.name.as_str()) {
                self.comp_error(comp, format!("computation name %{} is also used by computation {first}", comp.name));
            } else {
                comp_names.insert(&comp.name, ci);
            }
        }

        // Structure first: which computations have a trustworthy signature.
        let sound: Vec<bool> = module.comp_ids().map(|cid| self.check_structure(cid)).collect();
        self.check_recursion();

        // Per-instruction references and shapes.
        for cid in module.comp_ids() {
            let comp = module.comp(cid);
            let mut names: HashMap<&str, InstrId> = HashMap::new();
            for id in comp.ids() {
                let name = comp.instr(id).name.as_str();
                if let Some(first) = names.get(name) {
                    self.instr_error(cid, id, format!("name %{name} is already used by instruction {}", first.index()));
                } else {
                    names.insert(name, id);
                }
                if self.check_references(cid, id, &sound) {
                    self.check_shape(cid, id);
                }
            }
        }

        if entry_ok && sound[module.entry.index()] {
            self.check_entry_layout();
        }
    }

    /// Root, parameter list and emptiness. Returns whether the computation's signature is sound.
    fn check_structure(&mut self, cid: CompId) -> bool {
        let comp = self.module.comp(cid);
        let mut sound = true;
        if comp.instrs.is_empty() {
            self.comp_error(comp, "has no instructions".into());
            return false;
        }
        if comp.root.index() >= comp.instrs.len() {
            self.comp_error(comp, format!("root {:?} does not exist ({} instructions)", comp.root, comp.instrs.len()));
            sound = false;
        }
        let mut by_number: HashMap<u64, InstrId> = HashMap::new();
        for id in comp.ids() {
            if let Op::Parameter { number } = comp.instr(id).op {
                if let Some(&first) = by_number.get(&number) {
                    let first_name = comp.instr(first).name.clone();
                    self.instr_error(cid, id, format!("parameter number {number} is already used by %{first_name}"));
                    sound = false;
                } else {
                    by_number.insert(number, id);
                }
            }
        }
        let n_params = by_number.len() as u64;
        for number in 0..n_params {
            if !by_number.contains_key(&number) {
                self.comp_error(comp, format!("parameter numbers are not dense: there is no parameter({number}) but there are {n_params} parameters"));
                sound = false;
            }
        }
        let list_ok = comp.params.len() as u64 == n_params
            && comp.params.iter().enumerate().all(|(k, &p)| by_number.get(&(k as u64)) == Some(&p));
        if sound && !list_ok {
            let list: Vec<String> = comp.params.iter().map(|p| format!("{p:?}")).collect();
            self.comp_error(
                comp,
                format!("the parameter list [{}] does not match the parameter instructions", list.join(", ")),
            );
            sound = false;
        }
        sound
    }

    /// Operand, control-predecessor and callee references. Returns whether shape checks can run.
    fn check_references(&mut self, cid: CompId, id: InstrId, sound: &[bool]) -> bool {
        let module = self.module;
        let comp = module.comp(cid);
        let instr = comp.instr(id);
        let mut ok = true;
        let mut check_ref = |v: &mut Self, what: &str, i: usize, r: InstrId| {
            if r.index() >= comp.instrs.len() {
                v.instr_error(cid, id, format!("{what} {i} refers to instruction {r:?}, which does not exist"));
                ok = false;
            } else if r >= id {
                let name = &comp.instr(r).name;
                v.instr_error(cid, id, format!("{what} {i} is %{name}, which does not come before it"));
                ok = false;
            }
        };
        for (i, &r) in instr.operands.iter().enumerate() {
            check_ref(self, "operand", i, r);
        }
        for (i, &r) in instr.meta.control_predecessors.iter().enumerate() {
            check_ref(self, "control predecessor", i, r);
        }
        for callee in instr.op.called_computations() {
            if callee.index() >= module.comps.len() {
                self.instr_error(cid, id, format!("calls computation {callee:?}, which does not exist"));
                ok = false;
            } else {
                if callee == module.entry {
                    self.instr_error(cid, id, format!("calls the entry computation %{}", module.comp(callee).name));
                }
                ok &= sound[callee.index()];
            }
        }
        ok
    }

    fn check_shape(&mut self, cid: CompId, id: InstrId) {
        let module = self.module;
        let comp = module.comp(cid);
        let instr = comp.instr(id);
        if let Some(problem) = malformed_shape(&instr.shape) {
            self.instr_error(cid, id, format!("declared shape {} is malformed: {problem}", instr.shape));
            return;
        }
        if let Op::Constant(lit) = &instr.op {
            if let Some(problem) = malformed_literal(lit) {
                self.instr_error(cid, id, format!("constant literal is malformed: {problem}"));
            }
        }
        let operands: Vec<&Shape> = instr.operands.iter().map(|&o| &comp.instr(o).shape).collect();
        let callee = |c: CompId| module.comps.get(c.index()).and_then(signature);
        match infer_op(&instr.op, &operands, Some(&instr.shape), &callee) {
            Err(err) => self.instr_error(cid, id, err.to_string()),
            Ok(Some(inferred)) if !same_shape(&instr.shape, &inferred) => self.instr_error(
                cid,
                id,
                format!("declared shape {} does not match the inferred shape {inferred}", instr.shape),
            ),
            Ok(_) => {}
        }
    }

    /// Reports each cycle of the call graph once, at the computation that closes it.
    fn check_recursion(&mut self) {
        let module = self.module;
        let n = module.comps.len();
        let callees: Vec<Vec<usize>> = module
            .comps
            .iter()
            .map(|c| {
                let mut it: Vec<usize> = c
                    .instrs
                    .iter()
                    .flat_map(|i| i.op.called_computations())
                    .map(CompId::index)
                    .filter(|&x| x < n)
                    .collect();
                it.sort_unstable();
                it.dedup();
                it
            })
            .collect();
        // 0 = unvisited, 1 = on the stack, 2 = done.
        let mut state = vec![0u8; n];
        let mut cycles = Vec::new();
        for start in 0..n {
            if state[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            state[start] = 1;
            while let Some(top) = stack.last_mut() {
                let node = top.0;
                if let Some(&callee) = callees[node].get(top.1) {
                    top.1 += 1;
                    match state[callee] {
                        0 => {
                            state[callee] = 1;
                            stack.push((callee, 0));
                        }
                        1 => {
                            let from = stack.iter().position(|&(c, _)| c == callee).unwrap_or(0);
                            let mut path: Vec<usize> = stack[from..].iter().map(|&(c, _)| c).collect();
                            path.push(callee);
                            cycles.push((node, path));
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                    stack.pop();
                }
            }
        }
        for (at, path) in cycles {
            let names: Vec<String> = path.iter().map(|&c| format!("%{}", module.comps[c].name)).collect();
            self.comp_error(&module.comps[at], format!("the call graph has a cycle: {}", names.join(" -> ")));
        }
    }

    fn check_entry_layout(&mut self) {
        let module = self.module;
        let Some(layout) = &module.attrs.entry_computation_layout else { return };
        let entry = module.entry_comp();
        let params = entry.param_shapes();
        if layout.params.len() != params.len() {
            self.comp_error(
                entry,
                format!(
                    "entry_computation_layout has {} parameters but the entry has {}",
                    layout.params.len(),
                    params.len()
                ),
            );
        }
        for (k, (want, got)) in layout.params.iter().zip(params).enumerate() {
            if !same_shape(want, got) {
                self.comp_error(
                    entry,
                    format!("entry_computation_layout parameter {k} is {want} but parameter({k}) is {got}"),
                );
            }
        }
        if entry.root.index() < entry.instrs.len() && !same_shape(&layout.result, &entry.root_instr().shape) {
            let root = &entry.root_instr().shape;
            self.comp_error(
                entry,
                format!("entry_computation_layout result is {} but the root is {root}", layout.result),
            );
        }
    }
}

/// Why a declared shape is not well formed, if it is not.
fn malformed_shape(shape: &Shape) -> Option<String> {
    match shape {
        Shape::Token => None,
        Shape::Tuple(elems) => elems.iter().find_map(malformed_shape),
        Shape::Array(a) => {
            if a.dynamic.len() != a.dims.len() {
                return Some(format!("{} dynamic markers for rank {}", a.dynamic.len(), a.rank()));
            }
            if let Some((i, &d)) = a.dims.iter().enumerate().find(|&(i, &d)| d < 0 && !(d == -1 && a.dynamic[i])) {
                return Some(format!("dimension {i} has size {d}"));
            }
            if let Some(layout) = &a.layout {
                let mut m2m = layout.minor_to_major.clone();
                m2m.sort_unstable();
                if !m2m.is_empty() && !m2m.iter().copied().eq(0..a.rank() as i64) {
                    return Some(format!(
                        "minor_to_major {:?} is not a permutation of 0..{}",
                        layout.minor_to_major,
                        a.rank()
                    ));
                }
            }
            None
        }
    }
}

/// Why a literal's data does not fit its shape, if it does not.
fn malformed_literal(lit: &Literal) -> Option<String> {
    match (&lit.shape, &lit.data) {
        (Shape::Array(a), LiteralData::Array(data)) => {
            if !data.matches(a.dtype) {
                Some(format!("its data is not stored as {} elements are", a.dtype))
            } else if data.len() as u64 != a.num_elements() {
                Some(format!("it has {} elements but shape {a} has {}", data.len(), a.num_elements()))
            } else {
                None
            }
        }
        (Shape::Tuple(shapes), LiteralData::Tuple(elems)) => {
            if shapes.len() != elems.len() {
                return Some(format!("tuple shape has {} elements but the data has {}", shapes.len(), elems.len()));
            }
            shapes.iter().zip(elems).enumerate().find_map(|(i, (s, e))| {
                if !same_shape(s, &e.shape) {
                    Some(format!("tuple element {i} has shape {} but the tuple shape says {s}", e.shape))
                } else {
                    malformed_literal(e).map(|m| format!("tuple element {i}: {m}"))
                }
            })
        }
        (Shape::Token, LiteralData::Token) => None,
        (Shape::Array(a), LiteralData::Elided) if a.rank() > 0 => None,
        (shape, _) => Some(format!("its data is not of the kind shape {shape} needs")),
    }
}
