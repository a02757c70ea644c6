//! `m2m maf register|retrieve|delete`: keys between applications through the CSE's MAF
//! (trust scenario 2; TS-0003 clause 8.8, see `cse::security_manager::maf`), each over the
//! caller's own security association (the TLS flags of `m2m`).
//!
//! The key never goes to standard output: `register` and `retrieve` write it, as 64 hex
//! digits, to the file `--key-out` names (mode 600) and print the key identifier and the
//! registration's details.
//!
//! Exit codes as for every `m2m` command: 0 when the MAF answered 2xxx, 1 for any other
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

/// `m2m maf ...`.
#[derive(Debug, Subcommand)]
pub enum MafCommand {
    /// Register a key for other AEs to retrieve (MAF Key Registration): the MAF makes the
    /// key, names it, and hands it to you.
    Register(RegisterArgs),
    /// Retrieve a key by its identifier (MAF Key Retrieval); only its source and the AEs it
    /// names may.
    Retrieve {
        /// The key identifier (`HEX@maf-fqdn`) or its relative part.
        key_id: String,
        /// Where to write the key (hex, mode 600).
        #[arg(long, value_name = "FILE")]
        key_out: PathBuf,
    },
    /// Delete a key registration (its source only).
    Delete {
        /// The key identifier or its relative part.
        key_id: String,
    },
}

/// What `m2m maf register` asks for.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Security Usage Identifier: 32 SAEF, 33 ESPrim, 34 ESData encryption, 35 ESData signature.
    #[arg(long)]
    pub suid: u8,
    /// AE-ID (or CSE-ID) allowed to retrieve the key, repeatable (exactly one for 32 and 33).
    #[arg(long = "target", value_name = "ID", required = true)]
    pub targets: Vec<String>,
    /// Proposed expiry (oneM2M timestamp, e.g. 20300101T000000); the MAF may shorten it.
    #[arg(long, value_name = "TIME")]
    pub expires: Option<String>,
    /// Label to aid discovery, repeatable.
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Where to write the key (hex, mode 600).
    #[arg(long, value_name = "FILE")]
    pub key_out: PathBuf,
}

/// Runs a `maf` subcommand with `client` (already holding the TLS options) as `origin`.
pub fn run(client: Client, origin: &str, command: &MafCommand) -> ExitCode {
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
    let (req, key_out) = match request(command, origin) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let resp = match runtime.block_on(client.send(&req)) {
        Ok(resp) => resp,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    match report(&resp, key_out.as_deref()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The request primitive for a subcommand (addressed to `.maf/...`, which the client sends
/// as `/.maf/...`), and where the key goes.
fn request(command: &MafCommand, origin: &str) -> anyhow::Result<(Request, Option<PathBuf>)> {
    let fr = Some(origin.to_owned());
    Ok(match command {
        MafCommand::Register(args) => {
            let mut body = json!({
                "suid": args.suid,
                "targetIDs": args.targets,
            });
            if let Some(t) = &args.expires {
                body["expirationTime"] = json!(t);
            }
            if !args.labels.is_empty() {
                body["labels"] = json!(args.labels);
            }
            let mut req = Request::new(Operation::Create, ".maf/keys".to_owned(), fr);
            req.pc = Some(json!({ "m2m:mafKeyRegReq": body }));
            (req, Some(args.key_out.clone()))
        }
        MafCommand::Retrieve { key_id, key_out } => (
            Request::new(Operation::Retrieve, format!(".maf/keys/{key_id}"), fr),
            Some(key_out.clone()),
        ),
        MafCommand::Delete { key_id } => (
            Request::new(Operation::Delete, format!(".maf/keys/{key_id}"), fr),
            None,
        ),
    })
}

/// Prints the status and details; writes the key. Exit 0 or 1 by the status.
fn report(resp: &Response, key_out: Option<&Path>) -> anyhow::Result<ExitCode> {
    eprintln!("{}", resp.rsc);
    if !resp.rsc.is_success() {
        if let Some(message) = resp.pc.as_ref().and_then(|pc| {
            pc.get("m2m:dbg")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| Some(pc.to_string()))
        }) {
            eprintln!("{message}");
        }
        return Ok(ExitCode::from(1));
    }
    let body = resp.pc.as_ref().and_then(|pc| {
        ["m2m:mafKeyRegRsp", "m2m:mafKeyRetRsp", "m2m:mafKeyDelRsp"]
            .iter()
            .find_map(|name| pc.get(*name))
    });
    let Some(body) = body else {
        anyhow::bail!("the answer has no MAF content");
    };
    let field = |name: &str| body.get(name).map_or_else(String::new, show);
    crate::outln!("keyId    {}", field("keyId"));
    if let Some(path) = key_out {
        let key = Zeroizing::new(
            body.get("key")
                .and_then(Value::as_str)
                .filter(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
                .context("the answer has no 32-byte key")?
                .to_owned(),
        );
        write_private(path, &format!("{}\n", key.as_str()))?;
        crate::outln!("source   {}", field("sourceId"));
        crate::outln!("targets  {}", field("targetIDs"));
        crate::outln!("suid     {}", field("suid"));
        crate::outln!("expires  {}", field("expirationTime"));
        crate::outln!("key file {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_to_the_maf_paths() {
        let register = MafCommand::Register(RegisterArgs {
            suid: 32,
            targets: vec!["Cb".into()],
            expires: None,
            labels: vec!["x".into()],
            key_out: "k".into(),
        });
        let (req, out) = request(&register, "Ca").expect("request");
        assert_eq!(req.op, Operation::Create);
        assert_eq!(client::path_for(&req.to), "/.maf/keys");
        assert_eq!(
            req.pc
                .as_ref()
                .and_then(|pc| pc.pointer("/m2m:mafKeyRegReq/targetIDs/0")),
            Some(&json!("Cb"))
        );
        assert_eq!(out, Some(PathBuf::from("k")));
        let (req, out) = request(
            &MafCommand::Delete {
                key_id: "AB@id-in.sp".into(),
            },
            "Ca",
        )
        .expect("request");
        assert_eq!(req.op, Operation::Delete);
        assert_eq!(req.fr.as_deref(), Some("Ca"));
        assert!(out.is_none());
    }
}
