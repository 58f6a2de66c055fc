//! The hlo-run command-line tool.
fn main() {}
