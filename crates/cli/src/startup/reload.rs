//! `reload-tls` and SIGHUP: the `[[tls]]` listeners' material re-read from the configuration.

use crate::config::FileConfig;
use crate::keyhomes::KeyHomes;
use security::provisioned::ProvisionedKeys;
use security::revocation::Revocations;
use security::tls::AcceptorSlot;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::parts::{published_crls, tls_acceptors};

/// Rebuilds the `[[tls]]` listeners' acceptors from the configuration file, for `reload-tls`
/// and SIGHUP. Key homes, journals and the audit trail are the running ones; adding, removing
/// or moving a listener needs a restart (and is refused here).
#[derive(Debug)]
pub struct Reloader {
    /// The configuration file the CSE started with (`--config`), re-read on each reload.
    pub config: Option<PathBuf>,
    /// The `--http` override it started with.
    pub http: Option<SocketAddr>,
    /// The `--data` override it started with.
    pub data: Option<PathBuf>,
    /// The running key homes (never reopened).
    pub homes: Option<Arc<KeyHomes>>,
    /// The running journal of withdrawn credentials.
    pub revocations: Arc<Revocations>,
    /// The running journal of keys the MEF issued.
    pub provisioned: Arc<ProvisionedKeys>,
    /// The running audit trail (the GBA NAF writes to it).
    pub audit: Option<cse::security_manager::audit::AuditTrail>,
    /// Each `[[tls]]` listener: its name, its address and the slot its acceptor is replaced in.
    pub listeners: Vec<(String, SocketAddr, Arc<AcceptorSlot>)>,
    /// The device enrolment listener (`[enrolment] device_listen`): its manufacturer CAs and
    /// CRLs are re-read too.
    pub device: Option<Arc<AcceptorSlot>>,
    /// The running CSE's clock, which the re-read listeners check certificates by.
    pub clock: model::clock::Clock,
}

