//! Level 3: keys inside a PKCS#11 token (an HSM; SoftHSMv2 in tests and CI).
//!
//! * Configuration names the module (`.so`), the token label and where the user PIN comes
//!   from ([`SecretSource`]: environment variable or file, never the configuration itself).
//! * Keys are generated inside the token as token objects that are private, sensitive and
//!   non-extractable (`CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE` = true,
//!   `CKA_EXTRACTABLE` = false). Opening a key ([`KeyHome::key`]) re-checks this and asks the
//!   token for `CKA_VALUE`; a token that would hand it out makes the key unusable
//!   ([`KeyStoreError::KeyExtractable`]).
//! * ECDSA: SHA-256 is computed in software and the token signs the digest with `CKM_ECDSA`
//!   (SoftHSM 2.6 has no `CKM_ECDSA_SHA256`); the raw `r || s` is DER-encoded here.
//! * HMAC: `CKM_SHA256_HMAC` with a generic secret key generated in the token.
//! * AEAD: `CKM_AES_GCM` with a 96-bit random nonce and a 128-bit tag.
//! * Import creates sensitive, non-extractable objects; the metadata records the origin.
//! * Each key has a private `CKO_DATA` object (application `secure-cse keystore`, label = key
//!   id) holding its role, algorithm, origin and creation time; keys made by other tools and
//!   lacking it are not listed or used.
//!
//! All objects of a key carry the key id as `CKA_LABEL` and `CKA_ID`, so other tools can find
//! them by `pkcs11:token=<label>;object=<id>` (the OpenSSL pkcs11 engine, for TLS).
//!
//! One session per home serialises operations (PKCS#11 sessions are single-threaded).

mod module;
mod record;

pub use record::{Pkcs11Record, RECORD_LIMIT};

use crate::crypto::{self, P256_OID_DER};
use crate::error::KeyStoreError;
use crate::handle::{from_unix, to_unix, KeyHandle, KeyMetadata, KeyOrigin, UsageLog};
use crate::home::{check_algorithm, check_home, check_new_key, ImportPolicy, KeyHome};
use crate::secret::{Mac, PublicKeyDer, Sealed, SecretBytes, Signature};
use crate::source::SecretSource;
use crate::types::{Algorithm, HomeId, KeyId, KeyRole, Level};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;
use zeroize::Zeroize;

const APPLICATION: &[u8] = b"secure-cse keystore";
const META_FORMAT: &str = "secure-cse-pkcs11-key/1";

/// Configuration of a level-3 home.
///
/// ```toml
/// module = "/usr/lib/softhsm/libsofthsm2.so"
/// token-label = "cse-token"
/// pin = { env = "CSE_HSM_PIN" }      # or pin = { file = "/etc/cse/hsm.pin" }
/// ```
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module.
    pub module: PathBuf,
    /// Label of the token to use.
    pub token_label: String,
    /// Where the user PIN comes from.
    pub pin: SecretSource,
}

/// A level-3 home: one logged-in session on one token.
pub struct Pkcs11Home {
    id: HomeId,
    label: String,
    state: Mutex<State>,
    usage: UsageLog,
}

struct State {
    session: Session,
    /// Object handles by (key, class), valid while the objects exist.
    objects: HashMap<(KeyId, Kind), ObjectHandle>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Private,
    Public,
    Secret,
    Meta,
}

