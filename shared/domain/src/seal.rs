//! Sealing the clear identity (domain.md section 4): the ID number, name, phone and address of a person travel only
//! inside a `SealedIdentity`, an XChaCha20-Poly1305 ciphertext of the encoded `ClearIdentity`.
//!
//! The nonce is 24 random bytes (safe to draw at random at any volume). The associated data is the key id followed by
//! the person key, so a sealed identity cannot be moved onto another person's event or relabelled with another key id
//! without failing to open. Keys rotate: a [`Keyring`] seals with its active key and opens with any key it knows.

use std::fmt;

use caselink_proto::v1::{ClearIdentity, SealedIdentity};
use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use prost::Message;
use thiserror::Error;

use crate::identity::{PersonKey, SecretError};

const NONCE_BYTES: usize = 24;
const KEY_BYTES: usize = 32;

/// One identity-sealing key and the id it is known by (stored beside every ciphertext). `Debug` redacts the key.
#[derive(Clone)]
pub struct SealKey {
    key_id: String,
    key: [u8; KEY_BYTES],
}

impl SealKey {
    /// A key from its 32 bytes.
    pub fn new(key_id: impl Into<String>, key: [u8; 32]) -> SealKey {
        SealKey {
            key_id: key_id.into(),
            key,
        }
    }

    /// A key from 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(key_id: impl Into<String>, hex: &str) -> Result<SealKey, SecretError> {
        let bytes = hex::decode(hex.trim())?;
        let key: [u8; KEY_BYTES] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| SecretError::WrongLength {
                    found: bytes.len(),
                    expected: KEY_BYTES,
                })?;
        Ok(SealKey::new(key_id, key))
    }

    /// A fresh random key.
    pub fn generate(key_id: impl Into<String>) -> SealKey {
        SealKey::new(key_id, rand::random())
    }

    /// The id stored beside ciphertexts sealed with this key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key as lowercase hex, for writing to a protected configuration file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.key)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.key.into())
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealKey")
            .field("key_id", &self.key_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Why a sealed identity could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SealError {
    /// No key with that id in the keyring.
    #[error("sealed identity uses key {key_id:?}, which is not in the keyring (retired keys must stay configured)")]
    UnknownKey {
        /// The key id on the sealed identity.
        key_id: String,
    },
    /// The nonce is not 24 bytes.
    #[error("sealed identity has a {found}-byte nonce; 24 are required")]
    BadNonce {
        /// Bytes found.
        found: usize,
    },
    /// Authentication failed.
    #[error("sealed identity does not open: it was altered, or it belongs to another person")]
    Tampered,
    /// Opened, but the plaintext is not a `ClearIdentity`.
    #[error("sealed identity opened but its content is not a clear identity: {0}")]
    Malformed(String),
}

/// The identity-sealing keys of a deployment: one active key that seals, and retired keys that still open what they
/// sealed. `Debug` redacts the keys.
#[derive(Clone, Debug)]
pub struct Keyring {
    active: SealKey,
    retired: Vec<SealKey>,
}

impl Keyring {
    /// A keyring sealing with `active`.
    pub fn new(active: SealKey) -> Keyring {
        Keyring {
            active,
            retired: Vec::new(),
        }
    }

    /// Adds a key that no longer seals but still opens. A retired key with the active key's id is ignored.
    pub fn with_retired(mut self, key: SealKey) -> Keyring {
        self.retired.push(key);
        self
    }

    /// The id of the key that seals.
    pub fn active_key_id(&self) -> &str {
        self.active.key_id()
    }

    /// The ids of every key that opens, the active one first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&self.active)
            .chain(&self.retired)
            .map(SealKey::key_id)
    }

    fn key(&self, key_id: &str) -> Option<&SealKey> {
        std::iter::once(&self.active)
            .chain(&self.retired)
            .find(|k| k.key_id == key_id)
    }

    /// Seals `clear` for the person `person` with the active key and a random nonce.
    pub fn seal(&self, clear: &ClearIdentity, person: &PersonKey) -> SealedIdentity {
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let plaintext = clear.encode_to_vec();
        let aad = associated_data(&self.active.key_id, person);
        let ciphertext = self
            .active
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                AeadPayload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 only fails on plaintexts of hundreds of gigabytes");
        SealedIdentity {
            key_id: self.active.key_id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
            digest: Vec::new(),
        }
    }

    /// Opens a sealed identity of the person `person` with whichever known key sealed it.
    pub fn open(
        &self,
        sealed: &SealedIdentity,
        person: &PersonKey,
    ) -> Result<ClearIdentity, SealError> {
        let key = self
            .key(&sealed.key_id)
            .ok_or_else(|| SealError::UnknownKey {
                key_id: sealed.key_id.clone(),
            })?;
        if sealed.nonce.len() != NONCE_BYTES {
            return Err(SealError::BadNonce {
                found: sealed.nonce.len(),
            });
        }
        let aad = associated_data(&sealed.key_id, person);
        let plaintext = key
            .cipher()
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                AeadPayload {
                    msg: &sealed.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Tampered)?;
        ClearIdentity::decode(plaintext.as_slice()).map_err(|e| SealError::Malformed(e.to_string()))
    }
}

