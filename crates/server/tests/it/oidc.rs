//! OpenID Connect flows driven by the openidconnect crate.
//!
//! Each test starts the real server, registers clients with the admin
//! command line, and plays the relying party with the openidconnect crate;
//! the browser's part (sign-in forms) is plain HTTP with redirects disabled.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreDeviceAuthorizationResponse, CoreIdTokenClaims,
    CoreIdTokenVerifier, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken,
    CoreTokenResponse, CoreTokenType, CoreUserInfoClaims,
};
use openidconnect::url::Url;
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    DeviceAuthorizationUrl, EndpointSet, ErrorResponseType, HttpRequest, IntrospectionUrl,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, RevocationUrl, Scope, StandardErrorResponse, SyncHttpClient,
    TokenIntrospectionResponse, TokenResponse,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::testkit::{PASSWORD, Server, claims};

const REDIRECT_URI: &str = "http://127.0.0.1:1/cb";
const ALICE: &str = "alice@acme.test";

type HttpClient = openidconnect::reqwest::blocking::Client;

/// A relying party with every endpoint of the provider configured.
type RelyingParty =
    CoreClient<EndpointSet, EndpointSet, EndpointSet, EndpointSet, EndpointSet, EndpointSet>;

// ---------------------------------------------------------------------------
// Clients and the relying party
// ---------------------------------------------------------------------------

fn acme_issuer(server: &Server) -> String {
    format!("{}/t/acme", server.url)
}

/// The relying party's HTTP client: never follows redirects.
fn http_client() -> HttpClient {
    openidconnect::reqwest::blocking::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

fn last_line(output: &str) -> String {
    output
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .expect("command output")
        .trim()
        .to_owned()
}

/// Registers a public client in acme; returns its client_id.
fn public_client(server: &Server, name: &str) -> String {
    let output = server.cli_ok(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        name,
        "--redirect-uri",
        REDIRECT_URI,
    ]);
    last_line(&output)
}

/// Registers a confidential client in acme; returns its client_id and secret.
fn confidential_client(server: &Server, name: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        name,
        "--redirect-uri",
        REDIRECT_URI,
        "--confidential",
    ];
    args.extend_from_slice(extra);
    let output = server.cli_ok(&args);
    let secret = output
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .expect("client_secret line")
        .trim()
        .to_owned();
    (last_line(&output), secret)
}

fn discover(server: &Server, http: &HttpClient) -> CoreProviderMetadata {
    let issuer = IssuerUrl::new(acme_issuer(server)).expect("issuer URL");
    CoreProviderMetadata::discover(&issuer, http).expect("discovery")
}

/// Discovers acme's provider and configures a relying party for a client.
fn relying_party(
    server: &Server,
    http: &HttpClient,
    client_id: &str,
    secret: Option<&str>,
) -> RelyingParty {
    let metadata = discover(server, http);
    // The crate's core metadata has no fields for the device, introspection
    // and revocation endpoints: read them from the document itself.
    let raw: Value = server
        .http
        .get(format!(
            "{}/.well-known/openid-configuration",
            acme_issuer(server)
        ))
        .send()
        .expect("discovery")
        .json()
        .expect("discovery JSON");
    let endpoint = |name: &str| {
        raw[name]
            .as_str()
            .unwrap_or_else(|| panic!("discovery lacks {name}: {raw}"))
            .to_owned()
    };
    let token = metadata.token_endpoint().cloned().expect("token endpoint");
    let userinfo = metadata
        .userinfo_endpoint()
        .cloned()
        .expect("userinfo endpoint");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.to_owned()),
        secret.map(|s| ClientSecret::new(s.to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.to_owned()).expect("redirect URI"))
    .set_token_uri(token)
    .set_user_info_url(userinfo)
    .set_device_authorization_url(
        DeviceAuthorizationUrl::new(endpoint("device_authorization_endpoint")).expect("URL"),
    )
    .set_introspection_url(IntrospectionUrl::new(endpoint("introspection_endpoint")).expect("URL"))
    .set_revocation_url(RevocationUrl::new(endpoint("revocation_endpoint")).expect("URL"))
}

/// The ID token verifier, allowing the EdDSA signatures Stormproof makes.
fn id_token_verifier(rp: &RelyingParty) -> CoreIdTokenVerifier<'_> {
    rp.id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EdDsa])
}

