//! The key derivations of the oneM2M key hierarchy, implemented once (TS-0003 clause 10.3;
//! the GBA-based provisioning of clause 8.3.2.3 through 3GPP TS 33.220 Annex B).
//!
//! | derived | from | function | clause |
//! |---|---|---|---|
//! | Ke + RelativeKeID | TLS exporter `EXPORTER-oneM2M-Bootstrap` | [`enrolment_key`] | 10.3.1 |
//! | Kc + KcID | TLS exporter `EXPORTER-oneM2M-Connection` | [`secure_connection_key`] | 10.3.1 |
//! | pairwiseE2EKey + ID | TLS exporter `EXPORTER-oneM2M-ESCertKE` | [`pairwise_e2e_key`] | 10.3.1 |
//! | Km | Ke, MAF-ID | [`master_credential`] | 10.3.2 |
//! | Kpsa | Ke, Enrolee-B-ID | [`provisioned_secure_connection_key`] | 10.3.3 |
//! | KeID, MAF key identifier | RelativeKeID / KcID, FQDN | [`KeId`], [`MafKeyId`] | 10.3.4, 10.3.5 |
//! | Ke2e_master | Kpsa, salt | [`e2e_master_key`] | 10.3.6.1 |
//! | Ke2e_msg_auth/msg_conf/att_auth/att_conf | Ke2e_master | [`e2e_keys`] | 10.3.6.2 |
//! | usage-constrained key | Ke, SUID, Enrolment-Target-ID | [`usage_constrained_key`] | 10.3.7 |
//! | sessionESPrimKey | pairwiseESPrimKey, two rand objects | [`session_esprim_key`] | 10.3.8.2 |
//! | Ks_NAF, Ks_ext_NAF, Ks_int_NAF (= Km or Kpsa) | GBA Ks, RAND, IMPI, NAF_Id | [`gba_naf_key`] | 8.3.2.3; TS 33.220 B.3 |
//! | edge-node key (Kpsa of a node behind a gateway) | gateway NAF key, node name, gateway B-TID | [`gba_edge_node_key`] | ours (NOTE(gba-edge)); TS 33.220 B.2 construction |
//!
//! Every derivation that keys an HMAC with a parent key takes the parent as
//! `&impl HmacKey<Parent>`. Two kinds of value implement it:
//!
//! * the parent key type itself (for example [`EnrolmentKey`]): a key already in memory, the
//!   HMAC computed here with RustCrypto's `hmac` and `sha2`;
//! * a [`HomeKey`]: a handle to an HMAC-SHA-256 key inside a [`KeyStore`] home, where the HMAC
//!   runs inside the home, so a master key at level 2 (TPM) or 3 (HSM) never leaves it.
//!
//! Either way the byte string fed to the HMAC is built by the same function, so the two
//! variants cannot drift apart. Derived keys come out as zeroizing types without `Clone`,
//! `Serialize` or a `Debug` that prints bytes; [`ProvisionedSecureConnectionKey::into_secret_bytes`]
//! and its siblings hand one to [`KeyStore::import`] when it should live in a home too.
//!
//! Identifier inputs are UTF-8 in Unicode Normalization Form KC, as the clauses require; the
//! identifier types normalise on construction.
//!
//! NOTE(kdf): three points the spec leaves open are decided here and repeated where they
//! apply: the byte order of the 48-byte exporter output ("most significant" = first bytes),
//! the hex case of `hexBinary` (upper case, the XML Schema canonical form) and the encoding
//! of the SUID inside the usage-constrained derivation (its decimal digits in ASCII).

use hmac::{Hmac, Mac as _};
use keystore::{Algorithm, KeyHandle, KeyId, KeyStore, KeyStoreError, SecretBytes};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;
use zeroize::{Zeroize, Zeroizing};

/// Length in bytes of every key this module derives (HMAC-SHA-256 output).
pub const KEY_LEN: usize = 32;

/// Length of the TLS exporter output that clause 10.3.1 asks for.
pub const EXPORTER_LEN: usize = 48;

/// Length of the identifier half of the exporter output.
pub const EXPORTED_ID_LEN: usize = 16;

/// Label of the Km derivation (clause 10.3.2).
pub const LABEL_KM: &str = "oneM2M Enrolment Key to Master Credential derivation";
/// Label of the Kpsa derivation (clause 10.3.3).
pub const LABEL_KPSA: &str = "oneM2M Enrolment Key to Provisioned Secure Connection Key derivation";
/// Label of the usage-constrained key derivation (clause 10.3.7).
pub const LABEL_USAGE_CONSTRAINED: &str =
    "oneM2M Enrolment Key to Usage-Constrained Symmetric Key derivation";
/// Label of the sessionESPrimKey derivation, algorithm 1 (clause 10.3.8.2).
pub const LABEL_SESSION_ESPRIM: &str = "oneM2M HMAC-SHA256 sessionESPrimKey derivation algorithm";
/// Labels of the four end-to-end keys, in expansion order (clause 10.3.6.2).
pub const LABELS_E2E: [&str; 4] = [
    "E2E Message Authentication Key",
    "E2E Message Confidentiality Key",
    "E2E Attribute Authenticity Key",
    "E2E Attribute Confidentiality Key",
];

