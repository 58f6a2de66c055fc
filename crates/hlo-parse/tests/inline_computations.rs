//! Called computations written inline in an attribute (`to_apply={ ... }`), as XLA's parser
//! reads them: each becomes a computation of the module, named after its instruction and
//! attribute, made unique, and placed before the computation that holds it.

use hlo_ir::*;

fn parse(text: &str) -> Module {
    hlo_parse::parse_module(text).unwrap_or_else(|e| panic!("{}", hlo_parse::render_error(text, "input", &e)))
}

fn comp_names(m: &Module) -> Vec<&str> {
    m.comps.iter().map(|c| c.name.as_str()).collect()
}

fn error(text: &str) -> String {
    match hlo_parse::parse_module(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => format!("{}:{}: {}", e.line, e.column, e.message),
    }
}

const REDUCE_AND_CALL: &str = "HloModule m

ENTRY main {
  x = f32[4] parameter(0)
  zero = f32[] constant(0)
  sum = f32[] reduce(x, zero), dimensions={0}, to_apply={
    x = f32[] parameter(0)
    y = f32[] parameter(1)
    ROOT s = f32[] add(x, y)
  }
  ROOT neg = f32[] call(sum), to_apply={
    v = f32[] parameter(0)
    ROOT n = f32[] negate(v)
  }
}
";

#[test]
fn inline_computations_become_named_computations() {
    let m = parse(REDUCE_AND_CALL);
    assert_eq!(comp_names(&m), ["sum.to_apply", "neg.to_apply", "main"]);
    assert_eq!(m.entry, CompId(2));
    let entry = m.entry_comp();
    let sum = entry.instr(entry.find("sum").unwrap());
    assert_eq!(sum.op.called_computations(), [CompId(0)]);
    assert_eq!(entry.root_instr().op, Op::Call { to_apply: CompId(1), is_composite: false });
    // The inline computation has a scope of its own: its `x` is not the entry's.
    assert_eq!(m.comps[0].instrs.len(), 3);
    assert_eq!(m.comps[0].root_instr().name, "s");
    assert_eq!(entry.instr(entry.find("x").unwrap()).shape, Shape::array(DType::F32, [4]));
    hlo_ir::verify::verify(&m).unwrap_or_else(|e| panic!("{e:?}"));
}

#[test]
fn printed_inline_computations_parse_back_the_same() {
    let m = parse(REDUCE_AND_CALL);
    let text = hlo_ir::print::print_module(&m);
    assert!(text.contains("to_apply=%sum.to_apply"), "{text}");
    assert!(text.contains("%sum.to_apply (x: f32[], y: f32[]) -> f32[] {"), "{text}");
    let again = parse(&text);
    assert_eq!(hlo_ir::print::print_module(&again), text);
}

#[test]
fn generated_names_avoid_every_computation_of_the_module() {
    // A computation defined later in the text already has the name the inline one would get.
    let m = parse(
        "HloModule m

ENTRY main {
  a = f32[] parameter(0)
  ROOT c = f32[] call(a), to_apply={
    p = f32[] parameter(0)
    ROOT q = f32[] call(p), to_apply=c.to_apply
  }
}

c.to_apply {
  ROOT r = f32[] parameter(0)
}
",
    );
    assert_eq!(comp_names(&m), ["c.to_apply.1", "main", "c.to_apply"]);
    let inline = &m.comps[0];
    assert_eq!(inline.root_instr().op, Op::Call { to_apply: CompId(2), is_composite: false });
    hlo_ir::verify::verify(&m).unwrap_or_else(|e| panic!("{e:?}"));
}

#[test]
fn while_conditional_and_nested_inline_computations() {
    let m = parse(
        "HloModule m

ENTRY main {
  i = s32[] parameter(0)
  w = s32[] while(i), condition={
    c = s32[] parameter(0)
    ten = s32[] constant(10)
    ROOT lt = pred[] compare(c, ten), direction=LT
  }, body={
    b = s32[] parameter(0)
    ROOT inc = s32[] call(b), to_apply={
      z = s32[] parameter(0)
      one = s32[] constant(1)
      ROOT plus = s32[] add(z, one)
    }
  }
  p = s32[] constant(1)
  ROOT r = s32[] conditional(p, w, i), branch_computations={{
    t = s32[] parameter(0)
    ROOT nt = s32[] negate(t)
  }, named}
}

named {
  ROOT f = s32[] parameter(0)
}
",
    );
    assert_eq!(comp_names(&m), ["w.condition", "inc.to_apply", "w.body", "r.branch_computations", "main", "named"]);
    let entry = m.entry_comp();
    let w = entry.instr(entry.find("w").unwrap());
    assert_eq!(w.op, Op::While { condition: CompId(0), body: CompId(2) });
    assert_eq!(entry.root_instr().op.called_computations(), [CompId(3), CompId(5)]);
    hlo_ir::verify::verify(&m).unwrap_or_else(|e| panic!("{e:?}"));
}

#[test]
fn async_sugar_with_an_inline_computation() {
    let m = parse(
        "HloModule m

ENTRY main {
  a = f32[] parameter(0)
  s = ((f32[]), f32[], s32[]) call-start(a), to_apply={
    p = f32[] parameter(0)
    ROOT n = f32[] negate(p)
  }
  ROOT d = f32[] call-done(s)
}
",
    );
    assert_eq!(comp_names(&m), ["s.to_apply", "main", "s.wrapped"]);
    let wrapped = &m.comps[2];
    assert_eq!(wrapped.root_instr().op, Op::Call { to_apply: CompId(0), is_composite: false });
    hlo_ir::verify::verify(&m).unwrap_or_else(|e| panic!("{e:?}"));
}

#[test]
fn malformed_inline_computations_are_reported_where_they_are() {
    let head = "HloModule m\n\nENTRY main {\n  a = f32[] parameter(0)\n";
    assert_eq!(
        error(&format!("{head}  ROOT c = f32[] call(a), to_apply={{}}\n}}\n")),
        "5:36: inline computation has no instructions"
    );
    assert_eq!(
        error(&format!("{head}  ROOT c = f32[] call(a), to_apply={{\n    ROOT p = f32[] parameter(0)\n")),
        "7:1: expected an instruction or '}', found end of input"
    );
    // Names of the enclosing computation are not visible inside.
    assert_eq!(
        error(&format!("{head}  ROOT c = f32[] call(a), to_apply={{\n    p = f32[] parameter(0)\n    ROOT q = f32[] add(p, a)\n  }}\n}}\n")),
        "7:27: undefined instruction '%a'"
    );
    assert_eq!(
        error(&format!("{head}  ROOT c = f32[] call(a), to_apply=[x]\n}}\n")),
        "5:36: expected a computation name or an inline computation ('{'), found '['"
    );
}

#[test]
fn deeply_nested_inline_computations_are_refused_not_overflowed() {
    let depth = 200;
    let mut text = String::from("HloModule m\n\nENTRY main {\n");
    for _ in 0..depth {
        text.push_str("a = f32[] parameter(0)\nROOT c = f32[] call(a), to_apply={\n");
    }
    text.push_str("ROOT p = f32[] parameter(0)\n");
    for _ in 0..=depth {
        text.push_str("}\n");
    }
    let message = error(&text);
    assert!(message.contains("nesting deeper than"), "{message}");
}
