//! An OpenSSL private key whose ECDSA signatures are computed elsewhere: in a key home (a TPM,
//! a PKCS#11 token, the encrypted software store), so that a TLS server can use a key it never
//! holds.
//!
//! # How
//!
//! [`remote_ec_key`] builds an `EC_KEY` that carries only the public point and a custom
//! `EC_KEY_METHOD` whose sign callbacks (`sign`, `sign_sig`) hand the digest to a
//! [`DigestSigner`] and return its signature. OpenSSL 3 treats an EC key with a non-default
//! method as a *foreign* key and routes every signature through the legacy method, which is
//! how PKCS#11 engines work; TLS 1.2 (ECDHE-ECDSA) and TLS 1.3 handshakes therefore ask the
//! signer for their `CertificateVerify`/`ServerKeyExchange` signatures. The key is wrapped in
//! an ordinary `PKey<Private>` for `SslContextBuilder::set_private_key`.
//!
//! The signer travels in the `EC_KEY`'s ex_data (an `Arc`, dropped by OpenSSL's free callback
//! when the last reference to the key goes, cloned by its dup callback).
//!
//! # Failure
//!
//! A signer that fails ([`SignRefused`]) or panics makes the signature operation fail, and
//! with it the handshake (the client gets an alert); nothing unwinds into OpenSSL, and the
//! key stays usable for the next handshake. Digests of any TLS hash are accepted: ECDSA over
//! P-256 uses the leftmost 256 bits of a longer digest, and a shorter one as a number, so the
//! signer always receives the 32 bytes that P-256 signs.
//!
//! # Unsafe code
//!
//! This crate is the only place of the workspace with `unsafe` code: the `EC_KEY_METHOD`
//! functions are not in the safe `openssl` crate, so they are declared here (`ffi`), as is
//! the session lifetime setter of [`session`]. Every
//! unsafe block says why it is sound.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod session;

use foreign_types::ForeignType;
use openssl::ec::EcKey;
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use std::ffi::{c_int, c_long, c_uchar, c_uint, c_void};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

/// Computes ECDSA P-256 signatures inside a key home. Called from inside OpenSSL, on the
/// thread that runs the handshake; it may block (a TPM signature takes milliseconds).
pub trait DigestSigner: Send + Sync + 'static {
    /// Signs the 32-byte value P-256 signs (a SHA-256 digest, or the normalised digest of
    /// another hash) and returns a DER `Ecdsa-Sig-Value`.
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, SignRefused>;
}

/// A signer could not sign (home unreachable, key gone, ...). The signer logs the reason; the
/// handshake fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignRefused;

/// Why a remote key cannot be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum RemoteKeyError {
    /// The public key is not SubjectPublicKeyInfo DER of an EC key.
    NotAnEcKey,
    /// The public key is on another curve than P-256 (the only one the homes offer).
    NotP256,
    /// OpenSSL refused a step (memory, mostly); the message names the step.
    Library {
        /// The step.
        what: &'static str,
        /// OpenSSL's errors.
        source: ErrorStack,
    },
}

impl fmt::Display for RemoteKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnEcKey => f.write_str("the public key is not an EC SubjectPublicKeyInfo"),
            Self::NotP256 => f.write_str("the public key is not on P-256"),
            Self::Library { what, source } => write!(f, "OpenSSL refused {what}: {source}"),
        }
    }
}

