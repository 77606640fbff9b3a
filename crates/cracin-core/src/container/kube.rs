//! Kubernetes manifests for an image `cracin build` made (`cracin kube IMAGE --out DIR`): a
//! Deployment and a Service, and for the plain-CRIU runtime the seccomp profile its restore
//! needs, under `seccomp/` as a kubelet expects localhost profiles. Everything comes from the
//! image itself: its USER, the `io.cracin.*` labels `cracin build` sets at commit (runtime,
//! port, readiness path, fallback) and the checkpoint's recorded manifest (`cracin.json`: the
//! dumped memory gives the memory request, the cold start time sizes the startup probe for a
//! fallback). `inspect` reads those facts through the engine; `generate` is pure, so snapshot
//! tests pin the YAML for every runtime.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::engine::Engine;
use super::plan::GeneratedFile;
use super::runtime::Runtime;
use super::runtime::CHECKPOINT_DIR;
use super::user::RunUser;
use super::{seccomp, security, BuildOptions};
use crate::error::{Error, Result};
use crate::os::cmd::Cmd;

/// Label names `cracin build` puts on the restore image.
pub const LABEL_RUNTIME: &str = "io.cracin.runtime";
pub const LABEL_PORT: &str = "io.cracin.port";
pub const LABEL_READY: &str = "io.cracin.ready-path";
pub const LABEL_FALLBACK: &str = "io.cracin.fallback";

/// The `--change LABEL …` values of the restore image's commit.
pub fn labels(o: &BuildOptions) -> Vec<String> {
    let mut v = vec![
        format!("LABEL {LABEL_RUNTIME}={}", o.runtime.name()),
        format!("LABEL {LABEL_PORT}={}", o.app_port()),
        format!("LABEL {LABEL_FALLBACK}={}", o.fallback),
    ];
    if let Some(path) = o.ready.as_deref().and_then(http_path) {
        v.push(format!(
            "LABEL {LABEL_READY}={}",
            serde_json::to_string(&path).unwrap_or_default()
        ));
    }
    v
}

/// The path (with query) of an http:// readiness URL; `None` for tcp:// and https://.
fn http_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    Some(
        rest.find('/')
            .map(|i| rest[i..].to_string())
            .unwrap_or("/".into()),
    )
}

/// What `cracin kube` learns from an image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageFacts {
    /// `.Config.User`.
    pub user: String,
    pub labels: BTreeMap<String, String>,
    /// `.Config.Cmd`.
    pub cmd: Vec<String>,
    /// `.Config.ExposedPorts` (tcp).
    pub exposed: Vec<u16>,
    /// From the checkpoint's cracin.json (plain-CRIU images only).
    pub pages_bytes: Option<u64>,
    pub launch_to_ready_ms: Option<f64>,
}

