//! Element types, named as the HLO text format names them.

use std::fmt;

/// An HLO primitive (element) type.
///
/// Every type XLA's text format can name is here so that every module parses;
/// which of them the backends can execute is decided by each backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    Pred,
    S2,
    S4,
    S8,
    S16,
    S32,
    S64,
    U2,
    U4,
    U8,
    U16,
    U32,
    U64,
    F16,
    BF16,
    F32,
    F64,
    C64,
    C128,
    F4E2M1FN,
    F8E3M4,
    F8E4M3,
    F8E4M3FN,
    F8E4M3B11FNUZ,
    F8E4M3FNUZ,
    F8E5M2,
    F8E5M2FNUZ,
    F8E8M0FNU,
}

/// The coarse family of a [`DType`], which decides arithmetic semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DTypeClass {
    Pred,
    Signed,
    Unsigned,
    Float,
    Complex,
}

impl DType {
    /// Every element type, in a fixed order (used by tests and docs).
    pub const ALL: [DType; 28] = [
        DType::Pred,
        DType::S2,
        DType::S4,
        DType::S8,
        DType::S16,
        DType::S32,
        DType::S64,
        DType::U2,
        DType::U4,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
        DType::C64,
        DType::C128,
        DType::F4E2M1FN,
        DType::F8E3M4,
        DType::F8E4M3,
        DType::F8E4M3FN,
        DType::F8E4M3B11FNUZ,
        DType::F8E4M3FNUZ,
        DType::F8E5M2,
        DType::F8E5M2FNUZ,
        DType::F8E8M0FNU,
    ];

    /// The name used in HLO text (`f32`, `bf16`, `f8e4m3fn`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Pred => "pred",
            DType::S2 => "s2",
            DType::S4 => "s4",
            DType::S8 => "s8",
            DType::S16 => "s16",
            DType::S32 => "s32",
            DType::S64 => "s64",
            DType::U2 => "u2",
            DType::U4 => "u4",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::C64 => "c64",
            DType::C128 => "c128",
            DType::F4E2M1FN => "f4e2m1fn",
            DType::F8E3M4 => "f8e3m4",
            DType::F8E4M3 => "f8e4m3",
            DType::F8E4M3FN => "f8e4m3fn",
            DType::F8E4M3B11FNUZ => "f8e4m3b11fnuz",
            DType::F8E4M3FNUZ => "f8e4m3fnuz",
            DType::F8E5M2 => "f8e5m2",
            DType::F8E5M2FNUZ => "f8e5m2fnuz",
            DType::F8E8M0FNU => "f8e8m0fnu",
        }
    }

    /// Looks a type up by its HLO text name.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.iter().copied().find(|ty| ty.name() == name)
    }

    /// Width of one element in bits as XLA stores it unpacked.
    pub fn bit_width(self) -> u32 {
        match self {
            DType::Pred | DType::S8 | DType::U8 => 8,
            DType::S2 | DType::U2 => 2,
            DType::S4 | DType::U4 | DType::F4E2M1FN => 4,
            DType::S16 | DType::U16 | DType::F16 | DType::BF16 => 16,
            DType::S32 | DType::U32 | DType::F32 => 32,
            DType::S64 | DType::U64 | DType::F64 | DType::C64 => 64,
            DType::C128 => 128,
            DType::F8E3M4
            | DType::F8E4M3
            | DType::F8E4M3FN
            | DType::F8E4M3B11FNUZ
            | DType::F8E4M3FNUZ
            | DType::F8E5M2
            | DType::F8E5M2FNUZ
            | DType::F8E8M0FNU => 8,
        }
    }

    /// Bytes one element takes in a dense host array (sub-byte types take a byte).
    pub fn byte_size(self) -> usize {
        (self.bit_width() as usize).div_ceil(8)
    }

    pub fn class(self) -> DTypeClass {
        match self {
            DType::Pred => DTypeClass::Pred,
            DType::S2 | DType::S4 | DType::S8 | DType::S16 | DType::S32 | DType::S64 => DTypeClass::Signed,
            DType::U2 | DType::U4 | DType::U8 | DType::U16 | DType::U32 | DType::U64 => DTypeClass::Unsigned,
            DType::C64 | DType::C128 => DTypeClass::Complex,
            _ => DTypeClass::Float,
        }
    }

    pub fn is_float(self) -> bool {
        self.class() == DTypeClass::Float
    }
    pub fn is_integer(self) -> bool {
        matches!(self.class(), DTypeClass::Signed | DTypeClass::Unsigned)
    }
    pub fn is_signed_integer(self) -> bool {
        self.class() == DTypeClass::Signed
    }
    pub fn is_unsigned_integer(self) -> bool {
        self.class() == DTypeClass::Unsigned
    }
    pub fn is_complex(self) -> bool {
        self.class() == DTypeClass::Complex
    }
    /// Floats narrower than 32 bits, computed in f32 and rounded after each op.
    pub fn is_narrow_float(self) -> bool {
        self.is_float() && self.bit_width() < 32
    }

    /// The real component type of a complex type (`c64` -> `f32`).
    pub fn complex_component(self) -> Option<DType> {
        match self {
            DType::C64 => Some(DType::F32),
            DType::C128 => Some(DType::F64),
            _ => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
