//! The grammar of HLO text, building the IR as it goes.
//!
//! ```text
//! module      ::= 'HloModule' name (',' key '=' value)* section* computation*
//! section     ::= ('FileNames' | 'FunctionNames' | 'FileLocations' | 'StackFrames') entry*
//! computation ::= ['ENTRY'] name [signature] '{' instruction* '}' [',' 'execution_thread=' string]
//! signature   ::= '(' [name ':' shape (',' name ':' shape)*] ')' '->' shape
//! instruction ::= ['ROOT'] name '=' shape opcode '(' operands ')' (',' attribute)*
//! operands    ::= [[shape] name (',' [shape] name)*]   | integer (parameter) | literal (constant)
//! ```
//!
//! A computation attribute (`to_apply`, `calls`, `condition`, `body`, `branch_computations`, ...)
//! names a computation or holds one inline (`to_apply={ p = f32[] parameter(0) ... }`): an inline
//! one is read in a scope of its own and becomes a computation of the module, named
//! `<instruction>.<attribute>` (made unique) once the whole module is read.
//!
//! Newlines carry no meaning. Attributes an opcode models are parsed with their grammar
//! (see [`crate::attrs`]); the others are kept verbatim. Each instruction becomes an
//! [`Instr`] as soon as it is read: operands defined earlier resolve at once, later ones
//! are patched (and the computation sorted) when the computation ends, and computation
//! references hold provisional ids until the whole module is read (see [`crate::build`]).

use crate::attrs::{self, CompRef, NameRef};
use crate::build::{self, CompNames, Pending, Slot};
use crate::error::{PErr, PResult};
use crate::lexer::{estimate_lines, is_name_char, Cursor, NameMap};
use crate::literal::literal;
use crate::shape::{program_shape, shape};
use hlo_ir::{
    Computation, FileLocation, Instr, InstrId, InstrMeta, Module, ModuleAttrs, OpMetadata, Opcode, Span, StackFrame,
    StackFrameIndex,
};

pub(crate) use crate::build::{Attr, Payload};

const SECTIONS: [&str; 4] = ["FileNames", "FunctionNames", "FileLocations", "StackFrames"];

pub(crate) fn module(c: &mut Cursor<'_>) -> PResult<Module> {
    c.skip_ws();
    let pos = c.pos;
    // XLA also reads a module without its header (computations only, as several of its tests
    // write them), naming it itself.
    let has_header = c.eat_keyword("HloModule");
    if !has_header && !(c.at_keyword("ENTRY") || at_computation_start(c)) {
        return Err(c.err_expected("'HloModule'"));
    }
    let name = if has_header {
        let Some(name) = c.word() else {
            return Err(c.err_expected("a module name"));
        };
        // XLA's lexer also reads `HloModule name:` (an older form its tests still use).
        c.eat(b':');
        name
    } else {
        "module"
    };
    let mut attrs = ModuleAttrs::default();
    let mut seen: Vec<&str> = Vec::new();
    while has_header && c.eat(b',') {
        let (key, key_pos) = attr_name(c)?;
        if seen.contains(&key) {
            return Err(PErr::new(key_pos, key_pos + key.len(), format!("duplicate attribute '{key}'")));
        }
        seen.push(key);
        c.expect(b'=')?;
        match key {
            "is_scheduled" => attrs.is_scheduled = c.bool()?,
            "entry_computation_layout" => {
                c.expect(b'{')?;
                attrs.entry_computation_layout = Some(program_shape(c)?);
                c.expect(b'}')?;
            }
            _ => {
                // Kept verbatim, but their syntax is checked as XLA's parser does.
                match key {
                    "input_output_alias" => aliasing(&mut c.clone())?,
                    "buffer_donor" => buffer_donor(&mut c.clone())?,
                    "debug_attributes" => debug_log_modes(c)?,
                    _ => {}
                }
                let value = c.skip_multiline_value()?;
                attrs.other.push((key.to_string(), value.to_string()));
            }
        }
    }
    attrs.other.sort_by_key(|(name, _)| hlo_ir::print::header_attr_rank(name));
    let mut ctx = Ctx::default();
    let mut entry: Option<usize> = None;
    let mut stack_frames = StackFrameIndex::default();
    let mut scratch = Scratch::default();
    loop {
        if c.at_end() {
            break;
        }
        if let Some(section) = SECTIONS.iter().copied().find(|s| at_section(c, s)) {
            c.eat_keyword(section);
            stack_frame_section(c, section, &mut stack_frames)?;
            continue;
        }
        let (comp, is_entry, name_ref, deferred_here) = computation(c, &mut ctx, &mut scratch)?;
        // Numbered when complete: the computations written inline in it come before it.
        let index = ctx.comps.len();
        ctx.comp_names.define(name_ref, index)?;
        ctx.deferred.extend(deferred_here.into_iter().map(|d| (index, d)));
        if is_entry {
            if entry.is_some() {
                let pos = name_ref.pos;
                return Err(PErr::new(pos, pos + comp.name.len() + 1, "more than one ENTRY computation"));
            }
            entry = Some(index);
        }
        ctx.comps.push(comp);
    }
    let Ctx { mut comps, comp_names, deferred, inline } = ctx;
    if comps.is_empty() {
        return Err(PErr::new(pos, pos + "HloModule".len(), "module has no computations"));
    }
    name_inline_computations(&mut comps, &inline);
    let wrapped = desugar_async_starts(&mut comps, &deferred)?;
    comp_names.resolve(&mut comps)?;
    link_async_wrappers(&mut comps, &wrapped, &deferred)?;
    infer_deferred_shapes(&mut comps, &deferred)?;
    check_deferred_conditionals(&comps, &deferred)?;
    let entry = entry.unwrap_or(comps.len() - 1);
    Ok(Module {
        name: name.to_string(),
        attrs,
        comps,
        entry: hlo_ir::CompId(entry as u32),
        stack_frames,
        dynamic_results: None,
    })
}

/// The module as read so far: complete computations, in the order they were completed (a
/// computation written inline in an attribute completes before the one that holds it).
#[derive(Default)]
pub(crate) struct Ctx<'a> {
    comps: Vec<Computation>,
    comp_names: CompNames<'a>,
    /// Instructions completed once the whole module is read, by computation index.
    deferred: Vec<(usize, Deferred)>,
    /// The computations written inline: index and the name to make unique for it.
    inline: Vec<(usize, String)>,
}

/// Names each computation written inline (`to_apply={...}`) after the instruction and
/// attribute that hold it (`reduce.3.to_apply`), made unique among the module's computations.
fn name_inline_computations(comps: &mut [Computation], inline: &[(usize, String)]) {
    let mut taken: std::collections::HashSet<String> =
        comps.iter().filter(|c| !c.name.is_empty()).map(|c| c.name.clone()).collect();
    for (index, base) in inline {
        let name = (0..)
            .map(|k| if k == 0 { base.clone() } else { format!("{base}.{k}") })
            .find(|n| !taken.contains(n))
            .unwrap_or_default();
        taken.insert(name.clone());
        comps[*index].name = name;
    }
}

/// A computation written inline as an attribute's value (`to_apply={ p0 = ... }`, as XLA's
/// parser accepts): its instructions are read in a scope of their own, and it becomes a
/// computation of the module, named once the module is read.
fn inline_computation<'a>(c: &mut Cursor<'a>, ctx: &mut Ctx<'a>, base: String) -> PResult<CompRef<'a>> {
    c.skip_ws();
    let pos = c.pos;
    c.enter()?;
    let mut scratch = Scratch::default();
    let (comp, deferred) = instruction_list(c, ctx, &mut scratch, "", pos)?;
    c.leave();
    let index = ctx.comps.len();
    let id = ctx.comp_names.inline(pos, index)?;
    ctx.deferred.extend(deferred.into_iter().map(|d| (index, d)));
    ctx.inline.push((index, base));
    ctx.comps.push(comp);
    Ok(CompRef::Inline(id))
}

