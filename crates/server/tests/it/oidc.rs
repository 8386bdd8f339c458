//! OpenID Connect flows driven by the openidconnect crate.
