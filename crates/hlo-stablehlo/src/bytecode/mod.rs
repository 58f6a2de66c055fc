//! The MLIR bytecode container: magic, version, producer, sections, the string and dialect
//! tables, the attribute/type tables and the IR section, decoded into the generic tree of
//! [`crate::ir`].
//!
//! Attributes and types are decoded lazily, on first reference, and cached: locations (most of
//! the table) are never decoded. The dialect encodings themselves live in `vhlo.rs`.
//! Every index and count is checked against its table or the bytes left, so truncated or
//! corrupted input gives [`Error::Bytecode`] with an offset, never a panic or a huge allocation.

pub mod cursor;

use crate::ir::{Attr, Block, Operation, Pos, Region, Type, ValueId};
use crate::Error;
use cursor::Cursor;

/// The bytecode versions this reader understands (MLIR's `kVersion`, 0 to 6 as of LLVM 20/21).
pub const MIN_BYTECODE_VERSION: u64 = 0;
pub const MAX_BYTECODE_VERSION: u64 = 6;

const KIND_DIALECT_VERSIONING: u64 = 1;
const KIND_LAZY_LOADING: u64 = 2;
const KIND_USE_LIST_ORDERING: u64 = 3;
const KIND_ELIDE_UNKNOWN_BLOCK_ARG_LOCATION: u64 = 4;
const KIND_NATIVE_PROPERTIES: u64 = 5;

mod section {
    pub const STRING: u8 = 0;
    pub const DIALECT: u8 = 1;
    pub const ATTR_TYPE: u8 = 2;
    pub const ATTR_TYPE_OFFSET: u8 = 3;
    pub const IR: u8 = 4;
    pub const PROPERTIES: u8 = 8;
    pub const COUNT: usize = 9;
}

mod op_mask {
    pub const ATTRS: u8 = 0x01;
    pub const RESULTS: u8 = 0x02;
    pub const OPERANDS: u8 = 0x04;
    pub const SUCCESSORS: u8 = 0x08;
    pub const INLINE_REGIONS: u8 = 0x10;
    pub const USE_LIST_ORDERS: u8 = 0x20;
    pub const PROPERTIES: u8 = 0x40;
}

/// Nesting limit for regions and attributes: deeper input is rejected rather than
/// risking the stack.
const MAX_DEPTH: usize = 200;

/// A decoded artifact: its header and the top-level operations (normally one `builtin.module`).
#[derive(Clone, Debug, PartialEq)]
pub struct Artifact {
    pub version: u64,
    pub producer: String,
    pub ops: Vec<Operation>,
}

/// One entry of the attribute or type table: its dialect and its encoded bytes.
#[derive(Clone, Debug)]
pub(crate) struct Entry<'a> {
    pub dialect: usize,
    pub custom: bool,
    pub data: Cursor<'a>,
}

/// The tables every later read refers to.
pub(crate) struct Tables<'a> {
    pub version: u64,
    pub strings: Vec<&'a str>,
    pub dialects: Vec<&'a str>,
    /// `(dialect index, name, was registered)`.
    pub op_names: Vec<(usize, &'a str)>,
    pub attrs: Vec<Entry<'a>>,
    pub types: Vec<Entry<'a>>,
    pub attr_cache: Vec<Option<Attr>>,
    pub type_cache: Vec<Option<Type>>,
    pub depth: usize,
    pub properties: Vec<Cursor<'a>>,
}

impl<'a> Tables<'a> {
    pub fn string(&self, idx: u64, at: &Cursor) -> Result<&'a str, Error> {
        self.strings
            .get(idx as usize)
            .copied()
            .ok_or_else(|| at.error(format!("a string index below {}", self.strings.len())))
    }
}

