//! The benchmark's data: one seeded population, generated once per run, in the two forms the measurements need.
//!
//! - **Submit form**: the departments' records as they arrive at the door (clear identity), one file per department,
//!   streamed into `Ingest.SubmitStream`.
//! - **Bus form**: the same records after the door (validated, pseudonymised, sealed, with subject and `Nats-Msg-Id`),
//!   produced by the ingest library's own `IngestService::prepare`, so the raw baselines publish exactly the bytes the
//!   pipeline publishes.
//!
//! Both are length-prefixed binary files in the run's temporary folder and are streamed, never held in memory whole,
//! so a 10M-event run fits in memory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use caselink_bus::OutgoingEvent;
use caselink_domain::{department_code, IdentityKeys, Limits, PersonKey, SystemClock};
use caselink_ingest::{DepartmentRules, IngestService, Prepared};
use caselink_proto::v1::{CaseEvent, Department, Receipt};
use caselink_runtime::IdentityConfig;
use prost::Message;
use tokio::sync::mpsc;

use crate::progress::Progress;

/// The six departments, in the order of their files.
pub const DEPARTMENTS: [Department; 6] = [
    Department::Market,
    Department::Police,
    Department::Justice,
    Department::Court,
    Department::Petition,
    Department::Hotline,
];

/// A first guess of events per person in the generated population (refined by measuring the first generation).
const EVENTS_PER_PERSON_GUESS: f64 = 8.0;
/// The timeline size the query figure is defined for.
pub const QUERY_TIMELINE_EVENTS: u64 = 200;
/// Persons queried by the timeline figure.
const QUERY_PERSONS: usize = 64;
/// Events kept aside (as resubmittable copies) for the freshness figure.
const FRESH_POOL: usize = 20_000;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DataParams {
    /// Events wanted.
    pub events: u64,
    /// Persons in the population; `None` picks enough for `events`.
    pub people: Option<usize>,
    pub seed: u64,
    pub years: u32,
}

/// The prepared data of one run.
pub struct Dataset {
    dir: tempfile::TempDir,
    /// Events in both forms (valid ones only).
    pub events: u64,
    /// Persons the population was generated with.
    pub people: usize,
    /// Distinct persons among the kept events.
    pub persons: u64,
    /// Events the generator wrote (before trimming to `events`).
    pub generated: u64,
    /// Generated records the door refused (not in either form).
    pub rejected: u64,
    /// Per department: the submit-form file and its event count.
    pub submit_files: Vec<(Department, PathBuf, u64)>,
    /// The bus-form files with their event counts, published interleaved in [`EPOCHS`] slices ([`stream_bus`]).
    pub bus_files: Vec<(PathBuf, u64)>,
    /// Mean size of a bus-form payload (encoded, pseudonymised, sealed `CaseEvent`).
    pub mean_payload_bytes: f64,
    /// Person keys (hex) with timelines closest to [`QUERY_TIMELINE_EVENTS`] events, with their event counts.
    pub query_persons: Vec<(String, u64)>,
    /// Clear events of the persons with the shortest timelines, to resubmit under new source ids (freshness).
    pub fresh: Vec<CaseEvent>,
    /// The identity secrets the bus form was made with; the services of the run use the same.
    pub identity: IdentityConfig,
}

