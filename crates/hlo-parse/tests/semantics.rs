//! What the parser builds beyond the syntax: name resolution, the topological sort of
//! out-of-order computations, defaults of omitted attributes, parameters and spans.

use hlo_ir::*;

fn parse(text: &str) -> Module {
    hlo_parse::parse_module(text).unwrap_or_else(|e| panic!("{}", hlo_parse::render_error(text, "input", &e)))
}

fn names(comp: &Computation) -> Vec<&str> {
    comp.instrs.iter().map(|i| i.name.as_str()).collect()
}

#[test]
fn uses_before_definitions_are_sorted_stably() {
    let m = parse(
        "HloModule m\n\
         main {\n  x = f32[] parameter(0)\n  s = f32[] add(p, z)\n  z = f32[] constant(0)\n  p = f32[] multiply(x, x)\n  t = f32[] negate(s), control-predecessors={z}\n}\n",
    );
    let c = m.entry_comp();
    assert_eq!(names(c), ["x", "z", "p", "s", "t"]);
    // The root defaults to the last instruction of the text, wherever the sort put it.
    assert_eq!(c.root_instr().name, "t");
    let s = c.find("s").unwrap();
    assert_eq!(c.instr(s).operands, [c.find("p").unwrap(), c.find("z").unwrap()]);
    assert_eq!(c.root_instr().meta.control_predecessors, [c.find("z").unwrap()]);
    for (i, instr) in c.instrs.iter().enumerate() {
        assert!(instr.operands.iter().chain(&instr.meta.control_predecessors).all(|o| o.index() < i));
    }
}

#[test]
fn computations_resolve_in_any_order_and_entry_defaults_to_last() {
    let m = parse(
        "HloModule m\n\
         caller {\n  a = f32[] parameter(0)\n  ROOT c = f32[] call(a), to_apply=callee\n}\n\
         callee {\n  ROOT b = f32[] parameter(0)\n}\n",
    );
    assert_eq!(m.entry, CompId(1));
    assert_eq!(m.comps[0].root_instr().op, Op::Call { to_apply: CompId(1), is_composite: false });
}

#[test]
fn parameters_are_registered_by_number() {
    let m = parse("HloModule m\nENTRY e {\n  b = s32[] parameter(1)\n  a = f32[] parameter(0)\n  ROOT t = (f32[], s32[]) tuple(a, b)\n}\n");
    let c = m.entry_comp();
    assert_eq!(c.params, [c.find("a").unwrap(), c.find("b").unwrap()]);
    assert_eq!(c.param_shapes(), [&Shape::scalar(DType::F32), &Shape::scalar(DType::S32)]);
}

#[test]
fn omitted_attributes_take_xla_defaults() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/cases/noncanon/03_defaults_spelled_out.hlo"
    ))
    .unwrap();
    let m = parse(&text);
    let c = m.entry_comp();
    let op = |name: &str| c.instr(c.find(name).unwrap()).op.clone();
    let Op::Convolution { feature_group_count, batch_group_count, precision, .. } = op("conv") else { panic!() };
    assert_eq!((feature_group_count, batch_group_count), (1, 1));
    assert_eq!(precision, [Precision::Default, Precision::High]);
    assert!(matches!(op("map"), Op::Map { dimensions, .. } if dimensions == [0]));
    assert_eq!(op("topk"), Op::TopK { k: 2, largest: true });
    assert!(matches!(op("sort"), Op::Sort { is_stable: false, dimension: 0, .. }));
    assert!(matches!(op("tri"), Op::TriangularSolve { transpose_a: TransposeKind::NoTranspose, left_side: false, .. }));
    assert!(matches!(op("rng"), Op::Rng { distribution: RngDistribution::Uniform }));
    let Op::CustomCall(cc) = op("cc") else { panic!() };
    assert_eq!(cc.called_computations, [m.find_comp("add").unwrap()]);
    assert_eq!(cc.api_version, Some(CustomCallApiVersion::Original));
    let Op::Constant(preds) = op("preds") else { panic!() };
    assert_eq!(preds.data, LiteralData::Array(ArrayData::Pred(vec![true, false, true])));
    let Op::Constant(nans) = op("nans") else { panic!() };
    let LiteralData::Array(ArrayData::F32(v)) = &nans.data else { panic!() };
    assert_eq!((v[0].to_bits(), v[1].to_bits()), (0x7fc0_0000, 0xffc0_0000));
}

