//! `{ expr }` embeds any workflow value: literals compose, messages and builders fit in.
use std::time::Duration;
use workflow::prelude::*;
use workflow::{Chain, Workflow};

#[actor]
async fn fetch(url: String) {
    let _ = url;
}
#[actor]
async fn store(key: String) {
    let _ = key;
}

fn download(url: &str) -> Workflow {
    workflow!(chain![fetch(url.to_owned()), store(url.to_owned())])
}

fn main() {
    let first = download("a");
    let second = workflow!(group![{ download("b") }, { download("c") }]);
    let retried = fetch::message("d".into())
        .with_max_retries(1)
        .with_delay(Duration::from_secs(1));
    let built = Chain::new().then(store::message("e".into()));
    let wf = workflow!(chain![
        { first },
        { second },
        { retried },
        { built },
        store("f".into())
    ]);
    assert_eq!(wf.plan().unwrap().len(), 2 + 4 + 1 + 1 + 1);
}