/// Why a derivation or an identifier was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KdfError {
    /// An identifier does not follow its format; the value is an identifier, never a secret.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidIdentifier {
        /// Which identifier (KeID, FQDN, MAF-ID, ...).
        what: &'static str,
        /// The rejected value.
        value: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Key or exporter bytes of the wrong length (the bytes themselves are not shown).
    #[error("{what} must be {expected} bytes, not {got}")]
    WrongLength {
        /// What was handed in.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// An input of the 3GPP KDF is longer than its two-byte length field allows.
    #[error("{what} is {len} bytes; the GBA key derivation accepts at most 65535")]
    InputTooLong {
        /// Which input.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// The exporter output was produced with another label than the derivation needs: the
    /// caller mixed up the exporters (clause 10.3.1 has one label per key).
    #[error("exporter output for {got:?} cannot give the {wanted}: it needs {expected:?}")]
    WrongExporterLabel {
        /// The key asked for.
        wanted: &'static str,
        /// The label it needs.
        expected: &'static str,
        /// The label the output was exported with.
        got: &'static str,
    },
    /// Not a value of `m2m:suid` (TS-0004 clause 6.3.4.2.39).
    #[error("{0} is not a security usage identifier (m2m:suid)")]
    UnknownSuid(u8),
    /// Usage-constrained keys are RSPF-provisioned symmetric keys: only SUIDs 21-25 apply.
    #[error("SUID {0} does not name an RSPF-provisioned symmetric key (21-25)")]
    SuidNotDerivable(u8),
    /// The key-store handle is not an HMAC-SHA-256 key, so it cannot key these derivations.
    #[error("key {key} is {algorithm}, not an HMAC-SHA-256 key")]
    NotAnHmacKey {
        /// The key.
        key: KeyId,
        /// Its algorithm.
        algorithm: Algorithm,
    },
    /// The key store refused or failed the HMAC (policy, home unreachable, ...).
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
}

// === keys ===

/// A key that can key HMAC-SHA-256 for a derivation whose parent is a `K`.
///
/// Implemented by each key type for itself (software, key in memory) and by [`HomeKey`]
/// (the HMAC runs inside a key-store home). The type parameter keeps a Ke handle from being
/// passed where a Kpsa is expected.
pub trait HmacKey<K> {
    /// HMAC-SHA-256 of `data` under this key.
    fn hmac_sha256(&self, data: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, KdfError>;
}

/// HMAC-SHA-256 in software (RFC 2104 through RustCrypto).
fn software_hmac(key: &[u8], data: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, KdfError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| KdfError::WrongLength {
        what: "HMAC key",
        expected: KEY_LEN,
        got: key.len(),
    })?;
    mac.update(data);
    let mut tag = mac.finalize().into_bytes();
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    out.copy_from_slice(&tag);
    tag.as_mut_slice().zeroize();
    Ok(out)
}

macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident, $short:literal) => {
        $(#[$doc])*
        ///
        /// Zeroized on drop; no `Clone`, no `Serialize`; `Debug` prints only the name and
        /// length; [`Self::ct_eq`] compares in constant time.
        pub struct $name(Zeroizing<[u8; KEY_LEN]>);

        impl $name {
            /// Wraps 32 key bytes obtained elsewhere (pre-provisioned, read from a protected
            /// file). The caller wipes its own copy.
            pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
                Self(Zeroizing::new(bytes))
            }

            /// Copies 32 key bytes from a slice (for example a key store's output).
            pub fn from_slice(bytes: &[u8]) -> Result<Self, KdfError> {
                let mut key = Zeroizing::new([0u8; KEY_LEN]);
                if bytes.len() != KEY_LEN {
                    return Err(KdfError::WrongLength {
                        what: $short,
                        expected: KEY_LEN,
                        got: bytes.len(),
                    });
                }
                key.copy_from_slice(bytes);
                Ok(Self(key))
            }

            /// The key bytes, for the TLS library or the AEAD that uses the key. Keep the
            /// borrow short and do not copy the bytes into unprotected buffers.
            pub fn expose(&self) -> &[u8; KEY_LEN] {
                &self.0
            }

            /// Constant-time equality, so comparing keys leaks no timing.
            pub fn ct_eq(&self, other: &Self) -> bool {
                bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
            }

            /// Hands the key over as [`SecretBytes`], e.g. to [`KeyStore::import`] it as an
            /// HMAC-SHA-256 key so that later derivations run inside a home.
            pub fn into_secret_bytes(self) -> SecretBytes {
                SecretBytes::from_slice(self.0.as_slice())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!($short, "(32 bytes)"))
            }
        }

        impl HmacKey<$name> for $name {
            fn hmac_sha256(&self, data: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, KdfError> {
                software_hmac(self.0.as_slice(), data)
            }
        }
    };
}

secret_key!(
    /// Ke, the Enrolment Key an Enrolee shares with the MEF (clause 8.3; from the TLS
    /// exporter, or the GBA Ks).
    EnrolmentKey,
    "Ke"
);
secret_key!(
    /// Km, the Master Credential an entity shares with a MAF (clause 10.3.2).
    MasterCredential,
    "Km"
);
secret_key!(
    /// Kpsa, the Provisioned Secure Connection Key: the PSK of the PSK-based SAEF (clause 10.3.3).
    ProvisionedSecureConnectionKey,
    "Kpsa"
);
secret_key!(
    /// A usage-constrained symmetric key, bound to one SUID and one Enrolment Target
    /// (clause 10.3.7).
    UsageConstrainedKey,
    "UsageConstrainedKey"
);
secret_key!(
    /// Kc, the M2M Secure Connection Key of the MAF-based SAEF (clause 10.3.1).
    SecureConnectionKey,
    "Kc"
);
secret_key!(
    /// pairwiseE2EKey, from ESCertKE (clause 10.3.1).
    PairwiseE2eKey,
    "PairwiseE2eKey"
);
secret_key!(
    /// pairwiseESPrimKey, the long-term ESPrim key (clause 8.4).
    PairwiseEsprimKey,
    "PairwiseEsprimKey"
);
secret_key!(
    /// sessionESPrimKey, the per-session ESPrim AEAD key (clause 10.3.8).
    SessionEsprimKey,
    "SessionEsprimKey"
);
secret_key!(
    /// Ke2e_master, the end-to-end master key (clause 10.3.6.1).
    E2eMasterKey,
    "Ke2e_master"
);
secret_key!(
    /// One of the four end-to-end protection keys (clause 10.3.6.2).
    E2eKey,
    "E2eKey"
);
secret_key!(
    /// Ks = CK || IK, the GBA bootstrapped key; it is the Enrolment Key of the GBA-based RSPF
    /// (clause 8.3.2.3).
    GbaBootstrapKey,
    "Ks"
);
secret_key!(
    /// A NAF-specific GBA key (Ks_NAF, Ks_ext_NAF or Ks_int_NAF); clause 8.3.2.3 makes it the
    /// Km or Kpsa.
    NafKey,
    "NafKey"
);

impl NafKey {
    /// The NAF key as the Master Credential, when the Enrolment Target is a MAF (clause 8.3.2.3).
    pub fn into_master_credential(self) -> MasterCredential {
        MasterCredential(self.0)
    }

    /// The NAF key as Kpsa, when the Enrolment Target is a CSE (clause 8.3.2.3).
    pub fn into_provisioned_secure_connection_key(self) -> ProvisionedSecureConnectionKey {
        ProvisionedSecureConnectionKey(self.0)
    }
}

impl GbaBootstrapKey {
    /// The GBA Ks used as the Enrolment Key (clause 8.3.2.3: Ke = Ks).
    pub fn into_enrolment_key(self) -> EnrolmentKey {
        EnrolmentKey(self.0)
    }
}

/// A parent key held by a key-store home: the HMAC runs inside the home (TPM, HSM or the
/// encrypted software store), so the parent's bytes never reach this process. `K` names
/// which key of the hierarchy the handle holds.
pub struct HomeKey<'a, K> {
    store: &'a KeyStore,
    handle: &'a KeyHandle,
    kind: PhantomData<fn() -> K>,
}

impl<'a, K> HomeKey<'a, K> {
    /// Uses `handle` in `store` as the parent key. Refuses a key that is not HMAC-SHA-256;
    /// the key store checks its policy on every use.
    pub fn new(store: &'a KeyStore, handle: &'a KeyHandle) -> Result<Self, KdfError> {
        if handle.algorithm() != Algorithm::HmacSha256 {
            return Err(KdfError::NotAnHmacKey {
                key: handle.id().clone(),
                algorithm: handle.algorithm(),
            });
        }
        Ok(Self {
            store,
            handle,
            kind: PhantomData,
        })
    }

    /// The handle.
    pub fn handle(&self) -> &KeyHandle {
        self.handle
    }
}

impl<K> fmt::Debug for HomeKey<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HomeKey")
            .field("handle", self.handle)
            .finish()
    }
}

impl<K> HmacKey<K> for HomeKey<'_, K> {
    fn hmac_sha256(&self, data: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, KdfError> {
        let mac = self.store.hmac(self.handle, data)?;
        Ok(Zeroizing::new(*mac.expose()))
    }
}

// === identifier inputs ===

/// Encodes an identifier as clause 10.3 asks: UTF-8 in Normalization Form KC.
fn nfkc(value: &str) -> String {
    value.nfkc().collect()
}

fn invalid(what: &'static str, value: &str, reason: &'static str) -> KdfError {
    KdfError::InvalidIdentifier {
        what,
        value: value.to_owned(),
        reason,
    }
}

