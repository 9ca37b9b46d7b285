//! A detector gRPC server on 127.0.0.1 whose anomaly stream a test scripts.
//! It follows the `StreamAnomalies` contract of
//! `proto/seismo/v1/detector.proto`: a replay after `after_sequence`, then
//! live events, and `OUT_OF_RANGE` for a cursor older than its buffer, with
//! the detector's message naming the oldest available sequence. It records
//! every subscription's cursor.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seismo_proto::v1::detector_server::{Detector, DetectorServer};
use seismo_proto::v1::{
    AnomalyEvent, GetSeriesRequest, GetSeriesResponse, ListSeriesRequest, ListSeriesResponse, StreamAnomaliesRequest,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

type EventSender = mpsc::UnboundedSender<Result<AnomalyEvent, Status>>;

/// The detector's buffer, open streams and the `after_sequence` of every
/// subscription. Clones share it.
#[derive(Clone, Default)]
pub struct ScriptedDetector {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    buffer: Vec<AnomalyEvent>,
    streams: Vec<EventSender>,
    after_sequences: Vec<u64>,
    stream_epochs: Vec<u64>,
    /// Sequences up to this one were dropped from the buffer.
    evicted_through: u64,
    /// Replays the whole buffer to every subscriber, whatever its cursor, as
    /// a detector that renumbered its stream after a restart would.
    replay_everything: bool,
}

impl ScriptedDetector {
    /// Makes every later subscription receive the whole buffer first.
    pub fn replay_everything(&self) {
        self.lock().replay_everything = true;
    }

    /// Buffers the event and sends it on every open stream.
    pub fn publish(&self, event: AnomalyEvent) {
        let mut inner = self.lock();
        inner.buffer.push(event.clone());
        inner.streams.retain(|stream| stream.send(Ok(event.clone())).is_ok());
    }

    /// Ends every open stream with `UNAVAILABLE`.
    pub fn end_streams(&self) {
        for stream in self.lock().streams.drain(..) {
            let _ = stream.send(Err(Status::unavailable("detector is restarting")));
        }
    }

    /// Drops the events up to `sequence` from the buffer, so that an older
    /// cursor gets `OUT_OF_RANGE`.
    pub fn evict_through(&self, sequence: u64) {
        let mut inner = self.lock();
        inner.buffer.retain(|event| event.sequence > sequence);
        inner.evicted_through = sequence;
    }

    /// Returns the `after_sequence` of every subscription so far, in order.
    pub fn after_sequences(&self) -> Vec<u64> {
        self.lock().after_sequences.clone()
    }

    /// Returns the `stream_epoch` of every subscription so far, in order.
    pub fn stream_epochs(&self) -> Vec<u64> {
        self.lock().stream_epochs.clone()
    }

    /// Waits until `count` subscriptions arrived; panics after `timeout`.
    pub async fn wait_for_subscriptions(&self, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.after_sequences().len() < count {
            assert!(
                Instant::now() < deadline,
                "expected {count} subscriptions within {timeout:?}, got {:?}",
                self.after_sequences()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Serves the detector on an ephemeral port of 127.0.0.1 until the
    /// returned handle is stopped or dropped.
    pub async fn serve(&self) -> ScriptedDetectorServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding an ephemeral port on 127.0.0.1 succeeds");
        let address = listener.local_addr().expect("a bound listener has an address");
        let stop = CancellationToken::new();
        let service = DetectorServer::new(Service { detector: self.clone() });
        let shutdown = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
                .await
                .expect("the scripted detector serves until stopped");
        });
        ScriptedDetectorServer {
            address,
            stop,
            task: Some(task),
            detector: self.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running scripted detector server.
pub struct ScriptedDetectorServer {
    pub address: SocketAddr,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
    detector: ScriptedDetector,
}

impl ScriptedDetectorServer {
    /// Returns the address to pass to the notifier, such as `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Ends the open streams and stops the server.
    pub async fn stop(mut self) {
        self.stop.cancel();
        let Some(task) = self.task.take() else {
            return;
        };
        // Graceful shutdown waits for open streams, so they are ended until
        // the server task finishes.
        while !task.is_finished() {
            self.detector.end_streams();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.await.expect("the scripted detector task did not panic");
    }
}

impl Drop for ScriptedDetectorServer {
    fn drop(&mut self) {
        self.stop.cancel();
        self.detector.end_streams();
    }
}

struct Service {
    detector: ScriptedDetector,
}

#[tonic::async_trait]
impl Detector for Service {
    type StreamAnomaliesStream = UnboundedReceiverStream<Result<AnomalyEvent, Status>>;

    async fn stream_anomalies(
        &self,
        request: Request<StreamAnomaliesRequest>,
    ) -> Result<Response<Self::StreamAnomaliesStream>, Status> {
        let request = request.into_inner();
        let after_sequence = request.after_sequence;
        let (sender, receiver) = mpsc::unbounded_channel();

        let mut inner = self.detector.lock();
        inner.after_sequences.push(after_sequence);
        inner.stream_epochs.push(request.stream_epoch);
        if !inner.replay_everything && after_sequence > 0 && after_sequence < inner.evicted_through {
            // Worded as seismo-detector words it, so that the notifier can
            // resume from the oldest available sequence.
            let oldest_available = inner.evicted_through + 1;
            return Err(Status::out_of_range(format!(
                "changes after sequence {after_sequence} are no longer buffered; the oldest available sequence is {oldest_available}. Resume with after_sequence = {} to skip the gap, or 0 to follow live changes only",
                oldest_available - 1
            )));
        }
        let replayed: Vec<AnomalyEvent> = inner
            .buffer
            .iter()
            .filter(|event| inner.replay_everything || (after_sequence > 0 && event.sequence > after_sequence))
            .cloned()
            .collect();
        for event in replayed {
            let _ = sender.send(Ok(event));
        }
        inner.streams.push(sender);

        Ok(Response::new(UnboundedReceiverStream::new(receiver)))
    }

    async fn get_series(&self, _: Request<GetSeriesRequest>) -> Result<Response<GetSeriesResponse>, Status> {
        Err(Status::unimplemented("the scripted detector serves no series"))
    }

    async fn list_series(&self, _: Request<ListSeriesRequest>) -> Result<Response<ListSeriesResponse>, Status> {
        Err(Status::unimplemented("the scripted detector lists no series"))
    }
}
