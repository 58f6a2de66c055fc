//! `linalg-expander`'s nonsymmetric eigendecomposition: `lapack_{s,d,c,z}geev_ffi`
//! (`jnp.linalg.eig`, `eigvals`) as `while` loops of whole-matrix complex ops, the algorithm of the
//! interpreter's reference (`lapack_geev.rs` in `hlo-interp`, whose doc gives the conventions):
//! - Hessenberg reduction: `n - 2` Hermitian reflectors `I - 2 u u^H / u^H u`, applied to both
//!   sides of `H` and accumulated in `Z`.
//! - Single-shift complex QR: one loop step is one Givens rotation of an implicit (bulge-chasing)
//!   sweep over the active block `lo..=hi`, applied to whole rows and columns (`H = M H M^H`,
//!   `Z = Z M^H`); each batch element keeps its own `hi`, `lo`, position `k` and shift, so the
//!   rotations of a step differ per element and are applied under one-hot masks. A step at a
//!   sweep's start (`k < 0`) zeroes negligible subdiagonals and either deflates (`hi -= 1`) or
//!   picks the block and its shift (Wilkinson's, exceptional after 10 and 20 sweeps without
//!   deflation) and makes the sweep's first rotation. The loop stops when every element has
//!   `hi = 0`, or after `30 n^2 + n` steps (then `info = 1` and the results are NaN).
//! - Eigenvectors: back substitution in the Schur form for all eigenvalues at once, row by row,
//!   then `Z Y`, normalised; left ones from `T^H` reversed.
//!
//! Real matrices are computed as complex (`c64` for `f32`), which is what the FFI returns for the
//! eigenvectors; `wr` and `wi` are the eigenvalues' parts.

use super::eig::{eps, finish_nan};
use super::{real_of, Expander, Reducers, G};
use hlo_ir::builder::ComputationBuilder;
use hlo_ir::{BinaryOp, CompareDirection, DType, Op, UnaryOp};

type Id = hlo_ir::InstrId;

/// Iterations per eigenvalue before giving up, as `zlahqr`'s.
const MAX_SWEEPS_PER_EIGENVALUE: i64 = 30;

/// Columns of the back substitution rescaled when their largest entry passes this.
const RESCALE_ABOVE: f64 = 1e10;

/// The complex type the routine computes in.
fn complex_of(dt: DType) -> DType {
    match real_of(dt) {
        DType::F64 => DType::C128,
        _ => DType::C64,
    }
}

