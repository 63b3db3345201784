//! The typed allocation API, written once over [`Bump`] and exposed by both
//! [`Arena`](crate::Arena) and [`Scope`](crate::Scope) as thin wrappers.
//!
//! Every function returns memory from `bump.cursor()` (the inlined fast
//! path) or `bump.alloc_slow` (cold), writes the value, and for types that
//! need drop links a destructor into `bump.drop_list()`.

use core::alloc::Layout;
use core::mem::needs_drop;
use core::ptr::{self, NonNull};

use crate::arena::Pending;
use crate::cursor::Cursor;
use crate::drop_list::{slice_layout, DropList, DropNode};
use crate::error::{AllocError, AllocErrorKind};

/// Something that hands out arena memory: a bump cursor for the fast path,
/// a cold slow path, and the drop list its values are registered in.
pub(crate) trait Bump {
    fn cursor(&self) -> &Cursor;
    fn drop_list(&self) -> &DropList;
    /// Serves `layout` (non-zero size) after the cursor could not. The
    /// diagnostics event of a new chunk comes back unreported: the caller
    /// reports it (with [`Bump::report`]) once the new value is written and
    /// its destructor linked, so a sink that takes a checkpoint sees a
    /// consistent arena.
    fn alloc_slow(&self, layout: Layout) -> Result<(NonNull<u8>, Pending), AllocError>;
    /// Reports a deferred diagnostics event.
    fn report(&self, pending: Pending);
    /// Counts one allocation (feature `stats`).
    #[inline(always)]
    fn count_alloc(&self) {}
}

/// A non-null pointer aligned to `align`, for zero-sized requests.
#[inline(always)]
pub(crate) fn dangling(align: usize) -> NonNull<u8> {
    // SAFETY: `align` is a power of two, hence non-zero.
    unsafe { NonNull::new_unchecked(ptr::without_provenance_mut(align)) }
}

/// Raw memory for `layout`; reports any diagnostics event before returning.
#[inline(always)]
pub(crate) fn try_alloc_layout<B: Bump>(b: &B, layout: Layout) -> Result<NonNull<u8>, AllocError> {
    b.count_alloc();
    if layout.size() == 0 {
        return Ok(dangling(layout.align()));
    }
    match b.cursor().bump(layout) {
        Some(p) => Ok(p),
        None => alloc_slow_reported(b, layout),
    }
}

#[cold]
#[inline(never)]
fn alloc_slow_reported<B: Bump>(b: &B, layout: Layout) -> Result<NonNull<u8>, AllocError> {
    let (p, pending) = b.alloc_slow(layout)?;
    b.report(pending);
    Ok(p)
}

/// Raw memory for `layout`, with the diagnostics event of a new chunk left
/// for the caller to report once its value is in place.
#[inline(always)]
fn try_alloc_layout_deferred<B: Bump>(
    b: &B,
    layout: Layout,
) -> Result<(NonNull<u8>, Pending), AllocError> {
    b.count_alloc();
    if layout.size() == 0 {
        return Ok((dangling(layout.align()), Pending(None)));
    }
    match b.cursor().bump(layout) {
        Some(p) => Ok((p, Pending(None))),
        None => b.alloc_slow(layout),
    }
}

/// What the plain (panicking) methods do with an error.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn fail(err: AllocError, layout: Option<Layout>) -> ! {
    crate::limit::unwind_if_set(&err, false);
    if err.kind() == AllocErrorKind::OutOfMemory {
        // The layout the system allocator refused: the chunk's, not the
        // value's (a 5-byte string asks for a whole chunk).
        let refused = err
            .chunk_size()
            .and_then(|size| Layout::from_size_align(size, crate::chunk::CHUNK_ALIGN).ok())
            .or(layout);
        if let Some(refused) = refused {
            std::alloc::handle_alloc_error(refused);
        }
    }
    panic!("{err}")
}

#[inline(always)]
pub(crate) fn try_alloc<B: Bump, T: 'static>(b: &B, value: T) -> Result<&mut T, AllocError> {
    if needs_drop::<T>() {
        b.count_alloc();
        match b.cursor().bump(Layout::new::<DropNode<T>>()) {
            // SAFETY: `node` is fresh arena memory for a `DropNode<T>`, owned
            // by this allocation until the drop list frees it; `T: 'static`,
            // so the destructor cannot read borrowed data (see `drop_list`).
            Some(node) => Ok(unsafe { b.drop_list().push(node.cast(), value).as_mut() }),
            None => try_alloc_drop_slow(b, value),
        }
    } else {
        // SAFETY: `T` has no drop glue, so nothing needs registering.
        unsafe { try_alloc_no_drop(b, value) }
    }
}

