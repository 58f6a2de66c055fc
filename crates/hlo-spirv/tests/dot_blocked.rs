//! The blocked dot kernel (`emit/dot.rs`) on lavapipe against the interpreter: output sizes that
//! straddle its blocks (rows 2 to 100 around the 16-row block, columns around the 64-invocation
//! workgroup and its 1-4 columns each), contractions of 1 to 300 steps (around the subgroup's
//! staged chunk of 8), batch dimensions, contracting dimensions in every position, two
//! contracting dimensions, outputs with few columns (run swapped), fused prologues (a transpose, a broadcast), bf16 and f16, and
//! special values (inf, NaN, subnormals flushed as XLA:CPU does).

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

/// Compiles and runs `hlo` (inputs f32 of the given sizes), requires a blocked dot kernel and
/// compares every output with the interpreter.
fn blocked_matches_interp(hlo: &str, inputs: Vec<Vec<u8>>, tol: f64) {
    blocked_matches_interp_why(hlo, inputs, tol, "blocked dot");
}

/// [`blocked_matches_interp`], also requiring `why` in the dot kernel's reason.
fn blocked_matches_interp_why(hlo: &str, inputs: Vec<Vec<u8>>, tol: f64, why: &str) {
    let c = compile_checked(&parse_and_fuse(hlo));
    let dot = c.kernels_info.iter().find(|k| k.kind == KernelKind::Dot);
    assert!(dot.is_some_and(|k| k.why.contains(why)), "no dot kernel with `{why}`: {:?}\n{hlo}", c.kernels_info);
    let kinds: Vec<KernelKind> = c.kernels_info.iter().map(|k| k.kind).collect();
    assert!(kinds.contains(&KernelKind::Dot), "no blocked dot kernel ({kinds:?})\n{hlo}");
    let got = run_vulkan(&vulkan(), &c, &inputs);
    let want = run_interp(&parse(hlo), &inputs);
    for (k, io) in c.outputs.iter().enumerate() {
        compare(io.dtype, &got[k], &want[k], tol).unwrap_or_else(|e| panic!("output {k}: {e}\n{hlo}"));
    }
}

#[test]
fn matmul_shapes_around_the_blocks() {
    // Outputs with fewer than 64 columns and more rows run swapped (rows along the lanes).
    for (m, k, n) in [
        (2, 1, 512),
        (7, 8, 65),
        (16, 9, 64),
        (17, 100, 257),
        (100, 300, 9),
        (33, 64, 200),
        (128, 7, 130),
        (500, 17, 3),
        (128, 512, 10),
        (64, 9, 63),
    ] {
        let hlo = format!(
            "HloModule m\nENTRY e {{\n  a = f32[{m},{k}] parameter(0)\n  b = f32[{k},{n}] parameter(1)\n  \
             ROOT d = f32[{m},{n}] dot(a, b), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}\n}}\n"
        );
        blocked_matches_interp(&hlo, vec![bytes(&f32_values(m * k, 1)), bytes(&f32_values(k * n, 2))], 1e-5);
    }
}

/// Few outputs with a long contraction: a subgroup's lanes split each 4 x 4 block's
/// contraction (`dot::split_fold`). Contractions around the 256 where that starts (255 keeps a
/// block per lane), outputs around the block (2 to 9 rows and columns, swapped ones), a batch,
/// a k-major lhs (a weight gradient), vec4 columns and not, and a second contracting dimension.
#[test]
fn long_contractions_of_few_outputs_split_between_lanes() {
    let dot = |m: usize, k: usize, n: usize| {
        format!(
            "HloModule m\nENTRY e {{\n  a = f32[{m},{k}] parameter(0)\n  b = f32[{k},{n}] parameter(1)\n  \
             ROOT d = f32[{m},{n}] dot(a, b), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}\n}}\n"
        )
    };
    for (m, k, n, split) in [
        (8, 255, 8, false),
        (8, 256, 8, true),
        (2, 1000, 9, true),
        (9, 300, 12, true),
        (128, 512, 10, true),
        (5, 700, 64, true),
    ] {
        let hlo = dot(m, k, n);
        let inputs = vec![bytes(&f32_values(m * k, 21)), bytes(&f32_values(k * n, 22))];
        let why = if split { "splitting the contraction" } else { "per invocation" };
        blocked_matches_interp_why(&hlo, inputs, 1e-5, why);
    }
    // A weight gradient: the lhs contracted over its rows.
    let hlo = "HloModule m\nENTRY e {\n  a = f32[600,10] parameter(0)\n  b = f32[600,16] parameter(1)\n  \
               ROOT d = f32[10,16] dot(a, b), lhs_contracting_dims={0}, rhs_contracting_dims={0}\n}\n";
    let inputs = vec![bytes(&f32_values(6000, 23)), bytes(&f32_values(9600, 24))];
    blocked_matches_interp_why(hlo, inputs, 1e-5, "splitting the contraction");
    // A batch, two contracting dimensions.
    let hlo = "HloModule m\nENTRY e {\n  a = f32[3,6,20,30] parameter(0)\n  b = f32[3,20,30,9] parameter(1)\n  \
               ROOT d = f32[3,6,9] dot(a, b), lhs_batch_dims={0}, lhs_contracting_dims={2,3}, rhs_batch_dims={0}, \
               rhs_contracting_dims={1,2}\n}\n";
    let inputs = vec![bytes(&f32_values(3 * 6 * 600, 25)), bytes(&f32_values(3 * 600 * 9, 26))];
    blocked_matches_interp_why(hlo, inputs, 1e-5, "splitting the contraction");
}

