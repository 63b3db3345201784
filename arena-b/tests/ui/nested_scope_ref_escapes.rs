// A nested scope's reference cannot be kept by the outer scope.
fn main() {
    let arena = arena_b::Arena::new();
    arena.scope(|outer| {
        let mut kept: Option<&str> = None;
        outer.scope(|inner| {
            kept = Some(inner.alloc_str("temporary"));
        });
        println!("{kept:?}");
    });
}
