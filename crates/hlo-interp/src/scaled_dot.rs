//! `scaled-dot(lhs, rhs, lhs_scale, rhs_scale)` (block-scaled matrix products, MX and NVFP4
//! formats) defined by its expansion, XLA's generic `ScaledDotRewriter`: each operand is
//! dequantized by multiplying it with its scale repeated over blocks, then the two are dotted.
//! The interpreter evaluates this computation, and `hlo-passes`' `scaled-dot-expander` splices
//! the same one into the module, so both backends share one definition.
//!
//! - A scale has the operand's rank and each of its dimensions divides the operand's: scale
//!   element `s[i..]` multiplies the block of operand elements `x[i * b ..]` (`b` the ratio per
//!   dimension). A scalar scale leaves its operand as it is, as XLA's rewriter does.
//! - Types as XLA widens them: an operand and its scale (then the two dequantized operands) are
//!   converted to a common type: bf16 when both are narrower than 16 bits, the type itself when
//!   equal, f32 for different types of one width, else the wider type; the dot computes in the
//!   common type of that and the result's, and is converted to the result type.
//! - The six-operand form (NVFP4 global scales) is refused by name.

use hlo_ir::builder::ComputationBuilder;
use hlo_ir::{ArrayShape, BinaryOp, Computation, DType, DotDims, InstrId, Op, Precision, Shape};

/// The computation `(lhs, rhs, lhs_scale, rhs_scale) -> result` that defines one `scaled-dot`.
pub fn scaled_dot_expansion(
    dims: &DotDims,
    precision: &[Precision],
    operands: &[&ArrayShape],
    out: &ArrayShape,
) -> Result<Computation, String> {
    let [lhs, rhs, lhs_scale, rhs_scale] = operands else {
        return Err(format!(
            "{} operands (only lhs, rhs, lhs_scale, rhs_scale; the global scales of NVFP4 are not supported)",
            operands.len()
        ));
    };
    let mut b = ComputationBuilder::new(format!("scaled_dot_{}", out.dtype.name()));
    let params: Vec<InstrId> = [lhs, rhs, lhs_scale, rhs_scale]
        .iter()
        .map(|s| b.param(Shape::Array(ArrayShape::new(s.dtype, s.dims.clone()))))
        .collect();
    let l = dequantize(&mut b, params[0], params[2], "lhs")?;
    let r = dequantize(&mut b, params[1], params[3], "rhs")?;
    let (l, r) = upscale_both(&mut b, l, r);
    let common = dtype(&b, l);
    let dot_type = target_type(common, out.dtype);
    let dot_shape = Shape::Array(ArrayShape::new(dot_type, out.dims.clone()));
    let dot = b.instr_with_shape(
        dot_shape,
        Op::Dot { dims: dims.clone(), precision: precision.to_vec(), algorithm: None },
        &[l, r],
    );
    let res = convert(&mut b, dot, out.dtype);
    b.finish_with_root(res).map_err(|e| format!("building the expansion: {e}"))
}

/// The type both of two values are converted to (XLA's `GetTargetType`).
fn target_type(a: DType, b: DType) -> DType {
    if a.bit_width() < 16 && b.bit_width() < 16 {
        DType::BF16
    } else if a == b {
        a
    } else if a.bit_width() == b.bit_width() {
        DType::F32
    } else if a.bit_width() > b.bit_width() {
        a
    } else {
        b
    }
}

fn dtype(b: &ComputationBuilder, x: InstrId) -> DType {
    b.array_shape(x).map_or(DType::F32, |s| s.dtype)
}

fn convert(b: &mut ComputationBuilder, x: InstrId, to: DType) -> InstrId {
    if dtype(b, x) == to {
        return x;
    }
    b.convert(x, to)
}

fn upscale_both(b: &mut ComputationBuilder, x: InstrId, y: InstrId) -> (InstrId, InstrId) {
    let t = target_type(dtype(b, x), dtype(b, y));
    (convert(b, x, t), convert(b, y, t))
}

/// `x * scale` with each scale element repeated over its block of `x`.
fn dequantize(b: &mut ComputationBuilder, x: InstrId, scale: InstrId, side: &str) -> Result<InstrId, String> {
    let scale_dims = b.array_shape(scale).map(|s| s.dims.clone()).unwrap_or_default();
    if scale_dims.is_empty() {
        return Ok(x);
    }
    let x_dims = b.array_shape(x).map(|s| s.dims.clone()).unwrap_or_default();
    if x_dims.len() != scale_dims.len() {
        return Err(format!("{side}: the scale has rank {} and the operand {}", scale_dims.len(), x_dims.len()));
    }
    let (x, scale) = upscale_both(b, x, scale);
    // Scale dimension i becomes dimension `kept[i]` of [s0, (b0), s1, (b1), ...], where a block
    // dimension follows each scale dimension smaller than the operand's.
    let mut kept = Vec::new();
    let mut spread = Vec::new();
    for (&n, &s) in x_dims.iter().zip(&scale_dims) {
        if n != s && (s <= 0 || n % s != 0) {
            return Err(format!("{side}: scale dimension {s} does not divide operand dimension {n}"));
        }
        kept.push(spread.len() as i64);
        spread.push(s);
        if n != s {
            spread.push(n / s);
        }
    }
    let spread = b.broadcast(scale, &kept, &spread);
    let blocks = b.reshape(spread, &x_dims);
    Ok(b.binary(BinaryOp::Multiply, x, blocks))
}
