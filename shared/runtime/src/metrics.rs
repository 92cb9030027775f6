//! What an operator scrapes: one Prometheus registry per process ([`Metrics`]), served as OpenMetrics text on
//! `GET /metrics` of a plain-HTTP listener of its own ([`serve`]; the `metrics_listen` option, off when empty), and a
//! tower layer ([`RpcMetricsLayer`]) that counts and times every gRPC call by method and status code.
//!
//! Every metric is named `caselink_…`; a process's metrics carry the label `service` (e.g. `linkage`, `market`).
//! Metrics hold no personal data and no token: labels are methods, codes, departments and outcomes only.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The content type of the OpenMetrics text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A process's registry.
pub struct Metrics {
    registry: Mutex<Registry>,
}

impl Metrics {
    /// An empty registry whose metrics are named `caselink_…` and labelled `service = <service>`.
    pub fn new(service: &str) -> Arc<Metrics> {
        let registry = Registry::with_prefix_and_labels(
            "caselink",
            [(
                std::borrow::Cow::Borrowed("service"),
                std::borrow::Cow::Owned(service.to_owned()),
            )]
            .into_iter(),
        );
        Arc::new(Metrics {
            registry: Mutex::new(registry),
        })
    }

    /// Registers `metric` under `name` (without the prefix; counters get `_total` when shown) and returns it.
    pub fn register<M: Metric + Clone>(&self, name: &str, help: &str, metric: M) -> M {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .register(name, help, metric.clone());
        metric
    }

    /// Every metric, as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        out
    }
}

/// Serves `GET /metrics` on `listener` until `cancel`.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = Arc::clone(&metrics);
            async move {
                (
                    [(http::header::CONTENT_TYPE, CONTENT_TYPE)],
                    metrics.encode(),
                )
            }
        }),
    );
    tracing::info!(%address, "metrics listening (GET /metrics)");
    axum::serve(listener, app)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}

/// Binds `address` and serves the metrics beside the process until `cancel`; an empty address serves nothing. A bind
/// failure is returned (the operator asked for the endpoint); a later failure is logged.
pub async fn spawn(
    address: &str,
    metrics: &Arc<Metrics>,
    cancel: &CancellationToken,
) -> std::io::Result<Option<std::net::SocketAddr>> {
    if address.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(address).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("metrics_listen: cannot listen on {address}: {e}"),
        )
    })?;
    let bound = listener.local_addr()?;
    let metrics = Arc::clone(metrics);
    let cancel = cancel.clone();
    tokio::spawn(async move {
        if let Err(e) = serve(listener, metrics, cancel).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok(Some(bound))
}

/// A gRPC call's method and status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// The gRPC path, e.g. `/caselink.v1.Linkage/GetTimeline`; `other` for a path the service does not serve.
    pub method: String,
    /// The status code's name, e.g. `OK`, `PERMISSION_DENIED`.
    pub code: String,
}

/// A gRPC call's method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    pub method: String,
}

/// Counts and times every gRPC call (`caselink_rpc_requests_total{method,code}`, `caselink_rpc_seconds{method}`: until
/// the response's headers, which for a unary call is its whole handling and for a stream its opening). A call's code
/// is read from the response headers (`grpc-status`, present when a call fails before its body); a response without
/// it is counted `OK` (unary calls put their status in the trailers, which only end an answered call).
#[derive(Clone)]
pub struct RpcMetricsLayer {
    state: Arc<RpcState>,
}

struct RpcState {
    requests: Family<RpcLabels, Counter>,
    seconds: Family<MethodLabel, Histogram>,
    known: fn(&str) -> bool,
}

