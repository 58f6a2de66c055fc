//! Bounds on what input can make the tool do: how many bytes it may hold, and which
//! files it reads and how much of them.
//!
//! Every allocation whose size comes from input (a `.npy` header, a shape in the module,
//! `--random-inputs`) is checked against one memory limit first, so a hostile or mistaken
//! size is a clear error instead of an abort in the allocator. The limit is
//! `HLO_MEMORY_LIMIT` (bytes, or with a `K`/`M`/`G`/`T` suffix), by default three quarters
//! of the memory available when the tool starts.
//!
//! Files are read only when they are regular files (a FIFO would block forever, a device
//! such as `/dev/zero` never ends), and never past a size limit.

use crate::user_error;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Used when neither `HLO_MEMORY_LIMIT` nor `/proc/meminfo` says anything.
const FALLBACK_MEMORY_LIMIT: u64 = 8 << 30;

/// The most bytes of module text read (XLA dumps with large constants reach hundreds of MiB).
pub const MAX_MODULE_BYTES: u64 = 1 << 30;

/// The memory limit: `HLO_MEMORY_LIMIT`, else 3/4 of `MemAvailable`, else 8 GiB.
/// A malformed `HLO_MEMORY_LIMIT` is a user error.
pub fn memory_limit() -> anyhow::Result<u64> {
    if let Ok(text) = std::env::var("HLO_MEMORY_LIMIT") {
        return parse_size(&text).ok_or_else(|| {
            user_error(format!("HLO_MEMORY_LIMIT={text:?} is not a size (examples: 8G, 512M, 1000000)"))
        });
    }
    Ok(available_memory().map_or(FALLBACK_MEMORY_LIMIT, |bytes| bytes / 4 * 3))
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `123`, `64K`, `512M`, `8G`, `1T` (powers of 1024; a trailing `B` or `iB` is allowed).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (digits, shift) = match t.chars().last()? {
        'k' | 'K' => (&t[..t.len() - 1], 10),
        'm' | 'M' => (&t[..t.len() - 1], 20),
        'g' | 'G' => (&t[..t.len() - 1], 30),
        't' | 'T' => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// `1.5 GiB`-style text for messages.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Fails with a user error when `bytes` more than `limit` would be needed for `what`.
pub fn check_budget(what: &str, bytes: u64, limit: u64) -> anyhow::Result<()> {
    if bytes > limit {
        return Err(user_error(format!(
            "{what} needs {} ({bytes} bytes), more than the memory limit of {}\n  \
             hint: HLO_MEMORY_LIMIT raises the limit if the machine has the memory",
            human_bytes(bytes),
            human_bytes(limit)
        )));
    }
    Ok(())
}

/// Opens `path` for reading if it is a regular file (following symlinks); returns it with its length.
/// The check comes before `open`, which blocks on a FIFO with no writer.
pub fn open_regular(path: &Path) -> anyhow::Result<(File, u64)> {
    let display = path.display();
    let meta = std::fs::metadata(path).map_err(|e| user_error(format!("{display}: {e}")))?;
    if !meta.is_file() {
        return Err(user_error(format!("{display}: not a regular file ({})", file_kind(&meta))));
    }
    let file = File::open(path).map_err(|e| user_error(format!("{display}: {e}")))?;
    // The path may have been swapped between the check and the open.
    let meta = file.metadata().map_err(|e| user_error(format!("{display}: {e}")))?;
    if !meta.is_file() {
        return Err(user_error(format!("{display}: not a regular file ({})", file_kind(&meta))));
    }
    Ok((file, meta.len()))
}

/// What kind of file `meta` describes, for messages.
pub fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a plain file"
    }
}

/// Reads a whole regular file of at most `limit` bytes as UTF-8 text.
pub fn read_text(path: &Path, limit: u64) -> anyhow::Result<String> {
    let bytes = read_bytes(path, limit)?;
    text_of(path, bytes)
}

/// The bytes of `path` as UTF-8 text, or an error at the first invalid byte.
pub fn text_of(path: &Path, bytes: Vec<u8>) -> anyhow::Result<String> {
    let display = path.display();
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let (line, col) = crate::load::line_col(&String::from_utf8_lossy(&e.as_bytes()[..at]), at);
        user_error(format!("{display}:{line}:{col}: the file is not UTF-8 text (byte {at})"))
    })
}

/// Reads a regular file of at most `limit` bytes.
pub fn read_bytes(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    let display = path.display();
    let (file, len) = open_regular(path)?;
    if len > limit {
        return Err(user_error(format!(
            "{display}: the file has {} ({len} bytes), more than the {} a module may have",
            human_bytes(len),
            human_bytes(limit)
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` guards against a file that grows while it is read.
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| user_error(format!("{display}: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(user_error(format!("{display}: the file grew past {} while it was read", human_bytes(limit))));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("8G"), Some(8 << 30));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("1T"), Some(1 << 40));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn special_files_are_refused_before_they_are_opened() {
        let err = read_text(Path::new("/dev/zero"), MAX_MODULE_BYTES).unwrap_err();
        assert!(err.to_string().contains("not a regular file (a character device)"), "{err}");
        let err = read_text(Path::new("/"), MAX_MODULE_BYTES).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
    }
}
