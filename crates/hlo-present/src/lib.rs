//! The presentation layer: turns a module's image output (row-major HWC elements of f32 or u8)
//! into 8-bit pixels and writes them as PNG frames, one animated GIF or one animated PNG; and
//! ([`window`]) the window of `hlo-run --present`: its event loop, input, title and frame pacing.
//!
//! It knows nothing of HLO or Vulkan: callers hand it bytes, an element type and dimensions, or
//! draw into the window themselves (`hlo-run` puts `hlo_vulkan::Presenter`'s swapchain on it).
//! It writes only to the `Write` it is handed (opening files is `hlo-run`'s job).

#![forbid(unsafe_code)]

use std::io::Write;
use std::str::FromStr;

pub mod window;

/// What can go wrong turning an array into pixels or writing them.
#[derive(Debug, thiserror::Error)]
pub enum PresentError {
    #[error("an image is HxW or HxWxC with C in 1, 3 or 4; found dimensions {0:?}")]
    NotAnImage(Vec<usize>),
    #[error("image of {expected} bytes expected ({height}x{width}x{channels} {element}), found {found}")]
    ByteCount { expected: usize, found: usize, height: usize, width: usize, channels: usize, element: ElementType },
    #[error("{width}x{height} is too large for a GIF (at most 65535 on a side)")]
    TooLargeForGif { width: usize, height: usize },
    #[error("GIF frame of {found_width}x{found_height} in an animation of {width}x{height}")]
    FrameSizeChanged { width: usize, height: usize, found_width: usize, found_height: usize },
    #[error("encoding PNG: {0}")]
    Png(#[from] png::EncodingError),
    #[error("encoding GIF: {0}")]
    Gif(#[from] gif::EncodingError),
    #[error("animated PNG frame of {found_width}x{found_height} with {found_channels} channels in an animation of {width}x{height} with {channels}")]
    ApngFrameChanged {
        width: usize,
        height: usize,
        channels: usize,
        found_width: usize,
        found_height: usize,
        found_channels: usize,
    },
    #[error("an animated PNG needs at least one frame")]
    EmptyApng,
    /// No window system to open a window on.
    #[error("{0}")]
    NoDisplay(String),
    /// The window system failed after the window was open.
    #[error("window system: {0}")]
    Window(String),
}

/// Element types an image output may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElementType {
    F32,
    U8,
}

impl ElementType {
    pub fn size(self) -> usize {
        match self {
            ElementType::F32 => 4,
            ElementType::U8 => 1,
        }
    }
}

impl std::fmt::Display for ElementType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ElementType::F32 => "f32",
            ElementType::U8 => "u8",
        })
    }
}

/// Which float values mean black and full intensity (u8 images are always 0..255).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValueRange {
    /// 0.0 is black, 1.0 is full intensity (what matplotlib and mediapy assume for floats).
    #[default]
    Unit,
    /// 0.0 is black, 255.0 is full intensity.
    Byte,
}

impl FromStr for ValueRange {
    type Err = String;

    fn from_str(s: &str) -> Result<ValueRange, String> {
        match s {
            "0..1" => Ok(ValueRange::Unit),
            "0..255" => Ok(ValueRange::Byte),
            _ => Err(format!("expected 0..1 or 0..255, found `{s}`")),
        }
    }
}

/// Height, width and channels of an image array, from its dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageShape {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl ImageShape {
    /// `[H, W]` (one channel) or `[H, W, C]` with C in {1, 3, 4}; `None` for anything else.
    pub fn from_dims(dims: &[usize]) -> Option<ImageShape> {
        match *dims {
            [height, width] if height > 0 && width > 0 => Some(ImageShape { height, width, channels: 1 }),
            [height, width, channels] if height > 0 && width > 0 && matches!(channels, 1 | 3 | 4) => {
                Some(ImageShape { height, width, channels })
            }
            _ => None,
        }
    }

    fn elements(&self) -> usize {
        self.height * self.width * self.channels
    }
}

/// 8-bit pixels, row-major, `channels` samples per pixel (grey, RGB or RGBA).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image8 {
    pub shape: ImageShape,
    pub samples: Vec<u8>,
}

