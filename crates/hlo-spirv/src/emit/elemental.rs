//! The elemental emitter: the naga expression for element *i* of any HLO value.
//!
//! This is XLA's `MakeElementGenerator`: [`Em::eval`] maps an output [`Index`]
//! back through shape ops (broadcast drops dimensions, transpose permutes,
//! reshape re-linearises, slice/pad/concatenate/reverse/dynamic-slice/gather
//! offset or choose, iota *is* the index) to the operands' indices, and
//! evaluates elementwise ops on the way. Ops that combine many elements
//! (reduce, reduce-window, dot) become loops inside the kernel with local
//! accumulators, fully unrolled when they cover few elements. Nested
//! `fusion`/`call`/`map` computations and reducers are evaluated in frames
//! whose parameters point at the caller's values.
//!
//! Every value is cached per (frame, instruction, tuple path, index key) for
//! as long as the block it was emitted in stays open, so a producer shared by
//! several users at the same index is computed once.

use crate::builder::{Kb, STy, H};
use crate::emit::ops::{self, Val};
use crate::emit::{Bind, BindKey};
use crate::error::{CodegenError, Result};
use crate::hostio::array_data_to_device;
use crate::target::Target;
use hlo_ir::{ArrayData, ArrayShape, CompId, Computation, DType, Instr, InstrId, Literal, Module, Op, Shape};
use hlo_program::BufferId;
use naga::{BinaryOperator as Bo, Handle, MathFunction as Mf};
use std::cell::RefCell;
use std::collections::HashMap;

/// Above this many elements a reduction loop is emitted as a loop rather than unrolled.
const UNROLL_LIMIT: u64 = 16;
/// Nested unrolled folds multiply code: a reduce of a reduce of a reduce-window, each small, once made a
/// 261,279-word kernel that lavapipe's LLVM did not finish compiling in minutes (difftest 24b8585e). Past this many
/// copies of the innermost body, folds become loops.
const MAX_UNROLLED_COPIES: u64 = 64;
/// A subgroup-staged loop (n-body's all-pairs sum) needs far fewer loop iterations than a plain one, which
/// lavapipe's loop budget counts, so it may sit under more unrolled copies than another fold.
const MAX_STAGED_COPIES: u64 = 1024;

/// The body of a [`Em::fold`]: the new accumulators from a point of the loop nest and the old ones.
pub(crate) type FoldBody<'a, 'm> = dyn FnMut(&mut Em<'m>, &[H], &[Val]) -> Result<Vec<Val>> + 'a;

/// What identifies an index for caching: the handle(s) it was built from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum IndexKey {
    Linear(H),
    Multi(Vec<H>),
}

/// An index into an array of known dimensions, held as a row-major linear
/// index, a multi-dimensional index, or both (the other form is derived on
/// demand and cached while the block it was emitted in is open).
#[derive(Debug)]
pub(crate) struct Index {
    pub dims: Vec<i64>,
    key: IndexKey,
    derived_linear: RefCell<Option<(H, u32)>>,
    derived_multi: RefCell<Option<(Vec<H>, u32)>>,
}

impl Index {
    pub(crate) fn from_linear(dims: &[i64], linear: H) -> Index {
        Index {
            dims: dims.to_vec(),
            key: IndexKey::Linear(linear),
            derived_linear: RefCell::new(None),
            derived_multi: RefCell::new(None),
        }
    }

    pub(crate) fn from_multi(dims: &[i64], multi: Vec<H>) -> Index {
        debug_assert_eq!(dims.len(), multi.len());
        Index {
            dims: dims.to_vec(),
            key: IndexKey::Multi(multi),
            derived_linear: RefCell::new(None),
            derived_multi: RefCell::new(None),
        }
    }

    /// The index of a rank-0 value.
    pub(crate) fn scalar() -> Index {
        Index::from_multi(&[], Vec::new())
    }

    pub(crate) fn key(&self) -> &IndexKey {
        &self.key
    }

    pub(crate) fn linear(&self, kb: &mut Kb) -> H {
        match &self.key {
            IndexKey::Linear(h) => *h,
            IndexKey::Multi(m) => {
                if let Some((h, b)) = *self.derived_linear.borrow() {
                    if kb.is_open(b) {
                        return h;
                    }
                }
                let h = linearize(kb, &self.dims, m);
                *self.derived_linear.borrow_mut() = Some((h, kb.block_id()));
                h
            }
        }
    }

    pub(crate) fn multi(&self, kb: &mut Kb) -> Vec<H> {
        match &self.key {
            IndexKey::Multi(m) => m.clone(),
            IndexKey::Linear(h) => {
                if let Some((m, b)) = &*self.derived_multi.borrow() {
                    if kb.is_open(*b) {
                        return m.clone();
                    }
                }
                let m = delinearize(kb, &self.dims, *h);
                *self.derived_multi.borrow_mut() = Some((m.clone(), kb.block_id()));
                m
            }
        }
    }
}

/// Row-major strides of `dims`.
pub(crate) fn strides(dims: &[i64]) -> Vec<u32> {
    let mut s = vec![1u32; dims.len()];
    for k in (0..dims.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * dims[k + 1].max(1) as u32;
    }
    s
}

pub(crate) fn linearize(kb: &mut Kb, dims: &[i64], multi: &[H]) -> H {
    let st = strides(dims);
    let mut acc = kb.lit_u32(0);
    for (k, &m) in multi.iter().enumerate() {
        if dims[k] == 1 {
            continue;
        }
        let t = kb.mul_c(m, st[k]);
        acc = kb.add_u(acc, t);
    }
    acc
}

pub(crate) fn delinearize(kb: &mut Kb, dims: &[i64], linear: H) -> Vec<H> {
    let st = strides(dims);
    let n_nontrivial = dims.iter().filter(|&&d| d != 1).count();
    let mut out = Vec::with_capacity(dims.len());
    for k in 0..dims.len() {
        if dims[k] == 1 {
            out.push(kb.lit_u32(0));
            continue;
        }
        let q = kb.div_c(linear, st[k]);
        // The outermost non-trivial dimension needs no modulo.
        let first = dims[..k].iter().all(|&d| d == 1);
        let v = if first || n_nontrivial == 1 { q } else { kb.rem_c(q, dims[k] as u32) };
        out.push(v);
    }
    out
}

/// Where a value of a frame comes from when it is not computed by the frame itself.
#[derive(Clone, Debug)]
pub(crate) enum Leaf {
    /// A device buffer holding an array in row-major order.
    Buffer {
        buf: BufferId,
        dims: Vec<i64>,
        dtype: DType,
    },
    /// A scalar already computed (reducer arguments, loop-carried scalars).
    Value(Val),
    /// A scalar read from memory as it is, which may be subnormal: the ops that read it as
    /// arithmetic flush it, the ones that read bits (total-order compares) do not (sort
    /// comparator arguments).
    Loaded(Val),
    /// A loop-carried array element, only available at the index it belongs to.
    State {
        val: Val,
        at: IndexKey,
        name: String,
    },
    Tuple(Vec<Leaf>),
    /// An instruction of another frame (parameters of nested computations).
    Outer {
        frame: usize,
        instr: InstrId,
        path: Vec<usize>,
    },
}

struct Frame<'m> {
    comp: &'m Computation,
    leaves: HashMap<InstrId, Leaf>,
}

type CacheKey = (usize, InstrId, Vec<usize>, IndexKey);

/// The elemental emitter for one kernel. Owns the kernel builder while the kernel is generated.
pub(crate) struct Em<'m> {
    pub m: &'m Module,
    pub target: &'m Target,
    pub kb: Kb,
    frames: Vec<Frame<'m>>,
    cache: HashMap<CacheKey, (Val, u32)>,
    nested: HashMap<(usize, InstrId), usize>,
    /// Buffers bound so far, in binding order.
    pub binds: Vec<Bind>,
    /// Whether inputs read at per-invocation indices may go through texel buffers
    /// ([`Em::bind_texels`]): set by emitters whose kernels never write a buffer they read
    /// (dot, convolution, reduction, elementwise loop), since a texel fetch need not see a
    /// write of the same dispatch.
    pub texel_reads: bool,
    bound: HashMap<BindKey, Handle<naga::GlobalVariable>>,
    /// Buffers larger than one binding may be, bound as several windows ([`Em::bind_array`]),
    /// by the global of their first window.
    windows: HashMap<Handle<naga::GlobalVariable>, Windows>,
    /// The kernel's name, for error messages.
    pub kernel: String,
    daz_cache: HashMap<H, (H, u32)>,
    /// Vectorised loops: a linear index known to be `4 * quad + c`, as `(quad, c)`. An f32
    /// buffer read at such an index is read with one vec4 load per quad ([`Em::quad_loads`]).
    pub(crate) quads: HashMap<H, (H, u32)>,
    /// vec4 loads made so far: `(buffer, quad)` -> the loaded vector and its block.
    quad_cache: HashMap<(BufferId, H), (H, u32)>,
    /// [`Em::flush_results`] of a value, and the block it was made in: select trees share
    /// branches, and flushing each path anew grows exponentially with their depth.
    flush_cache: HashMap<H, (H, u32)>,
    /// Live users of each instruction, per computation (keyed by address).
    users: HashMap<usize, Vec<usize>>,
    /// The staged reduction loop iteration being generated, if any (see [`Em::fold`]).
    stage: Option<Stage>,
    /// Per-lane prefetches and their broadcasts in staged loops, by (buffer, lane index[, lane]).
    prefetched: HashMap<(BufferId, H), (H, u32)>,
    prefetched_flushed: HashMap<(BufferId, H), H>,
    broadcasts: HashMap<(BufferId, H, u32), (H, u32)>,
    /// The kernel's status binding (see [`Em::status_code`]) once something is checked.
    status: Option<Handle<naga::GlobalVariable>>,
    /// What each failure code of the status binding means, code `k + 1` for entry `k`.
    pub checks: Vec<String>,
    /// Trip counts of the loops being emitted, outermost first (`None`: decided at run time).
    open_loops: Vec<Option<u64>>,
    /// Loop iterations one invocation runs in the loops emitted so far whose trip counts are
    /// known, all nesting levels counted (what llvmpipe's loop limiter counts).
    pub loop_iterations: u64,
    /// Some loop's trip count is decided at run time, so [`Em::loop_iterations`] is no bound.
    pub dynamic_loops: bool,
    /// Copies of the current fold body that enclosing unrolled folds make (see [`MAX_UNROLLED_COPIES`]).
    unrolled_copies: u64,
}

/// A buffer over `maxStorageBufferRange` bound as consecutive windows of `1 << shift` elements
/// (the last one shorter): element `i` is element `i & mask` of window `i >> shift`.
#[derive(Clone, Debug)]
struct Windows {
    parts: Vec<Handle<naga::GlobalVariable>>,
    shift: u32,
    /// Elements in the last window.
    last_len: u64,
}

/// One unrolled iteration of a staged reduction loop: iteration `r_t = r0 + t` of a chunk of
/// `lanes` iterations, in which lane `l` has loaded the elements of iteration `r_lane = r0 + l`.
#[derive(Clone, Copy, Debug)]
struct Stage {
    r_t: H,
    r_lane: H,
    t: u32,
}

fn leaf_may_be_subnormal(em: &Em, leaf: &Leaf, path: &[usize], depth: u32) -> bool {
    match leaf {
        Leaf::Buffer { .. } => true,
        Leaf::Value(_) | Leaf::State { .. } => false,
        Leaf::Loaded(_) => true,
        Leaf::Tuple(elems) => match path.split_first() {
            Some((first, rest)) => elems.get(*first).map(|e| leaf_may_be_subnormal(em, e, rest, depth)).unwrap_or(true),
            None => true,
        },
        Leaf::Outer { frame, instr, path: p } => {
            let mut full = p.clone();
            full.extend_from_slice(path);
            em.may_be_subnormal_at(*frame, *instr, &full, depth + 1)
        }
    }
}

/// How many live instructions (and the root) use each instruction of `comp`.
fn count_users(comp: &Computation) -> Vec<usize> {
    let n = comp.instrs.len();
    let mut live = vec![false; n];
    live[comp.root.index()] = true;
    for i in (0..n).rev() {
        if live[i] {
            for o in &comp.instrs[i].operands {
                live[o.index()] = true;
            }
        }
    }
    let mut users = vec![0usize; n];
    for i in 0..n {
        if live[i] {
            for o in &comp.instrs[i].operands {
                users[o.index()] += 1;
            }
        }
    }
    users[comp.root.index()] += 1;
    users
}

