//! What the request benches (`benches/tower.rs`) and the callgrind probe
//! (`scripts/tools/hot_path.rs`) both need: polling a future that never
//! waits, and the hand-rolled pool of `bumpalo::Bump`s that users write
//! instead of `ArenaLayer`.

use std::cell::RefCell;

/// Polls a future that never waits to completion (a no-op waker).
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

thread_local! {
    /// The hand-rolled pool: idle `Bump`s of this thread.
    static BUMPS: RefCell<Vec<bumpalo::Bump>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on a `Bump` from this thread's hand-rolled pool, then resets it
/// and gives it back, as a user without arena-tower would.
pub fn with_pooled_bump<R>(f: impl FnOnce(&bumpalo::Bump) -> R) -> R {
    let mut bump = BUMPS.with(|p| p.borrow_mut().pop()).unwrap_or_default();
    let out = f(&bump);
    bump.reset();
    BUMPS.with(|p| p.borrow_mut().push(bump));
    out
}
