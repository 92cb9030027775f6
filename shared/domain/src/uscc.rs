//! Unified Social Credit Codes (统一社会信用代码, GB 32100-2015): the 18-character identifier of a merchant.
//!
//! Layout: registration authority (1), organisation type (1), administrative division code (6), organisation code (9),
//! check character (1). Characters come from a 31-symbol alphabet without I, O, Z, S and V.

use thiserror::Error;

use crate::region::is_province_prefix;

/// The code's alphabet, in value order (the value of a character is its index).
const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of the first 17 characters (3^i mod 31).
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
/// The division code of organisations registered at the national level (e.g. by the State Administration for Market
/// Regulation), which is not a province.
const NATIONAL_REGION: &str = "100000";

/// Why a Unified Social Credit Code was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UsccError {
    /// Not 18 characters.
    #[error("unified social credit code must be 18 characters, found {found}")]
    WrongLength {
        /// The number of characters found.
        found: usize,
    },
    /// A character outside the code's alphabet.
    #[error(
        "unified social credit code has {character:?} at position {position}: only digits and the uppercase letters \
         A-Y without I, O, S, V, Z are used"
    )]
    BadCharacter {
        /// The offending character.
        character: char,
        /// Its position, counting from 1.
        position: usize,
    },
    /// Characters 3-8 are not an administrative division code.
    #[error("unified social credit code has {region:?} in positions 3-8, which is not an administrative division code")]
    BadRegion {
        /// Characters 3-8.
        region: String,
    },
    /// The 18th character does not match the first 17.
    #[error("unified social credit code has check character {found:?} but the first 17 characters require {expected:?}")]
    BadCheckCharacter {
        /// What the check character should be.
        expected: char,
        /// What it is.
        found: char,
    },
}

fn value_of(c: char) -> Option<u32> {
    ALPHABET.find(c).and_then(|i| u32::try_from(i).ok())
}

/// The check character for the first 17 characters of a code, or `None` if `first17` is not 17 characters of the
/// code's alphabet.
pub fn uscc_check_char(first17: &str) -> Option<char> {
    if first17.chars().count() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in first17.chars().zip(WEIGHTS) {
        sum += value_of(c)? * w;
    }
    let check = (31 - sum % 31) % 31;
    ALPHABET.chars().nth(usize::try_from(check).ok()?)
}

/// Checks a Unified Social Credit Code: length, alphabet, division code in positions 3-8, check character. The code must
/// be given as printed (uppercase, no spaces).
pub fn validate_uscc(raw: &str) -> Result<(), UsccError> {
    let chars: Vec<char> = raw.chars().collect();
    if chars.len() != 18 {
        return Err(UsccError::WrongLength { found: chars.len() });
    }
    if let Some((i, &c)) = chars
        .iter()
        .enumerate()
        .find(|(_, c)| value_of(**c).is_none())
    {
        return Err(UsccError::BadCharacter {
            character: c,
            position: i + 1,
        });
    }
    let region: String = chars[2..8].iter().collect();
    let region_ok = region.bytes().all(|b| b.is_ascii_digit())
        && (region == NATIONAL_REGION || is_province_prefix(&region[..2]));
    if !region_ok {
        return Err(UsccError::BadRegion { region });
    }
    let first17: String = chars[..17].iter().collect();
    let expected = uscc_check_char(&first17).expect("17 characters of the alphabet, checked above");
    let found = chars[17];
    if found != expected {
        return Err(UsccError::BadCheckCharacter { expected, found });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn with_check(first17: &str) -> String {
        format!("{first17}{}", uscc_check_char(first17).unwrap())
    }

    #[test]
    fn accepts_a_real_code() {
        assert_eq!(validate_uscc("91350100M000100Y43"), Ok(()));
        assert_eq!(uscc_check_char("91350100M000100Y4"), Some('3'));
    }

    #[test]
    fn accepts_codes_built_with_their_check_character() {
        for first17 in [
            "91330106MA27XY10H",
            "92530102MA6K00000",
            "12100000400000626",
            "5144030007871234P",
        ] {
            let code = with_check(first17);
            assert_eq!(validate_uscc(&code), Ok(()), "{code}");
        }
    }

    #[test]
    fn check_character_can_be_a_letter_or_zero() {
        // Search the space for the edge values: check 0 (sum divisible by 31) and a letter check.
        let mut seen_zero = false;
        let mut seen_letter = false;
        for n in 0..2000u32 {
            let first17 = format!("91330106MA27{n:05}");
            let c = uscc_check_char(&first17).unwrap();
            seen_zero |= c == '0';
            seen_letter |= c.is_ascii_uppercase();
            assert_eq!(validate_uscc(&format!("{first17}{c}")), Ok(()));
        }
        assert!(seen_zero && seen_letter);
    }

    #[test]
    fn rejects_wrong_length() {
        assert_eq!(
            validate_uscc("91350100M000100Y4"),
            Err(UsccError::WrongLength { found: 17 })
        );
        assert_eq!(validate_uscc(""), Err(UsccError::WrongLength { found: 0 }));
    }

    #[test]
    fn rejects_letters_outside_the_alphabet_and_says_where() {
        assert_eq!(
            validate_uscc("91350100MO00100Y43"),
            Err(UsccError::BadCharacter {
                character: 'O',
                position: 10
            })
        );
        assert_eq!(
            validate_uscc("91350100m000100Y43"),
            Err(UsccError::BadCharacter {
                character: 'm',
                position: 9
            })
        );
    }

    #[test]
    fn rejects_a_region_that_is_not_a_division_code() {
        let code = with_check("91990100M000100Y4");
        assert_eq!(
            validate_uscc(&code),
            Err(UsccError::BadRegion {
                region: "990100".into()
            })
        );
        let code = with_check("9135A100M000100Y4");
        assert_eq!(
            validate_uscc(&code),
            Err(UsccError::BadRegion {
                region: "35A100".into()
            })
        );
    }

    #[test]
    fn rejects_a_wrong_check_character_naming_the_expected_one() {
        let err = validate_uscc("91350100M000100Y44").unwrap_err();
        assert_eq!(
            err,
            UsccError::BadCheckCharacter {
                expected: '3',
                found: '4'
            }
        );
        assert!(err.to_string().contains("'3'"), "{err}");
    }

    #[test]
    fn check_char_refuses_malformed_input() {
        assert_eq!(uscc_check_char("91350100M000100Y"), None);
        assert_eq!(uscc_check_char("91350100I000100Y4"), None);
    }
}
