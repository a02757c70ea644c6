//! Software cryptography shared by the homes (OpenSSL): hashing, DER glue for signatures and
//! public keys, signature verification, HKDF-Expand, and the level-1 primitives.

use crate::error::KeyStoreError;
use crate::handle::KeyHandle;
use crate::secret::{Mac, PublicKeyDer, SecretBytes, Signature};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use openssl::sha::sha256 as openssl_sha256;
use zeroize::Zeroizing;

/// DER of the P-256 curve OID (1.2.840.10045.3.1.7), as PKCS#11 `CKA_EC_PARAMS` wants it.
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
pub(crate) const P256_OID_DER: [u8; 10] =
    [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Longest HKDF-Expand output for SHA-256 (255 blocks).
pub(crate) const HKDF_MAX: usize = 255 * 32;

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    openssl_sha256(data)
}

pub(crate) fn p256() -> Result<EcGroup, KeyStoreError> {
    EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(|e| crypto_error("P-256 group", e))
}

pub(crate) fn crypto_error(what: &str, e: openssl::error::ErrorStack) -> KeyStoreError {
    KeyStoreError::Backend {
        home: crate::types::HomeId::new("openssl", what),
        operation: "software cryptography",
        reason: e.to_string(),
    }
}

/// Random bytes from OpenSSL's CSPRNG.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], KeyStoreError> {
    let mut out = [0u8; N];
    openssl::rand::rand_bytes(&mut out).map_err(|e| crypto_error("random", e))?;
    Ok(out)
}

/// Raw `r || s` (64 bytes, as PKCS#11 `CKM_ECDSA` returns it) to DER.
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
pub(crate) fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Signature, String> {
    if raw.len() != 64 {
        return Err(format!(
            "raw ECDSA signature has {} bytes, not 64",
            raw.len()
        ));
    }
    ecdsa_rs_to_der(&raw[..32], &raw[32..])
}

/// Separate `r` and `s` (big-endian, as the TPM returns them) to DER.
#[cfg_attr(not(any(feature = "pkcs11", feature = "tpm")), allow(dead_code))]
pub(crate) fn ecdsa_rs_to_der(r: &[u8], s: &[u8]) -> Result<Signature, String> {
    let sig = (|| {
        let r = BigNum::from_slice(r)?;
        let s = BigNum::from_slice(s)?;
        EcdsaSig::from_private_components(r, s)?.to_der()
    })()
    .map_err(|e| e.to_string())?;
    Ok(Signature::from_der(sig))
}

/// SubjectPublicKeyInfo DER of a P-256 point given as `04 || X || Y`.
#[cfg_attr(not(any(feature = "pkcs11", feature = "tpm")), allow(dead_code))]
pub(crate) fn spki_from_point(uncompressed: &[u8]) -> Result<PublicKeyDer, String> {
    (|| {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let mut ctx = BigNumContext::new()?;
        let point = EcPoint::from_bytes(&group, uncompressed, &mut ctx)?;
        let key = EcKey::from_public_key(&group, &point)?;
        PKey::from_ec_key(key)?.public_key_to_der()
    })()
    .map(PublicKeyDer::new)
    .map_err(|e| e.to_string())
}

/// SubjectPublicKeyInfo DER of a P-256 point given as separate coordinates.
#[cfg(feature = "tpm")]
pub(crate) fn spki_from_coordinates(x: &[u8], y: &[u8]) -> Result<PublicKeyDer, String> {
    if x.len() > 32 || y.len() > 32 {
        return Err("P-256 coordinate longer than 32 bytes".into());
    }
    let mut point = vec![0u8; 65];
    point[0] = 4;
    point[1 + 32 - x.len()..33].copy_from_slice(x);
    point[33 + 32 - y.len()..].copy_from_slice(y);
    spki_from_point(&point)
}

fn public_from_spki(public: &PublicKeyDer) -> Result<EcKey<Public>, KeyStoreError> {
    PKey::public_key_from_der(public.as_der())
        .and_then(|k| k.ec_key())
        .map_err(|e| crypto_error("public key", e))
}

/// Verifies a DER ECDSA signature over a digest. `Ok(false)` for a bad signature (including
/// one that is not valid DER).
pub(crate) fn verify(
    public: &PublicKeyDer,
    digest: &[u8; 32],
    signature: &Signature,
) -> Result<bool, KeyStoreError> {
    let key = public_from_spki(public)?;
    let Ok(sig) = EcdsaSig::from_der(signature.as_der()) else {
        return Ok(false);
    };
    Ok(sig.verify(digest, &key).unwrap_or(false))
}

/// HKDF-Expand (RFC 5869 2.3) over an HMAC that runs wherever the key lives.
pub(crate) fn hkdf_expand(
    key: &KeyHandle,
    info: &[u8],
    len: usize,
    mut hmac: impl FnMut(&[u8]) -> Result<Mac, KeyStoreError>,
) -> Result<SecretBytes, KeyStoreError> {
    if len > HKDF_MAX {
        return Err(KeyStoreError::InputTooLong {
            home: key.home().clone(),
            operation: "derive (output length)",
            len,
            limit: HKDF_MAX,
        });
    }
    let mut okm = Zeroizing::new(Vec::with_capacity(len + 32));
    let mut block = Zeroizing::new(Vec::with_capacity(32 + info.len() + 1));
    let mut counter = 1u8;
    while okm.len() < len {
        block.extend_from_slice(info);
        block.push(counter);
        let t = hmac(&block)?;
        okm.extend_from_slice(t.expose());
        block.clear();
        block.extend_from_slice(t.expose());
        counter = counter.wrapping_add(1);
    }
    okm.truncate(len);
    Ok(SecretBytes::new(std::mem::take(&mut *okm)))
}

