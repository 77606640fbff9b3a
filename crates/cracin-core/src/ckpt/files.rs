//! The files a checkpointed process tree holds open, and what a restore needs of them. CRIU saves
//! the memory and the open descriptors, not the files behind them: it reopens each file by path
//! at restore and refuses one whose size changed ("has bad size"). A container gets a fresh copy
//! of its files from the image on every start; this module gives the local engine the same rule.
//!
//! At the checkpoint every regular file the tree has open or mapped is recorded (`list_open`,
//! before the dump, while the processes exist) and sorted (`classify`): *unchanging* (read-only
//! mounts, files of installed Debian packages, the JDK, the application's class path), *scratch*
//! (under a temporary directory: saved with the checkpoint), *data* (written by the application
//! elsewhere: checked at every restore, never reverted unless the user asked with `--snapshot`),
//! or *deleted* (CRIU keeps those itself, as ghost files). After the dump, when the files are
//! as the dump saw them, `save` copies the saved ones into `files/<sha256>` in the checkpoint
//! (content-addressed: a content is stored once). Before every restore `prepare_restore` refuses
//! when a data file changed, and puts back a saved file that is missing or different, but never
//! under a process that holds it open.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The folder of saved files inside a checkpoint directory.
pub const DIR: &str = "files";

/// What a file is to the checkpoint.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Nobody is expected to change it (a package's file, the JDK, the application's jars).
    Unchanging,
    /// The instance's scratch (under a temporary directory): it may be gone after a stop.
    Scratch,
    /// The instance's data: written by it, outside temporary directories.
    Data,
    /// Deleted while open: CRIU saves its content in the images (a ghost file).
    Deleted,
}

/// What cracin does with the file at each restore.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Saved with the checkpoint, put back when missing or different.
    Saved,
    /// Compared with the checkpoint's record: a change refuses the restore.
    Checked,
    /// Left to CRIU (which checks sizes of regular files itself).
    Left,
}

/// One file the process tree held open or mapped at the checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub path: PathBuf,
    pub kind: Kind,
    pub action: Action,
    /// Why it was sorted so ("under /tmp", "file of an installed package", "--snapshot /srv").
    pub why: String,
    /// Size and modification time (ns since the epoch) right after the dump.
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub mtime_ns: i64,
    #[serde(default)]
    pub mode: u32,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    /// Content hash (saved and checked files); a saved file is `files/<sha256>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A directory above a saved file, recreated with its owner and mode when it is gone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DirEntry {
    pub path: PathBuf,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The `files` section of cracin.json.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Recorded {
    pub entries: Vec<FileEntry>,
    #[serde(default)]
    pub dirs: Vec<DirEntry>,
    /// `--snapshot` and `--no-snapshot` paths as given (absolute).
    #[serde(default)]
    pub snapshot: Vec<PathBuf>,
    #[serde(default)]
    pub no_snapshot: Vec<PathBuf>,
    /// Saved files, and the bytes stored for them in `files/` (each content once).
    #[serde(default)]
    pub saved_files: usize,
    #[serde(default)]
    pub saved_bytes: u64,
}

impl Recorded {
    pub fn count(&self, kind: Kind) -> usize {
        self.entries.iter().filter(|e| e.kind == kind).count()
    }

    pub fn with_action(&self, action: Action) -> impl Iterator<Item = &FileEntry> {
        self.entries.iter().filter(move |e| e.action == action)
    }
}

/// A regular file held open or mapped by a process of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub path: PathBuf,
    pub deleted: bool,
    /// Opened for writing, or mapped shared and writable.
    pub writable: bool,
    /// Written only through descriptors opened with O_APPEND (a log).
    pub append_only: bool,
}

/// Everything the sorting needs to know about this host and this application.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Temporary directories: /tmp, /var/tmp, /dev/shm, $TMPDIR, -Djava.io.tmpdir.
    pub temp_dirs: Vec<PathBuf>,
    pub snapshot: Vec<PathBuf>,
    pub no_snapshot: Vec<PathBuf>,
    /// The JDK the application runs on.
    pub jdk_home: Option<PathBuf>,
    /// The application's jars and class path entries (from its command line).
    pub app_paths: Vec<PathBuf>,
    /// Mount points mounted read-only.
    pub readonly_mounts: Vec<PathBuf>,
    /// All mount points (to find the mount a file lives on).
    pub mounts: Vec<PathBuf>,
    /// cracin's own files (the checkpoint being written, its control directories): not recorded.
    pub own: Vec<PathBuf>,
}

fn under(p: &Path, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter().find(|d| p.starts_with(d)).cloned()
}

