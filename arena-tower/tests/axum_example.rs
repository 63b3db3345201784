//! The workspace's example server as a user meets it: starts
//! `examples/axum_server.rs` (`cargo run --example axum_server -- --port 0`
//! in the workspace root), reads its address from the `listening on
//! http://...` line, sends it requests of every kind, checks the answers
//! and the pool's counters (`GET /stats`), then kills it. (The example
//! belongs to the workspace's root package; this file is left out of the
//! published crate.)

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// The example server, killed on drop; its stderr (logs, cargo's errors)
/// is printed if the test fails.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Option<JoinHandle<String>>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO"))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .args([
                "run",
                "--quiet",
                "-p",
                "arena-b-workspace",
                "--example",
                "axum_server",
                "--",
            ])
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("PORT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cargo runs");
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            stderr.read_to_string(&mut text).ok();
            text
        });
        // Every stdout line, read to the end so the server never blocks on
        // a full pipe.
        let stdout = child.stdout.take().expect("stdout");
        let (lines, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.send(line).ok();
            }
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: Some(stderr),
        };
        // Generous: the first run may compile the example.
        let line = loop {
            match rx.recv_timeout(Duration::from_secs(600)) {
                Ok(line) if line.starts_with("listening on http://") => break line,
                Ok(_) => continue,
                Err(e) => panic!("no `listening on` line from axum_server: {e}"),
            }
        };
        let addr = line["listening on http://".len()..]
            .split_whitespace()
            .next()
            .expect("an address");
        server.addr = addr.parse().expect("a socket address");
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        let stderr = self.stderr.take().and_then(|t| t.join().ok());
        if std::thread::panicking() {
            eprintln!("axum_server stderr:\n{}", stderr.unwrap_or_default());
        }
    }
}

/// One request on a fresh HTTP/1 connection.
async fn send(addr: SocketAddr, method: &str, path: &str, body: &str) -> (StatusCode, Bytes) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let res = sender.send_request(req).await.expect("response");
    let status = res.status();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", String::from_utf8_lossy(body));
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `POST /words` with a known text gets the known counts.
async fn words_answer_the_known_text(addr: SocketAddr) {
    let text = r#"{"text": "The cat and the hat and THE bat", "top": 2}"#;
    let (status, body) = send(addr, "POST", "/words", text).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        &body[..],
        br#"{"words":8,"distinct":5,"top":[["the",3],["and",2]]}"#
    );
}

/// Concurrent `POST /words` requests, each with its own text and answer.
const CONCURRENT: usize = 50;

#[test]
fn every_route_answers_and_every_arena_comes_back() {
    let server = Server::start(&["--port", "0"]);
    let addr = server.addr;
    runtime().block_on(async move {
        words_answer_the_known_text(addr).await;

        let (status, body) = send(addr, "POST", "/sum", "[3, 1, 4, 1, 5, 9, 2, 6]").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json_of(&body), json!({"count": 8, "sum": 31, "median": 4}));
        let max = i64::MAX;
        let (status, _) = send(addr, "POST", "/sum", &format!("[{max}, {max}, 1]")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "no wrapped sum");

        let (status, body) = send(addr, "GET", "/slow/20", "").await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"slept 20 ms"[..]));

        let (status, body) = send(addr, "GET", "/stream/3", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"chunk 0\nchunk 1\nchunk 2\n");

        let (status, _) = send(addr, "GET", "/panic", "").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

        let (status, body) = send(addr, "POST", "/words", "not json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");

        let tasks: Vec<_> = (0..CONCURRENT)
            .map(|i| {
                tokio::spawn(async move {
                    let (reps, gammas) = (i % 5 + 1, i % 7 + 2);
                    let text = format!("alpha beta {} ", "gamma ".repeat(gammas)).repeat(reps);
                    let req = json!({ "text": text, "top": 1 }).to_string();
                    let (status, body) = send(addr, "POST", "/words", &req).await;
                    assert_eq!(status, StatusCode::OK);
                    let out = json_of(&body);
                    assert_eq!(out["top"], json!([["gamma", reps * gammas]]), "{out}");
                    assert_eq!(out["words"], json!(reps * (2 + gammas)), "{out}");
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("request task");
        }

        // Every arena comes back once its response is done; the /stats
        // request itself holds one.
        let sent = CONCURRENT as u64 + 6;
        let mut stats = Value::Null;
        for _ in 0..500 {
            let (status, body) = send(addr, "GET", "/stats", "").await;
            assert_eq!(status, StatusCode::OK);
            stats = json_of(&body);
            if stats["in_flight"] == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let n = |key: &str| {
            stats[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{key}: {stats}"))
        };
        assert_eq!(n("in_flight"), 1, "{stats}");
        assert!(n("leases") > sent, "{stats}");
        assert_eq!(n("hits") + n("misses"), n("leases"), "{stats}");
        assert!(n("hits") > 0, "{stats}");
        assert!(n("retained_bytes") <= n("retained_bytes_cap"), "{stats}");
    });
}

/// `--no-arena` (`scripts/load-test`): the same `/words`, nothing else.
#[test]
fn no_arena_serves_the_same_words() {
    let server = Server::start(&["--port", "0", "--no-arena"]);
    let addr = server.addr;
    runtime().block_on(async move {
        words_answer_the_known_text(addr).await;
        let (status, _) = send(addr, "POST", "/words", "not json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = send(addr, "GET", "/stats", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    });
}
