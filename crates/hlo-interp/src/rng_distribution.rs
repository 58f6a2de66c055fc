//! `rng` (XLA's RngUniform and RngNormal) defined by its expansion, as XLA's `RngExpander`
//! defines it: a Philox `rng-bit-generator` keyed by a fixed key and counting from a hidden
//! 128-bit state that `rng-get-and-update-state` hands out and advances, then the conversion of
//! the bits to the distribution. The interpreter evaluates this computation for each `rng`, and
//! `hlo-passes`' `rng-expander` splices the same computation into the module, so both backends
//! share one definition and give the same bits.
//!
//! - The state starts at [`RNG_INITIAL_STATE`] for every execution of a module and advances by
//!   the number of 32-bit words each `rng` draws (XLA's delta), so a module gives the same
//!   numbers on every run, and every `rng` (each iteration of a loop included) draws fresh ones.
//!   XLA's state is process-global instead: its numbers differ from ours and from run to run.
//! - Uniform floats take the top `m` bits of a word (`m` the result type's mantissa width, at
//!   most f32's 23 or f64's 52), scale them to `[0, 1)` exactly, and map them to `a + u * (b - a)`
//!   in f32 (f64 for f64); a value that rounds to `b` or beyond (or is NaN) becomes `a`, so every
//!   value lies in `[a, b)` when `a < b`.
//! - Uniform integers are `a + bits % (b - a)` in 32 bits (64 for 64-bit types), wrapping.
//! - Normal floats are XLA's Box-Muller transform of pairs of uniform f32 (f64) values in
//!   `[0, 1)`: `sqrt(-2 log max(u0, 1e-7)) * (sin, cos)(2 pi u1)`, then `mean + sigma * z`.
//! - `b <= a` (and `sigma < 0`) give values XLA calls implementation-defined.

use hlo_ir::builder::ComputationBuilder;
use hlo_ir::{
    ArrayData, ArrayShape, BinaryOp, CompareDirection, Computation, DType, InstrId, Literal, Op, RngAlgorithm,
    RngDistribution, Shape, UnaryOp,
};

/// The Philox key of every `rng` (XLA mixes a per-module and a process-global random value).
pub const RNG_KEY: u64 = 0x9E37_79B9_7F4A_7C15;

/// The hidden state at the start of every execution.
pub const RNG_INITIAL_STATE: u128 = 0;

/// The computation `(a: T[], b: T[], state: u64[2]) -> T[dims]` that defines one `rng`, and the
/// amount its `rng-get-and-update-state` advances the state by.
#[derive(Clone, Debug)]
pub struct RngExpansion {
    pub comp: Computation,
    pub delta: i64,
}

