//! `m2m mef fetch`: an Enrolment Target fetches from the CSE's MEF the usage-constrained key
//! derived for an enrolee (fetchCredentials, TS-0003 clause 8.3.2.1; see
//! `cse::security_manager::enrolment::fetch`), over the target's own security association
//! (the TLS flags of `m2m`, `--origin` = its AE-ID or CSE-ID).
//!
//! The key never goes to standard output: it is written, as 64 hex digits, to the file
//! `--key-out` names (mode 600); the key identifier, Credential-ID, enrolee and lifetime are
//! printed.
//!
//! Exit codes as for every `m2m` command: 0 when the MEF answered 2000, 1 for any other
//! status (printed), 2 for unusable arguments or files, 3 when no answer came back.

use crate::secret_files::write_private;
use anyhow::Context;
use clap::{Args, Subcommand};
use client::Client;
use model::{Operation, Request, Response};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

/// `m2m mef ...`: what an Enrolment Target asks the MEF.
#[derive(Debug, Subcommand)]
pub enum MefCommand {
    /// Fetch the usage-constrained key of an enrolment that named you as its Enrolment
    /// Target (fetchCredentials).
    Fetch(FetchArgs),
}

/// What `m2m mef fetch` asks for.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The KeID of the enrolment (`HEX@mef-fqdn`), as the enrolee presents it.
    #[arg(long, value_name = "ID")]
    pub ke_id: String,
    /// Security Usage Identifier: 21 MAF, 22 SAEF, 23 ESPrim, 24 ESData encryption, 25
    /// ESData signature.
    #[arg(long)]
    pub suid: u8,
    /// Where to write the key (hex, mode 600).
    #[arg(long, value_name = "FILE")]
    pub key_out: PathBuf,
}

/// Runs a `mef` subcommand with `client` (already holding the TLS options) as `origin`.
pub fn run(client: Client, origin: &str, command: &MefCommand) -> ExitCode {
    let MefCommand::Fetch(args) = command;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let resp = match runtime.block_on(client.send(&request(args, origin))) {
        Ok(resp) => resp,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    match report(&resp, &args.key_out) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The request primitive (addressed to `.mef/fetch-credentials`, which the client sends as
/// `/.mef/fetch-credentials`).
fn request(args: &FetchArgs, origin: &str) -> Request {
    let mut req = Request::new(
        Operation::Create,
        ".mef/fetch-credentials".to_owned(),
        Some(origin.to_owned()),
    );
    req.pc = Some(json!({ "m2m:fetchCredReq": { "keId": args.ke_id, "suid": args.suid } }));
    req
}

/// Prints the status and details; writes the key. Exit 0 or 1 by the status.
fn report(resp: &Response, key_out: &Path) -> anyhow::Result<ExitCode> {
    eprintln!("{}", resp.rsc);
    if !resp.rsc.is_success() {
        if let Some(message) = resp.pc.as_ref().map(|pc| {
            pc.get("m2m:dbg")
                .and_then(Value::as_str)
                .map_or_else(|| pc.to_string(), str::to_owned)
        }) {
            eprintln!("{message}");
        }
        return Ok(ExitCode::from(1));
    }
    let body = resp
        .pc
        .as_ref()
        .and_then(|pc| pc.get("m2m:fetchCredRsp"))
        .context("the answer has no fetchCredentials content")?;
    let key = Zeroizing::new(
        body.get("credential")
            .and_then(Value::as_str)
            .filter(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
            .context("the answer has no 32-byte key")?
            .to_owned(),
    );
    write_private(key_out, &format!("{}\n", key.as_str()))?;
    let field = |name: &str| match body.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    crate::outln!("keyId        {}", field("keyId"));
    crate::outln!("credentialId {}", field("credentialId"));
    crate::outln!("suid         {}", field("suid"));
    crate::outln!("enrolee      {}", field("enroleeId"));
    crate::outln!("lifetime     {}", field("lifetime"));
    crate::outln!("key file     {}", key_out.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_goes_to_the_fetch_path() {
        let args = FetchArgs {
            ke_id: "AB@id-in.sp".into(),
            suid: 23,
            key_out: "k".into(),
        };
        let req = request(&args, "Cmaf1");
        assert_eq!(req.op, Operation::Create);
        assert_eq!(client::path_for(&req.to), "/.mef/fetch-credentials");
        assert_eq!(req.fr.as_deref(), Some("Cmaf1"));
        assert_eq!(
            req.pc
                .as_ref()
                .and_then(|pc| pc.pointer("/m2m:fetchCredReq/suid")),
            Some(&json!(23))
        );
    }
}
