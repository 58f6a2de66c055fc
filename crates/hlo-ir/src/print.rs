//! The HLO text printer: writes a [`Module`] the way XLA's `HloModule::ToString` does.
//!
//! The style is the one of post-optimisation dumps (`compiled.as_text()`, `--xla_dump_to`):
//! `%`-prefixed names, computation signatures `%name (p: f32[]) -> f32[] {`, result shapes
//! with layouts, operands as bare `%names` with a `/*index=5*/` marker every fifth operand,
//! opcode attributes in XLA's order, then `sharding`, `frontend_attributes`,
//! `control-predecessors`, `statistics`/`result_accuracy`/`origin`, `metadata` and
//! `backend_config`. A dump of jax 0.8.3 prints back byte for byte.
//!
//! The contract with `hlo-parse` is `parse(print(m)) == m` for every module the parser
//! produces: an optional attribute is printed exactly when the IR holds it (even where
//! XLA would leave out a default), so that nothing is lost or invented on a round trip.
//!
//! Floats use XLA's `RoundTripFpToString`: `%.6g` for f32 when that reads back to the same
//! value and `%.9g` otherwise (`%.15g`/`%.17g` for f64, `%.{max_digits10}g` for the narrow
//! types), `inf`, `-inf`, `nan`, `-nan`, and `nan(0x..)` for a NaN with a non-default payload.

use crate::dtype::DType;
use crate::literal::{ArrayData, Literal, LiteralData};
use crate::module::{CompId, Computation, Instr, InstrId, InstrMeta, Module, OpMetadata, ProgramShape};
use crate::op::*;
use crate::opcode::Opcode;
use crate::shape::{ArrayShape, Shape};
use half::{bf16, f16};
use std::fmt::{self, Write};

/// Prints a whole module as HLO text.
pub fn print_module(module: &Module) -> String {
    let mut out = String::with_capacity(64 * module.instr_count() + 256);
    write_module(&mut out, module);
    out
}

/// Prints one computation (`[ENTRY ]%name (params) -> result { ... }`), without a trailing newline.
pub fn print_computation(module: &Module, comp: &Computation) -> String {
    let mut out = String::new();
    let is_entry = module.comps.get(module.entry.index()).is_some_and(|e| std::ptr::eq(e, comp));
    write_computation(&mut out, module, comp, is_entry);
    out
}

/// Prints one instruction line without indentation or `ROOT`: `%name = shape opcode(operands), attrs`.
pub fn print_instr(module: &Module, comp: &Computation, id: InstrId) -> String {
    let mut out = String::new();
    if let Some(instr) = comp.instrs.get(id.index()) {
        write_instr(&mut out, module, comp, instr);
    }
    out
}

/// Prints a shape as XLA's `ShapeUtil::HumanStringWithLayout` does, including the
/// `/*index=N*/` markers inside long tuples.
pub fn print_shape(shape: &Shape) -> String {
    let mut out = String::new();
    write_shape(&mut out, shape, true);
    out
}

/// Prints a literal's value on one line without its shape, as a `constant(...)` operand.
pub fn print_literal(literal: &Literal) -> String {
    let mut out = String::new();
    write_literal(&mut out, literal);
    out
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print_module(self))
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print_literal(self))
    }
}

// ---------------------------------------------------------------------------------------------
// Module, computations, instructions.
// ---------------------------------------------------------------------------------------------

/// Header attributes XLA prints before `entry_computation_layout`.
const HEADER_ATTRS_BEFORE_LAYOUT: [&str; 3] = ["input_output_alias", "buffer_donor", "alias_passthrough_params"];

/// The order in which the printer writes an unmodelled module header attribute relative to
/// the others (0 before `entry_computation_layout`, 1 after); the parser stable-sorts
/// [`crate::ModuleAttrs::other`] by it, as it does instruction attributes with [`other_attr_rank`].
pub fn header_attr_rank(name: &str) -> u8 {
    if HEADER_ATTRS_BEFORE_LAYOUT.contains(&name) {
        0
    } else {
        1
    }
}

fn write_module(out: &mut String, module: &Module) {
    out.push_str("HloModule ");
    out.push_str(&module.name);
    let attrs = &module.attrs;
    if attrs.is_scheduled {
        out.push_str(", is_scheduled=true");
    }
    let early = |name: &str| HEADER_ATTRS_BEFORE_LAYOUT.contains(&name);
    for (name, value) in attrs.other.iter().filter(|(n, _)| early(n)) {
        let _ = write!(out, ", {name}={value}");
    }
    if let Some(layout) = &attrs.entry_computation_layout {
        out.push_str(", entry_computation_layout={");
        write_program_shape(out, layout);
        out.push('}');
    }
    for (name, value) in attrs.other.iter().filter(|(n, _)| !early(n)) {
        let _ = write!(out, ", {name}={value}");
    }
    write_stack_frames(out, module);
    out.push_str("\n\n");
    for (idx, comp) in module.comps.iter().enumerate() {
        write_computation(out, module, comp, idx == module.entry.index());
        out.push_str("\n\n");
    }
}

fn write_program_shape(out: &mut String, shape: &ProgramShape) {
    out.push('(');
    write_shape_list(out, &shape.params, true);
    out.push_str(")->");
    write_shape(out, &shape.result, true);
}

fn write_stack_frames(out: &mut String, module: &Module) {
    let index = &module.stack_frames;
    if index.is_empty() {
        return;
    }
    out.push_str("\n\nFileNames\n");
    for (id, name) in &index.file_names {
        let _ = writeln!(out, "{id} \"{}\"", c_escape(name));
    }
    out.push_str("\nFunctionNames\n");
    for (id, name) in &index.function_names {
        let _ = writeln!(out, "{id} \"{}\"", c_escape(name));
    }
    out.push_str("\nFileLocations\n");
    for (id, loc) in &index.file_locations {
        let _ = writeln!(
            out,
            "{id} {{file_name_id={} function_name_id={} line={} end_line={} column={} end_column={}}}",
            loc.file_name_id, loc.function_name_id, loc.line, loc.end_line, loc.column, loc.end_column
        );
    }
    out.push_str("\nStackFrames\n");
    for (id, frame) in &index.stack_frames {
        let _ = writeln!(
            out,
            "{id} {{file_location_id={} parent_frame_id={}}}",
            frame.file_location_id, frame.parent_frame_id
        );
    }
}

fn write_computation(out: &mut String, module: &Module, comp: &Computation, is_entry: bool) {
    if is_entry {
        out.push_str("ENTRY ");
    }
    out.push('%');
    out.push_str(&comp.name);
    out.push_str(" (");
    for (i, &param) in comp.params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if let Some(instr) = comp.instrs.get(param.index()) {
            out.push_str(&instr.name);
            out.push_str(": ");
            write_shape(out, &instr.shape, false);
        }
    }
    out.push_str(") -> ");
    if let Some(root) = comp.instrs.get(comp.root.index()) {
        write_shape(out, &root.shape, false);
    }
    out.push_str(" {\n");
    for (idx, instr) in comp.instrs.iter().enumerate() {
        out.push_str(if idx == comp.root.index() { "  ROOT " } else { "  " });
        write_instr(out, module, comp, instr);
        out.push('\n');
    }
    out.push('}');
    if let Some(thread) = &comp.execution_thread {
        let _ = write!(out, ", execution_thread=\"{}\"", c_escape(thread));
    }
}

