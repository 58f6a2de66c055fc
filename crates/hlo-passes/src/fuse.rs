//! `fusion`: groups instructions into kernels, producing XLA-style fused HLO.
//!
//! On lavapipe every dispatch costs tens of microseconds and dispatches run one
//! after another, so the number of kernels decides speed. This pass makes as
//! few kernels as it can without recomputing expensive values many times.
//!
//! Pre-conditions: calls inlined and the module normalised (no `call`, no
//! `bitcast`/`copy` carrying layouts); a `fusion` already present is left as it is.
//! Post-conditions, for every control computation (the entry, `while` bodies
//! and conditions, `conditional` branches):
//! - it holds only `parameter`, `constant`, `tuple`, `get-tuple-element`,
//!   `fusion`, control flow, standalone ops this pass does not fuse
//!   (`dot`, `convolution`, `sort`, `custom-call`, random number generators, ...),
//!   and `reshape`s of materialised values: a row-major reshape moves no data,
//!   so it stays as a view of its operand's buffer instead of becoming a kernel
//!   (listed under "views" in the report);
//! - each `fusion` calls a new computation of kind `kLoop` (elemental) or
//!   `kInput` (a `reduce` or `scatter` hero, see [`crate::fusion_analysis`]);
//!   a multi-output fusion has a `tuple` root and its users read it through
//!   `get-tuple-element`;
//! - reducers, comparators and other computations applied by ops are untouched.
//!
//! How groups form (XLA's producer-consumer fusion with duplication):
//! 1. Instructions are visited from the root towards the parameters. An
//!    instruction whose value must exist in memory (an operand of the root, of
//!    a control-flow op, of a standalone op, or a producer some group rejected)
//!    starts a group and becomes its output.
//! 2. The group then considers its producers, latest first, and asks
//!    [`FusionDecision`] for each edge. A fused producer whose other users lie
//!    outside the group is duplicated: it is recomputed inside the group and
//!    still materialised if someone else needs it. The cost rule estimates how
//!    often the group evaluates each producer element (a broadcast multiplies,
//!    a reduction reads many elements per output) and fuses when the extra
//!    work is below what a separate kernel and its memory traffic would cost.
//!    So a cheap reduction (a few elements per output) is recomputed inside its
//!    consumers, while a reduction broadcast back over its input is not.
//! 3. Sibling groups with the same output dimensions (loop kernels), or with
//!    reductions of the same operand and dimensions, and with no path between
//!    them, are merged into multi-output fusions.
//!
//! Every decision is recorded in a [`FusionReport`] (`--explain-fusion`).

use crate::fusion_analysis::{find_hero, fusion_analysis, KernelKind};
use crate::util::{apply_replacements, compact, control_comps, num_elements, order_callees_first, users, NameUniquer};
use crate::PassError;
use hlo_ir::{CompId, Computation, FusionKind, Instr, InstrId, Module, Op, Shape, UnaryOp};
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::fmt;

/// Whether a producer is fused into a consumer, and why not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusionDecision {
    Fuse,
    Reject(&'static str),
}

/// One considered producer -> consumer edge.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeRecord {
    pub comp: String,
    pub producer: String,
    pub consumer: String,
    pub decision: FusionDecision,
}

/// One kernel the pass produced or left standalone.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelRecord {
    pub comp: String,
    /// The `fusion` instruction's name, or the standalone instruction's name.
    pub name: String,
    pub kind: KernelKind,
    /// The original names of the values the kernel writes.
    pub outputs: Vec<String>,
    /// Number of instructions inside the fused computation (1 for standalone ops).
    pub n_instrs: usize,
    /// Why an op stays standalone.
    pub note: Option<&'static str>,
}

/// Everything the fusion pass decided, in decision order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FusionReport {
    pub edges: Vec<EdgeRecord>,
    pub merges: Vec<String>,
    pub kernels: Vec<KernelRecord>,
    /// Materialised row-major reshapes, left standalone: views of their operand's buffer, no kernel.
    pub views: Vec<String>,
}

impl FusionReport {
    /// Kernels (fusions and standalone ops) in the computation named `comp`.
    pub fn kernel_count(&self, comp: &str) -> usize {
        self.kernels.iter().filter(|k| k.comp == comp).count()
    }
}

impl fmt::Display for FusionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut comps: Vec<&str> = Vec::new();
        for k in &self.kernels {
            if !comps.contains(&k.comp.as_str()) {
                comps.push(&k.comp);
            }
        }
        for comp in comps {
            writeln!(f, "computation {comp}: {} kernel(s)", self.kernel_count(comp))?;
            for k in self.kernels.iter().filter(|k| k.comp == comp) {
                write!(f, "  {} {:?} -> [{}] ({} instrs)", k.name, k.kind, k.outputs.join(", "), k.n_instrs)?;
                if let Some(note) = k.note {
                    write!(f, " standalone: {note}")?;
                }
                writeln!(f)?;
            }
        }
        if !self.views.is_empty() {
            writeln!(f, "views (row-major reshapes, no kernel):")?;
            for v in &self.views {
                writeln!(f, "  {v}")?;
            }
        }
        if !self.merges.is_empty() {
            writeln!(f, "multi-output merges:")?;
            for m in &self.merges {
                writeln!(f, "  {m}")?;
            }
        }
        writeln!(f, "decisions:")?;
        for e in &self.edges {
            match e.decision {
                FusionDecision::Fuse => writeln!(f, "  fuse   {} -> {}", e.producer, e.consumer)?,
                FusionDecision::Reject(why) => writeln!(f, "  reject {} -> {}: {why}", e.producer, e.consumer)?,
            }
        }
        Ok(())
    }
}

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    run_with_report(module, DEFAULT_MAX_KERNEL_BUFFERS).map(|(changed, _)| changed)
}

/// The most storage buffers a kernel may bind when the device is not known: lavapipe's
/// `maxPerStageDescriptorStorageBuffers`, the smallest of the devices this project runs on
/// (desktop GPUs allow thousands; Vulkan guarantees only 4).
pub const DEFAULT_MAX_KERNEL_BUFFERS: u32 = 32;

/// Runs the pass for a device whose kernels may bind at most `max_buffers` storage buffers, and
/// returns its report: no fusion reads and writes more distinct arrays than that (one binding is
/// kept for the kernel's status word).
pub fn run_with_report(module: &mut Module, max_buffers: u32) -> Result<(bool, FusionReport), PassError> {
    let _span = tracing::info_span!("fusion").entered();
    let mut report = FusionReport::default();
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    for cid in control_comps(module) {
        changed |= split_wide_concatenates(module.comp_mut(cid), max_arrays(max_buffers) - 1, &mut names)?;
        changed |= fuse_comp(module, cid, &mut names, &mut report, max_buffers)?;
        changed |= crate::fuse_epilogues::fuse_epilogues(module, cid, &mut names, &mut report)?;
    }
    if changed {
        order_callees_first(module);
    }
    Ok((changed, report))
}

