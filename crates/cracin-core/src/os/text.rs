//! Small text forms shared by every output cracin makes (progress lines, reports, errors).

/// Human size in decimal units, like the container engines print: "61.0 MB", "1.23 GB".
pub fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// Bytes as lowercase hex, two digits each (digests, random ids).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_the_engines_print_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(61_000_000), "61.0 MB");
        assert_eq!(human_bytes(1_234_000_000), "1.23 GB");
    }

    #[test]
    fn hex_is_two_lowercase_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab]), "000fab");
        assert_eq!(hex(&[]), "");
    }
}
