//! Elementwise ops on whole arrays: unary, binary, compare, select, clamp.
//!
//! Each function matches the storage variant once, looks the per-element function up in
//! [`crate::scalar_ops`], and maps it over the typed vectors. An operand with a single
//! element is broadcast (HLO itself only does this for `clamp` bounds and a scalar
//! `select` predicate, but accepting it everywhere costs nothing).

use crate::error::{invalid, unsupported, OpResult};
use crate::scalar_ops::{self as so, Cplx, Float, Int, Narrow};
use half::{bf16, f16};
use hlo_ir::{ArrayData as AD, BinaryOp, CompareDirection, CompareType, UnaryOp};

pub fn map1<T: Copy, U>(x: &[T], f: impl Fn(T) -> U) -> Vec<U> {
    x.iter().map(|&a| f(a)).collect()
}

/// Zips two operands, broadcasting a single-element one.
pub fn map2<T: Copy, U: Copy, R>(x: &[T], y: &[U], f: impl Fn(T, U) -> R) -> Vec<R> {
    if x.len() == y.len() {
        x.iter().zip(y).map(|(&a, &b)| f(a, b)).collect()
    } else if x.len() == 1 {
        y.iter().map(|&b| f(x[0], b)).collect()
    } else {
        x.iter().map(|&a| f(a, y[0])).collect()
    }
}

/// Zips three operands, broadcasting single-element ones to the longest.
pub fn map3<A: Copy, B: Copy, C: Copy, R>(a: &[A], b: &[B], c: &[C], f: impl Fn(A, B, C) -> R) -> Vec<R> {
    let n = a.len().max(b.len()).max(c.len());
    let pick = |len: usize, i: usize| if len == 1 { 0 } else { i };
    (0..n).map(|i| f(a[pick(a.len(), i)], b[pick(b.len(), i)], c[pick(c.len(), i)])).collect()
}

/// A float binary op with the common ops as inlined closures: through a fn pointer,
/// the call per element costs more than the arithmetic.
fn float_map2<T: Float>(op: BinaryOp, a: &[T], b: &[T]) -> OpResult<Vec<T>> {
    Ok(match op {
        BinaryOp::Add => map2(a, b, |x: T, y: T| x.add(y)),
        BinaryOp::Subtract => map2(a, b, |x: T, y: T| x.sub(y)),
        BinaryOp::Multiply => map2(a, b, |x: T, y: T| x.mul(y)),
        BinaryOp::Divide => map2(a, b, |x: T, y: T| x.div(y)),
        _ => map2(a, b, so::float_binop::<T>(op)?),
    })
}

/// An integer binary op with the common ops inlined (see [`float_map2`]).
fn int_map2<T: Int>(op: BinaryOp, a: &[T], b: &[T]) -> OpResult<Vec<T>> {
    Ok(match op {
        BinaryOp::Add => map2(a, b, |x: T, y: T| x.wadd(y)),
        BinaryOp::Subtract => map2(a, b, |x: T, y: T| x.wsub(y)),
        BinaryOp::Multiply => map2(a, b, |x: T, y: T| x.wmul(y)),
        BinaryOp::And => map2(a, b, |x: T, y: T| x.and(y)),
        BinaryOp::Or => map2(a, b, |x: T, y: T| x.or(y)),
        BinaryOp::Xor => map2(a, b, |x: T, y: T| x.xor(y)),
        BinaryOp::Maximum => map2(a, b, |x: T, y: T| x.max(y)),
        BinaryOp::Minimum => map2(a, b, |x: T, y: T| x.min(y)),
        _ => map2(a, b, so::int_binop::<T>(op)?),
    })
}

fn narrow1<H: Narrow>(x: &[H], f: fn(f32) -> f32) -> Vec<H> {
    map1(x, |a| H::from_f32(f(a.to_f32())))
}

fn narrow2<H: Narrow>(x: &[H], y: &[H], f: fn(f32, f32) -> f32) -> Vec<H> {
    map2(x, y, |a, b| H::from_f32(f(a.to_f32(), b.to_f32())))
}

