//! Merge sort for any comparator: `ceil(log2(row))` passes, each merging neighbouring sorted runs.
//!
//! Pass `l` merges runs of `w = 2^l` elements of every row into runs of `2w`. Each invocation
//! writes one segment of [`SEGMENT`] consecutive outputs of a row, the way a CPU merge sort splits
//! a merge between threads ("merge path"): it finds how many elements of the left run precede its
//! first output by a binary search over the diagonal (the co-rank), then merges sequentially,
//! holding the next element of each run in registers. Per element that is one comparator call and
//! one load of the compared operands, instead of a binary search per element: on lavapipe, where
//! every load is a per-lane loop, this made the merge passes 5-10x faster than ranking each
//! element by binary search, and much faster than sorting tiles in workgroup memory (whose cost
//! there grows faster than the tile).
//!
//! Ties take the left run's element first, so every merge, and the sort, is stable; every element
//! moves exactly once per pass, so the result is a permutation for any comparator (HLO requires a
//! strict weak order; for one that is not, the order is unspecified but no element is lost or
//! duplicated). `log2(w)` is a push constant, so every pass runs the same pipeline. Loops run at
//! most [`SEGMENT`] and `log2(w) + 1` iterations (lavapipe stops loops after 65,535).

use super::{do_loop, if_then, move_value, with_push_constants, words, Spec};
use crate::builder::{STy, H};
use crate::emit::elemental::Em;
use crate::emit::ops::Val;
use crate::emit::{finish, grid, invocation_index, KernelCtx, KernelKind, KernelStep};
use crate::error::Result;
use hlo_program::BufferId;
use naga::BinaryOperator as Bo;

/// Outputs per invocation (fewer for shorter rows: a segment never spans two rows).
const SEGMENT: u32 = 256;
/// Invocations per workgroup.
const WG: u32 = 64;

/// Merge passes a row of `row_len` needs.
pub(super) fn passes(spec: &Spec) -> u32 {
    spec.row_len.max(1).next_power_of_two().trailing_zeros()
}

/// Emits the passes; `sets[p]` holds the operands before pass `p` (runs of `2^p` sorted).
pub(super) fn emit(ctx: &KernelCtx, spec: &Spec, sets: &[Vec<BufferId>], steps: &mut Vec<KernelStep>) -> Result<()> {
    for p in 0..sets.len() - 1 {
        let step = merge_kernel(ctx, spec, &sets[p], &sets[p + 1])?;
        steps.push(with_push_constants(step, words(&[p as u32])));
    }
    Ok(())
}