/// Sorts one open file. `packaged` says whether a path belongs to an installed package. None for
/// cracin's own files.
pub fn classify(
    o: &Open,
    ctx: &Context,
    packaged: &mut dyn FnMut(&Path) -> bool,
) -> Option<(Kind, Action, String)> {
    let p = &o.path;
    if under(p, &ctx.own).is_some() {
        return None;
    }
    if o.deleted {
        return Some((
            Kind::Deleted,
            Action::Left,
            "deleted while open: CRIU keeps its content in the images".into(),
        ));
    }
    // The user's word comes before cracin's guess.
    let temp = under(p, &ctx.temp_dirs);
    let guess_kind = if temp.is_some() {
        Kind::Scratch
    } else if o.writable {
        Kind::Data
    } else {
        Kind::Unchanging
    };
    if let Some(d) = under(p, &ctx.snapshot) {
        return Some((
            guess_kind,
            Action::Saved,
            format!("--snapshot {}", d.display()),
        ));
    }
    if let Some(d) = under(p, &ctx.no_snapshot) {
        return Some((
            guess_kind,
            Action::Left,
            format!("--no-snapshot {}", d.display()),
        ));
    }
    // A log: CRIU does not check the size of a file opened for appending (writes go to its end
    // whatever its size), so it never breaks a restore, and what it holds is not reverted.
    if o.append_only {
        return Some((
            guess_kind,
            Action::Left,
            "written by appending only (a log): CRIU does not check its size".into(),
        ));
    }
    if let Some(m) = mount_of(p, &ctx.mounts) {
        if ctx.readonly_mounts.contains(&m) {
            return Some((
                Kind::Unchanging,
                Action::Left,
                format!("on the read-only mount {}", m.display()),
            ));
        }
    }
    if let Some(h) = ctx.jdk_home.as_ref().filter(|h| p.starts_with(h)) {
        return Some((
            Kind::Unchanging,
            Action::Left,
            format!("the JDK ({})", h.display()),
        ));
    }
    if packaged(p) {
        return Some((
            Kind::Unchanging,
            Action::Left,
            "a file of an installed package".into(),
        ));
    }
    // What the command line names is the application's own code, even under /tmp; a changed
    // jar there is a redeploy that CRIU's size check and the diagnosis explain.
    if let Some(a) = under(p, &ctx.app_paths) {
        return Some((
            Kind::Unchanging,
            Action::Left,
            format!("the application's class path ({})", a.display()),
        ));
    }
    // What a launcher extracted to /tmp (bnd's bundles, servlet containers' web applications)
    // it deletes again on stop.
    if let Some(t) = temp {
        return Some((
            Kind::Scratch,
            Action::Saved,
            format!("under the temporary directory {}", t.display()),
        ));
    }
    if o.writable {
        return Some((
            Kind::Data,
            Action::Checked,
            "written by the application".into(),
        ));
    }
    Some((
        Kind::Unchanging,
        Action::Left,
        "opened read-only by the application".into(),
    ))
}

/// The longest mount point above `p`.
fn mount_of(p: &Path, mounts: &[PathBuf]) -> Option<PathBuf> {
    mounts
        .iter()
        .filter(|m| p.starts_with(m))
        .max_by_key(|m| m.as_os_str().len())
        .cloned()
}

/// Every regular file the processes hold open (their descriptors) or mapped (their memory maps).
pub fn list_open(pids: &[u32]) -> Vec<Open> {
    // Per path: what is known, and whether anything writes it other than by appending.
    let mut by_path: BTreeMap<PathBuf, (Open, bool)> = BTreeMap::new();
    let mut add = |path: &str, writable: bool, append: bool, regular: bool| {
        if !regular || !path.starts_with('/') {
            return;
        }
        let (path, deleted) = match path.strip_suffix(" (deleted)") {
            Some(p) => (p, true),
            None => (path, false),
        };
        let (e, rewrites) = by_path.entry(PathBuf::from(path)).or_insert((
            Open {
                path: PathBuf::from(path),
                deleted,
                writable: false,
                append_only: false,
            },
            false,
        ));
        e.writable |= writable;
        e.deleted |= deleted;
        *rewrites |= writable && !append;
    };
    for pid in pids {
        let fd_dir = format!("/proc/{pid}/fd");
        if let Ok(rd) = std::fs::read_dir(&fd_dir) {
            for e in rd.flatten() {
                let Ok(target) = std::fs::read_link(e.path()) else {
                    continue;
                };
                // stat through the link: the file itself, even when deleted.
                let regular = std::fs::metadata(e.path()).is_ok_and(|m| m.is_file());
                let fdinfo = std::fs::read_to_string(format!(
                    "/proc/{pid}/fdinfo/{}",
                    e.file_name().to_string_lossy()
                ))
                .unwrap_or_default();
                add(
                    &target.to_string_lossy(),
                    fdinfo_writable(&fdinfo),
                    fdinfo_append(&fdinfo),
                    regular,
                );
            }
        }
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        for m in parse_maps(&maps) {
            let regular = if m.path.ends_with(" (deleted)") {
                std::fs::metadata(format!("/proc/{pid}/map_files/{}", m.range))
                    .is_ok_and(|x| x.is_file())
            } else {
                std::fs::metadata(&m.path).is_ok_and(|x| x.is_file())
            };
            add(&m.path, m.shared_writable, false, regular);
        }
    }
    by_path
        .into_values()
        .map(|(mut o, rewrites)| {
            o.append_only = o.writable && !rewrites;
            o
        })
        .collect()
}

fn fdinfo_flags(fdinfo: &str) -> Option<u32> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
}

/// Whether the `flags:` line of a /proc/PID/fdinfo/N file has O_APPEND.
pub fn fdinfo_append(fdinfo: &str) -> bool {
    fdinfo_flags(fdinfo).is_some_and(|f| f & libc::O_APPEND as u32 != 0)
}

