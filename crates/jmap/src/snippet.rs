//! `SearchSnippet/get` (RFC 8621 section 5): the subject and a fragment of
//! the body with the searched words wrapped in `<mark>`, HTML-escaped.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::args::{Args, MethodError};
use crate::query::{EmailCond, parse_email_filter};
use crate::{Access, Ctx, body};

/// Characters of body text in a preview snippet (RFC 8621: at most 255).
pub(crate) const SNIPPET_CHARS: usize = 255;
/// Characters of context kept before the first match.
const LEAD_CHARS: usize = 40;

fn escape_into(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
}

/// The searchable words of a query, lowercased: runs of letters and digits.
pub(crate) fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// Byte ranges of the words in `text`.
fn words(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, ch) in text.char_indices() {
        match (ch.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

/// `text` HTML-escaped with every word in `terms` marked, or `None` when no
/// word matched.
pub(crate) fn highlight(text: &str, terms: &HashSet<String>) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 16);
    let mut matched = false;
    let mut last = 0;
    for (start, end) in words(text) {
        let word = &text[start..end];
        if terms.contains(&word.to_lowercase()) {
            escape_into(&mut out, &text[last..start]);
            out.push_str("<mark>");
            escape_into(&mut out, word);
            out.push_str("</mark>");
            last = end;
            matched = true;
        }
    }
    escape_into(&mut out, &text[last..]);
    matched.then_some(out)
}

/// A fragment of `body` around the first matching word, highlighted.
pub(crate) fn preview(body: &str, terms: &HashSet<String>) -> Option<String> {
    let text = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let (first, _) = words(&text)
        .into_iter()
        .find(|(s, e)| terms.contains(&text[*s..*e].to_lowercase()))?;
    let before: Vec<(usize, char)> = text[..first].char_indices().collect();
    let mut start = before
        .len()
        .checked_sub(LEAD_CHARS)
        .map_or(0, |i| before[i].0);
    if start > 0 {
        // Begin at a word, not inside one.
        start = text[start..first]
            .find(' ')
            .map_or(first, |space| start + space + 1);
    }
    let fragment: String = text[start..].chars().take(SNIPPET_CHARS).collect();
    highlight(&fragment, terms)
}

/// `SearchSnippet/get`.
pub(crate) fn get(ctx: &mut Ctx<'_>, mut args: Args) -> Result<Value, MethodError> {
    let account = ctx.account(&args.required_string("accountId")?)?;
    let filter = args
        .value("filter")
        .map(|f| parse_email_filter(ctx, f))
        .transpose()?;
    let ids = args
        .strings("emailIds")?
        .ok_or_else(|| MethodError::invalid_arguments("'emailIds' is required"))?;
    args.finish()?;
    let max = ctx.config().max_objects_in_get;
    if ids.len() > max {
        return Err(MethodError::too_large(max));
    }
    let (mut subject_terms, mut body_terms) = (HashSet::new(), HashSet::new());
    if let Some(filter) = &filter {
        let mut positive = Vec::new();
        filter.positive(&mut positive);
        for cond in positive.into_iter().flatten() {
            match cond {
                EmailCond::Text(t) => {
                    subject_terms.extend(terms(t));
                    body_terms.extend(terms(t));
                }
                EmailCond::Subject(t) => subject_terms.extend(terms(t)),
                EmailCond::Body(t) => body_terms.extend(terms(t)),
                _ => {}
            }
        }
    }
    let resolved: Vec<String> = ids.iter().filter_map(|id| ctx.resolve_id(id)).collect();
    let records = ctx
        .store()
        .emails(ctx.tenant(), &account.account_id, &resolved)?;
    let found: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let not_found: Vec<&String> = ids
        .iter()
        .filter(|id| {
            ctx.resolve_id(id)
                .is_none_or(|r| !found.contains(r.as_str()))
        })
        .collect();
    let mut list = Vec::with_capacity(records.len());
    for record in &records {
        let subject = record
            .subject
            .as_deref()
            .and_then(|s| highlight(s, &subject_terms));
        let preview = if body_terms.is_empty() {
            None
        } else {
            let raw = ctx.delivery().blobs().get(&record.blob_id)?;
            body::parse_message(&raw)
                .and_then(|m| body::body_text(&m))
                .and_then(|text| preview(&text, &body_terms))
        };
        list.push(json!({ "emailId": record.id, "subject": subject, "preview": preview }));
    }
    let access = Access::new("SearchSnippet/get", &account.account_id, true).with_emails(&records);
    ctx.record(access);
    Ok(json!({
        "accountId": account.account_id,
        "list": list,
        "notFound": not_found,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(words: &[&str]) -> HashSet<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn highlighting_marks_whole_words_and_escapes_the_rest() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            (
                "Quarterly numbers",
                &["quarterly"],
                Some("<mark>Quarterly</mark> numbers"),
            ),
            (
                "a <b> & \"c\"",
                &["b"],
                Some("a &lt;<mark>b</mark>&gt; &amp; &quot;c&quot;"),
            ),
            (
                "numbers numbered",
                &["numbers"],
                Some("<mark>numbers</mark> numbered"),
            ),
            ("Café au lait", &["café"], Some("<mark>Café</mark> au lait")),
            ("no match <here>", &["zebra"], None),
            ("", &["x"], None),
        ];
        for (text, words, expect) in cases {
            assert_eq!(highlight(text, &set(words)).as_deref(), *expect, "{text}");
        }
        let terms: Vec<String> = terms("\"Launch\" codes!").collect();
        assert_eq!(terms, vec!["launch", "codes"]);
    }

    #[test]
    fn previews_start_near_the_first_match() {
        let body = format!("{} the tangerine protocol <now>", "filler ".repeat(30));
        let snippet = preview(&body, &set(&["tangerine"])).unwrap_or_default();
        assert!(snippet.starts_with("filler "), "{snippet}");
        assert!(snippet.contains("the <mark>tangerine</mark> protocol &lt;now&gt;"));
        assert!(snippet.len() < body.len());
        assert_eq!(
            preview("short body", &set(&["short"])).as_deref(),
            Some("<mark>short</mark> body")
        );
        assert_eq!(preview("nothing here", &set(&["absent"])), None);
    }
}
