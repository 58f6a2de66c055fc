//! A thin builder over naga's IR for one compute kernel.
//!
//! naga wants every non-constant expression covered by exactly one
//! `Statement::Emit` in the block where it is evaluated, constants and
//! variables never emitted, and statement results never emitted. [`Kb`] keeps
//! that bookkeeping: expressions are appended to the function's arena and the
//! pending range is flushed into the current block before any statement is
//! pushed or a nested block is opened or closed.
//!
//! Blocks get unique ids; a value emitted in a block may be reused only while
//! that block is still open ([`Kb::is_open`]), which is how the elemental
//! emitter scopes its cache.

use crate::error::{CodegenError, Result};
use crate::target::Target;
use naga::{
    AddressSpace, BinaryOperator, Block, BuiltIn, Expression, Function, GlobalVariable, Handle, Literal, LocalVariable,
    MathFunction, ResourceBinding, Scalar, ScalarKind, Span, Statement, StorageAccess, Type, TypeInner, UnaryOperator,
};
use std::collections::HashMap;

pub(crate) type H = Handle<Expression>;

/// The scalar types kernels compute with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum STy {
    Bool,
    I32,
    U32,
    F32,
    I64,
    U64,
    F64,
}

impl STy {
    pub(crate) fn scalar(self) -> Scalar {
        match self {
            STy::Bool => Scalar::BOOL,
            STy::I32 => Scalar::I32,
            STy::U32 => Scalar::U32,
            STy::F32 => Scalar::F32,
            STy::I64 => Scalar::I64,
            STy::U64 => Scalar::U64,
            STy::F64 => Scalar::F64,
        }
    }
    pub(crate) fn kind(self) -> ScalarKind {
        self.scalar().kind
    }
    pub(crate) fn is_float(self) -> bool {
        matches!(self, STy::F32 | STy::F64)
    }
    pub(crate) fn bits(self) -> u32 {
        match self {
            STy::Bool => 1,
            STy::I32 | STy::U32 | STy::F32 => 32,
            STy::I64 | STy::U64 | STy::F64 => 64,
        }
    }
}

/// A literal key for interning (floats by bit pattern).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum LitKey {
    Bool(bool),
    I32(i32),
    U32(u32),
    F32(u32),
    I64(i64),
    U64(u64),
    F64(u64),
}

/// What an open block is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockKind {
    Root,
    /// An `if` branch or a loop's continuing block: nothing is hoisted out of it.
    Plain,
    /// The body of a loop every invocation of a subgroup runs the same number of times.
    UniformLoop,
    /// The body of a loop whose trip count may differ between invocations.
    Loop,
}

impl BlockKind {
    fn is_loop(self) -> bool {
        matches!(self, BlockKind::UniformLoop | BlockKind::Loop)
    }
}

/// Hash-consing key of a pure expression.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Bin(BinaryOperator, H, H),
    Un(UnaryOperator, H),
    Sel(H, H, H),
    Math(MathFunction, [Option<H>; 4]),
    As(H, ScalarKind, Option<u8>),
    Rel(naga::RelationalFunction, H),
    Access(H, H),
    AccessIndex(H, u32),
    Load(H),
    /// A texel fetch: uniform texel buffers are read-only in a kernel, so the same texel is the
    /// same value everywhere.
    ImageLoad(H, H, Option<H>),
}

/// A binding of a storage buffer in a kernel.
#[derive(Clone, Debug)]
pub(crate) struct BindingDecl {
    pub writable: bool,
    /// 32-bit words per texel of a uniform texel buffer ([`Kb::texel_buffer`]: 4 or 1), or
    /// `None` for a storage buffer.
    pub texel_words: Option<u32>,
}

/// Builds one compute kernel: a naga module with one entry point.
pub(crate) struct Kb {
    pub module: naga::Module,
    pub func: Function,
    /// Open blocks, innermost last: statements, unique id, and kind
    /// (loop-invariant expressions are hoisted out of loop bodies).
    blocks: Vec<(Block, u32, BlockKind)>,
    /// Per expression: whether its value may differ between invocations of a subgroup.
    varying: Vec<bool>,
    /// Local variables every invocation holds the same value in (loop counters).
    uniform_locals: std::collections::HashSet<Handle<LocalVariable>>,
    /// Set once the kernel may have returned early in some invocations.
    pub returned_early: bool,
    /// Per expression: the depth of the block it was emitted in, and that block's id.
    placed: Vec<(u16, u32)>,
    /// Hash-consing of pure expressions (valid while the block they were emitted in is open).
    memo: HashMap<Key, H>,
    /// Bitcast-converts: floats made from data bits (see [`Kb::may_be_arithmetic`]).
    data_bits: std::collections::HashSet<H>,
    /// i64 values made by sign-extending an i32, with that i32 (see [`Kb::note_sign_extension`]).
    sign_extended: std::collections::HashMap<H, H>,
    /// Answers of [`Kb::may_be_arithmetic`] (expressions never change once made).
    arithmetic_memo: std::cell::RefCell<std::collections::HashMap<H, bool>>,
    /// See [`Kb::note_dynamic_loop`].
    dynamic_loop: bool,
    /// Globals that kernels write (their loads are never hoisted or merged).
    writable_globals: std::collections::HashSet<Handle<GlobalVariable>>,
    next_block_id: u32,
    emit_start: usize,
    literals: HashMap<LitKey, H>,
    scalar_types: HashMap<Scalar, Handle<Type>>,
    builtins: HashMap<BuiltIn, H>,
    globals: HashMap<Handle<GlobalVariable>, H>,
    pub bindings: Vec<BindingDecl>,
    /// Names given to expressions so far, to keep the WGSL readable and unique.
    names: HashMap<String, u32>,
    /// Bytes of the push-constant block ([`Kb::push_constant_words`]); 0 if none.
    push_constant_bytes: u32,
    /// While set (a local `bool`), math routines leave out their rare slow paths (Payne-Hanek
    /// reduction of a big `sin` argument) and set this flag where one was needed, so that the
    /// caller can redo that work with them ([`Target::predicated_branches`](crate::Target)).
    pub rare_path_flag: Option<H>,
}

impl Kb {
    pub(crate) fn new() -> Kb {
        Kb {
            module: naga::Module::default(),
            func: Function { name: Some("main".into()), ..Function::default() },
            blocks: vec![(Block::new(), 0, BlockKind::Root)],
            varying: Vec::new(),
            uniform_locals: Default::default(),
            returned_early: false,
            placed: Vec::new(),
            memo: HashMap::new(),
            data_bits: std::collections::HashSet::new(),
            sign_extended: std::collections::HashMap::new(),
            arithmetic_memo: Default::default(),
            dynamic_loop: false,
            rare_path_flag: None,
            writable_globals: Default::default(),
            next_block_id: 1,
            emit_start: 0,
            literals: HashMap::new(),
            scalar_types: HashMap::new(),
            builtins: HashMap::new(),
            globals: HashMap::new(),
            bindings: Vec::new(),
            names: HashMap::new(),
            push_constant_bytes: 0,
        }
    }

    // ---- types -------------------------------------------------------------

    pub(crate) fn ty(&mut self, inner: TypeInner) -> Handle<Type> {
        self.module.types.insert(Type { name: None, inner }, Span::UNDEFINED)
    }

    pub(crate) fn scalar_ty(&mut self, s: Scalar) -> Handle<Type> {
        if let Some(&t) = self.scalar_types.get(&s) {
            return t;
        }
        let t = self.ty(TypeInner::Scalar(s));
        self.scalar_types.insert(s, t);
        t
    }

    pub(crate) fn sty(&mut self, t: STy) -> Handle<Type> {
        self.scalar_ty(t.scalar())
    }

