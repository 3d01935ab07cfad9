//! The policies: the rules (raw JSON, validated by the engine), the volume assignments, what they
//! would do next (dry run), firing an event, running them, and the audit trail.

use web_sys::{HtmlInputElement, HtmlTextAreaElement};
use yew::prelude::*;

use crate::components::rule_form::{add_rule, RuleForm};
use crate::format::format_time;
use crate::state::PolicyData;

pub const EXAMPLE_POLICY: &str = r#"{
  "rules": [
    { "name": "on-deploy", "kind": "event", "event": "deploy", "action": "snapshot", "label": "deploy-{n}" },
    { "name": "keep-3", "kind": "retain", "label_prefix": "deploy-", "keep": { "last": 3 } }
  ]
}"#;

#[derive(Clone, Debug, PartialEq)]
pub enum PolicyAction {
    Load,
    SetPolicy(String),
    SetAssignments(String),
    DryRun(Option<String>),
    /// Run a simulated clock forward (nothing changes in the store).
    Simulate {
        hours: u64,
        step_minutes: u64,
    },
    Event(String),
    Run,
}

#[derive(Properties, PartialEq)]
pub struct PolicyPanelProps {
    pub data: PolicyData,
    pub busy: bool,
    pub on_action: Callback<PolicyAction>,
}

/// A decision in a sentence: its kind, what it acts on, and why (the engine's `reason.text`).
pub fn describe_decision(decision: &serde_json::Value) -> String {
    let kind = decision["decision"].as_str().unwrap_or("decision");
    let mut what = String::from(kind);
    if let Some(label) = decision["label"].as_str() {
        what.push_str(&format!(" \"{label}\""));
    }
    if let Some(volume) = decision["volume"].as_u64() {
        what.push_str(&format!(" volume {volume}"));
    }
    if let Some(target) = decision["target"].as_str() {
        what.push_str(&format!(" to {target}"));
    }
    match decision["reason"]["text"].as_str() {
        Some(why) => format!("{what}: {why}"),
        None => what,
    }
}

