//! Device memory: buffers from gpu-allocator, and the liveness-based placement of temporaries.
//!
//! Inputs and constants get one persistent `VkBuffer` each.
//! Temporaries are placed at offsets inside one or a few big "arena" buffers: two temporaries whose live ranges
//! (first step that touches them ..= last step that touches them; outputs live to the end) do not overlap may
//! share bytes. Steps are counted at the top level: a loop or conditional is one step that touches everything
//! its nested steps touch, so nothing used inside it shares bytes with anything else used inside it (a body
//! reads in iteration i+1 what it wrote in iteration i).
//! Placement is greedy by size (largest first, lowest free offset), the scheme TFLite's arena planner uses;
//! it is not optimal, but it is simple and good on the chains of elementwise kernels the compiler produces.
//!
//! The placement ([`place_temps`]) is pure so it can be tested without a device.

use std::sync::Arc;

use ash::vk;
use gpu_allocator::vulkan::{Allocation, AllocationCreateDesc, AllocationScheme};
use gpu_allocator::MemoryLocation;
use hlo_program::{BufferRole, Program};

use crate::context::Context;
use crate::error::{Result, VulkanError};

/// The steps during which a temporary must keep its bytes: `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interval {
    pub first: usize,
    pub last: usize,
}

impl Interval {
    fn overlaps(self, other: Interval) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Where a temporary lives: arena number and byte offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    pub arena: usize,
    pub offset: u64,
}

/// The result of [`place_temps`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ArenaLayout {
    /// One entry per logical buffer; `None` for non-temporaries and for temporaries nothing uses.
    pub placements: Vec<Option<Placement>>,
    /// Bytes in each arena.
    pub arena_sizes: Vec<u64>,
}

/// Bytes a logical buffer occupies on the device: Vulkan wants non-zero sizes and 4-byte multiples (fill, copy).
pub(crate) fn padded_size(size_bytes: u64) -> u64 {
    size_bytes.max(4).next_multiple_of(4)
}

/// The live interval of every temporary that some step touches or that is an output (or a device-check status).
pub(crate) fn temp_intervals(program: &Program) -> Vec<Option<Interval>> {
    let mut intervals: Vec<Option<Interval>> = vec![None; program.buffers.len()];
    let mut touch = |id: usize, step: usize| {
        let it = intervals[id].get_or_insert(Interval { first: step, last: step });
        it.first = it.first.min(step);
        it.last = it.last.max(step);
    };
    for (step_idx, step) in program.steps.iter().enumerate() {
        for (id, _) in program.step_accesses(step) {
            touch(id.0 as usize, step_idx);
        }
    }
    // Outputs are read by the host after the last step.
    let end = program.steps.len();
    for id in program.outputs.iter().chain(program.checks.iter().map(|c| &c.buffer)) {
        touch(id.0 as usize, end);
    }
    for (it, buf) in intervals.iter_mut().zip(&program.buffers) {
        if !matches!(buf.role, BufferRole::Temp) {
            *it = None;
        }
    }
    intervals
}

/// Places temporaries (`items[i] = Some((bytes, interval))`) into arenas of at most `cap` bytes, with every
/// offset a multiple of `align`. An item larger than `cap` gets an arena of its own (the allocation will then
/// fail with a clear error).
pub(crate) fn place_temps(items: &[Option<(u64, Interval)>], align: u64, cap: u64) -> ArenaLayout {
    let align = align.max(1);
    let mut order: Vec<usize> = (0..items.len()).filter(|&i| items[i].is_some()).collect();
    // Largest first; ties by first use, then index, so the layout is deterministic.
    order.sort_by_key(|&i| {
        let (size, interval) = items[i].unwrap_or((0, Interval { first: 0, last: 0 }));
        (std::cmp::Reverse(size), interval.first, i)
    });
    let mut layout = ArenaLayout { placements: vec![None; items.len()], arena_sizes: Vec::new() };
    // Per arena, the items already placed in it: (offset, size, interval).
    let mut arenas: Vec<Vec<(u64, u64, Interval)>> = Vec::new();
    for i in order {
        let Some((size, interval)) = items[i] else { continue };
        let mut placed = None;
        for (arena_idx, placed_items) in arenas.iter().enumerate() {
            let offset = lowest_fit(placed_items, size, interval, align);
            if offset + size <= cap {
                placed = Some(Placement { arena: arena_idx, offset });
                break;
            }
        }
        let placement = placed.unwrap_or_else(|| {
            arenas.push(Vec::new());
            Placement { arena: arenas.len() - 1, offset: 0 }
        });
        arenas[placement.arena].push((placement.offset, size, interval));
        layout.placements[i] = Some(placement);
    }
    layout.arena_sizes =
        arenas.iter().map(|items| items.iter().map(|&(offset, size, _)| offset + size).max().unwrap_or(0)).collect();
    layout
}

