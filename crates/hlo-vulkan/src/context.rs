//! Instance and device: loading Vulkan, choosing a device, enabling features, validation.
//!
//! A [`Context`] owns one `VkInstance`, one `VkDevice` with one queue, and the gpu-allocator `Allocator`.
//! It is shared (`Arc<Context>`) by every [`crate::Executable`] built on it, so an executable can never outlive
//! the device its objects belong to.
//!
//! Device choice: every physical device with Vulkan 1.2, a compute queue and timeline semaphores is usable;
//! the best kind wins (discrete > integrated > virtual > cpu) unless a [`DeviceSelector`] names one.
//! Every optional feature the code generator can use is enabled when the device has it, and the enabled set is
//! reported as [`DeviceCaps`] so the code generator never emits what the device cannot run.
//!
//! Validation: with [`ContextOptions::validation`] the Khronos validation layer (with synchronization
//! validation, which checks our barriers) and a `VK_EXT_debug_utils` messenger are enabled.
//! Every warning and error the messenger sees is kept, so tests can assert that there were none.
//!
//! Presentation: [`Context::with_presentation`] also enables the window-system instance extensions that a display
//! needs and `VK_KHR_swapchain`, for [`crate::Presenter`]; [`Context::new`] enables none of them, so headless runs
//! work where no window system is installed.
//!
//! Transfers: the context counts the bytes the host writes into and reads out of device memory (inputs, outputs,
//! arrays), so a caller can check that state stays on the device ([`Context::host_transfers`]).

use std::ffi::{c_void, CStr, CString};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ash::vk;
use gpu_allocator::vulkan::{Allocator, AllocatorCreateDesc};

use crate::error::{Result, VulkanError};

/// The name of the Khronos validation layer.
const VALIDATION_LAYER: &CStr = c"VK_LAYER_KHRONOS_validation";

/// Which physical device to use; the CLI fills it from `--device` or `HLO_VULKAN_DEVICE`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DeviceSelector {
    /// The best usable device (discrete > integrated > virtual > cpu).
    #[default]
    Auto,
    /// The device at this index in [`list_devices`] order.
    Index(usize),
    /// The first usable device whose name contains this text (case-insensitive).
    Name(String),
}

impl DeviceSelector {
    /// Reads a selector as a user writes it: empty or `auto` picks the best, digits an index, else a name.
    pub fn parse(text: &str) -> DeviceSelector {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("auto") {
            DeviceSelector::Auto
        } else if let Ok(index) = text.parse::<usize>() {
            DeviceSelector::Index(index)
        } else {
            DeviceSelector::Name(text.to_owned())
        }
    }
}

impl fmt::Display for DeviceSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSelector::Auto => f.write_str("auto"),
            DeviceSelector::Index(i) => write!(f, "{i}"),
            DeviceSelector::Name(name) => f.write_str(name),
        }
    }
}

/// How to create a [`Context`].
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    pub device: DeviceSelector,
    /// Enable `VK_LAYER_KHRONOS_validation` and collect its messages; an error if the layer is missing.
    pub validation: bool,
}

impl ContextOptions {
    /// Options from the environment: `HLO_VULKAN_DEVICE` (see [`DeviceSelector::parse`]) and
    /// `HLO_VULKAN_VALIDATION=1`.
    /// This is the only place the crate reads the environment; callers may override the fields afterwards.
    pub fn from_env() -> ContextOptions {
        let device = std::env::var("HLO_VULKAN_DEVICE").map(|s| DeviceSelector::parse(&s)).unwrap_or_default();
        let validation = std::env::var("HLO_VULKAN_VALIDATION")
            .map(|v| !matches!(v.trim(), "" | "0" | "false" | "no" | "off"))
            .unwrap_or(false);
        ContextOptions { device, validation }
    }
}

/// The kind of a physical device, in order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceKind {
    Discrete,
    Integrated,
    Virtual,
    Cpu,
    Other,
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceKind::Discrete => "discrete",
            DeviceKind::Integrated => "integrated",
            DeviceKind::Virtual => "virtual",
            DeviceKind::Cpu => "cpu",
            DeviceKind::Other => "other",
        })
    }
}

/// Subgroup operations available in compute shaders (`VkPhysicalDeviceSubgroupProperties`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubgroupOps {
    pub basic: bool,
    pub vote: bool,
    pub arithmetic: bool,
    pub ballot: bool,
    pub shuffle: bool,
    pub shuffle_relative: bool,
    pub clustered: bool,
    pub quad: bool,
}

