//! Image checksums: the SHA-256 of every CRIU image file is recorded in `cracin.json` at dump
//! time. `cracin check DIR` verifies them all (a byte flipped anywhere in the memory pages is
//! found); every restore verifies the small image files (all but `pages-*.img`: process tree,
//! registers, mappings, file descriptors), which costs a few milliseconds, so that a damaged
//! or swapped image is refused with a reason instead of restoring something else.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Files in the images directory that are not checksummed: CRIU rewrites `stats-restore` on
/// every restore.
fn ignored(name: &str) -> bool {
    name.starts_with("stats-")
}

/// The large files (memory pages), verified by `cracin check` only.
pub fn is_pages(name: &str) -> bool {
    name.starts_with("pages-")
}

/// SHA-256 of one file, hex.
pub fn sha256_file(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(p, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(crate::os::text::hex(&h.finalize()))
}

/// The image files (regular files, flat directory) by name, without ignored ones.
fn image_files(images: &Path) -> Result<Vec<String>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(images).map_err(|e| Error::io(images, e))? {
        let e = e.map_err(|e| Error::io(images, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if ignored(&name) {
            continue;
        }
        let t = e.file_type().map_err(|err| Error::io(e.path(), err))?;
        if t.is_file() {
            v.push(name);
        }
    }
    v.sort();
    Ok(v)
}

/// Checksums of every image file, recorded at dump.
pub fn checksums(images: &Path) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for name in image_files(images)? {
        m.insert(name.clone(), sha256_file(&images.join(&name))?);
    }
    Ok(m)
}

/// What `verify` found wrong, one line per file.
pub fn verify(
    images: &Path,
    recorded: &BTreeMap<String, String>,
    include_pages: bool,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let present = image_files(images)?;
    for name in &present {
        if !recorded.contains_key(name) {
            problems.push(format!(
                "images/{name} was not there when the checkpoint was written"
            ));
        }
    }
    for (name, sum) in recorded {
        if name.contains('/') || name.starts_with('.') {
            problems.push(format!(
                "cracin.json names an image file {name:?} outside images/"
            ));
            continue;
        }
        if !include_pages && is_pages(name) {
            continue;
        }
        if !present.contains(name) {
            problems.push(format!("images/{name} is missing"));
            continue;
        }
        let now = sha256_file(&images.join(name))?;
        if &now != sum {
            problems.push(format!(
                "images/{name} changed since the checkpoint was written (sha256 {} expected {})",
                &now[..12],
                &sum[..sum.len().min(12)]
            ));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_byte_is_found_and_small_files_alone_skip_pages() {
        let d = tempfile::tempdir().unwrap();
        let img = d.path();
        std::fs::write(img.join("pages-1.img"), vec![7u8; 3 << 20]).unwrap();
        std::fs::write(img.join("core-1.img"), b"core").unwrap();
        std::fs::write(img.join("stats-dump"), b"x").unwrap();
        let sums = checksums(img).unwrap();
        assert_eq!(sums.len(), 2);
        assert!(verify(img, &sums, true).unwrap().is_empty());
        // flip one byte in the middle of the pages
        let mut b = std::fs::read(img.join("pages-1.img")).unwrap();
        b[(3 << 20) / 2] ^= 1;
        std::fs::write(img.join("pages-1.img"), b).unwrap();
        std::fs::write(img.join("stats-restore"), b"rewritten by every restore").unwrap();
        assert!(verify(img, &sums, false).unwrap().is_empty());
        let p = verify(img, &sums, true).unwrap();
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("images/pages-1.img changed"), "{p:?}");
        std::fs::write(img.join("core-1.img"), b"CORE").unwrap();
        std::fs::write(img.join("extra.img"), b"?").unwrap();
        let p = verify(img, &sums, false).unwrap();
        assert_eq!(p.len(), 2, "{p:?}");
        let mut evil = sums.clone();
        evil.insert("../cracin.json".into(), "00".into());
        assert!(verify(img, &evil, false)
            .unwrap()
            .iter()
            .any(|l| l.contains("outside images/")));
    }
}