    /// Declares a storage buffer `array<elem>` (or `array<atomic<elem>>`) at the next binding.
    pub(crate) fn storage_buffer(
        &mut self,
        name: &str,
        elem: Scalar,
        atomic: bool,
        writable: bool,
    ) -> Handle<GlobalVariable> {
        let base = if atomic { self.ty(TypeInner::Atomic(elem)) } else { self.scalar_ty(elem) };
        self.storage_array(name, base, elem.width as u32, writable)
    }

    /// Declares a storage buffer `array<vec4<elem>>` at the next binding: one load or store
    /// moves four consecutive elements (llvmpipe gathers a varying load lane by lane, so this
    /// is a quarter of the gathers).
    pub(crate) fn storage_buffer_vec4(&mut self, name: &str, elem: Scalar, writable: bool) -> Handle<GlobalVariable> {
        let base = self.ty(TypeInner::Vector { size: naga::VectorSize::Quad, scalar: elem });
        self.storage_array(name, base, 4 * elem.width as u32, writable)
    }

    /// A read-only binding of texels of `words` 32-bit words (4 or 1), fetched by index as a
    /// `vec4<f32>` with the buffer's bits ([`Kb::fetch_texel`]; a one-word texel is its `.x`).
    ///
    /// naga has no buffer images, so this is declared as a sampled 1D texture and the SPIR-V
    /// writer's output is turned into a texel buffer afterwards ([`crate::spirv_texels`]); no
    /// kernel uses real 1D textures. The texel format is the view's, chosen by the runtime from
    /// the binding's access ([`hlo_program::Access::texel_words`]).
    pub(crate) fn texel_buffer(&mut self, name: &str, words: u32) -> Handle<GlobalVariable> {
        let ty = self.ty(TypeInner::Image {
            dim: naga::ImageDimension::D1,
            arrayed: false,
            class: naga::ImageClass::Sampled { kind: naga::ScalarKind::Uint, multi: false },
        });
        let binding = self.bindings.len() as u32;
        let global = self.module.global_variables.append(
            GlobalVariable {
                name: Some(name.to_string()),
                space: AddressSpace::Handle,
                binding: Some(ResourceBinding { group: 0, binding }),
                ty,
                init: None,
                memory_decorations: naga::MemoryDecorations::empty(),
            },
            Span::UNDEFINED,
        );
        self.bindings.push(BindingDecl { writable: false, texel_words: Some(words) });
        global
    }

    /// Texel `index` (a u32) of a binding made by [`Kb::texel_buffer_vec4`], as a `vec4<f32>` with
    /// the buffer's bits.
    pub(crate) fn fetch_texel(&mut self, g: Handle<GlobalVariable>, index: H) -> H {
        let image = self.global(g);
        let index = self.expr(Expression::As { expr: index, kind: naga::ScalarKind::Sint, convert: None });
        let level = self.lit_i32(0);
        let words = self.expr(Expression::ImageLoad {
            image,
            coordinate: index,
            array_index: None,
            sample: None,
            level: Some(level),
        });
        // Fetched as integers, which the driver moves bit for bit (llvmpipe's float texel path
        // flushes subnormals), then reinterpreted.
        self.expr(Expression::As { expr: words, kind: naga::ScalarKind::Float, convert: None })
    }

    /// `vec4<elem>(components)`.
    pub(crate) fn compose_vec4(&mut self, elem: Scalar, components: [H; 4]) -> H {
        let ty = self.ty(TypeInner::Vector { size: naga::VectorSize::Quad, scalar: elem });
        self.expr(Expression::Compose { ty, components: components.to_vec() })
    }

    fn storage_array(&mut self, name: &str, base: Handle<Type>, stride: u32, writable: bool) -> Handle<GlobalVariable> {
        let arr = self.ty(TypeInner::Array { base, size: naga::ArraySize::Dynamic, stride });
        let access = if writable { StorageAccess::LOAD | StorageAccess::STORE } else { StorageAccess::LOAD };
        let binding = self.bindings.len() as u32;
        let global = self.module.global_variables.append(
            GlobalVariable {
                name: Some(name.to_string()),
                space: AddressSpace::Storage { access },
                binding: Some(ResourceBinding { group: 0, binding }),
                ty: arr,
                init: None,
                memory_decorations: naga::MemoryDecorations::empty(),
            },
            Span::UNDEFINED,
        );
        self.bindings.push(BindingDecl { writable, texel_words: None });
        if writable {
            self.writable_globals.insert(global);
        }
        global
    }

    /// Declares the kernel's push-constant block as `n` u32 words and returns their values: per-dispatch
    /// parameters, so that one pipeline serves every pass of a multi-pass algorithm. Call at most once.
    pub(crate) fn push_constant_words(&mut self, n: u32) -> Vec<H> {
        assert_eq!(self.push_constant_bytes, 0, "one push-constant block per kernel");
        let u32_ty = self.scalar_ty(Scalar::U32);
        let len = std::num::NonZeroU32::new(n.max(1)).expect("nonzero");
        let arr = self.ty(TypeInner::Array { base: u32_ty, size: naga::ArraySize::Constant(len), stride: 4 });
        let g = self.module.global_variables.append(
            GlobalVariable {
                name: Some("params".into()),
                space: AddressSpace::Immediate,
                binding: None,
                ty: arr,
                init: None,
                memory_decorations: naga::MemoryDecorations::empty(),
            },
            Span::UNDEFINED,
        );
        self.push_constant_bytes = 4 * n.max(1);
        let base = self.global(g);
        (0..n)
            .map(|i| {
                let p = self.access_index(base, i);
                let v = self.load(p);
                // Every invocation of a dispatch sees the same words.
                self.varying[v.index()] = false;
                v
            })
            .collect()
    }

    /// Declares a workgroup-shared `array<elem, n>`.
    pub(crate) fn workgroup_array(&mut self, name: &str, elem: Scalar, n: u32) -> Handle<GlobalVariable> {
        let base = self.scalar_ty(elem);
        let len = std::num::NonZeroU32::new(n.max(1)).expect("nonzero");
        let arr = self.ty(TypeInner::Array { base, size: naga::ArraySize::Constant(len), stride: elem.width as u32 });
        let g = self.module.global_variables.append(
            GlobalVariable {
                name: Some(name.to_string()),
                space: AddressSpace::WorkGroup,
                binding: None,
                ty: arr,
                init: None,
                memory_decorations: naga::MemoryDecorations::empty(),
            },
            Span::UNDEFINED,
        );
        self.writable_globals.insert(g);
        g
    }

    pub(crate) fn global(&mut self, g: Handle<GlobalVariable>) -> H {
        if let Some(&h) = self.globals.get(&g) {
            return h;
        }
        let h = self.expr(Expression::GlobalVariable(g));
        self.globals.insert(g, h);
        h
    }

    /// A compute built-in (`global_invocation_id` and friends) as a `vec3<u32>`.
    pub(crate) fn builtin(&mut self, b: BuiltIn) -> H {
        if let Some(&h) = self.builtins.get(&b) {
            return h;
        }
        let u32_ty = self.scalar_ty(Scalar::U32);
        let vec3 = self.ty(TypeInner::Vector { size: naga::VectorSize::Tri, scalar: Scalar::U32 });
        let ty = match b {
            BuiltIn::LocalInvocationIndex | BuiltIn::SubgroupInvocationId | BuiltIn::SubgroupSize => u32_ty,
            _ => vec3,
        };
        let index = self.func.arguments.len() as u32;
        let name = match b {
            BuiltIn::GlobalInvocationId => "gid",
            BuiltIn::LocalInvocationId => "lid",
            BuiltIn::LocalInvocationIndex => "lidx",
            BuiltIn::WorkGroupId => "wid",
            BuiltIn::SubgroupInvocationId => "lane",
            _ => "builtin",
        };
        self.func.arguments.push(naga::FunctionArgument {
            name: Some(name.into()),
            ty,
            binding: Some(naga::Binding::BuiltIn(b)),
        });
        let h = self.expr(Expression::FunctionArgument(index));
        self.varying[h.index()] = !matches!(b, BuiltIn::WorkGroupId | BuiltIn::NumWorkGroups | BuiltIn::WorkGroupSize);
        self.builtins.insert(b, h);
        h
    }