/// Unmodelled attributes XLA prints after `control-predecessors` rather than with the opcode's own.
const LATE_ATTRS: [&str; 3] = ["statistics", "result_accuracy", "origin"];

/// The order in which the printer writes an unmodelled attribute relative to the others
/// (it follows XLA's print order). The parser stable-sorts `other_attrs` by this rank so
/// that a module and its printed-and-reparsed copy list them identically.
pub fn other_attr_rank(opcode: Opcode, name: &str) -> u8 {
    if let Some(i) = LATE_ATTRS.iter().position(|&n| n == name) {
        return 2 + i as u8;
    }
    let early = match opcode {
        Opcode::CustomCall => CUSTOM_CALL_PRE_TARGET.contains(&name),
        Opcode::AllGather
        | Opcode::AllGatherDone
        | Opcode::AllGatherStart
        | Opcode::AllReduce
        | Opcode::AllReduceDone
        | Opcode::AllReduceStart
        | Opcode::AllToAll
        | Opcode::CollectiveBroadcast
        | Opcode::CollectivePermute
        | Opcode::CollectivePermuteDone
        | Opcode::CollectivePermuteStart
        | Opcode::CollectiveReduce
        | Opcode::RaggedAllToAll
        | Opcode::ReduceScatter => COLLECTIVE_PRE_DIMS.contains(&name),
        _ => false,
    };
    if early {
        0
    } else {
        1
    }
}

fn write_instr(out: &mut String, module: &Module, comp: &Computation, instr: &Instr) {
    out.push('%');
    out.push_str(&instr.name);
    out.push_str(" = ");
    write_shape(out, &instr.shape, true);
    out.push(' ');
    out.push_str(instr.op.opcode().name());
    out.push('(');
    match &instr.op {
        Op::Parameter { number } => {
            let _ = write!(out, "{number}");
        }
        Op::Constant(literal) => write_literal(out, literal),
        _ => {
            for (i, &operand) in instr.operands.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                    if i % 5 == 0 {
                        let _ = write!(out, "/*index={i}*/");
                    }
                }
                out.push('%');
                out.push_str(instr_name(comp, operand));
            }
        }
    }
    out.push(')');

    let meta = &instr.meta;
    let mut attrs = Attrs { out, module, meta, early_done: false };
    write_op_attrs(&mut attrs, instr);
    attrs.early_others();
    write_called_computations(&mut attrs, comp, instr);
    let out = attrs.out;
    if let Some(sharding) = &meta.sharding {
        let _ = write!(out, ", sharding={sharding}");
    }
    if !meta.frontend_attributes.is_empty() {
        out.push_str(", frontend_attributes={");
        for (i, (key, value)) in meta.frontend_attributes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // XLA's keys are identifiers; any other key is quoted so that it reads back.
            let plain =
                !key.is_empty() && key.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'));
            if plain {
                out.push_str(key);
            } else {
                let _ = write!(out, "\"{}\"", c_escape(key));
            }
            out.push('=');
            if lexes_as_json_dict(value) {
                out.push_str(value);
            } else {
                let _ = write!(out, "\"{}\"", c_escape(value));
            }
        }
        out.push('}');
    }
    if !meta.control_predecessors.is_empty() {
        out.push_str(", control-predecessors={");
        for (i, &pred) in meta.control_predecessors.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push('%');
            out.push_str(instr_name(comp, pred));
        }
        out.push('}');
    }
    for late in LATE_ATTRS {
        for (name, value) in meta.other_attrs.iter().filter(|(n, _)| n == late) {
            let _ = write!(out, ", {name}={value}");
        }
    }
    if let Some(metadata) = &meta.metadata {
        out.push_str(", metadata={");
        write_metadata(out, metadata);
        out.push('}');
    }
    if let Some(config) = &meta.backend_config {
        let _ = write!(out, ", backend_config={config}");
    }
}

fn instr_name(comp: &Computation, id: InstrId) -> &str {
    comp.instrs.get(id.index()).map_or("<invalid>", |i| i.name.as_str())
}

fn comp_name(module: &Module, id: CompId) -> &str {
    module.comps.get(id.index()).map_or("<invalid>", |c| c.name.as_str())
}

/// Appends `, name=value` attributes and the unmodelled ones at XLA's positions.
struct Attrs<'a, 'm> {
    out: &'a mut String,
    module: &'m Module,
    meta: &'m InstrMeta,
    early_done: bool,
}

impl Attrs<'_, '_> {
    fn push(&mut self, args: fmt::Arguments<'_>) {
        self.out.push_str(", ");
        let _ = self.out.write_fmt(args);
    }

    fn dims(&mut self, name: &str, dims: &[i64]) {
        self.out.push_str(", ");
        self.out.push_str(name);
        self.out.push_str("={");
        write_joined(self.out, dims, ",");
        self.out.push('}');
    }

    fn comp(&mut self, name: &str, id: CompId) {
        let module = self.module;
        self.push(format_args!("{name}=%{}", comp_name(module, id)));
    }

    /// Prints the unmodelled attributes accepted by `filter`, once each.
    fn others_where(&mut self, filter: impl Fn(&str) -> bool) {
        for (name, value) in self.meta.other_attrs.iter() {
            if !LATE_ATTRS.contains(&name.as_str()) && filter(name) {
                self.out.push_str(", ");
                self.out.push_str(name);
                self.out.push('=');
                self.out.push_str(value);
            }
        }
    }

    /// Prints every remaining early unmodelled attribute (those not printed in a special slot).
    fn early_others(&mut self) {
        if !self.early_done {
            self.early_done = true;
            self.others_where(|_| true);
        }
    }
}

/// Unmodelled custom-call attributes XLA prints before `custom_call_target`.
const CUSTOM_CALL_PRE_TARGET: [&str; 6] =
    ["window", "dim_labels", "feature_group_count", "batch_group_count", "operand_precision", "padding_type"];
/// Unmodelled collective attributes XLA prints before `dimensions`.
const COLLECTIVE_PRE_DIMS: [&str; 2] = ["replica_groups", "constrain_layout"];

