//! A PSK master key in a PKCS#11 token (SoftHSMv2, level 3): the PSK a `derive_from` entry
//! gets is RFC 5869 HKDF-Expand computed by the token, equal to the same derivation computed
//! here in software from the master's bytes (imported into the token for this test only),
//! and the entry's credential level defaults to the token's.

use keystore::pkcs11::{Pkcs11Config, Pkcs11Home};
use keystore::testing::SOFTHSM_MODULE;
use keystore::{
    Algorithm, KeyHome, KeyId, KeyRole, KeyStore, KeyStorePolicy, Level, SecretBytes, SecretSource,
};
use security::credentials::{
    CredentialStore, FileCredentials, PskMaster, PskMasterSource, KPSA_INFO_LABEL,
};
use std::sync::Arc;

const MASTER: [u8; 32] = [0xa7; 32];

struct Token {
    store: Arc<KeyStore>,
}

impl PskMasterSource for Token {
    fn psk_master(&self, home: &str, id: &KeyId) -> Result<PskMaster, String> {
        assert_eq!(home, "pkcs11");
        let home = self.store.homes().next().ok_or("no home")?.id().clone();
        let handle = self
            .store
            .open(&home, id, KeyRole::PskMaster)
            .map_err(|e| e.to_string())?;
        PskMaster::new(self.store.clone(), handle).map_err(|e| e.to_string())
    }
}

fn hkdf_expand_32(identity: &str) -> Vec<u8> {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&MASTER).expect("key");
    mac.update(KPSA_INFO_LABEL);
    mac.update(identity.as_bytes());
    mac.update(&[1]);
    mac.finalize().into_bytes().to_vec()
}

#[test]
fn the_token_derives_rfc5869_psks_at_level_3() {
    // The binary's one SoftHSM configuration (the module reads it once per process).
    let Some(_hsm) = crate::common::softhsm() else {
        return;
    };
    let home: Arc<dyn KeyHome> = Arc::new(
        Pkcs11Home::open(&Pkcs11Config {
            module: SOFTHSM_MODULE.into(),
            token_label: "psk-token".into(),
            pin: SecretSource::Provided(SecretBytes::from_slice(b"1234")),
        })
        .expect("token"),
    );
    let store = KeyStore::new(KeyStorePolicy::default()).with_home(home.clone());
    store
        .import(
            home.id(),
            &KeyId::new("psk-master").expect("id"),
            KeyRole::PskMaster,
            Algorithm::HmacSha256,
            SecretBytes::from_slice(&MASTER),
        )
        .expect("import into the token");
    let token = Token {
        store: Arc::new(store),
    };
    let creds = FileCredentials::parse_with(
        "[[psk]]\nidentity = \"sensor-7@secure-cse.example\"\n\
         derive_from = { home = \"pkcs11\", id = \"psk-master\" }\nae = \"Csensor7\"\n",
        &token,
    )
    .expect("valid");
    let psk = creds.psk("sensor-7@secure-cse.example").expect("derived");
    assert_eq!(
        psk.key.expose(),
        hkdf_expand_32("sensor-7@secure-cse.example").as_slice()
    );
    assert_eq!(psk.binding.level, Some(Level::Hsm));
}