impl std::error::Error for RemoteKeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Library { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn library(what: &'static str) -> impl FnOnce(ErrorStack) -> RemoteKeyError {
    move |source| RemoteKeyError::Library { what, source }
}

/// Builds a private key for OpenSSL from a P-256 public key (SubjectPublicKeyInfo DER) whose
/// signatures `signer` computes. The key holds no private scalar: anything other than ECDSA
/// signing (ECDH with it, exporting it) fails.
pub fn remote_ec_key(
    public_spki_der: &[u8],
    signer: Arc<dyn DigestSigner>,
) -> Result<PKey<Private>, RemoteKeyError> {
    let public = PKey::public_key_from_der(public_spki_der)
        .and_then(|k| k.ec_key())
        .map_err(|_| RemoteKeyError::NotAnEcKey)?;
    if public.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
        return Err(RemoteKeyError::NotP256);
    }
    public
        .check_key()
        .map_err(library("the public key (not on the curve)"))?;
    let method = method()?;
    let index = ex_index()?;
    // A fresh EC_KEY of our own, so that no other reference to it exists while it changes.
    let key = EcKey::from_public_key(public.group(), public.public_key())
        .map_err(library("a copy of the public key"))?;
    let raw = key.as_ptr();
    let boxed: *mut Arc<dyn DigestSigner> = Box::into_raw(Box::new(signer));
    // SAFETY: `raw` is a valid EC_KEY owned by `key`; `method.0` is a valid, never freed
    // EC_KEY_METHOD; `index` is an ex_data index of the EC_KEY class. EC_KEY_set_method runs
    // the default `init` (none) and keeps the pointer. On success the ex_data slot owns
    // `boxed` and our free callback releases it with the key.
    let ok = unsafe {
        ffi::EC_KEY_set_method(raw, method.0) == 1
            && ffi::EC_KEY_set_ex_data(raw, index, boxed.cast()) == 1
    };
    if !ok {
        // SAFETY: the ex_data slot did not take `boxed` (set failed, or set_method failed
        // before it), so we still own it. If set_method succeeded and set_ex_data failed the
        // slot is empty; the free callback ignores a null slot.
        drop(unsafe { Box::from_raw(boxed) });
        return Err(RemoteKeyError::Library {
            what: "the remote signing method",
            source: ErrorStack::get(),
        });
    }
    // SAFETY: `key` is an `EcKey<Public>`; the type parameter is only a marker. We give up
    // `key`'s ownership (forget) and take the same pointer as an `EcKey<Private>`, which
    // frees it exactly once. The key does sign (through our method), which is all that
    // `Private` promises OpenSSL callers here.
    let key: EcKey<Private> = unsafe {
        std::mem::forget(key);
        EcKey::from_ptr(raw)
    };
    // EVP_PKEY_assign sees the non-default method and marks the key foreign (legacy path).
    PKey::from_ec_key(key).map_err(library("the EVP_PKEY of the remote key"))
}

/// Normalises a digest to what ECDSA over P-256 signs: the leftmost 32 bytes of a longer one,
/// a shorter one left-padded with zeros (the same integer). `None` for an empty or absurdly
/// long input.
fn p256_digest(digest: &[u8]) -> Option<[u8; 32]> {
    if digest.is_empty() || digest.len() > 64 {
        return None;
    }
    let mut out = [0u8; 32];
    if digest.len() >= 32 {
        out.copy_from_slice(&digest[..32]);
    } else {
        out[32 - digest.len()..].copy_from_slice(digest);
    }
    Some(out)
}

/// Runs the signer of `eckey` on a digest, never unwinding: `None` on any failure.
///
/// # Safety
///
/// `eckey` must be a valid EC_KEY; `dgst` must point to `dlen` readable bytes (or be null).
unsafe fn sign_with(
    eckey: *const ffi::EC_KEY,
    dgst: *const c_uchar,
    dlen: c_int,
) -> Option<Vec<u8>> {
    let index = *EX_INDEX.get()?.as_ref().ok()?;
    let len = usize::try_from(dlen).ok()?;
    if dgst.is_null() || eckey.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees `dgst` points to `dlen` bytes for the duration of the call.
    let digest = unsafe { std::slice::from_raw_parts(dgst, len) };
    // SAFETY: `eckey` is valid; the slot holds either null or a `Box<Arc<dyn DigestSigner>>`
    // pointer that lives as long as the key, which outlives this call.
    let signer = unsafe { ffi::EC_KEY_get_ex_data(eckey, index) } as *const Arc<dyn DigestSigner>;
    if signer.is_null() {
        return None;
    }
    // SAFETY: non-null and owned by the key's ex_data (see above); we only borrow it.
    let signer: Arc<dyn DigestSigner> = unsafe { (*signer).clone() };
    let digest = p256_digest(digest)?;
    catch_unwind(AssertUnwindSafe(|| signer.sign_digest(&digest)))
        .ok()?
        .ok()
}

/// `EC_KEY_METHOD` sign: the DER signature into `sig` (at least `ECDSA_size` bytes).
unsafe extern "C" fn sign_cb(
    _type: c_int,
    dgst: *const c_uchar,
    dlen: c_int,
    sig: *mut c_uchar,
    siglen: *mut c_uint,
    _kinv: *const ffi::BIGNUM,
    _r: *const ffi::BIGNUM,
    eckey: *mut ffi::EC_KEY,
) -> c_int {
    if sig.is_null() || siglen.is_null() {
        return 0;
    }
    // SAFETY: OpenSSL passes a valid key and a digest of `dlen` bytes.
    let Some(der) = (unsafe { sign_with(eckey, dgst, dlen) }) else {
        return 0;
    };
    // SAFETY: `eckey` is valid; ECDSA_size reads its group.
    let room = unsafe { ffi::ECDSA_size(eckey) };
    let (Ok(room), Ok(len)) = (usize::try_from(room), c_uint::try_from(der.len())) else {
        return 0;
    };
    if der.len() > room {
        return 0;
    }
    // SAFETY: OpenSSL's ECDSA_sign contract: `sig` has room for ECDSA_size(eckey) bytes, and
    // `der` is no longer; `siglen` is a valid out pointer.
    unsafe {
        std::ptr::copy_nonoverlapping(der.as_ptr(), sig, der.len());
        *siglen = len;
    }
    1
}

