//! How host arrays map to device buffers, and the conversions at that boundary.
//!
//! On the device every element is a 32- or 64-bit word:
//! f32/s32/u32 are native, pred is a u32 0 or 1, s2/s4/s8/s16 are sign-extended to
//! i32, u2/u4/u8/u16 zero-extended to u32, f16/bf16 and the 8- and 4-bit floats are
//! stored as the f32 with the same value (kernels round every narrow-float result), and s64/u64/f64 are
//! native when the target has them. Host bytes are little-endian, row-major,
//! one element of the HLO type after another (numpy's layout).

use crate::minifloat::MiniFloat;
use hlo_ir::{ArrayData, DType};

/// The element format of a device buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceStorage {
    F32,
    I32,
    U32,
    F64,
    I64,
    U64,
}

impl DeviceStorage {
    /// The device format for elements of `dtype`, if this backend stores that type at all.
    pub fn of(dtype: DType) -> Option<DeviceStorage> {
        Some(match dtype {
            DType::Pred | DType::U2 | DType::U4 | DType::U8 | DType::U16 | DType::U32 => DeviceStorage::U32,
            DType::S2 | DType::S4 | DType::S8 | DType::S16 | DType::S32 => DeviceStorage::I32,
            DType::F16 | DType::BF16 | DType::F32 => DeviceStorage::F32,
            DType::S64 => DeviceStorage::I64,
            DType::U64 => DeviceStorage::U64,
            DType::F64 => DeviceStorage::F64,
            // A complex element is two words of its part type, interleaved as numpy stores it.
            DType::C64 => DeviceStorage::F32,
            DType::C128 => DeviceStorage::F64,
            // An 8- or 4-bit float is kept as the f32 of its value (crate::minifloat).
            d if MiniFloat::of(d).is_some() => DeviceStorage::F32,
            _ => return None,
        })
    }

    /// Device words per element of `dtype`: two for complex types (real, imaginary), else one.
    pub fn words_per_element(dtype: DType) -> usize {
        if dtype.is_complex() {
            2
        } else {
            1
        }
    }

    pub fn byte_size(self) -> usize {
        match self {
            DeviceStorage::F32 | DeviceStorage::I32 | DeviceStorage::U32 => 4,
            _ => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DeviceStorage::F32 => "f32",
            DeviceStorage::I32 => "i32",
            DeviceStorage::U32 => "u32",
            DeviceStorage::F64 => "f64",
            DeviceStorage::I64 => "i64",
            DeviceStorage::U64 => "u64",
        }
    }
}

/// One entry parameter leaf or result leaf as the host sees it, and how the device stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostIo {
    /// The HLO instruction (and tuple index) this leaf comes from, for messages.
    pub name: String,
    pub dtype: DType,
    pub dims: Vec<i64>,
    pub device: DeviceStorage,
}

impl HostIo {
    pub fn num_elements(&self) -> usize {
        self.dims.iter().map(|&d| d.max(0) as usize).product()
    }

    /// Bytes of the dense host array.
    pub fn host_bytes(&self) -> usize {
        self.num_elements() * self.dtype.byte_size()
    }

    /// Bytes of the device buffer (never zero: empty arrays get one word).
    pub fn device_bytes(&self) -> u64 {
        device_bytes(self.device, self.num_elements() * DeviceStorage::words_per_element(self.dtype))
    }

    /// Converts host bytes (little-endian, row-major) into the device format.
    ///
    /// Panics if `host` is not exactly [`HostIo::host_bytes`] long: that is a caller bug.
    pub fn to_device(&self, host: &[u8]) -> Vec<u8> {
        assert_eq!(host.len(), self.host_bytes(), "host buffer for `{}` has the wrong size", self.name);
        let mut out = Vec::with_capacity(self.device_bytes() as usize);
        let w = self.dtype.byte_size();
        let mini = MiniFloat::of(self.dtype);
        for chunk in host.chunks_exact(w) {
            if let Some(f) = mini {
                out.extend_from_slice(&f.decode(chunk[0]).to_le_bytes());
                continue;
            }
            match self.dtype {
                DType::Pred => out.extend_from_slice(&u32::from(chunk[0] != 0).to_le_bytes()),
                DType::U8 => out.extend_from_slice(&u32::from(chunk[0]).to_le_bytes()),
                DType::S8 => out.extend_from_slice(&i32::from(chunk[0] as i8).to_le_bytes()),
                // A byte per element, the value in the low bits (ml_dtypes' int4 has 0x0f for -1,
                // numpy's int8 0xff): wrapped to the width as the interpreter reads it.
                DType::U2 | DType::U4 => {
                    let mask = (1u8 << self.dtype.bit_width()) - 1;
                    out.extend_from_slice(&u32::from(chunk[0] & mask).to_le_bytes())
                }
                DType::S2 | DType::S4 => {
                    let shift = 8 - self.dtype.bit_width();
                    out.extend_from_slice(&i32::from(((chunk[0] << shift) as i8) >> shift).to_le_bytes())
                }
                DType::U16 => out.extend_from_slice(&u32::from(u16::from_le_bytes([chunk[0], chunk[1]])).to_le_bytes()),
                DType::S16 => out.extend_from_slice(&i32::from(i16::from_le_bytes([chunk[0], chunk[1]])).to_le_bytes()),
                DType::F16 => {
                    let v = half::f16::from_le_bytes([chunk[0], chunk[1]]).to_f32();
                    out.extend_from_slice(&v.to_le_bytes())
                }
                DType::BF16 => {
                    let v = half::bf16::from_le_bytes([chunk[0], chunk[1]]).to_f32();
                    out.extend_from_slice(&v.to_le_bytes())
                }
                _ => out.extend_from_slice(chunk),
            }
        }
        pad_empty(&mut out);
        out
    }

