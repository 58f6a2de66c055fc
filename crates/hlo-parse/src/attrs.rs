//! Typed attribute values: which attributes an opcode models, and the grammar of each.
//!
//! The grammar is chosen by attribute name (`dimensions={0,1}`, `slice={[0:2:1]}`,
//! `window={size=3x3 pad=0_1x0_1}`, `dim_labels=b01f_01io->b01f`, ...); whether the value
//! is parsed at all is chosen by the opcode ([`accepts`]). Attributes an opcode does not
//! model are kept verbatim by the caller, so an attribute this crate has never heard of,
//! or a known name used by an unexpected opcode, never stops a module from parsing.

use crate::error::{PErr, PResult};
use crate::lexer::Cursor;
use crate::literal::shaped_literal;
use crate::shape::shape;
use hlo_ir::{ConvDims, Literal, Opcode, PadDim, Precision, Shape, SliceDim, Window, WindowDim};

/// A reference by name to an instruction or computation, with its byte offset.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NameRef<'a> {
    pub name: &'a str,
    pub pos: usize,
}

/// One `{output_index}: (operand, {operand_index})` entry of `output_to_operand_aliasing`.
pub(crate) type Aliasing = (Vec<i64>, i64, Vec<i64>);

/// The grammar of an attribute value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grammar {
    Int,
    Bool,
    Ints,
    Ident,
    Comp,
    Comps,
    Slice,
    Padding,
    Window,
    ConvDims,
    Precision,
    Float,
    Str,
    Shapes,
    Aliasing,
    Literal,
}