/// Checks the common rules of identifier inputs: not empty, no control characters.
fn check_text(what: &'static str, value: &str) -> Result<(), KdfError> {
    if value.is_empty() {
        Err(invalid(what, value, "it is empty"))
    } else if value.chars().any(char::is_control) {
        Err(invalid(what, value, "it contains control characters"))
    } else {
        Ok(())
    }
}

macro_rules! identifier_input {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        ///
        /// Stored in Normalization Form KC, the form the derivations hash.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks (not empty, no control characters) and NFKC-normalises the identifier.
            pub fn new(value: &str) -> Result<Self, KdfError> {
                check_text($what, value)?;
                Ok(Self(nfkc(value)))
            }

            /// The normalised identifier.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identifier_input!(
    /// MAF-ID, the M2M Authentication Function identifier that Km is bound to (clause 10.3.2).
    MafId,
    "MAF-ID"
);
identifier_input!(
    /// Enrolee-B-ID, the CSE-ID or AE-ID of the peer that Kpsa is shared with (clause 10.3.3).
    EnroleeId,
    "Enrolee-B-ID"
);
identifier_input!(
    /// Enrolment-Target-ID: the FQDN form of the target's absolute CSE-ID or AE-ID, or the
    /// MAF's FQDN (clause 10.3.7).
    EnrolmentTargetId,
    "Enrolment-Target-ID"
);
identifier_input!(
    /// IMPI, the IMS private identity of the GBA subscriber (TS 33.220 B.3).
    Impi,
    "IMPI"
);

/// A fully qualified domain name (MEF, MAF, issuer or NAF): dot-separated labels of letters,
/// digits, `-` and `_`, each 1-63 characters, 253 at most in all. Compared without regard to
/// case, as DNS names are; the spelling given is kept for hashing and display.
#[derive(Debug, Clone)]
pub struct Fqdn(String);

impl Fqdn {
    /// Checks a domain name.
    pub fn new(value: &str) -> Result<Self, KdfError> {
        let reason = if value.is_empty() {
            Some("it is empty")
        } else if value.len() > 253 {
            Some("it is longer than 253 characters")
        } else if value
            .split('.')
            .any(|label| label.is_empty() || label.len() > 63)
        {
            Some("every dot-separated label must have 1-63 characters")
        } else if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            Some("only letters, digits, '.', '-' and '_' are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(invalid("FQDN", value, reason)),
            None => Ok(Self(value.to_owned())),
        }
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Fqdn {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for Fqdn {}

impl Hash for Fqdn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_ascii_lowercase().hash(state);
    }
}

impl fmt::Display for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The Security Usage Identifier, `m2m:suid` (TS-0004 clause 6.3.4.2.39): the tens digit
/// names the kind of credential, the units digit what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Suid(u8);

impl Suid {
    /// Pre-provisioned symmetric key, shared with a MEF.
    pub const PRE_PROVISIONED_MEF: Suid = Suid(10);
    /// Pre-provisioned symmetric key, shared with a MAF.
    pub const PRE_PROVISIONED_MAF: Suid = Suid(11);
    /// Pre-provisioned symmetric key, for a SAEF.
    pub const PRE_PROVISIONED_SAEF: Suid = Suid(12);
    /// RSPF-provisioned symmetric key, shared with a MAF.
    pub const RSPF_MAF: Suid = Suid(21);
    /// RSPF-provisioned symmetric key, for a SAEF.
    pub const RSPF_SAEF: Suid = Suid(22);
    /// RSPF-provisioned symmetric key, for ESPrim.
    pub const RSPF_ESPRIM: Suid = Suid(23);
    /// RSPF-provisioned symmetric key, for ESData authenticated encryption.
    pub const RSPF_ESDATA_ENCRYPT: Suid = Suid(24);
    /// RSPF-provisioned symmetric key, for signature-only ESData.
    pub const RSPF_ESDATA_SIGN: Suid = Suid(25);

    /// Every defined value (TS-0004 Table 6.3.4.2.39-1).
    pub const DEFINED: [u8; 21] = [
        10, 11, 12, 13, 14, 15, 21, 22, 23, 24, 25, 32, 33, 34, 35, 40, 41, 42, 43, 44, 45,
    ];

    /// The numeric value.
    pub fn code(self) -> u8 {
        self.0
    }

    /// Whether it names a symmetric key provisioned through an RSPF (21-25), the keys a
    /// usage-constrained derivation produces.
    pub fn is_rspf_symmetric(self) -> bool {
        (21..=25).contains(&self.0)
    }
}

impl TryFrom<u8> for Suid {
    type Error = KdfError;
    fn try_from(code: u8) -> Result<Self, Self::Error> {
        if Suid::DEFINED.contains(&code) {
            Ok(Suid(code))
        } else {
            Err(KdfError::UnknownSuid(code))
        }
    }
}

impl From<Suid> for u8 {
    fn from(suid: Suid) -> Self {
        suid.0
    }
}

impl fmt::Display for Suid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

// === key identifiers ===

/// The identifier half of a TLS exporter output (RelativeKeID, KcID or pairwiseE2EKeyID):
/// 16 bytes, not secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExportedKeyId([u8; EXPORTED_ID_LEN]);

impl ExportedKeyId {
    /// Wraps the 16 bytes.
    pub fn from_bytes(bytes: [u8; EXPORTED_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; EXPORTED_ID_LEN] {
        &self.0
    }

    /// `hexBinary` of the bytes. NOTE(kdf): upper case, the canonical form of XML Schema's
    /// hexBinary that clauses 10.3.4 and 10.3.5 name; parsing accepts either case.
    pub fn hex_binary(&self) -> String {
        hex::encode_upper(self.0)
    }
}

impl fmt::Debug for ExportedKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExportedKeyId({})", self.hex_binary())
    }
}

/// Splits `relative@fqdn` and checks the FQDN.
fn split_scoped<'a>(what: &'static str, value: &'a str) -> Result<(&'a str, Fqdn), KdfError> {
    let (relative, fqdn) = value
        .rsplit_once('@')
        .ok_or_else(|| invalid(what, value, "it has no '@' before the FQDN"))?;
    let fqdn =
        Fqdn::new(fqdn).map_err(|_| invalid(what, value, "the part after '@' is not an FQDN"))?;
    Ok((relative, fqdn))
}

/// Checks a relative identifier from letters, digits, `.`, `_` and `-` (clauses 10.5, 10.6).
fn check_relative(what: &'static str, relative: &str) -> Result<(), KdfError> {
    if relative.is_empty() {
        Err(invalid(what, relative, "the relative part is empty"))
    } else if !relative
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Err(invalid(
            what,
            relative,
            "the relative part allows only letters, digits, '.', '_' and '-'",
        ))
    } else {
        Ok(())
    }
}

fn exported_id_from_hex(
    what: &'static str,
    value: &str,
    hex_part: &str,
) -> Result<ExportedKeyId, KdfError> {
    let mut bytes = [0u8; EXPORTED_ID_LEN];
    hex::decode_to_slice(hex_part, &mut bytes)
        .map_err(|_| invalid(what, value, "the relative part is not 32 hex digits"))?;
    Ok(ExportedKeyId(bytes))
}

