//! Attribute and type encodings of the two dialects a portable artifact uses: VHLO's own
//! (`VhloBytecode.cpp` in openxla/stablehlo) and the builtin dialect's
//! (`BuiltinDialectBytecode.td` in MLIR), folded into [`Attr`] and [`Type`].
//!
//! Each table entry is decoded on first use and cached. Entries of other dialects, entries
//! written in the assembly fallback, and kinds the lowering never needs (locations,
//! quantized types, meshes) become `Other`, which only fails if the lowering looks at it.

use crate::bytecode::cursor::Cursor;
use crate::bytecode::Tables;
use crate::ir::{Attr, Type};
use crate::Error;
use hlo_ir::DType;

const MAX_ATTR_DEPTH: usize = 64;

/// The attribute at `idx` of the table, decoded and cached.
pub(crate) fn attr_at(t: &mut Tables, idx: u64, at: &Cursor) -> Result<Attr, Error> {
    let i = idx as usize;
    if i >= t.attrs.len() {
        return Err(at.error(format!("an attribute index below {}", t.attrs.len())));
    }
    if let Some(a) = &t.attr_cache[i] {
        return Ok(a.clone());
    }
    if t.depth >= MAX_ATTR_DEPTH {
        return Err(at.error(format!("attributes nested at most {MAX_ATTR_DEPTH} deep")));
    }
    t.depth += 1;
    let entry = t.attrs[i].clone();
    let res = decode_attr(t, entry.dialect, entry.custom, entry.data);
    t.depth -= 1;
    let a = res?;
    t.attr_cache[i] = Some(a.clone());
    Ok(a)
}

/// The type at `idx` of the table, decoded and cached.
pub(crate) fn type_at(t: &mut Tables, idx: u64, at: &Cursor) -> Result<Type, Error> {
    let i = idx as usize;
    if i >= t.types.len() {
        return Err(at.error(format!("a type index below {}", t.types.len())));
    }
    if let Some(ty) = &t.type_cache[i] {
        return Ok(ty.clone());
    }
    if t.depth >= MAX_ATTR_DEPTH {
        return Err(at.error(format!("types nested at most {MAX_ATTR_DEPTH} deep")));
    }
    t.depth += 1;
    let entry = t.types[i].clone();
    let res = decode_type(t, entry.dialect, entry.custom, entry.data);
    t.depth -= 1;
    let ty = res?;
    t.type_cache[i] = Some(ty.clone());
    Ok(ty)
}

fn decode_attr(t: &mut Tables, dialect: usize, custom: bool, mut cur: Cursor) -> Result<Attr, Error> {
    if !custom {
        return Ok(Attr::Other(cur.cstr("an attribute in assembly form")?.to_string()));
    }
    match t.dialects[dialect] {
        "vhlo" => vhlo_attr(t, &mut cur),
        "builtin" => builtin_attr(t, &mut cur),
        other => Ok(Attr::Other(format!("an attribute of dialect {other}"))),
    }
}

fn decode_type(t: &mut Tables, dialect: usize, custom: bool, mut cur: Cursor) -> Result<Type, Error> {
    if !custom {
        return Ok(Type::Other(cur.cstr("a type in assembly form")?.to_string()));
    }
    match t.dialects[dialect] {
        "vhlo" => vhlo_type(t, &mut cur),
        "builtin" => builtin_type(t, &mut cur),
        other => Ok(Type::Other(format!("a type of dialect {other}"))),
    }
}

fn attr_ref(t: &mut Tables, cur: &mut Cursor) -> Result<Attr, Error> {
    let idx = cur.varint("an attribute reference")?;
    attr_at(t, idx, cur)
}

fn type_ref(t: &mut Tables, cur: &mut Cursor) -> Result<Type, Error> {
    let idx = cur.varint("a type reference")?;
    type_at(t, idx, cur)
}

fn attr_list(t: &mut Tables, cur: &mut Cursor) -> Result<Vec<Attr>, Error> {
    let n = cur.count("a list length")?;
    (0..n).map(|_| attr_ref(t, cur)).collect()
}

fn type_list(t: &mut Tables, cur: &mut Cursor) -> Result<Vec<Type>, Error> {
    let n = cur.count("a list length")?;
    (0..n).map(|_| type_ref(t, cur)).collect()
}

fn svarints(cur: &mut Cursor) -> Result<Vec<i64>, Error> {
    let n = cur.count("a list length")?;
    (0..n).map(|_| cur.svarint("a signed integer")).collect()
}

