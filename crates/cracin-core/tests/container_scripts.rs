//! The generated CRaC and OpenJ9 scripts run for real, under dash and under busybox sh, as PID 1
//! of a new PID namespace (`unshare --pid --fork --mount-proc`, like a container's entrypoint),
//! with stand-in `java`, `jcmd` and `criu` programs on a PATH that has no curl and no wget. A
//! stand-in is enough here: what is tested is the scripts' control flow (the PID loop, java as a
//! child and never PID 1, the trigger's probe fallbacks, stopping the JVM on failure, the exit
//! status, the fallback of restore.sh); the JDKs themselves cannot be had on this machine.
//! Needs root (unshare), busybox (scripts/setup.sh installs it) and python3 (a stand-in HTTP
//! server); prints SKIPPED otherwise.

mod common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cracin_core::container::files::{generate, FilesSpec};
use cracin_core::container::{Base, Openj9Api, Recipe, Runtime};

use common::*;

const SHELLS: [&str; 2] = ["/usr/bin/dash", "/usr/bin/busybox"];

/// What running the scripts needs: root (unshare), both shells, python3 and unshare.
fn shells_and_namespaces() -> Need {
    root().map_err(|_| Missing::from("not root (unshare --pid)"))?;
    for p in SHELLS
        .iter()
        .chain(["/usr/bin/python3", "/usr/bin/unshare"].iter())
    {
        if !Path::new(p).exists() {
            return Err(format!("{p} missing (scripts/setup.sh installs busybox)").into());
        }
    }
    Ok(())
}

/// What follows runs as PID 1 of a new PID namespace with its own /proc, like a container's
/// entrypoint, and is killed with unshare.
fn unshare() -> Command {
    let mut c = Command::new("/usr/bin/unshare");
    c.args(["--pid", "--fork", "--mount-proc", "--kill-child"]);
    c
}

/// The arguments that run a script with `shell` (busybox is told which applet).
fn shell_argv(shell: &str) -> Vec<&str> {
    if shell.ends_with("busybox") {
        vec![shell, "sh"]
    } else {
        vec![shell]
    }
}

