//! Symmetric eigendecomposition and the SVD as JAX calls them on CPU: `lapack_{s,d}syevd_ffi`
//! (`jnp.linalg.eigh`, `eigvalsh`) and `lapack_{s,d}gesdd_ffi` (`jnp.linalg.svd`, `pinv`,
//! `matrix_rank`, `norm(ord=2)`).
//!
//! Both run Jacobi methods in f64 whatever the element type, then round: the cyclic (row by row)
//! two-sided Jacobi method for `syevd`, and the one-sided (Hestenes) Jacobi method on the columns
//! of the tall orientation of the matrix for `gesdd`. LAPACK uses divide and conquer instead, so
//! results agree with JAX's to rounding in the values; eigen- and singular vectors agree up to
//! sign (and, for equal values, up to any rotation within their subspace).
//!
//! Conventions kept from LAPACK: eigenvalues ascending with the eigenvectors as the columns of
//! the first output (which overwrites the input there); singular values descending with `u` and
//! `vt` as `jobz` (`mode`) asks: `A` full (`u[m, m]`, `vt[n, n]`), `S` thin (`u[m, k]`,
//! `vt[k, n]`), `N` none (the two outputs, unspecified by LAPACK, are zeros here, and `gesdd`'s
//! first output keeps the input). `syevd` reads only the triangle `uplo` names. `info` is 0, or 1
//! when the input holds a NaN or an infinity (JAX then returns NaN everywhere).
//! Where singular values are zero the singular vectors of `u` are completed to an orthonormal
//! basis (Gram-Schmidt against the unit vectors), as LAPACK's are orthonormal.

use crate::array::{array_of, make};
use crate::error::{invalid, unsupported, OpResult};
use crate::lapack::{Cx, Field};
use hlo_ir::{ArrayData, ArrayShape, Literal, LiteralData, Shape};

/// Sweeps after which a Jacobi iteration stops even if some rotation was still applied.
const MAX_SWEEPS: usize = 100;

/// `syevd`: `(eigenvectors, eigenvalues, info)` of symmetric `[batch..., n, n]` matrices.
pub(crate) fn syevd(lower: bool, out: &Shape, ops: &[&Literal]) -> OpResult<Literal> {
    let (shape, data) = array_of(one(ops)?)?;
    let (batch, n, n2) = matrix_dims(shape)?;
    if n != n2 {
        return invalid("syevd needs square matrices");
    }
    if matches!(data, ArrayData::C64(_) | ArrayData::C128(_)) {
        return heevd(lower, out, data, batch, n);
    }
    let a = to_f64(data)?;
    let (mut vecs, mut vals, mut info) = (Vec::new(), Vec::new(), Vec::new());
    for b in 0..batch {
        let m = &a[b * n * n..(b + 1) * n * n];
        // The symmetric matrix of the named triangle.
        let sym: Vec<f64> = (0..n * n)
            .map(|k| {
                let (i, j) = (k / n, k % n);
                if (i >= j) == lower {
                    m[k]
                } else {
                    m[j * n + i]
                }
            })
            .collect();
        let finite = sym.iter().all(|x| x.is_finite());
        let (w, v) = if finite { jacobi_eigh(sym, n) } else { (vec![f64::NAN; n], vec![f64::NAN; n * n]) };
        vals.extend(w);
        vecs.extend(v);
        info.push(i32::from(!finite));
    }
    let elems = vec![
        make(out_array(out, 0)?, from_f64(data, vecs)),
        make(out_array(out, 1)?, from_f64(data, vals)),
        make(out_array(out, 2)?, ArrayData::S32(info)),
    ];
    Ok(Literal { shape: out.clone(), data: LiteralData::Tuple(elems) })
}

