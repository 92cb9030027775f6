//! The timeline's event bytes: one append-only file beside sled (`timeline.log` in the data folder).
//!
//! Why: an event is ~750 bytes and sled keeps values inside its leaves (up to 16 keys, rewritten whole when sled
//! consolidates them), so with the bytes in sled the timeline's leaves were ~12 KB, sled's cache held a tenth of the
//! keys it could, and its log grew by ~4 KB per event at 10M events (disk, and the per-segment bookkeeping sled
//! keeps in memory). Here the bytes
//! are appended once, in fold order, and the timeline entry in sled holds only where they are: sequence, offset,
//! length, CRC-32 (the key-value separation of WiscKey, Lu et al., FAST 2016).
//!
//! Durability, with the sled batch that refers to the bytes:
//! 1. a batch's bytes are written at the log's end and `fdatasync`ed,
//! 2. then the sled batch (timeline entries and the new log length, `mlog`) is applied, and later flushed.
//!
//! So sled never refers to bytes that are not durable. A crash between 1 and a flush leaves bytes past the stored
//! length: [`EventLog::open`] cuts them off, and the events are folded again from the stream. A log shorter than the
//! stored length cannot come from a crash (the disk lost synced data, or the file was changed): opening refuses it,
//! naming the rebuild that repairs it. Like every projection, the log is rebuilt from the stream.
//!
//! The relations' runs ([`crate::runs`]) live here too, each in whole blocks of its own ([`BLOCK`]): a run the
//! compaction removed is given back to the file system ([`EventLog::punch`], a hole in the file) once the sled batch
//! that removed it is flushed. Event bytes are never removed (events are facts).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The file's name in the data folder.
pub const FILE_NAME: &str = "timeline.log";

/// The most bytes [`EventLog::read_all`] reads at once.
pub const SPAN_BYTES: u64 = 256 << 10;

/// The file system's block: a run starts at a multiple of it and nothing else shares its last block, so removing it
/// frees whole blocks.
pub const BLOCK: u64 = 4096;

/// Event-log failures, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "event log {path} is {actual} bytes but the projections refer to {committed}: it lost synced data or was \
         changed; run `caselink-linkage rebuild`"
    )]
    Short {
        path: PathBuf,
        actual: u64,
        committed: u64,
    },
    #[error("event log {path}: an append at {offset}, but the log ends at {end}")]
    NotAtEnd {
        path: PathBuf,
        offset: u64,
        end: u64,
    },
    #[error("event log {path}: {len} bytes at {offset} do not match their checksum")]
    Checksum {
        path: PathBuf,
        offset: u64,
        len: u32,
    },
}

/// Where one event's bytes are: what the timeline entry in sled holds after the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
}

impl Extent {
    /// Encoded size.
    pub const LEN: usize = 16;

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&self.crc.to_be_bytes());
    }

    /// The whole blocks from this extent's start (which is a block's) to the block its last byte is in: a run's.
    pub fn blocks(&self) -> std::ops::Range<u64> {
        self.offset..(self.offset + u64::from(self.len)).next_multiple_of(BLOCK)
    }

    /// `None` unless `bytes` is exactly [`Extent::LEN`] long.
    pub fn decode(bytes: &[u8]) -> Option<Extent> {
        let bytes: &[u8; Extent::LEN] = bytes.try_into().ok()?;
        let (offset, rest) = bytes.split_at(8);
        let (len, crc) = rest.split_at(4);
        Some(Extent {
            offset: u64::from_be_bytes(offset.try_into().ok()?),
            len: u32::from_be_bytes(len.try_into().ok()?),
            crc: u32::from_be_bytes(crc.try_into().ok()?),
        })
    }
}

/// Bytes gathered for one append (a fold batch's events), placed after the log's end as it will be then.
#[derive(Debug, Default)]
pub struct Pending {
    base: u64,
    bytes: Vec<u8>,
}

impl Pending {
    /// Appends that will land at `base` (the log's end once the batches before are applied).
    pub fn at(base: u64) -> Pending {
        Pending {
            base,
            bytes: Vec::new(),
        }
    }

