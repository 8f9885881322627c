"""The canary analysis' real parts on their own: the test images' counters, scraped by a real Prometheus."""

from __future__ import annotations

import http.client
import time

from apps.deployments.providers import docker as provider


def request(port: int, path: str = "/") -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode().strip()
    finally:
        connection.close()


def run(docker_client, image: str, server_group: str) -> int:
    """Start one container as the Docker provider would for ``server_group``; its published port."""
    labels = provider.labels_for(application="shop", cluster=server_group.rsplit("-", 1)[0],
                                 server_group=server_group, version=0)
    container = docker_client.containers.run(image, detach=True, init=True, labels=labels,
                                             ports={"8080/tcp": ("127.0.0.1", None)})
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])


def listening(port: int) -> None:
    """Wait (up to 5 s) until httpd answers on ``port``."""
    deadline = time.monotonic() + 5
    while True:
        try:
            request(port, "/health")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_bad_image_answers_every_fifth_request_500_and_both_count_what_they_answered(canary_images,
                                                                                         docker_client):
    good, bad = (run(docker_client, canary_images[v], f"shop-web-{v}-v000") for v in ("good", "bad"))
    for port in (good, bad):
        listening(port)

    good_codes = [request(good)[0] for _ in range(10)]
    bad_answers = [request(bad) for _ in range(10)]

    assert good_codes == [200] * 10
    assert [code for code, _ in bad_answers] == [200, 200, 200, 200, 500] * 2
    assert {body for _, body in bad_answers} == {"v2-bad"}
    status, metrics = request(bad, "/metrics/")
    assert status == 200
    assert 'http_requests_total{code="200"} 8' in metrics and 'http_requests_total{code="500"} 2' in metrics
    assert 'http_request_duration_seconds_bucket{le="+Inf"} 10' in metrics
    assert "http_request_duration_seconds_count 10" in metrics
    assert request(good, "/health") == (200, "ok")  # a health check counts nowhere
    assert 'http_requests_total{code="200"} 10' in request(good, "/metrics/")[1]


def test_prometheus_finds_the_server_groups_containers_on_the_engine_and_labels_them(canary_images, docker_client,
                                                                                    prometheus):
    port = run(docker_client, canary_images["bad"], "shop-web-canary-v000")
    run(docker_client, canary_images["good"], "shop-web-baseline-v000")

    prometheus.wait_for(lambda: len([t for t in prometheus.targets() if t["health"] == "up"]) == 2, 30,
                        "both containers scraped")
    for _ in range(10):
        request(port)

    found = prometheus.wait_for(lambda: prometheus.query(
        'http_requests_total{server_group="shop-web-canary-v000",code="500"} == 2'), 15, "the canary's two 500s")
    [series] = found
    assert series["metric"]["cluster"] == "shop-web-canary" and series["metric"]["application"] == "shop"
    assert series["value"][1] == "2"
    assert prometheus.query('http_requests_total{server_group="shop-web-baseline-v000",code="500"}')[0]["value"][1] \
        == "0"
