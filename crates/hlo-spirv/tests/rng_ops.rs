//! `rng` (RngUniform, RngNormal) and `rng-get-and-update-state` on Vulkan: `rng-expander` and
//! `rng-state-threading` must make the device draw the interpreter's numbers (whose
//! distributions `hlo-interp/tests/rng_distributions.rs` checks): bit for bit for uniform
//! numbers and the state, and within the device's transcendental-function error for normal ones
//! (log, sin, cos are the device's own, docs/numerics.md). Sizes straddle the codegen thresholds
//! (1, 16, 17, 64, 256, 1000, 65536); every run has the validation layer on.

mod common;
use common::*;

const SIZES: [usize; 7] = [1, 16, 17, 64, 256, 1000, 65536];

/// Runs `hlo` through the pipeline on lavapipe and through the interpreter (XLA:CPU's
/// floating-point environment, as the device fuses multiply-adds), and compares every output
/// within `tol` (relative L2; 0 is bit for bit).
fn check(hlo: &str, inputs: &[Vec<u8>], tol: f64) {
    let c = compile_checked(&parse_and_fuse(hlo));
    let got = run_vulkan(&vulkan(), &c, inputs);
    let m = parse(hlo);
    let args: Vec<hlo_ir::Literal> = m
        .entry_comp()
        .param_shapes()
        .iter()
        .zip(inputs)
        .map(|(s, b)| hlo_interp::literal_from_bytes(s.as_array().unwrap(), b).unwrap())
        .collect();
    let res = hlo_interp::evaluate_with(&m, &args, &hlo_interp::Options::xla_cpu()).unwrap_or_else(|e| panic!("{e}"));
    let want: Vec<Vec<u8>> = match res.tuple_elements() {
        Some(t) => t.iter().map(|l| hlo_interp::literal_to_bytes(l).unwrap()).collect(),
        None => vec![hlo_interp::literal_to_bytes(&res).unwrap()],
    };
    assert_eq!(got.len(), want.len());
    for (k, io) in c.outputs.iter().enumerate() {
        if let Err(e) = compare(io.dtype, &got[k], &want[k], tol) {
            panic!("output {k} ({}{:?}): {e}\n{hlo}", io.dtype, io.dims);
        }
    }
}

/// Little-endian bytes of a scalar of `ty` holding `v`.
fn scalar_bytes(ty: &str, v: f64) -> Vec<u8> {
    match ty {
        "f32" => (v as f32).to_le_bytes().to_vec(),
        "f64" => v.to_le_bytes().to_vec(),
        "f16" => half::f16::from_f64(v).to_le_bytes().to_vec(),
        "bf16" => half::bf16::from_f64(v).to_le_bytes().to_vec(),
        "s8" => (v as i8).to_le_bytes().to_vec(),
        "u16" => (v as u16).to_le_bytes().to_vec(),
        "s32" => (v as i32).to_le_bytes().to_vec(),
        "u32" => (v as u32).to_le_bytes().to_vec(),
        "s64" => (v as i64).to_le_bytes().to_vec(),
        "u64" => (v as u64).to_le_bytes().to_vec(),
        _ => panic!("no bytes for {ty}"),
    }
}

/// One module drawing `rng(a_k, b_k)` for each `(type, a, b)`, the bounds as parameters.
fn draws(cases: &[(&str, f64, f64)], dims: &str, dist: &str) -> (String, Vec<Vec<u8>>) {
    let mut hlo = String::from("HloModule m\n\nENTRY e {\n");
    let mut inputs = Vec::new();
    let (mut shapes, mut names) = (Vec::new(), Vec::new());
    for (k, &(ty, a, b)) in cases.iter().enumerate() {
        hlo += &format!("  a{k} = {ty}[] parameter({})\n  b{k} = {ty}[] parameter({})\n", 2 * k, 2 * k + 1);
        hlo += &format!("  r{k} = {ty}[{dims}] rng(a{k}, b{k}), distribution={dist}\n");
        shapes.push(format!("{ty}[{dims}]"));
        names.push(format!("r{k}"));
        inputs.push(scalar_bytes(ty, a));
        inputs.push(scalar_bytes(ty, b));
    }
    hlo += &format!("  ROOT t = ({}) tuple({})\n}}\n", shapes.join(", "), names.join(", "));
    (hlo, inputs)
}

