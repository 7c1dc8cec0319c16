//! Snapshot tests of the expansion: each `tests/expand/NAME.rs` holds one attributed fn; its
//! expansion, pretty-printed, must equal `tests/expand/NAME.expanded.rs`. Regenerate with
//! `APM_BLESS=1 cargo test -p apm-macros`.

use std::path::Path;

use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::expand::expand;
use crate::options::Kind;

fn expand_file(src: &str) -> String {
    let file: syn::File = syn::parse_str(src).expect("snapshot input parses");
    let mut out = Vec::new();
    for item in file.items {
        let syn::Item::Fn(mut f) = item else { panic!("snapshot inputs hold fns") };
        let pos = f
            .attrs
            .iter()
            .position(|a| {
                let p = a.path();
                p.is_ident("transaction") || p.is_ident("span") || p.is_ident("propagate")
            })
            .expect("an apm attribute");
        let attr = f.attrs.remove(pos);
        let kind = match attr.path().get_ident().unwrap().to_string().as_str() {
            "transaction" => Kind::Transaction,
            "span" => Kind::Span,
            _ => Kind::Propagate,
        };
        let args = match attr.meta {
            syn::Meta::List(l) => l.tokens,
            _ => TokenStream::new(),
        };
        let expanded = expand(kind, args, f.into_token_stream());
        let file: syn::File = syn::parse2(expanded).expect("expansion parses as items");
        out.push(prettyplease::unparse(&file));
    }
    out.join("\n")
}

#[test]
fn expansions_match_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand");
    let bless = std::env::var_os("APM_BLESS").is_some();
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs") && !p.to_string_lossy().ends_with(".expanded.rs"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty());
    let mut failed = Vec::new();
    for input in inputs {
        let expected_path = input.with_extension("expanded.rs");
        let actual = expand_file(&std::fs::read_to_string(&input).unwrap());
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failed.push(format!("{}:\n{actual}", expected_path.display()));
        }
    }
    assert!(failed.is_empty(), "expansion changed (APM_BLESS=1 to accept):\n{}", failed.join("\n"));
}