fn string_ref(t: &Tables, cur: &mut Cursor) -> Result<String, Error> {
    let idx = cur.varint("a string reference")?;
    Ok(t.string(idx, cur)?.to_string())
}

fn name_of(a: Attr, cur: &Cursor) -> Result<String, Error> {
    match a {
        Attr::String(s) => Ok(s),
        other => Err(cur.error(format!("a string attribute as a name, found {other:?}"))),
    }
}

fn bit_width(ty: &Type) -> Option<u32> {
    match ty {
        Type::Scalar(d) => Some(d.bit_width()),
        Type::Index => Some(64),
        _ => None,
    }
}

/// `readAPIntWithKnownWidth`: a byte up to 8 bits, a zigzag varint up to 64, else words.
fn apint(cur: &mut Cursor, width: u32) -> Result<u64, Error> {
    if width <= 8 {
        return Ok(u64::from(cur.byte("a small integer")?));
    }
    if width <= 64 {
        return Ok(cur.svarint("an integer")? as u64);
    }
    let n = cur.count("the number of integer words")?;
    let mut low = 0;
    for i in 0..n {
        let w = cur.svarint("an integer word")? as u64;
        if i == 0 {
            low = w;
        }
    }
    Ok(low)
}

fn int_value(ty: &Type, raw: u64) -> i64 {
    let Some(w) = bit_width(ty) else { return raw as i64 };
    if w >= 64 || w == 0 {
        return raw as i64;
    }
    let masked = raw & ((1u64 << w) - 1);
    match ty {
        Type::Scalar(d) if d.is_unsigned_integer() || *d == DType::Pred => masked as i64,
        _ => ((masked << (64 - w)) as i64) >> (64 - w),
    }
}

/// A float's bits as an f64 (f16 and bf16 through `half`; narrower floats are kept as bits).
pub(crate) fn float_from_bits(d: DType, bits: u64) -> f64 {
    match d {
        DType::F64 => f64::from_bits(bits),
        DType::F32 => f64::from(f32::from_bits(bits as u32)),
        DType::F16 => f64::from(half::f16::from_bits(bits as u16)),
        DType::BF16 => f64::from(half::bf16::from_bits(bits as u16)),
        _ => bits as f64,
    }
}

fn float_attr(t: &mut Tables, cur: &mut Cursor) -> Result<Attr, Error> {
    let ty = type_ref(t, cur)?;
    let Type::Scalar(d) = ty else { return Err(cur.error(format!("a float type, found {ty:?}"))) };
    let raw = apint(cur, d.bit_width())?;
    let bits = if d.bit_width() >= 64 { raw } else { raw & ((1u64 << d.bit_width()) - 1) };
    Ok(Attr::Float { ty, value: float_from_bits(d, bits) })
}

fn int_attr(t: &mut Tables, cur: &mut Cursor) -> Result<Attr, Error> {
    let ty = type_ref(t, cur)?;
    let w = bit_width(&ty).ok_or_else(|| cur.error(format!("an integer type, found {ty:?}")))?;
    let raw = apint(cur, w)?;
    Ok(Attr::Int { value: int_value(&ty, raw), ty })
}

/// A dense tensor's blob; `i1` tensors are bit-packed (or `0xFF` for a true splat) since
/// StableHLO 1.x, and are unpacked here to one byte per element.
fn tensor_attr(t: &mut Tables, cur: &mut Cursor) -> Result<Attr, Error> {
    let ty = type_ref(t, cur)?;
    let len = cur.varint("a blob size")?;
    let blob = cur.bytes(len, "tensor data")?;
    let mut data = blob.to_vec();
    if let Type::Tensor { dims, elem } = &ty {
        if **elem == Type::Scalar(DType::Pred) {
            let n = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(u64::try_from(d).ok()?)).unwrap_or(0);
            let packed = n.div_ceil(8);
            if blob.len() == 1 && blob[0] == 0xFF {
                data = vec![1];
            } else if blob.len() as u64 == packed && blob.len() as u64 != n {
                data = (0..n as usize).map(|i| (blob[i / 8] >> (i % 8)) & 1).collect();
            }
        }
    }
    Ok(Attr::Tensor { ty, data })
}

fn enum_name(cur: &Cursor, kind: &str, names: &[&str], value: u64) -> Result<Attr, Error> {
    names
        .get(value as usize)
        .filter(|n| !n.is_empty())
        .map(|n| Attr::Enum((*n).to_string()))
        .ok_or_else(|| cur.error(format!("a {kind} enum value below {}, found {value}", names.len())))
}

