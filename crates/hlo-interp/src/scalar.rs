//! Calling a computation on scalars, many times: reducers, comparators, scatter combiners.
//!
//! Reduce, reduce-window, scatter, select-and-scatter, sort and map apply a small
//! computation once per element. Running the full evaluator for each call would build
//! literals (heap allocations) per op per element, so [`ScalarFn`] first tries to compile
//! the computation into a [`Program`]: a list of steps over a preallocated slot vector
//! of [`Scalar`]s. Only computations made of scalar elementwise ops (plus tuples,
//! get-tuple-element, calls and scalar shape no-ops) compile; anything else falls back to
//! the full evaluator per call, which is slow but equally correct.
//!
//! [`trivial_binop`] recognises the reducers that are a single commutative-enough binary
//! op on the two parameters (add, multiply, max, min, and, or, xor), which the callers
//! run as typed loops without any scalar dispatch at all.

use crate::array::{make, map_data};
use crate::error::{invalid, unsupported, OpError, OpResult};
use crate::eval::Interp;
use crate::options::Options;
use crate::scalar_ops::{self as so, Narrow};
use half::{bf16, f16};
use hlo_ir::{
    ArrayData as AD, ArrayShape, BinaryOp, CompId, CompareDirection, CompareType, DType, InstrId, Literal, Module, Op,
    Shape, UnaryOp,
};

/// One element of any storage class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    Pred(bool),
    S8(i8),
    S16(i16),
    S32(i32),
    S64(i64),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    F16(f16),
    BF16(bf16),
    F32(f32),
    F64(f64),
    C64([f32; 2]),
    C128([f64; 2]),
    Bits(u8),
}

/// Element `i` of `data`.
pub fn get(data: &AD, i: usize) -> Scalar {
    match data {
        AD::Pred(v) => Scalar::Pred(v[i]),
        AD::S8(v) => Scalar::S8(v[i]),
        AD::S16(v) => Scalar::S16(v[i]),
        AD::S32(v) => Scalar::S32(v[i]),
        AD::S64(v) => Scalar::S64(v[i]),
        AD::U8(v) => Scalar::U8(v[i]),
        AD::U16(v) => Scalar::U16(v[i]),
        AD::U32(v) => Scalar::U32(v[i]),
        AD::U64(v) => Scalar::U64(v[i]),
        AD::F16(v) => Scalar::F16(v[i]),
        AD::BF16(v) => Scalar::BF16(v[i]),
        AD::F32(v) => Scalar::F32(v[i]),
        AD::F64(v) => Scalar::F64(v[i]),
        AD::C64(v) => Scalar::C64(v[i]),
        AD::C128(v) => Scalar::C128(v[i]),
        AD::Bits(v) => Scalar::Bits(v[i]),
    }
}

/// Stores `x` as element `i` of `data`; false when the storage classes differ.
pub fn set(data: &mut AD, i: usize, x: Scalar) -> bool {
    match (data, x) {
        (AD::Pred(v), Scalar::Pred(x)) => v[i] = x,
        (AD::S8(v), Scalar::S8(x)) => v[i] = x,
        (AD::S16(v), Scalar::S16(x)) => v[i] = x,
        (AD::S32(v), Scalar::S32(x)) => v[i] = x,
        (AD::S64(v), Scalar::S64(x)) => v[i] = x,
        (AD::U8(v), Scalar::U8(x)) => v[i] = x,
        (AD::U16(v), Scalar::U16(x)) => v[i] = x,
        (AD::U32(v), Scalar::U32(x)) => v[i] = x,
        (AD::U64(v), Scalar::U64(x)) => v[i] = x,
        (AD::F16(v), Scalar::F16(x)) => v[i] = x,
        (AD::BF16(v), Scalar::BF16(x)) => v[i] = x,
        (AD::F32(v), Scalar::F32(x)) => v[i] = x,
        (AD::F64(v), Scalar::F64(x)) => v[i] = x,
        (AD::C64(v), Scalar::C64(x)) => v[i] = x,
        (AD::C128(v), Scalar::C128(x)) => v[i] = x,
        (AD::Bits(v), Scalar::Bits(x)) => v[i] = x,
        _ => return false,
    }
    true
}