fn script(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The stand-ins. `java`: records its PID (as seen in its namespace) and arguments, then serves
/// HTTP on $STANDIN_PORT (python3) or sleeps; with STANDIN_SELF_CHECKPOINT it writes a checkpoint
/// file and exits (an application that checkpoints itself); with STANDIN_JAVA_EXIT it exits at
/// once with that status. `jcmd PID JDK.checkpoint`: writes a checkpoint file and kills the JVM
/// (a CRaC JVM exits once the checkpoint is written), or fails with STANDIN_JCMD_FAIL. `criu`:
/// fails (restore.sh must fall back).
struct Env {
    shell: &'static str,
    _tmp: tempfile::TempDir,
    work: PathBuf,
    bin: PathBuf,
    ckpt: PathBuf,
    rec: PathBuf,
}

impl Env {
    fn new(shell: &'static str, with_bash: bool) -> Env {
        let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let work = tmp.path().join("app");
        let bin = tmp.path().join("bin");
        let ckpt = tmp.path().join("checkpoint");
        let rec = tmp.path().join("rec");
        for d in [&work, &bin, &ckpt, &rec] {
            std::fs::create_dir_all(d).unwrap();
        }
        // The few tools the scripts use, from coreutils (dash) or busybox's applets; no curl,
        // no wget, bash only when asked.
        for tool in ["seq", "sleep", "cat", "rm", "grep"] {
            let target = if shell.ends_with("busybox") {
                PathBuf::from("/usr/bin/busybox")
            } else {
                cracin_core::os::cmd::which(tool).unwrap()
            };
            symlink(target, bin.join(tool)).unwrap();
        }
        if with_bash {
            symlink("/bin/bash", bin.join("bash")).unwrap();
        }
        script(
            &bin.join("java"),
            &format!(
                "#!/bin/sh\necho $$ >{r}/java.pid\necho \"$@\" >{r}/java.args\n\
                 [ -n \"$STANDIN_JAVA_EXIT\" ] && exit \"$STANDIN_JAVA_EXIT\"\n\
                 if [ -n \"$STANDIN_SELF_CHECKPOINT\" ]; then /bin/sleep 0.5; : >\"$CHECKPOINT_DIR/core-$$.img\"; exit 0; fi\n\
                 [ -n \"$STANDIN_PORT\" ] && exec /usr/bin/python3 -m http.server \"$STANDIN_PORT\" --bind 127.0.0.1 >/dev/null 2>&1\n\
                 exec /bin/sleep 300\n",
                r = rec.display()
            ),
        );
        script(
            &bin.join("jcmd"),
            &format!(
                "#!/bin/sh\necho \"$@\" >>{r}/jcmd.calls\n[ -n \"$STANDIN_JCMD_FAIL\" ] && exit 1\n\
                 [ \"$2\" = JDK.checkpoint ] || exit 2\n: >\"$CHECKPOINT_DIR/core-$1.img\"\nkill -KILL \"$1\"\n",
                r = rec.display()
            ),
        );
        script(
            &bin.join("criu"),
            &format!(
                "#!/bin/sh\necho \"$@\" >>{}/criu.calls\nexit 1\n",
                rec.display()
            ),
        );
        Env {
            shell,
            _tmp: tmp,
            work,
            bin,
            ckpt,
            rec,
        }
    }

    /// The generated `java -jar /app/app.jar` files of `runtime` on `base`, in the application
    /// directory.
    fn files(&self, runtime: Runtime, base: Base, ready: Option<&str>, warmup: &[&str]) {
        let spec = FilesSpec {
            runtime,
            base,
            app_cmd: ["java", "-jar", "/app/app.jar"].map(String::from).to_vec(),
            ready: ready.map(String::from),
            warmup: warmup.iter().map(|s| s.to_string()).collect(),
            port: 8080,
            fallback: true,
            image: None,
            checkpoint_cmd: None,
            cpu_baseline: Default::default(),
            recipe: Recipe {
                openj9_api: Openj9Api::Crac,
                ..Recipe::default()
            },
            user: Default::default(),
        };
        for f in generate(&spec) {
            let p = self.work.join(&f.name);
            std::fs::write(&p, &f.content).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(f.mode)).unwrap();
        }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.rec.join(name)).unwrap_or_default()
    }

    fn java_pid(&self) -> u32 {
        self.read("java.pid")
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("java never ran"))
    }

    /// Runs `SHELL SCRIPT` as PID 1 of a new PID namespace (private /proc and /tmp), like a
    /// container's CMD; returns its output. Kills it after two minutes (a hang).
    fn run(&self, script: &str, env: &[(&str, String)]) -> Output {
        let (shell, limit) = (self.shell, Duration::from_secs(120));
        let mut c = unshare();
        c.args([
            "/bin/sh",
            "-c",
            // A private /tmp for the scripts' pid file. The test's own directory may lie
            // under /tmp (a checkout there): it is bound to /mnt first and bound back into
            // the new tmpfs, so the scripts still see it at the same path.
            "/bin/mount --bind \"$TEST_ROOT\" /mnt && /bin/mount -t tmpfs cracin-test /tmp \
                 && /bin/mkdir -p \"$TEST_ROOT\" && /bin/mount --bind /mnt \"$TEST_ROOT\" \
                 && exec \"$@\"",
            "sh",
        ])
        .args(shell_argv(shell))
        .arg(script)
        .current_dir(&self.work)
        .env_clear()
        .env("PATH", &self.bin)
        .env("TEST_ROOT", self._tmp.path())
        .env("CHECKPOINT_DIR", &self.ckpt)
        .env("JAVA_OPTS_EXTRA", "-XX:CRaCCheckpointTo=/app/checkpoint")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c.spawn().unwrap();
        let pid = child.id();
        let t0 = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        loop {
            if let Ok(out) = rx.recv_timeout(Duration::from_millis(200)) {
                return out.unwrap();
            }
            if t0.elapsed() > limit {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("{script} under {shell} did not end within {limit:?}");
            }
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Nothing of the test's stand-ins runs any more (their namespace's init is gone).
fn nothing_left(port: Option<u16>) {
    if let Some(p) = port {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", p)).is_err(),
            "the stand-in JVM still serves on {p}"
        );
    }
}

