//! Turning a validated event's clear identity into keys, masks and a sealed copy (domain.md section 4). After
//! [`pseudonymise`] the event may leave the identity boundary: it holds no clear ID number, name, phone or address.

use std::borrow::Cow;

use caselink_proto::v1::case_event::Payload;
use caselink_proto::v1::{CaseEvent, ClearIdentity};

use crate::identity::{
    address_key, identity_digest, normalise_phone, parse_id_number, person_key, phone_key,
    IdNumberError, KeySecret, PersonKey,
};
use crate::mask::{mask_name, mask_phone, redact_id_numbers};
use crate::seal::Keyring;

/// The deployment's identity secrets: the HMAC secret of person, phone and address keys, and the sealing keys.
#[derive(Clone, Debug)]
pub struct IdentityKeys {
    /// Keys person, phone and address hashes.
    pub hmac: KeySecret,
    /// Seals the clear identity.
    pub seal: Keyring,
}

/// Given an event whose subject was already validated (its `id_number` parses), fills the subject's `person_key`,
/// `phone_key`, `address_key`, the three masked fields and `sealed`, then clears `id_number`, `name`, `phone` and
/// `address`. Also masks ID numbers found in the free text (`summary`, ticket `text`, the payload's `detail`,
/// `matter`, `goods` and `reason` texts).
///
/// Returns the person key, or `None` when the event has no subject. On error the event is left untouched.
pub fn pseudonymise(
    event: &mut CaseEvent,
    keys: &IdentityKeys,
) -> Result<Option<PersonKey>, IdNumberError> {
    let id = match &event.subject {
        Some(subject) => Some(parse_id_number(&subject.id_number)?),
        None => None,
    };
    redact_free_text(event);
    let (Some(id), Some(subject)) = (id, event.subject.as_mut()) else {
        return Ok(None);
    };

    let key = person_key(&keys.hmac, &id);
    let name = std::mem::take(&mut subject.name).trim().to_owned();
    let phone = std::mem::take(&mut subject.phone).trim().to_owned();
    let address = std::mem::take(&mut subject.address).trim().to_owned();
    subject.id_number.clear();

    subject.person_key = key.to_hex();
    subject.phone_key = phone_key(&keys.hmac, &phone).unwrap_or_default();
    subject.address_key = address_key(&keys.hmac, &address).unwrap_or_default();
    subject.id_number_masked = id.masked();
    subject.name_masked = mask_name(&name);
    subject.phone_masked = match normalise_phone(&phone) {
        normal if normal.is_empty() => String::new(),
        normal => mask_phone(&normal),
    };
    let clear = ClearIdentity {
        id_number: id.as_str().to_owned(),
        name,
        phone,
        address,
    };
    let digest = identity_digest(
        &keys.hmac,
        &clear.id_number,
        &clear.name,
        &clear.phone,
        &clear.address,
    );
    let mut sealed = keys.seal.seal(&clear, &key);
    sealed.digest = digest.to_vec();
    subject.sealed = Some(sealed);
    Ok(Some(key))
}

fn redact(text: &mut String) {
    if let Cow::Owned(redacted) = redact_id_numbers(text) {
        *text = redacted;
    }
}

