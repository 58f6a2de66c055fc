//! Fuzz target: the library path of `hlo-run` on arbitrary module text.
//!
//! A module that parses and verifies, has static shapes and no instruction over
//! [`MAX_ELEMENTS`] elements is evaluated by the interpreter on deterministic random
//! inputs (within a memory limit and a bound on loop trips), sent through the whole pass
//! pipeline with verification after every pass, evaluated again, and compiled to SPIR-V for
//! a lavapipe-like target. None of it may panic; a pass that breaks the verifier or
//! reports an internal error is a bug, and so is an evaluation that succeeds before the
//! pipeline but fails after it.

#![no_main]

use hlo_ir::{Literal, Module, Shape};
use libfuzzer_sys::fuzz_target;

/// Instructions larger than this are skipped, so that every input runs in milliseconds.
const MAX_ELEMENTS: u64 = 1 << 12;

fn small_enough(module: &Module) -> bool {
    fn elements(shape: &Shape) -> u64 {
        match shape {
            Shape::Array(a) => a.num_elements(),
            Shape::Tuple(elems) => elems.iter().map(elements).sum(),
            Shape::Token => 0,
        }
    }
    module.comps.iter().all(|c| c.instrs.iter().all(|i| elements(&i.shape) <= MAX_ELEMENTS))
        && module.instr_count() <= 200
}

fn options() -> hlo_interp::Options {
    hlo_interp::Options {
        memory_limit: Some(16 << 20),
        max_while_iterations: Some(200),
        ..hlo_interp::Options::xla_cpu()
    }
}

fn random_args(module: &Module) -> Vec<Literal> {
    fn make(shape: &Shape, seed: &mut u64) -> Literal {
        *seed += 1;
        match shape {
            Shape::Array(a) => hlo_interp::random_literal(a, *seed),
            Shape::Tuple(elems) => Literal::tuple(elems.iter().map(|e| make(e, seed)).collect()),
            Shape::Token => Literal { shape: Shape::Token, data: hlo_ir::LiteralData::Token },
        }
    }
    let mut seed = 0;
    module.entry_comp().param_shapes().into_iter().map(|s| make(s, &mut seed)).collect()
}

/// Whether an evaluation error is one the input may legitimately cause.
fn expected_failure(err: &hlo_interp::InterpError) -> bool {
    !matches!(err, hlo_interp::InterpError::Literal(_))
}

fn check(text: &str) {
    let Ok(module) = hlo_parse::parse_module(text) else { return };
    if hlo_ir::verify::verify(&module).is_err() || hlo_run::load::first_dynamic(&module).is_some() {
        return;
    }
    if !small_enough(&module) {
        return;
    }
    let args = random_args(&module);
    let before = hlo_interp::evaluate_with(&module, &args, &options());
    if let Err(err) = &before {
        assert!(expected_failure(err), "{err}");
    }
    let mut optimized = module.clone();
    let mut pipeline = hlo_passes::PipelineOptions { verify: true, dump_after_each: None };
    match hlo_passes::run_pipeline(&mut optimized, &mut pipeline) {
        Ok(_) => {}
        Err(hlo_passes::PassError::Unsupported { .. }) => return,
        Err(err) => panic!("the pass pipeline failed: {err}\n{text}"),
    }
    let after = hlo_interp::evaluate_with(&optimized, &args, &options());
    if let (Ok(_), Err(err)) = (&before, &after) {
        // The pipeline may turn one op into several (a bigger estimate against the memory limit).
        if !matches!(err, hlo_interp::InterpError::OutOfMemory { .. } | hlo_interp::InterpError::Unsupported { .. }) {
            panic!("evaluates before the pipeline but not after: {err}\n{}", hlo_ir::print::print_module(&optimized));
        }
    }
    let _ = hlo_spirv::compile(&optimized, &hlo_spirv::Target::lavapipe());
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
});