macro_rules! exported_scoped_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name {
            relative: ExportedKeyId,
            fqdn: Fqdn,
        }

        impl $name {
            /// Builds the identifier from the exporter's identifier half and the FQDN.
            pub fn new(relative: &ExportedKeyId, fqdn: &Fqdn) -> Self {
                Self {
                    relative: *relative,
                    fqdn: fqdn.clone(),
                }
            }

            /// Parses `HEX@FQDN` (32 hex digits in either case).
            pub fn parse(value: &str) -> Result<Self, KdfError> {
                let (relative, fqdn) = split_scoped($what, value)?;
                let relative = exported_id_from_hex($what, value, relative)?;
                Ok(Self { relative, fqdn })
            }

            /// The relative identifier (the exporter's 16 bytes).
            pub fn relative(&self) -> &ExportedKeyId {
                &self.relative
            }

            /// The FQDN after the `@`.
            pub fn fqdn(&self) -> &Fqdn {
                &self.fqdn
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}@{}", self.relative.hex_binary(), self.fqdn)
            }
        }

        impl FromStr for $name {
            type Err = KdfError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

exported_scoped_id!(
    /// KeID = hexBinary(RelativeKeID) `@` MEF-FQDN (clause 10.3.4): names Ke at the MEF, and is
    /// the psk_identity an Enrolment Target sees.
    KeId,
    "KeID"
);
exported_scoped_id!(
    /// The MAF key identifier = hexBinary(KcID) `@` MAF-FQDN (clause 10.3.5): the psk_identity
    /// of the MAF-based SAEF.
    MafKeyId,
    "MAF key identifier"
);

macro_rules! issued_scoped_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, case_insensitive = $ci:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            relative: String,
            fqdn: Fqdn,
        }

        impl $name {
            /// Builds the identifier from the issuer's relative identifier and FQDN.
            pub fn new(relative: &str, fqdn: &Fqdn) -> Result<Self, KdfError> {
                check_relative($what, relative)?;
                Ok(Self {
                    relative: relative.to_owned(),
                    fqdn: fqdn.clone(),
                })
            }

            /// Parses `RELATIVE@FQDN`.
            pub fn parse(value: &str) -> Result<Self, KdfError> {
                let (relative, fqdn) = split_scoped($what, value)?;
                check_relative($what, relative)?;
                Ok(Self {
                    relative: relative.to_owned(),
                    fqdn,
                })
            }

            /// The relative part, as given.
            pub fn relative(&self) -> &str {
                &self.relative
            }

            /// The FQDN of the issuer.
            pub fn fqdn(&self) -> &Fqdn {
                &self.fqdn
            }

            fn relative_key(&self) -> String {
                if $ci {
                    self.relative.to_ascii_lowercase()
                } else {
                    self.relative.clone()
                }
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.fqdn == other.fqdn && self.relative_key() == other.relative_key()
            }
        }

        impl Eq for $name {}

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.relative_key().hash(state);
                self.fqdn.hash(state);
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}@{}", self.relative, self.fqdn)
            }
        }

        impl FromStr for $name {
            type Err = KdfError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

issued_scoped_id!(
    /// KpsaID = Issuer_Relative_KpsaID `@` Issuer-FQDN (clause 10.5); the relative part is
    /// compared exactly.
    KpsaId,
    "KpsaID",
    case_insensitive = false
);
issued_scoped_id!(
    /// KmID = MAF_RELATIVE_KmID `@` MAF-FQDN (clause 10.6); the relative part is not case
    /// sensitive, so equality ignores its case.
    KmId,
    "KmID",
    case_insensitive = true
);

/// The kind of a Credential-ID (`sec:credIDTypeID`, TS-0003 clauses 10.4 and 12.2), for the
/// symmetric keys this module produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredIdType {
    /// 10: Kpm, shared with the MEF (value: KpmID).
    Kpm = 10,
    /// 11: Km, shared with the MAF (value: KmID).
    Km = 11,
    /// 12: a SAEF symmetric key (value: KpsaID or the MAF key identifier).
    SaefSymmetric = 12,
    /// 13: an ESPrim pairwise key (value: its ID).
    EsprimPairwise = 13,
}

/// A Credential-ID: `<type>-<value>` (clause 10.4), e.g. `11-km1@maf.example.com`. What
/// `<serviceSubscribedAppRule>` lists in `applicableCredIDs`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CredentialId(String);

impl CredentialId {
    /// Builds `<type>-<value>`; the value allows letters, digits, `.`, `_`, `-` and `@`.
    pub fn new(kind: CredIdType, value: &str) -> Result<Self, KdfError> {
        if value.is_empty()
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
        {
            return Err(invalid(
                "Credential-ID value",
                value,
                "only letters, digits, '.', '_', '-' and '@' are allowed",
            ));
        }
        Ok(Self(format!("{}-{value}", kind as u8)))
    }

    /// The Credential-ID of a Kpsa.
    pub fn for_kpsa(id: &KpsaId) -> Result<Self, KdfError> {
        Self::new(CredIdType::SaefSymmetric, &id.to_string())
    }

    /// The Credential-ID of a Km.
    pub fn for_km(id: &KmId) -> Result<Self, KdfError> {
        Self::new(CredIdType::Km, &id.to_string())
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === TLS exporter (clause 10.3.1) ===

/// The three exporter labels of clause 10.3.1, one per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExporterLabel {
    /// `EXPORTER-oneM2M-Bootstrap`: Ke and RelativeKeID after the MEF handshake.
    Bootstrap,
    /// `EXPORTER-oneM2M-Connection`: Kc and KcID after the MAF handshake.
    Connection,
    /// `EXPORTER-oneM2M-ESCertKE`: pairwiseE2EKey and its ID after ESCertKE.
    EsCertKe,
}

impl ExporterLabel {
    /// The label string to hand the TLS library's exporter (RFC 5705, no context, 48 bytes).
    pub const fn as_str(self) -> &'static str {
        match self {
            ExporterLabel::Bootstrap => "EXPORTER-oneM2M-Bootstrap",
            ExporterLabel::Connection => "EXPORTER-oneM2M-Connection",
            ExporterLabel::EsCertKe => "EXPORTER-oneM2M-ESCertKE",
        }
    }
}

/// The 48 bytes a TLS library exported with one of the [`ExporterLabel`]s. Secret (the key
/// half), so zeroized and never printed.
pub struct ExporterOutput {
    label: ExporterLabel,
    bytes: Zeroizing<[u8; EXPORTER_LEN]>,
}

impl ExporterOutput {
    /// Wraps the exporter's output, remembering which label produced it.
    pub fn new(label: ExporterLabel, bytes: &[u8]) -> Result<Self, KdfError> {
        if bytes.len() != EXPORTER_LEN {
            return Err(KdfError::WrongLength {
                what: "TLS exporter output",
                expected: EXPORTER_LEN,
                got: bytes.len(),
            });
        }
        let mut out = Zeroizing::new([0u8; EXPORTER_LEN]);
        out.copy_from_slice(bytes);
        Ok(Self { label, bytes: out })
    }

    /// The label it was exported with.
    pub fn label(&self) -> ExporterLabel {
        self.label
    }

