//! `linalg-expander`: every LAPACK custom call JAX emits on CPU and XLA's `cholesky` and
//! `triangular-solve`, expanded into while loops of plain HLO, must compute what the
//! interpreter's own LAPACK routines (`hlo_interp::lapack`) compute on the original module:
//! integers (pivots, `info`) exactly, floats within a relative L2 error of 1e-5 (the two order
//! their sums differently). Hand-written modules cover batches, both triangles, both sides,
//! transposes, unit diagonals, rectangular matrices, ties in pivoting, a singular matrix and
//! a matrix that is not positive definite.

use hlo_ir::{ArrayData, ArrayShape, DType, Literal, LiteralData, Module, Op};

fn parse(text: &str) -> Module {
    hlo_parse::parse_module(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn expand(module: &Module) -> Module {
    let mut expanded = module.clone();
    let mut opts = hlo_passes::PipelineOptions { verify: true, ..Default::default() };
    let report =
        hlo_passes::run_passes(&mut expanded, &["linalg-expander"], &mut opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.passes[0].changed, "nothing expanded");
    for comp in &expanded.comps {
        for instr in &comp.instrs {
            assert!(
                !matches!(instr.op, Op::CustomCall(_) | Op::Cholesky { .. } | Op::TriangularSolve { .. }),
                "{} remains:\n{}",
                instr.name,
                hlo_ir::print::print_module(&expanded)
            );
        }
    }
    expanded
}

fn leaves(lit: &Literal, out: &mut Vec<Literal>) {
    match &lit.data {
        LiteralData::Array(_) => out.push(lit.clone()),
        LiteralData::Tuple(elems) => elems.iter().for_each(|e| leaves(e, out)),
        LiteralData::Token | LiteralData::Elided => {}
    }
}

fn floats(data: &ArrayData) -> Option<Vec<f64>> {
    match data {
        ArrayData::F32(v) => Some(v.iter().map(|&x| x as f64).collect()),
        ArrayData::F64(v) => Some(v.clone()),
        // Complex: the parts, interleaved (the relative L2 error of the complex values).
        ArrayData::C64(v) => Some(v.iter().flat_map(|z| [z[0] as f64, z[1] as f64]).collect()),
        ArrayData::C128(v) => Some(v.iter().flat_map(|&z| z).collect()),
        _ => None,
    }
}

fn eval(module: &Module, args: &[Literal]) -> Vec<Literal> {
    let res = hlo_interp::evaluate(module, args).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    leaves(&res, &mut out);
    out
}

/// Evaluates `text` as written (the interpreter's LAPACK) and expanded; returns the results.
fn check(text: &str, args: &[Literal]) -> Vec<Literal> {
    let module = parse(text);
    let want = eval(&module, args);
    let got = eval(&expand(&module), args);
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.shape, w.shape, "output {k}");
        let (gd, wd) = (g.array_data().unwrap(), w.array_data().unwrap());
        match (floats(gd), floats(wd)) {
            (Some(g), Some(w)) => {
                let (mut diff, mut norm) = (0.0, 0.0);
                for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
                    if !a.is_finite() || !b.is_finite() {
                        assert!(a.is_nan() && b.is_nan() || a == b, "output {k}[{i}]: got {a}, want {b}\n{text}");
                        continue;
                    }
                    diff += (a - b) * (a - b);
                    norm += b * b;
                }
                let err = (diff / norm.max(1e-300)).sqrt();
                assert!(err <= 1e-5, "output {k}: relative error {err}\ngot  {g:?}\nwant {w:?}\n{text}");
            }
            _ => assert_eq!(gd, wd, "output {k}\n{text}"),
        }
    }
    want
}

fn f32s(dims: &[i64], v: Vec<f32>) -> Literal {
    Literal::array(ArrayShape::new(DType::F32, dims.to_vec()), ArrayData::F32(v))
}

fn f64s(dims: &[i64], v: Vec<f64>) -> Literal {
    Literal::array(ArrayShape::new(DType::F64, dims.to_vec()), ArrayData::F64(v))
}

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mix = seed.wrapping_mul(0x9E37_79B9);
    (0..n).map(|k| ((((k as u32) ^ mix).wrapping_mul(2654435761) >> 9) % 2000) as f32 / 1000.0 - 1.0).collect()
}

/// `batch` symmetric positive definite `n x n` matrices: `M M^T + n I`.
fn spd(batch: usize, n: usize, seed: u32) -> Vec<f32> {
    let m = values(batch * n * n, seed);
    let mut out = vec![0.0; batch * n * n];
    for b in 0..batch {
        for i in 0..n {
            for j in 0..n {
                let mut s = if i == j { n as f32 } else { 0.0 };
                for k in 0..n {
                    s += m[b * n * n + i * n + k] * m[b * n * n + j * n + k];
                }
                out[b * n * n + i * n + j] = s;
            }
        }
    }
    out
}

fn ints(lit: &Literal) -> Vec<i32> {
    match lit.array_data() {
        Some(ArrayData::S32(v)) => v.clone(),
        other => panic!("not s32: {other:?}"),
    }
}

const TRSM: &str = "custom_call_target=\"lapack_strsm_ffi\", api_version=API_VERSION_TYPED_FFI";

#[test]
fn potrf_lower_and_upper_batched() {
    for uplo in [76, 85] {
        let text = format!(
            "HloModule m\nENTRY e {{\n  a = f32[2,3,5,5]{{3,2,1,0}} parameter(0)\n  ROOT c = (f32[2,3,5,5]{{2,3,1,0}}, s32[2,3]{{1,0}}) custom-call(a), custom_call_target=\"lapack_spotrf_ffi\", operand_layout_constraints={{f32[2,3,5,5]{{2,3,1,0}}}}, output_to_operand_aliasing={{{{0}}: (0, {{}})}}, api_version=API_VERSION_TYPED_FFI, frontend_attributes={{num_batch_dims=\"2\"}}, backend_config={{uplo = {uplo} : ui8}}\n}}\n"
        );
        let want = check(&text, &[f32s(&[2, 3, 5, 5], spd(6, 5, uplo))]);
        assert_eq!(ints(&want[1]), vec![0; 6]);
    }
}

#[test]
fn potrf_stops_at_a_matrix_that_is_not_positive_definite() {
    let text = "HloModule m\nENTRY e {\n  a = f64[2,4,4] parameter(0)\n  ROOT c = (f64[2,4,4], s32[2]) custom-call(a), custom_call_target=\"lapack_dpotrf_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={uplo = 76 : ui8}\n}\n";
    let a = vec![
        4.0, 2.0, 0.0, 0.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, -1.0, // fails at column 2
        4.0, 9.0, 9.0, 9.0, 1.0, 5.0, 9.0, 9.0, 0.0, 1.0, 6.0, 9.0, 0.0, 0.0, 1.0, -7.0, // fails at column 4
    ];
    let want = check(text, &[f64s(&[2, 4, 4], a)]);
    assert_eq!(ints(&want[1]), vec![2, 4]);
}