impl<'m> Em<'m> {
    pub(crate) fn new(m: &'m Module, target: &'m Target, kernel: &str) -> Em<'m> {
        Em {
            m,
            target,
            kb: Kb::new(),
            frames: Vec::new(),
            cache: HashMap::new(),
            nested: HashMap::new(),
            binds: Vec::new(),
            texel_reads: false,
            bound: HashMap::new(),
            windows: HashMap::new(),
            kernel: kernel.to_string(),
            daz_cache: HashMap::new(),
            quads: HashMap::new(),
            quad_cache: HashMap::new(),
            flush_cache: HashMap::new(),
            users: HashMap::new(),
            stage: None,
            prefetched: HashMap::new(),
            prefetched_flushed: HashMap::new(),
            broadcasts: HashMap::new(),
            status: None,
            checks: Vec::new(),
            open_loops: Vec::new(),
            loop_iterations: 0,
            dynamic_loops: false,
            unrolled_copies: 1,
        }
    }

    /// The status binding (bound on first use) and the failure code that reports `message`: a
    /// kernel stores the code to make the run fail with `message`, for what only the device can
    /// see going wrong. The runtime reads the status after every run (`hlo_program::StatusBuffer`).
    fn status_code(&mut self, message: String) -> (Handle<naga::GlobalVariable>, u32) {
        let g = match self.status {
            Some(g) => g,
            None => {
                let g = self.kb.storage_buffer("status", naga::Scalar::U32, false, true);
                self.binds.push(Bind::Status(Vec::new()));
                self.status = Some(g);
                g
            }
        };
        self.checks.push(message);
        (g, self.checks.len() as u32)
    }

    /// Every loop a kernel emits is bracketed by `enter_loop`/[`Em::exit_loop`], so that the
    /// kernel's iterations per invocation are known: some drivers stop loops silently past a
    /// budget ([`Target::max_loop_iterations`]), and [`crate::emit::finish`] refuses a kernel that
    /// would exceed it, or checks on the device when trip counts are decided at run time.
    pub(crate) fn enter_loop(&mut self, trips: Option<u64>) {
        match trips {
            Some(t) if self.open_loops.iter().all(Option::is_some) => {
                let outer: u64 = self.open_loops.iter().map(|t| t.unwrap_or(1)).fold(1u64, u64::saturating_mul);
                self.loop_iterations = self.loop_iterations.saturating_add(outer.saturating_mul(t));
            }
            _ => self.dynamic_loops = true,
        }
        self.open_loops.push(trips);
    }

    /// The loop iterations one invocation runs so far (see [`Em::enter_loop`]).
    pub(crate) fn loop_iterations(&self) -> u64 {
        self.loop_iterations
    }

    /// Replaces the count, for an emitter that decides a loop's trip count after emitting its body.
    pub(crate) fn set_loop_iterations(&mut self, n: u64) {
        self.loop_iterations = n;
    }

    /// The kernel's name, for error messages.
    pub(crate) fn kernel_name(&self) -> String {
        self.kernel.clone()
    }

    /// Closes the innermost loop opened by [`Em::enter_loop`].
    pub(crate) fn exit_loop(&mut self) {
        self.open_loops.pop();
    }

    /// On drivers with a loop budget, a run fails if the budget ran out anywhere in the kernel:
    /// a loop of (at least) two iterations whose count the driver cannot see runs only once
    /// when the budget is spent, since llvmpipe checks it at every loop's back-edge. Emitted at
    /// the end of kernels whose loops have trip counts decided at run time.
    pub(crate) fn loop_budget_sentinel(&mut self) {
        // Also where the static count comes within half of the budget: the count models the
        // driver's, and a model that is off must fail the run, never shorten a loop unseen.
        let near_budget = self.target.max_loop_iterations.is_some_and(|limit| self.loop_iterations > limit / 2);
        if self.target.max_loop_iterations.is_none()
            || !(self.dynamic_loops || self.kb.has_dynamic_loop() || near_budget)
        {
            return;
        }
        // The count comes from the status word (0 unless a check already failed), so that no
        // compiler can unroll the loop: 2 | status >= 2.
        let message = format!(
            "a loop in this kernel needed more iterations than the device runs in one shader invocation \
             ({} on this driver: lavapipe stops longer loops early), so its result would be wrong; \
             run it with `--backend interp` or on a GPU",
            self.target.max_loop_iterations.unwrap_or(0)
        );
        let (g, code) = self.status_code(message);
        let base = self.kb.global(g);
        let zero = self.kb.lit_u32(0);
        let ptr = self.kb.access(base, zero);
        let word = self.kb.load(ptr);
        let two = self.kb.lit_u32(2);
        let n = self.kb.binary(Bo::InclusiveOr, word, two);
        let counter = self.kb.local_init("sentinel", STy::U32, zero);
        self.kb.begin_block();
        let c = self.kb.load(counter);
        let next = self.kb.add_c(c, 1);
        self.kb.store(counter, next);
        let body = self.kb.end_block();
        self.kb.begin_block();
        let c = self.kb.load(counter);
        let done = self.kb.binary(Bo::GreaterEqual, c, n);
        let continuing = self.kb.end_block();
        self.kb.stmt(naga::Statement::Loop { body, continuing, break_if: Some(done) });
        let c = self.kb.load(counter);
        let short = self.kb.binary(Bo::Less, c, n);
        let code = self.kb.lit_u32(code);
        self.kb.begin_block();
        let base = self.kb.global(g);
        let ptr = self.kb.access(base, zero);
        self.kb.store(ptr, code);
        let accept = self.kb.end_block();
        self.kb.stmt(naga::Statement::If { condition: short, accept, reject: naga::Block::new() });
    }

    /// Opens a frame evaluating `comp` with the given leaves; returns its id.
    pub(crate) fn frame(&mut self, comp: CompId, leaves: HashMap<InstrId, Leaf>) -> usize {
        self.frames.push(Frame { comp: self.m.comp(comp), leaves });
        self.frames.len() - 1
    }

    pub(crate) fn set_leaf(&mut self, f: usize, id: InstrId, leaf: Leaf) {
        self.frames[f].leaves.insert(id, leaf);
    }

    /// Binds a buffer (once) and returns its global variable, for code that indexes it directly
    /// (`kb.access`): a buffer already bound as windows ([`Em::bind_array`]) is refused.
    pub(crate) fn bind_buffer(
        &mut self,
        buf: BufferId,
        dtype: DType,
        writable: bool,
        atomic: bool,
    ) -> Result<Handle<naga::GlobalVariable>> {
        let sty = ops::storage_sty(dtype).ok_or_else(|| self.unsupported_type(dtype, "buffer"))?;
        let key = BindKey::Buffer(buf);
        if let Some(&g) = self.bound.get(&key) {
            if self.windows.contains_key(&g) {
                return Err(self.too_large_for_one_binding(buf));
            }
            return Ok(g);
        }
        Ok(self.bind_whole(buf, sty.scalar(), writable, atomic))
    }

    /// Binds all of `buf` as one binding (not yet bound).
    fn bind_whole(
        &mut self,
        buf: BufferId,
        elem: naga::Scalar,
        writable: bool,
        atomic: bool,
    ) -> Handle<naga::GlobalVariable> {
        let g = self.kb.storage_buffer(&format!("b{}", buf.0), elem, atomic, writable);
        self.bound.insert(BindKey::Buffer(buf), g);
        self.binds.push(Bind::Buffer(buf));
        g
    }

    /// Binds f32 buffer `buf` of `elems` elements (a multiple of 4) read-only as
    /// `array<vec4<f32>>`, for [`Em::load_vec4`]; `None` when it needs several bindings.
    pub(crate) fn bind_vec4(&mut self, buf: BufferId, elems: u64) -> Option<Handle<naga::GlobalVariable>> {
        self.bind_vec4_as(buf, elems, false)
    }

    /// [`Em::bind_vec4`], writable for the outputs of a vectorised loop ([`Em::quad_loads`]).
    pub(crate) fn bind_vec4_as(
        &mut self,
        buf: BufferId,
        elems: u64,
        writable: bool,
    ) -> Option<Handle<naga::GlobalVariable>> {
        let key = BindKey::Vec4(buf);
        if let Some(&g) = self.bound.get(&key) {
            return Some(g);
        }
        if elems % 4 != 0 || self.needs_windows(elems, naga::Scalar::F32) {
            return None;
        }
        let g = self.kb.storage_buffer_vec4(&format!("b{}_v4", buf.0), naga::Scalar::F32, writable);
        self.bound.insert(key, g);
        self.binds.push(Bind::Buffer(buf));
        Some(g)
    }

    /// A read-only f32 buffer of `elems` elements bound as `vec4<f32>` texels, where the target
    /// gathers faster that way ([`crate::Target::texel_gathers`]); `None` elsewhere, or where the
    /// buffer is not a whole number of texels or has more than the device allows in one view.
    pub(crate) fn bind_texels(&mut self, buf: BufferId, elems: u64) -> Option<Handle<naga::GlobalVariable>> {
        self.bind_texel_view(buf, elems, 4)
    }

    /// A read-only buffer of `elems` 32-bit elements bound as a uniform texel buffer of one
    /// element per texel, where the target gathers faster that way; `None` elsewhere (as for
    /// [`Em::bind_texels`]), or where the buffer has more elements than one view may.
    pub(crate) fn bind_word_texels(&mut self, buf: BufferId, elems: u64) -> Option<Handle<naga::GlobalVariable>> {
        self.bind_texel_view(buf, elems, 1)
    }

    /// [`Em::bind_texels`] (`words` 4) or [`Em::bind_word_texels`] (`words` 1).
    fn bind_texel_view(&mut self, buf: BufferId, elems: u64, words: u64) -> Option<Handle<naga::GlobalVariable>> {
        let max_texels = self.target.texel_gathers?;
        let (key, bind, suffix) = match words {
            4 => (BindKey::Texels(buf), Bind::Texels(buf), "t"),
            _ => (BindKey::WordTexels(buf), Bind::WordTexels(buf), "w"),
        };
        if let Some(&g) = self.bound.get(&key) {
            return Some(g);
        }
        if !self.texel_reads || self.bound.get(&BindKey::Buffer(buf)).is_some_and(|&g| self.kb.is_writable(g)) {
            return None;
        }
        if elems == 0
            || elems % words != 0
            || elems / words > max_texels
            || self.needs_windows(elems, naga::Scalar::U32)
        {
            return None;
        }
        let g = self.kb.texel_buffer(&format!("b{}_{suffix}", buf.0), words as u32);
        self.bound.insert(key, g);
        self.binds.push(bind);
        Some(g)
    }

    /// The four elements `4 * quad .. 4 * quad + 4` of a buffer bound by [`Em::bind_texels`].
    pub(crate) fn fetch_vec4(&mut self, g: Handle<naga::GlobalVariable>, quad: H) -> [H; 4] {
        let v = self.kb.fetch_texel(g, quad);
        [0, 1, 2, 3].map(|k| self.kb.access_index(v, k))
    }

    /// Element `index` of a buffer bound by [`Em::bind_texels`]: its texel, then the component.
    pub(crate) fn fetch_element(&mut self, g: Handle<naga::GlobalVariable>, index: H) -> H {
        let quad = self.kb.div_c(index, 4);
        let v = self.kb.fetch_texel(g, quad);
        let three = self.kb.lit_u32(3);
        let c = self.kb.binary(Bo::And, index, three);
        let mut h = self.kb.access_index(v, 0);
        for k in 1..4 {
            let lit = self.kb.lit_u32(k);
            let is_k = self.kb.binary(Bo::Equal, c, lit);
            let vk = self.kb.access_index(v, k);
            h = self.kb.select(is_k, vk, h);
        }
        h
    }

    /// The four elements `4 * quad .. 4 * quad + 4` of a buffer bound by [`Em::bind_vec4`], as
    /// they are in memory.
    pub(crate) fn load_vec4(&mut self, g: Handle<naga::GlobalVariable>, quad: H) -> [H; 4] {
        let v = self.load_quad_vector(g, quad);
        [0, 1, 2, 3].map(|k| self.kb.access_index(v, k))
    }

    /// The vec4 at quad `quad` of a buffer bound by [`Em::bind_vec4`].
    fn load_quad_vector(&mut self, g: Handle<naga::GlobalVariable>, quad: H) -> H {
        let base = self.kb.global(g);
        let p = self.kb.access(base, quad);
        self.kb.load(p)
    }

    /// Component `c` of quad `quad` of an f32 buffer of `elems` elements (a multiple of 4),
    /// through one vec4 load per quad and block; `None` for other buffers.
    fn quad_load(&mut self, buf: BufferId, elems: u64, dtype: DType, quad: H, c: u32) -> Option<Val> {
        if dtype != DType::F32 {
            return None;
        }
        let v = match self.quad_cache.get(&(buf, quad)) {
            Some(&(v, block)) if self.kb.is_open(block) => v,
            _ => {
                let v = match self.bind_texels(buf, elems) {
                    Some(t) => self.kb.fetch_texel(t, quad),
                    None => {
                        let g = self.bind_vec4(buf, elems)?;
                        self.load_quad_vector(g, quad)
                    }
                };
                let block = self.kb.block_of(v);
                self.quad_cache.insert((buf, quad), (v, block));
                v
            }
        };
        Some(Val { h: self.kb.access_index(v, c), dt: DType::F32 })
    }

    /// Stores four f32 results at quad `quad` of a buffer bound by [`Em::bind_vec4_as`], each
    /// flushed as [`Em::store`] flushes it.
    pub(crate) fn store_quad(&mut self, g: Handle<naga::GlobalVariable>, quad: H, values: [Val; 4]) {
        let flushed = values.map(|v| self.flush_results(v.h, v.dt));
        let v = self.kb.compose_vec4(naga::Scalar::F32, flushed);
        let base = self.kb.global(g);
        let p = self.kb.access(base, quad);
        self.kb.store(p, v);
    }

    fn too_large_for_one_binding(&self, buf: BufferId) -> CodegenError {
        CodegenError::unsupported(
            "kernel",
            &self.kernel,
            format!(
                "buffer b{} is larger than one binding may be (maxStorageBufferRange {} bytes), and this part \
                 of the kernel cannot read it through several",
                buf.0, self.target.max_storage_buffer_range
            ),
        )
    }

    /// Whether an array of `elems` elements stored as `elem` needs several bindings.
    pub(crate) fn needs_windows(&self, elems: u64, elem: naga::Scalar) -> bool {
        elems.saturating_mul(u64::from(elem.width)) > self.target.max_storage_buffer_range
    }

    /// Binds the buffer of an array of `elems` elements (once) and returns its global variable,
    /// for [`Em::load`], [`Em::store`], [`Em::store_copy`] and [`Em::at_element`]. An array
    /// larger than `maxStorageBufferRange` is bound as several windows of the same buffer.
    pub(crate) fn bind_array(
        &mut self,
        buf: BufferId,
        elems: u64,
        dtype: DType,
        writable: bool,
        atomic: bool,
    ) -> Result<Handle<naga::GlobalVariable>> {
        let sty = ops::storage_sty(dtype).ok_or_else(|| self.unsupported_type(dtype, "buffer"))?;
        self.bind_array_as(buf, elems, sty.scalar(), writable, atomic)
    }

    /// [`Em::bind_array`] with an explicit element type, e.g. `atomic<u32>` for compare-exchange.
    pub(crate) fn bind_array_as(
        &mut self,
        buf: BufferId,
        elems: u64,
        elem: naga::Scalar,
        writable: bool,
        atomic: bool,
    ) -> Result<Handle<naga::GlobalVariable>> {
        let key = BindKey::Buffer(buf);
        if let Some(&g) = self.bound.get(&key) {
            return Ok(g);
        }
        if !self.needs_windows(elems, elem) {
            return Ok(self.bind_whole(buf, elem, writable, atomic));
        }
        if elems > u64::from(u32::MAX) {
            return Err(CodegenError::unsupported(
                "kernel",
                &self.kernel,
                format!("buffer b{} has {elems} elements; indices are 32-bit", buf.0),
            ));
        }
        // Windows of a power of two of elements, as many as fit one binding.
        let width = u64::from(elem.width);
        let per_window = (self.target.max_storage_buffer_range / width).max(1);
        let shift = 63 - per_window.leading_zeros();
        let len = 1u64 << shift;
        let count = elems.div_ceil(len);
        if count > u64::from(self.target.max_storage_buffers) {
            return Err(CodegenError::unsupported(
                "kernel",
                &self.kernel,
                format!(
                    "buffer b{} would take {count} windows of {} bytes, more bindings than the device allows one kernel ({})",
                    buf.0,
                    len * width,
                    self.target.max_storage_buffers
                ),
            ));
        }
        let mut parts = Vec::new();
        for k in 0..count {
            let g = self.kb.storage_buffer(&format!("b{}_{k}", buf.0), elem, atomic, writable);
            let elems_here = len.min(elems - k * len);
            self.binds.push(Bind::Window { buf, offset_bytes: k * len * width, size_bytes: elems_here * width });
            parts.push(g);
        }
        let first = parts[0];
        let last_len = elems - (count - 1) * len;
        self.bound.insert(key, first);
        self.windows.insert(first, Windows { parts, shift, last_len });
        Ok(first)
    }

    /// `(window, element within it)` of element `linear` of a windowed buffer.
    fn window_of(&mut self, w: &Windows, linear: H) -> (H, H) {
        let shift = self.kb.lit_u32(w.shift);
        let part = self.kb.binary(Bo::ShiftRight, linear, shift);
        let mask = self.kb.lit_u32(((1u64 << w.shift) - 1) as u32);
        let within = self.kb.binary(Bo::And, linear, mask);
        (part, within)
    }

    /// Emits `body` with a pointer to element `linear` of `g` (bound by [`Em::bind_array`]); for a
    /// windowed buffer, once per window, in a chain of branches on the window the element is in.
    pub(crate) fn at_element(
        &mut self,
        g: Handle<naga::GlobalVariable>,
        linear: H,
        mut body: impl FnMut(&mut Em<'m>, H) -> Result<()>,
    ) -> Result<()> {
        let Some(w) = self.windows.get(&g).cloned() else {
            let base = self.kb.global(g);
            let p = self.kb.access(base, linear);
            return body(self, p);
        };
        let (part, within) = self.window_of(&w, linear);
        // From the last window back: if part == k { window k } else { the chain so far }.
        let mut reject = naga::Block::new();
        for (k, &gk) in w.parts.iter().enumerate().rev() {
            self.kb.begin_block();
            let base = self.kb.global(gk);
            let p = self.kb.access(base, within);
            body(self, p)?;
            let accept = self.kb.end_block();
            if k + 1 == w.parts.len() {
                reject = accept;
                continue;
            }
            let kk = self.kb.lit_u32(k as u32);
            let here = self.kb.binary(Bo::Equal, part, kk);
            self.kb.begin_block();
            self.kb.stmt(naga::Statement::If { condition: here, accept, reject });
            reject = self.kb.end_block();
        }
        self.kb.stmt(naga::Statement::Block(reject));
        Ok(())
    }

    fn bind_constant(
        &mut self,
        comp: &Computation,
        id: InstrId,
        lit: &Literal,
    ) -> Result<Handle<naga::GlobalVariable>> {
        let key = BindKey::Constant(comp.name.clone(), id);
        if let Some(&g) = self.bound.get(&key) {
            return Ok(g);
        }
        let instr = comp.instr(id);
        let shape = lit.array_shape().ok_or_else(|| self.unsupported(instr, "tuple constant"))?;
        let data = lit.array_data().ok_or_else(|| self.unsupported(instr, "tuple constant"))?;
        let bytes =
            array_data_to_device(data, shape.dtype).ok_or_else(|| self.unsupported_type(shape.dtype, &instr.name))?;
        let sty = ops::storage_sty(shape.dtype).ok_or_else(|| self.unsupported_type(shape.dtype, &instr.name))?;
        let g =
            self.kb.storage_buffer(&format!("c_{}", instr.name.replace(['.', '-'], "_")), sty.scalar(), false, false);
        self.bound.insert(key, g);
        self.binds.push(Bind::Constant { name: instr.name.clone(), bytes });
        Ok(g)
    }

    pub(crate) fn unsupported(&self, instr: &Instr, reason: impl Into<String>) -> CodegenError {
        let reason = match &instr.op {
            // Name the target: it is what the user needs to know (`lapack_ssyevd_ffi`, ...).
            Op::CustomCall(cc) => format!("target \"{}\" is not supported ({})", cc.target, reason.into()),
            _ => reason.into(),
        };
        CodegenError::unsupported(instr.op.opcode().name(), &instr.name, reason)
    }

    fn unsupported_type(&self, dtype: DType, what: &str) -> CodegenError {
        CodegenError::unsupported(format!("type {dtype}"), what, self.type_reason(dtype))
    }

    fn type_reason(&self, dtype: DType) -> String {
        match dtype {
            DType::S64 | DType::U64 => "the device lacks shaderInt64".into(),
            DType::F64 => "the device lacks shaderFloat64".into(),
            _ => format!("{dtype} has no device representation in this backend"),
        }
    }

    /// Checks that values of `dtype` can be computed on this target.
    pub(crate) fn check_type(&self, instr: &Instr, dtype: DType) -> Result<()> {
        let ok = match dtype {
            DType::S64 | DType::U64 => self.target.shader_int64,
            DType::F64 => self.target.shader_float64,
            other => ops::value_sty(other).is_some(),
        };
        if ok {
            Ok(())
        } else {
            Err(CodegenError::unsupported(
                instr.op.opcode().name(),
                &instr.name,
                format!("element type {dtype}: {}", self.type_reason(dtype)),
            ))
        }
    }

    /// Loads element `linear` of a bound buffer. From a windowed buffer ([`Em::bind_array`]), every
    /// window is read at the element's offset (clamped into the shorter last one) and the right
    /// value selected: no branches, and every read in bounds.
    pub(crate) fn load(&mut self, g: Handle<naga::GlobalVariable>, linear: H, dtype: DType) -> Val {
        let raw = match self.windows.get(&g).cloned() {
            None => {
                let base = self.kb.global(g);
                let p = self.kb.access(base, linear);
                self.kb.load(p)
            }
            Some(w) => {
                let (part, within) = self.window_of(&w, linear);
                let mut value: Option<H> = None;
                for (k, &gk) in w.parts.iter().enumerate() {
                    let at = if k + 1 == w.parts.len() {
                        let last = self.kb.lit_u32((w.last_len - 1) as u32);
                        self.kb.math(naga::MathFunction::Min, &[within, last])
                    } else {
                        within
                    };
                    let base = self.kb.global(gk);
                    let p = self.kb.access(base, at);
                    let raw = self.kb.load(p);
                    value = Some(match value {
                        None => raw,
                        Some(before) => {
                            let kk = self.kb.lit_u32(k as u32);
                            let here = self.kb.binary(Bo::Equal, part, kk);
                            self.kb.select(here, raw, before)
                        }
                    });
                }
                value.expect("at least one window")
            }
        };
        let h = ops::from_storage(&mut self.kb, raw, dtype);
        Val { h, dt: dtype }
    }

    /// Stores `v` at element `linear` of a bound buffer.
    /// Stores `v` at `linear` of buffer `g`. A subnormal arithmetic result is stored as zero,
    /// as XLA:CPU flushes it (FTZ); copied data keeps its subnormals.
    pub(crate) fn store(&mut self, g: Handle<naga::GlobalVariable>, linear: H, v: Val) {
        let h = if matches!(v.dt, DType::F32 | DType::F64 | DType::BF16) { self.flush_results(v.h, v.dt) } else { v.h };
        self.store_copy(g, linear, Val { h, dt: v.dt });
    }

    /// `h` with subnormal arithmetic results flushed: a select flushes each branch on its own,
    /// so the branch that copies data keeps its subnormals (`select(p, round(x), x)`).
    pub(crate) fn flush_results(&mut self, h: H, dt: DType) -> H {
        if let Some(&(r, b)) = self.flush_cache.get(&h) {
            if self.kb.is_open(b) {
                return r;
            }
        }
        let r = if !self.kb.may_be_arithmetic(h) {
            h
        } else if let Some((c, a, b)) = self.kb.select_parts(h) {
            let a = self.flush_results(a, dt);
            let b = self.flush_results(b, dt);
            self.kb.select(c, a, b)
        } else {
            ops::flush_subnormal(&mut self.kb, h, dt)
        };
        let block = self.kb.block_of(r);
        self.flush_cache.insert(h, (r, block));
        r
    }

    /// `v` with a subnormal arithmetic result flushed (see [`Em::flush_results`]), for ops that
    /// look at bit patterns rather than values.
    pub(crate) fn flushed_result(&mut self, v: Val) -> Val {
        if matches!(v.dt, DType::F32 | DType::F64 | DType::BF16) {
            Val { h: self.flush_results(v.h, v.dt), dt: v.dt }
        } else {
            v
        }
    }

    /// Stores `v` as it is: for kernels that only move data through locals (sorting), where
    /// [`Em::store`] could not tell a copy from an arithmetic result.
    pub(crate) fn store_copy(&mut self, g: Handle<naga::GlobalVariable>, linear: H, v: Val) {
        let s = ops::to_storage(&mut self.kb, v.h, v.dt);
        self.at_element(g, linear, |em, p| {
            em.kb.store(p, s);
            Ok(())
        })
        .expect("a store cannot fail");
    }

    // ---- evaluation ------------------------------------------------------------

    /// The element at `idx` of array-valued instruction `id` (at tuple `path`) in frame `f`.
    pub(crate) fn eval(&mut self, f: usize, id: InstrId, path: &[usize], idx: &Index) -> Result<Val> {
        if let Some(leaf) = self.frames[f].leaves.get(&id).cloned() {
            return self.eval_leaf(&leaf, path, idx);
        }
        let key: CacheKey = (f, id, path.to_vec(), idx.key().clone());
        if let Some(&(v, b)) = self.cache.get(&key) {
            if self.kb.is_open(b) {
                return Ok(v);
            }
        }
        let comp = self.frames[f].comp;
        let instr = comp.instr(id);
        let v = match &instr.op {
            Op::GetTupleElement { index } => {
                let mut p = vec![*index as usize];
                p.extend_from_slice(path);
                return self.eval(f, instr.operands[0], &p, idx);
            }
            Op::Tuple => {
                let (first, rest) =
                    path.split_first().ok_or_else(|| self.unsupported(instr, "tuple used as an array"))?;
                return self.eval(f, instr.operands[*first], rest, idx);
            }
            Op::Reduce { .. } | Op::ReduceWindow { .. } if instr.shape.is_tuple() => {
                let vals = self.eval_multi(f, id, idx)?;
                let k = *path.first().ok_or_else(|| self.unsupported(instr, "tuple used as an array"))?;
                return Ok(vals[k]);
            }
            Op::Fusion { calls, .. } | Op::Call { to_apply: calls, .. } => {
                let nf = self.nested_frame(f, id, *calls);
                let root = self.m.comp(*calls).root;
                return self.eval(nf, root, path, idx);
            }
            Op::Parameter { number } => {
                return Err(CodegenError::Internal {
                    kernel: self.kernel.clone(),
                    naga_error: format!("parameter {number} (`{}`) of `{}` is not bound", instr.name, comp.name),
                })
            }
            _ if !path.is_empty() => return Err(self.unsupported(instr, "tuple-shaped result")),
            _ => self.eval_array(f, id, instr, idx)?,
        };
        self.kb.name(v.h, &instr.name);
        self.cache.insert(key, (v, self.kb.block_of(v.h)));
        Ok(v)
    }

    fn nested_frame(&mut self, f: usize, id: InstrId, calls: CompId) -> usize {
        if let Some(&nf) = self.nested.get(&(f, id)) {
            return nf;
        }
        let comp = self.m.comp(calls);
        let instr = self.frames[f].comp.instr(id);
        let mut leaves = HashMap::new();
        for (k, &p) in comp.params.iter().enumerate() {
            leaves.insert(p, Leaf::Outer { frame: f, instr: instr.operands[k], path: Vec::new() });
        }
        let nf = self.frame(calls, leaves);
        self.nested.insert((f, id), nf);
        nf
    }

    pub(crate) fn eval_leaf(&mut self, leaf: &Leaf, path: &[usize], idx: &Index) -> Result<Val> {
        match leaf {
            Leaf::Buffer { buf, dims, dtype } => {
                if let Some(st) = self.stage {
                    if let Some(v) = self.staged_load(st, *buf, dims, *dtype, idx)? {
                        return Ok(v);
                    }
                }
                let elems = dims.iter().product::<i64>().max(0) as u64;
                let lin = if dims.iter().product::<i64>() == 1 { self.kb.lit_u32(0) } else { idx.linear(&mut self.kb) };
                if let Some(&(quad, c)) = self.quads.get(&lin) {
                    if let Some(v) = self.quad_load(*buf, elems, *dtype, quad, c) {
                        return Ok(v);
                    }
                }
                // Each lane reads a different element: through the texture path where that
                // gathers faster. A uniform index outside loops stays a storage load (one load,
                // broadcast); inside a loop llvmpipe loads a storage buffer lane by lane even at
                // a uniform index (its loop mask hides that every lane is active), which made a
                // convolution's kernel-weight loads 5x slower than texel fetches.
                // Every type kept as one 32-bit word per element takes the same path (texels
                // move bits unchanged): f32 through the vec4 texels other reads of the buffer
                // may share, else one word per texel.
                let storage = ops::storage_sty(*dtype).filter(|t| t.bits() == 32);
                if let (Some(storage), true) = (storage, self.kb.varying(lin) || !self.open_loops.is_empty()) {
                    if *dtype == DType::F32 && self.bound.contains_key(&BindKey::Texels(*buf)) {
                        if let Some(t) = self.bind_texels(*buf, elems) {
                            return Ok(Val { h: self.fetch_element(t, lin), dt: DType::F32 });
                        }
                    }
                    if let Some(t) = self.bind_word_texels(*buf, elems) {
                        let texel = self.kb.fetch_texel(t, lin);
                        let word = self.kb.access_index(texel, 0);
                        let raw = if storage == STy::F32 { word } else { self.kb.bitcast(word, storage) };
                        return Ok(Val { h: ops::from_storage(&mut self.kb, raw, *dtype), dt: *dtype });
                    }
                }
                let g = self.bind_array(*buf, elems, *dtype, false, false)?;
                Ok(self.load(g, lin, *dtype))
            }
            Leaf::Value(v) | Leaf::Loaded(v) => Ok(*v),
            Leaf::State { val, at, name } => {
                if idx.key() == at {
                    Ok(*val)
                } else {
                    Err(CodegenError::unsupported(
                        "while",
                        name,
                        "the loop body reads a carried array at another element (not an elementwise loop)",
                    ))
                }
            }
            Leaf::Tuple(elems) => {
                let (first, rest) = path.split_first().ok_or_else(|| CodegenError::Internal {
                    kernel: self.kernel.clone(),
                    naga_error: "tuple leaf used as an array".into(),
                })?;
                let e = elems[*first].clone();
                self.eval_leaf(&e, rest, idx)
            }
            Leaf::Outer { frame, instr, path: p } => {
                let mut full = p.clone();
                full.extend_from_slice(path);
                self.eval(*frame, *instr, &full, idx)
            }
        }
    }

    /// Part `part` (0 real, 1 imaginary) of the complex array that `instr` (a `real` or `imag`)
    /// reads. After `lower-complex` only entry parameters are complex: their buffers hold
    /// interleaved pairs of the part type, so the part is the word at `2 * i + part`.
    fn complex_part(&mut self, f: usize, instr: &Instr, part: usize, idx: &Index) -> Result<Val> {
        let Some((buf, dims, dtype)) = self.complex_buffer(f, instr.operands[0]) else {
            return Err(self.unsupported(instr, "a complex value that is not an entry parameter (run lower-complex)"));
        };
        let part_dt = dtype.complex_component().unwrap_or(DType::F32);
        let elems = dims.iter().product::<i64>().max(0) as u64;
        let lin = if elems == 1 { self.kb.lit_u32(0) } else { idx.linear(&mut self.kb) };
        let twice = self.kb.mul_c(lin, 2);
        let at = self.kb.add_c(twice, part as u32);
        let g = self.bind_array(buf, 2 * elems, part_dt, false, false)?;
        Ok(self.load(g, at, part_dt))
    }

    /// The buffer behind a complex-typed instruction of frame `f`, following parameters out
    /// through the frames that bind them.
    fn complex_buffer(&self, f: usize, id: InstrId) -> Option<(BufferId, Vec<i64>, DType)> {
        match self.frames[f].leaves.get(&id)? {
            Leaf::Buffer { buf, dims, dtype } if dtype.is_complex() => Some((*buf, dims.clone(), *dtype)),
            Leaf::Outer { frame, instr, path } if path.is_empty() => self.complex_buffer(*frame, *instr),
            _ => None,
        }
    }

    /// Evaluates operand `k` of `instr` at `idx`.
    fn operand(&mut self, f: usize, instr: &Instr, k: usize, idx: &Index) -> Result<Val> {
        self.eval(f, instr.operands[k], &[], idx)
    }

    /// Evaluates operand `k` at the output index, or at the scalar index when the operand is a
    /// scalar of an op that broadcasts scalars implicitly (clamp, select).
    fn operand_same(&mut self, f: usize, instr: &Instr, k: usize, idx: &Index) -> Result<Val> {
        let comp = self.frames[f].comp;
        let rank = comp.instr(instr.operands[k]).shape.as_array().map(|a| a.rank()).unwrap_or(0);
        if rank == 0 && !idx.dims.is_empty() {
            self.operand(f, instr, k, &Index::scalar())
        } else {
            self.operand(f, instr, k, idx)
        }
    }

    /// Operand `k` of an arithmetic op: like [`Em::operand_same`], with subnormal floats read as zero
    /// when the value may come straight from memory (XLA:CPU runs with DAZ|FTZ, and so does
    /// XLA:GPU for f32; results of arithmetic are not flushed, which only matters for values
    /// that underflow mid-computation).
    fn arith_operand(&mut self, f: usize, instr: &Instr, k: usize, idx: &Index) -> Result<Val> {
        let v = self.operand_same(f, instr, k, idx)?;
        Ok(self.daz(f, instr.operands[k], v))
    }

    /// `v` (the value of `id`) with subnormals flushed, if it is a float that may be subnormal.
    pub(crate) fn daz(&mut self, f: usize, id: InstrId, v: Val) -> Val {
        // bf16 shares f32's exponent range and XLA:CPU flushes it as well.
        if !matches!(v.dt, DType::F32 | DType::F64 | DType::BF16) || !self.may_be_subnormal(f, id, 0) {
            return v;
        }
        if let Some(&(h, b)) = self.daz_cache.get(&v.h) {
            if self.kb.is_open(b) {
                return Val { h, dt: v.dt };
            }
        }
        let h = ops::flush_subnormal(&mut self.kb, v.h, v.dt);
        self.daz_cache.insert(v.h, (h, self.kb.block_of(h)));
        Val { h, dt: v.dt }
    }

    /// True when `id`'s value (at tuple `path`) may be a subnormal read from memory: buffers and
    /// constants and whatever only moves such values around (shape ops, select, abs, negate).
    fn may_be_subnormal(&self, f: usize, id: InstrId, depth: u32) -> bool {
        self.may_be_subnormal_at(f, id, &[], depth)
    }

    fn may_be_subnormal_at(&self, f: usize, id: InstrId, path: &[usize], depth: u32) -> bool {
        if depth > 32 {
            return true;
        }
        let frame = &self.frames[f];
        if let Some(leaf) = frame.leaves.get(&id) {
            return leaf_may_be_subnormal(self, leaf, path, depth);
        }
        let instr = frame.comp.instr(id);
        let rec = |o: InstrId| self.may_be_subnormal_at(f, o, path, depth + 1);
        match &instr.op {
            Op::Constant(lit) => match lit.array_data() {
                Some(ArrayData::F32(v)) => v.iter().any(|x| x.is_subnormal()),
                Some(ArrayData::F64(v)) => v.iter().any(|x| x.is_subnormal()),
                _ => false,
            },
            Op::Parameter { .. } => true,
            Op::GetTupleElement { index } => {
                let mut p = vec![*index as usize];
                p.extend_from_slice(path);
                self.may_be_subnormal_at(f, instr.operands[0], &p, depth + 1)
            }
            Op::Tuple => match path.split_first() {
                Some((first, rest)) => self.may_be_subnormal_at(f, instr.operands[*first], rest, depth + 1),
                None => true,
            },
            Op::Fusion { calls, .. } | Op::Call { to_apply: calls, .. } => {
                // Look through the callee: its parameters are this instruction's operands.
                let callee = self.m.comp(*calls);
                self.callee_may_be_subnormal(f, instr, callee, callee.root, path, depth + 1)
            }
            Op::Unary(hlo_ir::UnaryOp::Abs | hlo_ir::UnaryOp::Negate)
            | Op::Copy
            | Op::Reshape
            | Op::Bitcast
            | Op::Broadcast { .. }
            | Op::Transpose { .. }
            | Op::Slice { .. }
            | Op::Reverse { .. }
            | Op::DynamicSlice { .. }
            | Op::Gather { .. }
            | Op::OptimizationBarrier => rec(instr.operands[0]),
            Op::Select => instr.operands[1..].iter().any(|&o| rec(o)),
            Op::Pad { .. } | Op::Concatenate { .. } | Op::DynamicUpdateSlice => instr.operands.iter().any(|&o| rec(o)),
            Op::BitcastConvert => true,
            // The device does not flush arithmetic results (XLA:CPU does): a product, sum,
            // quotient, exponential... of normal floats can be subnormal. Ops that cannot make
            // one from flushed operands are listed here.
            Op::Binary(hlo_ir::BinaryOp::Maximum | hlo_ir::BinaryOp::Minimum) | Op::Clamp | Op::Compare { .. } => false,
            Op::Unary(
                hlo_ir::UnaryOp::Floor
                | hlo_ir::UnaryOp::Ceil
                | hlo_ir::UnaryOp::RoundNearestAfz
                | hlo_ir::UnaryOp::RoundNearestEven
                | hlo_ir::UnaryOp::Sign
                | hlo_ir::UnaryOp::Sqrt
                | hlo_ir::UnaryOp::IsFinite
                // |sin x| and |tanh x| are about |x| near 0, and no float comes within a subnormal of another
                // zero of sin or cos: over every f32 from 1 up, min |sin x| = 3.2e-9 and min |cos x| = 1.6e-9
                // (numpy in f64), so a normal or flushed argument gives a normal result or zero.
                | hlo_ir::UnaryOp::Sin
                | hlo_ir::UnaryOp::Cos
                | hlo_ir::UnaryOp::Tanh,
            ) => false,
            // From a float: a subnormal carries over (bf16 to f32 keeps it), or f64 makes one.
            Op::Convert => instr.operands.first().is_some_and(|&o| {
                let from = frame.comp.instr(o).shape.dtype();
                from.is_some_and(|d| d.is_float() && (d.bit_width() > 32 || rec(o)))
            }),
            _ => self.target.flush_results && instr.shape.dtype().is_some_and(|d| d.is_float()),
        }
    }

    /// [`Em::may_be_subnormal_at`] for an instruction of a called computation, whose parameters
    /// are `call`'s operands in frame `f`.
    fn callee_may_be_subnormal(
        &self,
        f: usize,
        call: &Instr,
        callee: &Computation,
        id: InstrId,
        path: &[usize],
        depth: u32,
    ) -> bool {
        if depth > 32 {
            return true;
        }
        let instr = callee.instr(id);
        let rec = |o: InstrId, p: &[usize]| self.callee_may_be_subnormal(f, call, callee, o, p, depth + 1);
        match &instr.op {
            Op::Parameter { number } => self.may_be_subnormal_at(f, call.operands[*number as usize], path, depth + 1),
            Op::Constant(lit) => match lit.array_data() {
                Some(ArrayData::F32(v)) => v.iter().any(|x| x.is_subnormal()),
                Some(ArrayData::F64(v)) => v.iter().any(|x| x.is_subnormal()),
                _ => false,
            },
            Op::GetTupleElement { index } => {
                let mut p = vec![*index as usize];
                p.extend_from_slice(path);
                rec(instr.operands[0], &p)
            }
            Op::Tuple => match path.split_first() {
                Some((first, rest)) => rec(instr.operands[*first], rest),
                None => true,
            },
            Op::Unary(hlo_ir::UnaryOp::Abs | hlo_ir::UnaryOp::Negate)
            | Op::Copy
            | Op::Reshape
            | Op::Bitcast
            | Op::Broadcast { .. }
            | Op::Transpose { .. }
            | Op::Slice { .. }
            | Op::Reverse { .. }
            | Op::DynamicSlice { .. }
            | Op::Gather { .. }
            | Op::OptimizationBarrier => rec(instr.operands[0], path),
            Op::Select => instr.operands[1..].iter().any(|&o| rec(o, path)),
            Op::Pad { .. } | Op::Concatenate { .. } | Op::DynamicUpdateSlice => {
                instr.operands.iter().any(|&o| rec(o, path))
            }
            Op::Fusion { .. } | Op::Call { .. } | Op::BitcastConvert => true,
            _ => false,
        }
    }

    /// `a * b + c` as one fused multiply-add where XLA:CPU's LLVM contracts it: an f32/f64 add or
    /// subtract with an operand that is a multiply with no other user (the left one preferred).
    fn try_fma(&mut self, f: usize, instr: &Instr, op: hlo_ir::BinaryOp, idx: &Index) -> Result<Option<Val>> {
        if !matches!(op, hlo_ir::BinaryOp::Add | hlo_ir::BinaryOp::Subtract) {
            return Ok(None);
        }
        let dt = match instr.shape.as_array() {
            Some(a) if matches!(a.dtype, DType::F32 | DType::F64) => a.dtype,
            _ => return Ok(None),
        };
        let mode = match (self.target.fma, dt) {
            (crate::target::FmaMode::Unfused, _) => return Ok(None),
            (crate::target::FmaMode::ViaF64, DType::F32) if self.target.shader_float64 => {
                crate::target::FmaMode::ViaF64
            }
            _ => crate::target::FmaMode::Native,
        };
        let Some(k) = (0..2).find(|&k| self.is_single_use_product(f, instr.operands[k], dt)) else { return Ok(None) };
        let comp = self.frames[f].comp;
        let m = comp.instr(instr.operands[k]);
        let a = self.arith_operand(f, m, 0, idx)?;
        let b = self.arith_operand(f, m, 1, idx)?;
        let c = self.arith_operand(f, instr, 1 - k, idx)?;
        let kb = &mut self.kb;
        if mode == crate::target::FmaMode::ViaF64 {
            let (a64, b64, c64) = (kb.convert(a.h, STy::F64), kb.convert(b.h, STy::F64), kb.convert(c.h, STy::F64));
            let p = kb.binary(Bo::Multiply, a64, b64);
            let r = match (op, k) {
                (hlo_ir::BinaryOp::Add, _) => kb.binary(Bo::Add, p, c64),
                (_, 0) => kb.binary(Bo::Subtract, p, c64),
                _ => kb.binary(Bo::Subtract, c64, p),
            };
            return Ok(Some(Val { h: kb.convert(r, STy::F32), dt }));
        }
        let h = match (op, k) {
            (hlo_ir::BinaryOp::Add, _) => kb.math(Mf::Fma, &[a.h, b.h, c.h]),
            (_, 0) => {
                let nc = kb.unary(naga::UnaryOperator::Negate, c.h);
                kb.math(Mf::Fma, &[a.h, b.h, nc])
            }
            _ => {
                let na = kb.unary(naga::UnaryOperator::Negate, a.h);
                kb.math(Mf::Fma, &[na, b.h, c.h])
            }
        };
        Ok(Some(Val { h, dt }))
    }

    fn is_single_use_product(&mut self, f: usize, id: InstrId, dt: DType) -> bool {
        let frame = &self.frames[f];
        if frame.leaves.contains_key(&id) {
            return false;
        }
        let comp = frame.comp;
        let instr = comp.instr(id);
        if !matches!(instr.op, Op::Binary(hlo_ir::BinaryOp::Multiply)) || instr.shape.dtype() != Some(dt) {
            return false;
        }
        let users = self.users.entry(comp as *const Computation as usize).or_insert_with(|| count_users(comp));
        users[id.index()] == 1
    }

    fn operand_shape(&self, f: usize, instr: &Instr, k: usize) -> Result<&'m ArrayShape> {
        let comp = self.frames[f].comp;
        let op = comp.instr(instr.operands[k]);
        op.shape.as_array().ok_or_else(|| self.unsupported(instr, format!("operand {k} is not an array")))
    }

    fn eval_array(&mut self, f: usize, id: InstrId, instr: &'m Instr, idx: &Index) -> Result<Val> {
        let shape = instr.shape.as_array().ok_or_else(|| self.unsupported(instr, "non-array result"))?;
        let dt = shape.dtype;
        self.check_type(instr, dt)?;
        let kb = &mut self.kb;
        let _ = kb;
        let v = match &instr.op {
            Op::Constant(lit) => self.constant(f, id, instr, lit, idx)?,
            Op::Iota { dimension } => {
                let m = idx.multi(&mut self.kb);
                let i = m[*dimension as usize];
                Val { h: ops::convert(&mut self.kb, Val { h: i, dt: DType::U32 }, dt), dt }
            }
            Op::Unary(u @ (hlo_ir::UnaryOp::Real | hlo_ir::UnaryOp::Imag))
                if self.frames[f].comp.instr(instr.operands[0]).shape.dtype().is_some_and(|d| d.is_complex()) =>
            {
                let part = usize::from(*u == hlo_ir::UnaryOp::Imag);
                self.complex_part(f, instr, part, idx)?
            }
            Op::Unary(u) => {
                let x = if ops::unary_is_arithmetic(*u) {
                    self.arith_operand(f, instr, 0, idx)?
                } else {
                    self.operand(f, instr, 0, idx)?
                };
                let h = ops::unary(&mut self.kb, *u, x, dt).map_err(|r| self.unsupported(instr, r))?;
                Val { h, dt }
            }
            Op::Binary(b) => {
                if let Some(v) = self.try_fma(f, instr, *b, idx)? {
                    return Ok(v);
                }
                // Operands are flushed as XLA:CPU's arithmetic does. Its atan2 and pow are
                // library calls that read a subnormal operand unflushed (the results are still
                // flushed): pow reads it here too, atan2 is corrected below.
                let (x, y) = if *b == hlo_ir::BinaryOp::Power && matches!(dt, DType::F32 | DType::BF16) {
                    let x = self.operand_same(f, instr, 0, idx)?;
                    let y = self.operand_same(f, instr, 1, idx)?;
                    (self.flushed_result(x), self.flushed_result(y))
                } else {
                    (self.arith_operand(f, instr, 0, idx)?, self.arith_operand(f, instr, 1, idx)?)
                };
                let rhs_const = self.scalar_constant(f, instr.operands[1]);
                let h = ops::binary(&mut self.kb, *b, x, y, dt, rhs_const).map_err(|r| self.unsupported(instr, r))?;
                if *b == hlo_ir::BinaryOp::Atan2 && matches!(dt, DType::F32 | DType::BF16) {
                    let raw_y = self.operand_same(f, instr, 0, idx)?;
                    let raw_x = self.operand_same(f, instr, 1, idx)?;
                    let (raw_y, raw_x) = (self.flushed_result(raw_y), self.flushed_result(raw_x));
                    return Ok(Val { h: ops::atan2_subnormal_operands(&mut self.kb, h, raw_y.h, raw_x.h), dt });
                }
                Val { h, dt }
            }
            Op::Compare { direction, compare_type } => {
                let (x, y) = if *compare_type == Some(hlo_ir::CompareType::TotalOrder) {
                    // Compares bit patterns: an arithmetic result is flushed first, as XLA:CPU's
                    // FTZ did when it was computed; data keeps its subnormals.
                    let x = self.operand_same(f, instr, 0, idx)?;
                    let y = self.operand_same(f, instr, 1, idx)?;
                    (self.flushed_result(x), self.flushed_result(y))
                } else {
                    (self.arith_operand(f, instr, 0, idx)?, self.arith_operand(f, instr, 1, idx)?)
                };
                Val { h: ops::compare(&mut self.kb, *direction, *compare_type, x, y), dt }
            }
            Op::Select => {
                let c = self.operand_same(f, instr, 0, idx)?;
                let a = self.operand_same(f, instr, 1, idx)?;
                let b = self.operand_same(f, instr, 2, idx)?;
                Val { h: self.kb.select(c.h, a.h, b.h), dt }
            }
            Op::Clamp => {
                let lo = self.arith_operand(f, instr, 0, idx)?;
                let x = self.arith_operand(f, instr, 1, idx)?;
                let hi = self.arith_operand(f, instr, 2, idx)?;
                let t = ops::binary(&mut self.kb, hlo_ir::BinaryOp::Maximum, x, lo, dt, None)
                    .map_err(|r| self.unsupported(instr, r))?;
                let h = ops::binary(&mut self.kb, hlo_ir::BinaryOp::Minimum, Val { h: t, dt }, hi, dt, None)
                    .map_err(|r| self.unsupported(instr, r))?;
                Val { h, dt }
            }
            Op::Convert => {
                // XLA:CPU converts between bf16 and f32 with integer bit operations, which keep
                // subnormals; conversions through f64 flush them (DAZ/FTZ), and others (to pred:
                // `x != 0`) read operands as the arithmetic does. `f32 <-> e8m0fnu` works on the
                // bits too (the interpreter's `flushes_subnormals` has the same list).
                let from = self.operand_shape(f, instr, 0)?.dtype;
                let bit_level = from == dt
                    || matches!(
                        (from, dt),
                        (DType::BF16, DType::F32)
                            | (DType::F32, DType::BF16)
                            | (DType::F32, DType::F8E8M0FNU)
                            | (DType::F8E8M0FNU, DType::F32)
                    );
                let x = if bit_level {
                    // An arithmetic operand was flushed when XLA computed it; data is not.
                    let x = self.operand_same(f, instr, 0, idx)?;
                    self.flushed_result(x)
                } else if dt == DType::BF16 {
                    self.operand_same(f, instr, 0, idx)?
                } else {
                    self.arith_operand(f, instr, 0, idx)?
                };
                self.check_type(instr, x.dt)?;
                let h = ops::convert(&mut self.kb, x, dt);
                if bit_level {
                    // The result's subnormals are the operand's: data, not to be flushed again.
                    self.kb.mark_data_bits(h);
                }
                Val { h, dt }
            }
            Op::BitcastConvert => {
                let x = self.operand(f, instr, 0, idx)?;
                let x = self.flushed_result(x);
                let h = ops::bitcast_convert(&mut self.kb, x, dt).map_err(|r| self.unsupported(instr, r))?;
                self.kb.mark_data_bits(h);
                Val { h, dt }
            }
            Op::ReducePrecision { exponent_bits, mantissa_bits } => {
                let x = self.operand(f, instr, 0, idx)?;
                let h = ops::reduce_precision(&mut self.kb, x, *exponent_bits, *mantissa_bits)
                    .map_err(|r| self.unsupported(instr, r))?;
                Val { h, dt }
            }
            Op::Copy | Op::OptimizationBarrier => self.operand(f, instr, 0, idx)?,
            Op::Broadcast { dimensions } => {
                let os = self.operand_shape(f, instr, 0)?;
                if os.rank() == 0 {
                    self.operand(f, instr, 0, &Index::scalar())?
                } else if os.dims == shape.dims && dimensions.iter().enumerate().all(|(k, &d)| d == k as i64) {
                    self.operand(f, instr, 0, idx)?
                } else {
                    let m = idx.multi(&mut self.kb);
                    let om: Vec<H> = dimensions.iter().map(|&d| m[d as usize]).collect();
                    self.operand(f, instr, 0, &Index::from_multi(&os.dims, om))?
                }
            }
            Op::Reshape | Op::Bitcast => {
                let os = self.operand_shape(f, instr, 0)?;
                if matches!(instr.op, Op::Bitcast) && !(os.is_row_major() && shape.is_row_major()) {
                    let m = idx.multi(&mut self.kb);
                    let phys = physical_offset(&mut self.kb, shape, &m);
                    let om = from_physical_offset(&mut self.kb, os, phys);
                    self.operand(f, instr, 0, &Index::from_multi(&os.dims, om))?
                } else if let (IndexKey::Multi(m), Some(om)) = (idx.key(), reshape_groups(&shape.dims, &os.dims)) {
                    // Map dimension groups separately: unrelated dimensions stay independent.
                    let m = m.clone();
                    let om = reshape_multi(&mut self.kb, &shape.dims, &os.dims, &om, &m);
                    self.operand(f, instr, 0, &Index::from_multi(&os.dims, om))?
                } else {
                    let lin = idx.linear(&mut self.kb);
                    self.operand(f, instr, 0, &Index::from_linear(&os.dims, lin))?
                }
            }
            Op::Transpose { dimensions } => {
                let os = self.operand_shape(f, instr, 0)?;
                let m = idx.multi(&mut self.kb);
                let mut om = vec![m.first().copied().unwrap_or_else(|| self.kb.lit_u32(0)); os.rank()];
                for (k, &d) in dimensions.iter().enumerate() {
                    om[d as usize] = m[k];
                }
                self.operand(f, instr, 0, &Index::from_multi(&os.dims, om))?
            }
            Op::Slice { dims } => {
                let os = self.operand_shape(f, instr, 0)?;
                let m = idx.multi(&mut self.kb);
                let om: Vec<H> = m
                    .iter()
                    .zip(dims)
                    .map(|(&i, s)| {
                        let t = self.kb.mul_c(i, s.stride as u32);
                        self.kb.add_c(t, s.start as u32)
                    })
                    .collect();
                self.operand(f, instr, 0, &Index::from_multi(&os.dims, om))?
            }
            Op::Reverse { dimensions } => {
                let os = self.operand_shape(f, instr, 0)?;
                let mut om = idx.multi(&mut self.kb);
                for &d in dimensions {
                    let d = d as usize;
                    let last = self.kb.lit_u32((os.dims[d] - 1) as u32);
                    om[d] = self.kb.sub_u(last, om[d]);
                }
                self.operand(f, instr, 0, &Index::from_multi(&os.dims, om))?
            }
            Op::Pad { dims } => self.pad(f, instr, dims, idx)?,
            Op::Concatenate { dimension } => self.concatenate(f, instr, *dimension as usize, idx)?,
            Op::DynamicSlice { sizes } => {
                let os = self.operand_shape(f, instr, 0)?;
                let m = idx.multi(&mut self.kb);
                let mut om = Vec::with_capacity(m.len());
                for k in 0..m.len() {
                    let start = self.clamped_start(f, instr, 1 + k, os.dims[k] - sizes[k])?;
                    om.push(self.kb.add_u(m[k], start));
                }
                self.operand(f, instr, 0, &Index::from_multi(&os.dims, om))?
            }
            Op::DynamicUpdateSlice => {
                let us = self.operand_shape(f, instr, 1)?;
                let m = idx.multi(&mut self.kb);
                let mut inside = self.kb.lit_bool(true);
                let mut um = Vec::with_capacity(m.len());
                for k in 0..m.len() {
                    let start = self.clamped_start(f, instr, 2 + k, shape.dims[k] - us.dims[k])?;
                    // (i - start) wraps to a huge u32 below the window, so one compare checks both ends.
                    let rel = self.kb.sub_u(m[k], start);
                    let n = self.kb.lit_u32(us.dims[k] as u32);
                    let lt = self.kb.binary(Bo::Less, rel, n);
                    inside =
                        if self.kb.const_int(n) == Some(0) { lt } else { self.kb.binary(Bo::LogicalAnd, inside, lt) };
                    let last = self.kb.lit_u32((us.dims[k] - 1).max(0) as u32);
                    um.push(self.kb.min_u(rel, last));
                }
                let base = self.operand(f, instr, 0, idx)?;
                let upd = self.operand(f, instr, 1, &Index::from_multi(&us.dims, um))?;
                Val { h: self.kb.select(inside, upd.h, base.h), dt }
            }
            Op::Gather { dims, slice_sizes, .. } => self.gather(f, instr, dims, slice_sizes, idx)?,
            Op::Reduce { .. } | Op::ReduceWindow { .. } => self.eval_multi(f, id, idx)?[0],
            Op::Dot { dims, .. } => self.dot(f, instr, dims, idx)?,
            Op::Convolution { window, dims, feature_group_count, batch_group_count, .. } => {
                self.convolution(f, instr, window, dims, *feature_group_count, *batch_group_count, idx)?
            }
            Op::SelectAndScatter { window, select, scatter } => {
                self.select_and_scatter(f, instr, window, *select, *scatter, idx)?
            }
            Op::Map { to_apply, .. } => {
                let mut args = Vec::new();
                for k in 0..instr.operands.len() {
                    args.push(self.operand(f, instr, k, idx)?);
                }
                self.apply(*to_apply, args)?[0]
            }
            _ => {
                return Err(self.unsupported(instr, "no elemental lowering for this op"));
            }
        };
        Ok(v)
    }

    /// The value of a constant at `idx`: a literal for scalars, a constant buffer otherwise.
    fn constant(&mut self, f: usize, id: InstrId, instr: &Instr, lit: &Literal, idx: &Index) -> Result<Val> {
        let shape = lit.array_shape().ok_or_else(|| self.unsupported(instr, "tuple constant"))?;
        let data = lit.array_data().ok_or_else(|| self.unsupported(instr, "tuple constant"))?;
        // One element, or one value everywhere (a folded broadcast of a scalar): a literal, no
        // buffer to bind (a kernel may bind only so many).
        if shape.num_elements() == 1 || is_splat(data) {
            return literal_element(&mut self.kb, data, shape.dtype, 0)
                .ok_or_else(|| self.unsupported(instr, "constant type"));
        }
        // An element the kernel knows at compile time (a gather's constant start indices): a
        // literal too, which also saves a load that llvmpipe does lane by lane in a branch.
        let lin = idx.linear(&mut self.kb);
        if let Some(k) = self.kb.const_int(lin).filter(|&k| k >= 0 && (k as u64) < shape.num_elements()) {
            if let Some(v) = literal_element(&mut self.kb, data, shape.dtype, k as usize) {
                return Ok(v);
            }
        }
        let comp = self.frames[f].comp;
        let g = self.bind_constant(comp, id, lit)?;
        Ok(self.load(g, lin, shape.dtype))
    }

    /// If `id` is a scalar constant, possibly broadcast or reshaped, its value as f64.
    pub(crate) fn scalar_constant(&self, f: usize, id: InstrId) -> Option<f64> {
        let comp = self.frames[f].comp;
        let instr = comp.instr(id);
        match &instr.op {
            Op::Constant(lit) => {
                let data = lit.array_data()?;
                if data.len() != 1 {
                    return None;
                }
                Some(match data {
                    ArrayData::F32(v) => v[0] as f64,
                    ArrayData::F64(v) => v[0],
                    ArrayData::F16(v) => v[0].to_f64(),
                    ArrayData::BF16(v) => v[0].to_f64(),
                    ArrayData::S32(v) => v[0] as f64,
                    _ => return None,
                })
            }
            Op::Broadcast { .. } | Op::Reshape | Op::Bitcast | Op::Copy => self.scalar_constant(f, instr.operands[0]),
            _ => None,
        }
    }

    /// A dynamic start index (operand `k`, a scalar) clamped to `[0, max_start]`, as u32.
    pub(crate) fn clamped_start(&mut self, f: usize, instr: &Instr, k: usize, max_start: i64) -> Result<H> {
        let v = self.operand(f, instr, k, &Index::scalar())?;
        Ok(self.clamp_index(v, max_start))
    }

    /// Clamps an integer value to `[0, max]` and returns it as u32.
    fn clamp_index(&mut self, v: Val, max: i64) -> H {
        let max = max.max(0);
        let kb = &mut self.kb;
        if v.dt.is_unsigned_integer() {
            let h = if v.dt.bit_width() == 64 {
                let m = kb.lit_u64(max as u64);
                let c = kb.math(Mf::Min, &[v.h, m]);
                kb.convert(c, STy::U32)
            } else {
                let m = kb.lit_u32(max as u32);
                kb.math(Mf::Min, &[v.h, m])
            };
            return h;
        }
        let (t, lo, hi) = if v.dt.bit_width() == 64 {
            (STy::I64, kb.lit_i64(0), kb.lit_i64(max))
        } else {
            (STy::I32, kb.lit_i32(0), kb.lit_i32(max as i32))
        };
        let _ = t;
        let mx = kb.math(Mf::Max, &[v.h, lo]);
        let c = kb.math(Mf::Min, &[mx, hi]);
        if v.dt.bit_width() == 64 {
            kb.convert(c, STy::U32)
        } else {
            kb.bitcast(c, STy::U32)
        }
    }

    fn pad(&mut self, f: usize, instr: &Instr, dims: &[hlo_ir::PadDim], idx: &Index) -> Result<Val> {
        let os = self.operand_shape(f, instr, 0)?;
        let m = idx.multi(&mut self.kb);
        let mut valid = self.kb.lit_bool(true);
        let mut om = Vec::with_capacity(m.len());
        for (k, p) in dims.iter().enumerate() {
            let n = os.dims[k];
            if p.low == 0 && p.interior == 0 {
                // Only high padding: in range iff i < n.
                let lt = self.kb.lt_c(m[k], n as u32);
                valid = and(&mut self.kb, valid, lt);
                let last = self.kb.lit_u32((n - 1).max(0) as u32);
                om.push(self.kb.min_u(m[k], last));
                continue;
            }
            let kb = &mut self.kb;
            let i = kb.bitcast(m[k], STy::I32);
            let low = kb.lit_i32(p.low as i32);
            let t = kb.binary(Bo::Subtract, i, low);
            let zero = kb.lit_i32(0);
            let ge = kb.binary(Bo::GreaterEqual, t, zero);
            valid = and(kb, valid, ge);
            let step = p.interior + 1;
            let q = if step > 1 {
                let s = kb.lit_i32(step as i32);
                let tz = kb.math(Mf::Max, &[t, zero]);
                let r = kb.binary(Bo::Modulo, tz, s);
                let on = kb.binary(Bo::Equal, r, zero);
                valid = and(kb, valid, on);
                kb.binary(Bo::Divide, tz, s)
            } else {
                t
            };
            let nn = kb.lit_i32(n as i32);
            let lt = kb.binary(Bo::Less, q, nn);
            valid = and(kb, valid, lt);
            let last = kb.lit_i32((n - 1).max(0) as i32);
            let qc = kb.math(Mf::Clamp, &[q, zero, last]);
            om.push(kb.bitcast(qc, STy::U32));
        }
        let x = self.operand(f, instr, 0, &Index::from_multi(&os.dims, om))?;
        let pv = self.operand(f, instr, 1, &Index::scalar())?;
        Ok(Val { h: self.kb.select(valid, x.h, pv.h), dt: x.dt })
    }

    fn concatenate(&mut self, f: usize, instr: &Instr, dim: usize, idx: &Index) -> Result<Val> {
        let m = idx.multi(&mut self.kb);
        let mut offset = 0i64;
        let mut result: Option<Val> = None;
        let mut pieces = Vec::new();
        for k in 0..instr.operands.len() {
            let os = self.operand_shape(f, instr, k)?;
            let n = os.dims[dim];
            if n == 0 {
                continue;
            }
            pieces.push((k, offset, n, os));
            offset += n;
        }
        // Evaluate back to front so that the select chain picks the first matching piece.
        for (k, off, n, os) in pieces.into_iter().rev() {
            let mut om = m.clone();
            let o = self.kb.lit_u32(off as u32);
            let rel = self.kb.sub_u(m[dim], o);
            let last = self.kb.lit_u32((n - 1) as u32);
            om[dim] = self.kb.min_u(rel, last);
            let v = self.operand(f, instr, k, &Index::from_multi(&os.dims, om))?;
            result = Some(match result {
                None => v,
                Some(prev) => {
                    let end = self.kb.lit_u32((off + n) as u32);
                    let inside = self.kb.binary(Bo::Less, m[dim], end);
                    Val { h: self.kb.select(inside, v.h, prev.h), dt: v.dt }
                }
            });
        }
        result.ok_or_else(|| self.unsupported(instr, "concatenate of empty operands"))
    }

    fn gather(
        &mut self,
        f: usize,
        instr: &Instr,
        dims: &hlo_ir::GatherDims,
        slice_sizes: &[i64],
        idx: &Index,
    ) -> Result<Val> {
        let os = self.operand_shape(f, instr, 0)?;
        let is = self.operand_shape(f, instr, 1)?;
        let m = idx.multi(&mut self.kb);
        let out_rank = m.len();
        // Batch dimensions of the output: those that are not offset dimensions, in order.
        let batch_out: Vec<usize> = (0..out_rank).filter(|d| !dims.offset_dims.contains(&(*d as i64))).collect();
        // Indices into start_indices: batch dims with index_vector_dim inserted.
        let ivd = dims.index_vector_dim as usize;
        let idx_rank = is.rank();
        let mut batch_iter = batch_out.iter();
        let mut g: Vec<Option<H>> = vec![None; idx_rank];
        for (d, slot) in g.iter_mut().enumerate() {
            if d == ivd {
                continue;
            }
            *slot = batch_iter.next().map(|&b| m[b]);
        }
        let zero = self.kb.lit_u32(0);
        let n_idx = dims.start_index_map.len();
        let mut start = vec![zero; os.rank()];
        for k in 0..n_idx {
            let mut gi: Vec<H> = g.iter().map(|h| h.unwrap_or(zero)).collect();
            if ivd < idx_rank {
                gi[ivd] = self.kb.lit_u32(k as u32);
            }
            let v = self.operand(f, instr, 1, &Index::from_multi(&is.dims, gi))?;
            let od = dims.start_index_map[k] as usize;
            start[od] = self.clamp_index(v, os.dims[od] - slice_sizes[od]);
        }
        // Operand batching dimensions take the matching start-indices batch coordinate.
        for (i, &obd) in dims.operand_batching_dims.iter().enumerate() {
            let sbd = dims.start_indices_batching_dims[i] as usize;
            start[obd as usize] = g[sbd].unwrap_or(zero);
        }
        // Offsets: operand dims that are neither collapsed nor batching, in order, take the offset dims.
        let mut offs = dims.offset_dims.iter();
        let mut om = Vec::with_capacity(os.rank());
        for d in 0..os.rank() {
            let dd = d as i64;
            if dims.collapsed_slice_dims.contains(&dd) || dims.operand_batching_dims.contains(&dd) {
                om.push(start[d]);
            } else {
                let o = offs.next().map(|&od| m[od as usize]).unwrap_or(zero);
                om.push(self.kb.add_u(start[d], o));
            }
        }
        self.operand(f, instr, 0, &Index::from_multi(&os.dims, om))
    }

    /// Evaluates a (possibly variadic) reduce or reduce-window at `idx`; one value per output.
    pub(crate) fn eval_multi(&mut self, f: usize, id: InstrId, idx: &Index) -> Result<Vec<Val>> {
        let comp = self.frames[f].comp;
        let instr = comp.instr(id);
        let key0: CacheKey = (f, id, vec![0], idx.key().clone());
        if let Some(&(_, b)) = self.cache.get(&key0) {
            if self.kb.is_open(b) {
                let n = instr.operands.len() / 2;
                return Ok((0..n).map(|k| self.cache[&(f, id, vec![k], idx.key().clone())].0).collect());
            }
        }
        for leaf in instr.shape.leaves() {
            self.check_type(instr, leaf.dtype)?;
        }
        let vals = match &instr.op {
            Op::Reduce { dimensions, to_apply } => self.reduce(f, instr, dimensions, *to_apply, idx)?,
            Op::ReduceWindow { window, to_apply } => self.reduce_window(f, instr, window, *to_apply, idx)?,
            _ => return Err(self.unsupported(instr, "not a reduction")),
        };
        for (k, v) in vals.iter().enumerate() {
            let name = if vals.len() > 1 { format!("{}_{k}", instr.name) } else { instr.name.clone() };
            self.kb.name(v.h, &name);
            self.cache.insert((f, id, vec![k], idx.key().clone()), (*v, self.kb.block_of(v.h)));
        }
        Ok(vals)
    }

    /// Applies computation `comp` to scalar arguments; returns its (tuple-flattened) results.
    pub(crate) fn apply(&mut self, comp: CompId, args: Vec<Val>) -> Result<Vec<Val>> {
        self.apply_leaves(comp, args, Leaf::Value)
    }

    /// [`Em::apply`] to arguments read from memory as they are ([`Leaf::Loaded`]).
    pub(crate) fn apply_loaded(&mut self, comp: CompId, args: Vec<Val>) -> Result<Vec<Val>> {
        self.apply_leaves(comp, args, Leaf::Loaded)
    }

    fn apply_leaves(&mut self, comp: CompId, args: Vec<Val>, leaf: fn(Val) -> Leaf) -> Result<Vec<Val>> {
        let c = self.m.comp(comp);
        let mut leaves = HashMap::new();
        for (k, &p) in c.params.iter().enumerate() {
            let a = *args.get(k).ok_or_else(|| CodegenError::Internal {
                kernel: self.kernel.clone(),
                naga_error: format!("computation `{}` called with too few arguments", c.name),
            })?;
            leaves.insert(p, leaf(a));
        }
        let f = self.frame(comp, leaves);
        let root = c.root_instr();
        let n = match &root.shape {
            Shape::Tuple(t) => t.len(),
            _ => 0,
        };
        if n == 0 {
            Ok(vec![self.eval(f, c.root, &[], &Index::scalar())?])
        } else {
            (0..n).map(|k| self.eval(f, c.root, &[k], &Index::scalar())).collect()
        }
    }

    fn reduce(
        &mut self,
        f: usize,
        instr: &Instr,
        dimensions: &[i64],
        to_apply: CompId,
        idx: &Index,
    ) -> Result<Vec<Val>> {
        let mut all = self.reduce_many(f, instr, dimensions, to_apply, std::slice::from_ref(idx))?;
        Ok(all.pop().expect("one index"))
    }

    /// A reduce at several output indices in one fold: each output folds its own elements in
    /// its own order, but values the indices share (a pairwise distance that every coordinate
    /// of a force divides by) are computed once per step. One result list per index.
    fn reduce_many(
        &mut self,
        f: usize,
        instr: &Instr,
        dimensions: &[i64],
        to_apply: CompId,
        idxs: &[Index],
    ) -> Result<Vec<Vec<Val>>> {
        let n = instr.operands.len() / 2;
        let ins = self.operand_shape(f, instr, 0)?;
        let mut inits = Vec::with_capacity(n * idxs.len());
        for _ in idxs {
            for k in 0..n {
                inits.push(self.operand(f, instr, n + k, &Index::scalar())?);
            }
        }
        let mut red: Vec<usize> = dimensions.iter().map(|&d| d as usize).collect();
        red.sort_unstable();
        let extents: Vec<u32> = red.iter().map(|&d| ins.dims[d] as u32).collect();
        let out_ms: Vec<Vec<H>> = idxs.iter().map(|idx| idx.multi(&mut self.kb)).collect();
        let in_dims = ins.dims.clone();
        let operands: Vec<InstrId> = instr.operands[..n].to_vec();
        let reads = crate::emit::reduce::ReducerReads::of(self.m, to_apply);
        let mut body = |em: &mut Em<'m>, point: &[H], accs: &[Val]| -> Result<Vec<Val>> {
            let mut next = Vec::with_capacity(accs.len());
            for (k, out_m) in out_ms.iter().enumerate() {
                let mut full = Vec::with_capacity(in_dims.len());
                let (mut o, mut r) = (0, 0);
                for d in 0..in_dims.len() {
                    if red.get(r) == Some(&d) {
                        full.push(point[r]);
                        r += 1;
                    } else {
                        full.push(out_m[o]);
                        o += 1;
                    }
                }
                let at = Index::from_multi(&in_dims, full);
                let mut args = accs[k * n..(k + 1) * n].to_vec();
                for &op in &operands {
                    let v = em.eval(f, op, &[], &at)?;
                    args.push(reads.arg(em, f, op, v));
                }
                next.extend(reads.apply(em, to_apply, args)?);
            }
            Ok(next)
        };
        let flat = self.fold(&extents, inits, &mut body)?;
        for (k, &v) in flat.iter().enumerate() {
            reads.mark_result(self, k % n, v);
        }
        Ok(flat.chunks(n).map(|c| c.to_vec()).collect())
    }

    /// Evaluates reduce `id` at every index of `idxs` in one fold ([`Em::reduce_many`]) and
    /// caches the results, so that evaluating the reduce at those indices afterwards (in this
    /// block) reads them.
    pub(crate) fn prefetch_reduce(&mut self, f: usize, id: InstrId, idxs: &[Index]) -> Result<()> {
        let comp = self.frames[f].comp;
        let instr = comp.instr(id);
        let Op::Reduce { dimensions, to_apply } = &instr.op else {
            return Err(self.unsupported(instr, "not a reduce"));
        };
        for leaf in instr.shape.leaves() {
            self.check_type(instr, leaf.dtype)?;
        }
        let all = self.reduce_many(f, instr, dimensions, *to_apply, idxs)?;
        for (idx, vals) in idxs.iter().zip(all) {
            for (k, v) in vals.into_iter().enumerate() {
                self.cache.insert((f, id, vec![k], idx.key().clone()), (v, self.kb.block_of(v.h)));
            }
        }
        Ok(())
    }

    fn reduce_window(
        &mut self,
        f: usize,
        instr: &Instr,
        window: &hlo_ir::Window,
        to_apply: CompId,
        idx: &Index,
    ) -> Result<Vec<Val>> {
        let n = instr.operands.len() / 2;
        let ins = self.operand_shape(f, instr, 0)?;
        let mut inits = Vec::with_capacity(n);
        for k in 0..n {
            inits.push(self.operand(f, instr, n + k, &Index::scalar())?);
        }
        let extents: Vec<u32> = window.dims.iter().map(|w| w.size as u32).collect();
        let out_m = idx.multi(&mut self.kb);
        let in_dims = ins.dims.clone();
        let wdims = window.dims.clone();
        let operands: Vec<InstrId> = instr.operands[..n].to_vec();
        let mut body = |em: &mut Em<'m>, point: &[H], accs: &[Val]| -> Result<Vec<Val>> {
            let mut valid = em.kb.lit_bool(true);
            let mut full = Vec::with_capacity(in_dims.len());
            for (d, w) in wdims.iter().enumerate() {
                let kb = &mut em.kb;
                // pos = out * stride + w * window_dilation - pad_low, in the base-dilated space.
                let o = kb.mul_c(out_m[d], w.stride as u32);
                let wp = kb.mul_c(point[d], w.window_dilation as u32);
                let pos_u = kb.add_u(o, wp);
                let trivial = w.padding_low == 0 && w.base_dilation == 1;
                if trivial {
                    let n = in_dims[d];
                    if (out_m.len() == in_dims.len()) && can_skip_bound(w, n) {
                        full.push(pos_u);
                        continue;
                    }
                    let lt = kb.lt_c(pos_u, n as u32);
                    valid = and(kb, valid, lt);
                    let last = kb.lit_u32((n - 1).max(0) as u32);
                    full.push(kb.min_u(pos_u, last));
                    continue;
                }
                let (index, ok) = window_input_index(kb, pos_u, w, in_dims[d], valid);
                valid = ok;
                full.push(index);
            }
            let at = Index::from_multi(&in_dims, full);
            let mut args = accs.to_vec();
            for &op in &operands {
                let v = em.eval(f, op, &[], &at)?;
                args.push(em.daz(f, op, v));
            }
            let new = em.apply(to_apply, args)?;
            Ok(new.iter().zip(accs).map(|(nv, av)| Val { h: em.kb.select(valid, nv.h, av.h), dt: av.dt }).collect())
        };
        self.fold(&extents, inits, &mut body)
    }

    fn dot(&mut self, f: usize, instr: &Instr, dims: &hlo_ir::DotDims, idx: &Index) -> Result<Val> {
        let out = instr.shape.as_array().ok_or_else(|| self.unsupported(instr, "tuple dot"))?;
        let ls = self.operand_shape(f, instr, 0)?;
        let rs = self.operand_shape(f, instr, 1)?;
        let acc_dt = if out.dtype.is_narrow_float() { DType::F32 } else { out.dtype };
        let m = idx.multi(&mut self.kb);
        let nb = dims.lhs_batch.len();
        let lhs_free: Vec<usize> = (0..ls.rank())
            .filter(|d| !dims.lhs_batch.contains(&(*d as i64)) && !dims.lhs_contracting.contains(&(*d as i64)))
            .collect();
        let rhs_free: Vec<usize> = (0..rs.rank())
            .filter(|d| !dims.rhs_batch.contains(&(*d as i64)) && !dims.rhs_contracting.contains(&(*d as i64)))
            .collect();
        let zero = self.kb.lit_u32(0);
        let mut lbase = vec![zero; ls.rank()];
        let mut rbase = vec![zero; rs.rank()];
        for (k, (&lb, &rb)) in dims.lhs_batch.iter().zip(&dims.rhs_batch).enumerate() {
            lbase[lb as usize] = m[k];
            rbase[rb as usize] = m[k];
        }
        for (k, &d) in lhs_free.iter().enumerate() {
            lbase[d] = m[nb + k];
        }
        for (k, &d) in rhs_free.iter().enumerate() {
            rbase[d] = m[nb + lhs_free.len() + k];
        }
        let extents: Vec<u32> = dims.lhs_contracting.iter().map(|&d| ls.dims[d as usize] as u32).collect();
        let init = if acc_dt.is_float() {
            let t = ops::value_sty(acc_dt).expect("checked");
            Val { h: self.kb.lit_float(t, 0.0), dt: acc_dt }
        } else if acc_dt == DType::Pred {
            Val { h: self.kb.lit_bool(false), dt: acc_dt }
        } else {
            let t = ops::value_sty(acc_dt).expect("checked");
            Val { h: self.kb.lit_int(t, 0), dt: acc_dt }
        };
        let (lhs, rhs) = (instr.operands[0], instr.operands[1]);
        let (ldims, rdims) = (ls.dims.clone(), rs.dims.clone());
        let (lc, rc) = (dims.lhs_contracting.clone(), dims.rhs_contracting.clone());
        let mut body = |em: &mut Em<'m>, point: &[H], accs: &[Val]| -> Result<Vec<Val>> {
            let mut li = lbase.clone();
            let mut ri = rbase.clone();
            for (k, (&l, &r)) in lc.iter().zip(&rc).enumerate() {
                li[l as usize] = point[k];
                ri[r as usize] = point[k];
            }
            let a = em.eval(f, lhs, &[], &Index::from_multi(&ldims, li))?;
            let a = em.daz(f, lhs, a);
            let b = em.eval(f, rhs, &[], &Index::from_multi(&rdims, ri))?;
            let b = em.daz(f, rhs, b);
            let a = Val { h: ops::convert(&mut em.kb, a, acc_dt), dt: acc_dt };
            let b = Val { h: ops::convert(&mut em.kb, b, acc_dt), dt: acc_dt };
            let kb = &mut em.kb;
            let h = if acc_dt == DType::Pred {
                let p = kb.binary(Bo::LogicalAnd, a.h, b.h);
                kb.binary(Bo::LogicalOr, accs[0].h, p)
            } else {
                let p = kb.binary(Bo::Multiply, a.h, b.h);
                let s = kb.binary(Bo::Add, accs[0].h, p);
                ops::normalize(kb, s, acc_dt)
            };
            Ok(vec![Val { h, dt: acc_dt }])
        };
        let r = self.fold(&extents, vec![init], &mut body)?[0];
        Ok(Val { h: ops::convert(&mut self.kb, r, out.dtype), dt: out.dtype })
    }

    /// A convolution element: a dot over input features and the window, reading the (padded,
    /// base-dilated) input where the window lands and skipping positions that fall outside.
    #[allow(clippy::too_many_arguments)]
    fn convolution(
        &mut self,
        f: usize,
        instr: &Instr,
        window: &hlo_ir::Window,
        dims: &hlo_ir::ConvDims,
        feature_groups: i64,
        batch_groups: i64,
        idx: &Index,
    ) -> Result<Val> {
        let out = instr.shape.as_array().ok_or_else(|| self.unsupported(instr, "tuple convolution"))?;
        let ls = self.operand_shape(f, instr, 0)?.clone();
        let rs = self.operand_shape(f, instr, 1)?.clone();
        let acc_dt = if out.dtype.is_narrow_float() { DType::F32 } else { out.dtype };
        if !acc_dt.is_float() && !acc_dt.is_integer() {
            return Err(self.unsupported(instr, format!("convolution on {}", out.dtype)));
        }
        let m = idx.multi(&mut self.kb);
        let n_sp = dims.input_spatial.len();
        let out_feat = out.dims[dims.output_feature as usize];
        let in_feat_per_group = rs.dims[dims.kernel_input_feature as usize];
        let out_per_fgroup = (out_feat / feature_groups.max(1)).max(1) as u32;
        let out_per_bgroup = (out_feat / batch_groups.max(1)).max(1) as u32;
        let out_batch = out.dims[dims.output_batch as usize] as u32;
        let o = m[dims.output_feature as usize];
        let b = m[dims.output_batch as usize];
        // Input feature base: group g = o / (out features per group) reads features g*C..g*C+C.
        let feat_base = if feature_groups > 1 {
            let g = self.kb.div_c(o, out_per_fgroup);
            self.kb.mul_c(g, in_feat_per_group as u32)
        } else {
            self.kb.lit_u32(0)
        };
        // Batch groups: output feature o reads input batch (o / per-group) * out_batch + b.
        let batch = if batch_groups > 1 {
            let g = self.kb.div_c(o, out_per_bgroup);
            let gb = self.kb.mul_c(g, out_batch);
            self.kb.add_u(gb, b)
        } else {
            b
        };
        let mut extents = vec![in_feat_per_group as u32];
        extents.extend(dims.kernel_spatial.iter().map(|&d| rs.dims[d as usize] as u32));
        let zero = self.kb.lit_f32(0.0);
        let t = ops::value_sty(acc_dt).ok_or_else(|| self.unsupported(instr, "type"))?;
        let init =
            Val { h: if acc_dt.is_float() { self.kb.lit_float(t, 0.0) } else { self.kb.lit_int(t, 0) }, dt: acc_dt };
        let _ = zero;
        let (lhs, rhs) = (instr.operands[0], instr.operands[1]);
        let dims = dims.clone();
        let wdims = window.dims.clone();
        let mut body = |em: &mut Em<'m>, point: &[H], accs: &[Val]| -> Result<Vec<Val>> {
            let kb = &mut em.kb;
            let mut valid = kb.lit_bool(true);
            let zero_u = kb.lit_u32(0);
            let mut li = vec![zero_u; ls.rank()];
            let mut ri = vec![zero_u; rs.rank()];
            li[dims.input_batch as usize] = batch;
            li[dims.input_feature as usize] = kb.add_u(feat_base, point[0]);
            ri[dims.kernel_input_feature as usize] = point[0];
            ri[dims.kernel_output_feature as usize] = o;
            for s in 0..n_sp {
                let w = &wdims[s];
                let k = point[1 + s];
                let ksize = rs.dims[dims.kernel_spatial[s] as usize];
                ri[dims.kernel_spatial[s] as usize] = k;
                // The kernel tap used at window position k (reversed windows read it backwards).
                let kw = if w.window_reversal {
                    let last = kb.lit_u32((ksize - 1) as u32);
                    kb.sub_u(last, k)
                } else {
                    k
                };
                let y = m[dims.output_spatial[s] as usize];
                let ys = kb.mul_c(y, w.stride as u32);
                let kd = kb.mul_c(kw, w.window_dilation as u32);
                let pos_u = kb.add_u(ys, kd);
                let n = ls.dims[dims.input_spatial[s] as usize];
                let (index, ok) = window_input_index(kb, pos_u, w, n, valid);
                valid = ok;
                li[dims.input_spatial[s] as usize] = index;
            }
            let a = em.eval(f, lhs, &[], &Index::from_multi(&ls.dims, li))?;
            let a = em.daz(f, lhs, a);
            let bv = em.eval(f, rhs, &[], &Index::from_multi(&rs.dims, ri))?;
            let bv = em.daz(f, rhs, bv);
            let a = ops::convert(&mut em.kb, a, acc_dt);
            let bv = ops::convert(&mut em.kb, bv, acc_dt);
            let kb = &mut em.kb;
            let p = kb.binary(Bo::Multiply, a, bv);
            let s = kb.binary(Bo::Add, accs[0].h, p);
            let s = ops::normalize(kb, s, acc_dt);
            Ok(vec![Val { h: kb.select(valid, s, accs[0].h), dt: acc_dt }])
        };
        let r = self.fold(&extents, vec![init], &mut body)?[0];
        Ok(Val { h: ops::convert(&mut self.kb, r, out.dtype), dt: out.dtype })
    }

    /// A select-and-scatter element: the scatter-combination of the source values of every window
    /// that contains this position and selects it.
    fn select_and_scatter(
        &mut self,
        f: usize,
        instr: &Instr,
        window: &hlo_ir::Window,
        select: CompId,
        scatter: CompId,
        idx: &Index,
    ) -> Result<Val> {
        let os = self.operand_shape(f, instr, 0)?.clone();
        let ss = self.operand_shape(f, instr, 1)?.clone();
        let dt = os.dtype;
        let init = self.operand(f, instr, 2, &Index::scalar())?;
        let x = idx.multi(&mut self.kb);
        let rank = os.rank();
        let wd = window.dims.clone();
        if wd.iter().any(|w| w.base_dilation != 1 || w.window_dilation != 1) {
            return Err(self.unsupported(instr, "dilated select-and-scatter windows"));
        }
        // Per dimension, at most ceil(size / stride) windows contain a position.
        let cand: Vec<u32> = wd.iter().map(|w| ((w.size + w.stride - 1) / w.stride) as u32).collect();
        let (operand, source) = (instr.operands[0], instr.operands[1]);
        let mut outer = |em: &mut Em<'m>, cpoint: &[H], accs: &[Val]| -> Result<Vec<Val>> {
            // Window w_d = floor((x_d + pad_lo) / stride) - c_d; valid if 0 <= w_d < n_windows
            // and x_d lies inside it.
            let mut valid = em.kb.lit_bool(true);
            let mut wstart = Vec::with_capacity(rank);
            let mut widx = Vec::with_capacity(rank);
            for d in 0..rank {
                let w = &wd[d];
                let kb = &mut em.kb;
                let xi = kb.bitcast(x[d], STy::I32);
                let lo = kb.lit_i32(w.padding_low as i32);
                let xp = kb.binary(Bo::Add, xi, lo);
                let st = kb.lit_i32(w.stride as i32);
                let q = kb.binary(Bo::Divide, xp, st);
                let c = kb.bitcast(cpoint[d], STy::I32);
                let wi = kb.binary(Bo::Subtract, q, c);
                let zero = kb.lit_i32(0);
                let nwin = kb.lit_i32(ss.dims[d] as i32);
                let ge = kb.binary(Bo::GreaterEqual, wi, zero);
                let lt = kb.binary(Bo::Less, wi, nwin);
                valid = and(kb, valid, ge);
                valid = and(kb, valid, lt);
                // start = w * stride - pad_lo; x must be < start + size (x >= start holds by construction).
                let ws = kb.binary(Bo::Multiply, wi, st);
                let ws = kb.binary(Bo::Subtract, ws, lo);
                let size = kb.lit_i32(w.size as i32);
                let end = kb.binary(Bo::Add, ws, size);
                let inside = kb.binary(Bo::Less, xi, end);
                valid = and(kb, valid, inside);
                let last = kb.lit_i32((ss.dims[d] - 1).max(0) as i32);
                let wc = kb.math(Mf::Clamp, &[wi, zero, last]);
                widx.push(kb.bitcast(wc, STy::U32));
                wstart.push(ws);
            }
            // Select over the window: the first in-bounds element, replaced by each later one the
            // select computation does not keep the current one over.
            let sizes: Vec<u32> = wd.iter().map(|w| w.size as u32).collect();
            let big = em.kb.lit_i32(i32::MAX);
            let first = em.kb.lit_bool(false);
            let vinit = Val { h: ops::convert(&mut em.kb, init, dt), dt };
            let init_sel = vec![Val { h: first, dt: DType::Pred }, vinit, Val { h: big, dt: DType::S32 }];
            let os_dims = os.dims.clone();
            let wstart_c = wstart.clone();
            let mut inner = |em: &mut Em<'m>, p: &[H], st: &[Val]| -> Result<Vec<Val>> {
                let mut inb = em.kb.lit_bool(true);
                let mut pos = Vec::with_capacity(rank);
                let mut lin = em.kb.lit_i32(0);
                for d in 0..rank {
                    let kb = &mut em.kb;
                    let pi = kb.bitcast(p[d], STy::I32);
                    let e = kb.binary(Bo::Add, wstart_c[d], pi);
                    let zero = kb.lit_i32(0);
                    let n = kb.lit_i32(os_dims[d] as i32);
                    let ge = kb.binary(Bo::GreaterEqual, e, zero);
                    let lt = kb.binary(Bo::Less, e, n);
                    inb = and(kb, inb, ge);
                    inb = and(kb, inb, lt);
                    let last = kb.lit_i32((os_dims[d] - 1).max(0) as i32);
                    let ec = kb.math(Mf::Clamp, &[e, zero, last]);
                    let stride = kb.lit_i32(strides(&os_dims)[d] as i32);
                    let t = kb.binary(Bo::Multiply, ec, stride);
                    lin = kb.binary(Bo::Add, lin, t);
                    pos.push(kb.bitcast(ec, STy::U32));
                }
                let v = em.eval(f, operand, &[], &Index::from_multi(&os_dims, pos))?;
                let keep = em.apply(select, vec![Val { h: st[1].h, dt }, v])?[0];
                let kb = &mut em.kb;
                let not_keep = kb.unary(naga::UnaryOperator::LogicalNot, keep.h);
                let none_yet = kb_not(kb, st[0].h);
                let take = kb.binary(Bo::LogicalOr, none_yet, not_keep);
                let take = kb.binary(Bo::LogicalAnd, inb, take);
                let have = kb.binary(Bo::LogicalOr, st[0].h, inb);
                Ok(vec![
                    Val { h: have, dt: DType::Pred },
                    Val { h: kb.select(take, v.h, st[1].h), dt },
                    Val { h: kb.select(take, lin, st[2].h), dt: DType::S32 },
                ])
            };
            let sel = em.fold(&sizes, init_sel, &mut inner)?;
            // This position's linear index.
            let mut xlin = em.kb.lit_i32(0);
            for d in 0..rank {
                let kb = &mut em.kb;
                let xi = kb.bitcast(x[d], STy::I32);
                let stride = kb.lit_i32(strides(&os.dims)[d] as i32);
                let t = kb.binary(Bo::Multiply, xi, stride);
                xlin = kb.binary(Bo::Add, xlin, t);
            }
            let chosen = em.kb.binary(Bo::Equal, sel[2].h, xlin);
            let hit = and(&mut em.kb, valid, chosen);
            let sv = em.eval(f, source, &[], &Index::from_multi(&ss.dims, widx))?;
            let new = em.apply(scatter, vec![accs[0], sv])?[0];
            Ok(vec![Val { h: em.kb.select(hit, new.h, accs[0].h), dt }])
        };
        let acc0 = Val { h: ops::convert(&mut self.kb, init, dt), dt };
        Ok(self.fold(&cand, vec![acc0], &mut outer)?[0])
    }

    /// Folds `body` over every point of `extents` (row-major), threading accumulators.
    /// Few points are unrolled into straight-line code; otherwise nested loops with local accumulators.
    pub(crate) fn fold(&mut self, extents: &[u32], init: Vec<Val>, body: &mut FoldBody<'_, 'm>) -> Result<Vec<Val>> {
        let total: u64 = extents.iter().map(|&e| e as u64).product();
        if total == 0 {
            return Ok(init);
        }
        if total <= UNROLL_LIMIT && self.unrolled_copies * total <= MAX_UNROLLED_COPIES {
            let outer = self.unrolled_copies;
            self.unrolled_copies *= total;
            let result = self.unrolled_fold(extents, total, init, body);
            self.unrolled_copies = outer;
            return result;
        }
        let locals: Vec<(H, DType)> = init
            .iter()
            .enumerate()
            .map(|(k, v)| {
                let t = ops::value_sty(v.dt).expect("checked");
                (self.kb.local_init(&format!("acc{k}"), t, v.h), v.dt)
            })
            .collect();
        let mut point = vec![self.kb.lit_u32(0); extents.len()];
        self.loops(extents, 0, &mut point, &locals, body)?;
        Ok(locals.iter().map(|&(p, dt)| Val { h: self.kb.load(p), dt }).collect())
    }

    /// [`Em::fold`] as straight-line code, one copy of `body` per point.
    fn unrolled_fold(
        &mut self,
        extents: &[u32],
        total: u64,
        init: Vec<Val>,
        body: &mut FoldBody<'_, 'm>,
    ) -> Result<Vec<Val>> {
        let mut accs = init;
        for p in 0..total {
            let mut point = Vec::with_capacity(extents.len());
            let mut rem = p;
            for (k, &e) in extents.iter().enumerate().rev() {
                let _ = k;
                point.push((rem % e as u64) as u32);
                rem /= e as u64;
            }
            point.reverse();
            let point: Vec<H> = point.into_iter().map(|v| self.kb.lit_u32(v)).collect();
            accs = body(self, &point, &accs)?;
        }
        Ok(accs)
    }

    fn loops(
        &mut self,
        extents: &[u32],
        d: usize,
        point: &mut [H],
        locals: &[(H, DType)],
        body: &mut FoldBody<'_, 'm>,
    ) -> Result<()> {
        if d == extents.len() {
            let accs: Vec<Val> = locals.iter().map(|&(p, dt)| Val { h: self.kb.load(p), dt }).collect();
            let new = body(self, point, &accs)?;
            for (&(p, _), v) in locals.iter().zip(new) {
                self.kb.store(p, v.h);
            }
            return Ok(());
        }
        if extents[d] == 1 {
            point[d] = self.kb.lit_u32(0);
            return self.loops(extents, d + 1, point, locals, body);
        }
        let innermost = extents[d + 1..].iter().all(|&e| e == 1);
        if let Some(lanes) = self.target.staging_lanes() {
            // A staged chunk is `lanes` copies of the body (and a remainder loop): it counts as unrolling.
            let copies = self.unrolled_copies * (lanes as u64 + 1);
            if innermost
                && self.stage.is_none()
                && extents[d] >= lanes
                && self.kb.subgroup_uniform()
                && copies <= MAX_STAGED_COPIES
            {
                let outer = self.unrolled_copies;
                self.unrolled_copies = copies;
                let result = self.staged_loop(extents, d, lanes, point, locals, body);
                self.unrolled_copies = outer;
                return result;
            }
        }
        let zero = self.kb.lit_u32(0);
        let counter = self.kb.uniform_local_init(&format!("i{d}"), STy::U32, zero);
        self.kb.begin_uniform_loop_body();
        point[d] = self.kb.load(counter);
        self.enter_loop(Some(extents[d] as u64));
        let inner = self.loops(extents, d + 1, point, locals, body);
        self.exit_loop();
        inner?;
        let body_block = self.kb.end_block();
        self.kb.begin_block();
        let c = self.kb.load(counter);
        let next = self.kb.add_c(c, 1);
        self.kb.store(counter, next);
        let n = self.kb.lit_u32(extents[d]);
        let done = self.kb.binary(Bo::GreaterEqual, next, n);
        let continuing = self.kb.end_block();
        self.kb.stmt(naga::Statement::Loop { body: body_block, continuing, break_if: Some(done) });
        Ok(())
    }
}