    /// Splits into (key, identifier). NOTE(kdf): clause 10.3.1 takes "the 32 least
    /// significant bytes" as the key and "the 16 most significant bytes" as the identifier;
    /// reading the output as a big-endian number, the identifier is bytes 0..16 and the key
    /// bytes 16..48.
    fn split(
        self,
        wanted: &'static str,
        expected: ExporterLabel,
    ) -> Result<(Zeroizing<[u8; KEY_LEN]>, ExportedKeyId), KdfError> {
        if self.label != expected {
            return Err(KdfError::WrongExporterLabel {
                wanted,
                expected: expected.as_str(),
                got: self.label.as_str(),
            });
        }
        let mut id = [0u8; EXPORTED_ID_LEN];
        id.copy_from_slice(&self.bytes[..EXPORTED_ID_LEN]);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&self.bytes[EXPORTED_ID_LEN..]);
        Ok((key, ExportedKeyId(id)))
    }
}

impl fmt::Debug for ExporterOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExporterOutput({}, 48 bytes)", self.label.as_str())
    }
}

/// Ke and RelativeKeID from the `EXPORTER-oneM2M-Bootstrap` output (clause 10.3.1); build
/// the KeID with [`KeId::new`].
pub fn enrolment_key(ekm: ExporterOutput) -> Result<(EnrolmentKey, ExportedKeyId), KdfError> {
    let (key, id) = ekm.split("enrolment key Ke", ExporterLabel::Bootstrap)?;
    Ok((EnrolmentKey(key), id))
}

/// Kc and KcID from the `EXPORTER-oneM2M-Connection` output (clause 10.3.1); build the
/// MAF key identifier with [`MafKeyId::new`].
pub fn secure_connection_key(
    ekm: ExporterOutput,
) -> Result<(SecureConnectionKey, ExportedKeyId), KdfError> {
    let (key, id) = ekm.split("secure connection key Kc", ExporterLabel::Connection)?;
    Ok((SecureConnectionKey(key), id))
}

/// pairwiseE2EKey and its ID from the `EXPORTER-oneM2M-ESCertKE` output (clause 10.3.1).
pub fn pairwise_e2e_key(ekm: ExporterOutput) -> Result<(PairwiseE2eKey, ExportedKeyId), KdfError> {
    let (key, id) = ekm.split("pairwiseE2EKey", ExporterLabel::EsCertKe)?;
    Ok((PairwiseE2eKey(key), id))
}

// === derivations from Ke (clauses 10.3.2, 10.3.3, 10.3.7) ===

/// `label || parts...` in a buffer that is wiped afterwards.
fn concat(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let mut data = Zeroizing::new(Vec::with_capacity(parts.iter().map(|p| p.len()).sum()));
    for part in parts {
        data.extend_from_slice(part);
    }
    data
}

/// The HMAC input of the Km derivation: label || MAF-ID.
pub fn master_credential_input(maf_id: &MafId) -> Vec<u8> {
    concat(&[LABEL_KM.as_bytes(), maf_id.as_str().as_bytes()]).to_vec()
}

/// Km = HMAC-SHA-256(Ke, "oneM2M Enrolment Key to Master Credential derivation" || MAF-ID)
/// (clause 10.3.2).
pub fn master_credential(
    ke: &impl HmacKey<EnrolmentKey>,
    maf_id: &MafId,
) -> Result<MasterCredential, KdfError> {
    Ok(MasterCredential(
        ke.hmac_sha256(&master_credential_input(maf_id))?,
    ))
}

/// The HMAC input of the Kpsa derivation: label || Enrolee-B-ID.
pub fn provisioned_secure_connection_key_input(enrolee_b: &EnroleeId) -> Vec<u8> {
    concat(&[LABEL_KPSA.as_bytes(), enrolee_b.as_str().as_bytes()]).to_vec()
}

/// Kpsa = HMAC-SHA-256(Ke, "oneM2M Enrolment Key to Provisioned Secure Connection Key
/// derivation" || Enrolee-B-ID) (clause 10.3.3).
pub fn provisioned_secure_connection_key(
    ke: &impl HmacKey<EnrolmentKey>,
    enrolee_b: &EnroleeId,
) -> Result<ProvisionedSecureConnectionKey, KdfError> {
    Ok(ProvisionedSecureConnectionKey(ke.hmac_sha256(
        &provisioned_secure_connection_key_input(enrolee_b),
    )?))
}

/// The HMAC input of the usage-constrained derivation: label || SUID || Enrolment-Target-ID.
/// NOTE(kdf): clause 10.3.7 does not say how the SUID is encoded; we use its decimal digits
/// in ASCII ("22"), the form it has in `/fetchCredentials/<KeID>/<SUID>`.
pub fn usage_constrained_key_input(
    suid: Suid,
    target: &EnrolmentTargetId,
) -> Result<Vec<u8>, KdfError> {
    if !suid.is_rspf_symmetric() {
        return Err(KdfError::SuidNotDerivable(suid.code()));
    }
    let digits = suid.code().to_string();
    Ok(concat(&[
        LABEL_USAGE_CONSTRAINED.as_bytes(),
        digits.as_bytes(),
        target.as_str().as_bytes(),
    ])
    .to_vec())
}

/// HMAC-SHA-256(Ke, "oneM2M Enrolment Key to Usage-Constrained Symmetric Key derivation" ||
/// SUID || Enrolment-Target-ID) (clause 10.3.7): the key the MEF hands an Enrolment Target
/// on `fetchCredentials`. Only SUIDs 21-25 (RSPF-provisioned symmetric keys) are accepted.
pub fn usage_constrained_key(
    ke: &impl HmacKey<EnrolmentKey>,
    suid: Suid,
    target: &EnrolmentTargetId,
) -> Result<UsageConstrainedKey, KdfError> {
    let input = usage_constrained_key_input(suid, target)?;
    Ok(UsageConstrainedKey(ke.hmac_sha256(&input)?))
}

// === end-to-end keys (clause 10.3.6) ===

/// Ke2e_master = HMAC-SHA-256(Salt, Kpsa): the HKDF-Extract of RFC 5869 (clause 10.3.6.1),
/// computed with RustCrypto's `hkdf`. Without a salt, RFC 5869 uses 32 zero bytes.
///
/// Software only: Kpsa is the HMAC *message* here, which a key-store home cannot supply as
/// input. (Clause 10.3.6.1 also lists the source end-point's ID as an input, but its formula
/// does not use it; neither do we.)
pub fn e2e_master_key(salt: Option<&[u8]>, kpsa: &ProvisionedSecureConnectionKey) -> E2eMasterKey {
    let (mut prk, _) = hkdf::Hkdf::<Sha256>::extract(salt, kpsa.expose());
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&prk);
    prk.as_mut_slice().zeroize();
    E2eMasterKey(key)
}

/// The four end-to-end keys of clause 10.3.6.2.
#[derive(Debug)]
pub struct E2eKeys {
    /// Ke2e_msg_auth = T(1): message authenticity (primitives).
    pub msg_auth: E2eKey,
    /// Ke2e_msg_conf = T(2): message confidentiality (primitives).
    pub msg_conf: E2eKey,
    /// Ke2e_att_auth = T(3): attribute integrity (data).
    pub att_auth: E2eKey,
    /// Ke2e_att_conf = T(4): attribute confidentiality (data).
    pub att_conf: E2eKey,
}

