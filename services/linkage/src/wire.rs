//! `GetTimeline` answered from the stored bytes: the timeline value is `stream seq ‖ CaseEvent protobuf`, exactly the
//! bytes a `TimelineEntry.event` carries on the wire, so the answer is built without decoding and re-encoding every
//! event (a 114-event timeline is ~90 KB; decode + encode was a third of the aggregator's CPU per call).
//!
//! [`EncodedTimeline`] has the wire format of `caselink.v1.Timeline` field for field (a client decodes it as a
//! `Timeline`); only the kind and department of each event are read, from the event's own department and payload
//! fields. [`LinkageRoutes`] serves `/caselink.v1.Linkage/GetTimeline` with it and passes every other path to the
//! generated `LinkageServer`.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use caselink_proto::v1::linkage_server::LinkageServer;
use caselink_proto::v1::{CaseEvent, ClearIdentity, GetTimelineRequest, MaskedIdentity};
use prost::bytes::Buf;
use prost::encoding::{self, DecodeContext};
use prost::{DecodeError, Message};
use tonic::codegen::{http, Body, BoxFuture, Service, StdError};
use tonic::server::NamedService;

use crate::query::LinkageService;

/// `caselink.v1.Timeline` with its entries kept encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EncodedTimeline {
    #[prost(string, tag = "1")]
    pub person_key: String,
    #[prost(message, optional, tag = "2")]
    pub identity: Option<MaskedIdentity>,
    #[prost(message, repeated, tag = "3")]
    pub entries: Vec<EncodedEntry>,
    #[prost(string, tag = "4")]
    pub next_page_token: String,
    #[prost(message, optional, tag = "5")]
    pub clear_identity: Option<ClearIdentity>,
}

/// `caselink.v1.TimelineEntry` with its event as the stored `CaseEvent` bytes: a set `optional` field is written even
/// when empty, as prost writes `event: Some(_)`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EncodedEntry {
    #[prost(string, tag = "1")]
    pub kind: String,
    /// An encoded `CaseEvent`.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub event: Option<Vec<u8>>,
    #[prost(uint64, tag = "3")]
    pub stream_sequence: u64,
}

/// The department and kind of an encoded `CaseEvent`, exactly as decoding it whole would give them, from its
/// department (3) and payload (100 and up) fields only; the rest is skipped.
pub fn event_head(event: &[u8]) -> Result<(i32, &'static str), DecodeError> {
    let head = decode_fields(event, |tag| tag == 3 || tag >= 100)?;
    let kind = head
        .payload
        .as_ref()
        .map_or("unknown", caselink_domain::kind_name);
    Ok((head.department, kind))
}

/// An encoded `CaseEvent` with only the fields whose tags `keep` accepts decoded (as decoding it whole would give
/// them); the others are skipped undecoded.
pub fn decode_fields(event: &[u8], keep: impl Fn(u32) -> bool) -> Result<CaseEvent, DecodeError> {
    let mut buf = event;
    let mut kept = Vec::new();
    while buf.has_remaining() {
        let start = event.len() - buf.len();
        let (tag, wire_type) = encoding::decode_key(&mut buf)?;
        encoding::skip_field(wire_type, tag, &mut buf, DecodeContext::default())?;
        if keep(tag) {
            kept.extend_from_slice(&event[start..event.len() - buf.len()]);
        }
    }
    CaseEvent::decode(kept.as_slice())
}

const GET_TIMELINE: &str = "/caselink.v1.Linkage/GetTimeline";

/// The `Linkage` service with `GetTimeline` answered from stored bytes; everything else by the generated server.
#[derive(Clone)]
pub struct LinkageRoutes {
    service: Arc<LinkageService>,
    server: LinkageServer<LinkageService>,
}

impl LinkageRoutes {
    pub fn new(service: LinkageService) -> LinkageRoutes {
        let service = Arc::new(service);
        LinkageRoutes {
            server: LinkageServer::from_arc(Arc::clone(&service)),
            service,
        }
    }
}

impl NamedService for LinkageRoutes {
    const NAME: &'static str = <LinkageServer<LinkageService> as NamedService>::NAME;
}

struct EncodedTimelineCall(Arc<LinkageService>);

impl tonic::server::UnaryService<GetTimelineRequest> for EncodedTimelineCall {
    type Response = EncodedTimeline;
    type Future = BoxFuture<tonic::Response<EncodedTimeline>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<GetTimelineRequest>) -> Self::Future {
        let service = Arc::clone(&self.0);
        Box::pin(async move { service.get_timeline_encoded(request).await })
    }
}

impl<B> Service<http::Request<B>> for LinkageRoutes
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != GET_TIMELINE {
            return self.server.call(request);
        }
        let method = EncodedTimelineCall(Arc::clone(&self.service));
        Box::pin(async move {
            // The generated server's settings: no compression, default message size limits.
            let codec = tonic_prost::ProstCodec::<EncodedTimeline, GetTimelineRequest>::default();
            let mut grpc = tonic::server::Grpc::new(codec);
            Ok(grpc.unary(method, request).await)
        })
    }
}
