//! Relations with one user, kept in runs.
//!
//! Almost every relation the fold creates has one user: a complaint text used once, the phone and address of an
//! ordinary consumer. C3–C5 still need them (a second person with the same phone, address or text must find the
//! first), but a sled key of its own per relation, at a random place in the tree, was about half of the fold's ~1.05
//! sled writes per event and the costliest of them (a leaf pulled, linked and consolidated per key). So a checkpoint
//! writes the dirty relations that have one user into **runs** of at most [`RUN_BYTES`] each, holding each
//! relation's key and `RelationState`. A run's bytes are in the event log beside sled, in a block of their own
//! ([`crate::eventlog`]); sled holds `u ‖ run id` (4, big-endian) → where they are and the digests of their keys (about
//! 200 bytes). An in-memory [`RunIndex`] (8 bytes per entry: a 32-bit digest of the key and the run id) finds them
//! again, and reading one relation reads one block (`pread`) and sled's small entry.
//!
//! Why not in sled: sled keeps up to 16 keys in a leaf whatever their size and reads a leaf whole, so a cold read of one
//! ~100-byte entry pulled 64 KB of runs into sled's cache (20-50 ms of preloading for a batch of cold persons), and
//! runs took most of that cache from the persons' rows and chunks.
//!
//! Runs are never rewritten. A relation whose state changes while it still has one user goes into a newer run (the
//! newest run holding a key has its state); one that gains a second user goes to `r`, and `r` is asked first. Where
//! a relation lives is a function of its state, so every fold of a stream stores the same relations in the same
//! table; which run holds one depends on when checkpoints fell, and nothing reads the runs but through the index.
//!
//! Checkpoints compact the runs ([`RunIndex::victims`], `StateCache::compact_runs`). The index counts each run's
//! entries whose digest no newer run holds; once superseded entries are many, the most superseded runs, and once
//! small runs are many (a caught-up fold writes one per batch), the oldest of them, have their live entries copied
//! into new runs written before the checkpoint's own, and the next checkpoint removes them. A reader that still finds
//! such a run in the index after it is gone skips it: every live entry of it is in a newer run by then.

use std::ops::Range;

use crate::eventlog::Extent;
use crate::store::StoreError;

/// Table tag of the runs.
pub(crate) const RUN: u8 = b'u';

/// A run holds entries while its encoding stays within this many bytes, one block of the event log: reading a
/// relation reads its run whole, and a removed run frees its block.
pub(crate) const RUN_BYTES: usize = crate::eventlog::BLOCK as usize;

/// A relation whose state encodes to more than this stays at `r` even with one user (a heavy claimant's phone,
/// rewritten with each of their records): in a run it would fill runs by itself and be copied by every compaction.
pub(crate) const MAX_ENTRY_BYTES: usize = 1 << 10;

/// The index's shards (by a digest's top byte), so that no change to it costs more than one shard's entries.
const SHARDS: usize = 256;

/// Entries a shard gathers unsorted before they are merged into its sorted vector.
const RECENT_MAX: usize = 64;

/// Whether a relation with this many users and a state of this many bytes is kept in a run (one user, a state of
/// at most [`MAX_ENTRY_BYTES`]) rather than at `r`.
pub(crate) fn in_runs(persons: usize, encoded: usize) -> bool {
    persons == 1 && encoded <= MAX_ENTRY_BYTES
}

