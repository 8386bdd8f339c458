//! A webhook receiver on loopback, standing in for a security team's alert
//! endpoint: it records every JSON body POSTed to it with the instant it
//! arrived, and can be told to answer 500 for a while, as a receiver that
//! is down would. `stormproof demo storm-0558` uses it; so do the
//! integration tests and the alert-latency bench, which include this file.
//!
//! One thread accepts, one thread serves each connection, with keep-alive,
//! so a client's pooled connection is never closed under it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The largest body accepted; an alert is a few hundred bytes.
const MAX_BODY: usize = 1 << 20;

/// How long a connection may sit idle before the receiver closes it.
const IDLE: Duration = Duration::from_secs(60);

/// One POST the receiver accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// When its body had been read in full.
    pub at: Instant,
    /// The body, parsed (`Value::Null` if it was not JSON).
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    arrived: Condvar,
    failing: AtomicBool,
    refused: AtomicUsize,
    stop: AtomicBool,
}

impl Shared {
    fn received(&self) -> MutexGuard<'_, Vec<Received>> {
        // A thread that panicked holding the lock left a whole Vec behind.
        self.received.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running receiver; stops accepting when dropped.
pub struct HookReceiver {
    /// The URL to give `serve --alert-webhook`.
    pub url: String,
    address: SocketAddr,
    shared: Arc<Shared>,
}

impl HookReceiver {
    /// Listens on a free port of 127.0.0.1.
    pub fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        std::thread::Builder::new()
            .name("webhook-receiver".into())
            .spawn(move || accept(&listener, &accepting))?;
        Ok(Self {
            url: format!("http://{address}/alerts"),
            address,
            shared,
        })
    }

    /// While `failing`, every POST is answered 500 and not recorded.
    #[allow(dead_code)] // the demo's receiver never fails; the tests' does
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    /// How many POSTs were answered 500.
    #[allow(dead_code)] // as above
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Every body accepted so far, in arrival order.
    pub fn bodies(&self) -> Vec<Value> {
        self.shared
            .received()
            .iter()
            .map(|r| r.body.clone())
            .collect()
    }

    /// The first accepted POST whose body satisfies `matches`, waiting up to
    /// `timeout` for it to arrive.
    pub fn wait_for(
        &self,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Option<Received> {
        let deadline = Instant::now() + timeout;
        let mut received = self.shared.received();
        loop {
            if let Some(found) = received.iter().find(|r| matches(&r.body)) {
                return Some(found.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            received = self
                .shared
                .arrived
                .wait_timeout(received, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for HookReceiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
    }
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let serving = shared.clone();
        let _ = std::thread::Builder::new()
            .name("webhook-connection".into())
            .spawn(move || serve(stream, &serving));
    }
}

/// Serves requests on one connection until the client closes it.
fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.trim().eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(usize::MAX);
            }
        }
        if length > MAX_BODY {
            writer.write_all(
                b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )?;
            return Ok(());
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let at = Instant::now();
        let status = if !request_line.starts_with("POST ") {
            "405 Method Not Allowed"
        } else if shared.failing.load(Ordering::SeqCst) {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            "500 Internal Server Error"
        } else {
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            shared.received().push(Received { at, body });
            shared.arrived.notify_all();
            "200 OK"
        };
        writer.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes())?;
    }
}
