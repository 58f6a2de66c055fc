//! Kernel emitters, one per kernel kind, over the shared elemental emitter.
//!
//! ```text
//!   fused computation ──classify──▶ KernelKind ──emitter──▶ naga::Module ──validate──▶ SPIR-V
//!                                     Loop            loop_fusion.rs
//!                                     Reduce          reduce.rs  (row loop or workgroup tree)
//!                                     Scatter         scatter.rs (init step + atomic combine)
//!                                     ElementwiseLoop elementwise_loop.rs (while loop in the shader)
//!                                     WorkgroupLoop   workgroup_loop.rs (small-state while loop in one workgroup)
//!                                     DusInPlace      dus_in_place.rs (a loop state's window updated in place)
//!                                     Sort            sort/      (ranking, merge or radix passes)
//! ```
//! Every emitter evaluates values through [`elemental::Em`], so any
//! elementwise prologue fuses into any kernel kind.

pub(crate) mod conv;
pub(crate) mod dot;
pub(crate) mod dus_in_place;
pub(crate) mod elemental;
pub(crate) mod elementwise_loop;
pub(crate) mod loop_fusion;
pub(crate) mod math;
pub(crate) mod math64;
pub(crate) mod ops;
pub(crate) mod reduce;
pub(crate) mod scatter;
pub(crate) mod sort;
pub(crate) mod workgroup_loop;

use crate::builder::{Built, Kb, H};
use crate::target::Target;
use elemental::Leaf;
use hlo_ir::{CompId, DType, InstrId, Module};
use hlo_program::BufferId;
use std::collections::HashMap;
use std::fmt;

/// Which emitter produced a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelKind {
    /// One invocation per output element (elementwise and shape ops, small reductions, dot).
    Loop,
    /// A reduction with one invocation per output element looping over the reduced elements.
    ReduceRow,
    /// A reduction with one workgroup per output element and a shared-memory tree.
    ReduceTree,
    /// Writes a scatter's operand into its output buffer before the combine kernel.
    ScatterInit,
    /// One invocation per update element, combining atomically.
    Scatter,
    /// A while loop whose body is elementwise, run inside one kernel.
    ElementwiseLoop,
    /// A while loop over small arrays, run inside one workgroup of one kernel.
    WorkgroupLoop,
    /// A dynamic-update-slice writing only its window into the operand's buffer (loop state updated in place).
    DusInPlace,
    /// Sort or top-k by ranking, one invocation per element.
    Sort,
    /// One pass of a multi-pass sort (merge, radix count/scan/scatter), reading and
    /// writing its buffers in place; parameters per dispatch in push constants.
    SortPass,
    /// A dot whose invocations each compute a block of outputs (`emit/dot.rs`).
    Dot,
    /// A convolution whose invocations each compute a block of outputs (`emit/conv.rs`).
    Convolution,
}

impl fmt::Display for KernelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KernelKind::Loop => "loop",
            KernelKind::ReduceRow => "reduce-row",
            KernelKind::ReduceTree => "reduce-tree",
            KernelKind::ScatterInit => "scatter-init",
            KernelKind::Scatter => "scatter",
            KernelKind::ElementwiseLoop => "elementwise-loop",
            KernelKind::WorkgroupLoop => "workgroup-loop",
            KernelKind::DusInPlace => "dus-in-place",
            KernelKind::Sort => "sort",
            KernelKind::SortPass => "sort-pass",
            KernelKind::Dot => "dot",
            KernelKind::Convolution => "convolution",
        })
    }
}

/// How many of `binds` are storage buffers (the device's `maxPerStageDescriptorStorageBuffers`
/// counts these; texel buffers have a limit of their own).
pub(crate) fn storage_binds(binds: &[Bind]) -> usize {
    binds.iter().filter(|b| !matches!(b, Bind::Texels(_) | Bind::WordTexels(_))).count()
}

