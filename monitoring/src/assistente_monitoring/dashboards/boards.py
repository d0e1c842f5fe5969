"""The four dashboards: overview, pipeline, level 2 and operator (titles and texts in pt-BR)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders

from assistente_monitoring.dashboards.panels import (
    RATE,
    assistant_selector,
    assistant_variables,
    board,
    datasource_variable,
    graph,
    row,
    single,
)

S = assistant_selector


def _quantiles(metric: str, by: str, selector: str) -> list[tuple[str, str]]:
    legend_prefix = "{{" + by + "}} " if by else ""
    group = f"le, {by}" if by else "le"
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{selector}[{RATE}])))",
            f"{legend_prefix}p{round(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def overview() -> dashboard_builders.Dashboard:
    return (
        board(
            "assistente-overview",
            "Assistente Digital — visão geral",
            "Os cidadãos estão recebendo resposta? Volume, SLOs e escalonamentos de um assistente.",
        )
        .variables(assistant_variables())
        .with_row(row("Respostas aos cidadãos (SLO)"))
        .with_panel(
            single(
                "Mensagens respondidas (5 min)",
                "Parte das mensagens devidas que recebeu resposta do robô, foi para a fila de "
                "um atendente ou ficou com o atendente da conversa. Objetivo: 99,5 %.",
                "percentunit",
                f"1 - assistente:reply_errors:ratio_rate5m{S()}",
                thresholds=[(None, "red"), (0.99, "orange"), (0.995, "green")],
            )
        )
        .with_panel(
            single(
                "Respostas em até 5 s (5 min)",
                "Parte das respostas do robô armazenadas em até 5 s do aceite. Objetivo: 99 %.",
                "percentunit",
                f"1 - assistente:reply_latency_errors:ratio_rate5m{S()}",
                thresholds=[(None, "red"), (0.98, "orange"), (0.99, "green")],
            )
        )
        .with_panel(
            single(
                "Orçamento de erro restante (30 dias)",
                "Quanto resta do orçamento de mensagens sem resposta (0,5 % em 30 dias).",
                "percentunit",
                f"assistente:reply_error_budget:remaining{S()}",
                thresholds=[(None, "red"), (0.25, "orange"), (0.5, "green")],
            )
        )
        .with_panel(
            single(
                "Orçamento de latência restante (30 dias)",
                "Quanto resta do orçamento de respostas lentas (1 % acima de 5 s em 30 dias).",
                "percentunit",
                f"assistente:reply_latency_error_budget:remaining{S()}",
                thresholds=[(None, "red"), (0.25, "orange"), (0.5, "green")],
            )
        )
        .with_panel(
            graph(
                "Queima do orçamento de erro",
                "Velocidade de consumo do orçamento (1 = gasta o orçamento em exatamente 30 dias). "
                "Acima de 14,4 em 1 h ou de 6 em 6 h, o plantão é acionado.",
                "none",
                [
                    (f"assistente:reply_errors:ratio_rate1h{S()} / 0.005", "1 h"),
                    (f"assistente:reply_errors:ratio_rate6h{S()} / 0.005", "6 h"),
                    (f"assistente:reply_errors:ratio_rate1d{S()} / 0.005", "1 dia"),
                ],
            )
        )
        .with_panel(
            graph(
                "Latência da resposta (aceite → resposta armazenada)",
                "Percentis do tempo entre a API aceitar a mensagem e o worker armazenar a "
                "resposta do robô.",
                "s",
                _quantiles("assistente_turn_duration_seconds", "", S()),
            )
        )
        .with_row(row("Volume por canal"))
        .with_panel(
            graph(
                "Mensagens aceitas por canal",
                "Mensagens de cidadãos registradas e enfileiradas, por segundo.",
                "reqps",
                [
                    (
                        f"sum by (channel) (rate(assistente_messages_accepted_total{S()}[{RATE}]))",
                        "{{channel}}",
                    )
                ],
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Desfecho das mensagens",
                "O que o worker fez com cada mensagem: respondeu, escalonou, entregou ao "
                "atendente ou desistiu (mensagem morta).",
                "reqps",
                [
                    (
                        f"sum by (outcome) (rate(assistente_turns_total{S()}[{RATE}]))",
                        "{{outcome}}",
                    )
                ],
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Latência p95 da resposta por canal",
                "95 % das respostas do robô, por canal, chegaram em até este tempo.",
                "s",
                _quantiles("assistente_turn_duration_seconds", "channel", S())[1:2],
            )
        )
        .with_panel(
            graph(
                "Mensagens recusadas por motivo",
                "queue_full e server_error contam contra o SLO; os demais são erros do remetente.",
                "reqps",
                [
                    (
                        f"sum by (reason) (rate(assistente_messages_rejected_total{S()}[{RATE}]))",
                        "{{reason}}",
                    )
                ],
            )
        )
        .with_row(row("Escalonamento e conexões"))
        .with_panel(
            graph(
                "Escalonamentos por equipe",
                "Conversas enviadas à fila de nível 2, por minuto.",
                "none",
                [
                    (
                        f"sum by (team) (rate(assistente_escalations_total{S()}[{RATE}])) * 60",
                        "{{team}}",
                    )
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "WebSockets abertos",
                "Conexões do widget abertas em todas as réplicas da API.",
                "short",
                [(f"sum(assistente_websockets_open{S()})", "abertos")],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Latência p95 da API por rota",
                "95 % das requisições HTTP, por rota, responderam em até este tempo.",
                "s",
                _quantiles("assistente_http_request_duration_seconds", "route", S())[1:2],
                width=8,
            )
        )
    )


def pipeline() -> dashboard_builders.Dashboard:
    return (
        board(
            "assistente-pipeline",
            "Assistente Digital — fila, worker, Rasa e ações",
            "O caminho de uma mensagem: fluxos do Redis, worker, Rasa, servidor de ações, "
            "DataJud e os bancos.",
        )
        .variables(assistant_variables())
        .with_row(row("Fila (Redis Streams)"))
        .with_panel(
            graph(
                "Entradas nos fluxos",
                "Backlog de cada fluxo e partição (entradas confirmadas são apagadas).",
                "short",
                [
                    (
                        f"max by (stream, partition) (assistente_stream_length{S()})",
                        "{{stream}}/{{partition}}",
                    ),
                    (
                        f"max(assistente_queue_max_length{S()})",
                        "limite de contrapressão",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Pendentes e não lidas",
                "Pendentes: entregues a um consumidor e ainda não confirmadas. Não lidas: "
                "nenhum consumidor pegou ainda.",
                "short",
                [
                    (
                        f"max by (stream) (assistente_stream_pending{S()})",
                        "pendentes {{stream}}",
                    ),
                    (
                        f"max by (stream) (assistente_stream_lag{S()})",
                        "não lidas {{stream}}",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Idade da entrada mais antiga",
                "Há quanto tempo espera a mensagem mais antiga de cada fluxo (alerta: entrada "
                "acima de 1 min por 5 min).",
                "s",
                [
                    (
                        f"max by (stream) (assistente_stream_oldest_age_seconds{S()})",
                        "{{stream}}",
                    )
                ],
                width=8,
            )
        )
        .with_row(row("Worker"))
        .with_panel(
            graph(
                "Novas tentativas e mensagens mortas",
                "Tentativas repetidas por motivo, e entradas separadas como mensagens mortas.",
                "short",
                [
                    (
                        f"sum by (reason) (increase(assistente_worker_retries_total{S()}[{RATE}]))",
                        "nova tentativa: {{reason}}",
                    ),
                    (
                        f"sum(increase(assistente_dead_letters_total{S()}[{RATE}]))",
                        "mensagens mortas",
                    ),
                    (
                        f"max(assistente_stream_dead_letters{S()})",
                        "mensagens mortas aguardando",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Entregas nos canais",
                "Respostas enviadas ao canal do cidadão, por canal e resultado.",
                "reqps",
                [
                    (
                        "sum by (channel, outcome) "
                        f"(rate(assistente_deliveries_total{S()}[{RATE}]))",
                        "{{channel}} {{outcome}}",
                    )
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Chamadas ao Rasa",
                "Chamadas ao webhook REST do Rasa por resultado (unavailable é refeita depois).",
                "reqps",
                [
                    (
                        "sum by (outcome) "
                        f"(rate(assistente_rasa_request_duration_seconds_count{S()}[{RATE}]))",
                        "{{outcome}}",
                    )
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Latência do Rasa",
                "Percentis das chamadas bem-sucedidas ao Rasa (NLU, diálogo e ações).",
                "s",
                _quantiles("assistente_rasa_request_duration_seconds", "", S(outcome="ok")),
            )
        )
        .with_panel(
            graph(
                "Réplicas coletadas por componente",
                "Alvos do Prometheus no ar, por componente.",
                "short",
                [(f"sum by (component) (up{S()})", "{{component}}")],
            )
        )
        .with_row(row("Servidor de ações e DataJud"))
        .with_panel(
            graph(
                "Execuções por agente",
                "Ações customizadas executadas, por agente e resultado.",
                "reqps",
                [
                    (
                        "sum by (agent, outcome) "
                        f"(rate(assistente_agent_calls_total{S()}[{RATE}]))",
                        "{{agent}} {{outcome}}",
                    )
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Latência p95 por agente",
                "95 % das execuções de cada agente terminaram em até este tempo.",
                "s",
                _quantiles("assistente_agent_duration_seconds", "agent", S())[1:2],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Base de conhecimento",
                "Buscas na base de conhecimento que encontraram (hit) ou não (miss) um trecho.",
                "reqps",
                [
                    (
                        f"sum by (result) (rate(assistente_knowledge_lookups_total{S()}[{RATE}]))",
                        "{{result}}",
                    )
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "DataJud: consultas por resultado",
                "error e timeout significam que o DataJud falhou; not_found é uma resposta.",
                "reqps",
                [
                    (
                        "sum by (outcome) (rate("
                        f"assistente_datajud_request_duration_seconds_count{S()}[{RATE}]))",
                        "{{outcome}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "DataJud: latência",
                "Percentis das consultas à API pública do DataJud.",
                "s",
                _quantiles("assistente_datajud_request_duration_seconds", "", S()),
            )
        )
        .with_row(row("PostgreSQL e Redis"))
        .with_panel(
            graph(
                "Atraso das réplicas PostgreSQL",
                "Segundos de atraso de cada réplica em relação ao primário (CloudNativePG).",
                "s",
                [(f"max by (pod) (cnpg_pg_replication_lag{S()})", "{{pod}}")],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Conexões PostgreSQL por estado",
                "Conexões abertas por estado (CloudNativePG).",
                "short",
                [(f"sum by (state) (cnpg_backends_total{S()})", "{{state}}")],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Redis: clientes e memória",
                "Clientes conectados e memória usada por pod Redis.",
                "short",
                [
                    (f"max by (pod) (redis_connected_clients{S()})", "clientes {{pod}}"),
                    (f"max by (pod) (redis_connected_slaves{S()})", "réplicas de {{pod}}"),
                    (f"max by (pod) (redis_memory_used_bytes{S()}) / 2^20", "MiB {{pod}}"),
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Memória dos processos",
                "Memória residente de cada processo Python do assistente.",
                "bytes",
                [
                    (
                        f"sum by (component) (process_resident_memory_bytes{S()})",
                        "{{component}}",
                    )
                ],
                width=24,
            )
        )
    )


def level2() -> dashboard_builders.Dashboard:
    return (
        board(
            "assistente-level2",
            "Assistente Digital — atendimento humano (nível 2)",
            "Filas de atendimento humano por equipe: quantos esperam, há quanto tempo, e o "
            "ritmo dos atendentes.",
        )
        .variables(assistant_variables())
        .with_panel(
            single(
                "Cidadãos na fila",
                "Conversas aguardando um atendente, em todas as equipes.",
                "short",
                f"sum(max by (team) (assistente_escalation_queue_length{S()}))",
            )
        )
        .with_panel(
            single(
                "Maior espera agora",
                "Espera do primeiro da fila mais atrasada.",
                "s",
                f"max(assistente_escalation_oldest_wait_seconds{S()})",
            )
        )
        .with_panel(
            single(
                "Limite de espera do recurso",
                "spec.escalation.maxWaitMinutes do recurso AssistenteDigital.",
                "s",
                f"max(assistente_escalation_max_wait_seconds{S()})",
            )
        )
        .with_panel(
            single(
                "Em atendimento",
                "Conversas com um atendente agora.",
                "short",
                f"sum(max by (team) (assistente_escalation_in_progress{S()}))",
            )
        )
        .with_panel(
            graph(
                "Fila por equipe",
                "Conversas aguardando um atendente, por equipe.",
                "short",
                [
                    (
                        f"max by (team) (assistente_escalation_queue_length{S()})",
                        "{{team}}",
                    )
                ],
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Espera do primeiro da fila",
                "Há quanto tempo espera o primeiro de cada fila, e o limite do recurso.",
                "s",
                [
                    (
                        f"max by (team) (assistente_escalation_oldest_wait_seconds{S()})",
                        "{{team}}",
                    ),
                    (f"max(assistente_escalation_max_wait_seconds{S()})", "limite"),
                ],
            )
        )
        .with_panel(
            graph(
                "Tempo até o atendimento",
                "Percentis da espera entre entrar na fila e um atendente assumir.",
                "s",
                _quantiles("assistente_escalation_wait_seconds", "team", S())[:2],
            )
        )
        .with_panel(
            graph(
                "Entradas, atendimentos, desistências e recusas",
                "Por hora: conversas escalonadas, assumidas por um atendente, encerradas antes "
                "de serem assumidas, e pedidos recusados porque a fila estava cheia "
                "(spec.escalation.queueLimit).",
                "short",
                [
                    (
                        f"sum by (team) (rate(assistente_escalations_total{S()}[{RATE}])) * 3600",
                        "entradas {{team}}",
                    ),
                    (
                        "sum by (team) "
                        f"(rate(assistente_escalation_claims_total{S()}[{RATE}])) * 3600",
                        "assumidas {{team}}",
                    ),
                    (
                        "sum by (team) (rate("
                        f"assistente_escalation_abandonments_total{S()}[{RATE}])) * 3600",
                        "desistências {{team}}",
                    ),
                    (
                        "sum by (team) (rate(assistente_escalations_refused_total"
                        f"{S(reason='queue_full')}[{RATE}])) * 3600",
                        "recusadas {{team}}",
                    ),
                ],
            )
        )
        .with_panel(
            graph(
                "Em atendimento por equipe",
                "Conversas assumidas e ainda não resolvidas, por equipe.",
                "short",
                [
                    (
                        f"max by (team) (assistente_escalation_in_progress{S()})",
                        "{{team}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Como terminam as esperas",
                "Por hora, em todas as equipes: conversas que saíram da fila sem atendente "
                "(o cidadão desistiu, o tempo máximo esgotou, a retenção apagou) e pedidos "
                "feitos fora do horário de atendimento.",
                "short",
                [
                    (
                        "sum by (reason) (rate("
                        f"assistente_escalation_abandonments_total{S()}[{RATE}])) * 3600",
                        "{{reason}}",
                    ),
                    (
                        "sum (rate(assistente_escalations_refused_total"
                        f"{S(reason='service_closed')}[{RATE}])) * 3600",
                        "fora do horário",
                    ),
                ],
            )
        )
        .with_panel(
            graph(
                "Encerramentos por código",
                "Por hora: conversas encerradas por um atendente, por código de encerramento.",
                "short",
                [
                    (
                        "sum by (code) (rate("
                        f"assistente_escalation_closures_total{S()}[{RATE}])) * 3600",
                        "{{code}}",
                    )
                ],
                width=24,
            )
        )
    )


OPERATOR = '{component="operator"}'


def operator() -> dashboard_builders.Dashboard:
    return (
        board(
            "assistente-operator",
            "Assistente Digital — operador",
            "O operador kopf: reconciliações, erros, duração, recursos e objetos gerenciados.",
        )
        .variables([datasource_variable()])
        .with_panel(
            single(
                "Operador no ar",
                "1 quando o Prometheus consegue coletar o operador.",
                "short",
                f"max(up{OPERATOR})",
                thresholds=[(None, "red"), (1, "green")],
            )
        )
        .with_panel(
            single(
                "Recursos prontos",
                "Recursos AssistenteDigital na fase Ready.",
                "short",
                'sum(assistente_operator_resources{component="operator", phase="Ready"})',
            )
        )
        .with_panel(
            single(
                "Recursos degradados",
                "Recursos AssistenteDigital em Degraded ou Failed.",
                "short",
                'sum(assistente_operator_resources{component="operator", '
                'phase=~"Degraded|Failed"})',
                thresholds=[(None, "green"), (1, "red")],
            )
        )
        .with_panel(
            single(
                "Objetos gerenciados",
                "Filhos que o operador mantém, de todos os tipos.",
                "short",
                f"sum(assistente_operator_managed_objects{OPERATOR})",
            )
        )
        .with_panel(
            graph(
                "Reconciliações por resultado",
                "Passadas de reconciliação por segundo, por resultado.",
                "ops",
                [
                    (
                        "sum by (result) "
                        f"(rate(assistente_operator_reconciles_total{OPERATOR}[{RATE}]))",
                        "{{result}}",
                    )
                ],
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Escritas no API server",
                "Server-side applies por segundo. Em regime estável fica em zero; se nunca volta "
                "a zero, o operador está brigando com outro controlador pelo mesmo campo.",
                "ops",
                [(f"sum(rate(assistente_operator_applies_total{OPERATOR}[{RATE}]))", "escritas")],
            )
        )
        .with_panel(
            graph(
                "Duração da reconciliação",
                "Percentis da duração de uma passada (objetivo: p99 ≤ 2 s).",
                "s",
                _quantiles("assistente_operator_reconcile_duration_seconds", "", OPERATOR),
            )
        )
        .with_panel(
            graph(
                "Recursos por fase",
                "Recursos AssistenteDigital por fase do status.",
                "short",
                [
                    (
                        f"sum by (phase) (assistente_operator_resources{OPERATOR})",
                        "{{phase}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Objetos gerenciados por tipo",
                "Filhos mantidos pelo operador, por tipo.",
                "short",
                [
                    (
                        f"sum by (kind) (assistente_operator_managed_objects{OPERATOR})",
                        "{{kind}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Memória do operador",
                "Memória residente (objetivo: até 150 MiB com mil recursos).",
                "bytes",
                [(f"max(process_resident_memory_bytes{OPERATOR})", "memória")],
            )
        )
        .with_panel(
            graph(
                "CPU do operador",
                "Núcleos de CPU usados pelo operador.",
                "short",
                [(f"max(rate(process_cpu_seconds_total{OPERATOR}[{RATE}]))", "núcleos")],
            )
        )
    )
