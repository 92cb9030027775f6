//! Who an event is about, and the keyed hashes that stand in for them (domain.md section 4).
//!
//! A person is their 18-character resident ID number (GB 11643-1999). Outside the identity boundary the number is
//! replaced by a [`PersonKey`]: HMAC-SHA-256 under a deployment [`KeySecret`]. Phone numbers and addresses get keyed
//! hashes of their own (with different domain-separation prefixes) so that persons sharing a contact can be linked
//! without anyone seeing the contact.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use crate::mask::mask_id_number;
use crate::region::is_province_prefix;

/// Number of partitions person keys are spread over (see [`PersonKey::partition`]).
pub const PARTITIONS: u16 = 64;

/// GB 11643-1999 weights of the first 17 digits.
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check code by `sum mod 11`.
const ID_CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

const PERSON_DOMAIN: &[u8] = b"caselink/person/v1\0";
const PHONE_DOMAIN: &[u8] = b"caselink/phone/v1\0";
const ADDRESS_DOMAIN: &[u8] = b"caselink/address/v1\0";
const IDENTITY_DOMAIN: &[u8] = b"caselink/identity/v1\0";

/// Earliest year of birth an ID number may carry. 1800, not 1900: the widely used sample number
/// `440524188001010014` is of 1880, and historical records may carry such numbers.
pub const EARLIEST_BIRTH_YEAR: i32 = 1800;

/// Minimum length of a [`KeySecret`], in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

// ---------------------------------------------------------------------------------------------------------------------
// ID numbers

/// A valid resident ID number, normalised (trimmed, check character `X` uppercase).
///
/// `Debug` prints it masked, so it can sit in structs that are debug-printed. There is deliberately no `Display`: the
/// clear number is reached only through [`IdNumber::as_str`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdNumber(String);

impl IdNumber {
    /// The clear, normalised number. Handle with care: it must not leave the identity boundary.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The masked form, e.g. `110105********123X`.
    pub fn masked(&self) -> String {
        mask_id_number(&self.0)
    }

    /// The date of birth in characters 7-14.
    pub fn birth_date(&self) -> time::Date {
        birth_date(self.0.as_bytes()).expect("validated by parse_id_number")
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdNumber").field(&self.masked()).finish()
    }
}

impl FromStr for IdNumber {
    type Err = IdNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_id_number(s)
    }
}

/// Why a resident ID number was refused. Messages never repeat the number itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdNumberError {
    /// Not 18 characters after trimming.
    #[error("ID number must be 18 characters, found {found}")]
    WrongLength {
        /// The number of characters found.
        found: usize,
    },
    /// One of the first 17 characters is not a digit.
    #[error("ID number has {character:?} at position {position}: the first 17 characters must be digits")]
    NonDigit {
        /// The offending character.
        character: char,
        /// Its position, counting from 1.
        position: usize,
    },
    /// The first two digits are not a province-level division.
    #[error(
        "ID number starts with {prefix}, which is not a province code (11 Beijing ... 82 Macao)"
    )]
    UnknownProvince {
        /// The first two digits.
        prefix: String,
    },
    /// Characters 7-14 are not a real date of birth.
    #[error("ID number's date of birth (characters 7-14, YYYYMMDD) is not a real calendar date in or after 1800")]
    ImpossibleBirthDate,
    /// The 18th character does not match the first 17.
    #[error("ID number's check character (the 18th) is {found:?} but the first 17 digits require {expected:?}; a digit is probably mistyped")]
    BadCheckCharacter {
        /// What the check character should be.
        expected: char,
        /// What it is.
        found: char,
    },
}

/// The GB 11643 check character of 17 digits, or `None` if `first17` is not exactly 17 ASCII digits.
pub fn id_check_char(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(ID_CHECK[(sum % 11) as usize])
}

/// Date of birth from an ID number's bytes (at least 14 ASCII digits): a real date, [`EARLIEST_BIRTH_YEAR`] or later.
fn birth_date(id: &[u8]) -> Option<time::Date> {
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        id.get(range)?.iter().try_fold(0u32, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })
    };
    let year = i32::try_from(digits(6..10)?).ok()?;
    let month = time::Month::try_from(u8::try_from(digits(10..12)?).ok()?).ok()?;
    let day = u8::try_from(digits(12..14)?).ok()?;
    if year < EARLIEST_BIRTH_YEAR {
        return None;
    }
    time::Date::from_calendar_date(year, month, day).ok()
}

