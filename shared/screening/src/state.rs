//! What the screener keeps, as prost messages (compact protobuf for sled): per person a [`PersonScreening`], per shared
//! attribute a [`RelationState`]. Every list is bounded: facts older than `retain_days` before the newest record are
//! dropped, each list keeps at most `max_facts` entries (the most recent), evidence at most `max_evidence` ids plus a
//! total, a relation at most `max_relation_persons` persons.

/// Everything screening knows about one person: compact facts per rule, matters, contacts, links, flags and the
/// abnormal-list figures.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PersonScreening {
    /// Newest `occurred_at` (µs) of the person's records: the retention horizon is measured back from it.
    #[prost(int64, tag = "1")]
    pub latest_us: i64,
    /// Complaints, reports, 12345 tickets: what C1, C2 and C6 count (matters once), sorted by (occurred, event id).
    #[prost(message, repeated, tag = "2")]
    pub intakes: Vec<Intake>,
    /// Pairs of references (event ids or file numbers) known to be one grievance.
    #[prost(message, repeated, tag = "3")]
    pub matter_links: Vec<MatterLink>,
    /// Matters whose records all fell out of the retention horizon (kept for the all-time figure).
    #[prost(uint64, tag = "4")]
    pub matters_before_horizon: u64,
    /// Punitive compensation paid (C1).
    #[prost(message, repeated, tag = "5")]
    pub punitive_payments: Vec<Mark>,
    /// Bulk purchases (C2): `code` = units, `value` = amount in fen.
    #[prost(message, repeated, tag = "6")]
    pub bulk_purchases: Vec<Mark>,
    /// Findings of fabrication or untruth (C7): `code` = [`FindingKind`].
    #[prost(message, repeated, tag = "7")]
    pub fabrications: Vec<Mark>,
    /// Police and criminal records for the offences of 三(一) (R1): `code` = offence.
    #[prost(message, repeated, tag = "8")]
    pub police_cases: Vec<Mark>,
    /// Reports found unsubstantiated (R2): `code` = violation type.
    #[prost(message, repeated, tag = "9")]
    pub unsubstantiated: Vec<Mark>,
    /// Reconsiderations and administrative suits (R3).
    #[prost(message, repeated, tag = "10")]
    pub appeals: Vec<Appeal>,
    /// Disclosure requests decided not in scope (R4): `reference` = matter.
    #[prost(message, repeated, tag = "11")]
    pub disclosures_refused: Vec<Mark>,
    /// Discipline reports found untrue (R5).
    #[prost(message, repeated, tag = "12")]
    pub discipline_untrue: Vec<Mark>,
    /// Phones and addresses on the person's intakes, with how often (what binds a contact to its owner).
    #[prost(message, repeated, tag = "13")]
    pub contacts: Vec<Contact>,
    /// Intakes carrying any phone / any address.
    #[prost(uint64, tag = "14")]
    pub phone_records: u64,
    #[prost(uint64, tag = "15")]
    pub address_records: u64,
    /// What shared relations found about this person (C3, C4, C5), one entry per (rule, relation).
    #[prost(message, repeated, tag = "16")]
    pub findings: Vec<RelationFinding>,
    /// Other persons linked to this one, each with its reason.
    #[prost(message, repeated, tag = "17")]
    pub links: Vec<Link>,
    /// Flags, one per rule at most, in rule order.
    #[prost(message, repeated, tag = "18")]
    pub flags: Vec<Flag>,
    /// The abnormal-list figures.
    #[prost(message, optional, tag = "19")]
    pub figures: Option<Figures>,
}

/// A complaint, report or ticket.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Intake {
    /// [`crate::id_bytes`] of the event id.
    #[prost(bytes = "vec", tag = "1")]
    pub event_id: Vec<u8>,
    #[prost(int64, tag = "2")]
    pub occurred_us: i64,
    /// [`IntakeKind`].
    #[prost(int32, tag = "3")]
    pub kind: i32,
    #[prost(string, tag = "4")]
    pub merchant_uscc: String,
    /// `GoodsCategory`.
    #[prost(int32, tag = "5")]
    pub category: i32,
    /// The department's file number, in reference form (kept for equality only: see `ids.rs`).
    #[prost(bytes = "vec", tag = "6")]
    pub case_ref: Vec<u8>,
    /// Whether it is the first intake (by occurrence, then event id) of its matter: matters are counted by these.
    #[prost(bool, tag = "7")]
    pub leads: bool,
}

