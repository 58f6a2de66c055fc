//! Ops that passes expand into ops both backends run: `mulhi` (`mulhi-expander`),
//! `stochastic-convert` (`stochastic-convert-decomposer`), `dynamic-reshape` and
//! `set-dimension-size` of static sizes (`dynamic-padder`), async pairs, `copy-start`/
//! `copy-done`, `partition-id` and `replica-id` (`single-device`), and `reduce-window` over a
//! scalar (`scalar-reduce-window`). Each runs on lavapipe
//! (validation layer on) through the whole pipeline and is compared bit for bit with the
//! interpreter evaluating the unexpanded module, which implements these ops itself; sizes
//! straddle the codegen thresholds (1, 16, 17, 64, 256, 1000).

mod common;
use common::*;
use hlo_ir::DType;

const SIZES: [usize; 6] = [1, 16, 17, 64, 256, 1000];

/// Runs `hlo` through the pipeline on lavapipe and through the interpreter unexpanded (in
/// XLA:CPU's floating-point environment, as the device fuses multiply-adds), and requires every
/// output to be equal bit for bit.
fn check(hlo: &str, inputs: &[Vec<u8>]) {
    check_within(hlo, inputs, 0.0);
}

/// [`check`] with floats within a relative L2 error of `tol` (0: bit for bit).
fn check_within(hlo: &str, inputs: &[Vec<u8>], tol: f64) {
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

/// A xorshift stream.
fn stream(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// `n` integers of `dtype`'s width, edge values first (0, 1, -1, the extremes, the half-width
/// boundaries), then random bits.
fn int_bytes(dtype: DType, n: usize, seed: u64) -> Vec<u8> {
    let bytes = dtype.bit_width() as usize / 8;
    let bits = dtype.bit_width();
    let half = 1u64 << (bits / 2);
    let top = 1u64 << (bits - 1);
    let edges = [0u64, 1, u64::MAX, top, top - 1, half, half - 1, half + 1, 2, top + 1, u64::MAX - 1, 3];
    let mut next = stream(seed);
    let mut out = Vec::new();
    for i in 0..n {
        let v = if i < edges.len() { edges[(i + seed as usize) % edges.len()] } else { next() };
        out.extend_from_slice(&v.to_le_bytes()[..bytes]);
    }
    out
}

#[test]
fn mulhi_of_every_integer_width() {
    let types = ["s8", "u8", "s16", "u16", "s32", "u32", "s64", "u64"];
    for n in SIZES {
        let mut hlo = String::from("HloModule m\n\nENTRY e {\n");
        let mut results = Vec::new();
        let mut inputs = Vec::new();
        for (k, ty) in types.iter().enumerate() {
            let dtype = DType::from_name(ty).unwrap();
            hlo += &format!("  a{k} = {ty}[{n}] parameter({})\n  b{k} = {ty}[{n}] parameter({})\n", 2 * k, 2 * k + 1);
            hlo += &format!("  r{k} = {ty}[{n}] mulhi(a{k}, b{k})\n");
            results.push((format!("{ty}[{n}]"), format!("r{k}")));
            inputs.push(int_bytes(dtype, n, 2 * k as u64 + 1));
            inputs.push(int_bytes(dtype, n, 2 * k as u64 + 2));
        }
        let (shapes, names): (Vec<String>, Vec<String>) = results.into_iter().unzip();
        hlo += &format!("  ROOT t = ({}) tuple({})\n}}\n", shapes.join(", "), names.join(", "));
        check(&hlo, &inputs);
    }
}

/// The interpreter's `mulhi` against 128-bit products, so the oracle is checked too.
#[test]
fn mulhi_in_the_interpreter_is_the_high_half() {
    let hlo = "HloModule m\n\nENTRY e {\n  a = s64[4] parameter(0)\n  b = s64[4] parameter(1)\n  \
               x = u64[4] parameter(2)\n  y = u64[4] parameter(3)\n  \
               s = s64[4] mulhi(a, b)\n  u = u64[4] mulhi(x, y)\n  ROOT t = (s64[4], u64[4]) tuple(s, u)\n}\n";
    let a = [i64::MIN, -1, 3_000_000_000_000, i64::MAX];
    let b = [i64::MIN, 5, -7_000_000_000_000, i64::MAX];
    let x = [u64::MAX, 1 << 63, 12_345_678_901_234_567, 3];
    let y = [u64::MAX, 3, 98_765_432_109_876_543, u64::MAX];
    let le = |v: &[u64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let signed = |v: &[i64]| le(&v.iter().map(|&x| x as u64).collect::<Vec<_>>());
    let inputs = [signed(&a), signed(&b), le(&x), le(&y)];
    let out = run_interp(&parse(hlo), &inputs);
    let want_s: Vec<i64> = a.iter().zip(&b).map(|(&a, &b)| ((a as i128 * b as i128) >> 64) as i64).collect();
    let want_u: Vec<u64> = x.iter().zip(&y).map(|(&x, &y)| ((x as u128 * y as u128) >> 64) as u64).collect();
    assert_eq!(out[0], signed(&want_s));
    assert_eq!(out[1], le(&want_u));
    check(hlo, &inputs);
}

/// Float bytes of `dtype`: special values first (NaN, infinities, signed zeros, halves, the
/// integer limits and just inside them), then values with fractions in [-300, 300].
fn float_bytes(dtype: DType, n: usize, seed: u64) -> Vec<u8> {
    let specials = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        0.5,
        -0.5,
        2.25,
        -2.25,
        127.5,
        -128.5,
        126.75,
        -127.75,
        32767.5,
        -32768.0,
        2147483520.0,
        -2147483648.0,
        1e10,
        -1e10,
        9.3e18,
        -9.3e18,
        1e-40,
        65504.0,
    ];
    let mut next = stream(seed);
    let mut out = Vec::new();
    for i in 0..n {
        let v = if i < specials.len() {
            specials[(i + seed as usize) % specials.len()]
        } else {
            (next() >> 11) as f64 / (1u64 << 53) as f64 * 600.0 - 300.0
        };
        match dtype {
            DType::F64 => out.extend_from_slice(&v.to_le_bytes()),
            DType::F32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
            DType::F16 => out.extend_from_slice(&half::f16::from_f64(v).to_le_bytes()),
            DType::BF16 => out.extend_from_slice(&half::bf16::from_f64(v).to_le_bytes()),
            other => panic!("no floats of {other}"),
        }
    }
    out
}

#[test]
fn stochastic_convert_to_signed_integers() {
    let froms = [("f32", "u32"), ("f16", "u16"), ("bf16", "u16"), ("f64", "u64")];
    let tos = ["s8", "s16", "s32", "s64"];
    for n in SIZES {
        for (from, random) in froms {
            let from_t = DType::from_name(from).unwrap();
            let random_t = DType::from_name(random).unwrap();
            let mut hlo = format!(
                "HloModule m\n\nENTRY e {{\n  x = {from}[{n}] parameter(0)\n  r = {random}[{n}] parameter(1)\n"
            );
            for (k, to) in tos.iter().enumerate() {
                hlo += &format!("  c{k} = {to}[{n}] stochastic-convert(x, r)\n");
            }
            let shapes: Vec<String> = tos.iter().map(|to| format!("{to}[{n}]")).collect();
            let names: Vec<String> = (0..tos.len()).map(|k| format!("c{k}")).collect();
            hlo += &format!("  ROOT t = ({}) tuple({})\n}}\n", shapes.join(", "), names.join(", "));
            check(&hlo, &[float_bytes(from_t, n, n as u64), int_bytes(random_t, n, 7)]);
        }
    }
}

/// The interpreter's `stochastic-convert` by hand: 2.25 rounds up where the random bits are
/// below a quarter of their range, and the sign is put back.
#[test]
fn stochastic_convert_in_the_interpreter_rounds_by_the_random_bits() {
    let hlo = "HloModule m\n\nENTRY e {\n  x = f32[6] parameter(0)\n  r = u32[6] parameter(1)\n  \
               ROOT c = s32[6] stochastic-convert(x, r)\n}\n";
    let x = [2.25f32, 2.25, -2.25, -2.25, f32::NAN, 3e9];
    let r = [0x3fff_ffffu32, 0x4000_0000, 0x3fff_ffff, 0x4000_0000, 0, 0];
    let inputs = [
        x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        r.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
    ];
    let out = run_interp(&parse(hlo), &inputs);
    let want: Vec<u8> = [3i32, 2, -3, -2, 0, i32::MAX].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(out[0], want);
    check(hlo, &inputs);
}

#[test]
fn dynamic_reshape_and_set_dimension_size_of_static_sizes() {
    for n in [16usize, 64, 256, 1000] {
        let (rows, cols) = (n / 8, 8);
        let hlo = format!(
            "HloModule m\n\nENTRY e {{\n  x = f32[{n}] parameter(0)\n  d = s32[] constant({n})\n  \
             s = f32[<={n}] set-dimension-size(x, d), dimensions={{0}}\n  \
             e = f32[<={n}] multiply(s, s)\n  r0 = s32[] constant({rows})\n  r1 = s32[] constant({cols})\n  \
             r = f32[{rows},{cols}] dynamic-reshape(e, r0, r1)\n  ROOT t = (f32[<={n}], f32[{rows},{cols}]) tuple(s, r)\n}}\n"
        );
        check(&hlo, &[float_bytes(DType::F32, n, 3)]);
    }
}

/// A constant size past the bound is refused by name when compiling (sizes below it run padded,
/// `crates/hlo-run/tests/dynamic_shapes.rs`).
#[test]
fn set_dimension_size_past_the_bound_is_refused() {
    let hlo = "HloModule m\n\nENTRY e {\n  x = f32[8] parameter(0)\n  d = s32[] constant(9)\n  \
               ROOT s = f32[<=8] set-dimension-size(x, d), dimensions={0}\n}\n";
    let mut m = parse(hlo);
    let err = hlo_passes::run_pipeline(&mut m, &mut hlo_passes::PipelineOptions::default()).unwrap_err().to_string();
    assert!(err.contains("set-dimension-size (%s)") && err.contains("outside 0..=8"), "{err}");
    let args = [hlo_interp::literal_from_bytes(&hlo_ir::ArrayShape::new(DType::F32, vec![8]), &[0; 32]).unwrap()];
    let err = hlo_interp::evaluate(&parse(hlo), &args).unwrap_err().to_string();
    assert!(err.contains("set-dimension-size"), "{err}");
}

#[test]
fn async_pairs_copies_and_device_ids() {
    for n in SIZES {
        let hlo = format!(
            "HloModule m\n\n\
             wrapped {{\n  w = f32[{n}] parameter(0)\n  v = f32[{n}] parameter(1)\n  m = f32[{n}] multiply(w, v)\n  \
             ROOT a = f32[{n}] add(m, w)\n}}\n\n\
             ENTRY e {{\n  x = f32[{n}] parameter(0)\n  y = f32[{n}] parameter(1)\n  \
             start = ((f32[{n}], f32[{n}]), f32[{n}], s32[]) async-start(x, y), async_execution_thread=\"worker\", calls=wrapped\n  \
             update = ((f32[{n}], f32[{n}]), f32[{n}], s32[]) async-update(start)\n  \
             done = f32[{n}] async-done(update)\n  \
             cs = (f32[{n}], f32[{n}], u32[]) copy-start(done)\n  cd = f32[{n}] copy-done(cs)\n  \
             p = u32[] partition-id()\n  r = u32[] replica-id()\n  pr = u32[] add(p, r)\n  \
             prf = f32[] convert(pr)\n  two = f32[] constant(2)\n  scale = f32[] add(prf, two)\n  \
             prb = f32[{n}] broadcast(scale), dimensions={{}}\n  sum = f32[{n}] multiply(cd, prb)\n  ROOT t = (f32[{n}], u32[], u32[]) tuple(sum, p, r)\n}}\n"
        );
        check(&hlo, &[float_bytes(DType::F32, n, 1), float_bytes(DType::F32, n, 2)]);
    }
}

/// A window over a scalar holds its one element: the reducer applied to the initial value and
/// it, single and variadic (a max with its index, as JAX's argmax writes it).
#[test]
fn reduce_window_over_scalars() {
    let hlo = "HloModule m\n\n\
               add {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}\n\n\
               argmax {\n  av = f32[] parameter(0)\n  ai = s32[] parameter(1)\n  bv = f32[] parameter(2)\n  \
               bi = s32[] parameter(3)\n  gt = pred[] compare(av, bv), direction=GT\n  \
               v = f32[] select(gt, av, bv)\n  i = s32[] select(gt, ai, bi)\n  ROOT t = (f32[], s32[]) tuple(v, i)\n}\n\n\
               ENTRY e {\n  x = f32[] parameter(0)\n  k = s32[] parameter(1)\n  init = f32[] constant(1.5)\n  \
               s = f32[] reduce-window(x, init), window={}, to_apply=add\n  \
               lo = f32[] constant(-inf)\n  none = s32[] constant(-1)\n  \
               m = (f32[], s32[]) reduce-window(x, k, lo, none), window={}, to_apply=argmax\n  \
               mv = f32[] get-tuple-element(m), index=0\n  mi = s32[] get-tuple-element(m), index=1\n  \
               ROOT t = (f32[], f32[], s32[]) tuple(s, mv, mi)\n}\n";
    for x in [2.25f32, -7.0, f32::NEG_INFINITY, f32::NAN] {
        check(hlo, &[x.to_le_bytes().to_vec(), 7i32.to_le_bytes().to_vec()]);
    }
}

/// Rows of `lhs` in groups, each group's rows times its own `rhs` matrix; rows after the last
/// group are zero (group sizes that leave rows over, and ones that run past the end). The
/// interpreter sums in f64, the device in f32: a relative error of 1e-6.
#[test]
fn ragged_dot_with_ragged_rows() {
    for m in SIZES {
        for (k, n) in [(8usize, 5usize), (17, 16)] {
            let g = 3usize;
            let hlo = format!(
                "HloModule m\n\nENTRY e {{\n  a = f32[{m},{k}] parameter(0)\n  b = f32[{g},{k},{n}] parameter(1)\n  \
                 s = s32[{g}] parameter(2)\n  ROOT r = f32[{m},{n}] ragged-dot(a, b, s), lhs_contracting_dims={{1}}, \
                 rhs_contracting_dims={{1}}, lhs_ragged_dims={{0}}, rhs_group_dims={{0}}\n}}\n"
            );
            let mut next = stream(m as u64 + k as u64);
            let mut floats = |len: usize| -> Vec<u8> {
                (0..len)
                    .flat_map(|_| (((next() >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0).to_le_bytes())
                    .collect()
            };
            let (a, b) = (floats(m * k), floats(g * k * n));
            for sizes in [[m as i32 / 4, m as i32 / 2, m as i32 / 8], [0, m as i32, 5], [m as i32 + 3, 1, 0]] {
                let s: Vec<u8> = sizes.iter().flat_map(|v| v.to_le_bytes()).collect();
                check_within(&hlo, &[a.clone(), b.clone(), s], 1e-6);
            }
        }
    }
}
