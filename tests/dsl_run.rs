//! `workflow!` literals run on the in-memory broker: the seed's workflow, fan-outs, delays and
//! composed literals run every step once, in an order their shape allows.

mod support;

use std::time::Duration;

use support::log::{names, pos, ran, record};
use support::{start, worker};
use workflow::prelude::*;
use workflow::WorkflowState;

const T: Duration = Duration::from_secs(10);

#[actor(queue = "dsl")]
async fn task1(a: String, b: String, c: String) {
    record("seed", format!("task1({a} {b} {c})"));
}
/// task2 .. task8 of the seed: each records its name.
macro_rules! seed_tasks {
    ($($name:ident),*) => {$(
        #[actor(queue = "dsl")]
        async fn $name() {
            record("seed", stringify!($name).into());
        }
    )*};
}

seed_tasks!(task2, task3, task4, task5, task6, task7, task8);

/// Records `what` under `tag`.
#[actor(queue = "dsl")]
async fn note(tag: String, what: String) {
    record(&tag, what);
}

#[tokio::test]
async fn the_seed_workflow_runs_in_order() {
    let broker = MemoryBroker::new();
    let w = start(worker(broker.clone(), &["dsl"]).concurrency(4));
    let wf = workflow!(chain![
        task1("arguments".into(), "go".into(), "here".into()),
        group![
            chain![task2(), task5()],
            task3(),
            chain![task4(), group![task6(), task7()]],
        ],
        task8(),
    ]);
    let handle = wf.run(&broker).await.unwrap();
    let status = handle.wait_timeout(T).await.unwrap();
    w.stop().await;
    assert_eq!(status.state, WorkflowState::Succeeded);

    let order = names("seed");
    assert_eq!(order.len(), 8, "{order:?}");
    assert_eq!(order[0], "task1(arguments go here)");
    assert_eq!(order[7], "task8");
    assert!(pos(&order, "task2") < pos(&order, "task5"), "{order:?}");
    assert!(pos(&order, "task4") < pos(&order, "task6"), "{order:?}");
    assert!(pos(&order, "task4") < pos(&order, "task7"), "{order:?}");
}

#[tokio::test]
async fn fan_outs_run_one_member_per_item() {
    let broker = MemoryBroker::new();
    let w = start(worker(broker.clone(), &["dsl"]).concurrency(4));
    let tag = String::from("fan");
    let ids = vec![1_u32, 2, 3];
    let nothing: Vec<u32> = Vec::new();
    let wf = workflow!(chain![
        note(tag.clone(), "scan".into()),
        group![for id in &ids => chain![
            note(tag.clone(), format!("resize {id}")),
            note(tag.clone(), format!("store {id}")),
        ]],
        group![for id in nothing => note(tag.clone(), format!("never {id}"))],
        note(tag.clone(), "notify".into()),
    ]);
    let status = wf
        .run(&broker)
        .await
        .unwrap()
        .wait_timeout(T)
        .await
        .unwrap();
    w.stop().await;
    assert_eq!(status.state, WorkflowState::Succeeded);

    let order = names(&tag);
    assert_eq!(order.len(), 8, "{order:?}");
    assert_eq!(order[0], "scan");
    assert_eq!(order[7], "notify", "an empty fan-out completes at once");
    for id in &ids {
        assert!(pos(&order, &format!("resize {id}")) < pos(&order, &format!("store {id}")));
    }
}

#[tokio::test]
async fn delays_hold_their_element_back() {
    let broker = MemoryBroker::new();
    let w = start(worker(broker.clone(), &["dsl"]));
    let tag = String::from("delay");
    let pause = Duration::from_millis(300);
    let wf = workflow!(chain![
        note(tag.clone(), "first".into()),
        delay!(
            pause,
            group![note(tag.clone(), "a".into()), note(tag.clone(), "b".into())]
        ),
        delay!(pause / 2, note(tag.clone(), "last".into())),
    ]);
    let status = wf
        .run(&broker)
        .await
        .unwrap()
        .wait_timeout(T)
        .await
        .unwrap();
    w.stop().await;
    assert_eq!(status.state, WorkflowState::Succeeded);

    let ran = ran(&tag);
    let at = |what: &str| {
        ran.iter()
            .find(|(w, _)| w == what)
            .map(|(_, at)| *at)
            .unwrap()
    };
    assert_eq!(ran.len(), 4);
    // An eta is a whole millisecond (dramatiq's format), so a delay may end up to 1 ms before
    // the instant it was set from plus the pause.
    let tick = Duration::from_millis(1);
    assert!(at("a") - at("first") >= pause - tick);
    assert!(at("b") - at("first") >= pause - tick);
    assert!(at("last") - at("a").max(at("b")) >= pause / 2 - tick);
}

#[tokio::test]
async fn literals_compose_and_standalone_macros_run() {
    let broker = MemoryBroker::new();
    let w = start(worker(broker.clone(), &["dsl"]).concurrency(4));
    let tag = String::from("compose");
    let n = |what: &str| note::message(tag.clone(), what.to_owned());
    let prepare = chain![{ n("prepare 1") }, note(tag.clone(), "prepare 2".into())];
    let parallel = group![
        note(tag.clone(), "left".into()),
        note(tag.clone(), "right".into())
    ];
    let later = delay!(Duration::from_millis(10), note(tag.clone(), "later".into()));
    let wf = workflow!(chain![{ prepare }, { parallel }, { later }, { n("done") }])
        .on_success(note::message(tag.clone(), "on success".into()));
    let status = wf
        .run(&broker)
        .await
        .unwrap()
        .wait_timeout(T)
        .await
        .unwrap();
    broker.join(T).await.unwrap();
    w.stop().await;
    assert_eq!(status.state, WorkflowState::Succeeded);

    let order = names(&tag);
    assert_eq!(order.len(), 7, "{order:?}");
    assert_eq!(&order[..2], ["prepare 1", "prepare 2"]);
    assert_eq!(&order[4..], ["later", "done", "on success"]);
}
