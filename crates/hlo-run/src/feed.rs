//! Loop mode (`hlo-run MODULE INPUTS --iterations N`): which result leaf feeds which
//! parameter leaf from one iteration to the next.
//!
//! The pairing comes from, in order: `--feed OUT=IN` given on the command line; the module's
//! own `input_output_alias` (XLA's donation: JAX writes it for `donate_argnums`); otherwise it
//! is inferred from shapes: an output feeds the input of the same dtype and dimensions when
//! that signature belongs to exactly one output and one input. Several outputs or inputs of
//! one signature (a state `(pos, vel)` of two f32[N, 2]) are ambiguous: positions would be a
//! guess, so the user is asked for `--feed`.

use crate::inputs::{output_leaves, param_leaves};
use hlo_ir::{ArrayShape, Module};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Result leaf `output` becomes parameter leaf `input` of the next iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Feed {
    pub output: usize,
    pub input: usize,
}

impl FromStr for Feed {
    type Err = String;

    /// `OUT=IN`, two leaf indices (`out_OUT.npy` feeds the `IN`-th input).
    fn from_str(s: &str) -> Result<Feed, String> {
        let (o, i) = s.split_once('=').ok_or_else(|| format!("expected OUT=IN (two leaf indices), found `{s}`"))?;
        let index = |t: &str| t.trim().parse::<usize>().map_err(|_| format!("`{t}` in `{s}` is not a leaf index"));
        Ok(Feed { output: index(o)?, input: index(i)? })
    }
}

impl fmt::Display for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "out_{} -> input {}", self.output, self.input)
    }
}

/// The feeds for `module`: `explicit` ones (checked), else the module's aliasing, else
/// inferred. An error says why none could be chosen.
pub fn choose_feeds(module: &Module, explicit: &[Feed]) -> Result<Vec<Feed>, String> {
    let inputs: Vec<ArrayShape> = param_leaves(module).into_iter().map(|l| l.shape).collect();
    let outputs = output_leaves(&module.entry_comp().instr(module.entry_comp().root).shape);
    if !explicit.is_empty() {
        return check(explicit.to_vec(), &inputs, &outputs);
    }
    if let Some(aliased) = aliased_feeds(module) {
        return check(aliased, &inputs, &outputs);
    }
    infer(&inputs, &outputs)
}

/// The feeds the module's `input_output_alias` declares (empty without one): these inputs may be donated,
/// their memory receiving the output that feeds them.
pub fn aliased(module: &Module) -> Vec<Feed> {
    aliased_feeds(module).unwrap_or_default()
}

/// Like [`choose_feeds`], but a module none of whose outputs can feed an input gets no feeds instead of an
/// error: `--present` also shows stateless programs (driven by `--bind time`, say).
pub fn choose_feeds_or_none(module: &Module, explicit: &[Feed]) -> Result<Vec<Feed>, String> {
    let inputs: Vec<ArrayShape> = param_leaves(module).into_iter().map(|l| l.shape).collect();
    let outputs = output_leaves(&module.entry_comp().instr(module.entry_comp().root).shape);
    let any_pair = outputs.iter().any(|o| inputs.iter().any(|i| i.dtype == o.dtype && i.dims == o.dims));
    if explicit.is_empty() && aliased_feeds(module).is_none() && !any_pair {
        return Ok(Vec::new());
    }
    choose_feeds(module, explicit)
}

/// Every feed names existing leaves of one dtype and shape; no input is fed twice.
fn check(mut feeds: Vec<Feed>, inputs: &[ArrayShape], outputs: &[ArrayShape]) -> Result<Vec<Feed>, String> {
    feeds.sort();
    for f in &feeds {
        let out = outputs.get(f.output).ok_or_else(|| {
            format!("--feed {}={}: the module has {} result leaves", f.output, f.input, outputs.len())
        })?;
        let inp = inputs
            .get(f.input)
            .ok_or_else(|| format!("--feed {}={}: the module has {} inputs", f.output, f.input, inputs.len()))?;
        if out.dtype != inp.dtype || out.dims != inp.dims {
            return Err(format!(
                "--feed {}={}: out_{} is {out}, input {} is {inp}",
                f.output, f.input, f.output, f.input
            ));
        }
    }
    for pair in feeds.windows(2) {
        if pair[0].input == pair[1].input {
            return Err(format!(
                "input {} is fed by both out_{} and out_{}",
                pair[0].input, pair[0].output, pair[1].output
            ));
        }
    }
    Ok(feeds)
}

