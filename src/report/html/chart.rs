//! Inline SVG charts for `report.html`: drawn on the server, no script, so they work from a
//! file:// URL and in an e-mail attachment. Every bar is an element of class `bar` inside an
//! element carrying `data-chart` (the browser test counts them). Geometry is in floats (pixels);
//! every amount shown as text (tooltips, tables) is the exact decimal the caller passes.

use maud::{html, Markup};

/// Drawing area of the vertical charts; the SVG scales to the page width (viewBox).
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 250.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 40.0;

/// One series of a stacked chart: its legend name and its style class (`s0`..`s7`, `hatch`).
pub struct Series {
    pub name: String,
    pub class: &'static str,
}

/// One stacked bar: its axis label, its segments (one per series, in series order: value for
/// the geometry, exact text for the tooltip), an optional marker line, and whether the period
/// it stands for is only partly covered.
pub struct Bar {
    pub label: String,
    pub segments: Vec<(f64, String)>,
    pub marker: Option<(f64, String)>,
    pub partial: bool,
}

pub struct StackedBars<'a> {
    /// The `data-chart` name.
    pub id: &'a str,
    /// Accessible title of the chart.
    pub title: &'a str,
    pub series: &'a [Series],
    pub bars: &'a [Bar],
    /// Unit shown on the axis (e.g. `USD`); empty for counts.
    pub unit: &'a str,
    /// Legend name of the marker line, when the bars carry one.
    pub marker_name: Option<&'a str>,
}

/// A round number at or above `max` for the axis, and its step for four grid lines.
fn axis_top(max: f64) -> (f64, f64) {
    if max <= 0.0 {
        return (1.0, 0.25);
    }
    let raw = max / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| s * 4.0 >= max)
        .unwrap_or(10.0 * magnitude);
    (step * 4.0, step)
}

fn axis_label(value: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{value:.0}")
    } else {
        let decimals = (-step.log10().floor()) as usize + 1;
        format!("{value:.decimals$}")
    }
}

/// A vertical stacked bar chart with a legend below it.
pub fn stacked_bars(chart: &StackedBars<'_>) -> Markup {
    let max = chart
        .bars
        .iter()
        .map(|b| {
            let stack: f64 = b.segments.iter().map(|s| s.0.max(0.0)).sum();
            stack.max(b.marker.as_ref().map_or(0.0, |m| m.0))
        })
        .fold(0.0, f64::max);
    let (top, step) = axis_top(max);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let plot_w = WIDTH - LEFT - RIGHT;
    let slot = plot_w / chart.bars.len().max(1) as f64;
    let bar_w = (slot * 0.7).min(48.0);
    let y = |v: f64| TOP + plot_h - v / top * plot_h;
    let any_partial = chart.bars.iter().any(|b| b.partial);
    html! {
        figure.chart {
            svg data-chart=(chart.id) data-bars=(chart.bars.len()) viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
                role="img" aria-label=(chart.title) {
                defs {
                    pattern id=(format!("{}-hatch", chart.id)) width="6" height="6"
                        patternUnits="userSpaceOnUse" patternTransform="rotate(45)" {
                        rect.hatch-bg width="6" height="6" {}
                        line x1="0" y1="0" x2="0" y2="6" stroke-width="3" class="hatch-line" {}
                    }
                }
                @for i in 0..=4 {
                    @let v = step * i as f64;
                    line.grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y(v)) y2=(y(v)) {}
                    text.axis x=(LEFT - 6.0) y=(y(v) + 4.0) text-anchor="end" { (axis_label(v, step)) }
                }
                @if !chart.unit.is_empty() {
                    text.axis x="4" y=(TOP + 4.0) { (chart.unit) }
                }
                @for (i, bar) in chart.bars.iter().enumerate() {
                    @let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
                    g.bar.partial[bar.partial] data-label=(bar.label) {
                        title { (tooltip(chart, bar)) }
                        @for (s, base, value) in stacked(bar.segments.iter().map(|s| s.0)) {
                            @let class = chart.series.get(s).map_or("s0", |s| s.class);
                            @let fill = if class == "hatch" { format!("url(#{}-hatch)", chart.id) } else { String::new() };
                            rect class=(class) x=(x) y=(y(base + value)) width=(bar_w)
                                height=((value / top * plot_h).max(0.5)) fill=[(!fill.is_empty()).then_some(fill)] {}
                        }
                        @if let Some((m, _)) = &bar.marker {
                            line.marker x1=(x - 3.0) x2=(x + bar_w + 3.0) y1=(y(*m)) y2=(y(*m)) {}
                        }
                    }
                    @if label_shown(i, chart.bars.len()) {
                        text.axis x=(x + bar_w / 2.0) y=(HEIGHT - BOTTOM + 15.0) text-anchor="middle" {
                            (short_label(&bar.label)) @if bar.partial { "*" }
                        }
                        @if let Some(year) = year_label(i, chart.bars) {
                            text.axis x=(x + bar_w / 2.0) y=(HEIGHT - BOTTOM + 30.0) text-anchor="middle" { (year) }
                        }
                    }
                }
            }
            figcaption {
                ul.legend {
                    @for s in chart.series {
                        li { span class=(format!("sw {}", s.class)) {} (s.name) }
                    }
                    @if let Some(name) = chart.marker_name {
                        li { span.sw.marker-sw {} (name) }
                    }
                    @if any_partial {
                        li { "* partial month: the window covers only part of it" }
                    }
                }
            }
        }
    }
}

