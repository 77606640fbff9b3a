//! Snapshot tests of `--cpu-baseline` and `--push` in `cracin build` plans and generated files,
//! and of `cracin push` plans, for every runtime and both engines. The CRaC and OpenJ9 files
//! (-XX:CPUFeatures, -XX:+PortableSharedCache) were never run here: these tests pin what cracin
//! generates. Explicit assertions first, then whole-plan snapshots under
//! tests/snapshots/container/ (`UPDATE_SNAPSHOTS=1` rewrites them after an intended change).

use std::path::PathBuf;
use std::time::Duration;

use cracin_core::container::push::{push_plan, PushSpec};
use cracin_core::container::{build_plan, Base, BuildOptions, Engine, Plan, Runtime, Source};
use cracin_core::jvm::cpu::CpuBaseline;
use cracin_core::Error;

fn opts(
    engine: Engine,
    runtime: Runtime,
    base: &str,
    cpu: CpuBaseline,
    push: Option<&str>,
) -> BuildOptions {
    BuildOptions {
        engine,
        runtime,
        source: Source::Jar {
            jar: PathBuf::from("target/app.jar"),
            base: Base::parse(base).unwrap(),
        },
        tag: "myapp:instant".into(),
        ready: Some("http://127.0.0.1:8080/health".into()),
        warmup: vec!["http://127.0.0.1:8080/api".into()],
        verify: 1,
        verify_urls: vec![],
        fallback: true,
        output: None,
        command: vec![],
        context_dir: PathBuf::from("/build/ctx"),
        cracin_binary: PathBuf::from("/usr/local/bin/cracin"),
        id: "t1".into(),
        verify_port: 18080,
        yama_ptrace_scope: 0,
        ready_timeout: Duration::from_secs(60),
        entrypoints: None,
        cpu_baseline: cpu,
        push: push.map(|p| PushSpec::new(p, None).unwrap()),
        recipe: Default::default(),
        user: None,
        seccomp_profile: PathBuf::from("/build/cracin-restore.json"),
    }
}

fn full(p: &Plan) -> String {
    format!(
        "{}\n# ---- generated files ----\n{}",
        p.render(),
        p.render_files()
    )
}

fn file<'a>(p: &'a Plan, name: &str) -> &'a str {
    &p.files
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .content
}

fn step(p: &Plan, name: &str) -> Vec<String> {
    p.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}"))
        .command
        .clone()
}

/// Compares with tests/snapshots/container/NAME.txt, or writes it when UPDATE_SNAPSHOTS=1.
fn snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/snapshots/container")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_SNAPSHOTS=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs at line {}:\n  expected: {:?}\n  actual:   {:?}",
            path.display(),
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

