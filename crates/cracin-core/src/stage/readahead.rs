//! Read-ahead of a checkpoint's memory pages. CRIU reads `pages-*.img` only once it has set up
//! the tasks; when the file is not in the page cache (the first restore after a reboot, or after
//! the cache was reclaimed) those reads wait on the disk. Asking the kernel to start reading the
//! files (`posix_fadvise(WILLNEED)`, asynchronous) right before CRIU starts lets the disk work
//! overlap CRIU's own set-up. On a file already cached it costs a system call per file.
//! `CRACIN_NO_READAHEAD=1` turns it off (to measure it).

use std::path::Path;

/// Starts read-ahead of every `pages-*.img` in `images`; returns how many bytes were asked for.
pub fn pages(images: &Path) -> u64 {
    use std::os::fd::AsRawFd;
    if std::env::var_os("CRACIN_NO_READAHEAD").is_some_and(|v| !v.is_empty() && v != "0") {
        return 0;
    }
    let Ok(rd) = std::fs::read_dir(images) else {
        return 0;
    };
    let mut asked = 0;
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("pages-") && name.ends_with(".img")) {
            continue;
        }
        let Ok(f) = std::fs::File::open(e.path()) else {
            continue;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        // The file handle may close at once: the read-ahead it started goes on.
        if unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED) } == 0 {
            asked += len;
        }
    }
    asked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_for_the_pages_files_only() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("pages-1.img"), vec![0u8; 8192]).unwrap();
        std::fs::write(d.path().join("pagemap-1.img"), vec![0u8; 100]).unwrap();
        std::fs::write(d.path().join("core-1.img"), vec![0u8; 100]).unwrap();
        assert_eq!(pages(d.path()), 8192);
        assert_eq!(pages(&d.path().join("missing")), 0);
    }
}
