//! Fuzz target: `parse_module` on arbitrary UTF-8 (and on lossily converted bytes) must
//! not panic; a module it accepts must print to text that re-parses to an equal module.

#![no_main]

use libfuzzer_sys::fuzz_target;

fn check(text: &str) {
    let Ok(module) = hlo_parse::parse_module(text) else { return };
    let printed = hlo_ir::print::print_module(&module);
    match hlo_parse::parse_module(&printed) {
        Ok(again) => assert!(again == module, "printed module re-parses differently:\n{printed}"),
        Err(e) => panic!(
            "printed module does not re-parse: {}\n{printed}",
            hlo_parse::render_error(&printed, "<printed>", &e)
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    } else {
        check(&String::from_utf8_lossy(data));
    }
});
