//! The seed's workflow, as a literal.
use workflow::prelude::*;

#[actor]
async fn task1(a: String, b: String, c: String) {
    let _ = (a, b, c);
}
#[actor]
async fn task2() {}
#[actor]
async fn task3() {}
#[actor]
async fn task4() {}
#[actor]
async fn task5() {}
#[actor]
async fn task6() {}
#[actor]
async fn task7() {}
#[actor]
async fn task8() {}

fn main() {
    let wf = workflow!(chain![
        task1("arguments".into(), "go".into(), "here".into()),
        group![
            chain![task2(), task5()],
            task3(),
            chain![task4(), group![task6(), task7()]],
        ],
        task8(),
    ]);
    let plan = wf.plan().unwrap();
    assert_eq!(plan.len(), 8);
    assert_eq!(plan.entry, [0]);
}
