//! Index arithmetic over row-major arrays: strides, multi-index iteration, linearisation.
//!
//! Every literal stores its elements in row-major order of its logical dimensions, so
//! most shape ops reduce to "which source element feeds output element `i`". The
//! workhorse is [`separable_map`]: when each output dimension contributes to the source
//! offset independently of the others (broadcast, transpose, slice, reverse, pad, the
//! window of a gather), the source offset of every output element is a sum of per-dimension
//! terms, and an odometer walks the output adding one term per step instead of
//! re-linearising a multi-index per element.

/// Marks a contribution that makes the whole element "not from the source" (padding).
///
/// It is so negative that a sum with any number of valid (non-negative) terms stays
/// negative, so one sign test at the end detects it.
pub const FILL: i64 = -(1 << 60);

/// Number of elements of an array with dimensions `dims`.
pub fn num_elements(dims: &[i64]) -> usize {
    dims.iter().map(|&d| d.max(0) as usize).product()
}

/// Row-major strides (in elements) of an array with dimensions `dims`.
pub fn strides(dims: &[i64]) -> Vec<i64> {
    let mut res = vec![0i64; dims.len()];
    let mut acc = 1i64;
    for d in (0..dims.len()).rev() {
        res[d] = acc;
        acc *= dims[d].max(0);
    }
    res
}

/// Linear (row-major) offset of `index` given `strides`.
pub fn linearize(index: &[i64], strides: &[i64]) -> usize {
    index.iter().zip(strides).map(|(i, s)| i * s).sum::<i64>() as usize
}

/// The multi-index of row-major offset `linear` in an array of dimensions `dims`.
pub fn delinearize(mut linear: usize, dims: &[i64], out: &mut [i64]) {
    for d in (0..dims.len()).rev() {
        let n = dims[d].max(1) as usize;
        out[d] = (linear % n) as i64;
        linear /= n;
    }
}

/// Advances `index` to the next multi-index in row-major order; false after the last one.
pub fn bump(index: &mut [i64], dims: &[i64]) -> bool {
    for d in (0..dims.len()).rev() {
        index[d] += 1;
        if index[d] < dims[d] {
            return true;
        }
        index[d] = 0;
    }
    false
}

/// Calls `f` with every multi-index of `dims` in row-major order.
///
/// Calls it once with an empty index for a scalar, and never for an empty array.
pub fn for_each_index(dims: &[i64], mut f: impl FnMut(&[i64])) {
    if dims.iter().any(|&d| d <= 0) {
        return;
    }
    let mut index = vec![0i64; dims.len()];
    loop {
        f(&index);
        if !bump(&mut index, dims) {
            break;
        }
    }
}

/// Walks an output of dimensions `out_dims` in row-major order, one innermost row at a
/// time: `f(base, inner)` where element `k` of the row has source offset
/// `base + inner[k]`, and `terms[d][o]` is what coordinate `o` of output dimension `d`
/// adds to the offset. Not called at all for an empty output.
///
/// Short innermost dimensions are merged into longer rows first (the row's terms are
/// the sums of the merged dimensions' terms), so the per-row bookkeeping stays small
/// next to the per-element work, e.g. for a `[n, n, 2]` result.
pub fn visit_rows(out_dims: &[i64], terms: &[Vec<i64>], mut f: impl FnMut(i64, &[i64])) {
    debug_assert_eq!(out_dims.len(), terms.len());
    if out_dims.iter().any(|&d| d <= 0) {
        return;
    }
    if out_dims.is_empty() {
        f(0, &[0]);
        return;
    }
    const MIN_ROW: usize = 256;
    const MAX_ROW: usize = 1 << 16;
    let mut rank = out_dims.len();
    let mut row: Vec<i64> = terms[rank - 1].clone();
    while rank >= 2 && row.len() < MIN_ROW && row.len() * terms[rank - 2].len() <= MAX_ROW {
        let outer = &terms[rank - 2];
        row = outer.iter().flat_map(|&a| row.iter().map(move |&b| a + b)).collect();
        rank -= 1;
    }
    let outer_rank = rank - 1;
    // `partial[d]` is the sum of the terms of outer dimensions 0..d at the current index.
    let mut index = vec![0usize; outer_rank];
    let mut partial = vec![0i64; outer_rank + 1];
    for d in 0..outer_rank {
        partial[d + 1] = partial[d] + terms[d][0];
    }
    loop {
        f(partial[outer_rank], &row);
        // Advance the outer dimensions like an odometer.
        let mut d = outer_rank;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            if (index[d] as i64) < out_dims[d] {
                break;
            }
            index[d] = 0;
        }
        for k in d..outer_rank {
            partial[k + 1] = partial[k] + terms[k][index[k]];
        }
    }
}

