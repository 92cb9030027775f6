//! The disk baseline: how fast this machine's disk answers small random reads, alone and several at once.
//!
//! Once the store outgrows sled's cache, the live fold reads the states of persons not seen lately from the disk, a
//! leaf at a time (sled reads a page's fragments one after another), so freshness after a bulk load is bounded by the
//! disk's random reads, not by the two cores. The figure makes that bound visible in every run: 4 KiB reads at random
//! 4 KiB-aligned offsets of a file written for the purpose, with `O_DIRECT` (past the kernel's page cache: what the
//! disk itself answers), by one thread and by as many threads as the fold's preload reads with, each with one read in
//! flight. On a virtual disk the host answers a file just written from its own cache: on the benchmark's machine a
//! fresh 1 GiB file (and the first GiB of a fresh 4 GiB one) read ~8,300 times a second one at a time, a 1.8 GB file
//! written hours before 1,900-2,900 times (session 22). The figure is an upper bound of what the fold's cold reads of
//! older pages get (BENCHMARKS.md, sessions 21-22).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::stats::Throughput;

/// Bytes of the file read at random: far more than the disk's own cache, little next to the benchmark's stores.
pub const FILE_BYTES: u64 = 1 << 30;
/// Reads in flight measured: one, and the fold's preload's reading threads (`caselink_linkage::states`).
pub const DEPTHS: [usize; 2] = [1, 16];
/// How long each depth reads.
pub const READ_TIME: Duration = Duration::from_secs(3);
/// The read's size and alignment (a sled fragment of a small leaf; `O_DIRECT` needs block-aligned reads).
const BLOCK: usize = 4096;

/// 4 KiB random reads past the page cache with `in_flight` at once.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct DiskReads {
    pub in_flight: usize,
    pub reads: Throughput,
}

/// The baseline: a file of [`FILE_BYTES`] under `dir`, then [`random_reads`] at each of [`DEPTHS`] for [`READ_TIME`].
pub fn measure(dir: &Path) -> anyhow::Result<Vec<DiskReads>> {
    let path = write_file(dir, FILE_BYTES)?;
    DEPTHS
        .into_iter()
        .map(|in_flight| {
            let reads = random_reads(&path, FILE_BYTES, in_flight, READ_TIME)?;
            Ok(DiskReads { in_flight, reads })
        })
        .collect()
}

/// Writes a file of `bytes` (not a sparse one: every block is on the disk) under `dir`, synced, for [`random_reads`];
/// its path.
fn write_file(dir: &Path, bytes: u64) -> anyhow::Result<PathBuf> {
    let path = dir.join("disk-baseline");
    let mut file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    // Bytes that differ block to block, so no layer below can store the file as a pattern.
    let mut chunk = vec![0u8; 1 << 20];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut written = 0;
    while written < bytes {
        for word in chunk.chunks_exact_mut(8) {
            word.copy_from_slice(&next(&mut state).to_le_bytes());
        }
        let n = chunk
            .len()
            .min(usize::try_from(bytes - written).unwrap_or(usize::MAX));
        file.write_all(&chunk[..n])
            .with_context(|| format!("writing {}", path.display()))?;
        written += n as u64;
    }
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok(path)
}

/// Reads [`BLOCK`] bytes at random aligned offsets of `path` (its first `bytes`) on `depth` threads, each with one
/// read in flight, for `time`; the reads go past the kernel's page cache (`O_DIRECT`). Fails on a file system that
/// refuses `O_DIRECT` (tmpfs, for one), naming it.
fn random_reads(
    path: &Path,
    bytes: u64,
    depth: usize,
    time: Duration,
) -> anyhow::Result<Throughput> {
    let blocks = bytes / BLOCK as u64;
    if blocks == 0 {
        bail!("a file of {bytes} bytes holds no {BLOCK}-byte block to read");
    }
    let file = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECT,
        rustix::fs::Mode::empty(),
    )
    .map(File::from)
    .with_context(|| {
        format!(
            "opening {} with O_DIRECT (the file system must read past the page cache)",
            path.display()
        )
    })?;
    let reads = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let started = Instant::now();
    let deadline = started + time;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let readers: Vec<_> = (0..depth.max(1))
            .map(|thread| {
                let (file, reads, failed) = (&file, &reads, &failed);
                scope.spawn(move || -> anyhow::Result<()> {
                    // O_DIRECT reads into memory aligned like the disk's blocks: the aligned part of a larger buffer.
                    let mut buffer = vec![0u8; 2 * BLOCK];
                    let skip = buffer.as_ptr().align_offset(BLOCK);
                    let block = &mut buffer[skip..skip + BLOCK];
                    let mut state = 0x2545_F491_4F6C_DD1Du64 ^ (thread as u64 + 1);
                    while Instant::now() < deadline && !failed.load(Ordering::Relaxed) {
                        let offset = (next(&mut state) % blocks) * BLOCK as u64;
                        if let Err(e) = file.read_exact_at(block, offset) {
                            // The other threads stop too: the run has failed.
                            failed.store(true, Ordering::Relaxed);
                            return Err(e).with_context(|| format!("reading at {offset}"));
                        }
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        for reader in readers {
            reader
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        }
        Ok(())
    })?;
    Ok(Throughput::new(
        reads.load(Ordering::Relaxed),
        started.elapsed(),
    ))
}

/// xorshift64: cheap, seeded, good enough to scatter reads and fill a file.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_written_whole_and_read_at_random_past_the_page_cache() {
        // Where the benchmark keeps its data (`Dataset`): the temporary folder, which must be on a disk.
        let dir = tempfile::tempdir().unwrap();
        let bytes = 64 * BLOCK as u64;
        let path = write_file(dir.path(), bytes).unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(file.metadata().unwrap().len(), bytes);
        let mut first = vec![0u8; BLOCK];
        let mut last = vec![0u8; BLOCK];
        file.read_exact_at(&mut first, 0).unwrap();
        file.read_exact_at(&mut last, bytes - BLOCK as u64).unwrap();
        assert_ne!(first, last, "blocks differ: the file is no pattern");
        assert!(first.iter().any(|b| *b != 0));

        let read = random_reads(&path, bytes, 2, Duration::from_millis(50)).unwrap();
        assert!(read.count > 0, "{read:?}");
        assert!(read.seconds >= 0.05, "{read:?}");
        let none = random_reads(&path, BLOCK as u64 - 1, 1, Duration::from_millis(10));
        assert!(none.unwrap_err().to_string().contains("no 4096-byte block"));
    }
}
