//! Frame mode (`hlo-run MODULE INPUTS --frames N [--record DIR] [--gif FILE] [--apng FILE]`): runs a
//! frame program N times with its state fed back on the device, reads the image output back after every
//! frame only when recording, writes it as PNG frames, an animated GIF or an animated PNG (through
//! `hlo-present`), and reports frame times and the bytes that crossed between host and device.
//! `--present` (in `present.rs`) shares the choice of image, the recorder and the summary.

use crate::backend::{LoopOutcome, Prepared};
use crate::feed::Feed;
use crate::npy::HostArray;
use crate::stats::{ms, Timings};
use hlo_ir::{ArrayShape, DType};
use hlo_present::{frame_file_name, ApngRecorder, ElementType, GifRecorder, Image8, ImageShape, ValueRange};
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Frame rate of the animations: what GIF delays (hundredths of a second) and viewers handle smoothly.
const ANIMATION_FPS: u16 = 30;

/// The smallest side of a rank-2 leaf taken as a grey image without `--image`.
const MIN_GREY_SIDE: i64 = 16;

/// What to do with the frames.
#[derive(Clone, Debug, Default)]
pub struct FrameOptions {
    pub frames: u64,
    pub record_dir: Option<PathBuf>,
    pub gif: Option<PathBuf>,
    pub apng: Option<PathBuf>,
    /// The result leaf to show; `None`: the first one that is an image.
    pub image: Option<usize>,
    pub range: ValueRange,
}

impl FrameOptions {
    /// Whether any frame is written, so that the image must come back to the host.
    pub fn records(&self) -> bool {
        self.record_dir.is_some() || self.gif.is_some() || self.apng.is_some()
    }
}

/// The image output chosen for a run: which leaf, its element type and shape.
#[derive(Clone, Debug)]
pub struct ImageOutput {
    pub index: usize,
    pub element: ElementType,
    pub dims: Vec<usize>,
    pub shape: ImageShape,
}

impl ImageOutput {
    /// The image among `outputs` (see [`choose_image_output`]); a user error when there is none.
    pub fn choose(outputs: &[ArrayShape], explicit: Option<usize>) -> anyhow::Result<ImageOutput> {
        let (index, element) = choose_image_output(outputs, explicit).map_err(crate::user_error)?;
        let dims = usize_dims(&outputs[index].dims);
        let shape = ImageShape::from_dims(&dims).expect("checked by choose_image_output");
        Ok(ImageOutput { index, element, dims, shape })
    }
}

/// Writes frames as PNG files, an animated GIF and an animated PNG, as asked.
pub struct Recorder {
    options: FrameOptions,
    image: ImageOutput,
    gif: Option<GifRecorder<BufWriter<File>>>,
    apng: Option<ApngRecorder<BufWriter<File>>>,
    /// Time spent converting and encoding.
    pub writing: Duration,
}

impl Recorder {
    /// Creates the directory and files; the animations will hold `options.frames` frames.
    pub fn new(options: &FrameOptions, image: &ImageOutput) -> anyhow::Result<Recorder> {
        if let Some(dir) = &options.record_dir {
            std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        }
        let shape = image.shape;
        let gif = match &options.gif {
            Some(path) => {
                Some(GifRecorder::new(create_file(path)?, shape.width, shape.height, f64::from(ANIMATION_FPS))?)
            }
            None => None,
        };
        let frames = u32::try_from(options.frames).unwrap_or(u32::MAX);
        let apng = match &options.apng {
            Some(path) => Some(ApngRecorder::new(create_file(path)?, shape, frames, ANIMATION_FPS)?),
            None => None,
        };
        Ok(Recorder { options: options.clone(), image: image.clone(), gif, apng, writing: Duration::ZERO })
    }

    /// Writes frame `index`, the image output's host bytes.
    pub fn add(&mut self, index: u64, image: &HostArray) -> anyhow::Result<()> {
        let start = Instant::now();
        let pixels = Image8::from_elements(&image.bytes, self.image.element, &self.image.dims, self.options.range)?;
        if let Some(dir) = &self.options.record_dir {
            let path = dir.join(frame_file_name(index));
            let mut file = create_file(&path)?;
            pixels.encode_png(&mut file)?;
            file.flush().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        }
        if let Some(gif) = self.gif.as_mut() {
            gif.add_frame(&pixels)?;
        }
        if let Some(apng) = self.apng.as_mut() {
            apng.add_frame(&pixels)?;
        }
        self.writing += start.elapsed();
        Ok(())
    }