/// The index's 32-bit digest of a relation key (FNV-1a): two keys may share one; the run holds the full key.
pub(crate) fn digest(key: &[u8]) -> u32 {
    key.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The sled key of run `id`.
pub(crate) fn run_key(id: u32) -> [u8; 5] {
    let mut k = [RUN; 5];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

/// One run's value: `n` (u32 LE), the `n` key digests (u32 LE each, for the index at open without reading the
/// states), then `n` × (key length u32 LE, key, state length u32 LE, state).
#[derive(Default)]
pub(crate) struct RunWriter {
    digests: Vec<u32>,
    body: Vec<u8>,
}

impl RunWriter {
    pub(crate) fn push(&mut self, key: &[u8], state: &[u8]) {
        self.digests.push(digest(key));
        for part in [key, state] {
            let len = u32::try_from(part.len()).expect("a relation key or state under 4 GiB");
            self.body.extend_from_slice(&len.to_le_bytes());
            self.body.extend_from_slice(part);
        }
    }

    /// Whether an entry of `key` and `state` keeps the run within [`RUN_BYTES`] (an empty run takes any entry).
    pub(crate) fn fits(&self, key: &[u8], state: &[u8]) -> bool {
        let encoded = 4 + 4 * self.digests.len() + self.body.len();
        self.is_empty() || encoded + 12 + key.len() + state.len() <= RUN_BYTES
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// The run's value, and the digests of its keys (for the index).
    pub(crate) fn finish(self) -> (Vec<u8>, Vec<u32>) {
        let n = u32::try_from(self.digests.len()).expect("a run of fewer than 4G entries");
        let mut out = Vec::with_capacity(4 + 4 * self.digests.len() + self.body.len());
        out.extend_from_slice(&n.to_le_bytes());
        for d in &self.digests {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&self.body);
        (out, self.digests)
    }
}

fn corrupt(why: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table: "relation run",
        why: why.into(),
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, StoreError> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("four bytes")))
        .ok_or_else(|| corrupt(format!("truncated at byte {at} of {}", bytes.len())))
}

/// The key digests a run's bytes begin with.
pub(crate) fn run_digests(run: &[u8]) -> Result<Vec<u32>, StoreError> {
    let n = u32_at(run, 0)? as usize;
    (0..n).map(|i| u32_at(run, 4 + 4 * i)).collect()
}

/// A run's sled value: where its bytes are in the event log, then the head of its bytes (their count and digests).
pub(crate) fn run_ref(extent: Extent, run: &[u8]) -> Vec<u8> {
    let head = 4 + 4 * u32_at(run, 0).map_or(0, |n| n as usize);
    let mut value = Vec::with_capacity(Extent::LEN + head);
    extent.encode(&mut value);
    value.extend_from_slice(&run[..head.min(run.len())]);
    value
}

/// Where a run's bytes are, from its sled value.
pub(crate) fn ref_extent(value: &[u8]) -> Result<Extent, StoreError> {
    value
        .get(..Extent::LEN)
        .and_then(Extent::decode)
        .ok_or_else(|| corrupt(format!("a run's reference of {} bytes", value.len())))
}

/// The key digests of a run, from its sled value.
pub(crate) fn ref_digests(value: &[u8]) -> Result<Vec<u32>, StoreError> {
    ref_extent(value)?;
    run_digests(&value[Extent::LEN..])
}

/// A run's entries (key, state), in the order written; stops at the first that does not decode.
pub(crate) fn run_entries(run: &[u8]) -> impl Iterator<Item = Result<(&[u8], &[u8]), StoreError>> {
    entry_ranges(run).map(|entry| entry.map(|(k, state)| (&run[k], &run[state])))
}

/// [`run_entries`] as where each key and state is in the run.
fn entry_ranges(
    run: &[u8],
) -> impl Iterator<Item = Result<(Range<usize>, Range<usize>), StoreError>> + '_ {
    let n = u32_at(run, 0);
    let mut at = 4usize.saturating_add(n.as_ref().map_or(0, |n| 4 * *n as usize));
    let mut left = n.as_ref().map_or(0, |n| *n);
    let mut failed = n.err();
    std::iter::from_fn(move || {
        if let Some(e) = failed.take() {
            left = 0;
            return Some(Err(e));
        }
        if left == 0 {
            return None;
        }
        left -= 1;
        let mut part = || -> Result<Range<usize>, StoreError> {
            let len = u32_at(run, at)? as usize;
            let range = at + 4..at + 4 + len;
            if range.end > run.len() {
                return Err(corrupt(format!("an entry of {len} bytes past the end")));
            }
            at = range.end;
            Ok(range)
        };
        let entry = part().and_then(|k| Ok((k, part()?)));
        if entry.is_err() {
            left = 0;
        }
        Some(entry)
    })
}

