//! The AWS SDK for Rust's S3 client against provisiond's object store: uploads (over plain HTTP
//! the SDK sends them whole, signed, with a CRC32 checksum header) arrive whole and verified.

mod common;

use aws_sdk_s3::primitives::ByteStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_downloads_with_the_rust_sdk() {
    let running = common::start().await;
    let s3 = running.s3();
    s3.create_bucket().bucket("bundles").send().await.unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    s3.put_object()
        .bucket("bundles")
        .key("env/bundle.tar.gz")
        .body(ByteStream::from(payload.clone()))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("bundles")
        .key("env/bundle.tar.gz")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(payload.len() as i64));
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(body.as_ref(), payload.as_slice());
    let listed = s3
        .list_objects_v2()
        .bucket("bundles")
        .prefix("env/")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 1);
    let missing = s3
        .get_object()
        .bucket("bundles")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert!(missing.into_service_error().is_no_such_key());
}
