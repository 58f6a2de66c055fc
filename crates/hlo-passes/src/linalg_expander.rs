//! `linalg-expander`: dense linear algebra as `while` loops of plain HLO, so that every backend
//! runs it with the kernels it already has (dynamic slices, dots, selects, reductions).
//!
//! Expanded: the LAPACK custom calls JAX emits on CPU, `lapack_{s,d}{potrf,getrf,geqrf,orgqr,trsm}_ffi`
//! and their complex forms `lapack_{c,z}{potrf,getrf,geqrf,ungqr,trsm}_ffi`, the eigen- and
//! singular value routines `syevd`/`heevd`, `gesdd` ([`eig`]) and `geev` ([`geev`]), and XLA's `cholesky`
//! and `triangular-solve` opcodes (real or complex), and XLA's `Qr` and
//! `ProductOfElementaryHouseholderReflectors` targets (JAX's lowering of `geqrf` and
//! `householder_product` on platforms other than CPU and GPU), which are `geqrf` and `orgqr`. Each loops over the columns (or rows) like
//! LAPACK's unblocked routines, the way XLA's `CholeskyExpander`, `TriangularSolveExpander` and
//! `QrExpander` do, with every step a whole-matrix op under an `iota` mask:
//! - `potrf` (`A = L L^T`, or `U^T U` on the transpose): column `j` is `(a[:, j] - L[:, :j] L[j, :j]^T)`
//!   scaled by `1 / sqrt(d)`; it stops (keeps the matrix) at the first `d` that is not positive,
//!   where `info` becomes `j + 1`; the other triangle keeps the input's values. The `cholesky` opcode
//!   zeroes the other triangle and is all NaN when `info > 0` (as XLA's expander).
//! - `getrf`: partial pivoting on the first largest magnitude (LAPACK's `isamax`), rows swapped
//!   under masks (each batch element has its own pivot), the column scaled by the pivot's reciprocal
//!   and a rank-1 update; `ipiv` is 1-based and `info` the first zero pivot's column + 1.
//! - `geqrf`: Householder reflectors as LAPACK's `larfg`: `beta = -sign(alpha) * norm`,
//!   `tau = (beta - alpha) / beta`, the vector scaled by `1 / (alpha - beta)` so that `v[0] = 1`
//!   (`tau = 0` for a column already zero below the diagonal); applied as `A -= (tau v) (v^T A)`.
//! - `orgqr`: `Q = H(0) ... H(k-1) I`, applied from the last reflector.
//! - `trsm` and `triangular-solve`: transposes and reversals turn every side, triangle and
//!   transposition into a forward substitution `x_i = (b_i - A[i, :i] X) / A[i, i]` by rows.
//!
//! Matrices are the two minor dimensions (the custom calls' column-major layouts describe memory,
//! not values); all batch dimensions are flattened into one for the loops and restored after.
//!
//! Complex (`c`, `z`) routines run the same expansions with conjugates where LAPACK's have them
//! (`L L^H`, `v^H A`, `H^H = I - conj(tau) v v^H` in `geqrf`, the adjoint for `trans_x = 'C'`),
//! in complex HLO ops that `lower-complex` then turns into real pairs: `potrf` reads the
//! diagonal's real part, `getrf` pivots on `|re| + |im|` (`icamax`), `geqrf`'s `beta` is real
//! (`zlarfg`), `heevd` rotates `U = D J D^H` with a phase `D` that makes each pair's entry real
//! ([`eig`]), and `gesdd` its one-sided Jacobi alike. `geev` (any type, JAX's `eig`) computes in
//! complex arithmetic: Hessenberg reduction, then single-shift complex QR, one Givens rotation of
//! a bulge-chasing sweep per loop step with every batch element at its own position, then back
//! substitution for the eigenvectors ([`geev`]). Its eigenvalues come in the Schur form's
//! diagonal order, the order of convergence, which need not be LAPACK's (`dgeev`'s real
//! double-shift QR converges differently), so programs that compare them should sort them.
//! Other LAPACK routines are left alone, so that backends report them by name ([`refused_target`]).
//!
//! Pre-condition: none (run after `inline-calls`). Post-condition: no expanded instruction remains;
//! each is replaced by its expansion in place (inlined, so users see the same values), its results
//! copied into the instruction's layouts.

mod eig;
mod geev;

use crate::util::{order_callees_first, NameUniquer};
use crate::PassError;
use hlo_interp::lapack::{config_char, lapack_routine, real_name, refusal, xla_target_routine};
use hlo_ir::builder::ComputationBuilder;
use hlo_ir::{
    ArrayData, ArrayShape, BinaryOp, CompId, CompareDirection, Computation, DType, DotDims, Instr, Literal, Module, Op,
    Shape, TransposeKind, UnaryOp,
};
use std::collections::HashMap;

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("linalg-expander").entered();
    let mut names = NameUniquer::new(module);
    let mut reducers = HashMap::new();
    let mut changed = false;
    for c in 0..module.comps.len() {
        let ids: Vec<_> = module.comps[c].ids().filter(|&id| expansion_kind(module, c, id).is_some()).collect();
        for id in ids {
            let Some(kind) = expansion_kind(module, c, id) else { continue };
            let instr = module.comps[c].instr(id).clone();
            let operand_shapes: Vec<ArrayShape> = instr
                .operands
                .iter()
                .map(|&o| module.comps[c].instr(o).shape.as_array().cloned())
                .collect::<Option<_>>()
                .ok_or_else(|| PassError::Internal(format!("{}: tuple operand", instr.name)))?;
            let shape = instr.shape.clone();
            let mut x = Expander { module, names: &mut names, base: instr.name.clone(), reducers: &mut reducers };
            let callee = x.expand(kind, &operand_shapes, &shape).map_err(|reason| PassError::Unsupported {
                pass: "linalg-expander",
                op: instr.name.clone(),
                reason,
            })?;
            let target = module.comps[c].instr_mut(id);
            target.op = Op::Call { to_apply: callee, is_composite: false };
            target.meta.backend_config = None;
            target.meta.frontend_attributes.clear();
            changed = true;
        }
    }
    if changed {
        order_callees_first(module);
        crate::inline_calls::run(module)?;
    }
    Ok(changed)
}

/// Why a LAPACK custom-call target is not expanded (routines this pass does not know such as
/// `gees`), or `None` for targets that are not LAPACK's or that it expands.
pub fn refused_target(target: &str) -> Option<String> {
    let (kind, routine) = lapack_routine(target)?;
    refusal(kind, routine).map(|why| format!("{why} (linalg-expander)"))
}

