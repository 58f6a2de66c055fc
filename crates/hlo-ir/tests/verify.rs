//! Table-driven tests of `hlo_ir::verify`: a well-formed module per family of invariants, then one
//! module per broken invariant with the exact list of errors the verifier must collect.
//!
//! Modules are built with `hlo_ir::builder`; invalid IR is made with `ComputationBuilder::raw` or
//! by editing the built computation. `check(module, expect)` compares the rendered errors line by line.

use hlo_ir::builder::{ComputationBuilder, ModuleBuilder};
use hlo_ir::verify::{render_with_module, verify};
use hlo_ir::*;

mod shape_inference_support;
use shape_inference_support::parse_shape;

use BinaryOp::Add;
use DType::{F32, S32};

fn check(module: &Module, expect: &[&str]) {
    let got: Vec<String> = match verify(module) {
        Ok(()) => Vec::new(),
        Err(errs) => errs.0.iter().map(ToString::to_string).collect(),
    };
    assert_eq!(got, expect, "verifier errors differ");
}

fn sh(text: &str) -> Shape {
    parse_shape(text)
}

/// `main(p0: f32[4]) = reduce(p0 + p0, 0.0, dims={0}, to_apply=add)`, the happy path.
fn reduce_module() -> Module {
    let mut mb = ModuleBuilder::new("m");
    let add = mb.scalar_reducer("add", Add, F32);
    let mut b = mb.builder("main");
    let x = b.param(sh("f32[4]"));
    let sum = b.binary(Add, x, x);
    let zero = b.constant(Literal::scalar_f32(0.0));
    b.reduce(&[sum], &[zero], &[0], add);
    let main = mb.add(b.finish().expect("valid"));
    mb.finish(main)
}

#[test]
fn well_formed_modules() {
    check(&reduce_module(), &[]);

    // A while loop counting to 10, with a tuple state.
    let mut mb = ModuleBuilder::new("loop");
    let mut cond = mb.builder("cond");
    let st = cond.param(sh("(s32[], f32[4])"));
    let i = cond.get_tuple_element(st, 0);
    let ten = cond.constant(Literal::scalar_s32(10));
    cond.compare(CompareDirection::Lt, i, ten);
    let cond = mb.add(cond.finish().expect("valid"));
    let mut body = mb.builder("body");
    let st = body.param(sh("(s32[], f32[4])"));
    let i = body.get_tuple_element(st, 0);
    let v = body.get_tuple_element(st, 1);
    let one = body.constant(Literal::scalar_s32(1));
    let i = body.binary(Add, i, one);
    let v = body.binary(Add, v, v);
    body.tuple(&[i, v]);
    let body = mb.add(body.finish().expect("valid"));
    let mut main = mb.builder("main");
    let v = main.param(sh("f32[4]"));
    let zero = main.constant(Literal::scalar_s32(0));
    let init = main.tuple(&[zero, v]);
    let w = main.instr(Op::While { condition: cond, body }, &[init]);
    main.get_tuple_element(w, 1);
    let main = mb.add(main.finish().expect("valid"));
    check(&mb.finish(main), &[]);

    // A fusion whose callee has a non-default layout on its parameter, a sort and a dot.
    let mut mb = ModuleBuilder::new("m");
    let lt = mb.scalar_comparator("lt", CompareDirection::Lt, F32);
    let mut fused = mb.builder("fused");
    let p = fused.param(sh("f32[2,3]{0,1}"));
    fused.transpose(p, &[1, 0]);
    let fused = mb.add(fused.finish().expect("valid"));
    let mut main = mb.builder("main");
    let x = main.param(sh("f32[2,3]"));
    let t = main.instr(Op::Fusion { kind: FusionKind::Loop, calls: fused }, &[x]);
    let s = main.instr(Op::Sort { dimension: 0, is_stable: true, to_apply: lt }, &[t]);
    let dims = DotDims { lhs_contracting: vec![1], rhs_contracting: vec![0], ..DotDims::default() };
    let d = main.dot(x, s, dims.clone());
    // A dot may declare a wider (preferred) element type than its operands.
    main.instr_with_shape(sh("f64[2,2]"), Op::Dot { dims, precision: vec![], algorithm: None }, &[x, s]);
    main.tuple(&[d]);
    let main = mb.add(main.finish().expect("valid"));
    check(&mb.finish(main), &[]);
}

