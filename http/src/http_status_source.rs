//! A status list fetched over HTTP (FORMAT.md §6, fetching): `GET` of the list's URL with
//! `Accept: application/statuslist+cwt`, conditional on the last answer's `ETag` and
//! `Last-Modified`, the body bounded, within timeouts; https with rustls, plain http to a
//! loopback address only; redirects not followed. Earlier lists are at `<url>.history/<seq>`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
    LOCATION,
};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::crypto::aws_lc_rs::default_provider;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use warrant_envelope::device::sha256;
use warrant_envelope::issue::MAX_STATUS_BYTES;

use crate::status_source::{SourceFuture, StatusSource};
use crate::Error;

/// The media type of a status list token (draft-ietf-oauth-status-list, CWT form).
pub const STATUS_LIST_MEDIA_TYPE: &str = "application/statuslist+cwt";
/// How long connecting may take, by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole fetch (connection, answer and body) may take, by default.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest CA file read.
const MAX_CA_FILE: u64 = 1024 * 1024;

/// How an [`HttpStatusSource`] connects.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// PEM CA certificates an https server's certificate must chain to (default: the system's
    /// roots).
    pub ca_file: Option<PathBuf>,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long a whole fetch may take.
    pub timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self { ca_file: None, connect_timeout: DEFAULT_CONNECT_TIMEOUT, timeout: DEFAULT_FETCH_TIMEOUT }
    }
}

/// What the last list handed out was served with, for the next conditional request.
#[derive(Debug, Default)]
struct Validators {
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
    /// SHA-256 of the body handed out: the same body again (a server without validators) is
    /// unchanged too.
    digest: Option<[u8; 32]>,
}

/// A status list at a URL.
#[derive(Clone)]
pub struct HttpStatusSource {
    url: Uri,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
    validators: Arc<Mutex<Validators>>,
}

impl std::fmt::Debug for HttpStatusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStatusSource").field("url", &self.url).finish_non_exhaustive()
    }
}

