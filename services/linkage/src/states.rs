//! The fold's working set: person records, screening states, relations and situation counters, kept decoded in memory
//! across batches and written back to sled at checkpoints.
//!
//! Why: a claimant with hundreds of records, a ring's shared phone or a busy merchant's complaint text is touched by
//! most pulled batches. Reading, decoding, re-encoding and rewriting such a state once per batch made sled's writes
//! per event grow with the state (and the fold's cost grow as the store filled). Here a state is read from sled once,
//! changed in memory by every event, and written once per checkpoint.
//!
//! Exactly once, with two positions in sled (see [`crate::store`]):
//! - `position`: every per-event write (timeline `t`, event-id index `e` for events without a person, sealed identity
//!   `i`, alert outbox `o`) is in
//!   sled up to here. Written with every batch.
//! - `states_at`: the states (person rows `p`, each the record and the screening state, relations `r`, the flagged
//!   list `f`, counters `c`) are in sled exactly as of this sequence. Written only with a checkpoint, in the same atomic batch as the
//!   states. Queries read the same records: under a backlog the person view trails the timeline by at most one
//!   checkpoint interval, and a person seen for the first time since the last checkpoint has a timeline but no record
//!   yet ([`crate::query`] answers from the timeline alone then).
//!
//! `states_at <= position`. A session starts delivering at `states_at + 1`: a message at or below `position` is a
//! replay, applied to the states only (its per-event writes are already in sled, its alerts already in the outbox),
//! and only if its timeline entry (or, without a person, its event-id index entry) names its own sequence (otherwise
//! it was a duplicate the first time). A crash between
//! checkpoints therefore loses nothing and counts nothing twice; it costs the replay of one checkpoint interval.
//!
//! The cache lives as long as one consumer session. A checkpoint happens when the fold is caught up (a batch smaller
//! than the pull size, or nothing pending), when `checkpoint_every` has passed, when too many states are dirty, and at
//! shutdown; so an idle or lightly loaded aggregator writes every batch's states at once, and under a backlog the
//! person view and the flagged list trail the timeline by at most one interval. After a checkpoint, clean states
//! beyond the memory budget are dropped, least recently used first.

use foldhash::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use caselink_domain::PersonKey;
use caselink_proto::v1::SealedIdentity;
use caselink_screening::{ContactKind, PersonScreening, RelationKey, RelationState};
use prost::Message;

use crate::situation::BatchCounters;
use crate::store::{
    encode_person_row, flagged_key, identity_key, relation_key, row_key, CounterDay, CounterKey,
    FlaggedEntry, FoldedAt, LoadedPerson, LoadedRelation, PersonNumber, PersonRecord, Store,
    StoreError, Stored, Writes,
};

/// When the fold writes its states back, and how much it keeps in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// Longest time between checkpoints while the fold has a backlog.
    pub checkpoint_every: Duration,
    /// Dirty states that force a checkpoint (bounds the memory between checkpoints and the replay after a crash).
    pub max_dirty: usize,
    /// Approximate memory of the states kept across checkpoints ([`footprint`]).
    pub budget_bytes: usize,
    /// When the checkpoints compact the runs of relations with one user.
    pub compaction: crate::runs::Compaction,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            checkpoint_every: Duration::from_secs(1),
            max_dirty: 200_000,
            budget_bytes: 192 << 20,
            compaction: crate::runs::Compaction::default(),
        }
    }
}

/// One cached state: its bookkeeping inline in the map's table, its value on the heap. Eviction reads only the
/// bookkeeping of every slot, so it scans the table's memory in order instead of following a pointer per state (a
/// cache miss each: 30-86 ms for the several hundred thousand states of a 10M store, on the fold's serial path).
#[derive(Debug)]
struct Slot<T> {
    value: Box<T>,
    /// Changed since the last checkpoint.
    dirty: bool,
    /// The checkpoint generation it was last used in (for eviction).
    used: u64,
    /// Its memory ([`footprint`]) when last read or written (for the budget).
    bytes: usize,
    /// Heap bytes of its key (a relation key's; a person key is inline).
    key_heap: usize,
    /// The checkpoint that last wrote it (0: as read from sled). It may leave memory only once that checkpoint's
    /// batch is applied, or a read from sled would see an older value.
    written: u64,
}

impl<T> Slot<T> {
    /// A state as read from sled, `encoded` bytes long there, under a key with `key_heap` bytes on the heap.
    fn new(value: T, encoded: usize, key_heap: usize, generation: u64) -> Slot<T> {
        Slot {
            value: Box::new(value),
            dirty: false,
            used: generation,
            bytes: footprint::<T>(encoded) + key_heap,
            key_heap,
            written: 0,
        }
    }

    /// (last use, bytes) if it may leave memory once checkpoint `applied` is in the store.
    fn age(&self, applied: u64) -> Option<(u64, usize)> {
        (!self.dirty && self.written <= applied).then_some((self.used, self.bytes))
    }

    /// Marks it written by checkpoint `generation`, `encoded` bytes long.
    fn written(&mut self, generation: u64, encoded: usize, total: &mut usize) {
        let bytes = footprint::<T>(encoded) + self.key_heap;
        *total = *total - self.bytes + bytes;
        self.bytes = bytes;
        self.dirty = false;
        self.written = generation;
    }
}

/// Decoded, a state takes about this many times its encoded bytes on the heap: each string, byte string and list is
/// an allocation rounded up to the allocator's size class, and each list element is its struct's full size (an
/// intake of ~70 encoded bytes is ~100 inline plus ~60 on the heap).
const DECODED_PER_ENCODED: usize = 2;

/// Approximate memory of one cached state that is `encoded` bytes in sled, beyond its key's heap bytes: its map
/// entry (the key and the slot, with the control byte, at the table's load of 7/8; a table's buckets may be twice its
/// entries after growing, which is why the value is boxed: an empty bucket costs the slot's bookkeeping, not the
/// value), the boxed value and its heap. A state looked up but absent still takes its entry and value, which the
/// encoded size alone would count as nothing.
fn footprint<T>(encoded: usize) -> usize {
    // Both maps' keys take at most 32 bytes inline (a `PersonKey`, or a `Vec` and its relation key on the heap).
    let entry = (32 + std::mem::size_of::<Slot<T>>() + 1) * 8 / 7;
    entry + std::mem::size_of::<T>() + encoded * DECODED_PER_ENCODED
}

/// The fold's states between checkpoints. See the module documentation.
#[derive(Debug)]
pub struct StateCache {
    policy: CachePolicy,
    /// Person records with their screening states: one row `p` each.
    persons: HashMap<PersonKey, Slot<PersonState>>,
    relations: HashMap<Vec<u8>, Slot<RelationState>>,
    /// Counter increments since the last checkpoint.
    counters: BatchCounters,
    /// Ids of the events of the batches prepared and not yet applied (the pipelined consumer): not yet in sled, so a
    /// later batch's duplicate check asks here first. A batch's ids leave once it is applied ([`Applied::settle`]).
    ///
    /// [`Applied::settle`]: crate::fold::Applied::settle
    pub(crate) inflight_ids: HashSet<uuid::Uuid>,
    /// The stored position and `states_at` as the next batch finds them (batches are prepared before the previous one
    /// is applied, so these are kept here, not read back from sled).
    pub(crate) position: u64,
    pub(crate) states_at: u64,
    /// The last sequence the cached states have applied (at least `states_at`).
    pub(crate) states_through: u64,
    /// The event log's end once the batches prepared so far are applied: where the next batch's event bytes go.
    pub(crate) log_end: u64,
    /// The number the next new person gets, once the batches prepared so far are applied ([`PersonNumber`]).
    next_number: u64,
    /// Known stored values of situation counters, with the checkpoint that wrote them (no read per checkpoint, and
    /// correct while the previous checkpoint's batch is still being applied).
    counter_totals: HashMap<CounterKey, (CounterDay, u64)>,
    /// The dirty states' keys, each once: a checkpoint visits these, not the whole cache (caught up, every small
    /// batch is a checkpoint, and the cache holds hundreds of thousands of clean states).
    dirty_persons: Vec<PersonKey>,
    dirty_relations: Vec<Vec<u8>>,
    /// States read from sled (not in the cache, stored): persons, relations.
    pub(crate) loads: (u64, u64),
    /// Memory of the cached states ([`footprint`]), as last read or written.
    bytes: usize,
    /// Checkpoints made by this cache (the generation of states: eviction is by least recent use).
    generation: u64,
    /// The last checkpoint whose batch was applied.
    applied: u64,
    last_checkpoint: Instant,
    /// Runs whose live entries the last checkpoint copied: the next one removes them.
    retired_runs: Vec<crate::runs::GoneRun>,
    /// Most threads reading at once in a preload ([`read_all`]).
    readers: usize,
}

