//! An expression parser whose AST lives in an `arena_b::Arena`.
//!
//! The node is the reference README's own `AstNode`: an owned `String`
//! value and a `Vec` of children. Nodes live in the arena in `ArenaBox`es:
//! each box owns its node, a node owns its children, and dropping the root
//! box runs every node's destructor (the `String`s and `Vec`s are freed;
//! valgrind finds no leak), while the nodes' memory is the arena's, freed
//! at once with it. The tokens are arena `&str`s.
//!
//! (The reference's `children: Vec<&'a AstNode<'a>>` with `arena.alloc`
//! cannot be sound: the arena would run the destructors of nodes that
//! borrow other nodes at a time the borrow checker cannot order. With
//! `ArenaBox` the borrow checker orders them.)
//!
//! Run: `cargo run --example parser_expr -- "1 + 2 * (3 - 4) / 5"`

use allocator_api2::vec::Vec as ArenaVec;
use arena_b::{Arena, ArenaBox};

/// A node of the syntax tree: an operator with children, or a number.
struct AstNode<'a> {
    value: String,
    children: Vec<Node<'a>>,
}

/// A node in the arena, owned by its parent (or by the caller, for the root).
type Node<'a> = ArenaBox<'a, AstNode<'a>>;

impl<'a> AstNode<'a> {
    fn leaf(arena: &'a Arena, value: &str) -> Node<'a> {
        arena.alloc_box(AstNode {
            value: value.to_string(),
            children: Vec::new(),
        })
    }

    fn op(arena: &'a Arena, op: &str, lhs: Node<'a>, rhs: Node<'a>) -> Node<'a> {
        arena.alloc_box(AstNode {
            value: op.to_string(),
            children: vec![lhs, rhs],
        })
    }

    fn eval(&self) -> f64 {
        match (self.value.as_str(), self.children.as_slice()) {
            ("+", [l, r]) => l.eval() + r.eval(),
            ("-", [l, r]) => l.eval() - r.eval(),
            ("*", [l, r]) => l.eval() * r.eval(),
            ("/", [l, r]) => l.eval() / r.eval(),
            (number, []) => number.parse().expect("the lexer only makes numbers"),
            (other, _) => unreachable!("unknown operator {other}"),
        }
    }

    fn render(&self, out: &mut String) {
        if self.children.is_empty() {
            out.push_str(&self.value);
            return;
        }
        out.push('(');
        out.push_str(&self.value);
        for child in &self.children {
            out.push(' ');
            child.render(out);
        }
        out.push(')');
    }
}

/// A recursive-descent parser over a token slice that lives in the arena.
struct Parser<'a> {
    arena: &'a Arena,
    tokens: &'a [&'a str],
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(arena: &'a Arena, input: &str) -> Result<Self, String> {
        let mut tokens = ArenaVec::new_in(arena);
        let mut chars = input.char_indices().peekable();
        while let Some(&(start, c)) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
            } else if c.is_ascii_digit() || c == '.' {
                let mut end = start;
                while let Some(&(i, d)) = chars.peek() {
                    if !(d.is_ascii_digit() || d == '.') {
                        break;
                    }
                    end = i + d.len_utf8();
                    chars.next();
                }
                tokens.push(&*arena.alloc_str(&input[start..end]));
            } else if "+-*/()".contains(c) {
                tokens.push(&*arena.alloc_str(&input[start..start + 1]));
                chars.next();
            } else {
                return Err(format!("unexpected character {c:?} at {start}"));
            }
        }
        let tokens: &'a [&'a str] = arena.alloc_slice_fast(&tokens);
        Ok(Parser {
            arena,
            tokens,
            at: 0,
        })
    }

    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.at).copied()
    }

    fn next(&mut self) -> Option<&'a str> {
        let t = self.peek();
        self.at += 1;
        t
    }

    /// expr := term (("+" | "-") term)*
    fn expr(&mut self) -> Result<Node<'a>, String> {
        let mut lhs = self.term()?;
        while let Some(op @ ("+" | "-")) = self.peek() {
            self.next();
            let rhs = self.term()?;
            lhs = AstNode::op(self.arena, op, lhs, rhs);
        }
        Ok(lhs)
    }

    /// term := atom (("*" | "/") atom)*
    fn term(&mut self) -> Result<Node<'a>, String> {
        let mut lhs = self.atom()?;
        while let Some(op @ ("*" | "/")) = self.peek() {
            self.next();
            let rhs = self.atom()?;
            lhs = AstNode::op(self.arena, op, lhs, rhs);
        }
        Ok(lhs)
    }

    /// atom := number | "(" expr ")"
    fn atom(&mut self) -> Result<Node<'a>, String> {
        match self.next() {
            Some("(") => {
                let inner = self.expr()?;
                match self.next() {
                    Some(")") => Ok(inner),
                    other => Err(format!("expected ')', found {other:?}")),
                }
            }
            Some(number) if number.parse::<f64>().is_ok() => Ok(AstNode::leaf(self.arena, number)),
            other => Err(format!("expected a number or '(', found {other:?}")),
        }
    }
}

/// Parses `input` into a tree in `arena`.
fn parse_expression<'a>(input: &str, arena: &'a Arena) -> Result<Node<'a>, String> {
    let mut parser = Parser::new(arena, input)?;
    let tree = parser.expr()?;
    match parser.peek() {
        None => Ok(tree),
        Some(extra) => Err(format!("unexpected {extra:?} after the expression")),
    }
}

fn main() {
    let input = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "1 + 2 * (3 - 4) / 5 + (6 * (7 + 8)) - 9.5".to_string());
    let arena = Arena::new();
    match parse_expression(&input, &arena) {
        Ok(tree) => {
            let mut rendered = String::new();
            tree.render(&mut rendered);
            println!("input:  {input}");
            println!("tree:   {rendered}");
            println!("value:  {}", tree.eval());
            let stats = arena.stats();
            println!(
                "arena:  {} bytes in {} chunk(s), {} bytes of capacity",
                stats.bytes_allocated, stats.chunks, stats.capacity
            );
        }
        Err(e) => {
            eprintln!("parse error: {e}");
            std::process::exit(1);
        }
    }

    // A larger input: 10,000 terms, parsed and evaluated in one arena.
    let big: String = (1..=10_000)
        .map(|i| format!("{i} * 2 + "))
        .collect::<String>()
        + "0";
    let arena = Arena::new();
    let tree = parse_expression(&big, &arena).expect("generated input parses");
    println!(
        "10,000 terms: value {} using {} KiB of arena",
        tree.eval(),
        arena.bytes_allocated() / 1024
    );
    drop(tree); // every node's destructor runs; the memory goes with the arena
}