    // ---- expressions ---------------------------------------------------------

    /// Appends an expression, keeping the emit bookkeeping.
    ///
    /// Pure expressions are hash-consed, and an expression whose operands are all available
    /// outside the innermost loop bodies is placed (emitted) outside them: loop-invariant code
    /// motion at construction time. lavapipe's LLVM does not hoist storage-buffer loads out of
    /// loops itself, and every load costs a per-lane loop there.
    pub(crate) fn expr(&mut self, e: Expression) -> H {
        let pre = e.needs_pre_emit();
        let result = matches!(e, Expression::AtomicResult { .. } | Expression::CallResult(_));
        let cur = self.blocks.len() - 1;
        let result =
            result || matches!(e, Expression::SubgroupOperationResult { .. } | Expression::SubgroupBallotResult);
        if pre || result {
            self.flush();
            // Subgroup broadcasts give every invocation the same value.
            let varying = matches!(e, Expression::AtomicResult { .. } | Expression::CallResult(_));
            let h = self.func.expressions.append(e, Span::UNDEFINED);
            // Constants and variables are usable everywhere; statement results where they are made.
            let place = if result { (cur as u16, self.blocks[cur].1) } else { (0, 0) };
            self.placed.push(place);
            self.varying.push(varying);
            self.emit_start = self.func.expressions.len();
            return h;
        }
        let key = self.key(&e);
        if let Some(k) = &key {
            if let Some(&h) = self.memo.get(k) {
                if self.is_open(self.placed[h.index()].1) {
                    return h;
                }
            }
        }
        let min_depth = self.min_depth(&e);
        let varying = self.is_varying(&e);
        // Hoist out of loop bodies only (never out of an `if`: that would speculate loads).
        let mut depth = cur;
        while depth > min_depth && self.blocks[depth].2.is_loop() {
            depth -= 1;
        }
        let h = if depth == cur {
            let h = self.func.expressions.append(e, Span::UNDEFINED);
            self.placed.push((cur as u16, self.blocks[cur].1));
            self.varying.push(varying);
            h
        } else {
            self.flush();
            let h = self.func.expressions.append(e, Span::UNDEFINED);
            self.placed.push((depth as u16, self.blocks[depth].1));
            self.varying.push(varying);
            let range = self.func.expressions.range_from(h.index());
            self.blocks[depth].0.push(Statement::Emit(range), Span::UNDEFINED);
            self.emit_start = self.func.expressions.len();
            h
        };
        if let Some(k) = key {
            self.memo.insert(k, h);
        }
        h
    }

    /// The innermost block depth at which `e` can be evaluated.
    fn min_depth(&self, e: &Expression) -> usize {
        let cur = self.blocks.len() - 1;
        let d = |h: &H| self.placed[h.index()].0 as usize;
        match e {
            Expression::Load { pointer } => {
                if self.is_pinned_pointer(*pointer) {
                    cur
                } else {
                    d(pointer)
                }
            }
            Expression::Binary { left, right, .. } => d(left).max(d(right)),
            Expression::Unary { expr, .. } | Expression::As { expr, .. } => d(expr),
            Expression::Relational { argument, .. } => d(argument),
            Expression::Select { condition, accept, reject } => d(condition).max(d(accept)).max(d(reject)),
            Expression::Math { arg, arg1, arg2, arg3, .. } => {
                [Some(arg), arg1.as_ref(), arg2.as_ref(), arg3.as_ref()].into_iter().flatten().map(d).max().unwrap_or(0)
            }
            Expression::Access { base, index } => d(base).max(d(index)),
            Expression::AccessIndex { base, .. } => d(base),
            Expression::Compose { components, .. } => components.iter().map(d).max().unwrap_or(0),
            Expression::Splat { value, .. } => d(value),
            // Hoisted out of loops like a storage load: the texel is the same in every iteration.
            Expression::ImageLoad { image, coordinate, array_index: None, sample: None, level } => {
                d(&image).max(d(&coordinate)).max(level.as_ref().map_or(0, d))
            }
            _ => cur,
        }
    }

    /// Whether `e`'s value may differ between the invocations of a subgroup.
    fn is_varying(&self, e: &Expression) -> bool {
        let v = |h: &H| self.varying[h.index()];
        match e {
            Expression::Load { pointer } => match self.func.expressions[*pointer] {
                Expression::LocalVariable(lv) => !self.uniform_locals.contains(&lv),
                _ => v(pointer),
            },
            Expression::Binary { left, right, .. } => v(left) || v(right),
            Expression::Unary { expr, .. } | Expression::As { expr, .. } => v(expr),
            Expression::Relational { argument, .. } => v(argument),
            Expression::Select { condition, accept, reject } => v(condition) || v(accept) || v(reject),
            Expression::Math { arg, arg1, arg2, arg3, .. } => {
                [Some(arg), arg1.as_ref(), arg2.as_ref(), arg3.as_ref()].into_iter().flatten().any(v)
            }
            Expression::Access { base, index } => v(base) || v(index),
            Expression::AccessIndex { base, .. } => v(base),
            Expression::Compose { components, .. } => components.iter().any(v),
            Expression::Splat { value, .. } => v(value),
            _ => true,
        }
    }

    /// Whether `h` may be a float computed by arithmetic in this kernel, as opposed to a value
    /// copied from a storage buffer or a constant (possibly selected, negated or made absolute on
    /// the way), or made from data bits ([`Kb::mark_data_bits`]). XLA:CPU flushes subnormal arithmetic results to zero, but copies
    /// data as it is; stores use this to flush only the former.
    pub(crate) fn may_be_arithmetic(&self, h: H) -> bool {
        if let Some(&known) = self.arithmetic_memo.borrow().get(&h) {
            return known;
        }
        let result = self.may_be_arithmetic_uncached(h);
        self.arithmetic_memo.borrow_mut().insert(h, result);
        result
    }

    fn may_be_arithmetic_uncached(&self, h: H) -> bool {
        let mut stack = vec![h];
        let mut seen = std::collections::HashSet::new();
        let memo = self.arithmetic_memo.borrow();
        while let Some(x) = stack.pop() {
            if !seen.insert(x) {
                continue;
            }
            match memo.get(&x) {
                Some(true) => return true,
                Some(false) => continue,
                None => {}
            }
            // Marked as data (a float made from data bits, a reduction that only selects),
            // whatever expression holds it (a load of a local, for a reduction's result).
            if self.data_bits.contains(&x) {
                continue;
            }
            match &self.func.expressions[x] {
                Expression::Literal(_)
                | Expression::Constant(_)
                | Expression::ZeroValue(_)
                | Expression::FunctionArgument(_)
                | Expression::SubgroupOperationResult { .. }
                | Expression::SubgroupBallotResult => {}
                Expression::Load { pointer } => {
                    if !self.points_into_storage(*pointer) {
                        return true;
                    }
                }
                // A texel fetch ([`Kb::fetch_texel`]) reads data, like a storage load.
                Expression::ImageLoad { .. } => {}
                Expression::Select { accept, reject, .. } => stack.extend([*accept, *reject]),
                // A component of a loaded vector (a vec4 read of a vectorised loop) is data.
                Expression::AccessIndex { base, .. } => stack.push(*base),
                // A float made from data bits (bitcast-convert) is data.
                _ if self.data_bits.contains(&x) => {}
                Expression::As { expr, convert: None, .. } => stack.push(*expr),
                Expression::Unary { op: UnaryOperator::Negate, expr } => stack.push(*expr),
                Expression::Math { fun: MathFunction::Abs, arg, .. } => stack.push(*arg),
                _ => return true,
            }
        }
        false
    }

