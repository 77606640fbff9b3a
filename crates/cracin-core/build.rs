//! Build script of cracin-core: compiles cracin's own org.crac provider (`java/crac-provider`,
//! package `io.cracin.crac`) with the JDK's `javac` into OUT_DIR, so that `src/jvm/coordinate.rs`
//! can embed the jar in the binary. A machine without a JDK still builds cracin, without the
//! provider (`coordinate::install_provider` then says so); set `CRACIN_REQUIRE_PROVIDER=1` to make
//! that a build error instead (release builds).
//!
//! It also compiles cracin's JVMTI agent (`crates/cracin-agent/src/lib.rs`, no dependencies)
//! with the same rustc into a shared library that `src/jvm/individual.rs` embeds: cargo cannot yet
//! hand one package's cdylib to another, and calling rustc directly needs no nested cargo.

use std::env;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let provider = manifest.join("../../java/crac-provider");
    let script = provider.join("build.sh");
    println!("cargo:rerun-if-changed={}", provider.join("src").display());
    println!("cargo:rerun-if-changed={}", script.display());
    for var in ["JAVA_HOME", "JAVAC", "JAR", "CRACIN_REQUIRE_PROVIDER"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let require = env::var("CRACIN_REQUIRE_PROVIDER").is_ok_and(|v| v == "1");

    let jar_dir = out.join("crac-provider");
    let built: Result<PathBuf, String> = if !script.exists() {
        Err(format!("{} is missing", script.display()))
    } else {
        match Command::new("sh").arg(&script).arg(&jar_dir).output() {
            Ok(o) if o.status.success() => Ok(jar_dir.join("cracin-crac.jar")),
            Ok(o) => Err(format!(
                "{} failed ({}): {}",
                script.display(),
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Err(format!("cannot run {}: {e}", script.display())),
        }
    };

    let code = match built {
        Ok(jar) => format!(
            "Some(include_bytes!({:?}) as &[u8])",
            jar.to_str().expect("OUT_DIR is not UTF-8")
        ),
        Err(why) => {
            if require {
                panic!("CRACIN_REQUIRE_PROVIDER=1 but the org.crac provider was not built: {why}");
            }
            println!("cargo:warning=cracin is built without its org.crac provider: {why}");
            "None".to_string()
        }
    };
    fs::write(out.join("provider_jar.rs"), code).expect("write provider_jar.rs");
    build_agent(&manifest, &out);
}

/// `rustc --crate-type cdylib` on the agent's source; a failure is a build error (the agent is
/// not optional: without it every restore would repeat the checkpoint's random numbers).
fn build_agent(manifest: &std::path::Path, out: &std::path::Path) {
    let src = manifest.join("../cracin-agent/src");
    println!("cargo:rerun-if-changed={}", src.display());
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let so = out.join("libcracin_agent.so");
    let mut cmd = Command::new(&rustc);
    cmd.args([
        "--edition",
        "2021",
        "--crate-type",
        "cdylib",
        "--crate-name",
        "cracin_agent",
    ])
    .args([
        "-C",
        "opt-level=2",
        "-C",
        "panic=abort",
        "-C",
        "debuginfo=0",
        // The standard library's symbols: 4.4 MB -> 0.4 MB. Agent_OnLoad stays exported (the
        // dynamic symbol table is kept), and every restore reads and checks a tenth as much.
        "-C",
        "strip=symbols",
    ])
    .arg(src.join("lib.rs"))
    .arg("-o")
    .arg(&so);
    if let (Ok(target), Ok(host)) = (env::var("TARGET"), env::var("HOST")) {
        if target != host {
            cmd.args(["--target", &target]);
        }
    }
    match cmd.output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "compiling the JVMTI agent failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run {rustc:?} to compile the JVMTI agent: {e}"),
    }
    fs::write(
        out.join("agent_so.rs"),
        format!(
            "include_bytes!({:?})",
            so.to_str().expect("OUT_DIR is not UTF-8")
        ),
    )
    .expect("write agent_so.rs");
}
