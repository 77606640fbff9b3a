//! Linux capabilities of cracin itself, for the non-root images `cracin build` makes: the image
//! gives the cracin binary CAP_CHECKPOINT_RESTORE as a *permitted-only* file capability
//! (`set_file_capability`), cracin raises it into its effective and ambient sets when it starts
//! (`raise_checkpoint_restore`) so that the criu it runs inherits it, and every application it
//! starts (the JVM to checkpoint, a cold start after a failed restore) gets none
//! (`clear_inherited`).
//!
//! Why this shape (measured on podman 4.3.1 and Docker 26, docs/containers.md): podman puts
//! `--cap-add` capabilities of a non-root user into its ambient set, Docker and Kubernetes do
//! not (they reach only the bounding set), so without a file capability a non-root criu has
//! nothing. The file capability has no effective bit: with it, a container lacking
//! CHECKPOINT_RESTORE in its bounding set could not even exec cracin (EPERM), and the cold-start
//! fallback would be lost. Under `no_new_privs` (Kubernetes `allowPrivilegeEscalation: false`)
//! the kernel caps what an exec'd file gains at what its caller had: cracin as the container's
//! first process still gets it (the runtime held it), a binary cracin exec'd later would not,
//! which is why criu gets it through the ambient set and not from a file capability of its own.

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAP_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn capget() -> Option<[CapData; 2]> {
    let mut h = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    // SAFETY: header and two data words, as the v3 ABI wants.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut CapHeader, d.as_mut_ptr()) };
    (r == 0).then_some(d)
}

fn capset(d: &[CapData; 2]) -> bool {
    let mut h = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    // SAFETY: as capget.
    unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut CapHeader, d.as_ptr()) == 0 }
}

fn word_bit(cap: u32) -> (usize, u32) {
    ((cap / 32) as usize, 1u32 << (cap % 32))
}

/// Makes CAP_CHECKPOINT_RESTORE effective in this process and ambient for its children when it
/// is permitted (a non-root cracin with the image's file capability). Returns whether it is
/// effective afterwards. Root and processes without it are left as they are.
pub fn raise_checkpoint_restore() -> bool {
    let cap = crate::os::sysinfo::CAP_CHECKPOINT_RESTORE;
    let (w, bit) = word_bit(cap);
    let Some(mut d) = capget() else {
        return false;
    };
    // Root's children get root's capabilities anyway: leave its sets (and what a checkpoint
    // made as root records) as they were.
    if d[w].permitted & bit == 0 || crate::os::sysinfo::is_root() {
        return d[w].effective & bit != 0;
    }
    if d[w].effective & bit == 0 || d[w].inheritable & bit == 0 {
        d[w].effective |= bit;
        // A permitted capability may join the inheritable set without CAP_SETPCAP; the ambient
        // set needs it in both.
        d[w].inheritable |= bit;
        if !capset(&d) {
            return false;
        }
    }
    // SAFETY: plain prctl; failure (old kernel) only means criu does not inherit it.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            cap as libc::c_ulong,
            0,
            0,
        );
    }
    true
}

/// Empties the ambient and inheritable sets, so the next exec of a file without capabilities
/// leaves a non-root process with none (async-signal-safe: for `pre_exec`). A root process keeps
/// what root keeps; the bounding set is shrunk separately where CAP_SETPCAP allows it.
pub fn clear_inherited() {
    // SAFETY: prctl, capget and capset are async-signal-safe system calls on stack memory.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    if let Some(mut d) = capget() {
        if d[0].inheritable != 0 || d[1].inheritable != 0 {
            d[0].inheritable = 0;
            d[1].inheritable = 0;
            let _ = capset(&d);
        }
    }
}

/// The `security.capability` extended attribute (VFS_CAP_REVISION_2) that makes `caps`
/// permitted, with no effective bit and nothing inheritable: what `setcap cap_x+p` writes.
pub fn file_capability_xattr(caps: &[u32]) -> Vec<u8> {
    let mut permitted = [0u32; 2];
    for &c in caps {
        let (w, bit) = word_bit(c);
        permitted[w] |= bit;
    }
    let magic: u32 = 0x0200_0000; // VFS_CAP_REVISION_2, effective flag clear
    let mut v = Vec::with_capacity(20);
    for word in [magic, permitted[0], 0, permitted[1], 0] {
        v.extend_from_slice(&word.to_le_bytes());
    }
    v
}

/// Gives `path` CAP_CHECKPOINT_RESTORE as a permitted file capability (needs CAP_SETFCAP: run
/// as root while the image is built).
pub fn set_file_capability(path: &std::path::Path) -> crate::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let value = file_capability_xattr(&[crate::os::sysinfo::CAP_CHECKPOINT_RESTORE]);
    let p = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| crate::Error::io(path, std::io::Error::other("NUL in path")))?;
    // SAFETY: NUL-terminated strings and a buffer of the given length.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            c"security.capability".as_ptr(),
            value.as_ptr() as *const libc::c_void,
            value.len(),
            0,
        )
    };
    if r != 0 {
        return Err(crate::Error::io(path, std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xattr_is_what_setcap_writes() {
        // After `setcap cap_checkpoint_restore+p f` (libcap2-bin), python3's
        // os.getxattr(f, "security.capability").hex() printed exactly this on this machine.
        let v = file_capability_xattr(&[crate::os::sysinfo::CAP_CHECKPOINT_RESTORE]);
        assert_eq!(
            crate::os::text::hex(&v),
            "0000000200000000000000000001000000000000"
        );
    }

    #[test]
    fn clearing_inherited_caps_leaves_them_empty() {
        // In a child, so this test process keeps its sets.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            clear_inherited();
            let d = capget().unwrap();
            let amb = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_IS_SET as libc::c_ulong,
                    crate::os::sysinfo::CAP_CHECKPOINT_RESTORE as libc::c_ulong,
                    0,
                    0,
                )
            };
            let ok = d[0].inheritable == 0 && d[1].inheritable == 0 && amb <= 0;
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut st = 0;
        unsafe { libc::waitpid(pid, &mut st, 0) };
        assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0);
    }
}
