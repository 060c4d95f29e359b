//! A workflow [`Plan`] as the fields of its Redis hash (the layout is in `lua/common.lua`).
//!
//! Each task's message is stored as a template string that Lua completes by concatenation
//! (queue name, `redis_message_id`, `eta`, `message_timestamp`), so Lua never decodes the
//! arguments: big integers and odd floats pass through byte for byte.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::engine::{is_valid_queue_name, q_name, Message};
use crate::engine::{Next, Plan};
use crate::error::{Error, Result};

/// The hash fields of a plan, and the tasks it starts with.
pub(super) struct EncodedPlan {
    /// Field, value, field, value, ... (without `state`, `nonce` and `dig`).
    pub(super) fields: Vec<String>,
    /// The entry tasks as ranges (`0-999,1200`); empty if the workflow has no task.
    pub(super) entry: String,
    /// Bytes of all fields and values.
    pub(super) bytes: usize,
    /// A digest of the fields and the entry tasks: the same plan submitted twice is
    /// recognized by it.
    pub(super) digest: String,
}

/// 128-bit FNV-1a of `parts`, each followed by a 0 byte; in hex. Stable across builds and
/// versions (unlike `std`'s hasher), so that any process recognizes a plan it submits again.
pub(super) fn digest<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h = OFFSET;
    for part in parts {
        for &b in part.as_bytes().iter().chain(&[0u8]) {
            h ^= u128::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    format!("{h:032x}")
}

/// Whether `id` can name a workflow in keys, receipts and the JSON that Lua writes.
pub(super) fn valid_workflow_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn json<T: Serialize + ?Sized>(value: &T) -> String {
    // Strings, JSON values and maps with string keys always serialize.
    serde_json::to_string(value).expect("plain JSON values always serialize")
}

/// Durations are stored in ms, capped at 100 years (Redis refuses larger expiries).
const MAX_MILLIS: u64 = 100 * 365 * 24 * 3600 * 1000;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .min(MAX_MILLIS)
}

