//! Device arrays: buffers that stay on the device between executions (issue 12).
//!
//! A [`DeviceArray`] is made by [`crate::Executable::upload`] or returned by [`crate::Executable::execute`],
//! passed by reference to any number of executions, and read back with [`DeviceArray::read`].
//!
//! Ordering: every array remembers the submission that writes it (a value on some executable's timeline
//! semaphore) and the latest submission of each timeline that touched it. An execution waits, on the device,
//! for the writer of each input, and for every earlier user of an array it overwrites (donation); the host
//! waits only when it reads an array back.
//!
//! Lifetime: the bytes live in an `Arc`-shared [`ArrayStorage`]. Each submission that touches an array keeps
//! a clone in its executable's retire list until the timeline passes it, so dropping a [`DeviceArray`] while
//! the device still uses it is safe: the memory goes back to the allocator when the last user has finished.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ash::vk;
use gpu_allocator::MemoryLocation;

use crate::context::Context;
use crate::error::{Result, VulkanError};
use crate::executable::host_barrier;
use crate::memory::{padded_size, DeviceBuffer};

/// A timeline semaphore with shared ownership: arrays keep the semaphore of the submission that wrote them
/// alive after its executable is gone, so waiting on it stays valid.
pub(crate) struct Timeline {
    ctx: Arc<Context>,
    pub semaphore: vk::Semaphore,
}

impl Timeline {
    pub fn new(ctx: &Arc<Context>) -> Result<Arc<Timeline>> {
        let mut kind = vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE);
        let info = vk::SemaphoreCreateInfo::default().push_next(&mut kind);
        // SAFETY: valid create info; timeline semaphores are enabled on every context's device.
        let semaphore =
            unsafe { ctx.device().create_semaphore(&info, None) }.map_err(VulkanError::vk("vkCreateSemaphore"))?;
        Ok(Arc::new(Timeline { ctx: ctx.clone(), semaphore }))
    }

    /// Blocks until the semaphore reaches `value` (0 is always reached).
    pub fn wait(&self, value: u64) -> Result<()> {
        if value == 0 {
            return Ok(());
        }
        let semaphores = [self.semaphore];
        let values = [value];
        let info = vk::SemaphoreWaitInfo::default().semaphores(&semaphores).values(&values);
        // SAFETY: the semaphore is live, and `value` was (or will be, by submitted work) signalled.
        unsafe { self.ctx.device().wait_semaphores(&info, u64::MAX) }.map_err(VulkanError::vk("vkWaitSemaphores"))
    }

    /// The value the device has reached, without blocking.
    pub fn reached(&self) -> Result<u64> {
        // SAFETY: plain query of a live timeline semaphore.
        unsafe { self.ctx.device().get_semaphore_counter_value(self.semaphore) }
            .map_err(VulkanError::vk("vkGetSemaphoreCounterValue"))
    }
}

impl Drop for Timeline {
    fn drop(&mut self) {
        // Reaching a value is not enough: lavapipe (Mesa 22.3) still touches a semaphore in its submit thread
        // after signalling it, and destroying it right after a wait crashed about one run in 20. An idle queue
        // has finished with every semaphore.
        let queue = self.ctx.queue();
        // SAFETY: the queue is locked, as vkQueueWaitIdle requires.
        if let Err(err) = unsafe { self.ctx.device().queue_wait_idle(*queue) } {
            tracing::warn!(%err, "vkQueueWaitIdle failed before destroying a semaphore");
        }
        drop(queue);
        // SAFETY: the queue is idle, so no submission waits on or signals this semaphore any more, and it is
        // destroyed once.
        unsafe { self.ctx.device().destroy_semaphore(self.semaphore, None) };
    }
}

/// A point on a timeline: the work that signals `value` on `timeline`.
#[derive(Clone)]
pub(crate) struct SyncPoint {
    pub timeline: Arc<Timeline>,
    pub value: u64,
}

impl SyncPoint {
    pub fn on(&self, timeline: &Arc<Timeline>) -> bool {
        Arc::ptr_eq(&self.timeline, timeline)
    }
}

