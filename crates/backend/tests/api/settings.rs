//! `GET/PATCH /settings`: reading and changing settings, plus nested validation and persistence.

use reqwest::Method;
use serde_json::{Value, json};

use crate::auth_support::spawn_with_admin;

const PW: &str = "Password123!";

#[tokio::test]
async fn settings_defaults_merge_validation_and_audit() {
    let app = spawn_with_admin(&[]).await;
    let u1 = app.signup("u1@example.com", PW).await;

    let res = app.get_as("/api/v1/settings?_t=1", &u1.access).await;
    assert_eq!(res.status(), 200);
    let defaults: Value = res.json().await.unwrap();
    assert_eq!(
        defaults,
        json!({
            "notifications": {"email": true, "push": true, "websocket": true,
                              "alertSeverities": ["critical", "high"], "alertFrequency": "realtime"},
            "ui": {"theme": "system", "dashboardLayout": "default", "itemsPerPage": 20},
            "alerts": {"defaultSeverityFilter": [], "autoAcknowledge": false, "soundEnabled": true}
        })
    );

    let res = app
        .send(
            Method::PATCH,
            "/api/v1/settings",
            Some(&u1.access),
            Some(json!({"ui": {"theme": "dark"}})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let after: Value = res.json().await.unwrap();
    assert_eq!(after["ui"]["theme"], "dark");
    assert_eq!(after["ui"]["itemsPerPage"], 20);
    assert_eq!(after["notifications"], defaults["notifications"]);
    assert_eq!(after["alerts"], defaults["alerts"]);

    for bad in [
        json!({"ui": {"theme": "neon"}}),
        json!({"ui": {"colour": "red"}}),
        json!({"extra": {}}),
        json!({"ui": {"itemsPerPage": 0}}),
        json!({"ui": {"itemsPerPage": 101}}),
        json!({"ui": {"itemsPerPage": "50"}}),
        json!({"notifications": {"email": "false"}}),
        json!({"notifications": {"alertSeverities": ["urgent"]}}),
        json!({"notifications": {"alertFrequency": "weekly"}}),
        json!({"alerts": {"defaultSeverityFilter": ["nope"]}}),
        json!({"alerts": {"soundEnabled": 1}}),
    ] {
        let res = app
            .send(
                Method::PATCH,
                "/api/v1/settings",
                Some(&u1.access),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(res.status(), 400, "{bad}");
    }

    let events = app.audit_events().await;
    let update = events
        .iter()
        .rev()
        .find(|(t, _)| t == "user_update")
        .expect("a user_update event");
    assert_eq!(update.1["preferences"]["ui"]["theme"], "dark");
}

#[tokio::test]
async fn settings_patch_saves_every_nested_field_and_keeps_the_rest() {
    let app = spawn_with_admin(&[]).await;
    let u1 = app.signup("u1@example.com", PW).await;
    let u2 = app.signup("u2@example.com", PW).await;
    let full = json!({
        "notifications": {"email": false, "push": false, "websocket": false,
                          "alertSeverities": ["info", "low"], "alertFrequency": "daily"},
        "ui": {"theme": "light", "dashboardLayout": "compact", "itemsPerPage": 50},
        "alerts": {"defaultSeverityFilter": ["critical"], "autoAcknowledge": true, "soundEnabled": false}
    });
    let res = app
        .send(
            Method::PATCH,
            "/api/v1/settings",
            Some(&u1.access),
            Some(full.clone()),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), full);

    // A second PATCH of one key keeps the others of its section.
    app.send(
        Method::PATCH,
        "/api/v1/settings",
        Some(&u1.access),
        Some(json!({"ui": {"itemsPerPage": 10}})),
    )
    .await;
    let now: Value = app
        .get_as("/api/v1/settings", &u1.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        now["ui"],
        json!({"theme": "light", "dashboardLayout": "compact", "itemsPerPage": 10})
    );
    assert_eq!(now["notifications"], full["notifications"]);

    // Stored in users.preferences, visible on the profile; other users are untouched.
    let me: Value = app
        .get_as("/api/v1/users/me", &u1.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["preferences"]["ui"]["itemsPerPage"], 10);
    let other: Value = app
        .get_as("/api/v1/settings", &u2.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other["ui"]["theme"], "system");

    let res = app.get("/api/v1/settings").await;
    assert_eq!(res.status(), 401);
}
