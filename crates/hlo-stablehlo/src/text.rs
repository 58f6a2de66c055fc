//! A reader of textual StableHLO (`jax.jit(f).lower(*args).as_text()`): the pretty forms JAX
//! prints (`stablehlo.add %0, %1 : tensor<4xf32>`) and MLIR's generic form
//! (`"stablehlo.add"(%0, %1) : (...) -> ...`), into the same generic tree the bytecode reader
//! builds, with attributes named and shaped as VHLO names them (`#stablehlo.gather<...>` is
//! spliced into `offset_dims`, ..., pretty keywords become their attribute names), so one
//! lowering serves both.
//!
//! A hand-written recursive-descent parser over bytes: every error carries `line:col` and what
//! was expected; it never panics, and nesting is limited.

use crate::ir::{Attr, Block, Operation, Pos, Region, Type, ValueId};
use crate::Error;
use hlo_ir::DType;
use std::collections::HashMap;

const MAX_DEPTH: usize = 100;

/// Parses a textual StableHLO module into its top-level operations.
pub fn parse(src: &str) -> Result<Vec<Operation>, Error> {
    let mut p = Parser { src: src.as_bytes(), pos: 0, scopes: vec![HashMap::new()], next_value: 0, depth: 0 };
    let mut ops = Vec::new();
    loop {
        p.ws();
        if p.at_end() {
            break;
        }
        if p.peek() == Some(b'#') {
            // `#loc1 = loc(...)` and other attribute aliases: not needed.
            p.skip_line();
            continue;
        }
        ops.push(p.op()?);
    }
    Ok(ops)
}

struct Parser<'s> {
    src: &'s [u8],
    pos: usize,
    /// Value names in scope, innermost region last: `%name` -> its results.
    scopes: Vec<HashMap<String, Vec<ValueId>>>,
    next_value: u32,
    depth: usize,
}

type R<T> = Result<T, Error>;

