//! `cracin kube`: Kubernetes manifests (Deployment, Service, seccomp profile) for an image made
//! by `cracin build`, from what the image records (`container::kube`).
use std::path::PathBuf;

use cracin_core::container::{self, kube, Engine, RunUser};
use cracin_core::Result;

/// Write a Kubernetes Deployment and Service for an image made by `cracin build`.
///
/// Reads the image's user, its io.cracin.* labels (runtime, port, readiness path, fallback) and
/// the checkpoint's recorded footprint, and writes DIR/deployment.yaml, DIR/service.yaml and,
/// for the criu runtime, DIR/seccomp/cracin-restore-HASH.json: the securityContext drops every
/// capability but CHECKPOINT_RESTORE, runs as the image's non-root user without privilege
/// escalation, under cracin's seccomp profile; probes are tuned for a restore (and for the
/// cold-start fallback); the memory request comes from the checkpoint. Run on podman with
/// `podman kube play --seccomp-profile-root DIR/seccomp DIR/deployment.yaml`; the cluster
/// recipe is in docs/kube.md. The crac and openj9 settings were never run here.
///
/// Example: cracin kube localhost/myapp:instant --out k8s/
#[derive(clap::Args)]
pub struct Args {
    /// The image (in the engine's store).
    #[arg(value_name = "IMAGE")]
    pub image: String,

    /// Where to write the files.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Container engine that holds the image: podman or docker.
    #[arg(long, default_value = "podman", value_name = "ENGINE")]
    pub engine: String,

    /// The user the pod runs as, UID[:GID] (default: the image's USER).
    #[arg(long, value_name = "UID[:GID]")]
    pub user: Option<String>,

    /// Name of the Deployment, Service and container (default: from the image name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Also bind the port on the node (single-node use, e.g. `podman kube play`).
    #[arg(long, value_name = "PORT")]
    pub host_port: Option<u16>,

    /// How many pods.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub replicas: u32,

    /// How the image restores, for an image without cracin's labels (made by hand from `cracin
    /// init`, or a CRaC Warp image): criu, crac or openj9.
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,

    /// Fail the pod when the restore fails instead of starting the application cold.
    #[arg(long)]
    pub no_fallback: bool,

    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let engine = Engine::parse(&a.engine)?;
    let user = a.user.as_deref().map(RunUser::parse).transpose()?;
    let runtime = a
        .runtime
        .as_deref()
        .map(container::Runtime::parse)
        .transpose()?;
    let facts = kube::inspect(&engine, &a.image, runtime)?;
    let mut o = kube::KubeOptions::from_facts(&a.image, &facts, user, a.no_fallback)?;
    if let Some(n) = &a.name {
        o.name = kube::name_of(n);
    }
    o.host_port = a.host_port;
    o.replicas = a.replicas;
    let files = kube::generate(&o);
    for p in container::write_files(&a.out, &files, a.force)? {
        println!("wrote {}", p.display());
    }
    if o.runtime != container::Runtime::Criu {
        println!("note: the {} runtime's settings follow the vendor's recipe; cracin's tests never ran them with such a JDK", o.runtime.name());
    }
    println!(
        "podman: podman kube play --seccomp-profile-root {}/seccomp {}/deployment.yaml",
        a.out.display(),
        a.out.display()
    );
    println!("a cluster: copy seccomp/*.json to /var/lib/kubelet/seccomp/ on every node, then kubectl apply -f {} (docs/kube.md)", a.out.display());
    Ok(0)
}