/// Where the state of `key` is in a run's value, if it holds one.
pub(crate) fn find_in_run(run: &[u8], key: &[u8]) -> Result<Option<Range<usize>>, StoreError> {
    for entry in entry_ranges(run) {
        let (k, state) = entry?;
        if run[k] == *key {
            return Ok(Some(state));
        }
    }
    Ok(None)
}

/// Which runs may hold a relation: (key digest, run id) pairs, 8 bytes an entry (about 50 MB at 10M events) against
/// a sled key each. They are kept in [`SHARDS`] shards by the digest's top byte, each a sorted vector and a few
/// newest entries beside it, so that a merge costs a shard's entries at most, never the whole index's (a merge of
/// millions of entries would hold the fold's applying thread for tens of milliseconds). Noting a run costs a search
/// per entry, and so does forgetting one: it is told the run's digests. (Sweeping forgotten runs' entries out of a few
/// shards per change, as before, cost ~5 ms a change at 10M events, and after one compaction every change paid it
/// until all shards were swept: a caught-up fold stalled 365 ms on one batch.)
#[derive(Debug)]
pub(crate) struct RunIndex {
    shards: Vec<Shard>,
    /// The id the next run gets.
    next_run: u32,
    /// Every stored run, by id.
    runs: std::collections::BTreeMap<u32, RunInfo>,
    /// Entries of all runs, and of those the entries of superseded ones (a newer run holding their digest).
    entries: u64,
    dead: u64,
    /// Runs not retiring with fewer entries than `small_below` (the policy's, as of the last [`RunIndex::victims`]).
    small: usize,
    small_below: u32,
}

/// What the index knows of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RunInfo {
    entries: u32,
    /// Entries whose digest no newer run holds: an estimate of the entries still in use (a relation that moved to
    /// `r` is not subtracted; two keys of one digest supersede each other). Compaction checks every entry exactly.
    live: u32,
    /// Chosen for compaction: its live entries are being copied, and it goes with a later checkpoint.
    retiring: bool,
}

/// A run compacted by one checkpoint and removed by the next: what the index (its digests' entries) and the event
/// log (its block, once the removal is flushed) let go of.
#[derive(Debug, Clone)]
pub(crate) struct GoneRun {
    pub(crate) id: u32,
    pub(crate) digests: Vec<u32>,
    pub(crate) extent: Extent,
}

/// When runs are compacted ([`RunIndex::victims`]): runs mostly superseded once superseded entries are many, and
/// small runs (those a caught-up fold writes, a checkpoint per batch) once there are many of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// Superseded entries in all runs before any run is compacted for them (and at least a quarter of all entries).
    pub min_dead: u64,
    /// A run of fewer entries is small.
    pub small_entries: u32,
    /// Small runs before they are merged.
    pub min_small: usize,
    /// Runs compacted by one checkpoint at most.
    pub max_runs: usize,
}

impl Default for Compaction {
    fn default() -> Self {
        Compaction {
            min_dead: 1 << 16,
            small_entries: 8,
            min_small: 256,
            max_runs: 16,
        }
    }
}

fn pair(digest: u32, run: u32) -> u64 {
    (u64::from(digest) << 32) | u64::from(run)
}

fn run_of(pair: u64) -> u32 {
    pair as u32
}

/// One shard of the index: sorted pairs, and up to [`RECENT_MAX`] newer ones unsorted.
#[derive(Debug, Default)]
struct Shard {
    sorted: Vec<u64>,
    recent: Vec<u64>,
}

impl Shard {
    fn of(shards: &[Shard], digest: u32) -> &Shard {
        &shards[(digest >> 24) as usize % SHARDS]
    }

    fn of_mut(shards: &mut [Shard], digest: u32) -> &mut Shard {
        &mut shards[(digest >> 24) as usize % SHARDS]
    }

