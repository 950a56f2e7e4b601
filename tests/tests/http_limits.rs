//! What one client can make the server hold: headers sent slowly or never,
//! idle keep-alive connections, bodies trickled in, and more connections
//! than the server serves at once. Raw TCP, to be the client that
//! misbehaves.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use coffer_e2e::Server;

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection; returns what it sent and
/// how long it took.
fn read_to_close(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut text = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buffer[..n]),
            Err(error) => panic!("the server kept the connection open: {error}"),
        }
    }
    (
        String::from_utf8_lossy(&text).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "[http]\nheader_timeout_ms = 500\n");
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (_, waited) = read_to_close(&mut stream);
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "[http]\nheader_timeout_ms = 500\n");
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (answer, waited) = read_to_close(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
}

#[tokio::test]
async fn a_body_trickled_in_past_the_request_timeout_is_answered_503() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "[http]\nrequest_timeout_ms = 700\n");
    let mut stream = connect(&server);
    let head = format!(
        "PUT /v1/secrets/app/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"value\":",
        server.token
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"timeout\""), "{answer}");
    let (status, _) = server.get("app/slow").await;
    assert_eq!(
        status,
        reqwest::StatusCode::NOT_FOUND,
        "nothing was written"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        "[http]\nmax_connections = 2\nheader_timeout_ms = 30000\n",
    );
    // Two clients hold the two connections without sending anything.
    let first = connect(&server);
    let second = connect(&server);
    std::thread::sleep(Duration::from_millis(200));
    let mut third = connect(&server);
    third
        .set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    third
        .write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buffer = [0u8; 64];
    assert!(
        third.read(&mut buffer).is_err(),
        "a third connection was served while two were held"
    );
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (answer, _) = read_to_close(&mut third);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(second);
}
