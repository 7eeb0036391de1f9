//! The history writer against PostgreSQL: rows with long model versions and hostile strings
//! are stored, and one row PostgreSQL refuses cannot block the rows queued behind it (the load
//! harness found a version that overflowed `VARCHAR(50)` and stalled the service).

use std::time::Duration;

use aegis_ai_engine::history::{HistoryWriter, PredictionRecord, Record};
use aegis_test_support::fresh_database;
use serde_json::json;

fn record(version: &str, message: &str) -> Record {
    Record::Prediction(Box::new(PredictionRecord {
        model_type: "anomaly",
        input_data: json!({"logs": [{"message": message}]}),
        prediction: json!({"is_anomaly": false}),
        severity_score: 0.5,
        confidence_score: 0.5,
        recommended_action: "no_action".into(),
        execution_time_ms: 1,
        model_version: version.into(),
        features: json!({}),
        metadata: json!({"method": "test"}),
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