/// A parsed attribute value.
#[derive(Clone, Debug)]
pub(crate) enum Value<'a> {
    Int(i64),
    Bool(bool),
    Ints(Vec<i64>),
    Ident(&'a str),
    Comp(CompRef<'a>),
    Comps(Vec<CompRef<'a>>),
    Slice(Vec<SliceDim>),
    Padding(Vec<PadDim>),
    Window(Window),
    ConvDims(ConvDims),
    Precision(Vec<Precision>),
    Float(f32),
    Str(String),
    Shapes(Vec<Shape>),
    Aliasing(Vec<Aliasing>),
    Literal(Box<Literal>),
}

/// A called computation as an attribute names it: by name, or written inline (`to_apply={...}`),
/// already made a computation of the module with a provisional id.
#[derive(Clone, Copy, Debug)]
pub(crate) enum CompRef<'a> {
    Named(NameRef<'a>),
    Inline(hlo_ir::CompId),
}

/// The grammar of a modelled attribute name.
pub(crate) fn grammar_of(name: &str) -> Option<Grammar> {
    Some(match name {
        "dimensions"
        | "slice_sizes"
        | "dynamic_slice_sizes"
        | "fft_length"
        | "offset_dims"
        | "collapsed_slice_dims"
        | "start_index_map"
        | "operand_batching_dims"
        | "start_indices_batching_dims"
        | "update_window_dims"
        | "inserted_window_dims"
        | "scatter_dims_to_operand_dims"
        | "input_batching_dims"
        | "scatter_indices_batching_dims"
        | "lhs_batch_dims"
        | "lhs_contracting_dims"
        | "rhs_batch_dims"
        | "rhs_contracting_dims"
        | "lhs_ragged_dims"
        | "rhs_group_dims" => Grammar::Ints,
        "iota_dimension"
        | "index_vector_dim"
        | "feature_group_count"
        | "batch_group_count"
        | "exponent_bits"
        | "mantissa_bits"
        | "k"
        | "delta"
        | "feature_index"
        | "channel_id"
        | "index" => Grammar::Int,
        "indices_are_sorted"
        | "unique_indices"
        | "is_stable"
        | "largest"
        | "lower"
        | "left_side"
        | "unit_diagonal"
        | "custom_call_has_side_effect"
        | "is_host_transfer"
        | "is_composite" => Grammar::Bool,
        "to_apply" | "calls" | "condition" | "body" | "select" | "scatter" | "true_computation"
        | "false_computation" => Grammar::Comp,
        "branch_computations" | "called_computations" => Grammar::Comps,
        "slice" => Grammar::Slice,
        "padding" => Grammar::Padding,
        "window" => Grammar::Window,
        "dim_labels" => Grammar::ConvDims,
        "operand_precision" => Grammar::Precision,
        "direction" | "type" | "kind" | "distribution" | "algorithm" | "fft_type" | "transpose_a" | "api_version" => {
            Grammar::Ident
        }
        "epsilon" => Grammar::Float,
        "custom_call_target" => Grammar::Str,
        "operand_layout_constraints" => Grammar::Shapes,
        "output_to_operand_aliasing" => Grammar::Aliasing,
        "literal" => Grammar::Literal,
        _ => return None,
    })
}

const DOT_DIMS: [&str; 4] = ["lhs_batch_dims", "lhs_contracting_dims", "rhs_batch_dims", "rhs_contracting_dims"];

/// True when `opcode` models attribute `name` (it is parsed with its grammar and consumed
/// into the typed [`hlo_ir::Op`]); every other attribute is kept verbatim.
pub(crate) fn accepts(opcode: Opcode, name: &str) -> bool {
    use Opcode as O;
    let list: &[&str] = match opcode {
        O::Iota => &["iota_dimension"],
        O::Compare => &["direction", "type"],
        O::ReducePrecision => &["exponent_bits", "mantissa_bits"],
        O::Broadcast | O::Transpose | O::Reverse | O::Concatenate | O::GetDimensionSize | O::SetDimensionSize => {
            &["dimensions"]
        }
        O::Slice => &["slice"],
        O::DynamicSlice => &["dynamic_slice_sizes"],
        O::Pad => &["padding"],
        O::GetTupleElement => &["index"],
        O::Reduce | O::Map => &["dimensions", "to_apply"],
        O::ReduceWindow => &["window", "to_apply"],
        O::SelectAndScatter => &["window", "select", "scatter"],
        O::Gather => &[
            "offset_dims",
            "collapsed_slice_dims",
            "start_index_map",
            "index_vector_dim",
            "operand_batching_dims",
            "start_indices_batching_dims",
            "slice_sizes",
            "indices_are_sorted",
        ],
        O::Scatter => &[
            "update_window_dims",
            "inserted_window_dims",
            "scatter_dims_to_operand_dims",
            "index_vector_dim",
            "input_batching_dims",
            "scatter_indices_batching_dims",
            "indices_are_sorted",
            "unique_indices",
            "to_apply",
        ],
        O::Dot => return DOT_DIMS.contains(&name) || matches!(name, "operand_precision" | "algorithm"),
        O::RaggedDot => {
            return DOT_DIMS.contains(&name)
                || matches!(name, "operand_precision" | "lhs_ragged_dims" | "rhs_group_dims")
        }
        O::ScaledDot => return DOT_DIMS.contains(&name) || name == "operand_precision",
        O::Convolution => &["window", "dim_labels", "feature_group_count", "batch_group_count", "operand_precision"],
        O::Sort => &["dimensions", "is_stable", "to_apply"],
        O::TopK => &["k", "largest"],
        O::While => &["condition", "body"],
        O::Conditional => &["branch_computations", "true_computation", "false_computation"],
        O::Call => &["to_apply", "is_composite"],
        O::Fusion => &["kind", "calls"],
        O::CustomCall => &[
            "custom_call_target",
            "api_version",
            "called_computations",
            "to_apply",
            "custom_call_has_side_effect",
            "operand_layout_constraints",
            "output_to_operand_aliasing",
            "literal",
        ],
        O::Rng => &["distribution"],
        O::RngBitGenerator => &["algorithm"],
        O::RngGetAndUpdateState => &["delta"],
        O::Fft => &["fft_type", "fft_length"],
        O::Cholesky => &["lower"],
        O::TriangularSolve => &["left_side", "lower", "unit_diagonal", "transpose_a"],
        O::BatchNormTraining | O::BatchNormInference | O::BatchNormGrad => &["epsilon", "feature_index"],
        O::Send | O::SendDone | O::Recv | O::RecvDone => &["channel_id", "is_host_transfer"],
        O::AsyncStart | O::AsyncUpdate | O::AsyncDone => &["calls"],
        o if is_collective(o) => &["channel_id", "dimensions", "to_apply"],
        _ => &[],
    };
    list.contains(&name)
}

/// The opcodes represented by [`hlo_ir::Op::Collective`].
pub(crate) fn is_collective(opcode: Opcode) -> bool {
    use Opcode as O;
    matches!(
        opcode,
        O::AllGather
            | O::AllGatherDone
            | O::AllGatherStart
            | O::AllReduce
            | O::AllReduceDone
            | O::AllReduceStart
            | O::AllToAll
            | O::CollectiveBroadcast
            | O::CollectivePermute
            | O::CollectivePermuteDone
            | O::CollectivePermuteStart
            | O::CollectiveReduce
            | O::RaggedAllToAll
            | O::ReduceScatter
    )
}

/// Parses a value of `grammar` at the cursor.
pub(crate) fn value<'a>(c: &mut Cursor<'a>, grammar: Grammar) -> PResult<Value<'a>> {
    Ok(match grammar {
        Grammar::Int => Value::Int(c.int()?),
        Grammar::Bool => Value::Bool(c.bool()?),
        Grammar::Ints => Value::Ints(int_list(c)?),
        Grammar::Ident => match c.word() {
            Some(w) => Value::Ident(w),
            None => return Err(c.err_expected("a name")),
        },
        Grammar::Comp => {
            let (name, pos) = c.name("a computation name")?;
            Value::Comp(CompRef::Named(NameRef { name, pos }))
        }
        Grammar::Comps => {
            let mut comps = Vec::new();
            c.expect(b'{')?;
            if !c.eat(b'}') {
                loop {
                    let (name, pos) = c.name("a computation name")?;
                    comps.push(CompRef::Named(NameRef { name, pos }));
                    if c.eat(b',') {
                        continue;
                    }
                    c.expect(b'}')?;
                    break;
                }
            }
            Value::Comps(comps)
        }
        Grammar::Slice => Value::Slice(slice(c)?),
        Grammar::Padding => Value::Padding(padding(c)?),
        Grammar::Window => Value::Window(window(c)?),
        Grammar::ConvDims => Value::ConvDims(dim_labels(c)?),
        Grammar::Precision => Value::Precision(precision(c)?),
        Grammar::Float => {
            c.skip_ws();
            let start = c.pos;
            match c.float_token() {
                Some((text, None)) => match text.parse::<f32>() {
                    // A NaN attribute would make the instruction unequal to itself.
                    Ok(x) if x.is_nan() => return Err(c.err_since(start, "expected a number, found NaN")),
                    Ok(x) => Value::Float(x),
                    Err(_) => return Err(c.err_since(start, format!("invalid number '{text}'"))),
                },
                _ => {
                    c.pos = start;
                    return Err(c.err_expected("a number"));
                }
            }
        }
        Grammar::Str => Value::Str(c.string()?),
        Grammar::Shapes => {
            let mut shapes = Vec::new();
            c.expect(b'{')?;
            if !c.eat(b'}') {
                loop {
                    shapes.push(shape(c)?);
                    if c.eat(b',') {
                        continue;
                    }
                    c.expect(b'}')?;
                    break;
                }
            }
            Value::Shapes(shapes)
        }
        Grammar::Aliasing => Value::Aliasing(aliasing(c)?),
        Grammar::Literal => Value::Literal(Box::new(shaped_literal(c)?)),
    })
}

