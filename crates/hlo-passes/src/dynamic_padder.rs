//! `dynamic-padder`: bounded dynamic shapes (`f32[<=8]`) as static arrays at their bound with
//! the sizes the run gives them carried beside them, as XLA's `DynamicPadder` does:
//! - every dynamic dimension of every instruction gets an `s32[]` instruction holding its size:
//!   `set-dimension-size`'s operand (the op itself becomes its input: the elements past the size
//!   are padding), propagated through elementwise ops, `broadcast`, `transpose`, a `reshape` that
//!   keeps the dimension whole, `slice`, `pad`, `concatenate` and `reverse` along other dimensions
//!   (a slice from 0 with stride 1 along it takes the smaller size), `reduce` and `reduce-window`
//!   results, `dot`, tuples and `get-tuple-element`;
//! - `get-dimension-size` is that size, or the constant size of a static dimension;
//! - ops that would read the padding are fed a masked operand, `select(iota < size, x, fill)`:
//!   a `reduce` or `reduce-window` over a dynamic dimension fills it with its init value, a `dot`
//!   contracting one with zeros;
//! - `dynamic-reshape` (and a dynamic operand of one with a static result) gathers, for each
//!   result element, the element of the operand at the same row-major position of the valid
//!   regions: the result's linear index in its runtime sizes, split by the operand's runtime sizes;
//! - any other op that reads a dynamic dimension is refused by name, never run on the padding.
//!
//! When the entry's result has dynamic dimensions, their sizes (and every size given to
//! `set-dimension-size` at run time, which must lie within the bound) become extra `s32[]` leaves
//! at the end of the root tuple, recorded in [`Module::dynamic_results`]: the caller cuts each
//! leaf to its size, checks the sizes and drops the extra leaves.
//!
//! Pre-condition: calls are inlined (sizes do not cross computation boundaries); the entry's
//! parameters are static. Post-condition: no `set-dimension-size`, `get-dimension-size` or
//! `dynamic-reshape` remains and every shape is static (the bound).

use crate::util::{compact, push_expansion_step, uniform_constant, NameUniquer};
use crate::PassError;
use hlo_ir::{
    ArrayShape, BinaryOp, CompId, CompareDirection, Computation, DType, DynamicCut, DynamicResults, GatherDims, Instr,
    InstrId, Literal, Module, Op, Shape, SizeCheck,
};
use std::collections::HashMap;

const PASS: &str = "dynamic-padder";

/// Whether the module has anything this pass changes: a dynamic shape or a dynamic-shape op.
pub fn needed(module: &Module) -> bool {
    let targeted = |i: &Instr| {
        matches!(i.op, Op::DynamicReshape | Op::SetDimensionSize { .. } | Op::GetDimensionSize { .. })
            || is_dynamic(&i.shape)
    };
    module.comps.iter().any(|c| c.instrs.iter().any(targeted))
}

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("dynamic-padder").entered();
    if !needed(module) {
        return Ok(false);
    }
    let mut names = NameUniquer::new(module);
    let entry = module.entry;
    let mut results = None;
    for c in 0..module.comps.len() {
        let is_entry = CompId(c as u32) == entry;
        let comp = &mut module.comps[c];
        let mut padder = Padder { comp, names: &mut names, sizes: HashMap::new(), checks: Vec::new(), is_entry };
        let ids: Vec<InstrId> = padder.comp.ids().collect();
        for id in ids {
            padder.visit(id)?;
        }
        let root = padder.comp.root;
        if is_entry {
            results = padder.finish_entry(module_aliases(&module.attrs))?;
        } else if padder.sizes.get(&root).is_some_and(Dyn::any) {
            let instr = padder.comp.instr(root).clone();
            return Err(unsupported(
                &instr,
                "a dynamic result of a called computation (its size would cross the call)",
            ));
        }
        compact(&mut module.comps[c])?;
    }
    for comp in &mut module.comps {
        for instr in &mut comp.instrs {
            make_static(&mut instr.shape);
            if let Op::Constant(lit) = &mut instr.op {
                make_static(&mut lit.shape);
            }
        }
    }
    let root_shape = module.entry_comp().root_instr().shape.clone();
    if let Some(layout) = &mut module.attrs.entry_computation_layout {
        layout.params.iter_mut().for_each(make_static);
        layout.result = root_shape;
    }
    module.dynamic_results = results;
    Ok(true)
}

/// Whether the module aliases inputs to outputs (`input_output_alias=`).
fn module_aliases(attrs: &hlo_ir::ModuleAttrs) -> bool {
    attrs.other.iter().any(|(k, _)| k == "input_output_alias")
}

/// The runtime sizes of one value: per dimension of an array, the `s32[]` instruction holding
/// its size where it is dynamic; per element of a tuple.
#[derive(Clone, Debug)]
enum Dyn {
    Static,
    Array(Vec<Option<InstrId>>),
    Tuple(Vec<Dyn>),
}

impl Dyn {
    fn any(&self) -> bool {
        match self {
            Dyn::Static => false,
            Dyn::Array(d) => d.iter().any(Option::is_some),
            Dyn::Tuple(t) => t.iter().any(Dyn::any),
        }
    }

    /// The sizes of each array leaf, depth first, following `shape`.
    fn leaves(&self, shape: &Shape, out: &mut Vec<Vec<Option<InstrId>>>) {
        match (self, shape) {
            (Dyn::Array(d), Shape::Array(_)) => out.push(d.clone()),
            (Dyn::Tuple(t), Shape::Tuple(s)) => t.iter().zip(s).for_each(|(d, s)| d.leaves(s, out)),
            (_, Shape::Array(a)) => out.push(vec![None; a.rank()]),
            (_, Shape::Tuple(s)) => s.iter().for_each(|s| Dyn::Static.leaves(s, out)),
            (_, Shape::Token) => {}
        }
    }
}