fn vhlo_attr(t: &mut Tables, cur: &mut Cursor) -> Result<Attr, Error> {
    let code = cur.varint("a VHLO attribute code")?;
    let mut e = |kind: &str, names: &[&str]| -> Result<Attr, Error> {
        let v = cur.varint("an enum value")?;
        enum_name(cur, kind, names, v)
    };
    Ok(match code {
        1 => Attr::Array(attr_list(t, cur)?),
        2 => Attr::Bool(cur.varint("a boolean")? != 0),
        3 => e("comparison direction", &["EQ", "NE", "GE", "GT", "LE", "LT"])?,
        4 => e("comparison type", &["NOTYPE", "FLOAT", "TOTALORDER", "SIGNED", "UNSIGNED"])?,
        5 => e(
            "custom call API version",
            &[
                "API_VERSION_UNSPECIFIED",
                "API_VERSION_ORIGINAL",
                "API_VERSION_STATUS_RETURNING",
                "API_VERSION_STATUS_RETURNING_UNIFIED",
                "API_VERSION_TYPED_FFI",
            ],
        )?,
        6 => {
            let n = cur.count("a dictionary length")?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let name = attr_ref(t, cur)?;
                let name = name_of(name, cur)?;
                out.push((name, attr_ref(t, cur)?));
            }
            Attr::Dict(out)
        }
        7 => e("FFT type", &["FFT", "IFFT", "RFFT", "IRFFT"])?,
        8 => float_attr(t, cur)?,
        9 => int_attr(t, cur)?,
        10 => Attr::OutputOperandAlias {
            output_tuple_indices: svarints(cur)?,
            operand_index: cur.svarint("an operand index")?,
            operand_tuple_indices: svarints(cur)?,
        },
        11 => e("precision", &["DEFAULT", "HIGH", "HIGHEST"])?,
        12 => e("RNG algorithm", &["DEFAULT", "THREE_FRY", "PHILOX"])?,
        13 => e("RNG distribution", &["", "UNIFORM", "NORMAL"])?,
        14 => Attr::String(string_ref(t, cur)?),
        15 => tensor_attr(t, cur)?,
        16 => e("transpose", &["TRANSPOSE_INVALID", "NO_TRANSPOSE", "TRANSPOSE", "ADJOINT"])?,
        17 => Attr::Type(type_ref(t, cur)?),
        18 => Attr::TypeExtensions(svarints(cur)?),
        19 => e("result accuracy mode", &["DEFAULT", "HIGHEST", "TOLERANCE"])?,
        other => Attr::Other(format!("VHLO attribute code {other}")),
    })
}

fn vhlo_type(t: &mut Tables, cur: &mut Cursor) -> Result<Type, Error> {
    let code = cur.varint("a VHLO type code")?;
    let s = Type::Scalar;
    Ok(match code {
        0 => s(DType::Pred),
        1 => complex_of(type_ref(t, cur)?, cur)?,
        2 => s(DType::BF16),
        3 => s(DType::F16),
        4 => s(DType::F32),
        5 => s(DType::F64),
        6 => s(DType::F8E4M3FN),
        7 => s(DType::F8E5M2),
        8 => Type::Function { inputs: type_list(t, cur)?, results: type_list(t, cur)? },
        9 => Type::Index,
        10 => s(DType::S4),
        11 => s(DType::S8),
        12 => s(DType::S16),
        13 => s(DType::S32),
        14 => s(DType::S64),
        15 => s(DType::U4),
        16 => s(DType::U8),
        17 => s(DType::U16),
        18 => s(DType::U32),
        19 => s(DType::U64),
        20 => Type::Tensor { dims: svarints(cur)?, elem: Box::new(type_ref(t, cur)?) },
        21 => {
            attr_ref(t, cur)?;
            Type::Tensor { dims: svarints(cur)?, elem: Box::new(type_ref(t, cur)?) }
        }
        22 => Type::Token,
        23 => Type::Tuple(type_list(t, cur)?),
        25 => Type::UnrankedTensor(Box::new(type_ref(t, cur)?)),
        27 => s(DType::F8E4M3FNUZ),
        28 => s(DType::F8E5M2FNUZ),
        29 => s(DType::F8E4M3B11FNUZ),
        31 => s(DType::S2),
        32 => s(DType::U2),
        33 => Type::None,
        35 => s(DType::F8E4M3),
        36 => s(DType::F8E3M4),
        37 => s(DType::F4E2M1FN),
        40 => s(DType::F8E8M0FNU),
        other => Type::Other(format!("VHLO type code {other}")),
    })
}

