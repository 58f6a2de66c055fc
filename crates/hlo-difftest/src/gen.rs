//! The program generator: random but valid HLO modules from a seed and a [`Profile`].
//!
//! A program grows from a pool of values: it starts with one or two parameters, and every step
//! picks an op family by weight, takes operands from the pool (recent values first, so that
//! chains form) and adds the result to the pool; the root is a tuple of the last value and
//! maybe a few others. Shapes come from the profile's extents, which straddle the code
//! generator's thresholds (subgroup 8, unroll 16, 64-element trees, workgroup 256, 1024-element
//! trees, 65,535 workgroups, 2^24 elements).
//!
//! The generator tracks which float values are *exact*, that is computed by correctly rounded,
//! order-independent operations only, so that both engines must agree bit for bit. Ops whose
//! result jumps with a tiny change of input (compare, float-to-int convert, floor, sort keys,
//! bitcast-convert) only ever take exact operands: otherwise a one-ulp reassociation difference
//! in a sum would show up as a different `pred` or index and be reported as a bug.
//!
//! Every parameter has an input role (plain data, an index range, a trip count), which decides
//! what data [`crate::inputs`] makes for it: out-of-range indices are deliberate, since XLA
//! clamps dynamic-slice and gather starts and skips out-of-bounds scatter windows.

use crate::edit::{assemble, compact, Cb};
use crate::inputs::{make_inputs, DataKind, Role};
use hlo_ir::{
    ArrayData, ArrayShape, BinaryOp, CompId, CompareDirection, CompareType, Computation, ConvDims, DType, DotDims,
    FftType, GatherDims, InstrId, Literal, Module, Op, PadDim, RngAlgorithm, ScatterDims, Shape, SliceDim, UnaryOp,
    Window, WindowDim,
};
use hlo_run::npy::HostArray;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How big and how varied generated programs are.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: &'static str,
    /// Most elements in any one array.
    pub max_elems: u64,
    /// Ops per program, inclusive range.
    pub ops: (usize, usize),
    /// Extents that dimensions are drawn from.
    pub extents: &'static [i64],
    pub max_rank: usize,
    /// Trip counts of generated while loops.
    pub trip_counts: &'static [i64],
    /// Most elements times trips one loop may cost the interpreter.
    pub max_loop_work: u64,
    /// Whole-array element counts tried by the large profile (around the 65,535-workgroup and 2^24 limits).
    pub big_counts: &'static [i64],
}

/// Extents next to every threshold of the code generator that small programs can afford.
const SMALL_EXTENTS: &[i64] =
    &[1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255, 256, 257, 1023, 1024, 1025, 4096];
const CI_EXTENTS: &[i64] = &[1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 255, 256, 257];
const BIG_COUNTS: &[i64] = &[65535, 65536, 65537, 70000, 16_776_959, 16_776_960, 16_776_961, 16_777_216, 16_777_217];

/// The fixed-seed CI slice: small arrays, short loops, cheap in the debug profile.
pub const CI: Profile = Profile {
    name: "ci",
    max_elems: 4096,
    ops: (1, 6),
    extents: CI_EXTENTS,
    max_rank: 4,
    trip_counts: &[1, 2, 60, 61, 64, 65],
    max_loop_work: 20_000,
    big_counts: &[],
};

/// Long-mode default: arrays up to 64k elements, loops up to 70,000 trips.
pub const SMALL: Profile = Profile {
    name: "small",
    max_elems: 1 << 16,
    ops: (1, 10),
    extents: SMALL_EXTENTS,
    max_rank: 4,
    trip_counts: &[1, 60, 61, 64, 65, 1000, 4096, 4097, 65535, 70000],
    max_loop_work: 2_000_000,
    big_counts: &[65535, 65536, 65537, 70000],
};

/// Few ops on arrays around the grid and loop-counter limits (16,776,960 = 65,535 x 256 and 2^24).
pub const LARGE: Profile = Profile {
    name: "large",
    max_elems: 1 << 25,
    ops: (1, 3),
    extents: SMALL_EXTENTS,
    max_rank: 3,
    trip_counts: &[1, 61, 65, 1000, 70000],
    max_loop_work: 20_000_000,
    big_counts: BIG_COUNTS,
};

/// The profile called `name` (`ci`, `small`, `large`).
pub fn profile(name: &str) -> Option<&'static Profile> {
    match name {
        "ci" => Some(&CI),
        "small" => Some(&SMALL),
        "large" => Some(&LARGE),
        _ => None,
    }
}

/// A generated program with its inputs.
#[derive(Clone, Debug)]
pub struct Case {
    pub module: Module,
    /// One per entry parameter, in order.
    pub inputs: Vec<HostArray>,
    pub seed: u64,
    pub profile: String,
    pub data: DataKind,
    /// Also run the program rewritten into XLA-style fusions and compiled without our pipeline.
    pub direct: bool,
}

/// Generates the program for `seed`; `None` when the draw produced nothing valid (rare).
pub fn generate(seed: u64, profile: &Profile) -> Option<Case> {
    let mut g = Gen::new(seed, profile);
    let data = if g.rng.random_bool(0.3) { DataKind::Special } else { DataKind::Tame };
    g.data = data;
    g.build()?;
    // Drawn from a stream of its own, so that every other seed's program stays what it was.
    let mut side = ChaCha8Rng::seed_from_u64(seed ^ 0x7a6e_6269_7467_656e);
    let with_rng_bits = profile.name != "large" && side.random_bool(0.08);
    if with_rng_bits {
        std::mem::swap(&mut g.rng, &mut side);
        g.rng_bit_generator();
        std::mem::swap(&mut g.rng, &mut side);
    }
    let root = g.finish_root()?;
    let entry = std::mem::replace(&mut g.entry, Cb::new("unused")).finish(root);
    let module = compact(&assemble(&format!("difftest_{seed}"), std::mem::take(&mut g.comps), entry));
    if hlo_ir::verify::verify(&module).is_err() {
        return None;
    }
    let roles = g.roles_for(&module);
    let inputs = make_inputs(&module, &roles, data, seed);
    // XLA's post-optimisation form never holds `rng-bit-generator` (XLA expands it first).
    let direct = g.rng.random_bool(0.5) && !with_rng_bits;
    Some(Case { module, inputs, seed, profile: profile.name.to_string(), data, direct })
}

/// A value in the pool: an entry instruction and whether it is computed exactly.
#[derive(Clone, Copy, Debug)]
struct V {
    id: InstrId,
    exact: bool,
}

struct Gen<'p> {
    rng: ChaCha8Rng,
    p: &'p Profile,
    data: DataKind,
    comps: Vec<Computation>,
    entry: Cb,
    pool: Vec<V>,
    /// Input role of each entry parameter, by parameter number.
    roles: Vec<Role>,
    /// Complex results of the `complex` family: outputs too, kept out of the pool (the other
    /// families draw real operands from it).
    complex_outs: Vec<InstrId>,
    /// Float values that arithmetic may have turned into NaN: which NaN (sign, payload) an op
    /// returns is unspecified (IEEE 754; XLA's backends differ, and so do ours), so these go
    /// through [`Gen::with_canonical_nans`] before anything that can see NaN bits (a TOTALORDER
    /// compare, a bitcast, a TOTALORDER sort).
    nan_bits_unknown: std::collections::HashSet<InstrId>,
}

/// Element types and their weights. The 8- and 4-bit floats and the 4-bit integers are kept
/// as f32 and 32-bit words on the device and rounded or wrapped after every op, a path of
/// its own.
const FLOATS: &[(DType, u32)] = &[
    (DType::F32, 16),
    (DType::F16, 2),
    (DType::BF16, 2),
    (DType::F64, 2),
    (DType::F8E4M3FN, 1),
    (DType::F8E5M2, 1),
    (DType::F8E4M3FNUZ, 1),
    (DType::F4E2M1FN, 1),
];
const INTS: &[(DType, u32)] = &[
    (DType::S32, 8),
    (DType::U32, 2),
    (DType::S8, 2),
    (DType::U8, 2),
    (DType::S16, 2),
    (DType::U16, 2),
    (DType::S64, 2),
    (DType::U64, 2),
    (DType::S4, 1),
    (DType::U4, 1),
];

fn weighted<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|x| x.1).sum();
    let mut r = rng.random_range(0..total);
    for &(item, w) in items {
        if r < w {
            return item;
        }
        r -= w;
    }
    items[0].0
}

fn elems(dims: &[i64]) -> u64 {
    dims.iter().map(|&d| d.max(0) as u64).product()
}

fn arr(shape: &Shape) -> ArrayShape {
    shape.as_array().cloned().unwrap_or_else(|| ArrayShape::scalar(DType::F32))
}

/// A scalar literal of `dtype` holding `x` (converted as `as` would).
pub(crate) fn scalar_literal(dtype: DType, x: f64) -> Literal {
    let data = match dtype {
        DType::Pred => ArrayData::Pred(vec![x != 0.0]),
        DType::S8 => ArrayData::S8(vec![x as i8]),
        DType::S16 => ArrayData::S16(vec![x as i16]),
        DType::S32 => ArrayData::S32(vec![x as i32]),
        DType::S64 => ArrayData::S64(vec![x as i64]),
        DType::U8 => ArrayData::U8(vec![x as u8]),
        DType::U16 => ArrayData::U16(vec![x as u16]),
        DType::U32 => ArrayData::U32(vec![x as u32]),
        DType::U64 => ArrayData::U64(vec![x as u64]),
        DType::F16 => ArrayData::F16(vec![half::f16::from_f64(x)]),
        DType::BF16 => ArrayData::BF16(vec![half::bf16::from_f64(x)]),
        DType::F64 => ArrayData::F64(vec![x]),
        DType::S2 | DType::S4 => ArrayData::S8(vec![wrap_signed(x as i64, dtype.bit_width()) as i8]),
        DType::U2 | DType::U4 => ArrayData::U8(vec![(x as i64 as u8) & ((1 << dtype.bit_width()) - 1)]),
        d => match hlo_ir::print::MiniFloat::of(d) {
            Some(format) => ArrayData::Bits(vec![hlo_parse::encode_minifloat(format, x)]),
            None => ArrayData::F32(vec![x as f32]),
        },
    };
    Literal::array(ArrayShape::scalar(dtype), data)
}

/// Infinity, or the largest finite value of a float type without infinities (the 8- and
/// 4-bit `fn`/`fnuz` types, where infinity converts to NaN or saturates), as a max or min
/// reduction's identity.
fn float_max(dtype: DType) -> f64 {
    match hlo_ir::print::MiniFloat::of(dtype) {
        Some(format) if format.kind != hlo_ir::print::MiniFloatKind::Ieee => {
            (0..=255u8).map(|b| format.to_f64(b)).filter(|x| x.is_finite()).fold(0.0, f64::max)
        }
        _ => f64::INFINITY,
    }
}

