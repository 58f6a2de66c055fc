//! Helpers shared by the hlo-spirv integration tests.
#![allow(dead_code)]

use hlo_ir::Module;
use hlo_spirv::{compile, Compiled, Target};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn parse(text: &str) -> Module {
    match hlo_parse::parse_module(text) {
        Ok(m) => m,
        Err(e) => panic!("parse error: {}", hlo_parse::render_error(text, "<test>", &e)),
    }
}

/// Runs `spirv-val --target-env vulkan1.2` on the words; `Err` with its output on failure.
pub fn spirv_val(words: &[u32], name: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("hlo-spirv-val-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    // Tests run in parallel threads of one process and kernels share names: one file per call.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("{}-{seq}.spv", name.replace(['/', ' '], "_")));
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
    let out = Command::new("spirv-val")
        .arg("--target-env")
        .arg("vulkan1.2")
        .arg(&path)
        .output()
        .map_err(|e| format!("cannot run spirv-val (apt install spirv-tools): {e}"))?;
    let _ = std::fs::remove_file(&path);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

/// Compiles for lavapipe and checks every kernel with spirv-val.
pub fn compile_checked(m: &Module) -> Compiled {
    let c = match compile(m, &Target::lavapipe()) {
        Ok(c) => c,
        Err(e) => panic!("compile failed: {e}"),
    };
    check_spirv(&c);
    c
}

pub fn check_spirv(c: &Compiled) {
    for k in &c.program.kernels {
        if let Err(e) = spirv_val(&k.spirv, &k.name) {
            panic!("spirv-val rejects kernel `{}`:\n{e}\n{}", k.name, c.wgsl());
        }
    }
}

pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hlo-samples")
}

/// Parses a module and runs the hlo-passes pipeline on it.
pub fn parse_and_fuse(text: &str) -> Module {
    let mut m = parse(text);
    let mut opts = hlo_passes::PipelineOptions::default();
    if let Err(e) = hlo_passes::run_pipeline(&mut m, &mut opts) {
        panic!("pipeline failed: {e}");
    }
    m
}

// ---- running on Vulkan -------------------------------------------------------

use hlo_vulkan::{Context, ContextOptions, DeviceCaps, Executable};
use std::sync::Arc;

/// A lavapipe context with the validation layer on (tests never run without it).
pub fn vulkan() -> Arc<Context> {
    let ctx = Context::new(&ContextOptions { validation: true, ..Default::default() }).unwrap_or_else(|e| {
        panic!("cannot open a Vulkan device (apt install mesa-vulkan-drivers vulkan-validationlayers): {e}")
    });
    assert!(ctx.validation_enabled());
    ctx
}

/// What the code generator may use on a device.
pub fn target_from_caps(caps: &DeviceCaps) -> Target {
    Target {
        shader_int64: caps.shader_int64,
        shader_float64: caps.shader_float64,
        shader_int16: caps.shader_int16,
        float16: caps.shader_float16,
        storage_8bit: caps.storage_buffer_8bit,
        storage_16bit: caps.storage_buffer_16bit,
        subgroup_size: caps.subgroup_size,
        subgroup_broadcast: caps.subgroup_in_compute && caps.subgroup_ops.ballot,
        max_workgroup_size: caps.max_compute_work_group_size,
        max_workgroup_invocations: caps.max_compute_work_group_invocations,
        max_shared_memory_bytes: caps.max_compute_shared_memory_size,
        max_storage_buffer_range: caps.max_storage_buffer_range,
        atomic_float_add: caps.buffer_float32_atomic_add,
        int64_atomics: caps.buffer_int64_atomics,
        fma: if caps.shader_float64 { hlo_spirv::FmaMode::ViaF64 } else { hlo_spirv::FmaMode::Native },
        flush_results: true,
        max_loop_iterations: caps.max_shader_loop_iterations,
        max_storage_buffers: caps.max_per_stage_storage_buffers,
        predicated_branches: caps.predicated_branches,
        texel_gathers: caps.texel_gathers,
        tiles: Default::default(),
    }
}

/// Runs a compiled module on host inputs and returns host outputs; fails on validation messages.
pub fn run_vulkan(ctx: &Arc<Context>, c: &Compiled, inputs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut exe = Executable::new(ctx, &c.program, None).unwrap_or_else(|e| panic!("building the executable: {e}"));
    let dev: Vec<Vec<u8>> = c.inputs.iter().zip(inputs).map(|(io, h)| io.to_device(h)).collect();
    let refs: Vec<&[u8]> = dev.iter().map(|v| v.as_slice()).collect();
    let outs = exe.run(&refs).unwrap_or_else(|e| panic!("run: {e}"));
    let msgs = ctx.take_validation_messages();
    assert!(msgs.is_empty(), "validation messages:\n{}", msgs.iter().map(|m| format!("  {m}\n")).collect::<String>());
    c.outputs.iter().zip(outs).map(|(io, d)| io.from_device(&d)).collect()
}

/// Evaluates the module with hlo-interp on host inputs; returns the flattened result leaves as bytes.
pub fn run_interp(m: &Module, inputs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let entry = m.entry_comp();
    let mut args = Vec::new();
    for (k, sh) in entry.param_shapes().into_iter().enumerate() {
        let leaves = sh.leaves();
        assert_eq!(leaves.len(), 1, "tuple parameters are not used in these tests");
        args.push(hlo_interp::literal_from_bytes(leaves[0], &inputs[k]).expect("input bytes"));
    }
    let res = hlo_interp::evaluate(m, &args).unwrap_or_else(|e| panic!("interp: {e}"));
    let mut out = Vec::new();
    flatten(&res, &mut out);
    out
}

fn flatten(l: &hlo_ir::Literal, out: &mut Vec<Vec<u8>>) {
    match l.tuple_elements() {
        Some(t) => t.iter().for_each(|e| flatten(e, out)),
        None => out.push(hlo_interp::literal_to_bytes(l).expect("bytes")),
    }
}

/// Elements of host bytes as f64 (floats) or i128 (integers and pred).
pub enum Elems {
    Float(Vec<f64>),
    Int(Vec<i128>),
}

pub fn decode(dtype: hlo_ir::DType, bytes: &[u8]) -> Elems {
    use hlo_ir::DType as D;
    // A complex array compares as its interleaved (re, im) parts.
    let dtype = match dtype {
        D::C64 => D::F32,
        D::C128 => D::F64,
        other => other,
    };
    let w = dtype.byte_size();
    let ch = bytes.chunks_exact(w);
    match dtype {
        D::F32 => Elems::Float(ch.map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect()),
        D::F64 => Elems::Float(ch.map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()),
        D::F16 => Elems::Float(ch.map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64()).collect()),
        D::BF16 => Elems::Float(ch.map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64()).collect()),
        D::Pred | D::U8 => Elems::Int(ch.map(|c| c[0] as i128).collect()),
        D::S8 => Elems::Int(ch.map(|c| c[0] as i8 as i128).collect()),
        D::S16 => Elems::Int(ch.map(|c| i16::from_le_bytes([c[0], c[1]]) as i128).collect()),
        D::U16 => Elems::Int(ch.map(|c| u16::from_le_bytes([c[0], c[1]]) as i128).collect()),
        D::S32 => Elems::Int(ch.map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i128).collect()),
        D::U32 => Elems::Int(ch.map(|c| u32::from_le_bytes(c.try_into().unwrap()) as i128).collect()),
        D::S64 => Elems::Int(ch.map(|c| i64::from_le_bytes(c.try_into().unwrap()) as i128).collect()),
        D::U64 => Elems::Int(ch.map(|c| u64::from_le_bytes(c.try_into().unwrap()) as i128).collect()),
        other => panic!("decode {other}"),
    }
}

