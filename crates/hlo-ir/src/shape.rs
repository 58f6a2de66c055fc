//! Shapes: arrays (element type, dimensions, optional layout), tuples, tokens.

use crate::dtype::DType;
use std::fmt;

/// One dimension of a tile in a tiled layout: `T(8,128)`. XLA writes the
/// "combine this dimension with the next" marker as `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TileDim {
    Size(i64),
    Combined,
}

/// A physical layout as XLA prints it inside `{...}` after the dimensions.
///
/// Only `minor_to_major` changes how a dense array is laid out in memory for
/// this project (tiling and memory spaces are backend hints we read and keep
/// for printing, but do not act on).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Dimension numbers from most-minor (fastest varying) to most-major.
    pub minor_to_major: Vec<i64>,
    /// `T(a,b)(c,d)`: a sequence of tiles.
    pub tiles: Vec<Vec<TileDim>>,
    /// `E(n)`: element size in bits when it differs from the type's.
    pub element_size_in_bits: Option<i64>,
    /// `S(n)`: memory space.
    pub memory_space: Option<i64>,
    /// Rarer layout items (`D(...)`, `L(n)`, `#(...)`, `*(...)`, `SC(...)`, `M(n)`), kept verbatim
    /// and in order so that printing reproduces them.
    pub other: Vec<String>,
}

impl Layout {
    /// The default (row-major) layout of a rank-`rank` array: `{rank-1,...,1,0}`.
    pub fn row_major(rank: usize) -> Layout {
        Layout { minor_to_major: (0..rank as i64).rev().collect(), ..Layout::default() }
    }

    /// True when this layout describes the dense row-major order of a rank-`rank` array.
    pub fn is_row_major(&self, rank: usize) -> bool {
        self.minor_to_major.len() == rank && self.minor_to_major.iter().rev().copied().eq(0..rank as i64)
    }
}

/// A dense array shape. A dimension marked dynamic has `dims[i]` as its upper
/// bound (`<=N` in text); an unbounded dynamic dimension (`?`) has `dims[i] == -1`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArrayShape {
    pub dtype: DType,
    pub dims: Vec<i64>,
    pub dynamic: Vec<bool>,
    pub layout: Option<Layout>,
}

impl ArrayShape {
    /// A static array shape without an explicit layout.
    pub fn new(dtype: DType, dims: impl Into<Vec<i64>>) -> ArrayShape {
        let dims = dims.into();
        let dynamic = vec![false; dims.len()];
        ArrayShape { dtype, dims, dynamic, layout: None }
    }

    pub fn scalar(dtype: DType) -> ArrayShape {
        ArrayShape::new(dtype, Vec::new())
    }

    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// Number of elements (using the bound of dynamic dimensions).
    pub fn num_elements(&self) -> u64 {
        self.dims.iter().map(|&d| d.max(0) as u64).product()
    }

    /// Same element type and dimensions, ignoring layout.
    pub fn compatible(&self, other: &ArrayShape) -> bool {
        self.dtype == other.dtype && self.dims == other.dims && self.dynamic == other.dynamic
    }

    /// Same dimensions, any element type.
    pub fn same_dims(&self, other: &ArrayShape) -> bool {
        self.dims == other.dims
    }

    /// This shape with another element type (layout dropped).
    pub fn with_dtype(&self, dtype: DType) -> ArrayShape {
        ArrayShape { dtype, dims: self.dims.clone(), dynamic: self.dynamic.clone(), layout: None }
    }

    /// The `minor_to_major` order in effect: the explicit layout's, or row-major.
    pub fn minor_to_major(&self) -> Vec<i64> {
        match &self.layout {
            Some(layout) if layout.minor_to_major.len() == self.rank() => layout.minor_to_major.clone(),
            _ => Layout::row_major(self.rank()).minor_to_major,
        }
    }

    /// True when elements are stored in plain row-major order.
    pub fn is_row_major(&self) -> bool {
        match &self.layout {
            Some(layout) => layout.minor_to_major.is_empty() || layout.is_row_major(self.rank()),
            None => true,
        }
    }
}

/// Any HLO shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    Array(ArrayShape),
    Tuple(Vec<Shape>),
    Token,
}

impl Shape {
    pub fn array(dtype: DType, dims: impl Into<Vec<i64>>) -> Shape {
        Shape::Array(ArrayShape::new(dtype, dims))
    }