/// One line per entry: `[time] decision: why [→ outcome]`; entries without a time (a dry run's
/// decisions) have none.
fn lines(values: &[serde_json::Value]) -> String {
    values
        .iter()
        .map(|v| {
            let (decision, at) = if v.get("decision").is_some_and(|d| d.is_object()) {
                (&v["decision"], v["at_ms"].as_u64())
            } else {
                (v, None)
            };
            let mut line = at
                .map(|ms| format!("{}  ", format_time(ms)))
                .unwrap_or_default();
            line.push_str(&describe_decision(decision));
            if let Some(outcome) = v.get("outcome") {
                let outcome = outcome
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| serde_json::to_string(outcome).unwrap_or_default());
                line.push_str(&format!("  → {outcome}"));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[component]
pub fn PolicyPanel(props: &PolicyPanelProps) -> Html {
    let policy_text = use_state(|| None::<String>);
    let assignments_text = use_state(|| None::<String>);
    let event = use_state(|| "deploy".to_string());
    let hours = use_state(|| "24".to_string());
    let step = use_state(|| "15".to_string());

    let shown_policy = (*policy_text)
        .clone()
        .or_else(|| props.data.policy_json.clone())
        .unwrap_or_default();
    let shown_assignments = (*assignments_text).clone().unwrap_or_else(|| {
        serde_json::to_string(
            &props
                .data
                .assignments
                .iter()
                .map(|a| serde_json::json!({ "volume": a.volume, "hold": a.hold, "ttl_ms": a.ttl_ms }))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_else(|_| "[]".into())
    });
    let text_setter = |state: &UseStateHandle<Option<String>>| {
        let state = state.clone();
        Callback::from(move |e: InputEvent| {
            state.set(Some(
                e.target_unchecked_into::<HtmlTextAreaElement>().value(),
            ))
        })
    };
    let on_event_name = {
        let event = event.clone();
        Callback::from(move |e: InputEvent| {
            event.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let number_setter = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |e: InputEvent| {
            state.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let rule_error = use_state(|| None::<String>);
    let on_add_rule = {
        let (policy_text, rule_error, current) = (
            policy_text.clone(),
            rule_error.clone(),
            shown_policy.clone(),
        );
        Callback::from(move |rule| match add_rule(&current, rule) {
            Ok(text) => {
                rule_error.set(None);
                policy_text.set(Some(text));
            }
            Err(message) => rule_error.set(Some(message)),
        })
    };
    let simulate = PolicyAction::Simulate {
        hours: hours.trim().parse().unwrap_or(24),
        step_minutes: step.trim().parse().unwrap_or(15),
    };
    let act = |action: PolicyAction| props.on_action.reform(move |_: MouseEvent| action.clone());
    let example = {
        let policy_text = policy_text.clone();
        Callback::from(move |_: MouseEvent| policy_text.set(Some(EXAMPLE_POLICY.to_string())))
    };
    let busy = props.busy;
    html! {
        <section class="panel wide" aria-labelledby="policy-title">
            <h2 id="policy-title">{ "Policies" }</h2>
            <div class="buttons">
                <button type="button" id="policy-load" onclick={act(PolicyAction::Load)} disabled={busy}>{ "Reload" }</button>
                <button type="button" id="policy-example" onclick={example}>{ "Example policy" }</button>
            </div>
            <RuleForm on_add={on_add_rule} />
            if let Some(message) = &*rule_error {
                <p class="error" role="alert">{ message }</p>
            }
            <label for="policy-json">{ "Policy (JSON; empty removes it)" }</label>
            <textarea id="policy-json" rows="10" spellcheck="false" value={shown_policy.clone()} oninput={text_setter(&policy_text)} />
            <div class="buttons">
                <button type="button" id="policy-save" onclick={act(PolicyAction::SetPolicy(shown_policy))} disabled={busy}>{ "Validate and save" }</button>
            </div>
            <label for="assignments-json">{ "Assignments (JSON: [{\"volume\": 1, \"hold\": true}])" }</label>
            <textarea id="assignments-json" rows="3" spellcheck="false" value={shown_assignments.clone()} oninput={text_setter(&assignments_text)} />
            <div class="buttons">
                <button type="button" id="assignments-save" onclick={act(PolicyAction::SetAssignments(shown_assignments))} disabled={busy}>{ "Save assignments" }</button>
            </div>
            <div class="inline-form">
                <label for="event-name">{ "Event" }</label>
                <input id="event-name" value={(*event).clone()} oninput={on_event_name} />
                <button type="button" id="dry-run-event" onclick={act(PolicyAction::DryRun(Some((*event).clone())))} disabled={busy}>{ "Dry run for event" }</button>
                <button type="button" id="fire-event" onclick={act(PolicyAction::Event((*event).clone()))} disabled={busy}>{ "Fire event" }</button>
            </div>
            <div class="buttons">
                <button type="button" id="dry-run" onclick={act(PolicyAction::DryRun(None))} disabled={busy}>{ "Dry run now" }</button>
                <button type="button" id="run-policies" onclick={act(PolicyAction::Run)} disabled={busy}>{ "Run policies now" }</button>
            </div>
            <div class="inline-form">
                <label for="simulate-hours">{ "Simulate the clock for (hours)" }</label>
                <input id="simulate-hours" type="number" min="1" value={(*hours).clone()} oninput={number_setter(&hours)} />
                <label for="simulate-step">{ "every (minutes)" }</label>
                <input id="simulate-step" type="number" min="1" value={(*step).clone()} oninput={number_setter(&step)} />
                <button type="button" id="simulate" onclick={act(simulate)} disabled={busy}>{ "Simulate" }</button>
            </div>
            if !props.data.simulation.is_empty() {
                <h3>{ "Simulated decisions (the store is not changed)" }</h3>
                <pre id="simulation" class="json">{ lines(&props.data.simulation) }</pre>
            }
            <h3>{ "Next actions (dry run)" }</h3>
            <pre id="dry-run-result" class="json">{ if props.data.decisions.is_empty() { "nothing to do".to_string() } else { lines(&props.data.decisions) } }</pre>
            <h3>{ "Audit trail" }</h3>
            <pre id="audit" class="json">{ if props.data.audit.is_empty() { "no decisions carried out yet".to_string() } else { lines(&props.data.audit) } }</pre>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_read_as_sentences_with_their_reason_and_outcome() {
        let entry = serde_json::json!({
            "at_ms": 0,
            "decision": { "decision": "snapshot", "label": "deploy-3",
                          "reason": { "text": "event deploy" } },
            "outcome": "done"
        });
        assert_eq!(
            lines(&[entry]),
            "1970-01-01 00:00:00  snapshot \"deploy-3\": event deploy  → done"
        );
        let dry = serde_json::json!({ "decision": "delete", "volume": 4 });
        assert_eq!(lines(&[dry]), "delete volume 4");
    }
}
