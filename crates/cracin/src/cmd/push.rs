//! `cracin push`: send an image (usually one made by `cracin build`) to an OCI registry.
use cracin_core::container::{self, push, Engine};
use cracin_core::Result;

/// Send an image to an OCI registry, e.g. `cracin push myapp:instant --to
/// registry.example.com/team/myapp:1`.
///
/// podman pushes with --tls-verify (off by default only for a registry on loopback: 127.0.0.1,
/// localhost, [::1]); docker tags the image with the registry's name, pushes it and drops that
/// name again, and takes TLS from its daemon (insecure-registries; loopback is insecure by
/// default). A restore image needs the same run flags wherever it is pulled (see
/// docs/registry.md).
#[derive(clap::Args)]
pub struct Args {
    /// The local image to send.
    #[arg(value_name = "IMAGE")]
    pub image: String,

    /// Where it goes: REGISTRY/NAME[:TAG] (default: IMAGE itself, when it names a registry).
    #[arg(long, value_name = "REF")]
    pub to: Option<String>,

    /// Container engine: podman (with /opt/cracin/containers.conf) or docker (cracin's Docker 26).
    #[arg(long, default_value = "podman", value_name = "ENGINE")]
    pub engine: String,

    /// Verify the registry's TLS certificate (default: true, false for a loopback registry).
    #[arg(long, value_name = "BOOL")]
    pub tls_verify: Option<bool>,

    /// Print the commands and stop.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let engine = Engine::parse(&a.engine)?;
    let spec = push::PushSpec::new(a.to.as_deref().unwrap_or(&a.image), a.tls_verify)?;
    let plan = push::push_plan(&engine, &a.image, &spec);
    if a.dry_run {
        print!("{}", plan.render());
        return Ok(0);
    }
    let log_dir = cracin_core::os::cmd::private_tmp_dir("cracin-push")?;
    // On failure the error names the step's log in `log_dir`, which is kept.
    container::execute(&plan, &log_dir, &crate::render::Steps::new(false))?;
    let _ = std::fs::remove_dir_all(&log_dir);
    println!("pushed {} to {}", a.image, spec.dest);
    Ok(0)
}
