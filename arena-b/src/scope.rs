//! [`Scope`]: temporary allocations freed when a closure returns or unwinds.
//!
//! # How a scope stays sound with `&self`
//! [`Arena::scope`] takes `&self`, so the arena can keep allocating while
//! the scope is open, and that memory must survive the scope. The scope
//! therefore never frees the arena's memory directly. On entry it *carves*
//! the rest of the current chunk for itself (the arena's cursor moves to the
//! chunk's end), and bumps a private cursor through it; when that runs out it
//! carves more from the arena the same way. On exit it drops its values and,
//! if the arena's position is still exactly where the scope's last carve
//! left it (nobody else allocated meanwhile), moves the arena back to where
//! the scope started: full reuse at the cost of a few stores. Otherwise the
//! scope's memory is simply abandoned until the arena is rewound or reset.
//!
//! References handed out by a scope borrow the `&Scope` given to the
//! closure, whose lifetime is higher-ranked: they cannot leave the closure.

use core::alloc::Layout;
use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::arena::{Arena, Pending, Pos};
use crate::cursor::Cursor;
use crate::drop_list::DropList;
use crate::error::AllocError;
use crate::typed::{self, Bump};

/// Temporary allocations inside [`Arena::scope`]: freed, destructors run,
/// when the closure returns or unwinds.
///
/// ```
/// let arena = arena_b::Arena::new();
/// let len = arena.scope(|scope| {
///     let temp = scope.alloc("temporary data");
///     assert_eq!(temp, &"temporary data");
///     let words = scope.alloc_slice_clone(&[String::from("a"), String::from("b")]);
///     words.len()
/// });
/// assert_eq!(len, 2);
/// ```
///
/// References from a scope cannot escape it:
///
/// ```compile_fail
/// let arena = arena_b::Arena::new();
/// let escaped = arena.scope(|scope| scope.alloc(1u32));
/// ```
pub struct Scope<'a> {
    arena: &'a Arena,
    cursor: Cursor,
    drops: DropList,
    /// The enclosing scope's cursor this scope carved from, if any (else it
    /// carved from the arena's own cursor).
    parent: Option<&'a Cursor>,
    /// The window carved from `parent` on entry.
    carved: (*mut u8, *mut u8),
    /// Arena position to go back to on exit.
    restore: Pos,
    /// Arena position right after this scope's last carve.
    expected: Cell<Pos>,
    /// False once the arena handed out memory to someone else between two
    /// carves of this scope: then memory before the last carve is not ours.
    can_restore: Cell<bool>,
    /// Feature `stats`: allocations made through this scope, added to the
    /// arena's count when the scope ends (one local add per allocation
    /// instead of a trip through the arena pointer).
    #[cfg(feature = "stats")]
    allocations: Cell<usize>,
    /// Invariant in `'a`; not `Send` or `Sync` (also via `&Arena`).
    _marker: PhantomData<fn(&'a ()) -> &'a ()>,
}

impl fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("remaining_in_block", &self.cursor.remaining())
            .finish_non_exhaustive()
    }
}

