//! The server of `scripts/load-test`'s scratch-heavy runs (issue 16):
//! `POST /scratch` does `benches/tower.rs`'s scratch work on its body
//! (split on whitespace, a lower-cased copy of each token, a hashbrown
//! count map, a sort, the top 10 rendered into a `String`).
//!
//! ```text
//! load_server [--port N] [--no-arena]  # 127.0.0.1, port 0 (a free one) by default
//! load_server --print-body             # prints the 4 KB request body and exits
//! ```
//!
//! By default the scratch data lives in the request's arena
//! (`ArenaLayer` + `RequestArena`); `--no-arena` serves the same work on
//! the global allocator (std-style collections, no layer). The global
//! allocator is the system's, or mimalloc when the process runs with
//! `ARENA_BENCH_GLOBAL=mimalloc` (`benches/support/global.rs`). It prints
//! `listening on http://ADDR (...)` once it listens; Ctrl-C or a kill
//! stops it.

use std::net::SocketAddr;

use allocator_api2::alloc::Global;
use arena_tower::{ArenaLayer, RequestArena};
use axum::routing::post;
use axum::Router;

#[path = "../../benches/support/global.rs"]
#[allow(dead_code)] // GLOBAL_VAR is for the bench
mod global;
#[path = "../../benches/support/workloads.rs"]
#[allow(dead_code)] // the bench's other workloads
mod workloads;

#[global_allocator]
static GLOBAL: global::Switch = global::Switch;

async fn scratch(arena: RequestArena, body: String) -> String {
    workloads::scratch_work(&body, &arena)
}

async fn scratch_plain(body: String) -> String {
    workloads::scratch_work(&body, Global)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--print-body") {
        print!("{}", workloads::scratch_body());
        return;
    }
    let port = args.iter().position(|a| a == "--port").map_or(0, |i| {
        let value = args.get(i + 1).and_then(|v| v.parse().ok());
        value.expect("--port needs a number")
    });
    let no_arena = args.iter().any(|a| a == "--no-arena");

    let app = if no_arena {
        Router::new().route("/scratch", post(scratch_plain))
    } else {
        Router::new()
            .route("/scratch", post(scratch))
            .layer(ArenaLayer::new())
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("bind");
    println!(
        "listening on http://{} ({}, {} global allocator)",
        listener.local_addr().expect("address"),
        if no_arena { "no arena" } else { "ArenaLayer" },
        if global::is_mimalloc() {
            "mimalloc"
        } else {
            "system"
        },
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await
        .expect("server");
}
