//! End-to-end tests of the `hlo-run` binary: exit codes, diagnostics that
//! point at the right line and column, input checking, and outputs that match
//! JAX's for real samples.

mod common;
use common::*;
use hlo_run::npy;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[test]
fn check_summarises_a_valid_module() {
    let out = hlo_run(&["check", "hlo-samples/nbody_forces/module.hlo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(": ok: module"), "{text}");
    assert!(text.contains("reduce:"), "{text}");
}

#[test]
fn check_reports_line_and_column_of_a_syntax_error() {
    let dir = temp_dir("syntax");
    let file = dir.join("bad.hlo");
    // Line 4, column 34: the shape's closing bracket is missing.
    std::fs::write(&file, "HloModule bad\n\nENTRY main {\n  a = f32[3] parameter(0)\n  ROOT b = f32[3 negate(a)\n}\n")
        .unwrap();
    let out = hlo_run(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    let first = err.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("{}:5:", file.display())), "{err}");
    assert!(first.contains("expected"), "{err}");
    assert!(err.contains("ROOT b = f32[3 negate(a)"), "the source line is shown: {err}");
    assert!(err.contains('^'), "a caret marks the column: {err}");
}

#[test]
fn check_reports_a_type_error_naming_the_instruction() {
    let dir = temp_dir("types");
    let file = dir.join("bad.hlo");
    std::fs::write(
        &file,
        "HloModule bad\n\nENTRY main {\n  a = f32[3] parameter(0)\n  b = f32[4] parameter(1)\n  ROOT c = f32[3] add(a, b)\n}\n",
    )
    .unwrap();
    let out = hlo_run(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    // At the instruction's FILE:LINE:COL, as a parse error would be.
    assert!(stderr(&out).contains("bad.hlo:6:8: in %main, instruction %c"), "{}", stderr(&out));
}

/// `check --parse-only` parses without verifying, as XLA's `ParseAndReturnUnverifiedModule`:
/// a type error passes, what the parser itself refuses still fails at its line and column.
#[test]
fn check_parse_only_skips_the_verifier() {
    let dir = temp_dir("parse-only");
    let file = dir.join("unverified.hlo");
    std::fs::write(
        &file,
        "HloModule unverified\n\nENTRY main {\n  a = f32[3] parameter(0)\n  b = f32[4] parameter(1)\n  ROOT c = f32[3] add(a, b)\n}\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = hlo_run(&["check", path]);
    assert_eq!(out.status.code(), Some(2), "the verifier refuses it: {}", stdout(&out));
    let out = hlo_run(&["check", "--parse-only", path]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(": ok (parsed, not verified): module unverified"), "{text}");
    assert!(text.contains("add:1"), "{text}");
    // XLA's parser refuses a pred selector with branch_computations: so does ours, verifier or not.
    let bad = dir.join("pred_branches.hlo");
    std::fs::write(
        &bad,
        "HloModule m\n\nb {\n  ROOT x = f32[] parameter(0)\n}\n\nENTRY main {\n  p = pred[] parameter(0)\n  \
         v = f32[] parameter(1)\n  ROOT c = f32[] conditional(p, v, v), branch_computations={b, b}\n}\n",
    )
    .unwrap();
    let out = hlo_run(&["check", "--parse-only", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.starts_with(&format!("{}:10:40: a conditional whose selector is pred", bad.display())), "{err}");
}

/// `compile -o DIR` writes the plan, WGSL or SPIR-V there (one file per kernel) and prints the
/// paths; without -o the plan and WGSL go to stdout.
#[test]
fn compile_writes_each_form_into_the_output_directory() {
    let dir = temp_dir("compile-out");
    let out_dir = dir.join("out");
    let module = "hlo-samples/matmul/module.hlo";
    for (emit, suffix) in [("plan", "plan.txt"), ("wgsl", ".wgsl"), ("spirv", ".spv")] {
        let out = hlo_run(&["compile", module, "--emit", emit, "-o", out_dir.to_str().unwrap()]);
        assert!(out.status.success(), "{emit}: {}", stderr(&out));
        assert!(stdout(&out).lines().all(|l| l.ends_with(suffix)), "{emit}: {}", stdout(&out));
        let written = std::fs::read_dir(&out_dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(suffix));
        assert!(written.count() >= 1, "{emit}: nothing written");
    }
    let out = hlo_run(&["compile", module, "--emit", "wgsl"]);
    assert!(stdout(&out).contains("@compute"), "{}", stdout(&out));
}

#[test]
fn missing_file_and_empty_input_are_user_errors() {
    let out = hlo_run(&["check", "does/not/exist.hlo"]);
    assert_eq!(out.status.code(), Some(2));
    let dir = temp_dir("empty");
    let file = dir.join("empty.hlo");
    std::fs::write(&file, "").unwrap();
    let out = hlo_run(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn wrong_input_shape_names_the_parameter() {
    let sample = "hlo-samples/matmul";
    // Give the second input where the first is expected.
    let out = hlo_run(&[
        &format!("{sample}/module.hlo"),
        &format!("{sample}/in_1.npy"),
        &format!("{sample}/in_0.npy"),
        "--backend",
        "interp",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("parameter 0"), "{err}");
    assert!(err.contains("f32[32,48]") && err.contains("f32[64,32]"), "{err}");
}

#[test]
fn wrong_input_count_is_a_user_error() {
    let out = hlo_run(&["hlo-samples/matmul/module.hlo", "hlo-samples/matmul/in_0.npy", "--backend", "interp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("takes 2 input(s)"), "{}", stderr(&out));
}

/// Runs a sample through the CLI and compares `out_K.npy` with JAX's.
fn run_sample_matches_jax(sample: &str, module: &str, backend: &str) {
    let dir = repo().join("hlo-samples").join(sample);
    let mut args: Vec<String> = vec![dir.join(module).display().to_string()];
    let mut k = 0;
    while dir.join(format!("in_{k}.npy")).exists() {
        args.push(dir.join(format!("in_{k}.npy")).display().to_string());
        k += 1;
    }
    let out_dir = temp_dir(&format!("{sample}-{backend}"));
    args.extend(["-o".into(), out_dir.display().to_string(), "--backend".into(), backend.into()]);
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = hlo_run(&refs);
    assert!(out.status.success(), "{sample} on {backend}: {}", stderr(&out));
    let mut k = 0;
    while dir.join(format!("out_{k}.npy")).exists() {
        let ours = npy::read_npy(&out_dir.join(format!("out_{k}.npy"))).unwrap();
        let jax = npy::read_npy(&dir.join(format!("out_{k}.npy"))).unwrap();
        assert_eq!(ours.dims, jax.dims, "{sample} out_{k}");
        assert_eq!(ours.dtype, jax.dtype, "{sample} out_{k}");
        if ours.dtype == hlo_ir::DType::F32 {
            let f = |a: &npy::HostArray| -> Vec<f64> {
                a.bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect()
            };
            let (a, b) = (f(&ours), f(&jax));
            let diff: f64 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
            let norm: f64 = b.iter().map(|y| y * y).sum();
            assert!(diff.sqrt() <= 1e-5 * norm.sqrt().max(1.0), "{sample} out_{k}: L2 error {}", diff.sqrt());
        } else {
            assert_eq!(ours.bytes, jax.bytes, "{sample} out_{k}");
        }
        k += 1;
    }
    assert!(k > 0);
}

#[test]
fn interp_backend_runs_a_sample_and_writes_npy() {
    run_sample_matches_jax("int_arith", "module.hlo", "interp");
}

#[test]
fn random_inputs_need_no_files() {
    let out = hlo_run(&["hlo-samples/matmul/module.hlo", "--random-inputs", "--seed", "3", "--backend", "interp"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("out_0: f32[64,48]"), "{}", stdout(&out));
}

#[test]
fn print_is_canonical_and_reparses() {
    let out = hlo_run(&["print", "hlo-samples/seed_draw_points/module.opt.hlo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let dir = temp_dir("print");
    std::fs::write(dir.join("p.hlo"), &printed).unwrap();
    let again = hlo_run(&["print", dir.join("p.hlo").to_str().unwrap()]);
    assert_eq!(stdout(&again), printed, "printing is a fixed point");
}

#[test]
fn vulkan_backend_runs_the_seed_module() {
    run_sample_matches_jax("seed_draw_points", "module.opt.hlo", "vulkan");
}

/// `rng-bit-generator` (JAX's `lax.rng_bit_generator`) gives JAX's bits on both backends.
#[test]
fn both_backends_run_rng_bit_generator() {
    run_sample_matches_jax("rng_bit_generator", "module.hlo", "vulkan");
    run_sample_matches_jax("rng_bit_generator", "module.hlo", "interp");
}

#[test]
fn an_op_vulkan_cannot_run_is_named_with_its_line() {
    let dir = temp_dir("unsupported");
    let file = dir.join("all_reduce.hlo");
    std::fs::write(
        &file,
        "HloModule all_reduce\n\nadd {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  \
         ROOT s = f32[] add(a, b)\n}\n\nENTRY main {\n  x = f32[4] parameter(0)\n  \
         ROOT r = f32[4] all-reduce(x), replica_groups={}, to_apply=add\n}\n",
    )
    .unwrap();
    let out = hlo_run(&[file.to_str().unwrap(), "--random-inputs"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with(&format!("{}:11:", file.display())), "{err}");
    assert!(err.contains("all-reduce") && err.contains("--backend interp"), "{err}");
}

/// A pass that cannot lower an op in the form it has (here `lower-complex`, which has no
/// complex scatter with a multiplying combiner) refuses it by name and line, exit status 2,
/// rather than an internal error.
#[test]
fn an_op_a_pass_cannot_lower_is_named_with_its_line() {
    let dir = temp_dir("complex");
    let file = dir.join("scatter.hlo");
    std::fs::write(
        &file,
        "HloModule c\n\nmul {\n  a = c64[] parameter(0)\n  b = c64[] parameter(1)\n  \
         ROOT m = c64[] multiply(a, b)\n}\n\nENTRY main {\n  z = c64[4] parameter(0)\n  \
         i = s32[2,1] parameter(1)\n  u = c64[2] parameter(2)\n  ROOT s = c64[4] scatter(z, i, u), \
         update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, \
         index_vector_dim=1, to_apply=mul\n}\n",
    )
    .unwrap();
    let out = hlo_run(&[file.to_str().unwrap(), "--random-inputs"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with(&format!("{}:13:", file.display())), "{err}");
    assert!(err.contains("scatter `s`") && err.contains("lower-complex"), "{err}");
}

/// An op neither backend runs is named (not a parameter before it), and the message does
/// not send the user to an interpreter that cannot run it either.
#[test]
fn an_op_no_backend_runs_is_named_without_a_false_hint() {
    let dir = temp_dir("custom_call");
    let file = dir.join("custom_call.hlo");
    std::fs::write(
        &file,
        "HloModule f\n\nENTRY main {\n  a = f32[8] parameter(0)\n  b = f32[] parameter(1)\n  \
         ROOT f = f32[8] custom-call(a), custom_call_target=\"my_kernel\"\n}\n",
    )
    .unwrap();
    let out = hlo_run(&[file.to_str().unwrap(), "--random-inputs"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with(&format!("{}:6:", file.display())), "{err}");
    assert!(err.contains("custom-call `f`") && err.contains("my_kernel"), "{err}");
    assert!(err.contains("cannot run this module either"), "{err}");
    assert!(!err.contains("runs every op"), "{err}");
}

#[test]
fn bad_settings_and_unwritable_outputs_are_user_errors() {
    let module = "hlo-samples/matmul/module.hlo";
    assert_user_error(&[module, "--random-inputs"], &[("HLO_FMA", "fast")], &["HLO_FMA=fast", "native"]);
    assert_user_error(&[module, "--random-inputs"], &[("HLO_AUTOTUNE", "maybe")], &["HLO_AUTOTUNE=maybe"]);
    let blocker = temp_dir("unwritable").join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let out_dir = blocker.join("out");
    assert_user_error(
        &[module, "--random-inputs", "-o", out_dir.to_str().unwrap()],
        &[],
        &["cannot create the output directory"],
    );
}

#[test]
fn a_missing_vulkan_driver_says_how_to_install_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_hlo-run"))
        .args(["hlo-samples/matmul/module.hlo", "--random-inputs"])
        .current_dir(repo())
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("apt-get install libvulkan1 mesa-vulkan-drivers"), "{err}");
    assert!(err.contains("--backend interp"), "{err}");
}

/// Mandelbrot's escape counts are chaotic in the last bit of each multiply-add:
/// both backends must reproduce XLA:CPU's fused multiply-adds to match exactly.
#[test]
fn both_backends_reproduce_mandelbrot_counts_exactly() {
    run_sample_matches_jax("mandelbrot", "module.hlo", "interp");
    run_sample_matches_jax("mandelbrot", "module.hlo", "vulkan");
}

#[test]
fn one_npz_archive_supplies_every_input() {
    use std::io::Write;
    let sample = repo().join("hlo-samples/matmul");
    let dir = temp_dir("npz");
    let module = sample.join("module.hlo");
    let text = std::fs::read_to_string(&module).unwrap();
    let params = hlo_parse::parse_module(&text).unwrap();
    let names: Vec<String> =
        params.entry_comp().params.iter().map(|&p| params.entry_comp().instr(p).name.clone()).collect();
    // np.savez(f, a, b); np.savez(f, **{second: b, first: a}) (by name, written out of order);
    // and other names, taken in archive order.
    let schemes: Vec<Vec<(String, usize)>> = vec![
        vec![("arr_0".into(), 0), ("arr_1".into(), 1)],
        vec![(names[1].clone(), 1), (names[0].clone(), 0)],
        vec![("x".into(), 0), ("y".into(), 1)],
    ];
    for (s, scheme) in schemes.iter().enumerate() {
        let archive = dir.join(format!("inputs{s}.npz"));
        let mut zip = npyz::zip::ZipWriter::new(std::fs::File::create(&archive).unwrap());
        for (key, k) in scheme {
            zip.start_file(format!("{key}.npy"), npyz::zip::write::FileOptions::default()).unwrap();
            zip.write_all(&std::fs::read(sample.join(format!("in_{k}.npy"))).unwrap()).unwrap();
        }
        zip.finish().unwrap();
        let out_dir = dir.join("out");
        for backend in ["interp", "vulkan"] {
            let out = hlo_run(&[
                module.to_str().unwrap(),
                archive.to_str().unwrap(),
                "-o",
                out_dir.to_str().unwrap(),
                "--backend",
                backend,
            ]);
            assert!(out.status.success(), "{backend}: {}", stderr(&out));
            let ours = npy::read_npy(&out_dir.join("out_0.npy")).unwrap();
            let jax = npy::read_npy(&sample.join("out_0.npy")).unwrap();
            assert_eq!((ours.dtype, &ours.dims), (jax.dtype, &jax.dims), "{backend}");
            let f = |a: &npy::HostArray| -> Vec<f32> {
                a.bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
            };
            let max_err = f(&ours).iter().zip(f(&jax)).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(max_err < 1e-4, "{backend}: max abs error {max_err}");
        }
    }
}

/// Runs `hlo-run` with extra environment, killing it (and failing the test) if it takes
/// longer than `limit`: hostile input must give a prompt answer, not a hang.
fn hlo_run_bounded(args: &[&str], env: &[(&str, &str)], limit: std::time::Duration) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hlo-run"));
    cmd.args(args)
        .current_dir(repo())
        .env("HLO_VULKAN_VALIDATION", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("hlo-run starts");
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("hlo-run {args:?} did not finish in {limit:?}; stderr: {}", stderr(&out));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A hostile input is a user error: exit status 2, a message that contains every one of
/// `expected`, no panic, and an answer within seconds.
fn assert_user_error(args: &[&str], env: &[(&str, &str)], expected: &[&str]) {
    let out = hlo_run_bounded(args, env, std::time::Duration::from_secs(60));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{args:?}: {err}");
    for e in expected {
        assert!(err.contains(e), "{args:?}: expected {e:?} in: {err}");
    }
}

/// A `.npy` file with the given header dict and data bytes (version 1.0).
fn npy_with_header(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = dict.to_string();
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

const ONE_PARAM: &str = "HloModule m\n\nENTRY main {\n  ROOT p = f32[2] parameter(0)\n}\n";

#[test]
fn hostile_npy_headers_are_user_errors() {
    let dir = temp_dir("hostile-npy");
    let module = dir.join("m.hlo");
    std::fs::write(&module, ONE_PARAM).unwrap();
    let m = module.to_str().unwrap();
    let cases: &[(&str, Vec<u8>, &[&str])] = &[
        // A header claiming 64e6 x 32e6 floats: refused before anything is allocated.
        (
            "huge.npy",
            npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (64000000, 32000000), }", &[0; 16]),
            &["huge.npy", "f32[64000000,32000000]", "memory limit"],
        ),
        (
            "overflow.npy",
            npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", &[]),
            &["overflow.npy", "more bytes than fit in 64 bits"],
        ),
        (
            "big_dim.npy",
            npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", &[]),
            &["big_dim.npy", "non-negative dimension"],
        ),
        (
            "negative.npy",
            npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", &[]),
            &["negative.npy", "non-negative dimension"],
        ),
        (
            "short.npy",
            npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", &[0; 5]),
            &["short.npy", "holds 5 bytes", "promises 8"],
        ),
        (
            "long.npy",
            npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", &[0; 12]),
            &["long.npy", "holds 12 bytes", "promises 8"],
        ),
        (
            "descr.npy",
            npy_with_header("{'descr': '<U7', 'fortran_order': False, 'shape': (2,), }", &[0; 56]),
            &["descr.npy", "unsupported .npy element type '<U7'"],
        ),
        (
            "structured.npy",
            npy_with_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", &[0; 8]),
            &["structured.npy", "structured"],
        ),
        ("magic.npy", b"PK\x03\x04 not an npy file at all".to_vec(), &["magic.npy", "magic"]),
        ("empty.npy", Vec::new(), &["empty.npy", "shorter than the magic"]),
        // Version 2.0 with a 4 GiB header length.
        ("header_len.npy", b"\x93NUMPY\x02\x00\xff\xff\xff\xff{".to_vec(), &["header_len.npy", "header claims"]),
        (
            "no_shape.npy",
            npy_with_header("{'descr': '<f4', 'fortran_order': False, }", &[0; 8]),
            &["no_shape.npy", "no 'shape'"],
        ),
    ];
    for (name, bytes, expected) in cases {
        let file = dir.join(name);
        std::fs::write(&file, bytes).unwrap();
        assert_user_error(&[m, file.to_str().unwrap(), "--backend", "interp"], &[], expected);
    }
    // A well-formed file still works.
    let good = dir.join("good.npy");
    std::fs::write(&good, npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", &[0; 8]))
        .unwrap();
    let out = hlo_run(&[m, good.to_str().unwrap(), "--backend", "interp"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn hostile_npz_archives_are_user_errors() {
    use std::io::Write;
    let dir = temp_dir("hostile-npz");
    let module = dir.join("m.hlo");
    std::fs::write(&module, ONE_PARAM).unwrap();
    let m = module.to_str().unwrap();
    let garbage = dir.join("garbage.npz");
    std::fs::write(&garbage, b"this is not a zip archive").unwrap();
    assert_user_error(&[m, garbage.to_str().unwrap(), "--backend", "interp"], &[], &["garbage.npz", "npz"]);
    // An entry whose header promises far more than the memory limit.
    let archive = dir.join("huge.npz");
    let mut zip = npyz::zip::ZipWriter::new(std::fs::File::create(&archive).unwrap());
    zip.start_file("arr_0.npy", npyz::zip::write::FileOptions::default()).unwrap();
    zip.write_all(&npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (64000000, 32000000), }", &[]))
        .unwrap();
    zip.finish().unwrap();
    assert_user_error(
        &[m, archive.to_str().unwrap(), "--backend", "interp"],
        &[],
        &["huge.npz[arr_0]", "memory limit"],
    );
}

#[test]
fn random_inputs_larger_than_memory_are_refused_at_the_parameter() {
    let dir = temp_dir("hostile-random");
    let module = dir.join("m.hlo");
    std::fs::write(&module, "HloModule m\n\nENTRY main {\n  ROOT p = f32[99999999999] parameter(0)\n}\n").unwrap();
    let m = module.to_str().unwrap();
    for backend in ["interp", "vulkan"] {
        assert_user_error(
            &[m, "--random-inputs", "--backend", backend],
            &[],
            &[&format!("{m}:4:8:"), "f32[99999999999]", "memory limit"],
        );
    }
}

#[test]
fn interpreter_refuses_results_past_the_memory_limit() {
    let dir = temp_dir("hostile-interp");
    let cases = [
        ("broadcast", "  c = f32[] constant(1)\n  ROOT b = f32[4000000000] broadcast(c), dimensions={}\n", "5:8"),
        ("iota", "  ROOT i = s32[100000,100000] iota(), iota_dimension=0\n", "4:8"),
        (
            "pad",
            "  p = f32[2] constant({1, 2})\n  c = f32[] constant(0)\n  ROOT q = f32[8000000002] pad(p, c), padding=0_8000000000\n",
            "6:8",
        ),
        // Within the default limit of any machine, but not within the one set here.
        ("moderate", "  c = f32[] constant(1)\n  ROOT b = f32[100000000] broadcast(c), dimensions={}\n", "5:8"),
    ];
    for (name, body, at) in cases {
        let module = dir.join(format!("{name}.hlo"));
        std::fs::write(&module, format!("HloModule m\n\nENTRY main {{\n{body}}}\n")).unwrap();
        let m = module.to_str().unwrap();
        assert_user_error(
            &[m, "--backend", "interp"],
            &[("HLO_MEMORY_LIMIT", "64M")],
            &[&format!("{m}:{at}:"), name.get(..4).unwrap_or(name), "memory limit of 64.0 MiB"],
        );
    }
    let out = hlo_run_bounded(
        &["hlo-samples/matmul/module.hlo", "--random-inputs", "--backend", "interp"],
        &[("HLO_MEMORY_LIMIT", "lots")],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("HLO_MEMORY_LIMIT"), "{}", stderr(&out));
}

#[test]
fn dynamic_shapes_are_refused_with_their_line() {
    let dir = temp_dir("hostile-dynamic");
    for shape in ["f32[?]", "f32[<=8]", "(f32[2], s32[?,3])"] {
        let module = dir.join("dyn.hlo");
        std::fs::write(&module, format!("HloModule m\n\nENTRY main {{\n  ROOT p = {shape} parameter(0)\n}}\n"))
            .unwrap();
        let m = module.to_str().unwrap();
        let out_dir = dir.join("out");
        for args in [
            vec![m, "--random-inputs", "--backend", "interp", "-o", out_dir.to_str().unwrap()],
            vec![m, "--random-inputs", "--backend", "vulkan"],
            vec!["opt", m],
            vec!["compile", m],
        ] {
            assert_user_error(&args, &[], &[&format!("{m}:4:8:"), "dynamic"]);
        }
        assert!(!out_dir.join("out_0.npy").exists(), "no unreadable .npy is written");
        // Parsing and printing still accept them.
        let out = hlo_run(&["check", m]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

#[test]
fn special_and_oversized_files_are_refused() {
    // `/dev/zero` never ends; reading it whole took 4 GB before failing.
    assert_user_error(&["check", "/dev/zero"], &[], &["/dev/zero", "not a regular file"]);
    assert_user_error(&["hlo-samples/matmul/module.hlo", "/dev/zero", "--backend", "interp"], &[], &["/dev/zero"]);
    let dir = temp_dir("hostile-files");
    assert_user_error(&["check", dir.to_str().unwrap()], &[], &["a directory"]);
    // A sparse file of 2 GiB: refused by its size, without being read.
    let big = dir.join("big.hlo");
    std::fs::File::create(&big).unwrap().set_len(2 << 30).unwrap();
    assert_user_error(&["check", big.to_str().unwrap()], &[], &["big.hlo", "more than the 1.0 GiB"]);
    let latin1 = dir.join("latin1.hlo");
    std::fs::write(&latin1, b"HloModule m\n\nENTRY main {\n  ROOT p = f32[2] parameter(0) // caf\xe9\n}\n").unwrap();
    assert_user_error(&["check", latin1.to_str().unwrap()], &[], &[&format!("{}:4:", latin1.display()), "UTF-8"]);
    // A FIFO with no writer blocks whoever opens it for reading.
    let fifo = dir.join("fifo.hlo");
    if Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
        assert_user_error(&["check", fifo.to_str().unwrap()], &[], &["a FIFO"]);
        let module = dir.join("m.hlo");
        std::fs::write(&module, ONE_PARAM).unwrap();
        assert_user_error(&[module.to_str().unwrap(), fifo.to_str().unwrap(), "--backend", "interp"], &[], &["a FIFO"]);
    }
}

#[test]
fn a_fifo_in_the_pipeline_cache_is_ignored() {
    let dir = temp_dir("hostile-cache");
    let cache = dir.join("cache");
    let env = [("HLO_VULKAN_CACHE_DIR", cache.to_str().unwrap())];
    let args = ["hlo-samples/matmul/module.hlo", "--random-inputs"];
    let out = hlo_run_bounded(&args, &env, std::time::Duration::from_secs(120));
    assert!(out.status.success(), "{}", stderr(&out));
    // Replace every cache file with a FIFO: the next run must not block on it.
    let files: Vec<PathBuf> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!files.is_empty(), "the first run writes a cache file");
    for f in &files {
        std::fs::remove_file(f).unwrap();
        if !Command::new("mkfifo").arg(f).status().is_ok_and(|s| s.success()) {
            return; // no mkfifo here
        }
    }
    let out = hlo_run_bounded(&args, &env, std::time::Duration::from_secs(120));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("not a regular file"), "a warning says why the cache was ignored: {}", stderr(&out));
}

/// Elements of two arrays agree bit for bit (any NaN matches any NaN).
fn same_values(a: &npy::HostArray, b: &npy::HostArray) -> Result<(), String> {
    if (a.dtype, &a.dims) != (b.dtype, &b.dims) {
        return Err(format!("{} vs {}", a.describe(), b.describe()));
    }
    let width = a.dtype.byte_size();
    for (k, (x, y)) in a.bytes.chunks_exact(width).zip(b.bytes.chunks_exact(width)).enumerate() {
        let both_nan = match a.dtype {
            hlo_ir::DType::F32 => {
                f32::from_le_bytes(x.try_into().unwrap()).is_nan() && f32::from_le_bytes(y.try_into().unwrap()).is_nan()
            }
            _ => false,
        };
        if x != y && !both_nan {
            return Err(format!("element {k}: {x:?} vs {y:?} ({} elements)", a.bytes.len() / width));
        }
    }
    Ok(())
}

/// Cases whose float sums the device adds in its own order (workgroup trees; XLA:CPU's blocks
/// of 32 cost it 2-6x, see hlo-passes' pipeline.rs): on Vulkan they match JAX within this
/// relative error (64 ulps of the largest output: sums of ~1000 terms of either sign), the
/// interpreter bit for bit.
const DEVICE_SUM_ORDER: &[&str] = &["mean_rows", "sum_1k", "sum_40k", "sum_axis0", "var_cols"];
const DEVICE_SUM_TOLERANCE: f64 = 64.0 * f32::EPSILON as f64;

/// f32 arrays equal within `tol` relative to the largest magnitude of `want`.
fn close_values(got: &npy::HostArray, want: &npy::HostArray, tol: f64) -> Result<(), String> {
    if got.dtype != hlo_ir::DType::F32 || want.dtype != hlo_ir::DType::F32 || got.bytes.len() != want.bytes.len() {
        return same_values(got, want);
    }
    let f = |b: &[u8]| -> Vec<f64> {
        b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect()
    };
    let (g, w) = (f(&got.bytes), f(&want.bytes));
    let scale = w.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (k, (a, b)) in g.iter().zip(&w).enumerate() {
        if (a - b).abs() > tol * scale {
            return Err(format!("element {k}: {a:e} vs {b:e} (tolerance {tol:e} x {scale:e})"));
        }
    }
    Ok(())
}

/// JAX programs whose values depend on XLA:CPU's own rewrites (division by a constant,
/// sums in blocks of 32, scans in blocks of 16, bf16 excess precision, pow by small
/// integers; `tests/xla_numerics/generate.py`): both backends reproduce JAX's outputs bit
/// for bit from the pre-optimisation module, except the device's sums ([`DEVICE_SUM_ORDER`]).
#[test]
fn xla_cpu_rewrites_are_reproduced_bit_for_bit() {
    let root = repo().join("crates/hlo-run/tests/xla_numerics");
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert!(cases.len() >= 30, "the committed cases are there");
    let mut failures = Vec::new();
    for backend in ["interp", "vulkan"] {
        for case in &cases {
            let name = case.file_name().unwrap().to_string_lossy().into_owned();
            let mut args = vec![case.join("module.hlo").display().to_string()];
            let mut k = 0;
            while case.join(format!("in_{k}.npy")).exists() {
                args.push(case.join(format!("in_{k}.npy")).display().to_string());
                k += 1;
            }
            let out_dir = temp_dir(&format!("xla-numerics-{name}-{backend}"));
            args.extend(["-o".into(), out_dir.display().to_string(), "--backend".into(), backend.into()]);
            let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            let out = hlo_run(&refs);
            if !out.status.success() {
                failures.push(format!("{name} on {backend}: {}", stderr(&out)));
                continue;
            }
            let mut k = 0;
            while case.join(format!("out_{k}.npy")).exists() {
                let jax = npy::read_npy(&case.join(format!("out_{k}.npy"))).unwrap();
                let mut ours = npy::read_npy(&out_dir.join(format!("out_{k}.npy"))).unwrap();
                if ours.dtype == hlo_ir::DType::BF16
                    || (ours.dtype == hlo_ir::DType::U16 && jax.dtype == hlo_ir::DType::U16)
                {
                    ours.dtype = jax.dtype;
                }
                let result = if backend == "vulkan" && DEVICE_SUM_ORDER.contains(&name.as_str()) {
                    close_values(&ours, &jax, DEVICE_SUM_TOLERANCE)
                } else {
                    same_values(&ours, &jax)
                };
                if let Err(e) = result {
                    failures.push(format!("{name} on {backend}, out_{k}: {e}"));
                }
                k += 1;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn vulkan_buffers_past_the_memory_limit_on_a_cpu_device_are_refused() {
    let dir = temp_dir("hostile-vulkan-buffers");
    let module = dir.join("three.hlo");
    std::fs::write(
        &module,
        "HloModule m\n\nENTRY main {\n  c = f32[] constant(1)\n  b = f32[8000000] broadcast(c), dimensions={}\n  \
         d = f32[8000000] negate(b)\n  e = f32[8000000] exponential(b)\n  \
         ROOT t = (f32[8000000], f32[8000000], f32[8000000]) tuple(b, d, e)\n}\n",
    )
    .unwrap();
    let m = module.to_str().unwrap();
    let out = hlo_run_bounded(&[m], &[("HLO_MEMORY_LIMIT", "64M")], std::time::Duration::from_secs(120));
    let err = stderr(&out);
    let devices = stdout(&hlo_run(&["devices"]));
    if devices.contains("[cpu]") || devices.contains("llvmpipe") {
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("buffers need") && err.contains("memory limit of 64.0 MiB"), "{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn module_text_whose_parsed_form_exceeds_the_memory_limit_is_refused() {
    let dir = temp_dir("hostile-lines");
    let module = dir.join("many.hlo");
    let mut text = String::from("HloModule m\n\nENTRY main {\n");
    for i in 0..50_000 {
        text.push_str(&format!("  a{i} = f32[] constant({i})\n"));
    }
    text.push_str("  ROOT r = f32[] add(a0, a1)\n}\n");
    std::fs::write(&module, text).unwrap();
    let m = module.to_str().unwrap();
    assert_user_error(
        &["check", m],
        &[("HLO_MEMORY_LIMIT", "16M")],
        &[m, "parsing 50006 lines", "memory limit of 16.0 MiB"],
    );
    let out = hlo_run(&["check", m]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `--iterations N` feeds outputs back into inputs: the n-body step's state (positions and
/// velocities, both f32[256, 2]) needs `--feed`; with it, three iterations on the device equal
/// three on the interpreter, and equal running the module three times through files.
#[test]
fn iterations_feed_outputs_back_into_inputs() {
    let s = repo().join("hlo-samples/nbody_sim_update");
    let module = s.join("module.hlo").display().to_string();
    let (p, v) = (s.join("in_0.npy").display().to_string(), s.join("in_1.npy").display().to_string());
    let ambiguous = hlo_run(&[&module, &p, &v, "--iterations", "3"]);
    assert_eq!(ambiguous.status.code(), Some(2), "{}", stderr(&ambiguous));
    assert!(stderr(&ambiguous).contains("--feed OUT=IN"), "{}", stderr(&ambiguous));
    let bad = hlo_run(&[&module, &p, &v, "--iterations", "3", "--feed", "0=7"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));

    let mut results = Vec::new();
    for backend in ["vulkan", "interp"] {
        let out = temp_dir(&format!("iterations-{backend}"));
        let o = out.display().to_string();
        let run = hlo_run(&[
            &module,
            &p,
            &v,
            "--iterations",
            "3",
            "--feed",
            "0=0",
            "--feed",
            "1=1",
            "--backend",
            backend,
            "-o",
            &o,
        ]);
        assert!(run.status.success(), "{backend}: {}", stderr(&run));
        assert!(stderr(&run).contains("ms per iteration"), "{}", stderr(&run));
        if backend == "vulkan" {
            let err = stderr(&run);
            assert!(err.contains("host<->device copies: 0 bytes per iteration after the first"), "{err}");
        }
        results.push((0..2).map(|k| npy::read_npy(&out.join(format!("out_{k}.npy"))).unwrap()).collect::<Vec<_>>());
    }
    // Three chained single runs through files on the device.
    let (mut p, mut v) = (p, v);
    for step in 0..3 {
        let out = temp_dir(&format!("iterations-chain-{step}"));
        let run = hlo_run(&[&module, &p, &v, "-o", &out.display().to_string()]);
        assert!(run.status.success(), "{}", stderr(&run));
        p = out.join("out_0.npy").display().to_string();
        v = out.join("out_1.npy").display().to_string();
    }
    let chained = [npy::read_npy(Path::new(&p)).unwrap(), npy::read_npy(Path::new(&v)).unwrap()];
    for k in 0..2 {
        same_values(&results[0][k], &chained[k])
            .unwrap_or_else(|e| panic!("device loop vs chained runs, out_{k}: {e}"));
        close_values(&results[0][k], &results[1][k], 1e-5).unwrap_or_else(|e| panic!("vulkan vs interp, out_{k}: {e}"));
    }
}

/// An image output converted as `--frames` converts it (f32 in 0..1).
fn image_samples(array: &npy::HostArray) -> Vec<u8> {
    let dims: Vec<usize> = array.dims.iter().map(|&d| d as usize).collect();
    let element = match array.dtype {
        hlo_ir::DType::U8 => hlo_present::ElementType::U8,
        _ => hlo_present::ElementType::F32,
    };
    hlo_present::Image8::from_elements(&array.bytes, element, &dims, hlo_present::ValueRange::Unit).unwrap().samples
}

/// The seed's 16,000-particle "blob" frame draws into a 4x MSAA canvas f32[4096,4096,3] of 201 MB,
/// over lavapipe's maxStorageBufferRange (128 MiB): kernels bind it as windows of one buffer. Two
/// frames run with their state on the device; the first is JAX's image exactly, the second differs.
/// (The sample stays under `pending/` because the interpreter needs minutes per frame.)
#[test]
fn the_16000_particle_frame_runs_over_a_canvas_larger_than_one_binding() {
    let s = repo().join("hlo-samples/pending/seed_frame_blob");
    let module = s.join("module.hlo").display().to_string();
    let inputs: Vec<String> = (0..4).map(|k| s.join(format!("in_{k}.npy")).display().to_string()).collect();
    let dir = temp_dir("frames-blob");
    let record = dir.join("frames");
    let record_arg = record.display().to_string();
    let mut args: Vec<&str> = vec![&module];
    args.extend(inputs.iter().map(String::as_str));
    args.extend(["--frames", "2", "--feed", "1=0", "--feed", "2=1", "--record", &record_arg]);
    let run = hlo_run(&args);
    assert!(run.status.success(), "{}", stderr(&run));
    let frames: Vec<Vec<u8>> = (0..2)
        .map(|k| {
            let (w, h, channels, samples) = read_png(&record.join(format!("frame_{k:05}.png")));
            assert_eq!((w, h, channels), (1024, 1024, 3), "frame {k}");
            samples
        })
        .collect();
    let jax = image_samples(&npy::read_npy(&s.join("out_0.npy")).unwrap());
    assert!(frames[0] == jax, "frame 0 differs from JAX's image");
    assert!(frames[1] != frames[0], "the particles move");
}

/// The headless recording CI relies on: 30 frames of the seed's particle simulation as PNGs
/// and a GIF; the particles are visible and move, and the first frame is JAX's image.
#[test]
fn frames_record_the_seed_simulation_headless() {
    let s = repo().join("hlo-samples/seed_frame");
    let module = s.join("module.hlo").display().to_string();
    let inputs: Vec<String> = (0..4).map(|k| s.join(format!("in_{k}.npy")).display().to_string()).collect();
    let dir = temp_dir("frames-seed");
    let (record, gif) = (dir.join("frames"), dir.join("seed.gif"));
    let mut args: Vec<&str> = vec![&module];
    args.extend(inputs.iter().map(String::as_str));
    let (record_arg, gif_arg) = (record.display().to_string(), gif.display().to_string());
    args.extend(["--frames", "30", "--feed", "1=0", "--feed", "2=1", "--record", &record_arg, "--gif", &gif_arg]);
    let run = hlo_run(&args);
    assert!(run.status.success(), "{}", stderr(&run));
    let err = stderr(&run);
    assert!(err.contains("30 frames of out_0") && err.contains("frames/s") && err.contains("p99"), "{err}");

    let frames: Vec<Vec<u8>> = (0..30)
        .map(|k| {
            let (w, h, channels, samples) = read_png(&record.join(format!("frame_{k:05}.png")));
            assert_eq!((w, h, channels), (300, 300, 3), "frame {k}");
            let lit = samples.iter().filter(|&&v| v > 64).count();
            assert!(lit > 1000, "frame {k} is nearly blank: {lit} bright samples");
            samples
        })
        .collect();
    let distinct = frames.windows(2).filter(|pair| pair[0] != pair[1]).count();
    assert_eq!(distinct, 29, "every frame differs from the one before: the particles move");
    assert!(!record.join("frame_00030.png").exists());

    let jax = image_samples(&npy::read_npy(&s.join("out_0.npy")).unwrap());
    let worst = frames[0].iter().zip(&jax).map(|(&a, &b)| a.abs_diff(b)).max().unwrap();
    assert!(worst <= 1, "frame 0 differs from JAX's image by up to {worst} levels");

    let decoder = gif::DecodeOptions::new().read_info(std::fs::File::open(&gif).unwrap()).unwrap();
    let (w, h) = (decoder.width(), decoder.height());
    let mut decoder = decoder;
    let mut count = 0;
    while decoder.read_next_frame().unwrap().is_some() {
        count += 1;
    }
    assert_eq!((w, h, count), (300, 300, 30));
}

/// Frames on the device equal running the module once per frame through files.
#[test]
fn frames_equal_chained_runs_through_files() {
    let dir = temp_dir("frames-chain");
    let module = dir.join("frame.hlo");
    std::fs::write(
        &module,
        "HloModule frame\n\nENTRY e {\n  x = f32[4,5] parameter(0)\n  sq = f32[4,5] multiply(x, x)\n  \
         c = f32[] constant(0.9)\n  cb = f32[4,5] broadcast(c), dimensions={}\n  one = f32[] constant(1)\n  \
         ob = f32[4,5] broadcast(one), dimensions={}\n  s = f32[4,5] multiply(sq, cb)\n  next = f32[4,5] subtract(ob, s)\n  \
         image = f32[4,5,3] broadcast(x), dimensions={0,1}\n  ROOT t = (f32[4,5,3], f32[4,5]) tuple(image, next)\n}\n",
    )
    .unwrap();
    let values: Vec<u8> = (0..20).flat_map(|k| (k as f32 / 20.0).to_le_bytes()).collect();
    let start = dir.join("in_0.npy");
    npy::write_npy(&start, &npy::HostArray { dtype: hlo_ir::DType::F32, dims: vec![4, 5], bytes: values }).unwrap();
    let (m, record) = (module.display().to_string(), dir.join("frames"));
    let run = hlo_run(&[&m, &start.display().to_string(), "--frames", "3", "--record", &record.display().to_string()]);
    assert!(run.status.success(), "{}", stderr(&run));
    let mut input = start;
    for k in 0..3 {
        let out = dir.join(format!("run-{k}"));
        let run = hlo_run(&[&m, &input.display().to_string(), "-o", &out.display().to_string()]);
        assert!(run.status.success(), "{}", stderr(&run));
        let (w, h, channels, samples) = read_png(&record.join(format!("frame_{k:05}.png")));
        assert_eq!((w, h, channels), (5, 4, 3));
        assert_eq!(samples, image_samples(&npy::read_npy(&out.join("out_0.npy")).unwrap()), "frame {k}");
        input = out.join("out_1.npy");
    }
}

#[test]
fn frames_without_an_image_output_are_user_errors() {
    let s = repo().join("hlo-samples/nbody_sim_update");
    let (module, p, v) = (s.join("module.hlo"), s.join("in_0.npy"), s.join("in_1.npy"));
    let (module, p, v) = (module.display().to_string(), p.display().to_string(), v.display().to_string());
    let feeds = ["--feed", "0=0", "--feed", "1=1"];
    let mut args = vec![module.as_str(), &p, &v, "--frames", "2"];
    args.extend(feeds);
    let none = hlo_run(&args);
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));
    assert!(stderr(&none).contains("no result leaf is an image"), "{}", stderr(&none));
    let mut bad = args.clone();
    bad.extend(["--image", "7"]);
    let out = hlo_run(&bad);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--image 7: the module has 2 result leaves"), "{}", stderr(&out));
    let range = hlo_run(&[&module, &p, &v, "--frames", "2", "--image-range", "0..9"]);
    assert_eq!(range.status.code(), Some(2), "{}", stderr(&range));
    assert!(stderr(&range).contains("0..255"), "{}", stderr(&range));
}

/// Writes `values` (one per element) as the .npy input of a tiny frame module.
fn write_input(path: &Path, dtype: hlo_ir::DType, dims: &[i64], bytes: Vec<u8>) -> String {
    npy::write_npy(path, &npy::HostArray { dtype, dims: dims.to_vec(), bytes }).unwrap();
    path.display().to_string()
}

/// One decoded PNG frame: (width, height, channels, samples).
type PngFrame = (u32, u32, usize, Vec<u8>);

/// The declared frame count and every frame of an animated PNG.
fn read_apng(path: &Path) -> (u32, Vec<PngFrame>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().unwrap();
    let declared = reader.info().animation_control.expect("an animated PNG").num_frames;
    let mut frames = Vec::new();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    while let Ok(info) = reader.next_frame(&mut buf) {
        frames.push((info.width, info.height, info.color_type.samples(), buf[..info.buffer_size()].to_vec()));
    }
    (declared, frames)
}

/// A u8 grey image (HxW, no channel dimension) that brightens by 16 levels a frame: the PNG frames and the
/// animated PNG hold the exact bytes, and without a recording nothing crosses between host and device.
#[test]
fn u8_grey_frames_record_as_png_and_apng() {
    let dir = temp_dir("frames-u8");
    let module = dir.join("grey.hlo");
    std::fs::write(
        &module,
        "HloModule grey\n\nENTRY e {\n  x = u8[16,20] parameter(0)\n  c = u8[] constant(16)\n  \
         b = u8[16,20] broadcast(c), dimensions={}\n  ROOT y = u8[16,20] add(x, b)\n}\n",
    )
    .unwrap();
    let start: Vec<u8> = (0..16 * 20).map(|k| (k % 256) as u8).collect();
    let input = write_input(&dir.join("x.npy"), hlo_ir::DType::U8, &[16, 20], start.clone());
    let (m, record, apng) = (module.display().to_string(), dir.join("frames"), dir.join("grey.png"));
    let (r, a) = (record.display().to_string(), apng.display().to_string());
    let run = hlo_run(&[&m, &input, "--frames", "5", "--record", &r, "--apng", &a]);
    assert!(run.status.success(), "{}", stderr(&run));
    // The image comes back every frame: 320 elements of one 32-bit word each on the device.
    assert!(stderr(&run).contains("host<->device copies: 1280 bytes per frame after the first"), "{}", stderr(&run));
    let (declared, frames) = read_apng(&apng);
    assert_eq!((declared, frames.len()), (5, 5));
    for (k, (w, h, channels, samples)) in frames.iter().enumerate() {
        let want: Vec<u8> = start.iter().map(|v| v.wrapping_add(16 * (k as u8 + 1))).collect();
        assert_eq!((*w, *h, *channels), (20, 16, 1), "frame {k}");
        assert_eq!(samples, &want, "animated PNG frame {k}");
        assert_eq!(read_png(&record.join(format!("frame_{k:05}.png"))).3, want, "PNG frame {k}");
    }
    let quiet = hlo_run(&[&m, &input, "--frames", "5"]);
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    let err = stderr(&quiet);
    assert!(err.contains("5 frames of out_0") && err.contains("0 bytes per frame after the first"), "{err}");
    assert!(!err.contains("wrote"), "{err}");
}

/// An f32 RGBA image (four channels) records with its alpha, rounded as the PNG conversion rounds.
#[test]
fn rgba_frames_keep_four_channels() {
    let dir = temp_dir("frames-rgba");
    let module = dir.join("rgba.hlo");
    std::fs::write(
        &module,
        "HloModule rgba\n\nENTRY e {\n  x = f32[3,2,4] parameter(0)\n  c = f32[] constant(0.25)\n  \
         b = f32[3,2,4] broadcast(c), dimensions={}\n  ROOT y = f32[3,2,4] add(x, b)\n}\n",
    )
    .unwrap();
    let input = write_input(&dir.join("x.npy"), hlo_ir::DType::F32, &[3, 2, 4], vec![0; 3 * 2 * 4 * 4]);
    let (m, apng) = (module.display().to_string(), dir.join("rgba.png"));
    let a = apng.display().to_string();
    let run = hlo_run(&[&m, &input, "--frames", "3", "--apng", &a]);
    assert!(run.status.success(), "{}", stderr(&run));
    let (_, frames) = read_apng(&apng);
    let levels: Vec<(u32, u32, usize, u8)> = frames.iter().map(|(w, h, c, s)| (*w, *h, *c, s[0])).collect();
    assert_eq!(levels, vec![(2, 3, 4, 64), (2, 3, 4, 128), (2, 3, 4, 191)]);
    assert!(frames.iter().all(|(.., s)| s.iter().all(|&v| v == s[0])));
}

/// `--apng` and `--bind` are checked before anything runs.
#[test]
fn apng_and_bind_mistakes_are_user_errors() {
    let grey = repo().join("hlo-samples/seed_frame/module.hlo").display().to_string();
    let no_frames = hlo_run(&[&grey, "--random-inputs", "--apng", "x.png"]);
    assert_eq!(no_frames.status.code(), Some(2), "{}", stderr(&no_frames));
    assert!(stderr(&no_frames).contains("--frames"), "{}", stderr(&no_frames));
    let cases: [(&[&str], &str); 4] = [
        (&["--present", "--bind", "time"], "expected NAME=SOURCE"),
        (&["--present", "--bind", "Arg_0.1=mouse.z"], "unknown source `mouse.z`"),
        (&["--bind", "0=time"], "--present"),
        (&["--present", "--feed", "1=0", "--feed", "2=1", "--bind", "nope=time"], "no parameter is named `nope`"),
    ];
    for (extra, expected) in cases {
        let mut args = vec![grey.as_str(), "--random-inputs"];
        args.extend(extra);
        let out = Command::new(env!("CARGO_BIN_EXE_hlo-run"))
            .args(&args)
            .current_dir(repo())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    }
}

/// `hlo-run tune` times the module's blocked dot with each candidate block, writes the fastest
/// into the device's tile cache, and later compiles for the device use it (and say so), unless
/// `HLO_AUTOTUNE=off`; results stay the interpreter's.
#[test]
fn tune_keeps_the_fastest_block_per_device_and_compiles_use_it() {
    let cache = temp_dir("tune");
    let cache_env = cache.to_str().unwrap();
    let module = cache.join("dot.hlo");
    std::fs::write(
        &module,
        "HloModule m\nENTRY e {\n  a = f32[128,64] parameter(0)\n  b = f32[64,256] parameter(1)\n  \
         ROOT d = f32[128,256] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n}\n",
    )
    .unwrap();
    let module = module.to_str().unwrap();
    let env = [("HLO_VULKAN_CACHE_DIR", cache_env)];
    let out = hlo_run_bounded(
        &["tune", module, "--random-inputs", "-n", "1", "--warmup", "0"],
        &env,
        std::time::Duration::from_secs(300),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("dot b1 r128 c256 k64"), "{}", stdout(&out));
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("tiles-") && n.ends_with(".json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");

    let plan = hlo_run_bounded(&["compile", module], &env, std::time::Duration::from_secs(60));
    assert!(stdout(&plan).contains("(tuned)"), "{}", stdout(&plan));
    let off = [("HLO_VULKAN_CACHE_DIR", cache_env), ("HLO_AUTOTUNE", "off")];
    let plan = hlo_run_bounded(&["compile", module], &off, std::time::Duration::from_secs(60));
    assert!(!stdout(&plan).contains("(tuned)"), "{}", stdout(&plan));

    let tuned_dir = cache.join("tuned");
    let interp_dir = cache.join("interp");
    for (dir, backend) in [(&tuned_dir, "vulkan"), (&interp_dir, "interp")] {
        let out = hlo_run_bounded(
            &[module, "--random-inputs", "--seed", "5", "--backend", backend, "-o", dir.to_str().unwrap()],
            &env,
            std::time::Duration::from_secs(120),
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let read = |dir: &Path| npy::read_npy(&dir.join("out_0.npy")).unwrap();
    let (got, want) = (read(&tuned_dir), read(&interp_dir));
    let as_f32 = |a: &npy::HostArray| -> Vec<f32> {
        a.bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
    };
    for (g, w) in as_f32(&got).iter().zip(as_f32(&want)) {
        assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
    }
}

/// A StableHLO portable artifact (what `jax.export` writes and JAX sends a PJRT plugin) and
/// the same program as textual MLIR run like HLO text, on both backends, with JAX's results.
#[test]
fn stablehlo_artifacts_and_text_run_like_hlo() {
    let fixtures = repo().join("crates/hlo-stablehlo/tests/fixtures");
    for file in [
        "mlp_step.mlirbc",
        "mlp_step.mlir",
        "while_loop.mlirbc",
        "gather_scatter.mlir",
        "betainc_broadcast.mlirbc",
        // The text forms keep chlo.lgamma and chlo.digamma, which the reader decomposes.
        "betainc_broadcast.mlir",
        "gamma.mlir",
    ] {
        let stem = file.split('.').next().unwrap();
        for backend in ["vulkan", "interp"] {
            let mut args = vec![fixtures.join(file).display().to_string()];
            let mut k = 0;
            while fixtures.join(format!("{stem}.in{k}.npy")).exists() {
                args.push(fixtures.join(format!("{stem}.in{k}.npy")).display().to_string());
                k += 1;
            }
            let out_dir = temp_dir(&format!("stablehlo-{file}-{backend}"));
            args.extend(["-o".into(), out_dir.display().to_string(), "--backend".into(), backend.into()]);
            let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            let out = hlo_run(&refs);
            assert!(out.status.success(), "{file} on {backend}: {}", stderr(&out));
            let mut k = 0;
            while fixtures.join(format!("{stem}.out{k}.npy")).exists() {
                let ours = npy::read_npy(&out_dir.join(format!("out_{k}.npy"))).unwrap();
                let jax = npy::read_npy(&fixtures.join(format!("{stem}.out{k}.npy"))).unwrap();
                assert_eq!((ours.dims.clone(), ours.dtype), (jax.dims.clone(), jax.dtype), "{file} out{k}");
                if ours.dtype == hlo_ir::DType::F32 {
                    let f = |a: &npy::HostArray| -> Vec<f32> {
                        a.bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
                    };
                    for (x, y) in f(&ours).iter().zip(f(&jax)) {
                        let close = *x == y || (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-4 * y.abs().max(1.0);
                        assert!(close, "{file} on {backend} out{k}: {x} vs {y}");
                    }
                } else if ours.dtype == hlo_ir::DType::F16 {
                    let f = |a: &npy::HostArray| -> Vec<f32> {
                        a.bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
                    };
                    for (x, y) in f(&ours).iter().zip(f(&jax)) {
                        let close = *x == y || (x.is_nan() && y.is_nan()) || (x - y).abs() <= 2e-3 * y.abs().max(1.0);
                        assert!(close, "{file} on {backend} out{k}: {x} vs {y}");
                    }
                } else {
                    assert_eq!(ours.bytes, jax.bytes, "{file} on {backend} out{k}");
                }
                k += 1;
            }
            assert!(k > 0, "{file} has outputs");
        }
    }
}

/// A corrupt artifact is a user error naming the file and the byte, not a crash.
#[test]
fn a_truncated_stablehlo_artifact_is_a_user_error() {
    let bytes = std::fs::read(repo().join("crates/hlo-stablehlo/tests/fixtures/dot.mlirbc")).unwrap();
    let dir = temp_dir("stablehlo-truncated");
    let file = dir.join("cut.mlirbc");
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let out = hlo_run(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cut.mlirbc: StableHLO artifact: byte"), "{}", stderr(&out));
}

/// A dump with elided constants (`constant({...})`) checks and prints, but running or
/// compiling it is a user error at the constant: its values are unknown.
#[test]
fn elided_constants_check_but_do_not_run() {
    let dir = temp_dir("elided");
    let file = dir.join("elided.hlo");
    std::fs::write(&file, "HloModule m\n\nENTRY main {\n  ROOT c = f32[67,89] constant({...})\n}\n").unwrap();
    let out = hlo_run(&["check", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for args in [vec![file.to_str().unwrap()], vec!["compile", file.to_str().unwrap()]] {
        let out = hlo_run(&args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("elided.hlo:4:8: constant c has its values elided"), "{}", stderr(&out));
    }
}

#[test]
fn lapack_targets_without_an_expansion_are_refused_by_name_and_line() {
    // jax.lax.linalg.schur (gees) of a real and of a complex matrix, on both backends.
    let dir = temp_dir("lapack-refused");
    for (target, result) in [
        ("lapack_sgees_ffi", "(f32[3,3]{0,1}, f32[3,3]{0,1}, f32[3], f32[3], s32[], s32[])"),
        ("lapack_cgees_ffi", "(c64[3,3]{0,1}, c64[3,3]{0,1}, c64[3], s32[], s32[])"),
    ] {
        let ty = if target.contains("cgees") { "c64" } else { "f32" };
        let module = dir.join("schur.hlo");
        std::fs::write(
            &module,
            format!("HloModule m\n\nENTRY main {{\n  a = {ty}[3,3] parameter(0)\n  ROOT e = {result} custom-call(a), custom_call_target=\"{target}\", api_version=API_VERSION_TYPED_FFI\n}}\n"),
        )
        .unwrap();
        let m = module.to_str().unwrap();
        for backend in ["interp", "vulkan"] {
            assert_user_error(&[m, "--random-inputs", "--backend", backend], &[], &[&format!("{m}:5:"), target]);
        }
    }
}

/// `opt` bounds fused kernels by the target's storage-buffer bindings, as `compile` does:
/// twenty parameters summed fit one kernel of lavapipe's 32, not one of 8
/// (`HLO_MAX_STORAGE_BUFFERS` lowers the device's limit); a malformed limit is a user error.
#[test]
fn opt_explains_fusion_for_the_targets_binding_limit() {
    let dir = temp_dir("opt-binding-limit");
    let mut text = String::from("HloModule m\nENTRY e {\n");
    for k in 0..20 {
        text += &format!("  p{k} = f32[64] parameter({k})\n");
    }
    text += "  a0 = f32[64] add(p0, p1)\n";
    for k in 2..20 {
        text += &format!("  a{} = f32[64] add(a{}, p{k})\n", k - 1, k - 2);
    }
    text += "  ROOT r = f32[64] negate(a18)\n}\n";
    let file = dir.join("sum20.hlo");
    std::fs::write(&file, text).unwrap();
    let file = file.display().to_string();
    let limit = "the kernel would bind more arrays than the device allows one kernel";
    let run = |env: &[(&str, &str)]| {
        hlo_run_bounded(&["opt", "--explain-fusion", &file], env, std::time::Duration::from_secs(60))
    };
    let wide = run(&[]);
    assert!(wide.status.success(), "{}", stderr(&wide));
    assert!(!stderr(&wide).contains(limit), "{}", stderr(&wide));
    let narrow = run(&[("HLO_MAX_STORAGE_BUFFERS", "8")]);
    assert!(narrow.status.success(), "{}", stderr(&narrow));
    assert!(stderr(&narrow).contains(limit), "{}", stderr(&narrow));
    let fusions = String::from_utf8_lossy(&narrow.stdout).matches(" fusion(").count();
    assert!(fusions >= 3, "{}", String::from_utf8_lossy(&narrow.stdout));
    assert_user_error(&["opt", &file], &[("HLO_MAX_STORAGE_BUFFERS", "4")], &["HLO_MAX_STORAGE_BUFFERS=4"]);
}

/// `bench --json` on lavapipe reports its timings and, for a program of several short
/// dispatches, which driver-thread setting it measured faster; a `LP_NUM_THREADS` the user set
/// is kept and nothing is measured.
#[test]
fn bench_measures_the_driver_threads_of_a_program_of_short_dispatches() {
    let module = "hlo-samples/nbody_sim_update/module.hlo";
    let args = ["bench", module, "--random-inputs", "-n", "3", "--warmup", "1", "--json"];
    let parse = |out: &Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", stderr(out));
        let line = stdout(out).lines().last().unwrap_or_default().to_string();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    let record = parse(&hlo_run(&args));
    assert!(record["median_ms"].as_f64().is_some_and(|m| m > 0.0), "{record}");
    let device = record["device"].as_str().unwrap_or_default();
    if device.contains("llvmpipe") {
        let threads = record["driver_threads"].as_str();
        assert!(matches!(threads, Some("serial" | "parallel")), "{record}");
    }
    let user_set = Command::new(env!("CARGO_BIN_EXE_hlo-run"))
        .args(args)
        .current_dir(repo())
        .env("HLO_VULKAN_VALIDATION", "1")
        .env("LP_NUM_THREADS", "1")
        .output()
        .expect("hlo-run starts");
    let record = parse(&user_set);
    assert!(record["driver_threads"].is_null(), "{record}");
}
