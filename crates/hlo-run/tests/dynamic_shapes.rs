//! Bounded dynamic shapes end to end on both backends (`dynamic-padder`): XLA's tests
//! `set_dimension_size_test.cc`, `dynamic_reshape_test.cc` (SingleDynamicDimension) and the
//! evaluator's GetDimensionSize, with the values XLA's semantics give, worked out by hand.

mod common;
use common::*;
use hlo_ir::DType;
use hlo_run::npy::{self, HostArray};
use std::path::{Path, PathBuf};

const BACKENDS: [&str; 2] = ["interp", "vulkan"];

fn s32(dims: &[i64], v: &[i32]) -> HostArray {
    HostArray { dtype: DType::S32, dims: dims.to_vec(), bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect() }
}

fn f32s(dims: &[i64], v: &[f32]) -> HostArray {
    HostArray { dtype: DType::F32, dims: dims.to_vec(), bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect() }
}

/// Writes the module and its inputs into `dir`; returns the module's path and the inputs' paths.
fn setup(dir: &Path, module: &str, inputs: &[HostArray]) -> Vec<PathBuf> {
    let m = dir.join("module.hlo");
    std::fs::write(&m, module).unwrap();
    let mut paths = vec![m];
    for (k, input) in inputs.iter().enumerate() {
        let p = dir.join(format!("in_{k}.npy"));
        npy::write_npy(&p, input).unwrap();
        paths.push(p);
    }
    paths
}

/// Runs the module on `backend`; returns every `out_K.npy`, or the exit status and stderr.
fn run(dir: &Path, paths: &[PathBuf], backend: &str) -> Result<Vec<HostArray>, (Option<i32>, String)> {
    let out_dir = dir.join(format!("out-{backend}"));
    let _ = std::fs::remove_dir_all(&out_dir);
    let mut args: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(["--backend".into(), backend.into(), "-o".into(), out_dir.display().to_string()]);
    let out = hlo_run(&args);
    if !out.status.success() {
        assert!(!out_dir.join("out_0.npy").exists(), "a failed run writes no outputs");
        return Err((out.status.code(), stderr(&out)));
    }
    let mut outputs = Vec::new();
    while out_dir.join(format!("out_{}.npy", outputs.len())).exists() {
        outputs.push(npy::read_npy(&out_dir.join(format!("out_{}.npy", outputs.len()))).unwrap());
    }
    Ok(outputs)
}

const SET_DIMENSION_SIZE: &str = "HloModule m\nENTRY %test {\n  %arg0 = f32[1,8] parameter(0)\n  \
    %arg1 = s32[] parameter(1)\n  \
    ROOT %set-dimension-size.0 = f32[1,<=8] set-dimension-size(%arg0, %arg1), dimensions={1}\n}\n";

/// The result is the first `n` elements, shaped `f32[1,n]`; a size past the bound is refused at run time.
#[test]
fn set_dimension_size_cuts_the_result_on_both_backends() {
    let x: Vec<f32> = (0..8).map(|v| v as f32 * 1.5 - 2.0).collect();
    for backend in BACKENDS {
        let dir = temp_dir(&format!("set-dimension-size-{backend}"));
        for n in [0, 1, 5, 8] {
            let paths = setup(&dir, SET_DIMENSION_SIZE, &[f32s(&[1, 8], &x), s32(&[], &[n])]);
            let out = run(&dir, &paths, backend).unwrap_or_else(|e| panic!("{backend} n={n}: {e:?}"));
            assert_eq!(out, vec![f32s(&[1, n as i64], &x[..n as usize])], "{backend} n={n}");
        }
        for n in [9, -1] {
            let paths = setup(&dir, SET_DIMENSION_SIZE, &[f32s(&[1, 8], &x), s32(&[], &[n])]);
            let (code, err) = run(&dir, &paths, backend).expect_err("a size outside the bound");
            assert_eq!(code, Some(2), "{backend} n={n}: {err}");
            assert!(err.contains("%set-dimension-size.0") && err.contains("outside 0..=8"), "{backend}: {err}");
        }
    }
}

