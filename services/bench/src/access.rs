//! Access for the benchmark's clients: the run's own token keys, tokens for a writer of each department and for an
//! analyst, and gRPC clients that send them (the services refuse calls without one, as in production).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use caselink_auth::{AuthKeys, Role, TokenIssuer};
use caselink_proto::v1::ingest_client::IngestClient;
use caselink_proto::v1::linkage_client::LinkageClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The purpose stated for person-level reads (required by the policy, recorded by the audit).
pub const PURPOSE: &str = "caselink-bench: performance measurement on generated data";
/// Region prefix of the generated population (Yueyang); writer tokens are scoped to it.
pub const REGION: &str = "4306";
/// How long the run's tokens are valid.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Sends a bearer token (and, for reads, a purpose) with every call.
#[derive(Clone)]
pub struct Bearer {
    authorization: MetadataValue<Ascii>,
    purpose: Option<MetadataValue<Ascii>>,
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let metadata = request.metadata_mut();
        metadata.insert(caselink_auth::AUTHORIZATION, self.authorization.clone());
        if let Some(purpose) = &self.purpose {
            metadata.insert(caselink_auth::PURPOSE, purpose.clone());
        }
        Ok(request)
    }
}

/// A channel that sends a token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// The run's token keys and the tokens made with them.
#[derive(Clone)]
pub struct Access {
    keys: AuthKeys,
}

impl Access {
    /// Fresh keys for this run.
    pub fn generate() -> anyhow::Result<Access> {
        Ok(Access {
            keys: caselink_auth::generate_keys().map_err(|e| anyhow!("token keys: {e}"))?,
        })
    }

    /// What a service needs to check tokens: the public key only.
    pub fn verifier_keys(&self) -> AuthKeys {
        AuthKeys {
            signing_key: String::new(),
            public_key: self.keys.public_key.clone(),
        }
    }

    fn token(&self, role: Role, department: Option<&str>) -> anyhow::Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut claims = TokenIssuer::claims("caselink-bench", role, now, TOKEN_TTL);
        claims.department = department.map(str::to_string);
        claims.regions = vec![REGION.to_string()];
        TokenIssuer::new(&self.keys.signing_key)
            .and_then(|issuer| issuer.issue(&claims))
            .map_err(|e| anyhow!("issuing a token: {e}"))
    }

    /// An Ingest client of `address` acting as a writer of `department`.
    pub async fn ingest_client(
        &self,
        address: &str,
        department: &str,
    ) -> anyhow::Result<IngestClient<Authed>> {
        let bearer = bearer(&self.token(Role::Writer, Some(department))?, None)?;
        Ok(IngestClient::with_interceptor(
            connect(address).await?,
            bearer,
        ))
    }

    /// A plain gRPC client of `address` acting as an analyst, stating the benchmark's purpose (for calls whose answers
    /// the bench reads in its own way: [`crate::query`]).
    pub async fn grpc_client(&self, address: &str) -> anyhow::Result<tonic::client::Grpc<Authed>> {
        let bearer = bearer(&self.token(Role::Analyst, None)?, Some(PURPOSE))?;
        Ok(
            tonic::client::Grpc::new(InterceptedService::new(connect(address).await?, bearer))
                .max_decoding_message_size(64 * 1024 * 1024),
        )
    }

    /// A Linkage client of `address` acting as an analyst, stating the benchmark's purpose.
    pub async fn linkage_client(&self, address: &str) -> anyhow::Result<LinkageClient<Authed>> {
        let bearer = bearer(&self.token(Role::Analyst, None)?, Some(PURPOSE))?;
        Ok(
            LinkageClient::with_interceptor(connect(address).await?, bearer)
                .max_decoding_message_size(64 * 1024 * 1024),
        )
    }
}

fn bearer(token: &str, purpose: Option<&str>) -> anyhow::Result<Bearer> {
    Ok(Bearer {
        authorization: format!("Bearer {token}")
            .parse()
            .context("a token that is not a header value")?,
        purpose: purpose
            .map(str::parse)
            .transpose()
            .context("a purpose that is not a header value")?,
    })
}

async fn connect(address: &str) -> anyhow::Result<Channel> {
    tonic::transport::Endpoint::from_shared(address.to_string())
        .context("an endpoint address")?
        .connect()
        .await
        .with_context(|| format!("connecting to {address}"))
}
