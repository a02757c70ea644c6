//! Where PINs and passphrases come from: an environment variable or a file, never the
//! configuration file itself.

use crate::error::KeyStoreError;
use crate::fsutil;
use crate::secret::SecretBytes;
use serde::Deserialize;
use std::path::PathBuf;

/// Where a PIN or passphrase is read from. In TOML: `pin = { env = "CSE_HSM_PIN" }` or
/// `pin = { file = "/etc/cse/hsm.pin" }`. A file must not be accessible to group or others;
/// one trailing newline is stripped.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum SecretSource {
    /// The named environment variable.
    Env(String),
    /// The file's content.
    File(PathBuf),
    /// A value the program already holds (for example read from a prompt). Not accepted from
    /// configuration files.
    #[serde(skip)]
    Provided(SecretBytes),
}

impl SecretSource {
    /// Reads the secret. `what` names it in errors ("PIN", "passphrase").
    pub(crate) fn read(&self, what: &'static str) -> Result<SecretBytes, KeyStoreError> {
        self.read_with(what, |name| std::env::var_os(name))
    }

    pub(crate) fn read_with(
        &self,
        what: &'static str,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<SecretBytes, KeyStoreError> {
        let secret = match self {
            SecretSource::Env(name) => {
                let unavailable = |reason: &str| KeyStoreError::SecretUnavailable {
                    what,
                    source_desc: format!("environment variable {name}"),
                    reason: reason.into(),
                };
                let value = env(name).ok_or_else(|| unavailable("it is not set"))?;
                let value = value
                    .into_string()
                    .map_err(|_| unavailable("it is not valid UTF-8"))?;
                SecretBytes::new(value.into_bytes())
            }
            SecretSource::File(path) => {
                let unavailable = |reason: String| KeyStoreError::SecretUnavailable {
                    what,
                    source_desc: format!("file {}", path.display()),
                    reason,
                };
                let mut bytes = match fsutil::read_private(path) {
                    Ok(bytes) => bytes,
                    Err(KeyStoreError::Io { error, .. }) => {
                        return Err(unavailable(error.to_string()))
                    }
                    Err(other) => return Err(other),
                };
                if bytes.last() == Some(&b'\n') {
                    bytes.pop();
                    if bytes.last() == Some(&b'\r') {
                        bytes.pop();
                    }
                }
                SecretBytes::new(std::mem::take(&mut *bytes))
            }
            SecretSource::Provided(secret) => SecretBytes::from_slice(secret.expose()),
        };
        if secret.is_empty() {
            return Err(KeyStoreError::SecretUnavailable {
                what,
                source_desc: self.describe(),
                reason: "it is empty".into(),
            });
        }
        Ok(secret)
    }

    /// Where the secret comes from, for messages.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env(name) => format!("environment variable {name}"),
            SecretSource::File(path) => format!("file {}", path.display()),
            SecretSource::Provided(_) => "the caller".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn env_source_reads_and_reports_missing() {
        let src = SecretSource::Env("CSE_TEST_PIN".into());
        let got = src
            .read_with("PIN", |n| (n == "CSE_TEST_PIN").then(|| "1234".into()))
            .expect("set");
        assert_eq!(got.expose(), b"1234");
        let err = src.read_with("PIN", |_| None).expect_err("unset");
        assert!(
            err.to_string()
                .contains("environment variable CSE_TEST_PIN"),
            "{err}"
        );
        assert!(err.to_string().contains("not set"), "{err}");
    }

    #[test]
    fn file_source_strips_newline_and_checks_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pin");
        std::fs::write(&path, "1234\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let src = SecretSource::File(path.clone());
        assert_eq!(src.read("PIN").expect("read").expose(), b"1234");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            src.read("PIN"),
            Err(KeyStoreError::InsecurePermissions { .. })
        ));
        let missing = SecretSource::File(dir.path().join("nope"));
        assert!(matches!(
            missing.read("PIN"),
            Err(KeyStoreError::SecretUnavailable { .. })
        ));
    }

    #[test]
    fn parses_from_toml() {
        #[derive(Deserialize)]
        struct C {
            pin: SecretSource,
        }
        let c: C = toml::from_str("pin = { env = \"X\" }").expect("env");
        assert!(matches!(c.pin, SecretSource::Env(ref n) if n == "X"));
        let c: C = toml::from_str("pin = { file = \"/p\" }").expect("file");
        assert!(matches!(c.pin, SecretSource::File(_)));
        assert!(
            toml::from_str::<C>("pin = \"1234\"").is_err(),
            "inline PINs are refused"
        );
    }
}
