//! Showing an image array in a window: a [`Presenter`] owns a window's surface and swapchain, and turns a
//! [`DeviceArray`] holding an HWC image into the swapchain's pixels without the bytes leaving the device.
//!
//! Each frame: acquire a swapchain image; a small compute kernel (WGSL, compiled by naga) reads the image's
//! device words (f32, or u8 zero-extended to u32 as `hlo-spirv` stores it), scales it to the window with
//! letterboxing (nearest neighbour, aspect kept, black borders), and writes packed 8-bit pixels in the
//! swapchain's channel order into a buffer; the buffer is copied into the swapchain image, which is presented.
//! The bytes written are the image's values as a PNG of it would hold them (sRGB-encoded), and a buffer-to-image
//! copy does not convert, so an `_SRGB` swapchain and a `_UNORM` one show the same picture as an image viewer.
//!
//! Ordering: the submission waits (on the device) for the execution that wrote the array and for the acquire
//! semaphore, signals a per-swapchain-image semaphore for the present and the presenter's own timeline; the array
//! is kept alive, and marked as used (so that donating it later waits), until that timeline passes the frame.
//! Two frames are in flight at most. Resizing, or a swapchain the driver calls out of date or suboptimal, makes
//! the next frame recreate the swapchain.

use std::ffi::CStr;
use std::sync::Arc;

use ash::vk;
use gpu_allocator::MemoryLocation;
use raw_window_handle::{HasDisplayHandle, HasWindowHandle};

use crate::array::{ArrayStorage, DeviceArray, SyncPoint, Timeline};
use crate::context::Context;
use crate::error::{Result, VulkanError};
use crate::memory::DeviceBuffer;

/// A window a [`Presenter`] can draw into; the presenter keeps it alive as long as the surface.
pub trait PresentTarget: HasWindowHandle + HasDisplayHandle + Send + Sync {}

impl<T: HasWindowHandle + HasDisplayHandle + Send + Sync> PresentTarget for T {}

/// How the elements of an image array are stored on the device.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ImageWords {
    /// One f32 per element; `full_scale` is the value shown at full intensity (1.0 or 255.0).
    F32 { full_scale: f32 },
    /// One u32 per element holding 0..=255 (a u8 array as the device stores it).
    U8,
}

/// An HWC image array as the presenter reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageLayout {
    pub height: u32,
    pub width: u32,
    /// 1 (grey), 3 (RGB) or 4 (RGBA; alpha is not blended).
    pub channels: u32,
    pub words: ImageWords,
}

impl ImageLayout {
    fn device_bytes(&self) -> u64 {
        u64::from(self.height) * u64::from(self.width) * u64::from(self.channels) * 4
    }
}

/// How a [`Presenter`] paces frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresentOptions {
    /// Wait for the display's refresh (FIFO); otherwise MAILBOX or IMMEDIATE where the surface has them.
    pub vsync: bool,
}

/// What [`Presenter::present`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presented {
    /// The frame went to the window.
    Shown,
    /// Nothing was drawn: the window has no area (minimised) or its swapchain had to be recreated first.
    Skipped,
}

/// Frames the host may record ahead of the device.
const FRAMES_IN_FLIGHT: usize = 2;

/// Side of the kernel's square workgroup.
const GROUP_SIDE: u32 = 8;

/// Push-constant words of [`CONVERT_WGSL`].
const PARAM_WORDS: usize = 12;

/// Scales and converts an HWC image (f32 or u32 words) to packed 8-bit pixels in the swapchain's order.
const CONVERT_WGSL: &str = r#"
struct Params {
    src_width: u32, src_height: u32, channels: u32, is_float: u32,
    dst_width: u32, dst_height: u32, origin_x: u32, origin_y: u32,
    shown_width: u32, shown_height: u32, bgra: u32, scale: f32,
}
var<immediate> p: Params;
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;

