//! Settings live in `users.preferences`: one JSON object with the sections
//! `notifications`, `ui` and `alerts`.

use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// The stored preferences of `user_id`, or `None` when the user does not exist.
#[tracing::instrument(skip(db))]
pub async fn load(db: &PgPool, user_id: Uuid) -> Result<Option<Value>, sqlx::Error> {
    sqlx::query_scalar("SELECT preferences FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(db)
        .await
}

/// Shallow-merges each section of `sections` into the stored section of the same name (under
/// a row lock, so concurrent PATCHes do not lose each other's keys). Returns the full stored
/// preferences after the merge, or `None` when the user does not exist.
#[tracing::instrument(skip(db, sections))]
pub async fn merge_sections(
    db: &PgPool,
    user_id: Uuid,
    sections: &Map<String, Value>,
) -> Result<Option<Value>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let stored: Option<Value> =
        sqlx::query_scalar("SELECT preferences FROM users WHERE id = $1 FOR UPDATE")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    let mut prefs = match stored {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for (name, patch) in sections {
        let mut section = match prefs.remove(name) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        if let Value::Object(patch) = patch {
            for (k, v) in patch {
                section.insert(k.clone(), v.clone());
            }
        }
        prefs.insert(name.clone(), Value::Object(section));
    }
    let prefs = Value::Object(prefs);
    sqlx::query("UPDATE users SET preferences = $2, updated_at = now() WHERE id = $1")
        .bind(user_id)
        .bind(&prefs)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(prefs))
}
