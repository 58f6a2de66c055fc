//! Reduce-window at sizes that used to be quadratic (cumulative sums over the whole
//! dimension), checked against a brute-force window walk; and the evaluator's bounds: a
//! memory limit that turns huge results into errors, and a bound on `while` trips.

use hlo_interp::{evaluate_with, InterpError, Options};
use hlo_ir::{ArrayData, ArrayShape, DType, Literal};

fn module(text: &str) -> hlo_ir::Module {
    hlo_parse::parse_module(text).unwrap_or_else(|e| panic!("parse error: {e}\n{text}"))
}

fn f32s(dims: &[i64], v: Vec<f32>) -> Literal {
    Literal::array(ArrayShape::new(DType::F32, dims.to_vec()), ArrayData::F32(v))
}

fn f32_data(lit: &Literal) -> &[f32] {
    match lit.array_data() {
        Some(ArrayData::F32(v)) => v,
        other => panic!("expected f32 data, got {other:?}"),
    }
}

/// Deterministic values that make float sums order-sensitive.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let unit = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            unit * (1 + (s % 7) as i32 * 100) as f32
        })
        .collect()
}

fn window_module(n: i64, out: i64, window: &str) -> String {
    format!(
        "HloModule m\nadd {{\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}}\n\
         ENTRY e {{\n  x = f32[{n}] parameter(0)\n  z = f32[] constant(0)\n  \
         ROOT r = f32[{out}] reduce-window(x, z), window={{{window}}}, to_apply=add\n}}\n"
    )
}

/// A reference reduce-window over one dimension: every window position in order, from 0.
#[allow(clippy::too_many_arguments)]
fn naive_window(x: &[f32], out: i64, size: i64, stride: i64, lo: i64, wdil: i64, bdil: i64) -> Vec<f32> {
    let n = x.len() as i64;
    (0..out)
        .map(|o| {
            let mut acc = 0.0f32;
            for k in 0..size {
                let pos = o * stride - lo + k * wdil;
                if pos >= 0 && pos % bdil == 0 && pos / bdil < n {
                    acc += x[(pos / bdil) as usize];
                }
            }
            acc
        })
        .collect()
}

#[test]
fn a_cumulative_sum_of_a_million_is_the_sequential_prefix_sum() {
    let n = 1_000_000i64;
    let x = values(n as usize, 1);
    let m = module(&window_module(n, n, &format!("size={n} pad={}_0", n - 1)));
    let start = std::time::Instant::now();
    let got = evaluate_with(&m, &[f32s(&[n], x.clone())], &Options::default()).unwrap();
    assert!(start.elapsed().as_secs() < 60, "linear, not quadratic: {:?}", start.elapsed());
    let mut acc = 0.0f32;
    let want: Vec<u32> = x
        .iter()
        .map(|v| {
            acc += v;
            acc.to_bits()
        })
        .collect();
    let got: Vec<u32> = f32_data(&got).iter().map(|v| v.to_bits()).collect();
    assert!(got == want, "the prefix sums differ from a sequential scan");
}

#[test]
fn windows_match_a_brute_force_walk() {
    // (n, size, stride, pad_low, pad_high, window dilation, base dilation)
    let cases = [
        (10, 3, 1, 0, 0, 1, 1),
        (10, 10, 1, 9, 0, 1, 1),
        (10, 10, 1, 0, 9, 1, 1),
        (10, 10, 1, 10, 0, 1, 1),
        (17, 4, 3, 2, 5, 2, 1),
        (9, 5, 2, 3, 3, 1, 3),
        (8, 4, 1, 1, 2, 3, 2),
        (12, 6, 4, 7, 1, 2, 5),
        (7, 100, 1, 99, 0, 1, 1),
        (5, 3, 7, 0, 0, 1, 1),
    ];
    for (n, size, stride, lo, hi, wdil, bdil) in cases {
        let padded = (n - 1) * bdil + 1 + lo + hi;
        let out = if padded < (size - 1) * wdil + 1 { 0 } else { (padded - (size - 1) * wdil - 1) / stride + 1 };
        let mut window = format!("size={size} stride={stride} pad={lo}_{hi}");
        if wdil != 1 {
            window += &format!(" rhs_dilate={wdil}");
        }
        if bdil != 1 {
            window += &format!(" lhs_dilate={bdil}");
        }
        let x = values(n as usize, n as u64);
        let m = module(&window_module(n, out, &window));
        let got = evaluate_with(&m, &[f32s(&[n], x.clone())], &Options::default())
            .unwrap_or_else(|e| panic!("{window}: {e}"));
        let want = naive_window(&x, out, size, stride, lo, wdil, bdil);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(f32_data(&got)), bits(&want), "{window} over {n}");
    }
}

