//! The storage management methods of a store and a mirror (`setPolicy`, `runPolicies`,
//! `audit`, ...), written once over [`Managed`] as [`crate::volume_api`]'s are. Compiled with the
//! cargo feature `policies` only: the npm package's main module is built without it, so that pages
//! that use no policy download no policy executor, and its worker moves a store to the
//! `strata_policies` module when it has or gets a policy (wasm/js/worker.js).

use js_sys::{Array, Function};
use strata_engine::policy::{
    apply_to_model, simulate, Policy, Trigger, VolumeAssignments, SIMULATION_STEPS_MAX,
};
use wasm_bindgen::prelude::*;

use crate::convert;
use crate::error::StrataError;
use crate::volume_api::Binding;

type Result<T, E = StrataError> = std::result::Result<T, E>;

pub(crate) async fn set_policy<B: Binding>(b: &B, policy: JsValue) -> Result<()> {
    b.check_writable()?;
    let policy = if policy.is_null() || policy.is_undefined() {
        None
    } else {
        let json = convert::json_text(&policy, "policy")?;
        Some(
            Policy::from_json(&json)
                .map_err(|e| StrataError::invalid_argument(format!("policy: {e}")))?,
        )
    };
    let mut session = b.session().lock().await;
    let outcome = B::volume(&mut session)?.set_policy(policy).await;
    b.settle(&mut session, outcome).await
}

pub(crate) async fn policy<B: Binding>(b: &B) -> Result<JsValue> {
    let mut session = b.session().lock().await;
    match B::volume(&mut session)?.policy() {
        Some(policy) => convert::via_json(policy),
        None => Ok(JsValue::NULL),
    }
}

pub(crate) async fn set_assignments<B: Binding>(b: &B, assignments: JsValue) -> Result<()> {
    b.check_writable()?;
    let json = convert::json_text(&assignments, "assignments")?;
    let assignments: VolumeAssignments = serde_json::from_str(&json)
        .map_err(|e| StrataError::invalid_argument(format!("assignments: {e}")))?;
    let mut session = b.session().lock().await;
    let outcome = B::volume(&mut session)?.set_assignments(assignments).await;
    b.settle(&mut session, outcome).await
}

pub(crate) async fn assignments<B: Binding>(b: &B) -> Result<JsValue> {
    let mut session = b.session().lock().await;
    convert::via_json(B::volume(&mut session)?.assignments())
}

pub(crate) async fn event<B: Binding>(
    b: &B,
    name: String,
    on_copy: Option<Function>,
) -> Result<Array> {
    b.check_writable()?;
    let mut session = b.session().lock().await;
    let mut copy = convert::copy_sink(&on_copy);
    let outcome = B::volume(&mut session)?.event(&name, &mut copy).await;
    let entries = b.settle(&mut session, outcome).await?;
    convert::audit_entries(&entries)
}

pub(crate) async fn run_policies<B: Binding>(b: &B, on_copy: Option<Function>) -> Result<Array> {
    b.check_writable()?;
    let quota = b.quota_free_bytes().await;
    let mut session = b.session().lock().await;
    let mut copy = convert::copy_sink(&on_copy);
    let outcome = B::volume(&mut session)?
        .run_policies(Trigger::Tick, quota, &mut copy)
        .await;
    let entries = b.settle(&mut session, outcome).await?;
    convert::audit_entries(&entries)
}

pub(crate) async fn dry_run<B: Binding>(b: &B, event: Option<String>) -> Result<Array> {
    let trigger = match event {
        Some(name) => Trigger::Event(name),
        None => Trigger::Tick,
    };
    let quota = b.quota_free_bytes().await;
    let mut session = b.session().lock().await;
    convert::decisions(&B::volume(&mut session)?.policy_dry_run(trigger, quota))
}

pub(crate) async fn audit<B: Binding>(b: &B) -> Result<Array> {
    let mut session = b.session().lock().await;
    convert::audit_entries(B::volume(&mut session)?.audit())
}

pub(crate) async fn simulate_policies<B: Binding>(
    b: &B,
    duration_ms: f64,
    step_ms: f64,
) -> Result<Array> {
    let duration_ms = convert::to_u64(duration_ms, "durationMs")?;
    let step_ms = convert::to_u64(step_ms, "stepMs")?;
    if step_ms == 0 || duration_ms / step_ms > SIMULATION_STEPS_MAX {
        return Err(StrataError::invalid_argument(format!(
            "stepMs must be positive and durationMs / stepMs at most {SIMULATION_STEPS_MAX}"
        )));
    }
    let quota = b.quota_free_bytes().await;
    let mut session = b.session().lock().await;
    let managed = B::volume(&mut session)?;
    let Some(policy) = managed.policy() else {
        return Ok(Array::new());
    };
    let now_ms = crate::place::clock().now_ms();
    let simulation = simulate(
        policy,
        managed.assignments(),
        managed.policy_view(quota),
        now_ms,
        now_ms.saturating_add(duration_ms),
        step_ms,
        apply_to_model,
    )
    .map_err(|e| StrataError::invalid_argument(format!("policy: {e}")))?;
    let out = Array::new();
    for entry in &simulation.timeline {
        out.push(&convert::via_json(entry)?);
    }
    Ok(out)
}