impl Image8 {
    /// Converts the raw little-endian elements of an image array: floats are scaled by `range`,
    /// rounded and clamped (NaN is black); u8 is taken as is.
    pub fn from_elements(
        bytes: &[u8],
        element: ElementType,
        dims: &[usize],
        range: ValueRange,
    ) -> Result<Image8, PresentError> {
        let shape = ImageShape::from_dims(dims).ok_or_else(|| PresentError::NotAnImage(dims.to_vec()))?;
        let expected = shape.elements() * element.size();
        if bytes.len() != expected {
            return Err(PresentError::ByteCount {
                expected,
                found: bytes.len(),
                height: shape.height,
                width: shape.width,
                channels: shape.channels,
                element,
            });
        }
        let samples = match element {
            ElementType::U8 => bytes.to_vec(),
            ElementType::F32 => {
                let scale = match range {
                    ValueRange::Unit => 255.0,
                    ValueRange::Byte => 1.0,
                };
                bytes
                    .chunks_exact(4)
                    .map(|c| {
                        let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]) * scale;
                        // `as` saturates and maps NaN to 0: exactly the clamp wanted.
                        v.round() as u8
                    })
                    .collect()
            }
        };
        Ok(Image8 { shape, samples })
    }

    pub fn width(&self) -> usize {
        self.shape.width
    }

    pub fn height(&self) -> usize {
        self.shape.height
    }

    /// Every pixel as opaque-or-not RGBA (grey is replicated; GIF frames need RGBA).
    pub fn to_rgba(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.shape.height * self.shape.width * 4);
        for px in self.samples.chunks_exact(self.shape.channels) {
            match *px {
                [g] => out.extend_from_slice(&[g, g, g, 255]),
                [r, g, b] => out.extend_from_slice(&[r, g, b, 255]),
                [r, g, b, a] => out.extend_from_slice(&[r, g, b, a]),
                _ => unreachable!("ImageShape allows 1, 3 or 4 channels"),
            }
        }
        out
    }

    /// PNG bytes (grey, RGB or RGBA as the image has them) into `writer`.
    pub fn encode_png(&self, writer: impl Write) -> Result<(), PresentError> {
        let mut encoder = png::Encoder::new(writer, self.shape.width as u32, self.shape.height as u32);
        encoder.set_color(png_color(self.shape.channels));
        encoder.set_depth(png::BitDepth::Eight);
        // Frames are written while the animation runs: favour speed over a few percent of size.
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.samples)?;
        writer.finish()?;
        Ok(())
    }
}

/// `DIR/frame_00042.png`: zero-padded so that a directory listing is in frame order.
pub fn frame_file_name(index: u64) -> String {
    format!("frame_{index:05}.png")
}

/// An animated GIF written frame by frame, looping forever.
pub struct GifRecorder<W: Write> {
    encoder: gif::Encoder<W>,
    width: usize,
    height: usize,
    delay_centiseconds: u16,
}

impl<W: Write> GifRecorder<W> {
    /// An animation of `width` x `height` at about `fps` frames per second (GIF delays are whole
    /// hundredths of a second).
    pub fn new(writer: W, width: usize, height: usize, fps: f64) -> Result<Self, PresentError> {
        let (w, h) = match (u16::try_from(width), u16::try_from(height)) {
            (Ok(w), Ok(h)) => (w, h),
            _ => return Err(PresentError::TooLargeForGif { width, height }),
        };
        let mut encoder = gif::Encoder::new(writer, w, h, &[])?;
        encoder.set_repeat(gif::Repeat::Infinite)?;
        let delay_centiseconds = (100.0 / fps.max(1.0)).round().clamp(1.0, 65535.0) as u16;
        Ok(GifRecorder { encoder, width, height, delay_centiseconds })
    }

