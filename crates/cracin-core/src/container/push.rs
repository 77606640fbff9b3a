//! Sending a restore image to an OCI registry: `cracin push IMAGE --to REF` and
//! `cracin build --push REF`. The steps are plan steps like every other engine command, so
//! `--dry-run` prints exactly what runs, TLS settings included. podman pushes a local image to
//! any reference (`--tls-verify=false` for a plain-HTTP registry); docker pushes only what is
//! tagged with the registry's name, so the image is tagged, pushed and the extra tag removed, and
//! TLS is a daemon setting (`insecure-registries`; 127.0.0.0/8 is insecure by default).

use std::time::Duration;

use super::engine::{Engine, EngineKind};
use super::plan::{Plan, Step, StepKind};
use crate::error::{Error, Result};

/// Where an image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSpec {
    /// The registry reference, e.g. `registry.example.com/team/app:1` or `127.0.0.1:5000/app`.
    pub dest: String,
    /// Verify the registry's TLS certificate; None: off for a loopback registry (which usually
    /// speaks plain HTTP), on for every other.
    pub tls_verify: Option<bool>,
}

impl PushSpec {
    /// Checks the reference: it must name a registry host (a first component with a dot, a
    /// colon or `localhost`), or the engine would push to docker.io.
    pub fn new(dest: &str, tls_verify: Option<bool>) -> Result<PushSpec> {
        let dest = dest.strip_prefix("docker://").unwrap_or(dest);
        let bad = |why: &str| {
            Error::usage(
                format!("bad registry reference `{dest}`: {why}"),
                "give the destination as REGISTRY/NAME[:TAG], e.g. 127.0.0.1:5000/myapp:instant or registry.example.com/team/myapp:1",
            )
        };
        if dest.is_empty() || dest.contains(char::is_whitespace) || dest.contains("://") {
            return Err(bad("it must look like REGISTRY/NAME[:TAG]"));
        }
        let Some((host, name)) = dest.split_once('/') else {
            return Err(bad(
                "it names no registry (an image name alone would go to docker.io)",
            ));
        };
        if name.is_empty() || !(host.contains('.') || host.contains(':') || host == "localhost") {
            return Err(bad(
                "its first part is not a registry host (HOST.DOMAIN, HOST:PORT or localhost)",
            ));
        }
        Ok(PushSpec {
            dest: dest.to_string(),
            tls_verify,
        })
    }

    /// The registry host (with port).
    pub fn registry(&self) -> &str {
        self.dest.split('/').next().unwrap_or("")
    }

    /// Whether the registry is on this machine's loopback.
    pub fn is_loopback(&self) -> bool {
        let host = self.registry();
        let host = match host.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host,
        };
        host == "localhost" || host.starts_with("127.") || host == "[::1]"
    }

    /// The TLS verification in effect.
    pub fn verify_tls(&self) -> bool {
        self.tls_verify.unwrap_or(!self.is_loopback())
    }
}

