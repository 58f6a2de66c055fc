//! Times one hlo-samples case on the default Vulkan device (lavapipe here).
//!
//! `cargo run --release -p hlo-spirv --example time_sample -- nbody_forces_2048 [runs]`
//!
//! Parses `module.hlo`, runs the hlo-passes pipeline, compiles, builds the executable,
//! checks the result against JAX's `out_K.npy`, warms up, then times `runs` submissions
//! (device time: submit + wait) and `runs` full calls (upload + submit + wait + read back),
//! and prints the medians. `HLO_FMA=native|unfused|viaf64` overrides how XLA's contracted
//! multiply-adds are computed (default: `viaf64` when the device has f64, bit-exact with JAX).
use hlo_vulkan::{Context, ContextOptions, Executable};
use std::path::Path;
use std::time::Instant;

fn read_npy(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
    };
    bytes[start + len..].to_vec()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map(String::as_str).unwrap_or("nbody_forces_2048");
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hlo-samples").join(name);
    let file = if dir.join("module.hlo").exists() { "module.hlo" } else { "module.opt.hlo" };
    let text = std::fs::read_to_string(dir.join(file)).expect("read module");
    let t0 = Instant::now();
    let mut m = hlo_parse::parse_module(&text).expect("parse");
    hlo_passes::run_pipeline(&mut m, &mut hlo_passes::PipelineOptions::default()).expect("pipeline");
    let t_passes = t0.elapsed();

    let ctx = Context::new(&ContextOptions::from_env()).expect("Vulkan device");
    let caps = ctx.caps();
    let target = hlo_spirv::Target {
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
        fma: match std::env::var("HLO_FMA").as_deref() {
            Ok("native") => hlo_spirv::FmaMode::Native,
            Ok("unfused") => hlo_spirv::FmaMode::Unfused,
            _ if caps.shader_float64 => hlo_spirv::FmaMode::ViaF64,
            _ => hlo_spirv::FmaMode::Native,
        },
        flush_results: true,
        max_loop_iterations: caps.max_shader_loop_iterations,
        max_storage_buffers: caps.max_per_stage_storage_buffers,
        predicated_branches: caps.predicated_branches,
        texel_gathers: caps.texel_gathers,
        tiles: Default::default(),
    };
    let t1 = Instant::now();
    let compiled = hlo_spirv::compile(&m, &target).expect("compile");
    let t_compile = t1.elapsed();
    let t2 = Instant::now();
    let mut exe = Executable::new(&ctx, &compiled.program, None).expect("executable");
    let t_build = t2.elapsed();
    println!(
        "{name}: {} kernels, {} steps; passes {:.1} ms, codegen {:.1} ms, pipelines {:.1} ms",
        compiled.program.kernels.len(),
        compiled.program.steps.len(),
        t_passes.as_secs_f64() * 1e3,
        t_compile.as_secs_f64() * 1e3,
        t_build.as_secs_f64() * 1e3
    );
    for info in &compiled.kernels_info {
        println!("  kernel {} ({})", info.name, info.kind);
    }

    let inputs: Vec<Vec<u8>> = compiled
        .inputs
        .iter()
        .enumerate()
        .map(|(k, io)| io.to_device(&read_npy(&dir.join(format!("in_{k}.npy")))))
        .collect();
    let refs: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
    let outs = exe.run(&refs).expect("run");
    for (k, io) in compiled.outputs.iter().enumerate() {
        let got = io.from_device(&outs[k]);
        let want = read_npy(&dir.join(format!("out_{k}.npy")));
        println!(
            "  output {k}: {} bytes, {}",
            got.len(),
            if got == want { "bit-identical to JAX" } else { "differs from JAX in some bits" }
        );
    }
    for _ in 0..3 {
        exe.run(&refs).expect("warm-up");
    }
    let mut device = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let ticket = exe.submit().expect("submit");
        exe.wait(ticket).expect("wait");
        device.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut full = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        exe.run(&refs).expect("run");
        full.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "  median of {runs}: submit+wait {:.2} ms, full run (upload, run, read back) {:.2} ms",
        median(device),
        median(full)
    );
}
