//! Saved programs: `found/` (failures the tester found) and `regressions/` (failures whose
//! bug is fixed, replayed by `tests/regressions.rs`).
//!
//! A saved program is HLO text printed by `hlo-ir`'s printer, preceded by `//` header lines
//! (the parser skips them) that say how it was found and how to replay it:
//!
//! ```text
//! // hlo-difftest: seed=1234 profile=small data=tame mode=pipeline
//! // failure: mismatch signature=mismatch[add,reduce] max-error=1.0e0
//! // detail: output 0: 2 of 2 elements differ ...
//! // replay: cargo run --release -p hlo-difftest -- replay crates/hlo-difftest/found/1a2b3c4d-mismatch-add-reduce.hlo
//! ```
//!
//! Its inputs sit next to it as `<same name>.npz` (`arr_0`, `arr_1`, ... in parameter order),
//! which `hlo-run MODULE INPUTS.npz` also reads; a program without parameters has none.

use crate::exec::{FailKind, Mode};
use hlo_ir::Module;
use hlo_run::npy::HostArray;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a saved program could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CorpusError + '_ {
    move |e| CorpusError::Io { path: path.display().to_string(), message: e.to_string() }
}

/// The header of a saved program.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Header {
    pub seed: Option<u64>,
    pub profile: String,
    pub data: String,
    pub mode: Option<Mode>,
    pub kind: Option<FailKind>,
    pub signature: String,
    pub max_err: Option<f64>,
    pub detail: String,
    /// Free text after `// note:` lines (why a regression exists, which bug it pins).
    pub note: String,
}

/// A program read back from disk.
#[derive(Clone, Debug)]
pub struct Saved {
    pub path: PathBuf,
    pub header: Header,
    pub module: Module,
    pub inputs: Vec<HostArray>,
}

/// The crate's own folders: `found/` and `regressions/`.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn found_dir() -> PathBuf {
    crate_dir().join("found")
}

pub fn regressions_dir() -> PathBuf {
    crate_dir().join("regressions")
}

/// FNV-1a, for short stable names.
pub fn short_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    format!("{:08x}", h as u32)
}

/// `mismatch[add,reduce]` -> `mismatch-add-reduce` (at most a few ops, file-name safe).
pub fn slug(signature: &str) -> String {
    let mut s: String = signature
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    s.truncate(60);
    s.trim_end_matches('-').to_string()
}

/// Writes `module` and its inputs into `dir`; returns the `.hlo` path.
pub fn save(dir: &Path, header: &Header, module: &Module, inputs: &[HostArray]) -> Result<PathBuf, CorpusError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let text = hlo_ir::print_module(module);
    let name = format!("{}-{}", short_hash(&text), slug(&header.signature));
    let path = dir.join(format!("{name}.hlo"));
    let mut out = String::new();
    out.push_str(&format!(
        "// hlo-difftest: seed={} profile={} data={} mode={}\n",
        header.seed.map_or("-".to_string(), |s| s.to_string()),
        if header.profile.is_empty() { "-" } else { &header.profile },
        if header.data.is_empty() { "-" } else { &header.data },
        header.mode.map_or("pipeline", |m| m.name()),
    ));
    if let Some(kind) = header.kind {
        out.push_str(&format!(
            "// failure: {} signature={} max-error={:.1e}\n",
            kind.name(),
            header.signature,
            header.max_err.unwrap_or(f64::INFINITY)
        ));
    }
    if !header.detail.is_empty() {
        out.push_str(&format!("// detail: {}\n", header.detail.replace('\n', " ")));
    }
    for line in header.note.lines() {
        out.push_str(&format!("// note: {line}\n"));
    }
    // Inputs of huge programs stay out of the repository; the seed regenerates them.
    let input_bytes: usize = inputs.iter().map(|a| a.bytes.len()).sum();
    let keep_inputs = input_bytes <= MAX_SAVED_INPUT_BYTES;
    if !keep_inputs {
        out.push_str(&format!(
            "// note: inputs not saved ({input_bytes} bytes); `hlo-difftest gen --seed` regenerates the program and its data\n"
        ));
    }
    let folder = dir.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
    out.push_str(&format!(
        "// replay: cargo run --release -p hlo-difftest -- replay crates/hlo-difftest/{folder}/{name}.hlo\n"
    ));
    out.push_str(&text);
    std::fs::write(&path, out).map_err(io(&path))?;
    if !inputs.is_empty() && keep_inputs {
        write_npz(&path.with_extension("npz"), inputs)?;
    }
    Ok(path)
}

