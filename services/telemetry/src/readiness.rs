use std::sync::{Arc, Mutex};

/// Whether a service can do its work now, shared between the service and the
/// `/readyz` handler. Starts not ready with the reason `starting`.
#[derive(Debug, Clone)]
pub struct Readiness(Arc<Mutex<Option<String>>>);

impl Default for Readiness {
    fn default() -> Self {
        Readiness(Arc::new(Mutex::new(Some("starting".to_string()))))
    }
}

impl Readiness {
    pub fn set_ready(&self) {
        *self.lock() = None;
    }

    /// Marks the service not ready; `reason` is shown by `/readyz`, e.g.
    /// `ClickHouse unreachable: connection refused`.
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        *self.lock() = Some(reason.into());
    }

    /// `Ok(())` when ready, or the reason it is not.
    pub fn status(&self) -> Result<(), String> {
        match self.lock().as_ref() {
            None => Ok(()),
            Some(reason) => Err(reason.clone()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // A poisoned lock still contains a valid Option; readiness must keep working.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
