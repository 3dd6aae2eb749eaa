//! Rendering DOT: Graphviz's `dot` program when it is installed (SVG, PNG);
//! without it SVG falls back to layout-rs (pure Rust) and PNG is refused with
//! how to install Graphviz. Rendering never runs on the request threads and
//! has a time bound that includes the wait for a free render slot: a `dot`
//! past it is killed. layout-rs cannot be stopped once started, so it only
//! takes graphs small enough to finish quickly ([`MAX_FALLBACK_NODES`]).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

/// What get_graph can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Svg,
    Png,
    Dot,
}

impl GraphFormat {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "svg" => Some(Self::Svg),
            "png" => Some(Self::Png),
            "dot" | "gv" => Some(Self::Dot),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Svg => "image/svg+xml",
            Self::Png => "image/png",
            Self::Dot => "text/vnd.graphviz; charset=utf-8",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(
        "PNG needs Graphviz's `dot` program, which is not installed here: install the Debian package \
         `graphviz` (apt-get install graphviz), or ask for format=svg or format=dot"
    )]
    NoGraphviz,
    #[error("rendering took longer than {0:?}; ask for format=dot and render it yourself")]
    TimedOut(Duration),
    #[error(
        "this graph has {0} tasks; without Graphviz the server draws at most {MAX_FALLBACK_NODES}: install the \
         Debian package `graphviz`, or ask for format=dot and render it yourself"
    )]
    TooLarge(usize),
    #[error("rendering failed: {0}")]
    Failed(String),
}

/// The largest graph layout-rs is given: a 1,000-step chain took 2.6 s on the
/// reference machine (the README's graph section), well inside the default timeout.
pub const MAX_FALLBACK_NODES: usize = 1000;

/// Renders DOT text; shared by every request.
#[derive(Debug, Clone)]
pub struct Renderer {
    dot_command: String,
    time_limit: Duration,
    /// Renders at the same time, one per core: more would only slow each down.
    slots: Arc<tokio::sync::Semaphore>,
}

impl Renderer {
    pub fn new(dot_command: impl Into<String>, time_limit: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self { dot_command: dot_command.into(), time_limit, slots: Arc::new(tokio::sync::Semaphore::new(cores)) }
    }

    /// `nodes`: the graph's task count, which decides whether layout-rs may take it.
    pub async fn render(&self, dot: String, format: GraphFormat, nodes: usize) -> Result<Vec<u8>, RenderError> {
        let flag = match format {
            GraphFormat::Dot => return Ok(dot.into_bytes()),
            GraphFormat::Svg => "-Tsvg",
            GraphFormat::Png => "-Tpng",
        };
        let work = async {
            let _slot = self.slots.acquire().await.map_err(|err| RenderError::Failed(err.to_string()))?;
            match self.with_graphviz(&dot, flag).await {
                Err(RenderError::NoGraphviz) if format == GraphFormat::Svg => {
                    if nodes > MAX_FALLBACK_NODES {
                        return Err(RenderError::TooLarge(nodes));
                    }
                    self.with_layout_rs(dot.clone()).await
                }
                outcome => outcome,
            }
        };
        // Dropping the work on timeout kills `dot` (kill_on_drop) and frees the slot.
        tokio::time::timeout(self.time_limit, work).await.unwrap_or(Err(RenderError::TimedOut(self.time_limit)))
    }

    async fn with_graphviz(&self, dot: &str, flag: &str) -> Result<Vec<u8>, RenderError> {
        let spawned = tokio::process::Command::new(&self.dot_command)
            .arg(flag)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(RenderError::NoGraphviz),
            Err(err) => return Err(RenderError::Failed(format!("cannot run {}: {err}", self.dot_command))),
        };
        let mut stdin = child.stdin.take().ok_or_else(|| RenderError::Failed("no stdin".into()))?;
        let input = dot.as_bytes().to_vec();
        let run = async move {
            // Written concurrently with the read: a big graph fills the pipes both ways.
            let writer = tokio::spawn(async move {
                let _ = stdin.write_all(&input).await;
            });
            let output = child.wait_with_output().await;
            let _ = writer.await;
            output
        };
        let output = run.await.map_err(|err| RenderError::Failed(err.to_string()))?;
        if !output.status.success() {
            let why = String::from_utf8_lossy(&output.stderr);
            return Err(RenderError::Failed(format!("{} {flag}: {}", self.dot_command, why.trim())));
        }
        Ok(output.stdout)
    }

    async fn with_layout_rs(&self, dot: String) -> Result<Vec<u8>, RenderError> {
        match tokio::task::spawn_blocking(move || layout_svg(&dot)).await {
            Ok(outcome) => outcome.map(String::into_bytes),
            Err(_) => Err(RenderError::Failed(String::from("layout-rs stopped unexpectedly"))),
        }
    }
}

/// SVG by layout-rs, which reads the same DOT text.
fn layout_svg(dot: &str) -> Result<String, RenderError> {
    use layout::backends::svg::SVGWriter;
    use layout::gv::{DotParser, GraphBuilder};
    let mut parser = DotParser::new(dot);
    let graph = parser.process().map_err(|err| RenderError::Failed(format!("layout-rs cannot read the DOT: {err}")))?;
    let mut builder = GraphBuilder::new();
    builder.visit_graph(&graph);
    let mut visual = builder.get();
    let mut svg = SVGWriter::new();
    visual.do_it(false, false, false, &mut svg);
    Ok(svg.finalize())
}