/// What an instruction expands into.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Potrf {
        lower: bool,
    },
    Cholesky {
        lower: bool,
    },
    Getrf,
    Geqrf,
    Orgqr,
    Trsm {
        left_side: bool,
        lower: bool,
        unit_diagonal: bool,
        transposed: bool,
        /// With `transposed`: the adjoint (`trans_x = 'C'`), which conjugates complex elements.
        conjugate: bool,
    },
    Syevd {
        lower: bool,
    },
    /// `full`: `jobz = 'A'` (else `'S'`, or `'N'` with `uv` false).
    Gesdd {
        full: bool,
        uv: bool,
    },
    /// Which eigenvectors `geev` computes (`compute_left`, `compute_right` = `'V'`).
    Geev {
        left: bool,
        right: bool,
    },
}

fn expansion_kind(module: &Module, c: usize, id: hlo_ir::InstrId) -> Option<Kind> {
    let comp = &module.comps[c];
    let instr = comp.instr(id);
    let dtype = instr.operands.first().and_then(|&o| comp.instr(o).shape.dtype());
    if !dtype.is_some_and(|d| matches!(d, DType::F32 | DType::F64 | DType::C64 | DType::C128)) {
        return None;
    }
    let cfg = |key| config_char(instr.meta.backend_config.as_deref(), key);
    match &instr.op {
        Op::Cholesky { lower } => Some(Kind::Cholesky { lower: *lower }),
        Op::TriangularSolve { left_side, lower, unit_diagonal, transpose_a } => Some(Kind::Trsm {
            left_side: *left_side,
            lower: *lower,
            unit_diagonal: *unit_diagonal,
            transposed: *transpose_a != TransposeKind::NoTranspose,
            conjugate: *transpose_a == TransposeKind::Adjoint,
        }),
        Op::CustomCall(cc) => {
            match xla_target_routine(&cc.target) {
                Some("geqrf") => return Some(Kind::Geqrf),
                Some(_) => return Some(Kind::Orgqr),
                None => {}
            }
            let (kind, routine) = lapack_routine(&cc.target)?;
            if refusal(kind, routine).is_some() {
                return None;
            }
            Some(match real_name(routine) {
                "potrf" => Kind::Potrf { lower: cfg("uplo") != Some('U') },
                "getrf" => Kind::Getrf,
                "geqrf" => Kind::Geqrf,
                "orgqr" => Kind::Orgqr,
                "syevd" => Kind::Syevd { lower: cfg("uplo") != Some('U') },
                "gesdd" => match cfg("mode") {
                    Some('A') => Kind::Gesdd { full: true, uv: true },
                    Some('S') => Kind::Gesdd { full: false, uv: true },
                    Some('N') => Kind::Gesdd { full: false, uv: false },
                    _ => return None,
                },
                "geev" => {
                    Kind::Geev { left: cfg("compute_left") == Some('V'), right: cfg("compute_right") == Some('V') }
                }
                "trsm" => Kind::Trsm {
                    left_side: cfg("side") != Some('R'),
                    lower: cfg("uplo") != Some('U'),
                    unit_diagonal: cfg("diag") == Some('U'),
                    transposed: matches!(cfg("trans_x"), Some('T' | 'C')),
                    conjugate: cfg("trans_x") == Some('C'),
                },
                _ => return None,
            })
        }
        _ => None,
    }
}

/// Builds expansions as computations of `module` (called, then inlined by `run`).
struct Expander<'a> {
    module: &'a mut Module,
    names: &'a mut NameUniquer,
    /// The expanded instruction's name: the prefix of the computations' names.
    base: String,
    reducers: &'a mut HashMap<(BinaryOp, DType), CompId>,
}

/// Batch count and matrix dimensions of a `[batch..., m, n]` shape.
fn bmn(shape: &ArrayShape) -> Result<(i64, i64, i64), String> {
    let r = shape.dims.len();
    if r < 2 {
        return Err(format!("expects matrices, got {shape}"));
    }
    Ok((shape.dims[..r - 2].iter().product(), shape.dims[r - 2], shape.dims[r - 1]))
}

fn scalar_literal(dtype: DType, v: f64) -> Literal {
    // `v * 0` keeps -0 (the identity of addition) and NaN in the imaginary part.
    let data = match dtype {
        DType::F32 => ArrayData::F32(vec![v as f32]),
        DType::F64 => ArrayData::F64(vec![v]),
        DType::C64 => ArrayData::C64(vec![[v as f32, (v * 0.0) as f32]]),
        DType::C128 => ArrayData::C128(vec![[v, v * 0.0]]),
        DType::S32 => ArrayData::S32(vec![v as i32]),
        _ => ArrayData::Pred(vec![v != 0.0]),
    };
    Literal::array(ArrayShape::scalar(dtype), data)
}

/// Shorthands over a [`ComputationBuilder`].
struct G<'b> {
    b: &'b mut ComputationBuilder,
}

type Id = hlo_ir::InstrId;