/// Which submissions write and use an array.
#[derive(Default)]
struct Usage {
    /// The submission that produces the bytes; `None` when the host wrote them directly.
    written: Option<SyncPoint>,
    /// The latest submission of each timeline that read or wrote the array.
    used: Vec<SyncPoint>,
}

/// The device memory behind a [`DeviceArray`], shared with the retire lists of in-flight submissions.
pub(crate) struct ArrayStorage {
    pub ctx: Arc<Context>,
    pub buffer: DeviceBuffer,
    /// Bytes of the array (the buffer is padded to a non-zero multiple of 4).
    pub size: u64,
    /// The host reads and writes the mapped bytes directly (else through a staging copy).
    pub mapped: bool,
    usage: Mutex<Usage>,
}

impl ArrayStorage {
    /// Allocates an array of `size` bytes; `mapped_allowed: false` forces the staging paths.
    pub fn new(ctx: &Arc<Context>, name: &str, size: u64, mapped_allowed: bool) -> Result<ArrayStorage> {
        let location = if mapped_allowed && ctx.caps().host_visible_device_local {
            MemoryLocation::CpuToGpu
        } else {
            MemoryLocation::GpuOnly
        };
        let buffer = DeviceBuffer::new(ctx, name, padded_size(size), location)?;
        let mapped = mapped_allowed && buffer.host_accessible();
        Ok(ArrayStorage { ctx: ctx.clone(), buffer, size, mapped, usage: Mutex::default() })
    }

    fn usage(&self) -> MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The submission that writes the bytes, if any.
    pub fn written(&self) -> Option<SyncPoint> {
        self.usage().written.clone()
    }

    /// Every submission that may still touch the array (one per timeline).
    pub fn users(&self) -> Vec<SyncPoint> {
        self.usage().used.clone()
    }

    /// Records that `point` reads the array.
    pub fn used_by(&self, point: &SyncPoint) {
        let mut usage = self.usage();
        match usage.used.iter_mut().find(|p| p.on(&point.timeline)) {
            Some(p) => p.value = p.value.max(point.value),
            None => usage.used.push(point.clone()),
        }
    }

    /// Records that `point` writes the array (after every earlier user, which the caller waited for).
    pub fn written_by(&self, point: &SyncPoint) {
        let mut usage = self.usage();
        usage.written = Some(point.clone());
        usage.used = vec![point.clone()];
    }
}

/// An array kept in device memory: made by [`crate::Executable::upload`] or an execution, passed to any number
/// of executions, read back on request, and freed when dropped (once the device no longer uses it).
pub struct DeviceArray {
    storage: Arc<ArrayStorage>,
}

impl DeviceArray {
    pub(crate) fn new(storage: Arc<ArrayStorage>) -> DeviceArray {
        DeviceArray { storage }
    }

    pub(crate) fn storage(&self) -> &Arc<ArrayStorage> {
        &self.storage
    }

    /// Bytes in the array.
    pub fn size_bytes(&self) -> u64 {
        self.storage.size
    }

    /// Copies the array into `dst`, which must be exactly its size; waits only for the work that produces it.
    pub fn read(&self, dst: &mut [u8]) -> Result<()> {
        let storage = &self.storage;
        if dst.len() as u64 != storage.size {
            return Err(VulkanError::ArrayReadSize { expected: storage.size, found: dst.len() as u64 });
        }
        if let Some(point) = storage.written() {
            point.timeline.wait(point.value)?;
        }
        if dst.is_empty() {
            return Ok(());
        }
        storage.ctx.count_to_host(dst.len() as u64);
        if storage.mapped {
            if let Some(bytes) = storage.buffer.host_bytes() {
                dst.copy_from_slice(&bytes[..dst.len()]);
                return Ok(());
            }
        }
        read_through_staging(storage, dst)
    }

    /// The array's bytes; waits only for the work that produces it.
    pub fn to_host(&self) -> Result<Vec<u8>> {
        let mut bytes = vec![0; self.storage.size as usize];
        self.read(&mut bytes)?;
        Ok(bytes)
    }
}

impl fmt::Debug for DeviceArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceArray").field("size_bytes", &self.storage.size).finish_non_exhaustive()
    }
}

