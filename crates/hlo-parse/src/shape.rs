//! Shapes and layouts: `f32[2,<=3,?]{2,1,0:T(8,128)(2,1)E(16)S(1)}`, `(s32[], token[])`.
//!
//! Dimensions must be non-negative and the array's size in bytes must fit in an `i64`,
//! which is XLA's own rule and what lets later stages multiply sizes without overflow checks.

use crate::error::{PErr, PResult};
use crate::lexer::Cursor;
use hlo_ir::{ArrayShape, DType, Layout, ProgramShape, Shape, TileDim};

/// Parses a shape at the cursor.
pub(crate) fn shape(c: &mut Cursor<'_>) -> PResult<Shape> {
    if c.peek() == Some(b'(') {
        c.enter()?;
        c.pos += 1;
        let mut elems = Vec::new();
        if !c.eat(b')') {
            loop {
                elems.push(shape(c)?);
                if c.eat(b',') {
                    continue;
                }
                c.expect(b')')?;
                break;
            }
        }
        c.leave();
        return Ok(Shape::Tuple(elems));
    }
    let start = c.pos;
    let Some(ty) = c.ident() else {
        return Err(c.err_expected("a shape"));
    };
    if ty == "token" {
        c.expect(b'[')?;
        c.expect(b']')?;
        return Ok(Shape::Token);
    }
    let Some(dtype) = dtype_from_name(ty) else {
        return Err(PErr::new(start, c.pos, format!("expected a shape, found unknown element type '{ty}'")));
    };
    c.expect(b'[')?;
    let mut dims = Vec::new();
    let mut dynamic = Vec::new();
    if !c.eat(b']') {
        loop {
            let dim_start = c.pos;
            if c.eat(b'?') {
                dims.push(-1);
                dynamic.push(true);
            } else {
                let is_bound = c.eat_str("<=");
                let d = c.int()?;
                if d < 0 {
                    return Err(c.err_since(dim_start, format!("dimension size must be non-negative, found {d}")));
                }
                dims.push(d);
                dynamic.push(is_bound);
            }
            if c.eat(b',') {
                continue;
            }
            c.expect(b']')?;
            break;
        }
    }
    let count = dims.iter().try_fold(1i64, |acc, &d| acc.checked_mul(d.max(0)));
    if count.and_then(|n| n.checked_mul(dtype.byte_size() as i64)).is_none() {
        return Err(c.err_since(start, "shape has more bytes than fit in 64 bits"));
    }
    let layout = if starts_layout(c) { Some(layout(c)?) } else { None };
    Ok(Shape::Array(ArrayShape { dtype, dims, dynamic, layout }))
}

/// True when a `{` at the cursor opens a layout rather than, say, a computation body:
/// a layout's first token is a number, `:` or `}`.
fn starts_layout(c: &mut Cursor<'_>) -> bool {
    if c.peek() != Some(b'{') {
        return false;
    }
    let mut probe = c.clone();
    probe.pos += 1;
    matches!(probe.peek(), Some(b'0'..=b'9' | b':' | b'}'))
}

