//! One allowed operation, from its permit to its audited outcome. The rule it keeps: an
//! operation is either not done, or done and audited as done, with what the caller could not
//! receive.
//!
//! - The caller's liveness is checked before any work begins (a gone caller is refused).
//! - Work with a persistent effect is announced by a `begin` line that is on disk before the
//!   work starts; if it cannot be written, the work is not done.
//! - The work and its outcome line run in a task of their own, which nothing cancels: a
//!   request timeout or a closed connection drops only the wait for it, never work whose
//!   effect cannot be undone.
//! - After a commit, a failed outcome line is logged and the committed result answered (its
//!   `begin` line stands); a caller that left gets no answer, and the line says the answer was
//!   withheld.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::audit::{Decision, Entry};
use super::error::ApiError;
use super::peer::Caller;
use super::state::Daemon;
use crate::Error;

/// What an operation's work leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing once answered (reads): no `begin` line, and the outcome line is the answer's
    /// condition, as for every other answer.
    None,
    /// State that stays (keys, the authority's database): a `begin` line before the work, and
    /// the committed result answered even if its outcome line cannot be written.
    Persistent,
}

/// How far one request got, for the line of its timeout. Shared between the server, which
/// writes that line, and the handler.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Mutex<Stage>>);

#[derive(Debug, Clone, Default)]
enum Stage {
    /// No operation was allowed yet.
    #[default]
    Nothing,
    /// Allowed; its work has not begun.
    Allowed { op: String, operation: &'static str },
    /// Its work has begun (and runs to completion) or is done.
    Running { op: String, operation: &'static str },
}

impl Progress {
    fn stage(&self) -> std::sync::MutexGuard<'_, Stage> {
        crate::locks::lock(&self.0)
    }

    /// The audit line and the answer's message of a request that took longer than `limit`:
    /// a refusal if no work had begun, else a line that names the operation (its own lines
    /// say what was done) and says the answer is not delivered.
    pub fn timed_out(&self, limit: Duration) -> (Decision, Entry, String) {
        let took = format!("the request took longer than {} ms", limit.as_millis());
        match &*self.stage() {
            Stage::Nothing => {
                let message = format!("{took}; nothing was done");
                (
                    Decision::Deny,
                    Entry { operation: "request", reason: Some(message.clone()), ..Default::default() },
                    message,
                )
            }
            Stage::Allowed { op, operation } => {
                let message = format!("{took}; operation {op} ({operation}) had not begun: nothing was done");
                let entry = Entry {
                    operation,
                    op: Some(op.clone()),
                    reason: Some(message.clone()),
                    ..Default::default()
                };
                (Decision::Deny, entry, message)
            }
            Stage::Running { op, operation } => {
                let message = format!(
                    "{took}; operation {op} ({operation}) runs to completion and the audit log records what \
                     it did; its answer is not delivered"
                );
                let entry = Entry {
                    operation: "request",
                    op: Some(op.clone()),
                    reason: Some(message.clone()),
                    ..Default::default()
                };
                (Decision::Error, entry, message)
            }
        }
    }
}

/// An allowed operation: the rule that allowed it and the id its audit lines share.
#[derive(Debug)]
pub struct Permit {
    /// The rule that allowed it.
    pub rule: String,
    /// Its id, in every line about it.
    pub op: String,
    progress: Progress,
}

impl Permit {
    /// A permit for `operation` under `rule`, with a fresh id, noted in `progress`.
    pub fn issue(rule: String, operation: &'static str, progress: &Progress) -> Result<Self, Error> {
        let op = hex::encode(warrant_envelope::issue::random_bytes::<8>()?);
        *progress.stage() = Stage::Allowed { op: op.clone(), operation };
        Ok(Self { rule, op, progress: progress.clone() })
    }

    /// Notes that the work has begun: a timeout no longer means nothing was done.
    pub fn running(&self) {
        let mut stage = self.progress.stage();
        if let Stage::Allowed { op, operation } = &*stage {
            *stage = Stage::Running { op: op.clone(), operation };
        }
    }

