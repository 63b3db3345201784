//! 100,000 requests in process: the pool stays within its cap and every
//! arena comes back.

use std::convert::Infallible;
use std::time::Instant;

use arena_tower::{ArenaLayer, RequestArena};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

const REQUESTS: u64 = 100_000;
const TASKS: u64 = 4;

async fn handler(req: Request<Empty<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let i: u64 = *req.extensions().get::<u64>().unwrap();
    let arena = RequestArena::current().unwrap();
    // Mostly small requests; every 97th grows its arena past the retention
    // size, so it is shrunk before it is pooled.
    let words = if i.is_multiple_of(97) {
        64 * 1024
    } else {
        1 + i % 200
    };
    let mut v = allocator_api2::vec::Vec::with_capacity_in(words as usize, &arena);
    v.extend((0..words).map(|w| w ^ i));
    arena.alloc(format!("request {i}"));
    if i.is_multiple_of(10) {
        tokio::task::yield_now().await;
    }
    assert!(v.iter().enumerate().all(|(w, &x)| x == w as u64 ^ i));
    let body = arena.alloc_bytes(&i.to_le_bytes());
    Ok(Response::new(Full::new(body)))
}

#[test]
fn hundred_thousand_requests_stay_within_the_cap() {
    let layer = ArenaLayer::new()
        .shards(4)
        .retained_per_shard(16)
        .max_retained_bytes(1 << 20)
        .max_retained_arena_bytes(64 * 1024);
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let layer = layer.clone();
                tokio::spawn(async move {
                    let mut svc = ServiceBuilder::new()
                        .layer(layer.clone())
                        .service(service_fn(handler));
                    for k in 0..REQUESTS / TASKS {
                        let i = k * TASKS + t;
                        let mut req = Request::new(Empty::new());
                        req.extensions_mut().insert(i);
                        let res = svc.ready().await.unwrap().call(req).await.unwrap();
                        let bytes = res.into_body().collect().await.unwrap().to_bytes();
                        assert_eq!(bytes[..], i.to_le_bytes());
                        if k % 1000 == 0 {
                            let stats = layer.pool_stats();
                            assert!(
                                stats.retained_bytes <= stats.retained_bytes_cap,
                                "{stats:?}"
                            );
                            assert!(stats.in_flight <= TASKS as usize, "{stats:?}");
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    drop(rt);
    let stats = layer.pool_stats();
    assert_eq!(stats.leases, REQUESTS);
    assert_eq!(stats.in_flight, 0, "{stats:?}");
    assert_eq!(stats.retained_bytes_cap, 1 << 20);
    assert!(
        stats.retained_bytes <= stats.retained_bytes_cap,
        "{stats:?}"
    );
    // Shards, plus the caches of the two workers and this thread.
    assert!(stats.retained_arenas <= 4 * 16 + 3 * 4, "{stats:?}");
    assert!(
        stats.hits >= REQUESTS * 9 / 10,
        "the pool serves most leases: {stats:?}"
    );
    eprintln!("100,000 requests in {:?}: {stats:?}", started.elapsed());
}

#[test]
fn the_default_cap_is_64_mib_at_any_core_count() {
    for shards in [1, 4, 16, 64, 1024] {
        let layer = ArenaLayer::new().shards(shards);
        assert_eq!(
            layer.pool_stats().retained_bytes_cap,
            64 << 20,
            "{shards} shards"
        );
    }
}

#[test]
fn snapshots_stay_within_the_cap_while_a_threads_slot_is_taken_over() {
    // Five layers on this thread, four slots: every round, the slot of `a`
    // (the least recently used) is taken over and its arenas go to `a`'s
    // shard while another thread reads `a`'s stats.
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let cap = 64 * 1024;
    let a = ArenaLayer::new().max_retained_bytes(cap).shards(1);
    let others: Vec<ArenaLayer> = (0..4).map(|_| ArenaLayer::new()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (a, stop) = (a.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut worst = 0;
            while !stop.load(Ordering::Relaxed) {
                let stats = a.pool_stats();
                if stats.retained_bytes > stats.retained_bytes_cap {
                    worst = worst.max(stats.retained_bytes);
                }
            }
            worst
        })
    };
    let rounds = if cfg!(miri) { 10 } else { 5_000 };
    for _ in 0..rounds {
        let leases: Vec<_> = (0..4).map(|_| a.lease()).collect();
        for lease in &leases {
            lease.alloc_slice_fill_copy(12_000, 1u8);
        }
        drop(leases);
        for other in &others {
            drop(other.lease());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let worst = watcher.join().unwrap();
    assert_eq!(
        worst, 0,
        "retained_bytes reached {worst} over the cap {cap}"
    );
    assert!(a.pool_stats().retained_bytes <= cap);
}
