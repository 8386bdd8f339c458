//! A JSON reader that refuses what serde_json tolerates: duplicate members,
//! deep nesting and oversized objects.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::{MAX_DEPTH, MAX_MEMBERS};

/// Why a token's wire form was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed JWS: {kind}")]
pub struct Error {
    /// What was wrong.
    pub kind: ErrorKind,
}

/// What was wrong with a token's wire form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Longer than [`crate::MAX_TOKEN_LEN`] or the header limit.
    #[error("too long")]
    TooLong,
    /// Not exactly three dot-separated parts.
    #[error("not three parts")]
    NotThreeParts,
    /// A part is empty.
    #[error("empty part")]
    EmptyPart,
    /// A part is not canonical unpadded base64url.
    #[error("not canonical base64url")]
    Base64,
    /// Not valid JSON, or trailing bytes after it.
    #[error("not valid JSON")]
    Json,
    /// The JSON is valid but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A member name appears twice in one object.
    #[error("duplicate member")]
    DuplicateMember,
    /// Nested deeper than [`crate::MAX_DEPTH`].
    #[error("nested too deep")]
    TooDeep,
    /// An object has more than [`crate::MAX_MEMBERS`] members.
    #[error("too many members")]
    TooManyMembers,
    /// A required member is absent.
    #[error("missing member {0}")]
    MissingMember(&'static str),
    /// A registered member has the wrong JSON type.
    #[error("member {0} has the wrong type")]
    WrongType(&'static str),
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self { kind }
    }
}

/// Parses `json` as one object, refusing duplicates at any depth.
pub(crate) fn object(json: &[u8]) -> Result<Map<String, Value>, Error> {
    let failure = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(json);
    let value = StrictSeed {
        depth: 0,
        failure: &failure,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v))
    .map_err(|_| failure.take().unwrap_or(ErrorKind::Json))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ErrorKind::NotAnObject.into()),
    }
}

pub(crate) fn string(value: Value, name: &'static str) -> Result<String, Error> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(ErrorKind::WrongType(name).into()),
    }
}

pub(crate) fn integer(value: Value, name: &'static str) -> Result<i64, Error> {
    value.as_i64().ok_or(ErrorKind::WrongType(name).into())
}

pub(crate) fn string_array(value: Value, name: &'static str) -> Result<Vec<String>, Error> {
    let Value::Array(items) = value else {
        return Err(ErrorKind::WrongType(name).into());
    };
    items.into_iter().map(|item| string(item, name)).collect()
}

pub(crate) fn into_object(value: Value, name: &'static str) -> Result<Map<String, Value>, Error> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ErrorKind::WrongType(name).into()),
    }
}

pub(crate) struct StrictSeed<'f> {
    pub(crate) depth: usize,
    pub(crate) failure: &'f Cell<Option<ErrorKind>>,
}

impl StrictSeed<'_> {
    fn fail<E: de::Error>(&self, kind: ErrorKind) -> E {
        self.failure.set(Some(kind.clone()));
        E::custom(kind)
    }
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(self.fail(ErrorKind::TooDeep));
        }
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed {
            depth: self.depth + 1,
            failure: self.failure,
        })? {
            if items.len() >= MAX_MEMBERS {
                return Err(self.fail(ErrorKind::TooManyMembers));
            }
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(self.fail(ErrorKind::TooDeep));
        }
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(StrictSeed {
                depth: self.depth + 1,
                failure: self.failure,
            })?;
            if map.len() >= MAX_MEMBERS {
                return Err(self.fail(ErrorKind::TooManyMembers));
            }
            if map.insert(key, value).is_some() {
                return Err(self.fail(ErrorKind::DuplicateMember));
            }
        }
        Ok(Value::Object(map))
    }
}
