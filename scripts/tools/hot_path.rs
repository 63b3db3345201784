//! The allocation hot paths as separate, non-inlined functions, for
//! instruction counting with callgrind (`scripts/callgrind-hot-path`).
//! Timings of paths this short drift with code layout and machine load;
//! instruction counts do not.
//!
//! Run directly (`cargo run --release --bin hot_path -- [rounds]`) it just
//! exercises each path `rounds` times (default 1).

use std::hint::black_box;

use arena_b::Arena;

#[macro_use]
#[path = "../../benches/support/mixed.rs"]
mod mixed;
use mixed::Aligned16;

#[path = "../../benches/support/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../../benches/support/workloads.rs"]
mod workloads;
use harness::{block_on, with_pooled_bump};

const MANY: u64 = 1024;

#[inline(never)]
fn arena_alloc_u64(arena: &Arena) {
    let cp = arena.checkpoint();
    black_box(arena.alloc(black_box(1u64)));
    // SAFETY: nothing allocated after `cp` is used again.
    unsafe { arena.rewind_to_checkpoint(cp) };
}

#[inline(never)]
fn bumpalo_alloc_u64(bump: &mut bumpalo::Bump) {
    black_box(bump.alloc(black_box(1u64)));
    bump.reset();
}

#[inline(never)]
fn bump_scope_alloc_u64(bump: &bump_scope::Bump) {
    let cp = bump.checkpoint();
    black_box(bump.alloc(black_box(1u64)).into_mut());
    // SAFETY: nothing allocated after `cp` is used again.
    unsafe { bump.reset_to(cp) };
}

#[inline(never)]
fn arena_many_u64(arena: &Arena) {
    let cp = arena.checkpoint();
    for i in 0..MANY {
        black_box(arena.alloc(black_box(i)));
    }
    // SAFETY: nothing allocated after `cp` is used again.
    unsafe { arena.rewind_to_checkpoint(cp) };
}

#[inline(never)]
fn bumpalo_many_u64(bump: &mut bumpalo::Bump) {
    for i in 0..MANY {
        black_box(bump.alloc(black_box(i)));
    }
    bump.reset();
}

#[inline(never)]
fn bump_scope_many_u64(bump: &bump_scope::Bump) {
    let cp = bump.checkpoint();
    for i in 0..MANY {
        black_box(bump.alloc(black_box(i)).into_mut());
    }
    // SAFETY: nothing allocated after `cp` is used again.
    unsafe { bump.reset_to(cp) };
}

#[inline(never)]
fn arena_scope_many_u64(arena: &Arena) {
    arena.scope(|s| {
        for i in 0..MANY {
            black_box(s.alloc(black_box(i)));
        }
    });
}

/// `SyncArena::alloc` from `&self` (the thread-local part lookup included);
/// no reset, so the arena grows across rounds like the herd below.
#[inline(never)]
fn arena_sync_many_u64(arena: &arena_b::SyncArena) {
    for i in 0..MANY {
        black_box(arena.alloc(black_box(i)));
    }
}

/// bumpalo-herd through a per-thread `Member` fetched once.
#[inline(never)]
fn bumpalo_herd_many_u64(member: &bumpalo_herd::Member<'_>) {
    for i in 0..MANY {
        black_box(member.alloc(black_box(i)));
    }
}

#[inline(never)]
fn arena_mixed(arena: &Arena) {
    let cp = arena.checkpoint();
    mixed_round!(v => arena.alloc(v));
    // SAFETY: every reference above is dead.
    unsafe { arena.rewind_to_checkpoint(cp) };
}

#[inline(never)]
fn bumpalo_mixed(bump: &mut bumpalo::Bump) {
    mixed_round!(v => bump.alloc(v));
    bump.reset();
}

#[inline(never)]
fn arena_tower_lease_release(layer: &arena_tower::ArenaLayer) {
    let arena = layer.lease();
    black_box(arena.alloc(black_box(1u64)));
}

#[inline(never)]
fn bumpalo_tls_pool_lease_release() {
    with_pooled_bump(|bump| {
        black_box(bump.alloc(black_box(1u64)));
    });
}

