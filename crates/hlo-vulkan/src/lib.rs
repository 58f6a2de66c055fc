//! The Vulkan runtime: runs an hlo-program::Program with ash and gpu-allocator.