impl Kind {
    fn class(self) -> ObjectClass {
        match self {
            Kind::Private => ObjectClass::PRIVATE_KEY,
            Kind::Public => ObjectClass::PUBLIC_KEY,
            Kind::Secret => ObjectClass::SECRET_KEY,
            Kind::Meta => ObjectClass::DATA,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    format: String,
    role: KeyRole,
    algorithm: Algorithm,
    origin: KeyOrigin,
    created: u64,
}

impl fmt::Debug for Pkcs11Home {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Home")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

const ALGORITHMS: &[Algorithm] = &[
    Algorithm::EcdsaP256Sha256,
    Algorithm::HmacSha256,
    Algorithm::Aes256Gcm,
];

fn to_pin(secret: &SecretBytes, what: &'static str) -> Result<AuthPin, KeyStoreError> {
    let pin =
        std::str::from_utf8(secret.expose()).map_err(|_| KeyStoreError::SecretUnavailable {
            what,
            source_desc: "its source".into(),
            reason: "it is not valid UTF-8".into(),
        })?;
    Ok(AuthPin::from(pin.to_owned()))
}

/// Initialises a token in the first free slot of `module` with `label`, a security-officer
/// PIN and a user PIN (what `softhsm2-util --init-token --free` does). For provisioning
/// SoftHSM and for tests; real HSMs are usually initialised with their vendor's tools.
pub fn init_token(
    module: &Path,
    label: &str,
    so_pin: &SecretBytes,
    user_pin: &SecretBytes,
) -> Result<(), KeyStoreError> {
    let ctx = module::load(module)?;
    let backend = |operation: &'static str, e: P11Error| {
        KeyStoreError::backend(&HomeId::new("pkcs11", label), operation, module::reason(&e))
    };
    let slots = ctx.get_all_slots().map_err(|e| backend("list slots", e))?;
    let free = slots
        .into_iter()
        .find(|slot| {
            ctx.get_token_info(*slot)
                .map(|info| !info.token_initialized())
                .unwrap_or(false)
        })
        .ok_or_else(|| {
            KeyStoreError::backend(&HomeId::new("pkcs11", label), "init token", "no free slot")
        })?;
    let so_pin = to_pin(so_pin, "SO PIN")?;
    let user_pin = to_pin(user_pin, "PIN")?;
    ctx.init_token(free, &so_pin, label)
        .map_err(|e| backend("init token", e))?;
    let session = ctx
        .open_rw_session(free)
        .map_err(|e| backend("open session", e))?;
    session
        .login(UserType::So, Some(&so_pin))
        .map_err(|e| backend("SO login", e))?;
    session
        .init_pin(&user_pin)
        .map_err(|e| backend("init PIN", e))?;
    session.logout().map_err(|e| backend("logout", e))?;
    Ok(())
}

impl Pkcs11Home {
    /// Loads the module, finds the token by label, reads the PIN and logs in.
    pub fn open(config: &Pkcs11Config) -> Result<Self, KeyStoreError> {
        let ctx = module::load(&config.module)?;
        let id = HomeId::new("pkcs11", &config.token_label);
        let backend = |operation: &'static str, e: P11Error| {
            KeyStoreError::backend(&id, operation, module::reason(&e))
        };
        let mut present = Vec::new();
        let mut found = None;
        for slot in ctx
            .get_slots_with_initialized_token()
            .map_err(|e| backend("list slots", e))?
        {
            let info = ctx
                .get_token_info(slot)
                .map_err(|e| backend("token info", e))?;
            let label = info.label().trim_end().to_owned();
            if label == config.token_label {
                if found.is_some() {
                    return Err(KeyStoreError::backend(
                        &id,
                        "find token",
                        "more than one token carries this label",
                    ));
                }
                found = Some(slot);
            }
            present.push(format!("{label:?}"));
        }
        let slot = found.ok_or_else(|| KeyStoreError::TokenNotFound {
            module: config.module.clone(),
            label: config.token_label.clone(),
            present: if present.is_empty() {
                "none".into()
            } else {
                present.join(", ")
            },
        })?;
        let pin = to_pin(&config.pin.read("PIN")?, "PIN")?;
        let session = ctx
            .open_rw_session(slot)
            .map_err(|e| backend("open session", e))?;
        match session.login(UserType::User, Some(&pin)) {
            // NOTE(keystore): PKCS#11 login is per application and token: if another home of
            // this process is already logged in to the token, the PIN is not checked again.
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(P11Error::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
                return Err(KeyStoreError::WrongPin {
                    label: config.token_label.clone(),
                })
            }
            Err(P11Error::Pkcs11(RvError::PinLocked, _)) => {
                return Err(KeyStoreError::PinLocked {
                    label: config.token_label.clone(),
                })
            }
            Err(e) => return Err(backend("login", e)),
        }
        Ok(Self {
            id,
            label: config.token_label.clone(),
            state: Mutex::new(State {
                session,
                objects: HashMap::new(),
            }),
            usage: UsageLog::default(),
        })
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.label
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, KeyStoreError> {
        self.state
            .lock()
            .map_err(|_| KeyStoreError::backend(&self.id, "lock session", "session poisoned"))
    }

    fn err(&self, operation: &'static str) -> impl Fn(P11Error) -> KeyStoreError + '_ {
        move |e| KeyStoreError::backend(&self.id, operation, module::reason(&e))
    }

    fn find(
        &self,
        state: &mut State,
        id: &KeyId,
        kind: Kind,
    ) -> Result<Option<ObjectHandle>, KeyStoreError> {
        if let Some(handle) = state.objects.get(&(id.clone(), kind)) {
            return Ok(Some(*handle));
        }
        let mut template = vec![
            Attribute::Class(kind.class()),
            Attribute::Label(id.as_str().as_bytes().to_vec()),
        ];
        if kind == Kind::Meta {
            template.push(Attribute::Application(APPLICATION.to_vec()));
        }
        let found = state
            .session
            .find_objects(&template)
            .map_err(self.err("find object"))?;
        match found.as_slice() {
            [] => Ok(None),
            [one] => {
                state.objects.insert((id.clone(), kind), *one);
                Ok(Some(*one))
            }
            _ => Err(KeyStoreError::backend(
                &self.id,
                "find object",
                format!("more than one {kind:?} object labelled {id}"),
            )),
        }
    }

    fn require(
        &self,
        state: &mut State,
        id: &KeyId,
        kind: Kind,
    ) -> Result<ObjectHandle, KeyStoreError> {
        self.find(state, id, kind)?
            .ok_or_else(|| KeyStoreError::KeyNotFound {
                home: self.id.clone(),
                key: id.clone(),
            })
    }

    fn meta(&self, state: &mut State, id: &KeyId) -> Result<Meta, KeyStoreError> {
        let object = self.require(state, id, Kind::Meta)?;
        let attrs = state
            .session
            .get_attributes(object, &[AttributeType::Value])
            .map_err(self.err("read metadata"))?;
        let value = attrs
            .into_iter()
            .find_map(|a| match a {
                Attribute::Value(v) => Some(v),
                _ => None,
            })
            .unwrap_or_default();
        let corrupted = |reason: String| KeyStoreError::Corrupted {
            path: PathBuf::from(format!("{}/{id}", self.id)),
            reason,
        };
        let meta: Meta = serde_json::from_slice(&value).map_err(|e| corrupted(e.to_string()))?;
        if meta.format != META_FORMAT {
            return Err(corrupted(format!(
                "unknown metadata format {:?}",
                meta.format
            )));
        }
        Ok(meta)
    }

    fn key_kind(algorithm: Algorithm) -> Kind {
        match algorithm {
            Algorithm::EcdsaP256Sha256 => Kind::Private,
            Algorithm::HmacSha256 | Algorithm::Aes256Gcm => Kind::Secret,
        }
    }

    /// Checks that a key's secret object is sensitive and non-extractable, and that the token
    /// refuses to return its `CKA_VALUE`. [`KeyStoreError::KeyExtractable`] otherwise.
    pub fn verify_non_extractable(&self, key: &KeyHandle) -> Result<(), KeyStoreError> {
        check_home(&self.id, key)?;
        let mut state = self.lock()?;
        let object = self.require(&mut state, key.id(), Self::key_kind(key.algorithm()))?;
        self.check_object_non_extractable(&state, key.id(), object)
    }

    fn check_object_non_extractable(
        &self,
        state: &State,
        id: &KeyId,
        object: ObjectHandle,
    ) -> Result<(), KeyStoreError> {
        let extractable = || KeyStoreError::KeyExtractable {
            home: self.id.clone(),
            key: id.clone(),
        };
        let flags = state
            .session
            .get_attributes(
                object,
                &[AttributeType::Sensitive, AttributeType::Extractable],
            )
            .map_err(self.err("read key attributes"))?;
        let mut sensitive = false;
        let mut exportable = true;
        for attr in flags {
            match attr {
                Attribute::Sensitive(s) => sensitive = s,
                Attribute::Extractable(x) => exportable = x,
                _ => {}
            }
        }
        if !sensitive || exportable {
            return Err(extractable());
        }
        // Ask for the value itself: a conforming token answers CKR_ATTRIBUTE_SENSITIVE.
        let info = state
            .session
            .get_attribute_info(object, &[AttributeType::Value])
            .map_err(self.err("read key attributes"))?;
        if !matches!(info.as_slice(), [AttributeInfo::Sensitive]) {
            return Err(extractable());
        }
        let mut values = state
            .session
            .get_attributes(object, &[AttributeType::Value])
            .map_err(self.err("read key attributes"))?;
        if values.iter().any(|a| matches!(a, Attribute::Value(_))) {
            wipe(&mut values);
            return Err(extractable());
        }
        Ok(())
    }

    fn handle(&self, id: &KeyId, meta: &Meta) -> KeyHandle {
        KeyHandle::new(
            id.clone(),
            meta.role,
            meta.algorithm,
            self.id.clone(),
            Level::Hsm,
        )
    }

    fn create_meta(
        &self,
        state: &mut State,
        id: &KeyId,
        role: KeyRole,
        algorithm: Algorithm,
        origin: KeyOrigin,
        key_objects: &[ObjectHandle],
    ) -> Result<KeyHandle, KeyStoreError> {
        let meta = Meta {
            format: META_FORMAT.into(),
            role,
            algorithm,
            origin,
            created: to_unix(SystemTime::now()),
        };
        let value = serde_json::to_vec(&meta)
            .map_err(|e| KeyStoreError::backend(&self.id, "metadata", e))?;
        let created = state.session.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Application(APPLICATION.to_vec()),
            Attribute::Label(id.as_str().as_bytes().to_vec()),
            Attribute::Value(value),
        ]);
        if let Err(e) = created {
            for object in key_objects {
                let _ = state.session.destroy_object(*object);
            }
            return Err(self.err("store metadata")(e));
        }
        Ok(self.handle(id, &meta))
    }

    fn refuse_existing(&self, state: &mut State, id: &KeyId) -> Result<(), KeyStoreError> {
        let taken = self.find(state, id, Kind::Meta)?.is_some()
            || self.find(state, id, Kind::Private)?.is_some()
            || self.find(state, id, Kind::Secret)?.is_some();
        if taken {
            Err(KeyStoreError::KeyExists {
                home: self.id.clone(),
                key: id.clone(),
            })
        } else {
            Ok(())
        }
    }

    fn use_key(
        &self,
        key: &KeyHandle,
        algorithm: Algorithm,
        operation: &'static str,
    ) -> Result<(MutexGuard<'_, State>, ObjectHandle), KeyStoreError> {
        check_home(&self.id, key)?;
        check_algorithm(key, algorithm, operation)?;
        let mut state = self.lock()?;
        let object = self.require(&mut state, key.id(), Self::key_kind(algorithm))?;
        self.usage.touch(key.id());
        Ok((state, object))
    }
}

/// Common attributes of the objects holding secrets: token, private, sensitive, never
/// extractable.
fn secret_attributes(id: &KeyId) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Derive(false),
        Attribute::Label(id.as_str().as_bytes().to_vec()),
        Attribute::Id(id.as_str().as_bytes().to_vec()),
    ]
}

