//! The block map: every block (or, in a large volume, every region of blocks) of the shown volume
//! coloured by where its current data lives. Drawn on a canvas, so a million-block volume costs
//! at most `MAP_CELLS_MAX` cells and no DOM nodes per block. Hovering says where a cell's data
//! comes from; clicking a block opens it, clicking a region zooms into it. The form below does
//! the same from the keyboard.

use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, HtmlInputElement};
use yew::prelude::*;

use crate::client::VolumeInfo;
use crate::commands::MAP_CELLS_MAX;
use crate::format::format_time;
use crate::state::{BlockMap as MapData, Cell};

/// Cells per row of the map.
const COLUMNS: u64 = 64;
/// Side of one cell, in canvas pixels.
const CELL_PX: f64 = 12.0;

/// Colours of partitions, by volume id modulo their number; `www/style.css` has the same list as
/// the classes `.vol-0` .. `.vol-11` (styles come from the stylesheet: the CSP allows no inline
/// style attributes).
pub const PALETTE: [&str; 12] = [
    "#2f6df6", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#1098ad", "#f08c00", "#5c940d",
    "#d6336c", "#364fc7", "#0ca678", "#a61e4d",
];
pub const ZERO_COLOUR: &str = "#e4e7ec";
pub const BASELINE_COLOUR: &str = "#8a94a6";

/// The colour of a partition's volume.
pub fn volume_colour(volume: u64) -> &'static str {
    PALETTE[(volume % PALETTE.len() as u64) as usize]
}

/// The stylesheet class with that colour.
pub fn volume_class(volume: u64) -> String {
    format!("vol-{}", volume % PALETTE.len() as u64)
}

fn cell_colour(cell: &Cell) -> &'static str {
    match (cell.origin.as_str(), cell.volume) {
        ("partition", Some(volume)) => volume_colour(volume),
        ("baseline", _) => BASELINE_COLOUR,
        _ => ZERO_COLOUR,
    }
}

/// What a cell's data is, in a sentence.
pub fn describe(cell: &Cell, volumes: &[VolumeInfo]) -> String {
    let what = if cell.blocks == 1 {
        format!("Block {}", cell.first_addr)
    } else {
        format!(
            "Blocks {}–{} ({} from the log)",
            cell.first_addr,
            cell.first_addr + cell.blocks - 1,
            cell.log_blocks
        )
    };
    let from = match (cell.origin.as_str(), cell.volume) {
        ("partition", Some(volume)) => {
            let info = volumes.iter().find(|v| v.id.0 == volume);
            let label = info
                .filter(|v| !v.label.is_empty())
                .map(|v| format!(" \"{}\"", v.label))
                .unwrap_or_default();
            let deleted = if cell.deleted {
                " (deleted volume, kept for its descendants)"
            } else {
                ""
            };
            let seq = cell
                .record_seq
                .map(|s| format!(", written by sequence {s}"))
                .unwrap_or_default();
            let time = info
                .map(|v| match v.sealed_ms {
                    Some(ms) => format!(", partition sealed {}", format_time(ms)),
                    None => format!(", head partition opened {}", format_time(v.created_ms)),
                })
                .unwrap_or_default();
            format!("partition of volume {volume}{label}{deleted}{seq}{time}")
        }
        ("baseline", _) => "the baseline image".into(),
        _ => "the baseline (never written: zeros)".into(),
    };
    let mixed = if cell.origins > 1 {
        format!("; {} sources in this region", cell.origins)
    } else {
        String::new()
    };
    format!("{what}: {from}{mixed}")
}

#[derive(Properties, PartialEq)]
pub struct BlockMapProps {
    pub map: MapData,
    pub volumes: Vec<VolumeInfo>,
    pub block_count: u64,
    /// Open one block.
    pub on_open: Callback<u64>,
    /// Zoom into `(first, blocks)`, or back out with `None`.
    pub on_zoom: Callback<Option<(u64, u64)>>,
}

fn draw(canvas: &HtmlCanvasElement, cells: &[Cell]) {
    let rows = (cells.len() as u64).div_ceil(COLUMNS).max(1);
    canvas.set_width((COLUMNS as f64 * CELL_PX) as u32);
    canvas.set_height((rows as f64 * CELL_PX) as u32);
    let Some(context) = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    context.clear_rect(0.0, 0.0, canvas.width() as f64, canvas.height() as f64);
    for (i, cell) in cells.iter().enumerate() {
        let (x, y) = (
            (i as u64 % COLUMNS) as f64 * CELL_PX,
            (i as u64 / COLUMNS) as f64 * CELL_PX,
        );
        context.set_fill_style_str(cell_colour(cell));
        // A deleted volume's partition, kept for its descendants, is drawn faded.
        context.set_global_alpha(if cell.deleted { 0.45 } else { 1.0 });
        context.fill_rect(x + 1.0, y + 1.0, CELL_PX - 2.0, CELL_PX - 2.0);
        context.set_global_alpha(1.0);
        if cell.origins > 1 {
            // A white dot marks a region with several sources.
            context.set_fill_style_str("#ffffff");
            context.fill_rect(x + CELL_PX / 2.0 - 1.5, y + CELL_PX / 2.0 - 1.5, 3.0, 3.0);
        }
    }
}