/// A one-element array holding `x`.
pub fn to_data(x: Scalar) -> AD {
    match x {
        Scalar::Pred(x) => AD::Pred(vec![x]),
        Scalar::S8(x) => AD::S8(vec![x]),
        Scalar::S16(x) => AD::S16(vec![x]),
        Scalar::S32(x) => AD::S32(vec![x]),
        Scalar::S64(x) => AD::S64(vec![x]),
        Scalar::U8(x) => AD::U8(vec![x]),
        Scalar::U16(x) => AD::U16(vec![x]),
        Scalar::U32(x) => AD::U32(vec![x]),
        Scalar::U64(x) => AD::U64(vec![x]),
        Scalar::F16(x) => AD::F16(vec![x]),
        Scalar::BF16(x) => AD::BF16(vec![x]),
        Scalar::F32(x) => AD::F32(vec![x]),
        Scalar::F64(x) => AD::F64(vec![x]),
        Scalar::C64(x) => AD::C64(vec![x]),
        Scalar::C128(x) => AD::C128(vec![x]),
        Scalar::Bits(x) => AD::Bits(vec![x]),
    }
}

impl Scalar {
    /// The value as a pred, for comparator and select results.
    pub fn as_bool(self) -> OpResult<bool> {
        match self {
            Scalar::Pred(b) => Ok(b),
            other => invalid(format!("expected a pred result, got {other:?}")),
        }
    }
}

fn unary(op: UnaryOp, x: Scalar) -> OpResult<Scalar> {
    use Scalar as S;
    Ok(match x {
        S::Pred(a) => S::Pred(so::pred_unop(op)?(a)),
        S::S8(a) => S::S8(so::int_unop(op)?(a)),
        S::S16(a) => S::S16(so::int_unop(op)?(a)),
        S::S32(a) => S::S32(so::int_unop(op)?(a)),
        S::S64(a) => S::S64(so::int_unop(op)?(a)),
        S::U8(a) => S::U8(so::int_unop(op)?(a)),
        S::U16(a) => S::U16(so::int_unop(op)?(a)),
        S::U32(a) => S::U32(so::int_unop(op)?(a)),
        S::U64(a) => S::U64(so::int_unop(op)?(a)),
        S::F16(a) if op != UnaryOp::IsFinite => S::F16(f16::from_f32(so::float_unop::<f32>(op)?(a.to_f32()))),
        S::BF16(a) if op != UnaryOp::IsFinite => S::BF16(bf16::from_f32(so::float_unop::<f32>(op)?(a.to_f32()))),
        S::F32(a) if op != UnaryOp::IsFinite => S::F32(so::float_unop(op)?(a)),
        S::F64(a) if op != UnaryOp::IsFinite => S::F64(so::float_unop(op)?(a)),
        // The type-changing and rare cases go through the array path.
        other => return from_array(crate::elementwise::unary(op, &to_data(other))?),
    })
}

fn narrow2<H: Narrow>(f: fn(f32, f32) -> f32, a: H, b: H) -> H {
    H::from_f32(f(a.to_f32(), b.to_f32()))
}

fn binary(op: BinaryOp, x: Scalar, y: Scalar) -> OpResult<Scalar> {
    use Scalar as S;
    Ok(match (x, y) {
        (S::Pred(a), S::Pred(b)) => S::Pred(so::pred_binop(op)?(a, b)),
        (S::S8(a), S::S8(b)) => S::S8(so::int_binop(op)?(a, b)),
        (S::S16(a), S::S16(b)) => S::S16(so::int_binop(op)?(a, b)),
        (S::S32(a), S::S32(b)) => S::S32(so::int_binop(op)?(a, b)),
        (S::S64(a), S::S64(b)) => S::S64(so::int_binop(op)?(a, b)),
        (S::U8(a), S::U8(b)) => S::U8(so::int_binop(op)?(a, b)),
        (S::U16(a), S::U16(b)) => S::U16(so::int_binop(op)?(a, b)),
        (S::U32(a), S::U32(b)) => S::U32(so::int_binop(op)?(a, b)),
        (S::U64(a), S::U64(b)) => S::U64(so::int_binop(op)?(a, b)),
        (S::F16(a), S::F16(b)) => S::F16(narrow2(so::float_binop(op)?, a, b)),
        (S::BF16(a), S::BF16(b)) => S::BF16(narrow2(so::float_binop(op)?, a, b)),
        (S::F32(a), S::F32(b)) if op != BinaryOp::Complex => S::F32(so::float_binop(op)?(a, b)),
        (S::F64(a), S::F64(b)) if op != BinaryOp::Complex => S::F64(so::float_binop(op)?(a, b)),
        (a, b) => return from_array(crate::elementwise::binary(op, &to_data(a), &to_data(b))?),
    })
}

