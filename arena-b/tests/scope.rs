//! Scopes in loops: the waste per iteration is bounded by what the scope
//! used, never a chunk; `&Scope` is an allocator for temporaries. Review
//! finding: each scope took the rest of the chunk, so any outer allocation
//! (even a `Vec` freed again) moved the arena to a new, doubling chunk,
//! and 200 iterations took 805 MB.

use allocator_api2::vec::Vec;
use arena_b::Arena;

const ROUNDS: usize = 1000;

#[test]
fn a_loop_of_scopes_with_a_freed_outer_vec_stays_small() {
    let arena = Arena::new();
    for _ in 0..ROUNDS {
        arena.scope(|s| {
            s.alloc_slice_fill_iter(0..16u32);
            let mut v = Vec::new_in(&arena);
            v.push(1u32);
            drop(v); // freed again
        });
    }
    let capacity = arena.capacity();
    assert!(
        capacity < 1 << 20,
        "{ROUNDS} rounds: {capacity} bytes of chunks"
    );
    assert_eq!(arena.bytes_allocated(), 0);
}

#[test]
fn a_loop_of_scopes_that_each_leave_an_outer_byte_wastes_a_bounded_amount() {
    let arena = Arena::new();
    let mut kept = std::vec::Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        arena.scope(|s| {
            s.alloc_slice_fill_iter(0..16u32);
            kept.push(&*arena.alloc(i as u8));
        });
    }
    let capacity = arena.capacity();
    assert!(
        capacity < 4 << 20,
        "{ROUNDS} rounds: {capacity} bytes of chunks"
    );
    for (i, b) in kept.iter().enumerate() {
        assert_eq!(**b, i as u8, "outer allocations survive their scopes");
    }
}

#[test]
fn nested_scopes_in_a_loop_give_everything_back() {
    let arena = Arena::builder().chunk_size(1024).build();
    let outer_value = arena.alloc(7u64);
    for round in 0..ROUNDS as u32 {
        arena.scope(|outer| {
            let a = outer.alloc_slice_fill_iter(0..50u32);
            outer.scope(|inner| {
                inner.alloc_slice_fill_iter((0..200u32).map(|x| x ^ round));
            });
            let b = outer.alloc_slice_fill_iter(0..50u32);
            assert_eq!((a[49], b[49]), (49, 49));
        });
    }
    assert_eq!(*outer_value, 7);
    assert_eq!(arena.bytes_allocated(), 8);
    assert!(arena.capacity() <= 8 * 1024, "{}", arena.capacity());
}

#[test]
fn a_scope_is_an_allocator_whose_collections_go_with_it() {
    let arena = Arena::builder().chunk_size(1024).build();
    let kept = arena.alloc(1u32);
    let total = arena.scope(|s| {
        let mut v = Vec::new_in(s);
        for i in 0..10_000u64 {
            v.push(i); // the scope's last block: grows in place mostly
        }
        let mut map = hashbrown::HashMap::new_in(s);
        for i in 0..1000u64 {
            map.insert(i, i * 2);
        }
        v.iter().sum::<u64>() + map.values().sum::<u64>()
    });
    assert_eq!(total, 49_995_000 + 999_000);
    assert_eq!(*kept, 1);
    assert_eq!(
        arena.bytes_allocated(),
        4,
        "the scope's collections are gone"
    );
}

#[test]
fn a_scope_collection_grows_and_shrinks_in_place_when_last() {
    let arena = Arena::new();
    arena.scope(|s| {
        let mut v: Vec<u8, _> = Vec::with_capacity_in(64, s);
        let first = v.as_ptr();
        v.extend(0..64);
        v.reserve(64); // last block: in place
        assert_eq!(v.as_ptr(), first);
        v.shrink_to_fit();
        assert_eq!(v.as_ptr(), first);
        drop(v);
        // Freed as the last block: the next one starts where it did.
        let w: Vec<u8, _> = Vec::with_capacity_in(16, s);
        assert_eq!(w.as_ptr(), first);
    });
}

#[test]
fn outer_allocations_during_scopes_survive_interleaved_with_scope_ones() {
    let arena = Arena::builder().chunk_size(512).build();
    let mut survivors = std::vec::Vec::new();
    for round in 0..50u64 {
        arena.scope(|s| {
            for i in 0..20u64 {
                s.alloc_slice_fast(&[0xEEu8; 40]);
                survivors.push(&*arena.alloc(round * 100 + i));
                let mut tmp = Vec::new_in(&arena);
                tmp.extend(0..(i as u32));
            }
        });
    }
    for _ in 0..1000 {
        arena.alloc([0x11u8; 32]);
    }
    for (k, v) in survivors.iter().enumerate() {
        let (round, i) = (k as u64 / 20, k as u64 % 20);
        assert_eq!(**v, round * 100 + i);
    }
}
