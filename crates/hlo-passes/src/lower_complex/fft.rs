//! `fft` as dots with constant DFT matrices, on the (re, im) parts of [`super`].
//!
//! A transform of length `n` along one axis is one `dot` with an `n x n` matrix when `n` is at
//! most [`DIRECT_MAX`]; a longer one is split Cooley-Tukey style (the "four-step" FFT):
//! `n = n1 * n2`, transforms of length `n1` and `n2` along the two halves of the reshaped axis,
//! a twiddle multiply between them and a transpose. Transforms of any length work: a prime length
//! above [`DIRECT_MAX`] runs as one direct transform, up to [`PRIME_MAX`].
//!
//! Twiddles are computed in f64 from `(j * k) mod n` and rounded once, so the matrices are as
//! exact as the part type allows; each output sums `n1 + n2 + ...` products, so the rounding
//! error grows like the square root of the factors, not of `n`. FFT and IFFT follow XLA's
//! conventions: the forward transform has `exp(-2 pi i jk / n)`, the inverse `exp(+...)` and a
//! factor `1 / n`; RFFT keeps the first `n / 2 + 1` outputs of the last axis, and IRFFT reads
//! only those (the imaginary parts of the zero and Nyquist terms are ignored).

use super::{unsupported, Lowerer, Result, Val};
use hlo_ir::{ArrayData, ArrayShape, DType, DotDims, FftType, Instr, InstrId, Literal, Op, Shape, SliceDim};
use std::f64::consts::PI;

/// Longest transform done as one dot with a dense DFT matrix.
const DIRECT_MAX: i64 = 128;
/// Longest prime length (a direct transform, no factors to split by).
const PRIME_MAX: i64 = 2048;