/// `EC_KEY_METHOD` sign_setup: precomputing (k⁻¹, r) needs the private key, which is not here.
unsafe extern "C" fn sign_setup_cb(
    _eckey: *mut ffi::EC_KEY,
    _ctx: *mut ffi::BN_CTX,
    _kinvp: *mut *mut ffi::BIGNUM,
    _rp: *mut *mut ffi::BIGNUM,
) -> c_int {
    0
}

/// `EC_KEY_METHOD` sign_sig: the signature as a new `ECDSA_SIG` (null on failure).
unsafe extern "C" fn sign_sig_cb(
    dgst: *const c_uchar,
    dlen: c_int,
    _kinv: *const ffi::BIGNUM,
    _r: *const ffi::BIGNUM,
    eckey: *mut ffi::EC_KEY,
) -> *mut ffi::ECDSA_SIG {
    // SAFETY: OpenSSL passes a valid key and a digest of `dlen` bytes.
    let Some(der) = (unsafe { sign_with(eckey, dgst, dlen) }) else {
        return std::ptr::null_mut();
    };
    match openssl::ecdsa::EcdsaSig::from_der(&der) {
        Ok(sig) => {
            let ptr = sig.as_ptr();
            // The caller (ECDSA_do_sign) owns the returned ECDSA_SIG and frees it.
            std::mem::forget(sig);
            ptr.cast()
        }
        Err(_) => std::ptr::null_mut(),
    }
}

/// ex_data free callback: drops the signer when OpenSSL frees the key.
unsafe extern "C" fn free_cb(
    _parent: *mut c_void,
    ptr: *mut c_void,
    _ad: *mut c_void,
    _idx: c_int,
    _argl: c_long,
    _argp: *mut c_void,
) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: the slot only ever holds a pointer made by `Box::into_raw` of a
    // `Box<Arc<dyn DigestSigner>>` (in `remote_ec_key` or `dup_cb`), freed only here, once,
    // when its key goes.
    let boxed = unsafe { Box::from_raw(ptr.cast::<Arc<dyn DigestSigner>>()) };
    // Dropping an Arc of user code: keep any panic inside.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
}

/// ex_data dup callback: a copied key gets its own box around a clone of the `Arc`, so each
/// key's free callback releases its own.
unsafe extern "C" fn dup_cb(
    _to: *mut c_void,
    _from: *const c_void,
    from_d: *mut *mut c_void,
    _idx: c_int,
    _argl: c_long,
    _argp: *mut c_void,
) -> c_int {
    if from_d.is_null() {
        return 0;
    }
    // SAFETY: OpenSSL 3 passes a pointer to the slot value being copied into the new key.
    let slot = unsafe { *from_d };
    if slot.is_null() {
        return 1;
    }
    // SAFETY: a non-null slot holds a live `Box<Arc<dyn DigestSigner>>` of the source key.
    let signer: Arc<dyn DigestSigner> = unsafe { (*slot.cast::<Arc<dyn DigestSigner>>()).clone() };
    let copy: *mut Arc<dyn DigestSigner> = Box::into_raw(Box::new(signer));
    // SAFETY: `from_d` is valid for writing; the new key's slot now owns `copy`.
    unsafe { *from_d = copy.cast() };
    1
}

/// The one `EC_KEY_METHOD` of the process (never freed: keys refer to it).
struct Method(*const ffi::EC_KEY_METHOD);
// SAFETY: the method table is written once, before it is published, and only read afterwards
// (OpenSSL reads it from any thread).
unsafe impl Send for Method {}
// SAFETY: as above.
unsafe impl Sync for Method {}

static METHOD: OnceLock<Result<Method, ()>> = OnceLock::new();
static EX_INDEX: OnceLock<Result<c_int, ()>> = OnceLock::new();

