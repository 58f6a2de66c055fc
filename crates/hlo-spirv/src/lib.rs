//! Lowers fused HLO kernels to naga modules, SPIR-V and WGSL, and builds the device program.
