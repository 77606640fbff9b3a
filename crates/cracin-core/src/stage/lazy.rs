//! Lazy restore of memory (`cracin restore --lazy-pages`): a `criu lazy-pages` daemon serves
//! the restored process's page faults through userfaultfd and copies the remaining pages in the
//! background, so the first answer comes before all memory is back. This starts the daemon for
//! one restore and waits until it listens.

use std::path::Path;
use std::time::{Duration, Instant};

use super::criu::{self, Criu};
use super::criu_failure::{self, Run};
use crate::error::{Error, Result};

/// Starts the `criu lazy-pages` daemon for one restore and waits until it listens. It is not
/// waited for: it serves the restored process's page faults, copies the remaining pages in the
/// background and exits by itself when all are there.
pub fn start(criu: &Criu, images: &Path, work_dir: &Path) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let args = criu::lazy_pages_args(images, work_dir);
    let out = crate::os::perms::create_private_file(&work_dir.join("lazy-pages.out"))?;
    let err = out.try_clone().map_err(|e| Error::io(work_dir, e))?;
    let mut c = std::process::Command::new(&criu.path);
    c.args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    unsafe {
        c.pre_exec(|| {
            crate::os::signals::unblock_all_signals();
            Ok(())
        });
    }
    let mut child = c.spawn().map_err(|e| Error::Spawn {
        command: format!("{} {}", criu.path.display(), args.join(" ")),
        source: e,
    })?;
    let sock = work_dir.join("lazy-pages.socket");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sock.exists() {
        if let Ok(Some(st)) = child.try_wait() {
            let log = work_dir.join("lazy-pages.log");
            return Err(criu_failure::failed(
                Run::Restore,
                &criu.path,
                &args,
                st,
                log,
                "",
                &[],
            ));
        }
        if Instant::now() > deadline {
            break; // let the restore itself report what is wrong
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Reaped by whoever adopts it; dropping the handle does not kill it.
    std::mem::forget(child);
    Ok(())
}
