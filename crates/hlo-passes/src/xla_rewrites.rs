//! `xla-rewrites`: the float rewrites of XLA's `AlgebraicSimplifier` that change values.
//!
//! JAX users see XLA's results, and XLA rewrites some float arithmetic into cheaper forms
//! that round differently. Doing the same rewrites makes our results equal JAX's on CPU.
//! Rules, in the order XLA tries them (`HandleDivide`, `HandleMultiply`, `HandleLog`):
//! - `exp(a) / exp(b)` -> `exp(a - b)`; `a / exp(b)` -> `a * exp(-b)`;
//!   `a / pow(b, c)` -> `a * pow(b, -c)`;
//! - `a / sqrt(b)` -> `a * rsqrt(b)` and `a / rsqrt(b)` -> `a * sqrt(b)` when the root has no
//!   other use;
//! - `a / c` for a non-constant `a` and a float constant `c` (or a broadcast of one) ->
//!   `a * (1 / c)`, the reciprocal rounded once in the element type: `x / 3` is `x * 0.333333343`,
//!   which is not always `x / 3` (a nearest-neighbour resize picks another pixel);
//! - `(a / b) / (c / d)` -> `(a * d) / (b * c)`; `(a / b) / c` -> `a / (b * c)`;
//!   `a / (b / c)` -> `(a * c) / b`;
//! - `convert(p) / broadcast(y)` for a pred `p` and a scalar `y` -> `broadcast(1 / y) * convert(p)`;
//! - `convert(p) * x` for a pred `p` -> `select(p, x, 0)` (so a NaN or an infinity in `x`
//!   gives 0 where `p` is false);
//! - `(a * c1) * (b * c2)` -> `(a * b) * (c1 * c2)`, `(a * c1) * c2` -> `a * (c1 * c2)` for
//!   constants `c1`, `c2` (also as broadcasts of scalars), and `(a * c) * broadcast(b)` ->
//!   `a * broadcast(b * c)`;
//! - `exp(a) * exp(b)` -> `exp(a + b)`;
//! - `a * -1` -> `-a` (LLVM's InstCombine, after XLA: a NaN's sign flips);
//! - `reduce(a)` over size-1 dimensions only -> `reshape(a)`;
//! - `log(exp(a))` -> `a`; `log(sqrt(a))` -> `log(a) * 0.5`; `log(rsqrt(a))` -> `log(a) * -0.5`;
//! - `pow(a, c)` for a constant exponent: 0 -> 1, 1 -> `a`, 2 -> `a * a`, 3 -> `a * (a * a)`,
//!   -1 -> `1 / a`, and 0.5 -> `sqrt(a)` when `a` is known non-negative (`abs`, `x * x`, ...);
//!   other exponents stay `pow` (what JAX 0.8.3's XLA does, checked against its dumps).
//!
//! Products and reciprocals of constants are left as `multiply` and `divide` instructions for
//! constant folding (or the interpreter) to compute in the element type, as XLA's folding and
//! its `InvertConstant` (`T{1} / c`, in f32 for f16 and bf16, rounded once) do.
//! Complex division by a constant is left alone.
//!
//! Pre-condition: a well-formed module. Post-condition: none of the patterns remains.

use crate::util::{compact, NameUniquer};
use crate::PassError;
use hlo_ir::{ArrayShape, BinaryOp, Computation, DType, Instr, InstrId, Literal, Module, Op, Shape, UnaryOp};
use std::collections::HashMap;

/// Rounds of rewriting per computation before giving up on a fixpoint.
const MAX_ROUNDS: usize = 16;

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("xla-rewrites").entered();
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    // XLA simplifies before it fuses: inside a fusion a producer may have been duplicated for
    // each consumer, and a rule that asks for one use would then fire where XLA's did not.
    let fused: std::collections::HashSet<hlo_ir::CompId> = module
        .comps
        .iter()
        .flat_map(|c| c.instrs.iter())
        .filter_map(|i| match &i.op {
            hlo_ir::Op::Fusion { calls, .. } => Some(*calls),
            _ => None,
        })
        .collect();
    for (k, comp) in module.comps.iter_mut().enumerate() {
        if fused.contains(&hlo_ir::CompId(k as u32)) {
            continue;
        }
        for _ in 0..MAX_ROUNDS {
            let round = rewrite_comp(comp, &mut names)?;
            changed |= round;
            if !round {
                break;
            }
        }
    }
    Ok(changed)
}