/// `v` wrapped to a signed integer of `bits` bits.
fn wrap_signed(v: i64, bits: u32) -> i64 {
    let shift = 64 - bits;
    (v << shift) >> shift
}

/// The lowest and highest value of an integer type, as f64 (exact for up to 53 bits; the
/// 64-bit extremes round, which `as` then saturates back to the extreme).
fn int_range(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::S8 => (i8::MIN as f64, i8::MAX as f64),
        DType::S16 => (i16::MIN as f64, i16::MAX as f64),
        DType::S32 => (i32::MIN as f64, i32::MAX as f64),
        DType::S64 => (i64::MIN as f64, i64::MAX as f64),
        DType::U8 => (0.0, u8::MAX as f64),
        DType::U16 => (0.0, u16::MAX as f64),
        DType::U32 => (0.0, u32::MAX as f64),
        DType::U64 => (0.0, u64::MAX as f64),
        DType::S2 | DType::S4 => {
            (-(2f64.powi(dtype.bit_width() as i32 - 1)), 2f64.powi(dtype.bit_width() as i32 - 1) - 1.0)
        }
        DType::U2 | DType::U4 => (0.0, 2f64.powi(dtype.bit_width() as i32) - 1.0),
        _ => (0.0, 1.0),
    }
}

/// Reducer kinds: the binary op and its identity.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Red {
    Add,
    Mul,
    Max,
    Min,
    And,
    Or,
}

impl Red {
    fn op(self) -> BinaryOp {
        match self {
            Red::Add => BinaryOp::Add,
            Red::Mul => BinaryOp::Multiply,
            Red::Max => BinaryOp::Maximum,
            Red::Min => BinaryOp::Minimum,
            Red::And => BinaryOp::And,
            Red::Or => BinaryOp::Or,
        }
    }

    fn identity(self, dtype: DType) -> f64 {
        let (lo, hi) = int_range(dtype);
        match (self, dtype.is_float(), dtype == DType::Pred) {
            (Red::Add | Red::Or, ..) => 0.0,
            (Red::Mul, ..) => 1.0,
            (Red::And, _, true) => 1.0,
            (Red::And, ..) => hi,
            (Red::Max, true, _) => -float_max(dtype),
            (Red::Min, true, _) => float_max(dtype),
            (Red::Max, _, true) => 0.0,
            (Red::Min, _, true) => 1.0,
            (Red::Max, ..) => lo,
            (Red::Min, ..) => hi,
        }
    }

    /// Whether reducing more than one float element with it rounds in an order-dependent way.
    fn reassociates(self, dtype: DType) -> bool {
        dtype.is_float() && matches!(self, Red::Add | Red::Mul)
    }
}

impl<'p> Gen<'p> {
    fn new(seed: u64, p: &'p Profile) -> Gen<'p> {
        Gen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            p,
            data: DataKind::Tame,
            comps: Vec::new(),
            entry: Cb::new("main"),
            pool: Vec::new(),
            roles: Vec::new(),
            complex_outs: Vec::new(),
            nan_bits_unknown: Default::default(),
        }
    }

    // ---- basics ---------------------------------------------------------------------------

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn shape_of(&self, id: InstrId) -> ArrayShape {
        arr(self.entry.shape(id))
    }

    fn op(&mut self, op: Op, operands: &[InstrId], declared: Option<Shape>) -> Option<InstrId> {
        // Ops that move or pick values keep their NaN bits; `negate` and `abs` set the sign bit
        // the same way everywhere; a bitcast from an integer makes known bits.
        let keeps_nan_bits = matches!(
            op,
            Op::Parameter { .. }
                | Op::Constant(_)
                | Op::Reshape
                | Op::Bitcast
                | Op::Copy
                | Op::Transpose { .. }
                | Op::Broadcast { .. }
                | Op::Slice { .. }
                | Op::Reverse { .. }
                | Op::Concatenate { .. }
                | Op::Pad { .. }
                | Op::Select
                | Op::DynamicSlice { .. }
                | Op::DynamicUpdateSlice
                | Op::Gather { .. }
                | Op::Tuple
                | Op::GetTupleElement { .. }
                | Op::Sort { .. }
                | Op::BitcastConvert
                | Op::Unary(UnaryOp::Negate | UnaryOp::Abs)
        );
        let id = self.entry.push(&self.comps, op, operands, declared).ok()?;
        let float = match self.entry.shape(id) {
            Shape::Array(a) => a.dtype.is_float(),
            _ => true,
        };
        if float && (!keeps_nan_bits || operands.iter().any(|o| self.nan_bits_unknown.contains(o))) {
            self.nan_bits_unknown.insert(id);
        }
        Some(id)
    }

    /// `x` with every NaN replaced by the canonical +NaN where arithmetic may have made it
    /// (`select(x != x, nan, x)`), so that its NaN bits are the same on every backend.
    fn with_canonical_nans(&mut self, x: InstrId) -> Option<InstrId> {
        if !self.nan_bits_unknown.contains(&x) {
            return Some(x);
        }
        let s = self.shape_of(x);
        let ne = Op::Compare { direction: CompareDirection::Ne, compare_type: None };
        let is_nan = self.op(ne, &[x, x], None)?;
        let nan = self.constant(s.dtype, f64::NAN);
        let nans = self.op(Op::Broadcast { dimensions: vec![] }, &[nan], Some(Shape::Array(s)))?;
        self.op(Op::Select, &[is_nan, nans, x], None)
    }

    fn add_comp(&mut self, comp: Computation) -> CompId {
        self.comps.push(comp);
        CompId(self.comps.len() as u32 - 1)
    }

    fn param(&mut self, shape: ArrayShape, role: Role) -> V {
        let id = self.entry.param(Shape::Array(shape));
        self.roles.push(role);
        V { id, exact: true }
    }

    fn constant(&mut self, dtype: DType, x: f64) -> InstrId {
        let lit = scalar_literal(dtype, x);
        self.op(Op::Constant(Box::new(lit)), &[], None).expect("a scalar constant is valid")
    }

    fn pick_dtype(&mut self) -> DType {
        match self.rng.random_range(0..20) {
            0..=10 => weighted(&mut self.rng, FLOATS),
            11..=17 => weighted(&mut self.rng, INTS),
            _ => DType::Pred,
        }
    }

    fn pick_extent(&mut self) -> i64 {
        // Favour the small extents: most bugs show at the first threshold.
        let n = self.p.extents.len();
        let k = self.rng.random_range(0..n);
        let k = if self.chance(0.5) { k.min(self.rng.random_range(0..n)) } else { k };
        self.p.extents[k]
    }

    fn pick_dims(&mut self, rank: usize) -> Vec<i64> {
        let mut dims: Vec<i64> = (0..rank).map(|_| self.pick_extent()).collect();
        while elems(&dims) > self.p.max_elems {
            let (i, _) = dims.iter().enumerate().max_by_key(|(_, &d)| d).expect("rank > 0 when too big");
            let smaller: Vec<i64> = self.p.extents.iter().copied().filter(|&e| e < dims[i]).collect();
            dims[i] = *smaller.choose(&mut self.rng).unwrap_or(&1);
        }
        dims
    }

    fn pick_rank(&mut self) -> usize {
        let r = self.rng.random_range(0..=self.p.max_rank);
        if self.chance(0.4) {
            r.min(self.rng.random_range(1..=self.p.max_rank))
        } else {
            r
        }
    }

    /// A value from the pool (recent ones first), if any passes `ok`.
    fn pick(&mut self, ok: impl Fn(&ArrayShape, bool) -> bool) -> Option<V> {
        let cands: Vec<V> = self.pool.iter().copied().filter(|v| ok(&arr(self.entry.shape(v.id)), v.exact)).collect();
        if cands.is_empty() {
            return None;
        }
        if self.chance(0.6) {
            let k = cands.len().saturating_sub(3);
            return cands[k..].choose(&mut self.rng).copied();
        }
        cands.choose(&mut self.rng).copied()
    }

    /// An operand of exactly `shape`: from the pool, converted from a pool value of the same
    /// dimensions, a broadcast scalar, or a new parameter.
    fn operand_like(&mut self, shape: &ArrayShape, need_exact: bool) -> V {
        let same = self.pick(|s, e| s.compatible(shape) && (e || !need_exact));
        if let (Some(v), true) = (same, self.chance(0.5)) {
            return v;
        }
        match self.rng.random_range(0..10) {
            0..=1 => {
                let c = self.random_constant(shape.dtype);
                let id = self.op(
                    Op::Broadcast { dimensions: vec![] },
                    &[c],
                    Some(Shape::Array(ArrayShape::new(shape.dtype, shape.dims.clone()))),
                );
                match id {
                    Some(id) => V { id, exact: true },
                    None => self.param(shape.clone(), Role::Data),
                }
            }
            2..=3 => {
                let src = self.pick(|s, e| s.same_dims(shape) && s.dtype != shape.dtype && (e || !need_exact));
                match src {
                    Some(src) if !(self.shape_of(src.id).dtype.is_float() && !src.exact && !shape.dtype.is_float()) => {
                        match self.op(Op::Convert, &[src.id], Some(Shape::Array(shape.clone()))) {
                            Some(id) => V { id, exact: src.exact },
                            None => self.param(shape.clone(), Role::Data),
                        }
                    }
                    _ => self.param(shape.clone(), Role::Data),
                }
            }
            _ => self.param(shape.clone(), Role::Data),
        }
    }

    fn random_constant(&mut self, dtype: DType) -> InstrId {
        let x = if dtype.is_float() {
            *[0.0, 1.0, -1.0, 0.5, 2.0, -0.0, 3.25, 1e-3, 100.0].choose(&mut self.rng).expect("non-empty")
        } else if dtype == DType::Pred {
            self.rng.random_range(0..2) as f64
        } else {
            let (lo, hi) = int_range(dtype);
            *[0.0, 1.0, 2.0, 7.0, lo, hi, -1.0, 3.0].choose(&mut self.rng).expect("non-empty")
        };
        self.constant(dtype, x)
    }

    fn push_val(&mut self, id: Option<InstrId>, exact: bool) -> Option<V> {
        let v = V { id: id?, exact };
        self.pool.push(v);
        Some(v)
    }

    // ---- the program ----------------------------------------------------------------------

    fn build(&mut self) -> Option<()> {
        if !self.p.big_counts.is_empty() && self.p.name == "large" {
            return self.build_large();
        }
        let n_params = self.rng.random_range(1..=2);
        for _ in 0..n_params {
            let dtype = self.pick_dtype();
            let rank = self.pick_rank();
            let dims = self.pick_dims(rank);
            let v = self.param(ArrayShape::new(dtype, dims), Role::Data);
            self.pool.push(v);
        }
        let n_ops = self.rng.random_range(self.p.ops.0..=self.p.ops.1);
        let mut made = 0;
        let mut tries = 0;
        while made < n_ops && tries < n_ops * 8 {
            tries += 1;
            if self.step().is_some() {
                made += 1;
            }
        }
        (made > 0).then_some(())
    }

