//! How a KV v2 `data` object and a coffer value map onto each other.
//!
//! - An object written through the KV v2 API is stored as its canonical
//!   JSON (keys sorted, no spaces) and marked [`ValueFormat::Json`]; the
//!   native API reads it as that text, with `"format": "json"`.
//! - An object that is exactly `{"value": "<text>"}` is stored as the text
//!   itself, so a value written by either API reads the same through the
//!   other.
//! - A text value (written by the native API) reads through the KV v2 API
//!   as `{"value": "<text>"}`.

use coffer_crypto::record::ValueFormat;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// The key a text value goes under when read as an object.
pub const TEXT_KEY: &str = "value";

/// What to store for the object `data`.
pub fn to_stored(data: &Map<String, Value>) -> (Zeroizing<Vec<u8>>, ValueFormat) {
    if let (1, Some(Value::String(text))) = (data.len(), data.get(TEXT_KEY)) {
        return (Zeroizing::new(text.as_bytes().to_vec()), ValueFormat::Text);
    }
    // A map of JSON values always serializes.
    let text = serde_json::to_vec(data).unwrap_or_default();
    (Zeroizing::new(text), ValueFormat::Json)
}

/// The object a stored value reads as; none when a value marked as JSON
/// is not an object (storage cannot forge one: records are sealed).
pub fn to_data(value: &[u8], format: ValueFormat) -> Option<Map<String, Value>> {
    match format {
        ValueFormat::Text => {
            let text = String::from_utf8_lossy(value).into_owned();
            Some(Map::from_iter([(TEXT_KEY.to_owned(), Value::String(text))]))
        }
        ValueFormat::Json => match serde_json::from_slice(value) {
            Ok(Value::Object(data)) => Some(data),
            _ => None,
        },
    }
}

/// Applies a JSON merge patch (RFC 7386) to `target`: members of a patch
/// object replace the target's, `null` removes them, objects merge.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// The shape of `data` without its values: every leaf becomes `null`,
/// objects are followed `depth` levels down (0: all the way).
pub fn subkeys(data: &Map<String, Value>, depth: u32) -> Value {
    fn walk(data: &Map<String, Value>, level: u32, depth: u32) -> Value {
        let members = data.iter().map(|(key, value)| {
            let shape = match value {
                Value::Object(inner) if depth == 0 || level < depth => {
                    walk(inner, level + 1, depth)
                }
                _ => Value::Null,
            };
            (key.clone(), shape)
        });
        Value::Object(members.collect())
    }
    walk(data, 1, depth)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_lone_text_value_stays_text_and_anything_else_is_canonical_json() {
        let (stored, format) = to_stored(&object(json!({ "value": "hunter2" })));
        assert_eq!(
            (stored.as_slice(), format),
            (&b"hunter2"[..], ValueFormat::Text)
        );
        let (stored, format) = to_stored(&object(json!({ "b": 1, "a": { "z": [1, 2] } })));
        assert_eq!(format, ValueFormat::Json);
        assert_eq!(stored.as_slice(), br#"{"a":{"z":[1,2]},"b":1}"#);
        let (_, format) = to_stored(&object(json!({ "value": 1 })));
        assert_eq!(format, ValueFormat::Json);

        assert_eq!(
            to_data(b"hunter2", ValueFormat::Text),
            Some(object(json!({ "value": "hunter2" })))
        );
        assert_eq!(
            to_data(br#"{"a":1}"#, ValueFormat::Json),
            Some(object(json!({ "a": 1 })))
        );
        assert_eq!(to_data(b"[1]", ValueFormat::Json), None);
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        // The examples of RFC 7386, appendix A, in part.
        for (target, patch, result) in [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ] {
            let mut patched = target.clone();
            merge_patch(&mut patched, &patch);
            assert_eq!(patched, result, "{target} + {patch}");
        }
    }

    #[test]
    fn subkeys_hide_every_value_to_the_depth_asked() {
        let data = object(json!({ "a": 1, "b": { "c": "x", "d": { "e": true } } }));
        assert_eq!(
            subkeys(&data, 0),
            json!({ "a": null, "b": { "c": null, "d": { "e": null } } })
        );
        assert_eq!(subkeys(&data, 1), json!({ "a": null, "b": null }));
        assert_eq!(
            subkeys(&data, 2),
            json!({ "a": null, "b": { "c": null, "d": null } })
        );
    }
}