/// A unary op whose result has the operand's element type, except for the
/// type-changing cases handled first (`is-finite`, and `abs`/`real`/`imag` of complex).
pub fn unary(op: UnaryOp, x: &AD) -> OpResult<AD> {
    if op == UnaryOp::IsFinite {
        return Ok(AD::Pred(match x {
            AD::F16(v) => map1(v, |a| a.is_finite()),
            AD::BF16(v) => map1(v, |a| a.is_finite()),
            AD::F32(v) => map1(v, |a| a.is_finite()),
            AD::F64(v) => map1(v, |a| a.is_finite()),
            _ => return unsupported("is-finite of a non-float type"),
        }));
    }
    match (op, x) {
        (UnaryOp::Abs, AD::C64(v)) => return Ok(AD::F32(map1(v, so::c_abs))),
        (UnaryOp::Abs, AD::C128(v)) => return Ok(AD::F64(map1(v, so::c_abs))),
        (UnaryOp::Real, AD::C64(v)) => return Ok(AD::F32(map1(v, |z| z[0]))),
        (UnaryOp::Real, AD::C128(v)) => return Ok(AD::F64(map1(v, |z| z[0]))),
        (UnaryOp::Imag, AD::C64(v)) => return Ok(AD::F32(map1(v, |z| z[1]))),
        (UnaryOp::Imag, AD::C128(v)) => return Ok(AD::F64(map1(v, |z| z[1]))),
        _ => {}
    }
    Ok(match x {
        AD::Pred(v) => AD::Pred(map1(v, so::pred_unop(op)?)),
        AD::S8(v) => AD::S8(map1(v, so::int_unop::<i8>(op)?)),
        AD::S16(v) => AD::S16(map1(v, so::int_unop::<i16>(op)?)),
        AD::S32(v) => AD::S32(map1(v, so::int_unop::<i32>(op)?)),
        AD::S64(v) => AD::S64(map1(v, so::int_unop::<i64>(op)?)),
        AD::U8(v) => AD::U8(map1(v, so::int_unop::<u8>(op)?)),
        AD::U16(v) => AD::U16(map1(v, so::int_unop::<u16>(op)?)),
        AD::U32(v) => AD::U32(map1(v, so::int_unop::<u32>(op)?)),
        AD::U64(v) => AD::U64(map1(v, so::int_unop::<u64>(op)?)),
        AD::F16(v) => AD::F16(narrow1(v, so::float_unop::<f32>(op)?)),
        AD::BF16(v) => AD::BF16(narrow1(v, so::float_unop::<f32>(op)?)),
        AD::F32(v) => AD::F32(map1(v, so::float_unop::<f32>(op)?)),
        AD::F64(v) => AD::F64(map1(v, so::float_unop::<f64>(op)?)),
        AD::C64(v) => AD::C64(map1(v, so::complex_unop::<f32>(op)?)),
        AD::C128(v) => AD::C128(map1(v, so::complex_unop::<f64>(op)?)),
        AD::Bits(_) => return unsupported(format!("{} on an 8- or 4-bit float type", op.opcode())),
    })
}

/// [`binary`] in XLA:CPU's float environment for the ops that read subnormal operands
/// themselves (`atan2`, `pow`, `remainder`: [`so::reads_subnormal_operands`]); the caller passes
/// their operands unflushed.
pub fn binary_xla_cpu(op: BinaryOp, x: &AD, y: &AD) -> OpResult<AD> {
    Ok(match (x, y) {
        (AD::F16(a), AD::F16(b)) => AD::F16(narrow2(a, b, so::float_binop_xla_cpu::<f32>(op)?)),
        (AD::BF16(a), AD::BF16(b)) => AD::BF16(narrow2(a, b, so::float_binop_xla_cpu::<f32>(op)?)),
        (AD::F32(a), AD::F32(b)) => AD::F32(map2(a, b, so::float_binop_xla_cpu::<f32>(op)?)),
        (AD::F64(a), AD::F64(b)) => AD::F64(map2(a, b, so::float_binop_xla_cpu::<f64>(op)?)),
        _ => return binary(op, x, y),
    })
}

