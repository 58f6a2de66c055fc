//! `hlo-run --present` tested as a person would use it: on an X server without a screen (Xvfb), the seed's
//! simulation opens a window; two screenshots (`xwd`) a moment apart must show particles, and different ones;
//! Esc (pressed with `xdotool`) closes the window, and the run ends with status 0 and no validation message.
//! Needs Xvfb, xwd and xdotool: `scripts/setup-system.sh` installs them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hlo-run-present-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const SETUP_HINT: &str = "run `bash scripts/setup-system.sh` (it installs xvfb, x11-apps and xdotool)";

/// An Xvfb server on a display number nobody uses; killed when dropped.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        // Tests of this process take turns through the numbers; other processes start elsewhere.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let first = 100 + (std::process::id() % 200) * 4;
        let candidates = (0..80).map(|_| first + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        for number in candidates {
            if Path::new(&format!("/tmp/.X{number}-lock")).exists() {
                continue;
            }
            let display = format!(":{number}");
            let spawned = Command::new("Xvfb")
                // -noreset: by default the server resets when its last client leaves, so a connection made just
                // after the readiness probe below disconnected could be refused while it regenerates.
                .args([&display, "-screen", "0", "1024x768x24", "-br", "-nolisten", "tcp", "-noreset"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(std::env::temp_dir().join(format!("xvfb-{number}.log"))).unwrap())
                .spawn();
            let child = match spawned {
                Ok(child) => child,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    panic!("Xvfb is not installed, so --present cannot be tested: {SETUP_HINT}")
                }
                Err(e) => panic!("cannot start Xvfb: {e}"),
            };
            let mut server = Xvfb { child, display };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if server.child.try_wait().unwrap().is_some() {
                    break; // Another server has the number: try the next one.
                }
                // Ready once a client can connect (our server: it is still running, and held the lock).
                if server.client("xdotool", &["getdisplaygeometry"]).status.success() {
                    return server;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("no free X display number for Xvfb");
    }

    /// Runs an X client (xwd, xdotool) on this display.
    fn client(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program).args(args).env("DISPLAY", &self.display).output().unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): {SETUP_HINT}");
        })
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM lets the server remove its socket and lock file; SIGKILL only if it does not go.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A screenshot as 8-bit RGB pixels.
struct Screenshot {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

/// Reads an XWD file (X Window Dump, what `xwd` writes): a big-endian header of 25 words, the window name,
/// the colour map, then ZPixmap pixels whose channels the header's masks locate.
fn parse_xwd(bytes: &[u8]) -> Screenshot {
    let word = |k: usize| u32::from_be_bytes(bytes[4 * k..4 * k + 4].try_into().unwrap());
    let (header_size, version, format) = (word(0) as usize, word(1), word(2));
    assert_eq!((version, format), (7, 2), "an XWD version 7 ZPixmap dump");
    let (width, height) = (word(4) as usize, word(5) as usize);
    let (byte_order, bits_per_pixel, bytes_per_line) = (word(7), word(11) as usize, word(12) as usize);
    let masks = [word(14), word(15), word(16)];
    let ncolors = word(19) as usize;
    assert_eq!(bits_per_pixel, 32, "a 24-bit screen is dumped with 32 bits per pixel");
    let data = &bytes[header_size + 12 * ncolors..];
    assert!(data.len() >= bytes_per_line * height, "the dump holds every row");
    let channel = |pixel: u32, mask: u32| ((pixel & mask) >> mask.trailing_zeros()) as u8;
    let mut rgb = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let at = y * bytes_per_line + 4 * x;
            let raw: [u8; 4] = data[at..at + 4].try_into().unwrap();
            let pixel = if byte_order == 0 { u32::from_le_bytes(raw) } else { u32::from_be_bytes(raw) };
            rgb.push(masks.map(|m| channel(pixel, m)));
        }
    }
    Screenshot { width, height, rgb }
}

