//! Structured control flow on the device: which loops and conditionals the device decides alone, and the small
//! internal kernels that make its decisions.
//!
//! Predication: a dispatch inside a conditional branch or a device loop is recorded as `vkCmdDispatchIndirect`
//! whose group counts live in one 12-byte *slot* of the args buffer. A *gate* kernel, recorded right after the
//! selector or flag is computed, writes each slot's counts from [`ControlPlan::table`] or zeros, and keeps the
//! predicate of its region in a *control word* so that nested gates can AND it in. A device loop's word is
//! sticky: once its flag was zero, the loop stays done for every later iteration recorded in the same batch.
//! Fills and copies inside a predicated region run as internal kernels so that they can be dispatched indirectly.
//!
//! What needs the host: a device loop runs in recorded batches of predicated iterations, and the host reads its
//! sticky word only between batches. A device loop nested inside another device loop or a conditional cannot be
//! predicated that way (nobody could tell when to stop submitting), so such an enclosing structure is *host
//! driven*: the host reads its selector or flag back and decides (one round trip per decision). Everything else
//! (conditionals, static loops, nesting of those) stays on the device.

use std::collections::HashMap;

use hlo_program::{Access, Kernel, Loop, Program, Step, TripCount};

use crate::error::{Result, VulkanError};
use crate::memory::padded_size;

/// Identity of a step of the program being built: its address, stable while the builder borrows the program.
pub(crate) type StepKey = usize;

pub(crate) fn step_key(step: &Step) -> StepKey {
    std::ptr::from_ref(step) as usize
}

/// Control word 0 is always 1: the predicate of code outside any predicated region.
pub(crate) const ALWAYS_ON: u32 = 0;

/// Gate modes (the `mode` push constant of [`GATE_WGSL`]).
pub(crate) const GATE_LOOP_INIT: u32 = 0;
pub(crate) const GATE_LOOP_STEP: u32 = 1;
pub(crate) const GATE_SELECT: u32 = 2;

/// Most iterations one recorded batch of a loop holds; batches of a device loop grow 1, 2, 4, ... up to it.
pub(crate) const MAX_BATCH_ITERATIONS: u64 = 4096;
/// Most commands (leaf steps, gates) one recorded batch holds; caps the batch size of large bodies.
const BATCH_COMMAND_BUDGET: u64 = 1 << 16;
/// A static loop outside predicated code with at most this many commands in all is recorded inline.
pub(crate) const INLINE_STATIC_COMMANDS: u64 = 1024;
/// Most commands a static loop inside predicated code may unroll to (it has to be recorded inline there).
pub(crate) const MAX_UNROLLED_COMMANDS: u64 = 1 << 16;
/// After the largest batch, the host submits it this many times at most between two reads of the loop's word.
pub(crate) const MAX_BATCH_REPEATS: u64 = 8;

/// Bytes of one slot of indirect dispatch arguments.
pub(crate) const SLOT_BYTES: u64 = 12;

/// What one gate dispatch computes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gate {
    /// The first control word it writes: a loop's sticky word, or the word of a conditional's branch 0 (branch
    /// `b` has word `word + b`).
    pub word: u32,
    /// The predicate of the enclosing region.
    pub parent: u32,
    pub first_slot: u32,
    /// A loop's condition slots, which come first and which the initial gate already opens.
    pub n_init_slots: u32,
    pub n_slots: u32,
    pub n_branches: u32,
}

/// Where the predication of a program puts its words and slots.
#[derive(Debug, Default)]
pub(crate) struct ControlPlan {
    pub n_words: u32,
    /// Per slot: the group counts when active, and the branch the slot belongs to.
    pub table: Vec<u32>,
    /// The slot of every leaf step inside predicated code.
    pub slots: HashMap<StepKey, u32>,
    /// The gate of every device-decided structure.
    pub gates: HashMap<StepKey, Gate>,
    /// The control word the host reads a host-driven structure's flag or selector from.
    pub host_words: HashMap<StepKey, u32>,
}

impl ControlPlan {
    pub fn new(program: &Program) -> Result<ControlPlan> {
        let mut plan = ControlPlan { n_words: 1, ..Default::default() };
        plan.plan_host(program, &program.steps)?;
        Ok(plan)
    }

    pub fn is_empty(&self) -> bool {
        self.gates.is_empty() && self.host_words.is_empty()
    }

    pub fn n_slots(&self) -> u32 {
        (self.table.len() / 4) as u32
    }

    fn new_words(&mut self, n: u32) -> u32 {
        self.n_words += n;
        self.n_words - n
    }