impl<'s> Parser<'s> {
    // ---- characters ----

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn line_col(&self) -> (u32, u32) {
        let before = &self.src[..self.pos.min(self.src.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
        let col = before.iter().rev().take_while(|&&b| b != b'\n').count() as u32 + 1;
        (line, col)
    }

    fn here(&self) -> Pos {
        let (l, c) = self.line_col();
        Pos::LineCol(l, c)
    }

    fn err(&self, expected: impl Into<String>) -> Error {
        let (line, col) = self.line_col();
        let found: String = self.src[self.pos.min(self.src.len())..]
            .iter()
            .take(20)
            .take_while(|&&b| b != b'\n')
            .map(|&b| b as char)
            .collect();
        let found = if found.is_empty() { "the end of the line".to_string() } else { format!("`{found}`") };
        Error::Text { line, col, expected: format!("{}, found {found}", expected.into()) }
    }

    fn ws(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() {
                self.pos += 1;
            } else if self.src[self.pos..].starts_with(b"//") {
                self.skip_line();
            } else {
                break;
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(b) = self.peek() {
            self.pos += 1;
            if b == b'\n' {
                break;
            }
        }
    }

    /// Skips whitespace, then consumes `s` if it is next.
    fn eat(&mut self, s: &str) -> bool {
        self.ws();
        if self.src[self.pos.min(self.src.len())..].starts_with(s.as_bytes()) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Like [`Self::eat`] for a keyword: not followed by an identifier character.
    fn eat_kw(&mut self, kw: &str) -> bool {
        let save = self.pos;
        if self.eat(kw) && !self.peek().is_some_and(is_ident_char) {
            return true;
        }
        self.pos = save;
        false
    }

    fn expect(&mut self, s: &str) -> R<()> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(self.err(format!("`{s}`")))
        }
    }

    fn ident(&mut self) -> R<String> {
        self.ws();
        let start = self.pos;
        while self.peek().is_some_and(|b| is_ident_char(b) || b == b'.' || b == b'$') {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("an identifier"));
        }
        Ok(String::from_utf8_lossy(&self.src[start..self.pos]).into_owned())
    }

    fn string(&mut self) -> R<String> {
        self.ws();
        if self.peek() != Some(b'"') {
            return Err(self.err("a string"));
        }
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("the closing `\"`")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let a = self.peek().ok_or_else(|| self.err("an escape"))?;
                    match a {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'"' | b'\\' => out.push(a),
                        _ => {
                            let hex = self.src.get(self.pos..self.pos + 2).ok_or_else(|| self.err("two hex digits"))?;
                            let s = std::str::from_utf8(hex).map_err(|_| self.err("two hex digits"))?;
                            out.push(u8::from_str_radix(s, 16).map_err(|_| self.err("two hex digits"))?);
                            self.pos += 1;
                        }
                    }
                    self.pos += 1;
                }
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// A number token: integer, float, or hex; returned as text.
    fn number_text(&mut self) -> R<String> {
        self.ws();
        let start = self.pos;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.')
            || (self.peek().is_some_and(|b| b == b'-' || b == b'+')
                && matches!(self.pos.checked_sub(1).and_then(|i| self.src.get(i)), Some(b'e' | b'E'))
                && !self.src[start..self.pos].starts_with(b"0x"))
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("a number"));
        }
        Ok(String::from_utf8_lossy(&self.src[start..self.pos]).into_owned())
    }

    fn int(&mut self) -> R<i64> {
        let at = self.pos;
        let t = self.number_text()?;
        parse_int(&t).ok_or_else(|| {
            self.pos = at;
            self.err("an integer")
        })
    }

    /// `[1, 2, 3]`.
    fn int_list(&mut self) -> R<Vec<i64>> {
        self.expect("[")?;
        let mut out = Vec::new();
        if self.eat("]") {
            return Ok(out);
        }
        loop {
            out.push(self.int()?);
            if self.eat("]") {
                return Ok(out);
            }
            self.expect(",")?;
        }
    }

    // ---- values ----

    fn fresh(&mut self) -> ValueId {
        self.next_value += 1;
        ValueId(self.next_value - 1)
    }

    fn define(&mut self, name: String, ids: Vec<ValueId>) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name, ids);
        }
    }

    /// `%name` or `%name#3`.
    fn use_value(&mut self) -> R<ValueId> {
        self.ws();
        if self.peek() != Some(b'%') {
            return Err(self.err("a value (`%name`)"));
        }
        let at = self.pos;
        self.pos += 1;
        let name = self.ident()?;
        let mut index = 0;
        if self.peek() == Some(b'#') {
            self.pos += 1;
            index = self.int()? as usize;
        }
        let found = self.scopes.iter().rev().find_map(|s| s.get(&name)).and_then(|ids| ids.get(index)).copied();
        found.ok_or_else(|| {
            self.pos = at;
            self.err(format!("a defined value (%{name}#{index})"))
        })
    }

    fn use_values_until(&mut self, close: &str) -> R<Vec<ValueId>> {
        let mut out = Vec::new();
        if self.eat(close) {
            return Ok(out);
        }
        loop {
            out.push(self.use_value()?);
            if self.eat(close) {
                return Ok(out);
            }
            self.expect(",")?;
        }
    }

    // ---- types ----

    fn ty(&mut self) -> R<Type> {
        self.nest()?;
        let res = self.ty_inner();
        self.depth -= 1;
        res
    }

    fn ty_inner(&mut self) -> R<Type> {
        self.ws();
        if self.peek() == Some(b'(') {
            let (inputs, results) = self.function_type()?;
            return Ok(Type::Function { inputs, results });
        }
        if self.eat("!stablehlo.token") {
            return Ok(Type::Token);
        }
        if self.eat_kw("tensor") {
            self.expect("<")?;
            let mut dims = Vec::new();
            loop {
                self.ws();
                if self.peek() == Some(b'?') {
                    self.pos += 1;
                    dims.push(-1);
                } else if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    let start = self.pos;
                    while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                        self.pos += 1;
                    }
                    let text = std::str::from_utf8(&self.src[start..self.pos]).unwrap_or("");
                    dims.push(text.parse().map_err(|_| self.err("a dimension"))?);
                } else {
                    break;
                }
                if self.peek() != Some(b'x') {
                    return Err(self.err("`x` after a dimension"));
                }
                self.pos += 1;
            }
            let elem = self.ty()?;
            if self.eat(",") {
                self.attr()?; // encoding (bounds): not modelled
            }
            self.expect(">")?;
            return Ok(Type::Tensor { dims, elem: Box::new(elem) });
        }
        if self.eat_kw("tuple") {
            self.expect("<")?;
            let mut elems = Vec::new();
            if !self.eat(">") {
                loop {
                    elems.push(self.ty()?);
                    if self.eat(">") {
                        break;
                    }
                    self.expect(",")?;
                }
            }
            return Ok(Type::Tuple(elems));
        }
        if self.eat_kw("complex") {
            self.expect("<")?;
            let e = self.ty()?;
            self.expect(">")?;
            return match e {
                Type::Scalar(DType::F32) => Ok(Type::Scalar(DType::C64)),
                Type::Scalar(DType::F64) => Ok(Type::Scalar(DType::C128)),
                _ => Err(self.err("complex<f32> or complex<f64>")),
            };
        }
        let at = self.pos;
        let name = self.ident()?;
        scalar_type(&name).ok_or_else(|| {
            self.pos = at;
            self.err("a type")
        })
    }

    /// `(T, ...) -> T` or `(T, ...) -> (T, ...)`.
    fn function_type(&mut self) -> R<(Vec<Type>, Vec<Type>)> {
        let inputs = self.type_list_parens()?;
        self.expect("->")?;
        self.ws();
        let results = if self.peek() == Some(b'(') { self.type_list_parens()? } else { vec![self.ty()?] };
        Ok((inputs, results))
    }

    /// `(T {attrs}, ...)`: attribute dictionaries after types are skipped.
    fn type_list_parens(&mut self) -> R<Vec<Type>> {
        self.expect("(")?;
        let mut out = Vec::new();
        if self.eat(")") {
            return Ok(out);
        }
        loop {
            out.push(self.ty()?);
            self.ws();
            if self.peek() == Some(b'{') {
                self.attr_dict()?;
            }
            if self.eat(")") {
                return Ok(out);
            }
            self.expect(",")?;
        }
    }

    // ---- attributes ----

    fn attr_dict(&mut self) -> R<Vec<(String, Attr)>> {
        self.expect("{")?;
        let mut out = Vec::new();
        if self.eat("}") {
            return Ok(out);
        }
        loop {
            self.ws();
            let name = if self.peek() == Some(b'"') { self.string()? } else { self.ident()? };
            let value = if self.eat("=") { self.attr()? } else { Attr::Unit };
            out.push((name, value));
            if self.eat("}") {
                return Ok(out);
            }
            self.expect(",")?;
        }
    }

    fn nest(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("nesting at most {MAX_DEPTH} deep")));
        }
        Ok(())
    }

    fn attr(&mut self) -> R<Attr> {
        self.nest()?;
        let res = self.attr_inner();
        self.depth -= 1;
        res
    }

    fn attr_inner(&mut self) -> R<Attr> {
        self.ws();
        match self.peek() {
            Some(b'"') => return Ok(Attr::String(self.string()?)),
            Some(b'@') => {
                self.pos += 1;
                let name = if self.peek() == Some(b'"') { self.string()? } else { self.ident()? };
                return Ok(Attr::SymbolRef(name));
            }
            Some(b'[') => {
                self.pos += 1;
                let mut xs = Vec::new();
                if !self.eat("]") {
                    loop {
                        xs.push(self.attr()?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                return Ok(Attr::Array(xs));
            }
            Some(b'{') => return Ok(Attr::Dict(self.attr_dict()?)),
            Some(b'(') => return Ok(Attr::Type(self.ty()?)),
            Some(b'#') => return self.hash_attr(),
            Some(b) if b == b'-' || b.is_ascii_digit() => {
                let text = self.number_text()?;
                let ty = if self.eat(":") { self.ty()? } else { Type::Scalar(DType::S64) };
                return number_attr(&text, ty).ok_or_else(|| self.err("a number of its type"));
            }
            _ => {}
        }
        if self.eat_kw("true") {
            return Ok(Attr::Bool(true));
        }
        if self.eat_kw("false") {
            return Ok(Attr::Bool(false));
        }
        if self.eat_kw("unit") {
            return Ok(Attr::Unit);
        }
        if self.eat_kw("dense") {
            return self.dense();
        }
        if self.eat_kw("array") {
            self.expect("<")?;
            let elem = self.ty()?;
            let mut xs = Vec::new();
            if self.eat(":") {
                loop {
                    let v = self.attr_scalar(&elem)?;
                    xs.push(v);
                    if !self.eat(",") {
                        break;
                    }
                }
            }
            self.expect(">")?;
            return Ok(Attr::Array(xs));
        }
        // A type used as an attribute (`tensor<...>`, `i32`), else a bare keyword (`DEFAULT`).
        let save = self.pos;
        match self.ty() {
            Ok(t) => Ok(Attr::Type(t)),
            Err(e) => {
                self.pos = save;
                self.ws();
                if self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
                    Ok(Attr::Enum(self.ident()?))
                } else {
                    Err(e)
                }
            }
        }
    }

    fn attr_scalar(&mut self, elem: &Type) -> R<Attr> {
        if self.eat_kw("true") {
            return Ok(Attr::Bool(true));
        }
        if self.eat_kw("false") {
            return Ok(Attr::Bool(false));
        }
        let text = self.number_text()?;
        number_attr(&text, elem.clone()).ok_or_else(|| self.err("a number"))
    }

    /// `#stablehlo<kind VALUE>` (an enum), `#stablehlo.NAME<k = v, ...>` (a struct, as a dict),
    /// `#stablehlo.conv<...>` (convolution dimension numbers); others are kept as text.
    fn hash_attr(&mut self) -> R<Attr> {
        self.expect("#")?;
        let name = self.ident()?;
        if !self.eat("<") {
            return Ok(Attr::Other(format!("#{name}")));
        }
        if name == "stablehlo" || name == "mhlo" || name == "chlo" {
            let _kind = self.ident()?;
            let value = self.ident()?;
            self.expect(">")?;
            return Ok(Attr::Enum(value));
        }
        if name.ends_with(".conv") {
            self.eat("raw");
            self.ws();
            let dict = if self.peek() == Some(b'[') { self.conv_dims()? } else { self.struct_fields(">")? };
            return Ok(Attr::Dict(dict));
        }
        if name.starts_with("stablehlo.") || name.starts_with("mhlo.") {
            return Ok(Attr::Dict(self.struct_fields(">")?));
        }
        // Unknown dialect attribute: skip to the matching `>`.
        let start = self.pos;
        let mut level = 1;
        while level > 0 {
            match self.peek() {
                None => return Err(self.err("`>`")),
                Some(b'<') => level += 1,
                Some(b'>') => level -= 1,
                _ => {}
            }
            self.pos += 1;
        }
        Ok(Attr::Other(format!("#{name}<{}", String::from_utf8_lossy(&self.src[start..self.pos]))))
    }

    /// `k = v, k2 = v2` up to `close` (values are attributes; `[a] x [b]` lists too).
    fn struct_fields(&mut self, close: &str) -> R<Vec<(String, Attr)>> {
        let mut out = Vec::new();
        if self.eat(close) {
            return Ok(out);
        }
        loop {
            let k = self.ident()?;
            self.expect("=")?;
            let v = self.attr()?;
            out.push((k, v));
            if self.eat(close) {
                return Ok(out);
            }
            self.expect(",")?;
        }
    }

    /// `[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]` as VHLO's flat convolution attributes.
    fn conv_dims(&mut self) -> R<Vec<(String, Attr)>> {
        let mut labels = Vec::new();
        for sep in ["x", "->", ""] {
            self.expect("[")?;
            let mut dims = Vec::new();
            loop {
                self.ws();
                let start = self.pos;
                while self.peek().is_some_and(|b| b.is_ascii_alphanumeric()) {
                    self.pos += 1;
                }
                if start == self.pos {
                    return Err(self.err("a dimension label"));
                }
                dims.push(String::from_utf8_lossy(&self.src[start..self.pos]).into_owned());
                if self.eat("]") {
                    break;
                }
                self.expect(",")?;
            }
            labels.push(dims);
            if !sep.is_empty() {
                self.expect(sep)?;
            }
        }
        self.eat(">");
        let find = |dims: &[String], l: &str| dims.iter().position(|d| d == l).map_or(-1, |p| p as i64);
        let spatial = |dims: &[String]| {
            let mut s: Vec<(usize, i64)> =
                dims.iter().enumerate().filter_map(|(i, d)| d.parse::<usize>().ok().map(|n| (n, i as i64))).collect();
            s.sort();
            ints_attr(s.into_iter().map(|(_, i)| i).collect())
        };
        let (i, k, o) = (&labels[0], &labels[1], &labels[2]);
        let int = |v: i64| Attr::Int { ty: Type::Scalar(DType::S64), value: v };
        Ok(vec![
            ("input_batch_dimension".into(), int(find(i, "b"))),
            ("input_feature_dimension".into(), int(find(i, "f"))),
            ("input_spatial_dimensions".into(), spatial(i)),
            ("kernel_input_feature_dimension".into(), int(find(k, "i"))),
            ("kernel_output_feature_dimension".into(), int(find(k, "o"))),
            ("kernel_spatial_dimensions".into(), spatial(k)),
            ("output_batch_dimension".into(), int(find(o, "b"))),
            ("output_feature_dimension".into(), int(find(o, "f"))),
            ("output_spatial_dimensions".into(), spatial(o)),
        ])
    }

    /// `dense<...> : tensor<...>`: nested lists, a splat, or a hex blob, as raw bytes.
    fn dense(&mut self) -> R<Attr> {
        self.expect("<")?;
        self.ws();
        let body_start = self.pos;
        let mut level = 1;
        while level > 0 {
            match self.peek() {
                None => return Err(self.err("`>` closing dense<")),
                Some(b'<') => level += 1,
                Some(b'>') => level -= 1,
                Some(b'"') => {
                    self.string()?;
                    continue;
                }
                _ => {}
            }
            self.pos += 1;
        }
        let body_end = self.pos - 1;
        self.expect(":")?;
        let ty_at = self.pos;
        let ty = self.ty()?;
        let Type::Tensor { elem, .. } = &ty else {
            self.pos = ty_at;
            return Err(self.err("a tensor type"));
        };
        let Type::Scalar(d) = **elem else { return Err(self.err("a tensor of scalars")) };
        let body = String::from_utf8_lossy(&self.src[body_start..body_end]).into_owned();
        let data = dense_bytes(&body, d).ok_or_else(|| {
            self.pos = body_start;
            self.err(format!("dense elements of {d}"))
        })?;
        Ok(Attr::Tensor { ty, data })
    }

    // ---- operations ----

    /// One operation, with its results defined in the current scope.
    fn op(&mut self) -> R<Operation> {
        self.nest()?;
        let res = self.op_inner();
        self.depth -= 1;
        let op = res?;
        // Trailing location: `loc(...)`.
        if self.eat_kw("loc") {
            self.skip_balanced(b'(', b')')?;
        }
        Ok(op)
    }

    fn skip_balanced(&mut self, open: u8, close: u8) -> R<()> {
        self.ws();
        if self.peek() != Some(open) {
            return Err(self.err(format!("`{}`", open as char)));
        }
        let mut level = 0;
        loop {
            match self.peek() {
                None => return Err(self.err(format!("`{}`", close as char))),
                Some(b'"') => {
                    self.string()?;
                    continue;
                }
                Some(b) if b == open => level += 1,
                Some(b) if b == close => {
                    level -= 1;
                    if level == 0 {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
    }

    fn op_inner(&mut self) -> R<Operation> {
        self.ws();
        let pos = self.here();
        // Results: `%a, %b:2 =`.
        let mut result_names: Vec<(String, usize)> = Vec::new();
        if self.peek() == Some(b'%') {
            loop {
                self.expect("%")?;
                let name = self.ident()?;
                let mut n = 1;
                if self.eat(":") {
                    n = self.int()? as usize;
                    if n > 4096 {
                        return Err(self.err("at most 4096 results"));
                    }
                }
                result_names.push((name, n));
                if !self.eat(",") {
                    break;
                }
            }
            self.expect("=")?;
        }
        let n_results: usize = result_names.iter().map(|(_, n)| n).sum();
        self.ws();
        let mut op = if self.peek() == Some(b'"') { self.generic_op(pos)? } else { self.pretty_op(pos, n_results)? };
        if op.results.len() != n_results {
            return Err(Error::Text {
                line: line_of(pos),
                col: col_of(pos),
                expected: format!("{} result types for {}, found {}", n_results, op.name, op.results.len()),
            });
        }
        let mut it = op.results.iter().map(|(v, _)| *v);
        for (name, n) in result_names {
            let ids: Vec<ValueId> = it.by_ref().take(n).collect();
            self.define(name, ids);
        }
        flatten_attrs(&mut op);
        Ok(op)
    }

    fn results_from(&mut self, types: Vec<Type>, n: usize) -> Vec<(ValueId, Type)> {
        let skip = types.len().saturating_sub(n);
        types.into_iter().skip(skip).map(|t| (self.fresh(), t)).collect()
    }

    /// `"dialect.op"(%a, %b) <{props}> ({regions}) {attrs} : (T, ...) -> T`.
    fn generic_op(&mut self, pos: Pos) -> R<Operation> {
        let name = self.string()?;
        self.expect("(")?;
        let operands = self.use_values_until(")")?;
        let mut attrs = Vec::new();
        if self.eat("<{") {
            self.pos -= 1;
            attrs.extend(self.attr_dict()?);
            self.expect(">")?;
        }
        let mut regions = Vec::new();
        self.ws();
        if self.peek() == Some(b'(') {
            self.pos += 1;
            loop {
                regions.push(self.region(&[])?);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        self.ws();
        if self.peek() == Some(b'{') {
            attrs.extend(self.attr_dict()?);
        }
        self.expect(":")?;
        let (_, results) = self.function_type()?;
        let n = results.len();
        let results = self.results_from(results, n);
        Ok(Operation { name, operands, results, attrs, regions, pos })
    }

    /// `{ ^bb0(%a: T, ...): ops }` or `{ ops }` with `args` as the entry block's arguments.
    fn region(&mut self, args: &[(String, Type)]) -> R<Region> {
        self.nest()?;
        self.expect("{")?;
        self.scopes.push(HashMap::new());
        let res = self.region_body(args);
        self.scopes.pop();
        self.depth -= 1;
        res
    }

    fn region_body(&mut self, args: &[(String, Type)]) -> R<Region> {
        let mut block = Block::default();
        for (name, ty) in args {
            let id = self.fresh();
            self.define(name.clone(), vec![id]);
            block.args.push((id, ty.clone()));
        }
        if self.eat("^") {
            self.ident()?;
            if self.eat("(") && !self.eat(")") {
                loop {
                    self.expect("%")?;
                    let name = self.ident()?;
                    self.expect(":")?;
                    let ty = self.ty()?;
                    if self.eat_kw("loc") {
                        self.skip_balanced(b'(', b')')?;
                    }
                    let id = self.fresh();
                    self.define(name, vec![id]);
                    block.args.push((id, ty));
                    if self.eat(")") {
                        break;
                    }
                    self.expect(",")?;
                }
            }
            self.expect(":")?;
        }
        loop {
            if self.eat("}") {
                break;
            }
            if self.at_end() {
                return Err(self.err("`}` closing a region"));
            }
            if self.peek() == Some(b'^') {
                return Err(self.err("a region with one block"));
            }
            block.ops.push(self.op()?);
        }
        Ok(Region { blocks: vec![block] })
    }

    /// The pretty forms: `module`, `func.func`, `return`, `call`, and `stablehlo.*`.
    fn pretty_op(&mut self, pos: Pos, n_results: usize) -> R<Operation> {
        let name = self.ident()?;
        let mut op =
            Operation { name: name.clone(), operands: vec![], results: vec![], attrs: vec![], regions: vec![], pos };
        match name.as_str() {
            "module" | "builtin.module" => {
                op.name = "builtin.module".into();
                self.ws();
                if self.peek() == Some(b'@') {
                    self.pos += 1;
                    op.attrs.push(("sym_name".into(), Attr::String(self.ident()?)));
                }
                if self.eat_kw("attributes") {
                    op.attrs.extend(self.attr_dict()?);
                }
                op.regions.push(self.region(&[])?);
            }
            "func.func" => self.pretty_func(&mut op)?,
            "return" | "func.return" | "stablehlo.return" => {
                op.name = if name == "stablehlo.return" { name } else { "func.return".into() };
                self.ws();
                if self.peek() == Some(b'%') {
                    op.operands = self.value_list()?;
                    self.expect(":")?;
                    self.types_until_end()?;
                }
            }
            "call" | "func.call" => {
                op.name = "func.call".into();
                self.expect("@")?;
                let callee = self.ident()?;
                op.attrs.push(("callee".into(), Attr::SymbolRef(callee)));
                self.expect("(")?;
                op.operands = self.use_values_until(")")?;
                self.opt_attr_dict(&mut op)?;
                self.expect(":")?;
                let (_, results) = self.function_type()?;
                op.results = self.results_from(results, n_results);
            }
            _ if name.starts_with("stablehlo.") || name.starts_with("chlo.") => {
                self.pretty_stablehlo(&mut op, n_results)?
            }
            _ => return Err(self.err(format!("an operation, found `{name}`"))),
        }
        Ok(op)
    }

    fn opt_attr_dict(&mut self, op: &mut Operation) -> R<()> {
        self.ws();
        if self.peek() == Some(b'{') {
            op.attrs.extend(self.attr_dict()?);
        }
        Ok(())
    }

    /// `%a, %b#1, ...` (at least one).
    fn value_list(&mut self) -> R<Vec<ValueId>> {
        let mut out = vec![self.use_value()?];
        while self.peek_after_ws() == Some(b',') && self.peek_value_after_comma() {
            self.expect(",")?;
            out.push(self.use_value()?);
        }
        Ok(out)
    }

    fn peek_after_ws(&mut self) -> Option<u8> {
        self.ws();
        self.peek()
    }

    fn peek_value_after_comma(&mut self) -> bool {
        let save = self.pos;
        let ok = self.eat(",") && self.peek_after_ws() == Some(b'%');
        self.pos = save;
        ok
    }

    /// `T, T, ...` or `(T, ...) -> R` up to the end of the op: the result types.
    fn types_until_end(&mut self) -> R<Vec<Type>> {
        self.ws();
        if self.peek() == Some(b'(') {
            let save = self.pos;
            if let Ok((_, results)) = self.function_type() {
                return Ok(results);
            }
            self.pos = save;
        }
        let mut out = vec![self.ty()?];
        while self.eat(",") {
            out.push(self.ty()?);
        }
        // CHLO's `T -> T` and `T -> (T, T)`.
        if self.eat("->") {
            self.ws();
            out = if self.peek() == Some(b'(') { self.type_list_parens()? } else { vec![self.ty()?] };
        }
        Ok(out)
    }

    fn pretty_func(&mut self, op: &mut Operation) -> R<()> {
        op.name = "func.func".into();
        for vis in ["public", "private", "nested"] {
            if self.eat_kw(vis) {
                op.attrs.push(("sym_visibility".into(), Attr::String(vis.into())));
            }
        }
        self.expect("@")?;
        let fname = self.ident()?;
        op.attrs.push(("sym_name".into(), Attr::String(fname)));
        self.expect("(")?;
        let mut args = Vec::new();
        let mut arg_attrs = Vec::new();
        if !self.eat(")") {
            loop {
                self.expect("%")?;
                let name = self.ident()?;
                self.expect(":")?;
                let ty = self.ty()?;
                self.ws();
                let dict = if self.peek() == Some(b'{') { self.attr_dict()? } else { Vec::new() };
                arg_attrs.push(Attr::Dict(dict));
                if self.eat_kw("loc") {
                    self.skip_balanced(b'(', b')')?;
                }
                args.push((name, ty));
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        if self.eat("->") {
            self.ws();
            if self.peek() == Some(b'(') {
                self.type_list_parens()?;
            } else {
                self.ty()?;
            }
        }
        if self.eat_kw("attributes") {
            op.attrs.extend(self.attr_dict()?);
        }
        if arg_attrs.iter().any(|a| !matches!(a, Attr::Dict(d) if d.is_empty())) {
            op.attrs.push(("arg_attrs".into(), Attr::Array(arg_attrs)));
        }
        op.regions.push(self.region(&args)?);
        Ok(())
    }

    /// `stablehlo.OP` in its pretty form: operands, keywords and `key = value` items up to `:`,
    /// then the types and any trailing regions; each op's keywords are renamed after parsing.
    fn pretty_stablehlo(&mut self, op: &mut Operation, n_results: usize) -> R<()> {
        let short = op.name.split_once('.').map_or("", |(_, s)| s).to_string();
        match short.as_str() {
            "constant" => {
                self.opt_attr_dict(op)?;
                let value = self.attr()?;
                let ty = match &value {
                    Attr::Tensor { ty, .. } => ty.clone(),
                    _ => return Err(self.err("a dense constant")),
                };
                op.attrs.push(("value".into(), value));
                op.results = self.results_from(vec![ty], n_results);
                return Ok(());
            }
            "while" => return self.pretty_while(op, n_results),
            "reduce" => return self.pretty_reduce(op, n_results),
            "custom_call" => {
                self.expect("@")?;
                let target = if self.peek() == Some(b'"') { self.string()? } else { self.ident()? };
                op.attrs.push(("call_target_name".into(), Attr::String(target)));
                self.expect("(")?;
                op.operands = self.use_values_until(")")?;
                self.opt_attr_dict(op)?;
                self.expect(":")?;
                let (_, results) = self.function_type()?;
                op.results = self.results_from(results, n_results);
                return Ok(());
            }
            "convolution" => {
                self.expect("(")?;
                op.operands = self.use_values_until(")")?;
                self.ws();
                if self.eat_kw("dim_numbers") {
                    self.expect("=")?;
                    op.attrs.extend(self.conv_dims()?);
                }
                self.eat(",");
                if self.eat_kw("window") {
                    self.expect("=")?;
                    self.expect("{")?;
                    while !self.eat("}") {
                        let k = self.ident()?;
                        self.expect("=")?;
                        let v = self.attr()?;
                        let k = match k.as_str() {
                            "stride" => "window_strides",
                            "pad" => "padding",
                            "lhs_dilate" => "lhs_dilation",
                            "rhs_dilate" => "rhs_dilation",
                            "reverse" => "window_reversal",
                            other => return Err(self.err(format!("a window field, found `{other}`"))),
                        };
                        op.attrs.push((k.into(), v));
                        self.eat(",");
                    }
                }
                self.opt_attr_dict(op)?;
                self.expect(":")?;
                let (_, results) = self.function_type()?;
                op.results = self.results_from(results, n_results);
                return Ok(());
            }
            _ => {}
        }
        // The generic pretty shape: items separated by commas until `:`.
        let mut bare = Vec::new();
        loop {
            self.ws();
            match self.peek() {
                Some(b':') | None => break,
                Some(b'{') => {
                    op.attrs.extend(self.attr_dict()?);
                }
                Some(b'%') => op.operands.push(self.use_value()?),
                Some(b'[') if short == "slice" => {
                    let (s, l, st) = self.slice_spec()?;
                    op.attrs.push(("start_indices".into(), ints_attr(s)));
                    op.attrs.push(("limit_indices".into(), ints_attr(l)));
                    op.attrs.push(("strides".into(), ints_attr(st)));
                }
                Some(b'(') if short == "case" || short == "if" => break,
                // `chlo.top_k(%x, k = 2)`: the parentheses only group the items.
                Some(b'(' | b')') => self.pos += 1,
                _ => {
                    let k = self.ident()?;
                    if self.eat("=") {
                        self.ws();
                        // Pretty values carry no `: type` (that colon starts the op's types).
                        let v = if self.peek().is_some_and(|b| b.is_ascii_alphabetic()) && !self.peek_kw_attr() {
                            Attr::Enum(self.ident()?)
                        } else if self.peek().is_some_and(|b| b == b'-' || b.is_ascii_digit()) {
                            Attr::Int { ty: Type::Scalar(DType::S64), value: self.int()? }
                        } else {
                            self.attr()?
                        };
                        // `batching_dims = [0] x [0]`.
                        if self.eat_kw("x") {
                            let rhs = self.attr()?;
                            op.attrs.push((format!("lhs_{k}"), v));
                            op.attrs.push((format!("rhs_{k}"), rhs));
                        } else {
                            op.attrs.push((k, v));
                        }
                    } else {
                        bare.push(k);
                    }
                }
            }
            self.eat(",");
        }
        self.expect(":")?;
        let types = self.types_until_end()?;
        op.results = self.results_from(types, n_results);
        rename_pretty(op, &short, bare).map_err(|m| self.err(m))?;
        Ok(())
    }

    fn peek_kw_attr(&mut self) -> bool {
        let rest = &self.src[self.pos..];
        [&b"dense"[..], b"array", b"true", b"false", b"tensor"].iter().any(|k| rest.starts_with(k))
    }

    /// `[0:4, 1:3:2]`.
    fn slice_spec(&mut self) -> R<(Vec<i64>, Vec<i64>, Vec<i64>)> {
        self.expect("[")?;
        let (mut s, mut l, mut st) = (Vec::new(), Vec::new(), Vec::new());
        if self.eat("]") {
            return Ok((s, l, st));
        }
        loop {
            s.push(self.int()?);
            self.expect(":")?;
            l.push(self.int()?);
            st.push(if self.eat(":") { self.int()? } else { 1 });
            if self.eat("]") {
                return Ok((s, l, st));
            }
            self.expect(",")?;
        }
    }

    /// `stablehlo.while(%iterArg = %x, ...) : T, ... cond { ... } do { ... }`.
    fn pretty_while(&mut self, op: &mut Operation, n_results: usize) -> R<()> {
        self.expect("(")?;
        let mut names = Vec::new();
        if !self.eat(")") {
            loop {
                self.expect("%")?;
                names.push(self.ident()?);
                self.expect("=")?;
                op.operands.push(self.use_value()?);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        self.opt_attr_dict(op)?;
        self.expect(":")?;
        let types = if names.is_empty() { Vec::new() } else { self.types_until_end()? };
        if types.len() != names.len() {
            return Err(self.err(format!("{} loop types", names.len())));
        }
        let args: Vec<(String, Type)> = names.into_iter().zip(types.iter().cloned()).collect();
        if !self.eat_kw("cond") {
            return Err(self.err("`cond`"));
        }
        op.regions.push(self.region(&args)?);
        if !self.eat_kw("do") {
            return Err(self.err("`do`"));
        }
        op.regions.push(self.region(&args)?);
        op.results = self.results_from(types, n_results);
        Ok(())
    }

    /// `stablehlo.reduce(%x init: %i), ... applies stablehlo.add across dimensions = [1] : ...`
    /// or the same with `reducer(%a: T, %b: T) ... { ... }` after the types.
    fn pretty_reduce(&mut self, op: &mut Operation, n_results: usize) -> R<()> {
        let (mut inputs, mut inits) = (Vec::new(), Vec::new());
        loop {
            self.expect("(")?;
            inputs.push(self.use_value()?);
            if !self.eat_kw("init") {
                return Err(self.err("`init:`"));
            }
            self.expect(":")?;
            inits.push(self.use_value()?);
            self.expect(")")?;
            if !self.eat(",") {
                break;
            }
        }
        let applies = if self.eat_kw("applies") { Some(self.ident()?) } else { None };
        if !self.eat_kw("across") || !self.eat_kw("dimensions") {
            return Err(self.err("`across dimensions =`"));
        }
        self.expect("=")?;
        let dims = self.int_list()?;
        op.attrs.push(("dimensions".into(), ints_attr(dims)));
        self.opt_attr_dict(op)?;
        self.expect(":")?;
        let (ins, results) = self.function_type()?;
        op.operands = inputs.iter().chain(&inits).copied().collect();
        let n = inputs.len();
        let scalar = |t: &Type| match t {
            Type::Tensor { elem, .. } => Type::Tensor { dims: vec![], elem: elem.clone() },
            other => other.clone(),
        };
        match applies {
            Some(body_op) => {
                // Synthesize `^bb0(%a..., %b...): %r = body_op(%a, %b); return %r`.
                let init_tys: Vec<Type> = ins.get(n..).unwrap_or(&[]).iter().map(scalar).collect();
                if init_tys.len() != n {
                    return Err(self.err(format!("{} init types", n)));
                }
                let mut block = Block::default();
                for t in init_tys.iter().chain(&init_tys) {
                    block.args.push((self.fresh(), t.clone()));
                }
                let mut rets = Vec::new();
                for (i, t) in init_tys.iter().enumerate() {
                    let r = self.fresh();
                    block.ops.push(Operation {
                        name: body_op.clone(),
                        operands: vec![block.args[i].0, block.args[n + i].0],
                        results: vec![(r, t.clone())],
                        attrs: vec![],
                        regions: vec![],
                        pos: op.pos,
                    });
                    rets.push(r);
                }
                block.ops.push(Operation {
                    name: "stablehlo.return".into(),
                    operands: rets,
                    results: vec![],
                    attrs: vec![],
                    regions: vec![],
                    pos: op.pos,
                });
                op.regions.push(Region { blocks: vec![block] });
            }
            None => {
                if !self.eat_kw("reducer") {
                    return Err(self.err("`reducer`"));
                }
                let mut pairs = Vec::new();
                for _ in 0..n {
                    self.expect("(")?;
                    let mut pair = Vec::new();
                    for k in 0..2 {
                        if k == 1 {
                            self.expect(",")?;
                        }
                        self.expect("%")?;
                        let name = self.ident()?;
                        self.expect(":")?;
                        pair.push((name, self.ty()?));
                    }
                    self.expect(")")?;
                    pairs.push(pair);
                }
                let mut args: Vec<(String, Type)> = pairs.iter().map(|p| p[0].clone()).collect();
                args.extend(pairs.iter().map(|p| p[1].clone()));
                op.regions.push(self.region(&args)?);
            }
        }
        op.results = self.results_from(results, n_results);
        Ok(())
    }
}

fn line_of(p: Pos) -> u32 {
    match p {
        Pos::LineCol(l, _) => l,
        Pos::Byte(_) => 0,
    }
}

fn col_of(p: Pos) -> u32 {
    match p {
        Pos::LineCol(_, c) => c,
        Pos::Byte(_) => 0,
    }
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn ints_attr(v: Vec<i64>) -> Attr {
    Attr::Array(v.into_iter().map(|value| Attr::Int { ty: Type::Scalar(DType::S64), value }).collect())
}

fn scalar_type(name: &str) -> Option<Type> {
    let d = match name {
        "i1" => DType::Pred,
        "i2" => DType::S2,
        "i4" => DType::S4,
        "i8" => DType::S8,
        "i16" => DType::S16,
        "i32" => DType::S32,
        "i64" => DType::S64,
        "ui2" => DType::U2,
        "ui4" => DType::U4,
        "ui8" => DType::U8,
        "ui16" => DType::U16,
        "ui32" => DType::U32,
        "ui64" => DType::U64,
        "f16" => DType::F16,
        "bf16" => DType::BF16,
        "f32" => DType::F32,
        "f64" => DType::F64,
        "f8E4M3FN" => DType::F8E4M3FN,
        "f8E5M2" => DType::F8E5M2,
        "f8E4M3FNUZ" => DType::F8E4M3FNUZ,
        "f8E5M2FNUZ" => DType::F8E5M2FNUZ,
        "f8E4M3B11FNUZ" => DType::F8E4M3B11FNUZ,
        "f8E4M3" => DType::F8E4M3,
        "f8E3M4" => DType::F8E3M4,
        "f4E2M1FN" => DType::F4E2M1FN,
        "f8E8M0FNU" => DType::F8E8M0FNU,
        "index" => return Some(Type::Index),
        "none" => return Some(Type::None),
        _ => return None,
    };
    Some(Type::Scalar(d))
}

fn parse_int(t: &str) -> Option<i64> {
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = if let Some(h) = body.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()? as i64
    } else {
        body.parse().ok()?
    };
    Some(if neg { v.checked_neg()? } else { v })
}

/// A scalar attribute from number text and its type.
fn number_attr(text: &str, ty: Type) -> Option<Attr> {
    match &ty {
        Type::Scalar(d) if d.is_float() => {
            let value = if let Some(h) = text.strip_prefix("0x") {
                crate::vhlo::float_from_bits(*d, u64::from_str_radix(h, 16).ok()?)
            } else {
                text.parse().ok()?
            };
            Some(Attr::Float { ty, value })
        }
        _ => Some(Attr::Int { value: parse_int(text)?, ty }),
    }
}

/// The little-endian bytes of a `dense<...>` body for element type `d`: a hex blob string, a
/// splat, or (nested) lists of numbers, booleans or `(re, im)` pairs.
fn dense_bytes(body: &str, d: DType) -> Option<Vec<u8>> {
    let body = body.trim();
    if let Some(hex) = body.strip_prefix("\"0x").and_then(|b| b.strip_suffix('"')) {
        if hex.len() % 2 != 0 {
            return None;
        }
        return (0..hex.len() / 2).map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect();
    }
    let mut out = Vec::new();
    let cleaned: String = body.chars().map(|c| if matches!(c, '[' | ']' | '(' | ')') { ' ' } else { c }).collect();
    for tok in cleaned.split([',', ' ', '\n']).map(str::trim).filter(|t| !t.is_empty()) {
        scalar_bytes(tok, d, &mut out)?;
    }
    Some(out)
}

fn scalar_bytes(tok: &str, d: DType, out: &mut Vec<u8>) -> Option<()> {
    let size = d.byte_size().max(1);
    if d == DType::Pred {
        out.push(match tok {
            "true" => 1,
            "false" => 0,
            _ => (parse_int(tok)? != 0) as u8,
        });
        return Some(());
    }
    let comp = d.complex_component();
    let elem = comp.unwrap_or(d);
    let esize = if comp.is_some() { size / 2 } else { size };
    let bits: u64 = if let Some(h) = tok.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()?
    } else if elem.is_float() {
        let v: f64 = match tok {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            "nan" => f64::NAN,
            _ => tok.parse().ok()?,
        };
        match elem {
            DType::F64 => v.to_bits(),
            DType::F32 => u64::from((v as f32).to_bits()),
            DType::F16 => u64::from(half::f16::from_f64(v).to_bits()),
            DType::BF16 => u64::from(half::bf16::from_f64(v).to_bits()),
            _ => return None,
        }
    } else {
        parse_int(tok)? as u64
    };
    out.extend_from_slice(&bits.to_le_bytes()[..esize.min(8)]);
    Some(())
}

/// Renames a pretty op's keywords and bare words to the attribute names VHLO uses.
fn rename_pretty(op: &mut Operation, short: &str, bare: Vec<String>) -> Result<(), String> {
    let rename = |op: &mut Operation, from: &str, to: &str| {
        for (k, _) in op.attrs.iter_mut() {
            if k == from {
                *k = to.to_string();
            }
        }
    };
    match short {
        "compare" => {
            let mut it = bare.into_iter();
            let dir = it.next().ok_or("a comparison direction")?;
            op.attrs.push(("comparison_direction".into(), Attr::Enum(dir)));
            if let Some(t) = it.next() {
                op.attrs.push(("compare_type".into(), Attr::Enum(t)));
            }
        }
        "broadcast_in_dim" => rename(op, "dims", "broadcast_dimensions"),
        "iota" => rename(op, "dim", "iota_dimension"),
        "concatenate" => rename(op, "dim", "dimension"),
        "transpose" => rename(op, "dims", "permutation"),
        "reverse" => rename(op, "dims", "dimensions"),
        "dynamic_slice" => rename(op, "sizes", "slice_sizes"),
        "get_tuple_element" => {}
        "pad" => {
            rename(op, "low", "edge_padding_low");
            rename(op, "high", "edge_padding_high");
            rename(op, "interior", "interior_padding");
        }
        "dot_general" => {
            rename(op, "lhs_batching_dims", "lhs_batching_dimensions");
            rename(op, "rhs_batching_dims", "rhs_batching_dimensions");
            rename(op, "lhs_contracting_dims", "lhs_contracting_dimensions");
            rename(op, "rhs_contracting_dims", "rhs_contracting_dimensions");
            rename(op, "precision", "precision_config");
            for k in ["lhs_batching_dimensions", "rhs_batching_dimensions"] {
                if op.attr(k).is_none() {
                    op.attrs.push((k.into(), Attr::Array(vec![])));
                }
            }
        }
        "reduce_precision" => {
            let Some(i) = op.attrs.iter().position(|(k, _)| k == "format") else {
                return Err("`format = eXmY`".into());
            };
            let Attr::Enum(f) = op.attrs.remove(i).1 else { return Err("`format = eXmY`".into()) };
            let (e, m) = f.strip_prefix('e').and_then(|r| r.split_once('m')).ok_or("`format = eXmY`")?;
            let (e, m) =
                (e.parse::<i64>().map_err(|_| "exponent bits")?, m.parse::<i64>().map_err(|_| "mantissa bits")?);
            op.attrs.push(("exponent_bits".into(), Attr::Int { ty: Type::Scalar(DType::S32), value: e }));
            op.attrs.push(("mantissa_bits".into(), Attr::Int { ty: Type::Scalar(DType::S32), value: m }));
        }
        "rng_bit_generator" => rename(op, "algorithm", "rng_algorithm"),
        "fft" => {
            rename(op, "type", "fft_type");
            rename(op, "length", "fft_length");
        }
        "rng" => rename(op, "distribution", "rng_distribution"),
        _ => {
            if let Some(w) = bare.first() {
                return Err(format!("an operand or `key = value`, found `{w}`"));
            }
        }
    }
    Ok(())
}

/// Splices struct attributes (`#stablehlo.gather<...>` and friends) into VHLO's flat names and
/// names the generic form's attributes as VHLO does.
fn flatten_attrs(op: &mut Operation) {
    let mut out = Vec::with_capacity(op.attrs.len());
    for (k, v) in std::mem::take(&mut op.attrs) {
        match (k.as_str(), v) {
            ("dimension_numbers" | "scatter_dimension_numbers" | "dot_dimension_numbers", Attr::Dict(fields)) => {
                out.extend(fields)
            }
            ("api_version", Attr::Int { value, .. }) => {
                let names = [
                    "API_VERSION_UNSPECIFIED",
                    "API_VERSION_ORIGINAL",
                    "API_VERSION_STATUS_RETURNING",
                    "API_VERSION_STATUS_RETURNING_UNIFIED",
                    "API_VERSION_TYPED_FFI",
                ];
                let name = names.get(value as usize).copied().unwrap_or("API_VERSION_UNSPECIFIED");
                out.push((k, Attr::Enum(name.into())));
            }
            (_, v) => out.push((k, v)),
        }
    }
    op.attrs = out;
}
