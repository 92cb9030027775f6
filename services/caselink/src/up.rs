//! `caselink up`: the whole system on one machine.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use caselink_auth::AuthKeys;
use caselink_runtime::IdentityConfig;
use tokio::process::{Child, Command};

/// The department services and their default ports (api.md).
pub(crate) const DEPARTMENTS: [(&str, u16); 6] = [
    ("market", 50051),
    ("police", 50052),
    ("justice", 50053),
    ("court", 50054),
    ("petition", 50055),
    ("hotline", 50056),
];
const LINKAGE_PORT: u16 = 50050;

#[derive(clap::Args)]
pub(crate) struct UpArgs {
    /// Where caselink keeps its local state: secrets, the NATS store, the projections, logs.
    #[arg(long, default_value = ".caselink")]
    data_dir: PathBuf,
    /// Use this NATS server instead of starting one (it must run JetStream with durable sync).
    #[arg(long, env = "NATS_URL")]
    nats_url: Option<String>,
    /// Port of the nats-server that `up` starts.
    #[arg(long, default_value_t = 4222)]
    nats_port: u16,
    /// Added to every service port (linkage 50050, departments 50051-50056), to run beside another instance.
    #[arg(long, default_value_t = 0)]
    port_offset: u16,
    /// Generate and load a small demo population (a few thousand events) once everything is up.
    #[arg(long)]
    demo: bool,
}

