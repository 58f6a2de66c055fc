//! Single-device opcodes neither backend defines: XLA's `scan` and `shuffle` (whose forms have
//! changed across XLA versions, and which JAX does not emit: `lax.scan` is a while loop). Each
//! must be refused by name on both backends, never run to a wrong answer.

mod common;
use common::*;

const SHUFFLE: &str = "HloModule m\nENTRY e {\n  p0 = f32[4] parameter(0)\n  \
                       ROOT shuffle = f32[4] shuffle(p0), dimensions={0}, mode=rotate, shifts={1}\n}\n";

const SCAN: &str = "HloModule m\nadd {\n  p0 = f32[] parameter(0)\n  p1 = f32[] parameter(1)\n  \
                    add = f32[] add(p0, p1)\n  ROOT tuple = (f32[], f32[]) tuple(add, add)\n}\n\
                    ENTRY e {\n  p0 = f32[8] parameter(0)\n  p1 = f32[] constant(0)\n  \
                    scan = (f32[8], f32[]) scan(p0, p1), dimensions={0}, num_carries=1, is_associative=true, \
                    to_apply=add\n  ROOT r = f32[8] get-tuple-element(scan), index=0\n}\n";

#[test]
fn scan_and_shuffle_are_refused_by_name_on_both_backends() {
    for (text, op, n) in [(SHUFFLE, "shuffle", 4usize), (SCAN, "scan", 8)] {
        let m = parse(text);
        let arg = hlo_ir::Literal::array(
            hlo_ir::ArrayShape::new(hlo_ir::DType::F32, vec![n as i64]),
            hlo_ir::ArrayData::F32(vec![1.0; n]),
        );
        let err = hlo_interp::evaluate(&m, &[arg]).unwrap_err().to_string();
        assert!(err.contains(op) && err.contains("not implemented"), "interpreter: {err}");
        let mut m = parse(text);
        let res = hlo_passes::run_pipeline(&mut m, &mut hlo_passes::PipelineOptions::default());
        let err = match res {
            Err(e) => e.to_string(),
            Ok(_) => match hlo_spirv::compile(&m, &hlo_spirv::Target::lavapipe()) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{op} compiled for Vulkan"),
            },
        };
        assert!(err.contains(op), "Vulkan: {err}");
        println!("{op}: {err}");
    }
}