/// `heevd`: `syevd` of Hermitian matrices (`c64`, `c128`): complex eigenvectors, real eigenvalues.
/// Only the real part of the diagonal is read, as LAPACK's.
fn heevd(lower: bool, out: &Shape, data: &ArrayData, batch: usize, n: usize) -> OpResult<Literal> {
    let a = to_c128(data)?;
    let (mut vecs, mut vals, mut info) = (Vec::new(), Vec::new(), Vec::new());
    for b in 0..batch {
        let m = &a[b * n * n..(b + 1) * n * n];
        let herm: Vec<Cx<f64>> = (0..n * n)
            .map(|k| {
                let (i, j) = (k / n, k % n);
                if i == j {
                    Cx { re: m[k].re, im: 0.0 }
                } else if (i > j) == lower {
                    m[k]
                } else {
                    m[j * n + i].conj()
                }
            })
            .collect();
        let finite = herm.iter().all(|x| x.re.is_finite() && x.im.is_finite());
        let nan = Cx { re: f64::NAN, im: f64::NAN };
        let (w, v) = if finite { jacobi_heigh(herm, n) } else { (vec![f64::NAN; n], vec![nan; n * n]) };
        vals.extend(w);
        vecs.extend(v);
        info.push(i32::from(!finite));
    }
    let elems = vec![
        make(out_array(out, 0)?, from_c128(data, vecs)),
        make(out_array(out, 1)?, from_f64(data, vals)),
        make(out_array(out, 2)?, ArrayData::S32(info)),
    ];
    Ok(Literal { shape: out.clone(), data: LiteralData::Tuple(elems) })
}

/// `gesdd`: `(a, s, u, vt, info)` of `[batch..., m, n]` matrices; `mode` is `jobz`.
pub(crate) fn gesdd(mode: Option<char>, out: &Shape, ops: &[&Literal]) -> OpResult<Literal> {
    let (shape, data) = array_of(one(ops)?)?;
    let (batch, m, n) = matrix_dims(shape)?;
    let k = m.min(n);
    let (u_shape, vt_shape) = (out_array(out, 2)?, out_array(out, 3)?);
    let (_, um, ucols) = matrix_dims(u_shape)?;
    let (_, vrows, vn) = matrix_dims(vt_shape)?;
    let want_uv = match mode {
        Some('A') => ucols == m && vrows == n,
        Some('S') => ucols == k && vrows == k,
        Some('N') => false,
        _ => return unsupported(format!("gesdd with mode {mode:?} (jobz)")),
    };
    if want_uv && (um != m || vn != n) || out_array(out, 1)?.dims.last() != Some(&(k as i64)) {
        return invalid(format!("gesdd of {shape} with results {out}"));
    }
    let (s_all, u_all, vt_all, info) = match data {
        ArrayData::C64(_) | ArrayData::C128(_) => {
            let (s, u, vt, info) = gesdd_all(&to_c128(data)?, batch, m, n, (um, ucols), (vrows, vn), want_uv);
            (from_f64(data, s), from_c128(data, u), from_c128(data, vt), info)
        }
        _ => {
            let (s, u, vt, info) = gesdd_all(&to_f64(data)?, batch, m, n, (um, ucols), (vrows, vn), want_uv);
            (from_f64(data, s), from_f64(data, u), from_f64(data, vt), info)
        }
    };
    let elems = vec![
        ops[0].clone(),
        make(out_array(out, 1)?, s_all),
        make(u_shape, u_all),
        make(vt_shape, vt_all),
        make(out_array(out, 4)?, ArrayData::S32(info)),
    ];
    Ok(Literal { shape: out.clone(), data: LiteralData::Tuple(elems) })
}

