//! Prints the generic tree of a portable artifact: `cargo run --example dump FILE.mlirbc`.
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: dump FILE.mlirbc");
        std::process::exit(2);
    };
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    match hlo_stablehlo::bytecode::read(&bytes) {
        Ok(a) => println!("{a:#?}"),
        Err(e) => println!("error: {e}"),
    }
}
