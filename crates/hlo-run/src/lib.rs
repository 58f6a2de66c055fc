//! The `hlo-run` tool as a library: loading modules with diagnostics, matching
//! `.npy` inputs to entry parameters, running on a backend, timing.
//!
//! Architecture invariant: this crate (with `xtask` and `hlo-pjrt`) is the only
//! place that does file, environment or process IO; the pipeline crates are pure.

#![forbid(unsafe_code)]

pub mod backend;
pub mod bind;
pub mod commands;
pub mod feed;
pub mod frames;
pub mod inputs;
pub mod limits;
pub mod load;
pub mod npy;
pub mod present;
pub mod stats;

use std::fmt;

/// An error caused by the user's input (a malformed module, a wrong input
/// file): reported without a backtrace and with exit status 2.
#[derive(Debug)]
pub struct UserError(pub String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// Shorthand for returning a [`UserError`] through `anyhow`.
pub fn user_error(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError(msg.into()))
}

/// Logs go to stderr, filtered by `HLO_LOG` (e.g. `HLO_LOG=hlo_vulkan=debug`). By default warnings, except
/// winit's, which complains about harmless things of X servers without a screen (Xvfb's 0 mm display).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HLO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,winit=error"));
    // Colours only for a terminal: a log piped to a file or CI stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}
