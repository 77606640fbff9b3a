//! `cracin base`: a base image with a JDK and CRIU >= 4.2 made from Debian packages, without any
//! registry: debootstrap a minbase rootfs with the suite's headless OpenJRE and CRIU's runtime
//! libraries, clean it, cache it as a tarball, append the CRIU binary, and import the tarball
//! into the engine, as a `Plan` so `--dry-run` shows them (scripts/base-image.sh runs `cracin
//! base`). Distribution CRIU packages are not used: bookworm's 3.17 and trixie's 4.1 fail on
//! Linux >= 6.16 (docs/containers.md).

use std::path::PathBuf;
use std::time::Duration;

use super::engine::Engine;
use super::plan::{Plan, Step, StepKind};
use crate::error::{Error, Result};

/// What `cracin base` builds.
#[derive(Debug, Clone)]
pub struct BaseOptions {
    /// 17 (bookworm), 21 or 25 (trixie).
    pub jdk: u32,
    pub engine: Engine,
    /// Default `localhost/cracin-base:jdkN`.
    pub tag: Option<String>,
    /// The CRIU >= 4.2 binary to put into /usr/local/sbin (built on bookworm by scripts/setup.sh).
    pub criu: PathBuf,
    /// Where rootfs tarballs are cached (default /var/cache/cracin).
    pub cache_dir: PathBuf,
    /// A scratch directory (removed at the end).
    pub work_dir: PathBuf,
    /// Debootstrap again even if the cache holds a rootfs.
    pub rebuild: bool,
    pub mirror: String,
}

impl BaseOptions {
    pub fn new(jdk: u32, engine: Engine, work_dir: PathBuf) -> BaseOptions {
        BaseOptions {
            jdk,
            engine,
            tag: None,
            criu: PathBuf::from("/opt/cracin/criu-4.2.1/criu"),
            cache_dir: PathBuf::from("/var/cache/cracin"),
            work_dir,
            rebuild: false,
            mirror: "http://deb.debian.org/debian".into(),
        }
    }

