//! The non-root user cracin's images run as (`--user UID[:GID]`, 1001:1001 by default as in the
//! seed, or the `USER` of an `--image`), and the Containerfile lines that make a plain-CRIU image
//! work for it: `/app` owned by the user (the checkpoint is written there), and cracin given
//! CAP_CHECKPOINT_RESTORE as a permitted file capability (`caps`), which cracin hands to criu
//! through the ambient set and to nobody else. Why a file capability: Docker and Kubernetes give
//! a non-root user's `--cap-add` capabilities to the bounding set only (measured on Docker 26;
//! podman 4.3.1 also puts them in the ambient set), so a non-root criu would have nothing.

use crate::error::{Error, Result};

/// The default user, as in the seed's images.
pub const DEFAULT_USER: &str = "1001:1001";

/// A container user: numeric `UID[:GID]` from `--user`, or the name an image's USER gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunUser {
    pub user: String,
    pub group: Option<String>,
}

impl Default for RunUser {
    fn default() -> Self {
        RunUser {
            user: "1001".into(),
            group: Some("1001".into()),
        }
    }
}

impl RunUser {
    /// Parses `--user UID[:GID]`: numeric (Kubernetes' runAsUser and runAsNonRoot need numbers)
    /// and not root (the point is to run without it).
    pub fn parse(s: &str) -> Result<RunUser> {
        let (u, g) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        };
        let num = |x: &str| !x.is_empty() && x.len() <= 10 && x.bytes().all(|b| b.is_ascii_digit());
        if !num(u) || !g.is_none_or(num) || u.parse::<u32>().is_err() {
            return Err(Error::usage(
                format!("bad --user `{s}`"),
                "give a numeric UID[:GID], e.g. --user 1001 or --user 1001:1001",
            ));
        }
        if u.parse::<u32>() == Ok(0) {
            return Err(Error::usage(
                "--user 0 would run the image as root",
                "give a non-root UID (default 1001); cracin's images need only CAP_CHECKPOINT_RESTORE, not root",
            ));
        }
        Ok(RunUser {
            user: u.into(),
            group: g.map(String::from),
        })
    }

    /// An image's `USER` (`.Config.User`): `None` when empty or root, else as it is (a name
    /// works for `chown` and `USER`; Kubernetes needs a number, see `uid`).
    pub fn from_image(config_user: &str) -> Option<RunUser> {
        let s = config_user.trim();
        let (u, g) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        };
        if u.is_empty() || u == "0" || u == "root" {
            return None;
        }
        Some(RunUser {
            user: u.into(),
            group: g.filter(|g| !g.is_empty()).map(String::from),
        })
    }

    /// `UID[:GID]` as `USER` and `chown` take it.
    pub fn spec(&self) -> String {
        match &self.group {
            Some(g) => format!("{}:{g}", self.user),
            None => self.user.clone(),
        }
    }

    /// The numeric UID, when it is one.
    pub fn uid(&self) -> Option<u32> {
        self.user.parse().ok()
    }

    /// The numeric GID, when given as one.
    pub fn gid(&self) -> Option<u32> {
        self.group.as_deref().and_then(|g| g.parse().ok())
    }
}

/// The non-root USER of an image in the engine's store (`None`: root or unset).
pub fn image_user(engine: &super::Engine, image: &str) -> Result<Option<RunUser>> {
    let out = engine
        .command(&["image", "inspect", "--format", "{{.Config.User}}", image])
        .timeout(std::time::Duration::from_secs(60))
        .run()
        .map_err(|e| match e {
            Error::Command { log_tail, .. } => Error::usage(
                format!(
                    "cannot read the user of image {image} in {}: {}",
                    engine.name(),
                    log_tail.lines().last().unwrap_or("").trim()
                ),
                "build or load the image into this engine first",
            ),
            other => other,
        })?;
    Ok(RunUser::from_image(&out.stdout))
}

/// The hidden cracin subcommand that gives a binary its file capability (run as root while the
/// image is built: `podman build` and `docker build` keep CAP_SETFCAP for RUN steps).
pub const SETCAP_SUBCOMMAND: &str = "setcap-checkpoint-restore";

/// The Containerfile lines of a plain-CRIU image that prepare it for `user` (root for this
/// part) and switch to it. `cracin` is cracin's path in the image.
pub fn criu_image_lines(user: &RunUser, cracin: &str) -> String {
    let spec = user.spec();
    format!(
        "# Runs as {spec}, not root. cracin holds CAP_CHECKPOINT_RESTORE as a permitted file capability\n\
# (no effective bit: without the capability the image still starts, cold) and passes it to criu\n\
# only; the JVM gets no capability. /app (the checkpoint) and /var/lib/cracin (the org.crac\n\
# provider and control directory) belong to the user.\n\
USER root\n\
RUN mkdir -p /app /var/lib/cracin && chown {spec} /app /var/lib/cracin && chmod 0700 /var/lib/cracin \\\n\
 && criu --version && {cracin} {SETCAP_SUBCOMMAND} {cracin}\n\
USER {spec}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_parse() {
        assert_eq!(RunUser::parse("1001").unwrap().spec(), "1001");
        assert_eq!(RunUser::parse("1001:1001").unwrap(), RunUser::default());
        assert_eq!(RunUser::parse("2000:0").unwrap().gid(), Some(0));
        for bad in [
            "0",
            "0:0",
            "app",
            "1001:",
            ":1",
            "-1",
            "1001:staff",
            "99999999999",
        ] {
            assert!(RunUser::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(RunUser::from_image(""), None);
        assert_eq!(RunUser::from_image("root"), None);
        assert_eq!(RunUser::from_image("0:0"), None);
        let u = RunUser::from_image("app:app").unwrap();
        assert_eq!((u.spec(), u.uid()), ("app:app".to_string(), None));
        assert_eq!(RunUser::from_image("1001").unwrap().uid(), Some(1001));
    }
}
