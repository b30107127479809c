//! Knowing whether a session is inside a transaction, for free.
//!
//! # Why read the stream
//!
//! The server reports the session's transaction state at the end of every
//! exchange: each ReadyForQuery message carries a status byte, `I` (idle),
//! `T` (in a transaction block) or `E` (in a failed one). tokio-postgres
//! reads it and keeps it to itself. Guessing it from the statements sent
//! (a hand-written `BEGIN`, a function that commits, `COMMIT AND CHAIN`)
//! would be unreliable, and asking the server on every return costs a round
//! trip. So the manager opens the socket itself and hands the driver a
//! [`Sniffed`] stream, which watches the bytes coming from the server: it
//! steps over messages by their length headers (a few comparisons per
//! message, no copy, no allocation) and records the last ReadyForQuery's
//! status in a [`SessionStatus`] the pooled connection shares.
//!
//! A message other than ReadyForQuery and the asynchronous ones (notices,
//! parameter changes, notifications) marks the session busy until the next
//! ReadyForQuery: a connection returned between a statement's last row and
//! its ReadyForQuery is not known to be idle, and is treated as not.
//!
//! This needs the bytes in the clear: over TLS, or when the driver picks
//! among several hosts, the manager lets the driver connect and the status
//! is [`Unseen`](TxStatus::Unseen) (see `PgManager`'s docs for what the
//! pool does then).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The transaction state of a session, as its last ReadyForQuery said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxStatus {
    /// Not in a transaction block.
    Idle,
    /// In a transaction block.
    InTransaction,
    /// In a failed transaction block (statements fail with `25P02` until
    /// it ends).
    Failed,
    /// The server is answering a request: the state is not known until its
    /// ReadyForQuery.
    Busy,
    /// The stream is not watched (TLS, several hosts).
    Unseen,
}

const UNSEEN: u8 = 0;
const BUSY: u8 = 1;

/// No BackendKeyData seen.
const NO_KEY: i64 = -1;

/// The status a [`Sniffed`] stream records, shared with the pooled
/// connection.
#[derive(Debug)]
pub(crate) struct SessionStatus {
    status: AtomicU8,
    /// The process id the session's BackendKeyData named (the cancel
    /// key's), or [`NO_KEY`]. A server sends its own backend's; a pooler
    /// sends one of its own making, which is how one is recognised.
    key_pid: AtomicI64,
}

impl SessionStatus {
    fn with(status: u8) -> Arc<SessionStatus> {
        Arc::new(SessionStatus {
            status: AtomicU8::new(status),
            key_pid: AtomicI64::new(NO_KEY),
        })
    }

    /// A status nobody watches: always [`TxStatus::Unseen`].
    pub(crate) fn unseen() -> Arc<SessionStatus> {
        SessionStatus::with(UNSEEN)
    }

    /// A status a [`Sniffed`] stream will keep: busy until the server's
    /// first ReadyForQuery.
    fn watched() -> Arc<SessionStatus> {
        SessionStatus::with(BUSY)
    }

    /// The process id of the session's cancel key, if the stream was
    /// watched when the server sent it.
    pub(crate) fn key_pid(&self) -> Option<i32> {
        // Relaxed: written once during the handshake, which completed
        // before anyone asks.
        let pid = self.key_pid.load(Ordering::Relaxed);
        (pid != NO_KEY).then_some(pid as i32)
    }

    pub(crate) fn get(&self) -> TxStatus {
        // Acquire pairs with the stream's Release store: a statement future
        // that completed saw the bytes the stream parsed before handing
        // them to the driver.
        match self.status.load(Ordering::Acquire) {
            b'I' => TxStatus::Idle,
            b'T' => TxStatus::InTransaction,
            b'E' => TxStatus::Failed,
            UNSEEN => TxStatus::Unseen,
            _ => TxStatus::Busy,
        }
    }
}

/// A stream from the server, watched for ReadyForQuery.
#[derive(Debug)]
pub(crate) struct Sniffed<S> {
    inner: S,
    status: Arc<SessionStatus>,
    parser: Parser,
}

impl<S> Sniffed<S> {
    /// Watches `inner` from its first byte (the server's answer to the
    /// startup message; no TLS in between).
    pub(crate) fn new(inner: S) -> (Self, Arc<SessionStatus>) {
        let status = SessionStatus::watched();
        let sniffed = Sniffed {
            inner,
            status: status.clone(),
            parser: Parser::default(),
        };
        (sniffed, status)
    }
}

