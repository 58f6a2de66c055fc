//! What the device can do, as far as code generation cares.

/// How XLA's contracted multiply-adds (an f32 add/subtract of a single-use product, which
/// XLA:CPU's LLVM turns into one fused multiply-add) are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FmaMode {
    /// The device's `fma`, rounded once (GPUs).
    Native,
    /// In f64: the product of two f32 is exact there, so only the sum rounds (then to f32).
    /// For devices whose `fma` is a multiply and an add, such as lavapipe; needs `shaderFloat64`.
    ViaF64,
    /// No contraction: a multiply and an add, as HLO's own semantics say.
    Unfused,
}

/// Device facts that change the generated code. The CLI fills this from the
/// Vulkan runtime's device capabilities (`hlo_vulkan::DeviceCaps`: the flags map one to one;
/// `subgroup_broadcast` is ballot support in compute; `fma` is [`FmaMode::ViaF64`] on a CPU
/// device such as lavapipe, whose `fma` rounds twice, and [`FmaMode::Native`] on GPUs);
/// tests use [`Target::lavapipe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `shaderInt64`: s64/u64 arithmetic and storage.
    pub shader_int64: bool,
    /// `shaderFloat64`: f64 arithmetic and storage.
    pub shader_float64: bool,
    /// `shaderInt16` (16-bit integers are widened to 32 bits on the device regardless).
    pub shader_int16: bool,
    /// `shaderFloat16` (f16 is stored widened to f32 regardless).
    pub float16: bool,
    /// `storageBuffer8BitAccess`.
    pub storage_8bit: bool,
    /// `storageBuffer16BitAccess`.
    pub storage_16bit: bool,
    /// Subgroup size reported by the device.
    pub subgroup_size: u32,
    /// Subgroup broadcasts (`VK_SUBGROUP_FEATURE_BALLOT_BIT`) in compute shaders: lets a
    /// reduction loop load each element once per subgroup instead of once per invocation.
    pub subgroup_broadcast: bool,
    /// `maxComputeWorkGroupSize`.
    pub max_workgroup_size: [u32; 3],
    /// `maxComputeWorkGroupInvocations`.
    pub max_workgroup_invocations: u32,
    /// `maxComputeSharedMemorySize` in bytes.
    pub max_shared_memory_bytes: u32,
    /// `maxStorageBufferRange` in bytes: no buffer may be larger.
    pub max_storage_buffer_range: u64,
    /// `shaderBufferFloat32AtomicAdd`.
    pub atomic_float_add: bool,
    /// `shaderBufferInt64Atomics`: 64-bit integer atomics on storage buffers (scatter-add of
    /// s64/u64 natively, other 64-bit combiners as a compare-exchange loop).
    pub int64_atomics: bool,
    /// How contracted multiply-adds are computed (lavapipe lowers `fma` to two roundings).
    pub fma: FmaMode,
    /// Flush subnormal arithmetic results where later arithmetic reads them, as XLA:CPU's FTZ
    /// does, so results equal JAX's even when intermediates underflow. Costs a compare and a
    /// select per intermediate on devices without a flush-to-zero mode (lavapipe: n-body 2.3x,
    /// Mandelbrot 1.35x); `false` flushes only values read from memory (`HLO_DENORMALS=fast`).
    pub flush_results: bool,
    /// Most loop iterations one invocation may run, all loops of the kernel together, on drivers
    /// that silently stop loops past a limit (lavapipe: 65,535). Kernels stay under it or check
    /// on the device that they did; `None`: no limit.
    pub max_loop_iterations: Option<u64>,
    /// `maxPerStageDescriptorStorageBuffers`: the most storage buffers one kernel may bind.
    pub max_storage_buffers: u32,
    /// The driver executes both sides of a divergent branch (lavapipe), so code keeps rare slow
    /// paths (big-argument `sin`) out of hot loops instead of branching around them.
    pub predicated_branches: bool,
    /// Where reading f32 data at a per-invocation index is cheaper through a uniform texel
    /// buffer than through a storage buffer, the device's `maxTexelBufferElements`; `None`
    /// elsewhere. On lavapipe a texel fetch is a vector gather, while a storage-buffer load at a
    /// varying index is a loop over the lanes with a bounds check per element (about 30
    /// instructions per lane for a vec4).
    pub texel_gathers: Option<u64>,
    /// Block sizes measured fastest on this device for particular blocked kernels (`hlo-run
    /// tune` keeps them in a cache file per device); kernels not in it take the defaults.
    pub tiles: TileTable,
}

