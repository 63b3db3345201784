//! The handlers' work, generic over the allocator of its scratch data, so
//! every contender runs the same code: `&RequestArena`, `&bumpalo::Bump`, or
//! `Global` (the process's global allocator: the system's, or mimalloc).
//!
//! Allocator-independent parts (splitting, formatting) are in functions that
//! are not generic and never inlined, so every allocator runs the same
//! machine code for them; inlined into each allocator's copy, `str::split`
//! alone came out at 21k or 51k instructions per request depending on the
//! build (callgrind), which swamped the allocators' difference.

use std::fmt::Write as _;

use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec as AVec;
use hashbrown::{DefaultHashBuilder, HashMap};

/// The scratch handler's body: 4 KB of words (mixed case, a Zipf-like mix
/// of a 300-word vocabulary) separated by spaces and newlines.
pub fn scratch_body() -> String {
    const SYLLABLES: [&str; 12] = [
        "ka", "Lo", "mi", "TSU", "re", "na", "Ve", "do", "shi", "pu", "Ra", "ne",
    ];
    let mut body = String::with_capacity(4200);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut words = 0;
    while body.len() < 4096 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        // Small ranks are much more likely than large ones.
        let r = (seed >> 33) % 300;
        let rank = (r * r) / 300;
        let mut n = rank as usize + 1;
        while n > 0 {
            body.push_str(SYLLABLES[n % SYLLABLES.len()]);
            n /= SYLLABLES.len();
        }
        words += 1;
        body.push(if words % 12 == 0 { '\n' } else { ' ' });
    }
    body
}

/// Calls `push` with each whitespace-separated token of `input`.
#[inline(never)]
fn split_whitespace<'a>(input: &'a str, push: &mut dyn FnMut(&'a str)) {
    input.split_whitespace().for_each(push);
}

/// Renders `word=count` pairs.
#[inline(never)]
fn write_counts(out: &mut String, top: &[(&[u8], u32)]) {
    for (word, n) in top {
        let _ = write!(out, "{}={n} ", std::str::from_utf8(word).unwrap_or("?"));
    }
}

/// The scratch handler's work (issue 16's): split a 4 KB body on
/// whitespace, an arena copy of each token lower-cased, a hashbrown count
/// map, a sort, the top 10 rendered into a `String`.
pub fn scratch_work<A: Allocator + Clone>(input: &str, alloc: A) -> String {
    let mut tokens: AVec<AVec<u8, A>, A> = AVec::new_in(alloc.clone());
    split_whitespace(input, &mut |token| {
        tokens.push(mapped_copy(token, alloc.clone(), |b| {
            b.to_ascii_lowercase()
        }))
    });
    let mut counts: HashMap<&[u8], u32, DefaultHashBuilder, A> =
        HashMap::with_hasher_in(DefaultHashBuilder::default(), alloc.clone());
    for token in &tokens {
        *counts.entry(&token[..]).or_insert(0) += 1;
    }
    let mut top: AVec<(&[u8], u32), A> = AVec::with_capacity_in(counts.len(), alloc);
    top.extend(counts.iter().map(|(w, n)| (*w, *n)));
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut out = String::with_capacity(160);
    write_counts(&mut out, &top[..top.len().min(10)]);
    out
}

/// The tree handler's body: nested lists of numbers, `[1,[2,3],[],...]`,
/// about 4 KB, up to six levels deep.
pub fn tree_body() -> String {
    fn list(out: &mut String, seed: &mut u64, depth: u32) {
        out.push('[');
        *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let items = 1 + (*seed >> 60) as usize;
        for i in 0..items {
            if i > 0 {
                out.push(',');
            }
            *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            if depth < 6 && (*seed >> 62) == 0 {
                list(out, seed, depth + 1);
            } else {
                let _ = write!(out, "{}", (*seed >> 40) % 1000);
            }
        }
        out.push(']');
    }
    let mut seed = 7;
    let mut body = String::from("[");
    while body.len() < 4096 {
        if body.len() > 1 {
            body.push(',');
        }
        list(&mut body, &mut seed, 1);
    }
    body.push(']');
    body
}

/// A parsed tree node, its children in allocator `A`.
pub enum Node<A: Allocator> {
    /// A number.
    Num(u32),
    /// A list.
    List(AVec<Node<A>, A>),
}

/// Parses one node at `*at`; `None` on malformed input.
fn parse_node<A: Allocator + Clone>(input: &[u8], at: &mut usize, alloc: &A) -> Option<Node<A>> {
    match *input.get(*at)? {
        b'[' => {
            *at += 1;
            let mut items = AVec::new_in(alloc.clone());
            if input.get(*at) == Some(&b']') {
                *at += 1;
                return Some(Node::List(items));
            }
            loop {
                items.push(parse_node(input, at, alloc)?);
                match *input.get(*at)? {
                    b',' => *at += 1,
                    b']' => {
                        *at += 1;
                        return Some(Node::List(items));
                    }
                    _ => return None,
                }
            }
        }
        b'0'..=b'9' => {
            let mut n = 0u32;
            while let Some(d @ b'0'..=b'9') = input.get(*at) {
                n = n.wrapping_mul(10).wrapping_add(u32::from(d - b'0'));
                *at += 1;
            }
            Some(Node::Num(n))
        }
        _ => None,
    }
}

