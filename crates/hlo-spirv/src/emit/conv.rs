//! Blocked convolution kernels: the dot's blocks ([`dot`]) over a convolution seen as a matrix
//! product (implicit GEMM).
//!
//! A convolution's output is `features x positions` (positions: the batch and spatial indices),
//! and each output sums `input features x kernel taps` products. One workgroup owns a block of
//! output features (taken from the workgroup id, so the same in every invocation: their kernel
//! values are uniform loads), and each invocation a few positions strided by the workgroup size.
//! Per step of the contraction an invocation computes the input position of each of its
//! positions once, loads one input value per position and one kernel value per feature, and
//! does a multiply-add per output of its block: the per-element kernel instead loads both
//! operands and recomputes the window arithmetic for every multiply-add. Where the kernel is an
//! f32 buffer whose output features are its last dimension (`01io`, `i01o`), four features' values
//! are one vec4 load: on lavapipe every load is a texel fetch of its own, which dominated these
//! kernels (a 3x3 convolution 8 -> 16 features did 17 fetches per 16 multiply-adds).
//!
//! The contraction runs in the per-element kernel's order (input feature, then kernel taps), and
//! a tap that falls in the padding (or between dilated input elements) adds nothing, so each
//! output is the per-element kernel's bit for bit. The exception: where both operands keep their
//! input features last (`b01f_01oi`, the input gradient JAX emits), four input features are one
//! vec4 load of each operand and the taps run outside them, a different order of the same terms
//! (a 3x3 convolution 16 -> 8 features, 0.58 -> 0.25 ms on one core). Grouped convolutions (feature or batch groups)
//! keep the per-element kernel: a block's features could then read different input features.
//!
//! Few outputs with a long contraction (a weight gradient) would leave most lanes idle: there the
//! lanes of a one-subgroup workgroup share one 4 x 4 block and split its contraction, each lane
//! taking every subgroup-size-th step, and add their sums in lane order ([`split_fold`]). The
//! order of the terms differs from the per-element kernel's there too.

use crate::builder::{STy, H};
use crate::emit::dot::{
    blocked_root, product_hero, split_fold, store_product, tile_for, ProductStores, Quads, Tile, SPLIT_MAX_LANES,
    SPLIT_MIN_DEPTH, SPLIT_TILE, WORKGROUP,
};
use crate::emit::elemental::{delinearize, strides, window_input_index, Em, FoldBody, Index, Leaf};
use crate::emit::ops::{self, Val};
use crate::emit::{because, finish, KernelCtx, KernelKind, KernelStep};
use crate::error::Result;
use hlo_ir::{ArrayShape, ConvDims, DType, InstrId, Op, Window};
use naga::BinaryOperator as Bo;

/// Smallest convolution (outputs x contraction) worth a blocked kernel.
const MIN_WORK: u64 = 1 << 10;

/// The convolution's output as `features x positions`, and the block each invocation computes.
struct Shape {
    features: u64,
    positions: u64,
    /// The output's dimensions other than its feature dimension, in order: a position's index.
    position_dims: Vec<usize>,
    tile: Tile,
    /// Invocations per workgroup: [`WORKGROUP`], or fewer when there are few positions (a weight
    /// gradient's 27 taps x channels), since every invocation of a workgroup runs the whole
    /// contraction, those past the last position included.
    workgroup: u32,
    /// The key of this convolution's block in the target's [`crate::TileTable`], and whether
    /// the block came from it.
    key: String,
    tuned: bool,
    /// Whether the lanes of a workgroup split the contraction of one block instead (see
    /// [`SPLIT_MAX_LANES`]).
    split: bool,
}

/// Whether `ctx.root` is a convolution this emitter takes: a float, ungrouped convolution of
/// enough work whose operands only move data, and whose single output is the convolution itself.
pub(crate) fn applies(ctx: &KernelCtx) -> bool {
    shape(ctx).is_ok()
}

