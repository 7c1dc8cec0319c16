// The README's first example (see build.rs): let_underscore_init.
include!(concat!(env!("OUT_DIR"), "/let_underscore_init.rs"));