fn compare(dir: CompareDirection, ty: Option<CompareType>, x: Scalar, y: Scalar) -> OpResult<Scalar> {
    use Scalar as S;
    let total = ty == Some(CompareType::TotalOrder);
    Ok(S::Pred(match (x, y) {
        (S::F32(a), S::F32(b)) if total => so::total_order_cmp::<f32>(dir)(a, b),
        (S::F32(a), S::F32(b)) => so::cmp_by::<f32>(dir)(a, b),
        (S::S32(a), S::S32(b)) => so::cmp_by::<i32>(dir)(a, b),
        (S::U32(a), S::U32(b)) => so::cmp_by::<u32>(dir)(a, b),
        (S::Pred(a), S::Pred(b)) => so::cmp_by::<bool>(dir)(a, b),
        (a, b) => return from_array(crate::elementwise::compare(dir, ty, &to_data(a), &to_data(b))?),
    }))
}

fn from_array(data: AD) -> OpResult<Scalar> {
    if data.len() != 1 {
        return invalid("scalar op produced a non-scalar");
    }
    Ok(get(&data, 0))
}

/// What one step of a [`Program`] does; operands are slot numbers.
#[derive(Clone, Debug)]
enum StepKind {
    Const(Scalar),
    Unary(UnaryOp),
    Binary(BinaryOp),
    Compare(CompareDirection, Option<CompareType>),
    Select,
    Clamp,
    Convert(DType, DType),
    /// A rare op run through the array path (boxed: `Op` is large).
    Other(Box<(Op, Shape)>),
}

#[derive(Clone, Debug)]
struct Step {
    kind: StepKind,
    out: usize,
    operands: Vec<usize>,
}

/// A computation on scalars compiled to straight-line steps over a slot vector.
#[derive(Clone, Debug)]
pub struct Program {
    n_params: usize,
    n_slots: usize,
    steps: Vec<Step>,
    /// Slots holding the results (one per element of a tuple root, else one).
    outputs: Vec<usize>,
    /// Element types of the parameters (for checking calls).
    param_types: Vec<DType>,
}

/// A value during compilation: a slot, or a tuple of values.
#[derive(Clone, Debug)]
enum Val {
    Slot(usize),
    Tuple(Vec<Val>),
}

struct Compiler<'m> {
    module: &'m Module,
    steps: Vec<Step>,
    n_slots: usize,
    depth: usize,
}

