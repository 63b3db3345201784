// `reset` needs `&mut Arena`, so it cannot run while a reference is alive.
fn main() {
    let mut arena = arena_b::Arena::new();
    let value = arena.alloc(1u32);
    arena.reset();
    println!("{value}");
}