fn rewrite_comp(comp: &mut Computation, names: &mut NameUniquer) -> Result<bool, PassError> {
    // Uses are operand occurrences, as XLA's `WithOneUse` counts them.
    let uses: Vec<usize> = {
        let mut n = vec![0usize; comp.instrs.len()];
        for instr in &comp.instrs {
            for o in &instr.operands {
                n[o.index()] += 1;
            }
        }
        n
    };
    let mut repl: HashMap<InstrId, InstrId> = HashMap::new();
    let mut changed = false;
    let n = comp.instrs.len();
    for idx in 0..n {
        let id = InstrId::from_index(idx);
        for op in &mut comp.instr_mut(id).operands {
            while let Some(&to) = repl.get(op) {
                *op = to;
            }
        }
        let one_use = |x: InstrId| uses.get(x.index()).copied() == Some(1);
        let mut b = Builder { comp, names, at: id };
        let new = match b.comp.instr(id).op {
            Op::Binary(BinaryOp::Divide) => divide(&mut b, id, one_use),
            Op::Binary(BinaryOp::Multiply) => multiply(&mut b, id),
            Op::Unary(UnaryOp::Log) => log(&mut b, id),
            Op::Binary(BinaryOp::Power) => power(&mut b, id),
            Op::Reduce { .. } => reduce_of_unit_dims(&mut b, id),
            _ => None,
        };
        if let Some(to) = new {
            repl.insert(id, to);
            changed = true;
        }
    }
    while let Some(&to) = repl.get(&comp.root) {
        comp.root = to;
    }
    if changed {
        for instr in &mut comp.instrs {
            for op in &mut instr.operands {
                while let Some(&to) = repl.get(op) {
                    *op = to;
                }
            }
        }
        compact(comp)?;
    }
    Ok(changed)
}

/// Appends instructions named after the one being rewritten.
struct Builder<'a> {
    comp: &'a mut Computation,
    names: &'a mut NameUniquer,
    at: InstrId,
}

