//! Complex `log1p` (`log-plus-one`): `log|1 + z| + i atan2(im, 1 + re)` with the real part kept
//! accurate where `|1 + z|` is near 1, along the lines of the StableHLO complex math expander
//! (which JAX applies before HLO, so JAX's own dumps never hold a complex `log-plus-one`):
//! - `max(|re|, |im|)` above `sqrt(max) / 100`: `log(max) + log1p((min / max)^2) / 2`, which
//!   cannot overflow;
//! - `|1 + re| + |im| < 0.2` (near `z = -1`): `log((1 + re)^2 + im^2) / 2`;
//! - elsewhere `log1p(2 re + re^2 + im^2) / 2`, the sum in double-word arithmetic (Dekker's
//!   exact squares and two-sums), so that it does not cancel where `|1 + z| ~ 1`.

use super::{Lowerer, Val};
use hlo_ir::{BinaryOp, CompareDirection, DType, InstrId, UnaryOp};

impl Lowerer<'_> {
    pub(super) fn log1p(&mut self, a: InstrId, b: InstrId) -> Val {
        let f64_parts = self.array_shape(a).dtype == DType::F64;
        let (large, split) = if f64_parts {
            (f64::MAX.sqrt() / 100.0, 134_217_729.0)
        } else {
            ((f32::MAX as f64).sqrt() / 100.0, 4097.0)
        };
        let one = self.splat(1.0, a);
        let half = self.splat(0.5, a);
        let abs_a = self.unary(UnaryOp::Abs, a);
        let abs_b = self.unary(UnaryOp::Abs, b);
        let max = self.binary(BinaryOp::Maximum, abs_a, abs_b);
        let min = self.binary(BinaryOp::Minimum, abs_a, abs_b);
        // Huge: log(max) + log1p((min/max)^2) / 2.
        let ratio = self.div(min, max);
        let ratio2 = self.mul(ratio, ratio);
        let equal = self.compare(CompareDirection::Eq, min, max);
        let ratio2 = self.select(equal, one, ratio2);
        let log_ratio = self.unary(UnaryOp::Log1p, ratio2);
        let log_ratio = self.mul(log_ratio, half);
        let log_max = self.unary(UnaryOp::Log, max);
        let huge_re = self.add(log_max, log_ratio);
        // Near -1: log((1 + re)^2 + im^2) / 2.
        let ap1 = self.add(a, one);
        let abs_ap1 = self.unary(UnaryOp::Abs, ap1);
        let l1 = self.add(abs_ap1, abs_b);
        let fifth = self.splat(0.2, a);
        let near_minus_one = self.compare(CompareDirection::Lt, l1, fifth);
        let ap1_2 = self.mul(ap1, ap1);
        let b2 = self.mul(b, b);
        let mod2 = self.add(ap1_2, b2);
        let log_mod2 = self.unary(UnaryOp::Log, mod2);
        let near_re = self.mul(log_mod2, half);
        // Elsewhere: log1p(2a + a^2 + b^2) / 2 in double-word arithmetic.
        let (a2, a2_err) = self.exact_square(a, split);
        let (b2, b2_err) = self.exact_square(b, split);
        let two_a = self.add(a, a);
        let (s1, e1) = self.two_sum(two_a, b2);
        let (s2, e2) = self.two_sum(s1, a2);
        let err = self.add(e1, e2);
        let err = self.add(err, a2_err);
        let err = self.add(err, b2_err);
        let sum = self.add(s2, err);
        let log_sum = self.unary(UnaryOp::Log1p, sum);
        let mid_re = self.mul(log_sum, half);
        let large_c = self.splat(large, a);
        let is_huge = self.compare(CompareDirection::Gt, max, large_c);
        let re = self.select(near_minus_one, near_re, mid_re);
        let re = self.select(is_huge, huge_re, re);
        let im = self.binary(BinaryOp::Atan2, b, ap1);
        Val::Pair(re, im)
    }

    /// `x^2` as `(p, e)` with `p + e` exact: Dekker's split of `x` into halves (`split` is
    /// `2^ceil(digits/2) + 1`).
    fn exact_square(&mut self, x: InstrId, split: f64) -> (InstrId, InstrId) {
        let c = self.splat(split, x);
        let t = self.mul(c, x);
        let t_x = self.sub(t, x);
        let hi = self.sub(t, t_x);
        let lo = self.sub(x, hi);
        let p = self.mul(x, x);
        let hh = self.mul(hi, hi);
        let hh_p = self.sub(hh, p);
        let hl = self.mul(hi, lo);
        let e = self.add(hh_p, hl);
        let e = self.add(e, hl);
        let ll = self.mul(lo, lo);
        let e = self.add(e, ll);
        (p, e)
    }

    /// Knuth's two-sum: `(s, e)` with `s = fl(x + y)` and `s + e = x + y` exactly.
    fn two_sum(&mut self, x: InstrId, y: InstrId) -> (InstrId, InstrId) {
        let s = self.add(x, y);
        let yy = self.sub(s, x);
        let xx = self.sub(s, yy);
        let dx = self.sub(x, xx);
        let dy = self.sub(y, yy);
        let e = self.add(dx, dy);
        (s, e)
    }
}
