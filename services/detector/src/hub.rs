//! Anomaly hub: numbers each anomaly change, keeps a bounded replay buffer
//! for clients that resume with `after_sequence`, and broadcasts live
//! changes to subscribers.
//!
//! Each hub is one stream epoch, numbered by its first sequence: the process
//! start time in microseconds since the Unix epoch. Sequences grow by one per
//! change, so they keep increasing across restarts as long as a process
//! publishes fewer than one change per microsecond of its uptime. Every
//! change carries the epoch in `stream_epoch`.
//!
//! A client whose cursor comes from another epoch gets this epoch's whole
//! buffer, and the first change it receives has `gap_before` set: changes
//! the earlier process made after that cursor are lost with it. The gRPC
//! contract in `detector.proto` (`StreamAnomalies`) describes the same rules
//! for clients.

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
    /// Sequence of the first change, also the stream epoch of every change.
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

    /// Stream epoch of this hub's changes: its first sequence.
    pub fn epoch(&self) -> u64 {
        self.config.first_sequence.max(1)
    }

    /// Assigns the next sequence and the epoch to `event`, buffers it and
    /// sends it to live subscribers. Returns the sequence.
    pub fn publish(&self, mut event: AnomalyEvent) -> u64 {
        let mut state = self.lock();
        event.sequence = state.next_sequence;
        event.stream_epoch = self.epoch();
        event.gap_before = false;
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
    ///
    /// `stream_epoch` is the epoch the cursor came from, 0 when unknown. A
    /// cursor of another epoch yields this epoch's whole buffer, and the
    /// first change delivered has `gap_before` set. Without an epoch, a
    /// cursor below this epoch's first sequence counts as another epoch's.
    pub fn subscribe(self: &Arc<Self>, after_sequence: u64, stream_epoch: u64) -> Result<Subscription, CursorError> {
        let state = self.lock();
        let live = self.live.subscribe();
        let latest = state.next_sequence - 1;
        let before_first = self.epoch() - 1;

        let (backlog, delivered_until, gap_pending) = if after_sequence == 0 {
            (VecDeque::new(), latest, false)
        } else if self.is_other_epoch(after_sequence, stream_epoch) {
            (state.buffer.clone(), before_first, true)
        } else {
            if after_sequence > latest {
                return Err(CursorError::Ahead { after_sequence, latest });
            }
            let lower = after_sequence.max(before_first);
            (replay_after(&state, after_sequence, lower)?, lower, false)
        };

        Ok(Subscription {
            hub: Arc::clone(self),
            backlog,
            live,
            delivered_until,
            gap_pending,
        })
    }

    fn is_other_epoch(&self, after_sequence: u64, stream_epoch: u64) -> bool {
        if stream_epoch != 0 {
            return stream_epoch != self.epoch();
        }
        after_sequence < self.epoch() - 1
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
    /// The next change delivered gets `gap_before`, because the cursor came
    /// from another epoch.
    gap_pending: bool,
}

impl Subscription {
    /// Waits for the next change. A subscriber that fell behind the live
    /// channel catches up from the replay buffer, or gets
    /// [`CursorError::Evicted`] if the buffer no longer has what it missed.
    pub async fn next(&mut self) -> Result<AnomalyEvent, CursorError> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                return Ok(self.deliver(event));
            }

            match self.live.recv().await {
                Ok(event) if event.sequence <= self.delivered_until => continue,
                Ok(event) => return Ok(self.deliver(event)),
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

    fn deliver(&mut self, mut event: AnomalyEvent) -> AnomalyEvent {
        self.delivered_until = event.sequence;
        event.gap_before = std::mem::take(&mut self.gap_pending);
        event
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

        let mut subscription = hub.subscribe(1, 0).unwrap();
        hub.publish(change("d"));

        let ids: Vec<(String, u64)> = [
            next(&mut subscription).await.unwrap(),
            next(&mut subscription).await.unwrap(),
            next(&mut subscription).await.unwrap(),
        ]
        .into_iter()
        .map(|event| (event.id, event.sequence))
        .collect();
        assert_eq!(
            ids,
            vec![("b".to_string(), 2), ("c".to_string(), 3), ("d".to_string(), 4)]
        );
        assert_nothing_pending(&mut subscription).await;
    }

    #[tokio::test]
    async fn zero_cursor_follows_live_only() {
        let hub = hub(10, 10);
        hub.publish(change("old"));

        let mut subscription = hub.subscribe(0, 0).unwrap();
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

        let mut subscription = hub.subscribe(2, 0).unwrap();

        assert_nothing_pending(&mut subscription).await;
        assert_eq!(subscription.delivered_until(), 2);
    }

    #[test]
    fn evicted_cursor_is_out_of_range() {
        let hub = hub(3, 10);
        for id in ["a", "b", "c", "d", "e"] {
            hub.publish(change(id));
        }

        let error = hub.subscribe(1, 0).unwrap_err();

        assert_eq!(
            error,
            CursorError::Evicted {
                after_sequence: 1,
                oldest_available: 3
            }
        );
        let message = error.to_string();
        assert!(message.contains("oldest available sequence is 3"), "{message}");
        assert!(message.contains("after_sequence = 2"), "{message}");
        assert!(
            hub.subscribe(2, 0).is_ok(),
            "cursor right before the oldest change was rejected"
        );
    }

    #[test]
    fn cursor_ahead_is_out_of_range() {
        let hub = hub(10, 10);
        hub.publish(change("a"));

        let error = hub.subscribe(7, 0).unwrap_err();

        assert_eq!(
            error,
            CursorError::Ahead {
                after_sequence: 7,
                latest: 1
            }
        );
        assert!(error.to_string().contains("latest sequence 1"), "{error}");
    }

    fn hub_from(first_sequence: u64, replay_capacity: usize) -> Arc<AnomalyHub> {
        Arc::new(AnomalyHub::new(HubConfig {
            replay_capacity,
            live_capacity: 10,
            first_sequence,
        }))
    }

    #[tokio::test]
    async fn changes_carry_epoch() {
        let hub = hub_from(1_000, 10);
        hub.publish(change("a"));

        let event = next(&mut hub.subscribe(999, 1_000).unwrap()).await.unwrap();

        assert_eq!(hub.epoch(), 1_000);
        assert_eq!(event.stream_epoch, 1_000);
        assert!(!event.gap_before);
    }

    #[tokio::test]
    async fn cursor_from_earlier_process_replays_all() {
        let hub = hub_from(1_000, 10);
        hub.publish(change("a"));
        hub.publish(change("b"));

        let mut subscription = hub.subscribe(950, 0).unwrap();

        let first = next(&mut subscription).await.unwrap();
        let second = next(&mut subscription).await.unwrap();
        assert_eq!(first.sequence, 1_000);
        assert!(first.gap_before, "first change after a cursor of another epoch");
        assert_eq!(second.sequence, 1_001);
        assert!(!second.gap_before);
    }

    #[tokio::test]
    async fn cursor_from_earlier_process_after_eviction() {
        let hub = hub_from(1_000, 1);
        hub.publish(change("a"));
        hub.publish(change("b"));

        let mut subscription = hub.subscribe(950, 0).unwrap();

        let first = next(&mut subscription).await.unwrap();
        assert_eq!(first.sequence, 1_001);
        assert!(first.gap_before);
        assert_nothing_pending(&mut subscription).await;
    }

    #[tokio::test]
    async fn other_epoch_wins_over_sequence() {
        // The earlier process ran longer than this one, so its cursor is
        // numerically ahead of this epoch's latest sequence.
        let hub = hub_from(1_000, 10);
        hub.publish(change("a"));

        let mut subscription = hub.subscribe(5_000, 500).unwrap();

        let first = next(&mut subscription).await.unwrap();
        assert_eq!(first.sequence, 1_000);
        assert!(first.gap_before);
        assert_eq!(
            hub.subscribe(5_000, 1_000).unwrap_err(),
            CursorError::Ahead {
                after_sequence: 5_000,
                latest: 1_000
            }
        );
    }

    #[tokio::test]
    async fn other_epoch_with_empty_buffer_flags_next_live() {
        let hub = hub_from(1_000, 10);

        let mut subscription = hub.subscribe(950, 900).unwrap();
        hub.publish(change("a"));

        let first = next(&mut subscription).await.unwrap();
        assert_eq!(first.sequence, 1_000);
        assert!(first.gap_before);
    }

    #[tokio::test]
    async fn lagging_subscriber_catches_up_from_buffer() {
        let hub = hub(100, 2);
        let mut subscription = hub.subscribe(0, 0).unwrap();

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
        let mut subscription = hub.subscribe(0, 0).unwrap();

        for index in 0..6 {
            hub.publish(change(&format!("change-{index}")));
        }

        let error = next(&mut subscription).await.unwrap_err();
        assert_eq!(
            error,
            CursorError::Evicted {
                after_sequence: 0,
                oldest_available: 4
            }
        );
    }

    #[test]
    fn without_buffer_only_latest_cursor_resumes() {
        let hub = hub(0, 10);
        hub.publish(change("a"));
        hub.publish(change("b"));

        assert!(hub.subscribe(2, 0).is_ok());
        assert_eq!(
            hub.subscribe(1, 0).unwrap_err(),
            CursorError::Evicted {
                after_sequence: 1,
                oldest_available: 3
            }
        );
    }
}
