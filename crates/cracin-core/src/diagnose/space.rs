//! A full file system, seen from the file system itself. CRIU's log lives beside the images, on
//! the same file system: when the disk fills up the log is cut, often before CRIU's own
//! "No space left on device" line. So right after a failed dump cracin asks the file system
//! (statvfs) how much room is left, and writes what it saw into the log once the images are
//! gone and there is room again: the diagnosis then rests on the file system's state, not on
//! whether CRIU managed to log its error.

use std::path::{Path, PathBuf};

/// The room on the file system holding a path, when it was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Room {
    pub path: PathBuf,
    /// Bytes root may still write (CRIU runs as root: reserved blocks count).
    pub free: u64,
    pub total: u64,
}

impl Room {
    /// Measures the file system of `path` (None when it cannot be asked).
    pub fn of(path: &Path) -> Option<Room> {
        let st = nix::sys::statvfs::statvfs(path).ok()?;
        let frag = st.fragment_size() as u64;
        Some(Room {
            path: path.to_path_buf(),
            free: st.blocks_free() as u64 * frag,
            total: st.blocks() as u64 * frag,
        })
    }

    /// Full: less than 1 MiB (or 0.1 % of a large file system) left. A write that failed for
    /// lack of room leaves at most about one write's worth behind.
    pub fn is_full(&self) -> bool {
        self.free < (1 << 20).max(self.total / 1000)
    }

    /// The line added to the failed dump's log; it matches the `no-space` rule.
    pub fn note(&self) -> String {
        format!(
            "cracin: No space left on device: when criu failed, the file system of {} had {} bytes free of {} (statvfs)",
            self.path.display(),
            self.free,
            self.total
        )
    }
}

/// Appends the note to `log` when the file system was full.
pub fn note_if_full(room: Option<&Room>, log: &Path) {
    if let Some(r) = room.filter(|r| r.is_full()) {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
        {
            let _ = writeln!(f, "{}", r.note());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_means_almost_nothing_left() {
        let r = |free, total| Room {
            path: "/x".into(),
            free,
            total,
        };
        assert!(r(4096, 8 << 20).is_full());
        assert!(!r(4 << 20, 8 << 20).is_full());
        assert!(r(50 << 20, 100 << 30).is_full(), "0.05 % of 100 GiB");
        assert!(!r(1 << 30, 100 << 30).is_full());
        let note = r(0, 8 << 20).note();
        let rule = crate::diagnose::RULES
            .iter()
            .find(|r| r.id == "no-space")
            .unwrap();
        assert!(rule
            .patterns
            .iter()
            .any(|p| regex::Regex::new(p).unwrap().is_match(&note)));
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("dump.log");
        note_if_full(Some(&r(0, 8 << 20)), &log);
        note_if_full(Some(&r(8 << 20, 8 << 20)), &log);
        let found = crate::diagnose::explain_files(&[log]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule, "no-space");
        assert!(Room::of(d.path()).is_some_and(|r| r.total > 0));
    }
}
