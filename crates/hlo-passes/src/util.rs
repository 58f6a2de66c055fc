//! Shared rewriting helpers: use lists, use replacement, compaction
//! (dead-instruction removal plus topological renumbering), computation
//! reachability and renumbering, unique names, and small shape/literal queries.
//!
//! Passes edit a computation freely (rewrite an instruction in place, append
//! new instructions at the end of the arena, redirect uses) and then call
//! [`compact`], which restores the arena invariant: operands before users.

use crate::PassError;
use hlo_ir::{ArrayData, CompId, Computation, InstrId, Literal, LiteralData, Module, Op, Shape};
use std::collections::HashMap;

/// The distinct users of every instruction, in increasing id order.
pub(crate) fn users(comp: &Computation) -> Vec<Vec<InstrId>> {
    let mut res: Vec<Vec<InstrId>> = vec![Vec::new(); comp.instrs.len()];
    for id in comp.ids() {
        for &op in &comp.instr(id).operands {
            let list = &mut res[op.index()];
            if list.last() != Some(&id) {
                list.push(id);
            }
        }
    }
    res
}

/// Applies a replacement map (old id -> new id, chased to a fixpoint) to every operand and the root.
pub(crate) fn apply_replacements(comp: &mut Computation, repl: &HashMap<InstrId, InstrId>) {
    if repl.is_empty() {
        return;
    }
    let resolve = |mut id: InstrId| {
        let mut steps = 0;
        while let Some(&next) = repl.get(&id) {
            if next == id || steps > repl.len() {
                break;
            }
            id = next;
            steps += 1;
        }
        id
    };
    for instr in &mut comp.instrs {
        for op in &mut instr.operands {
            *op = resolve(*op);
        }
    }
    comp.root = resolve(comp.root);
}

/// True for operations that must run even when their result is unused, and that
/// must not be merged with an identical twin.
pub(crate) fn is_side_effecting(op: &Op) -> bool {
    match op {
        Op::CustomCall(cc) => cc.has_side_effect,
        Op::Rng { .. }
        | Op::RngGetAndUpdateState { .. }
        | Op::Infeed
        | Op::Outfeed
        | Op::Send { .. }
        | Op::SendDone { .. }
        | Op::Recv { .. }
        | Op::RecvDone { .. }
        | Op::AfterAll
        | Op::Collective { .. }
        | Op::Async { .. } => true,
        _ => false,
    }
}