#[test]
fn module_structure() {
    let mut m = reduce_module();
    m.entry = CompId(7);
    check(&m, &["in module: entry computation c7 does not exist (2 computations)"]);

    let mut m = reduce_module();
    m.comps[0].name = "main".into();
    check(&m, &["in %main: computation name %main is also used by computation 0"]);

    let mut m = reduce_module();
    m.attrs.entry_computation_layout = Some(ProgramShape { params: vec![sh("f32[4]{0}")], result: sh("f32[]") });
    check(&m, &[]);
    m.attrs.entry_computation_layout =
        Some(ProgramShape { params: vec![sh("f32[5]"), sh("f32[]")], result: sh("s32[]") });
    check(
        &m,
        &[
            "in %main: entry_computation_layout has 2 parameters but the entry has 1",
            "in %main: entry_computation_layout parameter 0 is f32[5] but parameter(0) is f32[4]",
            "in %main: entry_computation_layout result is s32[] but the root is f32[]",
        ],
    );
}

#[test]
fn computation_structure() {
    let mut m = reduce_module();
    m.comps[1].root = InstrId::from_index(9);
    check(&m, &["in %main: root i9 does not exist (4 instructions)"]);

    let mut m = reduce_module();
    m.comps[0].instrs.clear();
    m.comps[0].spans.clear();
    m.comps[0].params.clear();
    // The empty reducer is reported once; its caller is not blamed for it.
    check(&m, &["in %add: has no instructions"]);

    // Two parameters numbered 0, none numbered 1.
    let mut m = reduce_module();
    m.comps[0].instrs[1].op = Op::Parameter { number: 0 };
    check(&m, &["in %add, instruction %parameter.1: parameter number 0 is already used by %parameter.0"]);

    // Parameters numbered 0 and 2.
    let mut m = reduce_module();
    m.comps[0].instrs[1].op = Op::Parameter { number: 2 };
    check(&m, &["in %add: parameter numbers are not dense: there is no parameter(1) but there are 2 parameters"]);

    // Duplicate instruction names.
    let mut m = reduce_module();
    m.comps[1].instrs[2].name = "add.1".into();
    check(&m, &["in %main, instruction %add.1: name %add.1 is already used by instruction 1"]);
}

#[test]
fn references() {
    // An operand that comes later in the arena, and one that does not exist.
    let mut b = ComputationBuilder::new("main");
    let x = b.param(sh("f32[4]"));
    let later = InstrId::from_index(2);
    b.raw(sh("f32[4]"), Op::Unary(UnaryOp::Negate), &[later]);
    b.raw(sh("f32[4]"), Op::Binary(Add), &[x, InstrId::from_index(10)]);
    let mut mb = ModuleBuilder::new("m");
    let main = mb.add(b.finish().expect("raw instructions are not checked"));
    check(
        &mb.finish(main),
        &[
            "in %main, instruction %negate.1: operand 0 is %add.2, which does not come before it",
            "in %main, instruction %add.2: operand 1 refers to instruction i10, which does not exist",
        ],
    );

    // Control predecessors must come earlier too.
    let mut m = reduce_module();
    m.comps[1].instrs[1].meta.control_predecessors = vec![InstrId::from_index(3)];
    check(&m, &["in %main, instruction %add.1: control predecessor 0 is %reduce.3, which does not come before it"]);

    // Called computations: out of range, and the entry.
    let mut m = reduce_module();
    m.comps[1].instrs[3].op = Op::Reduce { dimensions: vec![0], to_apply: CompId(5) };
    check(&m, &["in %main, instruction %reduce.3: calls computation c5, which does not exist"]);
    let mut m = reduce_module();
    m.comps[1].instrs[3].op = Op::Reduce { dimensions: vec![0], to_apply: CompId(1) };
    let errs = verify(&m).expect_err("calls the entry");
    assert_eq!(errs.0[0].to_string(), "in %main: the call graph has a cycle: %main -> %main");
    assert!(errs.0.iter().any(|e| e.message == "calls the entry computation %main"), "{errs}");
}

