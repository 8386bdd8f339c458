//! The Request object (RFC 8620 section 3.3), parsed strictly, its
//! request-level errors (section 3.6.1) and result references (section 3.7).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::args::MethodError;
use crate::{
    CAPABILITY_CORE, CAPABILITY_MAIL, CAPABILITY_SUBMISSION, CAPABILITY_VACATION, JmapConfig,
};

/// One method call: name, arguments, call id.
pub(crate) type Invocation = (String, Map<String, Value>, String);

/// A parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    pub using: Vec<String>,
    pub calls: Vec<Invocation>,
    pub created_ids: Option<HashMap<String, String>>,
}

/// A request-level error: the whole request is refused with an RFC 7807
/// problem document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestError {
    NotJson(String),
    NotRequest(String),
    UnknownCapability(String),
    Limit { limit: &'static str, detail: String },
}

impl RequestError {
    pub fn problem(&self) -> Value {
        let (kind, detail) = match self {
            RequestError::NotJson(d) => ("notJSON", d),
            RequestError::NotRequest(d) => ("notRequest", d),
            RequestError::UnknownCapability(d) => ("unknownCapability", d),
            RequestError::Limit { detail, .. } => ("limit", detail),
        };
        let mut problem = json!({
            "type": format!("urn:ietf:params:jmap:error:{kind}"),
            "status": 400,
            "detail": detail,
        });
        if let RequestError::Limit { limit, .. } = self {
            problem["limit"] = json!(limit);
        }
        problem
    }
}

fn not_request(detail: &str) -> RequestError {
    RequestError::NotRequest(detail.to_owned())
}