/// Compares two host arrays: integers exactly, floats by relative L2 error (non-finite values
/// must match positionally and are left out of the norm; `tol == 0` means exact).
pub fn compare(dtype: hlo_ir::DType, got: &[u8], want: &[u8], tol: f64) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("size {} != {}", got.len(), want.len()));
    }
    match (decode(dtype, got), decode(dtype, want)) {
        (Elems::Int(g), Elems::Int(w)) => {
            if let Some(i) = (0..g.len()).find(|&i| g[i] != w[i]) {
                let bad = (0..g.len()).filter(|&i| g[i] != w[i]).count();
                return Err(format!("{bad} of {} elements differ; first at {i}: got {} want {}", g.len(), g[i], w[i]));
            }
            Ok(())
        }
        (Elems::Float(g), Elems::Float(w)) => {
            let (mut num, mut den) = (0.0, 0.0);
            for i in 0..g.len() {
                let (a, b) = (g[i], w[i]);
                if !b.is_finite() || !a.is_finite() {
                    let same = (a.is_nan() && b.is_nan()) || a == b;
                    if !same {
                        return Err(format!("element {i}: got {a} want {b}"));
                    }
                    continue;
                }
                if tol == 0.0 && (a != b || a.is_sign_negative() != b.is_sign_negative()) {
                    return Err(format!("element {i}: got {a:e} want {b:e} (exact)"));
                }
                num += (a - b) * (a - b);
                den += b * b;
            }
            let rel = if den > 0.0 { (num / den).sqrt() } else { num.sqrt() };
            if rel > tol {
                let worst = (0..g.len())
                    .filter(|&i| g[i].is_finite())
                    .max_by(|&i, &j| (g[i] - w[i]).abs().total_cmp(&(g[j] - w[j]).abs()))
                    .unwrap_or(0);
                return Err(format!(
                    "relative L2 error {rel:e} > {tol:e}; worst element {worst}: got {} want {}",
                    g[worst], w[worst]
                ));
            }
            Ok(())
        }
        _ => unreachable!(),
    }
}

