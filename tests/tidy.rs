//! Tidy: the project's code habits, checked as an ordinary test
//! (rust-analyzer's `tidy.rs`): every Rust file opens with a `//!` doc, no
//! ignored or should-panic tests, no `println!` in library crates, and
//! `unsafe` only in `hlo-vulkan` (every other library crate forbids it).

use hlo_tests::repo_root;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "target" && name != "snapshots" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn all_files() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in ["crates", "tests", "xtask"] {
        rust_files(&root.join(dir), &mut files);
    }
    files
}

/// Library source (not tests, examples, benches or binaries' main).
fn is_library_source(path: &Path) -> bool {
    let s = path.to_string_lossy();
    s.contains("/src/") && !s.contains("/hlo-run/") && !s.contains("xtask") && !s.ends_with("main.rs")
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let bad: Vec<String> = all_files()
        .into_iter()
        .filter(|p| !std::fs::read_to_string(p).unwrap().trim_start().starts_with("//!"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(bad.is_empty(), "files without a leading `//!` doc:\n{}", bad.join("\n"));
}

#[test]
fn no_ignored_or_should_panic_tests() {
    let (ignore, should_panic) = (concat!("#[", "ignore"), concat!("#[", "should_panic"));
    let bad: Vec<String> = all_files()
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.contains(ignore) || text.contains(should_panic)
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(bad.is_empty(), "assert today's behaviour with a FIXME instead:\n{}", bad.join("\n"));
}

#[test]
fn library_crates_do_not_print() {
    let needle = concat!("println", "!");
    let bad: Vec<String> = all_files()
        .into_iter()
        .filter(|p| is_library_source(p))
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            // Unit-test modules at the end of a file may print.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            code.contains(needle)
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(bad.is_empty(), "library code logs through `tracing`, not stdout:\n{}", bad.join("\n"));
}

#[test]
fn unsafe_only_in_the_runtime_crate() {
    let root = repo_root().join("crates");
    let mut bad = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap().flatten() {
        let krate = entry.file_name().to_string_lossy().to_string();
        let lib = entry.path().join("src/lib.rs");
        if !lib.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&lib).unwrap();
        let allowed = krate == "hlo-vulkan" || krate == "hlo-pjrt";
        if !allowed && !text.contains("#![forbid(unsafe_code)]") {
            bad.push(format!("{krate}: src/lib.rs lacks #![forbid(unsafe_code)]"));
        }
        if allowed {
            let mut files = Vec::new();
            rust_files(&entry.path().join("src"), &mut files);
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                for (i, line) in lines.iter().enumerate() {
                    let code = line.split("//").next().unwrap_or("");
                    if code.contains("unsafe {") || code.trim_end().ends_with("unsafe") {
                        let window = &lines[i.saturating_sub(4)..i];
                        if !window.iter().any(|l| l.contains("SAFETY:")) && !line.contains("SAFETY:") {
                            bad.push(format!(
                                "{}:{}: unsafe block without a `// SAFETY:` comment",
                                file.display(),
                                i + 1
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