/// `{a,b,c}` (possibly empty).
pub(crate) fn int_list(c: &mut Cursor<'_>) -> PResult<Vec<i64>> {
    c.expect(b'{')?;
    let mut out = Vec::new();
    if c.eat(b'}') {
        return Ok(out);
    }
    loop {
        out.push(c.int()?);
        if c.eat(b',') {
            continue;
        }
        c.expect(b'}')?;
        return Ok(out);
    }
}

/// `{[start:limit], [start:limit:stride], ...}`.
fn slice(c: &mut Cursor<'_>) -> PResult<Vec<SliceDim>> {
    c.expect(b'{')?;
    let mut dims = Vec::new();
    if c.eat(b'}') {
        return Ok(dims);
    }
    loop {
        c.expect(b'[')?;
        let start = c.int()?;
        c.expect(b':')?;
        let limit = c.int()?;
        let stride = if c.eat(b':') { c.int()? } else { 1 };
        c.expect(b']')?;
        dims.push(SliceDim { start, limit, stride });
        if c.eat(b',') {
            continue;
        }
        c.expect(b'}')?;
        return Ok(dims);
    }
}

/// `lo_hi[_interior]` joined by `x`; empty for a rank-0 pad.
fn padding(c: &mut Cursor<'_>) -> PResult<Vec<PadDim>> {
    let mut dims = Vec::new();
    if matches!(c.peek(), None | Some(b',' | b'}')) {
        return Ok(dims);
    }
    loop {
        let low = c.int()?;
        expect_raw(c, b'_')?;
        let high = c.int()?;
        let interior = if c.peek_raw(0) == Some(b'_') {
            c.pos += 1;
            c.int()?
        } else {
            0
        };
        dims.push(PadDim { low, high, interior });
        if c.peek_raw(0) == Some(b'x') {
            c.pos += 1;
            continue;
        }
        return Ok(dims);
    }
}

