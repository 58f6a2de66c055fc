//! The Vulkan runtime: runs an [`hlo_program::Program`] with ash and gpu-allocator.
//!
//! ```text
//! Program ──validate──▶ buffers (liveness-shared arenas) ──▶ pipelines (+ disk cache) ──▶ one recorded
//!                                                                                        command buffer
//! run(inputs): memcpy into mapped inputs ──▶ submit ──▶ wait (timeline semaphore) ──▶ read mapped outputs
//! ```
//!
//! - [`Context`] (in `context.rs`): loads Vulkan at run time, picks a device ([`DeviceSelector`]), enables every
//!   useful optional feature and reports them as [`DeviceCaps`], and optionally turns on the validation layer
//!   and collects its messages.
//! - [`Executable`] (in `executable.rs`): builds and records a program once, then replays it.
//! - [`DeviceArray`] (in `array.rs`): a buffer kept on the device between executions ([`Executable::upload`],
//!   [`Executable::execute`], [`Executable::execute_with`] with donation, [`DeviceArray::read`]); ordered by
//!   timeline semaphores, freed once the last submission that uses it has finished.
//! - [`Presenter`] (in `present.rs`): a window's swapchain, showing an image array converted on the device.
//! - `memory.rs` places buffers; `hazard.rs` decides where barriers go; `pipeline_cache.rs` keeps compiled
//!   pipelines on disk.
//!
//! Invariants:
//! - Architecture Invariant: this crate sees only `hlo-program` (SPIR-V words, bindings, steps), never HLO.
//! - Every Vulkan object has exactly one owner that destroys it; an [`Executable`] holds an `Arc<Context>`,
//!   so the device outlives everything made from it, and gpu-allocator is dropped before `vkDestroyDevice`.
//! - The command buffer is recorded once at build time; a run only copies bytes and submits. With loops
//!   (`control.rs`) a run submits several recorded command buffers and reads a device-computed word between
//!   batches of a device loop, never inside one.
//! - A submission of an executable waits on its previous submission (timeline semaphore), and every host
//!   access to an executable's buffers waits for its last submission, so the safe API cannot race the device.
//! - Temporaries share memory only when their live ranges are disjoint; barriers consider that sharing.
//! - Bad input (a broken program, wrong input sizes, a device limit) is an error, never a panic.
//!
//! The only environment this crate reads is in [`ContextOptions::from_env`]; the only files it touches are the
//! pipeline cache in the directory the caller names.

mod array;
mod context;
mod control;
mod error;
mod executable;
mod hazard;
mod memory;
mod pipeline_cache;
mod present;

pub use array::{ArrayInput, DeviceArray};
pub use context::{
    list_devices, Context, ContextOptions, DeviceCaps, DeviceInfo, DeviceKind, DeviceSelector, HostTransfers,
    MemoryReport, Severity, SubgroupOps, ValidationMessage,
};
pub use error::{Result, VulkanError, INSTALL_HINT, VALIDATION_INSTALL_HINT};
pub use executable::{BuildOptions, BuildStats, Executable, RunStats, StepTime, Ticket};
pub use present::{ImageLayout, ImageWords, PresentOptions, PresentTarget, Presented, Presenter};
