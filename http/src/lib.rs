//! Warrants on HTTP: the carriage of docs/HTTP.md, verified for each request.
//!
//! A client sends `Authorization: Warrant <base64url>` ([`authorization_value`]). The service
//! reconstructs the request's target from its configured external [`Origin`] and the request's
//! path and query (never the `Host` header), reads the body up to a bound, asks its
//! [`RouteTable`] which operation (Cedar action and resource) the request performs, and has
//! the envelope's [`Verifier`](warrant_envelope::verify::Verifier) check that the warrant was
//! signed for exactly this request and operation. Refusals are answered per docs/HTTP.md
//! ([`refusal`]): 401 with a `WWW-Authenticate: Warrant error=...` challenge, 403 when a
//! policy or the route denies, 413 over the body bound, 503 when the verifier cannot decide.
//!
//! - [`RequestVerifier`] does this for one request, in any server;
//! - [`WarrantLayer`] is a tower layer doing it in front of a service;
//! - with the `axum` feature, [`Warrant`] is an extractor (and `Option<Warrant>` for
//!   optional authentication), and [`Error`] an `IntoResponse`;
//! - a [`StatusSource`] keeps the verifier's status lists fresh: [`FileStatusSource`] with
//!   [`spawn_refresh`], or, with the `fetch` feature, `HttpStatusSource` (the list's URL over
//!   https) with a [`StatusRefresher`] on the list's own `ttl`.
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use axum::{routing::post, Router};
//! use warrant_envelope::verify::Verifier;
//! use warrant_http::{read_trust_file, FileStatusSource, Origin, RequestVerifier, RouteTable, Warrant, WarrantLayer};
//!
//! let verifier = Arc::new(
//!     Verifier::builder("https://api.example.com")
//!         .trust(read_trust_file("trust.json".as_ref())?)
//!         .build()?,
//! );
//! let status = Arc::new(FileStatusSource::new("status.cbor".as_ref()));
//! warrant_http::refresh(&verifier, status.as_ref()).await?;
//! warrant_http::spawn_refresh(verifier.clone(), status, std::time::Duration::from_secs(5));
//! let requests = RequestVerifier::new(verifier, Origin::parse("https://api.example.com")?)
//!     .with_routes(RouteTable::read("routes.toml".as_ref())?);
//! let app: Router = Router::new()
//!     .route("/v1/deploy/{env}", post(|w: Warrant| async move { format!("{} deploys", w.principal) }))
//!     .layer(WarrantLayer::new(requests));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod carriage;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod guard;
#[cfg(feature = "fetch")]
mod http_status_source;
mod layer;
mod method_override;
mod origin;
#[cfg(feature = "redis")]
mod redis_replay;
mod refresh_schedule;
mod response;
mod routes;
mod status_source;

use std::path::Path;

pub use carriage::{authorization_value, warrant_from_headers, MAX_TOKEN_LEN, SCHEME};
pub use error::{Challenge, Error};
pub use guard::{RequestVerifier, Warrant, DEFAULT_BODY_LIMIT};
#[cfg(feature = "fetch")]
pub use http_status_source::{
    FetchOptions, HttpStatusSource, DEFAULT_CONNECT_TIMEOUT, DEFAULT_FETCH_TIMEOUT, STATUS_LIST_MEDIA_TYPE,
};
pub use layer::{WarrantLayer, WarrantService};
pub use origin::Origin;
#[cfg(feature = "redis")]
pub use redis_replay::{RedisConfigError, RedisReplayStore};
pub use refresh_schedule::{RefreshSchedule, DEFAULT_RETRY_MAX, DEFAULT_RETRY_MIN};
pub use response::refusal;
pub use routes::{Operation, RouteTable};
pub use status_source::{
    refresh, spawn_refresh, FileStatusSource, SourceFuture, StatusRefresher, StatusSource, MAX_CHAIN_WALK,
};
use warrant_envelope::verify::TrustedAuthority;

/// The largest trust file read.
const MAX_TRUST_FILE: u64 = 1024 * 1024;

/// Reads and validates a trust file (from `warrant authority trust`).
pub fn read_trust_file(path: &Path) -> Result<TrustedAuthority, Error> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TRUST_FILE + 1).read_to_end(&mut bytes))
        .map_err(|source| Error::Io { path: path.to_owned(), source })?;
    if bytes.len() as u64 > MAX_TRUST_FILE {
        return Err(Error::BadFile {
            path: path.to_owned(),
            reason: format!("larger than {MAX_TRUST_FILE} bytes"),
        });
    }
    warrant_api::trust::TrustFile::parse(&bytes)
        .map_err(|e| Error::BadFile { path: path.to_owned(), reason: e.to_string() })
}
