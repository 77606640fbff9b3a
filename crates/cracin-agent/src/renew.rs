//! What the agent renews and how: finding the JDK-seeded generators while the threads are held
//! (before the dump) and writing fresh state into them after each restore, through JNI field
//! access (which ignores module encapsulation, so nothing has to be opened to the application).
//!
//! Renewed: `java.util.Random` instances made by `Random()` (so `Math.random()`'s, and those of
//! subclasses that call it), each thread's `ThreadLocalRandom` seeds and the class's seed and
//! probe generators, `SplittableRandom`'s default generator, `Random`'s seed uniquifier, every
//! SHA1PRNG that seeded itself, SHA1PRNG's internal seeder, every DRBG (re-instantiated from
//! fresh entropy at its next use) and NativePRNG's mixing generator and buffered bytes. Kept:
//! `new Random(seed)` and SHA1PRNGs given `setSeed` before their first use.

use std::ffi::c_void;
use std::ptr;

use crate::classfile::{patch, FieldDef, Op, Prologue};
use crate::ffi::*;
use crate::{RANDOM_MARK, SHA1_EXPLICIT, SHA1_USED};

const ALOAD_0: u8 = 0x2a;
const DUP: u8 = 0x59;
const ICONST_1: u8 = 0x04;
const IXOR: u8 = 0x82;
const IOR: u8 = 0x80;
const GETFIELD: u8 = 0xb4;
const PUTFIELD: u8 = 0xb5;

/// `java.util.Random`: `Random()` starts with `this.cracin$jdkSeeded = true`.
pub fn patch_random(class: &[u8]) -> Option<Vec<u8>> {
    let ops = [
        Op::B(ALOAD_0),
        Op::B(ICONST_1),
        Op::B(PUTFIELD),
        Op::Field(0),
    ];
    patch(
        class,
        &[FieldDef {
            name: RANDOM_MARK,
            desc: "Z",
        }],
        &[Prologue {
            name: "<init>",
            desc: "()V",
            ops: &ops,
            max_stack: 2,
        }],
    )
}

/// SHA1PRNG: `engineNextBytes` starts with `used = 1`; `engineSetSeed` with
/// `explicit |= used ^ 1` (no branch, so no stack map frame is needed).
pub fn patch_sha1prng(class: &[u8]) -> Option<Vec<u8>> {
    let used = [
        Op::B(ALOAD_0),
        Op::B(ICONST_1),
        Op::B(PUTFIELD),
        Op::Field(0),
    ];
    let set = [
        Op::B(ALOAD_0),
        Op::B(DUP),
        Op::B(GETFIELD),
        Op::Field(1),
        Op::B(ALOAD_0),
        Op::B(GETFIELD),
        Op::Field(0),
        Op::B(ICONST_1),
        Op::B(IXOR),
        Op::B(IOR),
        Op::B(PUTFIELD),
        Op::Field(1),
    ];
    patch(
        class,
        &[
            FieldDef {
                name: SHA1_USED,
                desc: "I",
            },
            FieldDef {
                name: SHA1_EXPLICIT,
                desc: "I",
            },
        ],
        &[
            Prologue {
                name: "engineNextBytes",
                desc: "([B)V",
                ops: &used,
                max_stack: 2,
            },
            Prologue {
                name: "engineSetSeed",
                desc: "([B)V",
                ops: &set,
                max_stack: 4,
            },
        ],
    )
}

const TAG_RANDOM: jlong = 1;
const TAG_SHA1: jlong = 2;
const TAG_DRBG: jlong = 3;
const TAG_NATIVE_IO: jlong = 4;
const MASK48: i64 = (1 << 48) - 1;