/// The error code of an OAuth error response; panics on anything else.
fn error_code<T, RE, E>(
    result: Result<T, RequestTokenError<RE, StandardErrorResponse<E>>>,
) -> String
where
    RE: std::error::Error + 'static,
    E: ErrorResponseType + AsRef<str> + std::fmt::Display + 'static,
{
    match result {
        Err(RequestTokenError::ServerResponse(response)) => response.error().as_ref().to_owned(),
        Err(other) => panic!("expected an OAuth error response, got {other}"),
        Ok(_) => panic!("expected an OAuth error response, got success"),
    }
}

/// Whether `/api/whoami` refuses the token within a second.
fn refused_within_a_second(server: &Server, token: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if server.whoami(token).0 == 401 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

// ---------------------------------------------------------------------------
// The browser's part: sign-in pages
// ---------------------------------------------------------------------------

/// What the server answered to a browser request.
struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

fn page(response: reqwest::blocking::Response) -> Page {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().expect("ASCII Location").to_owned());
    let body = response.text().expect("body");
    Page {
        status,
        location,
        body,
    }
}

/// A sign-in form: where it posts, and the hidden id of the sign-in.
struct Form {
    action: String,
    login_id: String,
}

/// The value of the first attribute written as `prefix"value"` in the page.
fn attribute(html: &str, prefix: &str) -> String {
    let start = html
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} in {html}"))
        + prefix.len();
    let length = html[start..].find('"').expect("closing quote");
    html[start..start + length].replace("&amp;", "&")
}

fn form(html: &str) -> Form {
    Form {
        action: attribute(html, "action=\""),
        login_id: attribute(html, "name=\"login_id\" value=\""),
    }
}

fn post_form(server: &Server, action: &str, fields: &[(&str, &str)]) -> Page {
    page(
        server
            .http
            .post(action)
            .form(fields)
            .send()
            .expect("form post"),
    )
}

/// Opens the authorization URL as a browser would; expects the password form.
fn open_sign_in(server: &Server, url: &Url) -> Form {
    let shown = page(server.http.get(url.as_str()).send().expect("authorize"));
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.body.contains("name=\"password\""), "{}", shown.body);
    form(&shown.body)
}

fn submit_password(server: &Server, form: &Form, password: &str) -> Page {
    post_form(
        server,
        &form.action,
        &[
            ("login_id", form.login_id.as_str()),
            ("email", ALICE),
            ("password", password),
        ],
    )
}

/// The query parameters of the redirect back to the client.
fn redirect_params(answer: &Page) -> HashMap<String, String> {
    assert_eq!(answer.status, 303, "{}", answer.body);
    let location = answer.location.as_deref().expect("Location header");
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    Url::parse(location)
        .expect("redirect URL")
        .query_pairs()
        .into_owned()
        .collect()
}

// ---------------------------------------------------------------------------
// The authorization code flow
// ---------------------------------------------------------------------------

/// An authorization request built by the crate, and what the client keeps.
struct AuthRequest {
    url: Url,
    state: CsrfToken,
    nonce: Nonce,
    verifier: String,
}

fn authorization_request(rp: &RelyingParty) -> AuthRequest {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    AuthRequest {
        url,
        state,
        nonce,
        verifier: verifier.secret().to_owned(),
    }
}

/// Signs alice in with her password; returns the code from the redirect.
fn code_for_alice(server: &Server, request: &AuthRequest) -> String {
    let form = open_sign_in(server, &request.url);
    let params = redirect_params(&submit_password(server, &form, PASSWORD));
    assert_eq!(params.get("state"), Some(request.state.secret()));
    params.get("code").expect("code").to_owned()
}

fn exchange_code(
    rp: &RelyingParty,
    http: &HttpClient,
    request: &AuthRequest,
    code: &str,
) -> Result<
    CoreTokenResponse,
    RequestTokenError<
        openidconnect::HttpClientError<openidconnect::reqwest::Error>,
        StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
> {
    rp.exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(request.verifier.clone()))
        .request(http)
}

/// The whole code flow for alice: returns the request and the tokens.
fn sign_in_with_code(
    server: &Server,
    rp: &RelyingParty,
    http: &HttpClient,
) -> (AuthRequest, CoreTokenResponse) {
    let request = authorization_request(rp);
    let code = code_for_alice(server, &request);
    let tokens = exchange_code(rp, http, &request, &code).expect("code exchange");
    (request, tokens)
}

