// An `Arena` may be dropped on another thread, running its values'
// destructors there, so `alloc` asks for `Send`.
fn main() {
    let arena = arena_b::Arena::new();
    arena.alloc(std::rc::Rc::new(1u32));
}
