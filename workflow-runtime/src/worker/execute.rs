//! Running one message: its actor, under a time limit, with panics caught; and the retry
//! decision that says how to settle it.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use serde_json::Value;
use tracing::{debug, error, warn, Instrument};

use super::registry::{panic_message, ActorEntry, TaskError};
use super::retry::{RetryPolicy, DEFAULT_TIME_LIMIT};
use super::shared::Shared;
use crate::broker::{Delivery, Settlement};
use crate::engine::{now_millis, q_name, Message};

/// Runs one message and says how to settle it.
pub(super) async fn execute(shared: &Shared, d: Delivery, message: Message) -> Settlement {
    let workflow = message.workflow();
    let span = tracing::info_span!(
        "task",
        actor = %message.actor_name,
        message_id = %message.message_id,
        queue = %d.queue,
    );
    let dead = |reason: String| {
        error!(parent: &span, reason = %reason, "dead-lettering message");
        Settlement::DeadLetter {
            queue: d.queue.clone(),
            receipt: d.receipt.clone(),
            reason,
            workflow: workflow.clone(),
        }
    };
    let actor: &ActorEntry = match shared.registry.get(&message.actor_name) {
        Some(a) => a,
        None => {
            return dead(format!(
                "unknown actor `{}`: no actor of that name is linked into this worker",
                message.actor_name
            ))
        }
    };
    if let Some(max_age) = message
        .option_millis("max_age")
        .map(Duration::from_millis)
        .or(actor.options.max_age)
    {
        let age = Duration::from_millis(now_millis().saturating_sub(message.timestamp_millis()));
        if age >= max_age {
            return dead(format!(
                "message is {age:?} old, older than max_age {max_age:?}"
            ));
        }
    }
    let time_limit = message
        .option_millis("time_limit")
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .or(actor.options.time_limit)
        .unwrap_or(DEFAULT_TIME_LIMIT);
    let outcome = async {
        debug!("running");
        let (args, kwargs) = (message.args.clone(), message.kwargs.clone());
        // A `Deserialize` impl of an argument may panic: that is a bad message, not a crash.
        let fut = std::panic::catch_unwind(AssertUnwindSafe(|| (actor.handler)(args, kwargs)))
            .map_err(|panic| {
            TaskError::permanent(format!(
                "decoding the arguments panicked: {}",
                panic_message(panic.as_ref())
            ))
        })??;
        match tokio::time::timeout(time_limit, AssertUnwindSafe(fut).catch_unwind()).await {
            Err(_) => Err(TaskError::new(format!(
                "time limit of {time_limit:?} exceeded"
            ))),
            Ok(Err(panic)) => Err(TaskError::new(format!(
                "panicked: {}",
                panic_message(panic.as_ref())
            ))),
            Ok(Ok(r)) => r,
        }
    }
    .instrument(span.clone())
    .await;
    match outcome {
        Ok(()) => {
            debug!(parent: &span, "done");
            match workflow {
                Some(workflow) => Settlement::Complete {
                    queue: d.queue,
                    receipt: d.receipt,
                    workflow,
                },
                None => Settlement::Ack {
                    queue: d.queue,
                    receipt: d.receipt,
                },
            }
        }
        Err(e) if e.retryable => {
            let retries = message
                .options
                .get("retries")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let policy = RetryPolicy::for_message(&message, &actor.options);
            match policy.next_delay(retries.min(u64::from(u32::MAX)) as u32) {
                None => dead(format!(
                    "{} (retries exhausted after {retries} retries)",
                    e.message
                )),
                Some(delay) => {
                    warn!(parent: &span, error = %e.message, retry = retries + 1, ?delay, "attempt failed; retrying");
                    let mut retry = message;
                    retry
                        .options
                        .insert("retries".into(), Value::from(retries + 1));
                    retry
                        .options
                        .insert("traceback".into(), Value::from(e.message));
                    retry
                        .options
                        .insert("requeue_timestamp".into(), Value::from(now_millis()));
                    retry.options.remove("eta");
                    retry.queue_name = q_name(&retry.queue_name).to_owned();
                    Settlement::Replace {
                        queue: d.queue,
                        receipt: d.receipt,
                        message: retry,
                        delay: Some(delay),
                    }
                }
            }
        }
        Err(e) => dead(e.message),
    }
}
