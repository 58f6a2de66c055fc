//! The device program: what the compiler hands to a runtime.
//!
//! A [`Program`] is pure data: a list of SPIR-V kernels with their binding
//! layout, a list of logical buffers, and a straight-line list of [`Step`]s
//! that the runtime records once into a command buffer and replays on every
//! call. It knows nothing about HLO (the compiler's side) and nothing about
//! Vulkan (the runtime's side), so that a second runtime (WebGPU, a test
//! double) can consume the same artifact.
//!
//! Invariants a valid program keeps (checked by [`Program::validate`]):
//! - every id points into its table;
//! - every dispatch binds exactly one buffer per kernel binding;
//! - a step only reads buffers that are program inputs, constants, or were
//!   written by an earlier step (so buffer liveness is a simple scan);
//! - every status buffer is a temporary that a fill step zeroes before anything else touches it.
#![forbid(unsafe_code)]

use std::fmt;

/// Index of a logical buffer in [`Program::buffers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferId(pub u32);

/// Index of a kernel in [`Program::kernels`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelId(pub u32);

impl fmt::Display for BufferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "buf{}", self.0)
    }
}

impl fmt::Display for KernelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "k{}", self.0)
    }
}

/// How a kernel uses one of its storage-buffer bindings; lets the runtime
/// place barriers only between a writer and its later readers/writers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
}

impl Access {
    pub fn reads(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite)
    }
    pub fn writes(self) -> bool {
        matches!(self, Access::Write | Access::ReadWrite)
    }
}

/// One compiled compute shader: SPIR-V words plus the facts a runtime needs to
/// build its pipeline layout. Bindings are storage buffers in descriptor set 0,
/// binding `i` for `bindings[i]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// Human-readable name (shows up in `--stats`, debuggers and validation messages).
    pub name: String,
    /// The SPIR-V module.
    pub spirv: Vec<u32>,
    /// Entry point name inside `spirv`.
    pub entry_point: String,
    /// Access mode of each storage-buffer binding, in binding order.
    pub bindings: Vec<Access>,
    /// `local_size` of the entry point.
    pub workgroup_size: [u32; 3],
    /// Size in bytes of the push-constant block (0 if none).
    pub push_constant_bytes: u32,
    /// A hash of whatever the kernel was generated from, for on-disk pipeline caches.
    pub cache_key: u64,
}

/// What a logical buffer holds across a call.
#[derive(Clone, Debug, PartialEq)]
pub enum BufferRole {
    /// Entry parameter leaf number `n`: uploaded by the host before each call.
    Input(u32),
    /// Bytes known at compile time; uploaded once, never written by a step.
    Constant(Vec<u8>),
    /// Scratch produced and consumed inside one call. The runtime may alias
    /// temporaries whose live ranges do not overlap.
    Temp,
}

/// A logical buffer. Sizes are in bytes and are a multiple of 4.
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer {
    pub size_bytes: u64,
    pub role: BufferRole,
    /// Debug name (usually the HLO instruction it holds).
    pub name: String,
}

/// A compute dispatch of one kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct Dispatch {
    pub kernel: KernelId,
    /// One buffer per entry of the kernel's `bindings`, in order.
    pub buffers: Vec<BufferId>,
    /// Workgroup counts.
    pub groups: [u32; 3],
    /// Push-constant bytes, `kernel.push_constant_bytes` long.
    pub push_constants: Vec<u8>,
}

/// One recorded step. Steps execute in order; the runtime inserts the
/// barriers their buffer accesses require.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Dispatch(Dispatch),
    /// Fill a whole buffer with a repeated 32-bit word.
    Fill {
        buffer: BufferId,
        word: u32,
    },
    /// Copy `size_bytes` from the start of `src` to the start of `dst`.
    Copy {
        src: BufferId,
        dst: BufferId,
        size_bytes: u64,
    },
}

/// A complete device program for one HLO entry computation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Program {
    pub kernels: Vec<Kernel>,
    pub buffers: Vec<Buffer>,
    pub steps: Vec<Step>,
    /// The buffers holding the result leaves, in flattened output order.
    /// A buffer may appear more than once, and may be an input or constant.
    pub outputs: Vec<BufferId>,
    /// Conditions kernels check on the device, one entry per checking kernel.
    pub checks: Vec<StatusBuffer>,
}

/// Where one kernel reports conditions that only the device can see going wrong (a loop that the
/// driver stopped early, ...): a run whose result would be wrong must fail instead.
///
/// Protocol: `buffer` is a temporary `u32` that a `Fill` step zeroes before anything else
/// touches it. When the kernel's check `k` fails, it stores `k + 1` there (any failing invocation
/// may win). After every run the runtime reads it like an output and, when it is not 0, fails
/// with `messages[k]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusBuffer {
    pub buffer: BufferId,
    /// The kernel that reports through it.
    pub kernel: String,
    /// What each failure code means, code `k + 1` for entry `k`: a full sentence for the user.
    pub messages: Vec<String>,
}