/// The steps that push `image` (a local image of `engine`) to `spec`, and notes for the plan.
pub fn push_steps(engine: &Engine, image: &str, spec: &PushSpec) -> (Vec<Step>, Vec<String>) {
    let step = |name: &str, command: Vec<String>, why: String| Step {
        name: name.into(),
        command,
        why,
        kind: StepKind::Run,
        timeout: Duration::from_secs(1800),
    };
    let mut notes = Vec::new();
    let tls = spec.verify_tls();
    let steps = match engine.kind {
        EngineKind::Podman => {
            let mut args = vec!["push".to_string()];
            args.push(format!("--tls-verify={tls}"));
            args.push(image.to_string());
            args.push(format!("docker://{}", spec.dest));
            vec![step(
                "push",
                engine.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>()),
                format!(
                    "send the image to {} ({})",
                    spec.registry(),
                    if tls {
                        "TLS verified"
                    } else {
                        "TLS not verified: plain HTTP or a self-signed certificate"
                    }
                ),
            )]
        }
        EngineKind::Docker => {
            if !tls && !spec.is_loopback() {
                notes.push(format!(
                    "docker decides TLS in the daemon: {} must be listed in \"insecure-registries\" of the daemon's daemon.json",
                    spec.registry()
                ));
            }
            let same = image == spec.dest;
            let mut v = Vec::new();
            if !same {
                v.push(step(
                    "push-tag",
                    engine.cmd(&["tag", image, &spec.dest]),
                    "docker pushes what is tagged with the registry's name".into(),
                ));
            }
            v.push(step(
                "push",
                engine.cmd(&["push", &spec.dest]),
                format!(
                    "send the image to {} ({})",
                    spec.registry(),
                    if spec.is_loopback() {
                        "loopback: the daemon allows plain HTTP for 127.0.0.0/8"
                    } else if tls {
                        "TLS verified by the daemon"
                    } else {
                        "TLS as the daemon's insecure-registries say"
                    }
                ),
            ));
            if !same {
                v.push(step(
                    "push-untag",
                    engine.cmd(&["rmi", &spec.dest]),
                    "drop the registry's name again (the image stays under its own tag)".into(),
                ));
                v.push(Step {
                    kind: StepKind::OnFailure,
                    timeout: Duration::from_secs(60),
                    ..step(
                        "remove-push-tag",
                        engine.cmd(&["rmi", &spec.dest]),
                        "leave no registry name behind".into(),
                    )
                });
            }
            v
        }
    };
    (steps, notes)
}

/// `cracin push IMAGE --to REF` as a plan.
pub fn push_plan(engine: &Engine, image: &str, spec: &PushSpec) -> Plan {
    let (steps, notes) = push_steps(engine, image, spec);
    Plan {
        title: format!(
            "cracin push: engine {}, {image} -> {}",
            engine.name(),
            spec.dest
        ),
        env: engine.env.clone(),
        files_dir: None,
        files: Vec::new(),
        steps,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_must_name_a_registry() {
        assert!(PushSpec::new("127.0.0.1:5000/app:1", None).is_ok());
        assert!(PushSpec::new("docker://localhost/app", None).is_ok());
        assert!(PushSpec::new("registry.example.com/team/app", None).is_ok());
        for bad in ["myapp:1", "team/app", "", "http://x.y/app", "a b/c"] {
            assert!(
                matches!(PushSpec::new(bad, None), Err(Error::Usage { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn tls_is_off_only_for_loopback_unless_told() {
        let l = PushSpec::new("127.0.0.1:5000/app", None).unwrap();
        assert!(l.is_loopback() && !l.verify_tls());
        let l = PushSpec::new("localhost:5000/app", None).unwrap();
        assert!(!l.verify_tls());
        let r = PushSpec::new("registry.example.com:443/app", None).unwrap();
        assert!(!r.is_loopback() && r.verify_tls());
        let r = PushSpec::new("registry.example.com/app", Some(false)).unwrap();
        assert!(!r.verify_tls());
    }

    #[test]
    fn podman_pushes_with_its_tls_flag_and_docker_tags_first() {
        let spec = PushSpec::new("127.0.0.1:5000/app:1", None).unwrap();
        let (s, notes) = push_steps(&Engine::podman(), "localhost/app:1", &spec);
        assert_eq!(
            s[0].command,
            [
                "podman",
                "push",
                "--tls-verify=false",
                "localhost/app:1",
                "docker://127.0.0.1:5000/app:1"
            ]
        );
        assert!(notes.is_empty());
        let (s, _) = push_steps(&Engine::docker(), "localhost/app:1", &spec);
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["push-tag", "push", "push-untag", "remove-push-tag"]);
        assert_eq!(s[3].kind, StepKind::OnFailure);
        assert_eq!(s[1].command[1..], ["push", "127.0.0.1:5000/app:1"]);
        let remote = PushSpec::new("registry.example.com/app", Some(false)).unwrap();
        let (_, notes) = push_steps(&Engine::docker(), "localhost/app:1", &remote);
        assert!(notes[0].contains("insecure-registries"), "{notes:?}");
    }
}