    /// Few ops on one array whose element count sits at a grid or loop limit.
    fn build_large(&mut self) -> Option<()> {
        let n = *self.p.big_counts.choose(&mut self.rng)?;
        let dims = match self.rng.random_range(0..4) {
            0 if n % 256 == 0 => vec![n / 256, 256],
            1 if n % 2 == 0 => vec![2, n / 2],
            2 if n == 16_777_216 => vec![4096, 4096],
            _ => vec![n],
        };
        let dtype = if self.chance(0.7) { DType::F32 } else { DType::S32 };
        let x = self.param(ArrayShape::new(dtype, dims), Role::Data);
        self.pool.push(x);
        let steps = self.rng.random_range(1..=self.p.ops.1);
        for _ in 0..steps {
            let v = *self.pool.last()?;
            match self.rng.random_range(0..6) {
                0 => self.unary(v),
                1 => self.binary(v),
                2 | 3 => self.reduce(v),
                4 => self.argmax(v),
                _ => self.dot_long(v),
            };
        }
        Some(())
    }

    /// One random op; `None` if the draw did not fit the pool.
    fn step(&mut self) -> Option<V> {
        let x = self.pick(|_, _| true)?;
        let family = weighted(
            &mut self.rng,
            &[
                ("unary", 10),
                ("binary", 12),
                ("compare", 4),
                ("select", 3),
                ("clamp", 2),
                ("convert", 5),
                ("bitcast-convert", 2),
                ("broadcast", 5),
                ("reshape", 5),
                ("bitcast", 3),
                ("transpose", 4),
                ("slice", 4),
                ("pad", 3),
                ("concatenate", 3),
                ("reverse", 2),
                ("iota", 2),
                ("dynamic-slice", 3),
                ("dynamic-update-slice", 3),
                ("gather", 3),
                ("scatter", 3),
                ("reduce", 8),
                ("argmax", 2),
                ("reduce-window", 3),
                ("cumsum", 1),
                ("dot", 6),
                ("dot-view", 3),
                ("convolution", 2),
                ("sort", 2),
                ("while", 3),
                ("fori", 2),
                ("while-data", 2),
                ("conditional", 2),
                ("converge", 2),
                ("dot-long", 1),
                ("complex", 4),
            ],
        );
        match family {
            "unary" => self.unary(x),
            "binary" => self.binary(x),
            "compare" => self.compare(x),
            "select" => self.select(x),
            "clamp" => self.clamp(x),
            "convert" => self.convert(x),
            "bitcast-convert" => self.bitcast_convert(x),
            "broadcast" => self.broadcast(x),
            "reshape" => self.reshape(x, false),
            "bitcast" => self.reshape(x, true),
            "transpose" => self.transpose(x),
            "slice" => self.slice(x),
            "pad" => self.pad(x),
            "concatenate" => self.concatenate(x),
            "reverse" => self.reverse(x),
            "iota" => self.iota(),
            "dynamic-slice" => self.dynamic_slice(x),
            "dynamic-update-slice" => self.dynamic_update_slice(x),
            "gather" => self.gather(x),
            "scatter" => self.scatter(x),
            "reduce" => self.reduce(x),
            "argmax" => self.argmax(x),
            "reduce-window" => self.reduce_window(x, false),
            "cumsum" => self.reduce_window(x, true),
            "dot" => self.dot(x),
            "dot-view" => self.dot_view(),
            "convolution" => self.convolution(),
            "sort" => self.sort(x),
            "while" => self.while_loop(x, false),
            "while-data" => self.while_loop(x, true),
            "fori" => self.fori(),
            "conditional" => self.conditional(x),
            "converge" => self.converge_loop(x),
            "complex" => self.complex_chain(x),
            _ => self.dot_long(x),
        }
    }

    /// The root: the last value, sometimes with one or two others, as a tuple when more than one.
    fn finish_root(&mut self) -> Option<InstrId> {
        let last = *self.pool.last()?;
        let mut outs = vec![last.id];
        if let Some(&z) = self.complex_outs.last() {
            if self.chance(0.5) {
                outs.push(z);
            }
        }
        let extra = self.rng.random_range(0..3);
        for _ in 0..extra {
            if let Some(v) = self.pool.choose(&mut self.rng).copied() {
                if !outs.contains(&v.id) {
                    outs.push(v.id);
                }
            }
        }
        if outs.len() == 1 && !matches!(self.entry.shape(outs[0]), Shape::Tuple(_)) {
            return Some(outs[0]);
        }
        self.op(Op::Tuple, &outs, None)
    }

    fn roles_for(&self, module: &Module) -> Vec<Role> {
        let n = module.entry_comp().params.len();
        (0..n).map(|i| self.roles.get(i).cloned().unwrap_or(Role::Data)).collect()
    }

    // ---- complex --------------------------------------------------------------------------

    /// A complex number built from `x` (an f32 or f64 value) or read from a complex parameter,
    /// a chain of 1-4 complex ops on it (arithmetic, transcendental functions, data movement,
    /// reductions, dots, fft), then its real part, imaginary part or magnitude into the pool;
    /// the complex value itself may become an output. Exercises `lower-complex` (the device) against
    /// the interpreter's native complex arithmetic.
    ///
    /// `complex(x, x)` is never built: XLA:CPU's LLVM merges the products a complex multiply
    /// then makes of the one value (`a c` and `b c` with `a` and `b` both `x`), which leaves them
    /// unfused, where the interpreter models each product fused into its sum as LLVM fuses
    /// distinct ones; the two differ at cancellations and infinities (difftest seeds 197140,
    /// 218674: JAX gives `-inf+nanj` where the fused model gives `-inf-infj`).
    fn complex_chain(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        let cdt = match s.dtype {
            DType::F32 => DType::C64,
            DType::F64 => DType::C128,
            _ => return None,
        };
        let cshape = s.with_dtype(cdt);
        let mut z = if self.chance(0.3) {
            self.param(cshape.clone(), Role::Data).id
        } else {
            let mut y = self.operand_like(&s, false);
            if y.id == x.id {
                y = self.param(s.clone(), Role::Data);
            }
            self.op(Op::Binary(BinaryOp::Complex), &[x.id, y.id], None)?
        };
        let mut exact = false;
        for _ in 0..self.rng.random_range(1..=4) {
            let zs = self.shape_of(z);
            let next = match self.rng.random_range(0..12) {
                0 => {
                    let u = *[UnaryOp::Negate, UnaryOp::Exp, UnaryOp::Log, UnaryOp::Sqrt, UnaryOp::Sign]
                        .choose(&mut self.rng)?;
                    self.op(Op::Unary(u), &[z], None)
                }
                1..=3 => {
                    let b = *[BinaryOp::Add, BinaryOp::Subtract, BinaryOp::Multiply, BinaryOp::Divide, BinaryOp::Power]
                        .choose(&mut self.rng)?;
                    let w = self.complex_like(&zs)?;
                    let (a, c) = if self.chance(0.5) { (z, w) } else { (w, z) };
                    self.op(Op::Binary(b), &[a, c], None)
                }
                4 if zs.rank() >= 2 => {
                    let mut perm: Vec<i64> = (0..zs.rank() as i64).collect();
                    perm.shuffle_in_place(&mut self.rng);
                    self.op(Op::Transpose { dimensions: perm }, &[z], None)
                }
                5 if zs.rank() >= 1 => {
                    let dims = zs.dims.iter().map(|&d| {
                        let start = self.rng.random_range(0..d.max(1));
                        SliceDim { start: start.min(d), limit: d, stride: if self.chance(0.3) { 2 } else { 1 } }
                    });
                    let dims: Vec<SliceDim> = dims.collect();
                    self.op(Op::Slice { dims }, &[z], None)
                }
                6 if zs.rank() < self.p.max_rank => {
                    let e = self.pick_extent().min(64);
                    let mut dims = vec![e];
                    dims.extend(&zs.dims);
                    if elems(&dims) > self.p.max_elems {
                        continue;
                    }
                    let dimensions: Vec<i64> = (1..=zs.rank() as i64).collect();
                    self.op(Op::Broadcast { dimensions }, &[z], Some(Shape::Array(ArrayShape::new(cdt, dims))))
                }
                7 if zs.rank() >= 1 => {
                    let add = self.complex_add(cdt);
                    let zero = self.complex_constant(cdt, 0.0, 0.0);
                    let d = self.rng.random_range(0..zs.rank() as i64);
                    self.op(Op::Reduce { dimensions: vec![d], to_apply: add }, &[z, zero], None)
                }
                8 if zs.rank() >= 1 => {
                    let k = *zs.dims.last()?;
                    let n = self.pick_extent().min(48);
                    let w = self.complex_like(&ArrayShape::new(cdt, vec![k, n]))?;
                    let dims = DotDims {
                        lhs_batch: vec![],
                        lhs_contracting: vec![zs.rank() as i64 - 1],
                        rhs_batch: vec![],
                        rhs_contracting: vec![0],
                    };
                    self.op(Op::Dot { dims, precision: vec![], algorithm: None }, &[z, w], None)
                }
                9 if zs.rank() >= 1 && *zs.dims.last()? <= 300 && *zs.dims.last()? >= 1 => {
                    let rank = if zs.rank() >= 2 && self.chance(0.3) { 2 } else { 1 };
                    let fft_length = zs.dims[zs.rank() - rank..].to_vec();
                    let fft_type = if self.chance(0.5) { FftType::Fft } else { FftType::Ifft };
                    self.op(Op::Fft { fft_type, fft_length }, &[z], None)
                }
                10 => {
                    let p = self.operand_like(&zs.with_dtype(DType::Pred), true);
                    let w = self.complex_like(&zs)?;
                    self.op(Op::Select, &[p.id, z, w], None)
                }
                11 if zs.rank() >= 1 => self.op(Op::Reverse { dimensions: vec![0] }, &[z], None),
                _ => None,
            };
            if let Some(n) = next {
                z = n;
                exact = false;
            }
        }
        if self.chance(0.4) {
            self.complex_outs.push(z);
        }
        let out = *[UnaryOp::Real, UnaryOp::Imag, UnaryOp::Abs].choose(&mut self.rng)?;
        let id = self.op(Op::Unary(out), &[z], None);
        self.push_val(id, exact)
    }

    /// A complex operand of `shape`: `complex(a, b)` of real pool values or parameters, a
    /// complex parameter, or a broadcast constant.
    fn complex_like(&mut self, shape: &ArrayShape) -> Option<InstrId> {
        let part = shape.with_dtype(shape.dtype.complex_component()?);
        match self.rng.random_range(0..4) {
            0 => Some(self.param(shape.clone(), Role::Data).id),
            1 => {
                let (re, im) =
                    (*[0.5, -2.0, 0.0, 1.0].choose(&mut self.rng)?, *[0.25, 0.0, -1.0].choose(&mut self.rng)?);
                let c = self.complex_constant(shape.dtype, re, im);
                self.op(Op::Broadcast { dimensions: vec![] }, &[c], Some(Shape::Array(shape.clone())))
            }
            _ => {
                let a = self.operand_like(&part, false);
                let mut b = self.operand_like(&part, false);
                if b.id == a.id {
                    b = self.param(part.clone(), Role::Data);
                }
                self.op(Op::Binary(BinaryOp::Complex), &[a.id, b.id], None)
            }
        }
    }

