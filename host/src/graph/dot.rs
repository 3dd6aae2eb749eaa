//! The DOT of a job: one node per task (label, cmd, state, cost) coloured by
//! its state as in the original, one edge per dependency.

use graphviz_rust::dot_structures::{Attribute, Edge, EdgeTy, Graph, GraphAttributes, Id, Node, NodeId, Stmt, Vertex};
use graphviz_rust::printer::{DotPrinter, PrinterContext};

use crate::db::models::{JobRow, TaskRow, split_list};
use crate::runtime::TaskSpec;
use crate::state::TaskStatus;

/// A quoted DOT string: backslashes and quotes escaped, newlines as `\n`.
fn quoted(text: &str) -> Id {
    let mut escaped = String::with_capacity(text.len() + 2);
    escaped.push('"');
    for c in text.chars() {
        match c {
            '"' => escaped.push_str("\\\""),
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '\r' => {}
            c => escaped.push(c),
        }
    }
    escaped.push('"');
    Id::Escaped(escaped)
}

fn attr(key: &str, value: &str) -> Attribute {
    Attribute(Id::Plain(key.to_owned()), quoted(value))
}

/// (border colour, fill colour, style) of a task state: waiting grey dashed,
/// pending yellow, started green, finished blue, failed red bold.
fn state_style(state: TaskStatus) -> (&'static str, &'static str, &'static str) {
    match state {
        TaskStatus::Waiting => ("grey", "whitesmoke", "filled,dashed"),
        TaskStatus::Pending => ("gold", "lightyellow", "filled"),
        TaskStatus::Started => ("green", "palegreen", "filled"),
        TaskStatus::Finished => ("blue", "lightblue", "filled"),
        TaskStatus::Failed => ("red", "mistyrose", "filled,bold"),
    }
}

fn task_node(task: &TaskRow) -> Stmt {
    let (color, fill, style) = state_style(task.task_status);
    let label = format!("{}\n{}\n{} · {:.3} s", task.task_label, task.task_cmd, task.task_status, task.task_cost);
    let mut attributes =
        vec![attr("label", &label), attr("color", color), attr("fillcolor", fill), attr("style", style)];
    if task.task_status == TaskStatus::Failed {
        attributes.push(attr("penwidth", "2"));
    }
    Stmt::Node(Node::new(NodeId(quoted(&task.task_label), None), attributes))
}

fn edge(from: &str, to: &str) -> Stmt {
    Stmt::Edge(Edge {
        ty: EdgeTy::Pair(Vertex::N(NodeId(quoted(from), None)), Vertex::N(NodeId(quoted(to), None))),
        attributes: Vec::new(),
    })
}

fn print(id: &str, stmts: Vec<Stmt>) -> String {
    let graph = Graph::DiGraph { id: quoted(id), strict: false, stmts };
    graph.print(&mut PrinterContext::default())
}

/// A planned DAG (`xingqiao plugin run --format dot`): tasks without state;
/// the saved one drawn with a double border.
pub fn plan_dot(job_type: &str, tasks: &[TaskSpec]) -> String {
    let mut stmts = vec![
        Stmt::GAttribute(GraphAttributes::Graph(vec![attr("rankdir", "LR")])),
        Stmt::GAttribute(GraphAttributes::Node(vec![attr("shape", "box")])),
    ];
    for task in tasks {
        let mut attributes = vec![attr("label", &format!("{}\n{}", task.label, task.cmd))];
        if task.is_save {
            attributes.push(attr("peripheries", "2"));
        }
        stmts.push(Stmt::Node(Node::new(NodeId(quoted(&task.label), None), attributes)));
    }
    for task in tasks {
        stmts.extend(task.dependencies.iter().map(|dependency| edge(dependency, &task.label)));
    }
    print(job_type, stmts)
}

/// The job's DOT text, tasks in creation order.
pub fn job_dot(job: &JobRow, tasks: &[TaskRow]) -> String {
    let title = format!("job {} {} ({}): {}", job.job_id, job.job_name, job.job_type, job.job_status);
    let mut stmts = vec![
        Stmt::GAttribute(GraphAttributes::Graph(vec![
            attr("label", &title),
            attr("labelloc", "t"),
            attr("rankdir", "LR"),
        ])),
        Stmt::GAttribute(GraphAttributes::Node(vec![attr("shape", "box"), attr("fontname", "Helvetica")])),
    ];
    stmts.extend(tasks.iter().map(task_node));
    for task in tasks {
        stmts.extend(split_list(&task.task_dependencies).iter().map(|dependency| edge(dependency, &task.task_label)));
    }
    print(&format!("job_{}", job.job_id), stmts)
}
