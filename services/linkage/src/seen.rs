//! A Bloom filter over the folded event ids, so the fold asks sled "was this event folded before?" only when the
//! answer may be yes.
//!
//! Almost every event the fold sees is new, and a sled lookup of a missing key still walks the tree (and at 10M events
//! leaves the page cache). The filter answers "certainly not" for new events with about 10 bits of memory per folded
//! event; a "maybe" (a duplicate, or a false positive about 1 % of the time) goes to sled (the person's timeline, or
//! the event-id index for an event without a person), so exactly-once never depends on the filter. It is loaded from
//! the timeline's chunks and the index at start and grows by adding filters of twice the size ([`TableFilter`]).
//!
//! The same filter, over [`SeenFilter::digest`]s, answers "is this relation (phone, address, complaint text) stored?"
//! for the fold: most complaint texts are new, and a miss in sled costs a walk of the tree.

/// Bits per expected element and probes per element: about 1 % false positives.
const BITS_PER_ELEMENT: u64 = 10;
const PROBES: u32 = 7;
/// Smallest capacity (elements).
const MIN_CAPACITY: u64 = 1 << 16;
/// Bits of a block: a key's probes all fall in one block, one cache line.
const BLOCK_BITS: u64 = 512;

/// One cache line of the filter.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct Block([u64; 8]);

/// The filter: blocked (all of a key's probes in one 64-byte block), so a lookup costs one cache miss per filter,
/// not one per probe (a fold of 10M events asks several filters a few times per event).
#[derive(Debug, Clone)]
pub struct SeenFilter {
    blocks: Vec<Block>,
    /// Number of blocks - 1 (a power of two minus one).
    mask: u64,
    count: u64,
    capacity: u64,
}

impl Default for SeenFilter {
    fn default() -> Self {
        SeenFilter::with_capacity(0)
    }
}

/// A key's block and its probes' bit positions in it.
#[derive(Clone, Copy)]
struct Probes {
    block: u64,
    bits: u64,
}

impl Probes {
    /// Two independent hashes of an event id. Ids are UUIDs (v5: SHA-1 based), mixed once more so that the fixed
    /// version and variant bits do not matter: the first picks the block, the second's 9-bit pieces the bits.
    fn of(id: &[u8; 16]) -> Probes {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&id[..8]);
        hi.copy_from_slice(&id[8..]);
        let mix = |x: u64| {
            let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        };
        let a = mix(u64::from_le_bytes(lo) ^ 0x9e37_79b9_7f4a_7c15);
        let b = mix(u64::from_le_bytes(hi).wrapping_add(a));
        Probes { block: a, bits: b }
    }

    /// The probes' (word, bit) places in the block.
    fn places(self) -> impl Iterator<Item = (usize, u64)> {
        (0..PROBES).map(move |i| {
            let bit = (self.bits >> (9 * i)) & (BLOCK_BITS - 1);
            ((bit / 64) as usize, 1u64 << (bit % 64))
        })
    }
}

impl SeenFilter {
    /// A filter sized for `capacity` elements (at least 65,536).
    pub fn with_capacity(capacity: u64) -> SeenFilter {
        let capacity = capacity.max(MIN_CAPACITY);
        let bits = (capacity * BITS_PER_ELEMENT).next_power_of_two();
        let blocks = (bits / BLOCK_BITS).max(1);
        SeenFilter {
            blocks: vec![Block::default(); blocks as usize],
            mask: blocks - 1,
            count: 0,
            capacity,
        }
    }

