//! A minimal W3C WebDriver client over reqwest, driving Debian's headless
//! Chromium through chromedriver: enough to click through the pages as a
//! person would.

use super::free_port;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start chromedriver and a fresh headless Chromium session.
    pub async fn start() -> anyhow::Result<Self> {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("chromedriver not found ({e}): scripts/test.sh installs chromium-driver"))?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir()?;
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
        ];
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}
        }}});
        let mut me = Self { driver, base, session: String::new(), http, _profile: profile };
        let v = me.call(reqwest::Method::POST, "/session", Some(caps)).await?;
        me.session = v["sessionId"].as_str().unwrap_or_default().to_owned();
        anyhow::ensure!(!me.session.is_empty(), "no session: {v}");
        Ok(me)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await?.json().await?;
        let value = v["value"].clone();
        if let Some(err) = value.get("error") {
            anyhow::bail!("webdriver {path}: {err} {}", value["message"]);
        }
        Ok(value)
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{}", self.session, rest)
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.call(reqwest::Method::POST, &self.s("/url"), Some(json!({"url": url}))).await.map(drop)
    }

    pub async fn find(&self, css: &str) -> anyhow::Result<String> {
        let v = self
            .call(reqwest::Method::POST, &self.s("/element"), Some(json!({"using": "css selector", "value": css})))
            .await?;
        v[ELEMENT_KEY].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("no element {css}"))
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let el = self.find(css).await?;
        self.call(reqwest::Method::POST, &self.s(&format!("/element/{el}/click")), Some(json!({}))).await.map(drop)
    }

    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let el = self.find(css).await?;
        self.call(reqwest::Method::POST, &self.s(&format!("/element/{el}/value")), Some(json!({"text": text})))
            .await
            .map(drop)
    }

    pub async fn eval(&self, script: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, &self.s("/execute/sync"), Some(json!({"script": script, "args": []}))).await
    }

    /// Wait until `location.pathname` starts with `prefix` (after a form post).
    pub async fn wait_for_path(&self, prefix: &str, timeout: Duration) -> anyhow::Result<String> {
        let started = Instant::now();
        loop {
            let path = self.eval("return location.pathname").await?.as_str().unwrap_or_default().to_owned();
            let ready = self.eval("return document.readyState").await?;
            if path.starts_with(prefix) && ready == "complete" {
                return Ok(path);
            }
            anyhow::ensure!(started.elapsed() < timeout, "still at {path}, waiting for {prefix}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Save a screenshot (for a failing test) and return where it went.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<std::path::PathBuf> {
        use base64::Engine as _;
        let v = self.call(reqwest::Method::GET, &self.s("/screenshot"), None).await?;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default())?;
        let path = std::env::temp_dir().join(format!("docent-{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    pub async fn quit(mut self) {
        let _ = self.call(reqwest::Method::DELETE, &self.s(""), None).await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
