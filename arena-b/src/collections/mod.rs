//! Collections in an arena: [`Vec`] (allocator-api2's, re-exported), a
//! growable UTF-8 [`String`], and the [`format_in!`](crate::format_in) and
//! [`vec_in!`](crate::vec_in) macros.
//!
//! Every arena type is an `allocator_api2::alloc::Allocator` by reference
//! (`&Arena`, `&Scope`, `&SyncArena`, `arena-tower`'s `&RequestArena`), so
//! these collections live in whichever you pass. A collection that is the
//! arena's last block grows, shrinks and is freed in place.
//!
//! ```
//! use arena_b::collections::{String, Vec};
//! use arena_b::{format_in, vec_in, Arena};
//!
//! let arena = Arena::new();
//! let mut v: Vec<u32, _> = vec_in![&arena; 1, 2, 3];
//! v.push(4);
//! let s: String<_> = format_in!(&arena, "{} numbers, last {}", v.len(), v[3]);
//! assert_eq!(s, "4 numbers, last 4");
//! ```
//!
//! # Hash maps
//! hashbrown's maps take an allocator too (its `allocator-api2` feature):
//!
//! ```
//! let arena = arena_b::Arena::new();
//! let mut counts = hashbrown::HashMap::new_in(&arena);
//! for word in "a b a".split(' ') {
//!     *counts.entry(word).or_insert(0) += 1;
//! }
//! assert_eq!(counts["a"], 2);
//! ```
//!
//! At an arena's allocation limit these collections call
//! `handle_alloc_error` (an abort) under the default
//! [`LimitPolicy::ReturnError`](crate::LimitPolicy); under
//! [`LimitPolicy::Unwind`](crate::LimitPolicy::Unwind) they unwind with a
//! [`LimitExceeded`](crate::LimitExceeded) instead, and their `try_reserve`
//! returns an error inside [`fallible`](crate::fallible).

#[allow(unused_imports)]
use crate::prelude::*;
mod string;

pub use allocator_api2::vec::Vec;
pub use string::String;

/// A [`Vec`] in an allocator with the given elements:
/// `vec_in![alloc; a, b, c]` or `vec_in![alloc; value; n]`.
/// (allocator-api2's own `vec![in alloc; ..]` does not compile with a
/// non-global allocator.)
///
/// ```
/// use arena_b::{vec_in, Arena};
/// let arena = Arena::new();
/// let v = vec_in![&arena; 1u8, 2, 3];
/// assert_eq!(v, [1, 2, 3]);
/// let zeros = vec_in![&arena; 0u32; 4];
/// assert_eq!(zeros, [0, 0, 0, 0]);
/// let empty: arena_b::collections::Vec<u8, _> = vec_in![&arena];
/// assert!(empty.is_empty());
/// ```
#[macro_export]
macro_rules! vec_in {
    ($alloc:expr $(;)?) => {
        $crate::collections::Vec::new_in($alloc)
    };
    ($alloc:expr; $value:expr; $n:expr) => {{
        let n = $n;
        let mut v = $crate::collections::Vec::with_capacity_in(n, $alloc);
        v.resize(n, $value);
        v
    }};
    ($alloc:expr; $($x:expr),+ $(,)?) => {{
        let items = [$($x),+];
        let mut v = $crate::collections::Vec::with_capacity_in(items.len(), $alloc);
        v.extend(items);
        v
    }};
}

/// `format!` into a [`String`] in an allocator:
/// `format_in!(alloc, "{} ..", args)`.
///
/// ```
/// let arena = arena_b::Arena::new();
/// let s = arena_b::format_in!(&arena, "{}-{}", 1, "two");
/// assert_eq!(s, "1-two");
/// let frozen: &mut str = s.into_str(); // stays in the arena, no copy
/// assert_eq!(frozen, "1-two");
/// ```
#[macro_export]
macro_rules! format_in {
    ($alloc:expr, $($arg:tt)*) => {{
        let mut s = $crate::collections::String::new_in($alloc);
        ::core::fmt::Write::write_fmt(&mut s, ::core::format_args!($($arg)*))
            .expect("a formatting trait implementation returned an error");
        s
    }};
}