fn method() -> Result<&'static Method, RemoteKeyError> {
    let made = METHOD.get_or_init(|| {
        // SAFETY: EC_KEY_OpenSSL returns the static default method; EC_KEY_METHOD_new copies
        // it (all of verify, keygen, ECDH stay OpenSSL's) into a new table we own, and
        // EC_KEY_METHOD_set_sign replaces the three sign entries with our callbacks, whose
        // signatures match OpenSSL 3's `ec.h`.
        unsafe {
            let meth = ffi::EC_KEY_METHOD_new(ffi::EC_KEY_OpenSSL());
            if meth.is_null() {
                return Err(());
            }
            ffi::EC_KEY_METHOD_set_sign(
                meth,
                Some(sign_cb),
                Some(sign_setup_cb),
                Some(sign_sig_cb),
            );
            Ok(Method(meth))
        }
    });
    made.as_ref().map_err(|()| RemoteKeyError::Library {
        what: "a new EC_KEY_METHOD",
        source: ErrorStack::get(),
    })
}

fn ex_index() -> Result<c_int, RemoteKeyError> {
    let made = EX_INDEX.get_or_init(|| {
        // SAFETY: registers a new ex_data index of the EC_KEY class with our dup and free
        // callbacks, whose signatures match OpenSSL 3's `CRYPTO_EX_dup`/`CRYPTO_EX_free`.
        let index = unsafe {
            ffi::CRYPTO_get_ex_new_index(
                ffi::CRYPTO_EX_INDEX_EC_KEY,
                0,
                std::ptr::null_mut(),
                None,
                Some(dup_cb),
                Some(free_cb),
            )
        };
        if index < 0 {
            Err(())
        } else {
            Ok(index)
        }
    });
    made.as_ref()
        .copied()
        .map_err(|()| RemoteKeyError::Library {
            what: "an EC_KEY ex_data index",
            source: ErrorStack::get(),
        })
}

/// Declarations from OpenSSL 3's `ec.h` and `crypto.h` that `openssl-sys` lacks. The symbols
/// are in the libcrypto that `openssl-sys` links.
#[allow(non_camel_case_types, missing_docs, unreachable_pub)]
mod ffi {
    use std::ffi::{c_int, c_long, c_uchar, c_uint, c_void};

    pub use openssl_sys::{BIGNUM, BN_CTX, ECDSA_SIG, EC_KEY};

    /// Opaque `EC_KEY_METHOD`.
    #[repr(C)]
    pub struct EC_KEY_METHOD {
        _private: [u8; 0],
    }

    pub const CRYPTO_EX_INDEX_EC_KEY: c_int = 8;

    pub type SignFn = unsafe extern "C" fn(
        c_int,
        *const c_uchar,
        c_int,
        *mut c_uchar,
        *mut c_uint,
        *const BIGNUM,
        *const BIGNUM,
        *mut EC_KEY,
    ) -> c_int;
    pub type SignSetupFn =
        unsafe extern "C" fn(*mut EC_KEY, *mut BN_CTX, *mut *mut BIGNUM, *mut *mut BIGNUM) -> c_int;
    pub type SignSigFn = unsafe extern "C" fn(
        *const c_uchar,
        c_int,
        *const BIGNUM,
        *const BIGNUM,
        *mut EC_KEY,
    ) -> *mut ECDSA_SIG;
    pub type ExDup = unsafe extern "C" fn(
        *mut c_void,
        *const c_void,
        *mut *mut c_void,
        c_int,
        c_long,
        *mut c_void,
    ) -> c_int;
    pub type ExFree =
        unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void, c_int, c_long, *mut c_void);
    pub type ExNew =
        unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void, c_int, c_long, *mut c_void);

    // Keeps the link to libcrypto that openssl-sys sets up.
    use openssl_sys as _;

    extern "C" {
        pub fn EC_KEY_OpenSSL() -> *const EC_KEY_METHOD;
        pub fn EC_KEY_METHOD_new(meth: *const EC_KEY_METHOD) -> *mut EC_KEY_METHOD;
        pub fn EC_KEY_METHOD_set_sign(
            meth: *mut EC_KEY_METHOD,
            sign: Option<SignFn>,
            sign_setup: Option<SignSetupFn>,
            sign_sig: Option<SignSigFn>,
        );
        pub fn EC_KEY_set_method(key: *mut EC_KEY, meth: *const EC_KEY_METHOD) -> c_int;
        pub fn EC_KEY_set_ex_data(key: *mut EC_KEY, idx: c_int, arg: *mut c_void) -> c_int;
        pub fn EC_KEY_get_ex_data(key: *const EC_KEY, idx: c_int) -> *mut c_void;
        pub fn ECDSA_size(key: *const EC_KEY) -> c_int;
        #[link_name = "CRYPTO_get_ex_new_index"]
        pub fn CRYPTO_get_ex_new_index(
            class_index: c_int,
            argl: c_long,
            argp: *mut c_void,
            new_func: Option<ExNew>,
            dup_func: Option<ExDup>,
            free_func: Option<ExFree>,
        ) -> c_int;
    }
}

#[cfg(test)]
mod tests;
