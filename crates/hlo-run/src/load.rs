//! Reading a module file: parse, verify, and render any error as
//! `FILE:LINE:COL: message` with the source line and a caret.
//!
//! Only a regular file of at most [`crate::limits::MAX_MODULE_BYTES`] is read.
//! Dynamic dimensions (`f32[?]`, `f32[<=8]`) parse and print; bounded ones inside the module run
//! padded to their bound (`dynamic-padder`), but an unbounded one or a dynamic entry parameter
//! does not: [`check_static`] names the first one for the commands that run or compile.

use crate::limits;
use crate::user_error;
use hlo_ir::{CompId, InstrId, Module, Shape};
use std::path::Path;

/// A parsed and verified module with the text it came from.
pub struct Loaded {
    pub module: Module,
    pub source: String,
    pub path: String,
}

/// Parses and verifies `path`: HLO text, or StableHLO (a portable artifact, MLIR bytecode of
/// the VHLO dialect as `jax.export` writes it, or textual MLIR as `jax.jit(f).lower(x).as_text()`
/// prints it). Every failure is a [`crate::UserError`].
pub fn load_module(path: &Path) -> anyhow::Result<Loaded> {
    load(path, true)
}

/// Parses `path` as [`load_module`] does but does not verify it: XLA's
/// `ParseAndReturnUnverifiedModule`, for `hlo-run check --parse-only`. Nothing may run or
/// compile such a module.
pub fn load_module_unverified(path: &Path) -> anyhow::Result<Loaded> {
    load(path, false)
}

fn load(path: &Path, verify: bool) -> anyhow::Result<Loaded> {
    let display = path.display().to_string();
    let bytes = limits::read_bytes(path, limits::MAX_MODULE_BYTES)?;
    if bytes.starts_with(MLIR_BYTECODE_MAGIC) {
        let module = hlo_stablehlo::read_portable_artifact(&bytes)
            .map_err(|e| user_error(format!("{display}: StableHLO artifact: {e}")))?;
        let module = if verify { verify_stablehlo(module, &display)? } else { module };
        return Ok(Loaded { module, source: String::new(), path: display });
    }
    let source = limits::text_of(path, bytes)?;
    check_parse_budget(&source, &display, limits::memory_limit()?)?;
    if is_mlir_text(&source) {
        let module = hlo_stablehlo::parse_text(&source).map_err(|e| user_error(format!("{display}:{e}")))?;
        let module = if verify { verify_stablehlo(module, &display)? } else { module };
        return Ok(Loaded { module, source: String::new(), path: display });
    }
    let module = if verify {
        parse_and_verify(&source, &display)?
    } else {
        hlo_parse::parse_module(&source).map_err(|err| user_error(hlo_parse::render_error(&source, &display, &err)))?
    };
    Ok(Loaded { module, source, path: display })
}

/// MLIR bytecode files start with these four bytes.
const MLIR_BYTECODE_MAGIC: &[u8] = b"ML\xEFR";

/// Textual MLIR (StableHLO) rather than HLO text: its first word is `module` or `func.func`,
/// where HLO text starts with `HloModule` (comments and blank lines aside).
fn is_mlir_text(source: &str) -> bool {
    let first = source
        .lines()
        .map(str::trim_start)
        .find(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('#'))
        .unwrap_or("");
    first.starts_with("module") || first.starts_with("func.func")
}

/// A module read from StableHLO, verified; its errors name the file (there is no HLO text to
/// point into).
fn verify_stablehlo(module: Module, file: &str) -> anyhow::Result<Module> {
    hlo_ir::verify::verify(&module).map_err(|errs| {
        let lines: Vec<String> = errs.0.iter().map(|e| format!("{file}: {e}")).collect();
        user_error(format!("module read from StableHLO does not verify:\n{}", lines.join("\n")))
    })?;
    Ok(module)
}

/// Fails with `FILE:LINE:COL` at the first instruction whose shape has an unbounded dynamic
/// dimension, or at the first entry parameter with a dynamic dimension (both backends run bounded
/// dynamic shapes padded to their bound, with sizes the module sets itself), or at
/// the first constant whose values the dump elided (`{...}`): nothing can compute with it.
pub fn check_static(loaded: &Loaded) -> anyhow::Result<()> {
    if let Some((comp, instr)) = first_elided_constant(&loaded.module) {
        let at = location_of(loaded, comp, instr);
        let i = loaded.module.comp(comp).instr(instr);
        return Err(user_error(format!(
            "{at}: constant {} has its values elided as '{{...}}'; dump the module with large constants printed in full \
             (XLA's HloPrintOptions.print_large_constants; JAX's `jit(f).lower(...).as_text(dialect=\"hlo\")` does)",
            i.name
        )));
    }
    match first_dynamic(&loaded.module) {
        Some((comp, instr)) => {
            let at = location_of(loaded, comp, instr);
            let i = loaded.module.comp(comp).instr(instr);
            Err(user_error(format!(
                "{at}: {} has the dynamic shape {}; unbounded dynamic dimensions (`?`) and dynamic entry parameters are \
                 not supported (bounded ones, `<=N`, set inside the module by `set-dimension-size` are)",
                i.name, i.shape
            )))
        }
        None => Ok(()),
    }
}