/// The value of a computation attribute: a name or an inline computation (`Comp`), or a
/// braced list of those (`Comps`).
fn computation_value<'a>(
    c: &mut Cursor<'a>,
    ctx: &mut Ctx<'a>,
    grammar: attrs::Grammar,
    instr: &str,
    key: &str,
) -> PResult<attrs::Value<'a>> {
    let one = |c: &mut Cursor<'a>, ctx: &mut Ctx<'a>| -> PResult<CompRef<'a>> {
        if c.peek() == Some(b'{') {
            inline_computation(c, ctx, format!("{instr}.{key}"))
        } else {
            let (name, pos) = c.name("a computation name or an inline computation ('{')")?;
            Ok(CompRef::Named(NameRef { name, pos }))
        }
    };
    if matches!(grammar, attrs::Grammar::Comp) {
        return Ok(attrs::Value::Comp(one(c, ctx)?));
    }
    let mut comps = Vec::new();
    c.expect(b'{')?;
    if !c.eat(b'}') {
        loop {
            comps.push(one(c, ctx)?);
            if c.eat(b',') {
                continue;
            }
            c.expect(b'}')?;
            break;
        }
    }
    Ok(attrs::Value::Comps(comps))
}

/// `{ {output index}: (parameter, {parameter index}[, may-alias|must-alias]), ... }`.
fn aliasing(c: &mut Cursor<'_>) -> PResult<()> {
    const FORMAT: &str = "(in `input_output_alias`: `{output index}: (parameter, {parameter index}[, kind])`)";
    c.expect(b'{')?;
    while c.peek() != Some(b'}') {
        shape_index(c).map_err(|e| e.note(FORMAT))?;
        for (i, token) in [b':', b'('].into_iter().enumerate() {
            if !c.eat(token) {
                let what = if i == 0 { "':'" } else { "'('" };
                return Err(c.err_expected(&format!("{what} {FORMAT}")));
            }
        }
        if !matches!(c.peek(), Some(b'0'..=b'9')) {
            return Err(c.err_expected(&format!("a parameter number {FORMAT}")));
        }
        c.uint()?;
        c.expect(b',')?;
        shape_index(c).map_err(|e| e.note(FORMAT))?;
        if c.eat(b',') {
            c.skip_ws();
            let start = c.pos;
            match c.word() {
                Some("may-alias" | "must-alias") => {}
                _ => {
                    c.pos = start;
                    return Err(c.err_expected("'may-alias' or 'must-alias'"));
                }
            }
        }
        if !c.eat(b')') {
            return Err(c.err_expected(&format!("')' {FORMAT}")));
        }
        if !c.eat(b',') {
            break;
        }
    }
    if !c.eat(b'}') {
        return Err(c.err_expected(&format!("',' or '}}' {FORMAT}")));
    }
    Ok(())
}

/// The `log_mode=` values of `debug_attributes`: `default` or `fusion_debugger`.
fn debug_log_modes(c: &mut Cursor<'_>) -> PResult<()> {
    c.skip_ws();
    let start = c.pos;
    let value = c.clone().skip_multiline_value()?;
    for (k, _) in value.match_indices("log_mode=") {
        let mode_at = k + "log_mode=".len();
        let mode: String = value[mode_at..].chars().take_while(|&ch| is_name_char(ch)).collect();
        if mode != "default" && mode != "fusion_debugger" {
            let at = start + mode_at;
            return Err(PErr::new(
                at,
                at + mode.len().max(1),
                format!("invalid log_mode '{mode}' (default or fusion_debugger)"),
            ));
        }
    }
    Ok(())
}

/// `{ (parameter, {parameter index}), ... }`.
fn buffer_donor(c: &mut Cursor<'_>) -> PResult<()> {
    const FORMAT: &str = "(in `buffer_donor`: `(parameter, {parameter index})`)";
    c.expect(b'{')?;
    while c.peek() != Some(b'}') {
        if !c.eat(b'(') {
            return Err(c.err_expected(&format!("'(' {FORMAT}")));
        }
        if !matches!(c.peek(), Some(b'0'..=b'9')) {
            return Err(c.err_expected(&format!("a parameter number {FORMAT}")));
        }
        c.uint()?;
        c.expect(b',')?;
        shape_index(c).map_err(|e| e.note(FORMAT))?;
        if !c.eat(b')') {
            return Err(c.err_expected(&format!("')' {FORMAT}")));
        }
        if !c.eat(b',') {
            break;
        }
    }
    if !c.eat(b'}') {
        return Err(c.err_expected(&format!("',' or '}}' {FORMAT}")));
    }
    Ok(())
}

/// `{i, j, ...}`: a shape index, non-negative integers.
fn shape_index(c: &mut Cursor<'_>) -> PResult<()> {
    c.expect(b'{')?;
    if c.eat(b'}') {
        return Ok(());
    }
    loop {
        if !matches!(c.peek(), Some(b'0'..=b'9')) {
            return Err(c.err_expected("a shape index (non-negative integers)"));
        }
        c.uint()?;
        if c.eat(b',') {
            continue;
        }
        c.expect(b'}')?;
        return Ok(());
    }
}

/// Buffers reused from one instruction to the next, so that the hot path does not allocate them.
#[derive(Default)]
pub(crate) struct Scratch<'a> {
    attrs: Vec<Attr<'a>>,
    seen: Vec<&'a str>,
}

/// A computation's name followed by its signature or body (`add {`, `%add (a: f32[]) -> ...`).
fn at_computation_start(c: &Cursor<'_>) -> bool {
    let mut probe = c.clone();
    probe.name("a computation").is_ok() && matches!(probe.peek(), Some(b'{' | b'('))
}

/// A section keyword not used as a computation name (`FileNames {` would be a computation).
fn at_section(c: &mut Cursor<'_>, kw: &str) -> bool {
    if !c.at_keyword(kw) {
        return false;
    }
    let mut probe = c.clone();
    probe.eat_keyword(kw);
    !matches!(probe.peek(), Some(b'{' | b'('))
}

fn stack_frame_section(c: &mut Cursor<'_>, section: &str, index: &mut StackFrameIndex) -> PResult<()> {
    while matches!(c.peek(), Some(b'0'..=b'9')) {
        let id = c.int()?;
        match section {
            "FileNames" => index.file_names.push((id, c.string()?)),
            "FunctionNames" => index.function_names.push((id, c.string()?)),
            "FileLocations" => {
                let mut loc = FileLocation::default();
                int_fields(c, |key, v| {
                    let slot = match key {
                        "file_name_id" => &mut loc.file_name_id,
                        "function_name_id" => &mut loc.function_name_id,
                        "line" => &mut loc.line,
                        "end_line" => &mut loc.end_line,
                        "column" => &mut loc.column,
                        "end_column" => &mut loc.end_column,
                        _ => return false,
                    };
                    *slot = v;
                    true
                })?;
                index.file_locations.push((id, loc));
            }
            _ => {
                let mut frame = StackFrame::default();
                int_fields(c, |key, v| {
                    let slot = match key {
                        "file_location_id" => &mut frame.file_location_id,
                        "parent_frame_id" => &mut frame.parent_frame_id,
                        _ => return false,
                    };
                    *slot = v;
                    true
                })?;
                index.stack_frames.push((id, frame));
            }
        }
    }
    Ok(())
}

/// `{key=int key=int ...}` (commas optional); `set` returns false for an unknown key.
fn int_fields(c: &mut Cursor<'_>, mut set: impl FnMut(&str, i64) -> bool) -> PResult<()> {
    c.expect(b'{')?;
    while !c.eat(b'}') {
        let (key, pos) = attr_name(c)?;
        c.expect(b'=')?;
        let v = c.int()?;
        if !set(key, v) {
            return Err(PErr::new(pos, pos + key.len(), format!("unknown field '{key}'")));
        }
        c.eat(b',');
    }
    Ok(())
}

fn attr_name<'a>(c: &mut Cursor<'a>) -> PResult<(&'a str, usize)> {
    c.skip_ws();
    let pos = c.pos;
    match c.ident() {
        Some(name) => Ok((name, pos)),
        None => Err(c.err_expected("an attribute name")),
    }
}

