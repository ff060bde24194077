use leptos::prelude::*;
use leptos_router::params::ParamsMap;

/// A list's filter as it stands in the address (`/jobs?env=prod&state=failed&before=120`), so
/// that every filter is a plain link: shareable, and working without JavaScript.
#[derive(Debug, Clone, PartialEq)]
pub struct ListFilter {
    path: &'static str,
    values: Vec<(&'static str, String)>,
    /// The paging cursor: only entries older than this id.
    pub before: Option<i64>,
}

impl ListFilter {
    /// The filter of the list at `path` by `keys`, read from the address's query.
    pub fn from_query(path: &'static str, keys: &[&'static str], query: &ParamsMap) -> ListFilter {
        ListFilter {
            path,
            values: keys
                .iter()
                .map(|key| (*key, query.get(key).unwrap_or_default()))
                .collect(),
            before: query.get("before").and_then(|b| b.parse().ok()),
        }
    }

    /// The value of `key` ("" when it does not filter).
    pub fn get(&self, key: &str) -> String {
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// This filter with `key` set to `value` (and paging reset), as a link.
    pub fn with(&self, key: &str, value: &str) -> String {
        let mut next = ListFilter {
            before: None,
            ..self.clone()
        };
        for (k, v) in &mut next.values {
            if *k == key {
                *v = value.to_string();
            }
        }
        next.href()
    }

    /// The next page: entries older than `before`.
    pub fn older(&self, before: i64) -> String {
        ListFilter {
            before: Some(before),
            ..self.clone()
        }
        .href()
    }

    pub fn href(&self) -> String {
        let mut query: Vec<String> = self
            .values
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if let Some(before) = self.before {
            query.push(format!("before={before}"));
        }
        if query.is_empty() {
            self.path.to_string()
        } else {
            format!("{}?{}", self.path, query.join("&"))
        }
    }

    /// The row of links of one key: "All", then each value, the current one marked.
    pub fn links(&self, label: &'static str, key: &'static str, values: Vec<String>) -> impl IntoView + use<> {
        let options = values
            .into_iter()
            .map(|value| {
                let href = self.with(key, &value);
                (value, href)
            })
            .collect();
        view! { <FilterLinks label all_href=self.with(key, "") options selected=self.get(key) /> }
    }
}

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
