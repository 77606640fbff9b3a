//! Hand-written bindings to the parts of JNI and JVMTI the agent calls. Both interfaces are C
//! function tables; an entry is found by its index, which the specifications fix (JNI: position
//! in `JNINativeInterface_`; JVMTI: the function number minus one) and which never changes
//! between JDK versions.
#![allow(non_camel_case_types, non_snake_case)]

use std::ffi::{c_char, c_void, CString};

pub type jint = i32;
pub type jlong = i64;
pub type jboolean = u8;
pub type jobject = *mut c_void;
pub type jclass = jobject;
pub type jthread = jobject;
pub type jfieldID = *mut c_void;
pub type jmethodID = *mut c_void;
pub type jvmtiError = u32;

/// `JNIEnv*` and `jvmtiEnv*` both point at a pointer to their function table.
pub type Env = *mut *const *const c_void;
pub type JavaVM = *mut *const *const c_void;

pub const JNI_OK: jint = 0;
pub const JVMTI_VERSION_1_2: jint = 0x3001_0200;
pub const JVMTI_ENABLE: jint = 1;
pub const JVMTI_DISABLE: jint = 0;
pub const JVMTI_EVENT_VM_INIT: jint = 50;
pub const JVMTI_EVENT_CLASS_FILE_LOAD_HOOK: jint = 54;
pub const JVMTI_CLASS_STATUS_INITIALIZED: jint = 4;
pub const JVMTI_THREAD_MAX_PRIORITY: jint = 10;

/// `jvalue`: a JNI call argument (only objects are passed here).
#[repr(C)]
#[derive(Clone, Copy)]
pub union jvalue {
    pub l: jobject,
    pub j: jlong,
}

unsafe fn entry(env: Env, index: usize) -> *const c_void {
    *(*env).add(index)
}