/// Verifies the ID token of a response with the crate.
fn verified_id_token(
    rp: &RelyingParty,
    tokens: &CoreTokenResponse,
    nonce: Option<&Nonce>,
) -> CoreIdTokenClaims {
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = id_token_verifier(rp);
    let claims = match nonce {
        Some(nonce) => id_token.claims(&verifier, nonce),
        None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
    };
    claims.expect("a valid ID token").clone()
}

fn amr(claims: &CoreIdTokenClaims) -> Vec<String> {
    claims
        .auth_method_refs()
        .map(|refs| refs.iter().map(|r| r.as_str().to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn authorization_code_with_pkce_signs_in_through_the_openidconnect_crate() {
    let server = Server::with_tenants();
    let http = http_client();
    let issuer = acme_issuer(&server);

    let metadata = discover(&server, &http);
    assert_eq!(metadata.issuer().as_str(), issuer);
    assert_eq!(
        metadata.authorization_endpoint().as_str(),
        format!("{issuer}/authorize")
    );
    assert!(!metadata.jwks().keys().is_empty(), "the JWKS has keys");

    let client_id = public_client(&server, "Web app");
    let rp = relying_party(&server, &http, &client_id, None);
    let request = authorization_request(&rp);
    let form = open_sign_in(&server, &request.url);
    let params = redirect_params(&submit_password(&server, &form, PASSWORD));
    assert_eq!(params.get("state"), Some(request.state.secret()));
    assert_eq!(params.get("iss"), Some(&issuer), "RFC 9207 iss parameter");
    let code = params.get("code").expect("code");

    let tokens = exchange_code(&rp, &http, &request, code).expect("code exchange");
    assert_eq!(tokens.token_type(), &CoreTokenType::Bearer);
    assert!(tokens.refresh_token().is_some());
    let id_token = tokens.id_token().expect("ID token");
    assert_eq!(
        id_token.signing_alg().expect("alg"),
        &CoreJwsSigningAlgorithm::EdDsa
    );
    let id_claims = verified_id_token(&rp, &tokens, Some(&request.nonce));
    assert_eq!(
        id_claims.nonce().map(|n| n.secret()),
        Some(request.nonce.secret())
    );
    assert_eq!(id_claims.issuer().as_str(), issuer);
    assert_eq!(id_claims.email().map(|e| e.as_str()), Some(ALICE));
    assert_eq!(amr(&id_claims), ["pwd"]);

    let access = tokens.access_token().secret();
    let (status, whoami, _) = server.whoami(access);
    assert_eq!(status, 200, "{whoami}");
    assert_eq!(whoami["user"], ALICE);
    assert_eq!(whoami["client_id"], client_id.as_str());
    assert_eq!(whoami["sub"], id_claims.subject().as_str());

    let userinfo: CoreUserInfoClaims = rp
        .user_info(
            tokens.access_token().clone(),
            Some(id_claims.subject().clone()),
        )
        .request(&http)
        .expect("userinfo");
    assert_eq!(userinfo.subject(), id_claims.subject());
    assert_eq!(userinfo.email().map(|e| e.as_str()), Some(ALICE));
}

#[test]
fn id_token_at_hash_matches_the_access_token_as_the_crate_computes_it() {
    // OpenID Connect Core 3.1.3.6: at_hash is the left half of the hash of
    // the access token with the hash of the ID token's algorithm; for EdDSA
    // with Ed25519 that is SHA-512 (OpenID Connect WG, connect issue 1125),
    // which is what the openidconnect crate computes.
    let server = Server::with_tenants();
    let http = http_client();
    let rp = relying_party(&server, &http, &public_client(&server, "Web app"), None);
    let (request, tokens) = sign_in_with_code(&server, &rp, &http);
    let id_claims = verified_id_token(&rp, &tokens, Some(&request.nonce));
    let id_token = tokens.id_token().expect("ID token");
    let verifier = id_token_verifier(&rp);
    let expected = id_claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().expect("alg"),
        id_token.signing_key(&verifier).expect("signing key"),
    )
    .expect("hash");
    let sha256_half =
        URL_SAFE_NO_PAD.encode(&Sha256::digest(tokens.access_token().secret().as_bytes())[..16]);
    assert_eq!(
        expected.as_str(),
        actual.as_str(),
        "at_hash is not the left half of SHA-512 of the access token \
         (is it the left half of SHA-256? {})",
        expected.as_str() == sha256_half
    );
}

#[test]
fn wrong_password_shows_the_form_again_with_401_and_the_form_still_works() {
    let server = Server::with_tenants();
    let http = http_client();
    let rp = relying_party(&server, &http, &public_client(&server, "Web app"), None);
    let request = authorization_request(&rp);
    let first = open_sign_in(&server, &request.url);

    let refused = submit_password(&server, &first, "not the password");
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.location.is_none());
    assert!(
        refused
            .body
            .contains("Incorrect email address or password."),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("name=\"password\""),
        "{}",
        refused.body
    );

    let again = form(&refused.body);
    assert_eq!(again.login_id, first.login_id);
    let params = redirect_params(&submit_password(&server, &again, PASSWORD));
    assert_eq!(params.get("state"), Some(request.state.secret()));
    assert!(params.contains_key("code"));
}

#[test]
fn unregistered_redirect_uri_shows_an_error_page_and_does_not_redirect() {
    let server = Server::with_tenants();
    let http = http_client();
    let rp = relying_party(&server, &http, &public_client(&server, "Web app"), None)
        .set_redirect_uri(RedirectUrl::new("http://127.0.0.1:1/evil".to_owned()).expect("URL"));
    let request = authorization_request(&rp);
    let answer = page(
        server
            .http
            .get(request.url.as_str())
            .send()
            .expect("authorize"),
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.location.is_none(), "{:?}", answer.location);
    assert!(
        answer.body.contains("redirect_uri is not registered"),
        "{}",
        answer.body
    );
    assert!(
        !answer.body.contains("name=\"password\""),
        "{}",
        answer.body
    );
}

#[test]
fn authorization_code_used_twice_is_refused_and_revokes_the_first_session() {
    let server = Server::with_tenants();
    let http = http_client();
    let client_id = public_client(&server, "Web app");
    let rp = relying_party(&server, &http, &client_id, None);
    let request = authorization_request(&rp);
    let code = code_for_alice(&server, &request);

    let first = exchange_code(&rp, &http, &request, &code).expect("first exchange");
    let access = first.access_token().secret();
    assert_eq!(server.whoami(access).0, 200);

    let second = exchange_code(&rp, &http, &request, &code);
    assert_eq!(error_code(second), "invalid_grant");
    assert!(
        refused_within_a_second(&server, access),
        "the first exchange's access token still works"
    );
    let refresh = first.refresh_token().expect("refresh token");
    assert_eq!(
        error_code(rp.exchange_refresh_token(refresh).request(&http)),
        "invalid_grant"
    );
    let detail = server.expect_security_event("replay");
    assert_eq!(detail["sid"], claims(access)["sid"]);
    assert_eq!(detail["client_id"], client_id.as_str());
}

// ---------------------------------------------------------------------------
// Refresh rotation
// ---------------------------------------------------------------------------

#[test]
fn refresh_rotates_and_a_reused_refresh_token_revokes_the_whole_session() {
    let server = Server::with_tenants();
    let http = http_client();
    let rp = relying_party(&server, &http, &public_client(&server, "Web app"), None);
    let (_, first) = sign_in_with_code(&server, &rp, &http);
    let first_refresh = first.refresh_token().expect("refresh token").clone();
    let first_access = first.access_token().secret().clone();

    let second = rp
        .exchange_refresh_token(&first_refresh)
        .request(&http)
        .expect("refresh");
    let second_refresh = second
        .refresh_token()
        .expect("rotated refresh token")
        .clone();
    let second_access = second.access_token().secret().clone();
    assert_ne!(second_refresh.secret(), first_refresh.secret());
    assert_ne!(second_access, first_access);
    assert_eq!(claims(&second_access)["sid"], claims(&first_access)["sid"]);
    assert_eq!(
        server.whoami(&first_access).0,
        200,
        "the old access token stays valid"
    );
    assert_eq!(server.whoami(&second_access).0, 200);

    // The first refresh token again: a thief or the client, either way the
    // session ends.
    assert_eq!(
        error_code(rp.exchange_refresh_token(&first_refresh).request(&http)),
        "invalid_grant"
    );
    assert_eq!(
        error_code(rp.exchange_refresh_token(&second_refresh).request(&http)),
        "invalid_grant"
    );
    assert!(refused_within_a_second(&server, &first_access));
    assert!(refused_within_a_second(&server, &second_access));
    let detail = server.expect_security_event("replay");
    assert_eq!(detail["sid"], claims(&first_access)["sid"]);
}

// ---------------------------------------------------------------------------
// Device authorization (RFC 8628)
// ---------------------------------------------------------------------------

/// The user's decision on the verification page, reached through
/// `verification_uri_complete`.
fn decide_device(
    server: &Server,
    device: &CoreDeviceAuthorizationResponse,
    decision: &str,
) -> Page {
    let complete = device
        .verification_uri_complete()
        .expect("verification_uri_complete");
    let shown = page(
        server
            .http
            .get(complete.secret())
            .send()
            .expect("device page"),
    );
    assert_eq!(shown.status, 200, "{}", shown.body);
    let user_code = device.user_code().secret();
    assert!(
        shown.body.contains(&format!("value=\"{user_code}\"")),
        "the page is prefilled: {}",
        shown.body
    );
    let action = attribute(&shown.body, "action=\"");
    let mut fields = vec![("user_code", user_code.as_str()), ("decision", decision)];
    if decision == "approve" {
        fields.extend([("email", ALICE), ("password", PASSWORD)]);
    }
    post_form(server, &action, &fields)
}

fn no_sleep_expected(interval: Duration) {
    panic!("the device flow kept polling (interval {interval:?})");
}

#[test]
fn device_flow_approved_on_the_verification_page_issues_tokens() {
    let server = Server::with_tenants();
    let http = http_client();
    let client_id = public_client(&server, "Television");
    let rp = relying_party(&server, &http, &client_id, None);
    let device: CoreDeviceAuthorizationResponse = rp
        .exchange_device_code()
        .add_scope(Scope::new("email".to_owned()))
        .request(&http)
        .expect("device authorization");
    assert_eq!(
        device.verification_uri().as_str(),
        format!("{}/device", acme_issuer(&server))
    );

    // The crate polls at once; the user approves while it waits.
    let waits = Cell::new(0);
    let tokens = rp
        .exchange_device_access_token(&device)
        .request(
            &http,
            |interval| {
                assert_eq!(
                    interval,
                    device.interval(),
                    "the poll answered authorization_pending, not slow_down"
                );
                waits.set(waits.get() + 1);
                let approved = decide_device(&server, &device, "approve");
                assert_eq!(approved.status, 200, "{}", approved.body);
                assert!(
                    approved.body.contains("Device connected"),
                    "{}",
                    approved.body
                );
            },
            None,
        )
        .expect("device token");
    assert_eq!(waits.get(), 1, "one pending poll, then the tokens");

    let id_claims = verified_id_token(&rp, &tokens, None);
    assert_eq!(amr(&id_claims), ["pwd"]);
    let (status, whoami, _) = server.whoami(tokens.access_token().secret());
    assert_eq!(status, 200, "{whoami}");
    assert_eq!(whoami["user"], ALICE);
    assert_eq!(whoami["client_id"], client_id.as_str());
    assert_eq!(whoami["sub"], id_claims.subject().as_str());

    let again = rp
        .exchange_device_access_token(&device)
        .request(&http, no_sleep_expected, None);
    assert_eq!(error_code(again), "invalid_grant", "device codes work once");
}

#[test]
fn device_flow_is_pending_before_the_decision_and_denied_after_a_denial() {
    let server = Server::with_tenants();
    let http = http_client();
    let client_id = public_client(&server, "Television");
    let rp = relying_party(&server, &http, &client_id, None);
    let device: CoreDeviceAuthorizationResponse = rp
        .exchange_device_code()
        .request(&http)
        .expect("device authorization");

    let poll = server
        .http
        .post(format!("{}/token", acme_issuer(&server)))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device.device_code().secret().as_str()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .expect("poll");
    assert_eq!(poll.status().as_u16(), 400);
    let body: Value = poll.json().expect("JSON error");
    assert_eq!(body["error"], "authorization_pending");

    let denied = decide_device(&server, &device, "deny");
    assert_eq!(denied.status, 200, "{}", denied.body);
    assert!(denied.body.contains("Request denied"), "{}", denied.body);

    let result = rp
        .exchange_device_access_token(&device)
        .request(&http, no_sleep_expected, None);
    assert_eq!(error_code(result), "access_denied");
}

// ---------------------------------------------------------------------------
// Introspection (RFC 7662) and revocation (RFC 7009)
// ---------------------------------------------------------------------------

/// Revokes a token with the crate's `revoke_token`. The crate refuses a
/// revocation endpoint that is not https (RFC 7009 section 2 says clients
/// MUST check that); the test server speaks plain HTTP on loopback, so the
/// relying party is given the https form of the endpoint and the request it
/// builds is sent to the same loopback address over HTTP.
fn revoke_through_the_crate(rp: &RelyingParty, http: &HttpClient, token: CoreRevocableToken) {
    let endpoint = rp
        .revocation_url()
        .as_str()
        .replacen("http://", "https://", 1);
    let rp = rp
        .clone()
        .set_revocation_url(RevocationUrl::new(endpoint).expect("URL"));
    let loopback = |mut request: HttpRequest| {
        let plain = request.uri().to_string().replacen("https://", "http://", 1);
        *request.uri_mut() = plain.parse().expect("URI");
        http.call(request)
    };
    rp.revoke_token(token)
        .expect("revocation endpoint")
        .request(&loopback)
        .expect("revocation");
}

#[test]
fn introspection_and_revocation_with_a_confidential_client() {
    let server = Server::with_tenants();
    let http = http_client();
    let (client_id, secret) = confidential_client(&server, "Resource server", &[]);
    let rp = relying_party(&server, &http, &client_id, Some(&secret));
    let (_, tokens) = sign_in_with_code(&server, &rp, &http);
    let id_claims = verified_id_token(&rp, &tokens, None);
    let access = tokens.access_token();
    let refresh = tokens.refresh_token().expect("refresh token").clone();
    let refresh_as_token = AccessToken::new(refresh.secret().clone());

    let info = rp.introspect(access).request(&http).expect("introspection");
    assert!(info.active());
    assert_eq!(info.sub(), Some(id_claims.subject().as_str()));
    assert_eq!(
        info.client_id().map(|c| c.as_str()),
        Some(client_id.as_str())
    );
    let scopes: Vec<&str> = info
        .scopes()
        .expect("scope")
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert!(
        scopes.contains(&"openid") && scopes.contains(&"email"),
        "{scopes:?}"
    );
    let exp = info.exp().expect("exp").timestamp();
    assert!(exp > i64::try_from(unix_now()).expect("time"), "exp {exp}");
    assert_eq!(info.username(), Some(ALICE));
    assert!(
        rp.introspect(&refresh_as_token)
            .request(&http)
            .expect("introspection")
            .active()
    );

    let garbage = AccessToken::new("garbage".to_owned());
    assert!(
        !rp.introspect(&garbage)
            .request(&http)
            .expect("introspection")
            .active()
    );

    let public = relying_party(&server, &http, &public_client(&server, "SPA"), None);
    assert_eq!(
        error_code(public.introspect(access).request(&http)),
        "invalid_client",
        "public clients may not introspect"
    );

    revoke_through_the_crate(
        &rp,
        &http,
        CoreRevocableToken::RefreshToken(refresh.clone()),
    );
    for token in [access, &refresh_as_token] {
        let info = rp.introspect(token).request(&http).expect("introspection");
        assert!(!info.active(), "revoked token still active");
    }
    assert!(refused_within_a_second(&server, access.secret()));
    assert_eq!(
        error_code(rp.exchange_refresh_token(&refresh).request(&http)),
        "invalid_grant"
    );
}

// ---------------------------------------------------------------------------
// DPoP (RFC 9449)
// ---------------------------------------------------------------------------

/// A P-256 key that signs DPoP proofs.
struct DpopKey {
    key: p256::ecdsa::SigningKey,
    jwk: Value,
}

impl DpopKey {
    fn generate() -> Self {
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let point = key.verifying_key().to_encoded_point(false);
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(point.x().expect("x")),
            "y": URL_SAFE_NO_PAD.encode(point.y().expect("y")),
        });
        Self { key, jwk }
    }

    /// The RFC 7638 thumbprint: SHA-256 of the required members in
    /// lexicographic order, without whitespace.
    fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            self.jwk["x"].as_str().expect("x"),
            self.jwk["y"].as_str().expect("y"),
        );
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// A fresh proof for one request, with `ath` when a token is presented.
    fn proof(&self, htm: &str, htu: &str, access_token: Option<&str>) -> String {
        use p256::ecdsa::signature::Signer;
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let mut claims = json!({
            "jti": format!("{:032x}", rand::random::<u128>()),
            "htm": htm,
            "htu": htu,
            "iat": unix_now(),
        });
        if let Some(token) = access_token {
            claims["ath"] = URL_SAFE_NO_PAD
                .encode(Sha256::digest(token.as_bytes()))
                .into();
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: p256::ecdsa::Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// A client-credentials token request, with a DPoP proof if given.
fn client_credentials_request(
    server: &Server,
    client_id: &str,
    secret: &str,
    proof: Option<&str>,
) -> (u16, Value) {
    let mut request = server
        .http
        .post(format!("{}/token", acme_issuer(server)))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ]);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response = request.send().expect("token request");
    let status = response.status().as_u16();
    (status, response.json().expect("JSON"))
}

