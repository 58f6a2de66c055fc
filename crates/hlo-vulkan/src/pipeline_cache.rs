//! The on-disk `VkPipelineCache`: loaded before pipelines are built, saved after.
//!
//! Pipeline creation runs the driver's shader compiler (LLVM on lavapipe: 0.3-8 ms per kernel), so a cache on
//! disk saves most of the build time of a program seen before.
//! One file per device and driver: `<dir>/<device uuid>-<driver version>.vkpc`.
//! The file's header is checked against the device's `pipelineCacheUUID` before the driver sees it, and a file
//! that does not match is ignored, so a driver update never feeds stale data to the driver.
//! Disk errors are logged and otherwise ignored: the cache only ever makes things faster.
//! Only a regular file of at most [`MAX_CACHE_BYTES`] is read: anything else at that path (a FIFO,
//! which would block the read forever, a device, a directory) is ignored with a warning.

use std::path::{Path, PathBuf};

use crate::context::DeviceInfo;

/// Length of `VkPipelineCacheHeaderVersionOne`.
const HEADER_LEN: usize = 32;

/// The largest cache file read (lavapipe's caches are a few MiB).
pub(crate) const MAX_CACHE_BYTES: u64 = 1 << 30;

/// The cache file for this device inside `dir`.
pub(crate) fn cache_file(dir: &Path, info: &DeviceInfo) -> PathBuf {
    let uuid: String = info.device_uuid.iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{uuid}-{:08x}.vkpc", info.driver_version))
}

/// The cache bytes in `path`, or nothing when it is missing, unreadable, or made for another device or driver.
pub(crate) fn load(path: &Path, info: &DeviceInfo) -> Vec<u8> {
    let data = match read_regular(path) {
        Ok(data) => data,
        Err(err) => {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), %err, "cannot read the pipeline cache; ignoring it");
            }
            return Vec::new();
        }
    };
    if header_matches(&data, info) {
        data
    } else {
        tracing::info!(path = %path.display(), "ignoring a pipeline cache made for another device or driver");
        Vec::new()
    }
}

/// The bytes of `path` if it is a regular file of at most [`MAX_CACHE_BYTES`]. The type is checked
/// before opening (opening a FIFO for reading blocks until a writer appears) and again after.
fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let not_regular = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    if meta.len() > MAX_CACHE_BYTES {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "larger than 1 GiB"));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_CACHE_BYTES).read_to_end(&mut data)?;
    Ok(data)
}

/// Writes `data` to `path` through a temporary file and a rename, so that concurrent builds never see a
/// half-written cache.
pub(crate) fn store(path: &Path, data: &[u8]) {
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        // `create_new` fails on anything already there instead of opening it: a FIFO
        // would block the open until a reader appears.
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        std::io::Write::write_all(&mut file, data)?;
        drop(file);
        std::fs::rename(&tmp, path)
    };
    if let Err(err) = write() {
        tracing::warn!(path = %path.display(), %err, "cannot write the pipeline cache");
    }
}

/// Checks `VkPipelineCacheHeaderVersionOne`: length, version 1, vendor, device and cache UUID.
fn header_matches(data: &[u8], info: &DeviceInfo) -> bool {
    if data.len() < HEADER_LEN {
        return false;
    }
    let word = |i: usize| u32::from_ne_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    word(0) as usize >= HEADER_LEN
        && word(4) == 1
        && word(8) == info.vendor_id
        && word(12) == info.device_id
        && data[16..32] == info.pipeline_cache_uuid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read() {
        let dir = std::env::temp_dir().join(format!("hlo-vulkan-cache-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo.vkpc");
        let _ = std::fs::remove_file(&fifo);
        // A FIFO with no writer: opening it for reading would block forever.
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
        if made {
            let err = read_regular(&fifo).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
            // Storing over it replaces it instead of opening it.
            store(&fifo, b"data");
            assert_eq!(read_regular(&fifo).unwrap(), b"data");
        }
        assert_eq!(read_regular(&dir).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
        assert!(read_regular(Path::new("/dev/zero")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
