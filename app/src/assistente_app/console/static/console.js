// Console de atendimento: OIDC sign-in (authorization code + PKCE, public client), the live board
// over a WebSocket (pushed by the API, never polled), and the agent API for each action.
// No framework, no build step. Everything a clerk reads is in Brazilian Portuguese.
(function () {
  "use strict";
  const API = "/api/v1/agent";
  const HOME = location.origin + "/atendimento/";
  const STORE = "assistente.console";
  const PENDING = "assistente.console.login";
  const el = (id) => document.getElementById(id);
  const CHANNELS = { web: "Site", mobile: "Aplicativo", whatsapp: "WhatsApp", telegram: "Telegram",
    voice: "Telefone" };
  const INTENTS = { consultar_processo: "Consulta de processo", suporte_tecnico: "Suporte técnico",
    servicos_portal: "Serviços do portal", orientacao_processual: "Orientação processual",
    peticionamento: "Peticionamento", falar_com_atendente: "Pediu para falar com atendente",
    fora_de_escopo: "Assunto fora do escopo do assistente" };
  const AUTHORS = { user: "Cidadão", bot: "Assistente", agent: "Atendente", system: "Aviso" };

  let config = null;
  let tokens = null;        // {access_token, refresh_token, id_token, expires_at}
  let clerk = null;         // {name, teams, supervisor}
  let catalog = null;
  let socket = null;
  let retryMs = 1000;
  let refreshTimer = null;
  let board = null;         // the last board pushed
  let clockOffsetMs = 0;    // server time minus local time
  let openId = null;        // the conversation on screen
  let openStatus = null;
  const shown = new Set();  // message ids in the open history
  let lastSeq = 0;          // the open history's last message: watching resumes after it
  let lastCounts = "";

  // --- small helpers ---------------------------------------------------------------------
  function announce(text) { el("announcer").textContent = ""; setTimeout(() => { el("announcer").textContent = text; }, 50); }
  function alertText(text) { el("alert").textContent = text || ""; }
  function make(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function minutesSince(iso) {
    if (!iso) return 0;
    return Math.max(0, Math.floor((Date.now() + clockOffsetMs - Date.parse(iso)) / 60000));
  }
  function waitText(iso) {
    const minutes = minutesSince(iso);
    if (minutes < 1) return "menos de 1 min";
    if (minutes < 60) return minutes + " min";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }
  function intentText(intent) { return intent ? (INTENTS[intent] || intent.replace(/_/g, " ")) : "—"; }
  function base64url(bytes) {
    return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function randomString() { return base64url(crypto.getRandomValues(new Uint8Array(32))); }

  // --- accessibility preference ------------------------------------------------------------
  function applyContrast() {
    const on = localStorage.getItem("assistente.contrast") === "1";
    document.documentElement.classList.toggle("high-contrast", on);
    el("contrast-toggle").setAttribute("aria-pressed", String(on));
  }
  el("contrast-toggle").addEventListener("click", () => {
    localStorage.setItem("assistente.contrast", localStorage.getItem("assistente.contrast") === "1" ? "0" : "1");
    applyContrast();
  });
  applyContrast();

  // --- sign-in (authorization code + PKCE) ---------------------------------------------------
  async function signIn() {
    const verifier = randomString();
    const state = randomString();
    const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
    const query = new URLSearchParams({ client_id: config.client_id, redirect_uri: HOME,
      response_type: "code", scope: "openid", state, code_challenge: challenge,
      code_challenge_method: "S256", ui_locales: "pt-BR" });
    location.assign(config.authorization_endpoint + "?" + query.toString());
  }
  async function tokenRequest(form) {
    const response = await fetch(config.token_endpoint, { method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(form) });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error_description || data.error || "falha no login");
    return data;
  }
  function keep(data) {
    tokens = { access_token: data.access_token, refresh_token: data.refresh_token,
      id_token: data.id_token || (tokens && tokens.id_token),
      expires_at: Date.now() + (data.expires_in || 300) * 1000 };
    sessionStorage.setItem(STORE, JSON.stringify(tokens));
    clearTimeout(refreshTimer);
    // Refresh a little before the access token expires.
    refreshTimer = setTimeout(refresh, Math.max(5000, tokens.expires_at - Date.now() - 30000));
  }
  async function finishSignIn(params) {
    const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
    sessionStorage.removeItem(PENDING);
    history.replaceState(null, "", HOME);
    if (!pending || pending.state !== params.get("state")) {
      throw new Error("A resposta do login não corresponde a este navegador. Entre novamente.");
    }
    keep(await tokenRequest({ grant_type: "authorization_code", client_id: config.client_id,
      code: params.get("code"), redirect_uri: HOME, code_verifier: pending.verifier }));
  }
  async function refresh() {
    try {
      keep(await tokenRequest({ grant_type: "refresh_token", client_id: config.client_id,
        refresh_token: tokens.refresh_token }));
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: "token", token: tokens.access_token }));
      }
      return true;
    } catch (e) {
      sessionExpired();
      return false;
    }
  }
  function sessionExpired() {
    stop();
    showSignIn("Sua sessão expirou. Entre novamente para continuar o atendimento.");
    el("sign-in").focus();
  }
  function signOut() {
    const idToken = tokens && tokens.id_token;
    stop();
    if (config.end_session_endpoint) {
      const query = new URLSearchParams({ client_id: config.client_id,
        post_logout_redirect_uri: HOME + "?saiu=1" });
      if (idToken) query.set("id_token_hint", idToken);
      location.assign(config.end_session_endpoint + "?" + query.toString());
    } else {
      showSignIn("Você saiu do console.");
    }
  }
  function stop() {
    clearTimeout(refreshTimer);
    tokens = null;
    sessionStorage.removeItem(STORE);
    if (socket) { const old = socket; socket = null; old.close(); }
  }
  function showSignIn(message) {
    el("workspace").hidden = true;
    el("sign-out").hidden = true;
    el("who").hidden = true;
    el("signin").hidden = false;
    el("signin-message").textContent = message;
  }

  // --- the agent API --------------------------------------------------------------------------
  async function call(method, path, body, retried) {
    const response = await fetch(API + path, { method, headers: { "Content-Type": "application/json",
      Authorization: "Bearer " + tokens.access_token }, body: body ? JSON.stringify(body) : undefined });
    if (response.status === 401 && !retried && await refresh()) return call(method, path, body, true);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error((data.error && data.error.message) || "Não foi possível concluir. Tente novamente.");
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // --- the live board --------------------------------------------------------------------------
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${API}/ws`);
    socket = ws;
    ws.addEventListener("open", () => ws.send(JSON.stringify({ token: tokens.access_token })));
    ws.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      if (data.type === "hello") { retryMs = 1000; el("connection").textContent = "Conectado: a fila se atualiza sozinha."; showClerk(data.clerk); if (openId) watch(openId); }
      else if (data.type === "board") renderBoard(data);
      else if (data.type === "messages" && data.conversation_id === openId) {
        data.messages.forEach(renderMessage);
        if (data.messages.some((m) => m.role === "user")) announce("Nova mensagem do cidadão.");
      }
    });
    ws.addEventListener("close", async (event) => {
      if (socket !== ws) return;  // replaced or stopped on purpose
      if (event.code === 4401 && !(await refresh())) return;
      el("connection").textContent = "Conexão perdida. Reconectando…";
      setTimeout(() => { if (tokens && socket === ws) connect(); }, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    });
  }
  function watch(conversationId) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      // after_seq: the server sends what was stored after it, so nothing stored between the
      // history's load (or a lost connection) and the subscription is missed.
      const body = { type: "watch", conversation_id: conversationId };
      if (conversationId && conversationId === openId) body.after_seq = lastSeq;
      socket.send(JSON.stringify(body));
    }
  }
  function showClerk(info) {
    clerk = info;
    const teams = info.teams.map((t) => teamLabel(t)).join(", ") || "nenhuma equipe";
    el("who").textContent = `${info.name} — ${info.supervisor ? "supervisão; " : ""}equipes: ${teams}`;
    el("who").hidden = false;
    el("supervision").hidden = !(info.supervisor || info.admin);
  }
  function teamLabel(team) {
    const found = catalog && catalog.teams.find((t) => t.id === team);
    return found ? found.label : team;
  }
  function summaryText(item) {
    const s = item.summary || {};
    const parts = [intentText(s.intent)];
    if (s.case_number) parts.push("processo " + s.case_number);
    if (s.articles && s.articles.length) parts.push("artigos: " + s.articles.map((a) => a.title).join("; "));
    return parts.join(" · ");
  }
  function renderBoard(data) {
    board = data;
    clockOffsetMs = Date.parse(data.server_time) - Date.now();
    const container = el("queue-tables");
    container.replaceChildren();
    // Always in the catalog's order, whatever the order of the clerk's roles.
    const teams = catalog.teams.map((t) => t.id).filter((t) => clerk && (clerk.supervisor || clerk.admin || clerk.teams.includes(t)));
    const counts = [];
    teams.forEach((team) => {
      const items = data.queues.filter((i) => i.team === team);
      counts.push(`${teamLabel(team)}: ${items.length}`);
      const table = make("table", { "aria-describedby": "connection" });
      table.appendChild(make("caption", {}, `${teamLabel(team)} — ${items.length} aguardando`));
      const head = make("tr");
      ["Posição", "Protocolo", "Canal", "Espera", "Resumo do assistente", "Ação"].forEach((h) => head.appendChild(make("th", { scope: "col" }, h)));
      table.appendChild(make("thead")).appendChild(head);
      const body = table.appendChild(make("tbody"));
      if (!items.length) {
        const row = body.appendChild(make("tr"));
        row.appendChild(make("td", { colspan: "6" }, "Ninguém aguardando."));
      }
      items.forEach((item) => {
        const row = body.appendChild(make("tr", { "data-protocol": item.protocol }));
        row.appendChild(make("td", {}, String(item.position)));
        row.appendChild(make("th", { scope: "row" }, item.protocol));
        row.appendChild(make("td", {}, CHANNELS[item.channel] || item.channel));
        row.appendChild(make("td", { "data-since": item.queued_at }, waitText(item.queued_at)));
        row.appendChild(make("td", {}, summaryText(item)));
        const cell = row.appendChild(make("td"));
        const view = make("button", { type: "button", "aria-label": `Ver a conversa ${item.protocol}` }, "Ver");
        view.addEventListener("click", () => openConversation(item.conversation_id));
        const take = make("button", { type: "button", class: "primary", "aria-label": `Assumir a conversa ${item.protocol}` }, "Assumir");
        take.addEventListener("click", () => claim(item.conversation_id, item.protocol));
        cell.append(view, " ", take);
      });
      container.appendChild(table);
    });
    const summary = counts.join("; ");
    if (lastCounts && summary !== lastCounts) announce("Filas atualizadas — " + summary + ".");
    lastCounts = summary;
    renderMine(data.mine);
    if (data.supervision) renderSupervision(data.supervision);
    if (openId) {
      const queued = data.queues.find((i) => i.conversation_id === openId);
      const mine = data.mine.find((i) => i.conversation_id === openId);
      if (!queued && !mine && openStatus === "queued") {
        setActions("gone");
        announce("Esta conversa saiu da fila.");
      }
    }
  }
  function renderMine(items) {
    const list = el("mine-list");
    list.replaceChildren();
    el("mine-empty").hidden = items.length > 0;
    items.forEach((item) => {
      const li = list.appendChild(make("li"));
      const button = make("button", { type: "button" }, `Abrir ${item.protocol} (${CHANNELS[item.channel] || item.channel}, ${teamLabel(item.team)})`);
      button.addEventListener("click", () => openConversation(item.conversation_id));
      li.appendChild(button);
    });
  }
  function renderSupervision(data) {
    const body = el("supervision-table").querySelector("tbody");
    body.replaceChildren();
    data.teams.forEach((team) => {
      const row = body.appendChild(make("tr"));
      row.appendChild(make("th", { scope: "row" }, team.label));
      row.appendChild(make("td", {}, String(team.waiting)));
      row.appendChild(make("td", {}, team.oldest_queued_at ? waitText(team.oldest_queued_at) : "—"));
      row.appendChild(make("td", {}, String(team.in_service)));
      row.appendChild(make("td", {}, String(team.clerks_online)));
      row.appendChild(make("td", {}, String(team.closed_today)));
      row.appendChild(make("td", {}, String(team.unattended_today)));
    });
    const list = el("clerks-online");
    list.replaceChildren();
    data.clerks_online.forEach((c) => {
      list.appendChild(make("li", {}, `${c.name} — ${c.teams.map(teamLabel).join(", ") || "sem equipe"}; em atendimento: ${c.handling}`));
    });
  }
  // Waits tick on screen between pushes (the data itself only changes when pushed).
  setInterval(() => document.querySelectorAll("[data-since]").forEach((cell) => { cell.textContent = waitText(cell.dataset.since); }), 15000);

  // --- one conversation ------------------------------------------------------------------------
  function renderMessage(message) {
    if (shown.has(message.id)) return;
    shown.add(message.id);
    lastSeq = Math.max(lastSeq, message.seq || 0);
    const item = make("li", { class: message.role });
    const name = message.payload && message.payload.agent_name;
    item.appendChild(make("span", { class: "author" }, (AUTHORS[message.role] || message.role) + (name && message.role === "agent" ? ` (${name})` : "")));
    item.appendChild(make("span", {}, message.text));
    el("history").appendChild(item);
    item.scrollIntoView({ block: "nearest" });
  }
  function setActions(state) {
    openStatus = state;
    el("take-row").hidden = state !== "queued";
    el("actions").hidden = state !== "mine";
  }
  async function openConversation(conversationId, focusTarget) {
    alertText("");
    try {
      const data = await call("GET", `/conversations/${conversationId}`);
      openId = conversationId;
      shown.clear();
      lastSeq = 0;
      el("history").replaceChildren();
      el("conversation").hidden = false;
      el("conversation-title").textContent = `Conversa ${data.protocol}`;
      const summary = el("summary");
      summary.replaceChildren();
      const s = data.summary || {};
      [["Canal", CHANNELS[data.channel] || data.channel], ["Equipe", teamLabel(data.team)],
       ["Assunto (assistente)", intentText(s.intent)], ["Processo", s.case_number || "—"],
       ["Artigos mostrados", (s.articles || []).map((a) => a.title).join("; ") || "—"],
       ["Motivo", data.reason || "—"]].forEach(([term, value]) => {
        summary.append(make("dt", {}, term), make("dd", {}, value));
      });
      data.messages.forEach(renderMessage);
      const mine = data.status === "human" && clerk && data.agent_sub === clerk.subject;
      setActions(mine ? "mine" : data.status === "queued" ? "queued" : "closed");
      watch(conversationId);
      (focusTarget || el("conversation-title")).focus();
    } catch (e) { alertText(e.message); }
  }
  async function claim(conversationId, protocol) {
    alertText("");
    try {
      await call("POST", `/conversations/${conversationId}/claim`);
      announce(`Você assumiu a conversa ${protocol}.`);
      await openConversation(conversationId, el("reply"));
    } catch (e) {
      if (e.status === 409) {
        alertText(`Outro(a) atendente já assumiu a conversa ${protocol}.`);
        // The next push confirms it; meanwhile nobody clicks it again.
        document.querySelectorAll(`tr[data-protocol="${protocol}"]`).forEach((row) => row.remove());
      } else alertText(e.message);
    }
  }
  async function reply(text) {
    const sent = await call("POST", `/conversations/${openId}/messages`, { text });
    renderMessage(sent);
  }
  el("take").addEventListener("click", () => claim(openId, el("conversation-title").textContent.replace("Conversa ", "")));
  el("reply").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); el("reply-form").requestSubmit(); }
  });
  el("reply-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = el("reply").value.trim();
    if (!text) { alertText("Escreva a resposta antes de enviar."); el("reply").focus(); return; }
    try { await reply(text); el("reply").value = ""; alertText(""); } catch (e) { alertText(e.message); }
    el("reply").focus();
  });
  el("canned-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = catalog.canned_answers.find((a) => a.id === el("canned").value);
    try { await reply(answer.text); announce("Resposta pronta enviada."); } catch (e) { alertText(e.message); }
  });
  el("transfer-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const team = el("transfer-team").value;
    try {
      await call("POST", `/conversations/${openId}/transfer`, { team });
      announce(`Conversa transferida para ${teamLabel(team)}.`);
      closePanel();
    } catch (e) { alertText(e.message); }
  });
  el("close-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = el("close-code").value;
    try {
      await call("POST", `/conversations/${openId}/resolve`, { code });
      announce("Atendimento encerrado.");
      closePanel();
    } catch (e) { alertText(e.message); }
  });
  function closePanel() {
    openId = null;
    openStatus = null;
    el("conversation").hidden = true;
    watch("");
    el("queues-title").focus();
  }

  // --- start ----------------------------------------------------------------------------------
  function fillSelect(select, options) {
    select.replaceChildren(...options.map((o) => make("option", { value: o.id }, o.label)));
  }
  async function startWorkspace() {
    el("signin").hidden = true;
    catalog = await call("GET", "/catalog");
    fillSelect(el("transfer-team"), catalog.teams);
    fillSelect(el("close-code"), catalog.resolution_codes);
    fillSelect(el("canned"), catalog.canned_answers.map((a) => ({ id: a.id, label: a.title })));
    showClerk(await call("GET", "/me"));
    el("workspace").hidden = false;
    el("sign-out").hidden = false;
    connect();
  }
  el("sign-in").addEventListener("click", () => signIn().catch((e) => alertText(e.message)));
  el("sign-out").addEventListener("click", signOut);

  async function main() {
    try {
      const response = await fetch("/atendimento/config.json");
      config = await response.json();
      if (!response.ok) throw new Error((config.error && config.error.message) || "Login indisponível.");
    } catch (e) { showSignIn(e.message); el("sign-in").disabled = true; return; }
    const params = new URLSearchParams(location.search);
    try {
      if (params.has("code")) await finishSignIn(params);
      else if (params.has("error")) { history.replaceState(null, "", HOME); throw new Error("O login foi cancelado ou recusado."); }
    } catch (e) { showSignIn(e.message); return; }
    const saved = JSON.parse(sessionStorage.getItem(STORE) || "null");
    if (!tokens && saved) {
      tokens = saved;
      if (Date.now() > tokens.expires_at - 5000 && !(await refresh())) return;
      if (!refreshTimer) keep({ ...tokens, expires_in: Math.round((tokens.expires_at - Date.now()) / 1000) });
    }
    if (!tokens) {
      if (params.has("saiu")) history.replaceState(null, "", HOME);
      showSignIn(params.has("saiu") ? "Você saiu do console." : "Use a sua conta do tribunal para atender as filas da sua equipe.");
      return;
    }
    try { await startWorkspace(); } catch (e) {
      if (e.status === 401 || e.status === 403) { stop(); showSignIn(e.status === 403 ? "Sua conta não tem acesso ao atendimento (papel de atendente)." : "Entre novamente."); }
      else alertText(e.message);
    }
  }
  main();
})();
