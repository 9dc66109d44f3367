//! `histcmp --plot`: percentile curves on HdrHistogram's usual axes: x is
//! 1/(1-p) on a log scale (so 90 %, 99 %, 99.9 % ... are evenly spaced),
//! y is latency. Rendered with plotters' SVG backend.

use std::path::Path;

use plotters::prelude::*;

use crate::histcmp::Run;

/// Draws every run of each side (same colour per side) into an SVG file.
pub fn plot(path: &Path, sides: &[(&str, &[Run])]) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("plot {}: {e}", path.display());
    // x range: up to the deepest finite 1/(1-p) among the curves, at least 99.99 %.
    let mut x_max: f64 = 1e4;
    let mut y_max: f64 = 1.0;
    for (_, runs) in sides {
        for r in runs.iter() {
            for &(q, v) in &r.curve {
                if q < 1.0 {
                    x_max = x_max.max(1.0 / (1.0 - q));
                }
                y_max = y_max.max(v);
            }
        }
    }
    let x_max = 10f64.powf(x_max.log10().ceil());
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Latency by percentile", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((1f64..x_max).log_scale(), 0f64..y_max * 1.05)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("Percentile")
        .y_desc("Latency (µs)")
        .x_label_formatter(&|x| percentile_label(*x))
        .draw()
        .map_err(|e| err(&e))?;
    let colors = [RGBColor(31, 119, 180), RGBColor(214, 39, 40)];
    for (i, (name, runs)) in sides.iter().enumerate() {
        let color = colors[i % colors.len()];
        for (k, r) in runs.iter().enumerate() {
            // The 100 % row has no finite x: place max at the right edge.
            let pts: Vec<(f64, f64)> = r
                .curve
                .iter()
                .map(|&(q, v)| {
                    let x = if q < 1.0 { 1.0 / (1.0 - q) } else { x_max };
                    (x.min(x_max), v)
                })
                .collect();
            let series = chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(|e| err(&e))?;
            if k == 0 {
                let label = if runs.len() > 1 {
                    format!("{name} ({} runs)", runs.len())
                } else {
                    name.to_string()
                };
                series
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// 1/(1-p) -> "99.9%".
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    let s = format!("{p:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}