    /// Records that a loop whose trip count depends on the data was emitted below the elemental
    /// emitter's accounting (`fmod`): the kernel then checks its loop budget on the device.
    pub(crate) fn note_dynamic_loop(&mut self) {
        self.dynamic_loop = true;
    }

    pub(crate) fn has_dynamic_loop(&self) -> bool {
        self.dynamic_loop
    }

    /// Records that `h` reinterprets data bits (a bitcast-convert), for [`Kb::may_be_arithmetic`].
    pub(crate) fn mark_data_bits(&mut self, h: H) {
        self.arithmetic_memo.borrow_mut().clear();
        self.data_bits.insert(h);
    }

    /// `(condition, accept, reject)` when `h` is a select.
    pub(crate) fn select_parts(&self, h: H) -> Option<(H, H, H)> {
        match self.func.expressions[h] {
            Expression::Select { condition, accept, reject } => Some((condition, accept, reject)),
            _ => None,
        }
    }

    /// Whether pointer `p` points into a storage buffer.
    fn points_into_storage(&self, p: H) -> bool {
        match &self.func.expressions[p] {
            Expression::GlobalVariable(g) => {
                matches!(self.module.global_variables[*g].space, AddressSpace::Storage { .. })
            }
            Expression::Access { base, .. } | Expression::AccessIndex { base, .. } => self.points_into_storage(*base),
            _ => false,
        }
    }

    /// Whether global `g` is a binding the kernel may write.
    pub(crate) fn is_writable(&self, g: Handle<GlobalVariable>) -> bool {
        self.writable_globals.contains(&g)
    }

    /// Whether `h` may differ between the invocations of a subgroup.
    pub(crate) fn varying(&self, h: H) -> bool {
        self.varying[h.index()]
    }

    /// Whether `h` is computed from `from`.
    pub(crate) fn depends_on(&self, h: H, from: H) -> bool {
        if h == from {
            return true;
        }
        if h.index() < from.index() {
            return false;
        }
        let d = |x: &H| self.depends_on(*x, from);
        match &self.func.expressions[h] {
            Expression::Load { pointer } => d(pointer),
            Expression::Binary { left, right, .. } => d(left) || d(right),
            Expression::Unary { expr, .. } | Expression::As { expr, .. } => d(expr),
            Expression::Relational { argument, .. } => d(argument),
            Expression::Select { condition, accept, reject } => d(condition) || d(accept) || d(reject),
            Expression::Math { arg, arg1, arg2, arg3, .. } => {
                [Some(arg), arg1.as_ref(), arg2.as_ref(), arg3.as_ref()].into_iter().flatten().any(d)
            }
            Expression::Access { base, index } => d(base) || d(index),
            Expression::AccessIndex { base, .. } => d(base),
            Expression::Compose { components, .. } => components.iter().any(d),
            Expression::Splat { value, .. } => d(value),
            _ => false,
        }
    }

    /// `h` rebuilt with `from` replaced by `to` (pure expressions only; `None` if something else
    /// on the way depends on `from`).
    pub(crate) fn substitute(&mut self, h: H, from: H, to: H) -> Option<H> {
        if h == from {
            return Some(to);
        }
        if !self.depends_on(h, from) {
            return Some(h);
        }
        let e = self.func.expressions[h].clone();
        let sub = |kb: &mut Kb, x: H| kb.substitute(x, from, to);
        let new = match e {
            Expression::Load { pointer } if !self.is_pinned_pointer(pointer) => {
                Expression::Load { pointer: sub(self, pointer)? }
            }
            Expression::Binary { op, left, right } => {
                Expression::Binary { op, left: sub(self, left)?, right: sub(self, right)? }
            }
            Expression::Unary { op, expr } => Expression::Unary { op, expr: sub(self, expr)? },
            Expression::As { expr, kind, convert } => Expression::As { expr: sub(self, expr)?, kind, convert },
            Expression::Relational { fun, argument } => Expression::Relational { fun, argument: sub(self, argument)? },
            Expression::Select { condition, accept, reject } => Expression::Select {
                condition: sub(self, condition)?,
                accept: sub(self, accept)?,
                reject: sub(self, reject)?,
            },
            Expression::Math { fun, arg, arg1, arg2, arg3 } => {
                let arg = sub(self, arg)?;
                let arg1 = match arg1 {
                    Some(a) => Some(sub(self, a)?),
                    None => None,
                };
                let arg2 = match arg2 {
                    Some(a) => Some(sub(self, a)?),
                    None => None,
                };
                let arg3 = match arg3 {
                    Some(a) => Some(sub(self, a)?),
                    None => None,
                };
                Expression::Math { fun, arg, arg1, arg2, arg3 }
            }
            Expression::Access { base, index } => {
                Expression::Access { base: sub(self, base)?, index: sub(self, index)? }
            }
            Expression::AccessIndex { base, index } => Expression::AccessIndex { base: sub(self, base)?, index },
            _ => return None,
        };
        Some(self.expr(new))
    }

    /// `subgroupBroadcast(value, lane)` for a 32-bit scalar of type `t`.
    pub(crate) fn subgroup_broadcast(&mut self, value: H, lane: u32, t: STy) -> H {
        let ty = self.sty(t);
        let lane = self.lit_u32(lane);
        let result = self.expr(Expression::SubgroupOperationResult { ty });
        self.stmt(Statement::SubgroupGather { mode: naga::GatherMode::Broadcast(lane), argument: value, result });
        result
    }

    /// Whether `pred` (a bool) holds in any active invocation of the subgroup, through a ballot
    /// (needs [`Target::subgroup_broadcast`](crate::Target)); every invocation gets the same answer.
    pub(crate) fn subgroup_any(&mut self, pred: H) -> H {
        let result = self.expr(Expression::SubgroupBallotResult);
        self.stmt(Statement::SubgroupBallot { result, predicate: Some(pred) });
        let lanes = [0, 1, 2, 3].map(|k| self.access_index(result, k));
        let low = self.binary(naga::BinaryOperator::InclusiveOr, lanes[0], lanes[1]);
        let high = self.binary(naga::BinaryOperator::InclusiveOr, lanes[2], lanes[3]);
        let all = self.binary(naga::BinaryOperator::InclusiveOr, low, high);
        let zero = self.lit_u32(0);
        self.binary(naga::BinaryOperator::NotEqual, all, zero)
    }

    /// A function-local variable every invocation of a subgroup keeps equal (a loop counter).
    pub(crate) fn uniform_local_init(&mut self, name: &str, t: STy, init: H) -> H {
        let ptr = self.local_init(name, t, init);
        if let Expression::LocalVariable(lv) = self.func.expressions[ptr] {
            self.uniform_locals.insert(lv);
        }
        ptr
    }

    /// True when every open block is one that all invocations of a subgroup execute together
    /// (and no invocation has returned), so subgroup operations see every lane.
    pub(crate) fn subgroup_uniform(&self) -> bool {
        !self.returned_early && self.blocks.iter().all(|b| matches!(b.2, BlockKind::Root | BlockKind::UniformLoop))
    }