impl ImageFacts {
    /// Parses `ENGINE image inspect --format '{{json .Config}}'` (podman and docker agree).
    pub fn from_config_json(s: &str) -> Option<ImageFacts> {
        let v: serde_json::Value = serde_json::from_str(s.trim()).ok()?;
        let strings = |x: &serde_json::Value| -> Vec<String> {
            x.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut exposed: Vec<u16> = v["ExposedPorts"]
            .as_object()
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.strip_suffix("/tcp").unwrap_or(k).parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        exposed.sort_unstable();
        Some(ImageFacts {
            user: v["User"].as_str().unwrap_or("").to_string(),
            labels: v["Labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
            cmd: strings(&v["Cmd"]),
            exposed,
            pages_bytes: None,
            launch_to_ready_ms: None,
        })
    }

    /// The runtime of an image without cracin's labels (made by hand from `cracin init`, or a
    /// CRaC Warp image, which the build does not commit); a label, when present, wins.
    pub fn assume_runtime(&mut self, rt: Runtime) {
        self.labels
            .entry(LABEL_RUNTIME.to_string())
            .or_insert_with(|| rt.name().to_string());
    }

    /// Adds the footprint recorded in the checkpoint's cracin.json.
    pub fn add_manifest(&mut self, json: &str) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(json) {
            self.pages_bytes = v["sizes"]["pages_bytes"].as_u64().filter(|b| *b > 0);
            self.launch_to_ready_ms = v["timings_ms"]["launch_to_ready"].as_f64();
        }
    }
}

/// An engine command (`Engine::command`) with kube's timeout.
fn engine_cmd(engine: &Engine, args: &[&str]) -> Cmd {
    engine.command(args).timeout(Duration::from_secs(120))
}

/// Reads an image's facts through the engine (the image must be in its store); `runtime` is
/// assumed when the image carries no runtime label (`ImageFacts::assume_runtime`).
pub fn inspect(engine: &Engine, image: &str, runtime: Option<Runtime>) -> Result<ImageFacts> {
    let out = engine_cmd(
        engine,
        &["image", "inspect", "--format", "{{json .Config}}", image],
    )
    .run()
    .map_err(|e| match e {
        Error::Command { log_tail, .. } => Error::usage(
            format!(
                "cannot inspect image {image} in {}: {}",
                engine.name(),
                log_tail.lines().last().unwrap_or("").trim()
            ),
            "build it with `cracin build` (or load it into this engine) first, or pick the engine with --engine",
        ),
        other => other,
    })?;
    let mut f = ImageFacts::from_config_json(&out.stdout).ok_or_else(|| {
        Error::usage(
            format!("{} printed no image config for {image}", engine.name()),
            "check the image name",
        )
    })?;
    if let Some(rt) = runtime {
        f.assume_runtime(rt);
    }
    if f.labels.get(LABEL_RUNTIME).map(String::as_str) == Some("criu") {
        // The checkpoint's own record, read as the image's user in a throw-away container.
        let manifest = format!("{CHECKPOINT_DIR}/{}", crate::ckpt::dir::MANIFEST);
        let out = engine_cmd(
            engine,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--entrypoint",
                "cat",
                image,
                &manifest,
            ],
        )
        .run_unchecked()?;
        if out.status.success() {
            f.add_manifest(&out.stdout);
        }
    }
    Ok(f)
}

/// Everything the manifests depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeOptions {
    pub image: String,
    /// Deployment, Service and container name.
    pub name: String,
    pub runtime: Runtime,
    /// The user the pod runs as (`None`: the image runs as root, only the seed's CRaC images).
    pub user: Option<RunUser>,
    pub port: u16,
    /// HTTP readiness path; `None` probes the TCP port.
    pub ready_path: Option<String>,
    /// Memory the restored JVM touches (the checkpoint's dumped pages).
    pub pages_bytes: Option<u64>,
    /// The application's cold start, for a startup probe that lets a fallback finish.
    pub cold_start_ms: Option<f64>,
    /// The image's CMD starts the application cold when the restore fails.
    pub fallback: bool,
    /// The restore command without the fallback (`--no-fallback` on an image that has one).
    pub command: Option<Vec<String>>,
    /// A hostPort for single-node use (`podman kube play` has no --publish).
    pub host_port: Option<u16>,
    pub replicas: u32,
}

