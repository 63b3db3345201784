//! `arena-tower` benchmarks, in process (no sockets), all contenders in one
//! binary so the ratios come from one run.
//!
//! * `layer_overhead`: what the layer itself costs.
//!   - `lease_release`: `ArenaLayer::lease()` plus the release of its last
//!     handle (pool pop, reset, pool push), the per-request core;
//!   - `request_noop/{with_layer,without_layer}`: a handler that does
//!     nothing, called through `ArenaService` or directly; the difference
//!     is the layer's cost per request (lease, extensions insert, end
//!     guard, body wrapper, release).
//! * `axum_scratch_handler`: a realistic handler through the axum router
//!   (tokenize a 2 KB text, lower-case every word into its own buffer,
//!   count them in a hash map, sort, answer the top five: a few hundred
//!   small allocations), with its scratch data in the request arena
//!   (`arena`), in the system allocator (`system`), and in mimalloc
//!   (`mimalloc`, used as an `Allocator` for the same collections).
//!   Most of its time is hashing and sorting, the same for every allocator.
//! * `axum_parse_handler`: the issue's "parse, a few hundred small
//!   allocations, build a response" without the hash map and the sort:
//!   parse an 80-row CSV body into records (a normalized copy of three
//!   fields and a tag list each: ~330 small allocations), then write the
//!   records that pass a filter into the response. Same three
//!   allocators, same router setup.
//!
//! Futures are polled with a no-op waker: nothing here ever waits.

#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use std::alloc::{GlobalAlloc, Layout};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::Duration;

use allocator_api2::alloc::{AllocError, Allocator, Global};
use allocator_api2::vec::Vec as AVec;
use arena_tower::{ArenaLayer, RequestArena};
use axum::body::Body;
use axum::routing::post;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use hashbrown::{DefaultHashBuilder, HashMap};
use http::{Request, Response};
use http_body_util::Empty;
use mimalloc::MiMalloc;
use tower::{Layer, Service, ServiceExt};

/// Polls a future that never waits to completion.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// mimalloc as an `Allocator`, so the same collections can use it without
/// replacing the benchmark's global allocator.
#[derive(Clone, Copy)]
struct Mi;

// SAFETY: every block comes from `MiMalloc` with the layout it is freed or
// resized with; zero-sized requests get a dangling pointer and never reach
// mimalloc.
unsafe impl Allocator for Mi {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            let dangling = NonNull::new(layout.align() as *mut u8).ok_or(AllocError)?;
            return Ok(NonNull::slice_from_raw_parts(dangling, 0));
        }
        // SAFETY: non-zero size.
        let p = unsafe { MiMalloc.alloc(layout) };
        NonNull::new(p)
            .map(|p| NonNull::slice_from_raw_parts(p, layout.size()))
            .ok_or(AllocError)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: allocated by `allocate` with this layout.
            unsafe { MiMalloc.dealloc(ptr.as_ptr(), layout) }
        }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if old.size() == 0 || old.align() != new.align() {
            let block = self.allocate(new)?;
            // SAFETY: both blocks are valid for `old.size()` bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr.as_ptr(), block.cast().as_ptr(), old.size());
                self.deallocate(ptr, old);
            }
            return Ok(block);
        }
        // SAFETY: `ptr` came from mimalloc with `old`; same alignment.
        let p = unsafe { MiMalloc.realloc(ptr.as_ptr(), old, new.size()) };
        NonNull::new(p)
            .map(|p| NonNull::slice_from_raw_parts(p, new.size()))
            .ok_or(AllocError)
    }
}

const TEXT: &str = "The quick brown fox jumps over the lazy dog while the cat watches \
    from the fence and the bird sings a song about the morning sun rising over the hills \
    and the river flows past the old mill where the miller grinds the grain into flour \
    for the bread that the baker bakes every morning before the town wakes up to the \
    sound of the church bells ringing across the valley and the children run to school \
    with their books and their lunches packed by their mothers who worry about the rain \
    that might come later in the afternoon when the clouds gather over the mountains and \
    the wind picks up from the west carrying the smell of pine and wet earth through the \
    streets where the shopkeepers open their doors and sweep the dust from their steps \
    while the dogs bark at the passing carts and the horses stamp their hooves impatiently \
    waiting for their drivers who are drinking coffee in the cafe on the corner of the \
    square where the old men play chess and argue about politics and the weather and the \
    price of bread which has gone up again this year because the harvest was poor and the \
    mill had to close for repairs after the flood last spring damaged the wheel and the \
    miller had to borrow money from the bank to fix it and now he charges more for the \
    flour and the baker charges more for the bread and everyone complains but they still \
    buy it because what else can they do in a small town like this one in the valley";

