//! PKCS#11 modules are process-wide: `C_Initialize` may run once per module and `C_Finalize`
//! ends every session of every user of the module. So each module is loaded and initialised
//! once and kept for the life of the process, shared by every home that names it.

use crate::error::KeyStoreError;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();

/// The module at `path`, loaded and initialised on first use.
pub(crate) fn load(path: &Path) -> Result<Pkcs11, KeyStoreError> {
    let unavailable = |reason: String| KeyStoreError::ModuleUnavailable {
        module: path.to_path_buf(),
        reason,
    };
    let canonical = path
        .canonicalize()
        .map_err(|e| unavailable(format!("{e}")))?;
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| unavailable("module registry poisoned".into()))?;
    if let Some(module) = modules.get(&canonical) {
        return Ok(module.clone());
    }
    let module = Pkcs11::new(&canonical).map_err(|e| unavailable(e.to_string()))?;
    match module.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(unavailable(format!("C_Initialize failed: {}", reason(&e)))),
    }
    modules.insert(canonical, module.clone());
    Ok(module)
}

/// A short description of a cryptoki error: the function and the `CKR_` name.
pub(crate) fn reason(e: &Error) -> String {
    match e {
        Error::Pkcs11(rv, function) => format!("{function} returned {rv:?}"),
        other => other.to_string(),
    }
}