impl KubeOptions {
    /// The options an image's facts give; `user` and `no_fallback` override them.
    pub fn from_facts(
        image: &str,
        f: &ImageFacts,
        user: Option<RunUser>,
        no_fallback: bool,
    ) -> Result<KubeOptions> {
        let runtime = match f.labels.get(LABEL_RUNTIME) {
            Some(r) => Runtime::parse(r)?,
            None => {
                return Err(Error::usage(
                    format!("image {image} has no {LABEL_RUNTIME} label: it was not made by this cracin build"),
                    "build it with `cracin build` (which labels runtime, port and readiness path), or say how it restores with --runtime criu|crac|openj9",
                ))
            }
        };
        let port = f
            .labels
            .get(LABEL_PORT)
            .and_then(|p| p.parse().ok())
            .or_else(|| f.exposed.first().copied())
            .unwrap_or(8080);
        let user = match user.or_else(|| RunUser::from_image(&f.user)) {
            Some(u) if u.uid().is_none() || (u.group.is_some() && u.gid().is_none()) => {
                return Err(Error::usage(
                    format!(
                        "image {image} runs as `{}`, a name: Kubernetes' runAsUser needs a number",
                        u.spec()
                    ),
                    "give the numeric user with --user UID[:GID]",
                ))
            }
            other => other,
        };
        if user.is_none() && runtime == Runtime::Criu {
            return Err(Error::usage(
                format!("image {image} runs as root"),
                "rebuild it with this cracin (images run as --user, 1001 by default) or give --user UID[:GID]",
            ));
        }
        let fallback = f.labels.get(LABEL_FALLBACK).map(String::as_str) == Some("true");
        let command = if no_fallback && fallback {
            match runtime.without_fallback(&f.cmd) {
                Some(cmd) => Some(cmd),
                None => {
                    return Err(Error::usage(
                        format!(
                            "--no-fallback is not supported for {} images",
                            runtime.name()
                        ),
                        "rebuild the image with `cracin build --no-fallback`",
                    ))
                }
            }
        } else {
            None
        };
        Ok(KubeOptions {
            image: image.to_string(),
            name: name_of(image),
            runtime,
            user,
            port,
            ready_path: f.labels.get(LABEL_READY).cloned(),
            pages_bytes: f.pages_bytes,
            cold_start_ms: f.launch_to_ready_ms,
            fallback: fallback && !no_fallback,
            command,
            host_port: None,
            replicas: 1,
        })
    }
}

/// A DNS-1123 name from an image reference: `localhost/shop/app:instant` → `app`.
pub fn name_of(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let repo = last.split([':', '@']).next().unwrap_or(last);
    let mut n: String = repo
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    n = n.trim_matches('-').chars().take(50).collect();
    let n = n.trim_end_matches('-').to_string();
    if n.is_empty() {
        "cracin-app".into()
    } else {
        n
    }
}

/// The memory request: the restored JVM's dumped pages plus a quarter and 32 MiB for what grows
/// after the restore (thread stacks, new allocations), in whole MiB.
pub fn memory_request_mib(pages_bytes: u64) -> u64 {
    let mib = 1024 * 1024;
    (pages_bytes + pages_bytes / 4 + 32 * mib).div_ceil(mib)
}

/// Seconds the startup probe allows: a restore answers within seconds; with a fallback the
/// cold start must fit too (three times the recorded cold start, at least 60 s).
fn startup_seconds(o: &KubeOptions) -> u64 {
    if !o.fallback {
        return 30;
    }
    let cold = o.cold_start_ms.unwrap_or(20_000.0) / 1000.0;
    ((cold * 3.0).ceil() as u64).max(60)
}

fn probe(o: &KubeOptions, indent: &str) -> String {
    match &o.ready_path {
        Some(p) => format!(
            "{indent}httpGet:\n{indent}  path: {}\n{indent}  port: {}\n",
            serde_json::to_string(p).unwrap_or_default(),
            o.port
        ),
        None => format!("{indent}tcpSocket:\n{indent}  port: {}\n", o.port),
    }
}

/// deployment.yaml, service.yaml and (plain CRIU) seccomp/PROFILE.json.
pub fn generate(o: &KubeOptions) -> Vec<GeneratedFile> {
    let mut files = vec![
        GeneratedFile {
            name: "deployment.yaml".into(),
            content: deployment(o),
            mode: 0o644,
        },
        GeneratedFile {
            name: "service.yaml".into(),
            content: service(o),
            mode: 0o644,
        },
    ];
    if security::uses_generated_profile(o.runtime) {
        files.push(GeneratedFile {
            name: format!("seccomp/{}", seccomp::file_name()),
            content: seccomp::profile(),
            mode: 0o644,
        });
    }
    files
}

