//! `lower-complex`: complex arrays become pairs of real arrays (real part, imaginary part), so
//! that every op on them runs on the device's real arithmetic, and `fft` becomes dots with
//! constant DFT matrices ([`fft`]).
//!
//! Each complex value of `c64[S]` (`c128[S]`) is two `f32[S]` (`f64[S]`) values. Shape ops,
//! `select`, gathers and slices apply to both parts alike; arithmetic follows XLA's elemental
//! emitter formula by formula (`EmitComplexDivide`'s Smith's algorithm and its C99 Annex G
//! corner cases, `EmitComplexAbs`, `EmitComplexSqrt`, `EmitComplexPower`), so special values
//! come out as XLA:CPU's; `dot` and `convolution` are four real products; `log1p` is
//! [`log1p`]'s.
//!
//! Where a complex array is an element of a tuple (`while` state, `conditional` operands), it
//! becomes the 2-tuple `(re, im)` in place, so tuple indices keep their meaning. Computations
//! applied to scalars (`reduce`, `reduce-window` reducers) take each complex parameter as two
//! real parameters and return a tuple: complex reductions become variadic real ones.
//!
//! The host boundary keeps its types: an entry parameter stays `c64` and is read through
//! `real`/`imag`; a complex result is written by a final `complex(re, im)`. The device stores a
//! `c64` buffer as interleaved f32 pairs, numpy's layout.
//!
//! Pre-condition: `inline-calls` and `normalize` have run (no `call`, `bitcast` or `copy`
//! chains of layouts). Post-condition: the only complex-typed instructions are entry
//! parameters, the `real`/`imag` that read them, and the `complex` ops that build entry results.
//! A `sort` with complex operands sorts their parts ([`sort`]). An op on complex values that has
//! no lowering here (`map`, inverse trigonometric functions, custom calls) is
//! reported by name; nothing is lowered halfway.

mod fft;
mod log1p;
mod sort;

use crate::util::NameUniquer;
use crate::PassError;
use hlo_ir::builder::ComputationBuilder;
use hlo_ir::{
    ArrayData, ArrayShape, BinaryOp, CompId, CompareDirection, Computation, DType, Instr, InstrId, Literal, Module, Op,
    Shape, UnaryOp,
};

const PASS: &str = "lower-complex";

pub fn run(module: &mut Module) -> Result<bool> {
    let _span = tracing::info_span!("lower-complex").entered();
    if is_lowered(module) {
        return Ok(false);
    }
    sort::split_complex_sorts(module, &mut NameUniquer::new(module))?;
    let roles = roles(module)?;
    let old = module.clone();
    let mut names = NameUniquer::new(module);
    // Callees come before callers in `comps`, so every callee is lowered (and its new signature
    // known to the builder) before a caller refers to it.
    for (c, &role) in roles.iter().enumerate() {
        if role == Role::Untouched {
            continue;
        }
        let handle = LowererHandle { old_module: &old, module, c: CompId(c as u32), role, names: &mut names };
        let lowered = handle.lower()?;
        module.comps[c] = lowered;
    }
    crate::util::order_callees_first(module);
    Ok(true)
}

/// Whether complex values only cross the host boundary: parameters read by `real`/`imag` and
/// results built by `complex`, passed on by tuples and fusions (the pass's own output, so
/// running it again changes nothing).
fn is_lowered(module: &Module) -> bool {
    module.comps.iter().all(|comp| {
        comp.instrs.iter().all(|instr| {
            let complex_in = instr.operands.iter().any(|&o| has_complex(&comp.instr(o).shape));
            let complex_out = has_complex(&instr.shape);
            let passes_on = matches!(instr.op, Op::Tuple | Op::GetTupleElement { .. } | Op::Fusion { .. });
            let reads = matches!(instr.op, Op::Unary(UnaryOp::Real | UnaryOp::Imag));
            let builds = matches!(instr.op, Op::Binary(BinaryOp::Complex) | Op::Parameter { .. });
            (!complex_in || passes_on || reads) && (!complex_out || passes_on || builds)
        })
    })
}

/// How a computation's parameters and root are lowered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// No complex type anywhere in it.
    Untouched,
    /// The entry: complex parameters and results keep their host types.
    Entry,
    /// A `while` body or condition, a `conditional` branch: complex leaves become `(re, im)`.
    Structured,
    /// A reducer applied to scalars: each complex parameter becomes two, the root a flat tuple.
    Applied,
}

