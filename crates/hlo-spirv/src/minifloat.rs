//! The 8-bit float formats the device keeps as f32 values (`f8e5m2`, `f8e4m3`, `f8e3m4`,
//! `f8e4m3fn`): their parameters, and the host conversions of their bit patterns (ml_dtypes'
//! conventions, which `.npy` files of these types use).
//!
//! On the device an f8 array is an f32 buffer holding each element's exact value; kernels
//! round every f8 result to the format ([`crate::emit::ops`] `round_minifloat`), as they do
//! for bf16. The formats without infinities (`fn`) turn overflow into NaN, as XLA converts.

use hlo_ir::DType;

/// An 8-bit float format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MiniFloat {
    pub exp_bits: u32,
    pub man_bits: u32,
    pub bias: i32,
    /// No infinities; the all-ones magnitude is NaN (`e4m3fn`). Otherwise IEEE-like.
    pub finite_only: bool,
}

impl MiniFloat {
    pub(crate) fn of(dtype: DType) -> Option<MiniFloat> {
        let (exp_bits, man_bits, bias, finite_only) = match dtype {
            DType::F8E5M2 => (5, 2, 15, false),
            DType::F8E4M3 => (4, 3, 7, false),
            DType::F8E3M4 => (3, 4, 3, false),
            DType::F8E4M3FN => (4, 3, 7, true),
            _ => return None,
        };
        Some(MiniFloat { exp_bits, man_bits, bias, finite_only })
    }

    fn max_exp_code(self) -> u32 {
        (1 << self.exp_bits) - 1
    }

    /// The smallest normal exponent.
    pub(crate) fn min_exp(self) -> i32 {
        1 - self.bias
    }

    /// The largest finite value.
    pub(crate) fn max_finite(self) -> f32 {
        let (exp_code, man) = if self.finite_only {
            (self.max_exp_code(), (1u32 << self.man_bits) - 2)
        } else {
            (self.max_exp_code() - 1, (1u32 << self.man_bits) - 1)
        };
        let frac = 1.0 + man as f64 / (1u64 << self.man_bits) as f64;
        (frac * 2f64.powi(exp_code as i32 - self.bias)) as f32
    }

    /// The value of bit pattern `code`.
    pub(crate) fn decode(self, code: u8) -> f32 {
        let code = code as u32;
        let sign_shift = self.exp_bits + self.man_bits;
        let negative = (code >> sign_shift) & 1 == 1;
        let exp = (code >> self.man_bits) & self.max_exp_code();
        let man = code & ((1 << self.man_bits) - 1);
        let magnitude = code & ((1 << sign_shift) - 1);
        let v = if self.finite_only && magnitude == (1 << sign_shift) - 1 {
            f64::NAN
        } else if !self.finite_only && exp == self.max_exp_code() {
            if man == 0 {
                f64::INFINITY
            } else {
                f64::NAN
            }
        } else {
            let scale = 1.0 / (1u64 << self.man_bits) as f64;
            if exp == 0 {
                man as f64 * scale * 2f64.powi(self.min_exp())
            } else {
                (1.0 + man as f64 * scale) * 2f64.powi(exp as i32 - self.bias)
            }
        };
        (if negative { -v } else { v }) as f32
    }

    /// The bit pattern of `v`, a value of this format (the device stores only such values);
    /// NaN is the format's NaN, and a value between patterns (not produced by kernels) takes
    /// the nearest one.
    pub(crate) fn encode(self, v: f32) -> u8 {
        if v.is_nan() {
            // As XLA converts: the sign kept, and for the IEEE-like formats the top bits of the
            // payload (a quiet f32 NaN is `0x7e` in e5m2); `e4m3fn` has one NaN per sign.
            let sign = (v.is_sign_negative() as u32) << 7;
            let sign_shift = self.exp_bits + self.man_bits;
            if self.finite_only {
                return (sign | ((1u32 << sign_shift) - 1)) as u8;
            }
            let mut man = (v.to_bits() >> (23 - self.man_bits)) & ((1 << self.man_bits) - 1);
            if man == 0 {
                man = 1 << (self.man_bits - 1);
            }
            return (sign | (self.max_exp_code() << self.man_bits) | man) as u8;
        }
        let mut best = 0u8;
        let mut best_err = f64::INFINITY;
        for code in 0..=255u8 {
            let d = self.decode(code);
            if d.is_nan() || d.is_sign_negative() != v.is_sign_negative() {
                continue;
            }
            if d.to_bits() == v.to_bits() {
                return code;
            }
            let err = (d as f64 - v as f64).abs();
            if err < best_err {
                best_err = err;
                best = code;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_round_trips() {
        for dtype in [DType::F8E5M2, DType::F8E4M3, DType::F8E3M4, DType::F8E4M3FN] {
            let f = MiniFloat::of(dtype).unwrap();
            for code in 0..=255u8 {
                let v = f.decode(code);
                if v.is_nan() {
                    assert!(f.decode(f.encode(v)).is_nan());
                } else {
                    assert_eq!(f.encode(v), code, "{dtype} {code:#x} = {v}");
                }
            }
        }
        assert_eq!(MiniFloat::of(DType::F8E4M3FN).unwrap().max_finite(), 448.0);
        assert_eq!(MiniFloat::of(DType::F8E5M2).unwrap().max_finite(), 57344.0);
    }
}
