//! What ran, in order, recorded by test actors under a tag (the test's own name or namespace),
//! so that tests running in parallel in one binary do not see each other's entries.

use std::sync::Mutex;
use std::time::Instant;

static RAN: Mutex<Vec<(String, String, Instant)>> = Mutex::new(Vec::new());

/// Records that `what` ran now, under `tag`.
pub fn record(tag: &str, what: String) {
    RAN.lock()
        .unwrap()
        .push((tag.to_owned(), what, Instant::now()));
}

/// What ran under `tag`, in order, with when.
pub fn ran(tag: &str) -> Vec<(String, Instant)> {
    RAN.lock()
        .unwrap()
        .iter()
        .filter(|(t, ..)| t == tag)
        .map(|(_, what, at)| (what.clone(), *at))
        .collect()
}

/// What ran under `tag`, in order.
pub fn names(tag: &str) -> Vec<String> {
    ran(tag).into_iter().map(|(what, _)| what).collect()
}

/// The position of `what` in `order`; panics if it did not run.
pub fn pos(order: &[String], what: &str) -> usize {
    order
        .iter()
        .position(|w| w == what)
        .unwrap_or_else(|| panic!("`{what}` did not run: {order:?}"))
}
