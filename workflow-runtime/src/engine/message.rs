//! Messages in dramatiq's wire format.
//!
//! A [`Message`] is the JSON object that Python's dramatiq reads and writes, with exactly seven
//! keys: `queue_name`, `actor_name`, `args`, `kwargs`, `options`, `message_id` and
//! `message_timestamp`. [`TypedMessage`] is a message that knows its actor at the type level; the
//! constructor that `#[actor]` generates returns one.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

/// Option key under which a workflow node's message carries `{"id": ..., "node": ...}`.
pub const WORKFLOW_OPTION: &str = "workflow";

/// A message in dramatiq's JSON format.
///
/// `options` is kept as raw JSON, so keys written by Python middleware (`retries`, `traceback`,
/// ...) survive every copy and re-enqueue.
///
/// ```
/// use workflow_runtime::Message;
///
/// let raw = br#"{"queue_name":"default","actor_name":"add","args":[1,2],"kwargs":{},
///   "options":{"redis_message_id":"r1","retries":2},"message_id":"m1",
///   "message_timestamp":1717526084640.5}"#;
/// let msg = Message::decode(raw).unwrap();
/// assert_eq!(msg.actor_name, "add");
/// assert_eq!(msg.timestamp_millis(), 1717526084640);
/// assert_eq!(msg.options["retries"], 2);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The queue the message is on (`X.DQ` while it is delayed).
    pub queue_name: String,
    /// The actor to run.
    pub actor_name: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments (always `{}` when written by Rust).
    #[serde(default)]
    pub kwargs: Map<String, Value>,
    /// Free-form options, preserved as raw JSON.
    #[serde(default)]
    pub options: Map<String, Value>,
    /// A UUID string, the same across retries.
    #[serde(default = "new_message_id")]
    pub message_id: String,
    /// Milliseconds since the epoch when the message was first enqueued (int or float on read).
    #[serde(default = "now_number")]
    pub message_timestamp: Number,
}

/// How deeply arrays and objects may nest in a message that [`Message::decode`] reads.
pub const MAX_DEPTH: usize = 512;

/// The deepest nesting of arrays and objects in `bytes`, read as JSON text (strings skipped).
fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn new_message_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn now_number() -> Number {
    Number::from(now_millis())
}

/// Milliseconds since the UNIX epoch.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Message {
    /// A new message for `actor_name` on `queue_name`, with a fresh id and timestamp.
    pub fn new(
        queue_name: impl Into<String>,
        actor_name: impl Into<String>,
        args: Vec<Value>,
    ) -> Self {
        Message {
            queue_name: queue_name.into(),
            actor_name: actor_name.into(),
            args,
            kwargs: Map::new(),
            options: Map::new(),
            message_id: new_message_id(),
            message_timestamp: now_number(),
        }
    }

    /// Reads a message from its JSON bytes.
    ///
    /// Arrays and objects may nest up to [`MAX_DEPTH`] levels (dramatiq's pipelines nest a
    /// message in the options of the one before it, two levels per step).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let depth = json_depth(bytes);
        if depth > MAX_DEPTH {
            return Err(Error::Decode(format!(
                "JSON nested {depth} levels deep; at most {MAX_DEPTH} are accepted"
            )));
        }
        // serde_json stops at 128 levels; the depth is bounded above instead, so that decoding
        // stays well within a thread's stack.
        let mut de = serde_json::Deserializer::from_slice(bytes);
        de.disable_recursion_limit();
        let message = serde::Deserialize::deserialize(&mut de)
            .and_then(|m| de.end().map(|()| m))
            .map_err(|e| Error::Decode(e.to_string()))?;
        Ok(message)
    }

    /// Writes the message as compact JSON with the seven dramatiq keys.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing these plain JSON values cannot fail.
        serde_json::to_vec(self).expect("a message always serializes")
    }

    /// `message_timestamp` as whole milliseconds.
    pub fn timestamp_millis(&self) -> u64 {
        let n = &self.message_timestamp;
        n.as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .unwrap_or(0)
    }

    /// The queue without a `.DQ`/`.XQ` suffix.
    pub fn canonical_queue(&self) -> &str {
        q_name(&self.queue_name)
    }

    /// `options.eta` (ms since the epoch), if the message is delayed.
    pub fn eta(&self) -> Option<u64> {
        self.options.get("eta").and_then(json_millis)
    }

    /// An option read as milliseconds (int or float).
    pub fn option_millis(&self, key: &str) -> Option<u64> {
        self.options.get(key).and_then(json_millis)
    }

    /// The workflow node this message runs, if it belongs to a workflow.
    pub fn workflow(&self) -> Option<WorkflowRef> {
        let wf = self.options.get(WORKFLOW_OPTION)?;
        let id = wf.get("id")?.as_str()?.to_owned();
        let node = u32::try_from(wf.get("node")?.as_u64()?).ok()?;
        Some(WorkflowRef { id, node })
    }
}

pub(crate) fn json_millis(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        }),
        _ => None,
    }
}

/// The workflow and node a message belongs to (`options.workflow` on the wire).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkflowRef {
    /// The workflow's id.
    pub id: String,
    /// The node's index in the workflow.
    pub node: u32,
}

/// `X` for `X`, `X.DQ` and `X.XQ`.
pub fn q_name(queue: &str) -> &str {
    queue
        .strip_suffix(".DQ")
        .or_else(|| queue.strip_suffix(".XQ"))
        .unwrap_or(queue)
}

/// The delay queue of a queue: `X.DQ`.
pub fn dq_name(queue: &str) -> String {
    format!("{}.DQ", q_name(queue))
}

/// The dead-letter queue of a queue: `X.XQ`.
pub fn xq_name(queue: &str) -> String {
    format!("{}.XQ", q_name(queue))
}

/// Whether `name` is a valid queue name for dramatiq: `[a-zA-Z_][a-zA-Z0-9._-]*`.
pub fn is_valid_queue_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> Vec<u8> {
        let mut arg = String::from("1");
        for _ in 0..depth {
            arg = format!("[{arg}]");
        }
        format!(
            r#"{{"queue_name":"q","actor_name":"a","args":[{arg}],"kwargs":{{}},"options":{{"k":"[[[\"]"}},"message_id":"m","message_timestamp":1}}"#
        )
        .into_bytes()
    }

    #[test]
    fn deep_messages_decode_up_to_the_limit() {
        // Beyond serde_json's own limit of 128 (e.g. a Python pipeline of 100 steps).
        let m = Message::decode(&nested(400)).unwrap();
        assert_eq!(m.options["k"], "[[[\"]");
        let err = Message::decode(&nested(MAX_DEPTH)).unwrap_err().to_string();
        assert!(err.contains("at most 512"), "{err}");
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(br#"{"a":"[[[{{","b":["\"]"]}"#), 2);
    }
}
