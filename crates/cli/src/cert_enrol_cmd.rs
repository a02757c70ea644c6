//! `m2m enrol-cert`: the device side of certificate-based enrolment (TS-0003 clause 8.3.2.2)
//! against a CSE whose MEF has a device enrolment listener (`[enrolment] device_listen`).
//!
//! 1. A new ECDSA P-256 key is made and written to `--key-out` (mode 600, never replaced);
//! 2. a CSR for it, with an empty subject and no subjectAltName (the MEF decides the AE-ID);
//! 3. mutual TLS to the listener (`--url`) with the device certificate and key, the CSE's
//!    certificate checked against `--cacert` and `--servername` (or the URL's host);
//! 4. one request, `POST /.mef/certificate` with the CSR (PEM);
//! 5. the certificate of the answer is written to `--cert-out`, ready for
//!    `m2m --cert CERT --key KEY --cacert ca.pem ...` on the CSE's normal TLS listener.
//!
//! Exit codes: 0 enrolled, 1 the MEF refused (its status is printed), 2 usage (arguments,
//! files), 3 no answer (connection or handshake refused, timeout, unreadable answer).

use anyhow::{anyhow, bail, Context};
use clap::Args;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVersion};
use openssl::x509::{X509NameBuilder, X509ReqBuilder};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The arguments of `m2m enrol-cert` (the listener's URL is the global `--url`, the CSE's CA
/// the global `--cacert`, its name the global `--servername`).
#[derive(Debug, Args)]
pub struct CertEnrolArgs {
    /// The device (manufacturer) certificate, PEM (leaf first).
    #[arg(long, value_name = "FILE")]
    pub device_cert: PathBuf,
    /// The device certificate's private key, PEM (mode 600).
    #[arg(long, value_name = "FILE")]
    pub device_key: PathBuf,
    /// Where to write the new private key (PEM, mode 600); an existing file is not replaced.
    #[arg(long, value_name = "FILE")]
    pub key_out: PathBuf,
    /// Where to write the issued AE-ID certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert_out: PathBuf,
}

/// What the MEF issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The AE-ID certified.
    pub ae_id: String,
    /// The certificate's serial (hex).
    pub serial: String,
    /// End of validity (RFC 3339).
    pub not_after: String,
}

/// Why an enrolment did not complete: the exit code and the message.
#[derive(Debug)]
struct Failure(u8, anyhow::Error);

/// Runs `m2m enrol-cert`; prints what was issued, or the error.
pub fn run(
    url: &str,
    timeout: Duration,
    cacert: &[PathBuf],
    servername: Option<&str>,
    args: &CertEnrolArgs,
) -> ExitCode {
    match enrol(url, timeout, cacert, servername, args) {
        Ok(i) => {
            crate::outln!("AE-ID       {}", i.ae_id);
            crate::outln!("serial      {}", i.serial);
            crate::outln!("not after   {}", i.not_after);
            crate::outln!("certificate {}", args.cert_out.display());
            crate::outln!("key         {}", args.key_out.display());
            ExitCode::SUCCESS
        }
        Err(Failure(code, e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn usage(e: anyhow::Error) -> Failure {
    Failure(2, e)
}

fn no_answer(e: anyhow::Error) -> Failure {
    Failure(3, e)
}

fn enrol(
    url: &str,
    timeout: Duration,
    cacert: &[PathBuf],
    servername: Option<&str>,
    args: &CertEnrolArgs,
) -> Result<Issued, Failure> {
    let (host, port) = parse_url(url).map_err(usage)?;
    if cacert.is_empty() {
        return Err(usage(anyhow!(
            "--cacert: the CA certificate that issued the CSE's certificate"
        )));
    }
    if args.key_out.exists() {
        return Err(usage(anyhow!(
            "{} exists; it is not replaced",
            args.key_out.display()
        )));
    }
    let mut builder = SslConnector::builder(SslMethod::tls_client())
        .map_err(|e| usage(anyhow!("TLS client: {e}")))?;
    builder
        .set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(|e| usage(anyhow!("TLS client: {e}")))?;
    for ca in cacert {
        builder
            .load_verify_locations(Some(ca), None)
            .map_err(|e| usage(anyhow!("{}: {e}", ca.display())))?;
    }
    builder
        .set_certificate_chain_file(&args.device_cert)
        .map_err(|e| usage(anyhow!("{}: {e}", args.device_cert.display())))?;
    builder
        .set_private_key_file(&args.device_key, SslFiletype::PEM)
        .map_err(|e| usage(anyhow!("{}: {e}", args.device_key.display())))?;
    builder.check_private_key().map_err(|e| {
        usage(anyhow!(
            "the device key does not match its certificate: {e}"
        ))
    })?;
    let connector = builder.build();

    let (key_pem, csr_pem) = new_key_and_csr().map_err(usage)?;
    let name = servername.unwrap_or(&host);
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| no_answer(anyhow!("cannot resolve {host}")))?;
    let tcp = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to {addr}"))
        .map_err(no_answer)?;
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));
    let mut tls = connector
        .connect(name, tcp)
        .map_err(|e| no_answer(anyhow!("TLS handshake with {addr} ({name}) failed: {e}")))?;
    let request = format!(
        "POST /.mef/certificate HTTP/1.1\r\nHost: {name}\r\nX-M2M-RI: enrol-cert\r\nX-M2M-RVI: 3\r\n\
         Content-Type: application/pkcs10\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        csr_pem.len()
    );
    // NOTE(alert): in TLS 1.3 the MEF checks the device certificate after this side has
    // finished its handshake, so a refusal (`unknown ca`) arrives as an alert while the
    // request is on its way. The request goes out in one write, and should the write fail
    // anyway (EPIPE once the MEF has closed), the alert, which says why, is read: a bare
    // "Broken pipe" told the user nothing.
    let mut whole = request.into_bytes();
    whole.extend_from_slice(&csr_pem);
    if let Err(e) = tls.write_all(&whole).and_then(|()| tls.flush()) {
        let why = match read_answer(&mut tls) {
            Err(refused) => refused,
            Ok(_) => anyhow::Error::new(e).context("sending the request"),
        };
        return Err(no_answer(why));
    }
    let (rsc, body) = read_answer(&mut tls).map_err(no_answer)?;
    let content: serde_json::Value = serde_json::from_slice(&body)
        .context("the answer is not JSON")
        .map_err(no_answer)?;
    if rsc != Some(2001) {
        return Err(Failure(
            1,
            anyhow!(
                "the MEF refused the enrolment: {} ({})",
                rsc.unwrap_or_default(),
                content["m2m:dbg"].as_str().unwrap_or_default()
            ),
        ));
    }
    let field = |name: &str| {
        content["m2m:certRsp"][name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| no_answer(anyhow!("the answer has no {name}")))
    };
    let certificate = field("certificate")?;
    openssl::x509::X509::from_pem(certificate.as_bytes())
        .map_err(|e| no_answer(anyhow!("the answer's certificate is not PEM: {e}")))?;
    write_file(&args.key_out, &key_pem, true).map_err(usage)?;
    write_file(&args.cert_out, certificate.as_bytes(), false).map_err(usage)?;
    Ok(Issued {
        ae_id: field("aeId")?,
        serial: field("serial")?,
        not_after: field("notAfter")?,
    })
}

/// A new P-256 key (PKCS#8 PEM) and a CSR for it (PEM), empty subject.
fn new_key_and_csr() -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut req = X509ReqBuilder::new()?;
    req.set_pubkey(&key)?;
    req.set_subject_name(&X509NameBuilder::new()?.build())?;
    req.sign(&key, MessageDigest::sha256())?;
    Ok((key.private_key_to_pem_pkcs8()?, req.build().to_pem()?))
}

