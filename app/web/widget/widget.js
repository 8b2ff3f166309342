/* Sanad chat widget.
 *
 *   <script src="https://sanad.example/widget.js" data-sanad-key="..." data-title="Ask us"></script>
 *
 * Adds a <sanad-chat> element: a button that opens a chat panel, in a Shadow DOM so the
 * page's CSS stays out. Answers stream from POST /api/chat (server-sent events read with
 * fetch + ReadableStream) and show their citations with the quoted passages. Every piece of
 * text from the server is set with textContent: nothing it sends is ever parsed as HTML.
 */
(() => {
  "use strict";
  const script = document.currentScript;
  if (!script || customElements.get("sanad-chat")) return;
  const origin = new URL(script.src, location.href).origin;

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  /* Server-sent events from a fetch response: yields {event, data}. */
  async function* readEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
        let event = "message";
        const data = [];
        for (const line of block.split(/\r?\n/)) {
          if (!line || line.startsWith(":")) continue;  // comments are keep-alive pings
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? "" : line.slice(colon + 1);
          if (text.startsWith(" ")) text = text.slice(1);
          if (field === "event") event = text;
          else if (field === "data") data.push(text);
        }
        if (data.length) yield { event, data: data.join("\n") };
      }
    }
  }

  class SanadChat extends HTMLElement {
    connectedCallback() {
      if (this.shadowRoot) return;
      this.api = this.getAttribute("api") || origin;
      this.key = this.getAttribute("key") || "";
      this.conversationId = null;
      this.busy = false;
      const heading = this.getAttribute("heading") || "Ask Sanad";
      const inline = this.getAttribute("mode") === "inline";
      const root = this.attachShadow({ mode: "open" });

      root.append(el("link", { rel: "stylesheet", href: `${this.api}/widget.css` }));
      this.launcher = el("button", { class: "launcher", type: "button", part: "launcher",
                                     "aria-expanded": "false", text: `💬 ${heading}` });
      this.log = el("div", { class: "log", "aria-live": "polite" },
                    el("p", { class: "hint", dir: "auto",
                              text: "Ask a question about our articles. Answers cite their sources." }));
      this.input = el("textarea", { rows: "1", dir: "auto", "aria-label": "Your question",
                                    placeholder: "Ask a question… / اكتب سؤالك…", maxlength: "2000" });
      this.sendButton = el("button", { type: "submit", text: "Send" });
      this.form = el("form", {}, this.input, this.sendButton);
      const close = el("button", { type: "button", "aria-label": "Close", text: "×" });
      this.panel = el("section", { class: "panel", role: "dialog", "aria-label": heading },
                      el("header", {}, el("span", { dir: "auto", text: heading }), close),
                      this.log, this.form);
      root.append(el("div", { class: inline ? "root inline" : "root" }, this.launcher, this.panel));
      this.launcher.hidden = inline;
      this.panel.hidden = !inline;

      this.launcher.addEventListener("click", () => this.toggle(true));
      close.addEventListener("click", () => this.toggle(false));
      this.form.addEventListener("submit", (event) => { event.preventDefault(); this.ask(); });
      this.input.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); this.ask(); }
      });
    }

    toggle(open) {
      this.panel.hidden = !open;
      this.launcher.hidden = open;
      this.launcher.setAttribute("aria-expanded", String(open));
      if (open) this.input.focus();
    }

    scrollDown() { this.log.scrollTop = this.log.scrollHeight; }

    showError(message) {
      this.log.append(el("div", { class: "msg error", role: "alert", dir: "auto", text: message }));
      this.scrollDown();
    }

    async ask() {
      const question = this.input.value.trim();
      if (!question || this.busy) return;
      this.busy = true;
      this.sendButton.disabled = true;
      this.input.value = "";
      this.log.append(el("div", { class: "msg user", dir: "auto", text: question }));
      const bubble = el("div", { class: "msg bot" });
      const answer = el("div", { class: "answer streaming", dir: "auto" });
      bubble.append(answer);
      this.log.append(bubble);
      this.scrollDown();
      try {
        await this.stream(question, bubble, answer);
      } catch (error) {
        bubble.remove();
        this.showError(error instanceof TypeError
          ? "Could not reach the chat service (the network failed, or this site is not allowed to use it)."
          : String(error.message || error));
      } finally {
        this.busy = false;
        this.sendButton.disabled = false;
      }
    }

    async stream(question, bubble, answer) {
      const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
      if (this.key) headers["X-Sanad-Key"] = this.key;
      const response = await fetch(`${this.api}/api/chat`, {
        method: "POST", headers, credentials: "omit",
        body: JSON.stringify({ message: question, conversation_id: this.conversationId }),
      });
      if (!response.ok) {
        let message = `The chat service answered ${response.status}.`;
        try { message = (await response.json()).error.message || message; } catch (_) { /* not JSON */ }
        throw new Error(message);
      }
      let translation = null;
      let finished = false;
      let waiting = null;
      for await (const { event, data } of readEvents(response)) {
        const payload = JSON.parse(data);
        if (event === "queue") {
          /* The server is answering others first: say where this question stands. */
          waiting = waiting || bubble.insertBefore(el("div", { class: "waiting", role: "status" }), answer);
          waiting.textContent = payload.position
            ? `Waiting for a turn: ${payload.position} ahead of you…`
            : "Waiting: you are next…";
          this.scrollDown();
          continue;
        }
        if (waiting) { waiting.remove(); waiting = null; }
        if (event === "token") {
          if (payload.part === "translation") {
            translation = translation || bubble.appendChild(el("div", { class: "translation", dir: "auto" }));
            translation.textContent += payload.text;
          } else {
            answer.textContent += payload.text;
          }
          this.scrollDown();
        } else if (event === "result") {
          this.conversationId = payload.conversation_id;
          this.showResult(bubble, payload);
          finished = true;
        } else if (event === "error") {
          throw new Error(payload.error.message);
        }
      }
      if (!finished) throw new Error("The answer was cut off; please ask again.");
    }

    /* The verified answer with [n] as buttons, then each cited passage with its quote. */
    showResult(bubble, result) {
      bubble.textContent = "";
      const passages = result.passages || [];
      const sources = el("ol", { class: "sources" });
      const items = new Map();
      const cited = new Set();
      // One block per line, each with its own direction (an English line, then Arabic).
      const linked = (text) => {
        const node = el("div");
        for (const line of text.split("\n")) {
          const block = el("div", { dir: "auto" });
          let last = 0;
          for (const match of line.matchAll(/\[(\d{1,3})\]/g)) {
            const n = Number(match[1]);
            if (n < 1 || n > passages.length) continue;
            block.append(line.slice(last, match.index));
            const button = el("button", { type: "button", class: "cite", text: `[${n}]`,
                                          "aria-label": `source ${n}` });
            button.addEventListener("click", () => this.focusSource(items, n));
            block.append(button);
            cited.add(n);
            last = match.index + match[0].length;
          }
          block.append(line.slice(last));
          node.append(block);
        }
        return node;
      };
      const answer = linked(result.answer || "");
      answer.className = result.refused ? "answer refused" : "answer";
      bubble.append(answer);
      if (result.translation) {
        const translation = linked(result.translation.text);
        translation.className = "translation";
        bubble.append(translation, el("div", { class: "mt-label", dir: "auto", text: result.translation.label }));
      }
      const shown = cited.size ? [...cited].sort((a, b) => a - b) : passages.map((p) => p.n);
      for (const n of shown) {
        const passage = passages[n - 1];
        const item = el("li", { "data-n": String(n) },
          el("strong", { text: `[${n}] ` }),
          el("span", { class: "quote", dir: "auto", text: passage.text }),
          el("span", { class: "where", dir: "auto", text: `${passage.title} — paragraph ${passage.paragraph}` }));
        items.set(n, item);
        sources.append(item);
      }
      if (shown.length) bubble.append(sources);
      this.scrollDown();
    }

    focusSource(items, n) {
      for (const [k, item] of items) item.classList.toggle("active", k === n);
      const item = items.get(n);
      if (item) item.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
  }

  customElements.define("sanad-chat", SanadChat);
  const widget = document.createElement("sanad-chat");
  widget.setAttribute("api", origin);
  if (script.dataset.sanadKey) widget.setAttribute("key", script.dataset.sanadKey);
  if (script.dataset.title) widget.setAttribute("heading", script.dataset.title);
  if (script.dataset.mode === "inline") widget.setAttribute("mode", "inline");
  const mount = () => document.body.append(widget);
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
