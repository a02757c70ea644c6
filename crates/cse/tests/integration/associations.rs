//! The originator rules over a security association (TS-0004 7.3.2.1, TS-0003 7.2.1/8.2.1).
use crate::common;

use common::*;
use cse::records::StoreRecords;
use cse::{CseConfig, ListenerRole, SecurityContext};
use model::{Operation, Request, ResourceType as T, ResponseStatusCode as R};
use security::association::{Framework, Level, PeerIdentity, Registry};
use serde_json::json;
use std::sync::Arc;

fn sa(
    registry: &Arc<Registry>,
    framework: Framework,
    credential: &str,
    identity: PeerIdentity,
    admin: bool,
    apps: &[&str],
) -> SecurityContext {
    sa_at(registry, framework, credential, identity, admin, apps, None)
}

/// A PSK association whose credential may register AEs the CSE names (`C*`).
fn psk_c(registry: &Arc<Registry>, credential: &str) -> SecurityContext {
    let any_c = PeerIdentity::AllowedAes(vec!["C*".into()]);
    sa(registry, Framework::Psk, credential, any_c, false, &[])
}

/// A certificate association bound to the AE-ID `ae`.
fn cert_ae(registry: &Arc<Registry>, credential: &str, ae: &str) -> SecurityContext {
    let bound = PeerIdentity::Ae(ae.into());
    sa(
        registry,
        Framework::Certificate,
        credential,
        bound,
        false,
        &[],
    )
}

fn sa_at(
    registry: &Arc<Registry>,
    framework: Framework,
    credential: &str,
    identity: PeerIdentity,
    admin: bool,
    apps: &[&str],
    level: Option<Level>,
) -> SecurityContext {
    sa_on(
        ListenerRole::Mca,
        registry,
        framework,
        credential,
        identity,
        admin,
        apps,
        level,
    )
}

#[allow(clippy::too_many_arguments)]
fn sa_on(
    role: ListenerRole,
    registry: &Arc<Registry>,
    framework: Framework,
    credential: &str,
    identity: PeerIdentity,
    admin: bool,
    apps: &[&str],
    level: Option<Level>,
) -> SecurityContext {
    let bootstrap = (role != ListenerRole::Mca).then(|| {
        security::association::BootstrapExporter::new(zeroize::Zeroizing::new(
            [7u8; security::association::BOOTSTRAP_EXPORTER_LEN],
        ))
    });
    let mut established = established(framework, credential, identity);
    established.binding.admin = admin;
    established.binding.allowed_apps = apps.iter().map(|a| (*a).to_owned()).collect();
    established.binding.level = level;
    established.bootstrap = bootstrap;
    over(registry, role, established)
}

fn req(
    op: Operation,
    to: &str,
    fr: Option<&str>,
    ty: Option<T>,
    pc: Option<serde_json::Value>,
) -> Request {
    let mut r = Request::new(op, to, fr.map(str::to_owned));
    r.ty = ty;
    r.pc = pc;
    r
}

fn ae_body(rn: &str, api: &str) -> Option<serde_json::Value> {
    Some(json!({"m2m:ae": {"rn": rn, "api": api, "rr": false, "srv": ["3"]}}))
}

/// An AE registration on the CSEBase from `fr`, with the name `rn` and the App-ID `api`.
fn registration(fr: Option<&str>, rn: &str, api: &str) -> Request {
    req(
        Operation::Create,
        "cse-in",
        fr,
        Some(T::Ae),
        ae_body(rn, api),
    )
}

#[tokio::test]
async fn a_certificate_bound_ae_is_held_to_its_id() {
    let t = TestCse::new().await;
    let reg = Arc::new(Registry::default());
    let ctx = cert_ae(&reg, "33-abc", "//secure-cse.example/id-in/Cdev1");
    // Registering with another stem is refused; with `C` the AE gets the certificate's AE-ID.
    let r = t
        .send_ctx(&ctx, registration(Some("Cother"), "d", "Napp"))
        .await;
    assert_eq!(r.rsc, R::OriginatorNotAuthenticated);
    let r = t.send_ctx(&ctx, registration(Some("C"), "d", "Napp")).await;
    assert_eq!((r.rsc, attr(&r, "aei")), (R::Created, json!("Cdev1")));
    // Its own requests pass; a spoofed From over the same association does not.
    assert_eq!(t.send_ctx(&ctx, get("cse-in/d", "Cdev1")).await.rsc, R::Ok);
    assert_eq!(
        t.send_ctx(&ctx, get("cse-in/d", "/id-in/Cdev1")).await.rsc,
        R::Ok
    );
    let other = t.register("victim").await;
    for spoof in [other.as_str(), "CAdmin", "/id-in", "/id-mn", "Cdev2"] {
        let r = t.send_ctx(&ctx, get("cse-in", spoof)).await;
        assert_eq!(r.rsc, R::OriginatorNotAuthenticated, "{spoof}");
    }
    let counted = reg.list().first().map(|a| a.requests()).unwrap_or(0);
    assert_eq!(counted, 9);
}

