//! Errors name the op, the position and what was expected.

fn text_err(src: &str) -> String {
    hlo_stablehlo::parse_text(src).unwrap_err().to_string()
}

fn module(body: &str, arg: &str, ret: &str) -> String {
    format!("module @m {{\n  func.func public @main(%arg0: {arg}) -> ({ret}) {{\n{body}\n  }}\n}}\n")
}

#[test]
fn unsupported_op_is_named() {
    let src = module(
        "    %0 = \"stablehlo.uniform_quantize\"(%arg0) : (tensor<4xf32>) -> tensor<4xf32>\n    return %0 : tensor<4xf32>",
        "tensor<4xf32>",
        "tensor<4xf32>",
    );
    assert_eq!(text_err(&src), "3:5: unsupported: stablehlo.uniform_quantize (no HLO lowering for this op)");
}

#[test]
fn dynamic_shapes_are_unsupported() {
    let src = module("    return %arg0 : tensor<?xf32>", "tensor<?xf32>", "tensor<?xf32>");
    assert_eq!(text_err(&src), "2:3: unsupported: func.func (dynamic dimensions)");
}

#[test]
fn shape_mismatch_is_reported_at_the_op() {
    let src = module(
        "    %0 = stablehlo.add %arg0, %arg0 : (tensor<4xf32>, tensor<4xf32>) -> tensor<5xf32>\n    return %0 : tensor<5xf32>",
        "tensor<4xf32>",
        "tensor<5xf32>",
    );
    assert_eq!(text_err(&src), "3:5: stablehlo.add: declares f32[5], but its operands give f32[4]");
}

#[test]
fn text_syntax_errors_have_line_and_column() {
    let src = module(
        "    %0 = stablehlo.add %arg0, %arg0 : tensor<4xq32>\n    return %0 : tensor<4xf32>",
        "tensor<4xf32>",
        "tensor<4xf32>",
    );
    assert_eq!(text_err(&src), "3:48: expected a type, found `q32>`");
}

#[test]
fn missing_main_is_an_error() {
    let src =
        "module {\n  func.func public @f(%arg0: tensor<f32>) -> tensor<f32> {\n    return %arg0 : tensor<f32>\n  }\n}";
    assert_eq!(text_err(src), "byte 0: func: no function named @main");
}

#[test]
fn fft_and_custom_call_lower() {
    let src = module(
        "    %0 = stablehlo.fft %arg0, type =  FFT, length = [4] : (tensor<4xcomplex<f32>>) -> tensor<4xcomplex<f32>>\n    \
         %1:2 = stablehlo.custom_call @my_target(%0) {backend_config = \"cfg\", has_side_effect = true} : (tensor<4xcomplex<f32>>) -> (tensor<4xcomplex<f32>>, tensor<i32>)\n    \
         return %1#0 : tensor<4xcomplex<f32>>",
        "tensor<4xcomplex<f32>>",
        "tensor<4xcomplex<f32>>",
    );
    let m = hlo_stablehlo::parse_text(&src).unwrap();
    hlo_ir::verify::verify(&m).unwrap();
    let text = hlo_ir::print_module(&m);
    assert!(text.contains("fft_type=FFT"), "{text}");
    assert!(text.contains("custom_call_target=\"my_target\""), "{text}");
    assert!(text.contains("custom_call_has_side_effect=true"), "{text}");
    assert!(text.contains("backend_config=\"cfg\""), "{text}");
}

#[test]
fn supported_versions_are_ordered() {
    let (lo, hi) = hlo_stablehlo::supported_versions();
    assert!(lo < hi);
}
