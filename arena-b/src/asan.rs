//! AddressSanitizer's manual poisoning interface, compiled in when the
//! crate is built with `--cfg arena_b_asan` (and `-Zsanitizer=address`), as
//! `scripts/sanitize` does. Feature `debug` poisons freed arena memory
//! through it; every block handed out is unpoisoned. Without the cfg these
//! are no-ops.

#[cfg(arena_b_asan)]
extern "C" {
    fn __asan_poison_memory_region(addr: *const u8, size: usize);
    fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
}

/// Whether ASan poisoning is compiled in.
#[cfg_attr(not(feature = "debug"), allow(dead_code))]
pub(crate) const ENABLED: bool = cfg!(arena_b_asan);

/// # Safety
/// `[addr, addr + size)` is memory of a live chunk.
#[inline(always)]
#[allow(unused_variables)]
#[cfg_attr(not(feature = "debug"), allow(dead_code))]
pub(crate) unsafe fn poison(addr: *const u8, size: usize) {
    // SAFETY: forwarded from the caller; ASan only updates its shadow.
    #[cfg(arena_b_asan)]
    unsafe {
        __asan_poison_memory_region(addr, size)
    };
}

/// # Safety
/// `[addr, addr + size)` is memory of a live chunk.
#[inline(always)]
#[allow(unused_variables)]
pub(crate) unsafe fn unpoison(addr: *const u8, size: usize) {
    // SAFETY: forwarded from the caller; ASan only updates its shadow.
    #[cfg(arena_b_asan)]
    unsafe {
        __asan_unpoison_memory_region(addr, size)
    };
}