impl Dataset {
    /// The run's temporary folder (scratch space for measurements lives under it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Generates the population and prepares both forms.
pub async fn prepare(
    params: &DataParams,
    nats_url: &str,
    progress: &Progress,
) -> anyhow::Result<Dataset> {
    // The folder is shared with the threads that write into it: if the run is interrupted (this future dropped), it is
    // removed once the last of them has stopped, not while one still writes, which would leave it behind.
    let dir = Arc::new(
        tempfile::Builder::new()
            .prefix("caselink-bench-")
            .tempdir()
            .context("creating the run's temporary folder")?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_when_dropped = StopWhenDropped(Arc::clone(&stop));
    let gen_dir = dir.path().join("population");
    let (people, counts) = generate_enough(params, &dir, &gen_dir, progress).await?;
    let generated: u64 = counts.iter().sum();
    let quotas = quotas(&counts, params.events);

    let identity = IdentityConfig::generate();
    let client = caselink_bus::connect(nats_url, "caselink-bench-prepare", Duration::from_secs(5))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let publisher = caselink_bus::EventPublisher::spawn(client, Default::default());
    let mut preparers = Vec::new();
    for department in DEPARTMENTS {
        let keys = identity
            .build()
            .map_err(|e| anyhow::anyhow!("identity: {e}"))?;
        preparers.push(preparer_for(department, keys, publisher.clone()));
    }

    let total: u64 = quotas.iter().sum();
    progress.phase(&format!(
        "preparing {} events in submit and bus form",
        crate::stats::thousands(total as f64)
    ));
    let out_dir = Arc::clone(&dir);
    let done = Arc::new(AtomicU64::new(0));
    let ticker = progress.ticker("prepared", total, Arc::clone(&done));
    let prepared = tokio::task::spawn_blocking(move || {
        prepare_all(&gen_dir, out_dir.path(), &quotas, preparers, &done, &stop)
    })
    .await
    .context("the preparing task failed")??;
    ticker.stop().await;
    let dir = Arc::try_unwrap(dir)
        .map_err(|_| anyhow::anyhow!("the run's temporary folder is still in use"))?;
    let _ = std::fs::remove_dir_all(dir.path().join("population"));

    let mut persons: HashMap<PersonKey, u32> = HashMap::new();
    let mut payload_bytes = 0u64;
    let mut events = 0u64;
    let mut rejected = 0u64;
    let mut submit_files = Vec::new();
    let mut bus_files = Vec::new();
    let mut fresh_candidates = Vec::new();
    for part in prepared {
        for (key, n) in part.persons {
            *persons.entry(key).or_default() += n;
        }
        payload_bytes += part.payload_bytes;
        events += part.events;
        rejected += part.rejected;
        submit_files.push((part.department, part.submit_file, part.events));
        bus_files.push((part.bus_file, part.events));
        fresh_candidates.extend(part.fresh);
    }
    if events == 0 {
        bail!("the generated population has no valid events");
    }
    let mut nearest: Vec<(&PersonKey, u32)> = persons.iter().map(|(k, &n)| (k, n)).collect();
    nearest.sort_by_key(|&(k, n)| (u64::from(n).abs_diff(QUERY_TIMELINE_EVENTS), *k));
    let query_persons = nearest
        .into_iter()
        .take(QUERY_PERSONS)
        .map(|(k, n)| (k.to_hex(), u64::from(n)))
        .collect();
    // Freshness resubmits events of the persons with the fewest events, so the timelines it polls stay short.
    let mut fresh_candidates: Vec<(u32, CaseEvent)> = fresh_candidates
        .into_iter()
        .map(|(key, event)| (persons.get(&key).copied().unwrap_or(u32::MAX), event))
        .collect();
    fresh_candidates.sort_by_key(|(n, _)| *n);
    let fresh = fresh_candidates
        .into_iter()
        .take(FRESH_POOL)
        .map(|(_, event)| event)
        .collect();
    Ok(Dataset {
        dir,
        events,
        people,
        persons: persons.len() as u64,
        generated,
        rejected,
        submit_files,
        bus_files,
        mean_payload_bytes: payload_bytes as f64 / events as f64,
        query_persons,
        fresh,
        identity,
    })
}

/// What the preparing threads share with the run: events prepared so far (progress), and whether to stop.
#[derive(Clone, Copy)]
struct Watch<'a> {
    done: &'a AtomicU64,
    stop: &'a AtomicBool,
}

/// Sets its flag when dropped: the preparing threads stop when the run that waits for them is interrupted.
struct StopWhenDropped(Arc<AtomicBool>);

impl Drop for StopWhenDropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs the generator until it wrote at least `params.events` events (or once, if the persons were given).
async fn generate_enough(
    params: &DataParams,
    run_dir: &Arc<tempfile::TempDir>,
    gen_dir: &Path,
    progress: &Progress,
) -> anyhow::Result<(usize, Vec<u64>)> {
    let mut people = params.people.unwrap_or_else(|| {
        ((params.events as f64 / EVENTS_PER_PERSON_GUESS).ceil() as usize).max(10)
    });
    for attempt in 0..4 {
        progress.phase(&format!(
            "generating the population: {} persons, {} years, seed {}",
            crate::stats::thousands(people as f64),
            params.years,
            params.seed
        ));
        let written = Arc::new(AtomicU64::new(0));
        let ticker = progress.ticker("generated", params.events, Arc::clone(&written));
        let gen_params = caselink_population::GenParams {
            seed: params.seed,
            people,
            years: params.years,
            region: "4306".into(),
            end: "2026-06-30".into(),
            abuser_share: 0.01,
        };
        let dir = gen_dir.to_path_buf();
        let counter = Arc::clone(&written);
        let keep = Arc::clone(run_dir);
        tokio::task::spawn_blocking(move || {
            let generated = caselink_population::generate(&gen_params, &dir, &mut |n| {
                counter.store(n, Ordering::Relaxed);
            });
            drop(keep);
            generated
        })
        .await
        .context("the generator task failed")?
        .context("generating the population")?;
        ticker.stop().await;
        let counts = count_lines(gen_dir)?;
        let total: u64 = counts.iter().sum();
        if total >= params.events || params.people.is_some() || attempt == 3 {
            if total < params.events {
                progress.note(&format!(
                    "the population has {} events, fewer than the {} asked for; using all of them",
                    crate::stats::thousands(total as f64),
                    crate::stats::thousands(params.events as f64)
                ));
            }
            return Ok((people, counts));
        }
        let per_person = total.max(1) as f64 / people as f64;
        people = ((params.events as f64 / per_person) * 1.05).ceil() as usize;
    }
    unreachable!("the loop returns on its last attempt")
}

/// Lines (events) in each department's file.
fn count_lines(gen_dir: &Path) -> anyhow::Result<Vec<u64>> {
    DEPARTMENTS
        .iter()
        .map(|&d| {
            let path = department_file(gen_dir, d);
            let mut reader = BufReader::with_capacity(1 << 20, open(&path)?);
            let mut buf = vec![0u8; 1 << 20];
            let mut lines = 0u64;
            loop {
                let n = reader
                    .read(&mut buf)
                    .with_context(|| format!("reading {}", path.display()))?;
                if n == 0 {
                    return Ok(lines);
                }
                lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            }
        })
        .collect()
}

fn department_file(dir: &Path, department: Department) -> PathBuf {
    dir.join(format!("{}.jsonl", department_code(department)))
}

fn open(path: &Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| format!("opening {}", path.display()))
}

