//! Shape sweeps across the code generator's thresholds: the unroll limit (16), the subgroup
//! size (8 on lavapipe), the few-outputs tree (64 outputs, 64 reduced elements), the
//! workgroup width (256), the tree limits (1024 reduced, 512 outputs). Every reduction kind
//! and dot layout runs on Vulkan and in the interpreter; the bugs these found (a row of 64..255
//! folded into the next; a dot over a reshaped operand read the wrong rows) hid between them.

mod common;
use common::*;
use hlo_ir::Literal;

/// Deterministic, exactly representable inputs: sums are exact in any order.
fn input(shape: &hlo_ir::Shape, seed: usize) -> Vec<u8> {
    let a = shape.as_array().expect("array parameter");
    let n = a.num_elements() as usize;
    (0..n).flat_map(|i| ((((i * 7919 + seed * 104_729) % 61) as f32 - 30.0) / 4.0).to_le_bytes()).collect()
}

/// Runs `hlo` (parameters f32) on Vulkan and in the interpreter; outputs must match exactly.
fn check(hlo: &str) {
    let m = parse_and_fuse(hlo);
    let c = compile_checked(&m);
    let entry = m.entry_comp();
    let inputs: Vec<Vec<u8>> = entry.param_shapes().iter().enumerate().map(|(k, s)| input(s, k)).collect();
    let args: Vec<Literal> = entry
        .param_shapes()
        .iter()
        .zip(&inputs)
        .map(|(s, b)| hlo_interp::literal_from_bytes(s.as_array().unwrap(), b).unwrap())
        .collect();
    let want = hlo_interp::evaluate(&m, &args).unwrap_or_else(|e| panic!("interp: {e}"));
    let want: Vec<Vec<u8>> = match want.tuple_elements() {
        Some(t) => t.iter().map(|l| hlo_interp::literal_to_bytes(l).unwrap()).collect(),
        None => vec![hlo_interp::literal_to_bytes(&want).unwrap()],
    };
    let got = run_vulkan(&vulkan(), &c, &inputs);
    for (k, io) in c.outputs.iter().enumerate() {
        if let Err(e) = compare(io.dtype, &got[k], &want[k], 0.0) {
            panic!("output {k} ({}{:?}): {e}\n{hlo}", io.dtype, io.dims);
        }
    }
}

const REDUCERS: &str = r#"
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
max {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT m = f32[] maximum(a, b)
}
argmax {
  av = f32[] parameter(0)
  ai = s32[] parameter(1)
  bv = f32[] parameter(2)
  bi = s32[] parameter(3)
  gt = pred[] compare(av, bv), direction=GT
  eq = pred[] compare(av, bv), direction=EQ
  lt = pred[] compare(ai, bi), direction=LT
  tie = pred[] and(eq, lt)
  keep = pred[] or(gt, tie)
  v = f32[] select(keep, av, bv)
  i = s32[] select(keep, ai, bi)
  ROOT r = (f32[], s32[]) tuple(v, i)
}
"#;

/// Row and column sums, maxima and argmaxes of [rows, cols] for every pair of extents.
#[test]
fn reductions_across_thresholds() {
    let rows = [1, 3, 9, 64, 65, 513];
    let cols = [1, 8, 9, 16, 17, 64, 65, 255, 257, 1025];
    for &r in &rows {
        let mut body = String::new();
        let mut outs = Vec::new();
        for (k, &c) in cols.iter().enumerate() {
            body += &format!(
                "  x{k} = f32[{r},{c}] parameter({k})\n  \
                   rs{k} = f32[{r}] reduce(x{k}, zero), dimensions={{1}}, to_apply=add\n  \
                   cs{k} = f32[{c}] reduce(x{k}, zero), dimensions={{0}}, to_apply=add\n  \
                   rm{k} = f32[{r}] reduce(x{k}, ninf), dimensions={{1}}, to_apply=max\n  \
                   io{k} = s32[{r},{c}] iota(), iota_dimension=1\n  \
                   am{k} = (f32[{r}], s32[{r}]) reduce(x{k}, io{k}, ninf, izero), dimensions={{1}}, to_apply=argmax\n  \
                   ai{k} = s32[{r}] get-tuple-element(am{k}), index=1\n"
            );
            outs.push((format!("f32[{r}]"), format!("rs{k}")));
            outs.push((format!("f32[{c}]"), format!("cs{k}")));
            outs.push((format!("f32[{r}]"), format!("rm{k}")));
            outs.push((format!("s32[{r}]"), format!("ai{k}")));
        }
        let shapes: Vec<&str> = outs.iter().map(|o| o.0.as_str()).collect();
        let names: Vec<&str> = outs.iter().map(|o| o.1.as_str()).collect();
        let hlo = format!(
            "HloModule m\n{REDUCERS}\nENTRY e {{\n  zero = f32[] constant(0)\n  ninf = f32[] constant(-inf)\n  izero = s32[] constant(0)\n{body}  ROOT t = ({}) tuple({})\n}}\n",
            shapes.join(", "),
            names.join(", ")
        );
        check(&hlo);
    }
}