/// What an intake is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum IntakeKind {
    Unspecified = 0,
    /// `complaint.received`.
    Complaint = 1,
    /// `report.received`.
    Report = 2,
    /// `ticket.created` (12345).
    Ticket = 3,
}

/// Two references to one grievance (in reference form: see `ids.rs`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MatterLink {
    #[prost(bytes = "vec", tag = "1")]
    pub a: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub b: Vec<u8>,
    #[prost(int64, tag = "3")]
    pub occurred_us: i64,
}

/// A fact a rule counts: the event, when, and what.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Mark {
    /// [`crate::id_bytes`] of the event id.
    #[prost(bytes = "vec", tag = "1")]
    pub event_id: Vec<u8>,
    #[prost(int64, tag = "2")]
    pub occurred_us: i64,
    /// Rule-specific: violation type, offence, finding kind, units …
    #[prost(int32, tag = "3")]
    pub code: i32,
    /// Rule-specific: a matter reference, a merchant credit code …
    #[prost(string, tag = "4")]
    pub reference: String,
    /// Rule-specific: an amount, a goods category …
    #[prost(int64, tag = "5")]
    pub value: i64,
}

/// What was found untrue or fabricated (C7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum FindingKind {
    Unspecified = 0,
    /// `report.verified` with `found_fabricated`.
    ReportFabricated = 1,
    /// `ticket.marked_unfounded` (不属实件).
    TicketUnfounded = 2,
    /// A police or court record for planting, swapping, forged dates or fabricated facts.
    PoliceFabrication = 3,
}

/// A reconsideration or administrative suit, put together from its filing and its end (which may arrive first).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Appeal {
    /// The filing's event id (`filed_event_id` of the rejection), as [`crate::id_bytes`].
    #[prost(bytes = "vec", tag = "1")]
    pub filed_event_id: Vec<u8>,
    /// 0 until the filing arrived.
    #[prost(int64, tag = "2")]
    pub filed_us: i64,
    /// `MatterType` of the underlying matter.
    #[prost(int32, tag = "3")]
    pub matter_type: i32,
    #[prost(string, tag = "4")]
    pub matter_ref: String,
    /// When it was rejected or dismissed; 0 if not (yet).
    #[prost(int64, tag = "5")]
    pub rejected_us: i64,
    #[prost(bytes = "vec", tag = "6")]
    pub rejected_event_id: Vec<u8>,
}

/// A phone or address key on the person's records.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Contact {
    /// [`ContactKind`].
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub key: String,
    /// Intakes of the person carrying it.
    #[prost(uint64, tag = "3")]
    pub records: u64,
    /// Whether another person uses it too (then the person's records re-check its relation).
    #[prost(bool, tag = "4")]
    pub shared: bool,
}

/// Phone or address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum ContactKind {
    Unspecified = 0,
    Phone = 1,
    Address = 2,
}

/// What one relation found about a person for one rule.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RelationFinding {
    /// `"C3"`, `"C4"`, `"C5"`.
    #[prost(string, tag = "1")]
    pub rule: String,
    /// [`crate::RelationKey::to_bytes`] of the relation.
    #[prost(bytes = "vec", tag = "2")]
    pub relation: Vec<u8>,
    #[prost(int64, tag = "3")]
    pub window_from_us: i64,
    #[prost(int64, tag = "4")]
    pub window_to_us: i64,
    #[prost(message, repeated, tag = "5")]
    pub figures: Vec<Figure>,
    /// (occurred µs, event id) pairs, oldest first.
    #[prost(message, repeated, tag = "6")]
    pub evidence: Vec<Evidence>,
}