/// Reads a whole artifact.
pub fn read(bytes: &[u8]) -> Result<Artifact, Error> {
    let mut cur = Cursor::new(bytes, 0);
    let magic = cur.bytes(4, "the magic number ML\\xEFR")?;
    if magic != b"ML\xEFR" {
        return Err(Error::Bytecode { offset: 0, expected: "the magic number ML\\xEFR (MLIR bytecode)".into() });
    }
    let version_at = cur.offset();
    let version = cur.varint("the bytecode version")?;
    if !(MIN_BYTECODE_VERSION..=MAX_BYTECODE_VERSION).contains(&version) {
        return Err(Error::Bytecode {
            offset: version_at,
            expected: format!("a bytecode version in {MIN_BYTECODE_VERSION}..={MAX_BYTECODE_VERSION}, found {version}"),
        });
    }
    let producer = cur.cstr("the producer string")?.to_string();

    let mut sections: [Option<Cursor>; section::COUNT] = Default::default();
    while !cur.is_empty() {
        let at = cur.offset();
        let (id, data) = cur.section()?;
        let slot = sections
            .get_mut(id as usize)
            .ok_or(Error::Bytecode { offset: at, expected: format!("a section id below 9, found {id}") })?;
        if slot.is_some() {
            return Err(Error::Bytecode { offset: at, expected: format!("section {id} only once") });
        }
        *slot = Some(data);
    }
    let mut take = |id: u8, name: &str| {
        sections[id as usize]
            .take()
            .ok_or(Error::Bytecode { offset: bytes.len(), expected: format!("a {name} section") })
    };
    let string_sec = take(section::STRING, "string")?;
    let dialect_sec = take(section::DIALECT, "dialect")?;
    let attr_type_sec = take(section::ATTR_TYPE, "attribute/type")?;
    let offset_sec = take(section::ATTR_TYPE_OFFSET, "attribute/type offset")?;
    let ir_sec = take(section::IR, "IR")?;
    let props_sec = sections[section::PROPERTIES as usize].take();

    let strings = read_strings(string_sec)?;
    let mut tables = Tables {
        version,
        strings,
        dialects: Vec::new(),
        op_names: Vec::new(),
        attrs: Vec::new(),
        types: Vec::new(),
        attr_cache: Vec::new(),
        type_cache: Vec::new(),
        depth: 0,
        properties: Vec::new(),
    };
    read_dialects(&mut tables, dialect_sec)?;
    read_attr_type_offsets(&mut tables, offset_sec, attr_type_sec)?;
    if let Some(p) = props_sec {
        read_properties(&mut tables, p)?;
    }
    let ops = IrReader { t: &mut tables, next_value: 0, scopes: Vec::new() }.top_level(ir_sec)?;
    Ok(Artifact { version, producer, ops })
}

/// `numStrings, reverseStringLengths[], data`: each length counts the terminating null, and
/// the strings sit at the end of the section, the last string last.
fn read_strings(mut cur: Cursor<'_>) -> Result<Vec<&str>, Error> {
    let n = cur.count("the number of strings")?;
    let mut lens = Vec::with_capacity(n);
    for _ in 0..n {
        lens.push(cur.varint("a string length")?);
    }
    let data_at = cur.offset();
    let data = cur.bytes(cur.remaining() as u64, "string data")?;
    let mut end = data.len() as u64;
    let mut out = vec![""; n];
    for (slot, &len) in out.iter_mut().rev().zip(&lens) {
        if len == 0 || len > end {
            return Err(Error::Bytecode {
                offset: data_at,
                expected: "string lengths that fit the string data".into(),
            });
        }
        let start = (end - len) as usize;
        let bytes = &data[start..end as usize - 1];
        *slot = std::str::from_utf8(bytes)
            .map_err(|_| Error::Bytecode { offset: data_at + start, expected: "a UTF-8 string".into() })?;
        end -= len;
    }
    Ok(out)
}

fn read_dialects(t: &mut Tables, mut cur: Cursor) -> Result<(), Error> {
    let n = cur.count("the number of dialects")?;
    for _ in 0..n {
        if t.version < KIND_DIALECT_VERSIONING {
            let idx = cur.varint("a dialect name")?;
            t.dialects.push(t.string(idx, &cur)?);
        } else {
            let (idx, versioned) = cur.varint_flag("a dialect name")?;
            t.dialects.push(t.string(idx, &cur)?);
            if versioned {
                // The dialect's own version blob: not needed, VHLO versions ops by name.
                cur.section()?;
            }
        }
    }
    if t.version >= KIND_NATIVE_PROPERTIES {
        cur.varint("the number of op names")?;
    }
    while !cur.is_empty() {
        let dialect = cur.varint("an op-name group's dialect")? as usize;
        if dialect >= t.dialects.len() {
            return Err(cur.error(format!("a dialect index below {}", t.dialects.len())));
        }
        let count = cur.count("the number of op names")?;
        for _ in 0..count {
            let idx = if t.version >= KIND_NATIVE_PROPERTIES {
                cur.varint_flag("an op name")?.0
            } else {
                cur.varint("an op name")?
            };
            let name = t.string(idx, &cur)?;
            t.op_names.push((dialect, name));
        }
    }
    Ok(())
}