/// Why a convolution at the root keeps the per-element kernel (`None` for other roots and
/// blocked convolutions).
pub(crate) fn declined(ctx: &KernelCtx) -> Option<String> {
    let is_conv = matches!(ctx.m.comp(ctx.comp).instr(ctx.root).op, Op::Convolution { .. });
    is_conv.then(|| shape(ctx).err()).flatten().map(|why| format!("per-element convolution: {why}"))
}

fn shape(ctx: &KernelCtx) -> Result<Shape, &'static str> {
    let comp = ctx.m.comp(ctx.comp);
    let root = comp.instr(product_hero(ctx).ok_or("not a convolution")?);
    let Op::Convolution { dims, feature_group_count, batch_group_count, .. } = &root.op else {
        return Err("not a convolution");
    };
    if *feature_group_count != 1 || *batch_group_count != 1 {
        return Err("grouped");
    }
    let out = blocked_root(ctx)?;
    let ks = comp.instr(root.operands[1]).shape.as_array().ok_or("tuple operand")?;
    let features = out.dims[dims.output_feature as usize].max(0) as u64;
    let position_dims: Vec<usize> = (0..out.rank()).filter(|&d| d as i64 != dims.output_feature).collect();
    let positions: u64 = position_dims.iter().map(|&d| out.dims[d].max(0) as u64).product();
    let depth: u64 = ks.dims[dims.kernel_input_feature as usize].max(0) as u64
        * dims.kernel_spatial.iter().map(|&d| ks.dims[d as usize].max(0) as u64).product::<u64>();
    let key = format!("conv f{features} p{positions} k{depth}");
    let (tile, tuned) = tile_for(ctx.target, &key, 1, features, positions);
    let lanes_with_blocks = features.div_ceil(u64::from(tile.rows)) * positions.div_ceil(u64::from(tile.cols));
    let split_lanes = ctx.target.staging_lanes();
    if let (Some(workgroup), false) = (split_lanes, tuned) {
        let split_groups =
            [positions.div_ceil(u64::from(SPLIT_TILE.cols)), features.div_ceil(u64::from(SPLIT_TILE.rows))];
        if lanes_with_blocks < SPLIT_MAX_LANES
            && depth >= SPLIT_MIN_DEPTH
            && depth < u64::from(u32::MAX)
            && features * positions < u64::from(u32::MAX)
            && split_groups.iter().all(|&g| g <= 65535)
        {
            return Ok(Shape {
                features,
                positions,
                position_dims,
                tile: SPLIT_TILE,
                workgroup,
                key,
                tuned,
                split: true,
            });
        }
    }
    // The workgroup that pads the positions least (the largest of equals), at least a subgroup.
    let lanes = positions.div_ceil(u64::from(tile.cols));
    let smallest = ctx.target.subgroup_size.clamp(1, WORKGROUP);
    let mut workgroup = WORKGROUP;
    let mut size = WORKGROUP;
    while size >= smallest {
        let padded = |wg: u32| lanes.div_ceil(u64::from(wg)) * u64::from(wg);
        if padded(size) < padded(workgroup) {
            workgroup = size;
        }
        size /= 2;
    }
    let grid_ok = positions.div_ceil(u64::from(workgroup * tile.cols)) <= 65535
        && features.div_ceil(u64::from(tile.rows)) <= 65535;
    let fits = features * positions < u64::from(u32::MAX) && depth < u64::from(u32::MAX);
    if features * positions * depth < MIN_WORK || features < 1 || positions < 8 || depth < 1 {
        return Err("too small for blocks");
    }
    if !grid_ok || !fits {
        return Err("too large for one dispatch's grid");
    }
    Ok(Shape { features, positions, position_dims, tile, workgroup, key, tuned, split: false })
}

