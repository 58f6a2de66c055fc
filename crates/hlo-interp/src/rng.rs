//! `rng-bit-generator` with XLA's ThreeFry and Philox bit generators.
//!
//! XLA defines the op by expansion (`rng_bit_generator_expander.cc` over the generators
//! of `xla/hlo/builder/lib/prng.cc`); this module computes the same bits directly:
//! - the state is `u64[n]`; element 0 is the key;
//! - ThreeFry2x32 (20 rounds) counts from `state[1]` one 64-bit counter per pair of
//!   32-bit outputs, splitting the shape in halves along its first even dimension;
//! - Philox4x32 (10 rounds) counts from the 128-bit `state[1..3]` (or `[state[1], key]`
//!   for a 2-element state) one counter per four 32-bit outputs, interleaved;
//! - outputs narrower than 32 bits truncate 32-bit outputs, 64-bit outputs join pairs;
//! - `algorithm=rng_default` is Philox, as XLA:CPU and XLA:GPU expand it.

use crate::array::{array_of, make};
use crate::error::{invalid, unsupported, OpResult};
use crate::index::{delinearize, linearize, strides};
use hlo_ir::{ArrayData as AD, DType, Literal, LiteralData, RngAlgorithm, Shape};

const THREEFRY_ROTATIONS: [u32; 8] = [13, 15, 26, 6, 17, 29, 16, 24];

/// ThreeFry2x32 with 20 rounds on one counter pair.
fn threefry2x32(input: [u32; 2], key: [u32; 2]) -> [u32; 2] {
    let ks = [key[0], key[1], 0x1BD1_1BDA ^ key[0] ^ key[1]];
    let mut x = [input[0].wrapping_add(ks[0]), input[1].wrapping_add(ks[1])];
    let round = |x: &mut [u32; 2], r: u32| {
        x[0] = x[0].wrapping_add(x[1]);
        x[1] = x[1].rotate_left(r);
        x[1] ^= x[0];
    };
    for block in 0..5u32 {
        let rots = if block % 2 == 0 { &THREEFRY_ROTATIONS[..4] } else { &THREEFRY_ROTATIONS[4..] };
        for &r in rots {
            round(&mut x, r);
        }
        // Key injection after every four rounds.
        let i = (block + 1) as usize;
        x[0] = x[0].wrapping_add(ks[i % 3]);
        x[1] = x[1].wrapping_add(ks[(i + 1) % 3]).wrapping_add(block + 1);
    }
    x
}

fn split64(x: u64) -> [u32; 2] {
    [x as u32, (x >> 32) as u32]
}

/// ThreeFry 32-bit outputs for `dims`, and the number of counters used.
fn threefry_u32(key: u64, counter: u64, dims: &[i64]) -> (Vec<u32>, u64) {
    let key = split64(key);
    if dims.is_empty() {
        let out = threefry2x32(split64(counter), key);
        return (vec![out[0]], 1);
    }
    // Split along the first even dimension, else the largest one.
    let split = dims
        .iter()
        .position(|&d| d % 2 == 0)
        .unwrap_or_else(|| (0..dims.len()).fold(0, |best, i| if dims[i] > dims[best] { i } else { best }));
    let mut half = dims.to_vec();
    half[split] = (dims[split] + 1) / 2;
    let n_half: u64 = half.iter().map(|&d| d as u64).product();
    let half_st = strides(&half);
    let n = dims.iter().map(|&d| d as usize).product::<usize>();
    let mut res = Vec::with_capacity(n);
    let mut idx = vec![0i64; dims.len()];
    for i in 0..n {
        delinearize(i, dims, &mut idx);
        let j = idx[split];
        idx[split] = j / 2;
        let h = linearize(&idx, &half_st) as u64;
        let out = threefry2x32(split64(counter.wrapping_add(h)), key);
        res.push(out[(j % 2) as usize]);
    }
    (res, n_half)
}

/// ThreeFry 64-bit outputs: one counter per output, halves joined low word first.
fn threefry_u64(key: u64, counter: u64, n: usize) -> Vec<u64> {
    let key = split64(key);
    (0..n as u64)
        .map(|i| {
            let out = threefry2x32(split64(counter.wrapping_add(i)), key);
            out[0] as u64 | (out[1] as u64) << 32
        })
        .collect()
}

const PHILOX_W32A: u32 = 0x9E37_79B9;
const PHILOX_W32B: u32 = 0xBB67_AE85;
const PHILOX_M4X32A: u32 = 0xD251_1F53;
const PHILOX_M4X32B: u32 = 0xCD9E_8D57;

/// Philox4x32 with 10 rounds.
fn philox4x32(mut x: [u32; 4], mut key: [u32; 2]) -> [u32; 4] {
    for _ in 0..10 {
        let p0 = x[0] as u64 * PHILOX_M4X32A as u64;
        let p1 = x[2] as u64 * PHILOX_M4X32B as u64;
        x = [(p1 >> 32) as u32 ^ x[1] ^ key[0], p1 as u32, (p0 >> 32) as u32 ^ x[3] ^ key[1], p0 as u32];
        key = [key[0].wrapping_add(PHILOX_W32A), key[1].wrapping_add(PHILOX_W32B)];
    }
    x
}

