//! The digests and ciphers the channels sign and encrypt with: pure functions over bytes, checked
//! against values worked out independently with Python's hashlib/hmac (see the tests).

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

pub fn sha1_hex(data: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(data))
}

pub fn hmac_md5_hex(key: &[u8], data: &[u8]) -> String {
    match Hmac::<Md5>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            hex::encode(m.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => String::new(),
    }
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    match Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

pub fn b64(data: &[u8]) -> String {
    B64.encode(data)
}

pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    B64.decode(s.trim()).ok()
}

/// Base64 that accepts non-zero trailing bits: WeChat's EncodingAESKey (43 characters + "=") is
/// generated without caring for them, and its published sample key has them set.
pub fn b64_decode_lenient(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(s.trim()).ok()
}

/// Compares without an early exit, so a check does not leak how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Case-insensitive hex comparison, constant time.
pub fn hex_eq(expected: &str, given: &str) -> bool {
    constant_time_eq(
        expected.to_ascii_lowercase().as_bytes(),
        given.trim().to_ascii_lowercase().as_bytes(),
    )
}

/// AES-CBC with PKCS#7 padding; the key length picks AES-128/192/256. `None` on a bad key or IV.
pub fn aes_cbc_encrypt(key: &[u8], iv: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
    match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()
            .map(|c| c.encrypt_padded_vec_mut::<Pkcs7>(plain)),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .ok()
            .map(|c| c.encrypt_padded_vec_mut::<Pkcs7>(plain)),
        32 => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()
            .map(|c| c.encrypt_padded_vec_mut::<Pkcs7>(plain)),
        _ => None,
    }
}

/// AES-256-CBC without padding (the caller pads: WeChat pads PKCS#7 to 32-byte blocks, which
/// a 16-byte PKCS#7 would refuse). `None` on a bad key or IV, or a partial block.
pub fn aes256_cbc_raw(encrypt: bool, key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    use aes::cipher::block_padding::NoPadding;
    if !data.len().is_multiple_of(16) {
        return None;
    }
    if encrypt {
        cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()
            .map(|c| c.encrypt_padded_vec_mut::<NoPadding>(data))
    } else {
        cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<NoPadding>(data)
            .ok()
    }
}

/// The inverse of [`aes_cbc_encrypt`]; `None` on a bad key, a partial block or bad padding.
pub fn aes_cbc_decrypt(key: &[u8], iv: &[u8], cipher: &[u8]) -> Option<Vec<u8>> {
    match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(cipher)
            .ok(),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(cipher)
            .ok(),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(cipher)
            .ok(),
        _ => None,
    }
}

/// The TOP-style "secret + sorted(key+value) + secret" string that Taobao (md5), JD and PDD sign.
pub fn sorted_concat(params: &[(String, String)], skip: &[&str]) -> String {
    let mut p: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, v)| !v.is_empty() && !skip.contains(&k.as_str()))
        .collect();
    p.sort_by(|a, b| a.0.cmp(&b.0));
    p.iter().map(|(k, v)| format!("{k}{v}")).collect()
}

/// `UPPER(MD5(secret + sorted(k+v) + secret))` without `sign` (Taobao md5, JD, PDD).
pub fn wrapped_md5_upper(params: &[(String, String)], secret: &str) -> String {
    let s = format!("{secret}{}{secret}", sorted_concat(params, &["sign"]));
    md5_hex(s.as_bytes()).to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    // python3 -c 'import hashlib,hmac;print(hashlib.md5(b"abc").hexdigest(), hashlib.sha1(b"abc").hexdigest(), hmac.new(b"key",b"abc",hashlib.md5).hexdigest(), hmac.new(b"key",b"abc",hashlib.sha256).hexdigest())'
    #[test]
    fn digests_match_known_values() {
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            hmac_md5_hex(b"key", b"abc"),
            "d2fe98063f876b03193afb49b4979591"
        );
        assert_eq!(
            hex::encode(hmac_sha256(b"key", b"abc")),
            "9c196e32dc0175f86f4b1cb89289d6619de6bee699e4c378e68309ed97a1a6ab"
        );
    }

    #[test]
    fn aes_cbc_round_trips_and_refuses_bad_input() {
        for key in [vec![1u8; 16], vec![2u8; 32]] {
            let iv = [0u8; 16];
            for len in [0usize, 1, 16, 33] {
                let plain = vec![7u8; len];
                let c = aes_cbc_encrypt(&key, &iv, &plain).unwrap();
                assert_eq!(aes_cbc_decrypt(&key, &iv, &c).unwrap(), plain);
            }
            assert!(aes_cbc_decrypt(&key, &iv, &[1u8; 15]).is_none());
        }
        assert!(aes_cbc_encrypt(&[1u8; 15], &[0u8; 16], b"x").is_none());
    }

    #[test]
    fn sorted_concat_skips_sign_and_empty_values() {
        let p = vec![
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
            ("sign".to_string(), "X".to_string()),
            ("c".to_string(), String::new()),
        ];
        assert_eq!(sorted_concat(&p, &["sign"]), "a1b2");
        assert_eq!(
            wrapped_md5_upper(&p, "s"),
            md5_hex(b"sa1b2s").to_ascii_uppercase()
        );
    }
}
