//! Modules, computations and instructions, stored in arenas with typed ids.
//!
//! A [`Computation`] owns its instructions in a `Vec<Instr>` indexed by
//! [`InstrId`]; a [`Module`] owns its computations indexed by [`CompId`].
//! Invariant (checked by the verifier): an instruction's operands and control
//! predecessors have smaller ids than the instruction itself, so arena order
//! is a topological order and a single forward scan evaluates a computation.
//! Source spans live in a parallel vector, so comparing IR ignores positions.

use crate::op::Op;
use crate::shape::Shape;
use std::fmt;
use std::num::NonZeroU32;

/// An instruction's index within its computation. `Option<InstrId>` is one word.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstrId(NonZeroU32);

impl InstrId {
    pub fn from_index(index: usize) -> InstrId {
        let raw = u32::try_from(index + 1).expect("more than u32::MAX instructions");
        InstrId(NonZeroU32::new(raw).expect("index + 1 is never zero"))
    }
    pub fn index(self) -> usize {
        self.0.get() as usize - 1
    }
}

impl fmt::Debug for InstrId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "i{}", self.index())
    }
}

/// A computation's index within its module.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CompId(pub u32);

impl CompId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for CompId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// A byte range in the source text an item was parsed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

/// `metadata={...}`: where an instruction came from. Only printed back, never acted on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpMetadata {
    pub op_type: Option<String>,
    pub op_name: Option<String>,
    pub source_file: Option<String>,
    pub source_line: Option<i64>,
    pub source_end_line: Option<i64>,
    pub source_column: Option<i64>,
    pub source_end_column: Option<i64>,
    pub stack_frame_id: Option<i64>,
    pub deduplicated_name: Option<String>,
    pub scheduling_name: Option<String>,
    /// Any other `key=value` items, verbatim, in order.
    pub other: Vec<(String, String)>,
}

/// Attributes every instruction may carry that do not change what it computes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstrMeta {
    pub metadata: Option<OpMetadata>,
    /// `backend_config=...` exactly as written (a quoted string or a `{...}` JSON object).
    pub backend_config: Option<String>,
    /// `frontend_attributes={key="value", ...}`.
    pub frontend_attributes: Vec<(String, String)>,
    /// `sharding={...}`, verbatim including braces.
    pub sharding: Option<String>,
    /// `control-predecessors={%a, %b}`.
    pub control_predecessors: Vec<InstrId>,
    /// Attributes this IR does not model (`replica_groups`, `statistics`, `origin`, ...),
    /// as `(name, verbatim value)` in source order, printed back after the typed ones.
    pub other_attrs: Vec<(String, String)>,
}

/// One instruction: `name = shape op(operands), attributes`.
#[derive(Clone, Debug, PartialEq)]
pub struct Instr {
    pub name: String,
    pub shape: Shape,
    pub op: Op,
    pub operands: Vec<InstrId>,
    pub meta: InstrMeta,
}

impl Instr {
    pub fn new(name: impl Into<String>, shape: Shape, op: Op, operands: Vec<InstrId>) -> Instr {
        Instr { name: name.into(), shape, op, operands, meta: InstrMeta::default() }
    }
}

/// A computation: a DAG of instructions with one root.
///
/// Equality ignores `spans` (see the module docs): a module and its printed-and-reparsed
/// copy compare equal.
#[derive(Clone, Debug)]
pub struct Computation {
    pub name: String,
    /// The arena; see the module docs for the ordering invariant.
    pub instrs: Vec<Instr>,
    /// Source span of each instruction (empty spans for built instructions).
    pub spans: Vec<Span>,
    /// Parameter instructions by parameter number.
    pub params: Vec<InstrId>,
    pub root: InstrId,
    /// `execution_thread="..."` after the closing brace, if not the main thread.
    pub execution_thread: Option<String>,
}

impl PartialEq for Computation {
    fn eq(&self, other: &Computation) -> bool {
        let Computation { name, instrs, spans: _, params, root, execution_thread } = self;
        *name == other.name
            && *instrs == other.instrs
            && *params == other.params
            && *root == other.root
            && *execution_thread == other.execution_thread
    }
}

impl Computation {
    /// An empty computation; `root` must be set once instructions are added.
    pub fn new(name: impl Into<String>) -> Computation {
        Computation {
            name: name.into(),
            instrs: Vec::new(),
            spans: Vec::new(),
            params: Vec::new(),
            root: InstrId::from_index(0),
            execution_thread: None,
        }
    }

    /// Appends an instruction and returns its id. Parameters are registered in `params`.
    pub fn push(&mut self, instr: Instr) -> InstrId {
        self.push_with_span(instr, Span::default())
    }

