//! The browser storage panel: how much of this origin's quota is in use.

use yew::prelude::*;

use crate::state::StorageUsage;

#[derive(Properties, PartialEq)]
pub struct StoragePanelProps {
    pub estimate: StorageUsage,
}

#[component]
pub fn StoragePanel(props: &StoragePanelProps) -> Html {
    let body = match &props.estimate {
        StorageUsage::Measuring => html! { <p>{ "Measuring…" }</p> },
        StorageUsage::Measured {
            usage_bytes,
            quota_bytes,
        } => html! {
            <p id="storage-usage">
                { format!("{} used of {}", format_bytes(*usage_bytes), format_bytes(*quota_bytes)) }
            </p>
        },
        StorageUsage::Unavailable { reason } => html! {
            <p class="unavailable">{ format!("Storage estimate unavailable: {reason}") }</p>
        },
    };
    html! {
        <section class="panel">
            <h2>{ "Browser storage" }</h2>
            { body }
        </section>
    }
}

/// Formats a byte count with binary units and one decimal, e.g. `1.5 MiB`.
fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = UNITS[0];
    for next_unit in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next_unit;
    }
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::format_bytes;

    #[test]
    fn small_counts_stay_in_bytes() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
    }

    #[test]
    fn larger_counts_use_binary_units() {
        assert_eq!(format_bytes(1024), "1.0 KiB");
        assert_eq!(format_bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(format_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