impl cse::security_manager::reload::TlsReload for Reloader {
    fn reload(&self) -> Result<cse::security_manager::reload::Reloaded, String> {
        let file = match self.config.as_deref().map(FileConfig::load).transpose() {
            Ok(f) => f.unwrap_or_default(),
            Err(e) => return Err(e.to_string()),
        };
        let settings = file
            .resolve(self.http, self.data.clone())
            .map_err(|e| e.to_string())?
            .with_clock(self.clock.clone());
        let now: Vec<(String, SocketAddr)> = settings
            .tls
            .iter()
            .map(|t| (t.name.clone(), t.listen))
            .collect();
        let before: Vec<(String, SocketAddr)> = self
            .listeners
            .iter()
            .map(|(n, l, _)| (n.clone(), *l))
            .collect();
        if now != before {
            return Err(
                "the [[tls]] listeners were added, removed, renamed or moved: restart the CSE"
                    .into(),
            );
        }
        let acceptors = tls_acceptors(
            &settings,
            self.homes.as_deref(),
            &self.revocations,
            &self.provisioned,
            self.audit.as_ref(),
        )
        .map_err(|e| format!("{e:#}"))?;
        let device =
            crate::cert_enrolment::acceptor(&settings, self.homes.as_deref(), &self.revocations)
                .map_err(|e| format!("{e:#}"))?;
        let device = match (&self.device, device) {
            (Some(slot), Some(acceptor)) => Some((slot, acceptor)),
            (None, None) => None,
            _ => {
                return Err(
                    "[enrolment] device_listen was added or removed: restart the CSE".into(),
                )
            }
        };
        let published_crls = published_crls(&settings).map_err(|e| format!("{e:#}"))?;
        // Everything was built: only now is anything replaced.
        let mut names: Vec<String> = self.listeners.iter().map(|(n, _, _)| n.clone()).collect();
        for ((name, _, slot), acceptor) in self.listeners.iter().zip(acceptors) {
            slot.replace(acceptor);
            tracing::info!(listener = %name, "TLS listener reloaded");
        }
        if let Some((slot, acceptor)) = device {
            slot.replace(Arc::new(acceptor));
            tracing::info!(
                listener = %cse::security_manager::enrolment::certificate::DEVICE_ENROLMENT_LISTENER,
                "TLS listener reloaded"
            );
            names.push(
                cse::security_manager::enrolment::certificate::DEVICE_ENROLMENT_LISTENER.to_owned(),
            );
        }
        Ok(cse::security_manager::reload::Reloaded {
            listeners: names,
            published_crls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::startup::{parts, Overrides};
    use cse::security_manager::reload::TlsReload;
    use std::path::Path;
    use std::process::Command;

    /// Whether the `openssl` command is here to make the test PKI; CI must have it.
    fn have_openssl() -> bool {
        let ok = Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            assert!(
                std::env::var_os("SECURE_CSE_REQUIRE_SERVICES").is_none(),
                "openssl is required (SECURE_CSE_REQUIRE_SERVICES is set)"
            );
            eprintln!("skipping: the openssl command is not installed");
        }
        ok
    }

    /// Runs `openssl args` in the PKI folder; panics with its stderr when it fails.
    fn openssl(pki: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .current_dir(pki)
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The test PKI (`scripts/make-test-pki.sh`) in `dir/tls` and the reloader the CSE
    /// would build over its `cse.toml`, as `startup::assemble` does.
    fn reloader(dir: &Path) -> (PathBuf, Reloader) {
        let pki = dir.join("tls");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/make-test-pki.sh"
        );
        let out = Command::new("bash")
            .arg(script)
            .arg(&pki)
            .output()
            .expect("run the PKI script");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let overrides = Overrides {
            config: Some(pki.join("cse.toml")),
            http: None,
            data: Some(dir.join("data")),
        };
        let settings = overrides.settings().expect("settings");
        crate::secret_files::private_folder(&settings.data).expect("data folder");
        let revocations = parts::open_revocations(&settings).expect("revocations");
        let provisioned = parts::open_provisioned(&settings).expect("provisioned");
        let acceptors = parts::tls_acceptors(&settings, None, &revocations, &provisioned, None)
            .expect("acceptors");
        let listeners = settings
            .tls
            .iter()
            .zip(acceptors)
            .map(|(t, a)| (t.name.clone(), t.listen, Arc::new(AcceptorSlot::new(a))))
            .collect();
        let reloader = Reloader {
            config: overrides.config,
            http: overrides.http,
            data: overrides.data,
            homes: None,
            revocations,
            provisioned,
            audit: None,
            listeners,
            device: None,
            clock: model::clock::Clock::system(),
        };
        (pki, reloader)
    }

    /// The acceptor the listener serves with now.
    fn serving(r: &Reloader) -> Arc<security::tls::TlsAcceptor> {
        r.listeners[0].2.current()
    }

    #[test]
    fn reload_rereads_certificates_and_crls_and_replaces_the_acceptor() {
        if !have_openssl() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let (pki, r) = reloader(dir.path());
        let first = r.reload().expect("an unchanged configuration reloads");
        assert_eq!(first.listeners, ["https"]);
        assert_eq!(first.published_crls.len(), 1);
        assert_eq!(first.published_crls[0].0, "ca.crl");
        // The CA revokes ae1 and publishes a new CRL: the reload serves and publishes it.
        let before = serving(&r);
        let ca = [
            "ca",
            "-config",
            "openssl.cnf",
            "-keyfile",
            "ca.key",
            "-cert",
            "ca.pem",
        ];
        openssl(&pki, &[&ca[..], &["-revoke", "ae1.pem"]].concat());
        openssl(&pki, &[&ca[..], &["-gencrl", "-out", "ca.crl"]].concat());
        let second = r.reload().expect("the new CRL reloads");
        assert_ne!(second.published_crls[0].1, first.published_crls[0].1);
        assert!(!Arc::ptr_eq(&before, &serving(&r)), "a new acceptor");
    }

    #[test]
    fn a_broken_file_keeps_the_old_material_and_says_why() {
        if !have_openssl() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let (pki, r) = reloader(dir.path());
        let serving_before = serving(&r);
        let original = |name: &str| std::fs::read(pki.join(name)).expect("read");
        for (file, broken) in [
            ("cse.key", "not a key"),
            ("cse.pem", "not a certificate"),
            ("ca.crl", "not a CRL"),
            ("credentials.toml", "[[psk]\n"),
        ] {
            let kept = original(file);
            std::fs::write(pki.join(file), broken).expect("write");
            let reason = r.reload().expect_err(file);
            assert!(reason.contains(file), "the reason names {file}: {reason}");
            assert!(
                Arc::ptr_eq(&serving_before, &serving(&r)),
                "{file}: the old acceptor still serves ({reason})"
            );
            std::fs::write(pki.join(file), kept).expect("restore");
        }
        // Moving a listener needs a restart: refused, nothing replaced.
        let config = pki.join("cse.toml");
        let text = std::fs::read_to_string(&config).expect("cse.toml");
        std::fs::write(&config, text.replace("127.0.0.1:8443", "127.0.0.1:8444")).expect("write");
        let reason = r.reload().expect_err("a moved listener");
        assert!(reason.contains("restart the CSE"), "{reason}");
        assert!(Arc::ptr_eq(&serving_before, &serving(&r)));
        // Repaired: the reload goes through again.
        std::fs::write(&config, text).expect("restore");
        r.reload().expect("repaired");
        assert!(!Arc::ptr_eq(&serving_before, &serving(&r)));
    }
}
