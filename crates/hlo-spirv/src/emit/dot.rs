//! Blocked dot kernels: each invocation computes a block of outputs ([`Tile`]).
//!
//! The per-element dot of the elemental emitter loads two operands per multiply-add. Here one
//! workgroup owns a tile's rows (`lhs` free index, taken from the workgroup id, so the same in
//! every invocation) and columns (`rhs` free index, a tile's columns per invocation, strided by
//! the workgroup size so that neighbouring invocations read neighbouring elements). Per step of
//! the contraction an invocation loads one lhs value per row, the same in every lane (the fold
//! stages them: one load per subgroup lane, then broadcasts), and one rhs value per column, then
//! does a multiply-add per output of its block: a load per multiply-add becomes a few per block.
//!
//! The operands are evaluated through the elemental emitter, so fused prologues (transposes,
//! broadcasts, converts) read straight from their sources; batch dimensions take the
//! workgroup grid's z. Invocations past the edge compute a clamped element and store nothing.
//! Each output sums its products in contraction order, as the per-element kernel does.

use crate::builder::{STy, H};
use crate::emit::elemental::{delinearize, Em, FoldBody, Index, Leaf};
use crate::emit::ops::{self, Val};
use crate::emit::{because, finish, KernelCtx, KernelKind, KernelStep};
use crate::error::Result;
use hlo_ir::{DType, InstrId, Op};
use naga::BinaryOperator as Bo;

/// Most rows of a block (lhs free index), shared by the workgroup.
const MAX_ROWS: u32 = 16;
/// Most columns of a block per invocation (rhs free index).
const MAX_COLS: u32 = 4;
/// Invocations per workgroup.
pub(crate) const WORKGROUP: u32 = 64;
/// Smallest dot (outputs x contraction) worth a blocked kernel.
const MIN_WORK: u64 = 1 << 10;
/// Workgroups a dot should fill where its output allows: more than lavapipe's threads, and
/// a start on a GPU's many cores.
const MIN_GROUPS: u64 = 8;

/// Below this many lanes with a block of their own, and from [`SPLIT_MIN_DEPTH`] products per
/// output, the lanes of a one-subgroup workgroup split the contraction of one block (each lane
/// every subgroup-size-th product) and add their sums through subgroup broadcasts
/// ([`split_fold`]), in dots and convolutions. A weight gradient has few outputs and a long
/// contraction: a convolution's `[3,3,3,8]` over 8 x 16 x 16 products each gave 7 lanes of one
/// workgroup all the work (0.51 -> 0.20 ms on one core; its `[3,3,8,16]` sibling 0.45 -> 0.30
/// ms).
pub(crate) const SPLIT_MAX_LANES: u64 = 512;
pub(crate) const SPLIT_MIN_DEPTH: u64 = 256;
/// The block of a split contraction: 4 x 4 outputs, so that small outputs still make several
/// workgroups.
pub(crate) const SPLIT_TILE: Tile = Tile { rows: 4, cols: 4 };

/// The dot's output as `batch x rows x cols` in the kernel's orientation, and the block each
/// invocation computes. `swapped`: the kernel's rows are the output's columns (the rhs free
/// index) and its columns the output's rows, for outputs with fewer columns than a workgroup
/// has invocations (logits of 10 classes), which would otherwise leave most lanes idle.
struct Shape {
    batch: u64,
    rows: u64,
    cols: u64,
    tile: Tile,
    swapped: bool,
    /// The key of this dot's block in the target's [`crate::TileTable`], and whether the block
    /// came from it.
    key: String,
    tuned: bool,
    /// Whether the lanes of a workgroup split the contraction of one block ([`SPLIT_MAX_LANES`]).
    split: bool,
}

/// `rows x cols` outputs per invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tile {
    pub rows: u32,
    pub cols: u32,
}

