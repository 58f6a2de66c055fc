//! The 8- and 4-bit float formats the device keeps as f32 values (`f8e5m2`, `f8e4m3`,
//! `f8e3m4`, `f8e4m3fn`, the `fnuz` formats, `f8e8m0fnu` and `f4e2m1fn`): their parameters,
//! and the host conversions of their bit patterns (ml_dtypes' conventions, which `.npy` files
//! of these types use: one byte per element, a 4-bit code in the low bits).
//!
//! On the device such an array is an f32 buffer holding each element's exact value; kernels
//! round every result to the format ([`crate::emit::ops`] `round_minifloat`), as they do
//! for bf16. What a format does with overflow and NaN follows XLA's conversions
//! ([`Specials`]).

use hlo_ir::print::{MiniFloat as Format, MiniFloatKind};
use hlo_ir::DType;

/// How a format spends its special bit patterns, and so what overflow and NaN become on the
/// device (XLA's conversions):
/// - `Ieee`: overflow is infinity, a NaN keeps its sign and top payload bits;
/// - `FiniteAllOnesNan` (`e4m3fn`): overflow is NaN, one NaN per sign;
/// - `FiniteNegZeroNan` (the `fnuz` formats): overflow is NaN, -0 is +0, 0x80 the one NaN;
/// - `FiniteNoNan` (`e2m1fn`): overflow saturates, NaN becomes the sign bit alone (-0);
/// - `ExponentOnly` (`e8m0fnu`): powers of two from 2^-127, rounded up from half the mantissa
///   on (ties away from zero), f32 subnormals read by their bits.
pub(crate) type Specials = MiniFloatKind;

/// An 8- or 4-bit float format, as the device computes with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MiniFloat {
    pub man_bits: u32,
    pub specials: Specials,
    format: Format,
}

impl MiniFloat {
    pub(crate) fn of(dtype: DType) -> Option<MiniFloat> {
        let format = Format::of(dtype)?;
        Some(MiniFloat { man_bits: format.mantissa_bits, specials: format.kind, format })
    }

    fn max_exp_code(self) -> u32 {
        (1 << self.format.exponent_bits) - 1
    }

    fn sign_shift(self) -> u32 {
        self.format.exponent_bits + self.man_bits
    }

    /// How many bit patterns the format has (16 for a 4-bit one).
    fn num_codes(self) -> u32 {
        1 << self.format.width()
    }

    /// The smallest normal exponent.
    pub(crate) fn min_exp(self) -> i32 {
        1 - self.format.bias
    }

    /// The largest finite value.
    pub(crate) fn max_finite(self) -> f32 {
        let man_all = (1u32 << self.man_bits) - 1;
        let (exp_code, man) = match self.specials {
            Specials::Ieee => (self.max_exp_code() - 1, man_all),
            Specials::FiniteAllOnesNan => (self.max_exp_code(), man_all - 1),
            Specials::FiniteNegZeroNan | Specials::FiniteNoNan => (self.max_exp_code(), man_all),
            Specials::ExponentOnly => (self.max_exp_code() - 1, 0),
        };
        let frac = 1.0 + man as f64 / (1u64 << self.man_bits) as f64;
        (frac * 2f64.powi(exp_code as i32 - self.format.bias)) as f32
    }

    /// The value of bit pattern `code`.
    pub(crate) fn decode(self, code: u8) -> f32 {
        self.format.to_f64(code) as f32
    }

    /// The bit pattern of `v`, a value of this format (the device stores only such values);
    /// NaN is the format's NaN, and a value between patterns (not produced by kernels) takes
    /// the nearest one.
    pub(crate) fn encode(self, v: f32) -> u8 {
        if v.is_nan() {
            let sign = (v.is_sign_negative() as u32) << self.sign_shift();
            return match self.specials {
                // As XLA converts: the sign kept, and the top bits of the payload (a quiet
                // f32 NaN is `0x7e` in e5m2).
                Specials::Ieee => {
                    let mut man = (v.to_bits() >> (23 - self.man_bits)) & ((1 << self.man_bits) - 1);
                    if man == 0 {
                        man = 1 << (self.man_bits - 1);
                    }
                    (sign | (self.max_exp_code() << self.man_bits) | man) as u8
                }
                Specials::FiniteAllOnesNan => (sign | ((1u32 << self.sign_shift()) - 1)) as u8,
                Specials::FiniteNegZeroNan | Specials::FiniteNoNan => (1u32 << self.sign_shift()) as u8,
                Specials::ExponentOnly => 0xff,
            };
        }
        let mut best = 0u8;
        let mut best_err = f64::INFINITY;
        for code in 0..self.num_codes() {
            let code = code as u8;
            let d = self.decode(code);
            if d.is_nan() {
                continue;
            }
            if d.to_bits() == v.to_bits() {
                return code;
            }
            let err = (d as f64 - v as f64).abs();
            if err < best_err && (d.is_sign_negative() == v.is_sign_negative() || d == 0.0 || v == 0.0) {
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

    const ALL: [DType; 9] = [
        DType::F8E5M2,
        DType::F8E4M3,
        DType::F8E3M4,
        DType::F8E4M3FN,
        DType::F8E4M3FNUZ,
        DType::F8E5M2FNUZ,
        DType::F8E4M3B11FNUZ,
        DType::F4E2M1FN,
        DType::F8E8M0FNU,
    ];

    #[test]
    fn every_pattern_round_trips() {
        for dtype in ALL {
            let f = MiniFloat::of(dtype).unwrap();
            for code in 0..f.num_codes() {
                let code = code as u8;
                let v = f.decode(code);
                if v.is_nan() {
                    assert!(f.decode(f.encode(v)).is_nan());
                } else {
                    assert_eq!(f.encode(v), code, "{dtype} {code:#x} = {v}");
                }
            }
        }
    }

    #[test]
    fn largest_values_and_nans_as_ml_dtypes_has_them() {
        let max = |d| MiniFloat::of(d).unwrap().max_finite();
        assert_eq!(max(DType::F8E4M3FN), 448.0);
        assert_eq!(max(DType::F8E5M2), 57344.0);
        assert_eq!(max(DType::F8E4M3FNUZ), 240.0);
        assert_eq!(max(DType::F8E5M2FNUZ), 57344.0);
        assert_eq!(max(DType::F8E4M3B11FNUZ), 30.0);
        assert_eq!(max(DType::F4E2M1FN), 6.0);
        assert_eq!(max(DType::F8E8M0FNU), 2f32.powi(127));
        let fnuz = MiniFloat::of(DType::F8E4M3FNUZ).unwrap();
        assert!(fnuz.decode(0x80).is_nan());
        assert_eq!(fnuz.encode(-f32::NAN), 0x80);
        let e8m0 = MiniFloat::of(DType::F8E8M0FNU).unwrap();
        assert_eq!(e8m0.decode(0), 2f32.powi(-127));
        assert_eq!(e8m0.decode(127), 1.0);
        let f4 = MiniFloat::of(DType::F4E2M1FN).unwrap();
        assert_eq!(f4.encode(f32::NAN), 0x8);
        assert_eq!(f4.decode(0xf), -6.0);
    }
}
