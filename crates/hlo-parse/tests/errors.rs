//! Error cases: exact line, column and message for a table of bad inputs, and insta
//! snapshots of the rendered diagnostic (`FILE:LINE:COL: message`, source line, caret)
//! for every file in `tests/cases/errors/`.

/// Collects mismatches so that one run reports every wrong expectation in a table.
#[derive(Default)]
struct Table(Vec<String>);

impl Table {
    /// Parses `src` and compares the error's line, column and message.
    fn check(&mut self, src: &str, line: u32, column: u32, message: &str) {
        match hlo_parse::parse_module(src) {
            Ok(_) => self.0.push(format!("expected an error for:\n{src}")),
            Err(err) if (err.line, err.column, err.message.as_str()) == (line, column, message) => {}
            Err(err) => self.0.push(format!(
                "expected {line}:{column}: {message}\n     got {}",
                hlo_parse::render_error(src, "input", &err)
            )),
        }
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        if !self.0.is_empty() && !std::thread::panicking() {
            panic!("{} mismatch(es):\n{}", self.0.len(), self.0.join("\n"));
        }
    }
}

/// Wraps one instruction line (and optional extra computations) into a module.
fn entry(body: &str) -> String {
    format!("HloModule m\n\nENTRY %main {{\n{body}\n}}\n")
}

#[test]
fn module_structure() {
    let mut t = Table::default();
    t.check("", 1, 1, "expected 'HloModule', found end of input");
    t.check("HloModul m", 1, 1, "expected 'HloModule', found 'HloModul'");
    t.check("HloModule", 1, 10, "expected a module name, found end of input");
    t.check("HloModule m", 1, 1, "module has no computations");
    t.check("HloModule m, is_scheduled=maybe", 1, 27, "expected 'true' or 'false', found 'maybe'");
    t.check("HloModule m, a=1, a=2", 1, 19, "duplicate attribute 'a'");
    t.check("HloModule m\n%c {\n}", 2, 1, "computation '%c' has no instructions");
    t.check(
        "HloModule m\n%c {\n  %x = f32[] parameter(0)\n",
        4,
        1,
        "expected an instruction or '}', found end of input",
    );
    t.check("HloModule m\n%c (x: f32[]) f32[] {\n  %x = f32[] parameter(0)\n}", 2, 15, "expected '->', found 'f32'");
    t.check(
        "HloModule m\n%c {\n  %x = f32[] parameter(0)\n}\n%c {\n  %y = f32[] parameter(0)\n}",
        5,
        1,
        "duplicate computation name '%c'",
    );
    t.check(
        "HloModule m\nENTRY %a {\n  %x = f32[] parameter(0)\n}\nENTRY %b {\n  %y = f32[] parameter(0)\n}",
        5,
        7,
        "more than one ENTRY computation",
    );
    t.check(
        "HloModule m\n%c {\n  %x = f32[] parameter(0)\n}, thread=\"t\"",
        4,
        4,
        "expected 'execution_thread', found 'thread'",
    );
}