impl Builder<'_> {
    fn push(&mut self, shape: Shape, op: Op, operands: Vec<InstrId>) -> InstrId {
        let base = self.comp.instr(self.at);
        let mut instr = Instr::new(self.names.fresh(&base.name), shape, op, operands);
        instr.meta.metadata = base.meta.metadata.clone();
        self.comp.push(instr)
    }

    fn shape(&self, id: InstrId) -> Shape {
        self.comp.instr(id).shape.clone()
    }

    fn op(&self, id: InstrId) -> &Op {
        &self.comp.instr(id).op
    }

    fn operand(&self, id: InstrId, k: usize) -> InstrId {
        self.comp.instr(id).operands[k]
    }

    fn binary(&mut self, op: BinaryOp, shape: Shape, a: InstrId, b: InstrId) -> InstrId {
        self.push(shape, Op::Binary(op), vec![a, b])
    }

    fn unary(&mut self, op: UnaryOp, shape: Shape, a: InstrId) -> InstrId {
        self.push(shape, Op::Unary(op), vec![a])
    }

    /// A scalar constant of `dtype` broadcast to `shape` (XLA's `MakeScalarLike`).
    fn scalar_like(&mut self, shape: &Shape, value: f64) -> Option<InstrId> {
        let array = shape.as_array()?;
        let lit = scalar_literal(array.dtype, value)?;
        let c = self.push(Shape::scalar(array.dtype), Op::Constant(Box::new(lit)), vec![]);
        Some(if array.rank() == 0 {
            c
        } else {
            self.push(shape.clone(), Op::Broadcast { dimensions: vec![] }, vec![c])
        })
    }

    /// `c` broadcast to `shape` when `c` is a scalar and `shape` is not (as XLA does after
    /// multiplying two constants).
    fn broadcast_if_scalar(&mut self, c: InstrId, shape: &Shape) -> InstrId {
        let is_scalar = self.comp.instr(c).shape.as_array().is_some_and(|a| a.rank() == 0);
        let wants_array = shape.as_array().is_some_and(|a| a.rank() > 0);
        if is_scalar && wants_array {
            self.push(shape.clone(), Op::Broadcast { dimensions: vec![] }, vec![c])
        } else {
            c
        }
    }

    fn is_constant(&self, id: InstrId) -> bool {
        matches!(self.op(id), Op::Constant(_))
    }

    fn is_scalar_constant(&self, id: InstrId) -> bool {
        self.is_constant(id) && self.comp.instr(id).shape.as_array().is_some_and(|a| a.rank() == 0)
    }

    /// `broadcast(c)` with a scalar constant `c`: returns `c`.
    fn broadcast_of_scalar_constant(&self, id: InstrId) -> Option<InstrId> {
        match self.op(id) {
            Op::Broadcast { .. } => {
                let c = self.operand(id, 0);
                self.is_scalar_constant(c).then_some(c)
            }
            _ => None,
        }
    }

    fn unary_operand(&self, id: InstrId, op: UnaryOp) -> Option<InstrId> {
        matches!(self.op(id), Op::Unary(u) if *u == op).then(|| self.operand(id, 0))
    }

    fn binary_operands(&self, id: InstrId, op: BinaryOp) -> Option<(InstrId, InstrId)> {
        matches!(self.op(id), Op::Binary(b) if *b == op).then(|| (self.operand(id, 0), self.operand(id, 1)))
    }

    fn dtype(&self, id: InstrId) -> Option<DType> {
        self.comp.instr(id).shape.dtype()
    }
}

/// A scalar float literal of `dtype` holding `value`, which must be exact in that type
/// (the rules only need 0, 1 and +-0.5).
fn scalar_literal(dtype: DType, value: f64) -> Option<Literal> {
    let v = value as f32;
    let bytes: Vec<u8> = match dtype {
        DType::F16 => f16_bits(v)?.to_le_bytes().to_vec(),
        DType::BF16 => ((v.to_bits() >> 16) as u16).to_le_bytes().to_vec(),
        DType::F32 => v.to_le_bytes().to_vec(),
        DType::F64 => value.to_le_bytes().to_vec(),
        DType::C64 => [v.to_le_bytes(), 0f32.to_le_bytes()].concat(),
        DType::C128 => [value.to_le_bytes(), 0f64.to_le_bytes()].concat(),
        _ => return None,
    };
    hlo_interp::literal_from_bytes(&ArrayShape::scalar(dtype), &bytes).ok()
}

/// The f16 bits of `v` when `v` is zero or a normal f16 value exactly.
fn f16_bits(v: f32) -> Option<u16> {
    let bits = v.to_bits();
    let sign = ((bits >> 31) as u16) << 15;
    if v == 0.0 {
        return Some(sign);
    }
    let exp = ((bits >> 23) & 0xff) as i32 - 127;
    let mantissa = bits & 0x7f_ffff;
    if !(-14..=15).contains(&exp) || mantissa & 0x1fff != 0 {
        return None;
    }
    Some(sign | (((exp + 15) as u16) << 10) | (mantissa >> 13) as u16)
}

