//! The actors of the `worker` and `submit` examples: the steps of the seed's workflow.
//!
//! Included by both examples with `#[path]`, so the submitter builds typed messages and the
//! worker runs them.

use std::time::Duration;

use workflow::prelude::*;
use workflow::Workflow;

/// Simulated work.
async fn work(name: &str) {
    tokio::time::sleep(Duration::from_millis(20)).await;
    log(name);
}

fn log(name: &str) {
    if std::env::var_os("QUIET").is_none() {
        println!("{name} done");
    }
}

#[actor(queue = "example")]
pub async fn task1(a: String, b: String, c: String) {
    work(&format!("task1({a}, {b}, {c})")).await;
}

#[actor(queue = "example")]
pub async fn task2() {
    work("task2").await;
}

#[actor(queue = "example")]
pub async fn task3() {
    work("task3").await;
}

#[actor(queue = "example")]
pub async fn task4() {
    work("task4").await;
}

#[actor(queue = "example")]
pub async fn task5() {
    work("task5").await;
}

#[actor(queue = "example")]
pub async fn task6() {
    work("task6").await;
}

#[actor(queue = "example")]
pub async fn task7() {
    work("task7").await;
}

#[actor(queue = "example")]
pub async fn task8() {
    work("task8").await;
}

/// The seed's workflow.
pub fn seed(run: usize) -> Workflow {
    workflow!(chain![
        task1(format!("run {run}"), "go".into(), "here".into()),
        group![
            chain![task2(), task5()],
            task3(),
            chain![task4(), group![task6(), task7()]],
        ],
        task8(),
    ])
}
