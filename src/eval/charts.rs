//! Small SVG charts for the evaluation report, drawn here so that the report is one offline file:
//! lines (recall by depth), grouped bars (F1 by category) and a scatter (cost against quality).

use std::fmt::Write;

const W: f64 = 560.0;
const PAD_L: f64 = 48.0;
const PAD_R: f64 = 16.0;
const PAD_T: f64 = 28.0;
const PAD_B: f64 = 40.0;
/// Colour-blind-safe (Okabe–Ito), one per pipeline.
pub const COLORS: &[&str] = &["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];

pub fn color(i: usize) -> &'static str {
    COLORS.get(i % COLORS.len()).copied().unwrap_or("#000")
}

/// Text for SVG/HTML content and attributes.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

pub struct Series {
    pub label: String,
    pub color: usize,
    pub points: Vec<(f64, f64)>,
}

fn frame(out: &mut String, h: f64, title: &str, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" aria-label="{t}"><title>{t}</title><text x="{PAD_L}" y="18" font-size="13" font-weight="bold">{t}</text><text x="{xl}" y="{yl}" font-size="11" text-anchor="middle">{x}</text><text x="12" y="{ym}" font-size="11" text-anchor="middle" transform="rotate(-90 12 {ym})">{y}</text>"##,
        t = esc(title),
        x = esc(x_label),
        y = esc(y_label),
        xl = PAD_L + (W - PAD_L - PAD_R) / 2.0,
        yl = h - 6.0,
        ym = PAD_T + (h - PAD_T - PAD_B) / 2.0,
    );
}

fn y_axis(out: &mut String, h: f64, y_max: f64, unit_fraction: bool) {
    let bottom = h - PAD_B;
    for i in 0..=4 {
        let v = y_max * i as f64 / 4.0;
        let y = bottom - (bottom - PAD_T) * i as f64 / 4.0;
        let label = if unit_fraction { format!("{v:.2}") } else { format!("{v:.0}") };
        let _ = write!(
            out,
            r##"<line x1="{PAD_L}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{lx}" y="{ty:.1}" font-size="10" text-anchor="end">{label}</text>"##,
            x2 = W - PAD_R,
            lx = PAD_L - 4.0,
            ty = y + 3.0,
        );
    }
}

fn legend(out: &mut String, series: &[(String, usize)], h: f64) {
    let mut x = PAD_L;
    for (label, c) in series {
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{y}" width="10" height="10" fill="{col}"/><text x="{tx:.1}" y="{ty}" font-size="10">{l}</text>"##,
            y = h - 26.0,
            col = color(*c),
            tx = x + 13.0,
            ty = h - 17.0,
            l = esc(label),
        );
        x += 20.0 + 6.0 * label.chars().count() as f64;
    }
}

/// Lines over x in `[0, x_max]`, y in `[0, 1]`.
pub fn lines(title: &str, x_label: &str, y_label: &str, x_max: f64, series: &[Series]) -> String {
    let h = 260.0;
    let mut out = String::new();
    frame(&mut out, h + 20.0, title, x_label, y_label);
    y_axis(&mut out, h, 1.0, true);
    let (left, right, bottom) = (PAD_L, W - PAD_R, h - PAD_B);
    let px = |x: f64| left + (right - left) * if x_max > 0.0 { x / x_max } else { 0.0 };
    let py = |y: f64| bottom - (bottom - PAD_T) * y.clamp(0.0, 1.0);
    for i in 0..=4 {
        let x = x_max * i as f64 / 4.0;
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{x:.0}</text>"##,
            px(x),
            bottom + 12.0
        );
    }
    for s in series {
        let pts: Vec<String> = s.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
        let _ = write!(
            out,
            r##"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"##,
            color(s.color),
            pts.join(" ")
        );
        for &(x, y) in &s.points {
            let _ = write!(out, r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"##, px(x), py(y), color(s.color));
        }
    }
    legend(&mut out, &series.iter().map(|s| (s.label.clone(), s.color)).collect::<Vec<_>>(), h + 20.0);
    out.push_str("</svg>");
    out
}