fn public_attributes(id: &KeyId) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(P256_OID_DER.to_vec()),
        Attribute::Label(id.as_str().as_bytes().to_vec()),
        Attribute::Id(id.as_str().as_bytes().to_vec()),
    ]
}

fn secret_key_usage(algorithm: Algorithm) -> (KeyType, Vec<Attribute>) {
    match algorithm {
        Algorithm::HmacSha256 => (
            KeyType::GENERIC_SECRET,
            vec![Attribute::Sign(true), Attribute::Verify(true)],
        ),
        _ => (
            KeyType::AES,
            vec![Attribute::Encrypt(true), Attribute::Decrypt(true)],
        ),
    }
}

/// Overwrites secret attribute values in a template before it is dropped.
fn wipe(template: &mut [Attribute]) {
    for attr in template {
        if let Attribute::Value(v) = attr {
            v.zeroize();
        }
    }
}

/// `CKA_EC_POINT` is a DER OCTET STRING around `04 || X || Y`; some tokens omit the wrapper.
fn unwrap_ec_point(raw: &[u8]) -> &[u8] {
    match raw {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
        other => other,
    }
}

impl KeyHome for Pkcs11Home {
    fn id(&self) -> &HomeId {
        &self.id
    }

    fn level(&self) -> Level {
        Level::Hsm
    }