#[test]
fn instructions() {
    let mut t = Table::default();
    t.check(&entry("  ROOT %x = f32[] foo()"), 4, 19, "unknown opcode 'foo'");
    t.check(&entry("  ROOT %x f32[] parameter(0)"), 4, 11, "expected '=', found 'f32'");
    t.check(&entry("  ROOT %x = f32[] negate(%y)"), 4, 26, "undefined instruction '%y'");
    t.check(&entry("  %x = f32[] parameter(0)\n  ROOT %x = f32[] negate(%x)"), 5, 8, "duplicate instruction name '%x'");
    t.check(
        &entry("  ROOT %x = f32[] parameter(0)\n  ROOT %y = f32[] negate(%x)"),
        5,
        8,
        "more than one ROOT instruction in computation",
    );
    t.check(
        &entry("  %a = f32[] negate(%b)\n  ROOT %b = f32[] negate(%a)"),
        4,
        3,
        "instruction '%a' depends on itself (a cycle through operands or control predecessors)",
    );
    t.check(
        &entry("  ROOT %x = f32[] parameter(1)"),
        4,
        19,
        "parameter number 1 is out of range: the computation has 1 parameters",
    );
    t.check(&entry("  %x = f32[] parameter(0)\n  ROOT %y = f32[] parameter(0)"), 5, 19, "duplicate parameter number 0");
    t.check(&entry("  ROOT %x = f32[] parameter(-1)"), 4, 29, "expected a non-negative integer, found '-1'");
    t.check(&entry("  ROOT %x = f32[] parameter(0), sharding=replicated"), 4, 42, "expected '{', found 'replicated'");
    t.check(&entry("  ROOT %x = f32[] parameter(0), a=1, a=2"), 4, 38, "duplicate attribute 'a'");
    t.check(&entry("  ROOT %x = f32[] parameter(0), metadata={op_name=\"x}"), 4, 51, "unterminated string");
    t.check(&entry("  ROOT %x = f32[] parameter(0), foo={1,2"), 4, 37, "unclosed '{'");
    t.check(&entry("  ROOT %x = f32[] parameter(0), foo={1,2]"), 4, 41, "expected '}', found ']'");
    // A missing closing bracket: just after the last token before it, not at the next line.
    t.check(&entry("  %p = f32[4] parameter(0)\n  ROOT %x = f32[4] negate(%p"), 5, 29, "expected ')', found '}'");
    t.check(
        &entry("  ROOT %x = f32[] parameter(0), control-predecessors={%nope}"),
        4,
        55,
        "undefined instruction '%nope'",
    );
}

#[test]
fn attributes() {
    let mut t = Table::default();
    t.check(
        &entry("  %p = f32[4] parameter(0)\n  ROOT %s = f32[1] slice(%p), slice={[0:1}"),
        5,
        42,
        "expected ']', found '}'",
    );
    t.check(
        &entry("  %p = f32[4] parameter(0)\n  ROOT %r = f32[] reduce(%p, %p), dimensions={0}"),
        5,
        19,
        "missing attribute 'to_apply' of 'reduce'",
    );
    t.check(
        &entry("  %p = f32[4] parameter(0)\n  ROOT %r = f32[] reduce(%p, %p), dimensions={0}, to_apply=%nope"),
        5,
        60,
        "undefined computation '%nope'",
    );
    t.check(
        &entry("  %p = f32[4] parameter(0)\n  ROOT %c = pred[4] compare(%p, %p), direction=XX"),
        5,
        48,
        "expected a comparison direction (EQ, NE, LT, LE, GT, GE), found 'XX'",
    );
    t.check(
        &entry("  %p = f32[4] parameter(0)\n  ROOT %c = f32[4] concatenate(%p, %p), dimensions={0,1}"),
        5,
        41,
        "expected exactly one dimension in 'dimensions', found 2",
    );
    t.check(
        &entry("  %p = f32[4] parameter(0)\n  ROOT %f = f32[4] fusion(%p), kind=kFast, calls=%main"),
        5,
        37,
        "expected a fusion kind (kLoop, kInput, kOutput, kCustom), found 'kFast'",
    );
    t.check(
        &entry("  %p = f32[4,4] parameter(0)\n  ROOT %r = f32[4,4] reduce-window(%p, %p), window={size=3x3 strid=2x2}, to_apply=%main"),
        5,
        62,
        "unknown window field 'strid'",
    );
    t.check(
        &entry("  %p = f32[4,4] parameter(0)\n  ROOT %r = f32[4,4] reduce-window(%p, %p), window={size=3x3 stride=2}, to_apply=%main"),
        5,
        62,
        "window field 'stride' has 1 dimensions but 'size' has 2",
    );
    t.check(
        &entry(
            "  %p = f32[1,4,4,1] parameter(0)\n  ROOT %c = f32[1,4,4,1] convolution(%p, %p), dim_labels=b01f_01io->bf",
        ),
        5,
        58,
        "input, kernel and output dimension labels have different numbers of spatial dimensions",
    );
    t.check(
        &entry("  %p = f32[4] parameter(0)\n  ROOT %c = f32[4] convolution(%p, %p), dim_labels=b0x_0io->b0f"),
        5,
        52,
        "unexpected dimension label 'x' in 'b0x' (expected 'b', 'f' and 0..1)",
    );
    t.check(
        &entry("  %p = f32[4] parameter(0)\n  ROOT %d = f32[4] dot(%p, %p), operand_precision={fast}"),
        5,
        52,
        "expected a precision (default, high, highest), found 'fast'",
    );
    t.check(
        &entry("  %p = f32[4] parameter(0)\n  ROOT %q = f32[4] pad(%p, %p), padding=1x1"),
        5,
        42,
        "expected '_', found 'x1'",
    );
}