pub(crate) fn emit(ctx: &KernelCtx) -> Result<Vec<KernelStep>> {
    let s = shape(ctx).expect("conv::applies was checked");
    let comp = ctx.m.comp(ctx.comp);
    let product = product_hero(ctx).expect("conv::applies was checked");
    let root = comp.instr(product);
    let Op::Convolution { window, dims, .. } = &root.op else { unreachable!("checked") };
    let out = &ctx.outputs[0];
    let out_shape = root.shape.as_array().expect("array").clone();
    let input = comp.instr(root.operands[0]).shape.as_array().expect("array").clone();
    let kernel = comp.instr(root.operands[1]).shape.as_array().expect("array").clone();
    let acc_dt = DType::F32;

    let Tile { rows: tile_rows, cols: tile_cols } = s.tile;
    // Normal blocks: each lane its own positions; split: the workgroup's lanes share them.
    let lanes_per_block = if s.split { 1 } else { s.workgroup };
    let groups = [
        s.positions.div_ceil(u64::from(lanes_per_block * tile_cols)) as u32,
        s.features.div_ceil(u64::from(tile_rows)) as u32,
        1,
    ];
    let mut em = Em::new(ctx.m, ctx.target, &ctx.name);
    em.texel_reads = true;
    let f = em.frame(ctx.comp, ctx.leaves.clone());
    let product_dt = root.shape.dtype().expect("an array");
    em.check_type(root, product_dt)?;
    em.check_type(comp.instr(ctx.root), out.dtype)?;
    let g = ProductStores::bind(&mut em, ctx, product)?;
    let contraction = contraction_quads(ctx, &mut em, (root.operands[0], root.operands[1]), &input, &kernel, dims);
    let quads = match contraction {
        Some(_) => None,
        None => kernel_quads(ctx, &mut em, root.operands[1], &kernel, dims, tile_rows),
    };
    // With vec4 kernel reads, an input that keeps its features last is read four input features
    // per vec4 too (an NHWC convolution past the first layer).
    let input_quads = match quads {
        Some(_) => input_feature_quads(ctx, &mut em, root.operands[0], &input, &kernel, dims),
        None => None,
    };
    let why = format!(
        "blocked convolution (implicit GEMM): {} features x {} positions per {}{}{}",
        s.tile.rows,
        s.tile.cols,
        if s.split { "workgroup, its lanes splitting the contraction" } else { "invocation" },
        if s.tuned { " (tuned)" } else { "" },
        match (contraction, quads, input_quads) {
            (Some(_), _, _) => ", four input features per vec4 load of each operand",
            (None, Some(_), Some(_)) => ", kernel values read as vec4, four input features per vec4 input load",
            (None, Some(_), None) => ", kernel values read as vec4",
            (None, None, _) => "",
        }
    );

    let kb = &mut em.kb;
    let wid = kb.builtin(naga::BuiltIn::WorkGroupId);
    let lid3 = kb.builtin(naga::BuiltIn::LocalInvocationId);
    let lid = kb.access_index(lid3, 0);
    let (wx, wy) = (kb.access_index(wid, 0), kb.access_index(wid, 1));
    // Output features from the workgroup id (the same in every invocation), positions per lane.
    let feature0 = kb.mul_c(wy, tile_rows);
    let last_feature = kb.lit_u32((s.features - 1) as u32);
    let features: Vec<(H, H)> = (0..tile_rows)
        .map(|r| {
            let raw = kb.add_c(feature0, r);
            (raw, kb.min_u(raw, last_feature))
        })
        .collect();
    let position0 = kb.mul_c(wx, lanes_per_block * tile_cols);
    let position0 = if s.split { position0 } else { kb.add_u(position0, lid) };
    let last_position = kb.lit_u32((s.positions - 1) as u32);
    let positions: Vec<(H, H)> = (0..tile_cols)
        .map(|c| {
            let raw = kb.add_c(position0, c * lanes_per_block);
            (raw, kb.min_u(raw, last_position))
        })
        .collect();
    // Each position's output multi-index (its feature index left at 0).
    let position_extents: Vec<i64> = s.position_dims.iter().map(|&d| out_shape.dims[d]).collect();
    let zero = kb.lit_u32(0);
    let out_index: Vec<Vec<H>> = positions
        .iter()
        .map(|&(_, clamped)| {
            let mut m = vec![zero; out_shape.rank()];
            for (k, h) in delinearize(kb, &position_extents, clamped).into_iter().enumerate() {
                m[s.position_dims[k]] = h;
            }
            m
        })
        .collect();

    let mut extents = vec![kernel.dims[dims.kernel_input_feature as usize] as u32];
    extents.extend(dims.kernel_spatial.iter().map(|&d| kernel.dims[d as usize] as u32));
    let init = vec![Val { h: em.kb.lit_float(STy::F32, 0.0), dt: acc_dt }; (tile_rows * tile_cols) as usize];
    let ids = (root.operands[0], root.operands[1]);
    let mut body = |em: &mut Em<'_>, point: &[H], accs: &[Val]| -> Result<Vec<Val>> {
        let mut a = Vec::with_capacity(out_index.len());
        for m in &out_index {
            let (li, valid) = input_index(em, dims, window, &input, &kernel, m, point);
            let v = em.eval(f, ids.0, &[], &Index::from_multi(&input.dims, li))?;
            let v = em.daz(f, ids.0, v);
            a.push((ops::convert(&mut em.kb, v, acc_dt), valid));
        }
        let kernel_index = |em: &mut Em<'_>, feature: H| kernel_multi_index(em, dims, kernel.rank(), point, feature);
        let mut b = Vec::with_capacity(features.len());
        match quads {
            // Four features per load: the first of each four (aligned, since the block and the
            // feature count are multiples of 4), kept inside the kernel.
            Some(q) => {
                let last_quad = em.kb.lit_u32((s.features - 4) as u32);
                for four in features.chunks(4) {
                    let first = em.kb.min_u(four[0].0, last_quad);
                    let ki = kernel_index(em, first);
                    let at = linear(em, &kernel.dims, &ki);
                    let quad = em.kb.div_c(at, 4);
                    b.extend(q.load(em, f, ids.1, quad));
                }
            }
            None => {
                for &(_, feature) in &features {
                    let ki = kernel_index(em, feature);
                    let v = em.eval(f, ids.1, &[], &Index::from_multi(&kernel.dims, ki))?;
                    let v = em.daz(f, ids.1, v);
                    b.push(ops::convert(&mut em.kb, v, acc_dt));
                }
            }
        }
        let mut next = Vec::with_capacity(accs.len());
        for &br in &b {
            for &(ac, valid) in &a {
                let acc = accs[next.len()];
                let kb = &mut em.kb;
                let p = kb.binary(Bo::Multiply, ac, br);
                let sum = kb.binary(Bo::Add, acc.h, p);
                let sum = ops::normalize(kb, sum, acc_dt);
                next.push(Val { h: kb.select(valid, sum, acc.h), dt: acc_dt });
            }
        }
        Ok(next)
    };
    // Four input features per step: each position's four input values and each feature's four
    // kernel values are one vec4 load apiece; the taps run outside the input features.
    let n_taps = dims.kernel_spatial.len();
    // At a point (taps, then a quad of input features): the contraction point of the quad's first
    // input feature, and each position's four input values (one vec4 load) with whether the
    // position reads inside the input there.
    let input_quad_at = |em: &mut Em<'_>, input_q: Quads, point: &[H]| -> (Vec<H>, Vec<(Vec<H>, H)>) {
        let first = em.kb.mul_c(point[n_taps], 4);
        let mut at_point = vec![first];
        at_point.extend_from_slice(&point[..n_taps]);
        let mut a = Vec::with_capacity(out_index.len());
        for m in &out_index {
            let (li, valid) = input_index(em, dims, window, &input, &kernel, m, &at_point);
            let at = linear(em, &input.dims, &li);
            let quad = em.kb.div_c(at, 4);
            a.push((input_q.load(em, f, ids.0, quad), valid));
        }
        (at_point, a)
    };
    let mut quad_body = |em: &mut Em<'_>, point: &[H], accs: &[Val]| -> Result<Vec<Val>> {
        let (input_q, kernel_q) = contraction.expect("only folded with contraction quads");
        let (at_point, a) = input_quad_at(em, input_q, point);
        let mut b = Vec::with_capacity(features.len());
        for &(_, feature) in &features {
            let ki = kernel_multi_index(em, dims, kernel.rank(), &at_point, feature);
            let at = linear(em, &kernel.dims, &ki);
            let quad = em.kb.div_c(at, 4);
            b.push(kernel_q.load(em, f, ids.1, quad));
        }
        let mut next = accs.to_vec();
        for j in 0..4 {
            for (r, br) in b.iter().enumerate() {
                for (c, (ac, valid)) in a.iter().enumerate() {
                    let k = r * a.len() + c;
                    let kb = &mut em.kb;
                    let p = kb.binary(Bo::Multiply, ac[j], br[j]);
                    let sum = kb.binary(Bo::Add, next[k].h, p);
                    let sum = ops::normalize(kb, sum, acc_dt);
                    next[k] = Val { h: kb.select(*valid, sum, next[k].h), dt: acc_dt };
                }
            }
        }
        Ok(next)
    };
    // Four input features per step, read as one vec4 per position; the kernel's values as
    // vec4s of four output features for each of the four input features. The taps run outside
    // the input features, as in `quad_body`.
    let mut input_quad_body = |em: &mut Em<'_>, point: &[H], accs: &[Val]| -> Result<Vec<Val>> {
        let (input_q, kernel_q) = (input_quads.expect("only folded with input quads"), quads.expect("kernel quads"));
        let (at_point, a) = input_quad_at(em, input_q, point);
        let first = at_point[0];
        let last_quad = em.kb.lit_u32((s.features - 4) as u32);
        let mut next = accs.to_vec();
        for j in 0..4u32 {
            let mut j_point = vec![em.kb.add_c(first, j)];
            j_point.extend_from_slice(&point[..n_taps]);
            let mut b = Vec::with_capacity(features.len());
            for four in features.chunks(4) {
                let quad_first = em.kb.min_u(four[0].0, last_quad);
                let ki = kernel_multi_index(em, dims, kernel.rank(), &j_point, quad_first);
                let at = linear(em, &kernel.dims, &ki);
                let quad = em.kb.div_c(at, 4);
                b.extend(kernel_q.load(em, f, ids.1, quad));
            }
            for (r, &br) in b.iter().enumerate() {
                for (c, (ac, valid)) in a.iter().enumerate() {
                    let k = r * a.len() + c;
                    let kb = &mut em.kb;
                    let p = kb.binary(Bo::Multiply, ac[j as usize], br);
                    let sum = kb.binary(Bo::Add, next[k].h, p);
                    let sum = ops::normalize(kb, sum, acc_dt);
                    next[k] = Val { h: kb.select(*valid, sum, next[k].h), dt: acc_dt };
                }
            }
        }
        Ok(next)
    };
    let fold_extents = match (contraction, input_quads) {
        (Some(_), _) | (None, Some(_)) => {
            let mut quad_extents: Vec<u32> =
                dims.kernel_spatial.iter().map(|&d| kernel.dims[d as usize] as u32).collect();
            quad_extents.push(extents[0] / 4);
            quad_extents
        }
        (None, None) => extents.clone(),
    };
    let fold_body: &mut FoldBody = match (contraction, input_quads) {
        (Some(_), _) => &mut quad_body,
        (None, Some(_)) => &mut input_quad_body,
        (None, None) => &mut body,
    };
    let sums = if s.split {
        split_fold(&mut em, &fold_extents, init, fold_body, lid, s.workgroup)?
    } else {
        em.fold(&fold_extents, init, fold_body)?
    };

    // Store the block inside the edges: output element `m` with its feature index set.
    let out_strides = strides(&out_shape.dims);
    let mut stores = Vec::new();
    for (r, &(feature, _)) in features.iter().enumerate() {
        for (c, &(position, _)) in positions.iter().enumerate() {
            let kb = &mut em.kb;
            let feature_in = kb.lt_c(feature, s.features as u32);
            let position_in = kb.lt_c(position, s.positions as u32);
            let inside = kb.binary(Bo::LogicalAnd, feature_in, position_in);
            let mut at = kb.mul_c(feature, out_strides[dims.output_feature as usize]);
            for &d in &s.position_dims {
                let t = kb.mul_c(out_index[c][d], out_strides[d]);
                at = kb.add_u(at, t);
            }
            let v = sums[r * tile_cols as usize + c];
            stores.push((inside, at, Val { h: ops::convert(kb, v, product_dt), dt: product_dt }));
        }
    }
    if s.split {
        // The tree left the block's sums with lane 0.
        em.kb.begin_block();
    }
    for (inside, at, v) in stores {
        em.kb.begin_block();
        store_product(&mut em, ctx, f, g, product, at, v)?;
        let accept = em.kb.end_block();
        em.kb.stmt(naga::Statement::If { condition: inside, accept, reject: naga::Block::new() });
    }
    if s.split {
        let accept = em.kb.end_block();
        let first = em.kb.lit_u32(0);
        let is_first = em.kb.binary(Bo::Equal, lid, first);
        em.kb.stmt(naga::Statement::If { condition: is_first, accept, reject: naga::Block::new() });
    }
    let mut step = finish(em, &ctx.name, KernelKind::Convolution, [s.workgroup, 1, 1], groups, ctx.sources.clone())?;
    if let KernelStep::Kernel(k) = &mut step {
        k.tile_key = Some(s.key.clone());
    }
    because(Ok(vec![step]), || why)
}