    fn algorithms(&self) -> &'static [Algorithm] {
        ALGORITHMS
    }

    fn import_policy(&self) -> ImportPolicy {
        ImportPolicy::NonExtractableOnly
    }

    fn generate(
        &self,
        id: &KeyId,
        role: KeyRole,
        algorithm: Algorithm,
    ) -> Result<KeyHandle, KeyStoreError> {
        check_new_key(self, role, algorithm)?;
        let mut state = self.lock()?;
        self.refuse_existing(&mut state, id)?;
        let objects = match algorithm {
            Algorithm::EcdsaP256Sha256 => {
                let mut private = secret_attributes(id);
                private.push(Attribute::Sign(true));
                let (public, private) = state
                    .session
                    .generate_key_pair(&Mechanism::EccKeyPairGen, &public_attributes(id), &private)
                    .map_err(self.err("generate EC key pair"))?;
                vec![private, public]
            }
            Algorithm::HmacSha256 | Algorithm::Aes256Gcm => {
                let (key_type, usage) = secret_key_usage(algorithm);
                let mechanism = if algorithm == Algorithm::HmacSha256 {
                    Mechanism::GenericSecretKeyGen
                } else {
                    Mechanism::AesKeyGen
                };
                let mut template = secret_attributes(id);
                template.extend([
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(key_type),
                    Attribute::ValueLen(32.into()),
                ]);
                template.extend(usage);
                vec![state
                    .session
                    .generate_key(&mechanism, &template)
                    .map_err(self.err("generate secret key"))?]
            }
        };
        self.create_meta(
            &mut state,
            id,
            role,
            algorithm,
            KeyOrigin::Generated,
            &objects,
        )
    }

    fn import(
        &self,
        id: &KeyId,
        role: KeyRole,
        algorithm: Algorithm,
        material: SecretBytes,
    ) -> Result<KeyHandle, KeyStoreError> {
        check_new_key(self, role, algorithm)?;
        let invalid = |reason: String| KeyStoreError::InvalidKeyMaterial {
            key: id.clone(),
            algorithm,
            reason,
        };
        let mut state = self.lock()?;
        self.refuse_existing(&mut state, id)?;
        let objects = match algorithm {
            Algorithm::EcdsaP256Sha256 => {
                let key = crypto::ec_from_pkcs8(material.expose()).map_err(invalid)?;
                let ec = key.ec_key().map_err(|e| invalid(e.to_string()))?;
                let scalar = ec
                    .private_key()
                    .to_vec_padded(32)
                    .map_err(|e| invalid(e.to_string()))?;
                let mut ctx =
                    openssl::bn::BigNumContext::new().map_err(|e| invalid(e.to_string()))?;
                let point = ec
                    .public_key()
                    .to_bytes(
                        ec.group(),
                        openssl::ec::PointConversionForm::UNCOMPRESSED,
                        &mut ctx,
                    )
                    .map_err(|e| invalid(e.to_string()))?;
                let mut private = secret_attributes(id);
                private.extend([
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::EcParams(P256_OID_DER.to_vec()),
                    Attribute::Sign(true),
                    Attribute::Value(scalar),
                ]);
                let created = state.session.create_object(&private);
                wipe(&mut private);
                let private = created.map_err(self.err("import EC private key"))?;
                let mut public = public_attributes(id);
                let mut ec_point = vec![0x04, 0x41];
                ec_point.extend_from_slice(&point);
                public.extend([
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::EcPoint(ec_point),
                ]);
                match state.session.create_object(&public) {
                    Ok(public) => vec![private, public],
                    Err(e) => {
                        let _ = state.session.destroy_object(private);
                        return Err(self.err("import EC public key")(e));
                    }
                }
            }
            Algorithm::HmacSha256 | Algorithm::Aes256Gcm => {
                let len = material.len();
                let ok = if algorithm == Algorithm::HmacSha256 {
                    (32..=64).contains(&len)
                } else {
                    len == 32
                };
                if !ok {
                    return Err(invalid(format!("wrong key length {len}")));
                }
                let (key_type, usage) = secret_key_usage(algorithm);
                let mut template = secret_attributes(id);
                template.extend([
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(key_type),
                    Attribute::Value(material.expose().to_vec()),
                ]);
                template.extend(usage);
                let created = state.session.create_object(&template);
                wipe(&mut template);
                vec![created.map_err(self.err("import secret key"))?]
            }
        };
        self.create_meta(
            &mut state,
            id,
            role,
            algorithm,
            KeyOrigin::Imported,
            &objects,
        )
    }

    fn key(&self, id: &KeyId) -> Result<KeyHandle, KeyStoreError> {
        let mut state = self.lock()?;
        let meta = self.meta(&mut state, id)?;
        let object = self.require(&mut state, id, Self::key_kind(meta.algorithm))?;
        self.check_object_non_extractable(&state, id, object)?;
        Ok(self.handle(id, &meta))
    }

    fn list(&self) -> Result<Vec<KeyMetadata>, KeyStoreError> {
        let mut state = self.lock()?;
        let objects = state
            .session
            .find_objects(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Application(APPLICATION.to_vec()),
            ])
            .map_err(self.err("list keys"))?;
        let mut ids = Vec::new();
        for object in objects {
            let attrs = state
                .session
                .get_attributes(object, &[AttributeType::Label])
                .map_err(self.err("list keys"))?;
            for attr in attrs {
                if let Attribute::Label(label) = attr {
                    let label = String::from_utf8_lossy(&label).into_owned();
                    ids.push(KeyId::new(label)?);
                }
            }
        }
        let mut out = Vec::new();
        for id in ids {
            let meta = self.meta(&mut state, &id)?;
            out.push(KeyMetadata {
                handle: self.handle(&id, &meta),
                origin: meta.origin,
                created: from_unix(meta.created),
                last_used: self.usage.last_used(&id),
            });
        }
        out.sort_by(|a, b| a.handle.id().cmp(b.handle.id()));
        Ok(out)
    }

    fn delete(&self, key: &KeyHandle) -> Result<(), KeyStoreError> {
        check_home(&self.id, key)?;
        let mut state = self.lock()?;
        let mut any = false;
        for kind in [Kind::Private, Kind::Public, Kind::Secret, Kind::Meta] {
            if let Some(object) = self.find(&mut state, key.id(), kind)? {
                state
                    .session
                    .destroy_object(object)
                    .map_err(self.err("delete key"))?;
                state.objects.remove(&(key.id().clone(), kind));
                any = true;
            }
        }
        self.usage.forget(key.id());
        if any {
            Ok(())
        } else {
            Err(KeyStoreError::KeyNotFound {
                home: self.id.clone(),
                key: key.id().clone(),
            })
        }
    }

    fn public_key(&self, key: &KeyHandle) -> Result<PublicKeyDer, KeyStoreError> {
        check_home(&self.id, key)?;
        check_algorithm(key, Algorithm::EcdsaP256Sha256, "export a public key")?;
        let mut state = self.lock()?;
        let object = self.require(&mut state, key.id(), Kind::Public)?;
        let attrs = state
            .session
            .get_attributes(object, &[AttributeType::EcPoint])
            .map_err(self.err("read public key"))?;
        let point = attrs
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(p) => Some(p),
                _ => None,
            })
            .ok_or_else(|| {
                KeyStoreError::backend(&self.id, "read public key", "no CKA_EC_POINT")
            })?;
        crypto::spki_from_point(unwrap_ec_point(&point))
            .map_err(|e| KeyStoreError::backend(&self.id, "read public key", e))
    }

    fn sign_digest(&self, key: &KeyHandle, digest: &[u8; 32]) -> Result<Signature, KeyStoreError> {
        let (state, object) = self.use_key(key, Algorithm::EcdsaP256Sha256, "sign")?;
        // NOTE(keystore): SoftHSM 2.6 lacks CKM_ECDSA_SHA256, so the digest is computed in
        // software and the token signs it with CKM_ECDSA; the private key stays inside.
        let raw = state
            .session
            .sign(&Mechanism::Ecdsa, object, digest)
            .map_err(self.err("sign"))?;
        crypto::ecdsa_raw_to_der(&raw).map_err(|e| KeyStoreError::backend(&self.id, "sign", e))
    }

    fn hmac(&self, key: &KeyHandle, data: &[u8]) -> Result<Mac, KeyStoreError> {
        let (state, object) = self.use_key(key, Algorithm::HmacSha256, "compute an HMAC")?;
        let tag = state
            .session
            .sign(&Mechanism::Sha256Hmac, object, data)
            .map_err(self.err("HMAC"))?;
        Mac::from_slice(&tag)
            .ok_or_else(|| KeyStoreError::backend(&self.id, "HMAC", "tag is not 32 bytes"))
    }

    fn encrypt(
        &self,
        key: &KeyHandle,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Sealed, KeyStoreError> {
        let (state, object) = self.use_key(key, Algorithm::Aes256Gcm, "encrypt")?;
        let mut nonce: [u8; 12] = crypto::random()?;
        let params = GcmParams::new(&mut nonce, aad, 128.into()).map_err(self.err("encrypt"))?;
        let ct = state
            .session
            .encrypt(&Mechanism::AesGcm(params), object, plaintext)
            .map_err(self.err("encrypt"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(Sealed::from_bytes(out))
    }

    fn decrypt(
        &self,
        key: &KeyHandle,
        aad: &[u8],
        sealed: &Sealed,
    ) -> Result<SecretBytes, KeyStoreError> {
        let (state, object) = self.use_key(key, Algorithm::Aes256Gcm, "decrypt")?;
        let failed = || KeyStoreError::DecryptFailed {
            key: key.id().clone(),
        };
        if sealed.parts().is_none() {
            return Err(failed());
        }
        let (nonce, body) = sealed.as_bytes().split_at(Sealed::NONCE_LEN);
        let mut nonce = nonce.to_vec();
        let params = GcmParams::new(&mut nonce, aad, 128.into()).map_err(self.err("decrypt"))?;
        match state
            .session
            .decrypt(&Mechanism::AesGcm(params), object, body)
        {
            Ok(plain) => Ok(SecretBytes::new(plain)),
            // NOTE(keystore): SoftHSM 2.6 reports a GCM tag mismatch as CKR_GENERAL_ERROR
            // rather than CKR_ENCRYPTED_DATA_INVALID; in C_Decrypt both mean "does not open".
            Err(P11Error::Pkcs11(
                RvError::GeneralError
                | RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::DataInvalid
                | RvError::DataLenRange,
                _,
            )) => Err(failed()),
            Err(e) => Err(self.err("decrypt")(e)),
        }
    }
}
