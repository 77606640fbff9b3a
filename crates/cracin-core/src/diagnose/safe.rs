//! Reading logs that anyone may have written without trusting them: `cracin explain` reads at
//! most `MAX_BYTES` of each file and at most `MAX_FILES` files, never follows a symlink inside
//! the directory it was given (a link to /etc/shadow or to a FIFO is skipped, not read), and
//! strips terminal escape sequences and other control characters from every line it prints
//! (a log line must not be able to move the cursor, retitle the terminal or hide text).

use std::io::Read;
use std::path::{Path, PathBuf};

/// The most read of one log.
pub const MAX_BYTES: u64 = 16 << 20;
/// The most log files read for one explanation.
pub const MAX_FILES: usize = 64;
/// The newest restore folders (`restores/*`) whose logs are read.
pub const MAX_RESTORES: usize = 5;

/// The first `MAX_BYTES` of a regular file (not following a symlink), lossily decoded; empty
/// when it cannot be read.
pub fn read_bounded(p: &Path) -> String {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(p)
    else {
        return String::new();
    };
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.take(MAX_BYTES).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// A regular file, not a symlink.
pub fn is_plain_file(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
}

/// A directory, not a symlink.
pub fn is_plain_dir(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

/// Regular files directly in `dir` (symlinks skipped), sorted.
pub fn plain_files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Directories directly in `dir` (symlinks skipped), sorted by name.
pub fn plain_dirs_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Text safe to print on a terminal: ANSI/VT escape sequences (CSI, OSC, two-byte ESC) are
/// removed, other control characters (but tab) become `?`.
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\u{1b}' => match it.peek() {
                // CSI: ESC [ params final-byte(0x40..=0x7e)
                Some('[') => {
                    it.next();
                    for d in it.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&d) {
                            break;
                        }
                    }
                }
                // OSC / DCS / APC / PM / SOS: up to BEL or ESC \
                Some(']') | Some('P') | Some('_') | Some('^') | Some('X') => {
                    it.next();
                    while let Some(d) = it.next() {
                        if d == '\u{7}' {
                            break;
                        }
                        if d == '\u{1b}' && it.peek() == Some(&'\\') {
                            it.next();
                            break;
                        }
                    }
                }
                Some(_) => {
                    it.next();
                }
                None => {}
            },
            // C1 CSI
            '\u{9b}' => {
                for d in it.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&d) {
                        break;
                    }
                }
            }
            '\t' => out.push('\t'),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// A path as safe text.
pub fn show(p: &Path) -> String {
    sanitize(&p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_stripped() {
        assert_eq!(sanitize("a\u{1b}[31mred\u{1b}[0m b"), "ared b");
        assert_eq!(sanitize("\u{1b}]0;pwned title\u{7}x"), "x");
        assert_eq!(sanitize("\u{1b}]8;;http://x\u{1b}\\link"), "link");
        assert_eq!(sanitize("bell\u{7} cr\r back\u{8}"), "bell? cr? back?");
        assert_eq!(sanitize("tab\tok ünïcode"), "tab\tok ünïcode");
        assert_eq!(sanitize("\u{9b}2Jclear"), "clear");
    }

    #[test]
    fn reads_are_bounded_and_symlinks_skipped() {
        let d = tempfile::tempdir().unwrap();
        let big = d.path().join("big.log");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_BYTES + 1000).unwrap();
        assert_eq!(read_bounded(&big).len() as u64, MAX_BYTES);
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("l.log")).unwrap();
        assert_eq!(read_bounded(&d.path().join("l.log")), "");
        let files = plain_files_in(d.path());
        assert_eq!(files, vec![big]);
    }
}