/// Field and method ids, resolved before the threads are suspended.
#[derive(Default)]
struct Ids {
    random_seed: Option<jfieldID>,
    random_gauss: Option<jfieldID>,
    random_mark: Option<jfieldID>,
    long_value: Option<jfieldID>,
    int_value: Option<jfieldID>,
    sha1_state: Option<jfieldID>,
    sha1_remainder: Option<jfieldID>,
    sha1_rem_count: Option<jfieldID>,
    sha1_explicit: Option<jfieldID>,
    drbg_instantiated: Option<jfieldID>,
    io_buffered: Option<jfieldID>,
    io_last_read: Option<jfieldID>,
    io_mix: Option<jfieldID>,
    t_seed: Option<jfieldID>,
    t_probe: Option<jfieldID>,
    t_secondary: Option<jfieldID>,
    // Restore-time configuration.
    variable: jclass,
    variable_of: Option<jmethodID>,
    value: jclass,
    value_of: Option<jmethodID>,
    the_env: jobject,
    map_put: Option<jmethodID>,
    system: jclass,
    system_props: Option<jfieldID>,
    props_map: Option<jfieldID>,
    chm_put: Option<jmethodID>,
}

/// The held JVM: suspended threads and the generators to renew (all JNI global references).
pub struct Held {
    suspended: Vec<jobject>,
    threads: Vec<jobject>,
    randoms: Vec<jobject>,
    sha1: Vec<jobject>,
    drbgs: Vec<jobject>,
    native_io: Vec<jobject>,
    longs: Vec<jobject>,
    ints: Vec<jobject>,
    ids: Ids,
}

unsafe fn clear(jni: Env) -> bool {
    if jni::ExceptionCheck(jni) != 0 {
        jni::ExceptionClear(jni);
        return true;
    }
    false
}

unsafe fn field(jni: Env, c: jclass, name: &str, sig: &str) -> Option<jfieldID> {
    if c.is_null() {
        return None;
    }
    let f = jni::GetFieldID(jni, c, cs(name).as_ptr(), cs(sig).as_ptr());
    if clear(jni) || f.is_null() {
        None
    } else {
        Some(f)
    }
}

unsafe fn static_object(jni: Env, c: jclass, name: &str, sig: &str) -> jobject {
    if c.is_null() {
        return ptr::null_mut();
    }
    let f = jni::GetStaticFieldID(jni, c, cs(name).as_ptr(), cs(sig).as_ptr());
    if clear(jni) || f.is_null() {
        return ptr::null_mut();
    }
    jni::GetStaticObjectField(jni, c, f)
}

unsafe fn method(jni: Env, c: jclass, name: &str, sig: &str, is_static: bool) -> Option<jmethodID> {
    if c.is_null() {
        return None;
    }
    let m = if is_static {
        jni::GetStaticMethodID(jni, c, cs(name).as_ptr(), cs(sig).as_ptr())
    } else {
        jni::GetMethodID(jni, c, cs(name).as_ptr(), cs(sig).as_ptr())
    };
    if clear(jni) || m.is_null() {
        None
    } else {
        Some(m)
    }
}

unsafe fn global(jni: Env, o: jobject) -> jobject {
    if o.is_null() {
        o
    } else {
        jni::NewGlobalRef(jni, o)
    }
}

unsafe extern "C" fn tag_instances(
    class_tag: jlong,
    _size: jlong,
    tag: *mut jlong,
    _len: jint,
    _user: *mut c_void,
) -> jint {
    if (TAG_RANDOM..=TAG_NATIVE_IO).contains(&class_tag) {
        *tag = class_tag;
    }
    0
}

impl Held {
    /// Suspends every Java thread but the caller and finds the generators to renew.
    ///
    /// # Safety
    /// `jvmti` and `jni` are the agent thread's environments.
    pub unsafe fn hold(jvmti: Env, jni: Env) -> Result<Held, String> {
        jni::PushLocalFrame(jni, 256);
        let r = Self::hold_in_frame(jvmti, jni);
        jni::PopLocalFrame(jni, ptr::null_mut());
        r
    }

