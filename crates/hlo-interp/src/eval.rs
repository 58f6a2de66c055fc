//! The driver: walks a computation's arena in order and dispatches each instruction.
//!
//! Arena order is topological, so one forward scan evaluates a computation. Only
//! instructions the root depends on are evaluated (as XLA's evaluator does), so dead
//! code with unsupported ops does not fail a module. Each value is dropped after its
//! last use, and parameters are read from the caller's arguments without copying.
//!
//! Memory: every value held by an active call counts against [`Options::memory_limit`],
//! and before an instruction runs, its result and the index tables its op builds are
//! estimated ([`working_bytes`]) and checked, so a huge shape fails cleanly instead of
//! aborting the process in the allocator.

use crate::array::{array_of, make, scalar_i64};
use crate::error::{invalid, unsupported, InterpError, OpError, OpResult};
use crate::options::{flush_in_place, flushed, Options};
use crate::{convert, elementwise, gather_scatter, lapack, linalg, reduce, rng, shape_ops, sort};
use hlo_ir::{
    ArrayData, ArrayShape, BinaryOp, CompId, CompareType, Computation, DType, Instr, InstrId, Literal, LiteralData,
    Module, Op, Shape, UnaryOp,
};
use std::borrow::Cow;
use std::cell::Cell;

/// Evaluates the entry computation of `module` on `args` (one per entry parameter; a
/// tuple parameter takes a tuple literal), with pure HLO semantics.
pub fn evaluate(module: &Module, args: &[Literal]) -> Result<Literal, InterpError> {
    evaluate_with(module, args, &Options::default())
}

/// [`evaluate`] with explicit floating-point [`Options`].
pub fn evaluate_with(module: &Module, args: &[Literal], options: &Options) -> Result<Literal, InterpError> {
    evaluate_computation_with(module, module.entry, args, options)
}

/// Evaluates computation `comp` of `module` on `args`.
pub fn evaluate_computation(module: &Module, comp: CompId, args: &[Literal]) -> Result<Literal, InterpError> {
    evaluate_computation_with(module, comp, args, &Options::default())
}

/// [`evaluate_computation`] with explicit floating-point [`Options`].
pub fn evaluate_computation_with(
    module: &Module,
    comp: CompId,
    args: &[Literal],
    options: &Options,
) -> Result<Literal, InterpError> {
    if comp.index() >= module.comps.len() {
        return Err(InterpError::Invalid {
            comp: format!("{comp:?}"),
            instr: String::new(),
            op: "call".into(),
            message: "no such computation".into(),
        });
    }
    let refs: Vec<&Literal> = args.iter().collect();
    let interp = Interp::new(module, *options);
    let mut held = Held::new(&interp.live);
    held.add(args.iter().map(literal_bytes).sum());
    interp.call(comp, &refs)
}

/// Evaluates the single instruction `instr` of computation `comp` on the given operand
/// values (for constant folding: the operands are constants). Parameters cannot be
/// evaluated this way.
pub fn evaluate_instr(
    module: &Module,
    comp: CompId,
    instr: InstrId,
    operands: &[Literal],
) -> Result<Literal, InterpError> {
    let Some(c) = module.comps.get(comp.index()) else {
        return Err(InterpError::Invalid {
            comp: format!("{comp:?}"),
            instr: String::new(),
            op: String::new(),
            message: "no such computation".into(),
        });
    };
    let refs: Vec<&Literal> = operands.iter().collect();
    if instr.index() >= c.instrs.len() {
        return Err(InterpError::Invalid {
            comp: c.name.clone(),
            instr: format!("{instr:?}"),
            op: String::new(),
            message: "no such instruction".into(),
        });
    }
    Interp::new(module, Options::default()).eval_instr(c, instr, &refs, None)
}

/// Evaluation context: the module whose computations calls refer to, and the options.
pub struct Interp<'m> {
    pub module: &'m Module,
    pub options: Options,
    /// Bytes held by the values of every active call (see [`Options::memory_limit`]).
    live: Cell<u64>,
    /// The hidden state of `rng` and `rng-get-and-update-state` ([`crate::rng_distribution`]).
    rng_state: Cell<u128>,
}

/// Bytes counted in [`Interp::live`] on behalf of one holder; released when dropped,
/// so that an error unwinding a call leaves the count right.
struct Held<'a> {
    live: &'a Cell<u64>,
    bytes: u64,
}