#[test]
fn shapes_and_literals() {
    let mut t = Table::default();
    t.check(&entry("  ROOT %x = f33[] parameter(0)"), 4, 13, "expected a shape, found unknown element type 'f33'");
    t.check(&entry("  ROOT %x = f32[2,-1] parameter(0)"), 4, 19, "dimension size must be non-negative, found -1");
    t.check(
        &entry("  ROOT %x = f32[99999999999999999999] parameter(0)"),
        4,
        17,
        "integer '99999999999999999999' is out of range",
    );
    t.check(
        &entry("  ROOT %x = f32[9999999999,9999999999] parameter(0)"),
        4,
        13,
        "shape has more bytes than fit in 64 bits",
    );
    // 2^61 elements of 4 bytes: the count fits in an i64, the byte size does not.
    t.check(
        &entry("  ROOT %x = f32[2305843009213693952] parameter(0)"),
        4,
        13,
        "shape has more bytes than fit in 64 bits",
    );
    t.check(
        &entry("  ROOT %x = f32[2]{0:X(1)} parameter(0)"),
        4,
        22,
        "expected a layout item (T, E, S, D, L, #, *, SC or M), found 'X'",
    );
    t.check(
        &entry(&format!("  ROOT %x = {}f32[]{} parameter(0)", "(".repeat(70), ")".repeat(70))),
        4,
        77,
        "nesting deeper than 64 levels",
    );
    t.check(&entry("  ROOT %c = f32[2,2] constant({1, 2})"), 4, 32, "expected '{', found '1'");
    t.check(&entry("  ROOT %c = f32[3] constant({1, 2})"), 4, 29, "expected 3 elements in dimension 0, found 2");
    t.check(
        &entry("  ROOT %c = f32[1] constant({1, 2})"),
        4,
        33,
        "expected '}' after 1 elements in dimension 0, found '2'",
    );
    t.check(&entry("  ROOT %c = f32[2] constant({{1}, {2}})"), 4, 30, "expected a value of type f32, found '{'");
    t.check(&entry("  ROOT %c = s8[] constant(300)"), 4, 27, "value 300 is out of range for s8");
    t.check(&entry("  ROOT %c = u32[] constant(-1)"), 4, 28, "value -1 is out of range for u32");
    t.check(&entry("  ROOT %c = f16[] constant(1e6)"), 4, 28, "value 1e6 is out of range for f16");
    t.check(
        &entry("  ROOT %c = f16[] constant(nan(0x400))"),
        4,
        28,
        "NaN payload does not fit in f16 (or the type has no such NaN)",
    );
    t.check(&entry("  ROOT %c = pred[] constant(2)"), 4, 29, "expected 'true', 'false', '0' or '1', found '2'");
    // `{...}` (an elided constant) parses; only a scalar cannot be elided.
    t.check(&entry("  ROOT %c = f32[] constant({...})"), 4, 28, "expected a value of type f32, found '{'");
    t.check(&entry("  ROOT %c = (f32[], s32[]) constant((1, 2, 3))"), 4, 42, "expected ')', found ','");
}