/// `gesdd` of each matrix of the batch: `(s, u, vt, info)`, NaN where a matrix is not finite.
#[allow(clippy::type_complexity)]
fn gesdd_all<T: Field<Re = f64>>(
    a: &[T],
    batch: usize,
    m: usize,
    n: usize,
    (um, ucols): (usize, usize),
    (vrows, vn): (usize, usize),
    want_uv: bool,
) -> (Vec<f64>, Vec<T>, Vec<T>, Vec<i32>) {
    let k = m.min(n);
    let (mut s_all, mut u_all, mut vt_all, mut info) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for b in 0..batch {
        let mat = &a[b * m * n..(b + 1) * m * n];
        if !mat.iter().all(|x| x.re().is_finite() && x.im().is_finite()) {
            s_all.extend(vec![f64::NAN; k]);
            u_all.extend(vec![T::nan(); um * ucols]);
            vt_all.extend(vec![T::nan(); vrows * vn]);
            info.push(1);
            continue;
        }
        info.push(0);
        let (s, u, v) = jacobi_svd(mat, m, n);
        s_all.extend(&s);
        if !want_uv {
            u_all.extend(vec![T::ZERO; um * ucols]);
            vt_all.extend(vec![T::ZERO; vrows * vn]);
            continue;
        }
        // u: the first `ucols` columns of the m x m `u`; vt: the first `vrows` rows of v^H.
        for i in 0..m {
            u_all.extend_from_slice(&u[i * m..i * m + ucols]);
        }
        for r in 0..vrows {
            vt_all.extend((0..n).map(|c| v[c * n + r].conj()));
        }
    }
    (s_all, u_all, vt_all, info)
}

pub(crate) fn one<'a>(ops: &[&'a Literal]) -> OpResult<&'a Literal> {
    match ops {
        [a] => Ok(a),
        _ => invalid(format!("expected one operand, got {}", ops.len())),
    }
}

pub(crate) fn out_array(out: &Shape, index: usize) -> OpResult<&ArrayShape> {
    match out.as_tuple().and_then(|t| t.get(index)).and_then(Shape::as_array) {
        Some(a) => Ok(a),
        None => invalid(format!("unexpected result shape {out}")),
    }
}

pub(crate) fn matrix_dims(shape: &ArrayShape) -> OpResult<(usize, usize, usize)> {
    let r = shape.dims.len();
    if r < 2 {
        return invalid(format!("expected a matrix, got {shape}"));
    }
    let batch: i64 = shape.dims[..r - 2].iter().product();
    Ok((batch as usize, shape.dims[r - 2] as usize, shape.dims[r - 1] as usize))
}

fn to_f64(data: &ArrayData) -> OpResult<Vec<f64>> {
    match data {
        ArrayData::F32(v) => Ok(v.iter().map(|&x| x as f64).collect()),
        ArrayData::F64(v) => Ok(v.clone()),
        _ => unsupported("linear algebra on elements other than f32 and f64"),
    }
}

pub(crate) fn to_c128(data: &ArrayData) -> OpResult<Vec<Cx<f64>>> {
    match data {
        ArrayData::C64(v) => Ok(v.iter().map(|&[re, im]| Cx { re: re as f64, im: im as f64 }).collect()),
        ArrayData::C128(v) => Ok(v.iter().map(|&[re, im]| Cx { re, im }).collect()),
        _ => unsupported("complex linear algebra on real elements"),
    }
}

/// Complex `v` in the element type of complex `like`.
pub(crate) fn from_c128(like: &ArrayData, v: Vec<Cx<f64>>) -> ArrayData {
    match like {
        ArrayData::C64(_) => ArrayData::C64(v.into_iter().map(|z| [z.re as f32, z.im as f32]).collect()),
        _ => ArrayData::C128(v.into_iter().map(|z| [z.re, z.im]).collect()),
    }
}

/// `v` in the element type of `like` (the real type of a complex one).
pub(crate) fn from_f64(like: &ArrayData, v: Vec<f64>) -> ArrayData {
    match like {
        ArrayData::F32(_) | ArrayData::C64(_) => ArrayData::F32(v.into_iter().map(|x| x as f32).collect()),
        _ => ArrayData::F64(v),
    }
}

/// The rotation `(c, s)` with `t = s / c` that zeroes `apq` of the symmetric 2 x 2 block
/// `[[app, apq], [apq, aqq]]` under `J^T A J`, `J = [[c, s], [-s, c]]` (Golub and Van Loan's
/// `sym.schur2`), and `t`.
fn schur2(app: f64, aqq: f64, apq: f64) -> (f64, f64, f64) {
    let tau = (aqq - app) / (2.0 * apq);
    let t = if tau >= 0.0 { 1.0 / (tau + tau.hypot(1.0)) } else { -1.0 / (-tau + tau.hypot(1.0)) };
    let c = 1.0 / t.hypot(1.0);
    (c, t * c, t)
}