    pub fn push_with_span(&mut self, instr: Instr, span: Span) -> InstrId {
        let id = InstrId::from_index(self.instrs.len());
        if let Op::Parameter { number } = instr.op {
            let number = number as usize;
            if self.params.len() <= number {
                self.params.resize(number + 1, id);
            }
            self.params[number] = id;
        }
        self.instrs.push(instr);
        self.spans.push(span);
        id
    }

    pub fn instr(&self, id: InstrId) -> &Instr {
        &self.instrs[id.index()]
    }

    pub fn instr_mut(&mut self, id: InstrId) -> &mut Instr {
        &mut self.instrs[id.index()]
    }

    pub fn root_instr(&self) -> &Instr {
        self.instr(self.root)
    }

    pub fn ids(&self) -> impl Iterator<Item = InstrId> + '_ {
        (0..self.instrs.len()).map(InstrId::from_index)
    }

    pub fn span(&self, id: InstrId) -> Span {
        self.spans.get(id.index()).copied().unwrap_or_default()
    }

    /// Shapes of the parameters in order.
    pub fn param_shapes(&self) -> Vec<&Shape> {
        self.params.iter().map(|&p| &self.instr(p).shape).collect()
    }

    /// Finds an instruction by name.
    pub fn find(&self, name: &str) -> Option<InstrId> {
        self.ids().find(|&id| self.instr(id).name == name)
    }
}

/// `entry_computation_layout={(params...)->result}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramShape {
    pub params: Vec<Shape>,
    pub result: Shape,
}

/// `FileLocations` entry of the stack-frame sections newer XLA prints.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FileLocation {
    pub file_name_id: i64,
    pub function_name_id: i64,
    pub line: i64,
    pub end_line: i64,
    pub column: i64,
    pub end_column: i64,
}

/// `StackFrames` entry.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StackFrame {
    pub file_location_id: i64,
    pub parent_frame_id: i64,
}

/// The `FileNames`/`FunctionNames`/`FileLocations`/`StackFrames` sections
/// that follow the computations in newer dumps. Ids are as written (1-based).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StackFrameIndex {
    pub file_names: Vec<(i64, String)>,
    pub function_names: Vec<(i64, String)>,
    pub file_locations: Vec<(i64, FileLocation)>,
    pub stack_frames: Vec<(i64, StackFrame)>,
}

impl StackFrameIndex {
    pub fn is_empty(&self) -> bool {
        self.file_names.is_empty()
            && self.function_names.is_empty()
            && self.file_locations.is_empty()
            && self.stack_frames.is_empty()
    }
}

/// Header attributes of `HloModule name, key=value, ...`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleAttrs {
    pub is_scheduled: bool,
    pub entry_computation_layout: Option<ProgramShape>,
    /// `input_output_alias=`, `buffer_donor=`, `num_partitions=`, `frontend_attributes=`, ...:
    /// `(name, verbatim value)` in source order.
    pub other: Vec<(String, String)>,
}

/// A whole HLO module.
#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    pub name: String,
    pub attrs: ModuleAttrs,
    /// Computations in print order (callees before callers, entry last in XLA's dumps).
    pub comps: Vec<Computation>,
    pub entry: CompId,
    pub stack_frames: StackFrameIndex,
    /// Set by `dynamic-padder` when the entry's result has sizes only the run knows: what the
    /// caller does to the result leaves (not printed; `None` for every module as parsed).
    pub dynamic_results: Option<DynamicResults>,
}

/// How to turn the entry's result leaves, once every bounded dynamic shape was padded to its
/// bound, back into XLA's result: each leaf cut to its runtime sizes, the size leaves dropped.
/// Leaves are the array leaves of the root's shape, depth first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DynamicResults {
    /// The leaves the caller sees (the module's own result); every leaf from here on is an
    /// `s32[]` size that the run appended.
    pub visible_leaves: usize,
    /// Visible leaves to cut along a dimension to the size in another leaf.
    pub cuts: Vec<DynamicCut>,
    /// Sizes given to `set-dimension-size` at run time, to check against their bounds.
    pub checks: Vec<SizeCheck>,
}

/// Leaf `leaf` holds only the first `size` (the value of leaf `size_leaf`) elements along `dim`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicCut {
    pub leaf: usize,
    pub dim: usize,
    pub size_leaf: usize,
}

/// Leaf `size_leaf` is a size that `set-dimension-size` instruction `instr` set at run time:
/// it must lie in `0..=bound`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SizeCheck {
    pub size_leaf: usize,
    pub bound: i64,
    pub instr: String,
}

/// One result leaf as the run returns it: dimensions and row-major element bytes.
pub type LeafBytes = (Vec<i64>, Vec<u8>);