fn write_op_attrs(a: &mut Attrs<'_, '_>, instr: &Instr) {
    match &instr.op {
        Op::Iota { dimension } => a.push(format_args!("iota_dimension={dimension}")),
        Op::Compare { direction, compare_type } => {
            a.push(format_args!("direction={}", compare_direction_name(*direction)));
            if let Some(ty) = compare_type {
                a.push(format_args!("type={}", compare_type_name(*ty)));
            }
        }
        Op::ReducePrecision { exponent_bits, mantissa_bits } => {
            a.push(format_args!("exponent_bits={exponent_bits}"));
            a.push(format_args!("mantissa_bits={mantissa_bits}"));
        }
        Op::Broadcast { dimensions }
        | Op::Transpose { dimensions }
        | Op::Reverse { dimensions }
        | Op::Reduce { dimensions, .. }
        | Op::Map { dimensions, .. } => a.dims("dimensions", dimensions),
        Op::Concatenate { dimension } | Op::GetDimensionSize { dimension } | Op::SetDimensionSize { dimension } => {
            a.dims("dimensions", &[*dimension])
        }
        Op::Slice { dims } => {
            let strided = dims.iter().any(|d| d.stride != 1);
            a.out.push_str(", slice={");
            for (i, d) in dims.iter().enumerate() {
                if i > 0 {
                    a.out.push_str(", ");
                }
                let _ = write!(a.out, "[{}:{}", d.start, d.limit);
                if strided {
                    let _ = write!(a.out, ":{}", d.stride);
                }
                a.out.push(']');
            }
            a.out.push('}');
        }
        Op::DynamicSlice { sizes } => a.dims("dynamic_slice_sizes", sizes),
        Op::Pad { dims } => {
            a.out.push_str(", padding=");
            write_padding(a.out, dims);
        }
        Op::GetTupleElement { index } => a.push(format_args!("index={index}")),
        Op::ReduceWindow { window, .. } | Op::SelectAndScatter { window, .. } => {
            if !window.dims.is_empty() {
                a.out.push_str(", window={");
                write_window(a.out, window);
                a.out.push('}');
            }
        }
        Op::Gather { dims, slice_sizes, indices_are_sorted } => {
            a.dims("offset_dims", &dims.offset_dims);
            a.dims("collapsed_slice_dims", &dims.collapsed_slice_dims);
            a.dims("start_index_map", &dims.start_index_map);
            if !dims.operand_batching_dims.is_empty() {
                a.dims("operand_batching_dims", &dims.operand_batching_dims);
            }
            if !dims.start_indices_batching_dims.is_empty() {
                a.dims("start_indices_batching_dims", &dims.start_indices_batching_dims);
            }
            a.push(format_args!("index_vector_dim={}", dims.index_vector_dim));
            a.dims("slice_sizes", slice_sizes);
            if *indices_are_sorted {
                a.push(format_args!("indices_are_sorted=true"));
            }
        }
        Op::Scatter { dims, indices_are_sorted, unique_indices, .. } => {
            a.dims("update_window_dims", &dims.update_window_dims);
            a.dims("inserted_window_dims", &dims.inserted_window_dims);
            a.dims("scatter_dims_to_operand_dims", &dims.scatter_dims_to_operand_dims);
            if !dims.input_batching_dims.is_empty() {
                a.dims("input_batching_dims", &dims.input_batching_dims);
            }
            if !dims.scatter_indices_batching_dims.is_empty() {
                a.dims("scatter_indices_batching_dims", &dims.scatter_indices_batching_dims);
            }
            a.push(format_args!("index_vector_dim={}", dims.index_vector_dim));
            if *indices_are_sorted {
                a.push(format_args!("indices_are_sorted=true"));
            }
            if *unique_indices {
                a.push(format_args!("unique_indices=true"));
            }
        }
        Op::Dot { dims, precision, algorithm } => {
            write_dot_dims(a, dims);
            write_precision(a, precision);
            if let Some(alg) = algorithm {
                a.push(format_args!("algorithm={alg}"));
            }
        }
        Op::RaggedDot { dims, lhs_ragged, rhs_group, precision } => {
            write_dot_dims(a, dims);
            a.dims("lhs_ragged_dims", lhs_ragged);
            if !rhs_group.is_empty() {
                a.dims("rhs_group_dims", rhs_group);
            }
            write_precision(a, precision);
        }
        Op::ScaledDot { dims, precision } => {
            write_dot_dims(a, dims);
            write_precision(a, precision);
        }
        Op::Convolution { window, dims, feature_group_count, batch_group_count, precision } => {
            if !window.dims.is_empty() {
                a.out.push_str(", window={");
                write_window(a.out, window);
                a.out.push('}');
            }
            a.out.push_str(", dim_labels=");
            write_dim_labels(a.out, dims);
            if *feature_group_count != 1 {
                a.push(format_args!("feature_group_count={feature_group_count}"));
            }
            if *batch_group_count != 1 {
                a.push(format_args!("batch_group_count={batch_group_count}"));
            }
            write_precision(a, precision);
        }
        Op::Sort { dimension, is_stable, .. } => {
            a.dims("dimensions", &[*dimension]);
            if *is_stable {
                a.push(format_args!("is_stable=true"));
            }
        }
        Op::TopK { k, largest } => {
            a.push(format_args!("k={k}"));
            a.push(format_args!("largest={largest}"));
        }
        Op::Fusion { kind, .. } => a.push(format_args!("kind={}", fusion_kind_name(*kind))),
        Op::CustomCall(cc) => {
            a.others_where(|n| CUSTOM_CALL_PRE_TARGET.contains(&n));
            a.push(format_args!("custom_call_target=\"{}\"", c_escape(&cc.target)));
            if let Some(shapes) = &cc.operand_layout_constraints {
                a.out.push_str(", operand_layout_constraints={");
                write_shape_list_plain(a.out, shapes);
                a.out.push('}');
            }
            if cc.has_side_effect {
                a.push(format_args!("custom_call_has_side_effect=true"));
            }
            if let Some(literal) = &cc.literal {
                a.out.push_str(", literal=");
                write_shaped_literal(a.out, literal);
            }
            if !cc.output_to_operand_aliasing.is_empty() {
                a.out.push_str(", output_to_operand_aliasing={");
                for (i, (out_index, operand, operand_index)) in cc.output_to_operand_aliasing.iter().enumerate() {
                    if i > 0 {
                        a.out.push_str(", ");
                    }
                    a.out.push('{');
                    write_joined(a.out, out_index, ",");
                    let _ = write!(a.out, "}}: ({operand}, {{");
                    write_joined(a.out, operand_index, ",");
                    a.out.push_str("})");
                }
                a.out.push('}');
            }
            a.others_where(|n| !CUSTOM_CALL_PRE_TARGET.contains(&n));
            a.early_done = true;
            if let Some(version) = cc.api_version {
                a.push(format_args!("api_version={}", api_version_name(version)));
            }
        }
        Op::Rng { distribution } => a.push(format_args!("distribution={}", rng_distribution_name(*distribution))),
        Op::RngBitGenerator { algorithm } => a.push(format_args!("algorithm={}", rng_algorithm_name(*algorithm))),
        Op::RngGetAndUpdateState { delta } => a.push(format_args!("delta={delta}")),
        Op::Fft { fft_type, fft_length } => {
            a.push(format_args!("fft_type={}", fft_type_name(*fft_type)));
            a.dims("fft_length", fft_length);
        }
        Op::Cholesky { lower } => {
            if *lower {
                a.push(format_args!("lower=true"));
            }
        }
        Op::TriangularSolve { left_side, lower, unit_diagonal, transpose_a } => {
            if *left_side {
                a.push(format_args!("left_side=true"));
            }
            if *lower {
                a.push(format_args!("lower=true"));
            }
            if *unit_diagonal {
                a.push(format_args!("unit_diagonal=true"));
            }
            a.push(format_args!("transpose_a={}", transpose_name(*transpose_a)));
        }
        Op::BatchNormTraining { epsilon, feature_index }
        | Op::BatchNormInference { epsilon, feature_index }
        | Op::BatchNormGrad { epsilon, feature_index } => {
            a.push(format_args!("epsilon={}", format_f32(*epsilon)));
            a.push(format_args!("feature_index={feature_index}"));
        }
        Op::Send { channel_id, is_host_transfer }
        | Op::SendDone { channel_id, is_host_transfer }
        | Op::Recv { channel_id, is_host_transfer }
        | Op::RecvDone { channel_id, is_host_transfer } => {
            if let Some(id) = channel_id {
                a.push(format_args!("channel_id={id}"));
            }
            if *is_host_transfer {
                a.push(format_args!("is_host_transfer=true"));
            }
        }
        Op::Collective { attrs, .. } => {
            if let Some(id) = attrs.channel_id {
                a.push(format_args!("channel_id={id}"));
            }
            a.others_where(|n| COLLECTIVE_PRE_DIMS.contains(&n));
            if !attrs.dimensions.is_empty() {
                a.dims("dimensions", &attrs.dimensions);
            }
            a.others_where(|n| !COLLECTIVE_PRE_DIMS.contains(&n));
            a.early_done = true;
        }
        Op::Parameter { .. }
        | Op::Constant(_)
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Select
        | Op::Clamp
        | Op::Convert
        | Op::BitcastConvert
        | Op::StochasticConvert
        | Op::Reshape
        | Op::DynamicReshape
        | Op::DynamicUpdateSlice
        | Op::Bitcast
        | Op::Copy
        | Op::Tuple
        | Op::While { .. }
        | Op::Conditional { .. }
        | Op::Call { .. }
        | Op::AfterAll
        | Op::AddDependency
        | Op::OptimizationBarrier
        | Op::Domain
        | Op::PartitionId
        | Op::ReplicaId
        | Op::Infeed
        | Op::Outfeed
        | Op::CopyStart
        | Op::CopyDone
        | Op::Async { .. }
        | Op::Other { .. } => {}
    }
}

