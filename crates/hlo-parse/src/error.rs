//! Parse errors: a byte span plus a line/column and an "expected X, found Y" message.
//!
//! Parsers inside the crate fail with a cheap [`PErr`] holding byte offsets only;
//! [`PErr::locate`] turns it into a [`ParseError`] once, scanning the source for the
//! line and column, so that the happy path never counts lines.

use hlo_ir::Span;

/// A syntax or name-resolution error in HLO text.
///
/// `line` and `column` are 1-based; `column` counts characters, not bytes.
/// `span` is the byte range the error is about (empty at end of input).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ParseError {
    pub line: u32,
    pub column: u32,
    pub span: Span,
    pub message: String,
}

/// Renders `FILE:LINE:COL: message`, the offending source line, and a caret under the column
/// (with `~` under the rest of the span when it stays on that line).
pub fn render_error(source: &str, file: &str, err: &ParseError) -> String {
    let line_idx = err.line.saturating_sub(1) as usize;
    let line_text = source.lines().nth(line_idx).unwrap_or("");
    let col = err.column.saturating_sub(1) as usize;
    let prefix: String = line_text.chars().take(col).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    let span_len = (err.span.end.saturating_sub(err.span.start)) as usize;
    let rest_of_line = line_text.chars().skip(col).count();
    let tildes = span_len.min(rest_of_line).saturating_sub(1);
    format!(
        "{file}:{}:{}: {}\n{line_text}\n{prefix}^{}",
        err.line,
        err.column,
        err.message,
        "~".repeat(tildes.min(200))
    )
}

/// An error at byte offsets `start..end`, located lazily.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PErr {
    pub start: usize,
    pub end: usize,
    pub message: String,
}

impl PErr {
    pub fn new(start: usize, end: usize, message: impl Into<String>) -> PErr {
        PErr { start, end: end.max(start), message: message.into() }
    }

    /// The same error with `note` appended to its message.
    pub fn note(mut self, note: &str) -> PErr {
        self.message = format!("{} {note}", self.message);
        self
    }

    /// Computes line and column from the source; offsets past the end clamp to it.
    pub fn locate(self, source: &str) -> ParseError {
        let start = floor_char_boundary(source, self.start.min(source.len()));
        let end = floor_char_boundary(source, self.end.min(source.len())).max(start);
        let before = &source[..start];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = source[line_start..start].chars().count() + 1;
        ParseError {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            span: Span { start: to_u32(start), end: to_u32(end) },
            message: self.message,
        }
    }
}

pub(crate) fn to_u32(x: usize) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// The largest char boundary at or below `i` (`str::floor_char_boundary` is unstable).
pub(crate) fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

pub(crate) type PResult<T> = Result<T, PErr>;
