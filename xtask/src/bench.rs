//! `cargo xtask bench`: the same workloads through `hlo-run bench --json` and through JAX
//! (`xtask/bench_jax.py --serve`, one Python process), alternating per workload so that
//! machine noise hits both sides, then one table of medians, minima and ratios.

use crate::util::{self, Finished};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The default workloads (design.md, "Performance: what to measure, side by side").
pub const DEFAULT_WORKLOADS: &[&str] =
    &["nbody_forces_2048", "mandelbrot_512", "sprite_render", "nbody_sim_update", "fori_loop", "seed_draw_points"];

/// Options of `cargo xtask bench`.
#[derive(Debug)]
pub struct Opts {
    pub runs: usize,
    pub warmup: usize,
    pub samples: Vec<String>,
    pub backend: String,
    pub jax_venv: Option<PathBuf>,
    pub no_jax: bool,
    pub markdown: bool,
    pub json: bool,
    pub timeout: Duration,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            runs: 50,
            warmup: 5,
            samples: DEFAULT_WORKLOADS.iter().map(|s| s.to_string()).collect(),
            backend: "vulkan".into(),
            jax_venv: None,
            no_jax: false,
            markdown: false,
            json: false,
            timeout: Duration::from_secs(600),
        }
    }
}

/// Prefix of a JAX-side error that is about the whole column, not one workload: the cell
/// shows "n/a" and the reason is given once under the table.
const NA: &str = "n/a: ";

/// One workload's results from both sides.
#[derive(Debug)]
pub struct Row {
    pub name: String,
    /// `hlo-run bench --json` output, or why there is none.
    pub ours: Result<Value, String>,
    /// bench_jax.py's answer (which may itself carry an "error"), or why there is none.
    pub jax: Result<Value, String>,
    pub device: String,
}

/// Runs the benchmark and prints the table; `Err` only for harness failures.
pub fn run(opts: &Opts) -> Result<()> {
    let mut samples = Vec::new();
    for name in &opts.samples {
        match util::sample(name)? {
            Some(s) => samples.push(s),
            None => bail!("unknown sample {name:?}: no hlo-samples/{name}/module.hlo or module.opt.hlo"),
        }
    }
    if !["vulkan", "interp"].contains(&opts.backend.as_str()) {
        bail!("--backend must be vulkan or interp, not {:?}", opts.backend);
    }
    let bin = util::hlo_run_bin()?;

    let mut jax = if opts.no_jax {
        Err(format!("{NA}skipped (--no-jax)"))
    } else {
        JaxServer::start(opts).map_err(|e| format!("{NA}{e}"))
    };
    if let Err(why) = &jax {
        eprintln!("xtask: JAX column unavailable: {}", why.trim_start_matches(NA));
    }

    let mut devices_line: Option<String> = None;
    let mut rows = Vec::new();
    let mut harness_error = None;
    for (k, sample) in samples.iter().enumerate() {
        let ours = run_ours(&bin, sample, opts);
        let jax_res = match &mut jax {
            Ok(server) => match server.query(&sample.name) {
                Ok(v) => match v.get("error").and_then(Value::as_str) {
                    Some(e) => Err(format!("JAX: {e}")),
                    None => Ok(v),
                },
                Err(e) => {
                    let log = match std::mem::replace(&mut jax, Err(String::new())) {
                        Ok(server) => server.abort(),
                        Err(_) => String::new(),
                    };
                    let msg = format!("bench_jax.py stopped answering: {e:#}: {}", last_lines(&log, 3));
                    jax = Err(format!("{NA}{msg}"));
                    harness_error.get_or_insert(msg.clone());
                    Err(msg)
                }
            },
            Err(why) => Err(why.clone()),
        };
        let device = match (&ours, opts.backend.as_str()) {
            (_, "interp") => "hlo-run interpreter (host CPU)".to_string(),
            (Ok(v), _) if device_from_stats(v).is_some() => device_from_stats(v).unwrap_or_default(),
            _ => devices_line.get_or_insert_with(|| first_device(&bin, opts.timeout)).clone(),
        };
        // `hlo-run bench` measured this program faster without lavapipe's worker threads.
        let serial = ours.as_ref().is_ok_and(|v| v["driver_threads"].as_str() == Some("serial"));
        let device = if serial { format!("{device}, LP_NUM_THREADS=0") } else { device };
        eprintln!(
            "xtask: [{}/{}] {:<20} hlo-run {:<14} JAX {}",
            k + 1,
            samples.len(),
            sample.name,
            short(&ours),
            short(&jax_res)
        );
        rows.push(Row { name: sample.name.clone(), ours, jax: jax_res, device });
    }
    if let Ok(server) = jax {
        server.finish();
    }

    let command = command_line();
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&json_report(&rows, opts, &command))?);
    } else if opts.markdown {
        print!("{}", markdown(&rows, opts, &command));
    } else {
        print!("{}", plain(&rows, opts));
    }
    match harness_error {
        Some(e) => bail!(e),
        None => Ok(()),
    }
}