    /// Appends a frame, quantized to its own 256-colour palette (NeuQuant); GIF has no partial
    /// transparency, so the frame is made opaque.
    pub fn add_frame(&mut self, image: &Image8) -> Result<(), PresentError> {
        if image.width() != self.width || image.height() != self.height {
            return Err(PresentError::FrameSizeChanged {
                width: self.width,
                height: self.height,
                found_width: image.width(),
                found_height: image.height(),
            });
        }
        let mut rgba = image.to_rgba();
        rgba.chunks_exact_mut(4).for_each(|px| px[3] = 255);
        // Speed 10 of 1..30: a good palette in a few milliseconds for a 300x300 frame.
        let mut frame = gif::Frame::from_rgba_speed(self.width as u16, self.height as u16, &mut rgba, 10);
        frame.delay = self.delay_centiseconds;
        self.encoder.write_frame(&frame)?;
        Ok(())
    }

    /// Writes the trailer and hands back the writer.
    pub fn finish(self) -> Result<W, PresentError> {
        Ok(self.encoder.into_inner()?)
    }
}

/// An animated PNG written frame by frame, looping forever. APNG declares its frame count up
/// front, so the recorder is told how many frames to expect; an animation that ends early is
/// completed by holding its last frame, so the file is always valid.
pub struct ApngRecorder<W: Write> {
    writer: png::Writer<W>,
    shape: ImageShape,
    declared: u32,
    written: u32,
    last: Option<Image8>,
}

impl<W: Write> ApngRecorder<W> {
    /// An animation of `frames` frames of `shape` at `fps` frames per second.
    pub fn new(writer: W, shape: ImageShape, frames: u32, fps: u16) -> Result<Self, PresentError> {
        if frames == 0 {
            return Err(PresentError::EmptyApng);
        }
        let mut encoder = png::Encoder::new(writer, shape.width as u32, shape.height as u32);
        encoder.set_color(png_color(shape.channels));
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        encoder.set_animated(frames, 0)?;
        encoder.set_frame_delay(1, fps.max(1))?;
        let writer = encoder.write_header()?;
        Ok(ApngRecorder { writer, shape, declared: frames, written: 0, last: None })
    }

    /// Appends a frame; frames past the declared count are dropped.
    pub fn add_frame(&mut self, image: &Image8) -> Result<(), PresentError> {
        if image.shape != self.shape {
            return Err(PresentError::ApngFrameChanged {
                width: self.shape.width,
                height: self.shape.height,
                channels: self.shape.channels,
                found_width: image.shape.width,
                found_height: image.shape.height,
                found_channels: image.shape.channels,
            });
        }
        if self.written < self.declared {
            self.writer.write_image_data(&image.samples)?;
            self.written += 1;
            self.last = Some(image.clone());
        }
        Ok(())
    }

    /// Frames added so far.
    pub fn frames(&self) -> u32 {
        self.written
    }

    /// Holds the last frame for any frames still declared, then writes the end of the file.
    pub fn finish(mut self) -> Result<(), PresentError> {
        let last = self.last.take().ok_or(PresentError::EmptyApng)?;
        while self.written < self.declared {
            self.writer.write_image_data(&last.samples)?;
            self.written += 1;
        }
        self.writer.finish()?;
        Ok(())
    }
}

