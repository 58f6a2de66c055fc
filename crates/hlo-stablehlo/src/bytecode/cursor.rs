//! A bounds-checked cursor over a byte slice: MLIR's prefix varints, zigzag varints,
//! null-terminated strings and sections. Every read returns an error carrying the absolute
//! byte offset instead of panicking, so garbage input can never crash the reader.

use crate::Error;

/// Reads primitives from `data`, which starts at absolute offset `base` in the artifact.
#[derive(Clone, Debug)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8], base: usize) -> Cursor<'a> {
        Cursor { data, pos: 0, base }
    }

    /// Absolute offset of the next byte in the artifact.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub fn error(&self, expected: impl Into<String>) -> Error {
        Error::Bytecode { offset: self.offset(), expected: expected.into() }
    }

    pub fn byte(&mut self, what: &str) -> Result<u8, Error> {
        let b = *self.data.get(self.pos).ok_or_else(|| self.error(format!("{what} (a byte), found the end")))?;
        self.pos += 1;
        Ok(b)
    }

    pub fn bytes(&mut self, n: u64, what: &str) -> Result<&'a [u8], Error> {
        let n = usize::try_from(n).map_err(|_| self.error(format!("{what} of a sane size")))?;
        if n > self.remaining() {
            return Err(self.error(format!("{what} of {n} bytes, only {} left", self.remaining())));
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// A PrefixVarInt: the count of trailing zero bits of the first byte is the number of
    /// additional bytes; a zero first byte means eight full bytes follow.
    pub fn varint(&mut self, what: &str) -> Result<u64, Error> {
        let first = self.byte(what)?;
        if first & 1 == 1 {
            return Ok(u64::from(first >> 1));
        }
        if first == 0 {
            let rest = self.bytes(8, what)?;
            let mut buf = [0u8; 8];
            buf.copy_from_slice(rest);
            return Ok(u64::from_le_bytes(buf));
        }
        let extra = first.trailing_zeros() as usize;
        let rest = self.bytes(extra as u64, what)?;
        let mut buf = [0u8; 8];
        buf[0] = first;
        buf[1..=extra].copy_from_slice(rest);
        Ok(u64::from_le_bytes(buf) >> (extra + 1))
    }

    /// A zigzag-encoded signed varint.
    pub fn svarint(&mut self, what: &str) -> Result<i64, Error> {
        let v = self.varint(what)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A varint whose low bit is a flag: `(value, flag)`.
    pub fn varint_flag(&mut self, what: &str) -> Result<(u64, bool), Error> {
        let v = self.varint(what)?;
        Ok((v >> 1, v & 1 == 1))
    }

    /// A count that must be plausible for the bytes left (each element takes at least one byte),
    /// so a corrupted count can never make us allocate gigabytes.
    pub fn count(&mut self, what: &str) -> Result<usize, Error> {
        let at = self.offset();
        let n = self.varint(what)?;
        if n > self.remaining() as u64 {
            return Err(Error::Bytecode {
                offset: at,
                expected: format!("{what}: a count of at most the bytes left, found {n}"),
            });
        }
        Ok(n as usize)
    }

    pub fn cstr(&mut self, what: &str) -> Result<&'a str, Error> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let len =
            rest.iter().position(|&b| b == 0).ok_or_else(|| self.error(format!("{what}: a null-terminated string")))?;
        let s = std::str::from_utf8(&rest[..len]).map_err(|_| self.error(format!("{what}: UTF-8")))?;
        self.pos += len + 1;
        Ok(s)
    }

    /// A section header and its data: `idAndIsAligned: byte, length: varint, [alignment: varint,
    /// padding 0xCB*]`, data. Alignment is relative to the start of the artifact.
    pub fn section(&mut self) -> Result<(u8, Cursor<'a>), Error> {
        let id_byte = self.byte("a section id")?;
        let len = self.varint("a section length")?;
        if id_byte & 0x80 != 0 {
            let align = self.varint("a section alignment")?;
            if align == 0 || !align.is_power_of_two() || align > 1 << 16 {
                return Err(self.error(format!("a power-of-two section alignment, found {align}")));
            }
            while self.offset() as u64 & (align - 1) != 0 {
                if self.byte("section padding")? != 0xCB {
                    return Err(self.error("padding bytes 0xCB"));
                }
            }
        }
        let base = self.offset();
        let data = self.bytes(len, "section data")?;
        Ok((id_byte & 0x7f, Cursor::new(data, base)))
    }
}
