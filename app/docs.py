"""``GET /openapi.json`` and ``GET /docs`` (a self-contained page: no CDN at run time)."""

from __future__ import annotations

from flask import Blueprint, Response

from app.openapi import document
from app.state import json_response, state

bp = Blueprint("docs", __name__)

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>caretflow API</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:60em}code,pre{background:#f4f4f4}
h2{margin-top:1.5em}.m{font-weight:bold;text-transform:uppercase;width:4em;display:inline-block}
pre{padding:.6em;overflow:auto;max-height:20em}</style></head><body>
<h1 id="t">caretflow API</h1><p>OpenAPI document: <a href="openapi.json">/openapi.json</a>.
Send the key in the <code>X-API-Key</code> header.</p><div id="r"></div>
<script>
fetch("openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("t").textContent = doc.info.title;
  const out = document.getElementById("r");
  for (const [path, ops] of Object.entries(doc.paths)) for (const [m, op] of Object.entries(ops)) {
    const d = document.createElement("div");
    const h = document.createElement("h2");
    h.innerHTML = '<span class="m"></span><code></code>';
    h.children[0].textContent = m; h.children[1].textContent = path;
    const p = document.createElement("p");
    p.textContent = op.summary + (op.description ? " " + op.description : "") +
      " Responses: " + Object.keys(op.responses).join(", ");
    d.append(h, p);
    if (op.requestBody) { const pre = document.createElement("pre");
      pre.textContent = JSON.stringify(op.requestBody.content["application/json"].schema, null, 1);
      d.append(pre); }
    out.append(d);
  }
  const s = document.createElement("pre");
  s.textContent = JSON.stringify(doc.components.schemas, null, 1);
  const h = document.createElement("h2"); h.textContent = "Schemas"; out.append(h, s);
});
</script></body></html>"""


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI document."""
    st = state()
    if "openapi" not in st.cache:
        st.cache["openapi"] = document(st.requests, st.store.name)
    return json_response(st.cache["openapi"])


@bp.get("/docs")
def docs():
    """A small offline API page rendered from /openapi.json."""
    return Response(PAGE, mimetype="text/html")