/// XLA's DynamicReshapeTest.SingleDynamicDimension: the valid `[2,2,3]` region in row-major
/// order, its first `n` elements.
#[test]
fn dynamic_reshape_gathers_the_valid_region_on_both_backends() {
    let module = "HloModule m\nENTRY main {\n  param = s32[2,3,3] parameter(0)\n  two = s32[] parameter(1)\n  \
        param_padded = s32[2,<=3,3] set-dimension-size(param, two), dimensions={1}\n  nine = s32[] parameter(2)\n  \
        ROOT reshaped = s32[<=18] dynamic-reshape(param_padded, nine)\n}\n";
    let param = s32(&[2, 3, 3], &(0..18).collect::<Vec<i32>>());
    let cases: [(i32, i32, &[i32]); 4] = [
        (2, 9, &[0, 1, 2, 3, 4, 5, 9, 10, 11]),
        (2, 12, &[0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14]),
        (3, 18, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]),
        (0, 0, &[]),
    ];
    for backend in BACKENDS {
        let dir = temp_dir(&format!("dynamic-reshape-{backend}"));
        for (rows, n, want) in cases {
            let paths = setup(&dir, module, &[param.clone(), s32(&[], &[rows]), s32(&[], &[n])]);
            let out = run(&dir, &paths, backend).unwrap_or_else(|e| panic!("{backend} {rows} {n}: {e:?}"));
            assert_eq!(out, vec![s32(&[n as i64], want)], "{backend} rows={rows} n={n}");
        }
    }
}

/// The evaluator's GetDimensionSize: the size propagates through `add` with a static operand;
/// and a reduction and a dot over the dynamic dimension do not read the padding.
#[test]
fn get_dimension_size_and_reductions_see_the_runtime_size_on_both_backends() {
    let gds = "HloModule m\nENTRY main {\n  size = s32[] constant(3)\n  param = s32[4] parameter(0)\n  \
        data_dynamic = s32[<=4] set-dimension-size(param, size), dimensions={0}\n  \
        sum = s32[<=4] add(data_dynamic, param)\n  ROOT dynamic_size = s32[] get-dimension-size(sum), dimensions={0}\n}\n";
    let reduce = "HloModule m\nadd {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  \
        ROOT s = f32[] add(a, b)\n}\nENTRY main {\n  x = f32[2,4] parameter(0)\n  n = s32[] parameter(1)\n  \
        d = f32[2,<=4] set-dimension-size(x, n), dimensions={1}\n  zero = f32[] constant(0)\n  \
        sum = f32[2] reduce(d, zero), dimensions={1}, to_apply=add\n  \
        dot = f32[2,2] dot(d, d), lhs_contracting_dims={1}, rhs_contracting_dims={1}\n  \
        e = f32[2,<=4] exponential(d)\n  size = s32[] get-dimension-size(e), dimensions={1}\n  \
        ROOT r = (f32[2], f32[2,2], f32[2,<=4], s32[]) tuple(sum, dot, e, size)\n}\n";
    let x = [1.0f32, 2.0, 1e30, f32::NAN, 3.0, 4.0, -1e30, f32::NAN];
    for backend in BACKENDS {
        let dir = temp_dir(&format!("get-dimension-size-{backend}"));
        let paths = setup(&dir, gds, &[s32(&[4], &[1, 2, 3, 4])]);
        assert_eq!(run(&dir, &paths, backend).unwrap(), vec![s32(&[], &[3])], "{backend}");
        let paths = setup(&dir, reduce, &[f32s(&[2, 4], &x), s32(&[], &[2])]);
        let out = run(&dir, &paths, backend).unwrap_or_else(|e| panic!("{backend}: {e:?}"));
        assert_eq!(out.len(), 4, "{backend}: the size leaves are dropped");
        assert_eq!(out[0], f32s(&[2], &[3.0, 7.0]), "{backend}");
        assert_eq!(out[1], f32s(&[2, 2], &[5.0, 11.0, 11.0, 25.0]), "{backend}");
        assert_eq!(out[2].dims, vec![2, 2], "{backend}");
        assert_eq!(out[3], s32(&[], &[2]), "{backend}");
    }
}

/// An op that would read the padding and that the padder does not mask is refused by name and line,
/// exit status 2, on both backends; so is a dynamic entry parameter.
#[test]
fn ops_that_would_read_the_padding_are_refused_with_their_line() {
    let module = "HloModule m\nENTRY main {\n  x = f32[8] parameter(0)\n  n = s32[] parameter(1)\n  \
        d = f32[<=8] set-dimension-size(x, n), dimensions={0}\n  ROOT r = f32[<=8] reverse(d), dimensions={0}\n}\n";
    for backend in BACKENDS {
        let dir = temp_dir(&format!("dynamic-refused-{backend}"));
        let paths = setup(&dir, module, &[f32s(&[8], &[0.0; 8]), s32(&[], &[3])]);
        let (code, err) = run(&dir, &paths, backend).expect_err("refused");
        assert_eq!(code, Some(2), "{backend}: {err}");
        assert!(err.contains(&format!("{}:6:", paths[0].display())), "{backend}: {err}");
        assert!(err.contains("reverse") && err.contains("dynamic-padder"), "{backend}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