/// T(i) = HMAC-SHA-256(Ke2e_master, T(i-1) || label_i || i), T(0) empty (clause 10.3.6.2).
/// Not one HKDF-Expand call: each block has its own label, so the chain is written out. The
/// master may live in a home ([`HomeKey`]).
pub fn e2e_keys(master: &impl HmacKey<E2eMasterKey>) -> Result<E2eKeys, KdfError> {
    let mut previous: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new([0u8; KEY_LEN]);
    let mut keys = Vec::with_capacity(4);
    for (i, label) in LABELS_E2E.iter().enumerate() {
        let counter = [i as u8 + 1];
        let t_prev: &[u8] = if i == 0 { &[] } else { previous.as_slice() };
        let block = master.hmac_sha256(&concat(&[t_prev, label.as_bytes(), &counter]))?;
        previous = Zeroizing::new(*block);
        keys.push(E2eKey(block));
    }
    let mut keys = keys.into_iter();
    match (keys.next(), keys.next(), keys.next(), keys.next()) {
        (Some(msg_auth), Some(msg_conf), Some(att_auth), Some(att_conf)) => Ok(E2eKeys {
            msg_auth,
            msg_conf,
            att_auth,
            att_conf,
        }),
        // Four labels give four blocks; this arm is never taken.
        _ => Err(KdfError::WrongLength {
            what: "end-to-end key set",
            expected: 4,
            got: 0,
        }),
    }
}

// === sessionESPrimKey (clause 10.3.8.2) ===

/// sessionESPrimKey = HMAC-SHA-256(pairwiseESPrimKey, receiverESPrimRandObject ||
/// originatorESPrimRandObject || "oneM2M HMAC-SHA256 sessionESPrimKey derivation algorithm")
/// (clause 10.3.8.2, algorithm 1). The spec does not fix how the rand objects are
/// serialized for this concatenation, so the caller passes the bytes both ends agreed on.
pub fn session_esprim_key(
    pairwise: &impl HmacKey<PairwiseEsprimKey>,
    receiver_rand_object: &[u8],
    originator_rand_object: &[u8],
) -> Result<SessionEsprimKey, KdfError> {
    let input = concat(&[
        receiver_rand_object,
        originator_rand_object,
        LABEL_SESSION_ESPRIM.as_bytes(),
    ]);
    Ok(SessionEsprimKey(pairwise.hmac_sha256(&input)?))
}

// === GBA (clause 8.3.2.3; 3GPP TS 33.220 Annex B) ===

/// The GBA RAND of the bootstrapping run (16 bytes, not secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GbaRand(pub [u8; 16]);

/// The Ua security protocol identifier: five bytes naming the protocol that uses the NAF key
/// (TS 33.220 Annex H). It separates the keys of different protocols at the same NAF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UaSecurityProtocolId(pub [u8; 5]);

/// NAF_Id = NAF FQDN || Ua security protocol identifier (TS 33.220). Clause 8.3.2.3 sets the
/// FQDN to the MAF's FQDN, or to the public domain name form of the target CSE-ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NafId {
    /// The NAF's FQDN.
    pub fqdn: Fqdn,
    /// The Ua protocol.
    pub ua_protocol: UaSecurityProtocolId,
}

impl NafId {
    /// The octets of NAF_Id.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = nfkc(self.fqdn.as_str()).into_bytes();
        out.extend_from_slice(&self.ua_protocol.0);
        out
    }
}

/// Which NAF-specific key (TS 33.220 B.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GbaNafKeyKind {
    /// Ks_NAF of GBA_ME (P0 = "gba-me").
    KsNaf,
    /// Ks_ext_NAF of GBA_U, kept in the ME (P0 = "gba-me").
    KsExtNaf,
    /// Ks_int_NAF of GBA_U, kept in the UICC (P0 = "gba-u").
    KsIntNaf,
}

impl GbaNafKeyKind {
    fn p0(self) -> &'static [u8] {
        match self {
            GbaNafKeyKind::KsNaf | GbaNafKeyKind::KsExtNaf => b"gba-me",
            GbaNafKeyKind::KsIntNaf => b"gba-u",
        }
    }
}

/// The B-TID, GBA's bootstrapping transaction identifier: the KeID of the GBA-based RSPF and
/// also the KmID or KpsaID of the keys derived from it (clause 8.3.2.3). Usually
/// `base64(RAND)@BSF-domain`, so it is not a [`KmId`]/[`KpsaId`] (those forbid `+/=`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BootstrapTransactionId(String);