impl G<'_> {
    /// `x[B, n, n]` at `[b, r[b], c[b]]`: `[B]` (an exact masked sum).
    fn entry(&mut self, x: Id, r: Id, c: Id, reducers: Reducers) -> Id {
        let d = self.dims(x);
        let (ri, ci) = (self.iota(&d, 1), self.iota(&d, 2));
        let rb = self.lead(r, &d);
        let cb = self.lead(c, &d);
        let at_r = self.cmp(CompareDirection::Eq, ri, rb);
        let at_c = self.cmp(CompareDirection::Eq, ci, cb);
        let at = self.and(at_r, at_c);
        let dt = self.b.array_shape(x).map_or(DType::C64, |a| a.dtype);
        let neg_zero = self.full(dt, -0.0, &d);
        let terms = self.sel(at, x, neg_zero);
        let init = self.c(dt, -0.0);
        self.b.reduce(&[terms], &[init], &[1, 2], reducers.add)
    }
    /// `x` scaled by the real `s` (both of the same dims).
    fn scale_re(&mut self, x: Id, s: Id) -> Id {
        let dt = self.b.array_shape(x).map_or(DType::C64, |a| a.dtype);
        let s = self.of_re(s, dt);
        self.bin(BinaryOp::Multiply, x, s)
    }
    /// `x + v` for an s32 `x`.
    fn s32_plus(&mut self, x: Id, v: f64) -> Id {
        let d = self.dims(x);
        let c = self.full(DType::S32, v, &d);
        self.bin(BinaryOp::Add, x, c)
    }
    /// Rows `k[b]`, `k[b] + 1` of `x[B, n, n]` replaced by `c p + s q` and `c q - conj(s) p`
    /// (`p`, `q` the rows), or the columns alike with `conj(s)` and `s` when `columns`.
    fn rotate(&mut self, x: Id, k: Id, c: Id, s: Id, columns: bool, r: Reducers) -> Id {
        let d = self.dims(x);
        let n = d[1];
        let axis = if columns { 2 } else { 1 };
        let idx = self.iota(&d, axis);
        let kb = self.lead(k, &d);
        let k1 = self.s32_plus(k, 1.0);
        let k1b = self.lead(k1, &d);
        let at_k = self.cmp(CompareDirection::Eq, idx, kb);
        let at_k1 = self.cmp(CompareDirection::Eq, idx, k1b);
        let p = self.masked_sum(at_k, x, axis, r);
        let q = self.masked_sum(at_k1, x, axis, r);
        let vd = [d[0], n];
        let cv = self.lead(c, &vd);
        let sv = self.lead(s, &vd);
        let sc = self.conj(sv);
        let (s_p, s_q) = if columns { (sc, sv) } else { (sv, sc) };
        let cp = self.scale_re(p, cv);
        let sq = self.bin(BinaryOp::Multiply, s_p, q);
        let new_p = self.bin(BinaryOp::Add, cp, sq);
        let cq = self.scale_re(q, cv);
        let sp = self.bin(BinaryOp::Multiply, s_q, p);
        let new_q = self.bin(BinaryOp::Subtract, cq, sp);
        let (new_p, new_q) = if columns {
            (self.along_cols(new_p, n), self.along_cols(new_q, n))
        } else {
            (self.along_rows(new_p, n), self.along_rows(new_q, n))
        };
        let x = self.sel(at_k1, new_q, x);
        self.sel(at_k, new_p, x)
    }
}