impl DynamicResults {
    /// XLA's result from the padded one: checks every size, cuts each leaf to its sizes and
    /// drops the size leaves (`s32[]`, little-endian). An error names the failed check.
    pub fn apply(&self, mut leaves: Vec<LeafBytes>) -> Result<Vec<LeafBytes>, String> {
        let size_of = |leaves: &[LeafBytes], k: usize| -> Result<i64, String> {
            match leaves.get(k) {
                Some((dims, bytes)) if dims.is_empty() && bytes.len() == 4 => {
                    Ok(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as i64)
                }
                _ => Err(format!("result leaf {k} is not the s32[] size the padded module appended")),
            }
        };
        for c in &self.checks {
            let size = size_of(&leaves, c.size_leaf)?;
            if size < 0 || size > c.bound {
                return Err(format!(
                    "set-dimension-size (%{}): the size {size} given at run time is outside 0..={}, the bound of its \
                     dimension",
                    c.instr, c.bound
                ));
            }
        }
        for cut in &self.cuts {
            let size = size_of(&leaves, cut.size_leaf)?;
            let (dims, bytes) = leaves.get_mut(cut.leaf).ok_or_else(|| format!("no result leaf {}", cut.leaf))?;
            let bound =
                *dims.get(cut.dim).ok_or_else(|| format!("result leaf {} has no dimension {}", cut.leaf, cut.dim))?;
            if size < 0 || size > bound {
                return Err(format!(
                    "result leaf {}: the size {size} of dimension {} is outside 0..={bound}",
                    cut.leaf, cut.dim
                ));
            }
            let elements: i64 = dims.iter().product();
            if elements == 0 {
                dims[cut.dim] = size;
                continue;
            }
            if bytes.len() % elements as usize != 0 || bytes.len() < elements as usize {
                return Err(format!("result leaf {} packs its elements below a byte: it cannot be cut", cut.leaf));
            }
            let elem = bytes.len() / elements as usize;
            let inner: usize = dims[cut.dim + 1..].iter().product::<i64>() as usize * elem;
            let outer: usize = dims[..cut.dim].iter().product::<i64>() as usize;
            let (row, keep) = (bound as usize * inner, size as usize * inner);
            let mut cut_bytes = Vec::with_capacity(outer * keep);
            for o in 0..outer {
                cut_bytes.extend_from_slice(&bytes[o * row..o * row + keep]);
            }
            *bytes = cut_bytes;
            dims[cut.dim] = size;
        }
        leaves.truncate(self.visible_leaves);
        Ok(leaves)
    }
}

impl Module {
    pub fn comp(&self, id: CompId) -> &Computation {
        &self.comps[id.index()]
    }

    pub fn comp_mut(&mut self, id: CompId) -> &mut Computation {
        &mut self.comps[id.index()]
    }

    pub fn entry_comp(&self) -> &Computation {
        self.comp(self.entry)
    }

    pub fn comp_ids(&self) -> impl Iterator<Item = CompId> + '_ {
        (0..self.comps.len() as u32).map(CompId)
    }

    pub fn find_comp(&self, name: &str) -> Option<CompId> {
        self.comp_ids().find(|&id| self.comp(id).name == name)
    }

    /// Total number of instructions in all computations.
    pub fn instr_count(&self) -> usize {
        self.comps.iter().map(|c| c.instrs.len()).sum()
    }
}

#[cfg(test)]
mod dynamic_results_tests {
    use super::*;

    fn s32(v: i32) -> LeafBytes {
        (vec![], v.to_le_bytes().to_vec())
    }

    #[test]
    fn apply_cuts_checks_and_drops_the_size_leaves() {
        // f32[2,3] padded from [2,<=3] with size 2, then its size leaf.
        let data: Vec<u8> = (0u8..24).collect();
        let results = DynamicResults {
            visible_leaves: 1,
            cuts: vec![DynamicCut { leaf: 0, dim: 1, size_leaf: 1 }],
            checks: vec![SizeCheck { size_leaf: 1, bound: 3, instr: "s".into() }],
        };
        let out = results.apply(vec![(vec![2, 3], data.clone()), s32(2)]).unwrap();
        let want: Vec<u8> = [0..8, 12..20].into_iter().flatten().collect();
        assert_eq!(out, vec![(vec![2, 2], want)]);
        let out = results.apply(vec![(vec![2, 3], data.clone()), s32(0)]).unwrap();
        assert_eq!(out, vec![(vec![2, 0], vec![])]);
        let err = results.apply(vec![(vec![2, 3], data), s32(4)]).unwrap_err();
        assert!(err.contains("%s") && err.contains("outside 0..=3"), "{err}");
    }
}
