//! Small helpers for department-specific checks, so each department states its rules and nothing else.

use caselink_domain::Violations;

/// `value` (an enum number) must be set.
pub fn require_enum(violations: &mut Violations, field: &str, value: i32, what: &str) {
    if value == 0 {
        violations.push(field, format!("required: {what}"));
    }
}

/// `value` must not be blank.
pub fn require_text(violations: &mut Violations, field: &str, value: &str, what: &str) {
    if value.trim().is_empty() {
        violations.push(field, format!("required: {what}"));
    }
}

/// `value` must be positive.
pub fn require_positive(violations: &mut Violations, field: &str, value: i64, what: &str) {
    if value <= 0 {
        violations.push(field, format!("must be positive: {what}"));
    }
}
