//! `cracin base`: a base image with a headless OpenJDK and CRIU >= 4.2, made offline from Debian
//! packages (debootstrap) and imported into podman or docker. Runs the core's plan
//! (`container::base`); scripts/base-image.sh and scripts/setup.sh call it.
use std::path::PathBuf;

use cracin_core::container;
use cracin_core::container::base::{base_plan, BaseOptions};
use cracin_core::{Error, Result};

use crate::render::Steps;

/// Build a base image (Debian + OpenJDK JRE + CRIU 4.2.1) without any registry.
///
/// --jdk 17 uses Debian bookworm, 21 and 25 use trixie. The debootstrapped rootfs is cached in
/// /var/cache/cracin, so later runs only add CRIU and import (seconds). Needs root and
/// debootstrap (scripts/setup-containers.sh installs it).
///
/// Example: cracin base --jdk 21 --engine podman
#[derive(clap::Args)]
pub struct Args {
    /// JDK version: 17, 21 or 25.
    #[arg(long, value_name = "N", value_parser = super::ranges::count32::<17, 25>)]
    pub jdk: u32,

    /// podman or docker.
    #[arg(long, default_value = "podman", value_name = "ENGINE")]
    pub engine: String,

    /// The engine's configuration instead of its own: a containers.conf for podman, a client
    /// configuration directory (DOCKER_CONFIG) for docker.
    #[arg(long, value_name = "PATH")]
    pub engine_config: Option<PathBuf>,

    /// Image name (default localhost/cracin-base:jdkN).
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,

    /// The CRIU >= 4.2 binary to put into the image.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/opt/cracin/criu-4.2.1/criu"
    )]
    pub criu: PathBuf,

    /// Debootstrap again even if a cached rootfs exists.
    #[arg(long)]
    pub rebuild: bool,

    /// Do nothing when the engine already holds the image with the same CRIU (what
    /// scripts/setup.sh wants when it runs again); --rebuild wins.
    #[arg(long)]
    pub if_missing: bool,

    /// Print the commands and stop.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let engine = container::engine::choose_here(&a.engine, a.engine_config.as_deref())?.engine;
    // mkdtemp: a fresh 0700 directory no other user can have prepared (root copies, chroots
    // into and tars what is in it). The plan removes it at the end; the guard also on failure.
    let tmp = if a.dry_run {
        None
    } else {
        Some(cracin_core::os::tempdir::TempDir::new("cracin-base")?)
    };
    let work = tmp
        .as_ref()
        .map(|t| t.path().to_path_buf())
        .unwrap_or_else(|| std::env::temp_dir().join("cracin-base-XXXXXX"));
    let mut o = BaseOptions::new(a.jdk, engine, work.clone());
    o.tag = a.tag.clone();
    o.criu = a.criu.clone();
    o.rebuild = a.rebuild;
    if a.if_missing && !a.rebuild && !a.dry_run && container::base::is_current(&o) {
        eprintln!(
            "cracin base: {} on {} already holds this CRIU (--rebuild to make it again)",
            o.tag(),
            o.engine.name()
        );
        println!("{}", o.tag());
        return Ok(0);
    }
    let cached = o.rootfs_cache()?.is_file();
    let plan = base_plan(&o, cached)?;
    if a.dry_run {
        print!("{}", plan.render());
        return Ok(0);
    }
    if !cracin_core::os::sysinfo::is_root() {
        return Err(Error::NotRoot {
            action: "debootstrap and import a base image".into(),
        });
    }
    if !cracin_core::os::cmd::is_executable(&o.criu) {
        return Err(Error::CriuNotFound {
            searched: o.criu.display().to_string(),
        });
    }
    let logs = cracin_core::os::cmd::private_tmp_dir("cracin-base-logs")?;
    container::execute(&plan, &logs, &Steps::new(false))?;
    let _ = std::fs::remove_dir_all(&logs);
    drop(tmp);
    println!("{}", o.tag());
    Ok(0)
}