/// The block for a `batch x rows x cols` output, and whether it was measured: the target's
/// [`crate::TileTable`] entry for `key` (`hlo-run tune`), else on lavapipe 16 x 4 (a 512 x 512
/// x 512 matmul: 8.8 ms, 16 x 2 10.5, 8 x 2 13.1, 8 x 1 16.9, the per-element kernel 141);
/// smaller outputs take smaller blocks so that edge blocks waste less, and outputs too small to
/// fill [`MIN_GROUPS`] workgroups take smaller blocks still (down to 4 x 1), so that every core
/// gets work (a weight gradient has few outputs and a long contraction). `HLO_DOT_TILE=RxC`
/// overrides both.
pub(crate) fn tile_for(target: &crate::Target, key: &str, batch: u64, rows: u64, cols: u64) -> (Tile, bool) {
    if let Some(t) = std::env::var("HLO_DOT_TILE").ok().and_then(|v| {
        let (r, c) = v.split_once('x')?;
        Some([r.parse().ok()?, c.parse().ok()?])
    }) {
        if crate::TileTable::valid(t) {
            return (Tile { rows: t[0], cols: t[1] }, false);
        }
    }
    if let Some(&t) = target.tiles.tiles.get(key) {
        if crate::TileTable::valid(t) {
            return (Tile { rows: t[0], cols: t[1] }, true);
        }
    }
    let mut tile = Tile {
        rows: (rows.next_power_of_two() as u32).clamp(1, MAX_ROWS),
        cols: (cols.div_ceil(u64::from(WORKGROUP)).next_power_of_two() as u32).clamp(1, MAX_COLS),
    };
    let groups = |t: Tile| batch * rows.div_ceil(u64::from(t.rows)) * cols.div_ceil(u64::from(WORKGROUP * t.cols));
    while groups(tile) < MIN_GROUPS {
        if tile.cols > 1 {
            tile.cols /= 2;
        } else if tile.rows > 4 {
            tile.rows /= 2;
        } else {
            break;
        }
    }
    (tile, false)
}

/// Whether `ctx.root` is a dot this emitter takes: a float result of enough work whose single
/// output is the dot itself, on a grid the device can dispatch.
pub(crate) fn applies(ctx: &KernelCtx) -> bool {
    shape(ctx).is_ok()
}

/// Why a dot at the root keeps the per-element kernel (`None` for other roots and blocked dots).
pub(crate) fn declined(ctx: &KernelCtx) -> Option<String> {
    let is_dot = matches!(ctx.m.comp(ctx.comp).instr(ctx.root).op, Op::Dot { .. });
    is_dot.then(|| shape(ctx).err()).flatten().map(|why| format!("per-element dot: {why}"))
}

fn shape(ctx: &KernelCtx) -> Result<Shape, &'static str> {
    let comp = ctx.m.comp(ctx.comp);
    let root = comp.instr(product_hero(ctx).ok_or("not a dot")?);
    let Op::Dot { dims, .. } = &root.op else { return Err("not a dot") };
    blocked_root(ctx)?;
    let ls = comp.instr(root.operands[0]).shape.as_array().ok_or("tuple operand")?;
    let rs = comp.instr(root.operands[1]).shape.as_array().ok_or("tuple operand")?;
    let prod = |dims: &[i64], pick: &dyn Fn(usize) -> bool| -> u64 {
        dims.iter().enumerate().filter(|(d, _)| pick(*d)).map(|(_, &e)| e.max(0) as u64).product()
    };
    let batch = prod(&ls.dims, &|d| dims.lhs_batch.contains(&(d as i64)));
    let depth = prod(&ls.dims, &|d| dims.lhs_contracting.contains(&(d as i64)));
    let out_rows =
        prod(&ls.dims, &|d| !dims.lhs_batch.contains(&(d as i64)) && !dims.lhs_contracting.contains(&(d as i64)));
    let out_cols =
        prod(&rs.dims, &|d| !dims.rhs_batch.contains(&(d as i64)) && !dims.rhs_contracting.contains(&(d as i64)));
    let swapped = out_cols < u64::from(WORKGROUP) && out_rows > out_cols;
    let (rows, cols) = if swapped { (out_cols, out_rows) } else { (out_rows, out_cols) };
    let key = format!("dot b{batch} r{rows} c{cols} k{depth}{}", if swapped { " swapped" } else { "" });
    let (tile, tuned) = tile_for(ctx.target, &key, batch, rows, cols);
    let lanes_with_blocks = batch * rows.div_ceil(u64::from(tile.rows)) * cols.div_ceil(u64::from(tile.cols));
    let split = !tuned
        && ctx.target.staging_lanes().is_some()
        && lanes_with_blocks < SPLIT_MAX_LANES
        && depth >= SPLIT_MIN_DEPTH;
    let tile = if split { SPLIT_TILE } else { tile };
    let s = Shape { batch, rows, cols, tile, swapped, key, tuned, split };
    let work = batch * rows * cols * depth;
    let lanes_per_block = if split { 1 } else { WORKGROUP };
    let grid_ok = s.cols.div_ceil(u64::from(lanes_per_block * tile.cols)) <= 65535
        && s.rows.div_ceil(u64::from(tile.rows)) <= 65535
        && s.batch <= 65535;
    let fits = batch * rows * cols < u64::from(u32::MAX) && depth < u64::from(u32::MAX);
    if work < MIN_WORK || rows < 2 || cols < 8 || depth < 1 {
        return Err("too small for blocks");
    }
    if !grid_ok || !fits {
        return Err("too large for one dispatch's grid");
    }
    Ok(s)
}

