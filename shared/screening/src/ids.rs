//! Compact forms of event ids and references in stored states.
//!
//! - An event id is kept reversibly ([`id_bytes`], [`id_string`]): a canonical (lowercase, hyphenated) UUID as its 16
//!   bytes; any other string of at most 15 bytes as itself; a longer one as itself plus a zero byte (never 16 bytes
//!   long, so never taken for a UUID). For UUIDs the byte order is the string order.
//! - A reference (an event id or a department's file number, as matters join them) is kept for equality only
//!   ([`ref_bytes`]): like an event id when that is at most 16 bytes, otherwise the first 20 bytes of its SHA-256.
//!   [`ref_of_id`] turns a stored event id into its reference form.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The 16 bytes of a canonical lowercase hyphenated UUID.
fn uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b[i] != b'-' {
                return None;
            }
            i += 1;
            continue;
        }
        out[n] = (hex_val(b[i])? << 4) | hex_val(b[i + 1])?;
        n += 1;
        i += 2;
    }
    Some(out)
}

/// An event id in its stored form.
pub fn id_bytes(s: &str) -> Vec<u8> {
    if let Some(u) = uuid(s) {
        return u.to_vec();
    }
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    if v.len() >= 16 {
        v.push(0);
    }
    v
}

/// Lowercase hex of bytes (what `hex::encode` gives, without its per-character iterator: this is on the hot path).
pub(crate) fn hex_lower(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() * 2);
    for &x in b {
        out.push(char::from(HEX[usize::from(x >> 4)]));
        out.push(char::from(HEX[usize::from(x & 15)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The bytes a non-empty, even-length lowercase hex string spells ([`hex_lower`] gives it back exactly); `None` for
/// any other string.
pub(crate) fn lower_hex_bytes(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|pair| Some((hex_val(pair[0])? << 4) | hex_val(pair[1])?))
        .collect()
}

/// An event id back from its stored form.
pub fn id_string(b: &[u8]) -> String {
    match b.len() {
        16 => {
            let mut out = String::with_capacity(36);
            for (i, &x) in b.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    out.push('-');
                }
                out.push(char::from(HEX[usize::from(x >> 4)]));
                out.push(char::from(HEX[usize::from(x & 15)]));
            }
            out
        }
        n if n > 16 => String::from_utf8_lossy(&b[..n - 1]).into_owned(),
        _ => String::from_utf8_lossy(b).into_owned(),
    }
}

/// Whether a stored event id is the id `s` (without allocating).
pub(crate) fn id_is(b: &[u8], s: &str) -> bool {
    match uuid(s) {
        Some(u) => b == u,
        None if s.len() < 16 => b == s.as_bytes(),
        None => b.len() == s.len() + 1 && b.starts_with(s.as_bytes()) && b.last() == Some(&0),
    }
}

fn digest(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b)[..20].to_vec()
}

/// A reference (event id or file number) in its stored form, for equality.
pub(crate) fn ref_bytes(s: &str) -> Vec<u8> {
    if let Some(u) = uuid(s) {
        return u.to_vec();
    }
    if s.len() < 16 {
        return s.as_bytes().to_vec();
    }
    digest(s.as_bytes())
}

/// The reference form of a stored event id.
pub(crate) fn ref_of_id(id: &[u8]) -> Cow<'_, [u8]> {
    if id.len() <= 16 {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(digest(&id[..id.len() - 1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_keep_uuid_order() {
        for s in [
            "",
            "c1",
            "exactly-16-chars",
            "f47ac10b-58cc-4372-a567-0e02b2c3d479",
            "F47AC10B-58CC-4372-A567-0E02B2C3D479",
            "岳阳楼区市监投〔2024〕12号",
        ] {
            assert_eq!(id_string(&id_bytes(s)), s);
            assert!(id_is(&id_bytes(s), s));
            assert_eq!(ref_of_id(&id_bytes(s)).into_owned(), ref_bytes(s), "{s}");
        }
        assert_eq!(id_bytes("f47ac10b-58cc-4372-a567-0e02b2c3d479").len(), 16);
        let a = "0fffffff-ffff-4fff-8fff-ffffffffffff";
        let b = "10000000-0000-4000-8000-000000000000";
        assert!(id_bytes(a) < id_bytes(b));
    }

    #[test]
    fn hex_forms_match_hex_encode() {
        for n in 0..=40u8 {
            let b: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
            assert_eq!(hex_lower(&b), hex::encode(&b));
        }
        let b: Vec<u8> = (0..16u8).map(|i| i.wrapping_mul(151)).collect();
        let h = hex::encode(&b);
        let want = format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        );
        assert_eq!(id_string(&b), want);
        assert_eq!(id_bytes(&want), b);
    }
}
