//! Dense linear algebra: the LAPACK custom calls JAX emits on CPU
//! (`lapack_{s,d}{potrf,getrf,geqrf,orgqr,trsm}_ffi` and their complex forms
//! `lapack_{c,z}{potrf,getrf,geqrf,ungqr,trsm}_ffi`, `syevd` and `gesdd` in
//! [`crate::lapack_eig`], `geev` in [`crate::lapack_geev`]) and XLA's own `cholesky` and `triangular-solve` opcodes.
//!
//! Each runs LAPACK's unblocked algorithm in the element type (f32, f64, c64 or c128): `potf2`,
//! `getf2`, `geqr2` (`larfg` + `larf`), `org2r` (`ung2r`) and `trsm`'s substitutions. LAPACK's
//! blocked and recursive drivers order the same arithmetic differently, so results agree with
//! JAX's to rounding, not bit for bit. The visible conventions are LAPACK's: `getrf`'s pivots are
//! 1-based and pick the first row of largest `|re| + |im|`; `info` is 0 on success, else the
//! 1-based column where `potrf` met a diagonal that is not positive (or NaN) or where `getrf` met
//! a zero pivot; `geqrf` stores the real `beta = -sign(re(alpha)) * norm` on the diagonal,
//! `tau = (beta - alpha) / beta` (conjugated for complex: `H^H` is what `geqr2` applies) and the
//! vectors below it scaled so that `v[0] = 1` (a column already `(real, 0, ...)` gives `tau = 0`).
//! Complex `potrf` factors Hermitian matrices (`L L^H`, `U^H U`) reading the diagonal's real part,
//! and `trsm`'s `trans_x = 'C'` solves with the adjoint.
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

/// The element types the routines run in: the reals, and complex numbers over them (the
/// `c` and `z` routines), so that one algorithm serves both as LAPACK's `s`/`c` pairs do.
pub(crate) trait Field:
    Copy
    + PartialEq
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    type Re: Real;
    const ZERO: Self;
    const ONE: Self;
    fn from_parts(re: Self::Re, im: Self::Re) -> Self;
    fn from_re(re: Self::Re) -> Self {
        Self::from_parts(re, Self::Re::ZERO)
    }
    fn re(self) -> Self::Re;
    fn im(self) -> Self::Re;
    fn conj(self) -> Self;
    /// `|re| + |im|`: what LAPACK's `i?amax` compares (`cabs1`), the magnitude for reals.
    fn abs1(self) -> Self::Re {
        self.re().abs() + self.im().abs()
    }
    /// `|x|^2`.
    fn abs2(self) -> Self::Re {
        self.re() * self.re() + self.im() * self.im()
    }
    /// `|x|`.
    fn modulus(self) -> Self::Re;
    fn nan() -> Self {
        Self::from_parts(Self::Re::nan(), Self::Re::nan())
    }
}

macro_rules! real_field {
    ($t:ty) => {
        impl Field for $t {
            type Re = $t;
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn from_parts(re: $t, _im: $t) -> Self {
                re
            }
            fn re(self) -> $t {
                self
            }
            fn im(self) -> $t {
                0.0
            }
            fn conj(self) -> Self {
                self
            }
            fn abs1(self) -> $t {
                self.abs()
            }
            fn abs2(self) -> $t {
                self * self
            }
            fn modulus(self) -> $t {
                self.abs()
            }
        }
    };
}
real_field!(f32);
real_field!(f64);

/// A complex number of the routines' arithmetic (`c64` and `c128` elements).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Cx<T> {
    pub(crate) re: T,
    pub(crate) im: T,
}