/// Removes instructions that do not reach the root (parameters and
/// side-effecting instructions are always kept), and renumbers the arena in a
/// topological order that keeps the existing order wherever it is already valid.
/// Returns whether anything changed.
pub(crate) fn compact(comp: &mut Computation) -> Result<bool, PassError> {
    let n = comp.instrs.len();
    // Liveness: everything reachable from the root, parameters and side effects.
    let mut live = vec![false; n];
    let mut stack: Vec<InstrId> = vec![comp.root];
    stack.extend(comp.params.iter().copied());
    stack.extend(comp.ids().filter(|&id| is_side_effecting(&comp.instr(id).op)));
    while let Some(id) = stack.pop() {
        if id.index() >= n {
            return Err(PassError::Internal(format!("computation {}: operand {id:?} out of range", comp.name)));
        }
        if std::mem::replace(&mut live[id.index()], true) {
            continue;
        }
        stack.extend(comp.instr(id).operands.iter().copied());
    }
    // Topological order by depth-first post-order, seeded in arena order.
    // 0 = unvisited, 1 = on the stack, 2 = emitted.
    let mut state = vec![0u8; n];
    let mut order: Vec<InstrId> = Vec::with_capacity(n);
    for seed in comp.ids() {
        if !live[seed.index()] || state[seed.index()] == 2 {
            continue;
        }
        let mut dfs: Vec<(InstrId, usize)> = vec![(seed, 0)];
        state[seed.index()] = 1;
        while let Some(&mut (id, ref mut next)) = dfs.last_mut() {
            let instr = comp.instr(id);
            let n_ops = instr.operands.len();
            let n_preds = n_ops + instr.meta.control_predecessors.len();
            if *next < n_preds {
                let pred =
                    if *next < n_ops { instr.operands[*next] } else { instr.meta.control_predecessors[*next - n_ops] };
                *next += 1;
                if pred.index() >= n || !live[pred.index()] {
                    continue;
                }
                match state[pred.index()] {
                    0 => {
                        state[pred.index()] = 1;
                        dfs.push((pred, 0));
                    }
                    1 => {
                        return Err(PassError::Internal(format!(
                            "computation {}: cycle through {}",
                            comp.name,
                            comp.instr(pred).name
                        )))
                    }
                    _ => {}
                }
            } else {
                state[id.index()] = 2;
                order.push(id);
                dfs.pop();
            }
        }
    }
    let unchanged = order.len() == n && order.iter().enumerate().all(|(i, id)| id.index() == i);
    if unchanged {
        return Ok(false);
    }
    let mut map: Vec<Option<InstrId>> = vec![None; n];
    for (new, old) in order.iter().enumerate() {
        map[old.index()] = Some(InstrId::from_index(new));
    }
    let mut old_instrs: Vec<Option<hlo_ir::Instr>> = std::mem::take(&mut comp.instrs).into_iter().map(Some).collect();
    let old_spans = std::mem::take(&mut comp.spans);
    for old in &order {
        let mut instr = old_instrs[old.index()].take().expect("each instruction is emitted once");
        for op in &mut instr.operands {
            *op = map[op.index()].expect("operands of live instructions are live");
        }
        instr.meta.control_predecessors =
            instr.meta.control_predecessors.iter().filter_map(|p| map.get(p.index()).copied().flatten()).collect();
        comp.instrs.push(instr);
        comp.spans.push(old_spans.get(old.index()).copied().unwrap_or_default());
    }
    comp.root = map[comp.root.index()].expect("root is live");
    for p in &mut comp.params {
        *p = map[p.index()].expect("parameters are live");
    }
    Ok(true)
}

/// Computations reachable from the entry through called computations, in module order.
pub(crate) fn reachable_comps(module: &Module) -> Vec<bool> {
    let mut seen = vec![false; module.comps.len()];
    let mut stack = vec![module.entry];
    while let Some(c) = stack.pop() {
        if c.index() >= seen.len() || std::mem::replace(&mut seen[c.index()], true) {
            continue;
        }
        for instr in &module.comp(c).instrs {
            stack.extend(instr.op.called_computations());
        }
    }
    seen
}

/// Removes computations not reachable from the entry and renumbers the rest,
/// rewriting every called-computation id. Returns whether anything was removed.
pub(crate) fn remove_unreachable_comps(module: &mut Module) -> bool {
    let keep = reachable_comps(module);
    if keep.iter().all(|&k| k) {
        return false;
    }
    let mut map: Vec<Option<CompId>> = vec![None; module.comps.len()];
    let mut next = 0u32;
    for (i, &k) in keep.iter().enumerate() {
        if k {
            map[i] = Some(CompId(next));
            next += 1;
        }
    }
    let comps = std::mem::take(&mut module.comps);
    module.comps = comps.into_iter().zip(&keep).filter(|(_, &k)| k).map(|(c, _)| c).collect();
    for comp in &mut module.comps {
        for instr in &mut comp.instrs {
            instr
                .op
                .map_called_computations(|c| map[c.index()].expect("callees of reachable computations are reachable"));
        }
    }
    module.entry = map[module.entry.index()].expect("entry is reachable");
    true
}

/// Hands out instruction and computation names that are unique in a module.
pub(crate) struct NameUniquer {
    /// How many items use each name.
    taken: HashMap<String, usize>,
}

impl NameUniquer {
    pub(crate) fn new(module: &Module) -> NameUniquer {
        let mut taken: HashMap<String, usize> = HashMap::new();
        for comp in &module.comps {
            *taken.entry(comp.name.clone()).or_default() += 1;
            for instr in &comp.instrs {
                *taken.entry(instr.name.clone()).or_default() += 1;
            }
        }
        NameUniquer { taken }
    }

    fn is_free(&self, name: &str) -> bool {
        self.taken.get(name).is_none_or(|&n| n == 0)
    }

