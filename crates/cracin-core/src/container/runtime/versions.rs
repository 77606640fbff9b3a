//! Which JVM option exists in which JDK build. A checkpoint recipe may only use an option the
//! base image's JVM knows: an unknown `-XX:` option makes the JVM refuse to start, so a flag
//! emitted for too old a build breaks every container of the image. The table is data taken
//! from the vendors' documentation and release notes (cited beside each row); a base whose
//! version is not known (a floating tag, the user's own image) gets only the options every CRaC
//! build has.

/// A JDK build: vendor, feature release and update (21.0.3 → feature 21, update 3).
/// `latest` marks a floating tag (`…-latest`) that follows the vendor's newest release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JdkVersion {
    pub vendor: Vendor,
    pub feature: u32,
    pub update: u32,
    pub latest: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// Azul Zulu builds of OpenJDK with CRaC.
    Zulu,
    /// BellSoft Liberica JDK with CRaC.
    Liberica,
    /// IBM Semeru (OpenJ9).
    Semeru,
    /// Not known (the user's own image).
    Unknown,
}

impl JdkVersion {
    pub const fn pinned(vendor: Vendor, feature: u32, update: u32) -> JdkVersion {
        JdkVersion {
            vendor,
            feature,
            update,
            latest: false,
        }
    }

    pub const fn latest(vendor: Vendor, feature: u32) -> JdkVersion {
        JdkVersion {
            vendor,
            feature,
            update: u32::MAX,
            latest: true,
        }
    }

    pub const UNKNOWN: JdkVersion = JdkVersion::pinned(Vendor::Unknown, 0, 0);

    /// `21.0.3`, `21 (latest)`, `unknown`.
    pub fn describe(&self) -> String {
        match (self.vendor, self.latest) {
            (Vendor::Unknown, _) => "unknown".into(),
            (_, true) => format!("{} (latest)", self.feature),
            _ => format!("{}.0.{}", self.feature, self.update),
        }
    }
}

/// A version-dependent option of a CRaC JVM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CracOption {
    /// `-XX:+CRaCIgnoreRestoreIfUnavailable`: start normally when the image cannot be restored.
    IgnoreRestoreIfUnavailable,
    /// `-XX:CRaCEngine=warp`: Azul's CRIU-free engine, no capabilities needed.
    WarpEngine,
}

impl CracOption {
    pub fn flag(self) -> &'static str {
        match self {
            CracOption::IgnoreRestoreIfUnavailable => "-XX:+CRaCIgnoreRestoreIfUnavailable",
            CracOption::WarpEngine => "-XX:CRaCEngine=warp",
        }
    }
}

/// One row: from which update of which feature release of which vendor an option exists, and
/// where that is written.
pub struct Row {
    pub option: CracOption,
    pub vendor: Vendor,
    pub feature: u32,
    /// First update of `feature` that has the option; 0 = every build of that feature release.
    pub first_update: u32,
    pub source: &'static str,
}

/// The table. Zulu's October 2025 releases are 17.0.17, 21.0.9 and 25.0.1 (Azul's version
/// table, docs.azul.com/core/version-search); Zulu 25 has the option from 25.0.0.
/// Zulu's October 2024 releases are 17.0.13, 21.0.5 and 23.0.1.
pub const TABLE: &[Row] = &[
    // "This feature is only available in Azul Zulu 25 and the Azul Zulu October 2025 releases."
    // https://docs.azul.com/crac/usage/transparent-restore-startup
    Row {
        option: CracOption::IgnoreRestoreIfUnavailable,
        vendor: Vendor::Zulu,
        feature: 17,
        first_update: 17,
        source: "https://docs.azul.com/crac/usage/transparent-restore-startup",
    },
    Row {
        option: CracOption::IgnoreRestoreIfUnavailable,
        vendor: Vendor::Zulu,
        feature: 21,
        first_update: 9,
        source: "https://docs.azul.com/crac/usage/transparent-restore-startup",
    },
    Row {
        option: CracOption::IgnoreRestoreIfUnavailable,
        vendor: Vendor::Zulu,
        feature: 25,
        first_update: 0,
        source: "https://docs.azul.com/crac/usage/transparent-restore-startup",
    },
    // "With the release of October '24, an alternative, CRIU-independent engine ... Warp"
    // https://docs.azul.com/core/crac/crac-engines
    Row {
        option: CracOption::WarpEngine,
        vendor: Vendor::Zulu,
        feature: 17,
        first_update: 13,
        source: "https://docs.azul.com/core/crac/crac-engines",
    },
    Row {
        option: CracOption::WarpEngine,
        vendor: Vendor::Zulu,
        feature: 21,
        first_update: 5,
        source: "https://docs.azul.com/core/crac/crac-engines",
    },
    Row {
        option: CracOption::WarpEngine,
        vendor: Vendor::Zulu,
        feature: 25,
        first_update: 0,
        source: "https://docs.azul.com/core/crac/crac-engines",
    },
];

