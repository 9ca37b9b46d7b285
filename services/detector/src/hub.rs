//! Anomaly hub: numbers each anomaly change, keeps a bounded replay buffer
//! for clients that resume with `after_sequence`, and broadcasts live
//! changes to subscribers.
//!
//! Sequences start at the process start time in microseconds since the Unix
//! epoch and grow by one per change. They therefore keep increasing across
//! restarts as long as a process publishes fewer than one change per
//! microsecond of its uptime. A client whose cursor comes from an earlier
//! process gets this process's whole buffer, unless the buffer already
//! dropped some of it. Changes the earlier process made after that cursor
//! are lost with it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use seismo_proto::v1::AnomalyEvent;
use tokio::sync::broadcast::{self, error::RecvError};

/// Sizes and numbering of an [`AnomalyHub`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubConfig {
    /// Changes kept for replay.
    pub replay_capacity: usize,
    /// Changes a live subscriber may fall behind before it has to catch up
    /// from the replay buffer.
    pub live_capacity: usize,
    /// Sequence of the first change.
    pub first_sequence: u64,
}

impl HubConfig {
    /// Builds a config whose sequences start at the current time in
    /// microseconds, with a live channel of 1024 changes.
    pub fn starting_now(replay_capacity: usize) -> HubConfig {
        let now_us = chrono::Utc::now().timestamp_micros().max(1) as u64;
        HubConfig {
            replay_capacity,
            live_capacity: 1024,
            first_sequence: now_us,
        }
    }
}

/// Reason a subscription cannot deliver the changes after its cursor. The
/// gRPC layer returns it as `OUT_OF_RANGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error(
        "changes after sequence {after_sequence} are no longer buffered; the oldest available sequence is {oldest_available}. Resume with after_sequence = {resume_from} to skip the gap, or 0 to follow live changes only"
    , resume_from = oldest_available - 1)]
    Evicted { after_sequence: u64, oldest_available: u64 },

    #[error(
        "after_sequence {after_sequence} is ahead of the latest sequence {latest}; resume with a sequence this detector sent, or 0 to follow live changes only"
    )]
    Ahead { after_sequence: u64, latest: u64 },
}

#[derive(Debug)]
struct HubState {
    next_sequence: u64,
    buffer: VecDeque<AnomalyEvent>,
}

/// Numbers, buffers and broadcasts anomaly changes.
#[derive(Debug)]
pub struct AnomalyHub {
    config: HubConfig,
    state: Mutex<HubState>,
    live: broadcast::Sender<AnomalyEvent>,
}

impl AnomalyHub {
    pub fn new(config: HubConfig) -> AnomalyHub {
        let (live, _) = broadcast::channel(config.live_capacity.max(1));
        AnomalyHub {
            config,
            state: Mutex::new(HubState {
                next_sequence: config.first_sequence.max(1),
                buffer: VecDeque::with_capacity(config.replay_capacity.min(4096)),
            }),
            live,
        }
    }

    /// Assigns the next sequence to `event`, buffers it and sends it to live
    /// subscribers. Returns the sequence.
    pub fn publish(&self, mut event: AnomalyEvent) -> u64 {
        let mut state = self.lock();
        event.sequence = state.next_sequence;
        state.next_sequence += 1;

        if self.config.replay_capacity > 0 {
            if state.buffer.len() == self.config.replay_capacity {
                state.buffer.pop_front();
            }
            state.buffer.push_back(event.clone());
        }

        // Sent under the lock, so a subscriber receives every change either
        // in its replay snapshot or on its live receiver. An error only means
        // that nobody is subscribed.
        let sequence = event.sequence;
        let _ = self.live.send(event);
        sequence
    }

    /// Latest assigned sequence; `first_sequence - 1` before the first change.
    pub fn latest_sequence(&self) -> u64 {
        self.lock().next_sequence - 1
    }

    /// Starts a subscription that yields the buffered changes after
    /// `after_sequence`, then live ones. `after_sequence = 0` yields live
    /// changes only.
    pub fn subscribe(self: &Arc<Self>, after_sequence: u64) -> Result<Subscription, CursorError> {
        let state = self.lock();
        let live = self.live.subscribe();
        let latest = state.next_sequence - 1;

        let (backlog, delivered_until) = if after_sequence == 0 {
            (VecDeque::new(), latest)
        } else {
            let lower = self.effective_cursor(after_sequence);
            if lower > latest {
                return Err(CursorError::Ahead { after_sequence, latest });
            }
            (replay_after(&state, after_sequence, lower)?, lower)
        };

        Ok(Subscription {
            hub: Arc::clone(self),
            backlog,
            live,
            delivered_until,
        })
    }

