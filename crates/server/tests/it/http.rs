//! The HTTP front's own limits, over a raw socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::testkit::{Server, data_dir};

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off_while_others_are_served() {
    let data = data_dir();
    std::fs::write(
        data.path().join("stormproof.toml"),
        "[server]\nheader_read_timeout = \"1s\"\n",
    )
    .unwrap();
    let server = Server::start_in(data);
    let address = server.url.trim_start_matches("http://");
    let mut slow = TcpStream::connect(address).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    // Only a guard against hanging: the server closes long before.
    slow.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();

    let served = server
        .http
        .get(format!("{}/healthz", server.url))
        .send()
        .unwrap();
    assert_eq!(served.status(), 200);

    let mut rest = Vec::new();
    let read = slow.read_to_end(&mut rest);
    assert!(
        read.is_ok(),
        "the server kept the connection open: {read:?}"
    );
    let text = String::from_utf8_lossy(&rest);
    assert!(
        rest.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected reply: {text}"
    );
}
