//! The audit log: one JSON line per decision, to a file (appended, fsynced) and/or standard
//! output. A writer thread batches lines. With `fsync = "line"` each answer waits until its
//! line is on disk, and lines that arrive together share one fsync (group commit). With
//! `fsync = "batch"` answers do not wait; the writer wakes every `batch_interval_ms` and writes
//! and syncs what queued, so a crash can lose that interval's lines.
//!
//! Lines are whole or absent: each batch is one `write`, and a failed or short write (a full
//! disk) is cut back to the last whole line. The file is reopened on SIGHUP (after logrotate)
//! and whenever its path no longer names the open file (moved away or deleted), so lines never
//! go to an unlinked inode. Every text field is capped, so no caller can make a line large.
//!
//! An operation with a persistent effect writes a `begin` line before its work, waiting until
//! it is written in either fsync mode ([`AuditLog::record_durable`]), and its outcome line after;
//! both carry the operation's id (`op`). ARCHITECTURE.md ("Audit") says how to read them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::oneshot;

use super::config::{AuditConfig, Fsync};
use super::peer::Caller;
use super::refusals::{RefusalLimiter, Suppressed};
use crate::Error;

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Done.
    Allow,
    /// Refused by a rule, a limit or a check.
    Deny,
    /// Allowed, but failed; or (a timeout's line) its answer could not be delivered.
    Error,
    /// About to do an operation with a persistent effect: written, and on disk, before the
    /// work starts. Its outcome line (same `op`) follows; a `begin` without one means the
    /// daemon stopped during the work, and the state says whether it committed.
    Begin,
}

/// One audit line. Holds only public facts: never a secret, PIN or key byte.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Entry {
    /// The operation (`sign`, `authority.grant`, `request` for refusals before routing).
    pub operation: &'static str,
    /// The id every line of one allowed operation shares (its `begin`, its outcome, and the
    /// line of a request that timed out while it ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// The key used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Cedar action of a warrant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Cedar resource of a warrant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Audience of a warrant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The principal of a grant or enrollment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Warrant id (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warrant_id: Option<String>,
    /// Grant id (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// Status list sequence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_sequence: Option<u64>,
    /// The decision; set by [`AuditLog::record`].
    pub decision: Option<Decision>,
    /// The rule that decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why it was refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A `refusals` line: how many refusals of the uid were answered 429 without a line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    uid: Option<u32>,
    gid: Option<u32>,
    pid: Option<u32>,
    exe: Option<String>,
    #[serde(flatten)]
    entry: &'a Entry,
}

/// Told how the write of a line went (an async or a blocking waiter).
type Ack = Box<dyn FnOnce(Result<(), String>) + Send>;

/// What the writer thread is asked to do.
enum Message {
    /// Write a line; tell the sender how it went, if it waits.
    Line(String, Option<Ack>),
    /// Reopen the file at its path (SIGHUP, after logrotate).
    Reopen,
}

/// Longest text of any one field of a line, in bytes; longer text is cut (at a character
/// boundary) and says how long it was. A caller controls key names, audiences and the like:
/// without a cap, one refused request with a 60 kB key name would write 60 kB.
pub const MAX_FIELD_BYTES: usize = 256;

/// The audit log's front end; cheap to share.
pub struct AuditLog {
    tx: Option<mpsc::Sender<Message>>,
    wait: bool,
    writer: Option<std::thread::JoinHandle<()>>,
    /// How many refusals per uid are written line by line.
    pub refusals: RefusalLimiter,
}

