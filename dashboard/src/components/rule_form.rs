//! A form for one policy rule, for people who would rather not write JSON: pick a kind, fill in
//! its one or two fields, and the rule is added to the policy text (which the engine validates
//! when it is saved).

use serde_json::{json, Value};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

/// The kinds the form offers, with the label of their number field and of their text field.
const KINDS: [(&str, &str, &str, &str); 5] = [
    (
        "snapshot_every",
        "Snapshot every N minutes",
        "Minutes",
        "Label template",
    ),
    (
        "retain",
        "Keep the last N snapshots",
        "N",
        "Label prefix (empty: all)",
    ),
    (
        "merge_older_than",
        "Merge partitions older than N hours",
        "Hours",
        "",
    ),
    ("event", "Snapshot on an event", "", "Event name"),
    ("threshold", "Snapshot after N writes", "Writes", ""),
];

/// The rule a filled-in form stands for.
pub fn rule(kind: &str, number: u64, text: &str) -> Option<Value> {
    Some(match kind {
        "snapshot_every" => json!({
            "kind": "snapshot_every",
            "snapshot_every_ms": number.max(1) * 60_000,
            "label": if text.is_empty() { "every-{n}" } else { text },
        }),
        "retain" if text.is_empty() => json!({ "kind": "retain", "keep": { "last": number } }),
        "retain" => json!({ "kind": "retain", "label_prefix": text, "keep": { "last": number } }),
        "merge_older_than" => {
            json!({ "kind": "merge_older_than", "older_than_ms": number * 3_600_000 })
        }
        "event" => json!({
            "kind": "event",
            "event": if text.is_empty() { "deploy" } else { text },
            "action": "snapshot",
            "label": "{event}-{n}",
        }),
        "threshold" => json!({
            "kind": "threshold",
            "status": "writes_since_snapshot",
            "above": number,
            "action": "snapshot",
        }),
        _ => return None,
    })
}

/// `policy_json` with `rule` appended to its rules (an empty text starts a new policy).
pub fn add_rule(policy_json: &str, rule: Value) -> Result<String, String> {
    let mut policy: Value = if policy_json.trim().is_empty() {
        json!({ "rules": [] })
    } else {
        serde_json::from_str(policy_json)
            .map_err(|e| format!("the policy text is not JSON: {e}"))?
    };
    let rules = policy
        .as_object_mut()
        .ok_or("the policy is not a JSON object")?
        .entry("rules")
        .or_insert_with(|| json!([]));
    rules
        .as_array_mut()
        .ok_or("\"rules\" is not a list")?
        .push(rule);
    serde_json::to_string_pretty(&policy).map_err(|e| e.to_string())
}

#[derive(Properties, PartialEq)]
pub struct RuleFormProps {
    pub on_add: Callback<Value>,
}

#[component]
pub fn RuleForm(props: &RuleFormProps) -> Html {
    let kind = use_state(|| KINDS[0].0.to_string());
    let number = use_state(|| "60".to_string());
    let text = use_state(String::new);
    let (_, _, number_label, text_label) = KINDS
        .iter()
        .find(|k| k.0 == kind.as_str())
        .copied()
        .unwrap_or(KINDS[0]);
    let on_kind = {
        let kind = kind.clone();
        Callback::from(move |e: Event| {
            kind.set(e.target_unchecked_into::<HtmlSelectElement>().value())
        })
    };
    let setter = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |e: InputEvent| {
            state.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_submit = {
        let (kind, number, text, on_add) = (
            kind.clone(),
            number.clone(),
            text.clone(),
            props.on_add.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if let Some(rule) = rule(&kind, number.trim().parse().unwrap_or(0), text.trim()) {
                on_add.emit(rule);
            }
        })
    };
    html! {
        <form class="inline-form" id="rule-form" onsubmit={on_submit}>
            <label for="rule-kind">{ "Add a rule" }</label>
            <select id="rule-kind" onchange={on_kind}>
                { for KINDS.iter().map(|(id, title, _, _)| html! {
                    <option value={*id} selected={kind.as_str() == *id}>{ *title }</option>
                }) }
            </select>
            if !number_label.is_empty() {
                <label for="rule-number">{ number_label }</label>
                <input id="rule-number" type="number" min="0" value={(*number).clone()} oninput={setter(&number)} />
            }
            if !text_label.is_empty() {
                <label for="rule-text">{ text_label }</label>
                <input id="rule-text" value={(*text).clone()} oninput={setter(&text)} />
            }
            <button type="submit" id="rule-add">{ "Add to the policy text" }</button>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_is_appended_to_the_policy_text() {
        let first = add_rule("", rule("snapshot_every", 60, "").unwrap()).unwrap();
        let both = add_rule(&first, rule("retain", 3, "every-").unwrap()).unwrap();
        let policy: Value = serde_json::from_str(&both).unwrap();
        assert_eq!(policy["rules"][0]["snapshot_every_ms"], 3_600_000);
        assert_eq!(policy["rules"][1]["keep"]["last"], 3);
        assert_eq!(policy["rules"][1]["label_prefix"], "every-");
    }

    #[test]
    fn text_that_is_not_a_policy_object_is_refused() {
        assert!(add_rule("{", rule("event", 0, "").unwrap()).is_err());
        assert!(add_rule("[1]", rule("event", 0, "").unwrap()).is_err());
        assert!(rule("no_such_kind", 1, "").is_none());
    }
}
