//! The frame programs of `hlo-samples` through the `hlo-run` binary, headless (issue 13):
//! `seed_interactive` (seed 000's particle simulation with a mouse-button input) over several
//! frames with `--frames N --record DIR`, once with the button up and once held down, and
//! `mandelbrot_zoom` (a frame number in, an image out) at several frame numbers.
//!
//! `--bind NAME=frame` / `mouse.down` set such scalars every frame, but only with `--present`
//! (a window) so far; here the mouse is an input file held fixed for the whole run, and the
//! zoom's frames are separate runs, each with its frame number in a file.

mod common;
use common::*;
use hlo_ir::DType;
use hlo_run::npy::{self, HostArray};
use std::path::{Path, PathBuf};

fn sample(name: &str) -> PathBuf {
    repo().join("hlo-samples").join(name)
}

/// Writes a scalar input file (a 0-d array).
fn write_scalar(path: &Path, dtype: DType, bytes: [u8; 4]) -> PathBuf {
    npy::write_npy(path, &HostArray { dtype, dims: vec![], bytes: bytes.to_vec() }).unwrap();
    path.to_path_buf()
}

/// An f32 image in 0..1 as the 8-bit samples `--record` writes.
fn image_samples(array: &HostArray) -> Vec<u8> {
    let dims: Vec<usize> = array.dims.iter().map(|&d| d as usize).collect();
    hlo_present::Image8::from_elements(
        &array.bytes,
        hlo_present::ElementType::F32,
        &dims,
        hlo_present::ValueRange::Unit,
    )
    .unwrap()
    .samples
}