// One sample as 0..255, as hlo-present's PNG conversion rounds it: NaN and negatives are 0.
fn sample(i: u32) -> u32 {
    let word = src[i];
    if p.is_float == 0u {
        return min(word, 255u);
    }
    let v = bitcast<f32>(word) * p.scale;
    if !(v >= 0.0) {
        return 0u;
    }
    return u32(min(floor(v + 0.5), 255.0));
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= p.dst_width || id.y >= p.dst_height {
        return;
    }
    var r = 0u;
    var g = 0u;
    var b = 0u;
    let inside = id.x >= p.origin_x && id.y >= p.origin_y
        && id.x < p.origin_x + p.shown_width && id.y < p.origin_y + p.shown_height;
    if inside {
        let sx = min((id.x - p.origin_x) * p.src_width / p.shown_width, p.src_width - 1u);
        let sy = min((id.y - p.origin_y) * p.src_height / p.shown_height, p.src_height - 1u);
        let base = (sy * p.src_width + sx) * p.channels;
        r = sample(base);
        g = r;
        b = r;
        if p.channels >= 3u {
            g = sample(base + 1u);
            b = sample(base + 2u);
        }
    }
    var word = r | (g << 8u) | (b << 16u) | (255u << 24u);
    if p.bgra == 1u {
        word = b | (g << 8u) | (r << 16u) | (255u << 24u);
    }
    dst[id.y * p.dst_width + id.x] = word;
}
"#;

/// The swapchain formats the kernel can write, with whether the bytes go blue first.
const FORMATS: [(vk::Format, bool); 4] = [
    (vk::Format::B8G8R8A8_UNORM, true),
    (vk::Format::B8G8R8A8_SRGB, true),
    (vk::Format::R8G8B8A8_UNORM, false),
    (vk::Format::R8G8B8A8_SRGB, false),
];

/// One frame in flight: what its submission uses, reused once the presenter's timeline passes `done`.
struct FrameSlot {
    cb: vk::CommandBuffer,
    /// Signalled by the acquire, waited by this frame's submission.
    acquired: vk::Semaphore,
    set: vk::DescriptorSet,
    /// The converted pixels, `extent` sized.
    pixels: Option<DeviceBuffer>,
    done: u64,
    #[allow(dead_code, reason = "held, never read: keeps the shown array alive while the device reads it")]
    shown: Option<Arc<ArrayStorage>>,
}

/// A window's surface and swapchain with the conversion kernel; see the module docs.
pub struct Presenter {
    ctx: Arc<Context>,
    surface_loader: ash::khr::surface::Instance,
    swapchain_loader: ash::khr::swapchain::Device,
    surface: vk::SurfaceKHR,
    swapchain: vk::SwapchainKHR,
    images: Vec<vk::Image>,
    /// Per swapchain image: signalled by the frame's submission, waited by its present.
    rendered: Vec<vk::Semaphore>,
    format: vk::Format,
    bgra: bool,
    mode: vk::PresentModeKHR,
    extent: vk::Extent2D,
    /// The window's size in pixels, as last reported.
    window_size: (u32, u32),
    stale: bool,
    options: PresentOptions,
    set_layout: vk::DescriptorSetLayout,
    layout: vk::PipelineLayout,
    pipeline: vk::Pipeline,
    descriptor_pool: vk::DescriptorPool,
    command_pool: vk::CommandPool,
    slots: Vec<FrameSlot>,
    frame: u64,
    timeline: Arc<Timeline>,
    last_signal: u64,
    /// Declared last: dropped after `Drop::drop` destroyed the surface made from it.
    #[allow(dead_code, reason = "held, never read: the window must outlive its surface")]
    target: Arc<dyn PresentTarget>,
}