#[test]
fn unmodelled_attributes_are_kept_verbatim() {
    let m = parse(
        "HloModule m, num_partitions=2, origin_recovery_table={\n  a\n}\n\
         ENTRY e {\n  ROOT p = f32[] parameter(0), weird={a, [b, (c)], \"}\"}, other_attrs=x y\n}\n",
    );
    assert_eq!(
        m.attrs.other,
        [("num_partitions".into(), "2".into()), ("origin_recovery_table".into(), "{\n  a\n}".into())]
    );
    let meta = &m.entry_comp().root_instr().meta;
    assert_eq!(
        meta.other_attrs,
        [("weird".into(), "{a, [b, (c)], \"}\"}".into()), ("other_attrs".into(), "x y".into())]
    );
}

#[test]
fn spans_cover_each_instruction() {
    let text =
        "HloModule m\nENTRY e {\n  a = f32[] parameter(0)\n  ROOT b = f32[] negate(a), metadata={op_name=\"n\"}\n}\n";
    let m = parse(text);
    let c = m.entry_comp();
    let span = |id: InstrId| {
        let s = c.span(id);
        &text[s.start as usize..s.end as usize]
    };
    assert_eq!(span(c.find("a").unwrap()), "a = f32[] parameter(0)");
    assert_eq!(span(c.find("b").unwrap()), "b = f32[] negate(a), metadata={op_name=\"n\"}");
}

#[test]
fn stack_frames_and_execution_threads() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases/ok/11_meta.hlo")).unwrap();
    let m = parse(&text);
    assert_eq!(m.stack_frames.file_names[1], (2, "dir/café.py".to_string()));
    assert_eq!(m.stack_frames.file_locations[1].1.end_line, 5);
    assert_eq!(m.stack_frames.stack_frames[1].1, StackFrame { file_location_id: 2, parent_frame_id: 1 });
    assert_eq!(m.comps[0].execution_thread.as_deref(), Some("side"));
    let d = m.entry_comp().find("d").unwrap();
    let meta = &m.entry_comp().instr(d).meta;
    assert_eq!(meta.metadata.as_ref().unwrap().op_name.as_deref(), Some("call\n\"quoted\"\t\\"));
    assert_eq!(meta.backend_config.as_deref(), Some("\"{\\\"a\\\": 1} and more\""));
}

/// Operands written as instructions, as XLA's parser accepts them (`add(f32[] x, f32[]
/// multiply(...))`): each becomes an instruction named after its opcode, before its user,
/// with its own attributes; references to later instructions still resolve, in nested
/// operands too.
#[test]
fn nested_anonymous_operands_become_instructions() {
    let m = parse(
        "HloModule m\nENTRY e {\n  p = f32[4] parameter(0)\n  \
         ROOT r = f32[4] add(f32[4] later, f32[4] multiply(f32[4] p, f32[4] broadcast(f32[] constant(2)), dimensions={})), \
         metadata={op_name=\"x\"}\n  later = f32[4] negate(f32[4] p)\n}\n",
    );
    let c = m.entry_comp();
    let root = c.root_instr();
    assert_eq!(root.name, "r");
    assert_eq!(root.meta.metadata.as_ref().and_then(|md| md.op_name.clone()).as_deref(), Some("x"));
    let [a, b] = root.operands[..] else { panic!("two operands") };
    assert_eq!(c.instr(a).name, "later");
    let mul = c.instr(b);
    assert!(matches!(mul.op, Op::Binary(BinaryOp::Multiply)), "{:?}", mul.op);
    assert_eq!(c.instr(mul.operands[0]).name, "p");
    let bcast = c.instr(mul.operands[1]);
    assert!(matches!(&bcast.op, Op::Broadcast { dimensions } if dimensions.is_empty()));
    assert!(matches!(c.instr(bcast.operands[0]).op, Op::Constant(_)));
    assert!(hlo_ir::verify::verify(&m).is_ok());
    // Printed, the nested operands are ordinary instructions and the text parses again.
    let text = hlo_ir::print::print_module(&m);
    assert_eq!(parse(&text), m);
}

