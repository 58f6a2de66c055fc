//! Ops JAX rarely emits, written by hand as StableHLO text: tuples, `if`, and a `while` whose
//! body uses a value from above (StableHLO regions may capture; HLO's may not).

use hlo_ir::{Literal, LiteralData};

const PROGRAM: &str = r#"
module @m {
  func.func public @main(%arg0: tensor<f32>, %arg1: tensor<i1>) -> (tensor<f32>, tensor<f32>) {
    %c = stablehlo.constant dense<2.000000e+00> : tensor<f32>
    %lim = stablehlo.constant dense<1.000000e+01> : tensor<f32>
    %t = "stablehlo.tuple"(%arg0, %c) : (tensor<f32>, tensor<f32>) -> tuple<tensor<f32>, tensor<f32>>
    %g = "stablehlo.get_tuple_element"(%t) <{index = 1 : i32}> : (tuple<tensor<f32>, tensor<f32>>) -> tensor<f32>
    %i = "stablehlo.if"(%arg1) ({
      %m = stablehlo.multiply %arg0, %g : tensor<f32>
      stablehlo.return %m : tensor<f32>
    }, {
      %s = stablehlo.subtract %arg0, %g : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }) : (tensor<i1>) -> tensor<f32>
    %w = stablehlo.while(%x = %arg0) : tensor<f32>
    cond {
      %lt = stablehlo.compare  LT, %x, %lim,  FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
      stablehlo.return %lt : tensor<i1>
    } do {
      // %g is captured from above.
      %n = stablehlo.add %x, %g : tensor<f32>
      stablehlo.return %n : tensor<f32>
    }
    return %i, %w : tensor<f32>, tensor<f32>
  }
}
"#;

fn run(x: f32, p: bool) -> Vec<f32> {
    let module = hlo_stablehlo::parse_text(PROGRAM).unwrap();
    hlo_ir::verify::verify(&module).unwrap_or_else(|e| panic!("{e}\n{}", hlo_ir::print_module(&module)));
    let out = hlo_interp::evaluate(&module, &[Literal::scalar_f32(x), Literal::scalar_pred(p)]).unwrap();
    let LiteralData::Tuple(elems) = out.data else { panic!("a tuple result") };
    elems
        .iter()
        .map(|e| match e.array_data() {
            Some(hlo_ir::ArrayData::F32(v)) => v[0],
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn tuple_if_and_capturing_while() {
    assert_eq!(run(1.5, true), vec![3.0, 11.5]);
    assert_eq!(run(1.5, false), vec![-0.5, 11.5]);
}

/// `donate_argnums` marks `main`'s arguments; they become XLA's `input_output_alias` and `buffer_donor`.
#[test]
fn donated_arguments_become_aliases() {
    let step = r#"
module @jit_step {
  func.func public @main(%arg0: tensor<4x2xf32> {tf.aliasing_output = 1 : i32}, %arg1: tensor<4x2xf32> {jax.buffer_donor = true}, %arg2: tensor<f32>) -> (tensor<4x2xf32>, tensor<4x2xf32>) {
    return %arg1, %arg0 : tensor<4x2xf32>, tensor<4x2xf32>
  }
}
"#;
    let module = hlo_stablehlo::parse_text(step).unwrap();
    let attr = |name: &str| module.attrs.other.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(attr("input_output_alias"), Some("{ {1}: (0, {}, may-alias) }"));
    assert_eq!(attr("buffer_donor"), Some("{ (1, {}) }"));

    let single = r#"
func.func public @main(%arg0: tensor<4xf32> {tf.aliasing_output = 0 : i32}) -> tensor<4xf32> {
  return %arg0 : tensor<4xf32>
}
"#;
    let module = hlo_stablehlo::parse_text(single).unwrap();
    assert_eq!(module.attrs.other, vec![("input_output_alias".to_string(), "{ {}: (0, {}, may-alias) }".to_string())]);
    let printed = hlo_ir::print_module(&module);
    assert!(printed.contains("input_output_alias={ {}: (0, {}, may-alias) }"), "{printed}");
}

/// CHLO's hyperbolic and inverse trigonometric functions reach a plugin as `mhlo.NAME` custom calls.
#[test]
fn chlo_custom_calls_become_unary_ops() {
    type Case = (&'static str, fn(f32) -> f32, f32);
    let cases: [Case; 7] = [
        ("sinh", f32::sinh, 0.7),
        ("cosh", f32::cosh, 0.7),
        ("asin", f32::asin, 0.3),
        ("acos", f32::acos, 0.3),
        ("asinh", f32::asinh, 2.5),
        ("acosh", f32::acosh, 2.5),
        ("atanh", f32::atanh, 0.4),
    ];
    for (name, f, x) in cases {
        let text = format!(
            "func.func public @main(%arg0: tensor<f32>) -> tensor<f32> {{\n  \
             %0 = stablehlo.custom_call @mhlo.{name}(%arg0) {{mhlo.attributes = {{}}, mhlo.version = 1 : i64}} : (tensor<f32>) -> tensor<f32>\n  \
             return %0 : tensor<f32>\n}}\n"
        );
        let module = hlo_stablehlo::parse_text(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let printed = hlo_ir::print_module(&module);
        assert!(!printed.contains("custom-call"), "{name}:\n{printed}");
        let out = hlo_interp::evaluate(&module, &[Literal::scalar_f32(x)]).unwrap();
        let Some(hlo_ir::ArrayData::F32(v)) = out.array_data() else { panic!("{name}: an f32 result") };
        assert!((v[0] - f(x)).abs() <= 1e-6 * f(x).abs().max(1.0), "{name}({x}) = {}, want {}", v[0], f(x));
    }
}