    /// `base` if free, otherwise `base.N` for the smallest free `N`.
    pub(crate) fn fresh(&mut self, base: &str) -> String {
        let name = if self.is_free(base) {
            base.to_string()
        } else {
            // Strip an existing numeric suffix so that names do not grow `.1.1.1`.
            let stem = match base.rsplit_once('.') {
                Some((stem, num)) if !stem.is_empty() && num.chars().all(|c| c.is_ascii_digit()) => stem,
                _ => base,
            };
            (1u64..).map(|i| format!("{stem}.{i}")).find(|n| self.is_free(n)).expect("some suffix is free")
        };
        *self.taken.entry(name.clone()).or_default() += 1;
        name
    }

    /// Marks one use of `name` as gone (its item is about to be removed).
    pub(crate) fn release(&mut self, name: &str) {
        if let Some(n) = self.taken.get_mut(name) {
            *n = n.saturating_sub(1);
        }
    }
}

/// The dimensions of an array shape (empty for tuples and tokens).
pub(crate) fn dims(shape: &Shape) -> &[i64] {
    shape.as_array().map(|a| a.dims.as_slice()).unwrap_or(&[])
}

/// Number of elements of an array shape; tuples count their leaves.
pub(crate) fn num_elements(shape: &Shape) -> u64 {
    match shape {
        Shape::Array(a) => a.num_elements(),
        Shape::Tuple(elems) => elems.iter().map(num_elements).sum(),
        Shape::Token => 0,
    }
}

/// True when the two literals hold the same bits (so `0.0` and `-0.0` differ
/// and a NaN equals the same NaN), which is the equality CSE and folding need.
pub(crate) fn literal_identical(a: &Literal, b: &Literal) -> bool {
    if a.shape != b.shape {
        return false;
    }
    match (&a.data, &b.data) {
        (LiteralData::Array(x), LiteralData::Array(y)) => array_identical(x, y),
        (LiteralData::Tuple(x), LiteralData::Tuple(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| literal_identical(p, q))
        }
        (LiteralData::Token, LiteralData::Token) => true,
        _ => false,
    }
}

fn array_identical(x: &ArrayData, y: &ArrayData) -> bool {
    match (x, y) {
        (ArrayData::F16(a), ArrayData::F16(b)) => a.iter().map(|v| v.to_bits()).eq(b.iter().map(|v| v.to_bits())),
        (ArrayData::BF16(a), ArrayData::BF16(b)) => a.iter().map(|v| v.to_bits()).eq(b.iter().map(|v| v.to_bits())),
        (ArrayData::F32(a), ArrayData::F32(b)) => a.iter().map(|v| v.to_bits()).eq(b.iter().map(|v| v.to_bits())),
        (ArrayData::F64(a), ArrayData::F64(b)) => a.iter().map(|v| v.to_bits()).eq(b.iter().map(|v| v.to_bits())),
        (ArrayData::C64(a), ArrayData::C64(b)) => {
            a.iter().flat_map(|v| v.map(f32::to_bits)).eq(b.iter().flat_map(|v| v.map(f32::to_bits)))
        }
        (ArrayData::C128(a), ArrayData::C128(b)) => {
            a.iter().flat_map(|v| v.map(f64::to_bits)).eq(b.iter().flat_map(|v| v.map(f64::to_bits)))
        }
        _ => x == y,
    }
}

