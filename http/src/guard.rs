//! [`RequestVerifier`]: the checks of docs/HTTP.md for one request, independent of any server
//! framework; the layer, the extractor and `warrant gate` are built on it.

use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Method, Uri};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use warrant_envelope::verify::{Expected, HttpRequest, VerifiedWarrant, Verifier};

use crate::carriage::warrant_from_headers;
use crate::method_override;
use crate::origin::Origin;
use crate::routes::{Operation, RouteTable};
use crate::Error;

/// The default bound on a request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// A warrant verified for the request that carried it.
#[derive(Debug, Clone)]
pub struct Warrant(Arc<VerifiedWarrant>);

impl Warrant {
    /// What verification established.
    pub fn verified(&self) -> &VerifiedWarrant {
        &self.0
    }
}

impl Deref for Warrant {
    type Target = VerifiedWarrant;

    fn deref(&self) -> &VerifiedWarrant {
        &self.0
    }
}

/// Verifies the warrant each request carries, for the operation the route table says the
/// request performs, against the request as received.
#[derive(Clone)]
pub struct RequestVerifier {
    verifier: Arc<Verifier>,
    origin: Origin,
    routes: Arc<RouteTable>,
    body_limit: usize,
}

impl RequestVerifier {
    /// A verifier for requests addressed to `origin`, with the default route table (action =
    /// the method, resource = the path) and body limit ([`DEFAULT_BODY_LIMIT`]).
    pub fn new(verifier: Arc<Verifier>, origin: Origin) -> Self {
        Self { verifier, origin, routes: Arc::new(RouteTable::default()), body_limit: DEFAULT_BODY_LIMIT }
    }

    /// Uses `routes` to tell each request's operation.
    pub fn with_routes(mut self, routes: RouteTable) -> Self {
        self.routes = Arc::new(routes);
        self
    }

    /// Refuses bodies over `bytes` (413).
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The envelope's verifier (to install status lists).
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// The external origin.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The body limit, bytes.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// Reads `body` whole, refusing more than the limit (also when `Content-Length` says so
    /// before a byte is read).
    pub async fn read_body<B>(&self, headers: &HeaderMap, body: B) -> Result<Bytes, Error>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.body_limit as u64) {
            return Err(Error::BodyTooLarge { limit: self.body_limit });
        }
        match Limited::new(body, self.body_limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<LengthLimitError>() => Err(Error::BodyTooLarge { limit: self.body_limit }),
            Err(e) => Err(Error::BodyUnreadable(e.to_string())),
        }
    }

    /// The operation the request (`method` on `uri`, with `headers`) performs, per the route
    /// table; refused when the request names another method besides its own
    /// ([`Error::AmbiguousMethod`]). Needs no body: call it before reading one.
    pub fn operation(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<Operation, Error> {
        method_override::refuse_in_head(method, uri, headers)?;
        self.routes.operation(method.as_str(), uri.path())
    }

    /// Verifies the warrant in `headers` for the request (`method`, `uri`, `body` as received):
    /// [`Error::MissingWarrant`] when it carries none.
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Warrant, Error> {
        let warrant = warrant_from_headers(headers)?.ok_or(Error::MissingWarrant)?;
        self.verify_warrant(&warrant, method, uri, headers, body)
    }

    /// Verifies `warrant` (taken from the request's headers with
    /// [`warrant_from_headers`](crate::warrant_from_headers), before reading the body) for the
    /// request (`method`, `uri`, `headers`, `body` as received).
    pub fn verify_warrant(
        &self,
        warrant: &[u8],
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Warrant, Error> {
        let operation = self.operation(method, uri, headers)?;
        method_override::refuse_in_body(headers, body)?;
        let target = self.origin.target(uri)?;
        let request = HttpRequest { method: method.as_str(), target: &target, body };
        let expected = Expected { action: &operation.action, resource: &operation.resource };
        let verified = self.verifier.verify(warrant, &expected, &request, None)?;
        Ok(Warrant(Arc::new(verified)))
    }
}
