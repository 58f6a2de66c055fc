//! LSD radix sort for key orders: 8 bits of the key a pass, stable, any number of payloads.
//!
//! Each row is cut into `chunks` chunks of `chunk` consecutive elements, one invocation each,
//! the way a CPU radix sort splits work between threads (on lavapipe an invocation is a SIMD lane
//! of a CPU thread, and every memory access is one lane at a time anyway). Per pass:
//!
//! 1. **count**: each invocation counts the digits of its chunk into its own column of the row's
//!    histogram `hist[row][digit][chunk]` (zeroed by a fill before);
//! 2. **scan**: the histogram, read digit-major, becomes exclusive prefix sums (the first output
//!    position of each (digit, chunk)), in three small dispatches (see [`Plan::scan_kernels`]);
//! 3. **scatter**: each invocation walks its chunk again in order and moves every operand of each
//!    element to the next position of its (digit, chunk).
//!
//! Elements with equal digits keep their order (chunks in order, elements in order within a
//! chunk), so every pass is stable and so is the sort. The digit's shift is a push constant: the
//! passes share three pipelines. A 32-bit key takes four passes; 16- and 8-bit integer keys and
//! pred take fewer.

use super::key::KeyOrder;
use super::{do_loop, if_then, move_value, with_push_constants, words, Spec};
use crate::builder::STy;
use crate::emit::elemental::Em;
use crate::emit::{finish, grid, invocation_index, KernelCtx, KernelKind, KernelStep, Scratch};
use crate::error::{CodegenError, Result};
use hlo_ir::DType;
use hlo_program::BufferId;
use naga::BinaryOperator as Bo;

const DIGIT_BITS: u32 = 8;
const BINS: u32 = 1 << DIGIT_BITS;
/// Elements per chunk (per invocation) when rows are long; rows are cut into at most
/// [`MAX_CHUNKS`] chunks, which bounds the histogram at `256 * MAX_CHUNKS` words per row.
const CHUNK: u32 = 2048;
const MAX_CHUNKS: u32 = 1024;
/// lavapipe ends every loop after 65,535 iterations per invocation.
const MAX_LOOP: u32 = 65_535;
/// Invocations per workgroup of the count and scatter kernels.
const CHUNK_WG: u32 = 64;

pub(super) struct Plan {
    pub passes: u32,
    /// Elements per chunk.
    chunk: u32,
    /// Chunks per row.
    chunks: u32,
    key: KeyOrder,
}

impl Plan {
    pub(super) fn new(spec: &Spec, key: &KeyOrder) -> Result<Plan> {
        let chunk = CHUNK.max(spec.row_len.div_ceil(MAX_CHUNKS));
        let chunks = spec.row_len.div_ceil(chunk);
        if chunk > MAX_LOOP {
            return Err(CodegenError::unsupported("sort", &spec.instr, "rows too long for one radix pass"));
        }
        Ok(Plan { passes: key.bits.div_ceil(DIGIT_BITS), chunk, chunks, key: key.clone() })
    }

    /// Emits every pass; `sets[p]` holds the operands before pass `p`.
    pub(super) fn emit(
        &self,
        ctx: &KernelCtx,
        spec: &Spec,
        scratch: &Scratch,
        sets: &[Vec<BufferId>],
        steps: &mut Vec<KernelStep>,
    ) -> Result<()> {
        let hist_len = spec.rows as u64 * (BINS * self.chunks) as u64;
        let hist = scratch.buffer(vec![hist_len as i64], DType::U32);
        let totals = scratch.buffer(vec![spec.rows as i64 * BINS as i64], DType::U32);
        for p in 0..self.passes {
            let shift = words(&[p * DIGIT_BITS]);
            steps.push(KernelStep::Fill { buf: hist, word: 0 });
            let count = self.chunk_kernel(ctx, spec, &sets[p as usize], None, hist)?;
            steps.push(with_push_constants(count, shift.clone()));
            steps.extend(self.scan_kernels(ctx, spec, hist, totals)?);
            let scatter = self.chunk_kernel(ctx, spec, &sets[p as usize], Some(&sets[p as usize + 1]), hist)?;
            steps.push(with_push_constants(scatter, shift));
        }
        Ok(())
    }

