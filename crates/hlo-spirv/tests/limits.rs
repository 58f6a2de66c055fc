//! Work past the device's limits: loops longer than lavapipe runs in one shader invocation
//! (65,535 iterations, all loops of a kernel together), reductions and scans over more
//! elements than one workgroup grid row covers (65,535 workgroups), and what happens when a
//! loop's length is only known on the device. Every case either computes the right answer or
//! fails the run with a device check: never a silently truncated result.

mod common;
use common::*;
use hlo_spirv::CodegenError;

/// Compiles `hlo` through the pipeline, runs it on inputs, returns the outputs.
fn run(hlo: &str, inputs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let m = parse_and_fuse(hlo);
    let c = compile_checked(&m);
    run_vulkan(&vulkan(), &c, inputs)
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn s32s(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect()
}

const ADD: &str = "add {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}\n";

/// Sums of ones generated on the device (no upload), past 2^24 and past 65,535 * 256 elements:
/// exact in f32 only when the additions are spread out, as XLA:CPU's vectorised loops do.
#[test]
fn sums_past_two_to_the_twenty_four() {
    for n in [16_776_960u64, 16_777_217, 20_000_000] {
        let hlo = format!(
            "HloModule m\n{ADD}ENTRY e {{\n  one = f32[] constant(1)\n  x = f32[{n}] broadcast(one), dimensions={{}}\n  z = f32[] constant(0)\n  ROOT r = f32[] reduce(x, z), dimensions={{0}}, to_apply=add\n}}\n"
        );
        let out = run(&hlo, &[]);
        assert_eq!(f32s(&out[0]), vec![n as f32], "sum of {n} ones");
    }
}

/// argmax over more elements than 65,535 workgroups of 256 cover.
#[test]
fn argmax_past_the_grid_row() {
    let n = 17_000_000;
    let hlo = format!(
        r#"HloModule m
argmax {{
  a = f32[] parameter(0)
  i = s32[] parameter(1)
  b = f32[] parameter(2)
  j = s32[] parameter(3)
  gt = pred[] compare(a, b), direction=GT
  eq = pred[] compare(a, b), direction=EQ
  lt = pred[] compare(i, j), direction=LT
  tie = pred[] and(eq, lt)
  keep = pred[] or(gt, tie)
  v = f32[] select(keep, a, b)
  k = s32[] select(keep, i, j)
  ROOT t = (f32[], s32[]) tuple(v, k)
}}
ENTRY e {{
  ix = s32[{n}] iota(), iota_dimension=0
  x = f32[{n}] convert(ix)
  ninf = f32[] constant(-inf)
  zero = s32[] constant(0)
  r = (f32[], s32[]) reduce(x, ix, ninf, zero), dimensions={{0}}, to_apply=argmax
  ROOT i = s32[] get-tuple-element(r), index=1
}}
"#
    );
    assert_eq!(s32s(&run(&hlo, &[])[0]), vec![n - 1]);
}

/// Rows of several lengths around the loop budget and the split threshold, many outputs.
#[test]
fn long_rows() {
    for (rows, cols) in [(2u64, 65_535u64), (2, 65_537), (3, 140_000), (300, 1_000)] {
        let hlo = format!(
            "HloModule m\n{ADD}ENTRY e {{\n  i = s32[{rows},{cols}] iota(), iota_dimension=1\n  m = s32[] constant(7)\n  mb = s32[{rows},{cols}] broadcast(m), dimensions={{}}\n  r7 = s32[{rows},{cols}] remainder(i, mb)\n  x = f32[{rows},{cols}] convert(r7)\n  z = f32[] constant(0)\n  ROOT r = f32[{rows}] reduce(x, z), dimensions={{1}}, to_apply=add\n}}\n"
        );
        let want: f64 = (0..cols).map(|c| (c % 7) as f64).sum();
        for v in f32s(&run(&hlo, &[])[0]) {
            assert_eq!(v as f64, want, "row sum of {rows}x{cols}");
        }
    }
}

/// A dot contracting a million elements, and a cumulative sum of a million.
#[test]
fn million_element_dot_and_cumsum() {
    let n = 1_000_000u64;
    let hlo = format!(
        "HloModule m\nENTRY e {{\n  one = f32[] constant(1)\n  a = f32[{n}] broadcast(one), dimensions={{}}\n  ROOT d = f32[] dot(a, a), lhs_contracting_dims={{0}}, rhs_contracting_dims={{0}}\n}}\n"
    );
    assert_eq!(f32s(&run(&hlo, &[])[0]), vec![n as f32]);
    let hlo = format!(
        "HloModule m\n{ADD}ENTRY e {{\n  one = f32[] constant(1)\n  a = f32[{n}] broadcast(one), dimensions={{}}\n  z = f32[] constant(0)\n  ROOT c = f32[{n}] reduce-window(a, z), window={{size={n} pad={}_0}}, to_apply=add\n}}\n",
        n - 1
    );
    let out = f32s(&run(&hlo, &[])[0]);
    for i in [0usize, 1, 127, 128, 129, 65_535, 65_536, 999_999] {
        assert_eq!(out[i], (i + 1) as f32, "cumsum[{i}]");
    }
}

/// A while loop whose trip count is known at compile time runs 100,000 iterations
/// (unrolled four times in the shader), past the per-invocation budget.
#[test]
fn counted_loop_of_a_hundred_thousand() {
    let hlo = r#"HloModule m
cond {
  p = (s32[], f32[]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  n = s32[] constant(100000)
  ROOT lt = pred[] compare(i, n), direction=LT
}
body {
  p = (s32[], f32[]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  x = f32[] get-tuple-element(p), index=1
  one = s32[] constant(1)
  i1 = s32[] add(i, one)
  h = f32[] constant(0.5)
  x1 = f32[] add(x, h)
  ROOT t = (s32[], f32[]) tuple(i1, x1)
}
ENTRY e {
  x = f32[] parameter(0)
  z = s32[] constant(0)
  t = (s32[], f32[]) tuple(z, x)
  w = (s32[], f32[]) while(t), condition=cond, body=body
  ROOT r = f32[] get-tuple-element(w), index=1
}
"#;
    let out = run(hlo, &[1.0f32.to_le_bytes().to_vec()]);
    assert_eq!(f32s(&out[0]), vec![50_001.0]);
}

/// A loop whose trip count comes from the data: short ones run, one past the driver's budget
/// fails the run with a device check instead of returning a truncated count.
#[test]
fn data_dependent_loop_past_the_budget_fails_the_run() {
    let hlo = r#"HloModule m
cond {
  p = (s32[], s32[]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  n = s32[] get-tuple-element(p), index=1
  ROOT lt = pred[] compare(i, n), direction=LT
}
body {
  p = (s32[], s32[]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  n = s32[] get-tuple-element(p), index=1
  one = s32[] constant(1)
  i1 = s32[] add(i, one)
  ROOT t = (s32[], s32[]) tuple(i1, n)
}
ENTRY e {
  n = s32[] parameter(0)
  z = s32[] constant(0)
  t = (s32[], s32[]) tuple(z, n)
  w = (s32[], s32[]) while(t), condition=cond, body=body
  ROOT r = s32[] get-tuple-element(w), index=0
}
"#;
    let m = parse_and_fuse(hlo);
    let c = compile_checked(&m);
    let ctx = vulkan();
    let mut exe = hlo_vulkan::Executable::new(&ctx, &c.program, None).expect("build");
    for n in [0i32, 1, 1000, 65_000] {
        let out = exe.run(&[&n.to_le_bytes()]).expect("a short loop runs");
        assert_eq!(s32s(&out[0]), vec![n]);
    }
    let limited = vulkan().caps().max_shader_loop_iterations.is_some();
    match exe.run(&[&100_000i32.to_le_bytes()]) {
        Err(hlo_vulkan::VulkanError::DeviceCheckFailed { message, .. }) if limited => {
            assert!(message.contains("iterations"), "{message}")
        }
        Ok(out) if !limited => assert_eq!(s32s(&out[0]), vec![100_000]),
        other => panic!("a loop past the budget must fail the run on lavapipe, got {other:?}"),
    }
    assert!(ctx.take_validation_messages().is_empty());
}

/// A kernel that would need more loop iterations than the budget is refused at compile time,
/// naming the kernel: a reduce-window whose window is longer than the budget (not a scan).
#[test]
fn kernels_past_the_budget_are_refused() {
    let hlo = format!(
        "HloModule m\n{ADD}ENTRY e {{\n  x = f32[2000000] parameter(0)\n  z = f32[] constant(0)\n  ROOT r = f32[2] reduce-window(x, z), window={{size=1000000 stride=1000000}}, to_apply=add\n}}\n"
    );
    let m = parse_and_fuse(&hlo);
    match hlo_spirv::compile(&m, &hlo_spirv::Target::lavapipe()) {
        Err(CodegenError::Unsupported { reason, .. }) => assert!(reason.contains("loop iterations"), "{reason}"),
        Ok(_) => panic!("compiled a kernel that lavapipe would cut short"),
        Err(other) => panic!("{other}"),
    }
}