/// `text`'s bytes through `map`, in a new buffer of allocator `A`.
///
/// Copied first, then mapped in place: both loops are simple enough to
/// vectorize. `buf.extend(text.bytes().map(map))` would not be:
/// `allocator_api2`'s `Vec` cannot specialize `extend` for exact-size
/// iterators the way `std`'s does, so it pushes byte by byte with a capacity
/// check, which was up to a fifth of the parse handler's instructions on every
/// allocator and made the comparison one of code generation. Generic over
/// the mapping, so every call site inlines its own.
fn mapped_copy<A: Allocator>(text: &str, alloc: A, map: impl Fn(u8) -> u8) -> AVec<u8, A> {
    let mut buf = AVec::with_capacity_in(text.len(), alloc);
    buf.resize(text.len(), 0);
    for (to, from) in buf.iter_mut().zip(text.bytes()) {
        *to = map(from);
    }
    buf
}

/// Calls `push` with each word of `input`. Not generic and never inlined,
/// so every allocator runs the same code for it (see `csv_fields`).
#[inline(never)]
fn split_words<'a>(input: &'a str, push: &mut dyn FnMut(&'a str)) {
    input
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .for_each(push);
}

/// The handler's work, on allocator `A`.
fn scratch_work<A: Allocator + Clone>(input: &str, alloc: A) -> String {
    let mut words: AVec<&str, A> = AVec::new_in(alloc.clone());
    split_words(input, &mut |word| words.push(word));
    let mut lowered: AVec<AVec<u8, A>, A> = AVec::with_capacity_in(words.len(), alloc.clone());
    for word in &words {
        lowered.push(mapped_copy(word, alloc.clone(), |b| b.to_ascii_lowercase()));
    }
    let mut counts: HashMap<&[u8], u32, DefaultHashBuilder, A> =
        HashMap::with_hasher_in(DefaultHashBuilder::default(), alloc.clone());
    for word in &lowered {
        *counts.entry(&word[..]).or_insert(0) += 1;
    }
    let mut top: AVec<(&[u8], u32), A> = AVec::with_capacity_in(counts.len(), alloc);
    top.extend(counts.iter().map(|(w, n)| (*w, *n)));
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut out = String::with_capacity(64);
    for (word, n) in top.iter().take(5) {
        let _ = write!(out, "{}={n} ", std::str::from_utf8(word).unwrap_or("?"));
    }
    out
}

/// The CSV body of `axum_parse_handler`: 80 rows of
/// `name,email,city,score,tag;tag`, about 3.3 KB.
fn csv_body() -> String {
    const NAMES: [&str; 10] = [
        "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Ken", "Dennis", "Linus", "Margaret",
    ];
    const CITIES: [&str; 8] = [
        "Zurich", "Lisbon", "Osaka", "Quito", "Tallinn", "Perth", "Accra", "Oslo",
    ];
    const TAGS: [&str; 6] = ["admin", "beta", "ops", "dev", "qa", "sales"];
    let mut body = String::new();
    for i in 0..80 {
        let name = NAMES[i % NAMES.len()];
        let _ = writeln!(
            body,
            "{name} Example{i},{name}.Example{i}@Example.COM,{},{},{};{}",
            CITIES[i % CITIES.len()],
            (i * 37) % 100,
            TAGS[i % TAGS.len()],
            TAGS[(i * 5 + 1) % TAGS.len()],
        );
    }
    body
}

/// One parsed CSV row, its text normalized into buffers of allocator `A`.
struct Row<'a, A: Allocator> {
    name: AVec<u8, A>,
    email: AVec<u8, A>,
    city: AVec<u8, A>,
    score: u32,
    tags: AVec<&'a str, A>,
}

/// The fields of one CSV line, from `csv_fields`.
struct Fields<'a> {
    name: &'a str,
    email: &'a str,
    city: &'a str,
    score: u32,
    tags: &'a str,
}

// `csv_fields`, `split_tags` and `write_row` are the parse handler's
// allocator-independent work. They are not generic and never inlined, so
// every allocator runs the same machine code for them: inlined into each
// allocator's copy of `parse_work`, `str::split` alone came out at 21k or
// 51k instructions per request depending on the build (callgrind), which
// swamped the allocators' difference.

/// Splits a CSV line into its fields.
#[inline(never)]
fn csv_fields(line: &str) -> Option<Fields<'_>> {
    let mut fields = line.split(',');
    Some(Fields {
        name: fields.next()?,
        email: fields.next()?,
        city: fields.next()?,
        score: fields.next()?.parse().unwrap_or(0),
        tags: fields.next()?,
    })
}

/// Calls `push` with each tag of a `tag;tag` field.
#[inline(never)]
fn split_tags<'a>(tags: &'a str, push: &mut dyn FnMut(&'a str)) {
    tags.split(';').for_each(push);
}

/// Writes one answer line.
#[inline(never)]
fn write_row(out: &mut String, name: &[u8], email: &[u8], city: &[u8], score: u32, tags: &[&str]) {
    fn text(buf: &[u8]) -> &str {
        std::str::from_utf8(buf).unwrap_or("?")
    }
    let _ = write!(
        out,
        "{} <{}> {} {score}:",
        text(name),
        text(email),
        text(city)
    );
    for tag in tags {
        out.push(' ');
        out.push_str(tag);
    }
    out.push('\n');
}

