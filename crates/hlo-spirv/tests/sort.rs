//! Sort and top-k on lavapipe, at sizes that straddle every strategy's thresholds (ranking up to
//! 32 elements a row, merge passes, radix passes from 1024), against two oracles:
//!
//! - JAX: `hlo-samples/sort_large/` holds modules dumped from JAX 0.8.3 (before and after XLA's
//!   optimisation) and, in `cases.txt`, a recipe for each input and a hash of each of JAX's
//!   outputs; inputs are regenerated here bit for bit (`draw` mirrors that directory's
//!   generate.py), so a 1M-element case costs no disk;
//! - the interpreter, on hand-written modules with comparators JAX does not emit.
//!
//! Results must match exactly, bit for bit: a sort only moves values, and every sort here is
//! stable, as JAX's are (equal keys, -0 and +0 under JAX's comparator, and NaNs with different
//! payloads keep their input order).

mod common;
use common::*;
use hlo_ir::DType;

// ---- the inputs of sort_large/generate.py --------------------------------------------------

/// The first `n` outputs of splitmix64 seeded with `seed`.
fn splitmix64(seed: u64, n: usize) -> Vec<u64> {
    (1..=n as u64)
        .map(|i| {
            let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
        .collect()
}

const SPECIALS: [u32; 12] = [
    0x0000_0000, // 0
    0x8000_0000, // -0
    0x7f80_0000, // inf
    0xff80_0000, // -inf
    0x7fc0_0000, // nan
    0xffc0_0000, // -nan
    0x0000_0001, // smallest denormal
    0x8000_0001,
    0x7f7f_c99e, // 3.4e38
    0xff7f_c99e,
    0x3f80_0000, // 1
    0xbf80_0000, // -1
];

/// The interpreter under XLA:CPU's numerics (comparators read subnormals as zero), as JAX runs.
fn run_interp_xla(text: &str, inputs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let m = parse(text);
    let entry = m.entry_comp();
    let args: Vec<hlo_ir::Literal> = entry
        .param_shapes()
        .into_iter()
        .zip(inputs)
        .map(|(sh, bytes)| hlo_interp::literal_from_bytes(sh.leaves()[0], bytes).expect("input bytes"))
        .collect();
    let res =
        hlo_interp::evaluate_with(&m, &args, &hlo_interp::Options::xla_cpu()).unwrap_or_else(|e| panic!("interp: {e}"));
    let leaves = match res.tuple_elements() {
        Some(t) => t.to_vec(),
        None => vec![res],
    };
    leaves.iter().map(|l| hlo_interp::literal_to_bytes(l).expect("bytes")).collect()
}

fn dtype(name: &str) -> DType {
    DType::from_name(name).unwrap_or_else(|| panic!("dtype {name}"))
}

/// Little-endian host bytes of an input drawn as generate.py's `draw` does.
fn draw(kind: &str, dt: DType, n: usize, seed: u64) -> Vec<u8> {
    let r = splitmix64(seed, n);
    let mut out = Vec::with_capacity(n * dt.byte_size());
    for &r in &r {
        let hi = r >> 32;
        match kind {
            "mix" | "plain" => {
                let sel = r >> 60;
                let halves = ((hi % 33) as i64 - 16) as f32 * 0.5;
                let milli = ((hi % 2_000_001) as i64 - 1_000_000) as f32 * 0.001f32;
                let x = match (kind, sel) {
                    ("mix", 0..=3) => f32::from_bits(r as u32),
                    ("mix", 4..=9) | ("plain", 0..=7) => halves,
                    ("mix", 10..=11) => f32::from_bits(SPECIALS[(hi % 12) as usize]),
                    _ => milli,
                };
                out.extend_from_slice(&x.to_le_bytes());
            }
            "dup" => {
                let v = (hi % 101) as i64 - 50;
                match dt {
                    DType::F32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
                    DType::S32 => out.extend_from_slice(&(v as i32).to_le_bytes()),
                    DType::U32 => out.extend_from_slice(&(v as u32).to_le_bytes()),
                    DType::S16 => out.extend_from_slice(&(v as i16).to_le_bytes()),
                    DType::S8 | DType::U8 => out.push(v as u8),
                    DType::F16 => out.extend_from_slice(&half::f16::from_f32(v as f32).to_le_bytes()),
                    DType::BF16 => out.extend_from_slice(&half::bf16::from_f32(v as f32).to_le_bytes()),
                    DType::Pred => out.push((v > 0) as u8),
                    other => panic!("dup {other}"),
                }
            }
            "bits" => match dt.byte_size() {
                _ if dt == DType::Pred => out.push((r >> 63) as u8),
                4 => out.extend_from_slice(&(hi as u32).to_le_bytes()),
                2 => {
                    let mut v = hi as u16;
                    // f16 NaNs quiet and bf16 NaNs canonical, as generate.py draws them.
                    let (exp, mant, quiet) = match dt {
                        DType::F16 => (0x7c00, 0x03ff, 0x0200),
                        DType::BF16 => (0x7f80, 0x007f, 0x0040),
                        _ => (0, 0, 0),
                    };
                    if exp != 0 && v & exp == exp && v & mant != 0 {
                        v = if dt == DType::BF16 { (v & 0x8000) | exp | quiet } else { v | quiet };
                    }
                    out.extend_from_slice(&v.to_le_bytes())
                }
                1 => out.push(hi as u8),
                _ => panic!("bits {dt}"),
            },
            other => panic!("input kind {other}"),
        }
    }
    out
}

fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

fn dims(s: &str) -> Vec<i64> {
    s.split('x').map(|d| d.parse().expect("dimension")).collect()
}

struct JaxCase {
    name: String,
    /// (kind, dtype, dims, seed)
    inputs: Vec<(String, DType, Vec<i64>, u64)>,
    /// (dtype, dims, hash of JAX's bytes)
    outputs: Vec<(DType, Vec<i64>, u64)>,
}

fn jax_cases() -> Vec<JaxCase> {
    let text = std::fs::read_to_string(samples_dir().join("sort_large/cases.txt")).expect("sort_large/cases.txt");
    let mut cases = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let mut case = JaxCase { name: fields.next().unwrap().to_string(), inputs: Vec::new(), outputs: Vec::new() };
        for f in fields {
            let (tag, rest) = f.split_once('=').expect("tag=value");
            let parts: Vec<&str> = rest.split(':').collect();
            match tag {
                "in" => case.inputs.push((parts[0].into(), dtype(parts[1]), dims(parts[2]), parts[3].parse().unwrap())),
                "out" => {
                    case.outputs.push((dtype(parts[0]), dims(parts[1]), u64::from_str_radix(parts[2], 16).unwrap()))
                }
                other => panic!("field {other}"),
            }
        }
        cases.push(case);
    }
    cases
}

/// The first element where two host arrays of `dt` differ, as text.
fn first_difference(dt: DType, got: &[u8], want: &[u8]) -> String {
    let w = dt.byte_size();
    match (0..got.len() / w).find(|&i| got[i * w..(i + 1) * w] != want[i * w..(i + 1) * w]) {
        Some(i) => format!(
            "first difference at element {i}: got {:02x?} want {:02x?}",
            &got[i * w..(i + 1) * w],
            &want[i * w..(i + 1) * w]
        ),
        None => "same bytes".into(),
    }
}

/// Modules that do not compile yet, for reasons outside the sort, with a word of the error: they
/// must keep failing that way until fixed (then drop them here).
const KNOWN_COMPILE_FAILURES: &[(&str, &str)] = &[];

/// Outputs that differ from JAX for reasons outside the sort: they must keep differing until fixed.
const KNOWN_MISMATCHES: &[(&str, usize, &str)] = &[];

/// Every case of `sort_large/`, both module files, against JAX's hashes; on a mismatch the
/// interpreter (small cases) says where.
fn check_jax_cases(filter: impl Fn(&str) -> bool) {
    let ctx = vulkan();
    let target = target_from_caps(ctx.caps());
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in jax_cases().into_iter().filter(|c| filter(&c.name)) {
        let inputs: Vec<Vec<u8>> = case
            .inputs
            .iter()
            .map(|(kind, dt, d, seed)| draw(kind, *dt, d.iter().product::<i64>() as usize, *seed))
            .collect();
        for file in ["module.hlo", "module.opt.hlo"] {
            let path = samples_dir().join("sort_large").join(&case.name).join(file);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let module = parse_and_fuse(&text);
            let id = format!("{}/{file}", case.name);
            let compiled =
                match (hlo_spirv::compile(&module, &target), KNOWN_COMPILE_FAILURES.iter().find(|k| k.0 == id)) {
                    (Err(e), Some((_, word))) if e.to_string().contains(word) => continue,
                    (Err(e), _) => panic!("{id}: compile failed: {e}"),
                    (Ok(_), Some(_)) => panic!("{id} compiles now: drop it from KNOWN_COMPILE_FAILURES"),
                    (Ok(c), None) => c,
                };
            check_spirv(&compiled);
            let start = std::time::Instant::now();
            let outs = run_vulkan(&ctx, &compiled, &inputs);
            println!("{}/{file}: {:.1} ms, {} dispatches", case.name, start.elapsed().as_secs_f64() * 1e3, {
                compiled.program.steps.len()
            });
            ran += 1;
            assert_eq!(outs.len(), case.outputs.len(), "{}: output count", case.name);
            let mut reference = None;
            for (k, ((dt, d, hash), got)) in case.outputs.iter().zip(&outs).enumerate() {
                assert_eq!(
                    (compiled.outputs[k].dtype, &compiled.outputs[k].dims),
                    (*dt, d),
                    "{}: output {k}",
                    case.name
                );
                let known = KNOWN_MISMATCHES.iter().find(|m| m.0 == id && m.1 == k);
                match (fnv64(got) == *hash, known) {
                    (true, None) => continue,
                    (false, Some(_)) => continue,
                    (true, Some(m)) => {
                        failures
                            .push(format!("{id}: output {k} matches JAX now ({}): drop it from KNOWN_MISMATCHES", m.2));
                        continue;
                    }
                    (false, None) => {}
                }
                let small = case.inputs.iter().all(|i| i.2.iter().product::<i64>() <= 1 << 17);
                let detail = if small {
                    let want = reference.get_or_insert_with(|| run_interp_xla(&text, &inputs));
                    let agrees = fnv64(&want[k]) == *hash;
                    format!(
                        "vs the interpreter (which {} JAX): {}",
                        if agrees { "agrees with" } else { "also differs from" },
                        first_difference(*dt, got, &want[k])
                    )
                } else {
                    String::new()
                };
                failures.push(format!("{}/{file}: output {k} ({dt}{d:?}) differs from JAX {detail}", case.name));
            }
        }
    }
    assert!(ran > 0, "no sort_large case matched");
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn jax_sizes_and_specials() {
    check_jax_cases(|n| n == "sizes_f32");
}

#[test]
fn jax_large_and_multi_operand() {
    check_jax_cases(|n| n.ends_with("65537") || n.contains("desc") || n.contains("two_keys") || n.contains("unstable"));
}

#[test]
fn jax_rank2_and_rank3_every_dimension() {
    check_jax_cases(|n| n.starts_with("sort_rank"));
}

#[test]
fn jax_key_dtypes() {
    check_jax_cases(|n| {
        ["s32", "u32", "f16", "bf16", "s8", "u8", "s16", "pred"].iter().any(|d| n == format!("sort_{d}"))
    });
}

#[test]
fn jax_top_k() {
    check_jax_cases(|n| n.starts_with("top_k"));
}

#[test]
fn jax_one_million() {
    check_jax_cases(|n| n == "sort_f32_1m");
}

// ---- comparators JAX does not emit, against the interpreter ---------------------------------

/// JAX's float comparator (-0 == +0, every NaN equal) with `dir`, on parameters `a` and `b`.
fn canonical_lt(a: &str, b: &str, dir: &str) -> String {
    format!(
        r#"  nan = f32[] constant(nan)
  zero = f32[] constant(0)
  a_ne = pred[] compare({a}, {a}), direction=NE
  a_eq = pred[] compare({a}, zero), direction=EQ
  a_z = f32[] select(a_eq, zero, {a})
  a_c = f32[] select(a_ne, nan, a_z)
  b_ne = pred[] compare({b}, {b}), direction=NE
  b_eq = pred[] compare({b}, zero), direction=EQ
  b_z = f32[] select(b_eq, zero, {b})
  b_c = f32[] select(b_ne, nan, b_z)
  ROOT lt = pred[] compare(a_c, b_c), direction={dir}, type=TOTALORDER
"#
    )
}

/// A module sorting `f32[dims]` (and an s32 iota payload along `dim`) with comparator `cmp`
/// (over p0, p1 for the key and p2, p3 for the payload).
fn module(dims: &[i64], dim: usize, cmp: &str) -> String {
    let shape = |t: &str| format!("{t}[{}]", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","));
    format!(
        r#"HloModule sort_test

cmp {{
  p0 = f32[] parameter(0)
  p1 = f32[] parameter(1)
  p2 = s32[] parameter(2)
  p3 = s32[] parameter(3)
{cmp}}}

ENTRY main {{
  x = {f} parameter(0)
  i = {s} iota(), iota_dimension={dim}
  ROOT s = ({f}, {s}) sort(x, i), dimensions={{{dim}}}, is_stable=true, to_apply=cmp
}}
"#,
        f = shape("f32"),
        s = shape("s32"),
    )
}

fn check_against_interp(name: &str, text: &str, inputs: &[Vec<u8>]) {
    let ctx = vulkan();
    let target = target_from_caps(ctx.caps());
    let m = parse_and_fuse(text);
    let compiled = hlo_spirv::compile(&m, &target).unwrap_or_else(|e| panic!("{name}: {e}"));
    check_spirv(&compiled);
    let got = run_vulkan(&ctx, &compiled, inputs);
    let want = run_interp_xla(text, inputs);
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        let dt = compiled.outputs[k].dtype;
        assert!(g == w, "{name}: output {k}: {}", first_difference(dt, g, w));
    }
}

