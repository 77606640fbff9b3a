//! Which garbage collector a checkpointed JVM runs with, and how its heap is made small before
//! the dump without changing the collector the user would get.
//!
//! The heap is most of a checkpoint, and what the collector leaves committed after the full GC
//! before the dump is dumped too. cracin used to force Serial GC for that; but a service that the
//! JVM would run with G1 then runs with Serial after every restore. Now cracin keeps the JVM's own
//! choice: HotSpot's ergonomics pick Serial on a machine that is not "server class" (fewer than
//! 2 active processors or less than 1792 MB of memory) and G1 otherwise. Both shrink the
//! committed heap at a full GC according to Min/MaxHeapFreeRatio, down to the initial heap, so
//! cracin lowers the initial heap (-Xms16m: the maximum is untouched) and the free ratios.

/// Below this much memory HotSpot does not consider a machine server class (its ergonomics).
pub const SERVER_CLASS_MIN_MEMORY: u64 = 1792 * 1024 * 1024;

/// The collector the JVM runs with and the options cracin adds to keep the image small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcChoice {
    /// "G1", "Serial", or "the command's own".
    pub collector: String,
    /// Options cracin adds (none of them selects a collector unless the JVM would pick it too).
    pub options: Vec<String>,
    /// Why, in one line, for the user.
    pub why: String,
}

/// What the JVM sees of this machine.
#[derive(Debug, Clone, Copy)]
pub struct Machine {
    pub cpus: usize,
    pub memory_bytes: u64,
}

impl Machine {
    /// Processors this process may run on and memory (the cgroup limit when lower), as the JVM
    /// counts them.
    pub fn here() -> Machine {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            })
            .map(|kb| kb * 1024)
            .unwrap_or(u64::MAX);
        let limit = [
            "/sys/fs/cgroup/memory.max",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|s| s.trim().parse::<u64>().ok())
        .min()
        .unwrap_or(u64::MAX);
        Machine {
            cpus,
            memory_bytes: total.min(limit),
        }
    }

    /// HotSpot's server-class test (os::is_server_class_machine).
    pub fn is_server_class(&self) -> bool {
        self.cpus >= 2 && self.memory_bytes >= SERVER_CLASS_MIN_MEMORY
    }
}

/// The collector and heap options for a checkpoint of `command` on `m`.
pub fn choose(command: &[String], m: Machine) -> GcChoice {
    let mut options = Vec::new();
    if !crate::jvm::launch::sets_initial_heap(command) {
        // A collector never shrinks the heap below the initial size, and emptied committed
        // pages are dumped too: a small initial heap is what makes the image small.
        options.push("-Xms16m".to_string());
    }
    // At the full GC before the dump, give back what is not used.
    options.push("-XX:MinHeapFreeRatio=10".to_string());
    options.push("-XX:MaxHeapFreeRatio=30".to_string());
    let gib = m.memory_bytes as f64 / (1u64 << 30) as f64;
    let (collector, why) = if crate::jvm::launch::chooses_gc(command) {
        (
            "the command's own".to_string(),
            "the command chooses its collector".to_string(),
        )
    } else if m.is_server_class() {
        (
            "G1".to_string(),
            format!(
                "the JVM's own choice on this server-class machine ({} CPUs, {gib:.1} GiB); heap shrunk at the full GC before the dump",
                m.cpus
            ),
        )
    } else {
        (
            "Serial".to_string(),
            format!(
                "the JVM's own choice here: not a server-class machine ({} CPU{}, {gib:.1} GiB; G1 needs 2 CPUs and 1792 MB)",
                m.cpus,
                if m.cpus == 1 { "" } else { "s" }
            ),
        )
    };
    GcChoice {
        collector,
        options,
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }
    const GB: u64 = 1 << 30;

    #[test]
    fn keeps_the_collector_the_jvm_would_choose() {
        let big = Machine {
            cpus: 8,
            memory_bytes: 32 * GB,
        };
        let c = choose(&cmd(&["java", "-jar", "app.jar"]), big);
        assert_eq!(c.collector, "G1");
        assert!(!c.options.iter().any(|o| o.contains("GC")), "{c:?}");
        assert!(c.options.contains(&"-Xms16m".to_string()));
        assert!(c.why.contains("8 CPUs"), "{}", c.why);

        for small in [
            Machine {
                cpus: 1,
                memory_bytes: 32 * GB,
            },
            Machine {
                cpus: 4,
                memory_bytes: 1024 * 1024 * 1024,
            },
        ] {
            let c = choose(&cmd(&["java", "-jar", "app.jar"]), small);
            assert_eq!(c.collector, "Serial", "{small:?}");
            assert!(!c.options.iter().any(|o| o.contains("GC")));
            assert!(c.why.contains("not a server-class"), "{}", c.why);
        }
        // The boundary is HotSpot's: 2 CPUs and 1792 MB make a server-class machine.
        assert!(Machine {
            cpus: 2,
            memory_bytes: SERVER_CLASS_MIN_MEMORY
        }
        .is_server_class());
        assert!(!Machine {
            cpus: 2,
            memory_bytes: SERVER_CLASS_MIN_MEMORY - 1
        }
        .is_server_class());
    }

    #[test]
    fn the_commands_own_choices_win() {
        let m = Machine {
            cpus: 8,
            memory_bytes: 32 * GB,
        };
        let c = choose(&cmd(&["java", "-XX:+UseZGC", "-Xms1g", "-jar", "a.jar"]), m);
        assert_eq!(c.collector, "the command's own");
        assert!(!c.options.iter().any(|o| o.starts_with("-Xms")));
    }

    #[test]
    fn this_machine_is_read() {
        let m = Machine::here();
        assert!(m.cpus >= 1 && m.memory_bytes > 0);
    }
}
