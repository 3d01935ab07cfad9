//! The dashboard's state: one reducer, changed only through [`Action`]s.

use std::rc::Rc;

use yew::Reducible;

/// What the browser reports about this origin's storage (`navigator.storage.estimate()`).
#[derive(Clone, Debug, PartialEq)]
pub enum StorageUsage {
    /// The estimate has been asked for and has not arrived yet.
    Measuring,
    Measured {
        usage_bytes: u64,
        quota_bytes: u64,
    },
    /// The browser refused or lacks the API; `reason` is shown to the user as is.
    Unavailable {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct DashboardState {
    /// The version of the engine compiled into this dashboard.
    pub engine_version: &'static str,
    pub storage: StorageUsage,
}

impl Default for DashboardState {
    fn default() -> Self {
        Self {
            engine_version: strata_engine::VERSION,
            storage: StorageUsage::Measuring,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    StorageMeasured { usage_bytes: u64, quota_bytes: u64 },
    StorageUnavailable { reason: String },
}

impl Reducible for DashboardState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let storage = match action {
            Action::StorageMeasured {
                usage_bytes,
                quota_bytes,
            } => StorageUsage::Measured {
                usage_bytes,
                quota_bytes,
            },
            Action::StorageUnavailable { reason } => StorageUsage::Unavailable { reason },
        };
        Rc::new(Self {
            storage,
            ..(*self).clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_measuring_with_the_compiled_engine_version() {
        let state = DashboardState::default();
        assert_eq!(state.engine_version, strata_engine::VERSION);
        assert_eq!(state.storage, StorageUsage::Measuring);
    }

    #[test]
    fn a_measurement_replaces_only_the_storage_usage() {
        let before = Rc::new(DashboardState::default());
        let after = before.clone().reduce(Action::StorageMeasured {
            usage_bytes: 10,
            quota_bytes: 100,
        });
        assert_eq!(
            after.storage,
            StorageUsage::Measured {
                usage_bytes: 10,
                quota_bytes: 100
            }
        );
        assert_eq!(after.engine_version, before.engine_version);
    }

    #[test]
    fn an_unavailable_estimate_keeps_its_reason() {
        let state = Rc::new(DashboardState::default()).reduce(Action::StorageUnavailable {
            reason: "no StorageManager".to_string(),
        });
        assert!(matches!(
            &state.storage,
            StorageUsage::Unavailable { reason } if reason == "no StorageManager"
        ));
    }
}
