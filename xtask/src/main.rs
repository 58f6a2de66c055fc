//! Project automation: `cargo xtask bench`, `cargo xtask validate-spirv`.
fn main() {}