impl StateCache {
    /// An empty cache over `store`, continuing from its stored position and `states_at`.
    pub fn open(store: &Store, policy: CachePolicy) -> Result<StateCache, StoreError> {
        Ok(StateCache {
            policy,
            persons: HashMap::default(),
            relations: HashMap::default(),
            counters: BatchCounters::default(),
            inflight_ids: HashSet::default(),
            position: store.position()?,
            states_at: store.states_at()?,
            states_through: store.states_at()?,
            log_end: store.log_end(),
            next_number: store.next_number()?,
            loads: (0, 0),
            counter_totals: HashMap::default(),
            dirty_persons: Vec::new(),
            dirty_relations: Vec::new(),
            bytes: 0,
            generation: 0,
            applied: 0,
            last_checkpoint: Instant::now(),
            retired_runs: Vec::new(),
            readers: MAX_READERS,
        })
    }

    /// Whether the next batch should carry a checkpoint although the fold is not caught up.
    pub fn checkpoint_due(&self) -> bool {
        self.dirty() >= self.policy.max_dirty
            || self.last_checkpoint.elapsed() >= self.policy.checkpoint_every
    }

    /// States changed since the last checkpoint.
    pub fn dirty(&self) -> usize {
        self.dirty_persons.len() + self.dirty_relations.len()
    }