/// Steps over backend messages (a type byte, a 4-byte big-endian length
/// that counts itself, the body), across reads.
#[derive(Debug, Default)]
struct Parser {
    header: [u8; 5],
    /// Bytes of `header` read so far; 5 once a message's body is being
    /// stepped over.
    have: usize,
    /// Body bytes of the current message not read yet.
    remaining: usize,
    /// The first body bytes of a BackendKeyData message (the process id).
    key: [u8; 4],
    /// The process id, once all of `key` was read.
    key_pid: Option<i32>,
}

impl Parser {
    /// Reads `bytes`; returns the status they leave the session in, if they
    /// change it.
    fn feed(&mut self, mut bytes: &[u8]) -> Option<u8> {
        let mut status = None;
        while !bytes.is_empty() {
            if self.have < 5 {
                let take = (5 - self.have).min(bytes.len());
                self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
                self.have += take;
                bytes = &bytes[take..];
                if self.have < 5 {
                    break;
                }
                let len = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]);
                self.remaining = (len as usize).saturating_sub(4);
                match self.header[0] {
                    // ReadyForQuery: its one body byte is the status.
                    b'Z' => {}
                    // Notice, parameter status, notification: may come at
                    // any time, even while idle.
                    b'N' | b'S' | b'A' => {}
                    _ => status = Some(BUSY),
                }
            } else {
                if self.header[0] == b'Z' && self.remaining == 1 {
                    status = Some(bytes[0]);
                }
                if self.header[0] == b'K' {
                    self.read_key(bytes);
                }
                let skip = self.remaining.min(bytes.len());
                self.remaining -= skip;
                bytes = &bytes[skip..];
            }
            if self.have == 5 && self.remaining == 0 {
                self.have = 0;
            }
        }
        status
    }

    /// Keeps the process id from the body of a BackendKeyData message, of
    /// which `bytes` come next.
    fn read_key(&mut self, bytes: &[u8]) {
        let len = u32::from_be_bytes([
            self.header[1],
            self.header[2],
            self.header[3],
            self.header[4],
        ]) as usize;
        let offset = len.saturating_sub(4) - self.remaining;
        for (at, byte) in (offset..4).zip(bytes) {
            self.key[at] = *byte;
            if at == 3 {
                self.key_pid = Some(i32::from_be_bytes(self.key));
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniffed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            if let Some(status) = this.parser.feed(&buf.filled()[before..]) {
                this.status.status.store(status, Ordering::Release);
            }
            if let Some(pid) = this.parser.key_pid.take() {
                this.status.key_pid.store(i64::from(pid), Ordering::Relaxed);
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniffed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn follows_ready_for_query_across_any_split() {
        let mut stream = Vec::new();
        stream.extend(message(b'C', b"BEGIN\0"));
        stream.extend(message(b'Z', b"T"));
        stream.extend(message(b'D', &[0; 300]));
        stream.extend(message(b'N', b"notice"));
        stream.extend(message(b'E', b"error"));
        stream.extend(message(b'Z', b"E"));
        stream.extend(message(b'S', b"TimeZone\0UTC\0"));
        // Each prefix, fed in chunks of every size, ends in the state its
        // last complete message says.
        for chunk in 1..=stream.len() {
            let mut parser = Parser::default();
            let mut last = BUSY;
            for part in stream.chunks(chunk) {
                if let Some(status) = parser.feed(part) {
                    last = status;
                }
            }
            assert_eq!(last, b'E', "chunks of {chunk}");
        }
        let mut parser = Parser::default();
        assert_eq!(parser.feed(&message(b'C', b"BEGIN\0")), Some(BUSY));
        assert_eq!(parser.feed(&message(b'Z', b"T")), Some(b'T'));
        assert_eq!(
            parser.feed(&message(b'N', b"x")),
            None,
            "a notice changes nothing"
        );
        assert_eq!(parser.feed(&message(b'A', b"x")), None);
        let z = message(b'Z', b"I");
        assert_eq!(
            parser.feed(&z[..5]),
            None,
            "the status byte is not read yet"
        );
        assert_eq!(parser.feed(&z[5..]), Some(b'I'));
    }

    #[test]
    fn reads_the_cancel_keys_process_id_across_any_split() {
        let mut stream = message(b'S', b"TimeZone\0UTC\0");
        let mut key = 0x1234_5678i32.to_be_bytes().to_vec();
        key.extend_from_slice(&[9, 9, 9, 9]);
        stream.extend(message(b'K', &key));
        stream.extend(message(b'Z', b"I"));
        for chunk in 1..=stream.len() {
            let mut parser = Parser::default();
            let mut pid = None;
            for part in stream.chunks(chunk) {
                parser.feed(part);
                pid = pid.or(parser.key_pid.take());
            }
            assert_eq!(pid, Some(0x1234_5678), "chunks of {chunk}");
        }
    }
}
