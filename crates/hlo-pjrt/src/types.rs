//! `PJRT_Buffer_Type` values and the element types they name.

use hlo_ir::DType;

pub const INVALID: u32 = 0;

/// `PJRT_Buffer_Type` in enum order (the value is the index), from `PRED` (1) on.
const ORDER: [Option<DType>; 31] = [
    None, // INVALID
    Some(DType::Pred),
    Some(DType::S8),
    Some(DType::S16),
    Some(DType::S32),
    Some(DType::S64),
    Some(DType::U8),
    Some(DType::U16),
    Some(DType::U32),
    Some(DType::U64),
    Some(DType::F16),
    Some(DType::F32),
    Some(DType::F64),
    Some(DType::BF16),
    Some(DType::C64),
    Some(DType::C128),
    Some(DType::F8E5M2),
    Some(DType::F8E4M3FN),
    Some(DType::F8E4M3B11FNUZ),
    Some(DType::F8E5M2FNUZ),
    Some(DType::F8E4M3FNUZ),
    Some(DType::S4),
    Some(DType::U4),
    None, // TOKEN
    Some(DType::S2),
    Some(DType::U2),
    Some(DType::F8E4M3),
    Some(DType::F8E3M4),
    Some(DType::F8E8M0FNU),
    Some(DType::F4E2M1FN),
    None, // S1 (U1 follows; neither exists in HLO text yet)
];

/// The element type of a `PJRT_Buffer_Type`, if it names one.
pub fn from_pjrt(value: u32) -> Option<DType> {
    ORDER.get(value as usize).copied().flatten()
}

/// The `PJRT_Buffer_Type` of an element type.
pub fn to_pjrt(dtype: DType) -> Option<u32> {
    ORDER.iter().position(|&d| d == Some(dtype)).map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for dtype in DType::ALL {
            if let Some(value) = to_pjrt(dtype) {
                assert_eq!(from_pjrt(value), Some(dtype));
            }
        }
        assert_eq!(to_pjrt(DType::F32), Some(11));
        assert_eq!(to_pjrt(DType::BF16), Some(13));
        assert_eq!(to_pjrt(DType::F4E2M1FN), Some(29));
    }
}
