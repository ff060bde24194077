use leptos::{html, prelude::*};

use crate::{
    format::clock,
    types::{JobLogLine, JobSummary},
};

/// Lines kept on screen; older ones are in the download.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const MAX_LINES_SHOWN: usize = 2000;

/// A job's log. Server-rendered with the lines so far (complete without JavaScript); once
/// hydrated it follows the live stream (`/api/jobs/{id}/events`), keeps the last
/// [`MAX_LINES_SHOWN`] lines, and scrolls along unless paused. `job` is updated from the stream
/// too, so the page's state, progress and buttons change as the job does.
#[component]
pub fn JobLog(job: RwSignal<JobSummary>, lines: Vec<JobLogLine>, total_lines: i64) -> impl IntoView {
    let id = job.get_untracked().id;
    let hidden_before = total_lines - i64::try_from(lines.len()).unwrap_or(0);
    let lines = RwSignal::new(lines);
    let following = RwSignal::new(true);
    let container = NodeRef::<html::Div>::new();

    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if !job.get_untracked().status.is_finished() {
            let after = lines.with_untracked(|l| l.last().map_or(0, |l| l.seq));
            live::follow(id, after, job, lines);
        }
    });
    // Keep the newest line in view while following.
    Effect::new(move |_| {
        lines.track();
        if following.get_untracked()
            && let Some(container) = container.get()
        {
            container.set_scroll_top(container.scroll_height());
        }
    });

    let live_note = move || {
        let status = job.get().status;
        if status.is_finished() {
            "Finished: this is the whole log."
        } else if following.get() {
            "Following new lines as they come."
        } else {
            "Paused: new lines are collected but the view stays put."
        }
    };
    view! {
        <section class="log-panel" aria-label="Log">
            <div class="log-toolbar">
                <h2>"Log"</h2>
                <span class="muted" data-testid="log-status">{live_note}</span>
                <button
                    type="button"
                    class="small"
                    data-testid="follow-toggle"
                    aria-pressed=move || following.get().to_string()
                    on:click=move |_| following.update(|f| *f = !*f)
                >
                    {move || if following.get() { "Pause" } else { "Follow" }}
                </button>
                <a class="button-link small" href=format!("/api/jobs/{id}/log.txt") download>
                    "Download as text"
                </a>
            </div>
            {(hidden_before > 0)
                .then(|| {
                    view! {
                        <p class="muted">
                            {format!("{hidden_before} earlier lines are in the download.")}
                        </p>
                    }
                })}
            <div class="log" node_ref=container data-testid="job-log" tabindex="0">
                <For
                    each=move || lines.get()
                    key=|line| line.seq
                    children=|line| {
                        view! {
                            <div class=format!("log-line log-{}", line.level)>
                                <span class="log-time">{clock(line.at_ms)}</span>
                                <span class="log-text">{line.line}</span>
                            </div>
                        }
                    }
                />
            </div>
        </section>
    }
}

/// The browser side of the live stream.
#[cfg(feature = "hydrate")]
mod live {
    use leptos::prelude::*;
    use send_wrapper::SendWrapper;
    use wasm_bindgen::{JsCast, closure::Closure};
    use web_sys::{EventSource, MessageEvent};

    use super::MAX_LINES_SHOWN;
    use crate::types::{JobLogLine, JobSummary};

    type Handler = Closure<dyn FnMut(MessageEvent)>;

    /// Opens the event stream and feeds `lines` and `job` until the job ends or the page goes.
    pub fn follow(id: i64, after: i64, job: RwSignal<JobSummary>, lines: RwSignal<Vec<JobLogLine>>) {
        let Ok(source) = EventSource::new(&format!("/api/jobs/{id}/events?after={after}")) else {
            return;
        };
        let on_line: Handler = Closure::new(move |event: MessageEvent| {
            let Some(line) = parse::<JobLogLine>(&event) else {
                return;
            };
            lines.update(|lines| {
                if lines.last().is_none_or(|last| last.seq < line.seq) {
                    lines.push(line);
                }
                let excess = lines.len().saturating_sub(MAX_LINES_SHOWN);
                if excess > 0 {
                    lines.drain(..excess);
                }
            });
        });
        let on_job: Handler = Closure::new(move |event: MessageEvent| {
            if let Some(summary) = parse::<JobSummary>(&event) {
                job.set(summary);
            }
        });
        let ending = source.clone();
        let on_end: Handler = Closure::new(move |_event: MessageEvent| ending.close());
        for (name, handler) in [("line", &on_line), ("job", &on_job), ("end", &on_end)] {
            let _ = source.add_event_listener_with_callback(name, handler.as_ref().unchecked_ref());
        }
        // The handlers live as long as the stream; both go when the page does.
        let keep = SendWrapper::new((source, on_line, on_job, on_end));
        on_cleanup(move || {
            let (source, ..) = &*keep;
            source.close();
        });
    }

    fn parse<T: serde::de::DeserializeOwned>(event: &MessageEvent) -> Option<T> {
        serde_json::from_str(&event.data().as_string()?).ok()
    }
}
