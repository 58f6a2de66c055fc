//! Snapshots of the pipeline's result on real samples: the fused module as
//! printed HLO, followed by the fusion report (`--explain-fusion`).
//! Refresh with `cargo insta review` (or `INSTA_UPDATE=always`).

mod common;

use hlo_passes::{run_pipeline, PipelineOptions};

fn snapshot(sample: &str, file: &str) -> String {
    let mut module = common::load(sample, file);
    let report = run_pipeline(&mut module, &mut PipelineOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let fusion = report.fusion.expect("the pipeline runs fusion");
    format!("{}\n==== fusion report ====\n{fusion}", hlo_ir::print::print_module(&module))
}

macro_rules! snapshot_tests {
    ($($test:ident: $sample:literal / $file:literal,)*) => {$(
        #[test]
        fn $test() {
            insta::assert_snapshot!(snapshot($sample, $file));
        }
    )*};
}

snapshot_tests! {
    nbody_forces: "nbody_forces" / "module.hlo",
    nbody_forces_opt: "nbody_forces" / "module.opt.hlo",
    mandelbrot: "mandelbrot" / "module.hlo",
    mandelbrot_opt: "mandelbrot" / "module.opt.hlo",
    softmax: "softmax" / "module.hlo",
    seed_draw_points_opt: "seed_draw_points" / "module.opt.hlo",
    sprite_render: "sprite_render" / "module.hlo",
    nbody_sim_update: "nbody_sim_update" / "module.hlo",
}

#[test]
fn nbody_force_step_is_one_kernel() {
    for file in ["module.hlo", "module.opt.hlo"] {
        for sample in ["nbody_forces", "nbody_forces_2048"] {
            let mut module = common::load(sample, file);
            let report = run_pipeline(&mut module, &mut PipelineOptions::default()).unwrap();
            let fusion = report.fusion.unwrap();
            assert_eq!(fusion.kernels.len(), 1, "{sample}/{file}:\n{fusion}");
            assert_eq!(fusion.kernels[0].kind, hlo_passes::KernelKind::Reduce);
        }
    }
}
