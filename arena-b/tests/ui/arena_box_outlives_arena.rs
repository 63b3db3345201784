// An `ArenaBox` cannot outlive the arena whose memory holds its value.
fn main() {
    let escaped = {
        let arena = arena_b::Arena::new();
        arena.alloc_box(String::from("gone with the arena"))
    };
    println!("{}", *escaped);
}