/// The dot or convolution a blocked kernel computes: the root, or the one product in the kernel
/// that the root reads through an elementwise epilogue of its dimensions (a `kOutput` fusion,
/// `hlo_passes::fuse_epilogues`: a bias and an activation, an SGD update).
pub(crate) fn product_hero(ctx: &KernelCtx) -> Option<InstrId> {
    let comp = ctx.m.comp(ctx.comp);
    let is_product = |id: InstrId| matches!(comp.instr(id).op, Op::Dot { .. } | Op::Convolution { .. });
    if is_product(ctx.root) {
        return Some(ctx.root);
    }
    let mut products = comp.ids().filter(|&id| is_product(id) && !ctx.leaves.contains_key(&id));
    let hero = products.next()?;
    let outputs = if yields_product(ctx, hero) { 2 } else { 1 };
    if products.next().is_some() || ctx.outputs.len() != outputs {
        return None;
    }
    hlo_passes::fuse_epilogues::is_epilogue_at(comp, hero, epilogue_root(ctx, hero)).then_some(hero)
}

/// Whether the kernel also yields the product itself, as output 1: its root is the tuple
/// (epilogue, product) of a product other kernels read too (`hlo_passes::fuse_epilogues`).
fn yields_product(ctx: &KernelCtx, product: InstrId) -> bool {
    let root = ctx.m.comp(ctx.comp).instr(ctx.root);
    let pair = matches!(root.op, Op::Tuple) && root.operands.len() == 2 && root.operands[1] == product;
    pair && ctx.outputs.len() == 2 && ctx.outputs[0].path == [0] && ctx.outputs[1].path == [1]
}

/// The value the kernel's first output holds: the root, or output 0 of a root that also yields
/// the product.
fn epilogue_root(ctx: &KernelCtx, product: InstrId) -> InstrId {
    match yields_product(ctx, product) {
        true => ctx.m.comp(ctx.comp).instr(ctx.root).operands[0],
        false => ctx.root,
    }
}

/// Where a blocked kernel stores: its output (the product, or the root's epilogue of it), and the
/// product itself where the kernel also yields it ([`yields_product`]).
#[derive(Clone, Copy)]
pub(crate) struct ProductStores {
    pub out: naga::Handle<naga::GlobalVariable>,
    pub product: Option<naga::Handle<naga::GlobalVariable>>,
}

impl ProductStores {
    /// Binds the kernel's outputs for scalar stores.
    pub(crate) fn bind(em: &mut Em, ctx: &KernelCtx, product: InstrId) -> Result<ProductStores> {
        let o = &ctx.outputs[0];
        let out = em.bind_array(o.buf, o.n_elems(), o.dtype, true, false)?;
        let product = match yields_product(ctx, product) {
            true => {
                let p = &ctx.outputs[1];
                Some(em.bind_array(p.buf, p.n_elems(), p.dtype, true, false)?)
            }
            false => None,
        };
        Ok(ProductStores { out, product })
    }

    /// Binds the kernel's f32 outputs for vec4 stores; `None` where one is not f32 or cannot be.
    fn bind_vec4(em: &mut Em, ctx: &KernelCtx, product: InstrId) -> Option<ProductStores> {
        let vec4 = |em: &mut Em, o: &crate::emit::OutBuf| match o.dtype {
            DType::F32 => em.bind_vec4_as(o.buf, o.n_elems(), true),
            _ => None,
        };
        let out = vec4(em, &ctx.outputs[0])?;
        let product = match yields_product(ctx, product) {
            true => Some(vec4(em, &ctx.outputs[1])?),
            false => None,
        };
        Some(ProductStores { out, product })
    }
}

/// Stores `value`, the product's element at the output's linear index `at`: the value itself, or
/// the root's epilogue of it ([`product_hero`]), computed from the product's value rounded and
/// flushed as a stored product would be; and the product where the kernel also yields it.
pub(crate) fn store_product(
    em: &mut Em,
    ctx: &KernelCtx,
    f: usize,
    g: ProductStores,
    product: InstrId,
    at: H,
    value: Val,
) -> Result<()> {
    let v = product_value(em, ctx, f, product, at, value)?;
    em.store(g.out, at, v);
    if let Some(p) = g.product {
        em.store(p, at, value);
    }
    Ok(())
}