#[test]
fn shape_and_literal_entry_points() {
    assert!(hlo_parse::parse_shape("f32[2]{0} x").is_err());
    let shape = hlo_parse::parse_shape("(f32[2,<=3]{1,0}, token[])").unwrap();
    assert_eq!(hlo_ir::print::print_shape(&shape), "(f32[2,<=3]{1,0}, token[])");
    let err = hlo_parse::parse_literal("{1, 2} 3", &hlo_parse::parse_shape("s32[2]").unwrap()).unwrap_err();
    assert_eq!((err.line, err.column, err.message.as_str()), (1, 8, "expected end of input, found '3'"));
}

#[test]
fn rendered_errors_match_snapshots() {
    insta::glob!("cases/errors/*.hlo", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let rendered = match hlo_parse::parse_module(&text) {
            Ok(_) => panic!("{name} parsed without error"),
            Err(e) => hlo_parse::render_error(&text, &name, &e),
        };
        insta::assert_snapshot!(rendered);
    });
}

#[test]
fn declared_shapes_must_match() {
    let mut t = Table::default();
    // A shape written before an operand is the operand's (layouts aside), wherever it is defined.
    t.check(
        &entry("  %x = f32[3] parameter(0)\n  ROOT %a = f32[3] add(f32[2] %x, f32[3] %x)"),
        5,
        24,
        "the declared operand shape f32[2] does not match the shape of '%x', f32[3]",
    );
    t.check(
        &entry("  ROOT %a = f32[3] negate(s32[3] %x)\n  %x = f32[3] parameter(0)"),
        4,
        27,
        "the declared operand shape s32[3] does not match the shape of '%x', f32[3]",
    );
    t.check(
        &entry("  %t = (f32[2], s32[]) parameter(0)\n  ROOT %n = f32[2] negate(f32[3] %t#0)"),
        5,
        27,
        "the declared operand shape f32[3] does not match the shape of '%t_0', f32[2]",
    );
    // The result a signature declares is the root's.
    t.check(
        "HloModule m\n\nENTRY %main (x: f32[2]) -> f32[3] {\n  ROOT %x = f32[2] parameter(0)\n}\n",
        3,
        28,
        "the signature of computation '%main' declares the result shape f32[3], but its root '%x' has the shape f32[2]",
    );
    t.check(
        "HloModule m\n\n%f () -> (f32[], s32[]) {\n  ROOT %c = f32[] constant(1)\n}\n\nENTRY %main {\n  ROOT %c = f32[] call(), to_apply=%f\n}\n",
        3,
        10,
        "the signature of computation '%f' declares the result shape (f32[], s32[]), but its root '%c' has the shape f32[]",
    );
}

#[test]
fn declared_shapes_that_match_up_to_layout_are_accepted() {
    let text = "HloModule m\n\nENTRY %main (x: f32[2,3]) -> f32[2,3]{0,1} {\n  %x = f32[2,3]{1,0} parameter(0)\n  ROOT %n = f32[2,3]{1,0} negate(f32[2,3]{0,1} %x)\n}\n";
    hlo_parse::parse_module(text).unwrap_or_else(|e| panic!("{}", hlo_parse::render_error(text, "input", &e)));
}

