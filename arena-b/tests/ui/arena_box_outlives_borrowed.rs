// A boxed value that borrows cannot outlive what it borrows: the box runs
// the destructor, so the borrow checker orders it.
struct Reads<'a>(&'a String);

impl Drop for Reads<'_> {
    fn drop(&mut self) {
        println!("{}", self.0);
    }
}

fn main() {
    let arena = arena_b::Arena::new();
    let boxed;
    {
        let text = String::from("freed first");
        boxed = arena.alloc_box(Reads(&text));
    }
    drop(boxed);
}
