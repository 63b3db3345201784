//! Two threads allocate from one `SyncArena` (through their own parts, the
//! shared lock-free buffer, scopes and the `Allocator` interface) following
//! fuzzer-chosen scripts; every block keeps its contents while both run and
//! after both have finished, and `reset` then frees everything.
#![no_main]

use arbitrary::Arbitrary;
use arena_b::{Arena, SyncArena};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug, Clone)]
enum Op {
    Bytes(u8),
    Value(u32),
    Str(u8),
    Drop(u8),
    Scope(u8),
    Vec(u8),
    ToggleBuffer,
}

#[derive(Arbitrary, Debug)]
struct Input {
    buffer: bool,
    threads: [Vec<Op>; 2],
}

type Blocks = Vec<(usize, usize, u8)>;

fn run(arena: &SyncArena, ops: &[Op], who: u8) -> Blocks {
    let mut mine: Blocks = Vec::new();
    for (i, op) in ops.iter().take(300).enumerate() {
        let tag = who.wrapping_mul(101).wrapping_add(i as u8) | 1;
        match op {
            Op::Bytes(n) => {
                let r = arena.alloc_slice_fast(&vec![tag; *n as usize]);
                mine.push((r.as_ptr() as usize, r.len(), tag));
            }
            Op::Value(v) => {
                let r = arena.alloc([tag; 4]);
                let _ = v;
                mine.push((r.as_ptr() as usize, 4, tag));
            }
            Op::Str(n) => {
                let s = String::from_utf8(vec![b'a' + tag % 26; *n as usize]).unwrap();
                let r = arena.alloc_str(&s);
                let t = r.as_bytes()[0..].first().copied().unwrap_or(tag);
                mine.push((r.as_ptr() as usize, r.len(), t));
            }
            Op::Drop(n) => {
                let r = arena.alloc(vec![tag; *n as usize]);
                mine.push((r.as_ptr() as usize, r.len(), tag));
            }
            Op::Scope(n) => arena.scope(|scope| {
                let r = scope.alloc_slice_fast(&vec![tag; *n as usize]);
                assert!(r.iter().all(|&x| x == tag));
            }),
            Op::Vec(n) => {
                let mut v = allocator_api2::vec::Vec::new_in(arena);
                v.extend(std::iter::repeat_n(tag, *n as usize));
                assert!(v.iter().all(|&x| x == tag));
            }
            Op::ToggleBuffer => {
                if let Some(buffer) = arena.lockfree_allocator() {
                    if buffer.is_enabled() {
                        buffer.disable();
                    } else {
                        buffer.enable();
                    }
                }
            }
        }
        check(&mine);
    }
    mine
}

fn check(blocks: &Blocks) {
    for &(p, len, tag) in blocks {
        // SAFETY: the block is live: the arena is neither reset nor dropped.
        let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, len) };
        assert!(bytes.iter().all(|&x| x == tag), "a block lost its contents");
    }
}

fuzz_target!(|input: Input| {
    let builder = Arena::builder().chunk_size(256);
    let builder = if input.buffer {
        builder.lockfree_buffer(4096, 64)
    } else {
        builder
    };
    let mut arena = builder.build_sync();
    let [a, b] = &input.threads;
    let (x, y) = std::thread::scope(|s| {
        let h = s.spawn(|| run(&arena, b, 2));
        let x = run(&arena, a, 1);
        (x, h.join().unwrap())
    });
    let mut all: Blocks = x.into_iter().chain(y).collect();
    check(&all);
    all.retain(|b| b.1 > 0);
    all.sort_unstable();
    for w in all.windows(2) {
        assert!(
            w[0].0 + w[0].1 <= w[1].0,
            "overlapping blocks across threads"
        );
    }
    arena.validate().expect("no write into freed memory");
    arena.reset();
    assert_eq!(arena.bytes_allocated(), 0);
});
