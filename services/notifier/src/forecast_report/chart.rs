//! The forecast report's chart: per metric, the recent history and the
//! forecast with its prediction interval as a shaded band.

use chrono::{DateTime, Utc};
use plotters::prelude::*;
use seismo_forecast::{ForecastResult, Granularity, Series};

use crate::chart::font::{FONT_FAMILY, ensure_font};
use crate::chart::png_encode::encode_png;
use crate::format_number;

const PANEL_WIDTH: u32 = 560;
const PANEL_HEIGHT: u32 = 280;
const COLUMNS: u32 = 2;
const HISTORY_COLOR: RGBColor = RGBColor(31, 100, 180);
const FORECAST_COLOR: RGBColor = RGBColor(220, 110, 20);

/// History buckets shown before the forecast, as a multiple of the horizon.
const HISTORY_PER_HORIZON: usize = 3;
/// Minimum history buckets shown when the series has them: with daily
/// buckets two weeks, so the weekly pattern is visible.
const MIN_HISTORY: usize = 14;

/// One panel: a metric's recent history and its forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastPanel {
    pub name: String,
    pub granularity: Granularity,
    /// Start of the first history bucket shown.
    pub start: DateTime<Utc>,
    pub history: Vec<f64>,
    /// `(point, lower, upper)` per forecast step, after the history.
    pub forecast: Vec<(f64, f64, f64)>,
}

impl ForecastPanel {
    /// Takes the tail of `series` (three horizons, at least two weeks of
    /// days) and the forecast steps of `result`.
    pub fn new(name: &str, series: &Series, result: &ForecastResult) -> Self {
        let shown_len = (HISTORY_PER_HORIZON * result.steps.len())
            .max(MIN_HISTORY)
            .min(series.len());
        let first = series.len() - shown_len;
        Self {
            name: name.to_string(),
            granularity: series.granularity,
            start: series.time_at(first),
            history: series.values[first..].to_vec(),
            forecast: result
                .steps
                .iter()
                .map(|step| (step.point, step.lower, step.upper))
                .collect(),
        }
    }
}

/// Renders the panels in a grid of two columns as one PNG. Fails when there
/// is no panel or drawing fails.
pub fn render_forecast_grid(panels: &[ForecastPanel]) -> Result<Vec<u8>, String> {
    ensure_font()?;
    if panels.is_empty() {
        return Err("the forecast report has no forecast to chart".to_string());
    }
    let columns = COLUMNS.min(panels.len() as u32);
    let rows = (panels.len() as u32).div_ceil(columns);
    let (width, height) = (PANEL_WIDTH * columns, PANEL_HEIGHT * rows);

    let mut buffer = vec![0_u8; (width * height * 3) as usize];
    draw_grid(panels, &mut buffer, (width, height), (rows, columns))
        .map_err(|error| format!("drawing the forecast chart failed: {error}"))?;
    encode_png(&buffer, width, height)
}

fn draw_grid(
    panels: &[ForecastPanel],
    buffer: &mut [u8],
    size: (u32, u32),
    (rows, columns): (u32, u32),
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(buffer, size).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((rows as usize, columns as usize));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        draw_panel(panel, area)?;
    }
    root.present()?;
    Ok(())
}

