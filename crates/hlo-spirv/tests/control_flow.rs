//! HLO `while` and `conditional` that are not elementwise, compiled to the program's `Loop` and
//! `Conditional` steps and run on lavapipe, compared with the interpreter: data-dependent trip
//! counts (0, 1, 7000), state tuples of several shapes, pred and index selectors (out of range
//! and negative included), and loops and conditionals nested in each other.

mod common;
use common::*;
use hlo_program::{walk_steps, Step, TripCount};

const ADD_F32: &str = "add {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}\n";

fn s32_bytes(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn pred_bytes(value: bool) -> Vec<u8> {
    vec![u8::from(value)]
}

/// Compiles `hlo` through the pipeline, runs it on Vulkan and in the interpreter and requires equal bytes.
/// Returns the outputs and the compiled program's steps for structural checks.
fn run_both(hlo: &str, inputs: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Step>) {
    let m = parse_and_fuse(hlo);
    let c = compile_checked(&m);
    let got = run_vulkan(&vulkan(), &c, inputs);
    let want = run_interp(&parse(hlo), inputs);
    assert_eq!(got.len(), want.len(), "output count");
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "output {k} differs from the interpreter\n{hlo}");
    }
    (got, c.program.steps)
}

fn count_steps(steps: &[Step], pick: impl Fn(&Step) -> bool) -> usize {
    let mut n = 0;
    walk_steps(steps, &mut |s| n += usize::from(pick(s)));
    n
}

fn is_device_loop(s: &Step) -> bool {
    matches!(s, Step::Loop(l) if matches!(l.trip, TripCount::Device(_)))
}