#[test]
fn a_cumulative_sum_along_the_major_axis_of_a_matrix() {
    let (rows, cols) = (300i64, 5i64);
    let x = values((rows * cols) as usize, 7);
    let text = format!(
        "HloModule m\nadd {{\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}}\n\
         ENTRY e {{\n  x = f32[{rows},{cols}] parameter(0)\n  z = f32[] constant(0)\n  \
         ROOT r = f32[{rows},{cols}] reduce-window(x, z), window={{size={rows}x1 pad={}_0x0_0}}, to_apply=add\n}}\n",
        rows - 1
    );
    let got = evaluate_with(&module(&text), &[f32s(&[rows, cols], x.clone())], &Options::default()).unwrap();
    let got = f32_data(&got);
    for c in 0..cols as usize {
        let mut acc = 0.0f32;
        for r in 0..rows as usize {
            acc += x[r * cols as usize + c];
            assert_eq!(got[r * cols as usize + c].to_bits(), acc.to_bits(), "row {r} column {c}");
        }
    }
}

#[test]
fn results_past_the_memory_limit_are_errors() {
    let limited = Options { memory_limit: Some(64 << 20), ..Options::default() };
    for (text, instr) in [
        ("ENTRY e {\n  c = f32[] constant(1)\n  ROOT b = f32[4000000000] broadcast(c), dimensions={}\n}", "b"),
        ("ENTRY e {\n  ROOT i = s32[100000,100000] iota(), iota_dimension=0\n}", "i"),
        (
            "ENTRY e {\n  p = f32[2] constant({1, 2})\n  c = f32[] constant(0)\n  \
             ROOT q = f32[8000000002] pad(p, c), padding=0_8000000000\n}",
            "q",
        ),
    ] {
        let m = module(&format!("HloModule m\n{text}\n"));
        match evaluate_with(&m, &[], &limited) {
            Err(InterpError::OutOfMemory { instr: i, limit, .. }) => {
                assert_eq!((i.as_str(), limit), (instr, 64 << 20));
            }
            other => panic!("expected an out-of-memory error for {instr}, got {other:?}"),
        }
    }
    // The same limit lets a small program through, and nothing is left counted afterwards.
    let small = module(
        "HloModule m\nENTRY e {\n  c = f32[] constant(1)\n  ROOT b = f32[1000] broadcast(c), dimensions={}\n}\n",
    );
    for _ in 0..3 {
        evaluate_with(&small, &[], &limited).unwrap();
    }
}

#[test]
fn while_trips_can_be_bounded() {
    let m = module(
        "HloModule m\n\
         cond {\n  p = s32[] parameter(0)\n  ROOT t = pred[] constant(true)\n}\n\
         body {\n  p = s32[] parameter(0)\n  one = s32[] constant(1)\n  ROOT n = s32[] add(p, one)\n}\n\
         ENTRY e {\n  z = s32[] constant(0)\n  ROOT w = s32[] while(z), condition=cond, body=body\n}\n",
    );
    let bounded = Options { max_while_iterations: Some(1000), ..Options::default() };
    match evaluate_with(&m, &[], &bounded) {
        Err(InterpError::TooManyIterations { instr, limit, .. }) => assert_eq!((instr.as_str(), limit), ("w", 1000)),
        other => panic!("expected the trip bound to stop the loop, got {other:?}"),
    }
}
