//! Frame mode (`hlo-run MODULE INPUTS --frames N [--record DIR] [--gif FILE]`): runs a frame
//! program N times with its state fed back on the device, reads the image output back after
//! every frame, writes it as PNG and GIF frames (through `hlo-present`), and reports frame times.

use crate::backend::Prepared;
use crate::feed::Feed;
use crate::npy::HostArray;
use crate::stats::{ms, Timings};
use hlo_ir::{ArrayShape, DType};
use hlo_present::{frame_file_name, ElementType, GifRecorder, Image8, ImageShape, ValueRange};
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// GIF frame rate: what GIF delays (hundredths of a second) and viewers handle smoothly.
const GIF_FPS: f64 = 30.0;

/// The smallest side of a rank-2 leaf taken as a grey image without `--image`.
const MIN_GREY_SIDE: i64 = 16;

/// What to do with the frames.
#[derive(Clone, Debug)]
pub struct FrameOptions {
    pub frames: u64,
    pub record_dir: Option<PathBuf>,
    pub gif: Option<PathBuf>,
    /// The result leaf to show; `None`: the first one that is an image.
    pub image: Option<usize>,
    pub range: ValueRange,
}

/// The image's element type, or why leaf `shape` cannot be shown.
fn image_element(shape: &ArrayShape) -> Result<ElementType, String> {
    let element = match shape.dtype {
        DType::F32 => ElementType::F32,
        DType::U8 => ElementType::U8,
        _ => return Err(format!("{shape} is not f32 or u8")),
    };
    let dims = usize_dims(&shape.dims);
    ImageShape::from_dims(&dims).ok_or_else(|| format!("{shape} is not HxW or HxWxC with C in 1, 3 or 4"))?;
    Ok(element)
}

fn usize_dims(dims: &[i64]) -> Vec<usize> {
    dims.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect()
}

/// The result leaf shown as the image and its element type: `explicit` when it is one, else the
/// first HxWxC leaf, else the first HxW leaf of at least 16x16. The error is a message for the user.
pub fn choose_image_output(outputs: &[ArrayShape], explicit: Option<usize>) -> Result<(usize, ElementType), String> {
    if let Some(k) = explicit {
        let shape = outputs.get(k).ok_or_else(|| {
            format!(
                "--image {k}: the module has {} result leaves (out_0 .. out_{})",
                outputs.len(),
                outputs.len().saturating_sub(1)
            )
        })?;
        return image_element(shape).map(|e| (k, e)).map_err(|why| format!("--image {k}: out_{k} {why}"));
    }
    // HxWxC first; a rank-2 leaf only with both sides at least MIN_GREY_SIDE, since state such as
    // positions f32[N, 2] is a list of points, not a picture.
    let first = |wanted_rank: usize| {
        outputs.iter().enumerate().find_map(|(k, s)| {
            let big_enough = wanted_rank == 3 || s.dims.iter().all(|&d| d >= MIN_GREY_SIDE);
            (s.dims.len() == wanted_rank && big_enough).then(|| image_element(s).ok().map(|e| (k, e))).flatten()
        })
    };
    if let Some(found) = first(3).or_else(|| first(2)) {
        return Ok(found);
    }
    let listed: Vec<String> = outputs.iter().enumerate().map(|(k, s)| format!("out_{k} {s}")).collect();
    Err(format!(
        "no result leaf is an image (f32 or u8, HxWxC with C in 1, 3 or 4, or HxW with both sides at least \
         {MIN_GREY_SIDE}); the results are {}\n  \
         hint: --image K names the image output; --iterations runs a step function without one",
        listed.join(", ")
    ))
}

