//! Running the root package's examples from its integration tests.

use std::process::Command;

/// `cargo run --quiet --example NAME CARGO_ARGS -- ARGS`, not yet started.
/// On Unix `cargo run` execs the example in its own process, so a spawned
/// child is the example itself (killing it stops the example).
pub fn example(name: &str, cargo_args: &[&str], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["run", "--quiet", "--example", name])
        .args(cargo_args)
        .arg("--")
        .args(args);
    cmd
}
