//! The PNG chart of an A/B analysis: per-user metric histograms of both
//! groups and, for CTR, the bootstrap distributions of each group's global
//! CTR. Drawn with plotters into memory, with the embedded DejaVu Sans font,
//! so no system font library is needed.

use std::sync::Once;

use anyhow::{Context, anyhow};
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::analysis::{AbAnalysis, Metric};
use crate::report::histogram_shares;

/// DejaVu Sans (license in `assets/DejaVuSans-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Font family name the chart registers and uses.
const FONT_FAMILY: &str = "sans-serif";

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 500;
const BINS: usize = 30;
const CONTROL_COLOR: RGBColor = RGBColor(31, 119, 180);
const TREATMENT_COLOR: RGBColor = RGBColor(214, 39, 40);

/// Renders the chart as PNG bytes.
pub fn render_ab_chart(analysis: &AbAnalysis) -> anyhow::Result<Vec<u8>> {
    register_font()?;
    let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|error| anyhow!("{error}"))?;

        let panels: Vec<_> = match &analysis.bootstrap {
            Some(_) => root.split_evenly((1, 2)),
            None => vec![root.clone()],
        };
        draw_histograms(
            &panels[0],
            &format!("Per-user {}", metric_label(analysis.metric)),
            &analysis.control.name,
            &analysis.control_values,
            &analysis.treatment.name,
            &analysis.treatment_values,
        )?;
        if let Some(bootstrap) = &analysis.bootstrap {
            draw_histograms(
                &panels[1],
                "Global CTR, Poisson bootstrap",
                &analysis.control.name,
                &bootstrap.control_replicates,
                &analysis.treatment.name,
                &bootstrap.treatment_replicates,
            )?;
        }
        root.present().map_err(|error| anyhow!("{error}"))?;
    }
    encode_png(&pixels)
}

fn metric_label(metric: Metric) -> &'static str {
    match metric {
        Metric::Ctr => "CTR",
        Metric::Likes => "likes",
        Metric::Views => "views",
    }
}

fn register_font() -> anyhow::Result<()> {
    static REGISTER: Once = Once::new();
    let mut result = Ok(());
    REGISTER.call_once(|| {
        result = plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| anyhow!("the embedded DejaVu Sans font is invalid"));
    });
    result
}

/// Draws the share of each group's values per bin as step lines.
fn draw_histograms(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    control_name: &str,
    control: &[f64],
    treatment_name: &str,
    treatment: &[f64],
) -> anyhow::Result<()> {
    let all = control.iter().chain(treatment).copied();
    let (low, high) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| {
        (low.min(value), high.max(value))
    });
    if !low.is_finite() {
        return Ok(());
    }
    let high = if high > low { high } else { low + 1.0 };
    let width = (high - low) / BINS as f64;
    let control_shares = histogram_shares(control, low, width, BINS);
    let treatment_shares = histogram_shares(treatment, low, width, BINS);
    let top = control_shares
        .iter()
        .chain(&treatment_shares)
        .copied()
        .fold(0.0, f64::max)
        * 1.1;

    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT_FAMILY, 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(low..high, 0.0..top.max(0.01))
        .map_err(|error| anyhow!("{error}"))?;
    chart
        .configure_mesh()
        .label_style((FONT_FAMILY, 14))
        .y_desc("share of values")
        .draw()
        .map_err(|error| anyhow!("{error}"))?;

    for (name, shares, color) in [
        (control_name, &control_shares, CONTROL_COLOR),
        (treatment_name, &treatment_shares, TREATMENT_COLOR),
    ] {
        chart
            .draw_series(LineSeries::new(step_points(shares, low, width), color.stroke_width(2)))
            .map_err(|error| anyhow!("{error}"))?
            .label(format!("group {name}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .label_font((FONT_FAMILY, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|error| anyhow!("{error}"))?;
    Ok(())
}

/// Corner points of a step line over the bins.
fn step_points(shares: &[f64], low: f64, width: f64) -> Vec<(f64, f64)> {
    let mut points = vec![(low, 0.0)];
    for (bin, &share) in shares.iter().enumerate() {
        let start = low + width * bin as f64;
        points.push((start, share));
        points.push((start + width, share));
    }
    points.push((low + width * shares.len() as f64, 0.0));
    points
}

fn encode_png(pixels: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("writing the PNG header failed")?;
    writer
        .write_image_data(pixels)
        .context("encoding the chart as PNG failed")?;
    writer.finish().context("finishing the PNG failed")?;
    Ok(bytes)
}