/// `{minor_to_major[:items]}`.
fn layout(c: &mut Cursor<'_>) -> PResult<Layout> {
    c.expect(b'{')?;
    let mut layout = Layout::default();
    if !matches!(c.peek(), Some(b':' | b'}')) {
        loop {
            layout.minor_to_major.push(c.int()?);
            if !c.eat(b',') {
                break;
            }
        }
    }
    if c.eat(b':') {
        loop {
            c.skip_ws();
            let rest = c.rest();
            if rest.starts_with('}') {
                break;
            }
            let item_start = c.pos;
            if rest.starts_with("SC(") {
                layout.other.push(paren_item(c, 2)?.to_string());
            } else if rest.starts_with('T') {
                c.pos += 1;
                layout.tiles.clear();
                while c.peek() == Some(b'(') {
                    layout.tiles.push(tile(c)?);
                }
                if layout.tiles.is_empty() {
                    return Err(c.err_expected("'(' after 'T'"));
                }
            } else if rest.starts_with('E') {
                c.pos += 1;
                layout.element_size_in_bits = Some(paren_int(c)?);
            } else if rest.starts_with('S') {
                c.pos += 1;
                layout.memory_space = Some(paren_int(c)?);
            } else if rest.starts_with("D(") {
                // Dimension level types: D, C, S or H, each optionally followed by `+` and `~`.
                let item = paren_item(c, 1)?;
                let inner = &item[2..item.len() - 1];
                for (k, level) in inner.split(',').enumerate().filter(|_| !inner.trim().is_empty()) {
                    let level = level.trim();
                    let ok = matches!(level.trim_end_matches('~').trim_end_matches('+'), "D" | "C" | "S" | "H");
                    if !ok {
                        let at = item_start + 2 + item[2..].find(level).unwrap_or(0);
                        return Err(PErr::new(
                            at,
                            at + level.len(),
                            format!(
                                "expected a dimension level type (D, C, S or H) for dimension {k}, found '{level}'"
                            ),
                        ));
                    }
                }
                layout.other.push(item.to_string());
            } else if rest.starts_with(['D', 'L', '#', '*', 'M']) {
                layout.other.push(paren_item(c, 1)?.to_string());
            } else {
                return Err(c.err_expected("a layout item (T, E, S, D, L, #, *, SC or M)"));
            }
            debug_assert!(c.pos > item_start);
        }
    }
    c.expect(b'}')?;
    // `Layout`'s printer groups the verbatim items (D, then L/#/*, then SC/M); list them in
    // that order so that printing and re-reading gives back the same layout.
    layout.other.sort_by_key(|item| match item.as_bytes().first() {
        Some(b'D') => 0,
        Some(b'L' | b'#' | b'*') => 1,
        _ => 2,
    });
    Ok(layout)
}

/// `(a,b,*)` of a `T` tile.
fn tile(c: &mut Cursor<'_>) -> PResult<Vec<TileDim>> {
    c.expect(b'(')?;
    let mut dims = Vec::new();
    if !c.eat(b')') {
        loop {
            if c.eat(b'*') {
                dims.push(TileDim::Combined);
            } else {
                dims.push(TileDim::Size(c.int()?));
            }
            if c.eat(b',') {
                continue;
            }
            c.expect(b')')?;
            break;
        }
    }
    Ok(dims)
}

fn paren_int(c: &mut Cursor<'_>) -> PResult<i64> {
    c.expect(b'(')?;
    let v = c.int()?;
    c.expect(b')')?;
    Ok(v)
}

/// A tag of `tag_len` bytes followed by a balanced `( ... )`, returned verbatim.
fn paren_item<'a>(c: &mut Cursor<'a>, tag_len: usize) -> PResult<&'a str> {
    let start = c.pos;
    c.pos += tag_len;
    if c.peek_raw(0) != Some(b'(') {
        return Err(c.err_expected("'('"));
    }
    let rest = c.rest();
    let mut depth = 0usize;
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    c.pos += i + 1;
                    return Ok(&c.src[start..c.pos]);
                }
            }
            '}' | '\n' => break,
            _ => {}
        }
    }
    Err(PErr::new(c.pos, c.pos + 1, "unclosed '(' in layout"))
}

/// `(p0, p1, ...)->result`, as in `entry_computation_layout={...}`.
pub(crate) fn program_shape(c: &mut Cursor<'_>) -> PResult<ProgramShape> {
    c.expect(b'(')?;
    let mut params = Vec::new();
    if !c.eat(b')') {
        loop {
            params.push(shape(c)?);
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
    let result = shape(c)?;
    Ok(ProgramShape { params, result })
}

/// [`DType::from_name`] as one `match` (the parser's hottest lookup after names).
pub(crate) fn dtype_from_name(name: &str) -> Option<DType> {
    Some(match name {
        "f32" => DType::F32,
        "s32" => DType::S32,
        "pred" => DType::Pred,
        "u32" => DType::U32,
        "bf16" => DType::BF16,
        "f16" => DType::F16,
        "s64" => DType::S64,
        "u64" => DType::U64,
        "f64" => DType::F64,
        "s8" => DType::S8,
        "u8" => DType::U8,
        "s16" => DType::S16,
        "u16" => DType::U16,
        _ => return DType::from_name(name),
    })
}
