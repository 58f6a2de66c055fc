//! `docs/ops.md` is the table of every HLO opcode with the stages that handle
//! it. This test regenerates the table from the code's own lists
//! (`Opcode::ALL`, `hlo_interp::supports`, `hlo_spirv::supports`) and fails when
//! the committed file differs; `UPDATE_OPS_DOC=1` rewrites it.

use hlo_ir::Opcode;
use hlo_tests::repo_root;

fn table() -> String {
    let mut out = String::new();
    out.push_str("# HLO op coverage\n\n");
    out.push_str("Every opcode of XLA's `hlo_opcode.h`, and which stage handles it.\n");
    out.push_str("Generated from the code by `tests/ops_doc.rs` (run it with `UPDATE_OPS_DOC=1` to refresh); the test fails when this file is stale.\n\n");
    out.push_str("- **parsed**: `hlo-parse` reads it with all its attributes and `hlo-ir` prints it back.\n");
    out.push_str("- **interpreted**: `hlo-interp` evaluates it (`hlo-run --backend interp`).\n");
    out.push_str("- **Vulkan**: `hlo-spirv` lowers it to SPIR-V, fused or as its own kernel (`hlo-run`, the default backend).\n\n");
    let n_interp = Opcode::ALL.iter().filter(|&&op| hlo_interp::supports(op)).count();
    let n_vulkan = Opcode::ALL.iter().filter(|&&op| hlo_spirv::supports(op)).count();
    out.push_str(&format!(
        "Totals: {} opcodes, {} parsed, {} interpreted, {} on Vulkan.\n\n",
        Opcode::ALL.len(),
        Opcode::ALL.len(),
        n_interp,
        n_vulkan
    ));
    out.push_str("| opcode | parsed | interpreted | Vulkan |\n|---|---|---|---|\n");
    let mark = |b: bool| if b { "yes" } else { "-" };
    let mut notes: Vec<(&str, &str)> = Vec::new();
    let mut vulkan = |op: Opcode| match hlo_spirv::coverage(op) {
        hlo_spirv::Coverage::Full => "yes".to_string(),
        hlo_spirv::Coverage::Partial(note) => {
            notes.push((op.name(), note));
            format!("partial ({})", notes.len())
        }
        hlo_spirv::Coverage::None => "-".to_string(),
    };
    let mut ops: Vec<Opcode> = Opcode::ALL.to_vec();
    ops.sort_by_key(|op| op.name());
    for op in ops {
        out.push_str(&format!("| `{}` | yes | {} | {} |\n", op.name(), mark(hlo_interp::supports(op)), vulkan(op)));
    }
    out.push_str("\nPartial Vulkan support:\n\n");
    for (k, (name, note)) in notes.iter().enumerate() {
        out.push_str(&format!("{}. `{name}`: {note}.\n", k + 1));
    }
    out
}

#[test]
fn ops_doc_matches_the_code() {
    let path = repo_root().join("docs/ops.md");
    let expected = table();
    if std::env::var_os("UPDATE_OPS_DOC").is_some() {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(actual == expected, "docs/ops.md is stale: run `UPDATE_OPS_DOC=1 cargo test -p hlo-tests --test ops_doc`");
}