    /// `entry` with this permit's id and rule.
    pub fn mark(&self, mut entry: Entry) -> Entry {
        entry.op = Some(self.op.clone());
        entry.rule = Some(self.rule.clone());
        entry
    }
}

/// Runs `work` (blocking) for `caller` under `permit` as one unit with its audit lines, and
/// answers its result; `describe` adds the outcome's ids to the outcome line. The unit runs in
/// a task of its own from its `begin` line on: dropping this future (a timeout, a closed
/// connection) drops only the wait for it.
pub async fn run<T: Send + 'static>(
    d: &Arc<Daemon>,
    caller: &Caller,
    permit: Permit,
    entry: Entry,
    effect: Effect,
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    describe: impl FnOnce(&T, &mut Entry) + Send + 'static,
) -> Result<T, ApiError> {
    let entry = permit.mark(entry);
    let (answer, answered) = oneshot::channel();
    let (d, caller) = (d.clone(), caller.clone());
    // Marked in the same step as the spawn: a timeout sees either "not begun" or a unit that
    // will write its lines.
    permit.running();
    tokio::spawn(async move {
        let finished = unit(&d, &caller, entry, effect, work, describe, &answer).await;
        let _ = answer.send(finished);
    });
    answered.await.map_err(|_| {
        ApiError::from(Error::Internal {
            task: "running the operation",
            reason: "its task ended without an outcome".into(),
        })
    })?
}

/// The unit: `begin` line and a last liveness check (persistent effects), the work, the
/// outcome line.
async fn unit<T: Send + 'static>(
    d: &Daemon,
    caller: &Caller,
    entry: Entry,
    effect: Effect,
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    describe: impl FnOnce(&T, &mut Entry),
    answer: &oneshot::Sender<Result<T, ApiError>>,
) -> Result<T, ApiError> {
    if effect == Effect::Persistent {
        d.audit.record_durable(Some(caller), Decision::Begin, entry.clone()).await?;
        // Again, after the wait for the disk: the caller may have left meanwhile.
        if let Err(e) = caller.still_the_same_process() {
            let mut refused = entry;
            refused.reason = Some(format!("{e}; nothing was done"));
            d.audit.record(Some(caller), Decision::Deny, refused).await?;
            return Err(e.into());
        }
    }
    let result = blocking(work).await;
    settle(d, caller, entry, effect, result, describe, answer).await
}

/// Writes the outcome line of a finished unit and decides the answer.
async fn settle<T>(
    d: &Daemon,
    caller: &Caller,
    mut entry: Entry,
    effect: Effect,
    result: Result<T, Error>,
    describe: impl FnOnce(&T, &mut Entry),
    answer: &oneshot::Sender<Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let value = match result {
        Ok(value) => value,
        Err(e) => {
            entry.reason = Some(e.to_string());
            let audited = d.audit.record(Some(caller), Decision::Error, entry).await;
            if let Err(audit) = audited {
                // The work failed: its error says more than the audit's.
                tracing::error!("audit: the failure of an operation could not be recorded: {audit}");
            }
            return Err(e.into());
        }
    };
    describe(&value, &mut entry);
    let withheld = match caller.still_the_same_process() {
        Err(e) => Some(e.to_string()),
        Ok(()) if answer.is_closed() => Some(
            "the request ended (timed out or its connection closed) before the work finished; the \
             answer was not delivered"
                .to_owned(),
        ),
        Ok(()) => None,
    };
    entry.reason = withheld.clone();
    let op = entry.op.clone().unwrap_or_default();
    let operation = entry.operation;
    if let Err(e) = d.audit.record(Some(caller), Decision::Allow, entry).await {
        if effect == Effect::None {
            return Err(e.into());
        }
        // Committed: the `begin` line stands for it, and the state is what the answer says.
        tracing::error!(
            "audit: the outcome line of operation {op} ({operation}), which committed, could not be \
             written ({e}); its begin line stands, and the result is answered"
        );
    }
    match withheld {
        Some(reason) => Err(Error::Caller(reason).into()),
        None => Ok(value),
    }
}

/// Runs `work` on the blocking pool (database transactions and key files wait for fsync).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal { task: "running blocking work", reason: e.to_string() })?
}
