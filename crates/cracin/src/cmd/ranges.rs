//! Range-checked number parsers for every numeric option: a value out of range (or `inf`,
//! `NaN`, a negative count, a number too large to be meant) is a usage error (exit 2) that
//! names the allowed range, never a panic deep inside a duration or an allocation.

/// A count from MIN to MAX (inclusive).
pub fn count<const MIN: u64, const MAX: u64>(s: &str) -> Result<usize, String> {
    let v: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number; allowed: {MIN} to {MAX}"))?;
    if !(MIN..=MAX).contains(&v) {
        return Err(format!("{v} is out of range; allowed: {MIN} to {MAX}"));
    }
    Ok(v as usize)
}

/// `count` as u32.
pub fn count32<const MIN: u64, const MAX: u64>(s: &str) -> Result<u32, String> {
    count::<MIN, MAX>(s).map(|v| v as u32)
}

/// `count` as u64.
pub fn count64<const MIN: u64, const MAX: u64>(s: &str) -> Result<u64, String> {
    count::<MIN, MAX>(s).map(|v| v as u64)
}

/// Seconds from MIN_MS/1000 to MAX_S, finite.
pub fn secs<const MIN_MS: u64, const MAX_S: u64>(s: &str) -> Result<f64, String> {
    let min = MIN_MS as f64 / 1000.0;
    let max = MAX_S as f64;
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds; allowed: {min} to {max}"))?;
    if !v.is_finite() || v < min || v > max {
        return Err(format!(
            "{s} seconds is out of range; allowed: {min} to {max}"
        ));
    }
    Ok(v)
}

/// Timeouts: 0.1 s to one day.
pub fn timeout(s: &str) -> Result<f64, String> {
    secs::<100, 86_400>(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_enforced_and_named() {
        assert_eq!(timeout("2.5"), Ok(2.5));
        for bad in ["inf", "NaN", "-1", "0", "1e300", "x", "86401"] {
            let e = timeout(bad).unwrap_err();
            assert!(e.contains("0.1 to 86400"), "{bad}: {e}");
        }
        assert_eq!(count::<1, 10>("10"), Ok(10));
        for bad in ["0", "11", "-3", "99999999999999999999999", "1.5"] {
            assert!(
                count::<1, 10>(bad).unwrap_err().contains("1 to 10"),
                "{bad}"
            );
        }
    }
}
