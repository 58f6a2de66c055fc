//! `linalg-expander`'s Jacobi methods: `lapack_{s,d}syevd_ffi` (symmetric eigendecomposition)
//! and `lapack_{s,d}gesdd_ffi` (SVD) as `while` loops of whole-matrix ops.
//!
//! Both use the parallel (tournament, or round-robin) ordering of XLA's `EighExpander`: the
//! matrix order `n` is padded to an even `N` with a zero row and column that never mixes with the
//! others, and each round rotates the `N / 2` disjoint pairs of the circle method at once; `N - 1`
//! rounds make a sweep. A round gathers each index's partner row or column (a `gather`, which
//! fuses into its users) and applies the rotations as elementwise
//! `x_i' = c_i x_i + s_i x_partner(i)`, so the entries off the diagonal carry rounding relative to
//! themselves and converge to zero, not to a floor of dot-product rounding.
//! - `syevd` (and complex `heevd`, whose rotations are `U = D J D^H` with the phase
//!   `D = conj(a_pq / |a_pq|)` at `q`, so that `J` acts on the real `|a_pq|`; the diagonal's
//!   imaginary part is never read): two-sided Jacobi on the triangle `uplo` names, the rotated pair's diagonal entries
//!   set to `a_pp - t a_pq`, `a_qq + t a_pq` and `a_pq` to zero (Golub and Van Loan's
//!   `sym.schur2`); it stops when the off-diagonal Frobenius norm is at most `eps` times the
//!   input's, or after 30 sweeps.
//! - `gesdd`: one-sided (Hestenes) Jacobi on the columns of the tall orientation (`A^H` for a wide
//!   `A`): a pair rotates when `|a_p^H a_q| > sqrt(M) eps |a_p| |a_q|` (complex: by `D J D^H` on
//!   that Gram entry's phase, as `heevd`); it stops after a sweep
//!   without rotations, or after 30 sweeps. The singular values are the column norms; `u` is the
//!   Householder QR's `Q` (signs fixed by `R`'s diagonal) of the normalised columns, which keeps it
//!   orthonormal where singular values are zero and completes it to `M x M` for `full_matrices`.
//!
//! Results are then sorted as LAPACK returns them (eigenvalues ascending, singular values
//! descending; equal values keep their index order) by ranks and one-hot dots. `info` is 1 for a
//! matrix holding a NaN or an infinity, whose results are NaN; `gesdd`'s first output keeps the
//! input and, for `jobz = 'N'`, `u` and `vt` are zeros (LAPACK leaves all three unspecified).

use super::{real_of, Expander, Reducers, G};
use hlo_ir::builder::ComputationBuilder;
use hlo_ir::{BinaryOp, CompareDirection, DType, DotDims, GatherDims, Op, PadDim, Shape, UnaryOp};

type Id = hlo_ir::InstrId;

const MAX_SWEEPS: i64 = 30;

/// `(low, high)` edge padding per dimension.
fn pad_dims(edges: &[(i64, i64)]) -> Vec<PadDim> {
    edges.iter().map(|&(low, high)| PadDim { low, high, interior: 0 }).collect()
}

/// The machine epsilon of `dt`'s real type.
pub(super) fn eps(dt: DType) -> f64 {
    if real_of(dt) == DType::F64 {
        f64::EPSILON
    } else {
        f32::EPSILON as f64
    }
}

