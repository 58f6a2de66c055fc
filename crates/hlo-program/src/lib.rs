//! The device program: what the compiler hands to a runtime.
//!
//! A [`Program`] is pure data: a list of SPIR-V kernels with their binding
//! layout, a list of logical buffers, and a list of [`Step`]s that the runtime
//! records once and replays on every call. Steps are straight-line work
//! (dispatch, fill, copy) or structured control flow ([`Loop`],
//! [`Conditional`]) whose decisions the device makes, so a runtime can run
//! them without a host round trip per iteration. It knows nothing about HLO (the compiler's side) and nothing about
//! Vulkan (the runtime's side), so that a second runtime (WebGPU, a test
//! double) can consume the same artifact.
//!
//! Invariants a valid program keeps (checked by [`Program::validate`]):
//! - every id points into its table;
//! - every dispatch binds exactly one buffer per kernel binding;
//! - a step only reads buffers that are program inputs, constants, or were
//!   written by an earlier step (so buffer liveness is a simple scan); a loop
//!   body may read what was written before the loop or earlier in the body, and
//!   after a conditional a buffer counts as written only if it was written
//!   before it or by every branch;
//! - a device loop's flag is a temporary of at least 4 bytes that its
//!   condition steps write;
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
    /// Read through a uniform texel buffer of `R32G32B32A32_UINT` texels (the buffer's bytes, 16
    /// per texel) instead of a storage buffer: on CPU drivers (lavapipe) a texel fetch at a
    /// per-invocation index is a vector gather, where a storage-buffer load is a loop over lanes.
    ReadTexels,
    /// Read through a uniform texel buffer of `R32_UINT` texels (one 32-bit element per texel):
    /// the same gathers as [`Access::ReadTexels`] for arrays of any length and any 32-bit type.
    ReadWordTexels,
}

impl Access {
    pub fn reads(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite | Access::ReadTexels | Access::ReadWordTexels)
    }
    /// 32-bit words per texel where the binding is a uniform texel buffer (4 or 1), else `None`.
    pub fn texel_words(self) -> Option<u32> {
        match self {
            Access::ReadTexels => Some(4),
            Access::ReadWordTexels => Some(1),
            _ => None,
        }
    }
    pub fn writes(self) -> bool {
        matches!(self, Access::Write | Access::ReadWrite)
    }
}

/// One compiled compute shader: SPIR-V words plus the facts a runtime needs to
/// build its pipeline layout. Bindings are storage buffers in descriptor set 0,
/// binding `i` for `bindings[i]` (uniform texel buffers where that is [`Access::ReadTexels`]).
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

/// A byte range of a buffer, bound on its own: a buffer larger than one binding may be
/// (`maxStorageBufferRange`) is bound as several windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferWindow {
    pub offset_bytes: u64,
    pub size_bytes: u64,
}

/// A compute dispatch of one kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct Dispatch {
    pub kernel: KernelId,
    /// One buffer per entry of the kernel's `bindings`, in order.
    pub buffers: Vec<BufferId>,
    /// Per binding, the window of its buffer bound there (`None`: all of it); empty when every
    /// binding is a whole buffer.
    pub windows: Vec<Option<BufferWindow>>,
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
    /// Runs `body` repeatedly; see [`Loop`].
    Loop(Loop),
    /// Runs one of several step lists, chosen on the device; see [`Conditional`].
    Conditional(Conditional),
}

/// A loop whose iterations the device runs back to back (XLA's `while`).
#[derive(Clone, Debug, PartialEq)]
pub struct Loop {
    pub body: Vec<Step>,
    pub trip: TripCount,
}

/// How many times a [`Loop`] runs its body.
#[derive(Clone, Debug, PartialEq)]
pub enum TripCount {
    /// Exactly this many times (0 allowed): known when compiling.
    Static(u64),
    /// Until the device says stop; see [`DeviceCondition`].
    Device(DeviceCondition),
}

/// The test of a data-dependent loop. Each iteration first runs `steps`, which must write the `u32` at the start
/// of `flag`; a nonzero flag runs the body once more, zero ends the loop (so `steps` run once more than the body).
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceCondition {
    pub steps: Vec<Step>,
    pub flag: BufferId,
}

/// Runs `branches[i]` where `i` is the 32-bit word at the start of `selector`, written by an earlier step.
/// As in XLA, an index out of range (a negative `s32` included) selects the last branch; a `pred` conditional is
/// two branches with `true` as branch 0, which the compiler expresses as an index.
#[derive(Clone, Debug, PartialEq)]
pub struct Conditional {
    pub selector: BufferId,
    pub branches: Vec<Vec<Step>>,
}