/// Whether the `flags:` line of a /proc/PID/fdinfo/N file says the file is open for writing.
pub fn fdinfo_writable(fdinfo: &str) -> bool {
    fdinfo_flags(fdinfo).is_some_and(|f| f & (libc::O_ACCMODE as u32) != libc::O_RDONLY as u32)
}

/// A file mapping of /proc/PID/maps.
#[derive(Debug, PartialEq)]
pub struct Mapping {
    pub range: String,
    pub path: String,
    pub shared_writable: bool,
}

/// The file mappings of a /proc/PID/maps text (anonymous ones and [heap], [stack]... left out).
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|l| {
            // address perms offset dev inode path (the path may hold spaces)
            let mut rest = l;
            let mut fields = Vec::new();
            for _ in 0..5 {
                let t = rest.trim_start();
                let end = t.find(' ').unwrap_or(t.len());
                fields.push(&t[..end]);
                rest = &t[end..];
            }
            let path = rest.trim_start();
            if !path.starts_with('/') || fields[4] == "0" {
                return None;
            }
            let perms = fields[1].as_bytes();
            Some(Mapping {
                range: fields[0].to_string(),
                path: path.to_string(),
                shared_writable: perms.get(1) == Some(&b'w') && perms.get(3) == Some(&b's'),
            })
        })
        .collect()
}

/// Mount points of a /proc/self/mountinfo text, and which of them are read-only.
pub fn parse_mountinfo(text: &str) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut all = Vec::new();
    let mut ro = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        if f.len() < 6 {
            continue;
        }
        let mp = PathBuf::from(unescape_octal(f[4]));
        if f[5].split(',').any(|o| o == "ro") {
            ro.push(mp.clone());
        }
        all.push(mp);
    }
    (all, ro)
}

/// mountinfo writes a space as \040 (and tab, newline, backslash likewise).
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("x"), 8)
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The application's jars and class path entries named on its command line (relative ones
/// against `cwd`).
pub fn app_paths(command: &[String], cwd: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let abs = |p: &str| {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        }
    };
    let mut it = command.iter().peekable();
    while let Some(a) = it.next() {
        let value = match a.as_str() {
            "-jar" | "-cp" | "-classpath" | "--class-path" | "-p" | "--module-path" => it.next(),
            _ => None,
        };
        if let Some(v) = value {
            out.extend(v.split(':').filter(|s| !s.is_empty()).map(|s| {
                // A `dir/*` class path entry stands for the jars in dir.
                abs(s.strip_suffix("/*").unwrap_or(s))
            }));
        } else if let Some(v) = a
            .strip_prefix("--class-path=")
            .or_else(|| a.strip_prefix("--module-path="))
        {
            out.extend(v.split(':').filter(|s| !s.is_empty()).map(abs));
        }
    }
    out
}

/// Temporary directories the processes use: the usual ones, each process's $TMPDIR and any
/// -Djava.io.tmpdir on its command line or in JAVA_TOOL_OPTIONS / JDK_JAVA_OPTIONS.
pub fn temp_dirs(pids: &[u32]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = ["/tmp", "/var/tmp", "/dev/shm"]
        .iter()
        .map(PathBuf::from)
        .collect();
    for pid in pids {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        v.extend(temp_dirs_of(&environ, &cmdline));
    }
    let mut seen = HashSet::new();
    v.retain(|p| seen.insert(p.clone()));
    v
}

/// The temporary directories named by one process's environment and command line (both
/// NUL-separated, as in /proc).
pub fn temp_dirs_of(environ: &[u8], cmdline: &[u8]) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut options: Vec<String> = String::from_utf8_lossy(cmdline)
        .split('\0')
        .map(str::to_string)
        .collect();
    for kv in String::from_utf8_lossy(environ).split('\0') {
        if let Some(t) = kv.strip_prefix("TMPDIR=") {
            if t.starts_with('/') {
                v.push(PathBuf::from(t));
            }
        }
        for k in ["JAVA_TOOL_OPTIONS=", "JDK_JAVA_OPTIONS=", "_JAVA_OPTIONS="] {
            if let Some(o) = kv.strip_prefix(k) {
                options.extend(o.split_whitespace().map(str::to_string));
            }
        }
    }
    for o in options {
        if let Some(t) = o.strip_prefix("-Djava.io.tmpdir=") {
            if t.starts_with('/') {
                v.push(PathBuf::from(t.trim_end_matches('/')));
            }
        }
    }
    v
}

/// Whether a path is listed by an installed Debian package (/var/lib/dpkg/info/*.list), read
/// once when first asked. Merged /usr: dpkg may list /lib/x.so for the file /usr/lib/x.so.
pub struct Packages {
    listed: Option<HashSet<String>>,
    info: PathBuf,
}

impl Packages {
    pub fn new(info: impl Into<PathBuf>) -> Packages {
        Packages {
            listed: None,
            info: info.into(),
        }
    }

    pub fn contains(&mut self, p: &Path) -> bool {
        let info = self.info.clone();
        let set = self.listed.get_or_insert_with(|| {
            let mut s = HashSet::new();
            if let Ok(rd) = std::fs::read_dir(&info) {
                for e in rd.flatten() {
                    if e.file_name().to_string_lossy().ends_with(".list") {
                        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                        s.extend(text.lines().map(str::to_string));
                    }
                }
            }
            s
        });
        let p = p.to_string_lossy();
        set.contains(p.as_ref())
            || p.strip_prefix("/usr")
                .is_some_and(|rest| set.contains(rest))
    }
}