    /// Ends the animations; returns what was written, for the summary.
    pub fn finish(self) -> anyhow::Result<Vec<String>> {
        let mut wrote = Vec::new();
        if let Some(dir) = &self.options.record_dir {
            wrote.push(format!("{}/frame_*.png", dir.display()));
        }
        if let Some(gif) = self.gif {
            gif.finish()?.flush()?;
            wrote.push(self.options.gif.as_ref().expect("a GIF path").display().to_string());
        }
        if let Some(apng) = self.apng {
            apng.finish()?;
            wrote.push(self.options.apng.as_ref().expect("an APNG path").display().to_string());
        }
        Ok(wrote)
    }
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
    let image = ImageOutput::choose(output_shapes, options.image)?;
    let mut recorder = Recorder::new(options, &image)?;
    let records = options.records();
    let progress = progress_bar(options.frames, records);
    let mut on_frame = |index: u64, shown: Option<&HostArray>| -> anyhow::Result<()> {
        if let Some(shown) = shown {
            recorder.add(index, shown)?;
        }
        progress.inc(1);
        Ok(())
    };
    let outcome = prepared.run_frames(inputs, feeds, options.frames, image.index, records, &mut on_frame)?;
    progress.finish_and_clear();
    let writing = recorder.writing;
    let wrote = recorder.finish()?;
    let what = format!("frames of out_{} on {} (fed: {})", image.index, prepared.device(), describe_feeds(feeds));
    let timed = if records { "compute + image read-back" } else { "compute" };
    let frames = outcome.frame_times.len() as u64;
    print_frame_summary(frames, &what, timed, &outcome.frame_times, outcome.bytes_after_first);
    if !wrote.is_empty() {
        eprintln!(
            "wrote {} (encoding took {}; {:.1} frames/s in all)",
            wrote.join(" and "),
            ms(writing),
            outcome.frame_times.len() as f64 / (outcome.wall + writing).as_secs_f64().max(1e-9)
        );
    }
    let LoopOutcome { outputs, .. } = outcome;
    Ok(outputs)
}

/// `out_1 -> input 0, ...` or `nothing`.
pub fn describe_feeds(feeds: &[Feed]) -> String {
    let fed: Vec<String> = feeds.iter().map(|f| f.to_string()).collect();
    if fed.is_empty() {
        "nothing".to_string()
    } else {
        fed.join(", ")
    }
}

fn create_file(path: &Path) -> anyhow::Result<BufWriter<File>> {
    Ok(BufWriter::new(File::create(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?))
}

/// A progress bar on stderr for recordings, only on a terminal.
fn progress_bar(frames: u64, records: bool) -> indicatif::ProgressBar {
    if !records || frames < 2 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(frames);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} frames {per_sec} eta {eta}")
            .expect("a valid template"),
    );
    bar
}

/// The end-of-run summary of `frames` frames: `N <what>`, the frame time (min, median, p99) of what `timed`
/// names, and the bytes copied between host and device per frame after the first (`None`: no device).
pub fn print_frame_summary(
    frames: u64,
    what: &str,
    timed: &str,
    frame_times: &[Duration],
    bytes_after_first: Option<u64>,
) {
    eprintln!("{frames} {what}");
    if let Some(t) = Timings::from_samples(frame_times) {
        let total: Duration = frame_times.iter().sum();
        eprintln!(
            "frame time ({timed}): min {}  median {}  p99 {}  = {:.1} frames/s",
            ms(t.min),
            ms(t.median),
            ms(t.p99),
            frame_times.len() as f64 / total.as_secs_f64().max(1e-9)
        );
    }
    if let Some(bytes) = bytes_after_first {
        eprintln!("{}", transfer_line("frame", bytes, frames));
    }
}

/// `host<->device copies: N bytes per frame after the first`, from the bytes of `count - 1` steps.
pub fn transfer_line(step: &str, bytes: u64, count: u64) -> String {
    let per = if count > 1 { bytes as f64 / (count - 1) as f64 } else { 0.0 };
    let after = count.saturating_sub(1);
    format!("host<->device copies: {per:.0} bytes per {step} after the first ({bytes} bytes in {after} {step}s)")
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
