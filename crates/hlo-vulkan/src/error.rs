//! The one error type of the Vulkan runtime.
//!
//! Every fallible entry point returns [`VulkanError`].
//! Variants that the user can fix (no loader, no device, missing layer) carry the install line in their message,
//! because the CLI prints these messages as they are.

use ash::vk;
use hlo_program::ProgramError;

/// The Debian/Ubuntu packages that provide the Vulkan loader and a CPU device (lavapipe).
pub const INSTALL_HINT: &str = "apt-get install libvulkan1 mesa-vulkan-drivers";

/// The Debian/Ubuntu package that provides `VK_LAYER_KHRONOS_validation`.
pub const VALIDATION_INSTALL_HINT: &str = "apt-get install vulkan-validationlayers";

/// Shorthand used across the crate.
pub type Result<T, E = VulkanError> = std::result::Result<T, E>;

/// Everything that can go wrong between a [`hlo_program::Program`] and its outputs.
#[derive(Debug, thiserror::Error)]
pub enum VulkanError {
    /// `libvulkan.so.1` (the loader) could not be opened.
    #[error(
        "cannot load the Vulkan loader ({reason}); install one, e.g. `{INSTALL_HINT}` for the CPU device lavapipe"
    )]
    NoVulkanLoader { reason: String },
    /// The loader works but reports no physical device with Vulkan 1.2 and a compute queue.
    #[error("no usable Vulkan device (need Vulkan 1.2 with a compute queue){detail}; install a driver, e.g. `{INSTALL_HINT}` for the CPU device lavapipe")]
    NoDevice { detail: String },
    /// A [`crate::DeviceSelector`] matched none of the devices.
    #[error("no Vulkan device matches `{selector}`; available: {}", available.join(", "))]
    DeviceNotFound { selector: String, available: Vec<String> },
    /// The selected device lacks something this runtime cannot work without.
    #[error("device `{device}` does not support {what}")]
    MissingFeature { device: String, what: String },
    /// Validation was requested (`HLO_VULKAN_VALIDATION=1` or in tests) but the layer is not installed.
    #[error(
        "Vulkan validation was requested but {what} is not available; install it with `{VALIDATION_INSTALL_HINT}`"
    )]
    ValidationUnavailable { what: String },
    /// A Vulkan call returned an error code.
    #[error("{call} failed: {result}")]
    Vk { call: &'static str, result: vk::Result },
    /// gpu-allocator could not provide memory.
    #[error("cannot allocate device memory for {what}: {source}")]
    Alloc {
        what: String,
        #[source]
        source: gpu_allocator::AllocationError,
    },
    /// A buffer binding exceeds `maxStorageBufferRange` (or a device allocation limit).
    #[error("buffer `{name}` is {size} bytes, more than the device allows ({max} bytes, {limit})")]
    BufferTooLarge { name: String, size: u64, max: u64, limit: &'static str },
    /// The program is structurally broken; a compiler bug.
    #[error("invalid program: {0}")]
    InvalidProgram(#[from] ProgramError),
    /// A kernel cannot be turned into a pipeline on this device.
    #[error("kernel `{kernel}`: {reason}")]
    InvalidKernel { kernel: String, reason: String },
    /// A step cannot be recorded on this device (too many workgroups, copy out of range, ...).
    #[error("step {step}: {reason}")]
    InvalidStep { step: usize, reason: String },
    /// `run`/`upload_inputs` got the wrong number of inputs.
    #[error("expected {expected} inputs, got {found}")]
    InputCount { expected: usize, found: usize },
    /// An input has the wrong number of bytes.
    #[error("input {index} has {found} bytes, expected {expected}")]
    InputSize { index: usize, expected: u64, found: u64 },
    /// An output index, or the slice an output is read into, does not fit.
    #[error("output {index}: {reason}")]
    Output { index: usize, reason: String },
    /// The program is valid but asks for something this runtime cannot do.
    #[error("the program cannot run here: {reason}")]
    Unsupported { reason: String },
    /// A kernel found on the device that its result would be wrong (see `hlo_program::StatusBuffer`).
    #[error("kernel `{kernel}`: {message}")]
    DeviceCheckFailed { kernel: String, message: String },
    /// A parameter index given to a low-level API names no input buffer.
    #[error("input {index} does not exist (the program has {count} inputs)")]
    NoSuchInput { index: usize, count: usize },
    /// A [`crate::DeviceArray`] is read into a slice of another size.
    #[error("the device array has {expected} bytes, the destination {found}")]
    ArrayReadSize { expected: u64, found: u64 },
    /// An input array was made on another [`crate::Context`] (another device).
    #[error("input {index} is an array of another Vulkan context")]
    ForeignArray { index: usize },
    /// A donation (input/output alias) that cannot hold: no such output, another size, or a second donation.
    #[error("donating input {input} to output {output}: {reason}")]
    Donation { input: usize, output: usize, reason: String },
}

impl VulkanError {
    /// Wraps a failed Vulkan call; used as `.map_err(VulkanError::vk("vkFoo"))`.
    pub(crate) fn vk(call: &'static str) -> impl FnOnce(vk::Result) -> VulkanError {
        move |result| VulkanError::Vk { call, result }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_fixable_errors_say_what_to_install() {
        let loader = VulkanError::NoVulkanLoader { reason: "libvulkan.so.1: not found".into() };
        assert!(loader.to_string().contains("apt-get install libvulkan1 mesa-vulkan-drivers"));
        let device = VulkanError::NoDevice { detail: String::new() };
        assert!(device.to_string().contains("mesa-vulkan-drivers"));
        let layer = VulkanError::ValidationUnavailable { what: "the layer".into() };
        assert!(layer.to_string().contains("vulkan-validationlayers"));
    }
}
