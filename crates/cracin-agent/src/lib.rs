//! cracin's JVMTI agent, loaded into the application's JVM with `-agentpath` so that every
//! restored instance of a checkpoint is its own individual. It does three things:
//!
//! 1. At class load it marks, in the object itself, the generators whose seed the JDK chose:
//!    `java.util.Random` gets a field set only by its no-argument constructor, and SHA1PRNG
//!    records whether `setSeed` came before its first use (see `classfile.rs`). No per-call cost.
//! 2. Before the dump (cracin sends [`CMD_HOLD`]) it suspends every Java thread but its own and
//!    finds, with one heap walk, the generators to renew; CRIU then dumps a JVM in which no
//!    application code runs.
//! 3. After each restore (cracin sends [`CMD_RENEW`] or [`CMD_CONFIG`]) it writes fresh random
//!    state into those generators and the JDK's seed sources, applies the restore-time
//!    environment and system properties, and only then resumes the threads: the first request a
//!    restored instance serves already sees fresh state.
//!
//! cracin talks to the agent's own thread (named `cracin-agent`) with a queued real-time signal
//! whose value carries the command and a request id; the agent answers with files in the control
//! directory (its `-agentpath` option), written whole and renamed: `agent-<PID>-held-<ID>` and
//! `agent-<PID>-done-<ID>`, first line `ok` or `error: ...`. The restore-time configuration comes
//! in `agent-config-<ID>`: NUL-separated triples `E|P`, key, value.

pub mod classfile;
mod ffi;
mod renew;

use std::ffi::{c_char, c_void, CStr};
use std::path::PathBuf;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::OnceLock;

use ffi::*;

mod protocol;
pub use protocol::*;

static CONTROL: OnceLock<PathBuf> = OnceLock::new();
static JVMTI: AtomicPtr<*const *const c_void> = AtomicPtr::new(ptr::null_mut());
/// Bit 1: java.util.Random was marked; bit 2: SHA1PRNG was.
static PATCHED: AtomicU32 = AtomicU32::new(0);
pub(crate) const PATCHED_RANDOM: u32 = 1;
pub(crate) const PATCHED_SHA1: u32 = 2;

/// The field `Random()` sets: the generator's seed was chosen by the JDK.
pub(crate) const RANDOM_MARK: &str = "cracin$jdkSeeded";
/// SHA1PRNG: 1 once `engineNextBytes` ran.
pub(crate) const SHA1_USED: &str = "cracin$used";
/// SHA1PRNG: 1 when `engineSetSeed` ran before the first `engineNextBytes`.
pub(crate) const SHA1_EXPLICIT: &str = "cracin$explicit";

/// # Safety
/// Called by the JVM with a valid `JavaVM*` at start-up.
#[no_mangle]
pub unsafe extern "C" fn Agent_OnLoad(
    vm: JavaVM,
    options: *const c_char,
    _reserved: *mut c_void,
) -> jint {
    let ctl = if options.is_null() {
        String::new()
    } else {
        CStr::from_ptr(options).to_string_lossy().into_owned()
    };
    if ctl.is_empty() {
        eprintln!("cracin agent: no control directory given (-agentpath:LIB=DIR)");
        return 1;
    }
    let _ = CONTROL.set(PathBuf::from(ctl));
    let Some(env) = get_env(vm, JVMTI_VERSION_1_2) else {
        eprintln!("cracin agent: this JVM offers no JVMTI 1.2");
        return 1;
    };
    JVMTI.store(env, Ordering::SeqCst);
    // can_tag_objects (bit 0), can_suspend (bit 20), can_generate_all_class_hook_events (26).
    let caps: [u32; 4] = [1 | (1 << 20) | (1 << 26), 0, 0, 0];
    let e = jvmti::AddCapabilities(env, &caps);
    if e != 0 {
        eprintln!("cracin agent: JVMTI capabilities refused (error {e})");
        return 1;
    }
    let mut callbacks: [*const c_void; 40] = [ptr::null(); 40];
    callbacks[0] = vm_init as *const c_void;
    callbacks[4] = class_file_load_hook as *const c_void;
    if jvmti::SetEventCallbacks(env, callbacks.as_ptr() as *const c_void, (35 * 8) as jint) != 0
        || jvmti::SetEventNotificationMode(env, JVMTI_ENABLE, JVMTI_EVENT_VM_INIT, ptr::null_mut())
            != 0
        || jvmti::SetEventNotificationMode(
            env,
            JVMTI_ENABLE,
            JVMTI_EVENT_CLASS_FILE_LOAD_HOOK,
            ptr::null_mut(),
        ) != 0
    {
        eprintln!("cracin agent: JVMTI events refused");
        return 1;
    }
    0
}