macro_rules! table_fn {
    ($name:ident, $idx:expr, fn($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty) => {
        #[allow(clippy::missing_safety_doc, clippy::too_many_arguments)]
        pub unsafe fn $name(env: Env, $($arg: $ty),*) -> $ret {
            let f: unsafe extern "C" fn(Env, $($ty),*) -> $ret =
                std::mem::transmute(entry(env, $idx));
            f(env, $($arg),*)
        }
    };
}

/// JNI (index in JNINativeInterface_).
pub mod jni {
    use super::*;
    table_fn!(FindClass, 6, fn(name: *const c_char) -> jclass);
    table_fn!(
        IsAssignableFrom,
        11,
        fn(sub: jclass, sup: jclass) -> jboolean
    );
    table_fn!(ExceptionClear, 17, fn() -> ());
    table_fn!(PushLocalFrame, 19, fn(capacity: jint) -> jint);
    table_fn!(PopLocalFrame, 20, fn(result: jobject) -> jobject);
    table_fn!(NewGlobalRef, 21, fn(obj: jobject) -> jobject);
    table_fn!(DeleteGlobalRef, 22, fn(obj: jobject) -> ());
    table_fn!(DeleteLocalRef, 23, fn(obj: jobject) -> ());
    table_fn!(IsSameObject, 24, fn(a: jobject, b: jobject) -> jboolean);
    table_fn!(
        NewObjectA,
        30,
        fn(c: jclass, m: jmethodID, args: *const jvalue) -> jobject
    );
    table_fn!(
        GetMethodID,
        33,
        fn(c: jclass, name: *const c_char, sig: *const c_char) -> jmethodID
    );
    table_fn!(
        CallObjectMethodA,
        36,
        fn(o: jobject, m: jmethodID, args: *const jvalue) -> jobject
    );
    table_fn!(
        GetFieldID,
        94,
        fn(c: jclass, name: *const c_char, sig: *const c_char) -> jfieldID
    );
    table_fn!(GetObjectField, 95, fn(o: jobject, f: jfieldID) -> jobject);
    table_fn!(GetBooleanField, 96, fn(o: jobject, f: jfieldID) -> jboolean);
    table_fn!(GetIntField, 100, fn(o: jobject, f: jfieldID) -> jint);
    table_fn!(
        SetObjectField,
        104,
        fn(o: jobject, f: jfieldID, v: jobject) -> ()
    );
    table_fn!(
        SetBooleanField,
        105,
        fn(o: jobject, f: jfieldID, v: jboolean) -> ()
    );
    table_fn!(SetIntField, 109, fn(o: jobject, f: jfieldID, v: jint) -> ());
    table_fn!(
        SetLongField,
        110,
        fn(o: jobject, f: jfieldID, v: jlong) -> ()
    );
    table_fn!(
        GetStaticMethodID,
        113,
        fn(c: jclass, name: *const c_char, sig: *const c_char) -> jmethodID
    );
    table_fn!(
        CallStaticObjectMethodA,
        116,
        fn(c: jclass, m: jmethodID, args: *const jvalue) -> jobject
    );
    table_fn!(
        GetStaticFieldID,
        144,
        fn(c: jclass, name: *const c_char, sig: *const c_char) -> jfieldID
    );
    table_fn!(
        GetStaticObjectField,
        145,
        fn(c: jclass, f: jfieldID) -> jobject
    );
    table_fn!(NewStringUTF, 167, fn(s: *const c_char) -> jobject);
    table_fn!(NewByteArray, 176, fn(len: jint) -> jobject);
    table_fn!(
        SetByteArrayRegion,
        208,
        fn(a: jobject, start: jint, len: jint, buf: *const i8) -> ()
    );
    table_fn!(ExceptionCheck, 228, fn() -> jboolean);
}

/// JVMTI (function number minus one).
pub mod jvmti {
    use super::*;
    table_fn!(
        SetEventNotificationMode,
        1,
        fn(mode: jint, event: jint, thread: jthread) -> jvmtiError
    );
    table_fn!(
        GetAllThreads,
        3,
        fn(count: *mut jint, threads: *mut *mut jthread) -> jvmtiError
    );
    table_fn!(
        RunAgentThread,
        11,
        fn(
            t: jthread,
            f: unsafe extern "C" fn(Env, Env, *mut c_void),
            arg: *const c_void,
            prio: jint,
        ) -> jvmtiError
    );
    table_fn!(GetCurrentThread, 17, fn(t: *mut jthread) -> jvmtiError);
    table_fn!(
        Allocate,
        45,
        fn(size: jlong, mem: *mut *mut u8) -> jvmtiError
    );
    table_fn!(Deallocate, 46, fn(mem: *mut u8) -> jvmtiError);
    table_fn!(
        GetClassSignature,
        47,
        fn(c: jclass, sig: *mut *mut c_char, generic: *mut *mut c_char) -> jvmtiError
    );
    table_fn!(
        GetClassStatus,
        48,
        fn(c: jclass, status: *mut jint) -> jvmtiError
    );
    table_fn!(
        GetLoadedClasses,
        77,
        fn(count: *mut jint, classes: *mut *mut jclass) -> jvmtiError
    );
    table_fn!(
        SuspendThreadList,
        91,
        fn(count: jint, threads: *const jthread, results: *mut jvmtiError) -> jvmtiError
    );
    table_fn!(
        ResumeThreadList,
        92,
        fn(count: jint, threads: *const jthread, results: *mut jvmtiError) -> jvmtiError
    );
    table_fn!(SetTag, 106, fn(o: jobject, tag: jlong) -> jvmtiError);
    table_fn!(
        GetObjectsWithTags,
        113,
        fn(
            n: jint,
            tags: *const jlong,
            count: *mut jint,
            objs: *mut *mut jobject,
            tags_out: *mut *mut jlong,
        ) -> jvmtiError
    );
    table_fn!(
        IterateThroughHeap,
        115,
        fn(
            filter: jint,
            klass: jclass,
            callbacks: *const HeapCallbacks,
            user: *const c_void,
        ) -> jvmtiError
    );
    table_fn!(
        SetEventCallbacks,
        121,
        fn(callbacks: *const c_void, size: jint) -> jvmtiError
    );
    table_fn!(
        AddCapabilities,
        141,
        fn(caps: *const [u32; 4]) -> jvmtiError
    );
}

/// `jvmtiHeapCallbacks`: only the first entry (heap iteration) is used.
#[repr(C)]
pub struct HeapCallbacks {
    pub heap_iteration:
        Option<unsafe extern "C" fn(jlong, jlong, *mut jlong, jint, *mut c_void) -> jint>,
    pub rest: [*const c_void; 14],
}

/// `vm->GetEnv(&env, version)`.
pub unsafe fn get_env(vm: JavaVM, version: jint) -> Option<Env> {
    let f: unsafe extern "C" fn(JavaVM, *mut Env, jint) -> jint =
        std::mem::transmute(*(*vm).add(6));
    let mut env: Env = std::ptr::null_mut();
    (f(vm, &mut env, version) == JNI_OK && !env.is_null()).then_some(env)
}

/// A NUL-terminated copy for JNI names (names here never contain NUL).
pub fn cs(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

extern "C" {
    pub fn sigemptyset(set: *mut SigSet) -> i32;
    pub fn sigaddset(set: *mut SigSet, sig: i32) -> i32;
    pub fn pthread_sigmask(how: i32, set: *const SigSet, old: *mut SigSet) -> i32;
    pub fn sigwaitinfo(set: *const SigSet, info: *mut SigInfo) -> i32;
    pub fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    pub fn getrandom(buf: *mut u8, len: usize, flags: u32) -> isize;
    pub fn getpid() -> i32;
    pub fn clock_gettime(clock: i32, ts: *mut [i64; 2]) -> i32;
}

/// glibc's `sigset_t` (1024 bits).
#[repr(C)]
pub struct SigSet(pub [u64; 16]);

/// `siginfo_t` (128 bytes); for a queued signal, `si_value` is at byte 24.
#[repr(C, align(8))]
pub struct SigInfo(pub [u8; 128]);

impl SigInfo {
    pub fn value(&self) -> u64 {
        u64::from_ne_bytes(self.0[24..32].try_into().unwrap_or([0; 8]))
    }
}

pub const SIG_BLOCK: i32 = 0;
pub const PR_SET_NAME: i32 = 15;
pub const CLOCK_MONOTONIC: i32 = 1;
