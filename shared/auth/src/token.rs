use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::AuthError;

/// The `iss` of every caselink token.
pub const ISSUER: &str = "caselink";

/// The roles of api.md, plus the agency head who approves criminal referrals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A department's system or clerk: submits its own department's events, in its regions.
    Writer,
    /// Joint-meeting staff: views, flags, situation.
    Analyst,
    /// Confirms or clears abnormal-list entries for its region.
    Determiner,
    /// A police unit: its leads and referral moves.
    Police,
    /// Head of an agency: approves or refuses criminal referrals.
    AgencyHead,
    /// Reads the audit trail.
    Auditor,
}

impl Role {
    /// All roles, for tables and tests.
    pub const ALL: [Role; 6] = [
        Role::Writer,
        Role::Analyst,
        Role::Determiner,
        Role::Police,
        Role::AgencyHead,
        Role::Auditor,
    ];

    /// The name used in tokens and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Analyst => "analyst",
            Role::Determiner => "determiner",
            Role::Police => "police",
            Role::AgencyHead => "agency_head",
            Role::Auditor => "auditor",
        }
    }

    /// Parses a role name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == name.replace('-', "_"))
    }
}

/// What a token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who: a person's staff id or a system's name. Recorded in the audit trail.
    pub sub: String,
    pub role: Role,
    /// Writers and agency heads: their department code (`market`, `police`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Region prefixes in scope (writers, determiners); empty means none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Police: the unit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub iss: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
    /// Token id.
    pub jti: String,
}

impl Claims {
    /// Whether `region_code` falls under one of the token's region prefixes.
    pub fn covers_region(&self, region_code: &str) -> bool {
        self.regions
            .iter()
            .any(|prefix| region_code.starts_with(prefix.as_str()))
    }
}

/// A deployment's token keys: the Ed25519 signing key (PKCS#8, base64; only where tokens are issued) and its public
/// key (raw 32 bytes, base64; every service).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthKeys {
    #[serde(default)]
    pub signing_key: String,
    #[serde(default)]
    pub public_key: String,
}

impl AuthKeys {
    /// The verifier of callers' tokens; the error names the missing or malformed setting.
    pub fn verifier(&self) -> Result<TokenVerifier, AuthError> {
        if self.public_key.is_empty() {
            return Err(AuthError::Key(
                "auth.public_key is not set (env CASELINK_AUTH__PUBLIC_KEY; `caselink up` generates keys for development)"
                    .into(),
            ));
        }
        TokenVerifier::new(&self.public_key).map_err(|e| AuthError::Key(format!("auth.{e}")))
    }
}

/// A fresh Ed25519 key pair.
pub fn generate_keys() -> Result<AuthKeys, AuthError> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| AuthError::Key(e.to_string()))?;
    let pair =
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| AuthError::Key(e.to_string()))?;
    Ok(AuthKeys {
        signing_key: B64.encode(pkcs8.as_ref()),
        public_key: B64.encode(pair.public_key().as_ref()),
    })
}

/// Signs tokens.
pub struct TokenIssuer {
    key: EncodingKey,
}

impl TokenIssuer {
    /// From the base64 PKCS#8 signing key.
    pub fn new(signing_key_b64: &str) -> Result<TokenIssuer, AuthError> {
        let der = B64
            .decode(signing_key_b64.trim())
            .map_err(|e| AuthError::Key(format!("signing_key: {e}")))?;
        Ed25519KeyPair::from_pkcs8(&der)
            .map_err(|e| AuthError::Key(format!("signing_key: {e}")))?;
        Ok(TokenIssuer {
            key: EncodingKey::from_ed_der(&der),
        })
    }

