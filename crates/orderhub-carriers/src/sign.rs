//! The digests and ciphers the carriers sign with. Pure functions over bytes, so each can be
//! checked against values worked out independently (see the tests and SOURCES.md).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use md5::{Digest, Md5};
use sm4::Sm4;
use sm4::cipher::generic_array::GenericArray;
use sm4::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};

pub fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// Base64 of the raw MD5 (SF, ZTO, J&T, Cainiao, YTO).
pub fn md5_base64(data: &[u8]) -> String {
    B64.encode(md5(data))
}

/// Lower-case hex MD5 (JD's `md5-salt`, J&T's password cipher before upper-casing).
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(md5(data))
}

/// `java.net.URLEncoder.encode(s, "UTF-8")`: form encoding, space as '+', `*-._` kept. SF signs the
/// URL-encoded text because its reference SDK is Java.
pub fn java_url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub fn b64(data: &[u8]) -> String {
    B64.encode(data)
}

pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    B64.decode(s.trim()).ok()
}

const SM4_BLOCK: usize = 16;

/// SM4-ECB with PKCS#7 padding (what EMS calls SM4/ECB/PKCS5Padding). `None` if the key is not
/// 16 bytes.
pub fn sm4_ecb_encrypt(key: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
    let cipher = Sm4::new_from_slice(key).ok()?;
    let pad = SM4_BLOCK - plain.len() % SM4_BLOCK;
    let mut data = plain.to_vec();
    data.extend(std::iter::repeat_n(pad as u8, pad));
    for chunk in data.chunks_exact_mut(SM4_BLOCK) {
        cipher.encrypt_block(GenericArray::from_mut_slice(chunk));
    }
    Some(data)
}

/// The inverse of [`sm4_ecb_encrypt`]; `None` on a wrong key length, a partial block or bad padding.
pub fn sm4_ecb_decrypt(key: &[u8], cipher_text: &[u8]) -> Option<Vec<u8>> {
    let cipher = Sm4::new_from_slice(key).ok()?;
    if cipher_text.is_empty() || !cipher_text.len().is_multiple_of(SM4_BLOCK) {
        return None;
    }
    let mut data = cipher_text.to_vec();
    for chunk in data.chunks_exact_mut(SM4_BLOCK) {
        cipher.decrypt_block(GenericArray::from_mut_slice(chunk));
    }
    let pad = *data.last()? as usize;
    if pad == 0 || pad > SM4_BLOCK || data.len() < pad {
        return None;
    }
    if !data[data.len() - pad..].iter().all(|&b| b as usize == pad) {
        return None;
    }
    data.truncate(data.len() - pad);
    Some(data)
}

/// Compares two digests without an early exit, so a signature check does not leak how much of a
/// guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values computed with Python 3's hashlib/base64 (see SOURCES.md, "How the test vectors were
    // worked out"): python3 -c 'import hashlib,base64;print(base64.b64encode(hashlib.md5(b"abc").digest()).decode())'
    #[test]
    fn md5_helpers_match_known_values() {
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(md5_base64(b"abc"), "kAFQmDzST7DWlj99KOF/cg==");
    }

    #[test]
    fn java_url_encoding_keeps_star_and_encodes_tilde_and_space_as_plus() {
        assert_eq!(java_url_encode("a b*~-._/中"), "a+b*%7E-._%2F%E4%B8%AD");
    }

    #[test]
    fn sm4_round_trips_and_refuses_bad_input() {
        let key = [7u8; 16];
        for len in [0usize, 1, 15, 16, 17, 100] {
            let plain = vec![0xabu8; len];
            let c = sm4_ecb_encrypt(&key, &plain).unwrap();
            assert_eq!(c.len() % 16, 0);
            assert_eq!(sm4_ecb_decrypt(&key, &c).unwrap(), plain);
        }
        assert!(sm4_ecb_encrypt(&[1u8; 15], b"x").is_none());
        assert!(sm4_ecb_decrypt(&key, &[1u8; 15]).is_none());
        assert!(sm4_ecb_decrypt(&key, &[]).is_none());
        // Decrypting with the wrong key gives garbage padding far more often than not; it must
        // never panic whatever comes out.
        let c = sm4_ecb_encrypt(&key, b"hello").unwrap();
        let _ = sm4_ecb_decrypt(&[8u8; 16], &c);
    }

    /// The SM4 standard's (GB/T 32907-2016) example: key = plaintext = 0123456789abcdeffedcba9876543210.
    #[test]
    fn sm4_block_matches_the_standard_example() {
        let key = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
        let c = sm4_ecb_encrypt(&key, &key).unwrap();
        assert_eq!(hex::encode(&c[..16]), "681edf34d206965e86b3e94f536e4246");
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
