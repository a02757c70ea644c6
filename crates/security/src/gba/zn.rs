//! The Zn reference point: the NAF (this CSE) asks the BSF for the NAF-specific key of a
//! B-TID.
//!
//! 3GPP runs Zn over Diameter or SOAP, mutually authenticated (TS 29.109, TS 33.220). No
//! 3GPP network is reachable here, so this is a small JSON-over-HTTP stand-in, spoken by
//! `scripts/bsf.py`:
//!
//! ```text
//! POST <bsf_url>/zn/naf-key   {"btid": "...", "naf_fqdn": "id-in.sp.example",
//!                              "ua": "0100000002", "key": "ks_naf"}
//! 200 {"btid": "...", "key_hex": "<64 hex>", "expires": <unix seconds>,
//!      "impi": "...", "enrolee_id": "C..."?}
//! 404 unknown B-TID · 410 B-TID or key lifetime expired · 403 this NAF may not have it
//! ```
//!
//! The answer carries a key, so [`HttpZn`] talks plain HTTP only to a loopback address (the
//! BSF stand-in on the same host); a BSF elsewhere needs a protected Zn, which is not built.
//! The exchange goes through the project's HTTP client (`client`): every call is bounded
//! by one timeout (connect, send and the whole answer) and by [`MAX_ANSWER`] bytes, and an
//! answer may come with `Content-Length`, chunked, or up to the end of the connection.
//!
//! NOTE(gba-blocking): the query is made inside OpenSSL's synchronous PSK callback, on a
//! worker of the CSE's runtime. Waiting there on a future that same runtime must drive
//! could deadlock, so the client runs on a thread and runtime of its own
//! ([`client::Blocking`], started at the first query); the callback only waits for the
//! answer, inside `block_in_place` (see [`super`]).

use client::{Blocking, Client, ClientError};
use manager::kdf::{BootstrapTransactionId, GbaNafKeyKind, NafId, NafKey};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;
use zeroize::{Zeroize, Zeroizing};

/// The longest answer read from a BSF.
pub const MAX_ANSWER: usize = 64 * 1024;

/// What the BSF answers for a B-TID (the USS part reduced to the Enrolee-ID).
pub struct ZnAnswer {
    /// Ks_NAF, Ks_ext_NAF or Ks_int_NAF: the Kpsa (clause 8.3.2.3).
    pub key: NafKey,
    /// End of the key lifetime (seconds since the Unix epoch).
    pub expires: u64,
    /// The Enrolee-ID the MEF/BSF provides for the subscriber (clause 8.3.2.3), if any.
    pub enrolee_id: Option<String>,
}

impl fmt::Debug for ZnAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZnAnswer")
            .field("key", &self.key)
            .field("expires", &self.expires)
            .field("enrolee_id", &self.enrolee_id)
            .finish()
    }
}

/// Why the BSF gave no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZnError {
    /// The BSF does not know the B-TID: an unknown PSK identity.
    #[error("the BSF does not know the B-TID")]
    UnknownBtid,
    /// The B-TID's bootstrapping, or the key lifetime, has ended: the device bootstraps again.
    #[error("the BSF says the B-TID has expired")]
    Expired,
    /// The BSF refuses this NAF the subscriber's key (its user security settings).
    #[error("the BSF refuses this NAF: {0}")]
    Forbidden(String),
    /// No answer (connection refused, timeout, closed early): fail closed.
    #[error("the BSF did not answer: {0}")]
    Unreachable(String),
    /// An answer that is not the protocol (status, JSON, key length, another B-TID).
    #[error("the BSF's answer is unusable: {0}")]
    BadAnswer(String),
}

/// Where the NAF gets keys: the BSF over HTTP ([`HttpZn`]), or a test double.
pub trait ZnSource: Send + Sync + fmt::Debug + 'static {
    /// The NAF key of `btid` for `naf`.
    fn naf_key(
        &self,
        btid: &BootstrapTransactionId,
        naf: &NafId,
        kind: GbaNafKeyKind,
    ) -> Result<ZnAnswer, ZnError>;
}

