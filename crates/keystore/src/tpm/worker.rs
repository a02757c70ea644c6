//! The TPM context lives on one thread: a TSS context is not `Send`, and a TPM executes one
//! command at a time anyway. Homes send jobs to the thread and wait for the answer.

use crate::crypto;
use crate::types::KeyId;
use std::str::FromStr;
use std::sync::{mpsc, Mutex};
use std::thread::JoinHandle;
use tss_esapi::attributes::{NvIndexAttributesBuilder, ObjectAttributesBuilder};
use tss_esapi::constants::response_code::{Tss2ResponseCode, Tss2ResponseCodeKind};
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::constants::NvIndexType;
use tss_esapi::handles::{KeyHandle as TpmKeyHandle, NvIndexHandle, NvIndexTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::{Hierarchy, NvAuth, Provision};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Auth, Digest, EccPoint, EccScheme, HashScheme, HashcheckTicket, KeyedHashScheme, MaxBuffer,
    NvPublicBuilder, Private, Public, PublicBuilder, PublicEccParametersBuilder,
    PublicKeyedHashParameters, SignatureScheme, SymmetricDefinitionObject,
};
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use tss_esapi::{Context, TctiNameConf};

/// Why a TPM command failed, sorted for the caller's error mapping.
#[derive(Debug)]
pub(crate) enum TpmFailure {
    /// No answer from the TPM: the TCTI or the resource manager failed (connection refused
    /// or lost, device missing).
    Unreachable(String),
    /// The TPM refused the wrapped key or its authorisation: the blob or metadata was altered.
    Rejected(String),
    /// The TPM answered with another error: its response code and what it means.
    Answered(String),
    /// The home was closed: the program is stopping.
    Closed,
    /// A failure in this process (the TSS library's checks of its arguments).
    Other(String),
}

/// Bits 16-23 of a TSS2 response code name the layer that produced it.
const LAYER_SHIFT: u32 = 16;
/// The TPM itself.
const LAYER_TPM: u32 = 0;
/// The TCTI (the transport to the TPM: socket, device).
const LAYER_TCTI: u32 = 10;
/// The resource manager (tpm2-abrmd), about itself.
const LAYER_RESMGR: u32 = 11;
/// The resource manager, passing on what the TPM answered.
const LAYER_RESMGR_TPM: u32 = 12;

/// The transport's own codes (the low 16 bits of a TCTI-layer code).
const TSS2_BASE_RC_NO_CONNECTION: u32 = 8;
const TSS2_BASE_RC_TRY_AGAIN: u32 = 9;
const TSS2_BASE_RC_IO_ERROR: u32 = 10;

/// The raw response code, layer included. tss-esapi keeps it private; its format-zero and
/// format-one codes print it as `... 0x<hex>` (checked by a test).
fn raw_code(rc: Tss2ResponseCode) -> Option<u32> {
    let text = match rc {
        Tss2ResponseCode::Success => return Some(0),
        Tss2ResponseCode::FormatZero(code) => code.to_string(),
        Tss2ResponseCode::FormatOne(code) => code.to_string(),
    };
    u32::from_str_radix(text.rsplit("0x").next()?, 16).ok()
}

/// What the TPM answered, for an operator: the code, its meaning, and the remedy for the
/// answers that have one.
fn describe(code: u32, rc: Tss2ResponseCode) -> String {
    let mut text = format!("the TPM answered {code:#x} ({rc})");
    match rc.kind() {
        Some(Tss2ResponseCodeKind::ObjectMemory | Tss2ResponseCodeKind::ObjectHandles) => text
            .push_str(
                ": its object slots are taken by objects that another program left loaded, \
                 or a process killed before it could flush them. Connect through a resource \
                 manager (device:/dev/tpmrm0 or tabrmd:), which flushes a client's objects \
                 when it goes, or flush them with `tpm2_flushcontext --transient-object`",
            ),
        Some(Tss2ResponseCodeKind::Initialize) => text.push_str(
            ": the TPM has not been started up (swtpm: start it with \
             --flags not-need-init,startup-clear)",
        ),
        Some(Tss2ResponseCodeKind::Lockout) => {
            text.push_str(": the TPM is in dictionary-attack lockout")
        }
        _ => {}
    }
    text
}

