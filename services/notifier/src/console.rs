//! Prints alerts as the plain text a Telegram client would show.

use std::io::Write;
use std::sync::Mutex;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::sink::{Alert, AlertSink, DeliveryError};

/// Writes each alert's plain text followed by a blank line.
pub struct ConsoleSink {
    output: Mutex<Box<dyn Write + Send>>,
}

impl ConsoleSink {
    /// Creates a sink that prints to standard output.
    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }

    /// Creates a sink that writes to `output`, for example a file or a buffer.
    pub fn new(output: impl Write + Send + 'static) -> Self {
        Self {
            output: Mutex::new(Box::new(output)),
        }
    }

    fn write_alert(&self, alert: &Alert) -> std::io::Result<()> {
        // A writer that panicked mid-alert leaves at worst a partial line, so
        // the poisoned lock is still usable.
        let mut output = self.output.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        writeln!(output, "{}\n", alert.message.plain_text())?;
        output.flush()
    }
}

impl AlertSink for ConsoleSink {
    fn name(&self) -> &'static str {
        "console"
    }

    fn deliver<'a>(
        &'a self,
        alert: &'a Alert,
        _abort: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        // Writing a few hundred bytes to a terminal or pipe is short enough to
        // do on the async worker thread.
        let result = self.write_alert(alert).map_err(DeliveryError::from);
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::message::AlertMessage;

    /// A writer whose bytes stay readable after the sink took ownership.
    #[derive(Clone, Default)]
    struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedBuffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn console_prints_plain_text() {
        let buffer = SharedBuffer::default();
        let sink = ConsoleSink::new(buffer.clone());
        let mut message = AlertMessage::default();
        message.plain("Anomaly: ").bold("A&B <control>");
        let alert = Alert::new("http://127.0.0.1:50051", "ep-1", 1, message);

        sink.deliver(&alert, &CancellationToken::new()).await.unwrap();

        let printed = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(printed, "Anomaly: A&B <control>\n\n");
    }
}