    fn insert(&mut self, p: u64) {
        self.recent.push(p);
        if self.recent.len() >= RECENT_MAX {
            self.recent.sort_unstable();
            let mut merged = Vec::with_capacity(self.sorted.len() + self.recent.len());
            let mut old = self.sorted.iter().copied().peekable();
            for r in self.recent.drain(..) {
                while let Some(o) = old.next_if(|o| *o < r) {
                    merged.push(o);
                }
                merged.push(r);
            }
            merged.extend(old);
            self.sorted = merged;
        }
    }

    /// The pairs of `digest`.
    fn pairs(&self, digest: u32) -> impl Iterator<Item = u64> + '_ {
        let (lo, hi) = (pair(digest, 0), pair(digest, u32::MAX));
        let from = self.sorted.partition_point(|p| *p < lo);
        let to = self.sorted.partition_point(|p| *p <= hi);
        (self.sorted[from..to].iter())
            .chain(self.recent.iter().filter(move |p| (lo..=hi).contains(*p)))
            .copied()
    }

    /// Drops every copy of pair `p` (a run may hold two keys of one digest).
    fn remove(&mut self, p: u64) {
        let from = self.sorted.partition_point(|q| *q < p);
        let to = from + self.sorted[from..].partition_point(|q| *q == p);
        self.sorted.drain(from..to);
        self.recent.retain(|q| *q != p);
    }
}

impl Default for RunIndex {
    fn default() -> Self {
        RunIndex {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            next_run: 0,
            runs: std::collections::BTreeMap::new(),
            entries: 0,
            dead: 0,
            small: 0,
            small_below: 0,
        }
    }
}

impl RunIndex {
    /// The index of the runs in `tree` (read at open from sled's references alone; the runs' bytes are not read).
    pub(crate) fn load(tree: &sled::Tree) -> Result<RunIndex, StoreError> {
        let started = std::time::Instant::now();
        let mut index = RunIndex::default();
        let mut runs = 0u64;
        for item in tree.scan_prefix([RUN]) {
            let (k, v) = item?;
            let id = k
                .get(1..5)
                .filter(|_| k.len() == 5)
                .map(|b| u32::from_be_bytes(b.try_into().expect("four bytes")))
                .ok_or_else(|| corrupt(format!("a run key of {} bytes", k.len())))?;
            for d in ref_digests(&v)? {
                Shard::of_mut(&mut index.shards, d).sorted.push(pair(d, id));
            }
            index.next_run = id + 1;
            runs += 1;
        }
        for shard in &mut index.shards {
            shard.sorted.sort_unstable();
            // Each digest's newest run holds it live; its older runs are superseded.
            for (i, p) in shard.sorted.iter().enumerate() {
                let newest = (shard.sorted.get(i + 1)).is_none_or(|next| next >> 32 != p >> 32);
                let info = index.runs.entry(run_of(*p)).or_insert(RunInfo {
                    entries: 0,
                    live: 0,
                    retiring: false,
                });
                info.entries += 1;
                index.entries += 1;
                if newest {
                    info.live += 1;
                } else {
                    index.dead += 1;
                }
            }
        }
        tracing::info!(
            runs,
            relations = index.entries,
            ms = started.elapsed().as_millis() as u64,
            "relation runs indexed"
        );
        Ok(index)
    }

    /// A new run's id.
    pub(crate) fn allocate(&mut self) -> u32 {
        let id = self.next_run;
        self.next_run = id.checked_add(1).expect("fewer than 4G runs");
        id
    }

    /// Records that run `run` holds keys of these digests (once its batch is applied): what older runs held of
    /// them is superseded.
    pub(crate) fn note(&mut self, run: u32, digests: &[u32]) {
        for d in digests {
            if let Some(info) = self.newest_of(*d).and_then(|old| self.runs.get_mut(&old)) {
                if info.live > 0 {
                    info.live -= 1;
                    self.dead += 1;
                }
            }
        }
        let n = u32::try_from(digests.len()).unwrap_or(u32::MAX);
        if n < self.small_below {
            self.small += 1;
        }
        self.runs.insert(
            run,
            RunInfo {
                entries: n,
                live: n,
                retiring: false,
            },
        );
        self.entries += u64::from(n);
        for d in digests {
            Shard::of_mut(&mut self.shards, *d).insert(pair(*d, run));
        }
    }