    /// Signs `claims`.
    pub fn issue(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &self.key)
            .map_err(|e| AuthError::Key(e.to_string()))
    }

    /// Claims for `role` valid for `ttl` from `now` (seconds since the epoch), with a fresh token id.
    pub fn claims(sub: &str, role: Role, now: u64, ttl: std::time::Duration) -> Claims {
        Claims {
            sub: sub.to_string(),
            role,
            department: None,
            regions: Vec::new(),
            unit: None,
            iss: ISSUER.to_string(),
            iat: now,
            exp: now + ttl.as_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// Clock skew allowed on `exp`, seconds.
const LEEWAY_SECONDS: u64 = 30;

/// Checks tokens.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    /// From the base64 raw Ed25519 public key.
    pub fn new(public_key_b64: &str) -> Result<TokenVerifier, AuthError> {
        let raw = B64
            .decode(public_key_b64.trim())
            .map_err(|e| AuthError::Key(format!("public_key: {e}")))?;
        if raw.len() != 32 {
            return Err(AuthError::Key(format!(
                "public_key: {} bytes, an Ed25519 key has 32",
                raw.len()
            )));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        Ok(TokenVerifier {
            key: DecodingKey::from_ed_der(&raw),
            validation,
        })
    }

    /// The claims of a valid, unexpired token signed by the deployment key.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            })
    }
}

/// Seconds since the epoch, as jsonwebtoken reads the clock.
fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Distinct tokens remembered at most; past that, expired entries are dropped, and if none expired, all are.
const MAX_CACHED_TOKENS: usize = 8192;

/// A [`TokenVerifier`] that checks a token's signature once and then remembers its claims, keyed by the token's
/// SHA-256 (the token itself is not kept), until the token expires.
///
/// A remembered token is admitted only while `verify` would admit it: its claims were verified with this key, and on
/// every call its `exp` is checked against the clock with the same leeway; an expired or unknown token goes through
/// [`TokenVerifier::verify`] again (which gives the same error as without the cache). A token's claims cannot change
/// without changing the token, so a hit returns exactly what `verify` would return.
pub struct CachedVerifier {
    verifier: TokenVerifier,
    cache: std::sync::Mutex<std::collections::HashMap<[u8; 32], Claims>>,
    max: usize,
}

impl CachedVerifier {
    pub fn new(verifier: TokenVerifier) -> CachedVerifier {
        CachedVerifier::with_capacity(verifier, MAX_CACHED_TOKENS)
    }

    /// At most `max` remembered tokens (at least 1).
    pub fn with_capacity(verifier: TokenVerifier, max: usize) -> CachedVerifier {
        CachedVerifier {
            verifier,
            cache: std::sync::Mutex::new(std::collections::HashMap::new()),
            max: max.max(1),
        }
    }

    /// The claims of a valid, unexpired token signed by the deployment key: [`TokenVerifier::verify`], remembered.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_at(token, now_seconds())
    }

    fn digest(token: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
        out
    }

    /// Whether a token expiring at `exp` is still admitted at `now` (jsonwebtoken: expired iff `exp < now - leeway`).
    fn unexpired(exp: u64, now: u64) -> bool {
        exp.saturating_add(LEEWAY_SECONDS) >= now
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<Claims, AuthError> {
        let digest = CachedVerifier::digest(token);
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(&digest) {
                Some(claims) if CachedVerifier::unexpired(claims.exp, now) => {
                    return Ok(claims.clone())
                }
                Some(_) => {
                    cache.remove(&digest);
                }
                None => {}
            }
        }
        let claims = self.verifier.verify(token)?;
        // Remember only what is still unexpired by our own clock reading (verify read the clock a moment later).
        if CachedVerifier::unexpired(claims.exp, now) {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= self.max {
                cache.retain(|_, c| CachedVerifier::unexpired(c.exp, now));
                if cache.len() >= self.max {
                    cache.clear();
                }
            }
            cache.insert(digest, claims.clone());
        }
        Ok(claims)
    }

    /// Tokens remembered now.
    pub fn cached(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn issued_token_verifies_with_its_claims() {
        let keys = generate_keys().unwrap();
        let mut claims =
            TokenIssuer::claims("officer-7", Role::Police, now(), Duration::from_secs(60));
        claims.unit = Some("430602".into());
        let token = TokenIssuer::new(&keys.signing_key)
            .unwrap()
            .issue(&claims)
            .unwrap();
        assert_eq!(
            TokenVerifier::new(&keys.public_key)
                .unwrap()
                .verify(&token)
                .unwrap(),
            claims
        );
    }

    #[test]
    fn expired_token_is_refused() {
        let keys = generate_keys().unwrap();
        let claims = TokenIssuer::claims("a", Role::Analyst, now() - 3600, Duration::from_secs(60));
        let token = TokenIssuer::new(&keys.signing_key)
            .unwrap()
            .issue(&claims)
            .unwrap();
        assert!(matches!(
            TokenVerifier::new(&keys.public_key).unwrap().verify(&token),
            Err(AuthError::Expired)
        ));
    }

    #[test]
    fn token_of_another_key_or_tampered_is_refused() {
        let ours = generate_keys().unwrap();
        let theirs = generate_keys().unwrap();
        let claims = TokenIssuer::claims("a", Role::Analyst, now(), Duration::from_secs(60));
        let forged = TokenIssuer::new(&theirs.signing_key)
            .unwrap()
            .issue(&claims)
            .unwrap();
        let verifier = TokenVerifier::new(&ours.public_key).unwrap();
        assert!(matches!(
            verifier.verify(&forged),
            Err(AuthError::Invalid(_))
        ));
        // Raise the role inside a genuine token: the signature no longer matches.
        let genuine = TokenIssuer::new(&ours.signing_key)
            .unwrap()
            .issue(&claims)
            .unwrap();
        let parts: Vec<&str> = genuine.split('.').collect();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap();
        let raised = String::from_utf8(payload)
            .unwrap()
            .replace("\"analyst\"", "\"auditor\"");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raised),
            parts[2]
        );
        assert!(matches!(
            verifier.verify(&tampered),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            verifier.verify("not-a-token"),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn cached_verifier_admits_what_verify_admits_and_nothing_else() {
        let ours = generate_keys().unwrap();
        let theirs = generate_keys().unwrap();
        let issuer = TokenIssuer::new(&ours.signing_key).unwrap();
        let cached =
            CachedVerifier::with_capacity(TokenVerifier::new(&ours.public_key).unwrap(), 2);
        let claims = TokenIssuer::claims("a", Role::Analyst, now(), Duration::from_secs(60));
        let token = issuer.issue(&claims).unwrap();
        assert_eq!(cached.verify(&token).unwrap(), claims);
        assert_eq!(cached.cached(), 1);
        // A hit gives the same claims.
        assert_eq!(cached.verify(&token).unwrap(), claims);
        // Forged and tampered tokens are different strings: verified, refused, not remembered.
        let forged = TokenIssuer::new(&theirs.signing_key)
            .unwrap()
            .issue(&claims)
            .unwrap();
        assert!(matches!(cached.verify(&forged), Err(AuthError::Invalid(_))));
        let tampered = format!("{token}x");
        assert!(matches!(
            cached.verify(&tampered),
            Err(AuthError::Invalid(_))
        ));
        assert_eq!(cached.cached(), 1);
        // At the last second of the leeway a remembered token is still a hit; past it the entry is dropped and the
        // token goes through `verify` again (which reads the real clock here, so it passes) and is not remembered.
        assert!(cached
            .verify_at(&token, claims.exp + LEEWAY_SECONDS)
            .is_ok());
        assert_eq!(cached.cached(), 1);
        let later = claims.exp + LEEWAY_SECONDS + 1;
        assert_eq!(
            cached.verify_at(&token, later).unwrap(),
            TokenVerifier::new(&ours.public_key)
                .unwrap()
                .verify(&token)
                .unwrap()
        );
        assert_eq!(cached.cached(), 0);
        // An expired token is never remembered.
        let old = TokenIssuer::claims("b", Role::Analyst, now() - 3600, Duration::from_secs(60));
        let old = issuer.issue(&old).unwrap();
        assert!(matches!(cached.verify(&old), Err(AuthError::Expired)));
        // Bounded: a third distinct token makes room.
        for sub in ["c", "d", "e"] {
            let c = TokenIssuer::claims(sub, Role::Analyst, now(), Duration::from_secs(60));
            assert_eq!(cached.verify(&issuer.issue(&c).unwrap()).unwrap(), c);
            assert!(cached.cached() <= 2);
        }
    }

    #[test]
    fn region_scope_is_by_prefix() {
        let mut claims = TokenIssuer::claims("w", Role::Writer, 0, Duration::from_secs(1));
        claims.regions = vec!["4306".into()];
        assert!(claims.covers_region("430602"));
        assert!(!claims.covers_region("430702"));
    }
}