/// What the code generator may use on this device: features that are enabled, and limits.
/// In a [`Context`] every `bool` is a feature that is both supported and enabled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceCaps {
    pub shader_int64: bool,
    pub shader_float64: bool,
    pub shader_int16: bool,
    pub shader_float16: bool,
    pub shader_int8: bool,
    /// 16-bit types in storage buffers (`storageBuffer16BitAccess`).
    pub storage_buffer_16bit: bool,
    /// 8-bit types in storage buffers (`storageBuffer8BitAccess`).
    pub storage_buffer_8bit: bool,
    /// 16-bit and 8-bit types in push constants.
    pub storage_push_constant_16bit: bool,
    pub storage_push_constant_8bit: bool,
    pub timeline_semaphore: bool,
    pub scalar_block_layout: bool,
    /// 64-bit integer atomics on storage buffers (`shaderBufferInt64Atomics`).
    pub buffer_int64_atomics: bool,
    /// `VK_EXT_shader_atomic_float`: atomic load/store/exchange of f32 on storage buffers.
    pub buffer_float32_atomics: bool,
    /// `VK_EXT_shader_atomic_float`: atomic add of f32 on storage buffers (scatter-add without a CAS loop).
    pub buffer_float32_atomic_add: bool,
    pub buffer_float64_atomic_add: bool,
    /// `VK_EXT_pipeline_creation_feedback` (core in 1.3): pipeline cache hits can be counted.
    pub pipeline_creation_feedback: bool,
    /// Subgroup size, and whether subgroup operations work in compute shaders at all.
    pub subgroup_size: u32,
    pub subgroup_in_compute: bool,
    pub subgroup_ops: SubgroupOps,
    pub max_storage_buffer_range: u64,
    pub min_storage_buffer_offset_alignment: u64,
    /// `minTexelBufferOffsetAlignment`: temps are placed at multiples of it too, so that any of
    /// them can be bound as a texel buffer.
    pub min_texel_buffer_offset_alignment: u64,
    pub max_memory_allocation_size: u64,
    /// `maxBufferSize` (Vulkan 1.3); `u64::MAX` when the device does not say.
    pub max_buffer_size: u64,
    pub max_compute_work_group_count: [u32; 3],
    pub max_compute_work_group_size: [u32; 3],
    pub max_compute_work_group_invocations: u32,
    pub max_compute_shared_memory_size: u32,
    pub max_push_constants_size: u32,
    pub max_per_stage_storage_buffers: u32,
    /// `maxPerStageDescriptorSampledImages` (uniform texel buffers count against it).
    pub max_per_stage_sampled_images: u32,
    /// Some memory type is device-local, host-visible and host-coherent, so buffers can be mapped (zero-copy).
    pub host_visible_device_local: bool,
    /// `timestampComputeAndGraphics`: compute queues can write GPU timestamps (used by profiling).
    pub timestamps: bool,
    /// Femtoseconds per timestamp tick (`timestampPeriod`, kept as an integer so caps stay `Eq`).
    pub timestamp_period_fs: u64,
    /// Most loop iterations one shader invocation may run, all loops together, where the driver
    /// stops loops silently past a limit: llvmpipe (lavapipe) ends every loop once 65,535
    /// back-edges have run in an invocation (its `LP_MAX_TGSI_LOOP_ITERATIONS`). `None`: no limit.
    pub max_shader_loop_iterations: Option<u64>,
    /// The driver runs both sides of a divergent branch, masking lanes off, instead of skipping
    /// a side no lane takes (llvmpipe's SIMD code), so a rarely taken slow path costs every time.
    pub predicated_branches: bool,
    /// `maxTexelBufferElements` where reads at per-invocation indices are faster through uniform
    /// texel buffers than storage buffers (llvmpipe gathers texels as vectors but loads storage
    /// buffers lane by lane); `None` elsewhere.
    pub texel_gathers: Option<u64>,
    /// The environment variable from which the driver takes how many worker threads run a
    /// dispatch's workgroups, read when an instance enumerates its devices (lavapipe:
    /// `LP_NUM_THREADS`, 0 running them on the submitting thread); `None` where there is none.
    pub worker_threads_variable: Option<&'static str>,
}

/// One physical device as [`list_devices`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Position in enumeration order; what [`DeviceSelector::Index`] refers to.
    pub index: usize,
    pub name: String,
    pub kind: DeviceKind,
    pub vendor_id: u32,
    pub device_id: u32,
    /// `(major, minor, patch)` of the device's Vulkan version.
    pub api_version: (u32, u32, u32),
    /// Raw `driverVersion`; its encoding is vendor specific.
    pub driver_version: u32,
    pub driver_name: String,
    pub driver_info: String,
    pub device_uuid: [u8; 16],
    pub pipeline_cache_uuid: [u8; 16],
    /// Why the runtime cannot use this device, if it cannot.
    pub unusable: Option<String>,
    /// What the device supports (all of which a [`Context`] enables).
    pub caps: DeviceCaps,
}

impl DeviceInfo {
    /// `#0 llvmpipe (LLVM 15.0.6, 256 bits) [cpu]`: the form used in error messages.
    pub fn short(&self) -> String {
        format!("#{} {} [{}]", self.index, self.name, self.kind)
    }
}

/// Severity of a collected validation message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Error,
}

/// A warning or error reported through `VK_EXT_debug_utils` (validation layer, loader or driver).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationMessage {
    pub severity: Severity,
    /// The VUID or message id name, e.g. `VUID-vkCmdDispatch-None-02697`.
    pub id: String,
    pub text: String,
}

impl fmt::Display for ValidationMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} [{}] {}", self.severity, self.id, self.text)
    }
}

/// Device memory the allocator holds, for leak checks and `--stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryReport {
    /// Bytes in live allocations.
    pub allocated_bytes: u64,
    /// Bytes in device memory blocks (allocations plus free space inside blocks).
    pub capacity_bytes: u64,
    pub n_allocations: usize,
}

type MessageSink = Mutex<Vec<ValidationMessage>>;

/// Owns the instance and the debug messenger; destroyed after everything made from it.
struct InstanceParts {
    entry: ash::Entry,
    instance: ash::Instance,
    debug: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
    /// Keeps the messenger's user data alive until the instance is gone.
    sink: Arc<MessageSink>,
    api_version: u32,
}

/// Owns the device and the allocator; destroyed before the instance.
struct DeviceParts {
    device: ash::Device,
    /// `None` only while being built or torn down; gpu-allocator must be dropped before `vkDestroyDevice`.
    allocator: Option<Mutex<Allocator>>,
}

/// Bytes copied between host and device memory so far, in each direction; see [`Context::host_transfers`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostTransfers {
    pub to_device: u64,
    pub to_host: u64,
}

impl HostTransfers {
    /// Both directions together.
    pub fn total(&self) -> u64 {
        self.to_device + self.to_host
    }

    /// What was copied since `earlier` (a reading of the same context).
    pub fn since(&self, earlier: HostTransfers) -> HostTransfers {
        HostTransfers {
            to_device: self.to_device.saturating_sub(earlier.to_device),
            to_host: self.to_host.saturating_sub(earlier.to_host),
        }
    }
}

