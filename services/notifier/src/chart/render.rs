//! Draws an alert's chart: the last day of the series with its band, the
//! anomalous windows marked, and the same hours a week earlier.

use chrono::DateTime;
use chrono_tz::Tz;
use plotters::prelude::*;

use super::font::{FONT_FAMILY, ensure_font};
use super::png_encode::encode_png;
use crate::format_number;

/// Chart size in pixels; Telegram shows photos of this ratio without
/// cropping.
pub const CHART_WIDTH: u32 = 960;
pub const CHART_HEIGHT: u32 = 480;

const VALUE_COLOR: RGBColor = RGBColor(31, 100, 180);
const BAND_COLOR: RGBColor = RGBColor(120, 170, 230);
const WEEK_EARLIER_COLOR: RGBColor = RGBColor(150, 150, 150);
const ANOMALY_COLOR: RGBColor = RGBColor(210, 40, 40);

/// One closed window of the series.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartPoint {
    /// Window end, Unix epoch milliseconds.
    pub time_ms: i64,
    pub value: f64,
    /// The band; `None` while the series was still learning.
    pub band: Option<(f64, f64)>,
    pub anomalous: bool,
}

/// Data of one alert chart.
#[derive(Debug, Clone)]
pub struct AlertChart {
    /// Such as `views {os=iOS}`.
    pub title: String,
    /// The last day of the series, oldest first.
    pub points: Vec<ChartPoint>,
    /// The same hours a week earlier, shifted forward by 7 days so they line
    /// up with `points`; empty when the detector no longer keeps them.
    pub week_earlier: Vec<(i64, f64)>,
    /// Time zone of the axis labels.
    pub time_zone: Tz,
}

/// Renders the chart as a PNG. Fails on an empty series or a drawing error.
pub fn render_alert_chart(chart: &AlertChart) -> Result<Vec<u8>, String> {
    ensure_font()?;
    let (first, last) = match (chart.points.first(), chart.points.last()) {
        (Some(first), Some(last)) => (first.time_ms, last.time_ms),
        _ => return Err("the series has no points to chart".to_string()),
    };
    // The x axis counts hours from the first point, so its labels fall on
    // whole hours; each label shows the wall-clock time it stands for.
    let axis = HourAxis { origin_ms: first };
    let x_range = 0.0..axis.hours(last).max(1.0);
    let y_range = value_range(chart);

    let mut buffer = vec![0_u8; (CHART_WIDTH * CHART_HEIGHT * 3) as usize];
    draw(chart, &mut buffer, axis, x_range, y_range).map_err(|error| format!("drawing the chart failed: {error}"))?;
    encode_png(&buffer, CHART_WIDTH, CHART_HEIGHT)
}

fn draw(
    chart: &AlertChart,
    buffer: &mut [u8],
    axis: HourAxis,
    x_range: std::ops::Range<f64>,
    y_range: std::ops::Range<f64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(buffer, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let time_zone = chart.time_zone;
    let mut plot = ChartBuilder::on(&root)
        .caption(&chart.title, (FONT_FAMILY, 24))
        .margin(14)
        .margin_right(36)
        .x_label_area_size(34)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, y_range)?;
    plot.configure_mesh()
        .x_labels(9)
        .y_labels(7)
        .x_label_formatter(&|hours| format_time(axis.time_ms(*hours), time_zone))
        .y_label_formatter(&|value| format_number(*value))
        .label_style((FONT_FAMILY, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;

    for segment in band_segments(&chart.points) {
        let segment = segment.into_iter().map(|(time_ms, value)| (axis.hours(time_ms), value));
        plot.draw_series(std::iter::once(Polygon::new(
            segment.collect::<Vec<_>>(),
            BAND_COLOR.mix(0.3).filled(),
        )))?;
    }
    if !chart.week_earlier.is_empty() {
        plot.draw_series(LineSeries::new(
            chart
                .week_earlier
                .iter()
                .map(|(time_ms, value)| (axis.hours(*time_ms), *value)),
            WEEK_EARLIER_COLOR.stroke_width(2),
        ))?
        .label("a week earlier")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], WEEK_EARLIER_COLOR.stroke_width(2)));
    }
    plot.draw_series(LineSeries::new(
        chart
            .points
            .iter()
            .map(|point| (axis.hours(point.time_ms), point.value)),
        VALUE_COLOR.stroke_width(2),
    ))?
    .label("value")
    .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], VALUE_COLOR.stroke_width(2)));
    plot.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
        .label("expected band")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], BAND_COLOR.mix(0.3).filled()));
    plot.draw_series(
        chart
            .points
            .iter()
            .filter(|point| point.anomalous)
            .map(|point| Circle::new((axis.hours(point.time_ms), point.value), 5, ANOMALY_COLOR.filled())),
    )?
    .label("anomaly")
    .legend(|(x, y)| Circle::new((x + 10, y), 5, ANOMALY_COLOR.filled()));

    plot.configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FONT_FAMILY, 14))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Maps epoch milliseconds to hours since `origin_ms` and back.
