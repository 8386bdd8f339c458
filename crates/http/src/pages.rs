//! The server-rendered sign-in and device pages: plain HTML, no scripts.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font-family:sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}}\
         label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.4rem;box-sizing:border-box}}\
         button{{margin-top:1rem;padding:.5rem 1rem}}.error{{color:#a00}}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>",
        title = escape(title),
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    // No scripts, no framing (clickjacking of the sign-in form), no plugins.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn error_line(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default()
}

/// The password step.
pub(crate) fn login(
    action: &str,
    login_id: &str,
    client_name: &str,
    error: Option<&str>,
) -> Response {
    let body = format!(
        "<p>Sign in to continue to <strong>{client}</strong>.</p>{error}\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"login_id\" value=\"{login_id}\">\
         <label for=\"email\">Email address</label><input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>",
        client = escape(client_name),
        error = error_line(error),
        action = escape(action),
        login_id = escape(login_id),
    );
    page(
        if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        "Sign in",
        &body,
    )
}

/// The TOTP step.
pub(crate) fn totp(action: &str, login_id: &str, error: Option<&str>) -> Response {
    let body = format!(
        "<p>Enter the 6-digit code from your authenticator app.</p>{error}\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"login_id\" value=\"{login_id}\">\
         <label for=\"totp\">Code</label><input id=\"totp\" name=\"totp\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{{6}}\" required autofocus>\
         <button type=\"submit\">Verify</button></form>",
        error = error_line(error),
        action = escape(action),
        login_id = escape(login_id),
    );
    page(
        if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        "Two-step verification",
        &body,
    )
}

/// The device verification page: user code, then the password step.
pub(crate) fn device(action: &str, user_code: &str, error: Option<&str>) -> Response {
    let body = format!(
        "<p>Enter the code shown on your device, then sign in to approve it.</p>{error}\
         <form method=\"post\" action=\"{action}\">\
         <label for=\"user_code\">Device code</label><input id=\"user_code\" name=\"user_code\" value=\"{user_code}\" autocomplete=\"off\" required>\
         <label for=\"email\">Email address</label><input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button> \
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
        error = error_line(error),
        action = escape(action),
        user_code = escape(user_code),
    );
    page(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        "Connect a device",
        &body,
    )
}

/// A terminal message.
pub(crate) fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(status, title, &format!("<p>{}</p>", escape(text)))
}
