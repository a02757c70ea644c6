//! The client: one pooled hyper client, a base URL, a serialization and a timeout.

use crate::connection::{Connection, Exporter};
use crate::connector::Connector;
use crate::encode::{encode_query, path_for};
use crate::error::ClientError;
use crate::raw::{self, RawResponse};
use crate::tls::TlsOptions;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_LOCATION, CONTENT_TYPE};
use http::{Method, Uri};
use http_body_util::Full;
use hyper_util::rt::TokioExecutor;
use model::codec::{self, Format};
use model::{Operation, Request, Response, ResponseStatusCode};
use std::time::Duration;

const ORIGIN: HeaderName = HeaderName::from_static("x-m2m-origin");
const RI: HeaderName = HeaderName::from_static("x-m2m-ri");
const RVI: HeaderName = HeaderName::from_static("x-m2m-rvi");
const RSC: HeaderName = HeaderName::from_static("x-m2m-rsc");
const OT: HeaderName = HeaderName::from_static("x-m2m-ot");
const RET: HeaderName = HeaderName::from_static("x-m2m-ret");
const RST: HeaderName = HeaderName::from_static("x-m2m-rst");
const OET: HeaderName = HeaderName::from_static("x-m2m-oet");
const VSI: HeaderName = HeaderName::from_static("x-m2m-vsi");
const EC: HeaderName = HeaderName::from_static("x-m2m-ec");

/// A oneM2M HTTP client bound to one CSE's base URL; [`Client::send_to_url`] reaches any
/// other URL (notification targets) through the same connection pool.
///
/// A client made with [`Client::with_tls`] also speaks `https://`, with one TLS
/// configuration for all its connections; TLS connections are pooled and kept alive like
/// plain ones.
///
/// Cloning is cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: hyper_util::client::legacy::Client<Connector, Full<Bytes>>,
    /// The pool's connector, also used for connections outside it ([`Client::connect`]).
    connector: Connector,
    /// Whether the connector can reach `https://` URLs.
    has_tls: bool,
    base: BaseUrl,
    format: Format,
    timeout: Duration,
    max_body_bytes: usize,
}

/// `http[s]://authority` plus an optional path prefix, checked once.
#[derive(Debug, Clone)]
struct BaseUrl {
    /// `http` or `https`.
    scheme: &'static str,
    authority: String,
    /// Path prefix without trailing slash (`""` or `/prefix`).
    prefix: String,
}

impl BaseUrl {
    fn parse(url: &str) -> Result<(Self, Option<String>), ClientError> {
        let invalid = |reason| ClientError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => "http",
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            _ => return Err(invalid("only http:// and https:// URLs are supported")),
        };
        let parsed = uri.authority().ok_or_else(|| invalid("no host"))?;
        let authority = parsed.to_string();
        if authority.contains('@') {
            return Err(invalid("user information in URLs is not supported"));
        }
        if parsed.host().is_empty() {
            return Err(invalid("no host"));
        }
        // `Uri` keeps a port it cannot read as a number.
        if let Some(port) = authority[parsed.host().len()..].strip_prefix(':') {
            if port.parse::<u16>().is_err() {
                return Err(invalid("the port is not a number from 0 to 65535"));
            }
        }
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok((
            Self {
                scheme,
                authority,
                prefix,
            },
            uri.query().map(str::to_owned),
        ))
    }
}

impl Client {
    /// Default time to wait for a complete response.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default largest accepted response body.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