    fn complex_constant(&mut self, dtype: DType, re: f64, im: f64) -> InstrId {
        let data = match dtype {
            DType::C128 => ArrayData::C128(vec![[re, im]]),
            _ => ArrayData::C64(vec![[re as f32, im as f32]]),
        };
        let lit = Literal::array(ArrayShape::scalar(dtype), data);
        self.op(Op::Constant(Box::new(lit)), &[], None).expect("a scalar constant is valid")
    }

    /// `(x, y) -> x + y` on complex scalars.
    fn complex_add(&mut self, dtype: DType) -> CompId {
        self.reducer(Red::Add, dtype)
    }

    // ---- elementwise ----------------------------------------------------------------------

    fn unary(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        let dt = s.dtype;
        use UnaryOp as U;
        let (op, exact, needs_exact) = if dt.is_float() {
            let op = *[
                U::Abs,
                U::Negate,
                U::Exp,
                U::Log,
                U::Sqrt,
                U::Rsqrt,
                U::Tanh,
                U::Logistic,
                U::Sin,
                U::Cos,
                U::Tan,
                U::Floor,
                U::Ceil,
                U::RoundNearestAfz,
                U::RoundNearestEven,
                U::Sign,
                U::Expm1,
                U::Log1p,
                U::Atan,
                U::Erf,
                U::Cbrt,
                U::IsFinite,
                U::Acos,
                U::Asin,
                U::Acosh,
                U::Asinh,
                U::Atanh,
                U::Cosh,
                U::Sinh,
            ]
            .choose(&mut self.rng)?;
            let discontinuous =
                matches!(op, U::Floor | U::Ceil | U::RoundNearestAfz | U::RoundNearestEven | U::Sign | U::IsFinite);
            let exact_op = discontinuous || matches!(op, U::Abs | U::Negate);
            (op, exact_op && x.exact, discontinuous)
        } else if dt == DType::Pred {
            (U::Not, true, false)
        } else {
            let ops: &[U] = if dt.is_signed_integer() {
                &[U::Abs, U::Negate, U::Not, U::PopulationCount, U::Clz, U::Sign]
            } else {
                &[U::Not, U::PopulationCount, U::Clz, U::Negate]
            };
            (*ops.choose(&mut self.rng)?, true, false)
        };
        if needs_exact && !x.exact {
            return None;
        }
        let id = self.op(Op::Unary(op), &[x.id], None);
        self.push_val(id, exact)
    }

    fn binary(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        let dt = s.dtype;
        use BinaryOp as B;
        let (op, exact_op, needs_exact) = if dt.is_float() {
            let op = *[
                B::Add,
                B::Add,
                B::Subtract,
                B::Multiply,
                B::Multiply,
                B::Divide,
                B::Remainder,
                B::Maximum,
                B::Minimum,
                B::Power,
                B::Atan2,
            ]
            .choose(&mut self.rng)?;
            let exact_op = matches!(op, B::Add | B::Subtract | B::Multiply | B::Maximum | B::Minimum | B::Remainder);
            (op, exact_op, op == B::Remainder)
        } else if dt == DType::Pred {
            (*[B::And, B::Or, B::Xor, B::Maximum, B::Minimum].choose(&mut self.rng)?, true, false)
        } else {
            let op = *[
                B::Add,
                B::Subtract,
                B::Multiply,
                B::Divide,
                B::Remainder,
                B::Maximum,
                B::Minimum,
                B::And,
                B::Or,
                B::Xor,
                B::ShiftLeft,
                B::ShiftRightArithmetic,
                B::ShiftRightLogical,
            ]
            .choose(&mut self.rng)?;
            (op, true, false)
        };
        if needs_exact && !x.exact {
            return None;
        }
        let y = self.operand_like(&s, needs_exact);
        let (a, b) = if self.chance(0.5) { (x, y) } else { (y, x) };
        let id = self.op(Op::Binary(op), &[a.id, b.id], None);
        self.push_val(id, exact_op && a.exact && b.exact)
    }

    fn compare(&mut self, x: V) -> Option<V> {
        if !x.exact {
            return None;
        }
        let s = self.shape_of(x.id);
        let y = self.operand_like(&s, true);
        use CompareDirection as D;
        let direction = *[D::Eq, D::Ne, D::Lt, D::Le, D::Gt, D::Ge].choose(&mut self.rng)?;
        let compare_type = if s.dtype.is_float() && self.chance(0.3) { Some(CompareType::TotalOrder) } else { None };
        let (a, b) = if compare_type.is_some() {
            (self.with_canonical_nans(x.id)?, self.with_canonical_nans(y.id)?)
        } else {
            (x.id, y.id)
        };
        let id = self.op(Op::Compare { direction, compare_type }, &[a, b], None);
        self.push_val(id, true)
    }

    fn select(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        let pshape = s.with_dtype(DType::Pred);
        let pred = self.operand_like(&pshape, true);
        let y = self.operand_like(&s, false);
        let id = self.op(Op::Select, &[pred.id, x.id, y.id], None);
        self.push_val(id, x.exact && y.exact)
    }

    fn clamp(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        if s.dtype == DType::Pred {
            return None;
        }
        let (lo, hi) = if self.chance(0.5) {
            let (a, b) = if s.dtype.is_float() { (-0.5, 1.5) } else { (0.0, 5.0) };
            (self.constant(s.dtype, a), self.constant(s.dtype, b))
        } else {
            (self.operand_like(&s, false).id, self.operand_like(&s, false).id)
        };
        let id = self.op(Op::Clamp, &[lo, x.id, hi], None);
        let exact = x.exact && [lo, hi].iter().all(|&i| self.pool.iter().all(|v| v.id != i || v.exact));
        self.push_val(id, exact)
    }

    fn convert(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        let to = self.pick_dtype();
        if to == s.dtype || (s.dtype.is_float() && !to.is_float() && !x.exact) {
            return None;
        }
        let id = self.op(Op::Convert, &[x.id], Some(Shape::Array(s.with_dtype(to))));
        self.push_val(id, x.exact)
    }

    fn bitcast_convert(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        if !x.exact {
            return None;
        }
        let same_width: Vec<DType> = FLOATS
            .iter()
            .chain(INTS)
            .map(|&(d, _)| d)
            // The device keeps 8- and 4-bit floats as f32 values, not bits: no bitcasts of them.
            .filter(|&d| d != s.dtype && d.bit_width() == s.dtype.bit_width() && s.dtype != DType::Pred)
            .filter(|&d| d.bit_width() >= 16 || !(d.is_float() || s.dtype.is_float()))
            .collect();
        let to = *same_width.choose(&mut self.rng)?;
        let from = self.with_canonical_nans(x.id)?;
        let id = self.op(Op::BitcastConvert, &[from], Some(Shape::Array(s.with_dtype(to))));
        self.push_val(id, true)
    }

    // ---- shape ops ------------------------------------------------------------------------

    fn broadcast(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        let extra = self.rng.random_range(1..=2);
        if s.rank() + extra > self.p.max_rank {
            return None;
        }
        let out_rank = s.rank() + extra;
        let mut positions: Vec<usize> = (0..out_rank).collect();
        positions.shuffle_in_place(&mut self.rng);
        let mut kept: Vec<usize> = positions[..s.rank()].to_vec();
        kept.sort();
        let mut dims = vec![0i64; out_rank];
        for (i, &p) in kept.iter().enumerate() {
            dims[p] = s.dims[i];
        }
        for (d, dim) in dims.iter_mut().enumerate() {
            if !kept.contains(&d) {
                *dim = self.pick_extent();
            }
        }
        if elems(&dims) > self.p.max_elems {
            return None;
        }
        let dimensions = kept.iter().map(|&k| k as i64).collect();
        let id = self.op(Op::Broadcast { dimensions }, &[x.id], Some(Shape::array(s.dtype, dims)));
        self.push_val(id, x.exact)
    }

    fn factorize(&mut self, n: i64, rank: usize) -> Vec<i64> {
        let mut dims = vec![1i64; rank.max(1)];
        let mut rest = n;
        for dim in dims.iter_mut().take(rank.saturating_sub(1)) {
            let divisors: Vec<i64> = (1..=rest.min(4096)).filter(|k| rest % k == 0).collect();
            let k = *divisors.choose(&mut self.rng).unwrap_or(&1);
            *dim = k;
            rest /= k;
        }
        if rank == 0 {
            return Vec::new();
        }
        dims[rank - 1] = rest;
        dims.shuffle_in_place(&mut self.rng);
        dims
    }

    fn reshape(&mut self, x: V, bitcast: bool) -> Option<V> {
        let s = self.shape_of(x.id);
        let n = elems(&s.dims) as i64;
        let rank = if n == 1 { self.rng.random_range(0..=2) } else { self.rng.random_range(1..=self.p.max_rank) };
        let dims = self.factorize(n, rank);
        let op = if bitcast { Op::Bitcast } else { Op::Reshape };
        let id = self.op(op, &[x.id], Some(Shape::array(s.dtype, dims)));
        self.push_val(id, x.exact)
    }

    fn transpose(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        if s.rank() < 2 {
            return None;
        }
        let mut perm: Vec<i64> = (0..s.rank() as i64).collect();
        perm.shuffle_in_place(&mut self.rng);
        let id = self.op(Op::Transpose { dimensions: perm }, &[x.id], None);
        self.push_val(id, x.exact)
    }

    fn slice(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        if s.rank() == 0 {
            return None;
        }
        let dims = s
            .dims
            .iter()
            .map(|&d| {
                let start = self.rng.random_range(0..d.max(1));
                let limit = self.rng.random_range(start + 1..=d.max(start + 1));
                let stride = *[1, 1, 1, 2, 3, 7].choose(&mut self.rng).expect("non-empty");
                SliceDim { start, limit: limit.min(d), stride }
            })
            .collect();
        let id = self.op(Op::Slice { dims }, &[x.id], None);
        self.push_val(id, x.exact)
    }

    fn pad(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        // A rank-0 pad prints as `padding=`, which the parser does not read back.
        if s.rank() == 0 {
            return None;
        }
        let mut dims = Vec::new();
        let mut out = Vec::new();
        for &d in &s.dims {
            let interior = *[0, 0, 0, 1, 2].choose(&mut self.rng)?;
            let low = self.rng.random_range(-2..=3);
            let high = self.rng.random_range(-2..=3);
            let size = low + high + d + (d - 1).max(0) * interior;
            if size < 1 {
                return None;
            }
            dims.push(PadDim { low, high, interior });
            out.push(size);
        }
        if elems(&out) > self.p.max_elems {
            return None;
        }
        let value = self.random_constant(s.dtype);
        let id = self.op(Op::Pad { dims }, &[x.id, value], None);
        self.push_val(id, x.exact)
    }

