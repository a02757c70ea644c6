//! The configuration file: a raw stage (TOML read with serde, unknown keys refused, values
//! checked without touching the system) and a resolved stage with the settings each crate
//! takes. Every option is documented in `docs/configuration.md`; a test keeps the two equal.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The whole file. Every section and every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Identity and behaviour of the CSE.
    #[serde(default)]
    pub cse: CseSection,
    /// The HTTP listener.
    #[serde(default)]
    pub http: HttpSection,
    /// The store.
    #[serde(default)]
    pub store: StoreSection,
    /// Notification delivery.
    #[serde(default)]
    pub notifications: NotificationSection,
    /// Logging.
    #[serde(default)]
    pub log: LogSection,
    /// Credentials and the admin rule.
    #[serde(default)]
    pub security: SecuritySection,
    /// TLS listeners (security associations), any number.
    #[serde(default)]
    pub tls: Vec<TlsSection>,
}

/// `[security]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySection {
    /// Credential file: PSKs and certificate bindings (mode 600).
    pub credentials: Option<PathBuf>,
    /// Honour the admin originator only over an admin credential's association.
    pub admin_requires_association: Option<bool>,
}

/// `[[tls]]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Listener name (unique).
    pub name: Option<String>,
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Frameworks accepted: "certificate", "psk".
    pub frameworks: Option<Vec<String>>,
    /// Lowest TLS version: "1.2" or "1.3".
    pub min_version: Option<String>,
    /// PEM certificate chain of the CSE, leaf first.
    pub certificate: Option<PathBuf>,
    /// PEM private key of the CSE.
    pub private_key: Option<PathBuf>,
    /// PEM trust anchors for client certificates.
    pub trust_anchors: Option<Vec<PathBuf>>,
    /// Certificate revocation lists.
    pub crls: Option<Vec<PathBuf>>,
    /// Handshake timeout, milliseconds.
    pub handshake_timeout_ms: Option<u64>,
    /// Concurrent handshakes, all peers.
    pub max_handshakes: Option<usize>,
    /// Concurrent handshakes from one IP address.
    pub max_handshakes_per_ip: Option<usize>,
    /// Session resumption (tickets and cache).
    pub session_resumption: Option<bool>,
    /// Restriction of the cipher suites offered (IANA names).
    pub suites: Option<Vec<String>>,
}

/// `[cse]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CseSection {
    /// CSE-ID without leading slash.
    pub cse_id: Option<String>,
    /// CSEBase resource name.
    pub name: Option<String>,
    /// M2M Service Provider ID.
    pub sp_id: Option<String>,
    /// Admin originator.
    pub admin: Option<String>,
    /// Points of access advertised in the CSEBase.
    pub poa: Option<Vec<String>>,
    /// Default lifetime of resources created without `et`, seconds.
    pub default_expiration_secs: Option<u64>,
    /// Largest content instance, bytes.
    pub max_content_size: Option<u64>,
    /// Most results of one discovery.
    pub discovery_limit: Option<u64>,
    /// Expiry sweep period, milliseconds.
    pub expiry_check_ms: Option<u64>,
}

/// `[http]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Largest request body, bytes.
    pub max_body_bytes: Option<usize>,
    /// Largest request head, bytes.
    pub max_header_bytes: Option<usize>,
    /// Most header fields per request.
    pub max_headers: Option<usize>,
    /// Seconds to receive a request head.
    pub header_timeout_secs: Option<u64>,
    /// Seconds to receive a request body.
    pub body_timeout_secs: Option<u64>,
    /// Most concurrent connections.
    pub max_connections: Option<usize>,
    /// Whether the plaintext listener runs at all.
    pub enabled: Option<bool>,
    /// Declares a non-loopback plaintext interface trusted (trust scenario 3).
    pub trusted: Option<bool>,
}

/// `[store]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Data folder.
    pub data: Option<PathBuf>,
    /// Most writes per group commit.
    pub max_batch: Option<usize>,
    /// Read connections.
    pub readers: Option<usize>,
    /// Content instances cached in memory.
    pub cached_instances: Option<usize>,
}

/// `[notifications]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSection {
    /// Queue length per target.
    pub queue: Option<usize>,
    /// Delivery attempts.
    pub attempts: Option<u32>,
    /// Timeout per attempt, milliseconds.
    pub timeout_ms: Option<u64>,
    /// CAs that vouch for `https://` notification targets.
    pub trust_anchors: Option<Vec<PathBuf>>,
    /// The CSE's client certificate chain towards `https://` targets.
    pub certificate: Option<PathBuf>,
    /// Its private key.
    pub private_key: Option<PathBuf>,
}

