//! Snapshot tests of `--cpu-baseline` and `--push` in `cracin build` plans and generated files,
//! and of `cracin push` plans, for every runtime and both engines. The CRaC and OpenJ9 files
//! (-XX:CPUFeatures, -XX:+PortableSharedCache) were never run here: these tests pin what cracin
//! generates. Explicit assertions first, then whole-plan snapshots under
//! tests/snapshots/container/ (`UPDATE_SNAPSHOTS=1` rewrites them after an intended change).

mod common;

use cracin_core::container::push::{push_plan, PushSpec};
use cracin_core::container::{build_plan, BuildOptions, Engine, Runtime, Source};
use cracin_core::jvm::cpu::CpuBaseline;
use cracin_core::Error;

use common::{file, full, snapshot, step};

/// The plan tests' options for a jar on `base`, with a CPU baseline and a push, verified once.
fn opts(
    engine: Engine,
    runtime: Runtime,
    base: &str,
    cpu: CpuBaseline,
    push: Option<&str>,
) -> BuildOptions {
    BuildOptions {
        verify: 1,
        cpu_baseline: cpu,
        push: push.map(|p| PushSpec::new(p, None).unwrap()),
        ..common::opts(engine, runtime, common::jar(base), true)
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