fn png_color(channels: usize) -> png::ColorType {
    match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        _ => png::ColorType::Rgba,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn floats_are_scaled_rounded_and_clamped() {
        let bytes = f32_bytes(&[0.0, 0.5, 1.0, 2.0, -1.0, f32::NAN]);
        let unit = Image8::from_elements(&bytes, ElementType::F32, &[1, 2, 3], ValueRange::Unit).unwrap();
        assert_eq!(unit.samples, vec![0, 128, 255, 255, 0, 0]);
        let bytes = f32_bytes(&[0.0, 127.6, 300.0]);
        let byte = Image8::from_elements(&bytes, ElementType::F32, &[1, 3], ValueRange::Byte).unwrap();
        assert_eq!(byte.samples, vec![0, 128, 255]);
        assert_eq!(byte.shape, ImageShape { height: 1, width: 3, channels: 1 });
    }

    #[test]
    fn shapes_that_are_not_images_are_refused() {
        for dims in [&[4][..], &[2, 2, 2], &[2, 2, 5], &[0, 3], &[1, 2, 3, 4]] {
            assert!(ImageShape::from_dims(dims).is_none(), "{dims:?}");
        }
        let err = Image8::from_elements(&[0; 5], ElementType::U8, &[2, 2], ValueRange::Unit).unwrap_err();
        assert!(err.to_string().contains("4 bytes expected"), "{err}");
        let err = Image8::from_elements(&[], ElementType::U8, &[7], ValueRange::Unit).unwrap_err();
        assert!(matches!(err, PresentError::NotAnImage(_)), "{err}");
    }

    #[test]
    fn rgba_expands_grey_and_rgb() {
        let grey = Image8::from_elements(&[7, 9], ElementType::U8, &[1, 2], ValueRange::Unit).unwrap();
        assert_eq!(grey.to_rgba(), vec![7, 7, 7, 255, 9, 9, 9, 255]);
        let rgb = Image8::from_elements(&[1, 2, 3], ElementType::U8, &[1, 1, 3], ValueRange::Unit).unwrap();
        assert_eq!(rgb.to_rgba(), vec![1, 2, 3, 255]);
    }

    #[test]
    fn png_round_trips() {
        let samples: Vec<u8> = (0..2 * 3 * 3).map(|v| (v * 13) as u8).collect();
        let image = Image8::from_elements(&samples, ElementType::U8, &[2, 3, 3], ValueRange::Unit).unwrap();
        let mut bytes = Vec::new();
        image.encode_png(&mut bytes).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height, info.color_type), (3, 2, png::ColorType::Rgb));
        assert_eq!(&buf[..info.buffer_size()], &samples[..]);
    }

    #[test]
    fn gif_holds_every_frame() {
        let mut recorder = GifRecorder::new(Vec::new(), 4, 2, 30.0).unwrap();
        for k in 0..3u8 {
            let image = Image8::from_elements(&[k * 80; 8], ElementType::U8, &[2, 4], ValueRange::Unit).unwrap();
            recorder.add_frame(&image).unwrap();
        }
        let wrong = Image8::from_elements(&[0; 4], ElementType::U8, &[2, 2], ValueRange::Unit).unwrap();
        assert!(matches!(recorder.add_frame(&wrong), Err(PresentError::FrameSizeChanged { .. })));
        let bytes = recorder.finish().unwrap();
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::RGBA);
        let mut decoder = options.read_info(std::io::Cursor::new(bytes)).unwrap();
        let mut greys = Vec::new();
        while let Some(frame) = decoder.read_next_frame().unwrap() {
            assert_eq!((frame.width, frame.height, frame.delay), (4, 2, 3));
            greys.push(frame.buffer[0]);
        }
        assert_eq!(greys.len(), 3);
        assert!(greys[0] < greys[1] && greys[1] < greys[2], "{greys:?}");
        assert!(GifRecorder::new(Vec::new(), 70_000, 2, 30.0).is_err());
    }

    #[test]
    fn apng_declares_and_holds_every_frame() {
        let shape = ImageShape { height: 2, width: 3, channels: 1 };
        let mut bytes = Vec::new();
        let mut recorder = ApngRecorder::new(&mut bytes, shape, 4, 30).unwrap();
        for k in 0..3u8 {
            let image = Image8 { shape, samples: vec![k * 50; 6] };
            recorder.add_frame(&image).unwrap();
        }
        let wrong = Image8 { shape: ImageShape { channels: 3, ..shape }, samples: vec![0; 18] };
        assert!(matches!(recorder.add_frame(&wrong), Err(PresentError::ApngFrameChanged { .. })));
        assert_eq!(recorder.frames(), 3);
        recorder.finish().unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
        let control = reader.info().animation_control.expect("an animated PNG");
        assert_eq!((control.num_frames, control.num_plays), (4, 0));
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let mut firsts = Vec::new();
        while let Ok(info) = reader.next_frame(&mut buf) {
            assert_eq!((info.width, info.height), (3, 2));
            firsts.push(buf[0]);
        }
        // The fourth frame holds the third.
        assert_eq!(firsts, vec![0, 50, 100, 100]);
        assert!(matches!(ApngRecorder::new(Vec::new(), shape, 0, 30), Err(PresentError::EmptyApng)));
    }
}
