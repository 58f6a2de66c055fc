//! `hlo-run MODULE INPUTS --present`: runs a frame program in a window, every frame as fast as the display
//! takes them (vsync by default), until Esc, the window is closed, or `--frames N` are shown.
//!
//! Everything stays on the device: the state is fed back as device arrays (the Vulkan backend's `DeviceLoop`),
//! and `hlo_vulkan::Presenter` converts the image output to the swapchain's size and format with a compute
//! pass. Only `--bind` scalars go up every frame, and the image comes down only for `--record`/`--gif`/`--apng`.
//! The window and its event loop are `hlo_present::window`'s; this file glues them to the device.

use crate::backend::vulkan::{open_context_for, DeviceLoop, VulkanPrepared};
use crate::backend::{PrepareOptions, Prepared};
use crate::bind::ResolvedBind;
use crate::feed::Feed;
use crate::frames::{describe_feeds, print_frame_summary, FrameOptions, ImageOutput, Recorder};
use crate::npy::HostArray;
use crate::user_error;
use hlo_ir::Module;
use hlo_present::window::{Display, FrameInput, Scene, Step, Window, WindowOptions};
use hlo_present::{ElementType, ValueRange};
use hlo_vulkan::{DeviceArray, ImageLayout, ImageWords, PresentOptions, PresentTarget, Presenter};
use std::sync::Arc;

/// What `--present` was asked for.
#[derive(Clone, Debug)]
pub struct PresentRequest {
    /// Wait for the display's refresh (FIFO); `--no-vsync` turns it off.
    pub vsync: bool,
    /// `--frames N`: close the window after N frames; otherwise run until closed.
    pub frames: Option<u64>,
    /// The image leaf and the recordings (`frames` is the recording's length when set).
    pub frame_options: FrameOptions,
    pub binds: Vec<ResolvedBind>,
    /// The window's title.
    pub title: String,
    /// `--stats`: print the executable's statistics at the end.
    pub stats: bool,
}

/// The message for a machine without a window system.
fn no_display(reason: &str) -> anyhow::Error {
    user_error(format!(
        "--present needs a display, and none could be opened ({reason}); set DISPLAY (X11) or WAYLAND_DISPLAY \
         (Wayland)\n  hint: without a display, `--frames N --record DIR` (or --gif FILE, --apng FILE) renders \
         the frames to files"
    ))
}

/// Fails unless the environment names a display (checked before anything is compiled).
pub fn check_display_named() -> anyhow::Result<()> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if !set("DISPLAY") && !set("WAYLAND_DISPLAY") && !set("WAYLAND_SOCKET") {
        return Err(no_display("neither DISPLAY nor WAYLAND_DISPLAY is set"));
    }
    Ok(())
}

/// Opens the window and runs frames in it; returns the last frame's outputs.
pub fn run_present(
    module: &Module,
    options: &PrepareOptions,
    inputs: &[HostArray],
    feeds: &[Feed],
    request: &PresentRequest,
) -> anyhow::Result<Vec<HostArray>> {
    check_display_named()?;
    let output_shapes = crate::inputs::output_leaves(&module.entry_comp().instr(module.entry_comp().root).shape);
    let image = ImageOutput::choose(&output_shapes, request.frame_options.image)?;
    if let Some(bind) = request.binds.iter().find(|b| feeds.iter().any(|f| f.input == b.input)) {
        return Err(user_error(format!(
            "--bind {}: input {} is also fed by an output; a parameter is either state or bound",
            bind.given, bind.input
        )));
    }
    let display = Display::open().map_err(|e| no_display(&e.to_string()))?;
    let handle = display.raw_handle().map_err(|e| no_display(&e.to_string()))?;
    let ctx = open_context_for(options.device.as_deref(), Some(handle))?;
    let mut prepared = VulkanPrepared::with_context(module, options, ctx)?;
    let state = prepared.start_loop(inputs, feeds)?;
    let recorder = match request.frame_options.records() {
        true => Some(Recorder::new(&request.frame_options, &image)?),
        false => None,
    };
    let layout = image_layout(&image, request.frame_options.range);
    let content_size = (image.shape.width as u32, image.shape.height as u32);
    let mut scene = PresentScene {
        prepared,
        state,
        outputs: Vec::new(),
        presenter: None,
        image,
        layout,
        request,
        recorder,
        error: None,
        after_first: None,
        mode: String::new(),
    };
    let window_options = WindowOptions { title: request.title.clone(), content_size };
    let report = display.run(&window_options, &mut scene);
    let PresentScene { mut prepared, outputs, recorder, error, after_first, mode, image, .. } = scene;
    if let Some(err) = error {
        return Err(err);
    }
    let report = report.map_err(|e| anyhow::anyhow!("{e}"))?;
    prepared.synchronize()?;
    let bytes_after_first = after_first.map(|before| prepared.transferred_bytes() - before);
    let wrote = match recorder {
        Some(recorder) => recorder.finish()?,
        None => Vec::new(),
    };
    let bound: Vec<&str> = request.binds.iter().map(|b| b.given.as_str()).collect();
    let what = format!(
        "frames of out_{} presented on {} ({mode}; fed: {}{}; closed by {:?})",
        image.index,
        prepared.device(),
        describe_feeds(feeds),
        if bound.is_empty() { String::new() } else { format!("; bound: {}", bound.join(", ")) },
        report.ending
    );
    print_frame_summary(report.frames, &what, "what the window showed", &report.frame_times, bytes_after_first);
    if !wrote.is_empty() {
        eprintln!("wrote {}", wrote.join(" and "));
    }
    if request.stats {
        eprintln!("{}", prepared.stats());
    }
    if outputs.is_empty() {
        return Err(anyhow::anyhow!("the window closed before the first frame"));
    }
    let outputs = prepared.read_all(&outputs)?;
    crate::backend::finish_outputs(&prepared, outputs)
}

