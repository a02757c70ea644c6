//! The rules and the usage record, on a clock moved by hand: no sleeping, no timing.

use super::*;
use model::clock::ManualClock;
use security::association::{CredentialBinding, Established, Framework, PeerIdentity, Registry};

/// A test's clock, advanced by whole seconds.
struct Hand(ManualClock);

impl Hand {
    fn new() -> Self {
        Self(ManualClock::new())
    }

    fn advance(&self, secs: u64) {
        self.0.advance(Duration::from_secs(secs));
    }
}

fn supervisor(settings: Settings) -> (Arc<Supervisor>, Hand) {
    let hand = Hand::new();
    let s = Supervisor::with_clock(settings, None, None, hand.0.clock());
    (Arc::new(s), hand)
}

fn at(addr: &str) -> SocketAddr {
    addr.parse().expect("socket address")
}

const WRONG_KEY: &str = "TLS handshake refused: wrong key for PSK identity 'dev1@sp.example' \
                         [openssl: decryption failed or bad record mac]";

#[test]
fn one_credential_live_from_two_addresses_alerts_once_per_interval() {
    let (s, clock) = supervisor(Settings::default());
    assert!(s
        .observe_opened(1, "12-dev1", at("127.0.0.1:5000"))
        .is_empty());
    // A second connection from the same address is no anomaly.
    assert!(s
        .observe_opened(2, "12-dev1", at("127.0.0.1:5001"))
        .is_empty());
    let found = s.observe_opened(3, "12-dev1", at("127.0.0.2:6000"));
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f.rule, Rule::ConcurrentPeers);
    assert_eq!(f.credential.as_deref(), Some("12-dev1"));
    assert_eq!(f.peer, at("127.0.0.2:6000"));
    assert!(f.alert && f.suspend.is_none(), "{f:?}");
    assert!(
        f.detail.contains("127.0.0.1") && f.detail.contains("127.0.0.2"),
        "{}",
        f.detail
    );
    // Within the interval: still a match, but no second alert.
    let again = s.observe_opened(4, "12-dev1", at("127.0.0.3:6000"));
    assert_eq!(again.len(), 1);
    assert!(!again[0].alert);
    // Another credential is another subject.
    s.observe_opened(5, "12-dev2", at("127.0.0.1:7000"));
    assert!(s.observe_opened(6, "12-dev2", at("127.0.0.9:7000"))[0].alert);
    clock.advance(Settings::default().alert_interval.as_secs());
    assert!(s.observe_opened(7, "12-dev1", at("127.0.0.4:6000"))[0].alert);
    // Once only one address is left, no match.
    for id in [3, 4, 7] {
        s.observe_closed(id, "12-dev1", 0);
    }
    assert!(s
        .observe_opened(8, "12-dev1", at("127.0.0.1:5002"))
        .is_empty());
}

#[test]
fn ipv6_addresses_of_one_host_are_one_peer_and_the_rule_can_be_off() {
    let (s, _) = supervisor(Settings::default());
    s.observe_opened(1, "12-a", at("[2001:db8::1]:1"));
    assert!(s
        .observe_opened(2, "12-a", at("[2001:db8::2]:1"))
        .is_empty());
    assert_eq!(
        s.observe_opened(3, "12-a", at("[2001:db8:0:1::1]:1")).len(),
        1
    );
    let (off, _) = supervisor(Settings {
        concurrent_peers: false,
        ..Settings::default()
    });
    off.observe_opened(1, "12-a", at("127.0.0.1:1"));
    assert!(off.observe_opened(2, "12-a", at("127.0.0.2:1")).is_empty());
}

