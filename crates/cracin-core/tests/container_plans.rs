//! Snapshot tests of `cracin build`/`cracin base` plans and generated files for every runtime,
//! base and engine. Two layers: explicit assertions that the seed's exact flags, commands and
//! file contents appear (written from the seed, the part that must never drift), and whole-plan
//! snapshots under tests/snapshots/container/ that catch any other change. Run with
//! `UPDATE_SNAPSHOTS=1` to rewrite the snapshots after an intended change, then review the diff.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use cracin_core::container::base::{base_plan, BaseOptions};
use cracin_core::container::engine::{choose, HostFacts};
use cracin_core::container::{
    build_plan, BuildOptions, CracEngine, Engine, Openj9Api, Output, Recipe, Runtime, Source,
};

use common::*;

fn with_recipe(
    mut o: BuildOptions,
    crac_engine: CracEngine,
    openj9_api: Openj9Api,
) -> BuildOptions {
    o.recipe = Recipe {
        crac_engine,
        openj9_api,
    };
    o
}

/// The system's podman as `engine::choose` picks it on a host like this one (root without
/// CAP_SYS_RESOURCE, hard nofile 20000, cgroups v1, runc).
fn system_podman() -> Engine {
    let facts = HostFacts {
        nofile_hard: 20000,
        nproc_hard: 96365,
        pid_max: 32768,
        cap_sys_resource: false,
        cgroup_v2: false,
        podman_runtime: Some("runc".into()),
        runc: true,
        docker_server: None,
        private_docker: false,
    };
    choose("podman", None, &|_| None, &facts).unwrap().engine
}

// ---- the seed's exact values ----

