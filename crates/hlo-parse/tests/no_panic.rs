//! The parser never panics: truncated prefixes and byte-mutated copies of real modules
//! parse to `Ok` or `Err`. Whatever parses also prints and re-parses to an equal module.

use std::path::{Path, PathBuf};

/// xorshift64*: a fixed-seed generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["tests/cases/ok", "tests/cases/noncanon"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            files.push(entry.path());
        }
    }
    // A few real dumps, small enough to keep the test quick.
    for sample in ["argmax", "fori_loop", "lax_cond", "sort", "jax_random", "conv2d_grad"] {
        for name in ["module.hlo", "module.opt.hlo"] {
            let path = root.join("../../hlo-samples").join(sample).join(name);
            if path.exists() {
                files.push(path);
            }
        }
    }
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

/// Parses `text`; if it parses, printing and re-parsing must give the same module.
fn exercise(text: &str, what: &dyn Fn() -> String) {
    if let Ok(module) = hlo_parse::parse_module(text) {
        let printed = hlo_ir::print::print_module(&module);
        match hlo_parse::parse_module(&printed) {
            Ok(again) => assert!(again == module, "{}: printed module re-parses differently:\n{printed}", what()),
            Err(e) => panic!("{}: printed module does not parse: {e}\n{printed}", what()),
        }
    }
}

#[test]
fn truncated_prefixes() {
    for (path, text) in corpus() {
        let mut cut = 0;
        while cut < text.len() {
            if text.is_char_boundary(cut) {
                exercise(&text[..cut], &|| format!("{} cut at {cut}", path.display()));
            }
            cut += 50;
        }
    }
}

/// Bytes that tend to change the structure of HLO text.
const INTERESTING: &[u8] = b"{}[](),=%:\"\n\\ /*-._0123456789xefnaT<>?";

#[test]
fn byte_mutations() {
    let corpus = corpus();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..4000 {
        let (path, text) = &corpus[rng.below(corpus.len())];
        let mut bytes = text.as_bytes().to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] = INTERESTING[rng.below(INTERESTING.len())],
                1 => {
                    let end = (at + 1 + rng.below(16)).min(bytes.len());
                    bytes.drain(at..end);
                }
                2 => {
                    let end = (at + 1 + rng.below(32)).min(bytes.len());
                    let copy = bytes[at..end].to_vec();
                    let to = rng.below(bytes.len());
                    bytes.splice(to..to, copy);
                }
                _ => bytes[at] = rng.next() as u8,
            }
            if bytes.is_empty() {
                break;
            }
        }
        let mutated = String::from_utf8_lossy(&bytes);
        exercise(&mutated, &|| format!("round {round} on {}", path.display()));
    }
}

#[test]
fn hostile_inputs() {
    let deep_tuple = format!(
        "HloModule m\nENTRY %e {{\n  ROOT %p = {}f32[]{} parameter(0)\n}}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let deep_literal = format!(
        "HloModule m\nENTRY %e {{\n  ROOT %c = f32[1] constant({}1{})\n}}",
        "{".repeat(100_000),
        "}".repeat(100_000)
    );
    let deep_value = format!("HloModule m\nENTRY %e {{\n  ROOT %p = f32[] parameter(0), x={}\n}}", "{".repeat(100_000));
    let huge_count = "HloModule m\nENTRY %e {\n  ROOT %c = f32[99999999999999] constant({1})\n}".to_string();
    let huge_param = "HloModule m\nENTRY %e {\n  ROOT %p = f32[] parameter(18446744073709551615)\n}".to_string();
    let many_dims =
        format!("HloModule m\nENTRY %e {{\n  ROOT %p = f32[{}] parameter(0)\n}}", vec!["1"; 10_000].join(","));
    for text in [deep_tuple, deep_literal, deep_value, huge_count, huge_param, many_dims] {
        exercise(&text, &|| "hostile input".to_string());
    }
    for text in [
        "",
        "%",
        "HloModule",
        "HloModule m\n%",
        "HloModule m\nENTRY",
        "\u{0}",
        "HloModule m\n%c {\n  %x = f32[] constant(nan(0x",
    ] {
        exercise(text, &|| format!("{text:?}"));
    }
}
