//! The on-disk `VkPipelineCache`: loaded before pipelines are built, saved after.
//!
//! Pipeline creation runs the driver's shader compiler (LLVM on lavapipe: 0.3-8 ms per kernel), so a cache on
//! disk saves most of the build time of a program seen before.
//! One file per device and driver: `<dir>/<device uuid>-<driver version>.vkpc`.
//! The file's header is checked against the device's `pipelineCacheUUID` before the driver sees it, and a file
//! that does not match is ignored, so a driver update never feeds stale data to the driver.
//! Disk errors are logged and otherwise ignored: the cache only ever makes things faster.

use std::path::{Path, PathBuf};

use crate::context::DeviceInfo;

/// Length of `VkPipelineCacheHeaderVersionOne`.
const HEADER_LEN: usize = 32;

/// The cache file for this device inside `dir`.
pub(crate) fn cache_file(dir: &Path, info: &DeviceInfo) -> PathBuf {
    let uuid: String = info.device_uuid.iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{uuid}-{:08x}.vkpc", info.driver_version))
}

/// The cache bytes in `path`, or nothing when it is missing, unreadable, or made for another device or driver.
pub(crate) fn load(path: &Path, info: &DeviceInfo) -> Vec<u8> {
    let data = match std::fs::read(path) {
        Ok(data) => data,
        Err(err) => {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), %err, "cannot read the pipeline cache");
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

/// Writes `data` to `path` through a temporary file and a rename, so that concurrent builds never see a
/// half-written cache.
pub(crate) fn store(path: &Path, data: &[u8]) {
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, data)?;
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