/// `GET /api/whoami` with an Authorization header and an optional proof.
fn whoami_status(server: &Server, authorization: &str, proof: Option<&str>) -> u16 {
    let mut request = server
        .http
        .get(format!("{}/api/whoami", server.url))
        .header("Authorization", authorization);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.send().expect("whoami").status().as_u16()
}

#[test]
fn dpop_bound_tokens_need_a_fresh_proof_from_the_bound_key() {
    let server = Server::with_tenants();
    let (client_id, secret) = confidential_client(&server, "Bound service", &["--require-dpop"]);
    let token_url = format!("{}/token", acme_issuer(&server));
    let whoami_url = format!("{}/api/whoami", server.url);

    let (status, body) = client_credentials_request(&server, &client_id, &secret, None);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_dpop_proof");

    let key = DpopKey::generate();
    let proof = key.proof("POST", &token_url, None);
    let (status, body) = client_credentials_request(&server, &client_id, &secret, Some(&proof));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().expect("access_token");
    assert_eq!(claims(token)["cnf"]["jkt"], key.thumbprint());

    let dpop = format!("DPoP {token}");
    let proof = key.proof("GET", &whoami_url, Some(token));
    assert_eq!(whoami_status(&server, &dpop, Some(&proof)), 200);
    assert_eq!(
        whoami_status(&server, &format!("Bearer {token}"), None),
        401,
        "a bound token without its proof"
    );
    assert_eq!(
        whoami_status(&server, &dpop, Some(&proof)),
        401,
        "a replayed proof"
    );
    let stranger = DpopKey::generate().proof("GET", &whoami_url, Some(token));
    assert_eq!(
        whoami_status(&server, &dpop, Some(&stranger)),
        401,
        "a proof from another key"
    );
    let fresh = key.proof("GET", &whoami_url, Some(token));
    assert_eq!(
        whoami_status(&server, &dpop, Some(&fresh)),
        200,
        "a fresh proof from the bound key still works"
    );
}

