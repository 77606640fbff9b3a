//! Shared set-up of the core's integration tests: the build options every plan test starts
//! from, the plan's parts a test looks at (files, steps), the snapshots under tests/snapshots/,
//! and the prerequisite checks of the tests that run real programs (`require!`, shared with the
//! cracin crate's end-to-end tests).
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use cracin_core::container::{Base, BuildOptions, Engine, Plan, Recipe, Runtime, Source};

#[path = "../../../cracin/tests/common/need.rs"]
mod need;
#[allow(unused_imports)] // not every test binary checks a need
pub use need::*;

/// The build options of the plan tests: a jar or image built by `engine` for `runtime`, ready
/// and warmed up on port 8080, verified twice, with fixed paths and id (stable snapshots).
pub fn opts(engine: Engine, runtime: Runtime, source: Source, fallback: bool) -> BuildOptions {
    BuildOptions {
        engine,
        runtime,
        source,
        tag: "myapp:instant".into(),
        ready: Some("http://127.0.0.1:8080/health".into()),
        warmup: vec!["http://127.0.0.1:8080/api".into()],
        verify: 2,
        verify_urls: vec![],
        fallback,
        output: None,
        command: vec![],
        context_dir: PathBuf::from("/build/ctx"),
        cracin_binary: PathBuf::from("/usr/local/bin/cracin"),
        id: "t1".into(),
        verify_port: 18080,
        yama_ptrace_scope: 0,
        ready_timeout: Duration::from_secs(60),
        entrypoints: None,
        cpu_baseline: Default::default(),
        push: None,
        recipe: Recipe::default(),
        user: None,
        seccomp_profile: PathBuf::from("/build/cracin-restore.json"),
    }
}

/// `target/app.jar` on a base image preset.
pub fn jar(base: &str) -> Source {
    Source::Jar {
        jar: PathBuf::from("target/app.jar"),
        base: Base::parse(base).unwrap(),
    }
}

/// The whole plan as `--dry-run` shows it, with its generated files.
pub fn full(p: &Plan) -> String {
    format!(
        "{}\n# ---- generated files ----\n{}",
        p.render(),
        p.render_files()
    )
}

/// A generated file's content.
pub fn file<'a>(p: &'a Plan, name: &str) -> &'a str {
    &p.files
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .content
}

/// A step's command.
pub fn step(p: &Plan, name: &str) -> Vec<String> {
    p.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}"))
        .command
        .clone()
}

/// A step's command as one line.
pub fn step_line(p: &Plan, name: &str) -> String {
    step(p, name).join(" ")
}

/// Compares with tests/snapshots/container/NAME.txt, or writes it when UPDATE_SNAPSHOTS=1.
pub fn snapshot(name: &str, actual: &str) {
    compare_snapshot(&format!("container/{name}.txt"), actual);
}

/// Compares with tests/snapshots/PATH, or writes it when UPDATE_SNAPSHOTS=1.
pub fn compare_snapshot(path: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/snapshots")
        .join(path);
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
            "{} differs at line {}:\n  expected: {:?}\n  actual:   {:?}\n(UPDATE_SNAPSHOTS=1 rewrites it after an intended change, then review the diff)",
            path.display(),
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

/// A TCP port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    cracin_core::os::net::free_port().unwrap()
}