    /// What the cached states take in memory, as the budget counts it.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The person's state, loaded from sled (`p`, as of `states_at`) if absent; marked used, and with `dirty` to be
    /// written back.
    fn person_slot(
        &mut self,
        store: &Store,
        key: &PersonKey,
        dirty: bool,
    ) -> Result<&mut Slot<PersonState>, StoreError> {
        let generation = self.generation;
        let slot = match self.persons.entry(*key) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let loaded = store.load_person_row(key)?;
                let slot = v.insert(person_slot_of(loaded, generation, &mut self.loads.0));
                self.bytes += slot.bytes;
                slot
            }
        };
        if mark(slot, generation, dirty) {
            self.dirty_persons.push(*key);
        }
        Ok(slot)
    }

    /// A relation's state, loaded from sled (`r`, as of `states_at`; default when absent) if not cached; marked used,
    /// and with `dirty` to be written back.
    fn relation_slot(
        &mut self,
        store: &Store,
        key: Vec<u8>,
        dirty: bool,
    ) -> Result<&mut Slot<RelationState>, StoreError> {
        let generation = self.generation;
        let slot = match self.relations.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => {
                if dirty && !o.get().dirty {
                    self.dirty_relations.push(o.key().clone());
                }
                o.into_mut()
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                let loaded = store.load_relation(v.key())?;
                if dirty {
                    self.dirty_relations.push(v.key().clone());
                }
                let key_heap = v.key().capacity();
                let slot = v.insert(relation_slot_of(
                    loaded,
                    key_heap,
                    generation,
                    &mut self.loads.1,
                ));
                self.bytes += slot.bytes;
                slot
            }
        };
        mark(slot, generation, dirty);
        Ok(slot)
    }

    /// Reads the states of those of `persons` and `relations` not cached, all in one [`read_all`] (many threads at
    /// once), and caches them, clean.
    fn load(
        &mut self,
        store: &Store,
        persons: &[PersonKey],
        relations: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        enum Wanted<'a> {
            Person(&'a PersonKey),
            Relation(&'a [u8]),
        }
        /// A key with what was read of it.
        enum Read<'a> {
            // Boxed: a person's row is ~8 times a relation's state, and most of what is read can be relations.
            Person(&'a PersonKey, Box<Option<LoadedPerson>>),
            Relation(&'a [u8], Option<LoadedRelation>),
        }
        let absent: Vec<Wanted> = persons
            .iter()
            .filter(|k| !self.persons.contains_key(*k))
            .map(Wanted::Person)
            .chain(
                relations
                    .iter()
                    .filter(|k| !self.relations.contains_key(k.as_slice()))
                    .map(|k| Wanted::Relation(k.as_slice())),
            )
            .collect();
        let read = read_all(&absent, self.readers, |wanted| match *wanted {
            Wanted::Person(key) => store
                .load_person_row(key)
                .map(|loaded| Read::Person(key, Box::new(loaded))),
            Wanted::Relation(key) => store
                .load_relation(key)
                .map(|loaded| Read::Relation(key, loaded)),
        })?;
        let generation = self.generation;
        for read in read {
            match read {
                Read::Person(key, loaded) => {
                    let slot = person_slot_of(*loaded, generation, &mut self.loads.0);
                    self.bytes += slot.bytes;
                    self.persons.insert(*key, slot);
                }
                Read::Relation(key, loaded) => {
                    let key = key.to_vec();
                    let slot =
                        relation_slot_of(loaded, key.capacity(), generation, &mut self.loads.1);
                    self.bytes += slot.bytes;
                    self.relations.insert(key, slot);
                }
            }
        }
        Ok(())
    }

    /// How many threads the next preloads read on at most (1 to [`MAX_READERS`]).
    pub(crate) fn set_readers(&mut self, readers: usize) {
        self.readers = readers.clamp(1, MAX_READERS);
    }

    /// Reads into the cache the states `messages` will need that are stored but not cached: each subject's row, the
    /// relations of their phone, address and shared contacts, and those relations' other users. The fold calls it
    /// beside the apply of the batches before (it reads nothing they write: their states are in the cache), so the
    /// reads are done here at once rather than in the middle of preparing, and on many threads when there are many
    /// ([`read_all`]: most of them wait on the disk). Loaded states are clean (nothing to write back); a state
    /// missed here is read when the screener asks for it. What it answers of the events themselves ([`Preloaded`])
    /// is for preparing these messages only.
    pub(crate) fn preload(
        &mut self,
        store: &Store,
        screener: Option<&caselink_screening::Screener>,
        messages: &[(u64, &[u8])],
    ) -> Result<Preloaded, StoreError> {
        // What the events themselves name: possible duplicates, subjects, and their phone, address and text relations.
        let mut lookups: Vec<(uuid::Uuid, Option<PersonKey>)> = Vec::new();
        let mut named: Vec<(u64, uuid::Uuid, PersonKey, Vec<RelationKey>)> = Vec::new();
        for &(sequence, bytes) in messages {
            if sequence <= self.states_through {
                continue;
            }
            let Ok(preview) = Preview::decode(bytes) else {
                continue;
            };
            let Ok(id) = uuid::Uuid::parse_str(&preview.event_id) else {
                continue;
            };
            let person = match &preview.subject {
                None => None,
                Some(subject) => match PersonKey::from_hex(&subject.person_key) {
                    Ok(key) => Some(key),
                    Err(_) => continue,
                },
            };
            if sequence <= self.position || store.may_have_seen(&folded_at(&id, person.as_ref())) {
                lookups.push((id, person));
            }
            let (Some(subject), Some(key)) = (&preview.subject, person) else {
                continue;
            };
            let mut keys: Vec<RelationKey> = [
                (ContactKind::Phone, &subject.phone_key),
                (ContactKind::Address, &subject.address_key),
            ]
            .into_iter()
            .filter_map(|(kind, contact)| RelationKey::of_contact(kind as i32, contact))
            .collect();
            if let Some(screener) = screener {
                let uscc = preview.merchant.as_ref().map_or("", |m| m.uscc.as_str());
                keys.extend(screener.text_relation(
                    preview.complaint.is_some(),
                    uscc,
                    &preview.summary,
                ));
            }
            named.push((sequence, id, key, keys));
        }
        let folded = read_all(&lookups, self.readers, |(id, person)| {
            store.folded_sequence(&folded_at(id, person.as_ref()))
        })?;
        let preloaded = Preloaded {
            folded: lookups.iter().map(|(id, _)| *id).zip(folded).collect(),
        };
        // Of the events the preparation will skip (duplicates, and replays the first fold skipped), nothing is read.
        let mut subjects: Vec<PersonKey> = Vec::new();
        let mut relations: Vec<RelationKey> = Vec::new();
        for (sequence, id, key, keys) in named {
            let applied = match preloaded.folded.get(&id) {
                None => true,
                Some(folded) if sequence <= self.position => *folded == Some(sequence),
                Some(folded) => folded.is_none(),
            };
            if applied {
                subjects.push(key);
                relations.extend(keys);
            }
        }

        // Each round's reads go together (their latency is the disk's, paid once a round, not once a read). First the
        // subjects and the relations the events name.
        subjects.sort_unstable();
        subjects.dedup();
        relations.sort_unstable();
        relations.dedup();
        let named: Vec<Vec<u8>> = relations.iter().map(RelationKey::to_bytes).collect();
        self.load(store, &subjects, &named)?;
        // Then the relations of the subjects' other shared contacts, and the users of the relations read so far (with
        // one user too: the batch may bring the second, and the screener then reads the first).
        let mut shared: Vec<RelationKey> = Vec::new();
        for key in &subjects {
            let person = &self.person_slot(store, key, false)?.value.screening;
            shared.extend(
                person
                    .contacts
                    .iter()
                    .filter(|c| c.shared)
                    .filter_map(|c| RelationKey::of_contact(c.kind, &c.key)),
            );
        }
        shared.sort_unstable();
        shared.dedup();
        let shared: Vec<Vec<u8>> = shared
            .iter()
            .filter(|k| relations.binary_search(k).is_err())
            .map(RelationKey::to_bytes)
            .collect();
        let users = self.users_of(store, named)?;
        self.load(store, &users, &shared)?;
        // Last, the users of those other relations (rarely any: a subject's shared contacts are mostly the event's).
        let more = self.users_of(store, shared)?;
        self.load(store, &more, &[])?;
        for user in users.iter().chain(&more) {
            self.person_slot(store, user, false)?;
        }
        Ok(preloaded)
    }

    /// The users of `relations` (read if not cached, and marked used), sorted, each once.
    fn users_of(
        &mut self,
        store: &Store,
        relations: Vec<Vec<u8>>,
    ) -> Result<Vec<PersonKey>, StoreError> {
        let mut users: Vec<PersonKey> = Vec::new();
        for key in relations {
            let relation = &*self.relation_slot(store, key, false)?.value;
            users.extend(
                relation
                    .persons
                    .iter()
                    .filter_map(|p| <[u8; 32]>::try_from(p.as_slice()).ok().map(PersonKey)),
            );
        }
        users.sort_unstable();
        users.dedup();
        Ok(users)
    }

    /// The person's number ([`PersonNumber`]): the stored one, or the next one, given in `batch`. A person keeps theirs
    /// in the cache until that batch is applied: whoever gets a number has an event folded, and is dirty until a later
    /// checkpoint is applied.
    pub(crate) fn number(
        &mut self,
        store: &Store,
        key: &PersonKey,
        batch: &mut Writes,
    ) -> Result<PersonNumber, StoreError> {
        let next = PersonNumber(self.next_number);
        let state = &mut self.person_slot(store, key, false)?.value;
        if let Some(number) = state.number {
            return Ok(number);
        }
        state.number = Some(next);
        self.next_number += 1;
        batch.number(key, next);
        Ok(next)
    }

    /// The person's record, loaded from sled (`p`, as of `states_at`) on first use, marked dirty.
    pub(crate) fn record(
        &mut self,
        store: &Store,
        key: &PersonKey,
    ) -> Result<&mut PersonRecord, StoreError> {
        Ok(&mut self.person_slot(store, key, true)?.value.record)
    }

    /// The person's sealed identity as the event carries it: kept for the next checkpoint when it differs from the
    /// stored one (or was never stored, or carries no digest), like the rest of the person's state.
    pub(crate) fn identity(
        &mut self,
        store: &Store,
        key: &PersonKey,
        sealed: &SealedIdentity,
    ) -> Result<(), StoreError> {
        let held = &self
            .person_slot(store, key, false)?
            .value
            .record
            .identity_digest;
        if sealed.digest.is_empty() || sealed.digest != *held {
            let state = &mut self.person_slot(store, key, true)?.value;
            state.record.identity_digest.clone_from(&sealed.digest);
            state.sealed = Some(sealed.encode_to_vec());
        }
        Ok(())
    }

    pub(crate) fn counters(&mut self) -> &mut BatchCounters {
        &mut self.counters
    }

    /// The screener's view: states behind `store`, cached here.
    pub(crate) fn screening_store<'a>(&'a mut self, store: &'a Store) -> Working<'a> {
        Working { store, cache: self }
    }

    /// Writes every dirty state into `batch` (states as of the batch's last sequence: the caller records
    /// `states_at` in the same batch), with the flagged-list entries and the counters. The relations and person rows
    /// it stores are added to `stored` (for the store's filters, once the batch is applied).
    pub(crate) fn checkpoint(
        &mut self,
        store: &Store,
        batch: &mut Writes,
        stored: &mut Stored,
    ) -> Result<u64, StoreError> {
        let generation = self.generation + 1;
        // Before the dirty relations: their runs must be newer than the copies.
        self.compact_runs(store, batch, stored)?;
        // Dirty states never leave the cache (`Slot::age`).
        for key in std::mem::take(&mut self.dirty_persons) {
            if !self.persons.contains_key(&key) {
                continue;
            }
            // Everyone dirty has had an event folded, and so a number; a person changed by someone else's event
            // without one of their own would get theirs here.
            let number = self.number(store, &key, batch)?;
            let Some(slot) = self.persons.get_mut(&key) else {
                continue;
            };
            // A cross-person rule may flag someone this interval has no event of: their row is written with the
            // listing too.
            let state = &mut slot.value;
            relist(batch, &key, &mut state.record, &state.screening);
            let encoded = encode_person_row(&state.record, &state.screening);
            if let Some(sealed) = state.sealed.take() {
                batch.insert(&identity_key(number)[..], sealed);
            }
            slot.written(generation, encoded.len(), &mut self.bytes);
            batch.insert(&row_key(number)[..], encoded);
        }
        let mut runs = Runs::default();
        for key in std::mem::take(&mut self.dirty_relations) {
            let Some(slot) = self.relations.get_mut(&key) else {
                continue;
            };
            // A relation with one user and a small state goes into the checkpoint's runs, not to a key of its own; one
            // with more users (it moves when its second user comes; it never has fewer) or a big state is at `r`. One
            // looked up but never used stays absent (an empty state encodes to nothing).
            let encoded = slot.value.encode_to_vec();
            slot.written(generation, encoded.len(), &mut self.bytes);
            if crate::runs::in_runs(slot.value.persons.len(), encoded.len()) {
                // Had it been big once, its older state at `r` would win over the runs.
                if store.may_be_at_r(&key) {
                    batch.remove(relation_key(&key));
                }
                runs.push(store, batch, stored, &key, &encoded);
            } else if !encoded.is_empty() {
                batch.insert(relation_key(&key), encoded);
                stored.relations.push(key);
            }
        }
        runs.close(store, batch, stored);
        for (key, adds) in std::mem::take(&mut self.counters).into_adds() {
            let entry = match self.counter_totals.entry(key) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((store.counter_day(&key)?, generation))
                }
            };
            entry.0.merge(&adds);
            entry.1 = generation;
            batch.insert(&key[..], entry.0.encode_to_vec());
        }
        self.last_checkpoint = Instant::now();
        self.generation = generation;
        Ok(generation)
    }

    /// Compacts runs ([`crate::runs`]): removes the runs the checkpoint before copied, and copies the live entries of
    /// the runs the index picks now into new runs (removed by the next checkpoint, so that a reader never finds a run
    /// gone before its copies are indexed). An entry is live if its relation is in no newer run and not at `r`.
    /// The cache answers for every relation it holds: a state written by a checkpoint not yet applied stays cached
    /// until it is, so what the store says of a relation not cached is complete. A dirty one is written by this
    /// checkpoint after the copies (so newer); a clean one with one user is copied as cached.
    fn compact_runs(
        &mut self,
        store: &Store,
        batch: &mut Writes,
        stored: &mut Stored,
    ) -> Result<(), StoreError> {
        for gone in std::mem::take(&mut self.retired_runs) {
            batch.remove(&crate::runs::run_key(gone.id)[..]);
            stored.gone_runs.push(gone);
        }
        let victims = store.run_index().victims(&self.policy.compaction);
        if victims.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let mut copies = Runs::default();
        let mut copied: HashSet<Vec<u8>> = HashSet::default();
        let mut entries = 0usize;
        let mut retired = Vec::with_capacity(victims.len());
        for &id in &victims {
            let Some((extent, run)) = store.run(id)? else {
                continue;
            };
            retired.push(crate::runs::GoneRun {
                id,
                digests: crate::runs::run_digests(&run)?,
                extent,
            });
            for entry in crate::runs::run_entries(&run) {
                let (key, state) = entry?;
                entries += 1;
                if copied.contains(key) {
                    continue;
                }
                let live = match self.relations.get(key) {
                    Some(slot) if slot.dirty => None,
                    Some(slot) => Some(slot.value.encode_to_vec())
                        .filter(|e| crate::runs::in_runs(slot.value.persons.len(), e.len())),
                    None => (store.newest_run_of(key)? == Some(id)).then(|| state.to_vec()),
                };
                if let Some(live) = live {
                    copies.push(store, batch, stored, key, &live);
                    copied.insert(key.to_vec());
                }
            }
        }
        copies.close(store, batch, stored);
        tracing::debug!(
            runs = victims.len(),
            entries,
            copied = copied.len(),
            compact_us = started.elapsed().as_micros() as u64,
            "fold: runs compacted"
        );
        self.retired_runs = retired;
        Ok(())
    }

    /// The batch carrying checkpoint `generation` was applied: what it wrote may now leave memory.
    pub(crate) fn checkpoint_applied(&mut self, generation: u64) {
        self.applied = self.applied.max(generation);
    }

    /// Drops clean states beyond the budget, least recently used first, down to three quarters of the budget; only
    /// those whose last write is applied (see [`Slot::written`]). Called before a batch is prepared, so its cost is
    /// the fold's: the cut is found from the evictable bytes per generation (a hash map of a few thousand
    /// generations, sorted; not a sort of every slot, nor an ordered map's search per slot), and the dropped states (tens of thousands of decoded trees of small allocations) are freed on a
    /// thread of their own.
    pub(crate) fn evict(&mut self) {
        let applied = self.applied;
        if self.counter_totals.len() > MAX_COUNTER_TOTALS {
            self.counter_totals
                .retain(|_, (_, written)| *written > applied);
        }
        if self.bytes <= self.policy.budget_bytes {
            return;
        }
        let started = Instant::now();
        let target = self.policy.budget_bytes / 4 * 3;
        let mut by_generation: HashMap<u64, usize> = HashMap::default();
        let ages = (self.persons.values().filter_map(|s| s.age(applied)))
            .chain(self.relations.values().filter_map(|s| s.age(applied)));
        for (used, bytes) in ages {
            *by_generation.entry(used).or_default() += bytes;
        }
        let mut by_generation: Vec<(u64, usize)> = by_generation.into_iter().collect();
        by_generation.sort_unstable();
        // Everything evictable used before the generation where the freed bytes reach the excess goes, and of that
        // generation as much as still exceeds (a burst within one checkpoint interval can exceed the budget alone).
        let excess = self.bytes - target;
        let mut cut = Cut {
            generation: u64::MAX,
            remaining: 0,
            applied,
        };
        let mut freed = 0usize;
        for (generation, bytes) in by_generation {
            if freed + bytes >= excess {
                cut.generation = generation;
                cut.remaining = excess - freed;
                break;
            }
            freed += bytes;
        }
        let before = self.bytes;
        let mut bytes = 0usize;
        let persons: Vec<_> = self
            .persons
            .extract_if(|_, s| !cut.keep(s, &mut bytes))
            .collect();
        let relations: Vec<_> = self
            .relations
            .extract_if(|_, s| !cut.keep(s, &mut bytes))
            .collect();
        // A map keeps the table of its largest size: give back what a burst (a backlog's many dirty states) grew.
        shrink(&mut self.persons);
        shrink(&mut self.relations);
        self.bytes = bytes;
        let dropped = (persons.len(), relations.len());
        free_elsewhere((persons, relations));
        tracing::debug!(
            before,
            after = bytes,
            persons = dropped.0,
            relations = dropped.1,
            evict_us = started.elapsed().as_micros(),
            "fold cache: clean states dropped"
        );
    }
}