/// Cyclic Jacobi on a symmetric row-major `n x n` matrix: ascending eigenvalues and the
/// row-major matrix whose columns are their eigenvectors.
fn jacobi_eigh(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v: Vec<f64> = (0..n * n).map(|k| if k / n == k % n { 1.0 } else { 0.0 }).collect();
    for _ in 0..MAX_SWEEPS {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                let (app, aqq) = (a[p * n + p], a[q * n + q]);
                if apq == 0.0 || apq.abs() <= 1e-18 * (app.abs() * aqq.abs()).sqrt() {
                    continue;
                }
                rotated = true;
                let (c, s, t) = schur2(app, aqq, apq);
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                a[p * n + p] = app - t * apq;
                a[q * n + q] = aqq + t * apq;
                a[p * n + q] = 0.0;
                a[q * n + p] = 0.0;
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[i * n + i].total_cmp(&a[j * n + j]));
    let w = order.iter().map(|&i| a[i * n + i]).collect();
    let vs = (0..n * n).map(|k| v[(k / n) * n + order[k % n]]).collect();
    (w, vs)
}

/// Cyclic Jacobi on a Hermitian row-major `n x n` matrix, as [`jacobi_eigh`]: each rotation is
/// `U = D J D^H` with `D` the phase `conj(u)` at `q`, `u = a_pq / |a_pq|`, which makes the pair's
/// entry real (`|a_pq|`) for the real rotation `J` and zeroes it.
fn jacobi_heigh(mut a: Vec<Cx<f64>>, n: usize) -> (Vec<f64>, Vec<Cx<f64>>) {
    let (zero, one) = (Cx { re: 0.0, im: 0.0 }, Cx { re: 1.0, im: 0.0 });
    let real = |x: f64| Cx { re: x, im: 0.0 };
    let mut v: Vec<Cx<f64>> = (0..n * n).map(|k| if k / n == k % n { one } else { zero }).collect();
    for _ in 0..MAX_SWEEPS {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                let mag = apq.re.hypot(apq.im);
                let (app, aqq) = (a[p * n + p].re, a[q * n + q].re);
                if mag == 0.0 || mag <= 1e-18 * (app.abs() * aqq.abs()).sqrt() {
                    continue;
                }
                rotated = true;
                let u = Cx { re: apq.re / mag, im: apq.im / mag };
                let (c, s, t) = schur2(app, aqq, mag);
                let (c, su, suc) = (real(c), real(s) * u, real(s) * u.conj());
                // Columns: A U, V U; rows: U^H A.
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - suc * akq;
                    a[k * n + q] = su * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - su * aqk;
                    a[q * n + k] = suc * apk + c * aqk;
                }
                a[p * n + p] = real(app - t * mag);
                a[q * n + q] = real(aqq + t * mag);
                a[p * n + q] = zero;
                a[q * n + p] = zero;
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - suc * vkq;
                    v[k * n + q] = su * vkp + c * vkq;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[i * n + i].re.total_cmp(&a[j * n + j].re));
    let w = order.iter().map(|&i| a[i * n + i].re).collect();
    let vs = (0..n * n).map(|k| v[(k / n) * n + order[k % n]]).collect();
    (w, vs)
}

