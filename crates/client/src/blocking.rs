//! The client for callers that cannot `.await`: the CSE's Zn query, made inside OpenSSL's
//! synchronous PSK callback, and the `m2m` commands that run without a runtime.
//!
//! Blocking on a future inside the runtime that must drive it deadlocks (a current-thread
//! runtime waits on itself), and `Handle::block_on` panics inside an async context. So the
//! client runs on a small runtime of its own, on a thread of its own, started at the first
//! request: the caller hands it a future and waits on a channel, whatever context it is
//! in. A caller on a multi-threaded runtime's worker should still wrap the wait in
//! `tokio::task::block_in_place`, so the worker's other tasks move elsewhere meanwhile.

use crate::error::ClientError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::ThreadId;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A thread with a current-thread tokio runtime that runs the client's futures for
/// blocking callers. Cloning shares the thread; it ends when the last clone is dropped.
#[derive(Clone)]
pub struct Blocking {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    started: OnceLock<Result<Started, String>>,
}

struct Started {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
    thread: ThreadId,
}

impl Blocking {
    /// A runner whose thread (named `name`) starts with its first request.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                started: OnceLock::new(),
            }),
        }
    }

    /// Runs `work` on the runner's thread and waits for its result. The work bounds its
    /// own time (the client's timeout), so the wait ends with it.
    pub fn run<T, F>(&self, work: F) -> Result<T, ClientError>
    where
        F: Future<Output = Result<T, ClientError>> + Send + 'static,
        T: Send + 'static,
    {
        let started = self
            .inner
            .started
            .get_or_init(|| start(&self.inner.name))
            .as_ref()
            .map_err(|e| ClientError::Runtime(e.clone()))?;
        if std::thread::current().id() == started.thread {
            return Err(ClientError::Runtime(
                "called from its own thread, which would wait on itself".into(),
            ));
        }
        let (done, result) = mpsc::sync_channel(1);
        let job: Job = Box::pin(async move {
            // The caller may have gone; nobody is left to tell.
            let _ = done.send(work.await);
        });
        started
            .jobs
            .send(job)
            .map_err(|_| ClientError::Runtime("its thread has ended".into()))?;
        result
            .recv()
            .map_err(|_| ClientError::Runtime("the request was dropped unfinished".into()))?
    }
}

/// Starts the thread and its runtime; the error says what failed.
fn start(name: &str) -> Result<Started, String> {
    let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let (ready, is_ready) = mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready.send(Err(format!("cannot build its runtime: {e}")));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            runtime.block_on(async move {
                while let Some(job) = queue.recv().await {
                    tokio::spawn(job);
                }
            });
        })
        .map_err(|e| format!("cannot start thread {name}: {e}"))?;
    let thread = thread.thread().id();
    is_ready
        .recv()
        .map_err(|_| format!("thread {name} ended at start"))??;
    Ok(Started { jobs, thread })
}

impl fmt::Debug for Blocking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blocking")
            .field("name", &self.inner.name)
            .field("started", &matches!(self.inner.started.get(), Some(Ok(_))))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_from_plain_threads_and_from_inside_runtimes() {
        let blocking = Blocking::new("client-test");
        assert_eq!(blocking.run(async { Ok(1) }).expect("plain"), 1);
        // Inside a current-thread runtime, whose own thread is blocked meanwhile: the
        // work runs on the runner's thread, so the wait ends.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let b = blocking.clone();
        let got = rt.block_on(async move {
            b.run(async {
                tokio::task::yield_now().await;
                Ok(2)
            })
        });
        assert_eq!(got.expect("inside"), 2);
        let err = blocking
            .run(async { Err::<(), _>(ClientError::Runtime("x".into())) })
            .expect_err("errors pass through");
        assert!(matches!(err, ClientError::Runtime(_)));
    }
}
