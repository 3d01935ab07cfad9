//! Views for people rather than programs: which partition serves each block of a volume
//! (`locate`) and the volume summarised as a map of regions (`blockMap`). The dashboard draws its
//! block map from these. A child module of `api`, so that it takes its turn with the store like
//! every other method.

use js_sys::{Array, Promise};
use strata_engine::{BlockMapBucket, Origin, Provenance};
use wasm_bindgen::prelude::*;

use super::{Result, StrataStore};
use crate::convert::{self, ObjectBuilder};
use crate::promise::promise;

#[wasm_bindgen(typescript_custom_section)]
const TS_VIEW_TYPES: &str = r#"
/** Where a block's current data lives: a zero baseline, the baseline image, or a partition. */
export type OriginKind = "zero" | "baseline" | "partition";

export interface Provenance {
  addr: number;
  origin: OriginKind;
  /** The partition's volume id (`origin === "partition"`), else null. */
  volume: number | null;
  /** The partition's volume was deleted; it stays because a descendant reads this block. */
  deleted: boolean;
  /** First sequence number of the record that wrote the block, for a partition. */
  recordSeq: number | null;
  createdMs: number | null;
  sealedMs: number | null;
}

export interface BlockMapBucket {
  firstAddr: number;
  blocks: number;
  /** The origin serving most blocks of the region. */
  origin: OriginKind;
  volume: number | null;
  deleted: boolean;
  /** Blocks of the region served by a log partition. */
  logBlocks: number;
  /** Distinct origins serving the region. */
  origins: number;
}

/** One decision of a policy simulation, at its simulated time. */
export interface TimelineEntry {
  at_ms: number;
  decision: Decision;
}
"#;

fn with_origin(builder: ObjectBuilder, origin: Origin) -> ObjectBuilder {
    let (kind, volume, deleted) = match origin {
        Origin::Zero => ("zero", None, false),
        Origin::Baseline => ("baseline", None, false),
        Origin::Partition { volume, deleted } => ("partition", Some(volume.0), deleted),
    };
    builder
        .set("origin", kind)
        .set(
            "volume",
            volume.map_or(JsValue::NULL, |v| JsValue::from_f64(v as f64)),
        )
        .set("deleted", deleted)
}

fn optional(n: Option<u64>) -> JsValue {
    n.map_or(JsValue::NULL, |n| JsValue::from_f64(n as f64))
}

fn provenance(p: &Provenance) -> JsValue {
    with_origin(ObjectBuilder::new().number("addr", p.addr), p.origin)
        .set("recordSeq", optional(p.record_seq))
        .set("createdMs", optional(p.created_ms))
        .set("sealedMs", optional(p.sealed_ms))
        .build()
}

fn bucket(b: &BlockMapBucket) -> JsValue {
    with_origin(
        ObjectBuilder::new()
            .number("firstAddr", b.first_addr)
            .number("blocks", b.blocks),
        b.origin,
    )
    .number("logBlocks", b.log_blocks)
    .number("origins", u64::from(b.origins))
    .build()
}

impl StrataStore {
    /// [`Self::js_locate`] for Rust callers (the wasm-bindgen tests).
    pub async fn locate(&self, volume: f64, addr: f64, blocks: f64) -> Result<Array> {
        let volume = convert::to_volume(volume, "volume")?;
        let addr = convert::to_u64(addr, "addr")?;
        let blocks = convert::to_u64(blocks, "blocks")?;
        let session = self.0.session.lock().await;
        let located = session.store()?.locate(volume, addr, blocks)?;
        Ok(convert::array(&located, provenance))
    }

    /// [`Self::js_block_map`] for Rust callers (the wasm-bindgen tests).
    pub async fn block_map(&self, volume: f64, buckets: f64) -> Result<Array> {
        let volume = convert::to_volume(volume, "volume")?;
        let buckets = convert::to_u64(buckets, "buckets")?;
        let session = self.0.session.lock().await;
        let map = session.store()?.block_map(volume, buckets)?;
        Ok(convert::array(&map, bucket))
    }
}

#[wasm_bindgen]
impl StrataStore {
    /// Which partition serves each of `blocks` blocks from `addr` of volume `volume` (at most
    /// 65536 blocks).
    #[wasm_bindgen(js_name = locate, unchecked_return_type = "Promise<Provenance[]>")]
    pub fn js_locate(&self, volume: f64, addr: f64, blocks: f64) -> Promise {
        let this = self.clone();
        promise(async move { this.locate(volume, addr, blocks).await })
    }

    /// Volume `volume` as `buckets` regions of nearly equal size, each with the origin serving
    /// most of its blocks (one bucket per block when `buckets` >= the block count).
    #[wasm_bindgen(js_name = blockMap, unchecked_return_type = "Promise<BlockMapBucket[]>")]
    pub fn js_block_map(&self, volume: f64, buckets: f64) -> Promise {
        let this = self.clone();
        promise(async move { this.block_map(volume, buckets).await })
    }
}