/// The runs a checkpoint writes ([`crate::runs`]): each closed when full, and the last at the end.
#[derive(Default)]
struct Runs {
    open: crate::runs::RunWriter,
}

impl Runs {
    fn push(
        &mut self,
        store: &Store,
        batch: &mut Writes,
        stored: &mut Stored,
        key: &[u8],
        state: &[u8],
    ) {
        if !self.open.fits(key, state) {
            self.close(store, batch, stored);
        }
        self.open.push(key, state);
    }

    fn close(&mut self, store: &Store, batch: &mut Writes, stored: &mut Stored) {
        let run = std::mem::take(&mut self.open);
        if run.is_empty() {
            return;
        }
        let id = store.run_index().allocate();
        let (bytes, digests) = run.finish();
        let extent = batch.run(&bytes);
        batch.insert(
            &crate::runs::run_key(id)[..],
            crate::runs::run_ref(extent, &bytes),
        );
        stored.runs.push((id, digests));
    }
}

/// Frees `garbage` on a short-lived thread of its own, or here if none can be started.
fn free_elsewhere<T: Send + 'static>(garbage: T) {
    let spawned = std::thread::Builder::new()
        .name("fold-evicted".into())
        .spawn(move || drop(garbage));
    if let Err(e) = spawned {
        tracing::debug!(error = %e, "evicted states freed on the fold's thread");
    }
}

/// Counter records (region, day) remembered before the applied ones are forgotten.
const MAX_COUNTER_TOTALS: usize = 100_000;

/// Halves a map's table when it is less than a quarter full.
fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 1024 && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}

/// Which clean states an eviction drops: those used before `generation`, and of `generation` the first
/// `remaining` bytes met.
struct Cut {
    generation: u64,
    remaining: usize,
    applied: u64,
}

impl Cut {
    /// Whether `slot` stays (adding its bytes to `bytes` then).
    fn keep<T>(&mut self, slot: &Slot<T>, bytes: &mut usize) -> bool {
        let kept = match slot.age(self.applied) {
            None => true,
            Some((used, _)) if used > self.generation => true,
            Some((used, size)) if used == self.generation && self.remaining > 0 => {
                self.remaining = self.remaining.saturating_sub(size);
                false
            }
            Some((used, _)) => used == self.generation,
        };
        if kept {
            *bytes += slot.bytes;
        }
        kept
    }
}

/// Fewest keys given a reading thread of their own: below this many per thread, starting one costs more than it saves.
const READS_PER_THREAD: usize = 16;
/// Most threads reading at once. A state the cache evicted is usually read from the disk, not from memory, and a disk
/// answers many reads in flight nearly as fast as one: on the benchmark's machine a 4 KiB random read takes ~0.4 ms
/// alone, and 8, 16 and 32 in flight give ~25,000, ~28,000 and ~39,000 reads/s against ~2,400 one at a time
/// (BENCHMARKS.md, session 20). The threads mostly wait on the disk, so more of them than cores is the point; 32 read
/// no faster than 16 in the live fold there (other work shares the disk and the two cores).
pub(crate) const MAX_READERS: usize = 16;
/// Keys a reading thread takes at a time: few, so that one slow read holds up only the keys behind it in its thread.
const READ_CHUNK: usize = 4;

/// `read` of every key, in order; on up to `readers` threads, one per [`READS_PER_THREAD`] keys, each taking
/// the next [`READ_CHUNK`] keys not yet taken (sled's reads run in parallel: only a batch being applied holds them up).
/// The first error is returned (the other threads finish their chunk in hand and stop).
fn read_all<K: Sync, T: Send>(
    keys: &[K],
    readers: usize,
    read: impl Fn(&K) -> Result<T, StoreError> + Sync,
) -> Result<Vec<T>, StoreError> {
    let threads = (keys.len() / READS_PER_THREAD).clamp(1, readers.max(1));
    if threads == 1 {
        return keys.iter().map(&read).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    // Chunks read by one thread: where each starts, and its values.
    let work = || -> Result<Vec<(usize, Vec<T>)>, StoreError> {
        let mut chunks = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let start = next.fetch_add(READ_CHUNK, Ordering::Relaxed);
            let Some(chunk) = keys.get(start..keys.len().min(start + READ_CHUNK)) else {
                break;
            };
            match chunk.iter().map(&read).collect() {
                Ok(values) => chunks.push((start, values)),
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        Ok(chunks)
    };
    let results: Vec<_> = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut results = vec![work()];
        results.extend(others.into_iter().map(|other| {
            other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }));
        results
    });
    let mut chunks = Vec::new();
    for result in results {
        chunks.extend(result?);
    }
    chunks.sort_unstable_by_key(|(start, _)| *start);
    Ok(chunks.into_iter().flat_map(|(_, values)| values).collect())
}

/// Where the fold finds whether an event was folded: the person's timeline, or for an event without a person the
/// event-id index.
fn folded_at<'a>(id: &'a uuid::Uuid, person: Option<&'a PersonKey>) -> FoldedAt<'a> {
    match person {
        Some(person) => FoldedAt::Timeline { person, id },
        None => FoldedAt::Index(id),
    }
}

/// A cache slot for a person as read from sled (`None`: no number; a number without a row: no row yet), counted in
/// `loads` when there was a row.
fn person_slot_of(
    loaded: Option<LoadedPerson>,
    generation: u64,
    loads: &mut u64,
) -> Slot<PersonState> {
    let (number, row) = loaded.map_or((None, None), |(n, row)| (Some(n), row));
    *loads += u64::from(row.is_some());
    let (row, encoded) = row.unwrap_or_default();
    let state = PersonState {
        record: row.record.unwrap_or_default(),
        screening: row.screening.unwrap_or_default(),
        sealed: None,
        number,
    };
    Slot::new(state, encoded, 0, generation)
}

/// A cache slot for a relation as read from sled (`None`: default), under a key with `key_heap` heap bytes.
fn relation_slot_of(
    loaded: Option<LoadedRelation>,
    key_heap: usize,
    generation: u64,
    loads: &mut u64,
) -> Slot<RelationState> {
    *loads += u64::from(loaded.is_some());
    let (state, encoded) = loaded.unwrap_or_default();
    Slot::new(state, encoded, key_heap, generation)
}

/// A person's record and screening state: what their row `p` holds.
#[derive(Debug, Default)]
struct PersonState {
    record: PersonRecord,
    screening: PersonScreening,
    /// A new sealed identity (encoded) for the next checkpoint to store beside the row.
    sealed: Option<Vec<u8>>,
    /// Where the row, identity and timeline are (`None`: a person the store has never seen).
    number: Option<PersonNumber>,
}

/// Marks a state used in `generation` (for eviction) and, with `dirty`, to be written back; whether it became dirty.
fn mark<T>(slot: &mut Slot<T>, generation: u64, dirty: bool) -> bool {
    slot.used = generation;
    let became = dirty && !slot.dirty;
    slot.dirty |= dirty;
    became
}