impl Compiler<'_> {
    fn slot(&mut self) -> usize {
        self.n_slots += 1;
        self.n_slots - 1
    }

    /// Compiles `comp` with its parameters bound to `params`; returns its root value.
    fn comp(&mut self, comp: CompId, params: &[Val]) -> Option<Val> {
        if self.depth > 16 {
            return None;
        }
        self.depth += 1;
        let c = self.module.comps.get(comp.index())?;
        let mut vals: Vec<Option<Val>> = vec![None; c.instrs.len()];
        for (i, instr) in c.instrs.iter().enumerate() {
            let ops: Option<Vec<Val>> = instr.operands.iter().map(|o| vals.get(o.index()).cloned().flatten()).collect();
            let ops = ops?;
            // 2- and 4-bit integers wrap to their width after each op, which the scalar steps
            // (on 8-bit and wider values) do not do: such computations take the array path.
            // 8- and 4-bit floats compute in f32 and round (`eval::minifloat_arithmetic`), which
            // only the array path does.
            if instr
                .shape
                .dtype()
                .is_some_and(|d| d.bit_width() < 8 && d.is_integer() || d.bit_width() <= 8 && d.is_float())
            {
                return None;
            }
            let slot_of = |v: &Val| match v {
                Val::Slot(s) => Some(*s),
                Val::Tuple(_) => None,
            };
            let kind = match &instr.op {
                Op::Parameter { number } => {
                    vals[i] = Some(params.get(*number as usize)?.clone());
                    continue;
                }
                Op::Tuple => {
                    vals[i] = Some(Val::Tuple(ops));
                    continue;
                }
                Op::GetTupleElement { index } => {
                    let Val::Tuple(elems) = &ops[0] else { return None };
                    vals[i] = Some(elems.get(*index as usize)?.clone());
                    continue;
                }
                Op::Call { to_apply, .. } | Op::Fusion { calls: to_apply, .. } => {
                    vals[i] = Some(self.comp(*to_apply, &ops)?);
                    continue;
                }
                Op::Reshape | Op::Copy | Op::Bitcast | Op::Broadcast { .. } | Op::OptimizationBarrier
                    if is_scalar(&instr.shape)
                        && instr.operands.len() == 1
                        && self_dtype(c, instr.operands[0]) == instr.shape.dtype() =>
                {
                    vals[i] = Some(ops.first()?.clone());
                    continue;
                }
                // A scalar bitcast between element types of one width reinterprets the bits.
                Op::Bitcast if is_scalar(&instr.shape) => {
                    StepKind::Other(Box::new((Op::BitcastConvert, instr.shape.clone())))
                }
                Op::Constant(lit) if lit.array_data().is_some_and(|d| d.len() == 1) => {
                    StepKind::Const(get(lit.array_data()?, 0))
                }
                Op::Unary(op) => StepKind::Unary(*op),
                Op::Binary(op) => StepKind::Binary(*op),
                Op::Compare { direction, compare_type } => StepKind::Compare(*direction, *compare_type),
                Op::Select => StepKind::Select,
                Op::Clamp => StepKind::Clamp,
                Op::Convert => {
                    let from = self_dtype(c, *instr.operands.first()?)?;
                    StepKind::Convert(from, instr.shape.dtype()?)
                }
                Op::BitcastConvert | Op::ReducePrecision { .. } => {
                    StepKind::Other(Box::new((instr.op.clone(), instr.shape.clone())))
                }
                _ => return None,
            };
            if !is_scalar(&instr.shape) {
                return None;
            }
            if let StepKind::Const(_) = kind {
                if instr.shape.as_array()?.num_elements() != 1 {
                    return None;
                }
            }
            let operands: Option<Vec<usize>> = ops.iter().map(slot_of).collect();
            let out = self.slot();
            self.steps.push(Step { kind, out, operands: operands? });
            vals[i] = Some(Val::Slot(out));
        }
        self.depth -= 1;
        vals.get(c.root.index()).cloned().flatten()
    }
}

fn self_dtype(c: &hlo_ir::Computation, id: InstrId) -> Option<DType> {
    c.instrs.get(id.index())?.shape.dtype()
}

fn is_scalar(shape: &Shape) -> bool {
    matches!(shape, Shape::Array(a) if a.num_elements() == 1)
}

fn flatten(v: &Val, out: &mut Vec<usize>) -> Option<()> {
    match v {
        Val::Slot(s) => out.push(*s),
        Val::Tuple(elems) => {
            for e in elems {
                flatten(e, out)?;
            }
        }
    }
    Some(())
}

impl Program {
    /// Compiles `comp` if every instruction is a scalar op this module can run.
    pub fn compile(module: &Module, comp: CompId) -> Option<Program> {
        let c = module.comps.get(comp.index())?;
        let mut param_types = Vec::new();
        for shape in c.param_shapes() {
            if !is_scalar(shape) {
                return None;
            }
            param_types.push(shape.dtype()?);
        }
        let n_params = param_types.len();
        let mut compiler = Compiler { module, steps: Vec::new(), n_slots: n_params, depth: 0 };
        let params: Vec<Val> = (0..n_params).map(Val::Slot).collect();
        let root = compiler.comp(comp, &params)?;
        let mut outputs = Vec::new();
        flatten(&root, &mut outputs)?;
        Some(Program { n_params, n_slots: compiler.n_slots, steps: compiler.steps, outputs, param_types })
    }