fn f32s(array: &HostArray) -> Vec<f32> {
    assert_eq!(array.dtype, DType::F32);
    array.bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// ||got - want|| / ||want||.
fn relative_l2(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let diff: f64 = got.iter().zip(want).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum();
    let norm: f64 = want.iter().map(|&b| f64::from(b).powi(2)).sum();
    (diff / norm).sqrt()
}

/// Pixels (not samples) whose colour differs between two images of `channels` samples each.
fn pixels_differing(a: &[u8], b: &[u8], channels: usize) -> usize {
    a.chunks_exact(channels).zip(b.chunks_exact(channels)).filter(|(p, q)| p != q).count()
}

const INTERACTIVE_FRAMES: usize = 8;
const INTERACTIVE_SIDE: u32 = 384;
/// The canvas colour of seed 000 (253/255) as a PNG sample.
const CANVAS: u8 = 253;

/// One headless run of `seed_interactive` with the mouse button held at `mouse` (0 or 1) the
/// whole time: the recorded frames and the final (pos, vel).
struct InteractiveRun {
    frames: Vec<Vec<u8>>,
    pos: Vec<f32>,
}

fn run_interactive(tag: &str, mouse: f32) -> InteractiveRun {
    let s = sample("seed_interactive");
    let dir = temp_dir(tag);
    let mouse_file = write_scalar(&dir.join("mouse.npy"), DType::F32, mouse.to_le_bytes());
    let (record, out) = (dir.join("frames"), dir.join("out"));
    let frames = INTERACTIVE_FRAMES.to_string();
    let args: Vec<PathBuf> = vec![s.join("module.hlo"), s.join("in_0.npy"), s.join("in_1.npy"), mouse_file];
    let mut args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    for flag in ["--frames", frames.as_str(), "--feed", "1=0", "--feed", "2=1", "--record"] {
        args.push(flag.into());
    }
    args.extend([record.clone().into_os_string(), "-o".into(), out.clone().into_os_string()]);
    let run = hlo_run(&args);
    assert!(run.status.success(), "{tag}: {}", stderr(&run));
    let err = stderr(&run);
    assert!(err.contains(&format!("{INTERACTIVE_FRAMES} frames of out_0")), "{tag}: {err}");
    let frames = (0..INTERACTIVE_FRAMES)
        .map(|k| {
            let (w, h, channels, samples) = read_png(&record.join(format!("frame_{k:05}.png")));
            assert_eq!((w, h, channels), (INTERACTIVE_SIDE, INTERACTIVE_SIDE, 3), "{tag} frame {k}");
            // 128 circles of radius 4 cover several thousand pixels of the light canvas.
            let drawn = samples.chunks_exact(3).filter(|p| p.iter().any(|&v| v.abs_diff(CANVAS) > 25)).count();
            assert!(drawn > 2000, "{tag} frame {k}: only {drawn} pixels are drawn on");
            samples
        })
        .collect();
    assert!(!record.join(format!("frame_{INTERACTIVE_FRAMES:05}.png")).exists());
    let pos = f32s(&npy::read_npy(&out.join("out_1.npy")).unwrap());
    assert_eq!(pos.len(), 128 * 2);
    InteractiveRun { frames, pos }
}

/// Root-mean-square distance of the particles (x, y pairs) from their centre of mass.
fn spread(pos: &[f32]) -> f64 {
    let n = (pos.len() / 2) as f64;
    let (mx, my) = pos.chunks_exact(2).fold((0.0, 0.0), |(x, y), p| (x + f64::from(p[0]) / n, y + f64::from(p[1]) / n));
    (pos.chunks_exact(2).map(|p| (f64::from(p[0]) - mx).powi(2) + (f64::from(p[1]) - my).powi(2)).sum::<f64>() / n)
        .sqrt()
}

/// The button up (in_2 as committed): the particles move from frame to frame and stay
/// gathered, and frame 0 is JAX's image of the committed state.
#[test]
fn interactive_frames_with_the_button_up() {
    let up = run_interactive("up", 0.0);
    for k in 1..INTERACTIVE_FRAMES {
        let moved = pixels_differing(&up.frames[k - 1], &up.frames[k], 3);
        assert!(moved > 100, "frame {k} differs from frame {} in only {moved} pixels", k - 1);
    }
    let jax = image_samples(&npy::read_npy(&sample("seed_interactive").join("out_0.npy")).unwrap());
    let worst = up.frames[0].iter().zip(&jax).map(|(&a, &b)| a.abs_diff(b)).max().unwrap();
    assert!(worst <= 1, "frame 0 differs from JAX's image by up to {worst} levels");
    // The centring force holds the cloud together (RMS radius 0.28 at the start).
    let radius = spread(&up.pos);
    assert!(radius < 0.3, "with the button up the particles spread to an RMS radius of {radius}");
}

/// The button held down switches the centring force off: frame 0 is the same (it draws the
/// input state), every later frame differs from the button-up run's, and the cloud spreads.
#[test]
fn interactive_frames_with_the_button_down_differ() {
    let up = run_interactive("up-reference", 0.0);
    let down = run_interactive("down", 1.0);
    assert_eq!(down.frames[0], up.frames[0], "frame 0 draws the committed state whatever the mouse");
    for k in 1..INTERACTIVE_FRAMES {
        let changed = pixels_differing(&down.frames[k], &up.frames[k], 3);
        assert!(changed > 1000, "frame {k}: the held button changed only {changed} pixels");
    }
    let (r_up, r_down) = (spread(&up.pos), spread(&down.pos));
    assert!(r_down > 1.4 * r_up, "without centring the cloud spreads: RMS radius {r_down} (down) vs {r_up} (up)");
}

const ZOOM_TOLERANCE: f64 = 5e-3;

/// Runs `mandelbrot_zoom` at frame `frame` (a plain run, no feedback): its f32 HWC image.
fn zoom_frame(dir: &Path, frame: i32) -> HostArray {
    let s = sample("mandelbrot_zoom");
    let input = write_scalar(&dir.join(format!("frame_{frame}.npy")), DType::S32, frame.to_le_bytes());
    let out = dir.join(format!("out_{frame}"));
    let run = hlo_run(&[s.join("module.hlo"), input, "-o".into(), out.clone()]);
    assert!(run.status.success(), "frame {frame}: {}", stderr(&run));
    let image = npy::read_npy(&out.join("out_0.npy")).unwrap();
    assert_eq!((image.dtype, image.dims.as_slice()), (DType::F32, &[256, 256, 3][..]), "frame {frame}");
    image
}

/// The zoom at its committed frame number matches JAX, and the image changes as the frame
/// number advances: consecutive frames differ a little, distant ones a lot.
#[test]
fn mandelbrot_zoom_follows_its_frame_input() {
    let dir = temp_dir("zoom");
    let s = sample("mandelbrot_zoom");
    let committed = npy::read_npy(&s.join("in_0.npy")).unwrap();
    assert_eq!((committed.dtype, committed.dims.len()), (DType::S32, 0), "in_0 is the s32 frame number");
    let frame = i32::from_le_bytes(committed.bytes[..4].try_into().unwrap());
    let jax = f32s(&npy::read_npy(&s.join("out_0.npy")).unwrap());

    let images: Vec<(i32, Vec<f32>)> =
        [0, frame, frame + 1, frame + 20].into_iter().map(|k| (k, f32s(&zoom_frame(&dir, k)))).collect();
    let error = relative_l2(&images[1].1, &jax);
    assert!(error <= ZOOM_TOLERANCE, "frame {frame}: relative L2 error {error:e} against JAX");
    for (k, image) in &images {
        assert!(image.iter().all(|v| (0.0..=1.0).contains(v)), "frame {k}: values outside 0..1");
        let lit = image.iter().filter(|&&v| v > 0.25).count();
        assert!(lit > 5000, "frame {k} is nearly black: {lit} samples above 0.25");
    }
    let step = |a: usize, b: usize| relative_l2(&images[a].1, &images[b].1);
    let (next, far, start) = (step(2, 1), step(3, 1), step(0, 1));
    assert!(next > 0.01, "frame {} is frame {frame} again (relative change {next:e})", frame + 1);
    assert!(
        far > next && start > next,
        "zooming on moves the image further: {next} (1 frame), {far} (20), {start} (from 0)"
    );
}