    /// True for pointers whose target may change during the kernel (locals, written buffers,
    /// workgroup memory, atomics): loads through them stay where they are.
    fn is_pinned_pointer(&self, p: H) -> bool {
        match self.func.expressions[p] {
            Expression::GlobalVariable(g) => self.writable_globals.contains(&g),
            Expression::LocalVariable(_) => true,
            Expression::Access { base, .. } | Expression::AccessIndex { base, .. } => self.is_pinned_pointer(base),
            _ => true,
        }
    }

    /// The hash-consing key of a pure expression.
    fn key(&self, e: &Expression) -> Option<Key> {
        Some(match *e {
            Expression::Binary { op, left, right } => Key::Bin(op, left, right),
            Expression::Unary { op, expr } => Key::Un(op, expr),
            Expression::Select { condition, accept, reject } => Key::Sel(condition, accept, reject),
            Expression::Math { fun, arg, arg1, arg2, arg3 } => Key::Math(fun, [Some(arg), arg1, arg2, arg3]),
            Expression::As { expr, kind, convert } => Key::As(expr, kind, convert),
            Expression::Relational { fun, argument } => Key::Rel(fun, argument),
            Expression::Access { base, index } => Key::Access(base, index),
            Expression::AccessIndex { base, index } => Key::AccessIndex(base, index),
            Expression::Load { pointer } if !self.is_pinned_pointer(pointer) => Key::Load(pointer),
            Expression::ImageLoad { image, coordinate, array_index: None, sample: None, level } => {
                Key::ImageLoad(image, coordinate, level)
            }
            _ => return None,
        })
    }

    fn lit_key(&mut self, key: LitKey, lit: Literal) -> H {
        if let Some(&h) = self.literals.get(&key) {
            return h;
        }
        let h = self.expr(Expression::Literal(lit));
        self.literals.insert(key, h);
        h
    }

    pub(crate) fn lit_bool(&mut self, v: bool) -> H {
        self.lit_key(LitKey::Bool(v), Literal::Bool(v))
    }
    pub(crate) fn lit_u32(&mut self, v: u32) -> H {
        self.lit_key(LitKey::U32(v), Literal::U32(v))
    }
    pub(crate) fn lit_i32(&mut self, v: i32) -> H {
        self.lit_key(LitKey::I32(v), Literal::I32(v))
    }
    pub(crate) fn lit_i64(&mut self, v: i64) -> H {
        self.lit_key(LitKey::I64(v), Literal::I64(v))
    }
    pub(crate) fn lit_u64(&mut self, v: u64) -> H {
        self.lit_key(LitKey::U64(v), Literal::U64(v))
    }
    /// An f32 constant; NaN and infinities (which naga literals may not hold) become bitcasts.
    pub(crate) fn lit_f32(&mut self, v: f32) -> H {
        if v.is_finite() {
            self.lit_key(LitKey::F32(v.to_bits()), Literal::F32(v))
        } else {
            let bits = self.lit_u32(v.to_bits());
            self.bitcast(bits, STy::F32)
        }
    }
    pub(crate) fn lit_f64(&mut self, v: f64) -> H {
        if v.is_finite() {
            self.lit_key(LitKey::F64(v.to_bits()), Literal::F64(v))
        } else {
            let bits = self.lit_u64(v.to_bits());
            self.bitcast(bits, STy::F64)
        }
    }

    /// A constant of shader type `t` from an f64 (floats) value.
    pub(crate) fn lit_float(&mut self, t: STy, v: f64) -> H {
        match t {
            STy::F64 => self.lit_f64(v),
            _ => self.lit_f32(v as f32),
        }
    }

    /// A constant of shader type `t` from an integer value (wrapping to the type).
    pub(crate) fn lit_int(&mut self, t: STy, v: i128) -> H {
        match t {
            STy::Bool => self.lit_bool(v != 0),
            STy::I32 => self.lit_i32(v as i32),
            STy::U32 => self.lit_u32(v as u32),
            STy::I64 => self.lit_i64(v as i64),
            STy::U64 => self.lit_u64(v as u64),
            STy::F32 => self.lit_f32(v as f32),
            STy::F64 => self.lit_f64(v as f64),
        }
    }

    /// Whether `h` is computed from literals only (no load, builtin or argument), so that the
    /// driver knows its value when it compiles the kernel.
    pub(crate) fn is_const_expr(&self, h: H) -> bool {
        match &self.func.expressions[h] {
            Expression::Literal(_) | Expression::Constant(_) | Expression::ZeroValue(_) => true,
            Expression::As { expr, .. } | Expression::Unary { expr, .. } => self.is_const_expr(*expr),
            Expression::Binary { left, right, .. } => self.is_const_expr(*left) && self.is_const_expr(*right),
            Expression::Select { condition, accept, reject } => {
                self.is_const_expr(*condition) && self.is_const_expr(*accept) && self.is_const_expr(*reject)
            }
            Expression::Math { arg, arg1, arg2, arg3, .. } => {
                self.is_const_expr(*arg) && [arg1, arg2, arg3].iter().all(|a| a.is_none_or(|a| self.is_const_expr(a)))
            }
            _ => false,
        }
    }

    /// If `h` is an integer literal, its value.
    pub(crate) fn const_int(&self, h: H) -> Option<i128> {
        match self.func.expressions[h] {
            Expression::Literal(Literal::U32(v)) => Some(v as i128),
            Expression::Literal(Literal::I32(v)) => Some(v as i128),
            Expression::Literal(Literal::U64(v)) => Some(v as i128),
            Expression::Literal(Literal::I64(v)) => Some(v as i128),
            _ => None,
        }
    }

    pub(crate) fn binary(&mut self, op: BinaryOperator, left: H, right: H) -> H {
        use BinaryOperator as B;
        // Fold comparisons of integer literals and logic with boolean literals.
        if let (Some(a), Some(b)) = (self.const_int(left), self.const_int(right)) {
            let r = match op {
                B::Equal => Some(a == b),
                B::NotEqual => Some(a != b),
                B::Less => Some(a < b),
                B::LessEqual => Some(a <= b),
                B::Greater => Some(a > b),
                B::GreaterEqual => Some(a >= b),
                _ => None,
            };
            if let Some(r) = r {
                return self.lit_bool(r);
            }
        }
        let as_bool = |kb: &Kb, h: H| match kb.func.expressions[h] {
            Expression::Literal(Literal::Bool(v)) => Some(v),
            _ => None,
        };
        match (op, as_bool(self, left), as_bool(self, right)) {
            (B::LogicalAnd, Some(true), _) | (B::LogicalOr, Some(false), _) => return right,
            (B::LogicalAnd, _, Some(true)) | (B::LogicalOr, _, Some(false)) => return left,
            (B::LogicalAnd, Some(false), _) | (B::LogicalAnd, _, Some(false)) => return self.lit_bool(false),
            (B::LogicalOr, Some(true), _) | (B::LogicalOr, _, Some(true)) => return self.lit_bool(true),
            _ => {}
        }
        if let Some(h) = self.float_zero_operand(op, left, right) {
            return h;
        }
        if let Some(h) = self.narrow_sign_extended_compare(op, left, right) {
            return h;
        }
        self.expr(Expression::Binary { op, left, right })
    }

    /// Records that i64 `wide` is the sign extension of i32 `narrow` (see
    /// [`Kb::narrow_sign_extended_compare`]).
    pub(crate) fn note_sign_extension(&mut self, wide: H, narrow: H) {
        self.sign_extended.insert(wide, narrow);
    }