#[test]
fn criu_passes_the_baseline_to_the_in_container_checkpoint() {
    let p = build_plan(&opts(
        Engine::podman(),
        Runtime::Criu,
        "cracin-jdk21",
        CpuBaseline::V2,
        None,
    ))
    .unwrap();
    let cf = file(&p, "Containerfile");
    assert!(
        cf.contains(r#""--cpu-baseline", "x86-64-v2", "--", "java""#),
        "{cf}"
    );
    // cracin sets GLIBC_TUNABLES itself when it launches the JVM: no ENV in the image.
    assert!(!cf.contains("GLIBC_TUNABLES"), "{cf}");
    assert!(p.notes.iter().any(|n| n.contains("x86-64-v2")));
    // `host` changes nothing.
    let h = build_plan(&opts(
        Engine::podman(),
        Runtime::Criu,
        "cracin-jdk21",
        CpuBaseline::Host,
        None,
    ))
    .unwrap();
    assert!(!file(&h, "Containerfile").contains("--cpu-baseline"));
}

#[test]
fn crac_gets_cpu_features_generic_and_glibc_caps() {
    let p = build_plan(&opts(
        Engine::podman(),
        Runtime::Crac,
        "zulu-ubuntu-jdk",
        CpuBaseline::V3,
        None,
    ))
    .unwrap();
    let cf = file(&p, "Containerfile");
    assert!(
        cf.contains(
            "-Djdk.crac.resource-policies=/app/fd_policies.yaml \\\n-XX:CPUFeatures=generic\""
        ),
        "{cf}"
    );
    assert!(
        cf.contains("ENV GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,"),
        "{cf}"
    );
    // musl ignores glibc's tunables: none on Alpine, CPUFeatures still.
    let a = build_plan(&opts(
        Engine::podman(),
        Runtime::Crac,
        "zulu-alpine-jre",
        CpuBaseline::V2,
        None,
    ))
    .unwrap();
    let cf = file(&a, "Containerfile");
    assert!(cf.contains("-XX:CPUFeatures=generic"), "{cf}");
    assert!(!cf.contains("GLIBC_TUNABLES"), "{cf}");
}

#[test]
fn openj9_gets_a_portable_shared_cache() {
    let p = build_plan(&opts(
        Engine::docker(),
        Runtime::Openj9,
        "semeru-ubi-jre",
        CpuBaseline::V2,
        None,
    ))
    .unwrap();
    let cf = file(&p, "Containerfile");
    assert!(
        cf.contains("-Dopenj9.internal.criu.unprivilegedMode=true \\\n-XX:+PortableSharedCache\""),
        "{cf}"
    );
    assert!(
        cf.contains("ENV GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX,"),
        "{cf}"
    );
}

#[test]
fn a_baseline_on_an_existing_crac_image_is_refused() {
    let mut o = opts(
        Engine::podman(),
        Runtime::Crac,
        "zulu-ubuntu-jdk",
        CpuBaseline::V2,
        None,
    );
    o.source = Source::Image("myorg/app:crac".into());
    match build_plan(&o) {
        Err(Error::Usage { what, hint }) => {
            assert!(what.contains("--cpu-baseline"), "{what}");
            assert!(hint.contains("-XX:CPUFeatures=generic"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn build_pushes_after_tagging() {
    let p = build_plan(&opts(
        Engine::podman(),
        Runtime::Criu,
        "cracin-jdk21",
        CpuBaseline::Host,
        Some("127.0.0.1:5000/team/myapp:1"),
    ))
    .unwrap();
    let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
    let tag = names.iter().position(|n| *n == "tag").unwrap();
    let push = names.iter().position(|n| *n == "push").unwrap();
    assert!(push > tag, "{names:?}");
    assert_eq!(
        step(&p, "push"),
        [
            "podman",
            "push",
            "--tls-verify=false",
            "myapp:instant",
            "docker://127.0.0.1:5000/team/myapp:1"
        ]
    );
    let remote = build_plan(&opts(
        Engine::podman(),
        Runtime::Criu,
        "cracin-jdk21",
        CpuBaseline::Host,
        Some("registry.example.com/team/myapp:1"),
    ))
    .unwrap();
    assert_eq!(step(&remote, "push")[2], "--tls-verify=true");
    let d = build_plan(&opts(
        Engine::docker(),
        Runtime::Criu,
        "cracin-jdk21",
        CpuBaseline::Host,
        Some("127.0.0.1:5000/team/myapp:1"),
    ))
    .unwrap();
    assert_eq!(
        step(&d, "push-tag")[1..],
        ["tag", "myapp:instant", "127.0.0.1:5000/team/myapp:1"]
    );
    assert_eq!(
        step(&d, "push")[1..],
        ["push", "127.0.0.1:5000/team/myapp:1"]
    );
    assert_eq!(
        step(&d, "push-untag")[1..],
        ["rmi", "127.0.0.1:5000/team/myapp:1"]
    );
}

#[test]
fn snapshots_of_baselines_and_pushes() {
    let cases = [
        (
            "cpu-v2-push-criu-podman-cracin-jdk21",
            opts(
                Engine::podman(),
                Runtime::Criu,
                "cracin-jdk21",
                CpuBaseline::V2,
                Some("127.0.0.1:5000/team/myapp:1"),
            ),
        ),
        (
            "cpu-v3-push-crac-docker-zulu-ubuntu-jdk",
            opts(
                Engine::docker(),
                Runtime::Crac,
                "zulu-ubuntu-jdk",
                CpuBaseline::V3,
                Some("registry.example.com/team/myapp:1"),
            ),
        ),
        (
            "cpu-v2-push-openj9-podman-semeru-ubi-jre",
            opts(
                Engine::podman(),
                Runtime::Openj9,
                "semeru-ubi-jre",
                CpuBaseline::V2,
                Some("registry.example.com/team/myapp:1"),
            ),
        ),
    ];
    for (name, o) in cases {
        snapshot(name, &full(&build_plan(&o).unwrap()));
    }
    let spec = PushSpec::new("registry.example.com/team/myapp:1", Some(false)).unwrap();
    snapshot(
        "push-podman",
        &push_plan(&Engine::podman(), "myapp:instant", &spec).render(),
    );
    snapshot(
        "push-docker",
        &push_plan(&Engine::docker(), "myapp:instant", &spec).render(),
    );
}