impl G<'_> {
    /// Batched `x[B, i, k] y[B, k, j]`.
    pub(super) fn bmm(&mut self, x: Id, y: Id) -> Id {
        let dims =
            DotDims { lhs_batch: vec![0], lhs_contracting: vec![2], rhs_batch: vec![0], rhs_contracting: vec![1] };
        self.b.dot(x, y, dims)
    }
    /// `x[B, i, j]` at `[B, i, partner[j]]` (`axis` 2) or `[B, partner[i], j]` (`axis` 1), or
    /// `x[B, i]` at `[B, partner[i]]` (`axis` 1 of a rank-2 `x`): a gather that fuses into its users.
    fn take(&mut self, x: Id, partner: Id, axis: i64) -> Id {
        let d = self.dims(x);
        let n = self.dims(partner)[0];
        let idx = self.b.reshape(partner, &[n, 1]);
        let rank = d.len() as i64;
        let offset_dims: Vec<i64> = (0..rank).filter(|&k| k != axis).collect();
        let mut slice_sizes = d.clone();
        slice_sizes[axis as usize] = 1;
        let dims = GatherDims {
            offset_dims,
            collapsed_slice_dims: vec![axis],
            start_index_map: vec![axis],
            index_vector_dim: 1,
            operand_batching_dims: vec![],
            start_indices_batching_dims: vec![],
        };
        self.b.instr(Op::Gather { dims, slice_sizes, indices_are_sorted: false }, &[x, idx])
    }
    /// `sum` of `x` over `dim`, where `keep` holds (an exact gather when one element is kept).
    pub(super) fn masked_sum(&mut self, keep: Id, x: Id, dim: i64, r: Reducers) -> Id {
        let dt = self.b.array_shape(x).map(|a| a.dtype).unwrap_or(DType::F32);
        let dims = self.dims(x);
        let neg_zero = self.full(dt, -0.0, &dims);
        let terms = self.sel(keep, x, neg_zero);
        let init = self.c(dt, -0.0);
        let add = if dt.is_complex() { r.add } else { r.add_re };
        self.reduce(terms, init, dim, add)
    }
    /// The diagonal of `[B, n, n]`: `[B, n]`.
    pub(super) fn diag(&mut self, x: Id, r: Reducers) -> Id {
        let dims = self.dims(x);
        let (ri, ci) = (self.iota(&dims, 1), self.iota(&dims, 2));
        let eye = self.cmp(CompareDirection::Eq, ri, ci);
        self.masked_sum(eye, x, 2, r)
    }
    pub(super) fn indicator(&mut self, p: Id, dt: DType) -> Id {
        let dims = self.dims(p);
        let (one, zero) = (self.full(dt, 1.0, &dims), self.full(dt, 0.0, &dims));
        self.sel(p, one, zero)
    }
    /// `x[B, n]` broadcast along the rows (`x[b, j]` at `[b, i, j]`) of `[B, m, n]`.
    pub(super) fn along_rows(&mut self, x: Id, m: i64) -> Id {
        let d = self.dims(x);
        self.bc(x, &[0, 2], &[d[0], m, d[1]])
    }
    /// `x[B, n]` broadcast along the columns (`x[b, i]` at `[b, i, j]`) of `[B, n, k]`.
    pub(super) fn along_cols(&mut self, x: Id, k: i64) -> Id {
        let d = self.dims(x);
        self.bc(x, &[0, 1], &[d[0], d[1], k])
    }
    /// A predicate `[B]` true where every element of `x[B, ...]` is finite.
    pub(super) fn all_finite(&mut self, x: Id, r: Reducers) -> Id {
        let dims = self.dims(x);
        let fin = match self.im(x) {
            Some(im) => {
                let re = self.re(x);
                let fin_re = self.b.unary(UnaryOp::IsFinite, re);
                let fin_im = self.b.unary(UnaryOp::IsFinite, im);
                self.and(fin_re, fin_im)
            }
            None => self.b.unary(UnaryOp::IsFinite, x),
        };
        let (zero, one) = (self.full(DType::S32, 0.0, &dims), self.full(DType::S32, 1.0, &dims));
        let bad = self.sel(fin, zero, one);
        let init = self.c(DType::S32, 0.0);
        let rest: Vec<i64> = (1..dims.len() as i64).collect();
        let count = self.b.reduce(&[bad], &[init], &rest, r.add_s32);
        let zero_s = self.c(DType::S32, 0.0);
        self.cmp_s(CompareDirection::Eq, count, zero_s)
    }
}

