//! Building the IR from what the grammar reads: typed ops, name resolution, ordering.
//!
//! - [`op`] turns an opcode and its typed attributes into an [`Op`], reporting missing
//!   required attributes and invalid enumerators at the instruction.
//! - [`CompNames`] gives every computation name a provisional id when first mentioned
//!   (callees may be defined after their callers) and maps them to the final [`CompId`]s,
//!   which follow definition order, once the whole module is read.
//! - [`finish`] completes a computation: it resolves operands and control predecessors
//!   that were used before their definition, checks the parameter numbers, and, when the
//!   text used a name before defining it, sorts the instructions topologically (the IR
//!   requires operands first), keeping text order wherever the dependencies allow
//!   (Kahn's algorithm, earliest ready instruction first).

use crate::attrs::{is_collective, CompRef, NameRef, Value};
use crate::error::{PErr, PResult};
use crate::lexer::NameMap;
use crate::syntax::Body;
use hlo_ir::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A typed attribute as read.
pub(crate) struct Attr<'a> {
    pub name: &'a str,
    pub pos: usize,
    pub value: Value<'a>,
}

/// What an instruction's parentheses held besides operand names.
pub(crate) enum Payload {
    Operands,
    Parameter(u64),
    Constant(Box<Literal>),
}

/// Where a forward reference goes once resolved.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Slot {
    Operand(u32),
    Pred(u32),
}

/// A reference to an instruction defined later in the text.
pub(crate) struct Pending<'a> {
    pub instr: u32,
    pub slot: Slot,
    pub name: NameRef<'a>,
}

/// Computation names: provisional ids by first mention, final ids by definition order.
#[derive(Default)]
pub(crate) struct CompNames<'a> {
    ids: NameMap<'a, u32>,
    /// By provisional id: the first mention, and the definition's index once seen.
    first_mention: Vec<NameRef<'a>>,
    defined: Vec<Option<u32>>,
}

impl<'a> CompNames<'a> {
    fn intern(&mut self, r: NameRef<'a>) -> u32 {
        if let Some(&id) = self.ids.get(r.name) {
            return id;
        }
        let id = self.first_mention.len() as u32;
        self.ids.insert(r.name, id);
        self.first_mention.push(r);
        self.defined.push(None);
        id
    }

    /// Records the definition of computation number `index`.
    pub fn define(&mut self, r: NameRef<'a>, index: usize) -> PResult<()> {
        let id = self.intern(r) as usize;
        if self.defined[id].is_some() {
            return Err(PErr::new(
                r.pos,
                r.pos + r.name.len() + 1,
                format!("duplicate computation name '%{}'", r.name),
            ));
        }
        let index = u32::try_from(index).map_err(|_| PErr::new(r.pos, r.pos + 1, "too many computations"))?;
        self.defined[id] = Some(index);
        Ok(())
    }

    /// A provisional id for a reference; [`CompNames::resolve`] rewrites it.
    pub fn reference(&mut self, r: CompRef<'a>) -> CompId {
        match r {
            CompRef::Named(r) => CompId(self.intern(r)),
            CompRef::Inline(id) => id,
        }
    }

    /// A provisional id for computation number `index`, written inline at `pos`: it has no
    /// name to look up (one is made for it once the module is read).
    pub fn inline(&mut self, pos: usize, index: usize) -> PResult<CompId> {
        let index = u32::try_from(index).map_err(|_| PErr::new(pos, pos + 1, "too many computations"))?;
        let id = self.first_mention.len() as u32;
        self.first_mention.push(NameRef { name: "", pos });
        self.defined.push(Some(index));
        Ok(CompId(id))
    }

    /// Rewrites every provisional id in `comps` to its definition's [`CompId`], or reports
    /// the earliest reference to a computation that is never defined.
    pub fn resolve(&self, comps: &mut [Computation]) -> PResult<()> {
        let undefined = (0..self.defined.len()).filter(|&i| self.defined[i].is_none()).map(|i| self.first_mention[i]);
        if let Some(r) = undefined.min_by_key(|r| r.pos) {
            return Err(PErr::new(r.pos, r.pos + r.name.len() + 1, format!("undefined computation '%{}'", r.name)));
        }
        let actual: Vec<u32> = self.defined.iter().map(|d| d.unwrap_or(0)).collect();
        for comp in comps.iter_mut() {
            for instr in comp.instrs.iter_mut() {
                instr.op.map_called_computations(|p| CompId(actual.get(p.index()).copied().unwrap_or(0)));
            }
        }
        Ok(())
    }
}