/// The value of every element of an array literal as `f64` when all elements
/// are equal (pred as 0/1); `None` for complex, tuples, empty arrays or mixed values.
pub(crate) fn uniform_value(lit: &Literal) -> Option<f64> {
    let data = lit.array_data()?;
    fn all_same<T: Copy, F: Fn(T) -> f64>(v: &[T], f: F) -> Option<f64> {
        let first = f(*v.first()?);
        v.iter().all(|&x| f(x).to_bits() == first.to_bits()).then_some(first)
    }
    match data {
        ArrayData::Pred(v) => all_same(v, |x| x as u8 as f64),
        ArrayData::S8(v) => all_same(v, |x| x as f64),
        ArrayData::S16(v) => all_same(v, |x| x as f64),
        ArrayData::S32(v) => all_same(v, |x| x as f64),
        ArrayData::S64(v) => all_same(v, |x| x as f64),
        ArrayData::U8(v) => all_same(v, |x| x as f64),
        ArrayData::U16(v) => all_same(v, |x| x as f64),
        ArrayData::U32(v) => all_same(v, |x| x as f64),
        ArrayData::U64(v) => all_same(v, |x| x as f64),
        ArrayData::F16(v) => all_same(v, |x| x.to_f64()),
        ArrayData::BF16(v) => all_same(v, |x| x.to_f64()),
        ArrayData::F32(v) => all_same(v, |x| x as f64),
        ArrayData::F64(v) => all_same(v, |x| x),
        _ => None,
    }
}

/// The uniform value of a constant, or of a broadcast of a uniform constant.
pub(crate) fn uniform_constant(comp: &Computation, id: InstrId) -> Option<f64> {
    let instr = comp.instr(id);
    match &instr.op {
        Op::Constant(lit) => uniform_value(lit),
        Op::Broadcast { .. } => uniform_constant(comp, *instr.operands.first()?),
        _ => None,
    }
}

/// Removes every layout from a shape, recursively.
pub(crate) fn strip_layout(shape: &mut Shape) {
    match shape {
        Shape::Array(a) => a.layout = None,
        Shape::Tuple(elems) => elems.iter_mut().for_each(strip_layout),
        Shape::Token => {}
    }
}

/// Sets the explicit row-major layout on every array of a shape, recursively.
pub(crate) fn set_row_major(shape: &mut Shape) {
    match shape {
        Shape::Array(a) => a.layout = Some(hlo_ir::Layout::row_major(a.rank())),
        Shape::Tuple(elems) => elems.iter_mut().for_each(set_row_major),
        Shape::Token => {}
    }
}

/// The inverse of a permutation.
pub(crate) fn inverse_permutation(perm: &[i64]) -> Vec<i64> {
    let mut inv = vec![0i64; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p as usize] = i as i64;
    }
    inv
}

/// True when `perm` is `0..n`.
pub(crate) fn is_identity_permutation(perm: &[i64]) -> bool {
    perm.iter().enumerate().all(|(i, &p)| p == i as i64)
}

/// True when transposing an array of `dims` by `perm` keeps the relative order
/// of every dimension larger than one, so the transpose is a reshape.
pub(crate) fn transpose_is_reshape(dims: &[i64], perm: &[i64]) -> bool {
    let kept: Vec<i64> = perm.iter().copied().filter(|&p| dims[p as usize] != 1).collect();
    kept.windows(2).all(|w| w[0] < w[1])
}

