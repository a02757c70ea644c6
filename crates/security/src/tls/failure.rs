//! Turning a failed handshake into a [`HandshakeError`] with a reason a reader of the log
//! understands: first what our callbacks noted, then OpenSSL's own reason in plain words.

use super::error::{HandshakeError, Untrusted};
use super::state::ConnState;
use openssl::ssl::{self, ErrorCode};
use std::io::ErrorKind;

/// Why the handshake failed. `psk_enabled` says whether a certificate-less client could have
/// used a PSK (for the wording of "no certificate").
pub(crate) fn classify(
    error: ssl::Error,
    state: Option<&ConnState>,
    psk_enabled: bool,
) -> HandshakeError {
    if let Some(reason) = state.and_then(ConnState::refusal) {
        return HandshakeError::refused(reason);
    }
    let openssl_reason = error
        .ssl_error()
        .and_then(|stack| stack.errors().iter().find_map(|e| e.reason()))
        .map(str::to_owned);
    let Some(openssl_reason) = openssl_reason else {
        if error.code() == ErrorCode::ZERO_RETURN {
            return HandshakeError::Closed;
        }
        return match error.into_io_error() {
            Ok(io)
                if matches!(
                    io.kind(),
                    ErrorKind::UnexpectedEof
                        | ErrorKind::ConnectionReset
                        | ErrorKind::BrokenPipe
                        | ErrorKind::ConnectionAborted
                ) =>
            {
                HandshakeError::Closed
            }
            Ok(io) => HandshakeError::Io(io),
            // SSL_ERROR_SYSCALL without an errno: the peer closed the socket.
            Err(_) => HandshakeError::Closed,
        };
    };
    let psk_identity = state.and_then(ConnState::psk_identity);
    let unknown_psk = state.and_then(ConnState::unknown_psk);
    let reason = match openssl_reason.as_str() {
        "unexpected eof while reading" => return HandshakeError::Closed,
        "http request" | "https proxy request" => "plain HTTP sent to the TLS port".to_owned(),
        "wrong version number"
        | "packet length too long"
        | "record layer failure"
        | "unknown protocol" => "not a TLS handshake".to_owned(),
        "unsupported protocol" | "version too low" => {
            "protocol version refused: TLS 1.2 or newer is required (or the policy's minimum)"
                .to_owned()
        }
        // An identity was offered that the store does not know (TLS 1.2 says so directly,
        // TLS 1.3 falls back to a certificate handshake the client cannot complete).
        _ if psk_identity.is_none() && unknown_psk.is_some() => {
            format!(
                "unknown PSK identity {}",
                Untrusted(unknown_psk.as_deref().unwrap_or_default())
            )
        }
        "decryption failed or bad record mac"
        | "bad record mac"
        | "binder does not verify"
        | "digest check failed"
            if psk_identity.is_some() =>
        {
            let identity = psk_identity.as_deref().unwrap_or_default();
            return HandshakeError::refused_offering(
                format!(
                    "wrong key for PSK identity {} [openssl: {openssl_reason}]",
                    Untrusted(identity)
                ),
                identity,
            );
        }
        // TLS 1.3: the identity was known, but its PSK was not used (the legacy PSK callback
        // binds PSKs to SHA-256) and the handshake fell back to certificates.
        "no suitable signature algorithm"
        | "no shared cipher"
        | "peer did not return a certificate"
            if psk_identity.is_some() =>
        {
            let identity = psk_identity.as_deref().unwrap_or_default();
            return HandshakeError::refused_offering(
                format!(
                    "PSK identity {} is known but its PSK could not be used: TLS 1.3 PSKs need a SHA-256 suite \
                     (TLS_AES_128_GCM_SHA256 or TLS_CHACHA20_POLY1305_SHA256) [openssl: {openssl_reason}]",
                    Untrusted(identity)
                ),
                identity,
            );
        }
        "peer did not return a certificate" if psk_enabled => {
            "client presented neither a certificate nor a PSK".to_owned()
        }
        "peer did not return a certificate" => "client presented no certificate".to_owned(),
        "no shared cipher" => "no cipher suite in common with the client".to_owned(),
        "no suitable signature algorithm" => {
            "no certificate and signature algorithm in common with the client".to_owned()
        }
        other
            if other.starts_with("sslv3 alert")
                || other.starts_with("tlsv1 alert")
                || other.starts_with("tlsv13 alert") =>
        {
            format!(
                "client sent the alert '{}'",
                other.split_once(" alert ").map(|(_, a)| a).unwrap_or(other)
            )
        }
        other => return HandshakeError::refused(other),
    };
    HandshakeError::refused(format!("{reason} [openssl: {openssl_reason}]"))
}