/// The lowest aligned offset where `size` bytes do not collide with any placed item live at the same time.
fn lowest_fit(placed: &[(u64, u64, Interval)], size: u64, interval: Interval, align: u64) -> u64 {
    let mut conflicts: Vec<(u64, u64)> = placed
        .iter()
        .filter(|(_, _, other)| other.overlaps(interval))
        .map(|&(offset, size, _)| (offset, offset + size))
        .collect();
    conflicts.sort_unstable();
    let mut candidate = 0;
    for (start, end) in conflicts {
        if candidate + size <= start {
            break;
        }
        candidate = candidate.max(end.next_multiple_of(align));
    }
    candidate
}

/// A `VkBuffer` with its own memory from gpu-allocator; destroyed on drop.
pub(crate) struct DeviceBuffer {
    ctx: Arc<Context>,
    pub buffer: vk::Buffer,
    allocation: Option<Allocation>,
    pub size: u64,
}

impl DeviceBuffer {
    /// Creates a storage + transfer buffer of `size` bytes in `location`.
    pub fn new(ctx: &Arc<Context>, name: &str, size: u64, location: MemoryLocation) -> Result<DeviceBuffer> {
        DeviceBuffer::with_usage(ctx, name, size, location, vk::BufferUsageFlags::empty())
    }

    /// Like [`DeviceBuffer::new`], with `extra_usage` (indirect dispatch arguments) on top.
    pub fn with_usage(
        ctx: &Arc<Context>,
        name: &str,
        size: u64,
        location: MemoryLocation,
        extra_usage: vk::BufferUsageFlags,
    ) -> Result<DeviceBuffer> {
        let caps = ctx.caps();
        if size > caps.max_buffer_size || size > caps.max_memory_allocation_size {
            let (max, limit) = if caps.max_buffer_size < caps.max_memory_allocation_size {
                (caps.max_buffer_size, "maxBufferSize")
            } else {
                (caps.max_memory_allocation_size, "maxMemoryAllocationSize")
            };
            return Err(VulkanError::BufferTooLarge { name: name.to_owned(), size, max, limit });
        }
        let device = ctx.device();
        let info = vk::BufferCreateInfo::default()
            .size(size)
            .usage(
                vk::BufferUsageFlags::STORAGE_BUFFER
                    | vk::BufferUsageFlags::UNIFORM_TEXEL_BUFFER
                    | vk::BufferUsageFlags::TRANSFER_SRC
                    | vk::BufferUsageFlags::TRANSFER_DST
                    | extra_usage,
            )
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        // SAFETY: valid create info with a non-zero size within the device limits checked above.
        let buffer = unsafe { device.create_buffer(&info, None) }.map_err(VulkanError::vk("vkCreateBuffer"))?;
        // From here on, `Drop` cleans up on every error path.
        let mut res = DeviceBuffer { ctx: ctx.clone(), buffer, allocation: None, size };
        // SAFETY: `buffer` was just created on this device.
        let requirements = unsafe { device.get_buffer_memory_requirements(buffer) };
        let allocation = ctx
            .allocator()
            .allocate(&AllocationCreateDesc {
                name,
                requirements,
                location,
                linear: true,
                allocation_scheme: AllocationScheme::GpuAllocatorManaged,
            })
            .map_err(|source| VulkanError::Alloc { what: format!("`{name}` ({size} bytes)"), source })?;
        // SAFETY: the allocation satisfies the buffer's requirements and is bound once, before any use.
        unsafe { device.bind_buffer_memory(buffer, allocation.memory(), allocation.offset()) }
            .map_err(VulkanError::vk("vkBindBufferMemory"))?;
        res.allocation = Some(allocation);
        ctx.set_name(buffer, name);
        Ok(res)
    }

