//! Compile-time behaviour of `workflow!`, `chain!`, `group!` and `delay!`: every misuse is an
//! error at the user's token (`tests/ui/dsl/*.rs` with their `.stderr`), and valid literals
//! compile and run (`tests/ui/dsl/pass/*.rs`).
//!
//! Regenerate the snapshots with `TRYBUILD=overwrite cargo test --test ui_dsl`, then read them.

#[test]
fn ui_dsl() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/dsl/*.rs");
    t.pass("tests/ui/dsl/pass/*.rs");
}