/// The kernel bound for vec4 reads of four output features' values (see the module docs): an f32
/// buffer read as it is, whose output-feature dimension is its last, with the features and the
/// block's rows multiples of 4.
fn kernel_quads(
    ctx: &KernelCtx,
    em: &mut Em,
    id: InstrId,
    kernel: &ArrayShape,
    dims: &ConvDims,
    tile_rows: u32,
) -> Option<Quads> {
    let Some(Leaf::Buffer { buf, dims: buf_dims, dtype: DType::F32 }) = ctx.leaves.get(&id) else { return None };
    let last = kernel.rank().checked_sub(1)?;
    let features = kernel.dims[last];
    if *buf_dims != kernel.dims
        || dims.kernel_output_feature as usize != last
        || features % 4 != 0
        || tile_rows % 4 != 0
    {
        return None;
    }
    Quads::bind(em, *buf, kernel.num_elements())
}

/// The kernel's multi-index at contraction `point` (input feature, kernel taps) for `feature`.
fn kernel_multi_index(em: &mut Em, dims: &ConvDims, rank: usize, point: &[H], feature: H) -> Vec<H> {
    let mut ki = vec![em.kb.lit_u32(0); rank];
    ki[dims.kernel_input_feature as usize] = point[0];
    ki[dims.kernel_output_feature as usize] = feature;
    for (s, &d) in dims.kernel_spatial.iter().enumerate() {
        ki[d as usize] = point[1 + s];
    }
    ki
}