    /// The newest run holding digest `d`.
    fn newest_of(&self, d: u32) -> Option<u32> {
        (Shard::of(&self.shards, d).pairs(d))
            .map(run_of)
            .filter(|run| self.runs.contains_key(run))
            .max()
    }

    /// The runs a checkpoint should compact (marked retiring, so no later checkpoint picks them again): the most
    /// superseded runs, when superseded entries are many; and the oldest small runs, when there are many.
    pub(crate) fn victims(&mut self, policy: &Compaction) -> Vec<u32> {
        if policy.small_entries != self.small_below {
            self.small_below = policy.small_entries;
            self.small = (self.runs.values())
                .filter(|i| !i.retiring && i.entries < self.small_below)
                .count();
        }
        let superseded = self.dead >= policy.min_dead && self.dead * 4 >= self.entries;
        // Most checkpoints: neither, and nothing scanned.
        if !superseded && self.small < policy.min_small {
            return Vec::new();
        }
        let mut chosen: Vec<u32> = Vec::new();
        if superseded {
            let mut worst: Vec<(u64, u32)> = (self.runs.iter())
                .filter(|(_, i)| !i.retiring && u64::from(i.live) * 2 < u64::from(i.entries))
                .map(|(id, i)| (u64::from(i.live) * 1024 / u64::from(i.entries.max(1)), *id))
                .collect();
            worst.sort_unstable();
            chosen.extend(worst.iter().take(policy.max_runs).map(|(_, id)| *id));
        }
        let small: Vec<u32> = (self.runs.iter())
            .filter(|(id, i)| {
                !i.retiring && i.entries < policy.small_entries && !chosen.contains(id)
            })
            .map(|(id, _)| *id)
            .collect();
        if small.len() >= policy.min_small {
            let room = policy.max_runs.saturating_sub(chosen.len()).max(2);
            chosen.extend(small.into_iter().take(room));
        }
        for id in &chosen {
            if let Some(info) = self.runs.get_mut(id) {
                if info.entries < self.small_below {
                    self.small -= 1;
                }
                info.retiring = true;
            }
        }
        chosen
    }

    /// Forgets runs that are gone from the store (once the batch removing them is applied): each run's id and the
    /// digests it holds, whose entries leave their shards (a search in each, not a scan of any).
    pub(crate) fn forget(&mut self, gone: &[GoneRun]) {
        for GoneRun { id, digests, .. } in gone {
            if let Some(info) = self.runs.remove(id) {
                if !info.retiring && info.entries < self.small_below {
                    self.small -= 1;
                }
                self.entries -= u64::from(info.entries);
                self.dead -= u64::from(info.entries - info.live);
            }
            for d in digests {
                Shard::of_mut(&mut self.shards, *d).remove(pair(*d, *id));
            }
        }
    }

    /// Stored runs, and of their entries how many are superseded.
    pub(crate) fn stats(&self) -> (usize, u64, u64) {
        (self.runs.len(), self.entries, self.dead)
    }

    /// The runs that may hold `key`, newest first.
    pub(crate) fn runs_of(&self, key: &[u8]) -> Vec<u32> {
        let d = digest(key);
        let mut runs: Vec<u32> = (Shard::of(&self.shards, d).pairs(d))
            .map(run_of)
            .filter(|run| self.runs.contains_key(run))
            .collect();
        runs.sort_unstable_by(|a, b| b.cmp(a));
        runs.dedup();
        runs
    }

    /// The id [`RunIndex::allocate`] would give next.
    #[cfg(test)]
    fn allocate_preview(&self) -> u32 {
        self.next_run
    }

