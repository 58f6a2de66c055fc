//! `fft`: FFT, IFFT, RFFT and IRFFT over the last 1-3 dimensions, any lengths, computed in
//! f64 and rounded once to the result type.
//!
//! Each 1-D transform is a mixed-radix Cooley-Tukey recursion on the smallest prime factor,
//! a direct DFT for prime lengths; every twiddle angle is computed from `(j * k) mod n` so no
//! error accumulates in them. Conventions are XLA's: the forward transform has
//! `exp(-2 pi i jk / n)`, the inverse `exp(+2 pi i jk / n) / n`; RFFT keeps the first
//! `n / 2 + 1` terms of the last dimension and IRFFT reads only those (the imaginary parts of
//! the zero and Nyquist terms do not contribute).

use crate::array::array_of;
use crate::error::{invalid, OpResult};
use hlo_ir::{ArrayData, ArrayShape, FftType, Literal};
use std::f64::consts::PI;

type C = [f64; 2];

pub fn fft(x: &Literal, fft_type: FftType, lengths: &[i64], out: &ArrayShape) -> OpResult<ArrayData> {
    let (shape, data) = array_of(x)?;
    let rank = shape.rank();
    let k = lengths.len();
    if k == 0 || k > 3 || k > rank {
        return invalid(format!("fft over {k} dimensions of a rank-{rank} operand"));
    }
    let mut dims = shape.dims.clone();
    let mut values: Vec<C> = match data {
        ArrayData::C64(v) => v.iter().map(|z| [z[0] as f64, z[1] as f64]).collect(),
        ArrayData::C128(v) => v.clone(),
        ArrayData::F32(v) => v.iter().map(|&x| [x as f64, 0.0]).collect(),
        ArrayData::F64(v) => v.iter().map(|&x| [x, 0.0]).collect(),
        _ => return invalid("fft of a non-float operand"),
    };
    let axes: Vec<usize> = (rank - k..rank).collect();
    let last = rank - 1;
    match fft_type {
        FftType::Fft | FftType::Ifft => {
            let inverse = fft_type == FftType::Ifft;
            for &axis in &axes {
                let n = dims[axis] as usize;
                values = along_axis(&values, &dims, axis, n, |line| transform(line, inverse));
            }
        }
        FftType::Rfft => {
            let n = lengths[k - 1] as usize;
            let m = n / 2 + 1;
            values = along_axis(&values, &dims, last, m, |line| {
                let mut full = transform(line, false);
                full.truncate(m);
                full
            });
            dims[last] = m as i64;
            for &axis in &axes[..k - 1] {
                let n = dims[axis] as usize;
                values = along_axis(&values, &dims, axis, n, |line| transform(line, false));
            }
        }
        FftType::Irfft => {
            for &axis in &axes[..k - 1] {
                let n = dims[axis] as usize;
                values = along_axis(&values, &dims, axis, n, |line| transform(line, true));
            }
            let n = lengths[k - 1] as usize;
            let m = n / 2 + 1;
            values = along_axis(&values, &dims, last, n, |line| {
                // The full Hermitian spectrum from the first n / 2 + 1 terms.
                let term = |j: usize| line.get(j).copied().unwrap_or([0.0, 0.0]);
                let full: Vec<C> = (0..n)
                    .map(|j| {
                        if j < m {
                            term(j)
                        } else {
                            let [re, im] = term(n - j);
                            [re, -im]
                        }
                    })
                    .collect();
                transform(&full, true).into_iter().map(|z| [z[0], 0.0]).collect()
            });
            dims[last] = n as i64;
        }
    }
    if dims != out.dims {
        return invalid(format!("fft result dims {dims:?} differ from the declared {:?}", out.dims));
    }
    Ok(match out.dtype {
        hlo_ir::DType::C64 => ArrayData::C64(values.iter().map(|z| [z[0] as f32, z[1] as f32]).collect()),
        hlo_ir::DType::C128 => ArrayData::C128(values),
        hlo_ir::DType::F32 => ArrayData::F32(values.iter().map(|z| z[0] as f32).collect()),
        hlo_ir::DType::F64 => ArrayData::F64(values.iter().map(|z| z[0]).collect()),
        other => return invalid(format!("fft result of type {other}")),
    })
}

