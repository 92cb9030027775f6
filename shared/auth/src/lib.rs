//! Who may call what.
//!
//! Owns: bearer tokens (JWT signed with Ed25519 under the deployment's signing key, with expiry), the roles and scopes
//! of api.md ([`Role`], [`Claims`]), the one policy table ([`policy::check`]) deciding which role may call which RPC,
//! and the tower layer ([`AuthLayer`]) that authenticates every call before any handler runs and hands the handler the
//! [`Caller`]. Health and reflection stay open.
//!
//! Never: hand-rolled cryptography (jsonwebtoken + ring), or logging a token.

pub mod layer;
pub mod policy;
mod token;

pub use layer::{served_path, AuthLayer};
pub use policy::{identity_view, IdentityView, Rpc, ServiceScope, Visibility};
pub use token::{
    generate_keys, AuthKeys, CachedVerifier, Claims, Role, TokenIssuer, TokenVerifier, ISSUER,
};

/// Metadata key of the bearer token.
pub const AUTHORIZATION: &str = "authorization";
/// Metadata key of the stated purpose of a person-level read (required; audited).
pub const PURPOSE: &str = "x-caselink-purpose";

/// The authenticated caller of a request, as the handlers see it (in the request's extensions).
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
    /// The stated purpose (`x-caselink-purpose`), if any.
    pub purpose: Option<String>,
}

impl Caller {
    /// The caller of a gRPC request that passed the [`AuthLayer`].
    pub fn of<T>(request: &tonic::Request<T>) -> Result<&Caller, tonic::Status> {
        request
            .extensions()
            .get::<Caller>()
            .ok_or_else(|| tonic::Status::unauthenticated("no authenticated caller"))
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `authorization: Bearer <token>` (`caselink token issue` makes one)")]
    Missing,
    #[error("the token has expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("key: {0}")]
    Key(String),
}