/// This host's and this application's facts for `classify`. `checkpoint_dir` (where the
/// application's output goes) and cracin's state directories are cracin's own, not recorded.
pub fn context(
    pids: &[u32],
    command: &[String],
    cwd: &Path,
    jdk_home: Option<&Path>,
    snapshot: &[PathBuf],
    no_snapshot: &[PathBuf],
    checkpoint_dir: &Path,
) -> Context {
    let own = vec![
        checkpoint_dir.to_path_buf(),
        PathBuf::from("/var/lib/cracin"),
        PathBuf::from("/run/cracin"),
    ];
    let (mounts, readonly_mounts) =
        parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    Context {
        temp_dirs: temp_dirs(pids),
        snapshot: snapshot.to_vec(),
        no_snapshot: no_snapshot.to_vec(),
        jdk_home: jdk_home.map(Path::to_path_buf),
        app_paths: app_paths(command, cwd),
        readonly_mounts,
        mounts,
        own,
    }
}

/// Records and sorts what the processes hold open (call it before the dump).
pub fn record(pids: &[u32], ctx: &Context) -> Recorded {
    let mut packages = Packages::new("/var/lib/dpkg/info");
    let mut entries = Vec::new();
    for o in list_open(pids) {
        if let Some((kind, action, why)) = classify(&o, ctx, &mut |p| packages.contains(p)) {
            entries.push(FileEntry {
                path: o.path,
                kind,
                action,
                why,
                size: 0,
                mtime_ns: 0,
                mode: 0,
                uid: 0,
                gid: 0,
                sha256: None,
            });
        }
    }
    Recorded {
        entries,
        dirs: Vec::new(),
        snapshot: ctx.snapshot.clone(),
        no_snapshot: ctx.no_snapshot.clone(),
        saved_files: 0,
        saved_bytes: 0,
    }
}

fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec()
}

/// sha256 of a file, copying it to `to` on the way when given.
fn hash_file(p: &Path, mut to: Option<&mut std::fs::File>) -> std::io::Result<String> {
    let mut f = std::fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if let Some(t) = to.as_deref_mut() {
            t.write_all(&buf[..n])?;
        }
    }
    Ok(crate::os::text::hex(&h.finalize()))
}

/// A private new file (0600), for the saved copies.
fn create_private(p: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .map_err(|e| Error::io(p, e))
}

/// After the dump (the files are as the dump saw them): notes size, time, owner and mode of each
/// file, hashes the saved and checked ones, and copies the saved ones into `<dir>/files/`.
/// A file that is gone by now was deleted before the dump finished: CRIU kept it as a ghost.
pub fn save(rec: &mut Recorded, checkpoint_dir: &Path) -> Result<()> {
    let store = checkpoint_dir.join(DIR);
    let mut stored: HashSet<String> = HashSet::new();
    let mut dirs: BTreeMap<PathBuf, DirEntry> = BTreeMap::new();
    for e in rec.entries.iter_mut() {
        let Ok(m) = std::fs::metadata(&e.path) else {
            if e.kind != Kind::Deleted {
                e.kind = Kind::Deleted;
                e.action = Action::Left;
                e.why =
                    "deleted before the dump ended: CRIU keeps its content in the images".into();
            }
            continue;
        };
        e.size = m.len();
        e.mtime_ns = mtime_ns(&m);
        e.mode = m.permissions().mode() & 0o7777;
        e.uid = m.uid();
        e.gid = m.gid();
        match e.action {
            Action::Left => {}
            Action::Checked => {
                e.sha256 = Some(hash_file(&e.path, None).map_err(|x| Error::io(&e.path, x))?);
            }
            Action::Saved => {
                if stored.is_empty() && !store.exists() {
                    std::fs::create_dir(&store).map_err(|x| Error::io(&store, x))?;
                    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o700))
                        .map_err(|x| Error::io(&store, x))?;
                }
                let tmp = store.join(format!(".incoming-{}", std::process::id()));
                let _ = std::fs::remove_file(&tmp);
                let mut f = create_private(&tmp)?;
                let sum = hash_file(&e.path, Some(&mut f)).map_err(|x| Error::io(&e.path, x))?;
                drop(f);
                let blob = store.join(&sum);
                if stored.insert(sum.clone()) && !blob.exists() {
                    std::fs::rename(&tmp, &blob).map_err(|x| Error::io(&blob, x))?;
                    rec.saved_bytes += e.size;
                } else {
                    let _ = std::fs::remove_file(&tmp);
                }
                rec.saved_files += 1;
                e.sha256 = Some(sum);
                let mut d = e.path.parent();
                while let Some(dir) = d.filter(|d| *d != Path::new("/")) {
                    if let Ok(dm) = std::fs::metadata(dir) {
                        dirs.entry(dir.to_path_buf()).or_insert(DirEntry {
                            path: dir.to_path_buf(),
                            mode: dm.permissions().mode() & 0o7777,
                            uid: dm.uid(),
                            gid: dm.gid(),
                        });
                    }
                    d = dir.parent();
                }
            }
        }
    }
    rec.dirs = dirs.into_values().collect();
    Ok(())
}