/// `[3, 4, 5, 9]` -> `"3-5,9"` (order kept: runs are only merged when ascending by one).
pub(super) fn ranges(nodes: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < nodes.len() {
        let mut j = i;
        while j + 1 < nodes.len() && nodes[j + 1] == nodes[j].wrapping_add(1) {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j > i {
            let _ = write!(out, "{}-{}", nodes[i], nodes[j]);
        } else {
            let _ = write!(out, "{}", nodes[i]);
        }
        i = j + 1;
    }
    out
}

/// Whether messages can be enqueued on `queue` (a valid name that is not a dead-letter queue,
/// where dramatiq keeps a sorted set).
pub(super) fn valid_target_queue(queue: &str) -> bool {
    is_valid_queue_name(queue) && !queue.ends_with(".XQ")
}

/// A message template: `<queue>\t<delay ms>\t<message_id JSON>\t<body>`, where body runs
/// from `"actor_name"` to the inside of `options`, without its closing brace.
pub(super) fn template(m: &Message, delay: Option<Duration>, drop: &[&str]) -> Result<String> {
    let queue = q_name(&m.queue_name);
    if !valid_target_queue(&m.queue_name) || !is_valid_queue_name(queue) {
        return Err(Error::InvalidQueueName(m.queue_name.clone()));
    }
    let mut options = m.options.clone();
    for key in ["redis_message_id", "eta"].iter().chain(drop) {
        options.remove(*key);
    }
    let options = json(&options);
    let mut body = String::with_capacity(128 + options.len());
    body.push_str("\"actor_name\":");
    body.push_str(&json(&m.actor_name));
    body.push_str(",\"args\":");
    body.push_str(&json(&m.args));
    body.push_str(",\"kwargs\":");
    body.push_str(&json(&m.kwargs));
    body.push_str(",\"options\":");
    body.push_str(&options[..options.len() - 1]);
    let delay = delay.map_or(0, millis);
    Ok(format!("{queue}\t{delay}\t{}\t{body}", json(&m.message_id)))
}

/// Encodes `plan`; `max_retention` caps its retention.
pub(super) fn encode(plan: &Plan, max_retention: Option<Duration>) -> Result<EncodedPlan> {
    if !valid_workflow_id(&plan.id) {
        return Err(Error::Config(format!(
            "invalid workflow id `{}`: use 1 to 200 of [A-Za-z0-9._:-] (a UUID, say)",
            plan.id
        )));
    }
    let n = plan.tasks.len();
    let bad =
        |what: String| Error::Config(format!("malformed plan of workflow {}: {what}", plan.id));
    let check_tasks = |nodes: &[u32]| -> Result<()> {
        match nodes.iter().find(|&&t| t as usize >= n) {
            Some(t) => Err(bad(format!("task {t} does not exist"))),
            None => Ok(()),
        }
    };
    check_tasks(&plan.entry)?;
    let mut templates = Vec::with_capacity(n);
    for task in &plan.tasks {
        templates.push(template(&task.message, task.delay, &[])?);
    }
    // A start set of one task that nothing else starts carries that task's template in its
    // code ("S<k>\t<template>"): the completion that starts it reads one field fewer, and
    // the task has no `t<k>`.
    let nexts = || {
        plan.tasks
            .iter()
            .map(|t| t.next)
            .chain(plan.joins.iter().map(|j| j.next))
    };
    let mut set_refs = vec![0usize; plan.starts.len()];
    for next in nexts() {
        if let Next::Start(s) = next {
            if let Some(r) = set_refs.get_mut(s as usize) {
                *r += 1;
            }
        }
    }
    let mut starts_of = vec![0usize; n];
    let referenced = plan
        .starts
        .iter()
        .zip(&set_refs)
        .filter(|(_, &r)| r > 0)
        .flat_map(|(set, &r)| set.iter().map(move |&t| (t, r)));
    for (t, r) in plan.entry.iter().map(|&t| (t, 1)).chain(referenced) {
        if let Some(c) = starts_of.get_mut(t as usize) {
            *c += r;
        }
    }
    let inline = |s: usize| -> Option<usize> {
        match plan.starts.get(s).map(Vec::as_slice) {
            Some(&[k]) if set_refs[s] == 1 && starts_of.get(k as usize) == Some(&1) => {
                Some(k as usize)
            }
            _ => None,
        }
    };
    let next_code = |next: Next| -> Result<String> {
        Ok(match next {
            Next::End => "e".to_owned(),
            Next::Join(j) if (j as usize) < plan.joins.len() => format!("j{j}"),
            Next::Start(s) if (s as usize) < plan.starts.len() => {
                let set = &plan.starts[s as usize];
                check_tasks(set)?;
                match inline(s as usize) {
                    Some(k) => format!("S{k}\t{}", templates[k]),
                    None => format!("s{}", ranges(set)),
                }
            }
            other => return Err(bad(format!("{other:?} does not exist"))),
        })
    };
    let mut stored = vec![true; n];
    for s in 0..plan.starts.len() {
        if let Some(k) = inline(s) {
            stored[k] = false;
        }
    }

    let retention = max_retention.map_or(plan.retention, |cap| plan.retention.min(cap));
    let mut fields = Vec::with_capacity(2 * (2 * n + 2 * plan.joins.len() + 8));
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let mut pair_index: HashMap<(&str, &str), usize> = HashMap::new();
    let mut index = Vec::with_capacity(n);
    for (i, task) in plan.tasks.iter().enumerate() {
        let key = (
            task.message.actor_name.as_str(),
            q_name(&task.message.queue_name),
        );
        let idx = *pair_index.entry(key).or_insert_with(|| {
            pairs.push(key);
            pairs.len() - 1
        });
        index.push(idx);
        if stored[i] {
            fields.push(format!("t{i}"));
            fields.push(templates[i].clone());
        }
        fields.push(format!("x{i}"));
        fields.push(next_code(task.next)?);
    }
    // Fixed width, so that Lua finds node i's pair at i * width.
    let width = pairs.len().saturating_sub(1).to_string().len();
    let mut ai = String::with_capacity(width * n);
    for idx in index {
        let _ = write!(ai, "{idx:0width$}");
    }
    for (j, join) in plan.joins.iter().enumerate() {
        if join.count == 0 {
            return Err(bad(format!("join {j} has no member")));
        }
        fields.push(format!("j{j}"));
        fields.push(join.count.to_string());
        fields.push(format!("y{j}"));
        fields.push(next_code(join.next)?);
    }
    if let Some(m) = &plan.on_success {
        fields.push("ok".into());
        fields.push(template(m, None, &[])?);
    }
    if let Some(m) = &plan.on_failure {
        fields.push("ko".into());
        fields.push(template(m, None, &["workflow_failure"])?);
    }
    fields.extend([
        "n".into(),
        n.to_string(),
        "ret".into(),
        millis(retention).max(1).to_string(),
        "an".into(),
        json(&pairs),
        "ai".into(),
        ai,
    ]);
    let bytes = fields.iter().map(String::len).sum();
    let entry = ranges(&plan.entry);
    let digest = digest(fields.iter().map(String::as_str).chain([entry.as_str()]));
    Ok(EncodedPlan {
        fields,
        entry,
        bytes,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_ascending_runs_only() {
        assert_eq!(ranges(&[]), "");
        assert_eq!(ranges(&[7]), "7");
        assert_eq!(ranges(&[3, 4, 5, 9, 2, 3]), "3-5,9,2-3");
    }

    #[test]
    fn template_drops_broker_options_and_leaves_options_open() {
        let mut m = Message::new("q", "a", vec![1.into()]);
        m.options.insert("eta".into(), 1.into());
        m.options.insert("redis_message_id".into(), "x".into());
        m.options.insert("retries".into(), 2.into());
        let t = template(&m, Some(Duration::from_millis(1500)), &[]).unwrap();
        let parts: Vec<&str> = t.splitn(4, '\t').collect();
        assert_eq!(&parts[..2], &["q", "1500"]);
        assert_eq!(parts[2], format!("\"{}\"", m.message_id));
        assert_eq!(
            parts[3],
            "\"actor_name\":\"a\",\"args\":[1],\"kwargs\":{},\"options\":{\"retries\":2"
        );
        let empty = template(&Message::new("q", "a", vec![]), None, &[]).unwrap();
        assert!(empty.ends_with("\"options\":{"));
        assert!(matches!(
            template(&Message::new("q.XQ", "a", vec![]), None, &[]),
            Err(Error::InvalidQueueName(_))
        ));
    }

    #[test]
    fn digests_are_stable_and_tell_plans_apart() {
        assert_eq!(
            digest([]),
            format!("{:032x}", 0x6c62272e07bb014262b821756295c58du128)
        );
        assert_eq!(digest(["a", "b"]), digest(["a", "b"]));
        assert_ne!(digest(["a", "b"]), digest(["ab"]));
        assert_ne!(digest(["a", "b"]), digest(["b", "a"]));
    }
}