impl<'m> Em<'m> {
    /// The innermost reduction loop, run in chunks of one iteration per subgroup lane: each lane
    /// loads the elements of "its" iteration once, and the unrolled chunk reads them with
    /// subgroup broadcasts. On lavapipe every load costs a per-lane loop, so this divides the
    /// loads of an all-pairs reduction (n-body) by the subgroup size.
    fn staged_loop(
        &mut self,
        extents: &[u32],
        d: usize,
        lanes: u32,
        point: &mut [H],
        locals: &[(H, DType)],
        body: &mut FoldBody<'_, 'm>,
    ) -> Result<()> {
        let n = extents[d];
        let full = n / lanes * lanes;
        let zero = self.kb.lit_u32(0);
        let counter = self.kb.uniform_local_init(&format!("c{d}"), STy::U32, zero);
        self.kb.begin_uniform_loop_body();
        let r0 = self.kb.load(counter);
        let lane = self.kb.builtin(naga::BuiltIn::SubgroupInvocationId);
        let r_lane = self.kb.add_u(r0, lane);
        self.enter_loop(Some((full / lanes) as u64));
        let mut accs: Vec<Val> = locals.iter().map(|&(p, dt)| Val { h: self.kb.load(p), dt }).collect();
        for t in 0..lanes {
            let r_t = self.kb.add_c(r0, t);
            point[d] = r_t;
            self.stage = Some(Stage { r_t, r_lane, t });
            let res = body(self, point, &accs);
            self.stage = None;
            accs = match res {
                Ok(a) => a,
                Err(e) => {
                    self.exit_loop();
                    return Err(e);
                }
            };
        }
        self.exit_loop();
        for (&(p, _), v) in locals.iter().zip(&accs) {
            self.kb.store(p, v.h);
        }
        let body_block = self.kb.end_block();
        self.kb.begin_block();
        let c = self.kb.load(counter);
        let next = self.kb.add_c(c, lanes);
        self.kb.store(counter, next);
        let done = self.kb.lt_c(next, full);
        let done = self.kb.unary(naga::UnaryOperator::LogicalNot, done);
        let continuing = self.kb.end_block();
        self.kb.stmt(naga::Statement::Loop { body: body_block, continuing, break_if: Some(done) });
        // The remaining iterations, unrolled, without staging.
        if full < n {
            let mut accs: Vec<Val> = locals.iter().map(|&(p, dt)| Val { h: self.kb.load(p), dt }).collect();
            for r in full..n {
                point[d] = self.kb.lit_u32(r);
                accs = body(self, point, &accs)?;
            }
            for (&(p, _), v) in locals.iter().zip(&accs) {
                self.kb.store(p, v.h);
            }
        }
        Ok(())
    }

