//! split-scans: long prefix scans (`cumsum` and friends) become blocked two-level scans.
//!
//! JAX lowers `cumsum`, `cumprod`, `cummax`, `logcumsumexp` to a `reduce-window` whose window
//! spans the whole scanned dimension (`size=n pad=n-1_0`, or `pad=0_n-1` in reverse): output `i`
//! reduces the `i + 1` elements before it. Evaluated as written that is `n^2 / 2` work and a
//! loop of up to `n` iterations per output, which some drivers cut short (lavapipe stops a
//! kernel's loops after 65,535 iterations). Like XLA's `ReduceWindowRewriter`, this pass pads
//! the dimension to `k * B`, reshapes it to `[k, B]`, scans within each block of `B`, scans the
//! block totals (again split when `k` is long), and combines each element with the total of
//! the blocks before it through the scan's own reducer (a `map`): `O(n * B)` work, loops of at
//! most `B` iterations.
//!
//! Only scans whose init value is an identity of the reducer are rewritten (checked by
//! evaluating the reducer); JAX always uses one (0 for sums, -inf for maxima, ...).

use crate::PassError;
use hlo_ir::{ArrayShape, CompId, Computation, Instr, InstrId, Literal, Module, Op, PadDim, Shape, SliceDim, Window};

/// Scans up to this long stay one `reduce-window`; longer ones are split into blocks of this size.
pub const BLOCK: i64 = 128;

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("split-scans").entered();
    let mut changed = false;
    for c in 0..module.comps.len() {
        let comp_id = CompId(c as u32);
        let mut comp_changed = false;
        let mut at = 0;
        while at < module.comp(comp_id).instrs.len() {
            let id = InstrId::from_index(at);
            at += 1;
            let Some(scan) = as_scan(module, module.comp(comp_id), id) else { continue };
            let new = rewrite(module.comp_mut(comp_id), id, &scan);
            crate::util::apply_replacements(module.comp_mut(comp_id), &[(id, new)].into_iter().collect());
            comp_changed = true;
        }
        if comp_changed {
            crate::util::compact(module.comp_mut(comp_id))?;
            changed = true;
        }
    }
    Ok(changed)
}

/// A `reduce-window` that is an inclusive prefix (or suffix) scan along one dimension.
struct Scan {
    dim: usize,
    len: i64,
    reverse: bool,
    to_apply: CompId,
    input: InstrId,
    init: InstrId,
    shape: ArrayShape,
}

fn as_scan(module: &Module, comp: &Computation, id: InstrId) -> Option<Scan> {
    let instr = comp.instr(id);
    let Op::ReduceWindow { window, to_apply } = &instr.op else { return None };
    if instr.operands.len() != 2 {
        return None;
    }
    let shape = instr.shape.as_array()?.clone();
    let mut scan_dim = None;
    for (d, w) in window.dims.iter().enumerate() {
        let plain = w.stride == 1 && w.window_dilation == 1 && w.base_dilation == 1 && !w.window_reversal;
        if !plain {
            return None;
        }
        if w.size == 1 && w.padding_low == 0 && w.padding_high == 0 {
            continue;
        }
        let n = shape.dims[d];
        let forward = w.padding_low == n - 1 && w.padding_high == 0;
        let backward = w.padding_low == 0 && w.padding_high == n - 1;
        if w.size != n || !(forward || backward) || scan_dim.is_some() {
            return None;
        }
        scan_dim = Some((d, n, backward));
    }
    let (dim, len, reverse) = scan_dim?;
    if len <= BLOCK {
        return None;
    }
    let (input, init) = (instr.operands[0], instr.operands[1]);
    if !init_is_identity(module, comp, init, *to_apply) {
        return None;
    }
    Some(Scan { dim, len, reverse, to_apply: *to_apply, input, init, shape })
}

/// Whether the constant `init` leaves values unchanged under `to_apply`, on both sides.
fn init_is_identity(module: &Module, comp: &Computation, init: InstrId, to_apply: CompId) -> bool {
    let Op::Constant(init_lit) = &comp.instr(init).op else { return false };
    let reducer = module.comp(to_apply);
    if reducer.params.len() != 2 {
        return false;
    }
    let Some(dtype) = init_lit.array_shape().map(|a| a.dtype) else { return false };
    // The reducer as the entry of a copy of the module (it may call other computations).
    let probe = Module { entry: to_apply, ..module.clone() };
    let probes: Vec<f64> = vec![1.5, -2.25, 0.0, 3.0e4, -7.0, 1.0];
    let opts = hlo_interp::Options::default();
    for &v in &probes {
        let Some(x) = scalar_literal(dtype, v) else { return false };
        for args in [[(**init_lit).clone(), x.clone()], [x.clone(), (**init_lit).clone()]] {
            match hlo_interp::evaluate_with(&probe, &args, &opts) {
                Ok(out) if crate::util::literal_identical(&out, &x) => {}
                _ => return false,
            }
        }
    }
    true
}

