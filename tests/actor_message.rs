//! `#[actor]` through the public API: messages, options and the registry.

use std::time::Duration;

use serde_json::{json, Map, Value};
use workflow::prelude::*;
use workflow::{Actor, ActorOptions, Registry};

#[actor]
async fn add(a: i64, b: i64) -> Result<i64, String> {
    Ok(a + b)
}

#[actor(
    name = "resize_image",
    queue = "images",
    max_retries = 5,
    min_backoff = "1s",
    max_backoff = "1h",
    time_limit = "1m30s",
    max_age = "1d"
)]
async fn resize(image_id: u64, width: u32) -> Result<(), String> {
    let _ = (image_id, width);
    Ok(())
}

#[actor(queue = "blocking")]
fn crunch(numbers: Vec<u32>) -> Result<u32, String> {
    numbers
        .iter()
        .copied()
        .max()
        .ok_or_else(|| "no numbers".to_owned())
}

#[actor]
fn nothing() {}

#[test]
fn message_has_the_arguments_in_order() {
    let message = resize::message(42, 640).into_message().unwrap();
    assert_eq!(message.args, vec![json!(42), json!(640)]);
    assert_eq!(message.actor_name, "resize_image");
    assert_eq!(message.queue_name, "images");
    assert!(message.kwargs.is_empty());

    let message = add::message(1, 2).into_message().unwrap();
    assert_eq!(message.actor_name, "add");
    assert_eq!(message.queue_name, "default");
    assert_eq!(message.args, vec![json!(1), json!(2)]);

    let message = nothing::message().into_message().unwrap();
    assert!(message.args.is_empty());
}

#[test]
fn options_are_on_the_actor() {
    assert_eq!(<resize as Actor>::NAME, "resize_image");
    assert_eq!(<resize as Actor>::QUEUE, "images");
    assert_eq!(
        <resize as Actor>::OPTIONS,
        ActorOptions {
            max_retries: Some(5),
            min_backoff: Some(Duration::from_secs(1)),
            max_backoff: Some(Duration::from_secs(3600)),
            time_limit: Some(Duration::from_secs(90)),
            max_age: Some(Duration::from_secs(86_400)),
        }
    );
    assert_eq!(<add as Actor>::OPTIONS, ActorOptions::NONE);
}

#[tokio::test]
async fn the_function_stays_callable() {
    assert_eq!(add(2, 3).await, Ok(5));
    assert_eq!(crunch(vec![3, 9, 4]), Ok(9));
}

#[tokio::test]
async fn the_registry_finds_and_runs_the_actors() {
    let registry = Registry::linked().unwrap();
    for name in ["add", "resize_image", "crunch", "nothing"] {
        assert!(registry.get(name).is_some(), "{name} is registered");
    }
    let entry = registry.get("resize_image").unwrap();
    assert_eq!(entry.queue, "images");
    assert_eq!(entry.options, <resize as Actor>::OPTIONS);
    // Where the actor is defined, for "two actors are named `x`" errors.
    assert_eq!(entry.location, "actor_message (tests/actor_message.rs:14)");

    let add = registry.get("add").unwrap();
    let ok = (add.handler)(vec![json!(1), json!(2)], Map::new()).unwrap();
    assert_eq!(ok.await, Ok(()));

    // Keyword arguments, as Python producers may send them.
    let mut kwargs = Map::new();
    kwargs.insert("b".into(), json!(2));
    assert!((add.handler)(vec![json!(1)], kwargs).is_ok());

    // Arguments that do not fit the signature are a permanent failure, not a panic.
    let err = (add.handler)(vec![json!("one"), json!(2)], Map::new())
        .err()
        .unwrap();
    assert!(!err.retryable);
    assert!(err.message.contains("`a`"), "{}", err.message);
    let err = (add.handler)(vec![json!(1)], Map::new()).err().unwrap();
    assert!(err.message.contains("`b`"), "{}", err.message);
    let err = (add.handler)(vec![json!(1), json!(2), json!(3)], Map::new())
        .err()
        .unwrap();
    assert!(!err.retryable);

    // An `Err` is a failed attempt that may be retried.
    let crunch = registry.get("crunch").unwrap();
    let failed = (crunch.handler)(vec![Value::Array(vec![])], Map::new())
        .unwrap()
        .await;
    assert_eq!(failed.unwrap_err().message, "no numbers");
    let ok = (crunch.handler)(vec![json!([1, 2])], Map::new())
        .unwrap()
        .await;
    assert_eq!(ok, Ok(()));
}
