//! `chlo.lgamma` and `chlo.digamma`, which HLO has no opcode for, as the elementwise ops of
//! XLA's CHLO legalization (`materializeLgamma`, `materializeDigamma`): Lanczos' approximation
//! (g = 7, 9 terms) of `lgamma(z + 1)` and its derivative for `x >= 1/2` (`z = x - 1`), and
//! Euler's reflection for `x < 1/2` (`z = -x`). JAX's text form keeps these ops (its artifacts
//! carry the decomposition already), so the values are those JAX computes for the same program.
//!
//! Floats narrower than f32 are computed in f32 and rounded back, as the legalization upcasts them; the
//! constants are rounded to the computing type, as `getConstantLike` makes them.

use hlo_ir::{ArrayData, ArrayShape, BinaryOp, CompareDirection, DType, InstrId, Literal, Op, Shape, UnaryOp};
use std::f64::consts::PI;

/// Lanczos' `g`.
const LANCZOS_GAMMA: f64 = 7.0;
/// The constant term of Lanczos' series `a(z)`.
#[allow(clippy::excessive_precision)]
const BASE_LANCZOS_COEFF: f64 = 0.999_999_999_999_809_932_276_847_004_734_78;
/// The coefficients `c_k` of `a(z) = base + sum(c_k / (z + k))`, `k = 1..8`.
#[allow(clippy::excessive_precision)]
const LANCZOS_COEFFICIENTS: [f64; 8] = [
    676.520_368_121_885_098_567_009_190_444_019,
    -1_259.139_216_722_402_870_471_560_787_552_83,
    771.323_428_777_653_078_848_652_825_889_4,
    -176.615_029_162_140_599_065_845_513_54,
    12.507_343_278_686_904_814_458_936_853,
    -0.138_571_095_265_720_116_895_547_07,
    9.984_369_578_019_570_859_563e-6,
    1.505_632_735_149_311_558_34e-7,
];

/// Which function.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gamma {
    Lgamma,
    Digamma,
}

/// Appends an instruction with its shape; the lowering's `emit`, which checks the shape.
pub(crate) type Emit<'e, E> = dyn FnMut(Op, &[InstrId], Shape) -> Result<InstrId, E> + 'e;

/// Emits `f(x)` for the float array `x` of `shape`; the result has `x`'s shape.
pub(crate) fn lower<E>(f: Gamma, emit: &mut Emit<'_, E>, x: InstrId, shape: &ArrayShape) -> Result<InstrId, E> {
    // Narrower floats are computed in f32, as the legalization's upcast does.
    let wide = shape.dtype.bit_width() < 32;
    let compute = if wide { shape.with_dtype(DType::F32) } else { shape.clone() };
    let mut b = Builder { emit, shape: compute };
    let x = if wide { b.op(Op::Convert, &[x])? } else { x };
    let y = match f {
        Gamma::Lgamma => b.lgamma(x)?,
        Gamma::Digamma => b.digamma(x)?,
    };
    if wide {
        return (b.emit)(Op::Convert, &[y], Shape::Array(shape.clone()));
    }
    Ok(y)
}

/// Elementwise ops on arrays of one float shape.
struct Builder<'b, 'e, E> {
    emit: &'b mut Emit<'e, E>,
    shape: ArrayShape,
}

impl<E> Builder<'_, '_, E> {
    fn op(&mut self, op: Op, operands: &[InstrId]) -> Result<InstrId, E> {
        let shape = Shape::Array(self.shape.clone());
        (self.emit)(op, operands, shape)
    }

    fn pred(&mut self, op: Op, operands: &[InstrId]) -> Result<InstrId, E> {
        let shape = Shape::Array(self.shape.with_dtype(DType::Pred));
        (self.emit)(op, operands, shape)
    }

    /// `value` rounded to the computing type, broadcast to the shape.
    fn constant(&mut self, value: f64) -> Result<InstrId, E> {
        let dtype = self.shape.dtype;
        let data = match dtype {
            DType::F64 => ArrayData::F64(vec![value]),
            _ => ArrayData::F32(vec![value as f32]),
        };
        let scalar = ArrayShape::scalar(dtype);
        let c = (self.emit)(Op::Constant(Box::new(Literal::array(scalar.clone(), data))), &[], Shape::Array(scalar))?;
        self.op(Op::Broadcast { dimensions: vec![] }, &[c])
    }

