//! Conformance: every `hlo-samples/` case through the pipeline, this compiler and lavapipe,
//! compared with JAX's own outputs (`out_K.npy`): integers exactly, floats by relative L2
//! error within the sample's tolerance (`meta.json`).
//!
//! Samples using ops the Vulkan path does not support are listed with the op, and the list
//! must equal [`EXPECTED_UNSUPPORTED`], so that both regressions and newly supported samples show up.

mod common;
use common::*;

/// Samples this backend cannot run yet, with the op that stops them.
const EXPECTED_UNSUPPORTED: &[(&str, &str)] = &[];

#[test]
fn samples_vulkan() {
    let report = run_samples(&["module.hlo", "module.opt.hlo"], parse_and_fuse);
    assert_report(&report, EXPECTED_UNSUPPORTED);
}
