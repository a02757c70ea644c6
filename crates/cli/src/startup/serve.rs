//! The running CSE: the store opened, the listeners bound and served until a stop signal.

use crate::config::Settings;
use anyhow::Context;
use security::tls::{AcceptorSlot, TlsAcceptor};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Opens the store and the CSE, binds and serves every listener, tells `listening` the URL
/// of each (points of access first, then the enrolment listeners), and returns once
/// `shutdown` completed, the listeners closed and the audit writer was flushed.
pub async fn run(
    mut settings: Settings,
    acceptors: Vec<Arc<AcceptorSlot>>,
    enrolment: Option<Arc<TlsAcceptor>>,
    device_enrolment: Option<Arc<AcceptorSlot>>,
    services: cse::Services,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    listening: impl FnOnce(Vec<String>),
) -> anyhow::Result<()> {
    let plain = match settings.http_enabled {
        true => Some(bind(settings.listen).await?),
        false => None,
    };
    let mut secure = Vec::new();
    for (t, acceptor) in settings.tls.iter().zip(acceptors) {
        secure.push((t.name.clone(), bind(t.listen).await?, acceptor));
    }
    let enrolment = match (enrolment, &settings.enrolment) {
        (Some(acceptor), Some(e)) => {
            Some((bind(e.listen).await?, Arc::new(AcceptorSlot::new(acceptor))))
        }
        _ => None,
    };
    let enrolment_addr = enrolment
        .as_ref()
        .map(|(l, _)| l.local_addr())
        .transpose()?;
    let device_enrolment = match (device_enrolment, &settings.device_enrolment) {
        (Some(slot), Some(d)) => Some((bind(d.listen).await?, slot)),
        _ => None,
    };
    let device_addr = device_enrolment
        .as_ref()
        .map(|(l, _)| l.local_addr())
        .transpose()?;
    let mut advertised = Vec::new();
    if let Some(l) = &plain {
        advertised.push(format!("http://{}", l.local_addr()?));
    }
    for (_, l, _) in &secure {
        advertised.push(format!("https://{}", l.local_addr()?));
    }
    if settings.cse.poa.is_empty() {
        settings.cse.poa = advertised.clone();
    }

    let store = store::SqliteStore::open(&settings.data, settings.store.clone())
        .with_context(|| format!("cannot open the store in {}", settings.data.display()))?;
    let cse = cse::Cse::open_with(settings.cse.clone(), Arc::new(store), services)
        .await
        .context("cannot initialise the CSE")?;
    cse::expiry::spawn(cse.clone());
    // SIGHUP re-reads the TLS material, as `m2m reload-tls` does.
    let on_hup = cse.clone();
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            if let Err(e) = on_hup.reload_tls("SIGHUP").await {
                tracing::error!(reason = %model::Untrusted(&e.message), "SIGHUP: TLS material not reloaded");
            }
        }
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    // Every connection is a descriptor: raise the soft limit, and keep the listeners'
    // connection limits within it (beyond them the oldest idle connection makes room).
    let listeners = usize::from(plain.is_some())
        + secure.len()
        + usize::from(enrolment.is_some())
        + usize::from(device_enrolment.is_some());
    let (fd_limit, raised_from) = crate::fd_limit::raise();
    if let Some(before) = raised_from {
        tracing::info!(
            before,
            now = fd_limit,
            "file-descriptor limit raised to the hard limit"
        );
    }
    let per_listener = crate::fd_limit::connections_per_listener(
        fd_limit,
        listeners,
        settings.http.max_connections,
    );
    if per_listener < settings.http.max_connections {
        tracing::warn!(
            configured = settings.http.max_connections,
            used = per_listener,
            fd_limit,
            listeners,
            "http.max_connections lowered to fit the file-descriptor limit"
        );
        settings.http.max_connections = per_listener;
    }
    let mut servers = tokio::task::JoinSet::new();
    if let Some(listener) = plain {
        // An operator who turned it on knowingly still reads here what it exposes.
        let admin = if settings.cse.admin_requires_association {
            "the admin originator is refused on it"
        } else {
            "the admin originator has full access on it WITHOUT ANY CREDENTIAL"
        };
        tracing::warn!(
            listen = %listener.local_addr()?,
            "plaintext listener: its requests have no security association; it serves AEs that registered without a credential, refuses AEs bound to a credential (4107); {admin}"
        );
        let (cse, limits, stop) = (cse.clone(), settings.http, stopped());
        servers.spawn(async move {
            http_binding::serve(listener, cse, limits, "http".to_owned(), stop).await
        });
    }
    for (name, listener, acceptor) in secure {
        let transport = http_binding::Tls {
            listener: name,
            acceptor,
            registry: cse.associations().clone(),
            role: cse::ListenerRole::Mca,
        };
        let (cse, limits, stop) = (cse.clone(), settings.http, stopped());
        servers.spawn(async move {
            http_binding::serve_with(listener, cse, limits, transport, stop).await
        });
    }
    if let Some((listener, acceptor)) = enrolment {
        let transport = http_binding::Tls {
            listener: security::association::ENROLMENT_LISTENER.to_owned(),
            acceptor,
            registry: cse.associations().clone(),
            role: cse::ListenerRole::MefEnrolment,
        };
        let (cse, limits, stop) = (cse.clone(), settings.http, stopped());
        servers.spawn(async move {
            http_binding::serve_with(listener, cse, limits, transport, stop).await
        });
    }
    if let Some((listener, acceptor)) = device_enrolment {
        let transport = http_binding::Tls {
            listener: cse::security_manager::enrolment::certificate::DEVICE_ENROLMENT_LISTENER
                .to_owned(),
            acceptor,
            registry: cse.associations().clone(),
            role: cse::ListenerRole::DeviceEnrolment,
        };
        let (cse, limits, stop) = (cse.clone(), settings.http, stopped());
        servers.spawn(async move {
            http_binding::serve_with(listener, cse, limits, transport, stop).await
        });
    }
    tracing::info!(cse_id = %settings.cse.cse_id, data = %settings.data.display(), "CSE {} started", settings.cse.cse_name);
    // The enrolment listener after the points of access (it is not one), then the device
    // (certificate-based) enrolment listener.
    let urls = advertised
        .into_iter()
        .chain(enrolment_addr.map(|a| format!("https://{a}")))
        .chain(device_addr.map(|a| format!("https://{a}")))
        .collect();
    listening(urls);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    while let Some(done) = servers.join_next().await {
        done.context("a listener task failed")?
            .context("a listener failed")?;
    }
    // The listeners are closed: write the refusal counts and whatever the audit writer holds.
    if let Some(audit) = cse.audit().cloned() {
        let flushed =
            tokio::task::spawn_blocking(move || audit.flush(std::time::Duration::from_secs(10)))
                .await
                .unwrap_or(false);
        if !flushed {
            tracing::error!("the audit writer did not finish within 10 s: queued events lost");
        }
    }
    Ok(())
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Completes on Ctrl-C or SIGTERM: what stops the `cse` server.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
