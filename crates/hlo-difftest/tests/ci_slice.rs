//! The fixed-seed CI slice of the differential tester: a thousand small generated programs
//! (profile `ci`), Vulkan on lavapipe with the validation layer against the interpreter.
//!
//! A failing program is shrunk and printed with its signature. Failures whose signature is in
//! [`ALLOWED`] are known bugs not fixed yet: they are printed on every run but do not fail the
//! test. Keep the list short and honest; remove an entry when its bug is fixed (the test says
//! which entries no longer occur).

use hlo_difftest::exec::{Harness, Outcome};
use hlo_difftest::shrink::Budget;
use hlo_difftest::{gen, run_case, shrink_failure, signature};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Seeds `0..SEEDS` of the `ci` profile.
const SEEDS: u64 = 1000;

/// Known failures by signature, with the bug they show. Empty it as bugs get fixed.
const ALLOWED: &[(&str, &str)] = &[];

/// Shrinking stops after this many candidate runs, so that signatures do not depend on speed.
const SHRINK: Budget = Budget { max_tries: 150, max_time: Duration::from_secs(120) };

#[test]
fn ci_slice() {
    let h = Harness::new(true).expect("a Vulkan device (lavapipe) with the validation layer");
    let start = Instant::now();
    let (mut matched, mut unsupported, mut skipped) = (0, BTreeMap::<String, u32>::new(), 0);
    let mut failures: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for seed in 0..SEEDS {
        let Some(case) = gen::generate(seed, &gen::CI) else { continue };
        let verdict = run_case(&h, &case);
        match verdict.summary() {
            Outcome::Match => matched += 1,
            Outcome::Unsupported { op, .. } => *unsupported.entry(op).or_default() += 1,
            Outcome::Skip { .. } => skipped += 1,
            Outcome::Fail(f) => {
                let module = verdict.failure.map(|(_, m)| m).unwrap_or_else(|| case.module.clone());
                let (shrunk, failure) = shrink_failure(&h, &module, &case.inputs, f.kind, f.mode, SHRINK, &mut || {});
                let sig = signature(failure.kind, &shrunk.module);
                let text = format!(
                    "seed {seed} ({} mode, {} data): {}\n{}",
                    failure.mode.name(),
                    case.data.name(),
                    failure.detail,
                    hlo_ir::print_module(&shrunk.module)
                );
                failures.entry(sig).or_insert((seed, text));
            }
        }
    }
    println!(
        "ci slice: {SEEDS} seeds in {:.1} s: {matched} match, {skipped} skipped, unsupported {unsupported:?}",
        start.elapsed().as_secs_f64()
    );
    let (compared, unchecked, wild) = hlo_difftest::compare::leaf_counts();
    println!(
        "output leaves: {compared} compared, {unchecked} not compared (ill-conditioned or cancelled), {wild} not compared (sums of huge inputs)"
    );
    println!("allow-list ({} entries):", ALLOWED.len());
    for (sig, why) in ALLOWED {
        let seen = if failures.contains_key(*sig) { "seen" } else { "NOT SEEN: remove it" };
        println!("  {sig}: {why} [{seen}]");
    }
    let mut unexpected = Vec::new();
    for (sig, (seed, text)) in &failures {
        let allowed = ALLOWED.iter().any(|(s, _)| s == sig);
        println!("{} {sig} (first at seed {seed})\n{text}", if allowed { "allowed:" } else { "FAILURE:" });
        if !allowed {
            unexpected.push(sig.clone());
        }
    }
    assert!(unexpected.is_empty(), "failures not in the allow-list: {unexpected:?}");
}