#[derive(Debug, Clone, Copy)]
struct HourAxis {
    origin_ms: i64,
}

impl HourAxis {
    fn hours(self, time_ms: i64) -> f64 {
        (time_ms - self.origin_ms) as f64 / 3_600_000.0
    }

    fn time_ms(self, hours: f64) -> i64 {
        self.origin_ms + (hours * 3_600_000.0).round() as i64
    }
}

/// Returns the y range covering values, bands and the week-earlier line,
/// with 8 % headroom, and never an empty range.
fn value_range(chart: &AlertChart) -> std::ops::Range<f64> {
    let values = chart
        .points
        .iter()
        .flat_map(|point| {
            let (lower, upper) = point.band.unwrap_or((point.value, point.value));
            [point.value, lower, upper]
        })
        .chain(chart.week_earlier.iter().map(|(_, value)| *value))
        .filter(|value| value.is_finite());
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(min, max), value| {
        (min.min(value), max.max(value))
    });
    if !min.is_finite() {
        return 0.0..1.0;
    }
    let span = (max - min).max(max.abs() * 0.05).max(1e-9);
    let low = min - span * 0.08;
    // A series of counts starts its axis at zero instead of below it.
    let low = if min >= 0.0 && low < 0.0 { 0.0 } else { low };
    low..max + span * 0.08
}

/// Splits the band into polygons, one per run of points that have a band,
/// so a learning gap is left blank.
fn band_segments(points: &[ChartPoint]) -> Vec<Vec<(i64, f64)>> {
    let mut segments = Vec::new();
    let mut run: Vec<(i64, f64, f64)> = Vec::new();
    for point in points.iter().map(Some).chain(std::iter::once(None)) {
        match point.and_then(|point| point.band.map(|(lower, upper)| (point.time_ms, lower, upper))) {
            Some(banded) => run.push(banded),
            None => {
                if run.len() >= 2 {
                    let upper = run.iter().map(|(time, _, upper)| (*time, *upper));
                    let lower = run.iter().rev().map(|(time, lower, _)| (*time, *lower));
                    segments.push(upper.chain(lower).collect());
                }
                run.clear();
            }
        }
    }
    segments
}

fn format_time(time_ms: i64, time_zone: Tz) -> String {
    DateTime::from_timestamp_millis(time_ms)
        .map(|time| time.with_timezone(&time_zone).format("%d %b %H:%M").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    /// Builds a day of hourly points with a daily wave, a band around it and
    /// a drop in the last three hours.
    pub(crate) fn sample_chart() -> AlertChart {
        let start = 1_764_806_400_000; // 2025-12-04 00:00 UTC
        let wave = |hour: i64| 1000.0 + 400.0 * ((hour as f64) / 24.0 * std::f64::consts::TAU).sin();
        let points = (0..=24)
            .map(|hour| {
                let expected = wave(hour);
                let value = if hour >= 22 {
                    expected * 0.45
                } else {
                    expected * (1.0 + 0.03 * ((hour % 5) as f64 - 2.0) / 2.0)
                };
                ChartPoint {
                    time_ms: start + hour * HOUR_MS,
                    value,
                    band: (hour >= 2).then_some((expected * 0.85, expected * 1.15)),
                    anomalous: hour >= 22,
                }
            })
            .collect();
        let week_earlier = (0..=24)
            .map(|hour| (start + hour * HOUR_MS, wave(hour) * 1.04))
            .collect();
        AlertChart {
            title: "views {os=iOS}".to_string(),
            points,
            week_earlier,
            time_zone: chrono_tz::Europe::Moscow,
        }
    }

    #[test]
    fn chart_renders_png() {
        let png = render_alert_chart(&sample_chart()).unwrap();

        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (CHART_WIDTH, CHART_HEIGHT));
        if let Ok(path) = std::env::var("SEISMO_SAMPLE_CHART") {
            std::fs::write(path, &png).unwrap();
        }
    }

    #[test]
    fn chart_without_points_fails() {
        let mut chart = sample_chart();
        chart.points.clear();

        assert!(render_alert_chart(&chart).is_err());
    }

    #[test]
    fn band_splits_at_learning_gaps() {
        let mut points = sample_chart().points;
        points[10].band = None;

        let segments = band_segments(&points);

        // Hours 2-9 and 11-24; each polygon has every point twice.
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[0].len(), 16);
        assert_eq!(segments[1].len(), 28);
    }

    #[test]
    fn value_range_has_headroom_and_floor() {
        let range = value_range(&sample_chart());

        // The lowest value is 360 (the drop) and the highest 1610 (the band).
        assert!(range.start > 0.0, "{range:?}");
        assert!(range.start < 360.0, "{range:?}");
        assert!(range.end > 1610.0, "{range:?}");
    }
}