#[test]
fn cholesky_opcode_zeroes_the_other_triangle_and_is_nan_when_not_positive_definite() {
    for lower in [true, false] {
        let text = format!(
            "HloModule m\nENTRY e {{\n  a = f32[3,4,4] parameter(0)\n  ROOT c = f32[3,4,4] cholesky(a), lower={lower}\n}}\n"
        );
        let mut a = spd(3, 4, 7);
        a[2 * 16 + 15] = -50.0;
        let want = check(&text, &[f32s(&[3, 4, 4], a)]);
        let v = floats(want[0].array_data().unwrap()).unwrap();
        assert!(v[32..].iter().all(|x| x.is_nan()));
        assert_eq!(if lower { v[1] } else { v[4] }, 0.0);
    }
}

#[test]
fn trsm_every_side_triangle_transpose_and_diagonal() {
    for side in [76, 82] {
        for uplo in [76, 85] {
            for trans in [78, 84, 67] {
                for diag in [78, 85] {
                    let (b_dims, b_n) = if side == 76 { ("2,4,3", 24) } else { ("2,3,4", 24) };
                    let text = format!(
                        "HloModule m\nENTRY e {{\n  a = f32[2,4,4] parameter(0)\n  b = f32[{b_dims}] parameter(1)\n  ROOT x = f32[{b_dims}]{{1,2,0}} custom-call(a, b), {TRSM}, backend_config={{diag = {diag} : ui8, side = {side} : ui8, trans_x = {trans} : ui8, uplo = {uplo} : ui8}}\n}}\n"
                    );
                    // A well-conditioned triangle; the other triangle is garbage (never read).
                    let mut a = values(32, 3);
                    for k in 0..2 {
                        for i in 0..4 {
                            a[k * 16 + i * 5] += 3.0;
                        }
                        a[k * 16 + 3] = f32::NAN;
                        a[k * 16 + 12] = f32::INFINITY;
                    }
                    let b = values(b_n, 4);
                    check(
                        &text,
                        &[
                            f32s(&[2, 4, 4], a),
                            f32s(&[2, if side == 76 { 4 } else { 3 }, if side == 76 { 3 } else { 4 }], b),
                        ],
                    );
                }
            }
        }
    }
}

#[test]
fn triangular_solve_opcode() {
    for (left, lower, unit, t) in [
        (true, true, false, "NO_TRANSPOSE"),
        (true, false, true, "TRANSPOSE"),
        (false, true, false, "ADJOINT"),
        (false, false, false, "NO_TRANSPOSE"),
    ] {
        let text = format!(
            "HloModule m\nENTRY e {{\n  a = f64[5,5] parameter(0)\n  b = f64[5,5] parameter(1)\n  ROOT x = f64[5,5] triangular-solve(a, b), left_side={left}, lower={lower}, unit_diagonal={unit}, transpose_a={t}\n}}\n"
        );
        let mut a: Vec<f64> = values(25, 5).iter().map(|&x| x as f64).collect();
        for i in 0..5 {
            a[i * 6] += 4.0;
        }
        let b: Vec<f64> = values(25, 6).iter().map(|&x| x as f64).collect();
        check(&text, &[f64s(&[5, 5], a), f64s(&[5, 5], b)]);
    }
}

fn getrf_text(dims: &str, k_dims: &str, info_dims: &str) -> String {
    format!(
        "HloModule m\nENTRY e {{\n  a = f32[{dims}] parameter(0)\n  ROOT lu = (f32[{dims}], s32[{k_dims}], s32[{info_dims}]) custom-call(a), custom_call_target=\"lapack_sgetrf_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{}}\n}}\n"
    )
}

#[test]
fn getrf_batched_square_and_rectangular() {
    check(&getrf_text("3,6,6", "3,6", "3"), &[f32s(&[3, 6, 6], values(108, 8))]);
    check(&getrf_text("7,4", "4", ""), &[f32s(&[7, 4], values(28, 9))]);
    check(&getrf_text("3,5", "3", ""), &[f32s(&[3, 5], values(15, 10))]);
}

#[test]
fn getrf_ties_pick_the_first_row_and_a_singular_matrix_reports_info() {
    // Column 0 has |-2| = |2| twice: the first (row 1) is the pivot.
    let tie = vec![1.0, 2.0, 3.0, -2.0, 1.0, 1.0, 2.0, 5.0, 1.0];
    // Rank 1: the second pivot is zero.
    let singular = vec![1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 3.0, 6.0, 9.0];
    let want = check(&getrf_text("2,3,3", "2,3", "2"), &[f32s(&[2, 3, 3], [tie, singular].concat())]);
    let ipiv = ints(&want[1]);
    assert_eq!(ipiv[0], 2);
    assert_eq!(ints(&want[2]), vec![0, 2]);
}

#[test]
fn geqrf_and_orgqr() {
    for (m, n) in [(6i64, 4i64), (4, 4), (3, 5)] {
        let k = m.min(n);
        let text = format!(
            "HloModule m\nENTRY e {{\n  a = f32[2,{m},{n}] parameter(0)\n  qr = (f32[2,{m},{n}]{{1,2,0}}, f32[2,{k}]) custom-call(a), custom_call_target=\"lapack_sgeqrf_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{}}\n  r = f32[2,{m},{n}] get-tuple-element(qr), index=0\n  tau = f32[2,{k}] get-tuple-element(qr), index=1\n  rk = f32[2,{m},{k}] slice(r), slice={{[0:2], [0:{m}], [0:{k}]}}\n  q = f32[2,{m},{k}] custom-call(rk, tau), custom_call_target=\"lapack_sorgqr_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{}}\n  ROOT t = (f32[2,{m},{n}], f32[2,{k}], f32[2,{m},{k}]) tuple(r, tau, q)\n}}\n"
        );
        let mut a = values((2 * m * n) as usize, 11);
        // A column already zero below the diagonal: tau = 0.
        for r in 1..m as usize {
            a[r * n as usize] = 0.0;
        }
        check(&text, &[f32s(&[2, m, n], a)]);
    }
}