impl<'a> Held<'a> {
    fn new(live: &'a Cell<u64>) -> Held<'a> {
        Held { live, bytes: 0 }
    }

    fn add(&mut self, bytes: u64) {
        self.bytes = self.bytes.saturating_add(bytes);
        self.live.set(self.live.get().saturating_add(bytes));
    }

    fn sub(&mut self, bytes: u64) {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        self.live.set(self.live.get().saturating_sub(bytes));
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.live.set(self.live.get().saturating_sub(self.bytes));
    }
}

/// Bytes the elements of an array of `shape` occupy in the evaluator (sub-byte types
/// take a byte each, as they are stored).
fn array_bytes(shape: &ArrayShape) -> u64 {
    shape.num_elements().saturating_mul(shape.dtype.byte_size() as u64)
}

/// Bytes of every array leaf of `shape`.
fn shape_bytes(shape: &Shape) -> u64 {
    match shape {
        Shape::Array(a) => array_bytes(a),
        Shape::Tuple(elems) => elems.iter().fold(0u64, |acc, e| acc.saturating_add(shape_bytes(e))),
        Shape::Token => 0,
    }
}

/// Bytes a literal's arrays occupy.
fn literal_bytes(lit: &Literal) -> u64 {
    shape_bytes(&lit.shape)
}

/// Elements of an array shape, 0 for tuples and tokens.
fn elements(shape: &Shape) -> u64 {
    shape.as_array().map_or(0, |a| a.num_elements())
}

/// An upper estimate of the bytes evaluating `instr` allocates: its result, plus for ops
/// that gather through index tables (shape ops, reductions, windows, dots...) eight bytes
/// per result element and per element of the largest operand.
fn working_bytes(instr: &Instr, ops: &[&Literal]) -> u64 {
    let result = shape_bytes(&instr.shape);
    let elementwise = matches!(
        instr.op,
        Op::Unary(_)
            | Op::Binary(_)
            | Op::Compare { .. }
            | Op::Select
            | Op::Clamp
            | Op::Convert
            | Op::BitcastConvert
            | Op::ReducePrecision { .. }
            | Op::Copy
            | Op::Constant(_)
            | Op::Parameter { .. }
            | Op::Tuple
            | Op::GetTupleElement { .. }
            | Op::Reshape
            | Op::AddDependency
            | Op::OptimizationBarrier
            | Op::AfterAll
    );
    // A broadcast of one element is a splat: no index tables.
    let splat = matches!(instr.op, Op::Broadcast { .. }) && ops.first().is_some_and(|l| elements(&l.shape) == 1);
    if elementwise || splat {
        return result;
    }
    let largest_operand = ops.iter().map(|l| elements(&l.shape)).max().unwrap_or(0);
    let tables = elements(&instr.shape).saturating_mul(16).saturating_add(largest_operand.saturating_mul(8));
    result.saturating_add(tables)
}

/// A multiply fused into the add or subtract that uses it (see [`Options::contract_fma`]).
#[derive(Clone, Copy)]
struct Fma {
    /// Which operand of the add/subtract is the product.
    product_operand: usize,
    /// The multiply's own operands.
    factors: [InstrId; 2],
}

/// For each add/subtract, the multiply XLA:CPU's LLVM would contract into it: an f32/f64
/// product with no other user, the left operand preferred.
fn plan_fma(comp: &Computation, live: &[bool]) -> Vec<Option<Fma>> {
    let n = comp.instrs.len();
    let mut users = vec![0usize; n];
    for (i, instr) in comp.instrs.iter().enumerate() {
        if live[i] {
            for o in &instr.operands {
                users[o.index()] += 1;
            }
        }
    }
    users[comp.root.index()] += 1;
    let is_product = |id: InstrId| {
        let instr = comp.instr(id);
        matches!(instr.op, Op::Binary(BinaryOp::Multiply))
            && matches!(instr.shape.dtype(), Some(DType::F32 | DType::F64))
            && users[id.index()] == 1
            && instr.operands.len() == 2
    };
    comp.instrs
        .iter()
        .map(|instr| {
            if !matches!(instr.op, Op::Binary(BinaryOp::Add | BinaryOp::Subtract))
                || !matches!(instr.shape.dtype(), Some(DType::F32 | DType::F64))
                || instr.operands.len() != 2
            {
                return None;
            }
            let k = (0..2).find(|&k| is_product(instr.operands[k]))?;
            let m = comp.instr(instr.operands[k]);
            Some(Fma { product_operand: k, factors: [m.operands[0], m.operands[1]] })
        })
        .collect()
}

impl<'m> Interp<'m> {
    pub fn new(module: &'m Module, options: Options) -> Interp<'m> {
        Interp { module, options, live: Cell::new(0), rng_state: Cell::new(crate::rng_distribution::RNG_INITIAL_STATE) }
    }

    /// Fails when `bytes` more would go past [`Options::memory_limit`].
    fn reserve(&self, bytes: u64) -> OpResult<()> {
        let Some(limit) = self.options.memory_limit else { return Ok(()) };
        let held = self.live.get();
        if held.saturating_add(bytes) > limit {
            return Err(OpError::OutOfMemory { needed: bytes, held, limit });
        }
        Ok(())
    }

    /// Calls a computation: checks the arguments, then evaluates the root's dependencies.
    pub fn call(&self, comp_id: CompId, args: &[&Literal]) -> Result<Literal, InterpError> {
        let Some(comp) = self.module.comps.get(comp_id.index()) else {
            return Err(InterpError::Invalid {
                comp: format!("{comp_id:?}"),
                instr: String::new(),
                op: "call".into(),
                message: "called computation does not exist".into(),
            });
        };
        if args.len() != comp.params.len() {
            return Err(InterpError::ArgCount {
                comp: comp.name.clone(),
                expected: comp.params.len(),
                got: args.len(),
            });
        }
        for (index, (arg, &p)) in args.iter().zip(&comp.params).enumerate() {
            let expected = &comp.instr(p).shape;
            if !shapes_match(expected, &arg.shape) {
                return Err(InterpError::ArgShape {
                    comp: comp.name.clone(),
                    index,
                    expected: expected.to_string(),
                    got: arg.shape.to_string(),
                });
            }
        }
        let n = comp.instrs.len();
        if comp.root.index() >= n {
            return Err(InterpError::Invalid {
                comp: comp.name.clone(),
                instr: String::new(),
                op: "ROOT".into(),
                message: "the root is not an instruction of the computation".into(),
            });
        }
        // Liveness: which instructions the root needs, and where each value is last used.
        let mut live = vec![false; n];
        live[comp.root.index()] = true;
        let mut last_use = vec![0usize; n];
        for i in (0..n).rev() {
            if !live[i] {
                continue;
            }
            for &o in &comp.instrs[i].operands {
                if o.index() >= i {
                    return Err(self.wrap(
                        comp,
                        InstrId::from_index(i),
                        invalid::<()>("operand defined after its user").unwrap_err(),
                    ));
                }
                live[o.index()] = true;
                last_use[o.index()] = last_use[o.index()].max(i);
            }
        }
        let fma = if self.options.contract_fma { plan_fma(comp, &live) } else { vec![None; n] };
        for (i, f) in fma.iter().enumerate() {
            if let (true, Some(f)) = (live[i], f) {
                for o in f.factors {
                    last_use[o.index()] = last_use[o.index()].max(i);
                }
            }
        }
        let mut vals: Vec<Option<Literal>> = vec![None; n];
        let mut held = Held::new(&self.live);
        for i in 0..n {
            if !live[i] {
                continue;
            }
            let id = InstrId::from_index(i);
            let instr = &comp.instrs[i];
            if let Op::Parameter { .. } = instr.op {
                continue;
            }
            // Tuples and get-tuple-element move values out of dead operands instead of copying.
            let before: u64 = instr.operands.iter().filter_map(|o| vals[o.index()].as_ref()).map(literal_bytes).sum();
            if let Some(res) = self.try_move(comp, i, &mut vals, &last_use) {
                let after: u64 =
                    instr.operands.iter().filter_map(|o| vals[o.index()].as_ref()).map(literal_bytes).sum();
                held.sub(before - after.min(before));
                held.add(literal_bytes(&res));
                vals[i] = Some(res);
                continue;
            }
            let res = {
                let value = |o: InstrId| match &comp.instr(o).op {
                    Op::Parameter { number } => args.get(*number as usize).copied(),
                    _ => vals[o.index()].as_ref(),
                };
                let mut ops = Vec::with_capacity(instr.operands.len());
                for &o in &instr.operands {
                    match value(o) {
                        Some(v) => ops.push(v),
                        None => {
                            return Err(self.wrap(comp, id, OpError::Invalid("operand has no value".into())));
                        }
                    }
                }
                let fused = match fma[i] {
                    Some(f) => match (value(f.factors[0]), value(f.factors[1])) {
                        (Some(a), Some(b)) => Some((f.product_operand, a, b)),
                        _ => None,
                    },
                    None => None,
                };
                self.reserve(working_bytes(instr, &ops)).map_err(|e| self.wrap(comp, id, e))?;
                self.eval_instr(comp, id, &ops, fused)?
            };
            held.add(literal_bytes(&res));
            vals[i] = Some(res);
            let mut release = |o: InstrId| {
                if last_use[o.index()] == i && o != comp.root {
                    if let Some(v) = vals[o.index()].take() {
                        held.sub(literal_bytes(&v));
                    }
                }
            };
            for &o in &instr.operands {
                release(o);
            }
            if let Some(f) = fma[i] {
                f.factors.into_iter().for_each(&mut release);
            }
        }
        let root = comp.root_instr();
        match &root.op {
            Op::Parameter { number } => Ok(args[*number as usize].clone()),
            _ => Ok(vals[comp.root.index()].take().expect("the root was evaluated")),
        }
    }

    /// Builds a tuple, or extracts a tuple element, by moving operands that die here.
    /// Returns `None` (evaluate normally) when anything would have to be copied.
    fn try_move(
        &self,
        comp: &Computation,
        i: usize,
        vals: &mut [Option<Literal>],
        last_use: &[usize],
    ) -> Option<Literal> {
        let instr = &comp.instrs[i];
        let movable = |o: &InstrId| {
            last_use[o.index()] == i
                && *o != comp.root
                && !matches!(comp.instr(*o).op, Op::Parameter { .. })
                && instr.operands.iter().filter(|x| *x == o).count() == 1
        };
        match &instr.op {
            Op::Tuple if instr.operands.iter().all(|o| movable(o) && vals[o.index()].is_some()) => {
                let elems = instr.operands.iter().map(|o| vals[o.index()].take().expect("checked")).collect();
                Some(Literal { shape: instr.shape.clone(), data: LiteralData::Tuple(elems) })
            }
            Op::GetTupleElement { index } if movable(&instr.operands[0]) => {
                let o = instr.operands[0].index();
                let LiteralData::Tuple(elems) = &mut vals[o].as_mut()?.data else { return None };
                let elem = elems.get_mut(*index as usize)?;
                let res = std::mem::replace(elem, Literal { shape: Shape::Token, data: LiteralData::Token });
                vals[o] = None;
                Some(res)
            }
            _ => None,
        }
    }

    /// Evaluates one instruction on its operand values, naming it in any error. `fused`
    /// names a product operand (and its factors) to contract into an add/subtract.
    pub fn eval_instr(
        &self,
        comp: &Computation,
        id: InstrId,
        ops: &[&Literal],
        fused: Option<(usize, &Literal, &Literal)>,
    ) -> Result<Literal, InterpError> {
        let instr = comp.instr(id);
        if ops.len() != instr.operands.len() {
            return Err(self.wrap(
                comp,
                id,
                OpError::Invalid(format!("expected {} operands, got {}", instr.operands.len(), ops.len())),
            ));
        }
        let res = match (fused, &instr.op) {
            (Some((k, a, b)), Op::Binary(op)) => {
                fused_multiply_add(*op, k, a, b, ops[1 - k], &instr.shape, self.options.flush_denormals)
            }
            _ => self.eval_op(instr, ops),
        };
        res.map_err(|e| self.wrap(comp, id, e))
    }

    fn wrap(&self, comp: &Computation, id: InstrId, err: OpError) -> InterpError {
        let instr = comp.instrs.get(id.index());
        let name = instr.map_or_else(|| format!("{id:?}"), |i| i.name.clone());
        let op = instr.map_or_else(String::new, |i| i.op.opcode().name().to_string());
        match err {
            OpError::Unsupported(reason) => {
                InterpError::Unsupported { comp: comp.name.clone(), instr: name, op, reason }
            }
            OpError::Invalid(message) => InterpError::Invalid { comp: comp.name.clone(), instr: name, op, message },
            OpError::OutOfMemory { needed, held, limit } => {
                InterpError::OutOfMemory { comp: comp.name.clone(), instr: name, op, needed, held, limit }
            }
            OpError::TooManyIterations(limit) => {
                InterpError::TooManyIterations { comp: comp.name.clone(), instr: name, limit }
            }
            OpError::Nested(inner) => *inner,
        }
    }

    fn eval_op(&self, instr: &Instr, ops: &[&Literal]) -> OpResult<Literal> {
        let out = &instr.shape;
        let needed = min_operands(&instr.op);
        if ops.len() < needed {
            return invalid(format!("needs at least {needed} operand(s), has {}", ops.len()));
        }
        let res = match &instr.op {
            Op::Parameter { .. } => return invalid("a parameter has no value outside a call"),
            Op::Constant(lit) => {
                let data = lit.data.clone();
                if let (Shape::Array(s), LiteralData::Array(d)) = (out, &data) {
                    if d.len() as u64 != s.num_elements() || !d.matches(s.dtype) {
                        return invalid(format!("constant does not match its shape {s}"));
                    }
                }
                Literal { shape: out.clone(), data }
            }
            Op::Tuple => {
                Literal { shape: out.clone(), data: LiteralData::Tuple(ops.iter().map(|&l| l.clone()).collect()) }
            }
            Op::GetTupleElement { index } => tuple_element(ops[0], *index as usize)?,
            Op::While { condition, body } => self.eval_while(*condition, *body, ops[0])?,
            Op::Conditional { branches } => {
                let (sel_shape, _) = array_of(ops[0])?;
                let n = branches.len();
                if n == 0 {
                    return invalid("conditional without branches");
                }
                let branch = if sel_shape.dtype == DType::Pred {
                    if scalar_i64(ops[0])? != 0 {
                        0
                    } else {
                        1.min(n - 1)
                    }
                } else {
                    // An out-of-range index selects the last branch.
                    let k = scalar_i64(ops[0])?;
                    if k < 0 || k as usize >= n {
                        n - 1
                    } else {
                        k as usize
                    }
                };
                let arg = ops.get(branch + 1).ok_or(OpError::Invalid("missing branch operand".into()))?;
                self.call(branches[branch], &[*arg])?
            }
            Op::Call { to_apply, .. } => self.call_with(*to_apply, ops)?,
            Op::Fusion { calls, .. } => self.call_with(*calls, ops)?,
            Op::Map { to_apply, .. } => reduce::map(self, *to_apply, out, ops)?,
            Op::Reduce { dimensions, to_apply } => reduce::reduce(self, *to_apply, dimensions, out, ops)?,
            Op::ReduceWindow { window, to_apply } => reduce::reduce_window(self, *to_apply, window, out, ops)?,
            Op::SelectAndScatter { window, select, scatter } => {
                reduce::select_and_scatter(self, *select, *scatter, window, out, ops)?
            }
            Op::Gather { dims, slice_sizes, .. } => gather_scatter::gather(dims, slice_sizes, out, ops)?,
            Op::Scatter { dims, to_apply, .. } => gather_scatter::scatter(self, dims, *to_apply, out, ops)?,
            Op::Dot { dims, .. } => linalg::dot(dims, out, ops, self.options.flush_denormals)?,
            Op::RaggedDot { dims, lhs_ragged, rhs_group, .. } => {
                linalg::ragged_dot(dims, lhs_ragged, rhs_group, out, ops)?
            }
            Op::Convolution { window, dims, feature_group_count, batch_group_count, .. } => {
                let groups = (*feature_group_count, *batch_group_count);
                linalg::convolution(window, dims, groups, out, ops, self.options.flush_denormals)?
            }
            Op::Sort { dimension, to_apply, .. } => sort::sort(self, *dimension, *to_apply, out, ops)?,
            Op::TopK { k, largest } => sort::topk(self, *k, *largest, None, out, ops)?,
            Op::CustomCall(cc) => self.custom_call(cc, instr.meta.backend_config.as_deref(), out, ops)?,
            Op::Cholesky { lower } => lapack::cholesky(*lower, out, ops)?,
            Op::TriangularSolve { left_side, lower, unit_diagonal, transpose_a } => {
                lapack::triangular_solve(*left_side, *lower, *unit_diagonal, *transpose_a, out, ops)?
            }
            Op::RngBitGenerator { algorithm } => rng::rng_bit_generator(*algorithm, out, ops)?,
            Op::RngGetAndUpdateState { delta } => self.rng_get_and_update_state(*delta),
            Op::Rng { distribution } => self.rng(*distribution, out, ops)?,
            Op::ScaledDot { dims, precision } => self.scaled_dot(dims, precision, out, ops)?,
            Op::Other { opcode: hlo_ir::Opcode::Scan | hlo_ir::Opcode::Shuffle } => {
                return unsupported(unsupported_reason(&instr.op))
            }
            Op::AfterAll => Literal { shape: Shape::Token, data: LiteralData::Token },
            // A copy of a tuple (arrays go through `eval_detached`) keeps the values.
            Op::Copy if out.is_tuple() => {
                let mut res = ops[0].clone();
                res.shape = out.clone();
                res
            }
            // `copy-start` returns (destination, source, context); `copy-done` the destination.
            Op::CopyStart => {
                let Some(elems) = out.as_tuple().filter(|t| t.len() >= 2) else {
                    return invalid("copy-start returns (destination, source, context)");
                };
                let mut vals = vec![ops[0].clone(), ops[0].clone()];
                vals.extend(elems[2..].iter().map(zeros_of));
                Literal { shape: out.clone(), data: LiteralData::Tuple(vals) }
            }
            Op::CopyDone => tuple_element(ops[0], 0)?,
            // Async pairs run the wrapped computation at the start; the start's value is
            // ((operands), result, context...), which `async-update` passes on and
            // `async-done` unwraps.
            Op::Async { opcode: hlo_ir::Opcode::AsyncStart, calls: Some(comp) } => {
                let Some(elems) = out.as_tuple().filter(|t| t.len() >= 2) else {
                    return invalid("async-start returns ((operands), result, context...)");
                };
                let result = self.call(*comp, ops)?;
                let operands = Literal {
                    shape: elems[0].clone(),
                    data: LiteralData::Tuple(ops.iter().map(|&l| l.clone()).collect()),
                };
                let mut vals = vec![operands, result];
                vals.extend(elems[2..].iter().map(zeros_of));
                Literal { shape: out.clone(), data: LiteralData::Tuple(vals) }
            }
            Op::Async { opcode: hlo_ir::Opcode::AsyncUpdate, .. } => ops[0].clone(),
            Op::Async { opcode: hlo_ir::Opcode::AsyncDone, .. } => tuple_element(ops[0], 1)?,
            // On one device, these collectives see only their own data.
            Op::Collective { opcode, .. }
                if matches!(
                    opcode,
                    hlo_ir::Opcode::AllReduce
                        | hlo_ir::Opcode::AllGather
                        | hlo_ir::Opcode::ReduceScatter
                        | hlo_ir::Opcode::AllToAll
                        | hlo_ir::Opcode::CollectiveBroadcast
                ) && ops.len() == 1
                    && ops[0].shape.compatible(out) =>
            {
                let mut res = ops[0].clone();
                res.shape = out.clone();
                res
            }
            Op::AddDependency | Op::OptimizationBarrier | Op::Domain => {
                let mut res = ops[0].clone();
                res.shape = out.clone();
                res
            }
            Op::PartitionId | Op::ReplicaId => {
                let shape = out_array(out)?;
                make(shape, ArrayData::zeros(shape.dtype, 1))
            }
            Op::GetDimensionSize { dimension } => {
                let (shape, _) = array_of(ops[0])?;
                let Some(&size) = shape.dims.get(*dimension as usize) else {
                    return invalid(format!("operand has no dimension {dimension}"));
                };
                let out = out_array(out)?;
                let data = convert::convert(&ArrayData::S64(vec![size]), DType::S64, out.dtype)?;
                make(out, data)
            }
            op => eval_detached(op, out, ops, &self.options)?,
        };
        Ok(res)
    }

    /// The hidden state as `u64[2]` (low word first), advanced by `delta` afterwards.
    fn rng_get_and_update_state(&self, delta: i64) -> Literal {
        let old = self.rng_state.get();
        self.rng_state.set(old.wrapping_add(delta as i128 as u128));
        make(&ArrayShape::new(DType::U64, vec![2]), ArrayData::U64(vec![old as u64, (old >> 64) as u64]))
    }

    /// `rng(a, b)`: its expansion ([`crate::rng_distribution::rng_expansion`]) evaluated on the
    /// operands and the hidden state, with this evaluator's options.
    fn rng(&self, distribution: hlo_ir::RngDistribution, out: &Shape, ops: &[&Literal]) -> OpResult<Literal> {
        let out = out_array(out)?;
        let expansion = crate::rng_distribution::rng_expansion(distribution, out).map_err(OpError::Unsupported)?;
        let state = self.rng_get_and_update_state(expansion.delta);
        let (Some(a), Some(b)) = (ops.first(), ops.get(1)) else { return invalid("rng takes (a, b)") };
        self.eval_expansion(expansion.comp, &[a, b, &state])
    }

    /// `scaled-dot`: its expansion ([`crate::scaled_dot::scaled_dot_expansion`]) evaluated.
    fn scaled_dot(
        &self,
        dims: &hlo_ir::DotDims,
        precision: &[hlo_ir::Precision],
        out: &Shape,
        ops: &[&Literal],
    ) -> OpResult<Literal> {
        let out = out_array(out)?;
        let shapes = ops.iter().map(|l| array_of(l).map(|(s, _)| s)).collect::<OpResult<Vec<_>>>()?;
        let comp = crate::scaled_dot::scaled_dot_expansion(dims, precision, &shapes, out)
            .map_err(|e| OpError::Unsupported(format!("scaled-dot with {e}")))?;
        self.eval_expansion(comp, ops)
    }

    /// Evaluates `comp`, an op's defining expansion, on `args` with this evaluator's options.
    fn eval_expansion(&self, comp: Computation, args: &[&Literal]) -> OpResult<Literal> {
        let module = Module {
            name: comp.name.clone(),
            attrs: Default::default(),
            comps: vec![comp],
            entry: CompId(0),
            stack_frames: Default::default(),
            dynamic_results: None,
        };
        let inner = Interp::new(&module, self.options);
        inner.call(CompId(0), args).map_err(|e| OpError::Nested(Box::new(e)))
    }

    fn call_with(&self, comp: CompId, ops: &[&Literal]) -> OpResult<Literal> {
        Ok(self.call(comp, ops)?)
    }

    fn eval_while(&self, condition: CompId, body: CompId, init: &Literal) -> OpResult<Literal> {
        let mut state = init.clone();
        let mut held = Held::new(&self.live);
        held.add(literal_bytes(&state));
        let mut trips = 0u64;
        loop {
            let keep_going = self.call(condition, &[&state])?;
            if scalar_i64(&keep_going)? == 0 {
                return Ok(state);
            }
            if let Some(limit) = self.options.max_while_iterations {
                if trips >= limit {
                    return Err(OpError::TooManyIterations(limit));
                }
            }
            trips += 1;
            state = self.call(body, &[&state])?;
        }
    }

    fn custom_call(
        &self,
        cc: &hlo_ir::CustomCall,
        backend_config: Option<&str>,
        out: &Shape,
        ops: &[&Literal],
    ) -> OpResult<Literal> {
        if let Some(res) = lapack::custom_call(&cc.target, backend_config, out, ops) {
            return res;
        }
        match cc.target.as_str() {
            // XLA:CPU keeps `topk` as this custom call, with a "greater than" comparator.
            "TopK" => {
                let Some(Shape::Array(values)) = out.as_tuple().and_then(|t| t.first()) else {
                    return invalid("TopK must return (values, indices)");
                };
                let k = *values.dims.last().unwrap_or(&0);
                sort::topk(self, k, true, cc.called_computations.first().copied(), out, ops)
            }
            // Annotations that return their operand.
            "Sharding"
            | "SPMDFullToShardShape"
            | "SPMDShardToFullShape"
            | "annotate_device_placement"
            | "MoveToHost"
            | "MoveToDevice"
            | "xla_python_cpu_callback_identity"
                if ops.len() == 1 =>
            {
                let mut res = ops[0].clone();
                res.shape = out.clone();
                Ok(res)
            }
            target => unsupported(format!("custom-call target \"{target}\"")),
        }
    }
}

/// Arithmetic on 8- and 4-bit floats as XLA:CPU runs it (its float normalization): the
/// operands widened to f32, the op in f32, the result rounded once to the narrow type.
/// `None` for ops that do not compute on such values.
fn minifloat_arithmetic(op: &Op, out: &Shape, ops: &[&Literal], options: &Options) -> OpResult<Option<Literal>> {
    let mini = |d: DType| d.is_float() && d.bit_width() <= 8;
    if !matches!(op, Op::Unary(_) | Op::Binary(_) | Op::Compare { .. } | Op::Clamp) {
        return Ok(None);
    }
    if !ops.iter().any(|l| l.array_shape().is_some_and(|a| mini(a.dtype))) {
        return Ok(None);
    }
    let out_shape = out_array(out)?;
    let wide = ops
        .iter()
        .map(|l| {
            let (shape, data) = array_of(l)?;
            if mini(shape.dtype) {
                let data = crate::convert::convert(data, shape.dtype, DType::F32)?;
                Ok(Literal::array(shape.with_dtype(DType::F32), data))
            } else {
                Ok((*l).clone())
            }
        })
        .collect::<OpResult<Vec<Literal>>>()?;
    let wide_out = if mini(out_shape.dtype) { Shape::Array(out_shape.with_dtype(DType::F32)) } else { out.clone() };
    let refs: Vec<&Literal> = wide.iter().collect();
    let res = eval_detached(op, &wide_out, &refs, options)?;
    if !mini(out_shape.dtype) {
        return Ok(Some(res));
    }
    let (_, data) = array_of(&res)?;
    let narrow = crate::convert::convert(data, DType::F32, out_shape.dtype)?;
    Ok(Some(Literal::array(out_shape.clone(), narrow)))
}

/// True when XLA:CPU's denormal flushing applies to `op` (whose first operand has type
/// `from`, producing `to`): float arithmetic, but not the bit-level ops (sign flips,
/// classification, total-order compares, conversions to and from bf16).
fn flushes(op: &Op, from: Option<DType>, to: DType) -> bool {
    match op {
        Op::Convert => from.is_some_and(|from| crate::convert::flushes_subnormals(from, to)),
        // `real`, `imag` and `complex` move parts; the complex `abs` is arithmetic (a quotient
        // and a square root), unlike the real one.
        Op::Unary(UnaryOp::Abs) => from.is_some_and(|d| d.is_complex()),
        Op::Unary(u) if from.is_some_and(|d| crate::scalar_ops::complex_log_reads_subnormals(*u, d)) => false,
        Op::Unary(u) => {
            !matches!(u, UnaryOp::Negate | UnaryOp::IsFinite | UnaryOp::Real | UnaryOp::Imag | UnaryOp::Not)
        }
        Op::Binary(BinaryOp::Complex) => false,
        Op::Binary(_) | Op::Clamp => true,
        Op::Compare { compare_type, .. } => *compare_type != Some(CompareType::TotalOrder),
        _ => false,
    }
}

/// `a * b + c` (product operand 0) or `c + a * b` (operand 1), and the subtractions,
/// with one rounding, elementwise with broadcasting of single elements.
fn fused_multiply_add(
    op: BinaryOp,
    product_operand: usize,
    a: &Literal,
    b: &Literal,
    c: &Literal,
    out: &Shape,
    flush: bool,
) -> OpResult<Literal> {
    let out_shape = out_array(out)?;
    let (a, b, c) = (array_of(a)?.1, array_of(b)?.1, array_of(c)?.1);
    let n = out_shape.num_elements() as usize;
    if [a.len(), b.len(), c.len()].iter().any(|&k| k != n && k != 1) {
        return invalid("fused multiply-add operands do not match the result");
    }
    let (a, b, c) = if flush {
        (flushed(a), flushed(b), flushed(c))
    } else {
        (Cow::Borrowed(a), Cow::Borrowed(b), Cow::Borrowed(c))
    };
    // Signs: product - c, c - product, or plain sums.
    let (neg_product, neg_c) = match (op, product_operand) {
        (BinaryOp::Subtract, 0) => (false, true),
        (BinaryOp::Subtract, _) => (true, false),
        _ => (false, false),
    };
    let mut res = match (a.as_ref(), b.as_ref(), c.as_ref()) {
        (ArrayData::F32(a), ArrayData::F32(b), ArrayData::F32(c)) => {
            ArrayData::F32(elementwise::map3(a, b, c, |x, y, z| {
                let x = if neg_product { -x } else { x };
                x.mul_add(y, if neg_c { -z } else { z })
            }))
        }
        (ArrayData::F64(a), ArrayData::F64(b), ArrayData::F64(c)) => {
            ArrayData::F64(elementwise::map3(a, b, c, |x, y, z| {
                let x = if neg_product { -x } else { x };
                x.mul_add(y, if neg_c { -z } else { z })
            }))
        }
        _ => return invalid("fused multiply-add of non-f32/f64 operands"),
    };
    if flush {
        flush_in_place(&mut res);
    }
    Ok(make(out_shape, res))
}

/// Population count, leading zeros and shifts of 2- and 4-bit integers ([`crate::subbyte`]).
fn sub_byte_bit_op(op: &Op, dtype: DType, ops: &[&Literal]) -> Option<ArrayData> {
    let data: Option<Vec<&ArrayData>> = ops.iter().map(|l| l.array_data()).collect();
    crate::subbyte::bit_op(op, dtype, &data?)
}

/// Evaluates ops that need no module context (no called computations).
pub fn eval_detached(op: &Op, out: &Shape, ops: &[&Literal], options: &Options) -> OpResult<Literal> {
    if let Some(res) = minifloat_arithmetic(op, out, ops, options)? {
        return Ok(res);
    }
    let out_shape = out_array(out)?;
    if let Some(data) = sub_byte_bit_op(op, out_shape.dtype, ops) {
        return Ok(make(out_shape, data));
    }
    let from = ops.first().and_then(|l| l.array_shape()).map(|a| a.dtype);
    let flush = options.flush_denormals && flushes(op, from, out_shape.dtype);
    // atan2, pow and remainder of f32 (and narrower) read subnormal operands themselves in
    // XLA:CPU (their results are still flushed); its f64 versions behave otherwise, and the math
    // suite accepts the flushed reading there.
    // Complex ones are XLA's own formulas of flushing arithmetic, not library calls.
    let narrow_float =
        ops.first().and_then(|l| l.array_shape()).is_some_and(|a| a.dtype != DType::F64 && !a.dtype.is_complex());
    let library_binop =
        flush && narrow_float && matches!(op, Op::Binary(b) if crate::scalar_ops::reads_subnormal_operands(*b));
    let inputs: Vec<Cow<'_, ArrayData>> = if flush && !library_binop {
        ops.iter().map(|l| array_of(l).map(|(_, d)| flushed(d))).collect::<OpResult<_>>()?
    } else {
        Vec::new()
    };
    let data = |k: usize| -> OpResult<&ArrayData> {
        match inputs.get(k) {
            Some(d) => Ok(d.as_ref()),
            None => Ok(array_of(ops[k])?.1),
        }
    };
    let dtype = |k: usize| -> OpResult<DType> { Ok(array_of(ops[k])?.0.dtype) };
    let n_out = out_shape.num_elements() as usize;
    let check_len = |k: usize| -> OpResult<()> {
        let n = data(k)?.len();
        if n != n_out && n != 1 {
            return invalid(format!("operand {k} has {n} elements, the result {n_out}"));
        }
        Ok(())
    };
    let mut res = match op {
        Op::Iota { dimension } => shape_ops::iota(out_shape, *dimension)?,
        Op::Unary(u) => {
            check_len(0)?;
            elementwise::unary(*u, data(0)?)?
        }
        Op::Binary(b) => {
            check_len(0)?;
            check_len(1)?;
            if library_binop {
                elementwise::binary_xla_cpu(*b, data(0)?, data(1)?)?
            } else {
                elementwise::binary(*b, data(0)?, data(1)?)?
            }
        }
        Op::Compare { direction, compare_type } => {
            check_len(0)?;
            check_len(1)?;
            elementwise::compare(*direction, *compare_type, data(0)?, data(1)?)?
        }
        Op::Select => {
            (0..3).try_for_each(check_len)?;
            elementwise::select(data(0)?, data(1)?, data(2)?)?
        }
        Op::Clamp => {
            (0..3).try_for_each(check_len)?;
            elementwise::clamp(data(0)?, data(1)?, data(2)?)?
        }
        Op::Convert => {
            check_len(0)?;
            convert::convert(data(0)?, dtype(0)?, out_shape.dtype)?
        }
        Op::BitcastConvert => {
            let res = convert::bitcast_convert(data(0)?, dtype(0)?, out_shape.dtype)?;
            if res.len() != n_out {
                return invalid("bitcast-convert changes the total number of bits");
            }
            res
        }
        Op::ReducePrecision { exponent_bits, mantissa_bits } => {
            convert::reduce_precision(data(0)?, *exponent_bits, *mantissa_bits)?
        }
        Op::Broadcast { dimensions } => shape_ops::broadcast(ops[0], dimensions, out_shape)?,
        Op::Reshape => shape_ops::reshape(ops[0], out_shape)?,
        Op::StochasticConvert => {
            check_len(0)?;
            check_len(1)?;
            convert::stochastic_convert(data(0)?, dtype(0)?, data(1)?, dtype(1)?, out_shape.dtype)?
        }
        // Static sizes only: the result's dimensions, which the size operands must repeat.
        Op::DynamicReshape => {
            let sizes = ops[1..].iter().map(|l| scalar_i64(l)).collect::<OpResult<Vec<i64>>>()?;
            if out_shape.dynamic.iter().any(|&d| d) || sizes != out_shape.dims {
                return unsupported(format!(
                    "dynamic-reshape to sizes {sizes:?} with result {out_shape} (only static results of those sizes)"
                ));
            }
            shape_ops::reshape(ops[0], out_shape)?
        }
        // A size equal to the dimension's bound leaves the whole array as the value; a smaller
        // one would need every user to mask the padding.
        Op::SetDimensionSize { dimension } => {
            let (x, d) = array_of(ops[0])?;
            let size = scalar_i64(ops[1])?;
            if x.dims.get(*dimension as usize) != Some(&size) {
                return unsupported(format!(
                    "set-dimension-size to {size} below the bound of dimension {dimension} of {x} (dynamic sizes)"
                ));
            }
            d.clone()
        }
        Op::Transpose { dimensions } => shape_ops::transpose(ops[0], dimensions)?,
        Op::Reverse { dimensions } => shape_ops::reverse(ops[0], dimensions)?,
        Op::Fft { fft_type, fft_length } => crate::fft::fft(ops[0], *fft_type, fft_length, out_shape)?,
        Op::Slice { dims } => shape_ops::slice(ops[0], dims, out_shape)?,
        Op::DynamicSlice { sizes } => shape_ops::dynamic_slice(ops[0], &ops[1..], sizes)?,
        Op::DynamicUpdateSlice => shape_ops::dynamic_update_slice(ops[0], ops[1], &ops[2..])?,
        Op::Concatenate { dimension } => shape_ops::concatenate(ops, *dimension, out_shape)?,
        Op::Pad { dims } => shape_ops::pad(ops[0], ops[1], dims, out_shape)?,
        Op::Bitcast => shape_ops::bitcast(ops[0], out_shape)?,
        Op::Copy => {
            let (_, d) = array_of(ops[0])?;
            d.clone()
        }
        op => return unsupported(unsupported_reason(op)),
    };
    if res.len() != n_out {
        return invalid(format!("computed {} elements for a result of {n_out}", res.len()));
    }
    if !res.matches(out_shape.dtype) {
        return invalid(format!("computed elements do not have the result type {}", out_shape.dtype));
    }
    crate::array::wrap_subbyte(out_shape.dtype, &mut res);
    if flush {
        flush_in_place(&mut res);
    }
    Ok(make(out_shape, res))
}

fn unsupported_reason(op: &Op) -> String {
    match op {
        Op::Infeed | Op::Outfeed | Op::Send { .. } | Op::Recv { .. } | Op::SendDone { .. } | Op::RecvDone { .. } => {
            "host transfers are not available to an evaluator".into()
        }
        Op::Other { opcode: hlo_ir::Opcode::Scan } => "not implemented: XLA's `scan` (a loop over slices of its \
            inputs with carries, which XLA's ScanExpander lowers to a while loop) has changed form across XLA versions \
            and has no typed form in this IR; JAX writes `lax.scan` as a while loop"
            .into(),
        Op::Other { opcode: hlo_ir::Opcode::Shuffle } => "not implemented: XLA's `shuffle` (rotating or permuting \
            elements along dimensions, which XLA's ShuffleExpander lowers to slices and concatenations or a gather) \
            has changed form across XLA versions and has no typed form in this IR; JAX does not emit it"
            .into(),
        _ => "not implemented".into(),
    }
}

/// The fewest operands each op reads by position (so indexing them cannot fail).
fn min_operands(op: &Op) -> usize {
    match op {
        Op::Select | Op::Clamp | Op::SelectAndScatter { .. } | Op::Scatter { .. } | Op::RaggedDot { .. } => 3,
        Op::Binary(_)
        | Op::StochasticConvert
        | Op::SetDimensionSize { .. }
        | Op::Compare { .. }
        | Op::Pad { .. }
        | Op::Dot { .. }
        | Op::Convolution { .. }
        | Op::Gather { .. }
        | Op::DynamicUpdateSlice
        | Op::Reduce { .. }
        | Op::ReduceWindow { .. }
        | Op::Rng { .. } => 2,
        Op::Parameter { .. }
        | Op::Constant(_)
        | Op::Iota { .. }
        | Op::Tuple
        | Op::AfterAll
        | Op::PartitionId
        | Op::ReplicaId
        | Op::CustomCall(_)
        | Op::Call { .. }
        | Op::Fusion { .. }
        | Op::Map { .. }
        | Op::Concatenate { .. }
        | Op::Async { .. }
        | Op::RngGetAndUpdateState { .. }
        | Op::Other { .. } => 0,
        _ => 1,
    }
}

/// Element `index` of a tuple value.
fn tuple_element(lit: &Literal, index: usize) -> OpResult<Literal> {
    match lit.tuple_elements().and_then(|t| t.get(index)) {
        Some(e) => Ok(e.clone()),
        None => invalid(format!("tuple has no element {index}")),
    }
}

/// A zero value of any shape (for context operands nothing reads).
fn zeros_of(shape: &Shape) -> Literal {
    match shape {
        Shape::Array(a) => Literal::zeros(a.clone()),
        Shape::Tuple(elems) => {
            Literal { shape: shape.clone(), data: LiteralData::Tuple(elems.iter().map(zeros_of).collect()) }
        }
        Shape::Token => Literal { shape: Shape::Token, data: LiteralData::Token },
    }
}

/// The array shape of an instruction, or an error for tuple/token results.
pub fn out_array(shape: &Shape) -> OpResult<&ArrayShape> {
    match shape {
        Shape::Array(a) => Ok(a),
        other => invalid(format!("expected an array result, got {other}")),
    }
}

/// Argument shapes match parameters on element type and dimensions (layouts may differ).
fn shapes_match(expected: &Shape, got: &Shape) -> bool {
    match (expected, got) {
        (Shape::Array(a), Shape::Array(b)) => a.dtype == b.dtype && a.dims == b.dims,
        (Shape::Tuple(a), Shape::Tuple(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| shapes_match(x, y)),
        (Shape::Token, Shape::Token) => true,
        _ => false,
    }
}