/// Sizes around every threshold, each through a key order (radix from 1024), a lexicographic
/// comparator (merge), a descending one, and a key function that is not the identity (|x|).
#[test]
fn comparators_at_threshold_sizes() {
    let two_keys = {
        // Ascending by the float, then descending by the payload (a total order: no ties).
        let mut c = canonical_lt("p0", "p1", "LT").replace("ROOT lt", "lt");
        c += "  eq = pred[] compare(a_c, b_c), direction=EQ, type=TOTALORDER\n";
        c += "  gt = pred[] compare(p2, p3), direction=GT\n";
        c += "  tie = pred[] and(eq, gt)\n  ROOT r = pred[] or(lt, tie)\n";
        c
    };
    // Keys that are not the element itself: -3x (arithmetic, so subnormals read as zero) and |x|.
    let by_scaled = "  c = f32[] constant(-3)\n  a = f32[] multiply(p0, c)\n  b = f32[] multiply(p1, c)\n  \
                     ROOT lt = pred[] compare(a, b), direction=LT, type=TOTALORDER\n";
    let by_abs =
        "  a = f32[] abs(p0)\n  b = f32[] abs(p1)\n  ROOT lt = pred[] compare(a, b), direction=LT, type=TOTALORDER\n";
    let comparators = [
        ("ascending", canonical_lt("p0", "p1", "LT"), "mix"),
        ("descending", canonical_lt("p0", "p1", "GT"), "mix"),
        ("rhs_first", canonical_lt("p1", "p0", "LT"), "mix"),
        ("two_keys", two_keys, "mix"),
        ("by_scaled", by_scaled.to_string(), "mix"),
        // abs reads its operand's bits, so XLA:CPU tells a subnormal |x| from zero, while the
        // sort hands comparators subnormals flushed (see flush_for_comparator): no subnormals here.
        ("by_abs", by_abs.to_string(), "plain"),
    ];
    for n in [33, 63, 64, 65, 255, 256, 257, 1000, 1023, 1024, 1025, 4097, 20000] {
        for (what, cmp, kind) in &comparators {
            let x = draw(kind, DType::F32, n, 1000 + n as u64);
            check_against_interp(&format!("{what} n={n}"), &module(&[n as i64], 0, cmp), &[x]);
        }
    }
}

