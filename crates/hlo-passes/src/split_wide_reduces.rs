//! `split-wide-reduces`: a variadic `reduce` or `scatter` whose kernel would bind more storage
//! buffers than the device allows one kernel (a reduce: its arrays, its non-constant init values,
//! its results and a status word, `3n + 1` for `n` arrays reduced from parameters; a scatter: its
//! operands, updates and results, the indices and a status word, `3n + 2`) becomes several
//! narrower ones, one per group of results that its computation produces independently of the
//! others (a tuple of 12 sums, not an argmax), packed up to the limit; the original becomes a
//! tuple of their results. Both ops give their computation `2n` scalar parameters, result `k`'s
//! running value first and its new element (init value or update) `n` later, so one analysis of
//! the computation serves both.
//!
//! Results whose computation couples them (result `i` reads argument `j`) go together where they
//! fit the limit. A coupled group that does not is split by what each result needs: the closure
//! of the arguments it reads (an argmax's payload `k` needs the compared value and `k`), so that
//! each narrower op recomputes the results its own ones depend on (the compared value, in every
//! reduce) and yields exactly the values the wide one would. For a scatter this holds whatever
//! the order it applies updates in: a closure's running values depend only on the closure's own
//! operands and updates. Only a result whose closure alone exceeds the limit stays wide, and code
//! generation refuses it by name.
//!
//! Pre-condition: none. Post-condition: every variadic reduce or scatter that needs more than the
//! limit has a result whose closure needs more than the limit.

use crate::util::{compact, order_callees_first, uniform_constant, NameUniquer};
use crate::PassError;
use hlo_ir::{CompId, Computation, Instr, InstrId, Module, Op, Shape};
use std::collections::BTreeSet;

/// The pass at the default binding limit (`fuse::DEFAULT_MAX_KERNEL_BUFFERS`).
pub fn run(module: &mut Module) -> Result<bool, PassError> {
    run_with_limit(module, crate::fuse::DEFAULT_MAX_KERNEL_BUFFERS)
}

/// The pass for a device whose kernels may bind at most `max_buffers` storage buffers.
pub fn run_with_limit(module: &mut Module, max_buffers: u32) -> Result<bool, PassError> {
    let _span = tracing::info_span!("split-wide-reduces").entered();
    let max = max_buffers as usize;
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    for c in 0..module.comps.len() {
        let ids: Vec<InstrId> = module.comps[c].ids().collect();
        let mut comp_changed = false;
        for id in ids {
            comp_changed |= split(module, c, id, max, &mut names);
        }
        if comp_changed {
            compact(&mut module.comps[c])?;
            changed = true;
        }
    }
    if changed {
        order_callees_first(module);
    }
    Ok(changed)
}

/// A variadic reduce or scatter of `n` results: where its operands sit.
#[derive(Clone, Copy)]
enum Wide {
    /// `reduce(arrays.., inits..)`.
    Reduce { n: usize },
    /// `scatter(operands.., indices, updates..)`.
    Scatter { n: usize },
}

impl Wide {
    fn of(instr: &Instr) -> Option<(Wide, CompId)> {
        match &instr.op {
            Op::Reduce { to_apply, .. } => Some((Wide::Reduce { n: instr.operands.len() / 2 }, *to_apply)),
            Op::Scatter { to_apply, .. } => Some((Wide::Scatter { n: (instr.operands.len() - 1) / 2 }, *to_apply)),
            _ => None,
        }
    }

    fn n(self) -> usize {
        match self {
            Wide::Reduce { n } | Wide::Scatter { n } => n,
        }
    }

    /// The operands result `k` folds: its array or scatter operand, and its init or updates.
    fn pair(self, operands: &[InstrId], k: usize) -> [InstrId; 2] {
        match self {
            Wide::Reduce { n } => [operands[k], operands[n + k]],
            Wide::Scatter { n } => [operands[k], operands[n + 1 + k]],
        }
    }

    /// The operands of the narrower op computing the results `group`, in its operand order.
    fn operands(self, operands: &[InstrId], group: &[usize]) -> Vec<InstrId> {
        let firsts = group.iter().map(|&k| self.pair(operands, k)[0]);
        let seconds = group.iter().map(|&k| self.pair(operands, k)[1]);
        match self {
            Wide::Reduce { .. } => firsts.chain(seconds).collect(),
            Wide::Scatter { n } => firsts.chain([operands[n]]).chain(seconds).collect(),
        }
    }

