//! `truth.json`: what the generator planted, so tests and the detection-quality evaluation can score the screening
//! engine. It is written next to the department files and never inside them.
//!
//! Layout: `{"params": …, "persons": [ … ], "groups": [ … ]}`, persons in the order they were generated (the order
//! their units appear in the department files).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{GenError, GenParams};

/// Everything planted in one generated population.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Truth {
    /// The parameters the population was generated with.
    pub params: GenParams,
    /// Every person of the population.
    pub persons: Vec<PersonTruth>,
    /// The collusion rings and hired-complainant clusters.
    #[serde(default)]
    pub groups: Vec<GroupTruth>,
}

/// Whether a person is an ordinary consumer or an abusive claimant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// An ordinary consumer (the vast majority): meets no criterion.
    Ordinary,
    /// An abusive claimant: meets the criteria listed.
    Abusive,
}

/// One person and what they really are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PersonTruth {
    /// The resident ID number, as in the events' `subject.id_number`.
    pub id_number: String,
    /// Their own mobile number (a ring's organiser's or a false-name filer's may also appear on others' records).
    pub phone: String,
    pub label: Label,
    /// The criteria of domain.md section 5 (`"C1"` … `"C7"`, `"R1"` … `"R5"`) the person meets by construction, in
    /// that order, with margins over the default thresholds; empty for ordinary persons.
    pub criteria: Vec<String>,
    /// The collusion ring (`RING-…`) or hired cluster (`HIRED-…`) the person belongs to.
    pub ring: Option<String>,
    /// The ID number of whoever filed records under this person's ID number (clause 二(三)).
    pub impersonated_by: Option<String>,
    /// The grievances this person really pursued (including those filed under a borrowed ID number), each with all
    /// its records across departments.
    pub matters: Vec<MatterTruth>,
    /// Events whose subject carries this person's ID number (what their timeline shows).
    pub events: u64,
}

/// One grievance: every record it produced, across all departments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatterTruth {
    pub id: String,
    /// `"<department code>/<source_id>"` of each record, in time order.
    pub records: Vec<String>,
}

impl MatterTruth {
    /// The departments the grievance reached, in first-record order, each once.
    pub fn departments(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for r in &self.records {
            let d = r.split('/').next().unwrap_or("");
            if !seen.contains(&d) {
                seen.push(d);
            }
        }
        seen
    }

    /// Whether the same grievance was taken to more than one department (12315 and 12345, a petition, a court …).
    pub fn is_multi_platform(&self) -> bool {
        self.departments().len() > 1
    }
}

/// What kind of group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// Clause 二(四): complainants acting together against one merchant at a time.
    Collusion,
    /// Clause 二(五): complainants hired by one agent, across many merchants.
    Hired,
}

/// A collusion ring or a hired cluster, and the contacts its members' records share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupTruth {
    pub id: String,
    pub kind: GroupKind,
    /// Members' ID numbers.
    pub members: Vec<String>,
    /// The phone every member's group records carry (the organiser's or the agent's), if shared.
    pub shared_phone: Option<String>,
    /// The address every member's group records carry, if shared.
    pub shared_address: Option<String>,
    /// Whether the members' group records carry one near-identical text.
    pub shared_text: bool,
    /// USCCs of the merchants targeted.
    pub merchants: Vec<String>,
}

/// Reads a `truth.json` written by [`crate::generate`].
pub fn read_truth(path: &Path) -> Result<Truth, GenError> {
    let file = File::open(path).map_err(|source| GenError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_reader(BufReader::new(file)).map_err(|source| GenError::Truth {
        path: path.to_owned(),
        source,
    })
}