#[test]
fn recursion() {
    // %a calls %b, %b calls %a; %main calls %a.
    let mut mb = ModuleBuilder::new("m");
    let mut a = ComputationBuilder::new("a");
    let p = a.param(sh("f32[]"));
    a.raw(sh("f32[]"), Op::Call { to_apply: CompId(1), is_composite: false }, &[p]);
    let a = mb.add(a.finish().expect("raw"));
    let mut b = mb.builder("b");
    let p = b.param(sh("f32[]"));
    b.call(a, &[p]);
    mb.add(b.finish().expect("valid"));
    let mut main = mb.builder("main");
    let p = main.param(sh("f32[]"));
    main.call(a, &[p]);
    let main = mb.add(main.finish().expect("valid"));
    check(&mb.finish(main), &["in %b: the call graph has a cycle: %a -> %b -> %a"]);
}

#[test]
fn shapes_against_inference() {
    // Declared shape differs from the inferred one.
    let mut m = reduce_module();
    m.comps[1].instrs[1].shape = sh("f32[3]");
    check(&m, &["in %main, instruction %add.1: declared shape f32[3] does not match the inferred shape f32[4]"]);

    // Layouts never matter; the element type does.
    let mut m = reduce_module();
    m.comps[1].instrs[1].shape = sh("f32[4]{0}");
    check(&m, &[]);
    m.comps[1].instrs[3].shape = sh("s32[]");
    check(&m, &["in %main, instruction %reduce.3: declared shape s32[] does not match the inferred shape f32[]"]);

    // Operand errors come from shape inference verbatim.
    let mut m = reduce_module();
    m.comps[1].instrs[1].operands.pop();
    check(&m, &["in %main, instruction %add.1: add takes exactly 2 operands but has 1"]);

    // A reducer with the wrong signature.
    let mut m = reduce_module();
    m.comps[0].instrs[2].shape = sh("f32[2]");
    check(
        &m,
        &[
            "in %add, instruction %add.2: declared shape f32[2] does not match the inferred shape f32[]",
            "in %main, instruction %reduce.3: reduce: to_apply computation result 0 is f32[2] but must be f32[] like the init value",
        ],
    );
}