    /// Maps a cursor from an earlier process (below this process's first
    /// sequence) to "nothing of this process seen yet".
    fn effective_cursor(&self, after_sequence: u64) -> u64 {
        after_sequence.max(self.config.first_sequence.max(1) - 1)
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // The state stays consistent even if a holder panicked: every update
        // is a single push or pop.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Buffered changes after `lower`, or an error if some were dropped.
fn replay_after(state: &HubState, after_sequence: u64, lower: u64) -> Result<VecDeque<AnomalyEvent>, CursorError> {
    let oldest_available = state.buffer.front().map_or(state.next_sequence, |event| event.sequence);
    if lower + 1 < oldest_available {
        return Err(CursorError::Evicted {
            after_sequence,
            oldest_available,
        });
    }

    Ok(state
        .buffer
        .iter()
        .filter(|event| event.sequence > lower)
        .cloned()
        .collect())
}

/// One subscriber's position in the hub's stream.
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<AnomalyHub>,
    backlog: VecDeque<AnomalyEvent>,
    live: broadcast::Receiver<AnomalyEvent>,
    /// Sequence of the last change delivered, or the cursor it started from.
    delivered_until: u64,
}

impl Subscription {
    /// Waits for the next change. A subscriber that fell behind the live
    /// channel catches up from the replay buffer, or gets
    /// [`CursorError::Evicted`] if the buffer no longer has what it missed.
    pub async fn next(&mut self) -> Result<AnomalyEvent, CursorError> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                self.delivered_until = event.sequence;
                return Ok(event);
            }

