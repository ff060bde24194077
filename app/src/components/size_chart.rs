use leptos::prelude::*;

use crate::{
    format::{bytes, utc},
    types::SizePoint,
};

/// The chart's drawing area, in SVG units; CSS stretches it to the page's width.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 100.0;
/// Fewer backups than this still get bars of this slot width, right-aligned (newest right).
const MIN_SLOTS: usize = 30;

/// The size of the latest backups over time, oldest left: one bar each, drawn on the server
/// as SVG (no script, no chart library). Each bar's tooltip names the backup.
#[component]
pub fn SizeChart(points: Vec<SizePoint>) -> impl IntoView {
    let (Some(first), Some(last)) = (points.first().cloned(), points.last().cloned()) else {
        return ().into_any();
    };
    let largest = points.iter().map(|p| p.total_size).max().unwrap_or(0);
    let smallest = points.iter().map(|p| p.total_size).min().unwrap_or(0);
    let label = format!(
        "Size of the last {} backups, oldest first, from {} to {}: between {} and {}",
        points.len(),
        utc(first.created_at_ms),
        utc(last.created_at_ms),
        bytes(smallest),
        bytes(largest)
    );
    let aria_label = label.clone();
    let slot = WIDTH / points.len().max(MIN_SLOTS) as f64;
    let offset = WIDTH - slot * points.len() as f64;
    let bars = points
        .into_iter()
        .enumerate()
        .map(|(i, point)| {
            let height = if largest == 0 {
                0.0
            } else {
                // At least a sliver, so that a tiny backup still shows.
                (point.total_size as f64 / largest as f64 * HEIGHT).max(1.5)
            };
            let tip = format!(
                "{} · {} · {}",
                point.id,
                bytes(point.total_size),
                utc(point.created_at_ms)
            );
            view! {
                <rect
                    x=format!("{:.2}", offset + slot * i as f64 + slot * 0.15)
                    y=format!("{:.2}", HEIGHT - height)
                    width=format!("{:.2}", slot * 0.7)
                    height=format!("{height:.2}")
                >
                    <title>{tip}</title>
                </rect>
            }
        })
        .collect_view();
    view! {
        <figure class="size-chart" data-testid="size-chart">
            <svg
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                preserveAspectRatio="none"
                role="img"
                aria-label=aria_label
            >
                <title>{label}</title>
                {bars}
            </svg>
            <figcaption class="muted">
                <span>{utc(first.created_at_ms)}</span>
                <span>{format!("largest {}", bytes(largest))}</span>
                <span>{utc(last.created_at_ms)}</span>
            </figcaption>
        </figure>
    }
    .into_any()
}
