//! Truncated and corrupted artifacts give errors, never panics: every prefix of every fixture,
//! and every byte of every fixture flipped in three ways.

use std::path::Path;

fn artifacts() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "mlirbc").then(|| (path.display().to_string(), std::fs::read(&path).unwrap()))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty());
    out
}

/// Reads and lowers; a panic fails the test with the input that caused it.
fn survive(what: &str, bytes: &[u8]) -> bool {
    match std::panic::catch_unwind(|| hlo_stablehlo::read_portable_artifact(bytes).is_ok()) {
        Ok(ok) => ok,
        Err(_) => panic!("{what}: the reader panicked"),
    }
}

#[test]
fn every_prefix_is_an_error() {
    for (name, bytes) in artifacts() {
        for len in 0..bytes.len() {
            assert!(!survive(&format!("{name}[..{len}]"), &bytes[..len]), "{name}[..{len}] read without error");
        }
    }
}

#[test]
fn flipped_bytes_never_panic() {
    for (name, bytes) in artifacts() {
        let mut copy = bytes.clone();
        for i in 0..bytes.len() {
            for pattern in [0xFFu8, 0x01, 0x80] {
                copy[i] = bytes[i] ^ pattern;
                survive(&format!("{name} with byte {i} ^ {pattern:#x}"), &copy);
            }
            for value in [0x00u8, 0xFF] {
                copy[i] = value;
                survive(&format!("{name} with byte {i} = {value:#x}"), &copy);
            }
            copy[i] = bytes[i];
        }
    }
}

#[test]
fn errors_name_offset_and_expectation() {
    let err = hlo_stablehlo::read_portable_artifact(b"ML\xEFR").unwrap_err();
    assert_eq!(err.to_string(), "byte 4: expected the bytecode version (a byte), found the end");
    let err = hlo_stablehlo::read_portable_artifact(b"not bytecode").unwrap_err();
    assert_eq!(err.to_string(), "byte 0: expected the magic number ML\\xEFR (MLIR bytecode)");
}

/// Text: every prefix and many single-character edits of a few fixtures parse to an error or a
/// module, never a panic.
#[test]
fn text_never_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for file in ["cond.mlir", "cond.generic.mlir", "reduction.mlir", "while_loop.mlir"] {
        let src = std::fs::read_to_string(dir.join(file)).unwrap();
        let run = |what: &str, text: &str| {
            if std::panic::catch_unwind(|| hlo_stablehlo::parse_text(text).is_ok()).is_err() {
                panic!("{file} {what}: the text reader panicked");
            }
        };
        for (i, _) in src.char_indices() {
            run(&format!("[..{i}]"), &src[..i]);
        }
        let bytes = src.as_bytes();
        for i in 0..bytes.len() {
            for c in [b'(', b'<', b'%', b'0', b' ', b'"', b'{', b'-', b'x'] {
                let mut copy = bytes.to_vec();
                copy[i] = c;
                if let Ok(text) = std::str::from_utf8(&copy) {
                    run(&format!("byte {i} = {}", c as char), text);
                }
            }
        }
    }
    let err = hlo_stablehlo::parse_text(
        "module {\n  func.func @main(%a: tensor<2xf32>) {\n    return %b : tensor<2xf32>\n  }\n}",
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "3:12: expected a defined value (%b#0), found `%b : tensor<2xf32>`");
}
