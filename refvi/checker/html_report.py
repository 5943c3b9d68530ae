"""``refvi verify --html FILE``: one self-contained HTML page per run.

The page shows each derivation as written, prose and displays, with every
displayed line marked by its verdict (holds, fails, undetermined, unchecked
or unsupported), its deviation, margin, route and hint, and a summary at the
top. Math is rendered by KaTeX, shipped inside refvi (``html_assets/``, MIT
licence in ``KATEX_LICENSE``) and inlined with its fonts, so the page needs
no network; where KaTeX is not available the LaTeX source stays visible.
The verdicts are read from the report's result objects
(:func:`refvi.checker.ci_report.verdict_of`).
"""

import base64
import html
import json
import re
from importlib import resources

from refvi.checker.ci_report import _describe, verdict_of

__all__ = ["html_page"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; color: #222; }
.summary { border: 1px solid #ccc; border-radius: 6px; padding: 0.5rem 1rem; }
.summary .fails, .badge.fails { color: #fff; background: #c62828; }
.summary .holds, .badge.holds { color: #fff; background: #2e7d32; }
.badge.undetermined, .summary .undetermined { color: #000; background: #f9a825; }
.badge.unchecked, .badge.unsupported, .summary .unchecked, .summary .unsupported
  { color: #000; background: #ddd; }
.summary span, .badge { border-radius: 4px; padding: 0 0.4rem; font-size: 0.9rem; }
.display { margin: 1rem 0; padding: 0.3rem 0.8rem; border-left: 6px solid #ccc; }
.display.holds { border-color: #2e7d32; }
.display.fails { border-color: #c62828; background: #fdecea; }
.display.undetermined { border-color: #f9a825; background: #fff8e1; }
.verdict { font-size: 0.85rem; color: #444; }
.latex-source { font-family: monospace; white-space: pre-wrap; }
pre { background: #f6f8fa; padding: 0.5rem; overflow-x: auto; font-size: 0.85rem; }
.error { color: #c62828; font-family: monospace; }
"""

#: Counts script errors and console.error calls into <html data-errors>, so a
#: headless browser's DOM dump shows whether the page ran cleanly.
_WATCH = """
(function () {
  var root = document.documentElement, count = 0;
  function note() { count += 1; root.setAttribute("data-errors", String(count)); }
  window.addEventListener("error", note);
  var original = console.error;
  console.error = function () { note(); return original.apply(console, arguments); };
  root.setAttribute("data-errors", "0");
})();
"""

_RENDER = """
document.querySelectorAll(".math").forEach(function (el) {
  if (typeof katex === "undefined") { return; }
  try {
    katex.render(el.getAttribute("data-latex"), el,
                 {displayMode: true, throwOnError: false});
  } catch (e) { /* keep the LaTeX source */ }
});
if (typeof renderMathInElement !== "undefined") {
  document.querySelectorAll(".prose").forEach(function (el) {
    renderMathInElement(el, {delimiters: [{left: "$", right: "$", display: false}],
                             throwOnError: false});
  });
}
document.body.setAttribute("data-rendered", typeof katex !== "undefined");
"""


def _asset(name):
    return resources.files("refvi.checker").joinpath("html_assets", name)


def _katex():
    """(css, js) of KaTeX with its woff2 fonts inlined, or ("", "") if absent."""
    try:
        css = _asset("katex.min.css").read_text(encoding="utf-8")
        js = _asset("katex.min.js").read_text(encoding="utf-8")
        js += "\n" + _asset("auto-render.min.js").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return "", ""
    # woff2 only: drop the woff and ttf fallbacks, inline the woff2 files
    css = re.sub(
        r',url\(fonts/[^)]+\.(?:woff|ttf)\) format\("(?:woff|truetype)"\)', "", css
    )

    def inline(match):
        data = _asset("fonts").joinpath(match.group(1)).read_bytes()
        return f"url(data:font/woff2;base64,{base64.b64encode(data).decode()})"

    css = re.sub(r"url\(fonts/([^)]+\.woff2)\)", inline, css)
    return css, js.replace("</script", "<\\/script")


def _inline(text):
    """Escaped prose with `code` and **bold**; $math$ is left for KaTeX."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _badge(verdict):
    return f'<span class="badge {verdict}">{verdict}</span>'


def _display(latex, line, result):
    verdict = verdict_of(result) if result is not None else "unchecked"
    detail = _describe(result) if result is not None else "no verdict"
    return (
        f'<div class="display {verdict}" id="L{line}" data-verdict="{verdict}">'
        f'<div class="math latex-source" data-latex="{html.escape(latex)}">'
        f"{html.escape(latex)}</div>"
        f'<div class="verdict">L{line} {_badge(verdict)} {html.escape(detail)}</div>'
        "</div>"
    )


def _body(source, by_line):
    """The derivation's Markdown as HTML blocks, displays marked."""
    lines = source.splitlines()
    blocks, para = [], []
    i = 0
    if lines and lines[0].strip() == "---":
        end = next((j for j in range(1, len(lines)) if lines[j].strip() == "---"), 0)
        meta = "\n".join(lines[1:end])
        blocks.append(f'<pre class="front-matter">{html.escape(meta)}</pre>')
        i = end + 1

    def flush():
        if para:
            blocks.append(f'<p class="prose">{_inline(" ".join(para))}</p>')
            para.clear()

    while i < len(lines):
        text = lines[i]
        stripped = text.strip()
        if stripped.startswith("```"):
            flush()
            fence, body = stripped[:3], []
            info = stripped[3:].strip()
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                body.append(lines[i])
                i += 1
            label = f"{info}\n" if info else ""
            blocks.append(f"<pre>{html.escape(label + chr(10).join(body))}</pre>")
        elif stripped.startswith("$$"):
            flush()
            start, chunk = i + 1, [stripped[2:]]
            while not (chunk[-1].rstrip().endswith("$$") and len("".join(chunk)) > 0):
                i += 1
                if i >= len(lines):
                    break
                chunk.append(lines[i])
            latex = "\n".join(chunk).strip()
            latex = latex[:-2] if latex.endswith("$$") else latex
            blocks.append(_display(latex.strip(), start, by_line.get(start)))
        elif stripped.startswith("#"):
            flush()
            level = min(len(stripped) - len(stripped.lstrip("#")), 6)
            title = _inline(stripped.lstrip("#").strip())
            blocks.append(f'<h{level} class="prose">{title}</h{level}>')
        elif not stripped:
            flush()
        else:
            para.append(stripped.lstrip("> "))
        i += 1
    flush()
    return "\n".join(blocks)


def _summary(results, errors):
    counts = {}
    for result in results:
        for line in result.lines:
            counts[verdict_of(line)] = counts.get(verdict_of(line), 0) + 1
    spans = " ".join(
        f'<span class="{v}">{n} {v}</span>' for v, n in sorted(counts.items())
    )
    failing = [
        f'<li><a href="#{_anchor(r.path)}-L{line.line}">{html.escape(str(r.path))}'
        f":{line.line}</a> {html.escape(_describe(line))}</li>"
        for r in results
        for line in r.lines
        if verdict_of(line) == "fails"
    ]
    errs = [f'<li class="error">{html.escape(e)}</li>' for e in errors]
    return (
        '<div class="summary" id="summary">'
        f"<p>{len(results)} files checked: {spans or 'no lines'}</p>"
        + (f"<p>Failing lines:</p><ul>{''.join(failing)}</ul>" if failing else "")
        + (f"<p>Errors:</p><ul>{''.join(errs)}</ul>" if errs else "")
        + "</div>"
    )


def _anchor(path):
    return re.sub(r"[^A-Za-z0-9]+", "-", str(path)).strip("-")


def html_page(results, sources, errors=()):
    """The page for ``results`` (FileResult), ``sources`` their Markdown texts
    (same order) and ``errors`` the malformed-input messages; a string."""
    css, js = _katex()
    sections = []
    for result, source in zip(results, sources, strict=True):
        by_line = {line.line: line for line in result.lines}
        body = _body(source, by_line)
        anchor = _anchor(result.path)
        body = body.replace('id="L', f'id="{anchor}-L')
        settings = ", ".join(result.settings)
        sections.append(
            f'<section id="{anchor}"><h1>{html.escape(str(result.path))}</h1>'
            f"<p>settings: {html.escape(settings)}; {result.seeds} seeds each</p>"
            f"{body}</section>"
        )
    title = "refvi verify: " + ", ".join(str(r.path) for r in results)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        f"<script>{_WATCH}</script>"
        f"<style>{css}</style><style>{_STYLE}</style></head><body>"
        f"{_summary(results, errors)}{''.join(sections)}"
        f"<script>{js}</script><script>{_RENDER}</script>"
        f'<script type="application/json" id="verdicts">'
        f"{html.escape(json.dumps(_verdicts(results)), quote=False)}</script>"
        "</body></html>\n"
    )


def _verdicts(results):
    return {
        str(r.path): {str(line.line): verdict_of(line) for line in r.lines}
        for r in results
    }
