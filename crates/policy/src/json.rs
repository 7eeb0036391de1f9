//! JSON equality and ordering as the port defines them: numbers compare
//! numerically (`3 == 3.0`), no coercion between types, arrays and objects compare deeply.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// Deep JSON equality with numeric comparison of numbers.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) => true,
        _ => false,
    }
}

/// Numeric order; integers compare exactly, anything involving a float compares as `f64`.
pub(crate) fn number_cmp(x: &Number, y: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (as_i128(x), as_i128(y)) {
        return Some(a.cmp(&b));
    }
    x.as_f64()?.partial_cmp(&y.as_f64()?)
}

fn as_i128(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_numerically_without_coercion() {
        assert!(json_eq(&json!(3), &json!(3.0)));
        assert!(!json_eq(&json!("3"), &json!(3)));
        assert!(!json_eq(&json!(true), &json!(1)));
        assert!(json_eq(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!json_eq(&json!(u64::MAX), &json!(-1)));
    }

    #[test]
    fn arrays_and_objects_compare_deeply() {
        assert!(json_eq(
            &json!({"a": [1, {"b": 2.0}]}),
            &json!({"a": [1.0, {"b": 2}]})
        ));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!json_eq(&json!([1, 2]), &json!([2, 1])));
    }

    #[test]
    fn mixed_integer_and_float_order_is_numeric() {
        let n = |v: Value| match v {
            Value::Number(n) => n,
            _ => Number::from(0),
        };
        assert_eq!(
            number_cmp(&n(json!(2)), &n(json!(2.5))),
            Some(Ordering::Less)
        );
        assert_eq!(
            number_cmp(&n(json!(-1)), &n(json!(u64::MAX))),
            Some(Ordering::Less)
        );
    }
}
