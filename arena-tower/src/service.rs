//! [`ArenaService`]: leases an arena per request.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::ArenaBody;
use crate::current;
use crate::end::{BodyEnd, End, EndGuard, ResponseEnd};
use crate::future::{catch_limit_unwind, limit_or_resume, ResponseFuture};
use crate::pool::{PoolOwner, PoolStats};

/// Middleware that leases an arena from its pool for every request and
/// makes it the request's [`RequestArena`](crate::RequestArena) while the
/// inner service runs. Made by [`ArenaLayer`](crate::ArenaLayer).
///
/// The handler finds the arena with the axum extractor or
/// [`RequestArena::current`](crate::RequestArena::current) (and in the
/// request's extensions, with
/// [`ArenaLayer::request_extension`](crate::ArenaLayer::request_extension)).
/// `E` says where the response ends (see [`EndAt`](crate::EndAt)): by default the
/// response passes through unchanged; with
/// [`ArenaLayer::track_body`](crate::ArenaLayer::track_body) its body is
/// wrapped in an [`ArenaBody`].
///
/// `poll_ready` is the inner service's, and errors pass through unchanged
/// (`Error = S::Error`), so an axum router's `Infallible` bound holds.
///
/// ```
/// use arena_tower::{ArenaLayer, RequestArena};
/// use http::{Request, Response};
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let svc = ArenaLayer::new().layer(service_fn(|_req: Request<()>| async move {
///     let arena = RequestArena::current().expect("ArenaLayer serves this request");
///     let greeting = arena.alloc_str("hello");
///     let body = http_body_util::Full::new(bytes::Bytes::from(greeting.len().to_string()));
///     Ok::<_, std::convert::Infallible>(Response::new(body))
/// }));
/// let response = svc.oneshot(Request::new(())).await.unwrap();
/// assert_eq!(response.status(), 200);
/// # }
/// ```
pub struct ArenaService<S, E = ResponseEnd> {
    inner: S,
    pool: Arc<PoolOwner>,
    end: PhantomData<fn() -> E>,
}

impl<S: Clone, E> Clone for ArenaService<S, E> {
    fn clone(&self) -> Self {
        ArenaService {
            inner: self.inner.clone(),
            pool: Arc::clone(&self.pool),
            end: PhantomData,
        }
    }
}

impl<S: fmt::Debug, E> fmt::Debug for ArenaService<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaService")
            .field("inner", &self.inner)
            .field("pool", &self.pool)
            .finish()
    }
}

impl<S, E> ArenaService<S, E> {
    pub(crate) fn new(inner: S, pool: Arc<PoolOwner>) -> ArenaService<S, E> {
        ArenaService {
            inner,
            pool,
            end: PhantomData,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The counters of the pool shared with the layer that made this
    /// service.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.0.stats()
    }

    /// Leases the request's arena and calls the inner service with it as
    /// the current request.
    // (The one unsafe call here is `current::enter`, whose guard stays a
    // local.)
    #[allow(unsafe_code)]
    #[inline]
    fn start<ReqBody>(&mut self, mut req: Request<ReqBody>) -> ResponseFuture<S::Future, E>
    where
        S: Service<Request<ReqBody>>,
    {
        let pool = &self.pool.0;
        let handle = pool.lease(crate::lease::current_span());
        if pool.config.request_extension {
            req.extensions_mut().insert(handle.clone());
        }
        // Made before the inner call, so a panic in `call` still ends the
        // response (as "handler_dropped").
        let catch = pool.config.unwinds_at_limit();
        let guard = EndGuard::new(handle, End::HandlerDropped, catch);
        // A service whose `call` allocates (a `service_fn` closure before its
        // `async` block) can hit the byte limit here already.
        if catch {
            let called = current::with_current(guard.handle(), || {
                catch_limit_unwind(true, || self.inner.call(req))
            });
            return match called {
                Ok(future) => ResponseFuture::new(future, guard),
                Err(payload) => {
                    let limit = limit_or_resume(payload, &guard);
                    ResponseFuture::over_limit(limit, guard)
                }
            };
        }
        // Without a catch, no closure: the request goes to `call` without
        // being moved into one first. (A local guard, dropped before
        // `guard` moves, as `Entered` must be.)
        // SAFETY: `entered` is a local, dropped on the next line but one
        // (or by an unwind out of `call`), after anything `call` entered.
        let entered = unsafe { current::enter(guard.handle()) };
        let future = self.inner.call(req);
        drop(entered);
        ResponseFuture::new(future, guard)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ArenaService<S, ResponseEnd>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResponseEnd>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        self.start(req)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ArenaService<S, BodyEnd>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<ArenaBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, BodyEnd>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        self.start(req)
    }
}