/// An open Vulkan device with validation (optionally) and a memory allocator. See the module docs.
pub struct Context {
    // Field order is drop order: the device goes before the instance.
    device: DeviceParts,
    queue: Mutex<vk::Queue>,
    queue_family: u32,
    physical: vk::PhysicalDevice,
    /// Surface and swapchain extensions are enabled ([`Context::with_presentation`]).
    presentation: bool,
    to_device_bytes: AtomicU64,
    to_host_bytes: AtomicU64,
    debug_device: Option<ash::ext::debug_utils::Device>,
    info: DeviceInfo,
    caps: DeviceCaps,
    instance: InstanceParts,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("device", &self.info.short())
            .field("validation", &self.validation_enabled())
            .finish_non_exhaustive()
    }
}

/// Lists every physical device the loader reports, usable or not, with its capabilities.
pub fn list_devices() -> Result<Vec<DeviceInfo>> {
    let parts = InstanceParts::new(false, &[])?;
    let devices = enumerate(&parts)?;
    Ok(devices.into_iter().map(|(_, info)| info).collect())
}

impl Context {
    /// Loads Vulkan, picks a device and opens it, without any window-system extension.
    pub fn new(options: &ContextOptions) -> Result<Arc<Context>> {
        Context::open(options, None)
    }

    /// Like [`Context::new`], with what presenting to windows of `display` needs: its surface instance extensions
    /// and `VK_KHR_swapchain` (a device without it is not chosen).
    pub fn with_presentation(
        options: &ContextOptions,
        display: raw_window_handle::RawDisplayHandle,
    ) -> Result<Arc<Context>> {
        Context::open(options, Some(display))
    }

    fn open(options: &ContextOptions, display: Option<raw_window_handle::RawDisplayHandle>) -> Result<Arc<Context>> {
        let surface_extensions: &[*const std::ffi::c_char] = match display {
            Some(display) => {
                ash_window::enumerate_required_extensions(display).map_err(|result| VulkanError::Unsupported {
                    reason: format!("presenting to this kind of display ({display:?}): {result}"),
                })?
            }
            None => &[],
        };
        let instance = InstanceParts::new(options.validation, surface_extensions)?;
        let mut devices = enumerate(&instance)?;
        if display.is_some() {
            for (pd, info) in &mut devices {
                let has_swapchain = device_extensions(&instance.instance, *pd)
                    .iter()
                    .any(|e| e.as_c_str() == ash::khr::swapchain::NAME);
                if !has_swapchain && info.unusable.is_none() {
                    info.unusable = Some("no VK_KHR_swapchain, so it cannot present to a window".into());
                }
            }
        }
        let (physical, info) = choose(devices, &options.device)?;
        tracing::info!(device = %info.short(), driver = %info.driver_name, "selected Vulkan device");
        let queue_family = compute_queue_family(&instance.instance, physical)
            .ok_or_else(|| VulkanError::MissingFeature { device: info.name.clone(), what: "a compute queue".into() })?;
        let caps = info.caps.clone();
        let device = create_device(&instance, physical, queue_family, &caps, display.is_some())?;
        let mut device = DeviceParts { device, allocator: None };
        let allocator = Allocator::new(&AllocatorCreateDesc {
            instance: instance.instance.clone(),
            device: device.device.clone(),
            physical_device: physical,
            debug_settings: Default::default(),
            buffer_device_address: false,
            allocation_sizes: Default::default(),
        })
        .map_err(|source| VulkanError::Alloc { what: "the allocator".into(), source })?;
        device.allocator = Some(Mutex::new(allocator));
        // SAFETY: the queue family index was reported by the device and queue 0 was requested at creation.
        let queue = unsafe { device.device.get_device_queue(queue_family, 0) };
        let debug_device =
            instance.debug.as_ref().map(|_| ash::ext::debug_utils::Device::new(&instance.instance, &device.device));
        Ok(Arc::new(Context {
            device,
            queue: Mutex::new(queue),
            queue_family,
            physical,
            presentation: display.is_some(),
            to_device_bytes: AtomicU64::new(0),
            to_host_bytes: AtomicU64::new(0),
            debug_device,
            info,
            caps,
            instance,
        }))
    }

