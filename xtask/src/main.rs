//! Project automation: `cargo xtask bench`, `cargo xtask validate-spirv`,
//! `cargo xtask parse-bench` (`cargo xtask help` lists the options).

#![forbid(unsafe_code)]

mod bench;
mod spirv;
mod util;

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const HELP: &str = "\
cargo xtask <command>

  bench [--runs N] [--warmup W] [--samples a,b,...] [--backend vulkan|interp]
        [--jax-venv PATH] [--no-jax] [--markdown | --json] [--timeout SECS]
      Time each workload through `hlo-run bench --json` and through JAX
      (xtask/bench_jax.py, one Python process, alternating per workload) and print
      medians, minima and the ratio ours/JAX (< 1: faster than XLA).
      Default workloads: nbody_forces_2048, mandelbrot_512, sprite_render,
      nbody_sim_update, fori_loop, seed_draw_points. Defaults: 50 runs, 5 warm-up.
      hlo-run: $HLO_RUN_BIN, else built with `cargo build --release -p hlo-run`.
      JAX venv: --jax-venv, else $JAX_VENV, else /opt/jaxvenv (scripts/setup-jax.sh).
      --markdown: a Markdown table plus the command line, for docs/performance.md.
      --timeout: limit per hlo-run call (default 600 s).

  validate-spirv [DIR] [--samples a,b,...] [--keep] [-- SPIRV-VAL ARGS]
      Run `spirv-val --target-env vulkan1.2` over every .spv file under DIR.
      Without DIR: compile every sample (`hlo-run compile M --emit spirv -o TMP/<name>`)
      into a temporary directory (kept on failure or with --keep) and validate that.
      spirv-val: $SPIRV_VAL, else from PATH.

  difftest [ARGS...]
      `cargo run --release -p hlo-difftest -- ARGS`: the differential tester, e.g.
      `difftest run --minutes 30 --profile all`, `difftest replay FILE`, `difftest help`.

  parse-bench [ARGS...]
      `cargo run --release -p hlo-parse --example parse_bench -- ARGS` (skipped when the
      example does not exist yet).

Exit status: non-zero only on harness errors (and, for validate-spirv, invalid SPIR-V);
a workload that fails on one side is reported in its row.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let Some((cmd, rest)) = args.split_first() else {
        print!("{HELP}");
        return Ok(());
    };
    match cmd.as_str() {
        "bench" => bench::run(&bench_opts(rest)?),
        "validate-spirv" => spirv::run(&spirv_opts(rest)?),
        "parse-bench" => parse_bench(rest),
        "difftest" => difftest(rest),
        "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{HELP}"),
    }
}

/// Splits `--flag=value` and `--flag value` forms.
struct ArgIter<'a> {
    args: std::slice::Iter<'a, String>,
    pending: Option<String>,
}

impl<'a> ArgIter<'a> {
    fn new(args: &'a [String]) -> Self {
        ArgIter { args: args.iter(), pending: None }
    }

    /// The next flag or positional argument; an inline `=value` is kept for `value()`.
    fn next(&mut self) -> Option<String> {
        let arg = self.args.next()?;
        match arg.split_once('=') {
            Some((flag, value)) if arg.starts_with("--") => {
                self.pending = Some(value.to_string());
                Some(flag.to_string())
            }
            _ => Some(arg.clone()),
        }
    }

    fn value(&mut self, flag: &str) -> Result<String> {
        if let Some(v) = self.pending.take() {
            return Ok(v);
        }
        self.args.next().cloned().with_context(|| format!("{flag} needs a value"))
    }

    fn number(&mut self, flag: &str) -> Result<usize> {
        let v = self.value(flag)?;
        v.parse().with_context(|| format!("{flag} expects a number, got {v:?}"))
    }

    fn no_value(&mut self, flag: &str) -> Result<()> {
        match self.pending.take() {
            Some(_) => bail!("{flag} takes no value"),
            None => Ok(()),
        }
    }

