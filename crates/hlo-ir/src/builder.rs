//! Builders for computations and modules, for tests and for passes that create instructions.
//!
//! [`ComputationBuilder`] appends instructions in arena order, infers each result shape with
//! [`crate::shape_inference`] and names instructions after their opcode and arena index (`add.3`).
//! Like XLA's `XlaBuilder`, it records the first shape error instead of returning a `Result` from every
//! call, and [`ComputationBuilder::finish`] reports it; so a chain of calls stays terse, and an
//! instruction that failed still gets an id (with its operand's shape, or `token[]`, as a placeholder).
//! [`ComputationBuilder::raw`] appends without any checks: it is how tests build invalid IR for the verifier.
//!
//! [`ModuleBuilder`] owns finished computations; a computation builder obtained from it knows the
//! signatures of the computations added so far, so `reduce`, `call`, `sort`, ... can be inferred.
//! Callees must be added before their callers, which keeps XLA's callee-first print order.

use crate::dtype::DType;
use crate::literal::Literal;
use crate::module::{CompId, Computation, Instr, InstrId, Module, ModuleAttrs, ProgramShape, StackFrameIndex};
use crate::op::{BinaryOp, CompareDirection, DotDims, Op, SliceDim, UnaryOp};
use crate::shape::{ArrayShape, Shape};
use crate::shape_inference::{infer_op, ShapeError};

/// The first error met while building a computation.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BuildError {
    #[error("in %{comp}, building %{instr}: {source}")]
    Shape {
        comp: String,
        instr: String,
        #[source]
        source: ShapeError,
    },
    #[error("in %{comp}: {message}")]
    Structure { comp: String, message: String },
}

/// Appends instructions to one computation; see the module docs.
#[derive(Clone, Debug)]
pub struct ComputationBuilder {
    comp: Computation,
    callees: Vec<Option<ProgramShape>>,
    error: Option<BuildError>,
}

impl ComputationBuilder {
    /// A builder that knows no callees (use [`ModuleBuilder::builder`] for ops that call computations).
    pub fn new(name: impl Into<String>) -> ComputationBuilder {
        ComputationBuilder { comp: Computation::new(name), callees: Vec::new(), error: None }
    }

    /// A builder that can call every computation of `module` (a pass building a replacement
    /// computation whose callees are already in place).
    pub fn for_module(name: impl Into<String>, module: &Module) -> ComputationBuilder {
        let mut b = ComputationBuilder::new(name);
        b.callees = module.comps.iter().map(crate::shape_inference::signature).collect();
        b
    }

    /// Makes `comp`, added to the module as `id` after this builder was made, callable.
    pub fn set_callee(&mut self, id: CompId, comp: &Computation) {
        if self.callees.len() <= id.index() {
            self.callees.resize(id.index() + 1, None);
        }
        self.callees[id.index()] = crate::shape_inference::signature(comp);
    }

    /// The shape of an instruction built so far.
    pub fn shape(&self, id: InstrId) -> &Shape {
        &self.comp.instr(id).shape
    }

    /// The array shape of an instruction built so far (`None` for tuples and tokens).
    pub fn array_shape(&self, id: InstrId) -> Option<&ArrayShape> {
        self.shape(id).as_array()
    }

    /// Renames an instruction (auto-names are `opcode.index`).
    pub fn set_name(&mut self, id: InstrId, name: impl Into<String>) {
        self.comp.instr_mut(id).name = name.into();
    }

    /// The computation so far, for inspection.
    pub fn comp(&self) -> &Computation {
        &self.comp
    }

    /// Mutable access to the computation so far, for tests that break invariants on purpose.
    pub fn comp_mut(&mut self) -> &mut Computation {
        &mut self.comp
    }

    /// The next parameter, numbered after the ones already added.
    pub fn param(&mut self, shape: Shape) -> InstrId {
        let number = self.comp.params.len() as u64;
        self.raw(shape, Op::Parameter { number }, &[])
    }

    pub fn constant(&mut self, literal: Literal) -> InstrId {
        let shape = literal.shape.clone();
        self.raw(shape, Op::Constant(Box::new(literal)), &[])
    }

    pub fn unary(&mut self, op: UnaryOp, x: InstrId) -> InstrId {
        self.instr(Op::Unary(op), &[x])
    }

    pub fn binary(&mut self, op: BinaryOp, lhs: InstrId, rhs: InstrId) -> InstrId {
        self.instr(Op::Binary(op), &[lhs, rhs])
    }

    pub fn compare(&mut self, direction: CompareDirection, lhs: InstrId, rhs: InstrId) -> InstrId {
        self.instr(Op::Compare { direction, compare_type: None }, &[lhs, rhs])
    }

    pub fn select(&mut self, pred: InstrId, on_true: InstrId, on_false: InstrId) -> InstrId {
        self.instr(Op::Select, &[pred, on_true, on_false])
    }

