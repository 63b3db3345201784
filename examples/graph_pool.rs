//! Graph traversal with pooled scratch buffers: the graph lives in an
//! arena, and breadth-first searches from many threads borrow their queue
//! and visited-set buffers from a `LockFreePool` instead of allocating them
//! per search.
//!
//! Run: `cargo run --example graph_pool --features lockfree`

use std::collections::VecDeque;

use arena_b::{Arena, LockFreePool};

/// Adjacency lists, in the arena.
struct Graph<'a> {
    edges: Vec<&'a [u32]>,
}

/// A ring-ish graph with a few long jumps, built in `arena`.
fn build_graph(arena: &Arena, nodes: u32) -> Graph<'_> {
    let edges = (0..nodes)
        .map(|n| {
            let out = [(n + 1) % nodes, (n + 7) % nodes, (n * 31 + 3) % nodes];
            &*arena.alloc_slice_fast(&out)
        })
        .collect();
    Graph { edges }
}

/// Scratch buffers of one search.
struct Scratch {
    queue: VecDeque<u32>,
    seen: Vec<u32>,
}

fn bfs_distance(graph: &Graph<'_>, scratch: &mut Scratch, from: u32, to: u32) -> Option<u32> {
    let Scratch { queue, seen } = scratch;
    queue.clear();
    seen.clear();
    seen.resize(graph.edges.len(), u32::MAX);
    seen[from as usize] = 0;
    queue.push_back(from);
    while let Some(n) = queue.pop_front() {
        let d = seen[n as usize];
        if n == to {
            return Some(d);
        }
        for &m in graph.edges[n as usize] {
            if seen[m as usize] == u32::MAX {
                seen[m as usize] = d + 1;
                queue.push_back(m);
            }
        }
    }
    None
}

fn main() {
    let arena = Arena::new();
    let nodes = 20_000;
    let graph = build_graph(&arena, nodes);
    let pool = LockFreePool::new(8, || Scratch {
        queue: VecDeque::new(),
        seen: Vec::new(),
    });
    let searches_per_thread = 50u32;
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u32)
            .map(|t| {
                let (graph, pool) = (&graph, &pool);
                s.spawn(move || {
                    (0..searches_per_thread)
                        .map(|i| {
                            let mut scratch = pool.get();
                            let from = (t * 1_000 + i * 17) % nodes;
                            let to = (from + nodes / 2) % nodes;
                            u64::from(
                                bfs_distance(graph, &mut scratch, from, to).expect("connected"),
                            )
                        })
                        .sum::<u64>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let stats = pool.stats();
    println!(
        "graph:       {nodes} nodes in {} KiB of arena",
        arena.bytes_allocated() / 1024
    );
    println!("searches:    {}", 4 * searches_per_thread);
    println!("distances:   sum {total}");
    println!(
        "pool:        {} hits, {} misses, hit rate {:.2}",
        stats.hits,
        stats.misses,
        stats.cache_hit_rate()
    );
}