/// Measured block sizes (`[rows, cols]` per invocation) of blocked dot and convolution kernels,
/// by the kernel's shape key ([`crate::KernelInfo::tile_key`]: `dot b1 r512 c512 k512`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TileTable {
    pub tiles: std::collections::BTreeMap<String, [u32; 2]>,
}

impl TileTable {
    /// The blocks `hlo-run tune` tries for each kernel: the default 16 x 4 and its neighbours.
    pub const CANDIDATES: [[u32; 2]; 9] =
        [[16, 4], [24, 4], [8, 4], [32, 2], [16, 2], [8, 2], [4, 4], [16, 1], [32, 4]];

    /// Whether a block is one the kernels accept (the `HLO_DOT_TILE` bounds).
    pub fn valid(tile: [u32; 2]) -> bool {
        (1..=64).contains(&tile[0]) && (1..=8).contains(&tile[1])
    }
}

impl Target {
    /// What Mesa's lavapipe (22.3) reports with 256-bit vectors (8-lane subgroups); the test
    /// machines have it. On CPUs with AVX-512 the runtime asks it for 512-bit vectors, and the
    /// device then reports 16-lane subgroups (`hlo_vulkan::Context`).
    pub fn lavapipe() -> Target {
        Target {
            shader_int64: true,
            shader_float64: true,
            shader_int16: true,
            float16: true,
            storage_8bit: true,
            storage_16bit: true,
            subgroup_size: 8,
            subgroup_broadcast: true,
            max_workgroup_size: [1024, 1024, 1024],
            max_workgroup_invocations: 1024,
            max_shared_memory_bytes: 32768,
            max_storage_buffer_range: 128 << 20,
            atomic_float_add: true,
            int64_atomics: true,
            fma: FmaMode::ViaF64,
            flush_results: true,
            max_loop_iterations: Some(65_535),
            max_storage_buffers: 32,
            predicated_branches: true,
            texel_gathers: Some(1 << 27),
            tiles: TileTable::default(),
        }
    }

    /// The Vulkan 1.2 minimum: no optional features.
    pub fn baseline() -> Target {
        Target {
            shader_int64: false,
            shader_float64: false,
            shader_int16: false,
            float16: false,
            storage_8bit: false,
            storage_16bit: false,
            subgroup_size: 1,
            subgroup_broadcast: false,
            max_workgroup_size: [128, 128, 64],
            max_workgroup_invocations: 128,
            max_shared_memory_bytes: 16384,
            max_storage_buffer_range: 128 << 20,
            atomic_float_add: false,
            int64_atomics: false,
            fma: FmaMode::Native,
            flush_results: true,
            max_loop_iterations: None,
            max_storage_buffers: 4,
            predicated_branches: false,
            texel_gathers: None,
            tiles: TileTable::default(),
        }
    }

    /// The workgroup width used by one-invocation-per-element kernels.
    pub(crate) fn loop_workgroup(&self) -> u32 {
        256.min(self.max_workgroup_invocations).min(self.max_workgroup_size[0]).max(1)
    }

    /// The naga validation capabilities this target allows.
    pub(crate) fn capabilities(&self) -> naga::valid::Capabilities {
        use naga::valid::Capabilities as C;
        // pack/unpack2x16float (f16 storage) are GLSL.std.450 instructions every Vulkan device has.
        let mut caps = C::SHADER_FLOAT16_IN_FLOAT32;
        if self.shader_int64 {
            caps |= C::SHADER_INT64;
        }
        if self.shader_float64 {
            caps |= C::FLOAT64;
        }
        if self.atomic_float_add {
            caps |= C::SHADER_FLOAT32_ATOMIC;
        }
        if self.int64_atomics && self.shader_int64 {
            caps |= C::SHADER_INT64_ATOMIC_ALL_OPS;
        }
        if self.subgroup_broadcast {
            caps |= C::SUBGROUP;
        }
        caps
    }

    /// The subgroup size staged reduction loops may rely on, if any.
    pub(crate) fn staging_lanes(&self) -> Option<u32> {
        let s = self.subgroup_size;
        (self.subgroup_broadcast && (2..=64).contains(&s) && s.is_power_of_two() && self.loop_workgroup() % s == 0)
            .then_some(s)
    }
}

impl Default for Target {
    fn default() -> Target {
        Target::lavapipe()
    }
}
