//! Lowering of the generic tree (VHLO or StableHLO ops) to an [`hlo_ir::Module`].
//!
//! StableHLO and HLO correspond nearly op for op (see XLA's `mhlo_to_hlo`); the differences
//! handled here:
//! - functions become computations; `main` is the entry, several results become a tuple root;
//! - ops with several results (`reduce`, `sort`, `while`, `case`, `call`, ...) produce one tuple
//!   instruction whose elements are read back with `get-tuple-element`;
//! - regions become computations: reducer and comparator bodies directly, `while` bodies over
//!   one tuple of the loop state, `case`/`if` branches over a tuple of the values they use
//!   from above (StableHLO branches capture, HLO branches take operands);
//! - `optimization_barrier` wraps its operands in a tuple.
//!
//! Every instruction's declared shape (from the StableHLO result type) is checked against
//! `hlo_ir`'s shape inference as it is built, so a lowered module verifies.

use crate::ir::{Attr, Operation, Pos, Region, Type, ValueId};
use crate::Error;
use hlo_ir::shape_inference::{infer_op, same_shape, signature};
use hlo_ir::{
    ArrayData, BinaryOp, CompId, CompareDirection, CompareType, Computation, ConvDims, CustomCall,
    CustomCallApiVersion, DType, DotDims, GatherDims, Instr, InstrId, Literal, Module, ModuleAttrs, Op, PadDim,
    Precision, RngAlgorithm, ScatterDims, Shape, SliceDim, UnaryOp, Window, WindowDim,
};
use std::collections::{HashMap, HashSet};

type Result<T> = std::result::Result<T, Error>;

/// Bounds that keep `hlo_ir`'s shape arithmetic (in `i64`) far from overflow on garbage input.
const MAX_INT: i64 = 1 << 31;
const MAX_ELEMENTS: i64 = 1 << 40;
const MAX_CONSTANT_ELEMENTS: usize = 1 << 26;

/// Lowers the top-level operations of an artifact (a `builtin.module` holding functions, or the
/// functions themselves) with `main` as the entry computation.
pub(crate) fn lower(top: &[Operation]) -> Result<Module> {
    let mut module_name = "main".to_string();
    let mut funcs = HashMap::new();
    for op in top {
        if op.name == "builtin.module" {
            if let Some(Attr::String(n)) = op.attr("sym_name") {
                module_name = n.clone();
            }
            for region in &op.regions {
                for block in &region.blocks {
                    for f in &block.ops {
                        collect_func(f, &mut funcs)?;
                    }
                }
            }
        } else {
            collect_func(op, &mut funcs)?;
        }
    }
    let mut l = Lowerer { funcs, comps: Vec::new(), func_ids: HashMap::new(), in_progress: HashSet::new(), counter: 0 };
    let entry = l.func("main", Pos::Byte(0))?;
    let main = l.funcs["main"];
    let mut module = Module {
        name: module_name,
        attrs: ModuleAttrs::default(),
        comps: l.comps,
        entry,
        stack_frames: Default::default(),
        dynamic_results: None,
    };
    let root_is_tuple = module.entry_comp().instr(module.entry_comp().root).shape.is_tuple();
    module.attrs.other = donation_attrs(main, root_is_tuple);
    Ok(module)
}

/// XLA's `input_output_alias` and `buffer_donor` header attributes, from the argument attributes of
/// `main` where JAX marks donated arguments (`donate_argnums`): `tf.aliasing_output = k` (result `k`
/// may reuse the argument's memory) or `jax.buffer_donor = true` (the compiler may pick a result).
/// Results are a tuple's elements (`{k}`) or, for one result, the root itself (`{}`).
fn donation_attrs(main: &Operation, root_is_tuple: bool) -> Vec<(String, String)> {
    let Some(Attr::Array(args)) = main.attr("arg_attrs") else { return Vec::new() };
    let mut aliases = Vec::new();
    let mut donors = Vec::new();
    for (param, dict) in args.iter().enumerate() {
        let Attr::Dict(entries) = dict else { continue };
        for (name, value) in entries {
            match (name.as_str(), value) {
                ("tf.aliasing_output", Attr::Int { value: output, .. }) if *output >= 0 => {
                    let path = if root_is_tuple { output.to_string() } else { String::new() };
                    aliases.push(format!("{{{path}}}: ({param}, {{}}, may-alias)"));
                }
                ("jax.buffer_donor", Attr::Bool(true)) => donors.push(format!("({param}, {{}})")),
                _ => {}
            }
        }
    }
    let mut attrs = Vec::new();
    if !aliases.is_empty() {
        attrs.push(("input_output_alias".to_string(), format!("{{ {} }}", aliases.join(", "))));
    }
    if !donors.is_empty() {
        attrs.push(("buffer_donor".to_string(), format!("{{ {} }}", donors.join(", "))));
    }
    attrs
}

fn collect_func<'a>(op: &'a Operation, funcs: &mut HashMap<String, &'a Operation>) -> Result<()> {
    // Shardy's meshes (`sdy.mesh`) describe sharding, which one device does not need.
    if op.name.starts_with("sdy.") {
        return Ok(());
    }
    if base_name(&op.name) != "func" {
        return Err(unsupported(op, "a top-level op other than a function"));
    }
    let Some(Attr::String(name)) = op.attr("sym_name") else { return Err(invalid(op, "a function without sym_name")) };
    funcs.insert(name.clone(), op);
    Ok(())
}

