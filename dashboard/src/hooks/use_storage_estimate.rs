//! Asks the browser once, on mount, how much storage this origin uses and may use, and whether
//! it is persisted.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use yew::prelude::*;

use crate::state::{Action, DashboardState};

#[hook]
pub fn use_storage_estimate(dispatcher: UseReducerDispatcher<DashboardState>) {
    use_effect_with((), move |_| {
        yew::platform::spawn_local(async move {
            let action = match estimate().await {
                Ok((usage_bytes, quota_bytes)) => Action::StorageMeasured {
                    usage_bytes,
                    quota_bytes,
                },
                Err(reason) => Action::StorageUnavailable { reason },
            };
            dispatcher.dispatch(action);
            if let Some(persisted) = persisted().await {
                dispatcher.dispatch(Action::Persisted(persisted));
            }
        });
    });
}

/// Returns `(usage_bytes, quota_bytes)`, or a sentence saying why there is no estimate.
async fn estimate() -> Result<(u64, u64), String> {
    let window = web_sys::window().ok_or("no window: the dashboard must run in a page")?;
    let promise = window
        .navigator()
        .storage()
        .estimate()
        .map_err(|error| describe(&error))?;
    let estimate: web_sys::StorageEstimate = JsFuture::from(promise)
        .await
        .map_err(|error| describe(&error))?
        .unchecked_into();
    // The browser reports whole bytes as JS numbers; anything missing counts as zero.
    let usage_bytes = estimate.get_usage().unwrap_or(0.0) as u64;
    let quota_bytes = estimate.get_quota().unwrap_or(0.0) as u64;
    Ok((usage_bytes, quota_bytes))
}

/// Whether this origin's storage is persisted (`navigator.storage.persisted()`).
async fn persisted() -> Option<bool> {
    let promise = web_sys::window()?.navigator().storage().persisted().ok()?;
    JsFuture::from(promise).await.ok()?.as_bool()
}

fn describe(error: &JsValue) -> String {
    error
        .as_string()
        .or_else(|| {
            error
                .dyn_ref::<js_sys::Error>()
                .map(|error| String::from(error.message()))
        })
        .unwrap_or_else(|| format!("{error:?}"))
}