impl Drop for AuditLog {
    /// Closes the queue and waits until every line is written.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl AuditLog {
    /// Opens the destinations and starts the writer thread.
    pub fn open(config: &AuditConfig) -> Result<Self, Error> {
        let file = match &config.file {
            Some(path) => Some((path.clone(), open_append(path)?)),
            None => None,
        };
        if file.is_none() && !config.stdout {
            return Ok(Self { tx: None, wait: false, writer: None, refusals: RefusalLimiter::default() });
        }
        let (tx, rx) = mpsc::channel();
        let stdout = config.stdout;
        let batch_interval = match config.fsync {
            Fsync::Line => None,
            Fsync::Batch => Some(Duration::from_millis(config.batch_interval_ms)),
        };
        let writer = std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || writer(rx, file, stdout, batch_interval))
            .map_err(|source| Error::Start { what: "the audit writer thread", source })?;
        Ok(Self {
            tx: Some(tx),
            wait: file_wait(config),
            writer: Some(writer),
            refusals: RefusalLimiter::default(),
        })
    }

    /// Writes `entry` with `decision` for `caller`. In line mode, returns once the line is on
    /// disk; an error means it is not, and the operation's answer must be withheld.
    /// A refusal beyond its uid's budget is not written: [`Error::TooManyRefusals`] (429)
    /// answers it, and [`AuditLog::record_suppressed`] counts it later.
    pub async fn record(
        &self,
        caller: Option<&Caller>,
        decision: Decision,
        entry: Entry,
    ) -> Result<(), Error> {
        if decision == Decision::Deny {
            self.refusals.admit(caller.map(|c| c.uid))?;
        }
        self.send(line(caller, decision, entry)?, self.wait).await
    }

    /// Writes one line for the refusals of a uid that were answered without one.
    pub async fn record_suppressed(&self, suppressed: Suppressed) -> Result<(), Error> {
        let entry = Entry {
            operation: "refusals",
            decision: Some(Decision::Deny),
            reason: Some(
                "refused more often than [limits] refusal_burst and refusals_per_second allow".into(),
            ),
            suppressed: Some(suppressed.count),
            ..Default::default()
        };
        let line =
            Line { time: rfc3339_now(), uid: suppressed.uid, gid: None, pid: None, exe: None, entry: &entry };
        let mut text = serde_json::to_string(&line).map_err(|e| audit_failed(e.to_string()))?;
        text.push('\n');
        self.send(text, self.wait).await
    }

    /// Like [`AuditLog::record`], but returns only once the line is written and synced in
    /// either fsync mode (in batch mode, at the next batch): for `begin` lines, which must be
    /// on disk before the work they announce.
    pub async fn record_durable(
        &self,
        caller: Option<&Caller>,
        decision: Decision,
        entry: Entry,
    ) -> Result<(), Error> {
        self.send(line(caller, decision, entry)?, true).await
    }

    /// [`AuditLog::record_durable`] for code outside the async runtime (start-up).
    pub fn record_blocking(&self, decision: Decision, entry: Entry) -> Result<(), Error> {
        let text = line(None, decision, entry)?;
        let Some(tx) = &self.tx else { return Ok(()) };
        let (ack, done) = std::sync::mpsc::channel();
        let ack: Ack = Box::new(move |result| {
            let _ = ack.send(result);
        });
        tx.send(Message::Line(text, Some(ack))).map_err(|_| writer_stopped())?;
        done.recv().map_err(|_| writer_stopped())?.map_err(audit_failed)
    }

    /// Queues `text`; with `wait`, returns once the writer says how writing it went.
    async fn send(&self, text: String, wait: bool) -> Result<(), Error> {
        let Some(tx) = &self.tx else { return Ok(()) };
        if !wait {
            return tx.send(Message::Line(text, None)).map_err(|_| writer_stopped());
        }
        let (ack, done) = oneshot::channel();
        let ack: Ack = Box::new(move |result| {
            let _ = ack.send(result);
        });
        tx.send(Message::Line(text, Some(ack))).map_err(|_| writer_stopped())?;
        done.await.map_err(|_| writer_stopped())?.map_err(audit_failed)
    }

    /// Reopens the audit file at its path (on SIGHUP, the logrotate convention).
    pub fn reopen(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Message::Reopen);
        }
    }
}

impl Entry {
    /// Caps every text field at [`MAX_FIELD_BYTES`].
    fn cap_fields(&mut self) {
        let fields = [
            &mut self.key,
            &mut self.action,
            &mut self.resource,
            &mut self.audience,
            &mut self.principal,
            &mut self.warrant_id,
            &mut self.grant_id,
            &mut self.rule,
            &mut self.reason,
        ];
        for text in fields.into_iter().flatten() {
            if text.len() > MAX_FIELD_BYTES {
                *text = capped(text);
            }
        }
    }
}