/// The round's pairing for `big_n` (even) indices: `partner[i]` as `s32[N]` and the mask
/// `j == partner[i]` broadcast to `[B, N, N]`.
fn pairing(g: &mut G, round: Id, batch: i64, big_n: i64) -> (Id, Id) {
    let rounds = big_n - 1;
    let nd = [big_n];
    let i = g.iota(&nd, 0);
    let rs = g.c(DType::S32, rounds as f64);
    let rr = g.bin(BinaryOp::Remainder, round, rs);
    let rr_b = g.b.broadcast(rr, &[], &nd);
    let one = g.full(DType::S32, 1.0, &nd);
    let rounds_b = g.full(DType::S32, rounds as f64, &nd);
    // The position of player i: 0 for 0, else 1 + ((i - 1 - rr) mod rounds).
    let im1 = g.bin(BinaryOp::Subtract, i, one);
    let x = g.bin(BinaryOp::Add, im1, rounds_b);
    let x = g.bin(BinaryOp::Subtract, x, rr_b);
    let x = g.bin(BinaryOp::Remainder, x, rounds_b);
    let pos = g.bin(BinaryOp::Add, x, one);
    let zero = g.full(DType::S32, 0.0, &nd);
    let is0 = g.cmp(CompareDirection::Eq, i, zero);
    let pos = g.sel(is0, zero, pos);
    // The partner's position and the player there: 0 at 0, else 1 + ((pos - 1 + rr) mod rounds).
    let last = g.full(DType::S32, rounds as f64, &nd);
    let ppos = g.bin(BinaryOp::Subtract, last, pos);
    let y = g.bin(BinaryOp::Subtract, ppos, one);
    let y = g.bin(BinaryOp::Add, y, rr_b);
    let y = g.bin(BinaryOp::Remainder, y, rounds_b);
    let player = g.bin(BinaryOp::Add, y, one);
    let at0 = g.cmp(CompareDirection::Eq, ppos, zero);
    let partner = g.sel(at0, zero, player);
    let md = [batch, big_n, big_n];
    let cols = g.iota(&md, 2);
    let partner_m = g.bc(partner, &[1], &md);
    let onehot = g.cmp(CompareDirection::Eq, cols, partner_m);
    (partner, onehot)
}

/// Per-index rotation coefficients of the pairs: `(c_i, s_i, t, is_low)` with
/// `x_i' = c_i x_i + s_i x_partner(i)`, from each pair's `(a_pp, a_qq, a_pq)` (`p < q`) as seen by
/// both of its indices, and `rotate` where the pair turns.
fn coefficients(g: &mut G, app: Id, aqq: Id, apq: Id, is_low: Id, rotate: Id, dt: DType) -> (Id, Id, Id) {
    let vd = g.dims(app);
    let diff = g.bin(BinaryOp::Subtract, aqq, app);
    let two = g.full(dt, 2.0, &vd);
    let den = g.bin(BinaryOp::Multiply, two, apq);
    let tau = g.bin(BinaryOp::Divide, diff, den);
    let abs_tau = g.b.unary(UnaryOp::Abs, tau);
    let one = g.full(dt, 1.0, &vd);
    let tau2 = g.bin(BinaryOp::Multiply, tau, tau);
    let tau2p1 = g.bin(BinaryOp::Add, one, tau2);
    let root = g.b.unary(UnaryOp::Sqrt, tau2p1);
    let den = g.bin(BinaryOp::Add, abs_tau, root);
    let zero = g.full(dt, 0.0, &vd);
    let nonneg = g.cmp(CompareDirection::Ge, tau, zero);
    let minus_one = g.full(dt, -1.0, &vd);
    let sign = g.sel(nonneg, one, minus_one);
    let t = g.bin(BinaryOp::Divide, sign, den);
    let t = g.sel(rotate, t, zero);
    let t2 = g.bin(BinaryOp::Multiply, t, t);
    let t2p1 = g.bin(BinaryOp::Add, one, t2);
    let r = g.b.unary(UnaryOp::Sqrt, t2p1);
    let c = g.bin(BinaryOp::Divide, one, r);
    let s = g.bin(BinaryOp::Multiply, t, c);
    let neg_s = g.b.unary(UnaryOp::Negate, s);
    let si = g.sel(is_low, neg_s, s);
    (c, si, t)
}