/// Reads the raw little-endian data of a `.npy` file (any dtype; C order).
pub fn read_npy(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not a .npy file", path.display());
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
    };
    let header = String::from_utf8_lossy(&bytes[start..start + header_len]);
    assert!(header.contains("'fortran_order': False"), "{}: Fortran order", path.display());
    bytes[start + header_len..].to_vec()
}

/// `tolerance` of each output in a sample's meta.json, in order.
pub fn output_tolerances(meta: &str) -> Vec<f64> {
    let outputs = &meta[meta.find("\"outputs\"").expect("outputs in meta.json")..];
    outputs
        .match_indices("\"tolerance\":")
        .map(|(i, pat)| {
            let rest = outputs[i + pat.len()..].trim_start();
            let end = rest.find([',', '}', '\n']).unwrap_or(rest.len());
            rest[..end].trim().parse::<f64>().expect("a number")
        })
        .collect()
}

/// What [`run_samples`] found.
pub struct SampleReport {
    /// Samples the backend rejected, with the op that stopped them.
    pub unsupported: Vec<(String, String)>,
    pub failures: Vec<String>,
    pub passed: Vec<String>,
}

/// Runs every `hlo-samples/` case through `prepare` (parse, maybe the pass pipeline), this
/// compiler and lavapipe, and compares each output with JAX's `out_K.npy`: integers exactly,
/// floats by relative L2 error within the sample's tolerance. `files` lists the module files
/// to try in order; samples with none of them are skipped. `HLO_SAMPLES=a,b` runs only the named
/// samples (a quick loop while working on them; the suites run them all).
pub fn run_samples(files: &[&str], prepare: impl Fn(&str) -> Module) -> SampleReport {
    let mut names: Vec<String> = std::fs::read_dir(samples_dir())
        .expect("hlo-samples")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("meta.json").exists())
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|name| std::env::var("HLO_SAMPLES").map_or(true, |only| only.split(',').any(|o| o == name)))
        .collect();
    names.sort();
    run_named_samples(&names, files, prepare)
}

/// [`run_samples`] over the named samples only.
pub fn run_named_samples(names: &[String], files: &[&str], prepare: impl Fn(&str) -> Module) -> SampleReport {
    let ctx = vulkan();
    let target = target_from_caps(ctx.caps());
    let dir = samples_dir();
    let mut report = SampleReport { unsupported: Vec::new(), failures: Vec::new(), passed: Vec::new() };
    for name in names {
        let case = dir.join(name);
        let Some(file) = files.iter().find(|f| case.join(f).exists()) else { continue };
        let text = std::fs::read_to_string(case.join(file)).unwrap();
        let compiled = match hlo_spirv::compile(&prepare(&text), &target) {
            Ok(c) => c,
            Err(hlo_spirv::CodegenError::Unsupported { op, instr, reason }) => {
                println!("{name}: unsupported {op} (`{instr}`: {reason})");
                report.unsupported.push((name.clone(), op));
                continue;
            }
            Err(e) => {
                report.failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        check_spirv(&compiled);
        let inputs: Vec<Vec<u8>> =
            (0..compiled.inputs.len()).map(|k| read_npy(&case.join(format!("in_{k}.npy")))).collect();
        let meta = std::fs::read_to_string(case.join("meta.json")).unwrap();
        let tols = output_tolerances(&meta);
        let start = std::time::Instant::now();
        let outs = run_vulkan(&ctx, &compiled, &inputs);
        let mut ok = true;
        for (k, io) in compiled.outputs.iter().enumerate() {
            let want = read_npy(&case.join(format!("out_{k}.npy")));
            if let Err(e) = compare(io.dtype, &outs[k], &want, tols[k]) {
                report.failures.push(format!("{name}: output {k} ({}{:?}): {e}", io.dtype, io.dims));
                ok = false;
            }
        }
        if ok {
            let ms = start.elapsed().as_secs_f64() * 1e3;
            println!("{name}: ok ({} kernels, {ms:.1} ms)", compiled.program.kernels.len());
            report.passed.push(name.clone());
        }
    }
    println!("passed {} of {}: {}", report.passed.len(), names.len(), report.passed.join(" "));
    report
}

/// Asserts no failures and exactly the `expected` unsupported samples.
pub fn assert_report(report: &SampleReport, expected: &[(&str, &str)]) {
    assert!(report.failures.is_empty(), "failures:\n{}", report.failures.join("\n"));
    let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(report.unsupported, expected, "the set of unsupported samples changed");
}