fn computation<'a>(
    c: &mut Cursor<'a>,
    ctx: &mut Ctx<'a>,
    scratch: &mut Scratch<'a>,
) -> PResult<(Computation, bool, NameRef<'a>, Vec<Deferred>)> {
    let is_entry = c.eat_keyword("ENTRY");
    let (name, pos) = c.name(if is_entry { "a computation name" } else { "a computation" })?;
    let declared = if c.peek() == Some(b'(') { Some(signature(c)?) } else { None };
    let (mut comp, deferred) = instruction_list(c, ctx, scratch, name, pos)?;
    if let Some((result, start, end)) = declared {
        // XLA checks the declared result against the root (the parameters carry their own
        // shapes). A root whose shape is inferred later is checked by the verifier.
        let root = comp.instr(comp.root);
        let later = deferred.iter().any(|d| d.instr == root.name && matches!(d.kind, DeferredKind::InferShape));
        if !later && !result.compatible(&root.shape) {
            return Err(PErr::new(
                start,
                end,
                format!(
                    "the signature of computation '%{name}' declares the result shape {}, but its root '%{}' has the shape {}",
                    hlo_ir::print::print_shape(&result),
                    root.name,
                    hlo_ir::print::print_shape(&root.shape)
                ),
            ));
        }
    }
    let save = c.pos;
    if c.eat(b',') {
        if c.eat_keyword("execution_thread") {
            c.expect(b'=')?;
            comp.execution_thread = Some(c.string()?);
        } else {
            c.pos = save;
            c.pos += 1;
            return Err(c.err_expected("'execution_thread'"));
        }
    }
    Ok((comp, is_entry, NameRef { name, pos }, deferred))
}

/// `'{' instruction* '}'`: a computation's body, named `name` (empty for one written inline).
fn instruction_list<'a>(
    c: &mut Cursor<'a>,
    ctx: &mut Ctx<'a>,
    scratch: &mut Scratch<'a>,
    name: &str,
    pos: usize,
) -> PResult<(Computation, Vec<Deferred>)> {
    c.expect(b'{')?;
    let estimate = estimate_lines(c.rest());
    let mut comp = Computation::new(name);
    comp.instrs.reserve(estimate);
    comp.spans.reserve(estimate);
    let mut names = NameMap::default();
    names.reserve(estimate);
    let mut body = Body {
        comp,
        names,
        pending: Vec::new(),
        params: Vec::new(),
        root: None,
        deferred: Vec::new(),
        operand_shapes: Vec::new(),
    };
    while !c.eat(b'}') {
        if c.at_end() {
            return Err(c.err_expected("an instruction or '}'"));
        }
        instruction(c, &mut body, ctx, scratch)?;
    }
    if body.comp.instrs.is_empty() {
        let message = if name.is_empty() {
            "inline computation has no instructions".to_string()
        } else {
            format!("computation '%{name}' has no instructions")
        };
        return Err(PErr::new(pos, pos + name.len() + 1, message));
    }
    build::finish(body)
}

/// A computation being read: its instructions so far, their names, and the references
/// that named instructions not yet defined.
pub(crate) struct Body<'a> {
    pub comp: Computation,
    pub names: NameMap<'a, u32>,
    pub pending: Vec<Pending<'a>>,
    /// `(instruction index, parameter number, offset of the opcode, end of the instruction)`.
    pub params: Vec<(u32, u64, usize, usize)>,
    /// Index of the `ROOT` instruction, if one is marked.
    pub root: Option<u32>,
    /// Instructions completed once the whole module is read.
    pub deferred: Vec<Deferred>,
    /// Operand shapes written out (`add(f32[2] %x, ...)`), checked against the operands'
    /// shapes when the computation ends: instruction index ([`UNPLACED`] until pushed),
    /// operand number, the shape and its span.
    pub operand_shapes: Vec<(u32, u32, hlo_ir::Shape, usize, usize)>,
}

/// An instruction that needs the other computations of the module to be complete: async
/// syntax sugar, whose wrapped computation is made from it, and a shape written out that only
/// its called computations give.
pub(crate) struct Deferred {
    /// The instruction's name (arena indices change when a computation is sorted).
    pub(crate) instr: String,
    /// The opcode's span, for messages.
    start: usize,
    end: usize,
    pub(crate) kind: DeferredKind,
}

pub(crate) enum DeferredKind {
    /// `X-start(operands), attrs`: an `async-start` wrapping `X(operands), attrs`.
    AsyncStart(hlo_ir::Op),
    /// `X-update`/`X-done`: an `async-update`/`async-done` of the start it reads, which must
    /// wrap an `X`.
    AsyncWrapper(Opcode),
    /// A shape left out where inferring it needs called computations (`conditional`, `call`).
    InferShape,
    /// A `conditional` whose selector's shape is not known yet: whether its branches were
    /// written as `branch_computations` (the span is that of the attribute's name).
    ConditionalForm { listed: bool },
}

/// How a `conditional` names its branches: the first of its branch attributes.
struct ConditionalForm<'a> {
    /// `branch_computations={...}` rather than `true_computation`/`false_computation`.
    listed: bool,
    attr: &'a str,
    start: usize,
}

fn conditional_form<'a>(opcode: Opcode, attrs: &[Attr<'a>]) -> Option<ConditionalForm<'a>> {
    if opcode != Opcode::Conditional {
        return None;
    }
    let a = attrs
        .iter()
        .filter(|a| matches!(a.name, "branch_computations" | "true_computation" | "false_computation"))
        .min_by_key(|a| a.pos)?;
    Some(ConditionalForm { listed: a.name == "branch_computations", attr: a.name, start: a.pos })
}

/// XLA's parser reads `true_computation`/`false_computation` for a `pred` selector and
/// `branch_computations` for an integer one, and refuses the other form (`listed`: the
/// branches were written as `branch_computations`). Other selector types are left to the
/// verifier.
fn check_selector(selector: &hlo_ir::Shape, listed: bool, start: usize, end: usize) -> PResult<()> {
    let Some(dtype) = selector.dtype() else { return Ok(()) };
    let pred = dtype == hlo_ir::DType::Pred;
    if pred && listed {
        return Err(PErr::new(
            start,
            end,
            "a conditional whose selector is pred takes 'true_computation' and 'false_computation', not 'branch_computations'",
        ));
    }
    if !pred && !listed && dtype.is_integer() {
        return Err(PErr::new(
            start,
            end,
            format!(
                "a conditional whose selector is {dtype} takes 'branch_computations', not 'true_computation'/'false_computation'"
            ),
        ));
    }
    Ok(())
}

/// Checks the [`DeferredKind::ConditionalForm`] conditionals once every shape is known.
fn check_deferred_conditionals(comps: &[Computation], deferred: &[(usize, Deferred)]) -> PResult<()> {
    for (c, d) in deferred {
        let DeferredKind::ConditionalForm { listed } = d.kind else { continue };
        let comp = &comps[*c];
        let Some(id) = comp.find(&d.instr) else { continue };
        if let Some(&selector) = comp.instr(id).operands.first() {
            check_selector(&comp.instr(selector).shape, listed, d.start, d.end)?;
        }
    }
    Ok(())
}

/// An operand or control-predecessor reference: resolved now if defined, else deferred. A
/// deferred reference is recorded for the instruction being read ([`UNPLACED`]) and gets its
/// index when that instruction is pushed: nested operands are pushed before it.
fn reference<'a>(body: &mut Body<'a>, r: NameRef<'a>, slot: Slot) -> InstrId {
    match body.names.get(r.name) {
        Some(&i) => InstrId::from_index(i as usize),
        None => {
            body.pending.push(Pending { instr: UNPLACED, slot, name: r });
            InstrId::from_index(0)
        }
    }
}

/// The instruction index of a deferred reference whose instruction is not pushed yet.
pub(crate) const UNPLACED: u32 = u32::MAX;

fn instruction<'a>(
    c: &mut Cursor<'a>,
    body: &mut Body<'a>,
    ctx: &mut Ctx<'a>,
    scratch: &mut Scratch<'a>,
) -> PResult<()> {
    let is_root = c.eat_keyword("ROOT");
    let (name, pos) = c.name("an instruction name")?;
    if body.names.contains_key(name) {
        return Err(PErr::new(pos, pos + name.len() + 1, format!("duplicate instruction name '%{name}'")));
    }
    if is_root && body.root.is_some() {
        return Err(PErr::new(pos, pos + name.len(), "more than one ROOT instruction in computation"));
    }
    c.expect(b'=')?;
    // XLA also reads `name = opcode(...)` and infers the shape from the operands.
    let shape = if at_nested_opcode(c) { None } else { Some(shape(c)?) };
    let index = instruction_rhs(c, body, ctx, scratch, name.to_string(), pos, shape, false)?;
    body.names.insert(name, index);
    if is_root {
        body.root = Some(index);
    }
    Ok(())
}

