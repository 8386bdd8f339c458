//! The one token verifier: turns an access token presented with a request
//! into a [`Principal`], or into a typed [`Rejection`] that is counted,
//! logged and recorded as a security event.
//!
//! # What it owns
//!
//! Every decision about whether an access token is acceptable, and nothing
//! else: no other Stormproof code validates a token. It keeps an in-memory
//! ring of every tenant's public keys (from the store's key records), a
//! cache of verified tokens, and the memory of DPoP proof ids already used.
//! It polls the store's change counters ([`Verifier::refresh`]) so keys and
//! revocations changed by another process take effect within one poll.
//!
//! For a token minted through the same store handle (the server's own
//! issuer), the store keeps a snapshot of the ledger read taken when the
//! token was recorded ([`stormproof_store::Store::recorded_ledger_entry`]).
//! The verifier uses it instead of reading the store under the cache's
//! rule: only while the change counters it last saw are the snapshot's.
//!
//! The checks run in a fixed order, each with its own [`RejectReason`]:
//! wire format and header; claims; issuer and tenant; the key looked up by
//! the issuer's tenant and the `kid` and nothing else; the key record's
//! status, lifetime and algorithm; the signature; audience and time; the
//! issuance ledger (a validly signed token that was never issued is a
//! forgery); the session, user and client; and the DPoP binding.
//!
//! # What it must never do
//!
//! - Let a token choose its key or algorithm: no embedded keys, no key URLs,
//!   no `none`, no HMAC; the key record's algorithm decides.
//! - Try more than one key, or a key of another tenant.
//! - Accept a token that is not in the ledger exactly as presented.
//! - Block a request on security-event writing, or log a token.
//! - Fail open: if the store cannot be read, the token is refused.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use stormproof_store::{SqliteStore, Store};
//! use stormproof_types::{Clock, SystemClock};
//! use stormproof_verifier::{
//!     AuthScheme, RequestContext, SecurityEventSink, Verifier, VerifierConfig, VerifyMode,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store: Arc<dyn Store> = Arc::new(SqliteStore::open("data".as_ref())?);
//! let clock: Arc<dyn Clock> = Arc::new(SystemClock);
//! let events = SecurityEventSink::spawn(store.clone(), clock.clone());
//! let verifier = Arc::new(Verifier::new(store, clock, VerifierConfig::default(), Some(events))?);
//! let request = RequestContext {
//!     method: "GET",
//!     url: "http://127.0.0.1:8080/jmap/session",
//!     dpop: None,
//!     scheme: AuthScheme::Bearer,
//!     ip: Some("192.0.2.7"),
//!     user_agent: None,
//!     mode: VerifyMode::Resource,
//! };
//! match verifier.verify("eyJ...", &request) {
//!     Ok(principal) => println!("{} of {}", principal.subject(), principal.tenant()),
//!     Err(rejection) => println!("401: {rejection}"),
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod cache;
mod dpop;
mod events;
mod principal;
mod reject;
mod verifier;

pub use events::{EVENT_QUEUE_CAPACITY, SecurityEventSink};
pub use principal::{AuthScheme, Principal, RequestContext, VerifyMode};
pub use reject::{RejectReason, Rejection};
pub use verifier::{Error, ErrorKind, Verifier, VerifierConfig};
