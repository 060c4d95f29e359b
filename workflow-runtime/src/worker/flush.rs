//! Settling: finished messages go to the broker in batches, with room offered for the next
//! messages, retried while the broker is unreachable.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::shared::Slot;
use crate::broker::{Broker, Delivery, Room, Settled, Settlement};
use crate::error::Result;

/// Sends settlements to the broker in batches: everything that piled up while the previous
/// batch was in flight goes in the next one, so an idle worker settles at once.
///
/// A batch that may enqueue ready messages (completions, retries) offers the broker the room
/// that the ready queues' idle consumers (those that found their queue drained) have,
/// reserved for the call: the broker may hand back, in the same request, messages such a
/// consumer would fetch next (a chain's next step, say), which go to its inbox.
pub(super) async fn flush(
    broker: Arc<dyn Broker>,
    mut rx: mpsc::UnboundedReceiver<Settlement>,
    slots: Vec<Slot>,
    stop: CancellationToken,
) {
    const MAX_BATCH: usize = 256;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Messages taken for a consumer that had stopped: they go back with the next batch.
    let mut back: Vec<Settlement> = Vec::new();
    loop {
        if back.is_empty() {
            if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
                break;
            }
        } else {
            batch.append(&mut back);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(s) => batch.push(s),
                    Err(_) => break,
                }
            }
        }
        let may_push = batch
            .iter()
            .any(|s| matches!(s, Settlement::Complete { .. } | Settlement::Replace { .. }));
        let mut rooms = Vec::new();
        let mut reserved = Vec::new();
        if may_push && !stop.is_cancelled() {
            // Only consumers waiting on a drained queue: one that is fetching gets its
            // messages itself, and must not find its room held by every settlement.
            for (i, slot) in slots.iter().enumerate() {
                if !slot.outstanding.idle.load(Ordering::Acquire) {
                    continue;
                }
                let n = slot.outstanding.reserve(slot.limit);
                if n > 0 {
                    rooms.push(Room {
                        queue: slot.queue.clone(),
                        max: n,
                    });
                    reserved.push((i, n));
                }
            }
        }
        let mut used = vec![0usize; slots.len()];
        match settle_until_done(&*broker, &batch, &rooms).await {
            Ok(settled) => {
                let mut by_slot: Vec<Vec<Delivery>> = slots.iter().map(|_| Vec::new()).collect();
                for d in settled.taken {
                    match reserved
                        .iter()
                        .find(|(i, n)| slots[*i].queue == d.queue && used[*i] < *n)
                    {
                        Some(&(i, _)) => {
                            used[i] += 1;
                            by_slot[i].push(d);
                        }
                        // More than the room offered: not ours to run.
                        None => back.push(Settlement::Requeue {
                            queue: d.queue,
                            receipt: d.receipt,
                        }),
                    }
                }
                for (i, taken) in by_slot.into_iter().enumerate() {
                    if taken.is_empty() {
                        continue;
                    }
                    if let Err(mpsc::error::SendError(taken)) = slots[i].inbox.send(taken) {
                        used[i] -= taken.len();
                        back.extend(taken.into_iter().map(|d| Settlement::Requeue {
                            queue: d.queue,
                            receipt: d.receipt,
                        }));
                    }
                }
            }
            Err(e) => {
                // Nothing was taken: the room goes back before the slow path below.
                for (i, n) in reserved.drain(..) {
                    slots[i].outstanding.unreserve(n);
                }
                // One settlement the broker keeps rejecting must not hold back the others.
                warn!(error = %e, messages = batch.len(), "settling a batch failed; settling one by one");
                for s in &batch {
                    if let Err(e) = settle_until_done(&*broker, std::slice::from_ref(s), &[]).await
                    {
                        error!(
                            error = %e,
                            queue = %s.queue(),
                            receipt = s.receipt(),
                            "the broker rejected a settlement; the message stays in flight and is \
                             delivered again once this worker is gone"
                        );
                    }
                }
            }
        }
        for (i, n) in reserved {
            slots[i].outstanding.unreserve(n - used[i]);
        }
        batch.clear();
    }
}

/// Settles `batch` (offering `rooms`), retrying for as long as the error is transient (a lost
/// connection, a restarting server); settling twice is harmless. Returns a permanent error.
pub(super) async fn settle_until_done(
    broker: &dyn Broker,
    batch: &[Settlement],
    rooms: &[Room],
) -> Result<Settled> {
    let mut pause = Duration::from_millis(10);
    loop {
        match broker.settle_and_take(batch, rooms).await {
            Ok(settled) => return Ok(settled),
            Err(e) if e.is_transient() => {
                error!(error = %e, messages = batch.len(), "settling messages failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}
