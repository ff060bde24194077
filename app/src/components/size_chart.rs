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
/// as SVG (no script, no chart library). Each bar's tooltip names the backup. A line over the
/// bars shows what all the environment's backups took right after each one (its own scale:
/// the total kept, which retention brings down), where that was recorded.
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
    let most_kept = points.iter().filter_map(|p| p.kept_after).max().unwrap_or(0);
    let kept_line: Vec<String> = points
        .iter()
        .enumerate()
        .filter_map(|(i, point)| {
            let kept = point.kept_after.filter(|_| most_kept > 0)?;
            let x = offset + slot * i as f64 + slot * 0.5;
            let y = HEIGHT - kept as f64 / most_kept as f64 * (HEIGHT - 2.0);
            Some(format!("{x:.2},{y:.2}"))
        })
        .collect();
    let kept_caption = (most_kept > 0).then(|| format!("line: all backups kept, up to {}", bytes(most_kept)));
    let kept_line = (kept_line.len() > 1).then(|| {
        view! {
            <polyline class="kept-line" data-testid="kept-line" points=kept_line.join(" ") fill="none">
                <title>{kept_caption.clone().unwrap_or_default()}</title>
            </polyline>
        }
    });
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
                {kept_line}
            </svg>
            <figcaption class="muted">
                <span>{utc(first.created_at_ms)}</span>
                <span>{format!("largest {}", bytes(largest))}</span>
                {kept_caption.map(|caption| view! { <span>{caption}</span> })}
                <span>{utc(last.created_at_ms)}</span>
            </figcaption>
        </figure>
    }
    .into_any()
}
