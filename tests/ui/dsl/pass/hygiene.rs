//! The generated code does not depend on the names in scope: prelude types and traits shadowed,
//! items named like the generated code's, locals named like its locals.
#![allow(dead_code, non_camel_case_types, non_snake_case, unused_imports)]
#![deny(warnings)]

use workflow::prelude::*;

struct Result;
struct Ok;
struct Err;
struct Option;
struct Some;
struct None;
struct Vec;
struct Box;
struct Duration;
struct String;
trait Into {}
trait From {}
trait IntoIterator {}
trait Iterator {}
struct Workflow;
struct Group;
struct StaticPlan;
fn step() {}
mod core {}
mod std {}

#[actor]
async fn task(n: u32) {
    let _ = n;
}

fn main() {
    let __workflow_step0 = 1_u32;
    let __workflow_delay0 = ::core::time::Duration::from_millis(1);
    let __workflow_members = [2_u32, 3];
    let __workflow_items = 4_u32;
    let __WORKFLOW_PLAN = 5_u32;
    let wf = workflow!(chain![
        task(__workflow_step0),
        delay!(
            __workflow_delay0,
            group![task(__workflow_items), task(__WORKFLOW_PLAN)]
        ),
        group![for n in __workflow_members => chain![task(n), delay!(__workflow_delay0, task(n))]],
        { chain![task(6)] },
    ]);
    let plan = wf.plan().unwrap();
    assert_eq!(plan.len(), 1 + 2 + 4 + 1);
    assert_eq!(plan.tasks[1].message.args, [4]);
    assert_eq!(plan.tasks[2].message.args, [5]);
}
