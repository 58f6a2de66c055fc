//! The cursor all parsers advance over the source, and the lexemes of HLO text.
//!
//! Lexemes (names, numbers, keywords) are nom parsers run on the remaining input;
//! the grammar above them is recursive descent on [`Cursor`], which keeps the byte
//! offset for error messages and a nesting depth so that hostile input cannot
//! overflow the stack. Whitespace includes `/* ... */` and `// ...` comments, which
//! is how XLA's `/*index=5*/` markers disappear.

use crate::error::{PErr, PResult};
use nom::bytes::complete::{tag, take_while_m_n};
use nom::character::complete::{char, digit1};
use nom::combinator::{opt, recognize};
use nom::sequence::{delimited, pair};
use nom::Parser;

/// The deepest nesting of tuples, literal braces or shapes the parser follows.
pub(crate) const MAX_DEPTH: u32 = 64;

/// A fast hasher for instruction and computation names (FxHash's multiply-rotate).
/// Name tables are the parser's hottest maps and never face untrusted hash flooding
/// beyond what the input's own size allows.
#[derive(Default, Clone, Copy)]
pub(crate) struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
    }
}

/// A `HashMap` keyed by names, hashed with [`NameHasher`].
pub(crate) type NameMap<'a, V> = std::collections::HashMap<&'a str, V, std::hash::BuildHasherDefault<NameHasher>>;

/// An upper bound on the instructions of the computation body starting at `rest` (its lines
/// up to the first line that starts with `}`), used to size tables once instead of growing them.
pub(crate) fn estimate_lines(rest: &str) -> usize {
    let bytes = rest.as_bytes();
    let mut lines = 1;
    let mut i = 0;
    while let Some(off) = bytes.get(i..).and_then(|b| b.iter().position(|&c| c == b'\n')) {
        i += off + 1;
        if bytes.get(i) == Some(&b'}') {
            break;
        }
        lines += 1;
    }
    lines.min(1 << 22)
}

type NomErr<'a> = nom::error::Error<&'a str>;

pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

pub(crate) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// A position in the source plus the current nesting depth.
#[derive(Clone, Debug)]
pub(crate) struct Cursor<'a> {
    pub src: &'a str,
    pub pos: usize,
    depth: u32,
}

