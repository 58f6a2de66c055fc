//! The window of `hlo-run --present`: opens the display, runs winit's event loop, and asks a [`Scene`] for a
//! frame as soon as the previous one is done (the scene's swapchain paces it: vsync or not).
//!
//! The loop owns what a person does: Esc or closing the window ends it, resizing is passed on, and the pointer
//! and the clock become a [`FrameInput`] (mouse position in the image's pixel coordinates, as the scene
//! letterboxes it). The title shows frames per second and frame time, refreshed twice a second.
//! Drawing is the scene's business: this module knows nothing of Vulkan.

use std::sync::Arc;
use std::time::{Duration, Instant};

use winit::application::ApplicationHandler;
use winit::dpi::PhysicalSize;
use winit::event::{ElementState, MouseButton, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop};
use winit::keyboard::{Key, NamedKey};
use winit::raw_window_handle::HasDisplayHandle;
use winit::window::WindowId;

use crate::PresentError;

pub use winit::raw_window_handle::RawDisplayHandle;
pub use winit::window::Window;

/// How often the title's frame rate is refreshed.
const TITLE_PERIOD: Duration = Duration::from_millis(500);

/// The shorter side a small image is scaled up to at least (by a whole factor) in the first window.
const SMALL_SIDE: u32 = 512;

/// The first window's size is at most this on either side.
const LARGEST_SIDE: u32 = 1024;

/// What the window shows and how it starts.
#[derive(Clone, Debug)]
pub struct WindowOptions {
    /// The title, before the frame rate.
    pub title: String,
    /// The image's width and height in pixels: mouse positions are given in its coordinates.
    pub content_size: (u32, u32),
}

/// What a person does, read once per frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FrameInput {
    /// Frames drawn before this one.
    pub frame: u64,
    /// Seconds since the window opened.
    pub time: f32,
    /// The pointer in the image's pixel coordinates (column, row); outside the image when the pointer is on
    /// the letterbox borders. Where the pointer was last seen; 0 before it entered the window.
    pub mouse_x: f32,
    pub mouse_y: f32,
    /// The left button is held.
    pub mouse_down: bool,
}

/// Whether the loop goes on after a scene's call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// Close the window: the scene is done or failed (it keeps its own error).
    Stop,
}

/// What draws into the window. Calls come from the event loop's thread, in order: `open`, then `draw` and
/// `resized` any number of times, then `close`, before the window is gone.
pub trait Scene {
    /// The window exists: make what draws into it.
    fn open(&mut self, window: Arc<Window>) -> Step;
    /// The window's inner size in pixels changed.
    fn resized(&mut self, width: u32, height: u32);
    /// Draws one frame; blocks as long as the display makes it wait. `Stop` after the last frame (it counts)
    /// or a failure.
    fn draw(&mut self, input: &FrameInput) -> Step;
    /// The loop ends: drop what refers to the window.
    fn close(&mut self);
}

/// Why the loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Esc was pressed.
    Escape,
    /// The window was closed.
    Closed,
    /// The scene asked to stop.
    Scene,
}

/// What the loop measured.
#[derive(Clone, Debug)]
pub struct WindowReport {
    pub frames: u64,
    /// Time from the end of each frame to the end of the next: what a person sees.
    pub frame_times: Vec<Duration>,
    pub ending: Ending,
}

/// A connection to the window system, made before any window so that the Vulkan instance can be opened for it.
pub struct Display {
    event_loop: EventLoop<()>,
}

impl Display {
    /// Connects to the display named by `WAYLAND_DISPLAY` or `DISPLAY`; [`PresentError::NoDisplay`] says why not.
    pub fn open() -> Result<Display, PresentError> {
        let event_loop = EventLoop::new().map_err(|e| PresentError::NoDisplay(e.to_string()))?;
        Ok(Display { event_loop })
    }

    /// The display's handle, for the Vulkan instance's surface extensions.
    pub fn raw_handle(&self) -> Result<RawDisplayHandle, PresentError> {
        let handle = self.event_loop.display_handle().map_err(|e| PresentError::NoDisplay(e.to_string()))?;
        Ok(handle.as_raw())
    }

    /// Opens the window and runs the loop until Esc, the window is closed, or the scene stops.
    pub fn run(self, options: &WindowOptions, scene: &mut dyn Scene) -> Result<WindowReport, PresentError> {
        self.event_loop.set_control_flow(ControlFlow::Poll);
        let mut app = App {
            options,
            scene,
            window: None,
            state: Pointer::default(),
            opened: Instant::now(),
            last_frame_end: None,
            report: WindowReport { frames: 0, frame_times: Vec::new(), ending: Ending::Scene },
            title_since: Instant::now(),
            title_frames: 0,
            error: None,
            closed: false,
        };
        self.event_loop.run_app(&mut app).map_err(|e| PresentError::Window(e.to_string()))?;
        app.shut();
        match app.error {
            Some(err) => Err(err),
            None => Ok(app.report),
        }
    }
}

/// The first window size: the image scaled up by a whole factor while small, and never larger than
/// [`LARGEST_SIDE`] (keeping the aspect).
pub fn initial_window_size((width, height): (u32, u32)) -> (u32, u32) {
    let (width, height) = (width.max(1), height.max(1));
    let factor = SMALL_SIDE.div_ceil(width.min(height)).max(1);
    let (w, h) = (width * factor, height * factor);
    let shrink = (w.max(h) as f64 / LARGEST_SIDE as f64).max(1.0);
    (((w as f64 / shrink) as u32).max(1), ((h as f64 / shrink) as u32).max(1))
}