    /// A comparison of a sign-extended i32 with an i64 constant (or with another sign-extended
    /// i32), done on the i32s. lavapipe (Mesa 22.3, LLVM 15) miscompiles the i64 form:
    /// `convert<s64>(x) > 0` was true for every x, so `sign`, `abs` and selects were wrong.
    fn narrow_sign_extended_compare(&mut self, op: BinaryOperator, left: H, right: H) -> Option<H> {
        use BinaryOperator as B;
        if !matches!(op, B::Equal | B::NotEqual | B::Less | B::LessEqual | B::Greater | B::GreaterEqual) {
            return None;
        }
        let narrow = |kb: &Kb, h: H| kb.sign_extended.get(&h).copied();
        let constant = |kb: &Kb, h: H| match kb.func.expressions[h] {
            Expression::Literal(Literal::I64(v)) => Some(v),
            _ => None,
        };
        match (narrow(self, left), narrow(self, right), constant(self, left), constant(self, right)) {
            (Some(a), Some(b), _, _) => Some(self.binary(op, a, b)),
            (Some(a), None, _, Some(c)) => Some(match i32::try_from(c) {
                Ok(c) => {
                    let c = self.lit_i32(c);
                    self.binary(op, a, c)
                }
                Err(_) => self.lit_bool(match op {
                    B::Equal => false,
                    B::NotEqual => true,
                    // Every i32 is below a constant past i32::MAX and above one below i32::MIN.
                    B::Less | B::LessEqual => c > 0,
                    _ => c < 0,
                }),
            }),
            (None, Some(_), Some(c), _) => {
                let flipped = match op {
                    B::Less => B::Greater,
                    B::LessEqual => B::GreaterEqual,
                    B::Greater => B::Less,
                    B::GreaterEqual => B::LessEqual,
                    other => other,
                };
                let lit = self.lit_i64(c);
                self.narrow_sign_extended_compare(flipped, right, lit)
            }
            _ => None,
        }
    }

    /// The type and sign (true: `-0.0`) of a float zero literal, if `h` is one.
    fn zero_literal(&self, h: H) -> Option<(STy, bool)> {
        match self.func.expressions[h] {
            Expression::Literal(Literal::F32(v)) if v == 0.0 => Some((STy::F32, v.is_sign_negative())),
            Expression::Literal(Literal::F64(v)) if v == 0.0 => Some((STy::F64, v.is_sign_negative())),
            _ => None,
        }
    }

    /// Float arithmetic with a literal `+-0.0` operand, spelled without that arithmetic.
    ///
    /// Why: llvmpipe (lavapipe) builds LLVM IR through helpers that short-circuit an operand equal
    /// to the constant zero (`0 + x -> x`, `x * 0 -> 0`, `0 / x -> 0`, `x / 0 -> undef`), and
    /// NIR rewrites `x * -0.0` through them too; all of it is wrong for `-0.0`, infinities and
    /// NaN, and no SPIR-V decoration turns it off. The IEEE result is written out with selects
    /// and sign-bit arithmetic instead, so every driver gets it right.
    fn float_zero_operand(&mut self, op: BinaryOperator, left: H, right: H) -> Option<H> {
        use BinaryOperator as B;
        if !matches!(op, B::Add | B::Subtract | B::Multiply | B::Divide) {
            return None;
        }
        let (lz, rz) = (self.zero_literal(left), self.zero_literal(right));
        let (t, _) = lz.or(rz)?;
        if lz.is_some() && rz.is_some() {
            return None; // both literal: nothing reaches the device as arithmetic on data
        }
        let (ut, sign_mask) = if t == STy::F64 { (STy::U64, 1i128 << 63) } else { (STy::U32, 1i128 << 31) };
        let inf_bits = if t == STy::F64 { 0x7ff0_0000_0000_0000u64 as i128 } else { 0x7f80_0000 };
        let (x, negative_zero) = match (lz, rz) {
            (Some((_, s)), None) => (right, s),
            (None, Some((_, s))) => (left, s),
            _ => return None,
        };
        let zero_on_left = lz.is_some();
        let positive_zero = self.lit_float(t, 0.0);
        let nan = self.lit_float(t, f64::NAN);
        // x's sign bit, flipped when the zero operand is -0 (the sign of a product or quotient).
        let sign_of = |kb: &mut Kb, x: H| {
            let bits = kb.bitcast(x, ut);
            let mask = kb.lit_int(ut, sign_mask);
            let s = kb.binary(B::And, bits, mask);
            if negative_zero {
                kb.binary(B::ExclusiveOr, s, mask)
            } else {
                s
            }
        };
        let is_zero = self.binary(B::Equal, x, positive_zero);
        Some(match op {
            // -0 + x = x exactly; +0 + x = x except +0 + -0 = +0.
            B::Add if negative_zero => x,
            B::Add => self.select(is_zero, positive_zero, x),
            // x - (+0) = x exactly; x - (-0) = x + 0.
            B::Subtract if !zero_on_left && !negative_zero => x,
            B::Subtract if !zero_on_left => self.select(is_zero, positive_zero, x),
            // -0 - x = -x exactly; +0 - x = -x except +0 - +0 = +0.
            B::Subtract => {
                let neg = self.unary(UnaryOperator::Negate, x);
                if negative_zero {
                    neg
                } else {
                    self.select(is_zero, positive_zero, neg)
                }
            }
            // x * 0 = a zero with the product's sign; NaN for infinite or NaN x.
            B::Multiply => {
                let finite = self.float_finite(x, t);
                let s = sign_of(self, x);
                let z = self.bitcast(s, t);
                self.select(finite, z, nan)
            }
            // 0 / x = a zero with the quotient's sign; NaN for x = 0 or NaN.
            // x / 0 = an infinity with the quotient's sign; NaN for x = 0 or NaN.
            B::Divide => {
                let is_nan = self.float_class(x, t, false);
                let bad = self.binary(B::LogicalOr, is_zero, is_nan);
                let s = sign_of(self, x);
                let v = if zero_on_left {
                    s
                } else {
                    let infc = self.lit_int(ut, inf_bits);
                    self.binary(B::InclusiveOr, s, infc)
                };
                let v = self.bitcast(v, t);
                self.select(bad, nan, v)
            }
            _ => return None,
        })
    }

    /// `x` is neither infinite nor NaN (a bit test, immune to fast-math folding).
    pub(crate) fn float_finite(&mut self, x: H, t: STy) -> H {
        let (ut, abs_mask, inf_bits) = if t == STy::F64 {
            (STy::U64, 0x7fff_ffff_ffff_ffffu64 as i128, 0x7ff0_0000_0000_0000u64 as i128)
        } else {
            (STy::U32, 0x7fff_ffff, 0x7f80_0000)
        };
        let bits = self.bitcast(x, ut);
        let mask = self.lit_int(ut, abs_mask);
        let a = self.binary(BinaryOperator::And, bits, mask);
        let infc = self.lit_int(ut, inf_bits);
        self.binary(BinaryOperator::Less, a, infc)
    }

    pub(crate) fn unary(&mut self, op: UnaryOperator, e: H) -> H {
        self.expr(Expression::Unary { op, expr: e })
    }

    pub(crate) fn select(&mut self, condition: H, accept: H, reject: H) -> H {
        if accept == reject {
            return accept;
        }
        match self.func.expressions[condition] {
            Expression::Literal(Literal::Bool(true)) => return accept,
            Expression::Literal(Literal::Bool(false)) => return reject,
            _ => {}
        }
        if let Some(h) = self.select_unit_or_zero(condition, accept, reject) {
            return h;
        }
        self.expr(Expression::Select { condition, accept, reject })
    }