#[test]
fn repeated_failed_handshakes_from_one_address_within_the_window_alert() {
    let settings = Settings {
        failed_handshakes: 3,
        failed_handshakes_window: Duration::from_secs(60),
        ..Settings::default()
    };
    let (s, clock) = supervisor(settings);
    let peer = at("192.0.2.7:4000");
    assert!(s.observe_refused(peer, None, "x").is_empty());
    clock.advance(40);
    assert!(s.observe_refused(peer, None, "x").is_empty());
    clock.advance(40);
    // The first failure is 80 s old: out of the window, two remain.
    assert!(s.observe_refused(peer, None, "x").is_empty());
    // Other addresses count on their own.
    assert!(s.observe_refused(at("192.0.2.8:1"), None, "x").is_empty());
    clock.advance(1);
    let found = s.observe_refused(peer, Some("12-dev1@sp.example"), WRONG_KEY);
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f.rule, Rule::FailedHandshakes);
    assert_eq!(f.credential.as_deref(), Some("12-dev1@sp.example"));
    assert!(f.alert, "{f:?}");
    assert!(
        f.detail
            .contains("3 failed handshakes from 192.0.2.7 within 60 s")
            && f.detail.contains("wrong key"),
        "{}",
        f.detail
    );
    clock.advance(1);
    let again = s.observe_refused(peer, None, "x");
    assert!(again.len() == 1 && !again[0].alert, "{again:?}");
    // Off: never a match.
    let (off, _) = supervisor(Settings {
        failed_handshakes: 0,
        ..Settings::default()
    });
    for _ in 0..20 {
        assert!(off.observe_refused(peer, None, "x").is_empty());
    }
}

fn established(credential: &str) -> Established {
    Established {
        framework: Framework::Psk,
        credential_id: credential.to_owned(),
        binding: CredentialBinding {
            identity: PeerIdentity::AllowedAes(vec!["C*".to_owned()]),
            admin: false,
            allowed_apps: Vec::new(),
            level: None,
        },
        protocol: "TLSv1.3".to_owned(),
        cipher: "TLS_AES_128_GCM_SHA256".to_owned(),
        server_name: None,
        resumed: false,
        bootstrap: None,
    }
}

#[test]
fn usage_through_the_registry_counts_associations_refusals_requests_and_peers() {
    let (s, clock) = supervisor(Settings {
        usage_peers: 2,
        ..Settings::default()
    });
    let registry = Arc::new(Registry::with_events(s.clone()));
    let cred = "12-dev1@sp.example";
    let first = registry.open("https", at("127.0.0.1:1"), established(cred));
    first.association.count_request();
    first.association.count_request();
    drop(first);
    clock.advance(10);
    registry.refused(
        "https",
        at("127.0.0.5:1"),
        Some("dev1@sp.example"),
        WRONG_KEY,
    );
    registry.refused("https", at("127.0.0.5:1"), None, "TLS handshake timed out");
    clock.advance(10);
    let second = registry.open("https", at("127.0.0.2:1"), established(cred));
    second.association.count_request();
    let third = registry.open("https", at("127.0.0.3:1"), established(cred));
    let usage = s.usage(&registry.list(), None);
    assert_eq!(usage.len(), 1, "{usage:?}");
    let u = &usage[0];
    assert_eq!(u.credential, cred);
    assert_eq!(
        (
            u.associations_opened,
            u.handshakes_refused,
            u.requests,
            u.live
        ),
        (3, 1, 3, 2)
    );
    // The clock was advanced 10 s between the first use and the refusal, 10 s more since.
    let first = u.first_use.expect("first use");
    let refused = u.last_refused.expect("refused");
    let since = |a: SystemTime, b: SystemTime| b.duration_since(a).unwrap_or_default();
    assert!(since(first, refused) >= Duration::from_secs(10), "{u:?}");
    let in_use = u.last_use.expect("in use now");
    assert!(since(refused, in_use) >= Duration::from_secs(10), "{u:?}");
    // The last two distinct addresses, oldest first.
    assert_eq!(
        u.peers,
        vec![at("127.0.0.2:1").ip(), at("127.0.0.3:1").ip()]
    );
    drop((second, third));
    let u = &s.usage(&registry.list(), Some(cred))[0];
    assert_eq!((u.live, u.requests), (0, 3));
    assert!(s.usage(&[], Some("12-other")).is_empty());
}