#[tokio::test]
async fn acaf_rules_match_only_over_an_association() {
    let t = TestCse::new().await;
    let reg = Arc::new(Registry::default());
    let ctx = sa(
        &reg,
        Framework::Psk,
        "12-dev@sp.example",
        PeerIdentity::Ae("Cdev".into()),
        false,
        &[],
    );
    t.send_ctx(&ctx, registration(None, "dev", "Napp")).await;
    let acp = json!({"m2m:acp": {"rn": "p", "pv": {"acr": [{"acor": ["Cdev"], "acop": 63, "acaf": true}]}, "pvs": {"acr": [{"acor": ["Cdev"], "acop": 63, "acaf": true}]}}});
    let r = t
        .send_ctx(
            &ctx,
            req(
                Operation::Create,
                "cse-in/dev",
                Some("Cdev"),
                Some(T::AccessControlPolicy),
                Some(acp),
            ),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    let cnt = json!({"m2m:cnt": {"rn": "c", "acpi": [attr(&r, "ri")]}});
    assert_eq!(
        t.send_ctx(
            &ctx,
            req(
                Operation::Create,
                "cse-in/dev",
                Some("Cdev"),
                Some(T::Container),
                Some(cnt)
            )
        )
        .await
        .rsc,
        R::Created
    );
    assert_eq!(
        t.send_ctx(&ctx, get("cse-in/dev/c", "Cdev")).await.rsc,
        R::Ok
    );
    // The same AE-ID over plain HTTP has no association of its credential: refused before
    // any rule is looked at.
    assert_eq!(
        t.retrieve("Cdev", "cse-in/dev/c").await.rsc,
        R::SecurityAssociationRequired
    );
}

#[tokio::test]
async fn a_c_star_credential_keeps_its_first_assigned_ae_id() {
    let t = TestCse::new().await;
    let reg = Arc::new(Registry::default());
    let ctx = sa(
        &reg,
        Framework::Psk,
        "12-sensor@sp.example",
        PeerIdentity::AllowedAes(vec!["C*".into()]),
        false,
        &["Nsensor*"],
    );
    let r = t
        .send_ctx(&ctx, registration(Some("Cchosen"), "s", "Nsensor"))
        .await;
    assert_eq!(
        r.rsc,
        R::OriginatorNotAuthenticated,
        "C* allows a CSE-assigned ID only"
    );
    let r = t
        .send_ctx(&ctx, registration(Some("C"), "s", "Nother"))
        .await;
    assert_eq!(r.rsc, R::AppRuleValidationFailed);
    let r = t
        .send_ctx(&ctx, registration(Some("C"), "s", "Nsensor-1"))
        .await;
    assert_eq!(r.rsc, R::Created);
    let first = attr(&r, "aei").as_str().expect("aei").to_owned();
    assert!(first.starts_with('C'));
    assert_eq!(t.send_ctx(&ctx, get("cse-in/s", &first)).await.rsc, R::Ok);
    assert_eq!(
        t.send_ctx(
            &ctx,
            req(Operation::Delete, "cse-in/s", Some(&first), None, None)
        )
        .await
        .rsc,
        R::Deleted
    );
    // Registering again over the same credential gives the same AE-ID.
    let r = t.send_ctx(&ctx, registration(None, "s2", "Nsensor")).await;
    assert_eq!((r.rsc, attr(&r, "aei")), (R::Created, json!(first)));
    // Another AE's ID is not usable over this credential.
    let victim = t.register("victim").await;
    assert_eq!(
        t.send_ctx(&ctx, get("cse-in", &victim)).await.rsc,
        R::OriginatorNotAuthenticated
    );
}

#[tokio::test]
async fn the_admin_needs_an_admin_credential_in_a_secure_deployment() {
    let config = CseConfig {
        admin_requires_association: true,
        ..CseConfig::default()
    };
    let t = TestCse::with_config(config).await;
    let reg = Arc::new(Registry::default());
    assert_eq!(
        t.retrieve(ADMIN, "cse-in").await.rsc,
        R::OriginatorNotAuthenticated
    );
    let admin_psk = sa(
        &reg,
        Framework::Psk,
        "12-admin@sp.example",
        PeerIdentity::Ae("CAdmin".into()),
        true,
        &[],
    );
    assert_eq!(
        t.send_ctx(&admin_psk, get("cse-in", ADMIN)).await.rsc,
        R::Ok
    );
    let not_admin = sa(
        &reg,
        Framework::Psk,
        "12-x@sp.example",
        PeerIdentity::Ae("CAdmin".into()),
        false,
        &[],
    );
    assert_eq!(
        t.send_ctx(&not_admin, get("cse-in", ADMIN)).await.rsc,
        R::OriginatorNotAuthenticated
    );
    let other = psk_c(&reg, "12-y@sp.example");
    assert_eq!(
        t.send_ctx(&other, get("cse-in", ADMIN)).await.rsc,
        R::OriginatorNotAuthenticated
    );
    // A certificate that names the admin AE-ID is no admin credential by that alone (H1):
    // any CA a listener trusts could have issued it.
    let names_admin = cert_ae(&reg, "33-ee", "//secure-cse.example/id-in/CAdmin");
    assert_eq!(
        t.send_ctx(&names_admin, get("cse-in", ADMIN)).await.rsc,
        R::OriginatorNotAuthenticated
    );
    assert_eq!(
        t.cse
            .admin(
                &names_admin,
                Some(ADMIN.into()),
                "a1",
                cse::security_manager::admin::AdminCommand::ListAssociations
            )
            .await
            .rsc,
        R::OriginatorNotAuthenticated
    );
    // One the credential store lists as the admin's is.
    let admin_cert = sa(
        &reg,
        Framework::Certificate,
        "33-ff",
        PeerIdentity::Ae("//secure-cse.example/id-in/CAdmin".into()),
        true,
        &[],
    );
    assert_eq!(
        t.send_ctx(&admin_cert, get("cse-in", ADMIN)).await.rsc,
        R::Ok
    );
    // The admin credential cannot register an AE either.
    let r = t
        .send_ctx(&admin_cert, registration(Some("C"), "x", "Nx"))
        .await;
    assert_eq!(r.rsc, R::OriginatorNotAuthenticated);
}

#[tokio::test]
async fn a_cse_id_named_like_an_s_ae_is_not_that_ae() {
    // The S-AE Sx is registered and an ACP lets it read the owner's container.
    let t = TestCse::new().await;
    let sx = t
        .create(
            "Sx",
            "cse-in",
            T::Ae,
            json!({"m2m:ae": {"rn": "sx", "api": "Ntest", "rr": false, "srv": ["3"]}}),
        )
        .await;
    assert_eq!(sx.rsc, R::Created, "{:?}", sx.pc);
    let owner = t.register("owner").await;
    t.guarded_container(
        &owner,
        "cse-in/owner",
        "a",
        json!([{"acor": ["Sx", owner], "acop": 63}]),
    )
    .await;
    assert_eq!(t.retrieve("Sx", "cse-in/owner/data").await.rsc, R::Ok);
    // A peer whose credential names the CSE-ID /Sx (a CA or binding that let it through)
    // is not a CSE, and never the S-AE Sx: refused before access control, in every form.
    let reg = Arc::new(Registry::default());
    let ctx = sa(
        &reg,
        Framework::Certificate,
        "32-sx",
        PeerIdentity::Cse("/Sx".into()),
        false,
        &[],
    );
    for fr in ["/Sx", "//secure-cse.example/Sx", "Sx", "/Sx/Cbehind"] {
        let r = t.send_ctx(&ctx, get("cse-in/owner/data", fr)).await;
        assert_eq!(r.rsc, R::OriginatorNotAuthenticated, "{fr}");
    }
}

#[tokio::test]
async fn a_cse_peer_speaks_only_for_itself() {
    let t = TestCse::new().await;
    let reg = Arc::new(Registry::default());
    let ctx = sa(
        &reg,
        Framework::Certificate,
        "32-aa",
        PeerIdentity::Cse("/id-mn".into()),
        false,
        &[],
    );
    // Authenticated: it may read the CSEBase, but no policy grants it an AE's resources.
    let ae = t.register("local").await;
    assert_eq!(t.send_ctx(&ctx, get("cse-in", "/id-mn")).await.rsc, R::Ok);
    assert_eq!(
        t.send_ctx(&ctx, get("cse-in/local", "/id-mn")).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    let behind = get("cse-in/local", "//secure-cse.example/id-mn/Cbehind");
    assert_eq!(
        t.send_ctx(&ctx, behind).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.send_ctx(&ctx, get("cse-in/local", &ae)).await.rsc,
        R::OriginatorNotAuthenticated
    );
    for spoof in ["/id-other", "/id-in", "Cxyz", "/id-mnx", "//other.sp/id-mn"] {
        assert_eq!(
            t.send_ctx(&ctx, get("cse-in", spoof)).await.rsc,
            R::OriginatorNotAuthenticated,
            "{spoof}"
        );
    }
    let r = t
        .send_ctx(&ctx, registration(Some("/id-mn"), "x", "Nx"))
        .await;
    assert_eq!(r.rsc, R::OriginatorNotAuthenticated);
}

#[tokio::test]
async fn a_withdrawn_association_serves_no_further_request() {
    let t = TestCse::new().await;
    let reg = Arc::new(Registry::default());
    let identity = || PeerIdentity::Ae("//secure-cse.example/id-in/Cdev9".into());
    let ctx = sa(
        &reg,
        Framework::Certificate,
        "33-nine",
        identity(),
        false,
        &[],
    );
    let other = sa(
        &reg,
        Framework::Certificate,
        "33-other",
        identity(),
        false,
        &[],
    );
    let r = t
        .send_ctx(&ctx, registration(Some("Cdev9"), "nine", "Nx"))
        .await;
    assert_eq!(r.rsc, R::Created);

    // Only the associations of the withdrawn credential close, and the first reason stays.
    assert_eq!(
        reg.close_credentials(|id| id == "33-nine", "revoked: key compromise"),
        1
    );
    assert_eq!(reg.close_credentials(|id| id == "33-none", "revoked"), 0);
    let sa_of = |c: &SecurityContext| c.shared_association().expect("an association");
    sa_of(&ctx).close("a later reason");
    assert_eq!(
        sa_of(&ctx).closed_because().as_deref(),
        Some("revoked: key compromise")
    );
    assert!(sa_of(&other).closed_because().is_none());
    // `closed()` resolves at once for a withdrawn association.
    tokio::time::timeout(std::time::Duration::from_secs(5), sa_of(&ctx).closed())
        .await
        .expect("closed resolves");

    let r = t.send_ctx(&ctx, get("cse-in/nine", "Cdev9")).await;
    assert_eq!(r.rsc, R::OriginatorNotAuthenticated, "{r:?}");
    let r = t.send_ctx(&other, get("cse-in/nine", "Cdev9")).await;
    assert_eq!(r.rsc, R::Ok);
}

/// Our `scl` extension: a rule may require the peer's credential to live in a key home of at
/// least a given level; the level comes from the association.
#[tokio::test]
async fn a_rule_can_require_the_credential_level_of_the_association() {
    let t = TestCse::new().await;
    let reg = Arc::new(Registry::default());
    let cert = |id: &str| PeerIdentity::Ae(format!("//secure-cse.example/id-in/{id}"));
    let owner = sa_at(
        &reg,
        Framework::Certificate,
        "33-o",
        cert("Cowner"),
        false,
        &[],
        Some(Level::Hsm),
    );
    let create = |to: &str, ty: T, pc: serde_json::Value| {
        req(Operation::Create, to, Some("Cowner"), Some(ty), Some(pc))
    };
    let r = t
        .send_ctx(&owner, registration(Some("Cowner"), "owner", "Nx"))
        .await;
    assert_eq!(r.rsc, R::Created);
    let acp = json!({"m2m:acp": {
        "rn": "hsm-only",
        "pv": {"acr": [{"acor": ["Creader"], "acop": 2, "acco": [{"scl": 2}]}]},
        "pvs": {"acr": [{"acor": ["Cowner"], "acop": 63}]}
    }});
    let r = t
        .send_ctx(&owner, create("cse-in/owner", T::AccessControlPolicy, acp))
        .await;
    assert_eq!(r.rsc, R::Created, "{r:?}");
    let acp_ri =
        r.pc.as_ref()
            .and_then(|pc| pc["m2m:acp"]["ri"].as_str())
            .expect("ri")
            .to_owned();
    let cnt = json!({"m2m:cnt": {"rn": "vitals", "acpi": [acp_ri]}});
    assert_eq!(
        t.send_ctx(&owner, create("cse-in/owner", T::Container, cnt))
            .await
            .rsc,
        R::Created
    );

    let reader = |credential: &str, level| {
        sa_at(
            &reg,
            Framework::Certificate,
            credential,
            cert("Creader"),
            false,
            &[],
            level,
        )
    };
    let software = reader("33-r1", Some(Level::Software));
    let r = t
        .send_ctx(&software, registration(Some("Creader"), "reader", "Ny"))
        .await;
    assert_eq!(r.rsc, R::Created);
    let read = || get("cse-in/owner/vitals", "Creader");
    assert_eq!(
        t.send_ctx(&software, read()).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.send_ctx(&reader("33-r0", None), read()).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.send_ctx(&reader("33-r2", Some(Level::TrustedEnvironment)), read())
            .await
            .rsc,
        R::Ok
    );
    assert_eq!(
        t.send_ctx(&reader("33-r3", Some(Level::Hsm)), read())
            .await
            .rsc,
        R::Ok
    );
}

/// Bindings kept in clear by an earlier version are re-keyed under the pseudonym vault at
/// start-up: the credential still finds its AE-ID, the store no longer names it, and only a
/// resolution opens the sealed copy.
#[tokio::test]
async fn clear_credential_bindings_move_under_the_pseudonym_vault() {
    use security::privacy::PseudonymVault;
    let dir = tempfile::tempdir().expect("tmp");
    let open_store = || {
        Arc::new(
            store::SqliteStore::open(dir.path(), store::SqliteOptions::default()).expect("store"),
        )
    };
    let psk = |cse: &cse::Cse| {
        sa(
            cse.associations(),
            Framework::Psk,
            "12-dev7@sp.example",
            PeerIdentity::AllowedAes(vec!["C*".into()]),
            false,
            &[],
        )
    };
    // Without a vault (as before): the binding is kept under the Credential-ID.
    let first = cse::Cse::open(CseConfig::default(), open_store())
        .await
        .expect("cse");
    let r = first
        .handle(&psk(&first), registration(Some("C"), "dev7", "Nx"))
        .await;
    assert_eq!(r.rsc, R::Created, "{r:?}");
    let ae_id =
        r.pc.as_ref()
            .and_then(|pc| pc["m2m:ae"]["aei"].as_str())
            .expect("aei")
            .to_owned();
    drop(first);

    let store = open_store();
    assert_eq!(
        StoreRecords::credential_bindings(store.as_ref() as &dyn store::Store).expect("bindings"),
        vec![("12-dev7@sp.example".to_owned(), ae_id.clone())]
    );
    let vault = Arc::new(PseudonymVault::in_data_folder(dir.path()).expect("vault"));
    let services = cse::Services {
        pseudonyms: Some(vault.clone()),
        ..cse::Services::default()
    };
    let second = cse::Cse::open_with(CseConfig::default(), store.clone(), services)
        .await
        .expect("cse");
    let bindings =
        StoreRecords::credential_bindings(store.as_ref() as &dyn store::Store).expect("bindings");
    assert_eq!(bindings.len(), 1);
    assert!(PseudonymVault::is_lookup(&bindings[0].0) && !bindings[0].0.contains("dev7"));
    assert_eq!(bindings[0].1, ae_id);
    // The credential is still bound to its AE-ID, and to nothing else.
    let ctx = psk(&second);
    let own = second.handle(&ctx, get("cse-in/dev7", &ae_id)).await;
    assert_eq!(own.rsc, R::Ok);
    let other = second.handle(&ctx, get("cse-in/dev7", "Cother")).await;
    assert_eq!(other.rsc, R::OriginatorNotAuthenticated);
    // Only the resolution opens the sealed copy.
    let sealed = StoreRecords::sealed_identities(store.as_ref() as &dyn store::Store, &ae_id)
        .expect("sealed");
    assert_eq!(sealed.len(), 1);
    assert!(!String::from_utf8_lossy(&sealed[0]).contains("dev7"));
    let resolved = second
        .resolve_pseudonym("CAdmin", &ae_id, "test")
        .await
        .expect("resolve");
    assert_eq!(resolved["credentials"], json!(["12-dev7@sp.example"]));
    let unknown = second.resolve_pseudonym("CAdmin", "Cnobody", "test").await;
    assert_eq!(unknown.map_err(|e| e.rsc).err(), Some(R::NotFound));
}

/// A registration with `From: C` of an AE named `rn` with App-ID `api`.
fn register_as_c(rn: &str, api: &str) -> Request {
    registration(Some("C"), rn, api)
}

/// A retrieve of `to` as `fr`.
fn get(to: &str, fr: &str) -> Request {
    req(Operation::Retrieve, to, Some(fr), None, None)
}

#[tokio::test]
async fn an_enrolment_association_reaches_nothing_but_enrolment_whatever_it_names() {
    let config = CseConfig {
        admin_requires_association: true,
        ..CseConfig::default()
    };
    let t = TestCse::with_config(config).await;
    let reg = Arc::new(Registry::default());
    // The worst case: the association even claims to be an admin credential.
    for role in [ListenerRole::MefEnrolment, ListenerRole::DeviceEnrolment] {
        let ctx = sa_on(
            role,
            &reg,
            Framework::Certificate,
            "31-dd",
            PeerIdentity::Ae("//secure-cse.example/id-in/CAdmin".into()),
            true,
            &[],
            None,
        );
        let r = t.send_ctx(&ctx, get("cse-in", ADMIN)).await;
        assert_eq!(r.rsc, R::OperationNotAllowed, "{role:?}");
        let r = t
            .cse
            .admin(
                &ctx,
                Some(ADMIN.into()),
                "a1",
                cse::security_manager::admin::AdminCommand::ListAssociations,
            )
            .await;
        assert_eq!(r.rsc, R::OperationNotAllowed, "{role:?}: {:?}", r.pc);
        let e = t
            .cse
            .rotate_ae_id(&ctx, Some(ADMIN.into()))
            .await
            .expect_err("no rotation");
        assert_eq!(e.rsc, R::OperationNotAllowed, "{role:?}");
    }
    // The same credential on an Mca listener is the admin.
    let mca = sa(
        &reg,
        Framework::Certificate,
        "33-dd",
        PeerIdentity::Ae("//secure-cse.example/id-in/CAdmin".into()),
        true,
        &[],
    );
    assert_eq!(t.send_ctx(&mca, get("cse-in", ADMIN)).await.rsc, R::Ok);
    let r = t
        .cse
        .admin(
            &mca,
            Some(ADMIN.into()),
            "a2",
            cse::security_manager::admin::AdminCommand::ListAssociations,
        )
        .await;
    assert_eq!(r.rsc, R::Ok, "{:?}", r.pc);
}

#[tokio::test]
async fn an_ae_bound_to_a_credential_is_refused_without_its_association() {
    let t = TestCse::new().await;
    let reg = Arc::new(Registry::default());
    let psk = psk_c(&reg, "12-sensor@sp.example");
    let r = t.send_ctx(&psk, register_as_c("psk-ae", "Nsensor")).await;
    assert_eq!(r.rsc, R::Created);
    let bound = attr(&r, "aei").as_str().expect("aei").to_owned();
    let cert = cert_ae(&reg, "33-cc", "//secure-cse.example/id-in/Ccert");
    let r = t.send_ctx(&cert, register_as_c("cert-ae", "Nsensor")).await;
    assert_eq!(r.rsc, R::Created);
    let plain = t.register("plain-ae").await;

    // Over plain HTTP, every operation as a bound AE-ID: 4107, and nothing changes.
    for (id, path) in [
        (bound.as_str(), "cse-in/psk-ae"),
        ("Ccert", "cse-in/cert-ae"),
    ] {
        assert_eq!(
            t.retrieve(id, path).await.rsc,
            R::SecurityAssociationRequired
        );
        assert_eq!(
            t.update(id, path, json!({"m2m:ae": {"lbl": ["x"]}}))
                .await
                .rsc,
            R::SecurityAssociationRequired
        );
        assert_eq!(
            t.create(id, path, T::Container, json!({"m2m:cnt": {"rn": "c"}}))
                .await
                .rsc,
            R::SecurityAssociationRequired
        );
        assert_eq!(
            t.create(
                id,
                "cse-in",
                T::Ae,
                json!({"m2m:ae": {"rn": "again", "api": "Nx", "rr": false, "srv": ["3"]}})
            )
            .await
            .rsc,
            R::SecurityAssociationRequired
        );
        assert_eq!(t.delete(id, path).await.rsc, R::SecurityAssociationRequired);
        let e = t
            .cse
            .rotate_ae_id(&SecurityContext::plaintext("http", None), Some(id.into()))
            .await
            .expect_err("no rotation over plain HTTP");
        assert_eq!(e.rsc, R::SecurityAssociationRequired);
    }
    // Nothing changed: each AE is still there, unlabelled and without children, for its own
    // association; an AE registered without a credential is still served over plain HTTP.
    let r = t.send_ctx(&psk, get("cse-in/psk-ae", &bound)).await;
    assert_eq!((r.rsc, attr(&r, "lbl")), (R::Ok, serde_json::Value::Null));
    assert_eq!(
        t.send_ctx(&cert, get("cse-in/cert-ae/c", "Ccert"))
            .await
            .rsc,
        R::NotFound
    );
    assert_eq!(t.retrieve(&plain, "cse-in/plain-ae").await.rsc, R::Ok);

    // Deregistered over its association, a bound AE-ID stays bound: nobody registers it
    // over plain HTTP, while its credential can register it again.
    assert_eq!(
        t.send_ctx(
            &cert,
            req(
                Operation::Delete,
                "cse-in/cert-ae",
                Some("Ccert"),
                None,
                None
            )
        )
        .await
        .rsc,
        R::Deleted
    );
    let squat = t
        .create(
            "Ccert",
            "cse-in",
            T::Ae,
            json!({"m2m:ae": {"rn": "squat", "api": "Nx", "rr": false, "srv": ["3"]}}),
        )
        .await;
    assert_eq!(squat.rsc, R::SecurityAssociationRequired);
    let r = t.send_ctx(&cert, register_as_c("cert-ae", "Nsensor")).await;
    assert_eq!((r.rsc, attr(&r, "aei")), (R::Created, json!("Ccert")));
}

#[tokio::test]
async fn without_an_association_a_secure_deployment_assigns_the_ae_id() {
    let config = CseConfig {
        admin_requires_association: true,
        ..CseConfig::default()
    };
    let t = TestCse::with_config(config).await;
    let ae = |rn: &str| json!({"m2m:ae": {"rn": rn, "api": "Nx", "rr": false, "srv": ["3"]}});
    // An AE-ID a certificate names, not registered yet: nobody takes it over plain HTTP.
    let r = t.create("Ccert", "cse-in", T::Ae, ae("squat")).await;
    assert_eq!(r.rsc, R::SecurityAssociationRequired);
    let r = t.create("Sfixed", "cse-in", T::Ae, ae("squat")).await;
    assert_eq!(r.rsc, R::SecurityAssociationRequired);
    // An assigned one is fine, and its AE is served over plain HTTP.
    let id = t.register("plain").await;
    assert_eq!(t.retrieve(&id, "cse-in/plain").await.rsc, R::Ok);
    // The holder of the certificate registers it over its association.
    let reg = Arc::new(Registry::default());
    let cert = cert_ae(&reg, "33-ab", "//secure-cse.example/id-in/Ccert");
    let r = t.send_ctx(&cert, register_as_c("cert", "Nx")).await;
    assert_eq!((r.rsc, attr(&r, "aei")), (R::Created, json!("Ccert")));
}

#[tokio::test]
async fn a_rotated_ae_id_stays_bound_and_so_does_the_old_one() {
    let t = TestCse::new().await;
    let reg = Arc::new(Registry::default());
    let psk = psk_c(&reg, "12-rotating@sp.example");
    let r = t.send_ctx(&psk, register_as_c("rotating", "Nx")).await;
    assert_eq!(r.rsc, R::Created);
    let old = attr(&r, "aei").as_str().expect("aei").to_owned();
    let answer = t
        .cse
        .rotate_ae_id(&psk, Some(old.clone()))
        .await
        .expect("rotation over its own association");
    let new = answer["m2m:ae"]["aei"]
        .as_str()
        .expect("new aei")
        .to_owned();
    assert_ne!(new, old);
    // Over plain HTTP neither AE-ID is anyone's to use, nor to register again.
    for id in [&new, &old] {
        assert_eq!(
            t.retrieve(id, "cse-in/rotating").await.rsc,
            R::SecurityAssociationRequired,
            "{id}"
        );
        let again = t
            .create(
                id,
                "cse-in",
                T::Ae,
                json!({"m2m:ae": {"rn": "again", "api": "Nx", "rr": false, "srv": ["3"]}}),
            )
            .await;
        assert_eq!(again.rsc, R::SecurityAssociationRequired, "{id}");
    }
    // Its own association goes on under the new AE-ID.
    let r = t.send_ctx(&psk, get("cse-in/rotating", &new)).await;
    assert_eq!((r.rsc, attr(&r, "aei")), (R::Ok, json!(new)));
}

#[tokio::test]
async fn a_pattern_grants_only_the_ae_ids_its_own_credential_registered() {
    let t = TestCse::new().await;
    let reg = Arc::new(Registry::default());
    let pattern = |credential: &str| {
        sa(
            &reg,
            Framework::Psk,
            credential,
            PeerIdentity::AllowedAes(vec!["S*".into(), "Cfixed".into()]),
            false,
            &[],
        )
    };
    let (a, b) = (pattern("12-a@sp.example"), pattern("12-b@sp.example"));
    let register = |ctx: SecurityContext, fr: &'static str, rn: &'static str| {
        let cse = t.cse.clone();
        async move { cse.handle(&ctx, registration(Some(fr), rn, "Nx")).await }
    };
    let r = register(a.clone(), "S", "sa").await;
    assert_eq!(r.rsc, R::Created);
    let sa_id = attr(&r, "aei").as_str().expect("aei").to_owned();
    let r = register(a.clone(), "Sexplicit", "sx").await;
    assert_eq!(r.rsc, R::Created);
    // An S-AE registered over plain HTTP, matching the pattern too.
    assert_eq!(
        t.create(
            "Splain",
            "cse-in",
            T::Ae,
            json!({"m2m:ae": {"rn": "sp", "api": "Nx", "rr": false, "srv": ["3"]}})
        )
        .await
        .rsc,
        R::Created
    );

    // A acts as the S-AE-IDs it registered; B, whose pattern matches them as well, does not.
    assert_eq!(t.send_ctx(&a, get("cse-in/sa", &sa_id)).await.rsc, R::Ok);
    assert_eq!(
        t.send_ctx(&a, get("cse-in/sx", "Sexplicit")).await.rsc,
        R::Ok
    );
    for (to, id) in [
        ("cse-in/sa", sa_id.as_str()),
        ("cse-in/sx", "Sexplicit"),
        ("cse-in/sp", "Splain"),
    ] {
        assert_eq!(
            t.send_ctx(&b, get(to, id)).await.rsc,
            R::OriginatorNotAuthenticated,
            "{id}"
        );
    }
    assert_eq!(
        t.send_ctx(&a, get("cse-in/sp", "Splain")).await.rsc,
        R::OriginatorNotAuthenticated
    );
    // Nor can B take over A's AE-ID by registering it (after A deregistered it).
    assert_eq!(
        t.send_ctx(
            &a,
            req(
                Operation::Delete,
                "cse-in/sx",
                Some("Sexplicit"),
                None,
                None
            )
        )
        .await
        .rsc,
        R::Deleted
    );
    assert_eq!(
        register(b.clone(), "Sexplicit", "taken").await.rsc,
        R::OriginatorNotAuthenticated
    );
    // A literal entry is an AE-ID the operator fixed: it is granted as such.
    assert_eq!(register(b.clone(), "Cfixed", "fixed").await.rsc, R::Created);
    assert_eq!(
        t.send_ctx(&b, get("cse-in/fixed", "Cfixed")).await.rsc,
        R::Ok
    );
}

#[tokio::test]
async fn simultaneous_first_registrations_over_one_credential_register_one_ae() {
    let t = TestCse::new().await;
    let reg = Arc::new(Registry::default());
    let ctx = psk_c(&reg, "12-race@sp.example");
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (cse, ctx) = (t.cse.clone(), ctx.clone());
            tokio::spawn(async move {
                cse.handle(
                    &ctx,
                    req(
                        Operation::Create,
                        "cse-in",
                        Some("C"),
                        Some(T::Ae),
                        ae_body(&format!("race-{i}"), "Nx"),
                    ),
                )
                .await
            })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        let r = task.await.expect("task");
        match r.rsc {
            R::Created => created.push(attr(&r, "aei").as_str().expect("aei").to_owned()),
            rsc => assert_eq!(rsc, R::OriginatorHasAlreadyRegistered, "{:?}", r.pc),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    // The one AE is the credential's: remembered for it and registered, nothing orphaned.
    let key = "12-race@sp.example";
    assert_eq!(
        t.cse.store().credential_ae(key).expect("store"),
        Some(created[0].clone())
    );
    let base = t
        .cse
        .store()
        .get_by_srn("cse-in")
        .expect("store")
        .expect("the CSEBase");
    let aes = t
        .cse
        .store()
        .children(base.ri(), Some(T::Ae))
        .expect("children");
    assert_eq!(aes.len(), 1, "{aes:?}");
}

#[tokio::test]
async fn the_memory_binding_carries_an_association_the_cse_knows() {
    let t = TestCse::new().await;
    let device = cse::testing::MemoryBinding::over(
        &t.cse,
        ListenerRole::Mca,
        "127.0.0.1:5001".parse().expect("addr"),
        established(
            Framework::Certificate,
            "33-mem",
            PeerIdentity::Ae("//secure-cse.example/id-in/Cmem1".into()),
        ),
    );
    let create = |fr: &str, to: &str, ty: T, pc| req(Operation::Create, to, Some(fr), Some(ty), pc);
    let r = device
        .send(create("C", "cse-in", T::Ae, ae_body("mem", "Napp")))
        .await;
    assert_eq!((r.rsc, attr(&r, "aei")), (R::Created, json!("Cmem1")));
    let r = device
        .send(create(
            "Cmem1",
            "cse-in/mem",
            T::Container,
            Some(json!({"m2m:cnt": {"rn": "c"}})),
        ))
        .await;
    assert_eq!(r.rsc, R::Created);
    let spoof = get("cse-in/mem/c", "Cother");
    assert_eq!(device.send(spoof).await.rsc, R::OriginatorNotAuthenticated);
    // The association is in the CSE's own registry: the admin sees it.
    let listed = t
        .plaintext()
        .manage(
            cse::inbound::Verb::Retrieve,
            "/.admin/associations",
            "",
            Some(ADMIN),
            b"",
        )
        .await
        .into_response()
        .await
        .expect("a response");
    assert_eq!(listed.rsc, R::Ok);
    assert!(
        listed
            .pc
            .map(|pc| pc.to_string())
            .unwrap_or_default()
            .contains("33-mem"),
        "the association is listed"
    );
}