impl Presenter {
    /// Makes the surface of `target` (sized `width` x `height` pixels) and its swapchain on `ctx`, which must
    /// come from [`Context::with_presentation`] for the same display.
    pub fn new(
        ctx: &Arc<Context>,
        target: Arc<dyn PresentTarget>,
        (width, height): (u32, u32),
        options: PresentOptions,
    ) -> Result<Presenter> {
        if !ctx.presentation_enabled() {
            return Err(VulkanError::Unsupported {
                reason: "the Vulkan context was opened without presentation (Context::with_presentation)".into(),
            });
        }
        let handle_error = |e: raw_window_handle::HandleError| VulkanError::Unsupported {
            reason: format!("the window has no usable handle: {e}"),
        };
        let display = target.display_handle().map_err(handle_error)?.as_raw();
        let window = target.window_handle().map_err(handle_error)?.as_raw();
        let surface_loader = ash::khr::surface::Instance::new(ctx.entry(), ctx.instance());
        let swapchain_loader = ash::khr::swapchain::Device::new(ctx.instance(), ctx.device());
        // SAFETY: the handles come from a live window, which `target` keeps alive until the surface is destroyed
        // in `Drop`; the context's instance has the display's surface extensions (checked above).
        let surface = unsafe { ash_window::create_surface(ctx.entry(), ctx.instance(), display, window, None) }
            .map_err(VulkanError::vk("vkCreate*SurfaceKHR"))?;
        let timeline = match Timeline::new(ctx) {
            Ok(timeline) => timeline,
            Err(err) => {
                // SAFETY: the surface was just created and nothing uses it.
                unsafe { surface_loader.destroy_surface(surface, None) };
                return Err(err);
            }
        };
        // From here on `Drop` destroys whatever exists on every error path.
        let mut presenter = Presenter {
            ctx: ctx.clone(),
            surface_loader,
            swapchain_loader,
            surface,
            swapchain: vk::SwapchainKHR::null(),
            images: Vec::new(),
            rendered: Vec::new(),
            format: vk::Format::UNDEFINED,
            bgra: false,
            mode: vk::PresentModeKHR::FIFO,
            extent: vk::Extent2D::default(),
            window_size: (width, height),
            stale: true,
            options,
            set_layout: vk::DescriptorSetLayout::null(),
            layout: vk::PipelineLayout::null(),
            pipeline: vk::Pipeline::null(),
            descriptor_pool: vk::DescriptorPool::null(),
            command_pool: vk::CommandPool::null(),
            slots: Vec::new(),
            frame: 0,
            timeline,
            last_signal: 0,
            target,
        };
        // SAFETY: plain query on the context's physical device and the surface just made.
        let supported = unsafe {
            presenter.surface_loader.get_physical_device_surface_support(
                ctx.physical_device(),
                ctx.queue_family(),
                surface,
            )
        }
        .map_err(VulkanError::vk("vkGetPhysicalDeviceSurfaceSupportKHR"))?;
        if !supported {
            return Err(VulkanError::MissingFeature {
                device: ctx.info().name.clone(),
                what: "presenting to this window from its compute queue".into(),
            });
        }
        presenter.create_pipeline()?;
        presenter.create_slots()?;
        presenter.recreate()?;
        Ok(presenter)
    }

    /// The window's new size in pixels; the next frame recreates the swapchain.
    pub fn resize(&mut self, width: u32, height: u32) {
        if (width, height) != self.window_size {
            self.window_size = (width, height);
            self.stale = true;
        }
    }

    /// The present mode in use, as Vulkan names it (`FIFO`, `MAILBOX`, `IMMEDIATE`, ...).
    pub fn present_mode(&self) -> String {
        format!("{:?}", self.mode)
    }

    /// The swapchain's pixel format, as Vulkan names it.
    pub fn format(&self) -> String {
        format!("{:?}", self.format)
    }

    /// Converts `image` to the window's size and format on the device and presents it; see the module docs.
    /// With vsync this blocks until the display takes a new frame, at most [`FRAMES_IN_FLIGHT`] frames ahead.
    pub fn present(&mut self, image: &DeviceArray, layout: &ImageLayout) -> Result<Presented> {
        let storage = image.storage();
        if !Arc::ptr_eq(&storage.ctx, &self.ctx) {
            return Err(VulkanError::ForeignArray { index: 0 });
        }
        if layout.height == 0 || layout.width == 0 || !matches!(layout.channels, 1 | 3 | 4) {
            return Err(VulkanError::Unsupported { reason: format!("presenting an image shaped {layout:?}") });
        }
        if storage.size != layout.device_bytes() {
            return Err(VulkanError::ArrayReadSize { expected: layout.device_bytes(), found: storage.size });
        }
        if self.stale {
            self.recreate()?;
        }
        if self.swapchain == vk::SwapchainKHR::null() {
            return Ok(Presented::Skipped);
        }
        let slot_index = (self.frame % FRAMES_IN_FLIGHT as u64) as usize;
        self.timeline.wait(self.slots[slot_index].done)?;
        self.slots[slot_index].shown = None;
        let acquired = self.slots[slot_index].acquired;
        // SAFETY: the swapchain is live; the semaphore is unsignalled (the submission that waited on it finished).
        let acquire =
            unsafe { self.swapchain_loader.acquire_next_image(self.swapchain, u64::MAX, acquired, vk::Fence::null()) };
        let image_index = match acquire {
            Ok((index, suboptimal)) => {
                self.stale |= suboptimal;
                index as usize
            }
            Err(vk::Result::ERROR_OUT_OF_DATE_KHR) => {
                self.stale = true;
                return Ok(Presented::Skipped);
            }
            Err(err) => return Err(VulkanError::Vk { call: "vkAcquireNextImageKHR", result: err }),
        };
        self.record(slot_index, image_index, storage, layout)?;
        let value = self.submit(slot_index, image_index, storage.written())?;
        let point = SyncPoint { timeline: self.timeline.clone(), value };
        storage.used_by(&point);
        let slot = &mut self.slots[slot_index];
        slot.done = value;
        slot.shown = Some(storage.clone());
        self.frame += 1;

        let swapchains = [self.swapchain];
        let indices = [image_index as u32];
        let waits = [self.rendered[image_index]];
        let info =
            vk::PresentInfoKHR::default().wait_semaphores(&waits).swapchains(&swapchains).image_indices(&indices);
        let presented = {
            let queue = self.ctx.queue();
            // SAFETY: the queue is locked; the image was acquired and the submission above signals `waits`.
            unsafe { self.swapchain_loader.queue_present(*queue, &info) }
        };
        match presented {
            Ok(suboptimal) => self.stale |= suboptimal,
            Err(vk::Result::ERROR_OUT_OF_DATE_KHR) => self.stale = true,
            Err(err) => return Err(VulkanError::Vk { call: "vkQueuePresentKHR", result: err }),
        }
        Ok(Presented::Shown)
    }

