// `Arena` is Send but not Sync: share a `SyncArena` instead.
fn assert_sync<T: Sync>() {}

fn main() {
    assert_sync::<arena_b::Arena>();
}