/// The NAF's Zn client over HTTP to a BSF on this host.
#[derive(Debug, Clone)]
pub struct HttpZn {
    url: String,
    client: Client,
    blocking: Blocking,
}

impl HttpZn {
    /// A client for the BSF at `url` (`http://HOST[:PORT][/PREFIX]` to a loopback address
    /// only: the answer holds a key) with `timeout` for each query.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, String> {
        let shape = || format!("{url:?}: expected http://HOST:PORT[/PATH]");
        let uri: http::Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return Err(format!("{url:?} is not an http:// URL"));
        }
        if url.contains('#') {
            return Err(shape());
        }
        let host = uri
            .host()
            .ok_or_else(shape)?
            .trim_start_matches('[')
            .trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(format!(
                "{url}: the Zn answer carries the NAF key, so plain HTTP is allowed to a loopback address only"
            ));
        }
        if timeout.is_zero() {
            return Err("the BSF timeout must not be zero".into());
        }
        let client = Client::new(url)
            .map_err(|e| e.to_string())?
            .with_timeout(timeout)
            .with_max_body_bytes(MAX_ANSWER);
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            client,
            blocking: Blocking::new("zn-client"),
        })
    }

    /// The BSF's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `POST <url><path>` with a JSON body: the status and the body of the answer.
    fn post_json(&self, path: &str, body: Vec<u8>) -> Result<(u16, Zeroizing<Vec<u8>>), ZnError> {
        let client = self.client.clone();
        let req = client
            .http_request(http::Method::POST, path, Some(("application/json", body)))
            .map_err(|e| ZnError::BadAnswer(format!("cannot make the request: {e}")))?;
        let answer = self
            .blocking
            .run(async move { client.request(req).await })
            .map_err(|e| match e {
                ClientError::BodyTooLarge { .. } => {
                    ZnError::BadAnswer(format!("answer over {MAX_ANSWER} bytes"))
                }
                other => ZnError::Unreachable(format!("{}{path}: {other}", self.url)),
            })?;
        Ok((answer.status(), answer.into_secret_body()))
    }
}

#[derive(Serialize)]
struct ZnRequest<'a> {
    btid: &'a str,
    naf_fqdn: &'a str,
    ua: String,
    key: &'static str,
}

#[derive(Deserialize)]
struct ZnOk {
    btid: String,
    key_hex: String,
    expires: u64,
    #[serde(default)]
    enrolee_id: Option<String>,
}

impl Drop for ZnOk {
    fn drop(&mut self) {
        self.key_hex.zeroize();
    }
}

#[derive(Deserialize, Default)]
struct ZnRefusal {
    #[serde(default)]
    error: String,
}

/// The name of a NAF key kind on the stand-in's Zn and in the configuration.
pub fn key_kind_name(kind: GbaNafKeyKind) -> &'static str {
    match kind {
        GbaNafKeyKind::KsNaf => "ks_naf",
        GbaNafKeyKind::KsExtNaf => "ks_ext_naf",
        GbaNafKeyKind::KsIntNaf => "ks_int_naf",
    }
}

/// The NAF key kind for a name of [`key_kind_name`].
pub fn key_kind(name: &str) -> Option<GbaNafKeyKind> {
    match name {
        "ks_naf" => Some(GbaNafKeyKind::KsNaf),
        "ks_ext_naf" => Some(GbaNafKeyKind::KsExtNaf),
        "ks_int_naf" => Some(GbaNafKeyKind::KsIntNaf),
        _ => None,
    }
}