impl BootstrapTransactionId {
    /// Checks the `...@domain` shape.
    pub fn new(value: &str) -> Result<Self, KdfError> {
        check_text("B-TID", value)?;
        split_scoped("B-TID", value)?;
        Ok(Self(value.to_owned()))
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BootstrapTransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The input string S of the 3GPP KDF for a NAF key: FC=0x01 || P0 || L0 || RAND || L1 ||
/// IMPI || L2 || NAF_Id || L3, each L a two-byte big-endian length (TS 33.220 B.2, B.3).
pub fn gba_naf_key_input(
    kind: GbaNafKeyKind,
    rand: &GbaRand,
    impi: &Impi,
    naf: &NafId,
) -> Result<Vec<u8>, KdfError> {
    let naf_bytes = naf.to_bytes();
    ts33220_input(&[
        ("P0", kind.p0()),
        ("RAND", &rand.0),
        ("IMPI", impi.as_str().as_bytes()),
        ("NAF_Id", &naf_bytes),
    ])
}

/// The input string S of the TS 33.220 Annex B KDF with FC = 0x01: FC || P0 || L0 || P1 ||
/// L1 ..., each L the length of its P as two bytes, big-endian (`what` names a P too long
/// for that).
fn ts33220_input(params: &[(&'static str, &[u8])]) -> Result<Vec<u8>, KdfError> {
    let mut s = vec![0x01];
    for &(what, p) in params {
        let len =
            u16::try_from(p.len()).map_err(|_| KdfError::InputTooLong { what, len: p.len() })?;
        s.extend_from_slice(p);
        s.extend_from_slice(&len.to_be_bytes());
    }
    Ok(s)
}

/// A NAF-specific key: HMAC-SHA-256(Ks, S) with S from [`gba_naf_key_input`]
/// (TS 33.220 B.2/B.3). Clause 8.3.2.3 makes it the Km (target = MAF) or the Kpsa (target =
/// CSE), see [`NafKey::into_master_credential`]; its identifier is the B-TID.
pub fn gba_naf_key(
    ks: &impl HmacKey<GbaBootstrapKey>,
    kind: GbaNafKeyKind,
    rand: &GbaRand,
    impi: &Impi,
    naf: &NafId,
) -> Result<NafKey, KdfError> {
    let input = gba_naf_key_input(kind, rand, impi, naf)?;
    Ok(NafKey(ks.hmac_sha256(&input)?))
}

// === edge nodes behind a GBA gateway (our extension of clause 8.3.2.3) ===

/// Label (P0) of the edge-node key derivation, [`gba_edge_node_key`].
///
/// NOTE(gba-edge): TS-0003 lets a gateway extend network-provided keys to edge nodes behind
/// it (trust scenario 1) but defines no label, parameters or identity format for that
/// derivation. This label, the parameter order (label, node name, gateway B-TID) and the
/// `<node>.<B-TID>` identity are ours; a gateway and a CSE of another implementation will not
/// agree with them. The version suffix lets a later derivation coexist.
pub const LABEL_GBA_EDGE_NODE: &str = "secure-cse GBA edge node key v1";

/// The longest edge-node name.
pub const EDGE_NODE_NAME_MAX: usize = 64;

/// The name a gateway gives one of its edge nodes: 1 to [`EDGE_NODE_NAME_MAX`] ASCII letters,
/// digits, `_` and `-`. No `.` and no `@`, so that `<node>.<B-TID>` splits one way only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EdgeNodeName(String);

impl EdgeNodeName {
    /// Checks a node name.
    pub fn new(value: &str) -> Result<Self, KdfError> {
        let reason = if value.is_empty() {
            Some("it is empty")
        } else if value.len() > EDGE_NODE_NAME_MAX {
            Some("it is longer than 64 characters")
        } else if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        {
            Some("only ASCII letters, digits, '_' and '-' are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(invalid("edge node name", value, reason)),
            None => Ok(Self(value.to_owned())),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EdgeNodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The PSK identity (KpsaID) of an edge node: `<node>.<gateway B-TID>`, that is
/// `<node>.<base64 RAND>@<BSF domain>`. A B-TID's local part is base64 and has no `.`, so a
/// local part with one names an edge node; [`EdgeIdentity::parse`] accepts exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EdgeIdentity {
    node: EdgeNodeName,
    gateway: BootstrapTransactionId,
}

impl EdgeIdentity {
    /// The identity of `node` behind the gateway whose B-TID is `gateway`. Refuses a gateway
    /// that is itself an edge node (its local part already holds a `.`).
    pub fn new(node: EdgeNodeName, gateway: BootstrapTransactionId) -> Result<Self, KdfError> {
        if Self::is_edge_shaped(gateway.as_str()) {
            return Err(invalid(
                "gateway B-TID",
                gateway.as_str(),
                "it is an edge identity: an edge node cannot extend its key further",
            ));
        }
        Ok(Self { node, gateway })
    }

    /// Whether `identity` has the shape of an edge identity (a `.` before its last `@`),
    /// whether or not it is well formed.
    pub fn is_edge_shaped(identity: &str) -> bool {
        identity
            .rsplit_once('@')
            .is_some_and(|(local, _)| local.contains('.'))
    }

    /// Parses `<node>.<local>@<domain>`: a valid node name, one `.`, and a gateway B-TID.
    pub fn parse(identity: &str) -> Result<Self, KdfError> {
        let what = "edge identity";
        check_text(what, identity)?;
        let (local, _) = split_scoped(what, identity)?;
        let (node, gateway_local) = local
            .split_once('.')
            .ok_or_else(|| invalid(what, identity, "it has no '.' after the node name"))?;
        if gateway_local.is_empty() || gateway_local.contains('.') {
            return Err(invalid(
                what,
                identity,
                "the gateway part must be one non-empty B-TID local part without '.'",
            ));
        }
        let node = EdgeNodeName::new(node)
            .map_err(|_| invalid(what, identity, "the node name is not 1-64 of [A-Za-z0-9_-]"))?;
        let gateway = BootstrapTransactionId::new(&identity[node.as_str().len() + 1..])?;
        Self::new(node, gateway)
    }

    /// The node's name.
    pub fn node(&self) -> &EdgeNodeName {
        &self.node
    }

    /// The gateway's B-TID, whose NAF key the edge key derives from.
    pub fn gateway(&self) -> &BootstrapTransactionId {
        &self.gateway
    }
}

impl fmt::Display for EdgeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.node, self.gateway)
    }
}

impl FromStr for EdgeIdentity {
    type Err = KdfError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

secret_key!(
    /// The key of one edge node behind a GBA gateway ([`gba_edge_node_key`]); it is that
    /// node's Kpsa, with [`EdgeIdentity`] as KpsaID.
    EdgeNodeKey,
    "EdgeNodeKey"
);

impl EdgeNodeKey {
    /// The edge key as the node's Kpsa (its PSK at the CSE).
    pub fn into_provisioned_secure_connection_key(self) -> ProvisionedSecureConnectionKey {
        ProvisionedSecureConnectionKey(self.0)
    }
}

/// The 3GPP KDF input S of an edge-node key: FC=0x01 || P0 || L0 || P1 || L1 || P2 || L2,
/// with P0 = [`LABEL_GBA_EDGE_NODE`], P1 = the node name, P2 = the gateway's B-TID, each L a
/// two-byte big-endian length (the construction of TS 33.220 B.2).
///
/// NOTE(gba-edge): FC stays 0x01, the value of the NAF key derivation; what separates this
/// derivation from 3GPP's is P0, as "gba-me" and "gba-u" separate Ks_NAF and Ks_int_NAF.
/// The length fields keep the parameters from running into each other.
pub fn gba_edge_node_key_input(
    node: &EdgeNodeName,
    gateway_btid: &BootstrapTransactionId,
) -> Result<Vec<u8>, KdfError> {
    ts33220_input(&[
        ("P0", LABEL_GBA_EDGE_NODE.as_bytes()),
        ("edge node name", node.as_str().as_bytes()),
        ("gateway B-TID", gateway_btid.as_str().as_bytes()),
    ])
}

/// The key of edge node `node` behind the gateway `gateway_btid`: HMAC-SHA-256(gateway NAF
/// key, S) with S from [`gba_edge_node_key_input`]. The gateway (from its own Ks_NAF) and
/// the CSE (from the NAF key the BSF gives it for the gateway's B-TID) both call this, so a
/// gateway can mint keys for its nodes without a round trip, and the CSE needs no state per
/// node. The key lives as long as the gateway's NAF key.
pub fn gba_edge_node_key(
    gateway_naf_key: &impl HmacKey<NafKey>,
    gateway_btid: &BootstrapTransactionId,
    node: &EdgeNodeName,
) -> Result<EdgeNodeKey, KdfError> {
    let input = Zeroizing::new(gba_edge_node_key_input(node, gateway_btid)?);
    Ok(EdgeNodeKey(gateway_naf_key.hmac_sha256(&input)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fqdn(s: &str) -> Fqdn {
        Fqdn::new(s).expect("valid FQDN")
    }

    #[test]
    fn secrets_do_not_print() {
        let ke = EnrolmentKey::from_bytes([7; 32]);
        assert_eq!(format!("{ke:?}"), "Ke(32 bytes)");
        let ekm = ExporterOutput::new(ExporterLabel::Bootstrap, &[9; 48]).expect("48 bytes");
        assert!(!format!("{ekm:?}").contains("9, 9"));
    }

    #[test]
    fn exporter_split_and_labels() {
        let bytes: Vec<u8> = (0..48).collect();
        let ekm = ExporterOutput::new(ExporterLabel::Bootstrap, &bytes).expect("48 bytes");
        let (ke, id) = enrolment_key(ekm).expect("bootstrap label");
        assert_eq!(id.as_bytes().as_slice(), &bytes[..16]);
        assert_eq!(ke.expose().as_slice(), &bytes[16..]);
        let ekm = ExporterOutput::new(ExporterLabel::Connection, &bytes).expect("48 bytes");
        assert!(matches!(
            enrolment_key(ekm),
            Err(KdfError::WrongExporterLabel { .. })
        ));
        assert!(matches!(
            ExporterOutput::new(ExporterLabel::Bootstrap, &bytes[..47]),
            Err(KdfError::WrongLength { got: 47, .. })
        ));
    }

    #[test]
    fn key_ids_round_trip() {
        let rel = ExportedKeyId::from_bytes([0xab; 16]);
        let ke_id = KeId::new(&rel, &fqdn("mef.example.com"));
        assert_eq!(
            ke_id.to_string(),
            "ABABABABABABABABABABABABABABABAB@mef.example.com"
        );
        let lower = KeId::parse("abababababababababababababababab@MEF.example.com").expect("parse");
        assert_eq!(lower, ke_id);
        assert!(KeId::parse("abab@mef.example.com").is_err());
        assert!(KeId::parse("ABABABABABABABABABABABABABABABAB").is_err());

        let km = KmId::parse("Dev-1.a@maf.example.com").expect("KmID");
        assert_eq!(km, KmId::parse("dev-1.A@MAF.example.com").expect("KmID"));
        let kpsa = KpsaId::parse("Dev-1@sp.example").expect("KpsaID");
        assert_ne!(kpsa, KpsaId::parse("dev-1@sp.example").expect("KpsaID"));
        assert!(KpsaId::parse("a/b@sp.example").is_err());
        assert!(KpsaId::parse("@sp.example").is_err());
        assert!(KpsaId::parse("x@bad host").is_err());
        assert_eq!(
            CredentialId::for_kpsa(&kpsa).expect("cred id").as_str(),
            "12-Dev-1@sp.example"
        );
    }

    #[test]
    fn identifiers_are_nfkc() {
        // U+FB01 (the "fi" ligature) becomes "fi" under NFKC.
        let id = MafId::new("maf-\u{FB01}").expect("valid");
        assert_eq!(id.as_str(), "maf-fi");
        assert!(MafId::new("").is_err());
        assert!(MafId::new("a\nb").is_err());
    }

    #[test]
    fn suids() {
        assert!(Suid::try_from(22).is_ok());
        assert!(matches!(Suid::try_from(20), Err(KdfError::UnknownSuid(20))));
        let ke = EnrolmentKey::from_bytes([1; 32]);
        let target = EnrolmentTargetId::new("cse1.sp.example").expect("valid");
        let cert = Suid::try_from(42).expect("defined");
        assert!(matches!(
            usage_constrained_key(&ke, cert, &target),
            Err(KdfError::SuidNotDerivable(42))
        ));
    }

    #[test]
    fn e2e_blocks_chain() {
        let master = E2eMasterKey::from_bytes([3; 32]);
        let keys = e2e_keys(&master).expect("derive");
        let t1 = software_hmac(&[3; 32], b"E2E Message Authentication Key\x01").expect("hmac");
        assert_eq!(keys.msg_auth.expose(), &*t1);
        let mut input = t1.to_vec();
        input.extend_from_slice(b"E2E Message Confidentiality Key\x02");
        let t2 = software_hmac(&[3; 32], &input).expect("hmac");
        assert_eq!(keys.msg_conf.expose(), &*t2);
        assert!(!keys.att_auth.ct_eq(&keys.att_conf));
    }

    #[test]
    fn gba_input_layout() {
        let naf = NafId {
            fqdn: fqdn("maf.example"),
            ua_protocol: UaSecurityProtocolId([1, 0, 0, 0, 0]),
        };
        let impi = Impi::new("u@ims.example").expect("valid");
        let s = gba_naf_key_input(GbaNafKeyKind::KsIntNaf, &GbaRand([0xaa; 16]), &impi, &naf)
            .expect("input");
        assert_eq!(s[0], 0x01);
        assert_eq!(&s[1..6], b"gba-u");
        assert_eq!(&s[6..8], &[0, 5]);
        assert_eq!(&s[8..24], &[0xaa; 16]);
        assert_eq!(&s[24..26], &[0, 16]);
        assert_eq!(s.len(), 1 + (5 + 2) + (16 + 2) + (13 + 2) + (16 + 2));
    }

    #[test]
    fn edge_identities_parse_and_print() {
        let id =
            EdgeIdentity::parse("meter-7.SWX1nmVqX1V4JfoRMGuGMw==@bsf.sp.example").expect("edge");
        assert_eq!(id.node().as_str(), "meter-7");
        assert_eq!(
            id.gateway().as_str(),
            "SWX1nmVqX1V4JfoRMGuGMw==@bsf.sp.example"
        );
        assert_eq!(
            id.to_string(),
            "meter-7.SWX1nmVqX1V4JfoRMGuGMw==@bsf.sp.example"
        );
        let max = "n".repeat(EDGE_NODE_NAME_MAX);
        assert!(EdgeIdentity::parse(&format!("{max}.AA@bsf.sp.example")).is_ok());
        assert!(EdgeIdentity::is_edge_shaped("a.b@x"));
        assert!(!EdgeIdentity::is_edge_shaped("ab@x.y"));
        assert!(!EdgeIdentity::is_edge_shaped("no-domain.at-all"));
    }

    #[test]
    fn malformed_edge_identities_and_names_are_refused() {
        let too_long = format!("{}.AA@bsf.sp.example", "n".repeat(EDGE_NODE_NAME_MAX + 1));
        for bad in [
            "AAEC@bsf.sp.example",        // a B-TID, no node
            ".AAEC@bsf.sp.example",       // empty node name
            "meter.@bsf.sp.example",      // empty gateway part
            "a.b.AAEC@bsf.sp.example",    // an edge node behind an edge node
            "me ter.AAEC@bsf.sp.example", // a space
            "m\u{e9}ter.AAEC@bsf.sp.example",
            "meter/1.AAEC@bsf.sp.example",
            "meter.AAEC@", // no domain
            "meter.AAEC@bad domain",
            "meter.AAEC", // no '@'
            "meter.AA\nEC@bsf.sp.example",
            "",
            too_long.as_str(),
        ] {
            assert!(EdgeIdentity::parse(bad).is_err(), "{bad:?} must be refused");
        }
        for bad in ["", "a.b", "a@b", "a b", "\u{e9}", &"x".repeat(65)] {
            assert!(EdgeNodeName::new(bad).is_err(), "{bad:?}");
        }
        let gateway = BootstrapTransactionId::new("m.AAEC@bsf.sp.example").expect("shape");
        let node = EdgeNodeName::new("n").expect("name");
        assert!(
            EdgeIdentity::new(node, gateway).is_err(),
            "no edge of an edge"
        );
    }

    #[test]
    fn edge_input_layout() {
        let s = gba_edge_node_key_input(
            &EdgeNodeName::new("meter-7").expect("name"),
            &BootstrapTransactionId::new("AAEC@bsf.sp.example").expect("btid"),
        )
        .expect("input");
        let label = LABEL_GBA_EDGE_NODE.len();
        assert_eq!(s[0], 0x01);
        assert_eq!(&s[1..1 + label], LABEL_GBA_EDGE_NODE.as_bytes());
        assert_eq!(&s[1 + label..3 + label], &(label as u16).to_be_bytes());
        assert_eq!(&s[3 + label..10 + label], b"meter-7");
        assert_eq!(&s[10 + label..12 + label], &[0, 7]);
        assert_eq!(s.len(), 1 + (label + 2) + (7 + 2) + (19 + 2));
        let key = NafKey::from_bytes([4; 32]);
        let a = gba_edge_node_key(
            &key,
            &BootstrapTransactionId::new("AAEC@bsf.sp.example").expect("btid"),
            &EdgeNodeName::new("meter-7").expect("name"),
        )
        .expect("derive");
        assert_eq!(format!("{a:?}"), "EdgeNodeKey(32 bytes)");
        let b = gba_edge_node_key(
            &key,
            &BootstrapTransactionId::new("AAEC@bsf.sp.example").expect("btid"),
            &EdgeNodeName::new("meter-8").expect("name"),
        )
        .expect("derive");
        assert!(!a.ct_eq(&b), "each node its own key");
    }
}