    /// Bytes the host has copied into and out of this device's memory so far: inputs, outputs and arrays, not
    /// the words a device loop's host decisions read. Differences of two readings tell what a stretch of work
    /// moved; a loop whose state stays on the device moves nothing.
    pub fn host_transfers(&self) -> HostTransfers {
        HostTransfers {
            to_device: self.to_device_bytes.load(Ordering::Relaxed),
            to_host: self.to_host_bytes.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_to_device(&self, bytes: u64) {
        self.to_device_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn count_to_host(&self, bytes: u64) {
        self.to_host_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Whether surface and swapchain extensions are enabled ([`Context::with_presentation`]).
    pub fn presentation_enabled(&self) -> bool {
        self.presentation
    }

    pub(crate) fn entry(&self) -> &ash::Entry {
        &self.instance.entry
    }

    pub(crate) fn instance(&self) -> &ash::Instance {
        &self.instance.instance
    }

    pub(crate) fn physical_device(&self) -> vk::PhysicalDevice {
        self.physical
    }

    /// The device this context runs on.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The features enabled on the device and its limits.
    pub fn caps(&self) -> &DeviceCaps {
        &self.caps
    }

    /// Whether the validation layer is active.
    pub fn validation_enabled(&self) -> bool {
        self.instance.debug.is_some()
    }

    /// Every warning and error reported so far (validation, loader, driver).
    pub fn validation_messages(&self) -> Vec<ValidationMessage> {
        lock(&self.instance.sink).clone()
    }

    /// Like [`Context::validation_messages`], but clears the list.
    pub fn take_validation_messages(&self) -> Vec<ValidationMessage> {
        std::mem::take(&mut *lock(&self.instance.sink))
    }

    /// How much device memory the allocator currently holds.
    pub fn memory_report(&self) -> MemoryReport {
        let report = self.allocator().generate_report();
        MemoryReport {
            allocated_bytes: report.total_allocated_bytes,
            capacity_bytes: report.total_capacity_bytes,
            n_allocations: report.allocations.len(),
        }
    }

    pub(crate) fn device(&self) -> &ash::Device {
        &self.device.device
    }

    pub(crate) fn queue_family(&self) -> u32 {
        self.queue_family
    }

    /// The queue, locked: `vkQueueSubmit` and `vkQueueWaitIdle` need external synchronization.
    pub(crate) fn queue(&self) -> MutexGuard<'_, vk::Queue> {
        lock(&self.queue)
    }

    pub(crate) fn allocator(&self) -> MutexGuard<'_, Allocator> {
        // The allocator is only `None` inside `DeviceParts::drop`, when no `&Context` exists any more.
        lock(self.device.allocator.as_ref().expect("allocator lives as long as the context"))
    }

    /// Gives a Vulkan object a name that validation messages and debuggers show; a no-op without validation.
    pub(crate) fn set_name<H: vk::Handle>(&self, handle: H, name: &str) {
        let Some(debug) = &self.debug_device else { return };
        let Ok(name) = CString::new(name.replace('\0', " ")) else { return };
        let info = vk::DebugUtilsObjectNameInfoEXT::default().object_handle(handle).object_name(&name);
        // SAFETY: `handle` is a live object of this device (callers name objects right after creating them).
        if let Err(err) = unsafe { debug.set_debug_utils_object_name(&info) } {
            tracing::debug!(%err, "vkSetDebugUtilsObjectNameEXT failed");
        }
    }
}

impl Drop for DeviceParts {
    fn drop(&mut self) {
        // SAFETY: every executable holds an `Arc<Context>`, so none is alive here; waiting makes sure no queue
        // work still references memory that the allocator is about to free.
        unsafe {
            let _ = self.device.device_wait_idle();
        }
        drop(self.allocator.take());
        // SAFETY: all child objects were destroyed by their owners and the allocator is gone (it frees its
        // memory blocks on drop, which needs the device).
        unsafe { self.device.destroy_device(None) };
    }
}

impl Drop for InstanceParts {
    fn drop(&mut self) {
        // SAFETY: the device made from this instance is destroyed (DeviceParts drops first), and the messenger
        // and instance are destroyed exactly once, messenger first.
        unsafe {
            if let Some((loader, messenger)) = self.debug.take() {
                loader.destroy_debug_utils_messenger(messenger, None);
            }
            self.instance.destroy_instance(None);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the data inconsistent (they guard handles and
    // append-only lists), so poisoning is ignored.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// llvmpipe (lavapipe) compiles shaders for 256-bit vectors unless `LP_NATIVE_VECTOR_WIDTH` says
/// otherwise, even on CPUs with AVX-512. There 512-bit vectors (16 lanes: a subgroup of 16) are
/// faster for most kernels: on the project's AMD EPYC, matmul_512 4.7 -> 3.2 ms, nbody_step_800
/// 1.30 -> 0.57 ms, cnn_train_step 3.7 -> 4.2 ms (docs/performance.md). Set once, before the
/// driver is loaded (it reads the variable when it starts), and only where the user has not set
/// it; other drivers ignore it.
fn prefer_wide_lavapipe_vectors() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(target_arch = "x86_64")]
        if std::env::var_os("LP_NATIVE_VECTOR_WIDTH").is_none()
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            std::env::set_var("LP_NATIVE_VECTOR_WIDTH", "512");
        }
    });
}

/// Stack of the threads the driver starts (lavapipe's queue thread JIT-compiles each shader
/// with LLVM at its first dispatch): LLVM's recursion grows with the kernel, and a kernel of
/// 610k SPIR-V words with 512-bit vectors went past glibc's default of 8 MB (the `ulimit -s`)
/// and segfaulted (difftest regression 24b8585e on a cold shader cache). Virtual memory,
/// committed only as used.
const DRIVER_THREAD_STACK: usize = 128 << 20;

/// Raises the default stack of threads created from now on (glibc's
/// `pthread_setattr_default_np`), before the driver is loaded and starts its threads.
fn roomy_driver_thread_stacks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            /// `pthread_attr_t`: 56 bytes on 64-bit glibc, opaque; 64 bytes of room, aligned.
            #[repr(C, align(16))]
            struct Attr([u8; 64]);
            extern "C" {
                fn pthread_getattr_default_np(attr: *mut Attr) -> i32;
                fn pthread_setattr_default_np(attr: *const Attr) -> i32;
                fn pthread_attr_getstacksize(attr: *const Attr, size: *mut usize) -> i32;
                fn pthread_attr_setstacksize(attr: *mut Attr, size: usize) -> i32;
                fn pthread_attr_destroy(attr: *mut Attr) -> i32;
            }
            let mut attr = Attr([0; 64]);
            let mut size = 0usize;
            // SAFETY: glibc's documented calls on an attribute object it initialises itself
            // (`pthread_getattr_default_np`) and that is destroyed after use; a failure leaves the
            // default as it was.
            unsafe {
                if pthread_getattr_default_np(&mut attr) != 0 {
                    return;
                }
                if pthread_attr_getstacksize(&attr, &mut size) == 0
                    && size < DRIVER_THREAD_STACK
                    && pthread_attr_setstacksize(&mut attr, DRIVER_THREAD_STACK) == 0
                {
                    pthread_setattr_default_np(&attr);
                }
                pthread_attr_destroy(&mut attr);
            }
        });
    }
}