/// An operand written as an instruction (`add(f32[] x, f32[] multiply(f32[] y, f32[] z))`, as
/// XLA's parser accepts): pushed as an instruction of its own, named after its opcode.
fn nested_operand<'a>(
    c: &mut Cursor<'a>,
    body: &mut Body<'a>,
    ctx: &mut Ctx<'a>,
    shape: Option<hlo_ir::Shape>,
) -> PResult<InstrId> {
    let pos = c.pos;
    let opcode = c.rest().split(|ch: char| !is_name_char(ch)).next().unwrap_or("operand");
    let mut k = body.comp.instrs.len();
    let name = loop {
        let candidate = format!("{opcode}.nested.{k}");
        if !body.names.contains_key(candidate.as_str()) && !body.comp.instrs.iter().any(|i| i.name == candidate) {
            break candidate;
        }
        k += 1;
    };
    // Its own attribute scratch: the enclosing instruction's attributes are read after it.
    let mut nested = Scratch::default();
    let index = instruction_rhs(c, body, ctx, &mut nested, name, pos, shape, true)?;
    Ok(InstrId::from_index(index as usize))
}

/// XLA's compact get-tuple-element operand, `%t#1#0`: element 0 of element 1 of `%t`, which
/// must be defined before it. Each distinct path becomes one `get-tuple-element` instruction,
/// named `t_1_0` (made unique), shared by every use of the same text.
fn compact_gte<'a>(c: &mut Cursor<'a>, body: &mut Body<'a>, base: &'a str, pos: usize) -> PResult<InstrId> {
    let Some(&base_index) = body.names.get(base) else {
        return Err(PErr::new(
            pos,
            pos + base.len() + 1,
            format!("compact get-tuple-element: '%{base}' must be defined before '%{base}#...'"),
        ));
    };
    let name_start = c.pos - base.len();
    let mut current = base_index;
    let mut synthesized = base.to_string();
    while c.peek_raw(0) == Some(b'#') {
        c.pos += 1;
        let index_pos = c.pos;
        let index = c.uint()?;
        synthesized = format!("{synthesized}_{index}");
        let path = &c.src[name_start..c.pos];
        if let Some(&known) = body.names.get(path) {
            current = known;
            continue;
        }
        let element = match &body.comp.instrs[current as usize].shape {
            hlo_ir::Shape::Tuple(elements) => elements.get(index as usize).cloned(),
            _ => None,
        };
        let Some(element) = element else {
            return Err(PErr::new(
                index_pos,
                c.pos,
                format!("compact get-tuple-element: '%{path}' is not an element of a tuple"),
            ));
        };
        let mut k = 0;
        let name = loop {
            let candidate = if k == 0 { synthesized.clone() } else { format!("{synthesized}.{k}") };
            if !body.names.contains_key(candidate.as_str()) && !body.comp.instrs.iter().any(|i| i.name == candidate) {
                break candidate;
            }
            k += 1;
        };
        let instr = Instr {
            name,
            shape: element,
            op: hlo_ir::Op::GetTupleElement { index },
            operands: vec![InstrId::from_index(current as usize)],
            meta: InstrMeta::default(),
        };
        let index = body.comp.instrs.len() as u32;
        body.comp.push_with_span(instr, Span { start: crate::error::to_u32(pos), end: crate::error::to_u32(c.pos) });
        body.names.insert(path, index);
        current = index;
    }
    Ok(InstrId::from_index(current as usize))
}

/// Whether the text after a `,` is an attribute (`name=`), not another operand.
fn at_attribute(c: &Cursor<'_>) -> bool {
    let rest = c.rest().trim_start();
    let word_len = rest.char_indices().find(|&(_, ch)| !is_name_char(ch) && ch != '-').map_or(rest.len(), |(i, _)| i);
    word_len > 0 && rest[word_len..].trim_start().starts_with('=')
}