    /// The count kernel (`dst` is `None`) or the scatter kernel: one invocation per chunk.
    fn chunk_kernel(
        &self,
        ctx: &KernelCtx,
        spec: &Spec,
        src: &[BufferId],
        dst: Option<&[BufferId]>,
        hist: BufferId,
    ) -> Result<KernelStep> {
        let n = spec.rows as u64 * self.chunks as u64;
        let groups = grid(n.div_ceil(CHUNK_WG as u64));
        let name = format!("{}_radix_{}", ctx.name, if dst.is_some() { "scatter" } else { "count" });
        let mut em = Em::new(ctx.m, ctx.target, &name);
        let key_op = self.key.operand;
        let key_dt = spec.operands[key_op].dt;
        let mut bufs = Vec::new();
        match dst {
            None => bufs.push((em.bind_buffer(src[key_op], key_dt, false, false)?, None)),
            Some(dst) => {
                for (k, op) in spec.operands.iter().enumerate() {
                    let s = em.bind_buffer(src[k], op.dt, false, false)?;
                    let d = em.bind_buffer(dst[k], op.dt, true, false)?;
                    bufs.push((s, Some(d)));
                }
            }
        }
        let h = em.bind_buffer(hist, DType::U32, true, false)?;
        let shift = em.kb.push_constant_words(1)[0];
        em.kb.name(shift, "shift");
        let i = invocation_index(&mut em.kb, CHUNK_WG, groups);
        let nn = em.kb.lit_u32(n as u32);
        let oob = em.kb.binary(Bo::GreaterEqual, i, nn);
        em.kb.return_if(oob);
        let row = em.kb.div_c(i, self.chunks);
        let chunk = em.kb.rem_c(i, self.chunks);
        let rb = spec.row_base(&mut em, row, spec.row_len);
        let hist_row = em.kb.mul_c(row, BINS * self.chunks);
        let hist_base = em.kb.add_u(hist_row, chunk);
        let first = em.kb.mul_c(chunk, self.chunk);
        let trips = em.kb.lit_u32(self.chunk);
        let row_len = em.kb.lit_u32(spec.row_len);
        do_loop(&mut em, "e", trips, self.chunk as u64, &mut |em, e| {
            let pos = em.kb.add_u(first, e);
            let inside = em.kb.binary(Bo::Less, pos, row_len);
            if_then(em, inside, &mut |em| {
                let at = spec.at(em, rb, pos);
                let key_src = if dst.is_some() { bufs[key_op].0 } else { bufs[0].0 };
                let x = em.load(key_src, at, key_dt);
                let key = self.key.key(em, x)?;
                let kb = &mut em.kb;
                let shifted = kb.binary(Bo::ShiftRight, key, shift);
                let mask = kb.lit_u32(BINS - 1);
                let digit = kb.binary(Bo::And, shifted, mask);
                let slot = kb.mul_c(digit, self.chunks);
                let slot = kb.add_u(hist_base, slot);
                let base = kb.global(h);
                let ptr = kb.access(base, slot);
                let c = kb.load(ptr);
                let c1 = kb.add_c(c, 1);
                kb.store(ptr, c1);
                if dst.is_some() {
                    let to = spec.at(em, rb, c);
                    for (k, op) in spec.operands.iter().enumerate() {
                        let v = if k == key_op { x } else { em.load(bufs[k].0, at, op.dt) };
                        move_value(em, bufs[k].1.expect("scatter"), to, v);
                    }
                }
                Ok(())
            })
        })?;
        finish(em, &name, KernelKind::SortPass, [CHUNK_WG, 1, 1], groups, ctx.sources.clone())
    }