#[test]
fn crac_follows_the_seed() {
    let p = build_plan(&opts(
        Engine::docker(),
        Runtime::Crac,
        jar("zulu-ubuntu-jdk"),
        false,
    ))
    .unwrap();
    let run = step_line(&p, "checkpoint");
    assert!(run.ends_with("run --name cracin-ckpt-t1 --cap-add=CHECKPOINT_RESTORE --cap-add=SYS_PTRACE localhost/cracin-ckpt-t1:latest"), "{run}");
    let commit = p.steps.iter().find(|s| s.name == "commit").unwrap();
    assert!(
        commit
            .command
            .contains(&r#"CMD ["java", "-XX:CRaCRestoreFrom=/app/checkpoint"]"#.to_string()),
        "{:?}",
        commit.command
    );
    let cf = file(&p, "Containerfile");
    assert!(cf.contains("FROM azul/zulu-openjdk:21-jdk-crac-latest\n"));
    assert!(cf.contains("-XX:CRaCCheckpointTo=/app/checkpoint"));
    assert!(cf.contains("-Djdk.crac.resource-policies=/app/fd_policies.yaml"));
    assert!(cf.contains("-XX:CRaCMinPid=1000"));
    assert!(cf.contains("COPY fd_policies.yaml /app/\n"));
    assert!(cf.contains("WORKDIR /app\nCMD [\"./start_jcmd.sh\"]\n"));
    assert_eq!(
        file(&p, "fd_policies.yaml"),
        "type: FILE\npath: **/*.jar\naction: reopen\nwarn: false\n---\ntype: FILE\npath: **/bundleFile\naction: reopen\nwarn: false\n"
    );
    assert!(file(&p, "start_jcmd.sh").contains(". ./start_create_checkpoint.sh &\n. ./start.sh\n"));
    // By PID (java is start.sh's child, not PID 1): the seed's `jcmd app.jar` also works, a PID
    // cannot match another JVM.
    assert!(file(&p, "start_create_checkpoint.sh").contains("jcmd \"$JAVA_PID\" JDK.checkpoint"));
    let start = file(&p, "start.sh");
    assert!(
        start.contains("\njava $JAVA_OPTS $JAVA_OPTS_EXTRA -jar /app/app.jar &\n"),
        "{start}"
    );
    assert!(!start.contains("exec "), "java must stay a child: {start}");
    let verify = step_line(&p, "verify-1-run");
    assert!(
        verify.contains(" --cap-add=CHECKPOINT_RESTORE -p 127.0.0.1:18080:8080 "),
        "{verify}"
    );
    // A cold start must not pass as a restore.
    assert!(step_line(&p, "verify-1-restored").contains("exec cracin-verify-t1-1 sh -c"));
    // Docker: the seed's checkpoint flags as they are; podman also needs no seccomp filter.
    let pod = build_plan(&opts(
        Engine::podman(),
        Runtime::Crac,
        jar("zulu-ubuntu-jdk"),
        false,
    ))
    .unwrap();
    assert!(step_line(&pod, "checkpoint").contains(
        "--cap-add=CHECKPOINT_RESTORE --cap-add=SYS_PTRACE --security-opt seccomp=unconfined "
    ));
}

#[test]
fn crac_jre_bases_follow_the_seed() {
    let p = build_plan(&opts(
        Engine::podman(),
        Runtime::Crac,
        jar("zulu-alpine-jre"),
        true,
    ))
    .unwrap();
    let cf = file(&p, "Containerfile");
    assert!(cf.contains("FROM alpine:3.20\n"));
    assert!(cf.contains("ADD \"https://cdn.azul.com/zulu/bin/zulu21.34.21-ca-crac-jre21.0.3-linux_musl_x64.tar.gz\" $JAVA_HOME/openjdk.tar.gz"));
    assert!(cf.contains("tar --extract --file $JAVA_HOME/openjdk.tar.gz --directory \"$JAVA_HOME\" --strip-components 1;"));
    assert!(!cf.contains("CRaCMinPid"), "Alpine: CRaCMinPid fails there");
    assert!(file(&p, "start.sh").contains("for i in $(seq 1000)\ndo\n    /bin/true\ndone\n"));
    assert!(
        !p.files.iter().any(|f| f.name == "start_jcmd.sh"),
        "a JRE has no jcmd"
    );
    let u = build_plan(&opts(
        Engine::podman(),
        Runtime::Crac,
        jar("zulu-ubuntu-jre"),
        true,
    ))
    .unwrap();
    let cf = file(&u, "Containerfile");
    assert!(cf.contains("FROM ubuntu:22.04\n"));
    assert!(cf.contains("zulu21.34.21-ca-crac-jre21.0.3-linux_x64.tar.gz"));
    // The pinned 21.0.3 tarball predates -XX:+CRaCIgnoreRestoreIfUnavailable: an unknown option
    // would stop the JVM, so there is no fallback, and the plan says why.
    let commit = u.steps.iter().find(|s| s.name == "commit").unwrap();
    assert!(commit
        .command
        .contains(&r#"CMD ["java", "-XX:CRaCRestoreFrom=/app/checkpoint"]"#.to_string()));
    assert!(!u.render().contains("-XX:+CRaCIgnoreRestoreIfUnavailable\""));
    assert!(u
        .notes
        .iter()
        .any(|n| n.contains("no cold-start fallback") && n.contains("first in 21.0.9")));
    // The `-latest` JDK image has it.
    let j = build_plan(&opts(
        Engine::podman(),
        Runtime::Crac,
        jar("zulu-ubuntu-jdk"),
        true,
    ))
    .unwrap();
    let commit = j.steps.iter().find(|s| s.name == "commit").unwrap();
    assert!(commit.command.contains(
        &r#"CMD ["java", "-XX:CRaCRestoreFrom=/app/checkpoint", "-XX:+CRaCIgnoreRestoreIfUnavailable", "-jar", "/app/app.jar"]"#.to_string()
    ));
}

#[test]
fn warp_checkpoints_inside_the_build_without_capabilities() {
    let o = with_recipe(
        opts(
            Engine::podman(),
            Runtime::Crac,
            jar("zulu-ubuntu-jdk"),
            false,
        ),
        CracEngine::Warp,
        Openj9Api::Crac,
    );
    let p = build_plan(&o).unwrap();
    assert!(!p
        .steps
        .iter()
        .any(|s| s.name == "checkpoint" || s.name == "commit"));
    let cf = file(&p, "Containerfile");
    assert!(cf.contains("-XX:CRaCEngine=warp"), "{cf}");
    assert!(cf.contains("WORKDIR /app\nRUN ./start_jcmd.sh\n"), "{cf}");
    assert!(cf
        .contains(r#"CMD ["java", "-XX:CRaCEngine=warp", "-XX:CRaCRestoreFrom=/app/checkpoint"]"#));
    assert!(!cf.contains("CRaCMinPid"));
    assert_eq!(
        step_line(&p, "verify-1-run"),
        "podman run -d --name cracin-verify-t1-1 -p 127.0.0.1:18080:8080 localhost/cracin-ckpt-t1:latest"
    );
    assert_eq!(
        step_line(&p, "tag"),
        "podman tag localhost/cracin-ckpt-t1:latest myapp:instant"
    );
    // A build without Warp is refused, not generated.
    let old = with_recipe(
        opts(
            Engine::podman(),
            Runtime::Crac,
            jar("zulu-alpine-jre"),
            false,
        ),
        CracEngine::Warp,
        Openj9Api::Crac,
    );
    assert!(build_plan(&old).is_err());
}

#[test]
fn liberica_presets_use_bellsofts_crac_images() {
    let p = build_plan(&opts(
        Engine::docker(),
        Runtime::Crac,
        jar("liberica-jdk-musl"),
        true,
    ))
    .unwrap();
    let cf = file(&p, "Containerfile");
    assert!(cf.contains("FROM bellsoft/liberica-runtime-container:jdk-21-crac-slim-musl\n"));
    assert!(!cf.contains("CRaCMinPid"));
    assert!(file(&p, "start.sh").contains("for i in $(seq 1000)"));
    assert!(p.files.iter().any(|f| f.name == "start_jcmd.sh"));
    // Liberica is not in Azul's table: no fallback flag.
    assert!(!p.render().contains("CRaCIgnoreRestoreIfUnavailable\""));
    let j = build_plan(&opts(
        Engine::docker(),
        Runtime::Crac,
        jar("liberica-jre"),
        false,
    ))
    .unwrap();
    assert!(file(&j, "Containerfile")
        .contains("FROM bellsoft/liberica-runtime-container:jre-21-crac-slim-glibc\n"));
    assert!(!j.files.iter().any(|f| f.name == "start_jcmd.sh"));
    assert!(build_plan(&opts(
        Engine::docker(),
        Runtime::Openj9,
        jar("liberica-jdk"),
        false
    ))
    .is_err());
}

#[test]
fn the_system_podman_gets_this_hosts_needs_per_command() {
    let p = build_plan(&opts(
        system_podman(),
        Runtime::Criu,
        jar("cracin-jdk21"),
        true,
    ))
    .unwrap();
    assert!(p.env.is_empty(), "no cracin configuration: {:?}", p.env);
    assert_eq!(
        step_line(&p, "checkpoint"),
        "podman run --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 --name cracin-ckpt-t1 --cap-drop=ALL --cap-add=CHECKPOINT_RESTORE --security-opt no-new-privileges --security-opt seccomp=unconfined localhost/cracin-ckpt-t1:latest"
    );
    assert!(step_line(&p, "build").starts_with("podman build --ulimit nofile=20000:20000 "));
    assert_eq!(
        step_line(&p, "tag"),
        "podman tag localhost/cracin-restore-t1:latest myapp:instant"
    );
}

#[test]
fn openj9_follows_the_seed() {
    let p = build_plan(&opts(
        Engine::docker(),
        Runtime::Openj9,
        jar("semeru-ubi-jre"),
        false,
    ))
    .unwrap();
    let run = step_line(&p, "checkpoint");
    assert!(run.contains(" --cap-drop=ALL --cap-add=CHECKPOINT_RESTORE --cap-add=SYS_PTRACE --cap-add=SETPCAP --security-opt seccomp=unconfined "), "{run}");
    let commit = p.steps.iter().find(|s| s.name == "commit").unwrap();
    assert!(commit.command.contains(
        &r#"CMD ["criu", "restore", "--unprivileged", "-D", "/app/checkpoint", "--shell-job", "-v4", "--log-file=restore.log"]"#.to_string()
    ));
    let verify = step_line(&p, "verify-1-run");
    assert!(
        verify.contains(
            " --cap-add=CHECKPOINT_RESTORE --cap-add=SYS_PTRACE --cap-add=SETPCAP --security-opt seccomp=unconfined "
        ),
        "{verify}"
    );
    let cf = file(&p, "Containerfile");
    assert!(cf.contains("FROM icr.io/appcafe/ibm-semeru-runtimes:open-21-jre-ubi-minimal\n"));
    // Default: the org.crac API, with the seed's flags for it ("OpenJ9 CRIU Support / CRaC").
    for o in [
        "-XX:CRaCCheckpointTo=/app/checkpoint",
        "-Djdk.crac.resource-policies=/app/fd_policies.yaml",
        "-Dorg.crac.Core.Compat=jdk.crac",
        "-Dopenj9.internal.criu.unprivilegedMode=true",
    ] {
        assert!(cf.contains(o), "{o}: {cf}");
    }
    assert!(
        !cf.contains("\n-XX:+EnableCRIUSupport"),
        "does not mix with org.crac"
    );
    assert!(p
        .notes
        .iter()
        .any(|n| n.contains("-runsystempackages: jdk.crac")));
    let c = build_plan(&with_recipe(
        opts(
            Engine::docker(),
            Runtime::Openj9,
            jar("semeru-ubi-jre"),
            false,
        ),
        CracEngine::Criu,
        Openj9Api::CriuSupport,
    ))
    .unwrap();
    let ccf = file(&c, "Containerfile");
    assert!(
        ccf.contains("ENV JAVA_OPTS_EXTRA=\"\\\n-XX:+EnableCRIUSupport\"\n"),
        "{ccf}"
    );
    assert!(!ccf.contains("org.crac.Core.Compat"));
    assert!(cf.contains("USER root\n"));
    assert!(cf.contains("mkdir -p /app/checkpoint && \\\n  chmod 777 /app/checkpoint"));
    assert!(cf.contains("USER 1001\n"));
    let start = file(&p, "start.sh");
    assert!(start.contains("for i in $(seq 1000)"));
    assert!(start
        .contains(" 0</dev/null 1>\"$CHECKPOINT_DIR/stdout\" 2>\"$CHECKPOINT_DIR/stderr\" &\n"));
    assert!(
        !start.contains("exec "),
        "OpenJ9 has no PID adjustment: java must not be PID 1"
    );
    let j = build_plan(&opts(
        Engine::podman(),
        Runtime::Openj9,
        jar("semeru-ubi-jdk"),
        true,
    ))
    .unwrap();
    assert!(file(&j, "Containerfile")
        .contains("FROM icr.io/appcafe/ibm-semeru-runtimes:open-21-jdk-ubi-minimal\n"));
    assert!(file(&j, "restore.sh").contains(
        "criu restore --unprivileged -D /app/checkpoint --shell-job -v4 --log-file=restore.log -d"
    ));
}

// ---- plain CRIU: the values measured on this machine (docs/containers.md) ----

#[test]
fn criu_uses_the_measured_minimal_privileges() {
    let p = build_plan(&opts(
        Engine::podman(),
        Runtime::Criu,
        jar("cracin-jdk21"),
        true,
    ))
    .unwrap();
    assert_eq!(
        step_line(&p, "checkpoint"),
        "podman run --name cracin-ckpt-t1 --cap-drop=ALL --cap-add=CHECKPOINT_RESTORE --security-opt no-new-privileges --security-opt seccomp=unconfined localhost/cracin-ckpt-t1:latest"
    );
    assert_eq!(
        step_line(&p, "verify-1-run"),
        "podman run -d --name cracin-verify-t1-1 --cap-drop=ALL --cap-add=CHECKPOINT_RESTORE --security-opt no-new-privileges --security-opt seccomp=/build/cracin-restore.json -p 127.0.0.1:18080:8080 localhost/cracin-restore-t1:latest"
    );
    // Uncached: no step stands on another build's intermediate image, which that build's
    // removal of its checkpoint image would take away.
    assert!(
        step_line(&p, "build").starts_with("podman build --no-cache -f "),
        "{}",
        step_line(&p, "build")
    );
    let commit = p.steps.iter().find(|s| s.name == "commit").unwrap();
    for c in ["ENTRYPOINT []", "STOPSIGNAL SIGTERM", "WORKDIR /app"] {
        assert!(commit.command.contains(&c.to_string()), "{c}");
    }
    assert!(p.env.contains(&(
        "CONTAINERS_CONF".into(),
        "/opt/cracin/containers.conf".into()
    )));
    let cf = file(&p, "Containerfile");
    assert!(cf.contains("FROM localhost/cracin-base:jdk21\n"));
    // Non-root: /app belongs to the user, cracin gets its file capability, then USER.
    assert!(cf.contains("USER root\nRUN mkdir -p /app /var/lib/cracin && chown 1001:1001 /app /var/lib/cracin && chmod 0700 /var/lib/cracin \\\n&& criu --version && /usr/local/bin/cracin setcap-checkpoint-restore /usr/local/bin/cracin\nUSER 1001:1001\n"), "{cf}");
    // A builder stage that compiles CRIU keeps the engine's cache: minutes per build otherwise.
    let builder = build_plan(&opts(
        Engine::podman(),
        Runtime::Criu,
        jar("eclipse-temurin:21-jdk"),
        true,
    ))
    .unwrap();
    assert!(file(&builder, "Containerfile").contains(" AS criu-builder\n"));
    assert!(!step_line(&builder, "build").contains("--no-cache"));
    // The generated seccomp profile is a file of the plan, at its own path.
    let profile = file(&p, "/build/cracin-restore.json");
    assert!(profile.contains("\"clone3\""));
    for label in [
        "LABEL io.cracin.runtime=criu",
        "LABEL io.cracin.port=8080",
        "LABEL io.cracin.fallback=true",
        "LABEL io.cracin.ready-path=\"/health\"",
    ] {
        assert!(commit.command.contains(&label.to_string()), "{label}");
    }
    let mut u = opts(Engine::podman(), Runtime::Criu, jar("cracin-jdk21"), true);
    u.user = Some(cracin_core::container::RunUser::parse("4242").unwrap());
    assert!(file(&build_plan(&u).unwrap(), "Containerfile").contains("chown 4242 /app"));
    // Yama: SYS_PTRACE only where ptrace_scope >= 1.
    let mut o = opts(Engine::podman(), Runtime::Criu, jar("cracin-jdk21"), true);
    o.yama_ptrace_scope = 1;
    assert!(step_line(&build_plan(&o).unwrap(), "checkpoint").contains("--cap-add=SYS_PTRACE"));
    // Docker 26's default seccomp profile blocks clone3: restore gets cracin's own profile.
    let d = build_plan(&opts(
        Engine::docker(),
        Runtime::Criu,
        jar("cracin-jdk21"),
        true,
    ))
    .unwrap();
    assert!(step_line(&d, "verify-1-run").contains(
        "--cap-drop=ALL --cap-add=CHECKPOINT_RESTORE --security-opt no-new-privileges --security-opt seccomp=/build/cracin-restore.json"
    ));
    assert!(d.env.contains(&(
        "DOCKER_HOST".into(),
        "unix:///run/cracin/docker.sock".into()
    )));
}

#[test]
fn plans_refuse_nonsense() {
    assert!(build_plan(&opts(
        Engine::podman(),
        Runtime::Crac,
        jar("cracin-jdk21"),
        true
    ))
    .is_err());
    assert!(build_plan(&opts(
        Engine::podman(),
        Runtime::Criu,
        jar("semeru-ubi-jre"),
        true
    ))
    .is_err());
    let mut o = opts(Engine::podman(), Runtime::Criu, jar("cracin-jdk21"), true);
    o.verify = 0;
    assert!(build_plan(&o).is_err());
}

// ---- whole-plan snapshots ----

#[test]
fn snapshots_of_every_runtime_base_and_engine() {
    let cases: Vec<(&str, BuildOptions)> = vec![
        (
            "criu-podman-cracin-jdk21",
            opts(Engine::podman(), Runtime::Criu, jar("cracin-jdk21"), true),
        ),
        (
            "criu-docker-cracin-jdk17",
            opts(Engine::docker(), Runtime::Criu, jar("cracin-jdk17"), true),
        ),
        (
            "criu-podman-temurin-builder",
            opts(
                Engine::podman(),
                Runtime::Criu,
                jar("eclipse-temurin:21-jdk"),
                true,
            ),
        ),
        ("criu-docker-image", {
            let mut o = opts(
                Engine::docker(),
                Runtime::Criu,
                Source::Image("myapp:latest".into()),
                false,
            );
            o.output = Some(Output::OciArchive("/out/myapp.tar".into()));
            o
        }),
        (
            "crac-docker-zulu-ubuntu-jdk",
            opts(
                Engine::docker(),
                Runtime::Crac,
                jar("zulu-ubuntu-jdk"),
                false,
            ),
        ),
        (
            "crac-podman-zulu-ubuntu-jre",
            opts(
                Engine::podman(),
                Runtime::Crac,
                jar("zulu-ubuntu-jre"),
                true,
            ),
        ),
        (
            "crac-podman-zulu-alpine-jre",
            opts(
                Engine::podman(),
                Runtime::Crac,
                jar("zulu-alpine-jre"),
                true,
            ),
        ),
        (
            "crac-docker-image",
            opts(
                Engine::docker(),
                Runtime::Crac,
                Source::Image("myapp:crac".into()),
                false,
            ),
        ),
        (
            "openj9-docker-semeru-ubi-jre",
            opts(
                Engine::docker(),
                Runtime::Openj9,
                jar("semeru-ubi-jre"),
                false,
            ),
        ),
        (
            "crac-podman-zulu-ubuntu-jdk-warp",
            with_recipe(
                opts(
                    Engine::podman(),
                    Runtime::Crac,
                    jar("zulu-ubuntu-jdk"),
                    true,
                ),
                CracEngine::Warp,
                Openj9Api::Crac,
            ),
        ),
        (
            "crac-docker-liberica-jdk-musl",
            opts(
                Engine::docker(),
                Runtime::Crac,
                jar("liberica-jdk-musl"),
                true,
            ),
        ),
        (
            "openj9-podman-semeru-ubi-jre-criusupport",
            with_recipe(
                opts(
                    Engine::podman(),
                    Runtime::Openj9,
                    jar("semeru-ubi-jre"),
                    false,
                ),
                CracEngine::Criu,
                Openj9Api::CriuSupport,
            ),
        ),
        (
            "criu-system-podman-cracin-jdk21",
            opts(system_podman(), Runtime::Criu, jar("cracin-jdk21"), true),
        ),
        ("openj9-podman-semeru-ubi-jdk-fallback", {
            let mut o = opts(
                Engine::podman(),
                Runtime::Openj9,
                jar("semeru-ubi-jdk"),
                true,
            );
            o.output = Some(Output::DockerArchive("/out/myapp.tar".into()));
            o
        }),
    ];
    for (name, o) in cases {
        snapshot(name, &full(&build_plan(&o).unwrap()));
    }
    let b = BaseOptions::new(21, Engine::podman(), "/var/tmp/cracin-base-w".into());
    snapshot(
        "base-podman-jdk21-cold",
        &base_plan(&b, false).unwrap().render(),
    );
    let b = BaseOptions::new(17, Engine::docker(), "/var/tmp/cracin-base-w".into());
    snapshot(
        "base-docker-jdk17-cached",
        &base_plan(&b, true).unwrap().render(),
    );
}

// ---- the plain-CRIU flow for real, on podman and docker ----
//
// `build_plan` for `--image` with the criu runtime, executed by `container::execute` against the
// real engines, real CRIU and a real JVM. Until the in-container `cracin checkpoint/restore
// --in-container` exist, the image's own scripts (tests/fixtures/apps/container-http) stand in
// for them through `BuildOptions::entrypoints`; everything else is the plan `cracin build` runs:
// build, checkpoint with the measured flags, commit with --change, two verifications through the
// published port (with the fallback check on the logs), tag, clean-up. Needs root, podman (and
// cracin's dockerd for docker), localhost/cracin-base:jdk21 in the engine
// (scripts/base-image.sh), javac, jar and gcc.

mod e2e {
    use super::*;
    use cracin_core::container::{execute, Entrypoints};
    use cracin_core::os::cmd::{read_lossy, tail_of_file, Cmd};

    fn engine_cmd(e: &Engine, args: &[&str]) -> Cmd {
        let mut c = Cmd::new(&e.binary)
            .args(args)
            .timeout(Duration::from_secs(300));
        for (k, v) in &e.env {
            c = c.env(k, v);
        }
        c
    }

    /// The fixture's build context: Containerfile and scripts, Tiny.java as app.jar, a static pidbump.
    fn fixture_context(dir: &std::path::Path) {
        let fx = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/apps/container-http");
        for f in ["Containerfile", "checkpoint.sh", "restore.sh"] {
            std::fs::copy(fx.join(f), dir.join(f)).unwrap();
        }
        let classes = dir.join("classes");
        Cmd::new("javac")
            .args(["--release", "17", "-d"])
            .arg(&classes)
            .arg(fx.join("Tiny.java"))
            .run()
            .unwrap();
        std::fs::write(classes.join("m.txt"), "Main-Class: Tiny\n").unwrap();
        Cmd::new("jar")
            .arg("cfm")
            .arg(dir.join("app.jar"))
            .arg(classes.join("m.txt"))
            .arg("-C")
            .arg(&classes)
            .arg(".")
            .run()
            .unwrap();
        std::fs::remove_dir_all(&classes).unwrap();
        Cmd::new("gcc")
            .args(["-O2", "-static", "-o"])
            .arg(dir.join("pidbump"))
            .arg(fx.join("pidbump.c"))
            .run()
            .unwrap();
    }

    fn flow(e: Engine) {
        let tmp = tempfile::tempdir().unwrap();
        let app_ctx = tmp.path().join("app");
        std::fs::create_dir_all(&app_ctx).unwrap();
        fixture_context(&app_ctx);
        let id = format!("e2e{}{}", std::process::id(), e.name());
        let app_img = format!("localhost/cracin-e2e-app-{id}:latest");
        let out_tag = format!("localhost/cracin-e2e-out-{id}:latest");
        engine_cmd(
            &e,
            &[
                "build",
                "-f",
                &format!("{}/Containerfile", app_ctx.display()),
                "-t",
                &app_img,
            ],
        )
        .arg(&app_ctx)
        .run()
        .unwrap();
        let o = BuildOptions {
            tag: out_tag.clone(),
            ready: Some("http://127.0.0.1:8080/api".into()),
            warmup: vec![],
            context_dir: tmp.path().join("ctx"),
            // The stand-in scripts do cracin's in-container work; any executable fills the slot.
            cracin_binary: PathBuf::from("/bin/true"),
            id: id.clone(),
            verify_port: free_port(),
            entrypoints: Some(Entrypoints {
                checkpoint: vec!["/app/checkpoint.sh".into()],
                restore: vec!["/app/restore.sh".into()],
            }),
            // The fixture's scripts run criu themselves (no cracin to raise its capability) and
            // write a root-owned /app/checkpoint: they stay root, with CHECKPOINT_RESTORE only.
            user: Some(cracin_core::container::RunUser {
                user: "0".into(),
                group: Some("0".into()),
            }),
            seccomp_profile: tmp.path().join("seccomp.json"),
            ..opts(
                e.clone(),
                Runtime::Criu,
                Source::Image(app_img.clone()),
                true,
            )
        };
        let plan = build_plan(&o).unwrap();
        let logs = tmp.path().join("logs");
        let result = execute(&plan, &logs, &cracin_core::Quiet);
        let log_of = |step: &str| -> String {
            std::fs::read_dir(&logs)
                .map(|rd| {
                    rd.flatten()
                        .filter(|f| f.file_name().to_string_lossy().contains(step))
                        .map(|f| read_lossy(&f.path()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let tagged = engine_cmd(&e, &["image", "inspect", &out_tag])
            .run_unchecked()
            .map(|o| o.status.success());
        let _ = engine_cmd(&e, &["rmi", &out_tag, &app_img]).run_unchecked();
        if let Err(err) = result {
            let tails: String = std::fs::read_dir(&logs)
                .map(|rd| {
                    rd.flatten()
                        .map(|f| {
                            format!(
                                "--- {}\n{}\n",
                                f.path().display(),
                                tail_of_file(&f.path(), 15)
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            panic!("{} flow failed: {err:?}\n{tails}", e.name());
        }
        assert!(matches!(tagged, Ok(true)), "{out_tag} was not tagged");
        // The restored JVM writes to the container's stdout (criu --inherit-fd): it answered the
        // probe's /api request after the checkpoint script's 200 warm-up requests, so 201, in
        // both verification containers (each restores the same checkpoint).
        for i in [1, 2] {
            let out = log_of(&format!("verify-{i}-logs"));
            assert!(
                out.contains("api request 201"),
                "verification {i} output: {out}"
            );
        }
        let leftovers = engine_cmd(&e, &["ps", "-a", "--format", "{{.Names}}"])
            .run()
            .unwrap()
            .stdout;
        assert!(
            !leftovers.contains(&id),
            "containers left behind: {leftovers}"
        );
        let images = engine_cmd(&e, &["images", "--format", "{{.Repository}}"])
            .run()
            .unwrap()
            .stdout;
        assert!(!images.contains(&id), "images left behind: {images}");
    }

    #[test]
    fn criu_flow_on_podman() {
        flow(require!(
            on_path("jar"),
            on_path("gcc"),
            engine_ready(Engine::podman())
        ));
    }

    #[test]
    fn criu_flow_on_docker() {
        flow(require!(
            on_path("jar"),
            on_path("gcc"),
            engine_ready(Engine::docker())
        ));
    }
}

/// `--verify-url`: two verification containers (a `--verify 1` is raised), each asked the URLs
/// on the published port while it runs, then the comparison, all before the tag step.
#[test]
fn the_uniqueness_check_runs_before_the_tag() {
    let mut o = opts(Engine::podman(), Runtime::Criu, jar("cracin-jdk21"), true);
    o.verify = 1;
    o.verify_urls = vec!["/login".into(), "http://127.0.0.1:8080/api/token".into()];
    let p = build_plan(&o).unwrap();
    let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("no step {n} in {names:?}"))
    };
    assert!(pos("verify-1-ready") < pos("verify-1-sample"));
    assert!(pos("verify-1-sample") < pos("verify-1-stop"));
    assert!(pos("verify-2-sample") < pos("uniqueness"));
    assert!(pos("uniqueness") < pos("tag"));
    assert_eq!(
        p.steps[pos("verify-2-sample")].command,
        [
            "sample",
            "http://127.0.0.1:18080/login",
            "http://127.0.0.1:18080/api/token"
        ]
    );
    assert!(
        p.notes.iter().any(|n| n.contains("raised to 2")),
        "{:?}",
        p.notes
    );
    let text = p.render();
    assert!(text.contains("(cracin sends each URL 2 times)"), "{text}");
    assert!(text.contains("(cracin compares the answers)"), "{text}");
    // Both verification containers are removed on failure.
    assert!(text.contains("rm -f cracin-verify-t1-2"), "{text}");

    // Without --verify-url the plan is as before.
    o.verify_urls.clear();
    let p = build_plan(&o).unwrap();
    assert!(p
        .steps
        .iter()
        .all(|s| !s.name.ends_with("-sample") && s.name != "uniqueness"));

    // A URL of another port is refused before anything runs.
    o.verify_urls = vec!["http://127.0.0.1:9090/x".into()];
    let e = build_plan(&o).unwrap_err();
    assert!(e.to_string().contains("--verify-url"), "{e}");
}
