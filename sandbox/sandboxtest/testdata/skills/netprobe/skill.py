"""Conformance skill netprobe: egress attempts through the proxy and around it.

params: {"urls": [...], "connect": ["host:port", ...], "direct": [[host, port], ...]}
Returns the attack-report shape {"probes": {name: {"ok", "data"|"err"}}, "info": {...}}:
  get:URL         urllib GET (honours HTTP_PROXY/HTTPS_PROXY); ok on any 2xx/3xx
  connect:H:P     a CONNECT tunnel through the proxy; ok if the proxy answers 200
  tcp:H:P         a direct TCP connect that ignores the proxy; ok if it connects
Under Pyodide (sys.platform "emscripten") Python has no sockets: the same
probes go through Deno (js.fetch, which honours the proxy variables of the
Deno process, and Deno.connect).
"""
import http.client
import os
import socket
import sys
import urllib.error
import urllib.request

from skillware.core.base_skill import BaseSkill


def probe(rep, name, fn):
    try:
        rep["probes"][name] = {"ok": True, "data": fn()}
    except Exception as e:
        rep["probes"][name] = {"ok": False, "err": "%s: %s" % (type(e).__name__, e)}


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return "%d %s" % (r.status, r.read(200).decode("latin-1"))
    except urllib.error.HTTPError as e:
        raise Exception("HTTP %d: %s" % (e.code, e.read(200).decode("latin-1")))


def connect(target):
    proxy = os.environ.get("HTTPS_PROXY", "")
    if not proxy.startswith("http://"):
        raise Exception("no proxy configured")
    ph, pp = proxy[len("http://"):].rstrip("/").rsplit(":", 1)
    c = http.client.HTTPConnection(ph, int(pp), timeout=5)
    try:
        c.request("CONNECT", target, headers={"Host": target})
        r = c.getresponse()
        if r.status != 200:
            raise Exception("CONNECT %d: %s" % (r.status, r.read(200).decode("latin-1")))
        return "tunnel open"
    finally:
        c.close()


def tcp(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((host, port))
        s.sendall(b"pwned-from-sandbox\n")
        return "connected"
    finally:
        s.close()


class NetProbe(BaseSkill):
    @property
    def manifest(self):
        return {"name": "netprobe"}

    def execute(self, params):
        rep = {"probes": {}, "info": {"proxy": os.environ.get("HTTP_PROXY", "")}}
        for u in params.get("urls", []):
            probe(rep, "get:" + u, lambda u=u: get(u))
        for t in params.get("connect", []):
            probe(rep, "connect:" + t, lambda t=t: connect(t))
        for h, p in params.get("direct", []):
            probe(rep, "tcp:%s:%d" % (h, p), lambda h=h, p=p: tcp(h, p))
        return rep

    if sys.platform == "emscripten":

        async def execute(self, params):
            import js

            async def aprobe(rep, name, coro):
                try:
                    rep["probes"][name] = {"ok": True, "data": await coro}
                except BaseException as e:
                    rep["probes"][name] = {"ok": False, "err": "%s: %s" % (type(e).__name__, str(e)[:300])}

            async def aget(url):
                r = await js.fetch(url)
                body = (await r.text())[:200]
                if r.status >= 400:
                    raise Exception("HTTP %d: %s" % (r.status, body))
                return "%d %s" % (r.status, body)

            async def araw(host, port, payload):
                opts = js.Object.fromEntries([["hostname", host.strip("[]")], ["port", int(port)]])
                c = await js.Deno.connect(opts)
                try:
                    await c.write(js.TextEncoder.new().encode(payload))
                    buf = js.Uint8Array.new(200)
                    n = await c.read(buf)
                    return js.TextDecoder.new().decode(buf.subarray(0, n or 0))
                finally:
                    c.close()

            async def aconnect(target):
                out = await araw("127.0.0.1", 3128, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target))
                if " 200" not in out.split("\r\n", 1)[0]:
                    raise Exception("CONNECT: " + out[:200])
                return "tunnel open"

            rep = {"probes": {}, "info": {"proxy": "deno"}}
            for u in params.get("urls", []):
                await aprobe(rep, "get:" + u, aget(u))
            for t in params.get("connect", []):
                await aprobe(rep, "connect:" + t, aconnect(t))
            for h, p in params.get("direct", []):
                await aprobe(rep, "tcp:%s:%d" % (h, p), araw(h, p, "pwned-from-sandbox\n"))
            return rep
