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
//! Every call is bounded by one timeout (connect, each read and write, and the whole answer)
//! and by [`MAX_ANSWER`] bytes.

use manager::kdf::{BootstrapTransactionId, GbaNafKeyKind, NafId, NafKey};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
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

/// An `http://host:port/prefix` URL, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    host: String,
    port: u16,
    prefix: String,
}

impl HttpUrl {
    /// Parses `http://HOST[:PORT][/PREFIX]` (no query, no fragment, no user info) with
    /// `http::Uri`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let shape = || format!("{url:?}: expected http://HOST:PORT[/PATH]");
        let uri: http::Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return Err(format!("{url:?} is not an http:// URL"));
        }
        let authority = uri.authority().ok_or_else(shape)?;
        if authority.as_str().contains('@') || uri.query().is_some() || url.contains('#') {
            return Err(shape());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url:?}: bad host"));
        }
        // `Uri` keeps a port it cannot read as a number; that is an error here.
        let port = match authority.as_str()[authority.host().len()..].strip_prefix(':') {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("{url:?}: bad port {p:?}"))?,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// Whether the host is a loopback address (or `localhost`).
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    fn addrs(&self) -> Result<Vec<SocketAddr>, String> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.contains(':') {
            true => write!(f, "http://[{}]:{}{}", self.host, self.port, self.prefix),
            false => write!(f, "http://{}:{}{}", self.host, self.port, self.prefix),
        }
    }
}

/// `POST <url><path>` with a JSON body; the status and the body of the answer. One request
/// per connection; `timeout` bounds the connection, every read and write and the whole
/// exchange; answers over [`MAX_ANSWER`] bytes are refused. Used by the NAF (Zn) and by the
/// device side of the stand-in bootstrap (`m2m gba`).
pub fn post_json(
    url: &HttpUrl,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, Zeroizing<Vec<u8>>), ZnError> {
    let deadline = Instant::now() + timeout;
    let unreachable =
        |what: &str, e: &dyn fmt::Display| ZnError::Unreachable(format!("{what} {url}{path}: {e}"));
    let addrs = url.addrs().map_err(ZnError::Unreachable)?;
    let mut last = String::from("no address");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    let mut stream = stream.ok_or_else(|| unreachable("cannot connect to", &last))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| unreachable("cannot set up", &e))?;
    let mut request = Zeroizing::new(
        format!(
            "POST {}{path} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            url.prefix,
            url.host,
            url.port,
            body.len()
        )
        .into_bytes(),
    );
    request.extend_from_slice(body);
    stream
        .write_all(&request)
        .map_err(|e| unreachable("cannot send to", &e))?;
    let mut answer = Zeroizing::new(Vec::new());
    let mut buf = Zeroizing::new([0u8; 4096]);
    loop {
        if Instant::now() >= deadline {
            return Err(unreachable("timed out waiting for", &"the whole answer"));
        }
        match stream.read(&mut buf[..]) {
            Ok(0) => break,
            Ok(n) => {
                if answer.len() + n > MAX_ANSWER {
                    return Err(ZnError::BadAnswer(format!(
                        "answer over {MAX_ANSWER} bytes"
                    )));
                }
                answer.extend_from_slice(&buf[..n]);
                if complete(&answer) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(unreachable("no answer from", &e)),
        }
    }
    parse_answer(&answer)
}

/// Whether `bytes` hold the head and the whole `Content-Length` body.
fn complete(bytes: &[u8]) -> bool {
    let Some(end) = find(bytes, b"\r\n\r\n") else {
        return false;
    };
    content_length(&bytes[..end]).is_some_and(|len| bytes.len() >= end + 4 + len)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> Option<usize> {
    std::str::from_utf8(head).ok()?.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

fn parse_answer(bytes: &[u8]) -> Result<(u16, Zeroizing<Vec<u8>>), ZnError> {
    let end = find(bytes, b"\r\n\r\n")
        .ok_or_else(|| ZnError::Unreachable("the answer ended before its headers did".into()))?;
    let head = std::str::from_utf8(&bytes[..end])
        .map_err(|_| ZnError::BadAnswer("headers are not UTF-8".into()))?;
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| ZnError::BadAnswer("no HTTP status line".into()))?;
    let mut body = bytes[end + 4..].to_vec();
    if let Some(len) = content_length(&bytes[..end]) {
        if body.len() < len {
            body.zeroize();
            return Err(ZnError::Unreachable("the answer was cut short".into()));
        }
        body.truncate(len);
    }
    Ok((status, Zeroizing::new(body)))
}

/// The NAF's Zn client over HTTP to a BSF on this host.
#[derive(Debug, Clone)]
pub struct HttpZn {
    url: HttpUrl,
    timeout: Duration,
}

impl HttpZn {
    /// A client for the BSF at `url` (`http://` to a loopback address only: the answer holds
    /// a key) with `timeout` for each query.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, String> {
        let url = HttpUrl::parse(url)?;
        if !url.is_loopback() {
            return Err(format!(
                "{url}: the Zn answer carries the NAF key, so plain HTTP is allowed to a loopback address only"
            ));
        }
        if timeout.is_zero() {
            return Err("the BSF timeout must not be zero".into());
        }
        Ok(Self { url, timeout })
    }

    /// The BSF's URL.
    pub fn url(&self) -> &HttpUrl {
        &self.url
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
        let (status, body) = post_json(&self.url, "/zn/naf-key", &body, self.timeout)?;
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
    use std::net::TcpListener;

    #[test]
    fn urls_parse_and_only_loopback_is_allowed_for_zn() {
        let u = HttpUrl::parse("http://127.0.0.1:8099/bsf/").expect("url");
        assert_eq!(u.to_string(), "http://127.0.0.1:8099/bsf");
        assert!(u.is_loopback());
        assert_eq!(
            HttpUrl::parse("http://[::1]:80").expect("v6").to_string(),
            "http://[::1]:80"
        );
        assert!(HttpUrl::parse("https://127.0.0.1:1").is_err());
        assert!(HttpUrl::parse("http://u@127.0.0.1:1").is_err());
        assert!(HttpUrl::parse("http://127.0.0.1:x").is_err());
        assert!(HttpUrl::parse("http://127.0.0.1:1/p?q").is_err());
        assert!(HttpUrl::parse("http://127.0.0.1:1/p#f").is_err());
        assert!(HttpUrl::parse("http://:1").is_err());
        assert_eq!(
            HttpUrl::parse("http://localhost/zn/")
                .expect("default port")
                .to_string(),
            "http://localhost:80/zn"
        );
        assert!(HttpZn::new("http://bsf.example:80", Duration::from_secs(1)).is_err());
        assert!(HttpZn::new("http://localhost:80", Duration::ZERO).is_err());
    }

    /// A one-shot server that answers `reply` to the first request.
    fn serve_once(reply: &'static [u8]) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut got = vec![0u8; 4096];
            let n = s.read(&mut got).expect("read");
            got.truncate(n);
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