impl HttpStatusSource {
    /// A source fetching `url`: `https://host[:port]/path`, or `http://` to a loopback address
    /// (`127.0.0.0/8`, `[::1]`: a test's server on this machine), without query, fragment or
    /// user information, whose path names a file (not `/` or a path ending in `/`).
    pub fn new(url: &str, options: &FetchOptions) -> Result<Self, Error> {
        let url = checked_url(url)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(options.connect_timeout));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(&url, options.ca_file.as_deref())?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            url,
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout: options.timeout,
            validators: Arc::default(),
        })
    }

    /// The URL.
    pub fn url(&self) -> String {
        self.url.to_string()
    }

    /// The URL of the earlier list `sequence`: the list's path followed by
    /// `.history/<sequence>`.
    pub fn history_url(&self, sequence: u64) -> String {
        history_url(&self.url, sequence)
    }

    fn validators(&self) -> std::sync::MutexGuard<'_, Validators> {
        // Plain values replaced whole: consistent after a panic.
        self.validators.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `GET url`, conditional on the last answer's validators when `revalidate`: the body of a
    /// 200, `None` for a 304 to a conditional request or (when `missing_is_none`) a 404.
    async fn get(
        &self,
        url: &str,
        revalidate: bool,
        missing_is_none: bool,
    ) -> Result<Option<Fetched>, Error> {
        let uri: Uri =
            url.parse().map_err(|_| Error::StatusUrl { url: url.into(), reason: "not a URL".into() })?;
        let mut request = Request::get(uri);
        let mut conditional = false;
        if let Some(headers) = request.headers_mut() {
            headers.insert(ACCEPT, HeaderValue::from_static(STATUS_LIST_MEDIA_TYPE));
            if revalidate {
                let validators = self.validators();
                if let Some(etag) = &validators.etag {
                    headers.insert(IF_NONE_MATCH, etag.clone());
                    conditional = true;
                }
                if let Some(date) = &validators.last_modified {
                    headers.insert(IF_MODIFIED_SINCE, date.clone());
                    conditional = true;
                }
            }
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| Error::StatusUrl { url: url.into(), reason: e.to_string() })?;
        let exchange = async {
            let failed = |reason: String| Error::StatusFetchFailed { url: url.into(), reason };
            let response = self.client.request(request).await.map_err(|e| failed(error_chain(&e)))?;
            let status = response.status();
            match status {
                StatusCode::OK => {}
                StatusCode::NOT_MODIFIED if conditional => return Ok(None),
                StatusCode::NOT_FOUND if missing_is_none => return Ok(None),
                // Not modified since a version this request did not name: no answer.
                StatusCode::NOT_MODIFIED => {
                    return Err(Error::StatusFetchStatus { url: url.into(), status: status.as_u16() })
                }
                s if s.is_redirection() => {
                    let location = response
                        .headers()
                        .get(LOCATION)
                        .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned())
                        .unwrap_or_default();
                    return Err(Error::StatusFetchRedirected { url: url.into(), location });
                }
                s => return Err(Error::StatusFetchStatus { url: url.into(), status: s.as_u16() }),
            }
            let headers = response.headers();
            let content_type =
                headers.get(CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let essence = content_type.as_deref().and_then(|t| t.split(';').next()).map(str::trim);
            if !essence.is_some_and(|t| t.eq_ignore_ascii_case(STATUS_LIST_MEDIA_TYPE)) {
                return Err(Error::StatusContentType {
                    url: url.into(),
                    found: content_type.unwrap_or_default(),
                });
            }
            let too_large = || Error::StatusTooLarge { url: url.into(), limit: MAX_STATUS_BYTES };
            let announced = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if announced.is_some_and(|length| length > MAX_STATUS_BYTES as u64) {
                return Err(too_large());
            }
            let etag = headers.get(ETAG).cloned();
            let last_modified = headers.get(LAST_MODIFIED).cloned();
            // Bounded whatever the server announced (or did not: a chunked answer).
            let body = Limited::new(response.into_body(), MAX_STATUS_BYTES).collect().await.map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    too_large()
                } else {
                    failed(format!("the answer broke off: {}", error_chain(e.as_ref())))
                }
            })?;
            Ok(Some(Fetched { body: body.to_bytes().to_vec(), etag, last_modified }))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::StatusFetchTimeout { url: url.into(), seconds: self.timeout.as_secs_f64() })?
    }
}

/// A list received, with the validators it came with.
struct Fetched {
    body: Vec<u8>,
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
}

impl StatusSource for HttpStatusSource {
    fn name(&self) -> String {
        self.url()
    }

    fn fetch(&self) -> SourceFuture<'_> {
        Box::pin(async move {
            let url = self.url();
            let Some(fetched) = self.get(&url, true, false).await? else {
                return Ok(None);
            };
            let digest = sha256(&fetched.body);
            let mut validators = self.validators();
            let unchanged = validators.digest == Some(digest);
            *validators =
                Validators { etag: fetched.etag, last_modified: fetched.last_modified, digest: Some(digest) };
            Ok((!unchanged).then_some(fetched.body))
        })
    }

    fn fetch_history(&self, sequence: u64) -> SourceFuture<'_> {
        Box::pin(async move {
            let url = self.history_url(sequence);
            Ok(self.get(&url, false, true).await?.map(|fetched| fetched.body))
        })
    }

    fn not_installed(&self) {
        *self.validators() = Validators::default();
    }
}

/// Where a publisher puts the earlier list `sequence` of the list at `url` (FORMAT.md §6).
fn history_url(url: &Uri, sequence: u64) -> String {
    format!("{url}.history/{sequence}")
}