fn deployment(o: &KubeOptions) -> String {
    let n = &o.name;
    let mut s = format!(
        "# Generated by cracin kube for {image} (runtime {rt}). docs/kube.md has the cluster recipe.\n",
        image = o.image,
        rt = o.runtime.name()
    );
    if o.runtime != Runtime::Criu {
        let _ = writeln!(
            s,
            "# The {} runtime's settings follow the vendor's recipe and were never run by cracin's tests.",
            o.runtime.name()
        );
    }
    let profile = seccomp::file_name();
    let _ = write!(
        s,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {n}\n  labels:\n    app.kubernetes.io/name: {n}\n    app.kubernetes.io/managed-by: cracin\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: {n}\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: {n}\n",
        replicas = o.replicas
    );
    let generated = security::uses_generated_profile(o.runtime);
    if generated {
        let _ = write!(
            s,
            "      annotations:\n        # podman 4.3's `kube play` reads the profile from this annotation; kubelets read\n        # securityContext.seccompProfile below.\n        container.seccomp.security.alpha.kubernetes.io/{n}: localhost/{profile}\n"
        );
    }
    s.push_str("    spec:\n      # SIGTERM reaches the JVM through cracin (PID 1); it stops within seconds.\n      terminationGracePeriodSeconds: 10\n      securityContext:\n");
    match &o.user {
        Some(u) => {
            let _ = writeln!(s, "        runAsNonRoot: true\n        runAsUser: {}", u.user);
            if let Some(g) = &u.group {
                let _ = writeln!(s, "        runAsGroup: {g}");
            }
        }
        None => s.push_str("        # This runtime's image runs as root (its criu is setuid root).\n        runAsNonRoot: false\n"),
    }
    s.push_str("        seccompProfile:\n");
    s.push_str(&o.runtime.kube_seccomp(&profile));
    let _ = write!(
        s,
        "      containers:\n      - name: {n}\n        image: {image}\n        imagePullPolicy: IfNotPresent\n",
        image = o.image
    );
    if let Some(cmd) = &o.command {
        let _ = writeln!(
            s,
            "        # The image's restore command without its cold-start fallback (--no-fallback).\n        command: {}",
            super::runtime::json_array(cmd)
        );
    }
    let _ = write!(
        s,
        "        ports:\n        - name: app\n          containerPort: {port}\n          protocol: TCP\n",
        port = o.port
    );
    if let Some(h) = o.host_port {
        let _ = writeln!(s, "          hostPort: {h}");
    }
    let (escalation, why) = o.runtime.kube_privilege_escalation();
    let caps = security::restore_capabilities(o.runtime).join(", ");
    let _ = write!(
        s,
        "        securityContext:\n          # {why}.\n          allowPrivilegeEscalation: {escalation}\n          capabilities:\n            drop: [ALL]\n            add: [{caps}]\n"
    );
    s.push_str("        resources:\n");
    match o.pages_bytes {
        Some(b) => {
            let _ = write!(
                s,
                "          # The checkpoint's memory ({} MiB of dumped pages) plus a quarter and 32 MiB; CPU was\n          # not measured: set it from your load.\n          requests:\n            memory: {}Mi\n",
                b.div_ceil(1024 * 1024),
                memory_request_mib(b)
            );
        }
        None => s.push_str("          # No recorded footprint in this image: set requests from your measurements.\n          requests: {}\n"),
    }
    let startup = startup_seconds(o);
    let _ = write!(
        s,
        "        # A restore answers within a second or two; checked every second. {why}\n        startupProbe:\n{probe}          periodSeconds: 1\n          timeoutSeconds: 1\n          failureThreshold: {startup}\n        readinessProbe:\n{probe}          periodSeconds: 5\n          timeoutSeconds: 1\n          failureThreshold: 3\n",
        why = if o.fallback {
            format!(
                "The image falls back to a cold start\n        # when the checkpoint cannot be restored{}: the probe allows {startup} s for that.",
                o.cold_start_ms
                    .map(|ms| format!(" (recorded cold start {:.1} s)", ms / 1000.0))
                    .unwrap_or_default()
            )
        } else {
            "No fallback: a failed restore\n        # fails the pod.".into()
        },
        probe = probe(o, "          ")
    );
    s
}