    fn concatenate(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        if s.rank() == 0 {
            return None;
        }
        let dim = self.rng.random_range(0..s.rank());
        let mut operands = vec![x];
        let mut total = s.dims[dim];
        for _ in 0..self.rng.random_range(1..=2) {
            let mut dims = s.dims.clone();
            dims[dim] = self.pick_extent();
            total += dims[dim];
            let shape = ArrayShape::new(s.dtype, dims);
            let v = self.operand_like(&shape, false);
            operands.push(v);
        }
        let mut out = s.dims.clone();
        out[dim] = total;
        if elems(&out) > self.p.max_elems {
            return None;
        }
        operands.shuffle_in_place(&mut self.rng);
        let ids: Vec<InstrId> = operands.iter().map(|v| v.id).collect();
        let id = self.op(Op::Concatenate { dimension: dim as i64 }, &ids, None);
        self.push_val(id, operands.iter().all(|v| v.exact))
    }

    fn reverse(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        let dimensions: Vec<i64> = (0..s.rank() as i64).filter(|_| self.rng.random_bool(0.6)).collect();
        let id = self.op(Op::Reverse { dimensions }, &[x.id], None);
        self.push_val(id, x.exact)
    }

    fn iota(&mut self) -> Option<V> {
        let rank = self.rng.random_range(1..=self.p.max_rank);
        let dims = self.pick_dims(rank);
        let dtype = *[DType::S32, DType::S32, DType::F32, DType::U32, DType::F16, DType::S64].choose(&mut self.rng)?;
        let dimension = self.rng.random_range(0..rank) as i64;
        let id = self.op(Op::Iota { dimension }, &[], Some(Shape::array(dtype, dims)));
        self.push_val(id, true)
    }

    /// `rng-bit-generator` on a new `u64[2..=4]` state parameter: its integer bits (exact) join the pool.
    fn rng_bit_generator(&mut self) -> Option<V> {
        let n_state = self.rng.random_range(2..=4);
        let state_shape = ArrayShape::new(DType::U64, vec![n_state]);
        let state = self.param(state_shape.clone(), Role::Data);
        let algorithm = *[RngAlgorithm::ThreeFry, RngAlgorithm::Philox, RngAlgorithm::Default].choose(&mut self.rng)?;
        let dtype = *[DType::U32, DType::U32, DType::S32, DType::U64, DType::S64, DType::U8, DType::S16]
            .choose(&mut self.rng)?;
        let rank = self.pick_rank();
        let dims = self.pick_dims(rank);
        let shape = Shape::Tuple(vec![Shape::Array(state_shape), Shape::array(dtype, dims)]);
        let res = self.op(Op::RngBitGenerator { algorithm }, &[state.id], Some(shape))?;
        let new_state = self.op(Op::GetTupleElement { index: 0 }, &[res], None);
        self.push_val(new_state, true)?;
        let bits = self.op(Op::GetTupleElement { index: 1 }, &[res], None);
        self.push_val(bits, true)
    }

    /// One `s32[]` start index for a dimension of extent `dim` that keeps slices of `size`:
    /// a constant or a parameter, often out of range (XLA clamps it).
    fn start_index(&mut self, dim: i64, size: i64) -> InstrId {
        let hi = dim - size;
        if self.chance(0.5) {
            let x = *[0, hi, hi + 1, hi + 5, -1, -7, hi / 2].choose(&mut self.rng).expect("non-empty");
            self.constant(DType::S32, x as f64)
        } else {
            let dtype = if self.chance(0.8) { DType::S32 } else { DType::S64 };
            self.param(ArrayShape::scalar(dtype), Role::Index { lo: -3, hi: hi + 3 }).id
        }
    }

    fn dynamic_slice(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        if s.rank() == 0 {
            return None;
        }
        let sizes: Vec<i64> = s.dims.iter().map(|&d| self.rng.random_range(1..=d.max(1))).collect();
        // All start indices of one dynamic-slice share a type.
        let mut starts = Vec::new();
        for (&d, &z) in s.dims.iter().zip(&sizes) {
            starts.push(self.start_index(d, z));
        }
        let starts = self.unify_index_types(starts)?;
        let mut operands = vec![x.id];
        operands.extend(starts);
        let id = self.op(Op::DynamicSlice { sizes }, &operands, None);
        self.push_val(id, x.exact)
    }

    /// Converts start indices to `s32` where they differ in type.
    fn unify_index_types(&mut self, starts: Vec<InstrId>) -> Option<Vec<InstrId>> {
        let dtypes: Vec<DType> = starts.iter().map(|&i| self.shape_of(i).dtype).collect();
        if dtypes.iter().all(|&d| d == dtypes[0]) {
            return Some(starts);
        }
        starts
            .into_iter()
            .map(|i| {
                if self.shape_of(i).dtype == DType::S32 {
                    Some(i)
                } else {
                    self.op(Op::Convert, &[i], Some(Shape::scalar(DType::S32)))
                }
            })
            .collect()
    }

    fn dynamic_update_slice(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        if s.rank() == 0 {
            return None;
        }
        let sizes: Vec<i64> = s.dims.iter().map(|&d| self.rng.random_range(1..=d.max(1))).collect();
        let ushape = ArrayShape::new(s.dtype, sizes.clone());
        let update = self.operand_like(&ushape, false);
        let mut starts = Vec::new();
        for (&d, &z) in s.dims.iter().zip(&sizes) {
            starts.push(self.start_index(d, z));
        }
        let starts = self.unify_index_types(starts)?;
        let mut operands = vec![x.id, update.id];
        operands.extend(starts);
        let id = self.op(Op::DynamicUpdateSlice, &operands, None);
        self.push_val(id, x.exact && update.exact)
    }

    fn gather(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        if s.rank() == 0 {
            return None;
        }
        let r = s.rank();
        let axis = self.rng.random_range(0..r);
        let n = s.dims[axis];
        let k = self.pick_extent().min(257);
        let window = self.chance(0.3);
        let (dims, slice_sizes, out_elems, index_shape) = if window {
            // Windows of `w` along `axis` at each index: out [K, ...slice], nothing collapsed.
            let w = self.rng.random_range(1..=n);
            let mut sizes = s.dims.clone();
            sizes[axis] = w;
            let dims = GatherDims {
                offset_dims: (1..=r as i64).collect(),
                collapsed_slice_dims: vec![],
                start_index_map: vec![axis as i64],
                index_vector_dim: 1,
                ..Default::default()
            };
            let out = k as u64 * elems(&sizes);
            (dims, sizes, out, vec![k, 1])
        } else {
            // jnp.take(x, idx, axis): the indexed dimension replaced by K.
            let mut sizes = s.dims.clone();
            sizes[axis] = 1;
            let offset_dims: Vec<i64> = (0..r as i64).filter(|&d| d != axis as i64).collect();
            let dims = GatherDims {
                offset_dims,
                collapsed_slice_dims: vec![axis as i64],
                start_index_map: vec![axis as i64],
                index_vector_dim: 1,
                ..Default::default()
            };
            let out = k as u64 * elems(&sizes);
            (dims, sizes, out, vec![k])
        };
        if out_elems > self.p.max_elems {
            return None;
        }
        let idx = self.param(ArrayShape::new(DType::S32, index_shape), Role::Index { lo: -2, hi: n + 2 });
        // The take form puts the batch dimension first; move it to `axis` for jnp.take's layout.
        let op = Op::Gather { dims: dims.clone(), slice_sizes: slice_sizes.clone(), indices_are_sorted: false };
        let id = self.op(op, &[x.id, idx.id], None);
        self.push_val(id, x.exact)
    }

    fn scatter(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        if s.rank() == 0 || s.dtype == DType::Pred {
            return None;
        }
        let n = s.dims[0];
        let k = self.pick_extent().min(129);
        let mut udims = s.dims.clone();
        udims[0] = k;
        if elems(&udims) > self.p.max_elems {
            return None;
        }
        let combiner = *["add", "add", "overwrite", "max", "min"].choose(&mut self.rng)?;
        let indices = if combiner == "overwrite" {
            // Overwrites of one element by several updates have no defined order: distinct indices.
            let mut pool: Vec<i32> = (-2..(n as i32 + 2)).collect();
            pool.shuffle_in_place(&mut self.rng);
            let k = (k as usize).min(pool.len());
            udims[0] = k as i64;
            let lit =
                Literal::array(ArrayShape::new(DType::S32, vec![k as i64, 1]), ArrayData::S32(pool[..k].to_vec()));
            self.op(Op::Constant(Box::new(lit)), &[], None)?
        } else {
            self.param(ArrayShape::new(DType::S32, vec![k, 1]), Role::Index { lo: -2, hi: n + 2 }).id
        };
        let update = self.operand_like(&ArrayShape::new(s.dtype, udims), false);
        let to_apply = match combiner {
            "overwrite" => {
                let mut b = Cb::new(format!("scatter_overwrite.{}", self.comps.len()));
                b.param(Shape::scalar(s.dtype));
                let new = b.param(Shape::scalar(s.dtype));
                self.add_comp(b.finish(new))
            }
            "add" => self.reducer(Red::Add, s.dtype),
            "max" => self.reducer(Red::Max, s.dtype),
            _ => self.reducer(Red::Min, s.dtype),
        };
        let dims = ScatterDims {
            update_window_dims: (1..s.rank() as i64).collect(),
            inserted_window_dims: vec![0],
            scatter_dims_to_operand_dims: vec![0],
            index_vector_dim: 1,
            ..Default::default()
        };
        let op = Op::Scatter { dims, indices_are_sorted: false, unique_indices: false, to_apply };
        let id = self.op(op, &[x.id, indices, update.id], None);
        let exact = x.exact && update.exact && !(combiner == "add" && s.dtype.is_float());
        self.push_val(id, exact)
    }

    // ---- reductions -----------------------------------------------------------------------

    fn reducer(&mut self, red: Red, dtype: DType) -> CompId {
        let mut b = Cb::new(format!("{:?}_{}.{}", red, dtype, self.comps.len()).to_lowercase());
        let x = b.param(Shape::scalar(dtype));
        let y = b.param(Shape::scalar(dtype));
        let root = b.push(&self.comps, Op::Binary(red.op()), &[x, y], None).expect("scalar binary op");
        self.add_comp(b.finish(root))
    }

    fn pick_red(&mut self, dtype: DType) -> Red {
        if dtype == DType::Pred {
            *[Red::And, Red::Or].choose(&mut self.rng).expect("non-empty")
        } else if dtype.is_float() {
            weighted(&mut self.rng, &[(Red::Add, 5), (Red::Max, 3), (Red::Min, 2), (Red::Mul, 1)])
        } else {
            weighted(&mut self.rng, &[(Red::Add, 5), (Red::Max, 2), (Red::Min, 2), (Red::Mul, 1), (Red::And, 1)])
        }
    }