    /// A select between the float constants ±1 and ±0, as exact arithmetic on the condition.
    ///
    /// Mesa's NIR rewrites such selects into `±b2f(c)` whatever the zero's sign (lavapipe turned
    /// `select(c, -1.0, 0.0)` into -0.0 where `c` is false, and `select(c, 1.0, -0.0)` into +0.0),
    /// matching constants by their bits, so a select of the bits fares no better; `NoContraction`
    /// does not apply to selects. `one * b2f(c) + zero`, with every operation exact, cannot be
    /// rewritten that way and gives the right zero (negated around for `+1` against `-0`).
    fn select_unit_or_zero(&mut self, condition: H, accept: H, reject: H) -> Option<H> {
        let lit = |kb: &Kb, h: H| match kb.func.expressions[h] {
            Expression::Literal(Literal::F32(v)) => Some((f64::from(v), 4u8)),
            Expression::Literal(Literal::F64(v)) => Some((v, 8u8)),
            _ => None,
        };
        let ((a, width), (b, width_b)) = (lit(self, accept)?, lit(self, reject)?);
        if width != width_b {
            return None;
        }
        let (one, zero, cond) = if a.abs() == 1.0 && b == 0.0 {
            (a, b, condition)
        } else if b.abs() == 1.0 && a == 0.0 {
            (b, a, self.unary(UnaryOperator::LogicalNot, condition))
        } else {
            return None;
        };
        let ty = if width == 8 { STy::F64 } else { STy::F32 };
        let s = self.expr(Expression::As { expr: cond, kind: naga::ScalarKind::Float, convert: Some(width) });
        Some(if one > 0.0 && zero.is_sign_negative() {
            // -((-1) * s + 0): -0 where c is false (+0 + ... would give +0).
            let minus_one = self.lit_float(ty, -1.0);
            let plus_zero = self.lit_float(ty, 0.0);
            let t = self.binary(BinaryOperator::Multiply, minus_one, s);
            let t = self.binary(BinaryOperator::Add, t, plus_zero);
            self.unary(UnaryOperator::Negate, t)
        } else {
            let one = self.lit_float(ty, one);
            let zero = self.lit_float(ty, zero);
            let t = self.binary(BinaryOperator::Multiply, one, s);
            self.binary(BinaryOperator::Add, t, zero)
        })
    }

    pub(crate) fn math(&mut self, fun: MathFunction, args: &[H]) -> H {
        self.expr(Expression::Math {
            fun,
            arg: args[0],
            arg1: args.get(1).copied(),
            arg2: args.get(2).copied(),
            arg3: args.get(3).copied(),
        })
    }

    /// `isnan` (`inf == false`) or `isinf` of a float of type `t`, as integer tests on the bit
    /// pattern: WGSL has neither function, and the bit test cannot be folded away by fast-math
    /// assumptions.
    pub(crate) fn float_class(&mut self, x: H, t: STy, inf: bool) -> H {
        let (ut, abs_mask, inf_bits) = if t == STy::F64 {
            (STy::U64, 0x7fff_ffff_ffff_ffffu64 as i128, 0x7ff0_0000_0000_0000u64 as i128)
        } else {
            (STy::U32, 0x7fff_ffff, 0x7f80_0000)
        };
        let bits = self.bitcast(x, ut);
        let mask = self.lit_int(ut, abs_mask);
        let a = self.binary(BinaryOperator::And, bits, mask);
        let infc = self.lit_int(ut, inf_bits);
        self.binary(if inf { BinaryOperator::Equal } else { BinaryOperator::Greater }, a, infc)
    }

    /// A value conversion (`convert: Some(width)`) to `to`.
    pub(crate) fn convert(&mut self, e: H, to: STy) -> H {
        let s = to.scalar();
        self.expr(Expression::As { expr: e, kind: s.kind, convert: Some(s.width) })
    }

    /// A bit reinterpretation to `to` (same width).
    pub(crate) fn bitcast(&mut self, e: H, to: STy) -> H {
        self.expr(Expression::As { expr: e, kind: to.kind(), convert: None })
    }

    pub(crate) fn access(&mut self, base: H, index: H) -> H {
        self.expr(Expression::Access { base, index })
    }

    pub(crate) fn access_index(&mut self, base: H, index: u32) -> H {
        self.expr(Expression::AccessIndex { base, index })
    }

    pub(crate) fn load(&mut self, pointer: H) -> H {
        self.expr(Expression::Load { pointer })
    }

    // ---- u32 index arithmetic with light folding ---------------------------

    pub(crate) fn add_u(&mut self, a: H, b: H) -> H {
        match (self.const_int(a), self.const_int(b)) {
            (Some(x), Some(y)) => self.lit_u32((x + y) as u32),
            (Some(0), _) => b,
            (_, Some(0)) => a,
            _ => self.binary(BinaryOperator::Add, a, b),
        }
    }
    pub(crate) fn sub_u(&mut self, a: H, b: H) -> H {
        match (self.const_int(a), self.const_int(b)) {
            (Some(x), Some(y)) => self.lit_u32((x - y) as u32),
            (_, Some(0)) => a,
            _ => self.binary(BinaryOperator::Subtract, a, b),
        }
    }
    pub(crate) fn mul_u(&mut self, a: H, b: H) -> H {
        match (self.const_int(a), self.const_int(b)) {
            (Some(x), Some(y)) => self.lit_u32((x * y) as u32),
            (Some(0), _) | (_, Some(0)) => self.lit_u32(0),
            (Some(1), _) => b,
            (_, Some(1)) => a,
            _ => self.binary(BinaryOperator::Multiply, a, b),
        }
    }
    pub(crate) fn div_u(&mut self, a: H, b: H) -> H {
        match (self.const_int(a), self.const_int(b)) {
            (Some(x), Some(y)) if y != 0 => self.lit_u32((x / y) as u32),
            (Some(0), _) => a,
            (_, Some(1)) => a,
            _ => self.binary(BinaryOperator::Divide, a, b),
        }
    }
    pub(crate) fn rem_u(&mut self, a: H, b: H) -> H {
        match (self.const_int(a), self.const_int(b)) {
            (Some(x), Some(y)) if y != 0 => self.lit_u32((x % y) as u32),
            (_, Some(1)) => self.lit_u32(0),
            (Some(0), _) => a,
            _ => self.binary(BinaryOperator::Modulo, a, b),
        }
    }
    pub(crate) fn add_c(&mut self, a: H, c: u32) -> H {
        let c = self.lit_u32(c);
        self.add_u(a, c)
    }
    pub(crate) fn mul_c(&mut self, a: H, c: u32) -> H {
        let c = self.lit_u32(c);
        self.mul_u(a, c)
    }
    pub(crate) fn div_c(&mut self, a: H, c: u32) -> H {
        let c = self.lit_u32(c);
        self.div_u(a, c)
    }
    pub(crate) fn rem_c(&mut self, a: H, c: u32) -> H {
        let c = self.lit_u32(c);
        self.rem_u(a, c)
    }
    pub(crate) fn min_u(&mut self, a: H, b: H) -> H {
        match (self.const_int(a), self.const_int(b)) {
            (Some(x), Some(y)) => self.lit_u32(x.min(y) as u32),
            _ => self.math(MathFunction::Min, &[a, b]),
        }
    }
    pub(crate) fn lt_c(&mut self, a: H, c: u32) -> H {
        match self.const_int(a) {
            Some(x) => self.lit_bool(x < c as i128),
            None => {
                let ch = self.lit_u32(c);
                self.binary(BinaryOperator::Less, a, ch)
            }
        }
    }

    // ---- statements and blocks ---------------------------------------------

    fn flush(&mut self) {
        let len = self.func.expressions.len();
        if self.emit_start < len {
            debug_assert!(self.placed.len() == len);
            let range = self.func.expressions.range_from(self.emit_start);
            self.blocks.last_mut().expect("block").0.push(Statement::Emit(range), Span::UNDEFINED);
        }
        self.emit_start = len;
    }