    fn create_pipeline(&mut self) -> Result<()> {
        let device = self.ctx.device();
        let bindings: Vec<vk::DescriptorSetLayoutBinding> = (0..2)
            .map(|binding| {
                vk::DescriptorSetLayoutBinding::default()
                    .binding(binding)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                    .descriptor_count(1)
                    .stage_flags(vk::ShaderStageFlags::COMPUTE)
            })
            .collect();
        let info = vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings);
        // SAFETY: valid create info; destroyed in `Drop`.
        self.set_layout = unsafe { device.create_descriptor_set_layout(&info, None) }
            .map_err(VulkanError::vk("vkCreateDescriptorSetLayout"))?;
        let ranges = [vk::PushConstantRange::default()
            .stage_flags(vk::ShaderStageFlags::COMPUTE)
            .size((PARAM_WORDS * 4) as u32)];
        let set_layouts = [self.set_layout];
        let info = vk::PipelineLayoutCreateInfo::default().set_layouts(&set_layouts).push_constant_ranges(&ranges);
        // SAFETY: valid create info referring to the live set layout; destroyed in `Drop`.
        self.layout =
            unsafe { device.create_pipeline_layout(&info, None) }.map_err(VulkanError::vk("vkCreatePipelineLayout"))?;
        let words = compile_convert_kernel()?;
        let info = vk::ShaderModuleCreateInfo::default().code(&words);
        // SAFETY: `words` is SPIR-V that naga validated and wrote; the module is destroyed below.
        let module =
            unsafe { device.create_shader_module(&info, None) }.map_err(VulkanError::vk("vkCreateShaderModule"))?;
        let entry: &CStr = c"main";
        let stage = vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(module)
            .name(entry);
        let info = [vk::ComputePipelineCreateInfo::default().stage(stage).layout(self.layout)];
        // SAFETY: valid create info; the module and layout are live during the call.
        let created = unsafe { device.create_compute_pipelines(vk::PipelineCache::null(), &info, None) };
        // SAFETY: the module is no longer needed once the pipeline exists (or failed).
        unsafe { device.destroy_shader_module(module, None) };
        self.pipeline =
            created.map_err(|(_, err)| VulkanError::Vk { call: "vkCreateComputePipelines", result: err })?[0];
        self.ctx.set_name(self.pipeline, "hlo-vulkan present: image to swapchain pixels");
        Ok(())
    }

    fn create_slots(&mut self) -> Result<()> {
        let device = self.ctx.device();
        let sizes = [vk::DescriptorPoolSize {
            ty: vk::DescriptorType::STORAGE_BUFFER,
            descriptor_count: 2 * FRAMES_IN_FLIGHT as u32,
        }];
        let info = vk::DescriptorPoolCreateInfo::default().max_sets(FRAMES_IN_FLIGHT as u32).pool_sizes(&sizes);
        // SAFETY: valid create info; destroyed in `Drop`.
        self.descriptor_pool =
            unsafe { device.create_descriptor_pool(&info, None) }.map_err(VulkanError::vk("vkCreateDescriptorPool"))?;
        let info = vk::CommandPoolCreateInfo::default()
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER)
            .queue_family_index(self.ctx.queue_family());
        // SAFETY: valid create info for the context's queue family; destroyed in `Drop`.
        self.command_pool =
            unsafe { device.create_command_pool(&info, None) }.map_err(VulkanError::vk("vkCreateCommandPool"))?;
        let layouts = [self.set_layout; FRAMES_IN_FLIGHT];
        let info = vk::DescriptorSetAllocateInfo::default().descriptor_pool(self.descriptor_pool).set_layouts(&layouts);
        // SAFETY: the pool has room for these sets; they are freed with the pool.
        let sets =
            unsafe { device.allocate_descriptor_sets(&info) }.map_err(VulkanError::vk("vkAllocateDescriptorSets"))?;
        let info = vk::CommandBufferAllocateInfo::default()
            .command_pool(self.command_pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(FRAMES_IN_FLIGHT as u32);
        // SAFETY: the pool is live; the buffers are freed with it.
        let cbs =
            unsafe { device.allocate_command_buffers(&info) }.map_err(VulkanError::vk("vkAllocateCommandBuffers"))?;
        for (cb, set) in cbs.into_iter().zip(sets) {
            let acquired = create_semaphore(&self.ctx)?;
            self.slots.push(FrameSlot { cb, acquired, set, pixels: None, done: 0, shown: None });
        }
        Ok(())
    }

    /// Makes the swapchain for the window's current size (none while it has no area) and the per-image
    /// semaphores and per-frame pixel buffers that go with it.
    fn recreate(&mut self) -> Result<()> {
        self.wait_idle()?;
        self.stale = false;
        let pd = self.ctx.physical_device();
        // SAFETY: plain query on the context's physical device and the live surface.
        let caps = unsafe { self.surface_loader.get_physical_device_surface_capabilities(pd, self.surface) }
            .map_err(VulkanError::vk("vkGetPhysicalDeviceSurfaceCapabilitiesKHR"))?;
        // SAFETY: as above.
        let formats = unsafe { self.surface_loader.get_physical_device_surface_formats(pd, self.surface) }
            .map_err(VulkanError::vk("vkGetPhysicalDeviceSurfaceFormatsKHR"))?;
        // SAFETY: as above.
        let modes = unsafe { self.surface_loader.get_physical_device_surface_present_modes(pd, self.surface) }
            .map_err(VulkanError::vk("vkGetPhysicalDeviceSurfacePresentModesKHR"))?;
        let (format, bgra, color_space) = formats
            .iter()
            .find_map(|f| {
                FORMATS.iter().find(|(ours, _)| *ours == f.format).map(|&(ours, bgra)| (ours, bgra, f.color_space))
            })
            .ok_or_else(|| VulkanError::Unsupported {
                reason: format!("the window offers no 8-bit RGBA or BGRA swapchain format (it offers {formats:?})"),
            })?;
        if !caps.supported_usage_flags.contains(vk::ImageUsageFlags::TRANSFER_DST) {
            return Err(VulkanError::Unsupported {
                reason: "the window's swapchain images cannot be copied to".into(),
            });
        }
        let wanted: &[vk::PresentModeKHR] = if self.options.vsync {
            &[vk::PresentModeKHR::FIFO]
        } else {
            &[vk::PresentModeKHR::MAILBOX, vk::PresentModeKHR::IMMEDIATE, vk::PresentModeKHR::FIFO]
        };
        // FIFO is always supported.
        let mode = wanted.iter().copied().find(|m| modes.contains(m)).unwrap_or(vk::PresentModeKHR::FIFO);
        let extent = if caps.current_extent.width != u32::MAX {
            caps.current_extent
        } else {
            vk::Extent2D {
                width: self.window_size.0.clamp(caps.min_image_extent.width, caps.max_image_extent.width),
                height: self.window_size.1.clamp(caps.min_image_extent.height, caps.max_image_extent.height),
            }
        };
        let old = std::mem::replace(&mut self.swapchain, vk::SwapchainKHR::null());
        self.destroy_swapchain_parts();
        self.extent = extent;
        if extent.width == 0 || extent.height == 0 {
            return Ok(());
        }
        let mut count = caps.min_image_count.max(2) + 1;
        if caps.max_image_count > 0 {
            count = count.min(caps.max_image_count);
        }
        let alpha = [
            vk::CompositeAlphaFlagsKHR::OPAQUE,
            vk::CompositeAlphaFlagsKHR::INHERIT,
            vk::CompositeAlphaFlagsKHR::PRE_MULTIPLIED,
            vk::CompositeAlphaFlagsKHR::POST_MULTIPLIED,
        ]
        .into_iter()
        .find(|&a| caps.supported_composite_alpha.contains(a))
        .unwrap_or(vk::CompositeAlphaFlagsKHR::OPAQUE);
        let info = vk::SwapchainCreateInfoKHR::default()
            .surface(self.surface)
            .min_image_count(count)
            .image_format(format)
            .image_color_space(color_space)
            .image_extent(extent)
            .image_array_layers(1)
            .image_usage(vk::ImageUsageFlags::TRANSFER_DST)
            .image_sharing_mode(vk::SharingMode::EXCLUSIVE)
            .pre_transform(caps.current_transform)
            .composite_alpha(alpha)
            .present_mode(mode)
            .clipped(true)
            .old_swapchain(old);
        // SAFETY: valid create info for the live surface; `old` (retired) is destroyed right after.
        let created = unsafe { self.swapchain_loader.create_swapchain(&info, None) };
        if old != vk::SwapchainKHR::null() {
            // SAFETY: the queue is idle (waited above), so no work or present uses the old swapchain's images.
            unsafe { self.swapchain_loader.destroy_swapchain(old, None) };
        }
        self.swapchain = created.map_err(VulkanError::vk("vkCreateSwapchainKHR"))?;
        // SAFETY: plain query of the live swapchain.
        self.images = unsafe { self.swapchain_loader.get_swapchain_images(self.swapchain) }
            .map_err(VulkanError::vk("vkGetSwapchainImagesKHR"))?;
        for _ in 0..self.images.len() {
            let semaphore = create_semaphore(&self.ctx)?;
            self.rendered.push(semaphore);
        }
        let bytes = u64::from(extent.width) * u64::from(extent.height) * 4;
        for (k, slot) in self.slots.iter_mut().enumerate() {
            let name = format!("present pixels {k}");
            slot.pixels = Some(DeviceBuffer::new(&self.ctx, &name, bytes, MemoryLocation::GpuOnly)?);
        }
        (self.format, self.bgra, self.mode) = (format, bgra, mode);
        tracing::debug!(?format, ?mode, width = extent.width, height = extent.height, "swapchain");
        Ok(())
    }

    /// Destroys the per-image semaphores and pixel buffers (not the swapchain, which the next one may retire).
    fn destroy_swapchain_parts(&mut self) {
        for semaphore in self.rendered.drain(..) {
            // SAFETY: the queue is idle (callers wait first), so no submission or present uses the semaphore.
            unsafe { self.ctx.device().destroy_semaphore(semaphore, None) };
        }
        self.images.clear();
        for slot in &mut self.slots {
            slot.pixels = None;
        }
    }

    fn record(&self, slot: usize, image_index: usize, source: &ArrayStorage, layout: &ImageLayout) -> Result<()> {
        let device = self.ctx.device();
        let FrameSlot { cb, set, pixels, .. } = &self.slots[slot];
        let (cb, set) = (*cb, *set);
        let pixels = pixels.as_ref().expect("a swapchain has pixel buffers").buffer;
        let buffers = [
            vk::DescriptorBufferInfo { buffer: source.buffer.buffer, offset: 0, range: vk::WHOLE_SIZE },
            vk::DescriptorBufferInfo { buffer: pixels, offset: 0, range: vk::WHOLE_SIZE },
        ];
        let writes: Vec<vk::WriteDescriptorSet> = buffers
            .iter()
            .enumerate()
            .map(|(binding, info)| {
                vk::WriteDescriptorSet::default()
                    .dst_set(set)
                    .dst_binding(binding as u32)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                    .buffer_info(std::slice::from_ref(info))
            })
            .collect();
        let extent = self.extent;
        let params = letterbox_params(layout, extent, self.bgra);
        let constants: Vec<u8> = params.iter().flat_map(|w| w.to_le_bytes()).collect();
        let image = self.images[image_index];
        let range =
            vk::ImageSubresourceRange::default().aspect_mask(vk::ImageAspectFlags::COLOR).level_count(1).layer_count(1);
        let to_transfer = vk::ImageMemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::empty())
            .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .old_layout(vk::ImageLayout::UNDEFINED)
            .new_layout(vk::ImageLayout::TRANSFER_DST_OPTIMAL)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .image(image)
            .subresource_range(range);
        let pixels_written = vk::BufferMemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::SHADER_WRITE)
            .dst_access_mask(vk::AccessFlags::TRANSFER_READ)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .buffer(pixels)
            .offset(0)
            .size(vk::WHOLE_SIZE);
        let to_present = vk::ImageMemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(vk::AccessFlags::empty())
            .old_layout(vk::ImageLayout::TRANSFER_DST_OPTIMAL)
            .new_layout(vk::ImageLayout::PRESENT_SRC_KHR)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .image(image)
            .subresource_range(range);
        let region = vk::BufferImageCopy::default()
            .image_subresource(
                vk::ImageSubresourceLayers::default().aspect_mask(vk::ImageAspectFlags::COLOR).layer_count(1),
            )
            .image_extent(vk::Extent3D { width: extent.width, height: extent.height, depth: 1 });
        let begin = vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
        // SAFETY: the slot's previous submission has finished (waited in `present`), so its command buffer and
        // descriptor set are not in use; every handle recorded is live, the dispatch covers the pixel buffer,
        // which holds exactly `extent` pixels, and the copy writes the whole swapchain image.
        unsafe {
            device.update_descriptor_sets(&writes, &[]);
            device.begin_command_buffer(cb, &begin).map_err(VulkanError::vk("vkBeginCommandBuffer"))?;
            device.cmd_bind_pipeline(cb, vk::PipelineBindPoint::COMPUTE, self.pipeline);
            device.cmd_bind_descriptor_sets(cb, vk::PipelineBindPoint::COMPUTE, self.layout, 0, &[set], &[]);
            device.cmd_push_constants(cb, self.layout, vk::ShaderStageFlags::COMPUTE, 0, &constants);
            device.cmd_dispatch(cb, extent.width.div_ceil(GROUP_SIDE), extent.height.div_ceil(GROUP_SIDE), 1);
            device.cmd_pipeline_barrier(
                cb,
                vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::TRANSFER,
                vk::DependencyFlags::empty(),
                &[],
                &[pixels_written],
                &[to_transfer],
            );
            device.cmd_copy_buffer_to_image(cb, pixels, image, vk::ImageLayout::TRANSFER_DST_OPTIMAL, &[region]);
            device.cmd_pipeline_barrier(
                cb,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                vk::DependencyFlags::empty(),
                &[],
                &[],
                &[to_present],
            );
            device.end_command_buffer(cb).map_err(VulkanError::vk("vkEndCommandBuffer"))?;
        }
        Ok(())
    }

    /// Submits slot `slot`'s commands after the acquire and the array's writer; returns the timeline value.
    fn submit(&mut self, slot: usize, image_index: usize, written: Option<SyncPoint>) -> Result<u64> {
        let mut semaphores = vec![self.slots[slot].acquired];
        let mut wait_values = vec![0];
        // The acquire gates the image's layout change (a transfer-stage barrier); the array, the kernel.
        let mut stages = vec![vk::PipelineStageFlags::TRANSFER];
        if let Some(point) = &written {
            semaphores.push(point.timeline.semaphore);
            wait_values.push(point.value);
            stages.push(vk::PipelineStageFlags::COMPUTE_SHADER);
        }
        let value = self.last_signal + 1;
        let signal = [self.rendered[image_index], self.timeline.semaphore];
        let signal_values = [0, value];
        let cbs = [self.slots[slot].cb];
        let mut timeline_info = vk::TimelineSemaphoreSubmitInfo::default()
            .wait_semaphore_values(&wait_values)
            .signal_semaphore_values(&signal_values);
        let submit = vk::SubmitInfo::default()
            .wait_semaphores(&semaphores)
            .wait_dst_stage_mask(&stages)
            .command_buffers(&cbs)
            .signal_semaphores(&signal)
            .push_next(&mut timeline_info);
        {
            let queue = self.ctx.queue();
            // SAFETY: the queue is locked; the command buffer is recorded and not pending; the array's writer was
            // submitted before (an execution submits before returning its outputs), and its timeline and memory
            // stay alive (the caller keeps the array in the slot until this submission has finished).
            unsafe { self.ctx.device().queue_submit(*queue, &[submit], vk::Fence::null()) }
                .map_err(VulkanError::vk("vkQueueSubmit"))?;
        }
        self.last_signal = value;
        Ok(value)
    }

    /// Waits until the queue has finished everything, presents included.
    fn wait_idle(&self) -> Result<()> {
        let queue = self.ctx.queue();
        // SAFETY: the queue is locked, as vkQueueWaitIdle requires.
        unsafe { self.ctx.device().queue_wait_idle(*queue) }.map_err(VulkanError::vk("vkQueueWaitIdle"))
    }
}