/// `vhlo.add_v1` -> `add`, `stablehlo.add` -> `add`, `func.func` -> `func`.
fn base_name(name: &str) -> &str {
    let short = name.split_once('.').map_or(name, |(_, s)| s);
    match short.rsplit_once("_v") {
        Some((base, v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => short,
    }
}

fn unsupported(op: &Operation, what: &str) -> Error {
    Error::Unsupported { pos: op.pos, what: format!("{} ({what})", op.name) }
}

fn invalid(op: &Operation, message: impl Into<String>) -> Error {
    Error::Invalid { pos: op.pos, op: op.name.clone(), message: message.into() }
}

struct Lowerer<'a> {
    funcs: HashMap<String, &'a Operation>,
    comps: Vec<Computation>,
    func_ids: HashMap<String, CompId>,
    in_progress: HashSet<String>,
    counter: usize,
}

/// A computation being built and the instruction of each value it has lowered.
struct Ctx {
    comp: Computation,
    values: HashMap<ValueId, InstrId>,
}

impl Ctx {
    fn new(name: String) -> Ctx {
        Ctx { comp: Computation::new(name), values: HashMap::new() }
    }

    fn get(&self, op: &Operation, v: ValueId) -> Result<InstrId> {
        self.values.get(&v).copied().ok_or_else(|| invalid(op, format!("uses %{} before its definition", v.0)))
    }

    fn shape(&self, id: InstrId) -> &Shape {
        &self.comp.instr(id).shape
    }
}

impl<'a> Lowerer<'a> {
    /// The computation of function `name`, lowered once.
    fn func(&mut self, name: &str, pos: Pos) -> Result<CompId> {
        if let Some(&id) = self.func_ids.get(name) {
            return Ok(id);
        }
        let f = *self.funcs.get(name).ok_or(Error::Invalid {
            pos,
            op: "func".into(),
            message: format!("no function named @{name}"),
        })?;
        if !self.in_progress.insert(name.to_string()) {
            return Err(invalid(f, format!("@{name} calls itself")));
        }
        let region = f.regions.first().ok_or_else(|| invalid(f, "a function without a body"))?;
        let comp = self.region_comp(f, region, name.to_string(), Params::Args { consts: Vec::new() })?;
        let id = self.add(comp);
        self.func_ids.insert(name.to_string(), id);
        Ok(id)
    }

    fn add(&mut self, comp: Computation) -> CompId {
        self.comps.push(comp);
        CompId(self.comps.len() as u32 - 1)
    }

    fn fresh_comp_name(&mut self, base: &str) -> String {
        self.counter += 1;
        format!("{base}.{}", self.counter)
    }

    /// Builds a computation from a single-block region.
    fn region_comp(&mut self, owner: &Operation, region: &Region, name: String, params: Params) -> Result<Computation> {
        let [block] = region.blocks.as_slice() else {
            return Err(unsupported(owner, "a region with other than one block"));
        };
        let mut cx = Ctx::new(name);
        let mut arg_shapes = Vec::new();
        for (_, ty) in &block.args {
            arg_shapes.push(shape_of(owner, ty)?);
        }
        match &params {
            Params::Args { consts } => {
                for (i, ((v, _), shape)) in block.args.iter().zip(&arg_shapes).enumerate() {
                    let id = self.param(&mut cx, i as u64, shape.clone());
                    cx.values.insert(*v, id);
                }
                for (v, lit) in consts {
                    let shape = lit.shape.clone();
                    let id = self.emit(&mut cx, owner, Op::Constant(Box::new(lit.clone())), &[], shape)?;
                    cx.values.insert(*v, id);
                }
            }
            Params::Tuple { captures, .. } => {
                // One tuple parameter: the block arguments, then the captured values.
                let mut shapes = arg_shapes.clone();
                shapes.extend(captures.iter().map(|(_, s)| s.clone()));
                let p = self.param(&mut cx, 0, Shape::Tuple(shapes.clone()));
                let names: Vec<ValueId> =
                    block.args.iter().map(|(v, _)| *v).chain(captures.iter().map(|(v, _)| *v)).collect();
                for (i, (v, s)) in names.into_iter().zip(shapes).enumerate() {
                    let g = self.emit(&mut cx, owner, Op::GetTupleElement { index: i as u64 }, &[p], s)?;
                    cx.values.insert(v, g);
                }
            }
        }
        let mut root = None;
        for op in &block.ops {
            if matches!(base_name(&op.name), "return") {
                let mut outs = op.operands.iter().map(|&v| cx.get(op, v)).collect::<Result<Vec<_>>>()?;
                if let Params::Tuple { captures, root: TupleRoot::TupleWithCaptures } = &params {
                    for (v, _) in captures {
                        outs.push(cx.get(op, *v)?);
                    }
                }
                root = Some(if outs.len() == 1 && !params.wants_tuple_root() {
                    outs[0]
                } else {
                    let shapes = outs.iter().map(|&o| cx.shape(o).clone()).collect();
                    self.emit(&mut cx, op, Op::Tuple, &outs, Shape::Tuple(shapes))?
                });
                break;
            }
            self.op(&mut cx, op)?;
        }
        let root = root.ok_or_else(|| invalid(owner, "a region without a return"))?;
        cx.comp.root = root;
        Ok(cx.comp)
    }

    fn param(&mut self, cx: &mut Ctx, number: u64, shape: Shape) -> InstrId {
        self.counter += 1;
        cx.comp.push(Instr::new(format!("Arg_{number}.{}", self.counter), shape, Op::Parameter { number }, vec![]))
    }

    /// Appends `op`, checking its declared shape against shape inference.
    fn emit(&mut self, cx: &mut Ctx, at: &Operation, op: Op, operands: &[InstrId], declared: Shape) -> Result<InstrId> {
        let shapes: Vec<&Shape> = operands.iter().map(|&o| cx.shape(o)).collect();
        let comps = &self.comps;
        let callee = |id: CompId| comps.get(id.index()).and_then(signature);
        match infer_op(&op, &shapes, Some(&declared), &callee) {
            Ok(Some(inferred)) if !same_shape(&inferred, &declared) => {
                return Err(invalid(at, format!("declares {declared}, but its operands give {inferred}")));
            }
            Ok(_) => {}
            Err(e) => return Err(invalid(at, e.to_string())),
        }
        self.counter += 1;
        let name = format!("{}.{}", op.opcode().name(), self.counter);
        Ok(cx.comp.push(Instr::new(name, declared, op, operands.to_vec())))
    }

    /// Emits `op` with the op's results: one result maps directly; several come out of one
    /// tuple through get-tuple-element.
    fn emit_results(&mut self, cx: &mut Ctx, at: &Operation, op: Op, operands: &[InstrId]) -> Result<()> {
        let shapes = at.results.iter().map(|(_, t)| shape_of(at, t)).collect::<Result<Vec<_>>>()?;
        if shapes.len() == 1 && !matches!(op, Op::While { .. } | Op::OptimizationBarrier) {
            let id = self.emit(cx, at, op, operands, shapes[0].clone())?;
            cx.values.insert(at.results[0].0, id);
            return Ok(());
        }
        let t = self.emit(cx, at, op, operands, Shape::Tuple(shapes.clone()))?;
        self.untuple(cx, at, t, shapes)
    }

    /// `chlo.lgamma` or `chlo.digamma` of a float array, decomposed ([`crate::chlo_gamma`]).
    fn emit_gamma(&mut self, cx: &mut Ctx, at: &Operation, f: crate::chlo_gamma::Gamma, ins: &[InstrId]) -> Result<()> {
        let (&[x], [(result, ty)]) = (ins, at.results.as_slice()) else {
            return Err(invalid(at, "one operand and one result"));
        };
        let shape = match cx.shape(x) {
            Shape::Array(a) if a.dtype.is_float() => a.clone(),
            other => return Err(invalid(at, format!("a floating-point operand, found {other}"))),
        };
        let declared = shape_of(at, ty)?;
        if !same_shape(&declared, &Shape::Array(shape.clone())) {
            return Err(invalid(at, format!("declares {declared}, but its operand is {shape}")));
        }
        let mut emit = |op: Op, operands: &[InstrId], s: Shape| self.emit(cx, at, op, operands, s);
        let id = crate::chlo_gamma::lower(f, &mut emit, x, &shape)?;
        cx.values.insert(*result, id);
        Ok(())
    }

    fn untuple(&mut self, cx: &mut Ctx, at: &Operation, t: InstrId, shapes: Vec<Shape>) -> Result<()> {
        for (i, ((v, _), s)) in at.results.iter().zip(shapes).enumerate() {
            let g = self.emit(cx, at, Op::GetTupleElement { index: i as u64 }, &[t], s)?;
            cx.values.insert(*v, g);
        }
        Ok(())
    }

    /// A reducer, comparator or combiner region as a computation. Such regions may use
    /// constants from above (VHLO hoists constants), which are copied in.
    fn sub_comp(&mut self, cx: &Ctx, at: &Operation, region: usize, what: &str) -> Result<CompId> {
        let r = at.regions.get(region).ok_or_else(|| invalid(at, format!("a {what} region")))?;
        let mut consts = Vec::new();
        for v in free_values(r) {
            match &cx.comp.instr(cx.get(at, v)?).op {
                Op::Constant(lit) => consts.push((v, (**lit).clone())),
                _ => {
                    return Err(unsupported(
                        at,
                        "a reducer or comparator region that uses non-constant values from above",
                    ))
                }
            }
        }
        let name = self.fresh_comp_name(what);
        let comp = self.region_comp(at, r, name, Params::Args { consts })?;
        Ok(self.add(comp))
    }

    fn op(&mut self, cx: &mut Ctx, op: &Operation) -> Result<()> {
        let ins = op.operands.iter().map(|&v| cx.get(op, v)).collect::<Result<Vec<_>>>()?;
        // Shardy's per-value ops (`sdy.sharding_constraint`, `sdy.reshard`) mean nothing on one
        // device, and the `builtin.unrealized_conversion_cast`s that PJRT's serialiser leaves
        // around them (VHLO <-> builtin tensor types) are identities: each result is its operand.
        if op.name.starts_with("sdy.") || op.name == "builtin.unrealized_conversion_cast" {
            if op.results.len() != ins.len() {
                return Err(unsupported(op, "a Shardy op or cast whose results are not its operands"));
            }
            for ((v, t), &id) in op.results.iter().zip(&ins) {
                if let Ok(shape) = shape_of(op, t) {
                    if !shape.compatible(cx.shape(id)) {
                        return Err(invalid(op, format!("casts {} to {shape}", cx.shape(id))));
                    }
                }
                cx.values.insert(*v, id);
            }
            return Ok(());
        }
        let name = base_name(&op.name);
        // VHLO names each op version; one newer than the table this reader was built from may
        // mean something else, so it is refused rather than read by its base name.
        if let Some(short) = op.name.strip_prefix("vhlo.") {
            if crate::vhlo_ops::attr_names(short).is_none() {
                return Err(unsupported(op, "a VHLO op version newer than this reader knows"));
            }
        }
        if let Some(u) = unary(name) {
            return self.emit_results(cx, op, Op::Unary(u), &ins);
        }
        if let Some(b) = binary(name) {
            return self.emit_results(cx, op, Op::Binary(b), &ins);
        }
        let a = Attrs(op);
        let hlo = match name {
            "constant" => {
                let lit = literal(op, a.get("value")?)?;
                let shape = lit.shape.clone();
                let id = self.emit(cx, op, Op::Constant(Box::new(lit)), &[], shape)?;
                let (v, _) = op.results.first().ok_or_else(|| invalid(op, "a constant without a result"))?;
                cx.values.insert(*v, id);
                return Ok(());
            }
            "compare" => {
                let direction = match a.enum_("comparison_direction")? {
                    "EQ" => CompareDirection::Eq,
                    "NE" => CompareDirection::Ne,
                    "LT" => CompareDirection::Lt,
                    "LE" => CompareDirection::Le,
                    "GT" => CompareDirection::Gt,
                    _ => CompareDirection::Ge,
                };
                let compare_type = match a.opt("compare_type").map(|t| enum_of(op, t)).transpose()? {
                    Some("FLOAT") => Some(CompareType::Float),
                    Some("TOTALORDER") => Some(CompareType::TotalOrder),
                    Some("SIGNED") => Some(CompareType::Signed),
                    Some("UNSIGNED") => Some(CompareType::Unsigned),
                    _ => None,
                };
                Op::Compare { direction, compare_type }
            }
            "select" => Op::Select,
            "clamp" => Op::Clamp,
            "convert" => Op::Convert,
            "bitcast_convert" => Op::BitcastConvert,
            "reduce_precision" => {
                Op::ReducePrecision { exponent_bits: a.int("exponent_bits")?, mantissa_bits: a.int("mantissa_bits")? }
            }
            "broadcast_in_dim" => return self.broadcast_in_dim(cx, op, &ins, a.ints("broadcast_dimensions")?),
            "reshape" => Op::Reshape,
            "transpose" => Op::Transpose { dimensions: a.ints("permutation")? },
            "reverse" => Op::Reverse { dimensions: a.ints("dimensions")? },
            "iota" => Op::Iota { dimension: a.int("iota_dimension")? },
            "slice" => {
                let (s, l, st) = (a.ints("start_indices")?, a.ints("limit_indices")?, a.ints("strides")?);
                if s.len() != l.len() || s.len() != st.len() {
                    return Err(invalid(op, "start, limit and stride lists of different lengths"));
                }
                let dims = (0..s.len()).map(|i| SliceDim { start: s[i], limit: l[i], stride: st[i] }).collect();
                Op::Slice { dims }
            }
            "dynamic_slice" => Op::DynamicSlice { sizes: a.ints("slice_sizes")? },
            "dynamic_update_slice" => Op::DynamicUpdateSlice,
            "concatenate" => Op::Concatenate { dimension: a.int("dimension")? },
            "pad" => {
                let (lo, hi, int) =
                    (a.ints("edge_padding_low")?, a.ints("edge_padding_high")?, a.ints("interior_padding")?);
                if lo.len() != hi.len() || lo.len() != int.len() {
                    return Err(invalid(op, "padding lists of different lengths"));
                }
                Op::Pad { dims: (0..lo.len()).map(|i| PadDim { low: lo[i], high: hi[i], interior: int[i] }).collect() }
            }
            "tuple" => Op::Tuple,
            "get_tuple_element" => Op::GetTupleElement { index: a.int("index")? as u64 },
            "get_dimension_size" => Op::GetDimensionSize { dimension: a.int("dimension")? },
            "reduce" => {
                let to_apply = self.sub_comp(cx, op, 0, "region")?;
                Op::Reduce { dimensions: a.ints("dimensions")?, to_apply }
            }
            "reduce_window" => {
                let to_apply = self.sub_comp(cx, op, 0, "region")?;
                let rank = ins.first().and_then(|&i| cx.shape(i).as_array()).map_or(0, |s| s.rank());
                Op::ReduceWindow {
                    window: window(
                        &a,
                        rank,
                        "window_dimensions",
                        "window_strides",
                        "base_dilations",
                        "window_dilations",
                        None,
                    )?,
                    to_apply,
                }
            }
            "select_and_scatter" => {
                let select = self.sub_comp(cx, op, 0, "select")?;
                let scatter = self.sub_comp(cx, op, 1, "scatter")?;
                let rank = ins.first().and_then(|&i| cx.shape(i).as_array()).map_or(0, |s| s.rank());
                Op::SelectAndScatter {
                    window: window(&a, rank, "window_dimensions", "window_strides", "", "", None)?,
                    select,
                    scatter,
                }
            }
            "map" => {
                let to_apply = self.sub_comp(cx, op, 0, "region")?;
                Op::Map { dimensions: a.ints("dimensions")?, to_apply }
            }
            "dot_general" | "dot" => {
                let dims = if name == "dot" {
                    DotDims {
                        lhs_contracting: vec![1.min(rank_of(cx, &ins, 0) as i64 - 1)],
                        rhs_contracting: vec![0],
                        ..Default::default()
                    }
                } else {
                    DotDims {
                        lhs_batch: a.ints("lhs_batching_dimensions")?,
                        lhs_contracting: a.ints("lhs_contracting_dimensions")?,
                        rhs_batch: a.ints("rhs_batching_dimensions")?,
                        rhs_contracting: a.ints("rhs_contracting_dimensions")?,
                    }
                };
                Op::Dot { dims, precision: precision(op, a.opt("precision_config"))?, algorithm: None }
            }
            "convolution" => {
                let spatial = a.ints("input_spatial_dimensions")?;
                let n = spatial.len();
                let dims = ConvDims {
                    input_batch: a.int("input_batch_dimension")?,
                    input_feature: a.int("input_feature_dimension")?,
                    input_spatial: spatial,
                    kernel_input_feature: a.int("kernel_input_feature_dimension")?,
                    kernel_output_feature: a.int("kernel_output_feature_dimension")?,
                    kernel_spatial: a.ints("kernel_spatial_dimensions")?,
                    output_batch: a.int("output_batch_dimension")?,
                    output_feature: a.int("output_feature_dimension")?,
                    output_spatial: a.ints("output_spatial_dimensions")?,
                };
                let kernel_shape = ins.get(1).and_then(|&i| cx.shape(i).as_array()).cloned();
                let sizes: Vec<i64> = match &kernel_shape {
                    Some(k) => {
                        dims.kernel_spatial.iter().map(|&d| k.dims.get(d as usize).copied().unwrap_or(1)).collect()
                    }
                    None => vec![1; n],
                };
                let mut w =
                    window(&a, n, "", "window_strides", "lhs_dilation", "rhs_dilation", Some("window_reversal"))?;
                for (d, s) in w.dims.iter_mut().zip(sizes) {
                    d.size = s;
                }
                Op::Convolution {
                    window: w,
                    dims,
                    feature_group_count: a.int("feature_group_count")?,
                    batch_group_count: a.int("batch_group_count")?,
                    precision: precision(op, a.opt("precision_config"))?,
                }
            }
            "gather" => Op::Gather {
                dims: GatherDims {
                    offset_dims: a.ints("offset_dims")?,
                    collapsed_slice_dims: a.ints("collapsed_slice_dims")?,
                    start_index_map: a.ints("start_index_map")?,
                    index_vector_dim: a.int("index_vector_dim")?,
                    operand_batching_dims: a.ints_or_empty("operand_batching_dims")?,
                    start_indices_batching_dims: a.ints_or_empty("start_indices_batching_dims")?,
                },
                slice_sizes: a.ints("slice_sizes")?,
                indices_are_sorted: a.bool_or("indices_are_sorted", false)?,
            },
            "scatter" => {
                let to_apply = self.sub_comp(cx, op, 0, "region")?;
                Op::Scatter {
                    dims: ScatterDims {
                        update_window_dims: a.ints("update_window_dims")?,
                        inserted_window_dims: a.ints("inserted_window_dims")?,
                        scatter_dims_to_operand_dims: a.ints("scatter_dims_to_operand_dims")?,
                        index_vector_dim: a.int("index_vector_dim")?,
                        input_batching_dims: a.ints_or_empty("input_batching_dims")?,
                        scatter_indices_batching_dims: a.ints_or_empty("scatter_indices_batching_dims")?,
                    },
                    indices_are_sorted: a.bool_or("indices_are_sorted", false)?,
                    unique_indices: a.bool_or("unique_indices", false)?,
                    to_apply,
                }
            }
            "sort" => {
                let to_apply = self.sub_comp(cx, op, 0, "comparator")?;
                Op::Sort { dimension: a.int("dimension")?, is_stable: a.bool_or("is_stable", false)?, to_apply }
            }
            "while" => return self.while_(cx, op, &ins),
            "case" | "if" => return self.conditional(cx, op, &ins, name == "if"),
            // A composite (`lax.composite`) is a call of its decomposition, as XLA reads it, with its
            // name, attributes and version as the frontend attributes XLA gives it.
            "call" | "composite" => {
                let is_composite = name == "composite";
                let callee = match a.get(if is_composite { "decomposition" } else { "callee" })? {
                    Attr::String(s) | Attr::SymbolRef(s) => s.clone(),
                    other => return Err(invalid(op, format!("a callee name, found {other:?}"))),
                };
                let to_apply = self.func(&callee, op.pos)?;
                let result = self.comps[to_apply.index()].root_instr().shape.clone();
                let id = self.emit(cx, op, Op::Call { to_apply, is_composite }, &ins, result)?;
                if is_composite {
                    let mut attrs = vec![("composite.name".to_string(), attr_text(a.get("name")?))];
                    if let Some(d) = a.opt("composite_attributes") {
                        attrs.push(("composite.attributes".to_string(), attr_text(d)));
                    }
                    if let Some(v) = a.opt("version") {
                        attrs.push(("composite.version".to_string(), attr_text(v)));
                    }
                    cx.comp.instr_mut(id).meta.frontend_attributes = attrs;
                }
                if op.results.len() == 1 && !self.comps[to_apply.index()].root_instr().shape.is_tuple() {
                    cx.values.insert(op.results[0].0, id);
                    return Ok(());
                }
                let shapes = op.results.iter().map(|(_, t)| shape_of(op, t)).collect::<Result<Vec<_>>>()?;
                return self.untuple(cx, op, id, shapes);
            }
            "optimization_barrier" => {
                let shapes: Vec<Shape> = ins.iter().map(|&i| cx.shape(i).clone()).collect();
                let t = self.emit(cx, op, Op::Tuple, &ins, Shape::Tuple(shapes.clone()))?;
                let b = self.emit(cx, op, Op::OptimizationBarrier, &[t], Shape::Tuple(shapes.clone()))?;
                return self.untuple(cx, op, b, shapes);
            }
            "rng_bit_generator" => {
                let algorithm = match a.enum_("rng_algorithm")? {
                    "THREE_FRY" => RngAlgorithm::ThreeFry,
                    "PHILOX" => RngAlgorithm::Philox,
                    _ => RngAlgorithm::Default,
                };
                Op::RngBitGenerator { algorithm }
            }
            "rng" => Op::Rng {
                distribution: match a.enum_("rng_distribution")? {
                    "NORMAL" => hlo_ir::RngDistribution::Normal,
                    _ => hlo_ir::RngDistribution::Uniform,
                },
            },
            "after_all" => Op::AfterAll,
            "partition_id" => Op::PartitionId,
            "replica_id" => Op::ReplicaId,
            "custom_call" => return self.emit_custom_call(cx, op, &a, &ins),
            // CHLO ops that HLO has (in text; artifacts carry them as custom calls).
            "erf" => Op::Unary(UnaryOp::Erf),
            "sinh" => Op::Unary(UnaryOp::Sinh),
            "cosh" => Op::Unary(UnaryOp::Cosh),
            "asin" => Op::Unary(UnaryOp::Asin),
            "acos" => Op::Unary(UnaryOp::Acos),
            "asinh" => Op::Unary(UnaryOp::Asinh),
            "acosh" => Op::Unary(UnaryOp::Acosh),
            "atanh" => Op::Unary(UnaryOp::Atanh),
            "top_k" => Op::TopK { k: a.int("k")?, largest: a.bool_or("largest", true)? },
            // CHLO ops that HLO lacks: the elementwise ops of XLA's legalization.
            "lgamma" => return self.emit_gamma(cx, op, crate::chlo_gamma::Gamma::Lgamma, &ins),
            "digamma" => return self.emit_gamma(cx, op, crate::chlo_gamma::Gamma::Digamma, &ins),
            "fft" => Op::Fft {
                fft_type: match a.enum_("fft_type")? {
                    "IFFT" => hlo_ir::FftType::Ifft,
                    "RFFT" => hlo_ir::FftType::Rfft,
                    "IRFFT" => hlo_ir::FftType::Irfft,
                    _ => hlo_ir::FftType::Fft,
                },
                fft_length: a.ints("fft_length")?,
            },
            _ => return Err(unsupported(op, "no HLO lowering for this op")),
        };
        let hlo = match hlo {
            Op::RngBitGenerator { .. } => {
                let shapes = op.results.iter().map(|(_, t)| shape_of(op, t)).collect::<Result<Vec<_>>>()?;
                let t = self.emit(cx, op, hlo, &ins, Shape::Tuple(shapes.clone()))?;
                return self.untuple(cx, op, t, shapes);
            }
            other => other,
        };
        self.emit_results(cx, op, hlo, &ins)
    }

    /// StableHLO's `broadcast_in_dim` may stretch a size-1 operand dimension; HLO's
    /// `broadcast` may not, so such dimensions are reshaped away first.
    fn broadcast_in_dim(&mut self, cx: &mut Ctx, op: &Operation, ins: &[InstrId], dims: Vec<i64>) -> Result<()> {
        let (&[x], [(v, ty)]) = (ins, op.results.as_slice()) else {
            return Err(invalid(op, "one operand and one result"));
        };
        let out = shape_of(op, ty)?;
        let (Some(xs), Some(os)) = (cx.shape(x).as_array().cloned(), out.as_array()) else {
            return Err(invalid(op, "array operand and result"));
        };
        if dims.len() != xs.rank() || dims.iter().any(|&d| d < 0 || d as usize >= os.rank()) {
            return Err(invalid(op, "broadcast_dimensions with one in-range entry per operand dimension"));
        }
        let keep: Vec<usize> =
            (0..xs.rank()).filter(|&i| !(xs.dims[i] == 1 && os.dims[dims[i] as usize] != 1)).collect();
        let mut operand = x;
        if keep.len() != xs.rank() {
            let kept_dims: Vec<i64> = keep.iter().map(|&i| xs.dims[i]).collect();
            operand = self.emit(cx, op, Op::Reshape, &[x], Shape::array(xs.dtype, kept_dims))?;
        }
        let dimensions = keep.iter().map(|&i| dims[i]).collect();
        let id = self.emit(cx, op, Op::Broadcast { dimensions }, &[operand], out)?;
        cx.values.insert(*v, id);
        Ok(())
    }

    /// A custom call keeps its target, API version, side effect, called computations and
    /// aliasing; its backend config (a string, or the dictionary typed-FFI calls carry) and
    /// frontend attributes go to the instruction's metadata. Several results make a tuple.
    fn emit_custom_call(&mut self, cx: &mut Ctx, op: &Operation, a: &Attrs, ins: &[InstrId]) -> Result<()> {
        // CHLO ops without a StableHLO equivalent travel in portable artifacts as custom calls
        // named `mhlo.NAME` with their attributes in `mhlo.attributes`; those HLO has natively
        // become that op again, as XLA does when it reads such an artifact.
        if let Some(Attr::String(target)) = a.opt("call_target_name") {
            let inner = match a.opt("mhlo.attributes") {
                Some(Attr::Dict(kv)) => kv.clone(),
                _ => Vec::new(),
            };
            let chlo = Operation { attrs: inner, ..op.clone() };
            let hlo = match target.as_str() {
                "mhlo.erf" => Some(Op::Unary(UnaryOp::Erf)),
                "mhlo.sinh" => Some(Op::Unary(UnaryOp::Sinh)),
                "mhlo.cosh" => Some(Op::Unary(UnaryOp::Cosh)),
                "mhlo.asin" => Some(Op::Unary(UnaryOp::Asin)),
                "mhlo.acos" => Some(Op::Unary(UnaryOp::Acos)),
                "mhlo.asinh" => Some(Op::Unary(UnaryOp::Asinh)),
                "mhlo.acosh" => Some(Op::Unary(UnaryOp::Acosh)),
                "mhlo.atanh" => Some(Op::Unary(UnaryOp::Atanh)),
                "mhlo.topk" => {
                    let a = Attrs(&chlo);
                    Some(Op::TopK { k: a.int("k")?, largest: a.bool_or("largest", true)? })
                }
                _ => None,
            };
            if let Some(hlo) = hlo {
                return self.emit_results(cx, op, hlo, ins);
            }
        }
        let hlo = self.custom_call(op, a)?;
        let shapes = op.results.iter().map(|(_, t)| shape_of(op, t)).collect::<Result<Vec<_>>>()?;
        let single = shapes.len() == 1;
        let shape = if single { shapes[0].clone() } else { Shape::Tuple(shapes.clone()) };
        let id = self.emit(cx, op, hlo, ins, shape)?;
        let meta = &mut cx.comp.instr_mut(id).meta;
        match (a.opt("backend_config"), a.opt("mhlo.backend_config")) {
            (Some(Attr::String(s)), _) if !s.is_empty() => meta.backend_config = Some(format!("{s:?}")),
            (_, Some(d @ Attr::Dict(_))) => meta.backend_config = Some(format!("{:?}", attr_text(d))),
            _ => {}
        }
        if let Some(Attr::Dict(kv)) = a.opt("mhlo.frontend_attributes") {
            meta.frontend_attributes = kv.iter().map(|(k, v)| (k.clone(), attr_text(v))).collect();
        }
        if single {
            cx.values.insert(op.results[0].0, id);
            return Ok(());
        }
        self.untuple(cx, op, id, shapes)
    }

    fn custom_call(&mut self, op: &Operation, a: &Attrs) -> Result<Op> {
        let target = match a.get("call_target_name")? {
            Attr::String(s) => s.clone(),
            other => return Err(invalid(op, format!("a call_target_name string, found {other:?}"))),
        };
        let mut called_computations = Vec::new();
        if let Some(Attr::Array(names)) = a.opt("called_computations") {
            for n in names {
                if let Attr::String(s) | Attr::SymbolRef(s) = n {
                    called_computations.push(self.func(s, op.pos)?);
                }
            }
        }
        let api_version = match a.opt("api_version").map(|v| enum_of(op, v)).transpose()? {
            Some("API_VERSION_ORIGINAL") => Some(CustomCallApiVersion::Original),
            Some("API_VERSION_STATUS_RETURNING") => Some(CustomCallApiVersion::StatusReturning),
            Some("API_VERSION_STATUS_RETURNING_UNIFIED") => Some(CustomCallApiVersion::StatusReturningUnified),
            Some("API_VERSION_TYPED_FFI") => Some(CustomCallApiVersion::TypedFfi),
            _ => None,
        };
        Ok(Op::CustomCall(Box::new(CustomCall {
            target,
            api_version,
            called_computations,
            has_side_effect: a.bool_or("has_side_effect", false)?,
            operand_layout_constraints: None,
            output_to_operand_aliasing: match a.opt("output_operand_aliases") {
                Some(Attr::Array(xs)) => xs
                    .iter()
                    .filter_map(|x| match x {
                        Attr::OutputOperandAlias { output_tuple_indices, operand_index, operand_tuple_indices } => {
                            Some((output_tuple_indices.clone(), *operand_index, operand_tuple_indices.clone()))
                        }
                        Attr::Dict(kv) => {
                            let get = |k: &str| kv.iter().find(|(n, _)| n == k).and_then(|(_, v)| ints_of(v));
                            Some((
                                get("output_tuple_indices")?,
                                *get("operand_index")?.first()?,
                                get("operand_tuple_indices")?,
                            ))
                        }
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            },
            literal: None,
        })))
    }

    /// `while`: the loop state is one tuple of the operands plus any values the regions use
    /// from above (passed through unchanged by the body).
    fn while_(&mut self, cx: &mut Ctx, op: &Operation, ins: &[InstrId]) -> Result<()> {
        let [cond_r, body_r] = op.regions.as_slice() else { return Err(invalid(op, "two regions (cond, body)")) };
        let mut captured: Vec<ValueId> = free_values(cond_r);
        for v in free_values(body_r) {
            if !captured.contains(&v) {
                captured.push(v);
            }
        }
        let captures =
            captured.iter().map(|&v| Ok((v, cx.shape(cx.get(op, v)?).clone()))).collect::<Result<Vec<_>>>()?;
        let cond_name = self.fresh_comp_name("while_cond");
        let cond = self.region_comp(
            op,
            cond_r,
            cond_name,
            Params::Tuple { captures: captures.clone(), root: TupleRoot::Single },
        )?;
        let cond = self.add(cond);
        let body_name = self.fresh_comp_name("while_body");
        let params = Params::Tuple { captures: captures.clone(), root: TupleRoot::TupleWithCaptures };
        let body = self.region_comp(op, body_r, body_name, params)?;
        let body = self.add(body);
        let mut state = ins.to_vec();
        for &v in &captured {
            state.push(cx.get(op, v)?);
        }
        let shapes: Vec<Shape> = state.iter().map(|&i| cx.shape(i).clone()).collect();
        let t = self.emit(cx, op, Op::Tuple, &state, Shape::Tuple(shapes.clone()))?;
        let w = self.emit(cx, op, Op::While { condition: cond, body }, &[t], Shape::Tuple(shapes.clone()))?;
        let result_shapes = shapes[..op.results.len().min(shapes.len())].to_vec();
        self.untuple(cx, op, w, result_shapes)
    }

    /// `case` (an s32 index) and `if` (a pred): each branch becomes a computation over a tuple
    /// of the values it uses from above.
    fn conditional(&mut self, cx: &mut Ctx, op: &Operation, ins: &[InstrId], is_if: bool) -> Result<()> {
        let &[selector] = ins else { return Err(invalid(op, "one selector operand")) };
        let mut branches = Vec::new();
        let mut operands = vec![selector];
        let regions: Vec<&Region> = op.regions.iter().collect();
        for r in regions {
            let captured = free_values(r);
            let captures =
                captured.iter().map(|&v| Ok((v, cx.shape(cx.get(op, v)?).clone()))).collect::<Result<Vec<_>>>()?;
            let name = self.fresh_comp_name("branch");
            let comp =
                self.region_comp(op, r, name, Params::Tuple { captures: captures.clone(), root: TupleRoot::Tuple })?;
            branches.push(self.add(comp));
            let elems = captured.iter().map(|&v| cx.get(op, v)).collect::<Result<Vec<_>>>()?;
            let shapes = captures.into_iter().map(|(_, s)| s).collect();
            let t = self.emit(cx, op, Op::Tuple, &elems, Shape::Tuple(shapes))?;
            operands.push(t);
        }
        if is_if && branches.len() != 2 {
            return Err(invalid(op, "two branches"));
        }
        let shapes = op.results.iter().map(|(_, t)| shape_of(op, t)).collect::<Result<Vec<_>>>()?;
        let c = self.emit(cx, op, Op::Conditional { branches }, &operands, Shape::Tuple(shapes.clone()))?;
        self.untuple(cx, op, c, shapes)
    }
}

/// How a region's computation receives its inputs.
enum Params {
    /// One parameter per block argument (functions, reducers, comparators); constants the
    /// region uses from above are copied in.
    Args { consts: Vec<(ValueId, Literal)> },
    /// One tuple parameter holding the block arguments then the captured values.
    Tuple {
        captures: Vec<(ValueId, Shape)>,
        /// The root: the returned value alone (a while condition), a tuple of the returned
        /// values (a branch), or that tuple followed by the captures (a while body).
        root: TupleRoot,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TupleRoot {
    Single,
    Tuple,
    TupleWithCaptures,
}

impl Params {
    fn wants_tuple_root(&self) -> bool {
        matches!(self, Params::Tuple { root: TupleRoot::Tuple | TupleRoot::TupleWithCaptures, .. })
    }
}

/// Values a region uses but does not define, in order of first use.
fn free_values(region: &Region) -> Vec<ValueId> {
    fn defs(r: &Region, out: &mut HashSet<ValueId>) {
        for b in &r.blocks {
            out.extend(b.args.iter().map(|(v, _)| *v));
            for op in &b.ops {
                out.extend(op.results.iter().map(|(v, _)| *v));
                op.regions.iter().for_each(|r| defs(r, out));
            }
        }
    }
    fn uses(r: &Region, defined: &HashSet<ValueId>, out: &mut Vec<ValueId>) {
        for b in &r.blocks {
            for op in &b.ops {
                for v in &op.operands {
                    if !defined.contains(v) && !out.contains(v) {
                        out.push(*v);
                    }
                }
                op.regions.iter().for_each(|r| uses(r, defined, out));
            }
        }
    }
    let mut defined = HashSet::new();
    defs(region, &mut defined);
    let mut out = Vec::new();
    uses(region, &defined, &mut out);
    out
}

fn rank_of(cx: &Ctx, ins: &[InstrId], i: usize) -> usize {
    ins.get(i).and_then(|&x| cx.shape(x).as_array()).map_or(1, |s| s.rank())
}

fn unary(name: &str) -> Option<UnaryOp> {
    Some(match name {
        "abs" => UnaryOp::Abs,
        "cbrt" => UnaryOp::Cbrt,
        "ceil" => UnaryOp::Ceil,
        "count_leading_zeros" => UnaryOp::Clz,
        "cosine" => UnaryOp::Cos,
        "exponential" => UnaryOp::Exp,
        "exponential_minus_one" => UnaryOp::Expm1,
        "floor" => UnaryOp::Floor,
        "imag" => UnaryOp::Imag,
        "is_finite" => UnaryOp::IsFinite,
        "log" => UnaryOp::Log,
        "log_plus_one" => UnaryOp::Log1p,
        "logistic" => UnaryOp::Logistic,
        "negate" => UnaryOp::Negate,
        "not" => UnaryOp::Not,
        "popcnt" => UnaryOp::PopulationCount,
        "real" => UnaryOp::Real,
        "round_nearest_afz" => UnaryOp::RoundNearestAfz,
        "round_nearest_even" => UnaryOp::RoundNearestEven,
        "rsqrt" => UnaryOp::Rsqrt,
        "sign" => UnaryOp::Sign,
        "sine" => UnaryOp::Sin,
        "sqrt" => UnaryOp::Sqrt,
        "tan" => UnaryOp::Tan,
        "tanh" => UnaryOp::Tanh,
        _ => return None,
    })
}

fn binary(name: &str) -> Option<BinaryOp> {
    Some(match name {
        "add" => BinaryOp::Add,
        "subtract" => BinaryOp::Subtract,
        "multiply" => BinaryOp::Multiply,
        "divide" => BinaryOp::Divide,
        "remainder" => BinaryOp::Remainder,
        "maximum" => BinaryOp::Maximum,
        "minimum" => BinaryOp::Minimum,
        "power" => BinaryOp::Power,
        "atan2" => BinaryOp::Atan2,
        "and" => BinaryOp::And,
        "or" => BinaryOp::Or,
        "xor" => BinaryOp::Xor,
        "shift_left" => BinaryOp::ShiftLeft,
        "shift_right_arithmetic" => BinaryOp::ShiftRightArithmetic,
        "shift_right_logical" => BinaryOp::ShiftRightLogical,
        "complex" => BinaryOp::Complex,
        _ => return None,
    })
}

/// The HLO shape of a StableHLO type; dynamic dimensions are not supported.
fn shape_of(op: &Operation, ty: &Type) -> Result<Shape> {
    Ok(match ty {
        Type::Tensor { dims, elem } => {
            let Type::Scalar(d) = **elem else { return Err(unsupported(op, &format!("element type {elem:?}"))) };
            if dims.iter().any(|&d| d < 0) {
                return Err(unsupported(op, "dynamic dimensions"));
            }
            let elems = dims.iter().try_fold(1i64, |acc, &d| acc.checked_mul(d).filter(|&n| n <= MAX_ELEMENTS));
            if elems.is_none() {
                return Err(unsupported(op, &format!("a tensor of more than 2^40 elements: {dims:?}")));
            }
            Shape::array(d, dims.clone())
        }
        Type::Scalar(d) => Shape::scalar(*d),
        Type::Token => Shape::Token,
        Type::Tuple(ts) => Shape::Tuple(ts.iter().map(|t| shape_of(op, t)).collect::<Result<_>>()?),
        other => return Err(unsupported(op, &format!("type {other:?}"))),
    })
}

/// An attribute as MLIR-like text, for metadata kept verbatim (backend configs).
fn attr_text(a: &Attr) -> String {
    match a {
        Attr::String(s) => s.clone(),
        Attr::Enum(s) => s.clone(),
        Attr::Bool(b) => b.to_string(),
        Attr::Int { value, .. } => value.to_string(),
        Attr::Float { value, .. } => value.to_string(),
        Attr::SymbolRef(s) => format!("@{s}"),
        Attr::Array(xs) => format!("[{}]", xs.iter().map(attr_text).collect::<Vec<_>>().join(", ")),
        Attr::Dict(kv) => {
            format!("{{{}}}", kv.iter().map(|(k, v)| format!("{k} = {}", attr_text(v))).collect::<Vec<_>>().join(", "))
        }
        other => format!("{other:?}"),
    }
}

fn enum_of<'x>(op: &Operation, a: &'x Attr) -> Result<&'x str> {
    match a {
        Attr::Enum(s) | Attr::String(s) => Ok(s),
        other => Err(invalid(op, format!("an enum attribute, found {other:?}"))),
    }
}

/// Attribute accessors that name the op and attribute in their errors.
struct Attrs<'o>(&'o Operation);

impl<'o> Attrs<'o> {
    fn opt(&self, name: &str) -> Option<&'o Attr> {
        self.0.attr(name)
    }

    fn get(&self, name: &str) -> Result<&'o Attr> {
        self.opt(name).ok_or_else(|| invalid(self.0, format!("an attribute `{name}`")))
    }

    fn enum_(&self, name: &str) -> Result<&'o str> {
        enum_of(self.0, self.get(name)?)
    }

    fn int(&self, name: &str) -> Result<i64> {
        match self.get(name)? {
            Attr::Int { value, .. } if value.unsigned_abs() <= MAX_INT as u64 => Ok(*value),
            other => Err(invalid(self.0, format!("`{name}` an integer, found {other:?}"))),
        }
    }

    fn bool_or(&self, name: &str, default: bool) -> Result<bool> {
        match self.opt(name) {
            Some(Attr::Bool(b)) => Ok(*b),
            Some(Attr::Unit) => Ok(true),
            Some(other) => Err(invalid(self.0, format!("`{name}` a boolean, found {other:?}"))),
            None => Ok(default),
        }
    }

    fn ints(&self, name: &str) -> Result<Vec<i64>> {
        ints_of(self.get(name)?)
            .filter(|v| v.iter().all(|x| x.unsigned_abs() <= MAX_INT as u64))
            .ok_or_else(|| invalid(self.0, format!("`{name}` a list of integers within ±2^31")))
    }

    fn ints_or_empty(&self, name: &str) -> Result<Vec<i64>> {
        match self.opt(name) {
            None => Ok(Vec::new()),
            Some(_) => self.ints(name),
        }
    }

    /// Booleans of a dense `i1` tensor or an array (`window_reversal`).
    fn bools(&self, name: &str) -> Result<Option<Vec<bool>>> {
        Ok(match self.opt(name) {
            None => None,
            Some(Attr::Tensor { data, ty }) => Some(expand(tensor_len(ty), data.iter().map(|&b| b != 0).collect())),
            Some(Attr::Array(xs)) => Some(xs.iter().map(|x| matches!(x, Attr::Bool(true))).collect()),
            Some(Attr::Other(_)) => None,
            Some(other) => return Err(invalid(self.0, format!("`{name}` booleans, found {other:?}"))),
        })
    }
}