    fn reduce(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        if s.rank() == 0 {
            return None;
        }
        let mut dims: Vec<i64> = (0..s.rank() as i64).filter(|_| self.rng.random_bool(0.5)).collect();
        if dims.is_empty() || self.chance(0.3) {
            // The common `x.sum(-1)` form.
            dims = vec![s.rank() as i64 - 1];
        }
        let reduced: u64 = dims.iter().map(|&d| s.dims[d as usize] as u64).product();
        let mut red = self.pick_red(s.dtype);
        if red == Red::Mul && s.dtype.is_float() && reduced > 16 {
            // Long float products overflow to inf and underflow to 0 in an order-dependent way.
            red = Red::Add;
        }
        let to_apply = self.reducer(red, s.dtype);
        let init = self.constant(s.dtype, red.identity(s.dtype));
        let id = self.op(Op::Reduce { dimensions: dims, to_apply }, &[x.id, init], None);
        self.push_val(id, x.exact && !(red.reassociates(s.dtype) && reduced > 1))
    }

    /// The reducer of `jnp.argmax`/`argmin` (value, index) pairs, as JAX emits it.
    fn argmax_reducer(&mut self, dtype: DType, max: bool) -> CompId {
        let mut b = Cb::new(format!("argmax_{}.{}", dtype, self.comps.len()));
        let c = &self.comps;
        let (av, ai) = (b.param(Shape::scalar(dtype)), b.param(Shape::scalar(DType::S32)));
        let (bv, bi) = (b.param(Shape::scalar(dtype)), b.param(Shape::scalar(DType::S32)));
        let cmp = |b: &mut Cb, d, x, y| {
            b.push(c, Op::Compare { direction: d, compare_type: None }, &[x, y], None).expect("scalar compare")
        };
        let better = cmp(&mut b, if max { CompareDirection::Gt } else { CompareDirection::Lt }, av, bv);
        let pick_a = if dtype.is_float() {
            let nan = cmp(&mut b, CompareDirection::Ne, av, av);
            b.push(c, Op::Binary(BinaryOp::Or), &[better, nan], None).expect("or")
        } else {
            better
        };
        let eq = cmp(&mut b, CompareDirection::Eq, av, bv);
        let lower = cmp(&mut b, CompareDirection::Lt, ai, bi);
        let tie = b.push(c, Op::Binary(BinaryOp::And), &[eq, lower], None).expect("and");
        let v = b.push(c, Op::Select, &[pick_a, av, bv], None).expect("select");
        let pick_ai = b.push(c, Op::Binary(BinaryOp::Or), &[pick_a, tie], None).expect("or");
        let i = b.push(c, Op::Select, &[pick_ai, ai, bi], None).expect("select");
        let root = b.push(c, Op::Tuple, &[v, i], None).expect("tuple");
        self.add_comp(b.finish(root))
    }

    fn argmax(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        // JAX's reducer picks the left operand of two NaNs, so which NaN's index wins depends
        // on the reduction order: argmax only sees tame data.
        if s.rank() == 0 || s.dtype == DType::Pred || !x.exact || self.data == DataKind::Special {
            return None;
        }
        let axis = self.rng.random_range(0..s.rank()) as i64;
        let max = self.chance(0.6);
        let to_apply = self.argmax_reducer(s.dtype, max);
        let iota = self.op(Op::Iota { dimension: axis }, &[], Some(Shape::array(DType::S32, s.dims.clone())))?;
        let init_v = self.constant(s.dtype, if max { Red::Max } else { Red::Min }.identity(s.dtype));
        let init_i = self.constant(DType::S32, 0.0);
        let red = self.op(Op::Reduce { dimensions: vec![axis], to_apply }, &[x.id, iota, init_v, init_i], None)?;
        let which = if self.chance(0.7) { 1 } else { 0 };
        let id = self.op(Op::GetTupleElement { index: which }, &[red], None);
        self.push_val(id, true)
    }

    fn reduce_window(&mut self, x: V, cumsum: bool) -> Option<V> {
        let s = self.shape_of(x.id);
        if s.rank() == 0 || s.dtype == DType::Pred {
            return None;
        }
        let red = match self.pick_red(s.dtype) {
            _ if cumsum => Red::Add,
            Red::Mul if s.dtype.is_float() => Red::Add,
            red => red,
        };
        let mut window = Window::default();
        let axis = self.rng.random_range(0..s.rank());
        let mut reduced = 1u64;
        for (d, &n) in s.dims.iter().enumerate() {
            let wd = if cumsum {
                if d == axis && n <= 1025 {
                    WindowDim { size: n, padding_low: n - 1, ..WindowDim::default() }
                } else {
                    WindowDim::default()
                }
            } else {
                WindowDim {
                    size: *[1, 1, 2, 3].choose(&mut self.rng)?,
                    stride: *[1, 1, 2].choose(&mut self.rng)?,
                    padding_low: *[0, 0, 1].choose(&mut self.rng)?,
                    padding_high: *[0, 0, 1, 2].choose(&mut self.rng)?,
                    window_dilation: *[1, 1, 1, 2].choose(&mut self.rng)?,
                    base_dilation: *[1, 1, 1, 2].choose(&mut self.rng)?,
                    window_reversal: false,
                }
            };
            reduced *= wd.size as u64;
            window.dims.push(wd);
        }
        let to_apply = self.reducer(red, s.dtype);
        let init = self.constant(s.dtype, red.identity(s.dtype));
        let id = self.op(Op::ReduceWindow { window, to_apply }, &[x.id, init], None)?;
        if elems(&self.shape_of(id).dims) > self.p.max_elems || elems(&self.shape_of(id).dims) == 0 {
            return None;
        }
        self.push_val(Some(id), x.exact && !(red.reassociates(s.dtype) && reduced > 1))
    }

    // ---- dots and convolutions -------------------------------------------------------------

    fn dot(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        if s.rank() == 0 || !(s.dtype.is_float() || s.dtype == DType::S32) {
            return None;
        }
        let r = s.rank();
        let mut dims_order: Vec<usize> = (0..r).collect();
        dims_order.shuffle_in_place(&mut self.rng);
        let n_contract = if r >= 2 && self.chance(0.25) { 2 } else { 1 };
        let n_batch = if r > n_contract && self.chance(0.3) { 1 } else { 0 };
        let contract: Vec<usize> = dims_order[..n_contract].to_vec();
        let batch: Vec<usize> = dims_order[n_contract..n_contract + n_batch].to_vec();
        // rhs: batch dims, then the contracting and free dims in a random order.
        let n_free = self.rng.random_range(0..=2usize.min(self.p.max_rank.saturating_sub(n_batch + n_contract)));
        let mut rest: Vec<(char, i64, usize)> = contract.iter().map(|&c| ('c', s.dims[c], c)).collect();
        for _ in 0..n_free {
            let e = self.pick_extent().min(300);
            rest.push(('f', e, 0));
        }
        rest.shuffle_in_place(&mut self.rng);
        let mut rdims: Vec<i64> = batch.iter().map(|&b| s.dims[b]).collect();
        let mut rhs_contracting = vec![0i64; n_contract];
        for (k, &(kind, e, c)) in rest.iter().enumerate() {
            rdims.push(e);
            if kind == 'c' {
                let pos = contract.iter().position(|&x| x == c).expect("a contracting dim");
                rhs_contracting[pos] = (n_batch + k) as i64;
            }
        }
        let out_free_l = elems(&s.dims) / contract.iter().map(|&c| s.dims[c] as u64).product::<u64>().max(1);
        let out = out_free_l * rest.iter().filter(|r| r.0 == 'f').map(|r| r.1 as u64).product::<u64>();
        if out > self.p.max_elems || elems(&rdims) > self.p.max_elems {
            return None;
        }
        let y = self.operand_like(&ArrayShape::new(s.dtype, rdims), false);
        let dims = DotDims {
            lhs_batch: batch.iter().map(|&b| b as i64).collect(),
            lhs_contracting: contract.iter().map(|&c| c as i64).collect(),
            rhs_batch: (0..n_batch as i64).collect(),
            rhs_contracting,
        };
        let k: u64 = contract.iter().map(|&c| s.dims[c] as u64).product();
        let id = self.op(Op::Dot { dims, precision: vec![], algorithm: None }, &[x.id, y.id], None);
        self.push_val(id, x.exact && y.exact && (k <= 1 || !s.dtype.is_float()))
    }

    /// A dot whose lhs is a slice of a higher-rank array bitcast (or reshaped) down to rank 2,
    /// the shape of `Ws[i] @ h`: the class of bug where staged loads used the wrong buffer shape.
    fn dot_view(&mut self) -> Option<V> {
        let stack = self.rng.random_range(2..=5);
        let a = *[1, 2, 5, 8, 16, 17, 32].choose(&mut self.rng)?;
        let k = *[8, 15, 16, 17, 32, 33, 64, 100].choose(&mut self.rng)?;
        let n = *[1, 3, 8, 16, 33].choose(&mut self.rng)?;
        let dtype = if self.chance(0.8) { DType::F32 } else { DType::F16 };
        let p = self.param(ArrayShape::new(dtype, vec![stack, a, k]), Role::Data);
        let i = self.rng.random_range(0..stack);
        let sl = self.op(
            Op::Slice {
                dims: vec![
                    SliceDim { start: i, limit: i + 1, stride: 1 },
                    SliceDim { start: 0, limit: a, stride: 1 },
                    SliceDim { start: 0, limit: k, stride: 1 },
                ],
            },
            &[p.id],
            None,
        )?;
        let view = if self.chance(0.5) { Op::Bitcast } else { Op::Reshape };
        let lhs = self.op(view, &[sl], Some(Shape::array(dtype, vec![a, k])))?;
        let w = self.param(ArrayShape::new(dtype, vec![k, n]), Role::Data);
        let dims = DotDims { lhs_contracting: vec![1], rhs_contracting: vec![0], ..Default::default() };
        let (l, r, dims) = if self.chance(0.7) {
            (lhs, w.id, dims)
        } else {
            // w^T contracted with the view's minor dimension: rhs-side view.
            let dims = DotDims { lhs_contracting: vec![0], rhs_contracting: vec![1], ..Default::default() };
            (w.id, lhs, dims)
        };
        let id = self.op(Op::Dot { dims, precision: vec![], algorithm: None }, &[l, r], None);
        self.push_val(id, false)
    }

