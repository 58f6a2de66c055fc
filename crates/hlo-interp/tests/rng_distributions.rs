//! `rng` (RngUniform, RngNormal) and `rng-get-and-update-state` in the interpreter. XLA's own
//! numbers come from a process-global state, so no bits can be compared with JAX's; what must
//! hold: the result's type and shape, every value in `[a, b)`, the distribution's mean and
//! variance within a few standard errors on 64k samples, the same numbers on every run of a
//! module, and fresh numbers for every draw (each `rng`, each loop iteration).

use hlo_interp::evaluate;
use hlo_ir::{ArrayData, Literal, LiteralData};

fn run(hlo: &str) -> Literal {
    let module = hlo_parse::parse_module(hlo).unwrap_or_else(|e| panic!("parse error: {e}\n{hlo}"));
    evaluate(&module, &[]).unwrap_or_else(|e| panic!("evaluation error: {e}\n{hlo}"))
}

fn values(lit: &Literal) -> Vec<f64> {
    match lit.array_data().expect("an array result") {
        ArrayData::F64(v) => v.clone(),
        ArrayData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        ArrayData::F16(v) => v.iter().map(|&x| x.to_f64()).collect(),
        ArrayData::BF16(v) => v.iter().map(|&x| x.to_f64()).collect(),
        ArrayData::S8(v) => v.iter().map(|&x| f64::from(x)).collect(),
        ArrayData::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
        ArrayData::S16(v) => v.iter().map(|&x| f64::from(x)).collect(),
        ArrayData::U16(v) => v.iter().map(|&x| f64::from(x)).collect(),
        ArrayData::S32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        ArrayData::U32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        ArrayData::S64(v) => v.iter().map(|&x| x as f64).collect(),
        ArrayData::U64(v) => v.iter().map(|&x| x as f64).collect(),
        other => panic!("unexpected data {other:?}"),
    }
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var)
}

/// `rng(a, b)` of `ty[dims]` with the given distribution, as the entry's root.
fn module(ty: &str, dims: &str, a: &str, b: &str, dist: &str) -> String {
    format!(
        "HloModule m\nENTRY e {{\n  a = {ty}[] constant({a})\n  b = {ty}[] constant({b})\n  \
         ROOT r = {ty}[{dims}] rng(a, b), distribution={dist}\n}}\n"
    )
}

const N: usize = 65536;

/// Mean and variance within 5 standard errors (the variance's error taken as that of a
/// distribution with kurtosis at most 3 over the variance squared... at most `2 var^2 / n` for a
/// normal, `0.8 var^2 / n` for a uniform; 3 var^2 / n covers both).
fn check_moments(v: &[f64], mean: f64, var: f64, what: &str) {
    let n = v.len() as f64;
    let (m, s2) = mean_var(v);
    let se_mean = (var / n).sqrt();
    let se_var = (3.0 * var * var / n).sqrt();
    assert!((m - mean).abs() < 5.0 * se_mean, "{what}: mean {m}, want {mean} +- {}", 5.0 * se_mean);
    assert!((s2 - var).abs() < 5.0 * se_var, "{what}: variance {s2}, want {var} +- {}", 5.0 * se_var);
}

#[test]
fn uniform_floats_lie_in_range_with_the_right_moments() {
    for (ty, a, b) in
        [("f32", -2.0, 3.0), ("f64", -2.0, 3.0), ("f16", 0.0, 1.0), ("bf16", -1.0, 1.0), ("f32", 0.0, 1.0)]
    {
        let lit = run(&module(ty, &format!("{N}"), &format!("{a}"), &format!("{b}"), "rng_uniform"));
        assert_eq!(lit.shape.to_string(), format!("{ty}[{N}]"));
        let v = values(&lit);
        assert!(v.iter().all(|&x| x >= a && x < b), "{ty}: a value outside [{a}, {b})");
        // Narrow types quantize [a, b): the moments of the grid differ from the continuous ones
        // by far less than the tolerance at 64k samples.
        check_moments(&v, (a + b) / 2.0, (b - a) * (b - a) / 12.0, &format!("uniform {ty} [{a}, {b})"));
    }
}

#[test]
fn uniform_integers_lie_in_range_and_hit_every_value_evenly() {
    for (ty, a, b) in
        [("s32", -5i64, 7i64), ("u32", 3, 10), ("s8", -3, 3), ("u16", 0, 2), ("s64", -100, 100), ("u8", 0, 255)]
    {
        let lit = run(&module(ty, &format!("16,{}", N / 16), &a.to_string(), &b.to_string(), "rng_uniform"));
        assert_eq!(lit.shape.to_string(), format!("{ty}[16,{}]", N / 16));
        let v = values(&lit);
        let k = (b - a) as usize;
        let mut counts = vec![0usize; k];
        for &x in &v {
            assert!(x >= a as f64 && x < b as f64, "{ty}: {x} outside [{a}, {b})");
            counts[(x as i64 - a) as usize] += 1;
        }
        // Each count is binomial(N, 1/k): within 6 standard deviations.
        let p = 1.0 / k as f64;
        let sd = (N as f64 * p * (1.0 - p)).sqrt();
        for (i, &c) in counts.iter().enumerate() {
            assert!((c as f64 - N as f64 * p).abs() < 6.0 * sd, "{ty}: value {} drawn {c} times of {N}", a + i as i64);
        }
    }
    // A 64-bit range wider than 2^32 reaches its upper half.
    let v = values(&run(&module("s64", "1024", "0", "1000000000000", "rng_uniform")));
    assert!(v.iter().all(|&x| (0.0..1e12).contains(&x)));
    assert!(v.iter().any(|&x| x > 5e11));
}

