//! A unit of the population — one ordinary person, one abusive claimant with the people whose names they borrow, a
//! collusion ring, a cluster of hired complainants — is generated as a whole, its events sorted by time and written
//! out, and then forgotten: memory stays bounded by the largest unit, whatever the population.
//!
//! [`World`] holds what every unit reads (span, regions, merchants); [`Counters`] what every unit advances (identities,
//! record numbers).

use caselink_domain::{department_of, derive_event_id, ALL_DEPARTMENTS};
use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{CaseEvent, Department, Merchant, Person};
use rand_chacha::ChaCha8Rng;

use crate::calendar::{day_of, timestamp, year_of, yyyymmdd, Span};
use crate::criteria::Criteria;
use crate::identity::{Identity, IdentityFactory};
use crate::merchants::MerchantPool;
use crate::regions::Regions;
use crate::truth::{Label, MatterTruth, PersonTruth};
use crate::writer::Output;
use crate::GenError;

/// What every unit reads.
pub(crate) struct World {
    pub(crate) seed: u64,
    pub(crate) span: Span,
    pub(crate) regions: Regions,
    pub(crate) merchants: MerchantPool,
}

/// The department's file numbers the generator hands out (each kind its own running number).
#[derive(Debug, Clone, Copy)]
pub(crate) enum FileKind {
    Complaint,
    Report,
    Disclosure,
    Discipline,
    Penalty,
    Police,
    Reconsideration,
    AdminSuit,
    CivilSuit,
    CriminalCase,
    Petition,
    Ticket,
}

const FILE_KINDS: usize = 12;

/// What every unit advances.
pub(crate) struct Counters {
    pub(crate) identities: IdentityFactory,
    source: [u64; 6],
    files: [u64; FILE_KINDS],
    matters: u64,
    pub(crate) rings: u64,
    pub(crate) hired: u64,
}

impl Counters {
    pub(crate) fn new(identities: IdentityFactory) -> Counters {
        Counters {
            identities,
            source: [0; 6],
            files: [0; FILE_KINDS],
            matters: 0,
            rings: 0,
            hired: 0,
        }
    }
}

pub(crate) type PersonIdx = usize;
pub(crate) type MatterIdx = usize;

/// A person of the unit and what the truth will say about them.
pub(crate) struct PersonState {
    pub(crate) identity: Identity,
    pub(crate) label: Label,
    pub(crate) criteria: Criteria,
    pub(crate) ring: Option<String>,
    pub(crate) impersonated_by: Option<String>,
    pub(crate) matters: Vec<MatterIdx>,
    /// Days of the complaints and reports filed under this person's ID number (rule C6 counts them).
    pub(crate) intake_days: Vec<i64>,
    /// Unsubstantiated reports under this person's ID number, per violation type (rule R2 counts them).
    pub(crate) unsubstantiated: [u8; 100],
    /// Escalations this person made themselves (an ordinary person makes at most one).
    pub(crate) escalations: u32,
    /// Claimant's writing style.
    pub(crate) style: u8,
}

/// One grievance and the department records it produced.
struct MatterState {
    id: String,
    owner: PersonIdx,
    records: Vec<String>,
}

/// An event waiting for its unit to be written.
struct Pending {
    at: i64,
    order: usize,
    department: usize,
    matter: MatterIdx,
    event: CaseEvent,
}

/// A recorded event's id, for later records to refer to.
#[derive(Debug, Clone)]
pub(crate) struct Ref {
    pub(crate) id: String,
}

/// Who files a record and how they present themselves: the subject as the department records it (for an impersonated
/// filing: the victim's ID number and name with the filer's phone and address), the region the record is kept in, and
/// the person who really acts (whose matter it is).
#[derive(Debug, Clone)]
pub(crate) struct Filer {
    pub(crate) actor: PersonIdx,
    pub(crate) subject: Person,
    pub(crate) county: usize,
}

