//! The report as one hand-written SVG picture: the latency of each of the first requests after a
//! cold start, after a restore and at steady state (lines, log scale), the time to the first
//! response cold versus restored per engine (bars), and the sizes (horizontal bars). Pure and
//! dependency-free: coordinates are computed here, text is escaped, the result is valid XML.

use std::fmt::Write as _;

use super::{EngineReport, Report};
use crate::os::text::human_bytes;

pub const WIDTH: f64 = 960.0;
pub const HEIGHT: f64 = 760.0;

/// Series colours (also what the screenshot test looks for).
pub const COLD: &str = "#d62728";
pub const RESTORED: &str = "#1f77b4";
pub const STEADY: &str = "#2ca02c";
const BASE: &str = "#7f7f7f";
const APP: &str = "#9467bd";
const CKPT: &str = "#ff7f0e";
const GRID: &str = "#dddddd";
const AXIS: &str = "#333333";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn text(s: &mut String, x: f64, y: f64, size: u32, anchor: &str, extra: &str, t: &str) {
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{anchor}"{extra}>{}</text>"#,
        esc(t)
    );
}

fn line(s: &mut String, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str, width: f64) {
    let _ = writeln!(
        s,
        r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}" stroke-width="{width}"/>"#
    );
}

fn rect(s: &mut String, x: f64, y: f64, w: f64, h: f64, fill: &str) {
    let _ = writeln!(
        s,
        r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}"/>"#,
        w.max(0.0),
        h.max(0.0)
    );
}

/// "0.1 ms", "1 ms", "10 ms", "1 s" for a decade.
fn decade_label(v: f64) -> String {
    if v >= 1000.0 {
        format!("{} s", v / 1000.0)
    } else if v >= 1.0 {
        format!("{v:.0} ms")
    } else {
        format!("{} ms", (v * 1000.0).round() / 1000.0)
    }
}

/// At most `n` characters, with an ellipsis when cut.
fn clip(t: &str, n: usize) -> String {
    if t.chars().count() <= n {
        t.to_string()
    } else {
        t.chars().take(n - 1).collect::<String>() + "…"
    }
}

fn ms_label(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">"#
    );
    let _ = writeln!(s, "<title>cracin report: cold start versus restore</title>");
    rect(&mut s, 0.0, 0.0, WIDTH, HEIGHT, "#ffffff");
    text(
        &mut s,
        20.0,
        28.0,
        18,
        "start",
        r#" font-weight="bold""#,
        "cracin report: cold start versus restore",
    );
    // Two short lines rather than one that a long JVM version pushes off the picture.
    let load = match (r.machine.load_at_start, r.machine.load_at_end) {
        (Some(a), Some(b)) => format!(", load average {a:.1} → {b:.1}"),
        _ => String::new(),
    };
    let grey = r##" fill="#555555""##;
    let machine = format!(
        "{} · {}, {} cores, Linux {}{load}",
        r.date, r.machine.cpu_model, r.machine.cores, r.machine.kernel
    );
    text(&mut s, 20.0, 47.0, 12, "start", grey, &machine);
    let tools = format!(
        "JVM {} · CRIU {} · every figure a median of {} runs · command: {}",
        r.jvm,
        r.criu,
        r.runs,
        r.command.join(" ")
    );
    text(&mut s, 20.0, 63.0, 12, "start", grey, &clip(&tools, 150));
    latency_chart(&mut s, r, 80.0, 105.0, 860.0, 280.0);
    start_chart(&mut s, r, 80.0, 475.0, 360.0, 215.0);
    size_chart(&mut s, r, 500.0, 475.0, 440.0, 240.0);
    s.push_str("</svg>\n");
    s
}

