// `alloc` runs destructors when the arena frees memory, which is only sound
// for types that own their data: a borrowing type goes through
// `alloc_no_drop` instead.
struct PrintOnDrop<'a>(&'a String);

impl Drop for PrintOnDrop<'_> {
    fn drop(&mut self) {
        println!("{}", self.0);
    }
}

fn main() {
    let arena = arena_b::Arena::new();
    let text = String::from("freed before the arena");
    arena.alloc(PrintOnDrop(&text));
}
