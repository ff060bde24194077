use leptos::prelude::*;

/// One filter of a list as a row of links ("All", then each value), the current one marked:
/// works without JavaScript and needs no `<select>`. Each option is `(value, href)`.
#[component]
pub fn FilterLinks(
    label: &'static str,
    all_href: String,
    options: Vec<(String, String)>,
    selected: String,
) -> impl IntoView {
    let all_current = selected.is_empty().then_some("page");
    view! {
        <nav class="filter-row" aria-label=label>
            <span class="filter-label">{label}</span>
            <a href=all_href aria-current=all_current>"All"</a>
            {options
                .into_iter()
                .map(|(value, href)| {
                    let is_current = (value == selected).then_some("page");
                    view! { <a href=href aria-current=is_current>{value}</a> }
                })
                .collect_view()}
        </nav>
    }
}