/// The fixed parts of a line of records about one matter at one department.
pub(crate) struct Thread<'a> {
    pub(crate) matter: MatterIdx,
    pub(crate) filer: &'a Filer,
    pub(crate) region: &'a str,
    pub(crate) case_ref: &'a str,
    pub(crate) merchant: Option<&'a Merchant>,
}

/// The events of one unit, gathered before they are written.
pub(crate) struct Unit<'w> {
    pub(crate) world: &'w World,
    pub(crate) counters: &'w mut Counters,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) persons: Vec<PersonState>,
    matters: Vec<MatterState>,
    events: Vec<Pending>,
}

fn department_index(d: Department) -> usize {
    ALL_DEPARTMENTS.iter().position(|x| *x == d).unwrap_or(0)
}

const SOURCE_PREFIX: [&str; 6] = ["MK", "PO", "JU", "CO", "PE", "HL"];

impl<'w> Unit<'w> {
    pub(crate) fn new(world: &'w World, counters: &'w mut Counters, rng: ChaCha8Rng) -> Unit<'w> {
        Unit {
            world,
            counters,
            rng,
            persons: Vec::new(),
            matters: Vec::new(),
            events: Vec::new(),
        }
    }

    /// A new person of the unit with a fresh identity.
    pub(crate) fn person(&mut self, label: Label) -> PersonIdx {
        let identity = self
            .counters
            .identities
            .person(&mut self.rng, &self.world.regions);
        let style = rand::Rng::random_range(&mut self.rng, 0..64u8);
        self.persons.push(PersonState {
            identity,
            label,
            criteria: Criteria::default(),
            ring: None,
            impersonated_by: None,
            matters: Vec::new(),
            intake_days: Vec::new(),
            unsubstantiated: [0; 100],
            escalations: 0,
            style,
        });
        self.persons.len() - 1
    }

    /// The person filing in their own name, with their own contacts.
    pub(crate) fn own(&self, p: PersonIdx) -> Filer {
        Filer {
            actor: p,
            subject: self.persons[p].identity.person.clone(),
            county: self.persons[p].identity.county,
        }
    }

    /// A new grievance of `owner`.
    pub(crate) fn matter(&mut self, owner: PersonIdx) -> MatterIdx {
        self.counters.matters += 1;
        self.matters.push(MatterState {
            id: format!("M-{}-{:07}", self.world.seed, self.counters.matters),
            owner,
            records: Vec::new(),
        });
        self.persons[owner].matters.push(self.matters.len() - 1);
        self.matters.len() - 1
    }

    /// A new file number of the given kind, for a record kept in `county` and opened at `at`.
    pub(crate) fn file_number(&mut self, kind: FileKind, county: usize, at: i64) -> String {
        let slot = &mut self.counters.files[kind as usize];
        *slot += 1;
        let n = *slot;
        let regions = &self.world.regions;
        let c = &regions.counties[county];
        let year = year_of(at);
        let court = |t: &str| {
            format!(
                "（{year}）{}{}{t}{n}号",
                regions.province_short,
                &c.code[2..]
            )
        };
        match kind {
            FileKind::Complaint => format!("{}市监投〔{year}〕{n}号", c.name),
            FileKind::Report => format!("{}市监举〔{year}〕{n}号", c.name),
            FileKind::Disclosure => format!("{}市监依申公开〔{year}〕{n}号", c.name),
            FileKind::Discipline => format!("{}纪信〔{year}〕{n}号", c.name),
            FileKind::Penalty => format!("{}市监罚决〔{year}〕{n}号", c.name),
            FileKind::Police => format!("{}公受案字〔{year}〕{n}号", c.name),
            FileKind::Reconsideration => format!("{}司复〔{year}〕{n}号", regions.city),
            FileKind::AdminSuit => court("行初"),
            FileKind::CivilSuit => court("民初"),
            FileKind::CriminalCase => court("刑初"),
            FileKind::Petition => format!("{}信访〔{year}〕{n}号", c.name),
            FileKind::Ticket => format!("12345-{}-{n:07}", yyyymmdd(at)),
        }
    }

    /// Records one event about `thread` at `at`; returns its id for later references.
    pub(crate) fn emit(
        &mut self,
        thread: &Thread<'_>,
        at: i64,
        summary: String,
        related: Vec<String>,
        payload: Payload,
    ) -> Ref {
        self.push(
            thread,
            Some(&thread.filer.subject),
            at,
            summary,
            related,
            payload,
        )
    }

    /// Records an event with no person as subject (a penalty on a merchant).
    pub(crate) fn emit_on_merchant(
        &mut self,
        thread: &Thread<'_>,
        at: i64,
        summary: String,
        related: Vec<String>,
        payload: Payload,
    ) -> Ref {
        self.push(thread, None, at, summary, related, payload)
    }

    fn push(
        &mut self,
        thread: &Thread<'_>,
        subject: Option<&Person>,
        at: i64,
        summary: String,
        related_event_ids: Vec<String>,
        payload: Payload,
    ) -> Ref {
        let department = department_of(&payload);
        let d = department_index(department);
        self.counters.source[d] += 1;
        let source_id = format!(
            "{}-{}-{:08}",
            SOURCE_PREFIX[d], self.world.seed, self.counters.source[d]
        );
        let id = derive_event_id(department, &source_id).to_string();
        if matches!(
            payload,
            Payload::ComplaintReceived(_) | Payload::ReportReceived(_)
        ) {
            if let Some(s) = subject {
                if let Some(p) = self
                    .persons
                    .iter_mut()
                    .find(|p| p.identity.person.id_number == s.id_number)
                {
                    p.intake_days.push(day_of(at));
                }
            }
        }
        let event = CaseEvent {
            source_id,
            department: department as i32,
            occurred_at: Some(timestamp(at)),
            region_code: thread.region.to_owned(),
            case_ref: thread.case_ref.to_owned(),
            subject: subject.cloned(),
            merchant: thread.merchant.cloned(),
            summary,
            related_event_ids,
            payload: Some(payload),
            ..CaseEvent::default()
        };
        let order = self.events.len();
        self.events.push(Pending {
            at,
            order,
            department: d,
            matter: thread.matter,
            event,
        });
        Ref { id }
    }

    /// Writes the unit: its events that happened by the end of the history, in time order, to the department files;
    /// then its persons to the truth. Returns how many events were written.
    pub(crate) fn write(mut self, out: &mut Output) -> Result<u64, GenError> {
        let latest = self.world.span.latest();
        // Sort indices, not the (large) events.
        let mut order: Vec<usize> = (0..self.events.len())
            .filter(|i| self.events[*i].at <= latest)
            .collect();
        order.sort_by_key(|i| (self.events[*i].at, self.events[*i].order));
        let mut per_person = vec![0u64; self.persons.len()];
        for i in &order {
            let e = &self.events[*i];
            let record = format!(
                "{}/{}",
                crate::DEPARTMENT_FILES[e.department].0,
                e.event.source_id
            );
            self.matters[e.matter].records.push(record);
            if let Some(s) = &e.event.subject {
                if let Some(i) = self
                    .persons
                    .iter()
                    .position(|p| p.identity.person.id_number == s.id_number)
                {
                    per_person[i] += 1;
                }
            }
            out.event(e.department, &e.event)?;
        }
        let written = order.len() as u64;
        for (i, p) in self.persons.iter().enumerate() {
            let matters = p
                .matters
                .iter()
                .map(|m| &self.matters[*m])
                .filter(|m| !m.records.is_empty() && m.owner == i)
                .map(|m| MatterTruth {
                    id: m.id.clone(),
                    records: m.records.clone(),
                })
                .collect();
            out.person(&PersonTruth {
                id_number: p.identity.person.id_number.clone(),
                phone: p.identity.person.phone.clone(),
                label: p.label,
                criteria: p.criteria.codes(),
                ring: p.ring.clone(),
                impersonated_by: p.impersonated_by.clone(),
                matters,
                events: per_person[i],
            })?;
        }
        Ok(written)
    }
}
