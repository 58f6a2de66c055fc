//! Parses an HLO file and prints it back in canonical form (or the rendered parse error):
//! `cargo run -p hlo-parse --example reprint -- [--check] FILE.hlo`.
//! With `--check` it instead verifies that the printed text re-parses to an equal module
//! and shows the first instruction that differs (handy for triaging fuzzer finds).

use hlo_ir::Module;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "--check");
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: reprint [--check] FILE.hlo");
        std::process::exit(2);
    };
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2);
    });
    let text = String::from_utf8_lossy(&bytes);
    let module = match hlo_parse::parse_module(&text) {
        Ok(module) => module,
        Err(e) => {
            eprintln!("{}", hlo_parse::render_error(&text, path, &e));
            std::process::exit(1);
        }
    };
    let printed = hlo_ir::print::print_module(&module);
    if !check {
        print!("{printed}");
        return;
    }
    match hlo_parse::parse_module(&printed) {
        Ok(again) if again == module => println!("ok: round trip preserves the module"),
        Ok(again) => {
            println!("printed text re-parses differently: {}", first_difference(&module, &again));
            std::process::exit(1);
        }
        Err(e) => {
            println!("printed text does not parse:\n{}", hlo_parse::render_error(&printed, "<printed>", &e));
            std::process::exit(1);
        }
    }
}

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
    format!("module-level: {:?} vs {:?}", a.attrs, b.attrs)
}
