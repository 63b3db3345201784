//! [`RequestArena`] as an axum extractor (feature `axum`, on by default).

use std::convert::Infallible;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::handle::RequestArena;

/// The extractor takes the handle of the request that
/// [`ArenaLayer`](crate::ArenaLayer) is serving ([`RequestArena::current`],
/// or the request's extensions with
/// [`request_extension`](crate::ArenaLayer::request_extension)); without
/// the layer it rejects the request with [`MissingArenaLayer`] (a 500).
/// `Option<RequestArena>` never rejects.
///
/// ```no_run
/// use arena_tower::{ArenaLayer, RequestArena};
/// use axum::{routing::post, Json, Router};
///
/// async fn sum(arena: RequestArena, Json(numbers): Json<Vec<i64>>) -> String {
///     let copy = arena.alloc_slice_fast(&numbers);
///     copy.sort_unstable();
///     format!("sum {} median {}", copy.iter().sum::<i64>(), copy.get(copy.len() / 2).unwrap_or(&0))
/// }
///
/// let app: Router = Router::new().route("/sum", post(sum)).layer(ArenaLayer::new());
/// ```
impl<S: Send + Sync> FromRequestParts<S> for RequestArena {
    type Rejection = MissingArenaLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let arena = find(parts).ok_or(MissingArenaLayer)?;
        // Extraction runs where the handler runs, in the request's span even
        // when the layer sits outside the layer that made it.
        arena.lease().saw_span();
        Ok(arena)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for RequestArena {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let arena = find(parts);
        if let Some(arena) = &arena {
            arena.lease().saw_span();
        }
        Ok(arena)
    }
}

/// The request's handle: the current one, else the extensions' one.
#[inline]
fn find(parts: &Parts) -> Option<RequestArena> {
    RequestArena::current().or_else(|| parts.extensions.get::<RequestArena>().cloned())
}

/// Rejection of the [`RequestArena`] extractor when the request did not
/// pass through an [`ArenaLayer`](crate::ArenaLayer): a `500 Internal
/// Server Error` whose body says how to fix the server's setup, since this
/// is a bug there, not in the request. When an `ArenaLayer` exists in the
/// process, the likely cause is axum's `Router::layer`, which wraps only
/// the routes added before it, and the message says so.
///
/// The rejection is logged as an `ERROR` (target `arena_tower`) at most
/// once a minute, with the number of rejections since the last log: any
/// client could otherwise flood the log.
///
/// ```
/// use arena_tower::MissingArenaLayer;
/// use axum::response::IntoResponse;
///
/// let response = MissingArenaLayer.into_response();
/// assert_eq!(response.status(), 500);
/// assert!(MissingArenaLayer.to_string().contains("ArenaLayer"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MissingArenaLayer;

impl MissingArenaLayer {
    const NO_LAYER: &'static str = "RequestArena extractor used without ArenaLayer: add \
                                    `.layer(arena_tower::ArenaLayer::new())` to the router or \
                                    service";
    const ROUTE_NOT_WRAPPED: &'static str =
        "RequestArena extractor used on a route that no ArenaLayer wraps: axum's \
         `Router::layer` applies only to the routes added before it, so call \
         `.layer(arena_tower::ArenaLayer::new())` after the `.route(..)` calls (and if \
         a layer between ArenaLayer and the handler runs it in another task, such as \
         tower's Buffer, put ArenaLayer inside it or set ArenaLayer::request_extension)";

    fn message(self) -> &'static str {
        if crate::layer::layer_exists() {
            Self::ROUTE_NOT_WRAPPED
        } else {
            Self::NO_LAYER
        }
    }
}

impl fmt::Display for MissingArenaLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for MissingArenaLayer {}

/// Rejections since the last log, and when that was (seconds since
/// `LOG_EPOCH`, plus one; 0: never).
static REJECTIONS: AtomicU64 = AtomicU64::new(0);
static LAST_LOG: AtomicU64 = AtomicU64::new(0);
static LOG_EPOCH: OnceLock<Instant> = OnceLock::new();
/// Seconds between two logs of the rejection.
const LOG_EVERY_SECS: u64 = 60;

impl IntoResponse for MissingArenaLayer {
    fn into_response(self) -> Response {
        let message = self.message();
        REJECTIONS.fetch_add(1, Ordering::Relaxed);
        let now = LOG_EPOCH.get_or_init(Instant::now).elapsed().as_secs() + 1;
        let last = LAST_LOG.load(Ordering::Relaxed);
        if (last == 0 || now >= last + LOG_EVERY_SECS)
            && LAST_LOG
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let rejections = REJECTIONS.swap(0, Ordering::Relaxed);
            tracing::error!(
                target: "arena_tower",
                rejections,
                "{message} ({rejections} request(s) rejected since the last report; reported at \
                 most once a minute)"
            );
        }
        (StatusCode::INTERNAL_SERVER_ERROR, message).into_response()
    }
}