/// Everything of an instruction after `name = shape`: opcode, operands and attributes; pushes
/// it and returns its index. `nested`: an operand of another instruction, whose attribute list
/// stops at the first `,` that does not start an attribute.
#[allow(clippy::too_many_arguments)]
fn instruction_rhs<'a>(
    c: &mut Cursor<'a>,
    body: &mut Body<'a>,
    ctx: &mut Ctx<'a>,
    scratch: &mut Scratch<'a>,
    name: String,
    pos: usize,
    declared: Option<hlo_ir::Shape>,
    nested: bool,
) -> PResult<u32> {
    // Without a declared shape, ops are built against an empty tuple and the shape is inferred.
    let shape = declared.clone().unwrap_or(hlo_ir::Shape::Tuple(Vec::new()));
    let pending_start = body.pending.len();
    let shapes_start = body.operand_shapes.len();
    c.skip_ws();
    let opcode_pos = c.pos;
    let Some(opcode_name) = c.word() else {
        return Err(c.err_expected("an opcode"));
    };
    let (opcode, sugar) = match Opcode::from_name(opcode_name) {
        Some(opcode) => (opcode, None),
        None => async_sugar(opcode_name)
            .map(|(opcode, part)| (opcode, Some(part)))
            .ok_or_else(|| PErr::new(opcode_pos, c.pos, format!("unknown opcode '{opcode_name}'")))?,
    };
    c.expect(b'(')?;
    let mut operands = Vec::new();
    let payload = match opcode {
        Opcode::Parameter => {
            let n = c.uint()?;
            c.expect(b')')?;
            // Bounded by the text so that registering it cannot allocate more than the input;
            // the exact check (numbers 0..count, each once) runs when the computation ends.
            if n > (c.src.len() / 8) as u64 {
                return Err(c.err_since(opcode_pos, format!("parameter number {n} is out of range")));
            }
            Payload::Parameter(n)
        }
        Opcode::Constant => {
            let lit = literal(c, &shape)?;
            c.expect(b')')?;
            Payload::Constant(Box::new(lit))
        }
        _ => {
            if !c.eat(b')') {
                loop {
                    c.skip_ws();
                    let shape_start = c.pos;
                    let operand_shape = if at_shape(c) { Some(crate::shape::shape(c)?) } else { None };
                    match operand_shape {
                        shape if at_nested_opcode(c) => {
                            operands.push(nested_operand(c, body, ctx, shape)?);
                        }
                        shape => {
                            if let Some(shape) = shape {
                                let k = operands.len() as u32;
                                body.operand_shapes.push((UNPLACED, k, shape, shape_start, c.pos));
                            }
                            let (name, pos) = c.name("an operand")?;
                            if c.peek_raw(0) == Some(b'#') {
                                operands.push(compact_gte(c, body, name, pos)?);
                            } else {
                                let slot = Slot::Operand(operands.len() as u32);
                                operands.push(reference(body, NameRef { name, pos }, slot));
                            }
                        }
                    }
                    if c.eat(b',') {
                        continue;
                    }
                    c.expect(b')')?;
                    break;
                }
            }
            Payload::Operands
        }
    };
    scratch.attrs.clear();
    scratch.seen.clear();
    let mut unexpected_comp_attr: Option<(&str, usize)> = None;
    let mut meta = InstrMeta::default();
    // The span ends after the last token of the instruction, not after the whitespace that
    // the failed search for another `,` skipped.
    let mut end = c.pos;
    loop {
        let before = c.pos;
        if !c.eat(b',') {
            break;
        }
        if nested && !at_attribute(c) {
            c.pos = before;
            break;
        }
        let (key, key_pos) = attr_name(c)?;
        if scratch.seen.contains(&key) {
            return Err(PErr::new(key_pos, key_pos + key.len(), format!("duplicate attribute '{key}'")));
        }
        scratch.seen.push(key);
        c.expect(b'=')?;
        match key {
            "metadata" => meta.metadata = Some(metadata(c)?),
            "backend_config" => {
                let value = if c.peek() == Some(b'"') { c.quoted()? } else { c.skip_value()? };
                meta.backend_config = Some(value.to_string());
            }
            "sharding" => {
                if c.peek() != Some(b'{') {
                    return Err(c.err_expected("'{'"));
                }
                c.skip_ws();
                let start = c.pos;
                let value = c.skip_value()?;
                device_counts(value, start)?;
                meta.sharding = Some(value.to_string());
            }
            "frontend_attributes" => meta.frontend_attributes = frontend_attributes(c)?,
            "control-predecessors" => {
                c.expect(b'{')?;
                if !c.eat(b'}') {
                    loop {
                        let (name, pos) = c.name("an instruction name")?;
                        let slot = Slot::Pred(meta.control_predecessors.len() as u32);
                        let id = reference(body, NameRef { name, pos }, slot);
                        meta.control_predecessors.push(id);
                        if c.eat(b',') {
                            continue;
                        }
                        c.expect(b'}')?;
                        break;
                    }
                }
            }
            _ => match attrs::grammar_of(key).filter(|_| attrs::accepts(opcode, key)) {
                Some(grammar @ (attrs::Grammar::Comp | attrs::Grammar::Comps)) => {
                    let value = computation_value(c, ctx, grammar, &name, key)?;
                    scratch.attrs.push(Attr { name: key, pos: key_pos, value });
                }
                Some(grammar) => {
                    let value = attrs::value(c, grammar)?;
                    scratch.attrs.push(Attr { name: key, pos: key_pos, value });
                }
                None => {
                    c.skip_ws();
                    let start = c.pos;
                    // A computation attribute XLA does not give this opcode (unknown attributes
                    // are otherwise kept verbatim).
                    if matches!(attrs::grammar_of(key), Some(attrs::Grammar::Comp | attrs::Grammar::Comps)) {
                        unexpected_comp_attr.get_or_insert((key, key_pos));
                    }
                    match key {
                        "result_accuracy" if !takes_result_accuracy(opcode) => {
                            let opcode = opcode.name();
                            return Err(PErr::new(
                                key_pos,
                                key_pos + key.len(),
                                format!(
                                    "unexpected attribute \"result_accuracy\" for {opcode}: XLA takes it only on the transcendental unary ops ({})",
                                    RESULT_ACCURACY_OPS.iter().map(|o| o.name()).collect::<Vec<_>>().join(", ")
                                ),
                            ));
                        }
                        "result_accuracy" => result_accuracy(&mut c.clone())?,
                        "replica_groups" if c.rest().starts_with("mesh[") => mesh_replica_groups(c.rest(), start)?,
                        "replica_groups" => device_counts(c.rest().split('\n').next().unwrap_or(""), start)?,
                        _ => {}
                    }
                    let value = c.skip_value()?;
                    meta.other_attrs.push((key.to_string(), value.to_string()));
                }
            },
        }
        end = c.pos;
    }
    // List unmodelled attributes in the order the printer writes them.
    meta.other_attrs.sort_by_key(|(name, _)| hlo_ir::print::other_attr_rank(opcode, name));
    let parameter_number = if let Payload::Parameter(n) = payload { Some(n) } else { None };
    xla_checks(opcode, &scratch.attrs, &operands, body, pending_start, declared.as_ref(), opcode_pos, end)?;
    if let Some(form) = conditional_form(opcode, &scratch.attrs) {
        // The selector's shape decides which attributes name the branches: checked now when it
        // is known, else once the module is read.
        let later =
            body.pending[pending_start..].iter().any(|p| p.instr == UNPLACED && matches!(p.slot, Slot::Operand(0)))
                || operands.first().is_some_and(|o| {
                    let target = &body.comp.instrs[o.index()].name;
                    body.deferred.iter().any(|d| d.instr == *target && matches!(d.kind, DeferredKind::InferShape))
                });
        match operands.first() {
            Some(o) if !later => check_selector(
                &body.comp.instrs[o.index()].shape,
                form.listed,
                form.start,
                form.start + form.attr.len(),
            )?,
            Some(_) => body.deferred.push(Deferred {
                instr: name.clone(),
                start: form.start,
                end: form.start + form.attr.len(),
                kind: DeferredKind::ConditionalForm { listed: form.listed },
            }),
            None => {}
        }
    }
    let op = build::op(opcode, opcode_pos, payload, &mut scratch.attrs, &shape, &mut ctx.comp_names)?;
    // Checked for the opcodes the IR models (the others keep all their attributes verbatim).
    if let (Some((key, key_pos)), false) = (unexpected_comp_attr, matches!(op, hlo_ir::Op::Other { .. })) {
        let opcode = opcode.name();
        return Err(PErr::new(key_pos, key_pos + key.len(), format!("unexpected attribute \"{key}\" for {opcode}")));
    }
    let op = if sugar == Some(AsyncPart::Start) {
        if declared.is_none() {
            return Err(PErr::new(
                opcode_pos,
                end,
                format!("write the shape of {opcode_name} (`name = shape {opcode_name}(...)`)"),
            ));
        }
        let kind = DeferredKind::AsyncStart(op);
        body.deferred.push(Deferred { instr: name.clone(), start: opcode_pos, end, kind });
        hlo_ir::Op::Async { opcode: Opcode::AsyncStart, calls: None }
    } else {
        if sugar.is_some() {
            let stem = opcode_name.rsplit_once('-').and_then(|(stem, _)| Opcode::from_name(stem));
            body.deferred.push(Deferred {
                instr: name.clone(),
                start: opcode_pos,
                end,
                kind: DeferredKind::AsyncWrapper(stem.unwrap_or(opcode)),
            });
        }
        op
    };
    if let hlo_ir::Op::Async { opcode: part, .. } = &op {
        let bad_shape = !matches!(declared.as_ref().and_then(|s| s.as_tuple()), Some([hlo_ir::Shape::Tuple(_), _, ..]));
        if *part != Opcode::AsyncDone && bad_shape {
            return Err(PErr::new(
                opcode_pos,
                end,
                format!("{opcode_name} takes the shape ((operand shapes...), result shape, ...)"),
            ));
        }
        if *part != Opcode::AsyncStart {
            let Some(first) = operands.first() else {
                return Err(PErr::new(
                    opcode_pos,
                    end,
                    format!("{opcode_name} takes the async-start or async-update it completes as operand, found none"),
                ));
            };
            let defined = !body.pending[pending_start..]
                .iter()
                .any(|p| p.instr == UNPLACED && matches!(p.slot, Slot::Operand(0)));
            if defined {
                if let hlo_ir::Op::Async { opcode: Opcode::AsyncDone, .. } = body.comp.instrs[first.index()].op {
                    return Err(PErr::new(
                        opcode_pos,
                        end,
                        format!(
                            "{opcode_name} takes an async-start or async-update as operand, found the async-done '%{}'",
                            body.comp.instrs[first.index()].name
                        ),
                    ));
                }
            }
        }
    }
    let shape = match declared {
        Some(shape) => shape,
        None => match inferred_shape(body, &op, &operands, pending_start) {
            Some(shape) => shape,
            // Its called computations give it: inferred once they are all read.
            None if !op.called_computations().is_empty()
                && !body.pending[pending_start..].iter().any(|p| p.instr == UNPLACED) =>
            {
                body.deferred.push(Deferred {
                    instr: name.clone(),
                    start: opcode_pos,
                    end,
                    kind: DeferredKind::InferShape,
                });
                hlo_ir::Shape::Tuple(Vec::new())
            }
            None => {
                return Err(PErr::new(
                    opcode_pos,
                    end,
                    format!(
                        "cannot infer the shape of this {opcode_name}: write it (`name = shape {opcode_name}(...)`)"
                    ),
                ))
            }
        },
    };
    let index = body.comp.instrs.len();
    if index >= u32::MAX as usize - 1 {
        return Err(PErr::new(pos, pos + 1, "too many instructions in one computation"));
    }
    let index = index as u32;
    if let Some(n) = parameter_number {
        body.params.push((index, n, opcode_pos, end));
    }
    for p in &mut body.pending[pending_start..] {
        if p.instr == UNPLACED {
            p.instr = index;
        }
    }
    for s in &mut body.operand_shapes[shapes_start..] {
        if s.0 == UNPLACED {
            s.0 = index;
        }
    }
    let instr = Instr { name, shape, op, operands, meta };
    body.comp.push_with_span(instr, Span { start: crate::error::to_u32(pos), end: crate::error::to_u32(end) });
    Ok(index)
}

