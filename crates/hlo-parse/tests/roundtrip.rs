//! Round trips over `tests/cases/`: canonical modules (`ok/`) print back exactly;
//! non-canonical ones (`noncanon/`: bare names, no signatures, operand shapes, forward
//! references, comments, defaults spelled out) re-parse to an equal module after printing.
//! Together the canonical cases contain every opcode of `Opcode::ALL`.

use hlo_ir::{Module, Opcode};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn cases(dir: &str) -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "hlo"));
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

fn parse(path: &Path, text: &str) -> Module {
    hlo_parse::parse_module(text)
        .unwrap_or_else(|e| panic!("{}", hlo_parse::render_error(text, &path.display().to_string(), &e)))
}

/// `parse(print(m)) == m`, reporting the printed text on failure.
fn check_reparse(path: &Path, module: &Module) -> String {
    let printed = hlo_ir::print::print_module(module);
    let again = hlo_parse::parse_module(&printed).unwrap_or_else(|e| {
        panic!(
            "{}: printed text does not parse:\n{}",
            path.display(),
            hlo_parse::render_error(&printed, "<printed>", &e)
        )
    });
    assert!(
        again == *module,
        "{}: printed text re-parses to a different module: {}",
        path.display(),
        first_difference(module, &again)
    );
    printed
}

#[test]
fn canonical_cases_print_back_exactly() {
    let cases = cases("ok");
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for (path, text) in &cases {
        let module = parse(path, text);
        let printed = check_reparse(path, &module);
        if printed != *text {
            let line = printed.lines().zip(text.lines()).position(|(a, b)| a != b).unwrap_or(0);
            failures.push(format!(
                "{}:{}: not printed back exactly\n  case:    {}\n  printed: {}",
                path.display(),
                line + 1,
                text.lines().nth(line).unwrap_or("<eof>"),
                printed.lines().nth(line).unwrap_or("<eof>")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn noncanonical_cases_round_trip() {
    let cases = cases("noncanon");
    assert!(!cases.is_empty());
    for (path, text) in &cases {
        let module = parse(path, text);
        check_reparse(path, &module);
    }
}

#[test]
fn every_opcode_appears_in_a_canonical_case() {
    let mut seen = BTreeSet::new();
    for (path, text) in cases("ok") {
        let module = parse(&path, &text);
        for comp in &module.comps {
            for instr in &comp.instrs {
                seen.insert(instr.op.opcode());
            }
        }
    }
    let missing: Vec<&str> = Opcode::ALL.iter().filter(|o| !seen.contains(o)).map(|o| o.name()).collect();
    assert!(missing.is_empty(), "opcodes without a case in tests/cases/ok: {missing:?}");
}

/// Describes the first instruction that differs between two modules.
fn first_difference(a: &Module, b: &Module) -> String {
    for (ca, cb) in a.comps.iter().zip(&b.comps) {
        for (ia, ib) in ca.instrs.iter().zip(&cb.instrs) {
            if ia != ib {
                return format!("\n  before: {ia:?}\n  after:  {ib:?}");
            }
        }
        if ca != cb {
            return format!("computation %{} differs", ca.name);
        }
    }
    format!("module-level difference: {:?} vs {:?}", a.attrs, b.attrs)
}
