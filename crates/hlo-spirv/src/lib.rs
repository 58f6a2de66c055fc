//! Lowers fused HLO modules to SPIR-V compute kernels and a device [`Program`].
//!
//! ```text
//!   Module (fused entry) ──program.rs──▶ per instruction: alias | buffer | kernel(s)
//!                                            │
//!                     emit::classify ────────┘  Loop | ReduceRow/Tree | Scatter | ElementwiseLoop
//!                                            │
//!          emit/<kind>.rs over emit/elemental.rs ──▶ naga::Module ──Validator──▶ spv::write_vec
//! ```
//! [`compile`] walks the entry computation of a module that has been through
//! the fusion pipeline (or an XLA post-optimisation dump, which has the same
//! form) and returns a [`Compiled`]: the [`Program`] for a runtime, how host
//! arrays map to device buffers ([`HostIo`]), and what each kernel computes.
//!
//! Every generated naga module passes `naga::valid::Validator` before its
//! SPIR-V is written; a failure is a bug in this crate and is reported as
//! [`CodegenError::Internal`] with naga's message.
//!
//! Architecture invariant: this crate knows nothing about Vulkan or ash; it
//! only produces SPIR-V words and a [`Program`] (pure data).
#![forbid(unsafe_code)]
// Index arithmetic over several parallel per-dimension vectors reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

mod builder;
mod coverage;
mod emit;
mod error;
mod hostio;
mod minifloat;
mod program;
mod spirv_exact;
mod spirv_texels;
mod spirv_words;
mod target;

pub use coverage::{coverage, refusal_on, supports, Coverage};
pub use emit::KernelKind;
pub use error::CodegenError;
pub use hlo_program::Program;
pub use hostio::{DeviceStorage, HostIo};
pub use target::{FmaMode, Target, TileTable};

use hlo_ir::Module;
use std::fmt::Write;

/// What one kernel of a [`Compiled`] program computes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelInfo {
    pub name: String,
    pub kind: KernelKind,
    /// The HLO instructions the kernel evaluates.
    pub sources: Vec<String>,
    /// Why this emitter: the hero and the strategy chosen, or why a faster one was declined.
    pub why: String,
    /// For a blocked dot or convolution: the key of its block size in [`TileTable`].
    pub tile_key: Option<String>,
}

/// A compiled module: the device program plus the host-side facts needed to run it.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub program: Program,
    /// One per flattened entry parameter leaf, in order.
    pub inputs: Vec<HostIo>,
    /// One per flattened result leaf, in order.
    pub outputs: Vec<HostIo>,
    /// Parallel to `program.kernels`.
    pub kernels_info: Vec<KernelInfo>,
    modules: Vec<naga::Module>,
    buffer_info: Vec<program::BufferInfo>,
    target: Target,
}

/// Compiles a (fused) HLO module for `target`.
pub fn compile(module: &Module, target: &Target) -> Result<Compiled, CodegenError> {
    program::build(module, target)
}

/// The WGSL text of kernel `k` of `compiled` (from the same naga module as its SPIR-V).
pub fn kernel_wgsl(compiled: &Compiled, k: usize) -> String {
    compiled.kernel_wgsl(k)
}

impl Compiled {
    /// The WGSL text of kernel `k`.
    pub fn kernel_wgsl(&self, k: usize) -> String {
        self.modules.get(k).map(|m| builder::wgsl(m, &self.target)).unwrap_or_default()
    }

    /// All kernels as WGSL, each preceded by a comment naming it.
    pub fn wgsl(&self) -> String {
        let mut out = String::new();
        for (k, info) in self.kernels_info.iter().enumerate() {
            let _ = writeln!(out, "// kernel k{k} `{}` ({}): {}", info.name, info.kind, info.sources.join(", "));
            out.push_str(&self.kernel_wgsl(k));
            out.push('\n');
        }
        out
    }

    /// A readable description of kernels, buffers and steps (`hlo-run compile --emit plan`).
    pub fn plan_text(&self) -> String {
        use hlo_program::{BufferRole, Step};
        let p = &self.program;
        let mut out = String::new();
        let _ = writeln!(out, "kernels:");
        for (k, (kernel, info)) in p.kernels.iter().zip(&self.kernels_info).enumerate() {
            let access: Vec<&str> = kernel
                .bindings
                .iter()
                .map(|a| match a {
                    hlo_program::Access::Read => "r",
                    hlo_program::Access::Write => "w",
                    hlo_program::Access::ReadWrite => "rw",
                    hlo_program::Access::ReadTexels => "t",
                    hlo_program::Access::ReadWordTexels => "tw",
                })
                .collect();
            let _ = writeln!(
                out,
                "  k{k} {} `{}` workgroup={:?} bindings=[{}] spirv={} words",
                info.kind,
                kernel.name,
                kernel.workgroup_size,
                access.join(","),
                kernel.spirv.len()
            );
            if !info.why.is_empty() {
                let _ = writeln!(out, "      why: {}", info.why);
            }
        }
        let _ = writeln!(out, "buffers:");
        for (b, buf) in p.buffers.iter().enumerate() {
            let role = match &buf.role {
                BufferRole::Input(n) => format!("input({n})"),
                BufferRole::Constant(_) => "constant".to_string(),
                BufferRole::Temp => "temp".to_string(),
            };
            let ty = match self.buffer_info.get(b) {
                Some(i) => {
                    format!("{}[{}]", i.dtype, i.dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","))
                }
                None => String::new(),
            };
            let _ = writeln!(out, "  buf{b} {role} {ty} {} bytes `{}`", buf.size_bytes, buf.name);
        }
        let _ = writeln!(out, "steps:");
        for step in &p.steps {
            match step {
                Step::Dispatch(d) => {
                    let bufs: Vec<String> = d.buffers.iter().map(|b| b.to_string()).collect();
                    let _ = writeln!(out, "  dispatch {} groups={:?} ({})", d.kernel, d.groups, bufs.join(", "));
                }
                Step::Fill { buffer, word } => {
                    let _ = writeln!(out, "  fill {buffer} with {word:#010x}");
                }
                Step::Copy { src, dst, size_bytes } => {
                    let _ = writeln!(out, "  copy {src} -> {dst} ({size_bytes} bytes)");
                }
                // The compiler does not emit structured steps yet (issue 12); print them raw.
                Step::Loop(_) | Step::Conditional(_) => {
                    let _ = writeln!(out, "  {step:?}");
                }
            }
        }
        let outs: Vec<String> = p.outputs.iter().map(|b| b.to_string()).collect();
        let _ = writeln!(out, "outputs: {}", outs.join(", "));
        out
    }
}