fn write_called_computations(a: &mut Attrs<'_, '_>, comp: &Computation, instr: &Instr) {
    match &instr.op {
        Op::While { condition, body } => {
            a.comp("condition", *condition);
            a.comp("body", *body);
        }
        Op::SelectAndScatter { select, scatter, .. } => {
            a.comp("select", *select);
            a.comp("scatter", *scatter);
        }
        Op::Conditional { branches } => {
            let selector_is_pred = instr
                .operands
                .first()
                .and_then(|&id| comp.instrs.get(id.index()))
                .is_some_and(|sel| sel.shape.dtype() == Some(DType::Pred));
            if selector_is_pred && branches.len() == 2 {
                a.comp("true_computation", branches[0]);
                a.comp("false_computation", branches[1]);
            } else {
                write_comp_list(a, "branch_computations", branches);
            }
        }
        Op::Call { to_apply, is_composite } => {
            a.comp("to_apply", *to_apply);
            if *is_composite {
                a.push(format_args!("is_composite=true"));
            }
        }
        Op::Reduce { to_apply, .. }
        | Op::ReduceWindow { to_apply, .. }
        | Op::Map { to_apply, .. }
        | Op::Scatter { to_apply, .. }
        | Op::Sort { to_apply, .. } => a.comp("to_apply", *to_apply),
        Op::Fusion { calls, .. } => a.comp("calls", *calls),
        Op::CustomCall(cc) if !cc.called_computations.is_empty() => {
            write_comp_list(a, "called_computations", &cc.called_computations)
        }
        Op::Async { calls: Some(calls), .. } => a.comp("calls", *calls),
        Op::Collective { attrs: CollectiveAttrs { to_apply: Some(to_apply), .. }, .. } => a.comp("to_apply", *to_apply),
        _ => {}
    }
}

fn write_comp_list(a: &mut Attrs<'_, '_>, name: &str, comps: &[CompId]) {
    a.out.push_str(", ");
    a.out.push_str(name);
    a.out.push_str("={");
    for (i, &id) in comps.iter().enumerate() {
        if i > 0 {
            a.out.push_str(", ");
        }
        a.out.push('%');
        a.out.push_str(comp_name(a.module, id));
    }
    a.out.push('}');
}

fn write_dot_dims(a: &mut Attrs<'_, '_>, dims: &DotDims) {
    if !dims.lhs_batch.is_empty() {
        a.dims("lhs_batch_dims", &dims.lhs_batch);
    }
    a.dims("lhs_contracting_dims", &dims.lhs_contracting);
    if !dims.rhs_batch.is_empty() {
        a.dims("rhs_batch_dims", &dims.rhs_batch);
    }
    a.dims("rhs_contracting_dims", &dims.rhs_contracting);
}

fn write_precision(a: &mut Attrs<'_, '_>, precision: &[Precision]) {
    if precision.is_empty() {
        return;
    }
    a.out.push_str(", operand_precision={");
    for (i, p) in precision.iter().enumerate() {
        if i > 0 {
            a.out.push(',');
        }
        a.out.push_str(precision_name(*p));
    }
    a.out.push('}');
}

fn write_metadata(out: &mut String, m: &OpMetadata) {
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push(' ');
        }
        first = false;
    };
    let strings = [("op_type", &m.op_type), ("op_name", &m.op_name), ("source_file", &m.source_file)];
    for (key, value) in strings {
        if let Some(v) = value {
            sep(out);
            let _ = write!(out, "{key}=\"{}\"", c_escape(v));
        }
    }
    let ints = [
        ("source_line", m.source_line),
        ("source_end_line", m.source_end_line),
        ("source_column", m.source_column),
        ("source_end_column", m.source_end_column),
    ];
    for (key, value) in ints {
        if let Some(v) = value {
            sep(out);
            let _ = write!(out, "{key}={v}");
        }
    }
    for (key, value) in &m.other {
        sep(out);
        let _ = write!(out, "{key}={value}");
    }
    if let Some(v) = &m.deduplicated_name {
        sep(out);
        let _ = write!(out, "deduplicated_name=\"{}\"", c_escape(v));
    }
    if let Some(v) = &m.scheduling_name {
        sep(out);
        let _ = write!(out, "scheduling_name=\"{}\"", c_escape(v));
    }
    if let Some(v) = m.stack_frame_id {
        sep(out);
        let _ = write!(out, "stack_frame_id={v}");
    }
}

// ---------------------------------------------------------------------------------------------
// Attribute syntax shared with the parser.
// ---------------------------------------------------------------------------------------------