/// Horizontal bars: for each category a group with one bar per series, values in `[0, 1]`.
pub fn grouped_bars(
    title: &str,
    x_label: &str,
    categories: &[String],
    series: &[(String, usize, Vec<Option<f64>>)],
) -> String {
    let group = 8.0 + 12.0 * series.len() as f64;
    let label_w = 170.0;
    let h = PAD_T + group * categories.len() as f64 + PAD_B + 20.0;
    let mut out = String::new();
    frame(&mut out, h, title, x_label, "");
    let (left, right) = (label_w, W - PAD_R);
    for i in 0..=4 {
        let v = i as f64 / 4.0;
        let x = left + (right - left) * v;
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{PAD_T}" y2="{b:.1}" stroke="#ddd"/><text x="{x:.1}" y="{t:.1}" font-size="10" text-anchor="middle">{v:.2}</text>"##,
            b = h - PAD_B - 20.0,
            t = h - PAD_B - 8.0,
        );
    }
    for (ci, category) in categories.iter().enumerate() {
        let top = PAD_T + group * ci as f64;
        let _ = write!(
            out,
            r##"<text x="{lx}" y="{y:.1}" font-size="10" text-anchor="end">{c}</text>"##,
            lx = left - 4.0,
            y = top + group / 2.0 + 3.0,
            c = esc(category),
        );
        for (si, (_, c, values)) in series.iter().enumerate() {
            let y = top + 4.0 + 12.0 * si as f64;
            match values.get(ci).copied().flatten() {
                Some(v) => {
                    let _ = write!(
                        out,
                        r##"<rect x="{left}" y="{y:.1}" width="{w:.1}" height="10" fill="{col}"><title>{v:.2}</title></rect>"##,
                        w = (right - left) * v.clamp(0.0, 1.0),
                        col = color(*c),
                    );
                }
                None => {
                    let _ = write!(
                        out,
                        r##"<text x="{x}" y="{ty:.1}" font-size="9" fill="#666">no data</text>"##,
                        x = left + 2.0,
                        ty = y + 8.0
                    );
                }
            }
        }
    }
    legend(&mut out, &series.iter().map(|(l, c, _)| (l.clone(), *c)).collect::<Vec<_>>(), h);
    out.push_str("</svg>");
    out
}

/// Points (label, colour, x, y) with x from 0 to the largest x, y in `[0, 1]`.
pub fn scatter(title: &str, x_label: &str, y_label: &str, points: &[(String, usize, f64, f64)]) -> String {
    let h = 280.0;
    let mut out = String::new();
    frame(&mut out, h + 20.0, title, x_label, y_label);
    y_axis(&mut out, h, 1.0, true);
    let x_max = points.iter().map(|p| p.2).fold(0.0_f64, f64::max).max(1e-9) * 1.1;
    let (left, right, bottom) = (PAD_L, W - PAD_R, h - PAD_B);
    for i in 0..=4 {
        let x = x_max * i as f64 / 4.0;
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{x:.0}</text>"##,
            left + (right - left) * i as f64 / 4.0,
            bottom + 12.0
        );
    }
    for (label, c, x, y) in points {
        let (cx, cy) = (left + (right - left) * x / x_max, bottom - (bottom - PAD_T) * y.clamp(0.0, 1.0));
        let _ = write!(
            out,
            r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="5" fill="{col}"><title>{l}</title></circle><text x="{tx:.1}" y="{ty:.1}" font-size="9">{l}</text>"##,
            col = color(*c),
            tx = cx + 7.0,
            ty = cy + 3.0,
            l = esc(label),
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_from_the_data_are_escaped() {
        let svg =
            lines("t", "x", "y", 100.0, &[Series { label: "<script>".into(), color: 0, points: vec![(0.0, 1.0)] }]);
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"));
        let bars = grouped_bars("t", "x", &["a&b".into()], &[("s".into(), 0, vec![Some(0.5)])]);
        assert!(bars.contains("a&amp;b") && bars.ends_with("</svg>"));
    }
}