fn divide(b: &mut Builder, id: InstrId, one_use: impl Fn(InstrId) -> bool) -> Option<InstrId> {
    let (x, y) = b.binary_operands(id, BinaryOp::Divide)?;
    let shape = b.shape(id);
    let dtype = b.dtype(id)?;
    if !(dtype.is_float() || dtype.is_complex()) {
        return None;
    }
    // exp(A)/exp(B) => exp(A-B)
    if let (Some(a), Some(c)) = (b.unary_operand(x, UnaryOp::Exp), b.unary_operand(y, UnaryOp::Exp)) {
        let sub = b.binary(BinaryOp::Subtract, shape.clone(), a, c);
        return Some(b.unary(UnaryOp::Exp, shape, sub));
    }
    // A/exp(B) => A*exp(-B)
    if let Some(c) = b.unary_operand(y, UnaryOp::Exp) {
        let neg = b.unary(UnaryOp::Negate, shape.clone(), c);
        let e = b.unary(UnaryOp::Exp, shape.clone(), neg);
        return Some(b.binary(BinaryOp::Multiply, shape, x, e));
    }
    // A/pow(B,C) => A*pow(B,-C)
    if let Some((base, exponent)) = b.binary_operands(y, BinaryOp::Power) {
        let neg = b.unary(UnaryOp::Negate, b.shape(exponent), exponent);
        let p = b.binary(BinaryOp::Power, b.shape(base), base, neg);
        return Some(b.binary(BinaryOp::Multiply, shape, x, p));
    }
    // A/sqrt(B) => A*rsqrt(B); A/rsqrt(B) => A*sqrt(B)
    for (root, inverse) in [(UnaryOp::Sqrt, UnaryOp::Rsqrt), (UnaryOp::Rsqrt, UnaryOp::Sqrt)] {
        if let Some(c) = b.unary_operand(y, root).filter(|_| one_use(y)) {
            let r = b.unary(inverse, shape.clone(), c);
            return Some(b.binary(BinaryOp::Multiply, shape, x, r));
        }
    }
    // A / Const => A * (1 / Const), for a non-constant A (nor a broadcast constant: the `1 / Const`
    // this builds for a non-scalar Const is one, which must not be rewritten again).
    let x_constant = b.is_constant(x) || matches!(b.op(x), Op::Broadcast { .. } if b.is_constant(b.operand(x, 0)));
    if !x_constant {
        let (constant, broadcast) = match b.op(y) {
            Op::Constant(_) => (Some(y), None),
            Op::Broadcast { dimensions } if b.is_constant(b.operand(y, 0)) => {
                (Some(b.operand(y, 0)), Some(dimensions.clone()))
            }
            _ => (None, None),
        };
        if let (Some(c), true) = (constant, dtype.is_float()) {
            let c_shape = b.shape(c);
            let one = b.scalar_like(&c_shape, 1.0)?;
            let mut inv = b.binary(BinaryOp::Divide, c_shape, one, c);
            if let Some(dimensions) = broadcast {
                inv = b.push(b.shape(y), Op::Broadcast { dimensions }, vec![inv]);
            }
            return Some(b.binary(BinaryOp::Multiply, shape, x, inv));
        }
    }
    // (A / B) / (C / D) => (A * D) / (B * C)
    if let (Some((a, bb)), Some((c, d))) =
        (b.binary_operands(x, BinaryOp::Divide), b.binary_operands(y, BinaryOp::Divide))
    {
        let ad = b.binary(BinaryOp::Multiply, shape.clone(), a, d);
        let bc = b.binary(BinaryOp::Multiply, shape.clone(), bb, c);
        return Some(b.binary(BinaryOp::Divide, shape, ad, bc));
    }
    // (A / B) / C => A / (B * C)
    if let Some((a, bb)) = b.binary_operands(x, BinaryOp::Divide) {
        let bc = b.binary(BinaryOp::Multiply, shape.clone(), bb, y);
        return Some(b.binary(BinaryOp::Divide, shape, a, bc));
    }
    // A / (B / C) => (A * C) / B
    if let Some((bb, c)) = b.binary_operands(y, BinaryOp::Divide) {
        let ac = b.binary(BinaryOp::Multiply, shape.clone(), x, c);
        return Some(b.binary(BinaryOp::Divide, shape, ac, bb));
    }
    // convert(pred X) / broadcast(scalar Y) => broadcast(1 / Y) * convert(X)
    if matches!(b.op(x), Op::Convert) && b.dtype(b.operand(x, 0)) == Some(DType::Pred) {
        if let Op::Broadcast { .. } = b.op(y) {
            let scalar = b.operand(y, 0);
            if b.comp.instr(scalar).shape.as_array().is_some_and(|a| a.rank() == 0) {
                let s_shape = b.shape(scalar);
                let one = b.scalar_like(&s_shape, 1.0)?;
                let recip = b.binary(BinaryOp::Divide, s_shape, one, scalar);
                let bcast = b.push(shape.clone(), Op::Broadcast { dimensions: vec![] }, vec![recip]);
                return Some(b.binary(BinaryOp::Multiply, shape, bcast, x));
            }
        }
    }
    None
}