#[component]
pub fn BlockMap(props: &BlockMapProps) -> Html {
    let canvas = use_node_ref();
    let hover = use_state(|| None::<usize>);
    let block_input = use_state(String::new);

    {
        let canvas = canvas.clone();
        use_effect_with(props.map.clone(), move |map| {
            if let Some(canvas) = canvas.cast::<HtmlCanvasElement>() {
                draw(&canvas, &map.cells);
            }
        });
    }

    let cell_at = {
        let canvas = canvas.clone();
        let len = props.map.cells.len();
        move |e: &MouseEvent| -> Option<usize> {
            let canvas = canvas.cast::<HtmlCanvasElement>()?;
            let rect = canvas.get_bounding_client_rect();
            if rect.width() <= 0.0 {
                return None;
            }
            // The canvas may be scaled by CSS: map client pixels to canvas pixels.
            let scale = canvas.width() as f64 / rect.width();
            let x = (e.client_x() as f64 - rect.left()) * scale;
            let y = (e.client_y() as f64 - rect.top()) * scale;
            if x < 0.0 || y < 0.0 {
                return None;
            }
            let index = (y / CELL_PX) as u64 * COLUMNS + (x / CELL_PX) as u64;
            ((x / CELL_PX) < COLUMNS as f64 && (index as usize) < len).then_some(index as usize)
        }
    };
    let on_move = {
        let (hover, cell_at) = (hover.clone(), cell_at.clone());
        Callback::from(move |e: MouseEvent| hover.set(cell_at(&e)))
    };
    let on_leave = {
        let hover = hover.clone();
        Callback::from(move |_| hover.set(None))
    };
    let on_click = {
        let (cells, on_open, on_zoom) = (
            props.map.cells.clone(),
            props.on_open.clone(),
            props.on_zoom.clone(),
        );
        Callback::from(move |e: MouseEvent| {
            if let Some(cell) = cell_at(&e).and_then(|i| cells.get(i)) {
                if cell.blocks == 1 {
                    on_open.emit(cell.first_addr);
                } else {
                    on_zoom.emit(Some((cell.first_addr, cell.blocks)));
                }
            }
        })
    };
    let on_block_input = {
        let block_input = block_input.clone();
        Callback::from(move |e: InputEvent| {
            block_input.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_open_block = {
        let (block_input, on_open, count) = (
            block_input.clone(),
            props.on_open.clone(),
            props.block_count,
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if let Ok(addr) = block_input.trim().parse::<u64>() {
                if addr < count {
                    on_open.emit(addr);
                }
            }
        })
    };

    // From the keyboard: zoom into the region (of at most `MAP_CELLS_MAX` blocks) holding a block.
    let on_zoom_to = {
        let (block_input, on_zoom, count) = (
            block_input.clone(),
            props.on_zoom.clone(),
            props.block_count,
        );
        Callback::from(move |_: MouseEvent| {
            if let Ok(addr) = block_input.trim().parse::<u64>() {
                if addr < count {
                    let first = addr - addr % MAP_CELLS_MAX;
                    on_zoom.emit(Some((first, MAP_CELLS_MAX.min(count - first))));
                }
            }
        })
    };
    let hovered = hover
        .and_then(|i| props.map.cells.get(i))
        .map(|cell| describe(cell, &props.volumes))
        .unwrap_or_else(|| {
            "Hover over a block to see where its data comes from; click to open it.".into()
        });
    let scope = match props.map.range {
        Some((first, blocks)) => format!(
            "blocks {first}–{} of {}",
            first + blocks - 1,
            props.block_count
        ),
        None => match props.map.cells.first() {
            Some(cell) if cell.blocks > 1 => format!(
                "all {} blocks, about {} per cell (click a cell to zoom in)",
                props.block_count, cell.blocks
            ),
            _ => format!("all {} blocks, one cell per block", props.block_count),
        },
    };
    let mut legend: Vec<(String, String)> = vec![
        ("zero".into(), "never written (zeros)".into()),
        ("baseline".into(), "baseline image".into()),
    ];
    let mut seen: Vec<u64> = Vec::new();
    for cell in &props.map.cells {
        if let (Some(volume), "partition") = (cell.volume, cell.origin.as_str()) {
            if !seen.contains(&volume) {
                seen.push(volume);
                legend.push((volume_class(volume), format!("partition {volume}")));
            }
        }
    }
    html! {
        <section class="panel wide" aria-labelledby="map-title">
            <h2 id="map-title">{ format!("Block map of volume {}", props.map.volume) }</h2>
            <p class="scope" id="map-scope">
                { scope }
                if props.map.range.is_some() {
                    { " " }
                    <button type="button" id="zoom-out" onclick={props.on_zoom.reform(|_| None)}>{ "Whole volume" }</button>
                }
            </p>
            <canvas ref={canvas} id="block-map" role="img"
                aria-label={format!("Block map of volume {}: {}", props.map.volume, legend.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(", "))}
                onmousemove={on_move} onmouseleave={on_leave} onclick={on_click}></canvas>
            <p class="hover" id="map-hover" aria-live="polite">{ hovered }</p>
            <ul class="legend">
                { for legend.iter().map(|(class, text)| html! {
                    <li><span class={classes!("swatch", class.clone())}></span>{ text }</li>
                }) }
            </ul>
            <form class="inline-form" onsubmit={on_open_block}>
                <label for="open-block-addr">{ "Open block" }</label>
                <input id="open-block-addr" type="number" min="0" max={(props.block_count.saturating_sub(1)).to_string()}
                    value={(*block_input).clone()} oninput={on_block_input} />
                <button type="submit" id="open-block">{ "Open" }</button>
                if props.block_count > MAP_CELLS_MAX {
                    <button type="button" id="zoom-to-block" onclick={on_zoom_to}>{ "Zoom to its region" }</button>
                }
            </form>
        </section>
    }
}
