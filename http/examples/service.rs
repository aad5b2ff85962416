//! A service that takes warrants instead of API keys: two endpoints behind `WarrantLayer`,
//! their operations from a route table.
//!
//! ```text
//! cargo run -p warrant-http --features axum --example service -- \
//!     --listen 127.0.0.1:8080 --origin https://api.example.com \
//!     --trust trust.json --status status.cbor [--allow-software]
//! ```
//!
//! `POST /v1/deploy/{env}` is the operation `deploy` on `{env}/api`; `GET /v1/whoami` is `read`
//! on `whoami`, and answers without a warrant too (optional authentication).
#![allow(clippy::expect_used)] // An example: a bad command line ends it with a message.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use warrant_envelope::verify::Verifier;
use warrant_http::{
    read_trust_file, refresh, spawn_refresh, FileStatusSource, Origin, RequestVerifier, RouteTable, Warrant,
    WarrantLayer,
};

/// The operations of the two endpoints.
pub const ROUTES: &str = r#"
[[route]]
method = "POST"
path = "/v1/deploy/{env}"
action = "deploy"
resource = "{env}/api"

[[route]]
method = "GET"
path = "/v1/whoami"
action = "read"
resource = "whoami"
"#;

/// The service: deploying needs a warrant; `whoami` says who asked, if anyone did.
pub fn app(requests: RequestVerifier) -> Router {
    let deploy = Router::new()
        .route(
            "/v1/deploy/{env}",
            post(|warrant: Warrant, body: String| async move {
                format!("{} deploys {} ({} bytes)\n", warrant.principal, warrant.resource, body.len())
            }),
        )
        .layer(WarrantLayer::new(requests.clone()));
    let whoami = Router::new()
        .route(
            "/v1/whoami",
            get(|warrant: Option<Warrant>| async move {
                match warrant {
                    Some(w) => format!("{}\n", w.principal),
                    None => "anonymous\n".to_owned(),
                }
            }),
        )
        .layer(WarrantLayer::optional(requests));
    deploy.merge(whoami)
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let need = |name: &str| arg(&args, name).ok_or(format!("{name} is required"));
    let origin = Origin::parse(&need("--origin")?)?;
    let verifier = Arc::new(
        Verifier::builder(origin.as_str())
            .trust(read_trust_file(need("--trust")?.as_ref())?)
            .allow_software_evidence(args.iter().any(|a| a == "--allow-software"))
            .build()?,
    );
    let status = Arc::new(FileStatusSource::new(need("--status")?.as_ref()));
    refresh(&verifier, status.as_ref()).await?;
    spawn_refresh(verifier.clone(), status, Duration::from_secs(2));
    let requests = RequestVerifier::new(verifier, origin).with_routes(RouteTable::from_toml(ROUTES)?);
    let listener = tokio::net::TcpListener::bind(need("--listen")?).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app(requests)).await?;
    Ok(())
}
