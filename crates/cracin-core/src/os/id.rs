//! Short ids that make the names of what cracin creates on the host unique among concurrent
//! runs (container and image names of `cracin build`, verification containers): the process id
//! and the clock's sub-second nanoseconds, in hex. Not secret and not random: where a name must
//! be unguessable, cracin uses mkdtemp (`tempdir`) instead.

/// A short unique suffix for container and image names, e.g. `1f2a0c3d5e`.
pub fn unique_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:05x}", std::process::id(), nanos & 0xfffff)
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
}
