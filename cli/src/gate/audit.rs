//! One JSON line on standard output per decision the gate takes.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::OnceLock;

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
    write(line.to_string());
}

/// Lines waiting for the writer thread: a reader of the gate's stdout that stops reading fills
/// this queue, not the gate's workers.
const QUEUED_LINES: usize = 8192;

/// Lines dropped because the queue was full; reported by the next line that gets through.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Hands `line` to the writer thread, never blocking the request: when stdout is not read,
/// lines are dropped and counted, and the count is written as soon as it can be.
fn write(line: String) {
    static WRITER: OnceLock<Option<SyncSender<String>>> = OnceLock::new();
    let writer = WRITER.get_or_init(|| {
        let (sender, receiver) = sync_channel::<String>(QUEUED_LINES);
        let spawned = std::thread::Builder::new().name("audit".into()).spawn(move || {
            for line in receiver {
                let mut out = std::io::stdout().lock();
                let dropped = DROPPED.swap(0, Ordering::Relaxed);
                if dropped > 0 {
                    let _ = writeln!(out, "{}", json!({"decision": "audit_lines_dropped", "count": dropped}));
                }
                // A closed stdout must not stop the gate; the decision was taken either way.
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
        });
        spawned.ok().map(|_| sender)
    });
    match writer {
        Some(sender) => match sender.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        },
        // No thread could be started: write in place rather than lose the line.
        None => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    }
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