/// XLA's compact get-tuple-element operands (`%t#1#0`): one `get-tuple-element` per distinct
/// path, named `t_1_0` (made unique against existing names), shared by every use.
#[test]
fn compact_get_tuple_element_operands() {
    let m = parse(
        "HloModule m\nENTRY e {\n  p0 = (f32[10], (f32[20], f32[30])) parameter(0)\n  \
         p0_1 = f32[5] parameter(1)\n  \
         a = f32[20] negate(f32[20] %p0#1#0)\n  \
         ROOT r = ((f32[20], f32[30]), f32[20], f32[20]) tuple(p0#1, a, %p0#1#0)\n}\n",
    );
    let c = m.entry_comp();
    assert_eq!(names(c), ["p0", "p0_1", "p0_1.1", "p0_1_0", "a", "r"]);
    let root = c.root_instr();
    assert_eq!(c.instr(root.operands[0]).name, "p0_1.1");
    assert_eq!(c.instr(root.operands[2]).name, "p0_1_0");
    assert!(matches!(c.instr(root.operands[2]).op, Op::GetTupleElement { index: 0 }));
    assert!(hlo_ir::verify::verify(&m).is_ok());
    let text = hlo_ir::print::print_module(&m);
    assert_eq!(parse(&text), m);
    for (bad, what) in [
        ("ROOT r = f32[10] negate(later#0)\n  later = (f32[10]) parameter(0)", "must be defined before"),
        ("p = f32[10] parameter(0)\n  ROOT r = f32[10] negate(p#0)", "is not an element of a tuple"),
        ("p = (f32[10]) parameter(0)\n  ROOT r = f32[10] negate(p#1)", "is not an element of a tuple"),
    ] {
        let text = format!("HloModule m\nENTRY e {{\n  {bad}\n}}\n");
        let err = hlo_parse::parse_module(&text).expect_err(bad);
        assert!(err.message.contains(what), "{}", err.message);
    }
}

#[test]
fn a_scalar_broadcast_may_omit_its_dimensions() {
    let m = parse("HloModule m\nENTRY e {\n  p = f32[] parameter(0)\n  ROOT b = f32[2,3] broadcast(p)\n}\n");
    assert!(matches!(&m.entry_comp().root_instr().op, Op::Broadcast { dimensions } if dimensions.is_empty()));
    assert!(hlo_ir::verify::verify(&m).is_ok());
    // Of a non-scalar it is an error, which the verifier names.
    let m = parse("HloModule m\nENTRY e {\n  p = f32[3] parameter(0)\n  ROOT b = f32[2,3] broadcast(p)\n}\n");
    assert!(hlo_ir::verify::verify(&m).is_err());
}

/// Forms XLA's own parser tests use: `HloModule name:`, a negative u64 constant (read through
/// an s64, so two's complement), and `after-all` of non-token operands (which only orders it).
#[test]
fn xla_parser_test_forms() {
    let m = parse("HloModule no_entry:\nENTRY c1 {\n  ROOT c = u64[] constant(-1)\n}\n");
    assert_eq!(m.name, "no_entry");
    let Op::Constant(lit) = &m.entry_comp().root_instr().op else { panic!("constant") };
    assert_eq!(lit.array_data(), Some(&ArrayData::U64(vec![u64::MAX])));
    let m = parse(
        "HloModule m\nENTRY e {\n  p0 = f32[] parameter(0)\n  t = token[] after-all()\n  \
         ROOT a = token[] after-all(p0, t)\n}\n",
    );
    assert!(hlo_ir::verify::verify(&m).is_ok());
    // A custom-call literal that is a tuple: `( shape value, ... )`, printed back the same way.
    let text = "HloModule m\nENTRY e {\n  p = f32[1] parameter(0)\n  ROOT c = f32[2] custom-call(p), custom_call_target=\"foo\", \
                literal=( s32[4]{0} {4, 128, 128, 3}, pred[2]{0} {1, 0} )\n}\n";
    let m = parse(text);
    let Op::CustomCall(cc) = &m.entry_comp().root_instr().op else { panic!("custom-call") };
    assert_eq!(cc.literal.as_ref().and_then(|l| l.tuple_elements()).map(|e| e.len()), Some(2));
    let printed = hlo_ir::print::print_module(&m);
    assert!(printed.contains("literal=( s32[4]{0} {4, 128, 128, 3}, pred[2]{0} {1, 0} )"), "{printed}");
    assert_eq!(parse(&printed), m);
}