impl Expander<'_> {
    /// `(w[B, n], vl[B, n, n], vr[B, n, n], info[B])` of `a[B, n, n]` (any of the four types;
    /// `w` and the vectors complex).
    pub(super) fn geev(
        &mut self,
        ob: &mut ComputationBuilder,
        dt: DType,
        a: Id,
        left: bool,
        right: bool,
    ) -> Result<(Id, Id, Id, Id), String> {
        let d = ob.array_shape(a).ok_or("array")?.dims.clone();
        let (batch, n) = (d[0], d[1]);
        if n == 0 {
            return Err("geev of empty matrices".into());
        }
        let cdt = complex_of(dt);
        let rt = real_of(dt);
        let r = Reducers {
            add: self.reducer(BinaryOp::Add, cdt),
            add_re: self.reducer(BinaryOp::Add, rt),
            max: self.reducer(BinaryOp::Maximum, rt),
            min_s32: self.reducer(BinaryOp::Minimum, DType::S32),
            add_s32: self.reducer(BinaryOp::Add, DType::S32),
        };
        let max_s32 = self.reducer(BinaryOp::Maximum, DType::S32);
        // Reducers made after `ob` (the complex ones of a real routine): `ob` learns their shapes.
        for id in [r.add, r.add_re, r.max, r.min_s32, r.add_s32, max_s32] {
            ob.set_callee(id, &self.module.comps[id.index()]);
        }
        let md = [batch, n, n];
        let vd = [batch, n];
        let (h0, z0, ok) = {
            let mut g = G { b: ob };
            let ac = if dt.is_complex() { a } else { g.of_re(a, cdt) };
            let ok = g.all_finite(ac, r);
            let okm = g.lead(ok, &md);
            let zero = g.full(cdt, 0.0, &md);
            let h0 = g.sel(okm, ac, zero);
            let (ri, ci) = (g.iota(&md, 1), g.iota(&md, 2));
            let eye = g.cmp(CompareDirection::Eq, ri, ci);
            let z0 = g.indicator(eye, cdt);
            (h0, z0, ok)
        };
        // Hessenberg reduction.
        let out = self.counted_loop(ob, (n - 2).max(0), &[h0, z0], |g, j, s| {
            let (h, z) = (s[0], s[1]);
            let col = g.col(h, j);
            let ri = g.iota(&vd, 1);
            let below = g.cmp_s(CompareDirection::Gt, ri, j);
            let zero_v = g.full(cdt, 0.0, &vd);
            let x = g.sel(below, col, zero_v);
            let mag = g.abs1(x);
            let zero_r = g.c(rt, 0.0);
            let big = g.reduce(mag, zero_r, 1, r.max);
            let zero_b = g.full(rt, 0.0, &[batch]);
            let one_b = g.full(rt, 1.0, &[batch]);
            let positive = g.cmp(CompareDirection::Gt, big, zero_b);
            let big = g.sel(positive, big, one_b);
            let inv = g.bin(BinaryOp::Divide, one_b, big);
            let inv_v = g.lead(inv, &vd);
            let xs = g.scale_re(x, inv_v);
            let sq = g.abs2(xs);
            let norm2 = g.reduce(sq, zero_r, 1, r.add_re);
            let norm = g.b.unary(UnaryOp::Sqrt, norm2);
            let one = g.c(DType::S32, 1.0);
            let j1 = g.bin(BinaryOp::Add, j, one);
            let x0 = g.elem(xs, j1);
            let m0 = g.b.unary(UnaryOp::Abs, x0);
            let m0_zero = g.cmp(CompareDirection::Eq, m0, zero_b);
            let m0_safe = g.sel(m0_zero, one_b, m0);
            let inv_m0 = g.bin(BinaryOp::Divide, one_b, m0_safe);
            let phase = g.scale_re(x0, inv_m0);
            let one_c = g.full(cdt, 1.0, &[batch]);
            let phase = g.sel(m0_zero, one_c, phase);
            let shift = g.scale_re(phase, norm);
            let shift_v = g.lead(shift, &vd);
            let at_j1 = g.cmp_s(CompareDirection::Eq, ri, j1);
            let shift_v = g.sel(at_j1, shift_v, zero_v);
            let u = g.bin(BinaryOp::Add, xs, shift_v);
            let usq = g.abs2(u);
            let beta = g.reduce(usq, zero_r, 1, r.add_re);
            let trivial = g.cmp(CompareDirection::Eq, norm, zero_b);
            let beta_safe = g.sel(trivial, one_b, beta);
            let two_b = g.full(rt, 2.0, &[batch]);
            let f = g.bin(BinaryOp::Divide, two_b, beta_safe);
            let f = g.sel(trivial, zero_b, f);
            let f_v = g.lead(f, &vd);
            let fu = g.scale_re(u, f_v);
            let uc = g.conj(u);
            // H -= f u (u^H H); then H, Z -= f (X u) u^H.
            let w = g.vec_mat(uc, h);
            let prod = g.outer(fu, w);
            let h = g.bin(BinaryOp::Subtract, h, prod);
            let mut res = Vec::new();
            for x in [h, z] {
                let xu = g.mat_vec(x, fu);
                let prod = g.outer(xu, uc);
                res.push(g.bin(BinaryOp::Subtract, x, prod));
            }
            // Exact zeros below the subdiagonal.
            let (rows, cols) = (g.iota(&md, 1), g.iota(&md, 2));
            let at_col = g.cmp_s(CompareDirection::Eq, cols, j);
            let low = g.cmp_s(CompareDirection::Gt, rows, j1);
            let clear = g.and(at_col, low);
            let zero_m = g.full(cdt, 0.0, &md);
            res[0] = g.sel(clear, zero_m, res[0]);
            res
        })?;
        let (h1, z1) = (out[0], out[1]);
        // Shifted QR: state (step, h, z, hi, k, lo, mu, its).
        let max_steps = MAX_SWEEPS_PER_EIGENVALUE * n * n + n;
        let eps_v = eps(dt);
        let init = {
            let mut g = G { b: ob };
            let step = g.c(DType::S32, 0.0);
            let hi = g.full(DType::S32, (n - 1) as f64, &[batch]);
            let k = g.full(DType::S32, -1.0, &[batch]);
            let lo = g.full(DType::S32, 0.0, &[batch]);
            let mu = g.full(cdt, 0.0, &[batch]);
            let its = g.full(DType::S32, 0.0, &[batch]);
            vec![step, h1, z1, hi, k, lo, mu, its]
        };
        let out = self.while_loop(
            ob,
            &init,
            |g, s| {
                let limit = g.c(DType::S32, max_steps as f64);
                let more = g.cmp(CompareDirection::Lt, s[0], limit);
                let zero = g.c(DType::S32, 0.0);
                let hi_max = g.reduce(s[3], zero, 0, max_s32);
                let busy = g.cmp(CompareDirection::Gt, hi_max, zero);
                g.and(more, busy)
            },
            |g, s| {
                let (step, h, z, hi, k, lo, mu, its) = (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
                let zero_b = g.full(DType::S32, 0.0, &[batch]);
                let at_start = g.cmp(CompareDirection::Lt, k, zero_b);
                let live = g.cmp(CompareDirection::Gt, hi, zero_b);
                let start = g.and(at_start, live);
                // Negligible subdiagonals: neg[b, l] for 1 <= l <= hi.
                let (rows, cols) = (g.iota(&md, 1), g.iota(&md, 2));
                let one_m = g.full(DType::S32, 1.0, &md);
                let rows_m1 = g.bin(BinaryOp::Subtract, rows, one_m);
                let sub_mask = g.cmp(CompareDirection::Eq, cols, rows_m1);
                let sub = g.masked_sum(sub_mask, h, 2, r);
                let dg = g.diag(h, r);
                let dg_rows = g.along_rows(dg, n);
                let d_prev = g.masked_sum(sub_mask, dg_rows, 2, r);
                let t1 = g.abs1(d_prev);
                let t2 = g.abs1(dg);
                let tst = g.bin(BinaryOp::Add, t1, t2);
                let eps_c = g.full(rt, eps_v, &vd);
                let tol = g.bin(BinaryOp::Multiply, eps_c, tst);
                let sub_mag = g.abs1(sub);
                let small = g.cmp(CompareDirection::Le, sub_mag, tol);
                let li = g.iota(&vd, 1);
                let zero_v = g.full(DType::S32, 0.0, &vd);
                let positive = g.cmp(CompareDirection::Gt, li, zero_v);
                let hi_v = g.lead(hi, &vd);
                let in_block = g.cmp(CompareDirection::Le, li, hi_v);
                let neg = g.and(small, positive);
                let neg = g.and(neg, in_block);
                let lo_terms = g.sel(neg, li, zero_v);
                let zero_s = g.c(DType::S32, 0.0);
                let lo_new = g.reduce(lo_terms, zero_s, 1, max_s32);
                // Zero them at a sweep's start.
                let start_v = g.lead(start, &vd);
                let clear_v = g.and(neg, start_v);
                let clear_m = g.along_cols(clear_v, n);
                let clear_m = g.and(clear_m, sub_mask);
                let zero_c = g.full(cdt, 0.0, &md);
                let h = g.sel(clear_m, zero_c, h);
                let at_hi = g.cmp(CompareDirection::Eq, lo_new, hi);
                let deflate = g.and(start, at_hi);
                let not_deflate = g.not(deflate);
                let begin = g.and(start, not_deflate);
                let hi_m1 = g.s32_plus(hi, -1.0);
                let hi = g.sel(deflate, hi_m1, hi);
                let its_p1 = g.s32_plus(its, 1.0);
                let its = g.sel(begin, its_p1, its);
                let its = g.sel(deflate, zero_b, its);
                let lo = g.sel(begin, lo_new, lo);
                // The shift, from the active block's trailing 2 x 2.
                let hm1 = g.s32_plus(hi, -1.0);
                let ha = g.entry(h, hm1, hm1, r);
                let hb = g.entry(h, hm1, hi, r);
                let hc = g.entry(h, hi, hm1, r);
                let hd = g.entry(h, hi, hi, r);
                let amd = g.bin(BinaryOp::Subtract, ha, hd);
                let half = g.full(cdt, 0.5, &[batch]);
                let half_amd = g.bin(BinaryOp::Multiply, amd, half);
                let sq = g.bin(BinaryOp::Multiply, half_amd, half_amd);
                let bc = g.bin(BinaryOp::Multiply, hb, hc);
                let disc = g.bin(BinaryOp::Add, sq, bc);
                let root = g.b.unary(UnaryOp::Sqrt, disc);
                let centre = g.bin(BinaryOp::Subtract, hd, half_amd);
                let m1 = g.bin(BinaryOp::Add, centre, root);
                let m2 = g.bin(BinaryOp::Subtract, centre, root);
                let e1 = g.bin(BinaryOp::Subtract, m1, hd);
                let e1 = g.abs1(e1);
                let e2 = g.bin(BinaryOp::Subtract, m2, hd);
                let e2 = g.abs1(e2);
                let nearer = g.cmp(CompareDirection::Le, e1, e2);
                let wilkinson = g.sel(nearer, m1, m2);
                let hc_re = g.re(hc);
                let hc_abs = g.b.unary(UnaryOp::Abs, hc_re);
                let frac = g.full(rt, 0.75, &[batch]);
                let ex = g.bin(BinaryOp::Multiply, frac, hc_abs);
                let ex = g.of_re(ex, cdt);
                let exceptional = g.bin(BinaryOp::Add, hd, ex);
                let ten = g.full(DType::S32, 10.0, &[batch]);
                let twenty = g.full(DType::S32, 20.0, &[batch]);
                let is10 = g.cmp(CompareDirection::Eq, its, ten);
                let is20 = g.cmp(CompareDirection::Eq, its, twenty);
                let is_ex = g.bin(BinaryOp::Or, is10, is20);
                let new_mu = g.sel(is_ex, exceptional, wilkinson);
                let mu = g.sel(begin, new_mu, mu);
                let k = g.sel(begin, lo, k);
                // The rotation at k.
                let k_live = g.cmp(CompareDirection::Ge, k, zero_b);
                let hi_live = g.cmp(CompareDirection::Gt, hi, zero_b);
                let active = g.and(k_live, hi_live);
                let k1 = g.s32_plus(k, 1.0);
                let km1 = g.s32_plus(k, -1.0);
                let hkk = g.entry(h, k, k, r);
                let hk1k = g.entry(h, k1, k, r);
                let hkkm1 = g.entry(h, k, km1, r);
                let hk1km1 = g.entry(h, k1, km1, r);
                let first = g.cmp(CompareDirection::Eq, k, lo);
                let shifted = g.bin(BinaryOp::Subtract, hkk, mu);
                let x = g.sel(first, shifted, hkkm1);
                let y = g.sel(first, hk1k, hk1km1);
                let (c, sn) = rotation(g, x, y, cdt, batch);
                let one_r = g.full(rt, 1.0, &[batch]);
                let zero_cb = g.full(cdt, 0.0, &[batch]);
                let c = g.sel(active, c, one_r);
                let sn = g.sel(active, sn, zero_cb);
                let zero_k = g.sel(active, k, zero_b);
                let h = g.rotate(h, zero_k, c, sn, false, r);
                let h = g.rotate(h, zero_k, c, sn, true, r);
                let z = g.rotate(z, zero_k, c, sn, true, r);
                let end = g.cmp(CompareDirection::Eq, k1, hi);
                let minus_one = g.full(DType::S32, -1.0, &[batch]);
                let next = g.sel(end, minus_one, k1);
                let k = g.sel(active, next, k);
                let step = g.s32_plus(step, 1.0);
                vec![step, h, z, hi, k, lo, mu, its]
            },
        )?;
        let (t, z) = (out[1], out[2]);
        let hi = out[3];
        let (w, ok_all) = {
            let mut g = G { b: ob };
            let w = g.diag(t, r);
            let zero_b = g.full(DType::S32, 0.0, &[batch]);
            let converged = g.cmp(CompareDirection::Le, hi, zero_b);
            (w, g.and(ok, converged))
        };
        let zeros = {
            let mut g = G { b: ob };
            g.full(cdt, 0.0, &md)
        };
        let vr = if right {
            let y = self.triangular_vectors(ob, t, w, cdt, r)?;
            let mut g = G { b: ob };
            let v = g.bmm(z, y);
            normalised(&mut g, v, cdt, r)
        } else {
            zeros
        };
        let vl = if left {
            let (rev, wl) = {
                let mut g = G { b: ob };
                let th = g.adjoint(t);
                let rev = g.b.instr(Op::Reverse { dimensions: vec![1, 2] }, &[th]);
                let wl = g.diag(rev, r);
                (rev, wl)
            };
            let y = self.triangular_vectors(ob, rev, wl, cdt, r)?;
            let mut g = G { b: ob };
            let y = g.b.instr(Op::Reverse { dimensions: vec![1, 2] }, &[y]);
            let v = g.bmm(z, y);
            normalised(&mut g, v, cdt, r)
        } else {
            zeros
        };
        let mut g = G { b: ob };
        let (res, info) = finish_nan(&mut g, cdt, ok_all, &[w, vl, vr]);
        Ok((res[0], res[1], res[2], info))
    }

    /// The eigenvectors (columns) of upper triangular `t[B, n, n]` with diagonal `w[B, n]`:
    /// `ztrevc`'s back substitution for every eigenvalue at once, row by row from the bottom.
    fn triangular_vectors(
        &mut self,
        ob: &mut ComputationBuilder,
        t: Id,
        w: Id,
        cdt: DType,
        r: Reducers,
    ) -> Result<Id, String> {
        let d = ob.array_shape(t).ok_or("array")?.dims.clone();
        let (batch, n) = (d[0], d[1]);
        let rt = real_of(cdt);
        let md = [batch, n, n];
        let vd = [batch, n];
        let y0 = {
            let mut g = G { b: ob };
            let (ri, ci) = (g.iota(&md, 1), g.iota(&md, 2));
            let eye = g.cmp(CompareDirection::Eq, ri, ci);
            g.indicator(eye, cdt)
        };
        let (eps_v, tiny) = if rt == DType::F64 {
            (f64::EPSILON, f64::MIN_POSITIVE * n as f64 / f64::EPSILON)
        } else {
            (f32::EPSILON as f64, f32::MIN_POSITIVE as f64 * n as f64 / f32::EPSILON as f64)
        };
        let out = self.counted_loop(ob, n, &[y0, t, w], |g, step, s| {
            let (y, t, w) = (s[0], s[1], s[2]);
            let last = g.c(DType::S32, (n - 1) as f64);
            let i = g.bin(BinaryOp::Subtract, last, step);
            let trow = g.row(t, i);
            let ci = g.iota(&vd, 1);
            let after = g.cmp_s(CompareDirection::Gt, ci, i);
            let zero_v = g.full(cdt, 0.0, &vd);
            let trow = g.sel(after, trow, zero_v);
            let sum = g.vec_mat(trow, y);
            let tii = g.elem(w, i);
            let tii = g.lead(tii, &vd);
            let dd = g.bin(BinaryOp::Subtract, tii, w);
            let wmag = g.abs1(w);
            let eps_c = g.full(rt, eps_v, &vd);
            let smin = g.bin(BinaryOp::Multiply, eps_c, wmag);
            let tiny_c = g.full(rt, tiny, &vd);
            let smin = g.bin(BinaryOp::Maximum, smin, tiny_c);
            let dmag = g.abs1(dd);
            let too_small = g.cmp(CompareDirection::Lt, dmag, smin);
            let smin_c = g.of_re(smin, cdt);
            let dd = g.sel(too_small, smin_c, dd);
            let q = g.bin(BinaryOp::Divide, sum, dd);
            let yi_new = g.b.unary(UnaryOp::Negate, q);
            let yi = g.row(y, i);
            let yi = g.sel(after, yi_new, yi);
            let y = g.set_row(y, yi, i);
            // Rescale columns that grew large.
            let mag = g.abs1(y);
            let zero_r = g.c(rt, 0.0);
            let big = g.reduce(mag, zero_r, 1, r.max);
            let limit = g.full(rt, RESCALE_ABOVE, &vd);
            let grown = g.cmp(CompareDirection::Gt, big, limit);
            let one_v = g.full(rt, 1.0, &vd);
            let inv = g.bin(BinaryOp::Divide, one_v, big);
            let factor = g.sel(grown, inv, one_v);
            let factor = g.along_rows(factor, n);
            let y = g.scale_re(y, factor);
            vec![y, t, w]
        })?;
        Ok(out[0])
    }
}