/// `geev` of `[b, n, n]` (`ty` f64 or c128) as invariants of the order of the eigenvalues and
/// the phases of the vectors: sorted real and imaginary parts, `1 + sum_k |A v_k - w_k v_k|^2`,
/// `1 + sum_k |u_k^H A - w_k u_k^H|^2`, the vectors' squared norms and `info`.
fn geev_text(ty: &str, b: i64, n: i64) -> String {
    let complex = ty == "c128";
    let (target, eig_ty, parts, first_vec) = if complex {
        ("lapack_zgeev_ffi", format!("(c128[{b},{n}], c128[{b},{n},{n}]{{1,2,0}}, c128[{b},{n},{n}]{{1,2,0}}, s32[{b}])"),
         format!("  w = c128[{b},{n}] get-tuple-element(eig), index=0\n  wr = f64[{b},{n}] real(w)\n  wi = f64[{b},{n}] imag(w)\n"), 1)
    } else {
        ("lapack_dgeev_ffi", format!("(f64[{b},{n}], f64[{b},{n}], c128[{b},{n},{n}]{{1,2,0}}, c128[{b},{n},{n}]{{1,2,0}}, s32[{b}])"),
         format!("  wr = f64[{b},{n}] get-tuple-element(eig), index=0\n  wi = f64[{b},{n}] get-tuple-element(eig), index=1\n  w = c128[{b},{n}] complex(wr, wi)\n"), 2)
    };
    let (m, v) = (format!("c128[{b},{n},{n}]"), format!("f64[{b},{n}]"));
    let bdot = "lhs_batch_dims={0}, rhs_batch_dims={0}";
    format!(
        "HloModule m\nlt {{\n  x = f64[] parameter(0)\n  y = f64[] parameter(1)\n  ROOT c = pred[] compare(x, y), direction=LT\n}}\nadd {{\n  x = f64[] parameter(0)\n  y = f64[] parameter(1)\n  ROOT s = f64[] add(x, y)\n}}\nENTRY e {{\n  a = {ty}[{b},{n},{n}] parameter(0)\n  eig = {eig_ty} custom-call(a), custom_call_target=\"{target}\", api_version=API_VERSION_TYPED_FFI, backend_config={{compute_left = 86 : ui8, compute_right = 86 : ui8}}\n{parts}  vl = {m} get-tuple-element(eig), index={first_vec}\n  vr = {m} get-tuple-element(eig), index={}\n  info = s32[{b}] get-tuple-element(eig), index={}\n  sr = {v} sort(wr), dimensions={{1}}, to_apply=lt\n  si = {v} sort(wi), dimensions={{1}}, to_apply=lt\n  ac = {m} convert(a)\n  av = {m} dot(ac, vr), {bdot}, lhs_contracting_dims={{2}}, rhs_contracting_dims={{1}}\n  wb = {m} broadcast(w), dimensions={{0,2}}\n  vw = {m} multiply(vr, wb)\n  dr = {m} subtract(av, vw)\n  vlr = f64[{b},{n},{n}] real(vl)\n  vli = f64[{b},{n},{n}] imag(vl)\n  nvli = f64[{b},{n},{n}] negate(vli)\n  vlc = {m} complex(vlr, nvli)\n  ua = {m} dot(vlc, ac), {bdot}, lhs_contracting_dims={{1}}, rhs_contracting_dims={{1}}\n  vlct = {m} transpose(vlc), dimensions={{0,2,1}}\n  wb2 = {m} broadcast(w), dimensions={{0,1}}\n  uw = {m} multiply(vlct, wb2)\n  dl = {m} subtract(ua, uw)\n  zero = f64[] constant(0)\n  one = f64[] constant(1)\n  ones = f64[{b}] broadcast(one), dimensions={{}}\n  adr = f64[{b},{n},{n}] abs(dr)\n  sdr = f64[{b},{n},{n}] multiply(adr, adr)\n  rr = f64[{b}] reduce(sdr, zero), dimensions={{1,2}}, to_apply=add\n  rr1 = f64[{b}] add(rr, ones)\n  adl = f64[{b},{n},{n}] abs(dl)\n  sdl = f64[{b},{n},{n}] multiply(adl, adl)\n  rl = f64[{b}] reduce(sdl, zero), dimensions={{1,2}}, to_apply=add\n  rl1 = f64[{b}] add(rl, ones)\n  avr = f64[{b},{n},{n}] abs(vr)\n  svr = f64[{b},{n},{n}] multiply(avr, avr)\n  nr = {v} reduce(svr, zero), dimensions={{1}}, to_apply=add\n  avl = f64[{b},{n},{n}] abs(vl)\n  svl = f64[{b},{n},{n}] multiply(avl, avl)\n  nl = {v} reduce(svl, zero), dimensions={{1}}, to_apply=add\n  ROOT t = ({v}, {v}, f64[{b}], f64[{b}], {v}, {v}, s32[{b}]) tuple(sr, si, rr1, rl1, nr, nl, info)\n}}\n",
        first_vec + 1,
        first_vec + 2
    )
}

/// Checks the residuals are at rounding level, the norms 1 and `info` 0, where `ok[b]`.
fn check_geev(ty: &str, b: usize, n: usize, a: Literal, ok: &[bool]) {
    let got = check(&geev_text(ty, b as i64, n as i64), &[a]);
    let f = |k: usize| floats(got[k].array_data().unwrap()).unwrap();
    let info = ints(&got[6]);
    for i in 0..b {
        if !ok[i] {
            assert_eq!(info[i], 1);
            assert!(f(0)[i * n].is_nan() && f(2)[i].is_nan());
            continue;
        }
        assert_eq!(info[i], 0);
        assert!(f(2)[i] - 1.0 < 1e-20 && f(3)[i] - 1.0 < 1e-20, "residuals {} {}", f(2)[i], f(3)[i]);
        for k in 0..n {
            assert!((f(4)[i * n + k] - 1.0).abs() < 1e-12 && (f(5)[i * n + k] - 1.0).abs() < 1e-12);
        }
    }
}

#[test]
fn geev_real_and_complex_across_sizes() {
    for (b, n) in [(1usize, 1usize), (3, 2), (2, 5), (1, 16)] {
        let a: Vec<f64> = values(b * n * n, 90 + n as u32).iter().map(|&x| x as f64).collect();
        check_geev("f64", b, n, f64s(&[b as i64, n as i64, n as i64], a), &vec![true; b]);
        check_geev(
            "c128",
            b,
            n,
            complex("c128", &[b as i64, n as i64, n as i64], &parts(b * n * n, 95 + n as u32)),
            &vec![true; b],
        );
    }
}

#[test]
fn geev_edge_cases() {
    // Upper triangular, zero, a rotation (+-i) beside a rotation by acos(0.6), repeated
    // eigenvalues (2, 2, -1, -1: lower triangular, diagonalisable), a permutation cycle (the
    // fourth roots of unity, where QR without exceptional shifts stalls), a NaN.
    let n = 4;
    let mut a = vec![0.0f64; 6 * 16];
    let m = values(16, 97);
    for i in 0..n {
        for j in i..n {
            a[i * n + j] = m[i * n + j] as f64;
        }
    }
    let (c, s) = (0.6, 0.8);
    for (i, j, v) in [(0, 1, -1.0), (1, 0, 1.0), (2, 2, c), (2, 3, -s), (3, 2, s), (3, 3, c)] {
        a[32 + i * n + j] = v;
    }
    for (i, j, v) in [(0, 0, 2.0), (1, 1, 2.0), (2, 2, -1.0), (3, 3, -1.0), (2, 0, 1.0), (3, 1, 1.0)] {
        a[48 + i * n + j] = v;
    }
    for i in 0..n {
        a[64 + ((i + 1) % n) * n + i] = 1.0;
    }
    a[80..96].copy_from_slice(&m.iter().map(|&x| x as f64).collect::<Vec<_>>());
    a[80 + 5] = f64::NAN;
    let ok = [true, true, true, true, true, false];
    check_geev("f64", 6, n, f64s(&[6, 4, 4], a.clone()), &ok);
    let parts: Vec<f64> = a.iter().flat_map(|&x| [x, 0.0]).collect();
    check_geev("c128", 6, n, complex("c128", &[6, 4, 4], &parts), &ok);
}