/// `lo_hi[_interior]x...`, with the interior part only when some dimension has one.
fn write_padding(out: &mut String, dims: &[PadDim]) {
    let interior = dims.iter().any(|d| d.interior != 0);
    for (i, d) in dims.iter().enumerate() {
        if i > 0 {
            out.push('x');
        }
        let _ = write!(out, "{}_{}", d.low, d.high);
        if interior {
            let _ = write!(out, "_{}", d.interior);
        }
    }
}

/// XLA's `window_util::ToString`: `size=3x3 stride=2x2 pad=0_1x0_1 lhs_dilate=.. rhs_dilate=.. rhs_reversal=..`,
/// each field but `size` only when some dimension differs from the default.
fn write_window(out: &mut String, window: &Window) {
    let dims = &window.dims;
    let field = |out: &mut String, name: &str, f: &dyn Fn(&WindowDim) -> String| {
        if !out.ends_with('{') {
            out.push(' ');
        }
        out.push_str(name);
        out.push('=');
        for (i, d) in dims.iter().enumerate() {
            if i > 0 {
                out.push('x');
            }
            out.push_str(&f(d));
        }
    };
    field(out, "size", &|d| d.size.to_string());
    if dims.iter().any(|d| d.stride != 1) {
        field(out, "stride", &|d| d.stride.to_string());
    }
    if dims.iter().any(|d| d.padding_low != 0 || d.padding_high != 0) {
        field(out, "pad", &|d| format!("{}_{}", d.padding_low, d.padding_high));
    }
    if dims.iter().any(|d| d.base_dilation != 1) {
        field(out, "lhs_dilate", &|d| d.base_dilation.to_string());
    }
    if dims.iter().any(|d| d.window_dilation != 1) {
        field(out, "rhs_dilate", &|d| d.window_dilation.to_string());
    }
    if dims.iter().any(|d| d.window_reversal) {
        field(out, "rhs_reversal", &|d| if d.window_reversal { "1".into() } else { "0".into() });
    }
}

/// `b01f_01io->b01f`: one letter (or spatial index) per dimension of each operand.
fn write_dim_labels(out: &mut String, dims: &ConvDims) {
    fn labels(out: &mut String, a: (i64, &str), b: (i64, &str), spatial: &[i64]) {
        let max = spatial.iter().copied().chain([a.0, b.0]).max().unwrap_or(0);
        let len = usize::try_from(max.clamp(-1, 4096) + 1).unwrap_or(0);
        let mut slots = vec![String::from("?"); len];
        let mut set = |dim: i64, label: String| {
            if let Some(slot) = usize::try_from(dim).ok().and_then(|d| slots.get_mut(d)) {
                *slot = label;
            }
        };
        set(a.0, a.1.to_string());
        set(b.0, b.1.to_string());
        for (i, &d) in spatial.iter().enumerate() {
            set(d, i.to_string());
        }
        out.extend(slots);
    }
    labels(out, (dims.input_batch, "b"), (dims.input_feature, "f"), &dims.input_spatial);
    out.push('_');
    labels(out, (dims.kernel_input_feature, "i"), (dims.kernel_output_feature, "o"), &dims.kernel_spatial);
    out.push_str("->");
    labels(out, (dims.output_batch, "b"), (dims.output_feature, "f"), &dims.output_spatial);
}

pub fn compare_direction_name(d: CompareDirection) -> &'static str {
    match d {
        CompareDirection::Eq => "EQ",
        CompareDirection::Ne => "NE",
        CompareDirection::Lt => "LT",
        CompareDirection::Le => "LE",
        CompareDirection::Gt => "GT",
        CompareDirection::Ge => "GE",
    }
}

pub fn compare_type_name(t: CompareType) -> &'static str {
    match t {
        CompareType::Float => "FLOAT",
        CompareType::TotalOrder => "TOTALORDER",
        CompareType::Signed => "SIGNED",
        CompareType::Unsigned => "UNSIGNED",
    }
}

pub fn precision_name(p: Precision) -> &'static str {
    match p {
        Precision::Default => "default",
        Precision::High => "high",
        Precision::Highest => "highest",
    }
}

pub fn fusion_kind_name(k: FusionKind) -> &'static str {
    match k {
        FusionKind::Loop => "kLoop",
        FusionKind::Input => "kInput",
        FusionKind::Output => "kOutput",
        FusionKind::Custom => "kCustom",
    }
}

pub fn rng_distribution_name(d: RngDistribution) -> &'static str {
    match d {
        RngDistribution::Uniform => "rng_uniform",
        RngDistribution::Normal => "rng_normal",
    }
}

pub fn rng_algorithm_name(a: RngAlgorithm) -> &'static str {
    match a {
        RngAlgorithm::Default => "rng_default",
        RngAlgorithm::ThreeFry => "rng_three_fry",
        RngAlgorithm::Philox => "rng_philox",
    }
}

pub fn fft_type_name(t: FftType) -> &'static str {
    match t {
        FftType::Fft => "FFT",
        FftType::Ifft => "IFFT",
        FftType::Rfft => "RFFT",
        FftType::Irfft => "IRFFT",
    }
}

pub fn transpose_name(t: TransposeKind) -> &'static str {
    match t {
        TransposeKind::NoTranspose => "NO_TRANSPOSE",
        TransposeKind::Transpose => "TRANSPOSE",
        TransposeKind::Adjoint => "ADJOINT",
    }
}

pub fn api_version_name(v: CustomCallApiVersion) -> &'static str {
    match v {
        CustomCallApiVersion::Original => "API_VERSION_ORIGINAL",
        CustomCallApiVersion::StatusReturning => "API_VERSION_STATUS_RETURNING",
        CustomCallApiVersion::StatusReturningUnified => "API_VERSION_STATUS_RETURNING_UNIFIED",
        CustomCallApiVersion::TypedFfi => "API_VERSION_TYPED_FFI",
    }
}

// ---------------------------------------------------------------------------------------------
// Shapes.
// ---------------------------------------------------------------------------------------------

fn write_shape(out: &mut String, shape: &Shape, with_layout: bool) {
    match shape {
        Shape::Array(a) => write_array_shape(out, a, with_layout),
        Shape::Tuple(elems) => {
            out.push('(');
            write_shape_list(out, elems, with_layout);
            out.push(')');
        }
        Shape::Token => out.push_str("token[]"),
    }
}

/// Elements separated by `, ` with `/*index=N*/` before every fifth one, as XLA prints tuples.
fn write_shape_list(out: &mut String, shapes: &[Shape], with_layout: bool) {
    for (i, s) in shapes.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
            if i % 5 == 0 {
                let _ = write!(out, "/*index={i}*/");
            }
        }
        write_shape(out, s, with_layout);
    }
}

/// A plain `, `-separated list with layouts (custom-call `operand_layout_constraints`).
fn write_shape_list_plain(out: &mut String, shapes: &[Shape]) {
    for (i, s) in shapes.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_shape(out, s, true);
    }
}

