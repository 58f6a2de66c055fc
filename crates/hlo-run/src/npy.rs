//! `.npy` / `.npz` reading and writing for host arrays.
//!
//! Arrays travel through the tool as raw little-endian, row-major bytes plus an
//! HLO element type ([`HostArray`]), which is what both backends consume.
//! Headers are parsed here and checked before anything is allocated: the magic, a
//! header of at most 1 MiB, a known element type, dimensions whose byte size fits in
//! an `i64`, a data length that matches the file, and the memory limit. `npyz` only
//! opens `.npz` archives. Only regular files are opened (a FIFO would block).
//! The writer emits a plain version-1.0 header itself
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
    #[error("{path}: not a regular file ({kind})")]
    NotRegular { path: String, kind: &'static str },
    #[error("{path}: not a .npy file: {reason}")]
    BadHeader { path: String, reason: String },
    #[error("{path}: unsupported .npy element type '{descr}'")]
    UnsupportedDescr { path: String, descr: String },
    #[error("{path}: Fortran-ordered arrays are not supported; save with np.ascontiguousarray")]
    FortranOrder { path: String },
    #[error("{path}: file holds {found} bytes of data, the header promises {expected}")]
    Truncated { path: String, expected: u64, found: u64 },
    #[error(
        "{path}: the array {shape} needs {bytes} bytes, more than the memory limit of {limit} bytes\n  \
         hint: HLO_MEMORY_LIMIT raises the limit if the machine has the memory"
    )]
    TooLarge { path: String, shape: String, bytes: u64, limit: u64 },
    #[error("{path}: not a usable .npz archive: {reason}")]
    BadArchive { path: String, reason: String },
    #[error("{path}: no arrays named arr_0.. in the archive")]
    EmptyArchive { path: String },
}

/// Longest header accepted (numpy itself refuses more than 10,000 bytes by default).
const MAX_HEADER_BYTES: usize = 1 << 20;
/// Most dimensions an array may have.
const MAX_RANK: usize = 64;

/// What a `.npy` header says.
#[derive(Clone, Debug, PartialEq)]
struct Header {
    dtype: DType,
    dims: Vec<i64>,
    /// Bytes of data that follow the header.
    data_bytes: u64,
    /// Bytes of the magic, version, length and header text.
    header_bytes: u64,
}

/// Reads and checks a `.npy` header: magic, version, a dict with `descr`, `fortran_order`
/// and `shape`, an element type we know, dimensions whose byte size fits in an `i64`.
fn read_header(reader: &mut impl Read, path: &str) -> Result<Header, NpyError> {
    let bad = |reason: &str| NpyError::BadHeader { path: path.to_string(), reason: reason.to_string() };
    let io = |source| NpyError::Io { path: path.to_string(), source };
    let mut pre = [0u8; 8];
    read_fully(reader, &mut pre).map_err(io)?.then_some(()).ok_or_else(|| bad("the file is shorter than the magic"))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(bad("it does not start with the magic \\x93NUMPY"));
    }
    let (len, prefix) = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            read_fully(reader, &mut b).map_err(io)?.then_some(()).ok_or_else(|| bad("the header length is cut off"))?;
            (u16::from_le_bytes(b) as usize, 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            read_fully(reader, &mut b).map_err(io)?.then_some(()).ok_or_else(|| bad("the header length is cut off"))?;
            (u32::from_le_bytes(b) as usize, 12)
        }
        v => return Err(bad(&format!("unknown format version {v}.{}", pre[7]))),
    };
    if len > MAX_HEADER_BYTES {
        return Err(bad(&format!("the header claims {len} bytes, more than the {MAX_HEADER_BYTES} accepted")));
    }
    let mut text = vec![0u8; len];
    read_fully(reader, &mut text).map_err(io)?.then_some(()).ok_or_else(|| bad("the header is cut off"))?;
    let text = std::str::from_utf8(&text).map_err(|_| bad("the header is not text"))?;
    let dict = parse_header_dict(text).map_err(|reason| bad(&reason))?;
    let descr = dict.descr.ok_or_else(|| bad("the header has no 'descr'"))?;
    let fortran = dict.fortran_order.ok_or_else(|| bad("the header has no 'fortran_order'"))?;
    let dims = dict.shape.ok_or_else(|| bad("the header has no 'shape'"))?;
    let dtype = dtype_from_descr(&descr)
        .ok_or_else(|| NpyError::UnsupportedDescr { path: path.to_string(), descr: descr.clone() })?;
    if fortran && dims.len() > 1 {
        return Err(NpyError::FortranOrder { path: path.to_string() });
    }
    let elements = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    let data_bytes = elements
        .and_then(|n| n.checked_mul(dtype.byte_size() as u64))
        .filter(|&b| b <= i64::MAX as u64)
        .ok_or_else(|| bad(&format!("the shape {dims:?} has more bytes than fit in 64 bits")))?;
    Ok(Header { dtype, dims, data_bytes, header_bytes: (prefix + len) as u64 })
}