fn service(o: &KubeOptions) -> String {
    format!(
        "# Generated by cracin kube for {image}.\napiVersion: v1\nkind: Service\nmetadata:\n  name: {n}\n  labels:\n    app.kubernetes.io/name: {n}\n    app.kubernetes.io/managed-by: cracin\nspec:\n  selector:\n    app.kubernetes.io/name: {n}\n  ports:\n  - name: app\n    port: {port}\n    targetPort: app\n    protocol: TCP\n",
        image = o.image,
        n = o.name,
        port = o.port
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"User":"1001:1001","ExposedPorts":{"8080/tcp":{}},"Cmd":["/usr/local/bin/cracin","restore","/app/checkpoint","--in-container","--foreground","--inherit-stdio","--fallback","--","java","-jar","/app/app.jar"],"Labels":{"io.cracin.runtime":"criu","io.cracin.port":"8080","io.cracin.fallback":"true","io.cracin.ready-path":"/health"}}"#;

    #[test]
    fn facts_come_from_the_config_and_the_manifest() {
        let mut f = ImageFacts::from_config_json(CONFIG).unwrap();
        assert_eq!(f.user, "1001:1001");
        assert_eq!(f.exposed, [8080]);
        f.add_manifest(
            r#"{"sizes":{"pages_bytes":104857600},"timings_ms":{"launch_to_ready":1500.0}}"#,
        );
        assert_eq!(f.pages_bytes, Some(100 * 1024 * 1024));
        let o = KubeOptions::from_facts("localhost/shop/my_app:instant", &f, None, false).unwrap();
        assert_eq!(o.name, "my-app");
        assert_eq!(o.user.as_ref().unwrap().uid(), Some(1001));
        assert!(o.fallback && o.command.is_none());
        assert_eq!(memory_request_mib(100 * 1024 * 1024), 157);
        let nf = KubeOptions::from_facts("x", &f, None, true).unwrap();
        assert_eq!(nf.command.unwrap().last().unwrap(), "--inherit-stdio");
        assert!(!nf.fallback);
    }

    #[test]
    fn images_cracin_did_not_make_or_root_images_are_refused() {
        let f = ImageFacts::from_config_json(r#"{"User":"","Labels":null}"#).unwrap();
        assert!(KubeOptions::from_facts("x", &f, None, false).is_err());
        let mut f = ImageFacts::from_config_json(CONFIG).unwrap();
        f.user = "root".into();
        assert!(KubeOptions::from_facts("x", &f, None, false).is_err());
        f.user = "app".into();
        assert!(KubeOptions::from_facts("x", &f, None, false).is_err());
        let u = RunUser::parse("2000").unwrap();
        assert!(KubeOptions::from_facts("x", &f, Some(u), false).is_ok());
    }

    #[test]
    fn an_unlabelled_image_needs_its_runtime_said() {
        let mut f =
            ImageFacts::from_config_json(r#"{"User":"1001","ExposedPorts":{"9090/tcp":{}}}"#)
                .unwrap();
        assert!(KubeOptions::from_facts("x", &f, None, false).is_err());
        f.assume_runtime(Runtime::Crac);
        let o = KubeOptions::from_facts("x", &f, None, false).unwrap();
        assert_eq!(
            (o.runtime, o.port, o.fallback),
            (Runtime::Crac, 9090, false)
        );
        let mut labelled = ImageFacts::from_config_json(CONFIG).unwrap();
        labelled.assume_runtime(Runtime::Openj9);
        assert_eq!(labelled.labels[LABEL_RUNTIME], "criu");
    }

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(name_of("localhost/cracin-e2e-x:instant"), "cracin-e2e-x");
        assert_eq!(name_of("reg.io:5000/a/B_c@sha256:00"), "b-c");
        assert_eq!(name_of("___"), "cracin-app");
    }
}
