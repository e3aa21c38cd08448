//! Personal data at rest: AES-256-GCM with a fresh random nonce per value, and API key hashing.
//!
//! Ciphertext is text, `enc1:` + base64(nonce ‖ ciphertext ‖ tag), so it fits any column type and a
//! later key version can be told apart by its prefix.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "enc1:";
const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct PiiCipher {
    cipher: Aes256Gcm,
    /// What [`PiiCipher::derive_key`] derives other keys from: the personal-data key itself.
    master: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the personal-data key must be 32 bytes written as 64 hex characters")]
    BadKey,
    #[error("a stored personal value could not be decrypted (wrong key or damaged data)")]
    Undecryptable,
}

impl std::fmt::Debug for PiiCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PiiCipher(****)")
    }
}

impl PiiCipher {
    pub fn from_hex(hex_key: &str) -> Result<Self, CryptoError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| CryptoError::BadKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        let mut master = [0u8; 32];
        master.copy_from_slice(&bytes);
        Ok(Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
            master,
        })
    }

    /// A key for one `purpose` (`"oauth-state"`, …), derived from the personal-data key as
    /// HMAC-SHA256(key, "orderhub/" + purpose): the hub keeps one secret, each use gets its own
    /// key, and a derived key tells nothing of the secret or of another purpose's key.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.master)
            .expect("HMAC takes a key of any length");
        m.update(b"orderhub/");
        m.update(purpose.as_bytes());
        m.finalize().into_bytes().into()
    }

    /// A blind index of a personal value: HMAC-SHA256, under the key derived for `purpose`, of
    /// `parts` (each length-prefixed), as hex. Equal inputs give equal indexes, so a value can be
    /// looked up by it; the index tells nothing of the value without the personal-data key.
    pub fn blind_index(&self, purpose: &str, parts: &[&str]) -> String {
        use hmac::{Hmac, Mac};
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.derive_key(purpose))
            .expect("HMAC takes a key of any length");
        for p in parts {
            m.update(&(p.len() as u64).to_le_bytes());
            m.update(p.as_bytes());
        }
        hex::encode(m.finalize().into_bytes())
    }

    /// A new random key, as hex, for a fresh embedded data directory.
    pub fn generate_hex() -> String {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        hex::encode(k)
    }

    pub fn encrypt(&self, clear: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), clear.as_bytes())
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, CryptoError> {
        let b64 = stored
            .strip_prefix(PREFIX)
            .ok_or(CryptoError::Undecryptable)?;
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| CryptoError::Undecryptable)?;
        if raw.len() < NONCE_LEN {
            return Err(CryptoError::Undecryptable);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let clear = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| CryptoError::Undecryptable)?;
        String::from_utf8(clear).map_err(|_| CryptoError::Undecryptable)
    }
}

/// API keys are stored as their SHA-256. Keys are 256-bit random values, so a fast hash is enough:
/// nothing can be guessed from it, and lookups by hash cost one index probe.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A fresh API key: `ohk_` and 43 URL-safe characters (256 random bits).
pub fn generate_api_key() -> String {
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    format!("ohk_{}", URL_SAFE_NO_PAD.encode(k))
}

/// SHA-256 of the parts of a request that make it "the same request".
pub fn request_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {

    #[test]
    fn blind_indexes_are_stable_per_key_and_differ_by_part_and_key() {
        let a = PiiCipher::from_hex(&"11".repeat(32)).unwrap();
        let b = PiiCipher::from_hex(&"22".repeat(32)).unwrap();
        let i = |c: &PiiCipher, p: &[&str]| c.blind_index("blacklist", p);
        assert_eq!(i(&a, &["t", "phone", "139"]), i(&a, &["t", "phone", "139"]));
        assert_ne!(i(&a, &["t", "phone", "139"]), i(&b, &["t", "phone", "139"]));
        assert_ne!(i(&a, &["t", "phone", "139"]), i(&a, &["u", "phone", "139"]));
        // Parts are length-prefixed: moving a boundary changes the index.
        assert_ne!(i(&a, &["t", "phone1", "39"]), i(&a, &["t", "phone", "139"]));
        assert!(!i(&a, &["t", "phone", "139"]).contains("139"));
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_by_secret_and_are_stable() {
        let a = PiiCipher::from_hex(&"11".repeat(32)).unwrap();
        let b = PiiCipher::from_hex(&"22".repeat(32)).unwrap();
        assert_eq!(
            a.derive_key("oauth-state"),
            a.clone().derive_key("oauth-state")
        );
        assert_ne!(a.derive_key("oauth-state"), a.derive_key("other"));
        assert_ne!(a.derive_key("oauth-state"), b.derive_key("oauth-state"));
        assert_ne!(a.derive_key("oauth-state"), [0x11; 32]);
    }

    use super::*;

    #[test]
    fn encrypts_to_different_text_each_time_and_decrypts_back() {
        let c = PiiCipher::from_hex(&PiiCipher::generate_hex()).unwrap();
        let a = c.encrypt("13800001234");
        let b = c.encrypt("13800001234");
        assert_ne!(a, b);
        assert!(!a.contains("13800001234"));
        assert_eq!(c.decrypt(&a).unwrap(), "13800001234");
    }

    #[test]
    fn another_key_or_tampered_text_does_not_decrypt() {
        let c = PiiCipher::from_hex(&PiiCipher::generate_hex()).unwrap();
        let other = PiiCipher::from_hex(&PiiCipher::generate_hex()).unwrap();
        let a = c.encrypt("朝阳区建国路88号");
        assert!(other.decrypt(&a).is_err());
        let mut t = a.clone();
        t.replace_range(10..11, if &a[10..11] == "A" { "B" } else { "A" });
        assert!(c.decrypt(&t).is_err());
        assert!(PiiCipher::from_hex("abcd").is_err());
    }
}
