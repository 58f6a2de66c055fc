//! The blocked convolution kernel (`emit/conv.rs`) on lavapipe against the interpreter: feature
//! counts around its 16-feature block (1 to 33), position counts around the 64-invocation
//! workgroup and its 1-4 positions each, every dim_labels layout JAX emits (NHWC, NCHW, the
//! weight gradient's `f01b_i01o->01bf`, feature-first outputs), 1-3 spatial dimensions, strides,
//! asymmetric and negative padding, input dilation (transposed convolutions), kernel dilation and
//! reversal, narrow float types, and infinities and NaNs next to padding (a padded tap adds
//! nothing, as in the per-element kernel and the interpreter).

mod common;
use common::*;
use hlo_spirv::KernelKind;

fn f32_values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|k| (((k as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

fn bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn elements(shape: &str) -> usize {
    let dims = &shape[shape.find('[').expect("[") + 1..shape.find(']').expect("]")];
    dims.split(',').map(|d| d.trim().parse::<usize>().expect("dim")).product()
}

/// The module `ROOT c = {out} convolution(x, w), {attrs}` over `x: {input}` and `w: {kernel}`.
fn conv_module(input: &str, kernel: &str, out: &str, attrs: &str) -> String {
    format!(
        "HloModule m\nENTRY e {{\n  x = {input} parameter(0)\n  w = {kernel} parameter(1)\n  \
         ROOT c = {out} convolution(x, w), {attrs}\n}}\n"
    )
}

/// Compiles and runs `hlo`, requires a blocked convolution kernel and compares every output
/// with the interpreter.
fn blocked_matches_interp(hlo: &str, inputs: Vec<Vec<u8>>, tol: f64) {
    matches_interp(hlo, inputs, tol, true)
}

/// [`blocked_matches_interp`], requiring the blocked kernel only when `blocked`.
fn matches_interp(hlo: &str, inputs: Vec<Vec<u8>>, tol: f64, blocked: bool) {
    let c = compile_checked(&parse_and_fuse(hlo));
    let kinds: Vec<KernelKind> = c.kernels_info.iter().map(|k| k.kind).collect();
    let has_blocked = kinds.contains(&KernelKind::Convolution);
    assert_eq!(has_blocked, blocked, "blocked convolution kernel expected: {blocked} ({kinds:?})\n{hlo}");
    let got = run_vulkan(&vulkan(), &c, &inputs);
    let want = run_interp(&parse(hlo), &inputs);
    for (k, io) in c.outputs.iter().enumerate() {
        compare(io.dtype, &got[k], &want[k], tol).unwrap_or_else(|e| panic!("output {k}: {e}\n{hlo}"));
    }
}

fn check(input: &str, kernel: &str, out: &str, attrs: &str) {
    check_blocked(input, kernel, out, attrs, true)
}

fn check_blocked(input: &str, kernel: &str, out: &str, attrs: &str, blocked: bool) {
    let hlo = conv_module(input, kernel, out, attrs);
    let inputs = vec![bytes(&f32_values(elements(input), 1)), bytes(&f32_values(elements(kernel), 2))];
    matches_interp(&hlo, inputs, 1e-5, blocked);
}

#[test]
fn features_and_positions_around_the_blocks() {
    for n in [8, 63, 64, 65, 129, 257] {
        for f in [1, 4, 12, 16, 17, 20, 33] {
            // Convolutions under 1024 multiply-adds keep the per-element kernel.
            check_blocked(
                &format!("f32[1,{n},3]"),
                &format!("f32[3,3,{f}]"),
                &format!("f32[1,{n},{f}]"),
                "window={size=3 pad=1_1}, dim_labels=b0f_0io->b0f",
                n * f * 9 >= 1024,
            );
        }
    }
}

#[test]
fn layouts_strides_padding_and_dilations() {
    let cases = [
        // NHWC, same padding.
        (
            "f32[2,10,9,3]",
            "f32[3,3,3,16]",
            "f32[2,10,9,16]",
            "window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_01io->b01f",
        ),
        // Strided with asymmetric padding.
        (
            "f32[3,17,17,4]",
            "f32[3,3,4,8]",
            "f32[3,8,8,8]",
            "window={size=3x3 stride=2x2 pad=0_1x1_0}, dim_labels=b01f_01io->b01f",
        ),
        // NCHW with a 5x5 kernel.
        (
            "f32[2,3,12,12]",
            "f32[6,3,5,5]",
            "f32[2,6,12,12]",
            "window={size=5x5 pad=2_2x2_2}, dim_labels=bf01_oi01->bf01",
        ),
        // A transposed convolution: the input dilated.
        (
            "f32[1,7,7,4]",
            "f32[3,3,4,5]",
            "f32[1,14,14,5]",
            "window={size=3x3 pad=1_2x1_2 lhs_dilate=2x2}, dim_labels=b01f_01io->b01f",
        ),
        // A dilated, reversed kernel.
        (
            "f32[2,11,11,2]",
            "f32[3,3,2,7]",
            "f32[2,7,7,7]",
            "window={size=3x3 rhs_dilate=2x2 rhs_reversal=1x1}, dim_labels=b01f_01io->b01f",
        ),
        // The weight gradient JAX emits: images as features, channels as the batch.
        (
            "f32[8,16,16,3]",
            "f32[8,16,16,8]",
            "f32[3,3,3,8]",
            "window={size=16x16 pad=1_1x1_1}, dim_labels=f01b_i01o->01bf",
        ),
        // Features first in the output.
        ("f32[2,10,9,3]", "f32[3,3,3,6]", "f32[6,10,9,2]", "window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_01io->f01b"),
        // Negative padding crops the input.
        ("f32[1,9,9,2]", "f32[2,2,2,3]", "f32[1,7,7,3]", "window={size=2x2 pad=-1_0x0_-1}, dim_labels=b01f_01io->b01f"),
        // The input gradient JAX emits (`b01f_01oi`, input features last in both operands: four
        // per vec4 load), plain, transposed (the input dilated) and strided.
        ("f32[2,8,8,16]", "f32[3,3,8,16]", "f32[2,8,8,8]", "window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_01oi->b01f"),
        (
            "f32[2,5,5,12]",
            "f32[3,3,6,12]",
            "f32[2,11,11,6]",
            "window={size=3x3 pad=2_2x2_2 lhs_dilate=2x2}, dim_labels=b01f_01oi->b01f",
        ),
        ("f32[1,9,9,4]", "f32[3,3,5,4]", "f32[1,4,4,5]", "window={size=3x3 stride=2x2}, dim_labels=b01f_01oi->b01f"),
        // Three spatial dimensions.
        (
            "f32[1,6,6,6,2]",
            "f32[3,3,3,2,4]",
            "f32[1,6,6,6,4]",
            "window={size=3x3x3 pad=1_1x1_1x1_1}, dim_labels=b012f_012io->b012f",
        ),
    ];
    for (input, kernel, out, attrs) in cases {
        check(input, kernel, out, attrs);
    }
}

/// Weight gradients (few outputs, long contractions) whose lanes split the contraction of one
/// block: contraction lengths around the 256 where splitting starts (255 stays a block per lane),
/// features and positions around the 4 x 4 block (1 to 9), the kernel read as vec4 (features a
/// multiple of 4) or not, both operands read as vec4 (input features last), padding, strides.
#[test]
fn weight_gradients_split_their_contraction() {
    let cases = [
        // (input, kernel, output, attrs, split expected)
        (
            "f32[8,16,16,3]",
            "f32[8,16,16,8]",
            "f32[3,3,3,8]",
            "window={size=16x16 pad=1_1x1_1}, dim_labels=f01b_i01o->01bf",
            true,
        ),
        (
            "f32[4,8,8,5]",
            "f32[4,8,8,6]",
            "f32[3,3,5,6]",
            "window={size=8x8 pad=1_1x1_1}, dim_labels=f01b_i01o->01bf",
            true,
        ),
        (
            "f32[4,8,8,1]",
            "f32[4,8,8,1]",
            "f32[3,3,1,1]",
            "window={size=8x8 pad=1_1x1_1}, dim_labels=f01b_i01o->01bf",
            true,
        ),
        ("f32[9,7,9,2]", "f32[9,5,7,9]", "f32[3,3,2,9]", "window={size=5x7}, dim_labels=f01b_i01o->01bf", true),
        // 255 and 256 products per output.
        ("f32[5,51,2]", "f32[5,51,4]", "f32[1,2,4]", "window={size=51}, dim_labels=f0b_i0o->0bf", false),
        ("f32[1,256,2]", "f32[1,256,4]", "f32[1,2,4]", "window={size=256}, dim_labels=f0b_i0o->0bf", true),
        // Strided, with the kernel's output features not last (no vec4 kernel reads).
        (
            "f32[2,20,20,4]",
            "f32[8,4,9,9]",
            "f32[2,5,5,8]",
            "window={size=9x9 stride=4x4 pad=4_4x4_4}, dim_labels=b01f_oi01->b01f",
            true,
        ),
        // Input features last in both operands: four per vec4 load of each.
        (
            "f32[1,4,4,16]",
            "f32[5,5,8,16]",
            "f32[1,4,4,8]",
            "window={size=5x5 pad=2_2x2_2}, dim_labels=b01f_01oi->b01f",
            true,
        ),
    ];
    for (input, kernel, out, attrs, split) in cases {
        let hlo = conv_module(input, kernel, out, attrs);
        let c = compile_checked(&parse_and_fuse(&hlo));
        let conv = c.kernels_info.iter().find(|k| k.kind == KernelKind::Convolution);
        let splits = conv.is_some_and(|k| k.why.contains("splitting the contraction"));
        assert_eq!(splits, split, "split contraction expected: {split} ({:?})\n{hlo}", conv.map(|k| &k.why));
        check_blocked(input, kernel, out, attrs, conv.is_some());
    }
}

/// NHWC convolutions whose input keeps a multiple of 4 features last and whose kernel keeps its
/// output features last (`b01f_01io`): four input features per vec4 input load, the kernel's
/// values as vec4s of output features. Input features 4 and 12, output features 4 to 20,
/// padding, strides, input and kernel dilation, and one that also splits its contraction.
#[test]
fn input_features_as_vec4() {
    let cases = [
        ("f32[2,8,8,4]", "f32[3,3,4,8]", "f32[2,8,8,8]", "window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_01io->b01f"),
        (
            "f32[2,9,7,12]",
            "f32[3,3,12,20]",
            "f32[2,5,4,20]",
            "window={size=3x3 stride=2x2 pad=1_1x1_1}, dim_labels=b01f_01io->b01f",
        ),
        (
            "f32[1,6,6,4]",
            "f32[3,3,4,4]",
            "f32[1,13,13,4]",
            "window={size=3x3 pad=2_2x2_2 lhs_dilate=2x2}, dim_labels=b01f_01io->b01f",
        ),
        (
            "f32[2,10,10,8]",
            "f32[3,3,8,12]",
            "f32[2,6,6,12]",
            "window={size=3x3 rhs_dilate=2x2}, dim_labels=b01f_01io->b01f",
        ),
        ("f32[3,12,8]", "f32[5,8,16]", "f32[3,12,16]", "window={size=5 pad=2_2}, dim_labels=b0f_0io->b0f"),
        // One position of a long contraction: the lanes split it too.
        ("f32[1,16,16,8]", "f32[16,16,8,4]", "f32[1,1,1,4]", "window={size=16x16}, dim_labels=b01f_01io->b01f"),
    ];
    for (input, kernel, out, attrs) in cases {
        let hlo = conv_module(input, kernel, out, attrs);
        let c = compile_checked(&parse_and_fuse(&hlo));
        let why = c.kernels_info.iter().find(|k| k.kind == KernelKind::Convolution).map(|k| k.why.clone());
        assert!(
            why.as_deref().is_some_and(|w| w.contains("four input features per vec4 input load")),
            "{why:?}\n{hlo}"
        );
        check(input, kernel, out, attrs);
    }
}

#[test]
fn grouped_convolutions_keep_the_per_element_kernel() {
    // Depthwise (feature groups) and the batch-grouped weight gradient of a grouped convolution.
    check_blocked(
        "f32[2,10,10,6]",
        "f32[3,3,1,6]",
        "f32[2,10,10,6]",
        "window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_01io->b01f, feature_group_count=6",
        false,
    );
    check_blocked(
        "f32[4,8,8,6]",
        "f32[4,6,6,6]",
        "f32[3,3,1,6]",
        "window={size=6x6}, dim_labels=f01b_i01o->01bf, batch_group_count=6",
        false,
    );
}

#[test]
fn narrow_types() {
    for t in ["bf16", "f16"] {
        let hlo = format!(
            "HloModule m\nENTRY e {{\n  x = f32[2,10,10,4] parameter(0)\n  w = f32[3,3,4,8] parameter(1)\n  \
             xh = {t}[2,10,10,4] convert(x)\n  wh = {t}[3,3,4,8] convert(w)\n  \
             c = {t}[2,10,10,8] convolution(xh, wh), window={{size=3x3 pad=1_1x1_1}}, dim_labels=b01f_01io->b01f\n  \
             ROOT o = f32[2,10,10,8] convert(c)\n}}\n"
        );
        blocked_matches_interp(&hlo, vec![bytes(&f32_values(800, 3)), bytes(&f32_values(288, 4))], 1e-2);
    }
}

#[test]
fn special_values_next_to_padding() {
    // Infinities and NaNs in the kernel meet padded taps (which add nothing, not 0 * inf) and in
    // the input meet real ones; a subnormal input reads as zero.
    let mut x = f32_values(2 * 12 * 12 * 3, 5);
    x[7] = f32::NAN;
    x[3 * 12 * 5 + 4] = f32::INFINITY;
    x[100] = 1e-40;
    let mut w = f32_values(3 * 3 * 3 * 8, 6);
    w[0] = f32::INFINITY;
    w[8 * 3 * 4 + 2] = f32::NEG_INFINITY;
    let hlo = conv_module(
        "f32[2,12,12,3]",
        "f32[3,3,3,8]",
        "f32[2,12,12,8]",
        "window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_01io->b01f",
    );
    blocked_matches_interp(&hlo, vec![bytes(&x), bytes(&w)], 1e-5);
}

/// Grouped convolutions run as the per-element kernel, one invocation per four outputs, each
/// looping over the kernel's input features times its taps; past lavapipe's loop budget
/// `split-reductions` sums them over chunks of input features. XLA's DepthwiseBatchOuterDot
/// (conv_depthwise_backprop_filter_test.cc: 8 x 30 x 30 x 3 per output) was refused, and with 4
/// features (10,800 per output) the kernel passed the budget check but lavapipe cut it short.
#[test]
fn long_grouped_convolutions_split_over_features() {
    let hlo = "HloModule main, entry_computation_layout={(f32[8,30,1,64,5]{3,0,2,1,4},f32[8,30,30,64,3]{3,0,2,1,4})->f32[30,30,64,1,11]{2,3,1,0,4}}\n\
               ENTRY main {\n  p0 = f32[8,30,1,64,5] parameter(0)\n  p1 = f32[8,30,30,64,3] parameter(1)\n  \
               ROOT conv.1 = convolution(p0, p1), window={size=30x30x3 pad=0_0x29_29x0_0 lhs_dilate=30x1x3 rhs_dilate=29x1x1}, \
               dim_labels=f01b2_i01o2->01fb2, batch_group_count=64\n}\n";
    let inputs = vec![bytes(&f32_values(8 * 30 * 64 * 5, 1)), bytes(&f32_values(8 * 30 * 30 * 64 * 3, 2))];
    matches_interp(hlo, inputs, 1e-5, false);
    let attrs = "window={size=30x30x3 pad=0_0x29_29x0_0 lhs_dilate=30x1x1 rhs_dilate=29x1x1}, \
                 dim_labels=f01b2_i01o2->01fb2, batch_group_count=2";
    check_blocked("f32[4,30,1,2,3]", "f32[4,30,30,2,3]", "f32[30,30,2,1,1]", attrs, false);
    // Feature groups: two groups of 20 features, chunks of 4 from each.
    let attrs = "window={size=30x30}, dim_labels=b01f_01io->b01f, feature_group_count=2";
    check_blocked("f32[2,32,32,40]", "f32[30,30,20,4]", "f32[2,3,3,4]", attrs, false);
}

/// The loop budget: lavapipe stops a shader's loops after 65,535 back-edges, and its count is
/// higher than ours for some nests. A per-element grouped convolution of `features` x `taps` x
/// `taps` x 3, four outputs per invocation, compiled as it is (no split): 4 x 30 x 30 x 3,
/// counted at 58,096, gave wrong results with exit 0; now the sentinel that kernels near the
/// budget end with fails its run instead. The nests the driver lets finish match the interpreter.
#[test]
fn loop_budget_overruns_fail_the_run() {
    let ctx = vulkan();
    let target = target_from_caps(ctx.caps());
    if target.max_loop_iterations.is_none() {
        return;
    }
    for (features, taps, fits) in [(4usize, 28usize, true), (8, 20, true), (3, 30, true), (4, 30, false)] {
        let (f, s) = (features, taps);
        let lhs = format!("f32[{f},{s},1,2,3]");
        let rhs = format!("f32[{f},{s},{s},2,3]");
        let out = format!("f32[{s},{s},2,1,1]");
        let hlo = format!(
            "HloModule m\n\nconv {{\n  p0 = {lhs} parameter(0)\n  p1 = {rhs} parameter(1)\n  \
             ROOT c = {out} convolution(p0, p1), window={{size={s}x{s}x3 pad=0_0x{p}_{p}x0_0 lhs_dilate={s}x1x1 \
             rhs_dilate={p}x1x1}}, dim_labels=f01b2_i01o2->01fb2, batch_group_count=2\n}}\n\n\
             ENTRY e {{\n  p0 = {lhs} parameter(0)\n  p1 = {rhs} parameter(1)\n  \
             ROOT r = {out} fusion(p0, p1), kind=kLoop, calls=conv\n}}\n",
            p = s - 1
        );
        let m = parse(&hlo);
        let c = hlo_spirv::compile(&m, &target).unwrap_or_else(|e| panic!("{f} x {s}: {e}"));
        check_spirv(&c);
        let inputs = vec![bytes(&f32_values(f * s * 6, 1)), bytes(&f32_values(f * s * s * 6, 2))];
        let mut exe = hlo_vulkan::Executable::new(&ctx, &c.program, None).expect("executable");
        let dev: Vec<Vec<u8>> = c.inputs.iter().zip(&inputs).map(|(io, h)| io.to_device(h)).collect();
        let refs: Vec<&[u8]> = dev.iter().map(|v| v.as_slice()).collect();
        let result = exe.run(&refs);
        assert!(ctx.take_validation_messages().is_empty(), "{f} x {s}: validation messages");
        match result {
            Ok(outs) if fits => {
                let got = c.outputs[0].from_device(&outs[0]);
                let want = run_interp(&m, &inputs);
                compare(hlo_ir::DType::F32, &got, &want[0], 1e-5).unwrap_or_else(|e| panic!("{f} x {s}: {e}"));
            }
            Ok(_) => panic!("{f} x {s}: ran to the end, but its loops ran past the budget"),
            Err(e) if !fits => assert!(e.to_string().contains("loop"), "{f} x {s}: {e}"),
            Err(e) => panic!("{f} x {s}: {e}"),
        }
    }
}
