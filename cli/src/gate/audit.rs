//! One JSON line on standard output per decision the gate takes.

use std::io::Write;
use std::net::SocketAddr;

use serde_json::{json, Value};
use warrant_http::Warrant;

/// What became of one request.
pub(crate) enum Decision<'a> {
    /// Verified and forwarded; the upstream answered `status`.
    Forwarded { warrant: &'a Warrant, status: u16 },
    /// Verified, but the upstream could not be reached or did not answer (`status` 502/504).
    UpstreamFailed { warrant: &'a Warrant, status: u16, reason: String },
    /// Refused by the gate.
    Refused { status: u16, code: &'static str, message: String },
}

/// Writes the audit line of one request (method and path only: a query may carry data the
/// log should not keep).
pub(crate) fn record(peer: SocketAddr, method: &str, path: &str, decision: &Decision<'_>) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut line = json!({"time": now, "peer": peer.to_string(), "method": method, "path": path});
    let identity = |w: &Warrant| {
        json!({
            "principal": w.principal,
            "warrant_id": hex::encode(w.warrant_id),
            "grant_id": hex::encode(w.grant_id),
            "authority": w.authority,
            "action": w.action,
            "resource": w.resource,
        })
    };
    let fields = match decision {
        Decision::Forwarded { warrant, status } => {
            merge(identity(warrant), json!({"decision": "forwarded", "status": status}))
        }
        Decision::UpstreamFailed { warrant, status, reason } => merge(
            identity(warrant),
            json!({"decision": "upstream_failed", "status": status, "code": "upstream_failed", "message": reason}),
        ),
        Decision::Refused { status, code, message } => {
            let message = without_queries(message);
            json!({"decision": "refused", "status": status, "code": code, "message": message})
        }
    };
    line = merge(line, fields);
    let mut out = std::io::stdout().lock();
    // A closed stdout must not stop the gate; the decision was taken either way.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// `message` with each URL's query replaced by `?...`: a refusal names the target it expected
/// and the one the warrant was for, and their queries may carry tokens the log must not keep.
fn without_queries(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_query = false;
    for c in message.chars() {
        if in_query {
            // A query ends where the URL does in a message: at a space or a quote.
            if c.is_whitespace() || matches!(c, '"' | '\'' | ')' | ',' | ';') {
                in_query = false;
                out.push(c);
            }
            continue;
        }
        out.push(c);
        if c == '?' {
            out.push_str("...");
            in_query = true;
        }
    }
    out
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_left_out_of_refusal_messages() {
        assert_eq!(
            without_queries("target mismatch: expected \"https://a/x?token=other\", found \"https://a/x?token=SECRET123\""),
            "target mismatch: expected \"https://a/x?...\", found \"https://a/x?...\""
        );
        assert_eq!(
            without_queries("https://a/x?session=SECRET456 is unusable"),
            "https://a/x?... is unusable"
        );
        assert_eq!(without_queries("no query here"), "no query here");
    }
}