/// The first constant (in computation and arena order) whose values were elided.
pub fn first_elided_constant(module: &Module) -> Option<(CompId, InstrId)> {
    fn elided(lit: &hlo_ir::Literal) -> bool {
        match &lit.data {
            hlo_ir::LiteralData::Elided => true,
            hlo_ir::LiteralData::Tuple(elems) => elems.iter().any(elided),
            _ => false,
        }
    }
    module.comp_ids().find_map(|c| {
        let comp = module.comp(c);
        comp.ids().find(|&i| matches!(&comp.instr(i).op, hlo_ir::Op::Constant(lit) if elided(lit))).map(|i| (c, i))
    })
}

/// The first instruction (in computation and arena order) with an unbounded dynamic dimension,
/// or the first entry parameter with a dynamic dimension.
pub fn first_dynamic(module: &Module) -> Option<(CompId, InstrId)> {
    fn has(shape: &Shape, dim: &dyn Fn(&hlo_ir::ArrayShape) -> bool) -> bool {
        match shape {
            Shape::Array(a) => dim(a),
            Shape::Tuple(elems) => elems.iter().any(|e| has(e, dim)),
            Shape::Token => false,
        }
    }
    let unbounded = |a: &hlo_ir::ArrayShape| a.dims.iter().any(|&d| d < 0);
    let dynamic = |a: &hlo_ir::ArrayShape| a.dynamic.iter().any(|&d| d) || unbounded(a);
    let entry = module.entry_comp();
    let param = entry.params.iter().copied().find(|&p| has(&entry.instr(p).shape, &dynamic));
    let first = module.comp_ids().find_map(|c| {
        let comp = module.comp(c);
        comp.ids().find(|&i| has(&comp.instr(i).shape, &unbounded)).map(|i| (c, i))
    });
    match (first, param) {
        (Some(f), _) => Some(f),
        (None, Some(p)) => Some((module.entry, p)),
        (None, None) => None,
    }
}

/// `FILE:LINE:COL` of the instruction named `instr` in computation `comp`, or the file alone.
pub fn location_of_name(loaded: &Loaded, comp: &str, instr: &str) -> String {
    let module = &loaded.module;
    let in_comp = module.comp_ids().find(|&c| module.comp(c).name == comp);
    let found = in_comp.into_iter().chain(module.comp_ids()).find_map(|c| module.comp(c).find(instr).map(|i| (c, i)));
    match found {
        Some((c, i)) => location_of(loaded, c, i),
        None => loaded.path.clone(),
    }
}

/// Bytes the parsed form of one line of module text takes at most, about: an instruction
/// with its shape, name, operands, metadata and span (measured: a million `constant` lines
/// of 35 bytes each take 1.1 GB).
const BYTES_PER_LINE: u64 = 1536;

/// Refuses text whose parsed form would not fit in `limit` bytes: about [`BYTES_PER_LINE`]
/// per line plus twice the text (large constants are dense: a few bytes per number).
pub fn check_parse_budget(source: &str, file: &str, limit: u64) -> anyhow::Result<()> {
    let lines = source.bytes().filter(|&b| b == b'\n').count() as u64 + 1;
    let needed = lines.saturating_mul(BYTES_PER_LINE).saturating_add(2 * source.len() as u64);
    limits::check_budget(
        &format!("{file}: parsing {lines} lines ({} of text)", limits::human_bytes(source.len() as u64)),
        needed,
        limit,
    )
}

/// Parses and verifies module text; `file` names it in messages.
pub fn parse_and_verify(source: &str, file: &str) -> anyhow::Result<Module> {
    let module =
        hlo_parse::parse_module(source).map_err(|err| user_error(hlo_parse::render_error(source, file, &err)))?;
    hlo_ir::verify::verify(&module).map_err(|errs| {
        // Each error at its instruction's FILE:LINE:COL, as parse errors are.
        let lines: Vec<String> = errs
            .0
            .iter()
            .map(|e| match e.at {
                Some((comp, instr)) => {
                    let span = module.comp(comp).span(instr);
                    let (line, col) = line_col(source, span.start as usize);
                    format!("{file}:{line}:{col}: {e}")
                }
                None => format!("{file}: {e}"),
            })
            .collect();
        user_error(format!("module does not verify:\n{}", lines.join("\n")))
    })?;
    Ok(module)
}

/// `FILE:LINE:COL` of an instruction, for messages that point into the module.
pub fn location_of(loaded: &Loaded, comp: hlo_ir::CompId, instr: hlo_ir::InstrId) -> String {
    if loaded.source.is_empty() {
        // Read from StableHLO: no HLO text to point into.
        return loaded.path.clone();
    }
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
