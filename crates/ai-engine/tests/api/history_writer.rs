//! The history writer against PostgreSQL: rows with long model versions and hostile strings
//! are stored, and one row PostgreSQL refuses cannot block the rows queued behind it (the load
//! harness found a version that overflowed `VARCHAR(50)` and stalled the service).

use std::time::Duration;

use aegis_ai_engine::history::{BaselineRecord, HistoryWriter, JsonText, PredictionRecord, Record};
use aegis_test_support::fresh_database;
use serde_json::json;

fn record(version: &str, message: &str) -> Record {
    Record::Prediction(Box::new(PredictionRecord {
        model_type: "anomaly",
        input_data: JsonText::from_value(&json!({"logs": [{"message": message}]})),
        prediction: JsonText::from_value(&json!({"is_anomaly": false})),
        severity_score: 0.5,
        confidence_score: 0.5,
        recommended_action: "no_action".into(),
        execution_time_ms: 1,
        model_version: version.into(),
        features: JsonText::from_value(&json!({})),
        metadata: JsonText::from_value(&json!({"method": "test"})),
    }))
}

#[tokio::test]
async fn long_versions_and_nul_bytes_are_stored_and_never_block_the_queue() {
    let db = fresh_database("aihistory").await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    aegis_ai_engine::startup::MIGRATOR.run(&pool).await.unwrap();
    let (writer, handle): (HistoryWriter, _) = HistoryWriter::spawn(pool.clone(), 100, || {});
    let long = format!(
        "iforest-{}-1",
        "cpu_usage,memory_usage,request_rate,error_rate,".repeat(2)
    );
    assert!(long.len() > 50);
    writer.record(record(&long, "ok")).await;
    writer.record(record("v1", "nul \0 inside")).await;
    // Text that is not JSON fails its cast to jsonb (a data exception): that row alone is
    // set aside.
    let mut broken = record("broken", "x");
    if let Record::Prediction(p) = &mut broken {
        p.input_data = JsonText::from_json("{not json".to_owned());
    }
    writer.record(broken).await;
    writer.record(record("v2", "after")).await;
    drop(writer);
    assert!(
        handle.close(Duration::from_secs(10)).await,
        "writer drained"
    );
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT model_version, input_data->'logs'->0->>'message' FROM prediction_history ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (long, "ok".to_owned()),
            ("v1".to_owned(), "nul  inside".to_owned()),
            ("v2".to_owned(), "after".to_owned()),
        ]
    );
}

/// Batches of every size go through the same `UNNEST` statements: more rows than one batch
/// holds, predictions and baselines interleaved, each column stored as sent; a large body is
/// compressed with lz4 (migration 0003).
#[tokio::test]
async fn mixed_batches_store_every_column_and_large_bodies_are_lz4_compressed() {
    let db = fresh_database("aihistorybatch").await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    aegis_ai_engine::startup::MIGRATOR.run(&pool).await.unwrap();
    let (writer, handle) = HistoryWriter::spawn(pool.clone(), 1_000, || {});
    let large = "x".repeat(8_000);
    for i in 0..300 {
        let mut r = record(&format!("v{i}"), if i == 0 { &large } else { "m" });
        if let Record::Prediction(p) = &mut r {
            p.severity_score = 0.123_456;
            p.execution_time_ms = i;
        }
        writer.record(r).await;
        writer
            .record(Record::Baseline(BaselineRecord {
                features: JsonText::from_value(&json!({"cpu_usage_mean": f64::from(i)})),
                metadata: JsonText::from_value(&json!({"signature": "cpu_usage,error_rate"})),
            }))
            .await;
    }
    drop(writer);
    assert!(
        handle.close(Duration::from_secs(20)).await,
        "writer drained"
    );

    let (n, times, severity, versions): (i64, i64, Option<String>, i64) = sqlx::query_as(
        "SELECT count(*), sum(execution_time_ms), min(severity_score)::text, \
         count(DISTINCT model_version) FROM prediction_history",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (n, times, severity.as_deref(), versions),
        (300, (0..300).sum(), Some("0.1235"), 300)
    );
    let (n, sum, labelled, sources, signatures): (i64, f64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), sum((features->>'cpu_usage_mean')::float8), count(label), \
         count(*) FILTER (WHERE source = 'request' AND model_type = 'anomaly'), \
         count(*) FILTER (WHERE metadata->>'signature' = 'cpu_usage,error_rate') \
         FROM training_data",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((n, labelled, sources, signatures), (300, 0, 300, 300));
    assert!((sum - f64::from((0..300).sum::<i32>())).abs() < 1e-9);
    let compression: Option<String> = sqlx::query_scalar(
        "SELECT pg_column_compression(input_data) FROM prediction_history \
         WHERE model_version = 'v0'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(compression.as_deref(), Some("lz4"));
}
