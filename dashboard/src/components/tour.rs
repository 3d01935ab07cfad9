//! The guided tour: a seeded demo workload, one operation per step, each explaining what it
//! appended, sealed, merged or reclaimed. The other views follow along (switch tabs at any time).

use yew::prelude::*;

/// One step: a title, what the button does, and what it teaches.
pub struct Step {
    pub title: &'static str,
    pub button: &'static str,
    pub explanation: &'static str,
}

pub const STEPS: [Step; 7] = [
    Step {
        title: "A new store",
        button: "Create the demo store",
        explanation: "Creates an in-memory store \"tour\" of 256 blocks of 4 KiB. It has a baseline \
            (volume 0: all zeros, nothing stored) and an empty, writable head partition (volume 1).",
    },
    Step {
        title: "Writes append to the head",
        button: "Write blocks 0–7, then rewrite 0–3",
        explanation: "Each write appended an entry to the head partition's log: 8 entries, then 4 \
            more for blocks 0–3. The block map colours blocks 0–7 as volume 1. The first versions of \
            blocks 0–3 are now dead weight in the partition: see its reclaimable bytes in the table.",
    },
    Step {
        title: "A snapshot seals the partition",
        button: "Snapshot \"v1\"",
        explanation: "Sealing made volume 1 a read-only snapshot labelled v1, and opened a new empty \
            head (volume 2) whose parent is v1. Nothing was copied: v1 is read in place.",
    },
    Step {
        title: "Newer writes shadow older ones",
        button: "Overwrite blocks 4–5",
        explanation: "Two entries appended to volume 2. Reading the head now takes blocks 4–5 from \
            volume 2 and the rest from v1. Choose \"Show\" on volume 1 in the table to time-travel: \
            the map shows the blocks as v1 holds them.",
    },
    Step {
        title: "Compaction reclaims in place",
        button: "Compact v1",
        explanation: "Compaction rewrote v1's partition keeping only the last version of each block: \
            the 4 overwritten blocks were dropped and its reclaimable bytes went to zero. v1 keeps its \
            identifier and still reads exactly as before.",
    },
    Step {
        title: "Merging folds into the baseline",
        button: "Merge v1 into the baseline",
        explanation: "v1's blocks were written into the baseline image and its partition removed. \
            Blocks 0–3 and 6–7 now come from the baseline (grey), blocks 4–5 still from volume 2.",
    },
    Step {
        title: "The log remembers the order",
        button: "Open the log",
        explanation: "The log view walks every remaining entry in sequence order, with its volume, \
            blocks and time; filter by volume or block. The tour is over: try the other actions.",
    },
];

#[derive(Properties, PartialEq)]
pub struct TourProps {
    /// The next step to run.
    pub step: usize,
    pub busy: bool,
    pub on_step: Callback<usize>,
}

#[component]
pub fn Tour(props: &TourProps) -> Html {
    let done = props.step.min(STEPS.len());
    let items = STEPS.iter().enumerate().map(|(i, step)| {
        let state = if i < done { "done" } else if i == done { "next" } else { "later" };
        let run = props.on_step.reform(move |_| i);
        html! {
            <li class={classes!("tour-step", state)} data-step={i.to_string()}>
                <h3>{ step.title }</h3>
                if i < done {
                    <p class="explanation">{ step.explanation }</p>
                }
                if i == done {
                    <button type="button" class="primary" id="tour-next" onclick={run} disabled={props.busy}>{ step.button }</button>
                }
            </li>
        }
    });
    html! {
        <section class="panel wide" aria-labelledby="tour-title">
            <h2 id="tour-title">{ "Guided tour" }</h2>
            <p>{ "Seven steps through the scheme: a baseline, a log split into snapshot partitions, \
                  compaction and merging. Each step runs one operation on a demo store." }</p>
            <ol class="tour">{ for items }</ol>
            if done > 0 {
                <button type="button" id="tour-restart" onclick={props.on_step.reform(|_| 0)} disabled={props.busy}>{ "Start again" }</button>
            }
        </section>
    }
}
