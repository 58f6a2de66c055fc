//! The nonsymmetric eigendecomposition as JAX calls it on CPU: `lapack_{s,d,c,z}geev_ffi`
//! (`jnp.linalg.eig`, `eigvals`).
//!
//! Results are `(wr, wi, vl, vr, info)` for real matrices (the FFI returns the eigenvectors as
//! complex arrays) and `(w, vl, vr, info)` for complex ones; `compute_left` and `compute_right`
//! (`'V'` or `'N'`) say which eigenvectors are computed (those not asked for are zeros here).
//!
//! Every type runs the same complex algorithm in c128, then rounds: Householder reduction to
//! Hessenberg form, then single-shift complex QR (Wilkinson shifts, exceptional shifts after 10
//! and 20 iterations without deflation, deflation at `|h[l, l-1]| <= eps (|h[l-1, l-1]| +
//! |h[l, l]|)`, as `zlahqr`) on the whole matrix to the Schur form `T = Z^H A Z`. Eigenvalues are
//! `T`'s diagonal in its order, which the order of convergence decides: LAPACK's `zlahqr` often
//! gives the same for small complex matrices, but nothing guarantees it (its multishift sweeps
//! above order 75 and `dgeev`'s real double shifts converge differently), so programs that
//! compare eigenvalues should sort them or use symmetric functions of them. Real matrices get eigenvalues whose imaginary parts are rounding-level rather
//! than exactly zero, and conjugate pairs conjugate to rounding.
//!
//! Eigenvectors are `ztrevc`'s: back substitution in `T - lambda I` (diagonal entries smaller
//! than `max(eps |lambda|, safe_min n / eps)` replaced by that, columns rescaled when they grow
//! large), transformed by `Z`, each normalised to unit Euclidean norm and rotated so that its
//! largest-magnitude component is real and positive (`zgeev`'s convention; `dgeev` keeps the sign
//! of its real eigenvectors, so theirs may differ from these by `-1`). Left eigenvectors
//! (`u^H A = lambda u^H`) are those of `T^H`. A matrix holding a NaN or an infinity, or one whose
//! iteration does not converge, gets `info = 1` and NaN results (JAX returns NaN then).

use crate::array::{array_of, make};
use crate::error::{invalid, unsupported, OpResult};
use crate::lapack::{config_char, Cx, Field};
use crate::lapack_eig::{matrix_dims, one, out_array};
use hlo_ir::{ArrayData, DType, Literal, LiteralData, Shape};

type C = Cx<f64>;

const ZERO: C = Cx { re: 0.0, im: 0.0 };
const ONE: C = Cx { re: 1.0, im: 0.0 };

/// Iterations (QR sweeps) per eigenvalue after which the iteration gives up (`zlahqr`'s 30).
const MAX_ITERS_PER_EIGENVALUE: usize = 30;

