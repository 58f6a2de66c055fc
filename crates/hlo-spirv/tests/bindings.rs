//! Kernels that need more storage buffers than the device allows one kernel to bind
//! (`maxPerStageDescriptorStorageBuffers`: 32 on lavapipe), and variadic scatter.
//!
//! A program the interpreter runs is never refused for its binding count: fusion stops growing a
//! kernel at the limit, an elementwise `while` with too many carried arrays runs its body as
//! separate kernels, and a sort of many operands sorts the positions of the rows by the operands
//! its order reads, then gathers every output through them. Every case here runs on lavapipe
//! with the validation layer and must equal the interpreter bit for bit.

mod common;
use common::*;
use hlo_ir::DType;

/// Deterministic element `i` of input `k`: small, varied values.
fn value(k: usize, i: usize) -> f32 {
    let h = (k as u64 * 2654435761 + i as u64 * 40503 + 17) % 1000;
    (h as f32 - 500.0) / 64.0
}

fn f32_bytes(v: impl IntoIterator<Item = f32>) -> Vec<u8> {
    v.into_iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn s32_bytes(v: impl IntoIterator<Item = i32>) -> Vec<u8> {
    v.into_iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Runs `hlo` through the pipeline and lavapipe and through the interpreter; asserts equal bits.
/// Returns the kernels' names.
fn check(hlo: &str, inputs: &[Vec<u8>]) -> Vec<String> {
    let m = parse(hlo);
    let want = run_interp(&m, inputs);
    let fused = parse_and_fuse(hlo);
    let c = compile_checked(&fused);
    let got = run_vulkan(&vulkan(), &c, inputs);
    assert_eq!(got.len(), want.len());
    for (k, (io, (g, w))) in c.outputs.iter().zip(got.iter().zip(&want)).enumerate() {
        if let Err(e) = compare(io.dtype, g, w, 0.0) {
            panic!("output {k} ({}{:?}): {e}\n{}", io.dtype, io.dims, hlo);
        }
    }
    // Texel buffers (lavapipe's reads, `Access::ReadTexels` and `ReadWordTexels`) have a limit of their own.
    let storage = |k: &hlo_program::Kernel| k.bindings.iter().filter(|a| a.texel_words().is_none()).count();
    let max = c.program.kernels.iter().map(storage).max().unwrap_or(0);
    assert!(max <= 32, "a kernel binds {max} storage buffers");
    c.program.kernels.iter().map(|k| k.name.clone()).collect()
}

// ---- fusions ------------------------------------------------------------------------------

/// `n` parameters combined elementwise into one result: a fusion would read `n` arrays and write one.
fn sum_of_params(n: usize) -> String {
    let mut s = String::from("HloModule m\nENTRY e {\n");
    for k in 0..n {
        s += &format!("  p{k} = f32[64] parameter({k})\n");
    }
    s += "  a0 = f32[64] add(p0, p1)\n";
    for k in 2..n {
        // No multiply feeding an add: the device contracts those into one rounding, as XLA:CPU does.
        let op = ["add", "subtract", "maximum"][k % 3];
        s += &format!("  a{} = f32[64] {op}(a{}, p{k})\n", k - 1, k - 2);
    }
    s += &format!("  ROOT r = f32[64] negate(a{})\n}}\n", n - 2);
    s
}

#[test]
fn fusions_at_the_binding_limit() {
    for n in [30, 31, 32, 33, 40] {
        let hlo = sum_of_params(n);
        let inputs: Vec<Vec<u8>> = (0..n).map(|k| f32_bytes((0..64).map(|i| value(k, i)))).collect();
        let kernels = check(&hlo, &inputs).len();
        // 31 inputs and an output leave the status word its binding; more split the fusion.
        assert_eq!(kernels > 1, n + 1 > 31, "{n} parameters: {kernels} kernels");
    }
}

/// `jnp.concatenate` of 40 arrays: one op reading 40 arrays becomes concatenates of concatenates.
#[test]
fn concatenate_of_forty_arrays() {
    let n = 40;
    let mut hlo = String::from("HloModule m\nENTRY e {\n");
    for k in 0..n {
        hlo += &format!("  p{k} = f32[3] parameter({k})\n");
    }
    hlo += &format!(
        "  c = f32[{}] concatenate({}), dimensions={{0}}\n  ROOT r = f32[{}] negate(c)\n}}\n",
        3 * n,
        (0..n).map(|k| format!("p{k}")).collect::<Vec<_>>().join(", "),
        3 * n
    );
    let inputs: Vec<Vec<u8>> = (0..n).map(|k| f32_bytes((0..3).map(|i| value(k, i)))).collect();
    check(&hlo, &inputs);
}

#[test]
fn explain_fusion_names_the_binding_limit() {
    let text = hlo_passes::explain(&parse(&sum_of_params(40)));
    assert!(text.contains("the kernel would bind more arrays than the device allows one kernel"), "{text}");
    // A device with 8 bindings gets kernels of at most 7 arrays.
    let mut m = parse(&sum_of_params(20));
    let (_, report) = hlo_passes::fuse::run_with_report(&mut m, 8).unwrap();
    assert!(report.kernels.len() >= 3, "{report}");
    for c in &m.comps {
        for i in &c.instrs {
            if let hlo_ir::Op::Fusion { .. } = i.op {
                assert!(i.operands.len() < 8, "{} reads {} arrays", i.name, i.operands.len());
            }
        }
    }
}

/// An elementwise `while` carrying 20 arrays, all of them results: one in-shader loop would bind
/// 42 buffers (20 initial arrays, the counter, 21 results), so the loop runs another way.
#[test]
fn elementwise_loop_with_many_carried_arrays() {
    let n = 20;
    let tuple_ty = format!("(s32[], {})", vec!["f32[16]"; n].join(", "));
    let mut body = format!("body {{\n  p = {tuple_ty} parameter(0)\n  i = s32[] get-tuple-element(p), index=0\n");
    body += "  one = s32[] constant(1)\n  i1 = s32[] add(i, one)\n";
    for k in 0..n {
        body += &format!("  x{k} = f32[16] get-tuple-element(p), index={}\n", k + 1);
    }
    for k in 0..n {
        body += &format!("  y{k} = f32[16] add(x{k}, x{})\n", (k + 1) % n);
    }
    body += &format!(
        "  ROOT t = {tuple_ty} tuple(i1, {})\n}}\n",
        (0..n).map(|k| format!("y{k}")).collect::<Vec<_>>().join(", ")
    );
    let cond = format!(
        "cond {{\n  p = {tuple_ty} parameter(0)\n  i = s32[] get-tuple-element(p), index=0\n  \
         n = s32[] constant(5)\n  ROOT lt = pred[] compare(i, n), direction=LT\n}}\n"
    );
    let mut entry = String::from("ENTRY e {\n");
    for k in 0..n {
        entry += &format!("  a{k} = f32[16] parameter({k})\n");
    }
    entry += "  zero = s32[] constant(0)\n";
    entry += &format!(
        "  init = {tuple_ty} tuple(zero, {})\n  ROOT w = {tuple_ty} while(init), condition=cond, body=body\n}}\n",
        (0..n).map(|k| format!("a{k}")).collect::<Vec<_>>().join(", ")
    );
    let hlo = format!("HloModule m\n{body}{cond}{entry}");
    let inputs: Vec<Vec<u8>> = (0..n).map(|k| f32_bytes((0..16).map(|i| value(k, i)))).collect();
    let kernels = check(&hlo, &inputs);
    assert!(kernels.len() > 1 || !kernels[0].contains("elementwise"), "{kernels:?}");
}

// ---- sorts ----------------------------------------------------------------------------------

/// A stable sort along dimension 1 of `[rows, len]` of `n` operands: s32 keys with ties and
/// f32 payloads, ordered by the key (`num_keys=1`) or, with `lexicographic`, by the key and
/// then the first payload.
fn sort_module(n: usize, rows: usize, len: usize, lexicographic: bool) -> String {
    let mut cmp = String::from("cmp {\n");
    for k in 0..n {
        let ty = if k == 0 { "s32[]" } else { "f32[]" };
        cmp += &format!("  l{k} = {ty} parameter({})\n  r{k} = {ty} parameter({})\n", 2 * k, 2 * k + 1);
    }
    if lexicographic {
        cmp += "  lt0 = pred[] compare(l0, r0), direction=LT\n  eq0 = pred[] compare(l0, r0), direction=EQ\n";
        cmp += "  lt1 = pred[] compare(l1, r1), direction=GT\n  both = pred[] and(eq0, lt1)\n";
        cmp += "  ROOT lt = pred[] or(lt0, both)\n}\n";
    } else {
        cmp += "  ROOT lt = pred[] compare(l0, r0), direction=LT\n}\n";
    }
    let mut entry = String::from("ENTRY e {\n");
    let mut tys = Vec::new();
    for k in 0..n {
        let ty = if k == 0 { format!("s32[{rows},{len}]") } else { format!("f32[{rows},{len}]") };
        entry += &format!("  p{k} = {ty} parameter({k})\n");
        tys.push(ty);
    }
    entry += &format!(
        "  ROOT s = ({}) sort({}), dimensions={{1}}, is_stable=true, to_apply=cmp\n}}\n",
        tys.join(", "),
        (0..n).map(|k| format!("p{k}")).collect::<Vec<_>>().join(", ")
    );
    format!("HloModule m\n{cmp}{entry}")
}

fn sort_inputs(n: usize, elems: usize) -> Vec<Vec<u8>> {
    let mut inputs = vec![s32_bytes((0..elems).map(|i| ((i * 7919 + 13) % 11) as i32))];
    for k in 1..n {
        inputs.push(f32_bytes((0..elems).map(|i| value(k, i))));
    }
    inputs
}

#[test]
fn sorts_of_many_operands() {
    // Rows of 8 (ranking), 33 (merge passes) and 2500 (radix passes on the key).
    for (rows, len) in [(3, 8), (4, 33), (2, 2500)] {
        for n in [15, 16, 17, 20] {
            let kernels = check(&sort_module(n, rows, len, false), &sort_inputs(n, rows * len));
            // Up to 14 operands (31 buffers with a radix sort's histograms and totals) sort together.
            let gathered = kernels.iter().any(|k| k.contains("gather"));
            assert_eq!(gathered, 2 * n + 3 > 32, "{n} operands: {kernels:?}");
        }
    }
}

#[test]
fn sort_of_many_operands_by_two_of_them() {
    for (rows, len) in [(3, 8), (4, 33)] {
        check(&sort_module(17, rows, len, true), &sort_inputs(17, rows * len));
    }
}

/// A sort whose fused prologue computes some operands: they are evaluated at the gathered positions.
#[test]
fn sort_of_many_computed_operands() {
    let n = 17;
    let (rows, len) = (2, 40);
    let base = sort_module(n, rows, len, false);
    let hlo = base
        .replace("  p3 = f32[2,40] parameter(3)\n", "  q3 = f32[2,40] parameter(3)\n  p3 = f32[2,40] negate(q3)\n")
        .replace(
            "  p5 = f32[2,40] parameter(5)\n",
            "  q5 = f32[2,40] parameter(5)\n  p5 = f32[2,40] multiply(q5, q5)\n",
        );
    check(&hlo, &sort_inputs(n, rows * len));
}

// ---- variadic scatter -------------------------------------------------------------------------

/// A scatter of `n` operands of f32[10] (the second s32 when `mixed`) at 6 scalar indices, some
/// repeated and some out of bounds; the combiner is order-sensitive (`2 * old + update`) in the
/// first operand, so duplicates must be applied in the update order.
fn scatter_module(n: usize, mixed: bool) -> String {
    let ty = |k: usize| if mixed && k == 1 { "s32" } else { "f32" };
    let mut comb = String::from("comb {\n");
    for k in 0..n {
        comb += &format!("  a{k} = {}[] parameter({k})\n", ty(k));
    }
    for k in 0..n {
        comb += &format!("  b{k} = {}[] parameter({})\n", ty(k), n + k);
    }
    comb += "  two = f32[] constant(2)\n  d0 = f32[] multiply(a0, two)\n  c0 = f32[] add(d0, b0)\n";
    for k in 1..n {
        let op = if k % 2 == 1 { "maximum" } else { "add" };
        comb += &format!("  c{k} = {}[] {op}(a{k}, b{k})\n", ty(k));
    }
    let res_ty = (0..n).map(|k| format!("{}[]", ty(k))).collect::<Vec<_>>().join(", ");
    comb += &format!(
        "  ROOT t = ({res_ty}) tuple({})\n}}\n",
        (0..n).map(|k| format!("c{k}")).collect::<Vec<_>>().join(", ")
    );
    let mut entry = String::from("ENTRY e {\n");
    for k in 0..n {
        entry += &format!("  o{k} = {}[10] parameter({k})\n", ty(k));
    }
    entry += &format!("  idx = s32[6,1] parameter({n})\n");
    for k in 0..n {
        entry += &format!("  u{k} = {}[6] parameter({})\n", ty(k), n + 1 + k);
    }
    let out_ty = (0..n).map(|k| format!("{}[10]", ty(k))).collect::<Vec<_>>().join(", ");
    entry += &format!(
        "  ROOT s = ({out_ty}) scatter({}, idx, {}), update_window_dims={{}}, inserted_window_dims={{0}}, \
         scatter_dims_to_operand_dims={{0}}, index_vector_dim=1, to_apply=comb\n}}\n",
        (0..n).map(|k| format!("o{k}")).collect::<Vec<_>>().join(", "),
        (0..n).map(|k| format!("u{k}")).collect::<Vec<_>>().join(", ")
    );
    format!("HloModule m\n{comb}{entry}")
}

fn scatter_inputs(n: usize, mixed: bool) -> Vec<Vec<u8>> {
    let mut inputs = Vec::new();
    let arr = |k: usize, len: usize| {
        if mixed && k == 1 {
            s32_bytes((0..len).map(|i| (value(k, i) * 8.0) as i32))
        } else {
            f32_bytes((0..len).map(|i| value(k, i)))
        }
    };
    for k in 0..n {
        inputs.push(arr(k, 10));
    }
    // Duplicates (3 three times, 0 twice), out of bounds (-1 and 10).
    inputs.push(s32_bytes([3, 0, 3, -1, 10, 3]));
    for k in 0..n {
        inputs.push(arr(k + 7, 6));
    }
    inputs
}

#[test]
fn variadic_scatter() {
    for (n, mixed) in [(2, false), (2, true), (3, false), (3, true)] {
        check(&scatter_module(n, mixed), &scatter_inputs(n, mixed));
    }
}

/// Windows: updates of f32[4,3] rows scattered into f32[5,3] twice (two operands), with a window
/// that starts out of bounds skipped as a whole.
#[test]
fn variadic_scatter_of_windows() {
    let hlo = r#"HloModule m
comb {
  a0 = f32[] parameter(0)
  a1 = s32[] parameter(1)
  b0 = f32[] parameter(2)
  b1 = s32[] parameter(3)
  s = f32[] subtract(a0, b0)
  m = s32[] multiply(a1, b1)
  ROOT t = (f32[], s32[]) tuple(s, m)
}
ENTRY e {
  o0 = f32[5,3] parameter(0)
  o1 = s32[5,3] parameter(1)
  idx = s32[4] parameter(2)
  u0 = f32[4,3] parameter(3)
  u1 = s32[4,3] parameter(4)
  ROOT s = (f32[5,3], s32[5,3]) scatter(o0, o1, idx, u0, u1), update_window_dims={1}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=comb
}
"#;
    let inputs = vec![
        f32_bytes((0..15).map(|i| value(1, i))),
        s32_bytes((0..15).map(|i: i32| i - 4)),
        s32_bytes([4, 1, 5, 1]),
        f32_bytes((0..12).map(|i| value(2, i))),
        s32_bytes((0..12).map(|i: i32| i % 5 - 2)),
    ];
    check(hlo, &inputs);
}

/// More updates than one invocation may loop over on lavapipe (65,535): several dispatches each
/// fold in a chunk, in order. Indices 8 and 9 are out of bounds of f32[8].
#[test]
fn variadic_scatter_of_many_updates() {
    let n_upd = 70_000;
    let hlo = format!(
        r#"HloModule m
comb {{
  a0 = f32[] parameter(0)
  a1 = s32[] parameter(1)
  b0 = f32[] parameter(2)
  b1 = s32[] parameter(3)
  h = f32[] constant(0.5)
  s = f32[] multiply(a0, h)
  t = f32[] add(s, b0)
  m = s32[] add(a1, b1)
  ROOT r = (f32[], s32[]) tuple(t, m)
}}
ENTRY e {{
  o0 = f32[8] parameter(0)
  o1 = s32[8] parameter(1)
  idx = s32[{n_upd},1] parameter(2)
  u0 = f32[{n_upd}] parameter(3)
  u1 = s32[{n_upd}] parameter(4)
  ROOT s = (f32[8], s32[8]) scatter(o0, o1, idx, u0, u1), update_window_dims={{}}, inserted_window_dims={{0}}, scatter_dims_to_operand_dims={{0}}, index_vector_dim=1, to_apply=comb
}}
"#
    );
    let inputs = vec![
        f32_bytes((0..8).map(|i| value(0, i))),
        s32_bytes(0..8),
        s32_bytes((0..n_upd).map(|u| ((u * 7) % 10) as i32)),
        f32_bytes((0..n_upd).map(|u| value(1, u))),
        s32_bytes((0..n_upd).map(|u| (u % 3) as i32)),
    ];
    let kernels = check(&hlo, &inputs);
    assert!(kernels.len() >= 3, "{kernels:?}");
}

/// A variadic scatter of 11 and 12 operands would bind 3n + 1 arrays in one kernel: its combiner
/// computes each result from its own pair of arguments, so the outputs are split over kernels.
#[test]
fn variadic_scatter_past_the_binding_limit() {
    for (n, mixed) in [(11, false), (12, true)] {
        let kernels = check(&scatter_module(n, mixed), &scatter_inputs(n, mixed));
        assert!(kernels.len() >= 2, "{kernels:?}");
    }
}

/// When the combiner mixes components, a variadic scatter of 11 operands past the limit is split
/// by closure: each narrower scatter computes the results its own ones read (`split-wide-reduces`).
/// Here result 1 reads update 0 (a pair that goes together), then every result reads the first
/// pair's comparison (an argmax-like selection: every scatter recomputes result 0).
#[test]
fn coupled_variadic_scatter_past_the_binding_limit() {
    let pair = scatter_module(11, false).replace("c1 = f32[] maximum(a1, b1)", "c1 = f32[] maximum(a1, b0)");
    assert_ne!(pair, scatter_module(11, false));
    let kernels = check(&pair, &scatter_inputs(11, false));
    assert!(kernels.len() >= 2, "{kernels:?}");
    let mut selecting = scatter_module(11, false);
    selecting = selecting.replace(
        "  two = f32[] constant(2)\n",
        "  two = f32[] constant(2)\n  lt = pred[] compare(a0, b0), direction=LT\n",
    );
    for k in 1..11 {
        let op = if k % 2 == 1 { "maximum" } else { "add" };
        selecting = selecting
            .replace(&format!("c{k} = f32[] {op}(a{k}, b{k})"), &format!("c{k} = f32[] select(lt, a{k}, b{k})"));
    }
    assert_eq!(selecting.matches("select(lt").count(), 10, "{selecting}");
    let kernels = check(&selecting, &scatter_inputs(11, false));
    assert!(kernels.len() >= 2, "{kernels:?}");
}

/// A combiner where result `k` reads update `k - 1` (a chain): the last result needs all 11
/// operands' arrays, 35 bindings in one kernel; refused by name.
#[test]
fn chained_variadic_scatter_past_the_binding_limit_is_refused() {
    let mut hlo = scatter_module(11, false);
    for k in 1..11 {
        let op = if k % 2 == 1 { "maximum" } else { "add" };
        hlo = hlo.replace(&format!("c{k} = f32[] {op}(a{k}, b{k})"), &format!("c{k} = f32[] {op}(a{k}, b{})", k - 1));
    }
    assert_eq!(hlo.matches("(a10, b9)").count(), 1, "{hlo}");
    match hlo_spirv::compile(&parse_and_fuse(&hlo), &hlo_spirv::Target::lavapipe()) {
        Err(hlo_spirv::CodegenError::Unsupported { reason, .. }) => {
            assert!(reason.contains("storage buffers"), "{reason}")
        }
        Err(e) => panic!("expected Unsupported, got {e}"),
        Ok(_) => panic!("a kernel of 35 bindings compiled"),
    }
}

/// The outputs' element types, for the record: a mixed scatter keeps each operand's type.
#[test]
fn variadic_scatter_output_types() {
    let c = compile_checked(&parse_and_fuse(&scatter_module(3, true)));
    let types: Vec<DType> = c.outputs.iter().map(|o| o.dtype).collect();
    assert_eq!(types, vec![DType::F32, DType::S32, DType::F32]);
}

// ---- variadic reduce --------------------------------------------------------------------------

/// A variadic reduce of `n` f32 arrays `[rows, len]` along `dims` with init values that are
/// parameters (so each binds a buffer: `3n` arrays in one kernel). Results are independent sums
/// and maxima, except that with `coupled` every result takes its operand's pair where the first
/// pair compares less (a lexicographic selection that keeps all `n` results in one reduce).
fn variadic_reduce_module(n: usize, rows: usize, len: usize, dims: &str, coupled: bool) -> String {
    let out_dims = if dims == "1" { rows } else { len };
    let mut red = String::from("red {\n");
    for k in 0..2 * n {
        red += &format!("  x{k} = f32[] parameter({k})\n");
    }
    if coupled {
        red += &format!("  lt = pred[] compare(x0, x{n}), direction=LT\n");
    }
    for k in 0..n {
        let (a, b) = (format!("x{k}"), format!("x{}", n + k));
        red += &if coupled {
            format!("  c{k} = f32[] select(lt, {a}, {b})\n")
        } else {
            format!("  c{k} = f32[] {}({a}, {b})\n", ["add", "maximum"][k % 2])
        };
    }
    let results: Vec<String> = (0..n).map(|k| format!("c{k}")).collect();
    red += &format!("  ROOT t = ({}) tuple({})\n}}\n", vec!["f32[]"; n].join(", "), results.join(", "));
    let mut entry = String::from("ENTRY e {\n");
    for k in 0..n {
        entry += &format!("  p{k} = f32[{rows},{len}] parameter({k})\n");
    }
    for k in 0..n {
        entry += &format!("  z{k} = f32[] parameter({})\n", n + k);
    }
    let args: Vec<String> = (0..n).map(|k| format!("p{k}")).chain((0..n).map(|k| format!("z{k}"))).collect();
    entry += &format!(
        "  ROOT r = ({}) reduce({}), dimensions={{{dims}}}, to_apply=red\n}}\n",
        vec![format!("f32[{out_dims}]"); n].join(", "),
        args.join(", ")
    );
    format!("HloModule m\n{red}{entry}")
}

/// The arrays, and init values that are the identities of the sums and maxima (XLA may apply
/// an init value more than once: a long reduction is split into partial reductions).
fn variadic_reduce_inputs(n: usize, elems: usize) -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = (0..n).map(|k| f32_bytes((0..elems).map(|i| value(k, i)))).collect();
    inputs.extend((0..n).map(|k| f32_bytes([[0.0, f32::NEG_INFINITY][k % 2]])));
    inputs
}

/// Up to 10 arrays (30 buffers and a status word) reduce in one kernel; 11 and more are split
/// into reduces of independent results, each within the limit. Row, column and long reductions.
#[test]
fn variadic_reduces_past_the_binding_limit() {
    for (rows, len, dims) in [(4, 33, "1"), (17, 8, "0"), (2, 2500, "1")] {
        for n in [10, 11, 16] {
            let hlo = variadic_reduce_module(n, rows, len, dims, false);
            let kernels = check(&hlo, &variadic_reduce_inputs(n, rows * len));
            assert_eq!(kernels.len() > 1, n > 10, "{n} arrays along {{{dims}}} of [{rows},{len}]: {kernels:?}");
        }
    }
}

/// A reduce whose results all depend on the first pair (an argmin over many payloads) is split
/// by what each result needs: every narrower reduce recomputes the first pair with its own
/// payloads. Storage buffers only (no texel reads) and lavapipe's texel reads; reductions of
/// every threshold length, rows and columns.
#[test]
fn coupled_variadic_reduces_past_the_binding_limit() {
    let storage_only = hlo_spirv::Target { texel_gathers: None, ..hlo_spirv::Target::lavapipe() };
    for (rows, len, dims) in [(3, 1, "1"), (2, 16, "1"), (17, 2, "0"), (2, 256, "1"), (257, 1, "0"), (1, 4097, "1")] {
        // 40 arrays make dozens of kernels: two shapes are enough for them (CI time).
        let ns: &[usize] = if matches!((rows, len), (2, 16) | (1, 4097)) { &[10, 11, 40] } else { &[10, 11] };
        for &n in ns {
            let hlo = variadic_reduce_module(n, rows, len, dims, true);
            let inputs = variadic_reduce_inputs(n, rows * len);
            let kernels = check(&hlo, &inputs);
            assert_eq!(kernels.len() > 1, n > 10, "{n} arrays along {{{dims}}} of [{rows},{len}]: {kernels:?}");
            let c = hlo_spirv::compile(&parse_and_fuse(&hlo), &storage_only).unwrap_or_else(|e| panic!("{e}"));
            let got = run_vulkan(&vulkan(), &c, &inputs);
            let want = run_interp(&parse(&hlo), &inputs);
            for (k, io) in c.outputs.iter().enumerate() {
                compare(io.dtype, &got[k], &want[k], 0.0).unwrap_or_else(|e| panic!("output {k}: {e}"));
            }
        }
    }
}

/// The same under a limit of 8 storage buffers (`HLO_MAX_STORAGE_BUFFERS=8` in `hlo-run`): the
/// pipeline splits for the lowered limit and every kernel fits it.
#[test]
fn coupled_variadic_reduce_under_a_lowered_limit() {
    let target = hlo_spirv::Target { max_storage_buffers: 8, texel_gathers: None, ..hlo_spirv::Target::lavapipe() };
    for (rows, len) in [(4, 33), (1, 257)] {
        let n = 6;
        let hlo = variadic_reduce_module(n, rows, len, "1", true);
        let inputs = variadic_reduce_inputs(n, rows * len);
        let mut m = parse(&hlo);
        let mut opts = hlo_passes::PipelineOptions { max_kernel_buffers: 8, ..Default::default() };
        hlo_passes::run_pipeline(&mut m, &mut opts).unwrap_or_else(|e| panic!("{e}"));
        let c = hlo_spirv::compile(&m, &target).unwrap_or_else(|e| panic!("{e}"));
        check_spirv(&c);
        let storage = |k: &hlo_program::Kernel| k.bindings.iter().filter(|a| a.texel_words().is_none()).count();
        assert!(c.program.kernels.iter().all(|k| storage(k) <= 8));
        let got = run_vulkan(&vulkan(), &c, &inputs);
        let want = run_interp(&parse(&hlo), &inputs);
        for (k, io) in c.outputs.iter().enumerate() {
            compare(io.dtype, &got[k], &want[k], 0.0).unwrap_or_else(|e| panic!("output {k}: {e}"));
        }
    }
}

/// A reduce whose every result reads every argument cannot be split: past the limit it is
/// refused by name.
#[test]
fn fully_coupled_variadic_reduce_past_the_binding_limit_is_refused() {
    let n = 12;
    let hlo = variadic_reduce_module(n, 4, 33, "1", true);
    // Every result adds the sum of all the first arguments: each needs every pair.
    let mut all = String::from("  all0 = f32[] add(x0, x1)\n");
    for k in 2..n {
        all += &format!("  all{} = f32[] add(all{}, x{k})\n", k - 1, k - 2);
    }
    let hlo = hlo
        .replace("  lt = pred[]", &format!("{all}  lt = pred[]"))
        .replace(&format!("compare(x0, x{n}), direction=LT"), &format!("compare(all{}, x{n}), direction=LT", n - 2));
    let storage_only = hlo_spirv::Target { texel_gathers: None, ..hlo_spirv::Target::lavapipe() };
    match hlo_spirv::compile(&parse_and_fuse(&hlo), &storage_only) {
        Err(hlo_spirv::CodegenError::Unsupported { reason, .. }) => {
            assert!(reason.contains("storage buffers"), "{reason}")
        }
        Err(e) => panic!("expected Unsupported, got {e}"),
        Ok(_) => panic!("a reduce of 37 bindings compiled\n{hlo}"),
    }
}

/// A sort of `n` operands (as [`sort_module`]) whose comparator orders lexicographically by the
/// first `c` of them.
fn lexicographic_sort_module(n: usize, c: usize, rows: usize, len: usize) -> String {
    let base = sort_module(n, rows, len, false);
    let (_, entry) = base.split_once("ENTRY").expect("an entry");
    let mut cmp = String::from("cmp {\n");
    for k in 0..n {
        let ty = if k == 0 { "s32[]" } else { "f32[]" };
        cmp += &format!("  l{k} = {ty} parameter({})\n  r{k} = {ty} parameter({})\n", 2 * k, 2 * k + 1);
    }
    // less_k = lt_k or (eq_k and less_{k+1}), from the last compared operand back.
    cmp += &format!("  less{} = pred[] compare(l{}, r{}), direction=LT\n", c - 1, c - 1, c - 1);
    for k in (0..c - 1).rev() {
        cmp += &format!("  lt{k} = pred[] compare(l{k}, r{k}), direction=LT\n");
        cmp += &format!("  eq{k} = pred[] compare(l{k}, r{k}), direction=EQ\n");
        cmp += &format!("  then{k} = pred[] and(eq{k}, less{})\n", k + 1);
        cmp += &format!("  less{k} = pred[] or(lt{k}, then{k})\n");
    }
    cmp += "  ROOT r = pred[] copy(less0)\n}\n";
    format!("HloModule m\n{cmp}ENTRY{entry}")
}

/// A sort of 17 operands sorts the ones its order reads with their positions: up to 13 of them
/// (31 buffers with the positions, a radix pass's histograms and a status word). From 14 on, the
/// compared operands are packed into one buffer per type and the merge passes move only the
/// positions, reading the compared values through them. Rows of every threshold length.
#[test]
fn sort_comparing_many_operands() {
    for (rows, len) in [(3, 8), (4, 33)] {
        check(&lexicographic_sort_module(17, 13, rows, len), &sort_inputs(17, rows * len));
    }
    for (rows, len) in [(3, 1), (2, 16), (2, 17), (1, 256), (2, 257), (1, 4097)] {
        for c in [14, 17] {
            let kernels = check(&lexicographic_sort_module(17, c, rows, len), &sort_inputs(17, rows * len));
            assert!(kernels.iter().any(|k| k.contains("pack")), "{c} compared: {kernels:?}");
        }
    }
}

/// A sort of `n` operands whose comparator orders lexicographically by the first `c`, s32 keys
/// of four values in all (so most elements tie on every key), the others f32 payloads that tell
/// the input order: with `is_stable=true` ties must keep it.
fn tied_sort(n: usize, c: usize, rows: usize, len: usize) -> (String, Vec<Vec<u8>>) {
    let ty = |k: usize| if k < c { "s32" } else { "f32" };
    let mut cmp = String::from("cmp {\n");
    for k in 0..n {
        cmp += &format!("  l{k} = {}[] parameter({})\n  r{k} = {}[] parameter({})\n", ty(k), 2 * k, ty(k), 2 * k + 1);
    }
    cmp += &format!("  less{} = pred[] compare(l{}, r{}), direction=GT\n", c - 1, c - 1, c - 1);
    for k in (0..c - 1).rev() {
        let dir = ["LT", "GT"][k % 2];
        cmp += &format!("  lt{k} = pred[] compare(l{k}, r{k}), direction={dir}\n");
        cmp += &format!("  eq{k} = pred[] compare(l{k}, r{k}), direction=EQ\n");
        cmp += &format!("  then{k} = pred[] and(eq{k}, less{})\n", k + 1);
        cmp += &format!("  less{k} = pred[] or(lt{k}, then{k})\n");
    }
    cmp += "  ROOT r = pred[] copy(less0)\n}\n";
    let mut entry = String::from("ENTRY e {\n");
    let tys: Vec<String> = (0..n).map(|k| format!("{}[{rows},{len}]", ty(k))).collect();
    for (k, t) in tys.iter().enumerate() {
        entry += &format!("  p{k} = {t} parameter({k})\n");
    }
    entry += &format!(
        "  ROOT s = ({}) sort({}), dimensions={{1}}, is_stable=true, to_apply=cmp\n}}\n",
        tys.join(", "),
        (0..n).map(|k| format!("p{k}")).collect::<Vec<_>>().join(", ")
    );
    let elems = rows * len;
    let inputs = (0..n)
        .map(|k| match k {
            k if k < c => s32_bytes((0..elems).map(|i| ((i / [3, 5][k % 2]) % 2) as i32)),
            _ => f32_bytes((0..elems).map(|i| (i * n + k) as f32)),
        })
        .collect();
    (format!("HloModule m\n{cmp}{entry}"), inputs)
}

#[test]
fn stable_sort_comparing_many_tied_operands() {
    for (rows, len) in [(2, 17), (1, 257), (1, 4097)] {
        let (hlo, inputs) = tied_sort(17, 15, rows, len);
        check(&hlo, &inputs);
    }
}

/// With the device's limit lowered to 8 storage buffers (what `HLO_MAX_STORAGE_BUFFERS=8` does in
/// `hlo-run`), a sort of 5 operands compared lexicographically packs them too.
#[test]
fn sort_comparing_many_operands_under_a_lowered_limit() {
    let target = hlo_spirv::Target { max_storage_buffers: 8, ..hlo_spirv::Target::lavapipe() };
    for (rows, len) in [(1, 1), (2, 16), (1, 257)] {
        let hlo = lexicographic_sort_module(5, 5, rows, len);
        let inputs = sort_inputs(5, rows * len);
        let c = hlo_spirv::compile(&parse_and_fuse(&hlo), &target).unwrap_or_else(|e| panic!("{e}"));
        check_spirv(&c);
        assert!(c.program.kernels.iter().any(|k| k.name.contains("pack")));
        let got = run_vulkan(&vulkan(), &c, &inputs);
        let want = run_interp(&parse(&hlo), &inputs);
        for (k, io) in c.outputs.iter().enumerate() {
            compare(io.dtype, &got[k], &want[k], 0.0).unwrap_or_else(|e| panic!("output {k}: {e}"));
        }
    }
}