impl NotificationSection {
    /// The TLS client settings for `https://` targets (the binary reads the files before
    /// it listens).
    fn tls(&self) -> Result<Option<cse::NotificationTls>, ConfigError> {
        let client_certificate = match (&self.certificate, &self.private_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "notifications.certificate and notifications.private_key go together".into(),
                ))
            }
        };
        let tls = match (&self.trust_anchors, client_certificate) {
            (None, None) => return Ok(None),
            (None, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "notifications.certificate needs notifications.trust_anchors".into(),
                ))
            }
            (Some(cas), client_certificate) => cse::NotificationTls {
                trust_anchors: cas.clone(),
                client_certificate,
            },
        };
        Ok(Some(tls))
    }
}

/// `[log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `tracing` filter, e.g. `info` or `cse=debug`.
    pub level: Option<String>,
}

/// Everything the server needs, resolved from defaults, the file and the command line.
#[derive(Debug)]
pub struct Settings {
    /// The CSE's settings.
    pub cse: cse::CseConfig,
    /// Where the HTTP listener binds.
    pub listen: SocketAddr,
    /// HTTP limits.
    pub http: http_binding::HttpLimits,
    /// The data folder.
    pub data: PathBuf,
    /// Store tuning.
    pub store: store::SqliteOptions,
    /// Log filter.
    pub log: String,
    /// Whether the plaintext listener runs.
    pub http_enabled: bool,
    /// The credential file, if any.
    pub credentials: Option<PathBuf>,
    /// TLS listeners.
    pub tls: Vec<TlsListener>,
}

/// One resolved TLS listener.
#[derive(Debug)]
pub struct TlsListener {
    /// Its name.
    pub name: String,
    /// Where it binds.
    pub listen: SocketAddr,
    /// Its security policy.
    pub policy: security::tls::TlsPolicy,
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid configuration {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl FileConfig {
    /// Parses TOML text.
    pub fn parse(text: &str, path: &std::path::Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads and parses a file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Applies defaults and command-line overrides, and checks the values.
    pub fn resolve(
        self,
        listen: Option<SocketAddr>,
        data: Option<PathBuf>,
    ) -> Result<Settings, ConfigError> {
        let mut c = cse::CseConfig::default();
        let s = self.cse;
        let id_ok =
            |v: &str| !v.is_empty() && !v.contains('/') && !v.chars().any(char::is_whitespace);
        macro_rules! set {
            ($target:expr, $value:expr) => {
                if let Some(v) = $value {
                    $target = v;
                }
            };
        }
        set!(c.cse_id, s.cse_id);
        set!(c.cse_name, s.name);
        set!(c.sp_id, s.sp_id);
        set!(c.admin, s.admin);
        set!(c.default_expiration_secs, s.default_expiration_secs);
        set!(c.max_content_size, s.max_content_size);
        set!(c.discovery_limit, s.discovery_limit);
        set!(c.expiry_check_ms, s.expiry_check_ms);
        for (name, v) in [
            ("cse.cse_id", &c.cse_id),
            ("cse.name", &c.cse_name),
            ("cse.sp_id", &c.sp_id),
            ("cse.admin", &c.admin),
        ] {
            if !id_ok(v) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be a non-empty identifier without '/' or spaces"
                )));
            }
        }
        if !c.admin.starts_with('C') {
            return Err(ConfigError::Invalid(
                "cse.admin must be an AE-ID starting with C".into(),
            ));
        }
        let listen = listen
            .or(self.http.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        // Without a configured poa, the binary advertises the address it really bound.
        c.poa = s.poa.unwrap_or_default();
        let n = self.notifications;
        set!(c.notification_queue, n.queue);
        set!(c.notification_attempts, n.attempts);
        set!(c.notification_timeout_ms, n.timeout_ms);
        c.notification_tls = n.tls()?;
        if c.discovery_limit == 0 || c.notification_queue == 0 || c.notification_attempts == 0 {
            return Err(ConfigError::Invalid("discovery_limit, notifications.queue and notifications.attempts must be at least 1".into()));
        }

        let mut http = http_binding::HttpLimits::default();
        let h = self.http;
        set!(http.max_body_bytes, h.max_body_bytes);
        set!(http.max_header_bytes, h.max_header_bytes);
        set!(http.max_headers, h.max_headers);
        set!(http.max_connections, h.max_connections);
        if let Some(t) = h.header_timeout_secs {
            http.header_read_timeout = Duration::from_secs(t);
        }
        if let Some(t) = h.body_timeout_secs {
            http.body_read_timeout = Duration::from_secs(t);
        }
        if http.max_body_bytes == 0 || http.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "http.max_body_bytes and http.max_connections must be at least 1".into(),
            ));
        }

        let http_enabled = h.enabled.unwrap_or(true);
        if http_enabled && !listen.ip().is_loopback() && !h.trusted.unwrap_or(false) {
            return Err(ConfigError::Invalid(format!(
                "the plaintext HTTP listener {listen} is not on loopback: requests on it would have no \
                 security association. Use a [[tls]] listener, keep http.listen on 127.0.0.1/::1, or declare \
                 the interface trusted with http.trusted = true"
            )));
        }
        let tls = self
            .tls
            .into_iter()
            .enumerate()
            .map(|(i, t)| t.resolve(i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut names: Vec<&str> = tls.iter().map(|t| t.name.as_str()).collect();
        names.push("http");
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(ConfigError::Invalid(
                "listener names must be unique (\"http\" is the plaintext one)".into(),
            ));
        }
        c.admin_requires_association = self
            .security
            .admin_requires_association
            .unwrap_or(!tls.is_empty());
        if !http_enabled && tls.is_empty() {
            return Err(ConfigError::Invalid(
                "no listener: enable [http] or configure a [[tls]] listener".into(),
            ));
        }

        let mut store = store::SqliteOptions::default();
        set!(store.max_batch, self.store.max_batch);
        set!(store.readers, self.store.readers);
        set!(store.cached_instances, self.store.cached_instances);
        let data = data
            .or(self.store.data)
            .unwrap_or_else(|| PathBuf::from("data"));
        let log = self.log.level.unwrap_or_else(|| "info".to_owned());
        Ok(Settings {
            cse: c,
            listen,
            http,
            data,
            store,
            log,
            http_enabled,
            credentials: self.security.credentials,
            tls,
        })
    }
}

