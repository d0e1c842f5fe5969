"""The assistant deployed by its operator onto a real node, and used as a citizen uses it.

    operator/config -> operator pod -> AssistenteDigital -> API, worker, Rasa, actions, Redis
    with Sentinel: real containers (containerd + runc) on the test bed's real node; PostgreSQL
    is the test bed's own (`postgres.mode: external`), published to the pods at the node's address.

A citizen talks to the API through its Service (kube-proxy) and reads replies on the WebSocket;
the worker is restarted during a burst and the Rasa pod deleted, and nothing is lost.

Every request reaches the API from the relay at the node's address, which plays the Ingress
controller: the resource trusts it as a proxy (`ingress.trustedProxies`), and each test citizen
comes from an address of its own in X-Forwarded-For, so the per-address limits see citizens, as
behind a real Ingress.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from assistente_testbed.cluster import KubeCluster
from assistente_testbed.images import BuiltImage
from assistente_testbed.local_assistant import LocalAssistant, pod_ready
from assistente_testbed.node import NODE_NAME
from assistente_testbed.paths import state_dir
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.process import wait_until
from websockets.asyncio.client import ClientConnection, connect

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(3600)]

NAMESPACE = "assistente-node-e2e"
NAME = "tjlocal"
COMPONENTS = ("api", "worker", "nlu", "actions", "redis")
REPLY_WAIT_S = 120.0
WORKER_METRICS_PORT = 9101  # the worker's only HTTP server: its Prometheus exporter
FIGURES = state_dir() / "real-node-figures.json"
# The web channel's default: conversations one address may open per minute (fixed windows).
CONVERSATIONS_PER_ADDRESS_PER_MINUTE = 20
# Citizens' addresses: the range set aside for benchmarks and tests (RFC 2544), only ever
# written into a header here.
CITIZEN_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
_citizen_hosts = itertools.count(1)


def citizen_address() -> dict[str, str]:
    """The header the trusted proxy adds for a new citizen, each with an address of its own."""
    return {"X-Forwarded-For": str(CITIZEN_NETWORK[next(_citizen_hosts)])}


@dataclass
class Deployment:
    assistant: LocalAssistant
    api_url: str

    @property
    def cluster(self) -> KubeCluster:
        return self.assistant.cluster

    @property
    def figures(self) -> dict[str, Any]:
        return self.assistant.figures


@pytest.fixture(scope="module")
def deployment(
    real_cluster: KubeCluster, app_images: dict[str, BuiltImage], postgres_server: PostgresServer
) -> Iterator[Deployment]:
    assistant = LocalAssistant(real_cluster, namespace=NAMESPACE, name=NAME)
    assistant.figures["node_join_s"] = real_cluster.node_join_seconds
    assistant.install_operator(app_images)
    assistant.deploy(app_images, postgres_server)
    try:
        yield Deployment(assistant, assistant.api_url())
    finally:
        assistant.figures["rss_mib"] = assistant.rss_by_pod()
        FIGURES.write_text(json.dumps(assistant.figures, indent=2) + "\n")


class Citizen:
    """A web-widget user, through the API Service: HTTP to post, WebSocket for replies."""

    def __init__(self, http: httpx.AsyncClient, ws: ClientConnection, conversation: dict[str, Any]):
        self.http = http
        self.ws = ws
        self.id = conversation["id"]
        self.token = conversation["token"]

    async def post(self, text: str) -> str:
        response = await self.http.post(
            f"/api/v1/conversations/{self.id}/messages",
            json={"text": text},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    async def replies(self, count: int) -> list[dict[str, Any]]:
        """The next `count` bot replies pushed on the WebSocket."""
        replies: list[dict[str, Any]] = []
        deadline = time.monotonic() + REPLY_WAIT_S
        while len(replies) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{len(replies)} of {count} replies arrived: {replies}"
            event = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=remaining))
            if event.get("type") == "messages":
                replies += [m for m in event["messages"] if m["role"] == "bot"]
        return replies


@pytest.fixture
async def citizen(deployment: Deployment) -> AsyncIterator[Citizen]:
    address = citizen_address()
    async with httpx.AsyncClient(base_url=deployment.api_url, timeout=30, headers=address) as http:
        created = await http.post("/api/v1/conversations", json={"channel": "web"})
        assert created.status_code == 201, created.text
        conversation = created.json()
        ws_url = deployment.api_url.replace("http://", "ws://")
        ws_path = f"{ws_url}/api/v1/conversations/{conversation['id']}/ws"
        async with connect(ws_path, additional_headers=address) as ws:
            await ws.send(json.dumps({"token": conversation["token"]}))
            ready = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
            assert ready["type"] == "ready"
            yield Citizen(http, ws, conversation)


def test_every_component_runs_in_containers_on_the_real_node(deployment: Deployment) -> None:
    def settled() -> bool:
        """Deploying waits for enough ready pods; a readiness probe late under load, or a pod
        still on its way out, must be past before every pod is looked at."""
        pods = [pod for component in COMPONENTS for pod in deployment.assistant.pods(component)]
        return all(pod_ready(pod) for pod in pods)

    wait_until(settled, timeout=REPLY_WAIT_S, what="every pod of the assistant ready")
    for component in COMPONENTS:
        pods = deployment.assistant.pods(component)
        assert pods, f"no {component} pod"
        for pod in pods:
            assert pod["spec"]["nodeName"] == NODE_NAME, pod["metadata"]["name"]
            for status in pod["status"]["containerStatuses"]:
                assert status["ready"], (pod["metadata"]["name"], status["name"])
                assert status["containerID"].startswith("containerd://")
    redis_containers = {
        status["name"]
        for pod in deployment.assistant.pods("redis")
        for status in pod["status"]["containerStatuses"]
    }
    assert redis_containers == {"redis", "sentinel", "exporter"}
    operator: dict[str, Any] = deployment.cluster.get_json(
        "pods", "-n", "assistente-operator-system"
    )
    [operator_pod] = [pod for pod in operator["items"] if pod_ready(pod)]
    assert operator_pod["spec"]["nodeName"] == NODE_NAME
    assert operator_pod["spec"]["serviceAccountName"] == "assistente-operator"


def test_each_redis_exporter_reads_its_redis(deployment: Deployment) -> None:
    """The sidecar (the local image of Debian's redis_exporter) signs in to its Redis with the
    password from the security Secret: it reports Redis up, and which one is the master."""
    roles = []
    for pod in deployment.assistant.pods("redis"):
        port = deployment.assistant.node.open_to_host(pod["status"]["podIP"], 9121)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert re.search(r"^redis_up 1$", metrics, re.MULTILINE), pod["metadata"]["name"]
        roles += re.findall(r'^redis_instance_info\{.*role="(\w+)".*\} 1$', metrics, re.MULTILINE)
    assert sorted(roles) == ["master", "slave", "slave"], roles


async def test_a_message_through_the_api_service_gets_a_bot_reply(
    deployment: Deployment, citizen: Citizen
) -> None:
    started = time.monotonic()
    await citizen.post("oi, bom dia")
    [reply] = await citizen.replies(1)
    deployment.figures["first_reply_s"] = round(time.monotonic() - started, 2)
    assert "Assistente Digital" in reply["text"]


async def _bot_messages(http: httpx.AsyncClient, conversation: dict[str, Any]) -> int:
    history = await http.get(
        f"/api/v1/conversations/{conversation['id']}/messages",
        headers={"Authorization": f"Bearer {conversation['token']}"},
    )
    assert history.status_code == 200, history.text
    return sum(1 for m in history.json()["messages"] if m["role"] == "bot")


async def _open_conversation(http: httpx.AsyncClient) -> dict[str, Any]:
    """A conversation opened by a new citizen (an address of its own)."""
    created = await http.post(
        "/api/v1/conversations", json={"channel": "web"}, headers=citizen_address()
    )
    assert created.status_code == 201, created.text
    conversation: dict[str, Any] = created.json()
    return conversation


async def _say(http: httpx.AsyncClient, conversation: dict[str, Any], text: str) -> None:
    response = await http.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"text": text},
        headers={"Authorization": f"Bearer {conversation['token']}"},
    )
    assert response.status_code == 202, response.text


async def _answered(
    http: httpx.AsyncClient, conversations: list[dict[str, Any]], at_least: int
) -> list[int]:
    """Waits until every conversation has `at_least` bot messages; returns the counts."""
    deadline = time.monotonic() + REPLY_WAIT_S * 2
    while True:
        counts = [await _bot_messages(http, c) for c in conversations]
        if all(count >= at_least for count in counts):
            return counts
        assert time.monotonic() < deadline, f"bot messages per conversation: {counts}"
        await asyncio.sleep(1)


async def _queues_drained(deployment: Deployment) -> None:
    """Waits until every stream is empty (entries are deleted when acknowledged): nothing is
    waiting, pending or about to be redelivered, so the replies counted next are final. Each
    worker samples the streams' gauges on its /metrics every few seconds."""
    assistant = deployment.assistant
    ports = [
        assistant.node.open_to_host(pod["status"]["podIP"], WORKER_METRICS_PORT)
        for pod in assistant.pods("worker")
        if pod_ready(pod)
    ]
    deadline = time.monotonic() + REPLY_WAIT_S
    async with httpx.AsyncClient(timeout=10) as http:
        while True:
            gauges: list[str] = []
            for port in ports:
                metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                gauges += re.findall(
                    r"^assistente_stream_(?:length|pending)\{.*\} (\S+)$", metrics, re.MULTILINE
                )
            assert gauges, "the workers export no stream gauges"
            if all(float(value) == 0 for value in gauges):
                return
            assert time.monotonic() < deadline, f"stream lengths and pending: {gauges}"
            await asyncio.sleep(1)


async def test_the_per_address_limit_sees_each_citizen_behind_the_proxy(
    deployment: Deployment,
) -> None:
    """The relay is a trusted proxy: one citizen's address runs into the web channel's limit of
    new conversations, and the next citizen behind the same proxy is not affected."""
    crowded = citizen_address()
    async with httpx.AsyncClient(base_url=deployment.api_url, timeout=30) as http:
        statuses: list[int] = []
        # A fixed window may end during the loop: at most twice the limit gets through.
        while len(statuses) <= 2 * CONVERSATIONS_PER_ADDRESS_PER_MINUTE and 429 not in statuses:
            response = await http.post(
                "/api/v1/conversations", json={"channel": "web"}, headers=crowded
            )
            statuses.append(response.status_code)
        assert statuses[-1] == 429, statuses
        assert statuses[:-1] == [201] * (len(statuses) - 1)
        assert len(statuses) - 1 >= CONVERSATIONS_PER_ADDRESS_PER_MINUTE
        await _open_conversation(http)


async def test_restarting_the_worker_during_a_burst_loses_no_message(
    deployment: Deployment,
) -> None:
    """New citizens keep writing, one greeting each, for as long as the worker Deployment takes
    to roll: every conversation gets the greeting's reply exactly once (none lost, none
    doubled)."""
    async with httpx.AsyncClient(base_url=deployment.api_url, timeout=30) as http:
        baseline = await _open_conversation(http)
        await _say(http, baseline, "oi")
        [per_greeting] = await _answered(http, [baseline], 1)

        worker = f"deployment/{NAME}-worker"
        await asyncio.to_thread(
            deployment.cluster.kubectl, "-n", NAMESPACE, "rollout", "restart", worker
        )
        status = ("-n", NAMESPACE, "rollout", "status", worker, "--timeout=300s")
        rollout = asyncio.create_task(
            asyncio.to_thread(deployment.cluster.kubectl, *status, timeout=330)
        )
        conversations: list[dict[str, Any]] = []
        while not rollout.done():
            conversation = await _open_conversation(http)
            await _say(http, conversation, "oi")
            conversations.append(conversation)
            await asyncio.sleep(0.25)
        await rollout
        deployment.figures["burst_messages"] = len(conversations)
        await _answered(http, conversations, per_greeting)
        await _queues_drained(deployment)
        counts = [await _bot_messages(http, c) for c in conversations]
        assert counts == [per_greeting] * len(conversations)


async def test_the_conversation_survives_the_rasa_pod_being_deleted(
    deployment: Deployment, citizen: Citizen
) -> None:
    """A message sent while the Rasa pod goes away is answered (by the old pod in its grace
    period, or by the new one once it is up), and the conversation goes on with the pod the
    Deployment puts in its place."""
    await citizen.post("oi")
    await citizen.replies(1)
    [rasa_pod] = deployment.assistant.pods("nlu")
    old_name = rasa_pod["metadata"]["name"]
    deployment.cluster.kubectl("-n", NAMESPACE, "delete", "pod", old_name, "--wait=false")
    await citizen.post("bom dia, quero ajuda")
    [reply] = await citizen.replies(1)
    assert reply["text"]

    def replaced() -> bool:
        pods = deployment.assistant.pods("nlu")
        names = [p["metadata"]["name"] for p in pods]
        return old_name not in names and any(pod_ready(p) for p in pods)

    await asyncio.to_thread(
        wait_until, replaced, timeout=REPLY_WAIT_S, what="a new Rasa pod in place of the deleted"
    )
    await citizen.post("oi")
    after = await citizen.replies(1)
    assert all(message["text"] for message in after), after