impl InstanceParts {
    /// `surface_extensions`: what presenting to a display needs (empty when headless).
    fn new(validation: bool, surface_extensions: &[*const std::ffi::c_char]) -> Result<InstanceParts> {
        prefer_wide_lavapipe_vectors();
        roomy_driver_thread_stacks();
        // SAFETY: loading libvulkan runs its initialisers; the loader is a well-behaved system library.
        let entry =
            unsafe { ash::Entry::load() }.map_err(|err| VulkanError::NoVulkanLoader { reason: err.to_string() })?;
        // SAFETY: plain query through a loaded entry.
        let loader_version = unsafe { entry.try_enumerate_instance_version() }
            .map_err(VulkanError::vk("vkEnumerateInstanceVersion"))?
            .unwrap_or(vk::API_VERSION_1_0);
        if loader_version < vk::API_VERSION_1_2 {
            return Err(VulkanError::NoDevice {
                detail: format!(" (the Vulkan loader only supports {})", version_string(loader_version)),
            });
        }
        let api_version = loader_version.min(vk::API_VERSION_1_3);

        // SAFETY: plain queries through a loaded entry.
        let available_exts = unsafe { entry.enumerate_instance_extension_properties(None) }
            .map_err(VulkanError::vk("vkEnumerateInstanceExtensionProperties"))?;
        let has_ext = |exts: &[vk::ExtensionProperties], name: &CStr| {
            exts.iter().any(|e| e.extension_name_as_c_str().is_ok_and(|n| n == name))
        };

        let mut layers: Vec<*const std::ffi::c_char> = Vec::new();
        let mut extensions: Vec<*const std::ffi::c_char> = Vec::new();
        let mut flags = vk::InstanceCreateFlags::empty();
        if has_ext(&available_exts, ash::khr::portability_enumeration::NAME) {
            // MoltenVK devices are only listed when the application opts in.
            extensions.push(ash::khr::portability_enumeration::NAME.as_ptr());
            flags |= vk::InstanceCreateFlags::ENUMERATE_PORTABILITY_KHR;
        }
        extensions.extend_from_slice(surface_extensions);
        let mut sync_validation = false;
        if validation {
            // SAFETY: plain query through a loaded entry.
            let available_layers = unsafe { entry.enumerate_instance_layer_properties() }
                .map_err(VulkanError::vk("vkEnumerateInstanceLayerProperties"))?;
            if !available_layers.iter().any(|l| l.layer_name_as_c_str().is_ok_and(|n| n == VALIDATION_LAYER)) {
                return Err(VulkanError::ValidationUnavailable {
                    what: "the layer VK_LAYER_KHRONOS_validation".into(),
                });
            }
            layers.push(VALIDATION_LAYER.as_ptr());
            // SAFETY: plain query; the layer name is a valid C string.
            let layer_exts = unsafe { entry.enumerate_instance_extension_properties(Some(VALIDATION_LAYER)) }
                .map_err(VulkanError::vk("vkEnumerateInstanceExtensionProperties"))?;
            let debug_utils = ash::ext::debug_utils::NAME;
            if !has_ext(&available_exts, debug_utils) && !has_ext(&layer_exts, debug_utils) {
                return Err(VulkanError::ValidationUnavailable { what: "the extension VK_EXT_debug_utils".into() });
            }
            extensions.push(debug_utils.as_ptr());
            if has_ext(&layer_exts, ash::ext::validation_features::NAME) {
                extensions.push(ash::ext::validation_features::NAME.as_ptr());
                sync_validation = true;
            }
        }

        let sink: Arc<MessageSink> = Arc::new(Mutex::new(Vec::new()));
        let app_info = vk::ApplicationInfo::default()
            .application_name(c"hlo-vulkan")
            .engine_name(c"hlo-vulkan")
            .api_version(api_version);
        let mut messenger_info = messenger_create_info(&sink);
        let enabled_features = [vk::ValidationFeatureEnableEXT::SYNCHRONIZATION_VALIDATION];
        let mut validation_features =
            vk::ValidationFeaturesEXT::default().enabled_validation_features(&enabled_features);
        let mut create_info = vk::InstanceCreateInfo::default()
            .flags(flags)
            .application_info(&app_info)
            .enabled_layer_names(&layers)
            .enabled_extension_names(&extensions);
        if validation {
            // Chained so that messages from vkCreateInstance/vkDestroyInstance are caught too.
            create_info = create_info.push_next(&mut messenger_info);
            if sync_validation {
                create_info = create_info.push_next(&mut validation_features);
            }
        }
        // SAFETY: every pointer in `create_info` points into locals that outlive the call; the messenger's user
        // data (`sink`) is kept alive by the returned InstanceParts until after vkDestroyInstance.
        let instance = unsafe { entry.create_instance(&create_info, None) }.map_err(|result| {
            // The loader answers INCOMPATIBLE_DRIVER when it finds no driver (ICD) at all.
            if result == vk::Result::ERROR_INCOMPATIBLE_DRIVER {
                VulkanError::NoDevice { detail: " (the Vulkan loader found no driver)".into() }
            } else {
                VulkanError::vk("vkCreateInstance")(result)
            }
        })?;
        let mut parts = InstanceParts { entry, instance, debug: None, sink, api_version };
        if validation {
            let loader = ash::ext::debug_utils::Instance::new(&parts.entry, &parts.instance);
            let info = messenger_create_info(&parts.sink);
            // SAFETY: the extension was enabled on this instance; user data outlives the messenger (see above).
            let messenger = unsafe { loader.create_debug_utils_messenger(&info, None) }
                .map_err(VulkanError::vk("vkCreateDebugUtilsMessengerEXT"))?;
            parts.debug = Some((loader, messenger));
        }
        Ok(parts)
    }
}

fn messenger_create_info(sink: &Arc<MessageSink>) -> vk::DebugUtilsMessengerCreateInfoEXT<'static> {
    vk::DebugUtilsMessengerCreateInfoEXT::default()
        .message_severity(
            vk::DebugUtilsMessageSeverityFlagsEXT::WARNING
                | vk::DebugUtilsMessageSeverityFlagsEXT::ERROR
                | vk::DebugUtilsMessageSeverityFlagsEXT::INFO,
        )
        .message_type(
            vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
        )
        .pfn_user_callback(Some(debug_callback))
        .user_data(Arc::as_ptr(sink) as *mut c_void)
}