#[test]
fn uniform_draws_match_the_interpreter_bit_for_bit() {
    let cases = [
        ("f32", -2.0, 3.0),
        ("f16", 0.0, 1.0),
        ("bf16", -1.0, 1.0),
        ("s32", -5.0, 7.0),
        ("u32", 3.0, 4_000_000_000.0),
        ("s64", -100.0, 1e12),
        ("u64", 0.0, 10.0),
        ("s8", -3.0, 3.0),
        ("u16", 0.0, 1000.0),
    ];
    for n in SIZES {
        let (hlo, inputs) = draws(&cases, &n.to_string(), "rng_uniform");
        check(&hlo, &inputs, 0.0);
    }
    let (hlo, inputs) = draws(&cases, "3,5,7", "rng_uniform");
    check(&hlo, &inputs, 0.0);
}

/// f64 within rounding: the interpreter in XLA:CPU's environment contracts the f64
/// `u * (b - a) + a` into one fused multiply-add, the device contracts only f32 ones
/// (`FmaMode`), so the last bit may differ; every value is still in `[a, b)`.
#[test]
fn uniform_f64_draws_match_the_interpreter_within_rounding() {
    for n in SIZES {
        let (hlo, inputs) = draws(&[("f64", -2.0, 3.0), ("f64", 0.0, 1.0)], &n.to_string(), "rng_uniform");
        check(&hlo, &inputs, 1e-15);
    }
}

/// Constant bounds fold into the expansion (`b - a` becomes a constant): the same bits.
#[test]
fn uniform_draws_with_constant_bounds() {
    for n in [17usize, 4096] {
        let hlo = format!(
            "HloModule m\nENTRY e {{\n  a = f32[] constant(0)\n  b = f32[] constant(1)\n  \
             c = s32[] constant(10)\n  d = s32[] constant(20)\n  x = f32[{n}] rng(a, b), distribution=rng_uniform\n  \
             y = s32[{n}] rng(c, d), distribution=rng_uniform\n  ROOT t = (f32[{n}], s32[{n}]) tuple(x, y)\n}}\n"
        );
        check(&hlo, &[], 0.0);
    }
}

#[test]
fn normal_draws_match_the_interpreter() {
    let cases = [("f32", 1.0, 2.0), ("f64", -3.0, 0.5), ("f16", 0.0, 1.0), ("bf16", 0.0, 1.0)];
    for n in SIZES {
        let (hlo, inputs) = draws(&cases, &n.to_string(), "rng_normal");
        check(&hlo, &inputs, 1e-4);
    }
    let (hlo, inputs) = draws(&cases, "3,5,7", "rng_normal");
    check(&hlo, &inputs, 1e-4);
}

/// The state is threaded through loops: every iteration (of nested loops too) draws fresh
/// numbers, the interpreter's.
#[test]
fn draws_in_loops_match_the_interpreter() {
    let looped = "HloModule m\n\
        inner_body {\n  p = (s32[], f32[8]) parameter(0)\n  i = s32[] get-tuple-element(p), index=0\n  \
        acc = f32[8] get-tuple-element(p), index=1\n  one = s32[] constant(1)\n  j = s32[] add(i, one)\n  \
        a = f32[] constant(0)\n  b = f32[] constant(1)\n  r = f32[8] rng(a, b), distribution=rng_normal\n  \
        acc2 = f32[8] add(acc, r)\n  ROOT q = (s32[], f32[8]) tuple(j, acc2)\n}\n\
        inner_cond {\n  p = (s32[], f32[8]) parameter(0)\n  i = s32[] get-tuple-element(p), index=0\n  \
        n = s32[] constant(3)\n  ROOT lt = pred[] compare(i, n), direction=LT\n}\n\
        body {\n  p = (s32[], f32[5,8], s32[5,8]) parameter(0)\n  i = s32[] get-tuple-element(p), index=0\n  \
        acc = f32[5,8] get-tuple-element(p), index=1\n  ints = s32[5,8] get-tuple-element(p), index=2\n  \
        one = s32[] constant(1)\n  j = s32[] add(i, one)\n  \
        a = f32[] constant(0)\n  b = f32[] constant(1)\n  r = f32[8] rng(a, b), distribution=rng_uniform\n  \
        lo = s32[] constant(-1000)\n  hi = s32[] constant(1000)\n  k = s32[8] rng(lo, hi), distribution=rng_uniform\n  \
        z = f32[8] broadcast(a), dimensions={}\n  zero = s32[] constant(0)\n  \
        init = (s32[], f32[8]) tuple(zero, z)\n  \
        w = (s32[], f32[8]) while(init), condition=inner_cond, body=inner_body\n  \
        sum = f32[8] get-tuple-element(w), index=1\n  both = f32[8] add(r, sum)\n  \
        row = f32[1,8] reshape(both)\n  krow = s32[1,8] reshape(k)\n  \
        acc2 = f32[5,8] dynamic-update-slice(acc, row, i, zero)\n  \
        ints2 = s32[5,8] dynamic-update-slice(ints, krow, i, zero)\n  \
        ROOT q = (s32[], f32[5,8], s32[5,8]) tuple(j, acc2, ints2)\n}\n\
        cond {\n  p = (s32[], f32[5,8], s32[5,8]) parameter(0)\n  i = s32[] get-tuple-element(p), index=0\n  \
        n = s32[] constant(5)\n  ROOT lt = pred[] compare(i, n), direction=LT\n}\n\
        ENTRY e {\n  zero = s32[] constant(0)\n  z = f32[] constant(0)\n  acc = f32[5,8] broadcast(z), dimensions={}\n  \
        ints = s32[5,8] broadcast(zero), dimensions={}\n  \
        first = f32[5,8] rng(z, z), distribution=rng_normal\n  \
        init = (s32[], f32[5,8], s32[5,8]) tuple(zero, acc, ints)\n  \
        w = (s32[], f32[5,8], s32[5,8]) while(init), condition=cond, body=body\n  \
        a = f32[] constant(-1)\n  b = f32[] constant(1)\n  last = f32[7] rng(a, b), distribution=rng_uniform\n  \
        out = f32[5,8] get-tuple-element(w), index=1\n  outi = s32[5,8] get-tuple-element(w), index=2\n  \
        ROOT t = (f32[5,8], s32[5,8], f32[7], f32[5,8]) tuple(out, outi, last, first)\n}\n";
    check(looped, &[], 1e-5);
    // The integer draws alone, bit for bit.
    let m = parse(looped);
    let want = run_interp(&m, &[]);
    let c = compile_checked(&parse_and_fuse(looped));
    let got = run_vulkan(&vulkan(), &c, &[]);
    assert_eq!(got[1], want[1]);
    assert_eq!(got[2], want[2]);
}