impl G<'_> {
    fn dims(&self, x: Id) -> Vec<i64> {
        self.b.array_shape(x).map(|a| a.dims.clone()).unwrap_or_default()
    }
    fn c(&mut self, dtype: DType, v: f64) -> Id {
        self.b.constant(scalar_literal(dtype, v))
    }
    /// A scalar of the element type, broadcast to `dims`.
    fn full(&mut self, dtype: DType, v: f64, dims: &[i64]) -> Id {
        let s = self.c(dtype, v);
        self.b.broadcast(s, &[], dims)
    }
    /// `x` (of dims `dims[..x.rank]`) broadcast along the trailing dimensions of `dims`.
    fn lead(&mut self, x: Id, dims: &[i64]) -> Id {
        let r = self.dims(x).len() as i64;
        let map: Vec<i64> = (0..r).collect();
        self.b.broadcast(x, &map, dims)
    }
    /// `x` broadcast into `dims` with its dimensions at `map`.
    fn bc(&mut self, x: Id, map: &[i64], dims: &[i64]) -> Id {
        self.b.broadcast(x, map, dims)
    }
    fn iota(&mut self, dims: &[i64], d: i64) -> Id {
        self.b.iota(ArrayShape::new(DType::S32, dims.to_vec()), d)
    }
    fn bin(&mut self, op: BinaryOp, x: Id, y: Id) -> Id {
        self.b.binary(op, x, y)
    }
    fn cmp(&mut self, dir: CompareDirection, x: Id, y: Id) -> Id {
        self.b.compare(dir, x, y)
    }
    /// `x dir s` for a scalar `s` broadcast to `x`'s shape.
    fn cmp_s(&mut self, dir: CompareDirection, x: Id, s: Id) -> Id {
        let dims = self.dims(x);
        let sb = self.b.broadcast(s, &[], &dims);
        self.b.compare(dir, x, sb)
    }
    fn sel(&mut self, p: Id, t: Id, f: Id) -> Id {
        self.b.select(p, t, f)
    }
    fn and(&mut self, x: Id, y: Id) -> Id {
        self.b.binary(BinaryOp::And, x, y)
    }
    fn not(&mut self, x: Id) -> Id {
        self.b.unary(UnaryOp::Not, x)
    }
    fn dslice(&mut self, x: Id, starts: &[Id], sizes: &[i64]) -> Id {
        let mut ops = vec![x];
        ops.extend_from_slice(starts);
        self.b.instr(Op::DynamicSlice { sizes: sizes.to_vec() }, &ops)
    }
    fn dus(&mut self, x: Id, update: Id, starts: &[Id]) -> Id {
        let mut ops = vec![x, update];
        ops.extend_from_slice(starts);
        self.b.instr(Op::DynamicUpdateSlice, &ops)
    }
    /// Column `j` of `[B, m, n]`: `[B, m]`.
    fn col(&mut self, a: Id, j: Id) -> Id {
        let d = self.dims(a);
        let z = self.c(DType::S32, 0.0);
        let s = self.dslice(a, &[z, z, j], &[d[0], d[1], 1]);
        self.b.reshape(s, &[d[0], d[1]])
    }
    /// Row `i` of `[B, m, n]`: `[B, n]`.
    fn row(&mut self, a: Id, i: Id) -> Id {
        let d = self.dims(a);
        let z = self.c(DType::S32, 0.0);
        let s = self.dslice(a, &[z, i, z], &[d[0], 1, d[2]]);
        self.b.reshape(s, &[d[0], d[2]])
    }
    /// Element `i` of each `[B, m]` row: `[B]`.
    fn elem(&mut self, v: Id, i: Id) -> Id {
        let d = self.dims(v);
        let z = self.c(DType::S32, 0.0);
        let s = self.dslice(v, &[z, i], &[d[0], 1]);
        self.b.reshape(s, &[d[0]])
    }
    /// Writes `[B, m]` as column `j` of `[B, m, n]`.
    fn set_col(&mut self, a: Id, v: Id, j: Id) -> Id {
        let d = self.dims(a);
        let z = self.c(DType::S32, 0.0);
        let v = self.b.reshape(v, &[d[0], d[1], 1]);
        self.dus(a, v, &[z, z, j])
    }
    /// Writes `[B, n]` as row `i` of `[B, m, n]`.
    fn set_row(&mut self, a: Id, v: Id, i: Id) -> Id {
        let d = self.dims(a);
        let z = self.c(DType::S32, 0.0);
        let v = self.b.reshape(v, &[d[0], 1, d[2]]);
        self.dus(a, v, &[z, i, z])
    }
    /// Writes `[B]` as element `i` of `[B, k]`.
    fn set_elem(&mut self, v: Id, x: Id, i: Id) -> Id {
        let d = self.dims(v);
        let z = self.c(DType::S32, 0.0);
        let x = self.b.reshape(x, &[d[0], 1]);
        self.dus(v, x, &[z, i])
    }
    /// `[B, m, n] x [B, n] -> [B, m]`.
    fn mat_vec(&mut self, a: Id, v: Id) -> Id {
        let dims =
            DotDims { lhs_batch: vec![0], lhs_contracting: vec![2], rhs_batch: vec![0], rhs_contracting: vec![1] };
        self.b.dot(a, v, dims)
    }
    /// `[B, m] x [B, m, n] -> [B, n]`.
    fn vec_mat(&mut self, v: Id, a: Id) -> Id {
        let dims =
            DotDims { lhs_batch: vec![0], lhs_contracting: vec![1], rhs_batch: vec![0], rhs_contracting: vec![1] };
        self.b.dot(v, a, dims)
    }
    /// `u[B, m] (x) w[B, n] -> [B, m, n]`.
    fn outer(&mut self, u: Id, w: Id) -> Id {
        let (du, dw) = (self.dims(u), self.dims(w));
        let dims = [du[0], du[1], dw[1]];
        let ub = self.bc(u, &[0, 1], &dims);
        let wb = self.bc(w, &[0, 2], &dims);
        self.bin(BinaryOp::Multiply, ub, wb)
    }
    fn reduce(&mut self, x: Id, init: Id, dim: i64, to_apply: CompId) -> Id {
        self.b.reduce(&[x], &[init], &[dim], to_apply)
    }
    fn transpose_minor(&mut self, x: Id) -> Id {
        self.b.transpose(x, &[0, 2, 1])
    }
    fn is_complex(&self, x: Id) -> bool {
        self.b.array_shape(x).is_some_and(|a| a.dtype.is_complex())
    }
    /// The complex conjugate (the identity on reals).
    fn conj(&mut self, x: Id) -> Id {
        if !self.is_complex(x) {
            return x;
        }
        let re = self.b.unary(UnaryOp::Real, x);
        let im = self.b.unary(UnaryOp::Imag, x);
        let neg = self.b.unary(UnaryOp::Negate, im);
        self.b.binary(BinaryOp::Complex, re, neg)
    }
    /// The conjugate transpose of `[B, m, n]`.
    fn adjoint(&mut self, x: Id) -> Id {
        let t = self.transpose_minor(x);
        self.conj(t)
    }
    /// The real part (the identity on reals).
    fn re(&mut self, x: Id) -> Id {
        if self.is_complex(x) {
            self.b.unary(UnaryOp::Real, x)
        } else {
            x
        }
    }
    /// The imaginary part of a complex `x`, `None` for a real one.
    fn im(&mut self, x: Id) -> Option<Id> {
        self.is_complex(x).then(|| self.b.unary(UnaryOp::Imag, x))
    }
    /// `|x|^2`, real.
    fn abs2(&mut self, x: Id) -> Id {
        let re = self.re(x);
        let sq = self.bin(BinaryOp::Multiply, re, re);
        match self.im(x) {
            Some(im) => {
                let sq_im = self.bin(BinaryOp::Multiply, im, im);
                self.bin(BinaryOp::Add, sq, sq_im)
            }
            None => sq,
        }
    }
    /// `|re| + |im|`, real: LAPACK's `i?amax` compares it (`cabs1`).
    fn abs1(&mut self, x: Id) -> Id {
        let re = self.re(x);
        let a = self.b.unary(UnaryOp::Abs, re);
        match self.im(x) {
            Some(im) => {
                let b = self.b.unary(UnaryOp::Abs, im);
                self.bin(BinaryOp::Add, a, b)
            }
            None => a,
        }
    }
    /// A real `x` as an element of `dt` (`complex(x, 0)` for a complex `dt`).
    fn of_re(&mut self, x: Id, dt: DType) -> Id {
        if !dt.is_complex() {
            return x;
        }
        let d = self.dims(x);
        let zero = self.full(dt.complex_component().unwrap_or(DType::F32), 0.0, &d);
        self.bin(BinaryOp::Complex, x, zero)
    }
}