fn screenshot(x: &Xvfb) -> Screenshot {
    let out = x.client("xwd", &["-root", "-silent"]);
    assert!(out.status.success(), "xwd failed: {}", String::from_utf8_lossy(&out.stderr));
    parse_xwd(&out.stdout)
}

/// Waits for a window whose name contains `name`; its id.
fn find_window(x: &Xvfb, name: &str, run: &mut Child, log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = x.client("xdotool", &["search", "--name", name]);
        if let Some(id) = String::from_utf8_lossy(&out.stdout).lines().next() {
            return id.trim().to_string();
        }
        if let Some(status) = run.try_wait().unwrap() {
            panic!("hlo-run ended ({status}) before its window appeared:\n{}", read(log));
        }
        assert!(Instant::now() < deadline, "no window after two minutes:\n{}", read(log));
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits for `run` to end by itself, at most `limit`.
fn wait_for(run: &mut Child, limit: Duration, log: &Path) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = run.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = run.kill();
            let _ = run.wait();
            panic!("hlo-run did not end within {limit:?}:\n{}", read(log));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `hlo-run` on display `x` with validation on; stdout and stderr go to files in `dir`.
fn start_hlo_run(x: &Xvfb, dir: &Path, args: &[&str]) -> (Child, PathBuf) {
    let log = dir.join("stderr.txt");
    let child = Command::new(env!("CARGO_BIN_EXE_hlo-run"))
        .args(args)
        .current_dir(repo())
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env("HLO_VULKAN_VALIDATION", "1")
        .stdout(std::fs::File::create(dir.join("stdout.txt")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("hlo-run starts");
    (child, log)
}

/// No validation message and no logged warning or error (the layer's messages are logged as they come, also
/// after the last check, e.g. an object still alive when the device is destroyed).
fn assert_no_validation_messages(text: &str) {
    for needle in ["VUID", "validation", "Validation", "SYNC-HAZARD", "ObjectTracker", "ERROR", "WARN"] {
        assert!(!text.contains(needle), "a validation message: {text}");
    }
}

/// Pixels brighter than the black background (Xvfb's `-br` root and the letterbox are black).
fn lit(shot: &Screenshot) -> usize {
    shot.rgb.iter().filter(|p| p.iter().any(|&c| c > 48)).count()
}

#[test]
fn the_seed_simulation_runs_in_a_window_and_esc_closes_it() {
    let x = Xvfb::start();
    let dir = temp_dir("seed");
    let s = repo().join("hlo-samples/seed_frame");
    let module = s.join("module.hlo").display().to_string();
    let inputs: Vec<String> = (0..4).map(|k| s.join(format!("in_{k}.npy")).display().to_string()).collect();
    let mut args: Vec<&str> = vec![&module];
    args.extend(inputs.iter().map(String::as_str));
    args.extend(["--present", "--feed", "1=0", "--feed", "2=1", "-o"]);
    let out_dir = dir.join("out").display().to_string();
    args.push(&out_dir);
    let (mut run, log) = start_hlo_run(&x, &dir, &args);
    let window = find_window(&x, "hlo-run", &mut run, &log);
    // Let a few frames go by (lavapipe with validation draws a few per second).
    std::thread::sleep(Duration::from_secs(3));
    let first = screenshot(&x);
    std::thread::sleep(Duration::from_millis(1500));
    let second = screenshot(&x);
    assert_eq!((first.width, first.height), (1024, 768));
    let (lit_first, lit_second) = (lit(&first), lit(&second));
    let moved = first.rgb.iter().zip(&second.rgb).filter(|(a, b)| a != b).count();
    let title = String::from_utf8_lossy(&x.client("xdotool", &["getwindowname", &window]).stdout).into_owned();
    // A wide window letterboxes the square image: 400x400 in the middle of 900x400.
    x.client("xdotool", &["windowsize", "--sync", &window, "900", "400"]);
    std::thread::sleep(Duration::from_secs(2));
    let wide = screenshot(&x);
    let mut outside = 0;
    let mut inside = 0;
    for (k, p) in wide.rgb.iter().enumerate() {
        if p.iter().any(|&c| c > 48) {
            let (px, py) = (k % wide.width, k / wide.width);
            if (250..650).contains(&px) && py < 400 {
                inside += 1;
            } else {
                outside += 1;
            }
        }
    }

    x.client("xdotool", &["windowfocus", "--sync", &window]);
    x.client("xdotool", &["key", "Escape"]);
    let status = wait_for(&mut run, Duration::from_secs(60), &log);
    let err = read(&log);
    assert!(status.success(), "hlo-run --present ended with {status}:\n{err}");
    assert_no_validation_messages(&err);
    assert!(err.contains("presented on") && err.contains("closed by Escape"), "{err}");
    assert!(err.contains("host<->device copies: 0 bytes per frame after the first"), "{err}");
    assert!(title.contains("frames/s") && title.contains("ms/frame"), "the title shows the frame rate: {title}");
    // The 300x300 image fills a 600x600 window; its particles light thousands of pixels.
    assert!(lit_first > 3000 && lit_second > 3000, "particles visible: {lit_first} and {lit_second} lit pixels");
    assert!(moved > 500, "the particles move between screenshots: {moved} pixels changed");
    assert!(inside > 1000 && outside == 0, "after resizing, {inside} lit pixels in the letterbox, {outside} outside");
    assert!(dir.join("out/out_1.npy").exists(), "-o writes the last frame's outputs");
}

/// A stateless u8 grey program driven by `--bind t=frame`: the window closes by itself after `--frames`,
/// and the recorded frames show the bound frame number.
#[test]
fn bound_scalars_drive_a_grey_u8_image() {
    let x = Xvfb::start();
    let dir = temp_dir("bind");
    let module = dir.join("grey.hlo");
    std::fs::write(
        &module,
        "HloModule grey\n\nENTRY e {\n  t = s32[] parameter(0)\n  ten = s32[] constant(10)\n  \
         v = s32[] multiply(t, ten)\n  b = u8[] convert(v)\n  ROOT image = u8[24,32] broadcast(b), dimensions={}\n}\n",
    )
    .unwrap();
    let zero = dir.join("t.npy");
    hlo_run::npy::write_npy(
        &zero,
        &hlo_run::npy::HostArray { dtype: hlo_ir::DType::S32, dims: vec![], bytes: 0i32.to_le_bytes().to_vec() },
    )
    .unwrap();
    let record = dir.join("frames").display().to_string();
    let (m, z) = (module.display().to_string(), zero.display().to_string());
    let args = [&m, &z, "--present", "--no-vsync", "--bind", "t=frame", "--frames", "6", "--record", &record];
    let (mut run, log) = start_hlo_run(&x, &dir, &args);
    let status = wait_for(&mut run, Duration::from_secs(120), &log);
    let err = read(&log);
    assert!(status.success(), "{err}");
    assert_no_validation_messages(&err);
    assert!(err.contains("6 frames of out_0 presented") && err.contains("bound: t=frame"), "{err}");
    // The bound scalar is uploaded every frame, and honestly counted: 4 bytes, plus the recorded image
    // (u8 elements are 32-bit words on the device: 24 * 32 * 4 bytes).
    assert!(err.contains("host<->device copies: 3076 bytes per frame after the first"), "{err}");
    for k in 0..6u8 {
        let file = std::fs::File::open(dir.join(format!("frames/frame_{k:05}.png"))).unwrap();
        let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height, info.color_type), (32, 24, png::ColorType::Grayscale));
        assert!(buf[..info.buffer_size()].iter().all(|&v| v == k * 10), "frame {k} shows t = {k}");
    }
}

#[test]
fn present_without_a_display_says_what_to_set() {
    let out = Command::new(env!("CARGO_BIN_EXE_hlo-run"))
        .args(["hlo-samples/seed_frame/module.hlo", "--random-inputs", "--present", "--feed", "1=0", "--feed", "2=1"])
        .current_dir(repo())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("DISPLAY") && err.contains("WAYLAND_DISPLAY") && err.contains("--frames N --record DIR"),
        "{err}"
    );
}