/// Consumes `b` immediately at the cursor (no whitespace allowed before it).
fn expect_raw(c: &mut Cursor<'_>, b: u8) -> PResult<()> {
    if c.peek_raw(0) == Some(b) {
        c.pos += 1;
        Ok(())
    } else {
        Err(c.err_expected(&format!("'{}'", b as char)))
    }
}

/// `{size=3x3 stride=2x2 pad=0_1x0_1 lhs_dilate=1x1 rhs_dilate=1x1 rhs_reversal=0x1}`.
fn window(c: &mut Cursor<'_>) -> PResult<Window> {
    c.expect(b'{')?;
    let open = c.pos - 1;
    let mut size: Option<Vec<i64>> = None;
    // (field, offset of its name, per-dimension values; `pad` uses both halves of the pair).
    type Field<'k> = (&'k str, usize, Vec<(i64, i64)>);
    let mut fields: Vec<Field<'_>> = Vec::new();
    while !c.eat(b'}') {
        let key_start = c.pos;
        let Some(key) = c.ident() else {
            return Err(
                c.err_expected("a window field (size, stride, pad, lhs_dilate, rhs_dilate, rhs_reversal) or '}'")
            );
        };
        if !matches!(key, "size" | "stride" | "pad" | "lhs_dilate" | "rhs_dilate" | "rhs_reversal") {
            return Err(c.err_since(key_start, format!("unknown window field '{key}'")));
        }
        if key == "size" && size.is_some() || fields.iter().any(|(k, _, _)| *k == key) {
            return Err(c.err_since(key_start, format!("duplicate window field '{key}'")));
        }
        c.expect(b'=')?;
        let mut values = Vec::new();
        loop {
            let a = c.int()?;
            let b = if key == "pad" {
                expect_raw(c, b'_')?;
                c.int()?
            } else {
                0
            };
            values.push((a, b));
            if c.peek_raw(0) == Some(b'x') {
                c.pos += 1;
                continue;
            }
            break;
        }
        if key == "size" {
            size = Some(values.iter().map(|v| v.0).collect());
        } else {
            fields.push((key, key_start, values));
        }
    }
    let Some(size) = size else {
        if fields.is_empty() {
            return Ok(Window::default());
        }
        return Err(PErr::new(open, c.pos, "window has no 'size' field"));
    };
    let mut dims: Vec<WindowDim> = size.iter().map(|&s| WindowDim { size: s, ..WindowDim::default() }).collect();
    for (key, pos, values) in fields {
        if values.len() != dims.len() {
            return Err(PErr::new(
                pos,
                pos + key.len(),
                format!("window field '{key}' has {} dimensions but 'size' has {}", values.len(), dims.len()),
            ));
        }
        for (d, (a, b)) in dims.iter_mut().zip(values) {
            match key {
                "stride" => d.stride = a,
                "pad" => {
                    d.padding_low = a;
                    d.padding_high = b;
                }
                "lhs_dilate" => d.base_dilation = a,
                "rhs_dilate" => d.window_dilation = a,
                _ => d.window_reversal = a != 0,
            }
        }
    }
    Ok(Window { dims })
}

