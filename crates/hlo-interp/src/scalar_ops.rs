//! Per-element semantics of the elementwise opcodes, one typed function per (op, type).
//!
//! Both the array path ([`crate::elementwise`]) and the scalar programs that run reducer
//! and comparator computations ([`crate::scalar`]) look functions up here, so an op has
//! exactly one definition. Lookups return plain `fn` pointers: the array path resolves
//! the op once and then loops, so no per-element matching on the op or the type remains.
//!
//! The edge cases follow XLA's evaluator and `operation_semantics.md`:
//! - integer `x / 0` is `-1` for signed and all ones for unsigned types, `x % 0` is `x`,
//!   and `MIN / -1` is `MIN` with `MIN % -1 == 0`;
//! - shifts by at least the bit width (the amount read as unsigned, so negative amounts
//!   count as huge) give 0, except that an arithmetic right shift gives the sign bits;
//! - `maximum`/`minimum` propagate NaN (the first NaN operand wins);
//! - integer `power` with a negative exponent is 1 for base 1 and 0 otherwise;
//! - `sign` keeps `-0`, `+0` and NaN;
//! - `f16`/`bf16` ops run in f32 and round to the narrow type after every op.

use crate::error::{unsupported, OpResult};
use half::{bf16, f16};
use hlo_ir::{BinaryOp, CompareDirection, DType, UnaryOp};

