//! Optional mutual TLS: a server configured with a client CA accepts only clients presenting a certificate it signed.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use caselink_e2e::*;
use caselink_proto::v1::ingest_client::IngestClient;
use caselink_proto::v1::*;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
    stranger: (String, String),
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |name: &str, issuer: &rcgen::Certificate, issuer_key: &KeyPair| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, issuer, issuer_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    // A client certificate from another CA: well-formed, but not one this deployment issued.
    let other_key = KeyPair::generate().unwrap();
    let mut other_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let other_ca = other_params.self_signed(&other_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        server: leaf("localhost", &ca, &ca_key),
        client: leaf("market-system", &ca, &ca_key),
        stranger: leaf("market-system", &other_ca, &other_key),
    }
}

async fn submit_over_tls(
    addr: &str,
    pki: &Pki,
    identity: Option<&(String, String)>,
    token: &str,
) -> Result<(), String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let endpoint = Endpoint::from_shared(addr.to_string())
        .unwrap()
        .tls_config(tls)
        .unwrap();
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut client = IngestClient::with_interceptor(channel, Bearer::new(token, None));
    let id = id_number("19850312", 123);
    client
        .submit(SubmitRequest {
            events: vec![complaint("MK-tls", &id, T2025)],
        })
        .await
        .map(|_| ())
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_a_certificate_it_signed_get_in() {
    let c = Cluster::start_ingest_only(Arc::new(caselink_domain::SystemClock)).await;
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let tls = caselink_runtime::TlsConfig {
        cert_file: write("server.pem", &pki.server.0),
        key_file: write("server.key", &pki.server.1),
        client_ca_file: write("ca.pem", &pki.ca_pem),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let options = caselink_ingest::IngestOptions {
        nats_url: c.nats.url(),
        identity: c.identity.clone(),
        auth: caselink_auth::AuthKeys {
            signing_key: String::new(),
            public_key: c.auth.public_key.clone(),
        },
        tls,
        ..caselink_ingest::IngestOptions::default()
    };
    let cancel = caselink_runtime::Cancel::new();
    let server_cancel = cancel.clone();
    tokio::spawn(async move {
        let clock: Arc<dyn caselink_domain::Clock> = Arc::new(caselink_domain::SystemClock);
        caselink_ingest::serve_on(
            caselink_market::Market,
            options,
            listener,
            clock,
            server_cancel,
        )
        .await
        .unwrap();
    });
    let addr = format!("https://localhost:{port}");
    let token = c.token(|_| {});

    let mut with_cert = Err(String::new());
    for _ in 0..200 {
        with_cert = submit_over_tls(&addr, &pki, Some(&pki.client), &token).await;
        if with_cert.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        with_cert,
        Ok(()),
        "a client with a certificate of the deployment's CA gets in"
    );
    assert!(
        submit_over_tls(&addr, &pki, None, &token).await.is_err(),
        "no client certificate: refused"
    );
    assert!(
        submit_over_tls(&addr, &pki, Some(&pki.stranger), &token)
            .await
            .is_err(),
        "a certificate of another CA: refused"
    );
    let plaintext = IngestClient::connect(format!("http://127.0.0.1:{port}")).await;
    if let Ok(mut client) = plaintext {
        assert!(
            client.submit(SubmitRequest::default()).await.is_err(),
            "plaintext: refused"
        );
    }
    cancel.cancel();
}