impl Expander<'_> {
    /// `while cond(state) { state = body(state) }` over `state` (arrays), built in `outer`.
    pub(super) fn while_loop(
        &mut self,
        outer: &mut ComputationBuilder,
        state: &[Id],
        cond: impl FnOnce(&mut G, &[Id]) -> Id,
        body: impl FnOnce(&mut G, &[Id]) -> Vec<Id>,
    ) -> Result<Vec<Id>, String> {
        let shapes: Vec<Shape> = state.iter().map(|&s| outer.shape(s).clone()).collect();
        let tuple_shape = Shape::Tuple(shapes);
        let mut bb = ComputationBuilder::for_module("body", self.module);
        let p = bb.param(tuple_shape.clone());
        let elems: Vec<Id> = (0..state.len()).map(|k| bb.get_tuple_element(p, k as u64)).collect();
        let new = body(&mut G { b: &mut bb }, &elems);
        let root = bb.tuple(&new);
        let body_comp = bb.finish_with_root(root).map_err(|e| e.to_string())?;
        let body_id = self.add_comp(body_comp, "body");
        let mut cb = ComputationBuilder::for_module("cond", self.module);
        let p = cb.param(tuple_shape);
        let elems: Vec<Id> = (0..state.len()).map(|k| cb.get_tuple_element(p, k as u64)).collect();
        let root = cond(&mut G { b: &mut cb }, &elems);
        let cond_comp = cb.finish_with_root(root).map_err(|e| e.to_string())?;
        let cond_id = self.add_comp(cond_comp, "cond");
        outer.set_callee(body_id, &self.module.comps[body_id.index()]);
        outer.set_callee(cond_id, &self.module.comps[cond_id.index()]);
        let init = outer.tuple(state);
        let w = outer.instr(Op::While { condition: cond_id, body: body_id }, &[init]);
        Ok((0..state.len()).map(|k| outer.get_tuple_element(w, k as u64)).collect())
    }

    /// Symmetric eigendecomposition of `a[B, n, n]` (the `lower` or upper triangle):
    /// `(vectors[B, n, n], values[B, n], info[B])`, values ascending.
    pub(super) fn syevd(
        &mut self,
        ob: &mut ComputationBuilder,
        dt: DType,
        r: Reducers,
        a: Id,
        lower: bool,
    ) -> Result<(Id, Id, Id), String> {
        let d = ob.array_shape(a).ok_or("array")?.dims.clone();
        let (batch, n) = (d[0], d[1]);
        let big_n = n + n % 2;
        let md = [batch, big_n, big_n];
        let (a0, v0, norm2, ok) = {
            let mut g = G { b: ob };
            let at = g.adjoint(a);
            let nd = [batch, n, n];
            let (ri, ci) = (g.iota(&nd, 1), g.iota(&nd, 2));
            let dir = if lower { CompareDirection::Ge } else { CompareDirection::Le };
            let keep = g.cmp(dir, ri, ci);
            let sym = g.sel(keep, a, at);
            // Hermitian: the diagonal's real part only, as LAPACK reads it.
            let sym = if dt.is_complex() {
                let eye = g.cmp(CompareDirection::Eq, ri, ci);
                let re = g.re(sym);
                let re = g.of_re(re, dt);
                g.sel(eye, re, sym)
            } else {
                sym
            };
            let ok = g.all_finite(sym, r);
            let zero = g.c(dt, 0.0);
            let pad = pad_dims(&[(0, 0), (0, big_n - n), (0, big_n - n)]);
            let a0 = g.b.instr(Op::Pad { dims: pad }, &[sym, zero]);
            let (ri, ci) = (g.iota(&md, 1), g.iota(&md, 2));
            let eye = g.cmp(CompareDirection::Eq, ri, ci);
            let v0 = g.indicator(eye, dt);
            let sq = g.abs2(a0);
            let z = g.c(real_of(dt), 0.0);
            let norm2 = g.b.reduce(&[sq], &[z], &[1, 2], r.add_re);
            (a0, v0, norm2, ok)
        };
        let (round0, go0) = {
            let mut g = G { b: ob };
            let t = g.b.constant(hlo_ir::Literal::scalar_pred(true));
            (g.c(DType::S32, 0.0), t)
        };
        let max_rounds = MAX_SWEEPS * (big_n - 1);
        let tol2 = eps(dt) * eps(dt);
        let out = self.while_loop(
            ob,
            &[round0, a0, v0, norm2, go0],
            |g, s| {
                let limit = g.c(DType::S32, max_rounds as f64);
                let more = g.cmp(CompareDirection::Lt, s[0], limit);
                g.and(more, s[4])
            },
            |g, s| {
                let (round, a, v, norm2) = (s[0], s[1], s[2], s[3]);
                let (partner, pbool) = pairing(g, round, batch, big_n);
                let vd = [batch, big_n];
                let idx = g.iota(&vd, 1);
                let partner_v = g.bc(partner, &[1], &vd);
                let is_low = g.cmp(CompareDirection::Lt, idx, partner_v);
                // The partners' rows and columns (A[partner i, j], A[i, partner j]) and entries.
                let ap = g.take(a, partner, 2);
                let pa = g.take(a, partner, 1);
                let d = g.diag(a, r);
                let d = g.re(d);
                let a_ip = g.diag(ap, r);
                let a_pi = g.diag(pa, r);
                // a_pq of each index's pair (p < q), seen from both.
                let apq_c = g.sel(is_low, a_ip, a_pi);
                let rt = real_of(dt);
                // Complex: the rotation is U = D J D^H with the phase D = conj(u) at q,
                // u = a_pq / |a_pq|, so J acts on the real |a_pq|.
                let apq = if dt.is_complex() { g.b.unary(UnaryOp::Abs, apq_c) } else { apq_c };
                let d_partner = g.take(d, partner, 1);
                let app = g.sel(is_low, d, d_partner);
                let aqq = g.sel(is_low, d_partner, d);
                let zero_v = g.full(rt, 0.0, &vd);
                let rotate = g.cmp(CompareDirection::Ne, apq, zero_v);
                let (c, si, t) = coefficients(g, app, aqq, apq, is_low, rotate, rt);
                // Column coefficients s_i (of A U, V U), and their conjugates for the rows (U^H A).
                let (s_col, s_row) = if dt.is_complex() {
                    let mag = g.of_re(apq, dt);
                    let u = g.bin(BinaryOp::Divide, apq_c, mag);
                    let one = g.full(dt, 1.0, &vd);
                    let u = g.sel(rotate, u, one);
                    let uc = g.conj(u);
                    let ph = g.sel(is_low, uc, u);
                    let si = g.of_re(si, dt);
                    let s_col = g.bin(BinaryOp::Multiply, si, ph);
                    (s_col, g.conj(s_col))
                } else {
                    (si, si)
                };
                let c = g.of_re(c, dt);
                // Rows, then columns: B = J^T A, C = B J.
                let c_rows = g.along_cols(c, big_n);
                let s_rows = g.along_cols(s_row, big_n);
                let x = g.bin(BinaryOp::Multiply, c_rows, a);
                let y = g.bin(BinaryOp::Multiply, s_rows, pa);
                let bm = g.bin(BinaryOp::Add, x, y);
                let bp = g.take(bm, partner, 2);
                let c_cols = g.along_rows(c, big_n);
                let s_cols = g.along_rows(s_col, big_n);
                let x = g.bin(BinaryOp::Multiply, bm, c_cols);
                let y = g.bin(BinaryOp::Multiply, bp, s_cols);
                let cm = g.bin(BinaryOp::Add, x, y);
                // The pair's own entries: a_pp - t a_pq, a_qq + t a_pq, and zero.
                let neg_t = g.b.unary(UnaryOp::Negate, t);
                let signed_t = g.sel(is_low, neg_t, t);
                let shift = g.bin(BinaryOp::Multiply, signed_t, apq);
                let new_d = g.bin(BinaryOp::Add, d, shift);
                let new_d = g.of_re(new_d, dt);
                let (ri, ci) = (g.iota(&md, 1), g.iota(&md, 2));
                let eye = g.cmp(CompareDirection::Eq, ri, ci);
                let new_d_m = g.along_cols(new_d, big_n);
                let cm = g.sel(eye, new_d_m, cm);
                let zero_m = g.full(dt, 0.0, &md);
                let cm = g.sel(pbool, zero_m, cm);
                // V J.
                let vp = g.take(v, partner, 2);
                let x = g.bin(BinaryOp::Multiply, v, c_cols);
                let y = g.bin(BinaryOp::Multiply, vp, s_cols);
                let v = g.bin(BinaryOp::Add, x, y);
                // Converged when |off(A)|_F^2 <= eps^2 |A|_F^2 in every matrix of the batch.
                let off = g.sel(eye, zero_m, cm);
                let sq = g.abs2(off);
                let z = g.c(rt, 0.0);
                let off2 = g.b.reduce(&[sq], &[z], &[1, 2], r.add_re);
                let tol = g.full(rt, tol2, &[batch]);
                let bound = g.bin(BinaryOp::Multiply, tol, norm2);
                // (A NaN matrix, whose results become NaN, never holds the others back.)
                let busy = g.cmp(CompareDirection::Gt, off2, bound);
                let (one_b, zero_b) = (g.full(DType::S32, 1.0, &[batch]), g.full(DType::S32, 0.0, &[batch]));
                let busy = g.sel(busy, one_b, zero_b);
                let zero_i = g.c(DType::S32, 0.0);
                let n_busy = g.b.reduce(&[busy], &[zero_i], &[0], r.add_s32);
                let go = g.cmp(CompareDirection::Gt, n_busy, zero_i);
                let one = g.c(DType::S32, 1.0);
                let round = g.bin(BinaryOp::Add, round, one);
                vec![round, cm, v, norm2, go]
            },
        )?;
        let mut g = G { b: ob };
        let (a_fin, v_fin) = (out[1], out[2]);
        let d = g.diag(a_fin, r);
        let d = g.re(d);
        let w = g.b.slice(d, &[(0, batch, 1), (0, n, 1)]);
        let v = g.b.slice(v_fin, &[(0, batch, 1), (0, n, 1), (0, n, 1)]);
        let (w, v) = sort_by_rank(&mut g, r, dt, w, v, false);
        let (res, info) = finish_nan(&mut g, dt, ok, &[v, w]);
        Ok((res[0], res[1], info))
    }

    /// SVD of `a[B, m, n]`: `(s[B, k], u, vt, info[B])` with `u[B, m, m]` and `vt[B, n, n]` when
    /// `full`, else `u[B, m, k]`, `vt[B, k, n]`.
    pub(super) fn gesdd(
        &mut self,
        ob: &mut ComputationBuilder,
        dt: DType,
        r: Reducers,
        a: Id,
        full: bool,
    ) -> Result<(Id, Id, Id, Id), String> {
        let d = ob.array_shape(a).ok_or("array")?.dims.clone();
        let (batch, m, n) = (d[0], d[1], d[2]);
        let wide = m < n;
        let (big_m, k) = (m.max(n), m.min(n));
        let big_k = k + k % 2;
        let kd = [batch, big_k, big_k];
        let (w0, v0, ok) = {
            let mut g = G { b: ob };
            let ok = g.all_finite(a, r);
            let tall = if wide { g.adjoint(a) } else { a };
            let zero = g.c(dt, 0.0);
            let pad = pad_dims(&[(0, 0), (0, 0), (0, big_k - k)]);
            let w0 = g.b.instr(Op::Pad { dims: pad }, &[tall, zero]);
            let (ri, ci) = (g.iota(&kd, 1), g.iota(&kd, 2));
            let eye = g.cmp(CompareDirection::Eq, ri, ci);
            (w0, g.indicator(eye, dt), ok)
        };
        let (round0, quiet0) = {
            let mut g = G { b: ob };
            (g.c(DType::S32, 0.0), g.c(DType::S32, 0.0))
        };
        let max_rounds = MAX_SWEEPS * (big_k - 1);
        let tol = (big_m as f64).sqrt() * eps(dt);
        let out = self.while_loop(
            ob,
            &[round0, w0, v0, quiet0],
            |g, s| {
                let limit = g.c(DType::S32, max_rounds as f64);
                let more = g.cmp(CompareDirection::Lt, s[0], limit);
                let sweep = g.c(DType::S32, (big_k - 1) as f64);
                let busy = g.cmp(CompareDirection::Lt, s[3], sweep);
                g.and(more, busy)
            },
            |g, s| {
                let (round, w, v, quiet) = (s[0], s[1], s[2], s[3]);
                let (partner, _) = pairing(g, round, batch, big_k);
                let vd = [batch, big_k];
                let idx = g.iota(&vd, 1);
                let partner_v = g.bc(partner, &[1], &vd);
                let is_low = g.cmp(CompareDirection::Lt, idx, partner_v);
                let wp = g.take(w, partner, 2);
                let rt = real_of(dt);
                let (z, z_re) = (g.c(dt, 0.0), g.c(rt, 0.0));
                let w2 = g.abs2(w);
                let alpha = g.reduce(w2, z_re, 1, r.add_re);
                let wc = g.conj(w);
                let wwp = g.bin(BinaryOp::Multiply, wc, wp);
                let gamma = g.reduce(wwp, z, 1, r.add);
                // Complex: both indices of a pair read the low index's a_p^H a_q, so that they
                // agree exactly on whether and how the pair turns (the high index's own sum
                // conj(a_q^H a_p) may differ in its last bit and leave U not unitary).
                let gamma = if dt.is_complex() {
                    let from_low = g.take(gamma, partner, 1);
                    g.sel(is_low, gamma, from_low)
                } else {
                    gamma
                };
                let beta = g.take(alpha, partner, 1);
                let app = g.sel(is_low, alpha, beta);
                let aqq = g.sel(is_low, beta, alpha);
                let na = g.b.unary(UnaryOp::Sqrt, alpha);
                let nb = g.b.unary(UnaryOp::Sqrt, beta);
                let nab = g.bin(BinaryOp::Multiply, na, nb);
                let tol_v = g.full(rt, tol, &vd);
                let bound = g.bin(BinaryOp::Multiply, tol_v, nab);
                let abs_g = g.b.unary(UnaryOp::Abs, gamma);
                let rotate = g.cmp(CompareDirection::Gt, abs_g, bound);
                // Complex: the Gram entry a_p^H a_q of each index's pair, its phase as in `heevd`.
                let (c, s_col) = if dt.is_complex() {
                    let (c, si, _) = coefficients(g, app, aqq, abs_g, is_low, rotate, rt);
                    let mag = g.of_re(abs_g, dt);
                    let u = g.bin(BinaryOp::Divide, gamma, mag);
                    let one = g.full(dt, 1.0, &vd);
                    let u = g.sel(rotate, u, one);
                    let uc = g.conj(u);
                    let ph = g.sel(is_low, uc, u);
                    let si = g.of_re(si, dt);
                    (g.of_re(c, dt), g.bin(BinaryOp::Multiply, si, ph))
                } else {
                    let (c, si, _) = coefficients(g, app, aqq, gamma, is_low, rotate, dt);
                    (c, si)
                };
                let c_w = g.along_rows(c, big_m);
                let s_w = g.along_rows(s_col, big_m);
                let x = g.bin(BinaryOp::Multiply, w, c_w);
                let y = g.bin(BinaryOp::Multiply, wp, s_w);
                let w = g.bin(BinaryOp::Add, x, y);
                let vp = g.take(v, partner, 2);
                let c_v = g.along_rows(c, big_k);
                let s_v = g.along_rows(s_col, big_k);
                let x = g.bin(BinaryOp::Multiply, v, c_v);
                let y = g.bin(BinaryOp::Multiply, vp, s_v);
                let v = g.bin(BinaryOp::Add, x, y);
                // A round without rotations extends the quiet run; a sweep of them ends the loop.
                let (one_v, zero_v) = (g.full(DType::S32, 1.0, &vd), g.full(DType::S32, 0.0, &vd));
                let turned = g.sel(rotate, one_v, zero_v);
                let zero_i = g.c(DType::S32, 0.0);
                let count = g.b.reduce(&[turned], &[zero_i], &[0, 1], r.add_s32);
                let none = g.cmp(CompareDirection::Eq, count, zero_i);
                let one = g.c(DType::S32, 1.0);
                let q1 = g.bin(BinaryOp::Add, quiet, one);
                let quiet = g.sel(none, q1, zero_i);
                let round = g.bin(BinaryOp::Add, round, one);
                vec![round, w, v, quiet]
            },
        )?;
        let (w_fin, v_fin) = (out[1], out[2]);
        let mut g = G { b: ob };
        let w = g.b.slice(w_fin, &[(0, batch, 1), (0, big_m, 1), (0, k, 1)]);
        let v = g.b.slice(v_fin, &[(0, batch, 1), (0, k, 1), (0, k, 1)]);
        let rt = real_of(dt);
        let z = g.c(rt, 0.0);
        let w2 = g.abs2(w);
        let norm2 = g.reduce(w2, z, 1, r.add_re);
        let s = g.b.unary(UnaryOp::Sqrt, norm2);
        // Sort s descending with the columns of w and v.
        let wv = g.b.instr(Op::Concatenate { dimension: 1 }, &[w, v]);
        let (s, wv) = sort_by_rank(&mut g, r, dt, s, wv, true);
        let w = g.b.slice(wv, &[(0, batch, 1), (0, big_m, 1), (0, k, 1)]);
        let v = g.b.slice(wv, &[(0, batch, 1), (big_m, big_m + k, 1), (0, k, 1)]);
        let zero_s = g.full(rt, 0.0, &[batch, k]);
        let pos = g.cmp(CompareDirection::Gt, s, zero_s);
        let one_s = g.full(rt, 1.0, &[batch, k]);
        let den = g.sel(pos, s, one_s);
        let den = g.of_re(den, dt);
        let den = g.along_rows(den, big_m);
        let u_raw = g.bin(BinaryOp::Divide, w, den);
        // u: Q of the QR of u_raw, its first k columns signed as R's diagonal.
        let (qr, tau) = self.geqrf(ob, dt, r, u_raw)?;
        let mut g = G { b: ob };
        let ucols = if full { big_m } else { k };
        let a_for_q = if full {
            let zero = g.c(dt, 0.0);
            let pad = pad_dims(&[(0, 0), (0, 0), (0, big_m - k)]);
            g.b.instr(Op::Pad { dims: pad }, &[qr, zero])
        } else {
            qr
        };
        let rdiag = {
            let sq = g.b.slice(qr, &[(0, batch, 1), (0, k, 1), (0, k, 1)]);
            let d = g.diag(sq, r);
            // Real: `geqrf`'s beta.
            g.re(d)
        };
        let q = self.orgqr(ob, dt, a_for_q, tau, k)?;
        let mut g = G { b: ob };
        let rt = real_of(dt);
        let zero_k = g.full(rt, 0.0, &[batch, k]);
        let neg = g.cmp(CompareDirection::Lt, rdiag, zero_k);
        let (one_k, m_one_k) = (g.full(rt, 1.0, &[batch, k]), g.full(rt, -1.0, &[batch, k]));
        let sign = g.sel(neg, m_one_k, one_k);
        let sign = if ucols > k {
            let one = g.c(rt, 1.0);
            let pad = pad_dims(&[(0, 0), (0, ucols - k)]);
            g.b.instr(Op::Pad { dims: pad }, &[sign, one])
        } else {
            sign
        };
        let sign = g.of_re(sign, dt);
        let sign_m = g.along_rows(sign, big_m);
        let u = g.bin(BinaryOp::Multiply, q, sign_m);
        // a = u s v^H (tall); a wide a^H = u s v^H gives a = v s u^H.
        let (u_out, vt_out) = if wide {
            let vt = g.adjoint(u);
            (v, vt)
        } else {
            let vt = g.adjoint(v);
            (u, vt)
        };
        let (res, info) = finish_nan(&mut g, dt, ok, &[s, u_out, vt_out]);
        Ok((res[0], res[1], res[2], info))
    }
}