/// The line of `entry` with `decision` for `caller`, newline-terminated, fields capped.
fn line(caller: Option<&Caller>, decision: Decision, mut entry: Entry) -> Result<String, Error> {
    entry.decision = Some(decision);
    entry.cap_fields();
    let exe = caller.and_then(|c| c.exe.as_deref()).map(|p| capped(&p.to_string_lossy()));
    let line = Line {
        time: rfc3339_now(),
        uid: caller.map(|c| c.uid),
        gid: caller.map(|c| c.gid),
        pid: caller.map(|c| c.pid),
        exe,
        entry: &entry,
    };
    let mut text = serde_json::to_string(&line).map_err(|e| audit_failed(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// `text` cut to at most [`MAX_FIELD_BYTES`] at a character boundary, saying how long it was.
fn capped(text: &str) -> String {
    if text.len() <= MAX_FIELD_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_FIELD_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…({} bytes)", &text[..end], text.len())
}

fn file_wait(config: &AuditConfig) -> bool {
    config.file.is_some() && config.fsync == Fsync::Line
}

fn writer_stopped() -> Error {
    audit_failed("the audit writer stopped".into())
}

fn audit_failed(reason: String) -> Error {
    Error::Audit(reason)
}

fn open_append(path: &PathBuf) -> Result<File, Error> {
    let io = |source| Error::Io { path: path.clone(), source };
    let mut file =
        OpenOptions::new().read(true).append(true).create(true).mode(0o640).open(path).map_err(io)?;
    cut_torn_tail(&mut file).map_err(io)?;
    Ok(file)
}

/// Cuts a line the previous writer did not finish (a process killed inside its `write`, which
/// the kernel may leave short) back to the last whole line, so that what follows is not glued
/// to it. Its operation's outcome is then absent, as for a process killed before writing it.
fn cut_torn_tail(file: &mut File) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    // Lines are far shorter than this; a tail without a newline in it is cut whole.
    let window = len.min(1 << 20);
    file.seek(SeekFrom::Start(len - window))?;
    let mut tail = Vec::with_capacity(window as usize);
    file.take(window).read_to_end(&mut tail)?;
    if tail.last() == Some(&b'\n') {
        return Ok(());
    }
    let keep = match tail.iter().rposition(|b| *b == b'\n') {
        Some(i) => len - window + i as u64 + 1,
        None => len - window,
    };
    tracing::warn!(
        "audit log: the last line ({} bytes) was torn by a crash; cut back to the last whole line",
        len - keep
    );
    file.set_len(keep)?;
    file.sync_data()
}

type Batch = Vec<(String, Option<Ack>)>;

fn writer(
    rx: mpsc::Receiver<Message>,
    file: Option<(PathBuf, File)>,
    stdout: bool,
    batch_interval: Option<Duration>,
) {
    let mut sink = Sink { file, stdout };
    match batch_interval {
        // Line mode: wake for every line (its answer waits), take all that queued meanwhile.
        None => {
            while let Ok(first) = rx.recv() {
                let mut batch = Vec::new();
                for message in std::iter::once(first).chain(rx.try_iter()) {
                    sink.take(message, &mut batch);
                }
                sink.write(batch);
            }
        }
        // Batch mode: wake on a timer, so senders never pay for waking this thread.
        Some(interval) => loop {
            std::thread::sleep(interval);
            let mut batch = Vec::new();
            let closed = loop {
                match rx.try_recv() {
                    Ok(message) => sink.take(message, &mut batch),
                    Err(mpsc::TryRecvError::Empty) => break false,
                    Err(mpsc::TryRecvError::Disconnected) => break true,
                }
            };
            if !batch.is_empty() {
                sink.write(batch);
            }
            if closed {
                break;
            }
        },
    }
}

/// The audit destinations.
struct Sink {
    file: Option<(PathBuf, File)>,
    stdout: bool,
}

impl Sink {
    /// Adds a line to `batch`, or acts on a control message at once (lines queued before it
    /// are already in `batch` and go to the reopened file, which is only ever fresher).
    fn take(&mut self, message: Message, batch: &mut Batch) {
        match message {
            Message::Line(line, ack) => batch.push((line, ack)),
            Message::Reopen => self.reopen(),
        }
    }

    /// Opens the file at its path again.
    fn reopen(&mut self) {
        if let Some((path, file)) = &mut self.file {
            match open_append(path) {
                Ok(fresh) => {
                    *file = fresh;
                    tracing::info!("audit log reopened: {}", path.display());
                }
                Err(e) => tracing::error!("audit log: reopening failed, still writing the open file: {e}"),
            }
        }
    }

    /// Writes and syncs `batch`, then tells the waiting senders how it went.
    fn write(&mut self, batch: Batch) {
        let text: String = batch.iter().map(|(line, _)| line.as_str()).collect();
        let mut result = Ok(());
        if self.file.as_ref().is_some_and(|(path, file)| !still_at(path, file)) {
            // Moved away or deleted without a SIGHUP: lines must not go to a dead inode.
            self.reopen();
        }
        if let Some((path, f)) = &mut self.file {
            if let Err(e) = append_whole(f, text.as_bytes()) {
                result = Err(format!("{}: {e}", path.display()));
            }
        }
        if self.stdout {
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                result = Err(format!("standard output: {e}"));
            }
        }
        if let Err(e) = &result {
            tracing::error!("audit log: {e}");
        }
        for (_, ack) in batch {
            if let Some(ack) = ack {
                ack(result.clone());
            }
        }
    }
}

/// Whether `path` still names the open `file` (same device and inode).
fn still_at(path: &std::path::Path, file: &File) -> bool {
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(at_path), Ok(open)) => at_path.dev() == open.dev() && at_path.ino() == open.ino(),
        _ => false,
    }
}