/// `url` if a status list may be fetched from it.
fn checked_url(url: &str) -> Result<Uri, Error> {
    let unusable = |reason: &str| Error::StatusUrl { url: url.into(), reason: reason.into() };
    let uri: Uri = url.parse().map_err(|_| unusable("not a URL"))?;
    let host = uri.host().ok_or_else(|| unusable("it names no host: give https://host/path"))?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if is_loopback(host) => {}
        Some("http") => {
            return Err(unusable(
                "plain http is only for a server on this machine (127.0.0.1, [::1]): use https, so nobody on the way can withhold a revocation unnoticed until the list expires",
            ))
        }
        _ => return Err(unusable("the scheme must be https (or http to a loopback address)")),
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(unusable("user information has no place in it"));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(unusable(
            "a status list URL has no query or fragment: its history is found from its path",
        ));
    }
    let path = uri.path();
    if path.is_empty() || path == "/" || path.ends_with('/') {
        return Err(unusable("its path must name a file (not end in /)"));
    }
    Ok(uri)
}

/// Whether `host` (as a URL gives it: IPv6 in brackets) is a loopback address. Names are not
/// resolved: `localhost` might not be.
fn is_loopback(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// rustls trusting the CA certificates in `ca`, else the system's roots.
fn tls_config(url: &Uri, ca: Option<&Path>) -> Result<ClientConfig, Error> {
    let builder = ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::StatusFetchFailed { url: url.to_string(), reason: format!("TLS: {e}") })?;
    match ca {
        Some(path) => {
            let bad = |reason: String| Error::BadFile { path: path.to_owned(), reason };
            let pem = read_ca_file(path)?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| bad(format!("not PEM certificates: {e}")))?;
                roots.add(cert).map_err(|e| bad(format!("a CA certificate is unusable: {e}")))?;
            }
            if roots.is_empty() {
                return Err(bad("holds no PEM certificate".into()));
            }
            Ok(builder.with_root_certificates(roots).with_no_client_auth())
        }
        None => {
            use hyper_rustls::ConfigBuilderExt;
            let with_roots = builder.with_native_roots().map_err(|e| Error::BadFile {
                path: PathBuf::from("(the system's CA certificates)"),
                reason: e.to_string(),
            })?;
            Ok(with_roots.with_no_client_auth())
        }
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CA_FILE + 1).read_to_end(&mut bytes))
        .map_err(|source| Error::Io { path: path.to_owned(), source })?;
    if bytes.len() as u64 > MAX_CA_FILE {
        return Err(Error::BadFile {
            path: path.to_owned(),
            reason: format!("larger than {MAX_CA_FILE} bytes"),
        });
    }
    Ok(bytes)
}

/// An error and its sources, `: `-separated (hyper's own message alone says little).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_urls_naming_a_file_are_taken() {
        for good in [
            "https://status.example.com/status/1",
            "http://127.0.0.1:8080/status/1",
            "http://127.1.2.3/s",
            "http://[::1]:9/status",
        ] {
            assert!(checked_url(good).is_ok(), "{good}");
        }
        for (bad, says) in [
            ("http://status.example.com/status/1", "plain http is only for a server on this machine"),
            ("http://localhost/status/1", "plain http is only"),
            ("http://10.0.0.1/status/1", "plain http is only"),
            ("ftp://status.example.com/status/1", "the scheme must be https"),
            ("https://status.example.com/status/1?v=2", "no query or fragment"),
            ("https://status.example.com/status/1#x", "no query or fragment"),
            ("https://user@status.example.com/status/1", "user information"),
            ("https://status.example.com/", "must name a file"),
            ("https://status.example.com/status/", "must name a file"),
            ("status.example.com/status/1", "not a URL"),
        ] {
            let err = checked_url(bad).unwrap_err();
            assert!(matches!(&err, Error::StatusUrl { url, .. } if url == bad), "{bad}: {err:?}");
            assert!(err.to_string().contains(says), "{bad}: {err}");
            assert_eq!(err.code(), "status_url_invalid");
        }
    }

    #[test]
    fn the_history_of_a_list_is_beside_it() {
        let url = checked_url("https://s.example.com/status/1").unwrap();
        assert_eq!(history_url(&url, 7), "https://s.example.com/status/1.history/7");
    }
}