    fn rest(&mut self) -> Vec<String> {
        self.args.by_ref().cloned().collect()
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn bench_opts(args: &[String]) -> Result<bench::Opts> {
    let mut o = bench::Opts::default();
    let mut it = ArgIter::new(args);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" | "-n" => o.runs = it.number(&arg)?.max(1),
            "--warmup" => o.warmup = it.number(&arg)?,
            "--samples" => o.samples = list(&it.value(&arg)?),
            "--backend" => o.backend = it.value(&arg)?,
            "--jax-venv" => o.jax_venv = Some(PathBuf::from(it.value(&arg)?)),
            "--timeout" => o.timeout = Duration::from_secs(it.number(&arg)? as u64),
            "--no-jax" => {
                it.no_value(&arg)?;
                o.no_jax = true;
            }
            "--markdown" => {
                it.no_value(&arg)?;
                o.markdown = true;
            }
            "--json" => {
                it.no_value(&arg)?;
                o.json = true;
            }
            other => bail!("bench: unknown argument {other:?} (see `cargo xtask help`)"),
        }
    }
    if o.samples.is_empty() {
        bail!("--samples needs at least one name");
    }
    if o.markdown && o.json {
        bail!("--markdown and --json exclude each other");
    }
    Ok(o)
}

fn spirv_opts(args: &[String]) -> Result<spirv::Opts> {
    let mut o = spirv::Opts::default();
    let mut it = ArgIter::new(args);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--samples" => o.samples = Some(list(&it.value(&arg)?)),
            "--keep" => {
                it.no_value(&arg)?;
                o.keep = true;
            }
            "--" => o.extra = it.rest(),
            a if !a.starts_with('-') && o.dir.is_none() => o.dir = Some(PathBuf::from(a)),
            other => bail!("validate-spirv: unknown argument {other:?} (see `cargo xtask help`)"),
        }
    }
    if o.dir.is_some() && o.samples.is_some() {
        bail!("validate-spirv: --samples only applies when no DIR is given");
    }
    Ok(o)
}

fn difftest(args: &[String]) -> Result<()> {
    let status = util::cargo()
        .args(["run", "--release", "-p", "hlo-difftest", "--"])
        .args(args)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("hlo-difftest failed ({status})");
    }
    Ok(())
}

fn parse_bench(args: &[String]) -> Result<()> {
    let examples = util::root().join("crates/hlo-parse/examples");
    if !examples.join("parse_bench.rs").is_file() && !examples.join("parse_bench/main.rs").is_file() {
        println!("parse-bench: skipped: crates/hlo-parse/examples/parse_bench.rs does not exist yet");
        return Ok(());
    }
    let status = util::cargo()
        .args(["run", "--release", "-p", "hlo-parse", "--example", "parse_bench", "--"])
        .args(args)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("parse_bench failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn bench_arguments() {
        let o = bench_opts(&s(&["--runs=7", "--warmup", "2", "--samples", "a, b", "--backend=interp", "--markdown"]))
            .unwrap();
        assert_eq!((o.runs, o.warmup, o.backend.as_str(), o.markdown), (7, 2, "interp", true));
        assert_eq!(o.samples, ["a", "b"]);
        assert_eq!(bench_opts(&[]).unwrap().samples.len(), bench::DEFAULT_WORKLOADS.len());
        assert!(bench_opts(&s(&["--runs"])).is_err());
        assert!(bench_opts(&s(&["--runs", "x"])).is_err());
        assert!(bench_opts(&s(&["--markdown=1"])).is_err());
        assert!(bench_opts(&s(&["--bogus"])).is_err());
    }

    #[test]
    fn validate_spirv_arguments() {
        let o = spirv_opts(&s(&["out", "--", "--scalar-block-layout"])).unwrap();
        assert_eq!(o.dir, Some(PathBuf::from("out")));
        assert_eq!(o.extra, ["--scalar-block-layout"]);
        assert!(spirv_opts(&s(&["a", "b"])).is_err());
        assert!(spirv_opts(&s(&["a", "--samples", "x"])).is_err());
    }
}