/// Receives every debug-utils message: logs it, and keeps warnings and errors in the sink.
unsafe extern "system" fn debug_callback(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    _types: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    user_data: *mut c_void,
) -> vk::Bool32 {
    if data.is_null() || user_data.is_null() {
        return vk::FALSE;
    }
    // SAFETY: the layer passes a valid callback-data struct for the duration of the call, and `user_data` is the
    // `Arc<MessageSink>` pointer registered in `messenger_create_info`, alive until the instance is destroyed.
    let (data, sink) = unsafe { (&*data, &*(user_data as *const MessageSink)) };
    // SAFETY: the strings in `data` are valid NUL-terminated strings (or null) for the duration of the call.
    let (id, text) = unsafe {
        (
            data.message_id_name_as_c_str().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            data.message_as_c_str().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        )
    };
    let severity = if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::ERROR) {
        tracing::error!(target: "vulkan", %id, "{text}");
        Severity::Error
    } else if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::WARNING) {
        tracing::warn!(target: "vulkan", %id, "{text}");
        Severity::Warning
    } else {
        tracing::debug!(target: "vulkan", %id, "{text}");
        return vk::FALSE;
    };
    lock(sink).push(ValidationMessage { severity, id, text });
    vk::FALSE
}

/// Feature structs as the device reports them; also what `create_device` enables.
#[derive(Default)]
struct Features {
    core: vk::PhysicalDeviceFeatures,
    v11: vk::PhysicalDeviceVulkan11Features<'static>,
    v12: vk::PhysicalDeviceVulkan12Features<'static>,
    atomic_float: vk::PhysicalDeviceShaderAtomicFloatFeaturesEXT<'static>,
}

fn enumerate(parts: &InstanceParts) -> Result<Vec<(vk::PhysicalDevice, DeviceInfo)>> {
    // SAFETY: plain query on a live instance.
    let physicals = unsafe { parts.instance.enumerate_physical_devices() }
        .map_err(VulkanError::vk("vkEnumeratePhysicalDevices"))?;
    Ok(physicals.into_iter().enumerate().map(|(index, pd)| (pd, query_device(parts, pd, index))).collect())
}

fn device_extensions(instance: &ash::Instance, pd: vk::PhysicalDevice) -> Vec<CString> {
    // SAFETY: plain query on a physical device of this instance.
    let exts = unsafe { instance.enumerate_device_extension_properties(pd) }.unwrap_or_default();
    exts.iter().filter_map(|e| e.extension_name_as_c_str().ok().map(CStr::to_owned)).collect()
}

