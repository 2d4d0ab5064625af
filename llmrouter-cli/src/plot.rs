//! `cost_quality.svg`: each router's operating points and hull, the single models, random and
//! the oracle, on one cost (x) / mean score (y) chart. Hand-written SVG: no plotting dependency,
//! viewable in any browser.

use std::fmt::Write;

/// One router's curve.
pub struct Series {
    /// Router name.
    pub name: String,
    /// Operating points (mean cost, mean score).
    pub points: Vec<(f64, f64)>,
    /// Hull vertices (mean cost, mean score), increasing.
    pub hull: Vec<(f64, f64)>,
}

/// What a reference point is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A single model.
    Model,
    /// Uniform random choice.
    Random,
    /// The per-query oracle.
    Oracle,
}

/// A reference point.
pub struct Marker {
    /// Label.
    pub name: String,
    /// Mean cost per query.
    pub cost: f64,
    /// Mean score.
    pub score: f64,
    /// Kind.
    pub kind: Kind,
}

const COLORS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
// Canvas size and the margins around the plotting frame (the legend sits in the right one).
const W: f64 = 900.0;
const H: f64 = 600.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 220.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// Maps data to pixels: log-scaled x when costs span 20x or more.
struct Scale {
    log_x: bool,
    /// Every cost is zero (data without prices).
    free: bool,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Scale {
    fn tx(&self, v: f64) -> f64 {
        self.tx_raw(if self.log_x { v.max(1e-300).log10() } else { v })
    }

    fn tx_raw(&self, v: f64) -> f64 {
        LEFT + (v - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)
    }

    fn ty(&self, v: f64) -> f64 {
        H - BOTTOM - (v - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM)
    }
}

/// The chart as an SVG document.
pub fn cost_quality_svg(title: &str, series: &[Series], markers: &[Marker]) -> String {
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().chain(&s.hull).map(|p| p.0))
        .chain(markers.iter().map(|m| m.cost))
        .filter(|v| v.is_finite())
        .collect();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().chain(&s.hull).map(|p| p.1))
        .chain(markers.iter().map(|m| m.score))
        .filter(|v| v.is_finite())
        .collect();
    let (xmin, xmax) = bounds(&xs);
    let (ymin, ymax) = bounds(&ys);
    let log_x = xmin > 0.0 && xmax / xmin >= 20.0;
    let free = xmax <= 0.0;
    let (x0, x1) = if free {
        (0.0, 1.0)
    } else if log_x {
        (xmin.log10().floor().min(xmin.log10() - 0.1), xmax.log10().ceil().max(xmax.log10() + 0.1))
    } else {
        let pad = ((xmax - xmin) * 0.05).max(xmax.abs() * 0.05).max(1e-12);
        ((xmin - pad).max(0.0), xmax + pad)
    };
    let ypad = ((ymax - ymin) * 0.08).max(0.01);
    let scale = Scale { log_x, free, x0, x1, y0: (ymin - ypad).max(0.0), y1: ymax + ypad };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="{}" y="28" font-size="16" text-anchor="middle">{}</text>"#, W / 2.0, esc(title));
    axes(&mut svg, &scale);
    for m in markers {
        let (x, y) = (scale.tx(m.cost), scale.ty(m.score));
        match m.kind {
            Kind::Model => {
                let _ = writeln!(
                    svg,
                    r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="#888"><title>{}</title></circle>"##,
                    esc(&m.name)
                );
                // Labels near the right edge go to the left of their point.
                let (lx, anchor) = if x > W - RIGHT - 160.0 { (x - 6.0, "end") } else { (x + 6.0, "start") };
                let _ = writeln!(
                    svg,
                    r##"<text x="{lx:.1}" y="{:.1}" font-size="10" fill="#555" text-anchor="{anchor}">{}</text>"##,
                    y + 3.0,
                    esc(&short(&m.name))
                );
            }
            Kind::Random => {
                let _ = writeln!(
                    svg,
                    r##"<path d="M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}" stroke="black" stroke-width="2"><title>random</title></path>"##,
                    x - 5.0,
                    y - 5.0,
                    x + 5.0,
                    y + 5.0,
                    x - 5.0,
                    y + 5.0,
                    x + 5.0,
                    y - 5.0
                );
            }
            Kind::Oracle => {
                let _ = writeln!(
                    svg,
                    r##"<path d="M{x:.1} {:.1}L{:.1} {y:.1}L{x:.1} {:.1}L{:.1} {y:.1}Z" fill="gold" stroke="black"><title>oracle</title></path>"##,
                    y - 7.0,
                    x + 7.0,
                    y + 7.0,
                    x - 7.0
                );
            }
        }
    }
    for (k, s) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let path: Vec<String> = s.hull.iter().map(|p| format!("{:.1},{:.1}", scale.tx(p.0), scale.ty(p.1))).collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"><title>{} (hull)</title></polyline>"#,
            path.join(" "),
            esc(&s.name)
        );
        for p in &s.points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}" fill-opacity="0.6"/>"#,
                scale.tx(p.0),
                scale.ty(p.1)
            );
        }
    }
    legend(&mut svg, series);
    svg.push_str("</svg>\n");
    svg
}

