//! `GET /executor/deployments/{namespace}/{name}`.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn the_read_endpoint_reports_replicas_and_revision() {
    let app = spawn_app().await;
    let url = format!(
        "{}/executor/deployments/production/api-deployment",
        app.address
    );
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .get(&url)
        .header("x-api-key", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .get(&url)
        .header("x-api-key", SERVICE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["namespace"], "production");
    assert_eq!(v["deploymentName"], "api-deployment");
    assert_eq!(v["replicas"], 3);
    assert_eq!(v["revision"], 3);
    assert_eq!(v["paused"], false);
    for key in ["readyReplicas", "updatedReplicas", "availableReplicas"] {
        assert!(v[key].is_number(), "{key}");
    }

    let res = app
        .client
        .get(format!(
            "{}/executor/deployments/production/nope",
            app.address
        ))
        .header("x-api-key", SERVICE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["message"],
        "Deployment nope not found in namespace production"
    );

    let res = app
        .client
        .get(format!(
            "{}/executor/deployments/kube-system/coredns",
            app.address
        ))
        .header("x-api-key", SERVICE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(app.rows().await.is_empty(), "reads are not audited");
}