/// The value [`store_product`] stores at `at`.
fn product_value(em: &mut Em, ctx: &KernelCtx, f: usize, product: InstrId, at: H, value: Val) -> Result<Val> {
    if product == ctx.root {
        return Ok(value);
    }
    let value = em.flushed_result(value);
    let idx = Index::from_linear(&ctx.outputs[0].dims, at);
    let leaf = Leaf::State { val: value, at: idx.key().clone(), name: ctx.name.clone() };
    em.set_leaf(f, product, leaf);
    em.eval(f, epilogue_root(ctx, product), &[], &idx)
}

/// What every blocked kernel (dot, convolution) asks of its product ([`product_hero`]): a float
/// array, in a kernel with a single output, with operands that only move data
/// ([`cheap_operand`]).
pub(crate) fn blocked_root<'c>(ctx: &'c KernelCtx) -> Result<&'c hlo_ir::ArrayShape, &'static str> {
    let comp = ctx.m.comp(ctx.comp);
    let hero = product_hero(ctx).ok_or("no dot or convolution hero")?;
    let root = comp.instr(hero);
    let out = root.shape.as_array().ok_or("tuple result")?;
    if !matches!(out.dtype, DType::F32 | DType::F16 | DType::BF16) {
        return Err("not a float result");
    }
    // A product under an epilogue has had its outputs checked by `product_hero`.
    if hero == ctx.root && (ctx.outputs.len() != 1 || !ctx.outputs[0].path.is_empty()) {
        return Err("other outputs in the kernel");
    }
    if !root.operands.iter().all(|&o| cheap_operand(ctx, comp, o)) {
        return Err("an operand computes arithmetic, which each block would repeat");
    }
    Ok(out)
}

/// Whether `id` only moves data (a parameter or constant seen through reshapes, transposes,
/// broadcasts, slices and converts). The blocked kernel reads each operand element in every
/// subgroup of a workgroup and in every lane's clamped edge, so an arithmetic prologue (a float
/// `remainder` is a loop) would be recomputed many times: such dots keep the per-element kernel.
pub(crate) fn cheap_operand(ctx: &KernelCtx, comp: &hlo_ir::Computation, id: hlo_ir::InstrId) -> bool {
    if ctx.leaves.contains_key(&id) {
        return true;
    }
    let instr = comp.instr(id);
    match instr.op {
        Op::Parameter { .. } | Op::Constant(_) | Op::Iota { .. } => true,
        Op::Broadcast { .. }
        | Op::Reshape
        | Op::Bitcast
        | Op::Transpose { .. }
        | Op::Convert
        | Op::Copy
        | Op::Slice { .. }
        | Op::GetTupleElement { .. } => instr.operands.iter().all(|&o| cheap_operand(ctx, comp, o)),
        _ => false,
    }
}

