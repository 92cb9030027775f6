//! The one policy table: which role may call which RPC, in which scope.
//!
//! Every RPC of the contract is listed in [`Rpc`]; anything not listed is denied. The [`crate::AuthLayer`] calls
//! [`check`] before any handler runs; handlers only narrow further where the decision needs the request's content
//! (a writer's region scope, event by event).

use crate::{Claims, Role};

/// Every RPC served behind the auth layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rpc {
    IngestSubmit,
    IngestSubmitStream,
    LinkageGetTimeline,
    LinkageGetPersonView,
    LinkageListFlagged,
    LinkageWatchAlerts,
    LinkageGetSituation,
    AuditList,
    ReferralDraft,
    ReferralApprove,
    ReferralRefuse,
    ReferralTransfer,
    ReferralReceive,
    ReferralForward,
    ReferralRegister,
    ReferralDecline,
    ReferralRequestReconsideration,
    ReferralDecideReconsideration,
    ReferralRequestSupervision,
    ReferralClose,
    ReferralGet,
    ReferralList,
    ReferralWatchLeads,
    DeterminationConfirm,
    DeterminationClear,
    DeterminationRevoke,
    DeterminationCheck,
    DeterminationListAbnormal,
}

impl Rpc {
    pub const ALL: [Rpc; 28] = [
        Rpc::IngestSubmit,
        Rpc::IngestSubmitStream,
        Rpc::LinkageGetTimeline,
        Rpc::LinkageGetPersonView,
        Rpc::LinkageListFlagged,
        Rpc::LinkageWatchAlerts,
        Rpc::LinkageGetSituation,
        Rpc::AuditList,
        Rpc::ReferralDraft,
        Rpc::ReferralApprove,
        Rpc::ReferralRefuse,
        Rpc::ReferralTransfer,
        Rpc::ReferralReceive,
        Rpc::ReferralForward,
        Rpc::ReferralRegister,
        Rpc::ReferralDecline,
        Rpc::ReferralRequestReconsideration,
        Rpc::ReferralDecideReconsideration,
        Rpc::ReferralRequestSupervision,
        Rpc::ReferralClose,
        Rpc::ReferralGet,
        Rpc::ReferralList,
        Rpc::ReferralWatchLeads,
        Rpc::DeterminationConfirm,
        Rpc::DeterminationClear,
        Rpc::DeterminationRevoke,
        Rpc::DeterminationCheck,
        Rpc::DeterminationListAbnormal,
    ];

    /// The gRPC path.
    pub fn path(self) -> &'static str {
        match self {
            Rpc::IngestSubmit => "/caselink.v1.Ingest/Submit",
            Rpc::IngestSubmitStream => "/caselink.v1.Ingest/SubmitStream",
            Rpc::LinkageGetTimeline => "/caselink.v1.Linkage/GetTimeline",
            Rpc::LinkageGetPersonView => "/caselink.v1.Linkage/GetPersonView",
            Rpc::LinkageListFlagged => "/caselink.v1.Linkage/ListFlagged",
            Rpc::LinkageWatchAlerts => "/caselink.v1.Linkage/WatchAlerts",
            Rpc::LinkageGetSituation => "/caselink.v1.Linkage/GetSituation",
            Rpc::AuditList => "/caselink.v1.Audit/List",
            Rpc::ReferralDraft => "/caselink.v1.Referral/Draft",
            Rpc::ReferralApprove => "/caselink.v1.Referral/Approve",
            Rpc::ReferralRefuse => "/caselink.v1.Referral/Refuse",
            Rpc::ReferralTransfer => "/caselink.v1.Referral/Transfer",
            Rpc::ReferralReceive => "/caselink.v1.Referral/Receive",
            Rpc::ReferralForward => "/caselink.v1.Referral/Forward",
            Rpc::ReferralRegister => "/caselink.v1.Referral/Register",
            Rpc::ReferralDecline => "/caselink.v1.Referral/Decline",
            Rpc::ReferralRequestReconsideration => "/caselink.v1.Referral/RequestReconsideration",
            Rpc::ReferralDecideReconsideration => "/caselink.v1.Referral/DecideReconsideration",
            Rpc::ReferralRequestSupervision => "/caselink.v1.Referral/RequestSupervision",
            Rpc::ReferralClose => "/caselink.v1.Referral/Close",
            Rpc::ReferralGet => "/caselink.v1.Referral/Get",
            Rpc::ReferralList => "/caselink.v1.Referral/List",
            Rpc::ReferralWatchLeads => "/caselink.v1.Referral/WatchLeads",
            Rpc::DeterminationConfirm => "/caselink.v1.Determination/Confirm",
            Rpc::DeterminationClear => "/caselink.v1.Determination/Clear",
            Rpc::DeterminationRevoke => "/caselink.v1.Determination/Revoke",
            Rpc::DeterminationCheck => "/caselink.v1.Determination/Check",
            Rpc::DeterminationListAbnormal => "/caselink.v1.Determination/ListAbnormal",
        }
    }

    pub fn from_path(path: &str) -> Option<Rpc> {
        Rpc::ALL.into_iter().find(|r| r.path() == path)
    }

    /// Reads of persons' data: the caller must state a purpose, and the read is audited.
    pub fn person_level(self) -> bool {
        matches!(
            self,
            Rpc::LinkageGetTimeline
                | Rpc::LinkageGetPersonView
                | Rpc::LinkageListFlagged
                | Rpc::LinkageWatchAlerts
                | Rpc::DeterminationListAbnormal
        )
    }
}