#[test]
fn aliasing_header_attributes() {
    let mut t = Table::default();
    let body = "\n\nENTRY %main {\n  ROOT %p = (f32[], f32[]) parameter(0)\n}\n";
    let ok = format!("HloModule m, input_output_alias={{ {{0}}: (0, {{0}}, must-alias), {{1}}: (0, {{1}}) }}, buffer_donor={{ (0, {{}}) }}{body}");
    hlo_parse::parse_module(&ok).unwrap_or_else(|e| panic!("{}", hlo_parse::render_error(&ok, "input", &e)));
    const ALIAS: &str = "(in `input_output_alias`: `{output index}: (parameter, {parameter index}[, kind])`)";
    t.check(
        &format!("HloModule m, input_output_alias={{ {{0, x}}: (0, {{0}}) }}{body}"),
        1,
        39,
        &format!("expected a shape index (non-negative integers), found 'x' {ALIAS}"),
    );
    t.check(
        &format!("HloModule m, input_output_alias={{ {{0}} (0, {{0}}) }}{body}"),
        1,
        39,
        &format!("expected ':' {ALIAS}, found '('"),
    );
    t.check(
        &format!("HloModule m, input_output_alias={{ {{0}}: (0, {{0}}, maybe) }}{body}"),
        1,
        49,
        "expected 'may-alias' or 'must-alias', found 'maybe'",
    );
    t.check(
        &format!("HloModule m, buffer_donor={{ (p, {{0}}) }}{body}"),
        1,
        30,
        "expected a parameter number (in `buffer_donor`: `(parameter, {parameter index})`), found 'p'",
    );
}

#[test]
fn async_chains() {
    let mut t = Table::default();
    let wrapped = "HloModule m\n\n%w (p: f32[2]) -> f32[3] {\n  %p = f32[2] parameter(0)\n  ROOT %c = f32[3] custom-call(%p), custom_call_target=\"f\"\n}\n\n%v (p: f32[2]) -> f32[3] {\n  %p = f32[2] parameter(0)\n  ROOT %c = f32[3] custom-call(%p), custom_call_target=\"g\"\n}\n\nENTRY %main {\n  %x = f32[2] parameter(0)\n";
    let start = "  %s = ((f32[2]), f32[3], s32[]) async-start(%x), calls=%w\n";
    t.check(
        &format!("{wrapped}  %s = (f32[2], f32[3], s32[]) async-start(%x), calls=%w\n  ROOT %d = f32[3] async-done(%s)\n}}\n"),
        15,
        32,
        "async-start takes the shape ((operand shapes...), result shape, ...)",
    );
    t.check(
        &format!("{wrapped}{start}  ROOT %d = f32[3] async-done()\n}}\n"),
        16,
        20,
        "async-done takes the async-start or async-update it completes as operand, found none",
    );
    t.check(
        &format!("{wrapped}{start}  %d = f32[3] async-done(%s)\n  ROOT %e = f32[3] async-done(%d)\n}}\n"),
        17,
        20,
        "async-done takes an async-start or async-update as operand, found the async-done '%d'",
    );
    t.check(
        &format!("{wrapped}{start}  ROOT %d = f32[3] async-done(%s), calls=%v\n}}\n"),
        16,
        8,
        "'%d' completes '%s', which calls %w, but it names calls=%v",
    );
    t.check(
        &format!("{wrapped}{start}  ROOT %d = f32[3] async-done(%s), async_execution_thread=\"t\"\n}}\n"),
        16,
        8,
        "'%d' completes '%s', whose async_execution_thread is \"main\", but it names \"t\"",
    );
    t.check(
        &entry("  %x = f32[2] parameter(0)\n  %s = ((f32[2]), f32[3], s32[]) custom-call-start(%x), custom_call_target=\"f\"\n  ROOT %d = f32[3] negate-done(%s)"),
        6,
        8,
        "'%d' (negate-done) completes an async custom-call, not negate",
    );
    // Ops with async forms of their own have no `X-update` sugar.
    t.check(
        &entry("  %x = f32[2] parameter(0)\n  %s = (f32[2], f32[2], u32[]) copy-start(%x)\n  %u = (f32[2], f32[2], u32[]) copy-update(%s)\n  ROOT %d = f32[2] copy-done(%u)"),
        6,
        32,
        "unknown opcode 'copy-update'",
    );
}