    /// Adds what `write` puts into the buffer; returns where it will be.
    pub fn push(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Extent {
        let start = self.bytes.len();
        write(&mut self.bytes);
        let written = &self.bytes[start..];
        Extent {
            offset: self.base + start as u64,
            len: u32::try_from(written.len()).expect("an event is far below 4 GiB"),
            crc: crc32fast::hash(written),
        }
    }

    /// Adds `bytes` in blocks of their own: zeros up to the next block first, and after them up to the block's end
    /// (see [`Extent::blocks`]).
    pub fn push_blocks(&mut self, bytes: &[u8]) -> Extent {
        self.pad();
        let extent = self.push(|out| out.extend_from_slice(bytes));
        self.pad();
        extent
    }

    fn pad(&mut self) {
        let end = self.end();
        let padded = end.next_multiple_of(BLOCK);
        self.bytes
            .resize(self.bytes.len() + (padded - end) as usize, 0);
    }

    /// The log's end after this append.
    pub fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// The open log. Reads (`pread`) may run on any thread while one writer appends.
#[derive(Debug)]
pub struct EventLog {
    file: File,
    path: PathBuf,
    /// Bytes written and synced.
    end: AtomicU64,
}

impl EventLog {
    /// Opens (or creates) the log in `dir`, of which the projections refer to the first `committed` bytes: a longer
    /// file is cut to that (bytes of a batch whose sled writes were never flushed).
    pub fn open(dir: &Path, committed: u64) -> Result<EventLog, LogError> {
        let path = dir.join(FILE_NAME);
        let io = |source| LogError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let actual = file.metadata().map_err(io)?.len();
        if actual < committed {
            return Err(LogError::Short {
                path,
                actual,
                committed,
            });
        }
        if actual > committed {
            tracing::info!(
                path = %path.display(),
                cut = actual - committed,
                "event log: cutting off bytes of a batch that was never committed"
            );
            file.set_len(committed).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok(EventLog {
            file,
            path,
            end: AtomicU64::new(committed),
        })
    }

    /// Bytes in the log.
    pub fn end(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    /// Writes `pending` at the log's end and syncs it; only then may sled refer to it.
    pub fn append(&self, pending: &Pending) -> Result<(), LogError> {
        if pending.is_empty() {
            return Ok(());
        }
        let end = self.end();
        if pending.base != end {
            return Err(LogError::NotAtEnd {
                path: self.path.clone(),
                offset: pending.base,
                end,
            });
        }
        self.file
            .write_all_at(&pending.bytes, pending.base)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| self.io(source))?;
        self.end.store(pending.end(), Ordering::Release);
        Ok(())
    }

    /// The bytes at `extent`, checked against its CRC-32.
    pub fn read(&self, extent: Extent) -> Result<Vec<u8>, LogError> {
        let mut bytes = vec![0u8; extent.len as usize];
        self.file
            .read_exact_at(&mut bytes, extent.offset)
            .map_err(|source| self.io(source))?;
        if crc32fast::hash(&bytes) != extent.crc {
            return Err(self.checksum(extent));
        }
        Ok(bytes)
    }

    fn checksum(&self, extent: Extent) -> LogError {
        LogError::Checksum {
            path: self.path.clone(),
            offset: extent.offset,
            len: extent.len,
        }
    }

    /// The bytes of `extents`, each checked against its CRC-32, with one read for each stretch of them that lie end to
    /// end in the log (a person's events folded in one batch usually do), up to [`SPAN_BYTES`] a read.
    pub fn read_all(&self, extents: &[Extent]) -> Result<Vec<Vec<u8>>, LogError> {
        let mut out = Vec::with_capacity(extents.len());
        let mut rest = extents;
        while let Some(first) = rest.first() {
            let mut end = first.offset + u64::from(first.len);
            let n = 1 + rest[1..]
                .iter()
                .take_while(|e| {
                    let next =
                        e.offset == end && end + u64::from(e.len) - first.offset <= SPAN_BYTES;
                    end += u64::from(e.len);
                    next
                })
                .count();
            let (span, after) = rest.split_at(n);
            if n == 1 {
                out.push(self.read(*first)?);
            } else {
                let last = span[n - 1];
                let mut bytes =
                    vec![0u8; (last.offset + u64::from(last.len) - first.offset) as usize];
                self.file
                    .read_exact_at(&mut bytes, first.offset)
                    .map_err(|source| self.io(source))?;
                for extent in span {
                    let at = (extent.offset - first.offset) as usize;
                    let one = &bytes[at..at + extent.len as usize];
                    if crc32fast::hash(one) != extent.crc {
                        return Err(self.checksum(*extent));
                    }
                    out.push(one.to_vec());
                }
            }
            rest = after;
        }
        Ok(out)
    }

    /// Gives the blocks of `extents` (runs nothing refers to any more, durably) back to the file system: they read as
    /// zeros after this, and the file keeps its length. A file system without holes keeps the blocks; that is said
    /// once and costs only disk.
    pub fn punch(&self, extents: &[Extent]) -> Result<(), LogError> {
        for extent in extents {
            let blocks = extent.blocks();
            if !punch_hole(&self.file, blocks.start, blocks.end - blocks.start)
                .map_err(|source| self.io(source))?
            {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    tracing::warn!(
                        path = %self.path.display(),
                        "event log: the file system cannot punch holes; removed runs keep their disk space"
                    );
                });
                return Ok(());
            }
        }
        Ok(())
    }

    /// Empties the log (the projections were cleared first, so nothing refers to it).
    pub fn clear(&self) -> Result<(), LogError> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_all())
            .map_err(|source| self.io(source))?;
        self.end.store(0, Ordering::Release);
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> LogError {
        LogError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

/// Deallocates `len` bytes at `offset` of `file` (`fallocate` with `FALLOC_FL_PUNCH_HOLE`); `false` where the file
/// system or platform has no holes.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn punch_hole(file: &File, offset: u64, len: u64) -> std::io::Result<bool> {
    use rustix::fs::FallocateFlags;
    match rustix::fs::fallocate(
        file,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        offset,
        len,
    ) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::OPNOTSUPP) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn punch_hole(_file: &File, _offset: u64, _len: u64) -> std::io::Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn append(log: &EventLog, items: &[&[u8]]) -> Vec<Extent> {
        let mut pending = Pending::at(log.end());
        let extents = items
            .iter()
            .map(|item| pending.push(|out| out.extend_from_slice(item)))
            .collect();
        log.append(&pending).unwrap();
        extents
    }

