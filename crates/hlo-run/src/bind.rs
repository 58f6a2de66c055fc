//! `--bind NAME=SOURCE` (with `--present`): a scalar parameter set from the window every frame, so that a
//! frame program can follow the mouse or the clock. `NAME` is a parameter's name in the module (`Arg_0.1`)
//! or a leaf index; `SOURCE` is `mouse.x`, `mouse.y` (the pointer in the image's pixel coordinates),
//! `mouse.down` (1 while the left button is held), `time` (seconds since the window opened) or `frame`.

use crate::inputs::param_leaves;
use crate::npy::HostArray;
use hlo_ir::{ArrayShape, DType, Module};
use hlo_present::window::FrameInput;
use std::fmt;
use std::str::FromStr;

/// Where a bound value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindSource {
    MouseX,
    MouseY,
    MouseDown,
    Time,
    Frame,
}

impl BindSource {
    const ALL: [(&'static str, BindSource); 5] = [
        ("mouse.x", BindSource::MouseX),
        ("mouse.y", BindSource::MouseY),
        ("mouse.down", BindSource::MouseDown),
        ("time", BindSource::Time),
        ("frame", BindSource::Frame),
    ];

    fn name(self) -> &'static str {
        BindSource::ALL.iter().find(|(_, s)| *s == self).map(|(n, _)| *n).expect("every source is listed")
    }

    /// The value for this frame: integers stay exact (frame numbers, the button).
    fn value(self, input: &FrameInput) -> Value {
        match self {
            BindSource::MouseX => Value::Float(f64::from(input.mouse_x)),
            BindSource::MouseY => Value::Float(f64::from(input.mouse_y)),
            BindSource::MouseDown => Value::Int(i64::from(input.mouse_down)),
            BindSource::Time => Value::Float(f64::from(input.time)),
            BindSource::Frame => Value::Int(i64::try_from(input.frame).unwrap_or(i64::MAX)),
        }
    }
}

enum Value {
    Float(f64),
    Int(i64),
}

/// `--bind NAME=SOURCE` as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    pub target: String,
    pub source: BindSource,
}

impl FromStr for Bind {
    type Err = String;

    fn from_str(s: &str) -> Result<Bind, String> {
        let sources: Vec<&str> = BindSource::ALL.iter().map(|(n, _)| *n).collect();
        let (target, source) = s
            .split_once('=')
            .ok_or_else(|| format!("expected NAME=SOURCE with SOURCE one of {}, found `{s}`", sources.join(", ")))?;
        let target = target.trim();
        if target.is_empty() {
            return Err(format!("`{s}` names no parameter before `=`"));
        }
        let source =
            BindSource::ALL.iter().find(|(n, _)| *n == source.trim()).map(|(_, src)| *src).ok_or_else(|| {
                format!("unknown source `{}` in `{s}`; expected one of {}", source.trim(), sources.join(", "))
            })?;
        Ok(Bind { target: target.to_string(), source })
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.target, self.source.name())
    }
}

/// A bind resolved against the module: which input leaf it sets and that leaf's scalar type.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedBind {
    pub input: usize,
    pub dtype: DType,
    pub source: BindSource,
    /// How the user named it, for messages.
    pub given: String,
}

impl ResolvedBind {
    /// The scalar for this frame in the leaf's type: floats as they are, integers rounded down and saturated,
    /// pred true when not zero.
    pub fn host_value(&self, input: &FrameInput) -> HostArray {
        let value = self.source.value(input);
        let as_f64 = match value {
            Value::Float(v) => v,
            Value::Int(v) => v as f64,
        };
        let as_i64 = match value {
            Value::Float(v) => v.floor() as i64,
            Value::Int(v) => v,
        };
        let bytes = match self.dtype {
            DType::Pred => vec![u8::from(as_f64 != 0.0)],
            DType::S8 => (as_i64.clamp(i8::MIN.into(), i8::MAX.into()) as i8).to_le_bytes().to_vec(),
            DType::S16 => (as_i64.clamp(i16::MIN.into(), i16::MAX.into()) as i16).to_le_bytes().to_vec(),
            DType::S32 => (as_i64.clamp(i32::MIN.into(), i32::MAX.into()) as i32).to_le_bytes().to_vec(),
            DType::S64 => as_i64.to_le_bytes().to_vec(),
            DType::U8 => (as_i64.clamp(0, u8::MAX.into()) as u8).to_le_bytes().to_vec(),
            DType::U16 => (as_i64.clamp(0, u16::MAX.into()) as u16).to_le_bytes().to_vec(),
            DType::U32 => (as_i64.clamp(0, u32::MAX.into()) as u32).to_le_bytes().to_vec(),
            DType::U64 => (as_i64.max(0) as u64).to_le_bytes().to_vec(),
            DType::F16 => half::f16::from_f64(as_f64).to_le_bytes().to_vec(),
            DType::BF16 => half::bf16::from_f64(as_f64).to_le_bytes().to_vec(),
            DType::F64 => as_f64.to_le_bytes().to_vec(),
            _ => (as_f64 as f32).to_le_bytes().to_vec(),
        };
        HostArray { dtype: self.dtype, dims: Vec::new(), bytes }
    }
}