/// What a kernel binding is bound to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Bind {
    Buffer(BufferId),
    /// A read-only buffer bound as a uniform texel buffer ([`crate::Target::texel_gathers`]):
    /// not one of the device's storage-buffer bindings.
    Texels(BufferId),
    /// A read-only buffer of 32-bit elements bound as a uniform texel buffer of one word per
    /// texel ([`Em::bind_word_texels`](crate::emit::elemental::Em::bind_word_texels)).
    WordTexels(BufferId),
    /// Bytes `offset_bytes..offset_bytes + size_bytes` of a buffer larger than one binding may be.
    Window {
        buf: BufferId,
        offset_bytes: u64,
        size_bytes: u64,
    },
    /// A constant array used inside a fused computation; the program gives it a buffer.
    Constant {
        name: String,
        bytes: Vec<u8>,
    },
    /// The kernel's device-check status word; the program gives each dispatch a zeroed one.
    /// Holds what each failure code means (filled in by [`finish`]).
    Status(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BindKey {
    Buffer(BufferId),
    /// A read-only f32 buffer seen as `array<vec4<f32>>` (four consecutive elements per load).
    Vec4(BufferId),
    /// A read-only f32 buffer bound as a uniform texel buffer of `vec4<f32>` texels.
    Texels(BufferId),
    /// A read-only buffer of 32-bit elements bound as a uniform texel buffer of single words.
    WordTexels(BufferId),
    Constant(String, InstrId),
}

/// One output leaf of a kernel.
#[derive(Clone, Debug)]
pub(crate) struct OutBuf {
    pub path: Vec<usize>,
    pub buf: BufferId,
    pub dims: Vec<i64>,
    pub dtype: DType,
}

impl OutBuf {
    pub(crate) fn n_elems(&self) -> u64 {
        self.dims.iter().map(|&d| d.max(0) as u64).product()
    }
}

/// Everything an emitter needs to generate the kernel(s) computing one value.
pub(crate) struct KernelCtx<'m> {
    pub m: &'m Module,
    pub target: &'m Target,
    pub name: String,
    /// The computation in which `root` is evaluated.
    pub comp: CompId,
    pub root: InstrId,
    /// Values of `comp` that come from buffers (fused parameters, or a standalone op's operands).
    pub leaves: HashMap<InstrId, Leaf>,
    pub outputs: Vec<OutBuf>,
    /// HLO instruction names the kernel computes, for `kernels_info`.
    pub sources: Vec<String>,
}

/// A generated kernel and how to dispatch it.
pub(crate) struct KernelOut {
    pub name: String,
    pub kind: KernelKind,
    pub built: Built,
    pub binds: Vec<Bind>,
    pub groups: [u32; 3],
    pub sources: Vec<String>,
    /// This dispatch's push-constant bytes (`built.push_constant_bytes` long).
    pub push_constants: Vec<u8>,
    /// Why the emitter was chosen ([`because`]), for the plan and `--explain-fusion`.
    pub why: String,
    /// A blocked kernel's key in the target's [`crate::TileTable`].
    pub tile_key: Option<String>,
}

/// Temporary buffers an emitter needs besides its outputs (a sort's ping-pong copies and
/// histograms). The emitter gets their ids up front; the program creates them, in order,
/// right after the emitter returns.
pub(crate) struct Scratch {
    /// The id the first requested buffer gets.
    first: u32,
    requested: std::cell::RefCell<Vec<(Vec<i64>, DType)>>,
}

impl Scratch {
    pub(crate) fn new(first: u32) -> Scratch {
        Scratch { first, requested: Default::default() }
    }

    /// A new temporary array of `dims` elements of `dtype`.
    pub(crate) fn buffer(&self, dims: Vec<i64>, dtype: DType) -> BufferId {
        let mut r = self.requested.borrow_mut();
        r.push((dims, dtype));
        BufferId(self.first + r.len() as u32 - 1)
    }

    /// The requested buffers, in id order.
    pub(crate) fn take(&self) -> Vec<(Vec<i64>, DType)> {
        self.requested.take()
    }
}

/// What an emitter asks the program to do.
pub(crate) enum KernelStep {
    Kernel(Box<KernelOut>),
    Copy { src: BufferId, dst: BufferId, bytes: u64 },
    Fill { buf: BufferId, word: u32 },
}

/// Workgroup counts for `n_groups` groups, split over x and y when x would exceed 65535.
pub(crate) fn grid(n_groups: u64) -> [u32; 3] {
    let n = n_groups.max(1);
    if n <= 65535 {
        return [n as u32, 1, 1];
    }
    let gy = n.div_ceil(65535);
    let gx = n.div_ceil(gy);
    [gx as u32, gy as u32, 1]
}

