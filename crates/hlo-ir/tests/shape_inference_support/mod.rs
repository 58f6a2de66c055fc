//! Test support shared by `shape_inference.rs` and `verify.rs`: readers for the few bits of HLO
//! text the tables use (shapes, signatures, windows, `dim_labels`), so cases read like HLO dumps.
//!
//! These readers panic on malformed input: they only ever see the tests' own literals.
#![allow(dead_code)]

use hlo_ir::{ConvDims, DType, ProgramShape, Shape, Window, WindowDim};

/// Reads `f32[2,3]`, `f32[2,3]{1,0}`, `token[]`, `(s32[], (f32[2], pred[]))` or `()`.
pub fn parse_shape(text: &str) -> Shape {
    let (shape, rest) = shape_prefix(text.trim());
    assert!(rest.trim().is_empty(), "trailing text {rest:?} in shape {text:?}");
    shape
}

/// Reads `(f32[], f32[]) -> f32[]`: the parenthesised parameter list, then the result.
pub fn parse_signature(text: &str) -> ProgramShape {
    let (params, rest) = shape_prefix(text.trim());
    let result = rest.trim().strip_prefix("->").unwrap_or_else(|| panic!("no -> in signature {text:?}"));
    let Shape::Tuple(params) = params else { panic!("parameters of {text:?} must be parenthesised") };
    ProgramShape { params, result: parse_shape(result) }
}

fn shape_prefix(text: &str) -> (Shape, &str) {
    let text = text.trim_start();
    if let Some(mut rest) = text.strip_prefix('(') {
        let mut elems = Vec::new();
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix(')') {
                return (Shape::Tuple(elems), after);
            }
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
                continue;
            }
            let (elem, after) = shape_prefix(rest);
            elems.push(elem);
            rest = after;
        }
    }
    let open = text.find('[').unwrap_or_else(|| panic!("no [ in shape {text:?}"));
    let close = text.find(']').unwrap_or_else(|| panic!("no ] in shape {text:?}"));
    let name = &text[..open];
    let mut rest = &text[close + 1..];
    if let Some(after) = rest.strip_prefix('{') {
        rest = &after[after.find('}').expect("closing }") + 1..];
    }
    if name == "token" {
        return (Shape::Token, rest);
    }
    let dtype = DType::from_name(name).unwrap_or_else(|| panic!("unknown element type {name:?}"));
    let dims_text = &text[open + 1..close];
    let dims: Vec<i64> = if dims_text.is_empty() {
        Vec::new()
    } else {
        dims_text.split(',').map(|d| d.trim().parse().expect("dimension")).collect()
    };
    (Shape::array(dtype, dims), rest)
}

/// Reads `size=3x3 stride=2x2 pad=0_1x0_1 lhs_dilate=2x2 rhs_dilate=2x2`.
pub fn window(text: &str) -> Window {
    let mut dims: Vec<WindowDim> = Vec::new();
    for item in text.split_whitespace() {
        let (key, value) = item.split_once('=').expect("key=value");
        for (i, part) in value.split('x').enumerate() {
            if dims.len() <= i {
                dims.push(WindowDim::default());
            }
            let d = &mut dims[i];
            let num = |s: &str| s.parse::<i64>().expect("number");
            match key {
                "size" => d.size = num(part),
                "stride" => d.stride = num(part),
                "lhs_dilate" => d.base_dilation = num(part),
                "rhs_dilate" => d.window_dilation = num(part),
                "pad" => {
                    let (lo, hi) = part.split_once('_').expect("lo_hi");
                    d.padding_low = num(lo);
                    d.padding_high = num(hi);
                }
                _ => panic!("unknown window key {key}"),
            }
        }
    }
    Window { dims }
}

/// Reads `b01f_01io->b01f`.
pub fn conv_dims(text: &str) -> ConvDims {
    let (lhs, out) = text.split_once("->").expect("->");
    let (input, kernel) = lhs.split_once('_').expect("_");
    let mut d = ConvDims::default();
    let spatial = |labels: &str| -> Vec<i64> {
        let mut sp: Vec<(u32, i64)> =
            labels.chars().enumerate().filter_map(|(i, c)| c.to_digit(10).map(|n| (n, i as i64))).collect();
        sp.sort();
        sp.into_iter().map(|(_, i)| i).collect()
    };
    let pos = |labels: &str, c: char| labels.find(c).unwrap_or_else(|| panic!("no {c} in {labels}")) as i64;
    d.input_batch = pos(input, 'b');
    d.input_feature = pos(input, 'f');
    d.input_spatial = spatial(input);
    d.kernel_input_feature = pos(kernel, 'i');
    d.kernel_output_feature = pos(kernel, 'o');
    d.kernel_spatial = spatial(kernel);
    d.output_batch = pos(out, 'b');
    d.output_feature = pos(out, 'f');
    d.output_spatial = spatial(out);
    d
}
