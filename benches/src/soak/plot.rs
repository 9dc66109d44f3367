//! The soak's SVG: two panels over the same time axis (minutes), the
//! server's RSS on top and the pair's per-interval p50/p99 below, with the
//! end of the warm-up marked in both. Latency is on a log axis (p50 and p99
//! are orders of magnitude apart); RSS on a linear one from 0. Rendered with
//! plotters' SVG backend (already the bench's plotting crate), into a string
//! so it can be tested.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::soak::row::Row;
use crate::soak::summary::RssSample;

const SIZE: (u32, u32) = (1000, 700);
const BLUE: RGBColor = RGBColor(31, 119, 180);
const RED: RGBColor = RGBColor(214, 39, 40);
const GREY: RGBColor = RGBColor(150, 150, 150);

/// The whole SVG document.
pub fn render(
    title: &str,
    rss: &[RssSample],
    rows: &[Row],
    warmup_s: f64,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(title, ("sans-serif", 20))
            .map_err(|e| e.to_string())?;
        let (top, bottom) = root.split_vertically(SIZE.1 / 2 - 20);
        let minutes = rss
            .iter()
            .map(|s| s.t_s)
            .chain(rows.iter().map(|r| r.t_end_s))
            .fold(1.0, f64::max)
            / 60.0;
        let warm = warmup_s / 60.0;
        let mib: Vec<(f64, f64)> = rss
            .iter()
            .map(|s| (s.t_s / 60.0, s.rss_kib / 1024.0))
            .collect();
        panel(
            &top,
            "Server RSS (MiB), sampled every 10 s",
            minutes,
            warm,
            &[("RSS", BLUE, mib)],
            false,
        )?;
        let at = |r: &Row| r.t_end_s / 60.0;
        let p50 = rows.iter().map(|r| (at(r), r.p50_us)).collect();
        let p99 = rows.iter().map(|r| (at(r), r.p99_us)).collect();
        panel(
            &bottom,
            "Pair latency per interval (µs, log scale)",
            minutes,
            warm,
            &[("p50", BLUE, p50), ("p99", RED, p99)],
            true,
        )?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

type Series = (&'static str, RGBColor, Vec<(f64, f64)>);

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    x_max: f64,
    warm: f64,
    series: &[Series],
    log_y: bool,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("plot: {e}");
    // Log axis: values are drawn as log10 and labelled back in µs (one
    // chart type for both panels); 0 (an interval with no message) is
    // drawn at the bottom.
    let ys = || series.iter().flat_map(|s| s.2.iter().map(|p| p.1));
    let (y_min, y_max) = if log_y {
        let lo = ys().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
        let hi = ys().fold(1.0, f64::max);
        let lo = if lo.is_finite() {
            lo.log10().floor()
        } else {
            0.0
        };
        (lo, hi.log10().ceil().max(lo + 1.0))
    } else {
        (0.0, ys().fold(1.0, f64::max) * 1.1)
    };
    let y_of = |v: f64| {
        if log_y {
            if v > 0.0 {
                v.log10().max(y_min)
            } else {
                y_min
            }
        } else {
            v
        }
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(65)
        .build_cartesian_2d(0f64..x_max, y_min..y_max)
        .map_err(|e| err(&e))?;
    let label = |y: &f64| {
        if log_y {
            format!("{:.0}", 10f64.powf(*y))
        } else {
            format!("{y:.1}")
        }
    };
    chart
        .configure_mesh()
        .x_desc("minutes since start")
        .y_label_formatter(&label)
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            vec![(warm, y_min), (warm, y_max)],
            GREY.stroke_width(1),
        ))
        .map_err(|e| err(&e))?
        .label("end of warm-up")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREY));
    for (name, color, pts) in series {
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|&(x, y)| (x, y_of(y))),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tag closes in order: enough of XML's well-formedness to catch
    /// a broken writer (no external parser in this crate).
    fn balanced(svg: &str) -> Result<usize, String> {
        let mut stack: Vec<String> = Vec::new();
        let mut elements = 0;
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let j = rest[i..].find('>').ok_or("unclosed <")? + i;
            let tag = &rest[i + 1..j];
            rest = &rest[j + 1..];
            if tag.starts_with('?') || tag.starts_with('!') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().ok_or(format!("stray </{name}>"))?;
                if open != name.trim() {
                    return Err(format!("<{open}> closed by </{name}>"));
                }
            } else {
                elements += 1;
                if !tag.ends_with('/') {
                    let name = tag.split_whitespace().next().unwrap_or("");
                    stack.push(name.to_string());
                }
            }
            if rest.trim().is_empty() {
                break;
            }
        }
        if stack.is_empty() {
            Ok(elements)
        } else {
            Err(format!("unclosed: {stack:?}"))
        }
    }

    #[test]
    fn svg_is_well_formed_with_both_panels() {
        let rss: Vec<RssSample> = (0..37)
            .map(|i| RssSample {
                t_s: i as f64 * 10.0,
                rss_kib: 20_000.0 + i as f64,
                cpu_pct: 40.0,
            })
            .collect();
        let rows: Vec<Row> = (0..6)
            .map(|i| Row {
                index: i,
                t_start_s: i as f64 * 60.0,
                t_end_s: (i + 1) as f64 * 60.0,
                p50_us: 30.0,
                p99_us: 90.0 + i as f64,
                ..Default::default()
            })
            .collect();
        let svg = render("soak: percore", &rss, &rows, 30.0).expect("renders");
        assert!(svg.trim_start().starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.trim_end().ends_with("</svg>"));
        let n = balanced(&svg).expect("well-formed");
        assert!(n > 20, "{n} elements");
        // The latency axis is logarithmic: 30 µs .. 96 µs spans 10 .. 100
        // (plotters puts each text on its own line).
        for text in [
            "Server RSS",
            "Pair latency",
            "p99",
            "end of warm-up",
            "\n100\n",
            "\n10\n",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        // Three data lines and two warm-up markers (polylines).
        assert!(svg.matches("<polyline").count() >= 5);
        assert!(balanced("<svg><g></svg>").is_err());
    }

    #[test]
    fn empty_inputs_still_render() {
        let svg = render("empty", &[], &[], 0.0).expect("renders");
        assert!(balanced(&svg).is_ok());
    }
}