/// Fills `buf`; `false` when the reader ends first.
fn read_fully(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The fields of a header dict, each once at most.
#[derive(Default)]
struct HeaderDict {
    descr: Option<String>,
    fortran_order: Option<bool>,
    shape: Option<Vec<i64>>,
}

/// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`: the Python literal
/// numpy writes (keys in any order, trailing commas, spaces and a final newline allowed).
fn parse_header_dict(text: &str) -> Result<HeaderDict, String> {
    let mut p = Literal { s: text.trim_end().as_bytes(), at: 0 };
    let mut dict = HeaderDict::default();
    p.expect(b'{')?;
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.expect(b':')?;
        match key.as_str() {
            "descr" if dict.descr.is_none() => {
                p.skip_ws();
                if p.peek() == Some(b'[') {
                    return Err("structured element types are not supported".into());
                }
                dict.descr = Some(p.string()?);
            }
            "fortran_order" if dict.fortran_order.is_none() => dict.fortran_order = Some(p.boolean()?),
            "shape" if dict.shape.is_none() => dict.shape = Some(p.int_tuple()?),
            other => return Err(format!("unexpected or repeated key '{other}' in the header")),
        }
        p.skip_ws();
        if !p.eat(b',') {
            p.expect(b'}')?;
            break;
        }
    }
    p.skip_ws();
    if p.at != p.s.len() {
        return Err("text after the header dict".into());
    }
    Ok(dict)
}

/// A cursor over the Python literal of a header.
struct Literal<'a> {
    s: &'a [u8],
    at: usize,
}

impl Literal<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {} of the header", b as char, self.at))
        }
    }

    /// `'text'` or `"text"` without escapes (numpy writes none).
    fn string(&mut self) -> Result<String, String> {
        self.skip_ws();
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("expected a quoted string at byte {} of the header", self.at)),
        };
        let start = self.at + 1;
        let len = self.s[start..].iter().position(|&c| c == quote).ok_or("unterminated string in the header")?;
        self.at = start + len + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }

    fn boolean(&mut self) -> Result<bool, String> {
        self.skip_ws();
        for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.s[self.at..].starts_with(word) {
                self.at += word.len();
                return Ok(value);
            }
        }
        Err(format!("expected True or False at byte {} of the header", self.at))
    }

    /// `()`, `(3,)`, `(2, 3)`: non-negative integers that fit in an `i64`.
    fn int_tuple(&mut self) -> Result<Vec<i64>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            if self.eat(b')') {
                return Ok(dims);
            }
            self.skip_ws();
            let start = self.at;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.at += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.at]).unwrap_or_default();
            let dim: i64 = digits.parse().map_err(|_| {
                format!("expected a non-negative dimension that fits in 64 bits at byte {start} of the header")
            })?;
            self.eat(b'L'); // Python 2 long suffix
            dims.push(dim);
            if dims.len() > MAX_RANK {
                return Err(format!("more than {MAX_RANK} dimensions"));
            }
            if !self.eat(b',') {
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

/// Maps a numpy `descr` to an HLO element type. `<V2` (how numpy saves
/// ml_dtypes' bfloat16) is read as bf16, `<V1` (its 8-bit floats) as bytes.
pub fn dtype_from_descr(descr: &str) -> Option<DType> {
    let descr = descr.trim_matches('\'');
    if !descr.is_ascii() {
        return None; // and `split_at` below stays on a char boundary
    }
    let (order, code) = descr.split_at(1.min(descr.len()));
    if !matches!(order, "<" | "|" | "=") {
        return None;
    }
    if order == "|" && !matches!(code, "b1" | "i1" | "u1" | "V1" | "V2") {
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
        // ml_dtypes' 8-bit floats: raw bytes, typed by the parameter that reads them.
        "V1" => DType::U8,
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
        // Their bits, as bf16's: view them with ml_dtypes (`np.load(f).view(ml_dtypes.float8_e4m3fn)`);
        // a 4-bit float takes a byte, its code in the low bits, as ml_dtypes stores it.
        d if d.is_float() && d.bit_width() <= 8 => "|u1",
        // Sub-byte integers hold their value in a byte (ml_dtypes' int4 and friends view them).
        DType::S2 | DType::S4 => "|i1",
        DType::U2 | DType::U4 => "|u1",
        _ => return None,
    })
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> NpyError + '_ {
    move |source| NpyError::Io { path: path.display().to_string(), source }
}

