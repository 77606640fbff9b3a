//! The report as Markdown for people: where and with what it was measured, then the tables of
//! what a checkpoint costs and buys (time to first response, sizes, checkpoint and restore durations, warmth), then why
//! an engine was not measured. Pure: the same `Report` always gives the same text.

use std::fmt::Write as _;

use super::{EngineReport, Report};
use crate::measure::stats::Stats;
use crate::measure::stats::{median, percentile};
use crate::os::text::human_bytes;

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

fn stats(s: &Option<Stats>) -> String {
    match s {
        Some(s) => format!("**{}** ({}–{})", ms(s.median), ms(s.min), ms(s.max)),
        None => "–".into(),
    }
}

fn size(b: Option<u64>) -> String {
    b.map(human_bytes).unwrap_or_else(|| "–".into())
}

fn measured(r: &Report) -> impl Iterator<Item = &EngineReport> {
    r.engines.iter().filter(|e| e.not_measured.is_none())
}

/// Escapes `|` so a command line does not break a table or inline code.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# cracin report\n");
    let _ = writeln!(s, "| | |\n| --- | --- |");
    let _ = writeln!(s, "| date | {} |", r.date);
    let _ = writeln!(
        s,
        "| machine | {}, {} cores, Linux {} |",
        cell(&r.machine.cpu_model),
        r.machine.cores,
        cell(&r.machine.kernel)
    );
    if let (Some(a), Some(b)) = (r.machine.load_at_start, r.machine.load_at_end) {
        let _ = writeln!(
            s,
            "| load average | {a:.2} at the start, {b:.2} at the end ({} cores; other work on the machine slows every figure) |",
            r.machine.cores
        );
    }
    let _ = writeln!(s, "| CRIU | {} |", cell(&r.criu));
    let _ = writeln!(s, "| JVM | {} |", cell(&r.jvm));
    let _ = writeln!(s, "| command | `{}` |", cell(&r.command.join(" ")));
    let _ = writeln!(s, "| readiness | `{}` |", cell(&r.ready));
    if r.warmup.is_empty() {
        let _ = writeln!(s, "| warm-up | none |");
    } else {
        let _ = writeln!(
            s,
            "| warm-up | {} requests to `{}` |",
            r.warmup_requests,
            cell(&r.warmup.join("`, `"))
        );
    }
    let _ = writeln!(
        s,
        "| runs | every figure is the median of {} runs in this session (min–max in brackets) |",
        r.runs
    );
    let _ = writeln!(
        s,
        "| engines | {} |",
        r.engines
            .iter()
            .map(|e| e.engine.name())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let _ = writeln!(
        s,
        "\n![latency of the first requests, start times and sizes](report.svg)\n"
    );

    let _ = writeln!(s, "## Time to first response\n");
    let _ = writeln!(
        s,
        "| engine | cold start | restored | speed-up |\n| --- | --- | --- | --- |"
    );
    for e in measured(r) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            e.engine,
            stats(&e.cold_ms),
            stats(&e.restore_ms),
            e.speedup
                .map(|x| format!("{x:.1}×"))
                .unwrap_or_else(|| "–".into())
        );
    }
    let _ = writeln!(
        s,
        "\nLocal: launch of the command → first HTTP 2xx of the readiness URL, versus start of the \
         restore → first 2xx. Containers: `run -d` → first 2xx through the published port, for the \
         application image and for the restore image."
    );

    let _ = writeln!(s, "\n## Sizes\n");
    let _ = writeln!(
        s,
        "| engine | base image | application image | restore image | checkpoint files |\n| --- | --- | --- | --- | --- |"
    );
    for e in measured(r) {
        let z = &e.sizes;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            e.engine,
            size(z.base_image_bytes),
            size(z.app_image_bytes),
            size(z.restore_image_bytes),
            size(z.checkpoint_bytes)
        );
    }

    let _ = writeln!(s, "\n## Checkpoint and restore durations\n");
    let _ = writeln!(
        s,
        "| engine | checkpoint | what the checkpoint figure covers | restore → first 2xx (median) |\n| --- | --- | --- | --- |"
    );
    for e in measured(r) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            e.engine,
            e.checkpoint_ms.map(ms).unwrap_or_else(|| "–".into()),
            e.checkpoint_what,
            e.restore_ms
                .as_ref()
                .map(|x| ms(x.median))
                .unwrap_or_else(|| "–".into())
        );
    }

    let with_latency: Vec<&EngineReport> = measured(r).filter(|e| e.latency.is_some()).collect();
    if !with_latency.is_empty() {
        let n = with_latency[0]
            .latency
            .as_ref()
            .map(|l| l.cold_first_ms.len())
            .unwrap_or(0);
        let _ = writeln!(s, "\n## Warmth: the first {n} requests\n");
        let _ = writeln!(
            s,
            "Latency of each of the first {n} requests to `{}` after the first cold start and after \
             the first restore, and of {n} more requests to the restored JVM (steady state). \
             Sequential requests on one keep-alive connection.\n",
            cell(&with_latency[0].latency.as_ref().unwrap().url)
        );
        let _ = writeln!(
            s,
            "| engine | series | 1st request | median | p90 | max | sum |\n| --- | --- | --- | --- | --- | --- | --- |"
        );
        for e in &with_latency {
            let l = e.latency.as_ref().unwrap();
            for (name, v) in [
                ("after cold start", &l.cold_first_ms),
                ("after restore", &l.restored_first_ms),
                ("steady state", &l.steady_ms),
            ] {
                if v.is_empty() {
                    continue;
                }
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    e.engine,
                    name,
                    ms(v[0]),
                    ms(median(v)),
                    ms(percentile(v, 0.9)),
                    ms(v.iter().cloned().fold(0.0, f64::max)),
                    ms(v.iter().sum())
                );
            }
        }
    }

    let notes: Vec<String> = measured(r)
        .flat_map(|e| e.notes.iter().map(move |n| format!("{}: {n}", e.engine)))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(s, "\n## Notes\n");
        for n in notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    let missing: Vec<&EngineReport> = r
        .engines
        .iter()
        .filter(|e| e.not_measured.is_some())
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(s, "\n## Not measured\n");
        for e in missing {
            let _ = writeln!(
                s,
                "- {}: {}",
                e.engine,
                e.not_measured.as_deref().unwrap_or("")
            );
        }
    }
    let _ = writeln!(
        s,
        "\nRaw figures (every sample, every latency): `report.json`. Made by `cracin report`."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_hold_the_figures() {
        let md = render(&super::super::sample());
        assert!(
            md.contains("| machine | AMD EPYC 7B13, 2 cores, Linux 6.18.0 |"),
            "{md}"
        );
        assert!(md.contains("median of 5 runs"));
        assert!(
            md.contains("| load average | 1.50 at the start, 2.25 at the end (2 cores;"),
            "{md}"
        );
        assert!(
            md.contains(
                "| local | **2410 ms** (2377 ms–2502 ms) | **121 ms** (117 ms–130 ms) | 19.9× |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| podman | 346.0 MB | 372.0 MB | 435.0 MB | 62.0 MB |"),
            "{md}"
        );
        assert!(md.contains("| local | – | – | – | 61.0 MB |"), "{md}");
        assert!(md.contains("## Warmth: the first 100 requests"));
        assert!(md.contains("| local | after cold start | 180 ms |"), "{md}");
        assert!(md.contains("- docker: cracin's dockerd is not running"));
        // podman had no latency series: no warmth rows for it
        assert!(!md.contains("| podman | after cold start"));
    }

    #[test]
    fn pipes_in_commands_do_not_break_tables() {
        let mut r = super::super::sample();
        r.command = vec!["sh".into(), "-c".into(), "a | b".into()];
        assert!(render(&r).contains("`sh -c a \\| b`"));
    }
}