fn axes(svg: &mut String, s: &Scale) {
    let (l, r, t, b) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
    let _ = writeln!(svg, r#"<rect x="{l}" y="{t}" width="{}" height="{}" fill="none" stroke="black"/>"#, r - l, b - t);
    for y in ticks(s.y0, s.y1) {
        let py = s.ty(y);
        let _ = writeln!(svg, r##"<line x1="{l}" x2="{r}" y1="{py:.1}" y2="{py:.1}" stroke="#eee"/>"##);
        let _ = writeln!(svg, r#"<text x="{}" y="{:.1}" text-anchor="end">{y:.2}</text>"#, l - 6.0, py + 4.0);
    }
    let xticks: Vec<(f64, String)> = if s.log_x {
        let mut out = Vec::new();
        let mut e = s.x0.floor() as i32;
        while f64::from(e) <= s.x1 {
            for m in [1.0, 2.0, 5.0] {
                let v = f64::from(e) + f64::log10(m);
                if v >= s.x0 && v <= s.x1 {
                    out.push((v, format!("{m}e{e}")));
                }
            }
            e += 1;
        }
        out
    } else {
        ticks(s.x0, s.x1).into_iter().map(|v| (v, format!("{v:.2e}"))).collect()
    };
    for (v, label) in xticks {
        let px = s.tx_raw(v);
        let _ = writeln!(svg, r##"<line x1="{px:.1}" x2="{px:.1}" y1="{t}" y2="{b}" stroke="#eee"/>"##);
        let _ = writeln!(svg, r#"<text x="{px:.1}" y="{}" text-anchor="middle">{label}</text>"#, b + 16.0);
    }
    let scale_note = if s.free {
        "; the data has no prices: every cost is 0"
    } else if s.log_x {
        ", log scale"
    } else {
        ""
    };
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">mean cost per query (USD{scale_note})</text>"#,
        (l + r) / 2.0,
        H - 16.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="20" y="{}" text-anchor="middle" transform="rotate(-90 20 {})">mean score</text>"#,
        (t + b) / 2.0,
        (t + b) / 2.0
    );
}

fn legend(svg: &mut String, series: &[Series]) {
    let x = W - RIGHT + 16.0;
    let mut y = TOP + 10.0;
    for (k, s) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let _ =
            writeln!(svg, r#"<line x1="{x}" x2="{}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="3"/>"#, x + 22.0);
        let _ = writeln!(svg, r#"<text x="{}" y="{}">{}</text>"#, x + 28.0, y + 4.0, esc(&s.name));
        y += 20.0;
    }
    let _ = writeln!(svg, r##"<circle cx="{}" cy="{y}" r="4" fill="#888"/>"##, x + 11.0);
    let _ = writeln!(svg, r#"<text x="{}" y="{}">single model</text>"#, x + 28.0, y + 4.0);
    y += 20.0;
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-weight="bold">×</text><text x="{}" y="{}">random</text>"#,
        x + 6.0,
        y + 5.0,
        x + 28.0,
        y + 4.0
    );
    y += 20.0;
    let _ = writeln!(
        svg,
        r#"<path d="M{:.1} {:.1}l6 6l-6 6l-6 -6Z" fill="gold" stroke="black"/><text x="{}" y="{}">oracle</text>"#,
        x + 11.0,
        y - 6.0,
        x + 28.0,
        y + 4.0
    );
}

fn bounds(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lo.is_finite() && hi.is_finite() { (lo, hi.max(lo)) } else { (0.0, 1.0) }
}

/// About six round tick values in [lo, hi].
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-300);
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= 7.0).unwrap_or(10.0 * mag);
    let first = (lo / step - 1e-9).ceil() as i64;
    (first..).map(|k| k as f64 * step).take_while(|v| *v <= hi + step * 1e-9).collect()
}

/// The model name after any `provider/` prefix.
fn short(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).to_owned()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_places_points_inside_the_frame() {
        let series = vec![Series {
            name: "knn<router>".into(),
            points: vec![(1e-6, 0.4), (1e-5, 0.55)],
            hull: vec![(1e-6, 0.4), (1e-5, 0.55)],
        }];
        let markers = vec![
            Marker { name: "openai/gpt-4".into(), cost: 1e-4, score: 0.6, kind: Kind::Model },
            Marker { name: "random".into(), cost: 3e-5, score: 0.3, kind: Kind::Random },
            Marker { name: "oracle".into(), cost: 2e-6, score: 0.8, kind: Kind::Oracle },
        ];
        let svg = cost_quality_svg("t", &series, &markers);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("knn&lt;router&gt;") && svg.contains(">gpt-4<") && svg.contains("log scale"));
        // Every circle lies inside the plotting frame: the model's marker and the two points of
        // the series, plus the legend's marker right of the frame.
        let (mut inside, mut legend) = (0, 0);
        for part in svg.split("<circle cx=\"").skip(1) {
            let nums: Vec<f64> = part.split('"').step_by(2).take(2).map(|v| v.parse().expect("number")).collect();
            if nums[0] > W - RIGHT {
                legend += 1;
                continue;
            }
            assert!(nums[0] >= LEFT && nums[1] >= TOP && nums[1] <= H - BOTTOM, "{nums:?}");
            inside += 1;
        }
        assert_eq!((inside, legend), (3, 1), "circles inside the frame and in the legend");
    }

    #[test]
    fn ticks_are_round() {
        let t = ticks(0.3, 0.8);
        assert_eq!(t.len(), 6);
        assert!(t.iter().zip([0.3, 0.4, 0.5, 0.6, 0.7, 0.8]).all(|(a, b)| (a - b).abs() < 1e-12), "{t:?}");
        assert_eq!(ticks(0.0, 1.0).len(), 6);
    }
}