    unsafe fn hold_in_frame(jvmti: Env, jni: Env) -> Result<Held, String> {
        // Loaded classes by signature; nothing is loaded or initialized here that the
        // application did not load, except what restore-time configuration needs.
        let mut n: jint = 0;
        let mut classes: *mut jclass = ptr::null_mut();
        if jvmti::GetLoadedClasses(jvmti, &mut n, &mut classes) != 0 {
            return Err("GetLoadedClasses failed".into());
        }
        let classes_v: Vec<jclass> = std::slice::from_raw_parts(classes, n as usize).to_vec();
        jvmti::Deallocate(jvmti, classes as *mut u8);
        let mut by_sig = std::collections::HashMap::new();
        for &c in &classes_v {
            let mut sig: *mut std::ffi::c_char = ptr::null_mut();
            if jvmti::GetClassSignature(jvmti, c, &mut sig, ptr::null_mut()) == 0 && !sig.is_null()
            {
                let s = std::ffi::CStr::from_ptr(sig).to_string_lossy().into_owned();
                jvmti::Deallocate(jvmti, sig as *mut u8);
                by_sig.insert(s, c);
            }
        }
        let find = |s: &str| by_sig.get(s).copied().unwrap_or(ptr::null_mut());
        let initialized = |c: jclass| {
            let mut st: jint = 0;
            !c.is_null()
                && jvmti::GetClassStatus(jvmti, c, &mut st) == 0
                && st & JVMTI_CLASS_STATUS_INITIALIZED != 0
        };
        let random = find("Ljava/util/Random;");
        let sha1 = find("Lsun/security/provider/SecureRandom;");
        let drbg = find("Lsun/security/provider/AbstractDrbg;");
        let native_io = find("Lsun/security/provider/NativePRNG$RandomIO;");
        let thread = find("Ljava/lang/Thread;");
        let along = find("Ljava/util/concurrent/atomic/AtomicLong;");
        let aint = find("Ljava/util/concurrent/atomic/AtomicInteger;");
        let mut ids = Ids {
            random_seed: field(
                jni,
                random,
                "seed",
                "Ljava/util/concurrent/atomic/AtomicLong;",
            ),
            random_gauss: field(jni, random, "haveNextNextGaussian", "Z"),
            random_mark: field(jni, random, RANDOM_MARK, "Z"),
            long_value: field(jni, along, "value", "J"),
            int_value: field(jni, aint, "value", "I"),
            sha1_state: field(jni, sha1, "state", "[B"),
            sha1_remainder: field(jni, sha1, "remainder", "[B"),
            sha1_rem_count: field(jni, sha1, "remCount", "I"),
            sha1_explicit: field(jni, sha1, SHA1_EXPLICIT, "I"),
            drbg_instantiated: field(jni, drbg, "instantiated", "Z"),
            io_buffered: field(jni, native_io, "buffered", "I"),
            io_last_read: field(jni, native_io, "lastRead", "J"),
            io_mix: field(
                jni,
                native_io,
                "mixRandom",
                "Lsun/security/provider/SecureRandom;",
            ),
            t_seed: field(jni, thread, "threadLocalRandomSeed", "J"),
            t_probe: field(jni, thread, "threadLocalRandomProbe", "I"),
            t_secondary: field(jni, thread, "threadLocalRandomSecondarySeed", "I"),
            ..Ids::default()
        };
        Self::resolve_config(jni, &mut ids);

        // The JDK's own seed sources (only in classes already initialized).
        let mut longs = Vec::new();
        let mut ints = Vec::new();
        let mut sha1s = Vec::new();
        let al = "Ljava/util/concurrent/atomic/AtomicLong;";
        for (cls, name, sig) in [
            ("Ljava/util/Random;", "seedUniquifier", al),
            ("Ljava/util/concurrent/ThreadLocalRandom;", "seeder", al),
            ("Ljava/util/SplittableRandom;", "defaultGen", al),
            (
                "Ljava/util/concurrent/ThreadLocalRandom;",
                "probeGenerator",
                "Ljava/util/concurrent/atomic/AtomicInteger;",
            ),
            (
                "Lsun/security/provider/SecureRandom$SeederHolder;",
                "seeder",
                "Lsun/security/provider/SecureRandom;",
            ),
        ] {
            let c = find(cls);
            if !initialized(c) {
                continue;
            }
            let o = static_object(jni, c, name, sig);
            if o.is_null() {
                continue;
            }
            let g = global(jni, o);
            match name {
                "probeGenerator" => ints.push(g),
                "seeder" if cls.contains("SeederHolder") => sha1s.push(g),
                _ => longs.push(g),
            }
        }

        // Hold every Java thread but this one.
        let mut count: jint = 0;
        let mut all: *mut jthread = ptr::null_mut();
        if jvmti::GetAllThreads(jvmti, &mut count, &mut all) != 0 {
            return Err("GetAllThreads failed".into());
        }
        let all_v: Vec<jthread> = std::slice::from_raw_parts(all, count as usize).to_vec();
        jvmti::Deallocate(jvmti, all as *mut u8);
        let mut me: jthread = ptr::null_mut();
        jvmti::GetCurrentThread(jvmti, &mut me);
        let others: Vec<jthread> = all_v
            .iter()
            .copied()
            .filter(|t| jni::IsSameObject(jni, *t, me) == 0)
            .map(|t| global(jni, t))
            .collect();
        let mut results = vec![0u32; others.len()];
        if !others.is_empty()
            && jvmti::SuspendThreadList(
                jvmti,
                others.len() as jint,
                others.as_ptr(),
                results.as_mut_ptr(),
            ) != 0
        {
            return Err("SuspendThreadList failed".into());
        }
        let suspended: Vec<jobject> = others
            .iter()
            .zip(&results)
            .filter(|(_, e)| **e == 0)
            .map(|(t, _)| *t)
            .collect();

        // One heap walk tags the instances of the generator classes.
        let mut tagged = Vec::new();
        for &c in &classes_v {
            let tag = if !random.is_null() && jni::IsAssignableFrom(jni, c, random) != 0 {
                TAG_RANDOM
            } else if !sha1.is_null() && jni::IsSameObject(jni, c, sha1) != 0 {
                TAG_SHA1
            } else if !drbg.is_null() && jni::IsAssignableFrom(jni, c, drbg) != 0 {
                TAG_DRBG
            } else if !native_io.is_null() && jni::IsSameObject(jni, c, native_io) != 0 {
                TAG_NATIVE_IO
            } else {
                continue;
            };
            if jvmti::SetTag(jvmti, c, tag) == 0 {
                tagged.push(c);
            }
        }
        let callbacks = HeapCallbacks {
            heap_iteration: Some(tag_instances),
            rest: [ptr::null(); 14],
        };
        let mut held = Held {
            suspended,
            threads: others,
            randoms: Vec::new(),
            sha1: sha1s,
            drbgs: Vec::new(),
            native_io: Vec::new(),
            longs,
            ints,
            ids,
        };
        let walked = jvmti::IterateThroughHeap(jvmti, 0, ptr::null_mut(), &callbacks, ptr::null());
        for c in tagged {
            jvmti::SetTag(jvmti, c, 0);
        }
        if walked != 0 {
            held.release(jvmti, jni);
            return Err(format!("IterateThroughHeap failed (JVMTI error {walked})"));
        }
        let wanted = [TAG_RANDOM, TAG_SHA1, TAG_DRBG, TAG_NATIVE_IO];
        let mut found: jint = 0;
        let mut objs: *mut jobject = ptr::null_mut();
        let mut tags: *mut jlong = ptr::null_mut();
        if jvmti::GetObjectsWithTags(jvmti, 4, wanted.as_ptr(), &mut found, &mut objs, &mut tags)
            != 0
        {
            held.release(jvmti, jni);
            return Err("GetObjectsWithTags failed".into());
        }
        let objs_v = std::slice::from_raw_parts(objs, found as usize).to_vec();
        let tags_v = std::slice::from_raw_parts(tags, found as usize).to_vec();
        jvmti::Deallocate(jvmti, objs as *mut u8);
        jvmti::Deallocate(jvmti, tags as *mut u8);
        let ids = &held.ids;
        let mut randoms = Vec::new();
        let mut drbgs = Vec::new();
        let mut ios = Vec::new();
        let mut sha1_more = Vec::new();
        for (o, t) in objs_v.into_iter().zip(tags_v) {
            jvmti::SetTag(jvmti, o, 0);
            match t {
                TAG_RANDOM => {
                    if let Some(m) = ids.random_mark {
                        if jni::GetBooleanField(jni, o, m) != 0 {
                            randoms.push(global(jni, o));
                        }
                    }
                }
                TAG_SHA1 => {
                    let (Some(ex), Some(st)) = (ids.sha1_explicit, ids.sha1_state) else {
                        continue;
                    };
                    let state = jni::GetObjectField(jni, o, st);
                    if jni::GetIntField(jni, o, ex) == 0 && !state.is_null() {
                        sha1_more.push(global(jni, o));
                    }
                    jni::DeleteLocalRef(jni, state);
                }
                TAG_DRBG => drbgs.push(global(jni, o)),
                TAG_NATIVE_IO => {
                    if let Some(mf) = ids.io_mix {
                        let mix = jni::GetObjectField(jni, o, mf);
                        if !mix.is_null() {
                            sha1_more.push(global(jni, mix));
                            jni::DeleteLocalRef(jni, mix);
                        }
                    }
                    ios.push(global(jni, o));
                }
                _ => {}
            }
            jni::DeleteLocalRef(jni, o);
        }
        held.randoms = randoms;
        held.drbgs = drbgs;
        held.native_io = ios;
        held.sha1.extend(sha1_more);
        Ok(held)
    }

