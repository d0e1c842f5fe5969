# Action server image: the official rasa-sdk image of the version used locally
# (rasa-sdk==3.6.2), with the agents, the knowledge documents and the app ⇄ Rasa contract
# package (standard library only). Build context: the repository root.
#   docker build -f rasa/actions.Dockerfile -t assistente-actions .
# RASA_SDK_BASE: the local test bed passes a base with rasa-sdk installed from PyPI on Debian's
# python3 (no registry is reachable there); the published build keeps this one.
ARG RASA_SDK_BASE=rasa/rasa-sdk:3.6.2
# The stage that installs the actions' dependencies. Some of the pins have no wheel for every
# Python (multidict 5.2 on 3.11), so a local build passes a base with a C compiler here; the
# runtime stage only gets the installed result.
ARG RASA_SDK_BUILD_BASE=${RASA_SDK_BASE}

FROM ${RASA_SDK_BUILD_BASE} AS deps
COPY rasa/actions-requirements.txt /tmp/actions-requirements.txt
RUN pip install --no-cache-dir --target /tmp/deps -r /tmp/actions-requirements.txt

FROM ${RASA_SDK_BASE}
WORKDIR /app
COPY --from=deps /tmp/deps /opt/deps
COPY contract/src/assistente_contract /opt/deps/assistente_contract
ENV PYTHONPATH=/opt/deps \
    KNOWLEDGE_DIR=/app/knowledge
COPY rasa/actions ./actions
# rasa_sdk imports this package when present: it adds GET /metrics to the action server.
COPY rasa/rasa_sdk_plugins ./rasa_sdk_plugins
COPY rasa/knowledge ./knowledge
USER 1001
EXPOSE 5055
# DATAJUD_API_KEY comes from a Secret (env valueFrom.secretKeyRef); DATAJUD_BASE_URL defaults to
# the public endpoint.
ENTRYPOINT ["python", "-m", "rasa_sdk", "--actions", "actions", "--port", "5055"]
