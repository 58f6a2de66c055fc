//! Differential testing of the Vulkan path against the reference interpreter.
//!
//! ```text
//!  seed ──gen──▶ Case (module + inputs) ──exec──▶ interpreter outputs ─┐
//!                    │                      └──▶ Vulkan (pipeline) ────┼─compare─▶ Outcome
//!                    └──fuse (XLA's fused form)──▶ Vulkan (direct) ────┘              │
//!                                                           failure ──shrink──▶ corpus (found/)
//! ```
//!
//! - [`gen`]: random but valid programs from a seed and a [`gen::Profile`], at shapes that
//!   straddle the code generator's thresholds; [`inputs`]: seeded data, tame or special.
//! - [`exec`]: one Vulkan context for every program, the same library calls as `hlo-run`,
//!   panics caught; [`compare`]: exact where the program is exact, otherwise a tolerance
//!   that grows with the number of terms summed; [`magnitude`]: the program that bounds the
//!   terms of a sum that cancelled.
//! - [`fuse`]: the program rewritten into `fusion` instructions, compiled without our pipeline.
//! - [`shrink`]: delta debugging of a failing program while the same failure kind persists.
//! - [`corpus`]: saved programs (`found/`, `regressions/`) as HLO text plus `.npz` inputs.
//!
//! The binary (`hlo-difftest run|replay|shrink|promote|gen`) runs long sessions under a
//! supervising process that turns hangs and aborts into findings; `tests/ci_slice.rs` runs a
//! fixed-seed slice in CI and `tests/regressions.rs` replays `regressions/`.
//!
//! Like `hlo-run` and `xtask`, this crate is a tool: it reads and writes its corpus folders.
#![forbid(unsafe_code)]

pub mod compare;
pub mod corpus;
pub mod edit;
pub mod exec;
pub mod fuse;
pub mod gen;
pub mod inputs;
pub mod magnitude;
pub mod shrink;

use exec::{FailKind, Failure, Harness, Mode, Outcome};
use gen::Case;
use hlo_ir::Module;
use hlo_run::npy::HostArray;
use shrink::{Budget, Program};

/// What running one case found.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The first failure, if any, with the program that showed it (the fused form for
    /// [`Mode::Direct`]).
    pub failure: Option<(Failure, Module)>,
    /// Every outcome, pipeline mode first.
    pub outcomes: Vec<Outcome>,
}

impl Verdict {
    /// The outcome that sums the case up: the failure, else an unsupported op, else a skip, else a match.
    pub fn summary(&self) -> Outcome {
        if let Some((f, _)) = &self.failure {
            return Outcome::Fail(f.clone());
        }
        let pick = |want: fn(&Outcome) -> bool| self.outcomes.iter().find(|o| want(o)).cloned();
        pick(|o| matches!(o, Outcome::Unsupported { .. }))
            .or_else(|| pick(|o| matches!(o, Outcome::Skip { .. })))
            .unwrap_or(Outcome::Match)
    }
}

/// Runs a case: the interpreter once, then Vulkan through the pipeline and, when the case
/// asks for it and the program has a fused form, that form directly.
pub fn run_case(h: &Harness, case: &Case) -> Verdict {
    let want = match h.reference(&case.module, &case.inputs) {
        Ok(want) => want,
        Err(outcome) => {
            let failure = match &outcome {
                Outcome::Fail(f) => Some((f.clone(), case.module.clone())),
                _ => None,
            };
            return Verdict { failure, outcomes: vec![outcome] };
        }
    };
    let mut outcomes = Vec::new();
    let mut failure = None;
    let first = h.device_check(&case.module, Mode::Pipeline, &case.inputs, &want);
    if let Outcome::Fail(f) = &first {
        failure = Some((f.clone(), case.module.clone()));
    }
    outcomes.push(first);
    if case.direct {
        if let Some(fused) = fuse::fuse_direct(&case.module) {
            let direct = h.direct_check(&fused, &case.inputs, &want);
            if let (Outcome::Fail(f), None) = (&direct, &failure) {
                failure = Some((f.clone(), fused));
            }
            outcomes.push(direct);
        }
    }
    Verdict { failure, outcomes }
}

/// A failure's signature: its kind and the ops of the (shrunk) program, e.g.
/// `mismatch[dot,reduce]`. The CI slice's allow-list is keyed by it.
pub fn signature(kind: FailKind, module: &Module) -> String {
    format!("{}[{}]", kind.name(), edit::op_names(module).join(","))
}

/// Whether `outcome` is the same kind of failure as `kind` (in the same mode).
pub fn same_failure(outcome: &Outcome, kind: FailKind, mode: Mode) -> bool {
    matches!(outcome, Outcome::Fail(f) if f.kind == kind && f.mode == mode)
}

/// Shrinks a program that fails with `kind` in `mode` (for [`Mode::Direct`], `module` is the
/// fused form and shrinks as it is); `on_try` is called before each candidate run.
pub fn shrink_failure(
    h: &Harness,
    module: &Module,
    inputs: &[HostArray],
    kind: FailKind,
    mode: Mode,
    budget: Budget,
    on_try: &mut dyn FnMut(),
) -> (Program, Failure) {
    let start = Program { module: module.clone(), inputs: inputs.to_vec() };
    let mut last: Option<Failure> = None;
    let mut still_fails = |p: &Program| {
        let outcome = h.check(&p.module, mode, &p.inputs);
        let same = same_failure(&outcome, kind, mode);
        if let (true, Outcome::Fail(f)) = (same, outcome) {
            last = Some(f);
        }
        same
    };
    let shrunk = shrink::shrink(start, &mut still_fails, budget, on_try);
    let failure = match last {
        Some(f) => f,
        None => match h.check(&shrunk.module, mode, &shrunk.inputs) {
            Outcome::Fail(f) => f,
            _ => Failure { kind, mode, detail: "did not reproduce after shrinking".into(), max_err: f64::NAN },
        },
    };
    (shrunk, failure)
}