/// What the serving process is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceScope {
    /// A department's ingest service (department code).
    Department(String),
    /// The linkage service.
    Linkage,
}

/// May `claims` call `rpc` on a service of `scope`? `Err` carries the gRPC status to answer.
pub fn check(
    rpc: Rpc,
    claims: &Claims,
    scope: &ServiceScope,
    purpose: Option<&str>,
) -> Result<(), tonic::Status> {
    let deny = |why: String| Err(tonic::Status::permission_denied(why));
    let role = claims.role;
    match (rpc, scope) {
        (Rpc::IngestSubmit | Rpc::IngestSubmitStream, ServiceScope::Department(department)) => {
            if role != Role::Writer {
                return deny(format!("role {} may not submit events", role.name()));
            }
            if claims.department.as_deref() != Some(department.as_str()) {
                return deny(format!(
                    "a writer of {} may not submit to the {department} service",
                    claims.department.as_deref().unwrap_or("no department")
                ));
            }
            if claims.regions.is_empty() {
                return deny("the token names no regions to write for".into());
            }
        }
        (
            Rpc::LinkageGetTimeline
            | Rpc::LinkageGetPersonView
            | Rpc::LinkageListFlagged
            | Rpc::LinkageWatchAlerts
            | Rpc::LinkageGetSituation,
            ServiceScope::Linkage,
        ) => {
            // Joint-meeting staff read cross-agency histories, flags, alerts and the situation figures; determiners those
            // of persons in their regions (the handler checks the person's or the requested regions against the token's).
            // The situation figures are aggregates (no person named): not person-level, no purpose required.
            if !matches!(role, Role::Analyst | Role::Determiner) {
                return deny(format!(
                    "role {} may not read persons' histories, flags or alerts",
                    role.name()
                ));
            }
            if role == Role::Determiner && claims.regions.is_empty() {
                return deny("the determiner's token names no regions".into());
            }
        }
        (Rpc::AuditList, ServiceScope::Linkage) => {
            if role != Role::Auditor {
                return deny(format!("role {} may not read the audit trail", role.name()));
            }
        }
        // Criminal referral (Order 310): who may ever make a move; the handler narrows to the drafting agency and the
        // police unit holding the referral (`caselink_workflow::referral::decide`).
        (
            Rpc::ReferralDraft
            | Rpc::ReferralTransfer
            | Rpc::ReferralRequestReconsideration
            | Rpc::ReferralRequestSupervision,
            ServiceScope::Linkage,
        ) => {
            if role != Role::Determiner {
                return deny(format!(
                    "role {} may not act for the agency's case team",
                    role.name()
                ));
            }
        }
        (Rpc::ReferralApprove | Rpc::ReferralRefuse, ServiceScope::Linkage) => {
            if role != Role::AgencyHead {
                return deny(format!(
                    "only an agency head approves or refuses a transfer, not role {}",
                    role.name()
                ));
            }
        }
        (
            Rpc::ReferralReceive
            | Rpc::ReferralForward
            | Rpc::ReferralRegister
            | Rpc::ReferralDecline
            | Rpc::ReferralDecideReconsideration
            | Rpc::ReferralWatchLeads,
            ServiceScope::Linkage,
        ) => {
            if role != Role::Police {
                return deny(format!(
                    "role {} may not act for a police unit",
                    role.name()
                ));
            }
            if claims.unit.as_deref().is_none_or(str::is_empty) {
                return deny("the police token names no unit".into());
            }
        }
        // Closing: the holding police unit after registration, the case team after a final decline.
        (Rpc::ReferralClose, ServiceScope::Linkage) => {
            if !matches!(role, Role::Determiner | Role::Police) {
                return deny(format!("role {} may not close a referral", role.name()));
            }
            if role == Role::Police && claims.unit.as_deref().is_none_or(str::is_empty) {
                return deny("the police token names no unit".into());
            }
        }
        (Rpc::ReferralGet | Rpc::ReferralList, ServiceScope::Linkage) => {
            if !matches!(
                role,
                Role::Analyst | Role::Determiner | Role::AgencyHead | Role::Police
            ) {
                return deny(format!("role {} may not read referrals", role.name()));
            }
        }
        // Determination (domain.md section 6): the market bureau of the person's region decides; the handler checks the
        // deciding region and the person's records against the token's regions.
        (
            Rpc::DeterminationConfirm | Rpc::DeterminationClear | Rpc::DeterminationRevoke,
            ServiceScope::Linkage,
        ) => {
            if role != Role::Determiner {
                return deny(format!(
                    "only a determiner confirms, clears or revokes, not role {}",
                    role.name()
                ));
            }
            if claims.regions.is_empty() {
                return deny("the determiner's token names no regions".into());
            }
        }
        // Every department's handling looks the list up (全链协同): yes or no, no purpose needed; the audit records it.
        (Rpc::DeterminationCheck, ServiceScope::Linkage) => {
            if role == Role::Auditor {
                return deny("role auditor reads the audit trail, not the abnormal list".into());
            }
            if role == Role::Writer && claims.regions.is_empty() {
                return deny("the token names no regions to work for".into());
            }
        }
        // The list itself names persons: joint-meeting staff, determiners (their regions), police and agency heads.
        (Rpc::DeterminationListAbnormal, ServiceScope::Linkage) => {
            if !matches!(
                role,
                Role::Analyst | Role::Determiner | Role::Police | Role::AgencyHead
            ) {
                return deny(format!(
                    "role {} may not read the abnormal list (Check answers whether a person is on it)",
                    role.name()
                ));
            }
            if role == Role::Determiner && claims.regions.is_empty() {
                return deny("the determiner's token names no regions".into());
            }
        }
        _ => return deny(format!("{} is not served here", rpc.path())),
    }
    if rpc.person_level() && purpose.is_none_or(|p| p.trim().is_empty()) {
        return Err(tonic::Status::invalid_argument(format!(
            "{}: required metadata for reading a person's data: state why (e.g. \"joint meeting 2026-11, case review\")",
            crate::PURPOSE
        )));
    }
    Ok(())
}