/// One evidence event.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, prost::Message)]
pub struct Evidence {
    #[prost(int64, tag = "1")]
    pub occurred_us: i64,
    /// [`crate::id_bytes`] of the event id.
    #[prost(bytes = "vec", tag = "2")]
    pub event_id: Vec<u8>,
}

/// Why two persons are linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LinkReason {
    Unspecified = 0,
    /// Both give the same phone.
    SharedPhone = 1,
    /// Both give the same address.
    SharedAddress = 2,
    /// Near-identical complaint texts on the same merchant.
    SimilarText = 3,
    /// Complained about the same merchant within the C4 window, sharing a contact or text (二(四)).
    Collusion = 4,
    /// Share a contact none of them owns, across many merchants: an agent's (二(五)).
    SharedAgent = 5,
    /// Records under the other's ID number carry this person's contact, or the reverse (二(三)).
    FalseName = 6,
}

/// A link from this person to another.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Link {
    /// The other person's key (its 32 bytes; tag 1 held it as hex before projection version 16).
    #[prost(bytes = "vec", tag = "5")]
    pub other: Vec<u8>,
    /// [`LinkReason`].
    #[prost(int32, tag = "2")]
    pub reason: i32,
    /// The relation that links them.
    #[prost(bytes = "vec", tag = "3")]
    pub relation: Vec<u8>,
    /// Some events showing it (at most 10, the greatest ids), in their stored form ([`crate::ids::id_bytes`]; tag 4
    /// held them as strings before projection version 16). Empty for a plain sharing link (same phone, address or
    /// text): its evidence is the relation's, [`crate::sharing_evidence`], read with it.
    #[prost(bytes = "vec", repeated, tag = "6")]
    pub evidence: Vec<Vec<u8>>,
}

/// A figure that crossed (or is compared with) its threshold.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Figure {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int64, tag = "2")]
    pub value: i64,
    #[prost(int64, tag = "3")]
    pub threshold: i64,
}

/// A suspicion raised by one rule about one person (never a verdict: determination decides).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Flag {
    /// `"C1"` … `"R5"`.
    #[prost(string, tag = "1")]
    pub rule: String,
    /// E.g. `二(三)`.
    #[prost(string, tag = "2")]
    pub clause: String,
    #[prost(string, tag = "3")]
    pub title_zh: String,
    #[prost(string, tag = "4")]
    pub title_en: String,
    /// The guideline (document and version) of the clause.
    #[prost(string, tag = "5")]
    pub guideline: String,
    /// The window of the evidence, `occurred_at` µs.
    #[prost(int64, tag = "6")]
    pub window_from_us: i64,
    #[prost(int64, tag = "7")]
    pub window_to_us: i64,
    #[prost(message, repeated, tag = "8")]
    pub figures: Vec<Figure>,
    /// The most recent evidence event ids (at most `max_evidence`), oldest first.
    #[prost(string, repeated, tag = "9")]
    pub evidence: Vec<String>,
    /// All evidence events, including those beyond the list.
    #[prost(uint64, tag = "10")]
    pub evidence_total: u64,
    /// Stream sequence that first raised it.
    #[prost(uint64, tag = "11")]
    pub raised_seq: u64,
    /// Stream sequence of the last change.
    #[prost(uint64, tag = "12")]
    pub updated_seq: u64,
    /// Bumped at every change.
    #[prost(uint64, tag = "13")]
    pub revision: u64,
    /// False once withdrawn (only cross-person rules C3-C5 withdraw, when later records change the picture).
    #[prost(bool, tag = "14")]
    pub active: bool,
}

/// Counts of one thing by name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, prost::Message)]
pub struct Count {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint64, tag = "2")]
    pub count: u64,
}

