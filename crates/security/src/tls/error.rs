//! Why an acceptor cannot start ([`TlsError`]) and why a handshake did not establish an
//! association ([`HandshakeError`]). Neither ever carries key material.

use openssl::error::ErrorStack;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a TLS acceptor cannot be built from its policy. Every variant names what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The policy enables neither the certificate nor the PSK framework: enable one.
    #[error(
        "the TLS policy enables no security association framework: enable certificate, psk or both"
    )]
    NoFramework,
    /// A limit or timeout of the policy is out of range.
    #[error("invalid TLS policy: {0}")]
    InvalidPolicy(String),
    /// A configured file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A certificate or key file can be read but not used (wrong content, expired, wrong key
    /// type, chain out of order, private key readable by others, ...).
    #[error("{}: {problem}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The private key does not belong to the first certificate of the chain.
    #[error("the private key ({key}) does not belong to the certificate in {}", certificate.display())]
    KeyMismatch {
        /// The chain file.
        certificate: PathBuf,
        /// The key: its file, or `key <id> in home <home>`.
        key: String,
    },
    /// The key in a key home cannot serve as the TLS server key (not an ECDSA P-256 key, or
    /// its public key cannot be read from the home).
    #[error("TLS server {key}: {problem}")]
    HomeKey {
        /// `key <id> in home <home>`.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// A CRL cannot be used (unparsable, not issued by a trust anchor, bad signature, expired),
    /// or a trust anchor has no CRL although CRL checking is on.
    #[error("CRL {}: {problem}", path.display())]
    InvalidCrl {
        /// The CRL file (or the trust anchor file that lacks a CRL).
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// OpenSSL refused a setting that this crate fixes (cipher lists, versions, DH
    /// parameters). Kept as a catch-all because the OpenSSL library on the machine decides
    /// what it supports; the message says which setting.
    #[error("OpenSSL refused {what}: {source}")]
    Library {
        /// The setting.
        what: &'static str,
        /// OpenSSL's errors.
        source: ErrorStack,
    },
}

impl TlsError {
    pub(crate) fn file(path: &std::path::Path, problem: impl Into<String>) -> Self {
        Self::InvalidFile {
            path: path.to_owned(),
            problem: problem.into(),
        }
    }

    pub(crate) fn crl(path: &std::path::Path, problem: impl Into<String>) -> Self {
        Self::InvalidCrl {
            path: path.to_owned(),
            problem: problem.into(),
        }
    }

    pub(crate) fn library(what: &'static str) -> impl FnOnce(ErrorStack) -> Self {
        move |source| Self::Library { what, source }
    }
}

/// Which handshake cap was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeCap {
    /// `max_handshakes`: the listener as a whole.
    Listener,
    /// `max_handshakes_per_ip`: one IPv4 address or one IPv6 /64.
    Address,
}

/// Why a connection did not become a security association. The connection is closed; the
/// client learned at most a TLS alert. Nothing here is secret: reasons name identities
/// (KpsaIDs, certificate checks), never keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The handshake did not finish within `handshake_timeout` (a silent or stalling client).
    #[error("TLS handshake timed out")]
    Timeout,
    /// A handshake cap was reached; the connection was closed at once, before any TLS.
    #[error("too many TLS handshakes in progress ({})", match cap {
        HandshakeCap::Listener => "listener limit",
        HandshakeCap::Address => "limit per client address",
    })]
    TooManyHandshakes {
        /// Which cap.
        cap: HandshakeCap,
    },
    /// The handshake failed or its result was not acceptable: untrusted, expired, revoked or
    /// misused certificate, a certificate that names no identity, unknown PSK identity, wrong
    /// PSK, protocol version, no common cipher suite, not TLS at all, an alert from the
    /// client, ...
    #[error("TLS handshake refused: {reason}")]
    Refused {
        /// What happened, for logs.
        reason: String,
        /// The PSK identity the client offered, when it is one the CSE knows (a wrong key,
        /// a key unusable with the client's suites): supervision counts refusals per
        /// credential. `None` for every other refusal.
        offered: Option<String>,
    },
    /// The client closed the connection before the handshake finished.
    #[error("client closed the connection during the TLS handshake")]
    Closed,
    /// A socket error.
    #[error("I/O error during the TLS handshake: {0}")]
    Io(#[source] io::Error),
}

impl HandshakeError {
    /// A one-line reason for logs.
    pub fn reason(&self) -> String {
        match self {
            Self::Refused { reason, .. } => reason.clone(),
            other => other.to_string(),
        }
    }

    /// A short, stable name of the kind of failure, for metrics: `timeout`,
    /// `too_many_handshakes`, `refused`, `closed`, `io`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::TooManyHandshakes { .. } => "too_many_handshakes",
            Self::Refused { .. } => "refused",
            Self::Closed => "closed",
            Self::Io(_) => "io",
        }
    }

    /// The known PSK identity the client offered, if the refusal is about one.
    pub fn offered_identity(&self) -> Option<&str> {
        match self {
            Self::Refused { offered, .. } => offered.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn refused(reason: impl Into<String>) -> Self {
        Self::Refused {
            reason: reason.into(),
            offered: None,
        }
    }

    /// A refusal about a known PSK identity the client offered.
    pub(crate) fn refused_offering(reason: impl Into<String>, identity: &str) -> Self {
        Self::Refused {
            reason: reason.into(),
            offered: Some(identity.to_owned()),
        }
    }
}

/// Text that came from the network (a PSK identity), made safe for a log line: printable
/// ASCII only, at most 64 characters.
pub(crate) struct Untrusted<'a>(pub(crate) &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("'")?;
        for (i, c) in self.0.chars().enumerate() {
            if i == 64 {
                return f.write_str("...'");
            }
            if c.is_ascii_graphic() || c == ' ' {
                write!(f, "{c}")?;
            } else {
                write!(f, "{}", c.escape_default())?;
            }
        }
        f.write_str("'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_is_escaped_and_cut() {
        assert_eq!(Untrusted("a@b.example").to_string(), "'a@b.example'");
        assert_eq!(Untrusted("a\nb\u{1b}").to_string(), "'a\\nb\\u{1b}'");
        let long = "x".repeat(100);
        assert_eq!(
            Untrusted(&long).to_string(),
            format!("'{}...'", "x".repeat(64))
        );
    }

    #[test]
    fn reasons_and_kinds() {
        let e = HandshakeError::refused("certificate revoked");
        assert_eq!(e.reason(), "certificate revoked");
        assert_eq!(e.kind(), "refused");
        assert_eq!(HandshakeError::Timeout.kind(), "timeout");
        let e = HandshakeError::TooManyHandshakes {
            cap: HandshakeCap::Address,
        };
        assert!(e.reason().contains("per client address"), "{}", e.reason());
    }
}
