//! The axum side (feature `axum`): [`Warrant`] as an extractor, and refusals as responses.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::guard::Warrant;
use crate::response::refusal;
use crate::Error;

/// The warrant [`WarrantLayer`](crate::WarrantLayer) verified for this request; a handler
/// behind no layer (or behind an optional one, for a request without a warrant) refuses with
/// 401 rather than run unauthenticated.
impl<S: Send + Sync> FromRequestParts<S> for Warrant {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        parts.extensions.get::<Warrant>().cloned().ok_or(Error::MissingWarrant)
    }
}

/// `Option<Warrant>`: `None` for a request the optional layer let through without a warrant.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Warrant {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Error> {
        Ok(parts.extensions.get::<Warrant>().cloned())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        refusal(&self).map(axum::body::Body::new)
    }
}