/// `geev`: see the module doc. `complex` is whether the routine is `cgeev` or `zgeev`.
pub(crate) fn geev(backend_config: Option<&str>, out: &Shape, ops: &[&Literal]) -> OpResult<Literal> {
    let (shape, data) = array_of(one(ops)?)?;
    let (batch, n, n2) = matrix_dims(shape)?;
    if n != n2 {
        return invalid("geev needs square matrices");
    }
    let left = config_char(backend_config, "compute_left") == Some('V');
    let right = config_char(backend_config, "compute_right") == Some('V');
    let a: Vec<C> = match data {
        ArrayData::F32(v) => v.iter().map(|&x| Cx { re: x as f64, im: 0.0 }).collect(),
        ArrayData::F64(v) => v.iter().map(|&x| Cx { re: x, im: 0.0 }).collect(),
        ArrayData::C64(v) => v.iter().map(|&[re, im]| Cx { re: re as f64, im: im as f64 }).collect(),
        ArrayData::C128(v) => v.iter().map(|&[re, im]| Cx { re, im }).collect(),
        _ => return unsupported("geev of elements other than f32, f64, c64 and c128"),
    };
    let (mut w, mut vl, mut vr, mut info) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for b in 0..batch {
        let m = &a[b * n * n..(b + 1) * n * n];
        let r =
            if m.iter().all(|z| z.re.is_finite() && z.im.is_finite()) { eig(m.to_vec(), n, left, right) } else { None };
        let nan = Cx { re: f64::NAN, im: f64::NAN };
        let (wb, vlb, vrb) = r.clone().unwrap_or((vec![nan; n], vec![nan; n * n], vec![nan; n * n]));
        w.extend(wb);
        vl.extend(if left || r.is_none() { vlb } else { vec![ZERO; n * n] });
        vr.extend(if right || r.is_none() { vrb } else { vec![ZERO; n * n] });
        info.push(i32::from(r.is_none()));
    }
    let complex = matches!(data, ArrayData::C64(_) | ArrayData::C128(_));
    let vec_index = if complex { 1 } else { 2 };
    let mut elems = Vec::new();
    if complex {
        elems.push(make(out_array(out, 0)?, cx_data(out_array(out, 0)?.dtype, &w)?));
    } else {
        let (wr, wi): (Vec<f64>, Vec<f64>) = w.iter().map(|z| (z.re, z.im)).unzip();
        elems.push(make(out_array(out, 0)?, re_data(out_array(out, 0)?.dtype, wr)?));
        elems.push(make(out_array(out, 1)?, re_data(out_array(out, 1)?.dtype, wi)?));
    }
    let vl_shape = out_array(out, vec_index)?;
    let vr_shape = out_array(out, vec_index + 1)?;
    elems.push(make(vl_shape, cx_data(vl_shape.dtype, &vl)?));
    elems.push(make(vr_shape, cx_data(vr_shape.dtype, &vr)?));
    elems.push(make(out_array(out, vec_index + 2)?, ArrayData::S32(info)));
    Ok(Literal { shape: out.clone(), data: LiteralData::Tuple(elems) })
}

fn cx_data(dtype: DType, v: &[C]) -> OpResult<ArrayData> {
    Ok(match dtype {
        DType::C64 => ArrayData::C64(v.iter().map(|z| [z.re as f32, z.im as f32]).collect()),
        DType::C128 => ArrayData::C128(v.iter().map(|z| [z.re, z.im]).collect()),
        _ => return invalid(format!("geev: a complex result of type {dtype}")),
    })
}

fn re_data(dtype: DType, v: Vec<f64>) -> OpResult<ArrayData> {
    Ok(match dtype {
        DType::F32 => ArrayData::F32(v.into_iter().map(|x| x as f32).collect()),
        DType::F64 => ArrayData::F64(v),
        _ => return invalid(format!("geev: a real result of type {dtype}")),
    })
}

fn scale(a: C, s: f64) -> C {
    Cx { re: a.re * s, im: a.im * s }
}

fn cabs1(z: C) -> f64 {
    z.re.abs() + z.im.abs()
}

/// `(w, vl, vr)` of one row-major `n x n` matrix, or `None` when the QR iteration does not converge.
#[allow(clippy::type_complexity)]
fn eig(mut h: Vec<C>, n: usize, left: bool, right: bool) -> Option<(Vec<C>, Vec<C>, Vec<C>)> {
    let mut z: Vec<C> = (0..n * n).map(|k| if k / n == k % n { ONE } else { ZERO }).collect();
    hessenberg(&mut h, &mut z, n);
    schur(&mut h, &mut z, n)?;
    let w: Vec<C> = (0..n).map(|i| h[i * n + i]).collect();
    let vr = if right { normalised(&matmul(&z, &triangular_eigenvectors(&h, n), n), n) } else { vec![] };
    let vl = if left {
        // Left eigenvectors of T are right eigenvectors of T^H, lower triangular: reversing rows
        // and columns makes it upper triangular with the eigenvalues (conjugated) reversed.
        let rev: Vec<C> = (0..n * n).map(|k| h[(n - 1 - k % n) * n + (n - 1 - k / n)].conj()).collect();
        let y = triangular_eigenvectors(&rev, n);
        let y: Vec<C> = (0..n * n).map(|k| y[(n - 1 - k / n) * n + (n - 1 - k % n)]).collect();
        normalised(&matmul(&z, &y, n), n)
    } else {
        vec![]
    };
    Some((w, vl, vr))
}

fn matmul(a: &[C], b: &[C], n: usize) -> Vec<C> {
    let mut c = vec![ZERO; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                c[i * n + j] = c[i * n + j] + aik * b[k * n + j];
            }
        }
    }
    c
}

