//! The report's chart as a browser draws it: renders the SVG of a report with fixed figures,
//! screenshots it with headless Chromium and checks the picture is really there (not blank, the
//! three latency lines' colours present, several colours in all). Rendering logic only: the
//! figures are fixed, nothing is measured.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cracin_core::report::{self, svg};

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn hex(c: &str) -> [u8; 3] {
    let v = u32::from_str_radix(c.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// RGB pixels of a PNG.
fn pixels(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let dec = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let px = buf[..info.buffer_size()]
        .chunks(step)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (info.width, info.height, px)
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter()
        .zip(b.iter())
        .all(|(x, y)| (*x as i32 - *y as i32).abs() <= 12)
}

#[test]
fn the_chart_renders_in_a_browser() {
    let chrome = require!(chromium().ok_or("no chromium (scripts/setup.sh installs it)"));
    let dir = common::tempdir("report-svg");
    let svg_path = dir.join("report.svg");
    std::fs::write(&svg_path, svg::render(&report::sample())).unwrap();
    let png_path = dir.join("report.png");
    let profile = dir.join("profile");
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png_path.display()))
        .arg("--window-size=1000,800")
        .arg(format!("file://{}", svg_path.display()))
        .output()
        .expect("chromium runs");
    assert!(
        png_path.is_file(),
        "no screenshot; chromium said: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let len = std::fs::metadata(&png_path).unwrap().len();
    assert!(len > 20_000, "screenshot is only {len} bytes");
    let (w, h, px) = pixels(&png_path);
    assert_eq!((w, h), (1000, 800));
    let white = px.iter().filter(|p| **p == [255, 255, 255]).count();
    assert!(white < px.len() * 97 / 100, "the picture is (almost) blank");
    let mut distinct: Vec<[u8; 3]> = px.clone();
    distinct.sort();
    distinct.dedup();
    assert!(
        distinct.len() > 50,
        "only {} colours: nothing was drawn",
        distinct.len()
    );
    for (name, c) in [
        ("cold", svg::COLD),
        ("restored", svg::RESTORED),
        ("steady", svg::STEADY),
    ] {
        let n = px.iter().filter(|p| near(**p, hex(c))).count();
        assert!(n > 200, "the {name} line ({c}) has only {n} pixels");
    }
    // Kept for a human to look at when CRACIN_KEEP_SCREENSHOT is set; removed otherwise.
    if let Some(keep) = std::env::var_os("CRACIN_KEEP_SCREENSHOT") {
        std::fs::copy(&png_path, keep).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