    /// A load inside a staged loop iteration, if its index depends on the loop only through
    /// subgroup-uniform values (plus varying components of at most 4 values, loaded for each
    /// value and selected); `None` to load normally.
    fn staged_load(
        &mut self,
        st: Stage,
        buf: BufferId,
        buffer_dims: &[i64],
        dtype: DType,
        idx: &Index,
    ) -> Result<Option<Val>> {
        let sty = match ops::storage_sty(dtype) {
            Some(t) if t.bits() == 32 => t,
            _ => return Ok(None),
        };
        // Buffers bound as windows are read through `Em::load` only.
        if self.needs_windows(buffer_dims.iter().product::<i64>().max(0) as u64, sty.scalar()) {
            return Ok(None);
        }
        // The index is over the value's own shape, which may be a bitcast or reshape of the
        // buffer's (aliased, same row-major order): only the linear offset is shared, so all
        // multi-dimensional reasoning below uses the index's dimensions, never the buffer's.
        debug_assert_eq!(idx.dims.iter().product::<i64>(), buffer_dims.iter().product::<i64>());
        let dims = idx.dims.clone();
        let dims = &dims[..];
        let m = idx.multi(&mut self.kb);
        let mut uses_r = false;
        let mut choices: Vec<(usize, i64)> = Vec::new();
        for (k, &h) in m.iter().enumerate() {
            let dep = self.kb.depends_on(h, st.r_t);
            if self.kb.varying(h) {
                if dep || dims[k] > 4 {
                    return Ok(None);
                }
                choices.push((k, dims[k]));
            } else if dep {
                uses_r = true;
            }
        }
        let combos: i64 = choices.iter().map(|c| c.1).product();
        if !uses_r || combos > 4 {
            return Ok(None);
        }
        // Each lane reads a different element: through the texture path where that gathers faster.
        let elems = buffer_dims.iter().product::<i64>().max(0) as u64;
        let texels = if dtype == DType::F32 { self.bind_texels(buf, elems) } else { None };
        let g = match texels {
            Some(_) => None,
            None => Some(self.bind_buffer(buf, dtype, false, false)?),
        };
        // f32 values also get a flushed copy (flushed once per lane, not at every use).
        let flush = dtype == DType::F32;
        let mut result: Option<(H, H)> = None;
        for c in 0..combos {
            let mut mm = m.clone();
            let mut cond: Option<H> = None;
            let mut rem = c;
            for &(k, ext) in choices.iter().rev() {
                let v = (rem % ext) as u32;
                rem /= ext;
                mm[k] = self.kb.lit_u32(v);
                let lit = self.kb.lit_u32(v);
                let eq = self.kb.binary(Bo::Equal, m[k], lit);
                cond = Some(match cond {
                    None => eq,
                    Some(p) => self.kb.binary(Bo::LogicalAnd, p, eq),
                });
            }
            let lin = linearize(&mut self.kb, dims, &mm);
            let Some(lin_lane) = self.kb.substitute(lin, st.r_t, st.r_lane) else { return Ok(None) };
            let (raw, flushed) = match self.prefetched.get(&(buf, lin_lane)) {
                Some(&(h, b)) if self.kb.is_open(b) => (h, self.prefetched_flushed[&(buf, lin_lane)]),
                _ => {
                    let h = match (texels, g) {
                        (Some(t), _) => self.fetch_element(t, lin_lane),
                        (None, Some(g)) => {
                            let base = self.kb.global(g);
                            let p = self.kb.access(base, lin_lane);
                            self.kb.load(p)
                        }
                        (None, None) => unreachable!("bound one way or the other"),
                    };
                    let fl = if flush { ops::flush_subnormal(&mut self.kb, h, dtype) } else { h };
                    self.prefetched.insert((buf, lin_lane), (h, self.kb.block_of(h)));
                    self.prefetched_flushed.insert((buf, lin_lane), fl);
                    (h, fl)
                }
            };
            let bcast = |em: &mut Em, v: H, tag: u32| -> H {
                let key = (buf, v, st.t * 2 + tag);
                match em.broadcasts.get(&key) {
                    Some(&(h, blk)) if em.kb.is_open(blk) => h,
                    _ => {
                        let h = em.kb.subgroup_broadcast(v, st.t, sty);
                        em.broadcasts.insert(key, (h, em.kb.block_of(h)));
                        h
                    }
                }
            };
            let b = bcast(self, raw, 0);
            let bf = if flush { bcast(self, flushed, 1) } else { b };
            result = Some(match (result, cond) {
                (Some((prev, prevf)), Some(cond)) => (self.kb.select(cond, b, prev), self.kb.select(cond, bf, prevf)),
                _ => (b, bf),
            });
        }
        let (raw, flushed) = result.expect("at least one combination");
        let h = ops::from_storage(&mut self.kb, raw, dtype);
        if flush {
            self.daz_cache.insert(h, (flushed, self.kb.block_of(flushed)));
        }
        Ok(Some(Val { h, dt: dtype }))
    }
}