/// Appends `bytes` (whole lines) with one `write` and syncs them; on a failed or short write
/// (a full disk) the file is cut back to where it was, so a line is whole or absent.
fn append_whole(file: &mut File, bytes: &[u8]) -> std::io::Result<()> {
    let start = file.metadata()?.len();
    let written = file.write(bytes).and_then(|n| {
        if n == bytes.len() {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!("short write: {n} of {} bytes", bytes.len()),
            ))
        }
    });
    match written.and_then(|()| file.sync_data()) {
        Ok(()) => Ok(()),
        Err(e) => {
            if let Err(cut) = file.set_len(start).and_then(|()| file.sync_data()) {
                tracing::error!("audit log: cutting back a failed write: {cut}");
            }
            Err(e)
        }
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339_now() -> String {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(since.as_secs(), since.subsec_millis())
}

fn rfc3339(secs: u64, millis: u32) -> String {
    // Days to civil date: Howard Hinnant's algorithm.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_torn_last_line_is_cut_when_the_log_is_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":2}\n{\"decision\":\"al").unwrap();
        drop(open_append(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
        // A whole log is left as it is; a torn first line leaves an empty one.
        drop(open_append(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
        std::fs::write(&path, "{\"a\"").unwrap();
        let mut file = open_append(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        // Appends still go to the end.
        std::io::Write::write_all(&mut file, b"{}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");
    }

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_795_000_000, 999), "2026-11-18T11:06:40.999Z");
    }

    #[tokio::test]
    async fn line_mode_returns_after_the_line_is_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let config = AuditConfig { file: Some(path.clone()), fsync: Fsync::Line, ..Default::default() };
        let log = AuditLog::open(&config).unwrap();
        let caller = Caller::for_tests(1000, vec![1000]);
        let entry = Entry { operation: "sign", key: Some("laptop".into()), ..Default::default() };
        log.record(Some(&caller), Decision::Allow, entry).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line["uid"], 1000);
        assert_eq!(line["operation"], "sign");
        assert_eq!(line["decision"], "allow");
        assert_eq!(line["key"], "laptop");
    }

    #[tokio::test]
    async fn batch_mode_does_not_wait_and_the_lines_still_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let config = AuditConfig {
            file: Some(path.clone()),
            fsync: Fsync::Batch,
            batch_interval_ms: 50,
            ..Default::default()
        };
        let log = AuditLog::open(&config).unwrap();
        for _ in 0..10 {
            log.record(None, Decision::Deny, Entry { operation: "request", ..Default::default() })
                .await
                .unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().count() == 10 {
                assert!(text.lines().all(|l| l.contains("\"decision\":\"deny\"")));
                break;
            }
            assert!(std::time::Instant::now() < deadline, "lines did not arrive: {text:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
