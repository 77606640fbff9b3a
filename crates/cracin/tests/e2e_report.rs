//! End-to-end test of `cracin report` with real CRIU on a real JVM: the counter application is
//! started cold, checkpointed after a warm-up and restored (2 runs each, the smallest useful
//! session), and the three files must hold the measured figures: positive medians, a checkpoint
//! size, 100-entry latency series, a Markdown table and an SVG chart. Nothing may be left running.

mod common;

use common::*;

#[test]
fn report_on_the_counter_app() {
    require!(can_checkpoint());
    let work = tempdir("e2e-report");
    let out_dir = work.join("out");
    let port = free_port();
    let p = port.to_string();
    let out = run(cracin().current_dir(counter_classes()).args([
        "report",
        "--out",
        out_dir.to_str().unwrap(),
        "--runs",
        "2",
        "--engine",
        "local",
        "--ready",
        &format!("http://127.0.0.1:{port}/health"),
        "--ready-timeout",
        "30",
        "--warmup",
        &format!("http://127.0.0.1:{port}/work?n=50"),
        "--warmup-requests",
        "300",
        "--",
        "java",
        "-cp",
        ".",
        "Counter",
        &p,
    ]));
    assert!(out.status.success(), "report failed: {}", stderr(&out));
    let so = stdout(&out);
    assert!(
        so.contains("report.md") && so.contains("report.svg") && so.contains("report.json"),
        "{so}"
    );
    assert!(so.contains("local") && so.contains("restored"), "{so}");
    assert!(
        stderr(&out).contains("below 5"),
        "a short session is flagged"
    );
    assert_nothing_left(port);

    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(j["runs"], 2);
    assert!(
        j["criu"].as_str().unwrap().starts_with('4'),
        "{}",
        j["criu"]
    );
    assert!(j["jvm"].as_str().unwrap().contains('.'), "{}", j["jvm"]);
    assert!(j["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(!j["machine"]["kernel"].as_str().unwrap().is_empty());
    let e = &j["engines"][0];
    assert_eq!(e["engine"], "local");
    assert!(e["not_measured"].is_null());
    for k in ["cold_ms", "restore_ms"] {
        assert!(e[k]["median"].as_f64().unwrap() > 0.0, "{k}: {}", e[k]);
        assert_eq!(e[k]["samples"].as_array().unwrap().len(), 2, "{k}");
    }
    assert!(e["speedup"].as_f64().unwrap() > 0.0);
    assert!(e["checkpoint_ms"].as_f64().unwrap() > 0.0);
    assert!(e["sizes"]["checkpoint_bytes"].as_u64().unwrap() > 1_000_000);
    for k in ["cold_first_ms", "restored_first_ms", "steady_ms"] {
        let v = e["latency"][k].as_array().unwrap();
        assert_eq!(v.len(), 100, "{k}");
        assert!(v.iter().all(|x| x.as_f64().unwrap() > 0.0), "{k}");
    }

    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(
        md.contains("## Time to first response") && md.contains("| local | **"),
        "{md}"
    );
    assert!(md.contains("median of 2 runs"), "{md}");
    // What the checkpoint saved besides CRIU's images is said, with its size.
    assert!(
        md.contains("bytes of files saved with the checkpoint"),
        "{md}"
    );
    assert!(md.contains("## Warmth: the first 100 requests"), "{md}");
    assert!(
        md.contains(&format!("Counter {port}")),
        "the command is stated"
    );
    let svg = std::fs::read_to_string(out_dir.join("report.svg")).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_eq!(svg.matches("<polyline").count(), 3);
    std::fs::remove_dir_all(&work).unwrap();
}