    /// Whether the host can read and write the buffer's bytes directly (mapped and coherent).
    pub fn host_accessible(&self) -> bool {
        self.allocation.as_ref().is_some_and(|a| {
            a.mapped_ptr().is_some() && a.memory_properties().contains(vk::MemoryPropertyFlags::HOST_COHERENT)
        })
    }

    /// The mapped bytes, if [`DeviceBuffer::host_accessible`].
    pub fn host_bytes(&self) -> Option<&[u8]> {
        if !self.host_accessible() {
            return None;
        }
        self.allocation.as_ref()?.mapped_slice().map(|s| &s[..self.size as usize])
    }

    /// The mapped bytes, if [`DeviceBuffer::host_accessible`].
    pub fn host_bytes_mut(&mut self) -> Option<&mut [u8]> {
        if !self.host_accessible() {
            return None;
        }
        let size = self.size as usize;
        self.allocation.as_mut()?.mapped_slice_mut().map(|s| &mut s[..size])
    }

    /// Bytes of device memory this buffer holds.
    pub fn allocated_bytes(&self) -> u64 {
        self.allocation.as_ref().map_or(0, |a| a.size())
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        // SAFETY: owners drop buffers only after the GPU is done with them (Executable::drop waits first), and
        // the buffer is destroyed exactly once, before its memory is returned to the allocator.
        unsafe { self.ctx.device().destroy_buffer(self.buffer, None) };
        if let Some(allocation) = self.allocation.take() {
            if let Err(err) = self.ctx.allocator().free(allocation) {
                tracing::warn!(%err, "freeing device memory failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(first: usize, last: usize) -> Interval {
        Interval { first, last }
    }

    #[test]
    fn chain_reuses_two_slots() {
        // t0 -> t1 -> t2 -> t3 -> t4, each read by the next step only.
        let items: Vec<_> = (0..5).map(|i| Some((64, iv(i, i + 1)))).collect();
        let layout = place_temps(&items, 16, u64::MAX);
        assert_eq!(layout.arena_sizes, vec![128]);
        for pair in layout.placements.windows(2) {
            assert_ne!(pair[0], pair[1], "neighbours in the chain are live together");
        }
    }

    #[test]
    fn overlapping_never_share_bytes() {
        let items = vec![Some((100, iv(0, 3))), Some((40, iv(1, 2))), Some((60, iv(2, 5))), None, Some((8, iv(4, 4)))];
        let layout = place_temps(&items, 16, u64::MAX);
        for i in 0..items.len() {
            for j in 0..i {
                let (Some((si, ii)), Some((sj, ij))) = (items[i], items[j]) else { continue };
                let (pi, pj) = (layout.placements[i].unwrap(), layout.placements[j].unwrap());
                assert_eq!(pi.offset % 16, 0);
                if ii.overlaps(ij) && pi.arena == pj.arena {
                    assert!(pi.offset + si <= pj.offset || pj.offset + sj <= pi.offset, "{i} and {j} collide");
                }
            }
        }
        assert_eq!(layout.placements[3], None);
    }

    #[test]
    fn cap_opens_new_arenas() {
        let items = vec![Some((60, iv(0, 1))), Some((60, iv(0, 1))), Some((200, iv(0, 0)))];
        let layout = place_temps(&items, 4, 100);
        assert_eq!(layout.arena_sizes.len(), 3);
        assert!(layout.arena_sizes.contains(&200));
    }

    #[test]
    fn padded_sizes() {
        assert_eq!(padded_size(0), 4);
        assert_eq!(padded_size(6), 8);
        assert_eq!(padded_size(16), 16);
    }
}
