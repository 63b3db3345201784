//! The allocation methods of [`Arena`], and the arena as the owner of the
//! fast path (`Bump`).

use super::*;

impl Arena {
    /// Moves `value` into the arena and returns a mutable reference to it.
    ///
    /// If `T` needs drop, `value` is dropped when its memory is freed
    /// (rewind, scope exit, reset or the arena's drop).
    ///
    /// # Panics
    /// If the arena's allocation limit is reached; calls
    /// [`handle_alloc_error`](std::alloc::handle_alloc_error) if the
    /// system is out of memory. See [`try_alloc`](Self::try_alloc).
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let v = arena.alloc(vec![1, 2, 3]);
    /// v.push(4);
    /// assert_eq!(v.len(), 4);
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn alloc<T: Send + 'static>(&self, value: T) -> &mut T {
        match typed::try_alloc(self, value) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Some(Layout::new::<T>())),
        }
    }

    /// Like [`alloc`](Self::alloc), but returns an error instead of
    /// panicking when the memory cannot be had.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// assert_eq!(*arena.try_alloc(7u8).unwrap(), 7);
    /// ```
    #[inline(always)]
    pub fn try_alloc<T: Send + 'static>(&self, value: T) -> Result<&mut T, AllocError> {
        typed::try_alloc(self, value)
    }

    /// Allocates the value returned by `f`. `f` runs before the memory is
    /// taken, so it may itself allocate in this arena.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let big = arena.alloc_with(|| [7u8; 4096]);
    /// assert_eq!(big[4095], 7);
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn alloc_with<T: Send + 'static, F: FnOnce() -> T>(&self, f: F) -> &mut T {
        self.alloc(f())
    }

    /// Fallible [`alloc_with`](Self::alloc_with).
    #[inline(always)]
    pub fn try_alloc_with<T: Send + 'static, F: FnOnce() -> T>(
        &self,
        f: F,
    ) -> Result<&mut T, AllocError> {
        self.try_alloc(f())
    }

    /// Moves `value` into the arena **without** registering its destructor:
    /// it is never dropped, its memory is simply reused after a reset. For
    /// types that borrow (`T` is not `'static`), where running a destructor
    /// at reset time could not be proven sound. For a type without drop
    /// glue this is exactly [`alloc`](Self::alloc).
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// struct Node<'a> { value: u32, next: Option<&'a Node<'a>> }
    /// let a = arena.alloc_no_drop(Node { value: 1, next: None });
    /// let b = arena.alloc_no_drop(Node { value: 2, next: Some(a) });
    /// assert_eq!(b.next.unwrap().value, 1);
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn alloc_no_drop<T>(&self, value: T) -> &mut T {
        match self.try_alloc_no_drop(value) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Some(Layout::new::<T>())),
        }
    }

    /// Fallible [`alloc_no_drop`](Self::alloc_no_drop).
    #[inline(always)]
    pub fn try_alloc_no_drop<T>(&self, value: T) -> Result<&mut T, AllocError> {
        // SAFETY: not registering a destructor only leaks, which is safe.
        unsafe { typed::try_alloc_no_drop(self, value) }
    }

    /// Copies `s` into the arena.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let s = arena.alloc_str("hello");
    /// s.make_ascii_uppercase();
    /// assert_eq!(s, "HELLO");
    /// ```
    #[inline]
    #[track_caller]
    pub fn alloc_str(&self, s: &str) -> &mut str {
        match typed::try_alloc_str(self, s) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Layout::array::<u8>(s.len()).ok()),
        }
    }

    /// Fallible [`alloc_str`](Self::alloc_str).
    #[inline]
    pub fn try_alloc_str(&self, s: &str) -> Result<&mut str, AllocError> {
        typed::try_alloc_str(self, s)
    }

    /// Copies a slice of `Copy` values into the arena with one `memcpy`.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let small = arena.alloc_slice_fast(&[1u8, 2, 3]);
    /// small[0] = 9;
    /// assert_eq!(small, &[9, 2, 3]);
    /// ```
    #[inline]
    #[track_caller]
    pub fn alloc_slice_fast<T: Copy>(&self, src: &[T]) -> &mut [T] {
        match typed::try_alloc_slice_copy(self, src) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Layout::array::<T>(src.len()).ok()),
        }
    }

    /// Fallible [`alloc_slice_fast`](Self::alloc_slice_fast).
    #[inline]
    pub fn try_alloc_slice_fast<T: Copy>(&self, src: &[T]) -> Result<&mut [T], AllocError> {
        typed::try_alloc_slice_copy(self, src)
    }

    /// Clones every element of `src` into the arena. The clones are dropped
    /// when their memory is freed.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let names = arena.alloc_slice_clone(&[String::from("a"), String::from("b")]);
    /// assert_eq!(names[1], "b");
    /// ```
    #[track_caller]
    pub fn alloc_slice_clone<T: Clone + Send + 'static>(&self, src: &[T]) -> &mut [T] {
        match typed::try_alloc_slice_from_iter(self, src.len(), src.iter().cloned()) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Layout::array::<T>(src.len()).ok()),
        }
    }

    /// Fallible [`alloc_slice_clone`](Self::alloc_slice_clone).
    pub fn try_alloc_slice_clone<T: Clone + Send + 'static>(
        &self,
        src: &[T],
    ) -> Result<&mut [T], AllocError> {
        typed::try_alloc_slice_from_iter(self, src.len(), src.iter().cloned())
    }

    /// Moves the items of an exact-size iterator into a slice in the arena.
    ///
    /// # Panics
    /// Also panics if the iterator yields fewer items than its `len()`.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let squares = arena.alloc_slice_fill_iter((0..5u32).map(|i| i * i));
    /// assert_eq!(squares, &[0, 1, 4, 9, 16]);
    /// ```
    #[track_caller]
    pub fn alloc_slice_fill_iter<T, I>(&self, iter: I) -> &mut [T]
    where
        T: Send + 'static,
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

    /// Fallible [`alloc_slice_fill_iter`](Self::alloc_slice_fill_iter).
    pub fn try_alloc_slice_fill_iter<T, I>(&self, iter: I) -> Result<&mut [T], AllocError>
    where
        T: Send + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        let iter = iter.into_iter();
        let len = iter.len();
        typed::try_alloc_slice_from_iter(self, len, iter)
    }

    /// A mutable string buffer of `len` bytes, zero-filled (so it is valid
    /// UTF-8: `len` NUL characters) for in-place writing.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let buf = arena.alloc_str_uninit(5);
    /// // SAFETY: ASCII bytes keep the buffer valid UTF-8.
    /// unsafe { buf.as_bytes_mut().copy_from_slice(b"hello") };
    /// assert_eq!(buf, "hello");
    /// ```
    #[track_caller]
    pub fn alloc_str_uninit(&self, len: usize) -> &mut str {
        match typed::try_alloc_str_zeroed(self, len) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Layout::array::<u8>(len).ok()),
        }
    }

    /// Fallible [`alloc_str_uninit`](Self::alloc_str_uninit).
    pub fn try_alloc_str_uninit(&self, len: usize) -> Result<&mut str, AllocError> {
        typed::try_alloc_str_zeroed(self, len)
    }

    /// Raw memory for `layout`: non-null, aligned, uninitialized, valid
    /// until the arena frees it. Zero-sized layouts get a dangling, aligned
    /// pointer.
    ///
    /// ```
    /// use std::alloc::Layout;
    /// let arena = arena_b::Arena::new();
    /// let p = arena.alloc_layout(Layout::from_size_align(64, 4096).unwrap());
    /// assert_eq!(p.as_ptr() as usize % 4096, 0);
    /// ```
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

    /// Makes sure the next `bytes` bytes of allocations (padding included)
    /// need no new chunk, taking one now if the current chunk is too small.
    ///
    /// # Panics
    /// As [`alloc`](Self::alloc) when the chunk cannot be had.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// arena.reserve_additional(1 << 20);
    /// let chunks = arena.chunk_usage().len();
    /// for i in 0..1000u64 { arena.alloc(i); }
    /// assert_eq!(arena.chunk_usage().len(), chunks);
    /// ```
    #[track_caller]
    pub fn reserve_additional(&self, bytes: usize) {
        if let Err(e) = self.try_reserve_additional(bytes) {
            typed::fail(e, Layout::array::<u8>(bytes).ok());
        }
    }

    /// Fallible [`reserve_additional`](Self::reserve_additional).
    pub fn try_reserve_additional(&self, bytes: usize) -> Result<(), AllocError> {
        if bytes == 0 || self.cursor.remaining() >= bytes {
            return Ok(());
        }
        let layout = Layout::from_size_align(bytes, 1).map_err(|_| AllocError::overflow())?;
        let pending = self.grow(layout, Growth::Policy)?;
        self.report_pending(pending);
        Ok(())
    }

    /// Resizes the last block `[ptr, ptr + old_size)` of the arena's cursor in
    /// place if it is the last one (the `Allocator` impl). Giving bytes back
    /// moves the position backwards, which is recorded like a rewind: a
    /// checkpoint taken in between must not be accepted after the bytes are
    /// handed out again.
    #[inline]
    pub(crate) fn resize_last(&self, ptr: NonNull<u8>, old_size: usize, new_size: usize) -> bool {
        let resized = self
            .cursor
            .resize_last(self.chunk_start.get(), ptr, old_size, new_size);
        if resized && new_size < old_size {
            #[cfg(feature = "debug")]
            {
                let here = self.cursor.ptr();
                // SAFETY: the block's tail `[here, here + old - new)` was just
                // given back; it is inside the current chunk, and `here`
                // carries the chunk's provenance.
                let bytes = unsafe { crate::debug::poison(here, here.add(old_size - new_size)) };
                self.note_poisoned(
                    self.current.get(),
                    here.addr() + (old_size - new_size),
                    bytes,
                );
            }
            self.record_rewind(self.pos());
        }
        resized
    }
}

impl Bump for Arena {
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
        let pending = self.grow(layout, Growth::Policy)?;
        let block = self
            .cursor
            .bump(layout)
            .expect("arena-b: a chunk chosen for a layout must fit it");
        Ok((block, pending))
    }

    #[inline(always)]
    fn report(&self, pending: Pending) {
        if pending.0.is_some() {
            self.report_pending(pending);
        }
    }

    #[cfg(feature = "stats")]
    #[inline(always)]
    fn count_alloc(&self) {
        self.counters.allocations.add(1);
    }
}