/// `name = opcode(...)` without a shape, as XLA reads it: the shape is inferred from operands
/// defined before, nested operands included; an op whose shape does not follow from its
/// operands (or an operand defined later) asks for the shape.
#[test]
fn shapes_are_inferred_where_they_are_left_out() {
    let m = parse(
        "HloModule m\nENTRY e {\n  a = f32[2,3] parameter(0)\n  b = f32[3,4] parameter(1)\n  \
         d = dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n  \
         ROOT t = tuple(d, add(f32[2,3] a, abs(a)))\n}\n",
    );
    let c = m.entry_comp();
    assert_eq!(c.instr(c.find("d").unwrap()).shape.to_string(), "f32[2,4]");
    assert_eq!(c.root_instr().shape.to_string(), "(f32[2,4], f32[2,3])");
    assert!(hlo_ir::verify::verify(&m).is_ok());
    let err =
        hlo_parse::parse_module("HloModule m\nENTRY e {\n  ROOT n = negate(later)\n  later = f32[] parameter(0)\n}\n")
            .expect_err("an operand defined later");
    assert!(err.message.contains("cannot infer the shape"), "{}", err.message);
}

/// A shape left out that only called computations give (`conditional`) is inferred once the
/// whole module is read, as XLA's parser does.
#[test]
fn shapes_from_called_computations_are_inferred_after_the_module() {
    let m = parse(
        "HloModule m\nNeg {\n  x = f32[] parameter(0)\n  ROOT n = negate(x)\n}\n\
         Id {\n  y = f32[] parameter(0)\n  ROOT c = copy(y)\n}\n\
         ENTRY e {\n  a = f32[] parameter(0)\n  p = pred[] parameter(1)\n  \
         ROOT r = conditional(p, a, a), true_computation=Neg, false_computation=Id\n}\n",
    );
    assert_eq!(m.entry_comp().root_instr().shape.to_string(), "f32[]");
    assert!(hlo_ir::verify::verify(&m).is_ok());
}

/// `X-start`/`X-update`/`X-done` are async ops wrapping `X` in a computation of their own;
/// printed back without the sugar, they parse to the same module.
#[test]
fn async_syntax_sugar_wraps_the_op() {
    let m = parse(
        "HloModule m\nENTRY e {\n  p0 = f32[10] parameter(0)\n  \
         s = ((f32[10]), f32[20], s32[]) custom-call-start(f32[10] p0), custom_call_target=\"foo\"\n  \
         u = ((f32[10]), f32[20], s32[]) custom-call-update(((f32[10]), f32[20], s32[]) s)\n  \
         ROOT d = f32[20] custom-call-done(u)\n}\n",
    );
    assert!(hlo_ir::verify::verify(&m).is_ok(), "{:?}", hlo_ir::verify::verify(&m));
    let e = m.entry_comp();
    let Op::Async { opcode: Opcode::AsyncStart, calls: Some(wrapped) } = e.instr(e.find("s").unwrap()).op else {
        panic!("an async-start")
    };
    let root = m.comp(wrapped).root_instr();
    assert!(matches!(&root.op, Op::CustomCall(cc) if cc.target == "foo"), "{:?}", root.op);
    assert_eq!(root.shape.to_string(), "f32[20]");
    for name in ["u", "d"] {
        assert!(matches!(e.instr(e.find(name).unwrap()).op, Op::Async { calls: Some(c), .. } if c == wrapped));
    }
    let again = parse(&print_module(&m));
    assert_eq!(print_module(&again), print_module(&m));
}

/// `constant({...})`, XLA's elided large constant, parses, verifies and prints back as such.
#[test]
fn elided_constants_are_kept_as_elided() {
    let text = "HloModule m\nENTRY e {\n  ROOT c = f32[67,89] constant({...})\n}\n";
    let m = parse(text);
    assert!(matches!(&m.entry_comp().root_instr().op, Op::Constant(l) if l.data == LiteralData::Elided));
    assert!(hlo_ir::verify::verify(&m).is_ok());
    assert!(print_module(&m).contains("constant({...})"));
}
