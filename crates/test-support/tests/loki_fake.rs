#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The Loki fake speaks the push and query_range protocol.

use aegis_test_support::LokiFake;
use prost::Message as _;
use serde_json::{Value, json};

#[tokio::test]
async fn json_push_is_returned_by_query_range_with_label_filters() {
    let loki = LokiFake::start().await.unwrap();
    let client = reqwest::Client::new();
    let push = json!({"streams": [
        {"stream": {"job": "aegis-executor", "level": "info"},
         "values": [["1700000000000000000", "{\"msg\":\"one\"}"], ["1700000001000000000", "two"]]},
        {"stream": {"job": "other", "level": "error"},
         "values": [["1700000002000000000", "three"]]}
    ]});
    let res = client
        .post(format!("{}/loki/api/v1/push", loki.url()))
        .json(&push)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);

    let body: Value = client
        .get(format!("{}/loki/api/v1/query_range", loki.url()))
        .query(&[
            ("query", r#"{job="aegis-executor"}"#),
            ("start", "1600000000000000000"),
            ("end", "1800000000000000000"),
            ("direction", "forward"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "success");
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1);
    assert_eq!(result[0]["stream"]["job"], "aegis-executor");
    let values = result[0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 2);
    assert_eq!(values[0][1], "{\"msg\":\"one\"}");

    let regex: Value = client
        .get(format!("{}/loki/api/v1/query_range", loki.url()))
        .query(&[("query", r#"{level=~"info|error"}"#)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let total: usize = regex["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 3);
}

#[derive(Clone, PartialEq, prost::Message)]
struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    streams: Vec<StreamAdapter>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct StreamAdapter {
    #[prost(string, tag = "1")]
    labels: String,
    #[prost(message, repeated, tag = "2")]
    entries: Vec<EntryAdapter>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    timestamp: Option<Ts>,
    #[prost(string, tag = "2")]
    line: String,
}
#[derive(Clone, PartialEq, prost::Message)]
struct Ts {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

#[tokio::test]
async fn protobuf_snappy_push_is_accepted() {
    let loki = LokiFake::start().await.unwrap();
    let req = PushRequest {
        streams: vec![StreamAdapter {
            labels: r#"{job="aegis-executor", action_type="scale_deployment"}"#.into(),
            entries: vec![EntryAdapter {
                timestamp: Some(Ts {
                    seconds: 1_700_000_000,
                    nanos: 5,
                }),
                line: "hello".into(),
            }],
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let res = reqwest::Client::new()
        .post(format!("{}/loki/api/v1/push", loki.url()))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let entries = loki.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].line, "hello");
    assert_eq!(entries[0].timestamp_ns, 1_700_000_000_000_000_005);
    assert_eq!(entries[0].labels["action_type"], "scale_deployment");
}

#[tokio::test]
async fn stopped_fake_refuses_and_keeps_its_data_after_restart() {
    let mut loki = LokiFake::start().await.unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/loki/api/v1/push", loki.url());
    let push = json!({"streams": [{"stream": {"job": "x"}, "values": [["1", "a"]]}]});
    assert_eq!(
        client.post(&url).json(&push).send().await.unwrap().status(),
        204
    );
    loki.stop();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(client.post(&url).json(&push).send().await.is_err());
    loki.restart().await.unwrap();
    assert_eq!(
        client.post(&url).json(&push).send().await.unwrap().status(),
        204
    );
    assert_eq!(loki.entries().len(), 2);

    loki.set_failing(Some(500));
    assert_eq!(
        client.post(&url).json(&push).send().await.unwrap().status(),
        500
    );
    assert_eq!(loki.entries().len(), 2);
}

#[tokio::test]
async fn malformed_pushes_are_rejected() {
    let loki = LokiFake::start().await.unwrap();
    let res = reqwest::Client::new()
        .post(format!("{}/loki/api/v1/push", loki.url()))
        .json(&json!({"streams": [{"stream": {"job": "x"}, "values": [[1, "a"]]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(loki.entries().is_empty());
}
