// References cannot outlive the arena.
fn main() {
    let value;
    {
        let arena = arena_b::Arena::new();
        value = arena.alloc(1u32);
    }
    println!("{value}");
}