    /// A client for the CSE at `base_url` (`http://host:port`, optionally with a path
    /// prefix), speaking JSON with a [`Client::DEFAULT_TIMEOUT`] per request. It has no
    /// TLS: for `https://` use [`Client::with_tls`].
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::build_client(base_url, None)
    }

    /// A client for the CSE at `base_url` (`https://` or `http://`) that reaches
    /// `https://` URLs with `tls`: its own base URL and any URL given to
    /// [`Client::send_to_url`]. The options' files are read now; a
    /// [`ClientError::Tls`] says what is wrong with them.
    pub fn with_tls(base_url: &str, tls: TlsOptions) -> Result<Self, ClientError> {
        Self::build_client(base_url, Some(tls))
    }

    fn build_client(base_url: &str, tls: Option<TlsOptions>) -> Result<Self, ClientError> {
        let (base, query) = BaseUrl::parse(base_url)?;
        if query.is_some() {
            return Err(ClientError::InvalidUrl {
                url: base_url.to_owned(),
                reason: "a base URL has no query",
            });
        }
        let tls = tls.map(TlsOptions::build).transpose()?;
        let connector = Connector::new(tls, base.authority.clone(), Self::DEFAULT_TIMEOUT);
        let has_tls = connector.has_tls();
        check_scheme(has_tls, &base, base_url)?;
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            // Below the binding's 10 s idle limit, so a pooled connection is not reused
            // just as the server closes it.
            .pool_idle_timeout(Duration::from_secs(5))
            .build(connector.clone());
        Ok(Self {
            http,
            connector,
            has_tls,
            base,
            format: Format::Json,
            timeout: Self::DEFAULT_TIMEOUT,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
        })
    }

    /// Uses `format` for request content and asks for it in responses.
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Waits at most `timeout` for each complete response.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Refuses response bodies larger than `bytes`.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Sends a request to the CSE at the base URL, addressed by its `to`.
    pub async fn send(&self, req: &Request) -> Result<Response, ClientError> {
        let path = format!("{}{}", self.base.prefix, path_for(&req.to));
        self.exchange(&self.base, path, None, req).await
    }

    /// Sends a request to an absolute `http://` URL such as a notification target
    /// (`http://127.0.0.1:9000/notify?x=1`), or an `https://` URL when the client has TLS
    /// options. The URL's path and query are used as given, with the request's own query
    /// parameters appended; `to` travels only in the primitive the receiver reconstructs
    /// from the URL, as TS-0009 clause 6.2.2 intends.
    pub async fn send_to_url(&self, url: &str, req: &Request) -> Result<Response, ClientError> {
        let (base, query) = BaseUrl::parse(url)?;
        check_scheme(self.has_tls, &base, url)?;
        let path = if base.prefix.is_empty() {
            "/".to_owned()
        } else {
            base.prefix.clone()
        };
        self.exchange(&base, path, query, req).await
    }

    /// Sends the administration request `command` (`GET {base}/.admin/{command}`, e.g.
    /// `associations`) as `origin`, which the CSE accepts only from its admin originator.
    /// The response's `pc` is the JSON the CSE answered, such as
    /// `{"associations": [...]}`, or its error content.
    pub async fn admin(&self, command: &str, origin: &str) -> Result<Response, ClientError> {
        self.admin_with(command, &[], origin).await
    }

    /// Like [`Client::admin`], with query parameters (`GET {base}/.admin/{command}?k=v&..`,
    /// each key and value percent-encoded), e.g. `explain` with `from`, `to` and `op`.
    pub async fn admin_with(
        &self,
        command: &str,
        params: &[(&str, &str)],
        origin: &str,
    ) -> Result<Response, ClientError> {
        self.admin_request(http::Method::GET, command, params, origin)
            .await
    }

    /// An administration request that changes something (`POST {base}/.admin/{command}?..`),
    /// e.g. `revoke` with `credential` and `reason`.
    pub async fn admin_post(
        &self,
        command: &str,
        params: &[(&str, &str)],
        origin: &str,
    ) -> Result<Response, ClientError> {
        self.admin_request(http::Method::POST, command, params, origin)
            .await
    }

    async fn admin_request(
        &self,
        method: http::Method,
        command: &str,
        params: &[(&str, &str)],
        origin: &str,
    ) -> Result<Response, ClientError> {
        let valid = !command.is_empty()
            && command
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        if !valid {
            return Err(ClientError::InvalidAdminCommand(command.to_owned()));
        }
        let encode = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let path = if query.is_empty() {
            format!("/.admin/{command}")
        } else {
            format!("/.admin/{command}?{}", query.join("&"))
        };
        let (http_req, rqi) = self.manager_request(method, &path, Some(origin), None)?;
        self.round_trip(http_req, &rqi).await
    }

    /// An HTTP request for `path` (with its query, percent-encoded) under the base URL,
    /// carrying `content` (media type, bytes) when given: for exchanges that are not
    /// request primitives, such as the JSON of a bootstrap server. Send it with
    /// [`Client::request`] or on a [`Connection`].
    pub fn http_request(
        &self,
        method: Method,
        path: &str,
        content: Option<(&str, Vec<u8>)>,
    ) -> Result<http::Request<Full<Bytes>>, ClientError> {
        let uri = format!(
            "{}://{}{}{path}",
            self.base.scheme, self.base.authority, self.base.prefix
        );
        let uri: Uri = uri.parse().map_err(|_| ClientError::InvalidUrl {
            url: uri,
            reason: "not a valid request URI",
        })?;
        let mut http_req = http::Request::new(Full::new(Bytes::new()));
        *http_req.method_mut() = method;
        *http_req.uri_mut() = uri;
        if let Some((media_type, bytes)) = content {
            put(
                http_req.headers_mut(),
                CONTENT_TYPE,
                "content type",
                Some(media_type),
            )?;
            *http_req.body_mut() = Full::new(Bytes::from(bytes));
        }
        Ok(http_req)
    }

    /// A request to one of the security manager's operations under the base URL
    /// (`/.admin/...`, `/.mef/enrol`, `/.mef/certificate`): not a resource, so not a
    /// primitive, but with the oneM2M headers the CSE reads (a fresh `X-M2M-RI`, returned
    /// too, `X-M2M-RVI: 3`, `X-M2M-Origin` when given, `Accept` of the client's
    /// serialization).
    pub fn manager_request(
        &self,
        method: Method,
        path: &str,
        origin: Option<&str>,
        content: Option<(&str, Vec<u8>)>,
    ) -> Result<(http::Request<Full<Bytes>>, String), ClientError> {
        let rqi = model::id::random_token(12);
        let mut http_req = self.http_request(method, path, content)?;
        let h = http_req.headers_mut();
        put(h, ORIGIN, "fr", origin)?;
        put(h, RI, "rqi", Some(&rqi))?;
        put(h, RVI, "rvi", Some("3"))?;
        h.insert(ACCEPT, HeaderValue::from_static(self.format.media_type()));
        Ok((http_req, rqi))
    }

    /// Sends any HTTP request through the pool and reads its answer as it is (any status),
    /// within the client's timeout and body limit.
    pub async fn request(
        &self,
        http_req: http::Request<Full<Bytes>>,
    ) -> Result<RawResponse, ClientError> {
        raw::within(self.timeout, async {
            let resp = self.http.request(http_req).await?;
            raw::read(resp, self.max_body_bytes).await
        })
        .await
    }

    /// Opens a connection of its own to the base URL, outside the pool (see [`Connection`]),
    /// within the client's timeout; with `export`, the TLS session's keying material is
    /// exported right after the handshake.
    ///
    /// The future owns what it needs, so it can be handed to [`crate::Blocking::run`].
    pub fn connect(
        &self,
        export: Option<Exporter>,
    ) -> impl std::future::Future<Output = Result<Connection, ClientError>> + Send + 'static {
        let client = self.clone();
        async move {
            let uri = format!("{}://{}/", client.base.scheme, client.base.authority);
            let uri: Uri = uri.parse().map_err(|_| ClientError::InvalidUrl {
                url: uri,
                reason: "not a valid request URI",
            })?;
            raw::within(client.timeout, async {
                let stream = client.connector.open(uri).await?;
                Connection::start(
                    stream,
                    &client.base.authority,
                    export.as_ref(),
                    client.timeout,
                    client.max_body_bytes,
                )
                .await
            })
            .await
        }
    }

    async fn exchange(
        &self,
        base: &BaseUrl,
        path: String,
        url_query: Option<String>,
        req: &Request,
    ) -> Result<Response, ClientError> {
        let http_req = self.build(base, path, url_query, req)?;
        self.round_trip(http_req, &req.rqi).await
    }

    /// Sends an HTTP request and reads its answer as a response primitive, all within the
    /// timeout.
    async fn round_trip(
        &self,
        http_req: http::Request<Full<Bytes>>,
        rqi: &str,
    ) -> Result<Response, ClientError> {
        self.request(http_req).await?.primitive(self.format, rqi)
    }

    fn build(
        &self,
        base: &BaseUrl,
        path: String,
        url_query: Option<String>,
        req: &Request,
    ) -> Result<http::Request<Full<Bytes>>, ClientError> {
        let query = [url_query.unwrap_or_default(), encode_query(req)]
            .into_iter()
            .filter(|q| !q.is_empty());
        let query = query.collect::<Vec<_>>().join("&");
        let uri = if query.is_empty() {
            format!("{}://{}{path}", base.scheme, base.authority)
        } else {
            format!("{}://{}{path}?{query}", base.scheme, base.authority)
        };
        let uri: Uri = uri.parse().map_err(|_| ClientError::InvalidUrl {
            url: uri,
            reason: "not a valid request URI",
        })?;
        let method = match req.op {
            Operation::Create | Operation::Notify => Method::POST,
            Operation::Retrieve => Method::GET,
            Operation::Update => Method::PUT,
            Operation::Delete => Method::DELETE,
        };
        let mut http_req = http::Request::new(Full::new(Bytes::new()));
        *http_req.method_mut() = method;
        *http_req.uri_mut() = uri;
        let h = http_req.headers_mut();
        put(h, ORIGIN, "fr", req.fr.as_deref())?;
        put(h, RI, "rqi", Some(&req.rqi))?;
        put(h, RVI, "rvi", req.rvi.as_deref())?;
        put(h, OT, "ot", req.ot.as_deref())?;
        put(h, RET, "rqet", req.rqet.as_deref())?;
        put(h, RST, "rset", req.rset.as_deref())?;
        put(h, OET, "oet", req.oet.as_deref())?;
        put(h, VSI, "vsi", req.vsi.as_deref())?;
        put(h, EC, "ec", req.ec.map(|ec| ec.to_string()).as_deref())?;
        h.insert(ACCEPT, HeaderValue::from_static(self.format.media_type()));
        let ty = req.ty.filter(|_| req.op == Operation::Create);
        if req.pc.is_some() || ty.is_some() {
            let content_type = match ty {
                Some(ty) => format!("{};ty={}", self.format.media_type(), ty.code()),
                None => self.format.media_type().to_owned(),
            };
            put(h, CONTENT_TYPE, "ty", Some(&content_type))?;
        }
        if let Some(pc) = &req.pc {
            *http_req.body_mut() = Full::new(Bytes::from(codec::encode(pc, self.format)));
        }
        Ok(http_req)
    }
}

