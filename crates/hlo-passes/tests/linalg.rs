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

#[test]
fn complex_routines_are_left_alone() {
    let text = "HloModule m\nENTRY e {\n  a = c64[3,3] parameter(0)\n  ROOT c = (c64[3,3], s32[]) custom-call(a), custom_call_target=\"lapack_cpotrf_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={uplo = 76 : ui8}\n}\n";
    let mut module = parse(text);
    assert!(!hlo_passes::linalg_expander::run(&mut module).unwrap());
}