/// Keeps the person's entry in the flagged list (`f`) in step with their flags (and the record's listing region).
fn relist(
    batch: &mut Writes,
    key: &PersonKey,
    record: &mut PersonRecord,
    screening: &PersonScreening,
) {
    if screening.flags.is_empty() {
        return;
    }
    let mut entry = FlaggedEntry::default();
    for flag in &screening.flags {
        if flag.active {
            entry.rules.push(flag.rule.clone());
        } else {
            entry.withdrawn.push(flag.rule.clone());
        }
        if flag.updated_seq >= entry.updated_seq {
            entry.updated_seq = flag.updated_seq;
            entry.updated_us = flag.window_to_us;
        }
    }
    let region = record.latest_region.clone();
    if !record.listed_region.is_empty() && record.listed_region != region {
        batch.remove(&flagged_key(&record.listed_region, key)[..]);
    }
    batch.insert(&flagged_key(&region, key)[..], entry.encode_to_vec());
    record.listed_region = region;
}

/// What [`StateCache::preload`] read of the events themselves, for preparing the same messages
/// ([`crate::fold::prepare_preloaded`]): the folded sequence (if any) of each event the seen-filter may have seen (a
/// duplicate, or about 1 % of new events) and of each replay, so that a "maybe" is looked up with the preload's other
/// reads, not one by one in the middle of preparing. Valid until a batch other than those messages is applied:
/// it is dropped with their preparation.
#[derive(Debug, Default)]
pub(crate) struct Preloaded {
    pub(crate) folded: HashMap<uuid::Uuid, Option<u64>>,
}

/// Of an encoded `CaseEvent`, only what [`StateCache::preload`] needs (the other fields are skipped undecoded).
#[derive(Clone, PartialEq, prost::Message)]
struct Preview {
    #[prost(string, tag = "1")]
    event_id: String,
    #[prost(message, optional, tag = "8")]
    subject: Option<PreviewSubject>,
    #[prost(message, optional, tag = "9")]
    merchant: Option<PreviewMerchant>,
    #[prost(string, tag = "10")]
    summary: String,
    /// Present when the payload is `complaint_received` (its fields are skipped).
    #[prost(message, optional, tag = "100")]
    complaint: Option<Present>,
}

/// Of `CaseEvent.merchant`: its credit code.
#[derive(Clone, PartialEq, prost::Message)]
struct PreviewMerchant {
    #[prost(string, tag = "2")]
    uscc: String,
}

/// A message only known to be there.
#[derive(Clone, PartialEq, prost::Message)]
struct Present {}

/// Of `CaseEvent.subject` (`Person`): its keys.
#[derive(Clone, PartialEq, prost::Message)]
struct PreviewSubject {
    #[prost(string, tag = "10")]
    person_key: String,
    #[prost(string, tag = "11")]
    phone_key: String,
    #[prost(string, tag = "12")]
    address_key: String,
}

/// The screener's [`caselink_screening::ScreeningStore`]: the cache, filled from `store` on first use.
pub(crate) struct Working<'a> {
    store: &'a Store,
    cache: &'a mut StateCache,
}

impl caselink_screening::ScreeningStore for Working<'_> {
    type Error = StoreError;

    fn person(&mut self, key: &PersonKey) -> Result<&mut PersonScreening, StoreError> {
        Ok(&mut self
            .cache
            .person_slot(self.store, key, true)?
            .value
            .screening)
    }

    fn person_ref(&mut self, key: &PersonKey) -> Result<&PersonScreening, StoreError> {
        // Used (for eviction), not dirty: nothing to write back for it.
        Ok(&self
            .cache
            .person_slot(self.store, key, false)?
            .value
            .screening)
    }

    fn relation(&mut self, key: &RelationKey) -> Result<&mut RelationState, StoreError> {
        Ok(&mut self
            .cache
            .relation_slot(self.store, key.to_bytes(), true)?
            .value)
    }
}

