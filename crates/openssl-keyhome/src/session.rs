//! The lifetime of a TLS server's sessions (cache entries and tickets alike), which the safe
//! `openssl` crate cannot set: OpenSSL's default is 7,200 s.

use openssl::ssl::{SslContextBuilder, SslContextRef};
use std::ffi::c_long;
use std::time::Duration;

/// Sets how long a session made by a context built by `builder` may be resumed: OpenSSL
/// refuses an older session or ticket (the client then makes a full handshake) and states
/// this lifetime as the TLS 1.3 ticket lifetime. At least 1 s; longer than `c_long` seconds
/// is capped.
pub fn set_session_lifetime(builder: &mut SslContextBuilder, lifetime: Duration) {
    let secs = c_long::try_from(lifetime.as_secs().max(1)).unwrap_or(c_long::MAX);
    // SAFETY: `builder.as_ptr()` is a valid `SSL_CTX` for the duration of the call (the
    // builder owns it); SSL_CTX_set_timeout only stores the number and returns the old one.
    unsafe {
        ffi::SSL_CTX_set_timeout(builder.as_ptr(), secs);
    }
}

/// The session lifetime of a built context, in seconds (for tests and diagnostics).
pub fn session_lifetime(context: &SslContextRef) -> Duration {
    use foreign_types::ForeignTypeRef;
    // SAFETY: `context.as_ptr()` is a valid `SSL_CTX` borrowed for the call; the getter only
    // reads a field.
    let secs = unsafe { ffi::SSL_CTX_get_timeout(context.as_ptr()) };
    Duration::from_secs(u64::try_from(secs).unwrap_or_default())
}

/// `ssl.h` declarations `openssl-sys` lacks; the symbols are in the libssl it links.
mod ffi {
    use std::ffi::c_long;

    use openssl_sys as _;

    extern "C" {
        pub(super) fn SSL_CTX_set_timeout(ctx: *mut openssl_sys::SSL_CTX, t: c_long) -> c_long;
        pub(super) fn SSL_CTX_get_timeout(ctx: *const openssl_sys::SSL_CTX) -> c_long;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ssl::SslMethod;

    #[test]
    fn the_lifetime_is_set_and_read_back() {
        let mut b = SslContextBuilder::new(SslMethod::tls_server()).expect("context");
        set_session_lifetime(&mut b, Duration::from_secs(90));
        let context = b.build();
        assert_eq!(session_lifetime(&context), Duration::from_secs(90));
        let mut b = SslContextBuilder::new(SslMethod::tls_server()).expect("context");
        set_session_lifetime(&mut b, Duration::ZERO);
        assert_eq!(session_lifetime(&b.build()), Duration::from_secs(1));
    }
}
