//! A string interner whose strings live in an arena: each distinct string
//! is copied once into the arena and handed out as a `&str` (and a small
//! symbol id) for as long as the interner lives.
//!
//! Run: `cargo run --example string_intern`

use std::collections::HashMap;

use arena_b::Arena;

/// A symbol: an index into the interner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Symbol(u32);

/// Interns strings: the arena owns the bytes, the map and the vector hold
/// `&'a str` into it.
struct Interner<'a> {
    arena: &'a Arena,
    ids: HashMap<&'a str, Symbol>,
    strings: Vec<&'a str>,
}

impl<'a> Interner<'a> {
    fn new(arena: &'a Arena) -> Self {
        Interner {
            arena,
            ids: HashMap::new(),
            strings: Vec::new(),
        }
    }

    fn intern(&mut self, s: &str) -> Symbol {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let stored: &'a str = self.arena.alloc_str(s);
        let id = Symbol(self.strings.len() as u32);
        self.strings.push(stored);
        self.ids.insert(stored, id);
        id
    }

    fn resolve(&self, id: Symbol) -> &'a str {
        self.strings[id.0 as usize]
    }
}

fn main() {
    let text = "the quick brown fox jumps over the lazy dog the fox the dog";
    let arena = Arena::new();
    let mut interner = Interner::new(&arena);
    let symbols: Vec<Symbol> = text
        .split_whitespace()
        .map(|w| interner.intern(w))
        .collect();
    assert_eq!(symbols[0], symbols[6], "`the` is interned once");
    let rebuilt: Vec<&str> = symbols.iter().map(|&s| interner.resolve(s)).collect();
    assert_eq!(rebuilt.join(" "), text);
    println!("words:           {}", symbols.len());
    println!("distinct words:  {}", interner.strings.len());
    println!("symbols:         {:?}", &symbols[..6]);
    println!(
        "arena bytes:     {} (each distinct word stored once)",
        arena.bytes_allocated()
    );

    // A bigger run: 100,000 identifiers drawn from 1,000 names.
    let arena = Arena::new();
    let mut interner = Interner::new(&arena);
    for i in 0..100_000u32 {
        interner.intern(&format!("identifier_{}", (i * 7919) % 1000));
    }
    println!(
        "100,000 lookups, {} distinct, {} arena bytes",
        interner.strings.len(),
        arena.bytes_allocated()
    );
}
