//! Starts the real `cse` binary on an ephemeral port with its own data folder.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub struct Server {
    /// The `cse` process, or `None` for a CSE served in this process ([`Server::in_process`]).
    child: Option<Child>,
    embedded: Option<Embedded>,
    pub addr: String,
    /// Every `listening on URL` line, in order (plaintext first, then TLS listeners).
    pub urls: Vec<String>,
    pub data: PathBuf,
    /// Where the server's standard error goes (`cse.log` in the data folder by default).
    pub log: PathBuf,
}

impl Server {
    /// Starts `cse --http 127.0.0.1:0 --data DIR` and waits for it to listen.
    pub fn start(data: &Path) -> Self {
        Self::start_with(data, &[])
    }

    pub fn start_with(data: &Path, extra: &[&str]) -> Self {
        Self::start_listeners(data, extra, 1)
    }

    /// Starts the binary and waits for `listeners` `listening on` lines.
    pub fn start_listeners(data: &Path, extra: &[&str], listeners: usize) -> Self {
        std::fs::create_dir_all(data).expect("data dir");
        Self::start_logged(data, &data.join("cse.log"), extra, listeners)
    }

    /// Like [`Server::start_listeners`], with the log in the file `log` (outside the data
    /// folder, which the CSE then creates itself when missing).
    pub fn start_logged(data: &Path, log: &Path, extra: &[&str], listeners: usize) -> Self {
        Self::start_logged_env(data, log, extra, listeners, &[])
    }

    /// Like [`Server::start_listeners`], with `env` set for the server (`SOFTHSM2_CONF`).
    pub fn start_env(data: &Path, extra: &[&str], listeners: usize, env: &[(&str, &Path)]) -> Self {
        std::fs::create_dir_all(data).expect("data dir");
        Self::start_logged_env(data, &data.join("cse.log"), extra, listeners, env)
    }