    pub fn scalar(dtype: DType) -> Shape {
        Shape::Array(ArrayShape::scalar(dtype))
    }

    pub fn as_array(&self) -> Option<&ArrayShape> {
        match self {
            Shape::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_tuple(&self) -> Option<&[Shape]> {
        match self {
            Shape::Tuple(t) => Some(t),
            _ => None,
        }
    }

    pub fn is_tuple(&self) -> bool {
        matches!(self, Shape::Tuple(_))
    }

    /// Element type of an array shape.
    pub fn dtype(&self) -> Option<DType> {
        self.as_array().map(|a| a.dtype)
    }

    /// Structural equality ignoring layouts, recursively through tuples.
    pub fn compatible(&self, other: &Shape) -> bool {
        match (self, other) {
            (Shape::Array(a), Shape::Array(b)) => a.compatible(b),
            (Shape::Tuple(a), Shape::Tuple(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.compatible(y)),
            (Shape::Token, Shape::Token) => true,
            _ => false,
        }
    }

    /// The array leaves of this shape, depth first (the flattening JAX uses for results).
    pub fn leaves(&self) -> Vec<&ArrayShape> {
        let mut out = Vec::new();
        fn walk<'a>(shape: &'a Shape, out: &mut Vec<&'a ArrayShape>) {
            match shape {
                Shape::Array(a) => out.push(a),
                Shape::Tuple(elems) => elems.iter().for_each(|e| walk(e, out)),
                Shape::Token => {}
            }
        }
        walk(self, &mut out);
        out
    }

    /// The sub-shape at a tuple index path.
    pub fn subshape(&self, index: &[usize]) -> Option<&Shape> {
        let mut cur = self;
        for &i in index {
            cur = cur.as_tuple()?.get(i)?;
        }
        Some(cur)
    }
}

impl fmt::Display for TileDim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TileDim::Size(n) => write!(f, "{n}"),
            TileDim::Combined => f.write_str("*"),
        }
    }
}

impl fmt::Display for Layout {
    /// Prints `{1,0:T(8,128)E(16)S(1)}`, matching XLA's `Layout::ToString`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        write_joined(f, &self.minor_to_major, ",")?;
        let has_extras = !self.tiles.is_empty()
            || self.element_size_in_bits.is_some()
            || self.memory_space.is_some()
            || !self.other.is_empty();
        if has_extras {
            f.write_str(":")?;
            // XLA's order: D, T, L, #, *, E, S, SC, M. We keep `other` items
            // that precede T (D) first, then T, then the rest by their tags.
            for item in self.other.iter().filter(|s| s.starts_with("D(")) {
                f.write_str(item)?;
            }
            if !self.tiles.is_empty() {
                f.write_str("T")?;
                for tile in &self.tiles {
                    f.write_str("(")?;
                    write_joined(f, tile, ",")?;
                    f.write_str(")")?;
                }
            }
            for item in self.other.iter().filter(|s| s.starts_with("L(") || s.starts_with("#(") || s.starts_with("*("))
            {
                f.write_str(item)?;
            }
            if let Some(bits) = self.element_size_in_bits {
                write!(f, "E({bits})")?;
            }
            if let Some(space) = self.memory_space {
                write!(f, "S({space})")?;
            }
            for item in self.other.iter().filter(|s| s.starts_with("SC(") || s.starts_with("M(")) {
                f.write_str(item)?;
            }
        }
        f.write_str("}")
    }
}

impl fmt::Display for ArrayShape {
    /// Prints `f32[2,<=3]{1,0}` as XLA does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, (&d, &dynamic)) in self.dims.iter().zip(&self.dynamic).enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match (dynamic, d) {
                (true, -1) => f.write_str("?")?,
                (true, d) => write!(f, "<={d}")?,
                (false, d) => write!(f, "{d}")?,
            }
        }
        f.write_str("]")?;
        if let Some(layout) = &self.layout {
            write!(f, "{layout}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Array(a) => write!(f, "{a}"),
            Shape::Tuple(elems) => {
                f.write_str("(")?;
                write_joined(f, elems, ", ")?;
                f.write_str(")")
            }
            Shape::Token => f.write_str("token[]"),
        }
    }
}

/// Writes `items` separated by `sep`.
pub(crate) fn write_joined<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T], sep: &str) -> fmt::Result {
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{it}")?;
    }
    Ok(())
}