#[test]
fn callee_signatures() {
    // A sort comparator must return pred[].
    let mut mb = ModuleBuilder::new("m");
    let add = mb.scalar_reducer("add", Add, F32);
    let mut b = mb.builder("main");
    let x = b.param(sh("f32[8]"));
    b.raw(sh("f32[8]"), Op::Sort { dimension: 0, is_stable: false, to_apply: add }, &[x]);
    let main = mb.add(b.finish().expect("raw"));
    check(
        &mb.finish(main),
        &["in %main, instruction %sort.1: sort: comparator computation must return pred[] but returns f32[]"],
    );

    // A while body must map the state to itself.
    let mut mb = ModuleBuilder::new("m");
    let mut cond = mb.builder("cond");
    let p = cond.param(sh("s32[]"));
    let z = cond.constant(Literal::scalar_s32(0));
    cond.compare(CompareDirection::Gt, p, z);
    let cond = mb.add(cond.finish().expect("valid"));
    let mut body = mb.builder("body");
    let p = body.param(sh("s32[]"));
    body.convert(p, F32);
    let body = mb.add(body.finish().expect("valid"));
    let mut b = mb.builder("main");
    let x = b.param(sh("s32[]"));
    b.raw(sh("s32[]"), Op::While { condition: cond, body }, &[x]);
    let main = mb.add(b.finish().expect("raw"));
    check(
        &mb.finish(main),
        &["in %main, instruction %while.1: while: body computation must return the loop state s32[] but returns f32[]"],
    );

    // Conditional branches take their operands; a fusion's parameters match its operands.
    let mut mb = ModuleBuilder::new("m");
    let mut t = mb.builder("t");
    let p = t.param(sh("f32[2]"));
    t.unary(UnaryOp::Negate, p);
    let t = mb.add(t.finish().expect("valid"));
    let mut b = mb.builder("main");
    let sel = b.param(sh("pred[]"));
    let x = b.param(sh("f32[3]"));
    b.raw(sh("f32[2]"), Op::Conditional { branches: vec![t, t] }, &[sel, x, x]);
    b.raw(sh("f32[2]"), Op::Fusion { kind: FusionKind::Loop, calls: t }, &[x]);
    let root = b.constant(Literal::scalar_pred(true));
    let main = mb.add(b.finish_with_root(root).expect("raw"));
    check(
        &mb.finish(main),
        &[
            "in %main, instruction %conditional.2: conditional: branch 0 computation parameter 0 has shape f32[2] but conditional passes f32[3]",
            "in %main, instruction %fusion.3: fusion: fused computation parameter 0 has shape f32[2] but fusion passes f32[3]",
        ],
    );
}

#[test]
fn constants_and_declared_shapes() {
    let lit = |shape: &str, data: ArrayData| Literal { shape: sh(shape), data: LiteralData::Array(data) };
    let cases: &[(Literal, &str, &str)] = &[
        (lit("f32[3]", ArrayData::F32(vec![1.0, 2.0, 3.0])), "f32[3]", ""),
        (
            lit("f32[3]", ArrayData::F32(vec![1.0, 2.0])),
            "f32[3]",
            "constant literal is malformed: it has 2 elements but shape f32[3] has 3",
        ),
        (
            lit("f32[2]", ArrayData::S32(vec![1, 2])),
            "f32[2]",
            "constant literal is malformed: its data is not stored as f32 elements are",
        ),
        (
            lit("f32[2]", ArrayData::F32(vec![1.0, 2.0])),
            "f32[3]",
            "declared shape f32[3] does not match the inferred shape f32[2]",
        ),
        (
            Literal::tuple(vec![Literal::scalar_s32(1), lit("pred[2]", ArrayData::Pred(vec![true]))]),
            "(s32[], pred[2])",
            "constant literal is malformed: tuple element 1: it has 1 elements but shape pred[2] has 2",
        ),
    ];
    for (literal, declared, expect) in cases {
        let mut b = ComputationBuilder::new("main");
        b.raw(sh(declared), Op::Constant(Box::new(literal.clone())), &[]);
        let mut mb = ModuleBuilder::new("m");
        let main = mb.add(b.finish().expect("raw"));
        let want: Vec<String> =
            if expect.is_empty() { vec![] } else { vec![format!("in %main, instruction %constant.0: {expect}")] };
        check(&mb.finish(main), &want.iter().map(String::as_str).collect::<Vec<_>>());
    }

    // Malformed declared shapes are reported before inference runs.
    let mut m = reduce_module();
    m.comps[1].instrs[0].shape = Shape::Array(ArrayShape::new(F32, vec![-4]));
    check(
        &m,
        &[
            "in %main, instruction %parameter.0: declared shape f32[-4] is malformed: dimension 0 has size -4",
            "in %main, instruction %add.1: declared shape f32[4] does not match the inferred shape f32[-4]",
        ],
    );
    let mut m = reduce_module();
    if let Shape::Array(a) = &mut m.comps[1].instrs[1].shape {
        a.layout = Some(Layout { minor_to_major: vec![1], ..Layout::default() });
    }
    check(&m, &["in %main, instruction %add.1: declared shape f32[4]{1} is malformed: minor_to_major [1] is not a permutation of 0..1"]);
}

