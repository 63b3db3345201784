//! A game loop with per-frame scratch memory: each frame takes a checkpoint,
//! allocates its entities and particles in the arena, and rewinds at the
//! end, so the frame's memory is reused by the next one and the system
//! allocator is not touched after the first frames.
//!
//! Run: `cargo run --example game_loop [frames]`

use std::time::Instant;

use arena_b::Arena;

#[derive(Clone, Copy)]
struct Entity {
    x: f32,
    y: f32,
    vx: f32,
    vy: f32,
}

#[derive(Clone, Copy)]
struct Particle {
    x: f32,
    y: f32,
    life: u8,
}

fn allocate_entities(arena: &Arena, frame: u32) -> &mut [Entity] {
    arena.alloc_slice_fill_iter((0..500).map(|i| Entity {
        x: i as f32,
        y: frame as f32,
        vx: 1.0,
        vy: 0.5,
    }))
}

fn allocate_particles<'a>(arena: &'a Arena, entities: &[Entity]) -> &'a mut [Particle] {
    // Four particles per entity, straight into the arena (no temporary Vec).
    arena.alloc_slice_fill_iter((0..entities.len() * 4).map(|j| {
        let e = entities[j / 4];
        Particle {
            x: e.x + (j % 4) as f32,
            y: e.y,
            life: 30,
        }
    }))
}

fn main() {
    let frames: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let arena = Arena::with_capacity(256 * 1024);
    let start = Instant::now();
    let mut checksum = 0.0f64;
    for frame in 0..frames {
        let checkpoint = arena.checkpoint();

        // Allocate frame-specific data.
        let entities = allocate_entities(&arena, frame);
        for e in entities.iter_mut() {
            e.x += e.vx;
            e.y += e.vy;
        }
        let particles = allocate_particles(&arena, entities);
        for p in particles.iter_mut() {
            p.life -= 1;
        }
        checksum += entities.iter().map(|e| (e.x + e.y) as f64).sum::<f64>()
            + particles
                .iter()
                .map(|p| (p.x + p.y + p.life as f32) as f64)
                .sum::<f64>();

        // Free all frame data at once.
        // SAFETY: `entities` and `particles` are not used after this point.
        unsafe { arena.rewind_to_checkpoint(checkpoint) };
    }
    let elapsed = start.elapsed();
    let stats = arena.stats();
    println!("frames:      {frames}");
    println!(
        "time:        {:.2?} total, {:.2?} per frame",
        elapsed,
        elapsed / frames.max(1)
    );
    println!("checksum:    {checksum:.1}");
    println!(
        "arena:       {} bytes in use after the last frame, {} bytes of capacity in {} chunk(s)",
        stats.bytes_allocated, stats.capacity, stats.chunks
    );
}