    pub(crate) fn clear(&mut self) {
        *self = RunIndex::default();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Run `id`, gone, with these digests (its extent does not matter to the index).
    fn gone(id: u32, digests: &[u32]) -> GoneRun {
        GoneRun {
            id,
            digests: digests.to_vec(),
            extent: Extent {
                offset: 0,
                len: 0,
                crc: 0,
            },
        }
    }

    #[test]
    fn a_run_finds_each_of_its_keys_and_no_other() {
        let mut run = RunWriter::default();
        run.push(b"Xaaaa", b"one");
        run.push(b"Xbbbb", b"");
        run.push(b"Xcccc", b"three");
        let (value, digests) = run.finish();
        assert_eq!(
            digests,
            vec![digest(b"Xaaaa"), digest(b"Xbbbb"), digest(b"Xcccc")]
        );
        assert_eq!(run_digests(&value).unwrap(), digests);
        let state = |key: &[u8]| find_in_run(&value, key).unwrap().map(|r| value[r].to_vec());
        assert_eq!(state(b"Xaaaa"), Some(b"one".to_vec()));
        assert_eq!(state(b"Xbbbb"), Some(Vec::new()));
        assert_eq!(state(b"Xcccc"), Some(b"three".to_vec()));
        assert_eq!(find_in_run(&value, b"Xdddd").unwrap(), None);
    }

    #[test]
    fn a_run_takes_entries_while_it_stays_within_one_block() {
        let mut run = RunWriter::default();
        let state = [5u8; 100];
        let mut n = 0u32;
        while run.fits(&n.to_be_bytes(), &state) {
            run.push(&n.to_be_bytes(), &state);
            n += 1;
        }
        let (bytes, digests) = run.finish();
        assert!(bytes.len() <= RUN_BYTES, "{} bytes", bytes.len());
        assert!(
            bytes.len() + 4 + 12 + 4 + 100 > RUN_BYTES,
            "full at {}",
            bytes.len()
        );
        assert_eq!(digests.len(), n as usize);
        // An entry bigger than a block still gets a run of its own.
        assert!(RunWriter::default().fits(b"k", &[0u8; 2 * RUN_BYTES]));
    }

    #[test]
    fn a_truncated_run_is_corrupt_not_a_panic() {
        let mut run = RunWriter::default();
        run.push(b"Xaaaa", b"state");
        let (value, _) = run.finish();
        for cut in 0..value.len() {
            let short = &value[..cut];
            assert!(
                find_in_run(short, b"Xzzzz").is_err(),
                "a run cut at {cut} of {} bytes",
                value.len()
            );
        }
    }

    #[test]
    fn the_index_answers_runs_newest_first_across_merges() {
        let mut index = RunIndex::default();
        let key = b"Xsame".to_vec();
        let first = index.allocate();
        index.note(first, &[digest(&key)]);
        // Enough other texts to merge every shard's recent entries into its sorted vector at least once.
        for i in 0..(4 * (SHARDS * RECENT_MAX) as u32) {
            let run = index.allocate();
            index.note(run, &[digest(format!("Xother{i}").as_bytes())]);
        }
        let last = index.allocate();
        index.note(last, &[digest(&key)]);
        let shard = Shard::of(&index.shards, digest(&key));
        assert!(!shard.sorted.is_empty(), "merged at least once");
        let runs = index.runs_of(&key);
        assert_eq!(&runs[..2], &[last, first], "newest first: {runs:?}");
        assert!(
            index.runs_of(b"Xnever").len() <= 1,
            "an unknown key matches at most a digest collision"
        );
        // Forgetting the first run takes its entry out of the sorted vector it was merged into.
        let held = |index: &RunIndex| {
            let shard = Shard::of(&index.shards, digest(&key));
            shard.sorted.len() + shard.recent.len()
        };
        let before = held(&index);
        assert!(Shard::of(&index.shards, digest(&key))
            .sorted
            .contains(&pair(digest(&key), first)));
        index.forget(&[gone(first, &[digest(&key)])]);
        assert_eq!(held(&index), before - 1);
        assert!(!index.runs_of(&key).contains(&first));
        assert!(index.runs_of(&key).contains(&last));
    }

    /// Runs noted one by one: each digest's newest run holds it live, the older ones are superseded; a store's runs
    /// indexed at open count the same.
    #[test]
    fn a_newer_run_supersedes_what_older_runs_held_of_its_digests() {
        let mut index = RunIndex::default();
        let (a, b, c) = (digest(b"Xa"), digest(b"Xb"), digest(b"Xc"));
        let first = index.allocate();
        index.note(first, &[a, b]);
        let second = index.allocate();
        index.note(second, &[b, c]);
        let third = index.allocate();
        index.note(third, &[b]);
        assert_eq!(index.stats(), (3, 5, 2), "b twice superseded");
        let live = |index: &RunIndex, id: u32| index.runs[&id].live;
        assert_eq!(
            (
                live(&index, first),
                live(&index, second),
                live(&index, third)
            ),
            (1, 1, 1)
        );

        // The same runs in a tree, indexed at open.
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let layout: [(u32, &[&str]); 3] = [
            (first, &["Xa", "Xb"]),
            (second, &["Xb", "Xc"]),
            (third, &["Xb"]),
        ];
        for (id, keys) in layout {
            let mut run = RunWriter::default();
            for k in keys {
                run.push(k.as_bytes(), b"state");
            }
            let extent = Extent {
                offset: u64::from(id) * crate::eventlog::BLOCK,
                len: 1,
                crc: 0,
            };
            tree.insert(run_key(id), run_ref(extent, &run.finish().0))
                .unwrap();
        }
        let loaded = RunIndex::load(&tree).unwrap();
        assert_eq!(loaded.stats(), index.stats());
        assert_eq!(loaded.runs, index.runs);
        assert_eq!(loaded.allocate_preview(), third + 1);

        // Forgetting a run takes its entries and its superseded ones out, and its entries out of the shards at once.
        index.forget(&[gone(first, &[digest(b"Xa"), digest(b"Xb")])]);
        assert_eq!(index.stats(), (2, 3, 1));
        assert_eq!(
            index
                .shards
                .iter()
                .map(|s| s.sorted.len() + s.recent.len())
                .sum::<usize>(),
            3,
            "only the two stored runs' entries"
        );
        assert_eq!(index.runs_of(b"Xa"), Vec::<u32>::new());
        assert_eq!(index.runs_of(b"Xb"), vec![third, second]);
    }

    /// Mostly superseded runs are picked once superseded entries are many; small runs once there are many; a run
    /// picked is not picked again.
    #[test]
    fn compaction_picks_superseded_runs_and_many_small_ones_once() {
        let policy = Compaction {
            min_dead: 4,
            small_entries: 3,
            min_small: 3,
            max_runs: 8,
        };
        let mut index = RunIndex::default();
        // A big run of 8, of which a later big run supersedes 6.
        let keys: Vec<u32> = (0..8)
            .map(|i| digest(format!("Xk{i}").as_bytes()))
            .collect();
        let old = index.allocate();
        index.note(old, &keys);
        assert_eq!(
            index.victims(&policy),
            Vec::<u32>::new(),
            "nothing superseded yet"
        );
        let newer = index.allocate();
        let mut others: Vec<u32> = (0..4)
            .map(|i| digest(format!("Xo{i}").as_bytes()))
            .collect();
        others.extend_from_slice(&keys[..6]);
        index.note(newer, &others);
        assert_eq!(index.victims(&policy), vec![old], "6 of 8 superseded");
        assert_eq!(index.victims(&policy), Vec::<u32>::new(), "picked once");
        // Two small runs are not many; three are.
        let small: Vec<u32> = (0..3)
            .map(|i| {
                let id = index.allocate();
                index.note(id, &[digest(format!("Xs{i}").as_bytes())]);
                id
            })
            .collect();
        assert_eq!(index.victims(&policy), small);
        assert_eq!(index.victims(&policy), Vec::<u32>::new());
    }

    #[test]
    fn only_a_relation_with_one_user_goes_to_runs() {
        assert!(in_runs(1, 100));
        assert!(in_runs(1, MAX_ENTRY_BYTES));
        assert!(!in_runs(1, MAX_ENTRY_BYTES + 1), "a big state stays at r");
        assert!(!in_runs(0, 0));
        assert!(!in_runs(2, 100));
    }
}
