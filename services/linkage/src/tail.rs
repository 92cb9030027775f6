//! The unfolded tail: events the bus holds that the fold has not applied yet, kept in memory by person, so that
//! `GetTimeline` shows an event as soon as the bus has stored it (its department's `Submit` has returned), not only
//! once the fold has screened its person.
//!
//! Why: the fold applies an event after loading what its screening needs (the person's state, their contacts'
//! relations); for persons not met lately those are reads from the disk, and in a burst of them the fold runs up to
//! seconds behind the bus (BENCHMARKS.md). The event is durable from the moment the bus acknowledged it, and the
//! clerk who has just filed it expects to see it in the person's timeline. Screening (flags, links, the person view)
//! still follows the fold.
//!
//! A follower ([`follow`]) reads the bus from just after what the fold has applied, with an ordered consumer of its
//! own (no acknowledgements, nothing stored), whenever the fold is near the stream's end ([`Limits::engage_backlog`]);
//! under a backlog (a bulk fold after downtime) it stands idle and costs nothing. It holds at most
//! [`Limits::max_events`] events and [`Limits::max_bytes`] bytes; when full it stops, and resumes where it stopped
//! once the fold has applied what it holds. The fold calls [`Tail::folded_through`] after each applied group, which
//! drops what sled now holds. Nothing here is a projection: it is never written, and a restart starts it empty.
//!
//! A read shows of it what the fold will store: only events with a person and an event id that is a UUID (the fold
//! dead-letters or indexes the others, outside any timeline), without their sealed identity, and (checked by the
//! reader against sled, [`crate::query`]) none whose id the person's timeline holds already.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy};
use caselink_bus::streams::EVENTS_STREAM;
use caselink_domain::PersonKey;
use caselink_runtime::Cancel;
use foldhash::HashMap;
use futures::StreamExt;
use prost::Message;

/// How much the tail holds, and when it follows the bus.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Events held at most.
    pub max_events: usize,
    /// Event bytes held at most.
    pub max_bytes: usize,
    /// The follower reads the bus only while the fold's backlog at the server (messages not yet delivered to it) is
    /// at most this.
    pub engage_backlog: u64,
}

impl Default for Limits {
    /// 20,000 events / 16 MiB (four seconds of 5,000 events a second); engaged within 10,000 events of the end.
    fn default() -> Self {
        Limits {
            max_events: 20_000,
            max_bytes: 16 << 20,
            engage_backlog: 10_000,
        }
    }
}

/// One event the fold has not applied yet, as its timeline entry will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unfolded {
    /// Occurred µs ‖ event id: the entry's place in the timeline (as [`crate::store::place`]).
    pub place: [u8; 24],
    pub event_id: uuid::Uuid,
    pub sequence: u64,
    /// The encoded `CaseEvent` without its sealed identity (what the fold writes to the event log).
    pub event: Vec<u8>,
}

/// What [`Tail::read`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Held until the fold applies it.
    Held,
    /// Not for a timeline (no person, not a UUID, undecodable), or already applied or read.
    Passed,
    /// Not taken: the tail is full. The follower stops and reads it again later.
    Full,
}

/// The unfolded tail; shared by the follower, the fold and the readers.
pub struct Tail {
    inner: Mutex<Inner>,
    limits: Limits,
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Tail")
            .field("held", &inner.order.len())
            .field("bytes", &inner.bytes)
            .field("folded", &inner.folded)
            .field("read", &inner.read)
            .finish()
    }
}

#[derive(Debug)]
struct Inner {
    /// Each person's held events, in sequence order.
    persons: HashMap<PersonKey, Vec<Unfolded>>,
    /// Every held event's sequence and person, in sequence order: what [`Tail::folded_through`] drops from.
    order: VecDeque<(u64, PersonKey)>,
    bytes: usize,
    /// The highest sequence the fold has applied to sled.
    folded: u64,
    /// The highest sequence read from the bus.
    read: u64,
    /// The fold's backlog at the server when it last pulled (`None`: not told yet).
    backlog: Option<u64>,
}

impl Inner {
    /// Whether it holds as much as `limits` allow.
    fn full(&self, limits: &Limits) -> bool {
        self.order.len() >= limits.max_events || self.bytes >= limits.max_bytes
    }
}