fn multiply(b: &mut Builder, id: InstrId) -> Option<InstrId> {
    let (lhs, rhs) = b.binary_operands(id, BinaryOp::Multiply)?;
    let shape = b.shape(id);
    let dtype = b.dtype(id)?;
    if dtype == DType::Pred {
        return None;
    }
    // Mul(Convert(Pred), operand) => select(pred, operand, 0), either order (convert on the right first).
    for (operand, convert) in [(lhs, rhs), (rhs, lhs)] {
        if matches!(b.op(convert), Op::Convert) && b.dtype(b.operand(convert, 0)) == Some(DType::Pred) {
            let p = b.operand(convert, 0);
            let zero = b.scalar_like(&shape, 0.0).or_else(|| int_zero_like(b, &shape))?;
            return Some(b.push(shape, Op::Select, vec![p, operand, zero]));
        }
    }
    if !(dtype.is_float() || dtype.is_complex()) {
        return None;
    }
    // Mul(Mul(a, c1), Mul(b, c2)) => Mul(Mul(a, b), c1*c2), constants (not broadcasts), any order.
    if let (Some((a, c1)), Some((bb, c2))) = (nonconst_times_constant(b, lhs), nonconst_times_constant(b, rhs)) {
        let cc = b.binary(BinaryOp::Multiply, b.shape(c1), c1, c2);
        let cc = b.broadcast_if_scalar(cc, &shape);
        let ab = b.binary(BinaryOp::Multiply, shape.clone(), a, bb);
        return Some(b.binary(BinaryOp::Multiply, shape, ab, cc));
    }
    // Mul(Mul(a, c1), c2) => Mul(a, c1*c2), constants, any order.
    for (inner, c2) in [(lhs, rhs), (rhs, lhs)] {
        if let (Some((a, c1)), true) = (nonconst_times_constant(b, inner), b.is_constant(c2)) {
            let cc = b.binary(BinaryOp::Multiply, b.shape(c1), c1, c2);
            let cc = b.broadcast_if_scalar(cc, &shape);
            return Some(b.binary(BinaryOp::Multiply, shape, a, cc));
        }
    }
    // Mul(Mul(a, c), broadcast(b)) => Mul(a, broadcast(Mul(b, c))), c a scalar constant or a
    // broadcast of one, b not a constant.
    for (inner, op) in [(lhs, rhs), (rhs, lhs)] {
        let Some((a, c)) = nonconst_times_scalar_constant(b, inner) else { continue };
        let Op::Broadcast { dimensions } = b.op(op).clone() else { continue };
        let operand = b.operand(op, 0);
        if b.is_constant(operand) {
            continue;
        }
        let operand_shape = b.shape(operand);
        let c = b.broadcast_if_scalar(c, &operand_shape);
        let product = b.binary(BinaryOp::Multiply, operand_shape, operand, c);
        let bcast = b.push(shape.clone(), Op::Broadcast { dimensions }, vec![product]);
        return Some(b.binary(BinaryOp::Multiply, shape, a, bcast));
    }
    // (A * C1) * C2 => A * (C1 * C2), as broadcasts of scalar constants, in this order.
    if let Some((a, c1b)) = b.binary_operands(lhs, BinaryOp::Multiply) {
        if let (Some(c1), Some(c2)) = (b.broadcast_of_scalar_constant(c1b), b.broadcast_of_scalar_constant(rhs)) {
            let cc = b.binary(BinaryOp::Multiply, b.shape(c1), c1, c2);
            let cc = b.broadcast_if_scalar(cc, &shape);
            return Some(b.binary(BinaryOp::Multiply, shape, a, cc));
        }
    }
    // exp(A) * exp(B) => exp(A+B)
    if let (Some(a), Some(c)) = (b.unary_operand(lhs, UnaryOp::Exp), b.unary_operand(rhs, UnaryOp::Exp)) {
        let sum = b.binary(BinaryOp::Add, shape.clone(), a, c);
        return Some(b.unary(UnaryOp::Exp, shape, sum));
    }
    // Not XLA's but LLVM's, which compiles what XLA emits: InstCombine turns `x * -1.0` into
    // `fneg x`, which flips the sign of a NaN where a multiply would keep it (a total-order
    // compare or a bitcast then sees -NaN).
    if dtype.is_float() {
        for (x, c) in [(lhs, rhs), (rhs, lhs)] {
            if is_minus_one(b, c) && !b.is_constant(x) {
                return Some(b.unary(UnaryOp::Negate, shape, x));
            }
        }
    }
    None
}