pub(crate) fn emit(ctx: &KernelCtx) -> Result<Vec<KernelStep>> {
    let s = shape(ctx).expect("dot::applies was checked");

    let comp = ctx.m.comp(ctx.comp);
    let product = product_hero(ctx).expect("dot::applies was checked");
    let root = comp.instr(product);
    let Op::Dot { dims, .. } = &root.op else { unreachable!("checked") };
    let out = &ctx.outputs[0];
    let ls = comp.instr(root.operands[0]).shape.as_array().expect("array").clone();
    let rs = comp.instr(root.operands[1]).shape.as_array().expect("array").clone();
    let acc_dt = DType::F32;

    let Tile { rows: tile_rows, cols: tile_cols } = s.tile;
    // Normal blocks: each lane its own columns; split: the workgroup's lanes share them.
    let (lanes_per_block, workgroup) = match (s.split, ctx.target.staging_lanes()) {
        (true, Some(lanes)) => (1, lanes),
        _ => (WORKGROUP, WORKGROUP),
    };
    let groups = [
        s.cols.div_ceil(u64::from(lanes_per_block * tile_cols)) as u32,
        s.rows.div_ceil(u64::from(tile_rows)) as u32,
        s.batch as u32,
    ];
    let mut em = Em::new(ctx.m, ctx.target, &ctx.name);
    em.texel_reads = true;
    let f = em.frame(ctx.comp, ctx.leaves.clone());
    let product_dt = root.shape.dtype().expect("an array");
    em.check_type(root, product_dt)?;
    em.check_type(comp.instr(ctx.root), out.dtype)?;
    // An invocation's four columns side by side (`s.cols` a multiple of 4, not swapped): the
    // four f32 outputs of each row are one vec4 store, where llvmpipe stores a scalar at a
    // varying index lane by lane (a dot with a contraction of 10 and 65,536 outputs spent most of
    // its time storing).
    let vec4_out = match (tile_cols, s.swapped, s.cols % 4) {
        (4, false, 0) => ProductStores::bind_vec4(&mut em, ctx, product),
        _ => None,
    };
    let g = match vec4_out {
        Some(_) => None,
        None => Some(ProductStores::bind(&mut em, ctx, product)?),
    };

    let kb = &mut em.kb;
    let wid = kb.builtin(naga::BuiltIn::WorkGroupId);
    let lid3 = kb.builtin(naga::BuiltIn::LocalInvocationId);
    let lid = kb.access_index(lid3, 0);
    let (wx, wy, wz) = (kb.access_index(wid, 0), kb.access_index(wid, 1), kb.access_index(wid, 2));
    // Rows and the batch index come from the workgroup id: the same in every invocation.
    let row0 = kb.mul_c(wy, tile_rows);
    let last_row = kb.lit_u32((s.rows - 1) as u32);
    let rows: Vec<(H, H)> = (0..tile_rows)
        .map(|r| {
            let raw = kb.add_c(row0, r);
            (raw, kb.min_u(raw, last_row))
        })
        .collect();

    // The operand read along the kernel's rows (the lhs, or the rhs when swapped) and the one
    // read along its columns.
    let lhs_side =
        Side { id: root.operands[0], dims: &ls.dims, batch: &dims.lhs_batch, contracting: &dims.lhs_contracting };
    let rhs_side =
        Side { id: root.operands[1], dims: &rs.dims, batch: &dims.rhs_batch, contracting: &dims.rhs_contracting };
    let (row_side, col_side) = if s.swapped { (rhs_side, lhs_side) } else { (lhs_side, rhs_side) };
    let quads = if tile_cols == 4 { col_side.quads(ctx, &mut em) } else { None };
    let why = format!(
        "blocked dot: {}x{} outputs per {}{}{}{}",
        s.tile.rows,
        s.tile.cols,
        if s.split { "workgroup, its lanes splitting the contraction" } else { "invocation" },
        if s.tuned { " (tuned)" } else { "" },
        if s.swapped { ", swapped (few output columns)" } else { "" },
        match quads {
            Some(Quads::Storage(_)) => ", columns read as vec4",
            Some(Quads::Texels(_)) => ", columns read as vec4 texels",
            None => "",
        }
    );

    // An invocation's columns: strided by the workgroup size (neighbouring invocations read
    // neighbouring elements), or four consecutive ones when they are read as one vec4.
    let kb = &mut em.kb;
    let last_col = kb.lit_u32((s.cols - 1) as u32);
    let cols: Vec<(H, H)> = if quads.is_some() || vec4_out.is_some() || s.split {
        // Split: the workgroup's block of four columns (`SPLIT_TILE`), the same in every lane.
        let first = if s.split { wx } else { kb.mul_c(wx, WORKGROUP) };
        let first = if s.split { first } else { kb.add_u(first, lid) };
        let first = kb.mul_c(first, 4);
        (0..4)
            .map(|c| {
                let raw = kb.add_c(first, c);
                (raw, kb.min_u(raw, last_col))
            })
            .collect()
    } else {
        let col0 = kb.mul_c(wx, WORKGROUP * tile_cols);
        let col0 = kb.add_u(col0, lid);
        (0..tile_cols)
            .map(|c| {
                let raw = kb.add_c(col0, c * WORKGROUP);
                (raw, kb.min_u(raw, last_col))
            })
            .collect()
    };
    // Multi-indices of the operands: batch dims from wz, free dims from the row or column.
    let batch_dims: Vec<i64> = row_side.batch.iter().map(|&d| row_side.dims[d as usize]).collect();
    let batch_index = delinearize(&mut em.kb, &batch_dims, wz);
    let row_base = row_side.bases(&mut em, &batch_index, &rows);
    let col_base = col_side.bases(&mut em, &batch_index, &cols);
    // With quads: the first column of the lane's four, kept inside the array.
    let quad_col = quads.map(|_| {
        let kb = &mut em.kb;
        let last_quad = kb.lit_u32((s.cols - 4) as u32);
        kb.min_u(cols[0].0, last_quad)
    });

    let extents: Vec<u32> = dims.lhs_contracting.iter().map(|&d| ls.dims[d as usize] as u32).collect();
    let zero_acc = Val { h: em.kb.lit_float(crate::builder::STy::F32, 0.0), dt: acc_dt };
    let init = vec![zero_acc; (tile_rows * tile_cols) as usize];
    let swapped = s.swapped;
    let mut body = |em: &mut Em<'_>, point: &[H], accs: &[Val]| -> Result<Vec<Val>> {
        let a = row_side.load(em, f, &row_base, point, acc_dt)?;
        let b = match (quads, quad_col) {
            (Some(g), Some(first)) => col_side.load_quad(em, f, g, &batch_index, first, point),
            _ => col_side.load(em, f, &col_base, point, acc_dt)?,
        };
        let mut next = Vec::with_capacity(accs.len());
        for (r, &ar) in a.iter().enumerate() {
            for (c, &bc) in b.iter().enumerate() {
                let acc = accs[r * tile_cols as usize + c];
                // The lhs value first, as the per-element kernel multiplies (a * b is b * a in IEEE
                // arithmetic, NaN payloads aside).
                let p = if swapped { em.kb.binary(Bo::Multiply, bc, ar) } else { em.kb.binary(Bo::Multiply, ar, bc) };
                let sum = em.kb.binary(Bo::Add, acc.h, p);
                next.push(Val { h: ops::normalize(&mut em.kb, sum, acc_dt), dt: acc_dt });
            }
        }
        Ok(next)
    };
    let sums = match s.split {
        true => split_fold(&mut em, &extents, init, &mut body, lid, workgroup)?,
        false => em.fold(&extents, init, &mut body)?,
    };

    // Store the block: output element (batch * rows + row) * cols + col of the output's own rows and
    // columns, inside the edges only.
    let out_cols = if s.swapped { s.rows } else { s.cols };
    let kb = &mut em.kb;
    let plane = kb.mul_c(wz, (s.rows * s.cols) as u32);
    let rows_n = kb.lit_u32(s.rows as u32);
    let cols_n = kb.lit_u32(s.cols as u32);
    let mut stores = Vec::new();
    for (r, &(row, _)) in rows.iter().enumerate() {
        for (c, &(col, _)) in cols.iter().enumerate() {
            let kb = &mut em.kb;
            let row_in = kb.binary(Bo::Less, row, rows_n);
            let col_in = kb.binary(Bo::Less, col, cols_n);
            let inside = kb.binary(Bo::LogicalAnd, row_in, col_in);
            let (out_row, out_col) = if s.swapped { (col, row) } else { (row, col) };
            let at = kb.mul_c(out_row, out_cols as u32);
            let at = kb.add_u(at, out_col);
            let at = kb.add_u(plane, at);
            let v = sums[r * tile_cols as usize + c];
            let v = Val { h: ops::convert(kb, v, product_dt), dt: product_dt };
            stores.push((inside, at, v));
        }
    }
    if s.split {
        // Every lane holds the block's sums: lane 0 stores them.
        em.kb.begin_block();
    }
    match (g, vec4_out) {
        (Some(g), _) => {
            for (inside, at, v) in stores {
                em.kb.begin_block();
                store_product(&mut em, ctx, f, g, product, at, v)?;
                let accept = em.kb.end_block();
                em.kb.stmt(naga::Statement::If { condition: inside, accept, reject: naga::Block::new() });
            }
        }
        // A row's four outputs are all inside or all outside (the columns are a multiple of 4).
        (None, Some(gv)) => {
            for row in stores.chunks(4) {
                em.kb.begin_block();
                let mut values = Vec::with_capacity(4);
                for &(_, at, v) in row {
                    values.push(product_value(&mut em, ctx, f, product, at, v)?);
                }
                let quad = em.kb.div_c(row[0].1, 4);
                let values: [Val; 4] = values.try_into().expect("four columns");
                em.store_quad(gv.out, quad, values);
                if let Some(p) = gv.product {
                    let products: [Val; 4] = [0, 1, 2, 3].map(|c| row[c].2);
                    em.store_quad(p, quad, products);
                }
                let accept = em.kb.end_block();
                em.kb.stmt(naga::Statement::If { condition: row[0].0, accept, reject: naga::Block::new() });
            }
        }
        (None, None) => unreachable!("the output is bound one way or the other"),
    }
    if s.split {
        let accept = em.kb.end_block();
        let first = em.kb.lit_u32(0);
        let is_first = em.kb.binary(Bo::Equal, lid, first);
        em.kb.stmt(naga::Statement::If { condition: is_first, accept, reject: naga::Block::new() });
    }
    let mut step = finish(em, &ctx.name, KernelKind::Dot, [workgroup, 1, 1], groups, ctx.sources.clone())?;
    if let KernelStep::Kernel(k) = &mut step {
        k.tile_key = Some(s.key.clone());
    }
    because(Ok(vec![step]), || why)
}