/// How many events of each department to keep so the total is `wanted`, in proportion to what was generated.
pub fn quotas(counts: &[u64], wanted: u64) -> Vec<u64> {
    let total: u64 = counts.iter().sum();
    if total <= wanted {
        return counts.to_vec();
    }
    let mut q: Vec<u64> = counts
        .iter()
        .map(|&c| (u128::from(c) * u128::from(wanted) / u128::from(total)) as u64)
        .collect();
    let mut short = wanted - q.iter().sum::<u64>();
    // Hand the rounding remainder to the departments with room, largest first.
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(counts[i]));
    for i in order.into_iter().cycle().take(counts.len() * 2) {
        if short == 0 {
            break;
        }
        if q[i] < counts[i] {
            q[i] += 1;
            short -= 1;
        }
    }
    q
}

type PrepareFn = Box<dyn Fn(CaseEvent, u64) -> Result<Prepared, Receipt> + Send + Sync>;

fn preparer<R: DepartmentRules>(
    rules: R,
    keys: IdentityKeys,
    publisher: caselink_bus::EventPublisher,
) -> PrepareFn {
    // The same door as the service: the ingest defaults' future tolerance (10 minutes), the system clock.
    let service = IngestService::new(
        rules,
        keys,
        Limits::default(),
        Arc::new(SystemClock),
        publisher,
        Arc::new(AtomicBool::new(true)),
        usize::MAX,
    );
    Box::new(move |event, index| service.prepare(event, index, None))
}