    /// Converts a device buffer's bytes back into host bytes.
    ///
    /// Panics if `device` is shorter than the array: that is a caller bug.
    pub fn from_device(&self, device: &[u8]) -> Vec<u8> {
        let n = self.num_elements() * DeviceStorage::words_per_element(self.dtype);
        let dw = self.device.byte_size();
        assert!(device.len() >= n * dw, "device buffer for `{}` is too small", self.name);
        let mut out = Vec::with_capacity(self.host_bytes());
        let mini = MiniFloat::of(self.dtype);
        for chunk in device[..n * dw].chunks_exact(dw) {
            let word = [chunk[0], chunk[1], chunk[2], chunk[3]];
            if let Some(f) = mini {
                out.push(f.encode(f32::from_le_bytes(word)));
                continue;
            }
            match self.dtype {
                DType::Pred => out.push(u8::from(u32::from_le_bytes(word) != 0)),
                DType::U8 | DType::S8 | DType::U2 | DType::U4 | DType::S2 | DType::S4 => out.push(chunk[0]),
                DType::U16 | DType::S16 => out.extend_from_slice(&chunk[..2]),
                DType::F16 => {
                    let v = half::f16::from_f32(f32::from_le_bytes(word));
                    out.extend_from_slice(&v.to_le_bytes())
                }
                DType::BF16 => {
                    let v = half::bf16::from_f32(f32::from_le_bytes(word));
                    out.extend_from_slice(&v.to_le_bytes())
                }
                _ => out.extend_from_slice(chunk),
            }
        }
        out
    }
}

/// Size of a device buffer of `n` elements (at least one word, a multiple of 4).
pub(crate) fn device_bytes(storage: DeviceStorage, n: usize) -> u64 {
    ((n * storage.byte_size()) as u64).max(4)
}

fn pad_empty(out: &mut Vec<u8>) {
    if out.is_empty() {
        out.extend_from_slice(&[0; 4]);
    }
}

/// The device bytes of a literal's array data, or `None` for types the device cannot hold.
pub(crate) fn array_data_to_device(data: &ArrayData, dtype: DType) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match data {
        ArrayData::Pred(v) => v.iter().for_each(|&b| out.extend_from_slice(&u32::from(b).to_le_bytes())),
        ArrayData::S8(v) => v.iter().for_each(|&x| out.extend_from_slice(&i32::from(x).to_le_bytes())),
        ArrayData::S16(v) => v.iter().for_each(|&x| out.extend_from_slice(&i32::from(x).to_le_bytes())),
        ArrayData::S32(v) => v.iter().for_each(|&x| out.extend_from_slice(&x.to_le_bytes())),
        ArrayData::S64(v) => v.iter().for_each(|&x| out.extend_from_slice(&x.to_le_bytes())),
        ArrayData::U8(v) => v.iter().for_each(|&x| out.extend_from_slice(&u32::from(x).to_le_bytes())),
        ArrayData::U16(v) => v.iter().for_each(|&x| out.extend_from_slice(&u32::from(x).to_le_bytes())),
        ArrayData::U32(v) => v.iter().for_each(|&x| out.extend_from_slice(&x.to_le_bytes())),
        ArrayData::U64(v) => v.iter().for_each(|&x| out.extend_from_slice(&x.to_le_bytes())),
        ArrayData::F16(v) => v.iter().for_each(|&x| out.extend_from_slice(&x.to_f32().to_le_bytes())),
        ArrayData::BF16(v) => v.iter().for_each(|&x| out.extend_from_slice(&x.to_f32().to_le_bytes())),
        ArrayData::F32(v) => v.iter().for_each(|&x| out.extend_from_slice(&x.to_le_bytes())),
        ArrayData::F64(v) => v.iter().for_each(|&x| out.extend_from_slice(&x.to_le_bytes())),
        ArrayData::Bits(v) => {
            let f = MiniFloat::of(dtype)?;
            v.iter().for_each(|&b| out.extend_from_slice(&f.decode(b).to_le_bytes()))
        }
        ArrayData::C64(_) | ArrayData::C128(_) => return None,
    }
    DeviceStorage::of(dtype)?;
    pad_empty(&mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(dtype: DType, n: i64) -> HostIo {
        HostIo { name: "x".into(), dtype, dims: vec![n], device: DeviceStorage::of(dtype).unwrap() }
    }

    #[test]
    fn narrow_types_round_trip() {
        let s8 = io(DType::S8, 3);
        let host = [0xffu8, 0x7f, 0x80];
        let dev = s8.to_device(&host);
        assert_eq!(dev, [(-1i32).to_le_bytes(), 127i32.to_le_bytes(), (-128i32).to_le_bytes()].concat());
        assert_eq!(s8.from_device(&dev), host);

        let bf = io(DType::BF16, 2);
        let host = [half::bf16::from_f32(1.5).to_le_bytes(), half::bf16::from_f32(-3.0).to_le_bytes()].concat();
        let dev = bf.to_device(&host);
        assert_eq!(dev, [1.5f32.to_le_bytes(), (-3.0f32).to_le_bytes()].concat());
        assert_eq!(bf.from_device(&dev), host);

        let p = io(DType::Pred, 2);
        assert_eq!(p.from_device(&p.to_device(&[1, 0])), [1, 0]);
        let empty = io(DType::F32, 0);
        assert_eq!(empty.to_device(&[]).len(), 4);
    }
}
