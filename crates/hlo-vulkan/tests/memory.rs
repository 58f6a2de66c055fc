//! Memory must not grow over many runs: neither the allocator's device memory nor the process's RSS.
//! This is its own test binary so that no other test allocates in the same process while RSS is measured.

mod common;

use common::*;
use hlo_program::{Access, BufferId, BufferRole, Program, Step};
use hlo_vulkan::Executable;

/// Resident set size in bytes, from `/proc/self/statm` (Linux).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("statm resident field");
    pages * 4096
}

#[test]
fn thousand_runs_do_not_grow_memory() {
    let ctx = context();
    let n = 256;
    let program = Program {
        kernels: vec![
            kernel("inc", INC, &[Access::Read, Access::Write], 0),
            kernel("add", ADD, &[Access::Read, Access::Read, Access::Write], 0),
        ],
        buffers: vec![
            buffer("a", n, BufferRole::Input(0)),
            buffer("t", n, BufferRole::Temp),
            buffer("u", n, BufferRole::Temp),
            buffer("out", n, BufferRole::Temp),
        ],
        steps: vec![
            dispatch(0, &[0, 1], n),
            Step::Copy { src: BufferId(1), dst: BufferId(2), size_bytes: 4 * n as u64 },
            dispatch(1, &[1, 2, 3], n),
        ],
        outputs: ids(&[3, 0]),
        ..Default::default()
    };
    let mut exe = Executable::new(&ctx, &program, None).unwrap();
    let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let input = f32_bytes(&a);
    let expected: Vec<f32> = a.iter().map(|x| 2.0 * (x + 1.0)).collect();
    // Warm up: lazily allocated driver and layer state settles in the first runs.
    for _ in 0..20 {
        exe.run(&[&input]).unwrap();
    }
    let device_before = ctx.memory_report();
    let rss_before = rss_bytes();
    for _ in 0..1000 {
        let out = exe.run(&[&input]).unwrap();
        assert_eq!(f32s(&out[0]), expected);
    }
    let device_after = ctx.memory_report();
    let rss_after = rss_bytes();
    assert_eq!(device_after, device_before, "device memory changed over 1000 runs");
    let growth = rss_after.saturating_sub(rss_before);
    eprintln!("RSS over 1000 runs: {rss_before} -> {rss_after} bytes; device: {device_after:?}");
    assert!(growth < 4 << 20, "RSS grew by {growth} bytes over 1000 runs ({rss_before} -> {rss_after})");
    drop(exe);
    assert_eq!(ctx.memory_report().allocated_bytes, 0, "the executable freed all its device memory");
    assert_clean(&ctx);
}
