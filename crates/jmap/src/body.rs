//! RFC 8621 section 4.1 views of a raw message, parsed with mail-parser:
//! header fields in their parsed forms, the body structure, the text, HTML
//! and attachment part lists, and body values.

use mail_parser::{
    Address, Header, HeaderForm, HeaderName, HeaderValue, Message, MessageParser, MessagePart,
    MimeHeaders, PartType,
};
use serde_json::{Map, Value, json};

use crate::args::{Args, MethodError};
use crate::blob;

/// Body part properties returned when the client names none.
pub(crate) const DEFAULT_BODY_PROPERTIES: &[&str] = &[
    "partId",
    "blobId",
    "size",
    "name",
    "type",
    "charset",
    "disposition",
    "cid",
    "language",
    "location",
];

const BODY_PROPERTIES: &[&str] = &[
    "partId",
    "blobId",
    "size",
    "headers",
    "name",
    "type",
    "charset",
    "disposition",
    "cid",
    "language",
    "location",
    "subParts",
];

/// Deepest multipart nesting rendered in `bodyStructure`.
const MAX_DEPTH: usize = 32;

/// What to render of body parts, from the `/get` and `/parse` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyOptions {
    pub properties: Vec<String>,
    pub fetch_text: bool,
    pub fetch_html: bool,
    pub fetch_all: bool,
    /// Zero means no limit.
    pub max_bytes: usize,
}

impl BodyOptions {
    pub fn from_args(args: &mut Args) -> Result<Self, MethodError> {
        let properties = match args.strings("bodyProperties")? {
            None => DEFAULT_BODY_PROPERTIES
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            Some(list) => {
                if let Some(bad) = list.iter().find(|p| {
                    !BODY_PROPERTIES.contains(&p.as_str()) && HeaderProp::parse(p).is_none()
                }) {
                    return Err(MethodError::invalid_arguments(format!(
                        "unknown body property '{bad}'"
                    )));
                }
                list
            }
        };
        Ok(Self {
            properties,
            fetch_text: args.bool("fetchTextBodyValues")?.unwrap_or(false),
            fetch_html: args.bool("fetchHTMLBodyValues")?.unwrap_or(false),
            fetch_all: args.bool("fetchAllBodyValues")?.unwrap_or(false),
            max_bytes: args
                .uint("maxBodyValueBytes")?
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .unwrap_or(0),
        })
    }
}

/// A `header:{name}[:as{Form}][:all]` property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderProp {
    pub name: String,
    pub form: HeaderForm,
    pub all: bool,
}

impl HeaderProp {
    pub fn parse(property: &str) -> Option<Self> {
        let mut segments = property.strip_prefix("header:")?.split(':');
        let name = segments.next()?;
        HeaderName::parse(name)?;
        let mut form = HeaderForm::Raw;
        let mut all = false;
        let mut next = segments.next();
        if let Some(text) = next.and_then(|s| s.strip_prefix("as")) {
            form = match text {
                "Raw" => HeaderForm::Raw,
                "Text" => HeaderForm::Text,
                "Addresses" => HeaderForm::Addresses,
                "GroupedAddresses" => HeaderForm::GroupedAddresses,
                "MessageIds" => HeaderForm::MessageIds,
                "Date" => HeaderForm::Date,
                "URLs" => HeaderForm::URLs,
                _ => return None,
            };
            next = segments.next();
        }
        if let Some(flag) = next {
            if flag != "all" {
                return None;
            }
            all = true;
        }
        if segments.next().is_some() {
            return None;
        }
        Some(Self {
            name: name.to_owned(),
            form,
            all,
        })
    }
}

/// Parses a raw message; `None` when mail-parser sees no message at all.
pub(crate) fn parse_message(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default()
        .parse(raw)
        .filter(|m| !m.parts.is_empty())
}

/// Addresses as `EmailAddress[]` (groups flattened), or `null`.
pub(crate) fn addresses(address: Option<&Address<'_>>) -> Value {
    match address {
        None => Value::Null,
        Some(address) => Value::Array(address_list(address)),
    }
}

