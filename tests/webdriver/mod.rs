//! A real browser for the end-to-end tests: Debian's headless Chromium driven through
//! chromedriver (WebDriver) with fantoccini. One chromedriver per test, on a free
//! loopback port, killed with its browser when the test ends; tests in one binary take
//! turns, so two browsers never compete for the machine's two cores.
//!
//! When chromedriver or Chromium is missing, [`Chrome::start`] prints why and returns
//! `None` so the test passes as skipped — unless `DIALTONE_TEST_REQUIRE_BROWSER` is set
//! (CI sets it), where a missing browser fails the test.
#![allow(dead_code)]

pub mod authenticator;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Every wait in these tests ends by then.
pub const WAIT: Duration = Duration::from_secs(10);

/// Browser sessions in this test binary run one at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A chromedriver process (in its own process group, with the Chromium it starts).
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browser it started. Spelled `-s KILL --`
        // on purpose: procps `kill -KILL -12345` reads "-1…" as a signal number and the
        // rest as nothing, which signals process group -1 — every process on the machine.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use super::common::free_port;

/// Why the browser tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    for (path, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
        if !Path::new(path).exists() {
            return Some(format!(
                "{path} is not installed (apt-get install {package})"
            ));
        }
    }
    None
}

/// One browser window in a fresh profile, with the test's turn held.
pub struct Chrome {
    pub client: Client,
    pub base: String,
    driver: Driver,
    /// `None` for a second window opened beside one that holds the turn.
    _turn: Option<tokio::sync::MutexGuard<'static, ()>>,
}

/// Chromium's switches for a page that uses the microphone: a fake device, and the
/// permission granted without a prompt.
pub const FAKE_MEDIA: &[&str] = &[
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
];

impl Chrome {
    /// A new headless browser (1280×800) for the portal at `base`, or `None` (with the
    /// reason printed) when there is no browser on this machine.
    pub async fn start(base: &str) -> Option<Chrome> {
        Chrome::start_with(base, &[]).await
    }

    /// [`Chrome::start`] with more Chromium switches (like [`FAKE_MEDIA`]).
    pub async fn start_with(base: &str, extra_args: &[&str]) -> Option<Chrome> {
        if let Some(reason) = missing() {
            if std::env::var_os("DIALTONE_TEST_REQUIRE_BROWSER").is_some() {
                panic!("DIALTONE_TEST_REQUIRE_BROWSER is set but {reason}");
            }
            eprintln!("SKIPPED: browser test: {reason}");
            return None;
        }
        let turn = TURN.lock().await;
        Some(Chrome::launch(base, extra_args, Some(turn)).await)
    }

    /// A second browser (its own profile and cookies) beside this one, sharing its turn:
    /// for two people calling each other.
    pub async fn another(&self, extra_args: &[&str]) -> Chrome {
        Chrome::launch(&self.base, extra_args, None).await
    }

