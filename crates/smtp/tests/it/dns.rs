//! A DNS server on loopback that knows a handful of TXT records, so the
//! checks run against real DNS wire traffic and never reach the network.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const TYPE_TXT: u16 = 16;
const RCODE_NXDOMAIN: u16 = 3;

/// How the stub treats queries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers TXT queries for its records, NXDOMAIN for unknown names.
    Answer,
    /// Reads queries and never answers: a resolver timing out.
    Silent,
}

/// A running stub; stops when dropped.
pub struct Stub {
    pub address: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Stub {
    /// Serves `records` (name → TXT strings) on a random UDP port.
    pub fn start(records: &[(String, String)], mode: Mode) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind stub");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let address = socket.local_addr().expect("address");
        let mut zone: HashMap<String, Vec<String>> = HashMap::new();
        for (name, text) in records {
            zone.entry(name.to_ascii_lowercase())
                .or_default()
                .push(text.clone());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while !stopped.load(Ordering::Relaxed) {
                let Ok((len, from)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                if mode == Mode::Silent {
                    continue;
                }
                if let Some(reply) = answer(&buffer[..len], &zone) {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        Self { address, stop }
    }

    /// An address where nothing listens: a resolver that is down.
    pub fn down() -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.local_addr().expect("address")
    }
}

/// The reply to one query: its TXT records, an empty NOERROR for other
/// types of a known name, NXDOMAIN for unknown names.
fn answer(query: &[u8], zone: &HashMap<String, Vec<String>>) -> Option<Vec<u8>> {
    let header = query.get(..12)?;
    let flags = u16::from_be_bytes([header[2], header[3]]);
    // Name, then type and class.
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question = query.get(12..at + 4)?;
    let name = labels.join(".");

    let texts = zone.get(&name);
    let answers: &[String] = match texts {
        Some(texts) if qtype == TYPE_TXT => texts,
        _ => &[],
    };
    let rcode = if texts.is_none() { RCODE_NXDOMAIN } else { 0 };
    // QR, the query's opcode and RD, AA, RA, and the response code.
    let reply_flags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode;

    let mut reply = Vec::with_capacity(512);
    reply.extend_from_slice(&header[..2]);
    reply.extend_from_slice(&reply_flags.to_be_bytes());
    reply.extend_from_slice(&1u16.to_be_bytes());
    reply.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(question);
    for text in answers {
        // A TXT record is a series of strings of at most 255 bytes each.
        let mut rdata = Vec::new();
        for chunk in text.as_bytes().chunks(255) {
            rdata.push(chunk.len() as u8);
            rdata.extend_from_slice(chunk);
        }
        reply.extend_from_slice(&[0xc0, 0x0c]); // the name in the question
        reply.extend_from_slice(&TYPE_TXT.to_be_bytes());
        reply.extend_from_slice(&1u16.to_be_bytes()); // IN
        reply.extend_from_slice(&60u32.to_be_bytes());
        reply.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        reply.extend_from_slice(&rdata);
    }
    Some(reply)
}