impl Lowerer<'_> {
    pub(super) fn fft(&mut self, instr: &Instr, fft_type: FftType, lengths: &[i64], x: InstrId) -> Result<Val> {
        let operand = self.old.instr(x).shape.as_array().cloned().expect("fft operands are arrays");
        let rank = operand.rank();
        let k = lengths.len();
        if k == 0 || k > rank || k > 3 {
            return Err(unsupported(instr, "an fft of this rank"));
        }
        for &n in lengths {
            if !is_supported_length(n) {
                return Err(unsupported(instr, &format!("an fft of prime length {n} above {PRIME_MAX}")));
            }
        }
        let axes: Vec<usize> = (rank - k..rank).collect();
        Ok(match fft_type {
            FftType::Fft | FftType::Ifft => {
                let inverse = fft_type == FftType::Ifft;
                let (mut a, mut b) = self.pair(x)?;
                for (&axis, &n) in axes.iter().zip(lengths) {
                    (a, b) = self.dft_axis(a, b, axis, n, inverse);
                }
                Val::Pair(a, b)
            }
            FftType::Rfft => {
                let real = self.one(x)?;
                let last = axes[k - 1];
                let (mut a, mut b) = self.rdft_last(real, last, lengths[k - 1]);
                for (&axis, &n) in axes[..k - 1].iter().zip(lengths) {
                    (a, b) = self.dft_axis(a, b, axis, n, false);
                }
                Val::Pair(a, b)
            }
            FftType::Irfft => {
                let (mut a, mut b) = self.pair(x)?;
                for (&axis, &n) in axes[..k - 1].iter().zip(lengths) {
                    (a, b) = self.dft_axis(a, b, axis, n, true);
                }
                Val::One(self.irdft_last(a, b, axes[k - 1], lengths[k - 1]))
            }
        })
    }

    /// The complex DFT of length `n` along `axis` (inverse: `exp(+...)` and `1 / n`).
    fn dft_axis(&mut self, a: InstrId, b: InstrId, axis: usize, n: i64, inverse: bool) -> (InstrId, InstrId) {
        if n <= 1 {
            return (a, b);
        }
        let sign = if inverse { 1.0 } else { -1.0 };
        let scale = if inverse { 1.0 / n as f64 } else { 1.0 };
        match split(n) {
            None => {
                let dtype = self.array_shape(a).dtype;
                let c = self.matrix(dtype, n, n, |j, k| scale * angle(j, k, n).cos());
                let s = self.matrix(dtype, n, n, |j, k| scale * sign * angle(j, k, n).sin());
                // (a + ib)(C + iS) = (aC - bS) + i(aS + bC)
                let ac = self.dot_axis(a, c, axis);
                let bs = self.dot_axis(b, s, axis);
                let as_ = self.dot_axis(a, s, axis);
                let bc = self.dot_axis(b, c, axis);
                (self.sub(ac, bs), self.add(as_, bc))
            }
            Some((n1, n2)) => {
                let shape = self.array_shape(a);
                let mut dims = shape.dims.clone();
                dims.splice(axis..=axis, [n1, n2]);
                let a = self.reshape(a, &dims);
                let b = self.reshape(b, &dims);
                // Input index j = j1 * n2 + j2; transform j1 -> k1.
                let (a, b) = self.dft_axis(a, b, axis, n1, inverse);
                // Twiddle exp(sign 2 pi i j2 k1 / n) on axes (k1, j2).
                let tr = self.matrix(shape.dtype, n1, n2, |k1, j2| angle(k1, j2, n).cos());
                let ti = self.matrix(shape.dtype, n1, n2, |k1, j2| sign * angle(k1, j2, n).sin());
                let tr = self.broadcast_to(tr, &dims, axis);
                let ti = self.broadcast_to(ti, &dims, axis);
                let (a, b) = self.complex_mul(a, b, tr, ti);
                // Transform j2 -> k2; output index k = k1 + n1 * k2 wants (k2, k1) row-major.
                let (a, b) = self.dft_axis(a, b, axis + 1, n2, inverse);
                let mut perm: Vec<i64> = (0..dims.len() as i64).collect();
                perm.swap(axis, axis + 1);
                let a = self.push(Op::Transpose { dimensions: perm.clone() }, &[a]);
                let b = self.push(Op::Transpose { dimensions: perm }, &[b]);
                (self.reshape(a, &shape.dims), self.reshape(b, &shape.dims))
            }
        }
    }

    /// The first `n / 2 + 1` outputs of the forward DFT of a real array along `axis`.
    fn rdft_last(&mut self, x: InstrId, axis: usize, n: i64) -> (InstrId, InstrId) {
        let m = n / 2 + 1;
        let dtype = self.array_shape(x).dtype;
        if split(n).is_none() {
            let c = self.matrix(dtype, n, m, |j, k| angle(j, k, n).cos());
            let s = self.matrix(dtype, n, m, |j, k| -angle(j, k, n).sin());
            return (self.dot_axis(x, c, axis), self.dot_axis(x, s, axis));
        }
        let zero = self.splat(0.0, x);
        let (a, b) = self.dft_axis(x, zero, axis, n, false);
        (self.slice_axis(a, axis, 0, m), self.slice_axis(b, axis, 0, m))
    }

    /// The real inverse DFT of length `n` along `axis` from its first `n / 2 + 1` terms.
    fn irdft_last(&mut self, a: InstrId, b: InstrId, axis: usize, n: i64) -> InstrId {
        let m = n / 2 + 1;
        let dtype = self.array_shape(a).dtype;
        let have = self.array_shape(a).dims[axis];
        // XLA reads exactly n / 2 + 1 terms; a longer input's extra terms are ignored.
        let (a, b) = if have > m { (self.slice_axis(a, axis, 0, m), self.slice_axis(b, axis, 0, m)) } else { (a, b) };
        if split(n).is_none() {
            // x_j = (1/n) sum_k w_k (a_k cos(2 pi jk/n) - b_k sin(2 pi jk/n)), w_k = 2 but for
            // the zero and Nyquist terms, which appear once in the full spectrum.
            let weight = move |k: i64| if k == 0 || (n % 2 == 0 && k == n / 2) { 1.0 } else { 2.0 };
            let c = self.matrix(dtype, m, n, |k, j| weight(k) * angle(j, k, n).cos() / n as f64);
            let s = self.matrix(dtype, m, n, |k, j| -weight(k) * angle(j, k, n).sin() / n as f64);
            let ac = self.dot_axis(a, c, axis);
            let bs = self.dot_axis(b, s, axis);
            return self.add(ac, bs);
        }
        // The full Hermitian spectrum: X[n - k] = conj(X[k]) for k = 1 .. n - m.
        let tail_a = self.slice_axis(a, axis, 1, n - m + 1);
        let tail_b = self.slice_axis(b, axis, 1, n - m + 1);
        let tail_a = self.push(Op::Reverse { dimensions: vec![axis as i64] }, &[tail_a]);
        let tail_b = self.push(Op::Reverse { dimensions: vec![axis as i64] }, &[tail_b]);
        let tail_b = self.unary(hlo_ir::UnaryOp::Negate, tail_b);
        let full_a = self.push(Op::Concatenate { dimension: axis as i64 }, &[a, tail_a]);
        let full_b = self.push(Op::Concatenate { dimension: axis as i64 }, &[b, tail_b]);
        let (re, _) = self.dft_axis(full_a, full_b, axis, n, true);
        re
    }

    /// `x` contracted along `axis` with the rows of `matrix`, the result's axis put back in place.
    fn dot_axis(&mut self, x: InstrId, matrix: InstrId, axis: usize) -> InstrId {
        let dims = DotDims {
            lhs_batch: vec![],
            lhs_contracting: vec![axis as i64],
            rhs_batch: vec![],
            rhs_contracting: vec![0],
        };
        let d = self.push(Op::Dot { dims, precision: vec![], algorithm: None }, &[x, matrix]);
        let rank = self.array_shape(d).rank();
        if axis + 1 == rank {
            return d;
        }
        // Dot puts the new axis last: move it back to `axis`.
        let mut perm: Vec<i64> = (0..rank as i64 - 1).collect();
        perm.insert(axis, rank as i64 - 1);
        self.push(Op::Transpose { dimensions: perm }, &[d])
    }

    fn complex_mul(&mut self, a: InstrId, b: InstrId, c: InstrId, d: InstrId) -> (InstrId, InstrId) {
        let ac = self.mul(a, c);
        let bd = self.mul(b, d);
        let ad = self.mul(a, d);
        let bc = self.mul(b, c);
        (self.sub(ac, bd), self.add(ad, bc))
    }

    fn reshape(&mut self, x: InstrId, dims: &[i64]) -> InstrId {
        let dtype = self.array_shape(x).dtype;
        self.push_shaped(Shape::array(dtype, dims.to_vec()), Op::Reshape, &[x])
    }

    fn slice_axis(&mut self, x: InstrId, axis: usize, start: i64, limit: i64) -> InstrId {
        let shape = self.array_shape(x);
        let dims = shape
            .dims
            .iter()
            .enumerate()
            .map(|(d, &size)| {
                if d == axis {
                    SliceDim { start, limit, stride: 1 }
                } else {
                    SliceDim { start: 0, limit: size, stride: 1 }
                }
            })
            .collect();
        self.push(Op::Slice { dims }, &[x])
    }

    /// A `[rows, cols]` matrix placed on axes `(axis, axis + 1)` of an array of `dims`.
    fn broadcast_to(&mut self, matrix: InstrId, dims: &[i64], axis: usize) -> InstrId {
        let dtype = self.array_shape(matrix).dtype;
        let dimensions = vec![axis as i64, axis as i64 + 1];
        self.push_shaped(Shape::array(dtype, dims.to_vec()), Op::Broadcast { dimensions }, &[matrix])
    }

    /// A constant `[rows, cols]` matrix of `dtype` with entries `f(row, col)`.
    fn matrix(&mut self, dtype: DType, rows: i64, cols: i64, f: impl Fn(i64, i64) -> f64) -> InstrId {
        let values = (0..rows).flat_map(|r| (0..cols).map(move |c| (r, c))).map(|(r, c)| f(r, c));
        let data = match dtype {
            DType::F64 => ArrayData::F64(values.collect()),
            _ => ArrayData::F32(values.map(|v| v as f32).collect()),
        };
        let dtype = if dtype == DType::F64 { DType::F64 } else { DType::F32 };
        let c = self.b.constant(Literal::array(ArrayShape::new(dtype, vec![rows, cols]), data));
        self.finish_new(c, ".dft");
        c
    }
}

