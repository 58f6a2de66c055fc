//! `scan-rewrite`: cumulative `reduce-window`s as blocked scans, as XLA:CPU's
//! `ReduceWindowRewriter` (base length 16) does.
//!
//! JAX lowers `cumsum`, `cumprod`, `cummax`, `cumlogsumexp` to a `reduce-window` whose window
//! spans the whole scanned dimension of length `n` (`size=n`, `pad=n-1_0`, or `pad=0_n-1` in
//! reverse; `pad=n_0` for an exclusive scan). XLA:CPU never evaluates that form: it pads the
//! dimension to a multiple of 16, reshapes it to `[n/16, 16]`, scans within each row of 16,
//! takes each row's total, scans the totals exclusively (itself rewritten the same way when
//! longer than 16), broadcasts them back and combines them with the row scans through the
//! reducer. The sums therefore round in that blocked order, and we do the same to get JAX's
//! values; it also makes a scan cost about `2n` reducer applications instead of `n^2 / 2`, and
//! no loop longer than 16.
//!
//! Only a single-input window with one non-trivial dimension (stride 1, no dilation, size
//! equal to the dimension) is rewritten. The combining step applies the reducer: as the
//! binary op itself when the reducer is one op on its parameters, else through `map`.
//!
//! Pre-condition: a well-formed module. Post-condition: no such scan longer than [`BASE`].

use crate::util::NameUniquer;
use crate::PassError;
use hlo_ir::{ArrayShape, CompId, Computation, Instr, InstrId, Module, Op, PadDim, Shape, SliceDim, Window, WindowDim};

/// XLA:CPU's base length for the rewrite.
pub const BASE: i64 = 16;

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("scan-rewrite").entered();
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    for c in 0..module.comps.len() {
        let comp_id = CompId(c as u32);
        let mut comp_changed = false;
        // New scans of the block totals are appended and rewritten in turn.
        let mut at = 0;
        while at < module.comp(comp_id).instrs.len() {
            let id = InstrId::from_index(at);
            at += 1;
            let Some(scan) = match_scan(module, comp_id, id) else { continue };
            let combine = combiner(module, scan.to_apply);
            let comp = module.comp_mut(comp_id);
            let new = rewrite(comp, id, &scan, combine, &mut names);
            crate::util::apply_replacements(comp, &std::iter::once((id, new)).collect());
            comp_changed = true;
        }
        if comp_changed {
            crate::util::compact(module.comp_mut(comp_id))?;
            changed = true;
        }
    }
    Ok(changed)
}

/// A cumulative reduce-window.
struct Scan {
    input: InstrId,
    init: InstrId,
    to_apply: CompId,
    dim: usize,
    n: i64,
    forward: bool,
    exclusive: bool,
}

fn match_scan(module: &Module, comp_id: CompId, id: InstrId) -> Option<Scan> {
    let comp = module.comp(comp_id);
    let instr = comp.instr(id);
    let Op::ReduceWindow { window, to_apply } = &instr.op else { return None };
    if instr.operands.len() != 2 || instr.shape.is_tuple() {
        return None;
    }
    let (input, init) = (instr.operands[0], instr.operands[1]);
    let in_shape = comp.instr(input).shape.as_array()?;
    // Mixed-precision windows (an f16 input into an f32 accumulator, say) are left alone.
    if instr.shape.dtype() != Some(in_shape.dtype) || comp.instr(init).shape.dtype() != Some(in_shape.dtype) {
        return None;
    }
    let trivial = |w: &WindowDim| {
        w.size == 1
            && w.stride == 1
            && w.padding_low == 0
            && w.padding_high == 0
            && w.window_dilation == 1
            && w.base_dilation == 1
    };
    let mut long = window.dims.iter().enumerate().filter(|(_, w)| !trivial(w));
    let (dim, w) = long.next()?;
    if long.next().is_some() || window.dims.len() != in_shape.rank() {
        return None;
    }
    let n = in_shape.dims[dim];
    if n <= BASE {
        return None;
    }
    let forward = (w.padding_low == n - 1 || w.padding_low == n) && w.padding_high == 0;
    let reverse = (w.padding_high == n - 1 || w.padding_high == n) && w.padding_low == 0;
    if w.stride != 1
        || w.size != n
        || !(forward || reverse)
        || w.window_reversal
        || w.base_dilation != 1
        || w.window_dilation != 1
    {
        return None;
    }
    // The combining step applies the reducer to two values of the scan's type.
    let reducer = module.comp(*to_apply);
    let scalar = Shape::scalar(in_shape.dtype);
    if reducer.params.len() != 2 || reducer.params.iter().any(|&p| !reducer.instr(p).shape.compatible(&scalar)) {
        return None;
    }
    let exclusive = if forward { w.padding_low == n } else { w.padding_high == n };
    Some(Scan { input, init, to_apply: *to_apply, dim, n, forward, exclusive })
}