/// Four consecutive columns per invocation read as one vec4 (an f32 rhs whose columns are its
/// last dimension, of a multiple of 4): full and partial last blocks, a batch, and an rhs that
/// is also the lhs.
#[test]
fn columns_read_four_at_a_time() {
    for (m, k, n) in [(128, 37, 256), (100, 300, 260), (16, 3, 2048), (33, 8, 516)] {
        let hlo = format!(
            "HloModule m\nENTRY e {{\n  a = f32[{m},{k}] parameter(0)\n  b = f32[{k},{n}] parameter(1)\n  \
             ROOT d = f32[{m},{n}] dot(a, b), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}\n}}\n"
        );
        let inputs = vec![bytes(&f32_values(m * k, 11)), bytes(&f32_values(k * n, 12))];
        blocked_matches_interp_why(&hlo, inputs, 1e-5, "vec4");
    }
    let hlo = "HloModule m\nENTRY e {\n  a = f32[2,64,40] parameter(0)\n  b = f32[2,40,400] parameter(1)\n  \
               ROOT d = f32[2,64,400] dot(a, b), lhs_batch_dims={0}, lhs_contracting_dims={2}, rhs_batch_dims={0}, \
               rhs_contracting_dims={1}\n}\n";
    blocked_matches_interp_why(hlo, vec![bytes(&f32_values(5120, 13)), bytes(&f32_values(32000, 14))], 1e-5, "vec4");
    let hlo = "HloModule m\nENTRY e {\n  a = f32[256,256] parameter(0)\n  \
               ROOT d = f32[256,256] dot(a, a), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n}\n";
    blocked_matches_interp_why(hlo, vec![bytes(&f32_values(65536, 15))], 1e-5, "vec4");
    let mut b = f32_values(40 * 512, 16);
    b[5] = f32::INFINITY;
    b[512 * 3 + 6] = 1e-40; // subnormal through the vec4 load, read as zero
    b[512 * 7 + 7] = f32::NAN;
    let hlo = "HloModule m\nENTRY e {\n  a = f32[128,40] parameter(0)\n  b = f32[40,512] parameter(1)\n  \
               ROOT d = f32[128,512] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n}\n";
    blocked_matches_interp_why(hlo, vec![bytes(&f32_values(5120, 17)), bytes(&b)], 1e-5, "vec4");
}

#[test]
fn batches_and_contracting_dimensions_anywhere() {
    let cases = [
        // Batched, lhs contracting first, rhs contracting last.
        (
            "f32[3,40,20]",
            "f32[3,70,40]",
            "f32[3,20,70]",
            "lhs_batch_dims={0}, lhs_contracting_dims={1}, rhs_batch_dims={0}, rhs_contracting_dims={2}",
            3 * 40 * 20,
            3 * 70 * 40,
        ),
        // Batch dimension in the middle of the lhs, two free lhs dims.
        (
            "f32[5,2,9,24]",
            "f32[2,24,33]",
            "f32[2,5,9,33]",
            "lhs_batch_dims={1}, lhs_contracting_dims={3}, rhs_batch_dims={0}, rhs_contracting_dims={1}",
            5 * 2 * 9 * 24,
            2 * 24 * 33,
        ),
        // Batched and swapped (10 output columns), lhs contracting first.
        (
            "f32[2,40,130]",
            "f32[2,40,10]",
            "f32[2,130,10]",
            "lhs_batch_dims={0}, lhs_contracting_dims={1}, rhs_batch_dims={0}, rhs_contracting_dims={1}",
            2 * 40 * 130,
            2 * 40 * 10,
        ),
        // Two contracting dimensions.
        (
            "f32[30,4,6]",
            "f32[6,4,80]",
            "f32[30,80]",
            "lhs_contracting_dims={1,2}, rhs_contracting_dims={1,0}",
            30 * 24,
            24 * 80,
        ),
    ];
    for (ls, rs, out, dims, ln, rn) in cases {
        let hlo = format!(
            "HloModule m\nENTRY e {{\n  a = {ls} parameter(0)\n  b = {rs} parameter(1)\n  ROOT d = {out} dot(a, b), {dims}\n}}\n"
        );
        blocked_matches_interp(&hlo, vec![bytes(&f32_values(ln, 3)), bytes(&f32_values(rn, 4))], 1e-5);
    }
}