    /// The storage buffers the op's kernel for the results `group` binds: its distinct arrays
    /// (but uniform constants, which are literals in the kernel), a scatter's indices, one output
    /// per result and a status word.
    fn buffers(self, comp: &Computation, operands: &[InstrId], group: &[usize]) -> usize {
        let reads: BTreeSet<InstrId> = group
            .iter()
            .flat_map(|&k| self.pair(operands, k))
            .filter(|&o| uniform_constant(comp, o).is_none())
            .collect();
        let indices = usize::from(matches!(self, Wide::Scatter { .. }));
        reads.len() + indices + group.len() + 1
    }
}

/// The reducer's results as groups that read only their own arguments, in result order; `None`
/// when its root is not a tuple of `n` results.
fn independent_groups(reducer: &Computation, n: usize) -> Option<Vec<Vec<usize>>> {
    let root = reducer.instr(reducer.root);
    if !matches!(root.op, Op::Tuple) || root.operands.len() != n || reducer.params.len() != 2 * n {
        return None;
    }
    let reads = operands_read(reducer, n);
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut k: usize) -> usize {
        while parent[k] != k {
            parent[k] = parent[parent[k]];
            k = parent[k];
        }
        k
    }
    for (k, &result) in root.operands.iter().enumerate() {
        for &j in &reads[result.index()] {
            let (a, b) = (find(&mut parent, k), find(&mut parent, j));
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of = vec![usize::MAX; n];
    for k in 0..n {
        let r = find(&mut parent, k);
        if group_of[r] == usize::MAX {
            group_of[r] = groups.len();
            groups.push(Vec::new());
        }
        groups[group_of[r]].push(k);
    }
    Some(groups)
}

/// For each instruction of `reducer` (taking `2n` parameters), the operands (`0..n`, accumulator
/// and value alike) it reads, transitively; the arena is in topological order.
fn operands_read(reducer: &Computation, n: usize) -> Vec<BTreeSet<usize>> {
    let mut reads: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); reducer.instrs.len()];
    for id in reducer.ids() {
        let instr = reducer.instr(id);
        let mut set = BTreeSet::new();
        if let Op::Parameter { number } = instr.op {
            set.insert(number as usize % n);
        }
        for &o in &instr.operands {
            set.extend(reads[o.index()].iter().copied());
        }
        reads[id.index()] = set;
    }
    reads
}

/// Result `k` of the reducer and every result it reads, transitively: the results a reduce
/// must compute to yield `k` exactly.
fn closure(reducer: &Computation, n: usize, k: usize) -> Vec<usize> {
    let root = reducer.instr(reducer.root);
    let reads = operands_read(reducer, n);
    let mut set = BTreeSet::from([k]);
    let mut todo = vec![k];
    while let Some(j) = todo.pop() {
        for &m in &reads[root.operands[j].index()] {
            if set.insert(m) {
                todo.push(m);
            }
        }
    }
    set.into_iter().collect()
}

/// The reducer restricted to the results `group` (renumbered in order), with only the
/// instructions they need.
fn sub_reducer(reducer: &Computation, n: usize, group: &[usize], names: &mut NameUniquer) -> Computation {
    let root = reducer.instr(reducer.root);
    let mut needed = vec![false; reducer.instrs.len()];
    for &k in group {
        needed[root.operands[k].index()] = true;
    }
    for id in (0..reducer.instrs.len()).rev().map(InstrId::from_index) {
        if needed[id.index()] {
            for &o in &reducer.instr(id).operands {
                needed[o.index()] = true;
            }
        }
    }
    // Every argument of the group is a parameter of the new reducer, used or not.
    for &k in group {
        needed[reducer.params[k].index()] = true;
        needed[reducer.params[n + k].index()] = true;
    }
    let m = group.len();
    let mut out = Computation::new(names.fresh(&format!("{}.split", reducer.name)));
    let mut map: Vec<Option<InstrId>> = vec![None; reducer.instrs.len()];
    for id in reducer.ids().filter(|id| needed[id.index()]) {
        let mut instr = reducer.instr(id).clone();
        instr.name = names.fresh(&instr.name);
        if let Op::Parameter { number } = instr.op {
            let (half, k) = ((number as usize) / n, (number as usize) % n);
            let pos = group.iter().position(|&g| g == k).expect("a needed parameter is the group's");
            instr.op = Op::Parameter { number: (half * m + pos) as u64 };
        }
        instr.operands = instr.operands.iter().map(|o| map[o.index()].expect("operands precede users")).collect();
        map[id.index()] = Some(out.push_with_span(instr, reducer.span(id)));
    }
    let results: Vec<InstrId> = group.iter().map(|&k| map[root.operands[k].index()].expect("needed")).collect();
    out.root = if m == 1 {
        results[0]
    } else {
        let shapes = results.iter().map(|&r| out.instr(r).shape.clone()).collect();
        out.push(Instr::new(names.fresh(&root.name), Shape::Tuple(shapes), Op::Tuple, results))
    };
    out
}

