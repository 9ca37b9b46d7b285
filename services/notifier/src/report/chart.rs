//! The report's chart: one panel per metric with its last seven days.

use chrono::NaiveDate;
use plotters::prelude::*;

use crate::chart::font::{FONT_FAMILY, ensure_font};
use crate::chart::png_encode::encode_png;
use crate::format_number;

const PANEL_WIDTH: u32 = 480;
const PANEL_HEIGHT: u32 = 260;
const COLUMNS: u32 = 2;
const LINE_COLOR: RGBColor = RGBColor(31, 100, 180);

/// One panel: a metric's name and its values per day, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPanel {
    pub name: String,
    pub days: Vec<(NaiveDate, Option<f64>)>,
}

/// Renders the panels in a grid of two columns as one PNG. Fails when there
/// is no panel or drawing fails.
pub fn render_trend_grid(panels: &[TrendPanel]) -> Result<Vec<u8>, String> {
    ensure_font()?;
    if panels.is_empty() {
        return Err("the report has no metric to chart".to_string());
    }
    let rows = (panels.len() as u32).div_ceil(COLUMNS);
    let (width, height) = (PANEL_WIDTH * COLUMNS, PANEL_HEIGHT * rows);

    let mut buffer = vec![0_u8; (width * height * 3) as usize];
    draw_grid(panels, &mut buffer, (width, height), rows)
        .map_err(|error| format!("drawing the report chart failed: {error}"))?;
    encode_png(&buffer, width, height)
}

fn draw_grid(
    panels: &[TrendPanel],
    buffer: &mut [u8],
    size: (u32, u32),
    rows: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(buffer, size).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((rows as usize, COLUMNS as usize));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        draw_panel(panel, area)?;
    }
    root.present()?;
    Ok(())
}

fn draw_panel(
    panel: &TrendPanel,
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
) -> Result<(), Box<dyn std::error::Error>> {
    let known: Vec<(usize, f64)> = panel
        .days
        .iter()
        .enumerate()
        .filter_map(|(index, (_, value))| value.map(|value| (index, value)))
        .collect();
    let (low, high) = value_range(known.iter().map(|(_, value)| *value));
    let last = panel.days.len().saturating_sub(1).max(1) as f64;

    let mut plot = ChartBuilder::on(area)
        .caption(&panel.name, (FONT_FAMILY, 20))
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.3..last + 0.3, low..high)?;
    let days = panel.days.clone();
    plot.configure_mesh()
        .x_labels(days.len())
        .y_labels(5)
        .x_label_formatter(&|x| {
            let index = x.round();
            if (x - index).abs() > 0.01 || index < 0.0 {
                return String::new();
            }
            days.get(index as usize)
                .map(|(day, _)| day.format("%a %d").to_string())
                .unwrap_or_default()
        })
        .y_label_formatter(&|value| format_number(*value))
        .label_style((FONT_FAMILY, 12))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()?;

    plot.draw_series(LineSeries::new(
        known.iter().map(|(index, value)| (*index as f64, *value)),
        LINE_COLOR.stroke_width(2),
    ))?;
    plot.draw_series(
        known
            .iter()
            .map(|(index, value)| Circle::new((*index as f64, *value), 3, LINE_COLOR.filled())),
    )?;
    Ok(())
}

/// Returns the y-axis range of a panel with `values`: their span plus 15 %
/// on each side, never below 0 for non-negative values. A constant series
/// gets a span of 5 % of its value, and an all-zero one the range 0 to 1, so
/// the axis labels stay readable numbers.
fn value_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(min, max), value| {
        (min.min(value), max.max(value))
    });
    if !min.is_finite() {
        return (0.0, 1.0);
    }

    let span = (max - min).max(max.abs() * 0.05);
    if span == 0.0 {
        return (0.0, 1.0);
    }
    let low = if min >= 0.0 {
        (min - span * 0.15).max(0.0)
    } else {
        min - span * 0.15
    };
    (low, max + span * 0.15)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_panels() -> Vec<TrendPanel> {
        let first = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let series = |name: &str, base: f64, weekend: f64| TrendPanel {
            name: name.to_string(),
            days: (0..7)
                .map(|offset| {
                    let day = first + chrono::Days::new(offset);
                    let factor = if offset == 1 || offset == 2 {
                        weekend
                    } else {
                        1.0 + 0.02 * offset as f64
                    };
                    (day, Some(base * factor))
                })
                .collect(),
        };
        vec![
            series("DAU", 15_400.0, 0.86),
            series("views", 412_000.0, 0.8),
            series("likes", 83_500.0, 0.82),
            series("CTR", 0.203, 1.02),
            series("messages", 9_870.0, 0.9),
        ]
    }

    #[test]
    fn value_range_of_zero_series_is_readable() {
        assert_eq!(value_range([0.0, 0.0].into_iter()), (0.0, 1.0));
    }

    #[test]
    fn value_range_pads_both_sides() {
        let (low, high) = value_range([10.0, 20.0].into_iter());

        assert!((low - 8.5).abs() < 1e-9, "{low}");
        assert!((high - 21.5).abs() < 1e-9, "{high}");
        assert_eq!(value_range(std::iter::empty()), (0.0, 1.0));
    }

    #[test]
    fn grid_renders_two_columns() {
        let png = render_trend_grid(&sample_panels()).unwrap();

        let reader = png::Decoder::new(std::io::Cursor::new(&png)).read_info().unwrap();
        assert_eq!(
            (reader.info().width, reader.info().height),
            (2 * PANEL_WIDTH, 3 * PANEL_HEIGHT)
        );
        if let Ok(path) = std::env::var("SEISMO_SAMPLE_REPORT_CHART") {
            std::fs::write(path, &png).unwrap();
        }
    }

    #[test]
    fn grid_tolerates_missing_days() {
        let mut panels = sample_panels();
        panels[0].days[3].1 = None;
        panels[1].days.iter_mut().for_each(|(_, value)| *value = None);

        assert!(render_trend_grid(&panels).is_ok());
        assert!(render_trend_grid(&[]).is_err());
    }
}
