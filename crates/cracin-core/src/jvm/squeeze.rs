//! The full GC right before the dump, with the heap squeezed to what is live and the JVM's own
//! heap sizing put back afterwards.
//!
//! Committed heap pages that the collector keeps after the full GC were written before (they
//! held objects), so CRIU dumps them although they hold garbage. How much a collector keeps is
//! Min/MaxHeapFreeRatio (manageable flags: settable in a running JVM). cracin sets both to 0 for
//! the one full GC before the dump, so the heap shrinks to its live data (in whole regions, never
//! below the initial heap), and sets them back to the values the JVM had before the dump: a
//! restored JVM sizes its heap exactly as it would have, it only starts smaller and grows as it
//! allocates.
//!
//! Before that GC, cracin waits (bounded) until the JIT's compile queues are empty: a C2
//! compilation in flight holds arenas of many MB in the malloc heap, which the dump would keep
//! (and the restored JVM would finish compiling what a quiet moment would have finished anyway).
//! A finished compilation's arena chunks go to HotSpot's chunk pool, which a periodic task frees
//! every 5 s (measured with native memory tracking on the OSGi application: "Arena Chunk" 14.8 MB
//! right after the warm-up, 0.2 MB 5 s later); so the native heap is trimmed only once that
//! task ran after the JIT went quiet.
//! Measured on the reference OSGi application with G1 in docs/bench-size.md.

use std::time::Duration;

use crate::error::Result;
use crate::jvm::attach::jcmd;

/// How long the dump waits at most for the JIT's compile queues to empty.
pub const JIT_WAIT: Duration = Duration::from_secs(10);

/// HotSpot's chunk pool cleaner runs every 5 s (ChunkPoolCleaner): after the JIT went quiet,
/// this long until the compiler's arenas are back in the malloc heap, where a trim frees them.
pub const CHUNK_POOL_CLEAN: Duration = Duration::from_millis(5200);

/// The JVM's free ratios, from `VM.flags` output (HotSpot's defaults 40/70 when not set).
pub fn free_ratios(vm_flags: &str) -> (u32, u32) {
    let get = |name: &str, default: u32| {
        vm_flags
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("-XX:{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    (get("MinHeapFreeRatio", 40), get("MaxHeapFreeRatio", 70))
}

/// The attach commands that squeeze the heap around `GC.run` and put the ratios back, in an
/// order that keeps Min <= Max at every step (the JVM refuses otherwise).
pub fn commands(min: u32, max: u32) -> (Vec<String>, Vec<String>) {
    let before = vec![
        "VM.set_flag MinHeapFreeRatio 0".to_string(),
        "VM.set_flag MaxHeapFreeRatio 0".to_string(),
    ];
    let after = vec![
        format!("VM.set_flag MaxHeapFreeRatio {max}"),
        format!("VM.set_flag MinHeapFreeRatio {min}"),
    ];
    (before, after)
}

/// Whether `jcmd Compiler.queue` output shows no compilation running or waiting.
pub fn jit_idle(queue: &str) -> bool {
    queue.lines().skip(1).map(str::trim).all(|l| {
        l.is_empty() || l == "Empty" || l.ends_with("compile queue:") || l == "Current compiles:"
    })
}

/// Waits until the JIT is idle, at most `max`; returns how long it waited and whether it
/// became idle (a JVM without the command counts as idle).
pub fn wait_for_jit(pid: u32, max: Duration) -> (Duration, bool) {
    let start = std::time::Instant::now();
    loop {
        match jcmd(pid, "Compiler.queue", Duration::from_secs(10)) {
            Ok(q) if !jit_idle(&q) => {}
            _ => return (start.elapsed(), true),
        }
        if start.elapsed() >= max {
            return (start.elapsed(), false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a full GC in JVM `pid`; with `squeeze`, with the free ratios at 0 for it and put back
/// afterwards. Returns the name of what ran ("GC.run", "GC.run (heap squeezed to live data)").
/// A JVM that refuses the ratios gets the plain full GC; one that refuses them back fails the
/// step (it would otherwise run on with ratios the user never chose).
pub fn full_gc(pid: u32, squeeze: bool) -> Result<String> {
    let t = Duration::from_secs(10);
    let mut restore = Vec::new();
    let mut jit = String::new();
    let mut quiet_since = None;
    if squeeze {
        let (waited, idle) = wait_for_jit(pid, JIT_WAIT);
        quiet_since = Some(std::time::Instant::now());
        jit = if idle {
            format!(
                ", after {} ms for the JIT to finish and 5 s for its arenas",
                waited.as_millis()
            )
        } else {
            format!(", the JIT still busy after {} ms", waited.as_millis())
        };
        if let Ok(flags) = jcmd(pid, "VM.flags", t) {
            let (min, max) = free_ratios(&flags);
            let (before, after) = commands(min, max);
            if before.iter().all(|c| jcmd(pid, c, t).is_ok()) {
                restore = after;
            } else {
                // Put back whatever was set (Min alone may have gone to 0).
                for c in &after {
                    let _ = jcmd(pid, c, t);
                }
            }
        }
    }
    let gc = jcmd(pid, "GC.run", Duration::from_secs(30));
    for c in &restore {
        jcmd(pid, c, t)?;
    }
    gc?;
    // The trim that follows frees the compiler's arenas only once the pool let go of them.
    if let Some(t) = quiet_since {
        std::thread::sleep(CHUNK_POOL_CLEAN.saturating_sub(t.elapsed()));
    }
    Ok(if restore.is_empty() {
        "GC.run".to_string()
    } else {
        format!("GC.run (heap squeezed to live data{jit})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_come_from_vm_flags_or_hotspot_defaults() {
        let out = "123:\n-XX:CICompilerCount=2 -XX:MaxHeapFreeRatio=30 -XX:MinHeapFreeRatio=10 -XX:+UseG1GC\n";
        assert_eq!(free_ratios(out), (10, 30));
        assert_eq!(free_ratios("123:\n-XX:+UseSerialGC\n"), (40, 70));
        assert_eq!(free_ratios("-XX:MaxHeapFreeRatio=100"), (40, 100));
    }

    #[test]
    fn the_jit_is_idle_when_nothing_compiles_or_waits() {
        let idle =
            "123:\nCurrent compiles: \n\nC1 compile queue:\nEmpty\n\nC2 compile queue:\nEmpty\n";
        assert!(jit_idle(idle));
        let busy = "123:\nCurrent compiles: \nC2 CompilerThread0  5201       4       java.util.HashMap::putVal (300 bytes)\n\nC1 compile queue:\nEmpty\n\nC2 compile queue:\nEmpty\n";
        assert!(!jit_idle(busy));
        let queued = "123:\nCurrent compiles: \n\nC1 compile queue:\n 5300       3       java.lang.String::equals (56 bytes)\n\nC2 compile queue:\nEmpty\n";
        assert!(!jit_idle(queued));
    }

    #[test]
    fn min_never_exceeds_max_while_squeezing_and_putting_back() {
        let (before, after) = commands(10, 30);
        // Simulate the JVM's constraint on each step.
        let (mut min, mut max) = (10u32, 30u32);
        for c in before.iter().chain(after.iter()) {
            let v: u32 = c.rsplit(' ').next().unwrap().parse().unwrap();
            if c.contains("MinHeapFreeRatio") {
                min = v;
            } else {
                max = v;
            }
            assert!(min <= max, "{c} leaves Min {min} > Max {max}");
        }
        assert_eq!((min, max), (10, 30));
        assert!(before[0].starts_with("VM.set_flag MinHeapFreeRatio 0"));
    }
}