/// Both operands bound for vec4 reads of four consecutive input features (see [`emit`]'s fold):
/// f32 buffers read as they are, each with its input features as its last dimension (the input
/// gradient of an NHWC convolution, `b01f_01oi`), a multiple of 4 of them.
fn contraction_quads(
    ctx: &KernelCtx,
    em: &mut Em,
    (input_id, kernel_id): (InstrId, InstrId),
    input: &ArrayShape,
    kernel: &ArrayShape,
    dims: &ConvDims,
) -> Option<(Quads, Quads)> {
    let buffer = |id: InstrId, shape: &ArrayShape| match ctx.leaves.get(&id) {
        Some(Leaf::Buffer { buf, dims, dtype: DType::F32 }) if *dims == shape.dims => Some(*buf),
        _ => None,
    };
    let (input_buf, kernel_buf) = (buffer(input_id, input)?, buffer(kernel_id, kernel)?);
    let features = kernel.dims[dims.kernel_input_feature as usize];
    let last = |shape: &ArrayShape, d: i64| shape.rank().checked_sub(1) == Some(d as usize);
    if !last(input, dims.input_feature) || !last(kernel, dims.kernel_input_feature) || features % 4 != 0 {
        return None;
    }
    let input_q = Quads::bind(em, input_buf, input.num_elements())?;
    let kernel_q = Quads::bind(em, kernel_buf, kernel.num_elements())?;
    Some((input_q, kernel_q))
}

