//! `.npy` / `.npz` reading and writing for host arrays.
//!
//! Arrays travel through the tool as raw little-endian, row-major bytes plus an
//! HLO element type ([`HostArray`]), which is what both backends consume.
//! `npyz` parses headers; the writer emits a plain version-1.0 header itself
//! so that every HLO type round-trips byte for byte. numpy has no bf16: bf16
//! arrays are written as their raw bits in `<u2` (view them with
//! `ml_dtypes.bfloat16`), and a `<u2` or `<V2` file is accepted where a bf16
//! parameter is expected (see `inputs::check_inputs`).

use hlo_ir::{ArrayShape, DType};
use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// A dense host array: logical row-major little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct HostArray {
    pub dtype: DType,
    pub dims: Vec<i64>,
    pub bytes: Vec<u8>,
}

impl HostArray {
    pub fn shape(&self) -> ArrayShape {
        ArrayShape::new(self.dtype, self.dims.clone())
    }

    pub fn num_elements(&self) -> u64 {
        self.dims.iter().map(|&d| d.max(0) as u64).product()
    }

    /// `f32[2,3]`, for messages.
    pub fn describe(&self) -> String {
        self.shape().to_string()
    }
}

/// Why an array file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: unsupported .npy element type '{descr}'")]
    UnsupportedDescr { path: String, descr: String },
    #[error("{path}: Fortran-ordered arrays are not supported; save with np.ascontiguousarray")]
    FortranOrder { path: String },
    #[error("{path}: file holds {found} bytes of data, the header promises {expected}")]
    Truncated { path: String, expected: usize, found: usize },
    #[error("{path}: no arrays named arr_0.. in the archive")]
    EmptyArchive { path: String },
}

/// Maps a numpy `descr` to an HLO element type. `<V2` (how numpy saves
/// ml_dtypes' bfloat16) is read as bf16.
pub fn dtype_from_descr(descr: &str) -> Option<DType> {
    let descr = descr.trim_matches('\'');
    let (order, code) = descr.split_at(1.min(descr.len()));
    if order == ">" {
        return None;
    }
    Some(match code {
        "b1" => DType::Pred,
        "i1" => DType::S8,
        "i2" => DType::S16,
        "i4" => DType::S32,
        "i8" => DType::S64,
        "u1" => DType::U8,
        "u2" => DType::U16,
        "u4" => DType::U32,
        "u8" => DType::U64,
        "f2" => DType::F16,
        "f4" => DType::F32,
        "f8" => DType::F64,
        "c8" => DType::C64,
        "c16" => DType::C128,
        "V2" => DType::BF16,
        _ => return None,
    })
}

/// The numpy `descr` written for an HLO element type.
pub fn descr_for(dtype: DType) -> Option<&'static str> {
    Some(match dtype {
        DType::Pred => "|b1",
        DType::S8 => "|i1",
        DType::S16 => "<i2",
        DType::S32 => "<i4",
        DType::S64 => "<i8",
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::F16 => "<f2",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::C64 => "<c8",
        DType::C128 => "<c16",
        DType::BF16 => "<u2",
        _ => return None,
    })
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> NpyError + '_ {
    move |source| NpyError::Io { path: path.display().to_string(), source }
}

