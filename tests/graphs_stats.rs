//! get_graph and the statistics routes (issue 7): DOT checked node by node,
//! SVG parsed as XML (with Graphviz and with the pure-Rust fallback), PNG,
//! and every chart's numbers for a known set of jobs.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use chrono::{Duration, NaiveDateTime};
use graphviz_rust::dot_structures::{Attribute, Graph, Id, Stmt};
use serde_json::{Value, json};
use xingqiao::db::Database;
use xingqiao::db::jobs;
use xingqiao::db::models::NewJob;
use xingqiao::state::JobStatus;
use xingqiao_tests::{TestServer, per_backend, plugins_dir_with};

async fn server_with_fixture(backend: &str, args: &[&str]) -> TestServer {
    let dir = plugins_dir_with(&["e2e"]).display().to_string();
    let mut args = args.to_vec();
    args.extend(["--plugins-dir", &dir]);
    TestServer::start_with(backend, &args).await
}

async fn fetch(server: &TestServer, path: &str) -> (u16, String, Vec<u8>) {
    let response = server.client.get(server.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, response.bytes().await.unwrap().to_vec())
}

fn text(id: &Id) -> String {
    match id {
        Id::Escaped(quoted) => quoted.trim_matches('"').replace("\\n", "\n").replace("\\\"", "\""),
        Id::Html(s) | Id::Plain(s) | Id::Anonymous(s) => s.clone(),
    }
}

/// label -> its attributes, and every edge, from a DOT text.
fn nodes_and_edges(dot: &str) -> (Nodes, Vec<(String, String)>) {
    let Graph::DiGraph { stmts, .. } = graphviz_rust::parse(dot).unwrap() else { panic!("not a digraph: {dot}") };
    let mut nodes = std::collections::BTreeMap::new();
    let mut edges = Vec::new();
    for stmt in stmts {
        match stmt {
            Stmt::Node(node) => {
                let attributes = node.attributes.iter().map(|Attribute(k, v)| (text(k), text(v))).collect();
                nodes.insert(text(&node.id.0), attributes);
            }
            Stmt::Edge(edge) => {
                let graphviz_rust::dot_structures::EdgeTy::Pair(
                    graphviz_rust::dot_structures::Vertex::N(from),
                    graphviz_rust::dot_structures::Vertex::N(to),
                ) = edge.ty
                else {
                    panic!("unexpected edge")
                };
                edges.push((text(&from.0), text(&to.0)));
            }
            _ => {}
        }
    }
    (nodes, edges)
}

/// Graphviz's SVG starts with a DOCTYPE, which the XML parser must be allowed.
fn svg_document(svg: &str) -> roxmltree::Document<'_> {
    let options = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
    roxmltree::Document::parse_with_options(svg, options).unwrap_or_else(|err| panic!("{err}: {svg}"))
}

type Nodes = std::collections::BTreeMap<String, Vec<(String, String)>>;

