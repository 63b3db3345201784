// `SyncArena::local` is the calling thread's part, a plain `Arena`: it
// must not reach another thread (`&Arena` is not `Send`), where its owner's
// unsynchronized fast path would race with that thread's.
fn main() {
    let arena = arena_b::SyncArena::new();
    let part = arena.local();
    std::thread::scope(|s| {
        s.spawn(move || *part.alloc(1u32));
    });
}
