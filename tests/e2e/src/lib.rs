//! Harness for the console's end-to-end tests: starts `tauri-driver` (which starts
//! `WebKitWebDriver`, which starts the real `cloudkeep-console` binary) on free loopback
//! ports with a private `CLOUDKEEP_HOME`, connects a WebDriver client, and saves
//! screenshots as test artifacts.
//!
//! Also: a real gateway process ([`Gateway`], the `cloudkeep` binary), user-like helpers
//! (click, type, wait for text) and the axe-core accessibility check of a screen.
//!
//! Environment: `CLOUDKEEP_CONSOLE_BIN` (the console binary; default: the workspace's debug
//! build), `CLOUDKEEP_CLI_BIN` (the `cloudkeep` binary; default: next to the console),
//! `TAURI_DRIVER` (default: `tauri-driver` on `PATH`), `CLOUDKEEP_AXE` (axe-core's
//! `axe.min.js`; default: the tools cache), `CLOUDKEEP_ARTIFACTS` (default: `test-artifacts/`
//! in the repository). Needs a display: run under `xvfb-run -a`.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// How long the console may take to start and answer WebDriver.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a UI element may take to appear.
pub const UI_TIMEOUT: Duration = Duration::from_secs(20);

/// The repository's top folder.
///
/// From `CARGO_MANIFEST_DIR` as cargo sets it at run time (compile time only as a fallback),
/// because the build cache is shared between checkouts.
pub fn repo_root() -> PathBuf {
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    Path::new(&manifest_dir)
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The console binary under test.
pub fn console_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("CLOUDKEEP_CONSOLE_BIN") {
        Some(path) => PathBuf::from(path),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join("target"));
            target.join("debug").join("cloudkeep-console")
        }
    };
    if !path.is_file() {
        bail!(
            "console binary {} not found; build it with `cargo build -p cloudkeep-console` or set CLOUDKEEP_CONSOLE_BIN",
            path.display()
        );
    }
    Ok(path)
}

/// The `cloudkeep` command-line binary (the gateway runs from it).
pub fn cli_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("CLOUDKEEP_CLI_BIN") {
        Some(path) => PathBuf::from(path),
        None => console_binary()?.with_file_name("cloudkeep"),
    };
    if !path.is_file() {
        bail!(
            "cloudkeep binary {} not found; build it with `cargo build -p cloudkeep-cli` or set CLOUDKEEP_CLI_BIN",
            path.display()
        );
    }
    Ok(path)
}

/// Runs the `cloudkeep` CLI with `CLOUDKEEP_HOME=home`, feeding `stdin` (a password) when
/// given; returns its standard output, or fails with its error output.
pub fn run_cli(home: &Path, args: &[&str], stdin: Option<&str>) -> Result<String> {
    run_cli_env(home, args, stdin, &[])
}

