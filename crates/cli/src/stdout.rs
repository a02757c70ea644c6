//! Standard output of `m2m` and `cse`. `println!` panics when the reader has gone away
//! (`m2m audit tail audit.log | head`: the write fails with EPIPE because Rust ignores
//! SIGPIPE), so a user saw a panic and exit code 101 for a pipeline that did what they asked.
//! Commands print through [`out!`](crate::out) and [`outln!`](crate::outln), which end the
//! process quietly when the reader is gone; the server's start-up lines go through
//! [`announce`], which never ends a running CSE.

use std::fmt;
use std::io::{ErrorKind, Write};

/// Exit code when standard output cannot be written for another reason (full disk, ...):
/// `EX_IOERR` of sysexits.h.
const EX_IOERR: i32 = 74;

/// Writes `args` to standard output (the body of [`out!`](crate::out)). A reader that has
/// gone ends the process quietly with exit code 0: it stopped reading on purpose and
/// nothing it wanted is lost. Any other write error is said on standard error and ends the
/// process with exit code 74.
pub fn print(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(EX_IOERR);
    }
}

/// Writes one line to standard output for whoever reads it (the running server's
/// `listening on URL` lines): a reader that has gone is logged and otherwise ignored, since
/// a CSE must not stop serving because nobody reads its standard output.
pub fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        tracing::warn!("cannot write {line:?} to standard output: {e}");
    }
}

/// `print!` that ends the command quietly when the reader of standard output has gone.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::print(format_args!($($arg)*))
    };
}

/// `println!` that ends the command quietly when the reader of standard output has gone.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::stdout::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}
