"""Simulated citizens for the end-to-end benchmark and the chaos tests.

Each citizen is what the web widget does: it opens a conversation, holds its WebSocket, posts a
message with an `Idempotency-Key` and waits for the reply pushed on the socket, then sends its
next message, and leaves after a few turns (or once it has been handed to a human).

Turns arrive open-loop: a Poisson process at the offered rate decides *when* a turn is sent,
whatever happened to the earlier ones, so a slow system gets the same load as a fast one and its
queueing shows in the latencies (no coordinated omission). Each arrival goes to an idle citizen;
when none is idle a new citizen arrives. A turn's latency runs from the start of its POST to the
moment its reply arrives on the WebSocket.

Failures are part of the model, because the chaos tests kill processes under this load: a POST
that fails (connection refused, 5xx) is retried with the same Idempotency-Key until it is
accepted, and a WebSocket that drops is reopened, then the history is read to find replies
pushed while it was down. `verify()` checks from the history that every accepted message got
exactly one reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

POST_RETRY_S = 60.0
WS_RECONNECT_S = 0.2


@dataclass(frozen=True)
class Intent:
    name: str
    text: str
    weight: float
    ends_conversation: bool = False


# The mix a court's citizens bring: greetings and thanks, case lookups (DataJud), knowledge
# questions (support, portal services, procedure) and a few escalations to a human.
DEFAULT_MIX: tuple[Intent, ...] = (
    Intent("saudacao", "oi, bom dia", 0.20),
    Intent("consulta_processo", "quero saber do processo 0000832-35.2018.4.01.3202", 0.20),
    Intent("base_conhecimento", "como tiro certidao negativa criminal", 0.20),
    Intent("orientacao", "o que significa concluso pra despacho", 0.15),
    Intent("suporte", "nao consigo entrar no pje, esqueci a senha", 0.10),
    Intent("agradecimento", "valeu, obrigado", 0.10),
    Intent("escalonamento", "quero falar com um atendente", 0.05, ends_conversation=True),
)


@dataclass
class Turn:
    citizen: Citizen
    intent: Intent
    key: str
    arrived_at: float
    sent_at: float = 0.0  # perf_counter() at the first POST
    sent_unix: float = 0.0  # the same instant on the wall clock (to line up with server logs)
    accepted_at: float | None = None
    message_id: str | None = None
    duplicate: bool = False
    attempts: int = 0
    final_status: int | None = None
    replied_at: float | None = None
    reply_ids: list[str] = field(default_factory=list)
    via_history: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def latency_s(self) -> float | None:
        if self.replied_at is None:
            return None
        return self.replied_at - self.sent_at


class Citizen:
    def __init__(self, generator: LoadGenerator, conversation: dict[str, Any]) -> None:
        self.generator = generator
        self.id = str(conversation["id"])
        self.token = str(conversation["token"])
        self.turns_left = generator.turns_per_citizen
        self.current: Turn | None = None
        self.turns: list[Turn] = []
        self.seen_ids: set[str] = set()
        self.duplicate_pushes = 0
        self.reconnects = 0
        self.retired = False
        self._ready = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def connect(self) -> None:
        self._reader = asyncio.create_task(self._read_forever())
        await asyncio.wait_for(self._ready.wait(), timeout=30)

    async def close(self) -> None:
        self.retired = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read_forever(self) -> None:
        """Hold the WebSocket; reopen it whenever it drops (API killed, restarted)."""
        session = self.generator.session
        url = f"{self.generator.ws_url}/api/v1/conversations/{self.id}/ws"
        first = True
        while not self.retired:
            try:
                async with session.ws_connect(url, compress=0, heartbeat=None) as ws:
                    await ws.send_json({"token": self.token})
                    ready = await ws.receive_json(timeout=10)
                    if ready.get("type") != "ready":
                        raise RuntimeError(f"unexpected first frame {ready}")
                    if not first:
                        self.reconnects += 1
                        await self._catch_up_from_history()
                    first = False
                    self._ready.set()
                    async for frame in ws:
                        if frame.type != aiohttp.WSMsgType.TEXT:
                            break
                        self._on_event(frame.json(), time.perf_counter())
            except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError, ValueError):
                pass
            if not self.retired:
                await asyncio.sleep(WS_RECONNECT_S)

    def _on_event(self, event: dict[str, Any], now: float) -> None:
        if event.get("type") != "messages":
            return
        replies = [m for m in event.get("messages", []) if m.get("role") in ("bot", "system")]
        ids = [str(m["id"]) for m in replies]
        self.duplicate_pushes += sum(1 for i in ids if i in self.seen_ids)
        fresh = [i for i in ids if i not in self.seen_ids]
        self.seen_ids.update(ids)
        turn = self.current
        # One turn at a time per citizen: a fresh reply belongs to the current turn, even when it
        # arrives before the 202 does (the worker can be that fast).
        if fresh and turn is not None and turn.replied_at is None:
            turn.replied_at = now
            turn.reply_ids = fresh
            turn.done.set()

    async def _catch_up_from_history(self) -> None:
        """After a reconnect: the reply may have been pushed while the socket was down."""
        turn = self.current
        if turn is None or turn.replied_at is not None or turn.message_id is None:
            return
        history = await self.generator.history(self)
        replies = _replies_after(history, turn.message_id)
        if replies:
            turn.replied_at = time.perf_counter()
            turn.reply_ids = [str(m["id"]) for m in replies]
            turn.via_history = True
            self.seen_ids.update(turn.reply_ids)
            turn.done.set()


def _replies_after(history: Sequence[dict[str, Any]], message_id: str) -> list[dict[str, Any]]:
    """The bot/system messages between user message `message_id` and the next user message."""
    replies: list[dict[str, Any]] = []
    found = False
    for message in history:
        if found:
            if message.get("role") == "user":
                break
            if message.get("role") in ("bot", "system"):
                replies.append(message)
        elif str(message.get("id")) == message_id:
            found = True
    return replies


@dataclass
class PhaseResult:
    """What one phase of offered load produced."""

    offered_rate: float
    seconds: float
    turns: list[Turn]
    citizens_opened: int

    @property
    def sent(self) -> int:
        return len(self.turns)

    @property
    def accepted(self) -> list[Turn]:
        return [t for t in self.turns if t.accepted_at is not None]

    @property
    def answered(self) -> list[Turn]:
        return [t for t in self.turns if t.replied_at is not None]

    @property
    def latencies_ms(self) -> list[float]:
        return [1000 * t.latency_s for t in self.turns if t.latency_s is not None]

    @property
    def achieved_rate(self) -> float:
        """Turns answered per second over the phase (the offered rate when keeping up)."""
        return len(self.answered) / self.seconds

    def percentile_ms(self, fraction: float) -> float:
        return percentile(self.latencies_ms, fraction)

    def by_intent(self) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        for turn in self.turns:
            if turn.latency_s is not None:
                found.setdefault(turn.intent.name, []).append(1000 * turn.latency_s)
        return found

    def summary(self) -> dict[str, Any]:
        lat = self.latencies_ms
        return {
            "offered_per_s": round(self.offered_rate, 2),
            "answered_per_s": round(self.achieved_rate, 2),
            "sent": self.sent,
            "accepted": len(self.accepted),
            "answered": len(self.answered),
            "retried_posts": sum(1 for t in self.turns if t.attempts > 1),
            "p50_ms": round(percentile(lat, 0.50), 1) if lat else None,
            "p95_ms": round(percentile(lat, 0.95), 1) if lat else None,
            "p99_ms": round(percentile(lat, 0.99), 1) if lat else None,
            "mean_ms": round(statistics.fmean(lat), 1) if lat else None,
            "citizens_opened": self.citizens_opened,
        }


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a measured latency)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


@dataclass
class Verification:
    """What the history says about every accepted message (the chaos tests' ledger)."""

    sent: int
    accepted: int
    answered: int
    unanswered: list[str]
    duplicated: list[str]
    duplicate_pushes: int

    def line(self) -> str:
        return (
            f"sent {self.sent}, accepted {self.accepted}, answered {self.answered}, "
            f"unanswered {len(self.unanswered)}, answered twice {len(self.duplicated)}, "
            f"replies pushed twice {self.duplicate_pushes}"
        )


class LoadGenerator:
    """Use as `async with LoadGenerator(url) as load: result = await load.run(rate, seconds)`."""

    def __init__(
        self,
        base_url: str,
        *,
        mix: Sequence[Intent] = DEFAULT_MIX,
        turns_per_citizen: int = 6,
        seed: int = 12,
        reply_timeout_s: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.ws_url = self.base_url.replace("http://", "ws://", 1)
        self.mix = list(mix)
        self.turns_per_citizen = turns_per_citizen
        self.reply_timeout_s = reply_timeout_s
        # Reproducible arrivals and intents, not secrets.
        self.random = random.Random(seed)  # noqa: S311
        self.citizens: list[Citizen] = []
        self._idle: list[Citizen] = []
        self._session: aiohttp.ClientSession | None = None
        self.post_errors: Counter[str] = Counter()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use LoadGenerator as an async context manager"
        return self._session

    async def __aenter__(self) -> LoadGenerator:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(c.close() for c in self.citizens if not c.retired))
        await self.session.close()

    async def open_citizen(self) -> Citizen:
        deadline = time.monotonic() + POST_RETRY_S
        while True:
            try:
                async with self.session.post(
                    f"{self.base_url}/api/v1/conversations", json={"channel": "web"}
                ) as response:
                    if response.status == 201:
                        conversation = await response.json()
                        break
                    self.post_errors[f"open {response.status}"] += 1
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                self.post_errors[f"open {type(error).__name__}"] += 1
            if time.monotonic() > deadline:
                raise RuntimeError("could not open a conversation for a minute")
            await asyncio.sleep(0.2)
        citizen = Citizen(self, conversation)
        self.citizens.append(citizen)
        await citizen.connect()
        return citizen

    async def warm_up(self, count: int) -> None:
        """Open `count` idle citizens before a phase (their set-up is not part of any turn)."""
        missing = count - len(self._idle)
        if missing > 0:
            opened = await asyncio.gather(*(self.open_citizen() for _ in range(missing)))
            self._idle.extend(opened)

    async def history(self, citizen: Citizen) -> list[dict[str, Any]]:
        deadline = time.monotonic() + POST_RETRY_S
        while True:
            try:
                async with self.session.get(
                    f"{self.base_url}/api/v1/conversations/{citizen.id}/messages",
                    headers=citizen.auth,
                ) as response:
                    if response.status == 200:
                        messages: list[dict[str, Any]] = (await response.json())["messages"]
                        return messages
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"history of {citizen.id} unreadable for a minute")
            await asyncio.sleep(0.2)

    def _pick_intent(self) -> Intent:
        return self.random.choices(self.mix, weights=[i.weight for i in self.mix])[0]

    async def _post(self, turn: Turn) -> None:
        """POST until accepted (202), retrying failures with the same Idempotency-Key."""
        citizen = turn.citizen
        headers = {**citizen.auth, "Idempotency-Key": turn.key}
        deadline = time.monotonic() + POST_RETRY_S
        turn.sent_at = time.perf_counter()
        turn.sent_unix = time.time()
        while True:
            turn.attempts += 1
            try:
                async with self.session.post(
                    f"{self.base_url}/api/v1/conversations/{citizen.id}/messages",
                    json={"text": turn.intent.text},
                    headers=headers,
                ) as response:
                    turn.final_status = response.status
                    if response.status == 202:
                        body = await response.json()
                        turn.message_id = str(body["id"])
                        turn.duplicate = bool(body.get("duplicate"))
                        turn.accepted_at = time.perf_counter()
                        return
                    self.post_errors[f"message {response.status}"] += 1
                    if response.status < 500 and response.status != 429:
                        return  # refused for good (4xx): not accepted
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                self.post_errors[f"message {type(error).__name__}"] += 1
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.2)

    async def _turn(self, turn: Turn, reply_deadline: float) -> None:
        citizen = turn.citizen
        citizen.current = turn
        citizen.turns.append(turn)
        await self._post(turn)
        if turn.accepted_at is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    turn.done.wait(), timeout=max(0.0, reply_deadline - time.perf_counter())
                )
            if turn.replied_at is None:
                # Pushed while we were not looking, or lost: the history tells.
                with contextlib.suppress(RuntimeError):
                    await citizen._catch_up_from_history()
        citizen.current = None
        citizen.turns_left -= 1
        if turn.intent.ends_conversation or citizen.turns_left <= 0 or turn.replied_at is None:
            await citizen.close()
        else:
            self._idle.append(citizen)

    async def run(
        self, rate: float, seconds: float, *, drain_s: float | None = None
    ) -> PhaseResult:
        """Offer `rate` turns/s (Poisson arrivals) for `seconds`, then wait for the replies."""
        await self.warm_up(max(4, math.ceil(rate * 1.5)))
        opened_before = len(self.citizens)
        turns: list[Turn] = []
        tasks: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        drain = self.reply_timeout_s if drain_s is None else drain_s
        next_at = started
        while True:
            next_at += self.random.expovariate(rate)
            if next_at - started >= seconds:
                break
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._idle:
                citizen = self._idle.pop(self.random.randrange(len(self._idle)))
            else:
                citizen = await self.open_citizen()
            turn = Turn(citizen, self._pick_intent(), uuid.uuid4().hex, arrived_at=next_at)
            turns.append(turn)
            tasks.append(asyncio.create_task(self._turn(turn, next_at + drain)))
        if tasks:
            await asyncio.gather(*tasks)
        return PhaseResult(rate, seconds, turns, len(self.citizens) - opened_before)

    async def sequential(self, count: int, *, pause_s: float = 0.3) -> PhaseResult:
        """`count` turns one at a time (idle system): the latency floor of each intent."""
        started = time.perf_counter()
        turns: list[Turn] = []
        for index in range(count):
            await self.warm_up(1)
            citizen = self._idle.pop()
            intent = self.mix[index % len(self.mix)]
            turn = Turn(citizen, intent, uuid.uuid4().hex, arrived_at=time.perf_counter())
            turns.append(turn)
            await self._turn(turn, time.perf_counter() + self.reply_timeout_s)
            await asyncio.sleep(pause_s)
        elapsed = time.perf_counter() - started
        return PhaseResult(count / elapsed, elapsed, turns, 0)

    async def verify(self, turns: Sequence[Turn], *, settle_s: float = 30.0) -> Verification:
        """Read every conversation's history: each accepted message must have exactly one
        reply (the replies of one turn, stored once), however the push went."""
        by_citizen: dict[str, list[Turn]] = {}
        for turn in turns:
            by_citizen.setdefault(turn.citizen.id, []).append(turn)
        unanswered: list[str] = []
        duplicated: list[str] = []
        deadline = time.monotonic() + settle_s
        for citizen_turns in by_citizen.values():
            citizen = citizen_turns[0].citizen
            while True:
                history = await self.history(citizen)
                missing, doubled = _check_turns(history, citizen_turns)
                # Reads may come from a replica a moment behind: give it time to catch up.
                if not missing or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            unanswered += missing
            duplicated += doubled
        accepted = [t for t in turns if t.message_id is not None]
        return Verification(
            sent=len(turns),
            accepted=len(accepted),
            answered=len(accepted) - len(unanswered),
            unanswered=unanswered,
            duplicated=duplicated,
            duplicate_pushes=sum(c.duplicate_pushes for c in self.citizens),
        )


def _check_turns(
    history: Sequence[dict[str, Any]], turns: Sequence[Turn]
) -> tuple[list[str], list[str]]:
    """(unanswered message ids, ids answered more than once) among `turns`' accepted messages."""
    users = [str(m["id"]) for m in history if m.get("role") == "user"]
    unanswered: list[str] = []
    duplicated: list[str] = []
    for turn in turns:
        if turn.message_id is None:
            continue
        if users.count(turn.message_id) != 1:
            unanswered.append(turn.message_id)
            continue
        replies = _replies_after(history, turn.message_id)
        if not replies:
            unanswered.append(turn.message_id)
        elif turn.reply_ids and len(replies) > len(turn.reply_ids):
            duplicated.append(turn.message_id)
    return unanswered, duplicated