fn read_attr_type_offsets<'a>(t: &mut Tables<'a>, mut cur: Cursor<'a>, data: Cursor<'a>) -> Result<(), Error> {
    let n_attrs = cur.count("the number of attributes")?;
    let n_types = cur.count("the number of types")?;
    let mut data = data;
    let mut entries = Vec::with_capacity(n_attrs + n_types);
    while entries.len() < n_attrs + n_types {
        let dialect = cur.varint("an attribute/type group's dialect")? as usize;
        if dialect >= t.dialects.len() {
            return Err(cur.error(format!("a dialect index below {}", t.dialects.len())));
        }
        let count = cur.count("the number of entries in a group")?;
        for _ in 0..count {
            let (size, custom) = cur.varint_flag("an attribute/type size")?;
            let base = data.offset();
            let bytes = data.bytes(size, "attribute/type data")?;
            entries.push(Entry { dialect, custom, data: Cursor::new(bytes, base) });
        }
    }
    if entries.len() != n_attrs + n_types {
        return Err(cur.error(format!("{} attributes and types in the offset groups", n_attrs + n_types)));
    }
    t.types = entries.split_off(n_attrs);
    t.attrs = entries;
    t.attr_cache = vec![None; n_attrs];
    t.type_cache = vec![None; n_types];
    Ok(())
}

/// `numProperties, [size, bytes]*`: each op's properties blob, referenced by index.
fn read_properties<'a>(t: &mut Tables<'a>, mut cur: Cursor<'a>) -> Result<(), Error> {
    let n = cur.count("the number of properties")?;
    for _ in 0..n {
        let size = cur.varint("a properties size")?;
        let base = cur.offset();
        let bytes = cur.bytes(size, "properties data")?;
        t.properties.push(Cursor::new(bytes, base));
    }
    Ok(())
}

/// Walks the IR section, assigning module-unique value ids.
struct IrReader<'t, 'a> {
    t: &'t mut Tables<'a>,
    next_value: u32,
    /// One entry per isolated-from-above scope: the scope's value slots (`None` until
    /// defined or forward-referenced), and the start of each open region's reserved range.
    scopes: Vec<Scope>,
}

#[derive(Default)]
struct Scope {
    values: Vec<Option<ValueId>>,
    next: Vec<usize>,
}

impl<'t, 'a> IrReader<'t, 'a> {
    fn top_level(mut self, mut cur: Cursor<'a>) -> Result<Vec<Operation>, Error> {
        self.scopes.push(Scope::default());
        self.scopes.last_mut().unwrap_or_else(|| unreachable!()).next.push(0);
        let block = self.block(&mut cur, 0)?;
        Ok(block.ops)
    }

    fn scope(&mut self) -> &mut Scope {
        if self.scopes.is_empty() {
            self.scopes.push(Scope::default());
        }
        let last = self.scopes.len() - 1;
        &mut self.scopes[last]
    }

    /// Defines the next value of the innermost open region.
    fn define(&mut self, cur: &Cursor) -> Result<ValueId, Error> {
        let fresh = ValueId(self.next_value);
        let scope = self.scope();
        let Some(next) = scope.next.last_mut() else { return Err(cur.error("a value inside a region")) };
        let slot = *next;
        *next += 1;
        if slot >= scope.values.len() {
            // The top-level block reserves nothing; grow on demand there.
            scope.values.resize(slot + 1, None);
        }
        if let Some(id) = scope.values[slot] {
            return Ok(id); // forward-referenced earlier
        }
        scope.values[slot] = Some(fresh);
        self.next_value += 1;
        Ok(fresh)
    }