fn run_ours(bin: &PathBuf, sample: &util::Sample, opts: &Opts) -> Result<Value, String> {
    let mut cmd = Command::new(bin);
    cmd.current_dir(util::root()).arg("bench").arg(&sample.module).args(&sample.inputs).args([
        "--json",
        "-n",
        &opts.runs.to_string(),
        "--warmup",
        &opts.warmup.to_string(),
        "--backend",
        &opts.backend,
    ]);
    let done = util::run_captured(&mut cmd, opts.timeout).map_err(|e| format!("{e:#}"))?;
    parse_ours(&done, opts.timeout).map_err(|e| {
        // "hlo-samples/x/module.hlo:40:3: error: ..." -> "module.hlo:40:3: error: ..."
        let dir = sample.module.parent().map(|d| d.display().to_string() + "/").unwrap_or_default();
        let rel = format!("hlo-samples/{}/", sample.name);
        e.replace(&dir, "").replace(&rel, "")
    })
}

/// The JSON line of a finished `hlo-run bench --json`, or the error to show in its row.
pub fn parse_ours(done: &Finished, limit: Duration) -> Result<Value, String> {
    if !done.success() {
        return Err(done.failure_summary(limit));
    }
    let line = done.stdout.lines().rev().map(str::trim).find(|l| l.starts_with('{'));
    let line = line.ok_or_else(|| "hlo-run printed no JSON line".to_string())?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("bad JSON from hlo-run ({e}): {line}"))?;
    if v.get("median_ms").and_then(Value::as_f64).is_none() {
        return Err(format!("hlo-run JSON has no median_ms: {line}"));
    }
    Ok(v)
}

/// The device named in hlo-run's `stats` (an object with "device", or text "device: X, ...").
pub fn device_from_stats(v: &Value) -> Option<String> {
    match v.get("stats")? {
        Value::Object(o) => o.get("device").and_then(Value::as_str).map(str::to_string),
        Value::String(s) => {
            let lower = s.to_ascii_lowercase();
            let at = lower.find("device")?;
            let rest = s[at + "device".len()..].trim_start_matches(['s', ' ']);
            let rest = rest.strip_prefix([':', '='])?.trim_start();
            let mut depth = 0i32;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' | '[' => depth += 1,
                        ')' | ']' => depth -= 1,
                        _ => {}
                    }
                    depth <= 0 && matches!(c, ',' | ';' | '\n' | '|') || depth < 0
                })
                .map_or(rest.len(), |(i, _)| i);
            let dev = rest[..end].trim().trim_matches('"');
            (!dev.is_empty()).then(|| dev.to_string())
        }
        _ => None,
    }
}

/// The first line of `hlo-run devices` (the device hlo-run picks by default).
fn first_device(bin: &PathBuf, limit: Duration) -> String {
    let mut cmd = Command::new(bin);
    cmd.arg("devices");
    match util::run_captured(&mut cmd, limit.min(Duration::from_secs(60))) {
        Ok(done) if done.success() => done
            .stdout
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("(hlo-run devices printed nothing)")
            .to_string(),
        Ok(done) => format!("? (hlo-run devices: {})", done.failure_summary(limit)),
        Err(e) => format!("? ({e:#})"),
    }
}

/// A `bench_jax.py --serve` process: one sample name per line in, one JSON line out.
struct JaxServer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: std::thread::JoinHandle<String>,
}