    pub fn convert(&mut self, x: InstrId, dtype: DType) -> InstrId {
        let shape = self.with_dtype_of(x, dtype);
        self.instr_with_shape(shape, Op::Convert, &[x])
    }

    /// `broadcast` of `x` into an array of `out_dims`; operand dimension `i` becomes output
    /// dimension `dimensions[i]`.
    pub fn broadcast(&mut self, x: InstrId, dimensions: &[i64], out_dims: &[i64]) -> InstrId {
        let shape = self.with_dims_of(x, out_dims);
        self.instr_with_shape(shape, Op::Broadcast { dimensions: dimensions.to_vec() }, &[x])
    }

    pub fn reshape(&mut self, x: InstrId, out_dims: &[i64]) -> InstrId {
        let shape = self.with_dims_of(x, out_dims);
        self.instr_with_shape(shape, Op::Reshape, &[x])
    }

    pub fn transpose(&mut self, x: InstrId, permutation: &[i64]) -> InstrId {
        self.instr(Op::Transpose { dimensions: permutation.to_vec() }, &[x])
    }

    /// `slice` with `(start, limit, stride)` per dimension.
    pub fn slice(&mut self, x: InstrId, dims: &[(i64, i64, i64)]) -> InstrId {
        let dims = dims.iter().map(|&(start, limit, stride)| SliceDim { start, limit, stride }).collect();
        self.instr(Op::Slice { dims }, &[x])
    }

    pub fn iota(&mut self, shape: ArrayShape, dimension: i64) -> InstrId {
        self.instr_with_shape(Shape::Array(shape), Op::Iota { dimension }, &[])
    }

    pub fn tuple(&mut self, elems: &[InstrId]) -> InstrId {
        self.instr(Op::Tuple, elems)
    }

    pub fn get_tuple_element(&mut self, tuple: InstrId, index: u64) -> InstrId {
        self.instr(Op::GetTupleElement { index }, &[tuple])
    }

    /// A (variadic) `reduce` of `inputs` with `inits` over `dimensions`.
    pub fn reduce(&mut self, inputs: &[InstrId], inits: &[InstrId], dimensions: &[i64], to_apply: CompId) -> InstrId {
        let operands: Vec<InstrId> = inputs.iter().chain(inits).copied().collect();
        self.instr(Op::Reduce { dimensions: dimensions.to_vec(), to_apply }, &operands)
    }

    /// A `dot` whose result element type is the lhs's.
    pub fn dot(&mut self, lhs: InstrId, rhs: InstrId, dims: DotDims) -> InstrId {
        self.instr(Op::Dot { dims, precision: Vec::new(), algorithm: None }, &[lhs, rhs])
    }

    pub fn call(&mut self, to_apply: CompId, args: &[InstrId]) -> InstrId {
        self.instr(Op::Call { to_apply, is_composite: false }, args)
    }

    /// Any op whose result shape follows from its operands and attributes alone.
    pub fn instr(&mut self, op: Op, operands: &[InstrId]) -> InstrId {
        self.build(None, op, operands)
    }

    /// Any op with a declared result shape, checked against inference where the op has one
    /// (ops such as `custom-call` are accepted as declared).
    pub fn instr_with_shape(&mut self, shape: Shape, op: Op, operands: &[InstrId]) -> InstrId {
        self.build(Some(shape), op, operands)
    }

    /// Appends an instruction without any check (parameters are still registered by number).
    pub fn raw(&mut self, shape: Shape, op: Op, operands: &[InstrId]) -> InstrId {
        let name = format!("{}.{}", op.opcode().name(), self.comp.instrs.len());
        self.comp.push(Instr::new(name, shape, op, operands.to_vec()))
    }

    /// The computation with the last instruction as its root, or the first error met.
    pub fn finish(self) -> Result<Computation, BuildError> {
        let Some(last) = self.comp.instrs.len().checked_sub(1) else {
            return Err(BuildError::Structure { comp: self.comp.name, message: "has no instructions".into() });
        };
        self.finish_with_root(InstrId::from_index(last))
    }

