//! `arena_tower::ArenaLayer` on a plain `tower::service_fn`, served by
//! hyper (HTTP/1 through hyper-util), without axum. The response body is
//! built in the request's arena (`RequestArena::alloc_bytes`) and sent
//! without a copy; the arena goes back to the pool once hyper has written
//! it.
//!
//! ```text
//! cargo run --example hyper_service                 # http://127.0.0.1:3001
//! cargo run --example hyper_service -- --port 8081  # or PORT=8081
//! cargo run --example hyper_service -- --self-test  # ephemeral port, a few requests, exit
//!
//! curl -s localhost:3001/reverse -d 'one two three'
//! ```
//!
//! In `--self-test` mode it answers `ARENA_EXAMPLE_REQUESTS` concurrent
//! requests (default 50), checks them and prints a summary on stdout.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use allocator_api2::vec::Vec as ArenaVec;
use arena_tower::{ArenaLayer, RequestArena};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tower::{service_fn, ServiceBuilder};
use tracing::Instrument;

/// `POST /reverse`: the words of the body in reverse order. The body, the
/// word list and the answer are all in the request's arena.
async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // The layer polls this future with its request's arena as the current one.
    let arena = RequestArena::current().expect("ArenaLayer serves this request");
    if req.method() != Method::POST || req.uri().path() != "/reverse" {
        let mut res = Response::new(Full::new(Bytes::from_static(
            b"POST /reverse with a text body\n",
        )));
        *res.status_mut() = StatusCode::NOT_FOUND;
        return Ok(res);
    }
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let mut res = Response::new(Full::new(Bytes::from_static(b"bad body\n")));
            *res.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(res);
        }
    };
    let text = arena.alloc_slice_fast(&body);
    let text = String::from_utf8_lossy(text);
    let mut words = ArenaVec::new_in(&arena);
    words.extend(text.split_whitespace());
    let mut out = ArenaVec::with_capacity_in(text.len() + 1, &arena);
    for (i, word) in words.iter().rev().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(word.as_bytes());
    }
    out.push(b'\n');
    // The answer as `Bytes` that point into the arena: no copy on the way
    // out, and the arena is kept until hyper drops them.
    Ok(Response::new(Full::new(arena.alloc_bytes(&out))))
}

/// Accepts connections until `stop` fires.
async fn serve(
    listener: tokio::net::TcpListener,
    layer: ArenaLayer,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(handle));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let svc = TowerToHyperService::new(svc.clone());
        // The connection's span is current when `ArenaService::call` runs,
        // so the arena's release event is reported in it.
        let span = tracing::info_span!("connection", %peer);
        tokio::spawn(
            async move {
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await
                {
                    tracing::debug!("connection closed: {e}");
                }
            }
            .instrument(span),
        );
    }
}

fn port_from_args() -> u16 {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--port" {
            return args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--port needs a number");
        }
    }
    std::env::var("PORT")
        .ok()
        .map(|p| p.parse().expect("PORT must be a number"))
        .unwrap_or(3001)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,arena_tower=debug".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let layer = ArenaLayer::new().max_request_bytes(1 << 20);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);

    if std::env::args().any(|a| a == "--self-test")
        || std::env::var_os("ARENA_EXAMPLE_REQUESTS").is_some()
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(serve(listener, layer.clone(), stop));
        self_test(addr, &layer).await;
        stop_tx.send(true).ok();
        server.await.expect("server task");
        return;
    }

    let addr = SocketAddr::from(([127, 0, 0, 1], port_from_args()));
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    println!("listening on http://{addr} (Ctrl-C to stop)");
    println!("try: curl -s http://{addr}/reverse -d 'one two three'");
    let server = tokio::spawn(serve(listener, layer.clone(), stop));
    tokio::signal::ctrl_c().await.expect("Ctrl-C handler");
    stop_tx.send(true).ok();
    server.await.expect("server task");
    println!("pool at exit: {:?}", layer.pool_stats());
}

/// One request on a fresh HTTP/1 connection.
async fn send(addr: SocketAddr, method: Method, path: &str, body: String) -> (StatusCode, Bytes) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let res = sender.send_request(req).await.expect("response");
    let status = res.status();
    (
        status,
        res.into_body().collect().await.expect("body").to_bytes(),
    )
}

async fn self_test(addr: SocketAddr, layer: &ArenaLayer) {
    let n: usize = std::env::var("ARENA_EXAMPLE_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    println!("self-test: server on http://{addr}");
    let (status, body) = send(addr, Method::POST, "/reverse", "one two three".into()).await;
    println!(
        "POST /reverse -> {status} {}",
        String::from_utf8_lossy(&body).trim_end()
    );
    assert_eq!(
        (status, &body[..]),
        (StatusCode::OK, &b"three two one\n"[..])
    );
    let (status, _) = send(addr, Method::GET, "/nowhere", String::new()).await;
    println!("GET /nowhere -> {status}");
    assert_eq!(status, StatusCode::NOT_FOUND);

    let tasks: Vec<_> = (0..n)
        .map(|i| {
            tokio::spawn(async move {
                let words: Vec<String> = (0..i % 20 + 1).map(|k| format!("w{i}-{k}")).collect();
                let (status, body) = send(addr, Method::POST, "/reverse", words.join(" ")).await;
                assert_eq!(status, StatusCode::OK);
                let expected: Vec<&str> = words.iter().rev().map(String::as_str).collect();
                assert_eq!(String::from_utf8_lossy(&body), expected.join(" ") + "\n");
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("request task");
    }
    println!("{n} concurrent POST /reverse: all answers correct");

    for _ in 0..500 {
        if layer.pool_stats().in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = layer.pool_stats();
    println!(
        "self-test: {} requests, {} pool hits, {} in flight, {} bytes retained (cap {})",
        stats.leases, stats.hits, stats.in_flight, stats.retained_bytes, stats.retained_bytes_cap
    );
    assert_eq!(stats.in_flight, 0);
    assert!(stats.retained_bytes <= stats.retained_bytes_cap);
    println!("self-test passed");
}