/// Runs the frames and writes what `options` asks for; returns the last frame's outputs.
pub fn run_frames(
    prepared: &mut dyn Prepared,
    output_shapes: &[ArrayShape],
    inputs: &[HostArray],
    feeds: &[Feed],
    options: &FrameOptions,
) -> anyhow::Result<Vec<HostArray>> {
    let (image_index, element) = choose_image_output(output_shapes, options.image).map_err(crate::user_error)?;
    let image_dims = usize_dims(&output_shapes[image_index].dims);
    let shape = ImageShape::from_dims(&image_dims).expect("checked by choose_image_output");
    if let Some(dir) = &options.record_dir {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    }
    let mut gif = match &options.gif {
        Some(path) => Some(GifRecorder::new(create_file(path)?, shape.width, shape.height, GIF_FPS)?),
        None => None,
    };
    let progress = progress_bar(options.frames);
    let mut writing = Duration::ZERO;
    let wall = Instant::now();
    let mut on_frame = |index: u64, image: &HostArray| -> anyhow::Result<()> {
        let start = Instant::now();
        if options.record_dir.is_some() || gif.is_some() {
            let pixels = Image8::from_elements(&image.bytes, element, &image_dims, options.range)?;
            if let Some(dir) = &options.record_dir {
                let path = dir.join(frame_file_name(index));
                let mut file = create_file(&path)?;
                pixels.encode_png(&mut file)?;
                file.flush().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
            if let Some(gif) = gif.as_mut() {
                gif.add_frame(&pixels)?;
            }
        }
        writing += start.elapsed();
        progress.inc(1);
        Ok(())
    };
    let (outputs, frame_times) = prepared.run_frames(inputs, feeds, options.frames, image_index, &mut on_frame)?;
    if let Some(gif) = gif {
        gif.finish()?;
    }
    progress.finish_and_clear();
    let wall = wall.elapsed();
    report(prepared, feeds, options, image_index, &frame_times, writing, wall);
    Ok(outputs)
}

fn create_file(path: &Path) -> anyhow::Result<BufWriter<File>> {
    Ok(BufWriter::new(File::create(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?))
}

/// A progress bar on stderr for recordings long enough to wait for, only on a terminal.
fn progress_bar(frames: u64) -> indicatif::ProgressBar {
    if frames < 30 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(frames);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} frames {per_sec} eta {eta}")
            .expect("a valid template"),
    );
    bar
}

/// The end-of-run summary: frame time of the device work and read-back, then where the frames went.
fn report(
    prepared: &dyn Prepared,
    feeds: &[Feed],
    options: &FrameOptions,
    image_index: usize,
    frame_times: &[Duration],
    writing: Duration,
    wall: Duration,
) {
    let fed: Vec<String> = feeds.iter().map(|f| f.to_string()).collect();
    eprintln!(
        "{} frames of out_{image_index} on {} (fed: {})",
        frame_times.len(),
        prepared.device(),
        if fed.is_empty() { "nothing".to_string() } else { fed.join(", ") }
    );
    if let Some(t) = Timings::from_samples(frame_times) {
        let computing: Duration = frame_times.iter().sum();
        eprintln!(
            "frame time (compute + image read-back): min {}  median {}  p99 {}  = {:.1} frames/s",
            ms(t.min),
            ms(t.median),
            ms(t.p99),
            frame_times.len() as f64 / computing.as_secs_f64().max(1e-9)
        );
    }
    if options.record_dir.is_some() || options.gif.is_some() {
        let mut wrote = Vec::new();
        if let Some(dir) = &options.record_dir {
            wrote.push(format!("{}/frame_*.png", dir.display()));
        }
        if let Some(gif) = &options.gif {
            wrote.push(gif.display().to_string());
        }
        eprintln!(
            "wrote {} (encoding took {}; {:.1} frames/s in all)",
            wrote.join(" and "),
            ms(writing),
            frame_times.len() as f64 / wall.as_secs_f64().max(1e-9)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(dtype: DType, dims: &[i64]) -> ArrayShape {
        ArrayShape::new(dtype, dims.to_vec())
    }

    #[test]
    fn the_first_image_leaf_is_chosen() {
        let outputs = [shape(DType::F32, &[800, 2]), shape(DType::F32, &[300, 300, 3]), shape(DType::U8, &[4, 4])];
        assert_eq!(choose_image_output(&outputs[..1], None).map_err(|e| e.contains("no result leaf")), Err(true));
        let grey = [shape(DType::F32, &[800, 2]), shape(DType::U8, &[32, 16])];
        assert_eq!(choose_image_output(&grey, None), Ok((1, ElementType::U8)));
        assert_eq!(choose_image_output(&outputs, None), Ok((1, ElementType::F32)));
        assert_eq!(choose_image_output(&outputs, Some(2)), Ok((2, ElementType::U8)));
        let odd = [shape(DType::F32, &[8, 8, 2]), shape(DType::S32, &[8, 8])];
        let err = choose_image_output(&odd, Some(0)).unwrap_err();
        assert!(err.contains("--image 0: out_0 f32[8,8,2] is not HxW"), "{err}");
        assert!(choose_image_output(&odd, Some(1)).unwrap_err().contains("is not f32 or u8"));
        assert!(choose_image_output(&outputs, Some(3)).unwrap_err().contains("3 result leaves"));
        let none = choose_image_output(&[shape(DType::S32, &[3, 3])], None).unwrap_err();
        assert!(none.contains("no result leaf is an image"), "{none}");
    }
}