    #[test]
    fn appends_read_back_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), 0).unwrap();
        let first = append(&log, &[b"alpha", b"", b"gamma"]);
        let second = append(&log, &[b"delta"]);
        assert_eq!(first[2].offset, 5);
        assert_eq!(second[0].offset, 10);
        assert_eq!(log.end(), 15);
        let end = log.end();
        drop(log);
        let log = EventLog::open(dir.path(), end).unwrap();
        assert_eq!(log.read(first[0]).unwrap(), b"alpha");
        assert_eq!(log.read(first[1]).unwrap(), b"");
        assert_eq!(log.read(first[2]).unwrap(), b"gamma");
        assert_eq!(log.read(second[0]).unwrap(), b"delta");
        let mut encoded = Vec::new();
        second[0].encode(&mut encoded);
        assert_eq!(Extent::decode(&encoded), Some(second[0]));
        assert_eq!(Extent::decode(&encoded[1..]), None);
    }

    #[test]
    fn an_uncommitted_tail_is_cut_and_a_short_log_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), 0).unwrap();
        let kept = append(&log, &[b"committed"]);
        let committed = log.end();
        append(&log, &[b"applied but never flushed in sled"]);
        drop(log);
        let log = EventLog::open(dir.path(), committed).unwrap();
        assert_eq!(log.end(), committed);
        assert_eq!(
            std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len(),
            committed
        );
        assert_eq!(log.read(kept[0]).unwrap(), b"committed");
        // The next append goes where the cut tail was.
        assert_eq!(append(&log, &[b"next"])[0].offset, committed);
        drop(log);
        let err = EventLog::open(dir.path(), 1_000).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::Short {
                    actual: 13,
                    committed: 1_000,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("rebuild"), "{err}");
    }

    #[test]
    fn appends_must_follow_the_end_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), 0).unwrap();
        let mut stale = Pending::at(3);
        stale.push(|out| out.extend_from_slice(b"x"));
        assert!(matches!(
            log.append(&stale),
            Err(LogError::NotAtEnd {
                offset: 3,
                end: 0,
                ..
            })
        ));
        let extent = append(&log, &[b"payload"])[0];
        log.file.write_all_at(b"P", 0).unwrap();
        assert!(matches!(
            log.read(extent),
            Err(LogError::Checksum {
                offset: 0,
                len: 7,
                ..
            })
        ));
        let beyond = Extent {
            offset: 100,
            ..extent
        };
        assert!(matches!(log.read(beyond), Err(LogError::Io { .. })));
        log.clear().unwrap();
        assert_eq!(log.end(), 0);
        assert_eq!(append(&log, &[b"again"])[0].offset, 0);
    }

    #[test]
    fn blocks_pushed_apart_are_punched_without_touching_their_neighbours() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), 0).unwrap();
        let mut pending = Pending::at(log.end());
        let before = pending.push(|out| out.extend_from_slice(b"an event"));
        let run = pending.push_blocks(&vec![7u8; 3 * BLOCK as usize + 5]);
        let after = pending.push(|out| out.extend_from_slice(b"the next event"));
        log.append(&pending).unwrap();
        assert_eq!(run.offset, BLOCK, "a run starts at a block");
        assert_eq!(run.blocks(), BLOCK..5 * BLOCK);
        assert_eq!(after.offset, 5 * BLOCK, "nothing shares a run's last block");
        let allocated = || {
            std::fs::metadata(dir.path().join(FILE_NAME))
                .unwrap()
                .blocks()
        };
        let full = allocated();

        log.punch(&[run]).unwrap();
        assert_eq!(log.read(before).unwrap(), b"an event");
        assert_eq!(log.read(after).unwrap(), b"the next event");
        let mut hole = vec![1u8; run.len as usize];
        log.file.read_exact_at(&mut hole, run.offset).unwrap();
        assert!(hole.iter().all(|b| *b == 0), "a punched run reads as zeros");
        assert!(
            matches!(log.read(run), Err(LogError::Checksum { .. })),
            "and fails its checksum"
        );
        // `st_blocks` counts 512-byte units: the run's four blocks were given back.
        assert!(
            allocated() + 4 * BLOCK / 512 <= full,
            "{} of {full}",
            allocated()
        );
        assert_eq!(log.end(), 5 * BLOCK + 14);
        assert_eq!(
            std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len(),
            5 * BLOCK + 14,
            "the file keeps its length"
        );
    }

    #[test]
    fn extents_end_to_end_are_read_at_once_and_each_checked() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), 0).unwrap();
        let items: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        let extents = append(&log, &refs);
        // In order, out of order, with gaps, one alone, none.
        let picks: [&[usize]; 5] = [&[0, 1, 2, 3, 4, 5], &[3, 4, 0, 1, 5], &[0, 2, 4], &[5], &[]];
        for pick in picks {
            let chosen: Vec<Extent> = pick.iter().map(|&i| extents[i]).collect();
            let expected: Vec<Vec<u8>> = pick.iter().map(|&i| items[i].clone()).collect();
            assert_eq!(log.read_all(&chosen).unwrap(), expected, "{pick:?}");
        }
        // A corrupt byte inside a stretch names its own extent.
        log.file.write_all_at(b"X", extents[2].offset + 1).unwrap();
        match log.read_all(&extents).unwrap_err() {
            LogError::Checksum { offset, .. } => assert_eq!(offset, extents[2].offset),
            other => panic!("{other}"),
        }
    }
}
