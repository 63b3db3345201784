//! `arena_b::collections`: `String`, `format_in!`, `vec_in!` and the `Vec`
//! re-export, in every arena type.

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write;
use std::hash::{Hash, Hasher};

use arena_b::collections::{String, Vec};
use arena_b::{format_in, vec_in, Arena, SyncArena};

fn hash<T: Hash + ?Sized>(t: &T) -> u64 {
    let mut h = DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

#[test]
fn string_basics() {
    let arena = Arena::new();
    let mut s = String::new_in(&arena);
    assert!(s.is_empty());
    s.push('a');
    s.push_str("bc");
    s.push('é');
    write!(s, "-{}", 12).unwrap();
    assert_eq!(s, "abcé-12");
    assert_eq!(s, *"abcé-12");
    assert_eq!(s.len(), 8);
    assert!(s.capacity() >= 8);
    assert_eq!(s.to_string(), "abcé-12");
    assert_eq!(format!("{s:?}"), "\"abcé-12\"");
    assert_eq!(hash(&s), hash("abcé-12"), "hashes like its str");
    s.make_ascii_uppercase(); // through DerefMut
    assert_eq!(&*s, "ABCé-12");
    s.clear();
    assert!(s.is_empty());
    let t = String::from_str_in("from", &arena);
    let u = String::with_capacity_in(16, &arena);
    assert!(u.capacity() >= 16);
    assert_eq!(t, String::from_str_in("from", &arena));
}

#[test]
fn a_string_that_is_the_last_block_grows_in_place() {
    let arena = Arena::new();
    let mut s = String::with_capacity_in(8, &arena);
    s.push_str("12345678");
    let start = s.as_ptr();
    for _ in 0..100 {
        s.push_str("more text ");
    }
    assert_eq!(s.as_ptr(), start, "grew in place");
    assert_eq!(arena.chunk_usage().len(), 1);
}

#[test]
fn into_str_freezes_without_a_copy() {
    let arena = Arena::new();
    let s = format_in!(&arena, "{}+{}", 1, 2);
    let at = s.as_ptr();
    let frozen: &mut str = s.into_str();
    assert_eq!((frozen.as_ptr(), &*frozen), (at, "1+2"));
    frozen.make_ascii_uppercase();
    // Still there after more allocations.
    arena.alloc_slice_fast(&[0u8; 10_000]);
    assert_eq!(frozen, "1+2");
}

#[test]
fn strings_and_vecs_in_every_arena_type() {
    let arena = Arena::new();
    let sync = SyncArena::new();
    let a = format_in!(&arena, "{}", "arena");
    let b = format_in!(&sync, "{}", "sync");
    let c = arena.scope(|scope| {
        let s = format_in!(scope, "{}", "scope");
        s.len()
    });
    assert_eq!((a.as_str(), b.as_str(), c), ("arena", "sync", 5));
    let v: Vec<u8, _> = vec_in![&sync; 1, 2, 3];
    let w = arena.scope(|scope| vec_in![scope; 7u32; 4].iter().sum::<u32>());
    assert_eq!((v.len(), w), (3, 28));
    let empty: Vec<String<&Arena>, _> = vec_in![&arena];
    assert!(empty.is_empty());
}

#[test]
fn try_reserve_reports_the_limit() {
    let arena = Arena::builder().allocation_limit(4096).build();
    let mut s = String::new_in(&arena);
    assert!(s.try_reserve(1 << 20).is_err());
    s.try_reserve(100).unwrap();
    s.push_str("fits");
    assert_eq!(s, "fits");
}