    async fn launch(
        base: &str,
        extra_args: &[&str],
        turn: Option<tokio::sync::MutexGuard<'static, ()>>,
    ) -> Chrome {
        let port = free_port();
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let child = command.spawn().expect("chromedriver starts");
        let driver = Driver { child, port };
        let url = format!("http://127.0.0.1:{port}");
        wait_until_ready(&url).await;

        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
            "--hide-scrollbars",
            "--force-color-profile=srgb",
            "--font-render-hinting=none",
            "--lang=en-US",
            // Nothing of Google's to reach on a closed network: no lookups and refused
            // connections at every start.
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
        ];
        args.extend_from_slice(extra_args);
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
            }
        });
        let caps = match caps {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        // Generous: on a loaded two-core machine a cold start can take long.
        let client = tokio::time::timeout(
            Duration::from_secs(90),
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&url),
        )
        .await
        .expect("chromium starts in time")
        .expect("a WebDriver session");
        Chrome {
            client,
            base: base.to_owned(),
            driver,
            _turn: turn,
        }
    }

    /// Ends the browser session (the driver is killed on drop in any case).
    pub async fn close(self) {
        let Chrome { client, driver, .. } = self;
        let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        drop(driver);
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{}", self.base, path))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// Waits (bounded) until the page is at `path` and loaded.
    pub async fn wait_path(&self, path: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.path().await;
            let ready = self.js("return document.readyState").await;
            if now == path && ready == "complete" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "expected to be at {path}, still at {now}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(e) => return e,
                Err(e) => assert!(Instant::now() < deadline, "no element {css}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Waits (bounded) until the element's text contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                if let Ok(t) = e.text().await {
                    if t.contains(needle) {
                        return t;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{css} says {t:?}, expected it to contain {needle:?}"
                    );
                }
            }
            assert!(Instant::now() < deadline, "no element {css}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a script in the page; returns its value as a string (JSON for non-strings).
    pub async fn js(&self, script: &str) -> String {
        match self.client.execute(script, vec![]).await {
            Ok(Value::String(s)) => s,
            Ok(v) => v.to_string(),
            Err(e) => panic!("script failed: {e}\n{script}"),
        }
    }

    pub async fn js_value(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Types into a field found by CSS (clicking it first, as a mouse user would).
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    // ---- The keyboard alone ----

    /// Presses keys on the keyboard (text, or [`Key`] characters), whatever has focus.
    pub async fn keys(&self, text: &str) {
        let mut actions = KeyActions::new("keyboard".to_owned());
        for c in text.chars() {
            actions = actions
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c });
        }
        self.client.perform_actions(actions).await.unwrap();
    }

    pub async fn press(&self, key: Key) {
        self.keys(&char::from(key).to_string()).await;
    }

    /// A short description of the focused element, e.g. `input#username` or `a[Forgot password?]`.
    pub async fn focused(&self) -> String {
        self.js("const e = document.activeElement; if (!e) return '';
             const text = (e.innerText || e.value || '').trim().slice(0, 40);
             return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '[' + text + ']';")
            .await
    }

    /// Presses Tab until the focused element's description contains `target` (bounded),
    /// checking on the way that every stop shows a visible focus indicator.
    pub async fn tab_to(&self, target: &str) {
        let mut seen = Vec::new();
        for _ in 0..40 {
            self.press(Key::Tab).await;
            let now = self.focused().await;
            assert!(
                self.focus_is_visible().await,
                "{now} has focus but no visible focus indicator"
            );
            if now.contains(target) {
                return;
            }
            seen.push(now);
        }
        panic!("Tab never reached {target}; focus went through {seen:?}");
    }

    /// Whether the focused element draws an outline or a box shadow.
    pub async fn focus_is_visible(&self) -> bool {
        self.js_value(
            "const e = document.activeElement; if (!e || e === document.body) return true;
             const s = getComputedStyle(e);
             const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
             return outline || (s.boxShadow && s.boxShadow !== 'none');",
        )
        .await
            == Value::Bool(true)
    }

    /// Runs `source` in every page this window opens from now on, before the page's own
    /// scripts and before its HTML is parsed (Chromium's DevTools protocol).
    pub async fn on_new_document(&self, source: &str) {
        let session = self.client.session_id().await.unwrap().expect("a session");
        let r = reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{}/session/{session}/goog/cdp/execute",
                self.driver.port
            ))
            .header("content-type", "application/json")
            .body(
                json!({
                    "cmd": "Page.addScriptToEvaluateOnNewDocument",
                    "params": { "source": source }
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    // ---- Pages ----

    /// Sets the theme as a returning visitor would have it stored, and reloads.
    pub async fn set_theme(&self, theme: &str) {
        self.js(&format!(
            "localStorage.setItem('dialtone-theme', '{theme}'); return ''"
        ))
        .await;
        self.client.refresh().await.unwrap();
        let now = self
            .js("return document.documentElement.dataset.theme")
            .await;
        assert_eq!(now, theme);
    }

    /// Resizes the window and waits (up to 5 s) until the page sees the new width: a
    /// headless window may take its new size a moment after the command has answered.
    pub async fn set_size(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.js("return String(window.innerWidth)").await != width.to_string()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG of the viewport under `target/screenshots/`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Accessibility checks every page must pass; panics with the problems found.
    pub async fn audit(&self) {
        let problems = self.js_value(AUDIT).await;
        let path = self.path().await;
        assert_eq!(problems, json!([]), "accessibility problems on {path}");
    }

    /// Every visible piece of text on the page, in its computed colour on the background
    /// behind it, meets WCAG AA (4.5:1; 3:1 for large text). Disabled controls are exempt.
    pub async fn audit_contrast(&self) {
        let problems = self.js_value(CONTRAST).await;
        let path = self.path().await;
        let theme = self
            .js("return document.documentElement.dataset.theme")
            .await;
        assert_eq!(
            problems,
            json!([]),
            "text below WCAG AA contrast on {path} ({theme} theme)"
        );
    }

    /// Sets the viewport (not the window) to `width`×`height` CSS pixels.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        self.set_size(width, height).await;
        let inner: Value = self
            .js_value("return [window.innerWidth, window.innerHeight]")
            .await;
        let (w, h) = (
            inner[0].as_u64().unwrap() as u32,
            inner[1].as_u64().unwrap() as u32,
        );
        self.set_size(
            width + (width - w.min(width)),
            height + (height - h.min(height)),
        )
        .await;
    }

    /// No horizontal scrolling at the current width.
    pub async fn assert_fits_width(&self) {
        let (scroll, inner) = (
            self.js("return String(document.scrollingElement.scrollWidth)")
                .await,
            self.js("return String(window.innerWidth)").await,
        );
        let (scroll, inner): (u32, u32) = (scroll.parse().unwrap(), inner.parse().unwrap());
        let path = self.path().await;
        assert!(
            scroll <= inner,
            "{path} scrolls sideways at {inner}px: content is {scroll}px wide"
        );
    }
}

pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}

async fn wait_until_ready(url: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(r) = client.get(format!("{url}/status")).send().await {
            if let Ok(body) = r.text().await {
                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                if v["value"]["ready"] == Value::Bool(true) {
                    return;
                }
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Run in the page: every control a person can reach has a label; every field marked
/// invalid names its error, which exists and is visible; every field error is named by
/// its field; error summaries are announced; images have alt text; the page has one h1.
const AUDIT: &str = r#"
const problems = [];
const describe = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.name ? '[name=' + e.name + ']' : '');
for (const e of document.querySelectorAll('input, select, textarea')) {
  if (e.type === 'hidden' || e.hidden) continue;
  const named = (e.labels && e.labels.length > 0 && [...e.labels].some(l => l.textContent.trim() !== ''))
    || (e.getAttribute('aria-label') || '').trim() !== '';
  if (!named) problems.push(describe(e) + ' has no label');
}
for (const e of document.querySelectorAll('button, a[href], summary')) {
  const name = (e.getAttribute('aria-label') || e.textContent || '').trim();
  if (name === '') problems.push(describe(e) + ' has no accessible name');
}
for (const e of document.querySelectorAll('[aria-describedby]')) {
  for (const id of e.getAttribute('aria-describedby').split(/\s+/).filter(Boolean)) {
    if (!document.getElementById(id)) problems.push(describe(e) + ' is described by missing #' + id);
  }
}
for (const e of document.querySelectorAll('[aria-invalid="true"]')) {
  const ids = (e.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
  const errors = ids.map(id => document.getElementById(id)).filter(d => d && d.classList.contains('field-error'));
  if (errors.length === 0) problems.push(describe(e) + ' is invalid but names no error');
}
for (const err of document.querySelectorAll('.field-error')) {
  if (!err.id || !document.querySelector('[aria-describedby~="' + err.id + '"]'))
    problems.push('field error "' + err.textContent.trim() + '" is tied to no field');
}
for (const a of document.querySelectorAll('.alert-error')) {
  const live = a.getAttribute('role') === 'alert' || a.closest('[aria-live]');
  if (!live) problems.push('error "' + a.textContent.trim() + '" is not announced');
}
if (document.querySelectorAll('.field-error').length > 0 || document.querySelectorAll('[aria-invalid="true"]').length > 0) {
  if (!document.querySelector('[role="alert"]')) problems.push('errors on the page but nothing announced');
}
for (const img of document.querySelectorAll('img')) {
  if (!img.hasAttribute('alt')) problems.push('img ' + img.src + ' has no alt');
}
if (document.querySelectorAll('h1').length !== 1) problems.push('the page should have one h1');
if (!document.documentElement.lang) problems.push('html has no lang');
if (!document.title.trim()) problems.push('the page has no title');
const ids = {};
for (const e of document.querySelectorAll('[id]')) {
  if (ids[e.id]) problems.push('duplicate id ' + e.id);
  ids[e.id] = true;
}
return problems;
"#;

/// Run in the page: the contrast of each visible element's own text against the first
/// opaque background behind it.
const CONTRAST: &str = r#"
const parse = (c) => { const m = c.match(/[\d.]+/g) || []; return m.map(Number); };
const lin = (v) => { v = v / 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)]; return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
const backdrop = (e) => {
  for (let n = e; n; n = n.parentElement) {
    const c = parse(getComputedStyle(n).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
  }
  return parse(getComputedStyle(document.body).backgroundColor).slice(0, 3);
};
const problems = [];
for (const e of document.body.querySelectorAll('*')) {
  const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim() !== '');
  if (!own) continue;
  const rect = e.getBoundingClientRect();
  const s = getComputedStyle(e);
  if (rect.width < 2 || rect.height < 2 || s.visibility === 'hidden') continue;
  if (e.closest('.visually-hidden, [hidden], details:not([open]) > :not(summary)')) continue;
  if (e.closest(':disabled, [aria-disabled="true"]')) continue;
  if (e.closest('.skip-link') && document.activeElement !== e) continue;
  const fg = parse(s.color);
  if (fg.length === 4 && fg[3] < 1) { problems.push(e.tagName + ' has translucent text'); continue; }
  const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
  const large = size >= 24 || (bold && size >= 18.66);
  const r = ratio(fg.slice(0, 3), backdrop(e));
  if (r < (large ? 3 : 4.5)) {
    problems.push(e.tagName.toLowerCase() + ' "' + e.textContent.trim().slice(0, 40) + '" ' + r.toFixed(2) + ':1');
  }
}
return problems;
"#;