/// A counter runs to the input limit; each iteration adds the sum of an f32[1000] array (a
/// reduction, so not elementwise) to a scalar and doubles an s32[3,5]; the state is
/// (s32[], f32[1000], s32[3,5], f32[]).
fn reduction_loop_hlo() -> String {
    format!(
        r#"HloModule m
{ADD_F32}
cond {{
  p = (s32[], f32[1000], s32[3,5], f32[], s32[]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  n = s32[] get-tuple-element(p), index=4
  ROOT lt = pred[] compare(i, n), direction=LT
}}
body {{
  p = (s32[], f32[1000], s32[3,5], f32[], s32[]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  x = f32[1000] get-tuple-element(p), index=1
  m = s32[3,5] get-tuple-element(p), index=2
  acc = f32[] get-tuple-element(p), index=3
  n = s32[] get-tuple-element(p), index=4
  one = s32[] constant(1)
  i1 = s32[] add(i, one)
  zero = f32[] constant(0)
  total = f32[] reduce(x, zero), dimensions={{0}}, to_apply=add
  acc1 = f32[] add(acc, total)
  half = f32[] constant(0.5)
  halves = f32[1000] broadcast(half), dimensions={{}}
  x1 = f32[1000] multiply(x, halves)
  m1 = s32[3,5] add(m, m)
  ROOT t = (s32[], f32[1000], s32[3,5], f32[], s32[]) tuple(i1, x1, m1, acc1, n)
}}
ENTRY e {{
  n = s32[] parameter(0)
  x = f32[1000] parameter(1)
  m = s32[3,5] parameter(2)
  i0 = s32[] constant(0)
  acc0 = f32[] constant(0)
  init = (s32[], f32[1000], s32[3,5], f32[], s32[]) tuple(i0, x, m, acc0, n)
  w = (s32[], f32[1000], s32[3,5], f32[], s32[]) while(init), condition=cond, body=body
  i = s32[] get-tuple-element(w), index=0
  xs = f32[1000] get-tuple-element(w), index=1
  ms = s32[3,5] get-tuple-element(w), index=2
  acc = f32[] get-tuple-element(w), index=3
  ROOT r = (s32[], f32[1000], s32[3,5], f32[]) tuple(i, xs, ms, acc)
}}
"#
    )
}

#[test]
fn data_dependent_trip_counts_with_a_reduction_in_the_body() {
    let hlo = reduction_loop_hlo();
    let x: Vec<f32> = (0..1000).map(|k| (k % 17) as f32 * 0.25 + 1.0).collect();
    let m: Vec<i32> = (0..15).map(|k| k - 7).collect();
    for trips in [0, 1, 7000] {
        let (out, steps) = run_both(&hlo, &[s32_bytes(&[trips]), f32_bytes(&x), s32_bytes(&m)]);
        assert_eq!(out[0], s32_bytes(&[trips]), "counter after {trips} trips");
        assert_eq!(count_steps(&steps, is_device_loop), 1, "one device loop");
    }
}

/// A loop whose body swaps two state leaves: the copy back must not read a leaf already overwritten.
#[test]
fn swapped_state_leaves() {
    let hlo = r#"HloModule m
cond {
  p = (s32[], f32[4], f32[4], s32[]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  n = s32[] get-tuple-element(p), index=3
  ROOT lt = pred[] compare(i, n), direction=LT
}
body {
  p = (s32[], f32[4], f32[4], s32[]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  a = f32[4] get-tuple-element(p), index=1
  b = f32[4] get-tuple-element(p), index=2
  n = s32[] get-tuple-element(p), index=3
  one = s32[] constant(1)
  i1 = s32[] add(i, one)
  ra = f32[4] reverse(a), dimensions={0}
  ROOT t = (s32[], f32[4], f32[4], s32[]) tuple(i1, b, ra, n)
}
ENTRY e {
  n = s32[] parameter(0)
  a = f32[4] parameter(1)
  b = f32[4] parameter(2)
  i0 = s32[] constant(0)
  init = (s32[], f32[4], f32[4], s32[]) tuple(i0, a, b, n)
  ROOT w = (s32[], f32[4], f32[4], s32[]) while(init), condition=cond, body=body
}
"#;
    for trips in [0, 1, 2, 3, 5] {
        run_both(hlo, &[s32_bytes(&[trips]), f32_bytes(&[1.0, 2.0, 3.0, 4.0]), f32_bytes(&[5.0, 6.0, 7.0, 8.0])]);
    }
}

/// A state that is one array (not a tuple): halve until the sum drops below 1.
#[test]
fn non_tuple_state() {
    let hlo = format!(
        r#"HloModule m
{ADD_F32}
cond {{
  x = f32[64] parameter(0)
  zero = f32[] constant(0)
  s = f32[] reduce(x, zero), dimensions={{0}}, to_apply=add
  one = f32[] constant(1)
  ROOT ge = pred[] compare(s, one), direction=GE
}}
body {{
  x = f32[64] parameter(0)
  h = f32[] constant(0.5)
  hs = f32[64] broadcast(h), dimensions={{}}
  ROOT y = f32[64] multiply(x, hs)
}}
ENTRY e {{
  x = f32[64] parameter(0)
  ROOT w = f32[64] while(x), condition=cond, body=body
}}
"#
    );
    for scale in [0.001f32, 1.0, 1000.0] {
        let x: Vec<f32> = (0..64).map(|k| k as f32 * scale).collect();
        run_both(&hlo, &[f32_bytes(&x)]);
    }
}

fn pred_conditional_hlo() -> String {
    format!(
        r#"HloModule m
{ADD_F32}
on_true {{
  x = f32[8] parameter(0)
  zero = f32[] constant(0)
  s = f32[] reduce(x, zero), dimensions={{0}}, to_apply=add
  ROOT b = f32[8] broadcast(s), dimensions={{}}
}}
on_false {{
  x = f32[8] parameter(0)
  ROOT n = f32[8] negate(x)
}}
ENTRY e {{
  p = pred[] parameter(0)
  x = f32[8] parameter(1)
  ROOT c = f32[8] conditional(p, x, x), true_computation=on_true, false_computation=on_false
}}
"#
    )
}

#[test]
fn pred_conditional() {
    let hlo = pred_conditional_hlo();
    let x: Vec<f32> = (0..8).map(|k| k as f32 + 0.5).collect();
    let (yes, steps) = run_both(&hlo, &[pred_bytes(true), f32_bytes(&x)]);
    assert_eq!(yes[0], f32_bytes(&[x.iter().sum::<f32>(); 8]));
    let (no, _) = run_both(&hlo, &[pred_bytes(false), f32_bytes(&x)]);
    assert_eq!(no[0], f32_bytes(&x.iter().map(|v| -v).collect::<Vec<_>>()));
    assert_eq!(count_steps(&steps, |s| matches!(s, Step::Conditional(_))), 1);
}

fn index_conditional_hlo() -> &'static str {
    r#"HloModule m
b0 {
  x = s32[3] parameter(0)
  y = s32[3] negate(x)
  ROOT r = (s32[3]) tuple(y)
}
b1 {
  x = s32[3] parameter(0)
  y = s32[3] add(x, x)
  ROOT r = (s32[3]) tuple(y)
}
b2 {
  t = (s32[3], s32[]) parameter(0)
  x = s32[3] get-tuple-element(t), index=0
  k = s32[] get-tuple-element(t), index=1
  kb = s32[3] broadcast(k), dimensions={}
  y = s32[3] multiply(x, kb)
  ROOT r = (s32[3]) tuple(y)
}
ENTRY e {
  i = s32[] parameter(0)
  x = s32[3] parameter(1)
  seven = s32[] constant(7)
  arg2 = (s32[3], s32[]) tuple(x, seven)
  c = (s32[3]) conditional(i, x, x, arg2), branch_computations={b0, b1, b2}
  ROOT y = s32[3] get-tuple-element(c), index=0
}
"#
}

#[test]
fn index_conditional_out_of_range_and_negative_pick_the_last_branch() {
    let hlo = index_conditional_hlo();
    let x = [1, -2, 3];
    for (index, want) in [(0, [-1, 2, -3]), (1, [2, -4, 6]), (2, [7, -14, 21]), (3, [7, -14, 21]), (-1, [7, -14, 21])] {
        let (out, _) = run_both(hlo, &[s32_bytes(&[index]), s32_bytes(&x)]);
        assert_eq!(out[0], s32_bytes(&want), "index {index}");
    }
}

/// An outer loop over rows; the inner loop runs a data-dependent number of times per row (row
/// value halved until below 1), and a conditional inside the outer body picks an update by parity.
#[test]
fn loops_and_conditionals_nested() {
    let hlo = format!(
        r#"HloModule m
{ADD_F32}
inner_cond {{
  p = (f32[4], s32[]) parameter(0)
  x = f32[4] get-tuple-element(p), index=0
  zero = f32[] constant(0)
  s = f32[] reduce(x, zero), dimensions={{0}}, to_apply=add
  one = f32[] constant(1)
  ROOT ge = pred[] compare(s, one), direction=GE
}}
inner_body {{
  p = (f32[4], s32[]) parameter(0)
  x = f32[4] get-tuple-element(p), index=0
  k = s32[] get-tuple-element(p), index=1
  h = f32[] constant(0.5)
  hs = f32[4] broadcast(h), dimensions={{}}
  y = f32[4] multiply(x, hs)
  one = s32[] constant(1)
  k1 = s32[] add(k, one)
  ROOT t = (f32[4], s32[]) tuple(y, k1)
}}
even {{
  a = s32[] parameter(0)
  ten = s32[] constant(10)
  ROOT r = s32[] add(a, ten)
}}
odd {{
  a = s32[] parameter(0)
  ROOT r = s32[] negate(a)
}}
outer_cond {{
  p = (s32[], f32[5,4], s32[5], s32[]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  n = s32[] get-tuple-element(p), index=3
  ROOT lt = pred[] compare(i, n), direction=LT
}}
outer_body {{
  p = (s32[], f32[5,4], s32[5], s32[]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  x = f32[5,4] get-tuple-element(p), index=1
  counts = s32[5] get-tuple-element(p), index=2
  n = s32[] get-tuple-element(p), index=3
  zero = s32[] constant(0)
  row = f32[1,4] dynamic-slice(x, i, zero), dynamic_slice_sizes={{1,4}}
  row1 = f32[4] reshape(row)
  init = (f32[4], s32[]) tuple(row1, zero)
  w = (f32[4], s32[]) while(init), condition=inner_cond, body=inner_body
  k = s32[] get-tuple-element(w), index=1
  two = s32[] constant(2)
  parity = s32[] remainder(k, two)
  c = s32[] conditional(parity, k, k), branch_computations={{even, odd}}
  c1 = s32[1] reshape(c)
  counts1 = s32[5] dynamic-update-slice(counts, c1, i)
  one = s32[] constant(1)
  i1 = s32[] add(i, one)
  ROOT t = (s32[], f32[5,4], s32[5], s32[]) tuple(i1, x, counts1, n)
}}
ENTRY e {{
  x = f32[5,4] parameter(0)
  n = s32[] parameter(1)
  zero = s32[] constant(0)
  zeros = s32[5] broadcast(zero), dimensions={{}}
  init = (s32[], f32[5,4], s32[5], s32[]) tuple(zero, x, zeros, n)
  w = (s32[], f32[5,4], s32[5], s32[]) while(init), condition=outer_cond, body=outer_body
  ROOT counts = s32[5] get-tuple-element(w), index=2
}}
"#
    );
    let x: Vec<f32> = [0.5f32, 3.0, 17.0, 100.0, 1.0e6].iter().flat_map(|&v| [v, v / 2.0, 0.0, v / 4.0]).collect();
    let (out, steps) = run_both(&hlo, &[f32_bytes(&x), s32_bytes(&[5])]);
    run_both(&hlo, &[f32_bytes(&x), s32_bytes(&[0])]);
    assert_eq!(count_steps(&steps, |s| matches!(s, Step::Loop(_))), 2, "outer and inner loops");
    assert_eq!(count_steps(&steps, |s| matches!(s, Step::Conditional(_))), 1);
    assert_ne!(out[0], s32_bytes(&[0; 5]));
}

/// A conditional whose branches hold a data-dependent loop.
#[test]
fn loop_inside_a_conditional() {
    let hlo = format!(
        r#"HloModule m
{ADD_F32}
cond {{
  x = f32[16] parameter(0)
  zero = f32[] constant(0)
  s = f32[] reduce(x, zero), dimensions={{0}}, to_apply=add
  one = f32[] constant(1)
  ROOT ge = pred[] compare(s, one), direction=GE
}}
body {{
  x = f32[16] parameter(0)
  h = f32[] constant(0.25)
  hs = f32[16] broadcast(h), dimensions={{}}
  ROOT y = f32[16] multiply(x, hs)
}}
shrink {{
  x = f32[16] parameter(0)
  ROOT w = f32[16] while(x), condition=cond, body=body
}}
keep {{
  ROOT x = f32[16] parameter(0)
}}
ENTRY e {{
  p = pred[] parameter(0)
  x = f32[16] parameter(1)
  ROOT c = f32[16] conditional(p, x, x), true_computation=shrink, false_computation=keep
}}
"#
    );
    let x: Vec<f32> = (0..16).map(|k| k as f32 * 3.0).collect();
    for p in [true, false] {
        let (out, _) = run_both(&hlo, &[pred_bytes(p), f32_bytes(&x)]);
        if !p {
            assert_eq!(out[0], f32_bytes(&x));
        }
    }
}

/// The body of [`static_loop_hlo`]: the sum of the state (a reduction, so not elementwise) feeds every element.
fn static_loop_hlo(n: usize, trips: u32) -> String {
    format!(
        r#"HloModule m
{ADD_F32}
cond {{
  p = (s32[], f32[{n}]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  n = s32[] constant({trips})
  ROOT lt = pred[] compare(i, n), direction=LT
}}
body {{
  p = (s32[], f32[{n}]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  x = f32[{n}] get-tuple-element(p), index=1
  one = s32[] constant(1)
  i1 = s32[] add(i, one)
  zero = f32[] constant(0)
  s = f32[] reduce(x, zero), dimensions={{0}}, to_apply=add
  c = f32[] constant(0.001)
  t = f32[] multiply(s, c)
  tb = f32[{n}] broadcast(t), dimensions={{}}
  r = f32[{n}] reverse(x), dimensions={{0}}
  y = f32[{n}] add(r, tb)
  ROOT o = (s32[], f32[{n}]) tuple(i1, y)
}}
ENTRY e {{
  x = f32[{n}] parameter(0)
  zero = s32[] constant(0)
  init = (s32[], f32[{n}]) tuple(zero, x)
  w = (s32[], f32[{n}]) while(init), condition=cond, body=body
  ROOT y = f32[{n}] get-tuple-element(w), index=1
}}
"#
    )
}

/// A loop with a trip count known at compile time, too long to unroll and over arrays too large for one
/// workgroup, becomes a static loop step.
#[test]
fn long_static_loop_is_a_static_loop_step() {
    let n = 5000;
    let x: Vec<f32> = (0..n).map(|k| (k % 100) as f32 * 1e-4).collect();
    let (_, steps) = run_both(&static_loop_hlo(n, 300), &[f32_bytes(&x)]);
    let is_static = |s: &Step| matches!(s, Step::Loop(l) if l.trip == TripCount::Static(300));
    assert_eq!(count_steps(&steps, is_static), 1);
}

/// Over small arrays the same loop is one workgroup-loop kernel. On lavapipe, whose loop budget allows a few
/// hundred of these iterations per dispatch, 3000 iterations take several dispatches of it, as the condition of a
/// device loop; 300 fit in one dispatch.
#[test]
fn small_state_loop_is_one_workgroup_kernel() {
    // Sizes straddle the subgroup (8), the last unrolled stride count (8 strides: 64) and the size limit (4096).
    for (n, trips) in [(32, 3000), (32, 300), (1, 7000), (8, 64), (9, 65), (64, 70), (65, 70), (100, 1), (4096, 66)] {
        let x: Vec<f32> = (0..n).map(|k| k as f32 * 0.01).collect();
        let hlo = static_loop_hlo(n, trips);
        run_both(&hlo, &[f32_bytes(&x)]);
        let c = compile_checked(&parse_and_fuse(&hlo));
        let kinds: Vec<_> = c.kernels_info.iter().map(|k| k.kind).collect();
        assert_eq!(kinds, [hlo_spirv::KernelKind::WorkgroupLoop], "n={n} trips={trips}");
    }
}

/// How [`drawing_loop_hlo`]'s body treats the rest of its state besides the window it draws.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Drawing {
    /// Nothing else: the whole loop is one workgroup-loop kernel, its window written in place.
    WindowOnly,
    /// A second, large state leaf is scaled every iteration: too large for one workgroup, so the loop is a
    /// `Step::Loop`, and the window is still written in place (`dus-in-place`).
    LargeLeafBeside,
    /// The body also sums the whole canvas, so the old canvas is still needed: no in-place update.
    ReadsElsewhere,
}

/// A drawing loop: each of 100 iterations (too many to unroll) blends a 4x4 window of a 128x64 canvas (loop
/// state, too large for a workgroup loop unless only its window is touched) at a data-dependent position,
/// reading the same window. Positions run past the edge to exercise clamping.
fn drawing_loop_hlo(mode: Drawing) -> String {
    let extra = match mode {
        Drawing::ReadsElsewhere => {
            "  total = f32[] reduce(c, zero), dimensions={0,1}, to_apply=add\n  acc1 = f32[] add(acc, total)\n"
        }
        _ => "  acc1 = f32[] add(acc, zero)\n",
    };
    let big = match mode {
        Drawing::LargeLeafBeside => "  h2 = f32[] constant(0.5)\n  h2s = f32[8192] broadcast(h2), dimensions={}\n  b1 = f32[8192] multiply(b, h2s)\n",
        _ => "  b1 = f32[8192] get-tuple-element(p), index=3\n",
    };
    format!(
        r#"HloModule m
{ADD_F32}
cond {{
  p = (s32[], f32[128,64], f32[], f32[8192]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  n = s32[] constant(100)
  ROOT lt = pred[] compare(i, n), direction=LT
}}
draw {{
  c = f32[128,64] parameter(0)
  x = s32[] parameter(1)
  y = s32[] parameter(2)
  w = f32[4,4] dynamic-slice(c, x, y), dynamic_slice_sizes={{4,4}}
  h = f32[] constant(0.5)
  hs = f32[4,4] broadcast(h), dimensions={{}}
  one = f32[] constant(1)
  ones = f32[4,4] broadcast(one), dimensions={{}}
  b = f32[4,4] multiply(w, hs)
  u = f32[4,4] add(b, ones)
  ROOT d = f32[128,64] dynamic-update-slice(c, u, x, y)
}}
body {{
  p = (s32[], f32[128,64], f32[], f32[8192]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  c = f32[128,64] get-tuple-element(p), index=1
  acc = f32[] get-tuple-element(p), index=2
  b = f32[8192] get-tuple-element(p), index=3
  zero = f32[] constant(0)
{extra}{big}  seven = s32[] constant(7)
  x = s32[] multiply(i, seven)
  three = s32[] constant(3)
  y = s32[] multiply(i, three)
  d = f32[128,64] fusion(c, x, y), kind=kLoop, calls=draw
  one = s32[] constant(1)
  i1 = s32[] add(i, one)
  ROOT t = (s32[], f32[128,64], f32[], f32[8192]) tuple(i1, d, acc1, b1)
}}
ENTRY e {{
  c = f32[128,64] parameter(0)
  b = f32[8192] parameter(1)
  i0 = s32[] constant(0)
  z = f32[] constant(0)
  init = (s32[], f32[128,64], f32[], f32[8192]) tuple(i0, c, z, b)
  ROOT w = (s32[], f32[128,64], f32[], f32[8192]) while(init), condition=cond, body=body
}}
"#
    )
}

#[test]
fn window_updates_of_loop_state_are_in_place() {
    use hlo_spirv::KernelKind;
    let canvas: Vec<f32> = (0..128 * 64).map(|k| (k % 13) as f32 * 0.125).collect();
    let big: Vec<f32> = (0..8192).map(|k| (k % 5) as f32).collect();
    for mode in [Drawing::WindowOnly, Drawing::LargeLeafBeside, Drawing::ReadsElsewhere] {
        let hlo = drawing_loop_hlo(mode);
        run_both(&hlo, &[f32_bytes(&canvas), f32_bytes(&big)]);
        let c = compile_checked(&parse(&hlo));
        let count = |kind: KernelKind| c.kernels_info.iter().filter(|k| k.kind == kind).count();
        let expected = match mode {
            Drawing::WindowOnly => (1, 0),
            Drawing::LargeLeafBeside => (0, 1),
            Drawing::ReadsElsewhere => (0, 0),
        };
        assert_eq!((count(KernelKind::WorkgroupLoop), count(KernelKind::DusInPlace)), expected, "{mode:?}");
    }
}

/// `ys = ys.at[i].set(row)` in a 150-iteration loop over f32[200,64] stacked outputs (a scatter into loop state, as
/// JAX writes `lax.scan` outputs by hand): the scatter combines into the state buffer itself, without first
/// copying the whole operand; rows past the end (i >= 200 never happens here, but the window check stays) and the
/// unchanged rows keep their values.
#[test]
fn scatter_into_loop_state_is_in_place() {
    let hlo = r#"HloModule m
cond {
  p = (s32[], f32[200,64], f32[64]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  n = s32[] constant(150)
  ROOT lt = pred[] compare(i, n), direction=LT
}
pick {
  a = f32[] parameter(0)
  ROOT b = f32[] parameter(1)
}
stack {
  ys = f32[200,64] parameter(0)
  i = s32[] parameter(1)
  x = f32[64] parameter(2)
  idx = s32[1] reshape(i)
  h = f32[] constant(1.5)
  hs = f32[64] broadcast(h), dimensions={}
  row = f32[64] multiply(x, hs)
  upd = f32[1,64] reshape(row)
  ROOT s = f32[200,64] scatter(ys, idx, upd), update_window_dims={0,1}, inserted_window_dims={}, scatter_dims_to_operand_dims={0}, index_vector_dim=0, indices_are_sorted=true, unique_indices=true, to_apply=pick
}
body {
  p = (s32[], f32[200,64], f32[64]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  ys = f32[200,64] get-tuple-element(p), index=1
  x = f32[64] get-tuple-element(p), index=2
  s = f32[200,64] fusion(ys, i, x), kind=kInput, calls=stack
  q = f32[] constant(0.25)
  qs = f32[64] broadcast(q), dimensions={}
  x1 = f32[64] add(x, qs)
  one = s32[] constant(1)
  i1 = s32[] add(i, one)
  ROOT t = (s32[], f32[200,64], f32[64]) tuple(i1, s, x1)
}
ENTRY e {
  ys = f32[200,64] parameter(0)
  x = f32[64] parameter(1)
  i0 = s32[] constant(0)
  init = (s32[], f32[200,64], f32[64]) tuple(i0, ys, x)
  ROOT w = (s32[], f32[200,64], f32[64]) while(init), condition=cond, body=body
}
"#;
    let ys: Vec<f32> = (0..200 * 64).map(|k| -((k % 7) as f32)).collect();
    let x: Vec<f32> = (0..64).map(|k| k as f32 * 0.5).collect();
    run_both(hlo, &[f32_bytes(&ys), f32_bytes(&x)]);
    let c = compile_checked(&parse(hlo));
    let kinds: Vec<_> = c.kernels_info.iter().map(|k| k.kind).collect();
    assert!(!kinds.contains(&hlo_spirv::KernelKind::ScatterInit), "{kinds:?}");
    let big_copies =
        count_steps(&c.program.steps, |s| matches!(s, Step::Copy { size_bytes, .. } if *size_bytes == 200 * 64 * 4));
    assert_eq!(big_copies, 1, "only the init value is copied into the state");
}

/// A small loop that reads a large array every iteration (the sum of a carried, unchanged f32[8192]) is not a
/// workgroup loop: one workgroup would sum it alone, iteration after iteration.
#[test]
fn a_loop_reading_a_large_array_is_not_one_workgroup() {
    let hlo = format!(
        r#"HloModule m
{ADD_F32}
cond {{
  p = (s32[], f32[8192], f32[]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  n = s32[] constant(70)
  ROOT lt = pred[] compare(i, n), direction=LT
}}
body {{
  p = (s32[], f32[8192], f32[]) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  b = f32[8192] get-tuple-element(p), index=1
  acc = f32[] get-tuple-element(p), index=2
  zero = f32[] constant(0)
  s = f32[] reduce(b, zero), dimensions={{0}}, to_apply=add
  acc1 = f32[] add(acc, s)
  one = s32[] constant(1)
  i1 = s32[] add(i, one)
  ROOT t = (s32[], f32[8192], f32[]) tuple(i1, b, acc1)
}}
ENTRY e {{
  b = f32[8192] parameter(0)
  i0 = s32[] constant(0)
  z = f32[] constant(0)
  init = (s32[], f32[8192], f32[]) tuple(i0, b, z)
  ROOT w = (s32[], f32[8192], f32[]) while(init), condition=cond, body=body
}}
"#
    );
    let b: Vec<f32> = (0..8192).map(|k| (k % 3) as f32).collect();
    run_both(&hlo, &[f32_bytes(&b)]);
    let c = compile_checked(&parse(&hlo));
    assert!(c.kernels_info.iter().all(|k| k.kind != hlo_spirv::KernelKind::WorkgroupLoop));
}

/// An elementwise loop `x <- 0.5 x + 0.25 sin(x) + 0.5` over `f32[n]`, `trips` times (a constant), or until the
/// counter reaches the s32 input (`trips == None`, decided at run time).
fn sine_loop_hlo(n: usize, trips: Option<u32>) -> String {
    let (limit, extra_param, extra_arg) = match trips {
        Some(t) => (format!("s32[] constant({t})"), String::new(), String::new()),
        None => ("s32[] get-tuple-element(p), index=2".to_string(), ", s32[]".to_string(), ", lim".to_string()),
    };
    let lim_param = if trips.is_none() { "\n  lim = s32[] parameter(1)" } else { "" };
    let pass_lim = if trips.is_none() { ", l" } else { "" };
    let get_lim = if trips.is_none() { "\n  l = s32[] get-tuple-element(p), index=2" } else { "" };
    format!(
        r#"HloModule m
cond {{
  p = (s32[], f32[{n}]{extra_param}) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  n = {limit}
  ROOT lt = pred[] compare(i, n), direction=LT
}}
body {{
  p = (s32[], f32[{n}]{extra_param}) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  x = f32[{n}] get-tuple-element(p), index=1{get_lim}
  one = s32[] constant(1)
  i1 = s32[] add(i, one)
  half = f32[{n}] constant({{...}})
  s = f32[{n}] sine(x)
  q = f32[] constant(0.25)
  qb = f32[{n}] broadcast(q), dimensions={{}}
  sq = f32[{n}] multiply(s, qb)
  h = f32[] constant(0.5)
  hb = f32[{n}] broadcast(h), dimensions={{}}
  xh = f32[{n}] multiply(x, hb)
  xs = f32[{n}] add(xh, sq)
  y = f32[{n}] add(xs, hb)
  ROOT o = (s32[], f32[{n}]{extra_param}) tuple(i1, y{pass_lim})
}}
ENTRY e {{
  x = f32[{n}] parameter(0){lim_param}
  zero = s32[] constant(0)
  init = (s32[], f32[{n}]{extra_param}) tuple(zero, x{extra_arg})
  w = (s32[], f32[{n}]{extra_param}) while(init), condition=cond, body=body
  ROOT y = f32[{n}] get-tuple-element(w), index=1
}}
"#
    )
    .replace(&format!("  half = f32[{n}] constant({{...}})\n"), "")
}

/// On lavapipe, which runs both sides of every branch, an elementwise loop with a `sin` runs its iterations
/// without the big-argument (Payne-Hanek) path and redoes, with it, the iterations where some lane needed it.
/// Lanes start huge (3e7, still above 512 for ~16 halvings), mid-sized, small, zero and inf/nan, so fast and
/// slow iterations mix within a subgroup, and the lanes leave the slow path at different iterations. The
/// results must equal, bit for bit, those of the same loop compiled without the split, and match the
/// interpreter (whose `sin` is the host's, so within a tolerance).
#[test]
fn sine_loops_split_their_rare_paths_and_keep_every_bit() {
    let ctx = vulkan();
    let plain_target = hlo_spirv::Target { predicated_branches: false, ..target_from_caps(ctx.caps()) };
    let split_target = hlo_spirv::Target { predicated_branches: true, ..target_from_caps(ctx.caps()) };
    let lane = |k: usize| -> f32 {
        match k % 7 {
            0 => 3.0e7 + k as f32,
            1 => 700.0 - k as f32,
            2 => -2000.0,
            3 => 0.3 * k as f32,
            4 => {
                if k % 2 == 0 {
                    0.0
                } else {
                    -0.0
                }
            }
            5 => {
                if k % 14 == 5 {
                    f32::INFINITY
                } else {
                    f32::NAN
                }
            }
            _ => -1.0e38,
        }
    };
    for n in [1, 8, 9, 100] {
        let x: Vec<f32> = (0..n).map(lane).collect();
        // 140,000 trips are 35,000 groups of 4: within lavapipe's loop budget (65,535) unsplit, over it split.
        for trips in [Some(1), Some(4), Some(5), Some(9), Some(40), Some(140_000), None] {
            let hlo = sine_loop_hlo(n, trips);
            let m = parse_and_fuse(&hlo);
            let mut inputs = vec![f32_bytes(&x)];
            if trips.is_none() {
                inputs.push(s32_bytes(&[37]));
            }
            let plain = hlo_spirv::compile(&m, &plain_target).expect("compile");
            let split = hlo_spirv::compile(&m, &split_target).expect("compile");
            check_spirv(&split);
            let wgsl = split.wgsl();
            // Below 4 trips the body is only unrolled: no loop to split.
            let looped = trips.is_none_or(|t| (4..100_000).contains(&t));
            assert_eq!(wgsl.contains("subgroupBallot"), looped, "n={n} trips={trips:?}: split?\n{wgsl}");
            assert!(!plain.wgsl().contains("subgroupBallot"));
            let want = run_vulkan(&ctx, &plain, &inputs);
            let got = run_vulkan(&ctx, &split, &inputs);
            assert_eq!(got, want, "n={n} trips={trips:?}: split and plain loops differ");
            let reference = run_interp(&parse(&hlo), &inputs);
            compare(hlo_ir::DType::F32, &got[0], &reference[0], 1e-5)
                .unwrap_or_else(|e| panic!("n={n} trips={trips:?}: {e}"));
        }
    }
}
