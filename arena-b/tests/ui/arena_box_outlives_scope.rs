// An `ArenaBox` made in a scope cannot leave it.
fn main() {
    let arena = arena_b::Arena::new();
    let mut escaped = None;
    arena.scope(|scope| {
        escaped = Some(scope.alloc_box(String::from("gone with the scope")));
    });
    println!("{}", *escaped.unwrap());
}