struct Running {
    name: String,
    child: Child,
    log: PathBuf,
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let data_dir = absolute(&args.data_dir)?;
    std::fs::create_dir_all(data_dir.join("logs"))
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let mut running: Vec<Running> = Vec::new();
    let result = start_all(&args, &data_dir, &mut running).await;
    if let Err(e) = result {
        stop_all(&mut running).await;
        return Err(e);
    }
    let cancel = caselink_runtime::shutdown_on_signal();
    let exited = tokio::select! {
        _ = cancel.cancelled() => None,
        name = first_exit(&mut running) => Some(name),
    };
    if let Some((name, log)) = &exited {
        eprintln!(
            "\n{name} stopped unexpectedly; last lines of {}:\n{}",
            log.display(),
            tail(log, 20)
        );
    }
    println!("\nstopping…");
    stop_all(&mut running).await;
    println!("stopped.");
    Ok(if exited.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn start_all(
    args: &UpArgs,
    data_dir: &Path,
    running: &mut Vec<Running>,
) -> anyhow::Result<()> {
    let (config, auth_keys) = ensure_config(data_dir)?;
    let nats_url = match &args.nats_url {
        Some(url) => url.clone(),
        None => {
            let (child, log) = start_nats(data_dir, args.nats_port).await?;
            running.push(Running {
                name: "nats-server".into(),
                child,
                log,
            });
            format!("nats://127.0.0.1:{}", args.nats_port)
        }
    };
    let bin_dir = sibling_dir()?;
    let offset = args.port_offset;
    let mut services: Vec<(String, u16, Vec<String>)> = vec![(
        "linkage".into(),
        LINKAGE_PORT + offset,
        vec![
            "--data-dir".into(),
            data_dir.join("linkage").display().to_string(),
        ],
    )];
    services.extend(
        DEPARTMENTS
            .iter()
            .map(|(name, port)| ((*name).to_string(), port + offset, Vec::new())),
    );
    for (name, port, extra) in &services {
        let binary = bin_dir.join(format!("caselink-{name}"));
        if !binary.is_file() {
            bail!(
                "{} is missing: build every service first with `cargo build --release --workspace --bins`",
                binary.display()
            );
        }
        if TcpStream::connect(("127.0.0.1", *port)).is_ok() {
            bail!("port {port} for {name} is already in use: is another caselink running?");
        }
        let log = data_dir.join("logs").join(format!("{name}.log"));
        let mut args: Vec<std::ffi::OsString> = vec![
            "--config".into(),
            config.clone().into(),
            "--nats-url".into(),
            nats_url.clone().into(),
            "--listen".into(),
            format!("127.0.0.1:{port}").into(),
            "--metrics-listen".into(),
            format!("127.0.0.1:{}", metrics_port(*port)).into(),
        ];
        args.extend(extra.iter().map(Into::into));
        let child = spawn_logged(&binary, &args, &log)?;
        running.push(Running {
            name: name.clone(),
            child,
            log,
        });
    }
    for (name, port, _) in &services {
        wait_for_port(*port, Duration::from_secs(60), running)
            .await
            .with_context(|| format!("{name} did not start listening on 127.0.0.1:{port}"))?;
        let service = if name == "linkage" {
            "caselink.v1.Linkage"
        } else {
            "caselink.v1.Ingest"
        };
        wait_for_serving(*port, service, Duration::from_secs(60), running)
            .await
            .with_context(|| format!("{name} did not report SERVING on 127.0.0.1:{port}"))?;
    }
    let tokens = crate::tokens::write_dev_tokens(data_dir, &auth_keys)?;
    print_banner(data_dir, &nats_url, &config, offset, &tokens);
    if args.demo {
        crate::demo::seed(data_dir, offset).await?;
    }
    println!("\nCtrl-C stops everything.");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    Ok(())
}

/// The shared config of the local services: identity secrets and token keys, created fresh on first run.
fn ensure_config(data_dir: &Path) -> anyhow::Result<(PathBuf, AuthKeys)> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Local {
        identity: IdentityConfig,
        #[serde(default)]
        auth: AuthKeys,
    }
    let path = data_dir.join("caselink.toml");
    let mut local = match std::fs::read_to_string(&path) {
        Ok(text) => {
            toml::from_str::<Local>(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        Err(_) => Local {
            identity: IdentityConfig::generate(),
            auth: AuthKeys::default(),
        },
    };
    let fresh = !path.exists() || local.auth.signing_key.is_empty();
    if local.auth.signing_key.is_empty() {
        local.auth = caselink_auth::generate_keys()?;
    }
    if fresh {
        let text = format!(
            "# Local development configuration written by `caselink up`. Keep it private: it holds the identity\n\
             # secrets (person-key HMAC secret, identity sealing key) and the token signing key. Losing the identity\n\
             # secret makes stored person keys unmatchable.\n{}",
            toml::to_string(&local)?
        );
        write_private(&path, &text)?;
    }
    Ok((path, local.auth))
}

#[cfg(unix)]
pub(crate) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("creating {}", path.display()))
}

async fn start_nats(data_dir: &Path, port: u16) -> anyhow::Result<(Child, PathBuf)> {
    if TcpStream::connect(("127.0.0.1", port)).is_ok() {
        bail!("port {port} is already in use: is another nats-server running? Pass --nats-url to use it, or --nats-port");
    }
    let binary = caselink_runtime::find_nats_server()?;
    let dir = data_dir.join("nats");
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("nats.conf");
    // sync_interval: always — an acknowledged publish is on disk before the ack (see deploy/nats-single.conf).
    std::fs::write(
        &conf,
        format!(
            "server_name: caselink-local\nlisten: \"127.0.0.1:{port}\"\nmax_payload: 8MB\njetstream {{\n  store_dir: {:?}\n  sync_interval: always\n}}\n",
            dir.join("jetstream")
        ),
    )?;
    let log = data_dir.join("logs").join("nats-server.log");
    let child = spawn_logged(&binary, &["-c".into(), conf.into()], &log)?;
    let mut probe = vec![Running {
        name: "nats-server".into(),
        child,
        log: log.clone(),
    }];
    wait_for_port(port, Duration::from_secs(20), &mut probe)
        .await
        .context("nats-server did not start")?;
    let Running { child, log, .. } = probe.remove(0);
    Ok((child, log))
}

/// Starts `binary` with its stdout and stderr going to `log`; killed if `up` itself dies.
fn spawn_logged(binary: &Path, args: &[std::ffi::OsString], log: &Path) -> anyhow::Result<Child> {
    let log_file =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

/// The folder holding this executable (and the service binaries built beside it).
fn sibling_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the caselink executable")?;
    Ok(exe.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// An error naming the first child that has exited, with the end of its log.
fn fail_if_exited(running: &mut [Running]) -> anyhow::Result<()> {
    for r in running.iter_mut() {
        if let Ok(Some(status)) = r.child.try_wait() {
            bail!(
                "{} exited with {status}; last lines of {}:\n{}",
                r.name,
                r.log.display(),
                tail(&r.log, 20)
            );
        }
    }
    Ok(())
}

async fn wait_for_port(port: u16, limit: Duration, running: &mut [Running]) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        fail_if_exited(running)?;
        if Instant::now() > deadline {
            bail!("timed out after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the standard gRPC health service until `service` is SERVING (ingest: once the events stream exists).
async fn wait_for_serving(
    port: u16,
    service: &str,
    limit: Duration,
    running: &mut [Running],
) -> anyhow::Result<()> {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{health_check_response::ServingStatus, HealthCheckRequest};
    let deadline = Instant::now() + limit;
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?;
    loop {
        if let Ok(channel) = endpoint.connect().await {
            let request = HealthCheckRequest {
                service: service.to_string(),
            };
            if let Ok(answer) = HealthClient::new(channel).check(request).await {
                if answer.into_inner().status == ServingStatus::Serving as i32 {
                    return Ok(());
                }
            }
        }
        fail_if_exited(running)?;
        if Instant::now() > deadline {
            bail!("timed out after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn first_exit(running: &mut [Running]) -> (String, PathBuf) {
    loop {
        for r in running.iter_mut() {
            if let Ok(Some(_)) = r.child.try_wait() {
                return (r.name.clone(), r.log.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SIGTERM to the services first, then to nats-server; SIGKILL whatever has not stopped in 10 s.
async fn stop_all(running: &mut Vec<Running>) {
    let (nats, services): (Vec<Running>, Vec<Running>) =
        running.drain(..).partition(|r| r.name == "nats-server");
    for mut group in [services, nats] {
        for r in &group {
            if let Some(pid) = r.child.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        for r in &mut group {
            if tokio::time::timeout(Duration::from_secs(10), r.child.wait())
                .await
                .is_err()
            {
                eprintln!("{} did not stop in 10 s; killing it", r.name);
                let _ = r.child.kill().await;
            }
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}

/// Where a service started by `up` serves `GET /metrics`: its gRPC port + 1000 (linkage 51050, market 51051, …).
pub(crate) fn metrics_port(grpc_port: u16) -> u16 {
    grpc_port.saturating_add(1000)
}

fn print_banner(
    data_dir: &Path,
    nats_url: &str,
    config: &Path,
    offset: u16,
    tokens: &std::collections::BTreeMap<String, String>,
) {
    println!("caselink is up.\n");
    println!(
        "  linkage  (Linkage)     127.0.0.1:{}",
        LINKAGE_PORT + offset
    );
    for (name, port) in DEPARTMENTS {
        println!("  {name:<8} (Ingest)      127.0.0.1:{}", port + offset);
    }
    println!("  NATS                   {nats_url}");
    println!(
        "  metrics                http://127.0.0.1:{}/metrics (linkage; departments on {}–{})",
        metrics_port(LINKAGE_PORT + offset),
        metrics_port(DEPARTMENTS[0].1 + offset),
        metrics_port(DEPARTMENTS[DEPARTMENTS.len() - 1].1 + offset)
    );
    println!();
    println!("  data       {}", data_dir.display());
    println!("  logs       {}", data_dir.join("logs").display());
    println!(
        "  secrets    {} (identity keys, generated for development; keep private)",
        config.display()
    );
    println!(
        "  tokens     {} (development, 30 days; the client commands use them when no --token is given)",
        data_dir.join(crate::tokens::DEV_TOKENS).display()
    );
    println!("\nDevelopment credentials (bearer tokens; send as `authorization: Bearer <token>`):");
    for (key, token) in tokens {
        println!("  {key:<16} {token}");
    }
    println!();
    println!("Try:");
    println!("  caselink submit --department market events.jsonl");
    println!("  caselink timeline --id-number <ID number> --purpose \"case review\"");
    println!(
        "  grpcurl -plaintext 127.0.0.1:{} list",
        LINKAGE_PORT + offset
    );
}

/// `caselink rebuild`: runs `caselink-linkage rebuild` on `up`'s data directory.
pub(crate) async fn rebuild(data_dir: &Path) -> anyhow::Result<ExitCode> {
    let data_dir = absolute(data_dir)?;
    let config = data_dir.join("caselink.toml");
    if !config.is_file() {
        bail!(
            "{} not found: run `caselink up` once first (or pass --data-dir)",
            config.display()
        );
    }
    let binary = sibling_dir()?.join("caselink-linkage");
    let status = Command::new(&binary)
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(data_dir.join("linkage"))
        .arg("rebuild")
        .status()
        .await
        .with_context(|| format!("running {}", binary.display()))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