impl JaxServer {
    /// Starts Python and waits for it to import JAX, so the import does not overlap our runs.
    fn start(opts: &Opts) -> Result<JaxServer, String> {
        let venv = opts
            .jax_venv
            .clone()
            .or_else(|| std::env::var_os("JAX_VENV").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/opt/jaxvenv"));
        let python = venv.join("bin").join("python");
        if !python.is_file() {
            return Err(format!(
                "no JAX venv at {} (run scripts/setup-jax.sh, or pass --jax-venv PATH)",
                venv.display()
            ));
        }
        let script = util::root().join("xtask").join("bench_jax.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--serve", "--runs", &opts.runs.to_string(), "--warmup", &opts.warmup.to_string()])
            .current_dir(util::root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", python.display()))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut err_pipe = child.stderr.take().expect("piped");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut err_pipe, &mut s);
            s
        });
        let mut server = JaxServer { child, stdin, stdout, stderr };
        match server.read_answer() {
            Ok(v) if v["ready"] == json!(true) => Ok(server),
            Ok(v) => {
                let e = v["error"].as_str().unwrap_or("not ready").to_string();
                let _ = server.child.wait();
                Err(format!("bench_jax.py could not start JAX: {e} (is the venv from scripts/setup-jax.sh?)"))
            }
            Err(e) => {
                let _ = server.child.kill();
                let _ = server.child.wait();
                let log = server.stderr.join().unwrap_or_default();
                Err(format!("bench_jax.py failed: {e:#}: {}", last_lines(&log, 3)))
            }
        }
    }

    fn read_answer(&mut self) -> Result<Value> {
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line)? == 0 {
                bail!("bench_jax.py exited");
            }
            let line = line.trim();
            if line.starts_with('{') {
                return serde_json::from_str(line).with_context(|| format!("bad JSON from bench_jax.py: {line}"));
            }
        }
    }

    fn query(&mut self, name: &str) -> Result<Value> {
        writeln!(self.stdin, "{name}")?;
        self.stdin.flush()?;
        let v = self.read_answer()?;
        if v["name"].as_str() != Some(name) {
            bail!("bench_jax.py answered for {:?}, asked {name:?}", v["name"]);
        }
        Ok(v)
    }

    /// Kills a misbehaving server; returns what it wrote to stderr.
    fn abort(self) -> String {
        let JaxServer { mut child, stdin, stdout, stderr } = self;
        drop(stdin);
        drop(stdout);
        let _ = child.kill();
        let _ = child.wait();
        stderr.join().unwrap_or_default()
    }

    fn finish(self) {
        let JaxServer { mut child, stdin, stdout, stderr } = self;
        drop(stdin);
        drop(stdout);
        let _ = child.wait();
        let _ = stderr.join();
    }
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn short(r: &Result<Value, String>) -> String {
    match r {
        Ok(v) => v["median_ms"].as_f64().map_or("?".into(), |m| format!("{} ms", fmt_ms(m))),
        Err(e) if e.starts_with(NA) => "n/a".into(),
        Err(e) => format!("failed: {}", truncate(e, 60)),
    }
}

/// Milliseconds with about four significant digits.
pub fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.1}")
    } else if ms >= 10.0 {
        format!("{ms:.2}")
    } else if ms >= 0.1 {
        format!("{ms:.3}")
    } else {
        format!("{ms:.4}")
    }
}