fn address_list(address: &Address<'_>) -> Vec<Value> {
    address
        .iter()
        .filter_map(|a| {
            a.address()
                .map(|email| json!({ "name": a.name(), "email": email }))
        })
        .collect()
}

fn grouped_addresses(address: &Address<'_>) -> Value {
    match address {
        Address::List(_) => json!([{ "name": null, "addresses": address_list(address) }]),
        Address::Group(groups) => Value::Array(
            groups
                .iter()
                .map(|g| {
                    json!({
                        "name": g.name,
                        "addresses": g.addresses.iter().filter_map(|a| {
                            a.address().map(|email| json!({ "name": a.name(), "email": email }))
                        }).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        ),
    }
}

fn raw_value(raw: &[u8], header: &Header<'_>) -> String {
    let bytes = raw
        .get(header.offset_start as usize..header.offset_end as usize)
        .unwrap_or_default();
    let text = String::from_utf8_lossy(bytes);
    text.trim_end_matches(['\r', '\n']).to_owned()
}

fn raw_name(raw: &[u8], header: &Header<'_>) -> String {
    raw.get(header.offset_field as usize..header.offset_start as usize)
        .map(|b| {
            String::from_utf8_lossy(b)
                .trim_end()
                .trim_end_matches(':')
                .trim()
                .to_owned()
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| header.name.as_str().to_owned())
}

/// All header fields of a header block as `EmailHeader[]`, raw.
pub(crate) fn headers(raw: &[u8], headers: &[Header<'_>]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|h| json!({ "name": raw_name(raw, h), "value": raw_value(raw, h) }))
            .collect(),
    )
}

fn form_value(form: HeaderForm, value: &HeaderValue<'_>) -> Value {
    match (form, value) {
        (HeaderForm::Text | HeaderForm::Raw, HeaderValue::Text(text)) => json!(text),
        (HeaderForm::Text | HeaderForm::Raw, HeaderValue::TextList(list)) => json!(list.join(", ")),
        (HeaderForm::Text | HeaderForm::Raw, _) => json!(""),
        (HeaderForm::Addresses, HeaderValue::Address(a)) => Value::Array(address_list(a)),
        (HeaderForm::Addresses, _) => json!([]),
        (HeaderForm::GroupedAddresses, HeaderValue::Address(a)) => grouped_addresses(a),
        (HeaderForm::GroupedAddresses, _) => json!([]),
        (HeaderForm::MessageIds, HeaderValue::Text(id)) => json!([id]),
        (HeaderForm::MessageIds, HeaderValue::TextList(ids)) => json!(ids),
        (HeaderForm::Date, HeaderValue::DateTime(date)) if date.is_valid() => {
            json!(date.to_rfc3339())
        }
        (HeaderForm::URLs, HeaderValue::Address(a)) => Value::Array(
            a.iter()
                .filter_map(|u| u.address().map(|s| json!(s)))
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// A `header:` property of a message's top-level header block.
pub(crate) fn header_property(message: &Message<'_>, prop: &HeaderProp) -> Value {
    let Some(name) = HeaderName::parse(prop.name.clone()) else {
        return Value::Null;
    };
    let values: Vec<Value> = if prop.form == HeaderForm::Raw {
        message
            .headers()
            .iter()
            .filter(|h| h.name == name)
            .map(|h| json!(raw_value(&message.raw_message, h)))
            .collect()
    } else {
        message
            .header_as(name, prop.form)
            .iter()
            .map(|v| form_value(prop.form, v))
            .collect()
    };
    if prop.all {
        Value::Array(values)
    } else {
        values.last().cloned().unwrap_or(Value::Null)
    }
}

/// A `header:` property of a body part: its header block is parsed on its
/// own, so the same forms apply.
fn part_header_property(message: &Message<'_>, part: &MessagePart<'_>, prop: &HeaderProp) -> Value {
    let block = message
        .raw_message
        .get(part.offset_header as usize..part.offset_body as usize)
        .unwrap_or_default();
    match parse_message(block) {
        Some(headers_only) => header_property(&headers_only, prop),
        None if prop.all => json!([]),
        None => Value::Null,
    }
}

fn content_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None => match part.body {
            PartType::Message(_) => "message/rfc822".into(),
            PartType::Multipart(_) => "multipart/mixed".into(),
            PartType::Html(_) => "text/html".into(),
            _ => "text/plain".into(),
        },
    }
}

fn language(value: &HeaderValue<'_>) -> Value {
    match value {
        HeaderValue::Text(text) => json!([text]),
        HeaderValue::TextList(list) => json!(list),
        _ => Value::Null,
    }
}

/// One `EmailBodyPart`. Parts of an `Email` get blob ids under the email's
/// blob, so they can be downloaded or parsed.
fn render_part(
    message: &Message<'_>,
    index: usize,
    blob_id: &str,
    properties: &[String],
    sub_parts: bool,
    depth: usize,
) -> Value {
    let Some(part) = message.parts.get(index) else {
        return Value::Null;
    };
    let children = part.sub_parts();
    let mut out = Map::new();
    for property in properties {
        let value = match property.as_str() {
            "partId" if children.is_some() => Value::Null,
            "partId" => json!(index.to_string()),
            "blobId" if children.is_some() => Value::Null,
            "blobId" => json!(blob::part_id(blob_id, index)),
            "size" if children.is_some() => {
                json!(part.offset_end.saturating_sub(part.offset_body))
            }
            "size" => json!(part.len()),
            "headers" => headers(&message.raw_message, &part.headers),
            "name" => json!(part.attachment_name()),
            "type" => json!(content_type(part)),
            "charset" => {
                let charset = part.content_type().and_then(|ct| ct.attribute("charset"));
                match charset {
                    Some(charset) => json!(charset.to_ascii_lowercase()),
                    None if content_type(part).starts_with("text/") => json!("us-ascii"),
                    None => Value::Null,
                }
            }
            "disposition" => json!(
                part.content_disposition()
                    .map(|d| d.ctype().to_ascii_lowercase())
            ),
            "cid" => json!(
                part.content_id()
                    .map(|id| id.trim_start_matches('<').trim_end_matches('>'))
            ),
            "language" => language(part.content_language()),
            "location" => json!(part.content_location()),
            "subParts" => continue,
            other => match HeaderProp::parse(other) {
                Some(prop) => part_header_property(message, part, &prop),
                None => continue,
            },
        };
        out.insert(property.clone(), value);
    }
    if let Some(children) = children
        && (sub_parts || properties.iter().any(|p| p == "subParts"))
    {
        let rendered = if depth >= MAX_DEPTH {
            Vec::new()
        } else {
            children
                .iter()
                .filter(|&&child| child as usize != index)
                .map(|&child| {
                    render_part(
                        message,
                        child as usize,
                        blob_id,
                        properties,
                        true,
                        depth + 1,
                    )
                })
                .collect()
        };
        out.insert("subParts".into(), Value::Array(rendered));
    }
    Value::Object(out)
}

/// `bodyStructure`: the whole MIME tree.
pub(crate) fn body_structure(message: &Message<'_>, blob_id: &str, options: &BodyOptions) -> Value {
    render_part(message, 0, blob_id, &options.properties, true, 0)
}

/// `textBody`, `htmlBody` or `attachments`: a flat list of leaf parts.
pub(crate) fn part_list(
    message: &Message<'_>,
    indices: &[u32],
    blob_id: &str,
    options: &BodyOptions,
) -> Value {
    Value::Array(
        indices
            .iter()
            .map(|&i| render_part(message, i as usize, blob_id, &options.properties, false, 0))
            .collect(),
    )
}

/// `bodyValues` for the parts the fetch flags select.
pub(crate) fn body_values(message: &Message<'_>, options: &BodyOptions) -> Value {
    let mut indices: Vec<u32> = Vec::new();
    if options.fetch_all {
        indices.extend(
            message
                .parts
                .iter()
                .enumerate()
                .filter(|(_, p)| p.is_text())
                .map(|(i, _)| i as u32),
        );
    } else {
        if options.fetch_text {
            indices.extend(&message.text_body);
        }
        if options.fetch_html {
            indices.extend(&message.html_body);
        }
    }
    let mut out = Map::new();
    for index in indices {
        let Some(part) = message.parts.get(index as usize) else {
            continue;
        };
        let Some(text) = part.text_contents() else {
            continue;
        };
        let mut value = text.to_owned();
        let truncated = options.max_bytes > 0 && value.len() > options.max_bytes;
        if truncated {
            let mut end = options.max_bytes;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            value.truncate(end);
        }
        out.insert(
            index.to_string(),
            json!({
                "value": value,
                "isEncodingProblem": part.is_encoding_problem,
                "isTruncated": truncated,
            }),
        );
    }
    Value::Object(out)
}

/// The first text body, as plain text, for snippets.
pub(crate) fn body_text(message: &Message<'_>) -> Option<String> {
    message.body_text(0).map(|t| t.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_properties() {
        type Parsed<'a> = Option<(&'a str, HeaderForm, bool)>;
        let cases: &[(&str, Parsed<'_>)] = &[
            ("header:Subject", Some(("Subject", HeaderForm::Raw, false))),
            (
                "header:subject:asText",
                Some(("subject", HeaderForm::Text, false)),
            ),
            (
                "header:From:asAddresses:all",
                Some(("From", HeaderForm::Addresses, true)),
            ),
            ("header:X-Tag:all", Some(("X-Tag", HeaderForm::Raw, true))),
            (
                "header:List-Post:asURLs",
                Some(("List-Post", HeaderForm::URLs, false)),
            ),
            ("header:Subject:asBogus", None),
            ("header:Subject:all:asText", None),
            ("header:", None),
            ("header:Bad Name", None),
            ("subject", None),
        ];
        for (input, expect) in cases {
            let got = HeaderProp::parse(input).map(|p| (p.name, p.form, p.all));
            let expect = expect.map(|(n, f, a)| (n.to_owned(), f, a));
            assert_eq!(got, expect, "{input}");
        }
    }

    #[test]
    fn header_forms_of_a_message() {
        let raw = b"From: \"Alice\" <alice@acme.test>\r\n\
To: Team: bob@acme.test, carol@acme.test;\r\n\
Subject: =?UTF-8?Q?Caf=C3=A9?= plans\r\n\
Message-ID: <m1@acme.test>\r\n\
Date: Tue, 1 Dec 2026 10:00:00 +0100\r\n\
X-Tag: one\r\n\
X-Tag:  two\r\n\
\r\n\
body\r\n";
        let message = parse_message(raw).unwrap_or_default();
        let check = |prop: &str, expect: Value| {
            let prop = HeaderProp::parse(prop).unwrap_or_else(|| HeaderProp {
                name: String::new(),
                form: HeaderForm::Raw,
                all: false,
            });
            assert_eq!(header_property(&message, &prop), expect, "{}", prop.name);
        };
        check("header:Subject", json!(" =?UTF-8?Q?Caf=C3=A9?= plans"));
        check("header:Subject:asText", json!("Café plans"));
        check("header:X-Tag:all", json!([" one", "  two"]));
        check("header:x-tag", json!("  two"));
        check("header:X-Missing", Value::Null);
        check("header:X-Missing:all", json!([]));
        check(
            "header:From:asAddresses",
            json!([{ "name": "Alice", "email": "alice@acme.test" }]),
        );
        check(
            "header:To:asGroupedAddresses",
            json!([{ "name": "Team", "addresses": [
                { "name": null, "email": "bob@acme.test" },
                { "name": null, "email": "carol@acme.test" }
            ]}]),
        );
        check("header:Message-ID:asMessageIds", json!(["m1@acme.test"]));
        check("header:Date:asDate", json!("2026-12-01T10:00:00+01:00"));
        assert_eq!(
            headers(&message.raw_message, message.headers())[0],
            json!({ "name": "From", "value": " \"Alice\" <alice@acme.test>" })
        );
    }
}