/// Refuses an `https://` URL on a client without TLS options before anything is sent.
fn check_scheme(has_tls: bool, base: &BaseUrl, url: &str) -> Result<(), ClientError> {
    if base.scheme == "https" && !has_tls {
        return Err(ClientError::InvalidUrl {
            url: url.to_owned(),
            reason: "https:// needs TLS options (Client::with_tls)",
        });
    }
    Ok(())
}

fn put(
    h: &mut HeaderMap,
    name: HeaderName,
    param: &'static str,
    value: Option<&str>,
) -> Result<(), ClientError> {
    if let Some(v) = value {
        h.insert(
            name,
            HeaderValue::from_str(v).map_err(|_| ClientError::InvalidHeader(param))?,
        );
    }
    Ok(())
}

/// Reads a response primitive from an HTTP response (TS-0009 clause 6.3 and 6.4, reversed).
pub(crate) fn parse_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    asked: Format,
    request_rqi: &str,
) -> Result<Response, ClientError> {
    let text = |name: &HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let rsc_text = text(&RSC).ok_or(ClientError::MissingRsc { status })?;
    let rsc = rsc_text
        .trim()
        .parse::<u16>()
        .ok()
        .and_then(ResponseStatusCode::from_code)
        .ok_or(ClientError::UnknownRsc(rsc_text))?;
    let pc = if body.is_empty() {
        None
    } else {
        let format = match text(&CONTENT_TYPE) {
            Some(ct) => Format::from_media_type(&ct).map_err(ClientError::Content)?,
            None => asked,
        };
        Some(codec::decode(body, format).map_err(ClientError::Content)?)
    };
    let mut resp = Response::new(rsc, text(&RI).unwrap_or_else(|| request_rqi.to_owned()), pc);
    resp.location = text(&CONTENT_LOCATION);
    resp.ot = text(&OT);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::ResourceType;
    use serde_json::json;

    fn header<'a>(r: &'a http::Request<Full<Bytes>>, name: &str) -> Option<&'a str> {
        r.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn base_urls() {
        assert!(Client::new("http://127.0.0.1:8080").is_ok());
        assert!(Client::new("http://localhost:8080/prefix/").is_ok());
        assert!(Client::new("https://localhost").is_err());
        assert!(Client::new("localhost:8080").is_err());
        assert!(Client::new("http://u:p@localhost").is_err());
        assert!(Client::new("http://localhost/?q=1").is_err());
        assert!(Client::new("http://localhost:x").is_err());
        assert!(Client::new("http://localhost:65536").is_err());
        assert!(Client::new("http://:1").is_err());
        assert!(Client::new("http://[::1]:1").is_ok());
        let tls = || {
            let psk = crate::Psk::from_hex("dev1", "00112233445566778899aabbccddeeff");
            TlsOptions::new().psk(psk.expect("valid"))
        };
        assert!(Client::with_tls("https://localhost:8443", tls()).is_ok());
        assert!(Client::with_tls("http://localhost:8080", tls()).is_ok());
        assert!(Client::with_tls("ftp://localhost", tls()).is_err());
        assert!(matches!(
            Client::with_tls("https://localhost", TlsOptions::new()),
            Err(ClientError::Tls(crate::TlsError::NoTrustAnchors))
        ));
    }

    #[test]
    fn https_request_uri() {
        let psk = crate::Psk::from_hex("dev1", "00112233445566778899aabbccddeeff").expect("valid");
        let client = Client::with_tls("https://cse.example:8443/p", TlsOptions::new().psk(psk))
            .expect("valid");
        let req = Request::new(Operation::Retrieve, "cse-in", Some("CAdmin".into()));
        let r = client
            .build(
                &client.base,
                format!("{}{}", client.base.prefix, path_for(&req.to)),
                None,
                &req,
            )
            .expect("valid");
        assert_eq!(r.uri().to_string(), "https://cse.example:8443/p/cse-in");
    }

    #[test]
    fn create_request_mapping() {
        let client = Client::new("http://127.0.0.1:1/base").expect("valid");
        let mut req = Request::new(Operation::Create, "/id-in/cse-in", Some(String::new()));
        req.ty = Some(ResourceType::Container);
        req.pc = Some(json!({"m2m:cnt": {"rn": "c"}}));
        req.rcn = Some(model::ResultContent::Nothing);
        let r = client
            .build(
                &client.base,
                format!("{}{}", client.base.prefix, path_for(&req.to)),
                None,
                &req,
            )
            .expect("valid");
        assert_eq!(r.method(), Method::POST);
        assert_eq!(
            r.uri().to_string(),
            "http://127.0.0.1:1/base/~/id-in/cse-in?rcn=0"
        );
        assert_eq!(header(&r, "x-m2m-origin"), Some(""));
        assert_eq!(header(&r, "x-m2m-ri"), Some(req.rqi.as_str()));
        assert_eq!(header(&r, "x-m2m-rvi"), Some("3"));
        assert_eq!(header(&r, "content-type"), Some("application/json;ty=3"));
        assert_eq!(header(&r, "accept"), Some("application/json"));
    }

    #[test]
    fn notify_to_url_keeps_its_path_and_query() {
        let client = Client::new("http://127.0.0.1:1")
            .expect("valid")
            .with_format(Format::Cbor);
        let mut req = Request::new(Operation::Notify, "CAe1", None);
        req.pc = Some(json!({"m2m:sgn": {"vrq": true}}));
        let (base, q) = BaseUrl::parse("http://10.0.0.1:9000/notify?token=x").expect("valid");
        let r = client
            .build(&base, base.prefix.clone(), q, &req)
            .expect("valid");
        assert_eq!(r.uri().to_string(), "http://10.0.0.1:9000/notify?token=x");
        assert_eq!(header(&r, "content-type"), Some("application/cbor"));
        assert_eq!(header(&r, "x-m2m-origin"), None);
        req.fr = Some("bad\nvalue".into());
        assert!(matches!(
            client.build(&base, "/".into(), None, &req),
            Err(ClientError::InvalidHeader("fr"))
        ));
    }

    #[test]
    fn response_parsing() {
        let mut h = HeaderMap::new();
        assert!(matches!(
            parse_response(200, &h, b"", Format::Json, "r"),
            Err(ClientError::MissingRsc { status: 200 })
        ));
        h.insert(RSC, HeaderValue::from_static("9999"));
        assert!(matches!(
            parse_response(200, &h, b"", Format::Json, "r"),
            Err(ClientError::UnknownRsc(_))
        ));
        h.insert(RSC, HeaderValue::from_static("2001"));
        h.insert(CONTENT_LOCATION, HeaderValue::from_static("cse-in/c"));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let r = parse_response(201, &h, b"{\"m2m:cnt\":{}}", Format::Json, "r").expect("valid");
        assert_eq!(r.rsc, ResponseStatusCode::Created);
        assert_eq!(r.rqi, "r");
        assert_eq!(r.location.as_deref(), Some("cse-in/c"));
        assert_eq!(r.pc, Some(json!({"m2m:cnt": {}})));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
        assert!(matches!(
            parse_response(201, &h, b"<p>", Format::Json, "r"),
            Err(ClientError::Content(_))
        ));
    }
}