    /// Classes and ids for `apply_config`. `ProcessEnvironment` is initialized now if the
    /// application never read its environment: it copies the process environment once, and
    /// after a restore that copy must be the one cracin updates.
    unsafe fn resolve_config(jni: Env, ids: &mut Ids) {
        let pe = jni::FindClass(jni, cs("java/lang/ProcessEnvironment").as_ptr());
        clear(jni);
        let the_env = static_object(jni, pe, "theEnvironment", "Ljava/util/HashMap;");
        ids.the_env = global(jni, the_env);
        let var = jni::FindClass(jni, cs("java/lang/ProcessEnvironment$Variable").as_ptr());
        clear(jni);
        let val = jni::FindClass(jni, cs("java/lang/ProcessEnvironment$Value").as_ptr());
        clear(jni);
        ids.variable = global(jni, var);
        ids.value = global(jni, val);
        ids.variable_of = method(
            jni,
            var,
            "valueOf",
            "(Ljava/lang/String;)Ljava/lang/ProcessEnvironment$Variable;",
            true,
        );
        ids.value_of = method(
            jni,
            val,
            "valueOf",
            "(Ljava/lang/String;)Ljava/lang/ProcessEnvironment$Value;",
            true,
        );
        let put = "(Ljava/lang/Object;Ljava/lang/Object;)Ljava/lang/Object;";
        let hm = jni::FindClass(jni, cs("java/util/HashMap").as_ptr());
        clear(jni);
        ids.map_put = method(jni, hm, "put", put, false);
        let sys = jni::FindClass(jni, cs("java/lang/System").as_ptr());
        clear(jni);
        ids.system = global(jni, sys);
        if !sys.is_null() {
            let f = jni::GetStaticFieldID(
                jni,
                sys,
                cs("props").as_ptr(),
                cs("Ljava/util/Properties;").as_ptr(),
            );
            ids.system_props = (!clear(jni) && !f.is_null()).then_some(f);
        }
        let props = jni::FindClass(jni, cs("java/util/Properties").as_ptr());
        clear(jni);
        ids.props_map = field(
            jni,
            props,
            "map",
            "Ljava/util/concurrent/ConcurrentHashMap;",
        );
        let chm = jni::FindClass(jni, cs("java/util/concurrent/ConcurrentHashMap").as_ptr());
        clear(jni);
        ids.chm_put = method(jni, chm, "put", put, false);
    }

