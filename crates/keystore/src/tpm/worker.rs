//! The TPM context lives on one thread: a TSS context is not `Send`, and a TPM executes one
//! command at a time anyway. Homes send jobs to the thread and wait for the answer.

use crate::crypto;
use crate::types::KeyId;
use std::str::FromStr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::handles::KeyHandle as TpmKeyHandle;
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Auth, Digest, EccPoint, EccScheme, HashScheme, HashcheckTicket, KeyedHashScheme, MaxBuffer,
    Private, Public, PublicBuilder, PublicEccParametersBuilder, PublicKeyedHashParameters,
    SignatureScheme, SymmetricDefinitionObject,
};
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use tss_esapi::{Context, TctiNameConf};

/// Why a TPM command failed, sorted for the caller's error mapping.
#[derive(Debug)]
pub(crate) enum TpmFailure {
    /// The TPM (or the path to it) did not answer: TCTI or ESAPI layer errors.
    Unreachable(String),
    /// The TPM refused the wrapped key or its authorisation: the blob or metadata was altered.
    Rejected(String),
    /// Any other TPM error.
    Other(String),
}

fn classify(e: tss_esapi::Error) -> TpmFailure {
    let text = e.to_string();
    match e {
        tss_esapi::Error::WrapperError(_) => TpmFailure::Other(text),
        tss_esapi::Error::Tss2Error(rc) => match rc.kind() {
            Some(
                Tss2ResponseCodeKind::Integrity
                | Tss2ResponseCodeKind::AuthFail
                | Tss2ResponseCodeKind::BadAuth
                | Tss2ResponseCodeKind::Size
                | Tss2ResponseCodeKind::Value
                | Tss2ResponseCodeKind::Key
                | Tss2ResponseCodeKind::KeySize
                | Tss2ResponseCodeKind::Binding
                | Tss2ResponseCodeKind::Type
                | Tss2ResponseCodeKind::Attributes
                | Tss2ResponseCodeKind::Insufficient,
            ) => TpmFailure::Rejected(text),
            // Response codes the TPM itself did not produce (TCTI I/O errors, ESAPI state
            // errors after a lost connection) have no TPM kind.
            None => TpmFailure::Unreachable(text),
            Some(_) => TpmFailure::Other(text),
        },
    }
}

pub(crate) type TpmResult<T> = Result<T, TpmFailure>;

/// The TPM state owned by the worker thread.
pub(crate) struct Tpm {
    ctx: Context,
    primary: TpmKeyHandle,
    /// The last key loaded, kept to save a load on repeated use (swtpm holds 3 objects).
    loaded: Option<(KeyId, TpmKeyHandle)>,
}

/// A key as stored: the TPM's public area and wrapped private blob, and the auth value that
/// binds the metadata.
pub(crate) struct Blob {
    pub(crate) public: Public,
    pub(crate) private: Private,
    pub(crate) auth: [u8; 32],
}

/// Attributes of our TPM keys: bound to this TPM and parent, generated inside, unrestricted
/// signing (ECDSA or HMAC).
fn object_attributes() -> tss_esapi::Result<tss_esapi::attributes::ObjectAttributes> {
    ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_sign_encrypt(true)
        .with_decrypt(false)
        .with_restricted(false)
        // The auth value is a metadata binding, not a password: failures must not count
        // towards the TPM's dictionary-attack lockout.
        .with_no_da(true)
        .build()
}

pub(crate) fn ecdsa_template() -> tss_esapi::Result<Public> {
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(object_attributes()?)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_unrestricted_signing_key(
                EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
                EccCurve::NistP256,
            )
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

pub(crate) fn hmac_template() -> tss_esapi::Result<Public> {
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(object_attributes()?)
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(
            KeyedHashScheme::HMAC_SHA_256,
        ))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
}