#[test]
fn a_used_dpop_proof_stays_used_across_a_restart_and_a_crash() {
    let mut server = Server::with_tenants();
    let (client_id, secret) = confidential_client(&server, "Bound service", &["--require-dpop"]);
    let token_url = format!("{}/token", acme_issuer(&server));
    let whoami_url = format!("{}/api/whoami", server.url);
    let key = DpopKey::generate();
    let proof = key.proof("POST", &token_url, None);
    let (status, body) = client_credentials_request(&server, &client_id, &secret, Some(&proof));
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let dpop = format!("DPoP {token}");

    // A clean stop saves the ids used; the restarted server refuses them.
    let used = key.proof("GET", &whoami_url, Some(&token));
    assert_eq!(whoami_status(&server, &dpop, Some(&used)), 200);
    let unused_before_stop = key.proof("GET", &whoami_url, Some(&token));
    server.terminate();
    server.spawn();
    assert_eq!(
        whoami_status(&server, &dpop, Some(&used)),
        401,
        "a proof used before a clean restart"
    );
    assert_eq!(
        whoami_status(&server, &dpop, Some(&unused_before_stop)),
        200,
        "a proof made before a clean restart and never used"
    );

    // A crash loses the ids used since the start: every proof made before
    // the next start is refused, and fresh ones work.
    let used = key.proof("GET", &whoami_url, Some(&token));
    assert_eq!(whoami_status(&server, &dpop, Some(&used)), 200);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    server.kill9();
    server.spawn();
    assert_eq!(
        whoami_status(&server, &dpop, Some(&used)),
        401,
        "a proof used before a crash"
    );
    let fresh = key.proof("GET", &whoami_url, Some(&token));
    assert_eq!(
        whoami_status(&server, &dpop, Some(&fresh)),
        200,
        "a fresh proof after a crash"
    );
}

