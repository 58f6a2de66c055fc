//! `stochastic-convert-decomposer`: `stochastic-convert(x, random)` from a float type to a
//! signed integer type as the plain ops of XLA's `StochasticConvertDecomposer`: the magnitude's
//! integer part rounds up where the unsigned `random` is below its fraction scaled to the random
//! type's range, the sign is put back, and values at or past the integer type's limits (as
//! rounded to the float type) saturate. An f16 fraction is scaled in f32, whose range holds
//! 2^16. Conversions to float types have no decomposition in XLA either; they stay and are
//! refused by name.
//!
//! Pre-condition: none. Post-condition: no `stochastic-convert` to a signed integer remains.

use crate::util::{int_scalar, Splice};
use crate::PassError;
use hlo_ir::{BinaryOp, CompareDirection, DType, InstrId, Module, Op, UnaryOp};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("stochastic-convert-decomposer").entered();
    crate::util::expand_elementwise(
        module,
        |instr| {
            matches!(instr.op, Op::StochasticConvert)
                && instr.shape.as_array().is_some_and(|a| a.dtype.is_signed_integer() && a.dtype.bit_width() >= 8)
        },
        |s, to, operands| expand(s, to, operands[0], operands[1]),
    )
}

fn expand(s: &mut Splice<'_>, to: DType, x: InstrId, random: InstrId) -> InstrId {
    let from = s.dtype(x);
    let random_type = s.dtype(random);
    let sign = s.unary(UnaryOp::Sign, x);
    let zero = s.splat_float(from, 0.0);
    let negative = s.compare(CompareDirection::Lt, sign, zero);
    let abs = s.unary(UnaryOp::Abs, x);
    let truncated = s.unary(UnaryOp::Floor, abs);
    let mut fraction = s.binary(BinaryOp::Subtract, abs, truncated);
    if from == DType::F16 {
        fraction = s.convert(fraction, DType::F32);
    }
    let frac_type = s.dtype(fraction);
    let scale = s.splat_float(frac_type, 2f64.powi(random_type.bit_width() as i32));
    let fixed = s.binary(BinaryOp::Multiply, fraction, scale);
    let fixed = s.convert(fixed, random_type);
    let round_up = s.compare(CompareDirection::Lt, random, fixed);
    let int = s.convert(truncated, to);
    let one = s.splat(to, int_scalar(to, 1).expect("an integer type"));
    let plus_one = s.binary(BinaryOp::Add, int, one);
    let int = s.select(round_up, plus_one, int);
    let negated = s.unary(UnaryOp::Negate, int);
    let res = s.select(negative, negated, int);
    let bits = to.bit_width();
    let (min, max) = (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1);
    let min_float = s.splat_float(from, min as f64);
    let is_min = s.compare(CompareDirection::Le, x, min_float);
    let min_int = s.splat(to, int_scalar(to, min).expect("an integer type"));
    let res = s.select(is_min, min_int, res);
    let max_float = s.splat_float(from, max as f64);
    let is_max = s.compare(CompareDirection::Ge, x, max_float);
    let max_int = s.splat(to, int_scalar(to, max).expect("an integer type"));
    s.select(is_max, max_int, res)
}
