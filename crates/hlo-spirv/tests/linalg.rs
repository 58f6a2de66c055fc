//! Dense linear algebra on lavapipe: XLA's `cholesky` and `triangular-solve` opcodes and the
//! LAPACK custom calls JAX emits on CPU, expanded by `linalg-expander` into while loops, against
//! the interpreter's own LAPACK routines on the original module (integers exactly, floats within
//! 1e-5 relative L2): batches, both triangles and sides, a tie in pivoting, a singular matrix and
//! a matrix that is not positive definite (all NaN for `cholesky`, `info > 0` for `potrf`).
//! The JAX samples `linalg_*` cover the same targets end to end.

mod common;
use common::*;

fn values(n: usize, seed: u32) -> Vec<f32> {
    let mix = seed.wrapping_mul(0x9E37_79B9);
    (0..n).map(|k| ((((k as u32) ^ mix).wrapping_mul(2654435761) >> 9) % 2000) as f32 / 1000.0 - 1.0).collect()
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `batch` matrices `M M^T + n I`.
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

/// Runs `hlo` on lavapipe (through the whole pipeline) and in the interpreter (as written).
fn check(hlo: &str, inputs: Vec<Vec<u8>>) {
    let module = parse(hlo);
    let want = run_interp(&module, &inputs);
    let c = compile_checked(&parse_and_fuse(hlo));
    let got = run_vulkan(&vulkan(), &c, &inputs);
    let root = module.entry_comp().root_instr().shape.clone();
    let leaves = root.leaves();
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        let tol = if leaves[k].dtype.is_float() { 1e-5 } else { 0.0 };
        compare(leaves[k].dtype, g, w, tol).unwrap_or_else(|e| panic!("output {k}: {e}\n{hlo}"));
    }
}

#[test]
fn cholesky_and_triangular_solve_opcodes() {
    let hlo = "HloModule m\nENTRY e {\n  a = f32[3,6,6] parameter(0)\n  b = f32[3,6,2] parameter(1)\n  l = f32[3,6,6] cholesky(a), lower=true\n  u = f32[3,6,6] cholesky(a), lower=false\n  x = f32[3,6,2] triangular-solve(l, b), left_side=true, lower=true, unit_diagonal=false, transpose_a=NO_TRANSPOSE\n  y = f32[3,6,2] triangular-solve(l, x), left_side=true, lower=true, unit_diagonal=false, transpose_a=TRANSPOSE\n  bt = f32[3,2,6] transpose(b), dimensions={0,2,1}\n  z = f32[3,2,6] triangular-solve(u, bt), left_side=false, lower=false, unit_diagonal=true, transpose_a=NO_TRANSPOSE\n  ROOT t = (f32[3,6,6], f32[3,6,6], f32[3,6,2], f32[3,2,6]) tuple(l, u, y, z)\n}\n";
    let mut a = spd(3, 6, 1);
    a[2 * 36 + 35] = -100.0;
    check(hlo, vec![bytes(&a), bytes(&values(36, 2))]);
}

#[test]
fn lapack_custom_calls() {
    let hlo = "HloModule m\nENTRY e {\n  a = f32[2,4,4] parameter(0)\n  s = f32[2,4,4] parameter(1)\n  lu = (f32[2,4,4]{1,2,0}, s32[2,4], s32[2]) custom-call(a), custom_call_target=\"lapack_sgetrf_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={}\n  ch = (f32[2,4,4]{1,2,0}, s32[2]) custom-call(s), custom_call_target=\"lapack_spotrf_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={uplo = 85 : ui8}\n  qr = (f32[2,4,4]{1,2,0}, f32[2,4]) custom-call(s), custom_call_target=\"lapack_sgeqrf_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={}\n  r = f32[2,4,4] get-tuple-element(qr), index=0\n  tau = f32[2,4] get-tuple-element(qr), index=1\n  q = f32[2,4,4]{1,2,0} custom-call(r, tau), custom_call_target=\"lapack_sorgqr_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={}\n  x = f32[2,4,4]{1,2,0} custom-call(s, a), custom_call_target=\"lapack_strsm_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={diag = 78 : ui8, side = 82 : ui8, trans_x = 84 : ui8, uplo = 85 : ui8}\n  lu0 = f32[2,4,4] get-tuple-element(lu), index=0\n  lu1 = s32[2,4] get-tuple-element(lu), index=1\n  lu2 = s32[2] get-tuple-element(lu), index=2\n  ch0 = f32[2,4,4] get-tuple-element(ch), index=0\n  ch1 = s32[2] get-tuple-element(ch), index=1\n  ROOT t = (f32[2,4,4], s32[2,4], s32[2], f32[2,4,4], s32[2], f32[2,4,4], f32[2,4], f32[2,4,4], f32[2,4,4]) tuple(lu0, lu1, lu2, ch0, ch1, r, tau, q, x)\n}\n";
    // Batch 0: a tie for the first pivot (|-2| = |2|); batch 1: singular (rank 1). QR runs on the
    // well-conditioned `s` (on a rank-1 matrix the later reflectors act on rounding noise).
    let a = [
        1.0, 2.0, 0.5, 1.0, -2.0, 1.0, 1.0, 0.0, 2.0, 5.0, 1.0, 1.0, 0.5, 0.0, 1.0, 3.0, //
        1.0, 2.0, 3.0, 4.0, 2.0, 4.0, 6.0, 8.0, 3.0, 6.0, 9.0, 12.0, 4.0, 8.0, 12.0, 16.0,
    ];
    let mut s = spd(2, 4, 3);
    s[16 + 15] = -30.0;
    check(hlo, vec![bytes(&a), bytes(&s)]);
}