fn attribute<'a>(attributes: &'a [(String, String)], key: &str) -> &'a str {
    attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {key}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_graph_draws_each_task_coloured_by_its_state() {
    let graphviz = std::process::Command::new("dot").arg("-V").output();
    assert!(
        graphviz.is_ok_and(|output| output.status.success()),
        "Graphviz's dot is not installed: apt-get install graphviz (.ci/run does it)"
    );
    let server = server_with_fixture("sqlite", &[]).await;
    let job_extra = json!({"case": "failing_handler"});
    let job_id =
        server.create_job(json!({"job_namespace": "t", "job_type": "fixture_e2e", "job_extra": job_extra})).await;
    assert_eq!(server.wait_job(job_id).await["job_status"], "failed");
    let (status, content_type, body) = fetch(&server, &format!("/xingqiao/get_graph?job_id={job_id}&format=dot")).await;
    assert_eq!((status, content_type.as_str()), (200, "text/vnd.graphviz; charset=utf-8"));
    let dot = String::from_utf8(body).unwrap();
    let (nodes, edges) = nodes_and_edges(&dot);
    assert_eq!(nodes.keys().collect::<Vec<_>>(), ["bad", "never"], "{dot}");
    let bad = &nodes["bad"];
    assert!(attribute(bad, "label").starts_with("bad\n/demo_api/hello\nfailed · "), "{dot}");
    assert_eq!((attribute(bad, "color"), attribute(bad, "style")), ("red", "filled,bold"));
    let never = &nodes["never"];
    assert_eq!(attribute(never, "label"), "never\n/demo_api/ping\nwaiting · 0.000 s");
    assert_eq!((attribute(never, "color"), attribute(never, "style")), ("grey", "filled,dashed"));
    assert_eq!(edges, [("bad".to_owned(), "never".to_owned())]);

    let passing = json!({"case": "passing", "from_job": "x"});
    let ok_id = server.create_job(json!({"job_namespace": "t", "job_type": "fixture_e2e", "job_extra": passing})).await;
    assert_eq!(server.wait_job(ok_id).await["job_status"], "finished");
    let (_, _, body) = fetch(&server, &format!("/xingqiao/get_graph?job_id={ok_id}&format=dot")).await;
    let (nodes, edges) = nodes_and_edges(&String::from_utf8(body).unwrap());
    for attributes in nodes.values() {
        assert_eq!((attribute(attributes, "color"), attribute(attributes, "style")), ("blue", "filled"));
    }
    assert_eq!(edges, [("first".to_owned(), "second".to_owned())]);

    // SVG (the default) from Graphviz, one <g class="node"> per task.
    let (status, content_type, body) = fetch(&server, &format!("/xingqiao/get_graph?job_id={job_id}")).await;
    assert_eq!((status, content_type.as_str()), (200, "image/svg+xml"));
    let svg = String::from_utf8(body).unwrap();
    let document = svg_document(&svg);
    assert_eq!(document.root_element().tag_name().name(), "svg");
    let task_nodes = document.descendants().filter(|n| n.attribute("class") == Some("node")).count();
    assert_eq!(task_nodes, 2, "{svg}");
    let texts: String = document.descendants().filter_map(|n| n.text()).collect();
    assert!(texts.contains("bad") && texts.contains("never"), "{texts}");
    let (status, content_type, body) = fetch(&server, &format!("/xingqiao/get_graph?job_id={job_id}&format=png")).await;
    assert_eq!((status, content_type.as_str()), (200, "image/png"));
    assert!(body.starts_with(b"\x89PNG\r\n\x1a\n"));

    let (status, _, body) = fetch(&server, "/xingqiao/get_graph?job_id=999999").await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, &body["stat"]), (404, &json!("ERR_JOB_NOT_EXIST")));
    let (status, _, body) = fetch(&server, &format!("/xingqiao/get_graph?job_id={job_id}&format=jpeg")).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, &body["stat"]), (400, &json!("ERR_PARAMS_INVALID")));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_graphviz_svg_comes_from_layout_rs_and_png_says_how_to_install_it() {
    let server = server_with_fixture("sqlite", &["--graphviz-dot", "xingqiao-test-no-such-dot"]).await;
    let job_id =
        server.create_job(json!({"job_namespace": "t", "job_type": "hello", "job_extra": {"str_info": "x"}})).await;
    server.wait_job(job_id).await;
    let (status, content_type, body) = fetch(&server, &format!("/xingqiao/get_graph?job_id={job_id}")).await;
    assert_eq!((status, content_type.as_str()), (200, "image/svg+xml"));
    let svg = String::from_utf8(body).unwrap();
    let document = svg_document(&svg);
    assert_eq!(document.root_element().tag_name().name(), "svg");
    let texts: String = document.descendants().filter_map(|n| n.text()).collect();
    for label in ["task1", "task2", "task3"] {
        assert!(texts.contains(label), "{label} missing from {svg}");
    }
    let (status, _, body) = fetch(&server, &format!("/xingqiao/get_graph?job_id={job_id}&format=png")).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, &body["stat"]), (503, &json!("ERR_GRAPHVIZ_NOT_INSTALLED")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("apt-get install graphviz"), "{body}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_task_job_renders() {
    // The bound is not what is tested here: other tests share the two cores.
    let server = TestServer::start_with("sqlite", &["--graph-timeout-ms", "120000"]).await;
    let job_id = server.create_job(json!({"job_namespace": "t", "job_type": "fanout", "job_extra": {"n": 9999}})).await;
    // Drawn once its 10,000 tasks have run, so they do not compete with Graphviz.
    server.wait_job(job_id).await;
    let (status, _, body) = fetch(&server, &format!("/xingqiao/get_graph?job_id={job_id}&format=dot")).await;
    assert_eq!(status, 200);
    let (nodes, edges) = nodes_and_edges(&String::from_utf8(body).unwrap());
    assert_eq!((nodes.len(), edges.len()), (10_000, 9_999));
    let (status, _, body) = fetch(&server, &format!("/xingqiao/get_graph?job_id={job_id}")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    svg_document(&String::from_utf8(body).unwrap());
    server.stop().await.unwrap();
}

/// A job row as the statistics see it, created `days_ago` days before now.
fn report_job(job_type: &str, status: &str, ret_stat: &str, tags: &str, days_ago: i64) -> NewJob {
    let when: NaiveDateTime = xingqiao::engine::now() - Duration::days(days_ago);
    let name = uuid::Uuid::new_v4().to_string();
    NewJob {
        job_namespace: "stats".into(),
        job_tags: tags.into(),
        ret_stat: ret_stat.into(),
        ..NewJob::new(job_type, &name, JobStatus::parse(status).unwrap(), when)
    }
}

/// The known set: (status, ret_stat, tags, days ago, how many).
const KNOWN: &[(&str, &str, &str, i64, usize)] = &[
    ("finished", "OK", "region=bj", 0, 3),
    ("failed", "ERR_JOB_EXE_TIMEOUT", "region=bj", 0, 1),
    ("failed", "ERR_JOB_CANCELLED", "region=nj,flag=redis", 0, 1),
    ("started", "", "region=gz", 0, 1),
    ("finished", "OK", "region=nj", 1, 2),
    ("failed", "ERR_TASK_HTTP_STATUS:500", "", 1, 2),
    ("finished", "OK", "flag=redis,region=bj", 3, 1),
    ("failed", "ERR_OLD", "region=bj", 40, 5),
];

async fn chart(server: &TestServer, path: &str) -> Value {
    let (status, body) = server.get(path).await;
    assert_eq!((status, &body["stat"]), (200, &json!("OK")), "{path}: {body}");
    body["data"].clone()
}

/// The last `n` points of a series.
fn last(series: &Value, n: usize) -> Vec<Value> {
    let data = series["data"].as_array().unwrap();
    data[data.len() - n..].to_vec()
}

per_backend! {
    async fn statistics_give_exact_numbers_for_a_known_set_of_jobs(backend: &str) {
        let server = server_with_fixture(backend, &[]).await;
        let db = Database::connect(&server.db.url, 2).unwrap();
        let mut conn = db.conn().await.unwrap();
        let conn = &mut conn;
        for &(status, ret_stat, tags, days_ago, count) in KNOWN {
            for _ in 0..count {
                jobs::create(conn, report_job("report", status, ret_stat, tags, days_ago), Vec::new()).await.unwrap();
            }
        }
        // Neither another job type nor a deleted job counts.
        jobs::create(conn, report_job("other", "failed", "ERR_X", "region=bj", 0), Vec::new()).await.unwrap();
        let mut deleted = report_job("report", "failed", "ERR_X", "region=bj", 0);
        deleted.is_valid = false;
        jobs::create(conn, deleted, Vec::new()).await.unwrap();

        let rate = chart(&server, "/xingqiao/statistics_success_rate?job_type=report").await;
        assert_eq!(rate["title"], json!({"text": "success rate"}));
        assert_eq!((&rate["yAxis"], &rate["tooltip"], &rate["legend"]), (&json!({}), &json!({}), &json!({})));
        let labels = rate["xAxis"]["data"].as_array().unwrap();
        assert_eq!(labels.len(), 30);
        assert_eq!(labels[29], json!(xingqiao::engine::now().date().to_string()));
        let series = rate["series"].as_array().unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(
            (&series[0]["type"], &series[0]["name"], &series[0]["smooth"]),
            (&json!("line"), &json!("rate"), &json!(true))
        );
        // 3 days ago: 1 of 1 ok; 2 days ago: none; yesterday: 2 of 4 failed; today: 2 of 5 (the running one waits).
        assert_eq!(last(&series[0], 4), [json!(100.0), Value::Null, json!(50.0), json!(60.0)], "{backend}");

        let path = "/xingqiao/statistics_success_rate?job_type=report&exclude_retstat=ERR_JOB_CANCELLED&days=45";
        let rate = chart(&server, path).await;
        let series = rate["series"].as_array().unwrap();
        assert_eq!(series[1]["name"], "rate excluding ERR_JOB_CANCELLED");
        assert_eq!(last(&series[1], 4), [json!(100.0), Value::Null, json!(50.0), json!(80.0)], "{backend}");
        assert_eq!(series[0]["data"].as_array().unwrap()[45 - 41], json!(0.0), "{backend}: the 40-day-old failures");

        let rate = chart(&server, "/xingqiao/statistics_success_rate?job_type=report&job_tag=region=bj").await;
        assert_eq!(last(&rate["series"][0], 4), [json!(100.0), Value::Null, Value::Null, json!(75.0)], "{backend}");

        let ratio = chart(
            &server,
            "/xingqiao/statistics_jobtag_ratio?job_type=report&jobtag_name=region&jobtag_values=bj,nj,gz,sh",
        )
        .await;
        assert_eq!(
            ratio,
            json!({
                "series": [{"data": [{"name": "bj", "value": 10}, {"name": "nj", "value": 3}, {"name": "gz", "value": 1}, {"name": "sh", "value": 0}], "type": "pie", "name": "region"}],
                "legend": {},
                "tooltip": {"trigger": "item", "formatter": "{a} {b}:{c} ({d}%)"},
                "title": {"text": "region ratio"}
            }),
            "{backend}"
        );
        let ratio = chart(&server, "/xingqiao/statistics_jobtag_ratio?job_type=report&jobtag_name=region&jobtag_values=bj,nj,gz&job_tag=flag=redis").await;
        assert_eq!(
            ratio["series"][0]["data"],
            json!([{"name": "bj", "value": 1}, {"name": "nj", "value": 1}, {"name": "gz", "value": 0}])
        );

        let stats = chart(&server, "/xingqiao/statistics_retstat_ratio?job_type=report").await;
        assert_eq!(stats["title"], json!({"text": "retstat ratio"}));
        assert_eq!(
            stats["series"],
            json!([{"data": [
                {"name": "ERR_JOB_CANCELLED", "value": 1}, {"name": "ERR_JOB_EXE_TIMEOUT", "value": 1},
                {"name": "ERR_OLD", "value": 5}, {"name": "ERR_TASK_HTTP_STATUS:500", "value": 2}, {"name": "OK", "value": 6}
            ], "type": "pie", "name": "retstat"}]),
            "{backend}"
        );
        let stats = chart(&server, "/xingqiao/statistics_retstat_ratio?job_type=report&job_tag=region=nj").await;
        assert_eq!(
            stats["series"][0]["data"],
            json!([{"name": "ERR_JOB_CANCELLED", "value": 1}, {"name": "OK", "value": 2}])
        );

        // list_jobs filters by tag too; a tag that only starts the same does not match.
        let (_, listed) = server.get("/xingqiao/list_jobs?job_type=report&job_tag=flag=redis").await;
        assert_eq!(listed["data"]["total"], 2, "{backend}: {listed}");
        let (_, listed) = server.get("/xingqiao/list_jobs?job_type=report&job_tag=region=b").await;
        assert_eq!(listed["data"]["total"], 0, "{backend}: {listed}");

        for (path, stat) in [
            ("/xingqiao/statistics_success_rate", "ERR_PARAMS_INVALID"),
            ("/xingqiao/statistics_success_rate?job_type=report&days=0", "ERR_PARAMS_INVALID"),
            ("/xingqiao/statistics_jobtag_ratio?job_type=report&jobtag_name=region", "ERR_PARAMS_INVALID"),
            ("/xingqiao/statistics_retstat_ratio?job_type=report&job_tag=nokey", "ERR_PARAMS_INVALID"),
        ] {
            let (status, body) = server.get(path).await;
            assert_eq!((status, body["stat"].as_str().unwrap()), (400, stat), "{path}: {body}");
        }

        // Tags from a plugin's params_check land in job_tags and in the filters.
        let extra = json!({"case": "passing", "from_job": "x", "tags": "region=sh,flag=redis"});
        let job_id =
            server.create_job(json!({"job_namespace": "t", "job_type": "fixture_e2e", "job_extra": extra})).await;
        assert_eq!(server.wait_job(job_id).await["job_tags"], "region=sh,flag=redis");
        let ratio = chart(
            &server,
            "/xingqiao/statistics_jobtag_ratio?job_type=fixture_e2e&jobtag_name=region&jobtag_values=sh",
        )
        .await;
        assert_eq!(ratio["series"][0]["data"], json!([{"name": "sh", "value": 1}]));
        server.stop().await.unwrap();
    }
}