/// `H = Q^H A Q` upper Hessenberg by Hermitian reflectors `I - 2 u u^H / u^H u`, with `Z = Z Q`.
fn hessenberg(h: &mut [C], z: &mut [C], n: usize) {
    for j in 0..n.saturating_sub(2) {
        let big = (j + 1..n).map(|i| h[i * n + j].modulus()).fold(0.0, f64::max);
        if big == 0.0 {
            continue;
        }
        let mut u: Vec<C> = (j + 1..n).map(|i| scale(h[i * n + j], 1.0 / big)).collect();
        let norm = u.iter().map(|x| x.abs2()).sum::<f64>().sqrt();
        let m0 = u[0].modulus();
        let phase = if m0 == 0.0 { ONE } else { scale(u[0], 1.0 / m0) };
        u[0] = u[0] + scale(phase, norm);
        let beta = u.iter().map(|x| x.abs2()).sum::<f64>();
        let f = 2.0 / beta;
        // Rows j+1.. of H: H -= f u (u^H H).
        for c in 0..n {
            let s = (0..u.len()).fold(ZERO, |acc, k| acc + u[k].conj() * h[(j + 1 + k) * n + c]);
            for k in 0..u.len() {
                h[(j + 1 + k) * n + c] = h[(j + 1 + k) * n + c] - scale(u[k] * s, f);
            }
        }
        // Columns j+1.. of H and Z: X -= f (X u) u^H.
        for x in [&mut *h, &mut *z] {
            for r in 0..n {
                let s = (0..u.len()).fold(ZERO, |acc, k| acc + x[r * n + j + 1 + k] * u[k]);
                for k in 0..u.len() {
                    x[r * n + j + 1 + k] = x[r * n + j + 1 + k] - scale(s * u[k].conj(), f);
                }
            }
        }
        for i in j + 2..n {
            h[i * n + j] = ZERO;
        }
    }
}

/// The rotation `(c, s)`, `c` real, with `[[c, s], [-conj(s), c]] [x; y] = [r; 0]`.
fn rotation(x: C, y: C) -> (f64, C) {
    let (ax, ay) = (x.modulus(), y.modulus());
    let r = ax.hypot(ay);
    if r == 0.0 {
        (1.0, ZERO)
    } else if ax == 0.0 {
        (0.0, scale(y.conj(), 1.0 / ay))
    } else {
        (ax / r, scale(y.conj() * x, 1.0 / (ax * r)))
    }
}

/// The Wilkinson shift: the eigenvalue of `[[a, b], [c, d]]` nearer `d`.
fn wilkinson(a: C, b: C, c: C, d: C) -> C {
    let half = scale(a - d, 0.5);
    let disc = csqrt(half * half + b * c);
    let (m1, m2) = (d - half + disc, d - half - disc);
    if cabs1(m1 - d) <= cabs1(m2 - d) {
        m1
    } else {
        m2
    }
}

fn csqrt(z: C) -> C {
    let m = z.modulus();
    if m == 0.0 {
        return ZERO;
    }
    let re = ((m + z.re.abs()) * 0.5).sqrt();
    if z.re >= 0.0 {
        Cx { re, im: z.im / (2.0 * re) }
    } else {
        Cx { re: z.im.abs() / (2.0 * re), im: re.copysign(z.im) }
    }
}

/// Single-shift complex QR of Hessenberg `h` to upper triangular, accumulating `z`.
fn schur(h: &mut [C], z: &mut [C], n: usize) -> Option<()> {
    if n == 0 {
        return Some(());
    }
    let mut hi = n - 1;
    let mut its = 0;
    let mut total = 0;
    while hi > 0 {
        total += 1;
        if total > MAX_ITERS_PER_EIGENVALUE * n * n.max(1) {
            return None;
        }
        // Negligible subdiagonals become zeros; the active block is lo..=hi.
        let mut lo = 0;
        for l in (1..=hi).rev() {
            let tst = cabs1(h[(l - 1) * n + l - 1]) + cabs1(h[l * n + l]);
            if cabs1(h[l * n + l - 1]) <= f64::EPSILON * tst {
                h[l * n + l - 1] = ZERO;
                lo = l;
                break;
            }
        }
        if lo == hi {
            hi -= 1;
            its = 0;
            continue;
        }
        its += 1;
        let mu = if its == 10 || its == 20 {
            h[hi * n + hi] + Cx { re: 0.75 * h[hi * n + hi - 1].re.abs(), im: 0.0 }
        } else {
            wilkinson(h[(hi - 1) * n + hi - 1], h[(hi - 1) * n + hi], h[hi * n + hi - 1], h[hi * n + hi])
        };
        for k in lo..hi {
            let (x, y) = if k == lo {
                (h[k * n + k] - mu, h[(k + 1) * n + k])
            } else {
                (h[k * n + k - 1], h[(k + 1) * n + k - 1])
            };
            let (c, s) = rotation(x, y);
            rotate(h, z, n, k, c, s);
        }
    }
    Some(())
}

