//! `report.html` in a real browser: headless Chromium (Debian's `chromium`, which `.ci/run`
//! installs when missing) loads the sample's page at a phone's width and at a laptop's, and a
//! small script appended to a copy of the page writes what the browser measured into the DOM:
//! the width the page needs, and the bars each chart drew. The expected bars come from the CSV
//! files written beside the page, not from the page itself. Headless Chromium keeps its window
//! at least 500 px wide, so the page is measured inside an iframe of the width under test,
//! which posts the measurements to the outer page that --dump-dom prints.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

use crate::support::{repo_root, subaudit};

const HTML: &str = "report.html";

const MEASURE: &str = r#"<script>
(function () {
  var charts = {};
  document.querySelectorAll('[data-chart]').forEach(function (c) {
    charts[c.getAttribute('data-chart')] = c.querySelectorAll('.bar').length;
  });
  var wide = [];
  document.querySelectorAll('body *').forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (r.right > window.innerWidth + 0.5 && !e.closest('.scroll')) {
      wide.push(e.tagName + '.' + e.className + ' right=' + r.right);
    }
  });
  var out = document.createElement('pre');
  out.id = 'measured';
  out.textContent = JSON.stringify({
    inner_width: window.innerWidth,
    scroll_width: document.documentElement.scrollWidth,
    charts: charts,
    too_wide: wide.slice(0, 10)
  });
  document.body.appendChild(out);
  window.parent.postMessage(out.textContent, '*');
})();
</script>"#;

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
        {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !path.is_empty() {
                return PathBuf::from(path);
            }
        }
    }
    panic!("chromium is not installed: `apt-get install -y chromium` (.ci/run does it)");
}

/// Loads `page` in headless Chromium in a frame `width` wide and returns the DOM of the outer
/// page once the measurements arrived; with `screenshot`, saves a PNG of the top instead.
fn load(page: &Path, width: u32, profile: &Path, screenshot: Option<&Path>) -> String {
    let frame = page.with_file_name(format!("frame-{width}.html"));
    fs::write(
        &frame,
        format!(
            "<!doctype html><html><body style=\"margin:0\"><iframe src=\"{}\" style=\"width:{width}px;height:2400px;border:0\"></iframe><pre id=\"measured\"></pre><script>window.addEventListener('message',function(e){{document.getElementById('measured').textContent=e.data;}});</script></body></html>",
            page.file_name().unwrap().to_string_lossy()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--window-size={},2400", width.max(500)))
    // Lets the frame's message reach the outer page before the DOM is dumped.
    .arg("--virtual-time-budget=5000");
    match screenshot {
        Some(png) => cmd.arg(format!("--screenshot={}", png.display())),
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd
        .arg(format!("file://{}", frame.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn measured(dom: &str) -> Value {
    let start = dom
        .find("<pre id=\"measured\">")
        .expect("the measuring script ran")
        + "<pre id=\"measured\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap()
}

fn column(file: &Path, name: &str) -> Vec<(String, String)> {
    let mut reader = csv::Reader::from_path(file).unwrap();
    let headers = reader.headers().unwrap().clone();
    let at = headers.iter().position(|h| h == name).unwrap();
    let kind = headers.iter().position(|h| h == "kind");
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                kind.map(|k| r[k].to_string()).unwrap_or_default(),
                r[at].to_string(),
            )
        })
        .collect()
}

#[test]
fn the_sample_report_draws_its_charts_and_fits_a_phone() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("report");
    subaudit(&repo_root())
        .args([
            "audit",
            "--snapshot",
            "sample-data/owlie",
            "--map",
            "sample-data/owlie/mapping.csv",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let page = fs::read_to_string(out.join(HTML)).unwrap();
    assert!(page.contains("<meta name=\"viewport\""));
    assert!(
        !page.contains("<script") && !page.contains("http://") && !page.contains("src="),
        "the page is self-contained"
    );
    let measure = out.join("measure.html");
    fs::write(
        &measure,
        page.replace("</body>", &format!("{MEASURE}</body>")),
    )
    .unwrap();

    // What the charts must show, from the CSV files.
    let months: BTreeSet<String> = column(&out.join("usage_attribution.csv"), "month")
        .into_iter()
        .filter(|(kind, _)| kind == "reconciliation")
        .map(|(_, m)| m)
        .collect();
    let customers_losing: BTreeSet<String> =
        column(&out.join("optouts_lost.csv"), "target_customer")
            .into_iter()
            .map(|(_, c)| c)
            .collect();
    assert_eq!(months.len(), 13, "the sample covers 13 months");

    for width in [390, 1280] {
        let profile = TempDir::new().unwrap();
        let m = measured(&load(&measure, width, profile.path(), None));
        assert_eq!(m["inner_width"], width, "{m}");
        assert!(
            m["scroll_width"].as_u64().unwrap() <= width as u64,
            "the page overflows at {width} px: {m}"
        );
        assert_eq!(m["too_wide"].as_array().unwrap().len(), 0, "{m}");
        let charts = &m["charts"];
        assert_eq!(charts["cost-per-month"], months.len(), "{m}");
        assert_eq!(charts["reconciliation"], months.len(), "{m}");
        assert_eq!(charts["opt-out-timeline"], months.len(), "{m}");
        assert_eq!(charts["lost-per-customer"], customers_losing.len(), "{m}");
        // Screenshots to look at: SUBAUDIT_SCREENSHOTS=DIR keeps them.
        if let Ok(keep) = std::env::var("SUBAUDIT_SCREENSHOTS") {
            let png = Path::new(&keep).join(format!("report-{width}.png"));
            load(&out.join(HTML), width, profile.path(), Some(&png));
            assert!(png.exists());
        }
    }
}
