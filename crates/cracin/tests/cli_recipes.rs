//! `cracin init` and `cracin build --dry-run` for the CRaC and OpenJ9 recipes and the engine
//! choice, through the real binary: the options reach the generated files and plans, bad values
//! are refused with exit code 2, and a user's own engine configuration is what the plan uses.
//! No engine, JDK or root needed.

mod common;

use common::*;

fn read(dir: &std::path::Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn init_writes_the_warp_and_openj9_api_recipes() {
    let dir = tempdir("cli-recipes-warp");
    let out = run(cracin()
        .args(["init", "--runtime", "crac", "--base", "zulu-ubuntu-jdk"])
        .args([
            "--crac-engine",
            "warp",
            "--ready",
            "http://127.0.0.1:8080/health",
            "--dir",
        ])
        .arg(&dir));
    assert!(out.status.success(), "{}", stderr(&out));
    let cf = read(&dir, "Containerfile");
    assert!(cf.contains("RUN ./start_jcmd.sh\n"), "{cf}");
    assert!(
        cf.contains(r#"CMD ["java", "-XX:CRaCEngine=warp", "-XX:CRaCRestoreFrom=/app/checkpoint""#)
    );
    assert!(
        stdout(&out).contains("--crac-engine warp"),
        "{}",
        stdout(&out)
    );
    assert!(!read(&dir, "start.sh").contains("exec "));

    let dir2 = tempdir("cli-recipes-openj9");
    let out = run(cracin()
        .args([
            "init",
            "--runtime",
            "openj9",
            "--openj9-api",
            "criusupport",
            "--dir",
        ])
        .arg(&dir2));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(read(&dir2, "Containerfile").contains("-XX:+EnableCRIUSupport\""));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

#[test]
fn bad_recipe_values_are_refused_with_exit_2() {
    let dir = tempdir("cli-recipes-bad");
    for args in [
        // the seed's 21.0.3 JRE tarball predates Warp
        vec![
            "init",
            "--runtime",
            "crac",
            "--base",
            "zulu-alpine-jre",
            "--crac-engine",
            "warp",
        ],
        vec!["init", "--runtime", "openj9", "--openj9-api", "jcmd"],
        vec!["init", "--runtime", "crac", "--crac-engine", "criu2"],
        vec!["init", "--runtime", "openj9", "--base", "liberica-jdk"],
    ] {
        let out = run(cracin().args(&args).arg("--dir").arg(&dir));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("hint:"), "{args:?}");
    }
    let out = run(cracin().args([
        "build",
        "--jar",
        "app.jar",
        "--tag",
        "x",
        "--engine-config",
        "/nonexistent/containers.conf",
        "--dry-run",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_users_engine_configuration_is_the_plans() {
    let dir = tempdir("cli-recipes-conf");
    let conf = dir.join("containers.conf");
    std::fs::write(&conf, "[engine]\n").unwrap();
    // --engine-config: exported for every step, nothing added per command.
    let out = run(cracin()
        .env_remove("CONTAINERS_CONF")
        .args([
            "build",
            "--jar",
            "app.jar",
            "--tag",
            "x",
            "--dry-run",
            "--engine-config",
        ])
        .arg(&conf));
    let plan = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        plan.contains(&format!("export CONTAINERS_CONF={}", conf.display())),
        "{plan}"
    );
    assert!(!plan.contains("--ulimit"), "{plan}");
    // A CONTAINERS_CONF the user set is kept.
    let out = run(cracin().env("CONTAINERS_CONF", &conf).args([
        "build",
        "--jar",
        "app.jar",
        "--tag",
        "x",
        "--dry-run",
    ]));
    assert!(stdout(&out).contains(&format!("export CONTAINERS_CONF={}", conf.display())));
    assert!(stdout(&out).contains("from the environment"));
    // Liberica and OpenJ9 through the CLI: the plan carries the recipe's notes.
    let out = run(cracin().args([
        "build",
        "--runtime",
        "openj9",
        "--jar",
        "app.jar",
        "--tag",
        "x",
        "--dry-run",
    ]));
    assert!(
        stdout(&out).contains("-runsystempackages: jdk.crac"),
        "{}",
        stdout(&out)
    );
    let out = run(cracin().args([
        "build",
        "--runtime",
        "crac",
        "--base",
        "liberica-jre",
        "--jar",
        "app.jar",
        "--tag",
        "x",
        "--dry-run",
    ]));
    assert!(
        stdout(&out).contains("FROM bellsoft/liberica-runtime-container:jre-21-crac-slim-glibc")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
