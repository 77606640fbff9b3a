//! The three engines cracin runs an application with, as one type: `local` (the JVM as PID 1 of
//! its own PID namespace on the host), `podman` and `docker`. Doctor, report, bench, verify and
//! the checkpoint manifest name an engine with it; it reads and writes the same lowercase words
//! as before (`"engine": "local"` in cracin.json), so existing files still read. The container
//! engines' own settings (binary, environment, added options) stay in `container::Engine`; this
//! type only says which engine, and `container()` leads from it to theirs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::container;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Local,
    Podman,
    Docker,
}

impl EngineKind {
    /// Every engine, in the order cracin lists them.
    pub const ALL: [EngineKind; 3] = [EngineKind::Local, EngineKind::Podman, EngineKind::Docker];

    /// The word users type and files hold: `local`, `podman` or `docker`.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Local => "local",
            EngineKind::Podman => "podman",
            EngineKind::Docker => "docker",
        }
    }

    /// The engine named by `s` exactly (no case folding, no trimming), if any.
    pub fn parse(s: &str) -> Option<EngineKind> {
        EngineKind::ALL.into_iter().find(|e| e.name() == s)
    }

    /// The container engine this is, or None for the local engine.
    pub fn container(self) -> Option<container::EngineKind> {
        match self {
            EngineKind::Local => None,
            EngineKind::Podman => Some(container::EngineKind::Podman),
            EngineKind::Docker => Some(container::EngineKind::Docker),
        }
    }
}

impl From<container::EngineKind> for EngineKind {
    fn from(k: container::EngineKind) -> EngineKind {
        match k {
            container::EngineKind::Podman => EngineKind::Podman,
            container::EngineKind::Docker => EngineKind::Docker,
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The error of parsing an engine's name: the word that is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEngine(pub String);

impl fmt::Display for UnknownEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown engine `{}`", self.0)
    }
}

impl std::error::Error for UnknownEngine {}

impl FromStr for EngineKind {
    type Err = UnknownEngine;
    fn from_str(s: &str) -> Result<EngineKind, UnknownEngine> {
        EngineKind::parse(s).ok_or_else(|| UnknownEngine(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_display_and_serde_agree() {
        for e in EngineKind::ALL {
            assert_eq!(EngineKind::parse(e.name()), Some(e));
            assert_eq!(e.to_string(), e.name());
            assert_eq!(e.name().parse::<EngineKind>(), Ok(e));
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(json, format!("\"{}\"", e.name()));
            assert_eq!(serde_json::from_str::<EngineKind>(&json).unwrap(), e);
        }
        assert_eq!(format!("{:<7}|", EngineKind::Local), "local  |");
        assert_eq!(EngineKind::parse("Local"), None);
        assert_eq!(
            "lxc".parse::<EngineKind>().unwrap_err().to_string(),
            "unknown engine `lxc`"
        );
        assert!(serde_json::from_str::<EngineKind>("\"lxc\"").is_err());
    }

    #[test]
    fn container_engines_lead_to_theirs_and_back() {
        assert_eq!(EngineKind::Local.container(), None);
        for k in [container::EngineKind::Podman, container::EngineKind::Docker] {
            let e = EngineKind::from(k);
            assert_eq!(e.container(), Some(k));
        }
        assert_eq!(
            EngineKind::from(container::EngineKind::Docker).name(),
            "docker"
        );
    }
}