// ---------------------------------------------------------------------------------------------
// syevd and gesdd: eigen- and singular vectors are unique only up to sign (and rotations within
// equal values), so the expansion's values are compared with the interpreter's and its vectors
// checked by what they must satisfy: V diag(w) V^T = A, V^T V = I, U diag(s) V^T = A,
// U^T U = I, V^T V = I.

/// `x` as f64, and its dims.
fn mat(lit: &Literal) -> (Vec<i64>, Vec<f64>) {
    (lit.shape.as_array().unwrap().dims.clone(), floats(lit.array_data().unwrap()).unwrap())
}

/// Relative L2 distance over the finite elements (the others must be NaN in both).
fn rel(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let (mut diff, mut norm) = (0.0, 0.0);
    for (a, b) in got.iter().zip(want) {
        if !b.is_finite() {
            assert!(a.is_nan() && b.is_nan(), "got {a}, want {b}");
            continue;
        }
        diff += (a - b) * (a - b);
        norm += b * b;
    }
    (diff / f64::max(norm, 1e-300)).sqrt()
}

/// `sum_j x[i, j] d[j] y[k, j]` (`x diag(d) y^T`) of row-major `[r, c]` and `[q, c]` matrices.
fn x_d_yt(x: &[f64], d: &[f64], y: &[f64], r: usize, c: usize, q: usize) -> Vec<f64> {
    let mut out = vec![0.0; r * q];
    for i in 0..r {
        for k in 0..q {
            out[i * q + k] = (0..c).map(|j| x[i * c + j] * d[j] * y[k * c + j]).sum();
        }
    }
    out
}

fn transpose(x: &[f64], r: usize, c: usize) -> Vec<f64> {
    (0..r * c).map(|k| x[(k % r) * c + k / r]).collect()
}

fn eye(n: usize) -> Vec<f64> {
    (0..n * n).map(|k| if k / n == k % n { 1.0 } else { 0.0 }).collect()
}

fn syevd_text(ty: &str, dims: &str, n: i64, batch_dims: &str, uplo: u8) -> String {
    let t = if ty == "f32" { "s" } else { "d" };
    let nb = batch_dims.split(',').filter(|s| !s.is_empty()).count();
    let vdims = if batch_dims.is_empty() { format!("{n}") } else { format!("{batch_dims},{n}") };
    format!(
        "HloModule m\nENTRY e {{\n  a = {ty}[{dims}] parameter(0)\n  ROOT c = ({ty}[{dims}], {ty}[{vdims}], s32[{batch_dims}]) custom-call(a), custom_call_target=\"lapack_{t}syevd_ffi\", output_to_operand_aliasing={{{{0}}: (0, {{}})}}, api_version=API_VERSION_TYPED_FFI, frontend_attributes={{num_batch_dims=\"{nb}\"}}, backend_config={{mode = 86 : ui8, uplo = {uplo} : ui8}}\n}}\n"
    )
}

/// Checks `syevd` expanded against the interpreter; `a` holds `batch` `n x n` matrices.
fn check_syevd(text: &str, a: &Literal, n: usize, lower: bool, tol: f64) -> Vec<Literal> {
    let module = parse(text);
    let want = eval(&module, std::slice::from_ref(a));
    let got = eval(&expand(&module), std::slice::from_ref(a));
    assert_eq!(ints(&got[2]), ints(&want[2]), "info\n{text}");
    let (_, w_want) = mat(&want[1]);
    let (_, w_got) = mat(&got[1]);
    let (_, v) = mat(&got[0]);
    let (_, input) = mat(a);
    let batch = w_got.len() / n.max(1);
    let err = rel(&w_got, &w_want);
    assert!(err <= tol, "eigenvalues: error {err}\ngot  {w_got:?}\nwant {w_want:?}\n{text}");
    for b in 0..batch {
        if ints(&want[2])[b] != 0 {
            assert!(w_got[b * n..(b + 1) * n].iter().all(|x| x.is_nan()), "NaN expected\n{text}");
            continue;
        }
        let w = &w_got[b * n..(b + 1) * n];
        assert!(w.windows(2).all(|p| p[0] <= p[1]), "not ascending: {w:?}");
        let v = &v[b * n * n..(b + 1) * n * n];
        let m = &input[b * n * n..(b + 1) * n * n];
        let sym: Vec<f64> =
            (0..n * n).map(|k| if ((k / n) >= (k % n)) == lower { m[k] } else { m[(k % n) * n + k / n] }).collect();
        let recon = x_d_yt(v, w, v, n, n, n);
        let err = rel(&recon, &sym);
        assert!(err <= tol, "V diag(w) V^T: error {err}\n{text}");
        let vt = transpose(v, n, n);
        let gram = x_d_yt(&vt, &vec![1.0; n], &vt, n, n, n);
        let err = rel(&gram, &eye(n));
        assert!(err <= tol, "V^T V: error {err}\n{text}");
    }
    got
}

#[test]
fn syevd_batched_lower_and_upper_odd_and_even() {
    for (n, uplo) in [(8i64, 76u8), (5, 85), (2, 76), (1, 76)] {
        let text = syevd_text("f32", &format!("3,{n},{n}"), n, "3", uplo);
        let a = f32s(&[3, n, n], values((3 * n * n) as usize, n as u32));
        check_syevd(&text, &a, n as usize, uplo == 76, 2e-6);
    }
}

#[test]
fn syevd_f64_repeated_eigenvalues_and_nan() {
    // Batch 0: 2 I + the rank-one ones matrix (eigenvalues 2, 2, 2, 2, 6); 1: diagonal already;
    // 2: a NaN in the lower triangle (info 1, all NaN); 3: zero but for a NaN in the upper
    // triangle, which is never read.
    let mut a = vec![0.0; 4 * 25];
    for i in 0..5 {
        for j in 0..5 {
            a[i * 5 + j] = if i == j { 3.0 } else { 1.0 };
        }
        a[25 + i * 5 + i] = 5.0 - i as f64;
    }
    a[50 + 11] = f64::NAN;
    a[75 + 1] = f64::NAN;
    let got = check_syevd(&syevd_text("f64", "4,5,5", 5, "4", 76), &f64s(&[4, 5, 5], a), 5, true, 1e-13);
    assert_eq!(ints(&got[2]), vec![0, 0, 1, 0]);
    let (_, w) = mat(&got[1]);
    assert_eq!(&w[5..10], &[1.0, 2.0, 3.0, 4.0, 5.0]);
}

#[test]
fn syevd_32x32_unbatched() {
    let n = 32;
    let v = values(n * n, 7);
    let sym: Vec<f32> = (0..n * n).map(|k| (v[k] + v[(k % n) * n + k / n]) / 2.0).collect();
    check_syevd(&syevd_text("f32", "32,32", 32, "", 76), &f32s(&[32, 32], sym), n, true, 1e-5);
}