/// Largest answer read: a certificate and some JSON.
const MAX_ANSWER: usize = 64 * 1024;

/// One HTTP answer with a `Content-Length`: `X-M2M-RSC` and the body.
fn read_answer(stream: &mut impl Read) -> anyhow::Result<(Option<u16>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_ANSWER {
            bail!("answer head too long");
        }
        let n = stream.read(&mut chunk).context("reading the answer")?;
        if n == 0 {
            bail!("the MEF closed the connection without an answer");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("answer head is not text")?;
    let (mut rsc, mut length) = (None, 0usize);
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("x-m2m-rsc") {
                rsc = value.trim().parse().ok();
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().context("bad Content-Length")?;
            }
        }
    }
    if length > MAX_ANSWER {
        bail!("answer body too long");
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).context("reading the answer")?;
        if n == 0 {
            bail!("the answer was cut short");
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok((rsc, body))
}

/// `https://HOST[:PORT][/...]` to host and port (443 by default).
fn parse_url(url: &str) -> anyhow::Result<(String, u16)> {
    crate::https_url::host_and_port(url, "device enrolment listener")
}

/// Writes a new file (mode 600 when `private`); an existing key file is never replaced.
fn write_file(path: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if private {
        options.create_new(true).mode(0o600);
    } else {
        options.create(true).truncate(true).mode(0o644);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_answers() {
        assert_eq!(
            parse_url("https://127.0.0.1:8446/x").expect("ok"),
            ("127.0.0.1".to_owned(), 8446)
        );
        assert!(parse_url("http://127.0.0.1:8446").is_err());
        let answer = b"HTTP/1.1 201 Created\r\nX-M2M-RSC: 2001\r\nContent-Length: 2\r\n\r\n{}";
        let (rsc, body) = read_answer(&mut &answer[..]).expect("answer");
        assert_eq!((rsc, body.as_slice()), (Some(2001), &b"{}"[..]));
        assert!(read_answer(&mut &b"HTTP/1.1 200 OK\r\n"[..]).is_err());
    }

    #[test]
    fn the_csr_is_p256_and_self_signed() {
        let (key, csr) = new_key_and_csr().expect("csr");
        let req = openssl::x509::X509Req::from_pem(&csr).expect("pem");
        let public = req.public_key().expect("key");
        assert!(req.verify(&public).expect("verify"));
        let private = PKey::private_key_from_pem(&key).expect("key pem");
        assert!(private.public_eq(&public));
        assert_eq!(
            public.ec_key().expect("ec").group().curve_name(),
            Some(Nid::X9_62_PRIME256V1)
        );
    }
}