#[test]
fn crac_trigger_falls_back_to_a_delay_without_curl_wget_or_bash_and_jvm_is_above_pid_1000() {
    require!(shells_and_namespaces());
    for shell in SHELLS {
        let e = Env::new(shell, false);
        // Liberica on musl: a JDK (jcmd, so cracin triggers) where start.sh burns PIDs.
        e.files(
            Runtime::Crac,
            Base::LibericaJdkMusl,
            Some("http://127.0.0.1:8080/health"),
            &["http://127.0.0.1:8080/api"],
        );
        let out = e.run("./start_jcmd.sh", &[("CRACIN_FIXED_DELAY", "1".into())]);
        let t = text(&out);
        assert!(out.status.success(), "{shell}: {t}");
        let pid = e.java_pid();
        assert!(pid > 1000, "{shell}: java ran as PID {pid}: {t}");
        assert_eq!(
            e.read("jcmd.calls").trim(),
            format!("{pid} JDK.checkpoint"),
            "{t}"
        );
        assert!(t.contains("no curl, wget or bash to probe"), "{t}");
        assert!(t.contains("no tool to send warm-up requests"), "{t}");
        assert!(e.ckpt.join(format!("core-{pid}.img")).exists());
        assert!(e
            .read("java.args")
            .contains("-XX:CRaCCheckpointTo=/app/checkpoint -jar /app/app.jar"));
    }
}

#[test]
fn crac_trigger_probes_with_bash_dev_tcp_and_jvm_is_never_pid_1() {
    require!(shells_and_namespaces());
    for shell in SHELLS {
        let e = Env::new(shell, true);
        let port = free_port();
        // Zulu on Ubuntu: -XX:CRaCMinPid moves PIDs (in the JVM), no loop; java is still a child.
        e.files(
            Runtime::Crac,
            Base::ZuluUbuntuJdk,
            Some(&format!("http://127.0.0.1:{port}/")),
            &[],
        );
        assert!(!std::fs::read_to_string(e.work.join("start.sh"))
            .unwrap()
            .contains("seq"));
        let out = e.run(
            "./start_jcmd.sh",
            &[
                ("STANDIN_PORT", port.to_string()),
                // a wrong fallback would wait this long and fail run's two-minute limit
                ("CRACIN_FIXED_DELAY", "300".into()),
            ],
        );
        let t = text(&out);
        assert!(out.status.success(), "{shell}: {t}");
        let pid = e.java_pid();
        assert!(pid > 1, "{shell}: java was PID 1");
        assert_eq!(
            e.read("jcmd.calls").trim(),
            format!("{pid} JDK.checkpoint"),
            "{t}"
        );
        assert!(
            !t.contains("waiting"),
            "{shell}: fell back to the delay: {t}"
        );
        nothing_left(Some(port));
    }
}

#[test]
fn crac_trigger_stops_the_jvm_when_it_fails() {
    require!(shells_and_namespaces());
    for shell in SHELLS {
        // jcmd fails: the JVM is stopped, the container ends with a failure.
        let e = Env::new(shell, true);
        let port = free_port();
        e.files(
            Runtime::Crac,
            Base::LibericaJdk,
            Some(&format!("http://127.0.0.1:{port}/")),
            &[],
        );
        let out = e.run(
            "./start_jcmd.sh",
            &[
                ("STANDIN_PORT", port.to_string()),
                ("STANDIN_JCMD_FAIL", "1".into()),
            ],
        );
        let t = text(&out);
        assert!(!out.status.success(), "{shell}: {t}");
        assert!(t.contains("JDK.checkpoint failed; stopping the JVM"), "{t}");
        assert!(t.contains("without writing a checkpoint"), "{t}");
        nothing_left(Some(port));

        // Readiness never comes (nothing listens): the trigger gives up and stops the JVM.
        let e = Env::new(shell, true);
        let port = free_port();
        e.files(
            Runtime::Crac,
            Base::LibericaJdk,
            Some(&format!("http://127.0.0.1:{port}/")),
            &[],
        );
        let out = e.run("./start_jcmd.sh", &[("CRACIN_READY_ATTEMPTS", "20".into())]);
        let t = text(&out);
        assert!(!out.status.success(), "{shell}: {t}");
        assert!(t.contains("never answered; stopping the JVM"), "{t}");
        assert_eq!(e.read("jcmd.calls"), "", "no checkpoint of an unready JVM");

        // The JVM dies at once: start.sh reports its status, the trigger does not hang.
        let e = Env::new(shell, false);
        e.files(
            Runtime::Crac,
            Base::LibericaJdk,
            Some("http://127.0.0.1:8080/"),
            &[],
        );
        let out = e.run(
            "./start_jcmd.sh",
            &[
                ("STANDIN_JAVA_EXIT", "3".into()),
                ("CRACIN_FIXED_DELAY", "1".into()),
            ],
        );
        assert_eq!(out.status.code(), Some(3), "{shell}: {}", text(&out));
    }
}