/// An input of [`crate::Executable::execute_with`].
pub enum ArrayInput<'a> {
    /// Read only; the caller keeps the array.
    Read(&'a DeviceArray),
    /// XLA's input/output alias: the array's memory receives output `output` (no new allocation), so the array
    /// is consumed; the execution returns it as that output.
    Donate { array: DeviceArray, output: usize },
}

impl<'a> From<&'a DeviceArray> for ArrayInput<'a> {
    fn from(array: &'a DeviceArray) -> ArrayInput<'a> {
        ArrayInput::Read(array)
    }
}

impl ArrayInput<'_> {
    pub(crate) fn array(&self) -> &DeviceArray {
        match self {
            ArrayInput::Read(array) => array,
            ArrayInput::Donate { array, .. } => array,
        }
    }
}

/// Reads an array the host cannot map: copies it into a host-visible buffer with a one-time command buffer
/// and waits. The caller has waited for the array's writer, so the copy needs no semaphore wait.
fn read_through_staging(storage: &ArrayStorage, dst: &mut [u8]) -> Result<()> {
    let ctx = &storage.ctx;
    let readback = DeviceBuffer::new(ctx, "readback of a device array", storage.buffer.size, MemoryLocation::GpuToCpu)?;
    let timeline = Timeline::new(ctx)?;
    let device = ctx.device();
    let info = vk::CommandPoolCreateInfo::default()
        .flags(vk::CommandPoolCreateFlags::TRANSIENT)
        .queue_family_index(ctx.queue_family());
    // SAFETY: valid create info for the context's queue family; destroyed below.
    let pool = unsafe { device.create_command_pool(&info, None) }.map_err(VulkanError::vk("vkCreateCommandPool"))?;
    let copied = (|| {
        let info = vk::CommandBufferAllocateInfo::default()
            .command_pool(pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(1);
        // SAFETY: the pool is live and used by this function alone.
        let cb =
            unsafe { device.allocate_command_buffers(&info) }.map_err(VulkanError::vk("vkAllocateCommandBuffers"))?[0];
        let begin = vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
        let region = vk::BufferCopy { src_offset: 0, dst_offset: 0, size: storage.size };
        // SAFETY: `cb` is fresh; both buffers are live, and the copy lies inside both.
        unsafe {
            device.begin_command_buffer(cb, &begin).map_err(VulkanError::vk("vkBeginCommandBuffer"))?;
            device.cmd_copy_buffer(cb, storage.buffer.buffer, readback.buffer, &[region]);
            host_barrier(device, cb);
            device.end_command_buffer(cb).map_err(VulkanError::vk("vkEndCommandBuffer"))?;
        }
        let cbs = [cb];
        let semaphores = [timeline.semaphore];
        let values = [1];
        let mut values_info = vk::TimelineSemaphoreSubmitInfo::default().signal_semaphore_values(&values);
        let submit =
            vk::SubmitInfo::default().command_buffers(&cbs).signal_semaphores(&semaphores).push_next(&mut values_info);
        {
            let queue = ctx.queue();
            // SAFETY: the queue is locked; `cb` is fully recorded and submitted once.
            unsafe { device.queue_submit(*queue, &[submit], vk::Fence::null()) }
                .map_err(VulkanError::vk("vkQueueSubmit"))?;
        }
        timeline.wait(1)
    })();
    if copied.is_err() {
        let _queue = ctx.queue();
        // SAFETY: the queue is locked (vkDeviceWaitIdle needs every queue externally synchronized); after a
        // failed wait nothing may still use the pool or the readback buffer when they are destroyed.
        let _ = unsafe { device.device_wait_idle() };
    }
    // SAFETY: the copy has finished (waited above) and the pool is destroyed once, freeing its buffer.
    unsafe { device.destroy_command_pool(pool, None) };
    copied?;
    let bytes = readback.host_bytes().ok_or_else(|| VulkanError::Unsupported {
        reason: "the device has no host-visible coherent memory to read arrays back".into(),
    })?;
    dst.copy_from_slice(&bytes[..dst.len()]);
    Ok(())
}