fn write_array_shape(out: &mut String, a: &ArrayShape, with_layout: bool) {
    out.push_str(a.dtype.name());
    out.push('[');
    for (i, &d) in a.dims.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match (a.dynamic.get(i).copied().unwrap_or(false), d) {
            (true, -1) => out.push('?'),
            (true, d) => {
                let _ = write!(out, "<={d}");
            }
            (false, d) => {
                let _ = write!(out, "{d}");
            }
        }
    }
    out.push(']');
    if with_layout {
        if let Some(layout) = &a.layout {
            let _ = write!(out, "{layout}");
        }
    }
}

fn write_joined<T: fmt::Display>(out: &mut String, items: &[T], sep: &str) {
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        let _ = write!(out, "{it}");
    }
}

// ---------------------------------------------------------------------------------------------
// Literals.
// ---------------------------------------------------------------------------------------------

/// A custom-call literal: `shape value`, or `( shape value, ... )` for a tuple, as XLA writes it.
fn write_shaped_literal(out: &mut String, literal: &Literal) {
    match (&literal.shape, &literal.data) {
        (Shape::Tuple(_), LiteralData::Tuple(elems)) => write_tuple_literal(out, elems, write_shaped_literal),
        _ => {
            write_shape(out, &literal.shape, true);
            out.push(' ');
            write_literal(out, literal);
        }
    }
}

/// `( e1, e2, ... )`, each element written by `write`.
fn write_tuple_literal(out: &mut String, elems: &[Literal], write: fn(&mut String, &Literal)) {
    out.push_str("( ");
    for (i, e) in elems.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write(out, e);
    }
    out.push_str(" )");
}

fn write_literal(out: &mut String, literal: &Literal) {
    match (&literal.shape, &literal.data) {
        (Shape::Tuple(_), LiteralData::Tuple(elems)) => write_tuple_literal(out, elems, write_literal),
        (Shape::Token, _) | (_, LiteralData::Token) => out.push_str("token"),
        (Shape::Array(shape), LiteralData::Array(data)) => write_dense(out, shape, data),
        // A literal whose data does not match its shape cannot be printed faithfully.
        _ => out.push_str("{...}"),
    }
}

fn write_dense(out: &mut String, shape: &ArrayShape, data: &ArrayData) {
    let n = data.len();
    if !data.matches(shape.dtype) || (shape.num_elements_checked() != Some(n as u64)) {
        out.push_str("{...}");
        return;
    }
    let dims: Vec<i64> = shape.dims.iter().map(|&d| d.max(0)).collect();
    let rank = dims.len();
    let mut flat = 0usize;
    let mut accum = Vec::with_capacity(rank);
    write_dense_rec(out, shape.dtype, data, &dims, rank, &mut accum, &mut flat);
}

/// XLA's `DenseArrayPrintHelper` in one-line mode: `{1, 2}`, `{ { 1, 2 }, { 3, 4 } }`, `{ {0}, {1} }`,
/// with `/*iK=V*/` markers inside arrays of rank 4 and more.
fn write_dense_rec(
    out: &mut String,
    dtype: DType,
    data: &ArrayData,
    dims: &[i64],
    rank: usize,
    accum: &mut Vec<i64>,
    flat: &mut usize,
) {
    let Some((&n, rest)) = dims.split_first() else {
        write_element(out, dtype, data, *flat, rank > 0);
        *flat += 1;
        return;
    };
    // Opening brace.
    if rank == 1 {
        out.push('{');
    } else if dims.len() == 1 {
        out.push('{');
        if n > 1 {
            out.push(' ');
        }
    } else if rank > 3 && !accum.is_empty() && accum.len() < rank {
        let _ = write!(out, "{{ /*i{}={}*/", accum.len() - 1, accum.last().copied().unwrap_or(0));
        if n > 0 {
            out.push(' ');
        }
    } else {
        out.push_str("{ ");
    }
    for i in 0..n {
        accum.push(i);
        write_dense_rec(out, dtype, data, rest, rank, accum, flat);
        accum.pop();
        if i < n - 1 {
            out.push_str(", ");
        }
    }
    // Closing brace.
    if rank == 1 {
        out.push('}');
    } else if dims.len() == 1 {
        if n > 1 {
            out.push(' ');
        }
        out.push('}');
    } else {
        out.push_str(" }");
    }
}

fn write_element(out: &mut String, dtype: DType, data: &ArrayData, i: usize, in_array: bool) {
    let _ = match data {
        ArrayData::Pred(v) => {
            let b = v.get(i).copied().unwrap_or(false);
            // Arrays print predicates as 0/1, scalars as true/false, like XLA.
            out.push_str(match (in_array, b) {
                (true, true) => "1",
                (true, false) => "0",
                (false, true) => "true",
                (false, false) => "false",
            });
            Ok(())
        }
        ArrayData::S8(v) => write!(out, "{}", v.get(i).copied().unwrap_or(0)),
        ArrayData::S16(v) => write!(out, "{}", v.get(i).copied().unwrap_or(0)),
        ArrayData::S32(v) => write!(out, "{}", v.get(i).copied().unwrap_or(0)),
        ArrayData::S64(v) => write!(out, "{}", v.get(i).copied().unwrap_or(0)),
        ArrayData::U8(v) => write!(out, "{}", v.get(i).copied().unwrap_or(0)),
        ArrayData::U16(v) => write!(out, "{}", v.get(i).copied().unwrap_or(0)),
        ArrayData::U32(v) => write!(out, "{}", v.get(i).copied().unwrap_or(0)),
        ArrayData::U64(v) => write!(out, "{}", v.get(i).copied().unwrap_or(0)),
        ArrayData::F16(v) => {
            out.push_str(&format_f16(v.get(i).copied().unwrap_or(f16::ZERO)));
            Ok(())
        }
        ArrayData::BF16(v) => {
            out.push_str(&format_bf16(v.get(i).copied().unwrap_or(bf16::ZERO)));
            Ok(())
        }
        ArrayData::F32(v) => {
            out.push_str(&format_f32(v.get(i).copied().unwrap_or(0.0)));
            Ok(())
        }
        ArrayData::F64(v) => {
            out.push_str(&format_f64(v.get(i).copied().unwrap_or(0.0)));
            Ok(())
        }
        ArrayData::C64(v) => {
            let [re, im] = v.get(i).copied().unwrap_or([0.0; 2]);
            write!(out, "({}, {})", format_f32(re), format_f32(im))
        }
        ArrayData::C128(v) => {
            let [re, im] = v.get(i).copied().unwrap_or([0.0; 2]);
            write!(out, "({}, {})", format_f64(re), format_f64(im))
        }
        ArrayData::Bits(v) => {
            out.push_str(&format_minifloat(dtype, v.get(i).copied().unwrap_or(0)));
            Ok(())
        }
    };
}

trait CheckedElements {
    fn num_elements_checked(&self) -> Option<u64>;
}

impl CheckedElements for ArrayShape {
    /// The element count without overflow (the IR's own `num_elements` may overflow on absurd shapes).
    fn num_elements_checked(&self) -> Option<u64> {
        self.dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d.max(0) as u64))
    }
}

// ---------------------------------------------------------------------------------------------
// Floats.
// ---------------------------------------------------------------------------------------------