/// Completes a computation once its closing brace is read.
pub(crate) fn finish(body: Body<'_>) -> PResult<(Computation, Vec<crate::syntax::Deferred>)> {
    let Body { mut comp, names, pending, params, root, deferred, operand_shapes } = body;
    let n = comp.instrs.len();
    let mut forward = false;
    for p in &pending {
        let Some(&target) = names.get(p.name.name) else {
            let r = p.name;
            return Err(PErr::new(r.pos, r.pos + r.name.len() + 1, format!("undefined instruction '%{}'", r.name)));
        };
        forward |= target >= p.instr;
        let id = InstrId::from_index(target as usize);
        let instr = &mut comp.instrs[p.instr as usize];
        match p.slot {
            Slot::Operand(i) => instr.operands[i as usize] = id,
            Slot::Pred(i) => instr.meta.control_predecessors[i as usize] = id,
        }
    }
    // A shape written before an operand must be that of the operand (layouts aside); an
    // operand whose own shape is inferred once the module is read is left to the verifier.
    for (instr, k, declared, start, end) in &operand_shapes {
        let Some(operand) = comp.instrs.get(*instr as usize).and_then(|i| i.operands.get(*k as usize)) else {
            continue;
        };
        let target = &comp.instrs[operand.index()];
        let inferred_later = deferred
            .iter()
            .any(|d| d.instr == target.name && matches!(d.kind, crate::syntax::DeferredKind::InferShape));
        if !inferred_later && !declared.compatible(&target.shape) {
            return Err(PErr::new(
                *start,
                *end,
                format!(
                    "the declared operand shape {} does not match the shape of '%{}', {}",
                    print::print_shape(declared),
                    target.name,
                    print::print_shape(&target.shape)
                ),
            ));
        }
    }
    // Parameter numbers must be `0..count`, each once.
    let mut seen = vec![false; params.len()];
    for &(_, number, start, end) in &params {
        let err = |message: String| PErr::new(start, end, message);
        match usize::try_from(number).ok().and_then(|n| seen.get_mut(n)) {
            None => {
                return Err(err(format!(
                    "parameter number {number} is out of range: the computation has {} parameters",
                    seen.len()
                )))
            }
            Some(true) => return Err(err(format!("duplicate parameter number {number}"))),
            Some(slot) => *slot = true,
        }
    }
    comp.params.truncate(params.len());
    comp.root = InstrId::from_index(root.map_or(n - 1, |r| r as usize));
    if forward {
        comp = sort(comp)?;
    }
    Ok((comp, deferred))
}

/// Reorders a computation whose text used names before defining them.
fn sort(comp: Computation) -> PResult<Computation> {
    let n = comp.instrs.len();
    let deps = |i: usize| {
        let instr = &comp.instrs[i];
        instr.operands.iter().chain(&instr.meta.control_predecessors).map(|d| d.index())
    };
    if (0..n).all(|i| deps(i).all(|d| d < i)) {
        return Ok(comp);
    }
    let mut users: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut waiting = vec![0u32; n];
    for (i, count) in waiting.iter_mut().enumerate() {
        for d in deps(i) {
            users[d].push(i as u32);
            *count += 1;
        }
    }
    let mut ready: BinaryHeap<Reverse<u32>> =
        (0..n as u32).filter(|&i| waiting[i as usize] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i as usize);
        for &u in &users[i as usize] {
            waiting[u as usize] -= 1;
            if waiting[u as usize] == 0 {
                ready.push(Reverse(u));
            }
        }
    }
    if order.len() != n {
        let stuck = (0..n).find(|&i| waiting[i] > 0).unwrap_or(0);
        let name = &comp.instrs[stuck].name;
        let pos = comp.spans[stuck].start as usize;
        return Err(PErr::new(
            pos,
            pos + name.len() + 1,
            format!("instruction '%{name}' depends on itself (a cycle through operands or control predecessors)"),
        ));
    }
    let mut new_id = vec![InstrId::from_index(0); n];
    for (pos, &old) in order.iter().enumerate() {
        new_id[old] = InstrId::from_index(pos);
    }
    let root = new_id[comp.root.index()];
    let Computation { name, instrs, spans, execution_thread, .. } = comp;
    let mut slots: Vec<Option<(Instr, Span)>> = instrs.into_iter().zip(spans).map(Some).collect();
    let mut sorted = Computation::new(name);
    sorted.execution_thread = execution_thread;
    for &old in &order {
        let Some((mut instr, span)) = slots[old].take() else { continue };
        for id in instr.operands.iter_mut().chain(instr.meta.control_predecessors.iter_mut()) {
            *id = new_id[id.index()];
        }
        sorted.push_with_span(instr, span);
    }
    sorted.root = root;
    Ok(sorted)
}

