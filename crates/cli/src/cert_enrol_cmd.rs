//! `m2m enrol-cert`: the device side of certificate-based enrolment (TS-0003 clause 8.3.2.2)
//! against a CSE whose MEF has a device enrolment listener (`[enrolment] device_listen`).
//!
//! 1. A new ECDSA P-256 key is made and written to `--key-out` (mode 600, never replaced);
//! 2. a CSR for it, with an empty subject and no subjectAltName (the MEF decides the AE-ID);
//! 3. mutual TLS to the listener (`--url`) with the device certificate and key (mode 600),
//!    the CSE's certificate checked against `--cacert` (only those CAs) and `--servername`
//!    (or the URL's host), through the project's HTTP client;
//! 4. one request, `POST /.mef/certificate` with the CSR (PEM);
//! 5. the certificate of the answer is written to `--cert-out`, ready for
//!    `m2m --cert CERT --key KEY --cacert ca.pem ...` on the CSE's normal TLS listener.
//!
//! Exit codes: 0 enrolled, 1 the MEF refused (its status is printed), 2 usage (arguments,
//! files), 3 no answer (connection or handshake refused, timeout, unreadable answer).

use anyhow::{anyhow, Context};
use clap::Args;
use client::{Blocking, TlsOptions};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::{X509NameBuilder, X509ReqBuilder};
use std::io::Write;
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
    let mut tls = TlsOptions::new().client_cert_files(&args.device_cert, &args.device_key);
    for ca in cacert {
        tls = tls.trust_anchor_file(ca);
    }
    if let Some(name) = servername {
        tls = tls.server_name(name);
    }
    let client = crate::https_url::https_client(url, tls, "device enrolment listener")
        .map_err(usage)?
        .with_timeout(timeout)
        .with_max_body_bytes(MAX_ANSWER);

    let (key_pem, csr_pem) = new_key_and_csr().map_err(usage)?;
    let (req, _) = client
        .manager_request(
            http::Method::POST,
            "/.mef/certificate",
            None,
            Some(("application/pkcs10", csr_pem)),
        )
        .map_err(|e| usage(anyhow!(e)))?;
    // A refused device certificate shows as the MEF's TLS alert (`unknown ca`), which the
    // client reports instead of the broken pipe it causes (NOTE(alert) in `client`).
    let answer = Blocking::new("m2m-enrol-cert")
        .run(async move { client.request(req).await })
        .map_err(|e| no_answer(anyhow!(e)))?;
    let rsc = answer.rsc();
    let content: serde_json::Value = serde_json::from_slice(answer.body())
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
