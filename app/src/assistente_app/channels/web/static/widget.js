// Assistente Digital web widget: REST to send and read history, WebSocket for replies.
// No framework, no build step. All text shown to citizens is in Brazilian Portuguese.
(function () {
  "use strict";
  const API = "/api/v1/conversations";
  const STORE = "assistente.conversation";
  const WHO = { user: "Você", bot: "Assistente", agent: "Atendente", system: "Aviso" };
  const el = (id) => document.getElementById(id);
  const seen = new Set();
  let session = null;
  let socket = null;
  let retryMs = 1000;

  // --- accessibility preferences -------------------------------------------------------
  const root = document.documentElement;
  function applyPrefs() {
    const contrast = localStorage.getItem("assistente.contrast") === "1";
    root.classList.toggle("high-contrast", contrast);
    el("contrast-toggle").setAttribute("aria-pressed", String(contrast));
    const size = Number(localStorage.getItem("assistente.font") || "100");
    root.style.setProperty("--font-size", size + "%");
  }
  el("contrast-toggle").addEventListener("click", () => {
    const on = localStorage.getItem("assistente.contrast") !== "1";
    localStorage.setItem("assistente.contrast", on ? "1" : "0");
    applyPrefs();
  });
  function resize(delta) {
    const size = Math.min(200, Math.max(80, Number(localStorage.getItem("assistente.font") || "100") + delta));
    localStorage.setItem("assistente.font", String(size));
    applyPrefs();
  }
  el("font-bigger").addEventListener("click", () => resize(10));
  el("font-smaller").addEventListener("click", () => resize(-10));
  applyPrefs();

  // --- rendering -------------------------------------------------------------------------
  function render(message) {
    if (seen.has(message.id)) return;
    seen.add(message.id);
    const item = document.createElement("li");
    item.className = message.role;
    const who = document.createElement("span");
    who.className = "who";
    const agentName = message.role === "agent" && message.payload && message.payload.agent_name;
    who.textContent = (WHO[message.role] || message.role) + (agentName ? ` (${agentName})` : "");
    item.appendChild(who);
    const body = document.createElement("span");
    body.textContent = message.text;
    item.appendChild(body);
    const sources = (message.payload && message.payload.sources) || [];
    if (sources.length) {
      const list = document.createElement("p");
      list.className = "sources";
      list.textContent = "Fontes: " + sources.map((s) => s.title || s.path).join("; ");
      item.appendChild(list);
    }
    const buttons = (message.payload && message.payload.buttons) || [];
    if (buttons.length) {
      const group = document.createElement("div");
      group.className = "choices";
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "Opções de resposta");
      buttons.forEach((choice) => {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = choice.title;
        button.addEventListener("click", () => send(choice.title).catch((e) => status(e.message)));
        group.appendChild(button);
      });
      item.appendChild(group);
    }
    el("message-list").appendChild(item);
    item.scrollIntoView({ block: "end" });
  }
  function status(text) { el("connection").textContent = text; }
  // While waiting for a person the citizen may give up waiting (and keep the protocol).
  function queueState(conversationStatus) {
    el("leave-queue").hidden = conversationStatus !== "queued";
  }

  // --- API -------------------------------------------------------------------------------
  async function call(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    if (session) headers.Authorization = "Bearer " + session.token;
    const response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = (data.error && data.error.message) || "Não foi possível concluir. Tente novamente.";
      throw new Error(message);
    }
    return data;
  }
  async function loadHistory() {
    const data = await call("GET", `${API}/${session.id}/messages`);
    data.messages.forEach(render);
    queueState(data.status);
  }
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}${API}/${session.id}/ws`);
    socket.addEventListener("open", () => socket.send(JSON.stringify({ token: session.token })));
    socket.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      if (data.type === "ready") { status("Conectado."); retryMs = 1000; loadHistory().catch(() => {}); }
      if (data.type === "messages") { data.messages.forEach(render); if (data.status) queueState(data.status); }
      if (data.type === "queue") {
        queueState("queued");
        status(`Você está na posição ${data.position} da fila. ` +
          `Tempo estimado de espera: cerca de ${data.estimated_wait_minutes} minuto(s).`);
      }
    });
    socket.addEventListener("close", () => {
      if (!session) return;
      status("Conexão perdida. Reconectando…");
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    });
  }
  function openChat() {
    // In the chat, what a keyboard user skips to is the message box.
    el("skip-link").href = "#message-input";
    el("skip-link").textContent = "Ir para o campo de mensagem";
    el("chat").hidden = false;
    el("protocol").textContent = session.protocol;
    document.querySelector(".intro").hidden = true;
    loadHistory().catch((e) => status(e.message));
    connect();
  }

  el("start").addEventListener("click", async () => {
    try {
      session = await call("POST", API, { channel: "web" });
      sessionStorage.setItem(STORE, JSON.stringify(session));
      openChat();
      el("protocol").focus();
      status("Atendimento iniciado. Guarde o seu protocolo: " + session.protocol);
    } catch (e) { status(e.message); }
  });
  el("copy-protocol").addEventListener("click", () => {
    navigator.clipboard.writeText(session.protocol).then(() => status("Protocolo copiado."));
  });
  el("leave-queue").addEventListener("click", async () => {
    try {
      await call("POST", `${API}/${session.id}/leave-queue`);
      queueState("resolved");
      status("Você saiu da fila. O seu protocolo continua valendo.");
      el("message-input").focus();
    } catch (e) { el("composer-error").textContent = e.message; }
  });
  el("new-conversation").addEventListener("click", () => {
    sessionStorage.removeItem(STORE);
    session = null;
    if (socket) socket.close();
    location.reload();
  });
  const input = el("message-input");
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); el("composer").requestSubmit(); }
  });
  // The Idempotency-Key belongs to the message, not to the attempt: sending the same text
  // again after a failure (a 503, a dropped connection) reuses it, so the server stores and
  // answers it once even if the first attempt did arrive.
  let pending = null;
  async function send(text) {
    if (!pending || pending.text !== text) {
      pending = { text, key: (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random() };
    }
    const headers = { "Content-Type": "application/json", Authorization: "Bearer " + session.token, "Idempotency-Key": pending.key };
    const response = await fetch(`${API}/${session.id}/messages`, { method: "POST", headers, body: JSON.stringify({ text }) });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || "Falha ao enviar.");
    pending = null;
    render({ id: data.id, role: "user", text });
  }
  el("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    el("composer-error").textContent = "";
    if (!text) { el("composer-error").textContent = "Escreva uma mensagem antes de enviar."; input.focus(); return; }
    try {
      await send(text);
      input.value = "";
    } catch (e) { el("composer-error").textContent = e.message; }
    input.focus();
  });

  const saved = sessionStorage.getItem(STORE);
  if (saved) { session = JSON.parse(saved); openChat(); }
})();