impl Step {
    /// Whether this step holds other steps.
    pub fn is_structured(&self) -> bool {
        matches!(self, Step::Loop(_) | Step::Conditional(_))
    }

    /// The step lists nested directly in this step, in execution order (a device condition before the body).
    pub fn children(&self) -> Vec<&[Step]> {
        match self {
            Step::Dispatch(_) | Step::Fill { .. } | Step::Copy { .. } => Vec::new(),
            Step::Loop(Loop { body, trip: TripCount::Static(_) }) => vec![body],
            Step::Loop(Loop { body, trip: TripCount::Device(cond) }) => vec![&cond.steps, body],
            Step::Conditional(c) => c.branches.iter().map(Vec::as_slice).collect(),
        }
    }
}

/// Calls `f` on every step of `steps` and of everything nested in them, parents before children.
pub fn walk_steps<'a>(steps: &'a [Step], f: &mut impl FnMut(&'a Step)) {
    for step in steps {
        f(step);
        for child in step.children() {
            walk_steps(child, f);
        }
    }
}

/// How many dispatches one run of `steps` makes: a loop's body once per iteration when the count
/// is static and once when the device decides it (with its condition's steps once more), a
/// conditional its largest branch. Counted the way `hlo_passes::cost_analysis` counts work, so
/// that the two compare.
pub fn dispatches_per_run(steps: &[Step]) -> u64 {
    steps
        .iter()
        .map(|step| match step {
            Step::Dispatch(_) => 1,
            Step::Fill { .. } | Step::Copy { .. } => 0,
            Step::Loop(Loop { body, trip: TripCount::Static(n) }) => n.saturating_mul(dispatches_per_run(body)),
            Step::Loop(Loop { body, trip: TripCount::Device(cond) }) => {
                2 * dispatches_per_run(&cond.steps) + dispatches_per_run(body)
            }
            Step::Conditional(c) => c.branches.iter().map(|b| dispatches_per_run(b)).max().unwrap_or(0),
        })
        .fold(0, u64::saturating_add)
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
    #[error("step {step}: loop flag {buffer} is not a temporary of at least 4 bytes written by the condition steps")]
    BadLoopFlag { step: usize, buffer: u32 },
    #[error("step {step}: selector {buffer} of a conditional is smaller than 4 bytes")]
    BadSelector { step: usize, buffer: u32 },
    #[error("step {step}: a conditional needs at least one branch")]
    NoBranches { step: usize },
    #[error("step {step}: binding {binding} has a window past the end of buffer {buffer}, or the dispatch has windows for some bindings only")]
    BadWindow { step: usize, binding: usize, buffer: u32 },
}

impl Program {
    /// The buffers a step reads and writes, in that order. For a structured step: everything its nested steps
    /// touch plus the selector or flag it reads, so that liveness treats the whole structure as one step.
    pub fn step_accesses(&self, step: &Step) -> Vec<(BufferId, Access)> {
        match step {
            Step::Dispatch(d) => {
                let kernel = &self.kernels[d.kernel.0 as usize];
                d.buffers.iter().copied().zip(kernel.bindings.iter().copied()).collect()
            }
            Step::Fill { buffer, .. } => vec![(*buffer, Access::Write)],
            Step::Copy { src, dst, .. } => vec![(*src, Access::Read), (*dst, Access::Write)],
            Step::Loop(_) | Step::Conditional(_) => {
                let mut accesses = Vec::new();
                match step {
                    Step::Conditional(c) => accesses.push((c.selector, Access::Read)),
                    Step::Loop(Loop { trip: TripCount::Device(cond), .. }) => accesses.push((cond.flag, Access::Read)),
                    _ => {}
                }
                for child in step.children() {
                    walk_steps(child, &mut |nested| {
                        if !nested.is_structured() {
                            accesses.extend(self.step_accesses(nested));
                        }
                    });
                }
                accesses
            }
        }
    }

