//! Short ids that make the names of what cracin creates on the host unique among concurrent
//! runs (container and image names of `cracin build`, verification containers): the process id
//! and the clock's sub-second nanoseconds, in hex (`unique_id`, not secret), or 64 random bits
//! (`random_hex`, for names two cracins on one host must never share, such as a coordinated
//! checkpoint's control directory). Where a path must be unguessable and created safely, cracin
//! uses mkdtemp (`tempdir`) instead.

/// A short unique suffix for container and image names, e.g. `1f2a0c3d5e`.
pub fn unique_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:05x}", std::process::id(), nanos & 0xfffff)
}

/// 16 lowercase hex digits from /dev/urandom (all zero if it cannot be read, which only a broken
/// host does).
pub fn random_hex() -> String {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    crate::os::text::hex(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_lowercase_hex_led_by_the_pid() {
        let id = unique_id();
        assert!(id.starts_with(&format!("{:x}", std::process::id())), "{id}");
        assert!(id.len() <= 8 + 5, "{id}");
        assert!(id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn random_ids_are_16_hex_digits_and_differ() {
        let (a, b) = (random_hex(), random_hex());
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
