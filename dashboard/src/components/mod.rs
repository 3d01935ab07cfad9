//! One component per file, each with its own `XxxProps`.

pub mod block_map;
pub mod block_view;
pub mod header;
pub mod log_view;
pub mod mirror_view;
pub mod notice_bar;
pub mod policy_panel;
pub mod rule_form;
pub mod scheme_view;
pub mod storage_panel;
pub mod store_picker;
pub mod tabs;
pub mod tour;
pub mod volume_actions;
pub mod volume_tree;
pub mod write_form;