    pub fn thread_count(&self) -> usize {
        self.suspended.len()
    }

    pub fn generator_count(&self) -> usize {
        self.randoms.len() + self.sha1.len() + self.drbgs.len() + self.native_io.len()
    }

    /// Writes fresh state into everything found at the hold. Only field stores: no Java code
    /// runs (a suspended thread may hold any lock).
    ///
    /// # Safety
    /// `jni` is the agent thread's environment; the threads are held.
    pub unsafe fn renew(&self, jni: Env) -> String {
        jni::PushLocalFrame(jni, 64);
        let mut fresh = Fresh::default();
        let ids = &self.ids;
        let mut n_random = 0;
        if let (Some(seed), Some(gauss), Some(value)) =
            (ids.random_seed, ids.random_gauss, ids.long_value)
        {
            for &r in &self.randoms {
                let s = jni::GetObjectField(jni, r, seed);
                if !s.is_null() {
                    jni::SetLongField(jni, s, value, fresh.u64() as i64 & MASK48);
                    jni::DeleteLocalRef(jni, s);
                    n_random += 1;
                }
                jni::SetBooleanField(jni, r, gauss, 0);
            }
        }
        let mut n_sha1 = 0;
        if let (Some(st), Some(rem), Some(cnt)) =
            (ids.sha1_state, ids.sha1_remainder, ids.sha1_rem_count)
        {
            for &s in &self.sha1 {
                let mut b = [0i8; 20];
                for x in b.iter_mut() {
                    *x = fresh.u64() as i8;
                }
                let arr = jni::NewByteArray(jni, 20);
                if arr.is_null() {
                    clear(jni);
                    continue;
                }
                jni::SetByteArrayRegion(jni, arr, 0, 20, b.as_ptr());
                jni::SetObjectField(jni, s, st, arr);
                jni::SetObjectField(jni, s, rem, ptr::null_mut());
                jni::SetIntField(jni, s, cnt, 0);
                jni::DeleteLocalRef(jni, arr);
                n_sha1 += 1;
            }
        }
        if let Some(inst) = ids.drbg_instantiated {
            // Re-instantiated from the entropy source at its next use.
            for &d in &self.drbgs {
                jni::SetBooleanField(jni, d, inst, 0);
            }
        }
        if let (Some(buf), Some(last)) = (ids.io_buffered, ids.io_last_read) {
            // Bytes read from /dev/urandom before the checkpoint are dropped.
            for &io in &self.native_io {
                jni::SetIntField(jni, io, buf, 0);
                jni::SetLongField(jni, io, last, 0);
            }
        }
        if let Some(v) = ids.long_value {
            for &a in &self.longs {
                jni::SetLongField(jni, a, v, fresh.u64() as i64);
            }
        }
        if let Some(v) = ids.int_value {
            for &a in &self.ints {
                jni::SetIntField(jni, a, v, fresh.u64() as i32);
            }
        }
        let mut n_threads = 0;
        if let (Some(seed), Some(probe), Some(sec)) = (ids.t_seed, ids.t_probe, ids.t_secondary) {
            for &t in &self.threads {
                if jni::GetIntField(jni, t, probe) != 0 {
                    jni::SetLongField(jni, t, seed, fresh.u64() as i64);
                    n_threads += 1;
                }
                if jni::GetIntField(jni, t, sec) != 0 {
                    jni::SetIntField(jni, t, sec, (fresh.u64() as i32) | 1);
                }
            }
        }
        jni::PopLocalFrame(jni, ptr::null_mut());
        format!(
            "random={n_random}\nsha1prng={n_sha1}\ndrbg={}\nnativeprng={}\nthread_seeds={n_threads}\nseed_sources={}\n",
            self.drbgs.len(),
            self.native_io.len(),
            self.longs.len() + self.ints.len()
        )
    }