#[test]
fn normal_floats_have_the_right_moments() {
    for (ty, mean, sigma) in [("f32", 1.0, 2.0), ("f64", -3.0, 0.5), ("f16", 0.0, 1.0), ("f32", 0.0, 1.0)] {
        for dims in [format!("{N}"), format!("{},3", N / 3 + 1)] {
            let lit = run(&module(ty, &dims, &format!("{mean}"), &format!("{sigma}"), "rng_normal"));
            let v = values(&lit);
            assert!(v.iter().all(|x| x.is_finite()));
            check_moments(&v, mean, sigma * sigma, &format!("normal {ty}[{dims}] ({mean}, {sigma})"));
            // About 68% within one sigma.
            let within = v.iter().filter(|&&x| (x - mean).abs() < sigma).count() as f64 / v.len() as f64;
            assert!((within - 0.6827).abs() < 0.01, "{ty}: {within} within one sigma");
        }
    }
}

#[test]
fn odd_and_tiny_shapes() {
    for dims in ["", "1", "17", "3,5", "0", "2,0"] {
        for (ty, dist, a, b) in
            [("f32", "rng_normal", "0", "1"), ("f32", "rng_uniform", "0", "1"), ("s32", "rng_uniform", "0", "9")]
        {
            let lit = run(&module(ty, dims, a, b, dist));
            assert_eq!(lit.shape.to_string(), format!("{ty}[{dims}]"));
        }
    }
}

/// Two `rng`s draw different numbers, a run gives the same numbers as the last, and a loop
/// draws fresh numbers in every iteration.
#[test]
fn draws_are_fresh_and_runs_repeat() {
    let two = "HloModule m\nENTRY e {\n  a = f32[] constant(0)\n  b = f32[] constant(1)\n  \
               x = f32[64] rng(a, b), distribution=rng_uniform\n  y = f32[64] rng(a, b), distribution=rng_uniform\n  \
               ROOT t = (f32[64], f32[64]) tuple(x, y)\n}\n";
    let r1 = run(two);
    let r2 = run(two);
    assert_eq!(r1, r2);
    let LiteralData::Tuple(t) = &r1.data else { panic!("a tuple") };
    assert_ne!(values(&t[0]), values(&t[1]));

    let looped = "HloModule m\n\
        body {\n  p = (s32[], f32[4,8]) parameter(0)\n  i = s32[] get-tuple-element(p), index=0\n  \
        acc = f32[4,8] get-tuple-element(p), index=1\n  one = s32[] constant(1)\n  j = s32[] add(i, one)\n  \
        a = f32[] constant(0)\n  b = f32[] constant(1)\n  r = f32[8] rng(a, b), distribution=rng_uniform\n  \
        row = f32[1,8] reshape(r)\n  zero = s32[] constant(0)\n  \
        acc2 = f32[4,8] dynamic-update-slice(acc, row, i, zero)\n  ROOT q = (s32[], f32[4,8]) tuple(j, acc2)\n}\n\
        cond {\n  p = (s32[], f32[4,8]) parameter(0)\n  i = s32[] get-tuple-element(p), index=0\n  \
        n = s32[] constant(4)\n  ROOT lt = pred[] compare(i, n), direction=LT\n}\n\
        ENTRY e {\n  zero = s32[] constant(0)\n  z = f32[] constant(0)\n  acc = f32[4,8] broadcast(z), dimensions={}\n  \
        init = (s32[], f32[4,8]) tuple(zero, acc)\n  w = (s32[], f32[4,8]) while(init), condition=cond, body=body\n  \
        ROOT out = f32[4,8] get-tuple-element(w), index=1\n}\n";
    let v = values(&run(looped));
    let rows: Vec<&[f64]> = v.chunks(8).collect();
    for i in 0..4 {
        for j in 0..i {
            assert_ne!(rows[i], rows[j], "iterations {j} and {i} drew the same numbers");
        }
    }
}

/// `rng-get-and-update-state` returns the state before its own advance (low word first).
#[test]
fn get_and_update_state_advances_by_delta() {
    let hlo = "HloModule m\nENTRY e {\n  s0 = u64[2] rng-get-and-update-state(), delta=5\n  \
               s1 = u64[2] rng-get-and-update-state(), delta=7\n  s2 = u64[2] rng-get-and-update-state(), delta=1\n  \
               ROOT t = (u64[2], u64[2], u64[2]) tuple(s0, s1, s2)\n}\n";
    let r = run(hlo);
    let LiteralData::Tuple(t) = &r.data else { panic!("a tuple") };
    let words: Vec<Vec<f64>> = t.iter().map(values).collect();
    assert_eq!(words, vec![vec![0.0, 0.0], vec![5.0, 0.0], vec![12.0, 0.0]]);
}

#[test]
fn undefined_element_types_are_refused_by_name() {
    let module = hlo_parse::parse_module(&module("pred", "4", "false", "true", "rng_uniform")).unwrap();
    let err = evaluate(&module, &[]).unwrap_err().to_string();
    assert!(err.contains("rng") && err.contains("pred"), "{err}");
}