fn storage_template() -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_restricted(true)
        .with_decrypt(true)
        .with_no_da(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_restricted_decryption_key(
                SymmetricDefinitionObject::AES_128_CFB,
                EccCurve::NistP256,
            )
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

impl Tpm {
    /// Connects and (re)creates the storage primary key under the owner hierarchy. The
    /// primary is derived from the owner seed, so it is the same key every time and the
    /// wrapped blobs stay loadable across restarts.
    fn connect(tcti: &str) -> Result<Self, String> {
        let conf = TctiNameConf::from_str(tcti).map_err(|e| format!("bad TCTI string: {e}"))?;
        let mut ctx = Context::new(conf).map_err(|e| e.to_string())?;
        ctx.set_sessions((Some(AuthSession::Password), None, None));
        let template = storage_template().map_err(|e| e.to_string())?;
        let primary = ctx
            .create_primary(Hierarchy::Owner, template, None, None, None, None)
            .map_err(|e| format!("cannot create the storage primary key: {e}"))?
            .key_handle;
        Ok(Self {
            ctx,
            primary,
            loaded: None,
        })
    }

    pub(crate) fn create(
        &mut self,
        template: Public,
        auth: &[u8; 32],
    ) -> TpmResult<(Public, Private)> {
        let auth = Auth::try_from(auth.to_vec()).map_err(classify)?;
        let created = self
            .ctx
            .create(self.primary, template, Some(auth), None, None, None)
            .map_err(classify)?;
        Ok((created.out_public, created.out_private))
    }

    fn flush_loaded(&mut self) {
        if let Some((_, handle)) = self.loaded.take() {
            let _ = self.ctx.flush_context(handle.into());
        }
    }

    /// Forgets a cached load (after delete).
    pub(crate) fn forget(&mut self, id: &KeyId) {
        if self.loaded.as_ref().is_some_and(|(loaded, _)| loaded == id) {
            self.flush_loaded();
        }
    }

    fn load(&mut self, id: &KeyId, blob: &Blob) -> TpmResult<TpmKeyHandle> {
        if let Some((loaded, handle)) = &self.loaded {
            if loaded == id {
                return Ok(*handle);
            }
        }
        self.flush_loaded();
        let handle = self
            .ctx
            .load(self.primary, blob.private.clone(), blob.public.clone())
            .map_err(classify)?;
        let auth = Auth::try_from(blob.auth.to_vec()).map_err(classify)?;
        if let Err(e) = self.ctx.tr_set_auth(handle.into(), auth) {
            let _ = self.ctx.flush_context(handle.into());
            return Err(classify(e));
        }
        self.loaded = Some((id.clone(), handle));
        Ok(handle)
    }

    /// Runs `op` on the loaded key; on failure the cached load is dropped.
    fn with_key<T>(
        &mut self,
        id: &KeyId,
        blob: &Blob,
        op: impl FnOnce(&mut Context, TpmKeyHandle) -> tss_esapi::Result<T>,
    ) -> TpmResult<T> {
        let handle = self.load(id, blob)?;
        let result = op(&mut self.ctx, handle).map_err(classify);
        if result.is_err() {
            self.flush_loaded();
        }
        result
    }

    /// Loads the key to check that the TPM accepts the blob (and, by a use, its auth binding).
    pub(crate) fn probe(&mut self, id: &KeyId, blob: &Blob, ecdsa: bool) -> TpmResult<()> {
        if ecdsa {
            self.sign(id, blob, &[0u8; 32]).map(|_| ())
        } else {
            self.hmac(id, blob, b"").map(|_| ())
        }
    }

    /// ECDSA over a digest; `(r, s)` big-endian.
    pub(crate) fn sign(
        &mut self,
        id: &KeyId,
        blob: &Blob,
        digest: &[u8; 32],
    ) -> TpmResult<(Vec<u8>, Vec<u8>)> {
        let digest = Digest::try_from(digest.to_vec()).map_err(classify)?;
        let signature = self.with_key(id, blob, |ctx, handle| {
            let validation = HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
                tag: TPM2_ST_HASHCHECK,
                hierarchy: TPM2_RH_NULL,
                digest: Default::default(),
            })?;
            ctx.sign(handle, digest, SignatureScheme::Null, validation)
        })?;
        match signature {
            tss_esapi::structures::Signature::EcDsa(sig) => Ok((
                sig.signature_r().value().to_vec(),
                sig.signature_s().value().to_vec(),
            )),
            _ => Err(TpmFailure::Other(
                "the TPM returned a non-ECDSA signature".into(),
            )),
        }
    }

    /// HMAC-SHA-256 with a keyed-hash object (input at most 1024 bytes).
    pub(crate) fn hmac(&mut self, id: &KeyId, blob: &Blob, data: &[u8]) -> TpmResult<[u8; 32]> {
        let buffer = MaxBuffer::try_from(data.to_vec()).map_err(classify)?;
        let tag = self.with_key(id, blob, |ctx, handle| {
            ctx.hmac(handle.into(), buffer, HashingAlgorithm::Sha256)
        })?;
        tag.value()
            .try_into()
            .map_err(|_| TpmFailure::Other("HMAC is not 32 bytes".into()))
    }
}

type Job = Box<dyn FnOnce(&mut Tpm) + Send>;

/// The handle to the worker thread.
pub(crate) struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread and connects; `Err` carries why the TPM cannot be reached.
    pub(crate) fn start(tcti: &str) -> Result<Self, String> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let tcti = tcti.to_owned();
        let thread = std::thread::Builder::new()
            .name("keystore-tpm".into())
            .spawn(move || match Tpm::connect(&tcti) {
                Ok(mut tpm) => {
                    let _ = ready_tx.send(Ok(()));
                    for job in queue {
                        job(&mut tpm);
                    }
                    tpm.flush_loaded();
                    let _ = tpm.ctx.flush_context(tpm.primary.into());
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| e.to_string())?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                jobs: Some(jobs),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err("the TPM thread stopped".into()),
        }
    }

    /// Runs `f` on the TPM thread and waits for its result.
    pub(crate) fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Tpm) -> TpmResult<R> + Send + 'static,
    ) -> TpmResult<R> {
        let gone = || TpmFailure::Unreachable("the TPM thread stopped".into());
        let (tx, rx) = mpsc::sync_channel(1);
        let jobs = self.jobs.as_ref().ok_or_else(gone)?;
        jobs.send(Box::new(move |tpm| {
            let _ = tx.send(f(tpm));
        }))
        .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The auth value that binds a key's metadata to its TPM object.
pub(crate) fn binding(parts: &[&str]) -> [u8; 32] {
    let mut text = String::from("secure-cse tpm key binding/1");
    for part in parts {
        text.push('\n');
        text.push_str(part);
    }
    crypto::sha256(text.as_bytes())
}