fn tensor_len(ty: &Type) -> usize {
    match ty {
        Type::Tensor { dims, .. } => dims.iter().map(|&d| d.max(0) as usize).product(),
        _ => 1,
    }
}

fn expand<T: Clone>(n: usize, v: Vec<T>) -> Vec<T> {
    if v.len() == 1 && n != 1 {
        vec![v[0].clone(); n]
    } else {
        v
    }
}

/// Integers of a dense integer tensor, an array of integers, or one integer.
fn ints_of(a: &Attr) -> Option<Vec<i64>> {
    match a {
        Attr::Tensor { ty: ty @ Type::Tensor { elem, .. }, data } => {
            let Type::Scalar(d) = **elem else { return None };
            let size = d.byte_size();
            if !d.is_integer() || size == 0 || data.len() % size != 0 {
                return None;
            }
            let v: Vec<i64> = data.chunks(size).map(|c| le_int(c, d.is_signed_integer())).collect();
            Some(expand(tensor_len(ty), v))
        }
        // Nested arrays (`pad = [[1, 1], [0, 0]]` in text) flatten row-major.
        Attr::Array(xs) => Some(xs.iter().map(ints_of).collect::<Option<Vec<_>>>()?.concat()),
        Attr::Int { value, .. } => Some(vec![*value]),
        _ => None,
    }
}