impl<T: Real> Add for Cx<T> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Cx { re: self.re + o.re, im: self.im + o.im }
    }
}
impl<T: Real> Sub for Cx<T> {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Cx { re: self.re - o.re, im: self.im - o.im }
    }
}
impl<T: Real> Mul for Cx<T> {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Cx { re: self.re * o.re - self.im * o.im, im: self.re * o.im + self.im * o.re }
    }
}
impl<T: Real> Div for Cx<T> {
    type Output = Self;
    /// Smith's algorithm, which does not overflow where `|o|^2` would.
    fn div(self, o: Self) -> Self {
        if o.re.abs() >= o.im.abs() {
            let r = o.im / o.re;
            let d = o.re + o.im * r;
            Cx { re: (self.re + self.im * r) / d, im: (self.im - self.re * r) / d }
        } else {
            let r = o.re / o.im;
            let d = o.re * r + o.im;
            Cx { re: (self.re * r + self.im) / d, im: (self.im * r - self.re) / d }
        }
    }
}
impl<T: Real> Neg for Cx<T> {
    type Output = Self;
    fn neg(self) -> Self {
        Cx { re: -self.re, im: -self.im }
    }
}

impl<T: Real> Field for Cx<T> {
    type Re = T;
    const ZERO: Self = Cx { re: T::ZERO, im: T::ZERO };
    const ONE: Self = Cx { re: T::ONE, im: T::ZERO };
    fn from_parts(re: T, im: T) -> Self {
        Cx { re, im }
    }
    fn re(self) -> T {
        self.re
    }
    fn im(self) -> T {
        self.im
    }
    fn conj(self) -> Self {
        Cx { re: self.re, im: -self.im }
    }
    fn modulus(self) -> T {
        let (a, b) = (self.re.abs(), self.im.abs());
        let (big, small) = if a >= b { (a, b) } else { (b, a) };
        if big == T::ZERO {
            return T::ZERO;
        }
        let r = small / big;
        big * (T::ONE + r * r).sqrt()
    }
}

fn to_cx<T: Real>(v: &[[T; 2]]) -> Vec<Cx<T>> {
    v.iter().map(|&[re, im]| Cx { re, im }).collect()
}

fn from_cx<T: Real>(v: Vec<Cx<T>>) -> Vec<[T; 2]> {
    v.into_iter().map(|z| [z.re, z.im]).collect()
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

/// The LAPACK routine of XLA's own QR custom calls, which JAX's default lowering of
/// `lax.linalg.geqrf` and `householder_product` emits (platforms other than CPU and GPU, such as a
/// PJRT plugin's): `Qr` is `geqrf` (`(a, taus)`, LAPACK's representation, as XLA's
/// `QrExpander` computes it) and `ProductOfElementaryHouseholderReflectors` is `orgqr`/`ungqr`.
pub fn xla_target_routine(target: &str) -> Option<&'static str> {
    match target {
        "Qr" => Some("geqrf"),
        "ProductOfElementaryHouseholderReflectors" => Some("orgqr"),
        _ => None,
    }
}

/// The LAPACK routines that [`custom_call`] evaluates (and `linalg-expander` expands), by their
/// real names: the complex routines are the same algorithms with conjugates.
pub const ROUTINES: &[&str] = &["potrf", "getrf", "geqrf", "orgqr", "trsm", "syevd", "gesdd", "geev"];

/// The complex routines (`c`, `z`) that are expanded and evaluated: all of [`ROUTINES`].
pub const COMPLEX_ROUTINES: &[&str] = &["potrf", "getrf", "geqrf", "orgqr", "trsm", "syevd", "gesdd", "geev"];

/// The routine of `kind` by its real name (`ungqr` is `orgqr`, `heevd` is `syevd`).
pub fn real_name(routine: &str) -> &str {
    match routine {
        "ungqr" => "orgqr",
        "heevd" => "syevd",
        r => r,
    }
}