/// Masks ID numbers in every free-text field a clerk might paste one into.
fn redact_free_text(event: &mut CaseEvent) {
    redact(&mut event.summary);
    match &mut event.payload {
        Some(Payload::ComplaintReceived(x)) => redact(&mut x.goods),
        Some(Payload::ComplaintRejected(x)) => redact(&mut x.detail),
        Some(Payload::ComplaintMediationClosed(x)) => redact(&mut x.detail),
        Some(Payload::DisclosureRequested(x)) => redact(&mut x.matter),
        Some(Payload::ExtortionReported(x)) => redact(&mut x.detail),
        Some(Payload::CaseDeclined(x)) => redact(&mut x.detail),
        Some(Payload::ReconsiderationFiled(x)) => redact(&mut x.underlying_matter),
        Some(Payload::ReconsiderationRejected(x)) => redact(&mut x.detail),
        Some(Payload::AdminSuitDismissed(x)) => redact(&mut x.detail),
        Some(Payload::PetitionReceived(x)) => redact(&mut x.matter),
        Some(Payload::TicketCreated(x)) => redact(&mut x.text),
        Some(Payload::TicketMarkedUnfounded(x)) => redact(&mut x.reason),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::identity::{parse_id_number, phone_key};
    use crate::seal::SealKey;
    use crate::testdata::{event, event_with, ID};
    use caselink_proto::v1::{Department, TicketCreated};

    fn keys() -> IdentityKeys {
        IdentityKeys {
            hmac: KeySecret::from_hex(&"5a".repeat(32)).unwrap(),
            seal: Keyring::new(SealKey::generate("2026")),
        }
    }

    #[test]
    fn clears_every_clear_field_and_fills_keys_and_masks() {
        let keys = keys();
        let mut e = event(Department::Market);
        let key = pseudonymise(&mut e, &keys).unwrap().unwrap();
        let s = e.subject.as_ref().unwrap();

        assert_eq!(s.id_number, "");
        assert_eq!(s.name, "");
        assert_eq!(s.phone, "");
        assert_eq!(s.address, "");

        assert_eq!(key, person_key(&keys.hmac, &parse_id_number(ID).unwrap()));
        assert_eq!(s.person_key, key.to_hex());
        assert_eq!(
            Some(s.phone_key.clone()),
            phone_key(&keys.hmac, "13812345678")
        );
        assert_eq!(
            Some(s.address_key.clone()),
            address_key(&keys.hmac, "北京市朝阳区建国路1号")
        );
        assert_eq!(s.id_number_masked, "110105********002X");
        assert_eq!(s.name_masked, "张*");
        assert_eq!(s.phone_masked, "138****5678");

        let clear = keys.seal.open(s.sealed.as_ref().unwrap(), &key).unwrap();
        assert_eq!(clear.id_number, ID);
        assert_eq!(clear.name, "张三");
        assert_eq!(clear.phone, "+86 138-1234-5678");
        assert_eq!(clear.address, "北京市朝阳区建国路 1 号");
    }

    #[test]
    fn pseudonymised_event_holds_no_clear_identity_anywhere() {
        let mut e = event(Department::Market);
        e.summary = format!("投诉人身份证{}，电话13812345678", ID.to_lowercase());
        pseudonymise(&mut e, &keys()).unwrap();
        let bytes = prost::Message::encode_to_vec(&e);
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(&ID.as_bytes()[..14]));
        assert!(!contains("张三".as_bytes()));
        assert!(!contains("建国路".as_bytes()));
        assert!(!contains(b"1234-5678"));
        assert!(e.summary.contains("110105********002X"), "{}", e.summary);
    }

    #[test]
    fn masks_id_numbers_in_hotline_ticket_text() {
        let text = format!("来电人称其身份证号为{ID}，要求赔偿");
        let mut e = event_with(
            Department::Hotline,
            Payload::TicketCreated(TicketCreated {
                text,
                ..TicketCreated::default()
            }),
        );
        pseudonymise(&mut e, &keys()).unwrap();
        let Some(Payload::TicketCreated(t)) = &e.payload else {
            panic!("payload changed")
        };
        assert_eq!(t.text, "来电人称其身份证号为110105********002X，要求赔偿");
    }

    #[test]
    fn empty_phone_and_address_give_empty_keys_and_masks() {
        let mut e = event(Department::Police);
        let s = e.subject.as_mut().unwrap();
        s.phone.clear();
        s.address = "  ".into();
        s.name.clear();
        pseudonymise(&mut e, &keys()).unwrap();
        let s = e.subject.as_ref().unwrap();
        assert_eq!((s.phone_key.as_str(), s.phone_masked.as_str()), ("", ""));
        assert_eq!(s.address_key, "");
        assert_eq!(s.name_masked, "");
        assert_eq!(s.id_number_masked, "110105********002X");
    }

    #[test]
    fn event_without_subject_gives_none_but_still_redacts_the_summary() {
        let mut e = event(Department::Market);
        e.subject = None;
        e.summary = format!("当事人{ID}");
        assert_eq!(pseudonymise(&mut e, &keys()), Ok(None));
        assert_eq!(e.summary, "当事人110105********002X");
    }

    #[test]
    fn invalid_id_number_is_an_error_and_leaves_the_event_untouched() {
        let mut e = event(Department::Market);
        e.subject.as_mut().unwrap().id_number = "110105194912310021".into();
        e.summary = format!("当事人{ID}");
        let before = e.clone();
        assert!(matches!(
            pseudonymise(&mut e, &keys()),
            Err(IdNumberError::BadCheckCharacter { .. })
        ));
        assert_eq!(e, before);
    }

    #[test]
    fn same_person_gets_the_same_key_across_spellings() {
        let keys = keys();
        let mut a = event(Department::Market);
        let mut b = event(Department::Court);
        b.subject.as_mut().unwrap().id_number = format!(" {} ", ID.to_lowercase());
        b.subject.as_mut().unwrap().phone = "13812345678".into();
        let ka = pseudonymise(&mut a, &keys).unwrap();
        let kb = pseudonymise(&mut b, &keys).unwrap();
        assert_eq!(ka, kb);
        assert_eq!(a.subject.unwrap().phone_key, b.subject.unwrap().phone_key);
    }
}
