//! XLA's own post-optimisation dumps (`hlo-samples/*/module.opt.hlo`), compiled as they are
//! (XLA's fusions, bitcasts with layouts, copies) without the hlo-passes pipeline, run on
//! lavapipe and compared with JAX's outputs like `samples_vulkan`.

mod common;
use common::*;

/// Dumps this backend cannot run as XLA fused them, with the op that stops them.
const EXPECTED_UNSUPPORTED: &[(&str, &str)] = &[
    // Complex numbers and fft run as real arithmetic after hlo-passes' `lower-complex`, and
    // LAPACK custom calls as loops after its `linalg-expander`: passes these dumps skip (the
    // samples pass in samples_vulkan, through the pipeline).
    ("complex_arith", "constant"),
    ("complex_expm1", "exponential-minus-one"),
    ("complex_matmul_julia", "dot"),
    ("complex_special", "type c64"),
    ("complex_unary_sort", "tan"),
    // A `pred` convolution runs as an s32 one after hlo-passes' `pred-convolution`.
    ("conv_pred", "convolution"),
    ("fft_family", "fft"),
    ("fft_long", "fft"),
    ("linalg_cholesky_solve", "custom-call"),
    ("linalg_complex_cholesky_lu", "constant"),
    ("linalg_complex_eig", "constant"),
    ("linalg_complex_eigh", "copy"),
    ("linalg_complex_qr", "copy"),
    ("linalg_complex_svd", "copy"),
    ("linalg_eig", "constant"),
    ("linalg_eigh", "custom-call"),
    ("linalg_lu_solve_inv_det", "custom-call"),
    ("linalg_qr", "custom-call"),
    ("linalg_svd", "custom-call"),
    ("linalg_xla_qr", "constant"),
    // XLA's argmax over 2^24 elements is one reduce: without hlo-passes' split-reductions a
    // workgroup's invocations would each loop 65,536 times, past lavapipe's budget (refused,
    // exit 2; the pipeline splits it and the sample passes in samples_vulkan).
    ("softmax_16m", "reduce-tree"),
];

#[test]
fn xla_dumps_vulkan() {
    let report = run_samples(&["module.opt.hlo"], parse);
    assert_report(&report, EXPECTED_UNSUPPORTED);
}
