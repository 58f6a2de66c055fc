//! `cargo xtask validate-spirv`: `spirv-val --target-env vulkan1.2` over every `.spv` file
//! in a directory, by default one filled by `hlo-run compile --emit spirv` for every sample.

use crate::util;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Options of `cargo xtask validate-spirv`.
#[derive(Debug, Default)]
pub struct Opts {
    /// Validate the `.spv` files already here instead of compiling the samples.
    pub dir: Option<PathBuf>,
    /// Samples to compile (default: all) when `dir` is not given.
    pub samples: Option<Vec<String>>,
    /// Keep the temporary directory even when everything validates.
    pub keep: bool,
    /// Extra arguments for spirv-val (after `--`).
    pub extra: Vec<String>,
}

const TARGET_ENV: &str = "vulkan1.2";

/// `$SPIRV_VAL` or `spirv-val`.
fn spirv_val() -> Command {
    Command::new(std::env::var_os("SPIRV_VAL").unwrap_or_else(|| "spirv-val".into()))
}

pub fn run(opts: &Opts) -> Result<()> {
    let probe = spirv_val().arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        bail!("spirv-val not found: install SPIRV-Tools (apt-get install spirv-tools) or set SPIRV_VAL");
    }
    let (dir, temporary) = match &opts.dir {
        Some(d) => {
            if !d.is_dir() {
                bail!("{} is not a directory", d.display());
            }
            (d.clone(), false)
        }
        None => (compile_samples(opts)?, true),
    };

    let mut files = Vec::new();
    collect_spv(&dir, &mut files)?;
    files.sort();
    if files.is_empty() {
        bail!("no .spv files under {}", dir.display());
    }
    let mut failed = Vec::new();
    for file in &files {
        let out = spirv_val()
            .args(["--target-env", TARGET_ENV])
            .args(&opts.extra)
            .arg(file)
            .output()
            .with_context(|| format!("running spirv-val on {}", file.display()))?;
        if !out.status.success() {
            let msg = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            failed.push((file.clone(), msg.trim().to_string()));
        }
    }
    for (file, msg) in &failed {
        println!("FAIL {}", file.strip_prefix(&dir).unwrap_or(file).display());
        for line in msg.lines() {
            println!("    {line}");
        }
    }
    println!(
        "spirv-val --target-env {TARGET_ENV}: {} file(s), {} valid, {} invalid (in {})",
        files.len(),
        files.len() - failed.len(),
        failed.len(),
        dir.display()
    );
    if !failed.is_empty() {
        bail!("{} SPIR-V file(s) failed validation", failed.len());
    }
    if temporary && !opts.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// `hlo-run compile <module> --emit spirv -o DIR/<name>` for each sample; returns DIR.
fn compile_samples(opts: &Opts) -> Result<PathBuf> {
    let bin = util::hlo_run_bin()?;
    let names = match &opts.samples {
        Some(n) => n.clone(),
        None => util::all_sample_names()?,
    };
    let dir = std::env::temp_dir().join(format!("xtask-spirv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir); // a stale one from an earlier process with our pid
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let limit = Duration::from_secs(300);
    let mut compiled = 0;
    let mut skipped = Vec::new();
    for name in &names {
        let Some(sample) = util::sample(name)? else { bail!("unknown sample {name:?}") };
        let mut cmd = Command::new(&bin);
        cmd.current_dir(util::root())
            .arg("compile")
            .arg(&sample.module)
            .args(["--emit", "spirv", "-o"])
            .arg(dir.join(name));
        let done = util::run_captured(&mut cmd, limit)?;
        if done.success() {
            compiled += 1;
        } else {
            skipped.push(format!("{name}: {}", done.failure_summary(limit)));
        }
    }
    println!("hlo-run compile --emit spirv: {compiled} of {} sample(s) compiled", names.len());
    for s in &skipped {
        println!("  not compiled: {s}");
    }
    Ok(dir)
}

fn collect_spv(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_spv(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "spv") {
            out.push(path);
        }
    }
    Ok(())
}