    pub fn suite(&self) -> Result<&'static str> {
        match self.jdk {
            17 => Ok("bookworm"),
            21 | 25 => Ok("trixie"),
            n => Err(Error::usage(
                format!("no Debian base for JDK {n}"),
                "use --jdk 17 (bookworm), 21 or 25 (trixie)",
            )),
        }
    }

    pub fn tag(&self) -> String {
        self.tag
            .clone()
            .unwrap_or_else(|| format!("localhost/cracin-base:jdk{}", self.jdk))
    }

    pub fn rootfs_cache(&self) -> Result<PathBuf> {
        Ok(self
            .cache_dir
            .join(format!("rootfs-{}-jdk{}.tar", self.suite()?, self.jdk)))
    }

    /// Debian packages of the rootfs: the JRE, setpriv (util-linux) and CRIU's shared libraries
    /// (the sonames of `ldd criu`, identical in bookworm and trixie; only gnutls was renamed).
    pub fn packages(&self) -> Result<Vec<String>> {
        let gnutls = if self.suite()? == "bookworm" {
            "libgnutls30"
        } else {
            "libgnutls30t64"
        };
        Ok([
            &format!("openjdk-{}-jre-headless", self.jdk) as &str,
            "util-linux",
            "libbsd0",
            gnutls,
            "libnftables1",
            "libprotobuf-c1",
            "libnl-3-200",
            "libnet1",
            "libuuid1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect())
    }
}

/// The steps; `cached` says whether the rootfs tarball already exists (then debootstrap is skipped).
pub fn base_plan(o: &BaseOptions, cached: bool) -> Result<Plan> {
    let suite = o.suite()?;
    let tag = o.tag();
    let cache = o.rootfs_cache()?.display().to_string();
    let work = o.work_dir.display().to_string();
    let rootfs = format!("{work}/rootfs");
    let e = &o.engine;
    let mut p = Plan {
        title: format!(
            "cracin base: Debian {suite} minbase + OpenJDK {} JRE + CRIU -> {tag} ({})",
            o.jdk,
            e.name()
        ),
        env: e.env.clone(),
        files_dir: None,
        files: vec![],
        steps: vec![],
        notes: vec![],
    };
    let sh = |script: String| vec!["sh".to_string(), "-c".to_string(), script];
    p.step(
        "scratch",
        vec!["mkdir".into(), "-p".into(), work.clone()],
        "a scratch directory for the rootfs",
    );
    if !cached || o.rebuild {
        p.step(
            "debootstrap",
            vec![
                "debootstrap".into(),
                "--variant=minbase".into(),
                format!("--include={}", o.packages()?.join(",")),
                suite.into(),
                rootfs.clone(),
                o.mirror.clone(),
            ],
            "a minimal Debian with the JRE and CRIU's libraries (about 40-130 s)",
        );
        p.last_timeout(Duration::from_secs(1800));
        p.step(
            "clean",
            sh(format!(
                "chroot {r} apt-get clean && rm -rf {r}/var/lib/apt/lists/* {r}/var/cache/apt/*.bin {r}/usr/share/man/* {r}/usr/share/info/* {r}/var/log/*.log {r}/var/cache/debconf/*-old {r}/tmp/* {r}/dev/* && (find {r}/usr/share/doc -mindepth 2 ! -name copyright ! -type d -delete || true) && mkdir -p {r}/root",
                r = rootfs
            )),
            "no package lists, cached .debs, man pages or device nodes in the image",
        );
        p.step(
            "cache-rootfs",
            sh(format!(
                "mkdir -p {dir} && tar --numeric-owner --xattrs -C {rootfs} -cf {cache}.tmp . && mv {cache}.tmp {cache} && rm -rf {rootfs}",
                dir = o.cache_dir.display()
            )),
            "keep the rootfs so the next run skips debootstrap",
        );
        p.last_timeout(Duration::from_secs(600));
    }
    p.step(
        "add-criu",
        sh(format!(
            "cp {cache} {work}/rootfs.tar && install -D -m 0755 {criu} {work}/overlay/usr/local/sbin/criu && tar --numeric-owner --owner=0 --group=0 -C {work}/overlay -rf {work}/rootfs.tar ./usr/local/sbin/criu",
            criu = o.criu.display()
        )),
        "append CRIU as /usr/local/sbin/criu to a copy of the cached rootfs",
    );
    p.last_timeout(Duration::from_secs(600));
    let java_home = format!("/usr/lib/jvm/java-{}-openjdk-amd64", o.jdk);
    let label = format!(
        "LABEL io.cracin.base=jdk{} io.cracin.suite={suite} io.cracin.criu=4.2.1",
        o.jdk
    );
    let env_java = format!("ENV JAVA_HOME={java_home}");
    let tar = format!("{work}/rootfs.tar");
    p.step(
        "import",
        e.cmd(&[
            "import",
            "--change",
            "CMD [\"/bin/bash\"]",
            "--change",
            &env_java,
            "--change",
            "ENV LANG=C.UTF-8",
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            &label,
            &tar,
            &tag,
        ]),
        "one layer, fixed configuration",
    );
    p.last_timeout(Duration::from_secs(600));
    p.step(
        "check",
        e.cmd(&[
            "run",
            "--rm",
            "--network=none",
            &tag,
            "sh",
            "-c",
            "java -version && criu --version && setpriv --version",
        ]),
        "the image holds a JVM, CRIU and setpriv",
    );
    p.step(
        "remove-scratch",
        vec!["rm".into(), "-rf".into(), work.clone()],
        "remove the scratch directory",
    );
    p.steps.push(Step {
        name: "remove-scratch".into(),
        command: vec!["rm".into(), "-rf".into(), work],
        why: "remove the scratch directory".into(),
        kind: StepKind::OnFailure,
        timeout: Duration::from_secs(120),
    });
    Ok(p)
}

/// Whether the engine already holds `o.tag()` with the same CRIU as `o.criu` (the first line of
/// `criu --version`), so `cracin base --if-missing` has nothing to do. Any failure (no image, no
/// engine, no CRIU) counts as missing.
pub fn is_current(o: &BaseOptions) -> bool {
    let first_line = |c: crate::os::cmd::Cmd| {
        let out = c.timeout(Duration::from_secs(120)).run_unchecked().ok()?;
        let line = out.stdout.lines().next()?.trim().to_string();
        (out.status.success() && !line.is_empty()).then_some(line)
    };
    let tag = o.tag();
    // `run` of a missing image would try to pull it.
    let present = o
        .engine
        .command(&["image", "inspect", &tag])
        .timeout(Duration::from_secs(60))
        .run_unchecked()
        .is_ok_and(|out| out.status.success());
    if !present {
        return false;
    }
    let Some(host) = first_line(crate::os::cmd::Cmd::new(&o.criu).arg("--version")) else {
        return false;
    };
    let inside = first_line(o.engine.command(&[
        "run",
        "--rm",
        "--network=none",
        &tag,
        "/usr/local/sbin/criu",
        "--version",
    ]));
    inside.as_deref() == Some(host.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_rootfs_skips_debootstrap() {
        let o = BaseOptions::new(21, Engine::podman(), "/tmp/w".into());
        let cold = base_plan(&o, false).unwrap();
        let warm = base_plan(&o, true).unwrap();
        assert!(cold.steps.iter().any(|s| s.name == "debootstrap"));
        assert!(!warm.steps.iter().any(|s| s.name == "debootstrap"));
        assert!(cold
            .render()
            .contains("--include=openjdk-21-jre-headless,util-linux,libbsd0,libgnutls30t64,"));
        assert_eq!(
            o.rootfs_cache().unwrap(),
            PathBuf::from("/var/cache/cracin/rootfs-trixie-jdk21.tar")
        );
    }

    #[test]
    fn jdk17_is_bookworm_and_11_is_refused() {
        let o = BaseOptions::new(17, Engine::docker(), "/tmp/w".into());
        assert_eq!(o.suite().unwrap(), "bookworm");
        assert!(o.packages().unwrap().contains(&"libgnutls30".to_string()));
        assert!(BaseOptions::new(11, Engine::podman(), "/tmp/w".into())
            .suite()
            .is_err());
    }
}
