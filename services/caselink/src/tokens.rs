//! Tokens for people and systems: `caselink token issue`, the development tokens `caselink up` writes, and how the
//! client commands find the token to send.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use caselink_auth::{AuthKeys, Role, TokenIssuer};

/// Where `caselink up` keeps the development tokens, one per role (and per department for writers).
pub(crate) const DEV_TOKENS: &str = "dev-tokens.json";

#[derive(clap::Args)]
pub(crate) struct IssueArgs {
    /// writer, analyst, determiner, police, agency_head, auditor.
    #[arg(long)]
    role: String,
    /// Who holds it (staff id or system name); recorded with everything they do.
    #[arg(long, default_value = "cli")]
    sub: String,
    /// Writers and agency heads: their department (market, police, justice, court, petition, hotline).
    #[arg(long)]
    department: Option<String>,
    /// Region prefixes in scope (repeat), e.g. --region 4306.
    #[arg(long = "region")]
    regions: Vec<String>,
    /// Police: the unit code.
    #[arg(long)]
    unit: Option<String>,
    /// Lifetime: 30d, 12h, 45m.
    #[arg(long, default_value = "30d")]
    ttl: String,
    /// Configuration holding `[auth] signing_key` (default: the one `caselink up` writes).
    #[arg(long, default_value = ".caselink/caselink.toml")]
    config: PathBuf,
}

/// Token options shared by the client commands.
#[derive(clap::Args, Clone)]
pub(crate) struct TokenArgs {
    /// Bearer token (default: $CASELINK_TOKEN, else the development token `caselink up` wrote).
    #[arg(long, global = true, env = "CASELINK_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// `caselink up`'s data directory, where development tokens are looked up.
    #[arg(long, global = true, default_value = ".caselink")]
    pub(crate) data_dir: PathBuf,
    /// PEM CA that signed the server's certificate (turns TLS on; use an https:// address).
    #[arg(long, global = true, env = "CASELINK_TLS_CA")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with --tls-key).
    #[arg(long, global = true, env = "CASELINK_TLS_CERT")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM client key for mutual TLS.
    #[arg(long, global = true, env = "CASELINK_TLS_KEY")]
    pub(crate) tls_key: Option<PathBuf>,
}

impl TokenArgs {
    /// The arguments of a local development run: dev tokens from `data_dir`, plaintext.
    pub(crate) fn local(data_dir: &Path) -> TokenArgs {
        TokenArgs {
            token: None,
            data_dir: data_dir.to_path_buf(),
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        }
    }

    /// A `Linkage` client at `addr` carrying the analyst token (or the one given) and, for reads of persons' data, the
    /// stated purpose. Answers of up to 64 MiB are accepted (a long timeline page).
    pub(crate) async fn linkage(
        &self,
        addr: &str,
        purpose: Option<&str>,
    ) -> anyhow::Result<
        caselink_proto::v1::linkage_client::LinkageClient<
            tonic::service::interceptor::InterceptedService<
                tonic::transport::Channel,
                impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone,
            >,
        >,
    > {
        let token = self.for_key("analyst")?;
        let channel = self.connect(addr).await.context("the linkage service")?;
        Ok(
            caselink_proto::v1::linkage_client::LinkageClient::with_interceptor(
                channel,
                bearer(&token, purpose)?,
            )
            .max_decoding_message_size(64 * 1024 * 1024),
        )
    }

    /// Connects to `addr`, with TLS (and a client certificate) when configured.
    pub(crate) async fn connect(&self, addr: &str) -> anyhow::Result<tonic::transport::Channel> {
        use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
        let mut endpoint =
            Endpoint::from_shared(addr.to_string()).with_context(|| format!("address {addr:?}"))?;
        if let Some(ca) = &self.tls_ca {
            let read =
                |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
            let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
            match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => {
                    tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?))
                }
                (None, None) => {}
                _ => bail!("--tls-cert and --tls-key go together"),
            }
            endpoint = endpoint.tls_config(tls)?;
        }
        endpoint
            .connect()
            .await
            .with_context(|| format!("connecting to {addr}"))
    }

    /// The token to send for `key` (e.g. `writer:market`, `analyst`).
    pub(crate) fn for_key(&self, key: &str) -> anyhow::Result<String> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        let path = self.data_dir.join(DEV_TOKENS);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("no token: pass --token or set CASELINK_TOKEN (or run `caselink up`, which writes {})", path.display())
        })?;
        let tokens: BTreeMap<String, String> = serde_json::from_str(&text)?;
        tokens
            .get(key)
            .cloned()
            .with_context(|| format!("{} has no {key} token", path.display()))
    }
}

pub(crate) fn parse_ttl(text: &str) -> anyhow::Result<Duration> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = number
        .parse()
        .with_context(|| format!("--ttl: {text:?} is not like 30d, 12h or 45m"))?;
    Ok(Duration::from_secs(match unit {
        "d" => n * 86_400,
        "h" => n * 3_600,
        "m" => n * 60,
        _ => bail!("--ttl: {text:?} is not like 30d, 12h or 45m"),
    }))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(serde::Deserialize)]