/// Reads the data an already-read header promises: exactly `header.data_bytes`, no more
/// (`available`, when known, is checked first so that nothing is allocated for a lie), and
/// never more than `limit` bytes.
fn read_data(
    reader: impl Read,
    header: Header,
    available: Option<u64>,
    limit: u64,
    path: &str,
) -> Result<HostArray, NpyError> {
    let Header { dtype, dims, data_bytes, .. } = header;
    let shape = ArrayShape::new(dtype, dims.clone()).to_string();
    if data_bytes > limit {
        return Err(NpyError::TooLarge { path: path.to_string(), shape, bytes: data_bytes, limit });
    }
    if let Some(found) = available {
        if found != data_bytes {
            return Err(NpyError::Truncated { path: path.to_string(), expected: data_bytes, found });
        }
    }
    // Reserve only what is known to be there: a header may promise more than the reader holds.
    const UNCHECKED_RESERVE: u64 = 64 << 20;
    let reserve = if available.is_some() { data_bytes } else { data_bytes.min(UNCHECKED_RESERVE) };
    let mut bytes = Vec::with_capacity(reserve as usize);
    reader
        .take(data_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| NpyError::Io { path: path.to_string(), source })?;
    if bytes.len() as u64 != data_bytes {
        return Err(NpyError::Truncated { path: path.to_string(), expected: data_bytes, found: bytes.len() as u64 });
    }
    if dtype == DType::Pred {
        // numpy writes bools as 0/1 bytes already; normalise anything else.
        bytes.iter_mut().for_each(|b| *b = (*b != 0) as u8);
    }
    Ok(HostArray { dtype, dims, bytes })
}

/// Reads one `.npy` array from a reader holding nothing else; `path` is used in messages.
pub fn read_npy_from(mut reader: impl Read, path: &Path) -> Result<HostArray, NpyError> {
    let name = path.display().to_string();
    let header = read_header(&mut reader, &name)?;
    read_data(reader, header, None, u64::MAX, &name)
}

/// Reads a `.npy` file (a regular file only) holding at most `limit` bytes of data.
pub fn read_npy_limited(path: &Path, limit: u64) -> Result<HostArray, NpyError> {
    let name = path.display().to_string();
    let file = open_regular(path)?;
    let len = file.metadata().map_err(io_err(path))?.len();
    let mut reader = io::BufReader::new(file);
    let header = read_header(&mut reader, &name)?;
    let available = len.saturating_sub(header.header_bytes);
    read_data(reader, header, Some(available), limit, &name)
}

/// Reads a `.npy` file within the process's memory limit (see [`crate::limits::memory_limit`]).
pub fn read_npy(path: &Path) -> Result<HostArray, NpyError> {
    read_npy_limited(path, crate::limits::memory_limit().unwrap_or(u64::MAX))
}

/// Opens a regular file (never a FIFO, which would block, or a device).
fn open_regular(path: &Path) -> Result<fs::File, NpyError> {
    let name = path.display().to_string();
    let meta = fs::metadata(path).map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(NpyError::NotRegular { path: name, kind: crate::limits::file_kind(&meta) });
    }
    let file = fs::File::open(path).map_err(io_err(path))?;
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(NpyError::NotRegular { path: name, kind: crate::limits::file_kind(&meta) });
    }
    Ok(file)
}

/// Checks the end-of-central-directory record of a zip file before the zip reader sees it:
/// an entry count the directory cannot hold would make it reserve memory for a lie.
fn check_zip_directory(file: &mut fs::File, len: u64, path: &str) -> Result<(), NpyError> {
    use std::io::{Seek, SeekFrom};
    let bad = |reason: &str| NpyError::BadArchive { path: path.to_string(), reason: reason.to_string() };
    // The record is 22 bytes plus a comment of up to 65,535 bytes, at the end.
    let tail_len = len.min(22 + 65_535);
    let mut tail = vec![0u8; tail_len as usize];
    file.seek(SeekFrom::Start(len - tail_len)).map_err(io_err(Path::new(path)))?;
    file.read_exact(&mut tail).map_err(io_err(Path::new(path)))?;
    let at = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or_else(|| bad("no end-of-central-directory record"))?;
    let u16_at = |i: usize| u16::from_le_bytes([tail[at + i], tail[at + i + 1]]) as u64;
    let u32_at = |i: usize| u32::from_le_bytes(tail[at + i..at + i + 4].try_into().unwrap()) as u64;
    let (entries, dir_bytes) = (u16_at(10), u32_at(12));
    // zip64 archives mark these fields as saturated; their real values are in a zip64
    // record the zip reader checks against the file's length itself.
    if entries != 0xffff && dir_bytes != 0xffff_ffff && entries * 46 > dir_bytes.min(len) {
        return Err(bad(&format!("the directory claims {entries} entries in {dir_bytes} bytes")));
    }
    file.seek(SeekFrom::Start(0)).map_err(io_err(Path::new(path)))?;
    Ok(())
}