    fn start_logged_env(
        data: &Path,
        log: &Path,
        extra: &[&str],
        listeners: usize,
        env: &[(&str, &Path)],
    ) -> Self {
        let log_path = log.to_owned();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_cse"))
            .args(["--http", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start cse");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut urls = Vec::new();
        for _ in 0..listeners {
            let mut line = String::new();
            reader
                .read_line(&mut line)
                .expect("read the listening line");
            let url = line
                .trim()
                .strip_prefix("listening on ")
                .unwrap_or_else(|| {
                    panic!(
                        "unexpected line {line:?}; log: {}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    )
                })
                .to_owned();
            urls.push(url);
        }
        let addr = urls[0].split("://").nth(1).unwrap_or_default().to_owned();
        Self {
            child: Some(child),
            embedded: None,
            addr,
            urls,
            data: data.to_owned(),
            log: log_path,
        }
    }

    /// A CSE served in this process through `cli::startup` (the same assembly as the binary),
    /// on `clock`, with the configuration file `config` and the data folder `data`; its log
    /// goes to `cse.log` in the data folder. For tests about time: the test advances the
    /// clock instead of waiting, which a separate process cannot offer (no option moves a
    /// running `cse`'s clock).
    pub fn in_process(
        data: &Path,
        config: Option<&Path>,
        listeners: usize,
        clock: &model::clock::ManualClock,
    ) -> Self {
        std::fs::create_dir_all(data).expect("data dir");
        let log_path = data.join("cse.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        let overrides = cli::startup::Overrides {
            config: config.map(Path::to_owned),
            http: Some("127.0.0.1:0".parse().expect("address")),
            data: Some(data.to_owned()),
        };
        let settings = overrides
            .settings()
            .expect("settings")
            .with_clock(clock.clock());
        let log = tracing::Dispatch::new(
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(&settings.log))
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .finish(),
        );
        let assembled = tracing::dispatcher::with_default(&log, || {
            cli::startup::assemble(&overrides, settings)
        })
        .unwrap_or_else(|e| panic!("assemble: {e}"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tell, told) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let stop = async move {
                let _ = stopped.await;
            };
            if let Err(e) = assembled.serve_with(stop, move |urls| drop(tell.send(urls)), Some(log))
            {
                panic!("serve: {e}");
            }
        });
        let urls: Vec<String> = match told.recv_timeout(std::time::Duration::from_secs(120)) {
            Ok(urls) => urls,
            Err(e) => panic!(
                "the CSE did not listen ({e}); log: {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            ),
        };
        assert!(urls.len() >= listeners, "{urls:?}");
        let addr = urls[0].split("://").nth(1).unwrap_or_default().to_owned();
        Self {
            child: None,
            embedded: Some(Embedded {
                stop: Some(stop),
                thread: Some(thread),
            }),
            addr,
            urls,
            data: data.to_owned(),
            log: log_path,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn client(&self) -> client::Client {
        client::Client::new(&self.url()).expect("client")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a cse process").id()
    }

    /// SIGTERM to the cse process, and waits for the orderly shutdown to end; returns the
    /// exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let child = self.child.as_mut().expect("a cse process");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().ok().and_then(|s| s.code())
    }

    /// SIGKILL: no shutdown, no flush. A CSE served in this process is stopped instead
    /// (listeners closed, audit flushed), and waited for.
    pub fn kill9(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(embedded) = &mut self.embedded {
            embedded.stop();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once it contains `needle` (waiting at most 20 s): the server logs some
    /// events, such as a refused handshake, only after the client has seen their effect.
    pub fn log_with(&self, needle: &str) -> String {
        self.log_with_count(needle, 1)
    }

    /// The log once `needle` occurs at least `count` times (waiting at most 20 s).
    pub fn log_with_count(&self, needle: &str, count: usize) -> String {
        eventually(|| self.log(), &[(needle, count)])
    }
}

/// What `read` returns once every needle occurs at least its count of times, or after 20 s
/// (then the caller's assertion says what is missing): servers log some events, such as a
/// refused handshake, only after the client has seen their effect.
pub fn eventually(read: impl Fn() -> String, needles: &[(&str, usize)]) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = read();
        let all = needles.iter().all(|(n, c)| text.matches(n).count() >= *c);
        if all || std::time::Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A CSE served on a thread of the test process.
struct Embedded {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Embedded {
    /// Stops it and waits until it has (a panic of its thread is reported here).
    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() && !std::thread::panicking() {
                panic!("the CSE served in process failed");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs curl with the given arguments; returns (headers+body) as text.
pub fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .arg("-s")
        .arg("-i")
        .args(args)
        .output()
        .expect("curl is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether curl exists; CI installs it, a laptop may not have it.
pub fn have_curl() -> bool {
    have_tool("curl", &["--version"])
}

/// Whether the openssl command exists (the test PKI, s_client, CSRs).
pub fn have_openssl() -> bool {
    have_tool("openssl", &["version"])
}

/// Whether python3 exists (the stand-in DAS, BSF and HTTPS notification target).
pub fn have_python3() -> bool {
    have_tool("python3", &["--version"])
}

/// Makes the test PKI (`scripts/make-test-pki.sh`) in `dir/tls` and returns that folder.
pub fn make_test_pki(dir: &Path) -> PathBuf {
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
    pki
}

/// The PKI's `cse.toml` with its TLS listener on an ephemeral port and `extra` appended,
/// written to `pki/test.toml`; returns that path.
pub fn test_config(pki: &Path, extra: &str) -> PathBuf {
    let config = std::fs::read_to_string(pki.join("cse.toml"))
        .expect("cse.toml")
        .replace("127.0.0.1:8443", "127.0.0.1:0")
        + extra;
    let path = pki.join("test.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

/// Sends one request primitive and returns the response (panics when none comes).
pub async fn request(
    c: &client::Client,
    op: model::Operation,
    fr: &str,
    to: &str,
    ty: Option<model::ResourceType>,
    pc: Option<serde_json::Value>,
) -> model::Response {
    let mut r = model::Request::new(op, to, Some(fr.to_owned()));
    r.ty = ty;
    r.pc = pc;
    c.send(&r).await.expect("a response")
}

/// Writes to `out` a copy of the certificate `cert_pem` whose ECDSA signature `(r, s)` is
/// replaced by `(r, n - s)`, `n` the order of the issuer's curve (read from `issuer_pem`): the
/// same certificate, signed part and key unchanged, in a different and equally valid
/// encoding. Returns the DER of the original and of the copy.
pub fn reencode_signature(cert_pem: &Path, issuer_pem: &Path, out: &Path) -> (Vec<u8>, Vec<u8>) {
    use openssl::bn::{BigNum, BigNumContext};
    use openssl::ecdsa::EcdsaSig;
    use openssl::x509::X509;
    let read = |p: &Path| X509::from_pem(&std::fs::read(p).expect("pem")).expect("certificate");
    let (cert, issuer) = (read(cert_pem), read(issuer_pem));
    let issuer_key = issuer
        .public_key()
        .and_then(|k| k.ec_key())
        .expect("EC issuer");
    let mut order = BigNum::new().expect("bn");
    issuer_key
        .group()
        .order(&mut order, &mut BigNumContext::new().expect("ctx"))
        .expect("order");
    let der = cert.to_der().expect("der");
    let sig_der = cert.signature().as_slice().to_vec();
    let sig = EcdsaSig::from_der(&sig_der).expect("an ECDSA signature");
    let mut s = BigNum::new().expect("bn");
    s.checked_sub(&order, sig.s()).expect("n - s");
    let twin = EcdsaSig::from_private_components(sig.r().to_owned().expect("r"), s)
        .and_then(|sig| sig.to_der())
        .expect("twin signature");
    let copy = with_signature(&der, &sig_der, &twin);
    let parsed = X509::from_der(&copy).expect("the copy parses");
    assert!(
        parsed
            .verify(&issuer.public_key().expect("key"))
            .expect("verify"),
        "the copy's signature verifies"
    );
    assert_ne!(copy, der, "a different encoding");
    std::fs::write(out, parsed.to_pem().expect("pem")).expect("write the copy");
    (der, copy)
}

/// `m2m credentials id FILE`: the certificate's Credential-ID digest.
pub fn certificate_digest(cert: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
        .args(["credentials", "id"])
        .arg(cert)
        .output()
        .expect("m2m credentials id");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(digest.len(), 64, "{digest}");
    digest
}

/// `der` (a certificate whose signature value is `sig_der`) with the signature value
/// `signature` instead. Certificate = SEQUENCE { tbsCertificate, signatureAlgorithm,
/// BIT STRING { 0, signature } }; the outer header is 4 bytes (30 82 hi lo) and the BIT
/// STRING's 3 (03 len 00) for an ECDSA signature.
fn with_signature(der: &[u8], sig_der: &[u8], signature: &[u8]) -> Vec<u8> {
    assert!(der[0] == 0x30 && der[1] == 0x82 && der.ends_with(sig_der));
    let signed_and_algorithm = &der[4..der.len() - sig_der.len() - 3];
    let mut body = signed_and_algorithm.to_vec();
    body.extend([0x03, (signature.len() + 1) as u8, 0x00]);
    body.extend(signature);
    let mut copy = vec![0x30, 0x82, (body.len() >> 8) as u8, body.len() as u8];
    copy.extend(body);
    copy
}

/// Writes to `out` a copy of `cert_pem` whose ECDSA signature value is the same (r, s) in
/// BER rather than DER (the SEQUENCE length in the long form): an encoding the stack must
/// refuse.
pub fn ber_signature_copy(cert_pem: &Path, out: &Path) {
    use openssl::x509::X509;
    let cert = X509::from_pem(&std::fs::read(cert_pem).expect("pem")).expect("certificate");
    let der = cert.to_der().expect("der");
    let sig_der = cert.signature().as_slice().to_vec();
    assert!(
        sig_der[0] == 0x30 && sig_der[1] < 0x80,
        "a short-form ECDSA signature"
    );
    let mut ber = vec![0x30, 0x81, sig_der[1]];
    ber.extend(&sig_der[2..]);
    let copy = with_signature(&der, &sig_der, &ber);
    let parsed = X509::from_der(&copy).expect("the copy parses");
    std::fs::write(out, parsed.to_pem().expect("pem")).expect("write the copy");
}

/// The workspace's one skip rule (`test-support`): skip with a printed reason, or fail when
/// SECURE_CSE_REQUIRE_SERVICES is set.
pub use test_support::{have_tool, skip_unless};

/// Sends one oneM2M request with curl as a standard client does: `X-M2M-Origin`,
/// `X-M2M-RI`, `X-M2M-RVI: 3` (unless `headers` has its own), the extra `headers`, and the
/// content with its media type.
/// Returns the raw response (head and body).
pub fn m2m_curl(
    url: &str,
    method: &str,
    from: &str,
    headers: &[&str],
    content: Option<(&str, &str)>,
) -> String {
    let from = format!("X-M2M-Origin: {from}");
    let mut args = vec!["-X", method, url, "-H", from.as_str(), "-H", "X-M2M-RI: r"];
    if !headers.iter().any(|h| h.starts_with("X-M2M-RVI:")) {
        args.extend(["-H", "X-M2M-RVI: 3"]);
    }
    for h in headers {
        args.extend(["-H", h]);
    }
    let content_type;
    if let Some((ct, body)) = content {
        content_type = format!("Content-Type: {ct}");
        args.extend(["-H", content_type.as_str(), "-d", body]);
    }
    curl(&args)
}

/// A oneM2M client over HTTP with curl, for the conformance tests: each request is what a
/// standard client sends, and each answer is read as a client reads it.
pub struct Http {
    pub base: String,
}

/// An answer: its `X-M2M-RSC` (0 when missing), its headers, and its body as JSON (`Null`
/// when empty or not JSON).
pub struct Answer {
    pub rsc: u16,
    pub head: String,
    pub body: serde_json::Value,
}

impl Answer {
    /// A response header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::trim)
    }
}

impl Http {
    /// A request with `Content-Type: application/json;ty=<ty>` and the body when given.
    pub fn send(
        &self,
        method: &str,
        from: &str,
        path: &str,
        ty_body: Option<(u8, &str)>,
    ) -> Answer {
        let body = ty_body.map(|(ty, body)| (format!("application/json;ty={ty}"), body));
        self.send_as(
            method,
            from,
            path,
            body.as_ref().map(|(c, b)| (c.as_str(), *b)),
        )
    }

    /// A request with the given content type and body (a NOTIFY, an UPDATE).
    pub fn send_as(
        &self,
        method: &str,
        from: &str,
        path: &str,
        content: Option<(&str, &str)>,
    ) -> Answer {
        let url = format!("{}/{path}", self.base);
        let out = m2m_curl(&url, method, from, &[], content);
        let out = out.replace("\r\n", "\n");
        let (head, body) = out.split_once("\n\n").unwrap_or((out.as_str(), ""));
        let rsc = head
            .lines()
            .find_map(|l| l.strip_prefix("X-M2M-RSC: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Answer {
            rsc,
            head: head.to_owned(),
            body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        }
    }

    pub fn get(&self, from: &str, path: &str) -> Answer {
        self.send("GET", from, path, None)
    }

    /// A CREATE that must succeed (2001).
    pub fn create(&self, from: &str, path: &str, ty: u8, body: &str) -> Answer {
        let a = self.send("POST", from, path, Some((ty, body)));
        assert_eq!(a.rsc, 2001, "{path}: {}", a.body);
        a
    }

    /// An UPDATE (PUT) with JSON content.
    pub fn update(&self, from: &str, path: &str, body: &str) -> Answer {
        self.send_as("PUT", from, path, Some(("application/json", body)))
    }

    /// Registers an AE and returns its AE-ID.
    pub fn register(&self, rn: &str) -> String {
        let body = format!(
            r#"{{"m2m:ae": {{"rn": "{rn}", "api": "Nconformance", "rr": false, "srv": ["3"]}}}}"#
        );
        let a = self.create("C", "cse-in", 2, &body);
        a.body["m2m:ae"]["aei"].as_str().expect("aei").to_owned()
    }
}

/// Writes a secret file the way the CSE and `m2m` require it (mode 600).
pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// Runs `m2m` with `args`.
pub fn m2m(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_m2m"))
        .args(args)
        .output()
        .expect("run m2m")
}

/// A finished command's exit status and output, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// AEs that hold PSK credentials, as (AE-ID, PSK identity, key hex), written into a test's
/// folder: `credentials.toml` for `[security] credentials`, and a key file `<AE-ID>.psk`
/// each for `m2m --psk-key-file`.
pub struct PskAes {
    dir: PathBuf,
    aes: &'static [(&'static str, &'static str, &'static str)],
}

impl PskAes {
    /// Writes the files for `aes` into `dir`.
    pub fn write(dir: &Path, aes: &'static [(&'static str, &'static str, &'static str)]) -> Self {
        let mut credentials = String::new();
        for (ae, identity, key) in aes {
            credentials.push_str(&format!(
                "[[psk]]\nidentity = \"{identity}\"\nkey_hex = \"{key}\"\nae = \"{ae}\"\n\n"
            ));
            write_private(&dir.join(format!("{ae}.psk")), &format!("{key}\n"));
        }
        let aes = Self {
            dir: dir.to_path_buf(),
            aes,
        };
        write_private(&aes.credentials(), &credentials);
        aes
    }

    /// The credential file.
    pub fn credentials(&self) -> PathBuf {
        self.dir.join("credentials.toml")
    }

    /// `m2m` over the PSK listener at `url` as the AE `ae` (its own association), with
    /// `From` = `from`.
    pub fn m2m_as(&self, url: &str, ae: &str, from: &str, args: &[&str]) -> Output {
        let (_, identity, _) = self
            .aes
            .iter()
            .find(|(a, _, _)| *a == ae)
            .expect("known AE");
        let key = self.dir.join(format!("{ae}.psk"));
        let mut all = vec![
            "--url",
            url,
            "--psk-identity",
            identity,
            "--psk-key-file",
            key.to_str().expect("utf8"),
            "--origin",
            from,
        ];
        all.extend_from_slice(args);
        m2m(&all)
    }
}

/// The `cse` command with a configuration file, a data folder, plain HTTP on an ephemeral
/// port, and `env` (a key home's `SOFTHSM2_CONF`, say).
pub fn cse_command(cfg: &Path, data: &Path, env: &[(&str, &Path)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cse"));
    c.args(["--http", "127.0.0.1:0", "--config"])
        .arg(cfg)
        .arg("--data")
        .arg(data);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Starts [`cse_command`], its log in `data/cse.log`, and waits for its first `listeners`
/// URLs: the process, the URLs and the log's path (for tests that keep the process
/// themselves).
pub fn spawn_cse(
    cfg: &Path,
    data: &Path,
    env: &[(&str, &Path)],
    listeners: usize,
) -> (Child, Vec<String>, PathBuf) {
    std::fs::create_dir_all(data).expect("data");
    let log = data.join("cse.log");
    let mut child = cse_command(cfg, data, env)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start cse");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut urls = Vec::new();
    for _ in 0..listeners {
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        match line.trim().strip_prefix("listening on ") {
            Some(url) => urls.push(url.to_owned()),
            None => panic!(
                "cse did not start: {line:?}; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        }
    }
    (child, urls, log)
}

/// One request over HTTP with curl (through `Http`), with optional JSON content.
pub fn call(
    server: &Server,
    method: &str,
    path: &str,
    from: &str,
    content: Option<(&str, &str)>,
) -> (u16, serde_json::Value) {
    let a = Http { base: server.url() }.send_as(method, from, path, content);
    (a.rsc, a.body)
}

/// A CREATE of type `ty` with JSON content, answered as (RSC, body).
pub fn create(
    server: &Server,
    path: &str,
    from: &str,
    ty: u16,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let ct = format!("application/json;ty={ty}");
    call(server, "POST", path, from, Some((&ct, &body.to_string())))
}
