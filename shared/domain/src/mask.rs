//! How identity is shown masked: the one table every view uses (domain.md section 4).
//!
//! | what | rule | example |
//! | --- | --- | --- |
//! | ID number (15-18 chars) | first 6, `*` for the middle, last 4 | `110105********123X` |
//! | phone (11+ digits) | first 3, `*` for the middle, last 4 | `138****5678` |
//! | name | first character, `*` for each other one | `欧***` |
//! | anything shorter | every character `*` | `*****` |
//!
//! Masks count characters, not bytes, so Chinese text is never cut inside a character.

use std::borrow::Cow;

use crate::identity::id_check_char;

fn stars(n: usize) -> String {
    "*".repeat(n)
}

/// Keeps the first `head` and last `tail` characters and stars the middle, or stars everything when fewer than
/// `min_len` characters.
fn mask_middle(s: &str, head: usize, tail: usize, min_len: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    if n < min_len || n < head + tail + 1 {
        return stars(n);
    }
    let mut out: String = chars[..head].iter().collect();
    out.push_str(&stars(n - head - tail));
    out.extend(&chars[n - tail..]);
    out
}

/// `"110105199001011234"` → `"110105********1234"`: first 6, last 4. Inputs shorter than 15 characters (no valid ID
/// number, old 15-digit numbers included, is) are starred out entirely.
pub fn mask_id_number(id: &str) -> String {
    mask_middle(id, 6, 4, 15)
}

/// `"13812345678"` → `"138****5678"`: first 3, last 4. Pass a normalised number
/// ([`normalise_phone`](crate::identity::normalise_phone)); anything shorter than 11 characters is starred out entirely.
pub fn mask_phone(phone: &str) -> String {
    mask_middle(phone, 3, 4, 11)
}

/// `"张三"` → `"张*"`, `"欧阳娜娜"` → `"欧***"`; a one-character name becomes `"*"`, an empty one stays empty.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match (chars.next(), chars.count()) {
        (None, _) => String::new(),
        (Some(_), 0) => stars(1),
        (Some(first), rest) => {
            let mut out = String::from(first);
            out.push_str(&stars(rest));
            out
        }
    }
}

/// Replaces every ID number in free text with its mask, so summaries and ticket texts stay free of clear numbers.
///
/// An ID number here is a run of exactly 18 characters `[0-9]{17}[0-9Xx]`, not touching other digits, whose check
/// character is right (GB 11643). Other runs of digits (order numbers, bank cards, 18-digit numbers with a wrong check
/// character) are left alone. Borrows when there is nothing to replace.
pub fn redact_id_numbers(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `text` already copied into `out`
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        // [start, i) is a maximal run of ASCII digits (ASCII bytes never occur inside multi-byte UTF-8 characters, so
        // these are character boundaries).
        let end = match i - start {
            18 => i,
            17 if matches!(bytes.get(i), Some(b'X' | b'x')) => i + 1,
            _ => continue,
        };
        let candidate = &text[start..end];
        let check = candidate[17..].to_ascii_uppercase();
        if id_check_char(&candidate[..17]).map(String::from) != Some(check) {
            continue;
        }
        let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
        buf.push_str(&text[copied..start]);
        buf.push_str(&mask_id_number(&candidate.to_ascii_uppercase()));
        copied = end;
        i = end;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut buf) => {
            buf.push_str(&text[copied..]);
            Cow::Owned(buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_id_numbers_keeping_first_six_and_last_four() {
        assert_eq!(mask_id_number("110105199001011234"), "110105********1234");
        assert_eq!(mask_id_number("11010519491231002X"), "110105********002X");
        assert_eq!(mask_id_number("110105900101123"), "110105*****1123");
    }

    #[test]
    fn masks_short_id_numbers_entirely() {
        assert_eq!(mask_id_number("1101051990"), "**********");
        assert_eq!(mask_id_number(""), "");
    }

    #[test]
    fn masks_phones_keeping_first_three_and_last_four() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("057187654321"), "057*****4321");
        assert_eq!(mask_phone("87654321"), "********");
        assert_eq!(mask_phone(""), "");
    }

    #[test]
    fn masks_names_by_character() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_name("王"), "*");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_name("Li Lei"), "L*****");
    }

    #[test]
    fn redacts_id_numbers_in_free_text() {
        let text = "投诉人11010519491231002x称，另一人440524188001010014同行。";
        assert_eq!(
            redact_id_numbers(text),
            "投诉人110105********002X称，另一人440524********0014同行。"
        );
        assert_eq!(
            redact_id_numbers("11010519491231002X"),
            "110105********002X"
        );
    }

    #[test]
    fn leaves_text_without_id_numbers_borrowed() {
        let text = "订单号 123456789012345678，电话 13812345678。";
        assert!(matches!(redact_id_numbers(text), Cow::Borrowed(_)));
    }

    #[test]
    fn leaves_non_id_digit_runs_alone() {
        // 18 digits with a wrong check character.
        assert_eq!(
            redact_id_numbers("no. 110105194912310021"),
            "no. 110105194912310021"
        );
        // A valid number embedded in a longer run is not an 18-character run.
        assert_eq!(
            redact_id_numbers("611010519491231002X"),
            "611010519491231002X"
        );
        assert_eq!(
            redact_id_numbers("4405241880010100145"),
            "4405241880010100145"
        );
        assert_eq!(redact_id_numbers(""), "");
    }
}