impl Tail {
    /// An empty tail after `folded`, the position the fold has applied through.
    pub fn new(limits: Limits, folded: u64) -> Tail {
        Tail {
            inner: Mutex::new(Inner {
                persons: HashMap::default(),
                order: VecDeque::new(),
                bytes: 0,
                folded,
                read: folded,
                backlog: None,
            }),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every change below leaves the tail whole before anything can panic; a poisoned lock's data is usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the bus message at `sequence` (an encoded `CaseEvent`).
    pub fn read(&self, sequence: u64, message: &[u8]) -> Read {
        let mut inner = self.lock();
        if sequence <= inner.folded.max(inner.read) {
            return Read::Passed;
        }
        if inner.full(&self.limits) {
            return Read::Full;
        }
        inner.read = sequence;
        let Some((person, unfolded)) = unfolded(sequence, message) else {
            return Read::Passed;
        };
        inner.bytes += unfolded.event.len();
        inner.order.push_back((sequence, person));
        inner.persons.entry(person).or_default().push(unfolded);
        Read::Held
    }

    /// The fold has applied everything through `position` to sled: what it held of that is dropped.
    pub fn folded_through(&self, position: u64) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.folded = inner.folded.max(position);
        while let Some(&(sequence, person)) = inner.order.front() {
            if sequence > position {
                break;
            }
            inner.order.pop_front();
            if let Some(held) = inner.persons.get_mut(&person) {
                let applied = held.iter().take_while(|u| u.sequence <= position).count();
                inner.bytes -= held[..applied].iter().map(|u| u.event.len()).sum::<usize>();
                held.drain(..applied);
                if held.is_empty() {
                    inner.persons.remove(&person);
                }
            }
        }
    }

    /// The fold's backlog at the server when it last pulled (messages the stream holds beyond what it was delivered).
    pub fn fold_backlog(&self, backlog: u64) {
        self.lock().backlog = Some(backlog);
    }

    /// Whether the follower should read the bus now: the fold is near the end, and there is room.
    pub fn engaged(&self) -> bool {
        let inner = self.lock();
        inner
            .backlog
            .is_some_and(|b| b <= self.limits.engage_backlog)
            && !inner.full(&self.limits)
    }

    /// The sequence after which the follower reads: the last it read, or what the fold applied if that is further.
    pub fn resume_after(&self) -> u64 {
        let inner = self.lock();
        inner.folded.max(inner.read)
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The person's held events with `from_micros <= occurred < to_micros` and a place after `after`, in place order;
    /// of two with one event id (a duplicate the bus's window let through) only the first on the bus, as the fold.
    pub(crate) fn unfolded(
        &self,
        person: &PersonKey,
        from_micros: i64,
        to_micros: i64,
        after: Option<&[u8]>,
    ) -> Vec<Unfolded> {
        let inner = self.lock();
        let Some(held) = inner.persons.get(person) else {
            return Vec::new();
        };
        let lowest = crate::store::place(from_micros, &uuid::Uuid::nil());
        let end = crate::store::place(to_micros, &uuid::Uuid::nil());
        let mut ids = foldhash::HashSet::default();
        let mut found: Vec<Unfolded> = held
            .iter()
            // In sequence order: the first of a duplicated id is kept.
            .filter(|u| ids.insert(u.event_id))
            .filter(|u| {
                u.place >= lowest && u.place < end && after.is_none_or(|a| u.place.as_slice() > a)
            })
            .cloned()
            .collect();
        drop(inner);
        found.sort_unstable_by_key(|u| u.place);
        found
    }
}

/// The timeline entry a message will be, and its person; `None` for what no timeline shows. Decoded whole, as the
/// fold decodes it: what it cannot decode it keeps as a dead letter, and no timeline shows that.
fn unfolded(sequence: u64, message: &[u8]) -> Option<(PersonKey, Unfolded)> {
    let decoded = caselink_proto::v1::CaseEvent::decode(message).ok()?;
    let person = PersonKey::from_hex(&decoded.subject.as_ref()?.person_key).ok()?;
    let event_id = uuid::Uuid::parse_str(&decoded.event_id).ok()?;
    let mut event = Vec::with_capacity(message.len());
    crate::wire::without_sealed(message, &mut event).ok()?;
    let place = crate::store::place(crate::fold::occurred_micros(&decoded), &event_id);
    Some((
        person,
        Unfolded {
            place,
            event_id,
            sequence,
            event,
        },
    ))
}

/// How often an idle follower looks whether it should read, and a reading one whether it still should when no
/// message came.
const LOOK: Duration = Duration::from_millis(20);

/// Follows the bus into `tail` until `cancel`: reads while [`Tail::engaged`], from [`Tail::resume_after`], the
/// partitions of `filters` (the fold's). Bus errors are logged and it starts over a second later.
pub async fn follow(
    tail: std::sync::Arc<Tail>,
    js: jetstream::Context,
    filters: Vec<String>,
    cancel: Cancel,
) {
    loop {
        while !tail.engaged() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(LOOK) => {}
            }
        }
        let after = tail.resume_after();
        tracing::debug!(after, "unfolded tail: following the bus");
        if let Err(e) = follow_from(&tail, &js, &filters, after, &cancel).await {
            tracing::warn!(error = %e, "unfolded tail: lost the stream; retrying in 1 s");
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        if cancel.is_cancelled() {
            return;
        }
        tracing::debug!(held = tail.len(), "unfolded tail: stopped following");
    }
}

/// Reads the bus after `after` into `tail` until it is full or no longer engaged (`Ok`), or the bus fails.
async fn follow_from(
    tail: &Tail,
    js: &jetstream::Context,
    filters: &[String],
    after: u64,
    cancel: &Cancel,
) -> Result<(), String> {
    let stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|e| e.to_string())?;
    let config = jetstream::consumer::pull::OrderedConfig {
        filter_subjects: filters.to_vec(),
        deliver_policy: DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        },
        ..Default::default()
    };
    let mut messages = stream
        .create_consumer(config)
        .await
        .map_err(|e| e.to_string())?
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    let mut lag = Lag::default();
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            next = tokio::time::timeout(LOOK, messages.next()) => next,
        };
        match next {
            Err(_) if !tail.engaged() => return Ok(()),
            Err(_) => {}
            Ok(None) => return Err("the event stream ended".into()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(message))) => {
                let info = message.info().map_err(|e| e.to_string())?;
                lag.note(info.published, tail);
                if tail.read(info.stream_sequence, &message.payload) == Read::Full {
                    return Ok(());
                }
            }
        }
    }
}