fn roles(module: &Module) -> Result<Vec<Role>> {
    let mut roles: Vec<Role> =
        module.comps.iter().map(|c| if comp_has_complex(c) { Role::Structured } else { Role::Untouched }).collect();
    let mut applied = vec![false; module.comps.len()];
    for comp in &module.comps {
        for instr in &comp.instrs {
            match &instr.op {
                Op::Reduce { to_apply, .. } | Op::ReduceWindow { to_apply, .. } => applied[to_apply.index()] = true,
                Op::Scatter { to_apply, .. }
                | Op::Sort { to_apply, .. }
                | Op::Map { to_apply, .. }
                | Op::SelectAndScatter { scatter: to_apply, .. } => {
                    // A sort's complex operands are split by now (`sort::split_complex_sorts`); its
                    // comparator rebuilds complex values from real parameters and lowers as a body.
                    let split_sort = matches!(instr.op, Op::Sort { .. })
                        && instr.operands.iter().all(|&o| !has_complex(&comp.instr(o).shape));
                    if roles[to_apply.index()] != Role::Untouched && !split_sort {
                        // Scatter lowers its reducer by pattern (add or overwrite) below; the
                        // others have no complex lowering: name the op.
                        if !matches!(instr.op, Op::Scatter { .. }) {
                            return Err(unsupported(instr, "this op on complex values"));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for (c, role) in roles.iter_mut().enumerate() {
        if *role == Role::Untouched {
            continue;
        }
        if c == module.entry.index() {
            *role = Role::Entry;
        } else if applied[c] {
            *role = Role::Applied;
        }
    }
    // A scatter's complex reducer is replaced by real ones, never lowered itself.
    for comp in &module.comps {
        for instr in &comp.instrs {
            if let Op::Scatter { to_apply, .. } = instr.op {
                if roles[to_apply.index()] != Role::Untouched && !applied[to_apply.index()] {
                    roles[to_apply.index()] = Role::Untouched;
                }
            }
        }
    }
    Ok(roles)
}

fn unsupported(instr: &Instr, reason: &str) -> PassError {
    PassError::Unsupported {
        pass: PASS,
        op: format!("{} (%{})", instr.op.opcode().name(), instr.name),
        reason: format!("{reason} has no lowering to real arithmetic yet"),
    }
}

fn is_complex(shape: &Shape) -> bool {
    shape.as_array().is_some_and(|a| a.dtype.is_complex())
}

fn has_complex(shape: &Shape) -> bool {
    shape.leaves().iter().any(|a| a.dtype.is_complex())
}

fn comp_has_complex(comp: &Computation) -> bool {
    comp.instrs.iter().any(|i| has_complex(&i.shape))
}

/// The real type of a complex type's parts.
fn part_dtype(dtype: DType) -> DType {
    dtype.complex_component().unwrap_or(dtype)
}

/// The shape a structured value of `shape` has after lowering: complex leaves become `(re, im)`.
fn lowered_shape(shape: &Shape) -> Shape {
    match shape {
        Shape::Array(a) if a.dtype.is_complex() => {
            let part = Shape::Array(a.with_dtype(part_dtype(a.dtype)));
            Shape::Tuple(vec![part.clone(), part])
        }
        Shape::Tuple(t) => Shape::Tuple(t.iter().map(lowered_shape).collect()),
        other => other.clone(),
    }
}

/// A lowered value: one instruction (real arrays, tokens, tuples in their lowered shape), or the
/// two parts of a complex array.
#[derive(Clone, Copy, Debug)]
enum Val {
    One(InstrId),
    Pair(InstrId, InstrId),
}

/// Lowers one computation into a new one.
struct Lowerer<'a> {
    old_module: &'a Module,
    old: &'a Computation,
    role: Role,
    b: ComputationBuilder,
    vals: Vec<Option<Val>>,
    names: &'a mut NameUniquer,
    /// The old instruction being lowered, for names, metadata and spans.
    current: InstrId,
    /// Scalar reducers this computation's scatters need, by part type and kind.
    new_comps: &'a mut Vec<Computation>,
    module_len: usize,
}

/// Owns the borrow of the module while a computation is lowered (new helper computations are
/// appended to it before the lowered computation replaces the old one).
struct LowererHandle<'a> {
    old_module: &'a Module,
    module: &'a mut Module,
    c: CompId,
    role: Role,
    names: &'a mut NameUniquer,
}

impl LowererHandle<'_> {
    fn lower(self) -> Result<Computation> {
        let old = self.old_module.comp(self.c);
        let mut new_comps = Vec::new();
        let b = ComputationBuilder::for_module(old.name.clone(), self.module);
        let mut l = Lowerer {
            old_module: self.old_module,
            old,
            role: self.role,
            b,
            vals: vec![None; old.instrs.len()],
            names: self.names,
            current: old.root,
            new_comps: &mut new_comps,
            module_len: self.module.comps.len(),
        };
        let comp = l.run()?;
        self.module.comps.extend(new_comps);
        Ok(comp)
    }
}

type Result<T> = std::result::Result<T, PassError>;

impl Lowerer<'_> {
    fn run(&mut self) -> Result<Computation> {
        if self.role == Role::Applied {
            self.flat_params()?;
        }
        for id in self.old.ids() {
            if self.vals[id.index()].is_some() {
                continue;
            }
            self.current = id;
            let v = self.lower_instr(id)?;
            self.vals[id.index()] = Some(v);
        }
        self.current = self.old.root;
        let root_val = self.val(self.old.root);
        let root_shape = self.old.root_instr().shape.clone();
        let root = match self.role {
            Role::Entry => self.host_form(root_val, &root_shape)?,
            Role::Applied => {
                let mut leaves = Vec::new();
                self.flatten(root_val, &root_shape, &mut leaves);
                if leaves.len() == 1 {
                    leaves[0]
                } else {
                    self.push(Op::Tuple, &leaves)
                }
            }
            _ => self.materialize(root_val),
        };
        let mut b = std::mem::replace(&mut self.b, ComputationBuilder::new(""));
        b.comp_mut().execution_thread = self.old.execution_thread.clone();
        b.finish_with_root(root).map_err(|e| PassError::Internal(format!("{PASS}: {e}")))
    }

    /// The parameters of an applied computation, each complex scalar split in two.
    fn flat_params(&mut self) -> Result<()> {
        for &p in &self.old.params {
            self.current = p;
            let shape = self.old.instr(p).shape.clone();
            let v = match shape.as_array() {
                Some(a) if a.dtype.is_complex() => {
                    let part = Shape::Array(a.with_dtype(part_dtype(a.dtype)));
                    let re = self.param(part.clone(), ".re");
                    let im = self.param(part, ".im");
                    Val::Pair(re, im)
                }
                Some(_) => Val::One(self.param(shape.clone(), "")),
                None => return Err(unsupported(self.old.instr(p), "a tuple parameter of a reducer")),
            };
            self.vals[p.index()] = Some(v);
        }
        Ok(())
    }

    fn param(&mut self, shape: Shape, suffix: &str) -> InstrId {
        let id = self.b.param(shape);
        self.finish_new(id, suffix);
        id
    }

    fn val(&self, id: InstrId) -> Val {
        self.vals[id.index()].expect("operands are lowered before their users")
    }

    fn one(&self, id: InstrId) -> Result<InstrId> {
        match self.val(id) {
            Val::One(x) => Ok(x),
            Val::Pair(..) => {
                Err(PassError::Internal(format!("{PASS}: a complex operand where a real one was expected")))
            }
        }
    }

    fn pair(&self, id: InstrId) -> Result<(InstrId, InstrId)> {
        match self.val(id) {
            Val::Pair(re, im) => Ok((re, im)),
            Val::One(_) => Err(PassError::Internal(format!("{PASS}: a real operand where a complex one was expected"))),
        }
    }

    /// Names the instruction just built after the old one it lowers, and copies its metadata
    /// and source span (so messages still point at the user's line).
    fn finish_new(&mut self, id: InstrId, suffix: &str) {
        let old = self.old.instr(self.current);
        let name = self.names.fresh(&format!("{}{suffix}", old.name));
        let span = self.old.span(self.current);
        let comp = self.b.comp_mut();
        comp.instr_mut(id).name = name;
        comp.instr_mut(id).meta.metadata = old.meta.metadata.clone();
        comp.spans[id.index()] = span;
    }

    fn push(&mut self, op: Op, operands: &[InstrId]) -> InstrId {
        let id = self.b.instr(op, operands);
        self.finish_new(id, "");
        id
    }

    fn push_shaped(&mut self, shape: Shape, op: Op, operands: &[InstrId]) -> InstrId {
        let id = self.b.instr_with_shape(shape, op, operands);
        self.finish_new(id, "");
        id
    }

    fn unary(&mut self, op: UnaryOp, x: InstrId) -> InstrId {
        self.push(Op::Unary(op), &[x])
    }

    fn binary(&mut self, op: BinaryOp, a: InstrId, b: InstrId) -> InstrId {
        self.push(Op::Binary(op), &[a, b])
    }

    fn add(&mut self, a: InstrId, b: InstrId) -> InstrId {
        self.binary(BinaryOp::Add, a, b)
    }
    fn sub(&mut self, a: InstrId, b: InstrId) -> InstrId {
        self.binary(BinaryOp::Subtract, a, b)
    }
    fn mul(&mut self, a: InstrId, b: InstrId) -> InstrId {
        self.binary(BinaryOp::Multiply, a, b)
    }
    fn div(&mut self, a: InstrId, b: InstrId) -> InstrId {
        self.binary(BinaryOp::Divide, a, b)
    }

    fn compare(&mut self, direction: CompareDirection, a: InstrId, b: InstrId) -> InstrId {
        self.push(Op::Compare { direction, compare_type: None }, &[a, b])
    }

    fn select(&mut self, p: InstrId, t: InstrId, f: InstrId) -> InstrId {
        self.push(Op::Select, &[p, t, f])
    }

    fn and(&mut self, a: InstrId, b: InstrId) -> InstrId {
        self.binary(BinaryOp::And, a, b)
    }
    fn or(&mut self, a: InstrId, b: InstrId) -> InstrId {
        self.binary(BinaryOp::Or, a, b)
    }
    fn is_nan(&mut self, x: InstrId) -> InstrId {
        self.compare(CompareDirection::Ne, x, x)
    }

    fn array_shape(&self, id: InstrId) -> ArrayShape {
        self.b.array_shape(id).cloned().unwrap_or_else(|| ArrayShape::scalar(DType::F32))
    }

    /// `value` of `like`'s type, broadcast to its dimensions.
    fn splat(&mut self, value: f64, like: InstrId) -> InstrId {
        let shape = self.array_shape(like);
        self.splat_shaped(value, &shape)
    }

    fn splat_shaped(&mut self, value: f64, shape: &ArrayShape) -> InstrId {
        let data = match shape.dtype {
            DType::F64 => ArrayData::F64(vec![value]),
            _ => ArrayData::F32(vec![value as f32]),
        };
        let dtype = if shape.dtype == DType::F64 { DType::F64 } else { DType::F32 };
        let c = self.b.constant(Literal::array(ArrayShape::scalar(dtype), data));
        self.finish_new(c, ".const");
        if shape.dims.is_empty() {
            return c;
        }
        self.push_shaped(Shape::array(dtype, shape.dims.clone()), Op::Broadcast { dimensions: vec![] }, &[c])
    }

    fn copysign(&mut self, magnitude: InstrId, sign: InstrId) -> InstrId {
        // |m| with the sign of `sign`: select on the sign bit, which `compare` cannot see for
        // -0 and NaN, so through the integer bits.
        let shape = self.array_shape(sign);
        let bits = if shape.dtype == DType::F64 { DType::S64 } else { DType::S32 };
        let as_int = self.push_shaped(Shape::array(bits, shape.dims.clone()), Op::BitcastConvert, &[sign]);
        let zero = self.b.constant(match bits {
            DType::S64 => Literal::array(ArrayShape::scalar(DType::S64), ArrayData::S64(vec![0])),
            _ => Literal::scalar_s32(0),
        });
        self.finish_new(zero, ".const");
        let zero = if shape.dims.is_empty() {
            zero
        } else {
            self.push_shaped(Shape::array(bits, shape.dims.clone()), Op::Broadcast { dimensions: vec![] }, &[zero])
        };
        let negative = self.compare(CompareDirection::Lt, as_int, zero);
        let abs = self.unary(UnaryOp::Abs, magnitude);
        let neg = self.unary(UnaryOp::Negate, abs);
        self.select(negative, neg, abs)
    }

    /// Builds a lowered value into one instruction of its lowered shape.
    fn materialize(&mut self, v: Val) -> InstrId {
        match v {
            Val::One(x) => x,
            Val::Pair(re, im) => self.push(Op::Tuple, &[re, im]),
        }
    }

    /// The value of an instruction of lowered shape whose old shape is `shape`.
    fn unpack(&mut self, id: InstrId, shape: &Shape) -> Val {
        if is_complex(shape) {
            let re = self.b.get_tuple_element(id, 0);
            self.finish_new(re, ".re");
            let im = self.b.get_tuple_element(id, 1);
            self.finish_new(im, ".im");
            Val::Pair(re, im)
        } else {
            Val::One(id)
        }
    }

    /// The real leaves of a value, complex arrays as two.
    fn flatten(&mut self, v: Val, shape: &Shape, out: &mut Vec<InstrId>) {
        match (v, shape) {
            (Val::Pair(re, im), _) => out.extend([re, im]),
            (Val::One(x), Shape::Tuple(elems)) if has_complex(shape) => {
                for (k, s) in elems.iter().enumerate() {
                    let e = self.b.get_tuple_element(x, k as u64);
                    self.finish_new(e, "");
                    let ev = self.unpack(e, s);
                    self.flatten(ev, s, out);
                }
            }
            (Val::One(x), _) => out.push(x),
        }
    }

    /// A value rebuilt from real leaves (`leaves` in [`Self::flatten`] order) into old `shape`.
    fn unflatten(&mut self, leaves: &mut std::slice::Iter<'_, InstrId>, shape: &Shape) -> Val {
        match shape {
            Shape::Array(a) if a.dtype.is_complex() => {
                let re = *leaves.next().expect("enough leaves");
                let im = *leaves.next().expect("enough leaves");
                Val::Pair(re, im)
            }
            Shape::Tuple(elems) if has_complex(shape) => {
                let parts: Vec<InstrId> = elems
                    .iter()
                    .map(|s| {
                        let v = self.unflatten(leaves, s);
                        self.materialize(v)
                    })
                    .collect();
                Val::One(self.push(Op::Tuple, &parts))
            }
            _ => Val::One(*leaves.next().expect("enough leaves")),
        }
    }

    /// An entry result in host types: complex arrays built with `complex(re, im)`.
    fn host_form(&mut self, v: Val, shape: &Shape) -> Result<InstrId> {
        Ok(match (v, shape) {
            (Val::Pair(re, im), _) => self.binary(BinaryOp::Complex, re, im),
            (Val::One(x), Shape::Tuple(elems)) if has_complex(shape) => {
                let mut parts = Vec::new();
                for (k, s) in elems.iter().enumerate() {
                    let e = self.b.get_tuple_element(x, k as u64);
                    self.finish_new(e, "");
                    let ev = self.unpack(e, s);
                    parts.push(self.host_form(ev, s)?);
                }
                self.push(Op::Tuple, &parts)
            }
            (Val::One(x), _) => x,
        })
    }

    /// A copy of an instruction without complex values, its operands remapped.
    fn copy_instr(&mut self, id: InstrId) -> Result<InstrId> {
        let instr = self.old.instr(id);
        let operands = instr.operands.iter().map(|&o| self.one(o)).collect::<Result<Vec<_>>>()?;
        let new = self.b.raw(instr.shape.clone(), instr.op.clone(), &operands);
        let comp = self.b.comp_mut();
        // The old instruction goes away with its computation: its name is free for the copy.
        let name = instr.name.clone();
        let span = self.old.span(id);
        let target = comp.instr_mut(new);
        target.name = name;
        target.meta = instr.meta.clone();
        comp.spans[new.index()] = span;
        Ok(new)
    }

    /// The same op on both parts (shape ops, gathers, slices): `real_operands` are passed to
    /// both unchanged (indices), and the old shape's dtype becomes the part type.
    fn both(&mut self, id: InstrId) -> Result<Val> {
        let instr = self.old.instr(id);
        let Some(shape) = instr.shape.as_array() else { return Err(unsupported(instr, "a tuple-shaped complex op")) };
        let part_shape = Shape::Array(shape.with_dtype(part_dtype(shape.dtype)));
        let mut res = [None, None];
        for (k, slot) in res.iter_mut().enumerate() {
            let operands = instr
                .operands
                .iter()
                .map(|&o| match self.val(o) {
                    Val::One(x) => x,
                    Val::Pair(re, im) => [re, im][k],
                })
                .collect::<Vec<_>>();
            let new = self.push_shaped(part_shape.clone(), instr.op.clone(), &operands);
            *slot = Some(new);
        }
        Ok(Val::Pair(res[0].unwrap(), res[1].unwrap()))
    }

    fn lower_instr(&mut self, id: InstrId) -> Result<Val> {
        let instr = self.old.instr(id);
        // A while or reduce over real values keeps its signature even when its body computes
        // with complex numbers inside: only the values it passes matter here.
        let involved =
            has_complex(&instr.shape) || instr.operands.iter().any(|&o| has_complex(&self.old.instr(o).shape));
        if !involved {
            return Ok(Val::One(self.copy_instr(id)?));
        }
        let shape = instr.shape.clone();
        let op = instr.op.clone();
        let ops = instr.operands.clone();
        Ok(match op {
            Op::Parameter { .. } => match self.role {
                Role::Entry => {
                    if !is_complex(&shape) {
                        return Err(unsupported(instr, "an entry tuple parameter holding complex arrays"));
                    }
                    let p = self.copy_instr(id)?;
                    let re = self.unary(UnaryOp::Real, p);
                    let im = self.unary(UnaryOp::Imag, p);
                    Val::Pair(re, im)
                }
                _ => {
                    // Keeps the parameter's number (the arena need not list them in order).
                    let p = self.b.raw(lowered_shape(&shape), op.clone(), &[]);
                    self.finish_new(p, "");
                    self.unpack(p, &shape)
                }
            },
            Op::Constant(lit) => self.constant(instr, &lit)?,
            Op::Iota { .. } => {
                let a = shape.as_array().expect("iota is an array");
                let part = a.with_dtype(part_dtype(a.dtype));
                let re = self.push_shaped(Shape::Array(part.clone()), op.clone(), &[]);
                let im = self.splat_shaped(0.0, &part);
                Val::Pair(re, im)
            }
            Op::Unary(u) => self.unary_op(instr, u, ops[0])?,
            Op::Binary(BinaryOp::Complex) => Val::Pair(self.one(ops[0])?, self.one(ops[1])?),
            Op::Binary(bop) => self.binary_op(instr, bop, ops[0], ops[1])?,
            Op::Compare { direction, .. } => {
                let (ar, ai) = self.pair(ops[0])?;
                let (br, bi) = self.pair(ops[1])?;
                match direction {
                    CompareDirection::Eq => {
                        let r = self.compare(direction, ar, br);
                        let i = self.compare(direction, ai, bi);
                        Val::One(self.and(r, i))
                    }
                    CompareDirection::Ne => {
                        let r = self.compare(direction, ar, br);
                        let i = self.compare(direction, ai, bi);
                        Val::One(self.or(r, i))
                    }
                    _ => return Err(unsupported(instr, "an ordered comparison of complex numbers")),
                }
            }
            Op::Convert => {
                let to = shape.as_array().map(|a| a.dtype).unwrap_or(DType::F32);
                match self.val(ops[0]) {
                    Val::Pair(re, im) if to.is_complex() => {
                        let pt = part_dtype(to);
                        let re = self.b.convert(re, pt);
                        self.finish_new(re, ".re");
                        let im = self.b.convert(im, pt);
                        self.finish_new(im, ".im");
                        Val::Pair(re, im)
                    }
                    Val::One(x) if to.is_complex() => {
                        let re = self.b.convert(x, part_dtype(to));
                        self.finish_new(re, ".re");
                        let im = self.splat(0.0, re);
                        Val::Pair(re, im)
                    }
                    _ => return Err(unsupported(instr, "a conversion from complex to a real type")),
                }
            }
            Op::Select
            | Op::Broadcast { .. }
            | Op::Reshape
            | Op::Transpose { .. }
            | Op::Reverse { .. }
            | Op::Slice { .. }
            | Op::DynamicSlice { .. }
            | Op::DynamicUpdateSlice
            | Op::Concatenate { .. }
            | Op::Pad { .. }
            | Op::Gather { .. }
            | Op::Bitcast
            | Op::Copy => {
                // Every complex operand must be complex (select's predicate and the indices are real).
                self.both(id)?
            }
            Op::Tuple => {
                let parts: Vec<InstrId> = ops
                    .iter()
                    .map(|&o| self.val(o))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .map(|v| self.materialize(v))
                    .collect();
                Val::One(self.push_shaped(lowered_shape(&shape), Op::Tuple, &parts))
            }
            Op::GetTupleElement { index } => {
                let t = self.one(ops[0])?;
                let e = self.push_shaped(lowered_shape(&shape), Op::GetTupleElement { index }, &[t]);
                self.unpack(e, &shape)
            }
            Op::While { .. }
            | Op::Conditional { .. }
            | Op::Call { .. }
            | Op::Fusion { .. }
            | Op::OptimizationBarrier => {
                let operands: Vec<InstrId> = ops
                    .iter()
                    .map(|&o| self.val(o))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .map(|v| self.materialize(v))
                    .collect();
                let new = self.push_shaped(lowered_shape(&shape), op.clone(), &operands);
                self.unpack(new, &shape)
            }
            Op::Reduce { .. } | Op::ReduceWindow { .. } => self.reduce(id)?,
            Op::Dot { .. } | Op::Convolution { .. } => {
                let (ar, ai) = self.pair(ops[0])?;
                let (br, bi) = self.pair(ops[1])?;
                let part = shape.as_array().map(|a| Shape::Array(a.with_dtype(part_dtype(a.dtype)))).unwrap();
                let rr = self.push_shaped(part.clone(), op.clone(), &[ar, br]);
                let ii = self.push_shaped(part.clone(), op.clone(), &[ai, bi]);
                let ri = self.push_shaped(part.clone(), op.clone(), &[ar, bi]);
                let ir = self.push_shaped(part, op.clone(), &[ai, br]);
                let re = self.sub(rr, ii);
                let im = self.add(ri, ir);
                Val::Pair(re, im)
            }
            Op::Scatter { .. } => self.scatter(id)?,
            Op::Fft { fft_type, fft_length } => self.fft(instr, fft_type, &fft_length, ops[0])?,
            _ => return Err(unsupported(instr, "this op on complex values")),
        })
    }

    fn constant(&mut self, instr: &Instr, lit: &Literal) -> Result<Val> {
        let Some(shape) = lit.array_shape() else {
            return Err(unsupported(instr, "a tuple constant holding complex arrays"));
        };
        let (re, im) = match lit.array_data() {
            Some(ArrayData::C64(v)) => {
                (ArrayData::F32(v.iter().map(|z| z[0]).collect()), ArrayData::F32(v.iter().map(|z| z[1]).collect()))
            }
            Some(ArrayData::C128(v)) => {
                (ArrayData::F64(v.iter().map(|z| z[0]).collect()), ArrayData::F64(v.iter().map(|z| z[1]).collect()))
            }
            _ => return Err(unsupported(instr, "this complex constant")),
        };
        let part = shape.with_dtype(part_dtype(shape.dtype));
        let re = self.b.constant(Literal::array(part.clone(), re));
        self.finish_new(re, ".re");
        let im = self.b.constant(Literal::array(part, im));
        self.finish_new(im, ".im");
        Ok(Val::Pair(re, im))
    }

    /// XLA's `EmitComplexAbs`: `max * sqrt(1 + (min/max)^2)`, or `min` where that is NaN
    /// (both zero, both infinite, or a NaN part).
    fn abs(&mut self, a: InstrId, b: InstrId) -> InstrId {
        let (min, max, sqrt) = self.abs_helper(a, b, true);
        let result = self.mul(max, sqrt);
        let nan = self.is_nan(result);
        self.select(nan, min, result)
    }

    /// `(min, max, sqrt(1 + (min/max)^2))`, or the term without its square root.
    fn abs_helper(&mut self, a: InstrId, b: InstrId, with_sqrt: bool) -> (InstrId, InstrId, InstrId) {
        let abs_a = self.unary(UnaryOp::Abs, a);
        let abs_b = self.unary(UnaryOp::Abs, b);
        let max = self.binary(BinaryOp::Maximum, abs_a, abs_b);
        let min = self.binary(BinaryOp::Minimum, abs_a, abs_b);
        let d = self.div(min, max);
        let d2 = self.mul(d, d);
        let one = self.splat(1.0, d2);
        let term = self.add(one, d2);
        let term = if with_sqrt { self.unary(UnaryOp::Sqrt, term) } else { term };
        (min, max, term)
    }

    fn unary_op(&mut self, instr: &Instr, u: UnaryOp, x: InstrId) -> Result<Val> {
        let (a, b) = self.pair(x)?;
        Ok(match u {
            UnaryOp::Real => Val::One(a),
            UnaryOp::Imag => Val::One(b),
            UnaryOp::Negate => {
                let re = self.unary(UnaryOp::Negate, a);
                let im = self.unary(UnaryOp::Negate, b);
                Val::Pair(re, im)
            }
            UnaryOp::Abs => Val::One(self.abs(a, b)),
            UnaryOp::Sign => {
                let abs = self.abs(a, b);
                let zero = self.splat(0.0, abs);
                let is_zero = self.compare(CompareDirection::Eq, abs, zero);
                let re = self.div(a, abs);
                let im = self.div(b, abs);
                let re = self.select(is_zero, zero, re);
                let im = self.select(is_zero, zero, im);
                Val::Pair(re, im)
            }
            UnaryOp::Exp => {
                let m = self.unary(UnaryOp::Exp, a);
                let cos = self.unary(UnaryOp::Cos, b);
                let sin = self.unary(UnaryOp::Sin, b);
                let re = self.mul(m, cos);
                let im = self.mul(m, sin);
                Val::Pair(re, im)
            }
            UnaryOp::Expm1 => self.expm1(a, b),
            UnaryOp::Log => {
                let abs = self.abs(a, b);
                let re = self.unary(UnaryOp::Log, abs);
                let im = self.binary(BinaryOp::Atan2, b, a);
                Val::Pair(re, im)
            }
            UnaryOp::Log1p => self.log1p(a, b),
            UnaryOp::Sqrt => self.sqrt(a, b),
            UnaryOp::Rsqrt => self.rsqrt(a, b),
            UnaryOp::Sin | UnaryOp::Cos => self.sin_cos(a, b, u == UnaryOp::Cos),
            UnaryOp::Tanh => self.tanh(a, b),
            // tan(a+bi) = -i tanh(-b + ai).
            UnaryOp::Tan => {
                let minus_one = self.splat(-1.0, b);
                let neg_b = self.mul(minus_one, b);
                let Val::Pair(re, im) = self.tanh(neg_b, a) else { unreachable!("tanh is a pair") };
                let neg_re = self.mul(minus_one, re);
                Val::Pair(im, neg_re)
            }
            _ => return Err(unsupported(instr, &format!("`{}` of complex numbers", u.opcode().name()))),
        })
    }

    /// XLA's `EmitComplexRsqrt`: `rsqrt|z| * (cos(-t/2), sin(-t/2))` with `t = atan2(b, a)` and
    /// `rsqrt|z| = rsqrt(max) * rsqrt(sqrt(1 + (min/max)^2))` (`rsqrt(min)` where NaN); `0` gives
    /// `inf + NaN i`, an infinite `a` (or an infinite `b` with a NaN `a`) gives
    /// `(copysign(0, a), -copysign(0, b))`.
    fn rsqrt(&mut self, a: InstrId, b: InstrId) -> Val {
        let (min, max, root) = self.abs_helper(a, b, true);
        let rsqrt_max = self.unary(UnaryOp::Rsqrt, max);
        let rsqrt_root = self.unary(UnaryOp::Rsqrt, root);
        let r = self.mul(rsqrt_max, rsqrt_root);
        let rsqrt_min = self.unary(UnaryOp::Rsqrt, min);
        let r_nan = self.is_nan(r);
        let r = self.select(r_nan, rsqrt_min, r);
        let t = self.binary(BinaryOp::Atan2, b, a);
        let minus_half = self.splat(-0.5, t);
        let angle = self.mul(t, minus_half);
        let cos = self.unary(UnaryOp::Cos, angle);
        let sin = self.unary(UnaryOp::Sin, angle);
        let re = self.mul(r, cos);
        let im = self.mul(r, sin);
        let (zero, inf, nan) = (self.splat(0.0, a), self.splat(f64::INFINITY, a), self.splat(f64::NAN, a));
        let minus_one = self.splat(-1.0, a);
        let a_zero = self.copysign(zero, a);
        let b_zero = self.copysign(zero, b);
        let neg_b_zero = self.mul(b_zero, minus_one);
        let abs_a = self.unary(UnaryOp::Abs, a);
        let abs_b = self.unary(UnaryOp::Abs, b);
        let is_a_zero = self.compare(CompareDirection::Eq, a, zero);
        let is_b_zero = self.compare(CompareDirection::Eq, b, zero);
        let zero_zero = self.and(is_b_zero, is_a_zero);
        let b_inf = self.compare(CompareDirection::Eq, abs_b, inf);
        let a_nan = self.is_nan(a);
        let b_inf_a_nan = self.and(b_inf, a_nan);
        let a_inf = self.compare(CompareDirection::Eq, abs_a, inf);
        let infinite = self.or(b_inf_a_nan, a_inf);
        let re = self.select(infinite, a_zero, re);
        let re = self.select(zero_zero, inf, re);
        let im = self.select(infinite, neg_b_zero, im);
        let im = self.select(zero_zero, nan, im);
        Val::Pair(re, im)
    }

    /// XLA's complex `expm1`: `(expm1(a) cos b + cosm1(b), e^a sin b)` with `e^a = expm1(a) + 1`
    /// and `cos b = cosm1(b) + 1`, the imaginary part +0 where `b` is 0; near 0 neither part
    /// cancels as `e^a cos b - 1` would.
    fn expm1(&mut self, a: InstrId, b: InstrId) -> Val {
        let one = self.splat(1.0, a);
        let expm1_a = self.unary(UnaryOp::Expm1, a);
        let exp_a = self.add(expm1_a, one);
        let cosm1_b = self.cosm1(b);
        let cos_b = self.add(cosm1_b, one);
        let scaled = self.mul(expm1_a, cos_b);
        let re = self.add(scaled, cosm1_b);
        let sin_b = self.unary(UnaryOp::Sin, b);
        let im = self.mul(exp_a, sin_b);
        let zero = self.splat(0.0, b);
        let b_zero = self.compare(CompareDirection::Eq, b, zero);
        let im = self.select(b_zero, zero, im);
        Val::Pair(re, im)
    }

    /// XLA's `cosm1`: Cephes' `-x^2/2 + x^4 P(x^2)` while `x^2 <= 0.61685` (about `(pi/4)^2`),
    /// else `cos x - 1`.
    fn cosm1(&mut self, x: InstrId) -> InstrId {
        let xx = self.mul(x, x);
        let mut poly = self.splat(0.0, x);
        for c in hlo_interp::COSM1_COEFFS {
            let scaled = self.mul(poly, xx);
            let c = self.splat(c, x);
            poly = self.add(scaled, c);
        }
        let x4 = self.mul(xx, xx);
        let high = self.mul(x4, poly);
        let minus_half = self.splat(-0.5, x);
        let low = self.mul(minus_half, xx);
        let small = self.add(high, low);
        let cos = self.unary(UnaryOp::Cos, x);
        let one = self.splat(1.0, x);
        let large = self.sub(cos, one);
        let bound = self.splat(0.61685, x);
        let is_large = self.compare(CompareDirection::Gt, xx, bound);
        self.select(is_large, large, small)
    }

    /// XLA's complex `sin` and `cos`: with `e = exp(y)`, `sinh y = e/2 - 0.5/e` and
    /// `cosh y = e/2 + 0.5/e`, `sin(x+iy) = (sin x cosh y, cos x sinh y)` and
    /// `cos(x+iy) = (cos x cosh y, -sin x sinh y)`.
    fn sin_cos(&mut self, x: InstrId, y: InstrId, cos: bool) -> Val {
        let e = self.unary(UnaryOp::Exp, y);
        let half = self.splat(0.5, y);
        let half_e = self.mul(half, e);
        let half_inv = self.div(half, e);
        let sin_x = self.unary(UnaryOp::Sin, x);
        let cos_x = self.unary(UnaryOp::Cos, x);
        let sinh = self.sub(half_e, half_inv);
        let cosh = self.add(half_e, half_inv);
        if cos {
            let re = self.mul(cos_x, cosh);
            let im = self.mul(sin_x, sinh);
            let im = self.unary(UnaryOp::Negate, im);
            Val::Pair(re, im)
        } else {
            let re = self.mul(sin_x, cosh);
            let im = self.mul(cos_x, sinh);
            Val::Pair(re, im)
        }
    }

    /// XLA's complex `tanh`: with `p = expm1(2a)` and `m = expm1(-2a)`,
    /// `((p - m) + 4 cos b sin b i) / (p + m + 4 cos^2 b)`, the real part `copysign(1, a)` where
    /// `p + m` is infinite; a NaN `sin 2b` makes the real part NaN unless `a` is infinite, and the
    /// imaginary part is 0 where `b` is 0 or both hold.
    fn tanh(&mut self, a: InstrId, b: InstrId) -> Val {
        let (zero, four, inf) = (self.splat(0.0, a), self.splat(4.0, a), self.splat(f64::INFINITY, a));
        let (one, minus_one, nan) = (self.splat(1.0, a), self.splat(-1.0, a), self.splat(f64::NAN, a));
        let two_a = self.add(a, a);
        let neg_2a = self.mul(minus_one, two_a);
        let p = self.unary(UnaryOp::Expm1, two_a);
        let m = self.unary(UnaryOp::Expm1, neg_2a);
        let real_numerator = self.sub(p, m);
        let cos_b = self.unary(UnaryOp::Cos, b);
        let cos_sq = self.mul(cos_b, cos_b);
        let four_cos_sq = self.mul(cos_sq, four);
        let sin_b = self.unary(UnaryOp::Sin, b);
        let cos_sin = self.mul(cos_b, sin_b);
        let imag_numerator = self.mul(four, cos_sin);
        let sum = self.add(p, m);
        let denom = self.add(sum, four_cos_sq);
        let sum_inf = self.compare(CompareDirection::Eq, sum, inf);
        let limit = self.copysign(one, a);
        let quotient = self.div(real_numerator, denom);
        let re = self.select(sum_inf, limit, quotient);
        let im = self.div(imag_numerator, denom);
        let abs_a = self.unary(UnaryOp::Abs, a);
        let a_inf = self.compare(CompareDirection::Eq, abs_a, inf);
        let b_zero = self.compare(CompareDirection::Eq, b, zero);
        let sin_2b_nan = self.is_nan(imag_numerator);
        let a_finite = self.compare(CompareDirection::Ne, abs_a, inf);
        let re_nan = self.and(sin_2b_nan, a_finite);
        let inf_and_nan = self.and(a_inf, sin_2b_nan);
        let im_zero = self.or(b_zero, inf_and_nan);
        let re = self.select(re_nan, nan, re);
        let im = self.select(im_zero, zero, im);
        Val::Pair(re, im)
    }

    /// XLA's `EmitComplexSqrt`: `sqrt(|z|) * (cos(t/2), sin(t/2))` with `t = atan2(b, a)`,
    /// `sqrt(|z|)` as `sqrt(max) * (1 + (min/max)^2)^0.25`, and its infinite and zero cases.
    fn sqrt(&mut self, a: InstrId, b: InstrId) -> Val {
        let (min, max, term) = self.abs_helper(a, b, false);
        let sqrt_max = self.unary(UnaryOp::Sqrt, max);
        let quarter = self.splat(0.25, term);
        let pow = self.binary(BinaryOp::Power, term, quarter);
        let r = self.mul(sqrt_max, pow);
        let r_nan = self.is_nan(r);
        let r = self.select(r_nan, min, r);
        let t = self.binary(BinaryOp::Atan2, b, a);
        let half = self.splat(0.5, t);
        let angle = self.mul(t, half);
        let cos = self.unary(UnaryOp::Cos, angle);
        let sin = self.unary(UnaryOp::Sin, angle);
        let inf = self.splat(f64::INFINITY, a);
        let neg_inf = self.splat(f64::NEG_INFINITY, a);
        let zero = self.splat(0.0, a);
        let nan = self.splat(f64::NAN, a);
        let abs_b = self.unary(UnaryOp::Abs, b);
        let b_inf = self.compare(CompareDirection::Eq, abs_b, inf);
        let a_inf = self.compare(CompareDirection::Eq, a, inf);
        let a_neg_inf = self.compare(CompareDirection::Eq, a, neg_inf);
        let b_finite = self.compare(CompareDirection::Ne, abs_b, inf);
        let b_not_nan = self.compare(CompareDirection::Eq, b, b);
        let b_finite = self.and(b_finite, b_not_nan);
        let r_cos = self.mul(r, cos);
        let r_sin = self.mul(r, sin);
        // real: inf where |b| = inf or a = inf; 0 where a = -inf and b finite; else r cos.
        let any_inf = self.or(b_inf, a_inf);
        let neg_a_finite_b = self.and(a_neg_inf, b_finite);
        let re = self.select(neg_a_finite_b, zero, r_cos);
        let re = self.select(any_inf, inf, re);
        // imag: copysign(inf, b) where |b| = inf or a = -inf; NaN where r is NaN; sin where sin
        // is zero (its sign); else r sin.
        let b_signed_inf = self.copysign(inf, b);
        let b_inf_or_neg_a = self.or(b_inf, a_neg_inf);
        let r_is_nan = self.is_nan(r);
        let sin_zero = self.compare(CompareDirection::Eq, sin, zero);
        let im = self.select(sin_zero, sin, r_sin);
        let im = self.select(r_is_nan, nan, im);
        let im = self.select(b_inf_or_neg_a, b_signed_inf, im);
        let r_zero = self.compare(CompareDirection::Eq, r, zero);
        let re = self.select(r_zero, zero, re);
        let im = self.select(r_zero, zero, im);
        Val::Pair(re, im)
    }

    fn binary_op(&mut self, instr: &Instr, op: BinaryOp, x: InstrId, y: InstrId) -> Result<Val> {
        let (a, b) = self.pair(x)?;
        let (c, d) = self.pair(y)?;
        Ok(match op {
            BinaryOp::Add | BinaryOp::Subtract => {
                let re = self.binary(op, a, c);
                let im = self.binary(op, b, d);
                Val::Pair(re, im)
            }
            BinaryOp::Multiply => {
                let ac = self.mul(a, c);
                let bd = self.mul(b, d);
                let ad = self.mul(a, d);
                let bc = self.mul(b, c);
                let re = self.sub(ac, bd);
                let im = self.add(ad, bc);
                Val::Pair(re, im)
            }
            BinaryOp::Divide => self.divide(a, b, c, d),
            BinaryOp::Power => self.power(a, b, c, d),
            _ => return Err(unsupported(instr, &format!("`{}` of complex numbers", op.opcode().name()))),
        })
    }

    /// XLA's `EmitComplexDivide`: Smith's algorithm, then C99 Annex G's answers where it gives
    /// NaN + NaNi (zero denominators, infinite numerators, infinite denominators).
    fn divide(&mut self, ar: InstrId, ai: InstrId, br: InstrId, bi: InstrId) -> Val {
        use CompareDirection::{Eq, Lt, Ne};
        let rb = self.div(br, bi);
        let rb_br = self.mul(rb, br);
        let denom_rb = self.add(bi, rb_br);
        let ib = self.div(bi, br);
        let ib_bi = self.mul(ib, bi);
        let denom_ib = self.add(br, ib_bi);
        let br_abs = self.unary(UnaryOp::Abs, br);
        let bi_abs = self.unary(UnaryOp::Abs, bi);
        let br_lt_bi = self.compare(Lt, br_abs, bi_abs);
        let t = self.mul(rb, ar);
        let t = self.add(t, ai);
        let cr1 = self.div(t, denom_rb);
        let t = self.mul(ib, ai);
        let t = self.add(t, ar);
        let cr2 = self.div(t, denom_ib);
        let c_r = self.select(br_lt_bi, cr1, cr2);
        let t = self.mul(rb, ai);
        let t = self.sub(t, ar);
        let ci1 = self.div(t, denom_rb);
        let t = self.mul(ib, ar);
        let t = self.sub(ai, t);
        let ci2 = self.div(t, denom_ib);
        let c_i = self.select(br_lt_bi, ci1, ci2);

        let zero = self.splat(0.0, ar);
        let one = self.splat(1.0, ar);
        let inf = self.splat(f64::INFINITY, ar);
        // Case 1: zero denominator (and a numerator part that is not NaN).
        let br_zero = self.compare(Eq, br_abs, zero);
        let bi_zero = self.compare(Eq, bi_abs, zero);
        let ar_ok = self.compare(Eq, ar, ar);
        let ai_ok = self.compare(Eq, ai, ai);
        let b_zero = self.and(br_zero, bi_zero);
        let a_some = self.or(ar_ok, ai_ok);
        let zero_denominator = self.and(b_zero, a_some);
        let inf_b = self.copysign(inf, br);
        let z_re = self.mul(inf_b, ar);
        let z_im = self.mul(inf_b, ai);
        // Case 2: infinite numerator, finite denominator.
        let br_finite = self.finite(br_abs, inf);
        let bi_finite = self.finite(bi_abs, inf);
        let ar_abs = self.unary(UnaryOp::Abs, ar);
        let ai_abs = self.unary(UnaryOp::Abs, ai);
        let ar_inf = self.compare(Eq, ar_abs, inf);
        let ai_inf = self.compare(Eq, ai_abs, inf);
        let a_inf = self.or(ar_inf, ai_inf);
        let b_finite = self.and(br_finite, bi_finite);
        let inf_num = self.and(a_inf, b_finite);
        let ar_unit = self.select(ar_inf, one, zero);
        let ar_s = self.copysign(ar_unit, ar);
        let ai_unit = self.select(ai_inf, one, zero);
        let ai_s = self.copysign(ai_unit, ai);
        let t1 = self.mul(ar_s, br);
        let t2 = self.mul(ai_s, bi);
        let t = self.add(t1, t2);
        let n_re = self.mul(inf, t);
        let t1 = self.mul(ai_s, br);
        let t2 = self.mul(ar_s, bi);
        let t = self.sub(t1, t2);
        let n_im = self.mul(inf, t);
        // Case 3: finite numerator, infinite denominator.
        let ar_finite = self.finite(ar_abs, inf);
        let ai_finite = self.finite(ai_abs, inf);
        let br_inf = self.compare(Eq, br_abs, inf);
        let bi_inf = self.compare(Eq, bi_abs, inf);
        let b_inf = self.or(br_inf, bi_inf);
        let a_finite = self.and(ar_finite, ai_finite);
        let inf_den = self.and(b_inf, a_finite);
        let br_unit = self.select(br_inf, one, zero);
        let br_s = self.copysign(br_unit, br);
        let bi_unit = self.select(bi_inf, one, zero);
        let bi_s = self.copysign(bi_unit, bi);
        let t1 = self.mul(ar, br_s);
        let t2 = self.mul(ai, bi_s);
        let t = self.add(t1, t2);
        let d_re = self.mul(zero, t);
        let t1 = self.mul(ai, br_s);
        let t2 = self.mul(ar, bi_s);
        let t = self.sub(t1, t2);
        let d_im = self.mul(zero, t);

        let cr_nan = self.compare(Ne, c_r, c_r);
        let ci_nan = self.compare(Ne, c_i, c_i);
        let c_nan = self.and(cr_nan, ci_nan);
        let mut parts = [0; 2].map(|_| InstrId::from_index(0));
        for (k, (case1, case2, case3, result)) in
            [(z_re, n_re, d_re, c_r), (z_im, n_im, d_im, c_i)].into_iter().enumerate()
        {
            let s3 = self.select(inf_den, case3, result);
            let s2 = self.select(inf_num, case2, s3);
            let s1 = self.select(zero_denominator, case1, s2);
            parts[k] = self.select(c_nan, s1, result);
        }
        Val::Pair(parts[0], parts[1])
    }

    /// `|x| != inf` as LLVM's ordered `one`: false for NaN.
    fn finite(&mut self, abs: InstrId, inf: InstrId) -> InstrId {
        let not_inf = self.compare(CompareDirection::Ne, abs, inf);
        let not_nan = self.compare(CompareDirection::Eq, abs, abs);
        self.and(not_inf, not_nan)
    }

    /// XLA's `EmitComplexPower`: `|x|^c * exp(-d * arg x) * (cos q, sin q)` with
    /// `q = c * arg x + d * ln|x|`, and its cases for zero bases and exponents, one, and infinity.
    fn power(&mut self, a: InstrId, b: InstrId, c: InstrId, d: InstrId) -> Val {
        use CompareDirection::{Eq, Gt, Le, Lt};
        let abs = self.abs(a, b);
        let abs_to_c = self.binary(BinaryOp::Power, abs, c);
        let neg_d = self.unary(UnaryOp::Negate, d);
        let arg = self.binary(BinaryOp::Atan2, b, a);
        let t = self.mul(neg_d, arg);
        let e = self.unary(UnaryOp::Exp, t);
        let coeff = self.mul(abs_to_c, e);
        let ln_abs = self.unary(UnaryOp::Log, abs);
        let t1 = self.mul(c, arg);
        let t2 = self.mul(d, ln_abs);
        let q = self.add(t1, t2);
        let cos_q = self.unary(UnaryOp::Cos, q);
        let sin_q = self.unary(UnaryOp::Sin, q);
        let zero = self.splat(0.0, a);
        let one = self.splat(1.0, a);
        let inf = self.splat(f64::INFINITY, a);
        let general_re = self.mul(coeff, cos_q);
        let general_im = self.mul(coeff, sin_q);
        // Case 0: 0^c = 0 for c > 0 (d = 0), and 0^0 = 1.
        let abs_zero = self.compare(Eq, abs, zero);
        let d_zero = self.compare(Eq, d, zero);
        let c_nonneg = self.compare(Le, zero, c);
        let t = self.and(abs_zero, d_zero);
        let case0 = self.and(t, c_nonneg);
        let c_zero = self.compare(Eq, zero, c);
        let case0_re = self.select(c_zero, one, zero);
        let re = self.select(case0, case0_re, general_re);
        let im = self.select(case0, zero, general_im);
        // Case 1: x^0 = 1.
        let case1 = self.and(c_zero, d_zero);
        let re = self.select(case1, one, re);
        let im = self.select(case1, zero, im);
        // Case 2: 1^y = 1.
        let a_one = self.compare(Eq, a, one);
        let b_zero = self.compare(Eq, b, zero);
        let case2 = self.and(a_one, b_zero);
        let re = self.select(case2, one, re);
        let im = self.select(case2, zero, im);
        // Cases 3 and 4: inf^c = inf for c > 0, 0 for c < 0 (b = d = 0).
        let a_inf = self.compare(Eq, a, inf);
        let t = self.and(a_inf, b_zero);
        let real_inf = self.and(t, d_zero);
        let c_pos = self.compare(Gt, c, zero);
        let c_neg = self.compare(Lt, c, zero);
        let case3 = self.and(real_inf, c_pos);
        let re = self.select(case3, inf, re);
        let im = self.select(case3, zero, im);
        let case4 = self.and(real_inf, c_neg);
        let re = self.select(case4, zero, re);
        let im = self.select(case4, zero, im);
        Val::Pair(re, im)
    }

    /// A `reduce` or `reduce-window` over complex operands: a variadic one over their parts, with
    /// the reducer lowered to take and return parts ([`Role::Applied`]).
    fn reduce(&mut self, id: InstrId) -> Result<Val> {
        let instr = self.old.instr(id);
        let mut operands = Vec::new();
        for &o in &instr.operands {
            let v = self.val(o);
            let s = self.old.instr(o).shape.clone();
            self.flatten(v, &s, &mut operands);
        }
        let n = operands.len() / 2;
        let old_leaves: Vec<Shape> = match &instr.shape {
            Shape::Tuple(t) => t.clone(),
            s => vec![s.clone()],
        };
        let mut new_leaves = Vec::new();
        for s in &old_leaves {
            match s.as_array() {
                Some(a) if a.dtype.is_complex() => {
                    let p = Shape::Array(a.with_dtype(part_dtype(a.dtype)));
                    new_leaves.extend([p.clone(), p]);
                }
                _ => new_leaves.push(s.clone()),
            }
        }
        if new_leaves.len() != n {
            return Err(PassError::Internal(format!("{PASS}: reduce leaves do not match its operands")));
        }
        let shape = if n == 1 { new_leaves[0].clone() } else { Shape::Tuple(new_leaves) };
        let new = self.push_shaped(shape, instr.op.clone(), &operands);
        let leaves: Vec<InstrId> = if n == 1 {
            vec![new]
        } else {
            (0..n)
                .map(|k| {
                    let e = self.b.get_tuple_element(new, k as u64);
                    self.finish_new(e, "");
                    e
                })
                .collect()
        };
        let old_shape = instr.shape.clone();
        Ok(self.unflatten(&mut leaves.iter(), &old_shape))
    }

    /// A scatter of complex updates whose reducer adds or overwrites: one scatter per part.
    fn scatter(&mut self, id: InstrId) -> Result<Val> {
        let instr = self.old.instr(id);
        let Op::Scatter { dims, indices_are_sorted, unique_indices, to_apply } = instr.op.clone() else {
            unreachable!()
        };
        if instr.operands.len() != 3 {
            return Err(unsupported(instr, "a variadic scatter of complex arrays"));
        }
        let reducer = self.old_module.comp(to_apply);
        let root = reducer.root_instr();
        let kind = match (&root.op, root.operands.as_slice()) {
            (Op::Binary(BinaryOp::Add), [x, y])
                if {
                    let ps = [reducer.params.first().copied(), reducer.params.get(1).copied()];
                    ps == [Some(*x), Some(*y)] || ps == [Some(*y), Some(*x)]
                } =>
            {
                BinaryOp::Add
            }
            (Op::Parameter { number: 1 }, _) => BinaryOp::Complex, // overwrite
            _ => return Err(unsupported(instr, "a scatter of complex values with this combiner")),
        };
        let (or, oi) = self.pair(instr.operands[0])?;
        let idx = self.one(instr.operands[1])?;
        let (ur, ui) = self.pair(instr.operands[2])?;
        let part = part_dtype(instr.shape.dtype().unwrap_or(DType::C64));
        let comp = self.part_reducer(part, kind);
        let shape = instr.shape.as_array().map(|a| Shape::Array(a.with_dtype(part))).unwrap();
        let op = Op::Scatter { dims, indices_are_sorted, unique_indices, to_apply: comp };
        let re = self.push_shaped(shape.clone(), op.clone(), &[or, idx, ur]);
        let im = self.push_shaped(shape, op, &[oi, idx, ui]);
        Ok(Val::Pair(re, im))
    }

    /// A scalar reducer on the real part type: `add`, or overwrite (`Complex` stands for it).
    fn part_reducer(&mut self, dtype: DType, kind: BinaryOp) -> CompId {
        let name = format!("complex_part_{}_{dtype}", if kind == BinaryOp::Add { "add" } else { "overwrite" });
        if let Some(k) = self.new_comps.iter().position(|c| c.name == name) {
            return CompId((self.module_len + k) as u32);
        }
        let name = self.names.fresh(&name);
        let mut b = ComputationBuilder::new(name);
        let x = b.param(Shape::scalar(dtype));
        let y = b.param(Shape::scalar(dtype));
        let root = if kind == BinaryOp::Add { b.binary(BinaryOp::Add, x, y) } else { y };
        let comp = b.finish_with_root(root).expect("a scalar reducer builds");
        self.new_comps.push(comp);
        let id = CompId((self.module_len + self.new_comps.len() - 1) as u32);
        // Later instructions of this computation may call it: let the builder know.
        self.b.set_callee(id, self.new_comps.last().unwrap());
        id
    }
}