/// Most distinct arrays one kernel may read and write on a device with `max_buffers` bindings:
/// one binding stays free for the status word of the kernel's device checks.
fn max_arrays(max_buffers: u32) -> usize {
    (max_buffers as usize).saturating_sub(1).max(3)
}

/// A `concatenate` of more operands than one kernel may read becomes a concatenate of
/// concatenates of at most `max_operands` each (level after level), so that fusion can keep
/// every kernel within the device's bindings (`jnp.concatenate` of 40 arrays).
fn split_wide_concatenates(
    comp: &mut Computation,
    max_operands: usize,
    names: &mut NameUniquer,
) -> Result<bool, PassError> {
    let max_operands = max_operands.max(2);
    let mut changed = false;
    for idx in 0..comp.instrs.len() {
        let id = InstrId::from_index(idx);
        let instr = comp.instr(id);
        let Op::Concatenate { dimension } = instr.op else { continue };
        if instr.operands.len() <= max_operands {
            continue;
        }
        let (Some(shape), name) = (instr.shape.as_array().cloned(), instr.name.clone()) else { continue };
        let d = dimension as usize;
        let mut ops = instr.operands.clone();
        while ops.len() > max_operands {
            let mut next = Vec::new();
            for chunk in ops.chunks(max_operands) {
                if chunk.len() == 1 {
                    next.push(chunk[0]);
                    continue;
                }
                let len: i64 = chunk.iter().map(|&o| crate::util::dims(&comp.instr(o).shape)[d]).sum();
                let mut dims = shape.dims.clone();
                dims[d] = len;
                let part = Instr::new(
                    names.fresh(&name),
                    Shape::Array(hlo_ir::ArrayShape::new(shape.dtype, dims)),
                    Op::Concatenate { dimension },
                    chunk.to_vec(),
                );
                next.push(comp.push(part));
            }
            ops = next;
        }
        comp.instrs[idx].operands = ops;
        changed = true;
    }
    if changed {
        crate::util::compact(comp)?;
    }
    Ok(changed)
}

/// The fusion report for `module` (the pass runs on a copy): `--explain-fusion`.
pub fn explain(module: &Module) -> String {
    explain_for(module, DEFAULT_MAX_KERNEL_BUFFERS)
}

/// [`explain`] for a device whose kernels may bind at most `max_buffers` storage buffers.
pub fn explain_for(module: &Module, max_buffers: u32) -> String {
    let mut copy = module.clone();
    match run_with_report(&mut copy, max_buffers) {
        Ok((_, report)) => report.to_string(),
        Err(err) => format!("fusion failed: {err}\n"),
    }
}

/// Work units for the cost rule: one cheap elementwise op on one element is 1.
/// Writing and reading back one materialised element.
const MEM_COST: f64 = 4.0;
/// Roughly the work one extra kernel launch costs on lavapipe (~40 us).
const LAUNCH_WORK: f64 = 131072.0;
/// Producers costlier than this per element are only duplicated when their
/// whole evaluation in the group is at most [`DUP_WORK_MAX`].
const DUP_COST_MAX: f64 = 4.0;
const DUP_WORK_MAX: f64 = LAUNCH_WORK / 16.0;
/// Constants up to this many elements are copied into fusions.
const MAX_FUSED_CONSTANT_ELEMENTS: u64 = 64;
/// Most loop iterations fused reductions may add per output element of a kernel: a reduction
/// recomputed inside a consumer that itself loops nests one loop in the other, and some
/// drivers stop a kernel's loops after 65,535 iterations in all (lavapipe). Also keeps one
/// invocation's work small enough to spread over the device.
const MAX_NESTED_LOOP_WORK: f64 = 16384.0;
/// Most copies of fused instructions the elemental emitter may generate for one kernel: a value
/// read at several indices (slices of one array, unrolled short reductions) is emitted once per
/// index, so a log-depth slice/pad/concatenate tree (`associative_scan`) grows exponentially.
/// XLA bounds fusions by emitted size for the same reason.
const MAX_EMITTED_COPIES: f64 = 512.0;
/// The elemental emitter unrolls reductions over at most this many elements (hlo-spirv's
/// `UNROLL_LIMIT`): each element is a copy of the reduced expression.
const EMITTER_UNROLL_LIMIT: f64 = 16.0;
/// Bounds on one kernel.
const MAX_GROUP_INSTRS: usize = 1000;
const MAX_OUTPUTS: usize = 8;
const MAX_BINDINGS: usize = 16;
/// Loop kernels this small merge even when their outputs differ in shape (horizontal fusion,
/// like XLA's `HorizontalLoopFusion`): one dispatch computes all of them, each output guarded by
/// its own bounds check. A dispatch costs tens of microseconds on lavapipe, computing 4096
/// elements a few; a predicating device pays for the largest output's grid in every output,
/// which this bound keeps below a dispatch.
const HORIZONTAL_MAX_ELEMENTS: i64 = 4096;

/// How the fusion pass treats an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Not a computation: parameters, tuples, control flow, existing fusions.
    Boundary,
    /// A constant: copied into fusions when small, else a buffer.
    Constant,
    /// Runs as its own kernel; nothing fuses into or out of it.
    Standalone(&'static str),
    /// May be fused (elemental, or a reduce/scatter hero).
    Fusible,
}

fn classify(comp: &Computation, instr: &Instr) -> Class {
    match &instr.op {
        Op::Parameter { .. }
        | Op::Tuple
        | Op::GetTupleElement { .. }
        | Op::While { .. }
        | Op::Conditional { .. }
        | Op::Call { .. }
        | Op::Fusion { .. }
        | Op::AfterAll
        | Op::AddDependency
        | Op::OptimizationBarrier
        | Op::Domain
        | Op::PartitionId
        | Op::ReplicaId => Class::Boundary,
        Op::Constant(_) => Class::Constant,
        Op::Dot { .. } | Op::RaggedDot { .. } | Op::ScaledDot { .. } => Class::Standalone("dot runs as its own kernel"),
        Op::Convolution { .. } => Class::Standalone("convolution runs as its own kernel"),
        Op::Sort { .. } | Op::TopK { .. } => Class::Standalone("sort runs as its own kernel"),
        Op::Bitcast => Class::Standalone("bitcast depends on layouts (run normalize first)"),
        Op::BitcastConvert => {
            let width = |shape: &Shape| shape.dtype().map(|t| t.bit_width());
            let same_width = instr.operands.first().map(|&o| width(&comp.instr(o).shape)) == Some(width(&instr.shape));
            if same_width {
                Class::Fusible
            } else {
                Class::Standalone("bitcast-convert changes the element width")
            }
        }
        Op::Reduce { .. } | Op::Scatter { .. } => {
            if instr.shape.as_tuple().is_some() && !matches!(instr.op, Op::Reduce { .. }) {
                Class::Standalone("variadic scatter runs as its own kernel")
            } else {
                Class::Fusible
            }
        }
        op if crate::fusion_analysis::is_elemental(op) => Class::Fusible,
        _ => Class::Standalone("op has no fused emitter"),
    }
}