/// For a reshape from `out` to `inp` dims: the dimension groups `(out range, in range)` whose
/// element counts match, or `None` if some dimension is 0.
fn reshape_groups(out: &[i64], inp: &[i64]) -> Option<Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>> {
    if out.contains(&0) || inp.contains(&0) {
        return None;
    }
    let mut groups = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < out.len() || j < inp.len() {
        let (i0, j0) = (i, j);
        let (mut po, mut pi) = (1i64, 1i64);
        if i < out.len() {
            po *= out[i];
            i += 1;
        }
        if j < inp.len() {
            pi *= inp[j];
            j += 1;
        }
        while po != pi {
            if po < pi {
                if i >= out.len() {
                    return None;
                }
                po *= out[i];
                i += 1;
            } else {
                if j >= inp.len() {
                    return None;
                }
                pi *= inp[j];
                j += 1;
            }
        }
        groups.push((i0..i, j0..j));
    }
    Some(groups)
}

/// The operand multi-index of a reshape, group by group.
fn reshape_multi(
    kb: &mut Kb,
    out: &[i64],
    inp: &[i64],
    groups: &[(std::ops::Range<usize>, std::ops::Range<usize>)],
    m: &[H],
) -> Vec<H> {
    let mut om = Vec::with_capacity(inp.len());
    for (go, gi) in groups {
        let od: Vec<i64> = out[go.clone()].to_vec();
        let id: Vec<i64> = inp[gi.clone()].to_vec();
        let nontriv_o: Vec<usize> = (0..od.len()).filter(|&k| od[k] != 1).collect();
        let nontriv_i: Vec<usize> = (0..id.len()).filter(|&k| id[k] != 1).collect();
        if nontriv_o.len() == 1 && nontriv_i.len() == 1 {
            // Same dimension, padded with unit dimensions.
            for k in 0..id.len() {
                om.push(if id[k] == 1 { kb.lit_u32(0) } else { m[go.start + nontriv_o[0]] });
            }
            continue;
        }
        let lin = linearize(kb, &od, &m[go.clone()]);
        om.extend(delinearize(kb, &id, lin));
    }
    om
}