/// Whether `v` has `option`. Feature releases after the newest row of a vendor (e.g. Zulu 26)
/// have it too: the vendors keep options once added.
pub fn supports(v: JdkVersion, option: CracOption) -> bool {
    let rows: Vec<&Row> = TABLE
        .iter()
        .filter(|r| r.option == option && r.vendor == v.vendor)
        .collect();
    if let Some(r) = rows.iter().find(|r| r.feature == v.feature) {
        return v.update >= r.first_update;
    }
    rows.iter()
        .map(|r| r.feature)
        .max()
        .is_some_and(|newest| v.feature > newest)
}

/// Where the table says `option` first appeared, for messages ("first in Zulu 21.0.9").
pub fn first_in(option: CracOption, vendor: Vendor, feature: u32) -> Option<String> {
    TABLE
        .iter()
        .find(|r| r.option == option && r.vendor == vendor && r.feature == feature)
        .map(|r| format!("{feature}.0.{}", r.first_update))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_restore_if_unavailable_only_from_october_2025() {
        let o = CracOption::IgnoreRestoreIfUnavailable;
        // The seed's pinned JRE tarballs (April 2024) predate it.
        assert!(!supports(JdkVersion::pinned(Vendor::Zulu, 21, 3), o));
        assert!(!supports(JdkVersion::pinned(Vendor::Zulu, 21, 8), o));
        assert!(supports(JdkVersion::pinned(Vendor::Zulu, 21, 9), o));
        assert!(!supports(JdkVersion::pinned(Vendor::Zulu, 17, 16), o));
        assert!(supports(JdkVersion::pinned(Vendor::Zulu, 17, 17), o));
        assert!(supports(JdkVersion::pinned(Vendor::Zulu, 25, 0), o));
        assert!(supports(JdkVersion::pinned(Vendor::Zulu, 26, 0), o));
        assert!(supports(JdkVersion::latest(Vendor::Zulu, 21), o));
        // Not in Azul's table: not emitted.
        assert!(!supports(JdkVersion::latest(Vendor::Liberica, 21), o));
        assert!(!supports(JdkVersion::UNKNOWN, o));
        assert_eq!(first_in(o, Vendor::Zulu, 21).as_deref(), Some("21.0.9"));
    }

    #[test]
    fn warp_only_in_zulu_from_october_2024() {
        let o = CracOption::WarpEngine;
        assert!(!supports(JdkVersion::pinned(Vendor::Zulu, 21, 3), o));
        assert!(supports(JdkVersion::pinned(Vendor::Zulu, 21, 5), o));
        assert!(!supports(JdkVersion::pinned(Vendor::Zulu, 17, 12), o));
        assert!(supports(JdkVersion::pinned(Vendor::Zulu, 17, 13), o));
        assert!(supports(JdkVersion::latest(Vendor::Zulu, 21), o));
        assert!(!supports(JdkVersion::latest(Vendor::Liberica, 21), o));
        assert!(!supports(JdkVersion::pinned(Vendor::Semeru, 21, 9), o));
        assert_eq!(o.flag(), "-XX:CRaCEngine=warp");
    }
}