    fn plan_host(&mut self, program: &Program, steps: &[Step]) -> Result<()> {
        for step in steps {
            match step {
                Step::Dispatch(_) | Step::Fill { .. } | Step::Copy { .. } => {}
                Step::Loop(Loop { body, trip: TripCount::Static(_) }) => self.plan_host(program, body)?,
                Step::Loop(Loop { body, trip: TripCount::Device(cond) }) => {
                    if contains_device_loop(&cond.steps) || contains_device_loop(body) {
                        let word = self.new_words(1);
                        self.host_words.insert(step_key(step), word);
                        self.plan_host(program, &cond.steps)?;
                        self.plan_host(program, body)?;
                    } else {
                        let word = self.new_words(1);
                        let first_slot = self.n_slots();
                        self.assign_slots(program, &cond.steps, 0)?;
                        let n_init_slots = self.n_slots() - first_slot;
                        self.assign_slots(program, body, 0)?;
                        let n_slots = self.n_slots() - first_slot;
                        let gate = Gate { word, parent: ALWAYS_ON, first_slot, n_init_slots, n_slots, n_branches: 1 };
                        self.gates.insert(step_key(step), gate);
                        self.plan_nested(program, &cond.steps, word)?;
                        self.plan_nested(program, body, word)?;
                    }
                }
                Step::Conditional(c) => {
                    if c.branches.iter().any(|b| contains_device_loop(b)) {
                        let word = self.new_words(1);
                        self.host_words.insert(step_key(step), word);
                        for branch in &c.branches {
                            self.plan_host(program, branch)?;
                        }
                    } else {
                        self.plan_conditional(program, step, ALWAYS_ON)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn plan_conditional(&mut self, program: &Program, step: &Step, parent: u32) -> Result<()> {
        let Step::Conditional(c) = step else { unreachable!("called on conditionals only") };
        let n_branches = c.branches.len() as u32;
        let word = self.new_words(n_branches);
        let first_slot = self.n_slots();
        for (b, branch) in c.branches.iter().enumerate() {
            self.assign_slots(program, branch, b as u32)?;
        }
        let n_slots = self.n_slots() - first_slot;
        self.gates.insert(step_key(step), Gate { word, parent, first_slot, n_init_slots: 0, n_slots, n_branches });
        for (b, branch) in c.branches.iter().enumerate() {
            self.plan_nested(program, branch, word + b as u32)?;
        }
        Ok(())
    }

    /// Gives a slot to every leaf that `steps` runs under one predicate: through static loops (whose copies share
    /// the slot), not into conditionals (which have their own gate).
    fn assign_slots(&mut self, program: &Program, steps: &[Step], branch: u32) -> Result<()> {
        for step in steps {
            let groups = match step {
                Step::Dispatch(d) => d.groups,
                Step::Fill { buffer, .. } => {
                    internal_groups(padded_size(program.buffers[buffer.0 as usize].size_bytes) / 4).0
                }
                Step::Copy { size_bytes, .. } => internal_groups(size_bytes / 4).0,
                Step::Loop(Loop { body, trip: TripCount::Static(_) }) => {
                    self.assign_slots(program, body, branch)?;
                    continue;
                }
                Step::Conditional(_) => continue,
                Step::Loop(_) => unreachable!("structures holding device loops are host driven"),
            };
            let slot = self.n_slots();
            self.table.extend([groups[0], groups[1], groups[2], branch]);
            self.slots.insert(step_key(step), slot);
        }
        Ok(())
    }

    /// Plans the conditionals nested in predicated `steps` (under predicate word `pred`).
    fn plan_nested(&mut self, program: &Program, steps: &[Step], pred: u32) -> Result<()> {
        for step in steps {
            match step {
                Step::Loop(Loop { body, trip: TripCount::Static(_) }) => self.plan_nested(program, body, pred)?,
                Step::Conditional(_) => self.plan_conditional(program, step, pred)?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Whether a device loop occurs anywhere in `steps`.
pub(crate) fn contains_device_loop(steps: &[Step]) -> bool {
    let mut found = false;
    hlo_program::walk_steps(steps, &mut |step| {
        found |= matches!(step, Step::Loop(Loop { trip: TripCount::Device(_), .. }));
    });
    found
}

/// Commands recording `steps` once emits (leaves and gates; static loops unrolled), saturating.
pub(crate) fn recorded_commands(steps: &[Step]) -> u64 {
    steps
        .iter()
        .map(|step| match step {
            Step::Dispatch(_) | Step::Fill { .. } | Step::Copy { .. } => 1,
            Step::Loop(Loop { body, trip: TripCount::Static(n) }) => n.saturating_mul(recorded_commands(body)),
            Step::Loop(Loop { body, trip: TripCount::Device(cond) }) => {
                1 + recorded_commands(&cond.steps).saturating_add(recorded_commands(body))
            }
            Step::Conditional(c) => c.branches.iter().fold(1u64, |sum, b| sum.saturating_add(recorded_commands(b))),
        })
        .fold(0u64, u64::saturating_add)
}

/// Iterations per recorded batch for a loop whose one iteration records `commands_per_iteration` commands.
pub(crate) fn batch_cap(commands_per_iteration: u64) -> u64 {
    (BATCH_COMMAND_BUDGET / commands_per_iteration.max(1)).clamp(1, MAX_BATCH_ITERATIONS)
}

/// Group counts of an internal fill or copy over `n_words` words, and the words per row of the grid (`y` rows).
pub(crate) fn internal_groups(n_words: u64) -> ([u32; 3], u32) {
    let groups = n_words.div_ceil(64).max(1);
    let x = groups.min(65_535);
    let y = groups.div_ceil(x);
    ([x as u32, y as u32, 1], (x * 64) as u32)
}

/// The gate: computes its region's predicate and writes the indirect arguments of the region's slots.
/// Push constants: mode, word, parent, first_slot, n_slots, n_branches.
const GATE_WGSL: &str = r#"
struct Gate { mode: u32, word: u32, parent: u32, first_slot: u32, n_slots: u32, n_branches: u32, pad0: u32, pad1: u32 }
var<immediate> gate: Gate;
@group(0) @binding(0) var<storage, read> value: array<u32>;
@group(0) @binding(1) var<storage, read_write> control: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> args: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lane: u32) {
    let parent_on = control[gate.parent] != 0u;
    var on = parent_on;
    var taken = 0u;
    if gate.mode == 1u {
        on = control[gate.word] != 0u && value[0] != 0u;
    } else if gate.mode == 2u {
        // XLA: an out-of-range index (a negative s32 reads as a large u32) takes the last branch.
        taken = min(value[0], gate.n_branches - 1u);
    }
    // Every lane has read the old words before lane 0 writes the new ones.
    storageBarrier();
    if lane == 0u {
        if gate.mode == 2u {
            for (var b = 0u; b < gate.n_branches; b++) {
                control[gate.word + b] = select(0u, 1u, parent_on && b == taken);
            }
        } else {
            control[gate.word] = select(0u, 1u, on);
        }
    }
    for (var s = lane; s < gate.n_slots; s += 64u) {
        let slot = gate.first_slot + s;
        var slot_on = on;
        if gate.mode == 2u {
            slot_on = parent_on && table[slot * 4u + 3u] == taken;
        }
        args[slot * 3u] = select(0u, table[slot * 4u], slot_on);
        args[slot * 3u + 1u] = select(0u, table[slot * 4u + 1u], slot_on);
        args[slot * 3u + 2u] = select(0u, table[slot * 4u + 2u], slot_on);
    }
}
"#;

/// A fill step inside predicated code. Push constants: word, n_words, row_words.
const FILL_WGSL: &str = r#"
struct Fill { word: u32, n_words: u32, row_words: u32, pad: u32 }
var<immediate> fill: Fill;
@group(0) @binding(0) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.y * fill.row_words + id.x;
    if i < fill.n_words { dst[i] = fill.word; }
}
"#;

/// A copy step inside predicated code. Push constants: n_words, row_words.
const COPY_WGSL: &str = r#"
struct Copy { n_words: u32, row_words: u32, pad0: u32, pad1: u32 }
var<immediate> copy: Copy;
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.y * copy.row_words + id.x;
    if i < copy.n_words { dst[i] = src[i]; }
}
"#;

/// The internal kernels, in the order gate, fill, copy.
pub(crate) fn internal_kernels() -> Result<Vec<Kernel>> {
    let kernel = |name: &str, wgsl: &str, bindings: &[Access]| -> Result<Kernel> {
        Ok(Kernel {
            name: name.into(),
            spirv: compile_wgsl(name, wgsl)?,
            entry_point: "main".into(),
            bindings: bindings.to_vec(),
            workgroup_size: [64, 1, 1],
            push_constant_bytes: if name == "hlo-vulkan gate" { 32 } else { 16 },
            cache_key: 0,
        })
    };
    use Access::{Read, ReadWrite};
    Ok(vec![
        kernel("hlo-vulkan gate", GATE_WGSL, &[Read, ReadWrite, Read, ReadWrite])?,
        kernel("hlo-vulkan predicated fill", FILL_WGSL, &[ReadWrite])?,
        kernel("hlo-vulkan predicated copy", COPY_WGSL, &[Read, ReadWrite])?,
    ])
}

fn compile_wgsl(name: &str, wgsl: &str) -> Result<Vec<u32>> {
    let bad = |reason: String| VulkanError::InvalidKernel { kernel: name.into(), reason };
    let module = naga::front::wgsl::parse_str(wgsl).map_err(|e| bad(e.emit_to_string(wgsl)))?;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::IMMEDIATES)
        .validate(&module)
        .map_err(|e| bad(e.emit_to_string(wgsl)))?;
    let options = naga::back::spv::Options { lang_version: (1, 3), ..Default::default() };
    let pipeline =
        naga::back::spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: "main".into() };
    naga::back::spv::write_vec(&module, &info, &options, Some(&pipeline)).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_kernels_compile() {
        let kernels = internal_kernels().unwrap();
        assert_eq!(kernels.len(), 3);
    }

    #[test]
    fn internal_grids_cover_every_word() {
        assert_eq!(internal_groups(1), ([1, 1, 1], 64));
        let (groups, row) = internal_groups(65_535 * 64 + 1);
        assert_eq!(groups, [65_535, 2, 1]);
        assert!(groups[0] as u64 * groups[1] as u64 * 64 > 65_535 * 64);
        assert_eq!(row, 65_535 * 64);
    }

    #[test]
    fn batch_caps() {
        assert_eq!(batch_cap(3), MAX_BATCH_ITERATIONS);
        assert_eq!(batch_cap(1 << 20), 1);
    }
}