unsafe extern "C" fn class_file_load_hook(
    jvmti_env: Env,
    _jni: Env,
    redefined: jclass,
    loader: jobject,
    name: *const c_char,
    _pd: jobject,
    len: jint,
    data: *const u8,
    new_len: *mut jint,
    new_data: *mut *mut u8,
) {
    // Only the boot loader's classes at their first load.
    if name.is_null() || !redefined.is_null() || !loader.is_null() || data.is_null() {
        return;
    }
    let name = CStr::from_ptr(name).to_bytes();
    let (bit, patched) = match name {
        b"java/util/Random" => (
            PATCHED_RANDOM,
            renew::patch_random(std::slice::from_raw_parts(data, len as usize)),
        ),
        b"sun/security/provider/SecureRandom" => (
            PATCHED_SHA1,
            renew::patch_sha1prng(std::slice::from_raw_parts(data, len as usize)),
        ),
        _ => return,
    };
    let Some(bytes) = patched else {
        eprintln!(
            "cracin agent: {} is not as expected; its generators will not be renewed",
            String::from_utf8_lossy(name)
        );
        return;
    };
    let mut mem: *mut u8 = ptr::null_mut();
    if jvmti::Allocate(jvmti_env, bytes.len() as jlong, &mut mem) != 0 || mem.is_null() {
        return;
    }
    ptr::copy_nonoverlapping(bytes.as_ptr(), mem, bytes.len());
    *new_len = bytes.len() as jint;
    *new_data = mem;
    let all = PATCHED.fetch_or(bit, Ordering::SeqCst) | bit;
    if all == PATCHED_RANDOM | PATCHED_SHA1 {
        // Nothing else to look at: class loading goes back to full speed.
        jvmti::SetEventNotificationMode(
            jvmti_env,
            JVMTI_DISABLE,
            JVMTI_EVENT_CLASS_FILE_LOAD_HOOK,
            ptr::null_mut(),
        );
    }
}

unsafe extern "C" fn vm_init(jvmti_env: Env, jni_env: Env, _thread: jthread) {
    let start = || -> Option<()> {
        let cls = jni::FindClass(jni_env, cs("java/lang/Thread").as_ptr());
        if cls.is_null() {
            return None;
        }
        let init = jni::GetMethodID(
            jni_env,
            cls,
            cs("<init>").as_ptr(),
            cs("(Ljava/lang/String;)V").as_ptr(),
        );
        // The Java name differs from THREAD_NAME: cracin must not find the thread (and signal
        // it) before it has blocked the signal and renamed itself.
        let name = jni::NewStringUTF(jni_env, cs("cracin agent").as_ptr());
        if init.is_null() || name.is_null() {
            return None;
        }
        let args = [jvalue { l: name }];
        let t = jni::NewObjectA(jni_env, cls, init, args.as_ptr());
        if t.is_null() {
            return None;
        }
        (jvmti::RunAgentThread(
            jvmti_env,
            t,
            agent_main,
            ptr::null(),
            JVMTI_THREAD_MAX_PRIORITY,
        ) == 0)
            .then_some(())
    };
    if start().is_none() {
        if jni::ExceptionCheck(jni_env) != 0 {
            jni::ExceptionClear(jni_env);
        }
        eprintln!("cracin agent: could not start its thread; restores will not be renewed");
    }
}

