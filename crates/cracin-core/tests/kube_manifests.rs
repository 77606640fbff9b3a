//! Snapshot tests of `cracin kube`'s manifests for each runtime (plain CRIU, CRaC, OpenJ9), made
//! from image facts as `podman image inspect` and the checkpoint's cracin.json report them: the
//! securityContext (user, capabilities, seccomp profile, privilege escalation), the probes, the
//! memory request and the fallback. The plain-CRIU manifest also runs for real in
//! crates/cracin/tests/e2e_container.rs (`podman kube play`); CRaC and OpenJ9 never ran here.
//! `UPDATE_SNAPSHOTS=1` rewrites tests/snapshots/kube/ after an intended change.

mod common;

use cracin_core::container::kube::{generate, ImageFacts, KubeOptions};
use cracin_core::container::{seccomp, RunUser, Runtime};

/// Compares with tests/snapshots/kube/NAME.yaml, or writes it when UPDATE_SNAPSHOTS=1.
fn snapshot(name: &str, actual: &str) {
    common::compare_snapshot(&format!("kube/{name}.yaml"), actual);
}

fn facts(runtime: &str, user: &str, cmd: &str) -> ImageFacts {
    let mut f = ImageFacts::from_config_json(&format!(
        r#"{{"User":"{user}","ExposedPorts":{{"8080/tcp":{{}}}},"Cmd":{cmd},"Labels":{{"io.cracin.runtime":"{runtime}","io.cracin.port":"8080","io.cracin.fallback":"true","io.cracin.ready-path":"/health"}}}}"#
    ))
    .unwrap();
    if runtime == "criu" {
        f.add_manifest(
            r#"{"sizes":{"pages_bytes":94371840},"timings_ms":{"launch_to_ready":2350.0}}"#,
        );
    }
    f
}

fn all(o: &KubeOptions) -> String {
    generate(o)
        .iter()
        .map(|f| {
            let body = if f.name.starts_with("seccomp/") {
                "(cracin's seccomp profile, container::seccomp)\n".to_string()
            } else {
                f.content.clone()
            };
            format!("==> {} <==\n{body}", f.name)
        })
        .collect()
}

const CRIU_CMD: &str = r#"["/usr/local/bin/cracin","restore","/app/checkpoint","--in-container","--foreground","--inherit-stdio","--fallback","--","java","-jar","/app/app.jar"]"#;

#[test]
fn criu_manifests() {
    let f = facts("criu", "1001:1001", CRIU_CMD);
    let mut o = KubeOptions::from_facts("localhost/shop:instant", &f, None, false).unwrap();
    o.host_port = Some(18080);
    let text = all(&o);
    for want in [
        "runAsNonRoot: true",
        "runAsUser: 1001",
        "runAsGroup: 1001",
        "allowPrivilegeEscalation: false",
        "drop: [ALL]",
        "add: [CHECKPOINT_RESTORE]",
        "type: Localhost",
        "hostPort: 18080",
        // 90 MiB of pages + a quarter + 32 MiB
        "memory: 145Mi",
        // 3 × the 2.35 s cold start, at least 60 s, for the fallback
        "failureThreshold: 60",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
    assert!(text.contains(&format!("localhostProfile: {}", seccomp::file_name())));
    assert!(text.contains(&format!("==> seccomp/{} <==", seccomp::file_name())));
    // The profile's name changes with its content; the snapshot does not pin it.
    snapshot("criu", &text.replace(&seccomp::file_name(), "PROFILE.json"));
    let nf = KubeOptions::from_facts("localhost/shop:instant", &f, None, true).unwrap();
    let text = all(&nf);
    assert!(text.contains(r#"command: ["/usr/local/bin/cracin", "restore", "/app/checkpoint", "--in-container", "--foreground", "--inherit-stdio"]"#), "{text}");
    assert!(text.contains("failureThreshold: 30"));
    snapshot(
        "criu-no-fallback",
        &text.replace(&seccomp::file_name(), "PROFILE.json"),
    );
}

#[test]
fn crac_and_openj9_manifests_carry_the_seeds_capability_sets() {
    let crac = facts(
        "crac",
        "",
        r#"["java","-XX:CRaCRestoreFrom=/app/checkpoint","-XX:+CRaCIgnoreRestoreIfUnavailable","-jar","/app/app.jar"]"#,
    );
    let o = KubeOptions::from_facts("localhost/crac:instant", &crac, None, false).unwrap();
    assert_eq!(o.runtime, Runtime::Crac);
    let text = all(&o);
    assert!(text.contains("runAsNonRoot: false") && text.contains("type: RuntimeDefault"));
    assert!(
        text.contains("allowPrivilegeEscalation: true")
            && text.contains("add: [CHECKPOINT_RESTORE]")
    );
    assert!(!text.contains("seccomp/"), "no generated profile for crac");
    snapshot("crac", &text);
    // A CRaC image given a user: runs as it.
    let u =
        KubeOptions::from_facts("x", &crac, Some(RunUser::parse("1001").unwrap()), false).unwrap();
    assert!(all(&u).contains("runAsUser: 1001"));

    let j9 = facts("openj9", "1001", r#"["/app/restore.sh"]"#);
    let o = KubeOptions::from_facts("localhost/j9:instant", &j9, None, false).unwrap();
    let text = all(&o);
    assert!(text.contains("runAsNonRoot: true") && text.contains("runAsUser: 1001"));
    assert!(
        text.contains("add: [CHECKPOINT_RESTORE, SYS_PTRACE]") && text.contains("type: Unconfined")
    );
    assert!(
        KubeOptions::from_facts("x", &j9, None, true).is_err(),
        "no --no-fallback for openj9"
    );
    snapshot("openj9", &text);
}