fn query_device(parts: &InstanceParts, pd: vk::PhysicalDevice, index: usize) -> DeviceInfo {
    let instance = &parts.instance;
    // SAFETY: plain query on a physical device of this instance.
    let props = unsafe { instance.get_physical_device_properties(pd) };
    let name = props.device_name_as_c_str().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let kind = match props.device_type {
        vk::PhysicalDeviceType::DISCRETE_GPU => DeviceKind::Discrete,
        vk::PhysicalDeviceType::INTEGRATED_GPU => DeviceKind::Integrated,
        vk::PhysicalDeviceType::VIRTUAL_GPU => DeviceKind::Virtual,
        vk::PhysicalDeviceType::CPU => DeviceKind::Cpu,
        _ => DeviceKind::Other,
    };
    let version = props.api_version;
    let mut info = DeviceInfo {
        index,
        name,
        kind,
        vendor_id: props.vendor_id,
        device_id: props.device_id,
        api_version: (vk::api_version_major(version), vk::api_version_minor(version), vk::api_version_patch(version)),
        driver_version: props.driver_version,
        driver_name: String::new(),
        driver_info: String::new(),
        device_uuid: [0; 16],
        pipeline_cache_uuid: props.pipeline_cache_uuid,
        unusable: None,
        caps: DeviceCaps::default(),
    };
    let limits = &props.limits;
    let caps = &mut info.caps;
    caps.max_storage_buffer_range = limits.max_storage_buffer_range as u64;
    caps.min_storage_buffer_offset_alignment = limits.min_storage_buffer_offset_alignment.max(4);
    caps.min_texel_buffer_offset_alignment = limits.min_texel_buffer_offset_alignment.max(4);
    caps.max_compute_work_group_count = limits.max_compute_work_group_count;
    caps.max_compute_work_group_size = limits.max_compute_work_group_size;
    caps.max_compute_work_group_invocations = limits.max_compute_work_group_invocations;
    caps.max_compute_shared_memory_size = limits.max_compute_shared_memory_size;
    caps.max_push_constants_size = limits.max_push_constants_size;
    caps.max_per_stage_storage_buffers = limits.max_per_stage_descriptor_storage_buffers;
    caps.max_per_stage_sampled_images = limits.max_per_stage_descriptor_sampled_images;
    caps.timestamps = limits.timestamp_compute_and_graphics == vk::TRUE;
    caps.timestamp_period_fs = (limits.timestamp_period as f64 * 1e6).round() as u64;
    caps.max_memory_allocation_size = u64::MAX;
    caps.max_buffer_size = u64::MAX;

    // SAFETY: plain query on a physical device of this instance.
    let memory = unsafe { instance.get_physical_device_memory_properties(pd) };
    let zero_copy = vk::MemoryPropertyFlags::DEVICE_LOCAL
        | vk::MemoryPropertyFlags::HOST_VISIBLE
        | vk::MemoryPropertyFlags::HOST_COHERENT;
    caps.host_visible_device_local =
        memory.memory_types_as_slice().iter().any(|t| t.property_flags.contains(zero_copy));

    if version < vk::API_VERSION_1_2 || parts.api_version < vk::API_VERSION_1_2 {
        info.unusable = Some(format!("Vulkan {} < 1.2", version_string(version)));
        return info;
    }
    if compute_queue_family(instance, pd).is_none() {
        info.unusable = Some("no compute queue".into());
    }
    let use_13 = version >= vk::API_VERSION_1_3 && parts.api_version >= vk::API_VERSION_1_3;

    let exts = device_extensions(instance, pd);
    let has_ext = |name: &CStr| exts.iter().any(|e| e.as_c_str() == name);

    let mut id = vk::PhysicalDeviceIDProperties::default();
    let mut v12p = vk::PhysicalDeviceVulkan12Properties::default();
    let mut subgroup = vk::PhysicalDeviceSubgroupProperties::default();
    let mut maint3 = vk::PhysicalDeviceMaintenance3Properties::default();
    let mut maint4 = vk::PhysicalDeviceMaintenance4Properties::default();
    {
        let mut props2 = vk::PhysicalDeviceProperties2::default()
            .push_next(&mut id)
            .push_next(&mut v12p)
            .push_next(&mut subgroup)
            .push_next(&mut maint3);
        if use_13 {
            props2 = props2.push_next(&mut maint4);
        }
        // SAFETY: every struct in the chain is core in the device's version (checked above) and outlives the call.
        unsafe { instance.get_physical_device_properties2(pd, &mut props2) };
    }
    info.device_uuid = id.device_uuid;
    info.driver_name = v12p.driver_name_as_c_str().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    info.driver_info = v12p.driver_info_as_c_str().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let caps = &mut info.caps;
    if v12p.driver_id == vk::DriverId::MESA_LLVMPIPE {
        caps.max_shader_loop_iterations = Some(65_535);
        caps.predicated_branches = true;
        caps.texel_gathers = Some(u64::from(limits.max_texel_buffer_elements));
        caps.worker_threads_variable = Some("LP_NUM_THREADS");
    }
    caps.max_memory_allocation_size = maint3.max_memory_allocation_size;
    if use_13 {
        caps.max_buffer_size = maint4.max_buffer_size;
    }
    caps.subgroup_size = subgroup.subgroup_size;
    caps.subgroup_in_compute = subgroup.supported_stages.contains(vk::ShaderStageFlags::COMPUTE);
    let ops = subgroup.supported_operations;
    caps.subgroup_ops = SubgroupOps {
        basic: ops.contains(vk::SubgroupFeatureFlags::BASIC),
        vote: ops.contains(vk::SubgroupFeatureFlags::VOTE),
        arithmetic: ops.contains(vk::SubgroupFeatureFlags::ARITHMETIC),
        ballot: ops.contains(vk::SubgroupFeatureFlags::BALLOT),
        shuffle: ops.contains(vk::SubgroupFeatureFlags::SHUFFLE),
        shuffle_relative: ops.contains(vk::SubgroupFeatureFlags::SHUFFLE_RELATIVE),
        clustered: ops.contains(vk::SubgroupFeatureFlags::CLUSTERED),
        quad: ops.contains(vk::SubgroupFeatureFlags::QUAD),
    };
    caps.pipeline_creation_feedback = use_13 || has_ext(ash::ext::pipeline_creation_feedback::NAME);

    let features = query_features(instance, pd, has_ext(ash::ext::shader_atomic_float::NAME));
    let caps = &mut info.caps;
    let on = |b: vk::Bool32| b == vk::TRUE;
    caps.shader_int64 = on(features.core.shader_int64);
    caps.shader_float64 = on(features.core.shader_float64);
    caps.shader_int16 = on(features.core.shader_int16);
    caps.storage_buffer_16bit = on(features.v11.storage_buffer16_bit_access);
    caps.storage_push_constant_16bit = on(features.v11.storage_push_constant16);
    caps.storage_buffer_8bit = on(features.v12.storage_buffer8_bit_access);
    caps.storage_push_constant_8bit = on(features.v12.storage_push_constant8);
    caps.shader_float16 = on(features.v12.shader_float16);
    caps.shader_int8 = on(features.v12.shader_int8);
    caps.timeline_semaphore = on(features.v12.timeline_semaphore);
    caps.scalar_block_layout = on(features.v12.scalar_block_layout);
    caps.buffer_int64_atomics = on(features.v12.shader_buffer_int64_atomics);
    caps.buffer_float32_atomics = on(features.atomic_float.shader_buffer_float32_atomics);
    caps.buffer_float32_atomic_add = on(features.atomic_float.shader_buffer_float32_atomic_add);
    caps.buffer_float64_atomic_add = on(features.atomic_float.shader_buffer_float64_atomic_add);
    if !caps.timeline_semaphore && info.unusable.is_none() {
        info.unusable = Some("no timeline semaphores".into());
    }
    info
}

fn query_features(instance: &ash::Instance, pd: vk::PhysicalDevice, atomic_float_ext: bool) -> Features {
    let mut v11 = vk::PhysicalDeviceVulkan11Features::default();
    let mut v12 = vk::PhysicalDeviceVulkan12Features::default();
    let mut atomic_float = vk::PhysicalDeviceShaderAtomicFloatFeaturesEXT::default();
    let core;
    {
        let mut features2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut v11).push_next(&mut v12);
        if atomic_float_ext {
            features2 = features2.push_next(&mut atomic_float);
        }
        // SAFETY: Vulkan 1.1/1.2 feature structs are valid on a 1.2 device, the atomic-float struct only when
        // the extension exists; all outlive the call.
        unsafe { instance.get_physical_device_features2(pd, &mut features2) };
        core = features2.features;
    }
    // The query linked these structs into a chain; cut the links so they can be chained again.
    v11.p_next = std::ptr::null_mut();
    v12.p_next = std::ptr::null_mut();
    atomic_float.p_next = std::ptr::null_mut();
    Features { core, v11, v12, atomic_float }
}

fn compute_queue_family(instance: &ash::Instance, pd: vk::PhysicalDevice) -> Option<u32> {
    // SAFETY: plain query on a physical device of this instance.
    let families = unsafe { instance.get_physical_device_queue_family_properties(pd) };
    let compute = |f: &vk::QueueFamilyProperties| f.queue_count > 0 && f.queue_flags.contains(vk::QueueFlags::COMPUTE);
    // Prefer a universal queue: the presentation path will need graphics on the same queue.
    let universal = families.iter().position(|f| compute(f) && f.queue_flags.contains(vk::QueueFlags::GRAPHICS));
    universal.or_else(|| families.iter().position(compute)).map(|i| i as u32)
}

