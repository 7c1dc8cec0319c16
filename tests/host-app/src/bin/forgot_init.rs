// The README's first example (see build.rs): forgot_init.
include!(concat!(env!("OUT_DIR"), "/forgot_init.rs"));
