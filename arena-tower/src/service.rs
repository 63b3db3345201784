//! [`ArenaService`]: leases an arena per request.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::ArenaBody;
use crate::end::{End, EndGuard};
use crate::future::{limit_or_resume, ResponseFuture};
use crate::pool::{Pool, PoolStats};

/// Middleware that leases an arena from its pool for every request, puts a
/// [`RequestArena`](crate::RequestArena) handle into the request's
/// extensions, and wraps the response body in an [`ArenaBody`] that lets
/// the arena go when the response ends. Made by
/// [`ArenaLayer`](crate::ArenaLayer).
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
/// let svc = ArenaLayer::new().layer(service_fn(|req: Request<()>| async move {
///     let arena = req.extensions().get::<RequestArena>().expect("ArenaLayer adds it");
///     let greeting = arena.alloc_str("hello");
///     let body = http_body_util::Full::new(bytes::Bytes::from(greeting.len().to_string()));
///     Ok::<_, std::convert::Infallible>(Response::new(body))
/// }));
/// let response = svc.oneshot(Request::new(())).await.unwrap();
/// assert!(!response.body().is_ended()); // the body holds the arena until it ends
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ArenaService<S> {
    inner: S,
    pool: Arc<Pool>,
}

impl<S> ArenaService<S> {
    pub(crate) fn new(inner: S, pool: Arc<Pool>) -> ArenaService<S> {
        ArenaService { inner, pool }
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
        self.pool.stats()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ArenaService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<ArenaBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let handle = self.pool.lease(tracing::Span::current());
        // Made before the inner call, so a panic in `call` still ends the
        // response (as "handler_dropped").
        let guard = EndGuard::new(handle.clone(), End::HandlerDropped);
        req.extensions_mut().insert(handle);
        // A service whose `call` allocates (a `service_fn` closure before its
        // `async` block) can hit the byte limit here already.
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(future) => ResponseFuture::new(future, guard),
            Err(payload) => {
                let limit = limit_or_resume(payload, &guard);
                ResponseFuture::over_limit(limit, guard)
            }
        }
    }
}