/// Parses and checks a request body against the configured limits.
pub(crate) fn parse(body: &[u8], config: &JmapConfig) -> Result<Request, RequestError> {
    if body.len() > config.max_size_request {
        return Err(RequestError::Limit {
            limit: "maxSizeRequest",
            detail: format!(
                "the request is {} bytes; the limit is {}",
                body.len(),
                config.max_size_request
            ),
        });
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RequestError::NotJson(format!("the request is not valid JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(not_request("the request must be a JSON object"));
    };
    let using = object
        .remove("using")
        .and_then(crate::args::strings)
        .ok_or_else(|| not_request("'using' must be an array of capability strings"))?;
    let Some(Value::Array(raw_calls)) = object.remove("methodCalls") else {
        return Err(not_request("'methodCalls' must be an array"));
    };
    let created_ids = match object.remove("createdIds") {
        None => None,
        Some(Value::Object(map)) => Some(
            map.into_iter()
                .map(|(k, v)| match v {
                    Value::String(id) => Ok((k, id)),
                    _ => Err(not_request("'createdIds' must map ids to ids")),
                })
                .collect::<Result<HashMap<_, _>, _>>()?,
        ),
        Some(_) => return Err(not_request("'createdIds' must be an object")),
    };
    if let Some(unknown) = object.keys().next() {
        return Err(RequestError::NotRequest(format!(
            "unknown request property '{unknown}'"
        )));
    }
    if let Some(unknown) = using.iter().find(|c| {
        !matches!(
            c.as_str(),
            CAPABILITY_CORE | CAPABILITY_MAIL | CAPABILITY_SUBMISSION | CAPABILITY_VACATION
        )
    }) {
        return Err(RequestError::UnknownCapability(format!(
            "the server does not support '{unknown}'"
        )));
    }
    if raw_calls.len() > config.max_calls_in_request {
        return Err(RequestError::Limit {
            limit: "maxCallsInRequest",
            detail: format!(
                "{} method calls; the limit is {}",
                raw_calls.len(),
                config.max_calls_in_request
            ),
        });
    }
    let calls = raw_calls
        .into_iter()
        .map(|call| match call {
            Value::Array(parts) => match <[Value; 3]>::try_from(parts) {
                Ok([Value::String(name), Value::Object(args), Value::String(id)]) => {
                    Ok((name, args, id))
                }
                _ => Err(not_request(
                    "each method call is [name, arguments object, call id]",
                )),
            },
            _ => Err(not_request("each method call must be an array")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Request {
        using,
        calls,
        created_ids,
    })
}

fn invalid_reference(detail: impl Into<String>) -> MethodError {
    MethodError::new("invalidResultReference", detail)
}

/// Replaces every `#name` argument by the value its result reference
/// points at in an earlier response of the same request.
pub(crate) fn resolve_references(
    args: Map<String, Value>,
    responses: &[Invocation],
) -> Result<Map<String, Value>, MethodError> {
    if !args.keys().any(|k| k.starts_with('#')) {
        return Ok(args);
    }
    let mut out = Map::new();
    for (key, value) in &args {
        let Some(name) = key.strip_prefix('#') else {
            out.insert(key.clone(), value.clone());
            continue;
        };
        if args.contains_key(name) {
            return Err(MethodError::invalid_arguments(format!(
                "both '{name}' and '#{name}' are present"
            )));
        }
        let reference = value
            .as_object()
            .ok_or_else(|| invalid_reference(format!("'#{name}' is not a ResultReference")))?;
        let field = |f: &str| {
            reference.get(f).and_then(Value::as_str).ok_or_else(|| {
                invalid_reference(format!(
                    "'#{name}' needs string '{f}' (resultOf, name, path)"
                ))
            })
        };
        let (result_of, method, path) = (field("resultOf")?, field("name")?, field("path")?);
        if reference.len() != 3 {
            return Err(invalid_reference(format!(
                "'#{name}' has properties beyond resultOf, name and path"
            )));
        }
        let (response_name, response, _) = responses
            .iter()
            .find(|(_, _, id)| id == result_of)
            .ok_or_else(|| invalid_reference(format!("no earlier call with id '{result_of}'")))?;
        if response_name != method {
            return Err(invalid_reference(format!(
                "call '{result_of}' answered '{response_name}', not '{method}'"
            )));
        }
        let resolved = evaluate_pointer(&Value::Object(response.clone()), path)
            .ok_or_else(|| invalid_reference(format!("path '{path}' does not resolve")))?;
        out.insert(name.to_owned(), resolved);
    }
    Ok(out)
}

/// Evaluates a JSON Pointer (RFC 6901) extended with `*` over arrays, whose
/// per-item array results are flattened (RFC 8620 section 3.7).
pub(crate) fn evaluate_pointer(document: &Value, path: &str) -> Option<Value> {
    if path.is_empty() {
        return Some(document.clone());
    }
    let tokens: Vec<String> = path
        .strip_prefix('/')?
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    walk(document, &tokens)
}

fn walk(value: &Value, tokens: &[String]) -> Option<Value> {
    let Some((token, rest)) = tokens.split_first() else {
        return Some(value.clone());
    };
    match value {
        Value::Array(items) if token == "*" => {
            let mut out = Vec::new();
            for item in items {
                match walk(item, rest)? {
                    Value::Array(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            Some(Value::Array(out))
        }
        Value::Array(items) => {
            if token.len() > 1 && token.starts_with('0') {
                return None;
            }
            let index: usize = token.parse().ok()?;
            walk(items.get(index)?, rest)
        }
        Value::Object(map) => walk(map.get(token.as_str())?, rest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_with_wildcards() {
        let doc = json!({
            "ids": ["a", "b"],
            "list": [
                {"id": "t1", "emailIds": ["e1", "e2"]},
                {"id": "t2", "emailIds": ["e3"]}
            ],
            "a/b": {"~k": 1}
        });
        let cases: &[(&str, Option<Value>)] = &[
            ("/ids", Some(json!(["a", "b"]))),
            ("/ids/1", Some(json!("b"))),
            ("/ids/01", None),
            ("/ids/2", None),
            ("/list/*/id", Some(json!(["t1", "t2"]))),
            ("/list/*/emailIds", Some(json!(["e1", "e2", "e3"]))),
            ("/list/*/missing", None),
            ("/a~1b/~0k", Some(json!(1))),
            ("", Some(doc.clone())),
            ("ids", None),
            ("/ids/*/x", None),
        ];
        for (path, expect) in cases {
            assert_eq!(evaluate_pointer(&doc, path), *expect, "{path}");
        }
    }
}