/// [`run_cli`] with more environment variables (an agent's `HOME`, say).
pub fn run_cli_env(
    home: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &Path)],
) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new(cli_binary()?)
        .args(args)
        .env("CLOUDKEEP_HOME", home)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run cloudkeep {}", args.join(" ")))?;
    if let (Some(mut pipe), Some(text)) = (child.stdin.take(), stdin) {
        writeln!(pipe, "{text}")?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "cloudkeep {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cloudkeep sp login` on `home` as the gateway's admin, trusting its certificate.
pub fn cli_sp_login(home: &Path, gateway: &Gateway) -> Result<()> {
    run_cli(
        home,
        &[
            "sp",
            "login",
            "--gateway",
            &gateway.addr,
            "--user",
            "admin",
            "--password-stdin",
            "--trust",
            &gateway.fingerprint,
        ],
        Some(&gateway.admin_password),
    )
    .map(drop)
}

/// A data home as after a day's use: the SP admin signed in, a repository `main`, a tenant
/// `login` with 2 GiB on it, and that tenant's provider `sp` and job `docs` on `source` with
/// one restore point.
pub fn prepared_home(
    gateway: &Gateway,
    (login, password): (&str, &str),
    source: &Path,
) -> Result<tempfile::TempDir> {
    let home = tempfile::tempdir()?;
    let storage = gateway.dir.path().join(format!("storage-{login}"));
    cli_sp_login(home.path(), gateway)?;
    run_cli(
        home.path(),
        &[
            "sp",
            "repo",
            "add",
            "main",
            "--path",
            &storage.display().to_string(),
        ],
        None,
    )?;
    run_cli(
        home.path(),
        &[
            "sp",
            "tenant",
            "add",
            login,
            "--password-stdin",
            "--quota",
            "main=2GiB",
        ],
        Some(password),
    )?;
    cli_tenant_job(home.path(), gateway, (login, password), source)?;
    Ok(home)
}

/// As the tenant `login` on `home`: the provider `sp` (its certificate trusted), an encrypted
/// job `docs` on `source` into its repository `main`, and one run of it.
pub fn cli_tenant_job(
    home: &Path,
    gateway: &Gateway,
    (login, password): (&str, &str),
    source: &Path,
) -> Result<()> {
    run_cli(
        home,
        &[
            "provider",
            "add",
            "sp",
            "--host",
            &gateway.addr,
            "--user",
            login,
            "--password-stdin",
            "--trust",
            &gateway.fingerprint,
        ],
        Some(password),
    )?;
    let src = source.display().to_string();
    run_cli(
        home,
        &[
            "job",
            "create",
            "docs",
            "--provider",
            "sp",
            "--repo",
            "main",
            "--source",
            &src,
            "--encryption-password-stdin",
        ],
        Some("a long job passphrase"),
    )?;
    run_cli(home, &["job", "run", "docs"], None).map(drop)
}

/// Folder for screenshots and logs the tests leave behind.
pub fn artifacts_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("CLOUDKEEP_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("test-artifacts"));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

/// Fails early, with the fix, when no display is available.
pub fn require_display() -> Result<()> {
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        bail!("no display: run the end-to-end tests under `xvfb-run -a` (scripts/test does)");
    }
    Ok(())
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Asks a process (or, with a negative id, a process group) to stop, as a user would.
pub fn terminate(pid: i64) {
    let _ = Command::new("kill")
        .args(["-TERM", "--", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Writes PNG bytes as an artifact and checks they are a PNG.
pub fn save_png(name: &str, png: &[u8]) -> Result<PathBuf> {
    if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
        bail!("screenshot {name} is not a PNG ({} bytes)", png.len());
    }
    let path = artifacts_dir()?.join(format!("{name}.png"));
    std::fs::write(&path, png).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// A running console under WebDriver.
pub struct Console {
    /// The WebDriver session.
    pub client: Client,
    /// The console's private data home.
    pub home: tempfile::TempDir,
    driver: Child,
}

impl Console {
    /// Starts the console and waits until its first view has rendered.
    pub async fn launch() -> Result<Self> {
        Self::launch_with(&[]).await
    }

    /// Starts the console with extra environment variables.
    pub async fn launch_with(env: &[(&str, &str)]) -> Result<Self> {
        Self::launch_in(tempfile::tempdir()?, env).await
    }

    /// Starts the console on an existing data home (prepared, say, by the `cloudkeep` CLI,
    /// which shares it).
    pub async fn launch_in(home: tempfile::TempDir, env: &[(&str, &str)]) -> Result<Self> {
        require_display()?;
        let app = console_binary()?;
        let driver_bin = std::env::var_os("TAURI_DRIVER").unwrap_or_else(|| "tauri-driver".into());
        let port = free_port()?;
        let native_port = free_port()?;
        let log_path = artifacts_dir()?.join(format!("tauri-driver-{port}.log"));
        let log = File::create(&log_path)?;
        let mut driver = Command::new(&driver_bin)
            .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            .env("CLOUDKEEP_HOME", home.path())
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "start {:?}; install it with `cargo install tauri-driver --locked` or set TAURI_DRIVER",
                    driver_bin
                )
            })?;

        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            json!({ "application": app.to_string_lossy() }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            if let Some(status) = driver.try_wait()? {
                bail!("tauri-driver exited ({status}); see {}", log_path.display());
            }
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if started.elapsed() < START_TIMEOUT => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    terminate(i64::from(driver.id()));
                    bail!(
                        "no WebDriver session after {:?}: {e}; see {}",
                        START_TIMEOUT,
                        log_path.display()
                    );
                }
            }
        };
        let console = Self {
            client,
            home,
            driver,
        };
        console
            .client
            .wait()
            .at_most(START_TIMEOUT)
            .for_element(Locator::Css("body[data-ready='true']"))
            .await
            .context("the console's first view never finished rendering")?;
        Ok(console)
    }

    /// Waits for an element and returns its `textContent` (the DOM's text, before CSS
    /// transforms such as upper-casing).
    pub async fn text_of(&self, css: &str) -> Result<String> {
        let mut tries = 0;
        loop {
            let el = self.find(css).await?;
            match el.prop("textContent").await {
                Ok(text) => return Ok(text.unwrap_or_default()),
                Err(e) if tries < 5 && is_stale(&e) => tries += 1,
                Err(e) => return Err(e).with_context(|| format!("read {css}")),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `css` matches an element.
    pub async fn wait_for(&self, css: &str) -> Result<()> {
        self.find(css).await.map(drop)
    }

    /// Waits up to [`UI_TIMEOUT`] for an element; when it never appears, the screen is saved
    /// as `failed-<n>.png` so the failure can be seen.
    pub async fn find(&self, css: &str) -> Result<fantoccini::elements::Element> {
        match self
            .client
            .wait()
            .at_most(UI_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(el) => Ok(el),
            Err(e) => {
                let name = format!("failed-{}", std::process::id());
                let shot = match self.client.screenshot().await {
                    Ok(png) => save_png(&name, &png)
                        .map(|p| format!("; the screen is in {}", p.display()))
                        .unwrap_or_default(),
                    Err(_) => String::new(),
                };
                // The page's text too: what is below the fold is not on the screenshot.
                if let Ok(Value::String(text)) = self
                    .client
                    .execute("return document.body.innerText;", vec![])
                    .await
                    && let Ok(dir) = artifacts_dir()
                {
                    let _ = std::fs::write(dir.join(format!("{name}.txt")), text);
                }
                bail!("element {css} never appeared ({e}){shot}")
            }
        }
    }

    /// Whether `el` takes up room on the page (inside a closed `<details>` it does not, which
    /// the WebDriver's own "displayed" does not always know).
    pub async fn shown(&self, el: &fantoccini::elements::Element) -> Result<bool> {
        let arg = serde_json::to_value(el)?;
        let answer = self
            .client
            .execute(
                r#"const el = arguments[0];
                   const r = el.getBoundingClientRect();
                   const closed = el.closest('details:not([open])');
                   const inSummary = closed && closed.querySelector(':scope > summary').contains(el);
                   return r.width > 0 && r.height > 0 && (!closed || inSummary);"#,
                vec![arg],
            )
            .await?;
        Ok(answer == Value::Bool(true))
    }

    /// Calls a console command from the page, exactly as the UI's `ipc.js` does.
    /// Returns `Ok(value)` or `Err(error value)` as the command answered.
    pub async fn invoke(&self, command: &str, args: Value) -> Result<Result<Value, Value>> {
        let script = r#"
            const [command, args, done] = arguments;
            window.__TAURI__.core.invoke(command, args)
                .then((value) => done({ ok: value === undefined ? null : value }),
                      (error) => done({ err: error }));
        "#;
        let answer = self
            .client
            .execute_async(script, vec![json!(command), args])
            .await?;
        match (answer.get("ok"), answer.get("err")) {
            (Some(ok), _) => Ok(Ok(ok.clone())),
            (_, Some(err)) => Ok(Err(err.clone())),
            _ => bail!("unexpected invoke answer {answer}"),
        }
    }

    /// Waits for an element and scrolls it into the middle of the window (for a screenshot of
    /// what lies below the fold).
    pub async fn scroll_to(&self, css: &str) -> Result<()> {
        let el = self.find(css).await?;
        let arg = serde_json::to_value(&el)?;
        self.client
            .execute("arguments[0].scrollIntoView({block: 'center'});", vec![arg])
            .await?;
        Ok(())
    }

    /// Waits for an element and clicks it.
    /// An element replaced by a re-render between finding and clicking it is found again.
    pub async fn click(&self, css: &str) -> Result<()> {
        let mut tries = 0;
        loop {
            let el = self.find(css).await?;
            match el.click().await {
                Ok(()) => return Ok(()),
                Err(e) if tries < 5 && is_stale(&e) => tries += 1,
                // Not clickable where it is (below the fold, say): scroll it into view.
                Err(_) if tries < 5 => {
                    tries += 1;
                    let arg = serde_json::to_value(&el)?;
                    self.client
                        .execute("arguments[0].scrollIntoView({block: 'center'});", vec![arg])
                        .await?;
                }
                Err(e) => return Err(e).with_context(|| format!("click {css}")),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for an input, clears it and types `text` into it, as a user would.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let mut tries = 0;
        loop {
            let el = self.find(css).await?;
            let typed = match el.clear().await {
                Ok(()) => el.send_keys(text).await,
                Err(e) => Err(e),
            };
            match typed {
                Ok(()) => return Ok(()),
                Err(e) if tries < 5 && is_stale(&e) => tries += 1,
                Err(e) => return Err(e).with_context(|| format!("type into {css}")),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of `css` contains `needle` (within `timeout`); returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                // Replaced by a re-render since it was found: read it again next time.
                Ok(el) => el
                    .prop("textContent")
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(needle) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                bail!("{css} never contained {needle:?}; it shows {text:?}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Clicks wizard `wizard`'s Next (or Finish) button once it is enabled.
    pub async fn next(&self, wizard: &str) -> Result<()> {
        self.click(&format!("#{wizard}-next:not([disabled])")).await
    }

    /// Opens a section from the sidebar and waits until it has rendered.
    pub async fn nav(&self, section: &str) -> Result<()> {
        self.click(&format!("#nav-{section}")).await?;
        self.wait_for(&format!("#nav-{section}[aria-current='page']"))
            .await?;
        self.settle().await
    }

    /// SP mode: a folder cloud repository `name` added through the New cloud repository
    /// wizard (storage, then the summary), shown in the table.
    pub async fn add_folder_repo(&self, name: &str, folder: &Path) -> Result<()> {
        self.nav("sp-repos").await?;
        self.click("#repo-new").await?;
        self.type_into("#repo-name", name).await?;
        self.type_into("#repo-path", &folder.display().to_string())
            .await?;
        self.next("repo-wizard").await?;
        self.next("repo-wizard").await?;
        self.wait_text("#sp-repos-table", name, Duration::from_secs(10))
            .await?;
        Ok(())
    }

    /// SP mode, signed in to `gateway` as its admin through the connect wizard (the
    /// certificate trusted after its fingerprint was verified).
    pub async fn connect_sp(&self, gateway: &Gateway) -> Result<()> {
        self.click("#mode-sp").await?;
        self.wait_for("body[data-mode='sp']").await?;
        self.type_into("#sp-host", &gateway.addr).await?;
        self.next("sp-connect").await?;
        self.type_into("#fp-paste", &gateway.fingerprint).await?;
        self.click("#fp-verify").await?;
        self.wait_text("#fp-verdict", "match", Duration::from_secs(5))
            .await?;
        self.next("sp-connect").await?;
        self.type_into("#sp-user", "admin").await?;
        self.type_into("#sp-password", &gateway.admin_password)
            .await?;
        self.next("sp-connect").await?;
        self.wait_for("#nav-sp-tenants[aria-current='page']").await
    }

    /// Accepts the open confirmation dialog.
    pub async fn confirm(&self) -> Result<()> {
        self.click("dialog[open] #dialog-confirm").await?;
        self.settle().await
    }

    /// Waits until the view has rendered (no section is busy) and no request is pending.
    pub async fn settle(&self) -> Result<()> {
        self.wait_for(".view-body:not([aria-busy])").await
    }

    /// Runs axe-core on the page as it is and fails on any serious or critical violation,
    /// naming the rule, its help text and the elements.
    pub async fn check_accessibility(&self, screen: &str) -> Result<()> {
        let loaded = self
            .client
            .execute("return typeof window.axe === 'object';", vec![])
            .await?;
        if loaded != json!(true) {
            let source = std::fs::read_to_string(axe_source()?)?;
            self.client
                .execute(&format!("{source}\nreturn true;"), vec![])
                .await
                .context("inject axe-core")?;
        }
        let script = r#"
            const done = arguments[0];
            window.axe.run(document, { resultTypes: ['violations'] }).then(
                (r) => done(r.violations
                    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                    .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                                   nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }))),
                (e) => done([{ id: 'axe-error', help: String(e), nodes: [] }]));
        "#;
        let found = self.client.execute_async(script, vec![]).await?;
        let list = found.as_array().cloned().unwrap_or_default();
        if !list.is_empty() {
            bail!(
                "screen {screen}: {} serious or critical accessibility violation(s): {}",
                list.len(),
                serde_json::to_string_pretty(&list)?
            );
        }
        Ok(())
    }

    /// The console's conventions on the page as it is: a destructive button shows only
    /// under "More actions" or in a confirmation dialog, never beside the primary ones.
    pub async fn check_conventions(&self, screen: &str) -> Result<()> {
        let script = r#"
            return [...document.querySelectorAll('.button-danger')]
                .filter((b) => b.getClientRects().length > 0
                    && !b.closest('details.more-actions') && !b.closest('dialog'))
                .map((b) => b.id || b.textContent);
        "#;
        let found = self.client.execute(script, vec![]).await?;
        let list = found.as_array().cloned().unwrap_or_default();
        if !list.is_empty() {
            bail!(
                "screen {screen}: destructive buttons beside the primary ones (put them under More actions): {}",
                serde_json::to_string(&list)?
            );
        }
        Ok(())
    }

    /// A screen as a user sees it: saved as a screenshot, checked with axe-core and against
    /// the console's conventions.
    pub async fn screen(&self, name: &str) -> Result<PathBuf> {
        self.settle().await?;
        let path = self.screenshot(name).await?;
        self.check_accessibility(name).await?;
        self.check_conventions(name).await?;
        Ok(path)
    }

    /// Saves a screenshot of the console's page as an artifact.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let png = self.client.screenshot().await?;
        save_png(name, &png)
    }

    /// Ends the session (which closes the console) and stops tauri-driver.
    pub async fn shutdown(mut self) -> Result<()> {
        let client = self.client.clone();
        client.close().await?;
        terminate(i64::from(self.driver.id()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.driver.try_wait()?.is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: tauri-driver then stops WebKitWebDriver too.
        if matches!(self.driver.try_wait(), Ok(None)) {
            terminate(i64::from(self.driver.id()));
            let _ = self.driver.wait();
        }
    }
}

/// axe-core's browser build: `CLOUDKEEP_AXE` or the tools cache (`scripts/test` fetches it).
fn axe_source() -> Result<PathBuf> {
    let path = match std::env::var_os("CLOUDKEEP_AXE") {
        Some(p) => PathBuf::from(p),
        None => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            let tools = PathBuf::from(home).join(".cache/cloudkeep/tools");
            std::fs::read_dir(&tools)
                .ok()
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().join("axe.min.js"))
                .find(|p| p.is_file())
                .unwrap_or_else(|| tools.join("axe-core/axe.min.js"))
        }
    };
    if !path.is_file() {
        bail!(
            "axe-core not found at {}; scripts/test fetches it from npm, or set CLOUDKEEP_AXE",
            path.display()
        );
    }
    Ok(path)
}

/// An element gone from the page since it was found (WebKitWebDriver says "not found").
fn is_stale(e: &fantoccini::error::CmdError) -> bool {
    let text = e.to_string();
    text.contains("stale") || text.contains("was not found")
}

/// Fingerprints compare as core compares them: without separators or case.
pub fn same_fingerprint(a: &str, b: &str) -> bool {
    use cloudkeep_gateway::tls::normalize_fingerprint;
    let (a, b) = (normalize_fingerprint(a), normalize_fingerprint(b));
    !a.is_empty() && a == b
}

/// Deterministic bytes that do not compress away.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A real gateway: `cloudkeep gateway init` (SQLite, a self-signed certificate for
/// 127.0.0.1, an admin) and `cloudkeep gateway run` on a free loopback port.
pub struct Gateway {
    /// `127.0.0.1:port` it listens on.
    pub addr: String,
    /// SHA-256 fingerprint of the certificate it serves.
    pub fingerprint: String,
    /// The SP admin's password (the admin is `admin`).
    pub admin_password: String,
    /// Its data folder (and a folder for cloud repositories).
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Gateway {
    /// Initialises and starts a gateway.
    pub fn start() -> Result<Self> {
        use std::io::Write;
        let cli = cli_binary()?;
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("gateway");
        let admin_password = "sp-admin-password-1".to_owned();
        let mut init = Command::new(&cli)
            .args(["gateway", "init", "--data-dir"])
            .arg(&data)
            .args(["--hostname", "127.0.0.1", "--admin-password-stdin"])
            .env("CLOUDKEEP_HOME", dir.path().join("sp-home"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("run cloudkeep gateway init")?;
        if let Some(mut stdin) = init.stdin.take() {
            writeln!(stdin, "{admin_password}")?;
        }
        let out = init.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "gateway init failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let (addr, fingerprint, child) = Self::run(&data, &[], "gateway.log")?;
        Ok(Self {
            addr,
            fingerprint,
            admin_password,
            dir,
            child,
        })
    }

    /// Another gateway process on this one's database and storage, registered as `id`.
    pub fn another(&self, id: &str) -> Result<OtherGateway> {
        let data = self.dir.path().join("gateway");
        let (addr, _, child) = Self::run(&data, &["--id", id], &format!("gateway-{id}.log"))?;
        Ok(OtherGateway { addr, child })
    }

    /// `cloudkeep gateway run` on `data`: its address, fingerprint and process.
    fn run(data: &Path, extra: &[&str], log: &str) -> Result<(String, String, Child)> {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(cli_binary()?)
            .args(["gateway", "run", "--data-dir"])
            .arg(data)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--allow-root",
                "--advertise",
                "127.0.0.1",
            ])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(File::create(artifacts_dir()?.join(log))?)
            .spawn()
            .context("run cloudkeep gateway run")?;
        let stdout = child.stdout.take().context("gateway stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().context("gateway said nothing")??;
        if !first.contains("listening on") {
            bail!("gateway did not start: {first}");
        }
        let addr = first.rsplit(' ').next().unwrap_or_default().to_owned();
        let second = lines.next().context("gateway printed no fingerprint")??;
        let fingerprint = second.rsplit(' ').next().unwrap_or_default().to_owned();
        // Keep draining stdout so the gateway never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok((addr, fingerprint, child))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        terminate(i64::from(self.child.id()));
        let _ = self.child.wait();
    }
}

/// A second gateway process of the same SP ([`Gateway::another`]), stopped when dropped.
pub struct OtherGateway {
    /// `127.0.0.1:port` it listens on.
    pub addr: String,
    child: Child,
}

impl Drop for OtherGateway {
    fn drop(&mut self) {
        terminate(i64::from(self.child.id()));
        let _ = self.child.wait();
    }
}