// The request handlers' work of `benches/tower.rs`, on a leased
// `RequestArena` and on the hand-rolled pool's `Bump` (lease and release
// included in both).
macro_rules! handler_probes {
    ($($arena:ident, $local:ident, $pool:ident, $work:ident;)*) => {$(
        #[inline(never)]
        fn $arena(layer: &arena_tower::ArenaLayer, body: &str) {
            let arena = layer.lease();
            black_box(workloads::$work(body, &arena));
        }

        /// Through the thread's part (`RequestArena::local`).
        #[inline(never)]
        fn $local(layer: &arena_tower::ArenaLayer, body: &str) {
            let arena = layer.lease();
            black_box(workloads::$work(body, arena.local()));
        }

        #[inline(never)]
        fn $pool(body: &str) {
            with_pooled_bump(|bump| black_box(workloads::$work(body, bump)));
        }
    )*};
}

handler_probes! {
    arena_tower_scratch, arena_tower_local_scratch, bumpalo_tls_pool_scratch, scratch_work;
    arena_tower_tree, arena_tower_local_tree, bumpalo_tls_pool_tree, tree_work;
    arena_tower_csv, arena_tower_local_csv, bumpalo_tls_pool_csv, parse_work;
}

/// An empty GET through an axum router (as `benches/tower.rs`'s
/// `axum_empty` does): with a no-op layer, the reference, and with
/// `ArenaLayer`; the difference is the layer's cost per request.
fn empty_router(arena: Option<&arena_tower::ArenaLayer>) -> axum::Router {
    async fn empty() {}
    let router = axum::Router::new().route("/work", axum::routing::get(empty));
    let router = if let Some(layer) = arena {
        router.layer(layer.clone())
    } else {
        router.layer(tower_layer::Identity::new())
    };
    router.with_state(())
}

fn get_empty(router: &axum::Router) {
    use tower_service::Service;
    let request = http::Request::builder()
        .uri("/work")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = block_on(router.clone().call(request)).unwrap();
    assert!(response.status().is_success());
    drop(black_box(response));
}

#[inline(never)]
fn axum_identity_empty(router: &axum::Router) {
    // (A distinct body, so the linker does not fold the two probes.)
    black_box(1);
    get_empty(router);
}

#[inline(never)]
fn axum_arena_layer_empty(router: &axum::Router) {
    black_box(2);
    get_empty(router);
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let arena = Arena::with_capacity(64 * 1024);
    let mut bumpalo = bumpalo::Bump::with_capacity(64 * 1024);
    let bump_scope: bump_scope::Bump = bump_scope::Bump::with_size(64 * 1024);
    let sync = arena_b::SyncArena::new();
    let herd = bumpalo_herd::Herd::new();
    let member = herd.get();
    let mixed_arena = Arena::new();
    let mut mixed_bump = bumpalo::Bump::new();
    let layer = arena_tower::ArenaLayer::new();
    let scratch = workloads::scratch_body();
    let tree = workloads::tree_body();
    let csv = workloads::csv_body();
    // One layer (one pool) for every arena-tower probe, as in a server: a
    // thread's cache serves one pool at a time.
    let identity = empty_router(None);
    let with_arena = empty_router(Some(&layer));
    for _ in 0..rounds {
        axum_identity_empty(&identity);
        axum_arena_layer_empty(&with_arena);
        arena_tower_scratch(&layer, &scratch);
        arena_tower_local_scratch(&layer, &scratch);
        bumpalo_tls_pool_scratch(&scratch);
        arena_tower_tree(&layer, &tree);
        arena_tower_local_tree(&layer, &tree);
        bumpalo_tls_pool_tree(&tree);
        arena_tower_csv(&layer, &csv);
        arena_tower_local_csv(&layer, &csv);
        bumpalo_tls_pool_csv(&csv);
        arena_tower_lease_release(&layer);
        bumpalo_tls_pool_lease_release();
        arena_alloc_u64(&arena);
        bumpalo_alloc_u64(&mut bumpalo);
        bump_scope_alloc_u64(&bump_scope);
        arena_many_u64(&arena);
        bumpalo_many_u64(&mut bumpalo);
        bump_scope_many_u64(&bump_scope);
        arena_scope_many_u64(&arena);
        arena_sync_many_u64(&sync);
        bumpalo_herd_many_u64(&member);
        arena_mixed(&mixed_arena);
        bumpalo_mixed(&mut mixed_bump);
    }
    println!("ran {rounds} round(s) of each hot path");
}
