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

/// The department and kind of an encoded `CaseEvent` that decodes whole (every stored one: the fold decoded it), as
/// decoding it whole gives them, from one pass over its top-level fields: the department (3) is decoded, the payload
/// is named by its field's number (the last payload field wins, as in decoding), and no other field's content is
/// decoded or copied (this runs for every entry of every timeline read).
pub fn event_head(event: &[u8]) -> Result<(i32, &'static str), DecodeError> {
    let mut buf = event;
    let mut department = 0;
    let mut kind = "unknown";
    let context = DecodeContext::default;
    while buf.has_remaining() {
        let (tag, wire_type) = encoding::decode_key(&mut buf)?;
        if tag == 3 {
            encoding::int32::merge(wire_type, &mut department, &mut buf, context())?;
            continue;
        }
        if let Some(name) = payload_kinds().get(&tag) {
            encoding::check_wire_type(encoding::WireType::LengthDelimited, wire_type)?;
            kind = name;
        }
        encoding::skip_field(wire_type, tag, &mut buf, context())?;
    }
    Ok((department, kind))
}

/// The kind named by each payload field number of `CaseEvent` (100 and up), found once by decoding an event that
/// holds only that field, empty: the `oneof` as prost decodes it, and the catalogue's names.
fn payload_kinds() -> &'static foldhash::HashMap<u32, &'static str> {
    static KINDS: std::sync::OnceLock<foldhash::HashMap<u32, &'static str>> =
        std::sync::OnceLock::new();
    KINDS.get_or_init(|| {
        (100..1_000)
            .filter_map(|tag| {
                let mut only = Vec::new();
                encoding::encode_key(tag, encoding::WireType::LengthDelimited, &mut only);
                only.push(0);
                let payload = CaseEvent::decode(only.as_slice()).ok()?.payload?;
                Some((tag, caselink_domain::kind_name(&payload)))
            })
            .collect()
    })
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

/// `CaseEvent.subject` and `Person.sealed`: the sealed identity is kept in its own table, not in the event log.
const SUBJECT_TAG: u32 = 8;
const SEALED_TAG: u32 = 16;

/// Appends `event` (an encoded `CaseEvent`) to `out` without its subject's sealed identity, copying every other field
/// as it is: what encoding the decoded event with `subject.sealed` taken out gives, without re-encoding it (the fold
/// does this for every event). On malformed input nothing is appended.
pub fn without_sealed(event: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let start = out.len();
    let result = copy_without_sealed(event, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn copy_without_sealed(event: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let mut buf = event;
    while buf.has_remaining() {
        let start = event.len() - buf.len();
        let (tag, wire_type) = encoding::decode_key(&mut buf)?;
        let value = buf;
        encoding::skip_field(wire_type, tag, &mut buf, DecodeContext::default())?;
        if tag == SUBJECT_TAG && wire_type == encoding::WireType::LengthDelimited {
            // The field is whole (skipped above): its value is what follows its length.
            let mut value = &value[..value.len() - buf.len()];
            encoding::decode_varint(&mut value)?;
            let subject = value;
            let mut kept = Vec::with_capacity(subject.len());
            let mut inner = subject;
            while inner.has_remaining() {
                let field = subject.len() - inner.len();
                let (tag, wire_type) = encoding::decode_key(&mut inner)?;
                encoding::skip_field(wire_type, tag, &mut inner, DecodeContext::default())?;
                if tag != SEALED_TAG {
                    kept.extend_from_slice(&subject[field..subject.len() - inner.len()]);
                }
            }
            encoding::encode_key(SUBJECT_TAG, encoding::WireType::LengthDelimited, out);
            encoding::encode_varint(kept.len() as u64, out);
            out.extend_from_slice(&kept);
        } else {
            out.extend_from_slice(&event[start..event.len() - buf.len()]);
        }
    }
    Ok(())
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
            let mut grpc = tonic::server::Grpc::new(TimelineCodec);
            Ok(grpc.unary(method, request).await)
        })
    }
}

/// The prost codec, but the answer's buffer is reserved whole before it is written: a 200-event timeline is ~150 KB,
/// and grown from tonic's 8 KiB buffer it would be reallocated and copied five times over.
struct TimelineCodec;

impl tonic::codec::Codec for TimelineCodec {
    type Encode = EncodedTimeline;
    type Decode = GetTimelineRequest;
    type Encoder = TimelineEncoder;
    type Decoder = <tonic_prost::ProstCodec<EncodedTimeline, GetTimelineRequest> as tonic::codec::Codec>::Decoder;

    fn encoder(&mut self) -> TimelineEncoder {
        TimelineEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstCodec::<EncodedTimeline, GetTimelineRequest>::default().decoder()
    }
}

struct TimelineEncoder;

impl tonic::codec::Encoder for TimelineEncoder {
    type Item = EncodedTimeline;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: EncodedTimeline,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        buf.reserve(item.encoded_len());
        item.encode(buf)
            .map_err(|e| tonic::Status::internal(format!("encoding the timeline: {e}")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use caselink_proto::v1::{Person, SealedIdentity};

    use super::*;

    fn event(subject: Option<Person>) -> CaseEvent {
        CaseEvent {
            event_id: "0b5c7f4e-93c1-4c52-9d3a-1f0e2a6b7c8d".into(),
            department: 1,
            region_code: "430602".into(),
            subject,
            case_ref: "MK-1".into(),
            ..CaseEvent::default()
        }
    }

    fn sealed() -> SealedIdentity {
        SealedIdentity {
            key_id: "k1".into(),
            nonce: vec![7; 24],
            ciphertext: vec![9; 80],
            digest: vec![3; 16],
        }
    }

    /// What the fold stored before: the decoded event with its sealed identity taken out, encoded again.
    fn re_encoded(mut e: CaseEvent) -> Vec<u8> {
        if let Some(s) = e.subject.as_mut() {
            s.sealed = None;
        }
        e.encode_to_vec()
    }

    #[test]
    fn the_sealed_identity_is_cut_out_and_everything_else_kept_as_encoding_gives_it() {
        let person = Person {
            person_key: "ab".repeat(32),
            id_number_masked: "430***********1234".into(),
            phone_masked: "138****0000".into(),
            sealed: Some(sealed()),
            ..Person::default()
        };
        let without_seal = Person {
            sealed: None,
            ..person.clone()
        };
        for e in [
            event(Some(person)),
            event(Some(without_seal)),
            event(None),
            event(Some(Person {
                sealed: Some(sealed()),
                ..Person::default()
            })),
        ] {
            let bytes = e.encode_to_vec();
            let mut out = b"before".to_vec();
            without_sealed(&bytes, &mut out).unwrap();
            assert_eq!(&out[..6], b"before");
            assert_eq!(out[6..], re_encoded(e.clone())[..], "{e:?}");
            let back = CaseEvent::decode(&out[6..]).unwrap();
            assert!(back.subject.as_ref().is_none_or(|s| s.sealed.is_none()));
        }
    }

    #[test]
    fn malformed_bytes_append_nothing() {
        let e = event(Some(Person {
            person_key: "ab".repeat(32),
            sealed: Some(sealed()),
            ..Person::default()
        }));
        let bytes = e.encode_to_vec();
        for cut in [1, bytes.len() / 2, bytes.len() - 1] {
            let mut out = b"x".to_vec();
            assert!(
                without_sealed(&bytes[..cut], &mut out).is_err(),
                "cut at {cut}"
            );
            assert_eq!(out, b"x");
        }
    }
}
