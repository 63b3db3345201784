//! [`String`]: a growable UTF-8 string in an allocator.

#[allow(unused_imports)]
use crate::prelude::*;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::ops::{Deref, DerefMut};

use allocator_api2::alloc::Allocator;
use allocator_api2::collections::TryReserveError;
use allocator_api2::vec::Vec;

use crate::ArenaAllocator;

/// A growable UTF-8 string whose bytes live in an allocator: any arena by
/// reference (`&Arena`, `&Scope`, `&SyncArena`, `&RequestArena`). It grows
/// in place while it is the arena's last block, and
/// [`into_str`](String::into_str) freezes it into the arena without a copy.
/// (allocator-api2 has no `String`; this is bumpalo's
/// `collections::String` and bump-scope's `BumpString` for arena-b.)
///
/// ```
/// use arena_b::collections::String;
/// use std::fmt::Write;
///
/// let arena = arena_b::Arena::new();
/// let mut s = String::new_in(&arena);
/// s.push_str("hello");
/// s.push(',');
/// write!(s, " {}", "world").unwrap();
/// assert_eq!(s, "hello, world");
/// assert_eq!(s.len(), 12);
/// let frozen: &mut str = s.into_str();
/// frozen.make_ascii_uppercase();
/// assert_eq!(frozen, "HELLO, WORLD");
/// ```
pub struct String<A: Allocator> {
    /// Always valid UTF-8.
    bytes: Vec<u8, A>,
}

impl<A: Allocator> String<A> {
    /// An empty string; allocates nothing until it grows.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let s = arena_b::collections::String::new_in(&arena);
    /// assert!(s.is_empty());
    /// ```
    pub fn new_in(alloc: A) -> String<A> {
        String {
            bytes: Vec::new_in(alloc),
        }
    }

    /// An empty string with room for `capacity` bytes.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let s = arena_b::collections::String::with_capacity_in(64, &arena);
    /// assert!(s.capacity() >= 64);
    /// ```
    pub fn with_capacity_in(capacity: usize, alloc: A) -> String<A> {
        String {
            bytes: Vec::with_capacity_in(capacity, alloc),
        }
    }

    /// A copy of `s`.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let s = arena_b::collections::String::from_str_in("copied", &arena);
    /// assert_eq!(s, "copied");
    /// ```
    pub fn from_str_in(s: &str, alloc: A) -> String<A> {
        let mut string = String::with_capacity_in(s.len(), alloc);
        string.push_str(s);
        string
    }

    /// Appends `c`.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let mut s = arena_b::collections::String::new_in(&arena);
    /// s.push('é');
    /// assert_eq!((s.as_str(), s.len()), ("é", 2));
    /// ```
    pub fn push(&mut self, c: char) {
        let mut utf8 = [0u8; 4];
        self.bytes
            .extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }

    /// Appends `s`.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let mut s = arena_b::collections::String::new_in(&arena);
    /// s.push_str("ab");
    /// s.push_str("cd");
    /// assert_eq!(s, "abcd");
    /// ```
    pub fn push_str(&mut self, s: &str) {
        self.bytes.extend_from_slice(s.as_bytes());
    }

    /// Room for at least `additional` more bytes; an error (never an
    /// abort) when the allocator refuses.
    ///
    /// ```
    /// let arena = arena_b::Arena::builder().allocation_limit(4096).build();
    /// let mut s = arena_b::collections::String::new_in(&arena);
    /// assert!(s.try_reserve(1 << 20).is_err());
    /// assert!(s.try_reserve(100).is_ok());
    /// ```
    pub fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError> {
        self.bytes.try_reserve(additional)
    }

    /// Room for at least `additional` more bytes.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let mut s = arena_b::collections::String::new_in(&arena);
    /// s.reserve(10);
    /// assert!(s.capacity() >= 10);
    /// ```
    pub fn reserve(&mut self, additional: usize) {
        self.bytes.reserve(additional);
    }

    /// Length in bytes.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// assert_eq!(arena_b::format_in!(&arena, "{}", 1234).len(), 4);
    /// ```
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the string is empty.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// assert!(arena_b::collections::String::new_in(&arena).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Bytes the string can hold without growing.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// assert_eq!(arena_b::collections::String::new_in(&arena).capacity(), 0);
    /// ```
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Empties the string, keeping its capacity.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let mut s = arena_b::format_in!(&arena, "text");
    /// s.clear();
    /// assert!(s.is_empty() && s.capacity() >= 4);
    /// ```
    pub fn clear(&mut self) {
        self.bytes.clear();
    }

    /// The contents.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// assert_eq!(arena_b::format_in!(&arena, "{}", 'x').as_str(), "x");
    /// ```
    pub fn as_str(&self) -> &str {
        // SAFETY: the bytes are always valid UTF-8 (only `str`s and chars
        // are ever appended; `clear` empties).
        unsafe { core::str::from_utf8_unchecked(&self.bytes) }
    }

    /// The contents, mutably.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let mut s = arena_b::format_in!(&arena, "abc");
    /// s.as_mut_str().make_ascii_uppercase();
    /// assert_eq!(s, "ABC");
    /// ```
    pub fn as_mut_str(&mut self) -> &mut str {
        // SAFETY: as in `as_str`; `&mut str` cannot break UTF-8 in safe code.
        unsafe { core::str::from_utf8_unchecked_mut(&mut self.bytes) }
    }

    /// Freezes the string into the arena: its bytes stay where they are
    /// (no copy) for as long as the arena borrow, and are not freed.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let s: &mut str = arena_b::format_in!(&arena, "{}", 42).into_str();
    /// assert_eq!(s, "42");
    /// ```
    pub fn into_str<'a>(self) -> &'a mut str
    where
        A: ArenaAllocator<'a>,
    {
        let mut bytes = core::mem::ManuallyDrop::new(self.bytes);
        let (ptr, len) = (bytes.as_mut_ptr(), bytes.len());
        // SAFETY: the bytes are valid UTF-8 and, the `Vec` being forgotten,
        // nothing else refers to them; an `ArenaAllocator<'a>` keeps its
        // blocks valid for `'a` even if they are never deallocated.
        unsafe { core::str::from_utf8_unchecked_mut(core::slice::from_raw_parts_mut(ptr, len)) }
    }
}

impl<A: Allocator> Deref for String<A> {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<A: Allocator> DerefMut for String<A> {
    fn deref_mut(&mut self) -> &mut str {
        self.as_mut_str()
    }
}

impl<A: Allocator> fmt::Write for String<A> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }

    fn write_char(&mut self, c: char) -> fmt::Result {
        self.push(c);
        Ok(())
    }
}

impl<A: Allocator> fmt::Display for String<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl<A: Allocator> fmt::Debug for String<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<A: Allocator> PartialEq<str> for String<A> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl<A: Allocator> PartialEq<&str> for String<A> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl<A: Allocator, B: Allocator> PartialEq<String<B>> for String<A> {
    fn eq(&self, other: &String<B>) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<A: Allocator> Eq for String<A> {}

impl<A: Allocator> Hash for String<A> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl<A: Allocator> AsRef<str> for String<A> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl<A: Allocator> core::borrow::Borrow<str> for String<A> {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}