    /// Checks the invariants listed in the crate docs. Errors inside structured steps name the top-level step.
    pub fn validate(&self) -> Result<(), ProgramError> {
        let n_buffers = self.buffers.len();
        let mut written = vec![false; n_buffers];
        for (i, buf) in self.buffers.iter().enumerate() {
            if !matches!(buf.role, BufferRole::Temp) {
                written[i] = true;
            }
        }
        for (step_idx, step) in self.steps.iter().enumerate() {
            self.validate_step(step_idx, step, &mut written)?;
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
            let mut first_touch = None;
            walk_steps(&self.steps, &mut |step| {
                if first_touch.is_none() && step_buffer_ids(step).contains(&id) {
                    first_touch = Some(step);
                }
            });
            let zeroed_first = matches!(first_touch, Some(Step::Fill { buffer, word: 0 }) if *buffer == id);
            if !is_temp || !zeroed_first {
                return Err(ProgramError::BadStatus { buffer: id.0 });
            }
        }
        Ok(())
    }

    /// Validates `step` (top-level index `step_idx`) given which buffers hold data before it; updates `written`
    /// to what surely holds data after it.
    fn validate_step(&self, step_idx: usize, step: &Step, written: &mut Vec<bool>) -> Result<(), ProgramError> {
        let n_buffers = self.buffers.len();
        let check_id = |id: BufferId| {
            if id.0 as usize >= n_buffers {
                return Err(ProgramError::BadId { step: step_idx, what: "buffer", id: id.0 });
            }
            Ok(())
        };
        let validate_list = |steps: &[Step], written: &mut Vec<bool>| {
            steps.iter().try_for_each(|nested| self.validate_step(step_idx, nested, written))
        };
        match step {
            Step::Loop(Loop { body, trip: TripCount::Static(trips) }) => {
                let mut after_body = written.clone();
                validate_list(body, &mut after_body)?;
                if *trips > 0 {
                    *written = after_body;
                }
                return Ok(());
            }
            Step::Loop(Loop { body, trip: TripCount::Device(cond) }) => {
                check_id(cond.flag)?;
                let flag = cond.flag.0 as usize;
                let flag_ok = matches!(self.buffers[flag].role, BufferRole::Temp) && self.buffers[flag].size_bytes >= 4;
                // The flag must come from the condition steps themselves, not from before the loop.
                let mut after_cond = written.clone();
                after_cond[flag] = false;
                validate_list(&cond.steps, &mut after_cond)?;
                if !flag_ok || !after_cond[flag] {
                    return Err(ProgramError::BadLoopFlag { step: step_idx, buffer: cond.flag.0 });
                }
                // The condition always runs once; the body may not run at all.
                let mut after_body = after_cond.clone();
                validate_list(body, &mut after_body)?;
                *written = after_cond;
                return Ok(());
            }
            Step::Conditional(c) => {
                check_id(c.selector)?;
                if self.buffers[c.selector.0 as usize].size_bytes < 4 {
                    return Err(ProgramError::BadSelector { step: step_idx, buffer: c.selector.0 });
                }
                if !written[c.selector.0 as usize] {
                    return Err(ProgramError::ReadBeforeWrite { step: step_idx, buffer: c.selector.0 });
                }
                if c.branches.is_empty() {
                    return Err(ProgramError::NoBranches { step: step_idx });
                }
                let mut in_every_branch = vec![true; n_buffers];
                for branch in &c.branches {
                    let mut after_branch = written.clone();
                    validate_list(branch, &mut after_branch)?;
                    for (all, this) in in_every_branch.iter_mut().zip(after_branch) {
                        *all &= this;
                    }
                }
                *written = in_every_branch;
                return Ok(());
            }
            Step::Dispatch(d) => {
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
                if !d.windows.is_empty() && d.windows.len() != d.buffers.len() {
                    return Err(ProgramError::BadWindow { step: step_idx, binding: d.windows.len(), buffer: 0 });
                }
                for (binding, (id, window)) in d.buffers.iter().zip(&d.windows).enumerate() {
                    let size = self.buffers.get(id.0 as usize).map_or(0, |b| b.size_bytes);
                    if let Some(w) = window {
                        if w.size_bytes == 0 || w.offset_bytes.saturating_add(w.size_bytes) > size {
                            return Err(ProgramError::BadWindow { step: step_idx, binding, buffer: id.0 });
                        }
                    }
                }
                if d.push_constants.len() != kernel.push_constant_bytes as usize {
                    return Err(ProgramError::PushConstantSize {
                        step: step_idx,
                        expected: kernel.push_constant_bytes,
                        found: d.push_constants.len(),
                    });
                }
            }
            Step::Fill { .. } | Step::Copy { .. } => {}
        }
        for id in step_buffer_ids(step) {
            check_id(id)?;
        }
        let accesses = self.step_accesses(step);
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
        Ok(())
    }
}