fn preparer_for(
    department: Department,
    keys: IdentityKeys,
    publisher: caselink_bus::EventPublisher,
) -> PrepareFn {
    match department {
        Department::Police => preparer(caselink_police::Police, keys, publisher),
        Department::Justice => preparer(caselink_justice::Justice, keys, publisher),
        Department::Court => preparer(caselink_court::Court, keys, publisher),
        Department::Petition => preparer(caselink_petition::Petition, keys, publisher),
        Department::Hotline => preparer(caselink_hotline::Hotline, keys, publisher),
        Department::Market | Department::Unspecified => {
            preparer(caselink_market::Market, keys, publisher)
        }
    }
}

/// What preparing one department's file produced.
struct DepartmentPart {
    department: Department,
    submit_file: PathBuf,
    bus_file: PathBuf,
    events: u64,
    rejected: u64,
    payload_bytes: u64,
    persons: HashMap<PersonKey, u32>,
    fresh: Vec<(PersonKey, CaseEvent)>,
}

/// Prepares the six departments on as many threads as there are cores (at most six).
fn prepare_all(
    gen_dir: &Path,
    out_dir: &Path,
    quotas: &[u64],
    preparers: Vec<PrepareFn>,
    done: &AtomicU64,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<DepartmentPart>> {
    let jobs: Mutex<Vec<(usize, PrepareFn)>> =
        Mutex::new(preparers.into_iter().enumerate().rev().collect());
    let results: Mutex<Vec<(usize, anyhow::Result<DepartmentPart>)>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(1, DEPARTMENTS.len());
    let fresh_per_department = FRESH_POOL * 3 / DEPARTMENTS.len();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let Some((i, prepare)) = job else { return };
                let part = prepare_department(
                    DEPARTMENTS[i],
                    gen_dir,
                    out_dir,
                    quotas[i],
                    &prepare,
                    fresh_per_department,
                    Watch { done, stop },
                );
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, part));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, part)| part).collect()
}

fn prepare_department(
    department: Department,
    gen_dir: &Path,
    out_dir: &Path,
    quota: u64,
    prepare: &PrepareFn,
    fresh_limit: usize,
    watch: Watch<'_>,
) -> anyhow::Result<DepartmentPart> {
    use std::io::BufRead;
    let code = department_code(department);
    let source = department_file(gen_dir, department);
    let submit_file = out_dir.join(format!("{code}.submit"));
    let bus_file = out_dir.join(format!("{code}.bus"));
    let mut submit = FrameWriter::create(&submit_file)?;
    let mut bus = FrameWriter::create(&bus_file)?;
    let mut part = DepartmentPart {
        department,
        submit_file: submit_file.clone(),
        bus_file: bus_file.clone(),
        events: 0,
        rejected: 0,
        payload_bytes: 0,
        persons: HashMap::new(),
        fresh: Vec::new(),
    };
    let reader = BufReader::with_capacity(1 << 20, open(&source)?);
    for (index, line) in reader.lines().enumerate() {
        if part.events + part.rejected >= quota {
            break;
        }
        if watch.stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        let line = line.with_context(|| format!("reading {}", source.display()))?;
        let event: CaseEvent = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a CaseEvent", source.display(), index + 1))?;
        let clear = event.encode_to_vec();
        let fresh_copy = (part.fresh.len() < fresh_limit).then(|| event.clone());
        match prepare(event, index as u64) {
            Err(_) => part.rejected += 1,
            Ok(p) => {
                let out = &p.outgoing;
                submit.frame(&clear)?;
                bus.frame(out.subject.as_bytes())?;
                bus.frame(out.msg_id.as_bytes())?;
                bus.frame(&out.payload)?;
                part.events += 1;
                part.payload_bytes += out.payload.len() as u64;
                if let Some(key) = person_of(&out.payload) {
                    *part.persons.entry(key).or_default() += 1;
                    if let Some(event) = fresh_copy {
                        part.fresh.push((key, event));
                    }
                }
            }
        }
        watch.done.fetch_add(1, Ordering::Relaxed);
    }
    submit.finish()?;
    bus.finish()?;
    Ok(part)
}