#[test]
fn attribute_checks_xla_makes() {
    let mut t = Table::default();
    let x = "  %x = f32[4,4] parameter(0)\n";
    t.check(
        &entry(&format!("{x}  ROOT %c = f32[4,4] copy(%x), sharding={{devices=[2,2]0,1,2}}")),
        5,
        50,
        "3 devices listed, but the tile assignment dimensions' product is 4",
    );
    t.check(
        &entry(&format!("{x}  ROOT %c = f32[4,4] copy(%x), sharding={{devices=[2,2]<=[8]}}")),
        5,
        50,
        "the iota of 8 devices does not match the tile assignment dimensions' product, 4",
    );
    t.check(
        &entry(&format!("{x}  ROOT %g = f32[8,4] all-gather(%x), dimensions={{0}}, replica_groups=[2,2]<=[2]")),
        5,
        69,
        "the iota of 2 devices does not match the tile assignment dimensions' product, 4",
    );
    t.check(
        &entry(&format!("{x}  ROOT %g = f32[4,4] all-gather(%x), replica_groups={{}}, dimensions={{}}")),
        5,
        57,
        "all-gather takes exactly one dimension, found 0",
    );
    t.check(
        &entry(&format!("{x}  ROOT %e = f32[4,4] exponential(%x), result_accuracy={{mode=high}}")),
        5,
        61,
        "expected a result accuracy mode ('default' or 'highest'), found 'high'",
    );
    t.check(
        &entry(&format!("{x}  ROOT %e = f32[4,4] exponential(%x), result_accuracy={{tolerance={{rtol=0.5, btol=1}}}}")),
        5,
        77,
        "unknown result accuracy tolerance 'btol' (rtol, atol, ulps)",
    );
    t.check(
        &entry("  %p = s32[10] parameter(0)\n  ROOT %o = s8[10,4] bitcast-convert(%p), result_accuracy={tolerance={rtol=0.5, atol=1.0, ulps=2}}"),
        5,
        43,
        "unexpected attribute \"result_accuracy\" for bitcast-convert: XLA takes it only on the transcendental unary ops \
         (acos, acosh, asin, asinh, atanh, exponential-minus-one, log, log-plus-one, logistic, sqrt, cbrt, rsqrt, tanh, \
         erf, sine, sinh, cosine, cosh, tan, exponential)",
    );
    t.check(
        &entry(&format!("{x}  ROOT %c = f32[4] custom-call(%x), custom_call_target=\"f\", operand_layout_constraints={{f32[4,4], f32[4]}}")),
        5,
        61,
        "expected 1 operand layout constraints (one per operand), found 2",
    );
    t.check(
        &entry(&format!(
            "{x}  ROOT %c = f32[4] custom-call(%x), custom_call_target=\"f\", operand_layout_constraints={{f32[4,2]}}"
        )),
        5,
        61,
        "operand layout constraint 0, f32[4,2], does not match the shape of operand 0, f32[4,4]",
    );
    t.check(
        &entry("  %t = token[] after-all()\n  ROOT %i = f32[2] infeed(%t)"),
        5,
        20,
        "infeed takes a non-empty tuple shape (data, token)",
    );
    t.check(
        &entry(&format!("{x}  %n = s32[] constant(2)\n  ROOT %r = f32[2,<=8] dynamic-reshape(%x, %n)")),
        6,
        24,
        "dynamic-reshape takes one dimension size operand per result dimension: 1 for 2 dimensions",
    );
    t.check(
        &entry("  ROOT %p = f32[2,2]{1,0:D(D,Q)} parameter(0)"),
        4,
        30,
        "expected a dimension level type (D, C, S or H) for dimension 1, found 'Q'",
    );
    t.check(
        &entry("  %t = token[] after-all()\n  ROOT %s = (f32[], u32[], token[]) send(f32[] %t, %t), channel_id=1, to_apply=%t"),
        5,
        71,
        "unexpected attribute \"to_apply\" for send",
    );
}