fn scalar_literal(dtype: hlo_ir::DType, v: f64) -> Option<Literal> {
    use hlo_ir::{ArrayData, DType};
    let data = match dtype {
        DType::F32 => ArrayData::F32(vec![v as f32]),
        DType::F64 => ArrayData::F64(vec![v]),
        DType::S32 => ArrayData::S32(vec![v as i32]),
        DType::S64 => ArrayData::S64(vec![v as i64]),
        DType::U32 => ArrayData::U32(vec![v.abs() as u32]),
        _ => return None,
    };
    Some(Literal::array(ArrayShape::scalar(dtype), data))
}

fn push(comp: &mut Computation, base: &str, shape: ArrayShape, op: Op, operands: Vec<InstrId>) -> InstrId {
    let name = format!("{base}.{}", comp.instrs.len());
    comp.push(Instr::new(name, Shape::Array(shape), op, operands))
}

/// A scan of `x` (whose dims are `dims`) along `dim`, as one `reduce-window`.
fn scan_window(comp: &mut Computation, base: &str, x: InstrId, dims: &[i64], dim: usize, scan: &Scan) -> InstrId {
    let n = dims[dim];
    let window = Window {
        dims: (0..dims.len())
            .map(|d| {
                let (size, low, high) = match (d == dim, scan.reverse) {
                    (false, _) => (1, 0, 0),
                    (true, false) => (n, n - 1, 0),
                    (true, true) => (n, 0, n - 1),
                };
                hlo_ir::WindowDim {
                    size,
                    stride: 1,
                    padding_low: low,
                    padding_high: high,
                    window_dilation: 1,
                    base_dilation: 1,
                    window_reversal: false,
                }
            })
            .collect(),
    };
    let shape = ArrayShape::new(scan.shape.dtype, dims.to_vec());
    push(comp, base, shape, Op::ReduceWindow { window, to_apply: scan.to_apply }, vec![x, scan.init])
}

fn rewrite(comp: &mut Computation, id: InstrId, scan: &Scan) -> InstrId {
    let base = format!("{}_block", comp.instr(id).name);
    let dtype = scan.shape.dtype;
    let (d, n) = (scan.dim, scan.len);
    let rank = scan.shape.rank();
    let k = (n + BLOCK - 1) / BLOCK;
    let padded = k * BLOCK;
    // Pad with the identity where it does not reach real elements: after them in a forward
    // scan, before them in a reverse one.
    let mut x = scan.input;
    let mut dims = scan.shape.dims.clone();
    if padded != n {
        let extra = padded - n;
        let pads: Vec<PadDim> = (0..rank)
            .map(|a| match (a == d, scan.reverse) {
                (false, _) => PadDim { low: 0, high: 0, interior: 0 },
                (true, false) => PadDim { low: 0, high: extra, interior: 0 },
                (true, true) => PadDim { low: extra, high: 0, interior: 0 },
            })
            .collect();
        dims[d] = padded;
        x = push(comp, &base, ArrayShape::new(dtype, dims.clone()), Op::Pad { dims: pads }, vec![x, scan.init]);
    }
    let mut blocked = dims.clone();
    blocked[d] = k;
    blocked.insert(d + 1, BLOCK);
    let x = push(comp, &base, ArrayShape::new(dtype, blocked.clone()), Op::Reshape, vec![x]);
    // Within blocks.
    let inner = scan_window(comp, &base, x, &blocked, d + 1, scan);
    // Each block's total: its last element (first, in reverse), as [.., k, ..].
    let edge = if scan.reverse { 0 } else { BLOCK - 1 };
    let slice: Vec<SliceDim> = blocked
        .iter()
        .enumerate()
        .map(|(a, &size)| {
            if a == d + 1 {
                SliceDim { start: edge, limit: edge + 1, stride: 1 }
            } else {
                SliceDim { start: 0, limit: size, stride: 1 }
            }
        })
        .collect();
    let mut edge_dims = blocked.clone();
    edge_dims[d + 1] = 1;
    let totals = push(comp, &base, ArrayShape::new(dtype, edge_dims), Op::Slice { dims: slice }, vec![inner]);
    let mut total_dims = blocked.clone();
    total_dims.remove(d + 1);
    let totals = push(comp, &base, ArrayShape::new(dtype, total_dims.clone()), Op::Reshape, vec![totals]);
    // Inclusive scan of the totals (split again by this pass when `k` is long), shifted by one
    // block into an exclusive one with the identity in front.
    let scanned = scan_window(comp, &base, totals, &total_dims, d, scan);
    let shift: Vec<PadDim> = (0..rank)
        .map(|a| match (a == d, scan.reverse) {
            (false, _) => PadDim { low: 0, high: 0, interior: 0 },
            (true, false) => PadDim { low: 1, high: -1, interior: 0 },
            (true, true) => PadDim { low: -1, high: 1, interior: 0 },
        })
        .collect();
    let before = push(
        comp,
        &base,
        ArrayShape::new(dtype, total_dims.clone()),
        Op::Pad { dims: shift },
        vec![scanned, scan.init],
    );
    // Combine: earlier elements on the left of the reducer.
    let broadcast_dims: Vec<i64> = (0..rank + 1).filter(|&a| a != d + 1).map(|a| a as i64).collect();
    let before = push(
        comp,
        &base,
        ArrayShape::new(dtype, blocked.clone()),
        Op::Broadcast { dimensions: broadcast_dims },
        vec![before],
    );
    let operands = if scan.reverse { vec![inner, before] } else { vec![before, inner] };
    let all_dims: Vec<i64> = (0..rank as i64 + 1).collect();
    let combined = push(
        comp,
        &base,
        ArrayShape::new(dtype, blocked),
        Op::Map { dimensions: all_dims, to_apply: scan.to_apply },
        operands,
    );
    let flat = push(comp, &base, ArrayShape::new(dtype, dims.clone()), Op::Reshape, vec![combined]);
    if padded == n {
        return flat;
    }
    let (start, limit) = if scan.reverse { (padded - n, padded) } else { (0, n) };
    let slice: Vec<SliceDim> =
        dims.iter()
            .enumerate()
            .map(|(a, &size)| {
                if a == d {
                    SliceDim { start, limit, stride: 1 }
                } else {
                    SliceDim { start: 0, limit: size, stride: 1 }
                }
            })
            .collect();
    push(comp, &base, scan.shape.clone(), Op::Slice { dims: slice }, vec![flat])
}