/// Parses and validates a resident ID number: trims whitespace, uppercases a trailing `x`, then checks length, digits,
/// province, date of birth and check character, in that order.
pub fn parse_id_number(raw: &str) -> Result<IdNumber, IdNumberError> {
    let chars: Vec<char> = raw
        .trim()
        .chars()
        .map(|c| if c == 'x' { 'X' } else { c })
        .collect();
    if chars.len() != 18 {
        return Err(IdNumberError::WrongLength { found: chars.len() });
    }
    if let Some((i, &c)) = chars[..17]
        .iter()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_digit())
    {
        return Err(IdNumberError::NonDigit {
            character: c,
            position: i + 1,
        });
    }
    let first17: String = chars[..17].iter().collect();
    if !is_province_prefix(&first17[..2]) {
        return Err(IdNumberError::UnknownProvince {
            prefix: first17[..2].to_owned(),
        });
    }
    if birth_date(first17.as_bytes()).is_none() {
        return Err(IdNumberError::ImpossibleBirthDate);
    }
    let expected = id_check_char(&first17).expect("17 ASCII digits, checked above");
    let found = chars[17];
    if found != expected {
        return Err(IdNumberError::BadCheckCharacter { expected, found });
    }
    Ok(IdNumber(format!("{first17}{found}")))
}

// ---------------------------------------------------------------------------------------------------------------------
// secrets and keys

/// Why a key given as hex was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SecretError {
    /// Not a hex string.
    #[error("key is not hex: {0}")]
    NotHex(#[from] hex::FromHexError),
    /// Too short to be a secret.
    #[error(
        "key is {found} bytes; at least {min} are required (generate one with 32 random bytes)"
    )]
    TooShort {
        /// Bytes given.
        found: usize,
        /// Bytes required.
        min: usize,
    },
    /// Not the exact length the cipher takes.
    #[error("key is {found} bytes; exactly {expected} are required")]
    WrongLength {
        /// Bytes given.
        found: usize,
        /// Bytes required.
        expected: usize,
    },
}

/// The deployment secret under which person, phone and address keys are computed (at least 32 bytes). Losing it
/// unlinks every future event from every past one; leaking it lets anyone holding a list of ID numbers re-identify
/// keys. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySecret(Vec<u8>);

impl KeySecret {
    /// From raw bytes (at least [`MIN_SECRET_BYTES`]).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<KeySecret, SecretError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort {
                found: bytes.len(),
                min: MIN_SECRET_BYTES,
            });
        }
        Ok(KeySecret(bytes))
    }

    /// From hex (surrounding whitespace ignored), at least 32 bytes.
    pub fn from_hex(hex: &str) -> Result<KeySecret, SecretError> {
        KeySecret::from_bytes(hex::decode(hex.trim())?)
    }

    /// 32 fresh random bytes.
    pub fn generate() -> KeySecret {
        KeySecret(rand::random::<[u8; 32]>().to_vec())
    }

    /// Lowercase hex, for writing to a protected configuration file.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    fn mac(&self, domain: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(domain);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySecret(<redacted, {} bytes>)", self.0.len())
    }
}

/// The pseudonymous key of a person: HMAC-SHA-256 of their ID number. Used on the bus, in timelines and indexes.
/// Displayed (and serialised) as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonKey(pub [u8; 32]);

/// Why a person key given as hex was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PersonKeyError {
    /// Not 64 characters.
    #[error("person key must be 64 hex characters, found {found}")]
    WrongLength {
        /// Characters found.
        found: usize,
    },
    /// Not hex.
    #[error("person key is not hex: {0}")]
    NotHex(hex::FromHexError),
}

impl PersonKey {
    /// 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// From 64 hex characters (either case).
    pub fn from_hex(s: &str) -> Result<PersonKey, PersonKeyError> {
        if s.len() != 64 {
            return Err(PersonKeyError::WrongLength {
                found: s.chars().count(),
            });
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(PersonKeyError::NotHex)?;
        Ok(PersonKey(bytes))
    }

    /// Which of the [`PARTITIONS`] partitions this person's events go to: the first two bytes, big-endian, modulo
    /// [`PARTITIONS`]. Stable forever: changing it reshuffles every stream.
    pub fn partition(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]]) % PARTITIONS
    }
}