/// How a checked data file differs from the checkpoint's record, if it does.
pub fn data_change(e: &FileEntry) -> Option<String> {
    let m = match std::fs::metadata(&e.path) {
        Ok(m) => m,
        Err(_) => return Some("it is gone".into()),
    };
    if m.len() != e.size {
        return Some(format!(
            "its size changed from {} to {} bytes (modified {})",
            e.size,
            m.len(),
            when(mtime_ns(&m))
        ));
    }
    if mtime_ns(&m) == e.mtime_ns {
        return None;
    }
    match hash_file(&e.path, None) {
        Ok(sum) if Some(&sum) == e.sha256.as_ref() => None,
        Ok(_) => Some(format!(
            "its content changed (same size, modified {})",
            when(mtime_ns(&m))
        )),
        Err(err) => Some(format!("it cannot be read: {err}")),
    }
}

fn when(ns: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Whether a saved file must be put back: missing, or not what was saved.
fn needs_put_back(e: &FileEntry) -> bool {
    match std::fs::metadata(&e.path) {
        Err(_) => true,
        Ok(m) if !m.is_file() => true,
        Ok(m) if m.len() != e.size => true,
        Ok(m) if mtime_ns(&m) == e.mtime_ns && m.permissions().mode() & 0o7777 == e.mode => false,
        Ok(_) => hash_file(&e.path, None).ok() != e.sha256,
    }
}

/// For each of `paths` that exists, a process (other than this one) that holds it open or
/// mapped, if any: one pass over /proc for all of them.
pub fn holders_of(paths: &[&Path]) -> Vec<Option<u32>> {
    let ids: Vec<Option<(u64, u64)>> = paths
        .iter()
        .map(|p| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino())))
        .collect();
    let mut out = vec![None; paths.len()];
    let wanted: HashSet<(u64, u64)> = ids.iter().flatten().copied().collect();
    if wanted.is_empty() {
        return out;
    }
    let me = std::process::id();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        for sub in ["fd", "map_files"] {
            let Ok(links) = std::fs::read_dir(format!("/proc/{pid}/{sub}")) else {
                continue;
            };
            for l in links.flatten() {
                let Ok(m) = std::fs::metadata(l.path()) else {
                    continue;
                };
                let id = (m.dev(), m.ino());
                if !wanted.contains(&id) {
                    continue;
                }
                for (i, want) in ids.iter().enumerate() {
                    if *want == Some(id) && out[i].is_none() {
                        out[i] = Some(pid);
                    }
                }
            }
        }
    }
    out
}

/// What `prepare_restore` did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Prepared {
    /// Saved files that were put back (missing or different).
    pub put_back: Vec<PathBuf>,
}

/// Before a restore: refuses when a checked data file changed since the checkpoint (nothing is
/// written then), refuses when a saved file must be put back while a process holds it, and puts
/// the missing or different saved files back (with their directories, owner, mode and time).
pub fn prepare_restore(checkpoint_dir: &Path, rec: &Recorded) -> Result<Prepared> {
    let changed: Vec<(PathBuf, String)> = rec
        .with_action(Action::Checked)
        .filter_map(|e| data_change(e).map(|how| (e.path.clone(), how)))
        .collect();
    if !changed.is_empty() {
        return Err(Error::DataChanged {
            checkpoint: checkpoint_dir.to_path_buf(),
            changed,
        });
    }
    let todo: Vec<&FileEntry> = rec
        .with_action(Action::Saved)
        .filter(|e| e.sha256.is_some() && needs_put_back(e))
        .collect();
    let paths: Vec<&Path> = todo.iter().map(|e| e.path.as_path()).collect();
    for (e, holder) in todo.iter().zip(holders_of(&paths)) {
        if let Some(pid) = holder {
            return Err(Error::FileHeld {
                path: e.path.clone(),
                holder: crate::os::procfs::describe_pid(pid),
            });
        }
    }
    let store = checkpoint_dir.join(DIR);
    let mut out = Prepared::default();
    for e in todo {
        put_back(e, &store, &rec.dirs).map_err(|err| match err {
            Error::Io { path, source } if path.starts_with(&store) => Error::BadCheckpoint {
                path: checkpoint_dir.to_path_buf(),
                why: format!(
                    "the saved copy of {} ({}) cannot be read: {source}",
                    e.path.display(),
                    path.display()
                ),
            },
            other => other,
        })?;
        out.put_back.push(e.path.clone());
    }
    Ok(out)
}

