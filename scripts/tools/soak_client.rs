//! The load client of `scripts/soak` (`cargo build --release --bin
//! soak_client`): a bounded mix of normal, slow, disconnecting and
//! panicking requests against a running `axum_server` example on loopback. It checks every answer, samples the server's
//! resident memory (from `/proc/<pid>/status`) and, at the end, the pool's
//! counters (`GET /stats`), and prints one verdict line per check.
//!
//! ```text
//! soak_client <addr> <server pid> [requests] [concurrency]
//! ```
//!
//! Exits 0 only if every check passed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

#[derive(Default)]
struct Counts {
    normal: AtomicU64,
    slow: AtomicU64,
    disconnected: AtomicU64,
    panicked: AtomicU64,
    wrong: AtomicU64,
}

/// One request on its own HTTP/1 connection; `None` for the body when the
/// client hangs up after the first chunk.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: String,
    hang_up: bool,
) -> Option<(StatusCode, Bytes)> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    let conn = tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .ok()?;
    let res = sender.send_request(req).await.ok()?;
    let status = res.status();
    if hang_up {
        let mut body = res.into_body();
        let _first = body.frame().await;
        drop(body);
        drop(sender);
        conn.abort(); // the client goes away mid-stream
        return Some((status, Bytes::new()));
    }
    let bytes = res.into_body().collect().await.ok()?.to_bytes();
    Some((status, bytes))
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn one(addr: SocketAddr, i: u64, counts: &Counts) {
    match i % 20 {
        // Slow: completion order differs from start order.
        0..=1 => {
            let ms = 5 + i % 40;
            let ok = matches!(
                send(addr, "GET", &format!("/slow/{ms}"), String::new(), false).await,
                Some((StatusCode::OK, b)) if b == format!("slept {ms} ms").as_bytes()
            );
            bump(ok, &counts.slow, counts);
        }
        // A client that disconnects mid-stream.
        2 => {
            let ok = matches!(
                send(addr, "GET", "/stream/50", String::new(), true).await,
                Some((StatusCode::OK, _))
            );
            bump(ok, &counts.disconnected, counts);
        }
        // A handler that panics.
        3 => {
            let ok = matches!(
                send(addr, "GET", "/panic", String::new(), false).await,
                Some((StatusCode::INTERNAL_SERVER_ERROR, _))
            );
            bump(ok, &counts.panicked, counts);
        }
        // Normal: a request-unique text with a known answer.
        _ => {
            let reps = i % 9 + 2; // at least 2, so "tail" never ties
            let text = format!("w{i} ").repeat(reps as usize) + "tail";
            let body = format!(r#"{{"text": "{text}", "top": 1}}"#);
            let ok = match send(addr, "POST", "/words", body, false).await {
                Some((StatusCode::OK, b)) => {
                    let expected = format!(
                        r#"{{"words":{},"distinct":2,"top":[["w{i}",{reps}]]}}"#,
                        reps + 1
                    );
                    b == expected.as_bytes()
                }
                _ => false,
            };
            bump(ok, &counts.normal, counts);
        }
    }
}

fn bump(ok: bool, kind: &AtomicU64, counts: &Counts) {
    if ok {
        kind.fetch_add(1, Ordering::Relaxed);
    } else {
        counts.wrong.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: SocketAddr = args
        .first()
        .expect("usage: soak_client <addr> <server pid> [requests] [concurrency]")
        .parse()
        .expect("an address like 127.0.0.1:3000");
    let pid: u32 = args
        .get(1)
        .expect("the server's pid")
        .parse()
        .expect("a pid");
    let total: u64 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let concurrency: u64 = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(32);

    let counts = Arc::new(Counts::default());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut samples: Vec<(u64, u64)> = Vec::new(); // (requests done, RSS KiB)
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (counts, next) = (Arc::clone(&counts), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    one(addr, i, &counts).await;
                }
            })
        })
        .collect();
    let sampler = {
        let next = Arc::clone(&next);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while next.load(Ordering::Relaxed) < total {
                if let Some(rss) = rss_kib(pid) {
                    samples.push((next.load(Ordering::Relaxed).min(total), rss));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        })
    };
    for w in workers {
        w.await.expect("worker");
    }
    samples.extend(sampler.await.expect("sampler"));
    let elapsed = started.elapsed();

    // The pool after the load: nothing in flight (disconnects and panics
    // included), retained bytes under the cap.
    let mut in_flight = u64::MAX;
    let mut stats = String::new();
    for _ in 0..100 {
        if let Some((StatusCode::OK, b)) = send(addr, "GET", "/stats", String::new(), false).await {
            stats = String::from_utf8_lossy(&b).into_owned();
            let v: serde_json::Value = serde_json::from_slice(&b).expect("stats JSON");
            // The /stats request itself holds one arena.
            in_flight = v["in_flight"]
                .as_u64()
                .unwrap_or(u64::MAX)
                .saturating_sub(1);
            let retained = v["retained_bytes"].as_u64().unwrap_or(u64::MAX);
            let cap = v["retained_bytes_cap"].as_u64().unwrap_or(0);
            if in_flight == 0 && retained <= cap {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let c = &counts;
    let wrong = c.wrong.load(Ordering::Relaxed);
    println!(
        "soak: {total} requests in {:.1}s ({:.0}/s): {} normal, {} slow, {} disconnected, {} panicked, {wrong} wrong",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        c.normal.load(Ordering::Relaxed),
        c.slow.load(Ordering::Relaxed),
        c.disconnected.load(Ordering::Relaxed),
        c.panicked.load(Ordering::Relaxed),
    );
    let mut pass = true;
    let mut verdict = |name: &str, ok: bool, detail: String| {
        println!("{} {name}: {detail}", if ok { "PASS" } else { "FAIL" });
        pass &= ok;
    };
    verdict(
        "every response correct",
        wrong == 0,
        format!("{wrong} wrong"),
    );
    // Flat memory after warm-up: the RSS at the end within 10% (+4 MiB) of
    // the RSS once a quarter of the requests were done.
    let warm = samples
        .iter()
        .find(|(done, _)| *done >= total / 4)
        .map(|s| s.1);
    let end = samples.last().map(|s| s.1);
    match (warm, end) {
        (Some(warm), Some(end)) => verdict(
            "resident memory flat after warm-up",
            end <= warm + warm / 10 + 4096,
            format!("{warm} KiB after warm-up, {end} KiB at the end"),
        ),
        _ => verdict(
            "resident memory flat after warm-up",
            false,
            "no RSS samples".into(),
        ),
    }
    verdict("nothing in flight at the end", in_flight == 0, stats);
    std::process::exit(if pass { 0 } else { 1 });
}
