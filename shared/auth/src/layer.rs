//! The tower layer that authenticates every call and applies the policy table before any handler runs.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use crate::policy::{check, Rpc, ServiceScope};
use crate::{AuthError, CachedVerifier, Caller, TokenVerifier, AUTHORIZATION, PURPOSE};

/// Paths that stay open: health checks and reflection.
const OPEN_PREFIXES: [&str; 2] = ["/grpc.health.v1.Health/", "/grpc.reflection."];

/// Whether a gRPC path is one a caselink server answers: an RPC of the policy table, health or reflection.
pub fn served_path(path: &str) -> bool {
    Rpc::from_path(path).is_some() || OPEN_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Authenticates and authorises every request; see the crate docs.
#[derive(Clone)]
pub struct AuthLayer {
    state: Arc<State>,
}

struct State {
    /// Checks each distinct token's signature once, until it expires.
    verifier: CachedVerifier,
    scope: ServiceScope,
}

impl AuthLayer {
    pub fn new(verifier: TokenVerifier, scope: ServiceScope) -> AuthLayer {
        AuthLayer {
            state: Arc::new(State {
                verifier: CachedVerifier::new(verifier),
                scope,
            }),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            state: Arc::clone(&self.state),
        }
    }
}

/// The service [`AuthLayer`] wraps around the gRPC router.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    state: Arc<State>,
}

impl State {
    fn admit(&self, path: &str, headers: &http::HeaderMap) -> Result<Caller, tonic::Status> {
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or(AuthError::Missing)
            .map_err(|e| tonic::Status::unauthenticated(e.to_string()))?;
        let claims = self
            .verifier
            .verify(token.trim())
            .map_err(|e| tonic::Status::unauthenticated(e.to_string()))?;
        let purpose = headers
            .get(PURPOSE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let Some(rpc) = Rpc::from_path(path) else {
            return Err(tonic::Status::permission_denied(format!(
                "{path} is not open to any role"
            )));
        };
        check(rpc, &claims, &self.scope, purpose.as_deref())?;
        Ok(Caller { claims, purpose })
    }
}

impl<S, B> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_string();
        if OPEN_PREFIXES.iter().any(|p| path.starts_with(p)) {
            return Box::pin(self.inner.call(request));
        }
        match self.state.admit(&path, request.headers()) {
            Ok(caller) => {
                tracing::debug!(sub = %caller.claims.sub, role = caller.claims.role.name(), %path, "call admitted");
                request.extensions_mut().insert(caller);
                Box::pin(self.inner.call(request))
            }
            Err(status) => {
                tracing::info!(code = ?status.code(), %path, reason = status.message(), "call refused");
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}