/// The state op itself: the state before each advance, low word first.
#[test]
fn get_and_update_state_matches_the_interpreter() {
    let hlo = "HloModule m\nENTRY e {\n  s0 = u64[2] rng-get-and-update-state(), delta=5\n  \
               s1 = u64[2] rng-get-and-update-state(), delta=7\n  \
               dead = u64[2] rng-get-and-update-state(), delta=100\n  \
               s2 = u64[2] rng-get-and-update-state(), delta=-1\n  s3 = u64[2] rng-get-and-update-state(), delta=1\n  \
               ROOT t = (u64[2], u64[2], u64[2], u64[2]) tuple(s0, s1, s2, s3)\n}\n";
    check(hlo, &[], 0.0);
    let want = run_interp(&parse(hlo), &[]);
    let words =
        |b: &[u8]| [u64::from_le_bytes(b[..8].try_into().unwrap()), u64::from_le_bytes(b[8..].try_into().unwrap())];
    assert_eq!(words(&want[2]), [12, 0]);
    assert_eq!(words(&want[3]), [11, 0]);
}

/// A conditional one of whose branches draws numbers passes the state to every branch: the
/// interpreter's numbers whichever branch runs, and the draws after it continue from there.
#[test]
fn draws_in_a_conditional_match_the_interpreter() {
    let hlo = "HloModule m\n\
        yes {\n  p = f32[] parameter(0)\n  one = f32[] constant(1)\n  \
        ROOT r = f32[4] rng(p, one), distribution=rng_normal\n}\n\
        no {\n  p = f32[] parameter(0)\n  ROOT r = f32[4] broadcast(p), dimensions={}\n}\n\
        ENTRY e {\n  c = pred[] parameter(0)\n  x = f32[] parameter(1)\n  \
        first = f32[4] rng(x, x), distribution=rng_uniform\n  \
        r = f32[4] conditional(c, x, x), true_computation=yes, false_computation=no\n  \
        z = f32[] constant(0)\n  one = f32[] constant(1)\n  after = f32[4] rng(z, one), distribution=rng_uniform\n  \
        ROOT t = (f32[4], f32[4], f32[4]) tuple(first, r, after)\n}\n";
    for c in [0u8, 1] {
        check(hlo, &[vec![c], 0.5f32.to_le_bytes().to_vec()], 1e-6);
    }
}