#[test]
fn a_rule_in_suspend_on_asks_for_the_suspension_even_when_the_alert_is_rate_limited() {
    let (tx, mut rx) = suspension_queue();
    let s = Arc::new(Supervisor::with_clock(
        Settings {
            suspend_on: vec![Rule::ConcurrentPeers],
            ..Settings::default()
        },
        None,
        Some(tx),
        Clock::system(),
    ));
    let registry = Arc::new(Registry::with_events(s.clone()));
    let _a = registry.open("https", at("127.0.0.1:1"), established("12-k"));
    assert!(rx.try_recv().is_err(), "nothing to suspend yet");
    let _b = registry.open("https", at("127.0.0.2:1"), established("12-k"));
    let asked = rx.try_recv().expect("a suspension");
    assert_eq!(asked.credential, "12-k");
    assert!(
        asked.reason.contains("anomaly concurrent-peers") && !asked.reason.contains("127.0.0"),
        "{}",
        asked.reason
    );
    let _c = registry.open("https", at("127.0.0.3:1"), established("12-k"));
    assert_eq!(rx.try_recv().expect("again").credential, "12-k");
    // A rule not listed suspends nothing, even with a credential.
    let f = s.observe_refused(at("127.0.0.9:1"), Some("12-k"), WRONG_KEY);
    assert!(f.is_empty() || f.iter().all(|f| f.suspend.is_none()));
}

#[test]
fn every_map_keyed_by_peers_or_credentials_is_capped() {
    let (s, clock) = supervisor(Settings {
        max_credentials: 2,
        max_addresses: 2,
        failed_handshakes: 5,
        ..Settings::default()
    });
    for (i, c) in ["12-a", "12-b", "12-c"].iter().enumerate() {
        s.observe_refused(at(&format!("10.0.0.{i}:1")), Some(c), "x");
        clock.advance(1);
    }
    let seen: Vec<String> = s
        .usage(&[], None)
        .into_iter()
        .map(|u| u.credential)
        .collect();
    assert_eq!(seen, vec!["12-b", "12-c"], "the stalest is forgotten");
    assert_eq!(s.state().failures.len(), 2);
    // A credential in use outlives idle ones.
    let (s, clock) = supervisor(Settings {
        max_credentials: 2,
        ..Settings::default()
    });
    s.observe_opened(1, "12-live", at("127.0.0.1:1"));
    clock.advance(1);
    s.observe_refused(at("127.0.0.1:2"), Some("12-idle"), "x");
    clock.advance(1);
    s.observe_refused(at("127.0.0.1:3"), Some("12-new"), "x");
    let seen: Vec<String> = s
        .usage(&[], None)
        .into_iter()
        .map(|u| u.credential)
        .collect();
    assert_eq!(seen, vec!["12-live", "12-new"]);
    // Alerts: bounded by both caps together.
    let (s, _) = supervisor(Settings {
        max_credentials: 1,
        max_addresses: 1,
        failed_handshakes: 1,
        ..Settings::default()
    });
    for i in 0..10 {
        assert!(s.observe_refused(at(&format!("10.0.1.{i}:1")), None, "x")[0].alert);
    }
    assert!(s.state().alerted.len() <= 2);
}

#[test]
fn rule_names_and_the_audit_event_round_trip() {
    for rule in Rule::ALL {
        assert_eq!(Rule::from_name(rule.name()), Some(rule));
    }
    assert_eq!(Rule::from_name("two-peers"), None);
    let event = Event::AnomalyDetected {
        rule: "concurrent-peers".to_owned(),
        credential: Some("12-k".to_owned()),
        peer: Some("127.0.0.2:1".to_owned()),
        detail: "d".to_owned(),
    };
    assert_eq!(event.kind(), "anomaly-detected");
    let text = serde_json::to_string(&event).expect("json");
    assert!(text.contains(r#""kind":"anomaly-detected""#), "{text}");
    assert_eq!(serde_json::from_str::<Event>(&text).expect("back"), event);
    let bare = r#"{"kind":"anomaly-detected","rule":"failed-handshakes","detail":"d"}"#;
    assert!(matches!(
        serde_json::from_str::<Event>(bare).expect("optional fields"),
        Event::AnomalyDetected {
            credential: None,
            peer: None,
            ..
        }
    ));
}
