//! The owner password of an RC4 or AES-128 file (security handler revisions 2 to 4). lopdf
//! derives the file key from any password as if it were the user password, so the owner password
//! passed its check and then decrypted every object with a wrong key: the text came out as
//! garbage (`pdf_no_text_layer`). ISO 32000-2 Algorithm 7 recovers the user password from the
//! owner password and the `O` entry; the file is then opened with that. Revisions 5 and 6 keep a
//! key for each password (`UE`, `OE`), which lopdf reads.

use lopdf::Object;
use md5::{Digest, Md5};

/// The padding string of ISO 32000-2 Algorithm 2, step a.
const PAD: [u8; 32] = [
    0x28, 0xBF, 0x4E, 0x5E, 0x4E, 0x75, 0x8A, 0x41, 0x64, 0x00, 0x4E, 0x56, 0xFF, 0xFA, 0x01, 0x08, 0x2E, 0x2E, 0x00,
    0xB6, 0xD0, 0x68, 0x3E, 0x80, 0x2F, 0x0C, 0xA9, 0xFE, 0x64, 0x53, 0x69, 0x7A,
];

/// The user password of `doc` when `password` is its owner password and not its user password,
/// on a revision 2–4 handler; `None` otherwise (and when the recovered password is not text).
pub fn user_password_from_owner(doc: &lopdf::Document, password: &str) -> Option<String> {
    let dict = doc.get_encrypted().ok()?;
    let revision = dict.get(b"R").and_then(Object::as_i64).ok()?;
    if !(2..=4).contains(&revision)
        || doc.authenticate_user_password(password).is_ok()
        || doc.authenticate_owner_password(password).is_err()
    {
        return None;
    }
    let owner_value = dict.get(b"O").and_then(Object::as_str).ok()?.get(..32)?;
    let key_bytes = if revision == 2 {
        5
    } else {
        usize::try_from(dict.get(b"Length").and_then(Object::as_i64).unwrap_or(40) / 8).ok()?.clamp(5, 16)
    };
    // Algorithm 3, steps a to d: the RC4 key from the owner password.
    let given = password.as_bytes();
    let given = given.get(..given.len().min(32))?;
    let mut hash = Md5::new().chain_update(given).chain_update(PAD.get(..32 - given.len())?).finalize().to_vec();
    if revision >= 3 {
        for _ in 0..50 {
            hash = Md5::digest(hash.get(..key_bytes)?).to_vec();
        }
    }
    let key = hash.get(..key_bytes)?;
    // Algorithm 7, step b: decrypt O (once for revision 2; twenty times, with the key's bytes
    // XORed with 19 down to 0, for revisions 3 and 4).
    let mut user = owner_value.to_vec();
    if revision == 2 {
        user = rc4(key, &user);
    } else {
        for i in (0..=19u8).rev() {
            let round: Vec<u8> = key.iter().map(|b| b ^ i).collect();
            user = rc4(&round, &user);
        }
    }
    // The result is the user password padded with PAD: cut the padding off.
    let length = (0..=32).find(|&n| user.get(n..) == PAD.get(..32 - n))?;
    String::from_utf8(user.get(..length)?.to_vec()).ok()
}

/// RC4 (ARCFOUR) over `data` with `key`, which the PDF handlers of revisions 2–4 use.
fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut s: Vec<u8> = (0..=255).collect();
    let mut j: u8 = 0;
    for i in 0..256 {
        let k = key.get(i % key.len().max(1)).copied().unwrap_or(0);
        j = j.wrapping_add(s.get(i).copied().unwrap_or(0)).wrapping_add(k);
        s.swap(i, usize::from(j));
    }
    let (mut i, mut j) = (0u8, 0u8);
    data.iter()
        .map(|&byte| {
            i = i.wrapping_add(1);
            j = j.wrapping_add(s.get(usize::from(i)).copied().unwrap_or(0));
            s.swap(usize::from(i), usize::from(j));
            let t = s.get(usize::from(i)).copied().unwrap_or(0).wrapping_add(s.get(usize::from(j)).copied().unwrap_or(0));
            byte ^ s.get(usize::from(t)).copied().unwrap_or(0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc4_matches_the_published_test_vector() {
        // "Key" / "Plaintext" from the RC4 test vectors (Wikipedia, RFC 6229 style).
        assert_eq!(hex::encode(rc4(b"Key", b"Plaintext")), "bbf316e8d940af0ad3");
    }
}