/// Tree reductions past their narrow width: on lavapipe a tree is one subgroup wide until an
/// invocation would fold more than 4096 elements, then it doubles (`reduce::tree_workgroup`).
/// Sums, maxima and argmaxes of rows straddling 16 x 4096 and 32 x 4096 elements.
#[test]
fn narrow_trees_widen_past_their_chunk() {
    for c in [65535, 65536, 65537, 131073] {
        let hlo = format!(
            "HloModule m\n{REDUCERS}\nENTRY e {{\n  zero = f32[] constant(0)\n  ninf = f32[] constant(-inf)\n  \
             izero = s32[] constant(0)\n  x = f32[2,{c}] parameter(0)\n  \
             rs = f32[2] reduce(x, zero), dimensions={{1}}, to_apply=add\n  \
             rm = f32[2] reduce(x, ninf), dimensions={{1}}, to_apply=max\n  \
             io = s32[2,{c}] iota(), iota_dimension=1\n  \
             am = (f32[2], s32[2]) reduce(x, io, ninf, izero), dimensions={{1}}, to_apply=argmax\n  \
             ai = s32[2] get-tuple-element(am), index=1\n  ROOT t = (f32[2], f32[2], s32[2]) tuple(rs, rm, ai)\n}}\n"
        );
        check(&hlo);
    }
}

/// Dots whose operands are reshapes, slices or transposes of arrays of another rank, with the
/// contracted extent around the subgroup-staging threshold (16 on lavapipe) and beyond.
#[test]
fn dots_over_reshaped_operands() {
    for k in [1, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100, 257] {
        let hlo = format!(
            r#"HloModule m
ENTRY e {{
  x = f32[2,16,{k}] parameter(0)
  w = f32[{k},8] parameter(1)
  s = f32[5,16,{k}] parameter(2)
  flat = f32[32,{k}] reshape(x)
  d0 = f32[32,8] dot(flat, w), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}
  sl = f32[1,16,{k}] slice(s), slice={{[3:4], [0:16], [0:{k}]}}
  row = f32[16,{k}] reshape(sl)
  d1 = f32[16,8] dot(row, w), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}
  wt = f32[8,{k}] transpose(w), dimensions={{1,0}}
  d2 = f32[32,8] dot(flat, wt), lhs_contracting_dims={{1}}, rhs_contracting_dims={{1}}
  xt = f32[{k},32] transpose(flat), dimensions={{1,0}}
  d3 = f32[{k},{k}] dot(xt, flat), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}
  ROOT t = (f32[32,8], f32[16,8], f32[32,8], f32[{k},{k}]) tuple(d0, d1, d2, d3)
}}
"#
        );
        check(&hlo);
    }
}

/// JAX's argmax comparator keeps its first operand when both values are NaN, so it is not
/// commutative and only an index-ordered reduction returns the first NaN's index (what numpy
/// and JAX on CPU give). Several NaNs per row, at lengths across the tree thresholds and past
/// the split-reductions limit; a row-strategy case (many rows) too.
#[test]
fn argmax_returns_the_first_nan_at_every_length() {
    const JAX_ARGMAX: &str = r#"
argmax {
  av = f32[] parameter(0)
  ai = s32[] parameter(1)
  bv = f32[] parameter(2)
  bi = s32[] parameter(3)
  gt = pred[] compare(av, bv), direction=GT
  nan = pred[] compare(av, av), direction=NE
  pick = pred[] or(gt, nan)
  eq = pred[] compare(av, bv), direction=EQ
  lt = pred[] compare(ai, bi), direction=LT
  tie = pred[] and(eq, lt)
  keep = pred[] or(pick, tie)
  v = f32[] select(pick, av, bv)
  i = s32[] select(keep, ai, bi)
  ROOT r = (f32[], s32[]) tuple(v, i)
}
"#;
    let ctx = vulkan();
    for &(rows, n) in &[(1usize, 63usize), (1, 64), (1, 65), (1, 1023), (1, 1025), (3, 4097), (1, 70_000), (70, 300)] {
        let hlo = format!(
            "HloModule m\n{JAX_ARGMAX}\nENTRY e {{\n  x = f32[{rows},{n}] parameter(0)\n  io = s32[{rows},{n}] iota(), iota_dimension=1\n  \
             ninf = f32[] constant(-inf)\n  izero = s32[] constant(0)\n  \
             am = (f32[{rows}], s32[{rows}]) reduce(x, io, ninf, izero), dimensions={{1}}, to_apply=argmax\n  \
             ROOT ai = s32[{rows}] get-tuple-element(am), index=1\n}}\n"
        );
        let m = parse_and_fuse(&hlo);
        let c = compile_checked(&m);
        // NaNs late in the row first, then earlier ones, so that a strided or reversed order
        // meets a later NaN before the first.
        let mut want = Vec::new();
        let mut x = vec![0f32; rows * n];
        for r in 0..rows {
            let row = &mut x[r * n..(r + 1) * n];
            for (i, v) in row.iter_mut().enumerate() {
                *v = ((i * 37 + r * 11) % 101) as f32;
            }
            let first = (n / 3 + r) % n;
            for i in (first..n).step_by(n / 7 + 1) {
                row[i] = f32::NAN;
            }
            want.push(first as i32);
        }
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        let got = run_vulkan(&ctx, &c, &[bytes]);
        let got: Vec<i32> = got[0].chunks(4).map(|b| i32::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(got, want, "argmax of f32[{rows},{n}] with NaNs");
    }
}