impl<'a> Scope<'a> {
    pub(crate) fn open(arena: &'a Arena, parent: Option<&'a Cursor>) -> Scope<'a> {
        let restore = arena.pos();
        let carved = parent.unwrap_or(arena.main_cursor()).take_all();
        let expected = arena.pos();
        arena.scope_opened(expected);
        let cursor = Cursor::empty();
        // SAFETY: the window was taken from its owner (`take_all` left the
        // owner's window empty), so it is ours until we hand it back in `drop`.
        unsafe { cursor.set(carved.0, carved.1) };
        Scope {
            arena,
            cursor,
            drops: DropList::new(),
            parent,
            carved,
            restore,
            expected: Cell::new(expected),
            can_restore: Cell::new(true),
            #[cfg(feature = "stats")]
            allocations: Cell::new(0),
            _marker: PhantomData,
        }
    }

    /// Moves `value` into the scope; dropped when the scope ends.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// arena.scope(|scope| {
    ///     let v = scope.alloc(vec![1, 2]);
    ///     v.push(3);
    ///     assert_eq!(v.len(), 3);
    /// });
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn alloc<T: 'static>(&self, value: T) -> &mut T {
        match typed::try_alloc(self, value) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Some(Layout::new::<T>())),
        }
    }

    /// Fallible [`alloc`](Self::alloc).
    #[inline(always)]
    pub fn try_alloc<T: 'static>(&self, value: T) -> Result<&mut T, AllocError> {
        typed::try_alloc(self, value)
    }

    /// Allocates the value returned by `f` (which runs first).
    #[inline(always)]
    #[track_caller]
    pub fn alloc_with<T: 'static, F: FnOnce() -> T>(&self, f: F) -> &mut T {
        self.alloc(f())
    }

    /// Moves `value` into the scope without registering its destructor; see
    /// [`Arena::alloc_no_drop`].
    #[inline(always)]
    #[track_caller]
    pub fn alloc_no_drop<T>(&self, value: T) -> &mut T {
        // SAFETY: not registering a destructor only leaks, which is safe.
        match unsafe { typed::try_alloc_no_drop(self, value) } {
            Ok(r) => r,
            Err(e) => typed::fail(e, Some(Layout::new::<T>())),
        }
    }

    /// Copies `s` into the scope.
    #[inline]
    #[track_caller]
    pub fn alloc_str(&self, s: &str) -> &mut str {
        match typed::try_alloc_str(self, s) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Layout::array::<u8>(s.len()).ok()),
        }
    }

    /// Copies a slice of `Copy` values into the scope.
    #[inline]
    #[track_caller]
    pub fn alloc_slice_fast<T: Copy>(&self, src: &[T]) -> &mut [T] {
        match typed::try_alloc_slice_copy(self, src) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Layout::array::<T>(src.len()).ok()),
        }
    }

    /// Clones `src` into the scope.
    #[track_caller]
    pub fn alloc_slice_clone<T: Clone + 'static>(&self, src: &[T]) -> &mut [T] {
        match typed::try_alloc_slice_from_iter(self, src.len(), src.iter().cloned()) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Layout::array::<T>(src.len()).ok()),
        }
    }

    /// Moves the items of an exact-size iterator into a slice in the scope.
    #[track_caller]
    pub fn alloc_slice_fill_iter<T, I>(&self, iter: I) -> &mut [T]
    where
        T: 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        let iter = iter.into_iter();
        let len = iter.len();
        match typed::try_alloc_slice_from_iter(self, len, iter) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Layout::array::<T>(len).ok()),
        }
    }

    /// A zero-filled mutable string buffer of `len` bytes.
    #[track_caller]
    pub fn alloc_str_uninit(&self, len: usize) -> &mut str {
        match typed::try_alloc_str_zeroed(self, len) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Layout::array::<u8>(len).ok()),
        }
    }

    /// Raw memory for `layout`, valid until the scope ends.
    #[inline]
    #[track_caller]
    pub fn alloc_layout(&self, layout: Layout) -> NonNull<u8> {
        match typed::try_alloc_layout(self, layout) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Some(layout)),
        }
    }

    /// Fallible [`alloc_layout`](Self::alloc_layout).
    #[inline]
    pub fn try_alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        typed::try_alloc_layout(self, layout)
    }

    /// A nested scope: its allocations are freed when `f` returns, and this
    /// scope's stay.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// arena.scope(|outer| {
    ///     let kept = outer.alloc(1u32);
    ///     outer.scope(|inner| {
    ///         inner.alloc_slice_fill_iter(0..1000u32);
    ///     });
    ///     assert_eq!(*kept, 1);
    /// });
    /// ```
    pub fn scope<R>(&self, f: impl FnOnce(&Scope<'_>) -> R) -> R {
        let inner = Scope::open(self.arena, Some(&self.cursor));
        f(&inner)
    }

    /// The arena this scope allocates from.
    pub fn arena(&self) -> &'a Arena {
        self.arena
    }
}

impl Bump for Scope<'_> {
    #[inline(always)]
    fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    #[inline(always)]
    fn drop_list(&self) -> &DropList {
        &self.drops
    }

    #[cold]
    #[inline(never)]
    fn alloc_slow(&self, layout: Layout) -> Result<(NonNull<u8>, Pending), AllocError> {
        if self.arena.pos() != self.expected.get() {
            // The arena handed out memory after our last carve: from now on
            // the arena's memory between `restore` and here is not all ours.
            self.can_restore.set(false);
        }
        let ((start, end), pending) = self.arena.take_block(layout)?;
        let held = self.arena.pos();
        self.expected.set(held);
        self.arena.scope_holds(held);
        // SAFETY: the block was taken from the arena's cursor, which now
        // starts past it, so nobody else will hand it out while we live.
        unsafe { self.cursor.set(start, end) };
        let block = self
            .cursor
            .bump(layout)
            .expect("arena-b: a block chosen for a layout must fit it");
        // The caller reports `pending` once its value is in place; the sink
        // (user code) may then allocate in the arena: that moves the arena
        // past `expected`, and this scope will not give back.
        Ok((block, pending))
    }

    /// Scope allocations count in the arena's `stats` too, from the
    /// scope's end.
    #[cfg(feature = "stats")]
    #[inline(always)]
    fn count_alloc(&self) {
        self.allocations.set(self.allocations.get() + 1);
    }

    #[inline(always)]
    fn report(&self, pending: Pending) {
        if pending.0.is_some() {
            self.arena.report_pending(pending);
        }
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        /// Hands memory back even if a destructor below panics.
        struct GiveBack<'s, 'a>(&'s Scope<'a>);
        impl Drop for GiveBack<'_, '_> {
            fn drop(&mut self) {
                let scope = self.0;
                let arena = scope.arena;
                #[cfg(feature = "stats")]
                arena.count_allocs(scope.allocations.get());
                if let Some(parent) = scope.parent {
                    let (start, end) = scope.carved;
                    if parent.ptr() == end && parent.end() == end {
                        // SAFETY: the parent has not allocated since we carved
                        // `[start, end)` from it, and our values there are dead.
                        unsafe { parent.set_ptr(start) };
                        // SAFETY: as above: `[start, end)` is freed memory of
                        // one chunk of the arena, carved with its provenance.
                        #[cfg(feature = "debug")]
                        unsafe {
                            arena.poison_scope_block(start, end)
                        };
                    }
                }
                let expected = scope.expected.get();
                let restored = (scope.can_restore.get()
                    && expected != scope.restore
                    && arena.pos() == expected)
                    .then(|| {
                        arena.scope_rewind(scope.restore);
                        scope.restore
                    });
                arena.scope_closed(restored);
            }
        }
        let give_back = GiveBack(self);
        // SAFETY: the scope is ending: no reference to its values survives
        // (they borrow the `&Scope` of the closure, which has returned).
        unsafe { self.drops.run_until(core::ptr::null_mut()) };
        drop(give_back);
    }
}