fn truncate(s: &str, n: usize) -> String {
    let s = s.lines().next().unwrap_or("");
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

fn timing_cell(r: &Result<Value, String>, width: usize) -> String {
    match r {
        Ok(v) => match (v["median_ms"].as_f64(), v["min_ms"].as_f64()) {
            (Some(med), Some(min)) => format!("{} ms ({})", fmt_ms(med), fmt_ms(min)),
            (Some(med), None) => format!("{} ms", fmt_ms(med)),
            _ => "?".into(),
        },
        Err(e) if e.starts_with(NA) => "n/a".into(),
        Err(e) if e.contains("error") => truncate(e, width),
        Err(e) => format!("error: {}", truncate(e, width)),
    }
}

/// ours / JAX by medians.
pub fn ratio(ours: &Result<Value, String>, jax: &Result<Value, String>) -> Option<f64> {
    let o = ours.as_ref().ok()?["median_ms"].as_f64()?;
    let j = jax.as_ref().ok()?["median_ms"].as_f64()?;
    (j > 0.0).then(|| o / j)
}

fn jax_desc(jax: &Result<Value, String>) -> String {
    match jax {
        Ok(v) => format!(
            "jax {} {} ({})",
            v["jax_version"].as_str().unwrap_or("?"),
            v["platform"].as_str().unwrap_or("?"),
            v["device_kind"].as_str().unwrap_or("?")
        ),
        Err(_) => "-".into(),
    }
}

const HEADER: [&str; 6] =
    ["workload", "hlo-run median (min)", "JAX median (min)", "ratio (ours/JAX)", "JAX version, platform", "our device"];

fn cells(rows: &[Row], err_width: usize) -> Vec<[String; 6]> {
    rows.iter()
        .map(|r| {
            [
                r.name.clone(),
                timing_cell(&r.ours, err_width),
                timing_cell(&r.jax, err_width),
                ratio(&r.ours, &r.jax).map_or("-".into(), |x| format!("{x:.2}x")),
                jax_desc(&r.jax),
                if r.ours.is_ok() { r.device.clone() } else { "-".into() },
            ]
        })
        .collect()
}

/// Notes under the table: how the JAX side ran where it is not plain jax.jit, output
/// checks that failed, compile times.
fn notes(rows: &[Row]) -> Vec<String> {
    let mut notes = Vec::new();
    for r in rows {
        if let Err(e) = &r.jax {
            if let Some(why) = e.strip_prefix(NA) {
                let note = format!("JAX column n/a: {why}.");
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
        if let Ok(j) = &r.jax {
            let method = j["method"].as_str().unwrap_or("");
            if !method.starts_with("jax.jit") {
                notes.push(format!("{}: JAX column is {method}.", r.name));
            }
            if let Some(c) = j["check"].as_str().filter(|c| *c != "ok") {
                notes.push(format!("{}: JAX output vs committed out_K.npy: {c}.", r.name));
            }
        }
    }
    let compile: Vec<String> = rows
        .iter()
        .map(|r| {
            let ours = r.ours.as_ref().ok().and_then(|v| v["compile_ms"].as_f64());
            let jax = r.jax.as_ref().ok().and_then(|v| v["compile_ms"].as_f64());
            let f = |x: Option<f64>| x.map_or("-".into(), |m| format!("{m:.0} ms"));
            format!("{} {} / {}", r.name, f(ours), f(jax))
        })
        .collect();
    notes.push(format!("Compile time (hlo-run / JAX lower+compile): {}.", compile.join("; ")));
    notes
}

fn settings(opts: &Opts) -> String {
    format!(
        "{} timed runs after {} warm-up per workload, hlo-run --backend {}; host: {}",
        opts.runs,
        opts.warmup,
        opts.backend,
        util::host_cpu()
    )
}

/// The plain-text table.
pub fn plain(rows: &[Row], opts: &Opts) -> String {
    let body = cells(rows, 48);
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &body {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &[String]| {
        let mut s = String::new();
        for (k, (c, w)) in cols.iter().zip(widths).enumerate() {
            let pad = w - c.chars().count();
            // Right-align the numbers, left-align the text.
            if (1..=3).contains(&k) && !c.contains("error") {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            }
            s.push_str("  ");
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&HEADER.map(str::to_string));
    out.push_str(&line(&widths.map(|w| "-".repeat(w))));
    for row in &body {
        out.push_str(&line(row));
    }
    out.push('\n');
    out.push_str(&settings(opts));
    out.push('\n');
    for n in notes(rows) {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

/// The Markdown table with the command that produced it, for docs/performance.md.
pub fn markdown(rows: &[Row], opts: &Opts, command: &str) -> String {
    let esc = |s: &str| s.replace('|', "\\|");
    let mut out = format!("Command: `{command}`\n\n{}.\n\n", settings(opts));
    out.push_str(&format!("| {} |\n", HEADER.join(" | ")));
    out.push_str("|---|---:|---:|---:|---|---|\n");
    for row in cells(rows, 200) {
        out.push_str(&format!("| {} |\n", row.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")));
    }
    out.push('\n');
    for n in notes(rows) {
        out.push_str(&format!("- {}\n", esc(&n)));
    }
    out
}

fn json_report(rows: &[Row], opts: &Opts, command: &str) -> Value {
    let side = |r: &Result<Value, String>| match r {
        Ok(v) => v.clone(),
        Err(e) => json!({ "error": e }),
    };
    json!({
        "command": command,
        "runs": opts.runs,
        "warmup": opts.warmup,
        "backend": opts.backend,
        "host": util::host_cpu(),
        "rows": rows.iter().map(|r| json!({
            "workload": r.name,
            "hlo_run": side(&r.ours),
            "jax": side(&r.jax),
            "ratio": ratio(&r.ours, &r.jax),
            "device": r.device,
        })).collect::<Vec<_>>(),
    })
}

/// `cargo xtask ARGS...` as typed (the alias hides `run --package xtask --release --`).
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).map(|a| util::shell_quote(&a)).collect();
    format!("cargo xtask {}", args.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(median: f64, min: f64) -> Result<Value, String> {
        Ok(json!({"median_ms": median, "min_ms": min, "jax_version": "0.8.3", "platform": "cpu",
                  "device_kind": "cpu", "method": "jax.jit(...)", "check": "ok", "compile_ms": 12.0}))
    }

    #[test]
    fn device_is_read_from_stats() {
        let v = json!({"stats": "device: llvmpipe (LLVM 17.0.6, 256 bits), 3 kernels, 2 dispatches"});
        assert_eq!(device_from_stats(&v).as_deref(), Some("llvmpipe (LLVM 17.0.6, 256 bits)"));
        let v = json!({"stats": {"device": "NVIDIA H100"}});
        assert_eq!(device_from_stats(&v).as_deref(), Some("NVIDIA H100"));
        let v = json!({"stats": "Device=lavapipe; kernels 4"});
        assert_eq!(device_from_stats(&v).as_deref(), Some("lavapipe"));
        assert_eq!(device_from_stats(&json!({"stats": "interpreter: 12 instructions"})), None);
        assert_eq!(device_from_stats(&json!({})), None);
    }

    #[test]
    fn ratios_and_cells() {
        assert_eq!(ratio(&ok(2.0, 1.0), &ok(4.0, 3.0)), Some(0.5));
        assert_eq!(ratio(&Err("x".into()), &ok(4.0, 3.0)), None);
        assert_eq!(timing_cell(&ok(12.3456, 11.0), 10), "12.35 ms (11.00)");
        assert_eq!(timing_cell(&Err("unsupported op `sort` at line 3".into()), 10), "error: unsupport…");
        assert_eq!(fmt_ms(0.01234), "0.0123");
        assert_eq!(fmt_ms(123.45), "123.5");
    }

    #[test]
    fn tables_show_errors_and_keep_going() {
        let rows = vec![
            Row { name: "a".into(), ours: ok(1.0, 0.9), jax: ok(2.0, 1.5), device: "lavapipe".into() },
            Row {
                name: "b|c".into(),
                ours: Err("unsupported op `sort`".into()),
                jax: Err("JAX: boom".into()),
                device: "lavapipe".into(),
            },
        ];
        let opts = Opts::default();
        let p = plain(&rows, &opts);
        assert!(p.contains("0.50x"), "{p}");
        assert!(p.contains("error: unsupported op `sort`"), "{p}");
        let md = markdown(&rows, &opts, "cargo xtask bench --markdown");
        assert!(md.starts_with("Command: `cargo xtask bench --markdown`"), "{md}");
        assert!(md.contains("| b\\|c | error: unsupported op `sort` |"), "{md}");
        assert_eq!(md.lines().filter(|l| l.starts_with('|')).count(), 4, "{md}");
    }

    #[test]
    fn ours_json_is_parsed_from_the_last_json_line() {
        let status = Command::new("true").status().unwrap();
        let done = Finished {
            status: Some(status),
            stdout: "warming up\n{\"module\": \"m\", \"median_ms\": 1.5, \"min_ms\": 1.0}\n".into(),
            stderr: String::new(),
        };
        assert_eq!(parse_ours(&done, Duration::from_secs(1)).unwrap()["median_ms"], json!(1.5));
        let done = Finished { status: Some(status), stdout: "{\"x\": 1}".into(), stderr: String::new() };
        assert!(parse_ours(&done, Duration::from_secs(1)).is_err());
    }
}