struct Padder<'a> {
    comp: &'a mut Computation,
    names: &'a mut NameUniquer,
    /// Instructions with at least one dynamic dimension.
    sizes: HashMap<InstrId, Dyn>,
    /// Sizes given to `set-dimension-size` at run time: (size, bound, instruction name).
    checks: Vec<(InstrId, i64, String)>,
    is_entry: bool,
}

impl Padder<'_> {
    fn dyn_of(&self, id: InstrId) -> Dyn {
        self.sizes.get(&id).cloned().unwrap_or(Dyn::Static)
    }

    /// Per dimension of array `id`, its size instruction where dynamic.
    fn array(&self, id: InstrId) -> Vec<Option<InstrId>> {
        match self.sizes.get(&id) {
            Some(Dyn::Array(d)) => d.clone(),
            _ => vec![None; self.shape(id).map_or(0, |a| a.rank())],
        }
    }

    fn shape(&self, id: InstrId) -> Option<&ArrayShape> {
        self.comp.instr(id).shape.as_array()
    }

    fn set(&mut self, id: InstrId, d: Dyn) {
        if d.any() {
            self.sizes.insert(id, d);
        }
    }

    /// Appends `op(operands)` of type `dtype[dims]` as part of the rewrite of `at`.
    fn push(&mut self, at: InstrId, dtype: DType, dims: &[i64], op: Op, operands: Vec<InstrId>) -> InstrId {
        push_expansion_step(self.comp, self.names, at, (dtype, dims), op, operands)
    }

    fn constant_s32(&mut self, at: InstrId, v: i64) -> InstrId {
        let v = i32::try_from(v).unwrap_or(i32::MAX);
        self.push(at, DType::S32, &[], Op::Constant(Box::new(Literal::scalar_s32(v))), vec![])
    }

    /// `x` as an `s32[]` (sizes of another integer type are converted).
    fn as_s32(&mut self, at: InstrId, x: InstrId) -> InstrId {
        match self.shape(x).map(|a| a.dtype) {
            Some(DType::S32) => x,
            _ => self.push(at, DType::S32, &[], Op::Convert, vec![x]),
        }
    }

    /// The size of dimension `d` of `x`: its size instruction, or its bound as a constant.
    fn size_or_bound(&mut self, at: InstrId, x: InstrId, d: usize) -> InstrId {
        match self.array(x)[d] {
            Some(s) => s,
            None => {
                let bound = self.shape(x).map_or(0, |a| a.dims[d]);
                self.constant_s32(at, bound)
            }
        }
    }

    /// A zero of `dtype` (an `s32` 0 converted).
    fn zero(&mut self, at: InstrId, dtype: DType) -> InstrId {
        let zero = self.constant_s32(at, 0);
        if dtype == DType::S32 {
            return zero;
        }
        self.push(at, dtype, &[], Op::Convert, vec![zero])
    }

    /// `x` with the padding of each of `dims` (dimension, size) replaced by the scalar `fill`:
    /// `select(iota < size && ..., x, fill)`.
    fn mask(&mut self, at: InstrId, x: InstrId, dims: &[(usize, InstrId)], fill: InstrId) -> InstrId {
        if dims.is_empty() {
            return x;
        }
        let shape = self.shape(x).expect("an array").clone();
        let d = shape.dims.clone();
        let mut pred = None;
        for &(dim, size) in dims {
            let iota = self.push(at, DType::S32, &d, Op::Iota { dimension: dim as i64 }, vec![]);
            let bound = self.push(at, DType::S32, &d, Op::Broadcast { dimensions: vec![] }, vec![size]);
            let lt = Op::Compare { direction: CompareDirection::Lt, compare_type: None };
            let inside = self.push(at, DType::Pred, &d, lt, vec![iota, bound]);
            pred = Some(match pred {
                None => inside,
                Some(p) => self.push(at, DType::Pred, &d, Op::Binary(BinaryOp::And), vec![p, inside]),
            });
        }
        let fill = self.push(at, shape.dtype, &d, Op::Broadcast { dimensions: vec![] }, vec![fill]);
        self.push(at, shape.dtype, &d, Op::Select, vec![pred.expect("one dimension"), x, fill])
    }

    /// Turns `id` into the value of `x` (a convert to its own type, which simplification removes).
    fn becomes(&mut self, id: InstrId, x: InstrId) {
        let target = self.comp.instr_mut(id);
        target.op = Op::Convert;
        target.operands = vec![x];
        target.meta.other_attrs.clear();
    }

    fn visit(&mut self, id: InstrId) -> Result<(), PassError> {
        let instr = self.comp.instr(id).clone();
        if let Some(a) = instr.shape.leaves().iter().find(|a| a.dims.iter().any(|&d| d < 0)) {
            return Err(unsupported(&instr, &format!("an unbounded dynamic dimension ({a}); only `<=N` bounds are")));
        }
        let any_dynamic_operand = instr.operands.iter().any(|o| self.sizes.contains_key(o));
        match &instr.op {
            Op::Parameter { .. } if is_dynamic(&instr.shape) => Err(unsupported(
                &instr,
                if self.is_entry {
                    "a dynamic entry parameter (its size would have to come with the input)"
                } else {
                    "a dynamic parameter of a called computation (its size would cross the call)"
                },
            )),
            Op::SetDimensionSize { dimension } => self.set_dimension_size(id, &instr, *dimension as usize),
            Op::GetDimensionSize { dimension } => {
                let d = *dimension as usize;
                let x = instr.operands[0];
                match self.array(x).get(d).copied().flatten() {
                    Some(size) => self.becomes(id, size),
                    None => {
                        let bound = self.shape(x).and_then(|a| a.dims.get(d).copied()).unwrap_or(0);
                        let bound = i32::try_from(bound).map_err(|_| unsupported(&instr, "a size past s32"))?;
                        let target = self.comp.instr_mut(id);
                        target.op = Op::Constant(Box::new(Literal::scalar_s32(bound)));
                        target.operands.clear();
                    }
                }
                Ok(())
            }
            Op::DynamicReshape => self.dynamic_reshape(id, &instr),
            _ if !any_dynamic_operand => Ok(()),
            op if op.is_elementwise() || matches!(op, Op::Copy) || same_rank_bitcast_convert(self, &instr) => {
                let rank = instr.shape.as_array().map_or(0, |a| a.rank());
                let mut out = vec![None; rank];
                for &o in &instr.operands {
                    let d = self.array(o);
                    if d.len() == rank {
                        for (slot, s) in out.iter_mut().zip(d) {
                            *slot = slot.or(s);
                        }
                    }
                }
                self.set(id, Dyn::Array(out));
                Ok(())
            }
            Op::Broadcast { dimensions } => {
                let rank = instr.shape.as_array().map_or(0, |a| a.rank());
                let mut out = vec![None; rank];
                for (k, s) in self.array(instr.operands[0]).into_iter().enumerate() {
                    out[dimensions[k] as usize] = s;
                }
                self.set(id, Dyn::Array(out));
                Ok(())
            }
            Op::Transpose { dimensions } => {
                let x = self.array(instr.operands[0]);
                self.set(id, Dyn::Array(dimensions.iter().map(|&p| x[p as usize]).collect()));
                Ok(())
            }
            Op::Reshape => self.reshape(id, &instr),
            Op::Slice { dims } => {
                let x = instr.operands[0];
                let bounds = self.shape(x).expect("an array").dims.clone();
                let mut out = self.array(x);
                for (d, s) in out.iter_mut().enumerate() {
                    let Some(size) = *s else { continue };
                    let sd = &dims[d];
                    if sd.start != 0 || sd.stride != 1 {
                        return Err(unsupported(
                            &instr,
                            &format!("a slice of dynamic dimension {d} that does not start at 0 with stride 1"),
                        ));
                    }
                    if sd.limit < bounds[d] {
                        let limit = self.constant_s32(id, sd.limit);
                        *s = Some(self.push(id, DType::S32, &[], Op::Binary(BinaryOp::Minimum), vec![size, limit]));
                    }
                }
                self.set(id, Dyn::Array(out));
                Ok(())
            }
            Op::Pad { dims } => {
                let out = self.array(instr.operands[0]);
                if let Some(d) = (0..out.len())
                    .find(|&d| out[d].is_some() && (dims[d].low, dims[d].high, dims[d].interior) != (0, 0, 0))
                {
                    return Err(unsupported(&instr, &format!("padding along dynamic dimension {d}")));
                }
                if self.sizes.contains_key(&instr.operands[1]) {
                    return Err(unsupported(&instr, "a dynamic padding value"));
                }
                self.set(id, Dyn::Array(out));
                Ok(())
            }
            Op::Reverse { dimensions } => {
                let out = self.array(instr.operands[0]);
                if let Some(&d) = dimensions.iter().find(|&&d| out[d as usize].is_some()) {
                    return Err(unsupported(&instr, &format!("reversing dynamic dimension {d}")));
                }
                self.set(id, Dyn::Array(out));
                Ok(())
            }
            Op::Concatenate { dimension } => {
                let rank = instr.shape.as_array().map_or(0, |a| a.rank());
                let mut out = vec![None; rank];
                for &o in &instr.operands {
                    for (d, s) in self.array(o).into_iter().enumerate() {
                        if d == *dimension as usize && s.is_some() {
                            return Err(unsupported(&instr, "concatenating along a dynamic dimension"));
                        }
                        out[d] = out[d].or(s);
                    }
                }
                self.set(id, Dyn::Array(out));
                Ok(())
            }
            Op::Tuple => {
                let elems = instr.operands.iter().map(|&o| self.dyn_of(o)).collect();
                self.set(id, Dyn::Tuple(elems));
                Ok(())
            }
            Op::GetTupleElement { index } => {
                if let Dyn::Tuple(elems) = self.dyn_of(instr.operands[0]) {
                    if let Some(d) = elems.get(*index as usize) {
                        self.set(id, d.clone());
                    }
                }
                Ok(())
            }
            Op::AddDependency | Op::OptimizationBarrier => {
                let d = self.dyn_of(instr.operands[0]);
                self.set(id, d);
                Ok(())
            }
            Op::Reduce { dimensions, .. } => {
                let n = instr.operands.len() / 2;
                let rank = self.shape(instr.operands[0]).map_or(0, |a| a.rank());
                let mut kept = vec![None; rank];
                for k in 0..n {
                    let x = instr.operands[k];
                    let mut masked = Vec::new();
                    for (d, s) in self.array(x).into_iter().enumerate() {
                        match s {
                            Some(size) if dimensions.contains(&(d as i64)) => masked.push((d, size)),
                            _ => kept[d] = kept[d].or(s),
                        }
                    }
                    let init = instr.operands[n + k];
                    let m = self.mask(id, x, &masked, init);
                    self.comp.instr_mut(id).operands[k] = m;
                }
                let out: Vec<Option<InstrId>> =
                    (0..rank).filter(|d| !dimensions.contains(&(*d as i64))).map(|d| kept[d]).collect();
                let d = if n == 1 { Dyn::Array(out) } else { Dyn::Tuple(vec![Dyn::Array(out); n]) };
                self.set(id, d);
                Ok(())
            }
            Op::ReduceWindow { window, .. } => {
                let n = instr.operands.len() / 2;
                let out_dims = instr.shape.leaves().first().map(|a| a.dims.clone()).unwrap_or_default();
                let rank = out_dims.len();
                let mut out = vec![None; rank];
                for k in 0..n {
                    let x = instr.operands[k];
                    let bounds = self.shape(x).expect("an array").dims.clone();
                    let mut masked = Vec::new();
                    for (d, s) in self.array(x).into_iter().enumerate() {
                        let Some(size) = s else { continue };
                        let w = &window.dims[d];
                        if w.stride != 1 || w.base_dilation != 1 || w.window_dilation != 1 || out_dims[d] != bounds[d] {
                            return Err(unsupported(
                                &instr,
                                &format!(
                                    "a window along dynamic dimension {d} that does not keep its size (stride 1, no \
                                     dilation, the result as long as the operand)"
                                ),
                            ));
                        }
                        masked.push((d, size));
                        out[d] = out[d].or(Some(size));
                    }
                    let init = instr.operands[n + k];
                    let m = self.mask(id, x, &masked, init);
                    self.comp.instr_mut(id).operands[k] = m;
                }
                let d = if n == 1 { Dyn::Array(out) } else { Dyn::Tuple(vec![Dyn::Array(out); n]) };
                self.set(id, d);
                Ok(())
            }
            Op::Dot { dims, .. } => {
                let (lhs, rhs) = (instr.operands[0], instr.operands[1]);
                let (l, r) = (self.array(lhs), self.array(rhs));
                let (mut lmask, mut rmask) = (Vec::new(), Vec::new());
                for (&lc, &rc) in dims.lhs_contracting.iter().zip(&dims.rhs_contracting) {
                    if let Some(size) = l[lc as usize].or(r[rc as usize]) {
                        lmask.push((lc as usize, size));
                        rmask.push((rc as usize, size));
                    }
                }
                let dtype_of = |p: &Self, x: InstrId| p.shape(x).expect("an array").dtype;
                if !lmask.is_empty() {
                    let zero = self.zero(id, dtype_of(self, lhs));
                    let m = self.mask(id, lhs, &lmask, zero);
                    self.comp.instr_mut(id).operands[0] = m;
                    let zero = self.zero(id, dtype_of(self, rhs));
                    let m = self.mask(id, rhs, &rmask, zero);
                    self.comp.instr_mut(id).operands[1] = m;
                }
                let mut out: Vec<Option<InstrId>> = dims
                    .lhs_batch
                    .iter()
                    .zip(&dims.rhs_batch)
                    .map(|(&a, &b)| l[a as usize].or(r[b as usize]))
                    .collect();
                let free = |s: &[Option<InstrId>], batch: &[i64], contracting: &[i64]| -> Vec<Option<InstrId>> {
                    (0..s.len())
                        .filter(|&d| !batch.contains(&(d as i64)) && !contracting.contains(&(d as i64)))
                        .map(|d| s[d])
                        .collect()
                };
                out.extend(free(&l, &dims.lhs_batch, &dims.lhs_contracting));
                out.extend(free(&r, &dims.rhs_batch, &dims.rhs_contracting));
                self.set(id, Dyn::Array(out));
                Ok(())
            }
            _ => Err(unsupported(&instr, "an operand with a dynamic dimension (the op would read its padding)")),
        }
    }

    fn set_dimension_size(&mut self, id: InstrId, instr: &Instr, d: usize) -> Result<(), PassError> {
        let (x, size) = (instr.operands[0], instr.operands[1]);
        let bound = self.shape(x).and_then(|a| a.dims.get(d).copied()).unwrap_or(0);
        let mut out = self.array(x);
        match uniform_constant(self.comp, size) {
            Some(c) if c < 0.0 || c > bound as f64 => {
                return Err(PassError::Unsupported {
                    pass: PASS,
                    op: describe(instr),
                    reason: format!("the size {c} is outside 0..={bound}, the bound of dimension {d}"),
                })
            }
            Some(c) if c == bound as f64 => out[d] = None,
            Some(_) => out[d] = Some(self.as_s32(id, size)),
            None => {
                if !self.is_entry {
                    return Err(unsupported(instr, "a size only the run knows, inside a called computation"));
                }
                let s = self.as_s32(id, size);
                self.checks.push((s, bound, instr.name.clone()));
                out[d] = Some(s);
            }
        }
        self.becomes(id, x);
        self.sizes.remove(&id);
        self.set(id, Dyn::Array(out));
        Ok(())
    }

    /// A reshape keeps each dynamic dimension whole: the dimensions before it hold as many
    /// elements in the operand as in the result.
    fn reshape(&mut self, id: InstrId, instr: &Instr) -> Result<(), PassError> {
        let x = instr.operands[0];
        let in_dims = self.shape(x).expect("an array").dims.clone();
        let out_dims = instr.shape.as_array().expect("an array").dims.clone();
        let mut out = vec![None; out_dims.len()];
        for (i, s) in self.array(x).into_iter().enumerate() {
            let Some(size) = s else { continue };
            let before: i64 = in_dims[..i].iter().product();
            let j = (0..out_dims.len())
                .find(|&j| out_dims[j] == in_dims[i] && out_dims[..j].iter().product::<i64>() == before);
            match j {
                Some(j) => out[j] = Some(size),
                None => {
                    return Err(unsupported(
                        instr,
                        &format!(
                            "a reshape that merges or splits dynamic dimension {i} (a `dynamic-reshape` names the \
                             result's sizes)"
                        ),
                    ))
                }
            }
        }
        self.set(id, Dyn::Array(out));
        Ok(())
    }

    /// `dynamic-reshape(x, sizes...)`: result element `i` (row-major in the result's sizes) is
    /// operand element `i` (row-major in the operand's sizes), gathered from the padded operand.
    fn dynamic_reshape(&mut self, id: InstrId, instr: &Instr) -> Result<(), PassError> {
        let x = instr.operands[0];
        let out = instr.shape.as_array().expect("an array").clone();
        let xs = self.shape(x).expect("an array").clone();
        if instr.operands.len() != out.rank() + 1 {
            return Err(unsupported(instr, "a size operand count that differs from the result's rank"));
        }
        let mut out_sizes = vec![None; out.rank()];
        for (j, slot) in out_sizes.iter_mut().enumerate() {
            let s = instr.operands[j + 1];
            match uniform_constant(self.comp, s) {
                Some(c) if c == out.dims[j] as f64 => {}
                Some(c) if !out.dynamic[j] || c < 0.0 || c > out.dims[j] as f64 => {
                    return Err(unsupported(
                        instr,
                        &format!("the size {c} of result dimension {j} (bound {})", out.dims[j]),
                    ))
                }
                _ if out.dynamic[j] => *slot = Some(self.as_s32(id, s)),
                _ => {}
            }
        }
        let x_dyn = self.array(x);
        if x_dyn.iter().all(Option::is_none) && out_sizes.iter().all(Option::is_none) {
            let target = self.comp.instr_mut(id);
            target.op = Op::Reshape;
            target.operands.truncate(1);
            return Ok(());
        }
        let total: i64 = xs.dims.iter().product();
        if total == 0 || out.dims.iter().product::<i64>() == 0 || total > i32::MAX as i64 {
            return Err(unsupported(instr, "an empty or very large operand"));
        }
        let od = out.dims.clone();
        // The result's linear index in its runtime sizes (Horner over the dimensions).
        let mut linear: Option<InstrId> = None;
        for (j, &out_size) in out_sizes.iter().enumerate() {
            let iota = self.push(id, DType::S32, &od, Op::Iota { dimension: j as i64 }, vec![]);
            linear = Some(match linear {
                None => iota,
                Some(l) => {
                    let size = match out_size {
                        Some(s) => s,
                        None => self.constant_s32(id, out.dims[j]),
                    };
                    let size = self.push(id, DType::S32, &od, Op::Broadcast { dimensions: vec![] }, vec![size]);
                    let scaled = self.push(id, DType::S32, &od, Op::Binary(BinaryOp::Multiply), vec![l, size]);
                    self.push(id, DType::S32, &od, Op::Binary(BinaryOp::Add), vec![scaled, iota])
                }
            });
        }
        let mut rem = match linear {
            Some(l) => l,
            None => {
                let zero = self.constant_s32(id, 0);
                self.push(id, DType::S32, &od, Op::Broadcast { dimensions: vec![] }, vec![zero])
            }
        };
        // Split it by the operand's runtime sizes, minor first; then the padded operand's index.
        let mut digits = vec![None; xs.rank()];
        for m in (0..xs.rank()).rev() {
            let size = self.size_or_bound(id, x, m);
            let size = self.push(id, DType::S32, &od, Op::Broadcast { dimensions: vec![] }, vec![size]);
            digits[m] = Some(self.push(id, DType::S32, &od, Op::Binary(BinaryOp::Remainder), vec![rem, size]));
            rem = self.push(id, DType::S32, &od, Op::Binary(BinaryOp::Divide), vec![rem, size]);
        }
        let mut flat: Option<InstrId> = None;
        for (m, digit) in digits.into_iter().enumerate() {
            let digit = digit.expect("every digit");
            flat = Some(match flat {
                None => digit,
                Some(f) => {
                    let bound = self.constant_s32(id, xs.dims[m]);
                    let bound = self.push(id, DType::S32, &od, Op::Broadcast { dimensions: vec![] }, vec![bound]);
                    let scaled = self.push(id, DType::S32, &od, Op::Binary(BinaryOp::Multiply), vec![f, bound]);
                    self.push(id, DType::S32, &od, Op::Binary(BinaryOp::Add), vec![scaled, digit])
                }
            });
        }
        let flat = match flat {
            Some(f) => f,
            None => {
                let zero = self.constant_s32(id, 0);
                self.push(id, DType::S32, &od, Op::Broadcast { dimensions: vec![] }, vec![zero])
            }
        };
        let mut idx_dims = od.clone();
        idx_dims.push(1);
        let indices = self.push(id, DType::S32, &idx_dims, Op::Reshape, vec![flat]);
        let x_flat = self.push(id, xs.dtype, &[total], Op::Reshape, vec![x]);
        let target = self.comp.instr_mut(id);
        target.op = Op::Gather {
            dims: GatherDims {
                offset_dims: vec![],
                collapsed_slice_dims: vec![0],
                start_index_map: vec![0],
                index_vector_dim: out.rank() as i64,
                operand_batching_dims: vec![],
                start_indices_batching_dims: vec![],
            },
            slice_sizes: vec![1],
            indices_are_sorted: false,
        };
        target.operands = vec![x_flat, indices];
        target.meta.other_attrs.clear();
        self.set(id, Dyn::Array(out_sizes));
        Ok(())
    }

    /// Appends the sizes of the result's dynamic dimensions and the sizes to check as `s32[]`
    /// leaves of the root tuple; returns what the caller does with them.
    fn finish_entry(&mut self, aliases: bool) -> Result<Option<DynamicResults>, PassError> {
        let root = self.comp.root;
        let root_instr = self.comp.instr(root).clone();
        let mut leaves = Vec::new();
        self.dyn_of(root).leaves(&root_instr.shape, &mut leaves);
        if leaves.iter().all(|l| l.iter().all(Option::is_none)) && self.checks.is_empty() {
            return Ok(None);
        }
        if aliases && !root_instr.shape.is_tuple() {
            return Err(unsupported(&root_instr, "a dynamic result that aliases an input"));
        }
        let visible = leaves.len();
        let mut extra: Vec<InstrId> = Vec::new();
        let leaf_of = |s: InstrId, extra: &mut Vec<InstrId>| match extra.iter().position(|&e| e == s) {
            Some(p) => visible + p,
            None => {
                extra.push(s);
                visible + extra.len() - 1
            }
        };
        let mut cuts = Vec::new();
        for (leaf, dims) in leaves.iter().enumerate() {
            for (dim, s) in dims.iter().enumerate() {
                if let Some(s) = *s {
                    cuts.push(DynamicCut { leaf, dim, size_leaf: leaf_of(s, &mut extra) });
                }
            }
        }
        let checks = std::mem::take(&mut self.checks)
            .into_iter()
            .map(|(s, bound, instr)| SizeCheck { size_leaf: leaf_of(s, &mut extra), bound, instr })
            .collect();
        let mut elems: Vec<InstrId> = Vec::new();
        let mut shapes: Vec<Shape> = Vec::new();
        match &root_instr.shape {
            Shape::Tuple(ts) => {
                for (k, t) in ts.iter().enumerate() {
                    let name = self.names.fresh(&root_instr.name);
                    let span = self.comp.span(root);
                    let gte = Instr::new(name, t.clone(), Op::GetTupleElement { index: k as u64 }, vec![root]);
                    elems.push(self.comp.push_with_span(gte, span));
                    shapes.push(t.clone());
                }
            }
            s => {
                elems.push(root);
                shapes.push(s.clone());
            }
        }
        for &s in &extra {
            elems.push(s);
            shapes.push(Shape::Array(ArrayShape::scalar(DType::S32)));
        }
        let name = self.names.fresh(&format!("{}.sizes", root_instr.name));
        let span = self.comp.span(root);
        let tuple = self.comp.push_with_span(Instr::new(name, Shape::Tuple(shapes), Op::Tuple, elems), span);
        self.comp.root = tuple;
        Ok(Some(DynamicResults { visible_leaves: visible, cuts, checks }))
    }
}