/// A float constant -1, or a broadcast of one.
fn is_minus_one(b: &Builder, id: InstrId) -> bool {
    let c = if b.is_scalar_constant(id) {
        id
    } else if let Some(c) = b.broadcast_of_scalar_constant(id) {
        c
    } else {
        return false;
    };
    let Op::Constant(lit) = b.op(c) else { return false };
    match lit.array_data() {
        Some(hlo_ir::ArrayData::F32(v)) => v.first() == Some(&-1.0),
        Some(hlo_ir::ArrayData::F64(v)) => v.first() == Some(&-1.0),
        Some(hlo_ir::ArrayData::F16(v)) => v.first().map(|h| h.to_f32()) == Some(-1.0),
        Some(hlo_ir::ArrayData::BF16(v)) => v.first().map(|h| h.to_f32()) == Some(-1.0),
        _ => false,
    }
}

/// `0` of an integer type broadcast to `shape`.
fn int_zero_like(b: &mut Builder, shape: &Shape) -> Option<InstrId> {
    let array = shape.as_array()?;
    let lit = Literal::zeros(ArrayShape::scalar(array.dtype));
    let c = b.push(Shape::scalar(array.dtype), Op::Constant(Box::new(lit)), vec![]);
    Some(if array.rank() == 0 { c } else { b.push(shape.clone(), Op::Broadcast { dimensions: vec![] }, vec![c]) })
}

/// `a * c` (either order) with `a` not a constant and `c` a constant: `(a, c)`.
fn nonconst_times_constant(b: &Builder, id: InstrId) -> Option<(InstrId, InstrId)> {
    let (x, y) = b.binary_operands(id, BinaryOp::Multiply)?;
    if !b.is_constant(x) && b.is_constant(y) {
        Some((x, y))
    } else if !b.is_constant(y) && b.is_constant(x) {
        Some((y, x))
    } else {
        None
    }
}

/// `a * c` (either order) with `a` not a constant and `c` a scalar constant, directly or
/// broadcast: `(a, the scalar constant)`.
fn nonconst_times_scalar_constant(b: &Builder, id: InstrId) -> Option<(InstrId, InstrId)> {
    let (x, y) = b.binary_operands(id, BinaryOp::Multiply)?;
    for (a, c) in [(x, y), (y, x)] {
        if b.is_constant(a) {
            continue;
        }
        if b.is_scalar_constant(c) {
            return Some((a, c));
        }
        if let Some(s) = b.broadcast_of_scalar_constant(c) {
            return Some((a, s));
        }
    }
    None
}