// ---------------------------------------------------------------------------
// TOTP second factor
// ---------------------------------------------------------------------------

fn totp_generator(secret_base32: &str) -> totp_rs::TOTP {
    let secret = totp_rs::Secret::Encoded(secret_base32.to_owned())
        .to_bytes()
        .expect("base32 secret");
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, secret).expect("TOTP")
}

/// A six-digit code valid in no window near now.
fn wrong_code(totp: &totp_rs::TOTP) -> String {
    let now = unix_now();
    let valid: Vec<String> = (0..=8)
        .map(|step| totp.generate(now - 120 + step * 30))
        .collect();
    (0..)
        .map(|n| format!("{n:06}"))
        .find(|code| !valid.contains(code))
        .expect("a wrong code")
}

#[test]
fn totp_enrolled_user_needs_the_code_and_the_id_token_says_otp() {
    let server = Server::with_tenants();
    let enrolment = server.cli_ok(&["user", "totp", "enroll", ALICE]);
    let secret = enrolment
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .expect("secret line")
        .trim()
        .to_owned();
    let totp = totp_generator(&secret);

    let http = http_client();
    let rp = relying_party(&server, &http, &public_client(&server, "Web app"), None);
    let request = authorization_request(&rp);
    let password_form = open_sign_in(&server, &request.url);
    let second_step = submit_password(&server, &password_form, PASSWORD);
    assert_eq!(second_step.status, 200, "{}", second_step.body);
    assert!(second_step.location.is_none());
    assert!(
        second_step.body.contains("name=\"totp\""),
        "{}",
        second_step.body
    );
    let totp_form = form(&second_step.body);

    let refused = post_form(
        &server,
        &totp_form.action,
        &[
            ("login_id", totp_form.login_id.as_str()),
            ("totp", wrong_code(&totp).as_str()),
        ],
    );
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.location.is_none());
    assert!(refused.body.contains("name=\"totp\""), "{}", refused.body);
    let totp_form = form(&refused.body);

    let accepted = post_form(
        &server,
        &totp_form.action,
        &[
            ("login_id", totp_form.login_id.as_str()),
            ("totp", totp.generate(unix_now()).as_str()),
        ],
    );
    let params = redirect_params(&accepted);
    assert_eq!(params.get("state"), Some(request.state.secret()));
    let code = params.get("code").expect("code");

    let tokens = exchange_code(&rp, &http, &request, code).expect("code exchange");
    let id_claims = verified_id_token(&rp, &tokens, Some(&request.nonce));
    let methods = amr(&id_claims);
    assert!(methods.iter().any(|m| m == "otp"), "{methods:?}");
    assert!(methods.iter().any(|m| m == "pwd"), "{methods:?}");
}

