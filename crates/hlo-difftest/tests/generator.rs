//! The generator, the fused rewrite and the shrinker on their own (no device): every draw is a
//! valid module that prints and parses back to itself, the fused form verifies, and shrinking
//! against a synthetic failure ends at a minimal program.

use hlo_difftest::shrink::{shrink, Budget, Program};
use hlo_difftest::{edit, fuse, gen};
use std::time::Duration;

fn round_trips(m: &hlo_ir::Module) {
    let text = hlo_ir::print_module(m);
    let back =
        hlo_parse::parse_module(&text).unwrap_or_else(|e| panic!("{}", hlo_parse::render_error(&text, "gen", &e)));
    assert_eq!(hlo_ir::print_module(&back), text);
}

#[test]
fn draws_are_valid_and_round_trip() {
    for profile in [&gen::CI, &gen::SMALL] {
        let mut made = 0;
        for seed in 0..200 {
            let Some(case) = gen::generate(seed, profile) else { continue };
            made += 1;
            hlo_ir::verify::verify(&case.module).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert_eq!(case.inputs.len(), case.module.entry_comp().params.len());
            round_trips(&case.module);
            if let Some(fused) = fuse::fuse_direct(&case.module) {
                round_trips(&fused);
            }
        }
        assert!(made >= 190, "{}: only {made} of 200 seeds gave a program", profile.name);
    }
}

#[test]
fn draws_are_deterministic() {
    for seed in [3, 77, 1234] {
        let a = gen::generate(seed, &gen::SMALL).expect("a program");
        let b = gen::generate(seed, &gen::SMALL).expect("a program");
        assert_eq!(hlo_ir::print_module(&a.module), hlo_ir::print_module(&b.module));
        assert_eq!(a.inputs, b.inputs);
    }
}

#[test]
fn shrinking_keeps_the_failing_op_and_little_else() {
    // A synthetic bug: any program with a `sine` fails.
    let seed = (0..5000)
        .find(|&s| {
            gen::generate(s, &gen::CI)
                .is_some_and(|c| edit::op_names(&c.module).contains(&"sine".to_string()) && c.module.instr_count() > 8)
        })
        .expect("some seed draws a sine");
    let case = gen::generate(seed, &gen::CI).expect("a program");
    let start = Program { module: case.module.clone(), inputs: case.inputs.clone() };
    let mut fails = |p: &Program| edit::op_names(&p.module).contains(&"sine".to_string());
    let budget = Budget { max_tries: 10_000, max_time: Duration::from_secs(60) };
    let small = shrink(start, &mut fails, budget, &mut || {});
    assert_eq!(edit::op_names(&small.module), vec!["sine".to_string()], "{}", hlo_ir::print_module(&small.module));
    let elems: u64 = small.inputs.iter().map(|a| a.num_elements()).sum();
    assert!(elems <= 1, "inputs not shrunk: {elems} elements\n{}", hlo_ir::print_module(&small.module));
}

/// The side stream draws `rng-bit-generator` into about one program in twelve.
#[test]
fn some_draws_use_rng_bit_generator() {
    let n = (0..200)
        .filter_map(|seed| gen::generate(seed, &gen::CI))
        .filter(|case| {
            case.module
                .comps
                .iter()
                .any(|c| c.instrs.iter().any(|i| matches!(i.op, hlo_ir::Op::RngBitGenerator { .. })))
        })
        .count();
    assert!((5..=40).contains(&n), "{n} of 200 programs draw rng-bit-generator");
}
