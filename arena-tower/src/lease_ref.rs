//! [`LeaseBox`] and [`LeaseRef`]: a pooled lease, owned alone or counted.
//!
//! An `Arc<Lease>` would do, but costs where a request pays it: leasing
//! from the pool needs `&mut Lease` (`Arc::get_mut`: a compare-and-swap),
//! and the release would need it again to find itself the last owner. Here
//! the pool owns each idle lease alone, as a `LeaseBox` (plain writes), a
//! request shares it as `LeaseRef`s (a count in the lease), and the drop
//! of the last `LeaseRef` (one atomic decrement, which exactly one thread
//! sees reach zero) turns it back into a `LeaseBox` and releases it. The
//! allocation is made once, when the pool builds the lease, and reused.
#![allow(unsafe_code)]

use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{fence, Ordering};

use crate::lease::Lease;

/// A lease owned alone (pooled, or being released); its count is zero.
pub(crate) struct LeaseBox(NonNull<Lease>);

/// One counted reference to a leased lease (its count is the number of
/// `LeaseRef`s).
pub(crate) struct LeaseRef(NonNull<Lease>);

// SAFETY: a `LeaseBox` is the only access to its `Lease`, like a `Box`.
unsafe impl Send for LeaseBox {}
// SAFETY: `&LeaseBox` gives no access to the lease at all.
unsafe impl Sync for LeaseBox {}
// SAFETY: `LeaseRef` gives `&Lease` on any thread (`Lease: Sync`) and the
// last one moves the lease to the thread that drops it (`Lease: Send`),
// as an `Arc` does.
unsafe impl Send for LeaseRef {}
// SAFETY: as for `Send`.
unsafe impl Sync for LeaseRef {}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Lease>();
};

/// Most references: beyond it a count could overflow (`Arc`'s guard).
const MAX_REFS: usize = isize::MAX as usize;

impl LeaseBox {
    pub(crate) fn new(lease: Lease) -> LeaseBox {
        LeaseBox(NonNull::from(Box::leak(Box::new(lease))))
    }

    #[inline(always)]
    pub(crate) fn get_mut(&mut self) -> &mut Lease {
        // SAFETY: the box owns the lease (made by `Box::leak`, freed only by
        // `Drop`), no `LeaseRef` to it exists (count zero), and `&mut self`
        // excludes every other access.
        unsafe { self.0.as_mut() }
    }

    /// Hands the lease to a request: the first counted reference.
    #[inline]
    pub(crate) fn share(mut self) -> LeaseRef {
        *self.get_mut().refs.get_mut() = 1;
        let lease = self.0;
        std::mem::forget(self);
        LeaseRef(lease)
    }
}

impl Drop for LeaseBox {
    fn drop(&mut self) {
        // SAFETY: made by `Box::leak` in `new`; this box is its only owner
        // and drops it once.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

impl LeaseRef {
    /// References alive (this one included): exact when no other thread
    /// clones or drops one meanwhile.
    #[inline]
    pub(crate) fn count(&self) -> usize {
        self.refs.load(Ordering::Acquire)
    }
}

impl Deref for LeaseRef {
    type Target = Lease;

    #[inline(always)]
    fn deref(&self) -> &Lease {
        // SAFETY: the count includes this reference, so the lease is neither
        // freed nor given to a `LeaseBox` (which happens only when the count
        // reaches zero); references only ever share it.
        unsafe { self.0.as_ref() }
    }
}

impl Clone for LeaseRef {
    #[inline]
    fn clone(&self) -> LeaseRef {
        // Relaxed, as `Arc::clone`: the new reference comes from an existing
        // one, which keeps the lease alive meanwhile.
        if self.refs.fetch_add(1, Ordering::Relaxed) > MAX_REFS {
            std::process::abort();
        }
        LeaseRef(self.0)
    }
}

impl Drop for LeaseRef {
    #[inline]
    fn drop(&mut self) {
        // Release, then Acquire for the last one, as `Arc::drop`: every use
        // of the lease through other references happens before the release.
        if self.refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        // The count reached zero: no other reference exists or can be made
        // (references are only cloned from live ones), so this thread owns
        // the lease alone again.
        Lease::released(LeaseBox(self.0));
    }
}
