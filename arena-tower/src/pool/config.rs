//! [`Config`]: the settings of a pool, checked once when the layer is set up.

use arena_b::{ArenaBuilder, LimitPolicy};

/// Most shards a pool may have. One per worker thread is what a pool
/// needs; beyond this the shard array is all overhead.
pub(crate) const MAX_SHARDS: usize = 1024;
/// Largest first chunk a request's arena may be set to: a chunk is taken
/// per thread that allocates, on every request.
pub(crate) const MAX_CHUNK_SIZE: usize = 1 << 30;

/// The settings of an [`ArenaLayer`](crate::ArenaLayer)'s pool.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) chunk_size: usize,
    pub(crate) max_request_bytes: Option<usize>,
    pub(crate) limit_policy: LimitPolicy,
    pub(crate) over_limit_status: http::StatusCode,
    pub(crate) retained_per_shard: usize,
    /// The most bytes of chunks all idle arenas of the pool own together.
    pub(crate) max_retained_bytes: usize,
    pub(crate) max_retained_arena_bytes: usize,
    /// Whether the handle also goes into the request's extensions.
    pub(crate) request_extension: bool,
    /// `None`: the shard count.
    pub(crate) max_retained_arena_threads: Option<usize>,
    pub(crate) record_span_fields: bool,
    pub(crate) shards: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            chunk_size: crate::layer::DEFAULT_CHUNK_SIZE,
            max_request_bytes: None,
            limit_policy: LimitPolicy::Unwind,
            over_limit_status: http::StatusCode::PAYLOAD_TOO_LARGE,
            retained_per_shard: crate::layer::DEFAULT_RETAINED_PER_SHARD,
            max_retained_bytes: crate::layer::DEFAULT_MAX_RETAINED_BYTES,
            max_retained_arena_bytes: crate::layer::DEFAULT_MAX_RETAINED_ARENA_BYTES,
            request_extension: false,
            max_retained_arena_threads: None,
            record_span_fields: true,
            shards: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_SHARDS),
        }
    }
}

impl Config {
    /// The builder of every arena of the pool.
    pub(crate) fn builder(&self) -> ArenaBuilder {
        // A first chunk above the limit could never be taken.
        let chunk_size = self
            .max_request_bytes
            .map_or(self.chunk_size, |limit| self.chunk_size.min(limit.max(1)));
        let builder = ArenaBuilder::new()
            .chunk_size(chunk_size)
            .limit_policy(self.limit_policy)
            .limit_advice("raise ArenaLayer::max_request_bytes");
        match self.max_request_bytes {
            Some(limit) => builder.allocation_limit(limit),
            None => builder,
        }
    }

    /// Whether a request's arena can unwind with its limit: only then are
    /// the handler's `call`, polls and drops run under `catch_unwind` (a
    /// panic that is not the arena's own limit goes on unwinding either
    /// way, so skipping the catch changes nothing but its cost).
    #[inline]
    pub(crate) fn unwinds_at_limit(&self) -> bool {
        // In step with arena-b's builder, whose refusals unwind under
        // `Unwind` only (`LimitPolicy` is non-exhaustive: a new policy that
        // unwinds must be added here).
        self.max_request_bytes.is_some() && self.limit_policy == LimitPolicy::Unwind
    }

    /// The most threads' parts a pooled arena keeps.
    pub(crate) fn max_threads(&self) -> usize {
        self.max_retained_arena_threads.unwrap_or(self.shards)
    }

    /// Checks the settings, with a message that names the bad one.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.shards == 0 || self.shards > MAX_SHARDS {
            return Err(format!(
                "ArenaLayer::shards({}) must be between 1 and {MAX_SHARDS}; one shard per \
                 worker thread is enough",
                self.shards
            ));
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(format!(
                "ArenaLayer::chunk_size({}) must be between 1 and {MAX_CHUNK_SIZE} bytes: every \
                 thread that allocates for a request takes a chunk of this size",
                self.chunk_size
            ));
        }
        if self.max_request_bytes == Some(0) {
            return Err(
                "ArenaLayer::max_request_bytes(0) would refuse every allocation; to have \
                        no limit, do not set one"
                    .to_owned(),
            );
        }
        if !(self.over_limit_status.is_client_error() || self.over_limit_status.is_server_error()) {
            return Err(format!(
                "ArenaLayer::over_limit_status({}) must be an error status (4xx or 5xx)",
                self.over_limit_status
            ));
        }
        if self.max_retained_arena_threads == Some(0) {
            return Err(
                "ArenaLayer::max_retained_arena_threads(0) would shrink every arena; \
                        use at least 1"
                    .to_owned(),
            );
        }
        Self::builder(self)
            .try_build_sync()
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