fn choose(
    devices: Vec<(vk::PhysicalDevice, DeviceInfo)>,
    selector: &DeviceSelector,
) -> Result<(vk::PhysicalDevice, DeviceInfo)> {
    if devices.is_empty() {
        return Err(VulkanError::NoDevice { detail: String::new() });
    }
    let available: Vec<String> = devices
        .iter()
        .map(|(_, info)| match &info.unusable {
            Some(why) => format!("{} (unusable: {why})", info.short()),
            None => info.short(),
        })
        .collect();
    let found = match selector {
        DeviceSelector::Auto => {
            let best =
                devices.into_iter().filter(|(_, info)| info.unusable.is_none()).min_by_key(|(_, info)| info.kind);
            return best.ok_or_else(|| VulkanError::NoDevice { detail: format!(" (found: {})", available.join(", ")) });
        }
        DeviceSelector::Index(index) => devices.into_iter().nth(*index),
        DeviceSelector::Name(name) => {
            let name = name.to_lowercase();
            let mut matching: Vec<_> =
                devices.into_iter().filter(|(_, info)| info.name.to_lowercase().contains(&name)).collect();
            // A usable match wins over an unusable one with the same name.
            matching.sort_by_key(|(_, info)| info.unusable.is_some());
            matching.into_iter().next()
        }
    };
    match found {
        Some((_, info)) if info.unusable.is_some() => Err(VulkanError::MissingFeature {
            device: info.name.clone(),
            what: info.unusable.clone().unwrap_or_default(),
        }),
        Some(found) => Ok(found),
        None => Err(VulkanError::DeviceNotFound { selector: selector.to_string(), available }),
    }
}

fn create_device(
    parts: &InstanceParts,
    pd: vk::PhysicalDevice,
    queue_family: u32,
    caps: &DeviceCaps,
    swapchain: bool,
) -> Result<ash::Device> {
    let instance = &parts.instance;
    let exts = device_extensions(instance, pd);
    let has_ext = |name: &CStr| exts.iter().any(|e| e.as_c_str() == name);
    let mut extensions: Vec<*const std::ffi::c_char> = Vec::new();
    if has_ext(ash::khr::portability_subset::NAME) {
        // Required by the spec whenever the device exposes it (MoltenVK).
        extensions.push(ash::khr::portability_subset::NAME.as_ptr());
    }
    let atomic_float = has_ext(ash::ext::shader_atomic_float::NAME);
    if atomic_float {
        extensions.push(ash::ext::shader_atomic_float::NAME.as_ptr());
    }
    if caps.pipeline_creation_feedback && has_ext(ash::ext::pipeline_creation_feedback::NAME) {
        extensions.push(ash::ext::pipeline_creation_feedback::NAME.as_ptr());
    }
    if swapchain {
        // Checked by `Context::open`: a device without it is unusable for presentation.
        extensions.push(ash::khr::swapchain::NAME.as_ptr());
    }

    let b = |on: bool| if on { vk::TRUE } else { vk::FALSE };
    let core = vk::PhysicalDeviceFeatures::default()
        .shader_int64(caps.shader_int64)
        .shader_float64(caps.shader_float64)
        .shader_int16(caps.shader_int16);
    let mut v11 = vk::PhysicalDeviceVulkan11Features::default()
        .storage_buffer16_bit_access(caps.storage_buffer_16bit)
        .storage_push_constant16(caps.storage_push_constant_16bit);
    let mut v12 = vk::PhysicalDeviceVulkan12Features::default()
        .storage_buffer8_bit_access(caps.storage_buffer_8bit)
        .storage_push_constant8(caps.storage_push_constant_8bit)
        .shader_float16(caps.shader_float16)
        .shader_int8(caps.shader_int8)
        .timeline_semaphore(caps.timeline_semaphore)
        .scalar_block_layout(caps.scalar_block_layout)
        .shader_buffer_int64_atomics(caps.buffer_int64_atomics);
    let mut atomic = vk::PhysicalDeviceShaderAtomicFloatFeaturesEXT {
        shader_buffer_float32_atomics: b(caps.buffer_float32_atomics),
        shader_buffer_float32_atomic_add: b(caps.buffer_float32_atomic_add),
        shader_buffer_float64_atomic_add: b(caps.buffer_float64_atomic_add),
        ..Default::default()
    };
    let mut features2 = vk::PhysicalDeviceFeatures2::default().features(core);
    let priorities = [1.0f32];
    let queues = [vk::DeviceQueueCreateInfo::default().queue_family_index(queue_family).queue_priorities(&priorities)];
    let mut create_info = vk::DeviceCreateInfo::default()
        .queue_create_infos(&queues)
        .enabled_extension_names(&extensions)
        .push_next(&mut features2)
        .push_next(&mut v11)
        .push_next(&mut v12);
    if atomic_float {
        create_info = create_info.push_next(&mut atomic);
    }
    // SAFETY: every enabled feature was reported as supported by this device, every extension is in its list,
    // and all pointers in `create_info` refer to locals that outlive the call.
    unsafe { instance.create_device(pd, &create_info, None) }.map_err(VulkanError::vk("vkCreateDevice"))
}

fn version_string(version: u32) -> String {
    format!("{}.{}.{}", vk::api_version_major(version), vk::api_version_minor(version), vk::api_version_patch(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_parse() {
        assert_eq!(DeviceSelector::parse(""), DeviceSelector::Auto);
        assert_eq!(DeviceSelector::parse("auto"), DeviceSelector::Auto);
        assert_eq!(DeviceSelector::parse(" 1 "), DeviceSelector::Index(1));
        assert_eq!(DeviceSelector::parse("llvmpipe"), DeviceSelector::Name("llvmpipe".into()));
    }
}
