//! A request that waits a long time for something to happen (a long poll on a polling
//! channel) is answered outside the request pipeline.
//!
//! Thousands of request-unreachable AEs each keep a long poll open for minutes. If each
//! waited inside the pipeline, each would hold the pipeline's state for the whole wait: the
//! request, its originator and tokens, the target resource, every step's future. So the
//! pipeline runs every check first (originator, access, the channel's owner), and then, if
//! there is nothing to answer yet, hands the binding a [`Waiting`]: a small future that
//! holds what the wait needs (the channel, the request ID, the deadline) and nothing else.
//! The binding gives back its place for requests in progress (a waiting poll holds no body
//! and does no work; kept, a few thousand polls would fill every place and starve every
//! other client), drops what it kept of the request, and awaits [`Waiting::answer`].

use model::Response;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A request that passed every check and now only waits for its answer (a long poll).
/// Awaiting [`Waiting::answer`] yields the response; dropping it abandons the wait.
pub struct Waiting(Pin<Box<dyn Future<Output = Response> + Send>>);

impl Waiting {
    /// Wraps the wait. `wait` must hold only what the wait needs: it lives for the whole
    /// wait, thousands at a time.
    pub(crate) fn new(wait: impl Future<Output = Response> + Send + 'static) -> Self {
        Self(Box::pin(wait))
    }

    /// Waits for the answer (which may be an error response: the wait timed out, the
    /// channel went away).
    pub async fn answer(self) -> Response {
        self.0.await
    }
}

impl fmt::Debug for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Waiting")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::ResponseStatusCode;

    #[tokio::test]
    async fn a_waiting_request_answers_what_its_wait_yields() {
        let waiting = Waiting::new(async { Response::new(ResponseStatusCode::Ok, "r1", None) });
        assert_eq!(format!("{waiting:?}"), "Waiting");
        let resp = waiting.answer().await;
        assert_eq!(
            (resp.rsc, resp.rqi.as_str()),
            (ResponseStatusCode::Ok, "r1")
        );
    }
}
