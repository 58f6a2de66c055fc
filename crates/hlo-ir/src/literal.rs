//! Literals: constant values with a shape, stored as typed vectors.
//!
//! Array elements are kept in row-major order of the logical dimensions,
//! whatever the shape's layout says; the layout only matters at a host/device
//! boundary that exposes raw memory.

use crate::dtype::DType;
use crate::shape::{ArrayShape, Shape};
use half::{bf16, f16};

/// Dense element storage, one variant per storage class.
///
/// Sub-byte integers (`s2`, `s4`, `u2`, `u4`) are widened into `S8`/`U8`.
/// The 8- and 4-bit float types keep their raw bit patterns in `Bits`,
/// interpreted through the literal's element type.
///
/// Equality compares float elements by bit pattern, like XLA's `Literal::Equal`: a NaN
/// constant equals itself, and `0.0` and `-0.0` are different constants.
#[derive(Clone, Debug)]
pub enum ArrayData {
    Pred(Vec<bool>),
    S8(Vec<i8>),
    S16(Vec<i16>),
    S32(Vec<i32>),
    S64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    C64(Vec<[f32; 2]>),
    C128(Vec<[f64; 2]>),
    Bits(Vec<u8>),
}

impl PartialEq for ArrayData {
    fn eq(&self, other: &ArrayData) -> bool {
        fn bits<T: Copy, B: PartialEq>(a: &[T], b: &[T], f: impl Fn(T) -> B) -> bool {
            a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| f(x) == f(y))
        }
        match (self, other) {
            (ArrayData::Pred(a), ArrayData::Pred(b)) => a == b,
            (ArrayData::S8(a), ArrayData::S8(b)) => a == b,
            (ArrayData::S16(a), ArrayData::S16(b)) => a == b,
            (ArrayData::S32(a), ArrayData::S32(b)) => a == b,
            (ArrayData::S64(a), ArrayData::S64(b)) => a == b,
            (ArrayData::U8(a), ArrayData::U8(b)) => a == b,
            (ArrayData::U16(a), ArrayData::U16(b)) => a == b,
            (ArrayData::U32(a), ArrayData::U32(b)) => a == b,
            (ArrayData::U64(a), ArrayData::U64(b)) => a == b,
            (ArrayData::F16(a), ArrayData::F16(b)) => bits(a, b, f16::to_bits),
            (ArrayData::BF16(a), ArrayData::BF16(b)) => bits(a, b, bf16::to_bits),
            (ArrayData::F32(a), ArrayData::F32(b)) => bits(a, b, f32::to_bits),
            (ArrayData::F64(a), ArrayData::F64(b)) => bits(a, b, f64::to_bits),
            (ArrayData::C64(a), ArrayData::C64(b)) => bits(a, b, |[re, im]: [f32; 2]| (re.to_bits(), im.to_bits())),
            (ArrayData::C128(a), ArrayData::C128(b)) => bits(a, b, |[re, im]: [f64; 2]| (re.to_bits(), im.to_bits())),
            (ArrayData::Bits(a), ArrayData::Bits(b)) => a == b,
            _ => false,
        }
    }
}

impl ArrayData {
    /// `n` zero elements stored the way `dtype` is stored.
    pub fn zeros(dtype: DType, n: usize) -> ArrayData {
        match dtype {
            DType::Pred => ArrayData::Pred(vec![false; n]),
            DType::S2 | DType::S4 | DType::S8 => ArrayData::S8(vec![0; n]),
            DType::S16 => ArrayData::S16(vec![0; n]),
            DType::S32 => ArrayData::S32(vec![0; n]),
            DType::S64 => ArrayData::S64(vec![0; n]),
            DType::U2 | DType::U4 | DType::U8 => ArrayData::U8(vec![0; n]),
            DType::U16 => ArrayData::U16(vec![0; n]),
            DType::U32 => ArrayData::U32(vec![0; n]),
            DType::U64 => ArrayData::U64(vec![0; n]),
            DType::F16 => ArrayData::F16(vec![f16::ZERO; n]),
            DType::BF16 => ArrayData::BF16(vec![bf16::ZERO; n]),
            DType::F32 => ArrayData::F32(vec![0.0; n]),
            DType::F64 => ArrayData::F64(vec![0.0; n]),
            DType::C64 => ArrayData::C64(vec![[0.0; 2]; n]),
            DType::C128 => ArrayData::C128(vec![[0.0; 2]; n]),
            _ => ArrayData::Bits(vec![0; n]),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ArrayData::Pred(v) => v.len(),
            ArrayData::S8(v) => v.len(),
            ArrayData::S16(v) => v.len(),
            ArrayData::S32(v) => v.len(),
            ArrayData::S64(v) => v.len(),
            ArrayData::U8(v) => v.len(),
            ArrayData::U16(v) => v.len(),
            ArrayData::U32(v) => v.len(),
            ArrayData::U64(v) => v.len(),
            ArrayData::F16(v) => v.len(),
            ArrayData::BF16(v) => v.len(),
            ArrayData::F32(v) => v.len(),
            ArrayData::F64(v) => v.len(),
            ArrayData::C64(v) => v.len(),
            ArrayData::C128(v) => v.len(),
            ArrayData::Bits(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when this storage class can hold elements of `dtype`.
    pub fn matches(&self, dtype: DType) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(&ArrayData::zeros(dtype, 0))
    }
}

/// What a literal holds.
#[derive(Clone, Debug, PartialEq)]
pub enum LiteralData {
    Array(ArrayData),
    Tuple(Vec<Literal>),
    Token,
    /// An array constant whose values the dump left out (`constant({...})`, XLA's printer
    /// elides large constants): the module parses, verifies and prints, but nothing can
    /// compute with it (`hlo-run` refuses to run or compile it, naming the constant).
    Elided,
}

/// A value with its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Literal {
    pub shape: Shape,
    pub data: LiteralData,
}

impl Literal {
    /// An array literal; `data` must have `shape.num_elements()` elements of `shape.dtype`.
    pub fn array(shape: ArrayShape, data: ArrayData) -> Literal {
        debug_assert_eq!(data.len() as u64, shape.num_elements());
        Literal { shape: Shape::Array(shape), data: LiteralData::Array(data) }
    }

    /// A zero-filled array of `shape`.
    pub fn zeros(shape: ArrayShape) -> Literal {
        let n = shape.num_elements() as usize;
        let data = ArrayData::zeros(shape.dtype, n);
        Literal::array(shape, data)
    }

    pub fn tuple(elems: Vec<Literal>) -> Literal {
        let shape = Shape::Tuple(elems.iter().map(|e| e.shape.clone()).collect());
        Literal { shape, data: LiteralData::Tuple(elems) }
    }

    pub fn scalar_f32(x: f32) -> Literal {
        Literal::array(ArrayShape::scalar(DType::F32), ArrayData::F32(vec![x]))
    }

    pub fn scalar_s32(x: i32) -> Literal {
        Literal::array(ArrayShape::scalar(DType::S32), ArrayData::S32(vec![x]))
    }

    pub fn scalar_pred(x: bool) -> Literal {
        Literal::array(ArrayShape::scalar(DType::Pred), ArrayData::Pred(vec![x]))
    }

    pub fn array_shape(&self) -> Option<&ArrayShape> {
        self.shape.as_array()
    }

    pub fn array_data(&self) -> Option<&ArrayData> {
        match &self.data {
            LiteralData::Array(d) => Some(d),
            _ => None,
        }
    }

    pub fn tuple_elements(&self) -> Option<&[Literal]> {
        match &self.data {
            LiteralData::Tuple(t) => Some(t),
            _ => None,
        }
    }
}
