//! Loops and conditionals decided on the device (issue 12), on lavapipe with validation on; any validation
//! message fails the test.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::*;
use hlo_program::{Access, BufferId, BufferRole, Conditional, DeviceCondition, Loop, Program, Step, TripCount};
use hlo_vulkan::{Context, Executable};

const R: Access = Access::Read;
const W: Access = Access::Write;
const RW: Access = Access::ReadWrite;

/// `total[0] += y[0]`.
const ADD_INTO: &str = r#"
@group(0) @binding(0) var<storage, read> y: array<u32>;
@group(0) @binding(1) var<storage, read_write> total: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) { if id.x == 0u { total[0] = total[0] + y[0]; } }
"#;

/// `sel[0] = x[0] % 2`.
const PARITY: &str = r#"
@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read_write> sel: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) { if id.x == 0u { sel[0] = x[0] % 2u; } }
"#;

// Kernel ids of `kernels()`.
const K_INC: u32 = 0;
const K_LESS: u32 = 1;
const K_ADD_INTO: u32 = 2;
const K_PARITY: u32 = 3;
const K_ACC_F32: u32 = 4;

fn kernels() -> Vec<hlo_program::Kernel> {
    vec![
        kernel("inc", INC_U32, &[RW], 0),
        kernel("less", LESS, &[R, R, W], 0),
        kernel("add_into", ADD_INTO, &[R, RW], 0),
        kernel("parity", PARITY, &[R, W], 0),
        kernel("acc_f32", ACCUMULATE, &[R, RW], 0),
    ]
}

fn one(kernel: u32, buffers: &[u32]) -> Step {
    dispatch(kernel, buffers, 1)
}

fn fill(buffer: u32, word: u32) -> Step {
    Step::Fill { buffer: BufferId(buffer), word }
}

fn static_loop(trips: u64, body: Vec<Step>) -> Step {
    Step::Loop(Loop { body, trip: TripCount::Static(trips) })
}

/// `while state < limit { body }`, with `flag` the condition's result.
fn while_less(state: u32, limit: u32, flag: u32, body: Vec<Step>) -> Step {
    Step::Loop(Loop {
        body,
        trip: TripCount::Device(DeviceCondition {
            steps: vec![one(K_LESS, &[state, limit, flag])],
            flag: BufferId(flag),
        }),
    })
}

fn u32_bytes(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn u32_of(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[..4].try_into().unwrap())
}

fn build(ctx: &Arc<Context>, program: &Program) -> Executable {
    Executable::new(ctx, program, None).unwrap_or_else(|err| panic!("build failed: {err}"))
}

#[test]
fn static_loop_counts() {
    let ctx = context();
    for trips in [0u64, 1, 2, 1000, 100_000] {
        let program = Program {
            kernels: kernels(),
            buffers: vec![word("counter", BufferRole::Temp)],
            steps: vec![fill(0, 0), static_loop(trips, vec![one(K_INC, &[0])])],
            outputs: ids(&[0]),
            ..Default::default()
        };
        let mut exe = build(&ctx, &program);
        for _ in 0..2 {
            let out = exe.run(&[]).unwrap();
            assert_eq!(u32_of(&out[0]) as u64, trips);
            let stats = exe.last_run_stats();
            assert_eq!(stats.host_waits, 0, "a static loop needs no host decision: {stats:?}");
        }
        // Memory does not grow with the trip count: at most a few batches are recorded.
        assert!(exe.stats().n_command_buffers <= 20, "{:?}", exe.stats());
        drop(exe);
        assert_clean(&ctx);
    }
}

/// `x = input; while x < limit { x += 1 }`.
fn counting_loop() -> Program {
    Program {
        kernels: kernels(),
        buffers: vec![
            word("x0", BufferRole::Input(0)),
            word("limit", BufferRole::Input(1)),
            word("x", BufferRole::Temp),
            word("flag", BufferRole::Temp),
        ],
        steps: vec![
            Step::Copy { src: BufferId(0), dst: BufferId(2), size_bytes: 4 },
            while_less(2, 1, 3, vec![one(K_INC, &[2])]),
        ],
        outputs: ids(&[2]),
        ..Default::default()
    }
}