/// A binary op; `complex` builds a complex array, everything else keeps the element type.
pub fn binary(op: BinaryOp, x: &AD, y: &AD) -> OpResult<AD> {
    if op == BinaryOp::Complex {
        return Ok(match (x, y) {
            (AD::F32(a), AD::F32(b)) => AD::C64(map2(a, b, |re, im| [re, im])),
            (AD::F64(a), AD::F64(b)) => AD::C128(map2(a, b, |re, im| [re, im])),
            _ => return unsupported("complex of non-f32/f64 parts"),
        });
    }
    Ok(match (x, y) {
        (AD::Pred(a), AD::Pred(b)) => AD::Pred(map2(a, b, so::pred_binop(op)?)),
        (AD::S8(a), AD::S8(b)) => AD::S8(int_map2(op, a, b)?),
        (AD::S16(a), AD::S16(b)) => AD::S16(int_map2(op, a, b)?),
        (AD::S32(a), AD::S32(b)) => AD::S32(int_map2(op, a, b)?),
        (AD::S64(a), AD::S64(b)) => AD::S64(int_map2(op, a, b)?),
        (AD::U8(a), AD::U8(b)) => AD::U8(int_map2(op, a, b)?),
        (AD::U16(a), AD::U16(b)) => AD::U16(int_map2(op, a, b)?),
        (AD::U32(a), AD::U32(b)) => AD::U32(int_map2(op, a, b)?),
        (AD::U64(a), AD::U64(b)) => AD::U64(int_map2(op, a, b)?),
        (AD::F16(a), AD::F16(b)) => AD::F16(narrow2(a, b, so::float_binop::<f32>(op)?)),
        (AD::BF16(a), AD::BF16(b)) => AD::BF16(narrow2(a, b, so::float_binop::<f32>(op)?)),
        (AD::F32(a), AD::F32(b)) => AD::F32(float_map2(op, a, b)?),
        (AD::F64(a), AD::F64(b)) => AD::F64(float_map2(op, a, b)?),
        (AD::C64(a), AD::C64(b)) => AD::C64(map2(a, b, so::complex_binop::<f32>(op)?)),
        (AD::C128(a), AD::C128(b)) => AD::C128(map2(a, b, so::complex_binop::<f64>(op)?)),
        (AD::Bits(_), AD::Bits(_)) => return unsupported(format!("{} on an 8- or 4-bit float type", op.opcode())),
        _ => return invalid(format!("{} operands have different element types", op.opcode())),
    })
}

fn cmp_float<T: Float>(a: &[T], b: &[T], dir: CompareDirection, total: bool) -> Vec<bool> {
    if total {
        return map2(a, b, so::total_order_cmp::<T>(dir));
    }
    cmp_inline(a, b, dir)
}

/// Comparison with the direction resolved outside the loop and the compare inlined.
fn cmp_inline<T: PartialOrd + Copy>(a: &[T], b: &[T], dir: CompareDirection) -> Vec<bool> {
    use CompareDirection as D;
    match dir {
        D::Eq => map2(a, b, |x: T, y: T| x == y),
        D::Ne => map2(a, b, |x: T, y: T| x != y),
        D::Lt => map2(a, b, |x: T, y: T| x < y),
        D::Le => map2(a, b, |x: T, y: T| x <= y),
        D::Gt => map2(a, b, |x: T, y: T| x > y),
        D::Ge => map2(a, b, |x: T, y: T| x >= y),
    }
}

fn cmp_narrow<H: Narrow>(a: &[H], b: &[H], dir: CompareDirection, total: bool) -> Vec<bool> {
    // Widening to f32 is exact and keeps the (total) order.
    let f = if total { so::total_order_cmp::<f32>(dir) } else { so::cmp_by::<f32>(dir) };
    map2(a, b, |p, q| f(p.to_f32(), q.to_f32()))
}

fn cmp_complex<T: Float>(a: &[Cplx<T>], b: &[Cplx<T>], dir: CompareDirection) -> OpResult<Vec<bool>> {
    match dir {
        CompareDirection::Eq => Ok(map2(a, b, |p, q| p == q)),
        CompareDirection::Ne => Ok(map2(a, b, |p, q| p != q)),
        _ => unsupported("ordered comparison of complex numbers"),
    }
}

fn cmp_int<T: Int>(a: &[T], b: &[T], dir: CompareDirection) -> Vec<bool> {
    cmp_inline(a, b, dir)
}