            match self.live.recv().await {
                Ok(event) if event.sequence <= self.delivered_until => continue,
                Ok(event) => {
                    self.delivered_until = event.sequence;
                    return Ok(event);
                }
                Err(RecvError::Lagged(_)) => {
                    let state = self.hub.lock();
                    self.backlog = replay_after(&state, self.delivered_until, self.delivered_until)?;
                }
                Err(RecvError::Closed) => {
                    // The hub owns the sender and this subscription keeps the
                    // hub alive, so the channel cannot close.
                    unreachable!("anomaly hub channel closed while a subscription holds the hub")
                }
            }
        }
    }

    /// Sequence of the last change delivered, or the cursor it started from.
    pub fn delivered_until(&self) -> u64 {
        self.delivered_until
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn hub(replay_capacity: usize, live_capacity: usize) -> Arc<AnomalyHub> {
        Arc::new(AnomalyHub::new(HubConfig {
            replay_capacity,
            live_capacity,
            first_sequence: 1,
        }))
    }

    fn change(id: &str) -> AnomalyEvent {
        AnomalyEvent {
            id: id.to_string(),
            metric: "views".to_string(),
            ..AnomalyEvent::default()
        }
    }

    async fn next(subscription: &mut Subscription) -> Result<AnomalyEvent, CursorError> {
        tokio::time::timeout(Duration::from_secs(5), subscription.next())
            .await
            .expect("no change within 5 s")
    }

    async fn assert_nothing_pending(subscription: &mut Subscription) {
        let waited = tokio::time::timeout(Duration::from_millis(50), subscription.next()).await;
        assert!(waited.is_err(), "unexpected change: {waited:?}");
    }

    #[test]
    fn sequences_increase_by_one() {
        let hub = hub(10, 10);

        assert_eq!(hub.latest_sequence(), 0);
        assert_eq!(hub.publish(change("a")), 1);
        assert_eq!(hub.publish(change("b")), 2);
        assert_eq!(hub.latest_sequence(), 2);
    }

    #[test]
    fn starting_now_uses_clock_micros() {
        let before = chrono::Utc::now().timestamp_micros() as u64;

        let config = HubConfig::starting_now(100);

        assert!(config.first_sequence >= before);
        assert_eq!(config.replay_capacity, 100);
    }

    #[tokio::test]
    async fn replays_after_cursor_then_live() {
        let hub = hub(10, 10);
        for id in ["a", "b", "c"] {
            hub.publish(change(id));
        }

        let mut subscription = hub.subscribe(1).unwrap();
        hub.publish(change("d"));

        let ids: Vec<(String, u64)> = [
            next(&mut subscription).await.unwrap(),
            next(&mut subscription).await.unwrap(),
            next(&mut subscription).await.unwrap(),
        ]
        .into_iter()
        .map(|event| (event.id, event.sequence))
        .collect();
        assert_eq!(ids, vec![("b".to_string(), 2), ("c".to_string(), 3), ("d".to_string(), 4)]);
        assert_nothing_pending(&mut subscription).await;
    }

    #[tokio::test]
    async fn zero_cursor_follows_live_only() {
        let hub = hub(10, 10);
        hub.publish(change("old"));

        let mut subscription = hub.subscribe(0).unwrap();
        assert_nothing_pending(&mut subscription).await;
        hub.publish(change("new"));

        let event = next(&mut subscription).await.unwrap();
        assert_eq!(event.id, "new");
        assert_eq!(event.sequence, 2);
    }

    #[tokio::test]
    async fn latest_cursor_replays_nothing() {
        let hub = hub(10, 10);
        hub.publish(change("a"));
        hub.publish(change("b"));

        let mut subscription = hub.subscribe(2).unwrap();

        assert_nothing_pending(&mut subscription).await;
        assert_eq!(subscription.delivered_until(), 2);
    }

    #[test]
    fn evicted_cursor_is_out_of_range() {
        let hub = hub(3, 10);
        for id in ["a", "b", "c", "d", "e"] {
            hub.publish(change(id));
        }

        let error = hub.subscribe(1).unwrap_err();

        assert_eq!(error, CursorError::Evicted { after_sequence: 1, oldest_available: 3 });
        let message = error.to_string();
        assert!(message.contains("oldest available sequence is 3"), "{message}");
        assert!(message.contains("after_sequence = 2"), "{message}");
        assert!(hub.subscribe(2).is_ok(), "cursor right before the oldest change was rejected");
    }

    #[test]
    fn cursor_ahead_is_out_of_range() {
        let hub = hub(10, 10);
        hub.publish(change("a"));

        let error = hub.subscribe(7).unwrap_err();

        assert_eq!(error, CursorError::Ahead { after_sequence: 7, latest: 1 });
        assert!(error.to_string().contains("latest sequence 1"), "{error}");
    }

    #[tokio::test]
    async fn cursor_from_earlier_process_replays_all() {
        let hub = Arc::new(AnomalyHub::new(HubConfig {
            replay_capacity: 10,
            live_capacity: 10,
            first_sequence: 1_000,
        }));
        hub.publish(change("a"));
        hub.publish(change("b"));

        let mut subscription = hub.subscribe(950).unwrap();

        assert_eq!(next(&mut subscription).await.unwrap().sequence, 1_000);
        assert_eq!(next(&mut subscription).await.unwrap().sequence, 1_001);
    }

    #[test]
    fn cursor_from_earlier_process_after_eviction() {
        let hub = Arc::new(AnomalyHub::new(HubConfig {
            replay_capacity: 1,
            live_capacity: 10,
            first_sequence: 1_000,
        }));
        hub.publish(change("a"));
        hub.publish(change("b"));

        let error = hub.subscribe(950).unwrap_err();

        assert_eq!(error, CursorError::Evicted { after_sequence: 950, oldest_available: 1_001 });
    }

    #[tokio::test]
    async fn lagging_subscriber_catches_up_from_buffer() {
        let hub = hub(100, 2);
        let mut subscription = hub.subscribe(0).unwrap();

        for index in 0..10 {
            hub.publish(change(&format!("change-{index}")));
        }

        for expected in 1..=10 {
            let event = next(&mut subscription).await.unwrap();
            assert_eq!(event.sequence, expected);
        }
        hub.publish(change("after catching up"));
        assert_eq!(next(&mut subscription).await.unwrap().sequence, 11);
        assert_nothing_pending(&mut subscription).await;
    }

    #[tokio::test]
    async fn lagging_past_buffer_is_out_of_range() {
        let hub = hub(3, 2);
        let mut subscription = hub.subscribe(0).unwrap();

        for index in 0..6 {
            hub.publish(change(&format!("change-{index}")));
        }

        let error = next(&mut subscription).await.unwrap_err();
        assert_eq!(error, CursorError::Evicted { after_sequence: 0, oldest_available: 4 });
    }

    #[test]
    fn without_buffer_only_latest_cursor_resumes() {
        let hub = hub(0, 10);
        hub.publish(change("a"));
        hub.publish(change("b"));

        assert!(hub.subscribe(2).is_ok());
        assert_eq!(
            hub.subscribe(1).unwrap_err(),
            CursorError::Evicted { after_sequence: 1, oldest_available: 3 }
        );
    }
}