    /// A dot or row reduction with more than 65,535 contracted elements (the llvmpipe loop limit).
    fn dot_long(&mut self, _x: V) -> Option<V> {
        let k = *self.p.big_counts.choose(&mut self.rng)?;
        let m = *[1, 2, 3].choose(&mut self.rng)?;
        if (m * k) as u64 > self.p.max_elems.max(1 << 18) {
            return None;
        }
        let a = self.param(ArrayShape::new(DType::F32, vec![m, k]), Role::Data);
        let b = self.param(ArrayShape::new(DType::F32, vec![k, 1]), Role::Data);
        let dims = DotDims { lhs_contracting: vec![1], rhs_contracting: vec![0], ..Default::default() };
        let id = self.op(Op::Dot { dims, precision: vec![], algorithm: None }, &[a.id, b.id], None);
        self.push_val(id, false)
    }

    /// A 2-D convolution in a random layout (every dim_labels permutation of the input, kernel
    /// and output), with strides, padding (negative too), both dilations, reversal and feature
    /// groups, at feature and position counts around the blocked kernel's blocks. A quarter are
    /// weight-gradient shaped: a window as large as the input, so few outputs each sum hundreds
    /// or thousands of products (the kernels whose lanes split the contraction).
    fn convolution(&mut self) -> Option<V> {
        let n = self.rng.random_range(1..=2);
        let h = *[1, 3, 7, 8, 9, 16, 17].choose(&mut self.rng)?;
        let w = *[1, 3, 7, 8, 9, 16, 17, 33, 65].choose(&mut self.rng)?;
        let c = *[1, 2, 3, 4, 8, 16].choose(&mut self.rng)?;
        let whole_window = self.chance(0.25);
        let mut o = *[1, 2, 5, 8, 16, 17, 33].choose(&mut self.rng)?;
        let groups = if c > 1 && self.chance(0.15) {
            o = c * self.rng.random_range(1..=2);
            c
        } else {
            1
        };
        let (kh, kw) = match whole_window {
            true => (h - self.rng.random_range(0..=1.min(h - 1)), w - self.rng.random_range(0..=2.min(w - 1))),
            false => (self.rng.random_range(1..=3.min(h)), self.rng.random_range(1..=3.min(w))),
        };
        let dtype = if self.chance(0.85) { DType::F32 } else { DType::F16 };
        // Where each logical dimension (batch or feature, then the two spatial ones) sits.
        let mut input_at = vec![0i64, 1, 2, 3];
        let mut kernel_at = vec![0i64, 1, 2, 3];
        let mut output_at = vec![0i64, 1, 2, 3];
        if self.chance(0.5) {
            input_at.shuffle_in_place(&mut self.rng);
            kernel_at.shuffle_in_place(&mut self.rng);
            output_at.shuffle_in_place(&mut self.rng);
        } else if self.chance(0.5) {
            // NHWC with an HWIO kernel (`b01f_01io->b01f`), as JAX lays out its CNNs, mostly with
            // a multiple of 4 output features: with a multiple of 4 input features too, the
            // kernels that read both four per vec4 load.
            input_at = vec![0, 3, 1, 2];
            output_at = vec![0, 3, 1, 2];
            if groups == 1 && self.chance(0.7) {
                o = (o + 3) / 4 * 4;
            }
        }
        let place = |at: &[i64], sizes: [i64; 4]| {
            let mut dims = vec![0; 4];
            for (k, &d) in at.iter().enumerate() {
                dims[d as usize] = sizes[k];
            }
            dims
        };
        // Logical order: input and output (batch, feature, h, w), kernel (kh, kw, in, out).
        let lhs = self.param(ArrayShape::new(dtype, place(&input_at, [n, c, h, w])), Role::Data);
        let rhs = self.param(ArrayShape::new(dtype, place(&kernel_at, [kh, kw, c / groups, o])), Role::Data);
        let mut window = Window::default();
        for size in [kh, kw] {
            window.dims.push(WindowDim {
                size,
                stride: *[1, 1, 2].choose(&mut self.rng)?,
                padding_low: *[0, 0, 1, -1].choose(&mut self.rng)?,
                padding_high: *[0, 0, 1, 2].choose(&mut self.rng)?,
                window_dilation: *[1, 1, 1, 2].choose(&mut self.rng)?,
                base_dilation: *[1, 1, 1, 2].choose(&mut self.rng)?,
                window_reversal: self.chance(0.2),
            });
        }
        let dims = ConvDims {
            input_batch: input_at[0],
            input_feature: input_at[1],
            input_spatial: vec![input_at[2], input_at[3]],
            kernel_spatial: vec![kernel_at[0], kernel_at[1]],
            kernel_input_feature: kernel_at[2],
            kernel_output_feature: kernel_at[3],
            output_batch: output_at[0],
            output_feature: output_at[1],
            output_spatial: vec![output_at[2], output_at[3]],
        };
        let op = Op::Convolution { window, dims, feature_group_count: groups, batch_group_count: 1, precision: vec![] };
        let id = self.op(op, &[lhs.id, rhs.id], None)?;
        if elems(&self.shape_of(id).dims) == 0 {
            return None;
        }
        self.push_val(Some(id), false)
    }

    fn sort(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        if s.rank() == 0 || !x.exact || s.dtype == DType::Pred {
            return None;
        }
        let dimension = self.rng.random_range(0..s.rank()) as i64;
        let with_index = self.chance(0.5);
        let mut b = Cb::new(format!("compare.{}", self.comps.len()));
        let a = b.param(Shape::scalar(s.dtype));
        let c = b.param(Shape::scalar(s.dtype));
        if with_index {
            b.param(Shape::scalar(DType::S32));
            b.param(Shape::scalar(DType::S32));
        }
        let direction = if self.chance(0.7) { CompareDirection::Lt } else { CompareDirection::Gt };
        let compare_type = s.dtype.is_float().then_some(CompareType::TotalOrder);
        let root = b.push(&self.comps, Op::Compare { direction, compare_type }, &[a, c], None).ok()?;
        let to_apply = self.add_comp(b.finish(root));
        let mut operands = vec![self.with_canonical_nans(x.id)?];
        if with_index {
            let iota = self.op(Op::Iota { dimension }, &[], Some(Shape::array(DType::S32, s.dims.clone())))?;
            operands.push(iota);
        }
        let sorted = self.op(Op::Sort { dimension, is_stable: true, to_apply }, &operands, None)?;
        let id = if with_index {
            let which = self.rng.random_range(0..2);
            self.op(Op::GetTupleElement { index: which }, &[sorted], None)
        } else {
            Some(sorted)
        };
        self.push_val(id, true)
    }

    // ---- control flow ---------------------------------------------------------------------

    /// `(i, x)` carried through `while i < n`; the body steps `i` and applies a bounded
    /// elementwise update to `x`. With `data_trips`, `n` is an input (a data-dependent trip count).
    fn while_loop(&mut self, x: V, data_trips: bool) -> Option<V> {
        let s = self.shape_of(x.id);
        let per_trip = elems(&s.dims).max(1);
        let trips: Vec<i64> =
            self.p.trip_counts.iter().copied().filter(|&t| t as u64 * per_trip <= self.p.max_loop_work).collect();
        let trips = *trips.choose(&mut self.rng)?;
        let s32 = Shape::scalar(DType::S32);
        let xs = Shape::Array(s.clone());
        let mut state = vec![s32.clone(), xs.clone()];
        if data_trips {
            state.push(s32.clone());
        }
        let tuple = Shape::Tuple(state.clone());
        // Condition: i < n.
        let mut cb = Cb::new(format!("cond.{}", self.comps.len()));
        let t = cb.param(tuple.clone());
        let c = &self.comps;
        let i = cb.push(c, Op::GetTupleElement { index: 0 }, &[t], None).ok()?;
        let n = if data_trips {
            cb.push(c, Op::GetTupleElement { index: 2 }, &[t], None).ok()?
        } else {
            cb.push(c, Op::Constant(Box::new(scalar_literal(DType::S32, trips as f64))), &[], None).ok()?
        };
        let lt = cb.push(c, Op::Compare { direction: CompareDirection::Lt, compare_type: None }, &[i, n], None).ok()?;
        let condition = self.add_comp(cb.finish(lt));
        // Body: (i + 1, f(x, i)).
        let mut bb = Cb::new(format!("body.{}", self.comps.len()));
        let t = bb.param(tuple.clone());
        let c = &self.comps;
        let i = bb.push(c, Op::GetTupleElement { index: 0 }, &[t], None).ok()?;
        let xv = bb.push(c, Op::GetTupleElement { index: 1 }, &[t], None).ok()?;
        let one = bb.push(c, Op::Constant(Box::new(scalar_literal(DType::S32, 1.0))), &[], None).ok()?;
        let i1 = bb.push(c, Op::Binary(BinaryOp::Add), &[i, one], None).ok()?;
        let choice = self.rng.random_range(0..3);
        let (nx, exact) = loop_update(&mut bb, c, xv, i, &s, choice)?;
        let mut outs = vec![i1, nx];
        if data_trips {
            outs.push(bb.push(c, Op::GetTupleElement { index: 2 }, &[t], None).ok()?);
        }
        let root = bb.push(c, Op::Tuple, &outs, None).ok()?;
        let body = self.add_comp(bb.finish(root));
        // Entry: the initial state and the loop.
        let zero = self.constant(DType::S32, 0.0);
        let mut init = vec![zero, x.id];
        if data_trips {
            let limit = if trips > 1000 { 1000 } else { trips };
            init.push(self.param(ArrayShape::scalar(DType::S32), Role::Trips(limit)).id);
        }
        let init = self.op(Op::Tuple, &init, None)?;
        let w = self.op(Op::While { condition, body }, &[init], None)?;
        let id = self.op(Op::GetTupleElement { index: 1 }, &[w], None);
        self.push_val(id, x.exact && exact)
    }

