//! The API's routes, recorded as they are added so a test can hold docs/openapi.json to them.

use std::sync::Arc;

use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;

use super::early_refusals;
use super::handlers as h;
use super::state::Daemon;

/// The router and its table of `(method, path)`.
pub struct Routes {
    router: Router<Arc<Daemon>>,
    table: Vec<(&'static str, String)>,
}

impl Routes {
    fn add(mut self, method: &'static str, path: &str, route: MethodRouter<Arc<Daemon>>) -> Self {
        let full = format!("{}{path}", warrant_api::PREFIX);
        self.router = self.router.route(&full, route);
        self.table.push((method, full));
        self
    }

    /// Every route of the API.
    pub fn all() -> Self {
        Self { router: Router::new(), table: Vec::new() }
            .add("get", "/health", get(h::health))
            .add("get", "/version", get(h::version))
            .add("get", "/keys", get(h::list_keys))
            .add("post", "/keys", post(h::create_key))
            .add("post", "/keys/existing", post(h::existing_key))
            .add("get", "/keys/{name}", get(h::get_key))
            .add("delete", "/keys/{name}", delete(h::delete_key))
            .add("post", "/keys/{name}/evidence", post(h::key_evidence))
            .add("get", "/tpm/identity", get(h::tpm_identity))
            .add("post", "/enroll", post(h::enroll))
            .add("post", "/sign", post(h::sign))
            .add("get", "/authority", get(h::authority_settings))
            .add("post", "/authority", post(h::init_authority))
            .add("get", "/authority/trust", get(h::trust))
            .add("post", "/authority/challenges", post(h::challenge))
            .add("post", "/authority/grants", post(h::grant))
            .add("post", "/authority/revocations", post(h::revoke))
            .add("post", "/authority/status-lists", post(h::publish_status))
            .add("get", "/authority/status-lists/latest", get(h::latest_status))
            .add("get", "/authority/status-lists/{sequence}", get(h::status_by_sequence))
            .add("post", "/authority/keys", post(h::rotate_key))
    }

    /// `(method, path)` of every route, in the order added.
    pub fn table(&self) -> &[(&'static str, String)] {
        &self.table
    }

    /// The router, bound to the daemon; anything unrouted is a JSON 404, and an extractor's
    /// plain-text rejection becomes a JSON error, audited.
    pub fn into_router(self, daemon: Arc<Daemon>) -> Router {
        self.router
            .fallback(h::no_such_endpoint)
            .method_not_allowed_fallback(h::no_such_endpoint)
            .layer(axum::middleware::from_fn_with_state(daemon.clone(), early_refusals::rejections_as_json))
            .with_state(daemon)
    }
}
