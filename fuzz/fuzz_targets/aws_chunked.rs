//! The aws-chunked decoder in its three modes, signed ones with a fixed key: no panic, and a
//! signed body the fuzzer made without the key must never decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provisiond::s3::chunked::{decode, ChunkKey, Streaming};

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let key = ChunkKey {
        key: [7u8; 32],
        amz_date: "20260101T000000Z".into(),
        scope: "20260101/us-east-1/s3/aws4_request".into(),
        seed: "0".repeat(64),
    };
    match which % 3 {
        0 => {
            let _ = decode(body, Streaming::UnsignedTrailer, None);
        }
        n => {
            let decoded = decode(body, Streaming::Signed { trailer: n == 2 }, Some(&key));
            // Every chunk, the final empty one included, is signed with a key and a seed the
            // input cannot contain: nothing the fuzzer writes may decode.
            assert!(decoded.is_err(), "forged chunks decoded");
        }
    }
});
