// A reference allocated in a scope cannot be stored outside it.
fn main() {
    let arena = arena_b::Arena::new();
    let mut outside: Option<&u32> = None;
    arena.scope(|scope| {
        outside = Some(scope.alloc(1u32));
    });
    println!("{outside:?}");
}