/// The exponent's value when it is a scalar constant, directly or broadcast.
fn constant_exponent(b: &Builder, id: InstrId) -> Option<f64> {
    let c = if b.is_scalar_constant(id) { id } else { b.broadcast_of_scalar_constant(id)? };
    match b.op(c) {
        Op::Constant(lit) => crate::util::uniform_value(lit),
        _ => None,
    }
}

/// XLA's `IsNonNegative`: values that cannot be negative whatever the inputs.
fn is_non_negative(b: &Builder, id: InstrId) -> bool {
    match b.op(id) {
        Op::Binary(BinaryOp::Multiply) => b.operand(id, 0) == b.operand(id, 1),
        Op::Unary(UnaryOp::Abs) => true,
        Op::Broadcast { .. } => is_non_negative(b, b.operand(id, 0)),
        Op::Constant(lit) => b.is_scalar_constant(id) && crate::util::uniform_value(lit).is_some_and(|v| v >= 0.0),
        Op::Binary(BinaryOp::Maximum) => is_non_negative(b, b.operand(id, 0)) || is_non_negative(b, b.operand(id, 1)),
        Op::Select => is_non_negative(b, b.operand(id, 1)) && is_non_negative(b, b.operand(id, 2)),
        _ => false,
    }
}

fn power(b: &mut Builder, id: InstrId) -> Option<InstrId> {
    let (x, y) = b.binary_operands(id, BinaryOp::Power)?;
    let shape = b.shape(id);
    if !b.dtype(id)?.is_float() {
        return None;
    }
    match constant_exponent(b, y)? {
        0.0 => b.scalar_like(&shape, 1.0),
        1.0 => b.comp.instr(x).shape.compatible(&shape).then_some(x),
        2.0 => Some(b.binary(BinaryOp::Multiply, shape, x, x)),
        3.0 => {
            let square = b.binary(BinaryOp::Multiply, shape.clone(), x, x);
            Some(b.binary(BinaryOp::Multiply, shape, x, square))
        }
        -1.0 => {
            let one = b.scalar_like(&shape, 1.0)?;
            Some(b.binary(BinaryOp::Divide, shape, one, x))
        }
        0.5 if is_non_negative(b, x) => Some(b.unary(UnaryOp::Sqrt, shape, x)),
        _ => None,
    }
}

/// A reduce of one array over dimensions of size 1 only -> `reshape(x)`: XLA's `HandleReduce`
/// drops the reducer and its init value, taking the init for the reducer's identity (so a sum
/// keeps a -0 that `0 + -0` would make +0).
fn reduce_of_unit_dims(b: &mut Builder, id: InstrId) -> Option<InstrId> {
    let Op::Reduce { dimensions, .. } = b.op(id) else { return None };
    let dimensions = dimensions.clone();
    if b.comp.instr(id).operands.len() != 2 {
        return None;
    }
    let x = b.operand(id, 0);
    let input = b.comp.instr(x).shape.as_array()?.clone();
    if !dimensions.iter().all(|&d| input.dims.get(d as usize) == Some(&1)) {
        return None;
    }
    let shape = b.shape(id);
    Some(b.push(shape, Op::Reshape, vec![x]))
}