    fn run(&self, slots: &mut [Scalar], options: &Options) -> OpResult<()> {
        for step in &self.steps {
            let flush = options.flush_denormals && step.flushes();
            let arg = |k: usize| {
                let x = slots[step.operands[k]];
                if flush {
                    flush_scalar(x)
                } else {
                    x
                }
            };
            let res = match &step.kind {
                StepKind::Const(x) => *x,
                StepKind::Unary(op) => unary(*op, arg(0))?,
                StepKind::Binary(op) => binary(*op, arg(0), arg(1))?,
                StepKind::Compare(dir, ty) => compare(*dir, *ty, arg(0), arg(1))?,
                StepKind::Select => {
                    if arg(0).as_bool()? {
                        arg(1)
                    } else {
                        arg(2)
                    }
                }
                StepKind::Clamp => {
                    from_array(crate::elementwise::clamp(&to_data(arg(0)), &to_data(arg(1)), &to_data(arg(2)))?)?
                }
                StepKind::Convert(from, to) => from_array(crate::convert::convert(&to_data(arg(0)), *from, *to)?)?,
                StepKind::Other(other) => {
                    let (op, shape) = other.as_ref();
                    let ops: Vec<Literal> = (0..step.operands.len())
                        .map(|k| {
                            let x = arg(k);
                            let data = to_data(x);
                            let dtype = data_dtype(&data);
                            make(&ArrayShape::scalar(dtype), data)
                        })
                        .collect();
                    let refs: Vec<&Literal> = ops.iter().collect();
                    let res = crate::eval::eval_detached(op, shape, &refs, options)?;
                    from_array(res.array_data().cloned().ok_or(OpError::Invalid("non-array result".into()))?)?
                }
            };
            slots[step.out] = if flush { flush_scalar(res) } else { res };
        }
        Ok(())
    }
}

impl Step {
    /// Whether XLA:CPU's denormal flushing applies (float arithmetic, not bit-level ops).
    fn flushes(&self) -> bool {
        match &self.kind {
            StepKind::Unary(u) => !matches!(
                u,
                UnaryOp::Abs | UnaryOp::Negate | UnaryOp::IsFinite | UnaryOp::Real | UnaryOp::Imag | UnaryOp::Not
            ),
            StepKind::Binary(_) | StepKind::Clamp => true,
            StepKind::Convert(from, to) => crate::convert::flushes_subnormals(*from, *to),
            StepKind::Compare(_, ty) => *ty != Some(CompareType::TotalOrder),
            _ => false,
        }
    }
}

fn flush_scalar(x: Scalar) -> Scalar {
    use crate::options::Flush;
    match x {
        Scalar::F32(v) => Scalar::F32(v.flush()),
        Scalar::F64(v) => Scalar::F64(v.flush()),
        Scalar::BF16(v) => Scalar::BF16(v.flush()),
        other => other,
    }
}

/// A representative element type for a storage class (exact for all but sub-byte and f8).
fn data_dtype(data: &AD) -> DType {
    match data {
        AD::Pred(_) => DType::Pred,
        AD::S8(_) => DType::S8,
        AD::S16(_) => DType::S16,
        AD::S32(_) => DType::S32,
        AD::S64(_) => DType::S64,
        AD::U8(_) => DType::U8,
        AD::U16(_) => DType::U16,
        AD::U32(_) => DType::U32,
        AD::U64(_) => DType::U64,
        AD::F16(_) => DType::F16,
        AD::BF16(_) => DType::BF16,
        AD::F32(_) => DType::F32,
        AD::F64(_) => DType::F64,
        AD::C64(_) => DType::C64,
        AD::C128(_) => DType::C128,
        AD::Bits(_) => DType::F8E4M3FN,
    }
}

/// A computation callable on scalars: compiled when possible, else through the evaluator.
pub struct ScalarFn<'a, 'm> {
    interp: &'a Interp<'m>,
    comp: CompId,
    program: Option<Program>,
    slots: Vec<Scalar>,
    n_params: usize,
    param_shapes: Vec<ArrayShape>,
}

