//! Snapshots of the plan and the WGSL of every `tests/cases/spirv/*.hlo` (insta).
//!
//! A case runs through the hlo-passes pipeline unless its first line says `// no-pipeline`
//! (XLA dumps that are already fused). Every kernel also passes spirv-val.
//! Refresh with `cargo insta review` (or `INSTA_UPDATE=always`).

mod common;
use common::*;

#[test]
fn spirv_cases() {
    insta::glob!("cases/spirv/*.hlo", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let no_pipeline = text.lines().next().is_some_and(|l| l.starts_with("// no-pipeline"));
        let body: String = text.lines().skip_while(|l| l.starts_with("//")).collect::<Vec<_>>().join("\n");
        let m = if no_pipeline { parse(&body) } else { parse_and_fuse(&body) };
        let c = compile_checked(&m);
        insta::assert_snapshot!(format!("{}\n{}", c.plan_text(), c.wgsl()));
    });
}