#[test]
fn fused_prologues_and_narrow_types() {
    // The rhs is a transpose of the parameter, the lhs a broadcast of a row: both fuse into the dot.
    let hlo = "HloModule m\nENTRY e {\n  a = f32[64] parameter(0)\n  ab = f32[48,64] broadcast(a), dimensions={1}\n  \
               b = f32[96,64] parameter(1)\n  bt = f32[64,96] transpose(b), dimensions={1,0}\n  \
               ROOT d = f32[48,96] dot(ab, bt), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n}\n";
    blocked_matches_interp(hlo, vec![bytes(&f32_values(64, 5)), bytes(&f32_values(96 * 64, 6))], 1e-5);
    for t in ["bf16", "f16"] {
        let hlo = format!(
            "HloModule m\nENTRY e {{\n  a = f32[40,50] parameter(0)\n  b = f32[50,70] parameter(1)\n  \
             ah = {t}[40,50] convert(a)\n  bh = {t}[50,70] convert(b)\n  \
             d = {t}[40,70] dot(ah, bh), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}\n  \
             ROOT o = f32[40,70] convert(d)\n}}\n"
        );
        blocked_matches_interp(&hlo, vec![bytes(&f32_values(2000, 7)), bytes(&f32_values(3500, 8))], 1e-2);
    }
}

#[test]
fn special_values_propagate() {
    let (m, k, n) = (20, 12, 80);
    let mut a = f32_values(m * k, 9);
    a[0] = f32::INFINITY;
    a[k * 3 + 2] = f32::NAN;
    a[k * 5 + 3] = 1e-40; // subnormal, read as zero (DAZ); its rhs row has no infinities
    let mut b = f32_values(k * n, 10);
    b[7] = f32::NEG_INFINITY;
    b[n * 4 + 9] = 3e38;
    let hlo = format!(
        "HloModule m\nENTRY e {{\n  a = f32[{m},{k}] parameter(0)\n  b = f32[{k},{n}] parameter(1)\n  \
         ROOT d = f32[{m},{n}] dot(a, b), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}\n}}\n"
    );
    blocked_matches_interp(&hlo, vec![bytes(&a), bytes(&b)], 1e-5);
}

/// On lavapipe the blocked dot reads its columns (and the staged rows) through uniform texel
/// buffers (`Target::texel_gathers`); other devices read the same values from storage buffers.
/// Both must give the same bits, special values included, at sizes around the texel (4 floats),
/// the subgroup's staged chunk and the blocks.
#[test]
fn texel_fetches_and_storage_loads_give_the_same_bits() {
    let ctx = vulkan();
    for (m, k, n) in [(64, 1, 2048), (128, 37, 256), (100, 300, 260), (16, 3, 2048), (33, 8, 516)] {
        let hlo = format!(
            "HloModule m\nENTRY e {{\n  a = f32[{m},{k}] parameter(0)\n  b = f32[{k},{n}] parameter(1)\n  \
             ROOT d = f32[{m},{n}] dot(a, b), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}\n}}\n"
        );
        let mut a = f32_values(m * k, 21);
        let mut b = f32_values(k * n, 22);
        a[0] = f32::NAN;
        b[n - 1] = f32::INFINITY;
        b[(k * n) / 2 + 1] = -1e-39; // subnormal, read as zero (the interpreter keeps it: not next to the inf)
        let inputs = vec![bytes(&a), bytes(&b)];
        let module = parse_and_fuse(&hlo);
        let mut results = Vec::new();
        for texels in [Some(1u64 << 27), None] {
            let target = hlo_spirv::Target { texel_gathers: texels, ..common::target_from_caps(ctx.caps()) };
            let c = hlo_spirv::compile(&module, &target).unwrap_or_else(|e| panic!("{e}\n{hlo}"));
            check_spirv(&c);
            let dot = c.kernels_info.iter().find(|k| k.kind == KernelKind::Dot).expect("a blocked dot");
            assert_eq!(dot.why.contains("texels"), texels.is_some(), "{}", dot.why);
            results.push(run_vulkan(&ctx, &c, &inputs));
        }
        assert_eq!(results[0], results[1], "texel and storage reads differ\n{hlo}");
        let want = run_interp(&parse(&hlo), &inputs);
        compare(hlo_ir::DType::F32, &results[0][0], &want[0], 1e-5).unwrap_or_else(|e| panic!("{e}\n{hlo}"));
    }
}