impl fmt::Display for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonKey({})", self.to_hex())
    }
}

impl FromStr for PersonKey {
    type Err = PersonKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PersonKey::from_hex(s)
    }
}

/// The person key of an ID number: HMAC-SHA-256 under `secret` over `b"caselink/person/v1\0"` followed by the
/// normalised number.
pub fn person_key(secret: &KeySecret, id: &IdNumber) -> PersonKey {
    PersonKey(secret.mac(PERSON_DOMAIN, id.as_str().as_bytes()))
}

// ---------------------------------------------------------------------------------------------------------------------
// phones and addresses

/// A phone number reduced to its digits (full-width digits included), without a `+86`/`0086` country code in front of
/// an 11-digit mobile number. `"+86 138-1234-5678"` becomes `"13812345678"`.
pub fn normalise_phone(phone: &str) -> String {
    let digits: String = phone.chars().filter_map(half_width_digit).collect();
    for prefix in ["0086", "86"] {
        if let Some(rest) = digits.strip_prefix(prefix) {
            if is_mobile(rest) {
                return rest.to_owned();
            }
        }
    }
    digits
}

fn half_width_digit(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(c),
        '０'..='９' => char::from_u32(u32::from(c) - 0xFEE0),
        _ => None,
    }
}

fn is_mobile(digits: &str) -> bool {
    digits.len() == 11 && digits.starts_with('1') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a phone field holds a phone number: only digits and the usual separators (spaces, `+`, `-`, parentheses,
/// dots), and after [`normalise_phone`] either an 11-digit mobile number starting with 1 or a 7-12 digit fixed line
/// (which never starts with 1).
pub fn looks_like_phone(phone: &str) -> bool {
    let plausible_chars = phone.chars().all(|c| {
        half_width_digit(c).is_some()
            || c.is_whitespace()
            || matches!(c, '+' | '-' | '(' | ')' | '.' | '＋' | '－' | '（' | '）')
    });
    if !plausible_chars {
        return false;
    }
    let digits = normalise_phone(phone);
    is_mobile(&digits) || ((7..=12).contains(&digits.len()) && !digits.starts_with('1'))
}

/// The keyed hash of a phone number (lowercase hex), or `None` when it has no digits. Two spellings of one number
/// (`+86 138-1234-5678`, `13812345678`) get the same key.
pub fn phone_key(secret: &KeySecret, phone: &str) -> Option<String> {
    let normal = normalise_phone(phone);
    if normal.is_empty() {
        return None;
    }
    Some(hex::encode(secret.mac(PHONE_DOMAIN, normal.as_bytes())))
}

/// An address reduced for comparison: full-width ASCII to half-width, whitespace and common punctuation (ASCII and
/// Chinese: `，。、；：“”‘’（）【】《》—…·-#`) dropped, lowercased.
pub fn normalise_address(address: &str) -> String {
    address
        .chars()
        .map(|c| match c {
            '！'..='～' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .filter(|c| {
            !(c.is_whitespace()
                || c.is_ascii_punctuation()
                || matches!(
                    c,
                    '。' | '、'
                        | '“'
                        | '”'
                        | '‘'
                        | '’'
                        | '【'
                        | '】'
                        | '《'
                        | '》'
                        | '〈'
                        | '〉'
                        | '—'
                        | '…'
                        | '·'
                        | '「'
                        | '」'
                ))
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The keyed hash of an address (lowercase hex), or `None` when nothing is left after [`normalise_address`].
pub fn address_key(secret: &KeySecret, address: &str) -> Option<String> {
    let normal = normalise_address(address);
    if normal.is_empty() {
        return None;
    }
    Some(hex::encode(secret.mac(ADDRESS_DOMAIN, normal.as_bytes())))
}

/// Keyed hash of a whole clear identity (ID number, name, phone, address as given): equal for equal identities, so the
/// aggregator stores a new sealed copy only when a person's identity data changed. Reveals nothing without the secret.
pub fn identity_digest(
    secret: &KeySecret,
    id_number: &str,
    name: &str,
    phone: &str,
    address: &str,
) -> [u8; 32] {
    let mut data =
        Vec::with_capacity(id_number.len() + name.len() + phone.len() + address.len() + 3);
    for (i, part) in [id_number, name, phone, address].iter().enumerate() {
        if i > 0 {
            data.push(0);
        }
        data.extend_from_slice(part.as_bytes());
    }
    secret.mac(IDENTITY_DOMAIN, &data)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn with_check(first17: &str) -> String {
        format!("{first17}{}", id_check_char(first17).unwrap())
    }

    fn secret() -> KeySecret {
        KeySecret::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
            .unwrap()
    }

    #[test]
    fn accepts_known_valid_numbers() {
        assert_eq!(
            parse_id_number("11010519491231002X").unwrap().as_str(),
            "11010519491231002X"
        );
        assert_eq!(
            parse_id_number("440524188001010014").unwrap().as_str(),
            "440524188001010014"
        );
    }

    #[test]
    fn accepts_numbers_built_with_their_check_character() {
        for first17 in [
            "11010519900101123",
            "33010619851231002",
            "53010220000229456",
            "82000019000101000",
            "65010120241130777",
        ] {
            let id = with_check(first17);
            assert_eq!(parse_id_number(&id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn accepts_every_check_character_including_x_and_zero() {
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..200u32 {
            let id = with_check(&format!("11010519900101{n:03}"));
            seen.insert(id.chars().last().unwrap());
            assert!(parse_id_number(&id).is_ok(), "{id}");
        }
        assert_eq!(seen.len(), 11);
    }

    #[test]
    fn normalises_lowercase_x_and_surrounding_whitespace() {
        let id = parse_id_number("  11010519491231002x\n").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id, parse_id_number("11010519491231002X").unwrap());
        assert_eq!(
            id.birth_date(),
            time::Date::from_calendar_date(1949, time::Month::December, 31).unwrap()
        );
    }

    #[test]
    fn rejects_wrong_length_saying_the_length_found() {
        let err = parse_id_number("1101051949123100").unwrap_err();
        assert_eq!(err, IdNumberError::WrongLength { found: 16 });
        assert!(err.to_string().contains("found 16"), "{err}");
        assert_eq!(
            parse_id_number(""),
            Err(IdNumberError::WrongLength { found: 0 })
        );
        assert_eq!(
            parse_id_number("11010519491231002X1"),
            Err(IdNumberError::WrongLength { found: 19 })
        );
    }

    #[test]
    fn rejects_letter_inside_the_first_seventeen() {
        assert_eq!(
            parse_id_number("1101051949A231002X"),
            Err(IdNumberError::NonDigit {
                character: 'A',
                position: 11
            })
        );
        assert_eq!(
            parse_id_number("11010519491231002Ｘ".replace('1', "１").as_str()),
            Err(IdNumberError::NonDigit {
                character: '１',
                position: 1
            })
        );
    }

    #[test]
    fn rejects_unknown_province() {
        let id = with_check("99010519900101123");
        assert_eq!(
            parse_id_number(&id),
            Err(IdNumberError::UnknownProvince {
                prefix: "99".into()
            })
        );
        let id = with_check("10010519900101123");
        assert_eq!(
            parse_id_number(&id),
            Err(IdNumberError::UnknownProvince {
                prefix: "10".into()
            })
        );
    }

    #[test]
    fn rejects_impossible_birth_dates() {
        for date in [
            "19900230", "19890229", "19901301", "19900001", "19900100", "17991231", "19001301",
        ] {
            let id = with_check(&format!("110105{date}123"));
            assert_eq!(
                parse_id_number(&id),
                Err(IdNumberError::ImpossibleBirthDate),
                "{date}"
            );
        }
        // A leap day in a leap year is fine, and so is an old date of birth.
        assert!(parse_id_number(&with_check("11010520000229123")).is_ok());
        assert!(parse_id_number(&with_check("11010518000101123")).is_ok());
    }

    #[test]
    fn rejects_bad_check_character_naming_the_expected_one() {
        let err = parse_id_number("110105194912310021").unwrap_err();
        assert_eq!(
            err,
            IdNumberError::BadCheckCharacter {
                expected: 'X',
                found: '1'
            }
        );
        assert!(err.to_string().contains("'X'"), "{err}");
        assert_eq!(
            parse_id_number("44052418800101001A"),
            Err(IdNumberError::BadCheckCharacter {
                expected: '4',
                found: 'A'
            })
        );
    }

    #[test]
    fn error_messages_never_repeat_the_number() {
        for raw in [
            "110105194912310021",
            "11010519490231002X",
            "99010519491231002X",
        ] {
            let msg = parse_id_number(raw).unwrap_err().to_string();
            assert!(!msg.contains(&raw[..17]), "{msg}");
            assert!(
                !msg.contains("19491231") && !msg.contains("19490231"),
                "{msg}"
            );
        }
    }

    #[test]
    fn check_char_refuses_malformed_input() {
        assert_eq!(id_check_char("1101051949123100"), None);
        assert_eq!(id_check_char("1101051949123100A"), None);
        assert_eq!(id_check_char("11010519491231002"), Some('X'));
    }

    #[test]
    fn debug_of_an_id_number_is_masked() {
        let id = parse_id_number("11010519491231002X").unwrap();
        let shown = format!("{id:?}");
        assert!(shown.contains("110105********002X"), "{shown}");
        assert!(!shown.contains("19491231"), "{shown}");
    }

    #[test]
    fn person_key_is_pinned_for_a_fixed_secret_and_number() {
        let id = parse_id_number("11010519491231002X").unwrap();
        assert_eq!(
            person_key(&secret(), &id).to_hex(),
            "275a71fad89a111c7edd18514cc7281fffee17c0fa3c96a3068e1c540f7ab572"
        );
    }

    #[test]
    fn person_key_depends_on_secret_and_number() {
        let a = parse_id_number("11010519491231002X").unwrap();
        let b = parse_id_number("440524188001010014").unwrap();
        assert_ne!(person_key(&secret(), &a), person_key(&secret(), &b));
        assert_ne!(
            person_key(&secret(), &a),
            person_key(&KeySecret::generate(), &a)
        );
        assert_eq!(
            person_key(&secret(), &a),
            person_key(&secret(), &parse_id_number("11010519491231002x").unwrap())
        );
    }

    #[test]
    fn person_key_round_trips_through_hex_and_display() {
        let key = person_key(&secret(), &parse_id_number("440524188001010014").unwrap());
        let hex = key.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(hex, hex.to_lowercase());
        assert_eq!(key.to_string(), hex);
        assert_eq!(PersonKey::from_hex(&hex), Ok(key));
        assert_eq!(PersonKey::from_hex(&hex.to_uppercase()), Ok(key));
        assert_eq!(hex.parse::<PersonKey>(), Ok(key));
    }

    #[test]
    fn person_key_from_hex_rejects_bad_input() {
        assert_eq!(
            PersonKey::from_hex("abcd"),
            Err(PersonKeyError::WrongLength { found: 4 })
        );
        assert!(matches!(
            PersonKey::from_hex(&"zz".repeat(32)),
            Err(PersonKeyError::NotHex(_))
        ));
    }

    #[test]
    fn partition_is_first_two_bytes_big_endian_modulo_partitions() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0x01;
        bytes[1] = 0x43; // 0x0143 = 323 = 5 * 64 + 3
        assert_eq!(PersonKey(bytes).partition(), 3);
        bytes[0] = 0xff;
        bytes[1] = 0xff;
        assert_eq!(PersonKey(bytes).partition(), 63);
    }

    #[test]
    fn phone_key_is_pinned_and_ignores_spelling() {
        let key = phone_key(&secret(), "13812345678").unwrap();
        assert_eq!(
            key,
            "7544d013c32e0c778d6312204b3d85229b0ee32dda1fb7a1d320e818c994f873"
        );
        for spelling in [
            "+86 138-1234-5678",
            "0086 13812345678",
            "138 1234 5678",
            "８６１３８１２３４５６７８",
        ] {
            assert_eq!(
                phone_key(&secret(), spelling).as_deref(),
                Some(key.as_str()),
                "{spelling}"
            );
        }
        assert_ne!(phone_key(&secret(), "13812345679").unwrap(), key);
    }

    #[test]
    fn phone_key_is_none_for_empty_and_differs_from_other_domains() {
        assert_eq!(phone_key(&secret(), ""), None);
        assert_eq!(phone_key(&secret(), " - "), None);
        // Same bytes hashed as an address must not collide with the phone key.
        assert_ne!(
            phone_key(&secret(), "13812345678"),
            address_key(&secret(), "13812345678")
        );
    }

    #[test]
    fn normalise_phone_strips_country_code_only_before_a_mobile_number() {
        assert_eq!(normalise_phone("+86 138-1234-5678"), "13812345678");
        assert_eq!(normalise_phone("008613812345678"), "13812345678");
        assert_eq!(normalise_phone("(0571) 8765-4321"), "057187654321");
        // 86 followed by something that is not a mobile number stays: it may be part of a fixed line.
        assert_eq!(normalise_phone("86123456"), "86123456");
    }

    #[test]
    fn looks_like_phone_accepts_mobiles_and_fixed_lines() {
        for phone in [
            "13812345678",
            "+86 138-1234-5678",
            "0571-87654321",
            "87654321",
            "(010)12345678",
            "1234567x",
        ] {
            let expected = phone != "1234567x";
            assert_eq!(looks_like_phone(phone), expected, "{phone}");
        }
        for phone in [
            "",
            "12315",
            "1381234567",
            "138123456789",
            "1234567",
            "abc13812345678",
            "0571876543210",
        ] {
            assert!(!looks_like_phone(phone), "{phone}");
        }
    }

    #[test]
    fn identity_digest_is_stable_for_an_identity_and_changes_with_any_field() {
        let d = |id, name, phone, address| identity_digest(&secret(), id, name, phone, address);
        let base = d(
            "11010519491231002X",
            "张三",
            "13812345678",
            "杭州市文三路100号",
        );
        assert_eq!(
            base,
            d(
                "11010519491231002X",
                "张三",
                "13812345678",
                "杭州市文三路100号"
            )
        );
        assert_ne!(
            base,
            d(
                "11010519491231002X",
                "张三",
                "13812345679",
                "杭州市文三路100号"
            )
        );
        assert_ne!(
            base,
            d("11010519491231002X", "张三", "", "杭州市文三路100号")
        );
        // Fields are separated: moving text from one field to the next is a different identity.
        assert_ne!(d("1", "ab", "", ""), d("1", "a", "b", ""));
    }

    #[test]
    fn address_key_ignores_whitespace_punctuation_width_and_case() {
        let a = address_key(&secret(), "浙江省杭州市西湖区文三路 100号 3幢-2单元#501室").unwrap();
        for spelling in [
            "浙江省杭州市西湖区文三路100号3幢2单元501室",
            "浙江省，杭州市。西湖区、文三路１００号３幢－２单元＃５０１室",
            "浙江省杭州市西湖区文三路　100号3幢2单元501室",
        ] {
            assert_eq!(
                address_key(&secret(), spelling).as_deref(),
                Some(a.as_str()),
                "{spelling}"
            );
        }
        assert_eq!(normalise_address("Room 5A, Ｂｌｏｃｋ C"), "room5ablockc");
        assert_ne!(
            address_key(&secret(), "文三路101号").unwrap(),
            address_key(&secret(), "文三路100号").unwrap()
        );
        assert_eq!(address_key(&secret(), " ，。- "), None);
    }

    #[test]
    fn secrets_must_be_hex_and_long_enough() {
        assert!(matches!(
            KeySecret::from_hex("zz"),
            Err(SecretError::NotHex(_))
        ));
        assert_eq!(
            KeySecret::from_hex(&"ab".repeat(31)),
            Err(SecretError::TooShort { found: 31, min: 32 })
        );
        let s = KeySecret::from_hex(&format!(" {}\n", "ab".repeat(40))).unwrap();
        assert_eq!(s.to_hex(), "ab".repeat(40));
    }

    #[test]
    fn generated_secrets_are_random_and_round_trip() {
        let a = KeySecret::generate();
        let b = KeySecret::generate();
        assert_ne!(a, b);
        assert_eq!(KeySecret::from_hex(&a.to_hex()).unwrap(), a);
    }

    #[test]
    fn debug_of_a_secret_is_redacted() {
        let s = secret();
        let shown = format!("{s:?}");
        assert!(!shown.contains("0001020304"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