/// Larger inputs are not written next to a saved program (they would bloat the repository).
pub const MAX_SAVED_INPUT_BYTES: usize = 4 << 20;

/// Writes arrays as `arr_0.npy`, `arr_1.npy`, ... in an uncompressed `.npz`.
pub fn write_npz(path: &Path, arrays: &[HostArray]) -> Result<(), CorpusError> {
    let file = std::fs::File::create(path).map_err(io(path))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let err = |e: String| CorpusError::Io { path: path.display().to_string(), message: e };
    for (k, a) in arrays.iter().enumerate() {
        let bytes = hlo_run::npy::npy_bytes(a).map_err(err)?;
        zip.start_file(format!("arr_{k}.npy"), options).map_err(|e| err(e.to_string()))?;
        zip.write_all(&bytes).map_err(|e| err(e.to_string()))?;
    }
    zip.finish().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Reads a saved program and its inputs (bf16 inputs come back typed from the module).
pub fn load(path: &Path) -> Result<Saved, CorpusError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let header = parse_header(&text);
    let module = hlo_parse::parse_module(&text).map_err(|e| CorpusError::Parse {
        path: path.display().to_string(),
        message: hlo_parse::render_error(&text, &path.display().to_string(), &e),
    })?;
    hlo_ir::verify::verify(&module)
        .map_err(|e| CorpusError::Parse { path: path.display().to_string(), message: e.to_string() })?;
    let shapes = module.entry_comp().param_shapes();
    let npz = path.with_extension("npz");
    let mut inputs = if shapes.is_empty() {
        Vec::new()
    } else {
        hlo_run::npy::read_npz(&npz)
            .map_err(|e| CorpusError::Io { path: npz.display().to_string(), message: e.to_string() })?
    };
    if inputs.len() != shapes.len() {
        return Err(CorpusError::Parse {
            path: npz.display().to_string(),
            message: format!("{} arrays for {} parameters", inputs.len(), shapes.len()),
        });
    }
    for (a, s) in inputs.iter_mut().zip(shapes) {
        if let Some(s) = s.as_array() {
            // bf16 travels as u16 bits.
            if a.dtype.byte_size() == s.dtype.byte_size() {
                a.dtype = s.dtype;
            }
        }
    }
    Ok(Saved { path: path.to_path_buf(), header, module, inputs })
}

/// Reads the `//` header lines at the top of a saved program.
pub fn parse_header(text: &str) -> Header {
    let mut h = Header::default();
    for line in text.lines().take_while(|l| l.starts_with("//")) {
        let line = line.trim_start_matches("//").trim();
        let (key, rest) = line.split_once(':').unwrap_or((line, ""));
        let rest = rest.trim();
        let fields = || rest.split_whitespace().filter_map(|kv| kv.split_once('='));
        match key {
            "hlo-difftest" => {
                for (k, v) in fields() {
                    match k {
                        "seed" => h.seed = v.parse().ok(),
                        "profile" => h.profile = v.to_string(),
                        "data" => h.data = v.to_string(),
                        "mode" => h.mode = Mode::from_name(v),
                        _ => {}
                    }
                }
            }
            "failure" => {
                h.kind = rest.split_whitespace().next().and_then(FailKind::from_name);
                for (k, v) in fields() {
                    match k {
                        "signature" => h.signature = v.to_string(),
                        "max-error" => h.max_err = v.parse().ok(),
                        _ => {}
                    }
                }
            }
            "detail" => h.detail = rest.to_string(),
            "note" => {
                if !h.note.is_empty() {
                    h.note.push('\n');
                }
                h.note.push_str(rest);
            }
            _ => {}
        }
    }
    h
}

/// Every `.hlo` file in `dir`, sorted.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "hlo")).collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Moves a found program (and its inputs) into `regressions/`; returns the new path.
pub fn promote(path: &Path) -> Result<PathBuf, CorpusError> {
    let dir = regressions_dir();
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let name = path
        .file_name()
        .ok_or_else(|| CorpusError::Io { path: path.display().to_string(), message: "not a file".into() })?;
    // Names are failure signatures, which two different programs can share: never replace a
    // regression already kept, number the newcomer instead.
    let mut dest = dir.join(name);
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut k = 2;
    while dest.exists() {
        dest = dir.join(format!("{stem}-{k}.hlo"));
        k += 1;
    }
    std::fs::rename(path, &dest).map_err(io(path))?;
    let npz = path.with_extension("npz");
    if npz.exists() {
        std::fs::rename(&npz, dest.with_extension("npz")).map_err(io(&npz))?;
    }
    Ok(dest)
}
