//! A job's DAG as a picture (`/xingqiao/get_graph`): the DOT text is built as
//! a graphviz-rust syntax tree (`dot`), then rendered (`render`) by Graphviz's
//! `dot` program, or — for SVG, when Graphviz is not installed — by layout-rs.

mod dot;
mod render;

pub use dot::{job_dot, plan_dot};
pub use render::{GraphFormat, RenderError, Renderer};
