//! What an operator scrapes: `GET /metrics` of a department service and of linkage counts receipts, folded events,
//! the fold's position and every gRPC call by method and code — refused ones too — and carries no personal data.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use caselink_domain::SystemClock;
use caselink_e2e::*;
use caselink_ingest::IngestOptions;
use caselink_proto::v1::ingest_client::IngestClient;
use caselink_proto::v1::linkage_client::LinkageClient;
use caselink_proto::v1::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One plain HTTP/1.0 GET: the head and the body.
async fn get(address: &str, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((head.to_string(), body.to_string()))
}

/// Polls `address` until its metrics contain every one of `wanted`.
async fn metrics_with(address: &str, wanted: &[&str]) -> String {
    let mut last = String::new();
    for _ in 0..400 {
        if let Ok(Ok((head, body))) =
            tokio::time::timeout(Duration::from_secs(2), get(address, "/metrics")).await
        {
            assert!(
                head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
                "{head}"
            );
            assert!(
                head.to_lowercase().contains("application/openmetrics-text"),
                "{head}"
            );
            if wanted.iter().all(|w| body.contains(w)) {
                return body;
            }
            last = body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("metrics at {address} never showed {wanted:?}:\n{last}");
}

#[tokio::test]
async fn a_department_and_linkage_expose_their_figures_without_personal_data() {
    let c = Cluster::start_ingest_only(Arc::new(SystemClock)).await;
    let cancel = caselink_runtime::Cancel::new();

    // A market service with its metrics endpoint.
    let market_metrics = format!("127.0.0.1:{}", free_port());
    let options = IngestOptions {
        nats_url: c.nats.url(),
        identity: c.identity.clone(),
        auth: caselink_auth::AuthKeys {
            signing_key: String::new(),
            public_key: c.auth.public_key.clone(),
        },
        metrics_listen: market_metrics.clone(),
        ..IngestOptions::default()
    };
    let market_addr = serve_ingest(
        caselink_market::Market,
        options,
        Arc::new(SystemClock),
        &cancel,
    )
    .await;
    // Linkage with its metrics endpoint.
    let linkage_metrics = format!("127.0.0.1:{}", free_port());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let linkage_addr = format!("http://{}", listener.local_addr().unwrap());
    let mut options = c.linkage_options();
    options.metrics_listen = linkage_metrics.clone();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            caselink_linkage::serve_on(options, listener, cancel)
                .await
                .unwrap();
        });
    }

    let id = id_number("19850312", 7);
    let writer = c.token(|_| {});
    let mut market = IngestClient::with_interceptor(
        connect_retrying(&market_addr).await,
        Bearer::new(&writer, None),
    );
    let mut bad = complaint("MK-2", &id, T2025);
    bad.region_code = "43060".into();
    let receipts = market
        .submit(SubmitRequest {
            events: vec![complaint("MK-1", &id, T2025), bad],
        })
        .await
        .unwrap()
        .into_inner()
        .receipts;
    assert_eq!(
        statuses(&receipts),
        [ReceiptStatus::Accepted, ReceiptStatus::Rejected]
    );
    // A call without a token is refused at the door, and counted.
    let refused = IngestClient::new(connect_retrying(&market_addr).await)
        .submit(SubmitRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let body = metrics_with(
        &market_metrics,
        &[
            r#"caselink_ingest_receipts_total{service="market",status="accepted"} 1"#,
            r#"caselink_ingest_receipts_total{service="market",status="rejected"} 1"#,
            r#"caselink_rpc_requests_total{service="market",method="/caselink.v1.Ingest/Submit",code="OK"} 1"#,
            r#"caselink_rpc_requests_total{service="market",method="/caselink.v1.Ingest/Submit",code="UNAUTHENTICATED"} 1"#,
            r#"caselink_rpc_seconds_count{service="market",method="/caselink.v1.Ingest/Submit"} 2"#,
        ],
    )
    .await;
    assert!(!body.contains(&id) && !body.contains("张三"), "{body}");
    // Another path is served as 404, not as metrics.
    let (head, _) = get(&market_metrics, "/other").await.unwrap();
    assert!(head.contains(" 404"), "{head}");

    // Linkage: the event folded, the position, the timeline read.
    let analyst = c.token(|k| k.role = caselink_auth::Role::Analyst);
    let mut linkage = LinkageClient::with_interceptor(
        connect_retrying(&linkage_addr).await,
        Bearer::new(&analyst, Some(TEST_PURPOSE)),
    );
    let mut read = false;
    for _ in 0..400 {
        let timeline = linkage
            .get_timeline(GetTimelineRequest {
                person: by_id(&id),
                ..GetTimelineRequest::default()
            })
            .await;
        if timeline.is_ok_and(|t| t.get_ref().entries.len() == 1) {
            read = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(read, "the event never reached the timeline");
    let body = metrics_with(
        &linkage_metrics,
        &[
            r#"caselink_fold_events_total{service="linkage"} 1"#,
            r#"caselink_fold_position{service="linkage"} 1"#,
            r#"caselink_fold_pending{service="linkage"} 0"#,
            r#"caselink_fold_run_entries{service="linkage"}"#,
            r#"method="/caselink.v1.Linkage/GetTimeline",code="OK"}"#,
            r#"caselink_allocator_resident_bytes{service="linkage"}"#,
        ],
    )
    .await;
    assert!(!body.contains(&id), "{body}");
    cancel.cancel();
}
