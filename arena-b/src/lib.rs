//! # arena-b
//!
//! A bump ("arena") allocator for workloads that allocate many short-lived
//! objects and free them all at once: parsers and compilers, game frames,
//! per-request scratch data.
//!
//! ```
//! use arena_b::Arena;
//!
//! let arena = Arena::new();
//! let numbers: Vec<&u32> = (0..1000).map(|i| &*arena.alloc(i)).collect();
//! let greeting = arena.alloc_str("hello world");
//! assert_eq!(*numbers[10], 10);
//! assert_eq!(greeting, "hello world");
//!
//! // Temporary work, freed (and destructors run) when the closure returns,
//! // even by a panic:
//! let total = arena.scope(|scope| {
//!     let scratch = scope.alloc_slice_fill_iter(0..100u32);
//!     scratch.iter().sum::<u32>()
//! });
//! assert_eq!(total, 4950);
//!
//! // Checkpoints free everything allocated after them:
//! let checkpoint = arena.checkpoint();
//! arena.alloc([0u8; 1024]);
//! // SAFETY: nothing allocated after the checkpoint is used again.
//! unsafe { arena.rewind_to_checkpoint(checkpoint) };
//! ```
//!
//! ## Soundness
//! Every allocation method takes `&self` and returns references that borrow
//! the arena, so nothing outlives it; [`Arena::reset`] takes `&mut self`;
//! [`Arena::scope`] brands its references with a lifetime that cannot leave
//! the closure; [`Arena::rewind_to_checkpoint`] is the one `unsafe` method,
//! and it still refuses (panics on) foreign and stale checkpoints.
//! Destructors run when memory is freed, which is only sound for values
//! that own their data: `alloc` asks for `T: Send + 'static`, and borrowing
//! types use [`Arena::alloc_no_drop`]. See `docs/architecture.md`.
//!
//! ## Threads
//! [`Arena`] is `Send` but not `Sync`. [`SyncArena`] is shared between
//! threads: each thread allocates from its own sub-arena, found through a
//! thread-local cache, so allocation needs no atomic read-modify-write.
//!
//! ## Features
//! `stats` counts allocations; `tracing` mirrors diagnostics as `tracing`
//! events; `thread_local` keeps a bounded per-thread cache of free chunks
//! for every arena on the thread; `lockfree` adds `LockFreePool`, a bounded
//! lock-free object pool, and `LockFreeAllocator`, a shared bump buffer a
//! `SyncArena` can use for small allocations; `slab` reuses blocks given
//! back through the `Allocator` interface; `virtual_memory` backs an arena
//! by one reserved address range; `debug` poisons freed memory and checks
//! it. See `docs/advanced.md`.
//! ## `no_std`
//! With `default-features = false` the crate is `#![no_std]` and needs only
//! `alloc`: [`Arena`], [`Scope`], checkpoints, [`ArenaBox`], the
//! collections and the `Allocator` interface. The `std` feature (default)
//! adds [`SyncArena`], [`catch_limit`] and [`fallible`]; every feature but
//! `stats` enables `std`. Without `std`, [`LimitPolicy::Unwind`] panics
//! with the refusal's message (there is no payload to catch).
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// Handing out `&mut T` from `&self` is what an arena is for: every block is
// fresh memory that nobody else can reach.
#![allow(clippy::mut_from_ref)]

extern crate alloc;

/// What the standard prelude gives and `no_std` does not.
#[allow(unused_imports)]
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::format;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec::Vec;
}

#[macro_use]
mod api;
mod alloc_api;
mod arena;
mod asan;
mod boxed;
mod builder;
mod chunk;
pub mod collections;
mod cursor;
#[cfg(feature = "debug")]
mod debug;
mod drop_list;
mod error;
mod limit;
#[cfg(feature = "lockfree")]
mod lockfree;
#[cfg(feature = "lockfree")]
mod lockfree_alloc;
mod owner_cell;
mod scope;
#[cfg(feature = "slab")]
mod slab;
mod stats;
#[cfg(feature = "std")]
mod sync;
mod typed;
#[cfg(feature = "virtual_memory")]
mod vm;

// The README and `docs/guide.md` run as doctests of the workspace package
// (their server examples need arena-tower).

/// `docs/advanced.md`'s code blocks, compiled and run as doctests.
#[doc = include_str!("../../docs/advanced.md")]
#[cfg(doctest)]
pub struct AdvancedDoctests;

pub use allocator_api2;
pub use arena::{Arena, Checkpoint};
pub use boxed::{ArenaAllocator, ArenaBox};
#[cfg(feature = "virtual_memory")]
pub use builder::DEFAULT_DECOMMIT_THRESHOLD;
pub use builder::{ArenaBuilder, ThreadSafety, DEFAULT_CHUNK_SIZE, DEFAULT_MAX_CHUNK_SIZE};
#[cfg(feature = "debug")]
pub use debug::{Corruption, DebugStats, LeakReport, POISON};
pub use error::{AllocError, AllocErrorKind, AllocOrInitError, BuildError, VirtualMemoryError};
#[cfg(feature = "std")]
pub use limit::{catch_limit, fallible};
pub use limit::{LimitExceeded, LimitPolicy, Refuses};
#[cfg(feature = "lockfree")]
pub use lockfree::{LockFreePool, LockFreeStats, Pooled};
#[cfg(feature = "lockfree")]
pub use lockfree_alloc::{LockFreeAllocator, DEFAULT_LOCKFREE_MAX_SIZE};
pub use scope::Scope;
#[cfg(feature = "slab")]
pub use slab::{SlabStats, ThreadSlab, MIN_BLOCK};
pub use stats::{ArenaStats, ChunkUsage, DiagnosticEvent};
#[cfg(feature = "std")]
pub use sync::{LocalEpoch, SyncArena};
