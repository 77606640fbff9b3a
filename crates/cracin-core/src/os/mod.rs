//! Host plumbing, nothing JVM-specific: the one way to run a program (`cmd`), facts about the
//! machine (`sysinfo`), cracin's own capabilities (`caps`); what keeps cracin's files private and
//! its paths unguessable (private permissions whatever the umask in `perms`, temporary directories
//! with mkdtemp semantics in `tempdir`; a checkpoint is a memory dump of the application, as
//! sensitive as a private key); unique names for what cracin creates (`id`); the guardian that
//! cleans up after a killed cracin (`guard` tells it what to watch, `guardian` is the process),
//! the bounded locks (`lock`), what /proc says about processes, their trees and their ports
//! (`procfs`), the stop signals held, forwarded or turned into a clean-up (`signals`), small text
//! and network forms (`text`, `net`), and what talks to the kernel directly instead of parsing
//! text (sock_diag netlink for listening sockets in `sockdiag`, the boot identity that host-wide
//! caches are keyed by).

pub mod caps;
pub mod cmd;
pub mod guard;
pub mod guardian;
pub mod id;
pub mod lock;
pub mod net;
pub mod perms;
pub mod procfs;
pub mod signals;
pub mod sockdiag;
pub mod sysinfo;
pub mod tempdir;
pub mod text;

/// This boot's random id (/proc/sys/kernel/random/boot_id): differs after every reboot, so a
/// cache of kernel facts keyed by it cannot outlive the kernel it describes.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
