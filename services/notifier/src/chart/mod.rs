//! Alert charts: the series' last day with its band and anomalies, and the
//! same hours a week earlier, rendered to PNG with plotters.

pub mod font;
pub mod png_encode;
pub mod provider;
pub mod render;