/// Splits the reduce or scatter at `id` of computation `c` when it is too wide; false otherwise.
fn split(module: &mut Module, c: usize, id: InstrId, max: usize, names: &mut NameUniquer) -> bool {
    let instr = module.comps[c].instr(id).clone();
    let Some((wide, to_apply)) = Wide::of(&instr) else { return false };
    let n = wide.n();
    if n < 2 || wide.buffers(&module.comps[c], &instr.operands, &(0..n).collect::<Vec<_>>()) <= max {
        return false;
    }
    let reducer = module.comp(to_apply);
    let Some(groups) = independent_groups(reducer, n) else { return false };
    // Units to pack: an independent group that fits, or each result of one that does not with
    // the closure of what it reads. A bin is (the results it computes, the results it yields).
    let fits = |u: &[usize]| wide.buffers(&module.comps[c], &instr.operands, u) <= max;
    let mut units: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for g in groups {
        if fits(&g) {
            units.push((g.clone(), g));
        } else {
            units.extend(g.iter().map(|&k| (closure(reducer, n, k), vec![k])));
        }
    }
    // Pack the units, in result order, into ops that each fit the limit.
    let mut bins: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for (u, own) in units {
        let merged = |bin: &[usize]| -> Vec<usize> {
            let set: BTreeSet<usize> = bin.iter().chain(&u).copied().collect();
            set.into_iter().collect()
        };
        match bins.last_mut() {
            Some((bin, owned)) if fits(&merged(bin)) => {
                *bin = merged(bin);
                owned.extend(own);
            }
            _ => bins.push((u, own)),
        }
    }
    if bins.len() < 2 {
        return false;
    }
    let Shape::Tuple(result_shapes) = &instr.shape else { return false };
    let mut results: Vec<Option<InstrId>> = vec![None; n];
    for (bin, owned) in &bins {
        let sub = sub_reducer(module.comp(to_apply), n, bin, names);
        module.comps.push(sub);
        let sub_id = CompId((module.comps.len() - 1) as u32);
        let comp = &mut module.comps[c];
        let span = comp.span(id);
        let operands = wide.operands(&instr.operands, bin);
        let shape = if bin.len() == 1 {
            result_shapes[bin[0]].clone()
        } else {
            Shape::Tuple(bin.iter().map(|&k| result_shapes[k].clone()).collect())
        };
        let op = match &instr.op {
            Op::Reduce { dimensions, .. } => Op::Reduce { dimensions: dimensions.clone(), to_apply: sub_id },
            Op::Scatter { dims, indices_are_sorted, unique_indices, .. } => Op::Scatter {
                dims: dims.clone(),
                indices_are_sorted: *indices_are_sorted,
                unique_indices: *unique_indices,
                to_apply: sub_id,
            },
            _ => unreachable!("Wide::of matched a reduce or a scatter"),
        };
        let mut narrow = Instr::new(names.fresh(&instr.name), shape, op, operands);
        narrow.meta = instr.meta.clone();
        let narrow = comp.push_with_span(narrow, span);
        if bin.len() == 1 {
            results[bin[0]] = Some(narrow);
            continue;
        }
        for (i, &k) in bin.iter().enumerate().filter(|(_, k)| owned.contains(k)) {
            let gte = Instr::new(
                names.fresh(&instr.name),
                result_shapes[k].clone(),
                Op::GetTupleElement { index: i as u64 },
                vec![narrow],
            );
            results[k] = Some(comp.push_with_span(gte, span));
        }
    }
    let target = module.comps[c].instr_mut(id);
    target.op = Op::Tuple;
    target.operands = results.into_iter().map(|r| r.expect("every result is in a bin")).collect();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four results, the first two coupled (an argmin: value and index), the others a sum and
    /// a max: with 8 bindings allowed (the whole needs 10) the argmin and the sum fit one reduce
    /// (8), the max goes to another, and the values are the same.
    #[test]
    fn splits_independent_results_and_keeps_coupled_ones() {
        let text = "HloModule m
red {
  v0 = f32[] parameter(0)
  i0 = s32[] parameter(1)
  s0 = f32[] parameter(2)
  m0 = f32[] parameter(3)
  v1 = f32[] parameter(4)
  i1 = s32[] parameter(5)
  s1 = f32[] parameter(6)
  m1 = f32[] parameter(7)
  lt = pred[] compare(v0, v1), direction=LE
  v = f32[] select(lt, v0, v1)
  i = s32[] select(lt, i0, i1)
  s = f32[] add(s0, s1)
  m = f32[] maximum(m0, m1)
  ROOT t = (f32[], s32[], f32[], f32[]) tuple(v, i, s, m)
}
ENTRY e {
  a = f32[3,5] parameter(0)
  b = s32[3,5] parameter(1)
  c = f32[3,5] parameter(2)
  d = f32[3,5] parameter(3)
  inf = f32[] parameter(4)
  zi = s32[] constant(0)
  z = f32[] constant(0)
  ninf = f32[] constant(-inf)
  ROOT r = (f32[3], s32[3], f32[3], f32[3]) reduce(a, b, c, d, inf, zi, z, ninf), dimensions={1}, to_apply=red
}
";
        let module = hlo_parse::parse_module(text).expect("parses");
        let mut split = module.clone();
        assert!(run_with_limit(&mut split, 8).expect("splits"));
        hlo_ir::verify::verify(&split).expect("verifies");
        let reduces: Vec<_> = split.entry_comp().instrs.iter().filter(|i| matches!(i.op, Op::Reduce { .. })).collect();
        let printed = hlo_ir::print::print_module(&split);
        assert_eq!(reduces.len(), 2, "{printed}");
        assert_eq!(reduces[0].operands.len() + reduces[1].operands.len(), 8, "{printed}");
        assert!(reduces.iter().any(|r| r.operands.len() == 6), "the argmin pair and the sum together: {printed}");
        let mut inputs: Vec<_> = module.entry_comp().param_shapes()[..4]
            .iter()
            .enumerate()
            .map(|(k, s)| hlo_interp::random_literal(s.as_array().expect("array"), 3 + k as u64))
            .collect();
        inputs.push(hlo_ir::Literal::scalar_f32(f32::INFINITY));
        let want = hlo_interp::evaluate(&module, &inputs).expect("interprets");
        let got = hlo_interp::evaluate(&split, &inputs).expect("interprets the split");
        assert_eq!(got, want);
        // At the default limit nothing needs splitting.
        let mut same = module.clone();
        assert!(!run(&mut same).expect("runs"));
    }

    /// An argmin over a value and five payloads (every payload's result reads the values): with
    /// 8 bindings allowed the coupled group is split by closure, each reduce recomputing the
    /// value with its own payloads, and the results are the wide reduce's.
    #[test]
    fn splits_coupled_results_by_closure() {
        let n = 6;
        let mut red = String::from("red {\n");
        for k in 0..2 * n {
            red += &format!("  x{k} = f32[] parameter({k})\n");
        }
        red += &format!("  lt = pred[] compare(x0, x{n}), direction=LT\n");
        for k in 0..n {
            red += &format!("  c{k} = f32[] select(lt, x{k}, x{})\n", n + k);
        }
        let results: Vec<String> = (0..n).map(|k| format!("c{k}")).collect();
        red += &format!("  ROOT t = ({}) tuple({})\n}}\n", vec!["f32[]"; n].join(", "), results.join(", "));
        let mut entry = String::from("ENTRY e {\n");
        for k in 0..n {
            entry += &format!("  p{k} = f32[3,5] parameter({k})\n");
        }
        entry += "  inf = f32[] constant(inf)\n  z = f32[] constant(0)\n";
        let args: Vec<String> =
            (0..n).map(|k| format!("p{k}")).chain((0..n).map(|k| (if k == 0 { "inf" } else { "z" }).into())).collect();
        entry += &format!(
            "  ROOT r = ({}) reduce({}), dimensions={{1}}, to_apply=red\n}}\n",
            vec!["f32[3]"; n].join(", "),
            args.join(", ")
        );
        let module = hlo_parse::parse_module(&format!("HloModule m\n{red}{entry}")).expect("parses");
        let mut split = module.clone();
        assert!(run_with_limit(&mut split, 8).expect("splits"));
        hlo_ir::verify::verify(&split).expect("verifies");
        let printed = hlo_ir::print::print_module(&split);
        let reduces: Vec<_> = split.entry_comp().instrs.iter().filter(|i| matches!(i.op, Op::Reduce { .. })).collect();
        // The value and one payload (2 arrays, 2 outputs, a status word) and one more payload per reduce.
        assert_eq!(reduces.len(), 3, "{printed}");
        assert!(reduces.iter().all(|r| r.operands[0] == reduces[0].operands[0]), "{printed}");
        let inputs: Vec<_> = module.entry_comp().param_shapes()[..n]
            .iter()
            .enumerate()
            .map(|(k, s)| hlo_interp::random_literal(s.as_array().expect("array"), 11 + k as u64))
            .collect();
        let want = hlo_interp::evaluate(&module, &inputs).expect("interprets");
        let got = hlo_interp::evaluate(&split, &inputs).expect("interprets the split");
        assert_eq!(got, want);
    }
    /// A scatter of five operands whose every result selects on the first pair's comparison:
    /// with 11 bindings allowed (the whole needs 17) it is split by closure, every narrower
    /// scatter recomputing result 0, and the interpreter gives the wide scatter's values.
    #[test]
    fn splits_coupled_scatters_by_closure() {
        let n = 5;
        let mut comb = String::from("comb {\n");
        for k in 0..2 * n {
            comb += &format!("  x{k} = f32[] parameter({k})\n");
        }
        comb += &format!("  lt = pred[] compare(x0, x{n}), direction=LT\n");
        for k in 0..n {
            comb += &format!("  c{k} = f32[] select(lt, x{k}, x{})\n", n + k);
        }
        let results: Vec<String> = (0..n).map(|k| format!("c{k}")).collect();
        comb += &format!("  ROOT t = ({}) tuple({})\n}}\n", vec!["f32[]"; n].join(", "), results.join(", "));
        let mut entry = String::from("ENTRY e {\n");
        for k in 0..n {
            entry += &format!("  o{k} = f32[6] parameter({k})\n");
        }
        entry += &format!("  idx = s32[4,1] parameter({n})\n");
        for k in 0..n {
            entry += &format!("  u{k} = f32[4] parameter({})\n", n + 1 + k);
        }
        let ops: Vec<String> = (0..n).map(|k| format!("o{k}")).collect();
        let upds: Vec<String> = (0..n).map(|k| format!("u{k}")).collect();
        entry += &format!(
            "  ROOT s = ({}) scatter({}, idx, {}), update_window_dims={{}}, inserted_window_dims={{0}}, \
             scatter_dims_to_operand_dims={{0}}, index_vector_dim=1, to_apply=comb\n}}\n",
            vec!["f32[6]"; n].join(", "),
            ops.join(", "),
            upds.join(", ")
        );
        let module = hlo_parse::parse_module(&format!("HloModule m\n{comb}{entry}")).expect("parses");
        let mut split = module.clone();
        assert!(run_with_limit(&mut split, 11).expect("splits"));
        hlo_ir::verify::verify(&split).expect("verifies");
        let printed = hlo_ir::print::print_module(&split);
        let scatters: Vec<_> =
            split.entry_comp().instrs.iter().filter(|i| matches!(i.op, Op::Scatter { .. })).collect();
        // Result 0 and two more per scatter: 6 arrays, the indices, 3 outputs and a status word.
        assert_eq!(scatters.len(), 2, "{printed}");
        assert!(scatters.iter().all(|s| s.operands[0] == scatters[0].operands[0]), "{printed}");
        let shapes = module.entry_comp().param_shapes();
        let inputs: Vec<_> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| match k == n {
                // Indices 2 (three times, in bounds) and 7 (out of bounds).
                true => hlo_ir::Literal::array(
                    hlo_ir::ArrayShape::new(hlo_ir::DType::S32, [4, 1]),
                    hlo_ir::ArrayData::S32(vec![2, 2, 7, 2]),
                ),
                false => hlo_interp::random_literal(s.as_array().expect("array"), 21 + k as u64),
            })
            .collect();
        let want = hlo_interp::evaluate(&module, &inputs).expect("interprets");
        let got = hlo_interp::evaluate(&split, &inputs).expect("interprets the split");
        assert_eq!(got, want);
    }
}
