//! `m2m audit verify` and `m2m audit tail`: check and read the security manager's audit log
//! locally (no CSE and no key store needed; verification uses only the public key).
//! `m2m audit head` asks the running CSE for its signed checkpoint, for the admin to keep.
//!
//! `verify` walks the closed segments (`audit.log.<first seq>`) and then the log itself,
//! starting after the anchor that retention left, and checks the log's own checkpoint
//! (`audit.log.head`) and the admin's copy (`--head`): a log that ends before either was cut.
//!
//! With `--anchor-from cse.toml` it also reads the checkpoint's anchor (`[audit]
//! head_anchor`, a TPM NV counter or a PKCS#11 data object) and refuses a checkpoint older
//! than the anchor says, and a log that does not reach the anchored head.
//!
//! Exit codes of `verify`: 0 intact, 1 tampered or damaged (the first bad entry is named on
//! standard error), 2 the file, public key, head or anchor cannot be read.

use crate::config::FileConfig;
use crate::keyhomes::KeyHomes;
use clap::Subcommand;
use manager::audit::{
    self, AuditError, AuditPublicKey, Checkpoint, Head, Layout, Purpose, VerifyError,
};
use serde_json::Value;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The `m2m audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain (and, with --public-key, every signature); name the first entry
    /// that was changed, removed, inserted or reordered.
    Verify {
        /// The audit log (JSON lines).
        file: PathBuf,
        /// PEM public key of the audit-log signing key: every entry must carry a valid
        /// signature, which also catches a rebuilt chain.
        #[arg(long, value_name = "PEM")]
        public_key: Option<PathBuf>,
        /// A head kept apart from the log (JSON `{"seq":N,"hash":"..."}`, as `m2m audit head`
        /// prints it): catches entries cut off the end even when the log's own checkpoint was
        /// rewound too. Its signature, if any, is checked with --public-key.
        #[arg(long, value_name = "FILE")]
        head: Option<PathBuf>,
        /// The log's checkpoint file, when `[audit] head_file` moved it (default: the log's
        /// path with `.head` appended, or `head_file` of --anchor-from's configuration;
        /// checked when it exists).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// The CSE's configuration file: check the checkpoint against the anchor its
        /// `[audit] head_anchor` names (opens that key home; needs --public-key). Catches a
        /// checkpoint rewound together with the log.
        #[arg(long, value_name = "CONFIG", requires = "public_key")]
        anchor_from: Option<PathBuf>,
    },
    /// Ask the running CSE for the audit log's checkpoint (admin: GET /.admin/audit-head; the
    /// origin defaults to CAdmin) and print it as JSON: keep it away from the CSE and pass it
    /// to `verify --head` later.
    Head,
    /// Show the last entries (not verified: run `verify` for that).
    Tail {
        /// The audit log (JSON lines).
        file: PathBuf,
        /// How many entries.
        #[arg(short = 'n', long = "lines", default_value_t = 10)]
        lines: usize,
        /// Print the raw JSON lines instead of one summary line per entry.
        #[arg(long)]
        json: bool,
    },
}

impl AuditCommand {
    /// Whether the subcommand works on local files only (every one but `head`).
    pub fn is_local(&self) -> bool {
        !matches!(self, Self::Head)
    }
}

/// Runs a local `m2m audit` subcommand and chooses the exit code.
pub fn run(command: &AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify {
            file,
            public_key,
            head,
            checkpoint,
            anchor_from,
        } => verify(
            file,
            public_key.as_deref(),
            head.as_deref(),
            checkpoint.as_deref(),
            anchor_from.as_deref(),
        ),
        AuditCommand::Head => {
            eprintln!(
                "error: m2m audit head asks the running CSE: give --url and the admin's TLS flags"
            );
            ExitCode::from(2)
        }
        AuditCommand::Tail { file, lines, json } => match tail(file, *lines, *json) {
            Ok(text) => {
                crate::out!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// A kept head or checkpoint; its signature, when it has one, must verify under `key`.
fn load_head(path: &Path, key: Option<&AuditPublicKey>) -> Result<Option<Head>, String> {
    let point = Checkpoint::load(path).map_err(|e| e.to_string())?;
    if let (Some(point), Some(key)) = (&point, key) {
        if point.sig.is_some() && !point.verifies(key, Purpose::Head) {
            return Err(format!(
                "{}: the signature does not verify under the audit public key",
                path.display()
            ));
        }
    }
    Ok(point.as_ref().map(Checkpoint::head))
}

/// The anchor a configuration names for its audit log, opened in its home, and the
/// checkpoint file that configuration uses.
fn configured_anchor(config: &Path) -> Result<(audit::HeadAnchor, PathBuf), String> {
    let settings = FileConfig::load(config)
        .and_then(|c| c.resolve(None, None))
        .map_err(|e| e.to_string())?;
    let audit = settings
        .audit
        .as_ref()
        .filter(|a| a.head_anchor.is_some())
        .ok_or_else(|| format!("{}: [audit] has no head_anchor", config.display()))?;
    let homes = KeyHomes::open(&settings.keystore, false).map_err(|e| e.to_string())?;
    let anchoring = homes
        .audit_anchoring(audit)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{}: [audit] has no head_anchor", config.display()))?;
    Ok((anchoring.anchor, audit.layout.head_file.clone()))
}

fn verify(
    file: &Path,
    public_key: Option<&Path>,
    head: Option<&Path>,
    checkpoint: Option<&Path>,
    anchor_from: Option<&Path>,
) -> ExitCode {
    let key = match public_key.map(read_public_key).transpose() {
        Ok(key) => key,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let kept = match head.map(|h| load_head(h, key.as_ref())).transpose() {
        Ok(Some(None)) => {
            eprintln!("error: {}: no such file", head.unwrap_or(file).display());
            return ExitCode::from(2);
        }
        Ok(kept) => kept.flatten(),
        Err(e) => {
            eprintln!("TAMPERED: {e}");
            return ExitCode::from(1);
        }
    };
    let anchor = match anchor_from.map(configured_anchor).transpose() {
        Ok(anchor) => anchor,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let own_file = match (checkpoint, &anchor) {
        (Some(path), _) => path.to_owned(),
        (None, Some((_, configured))) => configured.clone(),
        (None, None) => Layout::for_log(file).head_file,
    };
    let own = match load_head(&own_file, key.as_ref()) {
        Ok(own) => own,
        Err(e) => {
            eprintln!("TAMPERED: {e}");
            return ExitCode::from(1);
        }
    };
    let mut heads: Vec<Head> = kept.iter().chain(own.iter()).copied().collect();
    let anchored = match (&anchor, &key) {
        (Some((anchor, _)), Some(key)) => {
            let point = match Checkpoint::load(&own_file) {
                Ok(point) => point,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            match audit::anchor::judge(anchor, point.as_ref(), &own_file, key) {
                Ok(judged) => {
                    heads.extend(judged.head());
                    Some(anchor.name())
                }
                Err(e @ AuditError::Anchor { .. }) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
                Err(e) => {
                    eprintln!("TAMPERED: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        _ => None,
    };
    match audit::verify_with_heads(file, key.as_ref(), &heads) {
        Ok(verified) => {
            let mut out = format!("ok: {} entries", verified.count);
            if verified.segments > 0 {
                let _ = write!(out, " in {} closed segments and the log", verified.segments);
            }
            out.push_str(", hash chain intact");
            if let Some(anchor) = &verified.anchor {
                let _ = write!(
                    out,
                    ", starting after the retention anchor (seq {})",
                    anchor.seq
                );
            }
            if verified.signatures_checked {
                out.push_str(", every signature valid");
            } else {
                out.push_str(", signatures not checked (no --public-key)");
            }
            if let Some(h) = &own {
                let _ = write!(out, ", reaches its checkpoint (seq {})", h.seq);
            }
            if let Some(name) = &anchored {
                let _ = write!(out, ", checkpoint not older than its anchor ({name})");
            }
            match &kept {
                Some(h) => {
                    let _ = write!(out, ", reaches the kept head (seq {})", h.seq);
                }
                None => out.push_str(", truncation beyond the checkpoint not checked (no --head)"),
            }
            crate::outln!("{out}");
            if let Some(h) = verified.head {
                crate::outln!(
                    "head: {}",
                    serde_json::json!({ "seq": h.seq, "hash": h.hash.to_string() })
                );
            }
            ExitCode::SUCCESS
        }
        Err(VerifyError::Tampered { path, tampered }) => {
            eprintln!("TAMPERED: {}: {tampered}", path.display());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn read_public_key(path: &Path) -> Result<AuditPublicKey, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    AuditPublicKey::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

/// The last `n` entries, raw or summarised.
fn tail(file: &Path, n: usize, json: bool) -> Result<String, String> {
    let f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut last: VecDeque<(usize, String)> = VecDeque::with_capacity(n.min(4096));
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", file.display()))?;
        if n == 0 {
            continue;
        }
        if last.len() == n {
            last.pop_front();
        }
        last.push_back((i + 1, line));
    }
    let mut out = String::new();
    for (number, line) in last {
        if json {
            out.push_str(&line);
        } else {
            out.push_str(&summary(number, &line));
        }
        out.push('\n');
    }
    Ok(out)
}

/// `seq time kind key=value ...` for one line.
fn summary(number: usize, line: &str) -> String {
    let Ok(entry) = serde_json::from_str::<audit::Entry>(line) else {
        return format!("line {number}: not an audit entry");
    };
    let mut out = format!("{:>6} {} {}", entry.seq, entry.time, entry.event.kind());
    if let Ok(Value::Object(fields)) = serde_json::to_value(&entry.event) {
        for (key, value) in fields.iter().filter(|(k, _)| k.as_str() != "kind") {
            match value {
                Value::String(s) => {
                    let _ = write!(out, " {key}={s:?}");
                }
                other => {
                    let _ = write!(out, " {key}={other}");
                }
            }
        }
    }
    if entry.sig.is_some() {
        out.push_str(" [signed]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_show_kind_and_fields() {
        let line = r#"{"seq":7,"time":"2026-01-01T00:00:00.000000Z","event":{"kind":"revoked","credential":"12-a@b.c","actor":"CAdmin","reason":"lost"},"prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"0000000000000000000000000000000000000000000000000000000000000000"}"#;
        let s = summary(7, line);
        assert!(s.contains("7 2026-01-01T00:00:00.000000Z revoked"), "{s}");
        assert!(s.contains(r#"credential="12-a@b.c""#), "{s}");
        assert!(!s.contains("kind="), "{s}");
        assert_eq!(summary(3, "garbage"), "line 3: not an audit entry");
    }
}