/// `compare`; `TOTALORDER` changes float comparisons, integer comparisons follow the type.
pub fn compare(dir: CompareDirection, ty: Option<CompareType>, x: &AD, y: &AD) -> OpResult<AD> {
    let total = ty == Some(CompareType::TotalOrder);
    Ok(AD::Pred(match (x, y) {
        (AD::Pred(a), AD::Pred(b)) => map2(a, b, so::cmp_by::<bool>(dir)),
        (AD::S8(a), AD::S8(b)) => cmp_int(a, b, dir),
        (AD::S16(a), AD::S16(b)) => cmp_int(a, b, dir),
        (AD::S32(a), AD::S32(b)) => cmp_int(a, b, dir),
        (AD::S64(a), AD::S64(b)) => cmp_int(a, b, dir),
        (AD::U8(a), AD::U8(b)) => cmp_int(a, b, dir),
        (AD::U16(a), AD::U16(b)) => cmp_int(a, b, dir),
        (AD::U32(a), AD::U32(b)) => cmp_int(a, b, dir),
        (AD::U64(a), AD::U64(b)) => cmp_int(a, b, dir),
        (AD::F16(a), AD::F16(b)) => cmp_narrow(a, b, dir, total),
        (AD::BF16(a), AD::BF16(b)) => cmp_narrow(a, b, dir, total),
        (AD::F32(a), AD::F32(b)) => cmp_float(a, b, dir, total),
        (AD::F64(a), AD::F64(b)) => cmp_float(a, b, dir, total),
        (AD::C64(a), AD::C64(b)) => cmp_complex(a, b, dir)?,
        (AD::C128(a), AD::C128(b)) => cmp_complex(a, b, dir)?,
        (AD::Bits(_), AD::Bits(_)) => return unsupported("compare of 8- or 4-bit floats"),
        _ => return invalid("compare operands have different element types"),
    }))
}

/// `select(pred, on_true, on_false)`.
pub fn select(p: &AD, t: &AD, f: &AD) -> OpResult<AD> {
    let AD::Pred(p) = p else {
        return invalid("select predicate is not pred");
    };
    let res = crate::array::map_data2!(t, f, a, b => map3(p, a, b, |c, x, y| if c { x } else { y }));
    match res {
        Some(res) => Ok(res),
        None => invalid("select branches have different element types"),
    }
}

/// `clamp(lo, x, hi)` with scalar or full-size bounds.
pub fn clamp(lo: &AD, x: &AD, hi: &AD) -> OpResult<AD> {
    macro_rules! ord {
        ($v:ident, $l:expr, $x:expr, $h:expr) => {
            AD::$v(map3($l, $x, $h, so::ord_clamp))
        };
    }
    Ok(match (lo, x, hi) {
        (AD::Pred(l), AD::Pred(v), AD::Pred(h)) => ord!(Pred, l, v, h),
        (AD::S8(l), AD::S8(v), AD::S8(h)) => ord!(S8, l, v, h),
        (AD::S16(l), AD::S16(v), AD::S16(h)) => ord!(S16, l, v, h),
        (AD::S32(l), AD::S32(v), AD::S32(h)) => ord!(S32, l, v, h),
        (AD::S64(l), AD::S64(v), AD::S64(h)) => ord!(S64, l, v, h),
        (AD::U8(l), AD::U8(v), AD::U8(h)) => ord!(U8, l, v, h),
        (AD::U16(l), AD::U16(v), AD::U16(h)) => ord!(U16, l, v, h),
        (AD::U32(l), AD::U32(v), AD::U32(h)) => ord!(U32, l, v, h),
        (AD::U64(l), AD::U64(v), AD::U64(h)) => ord!(U64, l, v, h),
        (AD::F16(l), AD::F16(v), AD::F16(h)) => AD::F16(map3(l, v, h, |a: f16, b: f16, c: f16| {
            f16::from_f32(so::float_clamp(a.to_f32(), b.to_f32(), c.to_f32()))
        })),
        (AD::BF16(l), AD::BF16(v), AD::BF16(h)) => AD::BF16(map3(l, v, h, |a: bf16, b: bf16, c: bf16| {
            bf16::from_f32(so::float_clamp(a.to_f32(), b.to_f32(), c.to_f32()))
        })),
        (AD::F32(l), AD::F32(v), AD::F32(h)) => AD::F32(map3(l, v, h, so::float_clamp)),
        (AD::F64(l), AD::F64(v), AD::F64(h)) => AD::F64(map3(l, v, h, so::float_clamp)),
        _ => return unsupported("clamp of complex or 8-bit float types, or mixed element types"),
    })
}