/// The typed attributes of one instruction, taken out by name as the op is built.
struct Attrs<'a, 'c> {
    list: &'c mut Vec<Attr<'a>>,
    opcode: Opcode,
    opcode_pos: usize,
    comp_names: &'c mut CompNames<'a>,
}

impl<'a> Attrs<'a, '_> {
    fn take(&mut self, name: &str) -> Option<(Value<'a>, usize)> {
        let i = self.list.iter().position(|a| a.name == name)?;
        let attr = self.list.swap_remove(i);
        Some((attr.value, attr.pos))
    }

    fn missing(&self, name: &str) -> PErr {
        PErr::new(
            self.opcode_pos,
            self.opcode_pos + self.opcode.name().len(),
            format!("missing attribute '{name}' of '{}'", self.opcode.name()),
        )
    }

    fn ints(&mut self, name: &str) -> PResult<Vec<i64>> {
        self.opt_ints(name)?.ok_or_else(|| self.missing(name))
    }

    fn opt_ints(&mut self, name: &str) -> PResult<Option<Vec<i64>>> {
        Ok(match self.take(name) {
            Some((Value::Ints(v), _)) => Some(v),
            _ => None,
        })
    }

    fn one_dim(&mut self, name: &str) -> PResult<i64> {
        let Some((value, pos)) = self.take(name) else {
            return Err(self.missing(name));
        };
        match value {
            Value::Ints(v) if v.len() == 1 => Ok(v[0]),
            Value::Ints(v) => Err(PErr::new(
                pos,
                pos + name.len(),
                format!("expected exactly one dimension in '{name}', found {}", v.len()),
            )),
            _ => Err(self.missing(name)),
        }
    }

    fn int(&mut self, name: &str) -> PResult<i64> {
        self.opt_int(name)?.ok_or_else(|| self.missing(name))
    }

    fn opt_int(&mut self, name: &str) -> PResult<Option<i64>> {
        Ok(match self.take(name) {
            Some((Value::Int(v), _)) => Some(v),
            _ => None,
        })
    }

    fn uint(&mut self, name: &str) -> PResult<u64> {
        let Some((value, pos)) = self.take(name) else {
            return Err(self.missing(name));
        };
        match value {
            Value::Int(v) => u64::try_from(v)
                .map_err(|_| PErr::new(pos, pos + name.len(), format!("'{name}' must be non-negative, found {v}"))),
            _ => Err(self.missing(name)),
        }
    }

    fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.take(name) {
            Some((Value::Bool(b), _)) => b,
            _ => default,
        }
    }

    fn comp(&mut self, name: &str) -> PResult<CompId> {
        self.opt_comp(name)?.ok_or_else(|| self.missing(name))
    }

    fn opt_comp(&mut self, name: &str) -> PResult<Option<CompId>> {
        Ok(match self.take(name) {
            Some((Value::Comp(r), _)) => Some(self.comp_names.reference(r)),
            _ => None,
        })
    }

    fn opt_comps(&mut self, name: &str) -> PResult<Option<Vec<CompId>>> {
        Ok(match self.take(name) {
            Some((Value::Comps(list), _)) => Some(list.into_iter().map(|r| self.comp_names.reference(r)).collect()),
            _ => None,
        })
    }

    /// An identifier attribute mapped through `parse`; `what` lists the accepted spellings.
    fn enumerator<T>(&mut self, name: &str, what: &str, parse: impl Fn(&str) -> Option<T>) -> PResult<Option<T>> {
        match self.take(name) {
            Some((Value::Ident(word), pos)) => parse(word).map(Some).ok_or_else(|| {
                let at = pos + name.len() + 1;
                PErr::new(at, at + word.len(), format!("expected {what}, found '{word}'"))
            }),
            _ => Ok(None),
        }
    }

    fn window(&mut self) -> Window {
        match self.take("window") {
            Some((Value::Window(w), _)) => w,
            _ => Window::default(),
        }
    }

    fn precision(&mut self) -> Vec<Precision> {
        match self.take("operand_precision") {
            Some((Value::Precision(p), _)) => p,
            _ => Vec::new(),
        }
    }

    fn dot_dims(&mut self) -> PResult<DotDims> {
        Ok(DotDims {
            lhs_batch: self.opt_ints("lhs_batch_dims")?.unwrap_or_default(),
            lhs_contracting: self.opt_ints("lhs_contracting_dims")?.unwrap_or_default(),
            rhs_batch: self.opt_ints("rhs_batch_dims")?.unwrap_or_default(),
            rhs_contracting: self.opt_ints("rhs_contracting_dims")?.unwrap_or_default(),
        })
    }
}

