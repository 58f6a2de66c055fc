//! Dense linear algebra on lavapipe: XLA's `cholesky` and `triangular-solve` opcodes and the
//! LAPACK custom calls JAX emits on CPU, expanded by `linalg-expander` into while loops, against
//! the interpreter's own LAPACK routines on the original module (integers exactly, floats within
//! 1e-5 relative L2): batches, both triangles and sides, a tie in pivoting, a singular matrix and
//! a matrix that is not positive definite (all NaN for `cholesky`, `info > 0` for `potrf`).
//! `syevd` and `gesdd`, whose vectors are unique only up to sign, are checked by what the module
//! computes from them (values, reconstructions, Gram matrices), within 2e-5 (f32 Jacobi sweeps on
//! the device, f64 in the interpreter), or 1e-12 for the f64 routines.
//! The complex routines (`lapack_{c,z}*`) run the same way in c64 and c128 (complex outputs
//! compared part by part). The JAX samples `linalg_*` cover the same targets end to end.

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
    check_within(hlo, inputs, 1e-5);
}

fn check_within(hlo: &str, inputs: Vec<Vec<u8>>, float_tol: f64) {
    let module = parse(hlo);
    let want = run_interp(&module, &inputs);
    let c = compile_checked(&parse_and_fuse(hlo));
    let got = run_vulkan(&vulkan(), &c, &inputs);
    let root = module.entry_comp().root_instr().shape.clone();
    let leaves = root.leaves();
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        let tol = if leaves[k].dtype.is_float() || leaves[k].dtype.is_complex() { float_tol } else { 0.0 };
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

#[test]
fn eigh_by_invariants() {
    let hlo = "HloModule m\nENTRY e {\n  a = f32[3,6,6] parameter(0)\n  eig = (f32[3,6,6]{1,2,0}, f32[3,6], s32[3]) custom-call(a), custom_call_target=\"lapack_ssyevd_ffi\", api_version=API_VERSION_TYPED_FFI, frontend_attributes={num_batch_dims=\"1\"}, backend_config={mode = 86 : ui8, uplo = 76 : ui8}\n  v = f32[3,6,6] get-tuple-element(eig), index=0\n  w = f32[3,6] get-tuple-element(eig), index=1\n  info = s32[3] get-tuple-element(eig), index=2\n  wb = f32[3,6,6] broadcast(w), dimensions={0,2}\n  vw = f32[3,6,6] multiply(v, wb)\n  recon = f32[3,6,6] dot(vw, v), lhs_batch_dims={0}, lhs_contracting_dims={2}, rhs_batch_dims={0}, rhs_contracting_dims={2}\n  gram = f32[3,6,6] dot(v, v), lhs_batch_dims={0}, lhs_contracting_dims={1}, rhs_batch_dims={0}, rhs_contracting_dims={1}\n  ROOT t = (f32[3,6], f32[3,6,6], f32[3,6,6], s32[3]) tuple(w, recon, gram, info)\n}\n";
    // Batch 2 has a NaN in its upper triangle, which is never read.
    let mut a = values(3 * 36, 5);
    a[72 + 1] = f32::NAN;
    check_within(hlo, vec![bytes(&a)], 2e-5);
}

#[test]
fn svd_by_invariants() {
    let hlo = "HloModule m\nENTRY e {\n  a = f32[2,7,4] parameter(0)\n  b = f32[5,8] parameter(1)\n  sa = (f32[2,7,4]{1,2,0}, f32[2,4], f32[2,7,4]{1,2,0}, f32[2,4,4]{1,2,0}, s32[2]) custom-call(a), custom_call_target=\"lapack_sgesdd_ffi\", api_version=API_VERSION_TYPED_FFI, frontend_attributes={num_batch_dims=\"1\"}, backend_config={mode = 83 : ui8}\n  u = f32[2,7,4] get-tuple-element(sa), index=2\n  s = f32[2,4] get-tuple-element(sa), index=1\n  vt = f32[2,4,4] get-tuple-element(sa), index=3\n  sb = f32[2,7,4] broadcast(s), dimensions={0,2}\n  us = f32[2,7,4] multiply(u, sb)\n  recon = f32[2,7,4] dot(us, vt), lhs_batch_dims={0}, lhs_contracting_dims={2}, rhs_batch_dims={0}, rhs_contracting_dims={1}\n  gu = f32[2,4,4] dot(u, u), lhs_batch_dims={0}, lhs_contracting_dims={1}, rhs_batch_dims={0}, rhs_contracting_dims={1}\n  gv = f32[2,4,4] dot(vt, vt), lhs_batch_dims={0}, lhs_contracting_dims={2}, rhs_batch_dims={0}, rhs_contracting_dims={2}\n  sw = (f32[5,8]{0,1}, f32[5], f32[5,5]{0,1}, f32[8,8]{0,1}, s32[]) custom-call(b), custom_call_target=\"lapack_sgesdd_ffi\", api_version=API_VERSION_TYPED_FFI, frontend_attributes={num_batch_dims=\"0\"}, backend_config={mode = 65 : ui8}\n  u2 = f32[5,5] get-tuple-element(sw), index=2\n  s2 = f32[5] get-tuple-element(sw), index=1\n  vt2 = f32[8,8] get-tuple-element(sw), index=3\n  vt5 = f32[5,8] slice(vt2), slice={[0:5], [0:8]}\n  s2b = f32[5,5] broadcast(s2), dimensions={1}\n  us2 = f32[5,5] multiply(u2, s2b)\n  recon2 = f32[5,8] dot(us2, vt5), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n  gu2 = f32[5,5] dot(u2, u2), lhs_contracting_dims={0}, rhs_contracting_dims={0}\n  gv2 = f32[8,8] dot(vt2, vt2), lhs_contracting_dims={1}, rhs_contracting_dims={1}\n  ROOT t = (f32[2,4], f32[2,7,4], f32[2,4,4], f32[2,4,4], f32[5], f32[5,8], f32[5,5], f32[8,8]) tuple(s, recon, gu, gv, s2, recon2, gu2, gv2)\n}\n";
    check_within(hlo, vec![bytes(&values(56, 8)), bytes(&values(40, 9))], 2e-5);
}

#[test]
fn f64_eigh_and_svd_by_invariants() {
    let hlo = "HloModule m\nENTRY e {\n  a = f64[2,5,5] parameter(0)\n  b = f64[6,4] parameter(1)\n  eig = (f64[2,5,5]{1,2,0}, f64[2,5], s32[2]) custom-call(a), custom_call_target=\"lapack_dsyevd_ffi\", api_version=API_VERSION_TYPED_FFI, frontend_attributes={num_batch_dims=\"1\"}, backend_config={mode = 86 : ui8, uplo = 76 : ui8}\n  w = f64[2,5] get-tuple-element(eig), index=1\n  v = f64[2,5,5] get-tuple-element(eig), index=0\n  wb = f64[2,5,5] broadcast(w), dimensions={0,2}\n  vw = f64[2,5,5] multiply(v, wb)\n  recon = f64[2,5,5] dot(vw, v), lhs_batch_dims={0}, lhs_contracting_dims={2}, rhs_batch_dims={0}, rhs_contracting_dims={2}\n  sv = (f64[6,4]{0,1}, f64[4], f64[6,6]{0,1}, f64[4,4]{0,1}, s32[]) custom-call(b), custom_call_target=\"lapack_dgesdd_ffi\", api_version=API_VERSION_TYPED_FFI, frontend_attributes={num_batch_dims=\"0\"}, backend_config={mode = 65 : ui8}\n  s = f64[4] get-tuple-element(sv), index=1\n  u = f64[6,6] get-tuple-element(sv), index=2\n  gu = f64[6,6] dot(u, u), lhs_contracting_dims={0}, rhs_contracting_dims={0}\n  ROOT t = (f64[2,5], f64[2,5,5], f64[4], f64[6,6]) tuple(w, recon, s, gu)\n}\n";
    let f64_bytes = |v: Vec<f64>| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let a: Vec<f64> = values(50, 21).iter().map(|&x| x as f64).collect();
    let sym: Vec<f64> = (0..50).map(|k| (a[k] + a[(k / 25) * 25 + (k % 5) * 5 + (k % 25) / 5]) / 2.0).collect();
    let b: Vec<f64> = values(24, 22).iter().map(|&x| x as f64 * 0.75).collect();
    check_within(hlo, vec![f64_bytes(sym), f64_bytes(b)], 1e-12);
}

/// `batch` Hermitian positive definite `M M^H + n I` as interleaved parts (a stray imaginary
/// part on the diagonal, which the Hermitian routines never read).
fn hpd(batch: usize, n: usize, seed: u32) -> Vec<f64> {
    let m = values(2 * batch * n * n, seed);
    let mut out = vec![0.0; 2 * batch * n * n];
    for b in 0..batch {
        let at = |i: usize, j: usize| 2 * (b * n * n + i * n + j);
        for i in 0..n {
            for j in 0..n {
                let (mut re, mut im) = (if i == j { n as f64 } else { 0.0 }, 0.0);
                for k in 0..n {
                    let (xr, xi) = (m[at(i, k)] as f64, m[at(i, k) + 1] as f64);
                    let (yr, yi) = (m[at(j, k)] as f64, m[at(j, k) + 1] as f64);
                    re += xr * yr + xi * yi;
                    im += xi * yr - xr * yi;
                }
                out[at(i, j)] = re;
                out[at(i, j) + 1] = if i == j { 0.5 } else { im };
            }
        }
    }
    out
}

/// Every complex routine in one module of `ty` (`c64` or `c128`, LAPACK prefix `p`): Cholesky
/// (upper), solves with its adjoint and from the right, LU of a general matrix, QR and its `Q`,
/// and `heevd` by `V diag(w) V^H` and `V^H V`.
fn complex_module(ty: &str, re: &str, p: char) -> String {
    format!(
        "HloModule m\nENTRY e {{\n  a = {ty}[2,6,6] parameter(0)\n  g = {ty}[2,6,6] parameter(1)\n  b = {ty}[2,6,3] parameter(2)\n  ch = ({ty}[2,6,6]{{1,2,0}}, s32[2]) custom-call(a), custom_call_target=\"lapack_{p}potrf_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{uplo = 85 : ui8}}\n  u = {ty}[2,6,6] get-tuple-element(ch), index=0\n  info = s32[2] get-tuple-element(ch), index=1\n  x = {ty}[2,6,3]{{1,2,0}} custom-call(u, b), custom_call_target=\"lapack_{p}trsm_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{diag = 78 : ui8, side = 76 : ui8, trans_x = 67 : ui8, uplo = 85 : ui8}}\n  bt = {ty}[2,3,6] transpose(b), dimensions={{0,2,1}}\n  y = {ty}[2,3,6]{{1,2,0}} custom-call(u, bt), custom_call_target=\"lapack_{p}trsm_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{diag = 85 : ui8, side = 82 : ui8, trans_x = 84 : ui8, uplo = 85 : ui8}}\n  lu = ({ty}[2,6,6]{{1,2,0}}, s32[2,6], s32[2]) custom-call(g), custom_call_target=\"lapack_{p}getrf_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{}}\n  lu0 = {ty}[2,6,6] get-tuple-element(lu), index=0\n  lu1 = s32[2,6] get-tuple-element(lu), index=1\n  qr = ({ty}[2,6,6]{{1,2,0}}, {ty}[2,6]) custom-call(g), custom_call_target=\"lapack_{p}geqrf_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{}}\n  r = {ty}[2,6,6] get-tuple-element(qr), index=0\n  tau = {ty}[2,6] get-tuple-element(qr), index=1\n  q = {ty}[2,6,6]{{1,2,0}} custom-call(r, tau), custom_call_target=\"lapack_{p}ungqr_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{}}\n  eig = ({ty}[2,6,6]{{1,2,0}}, {re}[2,6], s32[2]) custom-call(a), custom_call_target=\"lapack_{p}heevd_ffi\", api_version=API_VERSION_TYPED_FFI, backend_config={{mode = 86 : ui8, uplo = 76 : ui8}}\n  v = {ty}[2,6,6] get-tuple-element(eig), index=0\n  w = {re}[2,6] get-tuple-element(eig), index=1\n  vr = {re}[2,6,6] real(v)\n  vi = {re}[2,6,6] imag(v)\n  nvi = {re}[2,6,6] negate(vi)\n  vc = {ty}[2,6,6] complex(vr, nvi)\n  wc = {ty}[2,6] convert(w)\n  wb = {ty}[2,6,6] broadcast(wc), dimensions={{0,2}}\n  vw = {ty}[2,6,6] multiply(v, wb)\n  recon = {ty}[2,6,6] dot(vw, vc), lhs_batch_dims={{0}}, lhs_contracting_dims={{2}}, rhs_batch_dims={{0}}, rhs_contracting_dims={{2}}\n  gram = {ty}[2,6,6] dot(vc, v), lhs_batch_dims={{0}}, lhs_contracting_dims={{1}}, rhs_batch_dims={{0}}, rhs_contracting_dims={{1}}\n  ROOT t = ({ty}[2,6,6], s32[2], {ty}[2,6,3], {ty}[2,3,6], {ty}[2,6,6], s32[2,6], {ty}[2,6,6], {ty}[2,6], {ty}[2,6,6], {re}[2,6], {ty}[2,6,6], {ty}[2,6,6]) tuple(u, info, x, y, lu0, lu1, r, tau, q, w, recon, gram)\n}}\n"
    )
}

#[test]
fn complex_routines_c64() {
    let f32_bytes = |v: &[f64]| -> Vec<u8> { v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect() };
    let g: Vec<f64> = values(144, 61).iter().map(|&x| x as f64).collect();
    let b: Vec<f64> = values(72, 62).iter().map(|&x| x as f64).collect();
    let inputs = vec![f32_bytes(&hpd(2, 6, 60)), f32_bytes(&g), f32_bytes(&b)];
    check_within(&complex_module("c64", "f32", 'c'), inputs, 2e-5);
}

#[test]
fn complex_routines_c128() {
    let f64_bytes = |v: &[f64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let g: Vec<f64> = values(144, 63).iter().map(|&x| x as f64).collect();
    let b: Vec<f64> = values(72, 64).iter().map(|&x| x as f64).collect();
    let inputs = vec![f64_bytes(&hpd(2, 6, 65)), f64_bytes(&g), f64_bytes(&b)];
    check_within(&complex_module("c128", "f64", 'z'), inputs, 1e-12);
}

/// `geev` of `ty` matrices (`s` or `c` routine) checked by invariants that do not depend on the
/// eigenvalues' order or the eigenvectors' phases: sorted real and imaginary parts,
/// `1 + sum_k |A v_k - w_k v_k|^2` and `1 + sum_k |u_k^H A - w_k u_k^H|^2` (1 within rounding),
/// the vectors' norms and `info`.
fn geev_module(ty: &str, p: char) -> String {
    let (parts, eig_ty) = if p == 'c' {
        (
            "  w = c64[5,4] get-tuple-element(eig), index=0\n  wr = f32[5,4] real(w)\n  wi = f32[5,4] imag(w)\n"
                .to_string(),
            "(c64[5,4], c64[5,4,4]{1,2,0}, c64[5,4,4]{1,2,0}, s32[5])",
        )
    } else {
        ("  wr = f32[5,4] get-tuple-element(eig), index=0\n  wi = f32[5,4] get-tuple-element(eig), index=1\n  w = c64[5,4] complex(wr, wi)\n".to_string(), "(f32[5,4], f32[5,4], c64[5,4,4]{1,2,0}, c64[5,4,4]{1,2,0}, s32[5])")
    };
    let first_vec = if p == 'c' { 1 } else { 2 };
    format!(
        "HloModule m\nlt {{\n  x = f32[] parameter(0)\n  y = f32[] parameter(1)\n  ROOT c = pred[] compare(x, y), direction=LT\n}}\nadd {{\n  x = f32[] parameter(0)\n  y = f32[] parameter(1)\n  ROOT s = f32[] add(x, y)\n}}\nENTRY e {{\n  a = {ty}[5,4,4] parameter(0)\n  eig = {eig_ty} custom-call(a), custom_call_target=\"lapack_{p}geev_ffi\", api_version=API_VERSION_TYPED_FFI, frontend_attributes={{num_batch_dims=\"1\"}}, backend_config={{compute_left = 86 : ui8, compute_right = 86 : ui8}}\n{parts}  vl = c64[5,4,4] get-tuple-element(eig), index={first_vec}\n  vr = c64[5,4,4] get-tuple-element(eig), index={}\n  info = s32[5] get-tuple-element(eig), index={}\n  sr = f32[5,4] sort(wr), dimensions={{1}}, to_apply=lt\n  si = f32[5,4] sort(wi), dimensions={{1}}, to_apply=lt\n  ac = c64[5,4,4] convert(a)\n  av = c64[5,4,4] dot(ac, vr), lhs_batch_dims={{0}}, lhs_contracting_dims={{2}}, rhs_batch_dims={{0}}, rhs_contracting_dims={{1}}\n  wb = c64[5,4,4] broadcast(w), dimensions={{0,2}}\n  vw = c64[5,4,4] multiply(vr, wb)\n  dr = c64[5,4,4] subtract(av, vw)\n  vlr = f32[5,4,4] real(vl)\n  vli = f32[5,4,4] imag(vl)\n  nvli = f32[5,4,4] negate(vli)\n  vlc = c64[5,4,4] complex(vlr, nvli)\n  ua = c64[5,4,4] dot(vlc, ac), lhs_batch_dims={{0}}, lhs_contracting_dims={{1}}, rhs_batch_dims={{0}}, rhs_contracting_dims={{1}}\n  vlct = c64[5,4,4] transpose(vlc), dimensions={{0,2,1}}\n  wb2 = c64[5,4,4] broadcast(w), dimensions={{0,1}}\n  uw = c64[5,4,4] multiply(vlct, wb2)\n  dl = c64[5,4,4] subtract(ua, uw)\n  zero = f32[] constant(0)\n  one = f32[] constant(1)\n  ones = f32[5] broadcast(one), dimensions={{}}\n  adr = f32[5,4,4] abs(dr)\n  sdr = f32[5,4,4] multiply(adr, adr)\n  rr = f32[5] reduce(sdr, zero), dimensions={{1,2}}, to_apply=add\n  rr1 = f32[5] add(rr, ones)\n  adl = f32[5,4,4] abs(dl)\n  sdl = f32[5,4,4] multiply(adl, adl)\n  rl = f32[5] reduce(sdl, zero), dimensions={{1,2}}, to_apply=add\n  rl1 = f32[5] add(rl, ones)\n  avr = f32[5,4,4] abs(vr)\n  svr = f32[5,4,4] multiply(avr, avr)\n  nr = f32[5,4] reduce(svr, zero), dimensions={{1}}, to_apply=add\n  avl = f32[5,4,4] abs(vl)\n  svl = f32[5,4,4] multiply(avl, avl)\n  nl = f32[5,4] reduce(svl, zero), dimensions={{1}}, to_apply=add\n  ROOT t = (f32[5,4], f32[5,4], f32[5], f32[5], f32[5,4], f32[5,4], s32[5]) tuple(sr, si, rr1, rl1, nr, nl, info)\n}}\n",
        first_vec + 1,
        first_vec + 2
    )
}

/// Five 4 x 4 matrices: general, upper triangular, zero, two rotations (conjugate pairs), and
/// one holding a NaN (NaN results, `info = 1`); interleaved parts when `complex`.
fn geev_inputs(complex: bool) -> Vec<u8> {
    let parts = if complex { 2 } else { 1 };
    let mut m = values(5 * 16 * parts, 70);
    for i in 0..4 {
        for j in 0..i {
            for p in 0..parts {
                m[(16 + i * 4 + j) * parts + p] = 0.0;
            }
        }
    }
    for k in 0..16 * parts {
        m[32 * parts + k] = 0.0;
        m[48 * parts + k] = 0.0;
    }
    let (c, s) = (0.6f32, 0.8f32);
    for (i, j, v) in [(0, 1, -1.0), (1, 0, 1.0), (2, 2, c), (2, 3, -s), (3, 2, s), (3, 3, c)] {
        m[(48 + i * 4 + j) * parts] = v;
    }
    m[(64 + 6) * parts] = f32::NAN;
    bytes(&m)
}

#[test]
fn geev_by_invariants() {
    check_within(&geev_module("f32", 's'), vec![geev_inputs(false)], 2e-5);
    check_within(&geev_module("c64", 'c'), vec![geev_inputs(true)], 2e-5);
}
