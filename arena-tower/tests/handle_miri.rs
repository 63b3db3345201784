//! The crate's unsafe code (`alloc_bytes`' owner and the `Allocator`
//! forwarding) on a plain executor with no I/O, so that Miri can run it:
//! `cargo +nightly miri test -p arena-tower --test handle_miri`.

use std::convert::Infallible;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use arena_tower::{ArenaLayer, RequestArena};
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use tower::{service_fn, Layer, Service};

mod common;
use common::block_on;

/// Reads a body to its end, frame by frame.
fn drain<B: Body<Data = Bytes>>(body: B) -> Vec<u8> {
    let mut body = pin!(body);
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Poll::Ready(Some(Err(_))) => panic!("body error"),
            Poll::Ready(None) => return out,
            Poll::Pending => {}
        }
    }
}

#[test]
fn alloc_bytes_and_allocator_collections_across_threads() {
    let layer = ArenaLayer::new().shards(2);
    let mut svc = layer.layer(service_fn(|_req: Request<()>| async move {
        let arena = RequestArena::current().unwrap();
        let mut v = allocator_api2::vec::Vec::new_in(&arena);
        v.extend(0..64u32);
        // Another thread allocates from the same request arena (its own
        // part), and grows this thread's vector.
        let bytes = std::thread::scope(|s| {
            s.spawn(|| {
                v.extend(64..128u32);
                let mut m = hashbrown::HashMap::new_in(&arena);
                m.insert(1u8, String::from("value"));
                arena.alloc_bytes(b" from another thread")
            })
            .join()
            .unwrap()
        });
        assert_eq!(v.iter().sum::<u32>(), (0..128u32).sum::<u32>());
        let head = arena.alloc_bytes(b"made in the arena");
        let empty = arena.alloc_bytes(b"");
        assert!(empty.is_empty());
        let mut joined = head.to_vec();
        joined.extend_from_slice(&bytes);
        Ok::<_, Infallible>(Response::new(Full::new(arena.alloc_bytes(&joined))))
    }));
    for round in 0..3 {
        let res = block_on(svc.call(Request::new(()))).unwrap();
        let body = drain(res.into_body());
        assert_eq!(body, b"made in the arena from another thread");
        let stats = layer.pool_stats();
        assert_eq!(stats.in_flight, 0, "round {round}: {stats:?}");
    }
    assert!(layer.pool_stats().hits >= 2);
}

#[test]
fn bytes_outlive_the_response_and_move_threads() {
    let layer = ArenaLayer::new();
    let mut svc = layer.layer(service_fn(|_req: Request<()>| async move {
        let arena = RequestArena::current().unwrap();
        Ok::<_, Infallible>(Response::new(Full::new(arena.alloc_bytes(b"kept bytes"))))
    }));
    let res = block_on(svc.call(Request::new(()))).unwrap();
    let mut body = pin!(res.into_body());
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Some(Ok(frame))) = body.as_mut().poll_frame(&mut cx) else {
        panic!("one frame");
    };
    let data = frame.into_data().unwrap();
    assert!(body.is_end_stream());
    assert_eq!(layer.pool_stats().in_flight, 1);
    let tail = std::thread::spawn(move || data.slice(5..)).join().unwrap();
    assert_eq!(&tail[..], b"bytes");
    drop(tail);
    assert_eq!(layer.pool_stats().in_flight, 0);
}

#[test]
fn freed_last_blocks_are_given_back_so_loops_do_not_grow_the_arena() {
    use allocator_api2::vec::Vec as AVec;
    // One chunk holds everything below.
    let layer = ArenaLayer::new().chunk_size(64 * 1024);
    let arena = layer.lease();
    let rounds = if cfg!(miri) { 20 } else { 1000 };
    for round in 0..rounds {
        let mut big: AVec<u8, _> = AVec::with_capacity_in(4096, &arena);
        big.extend_from_slice(&[7; 4096]);
        big.reserve(4096); // the last block grows in place
        let mut small: AVec<u8, _> = AVec::with_capacity_in(100, &arena);
        small.extend_from_slice(&[round as u8; 100]);
        assert_eq!(arena.bytes_allocated(), 8192 + 100);
        assert!(big.iter().all(|&b| b == 7) && small.iter().all(|&b| b == round as u8));
        // Dropped newest first, each one is the last block when freed.
        drop(small);
        drop(big);
    }
    assert_eq!(arena.bytes_allocated(), 0);

    // A block that is not the last one stays, and nothing overlaps.
    let mut kept: AVec<u8, _> = AVec::with_capacity_in(2048, &arena);
    kept.extend_from_slice(&[1; 2048]);
    let after = arena.alloc([2u8; 16]);
    drop(kept);
    assert_eq!(arena.bytes_allocated(), 2048 + 16);
    assert_eq!(*after, [2u8; 16]);
}

mod family {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use arena_b::{AllocOrInitError, ArenaBox};

    include!("../../arena-b/tests/support/family_suite.rs");