/// The IEEE float types computed natively (`f32`, `f64`).
pub trait Float: Copy + PartialOrd + PartialEq + std::fmt::Debug + 'static {
    const ZERO: Self;
    const ONE: Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn rem(self, o: Self) -> Self;
    /// `self * b + c` with one rounding.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// [`Float::mul_add`] followed by [`Float::ftz`].
    fn fma(self, b: Self, c: Self) -> Self {
        self.mul_add(b, c).ftz()
    }
    fn neg(self) -> Self;
    fn abs(self) -> Self;
    fn is_nan(self) -> bool;
    fn is_finite(self) -> bool;
    #[allow(dead_code)]
    fn is_subnormal(self) -> bool;
    /// `self` flushed to a signed zero if subnormal: XLA:CPU runs with FTZ, so each step of a
    /// compound formula (complex division, `|z|`) loses its subnormal results.
    fn ftz(self) -> Self {
        if self.is_subnormal() {
            Self::ZERO.copysign(self)
        } else {
            self
        }
    }
    /// `mul` and `div` followed by [`Float::ftz`].
    fn fmul(self, o: Self) -> Self {
        self.mul(o).ftz()
    }
    fn fdiv(self, o: Self) -> Self {
        self.div(o).ftz()
    }
    #[allow(dead_code)]
    fn to_f64(self) -> f64;
    #[allow(dead_code)]
    fn from_f64(v: f64) -> Self;
    fn copysign(self, sign: Self) -> Self;
    fn exp(self) -> Self;
    fn exp_m1(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn sqrt(self) -> Self;
    fn cbrt(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn tan(self) -> Self;
    fn tanh(self) -> Self;
    fn asin(self) -> Self;
    fn acos(self) -> Self;
    fn atan(self) -> Self;
    fn sinh(self) -> Self;
    fn cosh(self) -> Self;
    fn asinh(self) -> Self;
    fn acosh(self) -> Self;
    fn atanh(self) -> Self;
    fn erf(self) -> Self;
    fn atan2(self, x: Self) -> Self;
    fn powf(self, e: Self) -> Self;
    fn floor(self) -> Self;
    fn ceil(self) -> Self;
    /// Rounds half away from zero.
    fn round_afz(self) -> Self;
    fn round_even(self) -> Self;
    /// A signed integer whose order is XLA's total order of this float
    /// (-NaN < -inf < ... < -0 < +0 < ... < inf < +NaN).
    fn total_order_key(self) -> i64;
}

macro_rules! impl_float {
    ($t:ty, $bits:ty, $ubits:ty, $erf:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline]
            fn add(self, o: Self) -> Self {
                self + o
            }
            #[inline]
            fn sub(self, o: Self) -> Self {
                self - o
            }
            #[inline]
            fn mul(self, o: Self) -> Self {
                self * o
            }
            #[inline]
            fn div(self, o: Self) -> Self {
                self / o
            }
            #[inline]
            fn mul_add(self, b: Self, c: Self) -> Self {
                <$t>::mul_add(self, b, c)
            }
            fn rem(self, o: Self) -> Self {
                // C's fmod, whose invalid cases (x infinite, y zero) give a positive quiet NaN
                // as XLA:CPU's does; Rust's `%` gives the x86 default NaN, which is negative.
                let r = self % o;
                if r.is_nan() && !self.is_nan() && !o.is_nan() {
                    <$t>::NAN
                } else {
                    r
                }
            }
            fn neg(self) -> Self {
                -self
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            fn is_subnormal(self) -> bool {
                <$t>::is_subnormal(self)
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn copysign(self, sign: Self) -> Self {
                <$t>::copysign(self, sign)
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn cbrt(self) -> Self {
                <$t>::cbrt(self)
            }
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            fn tan(self) -> Self {
                <$t>::tan(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn asin(self) -> Self {
                <$t>::asin(self)
            }
            fn acos(self) -> Self {
                <$t>::acos(self)
            }
            fn atan(self) -> Self {
                <$t>::atan(self)
            }
            fn sinh(self) -> Self {
                <$t>::sinh(self)
            }
            fn cosh(self) -> Self {
                <$t>::cosh(self)
            }
            // Rust's asinh/acosh square their argument and overflow above ~1e19 (f32); past 1e8,
            // ln(2x) is the correctly rounded value.
            fn asinh(self) -> Self {
                let a = self.abs();
                if a > 1e8 {
                    (a.ln() + std::f64::consts::LN_2 as $t).copysign(self)
                } else {
                    <$t>::asinh(self)
                }
            }
            fn acosh(self) -> Self {
                if self > 1e8 {
                    self.ln() + std::f64::consts::LN_2 as $t
                } else {
                    <$t>::acosh(self)
                }
            }
            fn atanh(self) -> Self {
                <$t>::atanh(self)
            }
            fn erf(self) -> Self {
                $erf(self)
            }
            fn atan2(self, x: Self) -> Self {
                <$t>::atan2(self, x)
            }
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            fn ceil(self) -> Self {
                <$t>::ceil(self)
            }
            fn round_afz(self) -> Self {
                <$t>::round(self)
            }
            fn round_even(self) -> Self {
                <$t>::round_ties_even(self)
            }
            fn total_order_key(self) -> i64 {
                // Negative floats have their magnitude bits flipped so that a larger
                // magnitude sorts lower; the sign bit then orders negatives first.
                let bits = self.to_bits() as $bits;
                let mask = ((bits >> (<$bits>::BITS - 1)) as $ubits) >> 1;
                (bits ^ mask as $bits) as i64
            }
        }
    };
}

impl_float!(f32, i32, u32, libm::erff);
impl_float!(f64, i64, u64, libm::erf);

/// Floats stored narrow and computed in f32 (`f16`, `bf16`).
pub trait Narrow: Copy + 'static {
    fn to_f32(self) -> f32;
    fn from_f32(x: f32) -> Self;
}

impl Narrow for f16 {
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    fn from_f32(x: f32) -> Self {
        f16::from_f32(x)
    }
}

impl Narrow for bf16 {
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    fn from_f32(x: f32) -> Self {
        bf16::from_f32(x)
    }
}

/// The integer types (sub-byte types are stored widened and re-wrapped by the caller).
pub trait Int: Copy + Ord + Eq + std::fmt::Debug + 'static {
    const BITS: u32;
    const SIGNED: bool;
    const MIN: Self;
    const ZERO: Self;
    const ONE: Self;
    fn wadd(self, o: Self) -> Self;
    fn wsub(self, o: Self) -> Self;
    fn wmul(self, o: Self) -> Self;
    fn wneg(self) -> Self;
    fn wabs(self) -> Self;
    /// Truncating division; the caller has excluded `x / 0` and `MIN / -1`.
    fn tdiv(self, o: Self) -> Self;
    fn trem(self, o: Self) -> Self;
    fn not(self) -> Self;
    fn and(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    fn xor(self, o: Self) -> Self;
    /// The bit pattern zero-extended: how a shift amount is read.
    fn bits_u64(self) -> u64;
    fn shl(self, n: u32) -> Self;
    fn shr_logical(self, n: u32) -> Self;
    fn shr_arith(self, n: u32) -> Self;
    fn popcnt(self) -> Self;
    fn clz(self) -> Self;
    fn to_i128(self) -> i128;
    fn from_i128_wrapping(x: i128) -> Self;
    fn is_negative(self) -> bool;
}

macro_rules! impl_int {
    ($t:ty, $u:ty, $signed:expr) => {
        impl Int for $t {
            const BITS: u32 = <$t>::BITS;
            const SIGNED: bool = $signed;
            const MIN: Self = <$t>::MIN;
            const ZERO: Self = 0;
            const ONE: Self = 1;
            #[inline]
            fn wadd(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            #[inline]
            fn wsub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            #[inline]
            fn wmul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            fn wneg(self) -> Self {
                self.wrapping_neg()
            }
            #[allow(unused_comparisons)]
            fn wabs(self) -> Self {
                if self < 0 {
                    self.wrapping_neg()
                } else {
                    self
                }
            }
            fn tdiv(self, o: Self) -> Self {
                self.wrapping_div(o)
            }
            fn trem(self, o: Self) -> Self {
                self.wrapping_rem(o)
            }
            fn not(self) -> Self {
                !self
            }
            #[inline]
            fn and(self, o: Self) -> Self {
                self & o
            }
            #[inline]
            fn or(self, o: Self) -> Self {
                self | o
            }
            #[inline]
            fn xor(self, o: Self) -> Self {
                self ^ o
            }
            fn bits_u64(self) -> u64 {
                self as $u as u64
            }
            fn shl(self, n: u32) -> Self {
                ((self as $u) << n) as $t
            }
            fn shr_logical(self, n: u32) -> Self {
                ((self as $u) >> n) as $t
            }
            fn shr_arith(self, n: u32) -> Self {
                // Sign-extend by shifting the signed reinterpretation.
                (((self as $u) as <$u as SignedOf>::S) >> n) as $t
            }
            fn popcnt(self) -> Self {
                self.count_ones() as $t
            }
            fn clz(self) -> Self {
                self.leading_zeros() as $t
            }
            fn to_i128(self) -> i128 {
                self as i128
            }
            fn from_i128_wrapping(x: i128) -> Self {
                x as $t
            }
            #[allow(unused_comparisons)]
            fn is_negative(self) -> bool {
                self < 0
            }
        }
    };
}

/// Maps an unsigned type to the signed type of the same width.
pub trait SignedOf {
    type S;
}
impl SignedOf for u8 {
    type S = i8;
}
impl SignedOf for u16 {
    type S = i16;
}
impl SignedOf for u32 {
    type S = i32;
}
impl SignedOf for u64 {
    type S = i64;
}

impl_int!(i8, u8, true);
impl_int!(i16, u16, true);
impl_int!(i32, u32, true);
impl_int!(i64, u64, true);
impl_int!(u8, u8, false);
impl_int!(u16, u16, false);
impl_int!(u32, u32, false);
impl_int!(u64, u64, false);

/// XLA's float `sign`: ±1 for nonzero numbers, the operand itself for ±0 and NaN.
fn float_sign<T: Float>(x: T) -> T {
    if x.is_nan() || x == T::ZERO {
        x
    } else {
        T::ONE.copysign(x)
    }
}

/// True for -0 and every other value with the sign bit set.
fn sign_negative<T: Float>(x: T) -> bool {
    T::ONE.copysign(x) < T::ZERO
}

/// IEEE 754-2019 `maximum`, as compiled XLA computes it (LLVM's `llvm.maximum`
/// on CPU, the same rule on GPU): NaN wins, and +0 is greater than -0.
fn float_max<T: Float>(a: T, b: T) -> T {
    if a.is_nan() {
        a
    } else if b.is_nan() || a < b || (a == b && sign_negative(a) && !sign_negative(b)) {
        b
    } else {
        a
    }
}

/// IEEE 754-2019 `minimum`: NaN wins, and -0 is less than +0.
fn float_min<T: Float>(a: T, b: T) -> T {
    if a.is_nan() {
        a
    } else if b.is_nan() || b < a || (a == b && sign_negative(b) && !sign_negative(a)) {
        b
    } else {
        a
    }
}

fn float_pow<T: Float>(a: T, b: T) -> T {
    // 1^x = 1 and x^0 = 1 for every x, NaN included (Kahan; C's pow agrees).
    if a == T::ONE || b == T::ZERO {
        T::ONE
    } else {
        a.powf(b)
    }
}

fn logistic<T: Float>(x: T) -> T {
    T::ONE.div(T::ONE.add(x.neg().exp()))
}

/// `atanh` as XLA computes it, `(log1p(x) - log1p(-x)) / 2`: accurate near ±1, where the
/// standard library's `log1p(2x / (1 - x)) / 2` loses up to 1e-4 relative in f32 (its
/// argument comes within rounding of -1).
fn atanh<T: Float>(x: T) -> T {
    if x.abs() >= T::ONE || x.is_nan() {
        return x.atanh();
    }
    let half = T::ONE.div(T::ONE.add(T::ONE));
    x.ln_1p().sub(x.neg().ln_1p()).mul(half)
}

fn rsqrt<T: Float>(x: T) -> T {
    T::ONE.div(x.sqrt())
}

/// The typed function of a float unary op (`is-finite` and complex parts are handled by callers).
pub fn float_unop<T: Float>(op: UnaryOp) -> OpResult<fn(T) -> T> {
    use UnaryOp as U;
    Ok(match op {
        U::Abs => T::abs,
        U::Negate => T::neg,
        U::Exp => T::exp,
        U::Expm1 => T::exp_m1,
        U::Log => T::ln,
        U::Log1p => T::ln_1p,
        U::Logistic => logistic::<T>,
        U::Sqrt => T::sqrt,
        U::Rsqrt => rsqrt::<T>,
        U::Cbrt => T::cbrt,
        U::Sin => T::sin,
        U::Cos => T::cos,
        U::Tan => T::tan,
        U::Tanh => T::tanh,
        U::Asin => T::asin,
        U::Acos => T::acos,
        U::Atan => T::atan,
        U::Sinh => T::sinh,
        U::Cosh => T::cosh,
        U::Asinh => T::asinh,
        U::Acosh => T::acosh,
        U::Atanh => atanh::<T>,
        U::Erf => T::erf,
        U::Floor => T::floor,
        U::Ceil => T::ceil,
        U::RoundNearestAfz => T::round_afz,
        U::RoundNearestEven => T::round_even,
        U::Sign => float_sign::<T>,
        U::Real => |x| x,
        U::Imag => |_| T::ZERO,
        U::Not | U::PopulationCount | U::Clz | U::IsFinite => {
            return unsupported(format!("{} on a float type", op.opcode()))
        }
    })
}

// Not yet called: the evaluator still flushes every binary op's operands (eval.rs `flushes`).
#[allow(dead_code)]
/// `x` with a subnormal value read as zero of its sign (DAZ).
fn daz<T: Float>(x: T) -> T {
    if x.is_subnormal() {
        T::ZERO.copysign(x)
    } else {
        x
    }
}

/// Binary ops that XLA:CPU computes by library calls which look at operand bits before any
/// arithmetic, so that a subnormal operand is not simply read as zero: their operands must
/// reach [`float_binop_xla_cpu`] unflushed.
pub fn reads_subnormal_operands(op: BinaryOp) -> bool {
    matches!(op, BinaryOp::Atan2 | BinaryOp::Power | BinaryOp::Remainder)
}

/// `atan2` as XLA:CPU computes it with denormals-are-zero on: zeros, infinities and NaN are
/// classified by their bits (`atan2(1e-45, 0)` is pi/2), the rest is arithmetic on operands
/// read as zero when subnormal (`atan2(1e-45, 1e-45)` divides 0 by 0: NaN).
fn atan2_xla_cpu<T: Float>(y: T, x: T) -> T {
    let special = y.is_nan() || x.is_nan() || !y.is_finite() || !x.is_finite();
    if special || y == T::ZERO || x == T::ZERO {
        return y.atan2(x);
    }
    let (y, x) = (daz(y), daz(x));
    if y == T::ZERO && x == T::ZERO {
        return T::ZERO.div(T::ZERO);
    }
    y.atan2(x)
}

/// `fmod` as XLA computes it: a zero or NaN divisor and an infinite dividend give the canonical
/// +NaN; a NaN dividend comes back unchanged (sign, payload, even a signalling one); otherwise the
/// exact remainder. (libm's `fmod`, which Rust's `%` calls, returns a NaN divisor instead.)
fn rem_xla<T: Float>(x: T, y: T) -> T {
    if y.is_nan() || y == T::ZERO || !(x.is_finite() || x.is_nan()) {
        return T::from_f64(f64::NAN);
    }
    if x.is_nan() {
        return x;
    }
    x.rem(y)
}

/// [`rem_xla`] with denormals-are-zero on: a divisor that reads as zero gives NaN, the rest sees
/// the operands as they are.
fn rem_xla_cpu<T: Float>(x: T, y: T) -> T {
    if daz(y) == T::ZERO && !y.is_nan() {
        return T::from_f64(f64::NAN);
    }
    rem_xla(x, y)
}

/// `pow` as XLA:CPU computes it with denormals-are-zero on (glibc's `powf`): special operands
/// are classified by their bits, a subnormal f32 base counts as 2^-150 (its normalisation
/// multiplies by 2^23, which reads as zero), and a subnormal exponent as zero (but not as an
/// integer, so a negative base gives NaN). f64 operands are taken as they are.
fn pow_xla_cpu<T: Float>(x: T, y: T) -> T {
    let f32_like = std::mem::size_of::<T>() == 4;
    if !f32_like || !(x.is_subnormal() || y.is_subnormal()) {
        return float_pow(x, y);
    }
    if y.is_subnormal() && x.is_finite() && !x.is_nan() && x != T::ONE {
        if x == T::ZERO {
            return float_pow(x, y);
        }
        if x < T::ZERO {
            return T::ZERO.div(T::ZERO);
        }
        return T::ONE;
    }
    if x.is_subnormal() && y.is_finite() && !y.is_nan() && y != T::ZERO {
        // |x| = 2^-150 (not an f32): 2^(-150 y), computed in f64 and rounded once.
        let mag = T::from_f64((-150.0 * y.to_f64()).exp2());
        let half = y.to_f64() * 0.5;
        let y_odd = y.floor() == y && half.floor() != half;
        if x < T::ZERO && y.floor() != y {
            return T::ZERO.div(T::ZERO);
        }
        return if x < T::ZERO && y_odd { mag.neg() } else { mag };
    }
    float_pow(x, y)
}

/// The typed function of a float binary op in XLA:CPU's environment: like [`float_binop`],
/// except for the ops of [`reads_subnormal_operands`], which receive unflushed operands.
pub fn float_binop_xla_cpu<T: Float>(op: BinaryOp) -> OpResult<fn(T, T) -> T> {
    Ok(match op {
        BinaryOp::Atan2 => atan2_xla_cpu::<T>,
        BinaryOp::Power => pow_xla_cpu::<T>,
        BinaryOp::Remainder => rem_xla_cpu::<T>,
        _ => return float_binop(op),
    })
}

/// The typed function of a float binary op.
pub fn float_binop<T: Float>(op: BinaryOp) -> OpResult<fn(T, T) -> T> {
    use BinaryOp as B;
    Ok(match op {
        B::Add => T::add,
        B::Subtract => T::sub,
        B::Multiply => T::mul,
        B::Divide => T::div,
        B::Remainder => rem_xla::<T>,
        B::Maximum => float_max::<T>,
        B::Minimum => float_min::<T>,
        B::Power => float_pow::<T>,
        B::Atan2 => T::atan2,
        _ => return unsupported(format!("{} on a float type", op.opcode())),
    })
}

fn int_sign<T: Int>(x: T) -> T {
    if x == T::ZERO {
        T::ZERO
    } else if x.is_negative() {
        T::ZERO.wsub(T::ONE)
    } else {
        T::ONE
    }
}

/// The typed function of an integer unary op.
pub fn int_unop<T: Int>(op: UnaryOp) -> OpResult<fn(T) -> T> {
    use UnaryOp as U;
    Ok(match op {
        U::Abs => T::wabs,
        U::Negate => T::wneg,
        U::Not => T::not,
        U::PopulationCount => T::popcnt,
        U::Clz => T::clz,
        U::Sign => int_sign::<T>,
        U::Real => |x| x,
        _ => return unsupported(format!("{} on an integer type", op.opcode())),
    })
}

fn int_div<T: Int>(a: T, b: T) -> T {
    if b == T::ZERO {
        // Signed: -1; unsigned: all ones. Both are the all-ones bit pattern.
        return T::ZERO.wsub(T::ONE);
    }
    if T::SIGNED && a == T::MIN && b == T::ZERO.wsub(T::ONE) {
        return a;
    }
    a.tdiv(b)
}

fn int_rem<T: Int>(a: T, b: T) -> T {
    if b == T::ZERO {
        return a;
    }
    if T::SIGNED && a == T::MIN && b == T::ZERO.wsub(T::ONE) {
        return T::ZERO;
    }
    a.trem(b)
}

fn int_pow<T: Int>(a: T, b: T) -> T {
    if a == T::ONE || b == T::ZERO {
        return T::ONE;
    }
    if b.is_negative() {
        return T::ZERO;
    }
    // Exponentiation by squaring with wrapping products.
    let mut base = a;
    let mut exp = b.bits_u64();
    let mut res = T::ONE;
    while exp > 0 {
        if exp & 1 == 1 {
            res = res.wmul(base);
        }
        base = base.wmul(base);
        exp >>= 1;
    }
    res
}

fn shift_amount<T: Int>(n: T) -> Option<u32> {
    let n = n.bits_u64();
    (n < T::BITS as u64).then_some(n as u32)
}

fn int_shl<T: Int>(a: T, n: T) -> T {
    shift_amount(n).map_or(T::ZERO, |n| a.shl(n))
}

fn int_shr_logical<T: Int>(a: T, n: T) -> T {
    shift_amount(n).map_or(T::ZERO, |n| a.shr_logical(n))
}

fn int_shr_arith<T: Int>(a: T, n: T) -> T {
    shift_amount(n).map_or_else(|| a.shr_arith(T::BITS - 1), |n| a.shr_arith(n))
}

fn int_mulhi<T: Int>(a: T, b: T) -> T {
    if T::SIGNED {
        T::from_i128_wrapping((a.to_i128() * b.to_i128()) >> T::BITS)
    } else {
        // An unsigned 64-bit product needs all 128 bits unsigned.
        let wide = (a.bits_u64() as u128 * b.bits_u64() as u128) >> T::BITS;
        T::from_i128_wrapping(wide as i128)
    }
}

/// The typed function of an integer binary op.
pub fn int_binop<T: Int>(op: BinaryOp) -> OpResult<fn(T, T) -> T> {
    use BinaryOp as B;
    Ok(match op {
        B::Add => T::wadd,
        B::Subtract => T::wsub,
        B::Multiply => T::wmul,
        B::Divide => int_div::<T>,
        B::Remainder => int_rem::<T>,
        B::Maximum => |a, b| a.max(b),
        B::Minimum => |a, b| a.min(b),
        B::Power => int_pow::<T>,
        B::And => T::and,
        B::Or => T::or,
        B::Xor => T::xor,
        B::ShiftLeft => int_shl::<T>,
        B::ShiftRightLogical => int_shr_logical::<T>,
        B::ShiftRightArithmetic => int_shr_arith::<T>,
        B::Mulhi => int_mulhi::<T>,
        B::Atan2 | B::Complex => return unsupported(format!("{} on an integer type", op.opcode())),
    })
}

/// The function of a `pred` unary op.
pub fn pred_unop(op: UnaryOp) -> OpResult<fn(bool) -> bool> {
    Ok(match op {
        UnaryOp::Not => |x| !x,
        UnaryOp::Abs | UnaryOp::Real => |x| x,
        _ => return unsupported(format!("{} on pred", op.opcode())),
    })
}

/// The function of a `pred` binary op: XLA computes on 0/1 and converts back to bool.
pub fn pred_binop(op: BinaryOp) -> OpResult<fn(bool, bool) -> bool> {
    use BinaryOp as B;
    Ok(match op {
        B::Add | B::Or | B::Maximum => |a, b| a | b,
        B::Multiply | B::And | B::Minimum => |a, b| a & b,
        B::Subtract | B::Xor => |a, b| a ^ b,
        B::Power => |a, b| a || !b,
        _ => return unsupported(format!("{} on pred", op.opcode())),
    })
}

/// Complex numbers as `[re, im]`.
pub type Cplx<T> = [T; 2];

/// `(ac - bd, ad + bc)` with the left product of each fused into its sum, as XLA:CPU's LLVM
/// contracts them (`(3e38+3e38i) * (2+2i)` is `-inf+infi` in JAX, not NaN).
fn c_mul<T: Float>(a: Cplx<T>, b: Cplx<T>) -> Cplx<T> {
    [a[0].fma(b[0], a[1].fmul(b[1]).neg()), a[0].fma(b[1], a[1].fmul(b[0]))]
}

/// Complex division as XLA's elemental emitter computes it: Smith's algorithm (dividing by the
/// larger of the denominator's parts, so `|b|^2` never overflows), then where that gives
/// NaN + NaNi, C99 Annex G's answers: a zero denominator gives infinities
/// (`(1+1i)/(0+0i)` is `inf+infi`), an infinite numerator over a finite denominator infinities,
/// a finite numerator over an infinite denominator zeros.
fn c_div<T: Float>(a: Cplx<T>, b: Cplx<T>) -> Cplx<T> {
    let ([ar, ai], [br, bi]) = (a, b);
    let (zero, one) = (T::ZERO, T::ONE);
    let inf = T::from_f64(f64::INFINITY);
    // Products fused into the sums that use them, as LLVM contracts XLA's formula.
    let result = if br.abs() < bi.abs() {
        let ratio = br.fdiv(bi);
        let denom = ratio.fma(br, bi);
        [ratio.fma(ar, ai).fdiv(denom), ratio.fma(ai, ar.neg()).fdiv(denom)]
    } else {
        let ratio = bi.fdiv(br);
        let denom = ratio.fma(bi, br);
        [ratio.fma(ai, ar).fdiv(denom), ratio.neg().fma(ar, ai).fdiv(denom)]
    };
    if !(result[0].is_nan() && result[1].is_nan()) {
        return result;
    }
    let is_inf = |x: T| x.abs() == inf;
    let finite = |x: T| x.abs() != inf && !x.is_nan();
    if br.abs() == zero && bi.abs() == zero && (!ar.is_nan() || !ai.is_nan()) {
        let signed_inf = inf.copysign(br);
        return [signed_inf.fmul(ar), signed_inf.fmul(ai)];
    }
    if (is_inf(ar) || is_inf(ai)) && finite(br) && finite(bi) {
        let sr = (if is_inf(ar) { one } else { zero }).copysign(ar);
        let si = (if is_inf(ai) { one } else { zero }).copysign(ai);
        return [inf.fmul(sr.fma(br, si.fmul(bi))), inf.fmul(si.fma(br, sr.fmul(bi).neg()))];
    }
    if (is_inf(br) || is_inf(bi)) && finite(ar) && finite(ai) {
        let sr = (if is_inf(br) { one } else { zero }).copysign(br);
        let si = (if is_inf(bi) { one } else { zero }).copysign(bi);
        return [zero.fmul(ar.fma(sr, ai.fmul(si))), zero.fmul(ai.fma(sr, ar.fmul(si).neg()))];
    }
    result
}

/// `|z|` as XLA's `EmitComplexAbs`: `max * sqrt(1 + (min/max)^2)` (no intermediate
/// overflow), or `min` where that is NaN (both parts zero or infinite, or a NaN part).
pub fn c_abs<T: Float>(z: Cplx<T>) -> T {
    let (max, min) = max_min(z[0], z[1]);
    let d = min.fdiv(max);
    let r = max.fmul(d.fma(d, T::ONE).sqrt());
    if r.is_nan() {
        min
    } else {
        r
    }
}

fn c_exp<T: Float>(z: Cplx<T>) -> Cplx<T> {
    let m = z[0].exp();
    [m.fmul(z[1].cos()), m.fmul(z[1].sin())]
}

/// XLA's complex `expm1`: `(expm1(a) cos b + cosm1(b), e^a sin b)`, the imaginary part +0
/// where `b` is 0; near 0 neither part cancels as `e^a cos b - 1` would.
fn c_expm1<T: Float>(z: Cplx<T>) -> Cplx<T> {
    let [a, b] = z;
    let expm1_a = a.exp_m1();
    let exp_a = expm1_a.add(T::ONE);
    let cosm1_b = cosm1(b);
    let cos_b = cosm1_b.add(T::ONE);
    let re = expm1_a.fmul(cos_b).add(cosm1_b);
    let im = if b == T::ZERO { T::ZERO } else { exp_a.fmul(b.sin()) };
    [re, im]
}

/// Cephes' coefficients of `P` in `cos x - 1 = -x^2/2 + x^4 P(x^2)`, highest degree first.
#[allow(clippy::excessive_precision)]
pub const COSM1_COEFFS: [f64; 7] = [
    4.737_750_796_424_620_469_168_5E-14,
    -1.147_028_484_342_535_976_567_1E-11,
    2.087_675_428_708_152_175_836_1E-9,
    -2.755_731_921_499_978_797_981_4E-7,
    2.480_158_730_157_055_230_499_1E-5,
    -1.388_888_888_888_887_299_373_7E-3,
    4.166_666_666_666_666_660_905_4E-2,
];

/// XLA's `cosm1` (`EmitCosm1`): Cephes' polynomial while `x^2 <= 0.61685` (about `(pi/4)^2`),
/// else `cos x - 1`.
fn cosm1<T: Float>(x: T) -> T {
    let xx = x.fmul(x);
    if xx > T::from_f64(0.61685) {
        return x.cos().sub(T::ONE);
    }
    let poly = COSM1_COEFFS.iter().fold(T::ZERO, |p, &c| p.fmul(xx).add(T::from_f64(c)));
    xx.fmul(xx).fmul(poly).add(T::from_f64(-0.5).fmul(xx))
}

/// `log|z| + i atan2(im, re)`. For c64 the operands arrive unflushed ([`complex_log_reads_subnormals`]):
/// XLA:CPU's `|z|` reads subnormal parts as zero, while its `atan2` classifies them by their bits
/// first, so `log(1e-45 + 1e-45i)` is `-inf + NaN i` and `log(1e-40 i)` is `-inf + pi/2 i`, as
/// jax 0.8.3 gives (and the device computes).
fn c_log<T: Float>(z: Cplx<T>) -> Cplx<T> {
    if std::mem::size_of::<T>() == 4 {
        return [c_abs([daz(z[0]), daz(z[1])]).ln(), atan2_xla_cpu(z[1], z[0])];
    }
    [c_abs(z).ln(), z[1].atan2(z[0])]
}

/// Whether a complex unary op of `dtype` takes its operand unflushed (see [`c_log`]).
pub fn complex_log_reads_subnormals(op: UnaryOp, dtype: DType) -> bool {
    op == UnaryOp::Log && dtype == DType::C64
}

/// `log(1 + z)` with the real part `log1p(2 re + re^2 + im^2) / 2` summed exactly (fused
/// multiply-adds give the squares' rounding errors), so that it does not cancel where
/// `|1 + z| ~ 1`; `log(max) + log1p((min/max)^2) / 2` for parts above `sqrt(max) / 100` and
/// `log((1 + re)^2 + im^2) / 2` near `z = -1`, as `lower-complex` computes it.
fn c_log1p<T: Float>(z: Cplx<T>) -> Cplx<T> {
    let [a, b] = z;
    let one = T::ONE;
    let half = T::from_f64(0.5);
    let (max, min) = max_min(a, b);
    let ap1 = a.add(one);
    let im = b.atan2(ap1);
    let large = if T::from_f64(1e300).is_finite() { f64::MAX.sqrt() } else { (f32::MAX as f64).sqrt() } / 100.0;
    let re = if max > T::from_f64(large) {
        let r = if min == max { one } else { min.div(max).mul(min.div(max)) };
        max.ln().add(half.mul(r.ln_1p()))
    } else if ap1.abs().add(b.abs()) < T::from_f64(0.2) {
        half.mul(ap1.mul(ap1).add(b.mul(b)).ln())
    } else {
        let (a2, b2) = (a.mul(a), b.mul(b));
        let (a2_err, b2_err) = (a.mul_add(a, a2.neg()), b.mul_add(b, b2.neg()));
        let two_sum = |x: T, y: T| {
            let s = x.add(y);
            let yy = s.sub(x);
            (s, x.sub(s.sub(yy)).add(y.sub(yy)))
        };
        let (s1, e1) = two_sum(a.add(a), b2);
        let (s2, e2) = two_sum(s1, a2);
        half.mul(s2.add(e1.add(e2).add(a2_err).add(b2_err)).ln_1p())
    };
    [re, im]
}

/// `max(|a|, |b|)` and `min(...)` as XLA's NaN-propagating `maximum`/`minimum`.
fn max_min<T: Float>(a: T, b: T) -> (T, T) {
    let (a, b) = (a.abs(), b.abs());
    if a.is_nan() || b.is_nan() {
        let nan = T::from_f64(f64::NAN);
        return (nan, nan);
    }
    if a >= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// `sqrt|z|` as XLA's `EmitSqrtComplexAbs`: `sqrt(max) * (1 + (min/max)^2)^0.25`, or `min`
/// where that is NaN.
fn c_sqrt_abs<T: Float>(z: Cplx<T>) -> T {
    let (max, min) = max_min(z[0], z[1]);
    let d = min.fdiv(max);
    let term = d.fma(d, T::ONE);
    let r = max.sqrt().fmul(term.powf(T::from_f64(0.25)));
    if r.is_nan() {
        min
    } else {
        r
    }
}

/// XLA's `EmitComplexSqrt`: `sqrt|z| * (cos(t/2), sin(t/2))`, `t = atan2(b, a)`, with its
/// infinite, NaN and zero cases.
fn c_sqrt<T: Float>(z: Cplx<T>) -> Cplx<T> {
    let [a, b] = z;
    let (zero, inf) = (T::ZERO, T::from_f64(f64::INFINITY));
    let r = c_sqrt_abs(z);
    let t = b.atan2(a).fmul(T::from_f64(0.5));
    let (cos, sin) = (t.cos(), t.sin());
    if r == zero {
        return [zero, zero];
    }
    let b_inf = b.abs() == inf;
    let b_finite = b.abs() != inf && !b.is_nan();
    let neg_inf = T::from_f64(f64::NEG_INFINITY);
    let re = if b_inf || a == inf {
        inf
    } else if a == neg_inf && b_finite {
        zero
    } else {
        r.fmul(cos)
    };
    let im = if b_inf || a == neg_inf {
        inf.copysign(b)
    } else if r.is_nan() {
        T::from_f64(f64::NAN)
    } else if sin == zero {
        sin
    } else {
        r.fmul(sin)
    };
    [re, im]
}

/// `z / |z|`, zero at zero (XLA's `sign` of a complex number).
fn c_sign<T: Float>(z: Cplx<T>) -> Cplx<T> {
    let abs = c_abs(z);
    if abs == T::ZERO {
        return [T::ZERO, T::ZERO];
    }
    [z[0].fdiv(abs), z[1].fdiv(abs)]
}

/// XLA's `EmitComplexPower`: `|x|^c * exp(-d arg x) * (cos q, sin q)`, `q = c arg x + d ln|x|`,
/// then its cases: `0^c` (0, or 1 for c = 0), `x^0 = 1`, `1^y = 1`, `inf^c` for real c.
fn c_pow<T: Float>(x: Cplx<T>, y: Cplx<T>) -> Cplx<T> {
    let ([a, b], [c, d]) = (x, y);
    let (zero, one, inf) = (T::ZERO, T::ONE, T::from_f64(f64::INFINITY));
    let abs = c_abs(x);
    let arg = b.atan2(a);
    let coeff = abs.powf(c).fmul(d.neg().fmul(arg).exp());
    let q = c.fma(arg, d.fmul(abs.ln()));
    let mut r = [coeff.fmul(q.cos()), coeff.fmul(q.sin())];
    if abs == zero && d == zero && zero <= c {
        r = [if c == zero { one } else { zero }, zero];
    }
    if c == zero && d == zero {
        r = [one, zero];
    }
    if a == one && b == zero {
        r = [one, zero];
    }
    if a == inf && b == zero && d == zero && c > zero {
        r = [inf, zero];
    }
    if a == inf && b == zero && d == zero && c < zero {
        r = [zero, zero];
    }
    r
}

/// `1/sqrt|z|` as XLA's `EmitRsqrtComplexAbs`: `rsqrt(max) * rsqrt(sqrt(1 + (min/max)^2))`,
/// or `rsqrt(min)` where that is NaN.
fn c_rsqrt_abs<T: Float>(z: Cplx<T>) -> T {
    let (max, min) = max_min(z[0], z[1]);
    let d = min.fdiv(max);
    let root = d.fma(d, T::ONE).sqrt();
    let r = rsqrt(max).fmul(rsqrt(root));
    if r.is_nan() {
        rsqrt(min)
    } else {
        r
    }
}

/// XLA's `EmitComplexRsqrt`: `rsqrt|z| * (cos(-t/2), sin(-t/2))`, `t = atan2(b, a)`; `0` gives
/// `inf + NaN i`, an infinite real part (or an infinite imaginary part with a NaN real one)
/// gives `(copysign(0, a), -copysign(0, b))`.
fn c_rsqrt<T: Float>(z: Cplx<T>) -> Cplx<T> {
    let [a, b] = z;
    let (zero, inf) = (T::ZERO, T::from_f64(f64::INFINITY));
    let r = c_rsqrt_abs(z);
    let t = b.atan2(a).fmul(T::from_f64(-0.5));
    if a == zero && b == zero {
        return [inf, T::from_f64(f64::NAN)];
    }
    if (b.abs() == inf && a.is_nan()) || a.abs() == inf {
        return [zero.copysign(a), zero.copysign(b).neg()];
    }
    [r.fmul(t.cos()), r.fmul(t.sin())]
}

/// XLA's complex `sin` and `cos`: with `e = exp(y)`, `sinh y = e/2 - 0.5/e` and
/// `cosh y = e/2 + 0.5/e`, `sin(x+iy) = (sin x cosh y, cos x sinh y)` and
/// `cos(x+iy) = (cos x cosh y, -sin x sinh y)`.
fn c_sin_cos<T: Float>(z: Cplx<T>, cos: bool) -> Cplx<T> {
    let [x, y] = z;
    let half = T::from_f64(0.5);
    let e = y.exp();
    let (half_e, half_inv) = (half.fmul(e), half.fdiv(e));
    let (sinh, cosh) = (half_e.sub(half_inv).ftz(), half_e.add(half_inv).ftz());
    if cos {
        [x.cos().fmul(cosh), x.sin().fmul(sinh).neg()]
    } else {
        [x.sin().fmul(cosh), x.cos().fmul(sinh)]
    }
}

/// XLA's complex `tanh` (and `tan(z) = -i tanh(iz)`): with `p = expm1(2a)`, `m = expm1(-2a)`,
/// `tanh(a+bi) = ((p - m) + 4 cos b sin b i) / (p + m + 4 cos^2 b)`, the real part `copysign(1, a)`
/// where `p + m` is infinite, then its corner cases: a NaN `sin 2b` makes the real part NaN
/// unless `a` is infinite, and the imaginary part is 0 where `b` is 0 or both hold.
fn c_tanh_of<T: Float>(a: T, b: T) -> Cplx<T> {
    let (zero, four, inf) = (T::ZERO, T::from_f64(4.0), T::from_f64(f64::INFINITY));
    let two_a = a.add(a).ftz();
    let neg_2a = T::from_f64(-1.0).fmul(two_a);
    let (p, m) = (two_a.exp_m1(), neg_2a.exp_m1());
    let real_numerator = p.sub(m).ftz();
    let (cos_b, sin_b) = (b.cos(), b.sin());
    let four_cos_sq = cos_b.fmul(cos_b).fmul(four);
    let imag_numerator = four.fmul(cos_b.fmul(sin_b));
    let sum = p.add(m).ftz();
    let denom = sum.add(four_cos_sq).ftz();
    let mut real = if sum == inf { T::ONE.copysign(a) } else { real_numerator.fdiv(denom) };
    let mut imag = imag_numerator.fdiv(denom);
    let a_inf = a.abs() == inf;
    let sin_2b_nan = imag_numerator.is_nan();
    if sin_2b_nan && !a_inf {
        real = T::from_f64(f64::NAN);
    }
    if b == zero || (a_inf && sin_2b_nan) {
        imag = zero;
    }
    [real, imag]
}

/// The typed function of a complex unary op that stays complex.
pub fn complex_unop<T: Float>(op: UnaryOp) -> OpResult<fn(Cplx<T>) -> Cplx<T>> {
    Ok(match op {
        UnaryOp::Negate => |z| [z[0].neg(), z[1].neg()],
        UnaryOp::Exp => c_exp::<T>,
        UnaryOp::Expm1 => c_expm1::<T>,
        UnaryOp::Log => c_log::<T>,
        UnaryOp::Log1p => c_log1p::<T>,
        UnaryOp::Sqrt => c_sqrt::<T>,
        UnaryOp::Sign => c_sign::<T>,
        UnaryOp::Rsqrt => c_rsqrt::<T>,
        UnaryOp::Sin => |z| c_sin_cos(z, false),
        UnaryOp::Cos => |z| c_sin_cos(z, true),
        UnaryOp::Tanh => |z| c_tanh_of(z[0], z[1]),
        // tan(a+bi) = -i tanh(-b + ai).
        UnaryOp::Tan => |z| {
            let [re, im] = c_tanh_of(z[1].neg(), z[0]);
            [im, T::from_f64(-1.0).fmul(re)]
        },
        _ => return unsupported(format!("{} on a complex type", op.opcode())),
    })
}

/// A complex binary function.
pub type CplxFn<T> = fn(Cplx<T>, Cplx<T>) -> Cplx<T>;

/// The typed function of a complex binary op.
pub fn complex_binop<T: Float>(op: BinaryOp) -> OpResult<CplxFn<T>> {
    Ok(match op {
        BinaryOp::Add => |a, b| [a[0].add(b[0]), a[1].add(b[1])],
        BinaryOp::Subtract => |a, b| [a[0].sub(b[0]), a[1].sub(b[1])],
        BinaryOp::Multiply => c_mul::<T>,
        BinaryOp::Divide => c_div::<T>,
        BinaryOp::Power => c_pow::<T>,
        _ => return unsupported(format!("{} on a complex type", op.opcode())),
    })
}

/// Applies a comparison direction to an ordering-like pair of booleans.
pub fn cmp_by<T: PartialOrd>(dir: CompareDirection) -> fn(T, T) -> bool {
    use CompareDirection as D;
    match dir {
        D::Eq => |a, b| a == b,
        D::Ne => |a, b| a != b,
        D::Lt => |a, b| a < b,
        D::Le => |a, b| a <= b,
        D::Gt => |a, b| a > b,
        D::Ge => |a, b| a >= b,
    }
}

/// Float comparison under XLA's total order.
pub fn total_order_cmp<T: Float>(dir: CompareDirection) -> fn(T, T) -> bool {
    use CompareDirection as D;
    match dir {
        D::Eq => |a, b| a.total_order_key() == b.total_order_key(),
        D::Ne => |a, b| a.total_order_key() != b.total_order_key(),
        D::Lt => |a, b| a.total_order_key() < b.total_order_key(),
        D::Le => |a, b| a.total_order_key() <= b.total_order_key(),
        D::Gt => |a, b| a.total_order_key() > b.total_order_key(),
        D::Ge => |a, b| a.total_order_key() >= b.total_order_key(),
    }
}

/// XLA's float clamp: a NaN bound or operand is returned as is, else `min(hi, max(x, lo))`.
pub fn float_clamp<T: Float>(lo: T, x: T, hi: T) -> T {
    if lo.is_nan() {
        return lo;
    }
    if x.is_nan() {
        return x;
    }
    if hi.is_nan() {
        return hi;
    }
    // IEEE maximum/minimum order: -0 is below +0 (XLA: clamp(+0, +0, -0) is -0).
    let negative = |a: T| a.to_f64().is_sign_negative();
    let below = |a: T, b: T| a < b || (a == b && negative(a) && !negative(b));
    let m = if below(x, lo) { lo } else { x };
    if below(hi, m) {
        hi
    } else {
        m
    }
}

/// Integer (and pred) clamp: `min(hi, max(x, lo))`.
pub fn ord_clamp<T: Ord + Copy>(lo: T, x: T, hi: T) -> T {
    hi.min(x.max(lo))
}

#[cfg(test)]
mod tests {

    #[test]
    fn complex_division_gives_xla_results_at_zero_and_infinite_denominators() {
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        let div = |a: [f32; 2], b: [f32; 2]| super::c_div(a, b);
        assert_eq!(div([1.0, 1.0], [0.0, 0.0]), [inf, inf]);
        assert_eq!(div([1.0, -2.0], [-0.0, 0.0]), [-inf, inf]);
        // Smith's algorithm alone gives inf + NaNi here, which stands (only NaN + NaNi is fixed).
        let q = div([inf, 1.0], [2.0, 0.0]);
        assert!(q[0] == inf && q[1].is_nan(), "{q:?}");
        // An infinite numerator over a finite denominator: infinities.
        assert_eq!(div([inf, nan], [2.0, 1.0]), [inf, -inf]);
        assert_eq!(div([1.0, 2.0], [inf, 0.0]), [0.0, 0.0]);
        // Ordinary values: Smith's algorithm, exact where the quotient is.
        assert_eq!(div([4.0, 2.0], [2.0, 0.0]), [2.0, 1.0]);
        assert_eq!(div([0.0, 2.0], [0.0, 1.0]), [2.0, 0.0]);
        // No overflow in |b|^2 for large denominators.
        let q = div([1e30, 1e30], [1e30, 1e30]);
        assert!((q[0] - 1.0).abs() < 1e-6 && q[1].abs() < 1e-6, "{q:?}");
        // A NaN numerator over zero stays NaN.
        assert!(div([nan, nan], [0.0, 0.0]).iter().all(|x| x.is_nan()));
    }
    use super::*;

    const D: f32 = f32::from_bits(1);

    /// XLA:CPU's results (JAX 0.8.3) at subnormal operands, from hlo-samples/math.
    #[test]
    fn subnormal_operands_as_xla_cpu_reads_them() {
        let atan2 = float_binop_xla_cpu::<f32>(BinaryOp::Atan2).unwrap();
        assert_eq!(atan2(D, 0.0), std::f32::consts::FRAC_PI_2);
        assert_eq!(atan2(0.0, -D), std::f32::consts::PI);
        assert!(atan2(D, D).is_nan());
        assert_eq!(atan2(D, f32::MIN_POSITIVE), 0.0);
        let pow = float_binop_xla_cpu::<f32>(BinaryOp::Power).unwrap();
        assert_eq!(pow(0.0, -D), f32::INFINITY);
        assert_eq!(pow(D, 0.1), 3.051_757_3e-5);
        assert_eq!(pow(D, 0.5), 2f32.powi(-75));
        assert_eq!(pow(D, -1.0), f32::INFINITY);
        assert_eq!(pow(D, D), 1.0);
        assert_eq!(pow(2.0, D), 1.0);
        assert!(pow(-2.0, D).is_nan());
        let rem = float_binop_xla_cpu::<f32>(BinaryOp::Remainder).unwrap();
        assert!(rem(0.0, D).is_nan());
        assert!(rem(f32::MIN_POSITIVE, D).is_nan());
        assert_eq!(rem(D, f32::MIN_POSITIVE), D);
    }
}