    /// A 16-byte digest of any key, to keep keys other than event ids in a filter (SipHash, two keys).
    pub fn digest(key: &[u8]) -> [u8; 16] {
        use std::hash::Hasher;
        let mut out = [0u8; 16];
        for (half, seed) in out.chunks_exact_mut(8).zip([0x5eed_u64, 0xf11e_u64]) {
            #[allow(deprecated)] // SipHasher: the std hasher with a fixed, documented key.
            let mut h = std::hash::SipHasher::new_with_keys(seed, !seed);
            h.write(key);
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
        out
    }

    fn block(&self, probes: Probes) -> &Block {
        &self.blocks[(probes.block & self.mask) as usize]
    }

    /// Adds an event id.
    pub fn insert(&mut self, id: &[u8; 16]) {
        let probes = Probes::of(id);
        let block = &mut self.blocks[(probes.block & self.mask) as usize];
        for (word, bit) in probes.places() {
            block.0[word] |= bit;
        }
        self.count += 1;
    }

    /// False: the id was certainly never inserted. True: it may have been.
    pub fn may_contain(&self, id: &[u8; 16]) -> bool {
        self.may_contain_probes(Probes::of(id))
    }

    fn may_contain_probes(&self, probes: Probes) -> bool {
        let block = self.block(probes);
        probes.places().all(|(word, bit)| block.0[word] & bit != 0)
    }

    /// Whether more elements were inserted than it was sized for (its false-positive rate is rising).
    pub fn is_full(&self) -> bool {
        self.count > self.capacity
    }

    /// Elements it was sized for.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Elements inserted.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// What of a key (without its table tag) goes into a filter; `None`: not one of the keys filtered.
pub type KeyDigest = fn(&[u8]) -> Option<[u8; 16]>;

/// [`SeenFilter`]s over the keys of one sled table (one tag byte), shared by the fold and the store: loaded from the
/// table at open, sized for twice what is there; when the newest filter is full a new one twice its size takes the
/// new keys (a lookup asks each). Growing never rescans the table: at 8.4M events a rescan of the event-id index held
/// the fold for over a minute.
#[derive(Debug)]
pub struct TableFilter {
    layers: std::sync::Mutex<Vec<SeenFilter>>,
    /// The filter's digest of a key without its tag.
    digest: KeyDigest,
    /// What it filters, for the log.
    what: &'static str,
}

impl TableFilter {
    /// A filter of the keys of table `tag` in `tree`, loaded now: `digest` of each key without its tag.
    pub fn load(
        tree: &sled::Tree,
        tag: u8,
        digest: KeyDigest,
        what: &'static str,
    ) -> sled::Result<TableFilter> {
        let started = std::time::Instant::now();
        let mut digests = Vec::new();
        for item in tree.scan_prefix([tag]) {
            let (k, _) = item?;
            digests.extend(digest(&k[1..]));
        }
        Ok(TableFilter::of(&digests, digest, what, started))
    }

    /// A filter of `digests`, gathered by the caller (several filters from one scan of a table, say); later keys are
    /// [`TableFilter::note`]d through `digest`. `started` is when the gathering began, for the log.
    pub fn of(
        digests: &[[u8; 16]],
        digest: KeyDigest,
        what: &'static str,
        started: std::time::Instant,
    ) -> TableFilter {
        let mut filter = SeenFilter::with_capacity(digests.len() as u64 * 2);
        for d in digests {
            filter.insert(d);
        }
        tracing::debug!(
            keys = digests.len(),
            seconds = started.elapsed().as_secs_f64(),
            "{what} filter loaded"
        );
        TableFilter {
            layers: std::sync::Mutex::new(vec![filter]),
            digest,
            what,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SeenFilter>> {
        self.layers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records keys (without their tag) as stored. Call it once their batch is applied or about to be; a key noted
    /// but never stored only costs a lookup.
    pub fn note<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) {
        // The digests first, without the lock: the fold's preparation asks the filter while a batch (a checkpoint
        // notes tens of thousands of keys) is applied and noted.
        let digests: Vec<[u8; 16]> = keys.into_iter().filter_map(self.digest).collect();
        let mut layers = self.lock();
        for d in digests {
            if layers.last().is_none_or(SeenFilter::is_full) {
                let capacity = layers.last().map_or(0, |l| l.capacity() * 2);
                tracing::debug!(capacity, "{} filter grows a layer", self.what);
                layers.push(SeenFilter::with_capacity(capacity));
            }
            if let Some(newest) = layers.last_mut() {
                newest.insert(&d);
            }
        }
    }

    /// False: the key (without its tag) is certainly not stored. True: it may be.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        (self.digest)(key).is_some_and(|d| {
            let probes = Probes::of(&d);
            self.lock().iter().any(|l| l.may_contain_probes(probes))
        })
    }

    /// Forgets every key (the table was cleared).
    pub fn clear(&self) {
        *self.lock() = vec![SeenFilter::default()];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u64) -> [u8; 16] {
        *uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, &i.to_le_bytes()).as_bytes()
    }

    #[test]
    fn never_forgets_an_inserted_id() {
        let mut f = SeenFilter::with_capacity(10_000);
        for i in 0..100_000 {
            f.insert(&id(i));
        }
        assert!((0..100_000).all(|i| f.may_contain(&id(i))));
        assert!(f.is_full(), "sized for 65,536, holds 100,000");
    }

    #[test]
    fn a_table_filter_grows_by_layers_without_forgetting() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::Config::new().path(dir.path()).open().expect("sled");
        let tree = db.open_tree("t").expect("tree");
        let digest: fn(&[u8]) -> Option<[u8; 16]> = |k| k.try_into().ok();
        let filter = TableFilter::load(&tree, b'e', digest, "test").expect("load");
        let keys: Vec<[u8; 16]> = (0..300_000).map(id).collect();
        // 300,000 keys into a first layer sized 65,536: two more layers (131,072 and 262,144), none rebuilt.
        filter.note(keys.iter().map(|k| &k[..]));
        assert_eq!(filter.lock().len(), 3);
        assert!(keys.iter().all(|k| filter.may_contain(k)));
        let fp = (300_000..400_000)
            .filter(|i| filter.may_contain(&id(*i)))
            .count();
        assert!(fp < 4_000, "{fp} false positives in 100,000");
        assert!(!filter.may_contain(b"not 16 bytes"));
    }

    #[test]
    fn false_positives_stay_near_one_percent_at_capacity() {
        let mut f = SeenFilter::with_capacity(100_000);
        for i in 0..100_000 {
            f.insert(&id(i));
        }
        let fp = (100_000..200_000)
            .filter(|i| f.may_contain(&id(*i)))
            .count();
        assert!(fp < 2_000, "{fp} false positives in 100,000");
        assert!(!f.is_full());
    }
}