/// Sum and depth of a tree.
fn measure<A: Allocator>(node: &Node<A>) -> (u64, u32) {
    match node {
        Node::Num(n) => (u64::from(*n), 0),
        Node::List(items) => items.iter().fold((0, 1), |(sum, depth), item| {
            let (s, d) = measure(item);
            (sum + s, depth.max(d + 1))
        }),
    }
}

/// The tree handler's work, a different allocation shape from the
/// scratch handler's (many small vectors of tree nodes, each growing by
/// doubling, recursively, instead of one copy per token and one big map):
/// parse the nested lists into a tree, then answer each top-level item's
/// sum and depth, sorted by sum, in a `String`.
pub fn tree_work<A: Allocator + Clone>(input: &str, alloc: A) -> String {
    let mut at = 0;
    let Some(Node::List(items)) = parse_node(input.as_bytes(), &mut at, &alloc) else {
        return String::from("malformed");
    };
    let mut stats: AVec<(u64, u32), A> = AVec::with_capacity_in(items.len(), alloc);
    stats.extend(items.iter().map(measure));
    stats.sort_unstable();
    let mut out = String::with_capacity(stats.len() * 8);
    write_stats(&mut out, &stats);
    out
}

/// Renders `sum/depth` pairs.
#[inline(never)]
fn write_stats(out: &mut String, stats: &[(u64, u32)]) {
    for (sum, depth) in stats {
        let _ = write!(out, "{sum}/{depth} ");
    }
}

/// The word-count handler's body: about 2 KB of prose.
pub const TEXT: &str = "The quick brown fox jumps over the lazy dog while the cat watches \
    from the fence and the bird sings a song about the morning sun rising over the hills \
    and the river flows past the old mill where the miller grinds the grain into flour \
    for the bread that the baker bakes every morning before the town wakes up to the \
    sound of the church bells ringing across the valley and the children run to school \
    with their books and their lunches packed by their mothers who worry about the rain \
    that might come later in the afternoon when the clouds gather over the mountains and \
    the wind picks up from the west carrying the smell of pine and wet earth through the \
    streets where the shopkeepers open their doors and sweep the dust from their steps \
    while the dogs bark at the passing carts and the horses stamp their hooves impatiently \
    waiting for their drivers who are drinking coffee in the cafe on the corner of the \
    square where the old men play chess and argue about politics and the weather and the \
    price of bread which has gone up again this year because the harvest was poor and the \
    mill had to close for repairs after the flood last spring damaged the wheel and the \
    miller had to borrow money from the bank to fix it and now he charges more for the \
    flour and the baker charges more for the bread and everyone complains but they still \
    buy it because what else can they do in a small town like this one in the valley";

/// `text`'s bytes through `map`, in a new buffer of allocator `A`.
///
/// Copied first, then mapped in place: both loops are simple enough to
/// vectorize. `buf.extend(text.bytes().map(map))` would not be:
/// `allocator_api2`'s `Vec` cannot specialize `extend` for exact-size
/// iterators the way `std`'s does, so it pushes byte by byte with a capacity
/// check, which was up to a fifth of the parse handler's instructions on every
/// allocator and made the comparison one of code generation. Generic over
/// the mapping, so every call site inlines its own.
fn mapped_copy<A: Allocator>(text: &str, alloc: A, map: impl Fn(u8) -> u8) -> AVec<u8, A> {
    let mut buf = AVec::with_capacity_in(text.len(), alloc);
    buf.resize(text.len(), 0);
    for (to, from) in buf.iter_mut().zip(text.bytes()) {
        *to = map(from);
    }
    buf
}

/// Calls `push` with each word of `input`. Not generic and never inlined,
/// so every allocator runs the same code for it (see `csv_fields`).
#[inline(never)]
fn split_words<'a>(input: &'a str, push: &mut dyn FnMut(&'a str)) {
    input
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .for_each(push);
}