/// Key id bytes, then the 32 person-key bytes (fixed length last, so the concatenation is unambiguous).
fn associated_data(key_id: &str, person: &PersonKey) -> Vec<u8> {
    let mut aad = Vec::with_capacity(key_id.len() + 32);
    aad.extend_from_slice(key_id.as_bytes());
    aad.extend_from_slice(&person.0);
    aad
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn clear() -> ClearIdentity {
        ClearIdentity {
            id_number: "11010519491231002X".into(),
            name: "张三".into(),
            phone: "13812345678".into(),
            address: "北京市朝阳区某街1号".into(),
        }
    }

    fn person(n: u8) -> PersonKey {
        PersonKey([n; 32])
    }

    #[test]
    fn sealed_identity_opens_to_the_same_clear_identity() {
        let ring = Keyring::new(SealKey::generate("k1"));
        let sealed = ring.seal(&clear(), &person(1));
        assert_eq!(sealed.key_id, "k1");
        assert_eq!(sealed.nonce.len(), 24);
        assert!(
            !sealed.ciphertext.windows(6).any(|w| w == b"110105"),
            "ciphertext holds the clear number"
        );
        assert_eq!(ring.open(&sealed, &person(1)), Ok(clear()));
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let ring = Keyring::new(SealKey::generate("k1"));
        let a = ring.seal(&clear(), &person(1));
        let b = ring.seal(&clear(), &person(1));
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn tampered_ciphertext_does_not_open() {
        let ring = Keyring::new(SealKey::generate("k1"));
        let mut sealed = ring.seal(&clear(), &person(1));
        sealed.ciphertext[3] ^= 0x01;
        assert_eq!(ring.open(&sealed, &person(1)), Err(SealError::Tampered));
    }

    #[test]
    fn tampered_nonce_does_not_open() {
        let ring = Keyring::new(SealKey::generate("k1"));
        let mut sealed = ring.seal(&clear(), &person(1));
        sealed.nonce[0] ^= 0x01;
        assert_eq!(ring.open(&sealed, &person(1)), Err(SealError::Tampered));
        sealed.nonce.pop();
        assert_eq!(
            ring.open(&sealed, &person(1)),
            Err(SealError::BadNonce { found: 23 })
        );
    }

    #[test]
    fn sealed_identity_of_another_person_does_not_open() {
        let ring = Keyring::new(SealKey::generate("k1"));
        let sealed = ring.seal(&clear(), &person(1));
        assert_eq!(ring.open(&sealed, &person(2)), Err(SealError::Tampered));
    }

    #[test]
    fn relabelled_key_id_does_not_open() {
        let key = SealKey::generate("k1");
        let same_key_other_id = SealKey::new("k2", key.key);
        let ring = Keyring::new(key).with_retired(same_key_other_id);
        let mut sealed = ring.seal(&clear(), &person(1));
        sealed.key_id = "k2".into();
        assert_eq!(ring.open(&sealed, &person(1)), Err(SealError::Tampered));
    }

    #[test]
    fn rotation_keeps_old_seals_open_with_the_retired_key() {
        let old = SealKey::generate("2025");
        let before = Keyring::new(old.clone()).seal(&clear(), &person(1));
        let ring = Keyring::new(SealKey::generate("2026")).with_retired(old);
        assert_eq!(ring.open(&before, &person(1)), Ok(clear()));
        let after = ring.seal(&clear(), &person(1));
        assert_eq!(after.key_id, "2026");
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["2026", "2025"]);
    }

    #[test]
    fn unknown_key_id_is_an_error_naming_it() {
        let sealed = Keyring::new(SealKey::generate("old")).seal(&clear(), &person(1));
        let ring = Keyring::new(SealKey::generate("new"));
        assert_eq!(
            ring.open(&sealed, &person(1)),
            Err(SealError::UnknownKey {
                key_id: "old".into()
            })
        );
    }

    #[test]
    fn seal_keys_round_trip_through_hex_and_must_be_32_bytes() {
        let key = SealKey::generate("k1");
        let again = SealKey::from_hex("k1", &key.to_hex()).unwrap();
        assert_eq!(again.key, key.key);
        assert_eq!(
            SealKey::from_hex("k1", &"ab".repeat(31)).unwrap_err(),
            SecretError::WrongLength {
                found: 31,
                expected: 32
            }
        );
        assert!(matches!(
            SealKey::from_hex("k1", "xyz"),
            Err(SecretError::NotHex(_))
        ));
    }

    #[test]
    fn debug_of_keys_is_redacted() {
        let key = SealKey::new("k1", [0xab; 32]);
        let shown = format!("{:?}", Keyring::new(key));
        assert!(shown.contains("k1"), "{shown}");
        assert!(!shown.contains("abab") && !shown.contains("171"), "{shown}");
    }
}