    /// The allocation family reaches handlers: `RequestArena` has every
    /// method (through `Deref` to its `SyncArena`), and `&RequestArena` is
    /// an `ArenaAllocator` for `ArenaBox::new_in` and `String::into_str`.
    #[test]
    fn the_family_on_request_arena() {
        let layer = arena_tower::ArenaLayer::new();
        let drops = Arc::new(AtomicUsize::new(0));
        {
            let arena = layer.lease();
            family!(&arena, &drops);
            let b = ArenaBox::new_in(String::from("boxed"), &arena);
            let s = arena_b::format_in!(&arena, "{}!", *b).into_str();
            assert_eq!(s, "boxed!");
        }
        assert_eq!(drops.load(Ordering::SeqCst), 9, "released: destructors ran");
    }
}

/// Review finding (unsound before the fix): a spare `alloc_bytes` block was
/// handed out again after the handler rewound its thread's part past it (a
/// rewind whose contract the handler kept: it had dropped its `Bytes`), so
/// safe code wrote into an immutable `Bytes`.
#[test]
fn a_spare_buffer_is_not_reused_after_its_part_was_rewound() {
    let layer = ArenaLayer::new();
    let arena = layer.lease();
    arena.scope(|s| {
        let part = s.arena();
        let cp = part.checkpoint();
        let first = arena.alloc_bytes(&[1u8; 64]);
        drop(first); // the only reference to that memory is gone
                     // SAFETY: nothing allocated after `cp` is used again.
        unsafe { part.rewind_to_checkpoint(cp) };
        let mine: &mut [u8] = part.alloc_slice_fast(&[7u8; 64]);
        let bytes = arena.alloc_bytes(&[2u8; 64]);
        assert_ne!(
            mine.as_ptr(),
            bytes.as_ptr(),
            "the same memory handed out twice"
        );
        mine[0] = 9;
        assert_eq!(bytes[0], 2);
    });
}

#[test]
fn a_spare_buffer_is_reused_on_its_own_thread_and_not_on_another() {
    let layer = ArenaLayer::new();
    let arena = layer.lease();
    let first = arena.alloc_bytes(&[1u8; 100]);
    let at = first.as_ptr() as usize;
    drop(first);
    let again = arena.alloc_bytes(&[2u8; 120]); // same size class: reused
    assert_eq!(again.as_ptr() as usize, at);
    drop(again);
    std::thread::scope(|s| {
        s.spawn(|| {
            let other = arena.alloc_bytes(&[3u8; 100]);
            assert_ne!(
                other.as_ptr() as usize,
                at,
                "another thread's part: not reused there"
            );
        });
    });
    assert_eq!(arena.alloc_bytes(&[4u8; 50]).as_ptr() as usize, at);
}

/// The current-request pointer and the lease count with nested layers, a
/// handle kept past the response, and a pool closed while leases are out
/// and arenas sit in this thread's cache.
#[test]
fn nested_layers_kept_handles_and_a_closed_pool() {
    let inner_layer = ArenaLayer::new();
    let outer_layer = ArenaLayer::new();
    let kept = std::sync::Mutex::new(Vec::new());
    let inner = inner_layer.layer(service_fn(|_req: Request<()>| {
        let arena = RequestArena::current().unwrap();
        kept.lock().unwrap().push(arena.clone());
        async move {
            let v = arena.alloc_slice_fill_copy(64, 7u8);
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::copy_from_slice(v))))
        }
    }));
    let mut outer = outer_layer.layer(service_fn(move |req: Request<()>| {
        let outer_arena = RequestArena::current().unwrap();
        let mut inner = inner.clone();
        async move {
            let before = outer_arena.alloc(1u64);
            let res = inner.call(req).await.unwrap();
            // The inner request's poll put the outer one back as current.
            let now = RequestArena::current().unwrap();
            assert!(std::ptr::eq(&*now as *const _, &*outer_arena as *const _));
            assert_eq!(*before, 1);
            Ok::<_, Infallible>(res)
        }
    }));
    for _ in 0..3 {
        let res = block_on(outer.call(Request::new(()))).unwrap();
        assert_eq!(drain(res.into_body()), vec![7u8; 64]);
    }
    assert!(RequestArena::current().is_none());
    drop(outer);
    drop(outer_layer);
    drop(inner_layer);
    // The inner pool is closed; its kept handles still own their arenas.
    let kept = kept.into_inner().unwrap();
    assert_eq!(kept.len(), 3);
    for handle in &kept {
        assert_eq!(handle.alloc_str("still here"), "still here");
    }
    drop(kept);
}

/// A service whose `call` itself panics (before its future exists), with
/// no byte limit (so the layer does not catch): the request stops being
/// current as the panic leaves the layer, and its arena goes back.
#[test]
fn a_panic_in_call_leaves_no_current_request_behind() {
    let layer = ArenaLayer::new();
    let mut svc = layer.layer(service_fn(|_req: Request<()>| {
        assert!(RequestArena::current().is_some(), "current during call");
        if true {
            panic!("call fails");
        }
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
    }));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(svc.call(Request::new(())));
    }));
    assert!(caught.is_err());
    assert!(RequestArena::current().is_none());
    assert_eq!(layer.pool_stats().in_flight, 0);
}