    /// Resumes the held threads and drops every reference.
    ///
    /// # Safety
    /// `jvmti` and `jni` are the agent thread's environments.
    pub unsafe fn release(self, jvmti: Env, jni: Env) {
        if !self.suspended.is_empty() {
            let mut results = vec![0u32; self.suspended.len()];
            jvmti::ResumeThreadList(
                jvmti,
                self.suspended.len() as jint,
                self.suspended.as_ptr(),
                results.as_mut_ptr(),
            );
        }
        for list in [
            &self.threads,
            &self.randoms,
            &self.sha1,
            &self.drbgs,
            &self.native_io,
            &self.longs,
            &self.ints,
        ] {
            for &o in list.iter() {
                jni::DeleteGlobalRef(jni, o);
            }
        }
        for o in [
            self.ids.variable,
            self.ids.value,
            self.ids.the_env,
            self.ids.system,
        ] {
            if !o.is_null() {
                jni::DeleteGlobalRef(jni, o);
            }
        }
    }
}

/// Applies the restore-time environment and system properties while the threads are still held:
/// `System.getenv()` reads `ProcessEnvironment.theEnvironment`, `System.getProperty` the
/// `ConcurrentHashMap` inside `System.props`.
///
/// # Safety
/// `jni` is the agent thread's environment; the threads are held.
pub unsafe fn apply_config(jni: Env, h: &Held, cfg: &[(bool, String, String)]) -> String {
    if cfg.is_empty() {
        return String::new();
    }
    let ids = &h.ids;
    jni::PushLocalFrame(jni, 16);
    let (mut n_env, mut n_prop, mut failed) = (0, 0, Vec::new());
    for (is_env, k, v) in cfg {
        jni::PushLocalFrame(jni, 16);
        let ks = jni::NewStringUTF(jni, cs(k).as_ptr());
        let vs = jni::NewStringUTF(jni, cs(v).as_ptr());
        let ok = if ks.is_null() || vs.is_null() {
            false
        } else if *is_env {
            match (ids.variable_of, ids.value_of, ids.map_put) {
                (Some(vo), Some(lo), Some(put)) if !ids.the_env.is_null() => {
                    let var = jni::CallStaticObjectMethodA(
                        jni,
                        ids.variable,
                        vo,
                        [jvalue { l: ks }].as_ptr(),
                    );
                    let val = if clear(jni) {
                        ptr::null_mut()
                    } else {
                        jni::CallStaticObjectMethodA(
                            jni,
                            ids.value,
                            lo,
                            [jvalue { l: vs }].as_ptr(),
                        )
                    };
                    if clear(jni) || var.is_null() || val.is_null() {
                        false
                    } else {
                        jni::CallObjectMethodA(
                            jni,
                            ids.the_env,
                            put,
                            [jvalue { l: var }, jvalue { l: val }].as_ptr(),
                        );
                        !clear(jni)
                    }
                }
                _ => false,
            }
        } else {
            match (ids.system_props, ids.props_map, ids.chm_put) {
                (Some(pf), Some(mf), Some(put)) => {
                    let props = jni::GetStaticObjectField(jni, ids.system, pf);
                    let map = if props.is_null() {
                        ptr::null_mut()
                    } else {
                        jni::GetObjectField(jni, props, mf)
                    };
                    if map.is_null() {
                        false
                    } else {
                        jni::CallObjectMethodA(
                            jni,
                            map,
                            put,
                            [jvalue { l: ks }, jvalue { l: vs }].as_ptr(),
                        );
                        !clear(jni)
                    }
                }
                _ => false,
            }
        };
        clear(jni);
        jni::PopLocalFrame(jni, ptr::null_mut());
        match (ok, is_env) {
            (true, true) => n_env += 1,
            (true, false) => n_prop += 1,
            (false, _) => failed.push(k.clone()),
        }
    }
    jni::PopLocalFrame(jni, ptr::null_mut());
    let mut s = format!("env={n_env}\nproperties={n_prop}\n");
    if !failed.is_empty() {
        s.push_str(&format!("failed={}\n", failed.join(",")));
    }
    s
}

/// Fresh bytes from the kernel (getrandom), fetched in blocks.
#[derive(Default)]
struct Fresh {
    buf: Vec<u8>,
}

impl Fresh {
    fn u64(&mut self) -> u64 {
        if self.buf.len() < 8 {
            let mut b = vec![0u8; 512];
            let mut got = 0;
            while got < b.len() {
                let n = unsafe { getrandom(b[got..].as_mut_ptr(), b.len() - got, 0) };
                if n <= 0 {
                    continue; // EINTR; the pool is initialized long before a restore
                }
                got += n as usize;
            }
            self.buf = b;
        }
        let v = u64::from_ne_bytes(self.buf[self.buf.len() - 8..].try_into().unwrap_or([0; 8]));
        self.buf.truncate(self.buf.len() - 8);
        v
    }
}