/// Where a window pixel falls in the image when the image is letterboxed into the window (as large as fits,
/// centred).
pub fn window_to_image(window: (u32, u32), image: (u32, u32), (x, y): (f64, f64)) -> (f32, f32) {
    let (ww, wh) = (window.0.max(1) as f64, window.1.max(1) as f64);
    let (iw, ih) = (image.0.max(1) as f64, image.1.max(1) as f64);
    let fit = (ww / iw).min(wh / ih);
    let (shown_w, shown_h) = ((iw * fit).floor(), (ih * fit).floor());
    let (ox, oy) = (((ww - shown_w) / 2.0).floor(), ((wh - shown_h) / 2.0).floor());
    (((x - ox) / fit) as f32, ((y - oy) / fit) as f32)
}

#[derive(Clone, Copy, Debug, Default)]
struct Pointer {
    x: f64,
    y: f64,
    down: bool,
}

struct App<'a> {
    options: &'a WindowOptions,
    scene: &'a mut dyn Scene,
    window: Option<Arc<Window>>,
    state: Pointer,
    opened: Instant,
    last_frame_end: Option<Instant>,
    report: WindowReport,
    title_since: Instant,
    title_frames: u64,
    error: Option<PresentError>,
    closed: bool,
}

impl App<'_> {
    fn stop(&mut self, event_loop: &ActiveEventLoop, ending: Ending) {
        self.report.ending = ending;
        event_loop.exit();
    }

    /// Lets the scene let go of the window, once.
    fn shut(&mut self) {
        if !self.closed {
            self.closed = true;
            self.scene.close();
        }
        self.window = None;
    }

    fn draw(&mut self, event_loop: &ActiveEventLoop) {
        let Some(window) = self.window.clone() else { return };
        let size = window.inner_size();
        let (mouse_x, mouse_y) =
            window_to_image((size.width, size.height), self.options.content_size, (self.state.x, self.state.y));
        let input = FrameInput {
            frame: self.report.frames,
            time: self.opened.elapsed().as_secs_f32(),
            mouse_x,
            mouse_y,
            mouse_down: self.state.down,
        };
        let step = self.scene.draw(&input);
        let now = Instant::now();
        if let Some(last) = self.last_frame_end.replace(now) {
            self.report.frame_times.push(now - last);
        }
        self.report.frames += 1;
        self.title_frames += 1;
        let since = now - self.title_since;
        if since >= TITLE_PERIOD {
            let fps = self.title_frames as f64 / since.as_secs_f64();
            window.set_title(&format!(
                "{} — {fps:.1} frames/s, {:.1} ms/frame",
                self.options.title,
                1e3 / fps.max(1e-9)
            ));
            (self.title_since, self.title_frames) = (now, 0);
        }
        if step == Step::Stop {
            self.stop(event_loop, Ending::Scene);
            return;
        }
        window.request_redraw();
    }
}

impl ApplicationHandler for App<'_> {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.window.is_some() {
            return;
        }
        let (width, height) = initial_window_size(self.options.content_size);
        let attributes = Window::default_attributes()
            .with_title(self.options.title.clone())
            .with_inner_size(PhysicalSize::new(width, height));
        let window = match event_loop.create_window(attributes) {
            Ok(window) => Arc::new(window),
            Err(err) => {
                self.error = Some(PresentError::Window(format!("cannot create the window: {err}")));
                self.stop(event_loop, Ending::Scene);
                return;
            }
        };
        self.window = Some(window.clone());
        self.opened = Instant::now();
        self.title_since = self.opened;
        if self.scene.open(window.clone()) == Step::Stop {
            self.stop(event_loop, Ending::Scene);
            return;
        }
        window.request_redraw();
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        match event {
            WindowEvent::CloseRequested => self.stop(event_loop, Ending::Closed),
            WindowEvent::KeyboardInput { event, .. }
                if event.state == ElementState::Pressed && event.logical_key == Key::Named(NamedKey::Escape) =>
            {
                self.stop(event_loop, Ending::Escape)
            }
            WindowEvent::Resized(size) => self.scene.resized(size.width, size.height),
            WindowEvent::CursorMoved { position, .. } => (self.state.x, self.state.y) = (position.x, position.y),
            WindowEvent::MouseInput { state, button: MouseButton::Left, .. } => {
                self.state.down = state == ElementState::Pressed
            }
            WindowEvent::RedrawRequested => self.draw(event_loop),
            _ => {}
        }
    }

    fn exiting(&mut self, _event_loop: &ActiveEventLoop) {
        self.shut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_images_open_larger_and_large_ones_fit() {
        assert_eq!(initial_window_size((300, 300)), (600, 600));
        assert_eq!(initial_window_size((64, 32)), (1024, 512));
        assert_eq!(initial_window_size((2000, 1000)), (1024, 512));
        assert_eq!(initial_window_size((800, 600)), (800, 600));
    }

    #[test]
    fn pointer_positions_map_through_the_letterbox() {
        // A 300x300 image in an 800x600 window: scaled by 2, 100 pixels of border left and right.
        assert_eq!(window_to_image((800, 600), (300, 300), (100.0, 0.0)), (0.0, 0.0));
        assert_eq!(window_to_image((800, 600), (300, 300), (400.0, 300.0)), (150.0, 150.0));
        assert!(window_to_image((800, 600), (300, 300), (50.0, 10.0)).0 < 0.0);
    }
}