fn classify(e: tss_esapi::Error) -> TpmFailure {
    let rc = match e {
        tss_esapi::Error::WrapperError(kind) => return TpmFailure::Other(kind.to_string()),
        tss_esapi::Error::Tss2Error(rc) => rc,
    };
    let Some(code) = raw_code(rc) else {
        return TpmFailure::Other(rc.to_string());
    };
    match code >> LAYER_SHIFT & 0xff {
        LAYER_TPM | LAYER_RESMGR_TPM => match rc.kind() {
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
            ) => TpmFailure::Rejected(describe(code, rc)),
            _ => TpmFailure::Answered(describe(code, rc)),
        },
        LAYER_TCTI | LAYER_RESMGR => TpmFailure::Unreachable(format!(
            "no answer from the TPM: {} (TSS response code {code:#x})",
            match code & 0xffff {
                TSS2_BASE_RC_NO_CONNECTION => "no connection",
                TSS2_BASE_RC_IO_ERROR => "connection refused or lost",
                TSS2_BASE_RC_TRY_AGAIN => "busy, try again",
                _ => "transport failure",
            }
        )),
        // ESAPI, SAPI and the marshalling layer: this process's TSS library.
        layer => TpmFailure::Other(format!(
            "the TSS library (layer {layer}) failed with response code {code:#x}"
        )),
    }
}

pub(crate) type TpmResult<T> = Result<T, TpmFailure>;