fn draw_panel(
    panel: &ForecastPanel,
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
) -> Result<(), Box<dyn std::error::Error>> {
    let values = panel
        .history
        .iter()
        .copied()
        .chain(
            panel
                .forecast
                .iter()
                .flat_map(|&(point, lower, upper)| [point, lower, upper]),
        )
        .filter(|value| value.is_finite());
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(min, max), value| {
        (min.min(value), max.max(value))
    });
    let (low, high) = if min.is_finite() {
        let span = (max - min).max(max.abs() * 0.05).max(1e-9);
        (min - span * 0.1, max + span * 0.1)
    } else {
        (0.0, 1.0)
    };
    let history_len = panel.history.len();
    let last = (history_len + panel.forecast.len()).saturating_sub(1).max(1) as f64;

    let mut plot = ChartBuilder::on(area)
        .caption(&panel.name, (FONT_FAMILY, 20))
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..last + 0.5, low..high)?;
    let label_format = match panel.granularity {
        Granularity::Day => "%d %b",
        Granularity::Hour => "%d %H:00",
    };
    let (start, step) = (panel.start, panel.granularity.step());
    plot.configure_mesh()
        .x_labels(8)
        .y_labels(5)
        .x_label_formatter(&|x| {
            if *x < 0.0 {
                return String::new();
            }
            (start + step * x.round() as i32).format(label_format).to_string()
        })
        .y_label_formatter(&|value| format_number(*value))
        .label_style((FONT_FAMILY, 12))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()?;

    let forecast_x = |index: usize| (history_len + index) as f64;
    let band: Vec<(f64, f64)> = panel
        .forecast
        .iter()
        .enumerate()
        .map(|(index, &(_, _, upper))| (forecast_x(index), upper))
        .chain(
            panel
                .forecast
                .iter()
                .enumerate()
                .rev()
                .map(|(index, &(_, lower, _))| (forecast_x(index), lower)),
        )
        .collect();
    plot.draw_series(std::iter::once(Polygon::new(band, FORECAST_COLOR.mix(0.2).filled())))?;

    plot.draw_series(LineSeries::new(
        panel
            .history
            .iter()
            .enumerate()
            .map(|(index, value)| (index as f64, *value)),
        HISTORY_COLOR.stroke_width(2),
    ))?;
    // The forecast line starts at the last observed value, so the two lines
    // join.
    let joint = panel.history.last().map(|value| ((history_len - 1) as f64, *value));
    plot.draw_series(LineSeries::new(
        joint.into_iter().chain(
            panel
                .forecast
                .iter()
                .enumerate()
                .map(|(index, &(point, _, _))| (forecast_x(index), point)),
        ),
        FORECAST_COLOR.stroke_width(2),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panel(name: &str, history: usize, horizon: usize) -> ForecastPanel {
        ForecastPanel {
            name: name.to_string(),
            granularity: Granularity::Day,
            start: "2026-11-09T00:00:00Z".parse().unwrap(),
            history: (0..history).map(|day| 100.0 + 20.0 * ((day % 7) as f64)).collect(),
            forecast: (0..horizon)
                .map(|day| (110.0 + day as f64, 90.0, 130.0 + day as f64))
                .collect(),
        }
    }

    #[test]
    fn grid_has_panel_per_metric() {
        let png =
            render_forecast_grid(&[panel("views", 21, 7), panel("active_users", 21, 7), panel("ctr", 21, 7)]).unwrap();

        let reader = png::Decoder::new(std::io::Cursor::new(&png)).read_info().unwrap();
        assert_eq!(
            (reader.info().width, reader.info().height),
            (2 * PANEL_WIDTH, 2 * PANEL_HEIGHT)
        );
        if let Ok(path) = std::env::var("SEISMO_SAMPLE_FORECAST_CHART") {
            std::fs::write(path, &png).unwrap();
        }
    }

    #[test]
    fn single_panel_is_one_column() {
        let png = render_forecast_grid(&[panel("views", 1, 1)]).unwrap();

        let reader = png::Decoder::new(std::io::Cursor::new(&png)).read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (PANEL_WIDTH, PANEL_HEIGHT));
        assert!(render_forecast_grid(&[]).is_err());
    }

    #[test]
    fn panel_shows_three_horizons_of_history() {
        let series = Series::new(
            "2026-01-01T00:00:00Z".parse().unwrap(),
            Granularity::Day,
            vec![1.0; 100],
        );
        let result = ForecastResult {
            granularity: Granularity::Day,
            level: 0.95,
            periods: vec![7],
            training_points: 100,
            masked_points: 0,
            event_effect: None,
            interval_scale: None,
            steps: Vec::new(),
        };
        let mut with_steps = result.clone();
        with_steps.steps = vec![
            seismo_forecast::ForecastStep {
                time: series.end(),
                point: 1.0,
                lower: 0.0,
                upper: 2.0,
                flagged: false,
            };
            7
        ];

        assert_eq!(ForecastPanel::new("views", &series, &with_steps).history.len(), 21);
        assert_eq!(ForecastPanel::new("views", &series, &result).history.len(), 14);
        assert_eq!(
            ForecastPanel::new("views", &series, &with_steps).start,
            series.time_at(79)
        );
    }
}