unsafe extern "C" fn agent_main(jvmti_env: Env, jni_env: Env, _arg: *mut c_void) {
    let mut set = SigSet([0; 16]);
    sigemptyset(&mut set);
    sigaddset(&mut set, SIGNAL);
    pthread_sigmask(SIG_BLOCK, &set, ptr::null_mut());
    let name = cs(THREAD_NAME);
    prctl(PR_SET_NAME, name.as_ptr() as u64, 0, 0, 0);
    let mut held: Option<renew::Held> = None;
    loop {
        let mut info = SigInfo([0; 128]);
        if sigwaitinfo(&set, &mut info) != SIGNAL {
            continue; // EINTR, e.g. when CRIU dumped or restored us
        }
        let value = info.value();
        let (cmd, id) = (value & 0xff, value >> 8);
        let t0 = now_ms();
        match cmd {
            CMD_HOLD => {
                if let Some(h) = held.take() {
                    h.release(jvmti_env, jni_env);
                }
                match renew::Held::hold(jvmti_env, jni_env) {
                    Ok(h) => {
                        let text = format!(
                            "ok\nthreads={}\ngenerators={}\nms={:.3}\n",
                            h.thread_count(),
                            h.generator_count(),
                            now_ms() - t0
                        );
                        held = Some(h);
                        answer("held", id, &text);
                    }
                    Err(e) => answer("held", id, &format!("error: {e}\n")),
                }
            }
            CMD_RENEW | CMD_CONFIG | CMD_RELEASE => {
                let Some(h) = held.take() else {
                    answer("done", id, "error: the threads were not held\n");
                    continue;
                };
                let mut report = String::new();
                if cmd != CMD_RELEASE {
                    if cmd == CMD_RENEW {
                        report.push_str(&h.renew(jni_env));
                    }
                    report.push_str(&renew::apply_config(jni_env, &h, &config(id)));
                }
                h.release(jvmti_env, jni_env);
                answer(
                    "done",
                    id,
                    &format!("ok\n{report}ms={:.3}\n", now_ms() - t0),
                );
            }
            _ => {}
        }
    }
}

/// The restore-time configuration cracin left for request `id` (none when there is no file).
fn config(id: u64) -> Vec<(bool, String, String)> {
    let Some(dir) = CONTROL.get() else {
        return Vec::new();
    };
    let Ok(bytes) = std::fs::read(dir.join(format!("agent-config-{id}"))) else {
        return Vec::new();
    };
    parse_config(&bytes)
}

/// `E\0KEY\0VALUE\0P\0KEY\0VALUE\0...`: (is_env, key, value).
pub fn parse_config(bytes: &[u8]) -> Vec<(bool, String, String)> {
    let parts: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    parts
        .chunks(3)
        .filter(|c| c.len() == 3 && (c[0] == "E" || c[0] == "P") && !c[1].is_empty())
        .map(|c| (c[0] == "E", c[1].clone(), c[2].clone()))
        .collect()
}

fn answer(what: &str, id: u64, text: &str) {
    let Some(dir) = CONTROL.get() else { return };
    let pid = unsafe { getpid() };
    let name = format!("agent-{pid}-{what}-{id}");
    let tmp = dir.join(format!("{name}.tmp"));
    // Closed before the rename: CRIU must not find the file open in the dumped JVM.
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join(&name));
    }
}

fn now_ms() -> f64 {
    let mut ts = [0i64; 2];
    unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) };
    ts[0] as f64 * 1000.0 + ts[1] as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_triples() {
        let c = parse_config(b"E\0A\0x=1\0P\0p.q\0\0E\0\0ignored\0X\0k\0v\0");
        assert_eq!(
            c,
            vec![
                (true, "A".into(), "x=1".into()),
                (false, "p.q".into(), "".into())
            ]
        );
        assert!(parse_config(b"").is_empty());
    }
}