/// The parse handler's work, on allocator `A`: parse every row into a
/// `Row` (email lower-cased, city upper-cased), answer the rows scoring 50
/// or more, one line each.
fn parse_work<A: Allocator + Clone>(input: &str, alloc: A) -> String {
    let mut rows: AVec<Row<'_, A>, A> = AVec::new_in(alloc.clone());
    for fields in input.lines().filter_map(csv_fields) {
        let mut tags = AVec::new_in(alloc.clone());
        split_tags(fields.tags, &mut |tag| tags.push(tag));
        rows.push(Row {
            name: mapped_copy(fields.name, alloc.clone(), |b| b),
            email: mapped_copy(fields.email, alloc.clone(), |b| b.to_ascii_lowercase()),
            city: mapped_copy(fields.city, alloc.clone(), |b| b.to_ascii_uppercase()),
            score: fields.score,
            tags,
        });
    }
    let mut out = String::with_capacity(input.len());
    for row in rows.iter().filter(|row| row.score >= 50) {
        write_row(
            &mut out, &row.name, &row.email, &row.city, row.score, &row.tags,
        );
    }
    out
}

fn layer_overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("layer_overhead");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));

    let layer = ArenaLayer::new();
    group.bench_function("lease_release", |b| {
        b.iter(|| {
            let arena = layer.lease();
            black_box(arena.alloc(black_box(1u64)));
        });
    });

    let handler = |req: Request<()>| async move {
        black_box(&req);
        Ok::<_, Infallible>(Response::new(Empty::<bytes::Bytes>::new()))
    };
    let mut with_layer = ArenaLayer::new().layer(tower::service_fn(handler));
    group.bench_function("request_noop/with_layer", |b| {
        b.iter(|| drop(block_on(with_layer.call(Request::new(())))));
    });
    let mut without_layer = tower::service_fn(handler);
    group.bench_function("request_noop/without_layer", |b| {
        b.iter(|| drop(block_on(without_layer.call(Request::new(())))));
    });
    group.finish();
}

/// The seven benches of a handler group: `$work` alone (no axum) on the
/// request arena (leased and released around it, as the layer does), a
/// plain `Arena`, the system allocator and mimalloc; then `$work` as an
/// axum handler on each of the three allocators, routed at `$path`, each
/// called with a POST of `$body`.
macro_rules! handler_group {
    ($c:expr, $name:literal, $work:ident, $input:expr, $path:literal, $body:expr) => {{
        async fn arena_handler(arena: RequestArena, body: String) -> String {
            $work(&body, &arena)
        }
        async fn system_handler(body: String) -> String {
            $work(&body, Global)
        }
        async fn mimalloc_handler(body: String) -> String {
            $work(&body, Mi)
        }
        let mut group = $c.benchmark_group($name);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        let input = $input;
        // Same answer from every allocator.
        assert_eq!($work(input, Global), $work(input, Mi));

        let layer = ArenaLayer::new();
        group.bench_function("work_only/arena", |b| {
            b.iter(|| {
                let arena = layer.lease();
                black_box($work(black_box(input), &arena));
            })
        });
        let mut plain = arena_b::Arena::new();
        group.bench_function("work_only/plain_arena", |b| {
            b.iter(|| {
                black_box($work(black_box(input), &plain));
                plain.reset();
            })
        });
        group.bench_function("work_only/system", |b| {
            b.iter(|| black_box($work(black_box(input), Global)))
        });
        group.bench_function("work_only/mimalloc", |b| {
            b.iter(|| black_box($work(black_box(input), Mi)))
        });

        let routers = [
            (
                "arena",
                Router::new()
                    .route($path, post(arena_handler))
                    .layer(ArenaLayer::new()),
            ),
            ("system", Router::new().route($path, post(system_handler))),
            (
                "mimalloc",
                Router::new().route($path, post(mimalloc_handler)),
            ),
        ];
        for (name, router) in routers {
            group.bench_function(name, |b| {
                b.iter(|| {
                    let request = Request::post($path).body(Body::from($body)).unwrap();
                    let response = block_on(router.clone().oneshot(request)).unwrap();
                    assert!(response.status().is_success());
                    drop(black_box(response));
                })
            });
        }
        group.finish();
    }};
}

fn axum_scratch_handler(c: &mut Criterion) {
    handler_group!(
        c,
        "axum_scratch_handler",
        scratch_work,
        TEXT,
        "/words",
        TEXT
    );
}

fn axum_parse_handler(c: &mut Criterion) {
    let body = csv_body();
    assert_eq!(
        parse_work(&body, Global).lines().count(),
        39,
        "a real answer"
    );
    handler_group!(
        c,
        "axum_parse_handler",
        parse_work,
        body.as_str(),
        "/rows",
        body.clone()
    );
}

criterion_group!(
    benches,
    layer_overhead,
    axum_scratch_handler,
    axum_parse_handler
);
criterion_main!(benches);