/// Applies `f` to every line along `axis` of a row-major array of `dims`; each line becomes
/// `n_out` values.
fn along_axis(values: &[C], dims: &[i64], axis: usize, n_out: usize, f: impl Fn(&[C]) -> Vec<C>) -> Vec<C> {
    let n_in = dims[axis] as usize;
    let inner: usize = dims[axis + 1..].iter().map(|&d| d as usize).product();
    let outer: usize = dims[..axis].iter().map(|&d| d as usize).product();
    let mut out = vec![[0.0, 0.0]; outer * n_out * inner];
    let mut line = vec![[0.0, 0.0]; n_in];
    for o in 0..outer {
        for i in 0..inner {
            for (j, slot) in line.iter_mut().enumerate() {
                *slot = values[(o * n_in + j) * inner + i];
            }
            let res = f(&line);
            for (j, z) in res.into_iter().enumerate().take(n_out) {
                out[(o * n_out + j) * inner + i] = z;
            }
        }
    }
    out
}

/// The DFT of `x` (inverse: conjugate twiddles and `1 / n`).
fn transform(x: &[C], inverse: bool) -> Vec<C> {
    let n = x.len();
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut y = dft(x, n, sign);
    if inverse && n > 0 {
        let s = 1.0 / n as f64;
        y.iter_mut().for_each(|z| *z = [z[0] * s, z[1] * s]);
    }
    y
}

/// `exp(sign 2 pi i m / n)` with `m` reduced mod `n` exactly.
fn twiddle(m: usize, n: usize, sign: f64) -> C {
    let a = 2.0 * PI * ((m % n) as f64) / n as f64;
    [a.cos(), sign * a.sin()]
}

fn mul(a: C, b: C) -> C {
    [a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]]
}

/// Mixed-radix decimation in time on the smallest prime factor `p` of `n`: `p` transforms of
/// length `n / p` of the strided subsequences, combined with twiddles.
fn dft(x: &[C], n: usize, sign: f64) -> Vec<C> {
    if n <= 1 {
        return x.to_vec();
    }
    let p = (2..).take_while(|d| d * d <= n).find(|d| n % d == 0).unwrap_or(n);
    if p == n {
        return (0..n)
            .map(|k| {
                let mut acc = [0.0, 0.0];
                for (j, &v) in x.iter().enumerate() {
                    let t = mul(v, twiddle(j * k, n, sign));
                    acc = [acc[0] + t[0], acc[1] + t[1]];
                }
                acc
            })
            .collect();
    }
    let m = n / p;
    let subs: Vec<Vec<C>> = (0..p)
        .map(|r| {
            let sub: Vec<C> = (0..m).map(|j| x[j * p + r]).collect();
            dft(&sub, m, sign)
        })
        .collect();
    (0..n)
        .map(|k| {
            let mut acc = [0.0, 0.0];
            for (r, sub) in subs.iter().enumerate() {
                let t = mul(sub[k % m], twiddle(r * k, n, sign));
                acc = [acc[0] + t[0], acc[1] + t[1]];
            }
            acc
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(x: &[C], sign: f64) -> Vec<C> {
        let n = x.len();
        (0..n)
            .map(|k| {
                x.iter().enumerate().fold([0.0, 0.0], |acc, (j, &v)| {
                    let t = mul(v, twiddle(j * k, n, sign));
                    [acc[0] + t[0], acc[1] + t[1]]
                })
            })
            .collect()
    }

    #[test]
    fn mixed_radix_matches_the_direct_transform() {
        for n in [1usize, 2, 3, 6, 12, 30, 49, 64, 97] {
            let x: Vec<C> = (0..n).map(|j| [(j as f64 * 0.7).sin(), (j as f64 * 1.3).cos()]).collect();
            let (a, b) = (dft(&x, n, -1.0), direct(&x, -1.0));
            for (u, v) in a.iter().zip(&b) {
                assert!((u[0] - v[0]).abs() < 1e-9 && (u[1] - v[1]).abs() < 1e-9, "n = {n}");
            }
            let back = transform(&a, true);
            for (u, v) in back.iter().zip(&x) {
                assert!((u[0] - v[0]).abs() < 1e-12 && (u[1] - v[1]).abs() < 1e-12, "n = {n}");
            }
        }
    }
}