/// A structural defect in a [`Program`]; always a compiler bug.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProgramError {
    #[error("step {step}: {what} {id} is out of range")]
    BadId { step: usize, what: &'static str, id: u32 },
    #[error("step {step}: kernel {kernel} has {expected} bindings but {found} buffers are bound")]
    BindingCount { step: usize, kernel: String, expected: usize, found: usize },
    #[error("step {step}: buffer {buffer} is read before any step writes it")]
    ReadBeforeWrite { step: usize, buffer: u32 },
    #[error("step {step}: buffer {buffer} is a constant or input and may not be written")]
    WriteToReadOnly { step: usize, buffer: u32 },
    #[error("step {step}: push constants are {found} bytes, kernel wants {expected}")]
    PushConstantSize { step: usize, expected: u32, found: usize },
    #[error("output {index} names buffer {buffer}, which does not exist")]
    BadOutput { index: usize, buffer: u32 },
    #[error("status buffer {buffer} is not a temporary of at least 4 bytes zero-filled before its first use")]
    BadStatus { buffer: u32 },
}

impl Program {
    /// The buffers a step reads and writes, in that order.
    pub fn step_accesses(&self, step: &Step) -> Vec<(BufferId, Access)> {
        match step {
            Step::Dispatch(d) => {
                let kernel = &self.kernels[d.kernel.0 as usize];
                d.buffers.iter().copied().zip(kernel.bindings.iter().copied()).collect()
            }
            Step::Fill { buffer, .. } => vec![(*buffer, Access::Write)],
            Step::Copy { src, dst, .. } => vec![(*src, Access::Read), (*dst, Access::Write)],
        }
    }

    /// Checks the invariants listed in the crate docs.
    pub fn validate(&self) -> Result<(), ProgramError> {
        let n_buffers = self.buffers.len();
        let mut written = vec![false; n_buffers];
        for (i, buf) in self.buffers.iter().enumerate() {
            if !matches!(buf.role, BufferRole::Temp) {
                written[i] = true;
            }
        }
        for (step_idx, step) in self.steps.iter().enumerate() {
            if let Step::Dispatch(d) = step {
                let Some(kernel) = self.kernels.get(d.kernel.0 as usize) else {
                    return Err(ProgramError::BadId { step: step_idx, what: "kernel", id: d.kernel.0 });
                };
                if kernel.bindings.len() != d.buffers.len() {
                    return Err(ProgramError::BindingCount {
                        step: step_idx,
                        kernel: kernel.name.clone(),
                        expected: kernel.bindings.len(),
                        found: d.buffers.len(),
                    });
                }
                if d.push_constants.len() != kernel.push_constant_bytes as usize {
                    return Err(ProgramError::PushConstantSize {
                        step: step_idx,
                        expected: kernel.push_constant_bytes,
                        found: d.push_constants.len(),
                    });
                }
            }
            let accesses = match step {
                Step::Dispatch(_) | Step::Fill { .. } | Step::Copy { .. } => {
                    for id in step_buffer_ids(step) {
                        if id.0 as usize >= n_buffers {
                            return Err(ProgramError::BadId { step: step_idx, what: "buffer", id: id.0 });
                        }
                    }
                    self.step_accesses(step)
                }
            };
            for &(id, access) in &accesses {
                if access.reads() && !access.writes() && !written[id.0 as usize] {
                    return Err(ProgramError::ReadBeforeWrite { step: step_idx, buffer: id.0 });
                }
                if access.writes() && !matches!(self.buffers[id.0 as usize].role, BufferRole::Temp) {
                    return Err(ProgramError::WriteToReadOnly { step: step_idx, buffer: id.0 });
                }
            }
            for &(id, access) in &accesses {
                if access.writes() {
                    written[id.0 as usize] = true;
                }
            }
        }
        for (index, id) in self.outputs.iter().enumerate() {
            if id.0 as usize >= n_buffers {
                return Err(ProgramError::BadOutput { index, buffer: id.0 });
            }
        }
        for status in &self.checks {
            let id = status.buffer;
            let is_temp = self
                .buffers
                .get(id.0 as usize)
                .is_some_and(|b| matches!(b.role, BufferRole::Temp) && b.size_bytes >= 4);
            let first_touch = self.steps.iter().find(|step| step_buffer_ids(step).contains(&id));
            let zeroed_first = matches!(first_touch, Some(Step::Fill { buffer, word: 0 }) if *buffer == id);
            if !is_temp || !zeroed_first {
                return Err(ProgramError::BadStatus { buffer: id.0 });
            }
        }
        Ok(())
    }
}

fn step_buffer_ids(step: &Step) -> Vec<BufferId> {
    match step {
        Step::Dispatch(d) => d.buffers.clone(),
        Step::Fill { buffer, .. } => vec![*buffer],
        Step::Copy { src, dst, .. } => vec![*src, *dst],
    }
}
