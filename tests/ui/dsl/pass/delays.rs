//! Delays before steps, chains, groups and fan-outs, nested; any `Duration` expression.
use std::time::Duration;
use workflow::prelude::*;

#[actor]
async fn step(n: u32) {
    let _ = n;
}

const PAUSE: Duration = Duration::from_millis(500);

fn main() {
    let later = |s| Duration::from_secs(s);
    let wf = workflow!(delay!(
        PAUSE,
        chain![
            step(1),
            delay!(later(2), group![step(2), delay!(later(1) * 2, step(3))]),
            delay!(Duration::ZERO, group![for n in 4..6 => step(n)]),
            delay!(later(3), step(6)),
        ]
    ));
    let plan = wf.plan().unwrap();
    let delays: Vec<Option<Duration>> = plan.tasks.iter().map(|t| t.delay).collect();
    assert_eq!(
        delays,
        [
            Some(PAUSE),
            Some(later(2)),
            Some(later(4)),
            None,
            None,
            Some(later(3))
        ]
    );
    let standalone = delay!(PAUSE, step(7));
    assert_eq!(standalone.plan().unwrap().tasks[0].delay, Some(PAUSE));
}