fn le_int(bytes: &[u8], signed: bool) -> i64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[..n].copy_from_slice(&bytes[..n]);
    let raw = u64::from_le_bytes(buf);
    if signed && n < 8 {
        let shift = 64 - 8 * n as u32;
        ((raw << shift) as i64) >> shift
    } else {
        raw as i64
    }
}

fn precision(op: &Operation, a: Option<&Attr>) -> Result<Vec<Precision>> {
    let Some(Attr::Array(xs)) = a else { return Ok(Vec::new()) };
    let ps = xs
        .iter()
        .map(|x| {
            Ok(match enum_of(op, x)? {
                "HIGH" => Precision::High,
                "HIGHEST" => Precision::Highest,
                _ => Precision::Default,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // All-default precision is what HLO prints as nothing.
    Ok(if ps.iter().all(|p| *p == Precision::Default) { Vec::new() } else { ps })
}

/// A window from per-dimension attribute lists (an empty name or a missing attribute means
/// the default) and an `Nx2` `padding`.
fn window(
    a: &Attrs,
    rank: usize,
    size: &str,
    stride: &str,
    base: &str,
    win: &str,
    reversal: Option<&str>,
) -> Result<Window> {
    let list = |name: &str, default: i64| -> Result<Vec<i64>> {
        if name.is_empty() || a.opt(name).is_none() || matches!(a.opt(name), Some(Attr::Other(_))) {
            return Ok(vec![default; rank]);
        }
        let v = a.ints(name)?;
        if v.len() != rank {
            return Err(invalid(a.0, format!("`{name}` with {rank} entries, found {}", v.len())));
        }
        Ok(v)
    };
    let sizes = list(size, 1)?;
    let strides = list(stride, 1)?;
    let bases = list(base, 1)?;
    let wins = list(win, 1)?;
    let pads = match a.opt("padding") {
        Some(p) if !matches!(p, Attr::Other(_)) => {
            let v = a.ints("padding")?;
            if v.len() != 2 * rank {
                return Err(invalid(a.0, format!("`padding` with {rank}x2 entries")));
            }
            v
        }
        _ => vec![0; 2 * rank],
    };
    let rev = match reversal {
        Some(r) => a.bools(r)?.unwrap_or_else(|| vec![false; rank]),
        None => vec![false; rank],
    };
    if rev.len() != rank {
        return Err(invalid(a.0, "window_reversal with one entry per dimension"));
    }
    Ok(Window {
        dims: (0..rank)
            .map(|i| WindowDim {
                size: sizes[i],
                stride: strides[i],
                padding_low: pads[2 * i],
                padding_high: pads[2 * i + 1],
                window_dilation: wins[i],
                base_dilation: bases[i],
                window_reversal: rev[i],
            })
            .collect(),
    })
}

/// A dense elements attribute as a literal: raw little-endian bytes, or one element for a splat.
fn literal(op: &Operation, a: &Attr) -> Result<Literal> {
    let Attr::Tensor { ty, data } = a else { return Err(invalid(op, format!("a dense tensor value, found {a:?}"))) };
    let Shape::Array(shape) = shape_of(op, ty)? else { return Err(invalid(op, "a tensor constant")) };
    let n = shape.num_elements() as usize;
    if n > MAX_CONSTANT_ELEMENTS {
        return Err(unsupported(op, &format!("a constant of {n} elements (at most 2^26)")));
    }
    let d = shape.dtype;
    let size = d.byte_size().max(1);
    let data: Vec<u8> = if data.len() == size && n != 1 {
        data.iter().copied().cycle().take(size * n).collect()
    } else if data.len() == size * n {
        data.clone()
    } else {
        return Err(invalid(op, format!("{} bytes of data for {n} elements of {d}", data.len())));
    };
    Ok(Literal::array(shape.clone(), array_data(d, &data)))
}

fn array_data(d: DType, b: &[u8]) -> ArrayData {
    fn chunks<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        b.chunks_exact(N).map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            a
        })
    }
    match d {
        DType::Pred => ArrayData::Pred(b.iter().map(|&x| x != 0).collect()),
        DType::S2 | DType::S4 | DType::S8 => ArrayData::S8(b.iter().map(|&x| x as i8).collect()),
        DType::U2 | DType::U4 | DType::U8 => ArrayData::U8(b.to_vec()),
        DType::S16 => ArrayData::S16(chunks::<2>(b).map(i16::from_le_bytes).collect()),
        DType::U16 => ArrayData::U16(chunks::<2>(b).map(u16::from_le_bytes).collect()),
        DType::S32 => ArrayData::S32(chunks::<4>(b).map(i32::from_le_bytes).collect()),
        DType::U32 => ArrayData::U32(chunks::<4>(b).map(u32::from_le_bytes).collect()),
        DType::S64 => ArrayData::S64(chunks::<8>(b).map(i64::from_le_bytes).collect()),
        DType::U64 => ArrayData::U64(chunks::<8>(b).map(u64::from_le_bytes).collect()),
        DType::F16 => ArrayData::F16(chunks::<2>(b).map(|c| half::f16::from_bits(u16::from_le_bytes(c))).collect()),
        DType::BF16 => ArrayData::BF16(chunks::<2>(b).map(|c| half::bf16::from_bits(u16::from_le_bytes(c))).collect()),
        DType::F32 => ArrayData::F32(chunks::<4>(b).map(f32::from_le_bytes).collect()),
        DType::F64 => ArrayData::F64(chunks::<8>(b).map(f64::from_le_bytes).collect()),
        DType::C64 => ArrayData::C64(
            chunks::<8>(b)
                .map(|c| [f32::from_le_bytes([c[0], c[1], c[2], c[3]]), f32::from_le_bytes([c[4], c[5], c[6], c[7]])])
                .collect(),
        ),
        DType::C128 => ArrayData::C128(
            chunks::<16>(b)
                .map(|c| {
                    let (re, im) = c.split_at(8);
                    let mut r = [0u8; 8];
                    let mut i = [0u8; 8];
                    r.copy_from_slice(re);
                    i.copy_from_slice(im);
                    [f64::from_le_bytes(r), f64::from_le_bytes(i)]
                })
                .collect(),
        ),
        _ => ArrayData::Bits(b.to_vec()),
    }
}
