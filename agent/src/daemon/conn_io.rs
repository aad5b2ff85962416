//! A connection's socket as hyper sees it: writes that make no progress for `write_timeout_ms`
//! (a client that does not read its answers) fail and close the connection, and hyper's own
//! answers to requests it cannot parse are replaced by audited JSON ones
//! ([`HyperAnswer`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio::time::Sleep;

use super::early_refusals::HyperAnswer;
use super::peer::Caller;
use super::state::Daemon;

/// A served connection's socket.
pub struct ConnectionIo {
    stream: UnixStream,
    write_timeout: Duration,
    /// Running while a write waits on the client.
    stalled: Option<Pin<Box<Sleep>>>,
    /// Who is on the other end, and what a replaced answer needs.
    context: Arc<AnswerContext>,
    replacing: Replacing,
}

/// What replacing one of hyper's answers needs.
pub struct AnswerContext {
    /// The daemon (its audit log).
    pub daemon: Arc<Daemon>,
    /// The peer.
    pub caller: Caller,
    /// The header bytes hyper reads, for the message of a 431.
    pub max_header_bytes: usize,
}

type Pending = Pin<Box<dyn Future<Output = Vec<u8>> + Send>>;

/// Where the replacement of one of hyper's answers stands.
enum Replacing {
    /// Nothing is being replaced.
    No,
    /// The refusal is being audited; then the JSON answer is written in place of hyper's
    /// `hyper_len` bytes.
    Auditing { answer: Pending, hyper_len: usize },
    /// The JSON answer is being written; `done` bytes of it are.
    Writing { bytes: Vec<u8>, done: usize, hyper_len: usize },
}

impl ConnectionIo {
    /// Wraps `stream` of `context.caller`.
    pub fn new(stream: UnixStream, write_timeout: Duration, context: AnswerContext) -> Self {
        Self { stream, write_timeout, stalled: None, context: Arc::new(context), replacing: Replacing::No }
    }

    /// `result` of a write: progress ends a stall; a stall longer than the write timeout is an
    /// error, which ends the connection.
    fn guard<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.stalled = None;
            return result;
        }
        let timeout = self.write_timeout;
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing of its answer for {} ms", timeout.as_millis()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Drives the replacement of one of hyper's answers; done, it reports hyper's bytes as
    /// written.
    fn poll_replace(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            match std::mem::replace(&mut self.replacing, Replacing::No) {
                // Only called while replacing; nothing written.
                Replacing::No => return Poll::Ready(Ok(0)),
                Replacing::Auditing { mut answer, hyper_len } => match answer.as_mut().poll(cx) {
                    Poll::Pending => {
                        self.replacing = Replacing::Auditing { answer, hyper_len };
                        return Poll::Pending;
                    }
                    Poll::Ready(bytes) => self.replacing = Replacing::Writing { bytes, done: 0, hyper_len },
                },
                Replacing::Writing { bytes, done, hyper_len } => {
                    if done == bytes.len() {
                        return Poll::Ready(Ok(hyper_len));
                    }
                    let polled = Pin::new(&mut self.stream).poll_write(cx, &bytes[done..]);
                    match self.guard(cx, polled) {
                        Poll::Pending => {
                            self.replacing = Replacing::Writing { bytes, done, hyper_len };
                            return Poll::Pending;
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                        Poll::Ready(Ok(n)) => {
                            self.replacing = Replacing::Writing { bytes, done: done + n, hyper_len }
                        }
                    }
                }
            }
        }
    }
}

impl AsyncRead for ConnectionIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnectionIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if matches!(this.replacing, Replacing::No) {
            match HyperAnswer::find(buf) {
                // Earlier answers first, as they are.
                Some((start, _)) if start > 0 => {
                    let polled = Pin::new(&mut this.stream).poll_write(cx, &buf[..start]);
                    return this.guard(cx, polled);
                }
                Some((_, answer)) => {
                    let c = this.context.clone();
                    let answer = Box::pin(async move {
                        answer.answer(c.daemon.clone(), c.caller.clone(), c.max_header_bytes).await
                    });
                    this.replacing = Replacing::Auditing { answer, hyper_len: buf.len() };
                }
                None => {
                    let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
                    return this.guard(cx, polled);
                }
            }
        }
        this.poll_replace(cx)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_flush(cx);
        this.guard(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_shutdown(cx);
        this.guard(cx, polled)
    }
}
