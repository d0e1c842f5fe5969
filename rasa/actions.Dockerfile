# Action server image: the official rasa-sdk image of the version used locally
# (rasa-sdk==3.6.2), with the agents and the knowledge documents. Build context: rasa/.
FROM rasa/rasa-sdk:3.6.2 AS deps
COPY actions-requirements.txt /tmp/actions-requirements.txt
RUN pip install --no-cache-dir --target /tmp/deps -r /tmp/actions-requirements.txt

FROM rasa/rasa-sdk:3.6.2
WORKDIR /app
COPY --from=deps /tmp/deps /opt/deps
ENV PYTHONPATH=/opt/deps \
    KNOWLEDGE_DIR=/app/knowledge
COPY actions ./actions
COPY knowledge ./knowledge
USER 1001
EXPOSE 5055
# DATAJUD_API_KEY comes from a Secret (env valueFrom.secretKeyRef); DATAJUD_BASE_URL defaults to
# the public endpoint.
ENTRYPOINT ["python", "-m", "rasa_sdk", "--actions", "actions", "--port", "5055"]