/// The input bound for vec4 reads of four consecutive input features: an f32 buffer read as it
/// is, whose input features are its last dimension, a multiple of 4 of them.
fn input_feature_quads(
    ctx: &KernelCtx,
    em: &mut Em,
    id: InstrId,
    input: &ArrayShape,
    kernel: &ArrayShape,
    dims: &ConvDims,
) -> Option<Quads> {
    let Some(Leaf::Buffer { buf, dims: buf_dims, dtype: DType::F32 }) = ctx.leaves.get(&id) else { return None };
    let features = kernel.dims[dims.kernel_input_feature as usize];
    if *buf_dims != input.dims || input.rank().checked_sub(1) != Some(dims.input_feature as usize) || features % 4 != 0
    {
        return None;
    }
    Quads::bind(em, *buf, input.num_elements())
}

/// The row-major linear index of the multi-index `index` into `dims`.
fn linear(em: &mut Em, dims: &[i64], index: &[H]) -> H {
    let strides = strides(dims);
    let mut at = em.kb.lit_u32(0);
    for (&i, &stride) in index.iter().zip(&strides) {
        let t = em.kb.mul_c(i, stride);
        at = em.kb.add_u(at, t);
    }
    at
}

/// The input multi-index that output position `m` reads at contraction `point` (input feature,
/// kernel taps), and whether it lies inside the input (not in padding or a dilation hole), as
/// the per-element kernel computes them.
fn input_index(
    em: &mut Em,
    dims: &ConvDims,
    window: &Window,
    input: &ArrayShape,
    kernel: &ArrayShape,
    m: &[H],
    point: &[H],
) -> (Vec<H>, H) {
    let kb = &mut em.kb;
    let mut valid = kb.lit_bool(true);
    let zero = kb.lit_u32(0);
    let mut li = vec![zero; input.rank()];
    li[dims.input_batch as usize] = m[dims.output_batch as usize];
    li[dims.input_feature as usize] = point[0];
    for (s, w) in window.dims.iter().enumerate() {
        let k = point[1 + s];
        let taps = kernel.dims[dims.kernel_spatial[s] as usize];
        let tap = if w.window_reversal {
            let last = kb.lit_u32((taps - 1) as u32);
            kb.sub_u(last, k)
        } else {
            k
        };
        let y = kb.mul_c(m[dims.output_spatial[s] as usize], w.stride as u32);
        let t = kb.mul_c(tap, w.window_dilation as u32);
        let pos = kb.add_u(y, t);
        let (index, ok) = window_input_index(kb, pos, w, input.dims[dims.input_spatial[s] as usize], valid);
        valid = ok;
        li[dims.input_spatial[s] as usize] = index;
    }
    (li, valid)
}
