//! Prints the WGSL of a module compiled as it is, without the pass pipeline (what the difftester's direct mode
//! runs): `cargo run -p hlo-spirv --example direct_wgsl -- crates/hlo-difftest/found/FILE.hlo`.

fn main() {
    let path = std::env::args().nth(1).expect("usage: direct_wgsl MODULE.hlo");
    let text = std::fs::read_to_string(&path).expect("reading the module");
    let m = hlo_parse::parse_module(&text).expect("parsing the module");
    let c = hlo_spirv::compile(&m, &hlo_spirv::Target::lavapipe()).expect("compiling the module");
    print!("{}", c.wgsl());
}
