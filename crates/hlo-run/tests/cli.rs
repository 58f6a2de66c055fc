//! End-to-end tests of the `hlo-run` binary: exit codes, diagnostics that
//! point at the right line and column, input checking, and outputs that match
//! JAX's for real samples.

use hlo_run::npy;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn hlo_run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hlo-run"))
        .args(args)
        .current_dir(repo())
        .env("HLO_VULKAN_VALIDATION", "1")
        .output()
        .expect("hlo-run starts")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hlo-run-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

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
    assert!(stderr(&out).contains("c"), "{}", stderr(&out));
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

#[test]
fn an_op_vulkan_cannot_run_is_named_with_its_line() {
    let dir = temp_dir("unsupported");
    let file = dir.join("chol.hlo");
    std::fs::write(
        &file,
        "HloModule chol\n\nENTRY main {\n  a = f32[2,2] parameter(0)\n  ROOT c = f32[2,2] cholesky(a), lower=true\n}\n",
    )
    .unwrap();
    let out = hlo_run(&[file.to_str().unwrap(), "--random-inputs"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with(&format!("{}:5:", file.display())), "{err}");
    assert!(err.contains("cholesky") && err.contains("--backend interp"), "{err}");
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
    let archive = dir.join("inputs.npz");
    let mut zip = npyz::zip::ZipWriter::new(std::fs::File::create(&archive).unwrap());
    for k in 0..2 {
        zip.start_file(format!("arr_{k}.npy"), npyz::zip::write::FileOptions::default()).unwrap();
        zip.write_all(&std::fs::read(sample.join(format!("in_{k}.npy"))).unwrap()).unwrap();
    }
    zip.finish().unwrap();
    let out_dir = dir.join("out");
    let module = sample.join("module.hlo");
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
