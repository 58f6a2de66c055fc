//! Reading a module file: parse, verify, and render any error as
//! `FILE:LINE:COL: message` with the source line and a caret.

use crate::user_error;
use hlo_ir::Module;
use std::path::Path;

/// A parsed and verified module with the text it came from.
pub struct Loaded {
    pub module: Module,
    pub source: String,
    pub path: String,
}

/// Parses and verifies `path`. Every failure is a [`crate::UserError`].
pub fn load_module(path: &Path) -> anyhow::Result<Loaded> {
    let display = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| user_error(format!("{display}: {e}")))?;
    let module = parse_and_verify(&source, &display)?;
    Ok(Loaded { module, source, path: display })
}

/// Parses and verifies module text; `file` names it in messages.
pub fn parse_and_verify(source: &str, file: &str) -> anyhow::Result<Module> {
    let module =
        hlo_parse::parse_module(source).map_err(|err| user_error(hlo_parse::render_error(source, file, &err)))?;
    hlo_ir::verify::verify(&module).map_err(|errs| user_error(format!("{file}: module does not verify:\n{errs}")))?;
    Ok(module)
}

/// `FILE:LINE:COL` of an instruction, for messages that point into the module.
pub fn location_of(loaded: &Loaded, comp: hlo_ir::CompId, instr: hlo_ir::InstrId) -> String {
    let span = loaded.module.comp(comp).span(instr);
    let (line, col) = line_col(&loaded.source, span.start as usize);
    format!("{}:{line}:{col}", loaded.path)
}

/// 1-based line and column of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, col)
}
