//! [`SyncBump`]: a thread's handle on a [`SyncArena`] for the one
//! allocation API (`alloc_api!`), its part or the shared lock-free buffer.

use core::alloc::Layout;
use core::ptr::NonNull;

use super::SyncArena;
use crate::arena::Arena;
use crate::error::AllocError;
use crate::typed::{Bump, Mode};

/// A thread's handle on a `SyncArena` for allocating: its part, or (feature
/// `lockfree`) the arena and its shared buffer, which values without drop
/// glue try first (the part is looked up only if they need it).
#[derive(Clone, Copy)]
pub(crate) enum SyncBump<'a> {
    Part(&'a Arena),
    #[cfg(feature = "lockfree")]
    Shared(&'a SyncArena, &'a crate::LockFreeAllocator),
}

impl<'a> SyncBump<'a> {
    /// The calling thread's part.
    #[inline(always)]
    fn part(self) -> &'a Arena {
        match self {
            SyncBump::Part(part) => part,
            #[cfg(feature = "lockfree")]
            SyncBump::Shared(arena, _) => arena.local(),
        }
    }
}

impl<'a> Bump<'a> for SyncBump<'a> {
    #[inline(always)]
    fn cursor(self) -> &'a crate::cursor::Cursor {
        self.part().cursor()
    }

    #[inline(always)]
    fn drop_list(self) -> &'a crate::drop_list::DropList {
        self.part().drop_list()
    }

    #[inline(always)]
    fn alloc_slow(
        self,
        layout: Layout,
        mode: Mode,
    ) -> Result<(NonNull<u8>, crate::arena::Pending), AllocError> {
        self.part().alloc_slow(layout, mode)
    }

    #[inline(always)]
    fn report(self, pending: crate::arena::Pending) {
        self.part().report(pending)
    }

    #[inline(always)]
    fn count_alloc(self) {
        self.part().count_alloc()
    }

    #[inline(always)]
    fn first(self, layout: Layout) -> Option<NonNull<u8>> {
        // The region from the shared buffer is fresh, aligned, disjoint
        // from everything else handed out, and lives until `reset(&mut
        // self)` or drop, like the arena's own memory.
        #[cfg(feature = "lockfree")]
        if let SyncBump::Shared(_, buffer) = self {
            return buffer.try_alloc_layout(layout);
        }
        let _ = layout;
        None
    }

    #[inline]
    fn give_back_last(self, ptr: NonNull<u8>, size: usize) {
        self.part().give_back_last(ptr, size)
    }

    #[inline(always)]
    fn position(self) -> *mut u8 {
        match self {
            SyncBump::Part(part) => part.position(),
            #[cfg(feature = "lockfree")]
            SyncBump::Shared(..) => core::ptr::null_mut(),
        }
    }

    #[inline(always)]
    fn publish_at(self, position: *mut u8) {
        match self {
            SyncBump::Part(part) => part.publish_at(position),
            #[cfg(feature = "lockfree")]
            SyncBump::Shared(..) => self.publish(),
        }
    }

    #[inline(always)]
    fn publish(self) {
        match self {
            SyncBump::Part(part) => part.publish(),
            // A part this thread used is the cached one; one that does not
            // exist yet has nothing to publish.
            #[cfg(feature = "lockfree")]
            SyncBump::Shared(arena, _) => {
                if let Some(part) = arena.cached_local() {
                    part.publish();
                }
            }
        }
    }
}

alloc_api! {
    impl [] SyncArena,
    bound = [Send + 'static],
    plain = |this| this.handle(),
    try = |this| this.try_handle(),
    setup = "let arena = arena_b::SyncArena::new();",
    end = "",
}