    pub fn finish_with_root(mut self, root: InstrId) -> Result<Computation, BuildError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        if root.index() >= self.comp.instrs.len() {
            return Err(BuildError::Structure {
                comp: self.comp.name,
                message: format!("root {root:?} does not exist"),
            });
        }
        self.comp.root = root;
        Ok(self.comp)
    }

    fn build(&mut self, declared: Option<Shape>, op: Op, operands: &[InstrId]) -> InstrId {
        let name = format!("{}.{}", op.opcode().name(), self.comp.instrs.len());
        let result = match operands.iter().enumerate().find(|(_, o)| o.index() >= self.comp.instrs.len()) {
            Some((index, &id)) => Err(ShapeError::NoSuchOperand { op: op.opcode(), index, id }),
            None => {
                let shapes: Vec<&Shape> = operands.iter().map(|&o| &self.comp.instr(o).shape).collect();
                let callees = &self.callees;
                let callee = |c: CompId| callees.get(c.index()).cloned().flatten();
                infer_op(&op, &shapes, declared.as_ref(), &callee)
            }
        };
        let shape = match (result, declared) {
            (Ok(Some(inferred)), Some(declared)) => {
                if !crate::shape_inference::same_shape(&inferred, &declared) {
                    self.record(
                        &name,
                        ShapeError::Invalid {
                            op: op.opcode(),
                            message: format!("declared shape {declared} does not match the inferred shape {inferred}"),
                        },
                    );
                }
                declared
            }
            (Ok(Some(inferred)), None) => inferred,
            (Ok(None), Some(declared)) => declared,
            (Ok(None), None) => {
                self.record(
                    &name,
                    ShapeError::NeedsDeclaredShape { op: op.opcode(), expected: "result", got: "none".into() },
                );
                Shape::Token
            }
            (Err(err), declared) => {
                self.record(&name, err);
                let placeholder =
                    operands.first().and_then(|o| self.comp.instrs.get(o.index())).map(|i| i.shape.clone());
                declared.or(placeholder).unwrap_or(Shape::Token)
            }
        };
        self.comp.push(Instr::new(name, shape, op, operands.to_vec()))
    }

    fn record(&mut self, instr: &str, source: ShapeError) {
        if self.error.is_none() {
            self.error = Some(BuildError::Shape { comp: self.comp.name.clone(), instr: instr.to_string(), source });
        }
    }

    fn with_dtype_of(&self, x: InstrId, dtype: DType) -> Shape {
        let dims =
            self.comp.instrs.get(x.index()).and_then(|i| i.shape.as_array()).map_or_else(Vec::new, |a| a.dims.clone());
        Shape::array(dtype, dims)
    }

    fn with_dims_of(&self, x: InstrId, dims: &[i64]) -> Shape {
        let dtype = self.comp.instrs.get(x.index()).and_then(|i| i.shape.dtype()).unwrap_or(DType::F32);
        Shape::array(dtype, dims)
    }
}

/// Collects computations (callees first) into a [`Module`].
#[derive(Clone, Debug)]
pub struct ModuleBuilder {
    name: String,
    comps: Vec<Computation>,
}

impl ModuleBuilder {
    pub fn new(name: impl Into<String>) -> ModuleBuilder {
        ModuleBuilder { name: name.into(), comps: Vec::new() }
    }

    /// A computation builder that can call every computation added so far.
    pub fn builder(&self, name: impl Into<String>) -> ComputationBuilder {
        let mut b = ComputationBuilder::new(name);
        b.callees = self.comps.iter().map(crate::shape_inference::signature).collect();
        b
    }

    /// Adds a finished computation and returns its id.
    pub fn add(&mut self, comp: Computation) -> CompId {
        self.comps.push(comp);
        CompId(self.comps.len() as u32 - 1)
    }

    /// Adds `(x: T[], y: T[]) -> op(x, y)`, the usual `to_apply` of a reduce or scatter.
    pub fn scalar_reducer(&mut self, name: impl Into<String>, op: BinaryOp, dtype: DType) -> CompId {
        self.scalar_computation(name, Op::Binary(op), dtype)
    }

    /// Adds `(a: T[], b: T[]) -> compare(a, b)`, a sort comparator on one operand of type `dtype`.
    pub fn scalar_comparator(&mut self, name: impl Into<String>, direction: CompareDirection, dtype: DType) -> CompId {
        self.scalar_computation(name, Op::Compare { direction, compare_type: None }, dtype)
    }

    /// `(x: T[], y: T[]) -> op(x, y)`. Built unchecked, so that a type error (`and` on `f32`)
    /// surfaces from the verifier at the op instead of panicking here.
    fn scalar_computation(&mut self, name: impl Into<String>, op: Op, dtype: DType) -> CompId {
        let scalar = Shape::scalar(dtype);
        let result = match &op {
            Op::Compare { .. } => Shape::scalar(DType::Pred),
            _ => scalar.clone(),
        };
        let mut b = ComputationBuilder::new(name);
        let x = b.param(scalar.clone());
        let y = b.param(scalar);
        let root = b.raw(result, op, &[x, y]);
        let mut comp = b.comp;
        comp.root = root;
        self.add(comp)
    }

    pub fn comps(&self) -> &[Computation] {
        &self.comps
    }

    /// The module, with `entry` as its entry computation.
    pub fn finish(self, entry: CompId) -> Module {
        Module {
            name: self.name,
            attrs: ModuleAttrs::default(),
            comps: self.comps,
            entry,
            stack_frames: StackFrameIndex::default(),
            dynamic_results: None,
        }
    }
}
