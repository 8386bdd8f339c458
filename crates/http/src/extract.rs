//! The one extractor that turns an HTTP request into a verified principal.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stormproof_identity::RequestInfo;
use stormproof_verifier::{AuthScheme, Principal, RequestContext, VerifyMode};

use crate::AppState;

/// A request whose bearer or DPoP token the verifier accepted.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

/// The refusal every failed verification gets: 401 with the RFC 6750
/// challenge and nothing that tells an attacker which check failed. The
/// reason goes to the security event log only.
#[derive(Debug)]
pub struct Unauthorized {
    dpop: bool,
}

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let challenge = if self.dpop {
            r#"DPoP error="invalid_token", algs="EdDSA ES256""#
        } else {
            r#"Bearer error="invalid_token""#
        };
        let mut response = (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": "invalid_token"})),
        )
            .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        response
    }
}

/// Where a request came from, as the ledger and security events record it.
#[derive(Debug, Clone)]
pub struct ClientInfo(pub RequestInfo);

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientInfo(request_info(parts)))
    }
}

pub(crate) fn request_info(parts: &Parts) -> RequestInfo {
    // The socket's peer address; forwarded-for headers are not trusted,
    // since anyone can send them.
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let user_agent = header_str(&parts.headers, header::USER_AGENT.as_str())
        .map(|ua| ua.chars().take(512).collect());
    RequestInfo { ip, user_agent }
}

/// A header's value, if it appears exactly once and is visible ASCII.
pub(crate) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// Splits `Authorization: <scheme> <token>`.
fn authorization(headers: &HeaderMap) -> Option<(AuthScheme, &str)> {
    let value = header_str(headers, header::AUTHORIZATION.as_str())?;
    let (scheme, token) = value.split_once(' ')?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        AuthScheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        AuthScheme::Dpop
    } else {
        return None;
    };
    Some((scheme, token.trim()))
}

/// The URL the client addressed, as DPoP's `htu` must name it: the public
/// base URL plus the path, without query.
pub(crate) fn public_request_url(state: &AppState, parts: &Parts) -> String {
    let path = parts
        .extensions
        .get::<OriginalUri>()
        .map(|u| u.0.path().to_owned())
        .unwrap_or_else(|| parts.uri.path().to_owned());
    format!("{}{}", state.public_url(), path)
}

impl<S> FromRequestParts<S> for Authenticated
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Unauthorized;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let Some((scheme, token)) = authorization(&parts.headers) else {
            return Err(Unauthorized { dpop: false });
        };
        let info = request_info(parts);
        let url = public_request_url(&state, parts);
        let context = RequestContext {
            method: parts.method.as_str(),
            url: &url,
            dpop: header_str(&parts.headers, "dpop"),
            scheme,
            ip: info.ip.as_deref(),
            user_agent: info.user_agent.as_deref(),
            mode: VerifyMode::Resource,
        };
        state
            .verifier
            .verify(token, &context)
            .map(Authenticated)
            .map_err(|_| Unauthorized {
                dpop: scheme == AuthScheme::Dpop,
            })
    }
}
