//! A PJRT plugin: JAX loads `libhlo_pjrt.so`, calls [`GetPjrtApi`], and runs `jax.jit` on any
//! Vulkan device through this compiler.
//!
//! JAX hands `PJRT_Client_Compile` a StableHLO module (a portable artifact, MLIR bytecode of
//! VHLO, or text); `hlo-stablehlo` reads it into an `hlo_ir::Module`, `hlo-passes` and
//! `hlo-spirv` compile it as `hlo-run` does, and `hlo-vulkan` builds and runs it.
//! A `PJRT_Buffer` is a device array of the runtime: it stays on the device between calls.
//!
//! One client has one device (the Vulkan device `HLO_VULKAN_DEVICE` picks) with one memory.
//! Work completes before the call that started it returns, so every event is ready when made.
//!
//! Layout: `ffi.rs` mirrors the C structs, `api.rs` is the table and its `extern "C"` entries,
//! `client.rs` the objects behind the handles, `types.rs` the element type codes.

pub mod api;
pub mod client;
pub mod error;
pub mod ffi;
pub mod types;

pub use api::{api, Api};

/// The plugin's entry point, found by `dlsym`: the process-wide `PJRT_Api` table.
#[no_mangle]
pub extern "C" fn GetPjrtApi() -> *const Api {
    match std::panic::catch_unwind(api::api) {
        Ok(api) => api,
        Err(_) => std::ptr::null(),
    }
}
