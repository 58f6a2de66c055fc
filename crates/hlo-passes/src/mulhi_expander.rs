//! `mulhi-expander`: `mulhi(a, b)`, the high half of the double-width product, from products
//! that fit the operands' own width, so that no wider type is needed (64-bit operands have
//! none): with `h` half the width and `lo`/`hi` the halves of each unsigned operand,
//! - `ll = lo(a) lo(b)`, `lh = lo(a) hi(b)`, `hl = hi(a) lo(b)`, `hh = hi(a) hi(b)`;
//! - `mid = (ll >> h) + lo(lh) + lo(hl)` (below three halves, no overflow);
//! - `mulhi = hh + (lh >> h) + (hl >> h) + (mid >> h)`.
//!
//! A signed product is the unsigned one of the same bits, less `b` where `a < 0` and less `a`
//! where `b < 0` (modulo the width), as `mulhi` is defined on two's complement values.
//!
//! Pre-condition: none. Post-condition: no `mulhi` on 8- to 64-bit integers remains (sub-byte
//! types stay, and the device refuses them by name).

use crate::util::{int_scalar, unsigned_of, Splice};
use crate::PassError;
use hlo_ir::{BinaryOp, CompareDirection, InstrId, Module, Op};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("mulhi-expander").entered();
    crate::util::expand_elementwise(
        module,
        |instr| {
            matches!(instr.op, Op::Binary(BinaryOp::Mulhi))
                && instr.shape.as_array().is_some_and(|a| unsigned_of(a.dtype).is_some())
        },
        |s, dtype, operands| expand(s, dtype, operands[0], operands[1]),
    )
}

fn expand(s: &mut Splice<'_>, dtype: hlo_ir::DType, a: InstrId, b: InstrId) -> InstrId {
    let unsigned = unsigned_of(dtype).expect("an integer type");
    let half = dtype.bit_width() as i128 / 2;
    let int = |s: &mut Splice<'_>, v: i128| s.splat(unsigned, int_scalar(unsigned, v).expect("an integer type"));
    let (ua, ub) =
        if unsigned == dtype { (a, b) } else { (s.bitcast_convert(a, unsigned), s.bitcast_convert(b, unsigned)) };
    let mask = int(s, (1i128 << half) - 1);
    let shift = int(s, half);
    let lo = |s: &mut Splice<'_>, x| s.binary(BinaryOp::And, x, mask);
    let hi = |s: &mut Splice<'_>, x| s.binary(BinaryOp::ShiftRightLogical, x, shift);
    let (a_lo, a_hi, b_lo, b_hi) = (lo(s, ua), hi(s, ua), lo(s, ub), hi(s, ub));
    let ll = s.binary(BinaryOp::Multiply, a_lo, b_lo);
    let lh = s.binary(BinaryOp::Multiply, a_lo, b_hi);
    let hl = s.binary(BinaryOp::Multiply, a_hi, b_lo);
    let hh = s.binary(BinaryOp::Multiply, a_hi, b_hi);
    let ll_hi = hi(s, ll);
    let lh_lo = lo(s, lh);
    let hl_lo = lo(s, hl);
    let mid = s.binary(BinaryOp::Add, ll_hi, lh_lo);
    let mid = s.binary(BinaryOp::Add, mid, hl_lo);
    let lh_hi = hi(s, lh);
    let hl_hi = hi(s, hl);
    let mid_hi = hi(s, mid);
    let res = s.binary(BinaryOp::Add, hh, lh_hi);
    let res = s.binary(BinaryOp::Add, res, hl_hi);
    let res = s.binary(BinaryOp::Add, res, mid_hi);
    if unsigned == dtype {
        return res;
    }
    // Two's complement: subtract `b` where `a < 0` and `a` where `b < 0`.
    let zero_s = s.splat(dtype, int_scalar(dtype, 0).expect("an integer type"));
    let zero = int(s, 0);
    let a_neg = s.compare(CompareDirection::Lt, a, zero_s);
    let b_neg = s.compare(CompareDirection::Lt, b, zero_s);
    let sub_b = s.select(a_neg, ub, zero);
    let sub_a = s.select(b_neg, ua, zero);
    let res = s.binary(BinaryOp::Subtract, res, sub_b);
    let res = s.binary(BinaryOp::Subtract, res, sub_a);
    s.bitcast_convert(res, dtype)
}