/// Batches of rows, sorted along a middle dimension (strided rows), past both thresholds.
#[test]
fn batched_rows_along_each_dimension() {
    for dims in [[2i64, 1500, 3], [5, 40, 7], [1100, 2, 3]] {
        let n = dims.iter().product::<i64>() as usize;
        let x = draw("mix", DType::F32, n, 7);
        for dim in 0..3 {
            for (what, cmp) in
                [("ascending", canonical_lt("p0", "p1", "LT")), ("descending", canonical_lt("p0", "p1", "GT"))]
            {
                check_against_interp(
                    &format!("{what} {dims:?} along {dim}"),
                    &module(&dims, dim, &cmp),
                    std::slice::from_ref(&x),
                );
            }
        }
    }
}

/// Every pass of a multi-pass sort reuses its kernel's pipeline (parameters in push constants).
#[test]
fn passes_share_pipelines() {
    let target = hlo_spirv::Target::lavapipe();
    for (n, max_kernels) in [(1 << 20, 6), (5000, 6)] {
        let text = module(&[n], 0, &canonical_lt("p0", "p1", "LT"));
        let c = hlo_spirv::compile(&parse_and_fuse(&text), &target).unwrap();
        let dispatches = c.program.steps.iter().filter(|s| matches!(s, hlo_program::Step::Dispatch(_))).count();
        assert!(c.program.kernels.len() <= max_kernels, "{n}: {} kernels", c.program.kernels.len());
        assert!(dispatches >= 4 * 4, "{n}: a 32-bit key takes four radix passes; {dispatches} dispatches");
        let text = module(&[n], 0, &canonical_lt("p0", "p1", "LT").replace("direction=LT", "direction=LE"));
        let c = hlo_spirv::compile(&parse_and_fuse(&text), &target).unwrap();
        assert!(c.program.kernels.len() <= 2, "merge passes: {} kernels", c.program.kernels.len());
    }
}