fn gesdd_text(ty: &str, batch: &[i64], m: i64, n: i64, mode: char) -> String {
    let t = if ty == "f32" { "s" } else { "d" };
    let k = m.min(n);
    let (ur, uc, vr, vc) = match mode {
        'A' | 'N' => (m, m, n, n),
        _ => (m, k, k, n),
    };
    let pre: String = batch.iter().map(|b| format!("{b},")).collect();
    let bd = batch.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",");
    format!(
        "HloModule m\nENTRY e {{\n  a = {ty}[{pre}{m},{n}] parameter(0)\n  ROOT c = ({ty}[{pre}{m},{n}], {ty}[{pre}{k}], {ty}[{pre}{ur},{uc}], {ty}[{pre}{vr},{vc}], s32[{bd}]) custom-call(a), custom_call_target=\"lapack_{t}gesdd_ffi\", output_to_operand_aliasing={{{{0}}: (0, {{}})}}, api_version=API_VERSION_TYPED_FFI, frontend_attributes={{num_batch_dims=\"{}\"}}, backend_config={{mode = {} : ui8}}\n}}\n",
        batch.len(),
        mode as u8
    )
}

/// Checks `gesdd` expanded against the interpreter.
fn check_gesdd(text: &str, a: &Literal, m: usize, n: usize, mode: char, tol: f64) -> Vec<Literal> {
    let module = parse(text);
    let want = eval(&module, std::slice::from_ref(a));
    let got = eval(&expand(&module), std::slice::from_ref(a));
    assert_eq!(ints(&got[4]), ints(&want[4]), "info\n{text}");
    let k = m.min(n);
    let (_, s_want) = mat(&want[1]);
    let (_, s_got) = mat(&got[1]);
    let err = rel(&s_got, &s_want);
    assert!(err <= tol, "singular values: error {err}\ngot  {s_got:?}\nwant {s_want:?}\n{text}");
    let (_, input) = mat(a);
    let (_, out0) = mat(&got[0]);
    assert_eq!(out0.len(), input.len());
    let (ud, u) = mat(&got[2]);
    let (vd, vt) = mat(&got[3]);
    let (ur, uc) = (ud[ud.len() - 2] as usize, ud[ud.len() - 1] as usize);
    let (vr, vc) = (vd[vd.len() - 2] as usize, vd[vd.len() - 1] as usize);
    let batch = s_got.len() / k;
    for b in 0..batch {
        if ints(&want[4])[b] != 0 {
            assert!(s_got[b * k..(b + 1) * k].iter().all(|x| x.is_nan()), "NaN expected\n{text}");
            continue;
        }
        let s = &s_got[b * k..(b + 1) * k];
        assert!(s.windows(2).all(|p| p[0] >= p[1]), "not descending: {s:?}");
        let u = &u[b * ur * uc..(b + 1) * ur * uc];
        let vt = &vt[b * vr * vc..(b + 1) * vr * vc];
        if mode == 'N' {
            assert!(u.iter().chain(vt).all(|&x| x == 0.0));
            continue;
        }
        // U[:, :k] diag(s) Vt[:k, :].
        let uk: Vec<f64> = (0..m * k).map(|x| u[(x / k) * uc + x % k]).collect();
        let vk = transpose(&vt[..k * n], k, n);
        let recon = x_d_yt(&uk, s, &vk, m, k, n);
        let err = rel(&recon, &input[b * m * n..(b + 1) * m * n]);
        assert!(err <= tol, "U S V^T: error {err}\n{text}");
        let ut = transpose(u, ur, uc);
        let err = rel(&x_d_yt(&ut, &vec![1.0; ur], &ut, uc, ur, uc), &eye(uc));
        assert!(err <= tol, "U^T U: error {err}\n{text}");
        let err = rel(&x_d_yt(vt, &vec![1.0; vc], vt, vr, vc, vr), &eye(vr));
        assert!(err <= tol, "V^T V: error {err}\n{text}");
    }
    got
}

#[test]
fn gesdd_tall_wide_square_full_thin_and_none() {
    for (m, n, mode) in
        [(7i64, 4i64, 'A'), (7, 4, 'S'), (4, 9, 'A'), (5, 8, 'S'), (6, 6, 'A'), (3, 5, 'N'), (1, 3, 'A')]
    {
        let text = gesdd_text("f32", &[2], m, n, mode);
        let a = f32s(&[2, m, n], values((2 * m * n) as usize, (m * 10 + n) as u32));
        check_gesdd(&text, &a, m as usize, n as usize, mode, 3e-6);
    }
}

#[test]
fn gesdd_f64_rank_deficient_zero_and_nan() {
    // Batch 0: rank 2 (u completed where s = 0); 1: zero; 2: a NaN.
    let (m, n) = (6usize, 4usize);
    let mut a = vec![0.0; 3 * m * n];
    for i in 0..m {
        for j in 0..n {
            a[i * n + j] = (i as f64 + 1.0) * (j as f64 - 1.5) + (i % 2) as f64 * (j * j) as f64;
        }
    }
    a[2 * m * n + 5] = f64::NAN;
    for mode in ['A', 'S'] {
        let text = gesdd_text("f64", &[3], m as i64, n as i64, mode);
        let got = check_gesdd(&text, &f64s(&[3, m as i64, n as i64], a.clone()), m, n, mode, 1e-12);
        assert_eq!(ints(&got[4]), vec![0, 0, 1]);
    }
}

// ---------------------------------------------------------------------------------------------
// Complex routines (`c`, `z`): the same checks at sizes that straddle the loops' edges (1, 2, 3,
// 8, 17), in c64 and c128, with complex values everywhere (imaginary parts on the diagonal too,
// which Hermitian routines must not read).

/// A complex literal of type `ty` (`c64` or `c128`) from interleaved parts.
fn complex(ty: &str, dims: &[i64], parts: &[f64]) -> Literal {
    let pairs = parts.chunks_exact(2);
    if ty == "c64" {
        let v = pairs.map(|p| [p[0] as f32, p[1] as f32]).collect();
        Literal::array(ArrayShape::new(DType::C64, dims.to_vec()), ArrayData::C64(v))
    } else {
        let v = pairs.map(|p| [p[0], p[1]]).collect();
        Literal::array(ArrayShape::new(DType::C128, dims.to_vec()), ArrayData::C128(v))
    }
}

/// `2 * count` parts in [-1, 1).
fn parts(count: usize, seed: u32) -> Vec<f64> {
    values(2 * count, seed).iter().map(|&x| x as f64).collect()
}

