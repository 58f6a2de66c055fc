//! `rng-bit-generator-expander`: `rng-bit-generator` as plain elementwise HLO (iota, 32-bit
//! adds, shifts and xors, 32x32->64-bit products as `u64` multiplies), as XLA's
//! `RngBitGeneratorExpander` does with the generators of `xla/hlo/builder/lib/prng.cc`, so
//! that fusion and the elemental code generator run it with no kernel of its own.
//!
//! The bits are those of `hlo-interp`'s `rng.rs`, which states the algorithms:
//! - the state is `u64[n]`, `n >= 2`; element 0 is the key, split into two 32-bit words;
//! - ThreeFry2x32 (20 rounds) counts from `state[1]`: narrow outputs take one counter per pair
//!   of elements along the first even dimension (else the largest), interleaved along it;
//!   64-bit outputs one counter per element, the two words joined low first;
//! - Philox4x32 (10 rounds) counts a 128-bit counter `(state[1], state[2])` (or
//!   `(state[1], key)` for a 2-element state), one counter per four 32-bit words;
//! - `rng_default` is Philox, as XLA:CPU and XLA:GPU expand it;
//! - 8- and 16-bit outputs truncate 32-bit words; other element types of the same width
//!   reinterpret the unsigned bits (`bitcast-convert`).
//!
//! Pre-condition: none. Post-condition: every `rng-bit-generator` with a `u64[n >= 2]` state
//! and 8-, 16-, 32- or 64-bit elements is replaced in place by a tuple `(new state, bits)`;
//! any other form stays, so that code generation refuses it by name.

use crate::util::{compact, NameUniquer};
use crate::PassError;
use hlo_ir::{
    ArrayData, ArrayShape, BinaryOp, CompareDirection, CompareType, Computation, DType, InstrId, Literal, Module, Op,
    RngAlgorithm, Shape, SliceDim,
};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("rng-bit-generator-expander").entered();
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    for comp in module.comps.iter_mut() {
        let ids: Vec<InstrId> =
            comp.ids().filter(|&id| matches!(comp.instr(id).op, Op::RngBitGenerator { .. })).collect();
        let mut comp_changed = false;
        for id in ids {
            let mut b = Expander { comp, names: &mut names, at: id };
            comp_changed |= b.expand();
        }
        if comp_changed {
            compact(comp)?;
            changed = true;
        }
    }
    Ok(changed)
}

/// ThreeFry2x32's rotation distances, four per key injection.
const THREEFRY_ROTATIONS: [u32; 8] = [13, 15, 26, 6, 17, 29, 16, 24];
/// ThreeFry's key-schedule parity constant.
const THREEFRY_PARITY: u32 = 0x1BD1_1BDA;
/// Philox4x32's round multipliers and Weyl key increments.
const PHILOX_M_A: u64 = 0xD251_1F53;
const PHILOX_M_B: u64 = 0xCD9E_8D57;
const PHILOX_W_A: u32 = 0x9E37_79B9;
const PHILOX_W_B: u32 = 0xBB67_AE85;

/// Builds the expansion of the `rng-bit-generator` at `at`.
struct Expander<'a> {
    comp: &'a mut Computation,
    names: &'a mut NameUniquer,
    at: InstrId,
}

