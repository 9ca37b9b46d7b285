//! Fetches an alert's series from the detectors (GetSeries) and renders its
//! chart for delivery.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono_tz::Tz;
use seismo_proto::v1::detector_client::DetectorClient;
use seismo_proto::v1::{AnomalyEvent, GetSeriesRequest, GetSeriesResponse, SeriesPoint};
use tonic::transport::Endpoint;
use tracing::{debug, warn};

use super::render::{AlertChart, ChartPoint, render_alert_chart};
use crate::hooks::ChartProvider;

const DAY_MS: i64 = 24 * 3_600_000;
const WEEK_MS: i64 = 7 * DAY_MS;

/// Renders each alert's chart from the first configured detector that
/// tracks its series. Any failure (no detector returns the series, too few
/// points, a drawing error) is logged and returns `None`, so the text still
/// goes out.
pub struct DetectorChartProvider {
    detectors: Vec<Endpoint>,
    time_zone: Tz,
}

impl DetectorChartProvider {
    /// Uses the detectors at `addresses` (`host:port` gets `http://`), with
    /// `timeout` for each connect and request, labelling times in
    /// `time_zone`. Returns an error text for an invalid address.
    pub fn new(addresses: &[String], timeout: Duration, time_zone: Tz) -> Result<Self, String> {
        let detectors = addresses
            .iter()
            .map(|address| {
                let url = if address.contains("://") {
                    address.clone()
                } else {
                    format!("http://{address}")
                };
                Endpoint::from_shared(url)
                    .map(|endpoint| endpoint.connect_timeout(timeout).timeout(timeout))
                    .map_err(|error| format!("invalid detector address `{address}` for charts: {error}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { detectors, time_zone })
    }

    async fn fetch_series(&self, event: &AnomalyEvent) -> Option<GetSeriesResponse> {
        for endpoint in &self.detectors {
            let request = GetSeriesRequest {
                metric: event.metric.clone(),
                slice: event.slice.clone(),
                limit: 0,
            };
            let result = match endpoint.connect().await {
                Ok(channel) => DetectorClient::new(channel).get_series(request).await,
                Err(error) => {
                    warn!(detector = %endpoint.uri(), episode_id = %event.id, error = %error, "connecting to the detector for a chart failed");
                    continue;
                }
            };
            match result {
                Ok(response) => return Some(response.into_inner()),
                Err(status) => {
                    debug!(detector = %endpoint.uri(), episode_id = %event.id, status = %status, "the detector did not return the series for a chart");
                }
            }
        }
        None
    }
}

impl ChartProvider for DetectorChartProvider {
    fn chart(&self, event: &AnomalyEvent) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + '_>> {
        let event = event.clone();
        Box::pin(async move {
            let series = self.fetch_series(&event).await?;
            let chart = alert_chart(&event, &series.points, self.time_zone)?;
            // Rendering takes tens of milliseconds of CPU, so it runs off
            // the async workers.
            let rendered = tokio::task::spawn_blocking(move || render_alert_chart(&chart)).await;
            match rendered {
                Ok(Ok(png)) => Some(png),
                Ok(Err(error)) => {
                    warn!(episode_id = %event.id, error = %error, "rendering the alert chart failed; sending text only");
                    None
                }
                Err(error) => {
                    warn!(episode_id = %event.id, error = %error, "the chart rendering task failed; sending text only");
                    None
                }
            }
        })
    }
}

/// Builds the chart of the day up to the event's window end, with the same
/// day a week earlier. Returns `None` with fewer than two points in the day.
pub fn alert_chart(event: &AnomalyEvent, points: &[SeriesPoint], time_zone: Tz) -> Option<AlertChart> {
    let end = if event.window_end_ms > 0 {
        event.window_end_ms
    } else {
        points.last()?.window_end_ms
    };
    let start = end - DAY_MS;

    let day: Vec<ChartPoint> = points
        .iter()
        .filter(|point| point.window_end_ms > start && point.window_end_ms <= end)
        .map(|point| ChartPoint {
            time_ms: point.window_end_ms,
            value: point.value,
            band: point.lower.zip(point.upper),
            anomalous: point.anomalous,
        })
        .collect();
    if day.len() < 2 {
        debug!(episode_id = %event.id, points = day.len(), "too few points in the last day for a chart");
        return None;
    }
    // TODO: when the detector keeps less than 8 days of a series, the
    // week-earlier line is left out. Reading it from ClickHouse instead
    // would need the detector's metric definitions in the notifier.
    let week_earlier = points
        .iter()
        .filter(|point| point.window_end_ms > start - WEEK_MS && point.window_end_ms <= end - WEEK_MS)
        .map(|point| (point.window_end_ms + WEEK_MS, point.value))
        .collect();

    Some(AlertChart {
        title: series_title(event),
        points: day,
        week_earlier,
        time_zone,
    })
}

fn series_title(event: &AnomalyEvent) -> String {
    if event.slice.is_empty() {
        return event.metric.clone();
    }
    let pairs: Vec<String> = event
        .slice
        .iter()
        .map(|dimension| format!("{}={}", dimension.name, dimension.value))
        .collect();
    format!("{} {{{}}}", event.metric, pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use seismo_proto::v1::Dimension;

    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn point(end_ms: i64, value: f64) -> SeriesPoint {
        SeriesPoint {
            window_start_ms: end_ms - HOUR_MS,
            window_end_ms: end_ms,
            value,
            expected: Some(value),
            lower: Some(value - 1.0),
            upper: Some(value + 1.0),
            anomalous: false,
            reference_only: false,
        }
    }

    #[test]
    fn chart_takes_last_day_and_week_earlier() {
        let end = 30 * DAY_MS;
        let points: Vec<SeriesPoint> = (0..=9 * 24)
            .map(|hour| point(end - hour * HOUR_MS, hour as f64))
            .rev()
            .collect();
        let event = AnomalyEvent {
            metric: "views".to_string(),
            slice: vec![Dimension {
                name: "os".to_string(),
                value: "iOS".to_string(),
            }],
            window_end_ms: end,
            ..AnomalyEvent::default()
        };

        let chart = alert_chart(&event, &points, chrono_tz::UTC).unwrap();

        assert_eq!(chart.title, "views {os=iOS}");
        assert_eq!(chart.points.len(), 24);
        assert_eq!(chart.points.last().unwrap().time_ms, end);
        assert_eq!(chart.week_earlier.len(), 24);
        // The week-earlier point lined up with `end` is the one 168 hours back.
        assert_eq!(*chart.week_earlier.last().unwrap(), (end, 168.0));
    }

    #[test]
    fn chart_needs_two_points() {
        let event = AnomalyEvent {
            window_end_ms: 10 * DAY_MS,
            ..AnomalyEvent::default()
        };

        assert!(alert_chart(&event, &[point(10 * DAY_MS, 1.0)], chrono_tz::UTC).is_none());
    }
}
