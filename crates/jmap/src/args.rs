//! Method arguments read strictly (an unknown or mistyped argument is
//! `invalidArguments`), and the method-level and per-object errors of
//! RFC 8620 sections 3.6.2 and 5.3.

use serde_json::{Map, Value, json};

/// A method-level error: the call's whole response is `["error", ...]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MethodError {
    pub kind: &'static str,
    pub description: Option<String>,
}

impl MethodError {
    pub fn new(kind: &'static str, description: impl Into<String>) -> Self {
        Self {
            kind,
            description: Some(description.into()),
        }
    }

    pub fn invalid_arguments(description: impl Into<String>) -> Self {
        Self::new("invalidArguments", description)
    }

    pub fn account_not_found() -> Self {
        Self {
            kind: "accountNotFound",
            description: None,
        }
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            "requestTooLarge",
            format!("more than {limit} objects in one call"),
        )
    }

    pub fn cannot_calculate_changes() -> Self {
        Self::new(
            "cannotCalculateChanges",
            "the state is unknown to this server; resynchronise",
        )
    }

    pub fn state_mismatch() -> Self {
        Self::new(
            "stateMismatch",
            "ifInState does not match the current state",
        )
    }

    /// The arguments of the `["error", {...}, callId]` response.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("type".into(), self.kind.into());
        if let Some(description) = &self.description {
            body.insert("description".into(), description.clone().into());
        }
        body
    }
}

impl From<stormproof_store::Error> for MethodError {
    fn from(error: stormproof_store::Error) -> Self {
        tracing::warn!(message = "store call failed during a JMAP method", %error);
        Self::new("serverFail", "the mail store failed; try again later")
    }
}

/// A per-object error in a `/set`, `/import` or `/copy` response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SetError {
    pub kind: &'static str,
    pub description: String,
    pub properties: Vec<String>,
    pub not_found: Vec<String>,
    /// Further members of the error object, e.g. `invalidRecipients`.
    pub extra: Map<String, Value>,
}

impl SetError {
    pub fn new(kind: &'static str, description: impl Into<String>) -> Self {
        Self {
            kind,
            description: description.into(),
            properties: Vec::new(),
            not_found: Vec::new(),
            extra: Map::new(),
        }
    }

    pub fn not_found() -> Self {
        Self::new("notFound", "no such object in this account")
    }

    pub fn invalid(properties: &[&str], description: impl Into<String>) -> Self {
        Self {
            properties: properties.iter().map(|p| (*p).to_owned()).collect(),
            ..Self::new("invalidProperties", description)
        }
    }

    pub fn to_json(&self) -> Value {
        let mut body = json!({ "type": self.kind, "description": self.description });
        if !self.properties.is_empty() {
            body["properties"] = json!(self.properties);
        }
        if !self.not_found.is_empty() {
            body["notFound"] = json!(self.not_found);
        }
        for (name, value) in &self.extra {
            body[name] = value.clone();
        }
        body
    }
}

impl From<stormproof_store::Error> for SetError {
    fn from(error: stormproof_store::Error) -> Self {
        use stormproof_store::ErrorKind;
        match error.kind {
            ErrorKind::NotFound(_) => Self::not_found(),
            ErrorKind::QuotaExceeded { .. } => {
                Self::new("overQuota", "the account's quota would be exceeded")
            }
            ErrorKind::Invalid(reason) => Self::new("invalidProperties", reason),
            ErrorKind::Conflict(reason) => Self::new("invalidProperties", reason),
            _ => {
                tracing::warn!(message = "store call failed during a JMAP set", %error);
                Self::new("serverFail", "the mail store failed; try again later")
            }
        }
    }
}

/// Renders a map of per-object outcomes, or `null` when empty (RFC 8620
/// section 5.3: "null if none").
pub(crate) fn map_or_null(map: Map<String, Value>) -> Value {
    if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    }
}

/// A method's arguments, consumed one by one; what is left at the end was
/// not understood.
#[derive(Debug)]
pub(crate) struct Args(Map<String, Value>);

fn type_error(name: &str, what: &str) -> MethodError {
    MethodError::invalid_arguments(format!("'{name}' must be {what}"))
}

impl Args {
    pub fn new(map: Map<String, Value>) -> Self {
        Self(map)
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    /// Takes an argument; absent and `null` are both `None`.
    pub fn value(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name).filter(|v| !v.is_null())
    }

