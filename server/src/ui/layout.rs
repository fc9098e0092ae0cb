//! The page frame: navigation, the inline style sheet and live-update script, and the security
//! headers every dashboard response carries.
//!
//! The style sheet and the script are inline so a page is one request, and the
//! Content-Security-Policy allows exactly those two by their SHA-256: no other script runs, even
//! if some value escaped the templates' escaping, and nothing is loaded from another origin.

use std::sync::LazyLock;

use actix_web::http::{header, StatusCode};
use actix_web::middleware::DefaultHeaders;
use actix_web::HttpResponse;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use sha2::{Digest, Sha256};

use super::auth::Viewer;

/// The whole style sheet: system fonts only, so nothing is fetched.
const STYLE: &str = r#"
:root{--fg:#1d2433;--muted:#5b6475;--line:#dde1e8;--bg:#f6f7f9;--card:#fff;--ok:#17803d;--bad:#b42318;--warn:#9a6700;--accent:#2456c7}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:center;gap:18px;padding:10px 20px;background:#1d2433;color:#fff}
header .brand{font-weight:700;letter-spacing:.5px;margin-right:8px}
header a{color:#c9d4ea;text-decoration:none;padding:4px 2px}
header a.active{color:#fff;border-bottom:2px solid #7aa2ff}
header .spacer{flex:1}
header form{margin:0}
header button{background:none;border:1px solid #55607a;color:#c9d4ea;border-radius:4px;padding:2px 8px;cursor:pointer}
.live{font-size:12px;padding:2px 8px;border-radius:10px;background:#3a4356;color:#c9d4ea}
.live.on{background:#17803d;color:#fff}
main{max-width:1200px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:20px;margin:8px 0 12px}
h2{font-size:16px;margin:22px 0 8px}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);margin:6px 0 14px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef0f4;font-weight:600;font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.3px}
tr:last-child td{border-bottom:none}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:12.5px}
a{color:var(--accent)}
.muted{color:var(--muted)}
.ok{color:var(--ok);font-weight:600}
.bad{color:var(--bad);font-weight:600}
.warn{color:var(--warn);font-weight:600}
.error{color:var(--bad);white-space:pre-wrap;overflow-wrap:anywhere}
.why{overflow-wrap:anywhere}
.labels{margin:0;padding:0;list-style:none}
.labels li{display:inline-block;margin:1px 4px 1px 0;padding:0 6px;border:1px solid var(--line);border-radius:3px;background:#f3f5f9;font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:11.5px;word-break:break-all}
.pill{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;background:#eef0f4}
.pill.ok{background:#dcf5e3}.pill.bad{background:#fde4e1}.pill.warn{background:#fff1c2}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:12px 16px;margin:10px 0}
form.inline{display:inline;margin:0}
button.act{background:var(--accent);color:#fff;border:0;border-radius:4px;padding:3px 10px;cursor:pointer;font-size:12.5px}
button.act.danger{background:var(--bad)}
input[type=text],input[type=password],input[type=search]{padding:5px 8px;border:1px solid var(--line);border-radius:4px;font:inherit}
.pager{margin:10px 0}
"#;

/// Live updates: on each `change` event from `/ui/live`, fetch the page again and swap its
/// `<main>` (debounced, so a burst of publishes costs one fetch), unless a confirmation is
/// open or someone is typing in a form. Pages work without it.
const SCRIPT: &str = r#"
(function(){
  if(!window.EventSource||!window.fetch||!window.DOMParser)return;
  var badge=document.getElementById('live');
  var es=new EventSource('/ui/live');
  var timer=null;
  es.onopen=function(){if(badge){badge.textContent='live';badge.className='live on';}};
  es.onerror=function(){if(badge){badge.textContent='offline';badge.className='live';}};
  es.addEventListener('change',function(){if(!timer)timer=setTimeout(refresh,150);});
  function refresh(){
    timer=null;
    if(document.querySelector('main form.confirm'))return;
    var f=document.activeElement;if(f&&f.closest&&f.closest('main form'))return;
    fetch(location.href,{credentials:'same-origin'}).then(function(r){return r.ok?r.text():null;}).then(function(t){
      if(!t)return;
      var fresh=new DOMParser().parseFromString(t,'text/html').querySelector('main');
      var cur=document.querySelector('main');
      if(fresh&&cur){cur.replaceWith(document.importNode(fresh,true));document.dispatchEvent(new Event('ferry:refreshed'));}
    });
  }
})();
"#;

fn sha256_b64(s: &str) -> String {
    STANDARD.encode(Sha256::digest(s.as_bytes()))
}

/// The policy: nothing by default; the one style sheet and the one script by hash; fetch and
/// EventSource to this origin only; forms post here only; no framing.
static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; connect-src 'self'; \
         img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        sha256_b64(STYLE),
        sha256_b64(SCRIPT)
    )
});

/// Headers on every `/ui` response. `Referrer-Policy: same-origin` keeps the `Origin` header on
/// the dashboard's own POSTs, which the CSRF check reads.
pub(super) fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CSP.as_str()))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add((header::CACHE_CONTROL, "no-store"))
}

/// The navigation entries: (path, label, key).
const NAV: [(&str, &str, &str); 4] = [
    ("/ui/images", "Images", "images"),
    ("/ui/pipelines", "Pipelines", "pipelines"),
    ("/ui/clusters", "Clusters", "clusters"),
    ("/ui/events", "Events", "events"),
];

/// A page in the frame, 200 OK.
pub(super) fn page(viewer: &Viewer, title: &str, active: &str, body: Markup) -> HttpResponse {
    page_with_status(StatusCode::OK, viewer, title, active, body)
}

/// A page in the frame with `status`.
pub(super) fn page_with_status(
    status: StatusCode,
    viewer: &Viewer,
    title: &str,
    active: &str,
    body: Markup,
) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ferry" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    span.brand { "ferry" }
                    @for (path, label, key) in NAV {
                        a href=(path) class=[(key == active).then_some("active")] { (label) }
                    }
                    span.spacer {}
                    span #live .live title="live updates (Server-Sent Events)" { "static" }
                    @match &viewer.principal {
                        Some(p) => {
                            span.muted { (p.name) " (" (p.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")) ")" }
                            form method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button type="submit" { "Log out" }
                            }
                        }
                        None => {
                            a href="/ui/login" { "Log in" }
                        }
                    }
                }
                main { (body) }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// A bare page outside the frame (the login form and refusals before a session exists).
pub(super) fn bare(status: StatusCode, title: &str, body: Markup) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · ferry" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { span.brand { "ferry" } }
                main { (body) }
            }
        }
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// A plain-text answer.
pub(super) fn plain(status: StatusCode, text: &'static str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(text)
}

/// 303 See Other to `to` (after a POST, so a reload does not repeat it).
pub(super) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

#[cfg(test)]
pub(super) fn csp() -> &'static str {
    CSP.as_str()
}
