//! The latency percentile curve as a hand-written SVG: x is the percentile
//! on a "nines" scale (0%, 90%, 99%, ... 99.999%: `-log10(1 - q)`), y the
//! latency in milliseconds on a log scale, whole decades from below the
//! fastest operation to above the slowest. Log, not linear: a single stall
//! of a few hundred ms would otherwise flatten the whole body of the curve.

use std::fmt::Write;

use hdrhistogram::Histogram;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 480.0;
const MARGIN_LEFT: f64 = 80.0;
const MARGIN_RIGHT: f64 = 30.0;
const MARGIN_TOP: f64 = 60.0;
const MARGIN_BOTTOM: f64 = 60.0;
/// Right end of the x axis, in nines (5 = 99.999%).
const NINES_MAX: f64 = 5.0;
/// Bottom of the y axis at the lowest, in ms (the histogram's 1 µs floor).
const Y_FLOOR_MS: f64 = 0.001;
/// Labelled grid lines within each decade of the y axis.
const Y_TICKS_PER_DECADE: [f64; 3] = [1.0, 2.0, 5.0];
/// Points per halving of the distance to 100% (HdrHistogram's quantile iterator).
const TICKS_PER_HALF_DISTANCE: u32 = 8;

pub struct SvgPlot<'a> {
    pub title: String,
    pub histogram: &'a Histogram<u64>,
}

/// The y axis: whole decades `[10^lo, 10^hi]` of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LogAxis {
    decade_lo: i32,
    decade_hi: i32,
}

impl LogAxis {
    fn covering(min_ms: f64, max_ms: f64) -> LogAxis {
        let lo = min_ms.max(Y_FLOOR_MS).log10().floor() as i32;
        let hi = (max_ms.max(Y_FLOOR_MS).log10().ceil() as i32).max(lo + 1);
        LogAxis {
            decade_lo: lo,
            decade_hi: hi,
        }
    }

    fn y_of(&self, ms: f64) -> f64 {
        let bottom = HEIGHT - MARGIN_BOTTOM;
        let span = f64::from(self.decade_hi - self.decade_lo);
        let at = (ms.max(Y_FLOOR_MS).log10() - f64::from(self.decade_lo)) / span;
        bottom - at.clamp(0.0, 1.0) * (bottom - MARGIN_TOP)
    }

    /// Grid values: 1, 2, 5 times every decade, and the top.
    fn ticks(&self) -> Vec<f64> {
        let mut ticks: Vec<f64> = (self.decade_lo..self.decade_hi)
            .flat_map(|d| Y_TICKS_PER_DECADE.map(|m| m * 10f64.powi(d)))
            .collect();
        ticks.push(10f64.powi(self.decade_hi));
        ticks
    }
}

impl SvgPlot<'_> {
    pub fn render(&self) -> String {
        let h = self.histogram;
        let axis = LogAxis::covering(h.min() as f64 / 1000.0, h.max() as f64 / 1000.0);
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" {}>"#,
            format_args!(
                r#"viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12""#
            )
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
            WIDTH / 2.0,
            escape(&self.title)
        );
        let ms = |q: f64| trim_float(h.value_at_quantile(q) as f64 / 1000.0);
        let subtitle = format!(
            "p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms; {} ops",
            ms(0.5),
            ms(0.99),
            ms(0.999),
            trim_float(h.max() as f64 / 1000.0),
            h.len()
        );
        text(&mut svg, (WIDTH / 2.0, 44.0), "middle", &subtitle);
        self.axes(&mut svg, axis);
        self.curve(&mut svg, axis);
        svg.push_str("</svg>\n");
        svg
    }

    fn axes(&self, svg: &mut String, axis: LogAxis) {
        let (left, right) = (MARGIN_LEFT, WIDTH - MARGIN_RIGHT);
        let (top, bottom) = (MARGIN_TOP, HEIGHT - MARGIN_BOTTOM);
        for nines in 0..=NINES_MAX as u32 {
            let x = x_of(f64::from(nines));
            let label = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"][nines as usize];
            grid_line(svg, (x, top), (x, bottom));
            text(svg, (x, bottom + 18.0), "middle", label);
        }
        for v in axis.ticks() {
            let y = axis.y_of(v);
            grid_line(svg, (left, y), (right, y));
            text(svg, (left - 6.0, y + 4.0), "end", &trim_float(v));
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="#444"/>"##,
            right - left,
            bottom - top
        );
        text(
            svg,
            ((left + right) / 2.0, HEIGHT - 14.0),
            "middle",
            "percentile",
        );
        let mid = (top + bottom) / 2.0;
        let label = r#"text-anchor="middle">latency (ms, log scale)</text>"#;
        let _ = writeln!(
            svg,
            r#"<text x="18" y="{mid}" transform="rotate(-90 18 {mid})" {label}"#
        );
    }

    fn curve(&self, svg: &mut String, axis: LogAxis) {
        let mut points = String::new();
        for v in self.histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            let q = v.quantile_iterated_to();
            let nines = if q >= 1.0 {
                NINES_MAX
            } else {
                (-(1.0 - q).log10()).min(NINES_MAX)
            };
            let ms = self.histogram.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0;
            let _ = write!(points, "{:.1},{:.1} ", x_of(nines), axis.y_of(ms));
        }
        let _ = writeln!(
            svg,
            r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##,
            points.trim_end()
        );
    }
}

fn grid_line(svg: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64)) {
    let _ = writeln!(
        svg,
        r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="#ddd"/>"##
    );
}

fn text(svg: &mut String, (x, y): (f64, f64), anchor: &str, s: &str) {
    let _ = writeln!(
        svg,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}">{}</text>"#,
        escape(s)
    );
}

fn x_of(nines: f64) -> f64 {
    MARGIN_LEFT + nines / NINES_MAX * (WIDTH - MARGIN_LEFT - MARGIN_RIGHT)
}

/// At most three significant decimals, no trailing zeros.
fn trim_float(v: f64) -> String {
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves the plot is an SVG document with one curve, on whole decades covering the data.
    #[test]
    fn renders_svg_with_curve_on_log_axis() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        for us in 1..=10_000u64 {
            h.record(us * 3).expect("in range");
        }
        let svg = SvgPlot {
            title: "a & b".into(),
            histogram: &h,
        }
        .render();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("a &amp; b"));
        let axis = LogAxis::covering(0.003, 30.0);
        assert_eq!((axis.decade_lo, axis.decade_hi), (-3, 2));
        assert_eq!(axis.y_of(0.001), HEIGHT - MARGIN_BOTTOM);
        assert_eq!(axis.y_of(100.0), MARGIN_TOP);
        assert_eq!(axis.ticks().len(), 5 * 3 + 1);
        let empty = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        let svg = SvgPlot {
            title: String::new(),
            histogram: &empty,
        }
        .render();
        assert!(svg.starts_with("<svg"), "an empty run still plots");
        assert_eq!(trim_float(2.5), "2.5");
        assert_eq!(trim_float(314.6), "315");
        assert_eq!(trim_float(0.001), "0.001");
    }
}
