//! Build script of cracin-core: compiles cracin's own org.crac provider (`java/crac-provider`,
//! package `io.cracin.crac`) with the JDK's `javac` into OUT_DIR, so that `src/coordinate.rs`
//! can embed the jar in the binary. A machine without a JDK still builds cracin, without the
//! provider (`coordinate::install_provider` then says so); set `CRACIN_REQUIRE_PROVIDER=1` to make
//! that a build error instead (release builds).

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
}