#[test]
fn device_loop_runs_data_dependent_trips_with_few_host_waits() {
    let ctx = context();
    let mut exe = build(&ctx, &counting_loop());
    for (start, limit) in [(5u32, 5u32), (9, 3), (0, 1), (100, 7100), (0, 100_000)] {
        let trips = limit.saturating_sub(start);
        let out = exe.run(&[&u32_bytes(start), &u32_bytes(limit)]).unwrap();
        assert_eq!(u32_of(&out[0]), start.max(limit), "start {start}, limit {limit}");
        let stats = exe.last_run_stats();
        let bound = (trips as f64 + 1.0).log2() + 2.0;
        assert!(stats.host_waits as f64 <= bound, "{trips} trips: {stats:?}, bound {bound}");
        // Every wait follows at least one whole batch: none happens inside one.
        assert!(stats.host_waits <= stats.batch_submits, "{stats:?}");
    }
    drop(exe);
    assert_clean(&ctx);
}

#[test]
fn loop_state_of_two_buffers_of_different_sizes() {
    let ctx = context();
    let n = 300;
    // while i < limit { i += 1; acc += ones; last = i (a predicated copy); fill scratch (a predicated fill) }
    let program = Program {
        kernels: kernels(),
        buffers: vec![
            word("limit", BufferRole::Input(0)),
            word("i", BufferRole::Temp),
            word("flag", BufferRole::Temp),
            buffer("ones", n, BufferRole::Constant(f32_bytes(&vec![1.0; n]))),
            buffer("acc", n, BufferRole::Temp),
            word("last", BufferRole::Temp),
            buffer("scratch", n, BufferRole::Temp),
        ],
        steps: vec![
            fill(1, 0),
            fill(4, 0.5f32.to_bits()),
            fill(5, 0),
            fill(6, 0),
            while_less(
                1,
                0,
                2,
                vec![
                    one(K_INC, &[1]),
                    dispatch(K_ACC_F32, &[3, 4], n),
                    Step::Copy { src: BufferId(1), dst: BufferId(5), size_bytes: 4 },
                    fill(6, 7),
                ],
            ),
        ],
        outputs: ids(&[1, 4, 5, 6]),
        ..Default::default()
    };
    let mut exe = build(&ctx, &program);
    for limit in [0u32, 1, 37] {
        let out = exe.run(&[&u32_bytes(limit)]).unwrap();
        assert_eq!(u32_of(&out[0]), limit);
        assert_eq!(f32s(&out[1]), vec![0.5 + limit as f32; n]);
        assert_eq!(u32_of(&out[2]), limit);
        let filled = if limit > 0 { 7 } else { 0 };
        assert!(out[3].chunks_exact(4).all(|w| u32_of(w) == filled), "limit {limit}");
    }
    drop(exe);
    assert_clean(&ctx);
}

/// `out = [10, 20, 29 + 1][selector]`, the last branch a fill and a dispatch.
fn three_way() -> Program {
    Program {
        kernels: kernels(),
        buffers: vec![word("selector", BufferRole::Input(0)), word("out", BufferRole::Temp)],
        steps: vec![Step::Conditional(Conditional {
            selector: BufferId(0),
            branches: vec![vec![fill(1, 10)], vec![fill(1, 20)], vec![fill(1, 29), one(K_INC, &[1])]],
        })],
        outputs: ids(&[1]),
        ..Default::default()
    }
}

#[test]
fn conditional_takes_the_selected_branch_and_the_last_when_out_of_range() {
    let ctx = context();
    let mut exe = build(&ctx, &three_way());
    for (selector, expected) in [(0i32, 10u32), (1, 20), (2, 30), (7, 30), (-1, 30), (0, 10)] {
        let out = exe.run(&[&selector.to_le_bytes()]).unwrap();
        assert_eq!(u32_of(&out[0]), expected, "selector {selector}");
        assert_eq!(exe.last_run_stats().host_waits, 0);
        assert_eq!(exe.last_run_stats().submits, 1);
    }
    drop(exe);
    assert_clean(&ctx);
}

#[test]
fn conditional_inside_a_device_loop() {
    let ctx = context();
    // while x < limit { if x % 2 == 0 { evens += 1 } else { odds += 1 }; x += 1 }
    let program = Program {
        kernels: kernels(),
        buffers: vec![
            word("limit", BufferRole::Input(0)),
            word("x", BufferRole::Temp),
            word("flag", BufferRole::Temp),
            word("parity", BufferRole::Temp),
            word("evens", BufferRole::Temp),
            word("odds", BufferRole::Temp),
        ],
        steps: vec![
            fill(1, 0),
            fill(4, 0),
            fill(5, 0),
            while_less(
                1,
                0,
                2,
                vec![
                    one(K_PARITY, &[1, 3]),
                    Step::Conditional(Conditional {
                        selector: BufferId(3),
                        branches: vec![vec![one(K_INC, &[4])], vec![one(K_INC, &[5])]],
                    }),
                    one(K_INC, &[1]),
                ],
            ),
        ],
        outputs: ids(&[1, 4, 5]),
        ..Default::default()
    };
    let mut exe = build(&ctx, &program);
    for limit in [0u32, 1, 10, 101] {
        let out = exe.run(&[&u32_bytes(limit)]).unwrap();
        assert_eq!(u32_of(&out[0]), limit);
        assert_eq!(u32_of(&out[1]), limit.div_ceil(2), "evens, limit {limit}");
        assert_eq!(u32_of(&out[2]), limit / 2, "odds, limit {limit}");
    }
    drop(exe);
    assert_clean(&ctx);
}