/// How the presenter reads the image output on the device (u8 is stored as one u32 per element).
fn image_layout(image: &ImageOutput, range: ValueRange) -> ImageLayout {
    let words = match image.element {
        ElementType::F32 => ImageWords::F32 {
            full_scale: match range {
                ValueRange::Unit => 1.0,
                ValueRange::Byte => 255.0,
            },
        },
        ElementType::U8 => ImageWords::U8,
    };
    ImageLayout {
        height: image.shape.height as u32,
        width: image.shape.width as u32,
        channels: image.shape.channels as u32,
        words,
    }
}

/// The device side of the window: one call and one present per frame.
struct PresentScene<'a> {
    prepared: VulkanPrepared,
    state: DeviceLoop,
    /// The last call's outputs, on the device.
    outputs: Vec<Option<DeviceArray>>,
    presenter: Option<Presenter>,
    image: ImageOutput,
    layout: ImageLayout,
    request: &'a PresentRequest,
    recorder: Option<Recorder>,
    /// The first failure; the loop stops at it.
    error: Option<anyhow::Error>,
    /// Bytes copied between host and device when the first frame was done.
    after_first: Option<u64>,
    /// Present mode and format, for the summary.
    mode: String,
}

impl PresentScene<'_> {
    fn frame(&mut self, input: &FrameInput) -> anyhow::Result<Step> {
        for bind in &self.request.binds {
            self.prepared.set_input(&mut self.state, bind.input, &bind.host_value(input))?;
        }
        if !self.outputs.is_empty() {
            VulkanPrepared::feed(&mut self.state, &mut self.outputs)?;
        }
        self.outputs = self.prepared.call(&mut self.state)?;
        let shown = self.outputs[self.image.index]
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("internal error: the image output was moved"))?;
        let presenter = self.presenter.as_mut().ok_or_else(|| anyhow::anyhow!("internal error: no presenter"))?;
        presenter.present(shown, &self.layout).map_err(|e| anyhow::anyhow!("presenting: {e}"))?;
        if let Some(recorder) = self.recorder.as_mut() {
            let host = self.prepared.read_output_array(self.image.index, shown)?;
            recorder.add(input.frame, &host)?;
        }
        self.prepared.check_validation()?;
        if input.frame == 0 {
            self.after_first = Some(self.prepared.transferred_bytes());
        }
        let done = self.request.frames.is_some_and(|n| input.frame + 1 >= n);
        Ok(if done { Step::Stop } else { Step::Continue })
    }

    fn fail(&mut self, err: anyhow::Error) -> Step {
        self.error.get_or_insert(err);
        Step::Stop
    }
}

impl Scene for PresentScene<'_> {
    fn open(&mut self, window: Arc<Window>) -> Step {
        let size = window.inner_size();
        let target: Arc<dyn PresentTarget> = window;
        let options = PresentOptions { vsync: self.request.vsync };
        match Presenter::new(self.prepared.context(), target, (size.width, size.height), options) {
            Ok(presenter) => {
                self.mode = format!("{}, {}", presenter.present_mode(), presenter.format());
                self.presenter = Some(presenter);
                Step::Continue
            }
            Err(err) => self.fail(anyhow::anyhow!("cannot present to the window: {err}")),
        }
    }

    fn resized(&mut self, width: u32, height: u32) {
        if let Some(presenter) = self.presenter.as_mut() {
            presenter.resize(width, height);
        }
    }

    fn draw(&mut self, input: &FrameInput) -> Step {
        match self.frame(input) {
            Ok(step) => step,
            Err(err) => self.fail(err),
        }
    }

    fn close(&mut self) {
        // The swapchain and surface go while the window and its display connection are still there.
        self.presenter = None;
    }
}