/// C's `printf("%.{precision}g", x)` as glibc prints it (`inf`, `-nan`, `1e+10`, `3.5e-07`).
pub fn format_g(x: f64, precision: usize) -> String {
    if let Some(special) = non_finite(x) {
        return special.to_string();
    }
    let p = precision.max(1);
    // One exact formatting to `p` significant digits; the style follows from its exponent.
    let sci = format!("{:.*e}", p - 1, x);
    g_from_scientific(&sci, p)
}

fn non_finite(x: f64) -> Option<&'static str> {
    if x.is_nan() {
        Some(if x.is_sign_negative() { "-nan" } else { "nan" })
    } else if x.is_infinite() {
        Some(if x < 0.0 { "-inf" } else { "inf" })
    } else {
        None
    }
}

/// Rewrites Rust's `[-]d[.ddd]e[-]X` in `%g` style for precision `p`: fixed notation when
/// `-4 <= X < p`, otherwise `d[.ddd]e±XX`; trailing fraction zeros removed either way.
fn g_from_scientific(sci: &str, p: usize) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let mut out = String::with_capacity(digits.len() + 8);
    out.push_str(sign);
    if exp < -4 || exp >= p as i64 {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// Number of significant digits in Rust's shortest round-trip form (`{:e}`).
fn shortest_digits(sci: &str) -> usize {
    let mantissa = sci.split_once('e').map_or(sci, |(m, _)| m);
    mantissa.bytes().filter(u8::is_ascii_digit).count()
}

/// Appends `(0x..)` for a NaN whose mantissa is not the default quiet NaN.
fn nan_payload(text: String, is_nan: bool, mantissa: u64, quiet: u64) -> String {
    if is_nan && mantissa != quiet {
        format!("{text}(0x{mantissa:x})")
    } else {
        text
    }
}

/// XLA's `RoundTripFpToString(float)`: `%.6g` when that reads back to `x`, else `%.9g`.
///
/// For a normal `x`, `%.6g` reads back exactly when the shortest round-trip form has at most
/// 6 digits (an f32's half-ulp is far below half a unit in the 6th digit, so rounding to 6
/// digits then gives that form), which saves formatting twice and parsing back.
pub fn format_f32(x: f32) -> String {
    let text = match non_finite(x as f64) {
        Some(special) => special.to_string(),
        None => {
            let shortest = format!("{x:e}");
            if shortest_digits(&shortest) > 6 {
                format_g(x as f64, 9)
            } else if x.is_normal() || x == 0.0 {
                g_from_scientific(&shortest, 6)
            } else {
                // Subnormals carry fewer bits, so the shortcut's argument does not hold.
                let six = format_g(x as f64, 6);
                if six.parse::<f32>().ok() == Some(x) {
                    six
                } else {
                    format_g(x as f64, 9)
                }
            }
        }
    };
    let mantissa = (x.to_bits() & 0x7f_ffff) as u64;
    nan_payload(text, x.is_nan(), mantissa, 0x40_0000)
}

/// XLA's `RoundTripFpToString(double)`: `%.15g` when that reads back, else `%.17g`.
pub fn format_f64(x: f64) -> String {
    let text = match non_finite(x) {
        Some(special) => special.to_string(),
        None => {
            let shortest = format!("{x:e}");
            if shortest_digits(&shortest) > 15 {
                format_g(x, 17)
            } else if x.is_normal() || x == 0.0 {
                g_from_scientific(&shortest, 15)
            } else {
                let fifteen = format_g(x, 15);
                if fifteen.parse::<f64>().ok() == Some(x) {
                    fifteen
                } else {
                    format_g(x, 17)
                }
            }
        }
    };
    let mantissa = x.to_bits() & 0xf_ffff_ffff_ffff;
    nan_payload(text, x.is_nan(), mantissa, 0x8_0000_0000_0000)
}

pub fn format_f16(x: f16) -> String {
    let text = format_g(x.to_f64(), 5);
    nan_payload(text, x.is_nan(), (x.to_bits() & 0x3ff) as u64, 0x200)
}

pub fn format_bf16(x: bf16) -> String {
    let text = format_g(x.to_f64(), 4);
    nan_payload(text, x.is_nan(), (x.to_bits() & 0x7f) as u64, 0x40)
}

/// How an 8- or 4-bit float type encodes its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MiniFloat {
    pub exponent_bits: u32,
    pub mantissa_bits: u32,
    pub bias: i32,
    pub kind: MiniFloatKind,
}

/// The special-value convention of a [`MiniFloat`] type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MiniFloatKind {
    /// IEEE-like: the top exponent holds infinities and NaNs (`f8e5m2`, `f8e4m3`, `f8e3m4`).
    Ieee,
    /// Finite, with the all-ones pattern (either sign) as NaN (`f8e4m3fn`).
    FiniteAllOnesNan,
    /// Finite, unsigned zero, `0x80` as the only NaN (`*fnuz` types).
    FiniteNegZeroNan,
    /// No sign bit, no zero; `0xff` is NaN (`f8e8m0fnu`).
    ExponentOnly,
    /// Finite with no NaN at all (`f4e2m1fn`).
    FiniteNoNan,
}

impl MiniFloat {
    /// The encoding of an 8- or 4-bit float type; `None` for every other type.
    pub fn of(dtype: DType) -> Option<MiniFloat> {
        let (exponent_bits, mantissa_bits, bias, kind) = match dtype {
            DType::F8E5M2 => (5, 2, 15, MiniFloatKind::Ieee),
            DType::F8E4M3 => (4, 3, 7, MiniFloatKind::Ieee),
            DType::F8E3M4 => (3, 4, 3, MiniFloatKind::Ieee),
            DType::F8E4M3FN => (4, 3, 7, MiniFloatKind::FiniteAllOnesNan),
            DType::F8E4M3FNUZ => (4, 3, 8, MiniFloatKind::FiniteNegZeroNan),
            DType::F8E5M2FNUZ => (5, 2, 16, MiniFloatKind::FiniteNegZeroNan),
            DType::F8E4M3B11FNUZ => (4, 3, 11, MiniFloatKind::FiniteNegZeroNan),
            DType::F8E8M0FNU => (8, 0, 127, MiniFloatKind::ExponentOnly),
            DType::F4E2M1FN => (2, 1, 1, MiniFloatKind::FiniteNoNan),
            _ => return None,
        };
        Some(MiniFloat { exponent_bits, mantissa_bits, bias, kind })
    }

    /// Total width in bits, sign included.
    pub fn width(self) -> u32 {
        let sign = if self.kind == MiniFloatKind::ExponentOnly { 0 } else { 1 };
        sign + self.exponent_bits + self.mantissa_bits
    }

    /// `std::numeric_limits<T>::max_digits10`: enough significant digits to round-trip.
    pub fn max_digits10(self) -> usize {
        let p = (self.mantissa_bits + 1) as f64;
        (1.0 + p * std::f64::consts::LOG10_2).ceil() as usize
    }