/// Reads one `.npy` array from a reader; `path` is used in messages.
pub fn read_npy_from(reader: impl Read, path: &Path) -> Result<HostArray, NpyError> {
    let name = path.display().to_string();
    let file = npyz::NpyFile::new(reader).map_err(io_err(path))?;
    let descr = file.header().dtype().descr();
    let dtype = dtype_from_descr(&descr)
        .ok_or_else(|| NpyError::UnsupportedDescr { path: name.clone(), descr: descr.clone() })?;
    if file.order() == npyz::Order::Fortran && file.shape().len() > 1 {
        return Err(NpyError::FortranOrder { path: name });
    }
    let dims: Vec<i64> = file.shape().iter().map(|&d| d as i64).collect();
    let expected = dims.iter().map(|&d| d as usize).product::<usize>() * dtype.byte_size();
    let mut bytes = Vec::with_capacity(expected);
    file.into_inner().take(expected as u64).read_to_end(&mut bytes).map_err(io_err(path))?;
    if bytes.len() != expected {
        return Err(NpyError::Truncated { path: name, expected, found: bytes.len() });
    }
    if dtype == DType::Pred {
        // numpy writes bools as 0/1 bytes already; normalise anything else.
        bytes.iter_mut().for_each(|b| *b = (*b != 0) as u8);
    }
    Ok(HostArray { dtype, dims, bytes })
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<HostArray, NpyError> {
    let file = fs::File::open(path).map_err(io_err(path))?;
    read_npy_from(io::BufReader::new(file), path)
}

/// Reads every `arr_K` array of an `.npz` archive, in K order.
pub fn read_npz(path: &Path) -> Result<Vec<HostArray>, NpyError> {
    let mut archive = npyz::npz::NpzArchive::open(path).map_err(io_err(path))?;
    let mut arrays = Vec::new();
    for k in 0.. {
        let name = format!("arr_{k}");
        let Some(file) = archive.by_name(&name).map_err(io_err(path))? else { break };
        let sub = path.join(&name);
        let descr = file.header().dtype().descr();
        let dtype = dtype_from_descr(&descr)
            .ok_or_else(|| NpyError::UnsupportedDescr { path: sub.display().to_string(), descr: descr.clone() })?;
        let dims: Vec<i64> = file.shape().iter().map(|&d| d as i64).collect();
        let expected = dims.iter().map(|&d| d as usize).product::<usize>() * dtype.byte_size();
        let mut bytes = Vec::with_capacity(expected);
        file.into_inner().take(expected as u64).read_to_end(&mut bytes).map_err(io_err(&sub))?;
        if bytes.len() != expected {
            return Err(NpyError::Truncated { path: sub.display().to_string(), expected, found: bytes.len() });
        }
        arrays.push(HostArray { dtype, dims, bytes });
    }
    if arrays.is_empty() {
        return Err(NpyError::EmptyArchive { path: path.display().to_string() });
    }
    Ok(arrays)
}

/// Serialises an array as a version-1.0 `.npy` file.
pub fn npy_bytes(array: &HostArray) -> Result<Vec<u8>, String> {
    let descr = descr_for(array.dtype).ok_or_else(|| format!("no .npy element type for {}", array.dtype))?;
    let shape = match array.dims.len() {
        0 => "()".to_string(),
        1 => format!("({},)", array.dims[0]),
        _ => format!("({})", array.dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' must be a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + array.bytes.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&array.bytes);
    Ok(out)
}

/// Writes an array to a `.npy` file.
pub fn write_npy(path: &Path, array: &HostArray) -> anyhow::Result<()> {
    let bytes = npy_bytes(array).map_err(anyhow::Error::msg)?;
    fs::write(path, bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trips_every_writable_type() {
        for dtype in DType::ALL {
            if descr_for(dtype).is_none() {
                continue;
            }
            let n = 6usize;
            let mut bytes: Vec<u8> = (0..n * dtype.byte_size()).map(|i| (i * 37 % 251) as u8).collect();
            if dtype == DType::Pred {
                bytes.iter_mut().for_each(|b| *b &= 1);
            }
            let array = HostArray { dtype, dims: vec![2, 3], bytes };
            let encoded = npy_bytes(&array).unwrap();
            assert_eq!(encoded[8..10], (encoded.len() as u16 - 10 - array.bytes.len() as u16).to_le_bytes());
            let mut decoded = read_npy_from(&encoded[..], Path::new("mem.npy")).unwrap();
            if dtype == DType::BF16 {
                assert_eq!(decoded.dtype, DType::U16, "bf16 is stored as its bits");
                decoded.dtype = DType::BF16;
            }
            assert_eq!(decoded, array, "{dtype}");
        }
    }

    #[test]
    fn scalar_and_truncated_files() {
        let array = HostArray { dtype: DType::F32, dims: vec![], bytes: 1.5f32.to_le_bytes().to_vec() };
        let encoded = npy_bytes(&array).unwrap();
        assert_eq!(read_npy_from(&encoded[..], Path::new("s.npy")).unwrap(), array);
        let err = read_npy_from(&encoded[..encoded.len() - 1], Path::new("s.npy")).unwrap_err();
        assert!(err.to_string().contains("promises 4"), "{err}");
    }
}
