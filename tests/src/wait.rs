//! Polling with a deadline, for conditions that other tasks make true.

use std::time::Duration;

use anyhow::bail;

/// How long [`wait_for`] polls before it fails; generous because the tests
/// run on loaded 2-core CI machines and the Kafka mock's group join alone
/// takes about 3 s.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(90);

/// Polls `condition` every 100 ms until it holds, failing after
/// [`WAIT_TIMEOUT`] with `description` and the last observed state.
pub async fn wait_for(
    description: &str,
    mut condition: impl AsyncFnMut() -> anyhow::Result<(bool, String)>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT_TIMEOUT;
    loop {
        let (done, state) = condition().await?;
        if done {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "timed out after {} s waiting for {description}; last state: {state}",
                WAIT_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