impl TlsSection {
    fn resolve(self, index: usize) -> Result<TlsListener, ConfigError> {
        use security::tls::{CertificateConfig, TlsPolicy, TlsVersion};
        let name = self.name.unwrap_or_else(|| {
            if index == 0 {
                "https".to_owned()
            } else {
                format!("https{index}")
            }
        });
        let bad = |why: String| ConfigError::Invalid(format!("[[tls]] {name}: {why}"));
        let listen = self
            .listen
            .ok_or_else(|| bad("listen is required".into()))?;
        let frameworks = self
            .frameworks
            .unwrap_or_else(|| vec!["certificate".into(), "psk".into()]);
        if let Some(f) = frameworks
            .iter()
            .find(|f| !matches!(f.as_str(), "certificate" | "psk"))
        {
            return Err(bad(format!("unknown framework '{f}' (certificate, psk)")));
        }
        let mut policy = TlsPolicy {
            psk: frameworks.iter().any(|f| f == "psk"),
            ..TlsPolicy::default()
        };
        if frameworks.iter().any(|f| f == "certificate") {
            let chain = self
                .certificate
                .ok_or_else(|| bad("the certificate framework needs certificate".into()))?;
            let key = self
                .private_key
                .ok_or_else(|| bad("the certificate framework needs private_key".into()))?;
            let trust_anchors = self.trust_anchors.unwrap_or_default();
            if trust_anchors.is_empty() {
                return Err(bad(
                    "the certificate framework needs trust_anchors to verify clients".into(),
                ));
            }
            policy.certificate = Some(CertificateConfig {
                chain,
                key,
                trust_anchors,
                crls: self.crls.unwrap_or_default(),
            });
        }
        if !policy.psk && policy.certificate.is_none() {
            return Err(bad("no framework enabled".into()));
        }
        policy.min_version = match self.min_version.as_deref() {
            None | Some("1.2") => TlsVersion::Tls12,
            Some("1.3") => TlsVersion::Tls13,
            Some(v) => {
                return Err(bad(format!(
                    "min_version '{v}' is not 1.2 or 1.3 (older versions are never accepted)"
                )))
            }
        };
        if let Some(ms) = self.handshake_timeout_ms {
            policy.handshake_timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(n) = self.max_handshakes {
            policy.max_handshakes = n.max(1);
        }
        if let Some(n) = self.max_handshakes_per_ip {
            policy.max_handshakes_per_ip = n.max(1);
        }
        if let Some(r) = self.session_resumption {
            policy.session_resumption = r;
        }
        policy.suites = self.suites;
        Ok(TlsListener {
            name,
            listen,
            policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let s = FileConfig::parse("", Path::new("x")).and_then(|f| f.resolve(None, None));
        let s = s.expect("defaults");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.cse.cse_id, "id-in");
        assert_eq!(s.cse.cse_name, "cse-in");
        assert_eq!(s.cse.admin, "CAdmin");
        assert_eq!(s.data, PathBuf::from("data"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(FileConfig::parse("[cse]\ncse_idd = \"x\"", Path::new("x")).is_err());
        assert!(FileConfig::parse("[http]\nlisten = 5", Path::new("x")).is_err());
        let bad = FileConfig::parse("[cse]\ncse_id = \"a/b\"", Path::new("x"))
            .and_then(|f| f.resolve(None, None));
        assert!(matches!(bad, Err(ConfigError::Invalid(_))));
        let bad = FileConfig::parse("[cse]\nadmin = \"root\"", Path::new("x"))
            .and_then(|f| f.resolve(None, None));
        assert!(matches!(bad, Err(ConfigError::Invalid(_))));
    }

    fn resolve(text: &str) -> Result<Settings, ConfigError> {
        FileConfig::parse(text, Path::new("x")).and_then(|f| f.resolve(None, None))
    }

    #[test]
    fn plaintext_off_loopback_needs_to_be_declared_trusted() {
        let open = resolve("[http]\nlisten = \"0.0.0.0:8080\"");
        assert!(matches!(open, Err(ConfigError::Invalid(m)) if m.contains("not on loopback")));
        assert!(resolve("[http]\nlisten = \"0.0.0.0:8080\"\ntrusted = true").is_ok());
        assert!(resolve("[http]\nlisten = \"[::1]:8080\"").is_ok());
        assert!(
            matches!(resolve("[http]\nenabled = false"), Err(ConfigError::Invalid(m)) if m.contains("no listener"))
        );
    }

    #[test]
    fn tls_listeners_are_checked_and_make_the_admin_need_an_association() {
        let ok = resolve("[[tls]]\nlisten = \"127.0.0.1:8443\"\nframeworks = [\"psk\"]")
            .expect("psk only");
        assert!(ok.cse.admin_requires_association);
        assert_eq!(ok.tls[0].name, "https");
        assert!(ok.tls[0].policy.psk && ok.tls[0].policy.certificate.is_none());
        assert!(!resolve("").expect("plain").cse.admin_requires_association);
        for bad in [
            "[[tls]]\nframeworks = [\"psk\"]",
            "[[tls]]\nlisten = \"127.0.0.1:1\"\nframeworks = [\"kerberos\"]",
            "[[tls]]\nlisten = \"127.0.0.1:1\"\nframeworks = []",
            "[[tls]]\nlisten = \"127.0.0.1:1\"\nframeworks = [\"certificate\"]",
            "[[tls]]\nlisten = \"127.0.0.1:1\"\nframeworks = [\"psk\"]\nmin_version = \"1.1\"",
            "[[tls]]\nname = \"http\"\nlisten = \"127.0.0.1:1\"\nframeworks = [\"psk\"]",
        ] {
            assert!(
                matches!(resolve(bad), Err(ConfigError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn command_line_wins_over_file() {
        let f = FileConfig::parse(
            "[http]\nlisten = \"127.0.0.1:9\"\n[store]\ndata = \"/a\"",
            Path::new("x"),
        )
        .expect("parse");
        let s = f
            .resolve(
                Some("127.0.0.1:7".parse().expect("addr")),
                Some("/b".into()),
            )
            .expect("resolve");
        assert_eq!(s.listen.port(), 7);
        assert_eq!(s.data, PathBuf::from("/b"));
    }

    /// Every key of the file format appears in docs/configuration.md, and the doc names no
    /// key the format lacks.
    #[test]
    fn documentation_matches_the_options() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/configuration.md"
        ))
        .expect("docs");
        let sample = doc
            .split("```toml")
            .nth(1)
            .and_then(|s| s.split("```").next())
            .expect("a toml block in the doc");
        let parsed = FileConfig::parse(sample, Path::new("docs/configuration.md"))
            .expect("the documented sample parses");
        assert!(parsed.resolve(None, None).is_ok());
        let table: toml::Table = toml::from_str(sample).expect("toml");
        let mut documented = 0;
        for (_, section) in table {
            documented += match section {
                toml::Value::Table(t) => t.len(),
                toml::Value::Array(a) => a
                    .iter()
                    .filter_map(toml::Value::as_table)
                    .map(toml::Table::len)
                    .sum(),
                _ => 0,
            };
        }
        assert_eq!(documented, 44, "every option is in the documented sample");
    }
}