#[cfg(test)]
mod tests {
    use crate::util::testing::{parse, run};
    use hlo_ir::{ArrayData, Literal};

    fn check(text: &str, input: Vec<f32>) {
        let before = parse(text);
        let (changed, after) = run(super::run, text);
        assert!(changed, "nothing rewritten");
        let shape = before.entry_comp().param_shapes()[0].as_array().unwrap().clone();
        let args = vec![Literal::array(shape, ArrayData::F32(input))];
        let opts = hlo_interp::Options::default();
        let want = hlo_interp::evaluate_with(&before, &args, &opts).unwrap();
        let got = hlo_interp::evaluate_with(&after, &args, &opts).unwrap();
        let (ArrayData::F32(w), ArrayData::F32(g)) = (want.array_data().unwrap(), got.array_data().unwrap()) else {
            panic!("f32 results")
        };
        for (i, (a, b)) in w.iter().zip(g).enumerate() {
            assert!((a - b).abs() <= 1e-3 * a.abs().max(1.0), "element {i}: {a} vs {b}");
        }
    }

    fn module(reducer: &str, init: &str, dims: &str, window: &str) -> String {
        format!(
            "HloModule m\nr {{\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT c = f32[] {reducer}(a, b)\n}}\nENTRY e {{\n  x = f32[{dims}] parameter(0)\n  i = f32[] constant({init})\n  ROOT s = f32[{dims}] reduce-window(x, i), window={{{window}}}, to_apply=r\n}}\n"
        )
    }

    fn data(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919) % 200) as f32 / 100.0 - 1.0).collect()
    }

    #[test]
    fn forward_and_reverse_sums_of_awkward_lengths() {
        check(&module("add", "0", "1000", "size=1000 pad=999_0"), data(1000));
        check(&module("add", "0", "1000", "size=1000 pad=0_999"), data(1000));
        check(&module("add", "0", "20000", "size=20000 pad=19999_0"), data(20000));
        check(&module("add", "0", "256", "size=256 pad=255_0"), data(256));
    }

    #[test]
    fn maxima_along_an_inner_dimension() {
        check(&module("maximum", "-inf", "3,300,2", "size=1x300x1 pad=0_0x299_0x0_0"), data(1800));
    }

    #[test]
    fn a_non_identity_init_is_left_alone() {
        assert!(!run(super::run, &module("add", "1", "1000", "size=1000 pad=999_0")).0);
    }
}