    fn operand(&mut self, cur: &mut Cursor) -> Result<ValueId, Error> {
        let at = cur.offset();
        let idx = cur.varint("an operand value index")? as usize;
        let fresh = ValueId(self.next_value);
        let scope = self.scope();
        match scope.values.get_mut(idx) {
            Some(Some(id)) => Ok(*id),
            Some(slot) => {
                *slot = Some(fresh);
                self.next_value += 1;
                Ok(fresh)
            }
            None => {
                Err(Error::Bytecode { offset: at, expected: format!("a value index below {}", scope.values.len()) })
            }
        }
    }

    fn ty(&mut self, cur: &mut Cursor) -> Result<Type, Error> {
        let idx = cur.varint("a type index")?;
        crate::vhlo::type_at(self.t, idx, cur)
    }

    fn attr(&mut self, cur: &mut Cursor) -> Result<Attr, Error> {
        let idx = cur.varint("an attribute index")?;
        crate::vhlo::attr_at(self.t, idx, cur)
    }

    fn block(&mut self, cur: &mut Cursor<'a>, depth: usize) -> Result<Block, Error> {
        let (n_ops, has_args) = cur.varint_flag("a block header")?;
        if n_ops > cur.remaining() as u64 {
            return Err(cur.error(format!("at most {} operations, found {n_ops}", cur.remaining())));
        }
        let mut block = Block::default();
        if has_args {
            let n = cur.count("the number of block arguments")?;
            for _ in 0..n {
                let ty = if self.t.version >= KIND_ELIDE_UNKNOWN_BLOCK_ARG_LOCATION {
                    let (idx, has_loc) = cur.varint_flag("a block argument type")?;
                    if has_loc {
                        cur.varint("a block argument location")?;
                    }
                    crate::vhlo::type_at(self.t, idx, cur)?
                } else {
                    let ty = self.ty(cur)?;
                    cur.varint("a block argument location")?;
                    ty
                };
                let id = self.define(cur)?;
                block.args.push((id, ty));
            }
            if self.t.version >= KIND_USE_LIST_ORDERING && cur.byte("the use-list flag")? != 0 {
                skip_use_lists(cur, n as u64)?;
            }
        }
        for _ in 0..n_ops {
            let op = self.op(cur, depth)?;
            block.ops.push(op);
        }
        Ok(block)
    }

