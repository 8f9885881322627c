"""Busybox web images for canary analysis: a "good" version answering every request 200, a "bad" one 20% 500.

Both are the same shell CGI (``/www/cgi-bin/index.cgi``, which busybox httpd
runs for ``/`` and for ``/metrics/``, a directory with no index page): a
request appends one line, ``CODE SECONDS``, to ``/var/requests`` (appends of
one short line need no lock), and ``/metrics`` (redirected by httpd to
``/metrics/``) reads that file back in Prometheus' text format:

- ``http_requests_total{code="200"|"500"}``, a counter (both codes always present, 0 until seen);
- ``http_request_duration_seconds``, a histogram (``_bucket{le}``, ``_sum``, ``_count``),
  timed from ``/proc/uptime`` read by the shell itself (hundredths of a second: busybox's ``date``
  has no ``%N``, and a clock read by another process would time its fork more than the app).

Every request takes 20 ms of "work" (``usleep``), as a real app's would, so the latency the
judge compares is the app's and not mostly fork-and-exec noise on a busy machine. The bad
version answers every fifth request 500. ``/health`` is a static file, so health checks
count nowhere. The page says the version, as the other test images do.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CGI = r"""#!/bin/sh
# One request: the app's answer, or its request counters at /metrics.
LOG=/var/requests
case "$REQUEST_URI" in
/metrics*)
  echo "Content-Type: text/plain; version=0.0.4"
  echo ""
  touch "$LOG"
  awk 'BEGIN { c["200"] = 0; c["500"] = 0; split("0.01 0.05 0.1 0.25 0.5 1", le, " ") }
       { d = $3 - $2; c[$1]++; n++; s += d; for (i = 1; i <= 6; i++) if (d <= le[i]) b[i]++ }
       END {
         print "# HELP http_requests_total Requests answered, by status code."
         print "# TYPE http_requests_total counter"
         for (k in c) printf "http_requests_total{code=\"%s\"} %d\n", k, c[k]
         print "# HELP http_request_duration_seconds How long requests took."
         print "# TYPE http_request_duration_seconds histogram"
         for (i = 1; i <= 6; i++) printf "http_request_duration_seconds_bucket{le=\"%s\"} %d\n", le[i], b[i] + 0
         printf "http_request_duration_seconds_bucket{le=\"+Inf\"} %d\n", n + 0
         printf "http_request_duration_seconds_sum %.2f\n", s + 0
         printf "http_request_duration_seconds_count %d\n", n + 0
       }' "$LOG"
  exit 0
  ;;
esac
# Timed with the shell's own read of /proc/uptime: no process started, so a busy machine's fork
# and exec delays do not count as the app's latency.
read -r START _ < /proc/uptime
CODE=200
if [ "$FAIL_EVERY" -gt 0 ] 2>/dev/null; then
  SEEN=$(wc -l < "$LOG" 2>/dev/null || echo 0)
  [ $(( (SEEN + 1) % FAIL_EVERY )) -eq 0 ] && CODE=500
fi
usleep 20000  # the app's work: 20 ms, so that a few ms of scheduling noise is not a change in latency
read -r BODY < /www/version
read -r END _ < /proc/uptime
# Counted before answering: the next request reads the count.
echo "$CODE $START $END" >> "$LOG"
if [ "$CODE" = 500 ]; then
  echo "Status: 500 Internal Server Error"
fi
echo "Content-Type: text/plain"
echo ""
echo "$BODY"
"""

DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
RUN ["/bin/busybox", "mkdir", "-p", "/var", "/tmp"]
ARG VERSION=unknown
ARG FAIL_EVERY=0
RUN echo "$VERSION" > /www/version
ENV FAIL_EVERY=$FAIL_EVERY
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""

# The versions the canary tests deploy, by name: (the page's text, every how many requests one answers 500; 0 never).
# v1 is production; good and bad are the new versions a canary analysis judges.
VERSIONS = {"v1": ("v1", 0), "good": ("v2-good", 0), "bad": ("v2-bad", 5)}


def write_context(directory: Path, busybox: str) -> None:
    """The build context of the canary images (one context; the version and failure rate are build args)."""
    (directory / "www" / "cgi-bin").mkdir(parents=True, exist_ok=True)
    (directory / "www" / "metrics").mkdir(exist_ok=True)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    shutil.copy(busybox, directory / "busybox")
    (directory / "www" / "health").write_text("ok\n")
    script = directory / "www" / "cgi-bin" / "index.cgi"
    script.write_text(CGI)
    script.chmod(0o755)


def build_canary_images(client, directory: Path, busybox: str, owner: str) -> dict[str, str]:
    """Build the images of :data:`VERSIONS`, labelled for removal by ``owner``; their names by version."""
    write_context(directory, busybox)
    names = {}
    for version, (text, fail_every) in VERSIONS.items():
        name = f"cdp-test/canary-web:{version}-{owner}"
        client.images.build(path=str(directory), tag=name, labels={"io.cdplatform.owner": owner}, rm=True,
                            buildargs={"VERSION": text, "FAIL_EVERY": str(fail_every)})
        names[version] = name
    return names
