//! The benchmark's global allocator: the system allocator, or mimalloc when
//! the process runs with `ARENA_BENCH_GLOBAL=mimalloc`.
//!
//! "std collections on mimalloc as the global allocator" is what a user
//! who does not pick an arena writes; it can only be measured with mimalloc
//! as the *global* allocator (axum's and hyper's own allocations included),
//! so the choice is made once per process, at its first allocation, and
//! never changes: every block is freed by the allocator that made it, with
//! no per-call dispatch beyond one predictable branch. `benches/tower.rs`
//! runs itself a second time in that mode for the mimalloc contenders.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

use mimalloc::MiMalloc;

/// The environment variable that selects mimalloc.
pub const GLOBAL_VAR: &str = "ARENA_BENCH_GLOBAL";

const UNSET: u8 = 0;
const SYSTEM: u8 = 1;
const MIMALLOC: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(UNSET);

/// System or mimalloc, fixed at the process's first allocation.
pub struct Switch;

#[inline(always)]
fn mode() -> u8 {
    match MODE.load(Ordering::Relaxed) {
        UNSET => init(),
        m => m,
    }
}

/// Reads the environment without allocating (`getenv`): this runs inside
/// the first allocation, before `main`, while the process has one thread.
#[cold]
fn init() -> u8 {
    // SAFETY: a NUL-terminated name; nothing writes the environment yet.
    let value = unsafe { libc::getenv(c"ARENA_BENCH_GLOBAL".as_ptr()) };
    let mimalloc = !value.is_null()
        // SAFETY: `getenv` returns a NUL-terminated string.
        && unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes() == b"mimalloc";
    let m = if mimalloc { MIMALLOC } else { SYSTEM };
    MODE.store(m, Ordering::Relaxed);
    m
}

/// Whether this process runs on mimalloc.
pub fn is_mimalloc() -> bool {
    mode() == MIMALLOC
}

// SAFETY: every call forwards to one allocator, the same for the whole
// process (`mode` never changes once set, and is set before the first
// block exists), so each block is resized and freed by its own allocator.
unsafe impl GlobalAlloc for Switch {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe {
            if mode() == MIMALLOC {
                MiMalloc.alloc(layout)
            } else {
                System.alloc(layout)
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe {
            if mode() == MIMALLOC {
                MiMalloc.alloc_zeroed(layout)
            } else {
                System.alloc_zeroed(layout)
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract; the block came from the same allocator.
        unsafe {
            if mode() == MIMALLOC {
                MiMalloc.dealloc(ptr, layout)
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract; the block came from the same allocator.
        unsafe {
            if mode() == MIMALLOC {
                MiMalloc.realloc(ptr, layout, new_size)
            } else {
                System.realloc(ptr, layout, new_size)
            }
        }
    }
}