/// A reshape between row-major arrays moves no data: a materialised one is a view of its operand.
fn is_view(comp: &Computation, instr: &Instr) -> bool {
    let row_major = |shape: &Shape| shape.as_array().is_some_and(|a| a.is_row_major());
    matches!(instr.op, Op::Reshape) && row_major(&instr.shape) && row_major(&comp.instr(instr.operands[0]).shape)
}

/// Elements of one output of an instruction (the first leaf for tuples).
fn elems(shape: &Shape) -> f64 {
    match shape {
        Shape::Tuple(elems) => elems.first().map(num_elements).unwrap_or(1) as f64,
        other => num_elements(other) as f64,
    }
}

fn window_size(window: &hlo_ir::Window) -> f64 {
    window.dims.iter().map(|d| d.size.max(1) as f64).product()
}

/// Per element of `user`, how many elements of its operand in slot `slot` it reads.
fn reads_per_element(comp: &Computation, user: &Instr, slot: usize) -> f64 {
    let e_user = elems(&user.shape).max(1.0);
    let e_operand = elems(&comp.instr(user.operands[slot]).shape).max(1.0);
    let n_inputs = user.operands.len() / 2;
    match &user.op {
        Op::Reduce { .. } if slot < n_inputs => e_operand / e_user,
        Op::ReduceWindow { window, .. } if slot < n_inputs => window_size(window),
        Op::Concatenate { .. } | Op::Scatter { .. } => e_operand / e_user,
        Op::Pad { .. } if slot == 0 => e_operand / e_user,
        Op::DynamicUpdateSlice if slot == 1 => e_operand / e_user,
        _ => 1.0,
    }
}

fn is_transcendental(op: UnaryOp) -> bool {
    matches!(
        op,
        UnaryOp::Acos
            | UnaryOp::Acosh
            | UnaryOp::Asin
            | UnaryOp::Asinh
            | UnaryOp::Atan
            | UnaryOp::Atanh
            | UnaryOp::Cbrt
            | UnaryOp::Cos
            | UnaryOp::Cosh
            | UnaryOp::Erf
            | UnaryOp::Exp
            | UnaryOp::Expm1
            | UnaryOp::Log
            | UnaryOp::Log1p
            | UnaryOp::Logistic
            | UnaryOp::Rsqrt
            | UnaryOp::Sin
            | UnaryOp::Sinh
            | UnaryOp::Sqrt
            | UnaryOp::Tan
            | UnaryOp::Tanh
    )
}

/// Work to compute one element of an instruction, operands excluded.
fn op_cost(comp: &Computation, instr: &Instr) -> f64 {
    match &instr.op {
        Op::Parameter { .. } | Op::Constant(_) => 0.0,
        Op::Iota { .. }
        | Op::Broadcast { .. }
        | Op::Reshape
        | Op::Transpose { .. }
        | Op::Slice { .. }
        | Op::Concatenate { .. }
        | Op::Pad { .. }
        | Op::Reverse { .. }
        | Op::BitcastConvert
        | Op::Copy
        | Op::DynamicSlice { .. }
        | Op::DynamicUpdateSlice
        | Op::Gather { .. } => 0.5,
        Op::Unary(u) if is_transcendental(*u) => 4.0,
        Op::Unary(_) => 1.0,
        Op::Binary(b) => match b {
            hlo_ir::BinaryOp::Divide | hlo_ir::BinaryOp::Remainder => 2.0,
            hlo_ir::BinaryOp::Power | hlo_ir::BinaryOp::Atan2 => 4.0,
            _ => 1.0,
        },
        Op::Reduce { .. } => {
            let n_inputs = (instr.operands.len() / 2).max(1);
            let e_in = elems(&comp.instr(instr.operands[0]).shape);
            (e_in / elems(&instr.shape).max(1.0)) * n_inputs as f64
        }
        Op::ReduceWindow { window, .. } => window_size(window),
        Op::Map { .. } => 4.0,
        _ => 1.0,
    }
}

/// A fusion group under construction.
#[derive(Clone, Debug)]
struct Group {
    /// Values the group writes, first the one that started it.
    outputs: Vec<InstrId>,
    members: BTreeSet<InstrId>,
    /// Estimated evaluations of each member per kernel run.
    counts: HashMap<InstrId, f64>,
    /// How many copies of each member the elemental emitter generates (see [`MAX_EMITTED_COPIES`]).
    copies: HashMap<InstrId, f64>,
    /// Copies of all members together.
    emitted: f64,
    /// Loop iterations per output element spent in fused (non-root) reductions ([`MAX_NESTED_LOOP_WORK`]).
    nested_loop_work: f64,
    /// Members computed by this group only: every user is an exclusive member.
    /// A member that is not exclusive is a duplicate, also computed elsewhere.
    exclusive: HashSet<InstrId>,
}

impl Group {
    /// Operands of members that are not members, in arena (topological) order.
    fn inputs(&self, comp: &Computation) -> Vec<InstrId> {
        let res: BTreeSet<InstrId> = self
            .members
            .iter()
            .flat_map(|&m| comp.instr(m).operands.iter().copied())
            .filter(|o| !self.members.contains(o))
            .collect();
        res.into_iter().collect()
    }
}

struct Planner<'a> {
    comp: &'a Computation,
    /// Most distinct arrays (inputs and outputs) one kernel may read and write.
    max_arrays: usize,
    users: Vec<Vec<InstrId>>,
    needed: Vec<bool>,
    groups: Vec<Group>,
    report: &'a mut FusionReport,
}