/// How far behind the bus the follower reads (from the time the server stored each message), logged once a second
/// while it reads.
#[derive(Default)]
struct Lag {
    since: Option<std::time::Instant>,
    messages: u64,
    max: Duration,
}

impl Lag {
    fn note(&mut self, stored: time::OffsetDateTime, tail: &Tail) {
        let behind = time::OffsetDateTime::now_utc() - stored;
        self.max = self.max.max(behind.try_into().unwrap_or_default());
        self.messages += 1;
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        if since.elapsed() >= Duration::from_secs(1) {
            tracing::debug!(
                messages = self.messages,
                max_behind_ms = self.max.as_secs_f64() * 1e3,
                held = tail.len(),
                "unfolded tail: read"
            );
            *self = Lag::default();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use caselink_proto::v1::{CaseEvent, Person, SealedIdentity};
    use prost::Message;

    fn key(n: u8) -> PersonKey {
        PersonKey::from_hex(&format!("{n:02x}").repeat(32)).unwrap()
    }

    fn event(person: &PersonKey, id: u128, seconds: i64) -> Vec<u8> {
        CaseEvent {
            event_id: uuid::Uuid::from_u128(id).to_string(),
            source_id: format!("src-{id}"),
            department: 1,
            occurred_at: Some(caselink_proto::Timestamp { seconds, nanos: 0 }),
            subject: Some(Person {
                person_key: person.to_hex(),
                sealed: Some(SealedIdentity {
                    ciphertext: vec![7; 40],
                    ..SealedIdentity::default()
                }),
                ..Person::default()
            }),
            summary: "投诉".into(),
            ..CaseEvent::default()
        }
        .encode_to_vec()
    }

    fn micros(seconds: i64) -> i64 {
        seconds * 1_000_000
    }

    fn sequences(held: &[Unfolded]) -> Vec<u64> {
        held.iter().map(|u| u.sequence).collect()
    }

    #[test]
    fn holds_a_persons_events_in_place_order_without_the_sealed_identity() {
        let tail = Tail::new(Limits::default(), 10);
        let (a, b) = (key(1), key(2));
        assert_eq!(tail.read(11, &event(&a, 1, 300)), Read::Held);
        assert_eq!(tail.read(12, &event(&b, 2, 100)), Read::Held);
        assert_eq!(tail.read(13, &event(&a, 3, 200)), Read::Held);
        let held = tail.unfolded(&a, i64::MIN, i64::MAX, None);
        assert_eq!(sequences(&held), vec![13, 11]);
        let decoded = CaseEvent::decode(held[0].event.as_slice()).unwrap();
        assert_eq!(decoded.event_id, uuid::Uuid::from_u128(3).to_string());
        let subject = decoded.subject.unwrap();
        assert_eq!(subject.person_key, a.to_hex());
        assert!(subject.sealed.is_none(), "the sealed identity is not shown");
        assert_eq!(
            held[0].place,
            crate::store::place(micros(200), &uuid::Uuid::from_u128(3))
        );
        assert_eq!(
            sequences(&tail.unfolded(&b, i64::MIN, i64::MAX, None)),
            vec![12]
        );
        assert!(tail.unfolded(&key(3), i64::MIN, i64::MAX, None).is_empty());
    }

    #[test]
    fn a_read_keeps_the_range_and_the_cursor_as_the_stored_timeline_does() {
        let tail = Tail::new(Limits::default(), 0);
        let a = key(1);
        for (i, seconds) in [100, 200, 300, 400].into_iter().enumerate() {
            tail.read(i as u64 + 1, &event(&a, i as u128 + 1, seconds));
        }
        // from inclusive, to exclusive.
        let held = tail.unfolded(&a, micros(200), micros(400), None);
        assert_eq!(sequences(&held), vec![2, 3]);
        // After a cursor: strictly after that place.
        let after = held[0].place;
        assert_eq!(
            sequences(&tail.unfolded(&a, i64::MIN, i64::MAX, Some(&after))),
            vec![3, 4]
        );
    }

    #[test]
    fn what_no_timeline_shows_is_passed_and_what_was_read_or_applied_is_not_read_again() {
        let tail = Tail::new(Limits::default(), 10);
        let a = key(1);
        assert_eq!(
            tail.read(10, &event(&a, 1, 100)),
            Read::Passed,
            "applied already"
        );
        let mut no_person = CaseEvent::decode(event(&a, 2, 100).as_slice()).unwrap();
        no_person.subject = None;
        assert_eq!(tail.read(11, &no_person.encode_to_vec()), Read::Passed);
        let mut not_uuid = CaseEvent::decode(event(&a, 3, 100).as_slice()).unwrap();
        not_uuid.event_id = "x".into();
        assert_eq!(tail.read(12, &not_uuid.encode_to_vec()), Read::Passed);
        assert_eq!(tail.read(13, b"\xff\xff\xff"), Read::Passed, "undecodable");
        // Its head decodes, its payload does not (a complaint_received field, 100, of one byte that is no field): the
        // fold keeps it as a dead letter.
        let mut bad_payload = event(&a, 5, 100);
        bad_payload.extend_from_slice(&[0xa2, 0x06, 0x01, 0xff]);
        assert!(CaseEvent::decode(bad_payload.as_slice()).is_err());
        assert_eq!(tail.read(14, &bad_payload), Read::Passed);
        assert_eq!(tail.read(15, &event(&a, 4, 100)), Read::Held);
        assert_eq!(
            tail.read(15, &event(&a, 4, 100)),
            Read::Passed,
            "read already"
        );
        assert_eq!(tail.len(), 1);
        assert_eq!(tail.resume_after(), 15);
    }

    #[test]
    fn of_a_duplicated_event_id_the_first_on_the_bus_is_shown() {
        let tail = Tail::new(Limits::default(), 0);
        let a = key(1);
        tail.read(1, &event(&a, 7, 300));
        tail.read(2, &event(&a, 7, 100));
        assert_eq!(
            sequences(&tail.unfolded(&a, i64::MIN, i64::MAX, None)),
            vec![1]
        );
    }

    #[test]
    fn what_the_fold_applied_is_dropped() {
        let tail = Tail::new(Limits::default(), 0);
        let (a, b) = (key(1), key(2));
        tail.read(1, &event(&a, 1, 100));
        tail.read(2, &event(&b, 2, 100));
        tail.read(3, &event(&a, 3, 100));
        tail.folded_through(2);
        assert_eq!(
            sequences(&tail.unfolded(&a, i64::MIN, i64::MAX, None)),
            vec![3]
        );
        assert!(tail.unfolded(&b, i64::MIN, i64::MAX, None).is_empty());
        assert_eq!(tail.len(), 1);
        tail.folded_through(3);
        assert!(tail.is_empty());
        assert_eq!(tail.lock().bytes, 0);
        assert!(tail.lock().persons.is_empty());
        // The fold went further than the follower read: it resumes after the fold.
        tail.folded_through(9);
        assert_eq!(tail.resume_after(), 9);
    }

    #[test]
    fn a_full_tail_takes_nothing_until_the_fold_applied_some() {
        let limits = Limits {
            max_events: 2,
            ..Limits::default()
        };
        let tail = Tail::new(limits, 0);
        tail.fold_backlog(0);
        let a = key(1);
        tail.read(1, &event(&a, 1, 100));
        assert!(tail.engaged());
        tail.read(2, &event(&a, 2, 100));
        assert!(!tail.engaged());
        assert_eq!(tail.read(3, &event(&a, 3, 100)), Read::Full);
        assert_eq!(tail.resume_after(), 2, "the refused message is read again");
        tail.folded_through(1);
        assert!(tail.engaged());
        assert_eq!(tail.read(3, &event(&a, 3, 100)), Read::Held);
        let bytes = Limits {
            max_bytes: 1,
            ..Limits::default()
        };
        let tail = Tail::new(bytes, 0);
        tail.read(1, &event(&a, 1, 100));
        assert_eq!(tail.read(2, &event(&a, 2, 100)), Read::Full);
    }

    #[test]
    fn the_follower_reads_only_near_the_end_of_the_stream() {
        let tail = Tail::new(Limits::default(), 0);
        assert!(!tail.engaged(), "not before the fold told its backlog");
        tail.fold_backlog(Limits::default().engage_backlog + 1);
        assert!(!tail.engaged());
        tail.fold_backlog(Limits::default().engage_backlog);
        assert!(tail.engaged());
    }

    /// Publishes `key`'s event `id` on its partition's subject; returns its stream sequence.
    async fn publish(js: &jetstream::Context, key: &PersonKey, id: u128) -> u64 {
        let subject = caselink_bus::subjects::event_subject(
            key.partition(),
            caselink_proto::v1::Department::Market,
        );
        js.publish(subject, event(key, id, 100).into())
            .await
            .unwrap()
            .await
            .unwrap()
            .sequence
    }

    #[tokio::test]
    async fn the_follower_holds_what_the_bus_stores_beyond_the_fold_and_resumes_when_room_is_made()
    {
        let nats = caselink_testkit::NatsServer::start().unwrap();
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        caselink_bus::streams::ensure_events_stream(&js, &Default::default())
            .await
            .unwrap();
        let a = key(1);
        let other = (2..=255u8)
            .map(key)
            .find(|k| k.partition() != a.partition())
            .unwrap();
        let limits = Limits {
            max_events: 2,
            ..Limits::default()
        };
        let tail = std::sync::Arc::new(Tail::new(limits, 0));
        let cancel = Cancel::new();
        // The aggregator owns a's partition only.
        let filters = caselink_bus::subjects::partition_filters(a.partition()..a.partition() + 1);
        let follower = tokio::spawn(follow(
            std::sync::Arc::clone(&tail),
            js.clone(),
            filters,
            cancel.clone(),
        ));
        let first = publish(&js, &a, 1).await;
        publish(&js, &other, 2).await;
        let third = publish(&js, &a, 3).await;
        let fourth = publish(&js, &a, 4).await;
        tail.fold_backlog(0);
        crate::testing::until("two held", || tail.len() == 2).await;
        let all = |t: &Tail| sequences(&t.unfolded(&a, i64::MIN, i64::MAX, None));
        assert_eq!(all(&tail), vec![first, third], "full: the fourth waits");
        assert!(tail.unfolded(&other, i64::MIN, i64::MAX, None).is_empty());
        // The fold applied the first: the follower goes on from where it stopped.
        tail.folded_through(first);
        crate::testing::until("the fourth held", || all(&tail) == vec![third, fourth]).await;
        let fifth = publish(&js, &a, 5).await;
        tail.folded_through(fourth);
        crate::testing::until("the fifth held", || all(&tail) == vec![fifth]).await;
        cancel.cancel();
        follower.await.unwrap();
    }
}