// ---------------------------------------------------------------------------
// Client credentials
// ---------------------------------------------------------------------------

#[test]
fn client_credentials_for_a_confidential_client_and_not_for_a_public_one() {
    let server = Server::with_tenants();
    let http = http_client();
    let (client_id, secret) = confidential_client(&server, "Batch job", &[]);
    let rp = relying_party(&server, &http, &client_id, Some(&secret));
    let tokens = rp
        .exchange_client_credentials()
        .add_scope(Scope::new("mail".to_owned()))
        .request(&http)
        .expect("client credentials");
    assert_eq!(tokens.token_type(), &CoreTokenType::Bearer);
    assert!(tokens.refresh_token().is_none());
    assert!(tokens.id_token().is_none());
    let (status, whoami, _) = server.whoami(tokens.access_token().secret());
    assert_eq!(status, 200, "{whoami}");
    assert_eq!(whoami["user"], client_id.as_str());
    assert_eq!(whoami["sub"], client_id.as_str());
    assert_eq!(whoami["client_id"], client_id.as_str());
    assert_eq!(whoami["scope"], "mail");

    let wrong = relying_party(&server, &http, &client_id, Some("not-the-secret"));
    assert_eq!(
        error_code(wrong.exchange_client_credentials().request(&http)),
        "invalid_client"
    );

    let public = relying_party(&server, &http, &public_client(&server, "SPA"), None);
    assert_eq!(
        error_code(public.exchange_client_credentials().request(&http)),
        "unauthorized_client"
    );
}