fn kb_not(kb: &mut Kb, a: H) -> H {
    kb.unary(naga::UnaryOperator::LogicalNot, a)
}

/// Maps a position in the padded, base-dilated input of a window op (reduce-window, convolution)
/// to an index into the real input of `extent` elements. Returns the index, clamped so that the
/// read is always in bounds, and `valid` and-ed with whether the position hits a real element
/// rather than padding or a dilation hole.
pub(crate) fn window_input_index(kb: &mut Kb, pos_u: H, w: &hlo_ir::WindowDim, extent: i64, valid: H) -> (H, H) {
    let pos_i = kb.bitcast(pos_u, STy::I32);
    let low = kb.lit_i32(w.padding_low as i32);
    let mut pos = kb.binary(Bo::Subtract, pos_i, low);
    let zero = kb.lit_i32(0);
    let ge = kb.binary(Bo::GreaterEqual, pos, zero);
    let mut valid = and(kb, valid, ge);
    if w.base_dilation > 1 {
        let bd = kb.lit_i32(w.base_dilation as i32);
        let pz = kb.math(Mf::Max, &[pos, zero]);
        let r = kb.binary(Bo::Modulo, pz, bd);
        let on = kb.binary(Bo::Equal, r, zero);
        valid = and(kb, valid, on);
        pos = kb.binary(Bo::Divide, pz, bd);
    }
    let nn = kb.lit_i32(extent as i32);
    let lt = kb.binary(Bo::Less, pos, nn);
    let valid = and(kb, valid, lt);
    let last = kb.lit_i32((extent - 1).max(0) as i32);
    let c = kb.math(Mf::Clamp, &[pos, zero, last]);
    (kb.bitcast(c, STy::U32), valid)
}