impl Working<'_> {
    /// The person's record (see [`StateCache::record`]).
    pub(crate) fn record(&mut self, key: &PersonKey) -> Result<&mut PersonRecord, StoreError> {
        self.cache.record(self.store, key)
    }

    /// Counter increments since the last checkpoint.
    pub(crate) fn counters(&mut self) -> &mut BatchCounters {
        &mut self.cache.counters
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use caselink_screening::ScreeningStore;

    use super::*;

    /// Looks up `n` relations never stored (what most of a fold's lookups are) and `n` persons, then checkpoints and
    /// evicts as the fold does.
    fn fill_and_evict(store: &Store, cache: &mut StateCache, n: usize) {
        for i in 0..n {
            let phone = RelationKey::Phone(format!("{i:064x}"));
            cache.screening_store(store).relation(&phone).unwrap();
            cache
                .record(store, &numbered_person(i as u64))
                .unwrap()
                .events += 1;
        }
        checkpoint_and_apply(store, cache);
        cache.evict();
    }

    /// The person key with `i` in its first eight bytes.
    fn numbered_person(i: u64) -> PersonKey {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&i.to_be_bytes());
        PersonKey(key)
    }

    /// A checkpoint of every dirty state, applied to the store as the fold applies one.
    fn checkpoint_and_apply(store: &Store, cache: &mut StateCache) {
        let mut writes = Writes::appending_at(store.log_end());
        let mut stored = Stored::default();
        let generation = cache.checkpoint(store, &mut writes, &mut stored).unwrap();
        store.apply(writes).unwrap();
        store.note_stored(&stored);
        cache.checkpoint_applied(generation);
    }

    #[test]
    fn preloading_reads_the_subject_its_relations_and_their_users_so_preparing_reads_nothing() {
        use crate::testing::{complaint, numbered, screening};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (PersonKey([0xa1; 32]), PersonKey([0xb2; 32]));
        let shared = "ab".repeat(32);
        let encoded = |n, person: &PersonKey| complaint(n, person, &shared).encode_to_vec();
        let first = [encoded(1, &a), encoded(2, &b)];
        let messages = numbered(&first, 1);
        let folder = screening();
        crate::fold::fold_batch(&store, &folder, &messages).unwrap();

        // A new session: nothing cached. A's next complaint with the phone needs A, the phone's relation and B.
        let (loads, dirty) =
            preload_and_prepare_one(&store, &folder, &numbered(&[encoded(3, &a)], 3));
        assert_eq!(loads, (2, 1), "A and B, and the phone's relation");
        assert_eq!(dirty, 0, "preloaded states are clean");
    }

    /// Preloads `batch` (one new event) into a new cache and prepares it; asserts that it was folded and that
    /// preparing read nothing from sled. Returns the preload's loads and the dirty states it left.
    fn preload_and_prepare_one(
        store: &Store,
        folder: &crate::fold::Folder,
        batch: &[(u64, &[u8])],
    ) -> ((u64, u64), usize) {
        let mut cache = StateCache::open(store, CachePolicy::default()).unwrap();
        cache
            .preload(store, folder.screener.as_deref(), batch)
            .unwrap();
        let preloaded = (cache.loads, cache.dirty());
        let prepared = crate::fold::prepare(store, folder, &mut cache, batch, true).unwrap();
        assert_eq!(prepared.stats.folded, 1);
        assert_eq!(
            (
                prepared.stats.loaded_persons,
                prepared.stats.loaded_relations
            ),
            (0, 0),
            "the preparation found everything in the cache"
        );
        preloaded
    }

    /// A subject filing with a new phone: their earlier shared phone's relation and its other user are read too (the
    /// last round: known only once the subject is read), so preparing still reads nothing.
    #[test]
    fn preloading_reads_the_relations_of_the_subjects_other_shared_contacts_and_their_users() {
        use crate::testing::{complaint, numbered, screening};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (PersonKey([0xa1; 32]), PersonKey([0xb2; 32]));
        let (old, new) = ("ab".repeat(32), "cd".repeat(32));
        let first = [
            complaint(1, &a, &old).encode_to_vec(),
            complaint(2, &b, &old).encode_to_vec(),
        ];
        let folder = screening();
        crate::fold::fold_batch(&store, &folder, &numbered(&first, 1)).unwrap();

        let next = [complaint(3, &a, &new).encode_to_vec()];
        let (loads, _) = preload_and_prepare_one(&store, &folder, &numbered(&next, 3));
        assert_eq!(
            loads,
            (2, 1),
            "A, the old phone's relation (A's shared contact) and B; the new phone has none stored"
        );
    }

    /// A checkpoint writes the states changed since the one before, and only those.
    #[test]
    fn a_checkpoint_writes_the_states_changed_since_the_one_before_and_no_others() {
        use crate::testing::{complaint, numbered, screening};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let folder = screening();
        let mut cache = StateCache::open(&store, CachePolicy::default()).unwrap();
        let people: Vec<PersonKey> = (0..5u8).map(|i| PersonKey([0x10 + i; 32])).collect();
        let phone = |i: usize| format!("{i:02x}").repeat(32);
        let first: Vec<Vec<u8>> = people
            .iter()
            .enumerate()
            .map(|(i, p)| complaint(i as u128 + 1, p, &phone(i)).encode_to_vec())
            .collect();
        // Folds `events` numbered from `first` as one checkpointed batch: the entries written to `p`, to `r` and to
        // the text runs `u`.
        let mut fold = |events: &[Vec<u8>], first: u64| {
            let stats =
                crate::fold::fold_into(&store, &folder, &mut cache, &numbered(events, first), true)
                    .unwrap();
            (
                stats.tables.entries(b'p'),
                stats.tables.entries(b'r'),
                stats.tables.entries(b'u'),
            )
        };
        assert_eq!(
            fold(&first, 1),
            (5, 0, 1),
            "five rows; the five phones and five texts, each with one user, in one run"
        );
        // Only the third person files again: their row, and their phone and the new text in a run.
        assert_eq!(
            fold(&[complaint(10, &people[2], &phone(2)).encode_to_vec()], 6),
            (1, 0, 1),
            "the row; the phone and the new text in a run"
        );
        // Nothing changed since: nothing written.
        assert_eq!(fold(&[], 8), (0, 0, 0));
        assert_eq!(cache.dirty(), 0);
    }

    /// A phone with one user is kept in runs however often they use it (each checkpoint that changes it writes it
    /// into a newer run, which wins); the second user moves it to `r`. Read back from sled (a fresh cache, another
    /// process) it is the same state wherever it is, and a third user's fold sees both earlier users.
    #[test]
    fn a_phone_with_one_user_stays_in_runs_and_a_second_user_moves_it_to_r() {
        use crate::store::relation_key;
        use crate::testing::{complaint, numbered, screening};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let folder = screening();
        let (a, b, c) = (
            PersonKey([0x31; 32]),
            PersonKey([0x32; 32]),
            PersonKey([0x33; 32]),
        );
        let phone = "ab".repeat(32);
        let relation = RelationKey::Phone(phone.clone()).to_bytes();
        let fold =
            |cache: &mut StateCache, events: &[caselink_proto::v1::CaseEvent], first: u64| {
                let encoded: Vec<Vec<u8>> = events.iter().map(Message::encode_to_vec).collect();
                crate::fold::fold_into(&store, &folder, cache, &numbered(&encoded, first), true)
                    .unwrap()
            };
        // The stored relation: its users, its uses, and whether it is at `r`.
        let stored = || {
            let (state, _) = store.load_relation(&relation).unwrap().unwrap();
            let at_r = store.tree().get(relation_key(&relation)).unwrap().is_some();
            (state.persons.len(), state.uses.len(), at_r)
        };
        let mut cache = StateCache::open(&store, CachePolicy::default()).unwrap();
        fold(&mut cache, &[complaint(1, &a, &phone)], 1);
        assert_eq!(stored(), (1, 1, false), "used once: in a run");
        // A's next record, in a fresh cache (read from the run): into a newer run.
        let mut cache = StateCache::open(&store, CachePolicy::default()).unwrap();
        let stats = fold(&mut cache, &[complaint(2, &a, &phone)], 2);
        assert_eq!(stats.tables.entries(b'r'), 0, "nothing at r");
        assert_eq!(stored(), (1, 2, false), "the newer run's state");
        assert_eq!(
            store.relation(&relation).unwrap().unwrap(),
            store.load_relation(&relation).unwrap().unwrap().0
        );

        // B's record in a fresh cache: the state is found in the runs, then moves to r.
        let mut cache = StateCache::open(&store, CachePolicy::default()).unwrap();
        let stats = fold(&mut cache, &[complaint(3, &b, &phone)], 3);
        assert_eq!(stats.folded, 1);
        assert_eq!(stored(), (2, 3, true));
        let links = |p: &PersonKey| {
            let s = store.screening(p).unwrap().unwrap();
            s.links.iter().filter(|l| l.relation == relation).count()
        };
        assert_eq!(
            (links(&a), links(&b)),
            (1, 1),
            "A and B are linked by the phone"
        );

        // C, in yet another cache, sees both.
        let mut cache = StateCache::open(&store, CachePolicy::default()).unwrap();
        fold(&mut cache, &[complaint(4, &c, &phone)], 4);
        assert_eq!(stored(), (3, 4, true));
        assert_eq!(links(&c), 2);
        assert!(
            !store.relations_in_runs().unwrap().contains_key(&relation),
            "r wins over the runs' older states"
        );
    }

    /// A relation with one user whose state grows past [`crate::runs::MAX_ENTRY_BYTES`] (a heavy claimant's phone)
    /// is kept at `r`, not in runs; read back it is the same state.
    #[test]
    fn a_relation_with_one_user_and_a_big_state_stays_at_r() {
        use crate::store::relation_key;
        use crate::testing::{complaint, numbered, screening};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let folder = screening();
        let a = PersonKey([0x51; 32]);
        let phone = "cd".repeat(32);
        let relation = RelationKey::Phone(phone.clone()).to_bytes();
        let events: Vec<Vec<u8>> = (1..=40u128)
            .map(|n| complaint(n, &a, &phone).encode_to_vec())
            .collect();
        let mut cache = StateCache::open(&store, CachePolicy::default()).unwrap();
        crate::fold::fold_into(&store, &folder, &mut cache, &numbered(&events, 1), true).unwrap();
        let (state, encoded) = store.load_relation(&relation).unwrap().unwrap();
        assert_eq!((state.persons.len(), state.uses.len()), (1, 40));
        assert!(encoded > crate::runs::MAX_ENTRY_BYTES, "{encoded} bytes");
        assert!(
            store.tree().get(relation_key(&relation)).unwrap().is_some(),
            "at r"
        );
        assert!(!store.relations_in_runs().unwrap().contains_key(&relation));
    }

    /// A complaint text used by one person goes into a run, not to a key at `r`. Read back through the runs'
    /// index (a fresh cache; a reopened store, which rebuilds the index from the runs) it is the same state; used again
    /// by its one user it goes into a newer run, which wins; a second user moves it to `r`, which wins over the runs.
    #[test]
    fn a_text_with_one_user_lives_in_a_run_and_a_second_user_moves_it_to_r() {
        use crate::store::relation_key;
        use crate::testing::{complaint, numbered, screening};
        let dir = tempfile::tempdir().unwrap();
        let folder = screening();
        let (a, b) = (PersonKey([0x41; 32]), PersonKey([0x42; 32]));
        let uscc = "91430600MA4L000777";
        let summary = "商品标签与实物不符，要求十倍赔偿";
        let relation =
            RelationKey::Text(caselink_screening::text_fingerprint(uscc, summary)).to_bytes();
        let same_text = |n: u128, person: &PersonKey| {
            let mut e = complaint(n, person, &format!("{:02x}", n).repeat(32));
            e.merchant = Some(caselink_proto::v1::Merchant {
                uscc: uscc.into(),
                ..Default::default()
            });
            e.summary = summary.into();
            e
        };
        let fold = |store: &Store, event: caselink_proto::v1::CaseEvent, sequence: u64| {
            let mut cache = StateCache::open(store, CachePolicy::default()).unwrap();
            let encoded = vec![event.encode_to_vec()];
            crate::fold::fold_into(
                store,
                &folder,
                &mut cache,
                &numbered(&encoded, sequence),
                true,
            )
            .unwrap()
        };
        // The stored text: its users, its uses, and whether it is at `r`.
        let stored = |store: &Store| {
            let (state, _) = store.load_relation(&relation).unwrap().unwrap();
            let at_r = store.tree().get(relation_key(&relation)).unwrap().is_some();
            (state.persons.len(), state.uses.len(), at_r)
        };
        {
            let store = Store::open(dir.path()).unwrap();
            let stats = fold(&store, same_text(1, &a), 1);
            assert_eq!(stats.tables.entries(b'u'), 1, "one run");
            assert_eq!(stored(&store), (1, 1, false), "in a run, not at r");
            assert_eq!(store.run_index().runs_of(&relation).len(), 1);
            // A again, in a fresh cache: the state is read from the run, and written to a newer one.
            let stats = fold(&store, same_text(2, &a), 2);
            assert_eq!(stats.loaded_relations, 1, "read from the run");
            assert_eq!(stored(&store), (1, 2, false), "the newer run's state");
            assert_eq!(store.run_index().runs_of(&relation).len(), 2, "in two runs");
        }
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(
                store.run_index().runs_of(&relation).len(),
                2,
                "the index rebuilt from the runs"
            );
            assert_eq!(stored(&store), (1, 2, false));
            assert_eq!(
                store.relations_in_runs().unwrap().get(&relation).cloned(),
                Some(store.relation(&relation).unwrap().unwrap().encode_to_vec())
            );
            // B files the same text on the same merchant: the text moves to r with both.
            fold(&store, same_text(3, &b), 3);
            assert_eq!(stored(&store), (2, 3, true));
            assert!(
                !store.relations_in_runs().unwrap().contains_key(&relation),
                "the runs' older states are superseded"
            );
            let links = |p: &PersonKey| {
                let s = store.screening(p).unwrap().unwrap();
                s.links.iter().filter(|l| l.relation == relation).count()
            };
            assert_eq!(
                (links(&a), links(&b)),
                (1, 1),
                "A and B are linked by the text"
            );
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            stored(&store),
            (2, 3, true),
            "r wins over the runs after a restart too"
        );
    }

    /// Many small checkpoints (one record each) leave many small runs, which later checkpoints compact: a run whose
    /// live entries were copied is gone after the next checkpoint, and every relation reads as in a store folded the
    /// same way without compaction, before and after reopening.
    #[test]
    fn compacted_runs_keep_every_relation_and_leave_the_store() {
        use crate::testing::{complaint, numbered, screening};
        let folder = screening();
        let compacting = CachePolicy {
            compaction: crate::runs::Compaction {
                min_dead: 1,
                small_entries: 16,
                min_small: 4,
                max_runs: 4,
            },
            ..CachePolicy::default()
        };
        let never = CachePolicy {
            compaction: crate::runs::Compaction {
                min_dead: u64::MAX,
                min_small: usize::MAX,
                ..crate::runs::Compaction::default()
            },
            ..CachePolicy::default()
        };
        // Twelve persons' first records, then four of them again (superseding their earlier runs' entries), each
        // record its own checkpoint.
        let people: Vec<PersonKey> = (0..12u8).map(|i| PersonKey([0x60 + i; 32])).collect();
        let events: Vec<Vec<u8>> = (0..16usize)
            .map(|n| {
                let i = n % 12;
                complaint(n as u128 + 1, &people[i], &format!("{i:02x}").repeat(32)).encode_to_vec()
            })
            .collect();
        let fold_all = |store: &Store, policy: CachePolicy| {
            let mut cache = StateCache::open(store, policy).unwrap();
            for (n, event) in events.iter().enumerate() {
                let one = [event.clone()];
                crate::fold::fold_into(
                    store,
                    &folder,
                    &mut cache,
                    &numbered(&one, n as u64 + 1),
                    true,
                )
                .unwrap();
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let reference = Store::open(dir.path()).unwrap();
        fold_all(&reference, never);
        let expected = reference.relations_in_runs().unwrap();
        assert_eq!(expected.len(), 12 + 16, "twelve phones, sixteen texts");
        assert_eq!(reference.run_stats().0, 16, "a run per checkpoint");

        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            fold_all(&store, compacting);
            assert!(
                store.run(0).unwrap().is_none(),
                "the first run was compacted away"
            );
            // The removed runs' blocks go back to the file system once their removal is flushed, not before.
            let log = dir.path().join(crate::eventlog::FILE_NAME);
            // Bytes the file takes on disk (`st_blocks` counts 512-byte units).
            let allocated = || {
                use std::os::unix::fs::MetadataExt;
                512 * std::fs::metadata(&log).unwrap().blocks()
            };
            let before = allocated();
            store.flush_blocking().unwrap();
            let after = allocated();
            assert!(
                after + crate::eventlog::BLOCK <= before,
                "removed runs punched out of the log: {before} → {after} bytes allocated"
            );
            let (runs, _, _) = store.run_stats();
            assert!(runs < 16, "{runs} runs");
            assert_eq!(store.relations_in_runs().unwrap(), expected);
            for key in expected.keys() {
                assert_eq!(
                    store.relation(key).unwrap(),
                    reference.relation(key).unwrap(),
                    "every relation reads the same"
                );
            }
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.relations_in_runs().unwrap(), expected);
        for key in expected.keys() {
            assert_eq!(
                store.relation(key).unwrap(),
                reference.relation(key).unwrap()
            );
        }
    }

    /// A batch naming more states than one thread reads: split between several threads, the preload still reads every
    /// subject, relation, co-user and possible duplicate, each once, so preparing reads nothing.
    #[test]
    fn preloading_many_states_on_several_threads_reads_each_once_and_leaves_nothing_to_preparing() {
        use crate::testing::{complaint, numbered, screening};
        let pairs = 3 * READS_PER_THREAD as u8;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let person = |side: u8, i: u8| {
            let mut key = [side; 32];
            key[31] = i;
            PersonKey(key)
        };
        let phone = |i: u8| format!("{i:02x}").repeat(32);
        // Pair i (a_i, b_i) shares phone i.
        let first: Vec<Vec<u8>> = (0..pairs)
            .flat_map(|i| {
                let n = 2 * u128::from(i);
                [
                    complaint(n + 1, &person(0xa0, i), &phone(i)).encode_to_vec(),
                    complaint(n + 2, &person(0xb0, i), &phone(i)).encode_to_vec(),
                ]
            })
            .collect();
        let folder = screening();
        crate::fold::fold_batch(&store, &folder, &numbered(&first, 1)).unwrap();

        // A new session. Each a_i files again on the phone, and each of b_i's complaints comes again (a duplicate).
        let mut next: Vec<Vec<u8>> = (0..pairs)
            .map(|i| complaint(1000 + u128::from(i), &person(0xa0, i), &phone(i)).encode_to_vec())
            .collect();
        next.extend((0..pairs).map(|i| first[2 * usize::from(i) + 1].clone()));
        let batch = numbered(&next, first.len() as u64 + 1);
        let mut cache = StateCache::open(&store, CachePolicy::default()).unwrap();
        let preloaded = cache
            .preload(&store, folder.screener.as_deref(), &batch)
            .unwrap();
        let pairs = u64::from(pairs);
        assert_eq!(
            cache.loads,
            (2 * pairs, pairs),
            "every a_i and b_i (a co-user), every phone; nothing of the resubmitted complaints"
        );
        assert!(
            preloaded.folded.len() as u64 >= pairs,
            "every resubmitted complaint looked up"
        );
        let prepared =
            crate::fold::prepare_preloaded(&store, &folder, &mut cache, &batch, true, &preloaded)
                .unwrap();
        assert_eq!(
            (prepared.stats.folded, prepared.stats.duplicates),
            (pairs as usize, pairs as usize)
        );
        assert_eq!(
            (
                prepared.stats.loaded_persons,
                prepared.stats.loaded_relations,
                prepared.stats.looked_up_events
            ),
            (0, 0, 0),
            "the preparation found everything in the cache"
        );
    }

    /// A complaint repeating a stored complaint's text on the same merchant joins that text's relation: the preload
    /// reads it (and its users), so preparing reads nothing.
    #[test]
    fn preloading_reads_the_relation_of_a_repeated_complaint_text() {
        use crate::testing::{complaint, numbered, screening};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (PersonKey([0xa4; 32]), PersonKey([0xb5; 32]));
        let folder = screening();
        let first = [complaint(1, &a, &"aa".repeat(32)).encode_to_vec()];
        crate::fold::fold_batch(&store, &folder, &numbered(&first, 1)).unwrap();

        let mut again = complaint(2, &b, &"bb".repeat(32));
        let original = complaint(1, &a, "");
        again.merchant = original.merchant;
        again.summary = original.summary;
        let next = [again.encode_to_vec()];
        let batch = numbered(&next, 2);
        let mut cache = StateCache::open(&store, CachePolicy::default()).unwrap();
        let preloaded = cache
            .preload(&store, folder.screener.as_deref(), &batch)
            .unwrap();
        assert_eq!(cache.loads.1, 1, "the text's relation");
        let prepared =
            crate::fold::prepare_preloaded(&store, &folder, &mut cache, &batch, true, &preloaded)
                .unwrap();
        assert_eq!(prepared.stats.folded, 1);
        assert_eq!(
            (
                prepared.stats.loaded_persons,
                prepared.stats.loaded_relations
            ),
            (0, 0),
            "the preparation found the text's relation and its user cached"
        );
    }

    /// A resubmitted event (its id folded before) is a "maybe" of the seen-filter: the preload looks it up in sled, so
    /// the preparation does not.
    #[test]
    fn preloading_looks_up_possible_duplicates_so_preparing_does_not() {
        use crate::testing::{complaint, numbered, screening};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let person = PersonKey([0xa1; 32]);
        let phone = "ab".repeat(32);
        let encoded = |n| complaint(n, &person, &phone).encode_to_vec();
        let first = [encoded(1), encoded(2)];
        let folder = screening();
        crate::fold::fold_batch(&store, &folder, &numbered(&first, 1)).unwrap();
        let again = [encoded(2), encoded(3)];
        let batch = numbered(&again, 3);

        let mut unloaded = StateCache::open(&store, CachePolicy::default()).unwrap();
        let prepared = crate::fold::prepare(&store, &folder, &mut unloaded, &batch, false).unwrap();
        assert_eq!((prepared.stats.duplicates, prepared.stats.folded), (1, 1));
        assert_eq!(
            prepared.stats.looked_up_events, 1,
            "without a preload the duplicate is looked up while preparing"
        );

        let mut cache = StateCache::open(&store, CachePolicy::default()).unwrap();
        let preloaded = cache
            .preload(&store, folder.screener.as_deref(), &batch)
            .unwrap();
        let prepared =
            crate::fold::prepare_preloaded(&store, &folder, &mut cache, &batch, false, &preloaded)
                .unwrap();
        assert_eq!((prepared.stats.duplicates, prepared.stats.folded), (1, 1));
        assert_eq!(prepared.stats.looked_up_events, 0);
    }

    /// The consumer prepares a group of batches while the group before is applied: a duplicate of an event two
    /// batches back, not yet applied, is still caught; once a batch is applied its events are found in sled.
    #[test]
    fn batches_prepared_ahead_see_every_unapplied_batch_and_then_sled() {
        use crate::testing::{complaint, numbered, screening};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let person = PersonKey([0xc3; 32]);
        let phone = "cd".repeat(32);
        let encoded = |n| complaint(n, &person, &phone).encode_to_vec();
        let folder = screening();
        let mut cache = StateCache::open(&store, CachePolicy::default()).unwrap();
        let (a, b, c) = ([encoded(1)], [encoded(2)], [encoded(1)]);
        let prepare = |cache: &mut StateCache, encoded: &[Vec<u8>], first| {
            crate::fold::prepare(&store, &folder, cache, &numbered(encoded, first), false).unwrap()
        };
        let first = prepare(&mut cache, &a, 1);
        let second = prepare(&mut cache, &b, 2);
        let third = prepare(&mut cache, &c, 3);
        assert_eq!(first.stats.folded, 1);
        assert_eq!(second.stats.folded, 1);
        assert_eq!(
            (third.stats.folded, third.stats.duplicates),
            (0, 1),
            "the first batch's event, two batches back and not applied, is a duplicate"
        );
        for prepared in [first, second, third] {
            prepared.apply(&store).unwrap().settle(&mut cache);
        }
        assert!(
            cache.inflight_ids.is_empty(),
            "applied batches leave nothing in flight"
        );
        let again = prepare(&mut cache, &a, 4);
        assert_eq!((again.stats.folded, again.stats.duplicates), (0, 1));
        assert_eq!(again.stats.looked_up_events, 1, "found in sled");
    }

    /// A message this session already took, delivered again after the ack wait (at a sequence the session passed,
    /// not yet checkpointed), is a redelivery: its batch applied or not, and its timeline entry naming its sequence,
    /// the states do not take it twice.
    #[test]
    fn a_message_delivered_again_within_a_session_is_not_applied_twice() {
        use crate::testing::{complaint, numbered, screening};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let person = PersonKey([0xd4; 32]);
        let phone = "ef".repeat(32);
        let encoded: Vec<Vec<u8>> = (1..=3)
            .map(|n| complaint(n, &person, &phone).encode_to_vec())
            .collect();
        let folder = screening();
        let mut cache = StateCache::open(&store, CachePolicy::default()).unwrap();
        let prepare = |cache: &mut StateCache, messages: &[(u64, &[u8])], checkpoint| {
            crate::fold::prepare(&store, &folder, cache, messages, checkpoint).unwrap()
        };
        let first = prepare(&mut cache, &numbered(&encoded[..2], 1), false);
        first.apply(&store).unwrap().settle(&mut cache);
        // Sequence 2 again (applied, not checkpointed), then 3.
        let again = [(2, encoded[1].as_slice()), (3, encoded[2].as_slice())];
        let second = prepare(&mut cache, &again, true);
        assert_eq!(
            (
                second.stats.redelivered,
                second.stats.replayed,
                second.stats.folded
            ),
            (1, 0, 1)
        );
        second.apply(&store).unwrap().settle(&mut cache);
        assert_eq!(store.person(&person).unwrap().unwrap().events, 3);
    }

    #[test]
    fn a_state_only_read_is_not_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut cache = StateCache::open(&store, CachePolicy::default()).unwrap();
        let (read, changed) = (PersonKey([1; 32]), PersonKey([2; 32]));
        let mut working = cache.screening_store(&store);
        assert_eq!(working.person_ref(&read).unwrap().latest_us, 0);
        working.person(&changed).unwrap().latest_us = 5;
        assert_eq!(cache.dirty(), 1);
        let mut writes = Writes::appending_at(store.log_end());
        let mut stored = Stored::default();
        cache.checkpoint(&store, &mut writes, &mut stored).unwrap();
        // One row, of the person changed, who gets a number with it.
        assert_eq!(writes.tables.entries(b'p'), 1);
        assert_eq!(writes.tables.entries(b'n'), 1);
    }

    #[test]
    fn the_budget_bounds_what_the_states_take_in_memory_lookups_of_absent_states_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let budget = 256 << 10;
        let policy = CachePolicy {
            budget_bytes: budget,
            ..CachePolicy::default()
        };
        let mut cache = StateCache::open(&store, policy).unwrap();
        fill_and_evict(&store, &mut cache, 20_000);
        // What the map entries alone take, whatever the states hold: within the budget after eviction.
        let entries = cache.persons.len()
            * (std::mem::size_of::<(PersonKey, Slot<PersonState>)>()
                + std::mem::size_of::<PersonState>())
            + cache.relations.len()
                * (std::mem::size_of::<(Vec<u8>, Slot<RelationState>)>()
                    + std::mem::size_of::<RelationState>()
                    + 65);
        assert!(
            entries <= budget,
            "{entries} bytes of entries kept, budget {budget}"
        );
        assert!(cache.bytes <= budget, "{} accounted", cache.bytes);
        assert!(
            cache.persons.len() + cache.relations.len() > 0,
            "not everything dropped"
        );
        // The tables gave back what the burst grew.
        assert!(cache.persons.capacity() < 20_000 && cache.relations.capacity() < 20_000);
        // Nothing evicted was lost: a dropped person comes back from sled as counted.
        let dropped = (0..20_000u64)
            .map(|i| {
                let mut key = [0u8; 32];
                key[..8].copy_from_slice(&i.to_be_bytes());
                PersonKey(key)
            })
            .find(|k| !cache.persons.contains_key(k))
            .unwrap();
        assert_eq!(cache.record(&store, &dropped).unwrap().events, 1);
    }

    /// Eviction goes by last use: the states of the oldest checkpoint interval go first, then as much of the next as
    /// the excess still asks, and the newest stay.
    #[test]
    fn eviction_drops_the_least_recently_used_states_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut cache = StateCache::open(
            &store,
            CachePolicy {
                budget_bytes: usize::MAX / 2,
                ..CachePolicy::default()
            },
        )
        .unwrap();
        let key = numbered_person;
        // Three checkpoint intervals, each using its own persons: A (0..100), B (100..200), C (200..250).
        let mut sizes = Vec::new();
        for range in [0..100u64, 100..200, 200..250] {
            let before = cache.bytes;
            for i in range {
                cache.record(&store, &key(i)).unwrap().events += 1;
            }
            checkpoint_and_apply(&store, &mut cache);
            sizes.push(cache.bytes - before);
        }
        // A budget whose three quarters leave room for C and half of B.
        cache.policy.budget_bytes = (sizes[1] / 2 + sizes[2]) / 3 * 4 + 4;
        cache.evict();
        let kept = |range: std::ops::Range<u64>| {
            range
                .filter(|i| cache.persons.contains_key(&key(*i)))
                .count()
        };
        assert_eq!(kept(0..100), 0, "A, used longest ago, is gone");
        let b = kept(100..200);
        assert!((40..=60).contains(&b), "about half of B stays: {b}");
        assert_eq!(kept(200..250), 50, "C, used last, stays whole");
        assert!(cache.bytes <= cache.policy.budget_bytes / 4 * 3);
    }

    /// Many keys are read on several threads, each value in its key's place, even when reads finish out of order; a
    /// failed read fails the whole and stops the rest; few keys are read on the caller's thread alone.
    #[test]
    fn reading_many_keys_on_several_threads_keeps_their_order() {
        use std::sync::Mutex;
        let keys: Vec<u64> = (0..1000).collect();
        let threads = Mutex::new(HashSet::default());
        let read = |key: &u64| {
            threads.lock().unwrap().insert(std::thread::current().id());
            if key.is_multiple_of(97) {
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(key * 3)
        };
        let values = read_all(&keys, MAX_READERS, read).unwrap();
        assert_eq!(values, keys.iter().map(|k| k * 3).collect::<Vec<_>>());
        let used = threads.lock().unwrap().len();
        assert!((2..=MAX_READERS).contains(&used), "{used} threads read");

        // Fewer readers asked for: no more threads than that.
        for readers in [1, 3] {
            threads.lock().unwrap().clear();
            let values = read_all(&keys, readers, read).unwrap();
            assert_eq!(values, keys.iter().map(|k| k * 3).collect::<Vec<_>>());
            let used = threads.lock().unwrap().len();
            assert!(
                (1..=readers).contains(&used),
                "{used} threads read, {readers} allowed"
            );
        }

        let few: Vec<u64> = (0..READS_PER_THREAD as u64 * 2 - 1).collect();
        threads.lock().unwrap().clear();
        assert_eq!(read_all(&few, MAX_READERS, read).unwrap().len(), few.len());
        assert_eq!(
            *threads.lock().unwrap(),
            HashSet::from_iter([std::thread::current().id()]),
            "fewer than two threads' worth of keys read here"
        );

        let reads = AtomicUsize::new(0);
        let failing = read_all(&keys, MAX_READERS, |key| {
            reads.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_micros(200));
            if *key == 40 {
                return Err(StoreError::Corrupt {
                    table: "test",
                    why: format!("key {key}"),
                });
            }
            Ok(*key)
        });
        assert!(
            matches!(&failing, Err(StoreError::Corrupt { why, .. }) if why == "key 40"),
            "{failing:?}"
        );
        assert!(
            reads.load(Ordering::Relaxed) < keys.len() / 2,
            "reading stops soon after a failure: {} reads",
            reads.load(Ordering::Relaxed)
        );
    }
}