/// The linear invocation index of a kernel dispatched with `groups` of `wg` invocations.
pub(crate) fn invocation_index(kb: &mut Kb, wg: u32, groups: [u32; 3]) -> H {
    let gid = kb.builtin(naga::BuiltIn::GlobalInvocationId);
    let x = kb.access_index(gid, 0);
    if groups[1] == 1 {
        return x;
    }
    let y = kb.access_index(gid, 1);
    let row = kb.mul_c(y, groups[0] * wg);
    kb.add_u(row, x)
}

/// This invocation's element in a grid of `groups` workgroups of `wg` invocations covering `n` elements.
pub(crate) struct ElementIndex {
    /// The invocation's own index; past the end when the grid overshoots `n`.
    pub raw: H,
    /// The element to compute: `raw` clamped to the last element. Invocations past the end compute the
    /// last element again and do not store it, so every lane stays active, which subgroup operations in
    /// reduction and ranking loops need.
    pub clamped: H,
    /// The grid covers exactly `n` elements: no invocation is past the end, so stores need no guard.
    pub exact: bool,
}

/// See [`ElementIndex`]; `n` must be at least 1.
pub(crate) fn element_index(kb: &mut Kb, wg: u32, groups: [u32; 3], n: u64) -> ElementIndex {
    let raw = invocation_index(kb, wg, groups);
    let exact = groups[0] as u64 * groups[1] as u64 * wg as u64 == n;
    let clamped = if exact {
        raw
    } else {
        let last = kb.lit_u32(n as u32 - 1);
        kb.min_u(raw, last)
    };
    ElementIndex { raw, clamped, exact }
}

/// Emits `stores` as they are when the grid covers exactly `n` invocations (`exact` of
/// [`element_index`]), else inside `if raw < n`, so that invocations past the end store nothing.
pub(crate) fn guarded(em: &mut elemental::Em, exact: bool, raw: H, n: u64, stores: impl FnOnce(&mut elemental::Em)) {
    if exact {
        stores(em);
        return;
    }
    let inside = em.kb.lt_c(raw, n as u32);
    em.kb.begin_block();
    stores(em);
    let accept = em.kb.end_block();
    em.kb.stmt(naga::Statement::If { condition: inside, accept, reject: naga::Block::new() });
}

/// The linear workgroup index.
pub(crate) fn workgroup_index(kb: &mut Kb, groups: [u32; 3]) -> H {
    let wid = kb.builtin(naga::BuiltIn::WorkGroupId);
    let x = kb.access_index(wid, 0);
    if groups[1] == 1 {
        return x;
    }
    let y = kb.access_index(wid, 1);
    let row = kb.mul_c(y, groups[0]);
    kb.add_u(row, x)
}

/// The emitter for a computation rooted at `root`: decided by the root's op (its "hero").
pub(crate) fn classify(m: &Module, comp: CompId, root: InstrId) -> KernelKind {
    let c = m.comp(comp);
    let r = c.instr(root);
    match &r.op {
        hlo_ir::Op::Scatter { .. } => KernelKind::Scatter,
        hlo_ir::Op::Reduce { .. } => KernelKind::ReduceRow,
        hlo_ir::Op::Sort { .. } | hlo_ir::Op::TopK { .. } => KernelKind::Sort,
        hlo_ir::Op::CustomCall(cc) if cc.target == "TopK" => KernelKind::Sort,
        _ => KernelKind::Loop,
    }
}