/// For an output of dimensions `out_dims`, the source offset of every element (see
/// [`visit_rows`] for `terms`).
///
/// A term of [`FILL`] marks coordinates with no source element; their offsets come back
/// as `usize::MAX`.
pub fn separable_map(out_dims: &[i64], terms: &[Vec<i64>]) -> Vec<usize> {
    let mut res = Vec::with_capacity(num_elements(out_dims));
    visit_rows(out_dims, terms, |base, inner| {
        res.extend(inner.iter().map(|&t| {
            let s = base + t;
            if s < 0 {
                usize::MAX
            } else {
                s as usize
            }
        }))
    });
    res
}

/// Gathers `v` through a separable map (no [`FILL`] terms) without building the offsets.
/// Rows whose terms are contiguous are copied as slices and constant rows are splatted,
/// so broadcasts, slices and most transposes run at memory speed.
pub fn take_separable<T: Copy>(v: &[T], out_dims: &[i64], terms: &[Vec<i64>]) -> Vec<T> {
    let mut res = Vec::with_capacity(num_elements(out_dims));
    // Every row has the same terms: classify them once.
    let mut kind: Option<(bool, bool)> = None;
    visit_rows(out_dims, terms, |base, inner| {
        let (contiguous, constant) = *kind.get_or_insert_with(|| {
            (inner.windows(2).all(|w| w[1] == w[0] + 1), inner.windows(2).all(|w| w[1] == w[0]))
        });
        let start = (base + inner[0]) as usize;
        if contiguous {
            res.extend_from_slice(&v[start..start + inner.len()]);
        } else if constant {
            res.extend(std::iter::repeat_n(v[start], inner.len()));
        } else {
            res.extend(inner.iter().map(|&t| v[(base + t) as usize]));
        }
    });
    res
}

/// Terms for [`separable_map`] where output dimension `d` reads source coordinate
/// `start + o * step` of a source dimension with stride `stride`.
pub fn affine_terms(size: i64, start: i64, step: i64, stride: i64) -> Vec<i64> {
    (0..size.max(0)).map(|o| (start + o * step) * stride).collect()
}

/// The permutation that undoes `perm` (`inverse[perm[i]] == i`).
pub fn inverse_permutation(perm: &[i64]) -> Vec<i64> {
    let mut res = vec![0i64; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        res[p as usize] = i as i64;
    }
    res
}

/// Result dimensions and [`visit_rows`] terms of a transpose: output dimension `d` is
/// source dimension `perm[d]`.
pub fn transpose_terms(src_dims: &[i64], perm: &[i64]) -> (Vec<i64>, Vec<Vec<i64>>) {
    let src_strides = strides(src_dims);
    let out_dims: Vec<i64> = perm.iter().map(|&p| src_dims[p as usize]).collect();
    let terms: Vec<Vec<i64>> =
        perm.iter().map(|&p| affine_terms(src_dims[p as usize], 0, 1, src_strides[p as usize])).collect();
    (out_dims, terms)
}

/// Source offsets of a transpose: output dimension `d` is source dimension `perm[d]`.
pub fn transpose_map(src_dims: &[i64], perm: &[i64]) -> Vec<usize> {
    let (out_dims, terms) = transpose_terms(src_dims, perm);
    separable_map(&out_dims, &terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_and_linearize() {
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(linearize(&[1, 2, 3], &strides(&[2, 3, 4])), 23);
        let mut idx = [0; 3];
        delinearize(23, &[2, 3, 4], &mut idx);
        assert_eq!(idx, [1, 2, 3]);
    }

    #[test]
    fn separable_map_matches_transpose() {
        // A 2x3 source transposed to 3x2.
        assert_eq!(transpose_map(&[2, 3], &[1, 0]), vec![0, 3, 1, 4, 2, 5]);
    }

    #[test]
    fn separable_map_fill() {
        let terms = vec![vec![0, FILL, 1]];
        assert_eq!(separable_map(&[3], &terms), vec![0, usize::MAX, 1]);
    }

    #[test]
    fn iteration_order() {
        let mut seen = Vec::new();
        for_each_index(&[2, 2], |i| seen.push(i.to_vec()));
        assert_eq!(seen, vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![1, 1]]);
        let mut count = 0;
        for_each_index(&[], |_| count += 1);
        assert_eq!(count, 1);
    }
}
