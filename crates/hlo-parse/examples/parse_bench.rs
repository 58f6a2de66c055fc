//! Parser throughput: parses an HLO file (or a generated ~20 MB module of realistic
//! post-optimisation instructions with unique names) several times and prints the median
//! MB/s, plus the printer's for comparison. Besides wall-clock time it reports the thread's
//! own CPU time (Linux `/proc/thread-self/schedstat`), which stays meaningful when other
//! processes share the cores.
//!
//! `cargo run --release -p hlo-parse --example parse_bench -- [FILE.hlo] [--iters N] [--write OUT.hlo]`
//! (`--write` saves the module it parses, e.g. the generated one for timing `hlo-run check`).

use std::fmt::Write;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let iters = args
        .iter()
        .position(|a| a == "--iters")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(7usize);
    let write = args.iter().position(|a| a == "--write").and_then(|i| args.get(i + 1)).cloned();
    let file = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with("--") && (*i == 0 || !matches!(args[i - 1].as_str(), "--iters" | "--write")));
    let (label, text) = match file {
        Some((_, path)) => (path.clone(), std::fs::read_to_string(path).expect("readable HLO file")),
        None => ("synthetic module".to_string(), synthetic(20 << 20)),
    };
    if let Some(out) = &write {
        std::fs::write(out, &text).expect("writable --write path");
    }
    let mb = text.len() as f64 / 1e6;
    let module =
        hlo_parse::parse_module(&text).unwrap_or_else(|e| panic!("{}", hlo_parse::render_error(&text, &label, &e)));
    println!("{label}: {mb:.1} MB, {} instructions in {} computations", module.instr_count(), module.comps.len());

    let mut parse_s = Vec::new();
    let mut parse_cpu = Vec::new();
    for _ in 0..iters {
        let (start, cpu) = (Instant::now(), cpu_seconds());
        let m = hlo_parse::parse_module(&text).expect("parses");
        parse_s.push(start.elapsed().as_secs_f64());
        parse_cpu.push(cpu_seconds() - cpu);
        drop(m);
    }
    let mut print_s = Vec::new();
    let mut print_cpu = Vec::new();
    let mut printed_len = 0;
    for _ in 0..iters {
        let (start, cpu) = (Instant::now(), cpu_seconds());
        let printed = hlo_ir::print::print_module(&module);
        print_s.push(start.elapsed().as_secs_f64());
        print_cpu.push(cpu_seconds() - cpu);
        printed_len = printed.len();
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let out_mb = printed_len as f64 / 1e6;
    for (what, size, wall, cpu) in
        [("parse", mb, &mut parse_s, &mut parse_cpu), ("print", out_mb, &mut print_s, &mut print_cpu)]
    {
        let (w, c) = (median(wall), median(cpu));
        let cpu_text = if c > 0.0 { format!(", CPU {:.1} ms = {:.0} MB/s", c * 1e3, size / c) } else { String::new() };
        println!("{what}: median over {iters} runs: wall {:.1} ms = {:.0} MB/s{cpu_text}", w * 1e3, size / w);
    }
}

/// CPU time consumed by this thread so far, in seconds (0 where `/proc` does not say).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|ns| ns.parse::<f64>().ok()))
        .map_or(0.0, |ns| ns / 1e9)
}

/// A module of about `target` bytes: one large entry computation of elementwise, shape,
/// reduction, dot and fusion instructions with metadata, as post-optimisation dumps look.
fn synthetic(target: usize) -> String {
    let mut s = String::with_capacity(target + 4096);
    s.push_str("HloModule jit_bench, is_scheduled=true, entry_computation_layout={(f32[128,256]{1,0}, f32[256,64]{1,0})->f32[128,256]{1,0}}\n\n");
    s.push_str("%add (a: f32[], b: f32[]) -> f32[] {\n  %a = f32[] parameter(0)\n  %b = f32[] parameter(1)\n  ROOT %sum = f32[] add(%a, %b)\n}\n\n");
    s.push_str("%fused_computation (param_0: f32[128,256], param_1: f32[]) -> f32[128,256] {\n  %param_0 = f32[128,256]{1,0} parameter(0)\n  %param_1 = f32[] parameter(1)\n  %broadcast = f32[128,256]{1,0} broadcast(%param_1), dimensions={}\n  ROOT %multiply = f32[128,256]{1,0} multiply(%param_0, %broadcast)\n}\n\n");
    s.push_str("ENTRY %main (x: f32[128,256], w: f32[256,64]) -> f32[128,256] {\n  %x = f32[128,256]{1,0} parameter(0)\n  %w = f32[256,64]{1,0} parameter(1)\n  %w.t = f32[64,256]{0,1} transpose(%w), dimensions={1,0}\n");
    let mut prev = "x".to_string();
    let mut i = 0;
    while s.len() < target {
        let meta = |op: &str| {
            format!("metadata={{op_name=\"jit(bench)/layer_{i}/{op}\" source_file=\"/home/user/model.py\" source_line={} stack_frame_id={}}}", 100 + i % 900, 1 + i % 17)
        };
        let _ = writeln!(s, "  %constant.{i} = f32[] constant({}), {}", 0.5 + (i % 97) as f64 / 7.0, meta("mul"));
        let _ = writeln!(s, "  %fusion.{i} = f32[128,256]{{1,0}} fusion(%{prev}, %constant.{i}), kind=kLoop, calls=%fused_computation, {}", meta("mul"));
        let _ = writeln!(s, "  %add.{i} = f32[128,256]{{1,0}} add(%fusion.{i}, %x), {}", meta("add"));
        let _ = writeln!(
            s,
            "  %reduce.{i} = f32[128]{{0}} reduce(%add.{i}, %constant.{i}), dimensions={{1}}, to_apply=%add, {}",
            meta("reduce_sum")
        );
        let _ = writeln!(
            s,
            "  %broadcast.{i} = f32[128,256]{{1,0}} broadcast(%reduce.{i}), dimensions={{0}}, {}",
            meta("broadcast_in_dim")
        );
        let _ = writeln!(
            s,
            "  %slice.{i} = f32[128,64]{{1,0}} slice(%broadcast.{i}), slice={{[0:128], [0:256:4]}}, {}",
            meta("slice")
        );
        let _ = writeln!(s, "  %dot.{i} = f32[128,256]{{1,0}} dot(%slice.{i}, %w.t), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}, {}", meta("dot_general"));
        let _ = writeln!(s, "  %tanh.{i} = f32[128,256]{{1,0}} tanh(%dot.{i}), {}", meta("tanh"));
        prev = format!("tanh.{i}");
        i += 1;
    }
    let _ = writeln!(s, "  ROOT %out = f32[128,256]{{1,0}} copy(%{prev})\n}}\n");
    s
}