/// Checks XLA's parser makes on what the IR does not keep or the verifier does not see.
#[allow(clippy::too_many_arguments)]
fn xla_checks(
    opcode: Opcode,
    attrs: &[Attr<'_>],
    operands: &[InstrId],
    body: &Body<'_>,
    pending_start: usize,
    declared: Option<&hlo_ir::Shape>,
    start: usize,
    end: usize,
) -> PResult<()> {
    use attrs::Value;
    use Opcode as O;
    let attr = |name: &str| attrs.iter().find(|a| a.name == name);
    // An operand's shape, when it is defined before the instruction.
    let operand_shape = |k: usize| {
        let later = body.pending[pending_start..]
            .iter()
            .any(|p| p.instr == UNPLACED && matches!(p.slot, Slot::Operand(n) if n as usize == k));
        operands.get(k).filter(|_| !later).map(|o| &body.comp.instrs[o.index()].shape)
    };
    let name = opcode.name();
    if matches!(opcode, O::AllGather | O::AllGatherStart | O::ReduceScatter) {
        if let Some(Attr { value: Value::Ints(dims), pos, .. }) = attr("dimensions") {
            if dims.len() != 1 {
                let n = dims.len();
                return Err(PErr::new(
                    *pos,
                    pos + "dimensions".len(),
                    format!("{name} takes exactly one dimension, found {n}"),
                ));
            }
        }
    }
    if opcode == O::CustomCall {
        if let Some(Attr { value: Value::Shapes(shapes), pos, .. }) = attr("operand_layout_constraints") {
            let at = PErr::new(*pos, pos + "operand_layout_constraints".len(), "");
            if shapes.len() != operands.len() {
                return Err(PErr::new(
                    at.start,
                    at.end,
                    format!(
                        "expected {} operand layout constraints (one per operand), found {}",
                        operands.len(),
                        shapes.len()
                    ),
                ));
            }
            for (k, constraint) in shapes.iter().enumerate() {
                if let Some(shape) = operand_shape(k).filter(|s| !constraint.compatible(s)) {
                    return Err(PErr::new(
                        at.start,
                        at.end,
                        format!(
                            "operand layout constraint {k}, {}, does not match the shape of operand {k}, {}",
                            hlo_ir::print::print_shape(constraint),
                            hlo_ir::print::print_shape(shape)
                        ),
                    ));
                }
            }
        }
    }
    if let (O::DynamicReshape, Some(hlo_ir::Shape::Array(result))) = (opcode, declared) {
        let sizes = operands.len().saturating_sub(1);
        if sizes != result.rank() {
            return Err(PErr::new(
                start,
                end,
                format!(
                    "dynamic-reshape takes one dimension size operand per result dimension: {sizes} for {} dimensions",
                    result.rank()
                ),
            ));
        }
        if let Some(hlo_ir::Shape::Array(operand)) = operand_shape(0) {
            let count = |a: &hlo_ir::ArrayShape| {
                a.dims.iter().try_fold(1i64, |n, &d| if d < 0 { None } else { n.checked_mul(d) })
            };
            if let (Some(a), Some(b)) = (count(operand), count(result)) {
                if a != b {
                    return Err(PErr::new(start, end, format!(
                        "dynamic-reshape: the result shape {} holds {b} elements (at its bounds), the operand {} holds {a}",
                        hlo_ir::print::print_shape(declared.unwrap_or(&hlo_ir::Shape::Tuple(vec![]))),
                        hlo_ir::print::print_shape(operand_shape(0).unwrap_or(&hlo_ir::Shape::Tuple(vec![])))
                    )));
                }
            }
        }
    }
    if matches!(opcode, O::Infeed | O::Recv) {
        let bad = match declared {
            None => false,
            Some(hlo_ir::Shape::Tuple(elems)) => elems.is_empty(),
            Some(_) => true,
        };
        if bad {
            let form = if opcode == O::Infeed { "(data, token)" } else { "(data, context, token)" };
            return Err(PErr::new(start, end, format!("{name} takes a non-empty tuple shape {form}")));
        }
    }
    Ok(())
}

/// The opcodes XLA's parser reads `result_accuracy=` on (its unary ops "with result
/// accuracy"); on any other it is an unexpected attribute.
const RESULT_ACCURACY_OPS: [Opcode; 20] = [
    Opcode::Acos,
    Opcode::Acosh,
    Opcode::Asin,
    Opcode::Asinh,
    Opcode::Atanh,
    Opcode::Expm1,
    Opcode::Log,
    Opcode::Log1p,
    Opcode::Logistic,
    Opcode::Sqrt,
    Opcode::Cbrt,
    Opcode::Rsqrt,
    Opcode::Tanh,
    Opcode::Erf,
    Opcode::Sin,
    Opcode::Sinh,
    Opcode::Cos,
    Opcode::Cosh,
    Opcode::Tan,
    Opcode::Exp,
];

fn takes_result_accuracy(opcode: Opcode) -> bool {
    RESULT_ACCURACY_OPS.contains(&opcode)
}

/// `{mode=default|highest}` or `{tolerance={rtol=x, atol=x, ulps=n}}` (only on
/// [`RESULT_ACCURACY_OPS`]).
fn result_accuracy(c: &mut Cursor<'_>) -> PResult<()> {
    c.expect(b'{')?;
    let (key, _) = attr_name(c)?;
    c.expect(b'=')?;
    match key {
        "mode" => {
            c.skip_ws();
            let at = c.pos;
            if !matches!(c.word(), Some("default" | "highest")) {
                c.pos = at;
                return Err(c.err_expected("a result accuracy mode ('default' or 'highest')"));
            }
        }
        "tolerance" => {
            c.expect(b'{')?;
            if !c.eat(b'}') {
                loop {
                    c.skip_ws();
                    let at = c.pos;
                    let (field, _) = attr_name(c)?;
                    if !matches!(field, "rtol" | "atol" | "ulps") {
                        return Err(PErr::new(
                            at,
                            at + field.len(),
                            format!("unknown result accuracy tolerance '{field}' (rtol, atol, ulps)"),
                        ));
                    }
                    c.expect(b'=')?;
                    c.skip_ws();
                    if c.float_token().is_none() {
                        return Err(c.err_expected("a number"));
                    }
                    c.eat(b',');
                    if c.eat(b'}') {
                        break;
                    }
                }
            }
        }
        _ => {
            let at = c.pos - key.len();
            return Err(PErr::new(at, c.pos, format!("unknown result accuracy field '{key}' (mode, tolerance)")));
        }
    }
    c.expect(b'}')?;
    Ok(())
}

/// `mesh['a'=2,'b'=4(, device_ids=(...))] {'a', ...}`: replica groups over the axes of a
/// device mesh. The axes chosen must be the mesh's (by name or index) and the device ids, when
/// listed, as many as the mesh has devices. `at` is the offset of `text` in the source.
fn mesh_replica_groups(text: &str, at: usize) -> PResult<()> {
    let Some(close) = text.find(']') else { return Ok(()) };
    let mesh = &text["mesh[".len()..close];
    let (axes_text, device_ids) = match mesh.find("device_ids") {
        Some(k) => (&mesh[..k], Some(&mesh[k..])),
        None => (mesh, None),
    };
    let mut names = Vec::new();
    let mut devices: u64 = 1;
    for axis in axes_text.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let Some((name, size)) = axis.split_once('=') else { return Ok(()) };
        names.push(name.trim().trim_matches('\'').to_string());
        devices = devices.saturating_mul(size.trim().parse().unwrap_or(0));
    }
    if let Some(ids) = device_ids {
        let list = ids.split_once('(').and_then(|(_, r)| r.split_once(')')).map_or("", |(l, _)| l);
        let n = list.split(',').filter(|x| !x.trim().is_empty()).count() as u64;
        if n != devices {
            let k = at + "mesh[".len() + axes_text.len();
            return Err(PErr::new(
                k,
                k + "device_ids".len(),
                format!("{n} device_ids listed, but the mesh has {devices} devices"),
            ));
        }
    }
    let rest = &text[close + 1..];
    let Some(open) = rest.find('{').filter(|&k| rest[..k].trim().is_empty()) else { return Ok(()) };
    let Some(end) = rest[open..].find('}') else { return Ok(()) };
    let mut offset = close + 1 + open + 1;
    for item in rest[open + 1..open + end].split(',') {
        let axis = item.trim().split(':').next().unwrap_or("").trim_matches('\'');
        let item_at = at + offset + item.find(|ch: char| !ch.is_whitespace()).unwrap_or(0);
        offset += item.len() + 1;
        let valid = match axis.parse::<usize>() {
            Ok(index) => index < names.len(),
            Err(_) => names.iter().any(|n| n == axis),
        };
        if !valid && !axis.is_empty() {
            let mesh_axes = names.join(", ");
            return Err(PErr::new(
                item_at,
                item_at + item.trim().len(),
                format!("'{axis}' is not an axis of the mesh (names {mesh_axes}, or an index below {})", names.len()),
            ));
        }
    }
    Ok(())
}

