//! A headless Chromium driven through chromedriver (WebDriver), for the
//! console tests. chromedriver runs in its own process group, which is ended
//! on drop, so a failing test leaves no browser behind.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::free_port;

pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium 1400×900 in it.
    pub async fn start() -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start chromedriver ({err}); scripts/test installs chromium-driver"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"]}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|err| panic!("cannot open a Chromium session: {err}"));
        Self { client, driver }
    }

    /// Runs `script` (a JS function body that returns a value) until it gives
    /// something truthy; that value.
    pub async fn wait_for(&self, what: &str, script: &str, limit: Duration) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.client.execute(script, Vec::new()).await.unwrap_or(serde_json::Value::Null);
            let truthy = !matches!(&value, serde_json::Value::Null | serde_json::Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            assert!(Instant::now() < deadline, "{what}: not seen within {limit:?} (last: {value})");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `keys` into the element `css` finds, or clicks it when `keys` is
    /// `None`, within `limit`. The page may render the element again between
    /// finding and using it (a stale reference): then it is found anew.
    pub async fn act_on(&self, css: &str, keys: Option<&str>, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let element = self
                .client
                .wait()
                .at_most(limit)
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|err| panic!("{css}: not found within {limit:?}: {err}"));
            let acted = match keys {
                Some(keys) => element.send_keys(keys).await,
                None => element.click().await,
            };
            match acted {
                Ok(()) => return,
                Err(err) if err.is_stale_element_reference() && Instant::now() < deadline => continue,
                Err(err) => panic!("{css}: {err}"),
            }
        }
    }

    /// Saves a screenshot as `docs/images/console-<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap_or_else(|err| panic!("screenshot {name}: {err}"));
        let path: PathBuf =
            [env!("CARGO_MANIFEST_DIR"), "..", "docs", "images", &format!("console-{name}.png")].iter().collect();
        std::fs::write(&path, png).unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium it started.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.driver.id())]).status();
        let _ = self.driver.wait();
    }
}