/// The TPM state owned by the worker thread.
pub(crate) struct Tpm {
    ctx: Context,
    primary: TpmKeyHandle,
    /// The last key loaded, kept to save a load on repeated use (swtpm holds 3 objects).
    loaded: Option<(KeyId, TpmKeyHandle)>,
    /// ESYS handles of the NV indices used, by index.
    nv: std::collections::HashMap<u32, NvIndexHandle>,
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
    fn connect(tcti: &str) -> TpmResult<Self> {
        let conf = TctiNameConf::from_str(tcti)
            .map_err(|e| TpmFailure::Unreachable(format!("bad TCTI string {tcti:?}: {e}")))?;
        // Nothing is asked of the TPM yet: any failure here is the way to it.
        let mut ctx = Context::new(conf).map_err(|e| match classify(e) {
            TpmFailure::Other(reason) | TpmFailure::Answered(reason) => {
                TpmFailure::Unreachable(format!("cannot connect: {reason}"))
            }
            other => other,
        })?;
        ctx.set_sessions((Some(AuthSession::Password), None, None));
        let template = storage_template().map_err(classify)?;
        let primary = ctx
            .create_primary(Hierarchy::Owner, template, None, None, None, None)
            .map_err(classify)?
            .key_handle;
        Ok(Self {
            ctx,
            primary,
            loaded: None,
            nv: std::collections::HashMap::new(),
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

/// Whether a TPM answer is the response code `kind` (TPM layer, or passed on by a resource
/// manager).
fn answered(e: &tss_esapi::Error, kind: Tss2ResponseCodeKind) -> bool {
    match e {
        tss_esapi::Error::Tss2Error(rc) => {
            raw_code(*rc).is_some_and(|code| {
                matches!(code >> LAYER_SHIFT & 0xff, LAYER_TPM | LAYER_RESMGR_TPM)
            }) && rc.kind() == Some(kind)
        }
        tss_esapi::Error::WrapperError(_) => false,
    }
}

/// NV counters: an index of type counter, read and incremented with its own (empty)
/// authorisation, so day-to-day use needs no owner authorisation; defining one does.
impl Tpm {
    /// The ESYS handle of the NV index `index`, or `None` when the TPM has no such index.
    fn nv_handle(&mut self, index: u32) -> TpmResult<Option<NvIndexHandle>> {
        if let Some(handle) = self.nv.get(&index) {
            return Ok(Some(*handle));
        }
        // Asked first, so that a missing index is an answer rather than a failed lookup
        // (which the TSS library would also log as an error).
        let (listed, _) = self
            .ctx
            .execute_without_session(|ctx| {
                ctx.get_capability(tss_esapi::constants::CapabilityType::Handles, index, 1)
            })
            .map_err(classify)?;
        let defined = match listed {
            tss_esapi::structures::CapabilityData::Handles(handles) => handles
                .into_inner()
                .first()
                .is_some_and(|h| u32::from(*h) == index),
            _ => false,
        };
        if !defined {
            return Ok(None);
        }
        let tpm_handle = NvIndexTpmHandle::new(index).map_err(classify)?;
        // Reading an index's public area takes no authorisation, and the password session the
        // context carries for key use must not go with it: the TPM refuses the command, and
        // TSS 3.2's Esys_TR_FromTPMPublic crashes on it.
        let found = self
            .ctx
            .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::NvIndex(tpm_handle)));
        match found {
            Ok(object) => {
                let handle = NvIndexHandle::from(object);
                self.nv.insert(index, handle);
                Ok(Some(handle))
            }
            Err(e) if answered(&e, Tss2ResponseCodeKind::Handle) => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }

    /// Refuses an index that is not a counter the CSE can read and increment.
    fn check_counter(&mut self, handle: NvIndexHandle) -> TpmResult<()> {
        let (public, _) = self
            .ctx
            .execute_without_session(|ctx| ctx.nv_read_public(handle))
            .map_err(classify)?;
        let attributes = public.attributes();
        let counter = attributes
            .index_type()
            .is_ok_and(|t| t == NvIndexType::Counter);
        if !counter || !attributes.auth_read() || !attributes.auth_write() {
            return Err(TpmFailure::Other(
                "the NV index exists but is not a counter that its own authorisation reads and \
                 increments"
                    .into(),
            ));
        }
        if attributes.orderly() {
            return Err(TpmFailure::Other(
                "the NV counter is orderly: after a power loss the TPM may move it ahead, \
                 which would make an intact checkpoint look rewound"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The counter's value; `None` when the index does not exist, or exists but was never
    /// incremented (then `Some(None)` is not distinguished: the caller increments it).
    pub(crate) fn nv_counter_read(&mut self, index: u32) -> TpmResult<Option<NvCounterState>> {
        let Some(handle) = self.nv_handle(index)? else {
            return Ok(None);
        };
        self.check_counter(handle)?;
        match self.ctx.nv_read(NvAuth::NvIndex(handle), handle, 8, 0) {
            Ok(data) => Ok(Some(NvCounterState::Value(counter_value(data.value())?))),
            Err(e) if answered(&e, Tss2ResponseCodeKind::NvUninitialized) => {
                Ok(Some(NvCounterState::Unwritten))
            }
            Err(e) => Err(classify(e)),
        }
    }

    /// Defines the counter index (owner authorisation) and increments it once, which gives
    /// it its first value: above every value any counter of this TPM has had.
    pub(crate) fn nv_counter_define(&mut self, index: u32) -> TpmResult<u64> {
        let attributes = NvIndexAttributesBuilder::new()
            .with_nv_index_type(NvIndexType::Counter)
            .with_auth_read(true)
            .with_auth_write(true)
            .with_owner_read(true)
            .with_no_da(true)
            .build()
            .map_err(classify)?;
        let public = NvPublicBuilder::new()
            .with_nv_index(NvIndexTpmHandle::new(index).map_err(classify)?)
            .with_index_name_algorithm(HashingAlgorithm::Sha256)
            .with_index_attributes(attributes)
            .with_data_area_size(8)
            .build()
            .map_err(classify)?;
        let handle = self
            .ctx
            .nv_define_space(Provision::Owner, None, public)
            .map_err(classify)?;
        self.nv.insert(index, handle);
        self.nv_counter_increment(index)
    }

    /// Adds one to the counter and returns the new value.
    pub(crate) fn nv_counter_increment(&mut self, index: u32) -> TpmResult<u64> {
        let handle = self
            .nv_handle(index)?
            .ok_or_else(|| TpmFailure::Other("the NV index does not exist".into()))?;
        self.ctx
            .nv_increment(NvAuth::NvIndex(handle), handle)
            .map_err(classify)?;
        let data = self
            .ctx
            .nv_read(NvAuth::NvIndex(handle), handle, 8, 0)
            .map_err(classify)?;
        counter_value(data.value())
    }

    /// Releases the ESYS objects of the NV indices used (no TPM slot is held by them).
    fn close_nv(&mut self) {
        for (_, handle) in self.nv.drain() {
            let mut object = handle.into();
            let _ = self.ctx.tr_close(&mut object);
        }
    }
}

/// What an NV counter index holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NvCounterState {
    /// Defined but never incremented: it has no value yet.
    Unwritten,
    /// Its value.
    Value(u64),
}

fn counter_value(bytes: &[u8]) -> TpmResult<u64> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| TpmFailure::Other("an NV counter is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

type Job = Box<dyn FnOnce(&mut Tpm) + Send>;

/// The handle to the worker thread: its job queue and the thread, until closed.
pub(crate) struct Worker {
    open: Mutex<Option<(mpsc::Sender<Job>, JoinHandle<()>)>>,
}

impl Worker {
    /// Starts the thread, connects and creates the storage primary key. On failure nothing
    /// is left loaded in the TPM.
    pub(crate) fn start(tcti: &str) -> TpmResult<Self> {
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
                    // The queue ends when the home is closed or dropped: give the TPM its
                    // object slots back.
                    tpm.flush_loaded();
                    tpm.close_nv();
                    let _ = tpm.ctx.flush_context(tpm.primary.into());
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| TpmFailure::Other(format!("cannot start the TPM thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                open: Mutex::new(Some((jobs, thread))),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(TpmFailure::Other("the TPM thread stopped".into())),
        }
    }

    /// Runs `f` on the TPM thread and waits for its result.
    pub(crate) fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Tpm) -> TpmResult<R> + Send + 'static,
    ) -> TpmResult<R> {
        let gone = || TpmFailure::Other("the TPM thread stopped".into());
        let jobs = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .map(|(jobs, _)| jobs.clone())
            .ok_or(TpmFailure::Closed)?;
        let (tx, rx) = mpsc::sync_channel(1);
        jobs.send(Box::new(move |tpm| {
            let _ = tx.send(f(tpm));
        }))
        .map_err(|_| gone())?;
        drop(jobs);
        rx.recv().map_err(|_| gone())?
    }

    /// Ends the queue and waits for the thread, which flushes the loaded key and the
    /// primary. Jobs already queued run first; later calls fail with [`TpmFailure::Closed`].
    pub(crate) fn close(&self) {
        let open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some((jobs, thread)) = open {
            drop(jobs);
            let _ = thread.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.close();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: u32) -> TpmFailure {
        classify(tss_esapi::Error::Tss2Error(Tss2ResponseCode::from(code)))
    }

    #[test]
    fn the_raw_code_keeps_its_layer() {
        for code in [0x902, 0x9a2, 0xa000a, 0x7000b, 0xc0902] {
            assert_eq!(raw_code(Tss2ResponseCode::from(code)), Some(code));
        }
    }

    #[test]
    fn answers_of_the_tpm_are_told_apart_from_no_answer() {
        // TPM_RC_OBJECT_MEMORY, from the TPM and through a resource manager.
        for code in [0x902, 0xc0902] {
            match failure(code) {
                TpmFailure::Answered(text) => {
                    assert!(text.contains("out of memory for object contexts"), "{text}");
                    assert!(text.contains("tpm2_flushcontext"), "{text}");
                }
                other => panic!("{code:#x}: {other:?}"),
            }
        }
        // TPM_RC_INITIALIZE: the TPM answered, it was not started.
        assert!(matches!(failure(0x100), TpmFailure::Answered(t) if t.contains("startup-clear")));
        // TPM_RC_INTEGRITY (session 1): a wrapped blob or binding that was altered.
        assert!(matches!(failure(0x9a2), TpmFailure::Rejected(_)));
        // The TCTI's I/O error and "no connection": nobody answered.
        assert!(
            matches!(failure(0xa000a), TpmFailure::Unreachable(t) if t.contains("refused or lost"))
        );
        assert!(matches!(failure(0xa0008), TpmFailure::Unreachable(_)));
        // ESAPI's own failures are neither.
        assert!(matches!(failure(0x7000b), TpmFailure::Other(_)));
    }
}