/// The device counts written in a sharding or in iota replica groups: `devices=[2,2]0,1,2,3`
/// lists as many devices as the tile dimensions' product, and an iota `[2,2]<=[4]` (or
/// `<=[2,2]T(1,0)`) reshapes that many. `at` is the offset of `text` in the source.
fn device_counts(text: &str, at: usize) -> PResult<()> {
    let ints = |s: &str| -> Option<Vec<u64>> { s.split(',').map(|x| x.trim().parse::<u64>().ok()).collect() };
    let mut from = 0;
    loop {
        let Some(found) = text[from..].find('[') else { return Ok(()) };
        let open = from + found;
        from = open + 1;
        // Tile dimensions follow `devices=` in a sharding; a replica-group iota starts the value.
        let before = text[..open].trim_end();
        if !(before.ends_with("devices=") || before.is_empty()) {
            continue;
        }
        let Some(close) = text[open..].find(']').map(|k| open + k) else { return Ok(()) };
        let Some(dims) = ints(&text[open + 1..close]) else { continue };
        let product: u64 = dims.iter().product();
        let rest = &text[close + 1..];
        let err = |message: String| Err(PErr::new(at + open, at + close + 1, message));
        if let Some(iota) = rest.trim_start().strip_prefix("<=[") {
            let Some(iota_dims) = iota.find(']').and_then(|k| ints(&iota[..k])) else { continue };
            let n: u64 = iota_dims.iter().product();
            if n != product {
                return err(format!(
                    "the iota of {n} devices does not match the tile assignment dimensions' product, {product}"
                ));
            }
        } else if !before.is_empty() {
            let list: String =
                rest.chars().take_while(|ch| ch.is_ascii_digit() || *ch == ',' || ch.is_whitespace()).collect();
            let n = list.split(',').filter(|x| !x.trim().is_empty()).count() as u64;
            if n != product {
                return err(format!("{n} devices listed, but the tile assignment dimensions' product is {product}"));
            }
        }
    }
}

/// Which part of an async op a sugared opcode names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AsyncPart {
    Start,
    Update,
    Done,
}

/// XLA's async syntax sugar: `X-start` is an `async-start` wrapping op `X`, `X-update` and
/// `X-done` its `async-update` and `async-done`. Returns the opcode to parse the instruction
/// as (X's own for a start, so that its attributes are read) and the part.
fn async_sugar(name: &str) -> Option<(Opcode, AsyncPart)> {
    let (stem, part) = if let Some(stem) = name.strip_suffix("-start") {
        (stem, AsyncPart::Start)
    } else if let Some(stem) = name.strip_suffix("-update") {
        (stem, AsyncPart::Update)
    } else {
        (name.strip_suffix("-done")?, AsyncPart::Done)
    };
    let inner = Opcode::from_name(stem)?;
    // As in XLA, these have async forms of their own and no sugar.
    use Opcode as O;
    if matches!(inner, O::AllGather | O::AllReduce | O::CollectivePermute | O::Copy | O::Recv | O::Send) {
        return None;
    }
    Some(match part {
        AsyncPart::Start => (inner, part),
        AsyncPart::Update => (Opcode::AsyncUpdate, part),
        AsyncPart::Done => (Opcode::AsyncDone, part),
    })
}

/// Makes the computation each sugared `X-start` wraps: parameters of the operand shapes its
/// shape declares (element 0), root `X` of the result shape (element 1). Returns the async
/// starts with their new computations, linked after computation names are resolved (the
/// wrapped op's own computation references are resolved with everything else).
fn desugar_async_starts(
    comps: &mut Vec<Computation>,
    deferred: &[(usize, Deferred)],
) -> PResult<Vec<(usize, String, hlo_ir::CompId)>> {
    let mut wrapped = Vec::new();
    for (c, d) in deferred {
        let DeferredKind::AsyncStart(inner) = &d.kind else { continue };
        let Some(id) = comps[*c].find(&d.instr) else { continue };
        let instr = comps[*c].instr(id);
        let bad =
            || PErr::new(d.start, d.end, "an async start's shape must be ((operand shapes...), result shape, ...)");
        let elems = instr.shape.as_tuple().ok_or_else(bad)?;
        let (Some(hlo_ir::Shape::Tuple(params)), Some(result)) = (elems.first(), elems.get(1)) else {
            return Err(bad());
        };
        if params.len() != instr.operands.len() {
            return Err(PErr::new(d.start, d.end, "the async start's operand shapes do not match its operands"));
        }
        let taken = |n: &str| comps.iter().any(|c| c.name == n);
        let base = format!("{}.wrapped", instr.name);
        let name =
            (0..).map(|k| if k == 0 { base.clone() } else { format!("{base}.{k}") }).find(|n| !taken(n)).unwrap();
        let mut comp = Computation::new(name);
        let mut args = Vec::new();
        for (k, p) in params.iter().enumerate() {
            let param = Instr::new(format!("param.{k}"), p.clone(), hlo_ir::Op::Parameter { number: k as u64 }, vec![]);
            args.push(comp.push(param));
        }
        let root_name = d.instr.trim_end_matches("-start").to_string();
        let mut root = Instr::new(root_name, result.clone(), inner.clone(), args);
        root.meta = instr.meta.clone();
        comp.root = comp.push(root);
        comp.execution_thread = None;
        wrapped.push((*c, d.instr.clone(), hlo_ir::CompId(comps.len() as u32)));
        comps.push(comp);
    }
    Ok(wrapped)
}

/// Points each desugared start at its wrapped computation, then each `async-update` and
/// `async-done` at the computation of the start (or update) it completes, checking what it
/// writes itself (`calls=`, `async_execution_thread=`, the `X` of `X-update`) against it.
fn link_async_wrappers(
    comps: &mut [Computation],
    wrapped: &[(usize, String, hlo_ir::CompId)],
    deferred: &[(usize, Deferred)],
) -> PResult<()> {
    for (c, name, id) in wrapped {
        if let Some(i) = comps[*c].find(name) {
            comps[*c].instr_mut(i).op = hlo_ir::Op::Async { opcode: Opcode::AsyncStart, calls: Some(*id) };
        }
    }
    let thread = |instr: &Instr| {
        instr
            .meta
            .other_attrs
            .iter()
            .find(|(k, _)| k == "async_execution_thread")
            .map(|(_, v)| v.trim_matches('"').to_string())
    };
    for c in 0..comps.len() {
        // The computation each async op of this computation runs (an update's or done's is
        // its start's), in order: an update is linked before the done that reads it.
        let mut runs: Vec<Option<hlo_ir::CompId>> = vec![None; comps[c].instrs.len()];
        for k in 0..comps[c].instrs.len() {
            let comp = &comps[c];
            let instr = &comp.instrs[k];
            let hlo_ir::Op::Async { opcode, calls: own } = instr.op else { continue };
            if opcode == Opcode::AsyncStart {
                runs[k] = own;
                continue;
            }
            let Some(first) = instr.operands.first() else { continue };
            let Some(producer) = comp.instrs.get(first.index()) else { continue };
            let Some(id) = runs.get(first.index()).copied().flatten() else { continue };
            runs[k] = Some(id);
            let span = comp.spans[k];
            let err = |message: String| PErr::new(span.start as usize, span.end as usize, message);
            let comp_name = |id: hlo_ir::CompId| comps.get(id.index()).map_or("?", |c| c.name.as_str()).to_string();
            if let Some(own) = own.filter(|&own| own != id) {
                return Err(err(format!(
                    "'%{}' completes '%{}', which calls %{}, but it names calls=%{}",
                    instr.name,
                    producer.name,
                    comp_name(id),
                    comp_name(own)
                )));
            }
            let expected = thread(producer).unwrap_or_else(|| "main".to_string());
            if let Some(found) = thread(instr).filter(|t| *t != expected) {
                return Err(err(format!(
                    "'%{}' completes '%{}', whose async_execution_thread is \"{expected}\", but it names \"{found}\"",
                    instr.name, producer.name
                )));
            }
            let stem = deferred.iter().find_map(|(dc, d)| match d.kind {
                DeferredKind::AsyncWrapper(stem) if *dc == c && d.instr == instr.name => Some(stem),
                _ => None,
            });
            let wrapped_op = comps.get(id.index()).map(|w| w.root_instr().op.opcode());
            if let (Some(stem), Some(wrapped_op)) = (stem, wrapped_op) {
                if stem != wrapped_op {
                    return Err(err(format!(
                        "'%{}' ({}-{}) completes an async {}, not {}",
                        instr.name,
                        stem.name(),
                        if opcode == Opcode::AsyncUpdate { "update" } else { "done" },
                        wrapped_op.name(),
                        stem.name()
                    )));
                }
            }
            // A sugared one has no `calls=` of its own; one written out keeps what it names.
            if let (Some(_), hlo_ir::Op::Async { calls, .. }) = (stem, &mut comps[c].instrs[k].op) {
                *calls = Some(id);
            }
        }
    }
    Ok(())
}

