//! Rendering DOT: Graphviz's `dot` program when it is installed (SVG, PNG);
//! without it SVG falls back to layout-rs (pure Rust) and PNG is refused with
//! how to install Graphviz. Rendering never runs on the request threads and
//! has a time bound: a `dot` past it is killed.

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
    #[error("rendering failed: {0}")]
    Failed(String),
}

/// Renders DOT text; shared by every request.
#[derive(Debug, Clone)]
pub struct Renderer {
    dot_command: String,
    time_limit: Duration,
    /// One pure-Rust layout at a time: it cannot be stopped once started.
    fallback: Arc<tokio::sync::Semaphore>,
}

impl Renderer {
    pub fn new(dot_command: impl Into<String>, time_limit: Duration) -> Self {
        Self { dot_command: dot_command.into(), time_limit, fallback: Arc::new(tokio::sync::Semaphore::new(1)) }
    }

    pub async fn render(&self, dot: String, format: GraphFormat) -> Result<Vec<u8>, RenderError> {
        let flag = match format {
            GraphFormat::Dot => return Ok(dot.into_bytes()),
            GraphFormat::Svg => "-Tsvg",
            GraphFormat::Png => "-Tpng",
        };
        match self.with_graphviz(&dot, flag).await {
            Err(RenderError::NoGraphviz) if format == GraphFormat::Svg => self.with_layout_rs(dot).await,
            outcome => outcome,
        }
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
        let output = match tokio::time::timeout(self.time_limit, run).await {
            Ok(Ok(output)) => output,
            Ok(Err(err)) => return Err(RenderError::Failed(err.to_string())),
            // Dropping the future drops the child, which kills it.
            Err(_) => return Err(RenderError::TimedOut(self.time_limit)),
        };
        if !output.status.success() {
            let why = String::from_utf8_lossy(&output.stderr);
            return Err(RenderError::Failed(format!("{} {flag}: {}", self.dot_command, why.trim())));
        }
        Ok(output.stdout)
    }

    async fn with_layout_rs(&self, dot: String) -> Result<Vec<u8>, RenderError> {
        let slot = self.fallback.clone().acquire_owned().await.map_err(|err| RenderError::Failed(err.to_string()))?;
        let work = tokio::task::spawn_blocking(move || {
            let outcome = layout_svg(&dot);
            drop(slot);
            outcome
        });
        match tokio::time::timeout(self.time_limit, work).await {
            Ok(Ok(outcome)) => outcome.map(String::into_bytes),
            Ok(Err(err)) => Err(RenderError::Failed(err.to_string())),
            Err(_) => Err(RenderError::TimedOut(self.time_limit)),
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