    pub(crate) fn stmt(&mut self, s: Statement) {
        self.flush();
        self.blocks.last_mut().expect("block").0.push(s, Span::UNDEFINED);
    }

    /// Opens a nested block (an `if` branch, a loop's continuing block, ...).
    pub(crate) fn begin_block(&mut self) {
        self.open(BlockKind::Plain);
    }

    /// Opens the body of a loop: expressions that do not depend on the loop are placed before it.
    /// Only use for loops whose body runs at least once, or whose hoisted loads are in bounds anyway.
    pub(crate) fn begin_loop_body(&mut self) {
        self.open(BlockKind::Loop);
    }

    /// [`Kb::begin_loop_body`] for a loop with the same trip count in every invocation.
    pub(crate) fn begin_uniform_loop_body(&mut self) {
        self.open(BlockKind::UniformLoop);
    }

    fn open(&mut self, kind: BlockKind) {
        self.flush();
        let id = self.next_block_id;
        self.next_block_id += 1;
        self.blocks.push((Block::new(), id, kind));
    }

    /// The id of the block `h` was emitted in (0 for constants, usable everywhere).
    pub(crate) fn block_of(&self, h: H) -> u32 {
        self.placed[h.index()].1
    }

    pub(crate) fn end_block(&mut self) -> Block {
        self.flush();
        assert!(self.blocks.len() > 1, "end_block without begin_block");
        self.blocks.pop().expect("block").0
    }

    /// The id of the innermost open block.
    pub(crate) fn block_id(&self) -> u32 {
        self.blocks.last().expect("block").1
    }

    /// True while the block with this id is open (values emitted in it are usable).
    pub(crate) fn is_open(&self, id: u32) -> bool {
        self.blocks.iter().any(|b| b.1 == id)
    }

    pub(crate) fn store(&mut self, pointer: H, value: H) {
        self.stmt(Statement::Store { pointer, value });
    }

    /// `if (cond) { return; }`
    pub(crate) fn return_if(&mut self, cond: H) {
        self.returned_early = true;
        self.begin_block();
        self.stmt(Statement::Return { value: None });
        let accept = self.end_block();
        self.stmt(Statement::If { condition: cond, accept, reject: Block::new() });
    }

    pub(crate) fn local(&mut self, name: &str, t: STy) -> H {
        let ty = self.sty(t);
        let lv = self
            .func
            .local_variables
            .append(LocalVariable { name: Some(name.to_string()), ty, init: None }, Span::UNDEFINED);
        self.expr(Expression::LocalVariable(lv))
    }

    /// A function-local variable initialised with `init`.
    pub(crate) fn local_init(&mut self, name: &str, t: STy, init: H) -> H {
        let ptr = self.local(name, t);
        self.store(ptr, init);
        ptr
    }

    pub(crate) fn barrier(&mut self) {
        self.stmt(Statement::ControlBarrier(naga::Barrier::WORK_GROUP));
    }

    /// A workgroup barrier that also makes storage-buffer writes visible to the workgroup's other invocations
    /// (`WORK_GROUP` alone covers only workgroup memory).
    pub(crate) fn storage_barrier(&mut self) {
        self.stmt(Statement::ControlBarrier(naga::Barrier::STORAGE | naga::Barrier::WORK_GROUP));
    }

    /// Gives `h` a readable name in the WGSL output (unique within the kernel).
    pub(crate) fn name(&mut self, h: H, name: &str) {
        if self.func.expressions[h].needs_pre_emit() || self.func.named_expressions.contains_key(&h) {
            return;
        }
        let mut base: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
        if base.is_empty() || base.as_bytes()[0].is_ascii_digit() {
            base.insert(0, 'v');
        }
        let n = self.names.entry(base.clone()).or_insert(0);
        *n += 1;
        let unique = if *n == 1 { base } else { format!("{base}_{}", *n - 1) };
        self.func.named_expressions.insert(h, unique);
    }

    // ---- finishing ------------------------------------------------------------

    /// Wraps the function into the entry point, validates and writes SPIR-V.
    pub(crate) fn finish(mut self, kernel: &str, workgroup_size: [u32; 3], target: &Target) -> Result<Built> {
        self.flush();
        assert_eq!(self.blocks.len(), 1, "unbalanced blocks in kernel {kernel}");
        let body = self.blocks.pop().expect("block").0;
        self.func.body = body;
        let module = {
            let mut module = self.module;
            module.entry_points.push(naga::EntryPoint {
                name: "main".into(),
                stage: naga::ShaderStage::Compute,
                early_depth_test: None,
                workgroup_size,
                workgroup_size_overrides: None,
                function: self.func,
                mesh_info: None,
                task_payload: None,
                incoming_ray_payload: None,
            });
            module
        };
        let info = validate(&module, kernel, target)?;
        let spirv = write_spirv(&module, &info, kernel)?;
        let writable = self.bindings.iter().map(|b| b.writable).collect();
        let texels = self.bindings.iter().map(|b| b.texel_words).collect();
        Ok(Built { module, spirv, writable, texels, workgroup_size, push_constant_bytes: self.push_constant_bytes })
    }
}

/// A kernel's naga module and SPIR-V words.
pub(crate) struct Built {
    pub module: naga::Module,
    pub spirv: Vec<u32>,
    pub writable: Vec<bool>,
    /// Per binding: 32-bit words per texel of a uniform texel buffer ([`Kb::texel_buffer`]).
    pub texels: Vec<Option<u32>>,
    pub workgroup_size: [u32; 3],
    /// Bytes of the push-constant block (0 if none).
    pub push_constant_bytes: u32,
}

pub(crate) fn validate(module: &naga::Module, kernel: &str, target: &Target) -> Result<naga::valid::ModuleInfo> {
    // Push constants are core Vulkan (at least 128 bytes); kernels that use them say so by declaring a block.
    let caps = target.capabilities() | naga::valid::Capabilities::IMMEDIATES;
    let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
    if target.subgroup_broadcast {
        validator
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::BALLOT);
    }
    validator.validate(module).map_err(|e| CodegenError::Internal {
        kernel: kernel.to_string(),
        naga_error: format!("{} ({:?})", e.emit_to_string("").trim(), e.as_inner()),
    })
}

pub(crate) fn write_spirv(module: &naga::Module, info: &naga::valid::ModuleInfo, kernel: &str) -> Result<Vec<u32>> {
    let options = naga::back::spv::Options {
        lang_version: (1, 3),
        flags: naga::back::spv::WriterFlags::empty(),
        fake_missing_bindings: true,
        force_loop_bounding: false,
        emit_int_div_checks: false,
        bounds_check_policies: naga::proc::BoundsCheckPolicies::default(),
        ..naga::back::spv::Options::default()
    };
    let pipeline =
        naga::back::spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: "main".into() };
    let mut words = naga::back::spv::write_vec(module, info, &options, Some(&pipeline)).map_err(|e| {
        CodegenError::Internal { kernel: kernel.to_string(), naga_error: format!("SPIR-V writer: {e}") }
    })?;
    crate::spirv_exact::mark_float_ops_exact(&mut words);
    crate::spirv_texels::images_to_texel_buffers(&mut words);
    Ok(words)
}

/// The WGSL text of a kernel's module.
pub(crate) fn wgsl(module: &naga::Module, target: &Target) -> String {
    match validate(module, "wgsl", target) {
        Ok(info) => naga::back::wgsl::write_string(module, &info, naga::back::wgsl::WriterFlags::empty())
            .unwrap_or_else(|e| format!("// WGSL writer failed: {e}\n")),
        Err(e) => format!("// {e}\n"),
    }
}