fn and(kb: &mut Kb, a: H, b: H) -> H {
    match kb.func.expressions[a] {
        naga::Expression::Literal(naga::Literal::Bool(true)) => b,
        _ => kb.binary(Bo::LogicalAnd, a, b),
    }
}

/// True when a window dimension never reads past the end of the input (valid windows only).
fn can_skip_bound(w: &hlo_ir::WindowDim, n: i64) -> bool {
    w.padding_high <= 0 && w.padding_low == 0 && w.base_dilation == 1 && n > 0
}

/// The offset of a logical multi-index in the physical (layout-ordered) storage of `shape`.
fn physical_offset(kb: &mut Kb, shape: &ArrayShape, m: &[H]) -> H {
    let m2m = shape.minor_to_major();
    let mut stride = 1u32;
    let mut acc = kb.lit_u32(0);
    for &d in &m2m {
        let d = d as usize;
        let t = kb.mul_c(m[d], stride);
        acc = kb.add_u(acc, t);
        stride *= shape.dims[d].max(1) as u32;
    }
    acc
}

/// The logical multi-index of physical offset `off` in `shape`'s layout.
fn from_physical_offset(kb: &mut Kb, shape: &ArrayShape, off: H) -> Vec<H> {
    let m2m = shape.minor_to_major();
    let mut out = vec![kb.lit_u32(0); shape.rank()];
    let mut stride = 1u32;
    let n = m2m.len();
    for (k, &d) in m2m.iter().enumerate() {
        let d = d as usize;
        let q = kb.div_c(off, stride);
        out[d] = if k + 1 == n { q } else { kb.rem_c(q, shape.dims[d].max(1) as u32) };
        stride *= shape.dims[d].max(1) as u32;
    }
    out
}

