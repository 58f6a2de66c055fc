//! `hlo-difftest`: long differential-testing sessions, replay, shrinking and promotion of
//! saved programs. `hlo-difftest help` lists the commands.
//!
//! `run` supervises a worker process (`hlo-difftest worker`, the same binary) that generates,
//! runs, shrinks and saves programs and reports each one on stdout; a worker that stops
//! reporting for `--timeout` seconds is killed and its program recorded as a timeout, one
//! that dies is recorded as a crash, and a fresh worker continues with the next seed.

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Parser, Subcommand};
use hlo_difftest::corpus::{self, Header};
use hlo_difftest::exec::{FailKind, Harness, Mode, Outcome};
use hlo_difftest::gen::{self, Case};
use hlo_difftest::{edit, fuse, run_case, shrink_failure, signature};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "hlo-difftest", about = "Random HLO programs on Vulkan against the reference interpreter")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate and test programs until time is up; save shrunk failures in found/.
    Run {
        #[arg(long, default_value_t = 1.0)]
        minutes: f64,
        /// First seed (default: from the clock).
        #[arg(long)]
        seed: Option<u64>,
        /// small, large, ci, or all (mostly small, every tenth seed large).
        #[arg(long, default_value = "small")]
        profile: String,
        /// Seconds a program (with its shrinking) may take before it counts as a hang
        /// (four times as long in the large profile).
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Seconds spent shrinking each failure.
        #[arg(long, default_value_t = 30)]
        shrink_secs: u64,
        /// Turn the Khronos validation layer off (faster; on by default).
        #[arg(long)]
        no_validation: bool,
        /// Where findings go (default: the crate's found/).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The process `run` supervises (one line per program on stdout).
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        profile: String,
        #[arg(long)]
        until_secs: f64,
        #[arg(long)]
        shrink_secs: u64,
        #[arg(long)]
        no_validation: bool,
        #[arg(long)]
        out: PathBuf,
    },
    /// Replay saved programs: Vulkan against the interpreter; exit 1 on any failure.
    Replay {
        files: Vec<PathBuf>,
        #[arg(long)]
        no_validation: bool,
    },
    /// Shrink a saved program further (while the same failure persists) and save the result.
    Shrink {
        file: PathBuf,
        #[arg(long, default_value_t = 120)]
        secs: u64,
        #[arg(long)]
        no_validation: bool,
    },
    /// Move a found program whose bug is fixed into regressions/.
    Promote { files: Vec<PathBuf> },
    /// Write seeded inputs (`FILE.npz`) for a hand-written program, e.g. a new regression.
    Inputs {
        file: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// tame or special
        #[arg(long, default_value = "tame")]
        data: String,
    },
    /// Print the program (and its fused form) that a seed generates.
    Gen {
        #[arg(long)]
        seed: u64,
        #[arg(long, default_value = "small")]
        profile: String,
        #[arg(long)]
        fused: bool,
    },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hlo-difftest: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    match Cli::parse().cmd {
        Cmd::Run { minutes, seed, profile, timeout, shrink_secs, no_validation, out } => {
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_secs())
            });
            let out = out.unwrap_or_else(corpus::found_dir);
            supervise(&RunOpts { minutes, seed, profile, timeout, shrink_secs, no_validation, out })
        }
        Cmd::Worker { seed, profile, until_secs, shrink_secs, no_validation, out } => {
            worker(seed, &profile, until_secs, shrink_secs, !no_validation, &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Replay { files, no_validation } => replay(&files, !no_validation),
        Cmd::Shrink { file, secs, no_validation } => shrink_file(&file, secs, !no_validation),
        Cmd::Promote { files } => {
            for f in files {
                let dest = corpus::promote(&f)?;
                println!("{} -> {}", f.display(), dest.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Inputs { file, seed, data } => {
            let text = std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
            let module = hlo_parse::parse_module(&text)
                .map_err(|e| anyhow!("{}", hlo_parse::render_error(&text, &file.display().to_string(), &e)))?;
            let data =
                hlo_difftest::inputs::DataKind::from_name(&data).ok_or_else(|| anyhow!("data: tame or special"))?;
            let n = module.entry_comp().params.len();
            let roles = vec![hlo_difftest::inputs::Role::Data; n];
            let inputs = hlo_difftest::inputs::make_inputs(&module, &roles, data, seed);
            let npz = file.with_extension("npz");
            corpus::write_npz(&npz, &inputs)?;
            println!("{}: {} arrays", npz.display(), inputs.len());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Gen { seed, profile, fused } => {
            let p = gen::profile(&profile).ok_or_else(|| anyhow!("unknown profile {profile}"))?;
            let case = gen::generate(seed, p).ok_or_else(|| anyhow!("seed {seed} generates nothing valid"))?;
            println!("// seed={seed} profile={profile} data={} direct={}", case.data.name(), case.direct);
            print!("{}", hlo_ir::print_module(&case.module));
            if fused {
                match fuse::fuse_direct(&case.module) {
                    Some(m) => print!("\n// fused form\n{}", hlo_ir::print_module(&m)),
                    None => println!("// no fused form"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A shrinking budget of `secs` seconds (and plenty of candidate runs).
fn budget(secs: u64) -> hlo_difftest::shrink::Budget {
    hlo_difftest::shrink::Budget { max_tries: 100_000, max_time: Duration::from_secs(secs) }
}

/// The profile a seed runs under: `all` mixes small and large.
fn profile_for(name: &str, seed: u64) -> Result<&'static gen::Profile> {
    let name = if name == "all" {
        if seed % 10 == 9 {
            "large"
        } else {
            "small"
        }
    } else {
        name
    };
    gen::profile(name).ok_or_else(|| anyhow!("unknown profile {name} (small, large, ci, all)"))
}

/// What the worker reports per program.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Report {
    seed: u64,
    /// match, unsupported, skip, fail, invalid (the generator drew nothing valid)
    outcome: String,
    op: Option<String>,
    signature: Option<String>,
    saved: Option<String>,
    detail: Option<String>,
    ops: Vec<String>,
    modes: usize,
}

/// Signatures already in `dir` (so that a known failure is counted, not saved again).
fn known_signatures(dir: &Path) -> BTreeSet<String> {
    corpus::list(dir)
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| corpus::parse_header(&t).signature)
        .filter(|s| !s.is_empty())
        .collect()
}

fn worker(seed: u64, profile: &str, until_secs: f64, shrink_secs: u64, validation: bool, out: &Path) -> Result<()> {
    let h = Harness::new(validation)?;
    let start = Instant::now();
    let mut known = known_signatures(out);
    let stdout = std::io::stdout();
    let say = |line: String| {
        let mut lock = stdout.lock();
        let _ = writeln!(lock, "{line}");
        let _ = lock.flush();
    };
    let mut seed = seed;
    while start.elapsed().as_secs_f64() < until_secs {
        say(format!("@start {seed}"));
        let p = profile_for(profile, seed)?;
        let report = match gen::generate(seed, p) {
            None => Report {
                seed,
                outcome: "invalid".into(),
                op: None,
                signature: None,
                saved: None,
                detail: None,
                ops: vec![],
                modes: 0,
            },
            Some(case) => test_case(&h, &case, shrink_secs, &mut known, out, &mut || say("@try".into())),
        };
        say(format!("@done {}", serde_json::to_string(&report)?));
        seed += 1;
    }
    Ok(())
}

/// Runs, and on failure shrinks and saves, one case.
fn test_case(
    h: &Harness,
    case: &Case,
    shrink_secs: u64,
    known: &mut BTreeSet<String>,
    out: &Path,
    on_try: &mut dyn FnMut(),
) -> Report {
    let verdict = run_case(h, case);
    let ops = edit::op_names(&case.module);
    let mut report = Report {
        seed: case.seed,
        outcome: "match".into(),
        op: None,
        signature: None,
        saved: None,
        detail: None,
        ops,
        modes: verdict.outcomes.len(),
    };
    match verdict.summary() {
        Outcome::Match => {}
        Outcome::Unsupported { op, reason } => {
            report.outcome = "unsupported".into();
            report.op = Some(op);
            report.detail = Some(reason);
        }
        Outcome::Skip { reason } => {
            report.outcome = "skip".into();
            report.detail = Some(reason);
        }
        Outcome::Fail(f) => {
            report.outcome = "fail".into();
            let module = verdict.failure.map(|(_, m)| m).unwrap_or_else(|| case.module.clone());
            let (shrunk, failure) = if f.kind == FailKind::InterpPanic {
                (hlo_difftest::shrink::Program { module: module.clone(), inputs: case.inputs.clone() }, f.clone())
            } else {
                shrink_failure(h, &module, &case.inputs, f.kind, f.mode, budget(shrink_secs), on_try)
            };
            let sig = signature(failure.kind, &shrunk.module);
            report.detail = Some(failure.detail.clone());
            if known.insert(sig.clone()) {
                let header = Header {
                    seed: Some(case.seed),
                    profile: case.profile.clone(),
                    data: case.data.name().into(),
                    mode: Some(failure.mode),
                    kind: Some(failure.kind),
                    signature: sig.clone(),
                    max_err: Some(failure.max_err),
                    detail: failure.detail.clone(),
                    note: String::new(),
                };
                match corpus::save(out, &header, &shrunk.module, &shrunk.inputs) {
                    Ok(path) => report.saved = Some(path.display().to_string()),
                    Err(e) => report.detail = Some(format!("{} (saving failed: {e})", failure.detail)),
                }
            }
            report.signature = Some(sig);
        }
    }
    report
}

struct RunOpts {
    minutes: f64,
    seed: u64,
    profile: String,
    timeout: u64,
    shrink_secs: u64,
    no_validation: bool,
    out: PathBuf,
}

#[derive(Default)]
struct Tally {
    programs: u64,
    matches: u64,
    invalid: u64,
    skipped: BTreeMap<String, u64>,
    /// Per op: how many refusals, and the first one's reason.
    unsupported: BTreeMap<String, (u64, String)>,
    failures: BTreeMap<String, (u64, Option<String>, String)>,
    ops: BTreeMap<String, u64>,
    modes: u64,
}

fn supervise(o: &RunOpts) -> Result<ExitCode> {
    // Fail early, with the driver's own message, when there is no device.
    drop(Harness::new(!o.no_validation)?);
    let _ = profile_for(&o.profile, o.seed)?;
    let exe = std::env::current_exe().context("finding my own executable")?;
    let total = Duration::from_secs_f64(o.minutes * 60.0);
    let start = Instant::now();
    let mut tally = Tally::default();
    let bar = indicatif::ProgressBar::new(total.as_secs().max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise}/{duration_precise} [{bar:20}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut seed = o.seed;
    println!(
        "hlo-difftest run: profile {} from seed {} for {:.1} min, validation {}, findings in {}",
        o.profile,
        o.seed,
        o.minutes,
        if o.no_validation { "off" } else { "on" },
        o.out.display()
    );
    let mut known = known_signatures(&o.out);
    let mut last_note = Instant::now();
    while start.elapsed() < total {
        let left = (total - start.elapsed()).as_secs_f64();
        let mut child = Command::new(&exe)
            .arg("worker")
            .args(["--seed", &seed.to_string(), "--profile", &o.profile])
            .args(["--until-secs", &format!("{left:.1}"), "--shrink-secs", &o.shrink_secs.to_string()])
            .args(["--out".as_ref(), o.out.as_os_str()])
            .args(if o.no_validation { vec!["--no-validation"] } else { vec![] })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting a worker")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("worker without stdout"))?;
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut current: Option<u64> = None;
        let ended = loop {
            // Programs of the large profile move 2^24-element arrays through the interpreter.
            let large = current.and_then(|s| profile_for(&o.profile, s).ok()).is_some_and(|p| p.name == "large");
            let limit = Duration::from_secs(if large { o.timeout * 4 } else { o.timeout });
            match rx.recv_timeout(limit) {
                Ok(line) => {
                    if let Some(s) = line.strip_prefix("@start ") {
                        current = s.trim().parse().ok();
                    } else if let Some(json) = line.strip_prefix("@done ") {
                        if let Ok(r) = serde_json::from_str::<Report>(json) {
                            seed = r.seed + 1;
                            current = None;
                            record(&mut tally, &r, &bar);
                        }
                    }
                    bar.set_position(start.elapsed().as_secs().min(total.as_secs()));
                    bar.set_message(progress(&tally, start.elapsed()));
                    if bar.is_hidden() && last_note.elapsed() > Duration::from_secs(60) {
                        last_note = Instant::now();
                        println!(
                            "[{:.1} min] {}",
                            start.elapsed().as_secs_f64() / 60.0,
                            progress(&tally, start.elapsed())
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Some(FailKind::Timeout);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().context("waiting for the worker")?;
                    break if status.success() && current.is_none() { None } else { Some(FailKind::Crash) };
                }
            }
        };
        if let (Some(kind), Some(s)) = (ended, current) {
            let r = hang_or_crash(o, s, kind, &mut known);
            record(&mut tally, &r, &bar);
            seed = s + 1;
        } else if ended.is_none() {
            break;
        }
    }
    bar.finish_and_clear();
    print_summary(&tally, start.elapsed(), o);
    Ok(ExitCode::SUCCESS)
}

/// Records a program the worker did not survive: saved unshrunk (shrinking it would need a
/// process per candidate), with the seed that regenerates it.
fn hang_or_crash(o: &RunOpts, seed: u64, kind: FailKind, known: &mut BTreeSet<String>) -> Report {
    let mut r = Report {
        seed,
        outcome: "fail".into(),
        op: None,
        signature: None,
        saved: None,
        detail: Some(format!("{} while running seed {seed}", kind.name())),
        ops: vec![],
        modes: 1,
    };
    let Ok(p) = profile_for(&o.profile, seed) else { return r };
    let Some(case) = gen::generate(seed, p) else { return r };
    let sig = signature(kind, &case.module);
    r.ops = edit::op_names(&case.module);
    if known.insert(sig.clone()) {
        let header = Header {
            seed: Some(seed),
            profile: case.profile.clone(),
            data: case.data.name().into(),
            mode: Some(Mode::Pipeline),
            kind: Some(kind),
            signature: sig.clone(),
            max_err: None,
            detail: format!(
                "the worker {} on this program (unshrunk; direct form tried too: {})",
                kind.name(),
                case.direct
            ),
            note: String::new(),
        };
        if let Ok(path) = corpus::save(&o.out, &header, &case.module, &case.inputs) {
            r.saved = Some(path.display().to_string());
        }
    }
    r.signature = Some(sig);
    r
}

fn record(t: &mut Tally, r: &Report, bar: &indicatif::ProgressBar) {
    t.programs += 1;
    t.modes += r.modes as u64;
    for op in &r.ops {
        *t.ops.entry(op.clone()).or_default() += 1;
    }
    match r.outcome.as_str() {
        "match" => t.matches += 1,
        "invalid" => t.invalid += 1,
        "unsupported" => {
            let entry = t.unsupported.entry(r.op.clone().unwrap_or_default()).or_default();
            entry.0 += 1;
            if entry.1.is_empty() {
                // The first reason and seed, so that a refusal can be looked into.
                entry.1 = format!("{} (seed {})", r.detail.clone().unwrap_or_default(), r.seed);
            }
        }
        "skip" => {
            let reason = r.detail.clone().unwrap_or_default();
            let key: String = reason.chars().take(80).collect();
            *t.skipped.entry(key).or_default() += 1;
        }
        _ => {
            let sig = r.signature.clone().unwrap_or_else(|| "unknown".into());
            let e = t.failures.entry(sig.clone()).or_insert((0, None, r.detail.clone().unwrap_or_default()));
            e.0 += 1;
            if e.1.is_none() {
                e.1 = r.saved.clone();
            }
            if e.0 == 1 {
                let line = format!(
                    "seed {}: {sig}{}",
                    r.seed,
                    r.saved.as_ref().map(|p| format!(" -> {p}")).unwrap_or_default()
                );
                // A bar drawn to no terminal prints nothing, so logs get plain lines.
                if bar.is_hidden() {
                    println!("{line}");
                } else {
                    bar.println(line);
                }
            }
        }
    }
}

fn progress(t: &Tally, elapsed: Duration) -> String {
    let per_min = t.programs as f64 / elapsed.as_secs_f64().max(1e-3) * 60.0;
    let fails: u64 = t.failures.values().map(|f| f.0).sum();
    format!(
        "{} programs ({per_min:.0}/min), {} match, {} unsupported, {} failing ({} signatures)",
        t.programs,
        t.matches,
        t.unsupported.values().map(|(n, _)| n).sum::<u64>(),
        fails,
        t.failures.len()
    )
}

fn print_summary(t: &Tally, elapsed: Duration, o: &RunOpts) {
    println!(
        "\n== hlo-difftest summary ({:.1} min, profile {}, seeds from {}) ==",
        elapsed.as_secs_f64() / 60.0,
        o.profile,
        o.seed
    );
    println!("{}", progress(t, elapsed));
    println!("device runs: {} (pipeline + direct forms); generator draws without a program: {}", t.modes, t.invalid);
    if !t.unsupported.is_empty() {
        println!("unsupported on Vulkan, by op:");
        for (op, (n, first)) in &t.unsupported {
            let first: String = first.chars().take(120).collect();
            println!("  {n:6}  {op}: {first}");
        }
    }
    if !t.skipped.is_empty() {
        println!("skipped (interpreter cannot evaluate):");
        for (why, n) in &t.skipped {
            println!("  {n:6}  {why}");
        }
    }
    if t.failures.is_empty() {
        println!("failures: none");
    } else {
        println!("failures by signature:");
        for (sig, (n, saved, detail)) in &t.failures {
            println!("  {n:6}  {sig}");
            println!("          {}", saved.as_deref().unwrap_or("(already in the corpus)"));
            let short: String = detail.chars().take(200).collect();
            println!("          {short}");
        }
    }
    println!("ops covered (programs containing each):");
    let mut line = String::new();
    for (op, n) in &t.ops {
        line.push_str(&format!("{op} {n}, "));
    }
    println!("  {}", line.trim_end_matches(", "));
}

fn mode_of(saved: &corpus::Saved) -> Mode {
    saved.header.mode.unwrap_or(Mode::Pipeline)
}

fn replay(files: &[PathBuf], validation: bool) -> Result<ExitCode> {
    if files.is_empty() {
        bail!("replay: name at least one .hlo file");
    }
    let h = Harness::new(validation)?;
    let mut failed = 0;
    for f in files {
        let saved = corpus::load(f)?;
        let outcome = h.check(&saved.module, mode_of(&saved), &saved.inputs);
        match &outcome {
            Outcome::Match => println!("{}: match", f.display()),
            Outcome::Unsupported { op, reason } => println!("{}: unsupported {op}: {reason}", f.display()),
            Outcome::Skip { reason } => println!("{}: skipped: {reason}", f.display()),
            Outcome::Fail(fl) => {
                failed += 1;
                println!("{}: {} ({}): {}", f.display(), fl.kind.name(), fl.mode.name(), fl.detail);
            }
        }
    }
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn shrink_file(file: &Path, secs: u64, validation: bool) -> Result<ExitCode> {
    let h = Harness::new(validation)?;
    let saved = corpus::load(file)?;
    let mode = mode_of(&saved);
    let Outcome::Fail(f) = h.check(&saved.module, mode, &saved.inputs) else {
        println!("{}: does not fail (any more); nothing to shrink", file.display());
        return Ok(ExitCode::SUCCESS);
    };
    let (shrunk, failure) = shrink_failure(&h, &saved.module, &saved.inputs, f.kind, mode, budget(secs), &mut || {});
    let header = Header {
        kind: Some(failure.kind),
        mode: Some(mode),
        signature: signature(failure.kind, &shrunk.module),
        max_err: Some(failure.max_err),
        detail: failure.detail,
        ..saved.header.clone()
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    let path = corpus::save(dir, &header, &shrunk.module, &shrunk.inputs)?;
    println!("{} -> {}", file.display(), path.display());
    Ok(ExitCode::SUCCESS)
}
