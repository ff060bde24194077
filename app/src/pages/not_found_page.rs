use leptos::prelude::*;
use leptos_meta::Title;

/// Any path the console does not know.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    super::set_status(404);
    view! {
        <Title text="Not found" />
        <h1>"Page not found"</h1>
        <p>"There is nothing at this address. " <a href="/environments">"Go to the environments"</a> "."</p>
    }
}
