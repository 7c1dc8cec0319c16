//! Compile tests: every supported signature form compiles (`ui/pass`), and every misuse is an
//! error pointing at the offending token (`ui/fail`, with `.stderr` files).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