impl RpcMetricsLayer {
    /// Registers the RPC metrics in `metrics`; `known` says which paths are labelled by name (the rest are `other`,
    /// so a caller cannot grow the label set): `caselink_auth::served_path`.
    pub fn new(metrics: &Metrics, known: fn(&str) -> bool) -> RpcMetricsLayer {
        let requests = metrics.register(
            "rpc_requests",
            "gRPC calls by method and status code",
            Family::<RpcLabels, Counter>::default(),
        );
        let seconds = metrics.register(
            "rpc_seconds",
            "gRPC call latency until the response headers, by method",
            Family::<MethodLabel, Histogram>::new_with_constructor(|| {
                // 100 µs … ~52 s.
                Histogram::new(exponential_buckets(0.0001, 2.0, 20))
            }),
        );
        RpcMetricsLayer {
            state: Arc::new(RpcState {
                requests,
                seconds,
                known,
            }),
        }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;

    fn layer(&self, inner: S) -> RpcMetricsService<S> {
        RpcMetricsService {
            inner,
            state: Arc::clone(&self.state),
        }
    }
}

/// The service [`RpcMetricsLayer`] wraps around the gRPC router.
#[derive(Clone)]
pub struct RpcMetricsService<S> {
    inner: S,
    state: Arc<RpcState>,
}

/// A gRPC status code's name as the gRPC specification writes it (`PERMISSION_DENIED`): the one table metrics and the
/// command-line client use.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "OK",
        C::Cancelled => "CANCELLED",
        C::Unknown => "UNKNOWN",
        C::InvalidArgument => "INVALID_ARGUMENT",
        C::DeadlineExceeded => "DEADLINE_EXCEEDED",
        C::NotFound => "NOT_FOUND",
        C::AlreadyExists => "ALREADY_EXISTS",
        C::PermissionDenied => "PERMISSION_DENIED",
        C::ResourceExhausted => "RESOURCE_EXHAUSTED",
        C::FailedPrecondition => "FAILED_PRECONDITION",
        C::Aborted => "ABORTED",
        C::OutOfRange => "OUT_OF_RANGE",
        C::Unimplemented => "UNIMPLEMENTED",
        C::Internal => "INTERNAL",
        C::Unavailable => "UNAVAILABLE",
        C::DataLoss => "DATA_LOSS",
        C::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The code of a response by its `grpc-status` header (a number); none means OK.
fn header_code(header: Option<&http::HeaderValue>) -> &'static str {
    let Some(value) = header else {
        return "OK";
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .map_or("UNKNOWN", |n| code_name(tonic::Code::from_i32(n)))
}

impl<S, B, R> tower::Service<http::Request<B>> for RpcMetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let method = if (self.state.known)(path) {
            path.to_owned()
        } else {
            "other".to_owned()
        };
        let state = Arc::clone(&self.state);
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            let code = match &result {
                Ok(response) => header_code(response.headers().get("grpc-status")),
                Err(_) => "INTERNAL",
            };
            state
                .seconds
                .get_or_create(&MethodLabel {
                    method: method.clone(),
                })
                .observe(started.elapsed().as_secs_f64());
            state
                .requests
                .get_or_create(&RpcLabels {
                    method,
                    code: code.to_owned(),
                })
                .inc();
            result
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn status_codes_are_named_as_grpc_names_them() {
        let named = |v: &str| header_code(Some(&http::HeaderValue::from_str(v).unwrap()));
        assert_eq!(header_code(None), "OK");
        assert_eq!(named("0"), "OK");
        assert_eq!(named("7"), "PERMISSION_DENIED");
        assert_eq!(named("3"), "INVALID_ARGUMENT");
        assert_eq!(named("14"), "UNAVAILABLE");
        assert_eq!(named("x"), "UNKNOWN");
    }

    #[test]
    fn the_text_names_every_metric_with_its_service() {
        let metrics = Metrics::new("linkage");
        let folded = metrics.register("fold_events", "events folded", Counter::<u64>::default());
        folded.inc_by(3);
        let text = metrics.encode();
        assert!(
            text.contains("caselink_fold_events_total{service=\"linkage\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("# HELP caselink_fold_events events folded"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
