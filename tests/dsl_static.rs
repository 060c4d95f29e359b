//! The plan that `workflow!` computes at compile time equals the one the runtime's builder
//! computes for the same shape: same task numbering, continuations, joins, start sets, entry
//! tasks and delays, also when static parts sit inside fan-outs and embedded expressions.

use std::time::Duration;

use workflow::broker::Plan;
use workflow::prelude::*;
use workflow::{Chain, Group, Workflow};

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
#[actor(queue = "other")]
async fn num(n: u64) {
    let _ = n;
}

/// The plan with the per-message random parts (id, timestamp) cleared.
fn plan(wf: &Workflow) -> Plan {
    let mut plan = wf.plan_with_id("x".into()).expect("the workflow plans");
    for task in &mut plan.tasks {
        task.message.message_id.clear();
        task.message.message_timestamp = 0.into();
    }
    plan
}

/// Whether the literal was flattened at compile time (its value holds a static plan).
fn is_static(wf: &Workflow) -> bool {
    format!("{wf:?}").contains("Static(")
}

fn w<T: Into<Workflow>>(x: T) -> Workflow {
    x.into()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn seed_diamond() {
    let literal = workflow!(chain![
        task1("arguments".into(), "go".into(), "here".into()),
        group![
            chain![task2(), task5()],
            task3(),
            chain![task4(), group![task6(), task7()]],
        ],
        task8(),
    ]);
    let built = Workflow::chain([
        w(task1::message(
            "arguments".into(),
            "go".into(),
            "here".into(),
        )),
        Workflow::group([
            Workflow::chain([w(task2::message()), w(task5::message())]),
            w(task3::message()),
            Workflow::chain([
                w(task4::message()),
                Workflow::group([w(task6::message()), w(task7::message())]),
            ]),
        ]),
        w(task8::message()),
    ]);
    assert!(is_static(&literal));
    let plan = plan(&literal);
    assert_eq!(plan, self::plan(&built));
    // The numbering is the reading order of the literal.
    let names: Vec<&str> = plan
        .tasks
        .iter()
        .map(|t| t.message.actor_name.as_str())
        .collect();
    assert_eq!(
        names,
        ["task1", "task2", "task5", "task3", "task4", "task6", "task7", "task8"]
    );
    assert_eq!(plan.tasks[0].message.args, ["arguments", "go", "here"]);
}

#[test]
fn nested_delays() {
    let literal = workflow!(delay!(
        secs(1),
        chain![
            group![num(1), num(2)],
            delay!(secs(2), num(3)),
            delay!(secs(4), chain![delay!(secs(8), num(4)), num(5)]),
            delay!(
                secs(16),
                group![num(6), delay!(secs(32), group![num(7), num(8)])]
            ),
        ]
    ));
    let built = Workflow::delay(
        secs(1),
        Workflow::chain([
            Workflow::group([w(num::message(1)), w(num::message(2))]),
            Workflow::delay(secs(2), num::message(3)),
            Workflow::delay(
                secs(4),
                Workflow::chain([
                    Workflow::delay(secs(8), num::message(4)),
                    w(num::message(5)),
                ]),
            ),
            Workflow::delay(
                secs(16),
                Workflow::group([
                    w(num::message(6)),
                    Workflow::delay(
                        secs(32),
                        Workflow::group([w(num::message(7)), w(num::message(8))]),
                    ),
                ]),
            ),
        ]),
    );
    assert!(is_static(&literal));
    let plan = plan(&literal);
    assert_eq!(plan, self::plan(&built));
    let delays: Vec<u64> = plan
        .tasks
        .iter()
        .map(|t| t.delay.map_or(0, |d| d.as_secs()))
        .collect();
    assert_eq!(delays, [1, 1, 2, 12, 0, 16, 48, 48]);
}

#[test]
fn groups_of_chains_and_single_element_literals() {
    let literal = workflow!(group![
        chain![num(1), num(2), num(3)],
        chain![num(4)],
        group![num(5)],
        group![
            chain![num(6), group![num(7), chain![num(8), num(9)]]],
            num(10)
        ],
    ]);
    let built = Workflow::group([
        Workflow::chain([w(num::message(1)), w(num::message(2)), w(num::message(3))]),
        Workflow::chain([w(num::message(4))]),
        Workflow::group([w(num::message(5))]),
        Workflow::group([
            Workflow::chain([
                w(num::message(6)),
                Workflow::group([
                    w(num::message(7)),
                    Workflow::chain([w(num::message(8)), w(num::message(9))]),
                ]),
            ]),
            w(num::message(10)),
        ]),
    ]);
    assert!(is_static(&literal));
    assert_eq!(plan(&literal), plan(&built));
}

#[test]
fn static_parts_inside_fan_outs_and_after_dynamic_nodes() {
    let ids = [10_u64, 20, 30];
    let literal = workflow!(chain![
        num(0),
        group![for id in ids.iter().copied() => chain![num(id), group![num(id + 1), num(id + 2)]]],
        delay!(
            secs(3),
            chain![num(1), delay!(secs(5), group![num(2), num(3)])]
        ),
        group![for _ in 0..0 => num(99)],
        num(4),
    ]);
    let built = Workflow::chain([
        w(num::message(0)),
        ids.iter()
            .copied()
            .map(|id| {
                Workflow::chain([
                    w(num::message(id)),
                    Workflow::group([w(num::message(id + 1)), w(num::message(id + 2))]),
                ])
            })
            .collect::<Group>()
            .into(),
        Workflow::delay(
            secs(3),
            Workflow::chain([
                w(num::message(1)),
                Workflow::delay(
                    secs(5),
                    Workflow::group([w(num::message(2)), w(num::message(3))]),
                ),
            ]),
        ),
        Workflow::group(Vec::<Workflow>::new()),
        w(num::message(4)),
    ]);
    assert!(!is_static(&workflow!(group![for x in 0..1 => num(x)])));
    let plan = plan(&literal);
    assert_eq!(plan, self::plan(&built));
    assert_eq!(plan.len(), 1 + 9 + 3 + 1);
}

#[test]
fn escapes_compose_literals() {
    let inner = workflow!(chain![num(1), group![num(2), num(3)]]);
    let message = num::message(4).with_max_retries(1).with_delay(secs(7));
    let chain = Chain::new().then(num::message(5)).then(num::message(6));
    let literal = workflow!(group![
        { inner.clone() },
        chain![{ message.clone() }, { chain.clone() }],
        chain![num(7), { workflow!(group![num(8), num(9)]) }],
    ]);
    let built = Workflow::group([
        Workflow::chain([
            w(num::message(1)),
            Workflow::group([w(num::message(2)), w(num::message(3))]),
        ]),
        Workflow::chain([w(message), w(chain)]),
        Workflow::chain([
            w(num::message(7)),
            Workflow::group([w(num::message(8)), w(num::message(9))]),
        ]),
    ]);
    let plan = plan(&literal);
    assert_eq!(plan, self::plan(&built));
    assert_eq!(
        plan.tasks[3].delay,
        Some(secs(7)),
        "a message's own delay is kept"
    );
}

#[test]
fn a_delayed_static_part_inside_a_dynamic_one() {
    let extra = workflow!(num(0));
    let literal = workflow!(chain![
        { extra },
        delay!(
            secs(2),
            group![chain![num(1), num(2)], delay!(secs(1), num(3))]
        ),
        group![delay!(secs(4), chain![num(4), num(5)]), { num::message(6) }],
    ]);
    let built = Workflow::chain([
        w(num::message(0)),
        Workflow::delay(
            secs(2),
            Workflow::group([
                Workflow::chain([w(num::message(1)), w(num::message(2))]),
                Workflow::delay(secs(1), num::message(3)),
            ]),
        ),
        Workflow::group([
            Workflow::delay(
                secs(4),
                Workflow::chain([w(num::message(4)), w(num::message(5))]),
            ),
            w(num::message(6)),
        ]),
    ]);
    let plan = plan(&literal);
    assert_eq!(plan, self::plan(&built));
    let delays: Vec<u64> = plan
        .tasks
        .iter()
        .map(|t| t.delay.map_or(0, |d| d.as_secs()))
        .collect();
    assert_eq!(delays, [0, 2, 0, 3, 4, 0, 0]);
}

#[test]
fn standalone_macros_are_literals_too() {
    let c = chain![num(1), group![num(2), num(3)]];
    let g = group![num(1), chain![num(2), num(3)]];
    let d = delay!(secs(1), chain![num(1), num(2)]);
    assert!(is_static(&c) && is_static(&g) && is_static(&d));
    assert_eq!(
        plan(&c),
        plan(&workflow!(chain![num(1), group![num(2), num(3)]]))
    );
    assert_eq!(
        plan(&g),
        plan(&workflow!(group![num(1), chain![num(2), num(3)]]))
    );
    assert_eq!(
        plan(&d),
        plan(&Workflow::delay(
            secs(1),
            Workflow::chain([num::message(1), num::message(2)])
        ))
    );
    let fan = group![for i in 0..2 => num(i)];
    assert_eq!(
        plan(&fan),
        plan(&Workflow::group([num::message(0), num::message(1)]))
    );
}