/// Infers the shapes left out where the called computations give them, in module order.
fn infer_deferred_shapes(comps: &mut [Computation], deferred: &[(usize, Deferred)]) -> PResult<()> {
    for (c, d) in deferred {
        if !matches!(d.kind, DeferredKind::InferShape) {
            continue;
        }
        let Some(id) = comps[*c].find(&d.instr) else { continue };
        let comp = &comps[*c];
        let instr = comp.instr(id);
        let shapes: Vec<&hlo_ir::Shape> = instr.operands.iter().map(|o| &comp.instr(*o).shape).collect();
        let callee =
            |k: hlo_ir::CompId| comps.get(k.index()).and_then(|callee| hlo_ir::shape_inference::signature(callee));
        let shape = hlo_ir::shape_inference::infer_op(&instr.op, &shapes, None, &callee).ok().flatten();
        let opcode = instr.op.opcode().name();
        let shape = shape.ok_or_else(|| {
            PErr::new(
                d.start,
                d.end,
                format!("cannot infer the shape of this {opcode}: write it (`name = shape {opcode}(...)`)"),
            )
        })?;
        comps[*c].instr_mut(id).shape = shape;
    }
    Ok(())
}

/// The shape of an instruction written without one, from its operands (all defined before
/// it): `None` when an operand comes later or the op's shape does not follow from its operands.
fn inferred_shape(
    body: &Body<'_>,
    op: &hlo_ir::Op,
    operands: &[InstrId],
    pending_start: usize,
) -> Option<hlo_ir::Shape> {
    if body.pending[pending_start..].iter().any(|p| p.instr == UNPLACED) {
        return None;
    }
    let shapes: Vec<&hlo_ir::Shape> = operands.iter().map(|&o| &body.comp.instrs[o.index()].shape).collect();
    hlo_ir::shape_inference::infer_op(op, &shapes, None, &|_| None).ok().flatten()
}

/// Whether an operand's shape is followed by an opcode and `(`: a nested instruction.
fn at_nested_opcode(c: &Cursor<'_>) -> bool {
    let rest = c.rest().trim_start();
    let word_len = rest.char_indices().find(|&(_, ch)| !is_name_char(ch) && ch != '-').map_or(rest.len(), |(i, _)| i);
    word_len > 0 && Opcode::from_name(&rest[..word_len]).is_some() && rest[word_len..].trim_start().starts_with('(')
}

/// `(p: shape, ...) -> shape`: checked for syntax; returns the result shape and its span (the
/// parameters carry their own shapes).
fn signature(c: &mut Cursor<'_>) -> PResult<(hlo_ir::Shape, usize, usize)> {
    c.expect(b'(')?;
    if !c.eat(b')') {
        loop {
            // Printed bare, so a `%`-name such as `%0` or `%-x` comes back as `0` or `-x`.
            c.eat(b'%');
            if c.word().is_none() {
                return Err(c.err_expected("a parameter name"));
            }
            c.expect(b':')?;
            shape(c)?;
            if c.eat(b',') {
                continue;
            }
            c.expect(b')')?;
            break;
        }
    }
    if !c.eat_str("->") {
        return Err(c.err_expected("'->'"));
    }
    c.skip_ws();
    let start = c.pos;
    let result = shape(c)?;
    Ok((result, start, c.pos))
}

/// True when an operand starts with a shape (`f32[2] %x`, `(f32[], s32[]) %t`, `token[] %t`).
fn at_shape(c: &mut Cursor<'_>) -> bool {
    match c.peek() {
        Some(b'(') => true,
        Some(_) => {
            let rest = c.rest();
            let word_len = rest.char_indices().find(|&(_, ch)| !is_name_char(ch)).map_or(rest.len(), |(i, _)| i);
            rest[word_len..].starts_with('[')
                && (crate::shape::dtype_from_name(&rest[..word_len]).is_some() || &rest[..word_len] == "token")
        }
        None => false,
    }
}

/// `{op_type="..." op_name="..." source_file="..." source_line=12 stack_frame_id=3 ...}`.
fn metadata(c: &mut Cursor<'_>) -> PResult<OpMetadata> {
    c.expect(b'{')?;
    let mut m = OpMetadata::default();
    while !c.eat(b'}') {
        let (key, pos) = attr_name(c)?;
        c.expect(b'=')?;
        let dup = || PErr::new(pos, pos + key.len(), format!("duplicate metadata field '{key}'"));
        let string_slot = match key {
            "op_type" => Some(&mut m.op_type),
            "op_name" => Some(&mut m.op_name),
            "source_file" => Some(&mut m.source_file),
            "deduplicated_name" => Some(&mut m.deduplicated_name),
            "scheduling_name" => Some(&mut m.scheduling_name),
            _ => None,
        };
        if let Some(slot) = string_slot {
            if slot.is_some() {
                return Err(dup());
            }
            *slot = Some(c.string()?);
        } else {
            let int_slot = match key {
                "source_line" => Some(&mut m.source_line),
                "source_end_line" => Some(&mut m.source_end_line),
                "source_column" => Some(&mut m.source_column),
                "source_end_column" => Some(&mut m.source_end_column),
                "stack_frame_id" => Some(&mut m.stack_frame_id),
                _ => None,
            };
            if let Some(slot) = int_slot {
                if slot.is_some() {
                    return Err(dup());
                }
                *slot = Some(c.int()?);
            } else {
                let value = metadata_value(c)?;
                m.other.push((key.to_string(), value.to_string()));
            }
        }
        c.eat(b',');
    }
    Ok(m)
}

/// An unmodelled metadata value: a string, a balanced `{...}`, or a bare word.
fn metadata_value<'a>(c: &mut Cursor<'a>) -> PResult<&'a str> {
    match c.peek() {
        Some(b'"') => c.quoted(),
        Some(b'{' | b'[' | b'(') => c.group(),
        _ => {
            let start = c.pos;
            let len = c.rest().find(|ch: char| ch.is_whitespace() || ch == ',' || ch == '}').unwrap_or(c.rest().len());
            if len == 0 {
                return Err(c.err_expected("a metadata value"));
            }
            c.pos += len;
            Ok(&c.src[start..c.pos])
        }
    }
}

/// `{key="value", key={json}}`: strings are unescaped, JSON dicts kept verbatim.
fn frontend_attributes(c: &mut Cursor<'_>) -> PResult<Vec<(String, String)>> {
    c.expect(b'{')?;
    let mut out = Vec::new();
    if c.eat(b'}') {
        return Ok(out);
    }
    loop {
        let key = if c.peek() == Some(b'"') {
            c.string()?
        } else {
            match c.word() {
                Some(w) => w.to_string(),
                None => return Err(c.err_expected("an attribute name")),
            }
        };
        c.expect(b'=')?;
        let value = match c.peek() {
            Some(b'"') => c.string()?,
            Some(b'{') => c.group()?.to_string(),
            _ => return Err(c.err_expected("a string or '{'")),
        };
        out.push((key, value));
        if c.eat(b',') {
            continue;
        }
        c.expect(b'}')?;
        return Ok(out);
    }
}
