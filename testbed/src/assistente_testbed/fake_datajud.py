"""A local stand-in for the CNJ DataJud public API, speaking its wire format.

``POST /api_publica_<alias>/_search`` with ``Authorization: APIKey <key>`` and an Elasticsearch
query; answers ``{"took", "timed_out", "_shards", "hits": {"total", "max_score", "hits": [...]}}``
with each hit's ``_source`` shaped like DataJud's (numeroProcesso, classe, orgaoJulgador,
movimentos[], nivelSigilo, ...). Runs in a thread on 127.0.0.1 so the action code under test
makes real HTTP calls. Standard library only: the actions' tests import it from Rasa's venv.

``python -m assistente_testbed.fake_datajud --port 5056`` serves `sample_cases()` for local demos
(`make up` on a machine without internet).
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from assistente_testbed.http_fakes import send_json

API_KEY = "chave-de-teste"


def movement(code: int, name: str, when: str, *complements: str) -> dict[str, Any]:
    return {
        "codigo": code,
        "nome": name,
        "dataHora": when,
        "complementosTabelados": [
            {"codigo": 1, "valor": 1, "nome": text, "descricao": "tipo"} for text in complements
        ],
    }


def case_source(
    digits: str,
    *,
    tribunal: str,
    degree: str = "G1",
    secrecy: int = 0,
    updated: str = "2024-03-10T12:00:00.000Z",
    movements: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "numeroProcesso": digits,
        "classe": {"codigo": 436, "nome": "Procedimento do Juizado Especial Cível"},
        "sistema": {"codigo": 1, "nome": "Pje"},
        "formato": {"codigo": 1, "nome": "Eletrônico"},
        "tribunal": tribunal,
        "dataHoraUltimaAtualizacao": updated,
        "grau": degree,
        "@timestamp": "2024-03-11T02:00:00.000Z",
        "dataAjuizamento": "20180820000000",
        "movimentos": movements
        if movements is not None
        else [
            movement(26, "Distribuição", "2018-08-20T16:25:04.000Z", "sorteio"),
            movement(51, "Conclusão", "2024-02-01T10:00:00.000Z", "para despacho"),
            movement(581, "Juntada de Petição", "2023-11-05T09:30:00.000Z"),
        ],
        "id": f"{tribunal}_436_{degree}_16403_{digits}",
        "nivelSigilo": secrecy,
        "orgaoJulgador": {
            "codigoMunicipioIBGE": 1302603,
            "codigo": 16403,
            "nome": "JEF Adj - Tefé",
        },
        "assuntos": [{"codigo": 6177, "nome": "Concessão"}],
    }


@dataclass
class FakeDataJud:
    """Cases by alias and number; `failures_before_success` makes the next calls answer 503."""

    cases: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    failures_before_success: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    api_key: str = API_KEY
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake DataJud is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, alias: str, source: dict[str, Any]) -> None:
        self.cases.setdefault((alias, source["numeroProcesso"]), []).append(source)

    def start(self, port: int = 0) -> FakeDataJud:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                match = re.fullmatch(r"/api_publica_([a-z0-9-]+)/_search", self.path)
                if fake.failures_before_success > 0:
                    fake.failures_before_success -= 1
                    return self._send(503, {"error": "service unavailable"})
                if self.headers.get("Authorization") != f"APIKey {fake.api_key}":
                    return self._send(401, {"error": "unauthorized"})
                if match is None:
                    return self._send(404, {"error": {"type": "index_not_found_exception"}})
                number = body["query"]["match"]["numeroProcesso"]
                sources = fake.cases.get((match.group(1), number), [])
                hits = [
                    {
                        "_index": f"api_publica_{match.group(1)}",
                        "_type": "_doc",
                        "_id": source["id"],
                        "_score": 13.2,
                        "_source": source,
                    }
                    for source in sources
                ]
                return self._send(
                    200,
                    {
                        "took": 3,
                        "timed_out": False,
                        "_shards": {"total": 7, "successful": 7, "skipped": 0, "failed": 0},
                        "hits": {
                            "total": {"value": len(hits), "relation": "eq"},
                            "max_score": 13.2 if hits else None,
                            "hits": hits,
                        },
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                send_json(self, status, payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# Valid CNJ numbers (check digits verified) for demos and end-to-end tests.
SAMPLE_FOUND = "0000832-35.2018.4.01.3202"
SAMPLE_SEALED = "0058967-77.2016.8.19.0000"


def sample_cases(fake: FakeDataJud) -> FakeDataJud:
    fake.add("trf1", case_source("00008323520184013202", tribunal="TRF1", degree="JE"))
    fake.add("tjrj", case_source("00589677720168190000", tribunal="TJRJ", degree="G2", secrecy=1))
    return fake


def main() -> None:
    parser = argparse.ArgumentParser(description="Local fake of the DataJud public API")
    parser.add_argument("--port", type=int, default=5056)
    parser.add_argument("--api-key", default=API_KEY)
    args = parser.parse_args()
    fake = sample_cases(FakeDataJud(api_key=args.api_key))
    fake.start(port=args.port)
    print(f"fake DataJud on {fake.url} (cases {SAMPLE_FOUND}, {SAMPLE_SEALED})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