impl Expander<'_> {
    fn push(&mut self, dtype: DType, dims: &[i64], op: Op, operands: Vec<InstrId>) -> InstrId {
        crate::util::push_expansion_step(self.comp, self.names, self.at, (dtype, dims), op, operands)
    }

    fn dims(&self, x: InstrId) -> Vec<i64> {
        self.comp.instr(x).shape.as_array().map(|a| a.dims.clone()).unwrap_or_default()
    }

    fn dtype(&self, x: InstrId) -> DType {
        self.comp.instr(x).shape.as_array().map_or(DType::U32, |a| a.dtype)
    }

    /// `a op b` for two operands of the same shape and type.
    fn bin(&mut self, op: BinaryOp, a: InstrId, b: InstrId) -> InstrId {
        let (ty, dims) = (self.dtype(a), self.dims(a));
        self.push(ty, &dims, Op::Binary(op), vec![a, b])
    }

    /// A scalar constant broadcast to `dims`.
    fn splat(&mut self, dtype: DType, value: u64, dims: &[i64]) -> InstrId {
        let data = match dtype {
            DType::U64 => ArrayData::U64(vec![value]),
            _ => ArrayData::U32(vec![value as u32]),
        };
        let lit = Literal::array(ArrayShape::scalar(dtype), data);
        let c = self.push(dtype, &[], Op::Constant(Box::new(lit)), vec![]);
        self.broadcast(c, dims)
    }

    /// A scalar broadcast to `dims` (itself when `dims` is scalar).
    fn broadcast(&mut self, scalar: InstrId, dims: &[i64]) -> InstrId {
        if dims.is_empty() {
            return scalar;
        }
        let ty = self.dtype(scalar);
        self.push(ty, dims, Op::Broadcast { dimensions: vec![] }, vec![scalar])
    }

    fn convert(&mut self, x: InstrId, to: DType) -> InstrId {
        let dims = self.dims(x);
        self.push(to, &dims, Op::Convert, vec![x])
    }

    fn reshape(&mut self, x: InstrId, dims: &[i64]) -> InstrId {
        let ty = self.dtype(x);
        self.push(ty, dims, Op::Reshape, vec![x])
    }

    /// `x[start..limit]` of a rank-1 array.
    fn slice1(&mut self, x: InstrId, start: i64, limit: i64) -> InstrId {
        let ty = self.dtype(x);
        self.push(ty, &[limit - start], Op::Slice { dims: vec![SliceDim { start, limit, stride: 1 }] }, vec![x])
    }

    fn concat(&mut self, parts: Vec<InstrId>, dimension: usize) -> InstrId {
        let ty = self.dtype(parts[0]);
        let mut dims = self.dims(parts[0]);
        dims[dimension] = parts.iter().map(|&p| self.dims(p)[dimension]).sum();
        self.push(ty, &dims, Op::Concatenate { dimension: dimension as i64 }, parts)
    }

    /// Element `i` of the rank-1 `u64` state as a scalar.
    fn state_word(&mut self, state: InstrId, i: i64) -> InstrId {
        let one = self.slice1(state, i, i + 1);
        self.reshape(one, &[])
    }

    /// The low and high 32-bit words of a `u64` array.
    fn split64(&mut self, x: InstrId) -> [InstrId; 2] {
        let dims = self.dims(x);
        let lo = self.convert(x, DType::U32);
        let shift = self.splat(DType::U64, 32, &dims);
        let hi64 = self.bin(BinaryOp::ShiftRightLogical, x, shift);
        [lo, self.convert(hi64, DType::U32)]
    }

    /// `lo | hi << 32` as `u64`.
    fn join64(&mut self, lo: InstrId, hi: InstrId) -> InstrId {
        let dims = self.dims(lo);
        let lo = self.convert(lo, DType::U64);
        let hi = self.convert(hi, DType::U64);
        let shift = self.splat(DType::U64, 32, &dims);
        let hi = self.bin(BinaryOp::ShiftLeft, hi, shift);
        self.bin(BinaryOp::Or, lo, hi)
    }

    /// `u64` counters `start + i` for `i` in `0..n`.
    fn counters(&mut self, start: InstrId, n: i64) -> (InstrId, InstrId) {
        let iota = self.push(DType::U32, &[n], Op::Iota { dimension: 0 }, vec![]);
        let iota = self.convert(iota, DType::U64);
        let start_b = self.broadcast(start, &[n]);
        (self.bin(BinaryOp::Add, start_b, iota), iota)
    }

    /// `x <<< r` for a `u32` array.
    fn rotl(&mut self, x: InstrId, r: u32, dims: &[i64]) -> InstrId {
        let left = self.splat(DType::U32, u64::from(r), dims);
        let right = self.splat(DType::U32, u64::from(32 - r), dims);
        let a = self.bin(BinaryOp::ShiftLeft, x, left);
        let b = self.bin(BinaryOp::ShiftRightLogical, x, right);
        self.bin(BinaryOp::Or, a, b)
    }

    /// ThreeFry2x32 (20 rounds) of `u32` word pairs under the scalar key words.
    fn threefry(&mut self, x: [InstrId; 2], key: [InstrId; 2]) -> [InstrId; 2] {
        let dims = self.dims(x[0]);
        let parity = self.splat(DType::U32, u64::from(THREEFRY_PARITY), &[]);
        let k01 = self.bin(BinaryOp::Xor, key[0], key[1]);
        let k2 = self.bin(BinaryOp::Xor, k01, parity);
        let ks: Vec<InstrId> = [key[0], key[1], k2].iter().map(|&k| self.broadcast(k, &dims)).collect();
        let mut x = [self.bin(BinaryOp::Add, x[0], ks[0]), self.bin(BinaryOp::Add, x[1], ks[1])];
        for block in 0..5usize {
            for &r in &THREEFRY_ROTATIONS[(block % 2) * 4..(block % 2) * 4 + 4] {
                x[0] = self.bin(BinaryOp::Add, x[0], x[1]);
                let rot = self.rotl(x[1], r, &dims);
                x[1] = self.bin(BinaryOp::Xor, rot, x[0]);
            }
            // Key injection after every four rounds, with the block number.
            let i = block + 1;
            x[0] = self.bin(BinaryOp::Add, x[0], ks[i % 3]);
            let injected = self.bin(BinaryOp::Add, x[1], ks[(i + 1) % 3]);
            let count = self.splat(DType::U32, i as u64, &dims);
            x[1] = self.bin(BinaryOp::Add, injected, count);
        }
        x
    }

    /// The high and low words of the 64-bit product of a `u32` array and a 32-bit constant.
    fn mul_wide(&mut self, x: InstrId, m: u64) -> [InstrId; 2] {
        let dims = self.dims(x);
        let x64 = self.convert(x, DType::U64);
        let m = self.splat(DType::U64, m, &dims);
        let p = self.bin(BinaryOp::Multiply, x64, m);
        let [lo, hi] = self.split64(p);
        [hi, lo]
    }

    /// Philox4x32 (10 rounds) of `u32` word quadruples under the scalar key words.
    fn philox(&mut self, mut x: [InstrId; 4], key: [InstrId; 2]) -> [InstrId; 4] {
        let dims = self.dims(x[0]);
        let mut key = key;
        for round in 0..10 {
            let kb = [self.broadcast(key[0], &dims), self.broadcast(key[1], &dims)];
            let [hi0, lo0] = self.mul_wide(x[0], PHILOX_M_A);
            let [hi1, lo1] = self.mul_wide(x[2], PHILOX_M_B);
            let a = self.bin(BinaryOp::Xor, hi1, x[1]);
            let b = self.bin(BinaryOp::Xor, hi0, x[3]);
            x = [self.bin(BinaryOp::Xor, a, kb[0]), lo1, self.bin(BinaryOp::Xor, b, kb[1]), lo0];
            if round < 9 {
                let wa = self.splat(DType::U32, u64::from(PHILOX_W_A), &[]);
                let wb = self.splat(DType::U32, u64::from(PHILOX_W_B), &[]);
                key = [self.bin(BinaryOp::Add, key[0], wa), self.bin(BinaryOp::Add, key[1], wb)];
            }
        }
        x
    }

    /// `a + b < b` as a `u64` 0 or 1: the carry out of the 64-bit sum `sum = a + b`.
    fn carry(&mut self, sum: InstrId, b: InstrId) -> InstrId {
        let dims = self.dims(sum);
        let lt = self.push(
            DType::Pred,
            &dims,
            Op::Compare { direction: CompareDirection::Lt, compare_type: Some(CompareType::Unsigned) },
            vec![sum, b],
        );
        self.convert(lt, DType::U64)
    }

    /// Replaces the instruction with its expansion; false when its form is not handled.
    fn expand(&mut self) -> bool {
        let instr = self.comp.instr(self.at).clone();
        let Op::RngBitGenerator { algorithm } = instr.op else { return false };
        let Some([Shape::Array(state_shape), Shape::Array(data_shape)]) =
            instr.shape.as_tuple().and_then(|t| <&[Shape; 2]>::try_from(t).ok())
        else {
            return false;
        };
        let Some(&state_in) = instr.operands.first() else { return false };
        let n_state = match state_shape.dims[..] {
            [n] if n >= 2 && state_shape.dtype == DType::U64 => n,
            _ => return false,
        };
        // The declared state must be the operand's: the expansion slices the operand.
        let operand = self.comp.instr(state_in).shape.as_array();
        if operand.is_none_or(|a| a.dtype != DType::U64 || a.dims != state_shape.dims) {
            return false;
        }
        let bits = data_shape.dtype.bit_width();
        let unsigned = match bits {
            8 => DType::U8,
            16 => DType::U16,
            32 => DType::U32,
            64 => DType::U64,
            _ => return false,
        };
        if !(data_shape.dtype.is_integer() || data_shape.dtype.is_float()) {
            return false;
        }
        let dims = data_shape.dims.clone();
        // Counters are numbered by a `u32` iota: larger outputs stay unexpanded (refused by name).
        let n = match dims.iter().try_fold(1i64, |acc, &d| acc.checked_mul(d)) {
            Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => n,
            _ => return false,
        };
        let key = self.state_word(state_in, 0);
        let key_words = self.split64(key);
        let (raw, new_words) = if n == 0 {
            // Nothing is drawn and no counter moves.
            (self.splat(if bits == 64 { DType::U64 } else { DType::U32 }, 0, &dims), vec![])
        } else {
            match algorithm {
                RngAlgorithm::ThreeFry => self.threefry_bits(state_in, key_words, &dims, bits),
                RngAlgorithm::Philox | RngAlgorithm::Default => {
                    self.philox_bits(state_in, key, key_words, n_state, n, bits)
                }
            }
        };
        // Narrow outputs keep the low bits; then the bits are reinterpreted as the element type.
        let raw = if self.dtype(raw) == unsigned { raw } else { self.convert(raw, unsigned) };
        let raw = self.reshape(raw, &dims);
        let data = if data_shape.dtype == unsigned {
            raw
        } else {
            self.push(data_shape.dtype, &dims, Op::BitcastConvert, vec![raw])
        };
        // The new state: the old one with words 1.. replaced by `new_words`.
        let new_state = if new_words.is_empty() {
            state_in
        } else {
            let mut parts = vec![self.slice1(state_in, 0, 1)];
            for &w in &new_words {
                parts.push(self.reshape(w, &[1]));
            }
            let next = 1 + new_words.len() as i64;
            if next < n_state {
                parts.push(self.slice1(state_in, next, n_state));
            }
            self.concat(parts, 0)
        };
        let target = self.comp.instr_mut(self.at);
        target.op = Op::Tuple;
        target.operands = vec![new_state, data];
        true
    }

    /// ThreeFry bits (`u32` of `dims`, or `u64[n]`) and the new `state[1]`.
    fn threefry_bits(&mut self, state: InstrId, key: [InstrId; 2], dims: &[i64], bits: u32) -> (InstrId, Vec<InstrId>) {
        let counter = self.state_word(state, 1);
        let n: i64 = dims.iter().product();
        if bits == 64 {
            let (c, _) = self.counters(counter, n);
            let words = self.split64(c);
            let [lo, hi] = self.threefry(words, key);
            let used = self.splat(DType::U64, n as u64, &[]);
            let next = self.bin(BinaryOp::Add, counter, used);
            return (self.join64(lo, hi), vec![next]);
        }
        // One counter per pair along the split dimension: the first even one, else the largest.
        let split = match dims.iter().position(|&d| d % 2 == 0) {
            Some(d) => Some(d),
            None => (0..dims.len()).fold(None, |best: Option<usize>, i| match best {
                Some(b) if dims[b] >= dims[i] => Some(b),
                _ => Some(i),
            }),
        };
        let mut half = dims.to_vec();
        if let Some(s) = split {
            half[s] = (dims[s] + 1) / 2;
        }
        let n_half: i64 = half.iter().product();
        let (c, _) = self.counters(counter, n_half);
        let words = self.split64(c);
        let out = self.threefry(words, key);
        let used = self.splat(DType::U64, n_half as u64, &[]);
        let next = self.bin(BinaryOp::Add, counter, used);
        let Some(s) = split else {
            // A scalar: the first word of one counter.
            return (out[0], vec![next]);
        };
        // Interleave the two words along the split dimension: element j is word j % 2 of pair j / 2.
        let mut pair_dims = half.clone();
        pair_dims.insert(s + 1, 1);
        let parts = vec![self.reshape(out[0], &pair_dims), self.reshape(out[1], &pair_dims)];
        let pairs = self.concat(parts, s + 1);
        let mut doubled = half.clone();
        doubled[s] *= 2;
        let mut res = self.reshape(pairs, &doubled);
        if doubled[s] != dims[s] {
            let slice = doubled.iter().enumerate().map(|(i, &d)| SliceDim {
                start: 0,
                limit: if i == s { dims[s] } else { d },
                stride: 1,
            });
            res = self.push(DType::U32, dims, Op::Slice { dims: slice.collect() }, vec![res]);
        }
        (res, vec![next])
    }

    /// Philox bits (`u32[n]` or `u64[n]`) and the new counter words of the state.
    fn philox_bits(
        &mut self,
        state: InstrId,
        key: InstrId,
        key_words: [InstrId; 2],
        n_state: i64,
        n: i64,
        bits: u32,
    ) -> (InstrId, Vec<InstrId>) {
        let lo = self.state_word(state, 1);
        let hi = if n_state >= 3 { self.state_word(state, 2) } else { key };
        let words_per_out = if bits == 64 { 2 } else { 1 };
        let n_vec4 = (n * words_per_out + 3) / 4;
        // 128-bit counters (lo + i, hi + carry).
        let (c_lo, iota) = self.counters(lo, n_vec4);
        let carry = self.carry(c_lo, iota);
        let hi_b = self.broadcast(hi, &[n_vec4]);
        let c_hi = self.bin(BinaryOp::Add, hi_b, carry);
        let [x0, x1] = self.split64(c_lo);
        let [x2, x3] = self.split64(c_hi);
        let out = self.philox([x0, x1, x2, x3], key_words);
        // Block k holds words 4k..4k+3 of the stream.
        let flat = if bits == 64 {
            let a = self.join64(out[0], out[1]);
            let b = self.join64(out[2], out[3]);
            let parts = vec![self.reshape(a, &[n_vec4, 1]), self.reshape(b, &[n_vec4, 1])];
            let blocks = self.concat(parts, 1);
            self.reshape(blocks, &[n_vec4 * 2])
        } else {
            let parts = out.iter().map(|&w| self.reshape(w, &[n_vec4, 1])).collect();
            let blocks = self.concat(parts, 1);
            self.reshape(blocks, &[n_vec4 * 4])
        };
        let res = if self.dims(flat)[0] == n { flat } else { self.slice1(flat, 0, n) };
        // The counter moves by the blocks used, carrying into the high word.
        let used = self.splat(DType::U64, n_vec4 as u64, &[]);
        let next_lo = self.bin(BinaryOp::Add, lo, used);
        if n_state < 3 {
            return (res, vec![next_lo]);
        }
        let carry = self.carry(next_lo, used);
        let next_hi = self.bin(BinaryOp::Add, hi, carry);
        (res, vec![next_lo, next_hi])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expansion evaluates to the interpreter's own `rng-bit-generator` bits.
    fn check(state_dims: i64, algorithm: &str, ty: &str) {
        let text = format!(
            "HloModule m\nENTRY e {{\n  s = u64[{state_dims}] parameter(0)\n  \
             ROOT r = (u64[{state_dims}], {ty}) rng-bit-generator(s), algorithm={algorithm}\n}}\n"
        );
        let module = hlo_parse::parse_module(&text).expect("parses");
        let mut expanded = module.clone();
        assert!(run(&mut expanded).expect("expands"), "{text}");
        hlo_ir::verify::verify(&expanded).expect("verifies");
        // Counters near 2^64 - 1 and 2^32 - 1 exercise the carries.
        let words = [0x0123_4567_89ab_cdefu64, u64::MAX - 2, 0xffff_ffff, 7];
        let state = Literal::array(
            ArrayShape::new(DType::U64, vec![state_dims]),
            ArrayData::U64(words[..state_dims as usize].to_vec()),
        );
        let want = hlo_interp::evaluate(&module, std::slice::from_ref(&state)).expect("interprets");
        let got = hlo_interp::evaluate(&expanded, &[state]).expect("interprets the expansion");
        assert_eq!(got, want, "{text}");
    }

    #[test]
    fn expansion_matches_the_interpreter() {
        for alg in ["rng_three_fry", "rng_philox", "rng_default"] {
            for ty in [
                "u32[]",
                "u32[1]",
                "u32[3]",
                "u32[17]",
                "u32[3,4]",
                "u32[5,7]",
                "u32[2,3,5]",
                "u32[0]",
                "u64[]",
                "u64[1]",
                "u64[3]",
                "u64[5,7]",
                "s32[9]",
                "f32[6]",
                "s64[3]",
                "f64[2]",
                "u8[17]",
                "s16[3,5]",
                "f16[5]",
            ] {
                for n in [2, 3, 4] {
                    check(n, alg, ty);
                }
            }
        }
    }
}