/// Reads every `arr_K` array of an `.npz` archive, in K order, with at most `limit`
/// bytes of array data in all.
pub fn read_npz_limited(path: &Path, limit: u64) -> Result<Vec<HostArray>, NpyError> {
    let name = path.display().to_string();
    let mut file = open_regular(path)?;
    let len = file.metadata().map_err(io_err(path))?.len();
    check_zip_directory(&mut file, len, &name)?;
    let mut archive = npyz::npz::NpzArchive::new(io::BufReader::new(file))
        .map_err(|e| NpyError::BadArchive { path: name.clone(), reason: e.to_string() })?;
    let mut arrays = Vec::new();
    let mut used = 0u64;
    for k in 0.. {
        let sub = format!("{name}[arr_{k}]");
        let mut entry = match archive.zip_archive().by_name(&format!("arr_{k}.npy")) {
            Ok(entry) => entry,
            Err(e) if e.to_string().contains("not found") => break,
            Err(e) => return Err(NpyError::BadArchive { path: sub, reason: e.to_string() }),
        };
        let header = read_header(&mut entry, &sub)?;
        let array = read_data(entry, header, None, limit.saturating_sub(used), &sub)?;
        used += array.bytes.len() as u64;
        arrays.push(array);
    }
    if arrays.is_empty() {
        return Err(NpyError::EmptyArchive { path: name });
    }
    Ok(arrays)
}

/// Reads every array of an `.npz` archive in archive order (what `np.savez` wrote, keyword
/// arguments included), each with its name (the entry without `.npy`), with at most `limit`
/// bytes of array data in all.
pub fn read_npz_named(path: &Path, limit: u64) -> Result<Vec<(String, HostArray)>, NpyError> {
    let name = path.display().to_string();
    let mut file = open_regular(path)?;
    let len = file.metadata().map_err(io_err(path))?.len();
    check_zip_directory(&mut file, len, &name)?;
    let mut archive = npyz::npz::NpzArchive::new(io::BufReader::new(file))
        .map_err(|e| NpyError::BadArchive { path: name.clone(), reason: e.to_string() })?;
    let zip = archive.zip_archive();
    let mut arrays = Vec::new();
    let mut used = 0u64;
    for k in 0..zip.len() {
        let mut entry =
            zip.by_index(k).map_err(|e| NpyError::BadArchive { path: name.clone(), reason: e.to_string() })?;
        let Some(key) = entry.name().strip_suffix(".npy").map(str::to_string) else { continue };
        let sub = format!("{name}[{key}]");
        let header = read_header(&mut entry, &sub)?;
        let array = read_data(entry, header, None, limit.saturating_sub(used), &sub)?;
        used += array.bytes.len() as u64;
        arrays.push((key, array));
    }
    if arrays.is_empty() {
        return Err(NpyError::EmptyArchive { path: name });
    }
    Ok(arrays)
}

/// Reads every `arr_K` array of an `.npz` archive within the process's memory limit.
pub fn read_npz(path: &Path) -> Result<Vec<HostArray>, NpyError> {
    read_npz_limited(path, crate::limits::memory_limit().unwrap_or(u64::MAX))
}

/// Serialises an array as a version-1.0 `.npy` file.
pub fn npy_bytes(array: &HostArray) -> Result<Vec<u8>, String> {
    let descr = descr_for(array.dtype).ok_or_else(|| format!("no .npy element type for {}", array.dtype))?;
    if array.dims.iter().any(|&d| d < 0) {
        return Err(format!("{} has a dynamic dimension; a .npy file cannot hold it", array.describe()));
    }
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
            if dtype.is_float() && dtype.bit_width() <= 8 {
                assert_eq!(decoded.dtype, DType::U8, "8- and 4-bit floats are stored as their bits");
                decoded.dtype = dtype;
            }
            if dtype.bit_width() < 8 && dtype.is_integer() {
                decoded.dtype = dtype;
            }
            assert_eq!(decoded, array, "{dtype}");
        }
    }

    #[test]
    fn element_types_that_are_not_ascii_are_unsupported() {
        // Found by fuzzing: splitting the byte-order character off panicked inside a UTF-8 character.
        assert_eq!(dtype_from_descr("\u{101}1"), None);
        assert_eq!(dtype_from_descr("<f4"), Some(DType::F32));
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