/// The rotation `(c, s)` (`c` real) with `[[c, s], [-conj(s), c]] [x; y] = [r; 0]`, per element.
fn rotation(g: &mut G, x: Id, y: Id, cdt: DType, batch: i64) -> (Id, Id) {
    let rt = real_of(cdt);
    let ax = g.b.unary(UnaryOp::Abs, x);
    let ay = g.b.unary(UnaryOp::Abs, y);
    let pair = g.bin(BinaryOp::Complex, ax, ay);
    let rr = g.b.unary(UnaryOp::Abs, pair);
    let zero = g.full(rt, 0.0, &[batch]);
    let one = g.full(rt, 1.0, &[batch]);
    let r_zero = g.cmp(CompareDirection::Eq, rr, zero);
    let x_zero = g.cmp(CompareDirection::Eq, ax, zero);
    let r_safe = g.sel(r_zero, one, rr);
    let ax_safe = g.sel(x_zero, one, ax);
    let ay_safe = g.sel(r_zero, one, ay);
    let c = g.bin(BinaryOp::Divide, ax, r_safe);
    let c = g.sel(r_zero, one, c);
    let yc = g.conj(y);
    // conj(y) x / (|x| r), or conj(y) / |y| where x = 0.
    let axr = g.bin(BinaryOp::Multiply, ax_safe, r_safe);
    let inv = g.bin(BinaryOp::Divide, one, axr);
    let ycx = g.bin(BinaryOp::Multiply, yc, x);
    let s_gen = g.scale_re(ycx, inv);
    let inv_ay = g.bin(BinaryOp::Divide, one, ay_safe);
    let s_x0 = g.scale_re(yc, inv_ay);
    let s = g.sel(x_zero, s_x0, s_gen);
    let zero_c = g.full(cdt, 0.0, &[batch]);
    let s = g.sel(r_zero, zero_c, s);
    (c, s)
}

