//! `m2m audit verify` and `m2m audit tail`: check and read the security manager's audit log
//! locally (no CSE and no key store needed; verification uses only the public key).
//!
//! Exit codes of `verify`: 0 intact, 1 tampered or damaged (the first bad entry is named on
//! standard error), 2 the file, public key or head cannot be read.

use clap::Subcommand;
use manager::audit::{self, AuditPublicKey, Head, VerifyError};
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
        /// A head kept apart from the log (JSON `{"seq":N,"hash":"..."}`): catches entries cut
        /// off the end.
        #[arg(long, value_name = "FILE")]
        head: Option<PathBuf>,
    },
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

/// Runs an `m2m audit` subcommand and chooses the exit code.
pub fn run(command: &AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify {
            file,
            public_key,
            head,
        } => verify(file, public_key.as_deref(), head.as_deref()),
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

fn verify(file: &Path, public_key: Option<&Path>, head: Option<&Path>) -> ExitCode {
    let key = match public_key.map(read_public_key).transpose() {
        Ok(key) => key,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let head = match head.map(Head::load).transpose() {
        Ok(head) => head,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match audit::verify_with_head(file, key.as_ref(), head.as_ref()) {
        Ok(verified) => {
            let mut out = format!("ok: {} entries, hash chain intact", verified.count);
            if verified.signatures_checked {
                out.push_str(", every signature valid");
            } else {
                out.push_str(", signatures not checked (no --public-key)");
            }
            match &head {
                Some(h) => {
                    let _ = write!(out, ", reaches the kept head (seq {})", h.seq);
                }
                None => out.push_str(", truncation not checked (no --head)"),
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