/// The kernel's push constants: where the image goes in an `extent` window, scaled as large as fits.
fn letterbox_params(layout: &ImageLayout, extent: vk::Extent2D, bgra: bool) -> [u32; PARAM_WORDS] {
    let (w, h) = (layout.width as f64, layout.height as f64);
    let fit = (extent.width as f64 / w).min(extent.height as f64 / h);
    let shown_width = ((w * fit).floor() as u32).clamp(1, extent.width.max(1));
    let shown_height = ((h * fit).floor() as u32).clamp(1, extent.height.max(1));
    let (is_float, scale) = match layout.words {
        ImageWords::F32 { full_scale } => (1, 255.0 / full_scale),
        ImageWords::U8 => (0, 1.0),
    };
    [
        layout.width,
        layout.height,
        layout.channels,
        is_float,
        extent.width,
        extent.height,
        (extent.width - shown_width) / 2,
        (extent.height - shown_height) / 2,
        shown_width,
        shown_height,
        u32::from(bgra),
        f32::to_bits(scale),
    ]
}

fn create_semaphore(ctx: &Context) -> Result<vk::Semaphore> {
    // SAFETY: valid create info; the caller destroys the semaphore.
    unsafe { ctx.device().create_semaphore(&vk::SemaphoreCreateInfo::default(), None) }
        .map_err(VulkanError::vk("vkCreateSemaphore"))
}