/// Lines of the first requests' latency, log-scaled y. (x0, y0) is the plot's top-left corner.
fn latency_chart(s: &mut String, r: &Report, x0: f64, y0: f64, w: f64, h: f64) {
    let eng: Option<&EngineReport> = r.engines.iter().find(|e| {
        e.latency
            .as_ref()
            .is_some_and(|l| !l.cold_first_ms.is_empty() || !l.restored_first_ms.is_empty())
    });
    let Some(e) = eng else {
        text(
            s,
            x0,
            y0 - 12.0,
            15,
            "start",
            r#" font-weight="bold""#,
            "Latency of the first requests",
        );
        text(
            s,
            x0 + w / 2.0,
            y0 + h / 2.0,
            14,
            "middle",
            r##" fill="#777777""##,
            "no latency series measured",
        );
        return;
    };
    let l = e.latency.as_ref().unwrap();
    let series = [
        ("after cold start", &l.cold_first_ms, COLD),
        ("after restore", &l.restored_first_ms, RESTORED),
        ("steady state", &l.steady_ms, STEADY),
    ];
    let n = series
        .iter()
        .map(|(_, v, _)| v.len())
        .max()
        .unwrap_or(0)
        .max(2);
    text(
        s,
        x0,
        y0 - 12.0,
        15,
        "start",
        r#" font-weight="bold""#,
        &format!(
            "Latency of each of the first {} requests ({} engine, {})",
            n, e.engine, l.url
        ),
    );
    let vals: Vec<f64> = series
        .iter()
        .flat_map(|(_, v, _)| v.iter().cloned())
        .filter(|v| *v > 0.0)
        .collect();
    let lo_v = vals.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi_v = vals.iter().cloned().fold(0.0, f64::max);
    let (mut lo, mut hi) = if vals.is_empty() {
        (-1.0, 1.0)
    } else {
        (lo_v.log10().floor(), hi_v.log10().ceil())
    };
    if hi <= lo {
        hi = lo + 1.0;
    }
    lo = lo.max(-4.0);
    let ys = |v: f64| -> f64 {
        let lv = v.max(10f64.powf(lo)).log10();
        y0 + h - (lv - lo) / (hi - lo) * h
    };
    let xs = |i: usize| -> f64 { x0 + i as f64 / (n - 1) as f64 * w };
    // grid: decades with minor lines at 2 and 5
    let mut d = lo as i32;
    while d as f64 <= hi {
        let v = 10f64.powi(d);
        let y = ys(v);
        line(s, x0, y, x0 + w, y, "#bbbbbb", 1.0);
        text(s, x0 - 8.0, y + 4.0, 12, "end", "", &decade_label(v));
        if (d as f64) < hi {
            for m in [2.0, 5.0] {
                let y = ys(v * m);
                line(s, x0, y, x0 + w, y, GRID, 0.6);
            }
        }
        d += 1;
    }
    // x ticks: request 1, then every tenth
    let mut ticks = vec![1];
    ticks.extend((1..=n / 10).map(|k| k * 10));
    for t in ticks {
        if t > n {
            continue;
        }
        let x = xs(t - 1);
        line(s, x, y0 + h, x, y0 + h + 5.0, AXIS, 1.0);
        text(s, x, y0 + h + 19.0, 12, "middle", "", &t.to_string());
    }
    line(s, x0, y0 + h, x0 + w, y0 + h, AXIS, 1.2);
    line(s, x0, y0, x0, y0 + h, AXIS, 1.2);
    text(
        s,
        x0 + w / 2.0,
        y0 + h + 38.0,
        13,
        "middle",
        "",
        "request number after the start",
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">latency per request (log scale)</text>"#,
        x0 - 58.0,
        y0 + h / 2.0,
        x0 - 58.0,
        y0 + h / 2.0
    );
    for (_, v, colour) in &series {
        if v.is_empty() {
            continue;
        }
        let pts: Vec<String> = v
            .iter()
            .enumerate()
            .map(|(i, y)| format!("{:.1},{:.1}", xs(i), ys(*y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round" points="{}"/>"#,
            pts.join(" ")
        );
    }
    // The legend goes into the corner of the plot that hides the fewest points (top right
    // when they tie); it names each series with its first request and its median.
    let (lw, lh) = (350.0, 74.0);
    let corners = [
        (x0 + w - lw - 10.0, y0 + 10.0),
        (x0 + w - lw - 10.0, y0 + h - lh - 10.0),
        (x0 + 10.0, y0 + h - lh - 10.0),
        (x0 + 10.0, y0 + 10.0),
    ];
    let hidden = |(cx, cy): (f64, f64)| -> usize {
        series
            .iter()
            .flat_map(|(_, v, _)| v.iter().enumerate().map(|(i, y)| (xs(i), ys(*y))))
            .filter(|(px, py)| {
                *px >= cx - 4.0 && *px <= cx + lw + 4.0 && *py >= cy - 4.0 && *py <= cy + lh + 4.0
            })
            .count()
    };
    let (lx, ly) = corners
        .iter()
        .copied()
        .min_by_key(|c| hidden(*c))
        .unwrap_or(corners[0]);
    let _ = writeln!(
        s,
        r##"<rect x="{lx:.1}" y="{ly:.1}" width="{lw}" height="{lh}" fill="#ffffff" fill-opacity="0.9" stroke="#999999"/>"##
    );
    for (k, (name, v, colour)) in series.iter().enumerate() {
        let y = ly + 18.0 + 22.0 * k as f64;
        line(s, lx + 10.0, y - 4.0, lx + 40.0, y - 4.0, colour, 3.0);
        let desc = if v.is_empty() {
            format!("{name}: not measured")
        } else {
            format!(
                "{name}: 1st {}, median {}",
                ms_label(v[0]),
                ms_label(crate::measure::stats::median(v))
            )
        };
        text(s, lx + 48.0, y, 12, "start", "", &desc);
    }
}

/// Grouped bars: cold versus restored time to the first response, per engine.
fn start_chart(s: &mut String, r: &Report, x0: f64, y0: f64, w: f64, h: f64) {
    text(
        s,
        x0 - 60.0,
        y0 - 22.0,
        15,
        "start",
        r#" font-weight="bold""#,
        "Time to first response (median)",
    );
    let max = r
        .engines
        .iter()
        .flat_map(|e| [e.cold_ms.as_ref(), e.restore_ms.as_ref()])
        .flatten()
        .map(|x| x.median)
        .fold(0.0, f64::max);
    let top = nice_ceiling(max.max(1.0));
    // 2 × 10^k splits into 4 steps of 0.5 × 10^k; 1, 2.5, 5 and 10 into 5 round steps.
    let mantissa = top / 10f64.powf(top.log10().floor());
    let steps = if (mantissa - 2.0).abs() < 1e-9 { 4 } else { 5 };
    let yv = |v: f64| y0 + h - v / top * h;
    for k in 0..=steps {
        let v = top * k as f64 / steps as f64;
        let y = yv(v);
        line(s, x0, y, x0 + w, y, GRID, 0.8);
        text(
            s,
            x0 - 8.0,
            y + 4.0,
            12,
            "end",
            "",
            &if top >= 10_000.0 {
                format!("{} s", v / 1000.0)
            } else {
                format!("{v:.0} ms")
            },
        );
    }
    line(s, x0, y0 + h, x0 + w, y0 + h, AXIS, 1.2);
    line(s, x0, y0, x0, y0 + h, AXIS, 1.2);
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">time to first 2xx</text>"#,
        x0 - 64.0,
        y0 + h / 2.0,
        x0 - 64.0,
        y0 + h / 2.0
    );
    let n = r.engines.len().max(1);
    let gw = w / n as f64;
    let bw = (gw * 0.32).min(50.0);
    for (i, e) in r.engines.iter().enumerate() {
        let cx = x0 + gw * (i as f64 + 0.5);
        text(s, cx, y0 + h + 18.0, 13, "middle", "", e.engine.name());
        if e.not_measured.is_some() {
            text(
                s,
                cx,
                y0 + h - 10.0,
                11,
                "middle",
                r##" fill="#777777""##,
                "not measured",
            );
            continue;
        }
        for (j, (st, colour)) in [(&e.cold_ms, COLD), (&e.restore_ms, RESTORED)]
            .iter()
            .enumerate()
        {
            if let Some(st) = st {
                let x = cx - bw - 2.0 + j as f64 * (bw + 4.0);
                let y = yv(st.median);
                rect(s, x, y, bw, y0 + h - y, colour);
                text(
                    s,
                    x + bw / 2.0,
                    y - 5.0,
                    11,
                    "middle",
                    "",
                    &ms_label(st.median),
                );
            }
        }
    }
    // legend under the engine names
    let ly = y0 + h + 40.0;
    rect(s, x0, ly - 10.0, 12.0, 12.0, COLD);
    text(s, x0 + 18.0, ly, 12, "start", "", "cold start");
    rect(s, x0 + 110.0, ly - 10.0, 12.0, 12.0, RESTORED);
    text(
        s,
        x0 + 128.0,
        ly,
        12,
        "start",
        "",
        "restored from the checkpoint",
    );
}

/// 1, 2, 5 × 10^k at or above v.
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

/// Horizontal bars: every size measured, per engine.
fn size_chart(s: &mut String, r: &Report, x0: f64, y0: f64, w: f64, h: f64) {
    text(
        s,
        x0,
        y0 - 22.0,
        15,
        "start",
        r#" font-weight="bold""#,
        "Sizes",
    );
    let mut rows: Vec<(String, u64, &str)> = Vec::new();
    for e in r.engines.iter().filter(|e| e.not_measured.is_none()) {
        let z = &e.sizes;
        for (name, b, colour) in [
            ("base image", z.base_image_bytes, BASE),
            ("application image", z.app_image_bytes, APP),
            ("restore image", z.restore_image_bytes, RESTORED),
            ("checkpoint files", z.checkpoint_bytes, CKPT),
        ] {
            if let Some(b) = b {
                rows.push((format!("{}: {name}", e.engine), b, colour));
            }
        }
    }
    if rows.is_empty() {
        text(
            s,
            x0 + w / 2.0,
            y0 + h / 2.0,
            13,
            "middle",
            r##" fill="#777777""##,
            "no sizes measured",
        );
        return;
    }
    let label_w = 190.0;
    let value_w = 70.0;
    let bar_w = w - label_w - value_w;
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1) as f64;
    let rh = (h / rows.len() as f64).min(30.0);
    for (i, (name, b, colour)) in rows.iter().enumerate() {
        let y = y0 + i as f64 * rh;
        text(
            s,
            x0 + label_w - 8.0,
            y + rh * 0.5 + 4.0,
            12,
            "end",
            "",
            name,
        );
        let bw = *b as f64 / max * bar_w;
        rect(
            s,
            x0 + label_w,
            y + rh * 0.15,
            bw.max(1.0),
            rh * 0.7,
            colour,
        );
        text(
            s,
            x0 + label_w + bw + 6.0,
            y + rh * 0.5 + 4.0,
            12,
            "start",
            "",
            &human_bytes(*b),
        );
    }
    line(
        s,
        x0 + label_w,
        y0,
        x0 + label_w,
        y0 + rh * rows.len() as f64,
        AXIS,
        1.2,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_svg_with_every_series_and_label() {
        let svg = render(&super::super::sample());
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"760\" viewBox=\"0 0 960 760\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        for c in [COLD, RESTORED, STEADY] {
            assert!(svg.contains(&format!("stroke=\"{c}\"")), "{c}");
        }
        assert!(svg.contains("request number after the start"));
        assert!(svg.contains("latency per request (log scale)"));
        assert!(
            svg.contains(">1 ms<") && svg.contains(">100 ms<"),
            "decade labels"
        );
        assert!(svg.contains("podman: restore image") && svg.contains("435.0 MB"));
        assert!(svg.contains(">not measured<"), "docker's group says so");
        // round ticks on the start-time axis (top 5000 ms in steps of 1000)
        assert!(
            svg.contains(">1000 ms<") && svg.contains(">5000 ms<"),
            "start-time ticks"
        );
        // each polyline has 100 points
        let pl = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        assert_eq!(
            pl.split("points=\"").nth(1).unwrap().split(' ').count(),
            100
        );
    }

    #[test]
    fn text_is_escaped_and_tags_balance() {
        let mut r = super::super::sample();
        r.jvm = "<17> & \"x\"".into();
        let svg = render(&r);
        assert!(svg.contains("&lt;17&gt; &amp; &quot;x&quot;"));
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    }

    #[test]
    fn no_series_no_panic() {
        let mut r = super::super::sample();
        for e in &mut r.engines {
            e.latency = None;
            e.sizes = Default::default();
        }
        let svg = render(&r);
        assert!(svg.contains("no latency series measured") && svg.contains("no sizes measured"));
    }

    #[test]
    fn long_lines_are_clipped() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
        let mut r = super::super::sample();
        r.command = vec!["x".repeat(400)];
        assert!(!render(&r).contains(&"x".repeat(200)));
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(2410.0), 2500.0);
        assert_eq!(nice_ceiling(3100.0), 5000.0);
        assert_eq!(nice_ceiling(90.0), 100.0);
    }
}