/// `2 pi (j k mod n) / n`, exact in its integer part.
fn angle(j: i64, k: i64, n: i64) -> f64 {
    let r = ((j as i128 * k as i128) % n as i128) as f64;
    2.0 * PI * r / n as f64
}

/// A split `n = n1 * n2` with `n1` the largest factor at most `sqrt(n)`, for lengths above
/// [`DIRECT_MAX`]; `None` for a direct transform.
fn split(n: i64) -> Option<(i64, i64)> {
    if n <= DIRECT_MAX {
        return None;
    }
    let mut n1 = (n as f64).sqrt() as i64;
    while n1 > 1 && n % n1 != 0 {
        n1 -= 1;
    }
    (n1 > 1).then_some((n1, n / n1))
}

/// Whether every factor left unsplit is at most [`PRIME_MAX`] (its matrix stays a few MB).
fn is_supported_length(n: i64) -> bool {
    match split(n) {
        Some((n1, n2)) => is_supported_length(n1) && is_supported_length(n2),
        None => (1..=PRIME_MAX).contains(&n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_split_near_their_square_root() {
        assert_eq!(split(64), None);
        assert_eq!(split(1024), Some((32, 32)));
        assert_eq!(split(1000), Some((25, 40)));
        assert_eq!(split(131), None); // prime: direct
        assert!(is_supported_length(2039));
        assert!(!is_supported_length(2053));
        assert!(!is_supported_length(2 * 2053));
    }
}
