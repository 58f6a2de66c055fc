//! Dense linear algebra: the LAPACK custom calls JAX emits on CPU
//! (`lapack_{s,d}{potrf,getrf,geqrf,orgqr,trsm}_ffi`, and `syevd` and `gesdd` in
//! [`crate::lapack_eig`]) and XLA's own `cholesky` and `triangular-solve` opcodes.
//!
//! Each runs LAPACK's unblocked algorithm in the element type (f32 or f64): `potf2`, `getf2`,
//! `geqr2` (`larfg` + `larf`), `org2r` and `trsm`'s substitutions. LAPACK's blocked and recursive
//! drivers order the same arithmetic differently, so results agree with JAX's to rounding, not
//! bit for bit. The visible conventions are LAPACK's: `getrf`'s pivots are 1-based and pick the
//! first row of largest magnitude; `info` is 0 on success, else the 1-based column where `potrf`
//! met a diagonal that is not positive (or NaN) or where `getrf` met a zero pivot; `geqrf` stores
//! `beta = -sign(alpha) * norm` on the diagonal, `tau = (beta - alpha) / beta` and the vectors
//! below it scaled so that `v[0] = 1` (a zero column gives `tau = 0`).
//!
//! Matrices are the two minor dimensions of the logical (row-major) arrays; the custom calls'
//! column-major layouts say how LAPACK lays them out in memory, not what they hold. Leading
//! dimensions are batch dimensions (`num_batch_dims`).

use crate::array::{array_of, make};
use crate::error::{invalid, unsupported, OpResult};
use hlo_ir::{ArrayData, ArrayShape, Literal, LiteralData, Shape, TransposeKind};
use std::ops::{Add, Div, Mul, Neg, Sub};