/// How the row scans and the broadcast block totals combine: the reducer's own binary op
/// when its root is that op on its two parameters in order, else a `map` of the reducer.
#[derive(Clone, Copy)]
enum Combine {
    Binary(hlo_ir::BinaryOp),
    Map(CompId),
}

fn combiner(module: &Module, to_apply: CompId) -> Combine {
    let c = module.comp(to_apply);
    let root = c.instr(c.root);
    match (&root.op, &c.params[..], &root.operands[..]) {
        (Op::Binary(op), [p0, p1], [a, b]) if a == p0 && b == p1 => Combine::Binary(*op),
        _ => Combine::Map(to_apply),
    }
}

/// Builds the blocked scan of `scan` in `comp`; returns the instruction that replaces `id`.
fn rewrite(comp: &mut Computation, id: InstrId, scan: &Scan, combine: Combine, names: &mut NameUniquer) -> InstrId {
    let base_name = comp.instr(id).name.clone();
    let metadata = comp.instr(id).meta.metadata.clone();
    let result_shape = comp.instr(id).shape.as_array().expect("checked").clone();
    let mut push = |comp: &mut Computation, shape: ArrayShape, op: Op, operands: Vec<InstrId>| {
        let mut instr = Instr::new(names.fresh(&base_name), Shape::Array(shape), op, operands);
        instr.meta.metadata = metadata.clone();
        comp.push(instr)
    };
    let in_shape = comp.instr(scan.input).shape.as_array().expect("checked").clone();
    let dtype = in_shape.dtype;
    let rank = in_shape.rank();
    let last = rank - 1;
    // 1. The scanned dimension last.
    let mut perm: Vec<i64> = (0..rank as i64).collect();
    perm.swap(scan.dim, last);
    let mut dims: Vec<i64> = perm.iter().map(|&p| in_shape.dims[p as usize]).collect();
    let mut source = scan.input;
    if scan.dim != last {
        source =
            push(comp, ArrayShape::new(dtype, dims.clone()), Op::Transpose { dimensions: perm.clone() }, vec![source]);
    }
    // 2. Padded to a multiple of the base with the init value.
    let padded = (scan.n + BASE - 1) / BASE * BASE;
    if padded != scan.n {
        let mut pads = vec![PadDim { low: 0, high: 0, interior: 0 }; rank];
        pads[last].high = padded - scan.n;
        dims[last] = padded;
        source = push(comp, ArrayShape::new(dtype, dims.clone()), Op::Pad { dims: pads }, vec![source, scan.init]);
    }
    // 3. [.., k, BASE], scanned along the rows.
    let k = padded / BASE;
    let mut tiled_dims = dims[..last].to_vec();
    tiled_dims.extend([k, BASE]);
    let tiled = ArrayShape::new(dtype, tiled_dims.clone());
    let tiles = push(comp, tiled.clone(), Op::Reshape, vec![source]);
    let mut row_window = trivial_window(rank + 1);
    row_window.dims[rank].size = BASE;
    if scan.forward {
        row_window.dims[rank].padding_low = BASE - 1;
    } else {
        row_window.dims[rank].padding_high = BASE - 1;
    }
    let rows = push(
        comp,
        tiled.clone(),
        Op::ReduceWindow { window: row_window, to_apply: scan.to_apply },
        vec![tiles, scan.init],
    );
    // 4. Each row's total: its last element (its first in reverse).
    let mut column_dims = tiled_dims.clone();
    column_dims[rank] = 1;
    let mut column = slice_all(&tiled_dims);
    column[rank] = if scan.forward {
        SliceDim { start: BASE - 1, limit: BASE, stride: 1 }
    } else {
        SliceDim { start: 0, limit: 1, stride: 1 }
    };
    let totals = push(comp, ArrayShape::new(dtype, column_dims), Op::Slice { dims: column }, vec![rows]);
    let totals_dims = tiled_dims[..rank].to_vec();
    let totals = push(comp, ArrayShape::new(dtype, totals_dims.clone()), Op::Reshape, vec![totals]);
    // 5. An exclusive scan of the totals (rewritten again by the caller's walk when long).
    let mut total_window = trivial_window(rank);
    total_window.dims[last].size = k;
    if scan.forward {
        total_window.dims[last].padding_low = k;
    } else {
        total_window.dims[last].padding_high = k;
    }
    let mut scanned_dims = totals_dims.clone();
    scanned_dims[last] = k + 1;
    let before = push(
        comp,
        ArrayShape::new(dtype, scanned_dims),
        Op::ReduceWindow { window: total_window, to_apply: scan.to_apply },
        vec![totals, scan.init],
    );
    let mut exclusive = slice_all(&totals_dims);
    exclusive[last] = if scan.forward {
        SliceDim { start: 0, limit: k, stride: 1 }
    } else {
        SliceDim { start: 1, limit: k + 1, stride: 1 }
    };
    let before = push(comp, ArrayShape::new(dtype, totals_dims), Op::Slice { dims: exclusive }, vec![before]);
    // 6. Broadcast back over the rows and combined with the row scans.
    let spread = push(comp, tiled.clone(), Op::Broadcast { dimensions: (0..rank as i64).collect() }, vec![before]);
    let combined = match combine {
        Combine::Binary(op) => push(comp, tiled, Op::Binary(op), vec![rows, spread]),
        Combine::Map(to_apply) => {
            push(comp, tiled, Op::Map { dimensions: (0..=rank as i64).collect(), to_apply }, vec![rows, spread])
        }
    };
    // 7. Back to the input's shape: reshape, transpose (a swap undoes itself), drop the padding.
    let mut out = push(comp, ArrayShape::new(dtype, dims.clone()), Op::Reshape, vec![combined]);
    let mut out_dims = dims.clone();
    if scan.dim != last {
        out_dims = perm.iter().map(|&p| dims[p as usize]).collect();
        out = push(comp, ArrayShape::new(dtype, out_dims.clone()), Op::Transpose { dimensions: perm }, vec![out]);
    }
    if padded != scan.n {
        out = slice_from(comp, &mut push, out, &out_dims, scan.dim, scan.n, dtype);
    }
    // 8. An exclusive scan is one longer: the init value first (last in reverse).
    if scan.exclusive {
        let mut pads = vec![PadDim { low: 0, high: 0, interior: 0 }; rank];
        if scan.forward {
            pads[scan.dim].low = 1;
        } else {
            pads[scan.dim].high = 1;
        }
        out = push(comp, result_shape, Op::Pad { dims: pads }, vec![out, scan.init]);
    }
    out
}