/// Whether a LAPACK routine of `kind` (`s`, `d`, `c`, `z`) is evaluated and expanded, and if not,
/// why (`None`: it is).
pub fn refusal(kind: char, routine: &str) -> Option<String> {
    let known = |list: &[&str]| list.contains(&real_name(routine));
    let real = matches!(kind, 's' | 'd');
    if real && routine != real_name(routine) || !real && matches!(routine, "orgqr" | "syevd") {
        return Some(format!("`{kind}{routine}` is not a LAPACK routine"));
    }
    if !known(ROUTINES) {
        Some(format!("the LAPACK routine `{kind}{routine}` has no implementation"))
    } else if !real && !known(COMPLEX_ROUTINES) {
        Some(format!("the complex LAPACK routine `{kind}{routine}` has no implementation (only its real form)"))
    } else {
        None
    }
}

/// A LAPACK custom call, or `None` when `target` is not one this module knows.
pub(crate) fn custom_call(
    target: &str,
    backend_config: Option<&str>,
    out: &Shape,
    ops: &[&Literal],
) -> Option<OpResult<Literal>> {
    match xla_target_routine(target) {
        Some("geqrf") => return Some(geqrf(out, ops)),
        Some(_) => return Some(orgqr(out, ops)),
        None => {}
    }
    let (kind, routine) = lapack_routine(target)?;
    if !ROUTINES.contains(&real_name(routine)) {
        return None;
    }
    if let Some(why) = refusal(kind, routine) {
        return Some(unsupported(format!("custom-call target \"{target}\": {why}")));
    }
    let cfg = |key| config_char(backend_config, key);
    Some(match real_name(routine) {
        "potrf" => potrf(cfg("uplo") != Some('U'), out, ops),
        "getrf" => getrf(out, ops),
        "geqrf" => geqrf(out, ops),
        "orgqr" => orgqr(out, ops),
        "syevd" => crate::lapack_eig::syevd(cfg("uplo") != Some('U'), out, ops),
        "gesdd" => crate::lapack_eig::gesdd(cfg("mode"), out, ops),
        "geev" => crate::lapack_geev::geev(backend_config, out, ops),
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

/// Runs `$body` with `$v` bound to the f32, f64, c64 or c128 payload of `$data`, wrapping the result's
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
            ArrayData::C64(v) => {
                let $v = to_cx(v);
                let (res, extra) = $body;
                (ArrayData::C64(from_cx(res)), extra)
            }
            ArrayData::C128(v) => {
                let $v = to_cx(v);
                let (res, extra) = $body;
                (ArrayData::C128(from_cx(res)), extra)
            }
            _ => return unsupported("linear algebra on elements other than f32, f64, c64 and c128"),
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

fn potrf_all<T: Field>(mut a: Vec<T>, batch: usize, n: usize, lower: bool) -> (Vec<T>, Vec<i32>) {
    let info = (0..batch).map(|b| potf2(&mut a[b * n * n..(b + 1) * n * n], n, lower)).collect();
    (a, info)
}

/// LAPACK's `potf2` on one row-major matrix: the lower factor `L` (`A = L L^H`) by columns, or
/// the upper one (`A = U^H U`) by rows, which is the same algorithm on the adjoint. Only the
/// real part of the diagonal is read, as LAPACK's Hermitian routines do.
pub(crate) fn potf2<T: Field>(a: &mut [T], n: usize, lower: bool) -> i32 {
    // (i, j) of the lower-triangle view: the adjoint of the upper triangle.
    let at = |i: usize, j: usize| if lower { i * n + j } else { j * n + i };
    let get = |a: &[T], i: usize, j: usize| if lower { a[at(i, j)] } else { a[at(i, j)].conj() };
    for j in 0..n {
        let mut ajj = a[at(j, j)].re();
        for k in 0..j {
            ajj = ajj - get(a, j, k).abs2();
        }
        if ajj <= T::Re::ZERO || ajj.is_nan() {
            a[at(j, j)] = T::from_re(ajj);
            return j as i32 + 1;
        }
        let ajj = ajj.sqrt();
        a[at(j, j)] = T::from_re(ajj);
        let r = T::from_re(T::Re::ONE / ajj);
        for i in j + 1..n {
            let mut s = get(a, i, j);
            for k in 0..j {
                s = s - get(a, i, k) * get(a, j, k).conj();
            }
            let v = s * r;
            a[at(i, j)] = if lower { v } else { v.conj() };
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
    fn run<T: Field>(mut a: Vec<T>, batch: usize, n: usize, lower: bool) -> (Vec<T>, ()) {
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
    let (res, ()) = match (a_data, b_data) {
        (ArrayData::F32(a), ArrayData::F32(b)) => {
            let (r, ()) = trsm_all(a, b.clone(), batch, k, m, n, left_side, lower, unit_diagonal, transpose);
            (ArrayData::F32(r), ())
        }
        (ArrayData::F64(a), ArrayData::F64(b)) => {
            let (r, ()) = trsm_all(a, b.clone(), batch, k, m, n, left_side, lower, unit_diagonal, transpose);
            (ArrayData::F64(r), ())
        }
        (ArrayData::C64(a), ArrayData::C64(b)) => {
            let (r, ()) = trsm_all(&to_cx(a), to_cx(b), batch, k, m, n, left_side, lower, unit_diagonal, transpose);
            (ArrayData::C64(from_cx(r)), ())
        }
        (ArrayData::C128(a), ArrayData::C128(b)) => {
            let (r, ()) = trsm_all(&to_cx(a), to_cx(b), batch, k, m, n, left_side, lower, unit_diagonal, transpose);
            (ArrayData::C128(from_cx(r)), ())
        }
        _ => return unsupported(format!("triangular solve on {a_shape}")),
    };
    Ok(make(array_out(out, None)?, res))
}

#[allow(clippy::too_many_arguments)]
fn trsm_all<T: Field>(
    a: &[T],
    mut b: Vec<T>,
    batch: usize,
    k: usize,
    m: usize,
    n: usize,
    left_side: bool,
    lower: bool,
    unit: bool,
    transpose: TransposeKind,
) -> (Vec<T>, ()) {
    let transposed = transpose != TransposeKind::NoTranspose;
    let conj = |x: T| if transpose == TransposeKind::Adjoint { x.conj() } else { x };
    for bi in 0..batch {
        let a = &a[bi * k * k..(bi + 1) * k * k];
        let b = &mut b[bi * m * n..(bi + 1) * m * n];
        if left_side {
            // op(A) X = B, one column of B at a time. M(i, j) = op(A)(i, j).
            let get = |i: usize, j: usize| conj(if transposed { a[j * k + i] } else { a[i * k + j] });
            for col in 0..n {
                substitute(k, &get, lower != transposed, unit, |i| i * n + col, b);
            }
        } else {
            // X op(A) = B  <=>  op(A)^T x_r = b_r for each row r.
            let get = |i: usize, j: usize| conj(if transposed { a[i * k + j] } else { a[j * k + i] });
            for row in 0..m {
                substitute(k, &get, lower == transposed, unit, |i| row * n + i, b);
            }
        }
    }
    (b, ())
}

/// Solves `M x = b` in place for a lower (forward) or upper (backward) triangular `M`.
fn substitute<T: Field>(
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
fn getrf_all<T: Field>(mut a: Vec<T>, batch: usize, m: usize, n: usize) -> (Vec<T>, (Vec<i32>, Vec<i32>)) {
    let kmin = m.min(n);
    let mut ipiv = Vec::with_capacity(batch * kmin);
    let mut info = Vec::with_capacity(batch);
    for b in 0..batch {
        let a = &mut a[b * m * n..(b + 1) * m * n];
        let mut inf = 0;
        for j in 0..kmin {
            // i?amax: the first largest `|re| + |im|` (a NaN is never larger).
            let mut p = j;
            let mut best = a[j * n + j].abs1();
            for i in j + 1..m {
                if a[i * n + j].abs1() > best {
                    best = a[i * n + j].abs1();
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
                if pivot.modulus() >= T::Re::SAFE_MIN {
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
        ArrayData::C64(v) => {
            let (r, t) = geqrf_all(to_cx(v), batch, m, n);
            (ArrayData::C64(from_cx(r)), ArrayData::C64(from_cx(t)))
        }
        ArrayData::C128(v) => {
            let (r, t) = geqrf_all(to_cx(v), batch, m, n);
            (ArrayData::C128(from_cx(r)), ArrayData::C128(from_cx(t)))
        }
        _ => return unsupported(format!("geqrf on {shape}")),
    };
    Ok(tuple(out, vec![make(array_out(out, Some(0))?, res), make(tau_shape, tau)]))
}

fn geqrf_all<T: Field>(mut a: Vec<T>, batch: usize, m: usize, n: usize) -> (Vec<T>, Vec<T>) {
    let k = m.min(n);
    let mut taus = Vec::with_capacity(batch * k);
    for b in 0..batch {
        let a = &mut a[b * m * n..(b + 1) * m * n];
        for i in 0..k {
            // larfg on a[i.., i]: a real `beta` even for complex `alpha`.
            let alpha = a[i * n + i];
            let (alphr, alphi) = (alpha.re(), alpha.im());
            let zero = T::Re::ZERO;
            // Scaled by the largest part, as `dznrm2`, so that tiny columns do not square to 0.
            let mut big = alpha.abs1();
            for r in i + 1..m {
                let v = a[r * n + i].abs1();
                if v > big {
                    big = v;
                }
            }
            let big = if big > zero { big } else { T::Re::ONE };
            let mut xnorm2 = zero;
            for r in i + 1..m {
                let v = a[r * n + i];
                let (re, im) = (v.re() / big, v.im() / big);
                xnorm2 = xnorm2 + re * re + im * im;
            }
            let tau = if xnorm2 == zero && alphi == zero {
                T::ZERO
            } else {
                let (ar, ai) = (alphr / big, alphi / big);
                let norm = big * (ar * ar + ai * ai + xnorm2).sqrt();
                let beta = if alphr < zero { norm } else { -norm };
                let tau = T::from_parts((beta - alphr) / beta, -alphi / beta);
                let scale = T::ONE / (alpha - T::from_re(beta));
                for r in i + 1..m {
                    a[r * n + i] = a[r * n + i] * scale;
                }
                a[i * n + i] = T::from_re(beta);
                tau
            };
            taus.push(tau);
            // larf with H^H: A[i.., i+1..] -= conj(tau) v (v^H A[i.., i+1..]), v = (1, a[i+1.., i]).
            if tau != T::ZERO {
                let v = |r: usize, a: &[T]| if r == i { T::ONE } else { a[r * n + i] };
                for c in i + 1..n {
                    let mut w = T::ZERO;
                    for r in i..m {
                        w = w + v(r, a).conj() * a[r * n + c];
                    }
                    for r in i..m {
                        a[r * n + c] = a[r * n + c] - tau.conj() * v(r, a) * w;
                    }
                }
            }
        }
    }
    (a, taus)
}

/// `orgqr` (`ungqr`): the first `n` columns of `Q = H(0) H(1) ... H(k-1)` (LAPACK's `org2r`,
/// `ung2r`), `H(i) = I - tau v v^H`.
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
        (ArrayData::C64(a), ArrayData::C64(t)) => {
            ArrayData::C64(from_cx(orgqr_all(to_cx(a), &to_cx(t), batch, m, n, k)))
        }
        (ArrayData::C128(a), ArrayData::C128(t)) => {
            ArrayData::C128(from_cx(orgqr_all(to_cx(a), &to_cx(t), batch, m, n, k)))
        }
        _ => return unsupported(format!("orgqr on {shape}")),
    };
    Ok(make(array_out(out, None)?, res))
}

fn orgqr_all<T: Field>(mut a: Vec<T>, taus: &[T], batch: usize, m: usize, n: usize, k: usize) -> Vec<T> {
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
                        w = w + a[r * n + i].conj() * a[r * n + c];
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
