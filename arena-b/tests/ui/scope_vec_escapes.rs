// A collection that allocates in a scope cannot leave the scope.
use allocator_api2::vec::Vec;

fn main() {
    let arena = arena_b::Arena::new();
    let escaped = arena.scope(|scope| {
        let mut v = Vec::new_in(scope);
        v.push(1u32);
        v
    });
    println!("{}", escaped.len());
}