/// `batch` Hermitian positive definite `n x n` matrices `M M^H + n I` as interleaved parts, with
/// a stray imaginary part on the diagonal (which `potrf` and `heevd` ignore).
fn hpd(batch: usize, n: usize, seed: u32) -> Vec<f64> {
    let m = parts(batch * n * n, seed);
    let mut out = vec![0.0; 2 * batch * n * n];
    for b in 0..batch {
        let at = |i: usize, j: usize| 2 * (b * n * n + i * n + j);
        for i in 0..n {
            for j in 0..n {
                let (mut re, mut im) = (if i == j { n as f64 } else { 0.0 }, 0.0);
                for k in 0..n {
                    let (xr, xi, yr, yi) = (m[at(i, k)], m[at(i, k) + 1], m[at(j, k)], m[at(j, k) + 1]);
                    re += xr * yr + xi * yi;
                    im += xi * yr - xr * yi;
                }
                out[at(i, j)] = re;
                out[at(i, j) + 1] = if i == j { 0.25 } else { im };
            }
        }
    }
    out
}

fn prefix(ty: &str) -> char {
    if ty == "c64" {
        'c'
    } else {
        'z'
    }
}

#[test]
fn complex_potrf_getrf_and_every_trsm() {
    for ty in ["c64", "c128"] {
        for n in [1i64, 2, 3, 8, 17] {
            let p = prefix(ty);
            let mut body = format!(
                "  a = {ty}[2,{n},{n}] parameter(0)\n  g = {ty}[2,{n},{n}] parameter(1)\n  bl = {ty}[2,{n},3] parameter(2)\n  br = {ty}[2,3,{n}] parameter(3)\n"
            );
            let mut outs = Vec::new();
            for uplo in [76, 85] {
                body += &format!("  ch{uplo} = ({ty}[2,{n},{n}], s32[2]) custom-call(a), custom_call_target=\"lapack_{p}potrf_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{uplo = {uplo} : ui8}}\n  f{uplo} = {ty}[2,{n},{n}] get-tuple-element(ch{uplo}), index=0\n  i{uplo} = s32[2] get-tuple-element(ch{uplo}), index=1\n");
                outs.push((format!("f{uplo}"), format!("{ty}[2,{n},{n}]")));
                outs.push((format!("i{uplo}"), "s32[2]".to_string()));
                for side in [76, 82] {
                    for trans in [78, 84, 67] {
                        for diag in [78, 85] {
                            let (b, bd) =
                                if side == 76 { ("bl", format!("2,{n},3")) } else { ("br", format!("2,3,{n}")) };
                            let x = format!("x{uplo}_{side}_{trans}_{diag}");
                            body += &format!("  {x} = {ty}[{bd}] custom-call(f{uplo}, {b}), custom_call_target=\"lapack_{p}trsm_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{diag = {diag} : ui8, side = {side} : ui8, trans_x = {trans} : ui8, uplo = {uplo} : ui8}}\n");
                            outs.push((x, format!("{ty}[{bd}]")));
                        }
                    }
                }
            }
            body += &format!("  lu = ({ty}[2,{n},{n}], s32[2,{n}], s32[2]) custom-call(g), custom_call_target=\"lapack_{p}getrf_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{}}\n");
            for (k, t) in [format!("{ty}[2,{n},{n}]"), format!("s32[2,{n}]"), "s32[2]".to_string()].iter().enumerate() {
                body += &format!("  lu{k} = {t} get-tuple-element(lu), index={k}\n");
                outs.push((format!("lu{k}"), t.clone()));
            }
            let (names, types): (Vec<_>, Vec<_>) = outs.into_iter().unzip();
            let text = format!(
                "HloModule m\nENTRY e {{\n{body}  ROOT t = ({}) tuple({})\n}}\n",
                types.join(", "),
                names.join(", ")
            );
            let nn = (n * n) as usize;
            // The second general matrix is singular: its last column is zero, an exact zero pivot.
            let mut g = parts(2 * nn, 31);
            let nu = n as usize;
            for i in 0..nu {
                let last = 2 * (nn + i * nu + nu - 1);
                g[last] = 0.0;
                g[last + 1] = 0.0;
            }
            let want = check(
                &text,
                &[
                    complex(ty, &[2, n, n], &hpd(2, nu, 30 + n as u32)),
                    complex(ty, &[2, n, n], &g),
                    complex(ty, &[2, n, 3], &parts(6 * nu, 32)),
                    complex(ty, &[2, 3, n], &parts(6 * nu, 33)),
                ],
            );
            assert_eq!(ints(&want[1]), vec![0, 0], "{ty} {n}: positive definite");
            let info = ints(want.last().unwrap());
            assert_eq!(info[0], 0, "{ty} {n}");
            assert_eq!(info[1], n as i32, "{ty} {n}: singular");
        }
    }
}

#[test]
fn complex_potrf_stops_at_a_matrix_that_is_not_positive_definite() {
    let text = "HloModule m\nENTRY e {\n  a = c64[2,3,3] parameter(0)\n  ROOT c = (c64[2,3,3], s32[2]) custom-call(a), custom_call_target=\"lapack_cpotrf_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={uplo = 85 : ui8}\n}\n";
    let mut a = hpd(2, 3, 40);
    // Batch 1: [[4, 2i], [-2i, 1]] leading block, singular: the second pivot is 0.
    let block = [4.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, -2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0];
    a[18..].copy_from_slice(&block);
    let want = check(text, &[complex("c64", &[2, 3, 3], &a)]);
    assert_eq!(ints(&want[1]), vec![0, 2]);
}

#[test]
fn complex_cholesky_and_triangular_solve_opcodes() {
    for ty in ["c64", "c128"] {
        let text = format!(
            "HloModule m\nENTRY e {{\n  a = {ty}[3,5,5] parameter(0)\n  b = {ty}[3,5,2] parameter(1)\n  l = {ty}[3,5,5] cholesky(a), lower=true\n  u = {ty}[3,5,5] cholesky(a), lower=false\n  x = {ty}[3,5,2] triangular-solve(l, b), left_side=true, lower=true, unit_diagonal=false, transpose_a=ADJOINT\n  y = {ty}[3,5,2] triangular-solve(u, b), left_side=true, lower=false, unit_diagonal=false, transpose_a=TRANSPOSE\n  bt = {ty}[3,2,5] transpose(b), dimensions={{0,2,1}}\n  z = {ty}[3,2,5] triangular-solve(u, bt), left_side=false, lower=false, unit_diagonal=false, transpose_a=ADJOINT\n  ROOT t = ({ty}[3,5,5], {ty}[3,5,5], {ty}[3,5,2], {ty}[3,5,2], {ty}[3,2,5]) tuple(l, u, x, y, z)\n}}\n"
        );
        check(&text, &[complex(ty, &[3, 5, 5], &hpd(3, 5, 41)), complex(ty, &[3, 5, 2], &parts(30, 42))]);
    }
}