/// `b01f_01io->b01f`: batch/feature letters and spatial digits for input, kernel and output.
fn dim_labels(c: &mut Cursor<'_>) -> PResult<ConvDims> {
    c.skip_ws();
    let start = c.pos;
    let label = |ch: char| ch.is_ascii_alphanumeric() || ch == '?';
    let lhs = c.lex(nom::bytes::complete::take_while1(label));
    if c.peek_raw(0) != Some(b'_') || lhs.is_none() {
        return Err(c.err_expected("dimension labels like 'b01f_01io->b01f'"));
    }
    c.pos += 1;
    let rhs = c.lex(nom::bytes::complete::take_while1(label));
    if !c.rest().starts_with("->") || rhs.is_none() {
        return Err(c.err_expected("'->' in dimension labels"));
    }
    c.pos += 2;
    let out = c.lex(nom::bytes::complete::take_while1(label));
    let (Some(lhs), Some(rhs), Some(out)) = (lhs, rhs, out) else {
        return Err(c.err_expected("output dimension labels"));
    };
    let bad = |msg: String| PErr::new(start, start + lhs.len() + rhs.len() + out.len() + 3, msg);
    let (input_batch, input_feature, input_spatial) = labels(lhs, 'b', 'f').map_err(bad)?;
    let (kernel_input_feature, kernel_output_feature, kernel_spatial) = labels(rhs, 'i', 'o').map_err(bad)?;
    let (output_batch, output_feature, output_spatial) = labels(out, 'b', 'f').map_err(bad)?;
    if input_spatial.len() != kernel_spatial.len() || input_spatial.len() != output_spatial.len() {
        return Err(bad(
            "input, kernel and output dimension labels have different numbers of spatial dimensions".into()
        ));
    }
    Ok(ConvDims {
        input_batch,
        input_feature,
        input_spatial,
        kernel_input_feature,
        kernel_output_feature,
        kernel_spatial,
        output_batch,
        output_feature,
        output_spatial,
    })
}

/// Positions of the letters `a` and `b` and of the spatial digits `0..n` in one label string.
fn labels(s: &str, a: char, b: char) -> Result<(i64, i64, Vec<i64>), String> {
    let mut pos_a = None;
    let mut pos_b = None;
    let mut spatial: Vec<Option<i64>> = Vec::new();
    let n_spatial = s.len().saturating_sub(2);
    spatial.resize(n_spatial, None);
    for (i, ch) in s.chars().enumerate() {
        let i = i as i64;
        if ch == a && pos_a.is_none() {
            pos_a = Some(i);
        } else if ch == b && pos_b.is_none() {
            pos_b = Some(i);
        } else if let Some(slot) = ch.to_digit(10).and_then(|d| spatial.get_mut(d as usize)) {
            if slot.is_some() {
                return Err(format!("dimension label '{ch}' appears twice in '{s}'"));
            }
            *slot = Some(i);
        } else {
            return Err(format!(
                "unexpected dimension label '{ch}' in '{s}' (expected '{a}', '{b}' and 0..{n_spatial})"
            ));
        }
    }
    let (Some(pa), Some(pb)) = (pos_a, pos_b) else {
        return Err(format!("dimension labels '{s}' need both '{a}' and '{b}'"));
    };
    let spatial =
        spatial.into_iter().collect::<Option<Vec<i64>>>().ok_or_else(|| format!("missing spatial label in '{s}'"))?;
    Ok((pa, pb, spatial))
}

/// `{default,high,highest}` (case-insensitive).
fn precision(c: &mut Cursor<'_>) -> PResult<Vec<Precision>> {
    c.expect(b'{')?;
    let mut out = Vec::new();
    if c.eat(b'}') {
        return Ok(out);
    }
    loop {
        let start = c.pos;
        let Some(word) = c.word() else {
            return Err(c.err_expected("a precision (default, high, highest)"));
        };
        out.push(match word.to_ascii_lowercase().as_str() {
            "default" => Precision::Default,
            "high" => Precision::High,
            "highest" => Precision::Highest,
            _ => {
                return Err(c.err_since(start, format!("expected a precision (default, high, highest), found '{word}'")))
            }
        });
        if c.eat(b',') {
            continue;
        }
        c.expect(b'}')?;
        return Ok(out);
    }
}

/// `{{out_index}: (operand, {operand_index}), ...}`.
fn aliasing(c: &mut Cursor<'_>) -> PResult<Vec<Aliasing>> {
    c.expect(b'{')?;
    let mut out = Vec::new();
    if c.eat(b'}') {
        return Ok(out);
    }
    loop {
        let output = int_list(c)?;
        c.expect(b':')?;
        c.expect(b'(')?;
        let operand = c.int()?;
        c.expect(b',')?;
        let operand_index = int_list(c)?;
        c.expect(b')')?;
        out.push((output, operand, operand_index));
        if c.eat(b',') {
            continue;
        }
        c.expect(b'}')?;
        return Ok(out);
    }
}