/// [`Em::fold`] over `extents` split between the `lanes` invocations of a one-subgroup workgroup:
/// lane `lane` folds points `lane`, `lane + lanes`, ... (row-major), and the lanes' sums are added
/// in lane order, the same in every lane. Every lane runs the loop at least once, so `extents`
/// hold at least `lanes` points.
pub(crate) fn split_fold<'m>(
    em: &mut Em<'m>,
    extents: &[u32],
    init: Vec<Val>,
    body: &mut FoldBody<'_, 'm>,
    lane: H,
    lanes: u32,
) -> Result<Vec<Val>> {
    let total: u64 = extents.iter().map(|&e| u64::from(e)).product();
    debug_assert!(total >= u64::from(lanes), "every lane folds at least one point");
    let dims: Vec<i64> = extents.iter().map(|&e| i64::from(e)).collect();
    let accs: Vec<(H, DType)> =
        init.iter().enumerate().map(|(k, v)| (em.kb.local_init(&format!("acc{k}"), STy::F32, v.h), v.dt)).collect();
    let r = em.kb.local_init("r", STy::U32, lane);
    em.kb.begin_loop_body();
    em.enter_loop(Some(total.div_ceil(u64::from(lanes))));
    let rv = em.kb.load(r);
    let point = delinearize(&mut em.kb, &dims, rv);
    let current: Vec<Val> = accs.iter().map(|&(p, dt)| Val { h: em.kb.load(p), dt }).collect();
    let next = body(em, &point, &current);
    em.exit_loop();
    for (&(p, _), v) in accs.iter().zip(next?) {
        em.kb.store(p, v.h);
    }
    let body_block = em.kb.end_block();
    em.kb.begin_block();
    let rv = em.kb.load(r);
    let next = em.kb.add_c(rv, lanes);
    em.kb.store(r, next);
    let end = em.kb.lit_u32(total as u32);
    let done = em.kb.binary(Bo::GreaterEqual, next, end);
    let continuing = em.kb.end_block();
    em.kb.stmt(naga::Statement::Loop { body: body_block, continuing, break_if: Some(done) });

    // The lanes' sums in lane order, through subgroup broadcasts: no shared memory, whose
    // per-lane accesses lavapipe runs as a loop over the lanes (a shared-memory tree made
    // these kernels 20x slower).
    let sums = accs
        .iter()
        .map(|&(p, dt)| {
            let mine = em.kb.load(p);
            let mut sum = em.kb.subgroup_broadcast(mine, 0, STy::F32);
            for t in 1..lanes {
                let theirs = em.kb.subgroup_broadcast(mine, t, STy::F32);
                let s = em.kb.binary(Bo::Add, sum, theirs);
                sum = ops::normalize(&mut em.kb, s, DType::F32);
            }
            Val { h: sum, dt }
        })
        .collect();
    Ok(sums)
}