/// `H = M H M^H` and `Z = Z M^H` for the rotation `M` of rows (and columns) `k, k + 1`.
fn rotate(h: &mut [C], z: &mut [C], n: usize, k: usize, c: f64, s: C) {
    for j in 0..n {
        let (p, q) = (h[k * n + j], h[(k + 1) * n + j]);
        h[k * n + j] = scale(p, c) + s * q;
        h[(k + 1) * n + j] = scale(q, c) - s.conj() * p;
    }
    for x in [h, z] {
        for i in 0..n {
            let (p, q) = (x[i * n + k], x[i * n + k + 1]);
            x[i * n + k] = scale(p, c) + s.conj() * q;
            x[i * n + k + 1] = scale(q, c) - s * p;
        }
    }
}

/// Columns rescaled when their largest entry passes this, so back substitution cannot overflow.
const RESCALE_ABOVE: f64 = 1e10;

/// The eigenvectors of upper triangular `t` as columns (`ztrevc`'s back substitution).
fn triangular_eigenvectors(t: &[C], n: usize) -> Vec<C> {
    let mut y: Vec<C> = (0..n * n).map(|k| if k / n == k % n { ONE } else { ZERO }).collect();
    let small = f64::MIN_POSITIVE * n as f64 / f64::EPSILON;
    for i in (0..n).rev() {
        for k in i + 1..n {
            let lambda = t[k * n + k];
            let smin = (f64::EPSILON * cabs1(lambda)).max(small);
            let s = (i + 1..n).fold(ZERO, |acc, j| acc + t[i * n + j] * y[j * n + k]);
            let mut d = t[i * n + i] - lambda;
            if cabs1(d) < smin {
                d = Cx { re: smin, im: 0.0 };
            }
            y[i * n + k] = -(s / d);
        }
        for k in i + 1..n {
            let big = (0..n).map(|r| cabs1(y[r * n + k])).fold(0.0, f64::max);
            if big > RESCALE_ABOVE {
                for r in 0..n {
                    y[r * n + k] = scale(y[r * n + k], 1.0 / big);
                }
            }
        }
    }
    y
}