impl ZnSource for HttpZn {
    fn naf_key(
        &self,
        btid: &BootstrapTransactionId,
        naf: &NafId,
        kind: GbaNafKeyKind,
    ) -> Result<ZnAnswer, ZnError> {
        let request = ZnRequest {
            btid: btid.as_str(),
            naf_fqdn: naf.fqdn.as_str(),
            ua: hex::encode(naf.ua_protocol.0),
            key: key_kind_name(kind),
        };
        let body = serde_json::to_vec(&request)
            .map_err(|e| ZnError::BadAnswer(format!("cannot encode the request: {e}")))?;
        let (status, body) = self.post_json("/zn/naf-key", body)?;
        let refusal = || {
            serde_json::from_slice::<ZnRefusal>(&body)
                .unwrap_or_default()
                .error
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        };
        match status {
            200 => {}
            404 => return Err(ZnError::UnknownBtid),
            410 => return Err(ZnError::Expired),
            403 => return Err(ZnError::Forbidden(refusal())),
            other => {
                return Err(ZnError::BadAnswer(format!(
                    "HTTP status {other}: {}",
                    refusal()
                )))
            }
        }
        let ok: ZnOk = serde_json::from_slice(&body)
            .map_err(|e| ZnError::BadAnswer(format!("not the Zn answer: {e}")))?;
        if ok.btid != btid.as_str() {
            return Err(ZnError::BadAnswer("the answer is for another B-TID".into()));
        }
        let bytes = Zeroizing::new(
            hex::decode(&ok.key_hex)
                .map_err(|_| ZnError::BadAnswer("key_hex is not hex".into()))?,
        );
        let key = NafKey::from_slice(&bytes)
            .map_err(|_| ZnError::BadAnswer("the NAF key is not 32 bytes".into()))?;
        let enrolee_id = ok.enrolee_id.clone();
        if enrolee_id
            .as_deref()
            .is_some_and(|id| id.is_empty() || id.chars().any(|c| c.is_control() || c == ' '))
        {
            return Err(ZnError::BadAnswer("enrolee_id is not an identifier".into()));
        }
        Ok(ZnAnswer {
            key,
            expires: ok.expires,
            enrolee_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use manager::kdf::Fqdn;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn urls_parse_and_only_loopback_is_allowed_for_zn() {
        let zn = |url| HttpZn::new(url, Duration::from_secs(1));
        assert_eq!(
            zn("http://127.0.0.1:8099/bsf/").expect("url").url(),
            "http://127.0.0.1:8099/bsf"
        );
        assert!(zn("http://[::1]:80").is_ok());
        assert!(zn("http://localhost/zn/").is_ok(), "default port");
        for bad in [
            "https://127.0.0.1:1",
            "http://u@127.0.0.1:1",
            "http://127.0.0.1:x",
            "http://127.0.0.1:1/p?q",
            "http://127.0.0.1:1/p#f",
            "http://:1",
            "http://bsf.example:80",
        ] {
            assert!(zn(bad).is_err(), "{bad}");
        }
        assert!(HttpZn::new("http://localhost:80", Duration::ZERO).is_err());
    }

    /// A one-shot server that answers `reply` to the first request (read whole: head and
    /// `Content-Length` body).
    fn serve_once(reply: &'static [u8]) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if got.len() >= end + 4 + length {
                        break;
                    }
                }
                let n = s.read(&mut chunk).expect("read");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&chunk[..n]);
            }
            s.write_all(reply).expect("write");
            got
        });
        (url, handle)
    }

    fn naf() -> NafId {
        NafId {
            fqdn: Fqdn::new("id-in.sp.example").expect("fqdn"),
            ua_protocol: crate::gba::UA_TLS_PSK,
        }
    }

    #[test]
    fn answers_map_to_keys_and_refusals() {
        let btid = BootstrapTransactionId::new("qg==@bsf.sp.example").expect("btid");
        let ok = b"HTTP/1.0 200 OK\r\n\r\n{\"btid\": \"qg==@bsf.sp.example\", \"key_hex\": \"0707070707070707070707070707070707070707070707070707070707070707\", \"expires\": 9}";
        let (url, seen) = serve_once(ok);
        let zn = HttpZn::new(&url, Duration::from_secs(5)).expect("zn");
        let answer = zn
            .naf_key(&btid, &naf(), GbaNafKeyKind::KsNaf)
            .expect("answer");
        assert_eq!(answer.key.expose(), &[7; 32]);
        assert_eq!(answer.expires, 9);
        let seen = String::from_utf8(seen.join().expect("server")).expect("utf8");
        assert!(seen.starts_with("POST /zn/naf-key HTTP/1.1\r\n"), "{seen}");
        assert!(seen.contains("\"ua\":\"0100000002\""), "{seen}");
        assert!(!format!("{answer:?}").contains("07"));

        let (url, _) = serve_once(b"HTTP/1.0 404 Not Found\r\n\r\n{}");
        let zn = HttpZn::new(&url, Duration::from_secs(5)).expect("zn");
        assert_eq!(
            zn.naf_key(&btid, &naf(), GbaNafKeyKind::KsNaf)
                .map(|_| ())
                .expect_err("unknown"),
            ZnError::UnknownBtid
        );
        let (url, _) = serve_once(b"HTTP/1.0 200 OK\r\n\r\n{\"btid\": \"other@bsf.sp.example\", \"key_hex\": \"00\", \"expires\": 9}");
        let zn = HttpZn::new(&url, Duration::from_secs(5)).expect("zn");
        assert!(matches!(
            zn.naf_key(&btid, &naf(), GbaNafKeyKind::KsNaf),
            Err(ZnError::BadAnswer(_))
        ));
    }

    /// The edges the client reads once for every caller: a chunked answer is read whole,
    /// one over [`MAX_ANSWER`] is unusable, a BSF that never answers is unreachable.
    #[test]
    fn chunked_oversized_and_silent_answers() {
        let btid = BootstrapTransactionId::new("qg==@bsf.sp.example").expect("btid");
        let mut ok = String::from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for part in [
            r#"{"btid": "qg==@bsf.sp.example", "#,
            &format!(r#""key_hex": "{}", "expires": 9}}"#, "07".repeat(32)),
        ] {
            ok.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
        }
        ok.push_str("0\r\n\r\n");
        let ok: &'static [u8] = Box::leak(ok.into_bytes().into_boxed_slice());
        let (url, _) = serve_once(ok);
        let zn = HttpZn::new(&url, Duration::from_secs(5)).expect("zn");
        let answer = zn.naf_key(&btid, &naf(), GbaNafKeyKind::KsNaf);
        assert_eq!(answer.expect("chunked").key.expose(), &[7; 32]);

        let huge: &'static [u8] = Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                MAX_ANSWER + 1
            )
            .into_bytes()
            .into_iter()
            .chain(std::iter::repeat_n(b' ', MAX_ANSWER + 1))
            .collect::<Vec<u8>>()
            .into_boxed_slice(),
        );
        let (url, _) = serve_once(huge);
        let zn = HttpZn::new(&url, Duration::from_secs(5)).expect("zn");
        assert!(matches!(
            zn.naf_key(&btid, &naf(), GbaNafKeyKind::KsNaf),
            Err(ZnError::BadAnswer(m)) if m.contains("over")
        ));

        // Accepts, and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let zn = HttpZn::new(&url, Duration::from_millis(200)).expect("zn");
        assert!(matches!(
            zn.naf_key(&btid, &naf(), GbaNafKeyKind::KsNaf),
            Err(ZnError::Unreachable(_))
        ));
        drop(listener);
    }

    /// The PSK callback runs inside the CSE's runtime. On a current-thread runtime the
    /// callback cannot step aside (`block_in_place` needs a multi-threaded one), so a query
    /// that needed this runtime to make progress would wait on itself forever; the query
    /// runs on the client's own thread instead and answers.
    #[test]
    fn a_query_from_inside_a_current_thread_runtime_answers() {
        let btid = BootstrapTransactionId::new("qg==@bsf.sp.example").expect("btid");
        let (url, _) = serve_once(b"HTTP/1.0 404 Not Found\r\n\r\n{}");
        let zn = HttpZn::new(&url, Duration::from_secs(5)).expect("zn");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let answer = runtime.block_on(async { zn.naf_key(&btid, &naf(), GbaNafKeyKind::KsNaf) });
        assert_eq!(answer.map(|_| ()).expect_err("404"), ZnError::UnknownBtid);
    }

    #[test]
    fn a_closed_port_is_unreachable() {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let zn =
            HttpZn::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2)).expect("zn");
        let btid = BootstrapTransactionId::new("qg==@bsf.sp.example").expect("btid");
        assert!(matches!(
            zn.naf_key(&btid, &naf(), GbaNafKeyKind::KsNaf),
            Err(ZnError::Unreachable(_))
        ));
    }
}
