//! Shared helpers: workspace paths, the `hlo-run` binary, sample discovery, and running
//! child processes with a time limit while capturing their output.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// `hlo-samples/` under the workspace root.
pub fn samples_dir() -> PathBuf {
    root().join("hlo-samples")
}

/// The `cargo` that launched us (`$CARGO`), or `cargo` from `PATH`.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// `$HLO_RUN_BIN` when set; otherwise builds `hlo-run` with `cargo build --release -p hlo-run`
/// and returns `<target dir>/release/hlo-run`.
pub fn hlo_run_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("HLO_RUN_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("HLO_RUN_BIN={} is not a file", bin.display());
        }
        return Ok(bin);
    }
    eprintln!("xtask: cargo build --release -p hlo-run");
    let status = cargo().args(["build", "--release", "-p", "hlo-run"]).status().context("running cargo build")?;
    if !status.success() {
        bail!("`cargo build --release -p hlo-run` failed ({status}); set HLO_RUN_BIN to use another binary");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    let target = if target.is_relative() { root().join(target) } else { target };
    let bin = target.join("release").join(format!("hlo-run{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!("built hlo-run but {} does not exist", bin.display());
    }
    Ok(bin)
}

/// One sample directory `hlo-samples/<name>/` and what `hlo-run` needs from it.
#[derive(Clone, Debug)]
pub struct Sample {
    pub name: String,
    /// `module.hlo`, or `module.opt.hlo` where there is no pre-optimisation module.
    pub module: PathBuf,
    /// The `in_K.npy` files in ENTRY parameter order.
    pub inputs: Vec<PathBuf>,
}

/// Reads `hlo-samples/<name>/`, or `hlo-samples/pending/<name>/` when only that exists (pending
/// samples are left out of the tests, not out of benchmarks); `None` when there is no module.
pub fn sample(name: &str) -> Result<Option<Sample>> {
    let direct = samples_dir().join(name);
    let pending = samples_dir().join("pending").join(name);
    let dir = if !direct.is_dir() && pending.is_dir() { pending } else { direct };
    let module = ["module.hlo", "module.opt.hlo"].iter().map(|f| dir.join(f)).find(|p| p.is_file());
    let Some(module) = module else { return Ok(None) };
    let meta_path = dir.join("meta.json");
    let inputs = if meta_path.is_file() {
        let text = std::fs::read_to_string(&meta_path).with_context(|| format!("reading {}", meta_path.display()))?;
        let meta: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", meta_path.display()))?;
        meta["inputs"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["file"].as_str()).map(|f| dir.join(f)).collect())
            .unwrap_or_default()
    } else {
        let mut k = 0;
        let mut v = Vec::new();
        while dir.join(format!("in_{k}.npy")).is_file() {
            v.push(dir.join(format!("in_{k}.npy")));
            k += 1;
        }
        v
    };
    Ok(Some(Sample { name: name.to_string(), module, inputs }))
}

/// Every sample directory name, sorted.
pub fn all_sample_names() -> Result<Vec<String>> {
    let dir = samples_dir();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if sample(&name)?.is_some() {
                names.push(name);
            }
        }
    }
    names.sort();
    Ok(names)
}

/// What a child process did.
#[derive(Debug)]
pub struct Finished {
    /// `None` when it was killed for running past the limit.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// A one-line reason for a failure: the last meaningful stderr lines, or the status.
    pub fn failure_summary(&self, limit: Duration) -> String {
        let Some(status) = self.status else {
            return format!("timed out after {} s", limit.as_secs());
        };
        let lines: Vec<&str> = self.stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        // Prefer a line that names the problem ("error: ..."), else the last one.
        let line = lines
            .iter()
            .find(|l| l.starts_with("error") || l.contains("error:"))
            .or(lines.last())
            .copied()
            .unwrap_or("");
        if line.is_empty() {
            format!("exited with {status}")
        } else {
            line.to_string()
        }
    }
}

/// Runs `cmd` with stdout and stderr captured, killing it after `limit`.
pub fn run_captured(cmd: &mut Command, limit: Duration) -> Result<Finished> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(Finished { status, stdout, stderr })
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Quotes `s` for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:@+%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The host CPU model from `/proc/cpuinfo` and the number of logical cores.
pub fn host_cpu() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{model}, {cores} logical cores")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--samples=a,b"), "--samples=a,b");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn samples_are_found_with_their_inputs() {
        let s = sample("nbody_sim_update").unwrap().expect("sample exists");
        assert!(s.module.ends_with("module.hlo"));
        assert_eq!(s.inputs.len(), 2);
        assert!(s.inputs[1].ends_with("in_1.npy"));
        let seed = sample("seed_draw_points").unwrap().expect("sample exists");
        assert!(seed.module.ends_with("module.opt.hlo"));
        assert!(sample("no_such_sample").unwrap().is_none());
        assert!(all_sample_names().unwrap().len() > 10);
    }

    #[test]
    fn failure_summary_prefers_error_lines() {
        let limit = Duration::from_secs(5);
        let f = Finished { status: None, stdout: String::new(), stderr: String::new() };
        assert_eq!(f.failure_summary(limit), "timed out after 5 s");
        let status = Command::new("false").status().unwrap();
        let f = Finished { status: Some(status), stdout: String::new(), stderr: "warn\nerror: boom\nnote\n".into() };
        assert!(f.failure_summary(limit).starts_with("error: boom"));
    }
}