/// The expansion of `rng` with `distribution` and result `out`; an error names what is not
/// supported (an element type XLA's distributions do not define).
pub fn rng_expansion(distribution: RngDistribution, out: &ArrayShape) -> Result<RngExpansion, String> {
    let t = out.dtype;
    let name = format!(
        "rng_{}_{}_{}",
        match distribution {
            RngDistribution::Uniform => "uniform",
            RngDistribution::Normal => "normal",
        },
        t.name(),
        out.dims.iter().map(i64::to_string).collect::<Vec<_>>().join("x")
    );
    let mut b = ComputationBuilder::new(name);
    let pa = b.param(Shape::scalar(t));
    let pb = b.param(Shape::scalar(t));
    let state = b.param(Shape::Array(ArrayShape::new(DType::U64, vec![2])));
    let n = out.num_elements() as i64;
    let (root, delta) = match distribution {
        RngDistribution::Uniform if t.is_float() => {
            let c = compute_float(t).ok_or_else(|| format!("a uniform distribution of {t}"))?;
            let m = mantissa_bits(t).min(mantissa_bits(c));
            let (bits, delta) = draw(&mut b, state, c, &out.dims);
            let u = unit_interval(&mut b, bits, c, m, &out.dims);
            let (ac, bc) = (convert(&mut b, pa, c), convert(&mut b, pb, c));
            let span = b.binary(BinaryOp::Subtract, bc, ac);
            let span = b.broadcast(span, &[], &out.dims);
            let ac = b.broadcast(ac, &[], &out.dims);
            let scaled = b.binary(BinaryOp::Multiply, u, span);
            let r = b.binary(BinaryOp::Add, scaled, ac);
            let r = convert(&mut b, r, t);
            let (a_t, b_t) = (b.broadcast(pa, &[], &out.dims), b.broadcast(pb, &[], &out.dims));
            let inside = b.compare(CompareDirection::Lt, r, b_t);
            (b.select(inside, r, a_t), delta)
        }
        RngDistribution::Uniform if t.is_integer() => {
            let c = match (t.bit_width() == 64, t.is_signed_integer()) {
                (true, _) => t,
                (false, true) => DType::S32,
                (false, false) => DType::U32,
            };
            let unsigned = if c.bit_width() == 64 { DType::U64 } else { DType::U32 };
            let (bits, delta) = draw(&mut b, state, c, &out.dims);
            let (ac, bc) = (convert(&mut b, pa, c), convert(&mut b, pb, c));
            let (au, bu) = (bitcast(&mut b, ac, unsigned), bitcast(&mut b, bc, unsigned));
            let range = b.binary(BinaryOp::Subtract, bu, au);
            let range = b.broadcast(range, &[], &out.dims);
            let dist = b.binary(BinaryOp::Remainder, bits, range);
            let dist = bitcast(&mut b, dist, c);
            let ac = b.broadcast(ac, &[], &out.dims);
            let r = b.binary(BinaryOp::Add, ac, dist);
            (convert(&mut b, r, t), delta)
        }
        RngDistribution::Normal if t.is_float() => {
            let c = compute_float(t).ok_or_else(|| format!("a normal distribution of {t}"))?;
            let half = (n + 1) / 2;
            let (bits, delta) = draw(&mut b, state, c, &[2, half]);
            let u = unit_interval(&mut b, bits, c, mantissa_bits(c), &[2, half]);
            let x0 = b.slice(u, &[(0, 1, 1), (0, half, 1)]);
            let x0 = b.reshape(x0, &[half]);
            let x1 = b.slice(u, &[(1, 2, 1), (0, half, 1)]);
            let x1 = b.reshape(x1, &[half]);
            let tiny = splat_float(&mut b, c, 1.0e-7, &[half]);
            let u1 = b.binary(BinaryOp::Maximum, x0, tiny);
            let two_pi = splat_float(&mut b, c, 2.0 * std::f64::consts::PI, &[half]);
            let v = b.binary(BinaryOp::Multiply, two_pi, x1);
            let log = b.unary(UnaryOp::Log, u1);
            let minus_two = splat_float(&mut b, c, -2.0, &[half]);
            let t2 = b.binary(BinaryOp::Multiply, minus_two, log);
            let radius = b.unary(UnaryOp::Sqrt, t2);
            let sin = b.unary(UnaryOp::Sin, v);
            let cos = b.unary(UnaryOp::Cos, v);
            let z0 = b.binary(BinaryOp::Multiply, sin, radius);
            let z1 = b.binary(BinaryOp::Multiply, cos, radius);
            let mut z = b.instr(Op::Concatenate { dimension: 0 }, &[z0, z1]);
            if 2 * half != n {
                z = b.slice(z, &[(0, n, 1)]);
            }
            let z = b.reshape(z, &out.dims);
            let (mean, sigma) = (convert(&mut b, pa, c), convert(&mut b, pb, c));
            let mean = b.broadcast(mean, &[], &out.dims);
            let sigma = b.broadcast(sigma, &[], &out.dims);
            let scaled = b.binary(BinaryOp::Multiply, sigma, z);
            let r = b.binary(BinaryOp::Add, scaled, mean);
            (convert(&mut b, r, t), delta)
        }
        RngDistribution::Uniform => return Err(format!("a uniform distribution of {t}")),
        RngDistribution::Normal => return Err(format!("a normal distribution of {t}")),
    };
    let comp = b.finish_with_root(root).map_err(|e| format!("building the expansion: {e}"))?;
    Ok(RngExpansion { comp, delta })
}