/// Numbers drawn in a loop condition (`rng-loop-conditions`): the loop carries the condition's
/// result, so the state advances once per evaluation of the condition, before the first iteration
/// and after every body, as the interpreter draws; the body's draws and those after the loop
/// continue from there. Body draws of every threshold size.
#[test]
fn draws_in_a_loop_condition_match_the_interpreter() {
    for n in [1, 16, 17, 256, 257, 4097] {
        let hlo = format!(
            "HloModule m\n\
            body {{\n  p = (s32[], f32[{n}]) parameter(0)\n  i = s32[] get-tuple-element(p), index=0\n  \
            acc = f32[{n}] get-tuple-element(p), index=1\n  one = s32[] constant(1)\n  j = s32[] add(i, one)\n  \
            a = f32[] constant(0)\n  b = f32[] constant(1)\n  r = f32[{n}] rng(a, b), distribution=rng_uniform\n  \
            acc2 = f32[{n}] add(acc, r)\n  ROOT q = (s32[], f32[{n}]) tuple(j, acc2)\n}}\n\
            cond {{\n  p = (s32[], f32[{n}]) parameter(0)\n  i = s32[] get-tuple-element(p), index=0\n  \
            z = f32[] constant(0)\n  one = f32[] constant(1)\n  r = f32[3] rng(z, one), distribution=rng_uniform\n  \
            r0 = f32[1] slice(r), slice={{[0:1]}}\n  x = f32[] reshape(r0)\n  lim = f32[] constant(0.9)\n  \
            go = pred[] compare(x, lim), direction=LT\n  n = s32[] constant(40)\n  \
            more = pred[] compare(i, n), direction=LT\n  ROOT c = pred[] and(go, more)\n}}\n\
            ENTRY e {{\n  zero = s32[] constant(0)\n  z = f32[] constant(0)\n  one = f32[] constant(1)\n  \
            acc = f32[{n}] broadcast(z), dimensions={{}}\n  init = (s32[], f32[{n}]) tuple(zero, acc)\n  \
            w = (s32[], f32[{n}]) while(init), condition=cond, body=body\n  \
            after = f32[5] rng(z, one), distribution=rng_uniform\n  \
            i = s32[] get-tuple-element(w), index=0\n  out = f32[{n}] get-tuple-element(w), index=1\n  \
            ROOT t = (s32[], f32[{n}], f32[5]) tuple(i, out, after)\n}}\n"
        );
        check(&hlo, &[], 0.0);
        // The loop ran (and stops on a draw or on its bound).
        let trips = i32::from_le_bytes(run_interp(&parse(&hlo), &[])[0][..4].try_into().unwrap());
        assert!((1..=40).contains(&trips), "{trips} iterations");
    }
}

/// XLA's form: `rng-get-and-update-state` in a loop condition whose carry is one array, and in the
/// body; the condition's and the body's advances interleave, so the sums tell any other order.
#[test]
fn state_ops_in_a_loop_condition_match_the_interpreter() {
    let hlo = "HloModule m\n\
        body {\n  x = u64[2] parameter(0)\n  s = u64[2] rng-get-and-update-state(), delta=3\n  \
        ROOT y = u64[2] add(x, s)\n}\n\
        cond {\n  x = u64[2] parameter(0)\n  s = u64[2] rng-get-and-update-state(), delta=5\n  \
        lo = u64[1] slice(s), slice={[0:1]}\n  l = u64[] reshape(lo)\n  seven = u64[] constant(7)\n  \
        m = u64[] remainder(l, seven)\n  zero = u64[] constant(0)\n  go = pred[] compare(m, zero), direction=NE\n  \
        c0 = u64[1] slice(x), slice={[1:2]}\n  c = u64[] reshape(c0)\n  cap = u64[] constant(0)\n  \
        small = pred[] compare(c, cap), direction=GE\n  ROOT r = pred[] and(go, small)\n}\n\
        ENTRY e {\n  z = u64[] constant(0)\n  init = u64[2] broadcast(z), dimensions={}\n  \
        w = u64[2] while(init), condition=cond, body=body\n  \
        s = u64[2] rng-get-and-update-state(), delta=1\n  ROOT t = (u64[2], u64[2]) tuple(w, s)\n}\n";
    check(hlo, &[], 0.0);
}

/// Numbers drawn in a reducer are refused by name: how many times, and in what order, a reduce
/// applies its reducer is the implementation's choice, and the device's is not the interpreter's.
#[test]
fn draws_in_a_reducer_are_refused_by_name() {
    let hlo = "HloModule m\n\
        red {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  z = f32[] constant(0)\n  \
        one = f32[] constant(1)\n  r = f32[] rng(z, one), distribution=rng_uniform\n  s = f32[] add(a, b)\n  \
        ROOT t = f32[] add(s, r)\n}\n\
        ENTRY e {\n  x = f32[8] parameter(0)\n  z = f32[] constant(0)\n  \
        ROOT r = f32[] reduce(x, z), dimensions={0}, to_apply=red\n}\n";
    let mut m = parse(hlo);
    let err = hlo_passes::run_pipeline(&mut m, &mut hlo_passes::PipelineOptions::default()).unwrap_err().to_string();
    assert!(err.contains("rng-state-threading") && err.contains("reduce"), "{err}");
}

