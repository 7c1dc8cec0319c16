// The README's first example (see build.rs): readme_example.
include!(concat!(env!("OUT_DIR"), "/readme_example.rs"));