fn put_back(e: &FileEntry, store: &Path, dirs: &[DirEntry]) -> Result<()> {
    let sum = e.sha256.as_deref().unwrap_or_default();
    let blob = store.join(sum);
    // Directories first, outermost first, as they were.
    let mut missing = Vec::new();
    let mut d = e.path.parent();
    while let Some(dir) = d.filter(|d| !d.exists()) {
        missing.push(dir.to_path_buf());
        d = dir.parent();
    }
    for dir in missing.iter().rev() {
        std::fs::create_dir(dir).map_err(|x| Error::io(dir, x))?;
        if let Some(rec) = dirs.iter().find(|r| &r.path == dir) {
            let _ = std::os::unix::fs::chown(dir, Some(rec.uid), Some(rec.gid));
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(rec.mode))
                .map_err(|x| Error::io(dir, x))?;
        }
    }
    let name = e
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = e
        .path
        .with_file_name(format!(".{name}.cracin-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = create_private(&tmp)?;
    let got = hash_file(&blob, Some(&mut f)).map_err(|x| Error::io(&blob, x));
    let result = got.and_then(|got| {
        if got != sum {
            return Err(Error::io(
                &blob,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("its content hashes to {got}"),
                ),
            ));
        }
        let _ = std::os::unix::fs::chown(&tmp, Some(e.uid), Some(e.gid));
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(e.mode))
            .map_err(|x| Error::io(&tmp, x))?;
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(e.mtime_ns.max(0) as u64);
        f.set_modified(t).map_err(|x| Error::io(&tmp, x))?;
        // Atomic: a reader sees the old file or the whole saved one.
        std::fs::rename(&tmp, &e.path).map_err(|x| Error::io(&e.path, x))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `--snapshot` / `--no-snapshot` paths made absolute and resolved (the paths in /proc are), so
/// that they compare with what the processes hold. A path that does not exist is bad input.
pub fn resolve_flag_paths(flag: &str, paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    paths
        .iter()
        .map(|p| {
            std::fs::canonicalize(p).map_err(|e| {
                Error::usage(
                    format!("{flag} {}: {e}", p.display()),
                    format!("{flag} takes an existing file or directory the application keeps its files in"),
                )
            })
        })
        .collect()
}

/// Warnings for `--snapshot` / `--no-snapshot` paths that matched no open file.
pub fn unused_flag_paths(rec: &Recorded) -> Vec<String> {
    let mut out = Vec::new();
    for (flag, paths) in [
        ("--snapshot", &rec.snapshot),
        ("--no-snapshot", &rec.no_snapshot),
    ] {
        for p in paths {
            if !rec.entries.iter().any(|e| e.path.starts_with(p)) {
                out.push(format!(
                    "{flag} {}: the application held no file open there at the checkpoint",
                    p.display()
                ));
            }
        }
    }
    out
}

/// One line for the checkpoint's progress: what was found and what was saved.
pub fn summary(rec: &Recorded) -> String {
    let checked = rec.with_action(Action::Checked).count();
    format!(
        "{} files open: {} unchanging, {} scratch, {} data, {} deleted; saved {} ({} bytes), {} data file{} checked at every restore",
        rec.entries.len(),
        rec.count(Kind::Unchanging),
        rec.count(Kind::Scratch),
        rec.count(Kind::Data),
        rec.count(Kind::Deleted),
        rec.saved_files,
        rec.saved_bytes,
        checked,
        if checked == 1 { "" } else { "s" }
    )
}

/// One line for the restore's progress.
pub fn put_back_summary(p: &Prepared) -> String {
    let names: Vec<String> = p
        .put_back
        .iter()
        .take(3)
        .map(|x| x.display().to_string())
        .collect();
    format!(
        "put back {} saved file{}: {}{}",
        p.put_back.len(),
        if p.put_back.len() == 1 { "" } else { "s" },
        names.join(", "),
        if p.put_back.len() > 3 { ", ..." } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            temp_dirs: vec!["/tmp".into(), "/var/tmp".into(), "/srv/app/tmp".into()],
            snapshot: vec!["/srv/db".into()],
            no_snapshot: vec!["/tmp/cache".into()],
            jdk_home: Some("/usr/lib/jvm/java-17-openjdk-amd64".into()),
            app_paths: vec![
                "/opt/app/app.jar".into(),
                "/opt/app/lib".into(),
                "/tmp/build/app.jar".into(),
            ],
            readonly_mounts: vec!["/ro".into()],
            mounts: vec!["/".into(), "/ro".into(), "/ro/rw".into()],
            own: vec!["/ck/.out.tmp-1".into()],
        }
    }

    fn sort(path: &str, writable: bool, deleted: bool) -> Option<(Kind, Action)> {
        let o = Open {
            path: path.into(),
            writable,
            deleted,
            append_only: false,
        };
        let mut pk = |p: &Path| {
            p == Path::new("/usr/share/java/h2.jar")
                || p == Path::new("/lib/x86_64-linux-gnu/libz.so.1")
        };
        classify(&o, &ctx(), &mut pk).map(|(k, a, _)| (k, a))
    }

    #[test]
    fn files_are_sorted_as_the_issue_says() {
        use Action::*;
        use Kind::*;
        // unchanging
        assert_eq!(
            sort("/ro/lib/a.jar", false, false),
            Some((Unchanging, Left))
        );
        assert_eq!(
            sort(
                "/usr/lib/jvm/java-17-openjdk-amd64/lib/modules",
                false,
                false
            ),
            Some((Unchanging, Left))
        );
        assert_eq!(
            sort("/usr/share/java/h2.jar", false, false),
            Some((Unchanging, Left))
        );
        assert_eq!(
            sort("/opt/app/app.jar", false, false),
            Some((Unchanging, Left))
        );
        assert_eq!(
            sort("/opt/app/lib/dep.jar", false, false),
            Some((Unchanging, Left))
        );
        assert_eq!(
            sort("/home/u/config.xml", false, false),
            Some((Unchanging, Left))
        );
        assert_eq!(
            sort("/tmp/build/app.jar", false, false),
            Some((Unchanging, Left))
        );
        // scratch: saved, even a jar opened read-only (a launcher's extracted bundle)
        assert_eq!(
            sort("/tmp/resource3.jar", false, false),
            Some((Scratch, Saved))
        );
        assert_eq!(sort("/var/tmp/x", true, false), Some((Scratch, Saved)));
        assert_eq!(
            sort("/srv/app/tmp/jetty/webapp/WEB-INF/lib/h.jar", false, false),
            Some((Scratch, Saved))
        );
        // deleted: CRIU's ghost files
        assert_eq!(sort("/tmp/gone", true, true), Some((Deleted, Left)));
        // data: checked, never reverted
        assert_eq!(
            sort("/srv/data/test.mv.db", true, false),
            Some((Data, Checked))
        );
        // a mount below a read-only one is writable
        assert_eq!(sort("/ro/rw/db", true, false), Some((Data, Checked)));
        // the user's word
        assert_eq!(sort("/srv/db/test.mv.db", true, false), Some((Data, Saved)));
        assert_eq!(
            sort("/tmp/cache/big.bin", true, false),
            Some((Scratch, Left))
        );
        // cracin's own files are not recorded
        assert_eq!(sort("/ck/.out.tmp-1/app.stdout", true, false), None);
        // a log, written by appending only: left to CRIU, never reverted, never refused
        let log = |p: &str| {
            let o = Open {
                path: p.into(),
                writable: true,
                deleted: false,
                append_only: true,
            };
            classify(&o, &ctx(), &mut |_| false).map(|(k, a, _)| (k, a))
        };
        assert_eq!(log("/var/log/app/app.log"), Some((Data, Left)));
        assert_eq!(log("/tmp/app.log"), Some((Scratch, Left)));
    }

    #[test]
    fn snapshot_paths_must_exist_and_are_resolved() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("data");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, d.path().join("link")).unwrap();
        let got = resolve_flag_paths("--snapshot", &[d.path().join("link")]).unwrap();
        assert_eq!(got, vec![real.canonicalize().unwrap()]);
        let e = resolve_flag_paths("--snapshot", &[d.path().join("nope")]).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::USAGE);
        assert!(e.to_string().contains("--snapshot"), "{e}");
        let rec = Recorded {
            snapshot: got,
            ..Default::default()
        };
        assert_eq!(unused_flag_paths(&rec).len(), 1);
    }

    #[test]
    fn merged_usr_package_files_are_found() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("zlib1g:amd64.list"),
            "/.\n/lib\n/lib/x86_64-linux-gnu/libz.so.1\n",
        )
        .unwrap();
        std::fs::write(d.path().join("zlib1g:amd64.md5sums"), "/usr/not/listed\n").unwrap();
        let mut p = Packages::new(d.path());
        assert!(p.contains(Path::new("/lib/x86_64-linux-gnu/libz.so.1")));
        assert!(p.contains(Path::new("/usr/lib/x86_64-linux-gnu/libz.so.1")));
        assert!(!p.contains(Path::new("/usr/not/listed")));
    }

    #[test]
    fn proc_texts_parse() {
        let maps = "7f00-7f10 r--s 00000000 08:01 1234 /tmp/resource1.jar\n\
                    7f10-7f20 rw-s 00000000 08:01 99 /srv/db/a file.db\n\
                    7f20-7f30 rw-p 00000000 00:00 0 \n\
                    7f30-7f40 rw-p 00000000 00:00 0 [heap]\n\
                    7f40-7f50 r-xp 00000000 08:01 77 /tmp/x.so (deleted)\n";
        let m = parse_maps(maps);
        assert_eq!(m.len(), 3);
        assert!(!m[0].shared_writable && m[0].path == "/tmp/resource1.jar");
        assert!(m[1].shared_writable && m[1].path == "/srv/db/a file.db");
        assert_eq!(m[2].path, "/tmp/x.so (deleted)");
        assert!(fdinfo_writable("pos:\t0\nflags:\t0100002\nmnt_id:\t3\n"));
        assert!(!fdinfo_writable("pos:\t0\nflags:\t02100000\n"));
        assert!(fdinfo_append("pos:\t0\nflags:\t0102001\n"));
        assert!(!fdinfo_append("pos:\t0\nflags:\t0100002\n"));
        let mi = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                  30 22 0:5 / /ro\\040dir ro,nosuid - tmpfs tmpfs ro\n";
        let (all, ro) = parse_mountinfo(mi);
        assert_eq!(all, vec![PathBuf::from("/"), PathBuf::from("/ro dir")]);
        assert_eq!(ro, vec![PathBuf::from("/ro dir")]);
        let env = b"PATH=/bin\0TMPDIR=/scratch\0JAVA_TOOL_OPTIONS=-Xms16m -Djava.io.tmpdir=/jt/\0";
        let cmd = b"java\0-Djava.io.tmpdir=/cmdtmp\0-jar\0a.jar\0";
        assert_eq!(
            temp_dirs_of(env, cmd),
            vec![
                PathBuf::from("/scratch"),
                PathBuf::from("/cmdtmp"),
                PathBuf::from("/jt")
            ]
        );
        let cmd: Vec<String> = [
            "java",
            "-cp",
            "lib/*:classes",
            "-jar",
            "/opt/a.jar",
            "--module-path=/m",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            app_paths(&cmd, Path::new("/w")),
            vec![
                PathBuf::from("/w/lib"),
                PathBuf::from("/w/classes"),
                PathBuf::from("/opt/a.jar"),
                PathBuf::from("/m")
            ]
        );
    }

    fn entry(path: &Path, action: Action) -> FileEntry {
        FileEntry {
            path: path.to_path_buf(),
            kind: if action == Action::Saved {
                Kind::Scratch
            } else {
                Kind::Data
            },
            action,
            why: String::new(),
            size: 0,
            mtime_ns: 0,
            mode: 0,
            uid: 0,
            gid: 0,
            sha256: None,
        }
    }

    #[test]
    fn saved_files_are_stored_once_and_put_back() {
        let d = tempfile::tempdir().unwrap();
        let ck = d.path().join("ck");
        std::fs::create_dir(&ck).unwrap();
        let scratch = d.path().join("scratch/sub");
        std::fs::create_dir_all(&scratch).unwrap();
        let (a, b) = (scratch.join("a.jar"), scratch.join("b.jar"));
        std::fs::write(&a, "same bytes").unwrap();
        std::fs::write(&b, "same bytes").unwrap();
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o750)).unwrap();
        // Owners are put back too (root only can give a file away).
        let root = crate::os::sysinfo::is_root();
        if root {
            std::os::unix::fs::chown(&a, Some(65534), Some(65534)).unwrap();
        }
        let mut rec = Recorded {
            entries: vec![entry(&a, Action::Saved), entry(&b, Action::Saved)],
            ..Default::default()
        };
        save(&mut rec, &ck).unwrap();
        assert_eq!(rec.saved_files, 2);
        assert_eq!(rec.saved_bytes, 10, "one content, stored once");
        let store = ck.join(DIR);
        assert_eq!(std::fs::read_dir(&store).unwrap().count(), 1);
        assert_eq!(
            std::fs::metadata(&store).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let blob = store.join(rec.entries[0].sha256.as_ref().unwrap());
        assert_eq!(
            std::fs::metadata(&blob).unwrap().permissions().mode() & 0o777,
            0o600
        );

        // Nothing to do while the files are as saved.
        assert_eq!(prepare_restore(&ck, &rec).unwrap(), Prepared::default());
        // Deleted with its directory (a launcher's shutdown hook), and another one changed.
        std::fs::remove_dir_all(d.path().join("scratch")).unwrap();
        let p = prepare_restore(&ck, &rec).unwrap();
        assert_eq!(p.put_back, vec![a.clone(), b.clone()]);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "same bytes");
        assert_eq!(
            std::fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(
            std::fs::metadata(&scratch).unwrap().permissions().mode() & 0o777,
            0o750
        );
        if root {
            assert_eq!(std::fs::metadata(&a).unwrap().uid(), 65534);
        }
        std::fs::write(&b, "other byte").unwrap();
        assert_eq!(
            prepare_restore(&ck, &rec).unwrap().put_back,
            vec![b.clone()]
        );
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "same bytes");
        // A second prepare finds nothing to do (the time was put back too).
        assert_eq!(prepare_restore(&ck, &rec).unwrap(), Prepared::default());

        // Never under a process that holds the file: this test process holds it here.
        std::fs::write(&b, "changed!!!").unwrap();
        let held = std::fs::File::open(&b).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdin(held)
            .spawn()
            .unwrap();
        let e = prepare_restore(&ck, &rec).unwrap_err();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            matches!(&e, Error::FileHeld { holder, .. } if holder.contains(&child.id().to_string())),
            "{e}"
        );
        assert_eq!(e.exit_code(), crate::error::exit::RESTORE);
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "changed!!!");
    }

    #[test]
    fn a_changed_data_file_refuses_the_restore_and_stays() {
        let d = tempfile::tempdir().unwrap();
        let ck = d.path().join("ck");
        std::fs::create_dir(&ck).unwrap();
        let db = d.path().join("test.mv.db");
        std::fs::write(&db, "0123456789").unwrap();
        let mut rec = Recorded {
            entries: vec![entry(&db, Action::Checked)],
            ..Default::default()
        };
        save(&mut rec, &ck).unwrap();
        assert!(!ck.join(DIR).exists(), "data is not copied");
        assert_eq!(data_change(&rec.entries[0]), None);
        // Touched but the same content: fine.
        let f = std::fs::OpenOptions::new().append(true).open(&db).unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        drop(f);
        assert_eq!(data_change(&rec.entries[0]), None);
        std::fs::write(&db, "0123456780").unwrap();
        assert!(data_change(&rec.entries[0])
            .unwrap()
            .contains("content changed"));
        std::fs::write(&db, "0123456789 and more rows").unwrap();
        let e = prepare_restore(&ck, &rec).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("test.mv.db") && text.contains("size changed from 10 to 24"),
            "{text}"
        );
        assert_eq!(e.exit_code(), crate::error::exit::RESTORE);
        let hint = e.hint().unwrap();
        assert!(
            hint.contains("--snapshot") && hint.contains("does not hold it open"),
            "{hint}"
        );
        assert_eq!(
            std::fs::read_to_string(&db).unwrap(),
            "0123456789 and more rows"
        );
        std::fs::remove_file(&db).unwrap();
        assert_eq!(data_change(&rec.entries[0]).as_deref(), Some("it is gone"));
    }
}