fn same_rank_bitcast_convert(p: &Padder<'_>, instr: &Instr) -> bool {
    matches!(instr.op, Op::BitcastConvert)
        && p.shape(instr.operands[0]).map(|a| a.rank()) == instr.shape.as_array().map(|a| a.rank())
}

fn describe(instr: &Instr) -> String {
    format!("{} (%{})", instr.op.opcode().name(), instr.name)
}

fn unsupported(instr: &Instr, reason: &str) -> PassError {
    PassError::Unsupported {
        pass: PASS,
        op: describe(instr),
        reason: format!("{reason}: not implemented for dynamic shapes"),
    }
}

fn is_dynamic(shape: &Shape) -> bool {
    shape.leaves().iter().any(|a| a.dynamic.iter().any(|&d| d))
}

fn make_static(shape: &mut Shape) {
    match shape {
        Shape::Array(a) => a.dynamic.iter_mut().for_each(|d| *d = false),
        Shape::Tuple(t) => t.iter_mut().for_each(make_static),
        Shape::Token => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{parse, run as run_pass};
    use hlo_ir::LeafBytes;

    fn s32_bytes(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn leaves(lit: &Literal, out: &mut Vec<LeafBytes>) {
        match &lit.data {
            hlo_ir::LiteralData::Tuple(elems) => elems.iter().for_each(|e| leaves(e, out)),
            _ => {
                let dims = lit.shape.as_array().expect("an array").dims.clone();
                out.push((dims, hlo_interp::literal_to_bytes(lit).expect("bytes")));
            }
        }
    }

    /// Pads `text`, evaluates the static module on `args` (dims, bytes per parameter) and
    /// applies the recorded cuts: XLA's result leaves.
    fn eval(text: &str, args: &[(ArrayShape, Vec<u8>)]) -> Result<Vec<LeafBytes>, String> {
        let (changed, module) = run_pass(run, text);
        assert!(changed);
        assert!(module.comps.iter().all(|c| c.instrs.iter().all(|i| !is_dynamic(&i.shape))));
        let args: Vec<Literal> =
            args.iter().map(|(s, b)| hlo_interp::literal_from_bytes(s, b).expect("an argument")).collect();
        let result = hlo_interp::evaluate(&module, &args).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        leaves(&result, &mut out);
        match &module.dynamic_results {
            Some(d) => d.apply(out),
            None => Ok(out),
        }
    }

    fn s32_scalar(v: i32) -> (ArrayShape, Vec<u8>) {
        (ArrayShape::scalar(DType::S32), s32_bytes(&[v]))
    }

    const SET_DIMENSION_SIZE: &str = "HloModule m\nENTRY %test {\n  %arg0 = f32[1,8] parameter(0)\n  \
        %arg1 = s32[] parameter(1)\n  ROOT %s = f32[1,<=8] set-dimension-size(%arg0, %arg1), dimensions={1}\n}\n";

    #[test]
    fn set_dimension_size_cuts_the_result_to_the_runtime_size() {
        let x: Vec<f32> = (0..8).map(|v| v as f32 + 0.5).collect();
        let arg0 = (ArrayShape::new(DType::F32, vec![1, 8]), f32_bytes(&x));
        for n in [0, 3, 8] {
            let out = eval(SET_DIMENSION_SIZE, &[arg0.clone(), s32_scalar(n)]).unwrap();
            assert_eq!(out, vec![(vec![1, n as i64], f32_bytes(&x[..n as usize]))]);
        }
        let err = eval(SET_DIMENSION_SIZE, &[arg0.clone(), s32_scalar(9)]).unwrap_err();
        assert!(err.contains("set-dimension-size (%s)") && err.contains("0..=8"), "{err}");
        let err = eval(SET_DIMENSION_SIZE, &[arg0, s32_scalar(-1)]).unwrap_err();
        assert!(err.contains("outside"), "{err}");
    }

    #[test]
    fn get_dimension_size_is_the_propagated_size() {
        // XLA's evaluator test GetDimensionSize.
        let text = "HloModule m\nENTRY main {\n  size = s32[] constant(3)\n  param = s32[4] parameter(0)\n  \
            data_dynamic = s32[<=4] set-dimension-size(param, size), dimensions={0}\n  \
            sum = s32[<=4] add(data_dynamic, param)\n  ROOT dynamic_size = s32[] get-dimension-size(sum), dimensions={0}\n}\n";
        let arg = (ArrayShape::new(DType::S32, vec![4]), s32_bytes(&[1, 2, 3, 4]));
        assert_eq!(eval(text, &[arg]).unwrap(), vec![(vec![], s32_bytes(&[3]))]);
    }

    const SINGLE: &str = "HloModule m\nENTRY main {\n  param = s32[2,3,3] parameter(0)\n  two = s32[] parameter(1)\n  \
        param_padded = s32[2,<=3,3] set-dimension-size(param, two), dimensions={1}\n  nine = s32[] parameter(2)\n  \
        ROOT reshaped = s32[<=18] dynamic-reshape(param_padded, nine)\n}\n";

    #[test]
    fn dynamic_reshape_gathers_the_valid_elements_in_row_major_order() {
        let param = (ArrayShape::new(DType::S32, vec![2, 3, 3]), s32_bytes(&(0..18).collect::<Vec<i32>>()));
        // XLA's dynamic_reshape_test SingleDynamicDimension.
        let out = eval(SINGLE, &[param.clone(), s32_scalar(2), s32_scalar(9)]).unwrap();
        assert_eq!(out, vec![(vec![9], s32_bytes(&[0, 1, 2, 3, 4, 5, 9, 10, 11]))]);
        // All 12 valid elements.
        let out = eval(SINGLE, &[param.clone(), s32_scalar(2), s32_scalar(12)]).unwrap();
        assert_eq!(out, vec![(vec![12], s32_bytes(&[0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14]))]);
        // DoubleDynamicDimensions.
        let double = "HloModule m\nENTRY main {\n  param = s32[2,3,3] parameter(0)\n  two = s32[] parameter(1)\n  \
            p1 = s32[2,<=3,3] set-dimension-size(param, two), dimensions={1}\n  \
            p2 = s32[2,<=3,<=3] set-dimension-size(p1, two), dimensions={2}\n  eight = s32[] parameter(2)\n  \
            ROOT reshaped = s32[<=18] dynamic-reshape(p2, eight)\n}\n";
        let out = eval(double, &[param, s32_scalar(2), s32_scalar(8)]).unwrap();
        assert_eq!(out, vec![(vec![8], s32_bytes(&[0, 1, 3, 4, 9, 10, 12, 13]))]);
        // OutputDoubleDynamicDimensions.
        let output_double =
            "HloModule m\nENTRY main {\n  param = s32[18] parameter(0)\n  eight = s32[] parameter(1)\n  \
            pd = s32[<=18] set-dimension-size(param, eight), dimensions={0}\n  two = s32[] parameter(2)\n  \
            ROOT reshaped = s32[2,<=3,<=3] dynamic-reshape(pd, two, two, two)\n}\n";
        let param = (ArrayShape::new(DType::S32, vec![18]), s32_bytes(&(0..18).collect::<Vec<i32>>()));
        let out = eval(output_double, &[param, s32_scalar(8), s32_scalar(2)]).unwrap();
        assert_eq!(out, vec![(vec![2, 2, 2], s32_bytes(&[0, 1, 2, 3, 4, 5, 6, 7]))]);
        // Complicated: [2,3,3] valid of [3,4,4] to [3,6] valid of [6,8].
        let complicated =
            "HloModule m\nENTRY main {\n  param = s32[3,4,4] parameter(0)\n  two = s32[] parameter(1)\n  \
            a = s32[<=3,4,4] set-dimension-size(param, two), dimensions={0}\n  three = s32[] parameter(2)\n  \
            b = s32[<=3,<=4,4] set-dimension-size(a, three), dimensions={1}\n  \
            c = s32[<=3,<=4,<=4] set-dimension-size(b, three), dimensions={2}\n  six = s32[] parameter(3)\n  \
            ROOT reshaped = s32[<=6,<=8] dynamic-reshape(c, three, six)\n}\n";
        let param = (ArrayShape::new(DType::S32, vec![3, 4, 4]), s32_bytes(&(0..48).collect::<Vec<i32>>()));
        let out = eval(complicated, &[param, s32_scalar(2), s32_scalar(3), s32_scalar(6)]).unwrap();
        let want = [0, 1, 2, 4, 5, 6, 8, 9, 10, 16, 17, 18, 20, 21, 22, 24, 25, 26];
        assert_eq!(out, vec![(vec![3, 6], s32_bytes(&want))]);
    }

    #[test]
    fn reductions_and_dots_do_not_read_the_padding() {
        let text = "HloModule m\nadd {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  \
            ROOT s = f32[] add(a, b)\n}\nmax {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  \
            ROOT s = f32[] maximum(a, b)\n}\nENTRY main {\n  x = f32[2,4] parameter(0)\n  n = s32[] parameter(1)\n  \
            d = f32[2,<=4] set-dimension-size(x, n), dimensions={1}\n  zero = f32[] constant(0)\n  \
            ninf = f32[] constant(-inf)\n  sum = f32[2] reduce(d, zero), dimensions={1}, to_apply=add\n  \
            m = f32[2] reduce(d, ninf), dimensions={1}, to_apply=max\n  \
            dot = f32[2,2] dot(d, d), lhs_contracting_dims={1}, rhs_contracting_dims={1}\n  \
            cum = f32[2,<=4] reduce-window(d, zero), window={size=1x4 pad=0_0x3_0}, to_apply=add\n  \
            t = f32[<=4,2] transpose(d), dimensions={1,0}\n  \
            ROOT r = (f32[2], f32[2], f32[2,2], f32[2,<=4], f32[<=4,2]) tuple(sum, m, dot, cum, t)\n}\n";
        let x = [1.0f32, 2.0, 100.0, f32::NAN, 3.0, 4.0, 200.0, f32::NAN];
        let arg = (ArrayShape::new(DType::F32, vec![2, 4]), f32_bytes(&x));
        let out = eval(text, &[arg, s32_scalar(2)]).unwrap();
        assert_eq!(out[0], (vec![2], f32_bytes(&[3.0, 7.0])));
        assert_eq!(out[1], (vec![2], f32_bytes(&[2.0, 4.0])));
        assert_eq!(out[2], (vec![2, 2], f32_bytes(&[5.0, 11.0, 11.0, 25.0])));
        assert_eq!(out[3], (vec![2, 2], f32_bytes(&[1.0, 3.0, 3.0, 7.0])));
        assert_eq!(out[4], (vec![2, 2], f32_bytes(&[1.0, 3.0, 2.0, 4.0])));
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn constant_sizes_are_checked_when_compiling() {
        // At the bound: the whole array, no extra leaves.
        let at_bound = "HloModule m\nENTRY e {\n  x = f32[8] parameter(0)\n  d = s32[] constant(8)\n  \
            ROOT s = f32[<=8] set-dimension-size(x, d), dimensions={0}\n}\n";
        let (_, module) = run_pass(run, at_bound);
        assert!(module.dynamic_results.is_none());
        let past = at_bound.replace("constant(8)", "constant(9)");
        let err = run(&mut parse(&past)).unwrap_err().to_string();
        assert!(err.contains("set-dimension-size (%s)") && err.contains("outside 0..=8"), "{err}");
        let below = at_bound.replace("constant(8)", "constant(5)");
        let out = eval(&below, &[(ArrayShape::new(DType::F32, vec![8]), f32_bytes(&[1.0; 8]))]).unwrap();
        assert_eq!(out, vec![(vec![5], f32_bytes(&[1.0; 5]))]);
    }

    #[test]
    fn ops_that_would_read_the_padding_are_refused_by_name() {
        let refused = [
            ("r = f32[<=8] reverse(d), dimensions={0}", "reverse (%r)"),
            ("r = f32[4] dynamic-slice(d, n), dynamic_slice_sizes={4}", "dynamic-slice (%r)"),
            ("r = f32[4] slice(d), slice={[2:6]}", "slice (%r)"),
            ("r = f32[2,4] reshape(d)", "reshape (%r)"),
            ("r = f32[<=16] concatenate(d, d), dimensions={0}", "concatenate (%r)"),
        ];
        for (line, name) in refused {
            let text = format!(
                "HloModule m\nENTRY e {{\n  x = f32[8] parameter(0)\n  n = s32[] parameter(1)\n  \
                 d = f32[<=8] set-dimension-size(x, n), dimensions={{0}}\n  ROOT {line}\n}}\n"
            );
            let err = run(&mut parse(&text)).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains("dynamic"), "{line}: {err}");
        }
        let param = "HloModule m\nENTRY e {\n  ROOT x = f32[<=8] parameter(0)\n}\n";
        let err = run(&mut parse(param)).unwrap_err().to_string();
        assert!(err.contains("parameter (%x)") && err.contains("dynamic entry parameter"), "{err}");
    }

    #[test]
    fn static_modules_are_left_alone() {
        crate::util::testing::check_unchanged(run, "HloModule m\nENTRY e {\n  ROOT x = f32[8] parameter(0)\n}\n");
    }
}