/// The slow path of a value that needs drop: the diagnostics event of a
/// new chunk is reported only once the value is written and linked.
#[cold]
#[inline(never)]
fn try_alloc_drop_slow<B: Bump, T: 'static>(b: &B, value: T) -> Result<&mut T, AllocError> {
    let (node, pending) = b.alloc_slow(Layout::new::<DropNode<T>>())?;
    // SAFETY: as in `try_alloc`.
    let value = unsafe { b.drop_list().push(node.cast::<DropNode<T>>(), value) };
    b.report(pending);
    // SAFETY: the value is initialized and exclusively ours.
    Ok(unsafe { &mut *value.as_ptr() })
}

/// Allocates `value` without registering its destructor.
///
/// # Safety
/// None for memory safety (leaking is safe); `unsafe` only keeps callers
/// from using it by accident where a destructor should run. The public
/// `alloc_no_drop` wrappers are safe.
#[inline(always)]
pub(crate) unsafe fn try_alloc_no_drop<B: Bump, T>(b: &B, value: T) -> Result<&mut T, AllocError> {
    let p = try_alloc_layout(b, Layout::new::<T>())?.cast::<T>();
    // SAFETY: `p` is fresh, aligned arena memory for one `T` (or dangling
    // and aligned for a ZST), exclusively ours for the borrow of `b`.
    unsafe {
        p.as_ptr().write(value);
        Ok(&mut *p.as_ptr())
    }
}

#[inline]
pub(crate) fn try_alloc_slice_copy<'b, B: Bump, T: Copy>(
    b: &'b B,
    src: &[T],
) -> Result<&'b mut [T], AllocError> {
    let layout = Layout::array::<T>(src.len()).map_err(|_| AllocError::overflow())?;
    let p = try_alloc_layout(b, layout)?.cast::<T>();
    // SAFETY: `p` is fresh arena memory for `src.len()` `T`s, which cannot
    // overlap `src`; `T: Copy` needs no drop.
    unsafe {
        ptr::copy_nonoverlapping(src.as_ptr(), p.as_ptr(), src.len());
        Ok(core::slice::from_raw_parts_mut(p.as_ptr(), src.len()))
    }
}

#[inline]
pub(crate) fn try_alloc_str<'b, B: Bump>(b: &'b B, s: &str) -> Result<&'b mut str, AllocError> {
    let bytes = try_alloc_slice_copy(b, s.as_bytes())?;
    // SAFETY: the bytes were copied from a `str`.
    Ok(unsafe { core::str::from_utf8_unchecked_mut(bytes) })
}

pub(crate) fn try_alloc_str_zeroed<B: Bump>(b: &B, len: usize) -> Result<&mut str, AllocError> {
    let layout = Layout::array::<u8>(len).map_err(|_| AllocError::overflow())?;
    let p = try_alloc_layout(b, layout)?;
    // SAFETY: `p` is fresh arena memory for `len` bytes; zero bytes are
    // valid UTF-8 (NUL characters).
    unsafe {
        ptr::write_bytes(p.as_ptr(), 0, len);
        let bytes = core::slice::from_raw_parts_mut(p.as_ptr(), len);
        Ok(core::str::from_utf8_unchecked_mut(bytes))
    }
}

/// Allocates a slice of exactly `len` elements taken from `items`.
///
/// Panics if `items` yields fewer than `len` elements (its
/// `ExactSizeIterator::len` lied); the ones written so far are dropped
/// with the arena's memory.
pub(crate) fn try_alloc_slice_from_iter<B: Bump, T: 'static, I: Iterator<Item = T>>(
    b: &B,
    len: usize,
    items: I,
) -> Result<&mut [T], AllocError> {
    if !needs_drop::<T>() {
        let layout = Layout::array::<T>(len).map_err(|_| AllocError::overflow())?;
        let p = try_alloc_layout(b, layout)?.cast::<T>();
        let mut written = 0;
        for item in items.take(len) {
            // SAFETY: `written < len` and the block holds `len` elements.
            unsafe { p.as_ptr().add(written).write(item) };
            written += 1;
        }
        assert_eq!(written, len, "arena-b: ExactSizeIterator::len() reported {len} items but the iterator yielded {written}");
        // SAFETY: all `len` elements are initialized.
        return Ok(unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), len) });
    }
    let (layout, _) = slice_layout::<T>(len).ok_or_else(AllocError::overflow)?;
    let (node, pending) = try_alloc_layout_deferred(b, layout)?;
    // SAFETY: `node` is fresh arena memory laid out by `slice_layout::<T>(len)`,
    // owned by this allocation until the drop list frees it. The header is
    // linked before any element exists, so a panic in `items` leaves exactly
    // the written prefix to be dropped.
    let mut fill = unsafe { b.drop_list().push_slice::<T>(node) };
    b.report(pending);
    for item in items.take(len) {
        // SAFETY: at most `len` elements are pushed into room for `len`.
        unsafe { fill.push(item) };
    }
    let written = fill.len();
    assert_eq!(
        written, len,
        "arena-b: ExactSizeIterator::len() reported {len} items but the iterator yielded {written}"
    );
    // SAFETY: all `len` elements are initialized and exclusively ours.
    Ok(unsafe { core::slice::from_raw_parts_mut(fill.first().as_ptr(), len) })
}