/// The exported policy methods of a class that implements [`Binding`], each the function of the
/// same name above (see [`crate::volume_api::shared_methods`]).
macro_rules! policy_methods {
    ($class:ident) => {
        impl $class {
            /// [`Self::js_set_policy`] for Rust callers (the wasm-bindgen tests).
            pub async fn set_policy(&self, policy: JsValue) -> Result<()> {
                $crate::policy_api::set_policy(self, policy).await
            }

            /// [`Self::js_policy`] for Rust callers (the wasm-bindgen tests).
            pub async fn policy(&self) -> Result<JsValue> {
                $crate::policy_api::policy(self).await
            }

            /// [`Self::js_set_assignments`] for Rust callers (the wasm-bindgen tests).
            pub async fn set_assignments(&self, assignments: JsValue) -> Result<()> {
                $crate::policy_api::set_assignments(self, assignments).await
            }

            /// [`Self::js_assignments`] for Rust callers (the wasm-bindgen tests).
            pub async fn assignments(&self) -> Result<JsValue> {
                $crate::policy_api::assignments(self).await
            }

            /// [`Self::js_event`] for Rust callers (the wasm-bindgen tests).
            pub async fn event(&self, name: String, on_copy: Option< Function, >) -> Result<Array> {
                $crate::policy_api::event(self, name, on_copy).await
            }

            /// [`Self::js_run_policies`] for Rust callers (the wasm-bindgen tests).
            pub async fn run_policies(&self, on_copy: Option< Function, >) -> Result<Array> {
                $crate::policy_api::run_policies(self, on_copy).await
            }

            /// [`Self::js_dry_run`] for Rust callers (the wasm-bindgen tests).
            pub async fn dry_run(&self, event: Option<String>) -> Result<Array> {
                $crate::policy_api::dry_run(self, event).await
            }

            /// [`Self::js_audit`] for Rust callers (the wasm-bindgen tests).
            pub async fn audit(&self) -> Result<Array> {
                $crate::policy_api::audit(self).await
            }

            /// [`Self::js_simulate_policies`] for Rust callers (the wasm-bindgen tests).
            pub async fn simulate_policies(&self, duration_ms: f64, step_ms: f64) -> Result<Array> {
                $crate::policy_api::simulate_policies(self, duration_ms, step_ms).await
            }
        }

        #[wasm_bindgen]
        impl $class {
            /// Assigns a storage-management policy (a JSON string or a plain object; `null` removes
            /// it). Validated first: a bad field fails with code `INVALID_ARGUMENT` naming it.
            #[wasm_bindgen(js_name = setPolicy, unchecked_return_type = "Promise<void>")]
            pub fn js_set_policy(&self, #[wasm_bindgen(unchecked_param_type = "string | object | null")] policy: JsValue) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.set_policy(policy).await })
            }

            /// The policy assigned to the volume, as a plain object, or `null`.
            #[wasm_bindgen(js_name = policy, unchecked_return_type = "Promise<object | null>")]
            pub fn js_policy(&self) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.policy().await })
            }

            /// Replaces the per-volume holds and times to live:
            /// `[{ volume, hold?: boolean, ttl_ms?: number }, ...]` (JSON string or array).
            #[wasm_bindgen(js_name = setAssignments, unchecked_return_type = "Promise<void>")]
            pub fn js_set_assignments(&self, #[wasm_bindgen(unchecked_param_type = "string | object[]")] assignments: JsValue) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.set_assignments(assignments).await })
            }

            /// The per-volume holds and times to live.
            #[wasm_bindgen(js_name = assignments, unchecked_return_type = "Promise<object[]>")]
            pub fn js_assignments(&self) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.assignments().await })
            }

            /// Signals the application event `name` (e.g. `"deploy"`, `"upgrade:pre"`) to the policies
            /// and carries out what they decide. Returns the new audit entries.
            #[wasm_bindgen(js_name = event, unchecked_return_type = "Promise<AuditEntry[]>")]
            pub fn js_event(&self, name: String, #[wasm_bindgen(unchecked_optional_param_type = "CopyCallback")] on_copy: Option<
                    Function,
                >) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.event(name, on_copy).await })
            }

            /// Evaluates the policies now (a clock tick) and carries out their decisions. The origin's
            /// free quota (`navigator.storage.estimate()`) feeds `quota_free_bytes` thresholds.
            #[wasm_bindgen(js_name = runPolicies, unchecked_return_type = "Promise<AuditEntry[]>")]
            pub fn js_run_policies(&self, #[wasm_bindgen(unchecked_optional_param_type = "CopyCallback")] on_copy: Option<
                    Function,
                >) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.run_policies(on_copy).await })
            }

            /// What the policies would decide now (for a clock tick, or for `event` if given), without
            /// doing it.
            #[wasm_bindgen(js_name = dryRun, unchecked_return_type = "Promise<Decision[]>")]
            pub fn js_dry_run(&self, event: Option<String>) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.dry_run(event).await })
            }

            /// The audit trail: every decision the executor carried out (or tried to), oldest first.
            #[wasm_bindgen(js_name = audit, unchecked_return_type = "Promise<AuditEntry[]>")]
            pub fn js_audit(&self) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.audit().await })
            }

            /// What the policies would do if the clock ran from now for `durationMs`, evaluated every
            /// `stepMs`, on a model of the volume (nothing is changed): the decisions with their
            /// simulated times. Shows temporal policies acting without waiting for them.
            #[wasm_bindgen(js_name = simulatePolicies, unchecked_return_type = "Promise<TimelineEntry[]>")]
            pub fn js_simulate_policies(&self, duration_ms: f64, step_ms: f64) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.simulate_policies(duration_ms, step_ms).await })
            }
        }
    };
}
pub(crate) use policy_methods;