/// Columns of `v` at unit norm with their first largest-magnitude component real (`zgeev`).
fn normalised(v: &[C], n: usize) -> Vec<C> {
    let mut v = v.to_vec();
    for k in 0..n {
        let norm = (0..n).map(|r| v[r * n + k].abs2()).sum::<f64>().sqrt();
        for r in 0..n {
            v[r * n + k] = scale(v[r * n + k], 1.0 / norm);
        }
        let mut p = 0;
        for r in 1..n {
            if v[r * n + k].abs2() > v[p * n + k].abs2() {
                p = r;
            }
        }
        let vp = v[p * n + k];
        let phase = scale(vp.conj(), 1.0 / vp.abs2().sqrt());
        for r in 0..n {
            v[r * n + k] = v[r * n + k] * phase;
        }
        v[p * n + k].im = 0.0;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(re: f64, im: f64) -> C {
        Cx { re, im }
    }

    /// Max of `|A v - lambda v|` over the eigenpairs, and of `|u^H A - lambda u^H|`.
    fn residuals(a: &[C], n: usize) -> (Vec<C>, f64) {
        let (w, vl, vr) = eig(a.to_vec(), n, true, true).unwrap();
        let mut worst: f64 = 0.0;
        for k in 0..n {
            let mut norm_r = 0.0;
            let mut norm_l = 0.0;
            for i in 0..n {
                let av = (0..n).fold(ZERO, |acc, j| acc + a[i * n + j] * vr[j * n + k]);
                worst = worst.max((av - w[k] * vr[i * n + k]).modulus());
                let ua = (0..n).fold(ZERO, |acc, j| acc + vl[j * n + k].conj() * a[j * n + i]);
                worst = worst.max((ua - w[k] * vl[i * n + k].conj()).modulus());
                norm_r += vr[i * n + k].abs2();
                norm_l += vl[i * n + k].abs2();
            }
            assert!((norm_r - 1.0).abs() < 1e-12 && (norm_l - 1.0).abs() < 1e-12);
        }
        (w, worst)
    }

    /// Rounded to 9 decimals (`+ 0.0` turns `-0` into `+0`), then sorted.
    fn sorted(w: Vec<C>) -> Vec<(f64, f64)> {
        let mut w: Vec<_> =
            w.into_iter().map(|z| ((z.re * 1e9).round() / 1e9 + 0.0, (z.im * 1e9).round() / 1e9 + 0.0)).collect();
        w.sort_by(|a, b| a.partial_cmp(b).unwrap());
        w
    }

    #[test]
    fn one_by_one() {
        let (w, res) = residuals(&[c(-2.5, 1.0)], 1);
        assert_eq!(w, vec![c(-2.5, 1.0)]);
        assert_eq!(res, 0.0);
    }

    #[test]
    fn rotation_has_a_conjugate_pair() {
        let a = [c(0.0, 0.0), c(-1.0, 0.0), c(1.0, 0.0), c(0.0, 0.0)];
        let (w, res) = residuals(&a, 2);
        assert_eq!(sorted(w), vec![(0.0, -1.0), (0.0, 1.0)]);
        assert!(res < 1e-14);
    }

    #[test]
    fn triangular_zero_and_repeated() {
        let t = [c(1.0, 0.0), c(2.0, 0.0), c(3.0, 0.0), ZERO, c(4.0, 0.0), c(5.0, 0.0), ZERO, ZERO, c(6.0, 0.0)];
        let (w, res) = residuals(&t, 3);
        assert_eq!(sorted(w), vec![(1.0, 0.0), (4.0, 0.0), (6.0, 0.0)]);
        assert!(res < 1e-13);
        let (w, res) = residuals(&[ZERO; 9], 3);
        assert_eq!(w, vec![ZERO; 3]);
        assert_eq!(res, 0.0);
        // Repeated eigenvalues (2, 2, -1), diagonalisable, lower triangular.
        let a = [c(-1.0, 0.0), ZERO, ZERO, c(1.0, 0.0), c(2.0, 0.0), ZERO, c(1.0, 0.0), ZERO, c(2.0, 0.0)];
        let (w, res) = residuals(&a, 3);
        assert_eq!(sorted(w), vec![(-1.0, 0.0), (2.0, 0.0), (2.0, 0.0)]);
        assert!(res < 1e-13, "{res}");
        // A Jordan block: defective, its eigenvalue exact to sqrt(eps) only.
        let a = [c(3.0, 0.0), c(-1.0, 0.0), c(1.0, 0.0), c(1.0, 0.0)];
        let (w, res) = residuals(&a, 2);
        assert!(w.iter().all(|&x| (x - c(2.0, 0.0)).modulus() < 1e-7), "{w:?}");
        assert!(res < 1e-7, "{res}");
    }

    #[test]
    fn permutation_cycle_needs_exceptional_shifts() {
        // The cyclic shift of 4: eigenvalues are the 4th roots of unity; unshifted QR stalls.
        let mut a = vec![ZERO; 16];
        for i in 0..4 {
            a[((i + 1) % 4) * 4 + i] = ONE;
        }
        let (w, res) = residuals(&a, 4);
        assert_eq!(sorted(w), vec![(-1.0, 0.0), (0.0, -1.0), (0.0, 1.0), (1.0, 0.0)]);
        assert!(res < 1e-13);
    }

    #[test]
    fn random_complex_matrix() {
        let n = 9;
        let a: Vec<C> =
            (0..n * n).map(|k| c(((k * 37 % 11) as f64 - 5.0) / 3.0, ((k * 17 % 7) as f64 - 3.0) / 2.0)).collect();
        let (w, res) = residuals(&a, n);
        let trace = (0..n).fold(ZERO, |acc, i| acc + a[i * n + i]);
        let sum = w.iter().fold(ZERO, |acc, &x| acc + x);
        assert!((sum - trace).modulus() < 1e-12);
        assert!(res < 1e-12, "{res}");
    }
}