/// Builds the typed op of one instruction from its opcode, payload and typed attributes
/// (which it consumes from `list`). Computation references get provisional ids.
pub(crate) fn op<'a>(
    opcode: Opcode,
    opcode_pos: usize,
    payload: Payload,
    list: &mut Vec<Attr<'a>>,
    shape: &Shape,
    comp_names: &mut CompNames<'a>,
) -> PResult<Op> {
    let mut a = Attrs { list, opcode, opcode_pos, comp_names };
    use Opcode as O;
    if let Some(u) = UnaryOp::from_opcode(opcode) {
        return Ok(Op::Unary(u));
    }
    if let Some(b) = BinaryOp::from_opcode(opcode) {
        return Ok(Op::Binary(b));
    }
    if is_collective(opcode) {
        let attrs = CollectiveAttrs {
            channel_id: a.opt_int("channel_id")?,
            dimensions: a.opt_ints("dimensions")?.unwrap_or_default(),
            to_apply: a.opt_comp("to_apply")?,
        };
        return Ok(Op::Collective { opcode, attrs });
    }
    Ok(match opcode {
        O::Parameter => match payload {
            Payload::Parameter(number) => Op::Parameter { number },
            _ => return Err(a.missing("parameter number")),
        },
        O::Constant => match payload {
            Payload::Constant(lit) => Op::Constant(lit),
            _ => return Err(a.missing("literal")),
        },
        O::Iota => Op::Iota { dimension: a.int("iota_dimension")? },
        O::Compare => {
            let direction = a
                .enumerator("direction", "a comparison direction (EQ, NE, LT, LE, GT, GE)", |w| match w {
                    "EQ" => Some(CompareDirection::Eq),
                    "NE" => Some(CompareDirection::Ne),
                    "LT" => Some(CompareDirection::Lt),
                    "LE" => Some(CompareDirection::Le),
                    "GT" => Some(CompareDirection::Gt),
                    "GE" => Some(CompareDirection::Ge),
                    _ => None,
                })?
                .ok_or_else(|| a.missing("direction"))?;
            let compare_type =
                a.enumerator("type", "a comparison type (FLOAT, TOTALORDER, SIGNED, UNSIGNED)", |w| match w {
                    "FLOAT" => Some(CompareType::Float),
                    "TOTALORDER" => Some(CompareType::TotalOrder),
                    "SIGNED" => Some(CompareType::Signed),
                    "UNSIGNED" => Some(CompareType::Unsigned),
                    _ => None,
                })?;
            Op::Compare { direction, compare_type }
        }
        O::Select => Op::Select,
        O::Clamp => Op::Clamp,
        O::Convert => Op::Convert,
        O::BitcastConvert => Op::BitcastConvert,
        O::StochasticConvert => Op::StochasticConvert,
        O::ReducePrecision => {
            Op::ReducePrecision { exponent_bits: a.int("exponent_bits")?, mantissa_bits: a.int("mantissa_bits")? }
        }
        // XLA's parser wants `dimensions` only for a non-scalar operand; a missing list is empty,
        // which the verifier rejects for any other operand.
        O::Broadcast => Op::Broadcast { dimensions: a.opt_ints("dimensions")?.unwrap_or_default() },
        O::Reshape => Op::Reshape,
        O::DynamicReshape => Op::DynamicReshape,
        O::Transpose => Op::Transpose { dimensions: a.ints("dimensions")? },
        O::Reverse => Op::Reverse { dimensions: a.ints("dimensions")? },
        O::Slice => match a.take("slice") {
            Some((Value::Slice(dims), _)) => Op::Slice { dims },
            _ => return Err(a.missing("slice")),
        },
        O::DynamicSlice => Op::DynamicSlice { sizes: a.ints("dynamic_slice_sizes")? },
        O::DynamicUpdateSlice => Op::DynamicUpdateSlice,
        O::Concatenate => Op::Concatenate { dimension: a.one_dim("dimensions")? },
        O::Pad => match a.take("padding") {
            Some((Value::Padding(dims), _)) => Op::Pad { dims },
            _ => return Err(a.missing("padding")),
        },
        O::Bitcast => Op::Bitcast,
        O::Copy => Op::Copy,
        O::Tuple => Op::Tuple,
        O::GetTupleElement => Op::GetTupleElement { index: a.uint("index")? },
        O::Reduce => Op::Reduce { dimensions: a.ints("dimensions")?, to_apply: a.comp("to_apply")? },
        O::ReduceWindow => Op::ReduceWindow { window: a.window(), to_apply: a.comp("to_apply")? },
        O::SelectAndScatter => {
            Op::SelectAndScatter { window: a.window(), select: a.comp("select")?, scatter: a.comp("scatter")? }
        }
        O::Map => {
            // Without `dimensions`, a map applies over every dimension (XLA's only form).
            let rank = shape.as_array().map_or(0, |s| s.rank() as i64);
            let dimensions = a.opt_ints("dimensions")?.unwrap_or_else(|| (0..rank).collect());
            Op::Map { dimensions, to_apply: a.comp("to_apply")? }
        }
        O::Gather => {
            let dims = GatherDims {
                offset_dims: a.ints("offset_dims")?,
                collapsed_slice_dims: a.ints("collapsed_slice_dims")?,
                start_index_map: a.ints("start_index_map")?,
                index_vector_dim: a.int("index_vector_dim")?,
                operand_batching_dims: a.opt_ints("operand_batching_dims")?.unwrap_or_default(),
                start_indices_batching_dims: a.opt_ints("start_indices_batching_dims")?.unwrap_or_default(),
            };
            Op::Gather {
                dims,
                slice_sizes: a.ints("slice_sizes")?,
                indices_are_sorted: a.flag("indices_are_sorted", false),
            }
        }
        O::Scatter => {
            let dims = ScatterDims {
                update_window_dims: a.ints("update_window_dims")?,
                inserted_window_dims: a.ints("inserted_window_dims")?,
                scatter_dims_to_operand_dims: a.ints("scatter_dims_to_operand_dims")?,
                index_vector_dim: a.int("index_vector_dim")?,
                input_batching_dims: a.opt_ints("input_batching_dims")?.unwrap_or_default(),
                scatter_indices_batching_dims: a.opt_ints("scatter_indices_batching_dims")?.unwrap_or_default(),
            };
            Op::Scatter {
                dims,
                indices_are_sorted: a.flag("indices_are_sorted", false),
                unique_indices: a.flag("unique_indices", false),
                to_apply: a.comp("to_apply")?,
            }
        }
        O::Dot => {
            let algorithm = match a.take("algorithm") {
                Some((Value::Ident(w), _)) => Some(w.to_string()),
                _ => None,
            };
            Op::Dot { dims: a.dot_dims()?, precision: a.precision(), algorithm }
        }
        O::RaggedDot => Op::RaggedDot {
            dims: a.dot_dims()?,
            lhs_ragged: a.ints("lhs_ragged_dims")?,
            rhs_group: a.opt_ints("rhs_group_dims")?.unwrap_or_default(),
            precision: a.precision(),
        },
        O::ScaledDot => Op::ScaledDot { dims: a.dot_dims()?, precision: a.precision() },
        O::Convolution => {
            let dims = match a.take("dim_labels") {
                Some((Value::ConvDims(d), _)) => d,
                _ => return Err(a.missing("dim_labels")),
            };
            Op::Convolution {
                window: a.window(),
                dims,
                feature_group_count: a.opt_int("feature_group_count")?.unwrap_or(1),
                batch_group_count: a.opt_int("batch_group_count")?.unwrap_or(1),
                precision: a.precision(),
            }
        }
        O::Sort => Op::Sort {
            dimension: a.one_dim("dimensions")?,
            is_stable: a.flag("is_stable", false),
            to_apply: a.comp("to_apply")?,
        },
        O::TopK => Op::TopK { k: a.int("k")?, largest: a.flag("largest", true) },
        O::While => Op::While { condition: a.comp("condition")?, body: a.comp("body")? },
        O::Conditional => {
            let listed = a.opt_comps("branch_computations")?;
            let true_comp = a.opt_comp("true_computation")?;
            let false_comp = a.opt_comp("false_computation")?;
            let branches = match (listed, true_comp, false_comp) {
                (Some(list), None, None) => list,
                (None, Some(t), Some(f)) => vec![t, f],
                (None, None, Some(_)) => return Err(a.missing("true_computation")),
                (None, Some(_), None) => return Err(a.missing("false_computation")),
                (None, None, None) => return Err(a.missing("branch_computations")),
                (Some(_), _, _) => {
                    return Err(PErr::new(
                        opcode_pos,
                        opcode_pos + opcode.name().len(),
                        "conditional has both 'branch_computations' and 'true_computation'/'false_computation'",
                    ))
                }
            };
            Op::Conditional { branches }
        }
        O::Call => Op::Call { to_apply: a.comp("to_apply")?, is_composite: a.flag("is_composite", false) },
        O::Fusion => {
            let kind = a
                .enumerator("kind", "a fusion kind (kLoop, kInput, kOutput, kCustom)", |w| match w {
                    "kLoop" => Some(FusionKind::Loop),
                    "kInput" => Some(FusionKind::Input),
                    "kOutput" => Some(FusionKind::Output),
                    "kCustom" => Some(FusionKind::Custom),
                    _ => None,
                })?
                .ok_or_else(|| a.missing("kind"))?;
            Op::Fusion { kind, calls: a.comp("calls")? }
        }
        O::CustomCall => {
            let target = match a.take("custom_call_target") {
                Some((Value::Str(s), _)) => s,
                _ => return Err(a.missing("custom_call_target")),
            };
            let api_version =
                a.enumerator("api_version", "an API version (API_VERSION_ORIGINAL, ...)", |w| match w {
                    "API_VERSION_ORIGINAL" => Some(CustomCallApiVersion::Original),
                    "API_VERSION_STATUS_RETURNING" => Some(CustomCallApiVersion::StatusReturning),
                    "API_VERSION_STATUS_RETURNING_UNIFIED" => Some(CustomCallApiVersion::StatusReturningUnified),
                    "API_VERSION_TYPED_FFI" => Some(CustomCallApiVersion::TypedFfi),
                    _ => None,
                })?;
            let mut called_computations = a.opt_comps("called_computations")?.unwrap_or_default();
            called_computations.extend(a.opt_comp("to_apply")?);
            let operand_layout_constraints = match a.take("operand_layout_constraints") {
                Some((Value::Shapes(s), _)) => Some(s),
                _ => None,
            };
            let output_to_operand_aliasing = match a.take("output_to_operand_aliasing") {
                Some((Value::Aliasing(v), _)) => v,
                _ => Vec::new(),
            };
            let literal = match a.take("literal") {
                Some((Value::Literal(l), _)) => Some(*l),
                _ => None,
            };
            Op::CustomCall(Box::new(CustomCall {
                target,
                api_version,
                called_computations,
                has_side_effect: a.flag("custom_call_has_side_effect", false),
                operand_layout_constraints,
                output_to_operand_aliasing,
                literal,
            }))
        }
        O::Rng => {
            let distribution = a
                .enumerator("distribution", "a distribution (rng_uniform, rng_normal)", |w| {
                    match w.to_ascii_lowercase().as_str() {
                        "rng_uniform" => Some(RngDistribution::Uniform),
                        "rng_normal" => Some(RngDistribution::Normal),
                        _ => None,
                    }
                })?
                .ok_or_else(|| a.missing("distribution"))?;
            Op::Rng { distribution }
        }
        O::RngBitGenerator => {
            let algorithm = a
                .enumerator("algorithm", "an algorithm (rng_default, rng_three_fry, rng_philox)", |w| {
                    match w.to_ascii_lowercase().as_str() {
                        "rng_default" => Some(RngAlgorithm::Default),
                        "rng_three_fry" => Some(RngAlgorithm::ThreeFry),
                        "rng_philox" => Some(RngAlgorithm::Philox),
                        _ => None,
                    }
                })?
                .ok_or_else(|| a.missing("algorithm"))?;
            Op::RngBitGenerator { algorithm }
        }
        O::RngGetAndUpdateState => Op::RngGetAndUpdateState { delta: a.int("delta")? },
        O::Fft => {
            let fft_type = a
                .enumerator("fft_type", "an FFT type (FFT, IFFT, RFFT, IRFFT)", |w| match w {
                    "FFT" => Some(FftType::Fft),
                    "IFFT" => Some(FftType::Ifft),
                    "RFFT" => Some(FftType::Rfft),
                    "IRFFT" => Some(FftType::Irfft),
                    _ => None,
                })?
                .ok_or_else(|| a.missing("fft_type"))?;
            Op::Fft { fft_type, fft_length: a.ints("fft_length")? }
        }
        O::Cholesky => Op::Cholesky { lower: a.flag("lower", false) },
        O::TriangularSolve => {
            let transpose_a = a
                .enumerator("transpose_a", "a transpose kind (NO_TRANSPOSE, TRANSPOSE, ADJOINT)", |w| match w {
                    "NO_TRANSPOSE" => Some(TransposeKind::NoTranspose),
                    "TRANSPOSE" => Some(TransposeKind::Transpose),
                    "ADJOINT" => Some(TransposeKind::Adjoint),
                    _ => None,
                })?
                .unwrap_or(TransposeKind::NoTranspose);
            Op::TriangularSolve {
                left_side: a.flag("left_side", false),
                lower: a.flag("lower", false),
                unit_diagonal: a.flag("unit_diagonal", false),
                transpose_a,
            }
        }
        O::BatchNormTraining | O::BatchNormInference | O::BatchNormGrad => {
            let epsilon = match a.take("epsilon") {
                Some((Value::Float(x), _)) => x,
                _ => return Err(a.missing("epsilon")),
            };
            let feature_index = a.int("feature_index")?;
            match opcode {
                O::BatchNormTraining => Op::BatchNormTraining { epsilon, feature_index },
                O::BatchNormInference => Op::BatchNormInference { epsilon, feature_index },
                _ => Op::BatchNormGrad { epsilon, feature_index },
            }
        }
        O::GetDimensionSize => Op::GetDimensionSize { dimension: a.one_dim("dimensions")? },
        O::SetDimensionSize => Op::SetDimensionSize { dimension: a.one_dim("dimensions")? },
        O::AfterAll => Op::AfterAll,
        O::AddDependency => Op::AddDependency,
        O::OptimizationBarrier => Op::OptimizationBarrier,
        O::Domain => Op::Domain,
        O::PartitionId => Op::PartitionId,
        O::ReplicaId => Op::ReplicaId,
        O::Infeed => Op::Infeed,
        O::Outfeed => Op::Outfeed,
        O::Send | O::SendDone | O::Recv | O::RecvDone => {
            let channel_id = a.opt_int("channel_id")?;
            let is_host_transfer = a.flag("is_host_transfer", false);
            match opcode {
                O::Send => Op::Send { channel_id, is_host_transfer },
                O::SendDone => Op::SendDone { channel_id, is_host_transfer },
                O::Recv => Op::Recv { channel_id, is_host_transfer },
                _ => Op::RecvDone { channel_id, is_host_transfer },
            }
        }
        O::CopyStart => Op::CopyStart,
        O::CopyDone => Op::CopyDone,
        O::AsyncStart | O::AsyncUpdate | O::AsyncDone => Op::Async { opcode, calls: a.opt_comp("calls")? },
        _ => Op::Other { opcode },
    })
}