/// The word-count handler's work, on allocator `A`: the words of a 2 KB
/// text (split on anything not alphanumeric), each lower-cased into its own
/// buffer, counted in a hash map, sorted, the top five answered.
pub fn word_count_work<A: Allocator + Clone>(input: &str, alloc: A) -> String {
    let mut words: AVec<&str, A> = AVec::new_in(alloc.clone());
    split_words(input, &mut |word| words.push(word));
    let mut lowered: AVec<AVec<u8, A>, A> = AVec::with_capacity_in(words.len(), alloc.clone());
    for word in &words {
        lowered.push(mapped_copy(word, alloc.clone(), |b| b.to_ascii_lowercase()));
    }
    let mut counts: HashMap<&[u8], u32, DefaultHashBuilder, A> =
        HashMap::with_hasher_in(DefaultHashBuilder::default(), alloc.clone());
    for word in &lowered {
        *counts.entry(&word[..]).or_insert(0) += 1;
    }
    let mut top: AVec<(&[u8], u32), A> = AVec::with_capacity_in(counts.len(), alloc);
    top.extend(counts.iter().map(|(w, n)| (*w, *n)));
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut out = String::with_capacity(64);
    for (word, n) in top.iter().take(5) {
        let _ = write!(out, "{}={n} ", std::str::from_utf8(word).unwrap_or("?"));
    }
    out
}

/// The CSV body of `axum_parse_handler`: 80 rows of
/// `name,email,city,score,tag;tag`, about 3.3 KB.
pub fn csv_body() -> String {
    const NAMES: [&str; 10] = [
        "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Ken", "Dennis", "Linus", "Margaret",
    ];
    const CITIES: [&str; 8] = [
        "Zurich", "Lisbon", "Osaka", "Quito", "Tallinn", "Perth", "Accra", "Oslo",
    ];
    const TAGS: [&str; 6] = ["admin", "beta", "ops", "dev", "qa", "sales"];
    let mut body = String::new();
    for i in 0..80 {
        let name = NAMES[i % NAMES.len()];
        let _ = writeln!(
            body,
            "{name} Example{i},{name}.Example{i}@Example.COM,{},{},{};{}",
            CITIES[i % CITIES.len()],
            (i * 37) % 100,
            TAGS[i % TAGS.len()],
            TAGS[(i * 5 + 1) % TAGS.len()],
        );
    }
    body
}

/// One parsed CSV row, its text normalized into buffers of allocator `A`.
struct Row<'a, A: Allocator> {
    name: AVec<u8, A>,
    email: AVec<u8, A>,
    city: AVec<u8, A>,
    score: u32,
    tags: AVec<&'a str, A>,
}

/// The fields of one CSV line, from `csv_fields`.
struct Fields<'a> {
    name: &'a str,
    email: &'a str,
    city: &'a str,
    score: u32,
    tags: &'a str,
}

// `csv_fields`, `split_tags` and `write_row` are the parse handler's
// allocator-independent work. They are not generic and never inlined, so
// every allocator runs the same machine code for them: inlined into each
// allocator's copy of `parse_work`, `str::split` alone came out at 21k or
// 51k instructions per request depending on the build (callgrind), which
// swamped the allocators' difference.

/// Splits a CSV line into its fields.
#[inline(never)]
fn csv_fields(line: &str) -> Option<Fields<'_>> {
    let mut fields = line.split(',');
    Some(Fields {
        name: fields.next()?,
        email: fields.next()?,
        city: fields.next()?,
        score: fields.next()?.parse().unwrap_or(0),
        tags: fields.next()?,
    })
}

/// Calls `push` with each tag of a `tag;tag` field.
#[inline(never)]
fn split_tags<'a>(tags: &'a str, push: &mut dyn FnMut(&'a str)) {
    tags.split(';').for_each(push);
}

/// Writes one answer line.
#[inline(never)]
fn write_row(out: &mut String, name: &[u8], email: &[u8], city: &[u8], score: u32, tags: &[&str]) {
    fn text(buf: &[u8]) -> &str {
        std::str::from_utf8(buf).unwrap_or("?")
    }
    let _ = write!(
        out,
        "{} <{}> {} {score}:",
        text(name),
        text(email),
        text(city)
    );
    for tag in tags {
        out.push(' ');
        out.push_str(tag);
    }
    out.push('\n');
}

/// The parse handler's work, on allocator `A`: parse every row into a
/// `Row` (email lower-cased, city upper-cased), answer the rows scoring 50
/// or more, one line each.
pub fn parse_work<A: Allocator + Clone>(input: &str, alloc: A) -> String {
    let mut rows: AVec<Row<'_, A>, A> = AVec::new_in(alloc.clone());
    for fields in input.lines().filter_map(csv_fields) {
        let mut tags = AVec::new_in(alloc.clone());
        split_tags(fields.tags, &mut |tag| tags.push(tag));
        rows.push(Row {
            name: mapped_copy(fields.name, alloc.clone(), |b| b),
            email: mapped_copy(fields.email, alloc.clone(), |b| b.to_ascii_lowercase()),
            city: mapped_copy(fields.city, alloc.clone(), |b| b.to_ascii_uppercase()),
            score: fields.score,
            tags,
        });
    }
    let mut out = String::with_capacity(input.len());
    for row in rows.iter().filter(|row| row.score >= 50) {
        write_row(
            &mut out, &row.name, &row.email, &row.city, row.score, &row.tags,
        );
    }
    out
}
