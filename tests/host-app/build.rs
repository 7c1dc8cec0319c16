//! Writes the README's first Rust example, as a newcomer would paste it, into three programs:
//! as written, with `apm_runtime::init()` forgotten, and with its handle dropped at once
//! (`let _ = apm_runtime::init()?;`). `tests/first_hour.rs` runs them; the README cannot drift
//! from what is tested, because this is where the programs come from.

use std::path::PathBuf;

const INIT: &str = "    apm_runtime::init()?;\n";

fn main() {
    let readme = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../README.md");
    println!("cargo:rerun-if-changed={}", readme.display());
    let text = std::fs::read_to_string(&readme).unwrap_or_else(|e| panic!("{}: {e}", readme.display()));
    let example = first_rust_block(&text).expect("README.md has a ```rust block with the first example");
    assert!(example.contains(INIT), "the README's first example calls `apm_runtime::init()?;` on a line of its own");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let write = |name: &str, code: String| std::fs::write(out.join(name), code).unwrap();
    write("readme_example.rs", example.clone());
    write("forgot_init.rs", example.replace(INIT, ""));
    write("let_underscore_init.rs", example.replace(INIT, "    let _ = apm_runtime::init()?;\n"));
}

/// The body of the first fenced block whose info string starts with `rust`.
fn first_rust_block(text: &str) -> Option<String> {
    let mut lines = text.lines();
    lines.by_ref().find(|l| l.starts_with("```rust"))?;
    let body: Vec<&str> = lines.take_while(|l| !l.starts_with("```")).collect();
    Some(body.join("\n") + "\n")
}