#[test]
fn complex_geqrf_and_ungqr() {
    for ty in ["c64", "c128"] {
        let p = prefix(ty);
        for (m, n) in [(6i64, 4i64), (4, 4), (3, 5), (1, 1), (2, 2), (17, 3)] {
            let k = m.min(n);
            let text = format!(
                "HloModule m\nENTRY e {{\n  a = {ty}[2,{m},{n}] parameter(0)\n  qr = ({ty}[2,{m},{n}]{{1,2,0}}, {ty}[2,{k}]) custom-call(a), custom_call_target=\"lapack_{p}geqrf_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{}}\n  r = {ty}[2,{m},{n}] get-tuple-element(qr), index=0\n  tau = {ty}[2,{k}] get-tuple-element(qr), index=1\n  rk = {ty}[2,{m},{k}] slice(r), slice={{[0:2], [0:{m}], [0:{k}]}}\n  q = {ty}[2,{m},{k}] custom-call(rk, tau), custom_call_target=\"lapack_{p}ungqr_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{}}\n  ROOT t = ({ty}[2,{m},{n}], {ty}[2,{k}], {ty}[2,{m},{k}]) tuple(r, tau, q)\n}}\n"
            );
            let (mu, nu) = (m as usize, n as usize);
            let mut a = parts(2 * mu * nu, 43);
            // Batch 0, column 0: (real, 0, ...), tau = 0. Batch 1, column 0: (imaginary, 0, ...),
            // which still reflects (LAPACK makes beta real).
            for r in 0..mu {
                a[2 * (r * nu) + 1] = 0.0;
                a[2 * (mu * nu + r * nu)] = 0.0;
                if r > 0 {
                    a[2 * (r * nu)] = 0.0;
                    a[2 * (mu * nu + r * nu) + 1] = 0.0;
                }
            }
            let want = check(&text, &[complex(ty, &[2, m, n], &a)]);
            let tau = floats(want[1].array_data().unwrap()).unwrap();
            assert_eq!(&tau[..2], &[0.0, 0.0], "{ty} {m}x{n}");
            assert!(tau[2 * k as usize] != 0.0 || tau[2 * k as usize + 1] != 0.0, "{ty} {m}x{n}");
        }
    }
}

/// `heevd` by invariants computed in the module: eigenvalues, `V diag(w) V^H` and `V^H V`
/// (eigenvectors are unique only up to a phase, and the two Jacobi orderings differ).
fn heevd_text(ty: &str, n: i64, uplo: u8) -> String {
    let p = prefix(ty);
    let re = if ty == "c64" { "f32" } else { "f64" };
    format!(
        "HloModule m\nENTRY e {{\n  a = {ty}[2,{n},{n}] parameter(0)\n  eig = ({ty}[2,{n},{n}]{{1,2,0}}, {re}[2,{n}], s32[2]) custom-call(a), custom_call_target=\"lapack_{p}heevd_ffi\", api_version=API_VERSION_TYPED_FFI, frontend_attributes={{num_batch_dims=\"1\"}}, backend_config={{mode = 86 : ui8, uplo = {uplo} : ui8}}\n  v = {ty}[2,{n},{n}] get-tuple-element(eig), index=0\n  w = {re}[2,{n}] get-tuple-element(eig), index=1\n  info = s32[2] get-tuple-element(eig), index=2\n  vr = {re}[2,{n},{n}] real(v)\n  vi = {re}[2,{n},{n}] imag(v)\n  nvi = {re}[2,{n},{n}] negate(vi)\n  vc = {ty}[2,{n},{n}] complex(vr, nvi)\n  wc = {ty}[2,{n}] convert(w)\n  wb = {ty}[2,{n},{n}] broadcast(wc), dimensions={{0,2}}\n  vw = {ty}[2,{n},{n}] multiply(v, wb)\n  recon = {ty}[2,{n},{n}] dot(vw, vc), lhs_batch_dims={{0}}, lhs_contracting_dims={{2}}, rhs_batch_dims={{0}}, rhs_contracting_dims={{2}}\n  gram = {ty}[2,{n},{n}] dot(vc, v), lhs_batch_dims={{0}}, lhs_contracting_dims={{1}}, rhs_batch_dims={{0}}, rhs_contracting_dims={{1}}\n  ROOT t = ({re}[2,{n}], {ty}[2,{n},{n}], {ty}[2,{n},{n}], s32[2]) tuple(w, recon, gram, info)\n}}\n"
    )
}

#[test]
fn complex_heevd_lower_and_upper_across_sizes() {
    for ty in ["c64", "c128"] {
        for n in [1i64, 2, 3, 8, 17] {
            for uplo in [76, 85] {
                let nu = n as usize;
                // Hermitian in the named triangle only: the other holds unrelated values.
                let mut a = hpd(2, nu, 50 + n as u32);
                let noise = parts(2 * nu * nu, 51);
                for b in 0..2 {
                    for i in 0..nu {
                        for j in 0..nu {
                            let other = if uplo == 76 { j > i } else { j < i };
                            if other {
                                let k = 2 * (b * nu * nu + i * nu + j);
                                a[k] = noise[k];
                                a[k + 1] = noise[k + 1];
                            }
                        }
                    }
                }
                let want = check(&heevd_text(ty, n, uplo), &[complex(ty, &[2, n, n], &a)]);
                assert_eq!(ints(&want[3]), vec![0, 0]);
            }
        }
    }
}

#[test]
fn complex_heevd_repeated_eigenvalues_and_nan() {
    // diag(1, 1, 2) conjugated by a unitary Householder reflector; batch 1 holds a NaN.
    let v = [0.5, 0.5, 0.5, -0.5, 0.0, 0.5];
    let norm2: f64 = v.iter().map(|x| x * x).sum();
    let d = [1.0, 1.0, 2.0];
    let mut a = vec![0.0; 36];
    for i in 0..3 {
        for j in 0..3 {
            // H = I - 2 v v^H / |v|^2; A = H D H.
            let h = |r: usize, c: usize| -> (f64, f64) {
                let (vr, vi, wr, wi) = (v[2 * r], v[2 * r + 1], v[2 * c], -v[2 * c + 1]);
                let (pr, pi) = (vr * wr - vi * wi, vr * wi + vi * wr);
                (f64::from(r == c) - 2.0 * pr / norm2, -2.0 * pi / norm2)
            };
            let (mut re, mut im) = (0.0, 0.0);
            for (k, dk) in d.iter().enumerate() {
                let ((ar, ai), (br, bi)) = (h(i, k), h(k, j));
                re += dk * (ar * br - ai * bi);
                im += dk * (ar * bi + ai * br);
            }
            a[2 * (i * 3 + j)] = re;
            a[2 * (i * 3 + j) + 1] = im;
        }
    }
    a.copy_within(..18, 18);
    a[18 + 2 * 3] = f64::NAN;
    let want = check(&heevd_text("c128", 3, 76), &[complex("c128", &[2, 3, 3], &a)]);
    let w = floats(want[0].array_data().unwrap()).unwrap();
    assert!((w[0] - 1.0).abs() < 1e-12 && (w[1] - 1.0).abs() < 1e-12 && (w[2] - 2.0).abs() < 1e-12, "{w:?}");
    assert!(w[3..].iter().all(|x| x.is_nan()));
    assert_eq!(ints(&want[3]), vec![0, 1]);
}

