// `#[cfg]` on the function applies to everything generated; other attributes stay on the
// function.
use workflow::prelude::*;

#[actor]
#[cfg(any())]
async fn never_compiled(x: NoSuchType) {}

#[actor]
#[cfg(not(test))]
async fn compiled(x: u8) {
    let _ = x;
}

#[actor]
#[inline]
#[allow(clippy::unnecessary_wraps)]
/// Docs stay on the function.
fn documented(x: u8) -> Result<u8, String> {
    Ok(x)
}

fn main() {
    let _ = documented::message(1);
    let _ = compiled::message(1);
    assert_eq!(documented(1), Ok(1));
}
