"""Conformance skill netprobe: egress attempts through the proxy and around it.

params: {"urls": [...], "connect": ["host:port", ...], "direct": [[host, port], ...]}
Returns the attack-report shape {"probes": {name: {"ok", "data"|"err"}}, "info": {...}}:
  get:URL         urllib GET (honours HTTP_PROXY/HTTPS_PROXY); ok on any 2xx/3xx
  connect:H:P     a CONNECT tunnel through the proxy; ok if the proxy answers 200
  tcp:H:P         a direct TCP connect that ignores the proxy; ok if it connects
"""
import http.client
import os
import socket
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
