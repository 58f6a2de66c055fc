//! Fuzz target: the `.npy` reader on arbitrary bytes must not panic or allocate what
//! the header merely claims; an array it accepts must write back to the same bytes' meaning.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(array) = hlo_run::npy::read_npy_from(data, Path::new("fuzz.npy")) else { return };
    assert_eq!(array.bytes.len() as u64, array.num_elements() * array.dtype.byte_size() as u64);
    let Ok(written) = hlo_run::npy::npy_bytes(&array) else { return };
    let mut again = hlo_run::npy::read_npy_from(&written[..], Path::new("again.npy")).expect("our own .npy re-reads");
    if array.dtype == hlo_ir::DType::BF16 {
        again.dtype = hlo_ir::DType::BF16; // written as its <u2 bits
    }
    assert_eq!(again, array);
});