impl<'a> Cursor<'a> {
    pub fn new(src: &'a str) -> Cursor<'a> {
        Cursor { src, pos: 0, depth: 0 }
    }

    /// The unparsed input (the cursor only ever stops on char boundaries).
    pub fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    /// Moves the cursor to `rest`, a suffix of the source returned by a nom parser.
    fn set_rest(&mut self, rest: &'a str) {
        self.pos = self.src.len() - rest.len();
    }

    /// Runs a nom lexeme parser at the cursor (no whitespace skipping) and advances on success.
    pub fn lex<O>(&mut self, mut p: impl Parser<&'a str, Output = O, Error = NomErr<'a>>) -> Option<O> {
        match p.parse(self.rest()) {
            Ok((rest, out)) => {
                self.set_rest(rest);
                Some(out)
            }
            Err(_) => None,
        }
    }

    /// Skips whitespace and comments. An unterminated `/*` runs to the end of the input.
    #[inline]
    pub fn skip_ws(&mut self) {
        // Most calls find a token right away; keep that path to one comparison.
        if matches!(self.src.as_bytes().get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r' | b'/')) {
            self.skip_ws_slow();
        }
    }

    fn skip_ws_slow(&mut self) {
        let bytes = self.src.as_bytes();
        let mut i = self.pos;
        while let Some(&b) = bytes.get(i) {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => i += 1,
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    i = match self.src.get(i + 2..).and_then(|r| r.find("*/")) {
                        Some(off) => i + 2 + off + 2,
                        None => bytes.len(),
                    };
                }
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    i = match self.src.get(i..).and_then(|r| r.find('\n')) {
                        Some(off) => i + off,
                        None => bytes.len(),
                    };
                }
                _ => break,
            }
        }
        self.pos = i;
    }

    /// The length of the run of name bytes at the cursor (names are ASCII, so bytes suffice;
    /// this is the hottest lexeme, hence not a char-decoding nom `take_while`).
    #[inline]
    fn name_run(&self) -> usize {
        let bytes = self.src.as_bytes().get(self.pos..).unwrap_or(&[]);
        bytes.iter().position(|&b| !is_name_byte(b)).unwrap_or(bytes.len())
    }

    /// The next byte after whitespace.
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.src.as_bytes().get(self.pos).copied()
    }

    /// The byte `n` places after the cursor, without skipping whitespace.
    pub fn peek_raw(&self, n: usize) -> Option<u8> {
        self.src.as_bytes().get(self.pos + n).copied()
    }

    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Consumes `c` (after whitespace) if it is next.
    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `c` or fails with "expected 'c', found ...".
    pub fn expect(&mut self, c: u8) -> PResult<()> {
        if self.eat(c) {
            return Ok(());
        }
        let err = self.err_expected(&format!("'{}'", c as char));
        // A missing closing bracket is the previous line's mistake: point just after its last
        // token, not at whatever starts the next line.
        let end = self.src[..self.pos].trim_end().len();
        if matches!(c, b')' | b']' | b'}') && self.src[end..self.pos].contains('\n') {
            return Err(PErr::new(end, end + 1, err.message));
        }
        Err(err)
    }

    /// Consumes `s` (after whitespace) if it is next.
    pub fn eat_str(&mut self, s: &str) -> bool {
        self.skip_ws();
        self.lex(tag::<&str, &str, NomErr<'a>>(s)).is_some()
    }

    /// Consumes the keyword `kw` if it is next and not the prefix of a longer name.
    pub fn eat_keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let rest = self.rest();
        let followed_by_name_char = rest.get(kw.len()..).and_then(|r| r.chars().next()).is_some_and(is_name_char);
        if rest.starts_with(kw) && !followed_by_name_char {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    /// True when the keyword `kw` is next (without consuming it).
    pub fn at_keyword(&mut self, kw: &str) -> bool {
        let save = self.pos;
        let found = self.eat_keyword(kw);
        self.pos = save;
        found
    }

    /// An identifier `[A-Za-z_][A-Za-z0-9_.-]*`, after whitespace.
    pub fn ident(&mut self) -> Option<&'a str> {
        self.skip_ws();
        match self.src.as_bytes().get(self.pos) {
            Some(&b) if b.is_ascii_alphabetic() || b == b'_' => self.word(),
            _ => None,
        }
    }

    /// A run of name characters (which may start with a digit), after whitespace.
    pub fn word(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let len = self.name_run();
        if len == 0 {
            return None;
        }
        let start = self.pos;
        self.pos += len;
        Some(&self.src[start..self.pos])
    }

    /// An instruction or computation name, `%`-prefixed or bare; returns it without the `%`
    /// and with its byte offset.
    pub fn name(&mut self, what: &str) -> PResult<(&'a str, usize)> {
        self.skip_ws();
        let start = self.pos;
        let percent = self.src.as_bytes().get(self.pos) == Some(&b'%');
        self.pos += percent as usize;
        let name = if percent { self.word() } else { self.ident() };
        match name {
            Some(name) => Ok((name, start)),
            None => {
                self.pos = start;
                Err(self.err_expected(what))
            }
        }
    }

    /// The text of an integer token `-?[0-9]+`.
    pub fn int_token(&mut self) -> Option<&'a str> {
        self.skip_ws();
        self.lex(recognize(pair(opt(char('-')), digit1)))
    }

    /// A signed 64-bit integer.
    pub fn int(&mut self) -> PResult<i64> {
        self.skip_ws();
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let negative = bytes.get(start) == Some(&b'-');
        let digits_start = start + negative as usize;
        let mut i = digits_start;
        let mut value: i64 = 0;
        let mut overflow = false;
        while let Some(&d) = bytes.get(i).filter(|d| d.is_ascii_digit()) {
            let digit = (d - b'0') as i64;
            // Accumulate negatively so that i64::MIN parses.
            match value.checked_mul(10).and_then(|v| v.checked_sub(digit)) {
                Some(v) => value = v,
                None => overflow = true,
            }
            i += 1;
        }
        if i == digits_start {
            return Err(self.err_expected("an integer"));
        }
        self.pos = i;
        let value = if negative { Some(value) } else { value.checked_neg() };
        match value {
            Some(v) if !overflow => Ok(v),
            _ => Err(PErr::new(start, i, format!("integer '{}' is out of range", &self.src[start..i]))),
        }
    }

    /// A non-negative integer that fits in `u64`.
    pub fn uint(&mut self) -> PResult<u64> {
        self.skip_ws();
        let start = self.pos;
        let value = self.int()?;
        u64::try_from(value)
            .map_err(|_| PErr::new(start, self.pos, format!("expected a non-negative integer, found '{value}'")))
    }

    /// `true` or `false`.
    pub fn bool(&mut self) -> PResult<bool> {
        if self.eat_keyword("true") {
            Ok(true)
        } else if self.eat_keyword("false") {
            Ok(false)
        } else {
            Err(self.err_expected("'true' or 'false'"))
        }
    }

    /// A decimal number token in any of the forms XLA prints: `-1`, `2.5`, `.5`, `1e-07`,
    /// `inf`, `-inf`, `nan`, `-nan`, `nan(0x7)`. Returns the text without any NaN payload,
    /// and the payload separately.
    pub fn float_token(&mut self) -> Option<(&'a str, Option<&'a str>)> {
        self.skip_ws();
        let start = self.pos;
        let special = recognize(pair(opt(char('-')), nom::branch::alt((tag("inf"), tag("nan")))));
        if let Some(text) = self.lex(special) {
            if self.rest().chars().next().is_some_and(is_name_char) {
                self.pos = start;
                return None;
            }
            let payload = if text.ends_with("nan") {
                self.lex(delimited(tag("(0x"), take_while_m_n(1, 16, |c: char| c.is_ascii_hexdigit()), char(')')))
            } else {
                None
            };
            return Some((text, payload));
        }
        let number = recognize((
            opt(char('-')),
            nom::branch::alt((
                recognize((digit1, opt(pair(char('.'), opt(digit1))))),
                recognize(pair(char('.'), digit1)),
            )),
            opt((nom::branch::alt((char('e'), char('E'))), opt(nom::branch::alt((char('+'), char('-')))), digit1)),
        ));
        self.lex(number).map(|text| (text, None))
    }

    /// A double-quoted string with C escapes (`\n`, `\"`, `\\`, octal `\303`, `\x41`, `\u00e9`).
    /// Bytes that do not form UTF-8 are replaced, so every input yields some string.
    pub fn string(&mut self) -> PResult<String> {
        let raw = self.quoted()?;
        let body = &raw[1..raw.len() - 1];
        if !body.contains('\\') {
            return Ok(body.to_string());
        }
        Ok(c_unescape(body))
    }

    /// A double-quoted string exactly as written, quotes included.
    pub fn quoted(&mut self) -> PResult<&'a str> {
        self.skip_ws();
        let start = self.pos;
        if self.peek_raw(0) != Some(b'"') {
            return Err(self.err_expected("a string"));
        }
        let bytes = self.src.as_bytes();
        let mut i = start + 1;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'\\' => i += 2,
                b'"' => {
                    self.pos = i + 1;
                    return Ok(&self.src[start..i + 1]);
                }
                _ => i += 1,
            }
        }
        Err(PErr::new(start, start + 1, "unterminated string"))
    }

    /// The verbatim text of an attribute value this parser does not model: everything up to
    /// the next `,`, end of line, or unmatched closing bracket at nesting level zero, with
    /// `{}`, `[]`, `()` balanced and strings skipped whole. XLA prints instruction attributes
    /// on one line, so a bracket still open at the end of the line is reported there rather
    /// than allowed to swallow the rest of the computation.
    pub fn skip_value(&mut self) -> PResult<&'a str> {
        self.skip_value_impl(false)
    }

    /// [`Cursor::skip_value`] for module header values, which may span lines.
    pub fn skip_multiline_value(&mut self) -> PResult<&'a str> {
        self.skip_value_impl(true)
    }

    fn skip_value_impl(&mut self, multiline: bool) -> PResult<&'a str> {
        self.skip_ws();
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut stack: Vec<(u8, usize)> = Vec::new();
        let mut i = start;
        loop {
            let Some(&b) = bytes.get(i) else {
                if let Some(&(open, at)) = stack.last() {
                    return Err(PErr::new(at, at + 1, format!("unclosed '{}'", open as char)));
                }
                break;
            };
            match b {
                b'"' => {
                    self.pos = i;
                    self.quoted()?;
                    i = self.pos;
                    continue;
                }
                b'{' | b'[' | b'(' => stack.push((b, i)),
                b'}' | b']' | b')' => match stack.pop() {
                    None => break,
                    Some((open, _)) if closer(open) == b => {}
                    Some((open, _)) => {
                        return Err(PErr::new(
                            i,
                            i + 1,
                            format!("expected '{}', found '{}'", closer(open) as char, b as char),
                        ))
                    }
                },
                b',' | b'\n' | b'\r' if stack.is_empty() => break,
                b'\n' | b'\r' if !multiline => {
                    let (open, at) = stack.last().copied().unwrap_or((b'{', start));
                    return Err(PErr::new(at, at + 1, format!("unclosed '{}'", open as char)));
                }
                _ => {}
            }
            i += 1;
        }
        let value = self.src[start..i].trim_end();
        self.pos = start + value.len();
        if value.is_empty() {
            self.pos = start;
            return Err(self.err_expected("an attribute value"));
        }
        Ok(value)
    }

    /// One balanced bracket group (`{...}`, `[...]` or `(...)`, strings skipped whole) starting
    /// at the cursor, returned verbatim.
    pub fn group(&mut self) -> PResult<&'a str> {
        self.skip_ws();
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut stack: Vec<(u8, usize)> = Vec::new();
        let mut i = start;
        loop {
            let Some(&b) = bytes.get(i) else {
                let (open, at) = stack.last().copied().unwrap_or((b'{', start));
                return Err(PErr::new(at, at + 1, format!("unclosed '{}'", open as char)));
            };
            match b {
                b'"' => {
                    self.pos = i;
                    self.quoted()?;
                    i = self.pos;
                    continue;
                }
                b'{' | b'[' | b'(' => stack.push((b, i)),
                b'}' | b']' | b')' => match stack.pop() {
                    Some((open, _)) if closer(open) == b => {
                        if stack.is_empty() {
                            self.pos = i + 1;
                            return Ok(&self.src[start..i + 1]);
                        }
                    }
                    Some((open, _)) => {
                        return Err(PErr::new(
                            i,
                            i + 1,
                            format!("expected '{}', found '{}'", closer(open) as char, b as char),
                        ))
                    }
                    None => break,
                },
                _ if stack.is_empty() => break,
                _ => {}
            }
            i += 1;
        }
        self.pos = start;
        Err(self.err_expected("'{', '[' or '('"))
    }

    /// Enters one level of nesting, failing when input nests deeper than [`MAX_DEPTH`].
    pub fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(PErr::new(self.pos, self.pos + 1, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// "expected {what}, found {next token}" at the next token.
    pub fn err_expected(&mut self, what: &str) -> PErr {
        self.skip_ws();
        let (found, len) = describe_token(self.rest());
        PErr::new(self.pos, self.pos + len, format!("expected {what}, found {found}"))
    }

    /// An error spanning `start..` the cursor.
    pub fn err_since(&self, start: usize, message: impl Into<String>) -> PErr {
        PErr::new(start, self.pos.max(start + 1), message)
    }
}

fn closer(open: u8) -> u8 {
    match open {
        b'{' => b'}',
        b'[' => b']',
        _ => b')',
    }
}

/// A short description of the token at the start of `rest`, and its length in bytes.
pub(crate) fn describe_token(rest: &str) -> (String, usize) {
    let Some(c) = rest.chars().next() else {
        return ("end of input".to_string(), 0);
    };
    let run = |s: &str| s.char_indices().find(|&(_, c)| !is_name_char(c)).map_or(s.len(), |(i, _)| i);
    let len = if is_name_char(c) {
        run(rest)
    } else if c == '-' || c == '%' {
        1 + run(&rest[1..])
    } else {
        c.len_utf8()
    };
    let shown: String = rest[..len].chars().take(40).collect();
    let ellipsis = if shown.len() < len { "..." } else { "" };
    (format!("'{shown}{ellipsis}'"), len)
}

/// Decodes C escapes byte-wise (absl's `CUnescape`), replacing invalid UTF-8.
pub(crate) fn c_unescape(body: &str) -> String {
    let bytes = body.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&e) = bytes.get(i) else {
            out.push(b'\\');
            break;
        };
        i += 1;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut v: u32 = (e - b'0') as u32;
                for _ in 0..2 {
                    match bytes.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let hex = |&b: &u8| (b as char).to_digit(16);
                let mut v: u32 = 0;
                let mut n = 0;
                while let Some(d) = bytes.get(i).and_then(hex) {
                    v = (v * 16 + d) & 0xff;
                    i += 1;
                    n += 1;
                }
                if n == 0 {
                    out.extend_from_slice(b"\\x");
                } else {
                    out.push(v as u8);
                }
            }
            b'u' | b'U' => {
                let width = if e == b'u' { 4 } else { 8 };
                let digits = body.get(i..i + width).filter(|d| d.chars().all(|c| c.is_ascii_hexdigit()));
                match digits.and_then(|d| u32::from_str_radix(d, 16).ok()).and_then(char::from_u32) {
                    Some(c) => {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        i += width;
                    }
                    None => {
                        out.push(b'\\');
                        out.push(e);
                    }
                }
            }
            other => out.push(other),
        }
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Parses `0x` hex digits of a NaN payload (already lexed as 1..=16 hex digits).
pub(crate) fn parse_hex_payload(digits: &str) -> Option<u64> {
    u64::from_str_radix(digits, 16).ok()
}