/// The real type of an element type (`f32` for `c64`).
fn real_of(dt: DType) -> DType {
    dt.complex_component().unwrap_or(dt)
}

/// Scalar reducers an expansion uses.
#[derive(Clone, Copy)]
struct Reducers {
    add: CompId,
    /// `add` over the real type (the same as `add` for a real element type).
    add_re: CompId,
    /// Over the real type.
    max: CompId,
    min_s32: CompId,
    add_s32: CompId,
}

impl Expander<'_> {
    /// Adds `comp` with module-unique names and returns its id.
    fn add_comp(&mut self, mut comp: Computation, name: &str) -> CompId {
        comp.name = self.names.fresh(&format!("{}_{name}", self.base));
        for instr in &mut comp.instrs {
            instr.name = self.names.fresh(&instr.name);
        }
        self.module.comps.push(comp);
        CompId(self.module.comps.len() as u32 - 1)
    }

    /// A scalar `op` over `dtype` for reductions, created once per run.
    fn reducer(&mut self, op: BinaryOp, dtype: DType) -> CompId {
        if let Some(&id) = self.reducers.get(&(op, dtype)) {
            return id;
        }
        let s = Shape::scalar(dtype);
        let mut c = Computation::new("reducer");
        let x = c.push(Instr::new("x", s.clone(), Op::Parameter { number: 0 }, vec![]));
        let y = c.push(Instr::new("y", s.clone(), Op::Parameter { number: 1 }, vec![]));
        c.root = c.push(Instr::new("r", s, Op::Binary(op), vec![x, y]));
        c.params = vec![x, y];
        let name = format!("{}_{dtype}", format!("{op:?}").to_lowercase());
        let saved = std::mem::replace(&mut self.base, "linalg".to_string());
        let id = self.add_comp(c, &name);
        self.base = saved;
        self.reducers.insert((op, dtype), id);
        id
    }

    /// A counted loop `for i in 0..trips { state = body(i, state) }` over `state` (arrays):
    /// returns the final state, built in `outer`.
    fn counted_loop(
        &mut self,
        outer: &mut ComputationBuilder,
        trips: i64,
        state: &[Id],
        body: impl FnOnce(&mut G, Id, &[Id]) -> Vec<Id>,
    ) -> Result<Vec<Id>, String> {
        let shapes: Vec<Shape> = state.iter().map(|&s| outer.shape(s).clone()).collect();
        let mut tuple_shapes = vec![Shape::scalar(DType::S32)];
        tuple_shapes.extend(shapes.iter().cloned());
        let tuple_shape = Shape::Tuple(tuple_shapes);
        // Body.
        let mut bb = ComputationBuilder::for_module("body", self.module);
        let p = bb.param(tuple_shape.clone());
        let i = bb.get_tuple_element(p, 0);
        let elems: Vec<Id> = (0..state.len()).map(|k| bb.get_tuple_element(p, k as u64 + 1)).collect();
        let mut g = G { b: &mut bb };
        let new = body(&mut g, i, &elems);
        let one = g.c(DType::S32, 1.0);
        let next = g.bin(BinaryOp::Add, i, one);
        let mut out = vec![next];
        out.extend(new);
        let root = bb.tuple(&out);
        let body_comp = bb.finish_with_root(root).map_err(|e| e.to_string())?;
        let body_id = self.add_comp(body_comp, "body");
        // Condition.
        let mut cb = ComputationBuilder::new("cond");
        let p = cb.param(tuple_shape);
        let i = cb.get_tuple_element(p, 0);
        let n = cb.constant(scalar_literal(DType::S32, trips as f64));
        let root = cb.compare(CompareDirection::Lt, i, n);
        let cond_comp = cb.finish_with_root(root).map_err(|e| e.to_string())?;
        let cond_id = self.add_comp(cond_comp, "cond");
        outer.set_callee(body_id, &self.module.comps[body_id.index()]);
        outer.set_callee(cond_id, &self.module.comps[cond_id.index()]);
        let zero = outer.constant(scalar_literal(DType::S32, 0.0));
        let mut init = vec![zero];
        init.extend_from_slice(state);
        let init = outer.tuple(&init);
        let w = outer.instr(Op::While { condition: cond_id, body: body_id }, &[init]);
        Ok((0..state.len()).map(|k| outer.get_tuple_element(w, k as u64 + 1)).collect())
    }

    /// Builds the expansion of one instruction as a computation with its operands as parameters.
    fn expand(&mut self, kind: Kind, operands: &[ArrayShape], out: &Shape) -> Result<CompId, String> {
        let a_shape = operands.first().ok_or("no operands")?;
        let dt = a_shape.dtype;
        let r = Reducers {
            add: self.reducer(BinaryOp::Add, dt),
            add_re: self.reducer(BinaryOp::Add, real_of(dt)),
            max: self.reducer(BinaryOp::Maximum, real_of(dt)),
            min_s32: self.reducer(BinaryOp::Minimum, DType::S32),
            add_s32: self.reducer(BinaryOp::Add, DType::S32),
        };
        let mut ob = ComputationBuilder::for_module("linalg", self.module);
        let params: Vec<Id> =
            operands.iter().map(|s| ob.param(Shape::Array(ArrayShape::new(s.dtype, s.dims.clone())))).collect();
        let (batch, m, n) = bmn(a_shape)?;
        let batch_dims = a_shape.dims[..a_shape.dims.len() - 2].to_vec();
        let with_batch = |rest: &[i64]| -> Vec<i64> { batch_dims.iter().chain(rest).copied().collect() };
        let a = ob.reshape(params[0], &[batch, m, n]);
        let root = match kind {
            Kind::Potrf { lower } | Kind::Cholesky { lower } => {
                if m != n {
                    return Err("needs square matrices".into());
                }
                // The upper factor is the adjoint of the lower one of the adjoint.
                let a = if lower { a } else { G { b: &mut ob }.adjoint(a) };
                let (l, info) = self.potrf(&mut ob, dt, r, a)?;
                let mut g = G { b: &mut ob };
                let l = if let Kind::Cholesky { .. } = kind {
                    let dims = [batch, n, n];
                    let (ri, ci) = (g.iota(&dims, 1), g.iota(&dims, 2));
                    let keep = g.cmp(CompareDirection::Ge, ri, ci);
                    let zero = g.full(dt, 0.0, &dims);
                    let tri = g.sel(keep, l, zero);
                    let zero_i = g.c(DType::S32, 0.0);
                    let ok = g.cmp_s(CompareDirection::Eq, info, zero_i);
                    let ok = g.lead(ok, &dims);
                    let nan = g.full(dt, f64::NAN, &dims);
                    g.sel(ok, tri, nan)
                } else {
                    l
                };
                let l = if lower { l } else { g.adjoint(l) };
                let l = g.b.reshape(l, &with_batch(&[n, n]));
                if let Kind::Cholesky { .. } = kind {
                    l
                } else {
                    let info = g.b.reshape(info, &batch_dims);
                    g.b.tuple(&[l, info])
                }
            }
            Kind::Getrf => {
                let (lu, ipiv, info) = self.getrf(&mut ob, dt, r, a)?;
                let k = m.min(n);
                let lu = ob.reshape(lu, &with_batch(&[m, n]));
                let ipiv = ob.reshape(ipiv, &with_batch(&[k]));
                let info = ob.reshape(info, &batch_dims);
                ob.tuple(&[lu, ipiv, info])
            }
            Kind::Geqrf => {
                let (qr, tau) = self.geqrf(&mut ob, dt, r, a)?;
                let qr = ob.reshape(qr, &with_batch(&[m, n]));
                let tau = ob.reshape(tau, &with_batch(&[m.min(n)]));
                ob.tuple(&[qr, tau])
            }
            Kind::Orgqr => {
                let tau_shape = operands.get(1).ok_or("orgqr takes (a, tau)")?;
                let k = *tau_shape.dims.last().ok_or("tau is a vector")?;
                if k > n || n > m {
                    return Err(format!("orgqr of {a_shape} with {tau_shape}"));
                }
                let tau = ob.reshape(params[1], &[batch, k]);
                let q = self.orgqr(&mut ob, dt, a, tau, k)?;
                ob.reshape(q, &with_batch(&[m, n]))
            }
            Kind::Trsm { left_side, lower, unit_diagonal, transposed, conjugate } => {
                let b_shape = operands.get(1).ok_or("a triangular solve takes (a, b)")?;
                let (_, bm, bn) = bmn(b_shape)?;
                let bmat = ob.reshape(params[1], &[batch, bm, bn]);
                let a = if conjugate { G { b: &mut ob }.conj(a) } else { a };
                let x = self.trsm(&mut ob, dt, a, bmat, left_side, lower, unit_diagonal, transposed)?;
                ob.reshape(x, &b_shape.dims)
            }
            Kind::Syevd { lower } => {
                if m != n {
                    return Err("needs square matrices".into());
                }
                let (v, w, info) = self.syevd(&mut ob, dt, r, a, lower)?;
                let v = ob.reshape(v, &with_batch(&[n, n]));
                let w = ob.reshape(w, &with_batch(&[n]));
                let info = ob.reshape(info, &batch_dims);
                ob.tuple(&[v, w, info])
            }
            Kind::Gesdd { full, uv } => {
                let (s, u, vt, info) = self.gesdd(&mut ob, dt, r, a, full)?;
                let k = m.min(n);
                let s = ob.reshape(s, &with_batch(&[k]));
                let info = ob.reshape(info, &batch_dims);
                let (u, vt) = if uv {
                    let ucols = if full { m } else { k };
                    let vrows = if full { n } else { k };
                    (ob.reshape(u, &with_batch(&[m, ucols])), ob.reshape(vt, &with_batch(&[vrows, n])))
                } else {
                    // LAPACK leaves them unspecified: zeros of the declared shapes.
                    let elems = out.as_tuple().ok_or("gesdd returns a tuple")?;
                    let mut zero = |e: &Shape| -> Result<Id, String> {
                        let dims = &e.as_array().ok_or("array")?.dims;
                        let z = ob.constant(scalar_literal(dt, 0.0));
                        Ok(ob.broadcast(z, &[], dims))
                    };
                    (zero(&elems[2])?, zero(&elems[3])?)
                };
                ob.tuple(&[params[0], s, u, vt, info])
            }
            Kind::Geev { left, right } => {
                if m != n {
                    return Err("needs square matrices".into());
                }
                let (w, vl, vr, info) = self.geev(&mut ob, dt, a, left, right)?;
                let vl = ob.reshape(vl, &with_batch(&[n, n]));
                let vr = ob.reshape(vr, &with_batch(&[n, n]));
                let info = ob.reshape(info, &batch_dims);
                let mut res = Vec::new();
                if dt.is_complex() {
                    res.push(ob.reshape(w, &with_batch(&[n])));
                } else {
                    for part in [UnaryOp::Real, UnaryOp::Imag] {
                        let x = ob.unary(part, w);
                        res.push(ob.reshape(x, &with_batch(&[n])));
                    }
                }
                res.extend([vl, vr, info]);
                ob.tuple(&res)
            }
        };
        if !hlo_ir::shape_inference::same_shape(ob.shape(root), out) {
            return Err(format!("expansion has shape {}, the instruction {out}", ob.shape(root)));
        }
        // The results in the instruction's layouts (LAPACK's column-major ones): a `copy` is the
        // identity on values, and a `bitcast` user still reads the physical order it expects.
        let root = match out {
            Shape::Tuple(elems) => {
                let parts: Vec<Id> = elems
                    .iter()
                    .enumerate()
                    .map(|(k, e)| {
                        let x = ob.get_tuple_element(root, k as u64);
                        ob.instr_with_shape(e.clone(), Op::Copy, &[x])
                    })
                    .collect();
                ob.tuple(&parts)
            }
            _ => ob.instr_with_shape(out.clone(), Op::Copy, &[root]),
        };
        let comp = ob.finish_with_root(root).map_err(|e| e.to_string())?;
        Ok(self.add_comp(comp, "linalg"))
    }

    /// Lower Cholesky of `[B, n, n]`: `(factor, info[B])`.
    fn potrf(&mut self, ob: &mut ComputationBuilder, dt: DType, _r: Reducers, a: Id) -> Result<(Id, Id), String> {
        let d = ob.array_shape(a).ok_or("array")?.dims.clone();
        let (batch, n) = (d[0], d[1]);
        let info0 = {
            let mut g = G { b: ob };
            g.full(DType::S32, 0.0, &[batch])
        };
        let out = self.counted_loop(ob, n, &[a, info0], |g, j, s| {
            let (a, info) = (s[0], s[1]);
            let dims = [batch, n, n];
            let ci = g.iota(&dims, 2);
            let before = g.cmp_s(CompareDirection::Lt, ci, j);
            let zero = g.full(dt, 0.0, &dims);
            let lm = g.sel(before, a, zero);
            let lj = g.row(lm, j);
            let lj = g.conj(lj);
            let v = g.mat_vec(lm, lj);
            let aj = g.col(a, j);
            let c = g.bin(BinaryOp::Subtract, aj, v);
            // Hermitian: the diagonal's real part, `a_jj - sum |l_jk|^2`.
            let cj = g.elem(c, j);
            let dj = g.re(cj);
            let rt = real_of(dt);
            let zero_b = g.full(rt, 0.0, &[batch]);
            let ok = g.cmp(CompareDirection::Gt, dj, zero_b);
            let l = g.b.unary(UnaryOp::Sqrt, dj);
            let one = g.full(rt, 1.0, &[batch]);
            let rinv = g.bin(BinaryOp::Divide, one, l);
            let (rinv, l, dj) = (g.of_re(rinv, dt), g.of_re(l, dt), g.of_re(dj, dt));
            let vd = [batch, n];
            let ri = g.iota(&vd, 1);
            let is_j = g.cmp_s(CompareDirection::Eq, ri, j);
            let below = g.cmp_s(CompareDirection::Gt, ri, j);
            let rinv_b = g.lead(rinv, &vd);
            let scaled = g.bin(BinaryOp::Multiply, c, rinv_b);
            let l_b = g.lead(l, &vd);
            let kept = g.sel(below, scaled, aj);
            let good = g.sel(is_j, l_b, kept);
            // The failing column keeps its values with the non-positive diagonal, as LAPACK.
            let d_b = g.lead(dj, &vd);
            let bad = g.sel(is_j, d_b, aj);
            let ok_b = g.lead(ok, &vd);
            let newcol = g.sel(ok_b, good, bad);
            let zero_i = g.c(DType::S32, 0.0);
            let running = g.cmp_s(CompareDirection::Eq, info, zero_i);
            let running_b = g.lead(running, &vd);
            let newcol = g.sel(running_b, newcol, aj);
            let a = g.set_col(a, newcol, j);
            let not_ok = g.not(ok);
            let fails = g.and(running, not_ok);
            let one_i = g.c(DType::S32, 1.0);
            let j1 = g.bin(BinaryOp::Add, j, one_i);
            let j1 = g.b.broadcast(j1, &[], &[batch]);
            let info = g.sel(fails, j1, info);
            vec![a, info]
        })?;
        Ok((out[0], out[1]))
    }

    /// LU with partial pivoting of `[B, m, n]`: `(lu, ipiv[B, k], info[B])`.
    fn getrf(&mut self, ob: &mut ComputationBuilder, dt: DType, r: Reducers, a: Id) -> Result<(Id, Id, Id), String> {
        let d = ob.array_shape(a).ok_or("array")?.dims.clone();
        let (batch, m, n) = (d[0], d[1], d[2]);
        let k = m.min(n);
        let (ipiv0, info0) = {
            let mut g = G { b: ob };
            (g.full(DType::S32, 0.0, &[batch, k]), g.full(DType::S32, 0.0, &[batch]))
        };
        let out = self.counted_loop(ob, k, &[a, ipiv0, info0], |g, j, s| {
            let (a, ipiv, info) = (s[0], s[1], s[2]);
            let vd = [batch, m];
            let md = [batch, m, n];
            let cj = g.col(a, j);
            let ri = g.iota(&vd, 1);
            // isamax over rows >= j: the first of the largest magnitudes.
            let from_j = g.cmp_s(CompareDirection::Ge, ri, j);
            let rt = real_of(dt);
            let absc = g.abs1(cj);
            let minus_one = g.full(rt, -1.0, &vd);
            let cand = g.sel(from_j, absc, minus_one);
            let init = g.c(rt, -1.0);
            let mx = g.reduce(cand, init, 1, r.max);
            let mx_b = g.lead(mx, &vd);
            let at_max = g.cmp(CompareDirection::Eq, cand, mx_b);
            let m_full = g.full(DType::S32, m as f64, &vd);
            let idx = g.sel(at_max, ri, m_full);
            let m_s = g.c(DType::S32, m as f64);
            let p = g.reduce(idx, m_s, 1, r.min_s32);
            // No row compares equal to a NaN maximum: keep row j.
            let none = g.cmp_s(CompareDirection::Eq, p, m_s);
            let j_b = g.b.broadcast(j, &[], &[batch]);
            let p = g.sel(none, j_b, p);
            let one_i = g.c(DType::S32, 1.0);
            let one_b = g.b.broadcast(one_i, &[], &[batch]);
            let p1 = g.bin(BinaryOp::Add, p, one_b);
            let ipiv = g.set_elem(ipiv, p1, j);
            // The pivot and its row (an exact masked sum: -0 is the identity of addition).
            let p_v = g.lead(p, &vd);
            let is_p = g.cmp(CompareDirection::Eq, ri, p_v);
            let neg_zero_v = g.full(dt, -0.0, &vd);
            let pivot_terms = g.sel(is_p, cj, neg_zero_v);
            let neg_zero = g.c(dt, -0.0);
            let pivot = g.reduce(pivot_terms, neg_zero, 1, r.add);
            let zero_b = g.full(rt, 0.0, &[batch]);
            let pivot_mag = g.abs1(pivot);
            let nz = g.cmp(CompareDirection::Ne, pivot_mag, zero_b);
            let rows = g.iota(&md, 1);
            let p_m = g.lead(p, &md);
            let is_p_m = g.cmp(CompareDirection::Eq, rows, p_m);
            let neg_zero_m = g.full(dt, -0.0, &md);
            let rowp_terms = g.sel(is_p_m, a, neg_zero_m);
            let rowp = g.reduce(rowp_terms, neg_zero, 1, r.add);
            let rowj = g.row(a, j);
            let rowp_m = g.bc(rowp, &[0, 2], &md);
            let rowj_m = g.bc(rowj, &[0, 2], &md);
            let is_j_m = g.cmp_s(CompareDirection::Eq, rows, j);
            let swapped = g.sel(is_p_m, rowj_m, a);
            let swapped = g.sel(is_j_m, rowp_m, swapped);
            let nz_m = g.lead(nz, &md);
            let a1 = g.sel(nz_m, swapped, a);
            // Scale the column below the pivot by its reciprocal (or divide by a tiny pivot).
            let c1 = g.col(a1, j);
            let one = g.full(dt, 1.0, &[batch]);
            let recip = g.bin(BinaryOp::Divide, one, pivot);
            let recip_v = g.lead(recip, &vd);
            let by_recip = g.bin(BinaryOp::Multiply, c1, recip_v);
            let pivot_v = g.lead(pivot, &vd);
            let by_div = g.bin(BinaryOp::Divide, c1, pivot_v);
            let abs_p = g.b.unary(UnaryOp::Abs, pivot);
            let safe_min = if rt == DType::F64 { f64::MIN_POSITIVE } else { f32::MIN_POSITIVE as f64 };
            let safe = g.full(rt, safe_min, &[batch]);
            let normal = g.cmp(CompareDirection::Ge, abs_p, safe);
            let normal_v = g.lead(normal, &vd);
            let scaled = g.sel(normal_v, by_recip, by_div);
            let below = g.cmp_s(CompareDirection::Gt, ri, j);
            let nz_v = g.lead(nz, &vd);
            let scale_here = g.and(below, nz_v);
            let l = g.sel(scale_here, scaled, c1);
            let zero_i = g.c(DType::S32, 0.0);
            let running = g.cmp_s(CompareDirection::Eq, info, zero_i);
            let is_zero = g.not(nz);
            let first_zero = g.and(running, is_zero);
            let j1 = g.bin(BinaryOp::Add, j, one_i);
            let j1 = g.b.broadcast(j1, &[], &[batch]);
            let info = g.sel(first_zero, j1, info);
            // Rank-1 update of the trailing block.
            let rowj1 = g.row(a1, j);
            let below_v = g.cmp_s(CompareDirection::Gt, ri, j);
            let zero_v = g.full(dt, 0.0, &vd);
            let l_below = g.sel(below_v, l, zero_v);
            let prod = g.outer(l_below, rowj1);
            let upd = g.bin(BinaryOp::Subtract, a1, prod);
            let cols = g.iota(&md, 2);
            let row_below = g.cmp_s(CompareDirection::Gt, rows, j);
            let col_right = g.cmp_s(CompareDirection::Gt, cols, j);
            let trailing = g.and(row_below, col_right);
            let a2 = g.sel(trailing, upd, a1);
            let a3 = g.set_col(a2, l, j);
            vec![a3, ipiv, info]
        })?;
        Ok((out[0], out[1], out[2]))
    }

    /// Householder QR of `[B, m, n]`: `(r_and_reflectors, tau[B, k])`.
    fn geqrf(&mut self, ob: &mut ComputationBuilder, dt: DType, r: Reducers, a: Id) -> Result<(Id, Id), String> {
        let d = ob.array_shape(a).ok_or("array")?.dims.clone();
        let (batch, m, n) = (d[0], d[1], d[2]);
        let k = m.min(n);
        let tau0 = {
            let mut g = G { b: ob };
            g.full(dt, 0.0, &[batch, k])
        };
        let out = self.counted_loop(ob, k, &[a, tau0], |g, i, s| {
            let (a, taus) = (s[0], s[1]);
            let vd = [batch, m];
            let md = [batch, m, n];
            let ci = g.col(a, i);
            let ri = g.iota(&vd, 1);
            let alpha = g.elem(ci, i);
            let below = g.cmp_s(CompareDirection::Gt, ri, i);
            let zero_v = g.full(dt, 0.0, &vd);
            let x = g.sel(below, ci, zero_v);
            let rt = real_of(dt);
            // The norm of (alpha, x) scaled by its largest part (as LAPACK's `dznrm2`/`dlapy3`),
            // so that tiny columns (rounding noise in `gesdd`'s `u`) do not square to zero.
            let vd_rows = g.cmp_s(CompareDirection::Ge, ri, i);
            let mag = g.abs1(ci);
            let zero_rv = g.full(rt, 0.0, &vd);
            let mag = g.sel(vd_rows, mag, zero_rv);
            let zero = g.c(rt, 0.0);
            let big = g.reduce(mag, zero, 1, r.max);
            let zero_b = g.full(rt, 0.0, &[batch]);
            let positive = g.cmp(CompareDirection::Gt, big, zero_b);
            let one_b = g.full(rt, 1.0, &[batch]);
            let big = g.sel(positive, big, one_b);
            let big_c = g.of_re(big, dt);
            let big_v = g.lead(big_c, &vd);
            let xs = g.bin(BinaryOp::Divide, x, big_v);
            let x2 = g.abs2(xs);
            let xnorm2 = g.reduce(x2, zero, 1, r.add_re);
            // Complex `alpha = (alphr, alphi)`: the real `beta` of `zlarfg`, and
            // `tau = ((beta - alphr) / beta, -alphi / beta)`.
            let alphr = g.re(alpha);
            let alphi = g.im(alpha);
            let trivial = g.cmp(CompareDirection::Eq, xnorm2, zero_b);
            let alphr_s = g.bin(BinaryOp::Divide, alphr, big);
            let mut alpha2 = g.bin(BinaryOp::Multiply, alphr_s, alphr_s);
            let trivial = match alphi {
                Some(alphi) => {
                    let real = g.cmp(CompareDirection::Eq, alphi, zero_b);
                    let alphi_s = g.bin(BinaryOp::Divide, alphi, big);
                    let sq = g.bin(BinaryOp::Multiply, alphi_s, alphi_s);
                    alpha2 = g.bin(BinaryOp::Add, alpha2, sq);
                    g.and(trivial, real)
                }
                None => trivial,
            };
            let norm2 = g.bin(BinaryOp::Add, alpha2, xnorm2);
            let norm = g.b.unary(UnaryOp::Sqrt, norm2);
            let norm = g.bin(BinaryOp::Multiply, big, norm);
            let neg_norm = g.b.unary(UnaryOp::Negate, norm);
            let negative = g.cmp(CompareDirection::Lt, alphr, zero_b);
            let beta = g.sel(negative, norm, neg_norm);
            let bma = g.bin(BinaryOp::Subtract, beta, alphr);
            let tau = g.bin(BinaryOp::Divide, bma, beta);
            let tau = match alphi {
                Some(alphi) => {
                    let neg = g.b.unary(UnaryOp::Negate, alphi);
                    let tau_im = g.bin(BinaryOp::Divide, neg, beta);
                    g.bin(BinaryOp::Complex, tau, tau_im)
                }
                None => tau,
            };
            let zero_b = g.full(dt, 0.0, &[batch]);
            let tau = g.sel(trivial, zero_b, tau);
            let beta = g.of_re(beta, dt);
            let amb = g.bin(BinaryOp::Subtract, alpha, beta);
            let one = g.full(dt, 1.0, &[batch]);
            let scale = g.bin(BinaryOp::Divide, one, amb);
            let scale_v = g.lead(scale, &vd);
            let scaled = g.bin(BinaryOp::Multiply, ci, scale_v);
            let trivial_v = g.lead(trivial, &vd);
            let scaled = g.sel(trivial_v, ci, scaled);
            let is_i = g.cmp_s(CompareDirection::Eq, ri, i);
            let one_v = g.full(dt, 1.0, &vd);
            let v_below = g.sel(below, scaled, zero_v);
            let v = g.sel(is_i, one_v, v_below);
            let beta_v = g.lead(beta, &vd);
            let diag = g.sel(trivial_v, ci, beta_v);
            let newcol = g.sel(below, scaled, ci);
            let newcol = g.sel(is_i, diag, newcol);
            // A[i.., i+1..] -= (conj(tau) v) (v^H A): `geqr2` applies H^H.
            let vc = g.conj(v);
            let w = g.vec_mat(vc, a);
            let tau_c = g.conj(tau);
            let tau_v = g.lead(tau_c, &vd);
            let tv = g.bin(BinaryOp::Multiply, tau_v, v);
            let prod = g.outer(tv, w);
            let upd = g.bin(BinaryOp::Subtract, a, prod);
            let cols = g.iota(&md, 2);
            let right = g.cmp_s(CompareDirection::Gt, cols, i);
            let rows = g.iota(&md, 1);
            let from_i = g.cmp_s(CompareDirection::Ge, rows, i);
            let mask = g.and(right, from_i);
            let nontrivial = g.not(trivial);
            let nontrivial_m = g.lead(nontrivial, &md);
            let mask = g.and(mask, nontrivial_m);
            let a1 = g.sel(mask, upd, a);
            let a2 = g.set_col(a1, newcol, i);
            let taus = g.set_elem(taus, tau, i);
            vec![a2, taus]
        })?;
        Ok((out[0], out[1]))
    }

    /// `Q = H(0) ... H(k-1)` applied to the first `n` columns of the identity.
    fn orgqr(&mut self, ob: &mut ComputationBuilder, dt: DType, a: Id, tau: Id, k: i64) -> Result<Id, String> {
        let d = ob.array_shape(a).ok_or("array")?.dims.clone();
        let (batch, m, n) = (d[0], d[1], d[2]);
        let md = [batch, m, n];
        let q0 = {
            let mut g = G { b: ob };
            let (rows, cols) = (g.iota(&md, 1), g.iota(&md, 2));
            let diag = g.cmp(CompareDirection::Eq, rows, cols);
            let (one, zero) = (g.full(dt, 1.0, &md), g.full(dt, 0.0, &md));
            g.sel(diag, one, zero)
        };
        let out = self.counted_loop(ob, k, &[q0, a, tau], |g, t, s| {
            let (q, a, tau) = (s[0], s[1], s[2]);
            let vd = [batch, m];
            let last = g.c(DType::S32, (k - 1) as f64);
            let i = g.bin(BinaryOp::Subtract, last, t);
            let ci = g.col(a, i);
            let ri = g.iota(&vd, 1);
            let below = g.cmp_s(CompareDirection::Gt, ri, i);
            let is_i = g.cmp_s(CompareDirection::Eq, ri, i);
            let (one_v, zero_v) = (g.full(dt, 1.0, &vd), g.full(dt, 0.0, &vd));
            let v = g.sel(below, ci, zero_v);
            let v = g.sel(is_i, one_v, v);
            let ti = g.elem(tau, i);
            let vc = g.conj(v);
            let w = g.vec_mat(vc, q);
            let ti_v = g.lead(ti, &vd);
            let tv = g.bin(BinaryOp::Multiply, ti_v, v);
            let prod = g.outer(tv, w);
            let q = g.bin(BinaryOp::Subtract, q, prod);
            vec![q, a, tau]
        })?;
        Ok(out[0])
    }

    /// Triangular solve of `a[B, k, k]` with `b[B, m, n]`.
    #[allow(clippy::too_many_arguments)]
    fn trsm(
        &mut self,
        ob: &mut ComputationBuilder,
        dt: DType,
        a: Id,
        b: Id,
        left_side: bool,
        lower: bool,
        unit_diagonal: bool,
        transposed: bool,
    ) -> Result<Id, String> {
        // X op(A) = B  <=>  op(A)^T X^T = B^T.
        let (b, transposed) = if left_side { (b, transposed) } else { (ob.transpose(b, &[0, 2, 1]), !transposed) };
        // op(A) X = B with op(A) explicit: lower or upper.
        let (a, lower) = if transposed { (ob.transpose(a, &[0, 2, 1]), !lower) } else { (a, lower) };
        // Upper: reverse rows and columns (P A P is lower; P X solves it for P B).
        let (a, b) = if lower {
            (a, b)
        } else {
            (
                ob.instr(Op::Reverse { dimensions: vec![1, 2] }, &[a]),
                ob.instr(Op::Reverse { dimensions: vec![1] }, &[b]),
            )
        };
        let d = ob.array_shape(b).ok_or("array")?.dims.clone();
        let (batch, k, n) = (d[0], d[1], d[2]);
        let x0 = {
            let mut g = G { b: ob };
            g.full(dt, 0.0, &[batch, k, n])
        };
        let out = self.counted_loop(ob, k, &[x0, a, b], |g, i, s| {
            let (x, a, b) = (s[0], s[1], s[2]);
            let vd = [batch, k];
            let ai = g.row(a, i);
            let ci = g.iota(&vd, 1);
            let before = g.cmp_s(CompareDirection::Lt, ci, i);
            let zero_v = g.full(dt, 0.0, &vd);
            let ai_m = g.sel(before, ai, zero_v);
            let s = g.vec_mat(ai_m, x);
            let bi = g.row(b, i);
            let xi = g.bin(BinaryOp::Subtract, bi, s);
            let xi = if unit_diagonal {
                xi
            } else {
                let aii = g.elem(ai, i);
                let aii = g.lead(aii, &[batch, n]);
                g.bin(BinaryOp::Divide, xi, aii)
            };
            let x = g.set_row(x, xi, i);
            vec![x, a, b]
        })?;
        let mut x = out[0];
        if !lower {
            x = ob.instr(Op::Reverse { dimensions: vec![1] }, &[x]);
        }
        if !left_side {
            x = ob.transpose(x, &[0, 2, 1]);
        }
        Ok(x)
    }
}