/// The positive segments of a stack: (series index, where it starts, its value).
fn stacked(values: impl Iterator<Item = f64>) -> Vec<(usize, f64, f64)> {
    let mut base = 0.0;
    let mut out = Vec::new();
    for (s, v) in values.enumerate() {
        if v > 0.0 {
            out.push((s, base, v));
            base += v;
        }
    }
    out
}

fn tooltip(chart: &StackedBars<'_>, bar: &Bar) -> String {
    let mut text = bar.label.clone();
    if bar.partial {
        text.push_str(" (partial month)");
    }
    for (s, (_, exact)) in bar.segments.iter().enumerate() {
        if let Some(series) = chart.series.get(s) {
            text.push_str(&format!("\n{}: {exact}", series.name));
        }
    }
    if let (Some(name), Some((_, exact))) = (chart.marker_name, &bar.marker) {
        text.push_str(&format!("\n{name}: {exact}"));
    }
    text
}

/// With many bars every other label is drawn, so that they never overlap.
fn label_shown(i: usize, n: usize) -> bool {
    n <= 14 || i.is_multiple_of(2)
}

/// `2026-03` -> `Mar`; other labels as they are.
fn short_label(label: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    match label.split_once('-') {
        Some((_, m)) if label.len() == 7 => m
            .parse::<usize>()
            .ok()
            .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
            .map_or_else(|| label.to_string(), |m| m.to_string()),
        _ => label.to_string(),
    }
}

/// The year under the first month and under every January.
fn year_label(i: usize, bars: &[Bar]) -> Option<&str> {
    let label = &bars[i].label;
    if label.len() != 7 {
        return None;
    }
    (i == 0 || label.ends_with("-01")).then(|| &label[..4])
}

/// One row of a horizontal bar list: a name (already marked up, e.g. a link), a value for
/// the geometry, and the exact text shown.
pub struct Row {
    pub name: Markup,
    pub segments: Vec<f64>,
    pub text: String,
}

/// Horizontal bars as a list: the names stay HTML text (readable and wrapping on a phone),
/// each bar is a small SVG scaled to the row.
pub fn bar_list(id: &str, title: &str, series: &[Series], rows: &[Row]) -> Markup {
    let max = rows
        .iter()
        .map(|r| r.segments.iter().sum::<f64>())
        .fold(0.0, f64::max)
        .max(1.0);
    html! {
        figure.chart {
            div.barlist data-chart=(id) data-bars=(rows.len()) role="img" aria-label=(title) {
                @for row in rows {
                    div.barrow {
                        span.name { (row.name) }
                        svg.hbar viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" {
                            g.bar {
                                @for (s, start, v) in stacked(row.segments.iter().copied()) {
                                    rect class=(series.get(s).map_or("s0", |s| s.class))
                                        x=(start / max * 100.0) y="0" width=(v / max * 100.0) height="10" {}
                                }
                            }
                        }
                        span.value { (row.text) }
                    }
                }
            }
            @if series.len() > 1 {
                figcaption {
                    ul.legend {
                        @for s in series {
                            li { span class=(format!("sw {}", s.class)) {} (s.name) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_ends_on_a_round_number_above_the_largest_bar() {
        assert_eq!(axis_top(87.6), (100.0, 25.0));
        assert_eq!(axis_top(9.0), (10.0, 2.5));
        assert_eq!(axis_top(0.3), (0.4, 0.1));
        assert_eq!(axis_top(0.0), (1.0, 0.25));
    }

    #[test]
    fn one_bar_element_per_bar_and_months_labelled_short() {
        let series = [Series {
            name: "a".into(),
            class: "s0",
        }];
        let bars: Vec<Bar> = ["2025-12", "2026-01"]
            .iter()
            .map(|m| Bar {
                label: m.to_string(),
                segments: vec![(1.5, "1.50".into())],
                marker: None,
                partial: *m == "2026-01",
            })
            .collect();
        let svg = stacked_bars(&StackedBars {
            id: "t",
            title: "t",
            series: &series,
            bars: &bars,
            unit: "USD",
            marker_name: None,
        })
        .into_string();
        assert_eq!(svg.matches("<g class=\"bar").count(), 2, "{svg}");
        assert!(svg.contains("data-bars=\"2\""));
        assert!(svg.contains(">Dec<") && svg.contains(">Jan*<"), "{svg}");
        assert!(svg.contains("2026-01 (partial month)\na: 1.50"), "{svg}");
    }
}
