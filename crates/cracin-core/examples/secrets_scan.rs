//! Benchmark of the secrets scan (`scripts/bench-secrets.sh`): scans the `pages-*.img` files
//! of an images directory for N needles plus the PEM markers, as `cracin checkpoint` does
//! before sealing, and prints bytes, seconds and seconds per 100 MB.
//! Usage: secrets_scan IMAGES_DIR [NEEDLES] [RUNS]

use std::time::Instant;

use cracin_core::ckpt::secrets::{memory_files, scan, Needle};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .expect("usage: secrets_scan IMAGES_DIR [NEEDLES] [RUNS]");
    let n: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(20);
    let runs: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(5);
    // Values shaped like real secrets: 16-40 random-looking characters.
    let needles: Vec<Needle> = (0..n)
        .map(|i| Needle {
            what: format!("environment variable SECRET_{i}"),
            value: format!(
                "s3cr3t-{i:04}-{:x}",
                (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            )
            .into_bytes(),
        })
        .collect();
    let files = memory_files(std::path::Path::new(&dir));
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let (found, b) = scan(&files, &needles).expect("scan");
        times.push(t.elapsed().as_secs_f64());
        bytes = b;
        assert!(found.is_empty(), "the data holds no needle: {found:?}");
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = times[times.len() / 2];
    println!(
        "files={} bytes={} needles={} runs={} median_s={:.3} min_s={:.3} max_s={:.3} s_per_100MB={:.3} MB_per_s={:.0}",
        files.len(),
        bytes,
        n,
        runs,
        median,
        times[0],
        times[times.len() - 1],
        median / (bytes as f64 / 100e6),
        bytes as f64 / 1e6 / median
    );
}