/// A loop whose state is one array (not a tuple) gets the rng state as a second element; draws
/// nothing needs (in the loop and outside it) advance nothing, on either backend.
#[test]
fn array_loop_state_and_unused_draws() {
    let hlo = "HloModule m\n\
        body {\n  x = f32[16] parameter(0)\n  a = f32[] constant(0)\n  b = f32[] constant(1)\n  \
        unused = f32[16] rng(a, b), distribution=rng_normal\n  r = f32[16] rng(a, b), distribution=rng_uniform\n  \
        ROOT y = f32[16] add(x, r)\n}\n\
        cond {\n  x = f32[16] parameter(0)\n  i = f32[1] slice(x), slice={[0:1]}\n  s = f32[] reshape(i)\n  \
        n = f32[] constant(3)\n  ROOT lt = pred[] compare(s, n), direction=LT\n}\n\
        ENTRY e {\n  z = f32[] constant(0)\n  one = f32[] constant(1)\n  \
        dead = f32[8] rng(z, one), distribution=rng_uniform\n  init = f32[16] broadcast(z), dimensions={}\n  \
        w = f32[16] while(init), condition=cond, body=body\n  \
        after = f32[16] rng(z, one), distribution=rng_uniform\n  \
        ROOT t = (f32[16], f32[16]) tuple(w, after)\n}\n";
    check(hlo, &[], 0.0);
}

/// XLA's own expansion of two `rng`s (`tests/cases/xla_rng/module.opt.hlo`: JAX 0.8.3's
/// `jax.jit` of two `lax.rng_uniform` draws in [-1, 2), compiled for CPU): `rng-get-and-update-state`
/// in the entry feeding fused Philox arithmetic. Both backends draw from the same state, so the
/// same bits; every value lies in [-1, 2).
#[test]
fn xla_expanded_rng_module_runs_on_both_backends() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/xla_rng/module.opt.hlo");
    let text = std::fs::read_to_string(path).unwrap();
    let inputs = vec![(-1f32).to_le_bytes().to_vec(), 2f32.to_le_bytes().to_vec()];
    check(&text, &inputs, 0.0);
    let out = run_interp(&parse(&text), &inputs);
    for (bytes, scale) in out.iter().zip([1.0f32, 2.0]) {
        let v: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert!(v.iter().all(|&x| (-scale..2.0 * scale).contains(&x)), "a value outside the range");
    }
    assert_ne!(out[0][..60], out[1][..60], "the two draws are the same");
}

/// Narrow types: 8-bit floats draw in f32 and round once (a value that rounds to `b` becomes
/// `a`), 2- and 4-bit integers draw in 32 bits; bit for bit on both backends, and in range.
#[test]
fn narrow_types_draw_in_range() {
    for n in [17usize, 1000] {
        let hlo = format!(
            "HloModule m\nENTRY e {{\n  a = f8e4m3fn[] constant(-2)\n  b = f8e4m3fn[] constant(3)\n  \
             c = f8e5m2[] constant(0)\n  d = f8e5m2[] constant(1)\n  i = s4[] constant(-3)\n  j = s4[] constant(5)\n  \
             k = u2[] constant(0)\n  l = u2[] constant(3)\n  \
             x = f8e4m3fn[{n}] rng(a, b), distribution=rng_uniform\n  y = f8e5m2[{n}] rng(c, d), distribution=rng_uniform\n  \
             z = s4[{n}] rng(i, j), distribution=rng_uniform\n  w = u2[{n}] rng(k, l), distribution=rng_uniform\n  \
             xf = f32[{n}] convert(x)\n  yf = f32[{n}] convert(y)\n  zf = f32[{n}] convert(z)\n  wf = f32[{n}] convert(w)\n  \
             ROOT t = (f32[{n}], f32[{n}], f32[{n}], f32[{n}]) tuple(xf, yf, zf, wf)\n}}\n"
        );
        check(&hlo, &[], 0.0);
        let out = run_interp(&parse(&hlo), &[]);
        for (bytes, (lo, hi)) in out.iter().zip([(-2.0f32, 3.0f32), (0.0, 1.0), (-3.0, 5.0), (0.0, 3.0)]) {
            let v: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
            assert!(v.iter().all(|&x| x >= lo && x < hi), "a value outside [{lo}, {hi}): {v:?}");
            assert!(v.iter().any(|&x| x != v[0]), "all draws equal in [{lo}, {hi})");
        }
    }
}