/// One merge pass over every row, from `src` into `dst`; `log2(w)` in push constant 0.
fn merge_kernel(ctx: &KernelCtx, spec: &Spec, src: &[BufferId], dst: &[BufferId]) -> Result<KernelStep> {
    let segment = SEGMENT.min(spec.row_len.next_power_of_two());
    let max_log_w = passes(spec).saturating_sub(1);
    let segments = spec.row_len.div_ceil(segment);
    let n = spec.rows as u64 * segments as u64;
    let groups = grid(n.div_ceil(WG as u64));
    let name = format!("{}_merge", ctx.name);
    let mut em = Em::new(ctx.m, ctx.target, &name);
    let mut bufs = Vec::new();
    for (k, op) in spec.operands.iter().enumerate() {
        let s = em.bind_buffer(src[k], op.dt, false, false)?;
        let d = em.bind_buffer(dst[k], op.dt, true, false)?;
        bufs.push((s, d));
    }
    let compared = spec.compared_types(ctx.m);
    let packed: Vec<_> =
        spec.packed.iter().map(|p| em.bind_array(p.buf, p.elems, p.dt, false, false)).collect::<Result<_>>()?;
    // Where compared operands are packed, the moved operand is the positions they are read at.
    let perm = (!spec.packed.is_empty()).then(|| {
        let k = spec.operands.iter().position(|op| matches!(op.src, super::Source::Iota));
        bufs[k.expect("a packed sort moves positions")].0
    });
    let log_w = em.kb.push_constant_words(1)[0];
    em.kb.name(log_w, "log_w");
    let i = invocation_index(&mut em.kb, WG, groups);
    let nn = em.kb.lit_u32(n as u32);
    let oob = em.kb.binary(Bo::GreaterEqual, i, nn);
    em.kb.return_if(oob);

    let kb = &mut em.kb;
    let row = kb.div_c(i, segments);
    let seg = kb.rem_c(i, segments);
    let first = kb.mul_c(seg, segment);
    kb.name(first, "first");
    let one = kb.lit_u32(1);
    let width = kb.binary(Bo::ShiftLeft, one, log_w);
    let log_2w = kb.add_c(log_w, 1);
    let pair_mask = kb.binary(Bo::ShiftLeft, one, log_2w);
    let pair_mask = kb.sub_u(pair_mask, one);
    let row_len = kb.lit_u32(spec.row_len);
    let last = kb.lit_u32(spec.row_len - 1);
    let rb = spec.row_base(&mut em, row, spec.row_len);

    // The compared values at a position of the row (clamped into it: past a run's end the value is
    // loaded but never used).
    let load_compared = |em: &mut Em, pos: H| -> Vec<Option<Val>> {
        let pos = em.kb.min_u(pos, last);
        let at = spec.at(em, rb, pos);
        let mut vals: Vec<Option<Val>> = spec
            .operands
            .iter()
            .enumerate()
            .map(|(k, op)| compared[k].map(|_| em.load(bufs[k].0, at, op.dt)))
            .collect();
        if let Some(perm) = perm {
            let from = em.load(perm, at, hlo_ir::DType::S32);
            let from = em.kb.bitcast(from.h, STy::U32);
            let from = spec.at(em, rb, from);
            for (p, &g) in spec.packed.iter().zip(&packed) {
                let i = em.kb.add_c(from, p.offset);
                vals.push(Some(em.load(g, i, p.dt)));
            }
        }
        vals
    };

    // Merge state: next unread element of each run, the runs' ends, and the next elements' values.
    let zero = em.kb.lit_u32(0);
    let ia = em.kb.local_init("ia", STy::U32, zero);
    let ib = em.kb.local_init("ib", STy::U32, zero);
    let a_end = em.kb.local_init("a_end", STy::U32, zero);
    let b_end = em.kb.local_init("b_end", STy::U32, zero);
    let held: Vec<Option<(H, H, hlo_ir::DType)>> = compared
        .iter()
        .enumerate()
        .map(|(k, dt)| {
            dt.map(|dt| {
                let t = crate::emit::ops::value_sty(dt).expect("checked");
                let z = em.kb.lit_int(t, 0);
                (em.kb.local_init(&format!("a{k}"), t, z), em.kb.local_init(&format!("b{k}"), t, z), dt)
            })
        })
        .collect();
    let read_held = |em: &mut Em, side: usize| -> Vec<Option<Val>> {
        held.iter().map(|h| h.map(|(a, b, dt)| Val { h: em.kb.load(if side == 0 { a } else { b }), dt })).collect()
    };
    let write_held = |em: &mut Em, side: usize, vals: &[Option<Val>]| {
        for (h, v) in held.iter().zip(vals) {
            if let (Some((a, b, _)), Some(v)) = (h, v) {
                em.kb.store(if side == 0 { *a } else { *b }, v.h);
            }
        }
    };
    // Starts merging the pair of runs at `pair`, `r` outputs in: finds the co-rank `i` (how many of
    // the first `r` outputs come from the left run) by binary lifting over `i` in
    // `[max(0, r - wb), min(r, wa)]`; `i` is too large when the right run's element `r - i` goes
    // strictly before the left run's element `i - 1`.
    let start_pair = |em: &mut Em, pair: H, r: H| -> Result<()> {
        let kb = &mut em.kb;
        let a0 = pair;
        let left = kb.sub_u(row_len, a0);
        let wa = kb.min_u(width, left);
        let b0 = kb.add_u(a0, wa);
        let left = kb.sub_u(row_len, b0);
        let wb = kb.min_u(width, left);
        let ae = kb.add_u(a0, wa);
        let be = kb.add_u(b0, wb);
        kb.store(a_end, ae);
        kb.store(b_end, be);
        let hi = kb.min_u(r, wa);
        let r_ge = kb.binary(Bo::GreaterEqual, r, wb);
        let r_minus = kb.sub_u(r, wb);
        let lo = kb.select(r_ge, r_minus, zero);
        let co = kb.local_init("corank", STy::U32, lo);
        let steps = kb.add_c(log_w, 1);
        do_loop(em, "probe", steps, max_log_w as u64 + 1, &mut |em, s| {
            let kb = &mut em.kb;
            let c = kb.load(co);
            let stride = kb.binary(Bo::ShiftRight, width, s);
            let t = kb.add_u(c, stride);
            let fits = kb.binary(Bo::LessEqual, t, hi);
            let tc = kb.min_u(t, hi);
            // Elements left[t - 1] and right[r - t] (indices clamped when t does not fit).
            let tc1 = kb.math(naga::MathFunction::Max, &[tc, one]);
            let a_pos = kb.add_u(a0, tc1);
            let a_pos = kb.sub_u(a_pos, one);
            let b_pos = kb.add_u(b0, r);
            let b_pos = kb.sub_u(b_pos, tc);
            let a = load_compared(em, a_pos);
            let b = load_compared(em, b_pos);
            let too_large = spec.less(em, &b, &a)?;
            let kb = &mut em.kb;
            let ok = kb.unary(naga::UnaryOperator::LogicalNot, too_large);
            let take = kb.binary(Bo::LogicalAnd, fits, ok);
            let next = kb.select(take, t, c);
            kb.store(co, next);
            Ok(())
        })?;
        let kb = &mut em.kb;
        let c = kb.load(co);
        let a_next = kb.add_u(a0, c);
        let b_next = kb.add_u(b0, r);
        let b_next = kb.sub_u(b_next, c);
        kb.store(ia, a_next);
        kb.store(ib, b_next);
        let av = load_compared(em, a_next);
        write_held(em, 0, &av);
        let bv = load_compared(em, b_next);
        write_held(em, 1, &bv);
        Ok(())
    };

    let inside = em.kb.binary(Bo::Less, first, row_len);
    if_then(&mut em, inside, &mut |em| {
        let kb = &mut em.kb;
        let not_mask = kb.unary(naga::UnaryOperator::BitwiseNot, pair_mask);
        let pair = kb.binary(Bo::And, first, not_mask);
        let r = kb.sub_u(first, pair);
        start_pair(em, pair, r)?;
        let trips = em.kb.lit_u32(segment);
        do_loop(em, "k", trips, segment as u64, &mut |em, k| {
            let t = em.kb.add_u(first, k);
            let inside = em.kb.binary(Bo::Less, t, row_len);
            if_then(em, inside, &mut |em| {
                // A new pair of runs starts inside the segment.
                let kb = &mut em.kb;
                let off = kb.binary(Bo::And, t, pair_mask);
                let at_start = kb.binary(Bo::Equal, off, zero);
                let later = kb.binary(Bo::Greater, k, zero);
                let new_pair = kb.binary(Bo::LogicalAnd, at_start, later);
                if_then(em, new_pair, &mut |em| start_pair(em, t, zero))?;
                let kb = &mut em.kb;
                let a = kb.load(ia);
                let b = kb.load(ib);
                let ae = kb.load(a_end);
                let be = kb.load(b_end);
                let a_left = kb.binary(Bo::Less, a, ae);
                let b_left = kb.binary(Bo::Less, b, be);
                let av = read_held(em, 0);
                let bv = read_held(em, 1);
                let b_first = spec.less(em, &bv, &av)?;
                let kb = &mut em.kb;
                let a_done = kb.unary(naga::UnaryOperator::LogicalNot, a_left);
                let pick_b = kb.binary(Bo::LogicalOr, a_done, b_first);
                let take_b = kb.binary(Bo::LogicalAnd, b_left, pick_b);
                let from = kb.select(take_b, b, a);
                let from_at = spec.at(em, rb, from);
                let to = spec.at(em, rb, t);
                for (k, op) in spec.operands.iter().enumerate() {
                    let v = match (av[k], bv[k]) {
                        (Some(x), Some(y)) => Val { h: em.kb.select(take_b, y.h, x.h), dt: op.dt },
                        _ => em.load(bufs[k].0, from_at, op.dt),
                    };
                    move_value(em, bufs[k].1, to, v);
                }
                // Advance the run taken from and hold its next element.
                let kb = &mut em.kb;
                let next = kb.add_c(from, 1);
                let a_new = kb.select(take_b, a, next);
                let b_new = kb.select(take_b, next, b);
                kb.store(ia, a_new);
                kb.store(ib, b_new);
                let nv = load_compared(em, next);
                let mut a_vals = Vec::new();
                let mut b_vals = Vec::new();
                for ((n, x), y) in nv.iter().zip(&av).zip(&bv) {
                    match (n, x, y) {
                        (Some(n), Some(x), Some(y)) => {
                            a_vals.push(Some(Val { h: em.kb.select(take_b, x.h, n.h), dt: n.dt }));
                            b_vals.push(Some(Val { h: em.kb.select(take_b, n.h, y.h), dt: n.dt }));
                        }
                        _ => {
                            a_vals.push(None);
                            b_vals.push(None);
                        }
                    }
                }
                write_held(em, 0, &a_vals);
                write_held(em, 1, &b_vals);
                Ok(())
            })
        })
    })?;
    let step = finish(em, &name, KernelKind::SortPass, [WG, 1, 1], groups, ctx.sources.clone())?;
    Ok(step)
}
