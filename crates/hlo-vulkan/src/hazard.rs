//! Where the recorded command buffer needs a pipeline barrier.
//!
//! Steps run in order on one queue, but Vulkan lets consecutive commands overlap unless a barrier orders them.
//! A step needs a barrier before it when it touches bytes that an earlier, not yet ordered step wrote
//! (read-after-write, write-after-write), or writes bytes that such a step read (write-after-read).
//! Accesses are byte ranges of `VkBuffer`s, so temporaries that share arena memory are handled like any other
//! overlap.
//!
//! Every barrier we record is a full compute+transfer memory barrier, so after one nothing is pending; the
//! tracker only decides *where* barriers go, which is what costs time on the device.

/// A byte range `start..end` of one `VkBuffer`, identified by the runtime's index for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Region {
    pub resource: usize,
    pub start: u64,
    pub end: u64,
}

impl Region {
    fn overlaps(&self, other: &Region) -> bool {
        self.resource == other.resource && self.start < other.end && other.start < self.end
    }
}

/// Accesses since the last barrier.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    writes: Vec<Region>,
    reads: Vec<Region>,
}

impl Tracker {
    /// Registers one step's accesses (`(region, writes)`); returns whether a barrier must precede the step.
    pub fn step(&mut self, accesses: &[(Region, bool)]) -> bool {
        let hazard = accesses.iter().any(|(region, writes)| {
            self.writes.iter().any(|w| w.overlaps(region)) || (*writes && self.reads.iter().any(|r| r.overlaps(region)))
        });
        if hazard {
            self.writes.clear();
            self.reads.clear();
        }
        for &(region, writes) in accesses {
            if writes {
                self.writes.push(region);
            } else {
                self.reads.push(region);
            }
        }
        hazard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(resource: usize, start: u64, end: u64) -> Region {
        Region { resource, start, end }
    }

    #[test]
    fn independent_steps_need_no_barrier() {
        let mut t = Tracker::default();
        assert!(!t.step(&[(r(0, 0, 16), false), (r(1, 0, 16), true)]));
        assert!(!t.step(&[(r(0, 0, 16), false), (r(1, 16, 32), true)]));
    }

    #[test]
    fn read_after_write() {
        let mut t = Tracker::default();
        assert!(!t.step(&[(r(1, 0, 16), true)]));
        assert!(t.step(&[(r(1, 8, 12), false), (r(2, 0, 4), true)]));
        // The barrier ordered everything before it.
        assert!(!t.step(&[(r(1, 0, 16), false), (r(3, 0, 4), true)]));
    }

    #[test]
    fn write_after_read_through_aliasing() {
        let mut t = Tracker::default();
        assert!(!t.step(&[(r(0, 0, 64), false), (r(5, 0, 4), true)]));
        assert!(t.step(&[(r(0, 32, 48), true)]));
    }
}