/// How four consecutive f32 elements are read in one load ([`Side::quads`], and a convolution's
/// kernel values in `conv.rs`).
#[derive(Clone, Copy)]
pub(crate) enum Quads {
    /// A vec4 of an `array<vec4<f32>>` storage buffer.
    Storage(naga::Handle<naga::GlobalVariable>),
    /// A texel of a uniform texel buffer ([`crate::Target::texel_gathers`]).
    Texels(naga::Handle<naga::GlobalVariable>),
}

/// One operand of the dot: its instruction, dims, and batch and contracting dimensions (the
/// contracting ones in the order they pair with the other operand's).
#[derive(Clone, Copy)]
struct Side<'a> {
    id: InstrId,
    dims: &'a [i64],
    batch: &'a [i64],
    contracting: &'a [i64],
}

impl Quads {
    /// An f32 buffer of `elems` elements (a multiple of 4) bound for vec4 reads: a texel view
    /// where the target gathers faster through texels, else `array<vec4<f32>>`.
    pub(crate) fn bind(em: &mut Em, buf: hlo_program::BufferId, elems: u64) -> Option<Quads> {
        match em.bind_texels(buf, elems) {
            Some(g) => Some(Quads::Texels(g)),
            None => em.bind_vec4(buf, elems).map(Quads::Storage),
        }
    }