#[test]
fn collects_every_error() {
    let mut b = ComputationBuilder::new("main");
    let x = b.param(sh("f32[4]"));
    let y = b.param(sh("s32[4]"));
    b.raw(sh("f32[4]"), Op::Binary(Add), &[x, y]);
    b.raw(sh("pred[4]"), Op::Unary(UnaryOp::Floor), &[y]);
    b.raw(sh("f32[4]"), Op::Select, &[x, x, x]);
    let ok = b.unary(UnaryOp::Negate, x);
    b.set_name(ok, "fine");
    let mut mb = ModuleBuilder::new("m");
    let main = mb.add(b.finish().expect("raw"));
    let m = mb.finish(main);
    let expect = [
        "in %main, instruction %add.2: operand 1 of add has shape s32[4] but operand 0 has f32[4]",
        "in %main, instruction %floor.3: operand 0 of floor has element type s32; expected a floating-point type",
        "in %main, instruction %select.4: operand 0 of select has element type f32; expected pred",
    ];
    check(&m, &expect);
    let errs = verify(&m).expect_err("three errors");
    assert_eq!(errs.to_string(), expect.join("\n"));
    assert_eq!(errs.0[0].at, Some((CompId(0), InstrId::from_index(2))));
    assert_eq!(errs.0[0].instr.as_deref(), Some("add.2"));

    let rendered = render_with_module(&m, &errs);
    let want = "\
ENTRY %main {
  %parameter.0 = f32[4] parameter(0)
  %parameter.1 = s32[4] parameter(1)
  %add.2 = f32[4] add(%parameter.0, %parameter.1)
  ; error: operand 1 of add has shape s32[4] but operand 0 has f32[4]
  %floor.3 = pred[4] floor(%parameter.1)
  ; error: operand 0 of floor has element type s32; expected a floating-point type
  %select.4 = f32[4] select(%parameter.0, %parameter.0, %parameter.0)
  ; error: operand 0 of select has element type f32; expected pred
  ROOT %fine = f32[4] negate(%parameter.0)
}

";
    assert_eq!(rendered, want);
}

#[test]
fn builder_records_first_error() {
    let mut b = ComputationBuilder::new("main");
    let x = b.param(sh("f32[4]"));
    let y = b.param(sh("f32[5]"));
    let bad = b.binary(Add, x, y);
    // Later instructions still get ids and shapes (a placeholder for the failed one).
    let neg = b.unary(UnaryOp::Negate, bad);
    assert_eq!(b.shape(neg), &sh("f32[4]"));
    let err = b.finish().expect_err("add of f32[4] and f32[5]");
    assert_eq!(
        err.to_string(),
        "in %main, building %add.2: operand 1 of add has shape f32[5] but operand 0 has f32[4]"
    );

    let mut b = ComputationBuilder::new("main");
    let x = b.param(sh("f32[2,3]"));
    let bx = b.broadcast(x, &[1, 2], &[5, 2, 3]);
    let r = b.reshape(bx, &[30]);
    let i = b.iota(ArrayShape::new(S32, vec![30]), 0);
    let c = b.convert(i, F32);
    let lt = b.compare(CompareDirection::Lt, r, c);
    let s = b.slice(lt, &[(0, 30, 7)]);
    assert_eq!(b.shape(s), &sh("pred[5]"));
    let comp = b.finish().expect("valid");
    assert_eq!(comp.root_instr().name, "slice.6");
    assert_eq!(comp.params.len(), 1);

    let mut b = ComputationBuilder::new("main");
    let x = b.param(sh("f32[2]"));
    b.instr(Op::Reduce { dimensions: vec![0], to_apply: CompId(0) }, &[x, x]);
    let err = b.finish().expect_err("no callees known");
    assert!(err.to_string().contains("reduce calls computation c0, which does not exist"), "{err}");
}