struct AuthSection {
    #[serde(default)]
    auth: AuthKeys,
}

/// `caselink token issue`.
pub(crate) fn issue(args: IssueArgs) -> anyhow::Result<ExitCode> {
    let Some(role) = Role::parse(&args.role) else {
        bail!(
            "--role: unknown role {:?}; one of {}",
            args.role,
            Role::ALL.map(Role::name).join(", ")
        );
    };
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let section: AuthSection =
        toml::from_str(&text).with_context(|| format!("parsing {}", args.config.display()))?;
    if section.auth.signing_key.is_empty() {
        bail!("{}: [auth] signing_key is not set", args.config.display());
    }
    let issuer = TokenIssuer::new(&section.auth.signing_key)?;
    let mut claims = TokenIssuer::claims(&args.sub, role, now(), parse_ttl(&args.ttl)?);
    if let Some(d) = &args.department {
        if caselink_domain::department_from_code(d).is_none() {
            bail!("--department: unknown department {d:?}");
        }
        claims.department = Some(d.clone());
    }
    match role {
        Role::Writer if claims.department.is_none() || args.regions.is_empty() => {
            bail!("a writer token needs --department and at least one --region")
        }
        Role::Police if args.unit.is_none() => bail!("a police token needs --unit"),
        _ => {}
    }
    claims.regions = args.regions;
    claims.unit = args.unit;
    println!("{}", issuer.issue(&claims)?);
    Ok(ExitCode::SUCCESS)
}

/// Issues the development tokens (30 days) into `data_dir/dev-tokens.json`; returns them by key.
pub(crate) fn write_dev_tokens(
    data_dir: &Path,
    keys: &AuthKeys,
) -> anyhow::Result<BTreeMap<String, String>> {
    let issuer = TokenIssuer::new(&keys.signing_key)?;
    let ttl = Duration::from_secs(30 * 86_400);
    let all_regions: Vec<String> = caselink_domain::PROVINCES
        .iter()
        .map(|(code, _)| (*code).to_string())
        .collect();
    let mut tokens = BTreeMap::new();
    for (department, _) in crate::up::DEPARTMENTS {
        let mut claims = TokenIssuer::claims(
            &format!("dev-{department}-system"),
            Role::Writer,
            now(),
            ttl,
        );
        claims.department = Some(department.to_string());
        claims.regions.clone_from(&all_regions);
        tokens.insert(format!("writer:{department}"), issuer.issue(&claims)?);
    }
    for role in [
        Role::Analyst,
        Role::Determiner,
        Role::Police,
        Role::AgencyHead,
        Role::Auditor,
    ] {
        let mut claims = TokenIssuer::claims(&format!("dev-{}", role.name()), role, now(), ttl);
        match role {
            // The market bureau's case team: determines, and drafts and transfers criminal referrals.
            Role::Determiner => {
                claims.regions = vec!["4306".into()];
                claims.department = Some("market".into());
            }
            Role::Police => claims.unit = Some("430602".into()),
            Role::AgencyHead => claims.department = Some("market".into()),
            _ => {}
        }
        tokens.insert(role.name().to_string(), issuer.issue(&claims)?);
    }
    crate::up::write_private(
        &data_dir.join(DEV_TOKENS),
        &serde_json::to_string_pretty(&tokens)?,
    )?;
    Ok(tokens)
}

/// An interceptor sending `token` (and, for person-level reads, the stated `purpose`) with every call.
pub(crate) fn bearer(
    token: &str,
    purpose: Option<&str>,
) -> anyhow::Result<
    impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone,
> {
    use tonic::metadata::MetadataValue;
    let authorization: MetadataValue<_> = format!("Bearer {}", token.trim())
        .parse()
        .context("the token has characters not allowed in metadata")?;
    let purpose: Option<MetadataValue<_>> = match purpose {
        Some(p) => Some(
            p.parse()
                .context("--purpose: not allowed in metadata (ASCII only)")?,
        ),
        None => None,
    };
    Ok(move |mut request: tonic::Request<()>| {
        request
            .metadata_mut()
            .insert(caselink_auth::AUTHORIZATION, authorization.clone());
        if let Some(p) = &purpose {
            request
                .metadata_mut()
                .insert(caselink_auth::PURPOSE, p.clone());
        }
        Ok(request)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ttl_accepts_days_hours_minutes_and_refuses_others() {
        assert_eq!(parse_ttl("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_ttl("12h").unwrap(), Duration::from_secs(12 * 3_600));
        assert_eq!(parse_ttl("45m").unwrap(), Duration::from_secs(45 * 60));
        assert!(parse_ttl("3w").is_err());
        assert!(parse_ttl("d").is_err());
    }
}