/// The computations that are "control" computations of a module: the entry and
/// the bodies, conditions and branches of `while`/`conditional`/`call` reached
/// from it. Other computations (reducers, comparators, fusion bodies) are
/// applied per element by the ops that name them.
pub(crate) fn control_comps(module: &Module) -> Vec<CompId> {
    let mut seen = vec![false; module.comps.len()];
    let mut out = Vec::new();
    let mut stack = vec![module.entry];
    while let Some(c) = stack.pop() {
        if c.index() >= seen.len() || std::mem::replace(&mut seen[c.index()], true) {
            continue;
        }
        out.push(c);
        for instr in &module.comp(c).instrs {
            match &instr.op {
                Op::While { condition, body } => stack.extend([*condition, *body]),
                Op::Conditional { branches } => stack.extend(branches.iter().copied()),
                Op::Call { to_apply, .. } => stack.push(*to_apply),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Reorders computations so that every callee precedes its callers (the order
/// XLA prints), keeping the existing order wherever it already satisfies that.
/// Returns whether the order changed.
pub(crate) fn order_callees_first(module: &mut Module) -> bool {
    let n = module.comps.len();
    let mut state = vec![0u8; n];
    let mut order: Vec<usize> = Vec::with_capacity(n);
    for seed in 0..n {
        if state[seed] != 0 {
            continue;
        }
        let mut dfs: Vec<(usize, Vec<CompId>, usize)> = vec![(seed, callees(module, seed), 0)];
        state[seed] = 1;
        while let Some((c, list, next)) = dfs.last_mut() {
            if *next < list.len() {
                let callee = list[*next].index();
                *next += 1;
                if callee < n && state[callee] == 0 {
                    state[callee] = 1;
                    let list = callees(module, callee);
                    dfs.push((callee, list, 0));
                }
            } else {
                state[*c] = 2;
                order.push(*c);
                dfs.pop();
            }
        }
    }
    if order.iter().enumerate().all(|(i, &c)| i == c) {
        return false;
    }
    let mut map = vec![CompId(0); n];
    for (new, &old) in order.iter().enumerate() {
        map[old] = CompId(new as u32);
    }
    let mut old: Vec<Option<Computation>> = std::mem::take(&mut module.comps).into_iter().map(Some).collect();
    module.comps = order.iter().map(|&c| old[c].take().expect("each computation once")).collect();
    for comp in &mut module.comps {
        for instr in &mut comp.instrs {
            instr.op.map_called_computations(|c| map[c.index()]);
        }
    }
    module.entry = map[module.entry.index()];
    true
}

/// The distinct computations `comp` calls, in order of first call.
fn callees(module: &Module, comp: usize) -> Vec<CompId> {
    let mut res: Vec<CompId> = Vec::new();
    for instr in &module.comps[comp].instrs {
        for c in instr.op.called_computations() {
            if !res.contains(&c) {
                res.push(c);
            }
        }
    }
    res
}

/// Appends elementwise instructions that replace the instruction `at`: every new value has
/// `at`'s dimensions, its metadata and its source span (so an error later names its line).
/// Expansions build their graph with it and then turn `at` itself into the last step.
pub(crate) struct Splice<'a> {
    pub comp: &'a mut Computation,
    pub names: &'a mut NameUniquer,
    pub at: InstrId,
    pub dims: Vec<i64>,
}

/// Appends `op(operands)` of type `dtype[dims]` to `comp` as part of the expansion of `at`:
/// named after it, with its metadata and source span (so an error later names its line).
pub(crate) fn push_expansion_step(
    comp: &mut Computation,
    names: &mut NameUniquer,
    at: InstrId,
    (dtype, dims): (hlo_ir::DType, &[i64]),
    op: Op,
    operands: Vec<InstrId>,
) -> InstrId {
    let base = comp.instr(at);
    let shape = Shape::Array(hlo_ir::ArrayShape::new(dtype, dims.to_vec()));
    let mut instr = hlo_ir::Instr::new(names.fresh(&base.name), shape, op, operands);
    instr.meta.metadata = base.meta.metadata.clone();
    let span = comp.span(at);
    comp.push_with_span(instr, span)
}

impl Splice<'_> {
    /// Appends `op(operands)` with element type `dtype`.
    pub fn push(&mut self, dtype: hlo_ir::DType, op: Op, operands: Vec<InstrId>) -> InstrId {
        push_expansion_step(self.comp, self.names, self.at, (dtype, &self.dims), op, operands)
    }

    /// `x`'s element type.
    pub fn dtype(&self, x: InstrId) -> hlo_ir::DType {
        self.comp.instr(x).shape.as_array().map(|a| a.dtype).unwrap_or(hlo_ir::DType::Pred)
    }

    pub fn unary(&mut self, op: hlo_ir::UnaryOp, x: InstrId) -> InstrId {
        let dtype = self.dtype(x);
        self.push(dtype, Op::Unary(op), vec![x])
    }

    pub fn binary(&mut self, op: hlo_ir::BinaryOp, a: InstrId, b: InstrId) -> InstrId {
        let dtype = self.dtype(a);
        self.push(dtype, Op::Binary(op), vec![a, b])
    }

    pub fn compare(&mut self, direction: hlo_ir::CompareDirection, a: InstrId, b: InstrId) -> InstrId {
        self.push(hlo_ir::DType::Pred, Op::Compare { direction, compare_type: None }, vec![a, b])
    }

    pub fn select(&mut self, p: InstrId, a: InstrId, b: InstrId) -> InstrId {
        let dtype = self.dtype(a);
        self.push(dtype, Op::Select, vec![p, a, b])
    }

    pub fn convert(&mut self, x: InstrId, dtype: hlo_ir::DType) -> InstrId {
        self.push(dtype, Op::Convert, vec![x])
    }

    pub fn bitcast_convert(&mut self, x: InstrId, dtype: hlo_ir::DType) -> InstrId {
        self.push(dtype, Op::BitcastConvert, vec![x])
    }

    /// The scalar `data` (one element of type `dtype`) broadcast to the dimensions.
    pub fn splat(&mut self, dtype: hlo_ir::DType, data: ArrayData) -> InstrId {
        let scalar = Shape::Array(hlo_ir::ArrayShape::scalar(dtype));
        let base = self.comp.instr(self.at);
        let lit = Literal { shape: scalar.clone(), data: LiteralData::Array(data) };
        let mut instr = hlo_ir::Instr::new(self.names.fresh(&base.name), scalar, Op::Constant(Box::new(lit)), vec![]);
        instr.meta.metadata = base.meta.metadata.clone();
        let span = self.comp.span(self.at);
        let c = self.comp.push_with_span(instr, span);
        self.push(dtype, Op::Broadcast { dimensions: vec![] }, vec![c])
    }

    /// The float `v` rounded once to the float type `dtype` (an f64 constant converted, which
    /// constant folding evaluates), broadcast to the dimensions.
    pub fn splat_float(&mut self, dtype: hlo_ir::DType, v: f64) -> InstrId {
        let scalar = Shape::Array(hlo_ir::ArrayShape::scalar(hlo_ir::DType::F64));
        let base = self.comp.instr(self.at);
        let lit = Literal { shape: scalar.clone(), data: LiteralData::Array(ArrayData::F64(vec![v])) };
        let mut instr = hlo_ir::Instr::new(self.names.fresh(&base.name), scalar, Op::Constant(Box::new(lit)), vec![]);
        instr.meta.metadata = base.meta.metadata.clone();
        let span = self.comp.span(self.at);
        let mut c = self.comp.push_with_span(instr, span);
        if dtype != hlo_ir::DType::F64 {
            let shape = Shape::Array(hlo_ir::ArrayShape::scalar(dtype));
            let name = self.names.fresh(&self.comp.instr(self.at).name);
            c = self.comp.push_with_span(hlo_ir::Instr::new(name, shape, Op::Convert, vec![c]), span);
        }
        self.push(dtype, Op::Broadcast { dimensions: vec![] }, vec![c])
    }

    /// Turns `at` into `x`'s value (a `convert` to its own type, which simplification removes),
    /// so its users are untouched.
    pub fn finish(self, x: InstrId) {
        let target = self.comp.instr_mut(self.at);
        target.op = Op::Convert;
        target.operands = vec![x];
        target.meta.other_attrs.clear();
    }
}

/// Replaces every array-shaped instruction `wanted` picks, in every computation, by the
/// elementwise expansion `expand` builds with a [`Splice`] (given the result's element type and
/// the operands); returns whether anything changed.
pub(crate) fn expand_elementwise(
    module: &mut hlo_ir::Module,
    wanted: impl Fn(&hlo_ir::Instr) -> bool,
    mut expand: impl FnMut(&mut Splice<'_>, hlo_ir::DType, &[InstrId]) -> InstrId,
) -> Result<bool, crate::PassError> {
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    for comp in &mut module.comps {
        let ids: Vec<InstrId> =
            comp.ids().filter(|&id| comp.instr(id).shape.as_array().is_some() && wanted(comp.instr(id))).collect();
        if ids.is_empty() {
            continue;
        }
        for id in ids {
            let instr = comp.instr(id);
            let operands = instr.operands.clone();
            let Some(shape) = instr.shape.as_array().cloned() else { continue };
            let mut s = Splice { comp, names: &mut names, at: id, dims: shape.dims };
            let res = expand(&mut s, shape.dtype, &operands);
            s.finish(res);
        }
        compact(comp)?;
        changed = true;
    }
    Ok(changed)
}

/// One element of integer type `dtype` holding `v` (wrapped to the type's width).
pub(crate) fn int_scalar(dtype: hlo_ir::DType, v: i128) -> Option<ArrayData> {
    use hlo_ir::DType as D;
    Some(match dtype {
        D::S8 => ArrayData::S8(vec![v as i8]),
        D::S16 => ArrayData::S16(vec![v as i16]),
        D::S32 => ArrayData::S32(vec![v as i32]),
        D::S64 => ArrayData::S64(vec![v as i64]),
        D::U8 => ArrayData::U8(vec![v as u8]),
        D::U16 => ArrayData::U16(vec![v as u16]),
        D::U32 => ArrayData::U32(vec![v as u32]),
        D::U64 => ArrayData::U64(vec![v as u64]),
        _ => return None,
    })
}

/// The unsigned integer type of `dtype`'s width (itself when unsigned).
pub(crate) fn unsigned_of(dtype: hlo_ir::DType) -> Option<hlo_ir::DType> {
    use hlo_ir::DType as D;
    Some(match dtype {
        D::S8 | D::U8 => D::U8,
        D::S16 | D::U16 => D::U16,
        D::S32 | D::U32 => D::U32,
        D::S64 | D::U64 => D::U64,
        _ => return None,
    })
}

/// The computation `name` of module: a scalar `add` over `dtype` (a reducer for the sums passes
/// write), created once.
pub(crate) fn scalar_add_computation(module: &mut Module, name: &str, dtype: hlo_ir::DType) -> CompId {
    if let Some(id) = module.find_comp(name) {
        return id;
    }
    let scalar = Shape::Array(hlo_ir::ArrayShape::scalar(dtype));
    let mut c = Computation::new(name.to_string());
    let a = c.push(hlo_ir::Instr::new("a", scalar.clone(), Op::Parameter { number: 0 }, vec![]));
    let b = c.push(hlo_ir::Instr::new("b", scalar.clone(), Op::Parameter { number: 1 }, vec![]));
    c.root = c.push(hlo_ir::Instr::new("sum", scalar, Op::Binary(hlo_ir::BinaryOp::Add), vec![a, b]));
    module.comps.push(c);
    CompId(module.comps.len() as u32 - 1)
}

/// Helpers for the passes' unit tests: parse HLO text, run a pass, compare printed text.
#[cfg(test)]
pub(crate) mod testing {
    use hlo_ir::Module;

    pub(crate) fn parse(text: &str) -> Module {
        let module =
            hlo_parse::parse_module(text).unwrap_or_else(|e| panic!("test module does not parse: {e}\n{text}"));
        crate::pipeline::verify_after("parse", &module).unwrap_or_else(|e| panic!("{e}"));
        module
    }

    /// The printed module without its `HloModule` header, one trimmed line per instruction.
    pub(crate) fn print(module: &Module) -> String {
        let text = hlo_ir::print::print_module(module);
        text.lines().skip(1).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n")
    }

    /// Runs `pass` on `input`, verifies the result, and returns whether it changed and the printed module.
    pub(crate) fn run(pass: crate::PassFn, input: &str) -> (bool, Module) {
        let mut module = parse(input);
        let changed = pass(&mut module).unwrap_or_else(|e| panic!("pass failed: {e}"));
        crate::pipeline::verify_after("test pass", &module).unwrap_or_else(|e| panic!("{e}"));
        (changed, module)
    }

    /// Runs `pass` on `input` and compares the printed result with `expected` (whitespace-insensitive per line).
    pub(crate) fn check(pass: crate::PassFn, input: &str, expected: &str) {
        let (_, module) = run(pass, input);
        let got = print(&module);
        let want = expected.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n");
        assert_eq!(got, want, "\n--- got ---\n{got}\n--- want ---\n{want}\n");
    }

    /// Runs `pass` on `input` and checks that it reports no change and leaves the module as it was.
    pub(crate) fn check_unchanged(pass: crate::PassFn, input: &str) {
        let before = print(&parse(input));
        let (changed, module) = run(pass, input);
        assert_eq!(print(&module), before);
        assert!(!changed, "the pass reported a change but printed the same module");
    }
}