/// One-sided Jacobi SVD of a row-major `m x n` matrix: descending singular values `s[k]`, the
/// row-major unitary `u[m, m]` and `v[n, n]` with `a = u[:, :k] diag(s) v[:, :k]^H`. A complex
/// pair rotates by `U = D J D^H` as in [`jacobi_heigh`], on the Gram entry `a_p^H a_q`.
fn jacobi_svd<T: Field<Re = f64>>(a: &[T], m: usize, n: usize) -> (Vec<f64>, Vec<T>, Vec<T>) {
    if m < n {
        // a^H = u' s v'^H, so a = v' s u'^H.
        let at: Vec<T> = (0..m * n).map(|k| a[(k % m) * n + k / m].conj()).collect();
        let (s, u, v) = jacobi_svd(&at, n, m);
        return (s, v, u);
    }
    // m >= n: orthogonalise the columns of `w`, rotating `v` alike.
    let mut w = a.to_vec();
    let mut v: Vec<T> = (0..n * n).map(|k| if k / n == k % n { T::ONE } else { T::ZERO }).collect();
    let col_dot = |w: &[T], p: usize, q: usize| (0..m).fold(T::ZERO, |acc, r| acc + w[r * n + p].conj() * w[r * n + q]);
    for _ in 0..MAX_SWEEPS {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let (alpha, beta, gamma) = (col_dot(&w, p, p).re(), col_dot(&w, q, q).re(), col_dot(&w, p, q));
                let mag = gamma.modulus();
                if mag == 0.0 || mag <= 1e-15 * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let u = gamma / T::from_re(mag);
                let (c, s, _) = schur2(alpha, beta, mag);
                let (c, su, suc) = (T::from_re(c), T::from_re(s) * u, T::from_re(s) * u.conj());
                for (x, cols) in [(&mut w, m), (&mut v, n)] {
                    for r in 0..cols {
                        let (xp, xq) = (x[r * n + p], x[r * n + q]);
                        x[r * n + p] = c * xp - suc * xq;
                        x[r * n + q] = su * xp + c * xq;
                    }
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let norms: Vec<f64> = (0..n).map(|j| col_dot(&w, j, j).re().sqrt()).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| norms[j].total_cmp(&norms[i]));
    let s: Vec<f64> = order.iter().map(|&j| norms[j]).collect();
    let v_sorted: Vec<T> = (0..n * n).map(|k| v[(k / n) * n + order[k % n]]).collect();
    // Columns of u: the normalised columns of w, made orthogonal to rounding (Gram-Schmidt
    // twice, as Kahan advises), then completed.
    let mut cols: Vec<Vec<T>> = Vec::with_capacity(m);
    for &j in &order {
        let mut x: Vec<T> = (0..m).map(|r| w[r * n + j]).collect();
        let before = norms[j];
        orthogonalise(&cols, &mut x);
        let norm = x.iter().map(|e| e.abs2()).sum::<f64>().sqrt();
        if before > 0.0 && norm > 0.5 * before {
            cols.push(x.iter().map(|&e| e / T::from_re(norm)).collect());
        } else {
            // A column of (near) zero singular value: any direction orthogonal to the others.
            cols.push(complete(&cols, m));
        }
    }
    while cols.len() < m {
        cols.push(complete(&cols, m));
    }
    let u = (0..m * m).map(|k| cols[k % m][k / m]).collect();
    (s, u, v_sorted)
}

/// Removes from `x` its components along the orthonormal `cols`, twice.
fn orthogonalise<T: Field<Re = f64>>(cols: &[Vec<T>], x: &mut [T]) {
    for _ in 0..2 {
        for c in cols {
            let d = c.iter().zip(x.iter()).fold(T::ZERO, |acc, (&a, &b)| acc + a.conj() * b);
            x.iter_mut().zip(c).for_each(|(e, &ce)| *e = *e - d * ce);
        }
    }
}

/// A unit vector orthogonal to the orthonormal `cols` (fewer than `m`): the unit vector `e_i`
/// farthest from their span, orthogonalised and normalised.
fn complete<T: Field<Re = f64>>(cols: &[Vec<T>], m: usize) -> Vec<T> {
    let mut best = (vec![T::ZERO; m], -1.0);
    for i in 0..m {
        let mut x: Vec<T> = (0..m).map(|r| if r == i { T::ONE } else { T::ZERO }).collect();
        orthogonalise(cols, &mut x);
        let norm = x.iter().map(|e| e.abs2()).sum::<f64>().sqrt();
        if norm > best.1 {
            best = (x, norm);
        }
    }
    let mut x = best.0;
    orthogonalise(cols, &mut x);
    let norm = x.iter().map(|e| e.abs2()).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    x.iter().map(|&e| e / T::from_re(norm)).collect()
}