/// The buffers a step names itself (for a structured step, its selector or flag; not its nested steps').
fn step_buffer_ids(step: &Step) -> Vec<BufferId> {
    match step {
        Step::Dispatch(d) => d.buffers.clone(),
        Step::Fill { buffer, .. } => vec![*buffer],
        Step::Copy { src, dst, .. } => vec![*src, *dst],
        Step::Loop(Loop { trip: TripCount::Device(cond), .. }) => vec![cond.flag],
        Step::Loop(_) => Vec::new(),
        Step::Conditional(c) => vec![c.selector],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Access = Access::Read;
    const W: Access = Access::Write;
    const RW: Access = Access::ReadWrite;

    fn kernel(name: &str, bindings: &[Access]) -> Kernel {
        Kernel {
            name: name.into(),
            spirv: Vec::new(),
            entry_point: "main".into(),
            bindings: bindings.to_vec(),
            workgroup_size: [1, 1, 1],
            push_constant_bytes: 0,
            cache_key: 0,
        }
    }

    fn temp(name: &str) -> Buffer {
        Buffer { size_bytes: 4, role: BufferRole::Temp, name: name.into() }
    }

    /// Kernel 0 copies binding 0 into binding 1; kernel 1 updates its binding in place.
    fn program(buffers: Vec<Buffer>, steps: Vec<Step>) -> Program {
        Program {
            kernels: vec![kernel("copy", &[R, W]), kernel("update", &[RW])],
            buffers,
            steps,
            ..Default::default()
        }
    }

    fn copy(src: u32, dst: u32) -> Step {
        Step::Dispatch(Dispatch {
            kernel: KernelId(0),
            buffers: vec![BufferId(src), BufferId(dst)],
            windows: Vec::new(),
            groups: [1, 1, 1],
            push_constants: Vec::new(),
        })
    }

    fn fill(buffer: u32) -> Step {
        Step::Fill { buffer: BufferId(buffer), word: 0 }
    }

    fn static_loop(trips: u64, body: Vec<Step>) -> Step {
        Step::Loop(Loop { body, trip: TripCount::Static(trips) })
    }

    fn device_loop(cond: Vec<Step>, flag: u32, body: Vec<Step>) -> Step {
        Step::Loop(Loop { body, trip: TripCount::Device(DeviceCondition { steps: cond, flag: BufferId(flag) }) })
    }

    fn conditional(selector: u32, branches: Vec<Vec<Step>>) -> Step {
        Step::Conditional(Conditional { selector: BufferId(selector), branches })
    }

    fn buffers(n: usize) -> Vec<Buffer> {
        let mut buffers = vec![Buffer { size_bytes: 4, role: BufferRole::Input(0), name: "in".into() }];
        buffers.extend((1..n).map(|i| temp(&format!("t{i}"))));
        buffers
    }

    #[test]
    fn loop_body_reads_what_was_written_before_or_earlier_in_the_body() {
        let p = program(buffers(3), vec![fill(1), static_loop(3, vec![copy(1, 2), copy(2, 1)])]);
        assert_eq!(p.validate(), Ok(()));
        // t2 is read before the body writes it (on the first iteration nothing has).
        let p = program(buffers(3), vec![fill(1), static_loop(3, vec![copy(2, 1), copy(1, 2)])]);
        assert_eq!(p.validate(), Err(ProgramError::ReadBeforeWrite { step: 1, buffer: 2 }));
    }

    #[test]
    fn writes_of_a_loop_count_after_it_only_when_the_body_surely_ran() {
        let after = |looped: Step| program(buffers(3), vec![fill(1), looped, copy(2, 1)]).validate();
        assert_eq!(after(static_loop(2, vec![copy(1, 2)])), Ok(()));
        assert_eq!(after(static_loop(0, vec![copy(1, 2)])), Err(ProgramError::ReadBeforeWrite { step: 2, buffer: 2 }));
        // A device loop's body may run zero times; its condition always runs.
        assert_eq!(
            after(device_loop(vec![copy(0, 3)], 3, vec![copy(1, 2)])).map_err(|_| ()),
            Err(()),
            "buffer 3 does not exist"
        );
        let p = program(buffers(4), vec![fill(1), device_loop(vec![copy(1, 3)], 3, vec![copy(1, 2)]), copy(2, 1)]);
        assert_eq!(p.validate(), Err(ProgramError::ReadBeforeWrite { step: 2, buffer: 2 }));
        let p = program(buffers(4), vec![fill(1), device_loop(vec![copy(1, 2), copy(1, 3)], 3, vec![]), copy(2, 1)]);
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn loop_flag_must_be_a_temp_written_by_the_condition() {
        let p = program(buffers(3), vec![fill(1), fill(2), device_loop(vec![], 2, vec![copy(1, 2)])]);
        assert_eq!(p.validate(), Err(ProgramError::BadLoopFlag { step: 2, buffer: 2 }));
        let p = program(buffers(3), vec![fill(1), device_loop(vec![copy(1, 0)], 0, vec![])]);
        assert_eq!(p.validate(), Err(ProgramError::WriteToReadOnly { step: 1, buffer: 0 }));
        let mut bufs = buffers(3);
        bufs[2].size_bytes = 0;
        let p = program(bufs, vec![fill(1), device_loop(vec![copy(1, 2)], 2, vec![])]);
        assert_eq!(p.validate(), Err(ProgramError::BadLoopFlag { step: 1, buffer: 2 }));
        let p = program(buffers(3), vec![fill(1), device_loop(vec![copy(1, 2)], 2, vec![copy(2, 1)])]);
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn after_a_conditional_only_writes_of_every_branch_count() {
        let both = conditional(0, vec![vec![copy(0, 1), copy(0, 2)], vec![copy(0, 2)]]);
        let p = program(buffers(4), vec![both.clone(), copy(2, 3)]);
        assert_eq!(p.validate(), Ok(()));
        let p = program(buffers(4), vec![both, copy(1, 3)]);
        assert_eq!(p.validate(), Err(ProgramError::ReadBeforeWrite { step: 1, buffer: 1 }));
        let p = program(buffers(4), vec![conditional(1, vec![vec![]])]);
        assert_eq!(p.validate(), Err(ProgramError::ReadBeforeWrite { step: 0, buffer: 1 }));
        let p = program(buffers(4), vec![conditional(0, vec![])]);
        assert_eq!(p.validate(), Err(ProgramError::NoBranches { step: 0 }));
    }

    #[test]
    fn nested_steps_are_checked_for_ids_and_counts() {
        let deep = |inner: Step| {
            program(buffers(3), vec![fill(1), device_loop(vec![copy(1, 2)], 2, vec![static_loop(2, vec![inner])])])
        };
        assert_eq!(deep(copy(1, 9)).validate(), Err(ProgramError::BadId { step: 1, what: "buffer", id: 9 }));
        let bad_kernel = Step::Dispatch(Dispatch {
            kernel: KernelId(7),
            buffers: vec![],
            windows: Vec::new(),
            groups: [1, 1, 1],
            push_constants: vec![],
        });
        assert_eq!(deep(bad_kernel).validate(), Err(ProgramError::BadId { step: 1, what: "kernel", id: 7 }));
        let nested_cond = conditional(2, vec![vec![copy(1, 2)], vec![static_loop(1, vec![copy(2, 1)])]]);
        assert_eq!(deep(nested_cond).validate(), Ok(()));
    }

    #[test]
    fn structured_accesses_cover_nested_steps() {
        let p = program(
            buffers(4),
            vec![fill(1), device_loop(vec![copy(1, 2)], 2, vec![conditional(2, vec![vec![copy(1, 3)]])])],
        );
        let accesses = p.step_accesses(&p.steps[1]);
        for (id, access) in [(2, R), (1, R), (2, W), (3, W)] {
            assert!(accesses.contains(&(BufferId(id), access)), "{id} {access:?} in {accesses:?}");
        }
    }

    #[test]
    fn dispatches_per_run_counts_loop_iterations_and_the_largest_branch() {
        let steps = vec![
            fill(1),
            copy(0, 1),
            static_loop(10, vec![copy(1, 2), copy(2, 1)]),
            // A device loop: its condition's steps twice, its body once.
            device_loop(vec![copy(1, 3)], 3, vec![copy(1, 2)]),
            conditional(3, vec![vec![copy(1, 2)], vec![copy(1, 2), copy(2, 1), copy(1, 2)], vec![]]),
        ];
        assert_eq!(dispatches_per_run(&steps), 1 + 20 + 3 + 3);
        assert_eq!(dispatches_per_run(&[static_loop(u64::MAX, vec![copy(0, 1), copy(0, 1)])]), u64::MAX);
    }
}
