//! The math accuracy suite on Vulkan (lavapipe, validation on): every case of
//! `hlo-samples/math/` (each float unary and binary op JAX emits, and the JAX functions that
//! decompose into them, over a dense sweep plus special values) through the pipeline, this
//! compiler and the device, compared with JAX's outputs within the per-function ulp bounds
//! of docs/numerics.md (special values exactly).
//!
//! f64 functions are built in `emit/math64.rs` (the device's GLSL.std.450 functions are
//! 32-bit); their bounds are against XLA:CPU's f64 results, which for `cbrt` and `log1p` are
//! far from exact.
//!
//! `MATH_SUITE_REPORT=1` prints the largest distance measured per case.

mod common;
#[path = "../../hlo-interp/tests/math_suite/mod.rs"]
mod math_suite;

use common::*;
use math_suite::{compare, report, Ty};

/// The guaranteed bound in ulps of the case's type for `function` on Vulkan, against JAX's
/// result (docs/numerics.md, "Vulkan" column). Narrow types are computed in f32 and rounded
/// (1 ulp), but XLA:CPU's own f16 `cbrt`, `expm1` and `log1p` are 2 to 3 ulps off.
fn bound(function: &str, ty: Ty) -> u64 {
    if matches!(ty, Ty::F16 | Ty::BF16) {
        return if matches!(function, "cbrt" | "expm1" | "log1p") { 3 } else { 1 };
    }
    if ty == Ty::F64 {
        // Against XLA:CPU's f64 results, whose cbrt and log1p are far from exact.
        return match function {
            "cbrt" | "log1p" => 128,
            "exp" | "log" | "sin" | "cos" | "tan" | "atan2" | "pow" | "rsqrt" => 2,
            "expm1" | "tanh" | "logistic" | "erf" => 4,
            _ => bound(function, Ty::F32),
        };
    }
    match function {
        "abs" | "negate" | "sign" | "floor" | "ceil" | "round_even" | "round_afz" | "is_finite" | "add"
        | "subtract" | "multiply" | "divide" | "max" | "min" | "rem" | "sqrt" => 0,
        "rsqrt" | "log" | "sin" | "cos" | "atan" | "acos" => 2,
        "log2" | "log10" | "log1p" | "tan" | "atan2" | "asin" | "acosh" => 3,
        "exp" | "logistic" | "pow" | "expm1" | "tanh" | "asinh" | "atanh" | "sinh" | "cosh" => 5,
        "exp2" => 6,
        "cbrt" => 16,
        "erf" | "erfc" | "erf_inv" => 8,
        "digamma" => 512,
        "lgamma" => 1024,
        other => panic!("no ulp bound for {other}"),
    }
}

#[test]
fn math_suite_matches_jax_on_vulkan() {
    let ctx = vulkan();
    let target = target_from_caps(ctx.caps());
    let verbose = std::env::var_os("MATH_SUITE_REPORT").is_some();
    let mut failed = Vec::new();
    let mut problems = Vec::new();
    let mut checked = 0;
    for case in math_suite::cases() {
        let text = std::fs::read_to_string(case.dir.join("module.hlo")).unwrap();
        let module = parse_and_fuse(&text);
        let compiled = match hlo_spirv::compile(&module, &target) {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("{}: {e}", case.name));
                continue;
            }
        };
        check_spirv(&compiled);
        let outs = run_vulkan(&ctx, &compiled, &case.inputs);
        let o = compare(&case, &outs[0], bound(&case.function, case.ty));
        if verbose {
            println!("{}: max {} ulp, {} unchecked", case.name, o.max_ulp, o.unchecked);
        }
        checked += 1;
        if !o.failures.is_empty() {
            failed.push((case.name.clone(), o));
        }
    }
    println!("{checked} cases checked");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(failed.is_empty(), "cases outside their bound:\n{}", report(&failed));
}
