// A reference allocated in a scope cannot be returned out of it.
fn main() {
    let arena = arena_b::Arena::new();
    let escaped = arena.scope(|scope| scope.alloc(1u32));
    println!("{escaped}");
}