fn infer(inputs: &[ArrayShape], outputs: &[ArrayShape]) -> Result<Vec<Feed>, String> {
    let sig = |a: &ArrayShape| {
        let dims: Vec<String> = a.dims.iter().map(|d| d.to_string()).collect();
        format!("{}[{}]", a.dtype, dims.join(","))
    };
    let mut by_sig: BTreeMap<String, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for (k, o) in outputs.iter().enumerate() {
        by_sig.entry(sig(o)).or_default().0.push(k);
    }
    for (k, i) in inputs.iter().enumerate() {
        by_sig.entry(sig(i)).or_default().1.push(k);
    }
    let mut feeds = Vec::new();
    let mut ambiguous = Vec::new();
    for (sig, (outs, ins)) in &by_sig {
        match (outs.len(), ins.len()) {
            (0, _) | (_, 0) => {}
            (1, 1) => feeds.push(Feed { output: outs[0], input: ins[0] }),
            _ => ambiguous.push(format!(
                "{sig}: outputs {} and inputs {}",
                outs.iter().map(|k| format!("out_{k}")).collect::<Vec<_>>().join(", "),
                ins.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ")
            )),
        }
    }
    if !ambiguous.is_empty() {
        return Err(format!(
            "cannot tell which output feeds which input: {}\n  hint: say it with --feed OUT=IN (repeatable), e.g. --feed 0=0 --feed 1=1",
            ambiguous.join("; ")
        ));
    }
    if feeds.is_empty() {
        return Err("no result leaf has the dtype and shape of an input, so nothing can be fed back\n  \
                    hint: --iterations needs a module whose outputs include its next inputs (a step function)"
            .into());
    }
    feeds.sort();
    Ok(feeds)
}

/// The feeds the module's `input_output_alias` declares, when every entry is a result leaf
/// (`{k}` or `{}`) aliased to an array parameter (`(p, {})`); `None` without one or for forms
/// this does not read (then shapes decide).
fn aliased_feeds(module: &Module) -> Option<Vec<Feed>> {
    let text = module.attrs.other.iter().find(|(name, _)| name == "input_output_alias")?.1.as_str();
    let entry = module.entry_comp();
    // Parameter p's first leaf index: parameters may be tuples.
    let mut first_leaf = Vec::new();
    let mut n = 0;
    for &id in &entry.params {
        first_leaf.push(n);
        n += entry.instr(id).shape.leaves().len();
    }
    let mut feeds = Vec::new();
    // `{ {0}: (0, {}, may-alias), {1}: (2, {}) }`: split on the `(`...`)` groups.
    let mut rest = text.trim().strip_prefix('{')?.strip_suffix('}')?.trim();
    while !rest.is_empty() {
        let (out_path, after) = rest.strip_prefix('{')?.split_once('}')?;
        let after = after.trim_start().strip_prefix(':')?.trim_start().strip_prefix('(')?;
        let (group, tail) = after.split_once(')')?;
        let mut parts = group.split(',').map(str::trim);
        let param: usize = parts.next()?.parse().ok()?;
        let param_path = parts.next()?;
        if param_path != "{}" || entry.instr(*entry.params.get(param)?).shape.is_tuple() {
            return None;
        }
        let output = match out_path.trim() {
            "" => 0,
            k => k.parse().ok()?,
        };
        feeds.push(Feed { output, input: first_leaf[param] });
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    (!feeds.is_empty()).then_some(feeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(text: &str) -> Module {
        hlo_parse::parse_module(text).expect("parses")
    }

    const STEP: &str =
        "HloModule m\n\nENTRY e {\n  x = f32[4] parameter(0)\n  v = f32[4] parameter(1)\n  dt = f32[] parameter(2)\n  \
                        ROOT t = (f32[4], f32[4], f32[]) tuple(v, x, dt)\n}\n";

    #[test]
    fn feeds_parse_and_print() {
        assert_eq!("2=0".parse::<Feed>(), Ok(Feed { output: 2, input: 0 }));
        assert!("2".parse::<Feed>().unwrap_err().contains("OUT=IN"));
        assert!("a=1".parse::<Feed>().unwrap_err().contains("not a leaf index"));
    }

    #[test]
    fn one_output_per_signature_is_inferred() {
        let m = module(
            "HloModule m\n\nENTRY e {\n  x = f32[4] parameter(0)\n  n = s32[] parameter(1)\n  \
             z = f32[] constant(0)\n  ROOT t = (s32[], f32[4], f32[]) tuple(n, x, z)\n}\n",
        );
        let feeds = choose_feeds(&m, &[]).unwrap();
        assert_eq!(feeds, vec![Feed { output: 0, input: 1 }, Feed { output: 1, input: 0 }]);
    }

    #[test]
    fn same_shaped_state_needs_feed() {
        let m = module(STEP);
        let err = choose_feeds(&m, &[]).unwrap_err();
        assert!(err.contains("--feed"), "{err}");
        let feeds = choose_feeds(&m, &["0=0".parse().unwrap(), "1=1".parse().unwrap()]).unwrap();
        assert_eq!(feeds.len(), 2);
        assert!(choose_feeds(&m, &["2=0".parse().unwrap()]).unwrap_err().contains("f32[]"));
        assert!(choose_feeds(&m, &["0=0".parse().unwrap(), "1=0".parse().unwrap()])
            .unwrap_err()
            .contains("fed by both"));
    }

    #[test]
    fn donation_decides() {
        let text = STEP.replace(
            "HloModule m",
            "HloModule m, input_output_alias={ {0}: (1, {}, may-alias), {1}: (0, {}, may-alias) }",
        );
        let feeds = choose_feeds(&module(&text), &[]).unwrap();
        assert_eq!(feeds, vec![Feed { output: 0, input: 1 }, Feed { output: 1, input: 0 }]);
    }

    #[test]
    fn nothing_to_feed_is_an_error() {
        let m = module(
            "HloModule m\n\nENTRY e {\n  x = f32[4] parameter(0)\n  ROOT s = f32[2] slice(x), slice={[0:2]}\n}\n",
        );
        assert!(choose_feeds(&m, &[]).unwrap_err().contains("nothing can be fed back"));
    }
}