/// `x[..., :n, ...]` along `dim` of an array of `dims`.
fn slice_from(
    comp: &mut Computation,
    push: &mut impl FnMut(&mut Computation, ArrayShape, Op, Vec<InstrId>) -> InstrId,
    x: InstrId,
    dims: &[i64],
    dim: usize,
    n: i64,
    dtype: hlo_ir::DType,
) -> InstrId {
    let mut slice = slice_all(dims);
    slice[dim] = SliceDim { start: 0, limit: n, stride: 1 };
    let mut out = dims.to_vec();
    out[dim] = n;
    push(comp, ArrayShape::new(dtype, out), Op::Slice { dims: slice }, vec![x])
}

fn slice_all(dims: &[i64]) -> Vec<SliceDim> {
    dims.iter().map(|&d| SliceDim { start: 0, limit: d, stride: 1 }).collect()
}

fn trivial_window(rank: usize) -> Window {
    Window { dims: vec![WindowDim::default(); rank] }
}

#[cfg(test)]
mod tests {
    use crate::util::testing::check;

    #[test]
    fn a_cumulative_sum_becomes_a_blocked_scan() {
        check(
            super::run,
            r#"
HloModule m
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
ENTRY main {
  x = f32[20] parameter(0)
  z = f32[] constant(0)
  ROOT r = f32[20] reduce-window(x, z), window={size=20 pad=19_0}, to_apply=add
}
"#,
            r#"
%add (a: f32[], b: f32[]) -> f32[] {
%a = f32[] parameter(0)
%b = f32[] parameter(1)
ROOT %s = f32[] add(%a, %b)
}
ENTRY %main (x: f32[20]) -> f32[20] {
%x = f32[20] parameter(0)
%z = f32[] constant(0)
%r.1 = f32[32] pad(%x, %z), padding=0_12
%r.2 = f32[2,16] reshape(%r.1)
%r.3 = f32[2,16] reduce-window(%r.2, %z), window={size=1x16 pad=0_0x15_0}, to_apply=%add
%r.4 = f32[2,1] slice(%r.3), slice={[0:2], [15:16]}
%r.5 = f32[2] reshape(%r.4)
%r.6 = f32[3] reduce-window(%r.5, %z), window={size=2 pad=2_0}, to_apply=%add
%r.7 = f32[2] slice(%r.6), slice={[0:2]}
%r.8 = f32[2,16] broadcast(%r.7), dimensions={0}
%r.9 = f32[2,16] add(%r.3, %r.8)
%r.10 = f32[32] reshape(%r.9)
ROOT %r.11 = f32[20] slice(%r.10), slice={[0:20]}
}
"#,
        );
    }

    #[test]
    fn scans_whose_reducer_takes_other_types_are_left_alone() {
        // Found by fuzzing: the combining `map` passed f32 values to an f16 parameter.
        let text = r#"
HloModule m
add {
  a = f32[] parameter(0)
  b = f16[] parameter(1)
  c = f32[] convert(b)
  ROOT s = f32[] add(a, c)
}
ENTRY main {
  x = f32[100] parameter(0)
  z = f32[] constant(0)
  ROOT r = f32[100] reduce-window(x, z), window={size=100 pad=99_0}, to_apply=add
}
"#;
        let (changed, _) = crate::util::testing::run(super::run, text);
        assert!(!changed);
    }
}