#[test]
fn openj9_start_runs_java_as_a_child_above_pid_1000_with_stdio_in_files() {
    require!(shells_and_namespaces());
    for shell in SHELLS {
        let e = Env::new(shell, false);
        e.files(Runtime::Openj9, Base::SemeruUbiJre, None, &[]);
        let start = std::fs::read_to_string(e.work.join("start.sh")).unwrap();
        assert!(!start.contains("exec java"), "{start}");
        let out = e.run("./start.sh", &[("STANDIN_SELF_CHECKPOINT", "1".into())]);
        let t = text(&out);
        assert!(out.status.success(), "{shell}: {t}");
        let pid = e.java_pid();
        assert!(pid > 1000, "{shell}: java ran as PID {pid}");
        assert!(e.ckpt.join("stdout").exists() && e.ckpt.join("stderr").exists());
        // No checkpoint (the application never called checkpointRestore): a failure, even
        // though java exited 0.
        let e = Env::new(shell, false);
        e.files(Runtime::Openj9, Base::SemeruUbiJre, None, &[]);
        let out = e.run("./start.sh", &[("STANDIN_JAVA_EXIT", "0".into())]);
        assert_eq!(out.status.code(), Some(1), "{shell}: {}", text(&out));
    }
}

#[test]
fn start_sh_passes_sigterm_to_the_jvm() {
    require!(shells_and_namespaces());
    for shell in SHELLS {
        let e = Env::new(shell, false);
        e.files(Runtime::Crac, Base::ZuluAlpineJre, None, &[]);
        let mut child = unshare()
            .args(shell_argv(shell))
            .arg("./start.sh")
            .current_dir(&e.work)
            .env_clear()
            .env("PATH", &e.bin)
            .env("CHECKPOINT_DIR", &e.ckpt)
            .env("CRACIN_JVM_PIDFILE", e.rec.join("jvm.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while !e.rec.join("java.pid").exists() {
            assert!(t0.elapsed() < Duration::from_secs(60), "java never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The namespace's PID 1 is unshare's child: SIGTERM to it, as `podman stop` does.
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
        let init = children.split_whitespace().next().unwrap().to_string();
        Command::new("kill")
            .args(["-TERM", &init])
            .status()
            .unwrap();
        let t0 = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                // java died of SIGTERM (143); no checkpoint: start.sh fails with that status.
                assert_eq!(st.code(), Some(143), "{shell}");
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{shell}: SIGTERM did not stop start.sh"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn openj9_restore_sh_falls_back_to_a_cold_start_with_the_marker() {
    require!(shells_and_namespaces());
    for shell in SHELLS {
        let e = Env::new(shell, false);
        e.files(Runtime::Openj9, Base::SemeruUbiJre, None, &[]);
        let out = e.run("./restore.sh", &[("STANDIN_JAVA_EXIT", "0".into())]);
        let t = text(&out);
        assert!(out.status.success(), "{shell}: {t}");
        assert!(e
            .read("criu.calls")
            .starts_with("restore --unprivileged -D /app/checkpoint"));
        assert!(t.contains(cracin_core::container::FALLBACK_MARKER), "{t}");
        // The cold start runs without the checkpoint options.
        assert_eq!(e.read("java.args").trim(), "-jar /app/app.jar");
    }
}

#[test]
fn crac_restored_check_tells_a_restore_from_a_cold_start() {
    require!(shells_and_namespaces());
    let check = cracin_core::container::runtime::crac::restored_check();
    for shell in SHELLS {
        let ns = |script: &str| {
            unshare()
                .args(shell_argv(shell))
                .args(["-c", script])
                .output()
                .unwrap()
        };
        // A cold start: the JVM is PID 1, nothing reaches PID 1000.
        let cold = ns(&format!("/bin/sleep 30 & {check}"));
        assert!(!cold.status.success(), "{shell}: {}", text(&cold));
        assert!(text(&cold).contains(cracin_core::container::FALLBACK_MARKER));
        // A restore: the JVM keeps its checkpoint-time PID above 1000.
        let restored = ns(&format!(
            "i=0; while [ $i -lt 1000 ]; do /bin/true; i=$((i + 1)); done; /bin/sleep 30 & {check}"
        ));
        assert!(restored.status.success(), "{shell}: {}", text(&restored));
    }
}
