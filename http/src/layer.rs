//! [`WarrantLayer`]: a tower layer that verifies every request before the inner service sees
//! it, and answers refused ones itself (docs/HTTP.md).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{Either, Full};
use tower::{Layer, Service};

use crate::carriage::warrant_from_headers;
use crate::guard::RequestVerifier;
use crate::response::refusal;
use crate::Error;

/// Wraps a service in [`WarrantService`].
#[derive(Clone)]
pub struct WarrantLayer {
    verifier: RequestVerifier,
    optional: bool,
}

impl WarrantLayer {
    /// Every request must carry a warrant that verifies.
    pub fn new(verifier: RequestVerifier) -> Self {
        Self { verifier, optional: false }
    }

    /// A request without a warrant passes to the inner service unauthenticated (an
    /// `Option<Warrant>` extractor then gets `None`); one with a warrant that does not verify
    /// is still refused.
    pub fn optional(verifier: RequestVerifier) -> Self {
        Self { verifier, optional: true }
    }
}

impl<S> Layer<S> for WarrantLayer {
    type Service = WarrantService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WarrantService { inner, verifier: self.verifier.clone(), optional: self.optional }
    }
}

/// Reads each request's body (bounded), verifies its warrant, and passes it on with the
/// [`Warrant`](crate::Warrant) in its extensions and the body as read; answers refusals itself.
#[derive(Clone)]
pub struct WarrantService<S> {
    inner: S,
    verifier: RequestVerifier,
    optional: bool,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, ResBody> Service<Request<B>> for WarrantService<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Either<ResBody, Full<Bytes>>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let optional = self.optional;
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let refuse = |e: &Error| Ok(refusal(e).map(Either::Right));
            // What can be refused without the body is, before a byte of it is read.
            let warrant = match warrant_from_headers(&parts.headers) {
                Ok(Some(warrant)) => Some(warrant),
                Ok(None) if optional => None,
                Ok(None) => return refuse(&Error::MissingWarrant),
                Err(e) => return refuse(&e),
            };
            if warrant.is_some() {
                if let Err(e) = verifier.operation(&parts.method, &parts.uri, &parts.headers) {
                    return refuse(&e);
                }
            }
            let body = match verifier.read_body(&parts.headers, body).await {
                Ok(body) => body,
                Err(e) => return refuse(&e),
            };
            if let Some(warrant) = warrant {
                match verifier.verify_warrant(&warrant, &parts.method, &parts.uri, &parts.headers, &body) {
                    Ok(warrant) => {
                        parts.extensions.insert(warrant);
                    }
                    Err(e) => return refuse(&e),
                }
            }
            let response = inner.call(Request::from_parts(parts, Full::new(body))).await?;
            Ok(response.map(Either::Left))
        })
    }
}
