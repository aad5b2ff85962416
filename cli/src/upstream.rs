//! The service a gate or proxy forwards to: its base URL, and a pooled HTTP/1.1 client
//! (http, or https with rustls).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::{tls, Error};

/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An upstream service.
#[derive(Clone)]
pub(crate) struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `scheme://authority`.
    origin: String,
    /// The URL's path without a trailing `/` (empty for none).
    base_path: String,
}

impl Upstream {
    /// The upstream at `url` (`http://host:port[/prefix]` or `https://...`); https trusts the
    /// CA certificates in `ca`, else the system's.
    pub(crate) fn new(url: &str, ca: Option<&Path>) -> Result<Self, Error> {
        let usage = |reason: &str| Error::Usage(format!("upstream {url:?}: {reason}"));
        let uri: Uri = url.parse().map_err(|_| usage("not a URL"))?;
        let scheme = uri.scheme_str().ok_or_else(|| usage("give it as http://host[:port] or https://..."))?;
        if scheme != "http" && scheme != "https" {
            return Err(usage("the scheme must be http or https"));
        }
        let authority = uri.authority().ok_or_else(|| usage("no host"))?;
        if uri.query().is_some() {
            return Err(usage("a query has no place in the upstream's URL"));
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls::client_config(ca)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            client,
            origin: format!("{scheme}://{authority}"),
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// `scheme://authority` of the upstream.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// The path (and query) the upstream sees for a request to `path_and_query`: the URL's
    /// own path prefix, then the request's.
    pub(crate) fn path_for(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_path)
    }

    /// The upstream's URL for a request to `path_and_query`.
    pub(crate) fn uri_for(&self, path_and_query: &str) -> Result<Uri, Error> {
        format!("{}{}", self.origin, self.path_for(path_and_query))
            .parse()
            .map_err(|_| Error::Usage(format!("{path_and_query:?} does not make an upstream URL")))
    }

    /// Sends `request`.
    pub(crate) async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        self.client.request(request).await
    }
}

/// Removes the hop-by-hop headers (RFC 9110 §7.6.1): those `Connection` names and the usual
/// ones, which concern one connection and are never forwarded.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}