/// Emits the kernel(s) computing `ctx.root` into `ctx.outputs` (and `scratch`, which the program
/// then creates).
pub(crate) fn emit(ctx: &KernelCtx, scratch: &Scratch) -> crate::error::Result<Vec<KernelStep>> {
    let root = ctx.m.comp(ctx.comp).instr(ctx.root);
    let name = || root.name.clone();
    match classify(ctx.m, ctx.comp, ctx.root) {
        KernelKind::Scatter => {
            let variadic = root.operands.len() > 3;
            because(scatter::emit(ctx), || match variadic {
                false => "scatter at the root: one invocation per update element".into(),
                true => "variadic scatter at the root: one invocation per operand element, walking every update".into(),
            })
        }
        KernelKind::ReduceRow => reduce::emit(ctx),
        KernelKind::Sort => because(sort::emit(ctx, scratch), || "sort at the root".into()),
        _ if dot::applies(ctx) => dot::emit(ctx),
        _ if conv::applies(ctx) => conv::emit(ctx),
        _ => {
            // Why a dot or convolution at the root keeps the per-element kernel.
            let declined = dot::declined(ctx).or_else(|| conv::declined(ctx));
            match (reduce::hero(ctx), reduce::shared_minor_hero(ctx)) {
                // An epilogue that reads the reduction at other indices (a reverse) cannot use it.
                (Some(hero), _) => {
                    let hero_name = ctx.m.comp(ctx.comp).instr(hero).name.clone();
                    because(reduce::emit_with_hero(ctx, hero), || {
                        format!("hero `{hero_name}`: a reduce tree, the root `{}` its epilogue", name())
                    })
                    .or_else(|_| {
                        because(loop_fusion::emit(ctx, KernelKind::Loop), || {
                            format!("loop: the epilogue reads hero `{hero_name}` at other indices")
                        })
                    })
                }
                (None, Some((minor, hero))) => {
                    let hero_name = ctx.m.comp(ctx.comp).instr(hero).name.clone();
                    because(reduce::rows_sharing_minor(ctx, minor, hero), || {
                        format!(
                            "hero `{hero_name}`: a row reduce, {minor} outputs per invocation sharing their prologue"
                        )
                    })
                }
                (None, None) => because(loop_fusion::emit(ctx, KernelKind::Loop), || match declined {
                    Some(why) => format!("loop: one invocation per output element ({why})"),
                    None => "loop: one invocation per output element".into(),
                }),
            }
        }
    }
}

pub(crate) fn finish(
    mut em: elemental::Em,
    ctx_name: &str,
    kind: KernelKind,
    wg: [u32; 3],
    groups: [u32; 3],
    sources: Vec<String>,
) -> crate::error::Result<KernelStep> {
    check_loop_budget(&em, ctx_name, kind)?;
    em.loop_budget_sentinel();
    let binds: Vec<Bind> = em
        .binds
        .iter()
        .map(|b| match b {
            Bind::Status(_) => Bind::Status(em.checks.clone()),
            other => other.clone(),
        })
        .collect();
    let target = em.target;
    let built = em.kb.finish(ctx_name, wg, target)?;
    Ok(KernelStep::Kernel(Box::new(KernelOut {
        name: ctx_name.to_string(),
        kind,
        built,
        binds,
        groups,
        sources,
        push_constants: Vec::new(),
        why: String::new(),
        tile_key: None,
    })))
}

/// Records `why` on the kernels of `steps` that have no reason yet (an inner emitter's reason
/// is the more precise one).
pub(crate) fn because(
    steps: crate::error::Result<Vec<KernelStep>>,
    why: impl FnOnce() -> String,
) -> crate::error::Result<Vec<KernelStep>> {
    let mut steps = steps?;
    let why = why();
    for step in &mut steps {
        if let KernelStep::Kernel(k) = step {
            if k.why.is_empty() {
                k.why = why.clone();
            }
        }
    }
    Ok(steps)
}

/// Refuses a kernel whose loops would run past the device's loop budget in one invocation
/// ([`Target::max_loop_iterations`]): the driver would stop them early and the result would be
/// wrong. Work that big must be split over more invocations (the pass pipeline splits large
/// reductions, dots and scans for this reason).
pub(crate) fn check_loop_budget(em: &elemental::Em, kernel: &str, kind: KernelKind) -> crate::error::Result<()> {
    match em.target.max_loop_iterations {
        Some(limit) if em.loop_iterations > limit => Err(crate::error::CodegenError::unsupported(
            kind.to_string(),
            kernel,
            format!(
                "the kernel runs {} loop iterations per invocation, more than this device allows ({limit}: \
                 lavapipe stops longer shader loops early)",
                em.loop_iterations
            ),
        )),
        _ => Ok(()),
    }
}
