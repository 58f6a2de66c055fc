//! The generic operation tree both readers produce: operations with operands (value ids),
//! typed results, named attributes and regions of blocks with typed arguments.
//!
//! It mirrors MLIR's generic form so that the bytecode reader and the text reader need not
//! know any op, and the lowering need not know any encoding. Value ids are unique in a whole
//! module (the bytecode's per-region numbering, which reuses ids across sibling regions, is
//! resolved by the reader).

use hlo_ir::DType;

/// An SSA value, unique in the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

/// A type, VHLO's or the builtin dialect's, folded into one vocabulary.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    /// An element type: `i1` is `Pred`, signless integers are signed.
    Scalar(DType),
    Index,
    /// A ranked tensor; a dynamic dimension is `-1` (`?`).
    Tensor {
        dims: Vec<i64>,
        elem: Box<Type>,
    },
    UnrankedTensor(Box<Type>),
    Token,
    Tuple(Vec<Type>),
    Function {
        inputs: Vec<Type>,
        results: Vec<Type>,
    },
    None,
    /// Anything else, as assembly text or a short description.
    Other(String),
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Array(Vec<Attr>),
    Bool(bool),
    /// An enum case by its StableHLO name (`GT`, `FLOAT`, `HIGHEST`, `THREE_FRY`, ...).
    Enum(String),
    Dict(Vec<(String, Attr)>),
    /// A float of type `ty`, as an f64 (exact for every type up to f64).
    Float {
        ty: Type,
        value: f64,
    },
    /// An integer of type `ty`, sign- or zero-extended to i64 as its type says.
    Int {
        ty: Type,
        value: i64,
    },
    String(String),
    /// `@name`.
    SymbolRef(String),
    /// Dense elements of a tensor type: raw little-endian element bytes in row-major order,
    /// one byte per `i1`, a single element when the attribute is a splat.
    Tensor {
        ty: Type,
        data: Vec<u8>,
    },
    Type(Type),
    TypeExtensions(Vec<i64>),
    OutputOperandAlias {
        output_tuple_indices: Vec<i64>,
        operand_index: i64,
        operand_tuple_indices: Vec<i64>,
    },
    Unit,
    /// An attribute this reader does not decode (locations, quantization, sharding meshes, ...).
    Other(String),
}

/// One operation in generic form.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// `dialect.name`, e.g. `vhlo.add_v1` or `stablehlo.add`.
    pub name: String,
    pub operands: Vec<ValueId>,
    pub results: Vec<(ValueId, Type)>,
    pub attrs: Vec<(String, Attr)>,
    pub regions: Vec<Region>,
    /// Where the operation starts: a byte offset in bytecode, `line << 32 | col` in text.
    pub pos: Pos,
}

/// A source position for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pos {
    Byte(usize),
    LineCol(u32, u32),
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pos::Byte(b) => write!(f, "byte {b}"),
            Pos::LineCol(l, c) => write!(f, "{l}:{c}"),
        }
    }
}

impl Operation {
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Region {
    pub blocks: Vec<Block>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Block {
    pub args: Vec<(ValueId, Type)>,
    pub ops: Vec<Operation>,
}
