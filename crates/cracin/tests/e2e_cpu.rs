//! End-to-end test of `--cpu-baseline` with real CRIU on a real JVM: a checkpoint taken with
//! `--cpu-baseline x86-64-v2` must hold a JVM whose CPU flags really are capped (read from the
//! restored process through the attach API, as `jcmd VM.flags` does) and whose environment
//! carries glibc's caps, and it must restore on a host described (through the hidden
//! CRACIN_HOST_CPUINFO) as lacking AVX2, where a `host` checkpoint of the same application is
//! refused, naming the feature. Needs a host with AVX2 (else it prints SKIPPED).

mod common;

use std::time::Duration;

use common::*;

/// This host's /proc/cpuinfo without AVX and everything above x86-64-v2 that HotSpot would use.
fn cpuinfo_without_avx2() -> String {
    let above_v2 = [
        "bmi1",
        "bmi2",
        "fma",
        "f16c",
        "abm",
        "movbe",
        "adx",
        "sha_ni",
        "gfni",
        "vaes",
        "vpclmulqdq",
    ];
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .map(|l| match l.split_once(':') {
            Some((k, v)) if k.trim() == "flags" => {
                let kept: Vec<&str> = v
                    .split_whitespace()
                    .filter(|f| !f.starts_with("avx") && !above_v2.contains(f))
                    .collect();
                format!("{k}: {}", kept.join(" "))
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `-XX:NAME=VALUE` as `VM.flags -all` prints it (`     bool UseSHA   = false   {product} …`).
fn flag(flags: &str, name: &str) -> String {
    flags
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or_else(|| panic!("{name} not in VM.flags -all:\n{flags}"))
        .to_string()
}

#[test]
fn a_v2_checkpoint_is_capped_and_restores_on_a_cpu_without_avx2() {
    require!(can_checkpoint());
    // Without AVX2 there is nothing to cap.
    require!(cpu_has("avx2"));
    let work = tempdir("e2e-cpu");
    let fake = work.join("cpuinfo-no-avx2");
    std::fs::write(&fake, cpuinfo_without_avx2()).unwrap();
    let port = free_port();

    // 1. The capped checkpoint records what it needs: the v2 set, no AVX2.
    let v2 = work.join("v2");
    let out = checkpoint_counter(&v2, port, &["--cpu-baseline", "x86-64-v2"]);
    assert!(out.status.success(), "checkpoint failed: {}", stderr(&out));
    assert_nothing_left(port);
    let m = manifest(&v2);
    assert_eq!(m["cpu"]["baseline"], "x86-64-v2");
    let required: Vec<&str> = m["cpu"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(required.contains(&"sse4_2"), "{required:?}");
    assert!(!required.contains(&"avx2"), "{required:?}");
    // CRIU checks no CPU itself (it would only with --cpu-cap): cracin's check is the one.
    assert!(!v2.join("images/cpuinfo.img").exists());
    assert!(m["java_tool_options"]
        .as_str()
        .unwrap()
        .contains("-XX:UseAVX=0"));

    // 2. It restores on a host described without AVX2 (twice: the check is not one-shot).
    for round in 1..=2 {
        let out = run(cracin().env("CRACIN_HOST_CPUINFO", &fake).args([
            "restore",
            v2.to_str().unwrap(),
            "--json",
        ]));
        assert!(
            out.status.success(),
            "round {round}: v2 restore refused: {}",
            stderr(&out)
        );
        let pid = restored_pid(&out);
        let (st, _) = get(&format!("http://127.0.0.1:{port}/")).expect("restored app answers");
        assert_eq!(st, 200);
        if round == 1 {
            // The checkpointed JVM itself (restored, not restarted) runs with the caps.
            let flags =
                cracin_core::jvm::attach::jcmd(pid, "VM.flags -all", Duration::from_secs(60))
                    .expect("VM.flags through the attach API");
            cracin_core::jvm::attach::remove_socket_file(pid);
            assert_eq!(flag(&flags, "UseAVX"), "0");
            assert_eq!(flag(&flags, "UseSHA"), "false");
            assert_eq!(flag(&flags, "UseAES"), "false");
            assert_eq!(flag(&flags, "UseBMI2Instructions"), "false");
            assert_eq!(flag(&flags, "UseFMA"), "false");
            // glibc's caps were in its environment when it started.
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
            let environ = String::from_utf8_lossy(&environ);
            assert!(
                environ.contains("GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX,-AVX2,"),
                "{environ}"
            );
            assert!(environ.contains("LD_BIND_NOW=1"), "{environ}");
        }
        // Stopped the way users stop it.
        kill_and_wait(pid, libc::SIGTERM);
    }
    assert_nothing_left(port);

    // 3. A `host` checkpoint of the same application is refused there, naming AVX2.
    let host = work.join("host");
    let out = checkpoint_counter(&host, port, &["--cpu-baseline", "host"]);
    assert!(out.status.success(), "checkpoint failed: {}", stderr(&out));
    assert_nothing_left(port);
    let out = run(cracin()
        .env("CRACIN_HOST_CPUINFO", &fake)
        .args(["restore", host.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("lacks features the checkpoint needs"), "{err}");
    assert!(
        err.split_whitespace().any(|w| w == "avx2"),
        "avx2 not named: {err}"
    );
    assert!(err.contains("--cpu-baseline"), "{err}");
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}