impl Planner<'_> {
    fn record(&mut self, producer: InstrId, consumer: InstrId, decision: FusionDecision) {
        let comp = self.comp;
        if matches!(comp.instr(producer).op, Op::Parameter { .. } | Op::GetTupleElement { .. }) {
            return;
        }
        self.report.edges.push(EdgeRecord {
            comp: comp.name.clone(),
            producer: comp.instr(producer).name.clone(),
            consumer: comp.instr(consumer).name.clone(),
            decision,
        });
    }

    /// Builds the groups of the computation, root first.
    fn plan(&mut self) {
        let comp = self.comp;
        let n = comp.instrs.len();
        self.needed[comp.root.index()] = true;
        for id in comp.ids() {
            if crate::util::is_side_effecting(&comp.instr(id).op) {
                self.needed[id.index()] = true;
            }
        }
        for idx in (0..n).rev() {
            let id = InstrId::from_index(idx);
            if !self.needed[idx] {
                continue;
            }
            let instr = comp.instr(id);
            match classify(comp, instr) {
                Class::Fusible if is_view(comp, instr) => {
                    self.needed[instr.operands[0].index()] = true;
                    self.report.views.push(format!(
                        "{}: {} = reshape({})",
                        comp.name,
                        instr.name,
                        comp.instr(instr.operands[0]).name
                    ));
                }
                Class::Fusible => self.grow(id),
                Class::Standalone(_) | Class::Boundary | Class::Constant => {
                    for &o in &instr.operands {
                        self.needed[o.index()] = true;
                    }
                    for &p in &instr.meta.control_predecessors {
                        self.needed[p.index()] = true;
                    }
                }
            }
        }
    }

    /// Starts a group at `root` and fuses its producers.
    fn grow(&mut self, root: InstrId) {
        let comp = self.comp;
        let mut group = Group {
            outputs: vec![root],
            members: BTreeSet::from([root]),
            counts: HashMap::new(),
            copies: HashMap::from([(root, 1.0)]),
            emitted: 1.0,
            nested_loop_work: 0.0,
            exclusive: HashSet::from([root]),
        };
        group.counts.insert(root, elems(&comp.instr(root).shape));
        let mut heap: BinaryHeap<InstrId> = comp.instr(root).operands.iter().copied().collect();
        let mut considered: HashSet<InstrId> = HashSet::new();
        while let Some(p) = heap.pop() {
            if group.members.contains(&p) || !considered.insert(p) {
                continue;
            }
            let consumer =
                self.users[p.index()].iter().rev().copied().find(|u| group.members.contains(u)).unwrap_or(root);
            let (decision, count) = self.decide(p, &group);
            self.record(p, consumer, decision);
            match decision {
                FusionDecision::Fuse => {
                    if self.users[p.index()].iter().all(|u| group.exclusive.contains(u)) {
                        group.exclusive.insert(p);
                    }
                    let copies = self.copies(p, &group);
                    group.copies.insert(p, copies);
                    group.emitted += copies;
                    group.nested_loop_work += self.nested_loop_work(p, count, &group);
                    group.members.insert(p);
                    group.counts.insert(p, count);
                    heap.extend(comp.instr(p).operands.iter().copied());
                }
                FusionDecision::Reject(_) => self.needed[p.index()] = true,
            }
        }
        self.groups.push(group);
    }

    /// Decides whether producer `p` joins `group`; also returns its evaluation count there.
    fn decide(&self, p: InstrId, group: &Group) -> (FusionDecision, f64) {
        let comp = self.comp;
        let instr = comp.instr(p);
        let reject = |why| (FusionDecision::Reject(why), 0.0);
        match classify(comp, instr) {
            Class::Boundary => return reject("producer is a parameter, tuple or control flow"),
            Class::Standalone(why) => return reject(why),
            Class::Constant => {
                return if num_elements(&instr.shape) <= MAX_FUSED_CONSTANT_ELEMENTS {
                    (FusionDecision::Fuse, 1.0)
                } else {
                    reject("large constant stays in its own buffer")
                };
            }
            Class::Fusible => {}
        }
        if instr.shape.as_tuple().is_some() {
            return reject("producer has a tuple result");
        }
        if matches!(instr.op, Op::Scatter { .. }) {
            return reject("scatter results are materialised");
        }
        if group.members.len() >= MAX_GROUP_INSTRS {
            return reject("fusion is already large");
        }
        // Evaluation count: users at the same index share one evaluation.
        let p_dims = crate::util::dims(&instr.shape);
        let mut same_index = 0.0f64;
        let mut other = 0.0f64;
        for &u in &self.users[p.index()] {
            if !group.members.contains(&u) {
                continue;
            }
            let user = comp.instr(u);
            if let Op::Scatter { .. } = user.op {
                let n_inputs = (user.operands.len() - 1) / 2;
                // A broadcast constant operand fuses: the scatter kernel then fills its output
                // (vkCmdFillBuffer) instead of copying a materialised canvas of zeros.
                if user.operands[..n_inputs].contains(&p) && !is_broadcast_constant(comp, p) {
                    return reject("scatter updates its operand in place");
                }
            }
            let count_u = group.counts.get(&u).copied().unwrap_or(0.0);
            if user.op.is_elementwise() && crate::util::dims(&user.shape) == p_dims {
                same_index = same_index.max(count_u);
            } else {
                let slots = user.operands.iter().enumerate().filter(|(_, &o)| o == p).map(|(k, _)| k);
                for slot in slots {
                    other += count_u * reads_per_element(comp, user, slot);
                }
            }
        }
        let count = same_index + other;
        let e_p = elems(&instr.shape).max(1.0);
        let cost = op_cost(comp, instr);
        let extra = (count - e_p).max(0.0) * cost;
        let factor = count / e_p;
        if cost * (factor - 1.0) > MEM_COST && extra > LAUNCH_WORK {
            return reject("recomputing it in the consumer costs more than materialising it");
        }
        // A float remainder is a loop on the device (one step per 11 bits of exponent difference):
        // recomputed at many indices inside another loop, lavapipe's kernels ran for minutes.
        let loops = matches!(instr.op, Op::Binary(hlo_ir::BinaryOp::Remainder))
            && instr.shape.as_array().is_some_and(|a| a.dtype.is_float());
        if loops && factor > 1.0 {
            return reject("a float remainder is a loop on the device; it is computed once, not at every read");
        }
        if group.emitted + self.copies(p, group) > MAX_EMITTED_COPIES {
            return reject("the kernel's code would grow too large (the value is read at too many indices)");
        }
        if group.nested_loop_work + self.nested_loop_work(p, count, group) > MAX_NESTED_LOOP_WORK {
            return reject("its reduction would nest inside the consumer's loop for too many iterations");
        }
        if self.arrays_with(p, group) > self.max_arrays {
            return reject("the kernel would bind more arrays than the device allows one kernel");
        }
        let exclusive = self.users[p.index()].iter().all(|u| group.exclusive.contains(u));
        // Duplicates compound (a duplicated producer is recomputed by every group
        // downstream that duplicates its users too), so only small costly ones are copied.
        if !exclusive && cost > DUP_COST_MAX && count * cost > DUP_WORK_MAX {
            return reject("producer has other users and is too costly to duplicate");
        }
        (FusionDecision::Fuse, count)
    }

    /// How many distinct arrays the group's kernel would bind with `p` fused: its inputs, its
    /// outputs, and the fused constants that are not scalars (the emitter may keep those in a buffer).
    fn arrays_with(&self, p: InstrId, group: &Group) -> usize {
        let comp = self.comp;
        let mut inputs: BTreeSet<InstrId> = BTreeSet::new();
        let mut constants = 0;
        for &m in group.members.iter().chain([&p]) {
            let instr = comp.instr(m);
            if matches!(instr.op, Op::Constant(_)) && num_elements(&instr.shape) > 1 {
                constants += 1;
            }
            inputs.extend(instr.operands.iter().copied().filter(|o| *o != p && !group.members.contains(o)));
        }
        inputs.len() + constants + group.outputs.len()
    }

    /// How many copies of `p` the elemental emitter would generate in `group`: users reading it
    /// at their own index share one copy; every other read site is a copy per copy of the user,
    /// times the elements it reads when the emitter unrolls them.
    fn copies(&self, p: InstrId, group: &Group) -> f64 {
        let comp = self.comp;
        let p_dims = crate::util::dims(&comp.instr(p).shape);
        let mut same_index = 0.0f64;
        let mut other = 0.0f64;
        for &u in &self.users[p.index()] {
            let Some(&copies_u) = group.copies.get(&u) else { continue };
            let user = comp.instr(u);
            if user.op.is_elementwise() && crate::util::dims(&user.shape) == p_dims {
                same_index = same_index.max(copies_u);
                continue;
            }
            for (slot, _) in user.operands.iter().enumerate().filter(|(_, &o)| o == p) {
                let reads = reads_per_element(comp, user, slot);
                let unrolled = matches!(user.op, Op::Reduce { .. } | Op::ReduceWindow { .. } | Op::Dot { .. })
                    && reads <= EMITTER_UNROLL_LIMIT;
                other += copies_u * if unrolled { reads.max(1.0) } else { 1.0 };
            }
        }
        (same_index + other).max(1.0)
    }

    /// Loop iterations per output element of `group` that fusing `p` (a reduction evaluated
    /// `count` times per run) adds; 0 for straight-line producers.
    fn nested_loop_work(&self, p: InstrId, count: f64, group: &Group) -> f64 {
        let comp = self.comp;
        let instr = comp.instr(p);
        let per_evaluation = match &instr.op {
            Op::Reduce { .. } => elems(&comp.instr(instr.operands[0]).shape) / elems(&instr.shape).max(1.0),
            Op::ReduceWindow { window, .. } => window_size(window),
            _ => return 0.0,
        };
        if per_evaluation <= EMITTER_UNROLL_LIMIT {
            return 0.0;
        }
        let root_elems = elems(&comp.instr(group.outputs[0]).shape).max(1.0);
        count / root_elems * per_evaluation
    }

    /// Whether a group's kernel is a reduce kernel (and with which key), or a loop.
    fn merge_key(&self, group: &Group) -> Option<MergeKey> {
        let comp = self.comp;
        let mut key: Option<MergeKey> = None;
        for &out in &group.outputs {
            let hero = hero_in_group(comp, out, &group.members);
            let hero_instr = comp.instr(hero);
            let this = match &hero_instr.op {
                Op::Scatter { .. } => return None,
                Op::Reduce { dimensions, .. } => {
                    if hero != out || hero_instr.operands.len() != 2 {
                        return None;
                    }
                    MergeKey::Reduce {
                        operand_dims: crate::util::dims(&comp.instr(hero_instr.operands[0]).shape).to_vec(),
                        dimensions: dimensions.clone(),
                    }
                }
                _ => MergeKey::Loop(crate::util::dims(&comp.instr(out).shape).to_vec()),
            };
            match &key {
                None => key = Some(this),
                Some(k) if *k == this => {}
                Some(_) => return None,
            }
        }
        key
    }

    /// Merges independent groups of the same kernel shape into multi-output fusions.
    fn merge_siblings(&mut self) {
        let comp = self.comp;
        let mut alive = vec![true; self.groups.len()];
        let keys: Vec<Option<MergeKey>> = self.groups.iter().map(|g| self.merge_key(g)).collect();
        loop {
            let mut merged_any = false;
            for a in 0..self.groups.len() {
                if !alive[a] {
                    continue;
                }
                let Some(key_a) = &keys[a] else { continue };
                for b in (a + 1)..self.groups.len() {
                    let Some(key_b) = &keys[b] else { continue };
                    let horizontal = key_a != key_b;
                    if !alive[b] || (horizontal && !(key_a.small_loop() && key_b.small_loop())) {
                        continue;
                    }
                    let (ga, gb) = (&self.groups[a], &self.groups[b]);
                    if ga.outputs.len() + gb.outputs.len() > MAX_OUTPUTS {
                        continue;
                    }
                    let mut union = ga.clone();
                    union.members.extend(gb.members.iter().copied());
                    union.outputs.extend(gb.outputs.iter().copied());
                    if union.inputs(comp).len() + union.outputs.len() > MAX_BINDINGS.min(self.max_arrays) {
                        continue;
                    }
                    if horizontal
                        && (union.members.len() > MAX_GROUP_INSTRS || ga.emitted + gb.emitted > MAX_EMITTED_COPIES)
                    {
                        continue;
                    }
                    if self.depends(a, b, &alive) || self.depends(b, a, &alive) {
                        continue;
                    }
                    self.report.merges.push(format!(
                        "{}: [{}] + [{}]{}",
                        comp.name,
                        names_of(comp, &ga.outputs),
                        names_of(comp, &gb.outputs),
                        if horizontal { " (horizontal: small loops of different shapes)" } else { "" }
                    ));
                    for (id, c) in &gb.counts {
                        let entry = union.counts.entry(*id).or_insert(0.0);
                        *entry = entry.max(*c);
                    }
                    for (id, c) in &gb.copies {
                        let entry = union.copies.entry(*id).or_insert(0.0);
                        *entry = entry.max(*c);
                    }
                    union.emitted = union.copies.values().sum();
                    union.nested_loop_work = ga.nested_loop_work.max(gb.nested_loop_work);
                    union.exclusive.extend(gb.exclusive.iter().copied());
                    self.groups[a] = union;
                    alive[b] = false;
                    merged_any = true;
                }
            }
            if !merged_any {
                break;
            }
        }
        let groups = std::mem::take(&mut self.groups);
        self.groups = groups.into_iter().zip(alive).filter(|(_, a)| *a).map(|(g, _)| g).collect();
    }

    /// True when group `to` reads, directly or through other kernels, a value group `from` writes.
    fn depends(&self, to: usize, from: usize, alive: &[bool]) -> bool {
        let comp = self.comp;
        let mut owner: HashMap<InstrId, usize> = HashMap::new();
        for (g, group) in self.groups.iter().enumerate() {
            if alive[g] {
                for &o in &group.outputs {
                    owner.insert(o, g);
                }
            }
        }
        let mut seen_groups: HashSet<usize> = HashSet::from([to]);
        let mut seen_instrs: HashSet<InstrId> = HashSet::new();
        let mut stack: Vec<InstrId> = self.groups[to].inputs(comp);
        while let Some(v) = stack.pop() {
            match owner.get(&v) {
                Some(&g) if g == from => return true,
                Some(&g) => {
                    if seen_groups.insert(g) {
                        stack.extend(self.groups[g].inputs(comp));
                    }
                }
                None => {
                    if seen_instrs.insert(v) {
                        stack.extend(comp.instr(v).operands.iter().copied());
                    }
                }
            }
        }
        false
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum MergeKey {
    Loop(Vec<i64>),
    Reduce { operand_dims: Vec<i64>, dimensions: Vec<i64> },
}

impl MergeKey {
    /// A loop kernel small enough for horizontal fusion.
    fn small_loop(&self) -> bool {
        matches!(self, MergeKey::Loop(dims) if dims.iter().product::<i64>() <= HORIZONTAL_MAX_ELEMENTS)
    }
}

/// A scalar constant, or a broadcast of one.
fn is_broadcast_constant(comp: &Computation, id: InstrId) -> bool {
    let instr = comp.instr(id);
    match instr.op {
        Op::Constant(_) => crate::util::num_elements(&instr.shape) == 1,
        Op::Broadcast { .. } => is_broadcast_constant(comp, instr.operands[0]),
        _ => false,
    }
}

fn names_of(comp: &Computation, ids: &[InstrId]) -> String {
    ids.iter().map(|&i| comp.instr(i).name.as_str()).collect::<Vec<_>>().join(", ")
}

/// The hero of `out` among the members of a group (see [`find_hero`]).
fn hero_in_group(comp: &Computation, out: InstrId, members: &BTreeSet<InstrId>) -> InstrId {
    // `find_hero` walks operands; restricting it to members keeps it inside the group.
    let mut sub = Computation::new("hero");
    let mut map: HashMap<InstrId, InstrId> = HashMap::new();
    for &m in members {
        let instr = comp.instr(m);
        let mut clone = instr.clone();
        clone.meta = Default::default();
        // Non-member operands become parameters so that the walk stops there.
        let mut operands = Vec::with_capacity(instr.operands.len());
        for &o in &instr.operands {
            let id = match map.get(&o) {
                Some(&id) => id,
                None => {
                    let number = sub.params.len() as u64;
                    let param = Instr::new("p", comp.instr(o).shape.clone(), Op::Parameter { number }, vec![]);
                    let id = sub.push(param);
                    map.insert(o, id);
                    id
                }
            };
            operands.push(id);
        }
        clone.operands = operands;
        let id = sub.push(clone);
        map.insert(m, id);
    }
    let hero = find_hero(&sub, map[&out]);
    map.iter().find(|(_, &v)| v == hero).map(|(&k, _)| k).unwrap_or(out)
}

/// Plans and rewrites one control computation.
fn fuse_comp(
    module: &mut Module,
    cid: CompId,
    names: &mut NameUniquer,
    report: &mut FusionReport,
    max_buffers: u32,
) -> Result<bool, PassError> {
    let comp = module.comp(cid).clone();
    let n = comp.instrs.len();
    let max_arrays = max_arrays(max_buffers);
    let mut planner =
        Planner { comp: &comp, max_arrays, users: users(&comp), needed: vec![false; n], groups: Vec::new(), report };
    planner.plan();
    planner.merge_siblings();
    let groups = std::mem::take(&mut planner.groups);
    let needed = std::mem::take(&mut planner.needed);
    let report = planner.report;

    // Standalone kernels, for the report.
    let mut standalone: Vec<KernelRecord> = Vec::new();
    for id in comp.ids() {
        let instr = comp.instr(id);
        if let (true, Class::Standalone(why)) = (needed[id.index()], classify(&comp, instr)) {
            standalone.push(KernelRecord {
                comp: comp.name.clone(),
                name: instr.name.clone(),
                kind: KernelKind::of_op(&instr.op),
                outputs: vec![instr.name.clone()],
                n_instrs: 1,
                note: Some(why),
            });
        }
    }
    if groups.is_empty() {
        report.kernels.extend(standalone);
        return Ok(false);
    }

    // An original instruction keeps existing in the control computation when it
    // is needed and is not the output of a group.
    let outputs: HashSet<InstrId> = groups.iter().flat_map(|g| g.outputs.iter().copied()).collect();
    let stays = |id: InstrId| needed[id.index()] && !outputs.contains(&id);
    let mut name_reused: HashSet<InstrId> = HashSet::new();

    let mut new_comp = comp.clone();
    let mut repl: HashMap<InstrId, InstrId> = HashMap::new();
    let mut kernels: Vec<(InstrId, KernelRecord)> = Vec::new();
    let mut groups = groups;
    for group in &mut groups {
        group.outputs.sort();
    }
    for group in &groups {
        let inputs = group.inputs(&comp);
        // The fused computation.
        let mut fused = Computation::new(names.fresh("fused_computation"));
        let mut map: HashMap<InstrId, InstrId> = HashMap::new();
        for (number, &input) in inputs.iter().enumerate() {
            let param = Instr::new(
                names.fresh(&format!("param_{number}")),
                comp.instr(input).shape.clone(),
                Op::Parameter { number: number as u64 },
                vec![],
            );
            map.insert(input, fused.push(param));
        }
        for &m in &group.members {
            let instr = comp.instr(m);
            let mut clone = instr.clone();
            clone.operands = instr.operands.iter().map(|o| map[o]).collect();
            clone.meta.control_predecessors.clear();
            clone.name = if !stays(m) && name_reused.insert(m) { instr.name.clone() } else { names.fresh(&instr.name) };
            map.insert(m, fused.push_with_span(clone, comp.span(m)));
        }
        fused.root = if group.outputs.len() == 1 {
            map[&group.outputs[0]]
        } else {
            let elems: Vec<InstrId> = group.outputs.iter().map(|o| map[o]).collect();
            let shape = Shape::Tuple(group.outputs.iter().map(|&o| comp.instr(o).shape.clone()).collect());
            fused.push(Instr::new(names.fresh("tuple"), shape, Op::Tuple, elems))
        };
        let fused_id = CompId(module.comps.len() as u32);
        let n_instrs = fused.instrs.len();
        let root_shape = fused.root_instr().shape.clone();
        module.comps.push(fused);
        let analysis = fusion_analysis(module, fused_id);
        let kind = match analysis.kind {
            KernelKind::Loop => FusionKind::Loop,
            _ => FusionKind::Input,
        };
        let first = comp.instr(group.outputs[0]);
        let hero_name = module.comp(fused_id).instr(analysis.heroes[0]).op.opcode().name().replace('-', "_");
        let prefix = if kind == FusionKind::Loop { "loop" } else { "input" };
        let mut fusion = Instr::new(
            names.fresh(&format!("{prefix}_{hero_name}_fusion")),
            root_shape,
            Op::Fusion { kind, calls: fused_id },
            inputs,
        );
        fusion.meta.metadata = first.meta.metadata.clone();
        let fusion_name = fusion.name.clone();
        let fusion_id = new_comp.push(fusion);
        if group.outputs.len() == 1 {
            repl.insert(group.outputs[0], fusion_id);
        } else {
            for (k, &out) in group.outputs.iter().enumerate() {
                let gte = Instr::new(
                    names.fresh(&format!("{}.out", fusion_name)),
                    comp.instr(out).shape.clone(),
                    Op::GetTupleElement { index: k as u64 },
                    vec![fusion_id],
                );
                repl.insert(out, new_comp.push(gte));
            }
        }
        kernels.push((
            *group.outputs.iter().max().expect("a group has an output"),
            KernelRecord {
                comp: comp.name.clone(),
                name: fusion_name,
                kind: analysis.kind,
                outputs: group.outputs.iter().map(|&o| comp.instr(o).name.clone()).collect(),
                n_instrs,
                note: None,
            },
        ));
    }
    // Fusion operands name original values: redirect them (and every other use) to the fusions.
    apply_replacements(&mut new_comp, &repl);
    compact(&mut new_comp)?;
    *module.comp_mut(cid) = new_comp;

    kernels.sort_by_key(|(id, _)| *id);
    report.kernels.extend(kernels.into_iter().map(|(_, k)| k));
    report.kernels.extend(standalone);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{check, parse};

    /// Runs fusion and checks the post-condition on every control computation.
    fn fuse(text: &str) -> (Module, FusionReport) {
        let mut module = parse(text);
        let (_, report) = run_with_report(&mut module, DEFAULT_MAX_KERNEL_BUFFERS).unwrap();
        crate::pipeline::verify_after("fusion", &module).unwrap();
        assert_fused_form(&module);
        (module, report)
    }

    /// A chain of `n` parameters added together, and a concatenate of `n` parameters.
    fn wide(n: usize) -> String {
        let mut s = String::from("HloModule m\nENTRY e {\n");
        for k in 0..n {
            s += &format!("  p{k} = f32[4] parameter({k})\n");
        }
        s += "  a0 = f32[4] add(p0, p1)\n";
        for k in 2..n {
            s += &format!("  a{} = f32[4] add(a{}, p{k})\n", k - 1, k - 2);
        }
        let all: Vec<String> = (0..n).map(|k| format!("p{k}")).collect();
        s += &format!("  c = f32[{}] concatenate({}), dimensions={{0}}\n", 4 * n, all.join(", "));
        s += &format!("  ROOT t = (f32[4], f32[{}]) tuple(a{}, c)\n}}\n", 4 * n, n - 2);
        s
    }

    #[test]
    fn kernels_stay_within_the_device_bindings() {
        for max_buffers in [8, 32] {
            let mut module = parse(&wide(40));
            let (_, report) = run_with_report(&mut module, max_buffers).unwrap();
            crate::pipeline::verify_after("fusion", &module).unwrap();
            assert_fused_form(&module);
            let entry = module.entry_comp();
            for instr in &entry.instrs {
                if matches!(instr.op, Op::Fusion { .. }) {
                    let outputs = instr.shape.leaves().len();
                    assert!(
                        instr.operands.len() + outputs < max_buffers as usize,
                        "{} reads {} arrays with {max_buffers} bindings",
                        instr.name,
                        instr.operands.len()
                    );
                }
            }
            assert!(report.edges.iter().any(|e| e.decision
                == FusionDecision::Reject("the kernel would bind more arrays than the device allows one kernel")));
        }
    }

    pub(crate) fn assert_fused_form(module: &Module) {
        for cid in control_comps(module) {
            for instr in &module.comp(cid).instrs {
                let ok = matches!(
                    classify(module.comp(cid), instr),
                    Class::Boundary | Class::Constant | Class::Standalone(_)
                ) || is_view(module.comp(cid), instr);
                assert!(ok, "{} is left unfused in {}", instr.name, module.comp(cid).name);
            }
        }
    }

    fn kinds(module: &Module) -> Vec<(FusionKind, KernelKind)> {
        module
            .entry_comp()
            .instrs
            .iter()
            .filter_map(|it| match it.op {
                Op::Fusion { kind, calls } => Some((kind, crate::kernel_kind(module, calls))),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn elementwise_chain_is_one_loop_fusion() {
        check(
            super::run,
            r#"
HloModule m
ENTRY main {
  x = f32[4,8] parameter(0)
  y = f32[8] parameter(1)
  b = f32[4,8] broadcast(y), dimensions={1}
  a = f32[4,8] add(x, b)
  c = f32[] constant(2)
  cb = f32[4,8] broadcast(c), dimensions={}
  ROOT m = f32[4,8] multiply(a, cb)
}
"#,
            r#"
%fused_computation (param_0: f32[4,8], param_1: f32[8]) -> f32[4,8] {
%param_0 = f32[4,8] parameter(0)
%param_1 = f32[8] parameter(1)
%b = f32[4,8] broadcast(%param_1), dimensions={1}
%a = f32[4,8] add(%param_0, %b)
%c = f32[] constant(2)
%cb = f32[4,8] broadcast(%c), dimensions={}
ROOT %m = f32[4,8] multiply(%a, %cb)
}
ENTRY %main (x: f32[4,8], y: f32[8]) -> f32[4,8] {
%x = f32[4,8] parameter(0)
%y = f32[8] parameter(1)
ROOT %loop_multiply_fusion = f32[4,8] fusion(%x, %y), kind=kLoop, calls=%fused_computation
}
"#,
        );
    }

    const NBODY: &str = r#"
HloModule m
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
ENTRY main {
  pos = f32[64,2] parameter(0)
  b1 = f32[64,64,2] broadcast(pos), dimensions={0,2}
  b2 = f32[64,64,2] broadcast(pos), dimensions={1,2}
  diff = f32[64,64,2] subtract(b1, b2)
  sq = f32[64,64,2] multiply(diff, diff)
  zero = f32[] constant(0)
  d2 = f32[64,64] reduce(sq, zero), dimensions={2}, to_apply=add
  half = f32[] constant(0.5)
  hb = f32[64,64] broadcast(half), dimensions={}
  dist = f32[64,64] power(d2, hb)
  c3 = f32[64,64] multiply(dist, dist)
  c4 = f32[64,64] multiply(c3, dist)
  eps = f32[] constant(0.1)
  eb = f32[64,64] broadcast(eps), dimensions={}
  den = f32[64,64] add(c4, eb)
  db = f32[64,64,2] broadcast(den), dimensions={0,1}
  q = f32[64,64,2] divide(diff, db)
  ROOT f = f32[64,2] reduce(q, zero), dimensions={0}, to_apply=add
}
"#;

    #[test]
    fn nbody_force_step_is_one_reduce_kernel() {
        let (module, report) = fuse(NBODY);
        assert_eq!(report.kernel_count("main"), 1, "{report}");
        assert_eq!(kinds(&module), vec![(FusionKind::Input, KernelKind::Reduce)]);
        // The inner two-element reduction is recomputed inside the force reduction's prologue.
        assert!(report.edges.iter().any(|e| e.producer == "d2" && e.decision == FusionDecision::Fuse), "{report}");
    }

    #[test]
    fn softmax_recomputes_exp_but_not_reductions() {
        let (module, report) = fuse(
            r#"
HloModule m
max {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT m = f32[] maximum(a, b)
}
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
ENTRY main {
  x = f32[64,512] parameter(0)
  ninf = f32[] constant(-inf)
  m = f32[64] reduce(x, ninf), dimensions={1}, to_apply=max
  mb = f32[64,512] broadcast(m), dimensions={0}
  d = f32[64,512] subtract(x, mb)
  e = f32[64,512] exponential(d)
  zero = f32[] constant(0)
  s = f32[64] reduce(e, zero), dimensions={1}, to_apply=add
  sb = f32[64,512] broadcast(s), dimensions={0}
  ROOT r = f32[64,512] divide(e, sb)
}
"#,
        );
        assert_eq!(report.kernel_count("main"), 3, "{report}");
        let reject =
            |p: &str| report.edges.iter().any(|e| e.producer == p && matches!(e.decision, FusionDecision::Reject(_)));
        assert!(reject("s") && reject("m"), "{report}");
        let mut k = kinds(&module);
        k.sort_by_key(|(f, _)| *f as u8);
        assert_eq!(
            k,
            vec![
                (FusionKind::Loop, KernelKind::Loop),
                (FusionKind::Input, KernelKind::Reduce),
                (FusionKind::Input, KernelKind::Reduce)
            ]
        );
    }

    #[test]
    fn scatter_takes_updates_but_not_its_operand() {
        let (module, report) = fuse(
            r#"
HloModule m
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
ENTRY main {
  p = f32[16] parameter(2)
  base = f32[16] negate(p)
  idx = s32[5,1] parameter(0)
  upd = f32[5] parameter(1)
  two = f32[] constant(2)
  tb = f32[5] broadcast(two), dimensions={}
  u2 = f32[5] multiply(upd, tb)
  ROOT s = f32[16] scatter(base, idx, u2), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=add
}
"#,
        );
        assert_eq!(report.kernel_count("main"), 2, "{report}");
        assert!(report
            .edges
            .iter()
            .any(|e| e.producer == "base"
                && e.decision == FusionDecision::Reject("scatter updates its operand in place")));
        assert!(report.edges.iter().any(|e| e.producer == "u2" && e.decision == FusionDecision::Fuse));
        assert!(kinds(&module).contains(&(FusionKind::Input, KernelKind::Scatter)));
    }

    #[test]
    fn a_scatter_into_a_constant_canvas_fuses_the_canvas() {
        // The scatter kernel then fills its output instead of copying a materialised canvas.
        let (_, report) = fuse(
            r#"
HloModule m
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
ENTRY main {
  zero = f32[] constant(0)
  base = f32[16] broadcast(zero), dimensions={}
  idx = s32[5,1] parameter(0)
  upd = f32[5] parameter(1)
  ROOT s = f32[16] scatter(base, idx, upd), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=add
}
"#,
        );
        assert_eq!(report.kernel_count("main"), 1, "{report}");
        assert!(report.edges.iter().any(|e| e.producer == "base" && e.decision == FusionDecision::Fuse));
    }

    #[test]
    fn dot_stays_standalone() {
        let (module, report) = fuse(
            r#"
HloModule m
ENTRY main {
  x = f32[8,4] parameter(0)
  w = f32[4,3] parameter(1)
  b = f32[3] parameter(2)
  xt = f32[4,8] transpose(x), dimensions={1,0}
  d = f32[8,3] dot(x, w), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  bb = f32[8,3] broadcast(b), dimensions={1}
  a = f32[8,3] add(d, bb)
  ROOT t = (f32[8,3], f32[4,8]) tuple(a, xt)
}
"#,
        );
        assert!(report
            .edges
            .iter()
            .any(|e| e.producer == "d" && e.decision == FusionDecision::Reject("dot runs as its own kernel")));
        assert!(module.entry_comp().instrs.iter().any(|it| matches!(it.op, Op::Dot { .. })));
        assert!(report.kernels.iter().any(|k| k.kind == KernelKind::Dot));
    }

    #[test]
    fn independent_outputs_of_one_shape_share_a_kernel() {
        check(
            super::run,
            r#"
HloModule m
ENTRY main {
  x = f32[4] parameter(0)
  y = f32[4] parameter(1)
  a = f32[4] add(x, y)
  s = f32[4] subtract(x, y)
  ROOT t = (f32[4], f32[4]) tuple(a, s)
}
"#,
            r#"
%fused_computation (param_0: f32[4], param_1: f32[4]) -> (f32[4], f32[4]) {
%param_0 = f32[4] parameter(0)
%param_1 = f32[4] parameter(1)
%a = f32[4] add(%param_0, %param_1)
%s = f32[4] subtract(%param_0, %param_1)
ROOT %tuple = (f32[4], f32[4]) tuple(%a, %s)
}
ENTRY %main (x: f32[4], y: f32[4]) -> (f32[4], f32[4]) {
%x = f32[4] parameter(0)
%y = f32[4] parameter(1)
%loop_add_fusion = (f32[4], f32[4]) fusion(%x, %y), kind=kLoop, calls=%fused_computation
%loop_add_fusion.out = f32[4] get-tuple-element(%loop_add_fusion), index=0
%loop_add_fusion.out.1 = f32[4] get-tuple-element(%loop_add_fusion), index=1
ROOT %t = (f32[4], f32[4]) tuple(%loop_add_fusion.out, %loop_add_fusion.out.1)
}
"#,
        );
    }

    #[test]
    fn dependent_groups_are_not_merged() {
        // `e` is too costly to duplicate, so the reduction reads it from memory;
        // `r` reads the reduction: merging `e`'s kernel with `r`'s would form a cycle.
        let (_, report) = fuse(
            r#"
HloModule m
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
ENTRY main {
  x = f32[65543] parameter(0)
  zero0 = f32[] constant(0)
  e = f32[65536] reduce-window(x, zero0), window={size=8}, to_apply=add
  zero = f32[] constant(0)
  s = f32[] reduce(e, zero), dimensions={0}, to_apply=add
  sb = f32[65536] broadcast(s), dimensions={}
  r = f32[65536] divide(e, sb)
  ROOT t = (f32[65536], f32[65536]) tuple(r, e)
}
"#,
        );
        assert_eq!(report.kernel_count("main"), 3, "{report}");
    }

    #[test]
    fn while_bodies_are_fused_and_reducers_untouched() {
        let (module, report) = fuse(
            r#"
HloModule m
cond {
  s = (s32[], f32[16]) parameter(0)
  i = s32[] get-tuple-element(s), index=0
  n = s32[] constant(10)
  ROOT lt = pred[] compare(i, n), direction=LT
}
body {
  s = (s32[], f32[16]) parameter(0)
  i = s32[] get-tuple-element(s), index=0
  one = s32[] constant(1)
  j = s32[] add(i, one)
  x = f32[16] get-tuple-element(s), index=1
  y = f32[16] multiply(x, x)
  h = f32[] constant(0.5)
  hb = f32[16] broadcast(h), dimensions={}
  z = f32[16] multiply(y, hb)
  ROOT t = (s32[], f32[16]) tuple(j, z)
}
ENTRY main {
  x = f32[16] parameter(0)
  zero = s32[] constant(0)
  init = (s32[], f32[16]) tuple(zero, x)
  w = (s32[], f32[16]) while(init), condition=cond, body=body
  ROOT r = f32[16] get-tuple-element(w), index=1
}
"#,
        );
        let body = module.find_comp("body").unwrap();
        // The counter's increment and the array's update are small, independent loops: one kernel.
        assert_eq!(report.kernel_count("body"), 1, "{report}");
        assert!(report.merges.iter().any(|m| m.contains("horizontal")), "{report}");
        assert_eq!(report.kernel_count("cond"), 1, "{report}");
        assert!(module.comp(body).instrs.iter().any(|it| matches!(it.op, Op::Fusion { .. })));
    }

    #[test]
    fn explain_names_every_decision() {
        let text = explain(&parse(NBODY));
        assert!(text.contains("computation main: 1 kernel(s)"), "{text}");
        assert!(text.contains("fuse   d2 -> dist"), "{text}");
    }
}
