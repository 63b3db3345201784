//! The mixed-size round of issue 16, shared by `benches/alloc.rs` and
//! `scripts/tools/hot_path.rs` (the callgrind probe), so that both measure
//! the same loop.

/// 16 bytes aligned to 16.
#[derive(Clone, Copy)]
#[allow(dead_code)] // only its size and alignment matter
#[repr(align(16))]
pub(crate) struct Aligned16(pub(crate) [u8; 16]);

/// One round of `mixed_sizes`: 1,024 allocations of 3, 8, 32, 16 (aligned
/// to 16) and 200 bytes in turn, about 53 KB, through `alloc`.
/// `$e` is the allocation of value `$v` (expanded once per type).
#[allow(unused_macros)]
macro_rules! mixed_round {
    ($v:ident => $e:expr) => {
        for i in 0..MANY as usize {
            match i % 5 {
                0 => {
                    let $v = [i as u8; 3];
                    black_box($e);
                }
                1 => {
                    let $v = i as u64;
                    black_box($e);
                }
                2 => {
                    let $v = [i as u8; 32];
                    black_box($e);
                }
                3 => {
                    let $v = Aligned16([i as u8; 16]);
                    black_box($e);
                }
                _ => {
                    let $v = [i as u8; 200];
                    black_box($e);
                }
            }
        }
    };
}