    fn unary(&mut self, u: UnaryOp, x: InstrId) -> Result<InstrId, E> {
        self.op(Op::Unary(u), &[x])
    }

    fn binary(&mut self, o: BinaryOp, a: InstrId, b: InstrId) -> Result<InstrId, E> {
        self.op(Op::Binary(o), &[a, b])
    }

    fn add(&mut self, a: InstrId, b: InstrId) -> Result<InstrId, E> {
        self.binary(BinaryOp::Add, a, b)
    }

    fn sub(&mut self, a: InstrId, b: InstrId) -> Result<InstrId, E> {
        self.binary(BinaryOp::Subtract, a, b)
    }

    fn mul(&mut self, a: InstrId, b: InstrId) -> Result<InstrId, E> {
        self.binary(BinaryOp::Multiply, a, b)
    }

    fn div(&mut self, a: InstrId, b: InstrId) -> Result<InstrId, E> {
        self.binary(BinaryOp::Divide, a, b)
    }

    fn compare(&mut self, direction: CompareDirection, a: InstrId, b: InstrId) -> Result<InstrId, E> {
        self.pred(Op::Compare { direction, compare_type: None }, &[a, b])
    }

    fn select(&mut self, p: InstrId, t: InstrId, f: InstrId) -> Result<InstrId, E> {
        self.op(Op::Select, &[p, t, f])
    }

    /// `(x < 1/2, z)` with `z = -x` where reflecting, else `x - 1`.
    fn reflect(&mut self, x: InstrId) -> Result<(InstrId, InstrId), E> {
        let half = self.constant(0.5)?;
        let reflect = self.compare(CompareDirection::Lt, x, half)?;
        let neg_x = self.unary(UnaryOp::Negate, x)?;
        let one = self.constant(1.0)?;
        let x_sub_one = self.sub(x, one)?;
        let z = self.select(reflect, neg_x, x_sub_one)?;
        Ok((reflect, z))
    }

    /// `(t, log t)` with `t = z + g + 1/2` and `log t = log(g + 1/2) + log1p(z / (g + 1/2))`
    /// (the legalization's guard against a less precise `log`).
    fn log_t(&mut self, z: InstrId) -> Result<(InstrId, InstrId), E> {
        let lanczos_plus_half = self.constant(LANCZOS_GAMMA + 0.5)?;
        let t = self.add(lanczos_plus_half, z)?;
        let log_term = self.constant((LANCZOS_GAMMA + 0.5).ln())?;
        let ratio = self.div(z, lanczos_plus_half)?;
        let log1p_term = self.unary(UnaryOp::Log1p, ratio)?;
        let log_t = self.add(log_term, log1p_term)?;
        Ok((t, log_t))
    }