/// `n_vec4` Philox blocks counting from the 128-bit `counter`.
fn philox_blocks(key: u64, counter: u128, n_vec4: usize) -> Vec<[u32; 4]> {
    let key = split64(key);
    (0..n_vec4 as u128)
        .map(|i| {
            let c = counter.wrapping_add(i);
            philox4x32([c as u32, (c >> 32) as u32, (c >> 64) as u32, (c >> 96) as u32], key)
        })
        .collect()
}

/// `rng-bit-generator(state)` -> `(new_state, bits)`.
pub fn rng_bit_generator(algorithm: RngAlgorithm, out: &Shape, ops: &[&Literal]) -> OpResult<Literal> {
    let (state_shape, state) = array_of(ops[0])?;
    let AD::U64(state) = state else {
        return unsupported("rng-bit-generator state must be u64");
    };
    let Some([Shape::Array(new_state_shape), Shape::Array(data_shape)]) =
        out.as_tuple().and_then(|t| <&[Shape; 2]>::try_from(t).ok())
    else {
        return invalid("rng-bit-generator returns (state, bits)");
    };
    if state.len() < 2 || state_shape.rank() != 1 {
        return invalid("rng-bit-generator state must be u64[n] with n >= 2");
    }
    let key = state[0];
    let n = data_shape.num_elements() as usize;
    let bits = data_shape.dtype.bit_width();
    if !(data_shape.dtype.is_integer() || data_shape.dtype.is_float()) || bits < 8 {
        return unsupported(format!("rng-bit-generator producing {}", data_shape.dtype));
    }
    let mut new_state = state.clone();
    let raw: AD = match algorithm {
        RngAlgorithm::ThreeFry => {
            let counter = state[1];
            if bits == 64 {
                new_state[1] = counter.wrapping_add(n as u64);
                AD::U64(threefry_u64(key, counter, n))
            } else {
                let (v, used) = threefry_u32(key, counter, &data_shape.dims);
                new_state[1] = counter.wrapping_add(used);
                AD::U32(v)
            }
        }
        RngAlgorithm::Philox | RngAlgorithm::Default => {
            let (lo, hi) = if state.len() >= 3 { (state[1], state[2]) } else { (state[1], state[0]) };
            let counter = lo as u128 | (hi as u128) << 64;
            let (res, n_vec4) = if bits == 64 {
                let n_vec4 = (2 * n).div_ceil(4);
                let blocks = philox_blocks(key, counter, n_vec4);
                let v: Vec<u64> = blocks
                    .iter()
                    .flat_map(|b| [b[0] as u64 | (b[1] as u64) << 32, b[2] as u64 | (b[3] as u64) << 32])
                    .take(n)
                    .collect();
                (AD::U64(v), n_vec4)
            } else {
                let n_vec4 = n.div_ceil(4);
                let blocks = philox_blocks(key, counter, n_vec4);
                (AD::U32(blocks.iter().flatten().copied().take(n).collect()), n_vec4)
            };
            let next = counter.wrapping_add(n_vec4 as u128);
            new_state[1] = next as u64;
            if state.len() >= 3 {
                new_state[2] = (next >> 64) as u64;
            }
            res
        }
    };
    // Narrow outputs keep the low bits; then reinterpret as the requested type.
    let unsigned = match bits {
        8 => DType::U8,
        16 => DType::U16,
        32 => DType::U32,
        64 => DType::U64,
        _ => return unsupported(format!("rng-bit-generator producing {}", data_shape.dtype)),
    };
    let src_ty = if matches!(raw, AD::U64(_)) { DType::U64 } else { DType::U32 };
    let narrowed = crate::convert::convert(&raw, src_ty, unsigned)?;
    let data = crate::convert::bitcast_convert(&narrowed, unsigned, data_shape.dtype)?;
    let state_lit = make(new_state_shape, AD::U64(new_state));
    Ok(Literal { shape: out.clone(), data: LiteralData::Tuple(vec![state_lit, make(data_shape, data)]) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threefry_known_answer() {
        // Random123's known-answer vectors for threefry2x32_20 (also used by JAX's tests).
        assert_eq!(threefry2x32([0, 0], [0, 0]), [0x6b200159, 0x99ba4efe]);
        assert_eq!(threefry2x32([u32::MAX, u32::MAX], [u32::MAX, u32::MAX]), [0x1cb996fc, 0xbb002be7]);
        assert_eq!(threefry2x32([0x243f6a88, 0x85a308d3], [0x13198a2e, 0x03707344]), [0xc4923a9c, 0x483df7a0]);
    }

    #[test]
    fn philox_known_answer() {
        // Random123's known-answer vectors for philox4x32_10.
        assert_eq!(philox4x32([0; 4], [0; 2]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
        assert_eq!(
            philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }
}