    fn op(&mut self, cur: &mut Cursor<'a>, depth: usize) -> Result<Operation, Error> {
        if depth > MAX_DEPTH {
            return Err(cur.error(format!("regions nested at most {MAX_DEPTH} deep")));
        }
        let pos = Pos::Byte(cur.offset());
        let name_idx = cur.varint("an op name index")? as usize;
        let &(dialect, op_name) = self
            .t
            .op_names
            .get(name_idx)
            .ok_or_else(|| cur.error(format!("an op name index below {}", self.t.op_names.len())))?;
        let name = format!("{}.{}", self.t.dialects[dialect], op_name);
        let mask = cur.byte("an op encoding mask")?;
        if mask & 0x80 != 0 {
            return Err(cur.error("an op encoding mask without bit 7"));
        }
        cur.varint("an op location")?;
        let mut attrs = Vec::new();
        if mask & op_mask::ATTRS != 0 {
            match self.attr(cur)? {
                Attr::Dict(d) => attrs = d,
                other => return Err(cur.error(format!("an attribute dictionary for {name}, found {other:?}"))),
            }
        }
        if mask & op_mask::PROPERTIES != 0 {
            // Ops registered when written store properties in the op's own encoding, which only
            // the op knows. VHLO keeps its attributes in the dictionary; only `builtin.module`
            // (its optional `sym_name` and `sym_visibility`) has properties, which we skip.
            let idx = cur.varint("a properties index")? as usize;
            if idx >= self.t.properties.len() {
                return Err(cur.error(format!("a properties index below {}", self.t.properties.len())));
            }
            if let Some(op) = name.strip_prefix("vhlo.") {
                let names = crate::vhlo_ops::attr_names(op)
                    .ok_or_else(|| Error::Unsupported { pos, what: format!("the properties of {name}") })?;
                let mut props = self.t.properties[idx].clone();
                for &attr_name in names {
                    let a = self.attr(&mut props)?;
                    attrs.push((attr_name.to_string(), a));
                }
            } else if name == "builtin.module" {
                // `sym_name` and `sym_visibility`, both optional: a flagged attribute index each.
                let mut props = self.t.properties[idx].clone();
                for attr_name in ["sym_name", "sym_visibility"] {
                    let (a, present) = props.varint_flag("an optional attribute")?;
                    if present {
                        let a = crate::vhlo::attr_at(self.t, a, &props)?;
                        attrs.push((attr_name.to_string(), a));
                    }
                }
            } else if !name.starts_with("builtin.") && !name.starts_with("sdy.") {
                // Shardy ops (`sdy.mesh`, whose properties JAX writes when the process has
                // several platforms) are skipped by `lower`, so their properties are not read.
                return Err(Error::Unsupported { pos, what: format!("native properties on {name}") });
            }
        }
        let mut result_types = Vec::new();
        if mask & op_mask::RESULTS != 0 {
            let n = cur.count("the number of results")?;
            for _ in 0..n {
                result_types.push(self.ty(cur)?);
            }
        }
        let mut operands = Vec::new();
        if mask & op_mask::OPERANDS != 0 {
            let n = cur.count("the number of operands")?;
            for _ in 0..n {
                operands.push(self.operand(cur)?);
            }
        }
        if mask & op_mask::SUCCESSORS != 0 {
            let n = cur.count("the number of successors")?;
            for _ in 0..n {
                cur.varint("a successor")?;
            }
        }
        if self.t.version >= KIND_USE_LIST_ORDERING && mask & op_mask::USE_LIST_ORDERS != 0 {
            skip_use_lists(cur, result_types.len() as u64)?;
        }
        let mut region_info = None;
        if mask & op_mask::INLINE_REGIONS != 0 {
            let (n, isolated) = cur.varint_flag("a region encoding")?;
            if n > cur.remaining() as u64 + 1 {
                return Err(cur.error(format!("a plausible number of regions, found {n}")));
            }
            region_info = Some((n as usize, isolated));
        }
        // Results are defined before the regions are read, as MLIR does.
        let mut results = Vec::with_capacity(result_types.len());
        for ty in result_types {
            results.push((self.define(cur)?, ty));
        }
        let mut regions = Vec::new();
        if let Some((n, isolated)) = region_info {
            if isolated {
                self.scopes.push(Scope::default());
            }
            let res = if isolated && self.t.version >= KIND_LAZY_LOADING {
                let (id, mut sub) = cur.section()?;
                if id != section::IR {
                    return Err(cur.error("an IR section holding an isolated region"));
                }
                self.regions(&mut sub, n, depth)
            } else {
                self.regions(cur, n, depth)
            };
            if isolated {
                self.scopes.pop();
            }
            regions = res?;
        }
        Ok(Operation { name, operands, results, attrs, regions, pos })
    }

    fn regions(&mut self, cur: &mut Cursor<'a>, n: usize, depth: usize) -> Result<Vec<Region>, Error> {
        let mut out = Vec::with_capacity(n.min(16));
        for _ in 0..n {
            let n_blocks = cur.count("the number of blocks")?;
            if n_blocks == 0 {
                out.push(Region::default());
                continue;
            }
            let n_values = cur.count("the number of values in a region")?;
            let scope = self.scope();
            let start = scope.values.len();
            scope.values.resize(start + n_values, None);
            scope.next.push(start);
            let mut region = Region::default();
            let mut res = Ok(());
            for _ in 0..n_blocks {
                match self.block(cur, depth + 1) {
                    Ok(b) => region.blocks.push(b),
                    Err(e) => {
                        res = Err(e);
                        break;
                    }
                }
            }
            let scope = self.scope();
            scope.values.truncate(start);
            scope.next.pop();
            res?;
            out.push(region);
        }
        Ok(out)
    }
}

/// Skips a use-list order encoding: this reader does not keep use lists.
fn skip_use_lists(cur: &mut Cursor, n_values: u64) -> Result<(), Error> {
    let count = if n_values > 1 { cur.count("the number of use lists")? } else { 1 };
    for _ in 0..count {
        if n_values > 1 {
            cur.varint("a use-list value index")?;
        }
        let (n, _) = cur.varint_flag("a use-list encoding")?;
        if n > cur.remaining() as u64 {
            return Err(cur.error("a plausible use-list length"));
        }
        for _ in 0..n {
            cur.varint("a use-list index")?;
        }
    }
    Ok(())
}