    /// The value of a bit pattern (the low `width()` bits of `bits`).
    pub fn to_f64(self, bits: u8) -> f64 {
        let width = self.width();
        let bits = if width >= 8 { bits } else { bits & ((1u8 << width) - 1) };
        let m_bits = self.mantissa_bits;
        let e_max = (1u32 << self.exponent_bits) - 1;
        let mant = (bits as u32) & ((1u32 << m_bits) - 1);
        let exp = ((bits as u32) >> m_bits) & e_max;
        let sign_bit = if self.kind == MiniFloatKind::ExponentOnly { 0 } else { (bits as u32 >> (width - 1)) & 1 };
        // Negation (not multiplication by -1) sets the sign of a NaN deterministically.
        let signed = |x: f64| if sign_bit == 1 { -x } else { x };
        match self.kind {
            MiniFloatKind::Ieee if exp == e_max => {
                return signed(if mant == 0 { f64::INFINITY } else { f64::NAN });
            }
            MiniFloatKind::FiniteAllOnesNan if exp == e_max && mant == (1 << m_bits) - 1 => return signed(f64::NAN),
            MiniFloatKind::FiniteNegZeroNan if bits == 0x80 => return f64::NAN,
            MiniFloatKind::ExponentOnly => {
                return if bits == 0xff { f64::NAN } else { 2f64.powi(exp as i32 - self.bias) };
            }
            _ => {}
        }
        let magnitude = if exp == 0 {
            mant as f64 * 2f64.powi(1 - self.bias - m_bits as i32)
        } else {
            (1.0 + mant as f64 / (1u32 << m_bits) as f64) * 2f64.powi(exp as i32 - self.bias)
        };
        signed(magnitude)
    }

    /// Mantissa bits of a NaN pattern and of the default NaN, for `nan(0x..)` payloads;
    /// `None` for types with a single NaN encoding.
    fn nan_payload(self, bits: u8) -> Option<(u64, u64)> {
        (self.kind == MiniFloatKind::Ieee && self.mantissa_bits > 1)
            .then(|| ((bits as u64) & ((1 << self.mantissa_bits) - 1), 1 << (self.mantissa_bits - 1)))
    }
}

/// Prints an 8- or 4-bit float from its bit pattern (`%.{max_digits10}g` of its value).
pub fn format_minifloat(dtype: DType, bits: u8) -> String {
    let Some(format) = MiniFloat::of(dtype) else {
        return bits.to_string();
    };
    let value = format.to_f64(bits);
    let text = format_g(value, format.max_digits10());
    match format.nan_payload(bits) {
        Some((mantissa, quiet)) => nan_payload(text, value.is_nan(), mantissa, quiet),
        None => text,
    }
}

// ---------------------------------------------------------------------------------------------
// Strings.
// ---------------------------------------------------------------------------------------------

/// `absl::CEscape`: `\n \r \t \" \' \\` and every other non-printable byte as `\ooo` octal
/// (so non-ASCII UTF-8 prints byte by byte, as XLA prints it).
pub fn c_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            b'\'' => out.push_str("\\'"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out
}

/// XLA's `LexesAsJsonDict`: `{...}` whose brackets balance (outside strings) exactly at the
/// end. Stricter than XLA's in also balancing `[]` and `()`, as the parser's bracket matching
/// does, so that a value printed unquoted always reads back.
pub fn lexes_as_json_dict(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') {
        return false;
    }
    let mut stack: Vec<u8> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => stack.push(b'}'),
            b'[' => stack.push(b']'),
            b'(' => stack.push(b')'),
            b'}' | b']' | b')' => {
                if stack.pop() != Some(b) {
                    return false;
                }
                if stack.is_empty() && i + 1 != bytes.len() {
                    return false;
                }
            }
            _ => {}
        }
    }
    stack.is_empty() && !in_string
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format_matches_printf() {
        let cases: &[(f64, usize, &str)] = &[
            (0.0, 6, "0"),
            (-0.0, 6, "-0"),
            (1.0, 6, "1"),
            (0.5, 6, "0.5"),
            (12.9772, 6, "12.9772"),
            (0.707106769, 9, "0.707106769"),
            (3.43273939e-07, 9, "3.43273939e-07"),
            (1e10, 6, "1e+10"),
            (123456.0, 6, "123456"),
            (1234567.0, 6, "1.23457e+06"),
            (0.0001, 6, "0.0001"),
            (0.00001, 6, "1e-05"),
            (9.9999999, 6, "10"),
            (1e100, 17, "1e+100"),
            (-1.5e-300, 17, "-1.5000000000000001e-300"),
        ];
        for &(x, p, want) in cases {
            assert_eq!(format_g(x, p), want, "%.{p}g of {x}");
        }
    }

    #[test]
    fn f32_uses_six_digits_when_they_round_trip() {
        assert_eq!(format_f32(0.1), "0.1");
        assert_eq!(format_f32(std::f32::consts::FRAC_1_SQRT_2), "0.707106769");
        assert_eq!(format_f32(f32::INFINITY), "inf");
        assert_eq!(format_f32(f32::NEG_INFINITY), "-inf");
        assert_eq!(format_f32(f32::NAN), "nan");
        assert_eq!(format_f32(-f32::NAN), "-nan");
        assert_eq!(format_f32(f32::from_bits(0x7f80_0001)), "nan(0x1)");
        assert_eq!(format_f32(-2147483648.0), "-2.14748365e+09");
    }

    /// The literal definition: try `%.6g`/`%.15g`, parse back, else `%.9g`/`%.17g`.
    #[test]
    fn shortcut_matches_the_round_trip_definition() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..300_000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Mix random patterns with short decimals such as 0.1 or 12.5.
            let x = if i % 3 == 0 {
                (state % 100_000) as f32 / 10f32.powi((state % 9) as i32)
            } else {
                f32::from_bits(state as u32)
            };
            let six = format_g(x as f64, 6);
            let want = if x.is_nan() || six.parse::<f32>().ok() == Some(x) { six } else { format_g(x as f64, 9) };
            assert_eq!(format_f32(x).split('(').next().unwrap(), want, "{x:e}");
            let y = if i % 3 == 0 {
                (state % 1_000_000) as f64 / 10f64.powi((state % 12) as i32)
            } else {
                f64::from_bits(state)
            };
            let fifteen = format_g(y, 15);
            let want = if y.is_nan() || fifteen.parse::<f64>().ok() == Some(y) { fifteen } else { format_g(y, 17) };
            assert_eq!(format_f64(y).split('(').next().unwrap(), want, "{y:e}");
        }
    }

    #[test]
    fn escapes_like_absl() {
        assert_eq!(c_escape("a\"b\\c\n'é"), "a\\\"b\\\\c\\n\\'\\303\\251");
    }

    #[test]
    fn json_dicts() {
        assert!(lexes_as_json_dict("{}"));
        assert!(lexes_as_json_dict(r#"{"a":{"b":"}"}}"#));
        assert!(!lexes_as_json_dict("{a}{b}"));
        assert!(!lexes_as_json_dict("x"));
        assert!(!lexes_as_json_dict("{(}"));
    }
}