impl<'a, 'm> ScalarFn<'a, 'm> {
    pub fn new(interp: &'a Interp<'m>, comp: CompId) -> OpResult<ScalarFn<'a, 'm>> {
        let module = interp.module;
        if comp.index() >= module.comps.len() {
            return invalid(format!("called computation {comp:?} does not exist"));
        }
        let c = module.comp(comp);
        let mut param_shapes = Vec::new();
        for shape in c.param_shapes() {
            match shape {
                Shape::Array(a) if a.num_elements() == 1 => param_shapes.push(a.clone()),
                _ => return unsupported(format!("computation `{}` takes a non-scalar parameter", c.name)),
            }
        }
        let program = Program::compile(module, comp);
        let n_slots = program.as_ref().map_or(0, |p| p.n_slots);
        Ok(ScalarFn {
            interp,
            comp,
            slots: vec![Scalar::Pred(false); n_slots],
            n_params: param_shapes.len(),
            program,
            param_shapes,
        })
    }

    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// Calls the computation; `out` receives the flattened results.
    pub fn call(&mut self, args: &[Scalar], out: &mut Vec<Scalar>) -> OpResult<()> {
        if args.len() != self.n_params {
            return invalid(format!("computation takes {} scalars, got {}", self.n_params, args.len()));
        }
        out.clear();
        if let Some(p) = &self.program {
            debug_assert_eq!(p.n_params, args.len());
            debug_assert_eq!(p.param_types.len(), args.len());
            self.slots[..args.len()].copy_from_slice(args);
            p.run(&mut self.slots, &self.interp.options)?;
            out.extend(p.outputs.iter().map(|&s| self.slots[s]));
            return Ok(());
        }
        let lits: Vec<Literal> =
            args.iter().zip(&self.param_shapes).map(|(&x, shape)| make(shape, to_data(x))).collect();
        let refs: Vec<&Literal> = lits.iter().collect();
        let res = self.interp.call(self.comp, &refs)?;
        let mut leaves = Vec::new();
        collect_scalars(&res, &mut leaves)?;
        out.extend(leaves);
        Ok(())
    }

    /// Calls a computation with one result.
    pub fn call1(&mut self, args: &[Scalar], buf: &mut Vec<Scalar>) -> OpResult<Scalar> {
        self.call(args, buf)?;
        match buf.as_slice() {
            [x] => Ok(*x),
            _ => invalid(format!("expected one result, got {}", buf.len())),
        }
    }
}

fn collect_scalars(lit: &Literal, out: &mut Vec<Scalar>) -> OpResult<()> {
    match &lit.data {
        hlo_ir::LiteralData::Array(d) if d.len() == 1 => out.push(get(d, 0)),
        hlo_ir::LiteralData::Tuple(elems) => {
            for e in elems {
                collect_scalars(e, out)?;
            }
        }
        _ => return invalid("computation returned a non-scalar"),
    }
    Ok(())
}

/// The binary op of a reducer `f(p0, p1) = p0 op p1`, if that is all it is.
pub fn trivial_binop(module: &Module, comp: CompId) -> Option<BinaryOp> {
    let c = module.comps.get(comp.index())?;
    if c.params.len() != 2 {
        return None;
    }
    let root = c.instrs.get(c.root.index())?;
    let Op::Binary(op) = root.op else { return None };
    // The typed folds compute 2- and 4-bit integers in a byte without wrapping them, and have
    // no arithmetic of 8- and 4-bit floats.
    if root.shape.dtype().is_some_and(|d| d.bit_width() < 8 && d.is_integer() || d.bit_width() <= 8 && d.is_float()) {
        return None;
    }
    let [a, b] = root.operands[..] else { return None };
    let (p0, p1) = (c.params[0], c.params[1]);
    let commutes = op.is_commutative();
    let ordered = (a == p0 && b == p1) || (commutes && a == p1 && b == p0);
    let is_simple = matches!(
        op,
        BinaryOp::Add | BinaryOp::Multiply | BinaryOp::Maximum | BinaryOp::Minimum | BinaryOp::And | BinaryOp::Or
    );
    (ordered && is_simple).then_some(op)
}

/// Which parameter a computation returns unchanged, if its root is a parameter
/// (`p1` is scatter's "replace" combiner).
pub fn returns_param(module: &Module, comp: CompId) -> Option<usize> {
    let c = module.comps.get(comp.index())?;
    c.params.iter().position(|&p| p == c.root)
}

/// Splats a scalar into `n` copies.
pub fn splat(x: Scalar, n: usize) -> AD {
    map_data!(&to_data(x), v => vec![v[0]; n])
}