fn compile_convert_kernel() -> Result<Vec<u32>> {
    let bad = |reason: String| VulkanError::InvalidKernel { kernel: "hlo-vulkan present".into(), reason };
    let module = naga::front::wgsl::parse_str(CONVERT_WGSL).map_err(|e| bad(e.emit_to_string(CONVERT_WGSL)))?;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::IMMEDIATES)
        .validate(&module)
        .map_err(|e| bad(e.emit_to_string(CONVERT_WGSL)))?;
    let options = naga::back::spv::Options { lang_version: (1, 3), ..Default::default() };
    let pipeline =
        naga::back::spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: "main".into() };
    naga::back::spv::write_vec(&module, &info, &options, Some(&pipeline)).map_err(|e| bad(e.to_string()))
}

impl Drop for Presenter {
    fn drop(&mut self) {
        if let Err(err) = self.wait_idle() {
            tracing::warn!(%err, "vkQueueWaitIdle failed before destroying the presenter");
        }
        self.destroy_swapchain_parts();
        let device = self.ctx.device();
        // SAFETY: the queue is idle, so nothing uses these objects; each is destroyed once (null handles are
        // ignored), the swapchain before its surface, and the window (`target`) is dropped after this.
        unsafe {
            for slot in self.slots.drain(..) {
                device.destroy_semaphore(slot.acquired, None);
            }
            device.destroy_command_pool(self.command_pool, None);
            device.destroy_descriptor_pool(self.descriptor_pool, None);
            device.destroy_pipeline(self.pipeline, None);
            device.destroy_pipeline_layout(self.layout, None);
            device.destroy_descriptor_set_layout(self.set_layout, None);
            if self.swapchain != vk::SwapchainKHR::null() {
                self.swapchain_loader.destroy_swapchain(self.swapchain, None);
            }
            self.surface_loader.destroy_surface(self.surface, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conversion_kernel_compiles() {
        assert!(compile_convert_kernel().unwrap().len() > 100);
    }

    #[test]
    fn letterboxing_keeps_the_aspect_and_centres() {
        let layout = ImageLayout { height: 300, width: 300, channels: 3, words: ImageWords::F32 { full_scale: 1.0 } };
        let p = letterbox_params(&layout, vk::Extent2D { width: 800, height: 600 }, true);
        assert_eq!(&p[6..11], &[100, 0, 600, 600, 1]);
        assert_eq!(f32::from_bits(p[11]), 255.0);
        let wide = ImageLayout { height: 10, width: 40, channels: 1, words: ImageWords::U8 };
        let p = letterbox_params(&wide, vk::Extent2D { width: 100, height: 100 }, false);
        assert_eq!(&p[3..11], &[0, 100, 100, 0, 37, 100, 25, 0]);
    }
}