// === level-1 primitives (also the "raw backend" the benchmark compares against) ===

/// A new P-256 private key.
pub(crate) fn ec_generate() -> Result<PKey<Private>, KeyStoreError> {
    let group = p256()?;
    let key = EcKey::generate(&group).map_err(|e| crypto_error("P-256 keygen", e))?;
    PKey::from_ec_key(key).map_err(|e| crypto_error("P-256 keygen", e))
}

/// Parses PKCS#8 DER and insists on a P-256 key.
pub(crate) fn ec_from_pkcs8(der: &[u8]) -> Result<PKey<Private>, String> {
    let key = PKey::private_key_from_pkcs8(der)
        .map_err(|_| "not a PKCS#8 DER private key".to_string())?;
    let ec = key.ec_key().map_err(|_| "not an EC key".to_string())?;
    if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
        return Err("not a P-256 key".into());
    }
    ec.check_key().map_err(|_| "invalid EC key".to_string())?;
    Ok(key)
}

/// PKCS#8 DER of a private key, in a zeroizing buffer.
pub(crate) fn ec_to_pkcs8(key: &PKey<Private>) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
    key.private_key_to_pkcs8()
        .map(Zeroizing::new)
        .map_err(|e| crypto_error("PKCS#8 encoding", e))
}

/// ECDSA over a digest, DER out.
pub(crate) fn ec_sign_digest(
    key: &EcKey<Private>,
    digest: &[u8; 32],
) -> Result<Signature, KeyStoreError> {
    EcdsaSig::sign(digest, key)
        .and_then(|s| s.to_der())
        .map(Signature::from_der)
        .map_err(|e| crypto_error("ECDSA sign", e))
}

/// HMAC-SHA-256.
pub(crate) fn hmac_sha256(key: &PKey<Private>, data: &[u8]) -> Result<Mac, KeyStoreError> {
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), key)
        .map_err(|e| crypto_error("HMAC", e))?;
    signer.update(data).map_err(|e| crypto_error("HMAC", e))?;
    let mut out = [0u8; 32];
    signer.sign(&mut out).map_err(|e| crypto_error("HMAC", e))?;
    Ok(Mac::new(out))
}

/// AES-256-GCM seal: `nonce || ciphertext || tag`.
pub(crate) fn aes_gcm_seal(
    key: &[u8; 32],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, KeyStoreError> {
    let nonce: [u8; 12] = random()?;
    let mut tag = [0u8; 16];
    let ct = openssl::symm::encrypt_aead(
        openssl::symm::Cipher::aes_256_gcm(),
        key,
        Some(&nonce),
        aad,
        plaintext,
        &mut tag,
    )
    .map_err(|e| crypto_error("AES-GCM", e))?;
    let mut out = Vec::with_capacity(12 + ct.len() + 16);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// AES-256-GCM open; `None` when the tag does not verify.
pub(crate) fn aes_gcm_open(
    key: &[u8; 32],
    aad: &[u8],
    nonce: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    openssl::symm::decrypt_aead(
        openssl::symm::Cipher::aes_256_gcm(),
        key,
        Some(nonce),
        aad,
        ciphertext,
        tag,
    )
    .ok()
    .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_signature_round_trips_to_der() {
        let key = ec_generate().expect("keygen");
        let ec = key.ec_key().expect("ec");
        let digest = sha256(b"hello");
        let sig = EcdsaSig::sign(&digest, &ec).expect("sign");
        let mut raw = sig.r().to_vec_padded(32).expect("r");
        raw.extend(sig.s().to_vec_padded(32).expect("s"));
        let der = ecdsa_raw_to_der(&raw).expect("der");
        let spki = PublicKeyDer::new(key.public_key_to_der().expect("spki"));
        assert!(verify(&spki, &digest, &der).expect("verify"));
        assert!(!verify(&spki, &sha256(b"other"), &der).expect("verify"));
        assert!(!verify(&spki, &digest, &Signature::from_der(vec![1, 2, 3])).expect("verify"));
        assert!(ecdsa_raw_to_der(&raw[..63]).is_err());
    }

    #[test]
    fn spki_from_coordinates_matches_openssl() {
        let key = ec_generate().expect("keygen");
        let ec = key.ec_key().expect("ec");
        let mut ctx = BigNumContext::new().expect("ctx");
        let point = ec
            .public_key()
            .to_bytes(
                ec.group(),
                openssl::ec::PointConversionForm::UNCOMPRESSED,
                &mut ctx,
            )
            .expect("point");
        let spki = key.public_key_to_der().expect("spki");
        assert_eq!(spki_from_point(&point).expect("spki").as_der(), &spki[..]);
        #[cfg(feature = "tpm")]
        assert_eq!(
            spki_from_coordinates(&point[1..33], &point[33..])
                .expect("spki")
                .as_der(),
            &spki[..]
        );
    }
}