/// The type a float distribution is computed in: f64 for f64, f32 for the others (as XLA
/// computes f16 and bf16 in f32); `None` for a type with no mantissa to fill.
fn compute_float(t: DType) -> Option<DType> {
    match t {
        DType::F64 => Some(DType::F64),
        DType::F8E8M0FNU => None,
        t if t.is_float() => Some(DType::F32),
        _ => None,
    }
}

/// Explicit mantissa bits of a float type.
fn mantissa_bits(t: DType) -> u32 {
    match t {
        DType::F64 => 52,
        DType::F32 => 23,
        DType::F16 => 10,
        DType::BF16 => 7,
        t => hlo_ir::print::MiniFloat::of(t).map_or(23, |f| f.mantissa_bits),
    }
}

/// Philox bits for `dims` elements of `c`'s width (u32 or u64), keyed by [`RNG_KEY`] and counting
/// from `state`; and the state's advance: the number of 32-bit words drawn.
fn draw(b: &mut ComputationBuilder, state: InstrId, c: DType, dims: &[i64]) -> (InstrId, i64) {
    let unsigned = if c.bit_width() == 64 { DType::U64 } else { DType::U32 };
    let key = Literal::array(ArrayShape::new(DType::U64, vec![1]), ArrayData::U64(vec![RNG_KEY]));
    let key = b.constant(key);
    let full = b.instr(Op::Concatenate { dimension: 0 }, &[key, state]);
    let state_shape = Shape::Array(ArrayShape::new(DType::U64, vec![3]));
    let bits_shape = Shape::Array(ArrayShape::new(unsigned, dims.to_vec()));
    let gen = b.instr_with_shape(
        Shape::Tuple(vec![state_shape, bits_shape]),
        Op::RngBitGenerator { algorithm: RngAlgorithm::Philox },
        &[full],
    );
    let bits = b.get_tuple_element(gen, 1);
    let n: i64 = dims.iter().product();
    (bits, n * i64::from(unsigned.bit_width() / 32))
}

/// The top `m` bits of each word as a float of type `c` in `[0, 1)`, exactly.
fn unit_interval(b: &mut ComputationBuilder, bits: InstrId, c: DType, m: u32, dims: &[i64]) -> InstrId {
    let unsigned = if c.bit_width() == 64 { DType::U64 } else { DType::U32 };
    let shift = u64::from(unsigned.bit_width() - m);
    let data = if unsigned == DType::U64 { ArrayData::U64(vec![shift]) } else { ArrayData::U32(vec![shift as u32]) };
    let shift = b.constant(Literal::array(ArrayShape::scalar(unsigned), data));
    let shift = b.broadcast(shift, &[], dims);
    let top = b.binary(BinaryOp::ShiftRightLogical, bits, shift);
    let whole = b.convert(top, c);
    let scale = splat_float(b, c, (-f64::from(m)).exp2(), dims);
    b.binary(BinaryOp::Multiply, whole, scale)
}

/// The float `v` (exact in `c`, or rounded once) broadcast to `dims`.
fn splat_float(b: &mut ComputationBuilder, c: DType, v: f64, dims: &[i64]) -> InstrId {
    let data = if c == DType::F64 { ArrayData::F64(vec![v]) } else { ArrayData::F32(vec![v as f32]) };
    let s = b.constant(Literal::array(ArrayShape::scalar(c), data));
    b.broadcast(s, &[], dims)
}

/// `x` converted to `to` (itself when it already has that type).
fn convert(b: &mut ComputationBuilder, x: InstrId, to: DType) -> InstrId {
    if b.array_shape(x).is_some_and(|s| s.dtype == to) {
        return x;
    }
    b.convert(x, to)
}

/// `x` reinterpreted as `to` of the same width (itself when it already has that type).
fn bitcast(b: &mut ComputationBuilder, x: InstrId, to: DType) -> InstrId {
    let Some(shape) = b.array_shape(x).cloned() else { return x };
    if shape.dtype == to {
        return x;
    }
    b.instr_with_shape(Shape::Array(ArrayShape::new(to, shape.dims)), Op::BitcastConvert, &[x])
}