/// Whether a role sees an identity field in clear or masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Masked,
    Clear,
}

/// What a role sees of a person's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityView {
    pub id_number: Visibility,
    pub name: Visibility,
    pub phone: Visibility,
    pub address: Visibility,
}

impl IdentityView {
    /// Whether anything is shown in clear.
    pub fn any_clear(self) -> bool {
        [self.id_number, self.name, self.phone, self.address].contains(&Visibility::Clear)
    }
}

/// The masking rule — the one table of who sees which identity field in clear (PIPL: minimum necessary, by purpose).
///
/// | role | ID number | name | phone | address | why |
/// | --- | --- | --- | --- | --- | --- |
/// | writer | masked | masked | masked | masked | submits records; reads nothing back |
/// | analyst | masked | masked | masked | masked | sees patterns across agencies; identity not needed |
/// | determiner | clear | clear | clear | clear | the abnormal-list entry holds exactly these (domain.md section 6) |
/// | police | clear | clear | clear | clear | a transferred lead names its suspect (Order No. 310) |
/// | agency_head | masked | masked | masked | masked | approves referrals on the case report |
/// | auditor | masked | masked | masked | masked | checks who read what, not whom |
pub fn identity_view(role: Role) -> IdentityView {
    use Visibility::{Clear, Masked};
    let all = |v| IdentityView {
        id_number: v,
        name: v,
        phone: v,
        address: v,
    };
    match role {
        Role::Determiner | Role::Police => all(Clear),
        Role::Writer | Role::Analyst | Role::AgencyHead | Role::Auditor => all(Masked),
    }
}