#[test]
fn loops_inside_loops() {
    let ctx = context();
    let buffers = || {
        vec![
            word("limit", BufferRole::Input(0)),
            word("i", BufferRole::Temp),
            word("flag_i", BufferRole::Temp),
            word("j", BufferRole::Temp),
            word("flag_j", BufferRole::Temp),
            word("total", BufferRole::Temp),
            word("three", BufferRole::Constant(u32_bytes(3))),
        ]
    };
    // A static loop inside a device loop: while i < limit { 3 times { total += 1 }; i += 1 }.
    let device_outer = Program {
        kernels: kernels(),
        buffers: buffers(),
        steps: vec![
            fill(1, 0),
            fill(5, 0),
            while_less(1, 0, 2, vec![static_loop(3, vec![one(K_INC, &[5])]), one(K_INC, &[1])]),
        ],
        outputs: ids(&[5]),
        ..Default::default()
    };
    // A device loop inside a static loop: 4 times { j = 0; while j < limit { j += 1 }; total += j }.
    let static_outer = Program {
        kernels: kernels(),
        buffers: buffers(),
        steps: vec![
            fill(5, 0),
            static_loop(4, vec![fill(3, 0), while_less(3, 0, 4, vec![one(K_INC, &[3])]), one(K_ADD_INTO, &[3, 5])]),
        ],
        outputs: ids(&[5]),
        ..Default::default()
    };
    // A device loop inside a device loop: while i < 3 { j = 0; while j < limit { j += 1; total += 1 }; i += 1 }.
    let both_device = Program {
        kernels: kernels(),
        buffers: buffers(),
        steps: vec![
            fill(1, 0),
            fill(5, 0),
            while_less(
                1,
                6,
                2,
                vec![fill(3, 0), while_less(3, 0, 4, vec![one(K_INC, &[3]), one(K_INC, &[5])]), one(K_INC, &[1])],
            ),
        ],
        outputs: ids(&[5]),
        ..Default::default()
    };
    for (program, per_limit) in [(device_outer, 3), (static_outer, 4), (both_device, 3)] {
        let mut exe = build(&ctx, &program);
        for limit in [0u32, 1, 50] {
            let out = exe.run(&[&u32_bytes(limit)]).unwrap();
            assert_eq!(u32_of(&out[0]), per_limit * limit, "limit {limit}, {:?}", exe.stats());
        }
        drop(exe);
        assert_clean(&ctx);
    }
}

#[test]
fn straight_line_programs_are_still_one_command_buffer() {
    let ctx = context();
    let program = Program {
        kernels: kernels(),
        buffers: vec![word("x", BufferRole::Temp)],
        steps: vec![fill(0, 41), one(K_INC, &[0])],
        outputs: ids(&[0]),
        ..Default::default()
    };
    let mut exe = build(&ctx, &program);
    assert_eq!(u32_of(&exe.run(&[]).unwrap()[0]), 42);
    assert_eq!(exe.stats().n_command_buffers, 1);
    assert_eq!(exe.last_run_stats().submits, 1);
    drop(exe);
    assert_clean(&ctx);
}

#[test]
fn time_per_device_loop_iteration() {
    let ctx = context();
    let mut exe = build(&ctx, &counting_loop());
    let trips = 7000u32;
    exe.run(&[&u32_bytes(0), &u32_bytes(trips)]).unwrap();
    let runs = 3;
    let start = Instant::now();
    for _ in 0..runs {
        let out = exe.run(&[&u32_bytes(0), &u32_bytes(trips)]).unwrap();
        assert_eq!(u32_of(&out[0]), trips);
    }
    let per_iteration = start.elapsed().as_secs_f64() / (runs * trips) as f64;
    println!(
        "device loop of {trips} iterations: {:.2} us per iteration, {:?}",
        per_iteration * 1e6,
        exe.last_run_stats()
    );
    drop(exe);
    assert_clean(&ctx);
}