/// Whether a scalar of `dtype` can hold a bound value.
fn bindable(dtype: DType) -> bool {
    matches!(
        dtype,
        DType::Pred
            | DType::S8
            | DType::S16
            | DType::S32
            | DType::S64
            | DType::U8
            | DType::U16
            | DType::U32
            | DType::U64
            | DType::F16
            | DType::BF16
            | DType::F32
            | DType::F64
    )
}

/// Resolves `binds` against `module`'s parameter leaves; the error is a message for the user.
pub fn resolve(binds: &[Bind], module: &Module) -> Result<Vec<ResolvedBind>, String> {
    let leaves = param_leaves(module);
    let entry = module.entry_comp();
    let listed = || {
        leaves
            .iter()
            .enumerate()
            .map(|(k, l)| format!("{k}: {} {}", entry.instr(l.param).name, l.shape))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut resolved: Vec<ResolvedBind> = Vec::new();
    for bind in binds {
        let input = match bind.target.parse::<usize>() {
            Ok(k) if k < leaves.len() => k,
            Ok(_) => {
                return Err(format!("--bind {bind}: the module has {} parameter leaves ({})", leaves.len(), listed()))
            }
            Err(_) => {
                let named: Vec<usize> =
                    (0..leaves.len()).filter(|&k| entry.instr(leaves[k].param).name == bind.target).collect();
                match named[..] {
                    [k] => k,
                    [] => {
                        return Err(format!(
                            "--bind {bind}: no parameter is named `{}`; the parameters are {}",
                            bind.target,
                            listed()
                        ))
                    }
                    _ => {
                        return Err(format!(
                            "--bind {bind}: `{}` is a tuple parameter; name one of its leaves by index ({})",
                            bind.target,
                            listed()
                        ))
                    }
                }
            }
        };
        let shape: &ArrayShape = &leaves[input].shape;
        if !shape.dims.is_empty() || !bindable(shape.dtype) {
            return Err(format!(
                "--bind {bind}: parameter leaf {input} is {shape}; a bound parameter is a scalar number or pred"
            ));
        }
        if let Some(earlier) = resolved.iter().find(|r| r.input == input) {
            return Err(format!("--bind {bind}: parameter leaf {input} is already bound by --bind {}", earlier.given));
        }
        resolved.push(ResolvedBind { input, dtype: shape.dtype, source: bind.source, given: bind.to_string() });
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module() -> Module {
        hlo_parse::parse_module(
            "HloModule m\n\nENTRY e {\n  x = f32[4] parameter(0)\n  t = f32[] parameter(1)\n  n = s32[] parameter(2)\n  \
             b = pred[] parameter(3)\n  ROOT r = (f32[4], f32[]) tuple(x, t)\n}\n",
        )
        .expect("parses")
    }

    #[test]
    fn binds_parse_with_clear_errors() {
        assert_eq!("t=time".parse::<Bind>(), Ok(Bind { target: "t".into(), source: BindSource::Time }));
        assert_eq!(" 2 = mouse.down ".parse::<Bind>(), Ok(Bind { target: "2".into(), source: BindSource::MouseDown }));
        assert!("time".parse::<Bind>().unwrap_err().contains("expected NAME=SOURCE"));
        assert!("=time".parse::<Bind>().unwrap_err().contains("names no parameter"));
        let err = "t=mouse.z".parse::<Bind>().unwrap_err();
        assert!(
            err.contains("unknown source `mouse.z`") && err.contains("mouse.x, mouse.y, mouse.down, time, frame"),
            "{err}"
        );
    }

    #[test]
    fn binds_resolve_by_name_or_index() {
        let m = module();
        let binds: Vec<Bind> = ["t=time", "2=frame", "b=mouse.down"].iter().map(|s| s.parse().unwrap()).collect();
        let resolved = resolve(&binds, &m).unwrap();
        assert_eq!(resolved.iter().map(|r| r.input).collect::<Vec<_>>(), vec![1, 2, 3]);
        let input = FrameInput { frame: 7, time: 1.5, mouse_x: 3.7, mouse_y: -2.0, mouse_down: true };
        assert_eq!(resolved[0].host_value(&input).bytes, 1.5f32.to_le_bytes());
        assert_eq!(resolved[1].host_value(&input).bytes, 7i32.to_le_bytes());
        assert_eq!(resolved[2].host_value(&input).bytes, vec![1]);
        let by_x = resolve(&["n=mouse.x".parse().unwrap()], &m).unwrap();
        assert_eq!(by_x[0].host_value(&input).bytes, 3i32.to_le_bytes());
    }

    #[test]
    fn bad_binds_say_why() {
        let m = module();
        let err = |s: &str| resolve(&[s.parse().unwrap()], &m).unwrap_err();
        assert!(err("x=time").contains("is f32[4]; a bound parameter is a scalar"), "{}", err("x=time"));
        assert!(
            err("zz=time").contains("no parameter is named `zz`; the parameters are 0: x f32[4]"),
            "{}",
            err("zz=time")
        );
        assert!(err("9=time").contains("4 parameter leaves"), "{}", err("9=time"));
        let twice = resolve(&["t=time".parse().unwrap(), "1=frame".parse().unwrap()], &m).unwrap_err();
        assert!(twice.contains("already bound by --bind t=time"), "{twice}");
    }
}
