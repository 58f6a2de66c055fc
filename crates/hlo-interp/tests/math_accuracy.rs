//! The math accuracy suite on the interpreter: every case of `hlo-samples/math/` evaluated
//! in XLA:CPU's floating-point environment (`Options::xla_cpu()`) and compared with JAX's
//! outputs within the per-function ulp bounds of docs/numerics.md (special values exactly).
//!
//! The interpreter computes with the host's libm (correctly rounded or within an ulp), so its
//! bounds are XLA:CPU's own error: JAX's `cbrt`, `expm1`, `tanh`, `erf` and the functions
//! JAX composes from them are a few ulps from the exact result.
//!
//! `MATH_SUITE_REPORT=1` prints the largest distance measured per case.

mod math_suite;

use hlo_interp::{evaluate_with, literal_from_bytes, literal_to_bytes, Options};
use math_suite::{compare, report, Ty};

/// The guaranteed bound in ulps of the case's type for `function` in the interpreter,
/// against JAX's result (docs/numerics.md, "interpreter" column).
fn bound(function: &str, ty: Ty) -> u64 {
    if matches!(ty, Ty::F16 | Ty::BF16) {
        return if matches!(function, "cbrt" | "expm1" | "log1p") { 3 } else { 1 };
    }
    if ty == Ty::F64 {
        return match function {
            "exp" | "log" | "sin" | "cos" | "tan" | "logistic" | "rsqrt" | "pow" | "atan2" => 2,
            "tanh" | "erf" | "expm1" => 4,
            // XLA:CPU's own f64 cbrt and log1p (near -0.4) are this far from exact.
            "cbrt" | "log1p" => 128,
            _ => 0,
        };
    }
    match function {
        "abs" | "negate" | "sign" | "floor" | "ceil" | "round_even" | "round_afz" | "is_finite" | "add"
        | "subtract" | "multiply" | "divide" | "max" | "min" | "rem" | "sqrt" => 0,
        "rsqrt" | "log" | "sin" | "cos" | "atan" | "acos" | "atan2" | "tan" | "pow" => 2,
        "log2" | "log10" | "log1p" | "asin" | "acosh" | "asinh" | "atanh" | "logistic" => 3,
        "exp" | "expm1" | "tanh" | "erf" | "sinh" | "cosh" | "exp2" => 6,
        "cbrt" => 16,
        "erfc" | "erf_inv" => 8,
        "digamma" => 512,
        "lgamma" => 1024,
        other => panic!("no ulp bound for {other}"),
    }
}

#[test]
fn math_suite_matches_jax_in_the_interpreter() {
    let verbose = std::env::var_os("MATH_SUITE_REPORT").is_some();
    let mut failed = Vec::new();
    for case in math_suite::cases() {
        let text = std::fs::read_to_string(case.dir.join("module.hlo")).unwrap();
        let module = hlo_parse::parse_module(&text).unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
        let params = module.entry_comp().param_shapes();
        let args: Vec<_> = params
            .iter()
            .zip(&case.inputs)
            .map(|(shape, bytes)| literal_from_bytes(shape.as_array().expect("array"), bytes).expect("input"))
            .collect();
        let out = evaluate_with(&module, &args, &Options::xla_cpu()).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let got = literal_to_bytes(&out).expect("array result");
        let o = compare(&case, &got, bound(&case.function, case.ty));
        if verbose {
            println!("{}: max {} ulp, {} unchecked", case.name, o.max_ulp, o.unchecked);
        }
        if !o.failures.is_empty() {
            failed.push((case.name.clone(), o));
        }
    }
    assert!(failed.is_empty(), "cases outside their bound:\n{}", report(&failed));
}
