//! Evaluation options: pure HLO semantics by default, or XLA:CPU's floating-point
//! environment for reproducing JAX's CPU results bit for bit.
//!
//! Two properties of compiled XLA:CPU code are not part of HLO's semantics, and both
//! show up in real programs' outputs:
//! - it runs with denormals flushed (x86 MXCSR DAZ|FTZ): arithmetic reads subnormal
//!   inputs as zero and writes subnormal results as zero, while bit-level ops (`abs`,
//!   `negate`, `select`, copies, total-order compares) pass them through;
//! - LLVM contracts a float multiply feeding an add or subtract into one fused
//!   multiply-add (single rounding) when the product has no other user, preferring the
//!   left operand, which changes chaotic results such as Mandelbrot escape counts.
//!
//! [`Options::default`] follows XLA's reference evaluator (no flushing, no contraction);
//! [`Options::xla_cpu`] turns both on.
//!
//! [`Options::memory_limit`] bounds the bytes the evaluator holds at once (values plus
//! the index tables an op builds), so that a huge shape is an error instead of an abort.

use crate::array::map_data;
use hlo_ir::ArrayData as AD;
use std::borrow::Cow;

/// How floating-point arithmetic is carried out, and how much memory evaluation may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Read subnormal inputs of float arithmetic as zero and flush subnormal results to zero.
    pub flush_denormals: bool,
    /// Compute `add`/`subtract` of a single-use f32/f64 `multiply` as a fused multiply-add.
    pub contract_fma: bool,
    /// The most bytes evaluation may hold at once; an instruction that would go past it fails
    /// with [`crate::InterpError::OutOfMemory`] before allocating. `None`: no limit.
    pub memory_limit: Option<u64>,
    /// The most iterations any one `while` may run before evaluation fails with
    /// [`crate::InterpError::TooManyIterations`]. `None`: no limit (a loop that never ends
    /// is the program's own meaning).
    pub max_while_iterations: Option<u64>,
}

impl Options {
    /// The floating-point environment of XLA:CPU-compiled code (what JAX on CPU computes).
    pub fn xla_cpu() -> Options {
        Options { flush_denormals: true, contract_fma: true, ..Options::default() }
    }
}

/// A flush-to-zero view of one element (subnormal f32/f64/bf16 values become signed zero).
pub trait Flush: Copy {
    fn flush(self) -> Self;
}

impl Flush for f32 {
    fn flush(self) -> Self {
        if self.is_subnormal() {
            0.0f32.copysign(self)
        } else {
            self
        }
    }
}

impl Flush for f64 {
    fn flush(self) -> Self {
        if self.is_subnormal() {
            0.0f64.copysign(self)
        } else {
            self
        }
    }
}

impl Flush for half::bf16 {
    fn flush(self) -> Self {
        // bf16 has f32's exponent range: its subnormals are f32 subnormals.
        if self.to_f32().is_subnormal() {
            half::bf16::from_f32(0.0f32.copysign(self.to_f32()))
        } else {
            self
        }
    }
}

fn has_subnormals(data: &AD) -> bool {
    match data {
        AD::F32(v) => v.iter().any(|x| x.is_subnormal()),
        AD::F64(v) => v.iter().any(|x| x.is_subnormal()),
        AD::BF16(v) => v.iter().any(|x| x.to_f32().is_subnormal()),
        AD::C64(v) => v.iter().any(|z| z[0].is_subnormal() || z[1].is_subnormal()),
        AD::C128(v) => v.iter().any(|z| z[0].is_subnormal() || z[1].is_subnormal()),
        _ => false,
    }
}

/// Flushes subnormal elements of `data` to signed zero in place.
pub fn flush_in_place(data: &mut AD) {
    match data {
        AD::F32(v) => v.iter_mut().for_each(|x| *x = x.flush()),
        AD::F64(v) => v.iter_mut().for_each(|x| *x = x.flush()),
        AD::BF16(v) => v.iter_mut().for_each(|x| *x = x.flush()),
        // Each part of a complex number, as XLA:CPU's arithmetic on the parts flushes them.
        AD::C64(v) => v.iter_mut().for_each(|z| *z = [z[0].flush(), z[1].flush()]),
        AD::C128(v) => v.iter_mut().for_each(|z| *z = [z[0].flush(), z[1].flush()]),
        _ => {}
    }
}

/// Flushes the elements of `data` at `at` (`usize::MAX` entries are skipped).
pub fn flush_at(data: &mut AD, at: &[usize]) {
    fn each<T: Copy>(v: &mut [T], at: &[usize], f: impl Fn(T) -> T) {
        for &i in at {
            if let Some(x) = v.get_mut(i) {
                *x = f(*x);
            }
        }
    }
    match data {
        AD::F32(v) => each(v, at, |x| x.flush()),
        AD::F64(v) => each(v, at, |x| x.flush()),
        AD::BF16(v) => each(v, at, |x| x.flush()),
        _ => {}
    }
}

/// `data` with subnormals flushed, borrowing when there is nothing to flush.
pub fn flushed(data: &AD) -> Cow<'_, AD> {
    if has_subnormals(data) {
        let mut res = map_data!(data, v => v.clone());
        flush_in_place(&mut res);
        Cow::Owned(res)
    } else {
        Cow::Borrowed(data)
    }
}