/// The real element types the routines run in.
pub(crate) trait Real:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    /// LAPACK's `safe minimum` (`lamch('S')`).
    const SAFE_MIN: Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    fn is_nan(self) -> bool;
    fn nan() -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const SAFE_MIN: Self = f32::MIN_POSITIVE;
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn abs(self) -> Self {
        f32::abs(self)
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn nan() -> Self {
        f32::NAN
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const SAFE_MIN: Self = f64::MIN_POSITIVE;
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn abs(self) -> Self {
        f64::abs(self)
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn nan() -> Self {
        f64::NAN
    }
}

/// One byte of a `backend_config={uplo = 76 : ui8, ...}` attribute, as a character.
pub fn config_char(backend_config: Option<&str>, key: &str) -> Option<char> {
    let text = backend_config?;
    let mut rest = text;
    while let Some(at) = rest.find(key) {
        let before_ok = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric() && rest.as_bytes()[at - 1] != b'_';
        let after = &rest[at + key.len()..];
        let after_trim = after.trim_start();
        if before_ok && (after_trim.starts_with('=') || after_trim.starts_with(':')) {
            let value = after_trim[1..].trim_start().trim_start_matches('"');
            let digits: String = value.chars().take_while(|c| c.is_ascii_digit()).collect();
            return digits.parse::<u8>().ok().map(char::from);
        }
        rest = after;
    }
    None
}

/// The routine of a LAPACK FFI target (`lapack_spotrf_ffi` -> (`'s'`, `"potrf"`)).
pub fn lapack_routine(target: &str) -> Option<(char, &str)> {
    let name = target.strip_prefix("lapack_")?.strip_suffix("_ffi")?;
    let kind = name.chars().next()?;
    matches!(kind, 's' | 'd' | 'c' | 'z').then(|| (kind, &name[1..]))
}

/// The LAPACK routines that [`custom_call`] evaluates (and `linalg-expander` expands).
pub const ROUTINES: &[&str] = &["potrf", "getrf", "geqrf", "orgqr", "trsm", "syevd", "gesdd"];

/// A LAPACK custom call, or `None` when `target` is not one this module knows.
pub(crate) fn custom_call(
    target: &str,
    backend_config: Option<&str>,
    out: &Shape,
    ops: &[&Literal],
) -> Option<OpResult<Literal>> {
    let (kind, routine) = lapack_routine(target)?;
    if !ROUTINES.contains(&routine) {
        return None;
    }
    if matches!(kind, 'c' | 'z') {
        return Some(unsupported(format!("custom-call target \"{target}\" (complex LAPACK routines)")));
    }
    let cfg = |key| config_char(backend_config, key);
    Some(match routine {
        "potrf" => potrf(cfg("uplo") != Some('U'), out, ops),
        "getrf" => getrf(out, ops),
        "geqrf" => geqrf(out, ops),
        "orgqr" => orgqr(out, ops),
        "syevd" => crate::lapack_eig::syevd(cfg("uplo") != Some('U'), out, ops),
        "gesdd" => crate::lapack_eig::gesdd(cfg("mode"), out, ops),
        "trsm" => {
            let transpose = match cfg("trans_x") {
                Some('T') => TransposeKind::Transpose,
                Some('C') => TransposeKind::Adjoint,
                _ => TransposeKind::NoTranspose,
            };
            triangular_solve(
                cfg("side") != Some('R'),
                cfg("uplo") != Some('U'),
                cfg("diag") == Some('U'),
                transpose,
                out,
                ops,
            )
        }
        _ => unreachable!("checked against ROUTINES"),
    })
}

fn array_out(out: &Shape, index: Option<usize>) -> OpResult<&ArrayShape> {
    let shape = match index {
        None => Some(out),
        Some(i) => out.as_tuple().and_then(|t| t.get(i)),
    };
    match shape.and_then(Shape::as_array) {
        Some(a) => Ok(a),
        None => invalid(format!("unexpected result shape {out}")),
    }
}

/// Batch count and the two minor dimensions of a matrix operand.
fn matrix_dims(shape: &ArrayShape) -> OpResult<(usize, usize, usize)> {
    let r = shape.dims.len();
    if r < 2 {
        return invalid(format!("expected a matrix, got {shape}"));
    }
    let batch: i64 = shape.dims[..r - 2].iter().product();
    Ok((batch as usize, shape.dims[r - 2] as usize, shape.dims[r - 1] as usize))
}

fn tuple(out: &Shape, elems: Vec<Literal>) -> Literal {
    Literal { shape: out.clone(), data: LiteralData::Tuple(elems) }
}

fn s32(shape: &ArrayShape, v: Vec<i32>) -> Literal {
    make(shape, ArrayData::S32(v))
}

/// Runs `$body` with `$v` bound to the f32 or f64 payload of `$data`, wrapping the result's
/// vectors back with the same variant.
macro_rules! real_dispatch {
    ($data:expr, |$v:ident| $body:expr) => {
        match $data {
            ArrayData::F32(v) => {
                let $v = v.clone();
                let (res, extra) = $body;
                (ArrayData::F32(res), extra)
            }
            ArrayData::F64(v) => {
                let $v = v.clone();
                let (res, extra) = $body;
                (ArrayData::F64(res), extra)
            }
            _ => return unsupported("linear algebra on elements other than f32 and f64"),
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Cholesky

/// `potrf`: `(factor, info)`; the factor's other triangle keeps the input's values.
fn potrf(lower: bool, out: &Shape, ops: &[&Literal]) -> OpResult<Literal> {
    let (shape, data) = array_of(ops[0])?;
    let (batch, n, n2) = matrix_dims(shape)?;
    if n != n2 {
        return invalid("potrf needs square matrices");
    }
    let (res, info) = real_dispatch!(data, |v| potrf_all(v, batch, n, lower));
    Ok(tuple(out, vec![make(array_out(out, Some(0))?, res), s32(array_out(out, Some(1))?, info)]))
}

fn potrf_all<T: Real>(mut a: Vec<T>, batch: usize, n: usize, lower: bool) -> (Vec<T>, Vec<i32>) {
    let info = (0..batch).map(|b| potf2(&mut a[b * n * n..(b + 1) * n * n], n, lower)).collect();
    (a, info)
}

/// LAPACK's `potf2` on one row-major matrix: the lower factor `L` (`A = L L^T`) by columns, or
/// the upper one (`A = U^T U`) by rows, which is the same algorithm on the transpose.
pub(crate) fn potf2<T: Real>(a: &mut [T], n: usize, lower: bool) -> i32 {
    // (i, j) of the lower-triangle view.
    let at = |i: usize, j: usize| if lower { i * n + j } else { j * n + i };
    for j in 0..n {
        let mut ajj = a[at(j, j)];
        for k in 0..j {
            ajj = ajj - a[at(j, k)] * a[at(j, k)];
        }
        if ajj <= T::ZERO || ajj.is_nan() {
            a[at(j, j)] = ajj;
            return j as i32 + 1;
        }
        let ajj = ajj.sqrt();
        a[at(j, j)] = ajj;
        let r = T::ONE / ajj;
        for i in j + 1..n {
            let mut s = a[at(i, j)];
            for k in 0..j {
                s = s - a[at(i, k)] * a[at(j, k)];
            }
            a[at(i, j)] = s * r;
        }
    }
    0
}

/// XLA's `cholesky`: the factor with zeros in the other triangle, all NaN where the matrix is
/// not positive definite (as XLA's `CholeskyExpander` returns).
pub(crate) fn cholesky(lower: bool, out: &Shape, ops: &[&Literal]) -> OpResult<Literal> {
    let (shape, data) = array_of(ops[0])?;
    let (batch, n, n2) = matrix_dims(shape)?;
    if n != n2 {
        return invalid("cholesky needs square matrices");
    }
    fn run<T: Real>(mut a: Vec<T>, batch: usize, n: usize, lower: bool) -> (Vec<T>, ()) {
        for b in 0..batch {
            let m = &mut a[b * n * n..(b + 1) * n * n];
            let info = potf2(m, n, lower);
            for i in 0..n {
                for j in 0..n {
                    if info != 0 {
                        m[i * n + j] = T::nan();
                    } else if (lower && j > i) || (!lower && j < i) {
                        m[i * n + j] = T::ZERO;
                    }
                }
            }
        }
        (a, ())
    }
    let (res, ()) = real_dispatch!(data, |v| run(v, batch, n, lower));
    Ok(make(array_out(out, None)?, res))
}

// ---------------------------------------------------------------------------------------------
// Triangular solve

/// `op(A) X = B` (left side) or `X op(A) = B`, `A` lower or upper triangular (the other triangle
/// is never read), with a unit diagonal that is never read when `unit_diagonal`.
pub(crate) fn triangular_solve(
    left_side: bool,
    lower: bool,
    unit_diagonal: bool,
    transpose: TransposeKind,
    out: &Shape,
    ops: &[&Literal],
) -> OpResult<Literal> {
    if ops.len() != 2 {
        return invalid("a triangular solve takes (a, b)");
    }
    let (a_shape, a_data) = array_of(ops[0])?;
    let (b_shape, b_data) = array_of(ops[1])?;
    let (batch, k, k2) = matrix_dims(a_shape)?;
    let (b_batch, m, n) = matrix_dims(b_shape)?;
    if k != k2 || batch != b_batch || (left_side && k != m) || (!left_side && k != n) {
        return invalid(format!("triangular solve of {a_shape} and {b_shape}"));
    }
    let transposed = transpose != TransposeKind::NoTranspose;
    let (res, ()) = match (a_data, b_data) {
        (ArrayData::F32(a), ArrayData::F32(b)) => {
            let (r, ()) = trsm_all(a, b.clone(), batch, k, m, n, left_side, lower, unit_diagonal, transposed);
            (ArrayData::F32(r), ())
        }
        (ArrayData::F64(a), ArrayData::F64(b)) => {
            let (r, ()) = trsm_all(a, b.clone(), batch, k, m, n, left_side, lower, unit_diagonal, transposed);
            (ArrayData::F64(r), ())
        }
        _ => return unsupported(format!("triangular solve on {a_shape}")),
    };
    Ok(make(array_out(out, None)?, res))
}

#[allow(clippy::too_many_arguments)]
fn trsm_all<T: Real>(
    a: &[T],
    mut b: Vec<T>,
    batch: usize,
    k: usize,
    m: usize,
    n: usize,
    left_side: bool,
    lower: bool,
    unit: bool,
    transposed: bool,
) -> (Vec<T>, ()) {
    for bi in 0..batch {
        let a = &a[bi * k * k..(bi + 1) * k * k];
        let b = &mut b[bi * m * n..(bi + 1) * m * n];
        if left_side {
            // op(A) X = B, one column of B at a time. M(i, j) = op(A)(i, j).
            let get = |i: usize, j: usize| if transposed { a[j * k + i] } else { a[i * k + j] };
            for col in 0..n {
                substitute(k, &get, lower != transposed, unit, |i| i * n + col, b);
            }
        } else {
            // X op(A) = B  <=>  op(A)^T x_r = b_r for each row r.
            let get = |i: usize, j: usize| if transposed { a[i * k + j] } else { a[j * k + i] };
            for row in 0..m {
                substitute(k, &get, lower == transposed, unit, |i| row * n + i, b);
            }
        }
    }
    (b, ())
}

/// Solves `M x = b` in place for a lower (forward) or upper (backward) triangular `M`.
fn substitute<T: Real>(
    k: usize,
    get: &impl Fn(usize, usize) -> T,
    lower: bool,
    unit: bool,
    at: impl Fn(usize) -> usize,
    b: &mut [T],
) {
    let order: Vec<usize> = if lower { (0..k).collect() } else { (0..k).rev().collect() };
    for &i in &order {
        let mut s = b[at(i)];
        let range: Vec<usize> = if lower { (0..i).collect() } else { (i + 1..k).collect() };
        for j in range {
            s = s - get(i, j) * b[at(j)];
        }
        b[at(i)] = if unit { s } else { s / get(i, i) };
    }
}

// ---------------------------------------------------------------------------------------------
// LU

/// `getrf`: `(lu, ipiv, info)` with partial pivoting (LAPACK's `getf2`).
fn getrf(out: &Shape, ops: &[&Literal]) -> OpResult<Literal> {
    let (shape, data) = array_of(ops[0])?;
    let (batch, m, n) = matrix_dims(shape)?;
    let (res, (ipiv, info)) = real_dispatch!(data, |v| getrf_all(v, batch, m, n));
    Ok(tuple(
        out,
        vec![
            make(array_out(out, Some(0))?, res),
            s32(array_out(out, Some(1))?, ipiv),
            s32(array_out(out, Some(2))?, info),
        ],
    ))
}

#[allow(clippy::type_complexity)]
fn getrf_all<T: Real>(mut a: Vec<T>, batch: usize, m: usize, n: usize) -> (Vec<T>, (Vec<i32>, Vec<i32>)) {
    let kmin = m.min(n);
    let mut ipiv = Vec::with_capacity(batch * kmin);
    let mut info = Vec::with_capacity(batch);
    for b in 0..batch {
        let a = &mut a[b * m * n..(b + 1) * m * n];
        let mut inf = 0;
        for j in 0..kmin {
            // isamax: the first largest magnitude (a NaN is never larger).
            let mut p = j;
            let mut best = a[j * n + j].abs();
            for i in j + 1..m {
                if a[i * n + j].abs() > best {
                    best = a[i * n + j].abs();
                    p = i;
                }
            }
            ipiv.push(p as i32 + 1);
            let pivot = a[p * n + j];
            if pivot != T::ZERO {
                if p != j {
                    for c in 0..n {
                        a.swap(j * n + c, p * n + c);
                    }
                }
                if pivot.abs() >= T::SAFE_MIN {
                    let r = T::ONE / pivot;
                    for i in j + 1..m {
                        a[i * n + j] = a[i * n + j] * r;
                    }
                } else {
                    for i in j + 1..m {
                        a[i * n + j] = a[i * n + j] / pivot;
                    }
                }
            } else if inf == 0 {
                inf = j as i32 + 1;
            }
            for i in j + 1..m {
                let l = a[i * n + j];
                for c in j + 1..n {
                    a[i * n + c] = a[i * n + c] - l * a[j * n + c];
                }
            }
        }
        info.push(inf);
    }
    (a, (ipiv, info))
}

// ---------------------------------------------------------------------------------------------
// QR

/// `geqrf`: `(a, tau)`: `R` on and above the diagonal, the Householder vectors below it.
fn geqrf(out: &Shape, ops: &[&Literal]) -> OpResult<Literal> {
    let (shape, data) = array_of(ops[0])?;
    let (batch, m, n) = matrix_dims(shape)?;
    let tau_shape = array_out(out, Some(1))?;
    let (res, tau) = match data {
        ArrayData::F32(v) => {
            let (r, t) = geqrf_all(v.clone(), batch, m, n);
            (ArrayData::F32(r), ArrayData::F32(t))
        }
        ArrayData::F64(v) => {
            let (r, t) = geqrf_all(v.clone(), batch, m, n);
            (ArrayData::F64(r), ArrayData::F64(t))
        }
        _ => return unsupported(format!("geqrf on {shape}")),
    };
    Ok(tuple(out, vec![make(array_out(out, Some(0))?, res), make(tau_shape, tau)]))
}

fn geqrf_all<T: Real>(mut a: Vec<T>, batch: usize, m: usize, n: usize) -> (Vec<T>, Vec<T>) {
    let k = m.min(n);
    let mut taus = Vec::with_capacity(batch * k);
    for b in 0..batch {
        let a = &mut a[b * m * n..(b + 1) * m * n];
        for i in 0..k {
            // larfg on a[i.., i].
            let alpha = a[i * n + i];
            let mut xnorm2 = T::ZERO;
            for r in i + 1..m {
                xnorm2 = xnorm2 + a[r * n + i] * a[r * n + i];
            }
            let tau = if xnorm2 == T::ZERO {
                T::ZERO
            } else {
                let norm = (alpha * alpha + xnorm2).sqrt();
                let beta = if alpha < T::ZERO { norm } else { -norm };
                let tau = (beta - alpha) / beta;
                let scale = T::ONE / (alpha - beta);
                for r in i + 1..m {
                    a[r * n + i] = a[r * n + i] * scale;
                }
                a[i * n + i] = beta;
                tau
            };
            taus.push(tau);
            // larf: A[i.., i+1..] -= tau v (v^T A[i.., i+1..]), v = (1, a[i+1.., i]).
            if tau != T::ZERO {
                let v = |r: usize, a: &[T]| if r == i { T::ONE } else { a[r * n + i] };
                for c in i + 1..n {
                    let mut w = T::ZERO;
                    for r in i..m {
                        w = w + v(r, a) * a[r * n + c];
                    }
                    for r in i..m {
                        a[r * n + c] = a[r * n + c] - tau * v(r, a) * w;
                    }
                }
            }
        }
    }
    (a, taus)
}

/// `orgqr`: the first `n` columns of `Q = H(0) H(1) ... H(k-1)` (LAPACK's `org2r`).
fn orgqr(out: &Shape, ops: &[&Literal]) -> OpResult<Literal> {
    if ops.len() != 2 {
        return invalid("orgqr takes (a, tau)");
    }
    let (shape, data) = array_of(ops[0])?;
    let (tau_shape, tau) = array_of(ops[1])?;
    let (batch, m, n) = matrix_dims(shape)?;
    let k = tau_shape.dims.last().copied().unwrap_or(0) as usize;
    if k > n || n > m {
        return invalid(format!("orgqr of {shape} with {tau_shape}"));
    }
    let res = match (data, tau) {
        (ArrayData::F32(a), ArrayData::F32(t)) => ArrayData::F32(orgqr_all(a.clone(), t, batch, m, n, k)),
        (ArrayData::F64(a), ArrayData::F64(t)) => ArrayData::F64(orgqr_all(a.clone(), t, batch, m, n, k)),
        _ => return unsupported(format!("orgqr on {shape}")),
    };
    Ok(make(array_out(out, None)?, res))
}

fn orgqr_all<T: Real>(mut a: Vec<T>, taus: &[T], batch: usize, m: usize, n: usize, k: usize) -> Vec<T> {
    for b in 0..batch {
        let a = &mut a[b * m * n..(b + 1) * m * n];
        let tau = &taus[b * k..(b + 1) * k];
        for j in k..n {
            for r in 0..m {
                a[r * n + j] = if r == j { T::ONE } else { T::ZERO };
            }
        }
        for i in (0..k).rev() {
            if i + 1 < n {
                a[i * n + i] = T::ONE;
                for c in i + 1..n {
                    let mut w = T::ZERO;
                    for r in i..m {
                        w = w + a[r * n + i] * a[r * n + c];
                    }
                    for r in i..m {
                        a[r * n + c] = a[r * n + c] - tau[i] * a[r * n + i] * w;
                    }
                }
            }
            for r in i + 1..m {
                a[r * n + i] = -tau[i] * a[r * n + i];
            }
            a[i * n + i] = T::ONE - tau[i];
            for r in 0..i {
                a[r * n + i] = T::ZERO;
            }
        }
    }
    a
}
