//! Seeded input data: plain values of small magnitude ("tame", so that reassociation in sums
//! stays within tolerance) or a mix with special values (signed zeros, infinities, NaN,
//! denormals, huge and tiny magnitudes, integer extremes, shift amounts at the bit width).

use hlo_ir::{ArrayShape, DType, Module};
use hlo_run::npy::HostArray;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What data a program's parameters get.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataKind {
    /// Floats in [-2, 2], small integers.
    Tame,
    /// A quarter special values, the rest tame.
    Special,
}

impl DataKind {
    pub fn name(self) -> &'static str {
        match self {
            DataKind::Tame => "tame",
            DataKind::Special => "special",
        }
    }

    pub fn from_name(name: &str) -> Option<DataKind> {
        match name {
            "tame" => Some(DataKind::Tame),
            "special" => Some(DataKind::Special),
            _ => None,
        }
    }
}

/// What a parameter is for, which decides its values.
#[derive(Clone, Debug, PartialEq)]
pub enum Role {
    Data,
    /// An index drawn uniformly from `lo..=hi` (often out of range on purpose).
    Index {
        lo: i64,
        hi: i64,
    },
    /// A loop bound: 0, 1, 2 or the given count.
    Trips(i64),
}

const SPECIAL_F32: &[f32] = &[
    0.0,
    -0.0,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    1e-40,
    -1e-40,
    1.4e-45,
    3.4e38,
    -3.4e38,
    1.175_494_4e-38,
    1e20,
    -1e20,
    1e-20,
    0.5,
    -1.0,
    1.0,
    2.0,
    16_777_217.0,
    65504.0,
    65520.0,
    1e10,
    -2.5,
    0.1,
];

/// Inputs for every entry parameter of `module`; `roles` has one entry per parameter.
pub fn make_inputs(module: &Module, roles: &[Role], data: DataKind, seed: u64) -> Vec<HostArray> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1a2b_3c4d_5e6f_7788);
    let entry = module.entry_comp();
    entry
        .param_shapes()
        .iter()
        .enumerate()
        .map(|(k, shape)| {
            let shape = shape.as_array().cloned().unwrap_or_else(|| ArrayShape::scalar(DType::F32));
            let role = roles.get(k).cloned().unwrap_or(Role::Data);
            array_for(&mut rng, &shape, &role, data)
        })
        .collect()
}

fn array_for(rng: &mut ChaCha8Rng, shape: &ArrayShape, role: &Role, data: DataKind) -> HostArray {
    let n = shape.num_elements() as usize;
    let dtype = shape.dtype;
    let mut bytes = Vec::with_capacity(n * dtype.byte_size());
    for _ in 0..n {
        match role {
            Role::Index { lo, hi } => push_int(&mut bytes, dtype, rng.random_range(*lo..=(*hi).max(*lo)) as i128),
            Role::Trips(limit) => {
                let t = *[0, 1, 2, *limit, *limit].choose(rng).expect("non-empty");
                push_int(&mut bytes, dtype, t as i128)
            }
            Role::Data => push_value(rng, &mut bytes, dtype, data),
        }
    }
    HostArray { dtype, dims: shape.dims.clone(), bytes }
}

fn push_value(rng: &mut ChaCha8Rng, out: &mut Vec<u8>, dtype: DType, data: DataKind) {
    if let Some(part) = dtype.complex_component() {
        // A complex element is its two parts, each drawn like a real one.
        push_value(rng, out, part, data);
        push_value(rng, out, part, data);
        return;
    }
    let special = data == DataKind::Special && rng.random_bool(0.25);
    if dtype.is_float() {
        let x: f64 = if special {
            *SPECIAL_F32.choose(rng).expect("non-empty") as f64
        } else if rng.random_bool(0.5) {
            // Multiples of 1/64 are exact in every float type: fewer rounding ties.
            rng.random_range(-128..=128) as f64 / 64.0
        } else {
            rng.random_range(-2.0..2.0)
        };
        match dtype {
            DType::F64 => out.extend_from_slice(&x.to_le_bytes()),
            DType::F16 => out.extend_from_slice(&half::f16::from_f64(x).to_le_bytes()),
            DType::BF16 => out.extend_from_slice(&half::bf16::from_f64(x).to_le_bytes()),
            d => match hlo_ir::print::MiniFloat::of(d) {
                // 8- and 4-bit floats: the bit pattern of the nearest value (NaN, overflow and
                // saturation as XLA converts).
                Some(format) => out.push(hlo_parse::encode_minifloat(format, x)),
                None => out.extend_from_slice(&(x as f32).to_le_bytes()),
            },
        }
        return;
    }
    if dtype == DType::Pred {
        out.push(rng.random_bool(0.5) as u8);
        return;
    }
    let bits = dtype.bit_width();
    let signed = dtype.is_signed_integer();
    let v: i128 = if special {
        let (lo, hi) =
            if signed { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) } else { (0, (1i128 << bits) - 1) };
        *[lo, hi, 0, -1, 1, 7, 8, 31, 32, 33, 63, 64, bits as i128, bits as i128 - 1].choose(rng).expect("non-empty")
    } else if signed {
        rng.random_range(-10..=10)
    } else {
        rng.random_range(0..=20)
    };
    push_int(out, dtype, v);
}

/// Appends `v` wrapped to `dtype`'s width, little-endian.
fn push_int(out: &mut Vec<u8>, dtype: DType, v: i128) {
    let bytes = dtype.byte_size();
    let le = (v as u128).to_le_bytes();
    if dtype == DType::Pred {
        out.push((v != 0) as u8);
    } else {
        out.extend_from_slice(&le[..bytes]);
    }
}