#[test]
fn mesh_replica_groups_and_debug_log_modes() {
    let mut t = Table::default();
    let add = "%add {\n  %a = f32[] parameter(0)\n  %b = f32[] parameter(1)\n  ROOT %s = f32[] add(%a, %b)\n}\n\n";
    let module = |groups: &str| {
        format!("HloModule m\n\n{add}ENTRY %main {{\n  %x = f32[4] parameter(0)\n  ROOT %r = f32[4] all-reduce(%x), replica_groups={groups}, to_apply=%add\n}}\n")
    };
    let ok = module("mesh['x'=2,'y'=2] {'y'}");
    hlo_parse::parse_module(&ok).unwrap_or_else(|e| panic!("{}", hlo_parse::render_error(&ok, "input", &e)));
    t.check(
        &module("mesh['x'=2,'y'=2] {'z'}"),
        11,
        70,
        "'z' is not an axis of the mesh (names x, y, or an index below 2)",
    );
    t.check(
        &module("mesh['x'=2,'y'=2] {'2'}"),
        11,
        70,
        "'2' is not an axis of the mesh (names x, y, or an index below 2)",
    );
    t.check(
        &module("mesh['x'=2,'y'=2, device_ids=(0,1,2)] {'x'}"),
        11,
        69,
        "3 device_ids listed, but the mesh has 4 devices",
    );
    t.check(
        "HloModule m, debug_attributes={ {\"c\"}:({log_mode=loud}) }\n\nENTRY %main {\n  ROOT %c = f32[] constant(0)\n}\n",
        1,
        50,
        "invalid log_mode 'loud' (default or fusion_debugger)",
    );
}

#[test]
fn conditional_branch_attributes_follow_the_selector_type() {
    let mut t = Table::default();
    let branches = "%b0 {\n  ROOT %x = f32[] parameter(0)\n}\n\n%b1 {\n  %y = f32[] parameter(0)\n  ROOT %n = f32[] negate(%y)\n}\n\n";
    let module =
        |entry: &str| format!("HloModule m\n\n{branches}ENTRY %main {{\n  %v = f32[] parameter(0)\n{entry}\n}}\n");
    // As XLA's CheckPredicatedConditionalRequiresTrueAndFalseComputation: a pred selector
    // takes true_computation/false_computation.
    t.check(
        &module("  %p = pred[] parameter(1)\n  ROOT %c = f32[] conditional(%p, %v, %v), branch_computations={%b0, %b1}"),
        15,
        44,
        "a conditional whose selector is pred takes 'true_computation' and 'false_computation', not 'branch_computations'",
    );
    // The selector defined after the conditional: checked once the computation is read.
    t.check(
        &module("  ROOT %c = f32[] conditional(%p, %v, %v), branch_computations={%b0, %b1}\n  %p = pred[] parameter(1)"),
        14,
        44,
        "a conditional whose selector is pred takes 'true_computation' and 'false_computation', not 'branch_computations'",
    );
    t.check(
        &module("  %i = s32[] parameter(1)\n  ROOT %c = f32[] conditional(%i, %v, %v), true_computation=%b0, false_computation=%b1"),
        15,
        44,
        "a conditional whose selector is s32 takes 'branch_computations', not 'true_computation'/'false_computation'",
    );
    for ok in [
        "  %p = pred[] parameter(1)\n  ROOT %c = f32[] conditional(%p, %v, %v), true_computation=%b0, false_computation=%b1",
        "  %i = s32[] parameter(1)\n  ROOT %c = f32[] conditional(%i, %v, %v), branch_computations={%b0, %b1}",
        "  ROOT %c = f32[] conditional(%p, %v, %v), false_computation=%b1, true_computation=%b0\n  %p = pred[] parameter(1)",
    ] {
        let text = module(ok);
        hlo_parse::parse_module(&text).unwrap_or_else(|e| panic!("{}", hlo_parse::render_error(&text, "input", &e)));
    }
}
