//! The browser entry point: wasm-bindgen calls `hydrate()` once the server-rendered page has
//! loaded, and Leptos takes over the DOM the server sent. Nothing else belongs here: the UI
//! lives in `app`, compiled with its `hydrate` feature (no engine, no database code).

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // Marks the page as live: the browser tests wait for it instead of guessing.
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "");
    }
}