/// Columns of `v[B, n, n]` at unit norm, rotated so that their first largest-magnitude component
/// is real and positive (`zgeev`).
fn normalised(g: &mut G, v: Id, cdt: DType, r: Reducers) -> Id {
    let d = g.dims(v);
    let (batch, n) = (d[0], d[1]);
    let rt = real_of(cdt);
    let sq = g.abs2(v);
    let zero_r = g.c(rt, 0.0);
    let norm2 = g.reduce(sq, zero_r, 1, r.add_re);
    let norm = g.b.unary(UnaryOp::Sqrt, norm2);
    let one = g.full(rt, 1.0, &[batch, n]);
    let inv = g.bin(BinaryOp::Divide, one, norm);
    let inv = g.along_rows(inv, n);
    let v = g.scale_re(v, inv);
    let sq = g.abs2(v);
    let mx = g.reduce(sq, zero_r, 1, r.max);
    let mx_m = g.along_rows(mx, n);
    let at_max = g.cmp(CompareDirection::Eq, sq, mx_m);
    let rows = g.iota(&d, 1);
    let n_m = g.full(DType::S32, n as f64, &d);
    let idx = g.sel(at_max, rows, n_m);
    let n_s = g.c(DType::S32, n as f64);
    let p = g.reduce(idx, n_s, 1, r.min_s32);
    let p_m = g.along_rows(p, n);
    let at_p = g.cmp(CompareDirection::Eq, rows, p_m);
    let vp = g.masked_sum(at_p, v, 1, r);
    let vp_abs = g.b.unary(UnaryOp::Abs, vp);
    let inv_p = g.bin(BinaryOp::Divide, one, vp_abs);
    let vpc = g.conj(vp);
    let phase = g.scale_re(vpc, inv_p);
    let phase = g.along_rows(phase, n);
    let v = g.bin(BinaryOp::Multiply, v, phase);
    let re = g.re(v);
    let zero_m = g.full(rt, 0.0, &d);
    let real = g.bin(BinaryOp::Complex, re, zero_m);
    g.sel(at_p, real, v)
}