/// Sorts `keys[B, n]` (ascending, or descending) with the columns of `cols[B, m, n]`; equal keys
/// keep their order. Ranks count the keys before each; one-hot dots move the columns exactly.
fn sort_by_rank(g: &mut G, r: Reducers, dt: DType, keys: Id, cols: Id, descending: bool) -> (Id, Id) {
    let kd = g.dims(keys);
    let (batch, n) = (kd[0], kd[1]);
    let nd = [batch, n, n];
    // [b, i, j]: key j comes before key i.
    let ki = g.along_cols(keys, n);
    let kj = g.along_rows(keys, n);
    let dir = if descending { CompareDirection::Gt } else { CompareDirection::Lt };
    let before = g.cmp(dir, kj, ki);
    let eq = g.cmp(CompareDirection::Eq, kj, ki);
    let (ii, jj) = (g.iota(&nd, 1), g.iota(&nd, 2));
    let lower_idx = g.cmp(CompareDirection::Lt, jj, ii);
    let tie = g.and(eq, lower_idx);
    let before = g.bin(BinaryOp::Or, before, tie);
    let (one, zero) = (g.full(DType::S32, 1.0, &nd), g.full(DType::S32, 0.0, &nd));
    let counts = g.sel(before, one, zero);
    let zero_s = g.c(DType::S32, 0.0);
    let rank = g.b.reduce(&[counts], &[zero_s], &[2], r.add_s32);
    // q[b, i, k] = (rank[b, i] == k).
    let rank_m = g.along_cols(rank, n);
    let onehot = g.cmp(CompareDirection::Eq, rank_m, jj);
    let q = g.indicator(onehot, dt);
    let keys_m = g.along_cols(keys, n);
    let sorted = g.masked_sum(onehot, keys_m, 1, r);
    let moved = g.bmm(cols, q);
    (sorted, moved)
}

/// `values` as they are where `ok[B]`, else NaN; and `info[B]` (0, or 1 where not `ok`).
pub(super) fn finish_nan(g: &mut G, dt: DType, ok: Id, values: &[Id]) -> (Vec<Id>, Id) {
    let mut res = Vec::new();
    for &x in values {
        let dims = g.dims(x);
        let ok_b = g.lead(ok, &dims);
        let dt = g.b.array_shape(x).map_or(dt, |a| a.dtype);
        let nan = g.full(dt, f64::NAN, &dims);
        res.push(g.sel(ok_b, x, nan));
    }
    let batch = g.dims(ok);
    let (zero, one) = (g.full(DType::S32, 0.0, &batch), g.full(DType::S32, 1.0, &batch));
    (res, g.sel(ok, zero, one))
}