/// Complex `gesdd` by invariants computed in the module: `s`, `U[:, :k] diag(s) VT[:k]`,
/// `U^H U` and `VT VT^H` (or `s` alone for `jobz = 'N'`).
fn complex_gesdd_text(ty: &str, m: i64, n: i64, mode: char) -> String {
    let p = prefix(ty);
    let re = if ty == "c64" { "f32" } else { "f64" };
    let k = m.min(n);
    let (uc, vr) = match mode {
        'A' => (m, n),
        _ => (k, k),
    };
    let head = format!(
        "HloModule m\nENTRY e {{\n  a = {ty}[2,{m},{n}] parameter(0)\n  sv = ({ty}[2,{m},{n}]{{1,2,0}}, {re}[2,{k}], {ty}[2,{m},{uc}]{{1,2,0}}, {ty}[2,{vr},{n}]{{1,2,0}}, s32[2]) custom-call(a), custom_call_target=\"lapack_{p}gesdd_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{mode = {} : ui8}}\n  s = {re}[2,{k}] get-tuple-element(sv), index=1\n  info = s32[2] get-tuple-element(sv), index=4\n",
        mode as u8
    );
    if mode == 'N' {
        return format!("{head}  ROOT t = ({re}[2,{k}], s32[2]) tuple(s, info)\n}}\n");
    }
    format!(
        "{head}  u = {ty}[2,{m},{uc}] get-tuple-element(sv), index=2\n  vt = {ty}[2,{vr},{n}] get-tuple-element(sv), index=3\n  uk = {ty}[2,{m},{k}] slice(u), slice={{[0:2], [0:{m}], [0:{k}]}}\n  vk = {ty}[2,{k},{n}] slice(vt), slice={{[0:2], [0:{k}], [0:{n}]}}\n  sc = {ty}[2,{k}] convert(s)\n  sb = {ty}[2,{m},{k}] broadcast(sc), dimensions={{0,2}}\n  us = {ty}[2,{m},{k}] multiply(uk, sb)\n  recon = {ty}[2,{m},{n}] dot(us, vk), lhs_batch_dims={{0}}, lhs_contracting_dims={{2}}, rhs_batch_dims={{0}}, rhs_contracting_dims={{1}}\n  ur = {re}[2,{m},{uc}] real(u)\n  ui = {re}[2,{m},{uc}] imag(u)\n  nui = {re}[2,{m},{uc}] negate(ui)\n  uh = {ty}[2,{m},{uc}] complex(ur, nui)\n  gu = {ty}[2,{uc},{uc}] dot(uh, u), lhs_batch_dims={{0}}, lhs_contracting_dims={{1}}, rhs_batch_dims={{0}}, rhs_contracting_dims={{1}}\n  vr = {re}[2,{vr},{n}] real(vt)\n  vi = {re}[2,{vr},{n}] imag(vt)\n  nvi = {re}[2,{vr},{n}] negate(vi)\n  vh = {ty}[2,{vr},{n}] complex(vr, nvi)\n  gv = {ty}[2,{vr},{vr}] dot(vt, vh), lhs_batch_dims={{0}}, lhs_contracting_dims={{2}}, rhs_batch_dims={{0}}, rhs_contracting_dims={{2}}\n  ROOT t = ({re}[2,{k}], {ty}[2,{m},{n}], {ty}[2,{uc},{uc}], {ty}[2,{vr},{vr}], s32[2]) tuple(s, recon, gu, gv, info)\n}}\n"
    )
}

#[test]
fn complex_gesdd_tall_wide_square_full_thin_and_none() {
    for ty in ["c64", "c128"] {
        for (m, n) in [(1i64, 1i64), (2, 3), (3, 2), (8, 8), (17, 3), (3, 17)] {
            for mode in ['A', 'S', 'N'] {
                let mut a = parts(2 * (m * n) as usize, 70 + m as u32);
                // Batch 1 of the square case: rank 1 (u is completed where s is zero).
                if m == n && m > 1 {
                    let nu = n as usize;
                    for i in 0..nu {
                        for j in 0..nu {
                            let k = 2 * (nu * nu + i * nu + j);
                            a[k] = (i + 1) as f64 * (j as f64 - 2.0) / 4.0;
                            a[k + 1] = (i + 1) as f64 * 0.5 / 4.0;
                        }
                    }
                }
                let want = check(&complex_gesdd_text(ty, m, n, mode), &[complex(ty, &[2, m, n], &a)]);
                assert_eq!(ints(want.last().unwrap()), vec![0, 0], "{ty} {m}x{n} {mode}");
            }
        }
    }
}

#[test]
fn complex_gesdd_nan_reports_info() {
    let mut a = parts(12, 80);
    a[2 * 6 + 1] = f64::NAN;
    let want = check(&complex_gesdd_text("c64", 2, 3, 'S'), &[complex("c64", &[2, 2, 3], &a)]);
    assert_eq!(ints(want.last().unwrap()), vec![0, 1]);
}

/// XLA's `Qr` and `ProductOfElementaryHouseholderReflectors` (JAX's default lowering of `geqrf`
/// and `householder_product`, e.g. through a PJRT plugin) are `geqrf` and `orgqr`/`ungqr`: the
/// same results as the LAPACK targets, expanded and evaluated.
#[test]
fn xla_qr_targets_are_geqrf_and_orgqr() {
    for ty in ["f32", "c64", "c128"] {
        let p = match ty {
            "f32" => 's',
            t => prefix(t),
        };
        let orgqr = if ty == "f32" { "orgqr" } else { "ungqr" };
        let text = format!(
            "HloModule m\nENTRY e {{\n  a = {ty}[2,5,3] parameter(0)\n  qr = ({ty}[2,5,3], {ty}[2,3]) custom-call(a), custom_call_target=\"Qr\"\n  r = {ty}[2,5,3] get-tuple-element(qr), index=0\n  tau = {ty}[2,3] get-tuple-element(qr), index=1\n  q = {ty}[2,5,3] custom-call(r, tau), custom_call_target=\"ProductOfElementaryHouseholderReflectors\"\n  lq = ({ty}[2,5,3], {ty}[2,3]) custom-call(a), custom_call_target=\"lapack_{p}geqrf_ffi\", api_version=API_VERSION_TYPED_FFI\n  lr = {ty}[2,5,3] get-tuple-element(lq), index=0\n  ltau = {ty}[2,3] get-tuple-element(lq), index=1\n  lqq = {ty}[2,5,3] custom-call(lr, ltau), custom_call_target=\"lapack_{p}{orgqr}_ffi\", api_version=API_VERSION_TYPED_FFI\n  ROOT t = ({ty}[2,5,3], {ty}[2,3], {ty}[2,5,3], {ty}[2,5,3], {ty}[2,3], {ty}[2,5,3]) tuple(r, tau, q, lr, ltau, lqq)\n}}\n"
        );
        let a = if ty == "f32" { f32s(&[2, 5, 3], values(30, 90)) } else { complex(ty, &[2, 5, 3], &parts(30, 90)) };
        let want = check(&text, &[a]);
        for k in 0..3 {
            assert_eq!(want[k], want[k + 3], "{ty} output {k}");
        }
    }
}
