//! The AWS SDK for Rust against provisiond, served in-process on a loopback port with a fresh
//! data directory: portfolio CRUD, paging and modeled errors as the SDK sees them.

mod common;

use aws_sdk_servicecatalog::Client;

async fn start() -> (common::Running, Client) {
    let running = common::start().await;
    let client = running.servicecatalog();
    (running, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portfolios_through_the_rust_sdk() {
    let (running, client) = start().await;
    assert!(running.endpoint.starts_with("http://127.0.0.1:"));
    let empty = client.list_portfolios().send().await.unwrap();
    assert!(empty.portfolio_details().is_empty());

    let created = client
        .create_portfolio()
        .display_name("Platform")
        .provider_name("Platform team")
        .idempotency_token("rust-sdk-1")
        .send()
        .await
        .unwrap();
    let detail = created.portfolio_detail().unwrap();
    let id = detail.id().unwrap().to_string();
    assert!(id.starts_with("port-") && id.len() == 18);
    assert!(
        detail.created_time().is_some(),
        "epoch-second timestamps parse"
    );

    let described = client.describe_portfolio().id(&id).send().await.unwrap();
    assert_eq!(
        described.portfolio_detail().unwrap().display_name(),
        Some("Platform")
    );

    for i in 0..4 {
        client
            .create_portfolio()
            .display_name(format!("p{i}"))
            .provider_name("p")
            .send()
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut pages = client
        .list_portfolios()
        .page_size(2)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        assert!(page.portfolio_details().len() <= 2);
        seen.extend(
            page.portfolio_details()
                .iter()
                .map(|p| p.id().unwrap().to_string()),
        );
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0], id);

    let missing = client
        .describe_portfolio()
        .id("port-doesnotexist1")
        .send()
        .await
        .unwrap_err();
    let service_error = missing.into_service_error();
    assert!(
        service_error.is_resource_not_found_exception(),
        "{service_error:?}"
    );

    client.delete_portfolio().id(&id).send().await.unwrap();
    let gone = client
        .describe_portfolio()
        .id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(gone.into_service_error().is_resource_not_found_exception());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_reach_the_sdk_with_their_code() {
    let (_running, client) = start().await;
    let err = client
        .create_portfolio()
        .display_name("x".repeat(101))
        .provider_name("p")
        .send()
        .await
        .unwrap_err();
    let raw = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(raw, Some(400));
    let meta = aws_sdk_servicecatalog::error::ProvideErrorMetadata::code(&err.into_service_error())
        .map(str::to_string);
    assert_eq!(meta.as_deref(), Some("ValidationException"));
}