fn log(b: &mut Builder, id: InstrId) -> Option<InstrId> {
    let x = b.operand(id, 0);
    let shape = b.shape(id);
    // ln(exp(A)) => A
    if let Some(a) = b.unary_operand(x, UnaryOp::Exp) {
        return b.comp.instr(a).shape.compatible(&shape).then_some(a);
    }
    // ln(sqrt(A)) => ln(A) * 0.5; ln(rsqrt(A)) => ln(A) * -0.5
    for (root, factor) in [(UnaryOp::Sqrt, 0.5), (UnaryOp::Rsqrt, -0.5)] {
        if let Some(a) = b.unary_operand(x, root) {
            let l = b.unary(UnaryOp::Log, shape.clone(), a);
            let f = b.scalar_like(&shape, factor)?;
            return Some(b.binary(BinaryOp::Multiply, shape, l, f));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::util::testing::check;

    #[test]
    fn a_reduce_over_unit_dimensions_is_a_reshape_and_times_minus_one_a_negate() {
        check(
            super::run,
            r#"
HloModule m
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
ENTRY main {
  x = f32[1,1,16] parameter(0)
  z = f32[] constant(0)
  r = f32[16] reduce(x, z), dimensions={0,1}, to_apply=add
  m = f32[] constant(-1)
  mb = f32[16] broadcast(m), dimensions={}
  ROOT n = f32[16] multiply(mb, r)
}
"#,
            r#"
%add (a: f32[], b: f32[]) -> f32[] {
%a = f32[] parameter(0)
%b = f32[] parameter(1)
ROOT %s = f32[] add(%a, %b)
}
ENTRY %main (x: f32[1,1,16]) -> f32[16] {
%x = f32[1,1,16] parameter(0)
%r.1 = f32[16] reshape(%x)
ROOT %n.1 = f32[16] negate(%r.1)
}
"#,
        );
    }

    #[test]
    fn division_by_a_constant_multiplies_by_its_reciprocal() {
        check(
            super::run,
            r#"
HloModule m
ENTRY main {
  x = f32[4] parameter(0)
  c = f32[] constant(3)
  b = f32[4] broadcast(c), dimensions={}
  ROOT d = f32[4] divide(x, b)
}
"#,
            r#"
ENTRY %main (x: f32[4]) -> f32[4] {
%x = f32[4] parameter(0)
%c = f32[] constant(3)
%d.1 = f32[] constant(1)
%d.2 = f32[] divide(%d.1, %c)
%d.3 = f32[4] broadcast(%d.2), dimensions={}
ROOT %d.4 = f32[4] multiply(%x, %d.3)
}
"#,
        );
    }

    #[test]
    fn division_by_an_array_constant_builds_its_reciprocal_once() {
        // `1 / c` is a divide of a broadcast constant, which this rule must leave to constant
        // folding (it rewrote it again and again, past the pipeline's fixed point).
        check(
            super::run,
            r#"
HloModule m
ENTRY main {
  x = f32[1,1] parameter(0)
  c = f32[1,1] constant({ {2} })
  ROOT d = f32[1,1] divide(x, c)
}
"#,
            r#"
ENTRY %main (x: f32[1,1]) -> f32[1,1] {
%x = f32[1,1] parameter(0)
%c = f32[1,1] constant({ {2} })
%d.1 = f32[] constant(1)
%d.2 = f32[1,1] broadcast(%d.1), dimensions={}
%d.3 = f32[1,1] divide(%d.2, %c)
ROOT %d.4 = f32[1,1] multiply(%x, %d.3)
}
"#,
        );
    }

    #[test]
    fn division_by_a_square_root_becomes_rsqrt() {
        check(
            super::run,
            r#"
HloModule m
ENTRY main {
  x = f32[4] parameter(0)
  y = f32[4] parameter(1)
  s = f32[4] sqrt(y)
  ROOT d = f32[4] divide(x, s)
}
"#,
            r#"
ENTRY %main (x: f32[4], y: f32[4]) -> f32[4] {
%x = f32[4] parameter(0)
%y = f32[4] parameter(1)
%d.1 = f32[4] rsqrt(%y)
ROOT %d.2 = f32[4] multiply(%x, %d.1)
}
"#,
        );
    }

    #[test]
    fn exact_small_constants_in_every_float_type() {
        use hlo_ir::DType;
        for dtype in [DType::F16, DType::BF16, DType::F32, DType::F64] {
            for v in [0.0, 1.0, 0.5, -0.5] {
                let lit = super::scalar_literal(dtype, v).unwrap();
                assert_eq!(crate::util::uniform_value(&lit), Some(v), "{dtype} {v}");
            }
        }
        assert_eq!(super::f16_bits(1.0), Some(0x3c00));
        assert_eq!(super::f16_bits(0.1), None);
    }
}