/// `complex<f32>` -> c64, `complex<f64>` -> c128.
fn complex_of(elem: Type, cur: &Cursor) -> Result<Type, Error> {
    match elem {
        Type::Scalar(DType::F32) => Ok(Type::Scalar(DType::C64)),
        Type::Scalar(DType::F64) => Ok(Type::Scalar(DType::C128)),
        other => Err(cur.error(format!("a complex of f32 or f64, found {other:?}"))),
    }
}

fn builtin_attr(t: &mut Tables, cur: &mut Cursor) -> Result<Attr, Error> {
    let code = cur.varint("a builtin attribute code")?;
    Ok(match code {
        0 => Attr::Array(attr_list(t, cur)?),
        1 => {
            let n = cur.count("a dictionary length")?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let name = attr_ref(t, cur)?;
                let name = name_of(name, cur)?;
                out.push((name, attr_ref(t, cur)?));
            }
            Attr::Dict(out)
        }
        2 | 3 => Attr::String(string_ref(t, cur)?),
        4 => match attr_ref(t, cur)? {
            Attr::String(s) => Attr::SymbolRef(s),
            other => return Err(cur.error(format!("a symbol name, found {other:?}"))),
        },
        6 => Attr::Type(type_ref(t, cur)?),
        7 => Attr::Unit,
        8 => int_attr(t, cur)?,
        9 => float_attr(t, cur)?,
        10..=15 | 22 => Attr::Other("a location".into()),
        17 => {
            let elem = type_ref(t, cur)?;
            let n = cur.varint("a dense array size")?;
            let len = cur.varint("a blob size")?;
            let blob = cur.bytes(len, "dense array data")?;
            let Type::Scalar(d) = elem else { return Err(cur.error("a dense array of scalars")) };
            let size = d.byte_size().max(1);
            if blob.len() as u64 != n.saturating_mul(size as u64) {
                return Err(cur.error(format!("{n} elements of {size} bytes in a dense array")));
            }
            Attr::Array(blob.chunks(size).map(|c| scalar_attr(d, c)).collect())
        }
        18 => tensor_attr(t, cur)?,
        other => Attr::Other(format!("builtin attribute code {other}")),
    })
}

/// One little-endian element of a dense array as an attribute.
fn scalar_attr(d: DType, bytes: &[u8]) -> Attr {
    let mut buf = [0u8; 8];
    buf[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
    let raw = u64::from_le_bytes(buf);
    let ty = Type::Scalar(d);
    if d.is_float() {
        Attr::Float { value: float_from_bits(d, raw), ty }
    } else if d == DType::Pred {
        Attr::Bool(raw != 0)
    } else {
        Attr::Int { value: int_value(&ty, raw), ty }
    }
}

fn builtin_type(t: &mut Tables, cur: &mut Cursor) -> Result<Type, Error> {
    let code = cur.varint("a builtin type code")?;
    Ok(match code {
        0 => {
            let v = cur.varint("an integer type")?;
            let (width, signedness) = (v >> 2, v & 3);
            let d = match (width, signedness) {
                (1, _) => DType::Pred,
                (2, 2) => DType::U2,
                (4, 2) => DType::U4,
                (8, 2) => DType::U8,
                (16, 2) => DType::U16,
                (32, 2) => DType::U32,
                (64, 2) => DType::U64,
                (2, _) => DType::S2,
                (4, _) => DType::S4,
                (8, _) => DType::S8,
                (16, _) => DType::S16,
                (32, _) => DType::S32,
                (64, _) => DType::S64,
                _ => return Ok(Type::Other(format!("i{width}"))),
            };
            Type::Scalar(d)
        }
        1 => Type::Index,
        2 => Type::Function { inputs: type_list(t, cur)?, results: type_list(t, cur)? },
        3 => Type::Scalar(DType::BF16),
        4 => Type::Scalar(DType::F16),
        5 => Type::Scalar(DType::F32),
        6 => Type::Scalar(DType::F64),
        9 => complex_of(type_ref(t, cur)?, cur)?,
        12 => Type::None,
        13 => Type::Tensor { dims: svarints(cur)?, elem: Box::new(type_ref(t, cur)?) },
        14 => {
            attr_ref(t, cur)?;
            Type::Tensor { dims: svarints(cur)?, elem: Box::new(type_ref(t, cur)?) }
        }
        15 => Type::Tuple(type_list(t, cur)?),
        18 => Type::UnrankedTensor(Box::new(type_ref(t, cur)?)),
        other => Type::Other(format!("builtin type code {other}")),
    })
}