/// Element `i` of literal data as a shader constant of its value type.
/// Whether every element of a non-empty array has the same bits.
fn is_splat(data: &ArrayData) -> bool {
    fn all_same<T: PartialEq>(v: &[T]) -> bool {
        v.first().is_some_and(|first| v.iter().all(|x| x == first))
    }
    match data {
        ArrayData::Pred(v) => all_same(v),
        ArrayData::S8(v) => all_same(v),
        ArrayData::S16(v) => all_same(v),
        ArrayData::S32(v) => all_same(v),
        ArrayData::S64(v) => all_same(v),
        ArrayData::U8(v) | ArrayData::Bits(v) => all_same(v),
        ArrayData::U16(v) => all_same(v),
        ArrayData::U32(v) => all_same(v),
        ArrayData::U64(v) => all_same(v),
        ArrayData::F16(v) => all_same(&v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()),
        ArrayData::BF16(v) => all_same(&v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()),
        ArrayData::F32(v) => all_same(&v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()),
        ArrayData::F64(v) => all_same(&v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()),
        ArrayData::C64(_) | ArrayData::C128(_) => false,
    }
}

pub(crate) fn literal_element(kb: &mut Kb, data: &ArrayData, dtype: DType, i: usize) -> Option<Val> {
    let h = match data {
        ArrayData::Pred(v) => kb.lit_bool(v[i]),
        ArrayData::S8(v) => kb.lit_i32(v[i] as i32),
        ArrayData::S16(v) => kb.lit_i32(v[i] as i32),
        ArrayData::S32(v) => kb.lit_i32(v[i]),
        ArrayData::S64(v) => kb.lit_i64(v[i]),
        ArrayData::U8(v) => kb.lit_u32(v[i] as u32),
        ArrayData::U16(v) => kb.lit_u32(v[i] as u32),
        ArrayData::U32(v) => kb.lit_u32(v[i]),
        ArrayData::U64(v) => kb.lit_u64(v[i]),
        ArrayData::F16(v) => kb.lit_f32(v[i].to_f32()),
        ArrayData::BF16(v) => kb.lit_f32(v[i].to_f32()),
        ArrayData::F32(v) => kb.lit_f32(v[i]),
        ArrayData::F64(v) => kb.lit_f64(v[i]),
        // An 8- or 4-bit float is the f32 of its value on the device.
        ArrayData::Bits(v) => kb.lit_f32(crate::minifloat::MiniFloat::of(dtype)?.decode(v[i])),
        _ => return None,
    };
    Some(Val { h, dt: dtype })
}