    /// Elements `4 quad .. 4 quad + 4` of the buffer that instruction `id` of frame `f` reads,
    /// as XLA:CPU reads them (subnormals as zero).
    pub(crate) fn load(self, em: &mut Em, f: usize, id: InstrId, quad: H) -> Vec<H> {
        let values = match self {
            Quads::Storage(g) => em.load_vec4(g, quad),
            Quads::Texels(g) => em.fetch_vec4(g, quad),
        };
        values.into_iter().map(|h| em.daz(f, id, Val { h, dt: DType::F32 }).h).collect()
    }
}

impl Side<'_> {
    /// This side as `array<vec4<f32>>` when an invocation's four columns can be read in one load:
    /// an f32 buffer whose only free dimension is its last, of a multiple of 4 elements (then
    /// four consecutive columns are four consecutive elements, 16-byte aligned).
    fn quads(&self, ctx: &KernelCtx, em: &mut Em) -> Option<Quads> {
        let Some(Leaf::Buffer { buf, dims, dtype: DType::F32 }) = ctx.leaves.get(&self.id) else { return None };
        let last = self.dims.len().checked_sub(1)? as i64;
        let free_is_last = (0..last).all(|d| self.batch.contains(&d) || self.contracting.contains(&d))
            && !self.batch.contains(&last)
            && !self.contracting.contains(&last);
        if !free_is_last || dims.as_slice() != self.dims || self.dims[last as usize] % 4 != 0 {
            return None;
        }
        Quads::bind(em, *buf, self.dims.iter().product::<i64>() as u64)
    }

    /// The four values at contraction `point` of the columns `first..first + 4` (see
    /// [`Side::quads`]), read as XLA:CPU reads them (subnormals as zero).
    fn load_quad(&self, em: &mut Em, f: usize, g: Quads, batch_index: &[H], first: H, point: &[H]) -> Vec<H> {
        let strides = crate::emit::elemental::strides(self.dims);
        let last = self.dims.len() - 1;
        let kb = &mut em.kb;
        let mut at = kb.mul_c(first, strides[last]);
        let parts = self.batch.iter().zip(batch_index).chain(self.contracting.iter().zip(point));
        for (&d, &i) in parts {
            let t = kb.mul_c(i, strides[d as usize]);
            at = kb.add_u(at, t);
        }
        let quad = kb.div_c(at, 4);
        g.load(em, f, self.id, quad)
    }

    /// The operand's multi-index for each of the block's rows (or columns): the batch dimensions
    /// at `batch_index`, the free ones at the row's (clamped) index, the contracting ones at 0.
    fn bases(&self, em: &mut Em, batch_index: &[H], lines: &[(H, H)]) -> Vec<Vec<H>> {
        let (batch, contracting) = (self.batch, self.contracting);
        let free: Vec<usize> = (0..self.dims.len())
            .filter(|&d| !batch.contains(&(d as i64)) && !contracting.contains(&(d as i64)))
            .collect();
        let free_dims: Vec<i64> = free.iter().map(|&d| self.dims[d]).collect();
        let zero = em.kb.lit_u32(0);
        lines
            .iter()
            .map(|&(_, clamped)| {
                let mut base = vec![zero; self.dims.len()];
                for (k, &d) in batch.iter().enumerate() {
                    base[d as usize] = batch_index[k];
                }
                for (k, h) in delinearize(&mut em.kb, &free_dims, clamped).into_iter().enumerate() {
                    base[free[k]] = h;
                }
                base
            })
            .collect()
    }

    /// The operand's values at contraction `point` for each of `bases`, read as XLA:CPU reads
    /// them (subnormals as zero) and converted to the accumulator type.
    fn load(&self, em: &mut Em, f: usize, bases: &[Vec<H>], point: &[H], acc_dt: DType) -> Result<Vec<H>> {
        bases
            .iter()
            .map(|base| {
                let mut at = base.clone();
                for (k, &d) in self.contracting.iter().enumerate() {
                    at[d as usize] = point[k];
                }
                let v = em.eval(f, self.id, &[], &Index::from_multi(self.dims, at))?;
                let v = em.daz(f, self.id, v);
                Ok(ops::convert(&mut em.kb, v, acc_dt))
            })
            .collect()
    }
}