    fn lgamma(&mut self, x: InstrId) -> Result<InstrId, E> {
        let (reflect, z) = self.reflect(x)?;
        let mut a = self.constant(BASE_LANCZOS_COEFF)?;
        for (i, &c) in LANCZOS_COEFFICIENTS.iter().enumerate() {
            let coeff = self.constant(c)?;
            let index = self.constant((i + 1) as f64)?;
            let zk = self.add(z, index)?;
            let quotient = self.div(coeff, zk)?;
            a = self.add(a, quotient)?;
        }
        let (t, log_t) = self.log_t(z)?;
        // r = (z + 1/2) log t - t, computed as (z + 1/2 - t / log t) log t so as not to overflow.
        let t_div_log_t = self.div(t, log_t)?;
        let half = self.constant(0.5)?;
        let z_half = self.add(z, half)?;
        let sum = self.sub(z_half, t_div_log_t)?;
        let r = self.mul(sum, log_t)?;
        let log_a = self.unary(UnaryOp::Log, a)?;
        let log_sqrt_2pi = self.constant((2f64.ln() + PI.ln()) / 2.0)?;
        let lgamma = self.add(log_sqrt_2pi, r)?;
        let lgamma = self.add(lgamma, log_a)?;

        // Reflection: lgamma(x) = log(pi) - log|sin(pi frac|x|)| - lgamma(1 - x), with the
        // fraction folded to at most 1/2 (sin(pi f) is symmetric about 1/2) for precision.
        let abs = self.unary(UnaryOp::Abs, x)?;
        let floor = self.unary(UnaryOp::Floor, abs)?;
        let abs_frac = self.sub(abs, floor)?;
        let fold = self.compare(CompareDirection::Lt, half, abs_frac)?;
        let one = self.constant(1.0)?;
        let folded = self.sub(one, abs_frac)?;
        let abs_frac = self.select(fold, folded, abs_frac)?;
        let pi = self.constant(PI)?;
        let angle = self.mul(pi, abs_frac)?;
        let sin = self.unary(UnaryOp::Sin, angle)?;
        let denom = self.unary(UnaryOp::Log, sin)?;
        let log_pi = self.constant(PI.ln())?;
        let reflection = self.sub(log_pi, denom)?;
        let reflection = self.sub(reflection, lgamma)?;
        // An infinite log|sin| wins (at the poles), rather than making -inf - inf a NaN.
        let finite = self.pred(Op::Unary(UnaryOp::IsFinite), &[denom])?;
        let neg_denom = self.unary(UnaryOp::Negate, denom)?;
        let reflection = self.select(finite, reflection, neg_denom)?;
        let lgamma = self.select(reflect, reflection, lgamma)?;

        // lgamma(+-inf) = +inf.
        let inf = self.constant(f64::INFINITY)?;
        let is_inf = self.compare(CompareDirection::Eq, abs, inf)?;
        self.select(is_inf, inf, lgamma)
    }

    fn digamma(&mut self, x: InstrId) -> Result<InstrId, E> {
        let (reflect, z) = self.reflect(x)?;
        let zero = self.constant(0.0)?;
        let mut a = self.constant(BASE_LANCZOS_COEFF)?;
        let mut a_prime = zero;
        for (i, &c) in LANCZOS_COEFFICIENTS.iter().enumerate() {
            let coeff = self.constant(c)?;
            let index = self.constant((i + 1) as f64)?;
            let zk = self.add(z, index)?;
            let zk2 = self.mul(zk, zk)?;
            let term = self.div(coeff, zk2)?;
            a_prime = self.sub(a_prime, term)?;
            let quotient = self.div(coeff, zk)?;
            a = self.add(a, quotient)?;
        }
        let (t, log_t) = self.log_t(z)?;
        // digamma(z + 1) = log t + a'(z) / a(z) - g / t.
        let ratio = self.div(a_prime, a)?;
        let g = self.constant(LANCZOS_GAMMA)?;
        let g_div_t = self.div(g, t)?;
        let digamma = self.add(log_t, ratio)?;
        let digamma = self.sub(digamma, g_div_t)?;

        // Reflection: digamma(x) = digamma(1 - x) - pi cot(pi x), with x shifted by whole
        // numbers into [-1/2, 1/2] first so that pi x keeps its precision.
        let half = self.constant(0.5)?;
        let shifted = self.add(x, half)?;
        let floor = self.unary(UnaryOp::Floor, shifted)?;
        let whole = self.unary(UnaryOp::Abs, floor)?;
        let reduced = self.add(x, whole)?;
        let pi = self.constant(PI)?;
        let angle = self.mul(pi, reduced)?;
        let cos = self.unary(UnaryOp::Cos, angle)?;
        let sin = self.unary(UnaryOp::Sin, angle)?;
        let pi_cos = self.mul(pi, cos)?;
        let cot = self.div(pi_cos, sin)?;
        let reflection = self.sub(digamma, cot)?;
        let digamma = self.select(reflect, reflection, digamma)?;

        // Poles at zero and the negative integers: NaN.
        let le_zero = self.compare(CompareDirection::Le, x, zero)?;
        let x_floor = self.unary(UnaryOp::Floor, x)?;
        let is_int = self.compare(CompareDirection::Eq, x, x_floor)?;
        let pole = self.pred(Op::Binary(BinaryOp::And), &[le_zero, is_int])?;
        let nan = self.constant(f64::NAN)?;
        self.select(pole, nan, digamma)
    }
}
