//! Readiness decided from several conditions that different tasks of a
//! service update, such as "database connected" and "consumer group joined".

use std::sync::{Mutex, MutexGuard};

use crate::Readiness;

/// The conditions a service's readiness is decided from.
pub trait ReadinessConditions: Default {
    /// Returns `None` when the service is ready, else the reason it is not,
    /// as `/readyz` shows it.
    fn not_ready_reason(&self) -> Option<String>;
}

/// Conditions shared by a service's tasks. Every change publishes the
/// decision to the [`Readiness`] that `/readyz` reports.
#[derive(Debug)]
pub struct ConditionTracker<C> {
    readiness: Readiness,
    conditions: Mutex<C>,
}

impl<C: ReadinessConditions> ConditionTracker<C> {
    /// Creates a tracker with `C::default()` conditions. It leaves
    /// `readiness` unchanged until the first update, so the caller's reason
    /// (`starting` by default) stays until then.
    pub fn new(readiness: Readiness) -> ConditionTracker<C> {
        ConditionTracker {
            readiness,
            conditions: Mutex::new(C::default()),
        }
    }

    /// Applies `change` and publishes the result.
    pub fn update(&self, change: impl FnOnce(&mut C)) {
        self.update_if(|conditions| {
            change(conditions);
            true
        });
    }

    /// Applies `change` and publishes the result only when `change` returns
    /// `true`, for changes that are often no-ops.
    pub fn update_if(&self, change: impl FnOnce(&mut C) -> bool) {
        let mut conditions = self.lock();
        if !change(&mut conditions) {
            return;
        }
        match conditions.not_ready_reason() {
            None => self.readiness.set_ready(),
            Some(reason) => self.readiness.set_not_ready(reason),
        }
    }

    fn lock(&self) -> MutexGuard<'_, C> {
        // Every update leaves the conditions consistent, so a poisoned lock is still usable.
        self.conditions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Connected(bool);

    impl ReadinessConditions for Connected {
        fn not_ready_reason(&self) -> Option<String> {
            (!self.0).then(|| "connecting".to_string())
        }
    }

    #[test]
    fn readiness_unchanged_until_first_update() {
        let readiness = Readiness::default();
        let _tracker = ConditionTracker::<Connected>::new(readiness.clone());

        assert_eq!(readiness.status(), Err("starting".to_string()));
    }

    #[test]
    fn update_publishes_decision() {
        let readiness = Readiness::default();
        let tracker = ConditionTracker::<Connected>::new(readiness.clone());

        tracker.update(|_| {});
        assert_eq!(readiness.status(), Err("connecting".to_string()));

        tracker.update(|connected| connected.0 = true);
        assert_eq!(readiness.status(), Ok(()));
    }

    #[test]
    fn skipped_update_publishes_nothing() {
        let readiness = Readiness::default();
        let tracker = ConditionTracker::<Connected>::new(readiness.clone());

        tracker.update_if(|connected| {
            connected.0 = true;
            false
        });

        assert_eq!(readiness.status(), Err("starting".to_string()));
    }
}
