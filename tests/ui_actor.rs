//! Compile-time behaviour of `#[actor]`: every misuse is an error at the user's token
//! (`tests/ui/actor/*.rs` with their `.stderr`), and valid actors compile and run
//! (`tests/ui/actor/pass/*.rs`).
//!
//! Regenerate the snapshots with `TRYBUILD=overwrite cargo test --test ui_actor`, then read them.

#[test]
fn ui_actor() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/actor/*.rs");
    t.pass("tests/ui/actor/pass/*.rs");
}