/// The person key of a bus-form event.
pub fn person_of(payload: &[u8]) -> Option<PersonKey> {
    let event = CaseEvent::decode(payload).ok()?;
    PersonKey::from_hex(&event.subject?.person_key).ok()
}

/// Writes length-prefixed frames (u32 little-endian length, bytes).
struct FrameWriter {
    path: PathBuf,
    w: BufWriter<File>,
}

impl FrameWriter {
    fn create(path: &Path) -> anyhow::Result<FrameWriter> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(FrameWriter {
            path: path.to_path_buf(),
            w: BufWriter::with_capacity(1 << 20, file),
        })
    }

    fn frame(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        write_frame(&mut self.w, bytes).with_context(|| format!("writing {}", self.path.display()))
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.w
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// Writes one frame: u32 little-endian length, then the bytes.
fn write_frame(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a frame over 4 GiB"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(bytes)
}

/// Reads the next frame into a new buffer; `Ok(None)` at a clean end of file.
fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

fn read_bus_record(r: &mut impl Read) -> io::Result<Option<OutgoingEvent>> {
    let Some(subject) = read_frame(r)? else {
        return Ok(None);
    };
    let truncated = || io::Error::new(io::ErrorKind::UnexpectedEof, "truncated bus record");
    let msg_id = read_frame(r)?.ok_or_else(truncated)?;
    let payload = read_frame(r)?.ok_or_else(truncated)?;
    let text = |b: Vec<u8>| {
        String::from_utf8(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    };
    Ok(Some(OutgoingEvent {
        subject: text(subject)?,
        msg_id: text(msg_id)?,
        payload: Bytes::from(payload),
    }))
}

/// The departments' files are published (and submitted, `crate::ingest`) in this many equal slices each, slice k of
/// every department before slice k + 1 of any, so that every stretch of the stream holds the departments in the
/// population's proportions, as live traffic from six agencies does. File after file (or, through ingest, each
/// department as fast as it could go), the stream ended with one department's records alone: the fold's first and last
/// tenths then measured two different mixes of events, not two sizes of store (cost growth).
pub const EPOCHS: u64 = 100;

/// The last index (exclusive) of slice `epoch` (1-based) of a file of `count` events.
pub fn epoch_end(count: u64, epoch: u64) -> u64 {
    count * epoch / EPOCHS
}

/// Streams the bus-form events of `files` (each with its event count; at most `limit` in all) in chunks of `chunk`,
/// interleaved in [`EPOCHS`] slices, read on their own thread.
pub fn stream_bus(
    files: &[(PathBuf, u64)],
    chunk: usize,
    limit: u64,
) -> mpsc::Receiver<io::Result<Vec<OutgoingEvent>>> {
    let files = files.to_vec();
    let (tx, rx) = mpsc::channel(8);
    std::thread::spawn(move || {
        let mut readers = Vec::with_capacity(files.len());
        for (path, count) in &files {
            match File::open(path) {
                Ok(f) => readers.push((BufReader::with_capacity(1 << 20, f), *count, 0u64)),
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
        let mut sent = 0u64;
        let mut batch = Vec::with_capacity(chunk);
        for epoch in 1..=EPOCHS {
            for (r, count, read) in &mut readers {
                while *read < epoch_end(*count, epoch) && sent < limit {
                    match read_bus_record(r) {
                        Ok(Some(event)) => {
                            batch.push(event);
                            *read += 1;
                            sent += 1;
                        }
                        Ok(None) => *read = *count,
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e));
                            return;
                        }
                    }
                    if batch.len() == chunk
                        && tx
                            .blocking_send(Ok(std::mem::replace(
                                &mut batch,
                                Vec::with_capacity(chunk),
                            )))
                            .is_err()
                    {
                        return;
                    }
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(Ok(batch));
        }
    });
    rx
}

/// Streams the submit-form events of one department's file, one by one, read on their own thread.
pub fn stream_submit(file: &Path) -> mpsc::Receiver<io::Result<CaseEvent>> {
    let file = file.to_path_buf();
    let (tx, rx) = mpsc::channel(4096);
    std::thread::spawn(move || {
        let mut r = match File::open(&file) {
            Ok(f) => BufReader::with_capacity(1 << 20, f),
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        loop {
            let item = match read_frame(&mut r) {
                Ok(None) => return,
                Ok(Some(bytes)) => CaseEvent::decode(bytes.as_slice())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_keep_everything_when_there_is_not_more() {
        assert_eq!(quotas(&[3, 2, 1, 0, 0, 0], 6), vec![3, 2, 1, 0, 0, 0]);
        assert_eq!(quotas(&[3, 2, 1, 0, 0, 0], 100), vec![3, 2, 1, 0, 0, 0]);
    }

    #[test]
    fn quotas_trim_in_proportion_and_hit_the_total() {
        let q = quotas(&[500, 300, 100, 50, 30, 20], 100);
        assert_eq!(q.iter().sum::<u64>(), 100);
        assert_eq!(q, vec![50, 30, 10, 5, 3, 2]);
        let q = quotas(&[7, 7, 7, 0, 0, 1], 10);
        assert_eq!(q.iter().sum::<u64>(), 10);
        assert!(q.iter().zip([7, 7, 7, 0, 0, 1]).all(|(q, c)| *q <= c));
    }

    #[test]
    fn bus_records_round_trip_and_end_cleanly() {
        let mut bytes = Vec::new();
        for record in [&b"caselink.ev.p01.market"[..], b"id-1", b"\x00\x01payload"] {
            write_frame(&mut bytes, record).expect("write");
        }
        let mut r = io::Cursor::new(bytes);
        let event = read_bus_record(&mut r).expect("read").expect("one record");
        assert_eq!(event.subject, "caselink.ev.p01.market");
        assert_eq!(event.msg_id, "id-1");
        assert_eq!(&event.payload[..], b"\x00\x01payload");
        assert!(read_bus_record(&mut r).expect("clean end").is_none());
        let mut truncated = io::Cursor::new(vec![9u8, 0, 0, 0, 1]);
        assert!(read_bus_record(&mut truncated).is_err());
    }

    fn bus_file(dir: &Path, name: &str, count: u64) -> (PathBuf, u64) {
        let path = dir.join(name);
        let mut bytes = Vec::new();
        for i in 0..count {
            for record in [name.as_bytes(), format!("{name}-{i}").as_bytes(), b"p"] {
                write_frame(&mut bytes, record).expect("write");
            }
        }
        std::fs::write(&path, bytes).expect("write the file");
        (path, count)
    }

    #[test]
    fn the_bus_stream_keeps_the_departments_in_proportion_and_each_file_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = [
            bus_file(dir.path(), "big", 3 * EPOCHS),
            bus_file(dir.path(), "small", EPOCHS),
            bus_file(dir.path(), "tiny", 2),
        ];
        let mut chunks = stream_bus(&files, 7, u64::MAX);
        let mut events = Vec::new();
        while let Some(chunk) = chunks.blocking_recv() {
            events.extend(chunk.expect("a chunk"));
        }
        assert_eq!(events.len() as u64, 4 * EPOCHS + 2, "every event once");
        // Every tenth of the stream holds three of "big" to one of "small".
        for tenth in events.chunks(events.len() / 10).take(10) {
            let big = tenth.iter().filter(|e| e.subject == "big").count();
            let small = tenth.iter().filter(|e| e.subject == "small").count();
            assert!(
                big.abs_diff(3 * small) <= 4,
                "{big} big, {small} small in one tenth"
            );
        }
        for name in ["big", "small", "tiny"] {
            let ids: Vec<&str> = events
                .iter()
                .filter(|e| e.subject == name)
                .map(|e| e.msg_id.as_str())
                .collect();
            let expected: Vec<String> = (0..ids.len()).map(|i| format!("{name}-{i}")).collect();
            assert_eq!(ids, expected, "{name}'s events in file order");
        }
        let mut limited = stream_bus(&files, 7, 10);
        let mut n = 0;
        while let Some(chunk) = limited.blocking_recv() {
            n += chunk.expect("a chunk").len();
        }
        assert_eq!(n, 10, "at most the limit");
    }
}