/// What the abnormal list (异常名录, domain.md section 6) shows about a person, all-time.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Figures {
    /// Complaints and reports, each grievance counted once across 12315, 12345 and the petition office.
    #[prost(uint64, tag = "1")]
    pub matters: u64,
    #[prost(uint64, tag = "2")]
    pub complaints: u64,
    #[prost(uint64, tag = "3")]
    pub reports: u64,
    #[prost(uint64, tag = "4")]
    pub tickets: u64,
    #[prost(uint64, tag = "5")]
    pub disclosure_requests: u64,
    #[prost(uint64, tag = "6")]
    pub reconsiderations: u64,
    #[prost(uint64, tag = "7")]
    pub admin_suits: u64,
    #[prost(uint64, tag = "8")]
    pub civil_claims: u64,
    #[prost(uint64, tag = "9")]
    pub petitions: u64,
    #[prost(uint64, tag = "10")]
    pub discipline_reports: u64,
    /// Events by department, indexed by the `Department` enum number (0-6).
    #[prost(uint64, repeated, tag = "11")]
    pub by_department: Vec<u64>,
    /// Events by kind (`complaint.received` …), sorted by kind.
    #[prost(message, repeated, tag = "12")]
    pub by_kind: Vec<Count>,
    /// Violation types alleged in reports, sorted by name.
    #[prost(message, repeated, tag = "13")]
    pub violations: Vec<Count>,
    /// Claim types of complaints, sorted by name.
    #[prost(message, repeated, tag = "14")]
    pub claim_types: Vec<Count>,
    /// Goods or service categories complained or reported about, sorted by name.
    #[prost(message, repeated, tag = "15")]
    pub categories: Vec<Count>,
}

impl Figures {
    /// Reconsiderations and suits together, as the abnormal list counts them.
    pub fn reconsiderations_or_suits(&self) -> u64 {
        self.reconsiderations + self.admin_suits
    }

    /// The main issues raised: the `n` commonest alleged violations and claim types, commonest first.
    pub fn main_issues(&self, n: usize) -> Vec<Count> {
        let mut all: Vec<Count> = self
            .violations
            .iter()
            .chain(self.claim_types.iter())
            .cloned()
            .collect();
        all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        all.truncate(n);
        all
    }

    /// The `n` commonest goods or service categories, commonest first.
    pub fn main_categories(&self, n: usize) -> Vec<Count> {
        let mut all = self.categories.clone();
        all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        all.truncate(n);
        all
    }
}

/// What one shared phone, address or complaint text knows: who uses it, and their records with it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RelationState {
    /// Newest `occurred_at` (µs) of its uses.
    #[prost(int64, tag = "1")]
    pub latest_us: i64,
    /// Persons using it (32-byte keys), in the order they joined (`RelationUse::person` indexes it).
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub persons: Vec<Vec<u8>>,
    /// Records with it, sorted by (occurred, event id).
    #[prost(message, repeated, tag = "3")]
    pub uses: Vec<RelationUse>,
    /// Whether `max_relation_persons` was reached (then nobody new joins).
    #[prost(bool, tag = "4")]
    pub saturated: bool,
    /// The merchants (credit codes) of its uses, each once (`RelationUse::merchant` indexes it, from 1).
    #[prost(string, repeated, tag = "5")]
    pub merchants: Vec<String>,
}

impl RelationState {
    /// The merchant of a use, `""` if none.
    pub fn merchant_of(&self, u: &RelationUse) -> &str {
        match u.merchant.checked_sub(1) {
            Some(i) => self.merchants.get(i as usize).map_or("", String::as_str),
            None => "",
        }
    }
}

/// One record carrying the shared attribute.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, prost::Message)]
pub struct RelationUse {
    #[prost(int64, tag = "1")]
    pub occurred_us: i64,
    /// [`crate::id_bytes`] of the event id.
    #[prost(bytes = "vec", tag = "2")]
    pub event_id: Vec<u8>,
    /// Index into `persons`.
    #[prost(uint32, tag = "3")]
    pub person: u32,
    /// 1 + index into `merchants`; 0 for none.
    #[prost(uint32, tag = "6")]
    pub merchant: u32,
    /// An appeal rejected or dismissed for false identity (二(三)).
    #[prost(bool, tag = "5")]
    pub false_identity: bool,
}
