//! The binding's client side: the CSE's door out ([`cse::outbound::Outbound`]) for
//! `http://` and `https://` targets, over the `client` crate's pooled hyper client.
//!
//! A request primitive travels as TS-0009 maps it (the target URL's path and query as
//! given, `to` only in the primitive the receiver reconstructs); the answer's `X-M2M-*`
//! headers and body come back as a response primitive.

use client::{Client, ClientError, TlsOptions};
use cse::outbound::{Delivery, DeliveryError, Limits, Outbound, Senders};
use cse::NotificationTls;
use model::codec::Format;
use model::Request;
use std::sync::Arc;

/// Sends to `http://` targets, and to `https://` targets when it has TLS options.
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: Client,
}

impl HttpSender {
    /// A sender that authenticates `https://` targets with `tls` (and itself to them, when
    /// it names a client certificate); without `tls`, `https://` targets are refused. The
    /// files are read now, so a configuration error shows at start-up rather than at the
    /// first notification.
    pub fn new(tls: Option<&NotificationTls>) -> Result<Self, ClientError> {
        // The base URL is never used: targets are absolute URLs (`send_to_url`).
        let client = match tls {
            None => Client::new("http://127.0.0.1"),
            Some(tls) => Client::with_tls("http://127.0.0.1", tls_options(tls)),
        }?;
        Ok(Self { client })
    }

    /// The CSE's senders with this one for `http` and `https`.
    pub fn senders(tls: Option<&NotificationTls>) -> Result<Senders, ClientError> {
        let http: Arc<dyn Outbound> = Arc::new(Self::new(tls)?);
        Ok(Senders::new()
            .with("http", http.clone())
            .with("https", http))
    }
}

impl Outbound for HttpSender {
    fn send<'a>(&'a self, target: &'a str, req: &'a Request, limits: Limits) -> Delivery<'a> {
        Box::pin(async move {
            let (url, format) = serialization(target)?;
            let mut client = self
                .client
                .clone()
                .with_timeout(limits.timeout)
                .with_max_body_bytes(limits.max_body_bytes);
            if let Some(format) = format {
                client = client.with_format(format);
            }
            client.send_to_url(&url, req).await.map_err(delivery_error)
        })
    }
}

/// The serialization a target asks for with `ct=` in its query (a notification URI such
/// as `http://host/n?ct=cbor`, TS-0004 clause 7.5.1.2.2 step 2.5), and the target without
/// it, as it is sent. A serialization this binding cannot produce (XML) is refused.
fn serialization(target: &str) -> Result<(String, Option<Format>), DeliveryError> {
    let Some((base, query)) = target.split_once('?') else {
        return Ok((target.to_owned(), None));
    };
    let mut format = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("ct", "json")) => format = Some(Format::Json),
            Some(("ct", "cbor")) => format = Some(Format::Cbor),
            Some(("ct", other)) => {
                return Err(DeliveryError::Unsendable(format!(
                    "serialization '{}' is not supported",
                    model::Untrusted(&other)
                )))
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, format))
}

/// The client TLS options for `https://` targets: only the configured CAs vouch for a
/// target, whose host name must match its certificate.
fn tls_options(tls: &NotificationTls) -> TlsOptions {
    let mut options = TlsOptions::new();
    for ca in &tls.trust_anchors {
        options = options.trust_anchor_file(ca);
    }
    if let Some((chain, key)) = &tls.client_certificate {
        options = options.client_cert_files(chain, key);
    }
    options
}

/// What a client error means for the CSE; the message is the client's own.
fn delivery_error(e: ClientError) -> DeliveryError {
    let reason = e.to_string();
    match e {
        ClientError::Transport(_) => DeliveryError::Unreachable(reason),
        ClientError::Timeout(d) => DeliveryError::Timeout(d),
        ClientError::MissingRsc { status } => DeliveryError::NoPrimitive {
            accepted: (200..300).contains(&status),
            reason,
        },
        ClientError::Body(_)
        | ClientError::BodyTooLarge { .. }
        | ClientError::UnknownRsc(_)
        | ClientError::Content(_) => DeliveryError::NoPrimitive {
            accepted: false,
            reason,
        },
        _ => DeliveryError::Unsendable(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_keep_their_meaning() {
        let webhook = delivery_error(ClientError::MissingRsc { status: 204 });
        assert!(matches!(
            webhook,
            DeliveryError::NoPrimitive { accepted: true, .. }
        ));
        let refused = delivery_error(ClientError::MissingRsc { status: 404 });
        assert!(matches!(
            refused,
            DeliveryError::NoPrimitive {
                accepted: false,
                ..
            }
        ));
        let bad = delivery_error(ClientError::InvalidHeader("fr"));
        assert!(matches!(bad, DeliveryError::Unsendable(_)));
        assert_eq!(
            bad.to_string(),
            ClientError::InvalidHeader("fr").to_string()
        );
    }

    #[test]
    fn ct_in_the_query_chooses_the_serialization_and_is_not_sent_on() {
        let cases = [
            ("http://h/n", "http://h/n", None),
            ("http://h/n?ct=cbor", "http://h/n", Some(Format::Cbor)),
            (
                "http://h/n?a=1&ct=json&b=2",
                "http://h/n?a=1&b=2",
                Some(Format::Json),
            ),
        ];
        for (target, url, format) in cases {
            assert_eq!(
                serialization(target),
                Ok((url.to_owned(), format)),
                "{target}"
            );
        }
        assert!(matches!(
            serialization("http://h/n?ct=xml"),
            Err(DeliveryError::Unsendable(_))
        ));
    }

    #[test]
    fn unreadable_tls_files_fail_at_start() {
        let tls = NotificationTls {
            trust_anchors: vec!["/nonexistent/ca.pem".into()],
            client_certificate: None,
        };
        assert!(matches!(
            HttpSender::new(Some(&tls)),
            Err(ClientError::Tls(_))
        ));
        let senders = HttpSender::senders(None).expect("plain");
        assert!(senders.reaches("http://h/n") && senders.reaches("https://h/n"));
        assert!(!senders.reaches("coap://h/n"));
    }
}