    /// A loop run until the data says stop, as Newton's method or bisection are: `while i < 200 &&
    /// max|x| < 64: x = (x + 0.125) * 1.5` on an f32 array (the condition reduces the whole state, so
    /// the loop cannot run per element; add-then-multiply cannot be contracted into an fma, so both
    /// sides take the same number of trips). NaN or infinity in `x` stops it at once.
    fn converge_loop(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        if s.dtype != DType::F32 || s.dims.is_empty() || !x.exact {
            return None;
        }
        let max = self.reducer(Red::Max, DType::F32);
        let s32 = Shape::scalar(DType::S32);
        let f32s = Shape::scalar(DType::F32);
        let full = Shape::Array(s.clone());
        let tuple = Shape::Tuple(vec![s32.clone(), full.clone()]);
        let all_dims: Vec<i64> = (0..s.dims.len() as i64).collect();
        // Condition.
        let mut cb = Cb::new(format!("converge_cond.{}", self.comps.len()));
        let t = cb.param(tuple.clone());
        let c = &self.comps;
        let i = cb.push(c, Op::GetTupleElement { index: 0 }, &[t], None).ok()?;
        let xv = cb.push(c, Op::GetTupleElement { index: 1 }, &[t], None).ok()?;
        let cap = cb.push(c, Op::Constant(Box::new(scalar_literal(DType::S32, 200.0))), &[], None).ok()?;
        let counting =
            cb.push(c, Op::Compare { direction: CompareDirection::Lt, compare_type: None }, &[i, cap], None).ok()?;
        let ax = cb.push(c, Op::Unary(UnaryOp::Abs), &[xv], None).ok()?;
        let ninf = cb.push(c, Op::Constant(Box::new(scalar_literal(DType::F32, f64::NEG_INFINITY))), &[], None).ok()?;
        let m = cb.push(c, Op::Reduce { dimensions: all_dims, to_apply: max }, &[ax, ninf], Some(f32s.clone())).ok()?;
        let limit = cb.push(c, Op::Constant(Box::new(scalar_literal(DType::F32, 64.0))), &[], None).ok()?;
        let small =
            cb.push(c, Op::Compare { direction: CompareDirection::Lt, compare_type: None }, &[m, limit], None).ok()?;
        let go = cb.push(c, Op::Binary(BinaryOp::And), &[counting, small], None).ok()?;
        let condition = self.add_comp(cb.finish(go));
        // Body.
        let mut bb = Cb::new(format!("converge_body.{}", self.comps.len()));
        let t = bb.param(tuple);
        let c = &self.comps;
        let i = bb.push(c, Op::GetTupleElement { index: 0 }, &[t], None).ok()?;
        let xv = bb.push(c, Op::GetTupleElement { index: 1 }, &[t], None).ok()?;
        let one = bb.push(c, Op::Constant(Box::new(scalar_literal(DType::S32, 1.0))), &[], None).ok()?;
        let i1 = bb.push(c, Op::Binary(BinaryOp::Add), &[i, one], None).ok()?;
        let eighth = bb.push(c, Op::Constant(Box::new(scalar_literal(DType::F32, 0.125))), &[], None).ok()?;
        let eighth = bb.push(c, Op::Broadcast { dimensions: vec![] }, &[eighth], Some(full.clone())).ok()?;
        let grow = bb.push(c, Op::Constant(Box::new(scalar_literal(DType::F32, 1.5))), &[], None).ok()?;
        let grow = bb.push(c, Op::Broadcast { dimensions: vec![] }, &[grow], Some(full)).ok()?;
        let shifted = bb.push(c, Op::Binary(BinaryOp::Add), &[xv, eighth], None).ok()?;
        let nx = bb.push(c, Op::Binary(BinaryOp::Multiply), &[shifted, grow], None).ok()?;
        let root = bb.push(c, Op::Tuple, &[i1, nx], None).ok()?;
        let body = self.add_comp(bb.finish(root));
        let zero = self.constant(DType::S32, 0.0);
        let init = self.op(Op::Tuple, &[zero, x.id], None)?;
        let w = self.op(Op::While { condition, body }, &[init], None)?;
        let id = self.op(Op::GetTupleElement { index: 1 }, &[w], None);
        self.push_val(id, true)
    }

    /// The fori_loop of issue 11: `x[i+1] = x[i] * 2 + 1` over an f32 array, for a static count.
    fn fori(&mut self) -> Option<V> {
        let n = *[2, 8, 60, 61, 64, 65, 100].choose(&mut self.rng)?;
        let trips = *[1, 59, 60, 61, 64, 65].choose(&mut self.rng)?;
        let trips = trips.min(n - 1).max(1);
        let dtype = if self.chance(0.8) { DType::F32 } else { DType::S32 };
        let x = self.param(ArrayShape::new(dtype, vec![n]), Role::Data);
        let xs = Shape::array(dtype, vec![n]);
        let s32 = Shape::scalar(DType::S32);
        let tuple = Shape::Tuple(vec![s32.clone(), xs.clone()]);
        let mut cb = Cb::new(format!("fori_cond.{}", self.comps.len()));
        let t = cb.param(tuple.clone());
        let c = &self.comps;
        let i = cb.push(c, Op::GetTupleElement { index: 0 }, &[t], None).ok()?;
        let lim = cb.push(c, Op::Constant(Box::new(scalar_literal(DType::S32, trips as f64))), &[], None).ok()?;
        let lt =
            cb.push(c, Op::Compare { direction: CompareDirection::Lt, compare_type: None }, &[i, lim], None).ok()?;
        let condition = self.add_comp(cb.finish(lt));
        let mut bb = Cb::new(format!("fori_body.{}", self.comps.len()));
        let t = bb.param(tuple);
        let c = &self.comps;
        let i = bb.push(c, Op::GetTupleElement { index: 0 }, &[t], None).ok()?;
        let xv = bb.push(c, Op::GetTupleElement { index: 1 }, &[t], None).ok()?;
        let one = bb.push(c, Op::Constant(Box::new(scalar_literal(DType::S32, 1.0))), &[], None).ok()?;
        let ds = bb.push(c, Op::DynamicSlice { sizes: vec![1] }, &[xv, i], None).ok()?;
        let two = bb.push(c, Op::Constant(Box::new(scalar_literal(dtype, 2.0))), &[], None).ok()?;
        let two_b =
            bb.push(c, Op::Broadcast { dimensions: vec![] }, &[two], Some(Shape::array(dtype, vec![1]))).ok()?;
        let onef = bb.push(c, Op::Constant(Box::new(scalar_literal(dtype, 1.0))), &[], None).ok()?;
        let one_b =
            bb.push(c, Op::Broadcast { dimensions: vec![] }, &[onef], Some(Shape::array(dtype, vec![1]))).ok()?;
        let m = bb.push(c, Op::Binary(BinaryOp::Multiply), &[ds, two_b], None).ok()?;
        let v = bb.push(c, Op::Binary(BinaryOp::Add), &[m, one_b], None).ok()?;
        let i1 = bb.push(c, Op::Binary(BinaryOp::Add), &[i, one], None).ok()?;
        let nx = bb.push(c, Op::DynamicUpdateSlice, &[xv, v, i1], None).ok()?;
        let root = bb.push(c, Op::Tuple, &[i1, nx], None).ok()?;
        let body = self.add_comp(bb.finish(root));
        let zero = self.constant(DType::S32, 0.0);
        let init = self.op(Op::Tuple, &[zero, x.id], None)?;
        let w = self.op(Op::While { condition, body }, &[init], None)?;
        let id = self.op(Op::GetTupleElement { index: 1 }, &[w], None);
        self.push_val(id, true)
    }

    fn conditional(&mut self, x: V) -> Option<V> {
        let s = self.shape_of(x.id);
        let n_branches = if self.chance(0.5) { 2 } else { self.rng.random_range(2..=4) };
        let by_pred = n_branches == 2 && self.chance(0.6);
        let mut branches = Vec::new();
        let mut exact = x.exact;
        for k in 0..n_branches {
            let mut b = Cb::new(format!("branch{k}.{}", self.comps.len()));
            let p = b.param(Shape::Array(s.clone()));
            let choice = self.rng.random_range(0..3);
            let zero = b.push(&self.comps, Op::Constant(Box::new(scalar_literal(DType::S32, 0.0))), &[], None).ok()?;
            let (root, e) = loop_update(&mut b, &self.comps, p, zero, &s, choice)?;
            exact &= e;
            branches.push(self.add_comp(b.finish(root)));
        }
        let selector = if by_pred {
            self.param(ArrayShape::scalar(DType::Pred), Role::Data).id
        } else {
            self.param(ArrayShape::scalar(DType::S32), Role::Index { lo: -1, hi: n_branches as i64 + 1 }).id
        };
        let mut operands = vec![selector];
        operands.extend(std::iter::repeat_n(x.id, n_branches));
        let id = self.op(Op::Conditional { branches }, &operands, None);
        self.push_val(id, exact)
    }
}

/// A bounded elementwise update of `x` (with the scalar counter `i`) for loop bodies and
/// conditional branches; returns the new value and whether it is computed exactly.
fn loop_update(
    b: &mut Cb,
    c: &[Computation],
    x: InstrId,
    i: InstrId,
    s: &ArrayShape,
    choice: u32,
) -> Option<(InstrId, bool)> {
    let dt = s.dtype;
    let full = Shape::Array(s.clone());
    let bcast = |b: &mut Cb, v: f64| -> Option<InstrId> {
        let k = b.push(c, Op::Constant(Box::new(scalar_literal(dt, v))), &[], None).ok()?;
        b.push(c, Op::Broadcast { dimensions: vec![] }, &[k], Some(full.clone())).ok()
    };
    let bin = |b: &mut Cb, op: BinaryOp, x: InstrId, y: InstrId| b.push(c, Op::Binary(op), &[x, y], None).ok();
    if dt == DType::Pred {
        let r = b.push(c, Op::Unary(UnaryOp::Not), &[x], None).ok()?;
        return Some((r, true));
    }
    if dt.is_float() {
        match choice {
            0 => {
                let h = bcast(b, 0.5)?;
                let q = bcast(b, 0.25)?;
                let m = bin(b, BinaryOp::Multiply, x, h)?;
                Some((bin(b, BinaryOp::Add, m, q)?, true))
            }
            1 => Some((b.push(c, Op::Unary(UnaryOp::Tanh), &[x], None).ok()?, false)),
            _ => {
                // x = max(x, convert(i) * 0.125) - 0.0625: reads the counter.
                let fi = b.push(c, Op::Convert, &[i], Some(Shape::scalar(dt))).ok()?;
                let fb = b.push(c, Op::Broadcast { dimensions: vec![] }, &[fi], Some(full.clone())).ok()?;
                let e = bcast(b, 0.125)?;
                let scaled = bin(b, BinaryOp::Multiply, fb, e)?;
                let m = bin(b, BinaryOp::Maximum, x, scaled)?;
                let d = bcast(b, 0.0625)?;
                Some((bin(b, BinaryOp::Subtract, m, d)?, true))
            }
        }
    } else {
        match choice {
            0 => {
                let three = bcast(b, 3.0)?;
                let one = bcast(b, 1.0)?;
                let m = bin(b, BinaryOp::Multiply, x, three)?;
                let a = bin(b, BinaryOp::Add, m, one)?;
                let mask = bcast(b, 1023.0)?;
                Some((bin(b, BinaryOp::And, a, mask)?, true))
            }
            1 => {
                let ci = b.push(c, Op::Convert, &[i], Some(Shape::scalar(dt))).ok()?;
                let cb = b.push(c, Op::Broadcast { dimensions: vec![] }, &[ci], Some(full.clone())).ok()?;
                Some((bin(b, BinaryOp::Xor, x, cb)?, true))
            }
            _ => {
                let one = bcast(b, 1.0)?;
                Some((bin(b, BinaryOp::Add, x, one)?, true))
            }
        }
    }
}

/// `shuffle` under a name that does not clash with `SliceRandom`'s.
trait ShuffleInPlace {
    fn shuffle_in_place(&mut self, rng: &mut ChaCha8Rng);
}

impl<T> ShuffleInPlace for Vec<T> {
    fn shuffle_in_place(&mut self, rng: &mut ChaCha8Rng) {
        for i in (1..self.len()).rev() {
            let j = rng.random_range(0..=i);
            self.swap(i, j);
        }
    }
}