    /// Exclusive prefix sums of each row's histogram in (digit, chunk) order, in three
    /// dispatches without barriers (on lavapipe a workgroup runs on one thread, so a
    /// workgroup-wide scan buys no parallelism and its barriers cost): per (row, digit) the
    /// prefix over chunks and the digit's total; per row the prefix over digit totals; per
    /// (row, digit) that offset added to its chunks.
    fn scan_kernels(&self, ctx: &KernelCtx, spec: &Spec, hist: BufferId, totals: BufferId) -> Result<Vec<KernelStep>> {
        let chunks = self.chunks;
        let per_digit = |phase: &str, add: bool| -> Result<KernelStep> {
            let n = spec.rows as u64 * BINS as u64;
            let groups = grid(n.div_ceil(CHUNK_WG as u64));
            let name = format!("{}_radix_{phase}", ctx.name);
            let mut em = Em::new(ctx.m, ctx.target, &name);
            let h = em.bind_buffer(hist, DType::U32, true, false)?;
            let tot = em.bind_buffer(totals, DType::U32, true, false)?;
            let i = invocation_index(&mut em.kb, CHUNK_WG, groups);
            let nn = em.kb.lit_u32(n as u32);
            let oob = em.kb.binary(Bo::GreaterEqual, i, nn);
            em.kb.return_if(oob);
            // Invocation i is (row, digit) = (i / 256, i % 256): its chunks are hist[i * chunks ..][..chunks].
            let base = em.kb.mul_c(i, chunks);
            let tot_ptr = {
                let g = em.kb.global(tot);
                em.kb.access(g, i)
            };
            let zero = em.kb.lit_u32(0);
            let start = if add { em.kb.load(tot_ptr) } else { zero };
            let run = em.kb.local_init("run", STy::U32, start);
            let trips = em.kb.lit_u32(chunks);
            do_loop(&mut em, "c", trips, chunks as u64, &mut |em, c| {
                let kb = &mut em.kb;
                let slot = kb.add_u(base, c);
                let g = kb.global(h);
                let p = kb.access(g, slot);
                let v = kb.load(p);
                let r = kb.load(run);
                if add {
                    let s = kb.add_u(v, r);
                    kb.store(p, s);
                } else {
                    kb.store(p, r);
                    let s = kb.add_u(r, v);
                    kb.store(run, s);
                }
                Ok(())
            })?;
            if !add {
                let r = em.kb.load(run);
                em.kb.store(tot_ptr, r);
            }
            finish(em, &name, KernelKind::SortPass, [CHUNK_WG, 1, 1], groups, ctx.sources.clone())
        };
        let chunk_prefix = per_digit("scan_chunks", false)?;
        let add_offsets = per_digit("add_offsets", true)?;

        // Per row: exclusive prefix over its 256 digit totals.
        let n = spec.rows as u64;
        let groups = grid(n.div_ceil(CHUNK_WG as u64));
        let name = format!("{}_radix_scan_digits", ctx.name);
        let mut em = Em::new(ctx.m, ctx.target, &name);
        let tot = em.bind_buffer(totals, DType::U32, true, false)?;
        let row = invocation_index(&mut em.kb, CHUNK_WG, groups);
        let nn = em.kb.lit_u32(n as u32);
        let oob = em.kb.binary(Bo::GreaterEqual, row, nn);
        em.kb.return_if(oob);
        let base = em.kb.mul_c(row, BINS);
        let zero = em.kb.lit_u32(0);
        let run = em.kb.local_init("run", STy::U32, zero);
        let trips = em.kb.lit_u32(BINS);
        do_loop(&mut em, "d", trips, BINS as u64, &mut |em, d| {
            let kb = &mut em.kb;
            let slot = kb.add_u(base, d);
            let g = kb.global(tot);
            let p = kb.access(g, slot);
            let v = kb.load(p);
            let r = kb.load(run);
            kb.store(p, r);
            let s = kb.add_u(r, v);
            kb.store(run, s);
            Ok(())
        })?;
        let digits = finish(em, &name, KernelKind::SortPass, [CHUNK_WG, 1, 1], groups, ctx.sources.clone())?;
        Ok(vec![chunk_prefix, digits, add_offsets])
    }
}