    pub fn string(&mut self, name: &str) -> Result<Option<String>, MethodError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(type_error(name, "a string")),
        }
    }

    pub fn required_string(&mut self, name: &str) -> Result<String, MethodError> {
        self.string(name)?
            .ok_or_else(|| MethodError::invalid_arguments(format!("'{name}' is required")))
    }

    pub fn strings(&mut self, name: &str) -> Result<Option<Vec<String>>, MethodError> {
        match self.value(name) {
            None => Ok(None),
            Some(value) => strings(value)
                .map(Some)
                .ok_or_else(|| type_error(name, "an array of strings")),
        }
    }

    pub fn bool(&mut self, name: &str) -> Result<Option<bool>, MethodError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(type_error(name, "a boolean")),
        }
    }

    pub fn int(&mut self, name: &str) -> Result<Option<i64>, MethodError> {
        match self.value(name) {
            None => Ok(None),
            Some(value) => value
                .as_i64()
                .filter(|n| n.unsigned_abs() < 1 << 53)
                .map(Some)
                .ok_or_else(|| type_error(name, "an integer")),
        }
    }

    pub fn uint(&mut self, name: &str) -> Result<Option<u64>, MethodError> {
        match self.int(name)? {
            Some(n) if n < 0 => Err(type_error(name, "an unsigned integer")),
            other => Ok(other.map(|n| n as u64)),
        }
    }

    pub fn object(&mut self, name: &str) -> Result<Option<Map<String, Value>>, MethodError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(type_error(name, "an object")),
        }
    }

    /// Fails on any argument not taken: RFC 8620 section 3.6.2 makes an
    /// unknown argument `invalidArguments`, not something to ignore.
    pub fn finish(self) -> Result<(), MethodError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(name) => Err(MethodError::invalid_arguments(format!(
                "unknown argument '{name}'"
            ))),
        }
    }
}

/// The `properties` argument checked against what the type has; `id` is
/// always returned (RFC 8620 section 5.1).
pub(crate) fn properties(
    requested: Option<Vec<String>>,
    default: &[&str],
    valid: impl Fn(&str) -> bool,
) -> Result<Vec<String>, MethodError> {
    let mut list = match requested {
        None => default.iter().map(|p| (*p).to_owned()).collect(),
        Some(list) => {
            if let Some(bad) = list.iter().find(|p| !valid(p)) {
                return Err(MethodError::invalid_arguments(format!(
                    "unknown property '{bad}'"
                )));
            }
            list
        }
    };
    if !list.iter().any(|p| p == "id") {
        list.insert(0, "id".into());
    }
    Ok(list)
}

/// An array of strings, or `None` for anything else.
pub(crate) fn strings(value: Value) -> Option<Vec<String>> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(value: Value) -> Args {
        match value {
            Value::Object(map) => Args::new(map),
            _ => Args::new(Map::new()),
        }
    }

    #[test]
    fn arguments_are_typed_and_unknown_ones_refused() {
        let mut a = args(json!({"s": "x", "n": -3, "u": 4, "b": true, "l": ["a"], "z": null}));
        assert_eq!(a.string("s"), Ok(Some("x".into())));
        assert_eq!(a.int("n"), Ok(Some(-3)));
        assert_eq!(a.uint("u"), Ok(Some(4)));
        assert_eq!(a.bool("b"), Ok(Some(true)));
        assert_eq!(a.strings("l"), Ok(Some(vec!["a".into()])));
        assert_eq!(a.string("z"), Ok(None), "null is absent");
        assert_eq!(a.finish(), Ok(()));

        let cases: &[(Value, &str)] = &[
            (json!({"k": 1}), "string"),
            (json!({"k": -1}), "uint"),
            (json!({"k": 1.5}), "int"),
            (json!({"k": 9_007_199_254_740_993_i64}), "int"),
            (json!({"k": [1]}), "strings"),
            (json!({"k": "true"}), "bool"),
        ];
        for (input, reader) in cases {
            let mut a = args(input.clone());
            let kind = match *reader {
                "string" => a.string("k").err(),
                "uint" => a.uint("k").err(),
                "int" => a.int("k").err(),
                "strings" => a.strings("k").err(),
                _ => a.bool("k").err(),
            }
            .map(|e| e.kind);
            assert_eq!(kind, Some("invalidArguments"), "{input} as {reader}");
        }
        let leftover = args(json!({"surprise": 1})).finish();
        assert_eq!(leftover.map_err(|e| e.kind), Err("invalidArguments"));
    }
}
